//! `/.deskgate/admin/people`: the list of people with search, a usergroup filter and
//! paging; and creating an account.

use axum::extract::{Query, RawForm, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, StatusCode};

use super::actions::{self, AdminError, Creation};
use super::{Admin, Fields, assignable, form_ok, membership, view};
use crate::accounts::{AccountQuery, AccountStatus, AccountStore, Listed};
use crate::config::Config;
use crate::error::GatewayError;
use crate::explain::{Claimed, claimed_member};
use crate::forms::{self, Binding};
use crate::html::{esc, query_value};
use crate::state::AppState;
use crate::usergroups::{EVERYONE, Model, REGISTERED};
use crate::web::PREFIX;

/// People per page.
const PER_PAGE: u64 = 25;

/// Query of the list.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    usergroup: Option<String>,
    page: Option<u64>,
}

/// The custom usergroups an account is in by what the store, the config and its providers'
/// last word say.
pub(super) fn held_custom(config: &Config, model: &Model, listed: &Listed) -> Vec<String> {
    let a = &listed.account;
    let claimed = Claimed::new(config, &listed.claims);
    let (provider, named) = claimed.for_member(model);
    let member = claimed_member(a, &provider, &named);
    model.explain(&member).into_keys().filter(|id| id != EVERYONE && id != REGISTERED).collect()
}

/// The organizations a listed account belongs to.
pub(super) fn organizations<'m>(
    model: &'m Model,
    listed: &Listed,
) -> Vec<&'m crate::usergroups::Organization> {
    let named: Vec<String> = listed.claims.iter().flat_map(|c| c.organizations.iter().cloned()).collect();
    // Only a verified address makes a member by domain.
    let email = listed.account.email.as_deref().filter(|_| listed.account.email_verified);
    model.organizations_of(email, &named)
}

fn link(q: &str, usergroup: Option<&str>, page: u64) -> String {
    let mut parts = Vec::new();
    if !q.is_empty() {
        parts.push(format!("q={}", query_value(q)));
    }
    if let Some(g) = usergroup {
        parts.push(format!("usergroup={}", query_value(g)));
    }
    if page > 1 {
        parts.push(format!("page={page}"));
    }
    let query = if parts.is_empty() { String::new() } else { format!("?{}", parts.join("&")) };
    format!("{PREFIX}/admin/people{query}")
}

/// Lists people.
pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Response, GatewayError> {
    let model = &*state.model().await?;
    let groups: Vec<_> = assignable(model).collect();
    let policies = state.config.account_policies();
    let memberships: Vec<_> = groups.iter().map(|g| membership(model, &policies, &g.id)).collect();
    let counts = state.accounts.count_by_usergroup(&memberships).await?;
    let everybody = state.accounts.list(&AccountQuery::default(), 0, 0).await?.total;
    let text = q.q.as_deref().map(str::trim).unwrap_or_default().to_owned();
    let wanted = q.usergroup.as_deref().filter(|g| !g.is_empty());
    let selected = wanted.and_then(|w| groups.iter().find(|g| g.id == w)).map(|g| g.id.as_str());
    let page = q.page.unwrap_or(1).max(1);
    let query = AccountQuery {
        text: Some(text.clone()).filter(|t| !t.is_empty()),
        usergroup: selected.map(|g| membership(model, &state.config.account_policies(), g)),
        status: None,
    };
    let listing = state.accounts.list(&query, (page - 1) * PER_PAGE, PER_PAGE).await?;

    let mut body = String::new();
    if wanted.is_some() && selected.is_none() {
        body.push_str(&view::alert("There is no such usergroup to filter by; showing everyone."));
    }
    // Usergroups nobody is in are left out: there is nothing to filter for.
    let current = |on: bool| if on { " aria-current=\"true\"" } else { "" };
    let mut filter = format!(
        "<li><a href=\"{}\"{}>All people ({everybody})</a></li>",
        esc(&link(&text, None, 1)),
        current(selected.is_none())
    );
    for (g, n) in groups.iter().zip(&counts) {
        if *n > 0 || selected == Some(g.id.as_str()) {
            filter.push_str(&format!(
                "<li><a href=\"{}\" data-usergroup=\"{}\"{}>{} ({n})</a></li>",
                esc(&link(&text, Some(&g.id), 1)),
                esc(&g.id),
                current(selected == Some(g.id.as_str())),
                esc(&g.name)
            ));
        }
    }
    body.push_str(&format!(
        "<form method=\"get\" action=\"{PREFIX}/admin/people\" role=\"search\">\
         <label for=\"q\">Search by email or name</label>\
         <input id=\"q\" name=\"q\" type=\"search\" value=\"{}\">{}\
         <button type=\"submit\">Search</button></form>\
         <nav class=\"filter\" aria-label=\"Filter by usergroup\"><ul>{filter}</ul></nav>\
         <p class=\"muted\">A usergroup's count is its members: accounts it is assigned to, accounts \
         the config assigns it to, members of a linked organization, and accounts an identity \
         provider put in a mapped group at their last sign-in through it (disabled accounts \
         included).</p>",
        esc(&text),
        selected.map_or(String::new(), |g| format!(
            "<input type=\"hidden\" name=\"usergroup\" value=\"{}\">",
            esc(g)
        )),
    ));
    let rows: String = listing
        .accounts
        .iter()
        .map(|l| {
            let a = &l.account;
            let names: Vec<String> = held_custom(&state.config, model, l)
                .iter()
                .map(|id| esc(model.usergroups.get(id).map_or(id.as_str(), |g| g.name.as_str())))
                .collect();
            let status = match (a.disabled, a.status) {
                (true, _) => "<span class=\"badge\">Disabled</span>",
                (false, AccountStatus::Active) => "Enabled",
                (false, AccountStatus::PendingValidation) => "Waits for its email address to be confirmed",
                (false, AccountStatus::PendingApproval) => "Waits for approval",
                (false, AccountStatus::Rejected) => "<span class=\"badge\">Sign-up rejected</span>",
            };
            let orgs: Vec<String> =
                organizations(model, l).iter().map(|o| esc(&o.name)).collect();
            format!(
                "<tr><td><a href=\"{PREFIX}/admin/people/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{status}</td></tr>",
                esc(&query_value(&a.id)),
                esc(&a.name),
                esc(a.email.as_deref().unwrap_or("—")),
                esc(&l.providers.join(", ")),
                if orgs.is_empty() { "—".to_owned() } else { orgs.join(", ") },
                names.join(", "),
            )
        })
        .collect();
    let first = if listing.accounts.is_empty() { 0 } else { (page - 1) * PER_PAGE + 1 };
    let last = (page - 1) * PER_PAGE + listing.accounts.len() as u64;
    body.push_str(&format!(
        "<table id=\"people\"><caption>Showing {first}–{last} of {}</caption><thead><tr>\
         <th scope=\"col\">Name</th><th scope=\"col\">Email</th><th scope=\"col\">Signs in with</th>\
         <th scope=\"col\">Organization</th><th scope=\"col\">Usergroups</th><th scope=\"col\">Status</th></tr></thead><tbody>{rows}</tbody></table>",
        listing.total
    ));
    let mut pages = Vec::new();
    if page > 1 {
        pages.push(format!(
            "<a rel=\"prev\" href=\"{}\">Previous page</a>",
            esc(&link(&text, selected, page - 1))
        ));
    }
    if last < listing.total {
        pages.push(format!(
            "<a rel=\"next\" href=\"{}\">Next page</a>",
            esc(&link(&text, selected, page + 1))
        ));
    }
    if !pages.is_empty() {
        body.push_str(&format!("<nav aria-label=\"Pages\"><p>{}</p></nav>", pages.join(" · ")));
    }
    body.push_str(&format!(
        "<p><a class=\"button\" href=\"{PREFIX}/admin/people/new\">Create an account</a></p>"
    ));
    Ok(view::page(StatusCode::OK, "People", &body))
}

fn create_form(state: &AppState, binding: &Binding, entered: &Creation, alert: Option<&str>) -> String {
    let boxes = view::usergroup_boxes(&state.config.model, &entered.usergroups, |_| String::new());
    format!(
        "{}<form method=\"post\" action=\"{PREFIX}/admin/people\">{}\
         <div class=\"field\"><label for=\"name\">Name</label>\
         <input id=\"name\" name=\"name\" type=\"text\" required maxlength=\"100\" autocomplete=\"off\" value=\"{}\"></div>\
         <div class=\"field\"><label for=\"email\">Email</label>\
         <input id=\"email\" name=\"email\" type=\"email\" required autocomplete=\"off\" value=\"{}\"></div>\
         <div class=\"field\"><label for=\"password\">Password</label>\
         <input id=\"password\" name=\"password\" type=\"password\" minlength=\"10\" autocomplete=\"new-password\" \
         aria-describedby=\"password-help\">\
         <p id=\"password-help\" class=\"muted\">At least 10 characters. Leave it empty for an account that \
         signs in only through an identity provider that links accounts by email.</p></div>\
         <fieldset><legend>Usergroups</legend>{boxes}</fieldset>\
         <button type=\"submit\">Create account</button>\
         <a class=\"button secondary\" href=\"{PREFIX}/admin/people\">Cancel</a></form>",
        alert.map(view::alert).unwrap_or_default(),
        binding.field(state),
        esc(&entered.name),
        esc(&entered.email),
    )
}

/// The form for a new account.
pub async fn new_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let binding = forms::binding(&state, &headers);
    let body = create_form(&state, &binding, &Creation::default(), None)
        + &super::service::create_form(&state, &binding);
    binding.attach(view::page(StatusCode::OK, "Create an account", &body))
}

/// Creates an account and shows it.
pub async fn create(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    RawForm(body): RawForm,
) -> Result<Response, GatewayError> {
    let f = Fields::parse(&body);
    let entered = Creation {
        email: f.one("email").to_owned(),
        name: f.one("name").to_owned(),
        password: f.one("password").to_owned(),
        usergroups: f.all("usergroup"),
    };
    let again = |status: StatusCode, text: &str, entered: &Creation| {
        let binding = forms::binding(&state, &headers);
        let body = create_form(&state, &binding, entered, Some(text));
        binding.attach(view::page(status, "Create an account", &body))
    };
    if !form_ok(&state, &headers, f.one("csrf")) {
        let text =
            "This form has expired or did not come from this site. Nothing was created; please try again.";
        return Ok(again(StatusCode::FORBIDDEN, text, &entered));
    }
    // Shown again after a refusal, the password not.
    let shown = Creation {
        email: entered.email.clone(),
        name: entered.name.clone(),
        password: String::new(),
        usergroups: entered.usergroups.clone(),
    };
    match actions::create(&state, &admin, entered).await {
        Ok(a) => Ok(Redirect::to(&format!("{PREFIX}/admin/people/{}?done=created", query_value(&a.id)))
            .into_response()),
        Err(AdminError::Failed(e)) => Err(e),
        Err(AdminError::EmailTaken) => {
            Ok(again(StatusCode::CONFLICT, "An account with this email already exists.", &shown))
        }
        Err(e) => Ok(again(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string(), &shown)),
    }
}
