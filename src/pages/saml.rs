//! `/.deskgate/saml/<id>/start`, `/acs` and `/metadata`: SAML 2.0 sign-in as a service
//! provider (HTTP-Redirect out, HTTP-POST back). The provider crate checks the response;
//! here the pending request is taken once and each assertion is accepted once.

use std::time::UNIX_EPOCH;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use deskgate_provider::{Callback, RedirectProvider};
use http::{HeaderMap, HeaderValue, StatusCode, header};

use super::redirect;
use crate::config::SamlProvider;
use crate::error::GatewayError;
use crate::forms;
use crate::html;
use crate::session::SessionStore;
use crate::state::AppState;
use crate::web::PREFIX;

/// Query of the start link.
#[derive(Debug, serde::Deserialize)]
pub struct StartQuery {
    next: Option<String>,
}

fn provider<'a>(state: &'a AppState, key: &str) -> Option<&'a SamlProvider> {
    state.config.saml.iter().find(|p| p.key == key)
}

fn unknown() -> Response {
    html::message(StatusCode::NOT_FOUND, "Not found", "There is no such sign-in provider.", None)
}

/// Where this provider's pending sign-in cookies live: its own prefix, and sent with the
/// IdP's cross-site form post.
fn site<'a>(p: &'a SamlProvider, path: &'a str) -> redirect::Site<'a> {
    redirect::Site { provider: &p.id, path, back: redirect::Return::CrossSitePost }
}

fn prefix(key: &str) -> String {
    format!("{PREFIX}/saml/{key}")
}

/// Sends the browser to the IdP with an AuthnRequest.
pub async fn start(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    Query(q): Query<StartQuery>,
) -> Result<Response, GatewayError> {
    let Some(p) = provider(&state, &key) else { return Ok(unknown()) };
    let next = forms::next_or_root(&state, q.next.as_deref());
    match p.saml.begin(p.saml.acs_url()).await {
        Ok(started) => Ok(redirect::stash(&state, site(p, &prefix(&key)), &headers, started, next)),
        Err(e) => redirect::refused(&p.id, &p.label, e),
    }
}

/// The assertion consumer service: the IdP's response, posted by the browser.
pub async fn acs(
    State(state): State<AppState>,
    Path(key): Path<String>,
    client: crate::signin::Client,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, GatewayError> {
    let Some(p) = provider(&state, &key) else { return Ok(unknown()) };
    let callback = Callback { params: fields };
    let path = prefix(&key);
    let claim = redirect::claim(&state, site(p, &path), &headers, callback.get("RelayState")).await?;
    let resp = accept(&state, p, (&headers, &client), &callback, &claim).await?;
    Ok(claim.answer(resp))
}

/// A response that answers no sign-in this browser started, while `allow_idp_initiated` is
/// off: sign-ins must start at deskgate.
fn start_here(p: &SamlProvider) -> Response {
    tracing::info!(provider = %p.id, "A SAML response that answers no sign-in of this browser (IdP-initiated?); refused");
    let text = format!(
        "Sign-ins with {label} must start here: this one was started somewhere else (for example from \
         the {label} portal) or in another browser. Please choose \"Sign in with {label}\" on the sign-in page. \
         (Administrators can accept sign-ins started at {label} with allow_idp_initiated = true.)",
        label = p.label
    );
    html::message(
        StatusCode::BAD_REQUEST,
        "Please start signing in here",
        &text,
        Some((&format!("{PREFIX}/login"), "Sign in")),
    )
}

/// The ACS answer for what the browser's cookie held.
async fn accept(
    state: &AppState,
    p: &SamlProvider,
    (headers, client): (&HeaderMap, &crate::signin::Client),
    callback: &Callback,
    claim: &redirect::Claim,
) -> Result<Response, GatewayError> {
    let acs = p.saml.acs_url();
    let (result, next) = match &claim.pending {
        Ok(pending) => (p.saml.complete(&pending.state, acs, callback).await, pending.next.clone()),
        // An IdP-initiated response comes with no cookie of ours (its RelayState, if any,
        // names nothing here); the provider refuses one that answers a request.
        Err(redirect::NoPending::NotThisBrowser) if p.saml.allows_idp_initiated() => {
            (p.saml.complete_idp_initiated(acs, callback).await, "/".to_owned())
        }
        // A RelayState of ours: started here, finished in another browser.
        Err(why @ redirect::NoPending::NotThisBrowser)
            if deskgate_saml::Saml::started_here(callback.get("RelayState")) =>
        {
            return Ok(redirect::no_pending(&p.id, *why));
        }
        // Most often a sign-in started at the IdP's portal: say where sign-ins start.
        Err(redirect::NoPending::NotThisBrowser) => return Ok(start_here(p)),
        Err(why) => return Ok(redirect::no_pending(&p.id, *why)),
    };
    let identity = match result {
        Ok(identity) => identity,
        Err(e) => {
            state.metrics.sign_in(&p.id, crate::metrics::SignIn::Failure);
            return redirect::refused(&p.id, &p.label, e);
        }
    };
    // Each assertion is accepted once, until it expires: the replay cache lives in the
    // session store, so it holds across replicas.
    let Some((assertion, until)) = deskgate_saml::assertion_id_and_expiry(&identity) else {
        tracing::warn!(provider = %p.id, "SAML identity without an assertion id; refused");
        return Ok(redirect::start_again(StatusCode::BAD_REQUEST));
    };
    let until = until.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()).max(state.clock.now() + 1);
    let first =
        state.sessions.put_once(&format!("saml-assertion:{}:{assertion}", p.id), Vec::new(), until).await?;
    if !first {
        tracing::warn!(provider = %p.id, %assertion, "SAML assertion posted again; refused");
        return Ok(html::message(
            StatusCode::BAD_REQUEST,
            "Sign-in failed",
            "This sign-in response was already used. Please start again.",
            Some((&format!("{PREFIX}/login"), "Sign in")),
        ));
    }
    redirect::finish(state, headers, client, identity, &p.policy, &next, None).await
}

/// The service provider's metadata, for the IdP.
pub async fn metadata(State(state): State<AppState>, Path(key): Path<String>) -> Response {
    let Some(p) = provider(&state, &key) else { return unknown() };
    let mut resp = p.saml.sp_metadata().into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/samlmetadata+xml"));
    resp
}
