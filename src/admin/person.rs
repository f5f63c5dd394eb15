//! `/.deskgate/admin/people/<id>`: one person — their usergroups with where each comes
//! from, the assignable usergroups to tick (Save or Cancel), an access check for a path,
//! its provider sign-ins (linked or unlinked here), and disabling or enabling the account.

use axum::Form;
use axum::extract::{Path, Query, RawForm, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, StatusCode};

use super::actions::{self, AdminError};
use super::{Admin, FOREIGN_FORM, Fields, form_ok, view};
use crate::accounts::AccountStore;
use crate::error::GatewayError;
use crate::explain::{self, Explanation};
use crate::forms::{self, Binding};
use crate::html::{esc, query_value};
use crate::state::AppState;
use crate::usergroups::Source;
use crate::web::PREFIX;

/// Query of the page.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ShowQuery {
    path: Option<String>,
    host: Option<String>,
    method: Option<String>,
    done: Option<String>,
}

/// A form that carries only its token.
#[derive(Debug, serde::Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    pub(super) csrf: String,
}

fn person_url(id: &str) -> String {
    format!("{PREFIX}/admin/people/{}", query_value(id))
}

/// The explanation of an account, or why there is none.
pub(super) async fn explanation(
    state: &AppState,
    id: &str,
    ask: Option<explain::Ask<'_>>,
) -> Result<Explanation, AdminError> {
    let account = actions::account(state, id).await?;
    let providers = state.accounts.providers(id).await?;
    let claimed = explain::Claimed::new(&state.config, &state.accounts.provider_claims(id).await?);
    let model = state.model().await?;
    Ok(explain::explain(&model, &state.config.policy, account, providers, &claimed, ask))
}

fn done_text(done: &str) -> Option<&'static str> {
    match done {
        "saved" => Some("Usergroups saved. They apply from the person's next request."),
        "unchanged" => Some("Cancelled: the usergroups are unchanged."),
        "disabled" => Some("Account disabled. Its sessions end on their next request."),
        "enabled" => Some("Account enabled. The person can sign in again."),
        "created" => Some("Account created."),
        "email" => Some("Email address set and verified. It applies from the person's next request."),
        "linked" => Some("Sign-in linked. The person can now sign in to this account through it."),
        "unlinked" => Some("Sign-in unlinked. Sessions through it end at their next request."),
        "token-revoked" => {
            Some("API token revoked. Every replica refuses it within the session cache window.")
        }
        "factors-reset" => {
            Some("Second factors reset. The person signs in with the password alone, then enrols again.")
        }
        _ => None,
    }
}

/// The provider sign-ins linked to the account, each with Unlink, and a form to link one.
fn links_section(state: &AppState, binding: &Binding, url: &str, links: &[(String, String)]) -> String {
    let config = &state.config;
    let rows: String = links
        .iter()
        .map(|(provider, subject)| {
            format!(
                "<tr><td>{}</td><td><code>{}</code></td><td><form method=\"post\" action=\"{url}/unlink\">{}\
                 <input type=\"hidden\" name=\"provider\" value=\"{}\"><input type=\"hidden\" name=\"subject\" value=\"{}\">\
                 <button type=\"submit\" class=\"secondary\">Unlink</button></form></td></tr>",
                esc(&config.provider_label(provider)),
                esc(&format!("{provider} {subject}")),
                binding.field(state),
                esc(provider),
                esc(subject),
            )
        })
        .collect();
    let table = if links.is_empty() {
        "<p class=\"muted\">No provider sign-in is linked.</p>".to_owned()
    } else {
        format!(
            "<table id=\"links\"><thead><tr><th scope=\"col\">Provider</th><th scope=\"col\">Reference</th>\
             <th scope=\"col\"></th></tr></thead><tbody>{rows}</tbody></table>"
        )
    };
    let options: String = config
        .account_policies()
        .iter()
        .map(|(id, _)| format!("<option value=\"{}\">{}</option>", esc(id), esc(&config.provider_label(id))))
        .collect();
    let form = if options.is_empty() {
        String::new()
    } else {
        format!(
            "<form method=\"post\" action=\"{url}/link\">{}\
             <p class=\"muted\">The reference is on the page a person sees when a provider's sign-in \
             matches this account's address but may not link to it, and in the audit log.</p>\
             <div class=\"field\"><label for=\"link-provider\">Provider</label>\
             <select id=\"link-provider\" name=\"provider\">{options}</select></div>\
             <div class=\"field\"><label for=\"link-subject\">Reference (the provider's id for the person)</label>\
             <input id=\"link-subject\" name=\"subject\" type=\"text\" required></div>\
             <button type=\"submit\" class=\"secondary\">Link sign-in</button></form>",
            binding.field(state)
        )
    };
    format!("<h2>Provider sign-ins</h2>{table}{form}")
}

fn render(
    state: &AppState,
    binding: &Binding,
    e: &Explanation,
    links: &[(String, String)],
    sections: &str,
    note: Option<&str>,
    alert: Option<&str>,
) -> String {
    let a = &e.account;
    let url = person_url(&a.id);
    let mut body = String::new();
    body.push_str(&alert.map(view::alert).unwrap_or_default());
    body.push_str(&note.map(view::note).unwrap_or_default());
    let status =
        if a.disabled { "<span class=\"badge\">Disabled</span> sign-in is refused" } else { "Enabled" };
    body.push_str(&format!(
        "<table id=\"account\"><caption>Account</caption><tbody>\
         <tr><th scope=\"row\">Email</th><td id=\"email\">{}{}</td></tr>\
         <tr><th scope=\"row\">Id</th><td><code>{}</code></td></tr>\
         <tr><th scope=\"row\">Signs in with</th><td>{}</td></tr>\
         <tr><th scope=\"row\">Status</th><td id=\"status\">{status}</td></tr></tbody></table>",
        esc(a.email.as_deref().unwrap_or("—")),
        match (&a.email, a.email_verified) {
            (Some(_), true) => " <span class=\"muted\">(verified)</span>",
            (Some(_), false) => " <span class=\"badge\">Not verified</span>",
            (None, _) => "",
        },
        esc(&a.id),
        esc(&if e.providers.is_empty() { "no way yet".to_owned() } else { e.providers.join(", ") }),
    ));

    body.push_str("<h2>Access</h2>");
    body.push_str(&view::explanation(e));
    let asked = e.path.as_ref().map_or("", |p| p.asked.as_str());
    let method = e.path.as_ref().map_or("GET", |p| p.method.as_str());
    // The host field only where rules name hosts.
    let host = if state.config.policy.names_hosts() {
        let asked = e.path.as_ref().and_then(|p| p.host.as_deref()).unwrap_or("");
        format!(
            "<div class=\"field\"><label for=\"host\">On the host</label>\
             <input id=\"host\" name=\"host\" type=\"text\" placeholder=\"help.example.com\" value=\"{}\"></div>",
            esc(asked)
        )
    } else {
        String::new()
    };
    body.push_str(&format!(
        "<form method=\"get\" action=\"{url}\"><div class=\"field\"><label for=\"path\">Check access to a path</label>\
         <input id=\"path\" name=\"path\" type=\"text\" placeholder=\"/chat/sales\" value=\"{}\"></div>{host}\
         <div class=\"field\"><label for=\"method\">With the method</label>\
         <input id=\"method\" name=\"method\" type=\"text\" placeholder=\"GET\" value=\"{}\"></div>\
         <button type=\"submit\" class=\"secondary\">Explain</button></form>",
        esc(asked),
        esc(method)
    ));

    let boxes = view::usergroup_boxes(&state.config.model, &a.usergroups, |g| {
        // Being in it for another reason too is worth knowing before unticking it.
        let also: Vec<String> = e
            .usergroups
            .iter()
            .filter(|h| h.id == g.id)
            .flat_map(|h| h.sources.iter().filter(|s| **s != Source::Assigned))
            .map(explain::source_text)
            .collect();
        if also.is_empty() {
            String::new()
        } else {
            format!(" <span class=\"muted\">— also from {}</span>", esc(&also.join("; ")))
        }
    });
    body.push_str(&format!(
        "<h2>Assigned usergroups</h2><form method=\"post\" action=\"{url}/usergroups\">{}\
         <fieldset><legend>Usergroups assigned to {}</legend>{boxes}</fieldset>\
         <button type=\"submit\" name=\"action\" value=\"save\">Save</button>\
         <button type=\"submit\" name=\"action\" value=\"cancel\" class=\"secondary\">Cancel</button></form>",
        binding.field(state),
        esc(&a.name)
    ));

    body.push_str(&format!(
        "<h2>Email address</h2><form method=\"post\" action=\"{url}/email\">{}\
         <p class=\"muted\">Setting it here marks it verified: it then counts for organizations \
         by email domain and [[assignments]], and an account that holds it unverified loses it.</p>\
         <div class=\"field\"><label for=\"new-email\">Email</label>\
         <input id=\"new-email\" name=\"email\" type=\"email\" required value=\"{}\"></div>\
         <button type=\"submit\" class=\"secondary\">Set as verified</button></form>",
        binding.field(state),
        esc(a.email.as_deref().unwrap_or("")),
    ));

    body.push_str(&links_section(state, binding, &url, links));
    body.push_str(sections);

    let (action, label, class, help) = if a.disabled {
        ("enable", "Enable account", "", "The person can sign in again.")
    } else {
        (
            "disable",
            "Disable account",
            " class=\"danger\"",
            "A disabled account cannot sign in, and its sessions end on their next request.",
        )
    };
    body.push_str(&format!(
        "<h2>Sign-in</h2><form method=\"post\" action=\"{url}/{action}\">{}\
         <p class=\"muted\">{help}</p><button type=\"submit\"{class}>{label}</button></form>\
         <p><a href=\"{PREFIX}/admin/people\">Back to people</a></p>",
        binding.field(state)
    ));
    body
}

fn not_found() -> Response {
    view::page(
        StatusCode::NOT_FOUND,
        "No such person",
        &format!(
            "<p>There is no account with this id.</p><p><a href=\"{PREFIX}/admin/people\">Back to people</a></p>"
        ),
    )
}

/// The page of one person, after a change or a refusal.
async fn answer(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    status: StatusCode,
    path: Option<explain::Ask<'_>>,
    note: Option<&str>,
    alert: Option<&str>,
) -> Result<Response, GatewayError> {
    let e = match explanation(state, id, path).await {
        Ok(e) => e,
        Err(AdminError::Failed(e)) => return Err(e),
        Err(_) => return Ok(not_found()),
    };
    let links = state.accounts.links(id).await?;
    let binding = forms::binding(state, headers);
    let tokens = super::service::section(state, &binding, &e.account, &e.permissions).await?;
    let factors = super::factors::section(state, &binding, &e.account, &person_url(id)).await?;
    let body = render(state, &binding, &e, &links, &format!("{factors}{tokens}"), note, alert);
    Ok(binding.attach(view::page(status, &e.account.name, &body)))
}

/// Shows a person.
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<ShowQuery>,
) -> Result<Response, GatewayError> {
    let note = q.done.as_deref().and_then(done_text);
    answer(
        &state,
        &headers,
        &id,
        StatusCode::OK,
        q.path.as_deref().map(|path| explain::Ask {
            path,
            host: q.host.as_deref(),
            method: q.method.as_deref(),
        }),
        note,
        None,
    )
    .await
}

/// After a change: back to the page, with what was done (a reload does not post again).
fn done(id: &str, what: &str) -> Response {
    Redirect::to(&format!("{}?done={what}", person_url(id))).into_response()
}

async fn refused(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    e: AdminError,
) -> Result<Response, GatewayError> {
    if matches!(e, AdminError::NoSuchAccount) {
        return Ok(not_found());
    }
    let status = e.status();
    match e {
        AdminError::Failed(e) => Err(e),
        e => answer(state, headers, id, status, None, None, Some(&e.to_string())).await,
    }
}

/// Saves the ticked usergroups (Save), or leaves them as they are (Cancel).
pub async fn save_usergroups(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawForm(body): RawForm,
) -> Result<Response, GatewayError> {
    let f = Fields::parse(&body);
    if !form_ok(&state, &headers, f.one("csrf")) {
        return answer(&state, &headers, &id, StatusCode::FORBIDDEN, None, None, Some(FOREIGN_FORM)).await;
    }
    if f.one("action") != "save" {
        return Ok(done(&id, "unchanged"));
    }
    match actions::set_usergroups(&state, &admin, &id, &f.all("usergroup")).await {
        Ok(_) => Ok(done(&id, "saved")),
        Err(e) => refused(&state, &headers, &id, e).await,
    }
}

async fn set_disabled(
    state: AppState,
    admin: Admin,
    headers: HeaderMap,
    id: String,
    csrf: &str,
    disabled: bool,
) -> Result<Response, GatewayError> {
    if !form_ok(&state, &headers, csrf) {
        return answer(&state, &headers, &id, StatusCode::FORBIDDEN, None, None, Some(FOREIGN_FORM)).await;
    }
    match actions::set_disabled(&state, &admin, &id, disabled).await {
        Ok(_) => Ok(done(&id, if disabled { "disabled" } else { "enabled" })),
        Err(e) => refused(&state, &headers, &id, e).await,
    }
}

/// Disables the account.
pub async fn disable(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<TokenForm>,
) -> Result<Response, GatewayError> {
    set_disabled(state, admin, headers, id, &f.csrf, true).await
}

/// Enables the account.
pub async fn enable(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<TokenForm>,
) -> Result<Response, GatewayError> {
    set_disabled(state, admin, headers, id, &f.csrf, false).await
}

/// Sets the email address, verified.
pub async fn set_email(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawForm(body): RawForm,
) -> Result<Response, GatewayError> {
    let f = Fields::parse(&body);
    if !form_ok(&state, &headers, f.one("csrf")) {
        return answer(&state, &headers, &id, StatusCode::FORBIDDEN, None, None, Some(FOREIGN_FORM)).await;
    }
    match actions::set_email(&state, &admin, &id, f.one("email")).await {
        Ok(_) => Ok(done(&id, "email")),
        Err(e) => refused(&state, &headers, &id, e).await,
    }
}

/// Links a provider sign-in to the person.
pub async fn link(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawForm(body): RawForm,
) -> Result<Response, GatewayError> {
    let f = Fields::parse(&body);
    if !form_ok(&state, &headers, f.one("csrf")) {
        return answer(&state, &headers, &id, StatusCode::FORBIDDEN, None, None, Some(FOREIGN_FORM)).await;
    }
    match actions::link(&state, &admin, &id, f.one("provider"), f.one("subject")).await {
        Ok(()) => Ok(done(&id, "linked")),
        Err(e) => refused(&state, &headers, &id, e).await,
    }
}

/// Unlinks a provider sign-in from the person.
pub async fn unlink(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawForm(body): RawForm,
) -> Result<Response, GatewayError> {
    let f = Fields::parse(&body);
    if !form_ok(&state, &headers, f.one("csrf")) {
        return answer(&state, &headers, &id, StatusCode::FORBIDDEN, None, None, Some(FOREIGN_FORM)).await;
    }
    match actions::unlink(&state, &admin, &id, f.one("provider"), f.one("subject")).await {
        Ok(()) => Ok(done(&id, "unlinked")),
        Err(e) => refused(&state, &headers, &id, e).await,
    }
}
