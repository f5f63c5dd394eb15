//! `/.deskgate/api/…`: the same administration as JSON. Reads are GETs; every change needs
//! the CSRF token (from `GET /.deskgate/api/csrf`) in the `X-Deskgate-Csrf` header, and a
//! same-origin `Origin` when the client sends one.

use axum::Json;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::response::Response;
use http::request::Parts;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::actions::{self, AdminError, Creation};
use super::people::held_custom;
use super::person::explanation;
use super::{Admin, CSRF_HEADER, assignable, json as reply, json_error, membership, same_origin};
use crate::accounts::{AccountQuery, AccountStore, Listed};
use crate::error::GatewayError;
use crate::explain::{self, Explanation, PROVIDER_NOTE};
use crate::forms;
use crate::state::AppState;
use crate::usergroups::{Model, Source, Withheld};

/// Most people one listing request returns.
const MAX_LIMIT: u64 = 200;

/// Proof that a state-changing API request carries the browser's CSRF token and no foreign
/// `Origin`; a handler that changes anything takes it.
pub struct ApiCsrf;

impl FromRequestParts<AppState> for ApiCsrf {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
        if same_origin(state, &parts.headers) && forms::csrf_ok(state, &parts.headers, token) {
            return Ok(ApiCsrf);
        }
        tracing::info!(
            target: "deskgate::audit",
            method = %parts.method,
            path = %format!("{}{}", crate::web::PREFIX, parts.uri.path()),
            "Administration refused: missing or foreign CSRF token or origin"
        );
        Err(json_error(StatusCode::FORBIDDEN, "csrf"))
    }
}

/// The token to send in `X-Deskgate-Csrf`; sets the browser's binding when it has none.
pub async fn csrf(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let binding = forms::binding(&state, &headers);
    let token = binding.token(&state);
    binding.attach(reply(StatusCode::OK, &json!({ "token": token, "header": "X-Deskgate-Csrf" })))
}

/// Every assignable usergroup with its member count (see [`crate::accounts::Membership`]).
pub async fn usergroups(State(state): State<AppState>) -> Result<Response, GatewayError> {
    let model = &*state.model().await?;
    let groups: Vec<_> = assignable(model).collect();
    let policies = state.config.account_policies();
    let memberships: Vec<_> = groups.iter().map(|g| membership(model, &policies, &g.id)).collect();
    let counts = state.accounts.count_by_usergroup(&memberships).await?;
    let list: Vec<Value> = groups
        .iter()
        .zip(counts)
        .map(|(g, members)| json!({ "id": g.id, "name": g.name, "permissions": g.permissions, "members": members }))
        .collect();
    Ok(reply(StatusCode::OK, &json!({ "usergroups": list })))
}

/// Query of the listing.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    usergroup: Option<String>,
    offset: Option<u64>,
    limit: Option<u64>,
}

fn summary(state: &AppState, model: &Model, l: &Listed) -> Value {
    let a = &l.account;
    json!({
        "id": a.id,
        "email": a.email,
        "email_verified": a.email_verified,
        "name": a.name,
        "disabled": a.disabled,
        "status": a.status.as_str(),
        "created_at": a.created_at,
        "providers": l.providers,
        "assigned": a.usergroups,
        "organizations": super::people::organizations(model, l).iter().map(|o| o.id.as_str()).collect::<Vec<_>>(),
        "usergroups": held_custom(&state.config, model, l),
    })
}

/// People matching the query, a page at a time.
pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Response, GatewayError> {
    let model = &*state.model().await?;
    let usergroup = match q.usergroup.as_deref().filter(|g| !g.is_empty()) {
        None => None,
        Some(g) if assignable(model).any(|a| a.id == g) => {
            Some(membership(model, &state.config.account_policies(), g))
        }
        Some(_) => return Ok(json_error(StatusCode::BAD_REQUEST, "unknown usergroup")),
    };
    let (offset, limit) = (q.offset.unwrap_or(0), q.limit.unwrap_or(50).clamp(1, MAX_LIMIT));
    let query = AccountQuery { text: q.q.filter(|t| !t.trim().is_empty()), usergroup, status: None };
    let page = state.accounts.list(&query, offset, limit).await?;
    let people: Vec<Value> = page.accounts.iter().map(|l| summary(&state, model, l)).collect();
    Ok(reply(
        StatusCode::OK,
        &json!({ "total": page.total, "offset": offset, "limit": limit, "people": people }),
    ))
}

fn source_json(s: &Source) -> Value {
    match s {
        Source::Organization(id) => json!({ "kind": explain::source_code(s), "organization": id }),
        Source::Provider(via) if !via.is_empty() => json!({ "kind": explain::source_code(s), "via": via }),
        _ => json!({ "kind": explain::source_code(s) }),
    }
}

/// A person with their usergroups, sources, permissions and, when asked, a path's decision.
fn detail(e: &Explanation) -> Value {
    let a = &e.account;
    let usergroups: Vec<Value> = e
        .usergroups
        .iter()
        .map(|g| json!({ "id": g.id, "name": g.name, "sources": g.sources.iter().map(source_json).collect::<Vec<_>>() }))
        .collect();
    let path = e.path.as_ref().map(|c| {
        let (decision, reason) = explain::decision_text(c);
        json!({
            "asked": c.asked,
            "normalized": c.normalized.as_ref().ok(),
            "host": c.host,
            "method": c.method,
            "rule": c.rule.as_ref().map(|(pattern, permission)| json!({ "path": pattern, "permission": permission, "public": permission.is_none() })),
            "decision": decision,
            "reason": reason,
            "granted_by": c.granted_by,
        })
    });
    json!({
        "id": a.id,
        "email": a.email,
        "email_verified": a.email_verified,
        "name": a.name,
        "disabled": a.disabled,
        "created_at": a.created_at,
        "providers": e.providers,
        "assigned": a.usergroups,
        "usergroups": usergroups,
        "permissions": e.permissions,
        "provider_mappings": PROVIDER_NOTE,
        "path": path,
        "withheld": e.withheld.iter().map(|w| match w {
            Withheld::Organization(id) => json!({ "kind": "organization", "organization": id, "reason": "email-not-verified", "text": w.text() }),
            Withheld::Assignment(ids) => json!({ "kind": "config-assignment", "usergroups": ids, "reason": "email-not-verified", "text": w.text() }),
        }).collect::<Vec<_>>(),
        "said": e.said.iter().map(|s| json!({
            "provider": s.provider,
            "attributes": s.attributes,
            "organizations": s.organizations,
            "groups": s.groups.iter().map(|g| json!({ "group": g.group, "usergroups": g.usergroups, "not_mapped": g.why_not })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// An administrator's change that did not go through, as a JSON error (a store failure goes
/// to the rescue layer).
pub(super) fn failure(e: AdminError) -> Result<Response, GatewayError> {
    let status = e.status();
    match e {
        AdminError::Failed(e) => Err(e),
        e => Ok(json_error(status, &e.to_string())),
    }
}

async fn answer(
    state: &AppState,
    status: StatusCode,
    id: &str,
    path: Option<explain::Ask<'_>>,
) -> Result<Response, GatewayError> {
    match explanation(state, id, path).await {
        Ok(e) => Ok(reply(status, &detail(&e))),
        Err(e) => failure(e),
    }
}

/// Query of a person.
#[derive(Debug, Default, serde::Deserialize)]
pub struct PersonQuery {
    path: Option<String>,
    host: Option<String>,
    method: Option<String>,
}

/// One person.
pub async fn person(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<PersonQuery>,
) -> Result<Response, GatewayError> {
    answer(
        &state,
        StatusCode::OK,
        &id,
        q.path.as_deref().map(|path| explain::Ask {
            path,
            host: q.host.as_deref(),
            method: q.method.as_deref(),
        }),
    )
    .await
}

/// Body of a new account.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPerson {
    email: String,
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    usergroups: Vec<String>,
}

/// Creates an account: 201 with the person.
pub async fn create(
    State(state): State<AppState>,
    admin: Admin,
    _: ApiCsrf,
    Json(p): Json<NewPerson>,
) -> Result<Response, GatewayError> {
    let c = Creation { email: p.email, name: p.name, password: p.password, usergroups: p.usergroups };
    match actions::create(&state, &admin, c).await {
        Ok(a) => answer(&state, StatusCode::CREATED, &a.id, None).await,
        Err(e) => failure(e),
    }
}

/// Body of an assignment.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    usergroups: Vec<String>,
}

/// Replaces the usergroups assigned to a person.
pub async fn set_usergroups(
    State(state): State<AppState>,
    admin: Admin,
    _: ApiCsrf,
    Path(id): Path<String>,
    Json(body): Json<Assignment>,
) -> Result<Response, GatewayError> {
    match actions::set_usergroups(&state, &admin, &id, &body.usergroups).await {
        Ok(_) => answer(&state, StatusCode::OK, &id, None).await,
        Err(e) => failure(e),
    }
}

/// Body of an email change.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailChange {
    email: String,
}

/// Sets a person's email address, verified (an administrator vouches for it).
pub async fn set_email(
    State(state): State<AppState>,
    admin: Admin,
    _: ApiCsrf,
    Path(id): Path<String>,
    Json(body): Json<EmailChange>,
) -> Result<Response, GatewayError> {
    match actions::set_email(&state, &admin, &id, &body.email).await {
        Ok(_) => answer(&state, StatusCode::OK, &id, None).await,
        Err(e) => failure(e),
    }
}

/// Disables a person's account.
pub async fn disable(
    State(state): State<AppState>,
    admin: Admin,
    _: ApiCsrf,
    Path(id): Path<String>,
) -> Result<Response, GatewayError> {
    match actions::set_disabled(&state, &admin, &id, true).await {
        Ok(_) => answer(&state, StatusCode::OK, &id, None).await,
        Err(e) => failure(e),
    }
}

/// Enables a person's account.
pub async fn enable(
    State(state): State<AppState>,
    admin: Admin,
    _: ApiCsrf,
    Path(id): Path<String>,
) -> Result<Response, GatewayError> {
    match actions::set_disabled(&state, &admin, &id, false).await {
        Ok(_) => answer(&state, StatusCode::OK, &id, None).await,
        Err(e) => failure(e),
    }
}
