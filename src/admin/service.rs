//! Service accounts and the API tokens administrators manage: a service account is made
//! here (no email, no password, no provider: it never signs in interactively) and acts only
//! through the tokens an administrator makes for it. Any account's tokens can be revoked
//! from its page. Pages and API alike.

use axum::Json;
use axum::extract::{Path, RawForm, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, StatusCode};
use serde_json::json;

use super::actions::{self, AdminError};
use super::api::{ApiCsrf, failure};
use super::{Admin, FOREIGN_FORM, Fields, form_ok, json as reply, json_error, view};
use crate::accounts::tokens::TokenStore;
use crate::accounts::{Account, AccountStore, NewAccount};
use crate::bearer::issue::{self, IssueError, Wanted, token_json};
use crate::error::GatewayError;
use crate::forms::Binding;
use crate::html::{esc, query_value};
use crate::pages::tokens::{shown_once, token_form, token_table};
use crate::state::AppState;
use crate::web::PREFIX;

/// Longest service account name.
const NAME_MAX: usize = 100;

fn person_url(id: &str) -> String {
    format!("{PREFIX}/admin/people/{}", query_value(id))
}

/// Makes a service account with `usergroups` assigned.
async fn create_service(
    state: &AppState,
    admin: &Admin,
    name: &str,
    usergroups: &[String],
) -> Result<Account, AdminError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > NAME_MAX || name.chars().any(char::is_control) {
        return Err(AdminError::Invalid("A service account needs a name of 1 to 100 characters."));
    }
    let usergroups = actions::checked(state, usergroups)?;
    let account = state
        .accounts
        .create(NewAccount {
            name: name.to_owned(),
            usergroups,
            created_at: state.clock.now(),
            ..NewAccount::default()
        })
        .await?;
    state.accounts.mark_service(&account.id).await?;
    tracing::info!(
        target: "deskgate::audit",
        actor = %admin.account_id,
        account = %account.id,
        usergroups = ?account.usergroups,
        "Service account created by an administrator"
    );
    Ok(account)
}

/// The person page's section on API tokens: the list with Revoke for everyone, and for a
/// service account the form that makes one.
pub(super) async fn section(
    state: &AppState,
    binding: &Binding,
    account: &Account,
    permissions: &[String],
) -> Result<String, GatewayError> {
    let url = person_url(&account.id);
    let tokens = state.accounts.tokens(&account.id).await?;
    let table = token_table(state, binding, &tokens, |id| format!("{url}/tokens/{}/revoke", query_value(id)));
    if !state.accounts.is_service(&account.id).await? {
        return Ok(format!(
            "<h2>API tokens</h2><p class=\"muted\">Made by the person on their own page.</p>{table}"
        ));
    }
    Ok(format!(
        "<h2>API tokens</h2><p id=\"service\"><span class=\"badge\">Service account</span> it never signs in \
         interactively and acts only through these tokens.</p>{table}<h3>New token</h3>{}",
        token_form(state, binding, &format!("{url}/tokens"), permissions)
    ))
}

/// `POST /admin/service-accounts`: makes one and opens its page.
pub async fn create_page(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    RawForm(body): RawForm,
) -> Result<Response, GatewayError> {
    let f = Fields::parse(&body);
    if !form_ok(&state, &headers, f.one("csrf")) {
        return Ok(view::page(StatusCode::FORBIDDEN, "Service account", &view::alert(FOREIGN_FORM)));
    }
    match create_service(&state, &admin, f.one("name"), &f.all("usergroup")).await {
        Ok(a) => Ok(Redirect::to(&format!("{}?done=created", person_url(&a.id))).into_response()),
        Err(AdminError::Failed(e)) => Err(e),
        Err(e) => Ok(view::page(e.status(), "Service account", &view::alert(&e.to_string()))),
    }
}

/// The form that makes a service account, for the page that makes accounts.
pub(super) fn create_form(state: &AppState, binding: &Binding) -> String {
    let boxes = view::usergroup_boxes(&state.config.model, &[], |_| String::new());
    format!(
        "<h2>Or a service account</h2><p class=\"muted\">For a script or an integration: it never signs in \
         interactively and acts only through API tokens made on its page.</p>\
         <form method=\"post\" action=\"{PREFIX}/admin/service-accounts\">{}\
         <div class=\"field\"><label for=\"service-name\">Name</label>\
         <input id=\"service-name\" name=\"name\" type=\"text\" required maxlength=\"100\"></div>\
         <fieldset><legend>Usergroups</legend>{boxes}</fieldset>\
         <button type=\"submit\">Create service account</button></form>",
        binding.field(state)
    )
}

async fn service_account(state: &AppState, id: &str) -> Result<Account, IssueError> {
    let account = state.accounts.by_id(id).await?.ok_or(IssueError::NotFound)?;
    if !state.accounts.is_service(id).await? {
        return Err(IssueError::Invalid("Tokens are made here for service accounts only.".into()));
    }
    Ok(account)
}

/// `POST /admin/people/<id>/tokens`: makes a token for a service account and shows it once.
pub async fn create_token_page(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawForm(body): RawForm,
) -> Result<Response, GatewayError> {
    let f = Fields::parse(&body);
    let back = format!("<p><a href=\"{}\">Back to the account</a></p>", esc(&person_url(&id)));
    if !form_ok(&state, &headers, f.one("csrf")) {
        return Ok(view::page(
            StatusCode::FORBIDDEN,
            "API token",
            &format!("{}{back}", view::alert(FOREIGN_FORM)),
        ));
    }
    let wanted = Wanted {
        name: f.one("name").into(),
        expires_in: f.one("expires_in").into(),
        permissions: f.all("permission"),
    };
    let made = match service_account(&state, &id).await {
        Ok(account) => issue::issue(&state, &account, &wanted, &admin.account_id).await,
        Err(e) => Err(e),
    };
    match made {
        Ok((_, secret)) => {
            Ok(view::page(StatusCode::OK, "API token", &format!("{}{back}", shown_once(&secret))))
        }
        Err(IssueError::Failed(e)) => Err(e),
        Err(e) => Ok(view::page(e.status(), "API token", &format!("{}{back}", view::alert(&e.to_string())))),
    }
}

/// `POST /admin/people/<id>/tokens/<token>/revoke`.
pub async fn revoke_token_page(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    Path((id, token)): Path<(String, String)>,
    RawForm(body): RawForm,
) -> Result<Response, GatewayError> {
    if !form_ok(&state, &headers, Fields::parse(&body).one("csrf")) {
        return Ok(view::page(StatusCode::FORBIDDEN, "API token", &view::alert(FOREIGN_FORM)));
    }
    match issue::revoke(&state, &id, &token, &admin.account_id).await {
        Ok(()) => Ok(Redirect::to(&format!("{}?done=token-revoked", person_url(&id))).into_response()),
        Err(IssueError::Failed(e)) => Err(e),
        Err(e) => Ok(view::page(e.status(), "API token", &view::alert(&e.to_string()))),
    }
}

fn issue_failure(e: IssueError) -> Result<Response, GatewayError> {
    match e {
        IssueError::Failed(e) => Err(e),
        e => Ok(json_error(e.status(), &e.to_string())),
    }
}

/// Body of a new service account.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewService {
    name: String,
    #[serde(default)]
    usergroups: Vec<String>,
}

/// `POST /api/service-accounts`: 201 with the account.
pub async fn api_create(
    State(state): State<AppState>,
    admin: Admin,
    _: ApiCsrf,
    Json(body): Json<NewService>,
) -> Result<Response, GatewayError> {
    match create_service(&state, &admin, &body.name, &body.usergroups).await {
        Ok(a) => Ok(reply(
            StatusCode::CREATED,
            &json!({ "id": a.id, "name": a.name, "service": true, "assigned": a.usergroups }),
        )),
        Err(e) => failure(e),
    }
}

/// `GET /api/people/<id>/tokens`: an account's tokens (never their secrets).
pub async fn api_list(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, GatewayError> {
    if state.accounts.by_id(&id).await?.is_none() {
        return Ok(json_error(StatusCode::NOT_FOUND, "no such account"));
    }
    let tokens = state.accounts.tokens(&id).await?;
    let service = state.accounts.is_service(&id).await?;
    let list: Vec<_> = tokens.iter().map(token_json).collect();
    Ok(reply(StatusCode::OK, &json!({ "service": service, "tokens": list })))
}

/// Body of a new token.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    name: String,
    expires_in: String,
    #[serde(default)]
    permissions: Vec<String>,
}

/// `POST /api/people/<id>/tokens`: makes a token for a service account; 201 with its secret,
/// the only time it is given.
pub async fn api_create_token(
    State(state): State<AppState>,
    admin: Admin,
    _: ApiCsrf,
    Path(id): Path<String>,
    Json(body): Json<NewToken>,
) -> Result<Response, GatewayError> {
    let wanted = Wanted { name: body.name, expires_in: body.expires_in, permissions: body.permissions };
    let account = match service_account(&state, &id).await {
        Ok(a) => a,
        Err(e) => return issue_failure(e),
    };
    match issue::issue(&state, &account, &wanted, &admin.account_id).await {
        Ok((token, secret)) => {
            let mut body = token_json(&token);
            body["token"] = json!(secret);
            Ok(reply(StatusCode::CREATED, &body))
        }
        Err(e) => issue_failure(e),
    }
}

/// `DELETE /api/people/<id>/tokens/<token>`: 204.
pub async fn api_revoke_token(
    State(state): State<AppState>,
    admin: Admin,
    _: ApiCsrf,
    Path((id, token)): Path<(String, String)>,
) -> Result<Response, GatewayError> {
    match issue::revoke(&state, &id, &token, &admin.account_id).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(e) => issue_failure(e),
    }
}
