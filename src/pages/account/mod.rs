//! `/.deskgate/account`: a signed-in person's own page — their name, address and password,
//! and their sessions. Every form carries the CSRF token, answers a success with a redirect
//! back here (post, redirect, get) and a refusal with the page again and a 4xx; guests are
//! sent to sign in.
//!
//! Sub-pages (`/.deskgate/account/<section>`) live in files of their own beside this one and
//! add themselves to [`SECTIONS`], so that every page of the account shows the same list.

mod email;
mod password;
mod profile;
mod sessions;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode};

use crate::accounts::{Account, AccountStore};
use crate::error::GatewayError;
use crate::forms;
use crate::html::{self, esc, query_value};
use crate::session::{Session, SessionKey};
use crate::state::AppState;
use crate::visitor::Visitor;
use crate::web::PREFIX;

/// The account's pages: the path under `/.deskgate/account` and the label in the list.
pub(crate) const SECTIONS: &[(&str, &str)] = &[
    ("", "Profile and sessions"),
    ("/security", "Two-step sign-in"),
    ("/keys", "Security keys"),
    ("/tokens", "API tokens"),
];

/// The routes under `/.deskgate/account`.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/account", get(show))
        .route("/account/name", post(profile::rename))
        .route("/account/password", post(password::change))
        .route("/account/email", post(email::request))
        .route("/account/email/confirm", get(email::confirm_form).post(email::confirm))
        .route("/account/email/changed", get(email::changed))
        .route("/account/sessions/end", post(sessions::end))
}

/// The list of the account's pages, `current` (a path of [`SECTIONS`]) marked.
pub(crate) fn nav(current: &str) -> String {
    let items: String = SECTIONS
        .iter()
        .map(|(path, label)| {
            if *path == current {
                format!("<li><strong aria-current=\"page\">{}</strong></li>", esc(label))
            } else {
                format!("<li><a href=\"{PREFIX}/account{}\">{}</a></li>", esc(path), esc(label))
            }
        })
        .collect();
    format!(
        "<nav class=\"sections\" aria-label=\"Your account\"><ul>{items}\
         <li><a href=\"{PREFIX}/\">Your session</a></li></ul></nav>"
    )
}

/// A page of the account: the section list, then `body` (already escaped).
pub(crate) fn page(status: StatusCode, title: &str, current: &str, body: &str) -> Response {
    html::page(status, title, &format!("{}{body}", nav(current)))
}

/// The signed-in person; `None` for a guest (see [`to_sign_in`]).
pub(crate) fn signed_in(visitor: Visitor) -> Option<(SessionKey, Arc<Session>)> {
    match visitor {
        Visitor::SignedIn { key, session } => Some((key, session)),
        Visitor::Guest | Visitor::Bearer { .. } => None,
    }
}

/// The answer for a guest: off to sign in, and back to `back_to` after.
pub(crate) fn to_sign_in(back_to: &str) -> Response {
    Redirect::to(&format!("{PREFIX}/login?next={}", query_value(back_to))).into_response()
}

/// Where a posted form of the page stands once it is known who posted it.
enum Posted {
    /// A signed-in person, with the browser's token.
    By(SessionKey, Arc<Session>),
    /// A guest (sent to sign in) or a post without the token (the page again, 403).
    Answered(Response),
}

/// The start of every form of the page: who posted it, and whether the token is the
/// browser's.
async fn posted(
    state: &AppState,
    visitor: Visitor,
    headers: &HeaderMap,
    csrf: &str,
) -> Result<Posted, GatewayError> {
    let Some((key, session)) = signed_in(visitor) else {
        return Ok(Posted::Answered(to_sign_in(&format!("{PREFIX}/account"))));
    };
    if !forms::csrf_ok(state, headers, csrf) {
        let page = refuse(state, headers, (&key, &session), StatusCode::FORBIDDEN, FORM_EXPIRED).await?;
        return Ok(Posted::Answered(page));
    }
    Ok(Posted::By(key, session))
}

/// What a redirect back to the page says happened.
#[derive(Debug, serde::Deserialize)]
pub struct Done {
    done: Option<String>,
}

/// The notice for a `done` value; anything else shows none (the value is the client's).
fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "name" => "Your name is changed.",
        "password" => "Your password is changed. Every other session of your account has ended.",
        "email" => {
            "If the new address can be used, we have sent it an email with a link. Your address changes \
             when you open the link; until then you sign in with the one you have."
        }
        "ended" => "The session has ended.",
        "ended-others" => "Every other session has ended.",
        _ => return None,
    })
}

/// The answer after a change: back to the page, which tells what happened.
fn done(what: &str) -> Response {
    Redirect::to(&format!("{PREFIX}/account?done={what}")).into_response()
}

/// What the page shows above its sections: a notice, or why a form was refused.
enum Alert<'a> {
    None,
    Notice(&'a str),
    Refused(&'a str),
}

/// `GET /account`.
async fn show(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Query(q): Query<Done>,
) -> Result<Response, GatewayError> {
    let Some((key, session)) = signed_in(visitor) else {
        return Ok(to_sign_in(&format!("{PREFIX}/account")));
    };
    let alert = notice(q.done.as_deref()).map_or(Alert::None, Alert::Notice);
    render(&state, &headers, (&key, &session), StatusCode::OK, alert).await
}

/// Answers a refused form: the page again, with `text`, under `status`.
async fn refuse(
    state: &AppState,
    headers: &HeaderMap,
    (key, session): (&SessionKey, &Session),
    status: StatusCode,
    text: &str,
) -> Result<Response, GatewayError> {
    render(state, headers, (key, session), status, Alert::Refused(text)).await
}

/// The text of a refused form whose token did not match.
const FORM_EXPIRED: &str = "This form has expired or did not come from this site. Please try again.";

/// The account of a session, read now: what the page shows and the forms change.
async fn account_of(state: &AppState, session: &Session) -> Result<Option<Account>, GatewayError> {
    Ok(state.accounts.by_id(&session.account_id).await?.filter(|a| !a.disabled))
}

async fn render(
    state: &AppState,
    headers: &HeaderMap,
    (key, session): (&SessionKey, &Session),
    status: StatusCode,
    alert: Alert<'_>,
) -> Result<Response, GatewayError> {
    let Some(account) = account_of(state, session).await? else {
        return Ok(Redirect::to(&format!("{PREFIX}/login")).into_response());
    };
    let binding = forms::binding(state, headers);
    let alert = match alert {
        Alert::None => String::new(),
        Alert::Notice(text) => format!("<div class=\"note\" role=\"status\">{}</div>", esc(text)),
        Alert::Refused(text) => format!("<div class=\"alert\" role=\"alert\">{}</div>", esc(text)),
    };
    let providers = state.accounts.providers(&account.id).await?;
    let has_password = password::has_password(state, &account).await?;
    let body = format!(
        "{alert}{profile}{email}{password}{sessions}",
        profile = profile::section(state, &binding, &account, session, &providers),
        email = email::section(state, &binding, &account, has_password),
        password = if has_password { password::section(state, &binding) } else { String::new() },
        sessions = sessions::section(state, &binding, key, &account.id).await?,
    );
    Ok(binding.attach(page(status, "Your account", "", &body)))
}
