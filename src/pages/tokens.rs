//! `/.deskgate/account/tokens`: a signed-in person's own API tokens — make one (its secret
//! is shown once, on the answer to the form, and never again), see each with its expiry and
//! last use, revoke one. And `/.deskgate/api/accounts/lookup`, which a token with
//! `deskgate.accounts.read` asks whether an address belongs to an active account.

use axum::extract::{Path, Query, RawForm, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::accounts::tokens::{ApiToken, TokenStore};
use crate::accounts::{Account, AccountStatus, AccountStore};
use crate::bearer::issue::{self, IssueError, Wanted};
use crate::error::GatewayError;
use crate::forms::{self, Binding, Fields};
use crate::html::{self, esc, query_value, utc};
use crate::state::AppState;
use crate::visitor::Visitor;
use crate::web::PREFIX;
use crate::web::json;

/// The page's path under [`PREFIX`].
pub const PAGE: &str = "/account/tokens";

/// The permission a token needs for the account lookup.
pub const LOOKUP_PERMISSION: &str = "deskgate.accounts.read";

/// The signed-in person of a page request (by session: a token never reaches this page).
async fn person(state: &AppState, visitor: &Visitor) -> Result<Option<Account>, GatewayError> {
    match visitor {
        Visitor::SignedIn { session, .. } if !session.by_token() => {
            Ok(state.accounts.by_id(&session.account_id).await?)
        }
        _ => Ok(None),
    }
}

fn sign_in_first() -> Response {
    Redirect::to(&format!("{PREFIX}/login?next={}", query_value(&format!("{PREFIX}{PAGE}")))).into_response()
}

/// The table of `tokens`, each with a Revoke form posting to `action(id)`.
pub fn token_table(
    state: &AppState,
    binding: &Binding,
    tokens: &[ApiToken],
    action: impl Fn(&str) -> String,
) -> String {
    if tokens.is_empty() {
        return "<p class=\"muted\">No API tokens.</p>".into();
    }
    let now = state.clock.now();
    let rows: String = tokens
        .iter()
        .map(|t| {
            let permissions = t.permissions.as_ref().map_or("all of the account's".to_owned(), |p| p.join(", "));
            let expiry = if t.expires_at <= now {
                format!("expired {}", utc(t.expires_at))
            } else {
                utc(t.expires_at)
            };
            format!(
                "<tr class=\"token\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td><form method=\"post\" action=\"{}\">{}<button type=\"submit\" class=\"secondary\">Revoke</button></form></td></tr>",
                esc(&t.name),
                esc(&permissions),
                utc(t.created_at),
                t.last_used_at.map_or("never".to_owned(), utc),
                esc(&expiry),
                esc(&action(&t.id)),
                binding.field(state),
            )
        })
        .collect();
    format!(
        "<table><tr><th>Name</th><th>Permissions</th><th>Created</th><th>Last used</th><th>Expires</th><th></th></tr>{rows}</table>"
    )
}

/// The fields of a new token: name, expiry and the permissions to limit it to.
pub fn token_form(state: &AppState, binding: &Binding, action: &str, permissions: &[String]) -> String {
    let boxes: String = permissions
        .iter()
        .map(|p| {
            format!(
                "<label class=\"choice\"><input type=\"checkbox\" name=\"permission\" value=\"{p}\">{p}</label>",
                p = esc(p)
            )
        })
        .collect();
    format!(
        "<form method=\"post\" action=\"{}\">{}\
         <label for=\"token-name\">Name</label><input id=\"token-name\" name=\"name\" required maxlength=\"100\">\
         <label for=\"token-expiry\">Expires in</label><input id=\"token-expiry\" name=\"expires_in\" value=\"30d\">\
         <p class=\"muted\">A duration such as <code>30d</code> or <code>12h</code>, at most {}.</p>\
         <fieldset><legend>Limit to these permissions</legend>{boxes}\
         <p class=\"muted\">None ticked: every permission the account holds. Either way, never more than it holds at the time of use.</p></fieldset>\
         <button type=\"submit\">Create token</button></form>",
        esc(action),
        binding.field(state),
        max_text(state),
    )
}

fn max_text(state: &AppState) -> String {
    let secs = state.config.api_tokens.max_ttl.as_secs();
    if secs % 86_400 == 0 { format!("{}d", secs / 86_400) } else { format!("{}h", secs / 3600) }
}

/// The secret of a token just made, shown once.
pub fn shown_once(secret: &str) -> String {
    format!(
        "<div class=\"note\" role=\"status\"><p>Your new token — copy it now, it is not shown again:</p>\
         <p><code id=\"new-token\">{}</code></p><p class=\"muted\">Send it as <code>Authorization: Bearer …</code>.</p></div>",
        esc(secret)
    )
}

/// Query of the page.
#[derive(Debug, Default, serde::Deserialize)]
pub struct PageQuery {
    done: Option<String>,
}

async fn render(
    state: &AppState,
    binding: &Binding,
    account: &Account,
    status: StatusCode,
    top: &str,
) -> Result<Response, GatewayError> {
    let tokens = state.accounts.tokens(&account.id).await?;
    let held = crate::bearer::account_resolution(state, account).await?;
    let body = format!(
        "{top}<p>API tokens let your scripts act as you: send one as <code>Authorization: Bearer …</code>.</p>\
         <h2>Your tokens</h2>{}<h2>New token</h2>{}<p><a href=\"{PREFIX}/\">Your session</a></p>",
        token_table(state, binding, &tokens, |id| format!("{PREFIX}{PAGE}/{}/revoke", query_value(id))),
        token_form(state, binding, &format!("{PREFIX}{PAGE}"), &held.permissions),
    );
    Ok(html::page(status, "API tokens", &body))
}

/// `GET /account/tokens`.
pub async fn show(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Result<Response, GatewayError> {
    let Some(account) = person(&state, &visitor).await? else { return Ok(sign_in_first()) };
    let binding = forms::binding(&state, &headers);
    let top = match q.done.as_deref() {
        Some("revoked") => "<div class=\"note\" role=\"status\">Token revoked.</div>",
        _ => "",
    };
    let page = render(&state, &binding, &account, StatusCode::OK, top).await?;
    Ok(binding.attach(page))
}

fn refused_form() -> Response {
    html::message(
        StatusCode::FORBIDDEN,
        "Form expired",
        "This form has expired or did not come from this site. Nothing was changed; please try again.",
        Some((&format!("{PREFIX}{PAGE}"), "Back to your tokens")),
    )
}

/// `POST /account/tokens`: makes a token and shows its secret, this once.
pub async fn create(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    RawForm(body): RawForm,
) -> Result<Response, GatewayError> {
    let Some(account) = person(&state, &visitor).await? else { return Ok(sign_in_first()) };
    let binding = forms::binding(&state, &headers);
    let f = Fields::parse(&body);
    if !forms::csrf_ok(&state, &headers, f.one("csrf")) {
        return Ok(refused_form());
    }
    let wanted = Wanted {
        name: f.one("name").into(),
        expires_in: f.one("expires_in").into(),
        permissions: f.all("permission"),
    };
    let (status, top) = match issue::issue(&state, &account, &wanted, &account.id).await {
        Ok((_, secret)) => (StatusCode::OK, shown_once(&secret)),
        Err(IssueError::Failed(e)) => return Err(e),
        Err(e) => (e.status(), format!("<div class=\"alert\" role=\"alert\">{}</div>", esc(&e.to_string()))),
    };
    let page = render(&state, &binding, &account, status, &top).await?;
    Ok(binding.attach(page))
}

/// `POST /account/tokens/<id>/revoke`.
pub async fn revoke(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawForm(body): RawForm,
) -> Result<Response, GatewayError> {
    let Some(account) = person(&state, &visitor).await? else { return Ok(sign_in_first()) };
    let binding = forms::binding(&state, &headers);
    if !forms::csrf_ok(&state, &headers, Fields::parse(&body).one("csrf")) {
        return Ok(refused_form());
    }
    match issue::revoke(&state, &account.id, &id, &account.id).await {
        Ok(()) => Ok(Redirect::to(&format!("{PREFIX}{PAGE}?done=revoked")).into_response()),
        Err(IssueError::Failed(e)) => Err(e),
        Err(e) => {
            let top = format!("<div class=\"alert\" role=\"alert\">{}</div>", esc(&e.to_string()));
            render(&state, &binding, &account, e.status(), &top).await
        }
    }
}

/// Query of the lookup.
#[derive(Debug, Default, serde::Deserialize)]
pub struct LookupQuery {
    email: Option<String>,
}

/// `GET /api/accounts/lookup?email=`: whether an address belongs to an active account,
/// with its id, status and usergroups; a disabled or not yet active account only says so.
/// For API tokens that carry [`LOOKUP_PERMISSION`].
pub async fn lookup(
    State(state): State<AppState>,
    visitor: Visitor,
    Query(q): Query<LookupQuery>,
) -> Result<Response, GatewayError> {
    let session = match &visitor {
        Visitor::Bearer { session } if session.by_token() => session,
        _ => {
            let mut resp = json(
                StatusCode::UNAUTHORIZED,
                &serde_json::json!({ "error": "invalid_token", "error_description": "An API token is required." }),
            );
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(r#"Bearer realm="deskgate""#));
            return Ok(resp);
        }
    };
    if !session.resolved.permits(LOOKUP_PERMISSION) {
        tracing::info!(account = %session.account_id, permission = LOOKUP_PERMISSION, "Account lookup refused: permission missing");
        let body = serde_json::json!({ "error": "forbidden", "reason": "permission-missing", "permission": LOOKUP_PERMISSION });
        return Ok(json(StatusCode::FORBIDDEN, &body));
    }
    let email = q.email.as_deref().map(str::trim).unwrap_or_default();
    if email.is_empty() || email.len() > 254 || !email.contains('@') {
        return Ok(json(
            StatusCode::BAD_REQUEST,
            &serde_json::json!({ "error": "an email address is required" }),
        ));
    }
    let answer = match state.accounts.by_email(email).await? {
        None => serde_json::json!({ "registered": false, "active": false }),
        Some(a) if a.disabled => {
            serde_json::json!({ "registered": true, "active": false, "status": "disabled" })
        }
        Some(a) if a.status != AccountStatus::Active => {
            serde_json::json!({ "registered": true, "active": false, "status": a.status.as_str() })
        }
        Some(a) => {
            let resolved = crate::bearer::account_resolution(&state, &a).await?;
            serde_json::json!({
                "registered": true,
                "active": true,
                "status": "active",
                "id": a.id,
                "email_verified": a.email_verified,
                "usergroups": resolved.usergroups,
            })
        }
    };
    Ok(json(StatusCode::OK, &answer))
}
