//! `/.deskgate/admin/signups` and `/.deskgate/api/signups`: sign-ups waiting for an
//! administrator (registration mode `approval`), each approved or rejected.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, StatusCode};
use serde_json::json;

use super::actions::{self, AdminError};
use super::api::ApiCsrf;
use super::person::TokenForm;
use super::{Admin, form_ok, json as reply, json_error, view};
use crate::accounts::{Account, AccountQuery, AccountStatus, AccountStore};
use crate::error::GatewayError;
use crate::forms::{self, Binding};
use crate::html::{esc, query_value};
use crate::state::AppState;
use crate::web::PREFIX;

/// Most pending sign-ups one page shows; the oldest come first.
const SHOWN: u64 = 200;

async fn pending(state: &AppState) -> Result<(u64, Vec<Account>), GatewayError> {
    let query = AccountQuery { status: Some(AccountStatus::PendingApproval), ..Default::default() };
    let page = state.accounts.list(&query, 0, SHOWN).await?;
    let mut accounts: Vec<Account> = page.accounts.into_iter().map(|l| l.account).collect();
    accounts.sort_by_key(|a| a.created_at);
    Ok((page.total, accounts))
}

fn render(
    state: &AppState,
    binding: &Binding,
    total: u64,
    accounts: &[Account],
    note: Option<&str>,
) -> String {
    let note = note.map(view::note).unwrap_or_default();
    if accounts.is_empty() {
        return format!("{note}<p>No sign-up is waiting for approval.</p>");
    }
    let rows: String = accounts
        .iter()
        .map(|a| {
            let action = |what: &str, label: &str, class: &str| {
                format!(
                    "<form method=\"post\" action=\"{PREFIX}/admin/signups/{id}/{what}\" style=\"display:inline\">\
                     {csrf}<button type=\"submit\"{class} aria-label=\"{label} {name}\">{label}</button></form>",
                    id = query_value(&a.id),
                    csrf = binding.field(state),
                    name = esc(&a.name),
                )
            };
            format!(
                "<tr><td>{name}</td><td>{email}</td><td>{approve}{reject}</td></tr>",
                name = esc(&a.name),
                email = esc(a.email.as_deref().unwrap_or("")),
                approve = action("approve", "Approve", ""),
                reject = action("reject", "Reject", " class=\"danger\""),
            )
        })
        .collect();
    format!(
        "{note}<table><caption>{total} waiting for approval</caption>\
         <thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Email</th><th scope=\"col\">Decision</th></tr></thead>\
         <tbody>{rows}</tbody></table>"
    )
}

/// Query of the page.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ListQuery {
    done: Option<String>,
}

/// Lists the sign-ups waiting for approval.
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<ListQuery>,
) -> Result<Response, GatewayError> {
    let note = match q.done.as_deref() {
        Some("approved") => Some("The sign-up was approved: the account can sign in now."),
        Some("rejected") => Some("The sign-up was rejected: the account can never sign in."),
        _ => None,
    };
    answer(&state, &headers, StatusCode::OK, note, None).await
}

async fn answer(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    note: Option<&str>,
    alert: Option<&str>,
) -> Result<Response, GatewayError> {
    let (total, accounts) = pending(state).await?;
    let binding = forms::binding(state, headers);
    let alert = alert.map(view::alert).unwrap_or_default();
    let body = format!("{alert}{}", render(state, &binding, total, &accounts, note));
    Ok(binding.attach(view::page(status, "Pending sign-ups", &body)))
}

async fn decide_page(
    state: AppState,
    admin: Admin,
    headers: HeaderMap,
    id: String,
    csrf: &str,
    approve: bool,
) -> Result<Response, GatewayError> {
    if !form_ok(&state, &headers, csrf) {
        let text =
            "This form has expired or did not come from this site. Nothing was changed; please try again.";
        return answer(&state, &headers, StatusCode::FORBIDDEN, None, Some(text)).await;
    }
    match actions::decide(&state, &admin, &id, approve).await {
        Ok(_) => {
            let done = if approve { "approved" } else { "rejected" };
            Ok(Redirect::to(&format!("{PREFIX}/admin/signups?done={done}")).into_response())
        }
        Err(AdminError::Failed(e)) => Err(e),
        Err(AdminError::NoSuchAccount) => {
            answer(&state, &headers, StatusCode::NOT_FOUND, None, Some("There is no account with this id."))
                .await
        }
        Err(e) => answer(&state, &headers, StatusCode::CONFLICT, None, Some(&e.to_string())).await,
    }
}

/// Approves a sign-up.
pub async fn approve(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<TokenForm>,
) -> Result<Response, GatewayError> {
    decide_page(state, admin, headers, id, &f.csrf, true).await
}

/// Rejects a sign-up.
pub async fn reject(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<TokenForm>,
) -> Result<Response, GatewayError> {
    decide_page(state, admin, headers, id, &f.csrf, false).await
}

fn summary(a: &Account) -> serde_json::Value {
    json!({ "id": a.id, "email": a.email, "name": a.name, "status": a.status.as_str(), "created_at": a.created_at })
}

/// `GET /api/signups`: the sign-ups waiting for approval, oldest first.
pub async fn api_list(State(state): State<AppState>) -> Result<Response, GatewayError> {
    let (total, accounts) = pending(&state).await?;
    let list: Vec<serde_json::Value> = accounts.iter().map(summary).collect();
    Ok(reply(StatusCode::OK, &json!({ "total": total, "signups": list })))
}

async fn decide_api(
    state: &AppState,
    admin: &Admin,
    id: &str,
    approve: bool,
) -> Result<Response, GatewayError> {
    match actions::decide(state, admin, id, approve).await {
        Ok(a) => Ok(reply(StatusCode::OK, &summary(&a))),
        Err(AdminError::Failed(e)) => Err(e),
        Err(AdminError::NoSuchAccount) => Ok(json_error(StatusCode::NOT_FOUND, "no such account")),
        Err(e) => Ok(json_error(StatusCode::CONFLICT, &e.to_string())),
    }
}

/// `POST /api/signups/<id>/approve`.
pub async fn api_approve(
    State(state): State<AppState>,
    admin: Admin,
    _: ApiCsrf,
    Path(id): Path<String>,
) -> Result<Response, GatewayError> {
    decide_api(&state, &admin, &id, true).await
}

/// `POST /api/signups/<id>/reject`.
pub async fn api_reject(
    State(state): State<AppState>,
    admin: Admin,
    _: ApiCsrf,
    Path(id): Path<String>,
) -> Result<Response, GatewayError> {
    decide_api(&state, &admin, &id, false).await
}
