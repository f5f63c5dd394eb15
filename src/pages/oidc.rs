//! `/.deskgate/oidc/<id>/start` and `/.deskgate/oidc/<id>/callback`: OpenID Connect
//! sign-in (authorization code with PKCE; the provider crate checks the tokens).

use axum::extract::{Path, Query, RawQuery, State};
use axum::response::Response;
use deskgate_provider::{Callback, RedirectProvider};
use http::{HeaderMap, StatusCode};

use super::redirect;
use crate::config::OidcProvider;
use crate::error::GatewayError;
use crate::forms;
use crate::html;
use crate::state::AppState;
use crate::web::PREFIX;

/// Query of the start link.
#[derive(Debug, serde::Deserialize)]
pub struct StartQuery {
    next: Option<String>,
}

fn provider<'a>(state: &'a AppState, key: &str) -> Option<&'a OidcProvider> {
    state.config.oidc.iter().find(|p| p.key == key)
}

fn unknown() -> Response {
    html::message(StatusCode::NOT_FOUND, "Not found", "There is no such sign-in provider.", None)
}

/// Where this provider's pending sign-in cookies live: its own prefix, sent back by a
/// top-level redirect.
fn site<'a>(p: &'a OidcProvider, path: &'a str) -> redirect::Site<'a> {
    redirect::Site { provider: &p.id, path, back: redirect::Return::Redirect }
}

fn prefix(key: &str) -> String {
    format!("{PREFIX}/oidc/{key}")
}

/// The callback URL registered at the provider.
pub fn callback_url(state: &AppState, key: &str) -> String {
    format!("{}{PREFIX}/oidc/{key}/callback", state.config.server.public_url)
}

/// Sends the browser to the provider.
pub async fn start(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    Query(q): Query<StartQuery>,
) -> Result<Response, GatewayError> {
    let Some(p) = provider(&state, &key) else { return Ok(unknown()) };
    let next = forms::next_or_root(&state, q.next.as_deref());
    match p.oidc.begin(&callback_url(&state, &key)).await {
        Ok(started) => Ok(redirect::stash(&state, site(p, &prefix(&key)), &headers, started, next)),
        Err(e) => redirect::refused(&p.id, &p.label, e),
    }
}

/// Finishes the sign-in when the provider sends the browser back.
pub async fn callback(
    State(state): State<AppState>,
    Path(key): Path<String>,
    client: crate::signin::Client,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, GatewayError> {
    let Some(p) = provider(&state, &key) else { return Ok(unknown()) };
    let params: Vec<(String, String)> = serde_urlencoded_pairs(query.as_deref().unwrap_or_default());
    let callback = Callback { params };
    let path = prefix(&key);
    let claim = redirect::claim(&state, site(p, &path), &headers, callback.get("state")).await?;
    let pending = match &claim.pending {
        Ok(pending) => pending,
        Err(why) => return Ok(claim.answer(redirect::no_pending(&p.id, *why))),
    };
    let completed =
        p.oidc.complete_with_refresh(&pending.state, &callback_url(&state, &key), &callback).await;
    let resp = match completed {
        Ok((identity, refresh)) => {
            if p.oidc.refresh_groups() && refresh.is_none() {
                tracing::warn!(
                    provider = %p.id,
                    "refresh_groups is set but the provider issued no refresh token: the session ends at its first re-check"
                );
            }
            redirect::finish(
                &state,
                &headers,
                &client,
                identity,
                &p.policy,
                &pending.next,
                refresh.as_deref(),
            )
            .await?
        }
        Err(e) => {
            state.metrics.sign_in(&p.id, crate::metrics::SignIn::Failure);
            redirect::refused(&p.id, &p.label, e)?
        }
    };
    Ok(claim.answer(resp))
}

/// Decodes `a=1&b=2` into pairs; malformed escapes are kept as written.
fn serde_urlencoded_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                let s = s.replace('+', " ");
                crate::policy::path::percent_decode(&s).unwrap_or(s)
            };
            (decode(k), decode(v))
        })
        .collect()
}
