//! Administering people: pages under `/.deskgate/admin/` (server-rendered HTML that works
//! without JavaScript) and a JSON API under `/.deskgate/api/`, both under the reserved
//! prefix, so never proxied.
//!
//! An administrator is a signed-in person whose usergroups grant [`ADMIN_PERMISSION`],
//! like any other permission: there is no built-in super-user. Every route passes the gate
//! first (guests: sign in, or 401; others without the permission: 403). Every state change
//! is checked against cross-site requests: forms with the CSRF token of the browser's
//! binding, the API with the same token in the `X-Deskgate-Csrf` header; both refuse an
//! `Origin` other than the public URL's.

mod actions;
mod api;
mod factors;
mod organizations;
mod people;
mod person;
mod service;
mod signups;
mod view;

use axum::Router;
use axum::extract::{FromRequestParts, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post, put};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};

use crate::config::AccountPolicy;
use crate::forms::Fields;
use crate::html;
use crate::state::AppState;
use crate::usergroups::{EVERYONE, Model, REGISTERED, Usergroup};
use crate::visitor::Visitor;
use crate::web::PREFIX;

/// What a change form that failed the CSRF or origin check is told.
const FOREIGN_FORM: &str =
    "This form has expired or did not come from this site. Nothing was changed; please try again.";

/// The permission that makes a person an administrator.
pub const ADMIN_PERMISSION: &str = "deskgate.admin";

/// The header an API client sends the CSRF token in.
pub const CSRF_HEADER: &str = "x-deskgate-csrf";

/// The administration routes, relative to [`PREFIX`].
pub fn routes() -> Router<AppState> {
    let pages = Router::new()
        .route("/admin", get(|| async { Redirect::to(&format!("{PREFIX}/admin/people")) }))
        .route("/admin/people", get(people::list).post(people::create))
        .route("/admin/people/new", get(people::new_form))
        .route("/admin/people/{id}", get(person::show))
        .route("/admin/people/{id}/usergroups", post(person::save_usergroups))
        .route("/admin/people/{id}/disable", post(person::disable))
        .route("/admin/people/{id}/enable", post(person::enable))
        .route("/admin/people/{id}/email", post(person::set_email))
        .route("/admin/people/{id}/link", post(person::link))
        .route("/admin/people/{id}/unlink", post(person::unlink))
        .route("/admin/people/{id}/tokens", post(service::create_token_page))
        .route("/admin/people/{id}/tokens/{token}/revoke", post(service::revoke_token_page))
        .route("/admin/service-accounts", post(service::create_page))
        .route("/admin/people/{id}/factors/reset", post(factors::reset))
        .route("/admin/mfa", get(factors::unenrolled))
        .route("/admin/organizations", get(organizations::list).post(organizations::create))
        .route("/admin/organizations/{id}", get(organizations::show).post(organizations::update))
        .route("/admin/organizations/{id}/delete", post(organizations::remove))
        .route("/admin/signups", get(signups::list))
        .route("/admin/signups/{id}/approve", post(signups::approve))
        .route("/admin/signups/{id}/reject", post(signups::reject))
        .route_layer(middleware::from_fn(gate_pages));
    let api = Router::new()
        .route("/api/csrf", get(api::csrf))
        .route("/api/usergroups", get(api::usergroups))
        .route("/api/people", get(api::list).post(api::create))
        .route("/api/people/{id}", get(api::person))
        .route("/api/people/{id}/usergroups", put(api::set_usergroups))
        .route("/api/people/{id}/disable", post(api::disable))
        .route("/api/people/{id}/enable", post(api::enable))
        .route("/api/people/{id}/email", put(api::set_email))
        .route("/api/people/{id}/tokens", get(service::api_list).post(service::api_create_token))
        .route("/api/people/{id}/tokens/{token}", axum::routing::delete(service::api_revoke_token))
        .route("/api/service-accounts", post(service::api_create))
        .route("/api/organizations", get(organizations::api_list).post(organizations::api_create))
        .route("/api/organizations/{id}", put(organizations::api_update).delete(organizations::api_delete))
        .route("/api/signups", get(signups::api_list))
        .route("/api/signups/{id}/approve", post(signups::api_approve))
        .route("/api/signups/{id}/reject", post(signups::api_reject))
        .route_layer(middleware::from_fn(gate_api));
    pages.merge(api)
}

/// The administrator making a request, left on it by the gate.
#[derive(Debug, Clone)]
pub struct Admin {
    /// Their account id.
    pub account_id: String,
    /// Their email, if any.
    pub email: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        // Only the gate puts it there; a route outside the gate has no administrator.
        parts.extensions.get::<Admin>().cloned().ok_or_else(|| forbidden_json().into_response())
    }
}

/// Who the visitor is to the gate.
enum Standing {
    Guest,
    NotAdmin(String),
    Admin(Admin),
}

fn standing(req: &Request) -> Standing {
    match req.extensions().get::<Visitor>() {
        Some(Visitor::SignedIn { session, .. }) if session.resolved.permits(ADMIN_PERMISSION) => {
            Standing::Admin(Admin { account_id: session.account_id.clone(), email: session.email.clone() })
        }
        Some(Visitor::SignedIn { session, .. }) => Standing::NotAdmin(session.account_id.clone()),
        _ => Standing::Guest,
    }
}

/// The path and query as the client sent them: the routes are nested under [`PREFIX`],
/// which the nesting router has taken off `req.uri()`.
fn full_path(req: &Request) -> String {
    let uri = req.uri();
    format!("{PREFIX}{}", uri.path_and_query().map_or_else(|| uri.path(), |pq| pq.as_str()))
}

fn refused(account: &str, req: &Request) {
    tracing::info!(
        target: "deskgate::audit",
        %account,
        method = %req.method(),
        path = %full_path(req),
        permission = ADMIN_PERMISSION,
        "Administration refused: permission missing"
    );
}

async fn gate_pages(mut req: Request, next: Next) -> Response {
    match standing(&req) {
        Standing::Admin(admin) => {
            req.extensions_mut().insert(admin);
            next.run(req).await
        }
        Standing::Guest => {
            // After signing in, come back to the page (a form's target is not a page).
            let back =
                if req.method() == Method::GET { full_path(&req) } else { format!("{PREFIX}/admin/people") };
            Redirect::to(&format!("{PREFIX}/login?next={}", html::query_value(&back))).into_response()
        }
        Standing::NotAdmin(account) => {
            refused(&account, &req);
            let body = format!(
                "<p>Administration needs the permission <code>{ADMIN_PERMISSION}</code>, which none of \
                 your usergroups grants.</p><p><a href=\"/\">Home</a> · <a href=\"{PREFIX}/\">Your session</a></p>"
            );
            html::page(StatusCode::FORBIDDEN, "Access denied", &body)
        }
    }
}

async fn gate_api(mut req: Request, next: Next) -> Response {
    match standing(&req) {
        Standing::Admin(admin) => {
            req.extensions_mut().insert(admin);
            next.run(req).await
        }
        Standing::Guest => {
            let mut resp = json_error(StatusCode::UNAUTHORIZED, "sign-in required");
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(r#"Cookie realm="deskgate""#));
            resp
        }
        Standing::NotAdmin(account) => {
            refused(&account, &req);
            forbidden_json()
        }
    }
}

fn forbidden_json() -> Response {
    let body = serde_json::json!({
        "error": "forbidden",
        "reason": "permission-missing",
        "permission": ADMIN_PERMISSION,
    });
    json(StatusCode::FORBIDDEN, &body)
}

/// A JSON response.
fn json(status: StatusCode, body: &serde_json::Value) -> Response {
    crate::web::json(status, body)
}

/// A JSON error with a short message.
fn json_error(status: StatusCode, error: &str) -> Response {
    json(status, &serde_json::json!({ "error": error }))
}

/// The origin (`scheme://host[:port]`) of a URL.
fn origin_of(url: &str) -> &str {
    let start = url.find("://").map_or(0, |i| i + 3);
    url[start..].find('/').map_or(url, |i| &url[..start + i])
}

/// Whether a request's `Origin`, when it has one, is deskgate's own. Browsers send it with
/// every cross-site POST, so this refuses them even before the token is looked at.
fn same_origin(state: &AppState, headers: &HeaderMap) -> bool {
    match headers.get(header::ORIGIN) {
        None => true,
        Some(origin) => {
            origin.to_str().is_ok_and(|o| o.eq_ignore_ascii_case(origin_of(&state.config.server.public_url)))
        }
    }
}

/// Whether a posted form is from deskgate's own page: the token of the browser's binding,
/// and no foreign `Origin`.
fn form_ok(state: &AppState, headers: &HeaderMap, token: &str) -> bool {
    same_origin(state, headers) && crate::forms::csrf_ok(state, headers, token)
}

/// The custom usergroups, the ones an administrator may assign.
fn assignable(model: &Model) -> impl Iterator<Item = &Usergroup> {
    model.usergroups.values().filter(|g| g.id != EVERYONE && g.id != REGISTERED)
}

/// Who the account store can tell is in a usergroup: assigned, assigned by the config, a
/// member of a linked organization by email domain or by a provider's naming, or in a
/// provider group that one of `policies` (provider id, rules) maps to it.
fn membership(
    model: &Model,
    policies: &[(&str, &AccountPolicy)],
    usergroup: &str,
) -> crate::accounts::Membership {
    let mut emails: Vec<String> = model
        .assignments
        .iter()
        .filter(|(_, ids)| ids.iter().any(|id| id == usergroup))
        .map(|(email, _)| email.clone())
        .collect();
    emails.sort();
    let mut domains: Vec<String> = model
        .organizations
        .iter()
        .filter(|o| o.usergroups.iter().any(|id| id == usergroup))
        .flat_map(|o| o.domains.iter().cloned())
        .collect();
    domains.sort();
    domains.dedup();
    let mut organization_names: Vec<String> = model
        .organizations
        .iter()
        .filter(|o| o.usergroups.iter().any(|id| id == usergroup))
        .flat_map(|o| [o.id.to_ascii_lowercase(), o.name.to_ascii_lowercase()])
        .collect();
    organization_names.sort();
    organization_names.dedup();
    let provider_groups = policies
        .iter()
        .flat_map(|(provider, policy)| {
            policy
                .group_rules
                .iter()
                .filter(|(_, to)| to.iter().any(|id| id == usergroup))
                .map(move |(group, _)| ((*provider).to_owned(), group.to_ascii_lowercase()))
        })
        .collect();
    crate::accounts::Membership {
        usergroup: usergroup.to_owned(),
        emails,
        domains,
        provider_groups,
        organization_names,
    }
}

#[cfg(test)]
mod tests;
