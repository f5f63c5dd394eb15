//! The account page's profile: who the person is, how they sign in, and their name.

use axum::Form;
use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, StatusCode};

use super::{Posted, account_of, done, posted, refuse};
use crate::accounts::{Account, ProfileStore};
use crate::error::GatewayError;
use crate::forms::Binding;
use crate::html::esc;
use crate::session::{Session, SessionStore};
use crate::state::AppState;
use crate::visitor::Visitor;
use crate::web::PREFIX;

/// Longest display name, in characters (as at sign-up).
const NAME_MAX: usize = 100;

/// The profile section: name (with its form), address, and the ways the account signs in.
pub(super) fn section(
    state: &AppState,
    binding: &Binding,
    account: &Account,
    session: &Session,
    providers: &[String],
) -> String {
    let ways = if providers.is_empty() {
        "—".to_owned()
    } else {
        providers.iter().map(|p| esc(&state.config.provider_label(p))).collect::<Vec<_>>().join(", ")
    };
    format!(
        "<section id=\"profile\"><h2>Profile</h2>\
         <p>Signed in with <strong>{this}</strong>. This account signs in with {ways}.</p>\
         <form method=\"post\" action=\"{PREFIX}/account/name\">{csrf}\
         <label for=\"name\">Name</label>\
         <input id=\"name\" name=\"name\" autocomplete=\"name\" required maxlength=\"{NAME_MAX}\" value=\"{name}\">\
         <button type=\"submit\">Change name</button></form></section>",
        this = esc(&state.config.provider_label(&session.provider)),
        csrf = binding.field(state),
        name = esc(&account.name),
    )
}

/// The posted name.
#[derive(serde::Deserialize)]
pub struct NameForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    csrf: String,
}

/// `POST /account/name`.
pub async fn rename(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Form(f): Form<NameForm>,
) -> Result<Response, GatewayError> {
    let (key, session) = match posted(&state, visitor, &headers, &f.csrf).await? {
        Posted::By(key, session) => (key, session),
        Posted::Answered(resp) => return Ok(resp),
    };
    let me = (&key, &*session);
    let name = f.name.trim();
    if name.is_empty() || name.chars().count() > NAME_MAX || name.chars().any(char::is_control) {
        let text = "Please give a name of up to 100 characters.";
        return refuse(&state, &headers, me, StatusCode::UNPROCESSABLE_ENTITY, text).await;
    }
    let Some(account) = account_of(&state, &session).await? else {
        return Ok(done("name"));
    };
    state.accounts.set_name(&account.id, name).await?;
    // Every session of the account shows the new name from its next request.
    state.sessions.bump_account_epoch(&account.id).await?;
    tracing::info!(target: "deskgate::audit", account = %account.id, "Name changed by its owner");
    Ok(done("name"))
}
