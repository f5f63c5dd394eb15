//! Organizations administrators keep: a name, email domains whose accounts are members, and
//! the usergroups every member is in. Pages under `/.deskgate/admin/organizations`, the API
//! under `/.deskgate/api/organizations`.
//!
//! Organizations of the config file are shown beside them but change only in the file.
//! Every change is written to the account store first and then moves the shared epoch on,
//! so each signed-in member is resolved again on their next request, on every replica
//! (within the Redis local cache's window): nobody signs in again.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Path, Query, RawForm, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::actions::{self, AdminError};
use super::api::{ApiCsrf, failure};
use super::{Admin, FOREIGN_FORM, Fields, form_ok, json as reply, json_error, view};
use crate::accounts::{AccountStore, Organization};
use crate::error::GatewayError;
use crate::forms::{self, Binding};
use crate::html::{esc, query_value};
use crate::session::SessionStore;
use crate::state::AppState;
use crate::usergroups::Model;
use crate::web::PREFIX;

/// What an administrator enters for an organization.
#[derive(Debug, Default, Clone)]
pub struct OrgInput {
    /// Id; empty to make one from the name (creation only).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Email domains, separated by commas, spaces or lines.
    pub domains: String,
    /// Usergroups every member is in.
    pub usergroups: Vec<String>,
}

/// An id made from a name: lower-case letters and digits, the rest runs of `-`.
fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').chars().take(64).collect()
}

fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Whether `d` (lower case) looks like a DNS name with a dot: labels of letters, digits and
/// inner hyphens.
fn valid_domain(d: &str) -> bool {
    d.len() <= 253
        && d.contains('.')
        && d.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// The domains of a form's text: lower case, a leading `@` dropped, each once, sorted.
fn parse_domains(text: &str) -> Result<Vec<String>, AdminError> {
    let mut out = BTreeSet::new();
    for d in text.split(|c: char| c == ',' || c.is_whitespace()).filter(|d| !d.is_empty()) {
        let d = d.trim_start_matches('@').to_ascii_lowercase();
        if !valid_domain(&d) {
            return Err(AdminError::Invalid(
                "Each domain must look like example.com: letters, digits, hyphens and dots.",
            ));
        }
        out.insert(d);
    }
    Ok(out.into_iter().collect())
}

/// The organizations administrators keep.
async fn stored(state: &AppState) -> Result<Vec<Organization>, AdminError> {
    Ok(state.accounts.organizations().await?)
}

/// Creates (`existing` none) or replaces a stored organization, then makes the change reach
/// every session.
pub async fn save(
    state: &AppState,
    admin: &Admin,
    existing: Option<&str>,
    input: OrgInput,
) -> Result<Organization, AdminError> {
    let config_model = &state.config.model;
    let name = input.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(AdminError::Invalid("Please give a name of up to 100 characters."));
    }
    let id = match existing {
        Some(id) => id.to_owned(),
        None if input.id.trim().is_empty() => slug(&name),
        None => input.id.trim().to_owned(),
    };
    if !valid_id(&id) {
        return Err(AdminError::Invalid(
            "The id must be 1 to 64 lower-case letters, digits, hyphens or underscores.",
        ));
    }
    if config_model.is_config_organization(&id) {
        return Err(if existing.is_some() {
            AdminError::NoSuchOrganization
        } else {
            AdminError::Conflict(format!("`{id}` is an organization of the config file; choose another id."))
        });
    }
    let domains = parse_domains(&input.domains)?;
    for d in &domains {
        if let Some(owner) = config_model.organizations.iter().find(|o| o.domains.contains(d)) {
            return Err(AdminError::Conflict(format!(
                "The domain {d} belongs to the config file's organization `{}`.",
                owner.id
            )));
        }
    }
    let usergroups = actions::checked(state, &input.usergroups)?;
    let all = stored(state).await?;
    let before = all.iter().find(|o| o.id == id).cloned();
    match (existing, &before) {
        (Some(_), None) => return Err(AdminError::NoSuchOrganization),
        (None, Some(_)) => {
            return Err(AdminError::Conflict(format!("An organization with the id `{id}` exists already.")));
        }
        _ => {}
    }
    let org = Organization { id, name, domains, usergroups };
    state.accounts.put_organization(&org).await?;
    state.sessions.bump_shared_epoch().await?;
    let old = before.unwrap_or_default();
    let diff = |new: &[String], old: &[String]| -> Vec<String> {
        new.iter().filter(|x| !old.contains(x)).cloned().collect()
    };
    tracing::info!(
        target: "deskgate::audit",
        actor = %admin.account_id,
        organization = %org.id,
        domains_added = ?diff(&org.domains, &old.domains),
        domains_removed = ?diff(&old.domains, &org.domains),
        usergroups_added = ?diff(&org.usergroups, &old.usergroups),
        usergroups_removed = ?diff(&old.usergroups, &org.usergroups),
        "{}",
        if existing.is_some() { "Organization changed by an administrator" } else { "Organization created by an administrator" }
    );
    Ok(org)
}

/// Deletes a stored organization; its members lose its usergroups on their next request.
pub async fn delete(state: &AppState, admin: &Admin, id: &str) -> Result<(), AdminError> {
    if state.config.model.is_config_organization(id) {
        return Err(AdminError::NoSuchOrganization);
    }
    match state.accounts.delete_organization(id).await {
        Ok(()) => {}
        Err(crate::accounts::AccountError::NotFound) => return Err(AdminError::NoSuchOrganization),
        Err(e) => return Err(e.into()),
    }
    state.sessions.bump_shared_epoch().await?;
    tracing::info!(
        target: "deskgate::audit",
        actor = %admin.account_id,
        organization = %id,
        "Organization deleted by an administrator"
    );
    Ok(())
}

fn list_url() -> String {
    format!("{PREFIX}/admin/organizations")
}

fn org_url(id: &str) -> String {
    format!("{PREFIX}/admin/organizations/{}", query_value(id))
}

/// Usergroup names for a list of ids.
fn names(model: &Model, ids: &[String]) -> String {
    let names: Vec<String> =
        ids.iter().map(|id| esc(model.usergroups.get(id).map_or(id.as_str(), |g| g.name.as_str()))).collect();
    if names.is_empty() { "—".into() } else { names.join(", ") }
}

/// The fields of an organization's form, `entered` filled in.
fn fields(state: &AppState, binding: &Binding, entered: &OrgInput, with_id: bool) -> String {
    let boxes = view::usergroup_boxes(&state.config.model, &entered.usergroups, |_| String::new());
    let id = if with_id {
        format!(
            "<div class=\"field\"><label for=\"id\">Id</label>\
             <input id=\"id\" name=\"id\" type=\"text\" maxlength=\"64\" autocomplete=\"off\" value=\"{}\" \
             aria-describedby=\"id-help\"><p id=\"id-help\" class=\"muted\">Optional: made from the name when empty. \
             Lower-case letters, digits, hyphens.</p></div>",
            esc(&entered.id)
        )
    } else {
        String::new()
    };
    format!(
        "{}<div class=\"field\"><label for=\"name\">Name</label>\
         <input id=\"name\" name=\"name\" type=\"text\" required maxlength=\"100\" autocomplete=\"off\" value=\"{}\"></div>\
         {id}<div class=\"field\"><label for=\"domains\">Email domains</label>\
         <textarea id=\"domains\" name=\"domains\" rows=\"3\" cols=\"40\" aria-describedby=\"domains-help\">{}</textarea>\
         <p id=\"domains-help\" class=\"muted\">One per line, e.g. corp.example.com. Every account with an email \
         at one of them is a member.</p></div>\
         <fieldset><legend>Usergroups every member is in</legend>{boxes}</fieldset>",
        binding.field(state),
        esc(&entered.name),
        esc(&entered.domains),
    )
}

fn done_text(done: &str) -> Option<&'static str> {
    match done {
        "created" => Some("Organization created. Its members have its usergroups from their next request."),
        "saved" => Some("Organization saved. Its members have its usergroups from their next request."),
        "unchanged" => Some("Cancelled: the organization is unchanged."),
        "deleted" => Some("Organization deleted. Its members lose its usergroups on their next request."),
        _ => None,
    }
}

/// Query of the pages.
#[derive(Debug, Default, serde::Deserialize)]
pub struct PageQuery {
    done: Option<String>,
}

async fn list_page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    entered: &OrgInput,
    note: Option<&str>,
    alert: Option<&str>,
) -> Result<Response, GatewayError> {
    let model = state.model().await?;
    let rows: String = model
        .organizations
        .iter()
        .map(|o| {
            let (name, source) = if state.config.model.is_config_organization(&o.id) {
                (esc(&o.name), "config file")
            } else {
                (format!("<a href=\"{}\">{}</a>", esc(&org_url(&o.id)), esc(&o.name)), "administrators")
            };
            format!(
                "<tr><th scope=\"row\">{name} <span class=\"muted\">({})</span></th><td>{}</td><td>{}</td><td>{source}</td></tr>",
                esc(&o.id),
                esc(&if o.domains.is_empty() { "—".to_owned() } else { o.domains.join(", ") }),
                names(&model, &o.usergroups),
            )
        })
        .collect();
    let binding = forms::binding(state, headers);
    let mut body = String::new();
    body.push_str(&alert.map(view::alert).unwrap_or_default());
    body.push_str(&note.map(view::note).unwrap_or_default());
    body.push_str(&format!(
        "<table id=\"organizations\"><caption>{} organizations</caption><thead><tr>\
         <th scope=\"col\">Organization</th><th scope=\"col\">Email domains</th>\
         <th scope=\"col\">Usergroups</th><th scope=\"col\">Kept by</th></tr></thead><tbody>{rows}</tbody></table>\
         <h2>Create an organization</h2><form method=\"post\" action=\"{}\">{}\
         <button type=\"submit\">Create organization</button></form>",
        model.organizations.len(),
        list_url(),
        fields(state, &binding, entered, true),
    ));
    Ok(binding.attach(view::page(status, "Organizations", &body)))
}

/// The list of organizations, with the form to create one.
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Result<Response, GatewayError> {
    let note = q.done.as_deref().and_then(done_text);
    list_page(&state, &headers, StatusCode::OK, &OrgInput::default(), note, None).await
}

fn input(f: &Fields) -> OrgInput {
    OrgInput {
        id: f.one("id").to_owned(),
        name: f.one("name").to_owned(),
        domains: f.one("domains").to_owned(),
        usergroups: f.all("usergroup"),
    }
}

/// Creates an organization.
pub async fn create(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    RawForm(body): RawForm,
) -> Result<Response, GatewayError> {
    let f = Fields::parse(&body);
    let entered = input(&f);
    if !form_ok(&state, &headers, f.one("csrf")) {
        return list_page(&state, &headers, StatusCode::FORBIDDEN, &entered, None, Some(FOREIGN_FORM)).await;
    }
    match save(&state, &admin, None, entered.clone()).await {
        Ok(_) => Ok(Redirect::to(&format!("{}?done=created", list_url())).into_response()),
        Err(AdminError::Failed(e)) => Err(e),
        Err(e) => list_page(&state, &headers, e.status(), &entered, None, Some(&e.to_string())).await,
    }
}

fn not_found() -> Response {
    view::page(
        StatusCode::NOT_FOUND,
        "No such organization",
        &format!(
            "<p>No organization that administrators keep has this id. The config file's organizations change \
             only in the file.</p><p><a href=\"{}\">Back to organizations</a></p>",
            list_url()
        ),
    )
}

async fn edit_page(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    status: StatusCode,
    entered: Option<OrgInput>,
    alert: Option<&str>,
) -> Result<Response, GatewayError> {
    let org = match stored(state).await {
        Ok(all) => all.into_iter().find(|o| o.id == id),
        Err(AdminError::Failed(e)) => return Err(e),
        Err(_) => None,
    };
    let Some(org) = org else { return Ok(not_found()) };
    let entered = entered.unwrap_or_else(|| OrgInput {
        id: org.id.clone(),
        name: org.name.clone(),
        domains: org.domains.join("\n"),
        usergroups: org.usergroups.clone(),
    });
    let binding = forms::binding(state, headers);
    let url = org_url(&org.id);
    let body = format!(
        "{}<p>Id: <code>{}</code></p><form method=\"post\" action=\"{url}\">{}\
         <button type=\"submit\" name=\"action\" value=\"save\">Save</button>\
         <button type=\"submit\" name=\"action\" value=\"cancel\" class=\"secondary\">Cancel</button></form>\
         <h2>Delete</h2><form method=\"post\" action=\"{url}/delete\">{}\
         <p class=\"muted\">Its members lose its usergroups on their next request; their accounts stay.</p>\
         <button type=\"submit\" class=\"danger\">Delete organization</button></form>\
         <p><a href=\"{}\">Back to organizations</a></p>",
        alert.map(view::alert).unwrap_or_default(),
        esc(&org.id),
        fields(state, &binding, &entered, false),
        binding.field(state),
        list_url(),
    );
    Ok(binding.attach(view::page(status, &org.name, &body)))
}

/// The form of one stored organization.
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, GatewayError> {
    edit_page(&state, &headers, &id, StatusCode::OK, None, None).await
}

/// Saves an organization (Save), or leaves it as it is (Cancel).
pub async fn update(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawForm(body): RawForm,
) -> Result<Response, GatewayError> {
    let f = Fields::parse(&body);
    let entered = input(&f);
    if f.one("action") == "cancel" {
        return Ok(Redirect::to(&format!("{}?done=unchanged", list_url())).into_response());
    }
    if !form_ok(&state, &headers, f.one("csrf")) {
        return edit_page(&state, &headers, &id, StatusCode::FORBIDDEN, Some(entered), Some(FOREIGN_FORM))
            .await;
    }
    match save(&state, &admin, Some(&id), entered.clone()).await {
        Ok(_) => Ok(Redirect::to(&format!("{}?done=saved", list_url())).into_response()),
        Err(AdminError::Failed(e)) => Err(e),
        Err(AdminError::NoSuchOrganization) => Ok(not_found()),
        Err(e) => edit_page(&state, &headers, &id, e.status(), Some(entered), Some(&e.to_string())).await,
    }
}

/// Deletes an organization.
pub async fn remove(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawForm(body): RawForm,
) -> Result<Response, GatewayError> {
    let f = Fields::parse(&body);
    if !form_ok(&state, &headers, f.one("csrf")) {
        return edit_page(&state, &headers, &id, StatusCode::FORBIDDEN, None, Some(FOREIGN_FORM)).await;
    }
    match delete(&state, &admin, &id).await {
        Ok(()) => Ok(Redirect::to(&format!("{}?done=deleted", list_url())).into_response()),
        Err(AdminError::Failed(e)) => Err(e),
        Err(_) => Ok(not_found()),
    }
}

fn org_json(state: &AppState, o: &Organization) -> Value {
    let kept_by = if state.config.model.is_config_organization(&o.id) { "config" } else { "administrators" };
    json!({ "id": o.id, "name": o.name, "domains": o.domains, "usergroups": o.usergroups, "kept_by": kept_by })
}

/// Every organization, the config file's and the stored ones.
pub async fn api_list(State(state): State<AppState>) -> Result<Response, GatewayError> {
    let model = state.model().await?;
    let list: Vec<Value> = model.organizations.iter().map(|o| org_json(&state, o)).collect();
    Ok(reply(StatusCode::OK, &json!({ "organizations": list })))
}

/// Body of an organization.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgBody {
    #[serde(default)]
    id: String,
    name: String,
    #[serde(default)]
    domains: Vec<String>,
    #[serde(default)]
    usergroups: Vec<String>,
}

impl OrgBody {
    fn input(self) -> OrgInput {
        OrgInput {
            id: self.id,
            name: self.name,
            domains: self.domains.join("\n"),
            usergroups: self.usergroups,
        }
    }
}

/// Creates an organization: 201 with it.
pub async fn api_create(
    State(state): State<AppState>,
    admin: Admin,
    _: ApiCsrf,
    Json(body): Json<OrgBody>,
) -> Result<Response, GatewayError> {
    match save(&state, &admin, None, body.input()).await {
        Ok(org) => Ok(reply(StatusCode::CREATED, &org_json(&state, &org))),
        Err(e) => failure(e),
    }
}

/// Replaces an organization's name, domains and usergroups.
pub async fn api_update(
    State(state): State<AppState>,
    admin: Admin,
    _: ApiCsrf,
    Path(id): Path<String>,
    Json(body): Json<OrgBody>,
) -> Result<Response, GatewayError> {
    if !body.id.is_empty() && body.id != id {
        return Ok(json_error(StatusCode::UNPROCESSABLE_ENTITY, "the id cannot change"));
    }
    match save(&state, &admin, Some(&id), body.input()).await {
        Ok(org) => Ok(reply(StatusCode::OK, &org_json(&state, &org))),
        Err(e) => failure(e),
    }
}

/// Deletes an organization.
pub async fn api_delete(
    State(state): State<AppState>,
    admin: Admin,
    _: ApiCsrf,
    Path(id): Path<String>,
) -> Result<Response, GatewayError> {
    match delete(&state, &admin, &id).await {
        Ok(()) => Ok(reply(StatusCode::OK, &json!({ "deleted": id }))),
        Err(e) => failure(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_from_names_and_domains_are_checked() {
        assert_eq!(slug("  Corp Example, Inc. "), "corp-example-inc");
        assert!(valid_id("corp-example_2") && !valid_id("Corp") && !valid_id("") && !valid_id("a/b"));
        let got = parse_domains("Corp.Example.com, @corp.example.com\nsub.corp.example.com").expect("valid");
        assert_eq!(got, ["corp.example.com", "sub.corp.example.com"]);
        for bad in ["localhost", "-a.example", "a..example", "a.example/x", "x@y.example", "ex ample.com"] {
            let text = bad.replace(' ', "\u{0}");
            assert!(parse_domains(&text).is_err(), "{bad}");
        }
    }
}
