//! Second factors on the admin pages: a person's, with a reset for someone who lost their
//! phone and their recovery codes (written to the audit log), and `/.deskgate/admin/mfa`:
//! for each usergroup that requires a second factor, its members who have not enrolled.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, StatusCode};

use super::person::TokenForm;
use super::{Admin, FOREIGN_FORM, form_ok, membership, view};
use crate::accounts::{Account, AccountQuery, AccountStore, FactorStore};
use crate::error::GatewayError;
use crate::forms::Binding;
use crate::html::{esc, query_value};
use crate::state::AppState;
use crate::web::PREFIX;

/// Most members listed per usergroup on the not-enrolled page.
const LISTED: u64 = 500;

/// The person page's section: whether the account has a second factor, and the reset.
pub(super) async fn section(
    state: &AppState,
    binding: &Binding,
    account: &Account,
    url: &str,
) -> Result<String, GatewayError> {
    let required: Vec<&str> = state
        .config
        .model
        .mfa_usergroups()
        .into_iter()
        .filter(|g| account.usergroups.contains(&g.id))
        .map(|g| g.id.as_str())
        .collect();
    let required = if required.is_empty() {
        String::new()
    } else {
        format!(" <span class=\"muted\">Required by {}.</span>", esc(&required.join(", ")))
    };
    let body = match state.accounts.totp(&account.id).await? {
        Some(_) => {
            let left = state.accounts.recovery_codes_left(&account.id).await?;
            format!(
                "<p id=\"factors\">An authenticator app; {left} recovery codes left.{required}</p>\
                 <form method=\"post\" action=\"{url}/factors/reset\">{}\
                 <p class=\"muted\">For someone who lost their phone and their recovery codes: the person \
                 signs in with the password alone, and enrols again (at once, if a usergroup requires it).</p>\
                 <button type=\"submit\" class=\"danger\">Reset second factors</button></form>",
                binding.field(state)
            )
        }
        None => format!("<p id=\"factors\">None set up.{required}</p>"),
    };
    Ok(format!("<h2>Two-step sign-in</h2>{body}"))
}

/// Removes every second factor of the account.
pub async fn reset(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<TokenForm>,
) -> Result<Response, GatewayError> {
    let url = format!("{PREFIX}/admin/people/{}", query_value(&id));
    if !form_ok(&state, &headers, &f.csrf) {
        return Ok(view::page(
            StatusCode::FORBIDDEN,
            "Two-step sign-in",
            &format!("{}<p><a href=\"{}\">Back</a></p>", view::alert(FOREIGN_FORM), esc(&url)),
        ));
    }
    let Some(account) = state.accounts.by_id(&id).await? else {
        return Ok(view::page(
            StatusCode::NOT_FOUND,
            "No such person",
            "<p>There is no account with this id.</p>",
        ));
    };
    let removed = state.accounts.remove_factors(&id).await?;
    tracing::info!(
        target: "deskgate::audit",
        actor = %admin.account_id,
        account = %id,
        email = account.email.as_deref().unwrap_or("-"),
        removed,
        "Second factors reset by an administrator"
    );
    Ok(Redirect::to(&format!("{url}?done=factors-reset")).into_response())
}

/// `/.deskgate/admin/mfa`: for each usergroup that requires a second factor, who is in it
/// (as far as the account store can tell) and has none.
pub async fn unenrolled(State(state): State<AppState>) -> Result<Response, GatewayError> {
    let model = state.model().await?;
    let policies = state.config.account_policies();
    let mut body = String::new();
    let groups = model.mfa_usergroups();
    if groups.is_empty() {
        body.push_str("<p>No usergroup requires a second factor (<code>mfa = \"required\"</code>).</p>");
    }
    for group in groups {
        let query =
            AccountQuery { usergroup: Some(membership(&model, &policies, &group.id)), ..Default::default() };
        let page = state.accounts.list(&query, 0, LISTED).await?;
        let ids: Vec<String> = page.accounts.iter().map(|l| l.account.id.clone()).collect();
        let enrolled = state.accounts.enrolled(&ids).await?;
        let missing: Vec<&Account> =
            page.accounts.iter().map(|l| &l.account).filter(|a| !enrolled.contains(&a.id)).collect();
        let rows: String = missing
            .iter()
            .map(|a| {
                format!(
                    "<li><a href=\"{PREFIX}/admin/people/{}\">{}</a> {}</li>",
                    query_value(&a.id),
                    esc(&a.name),
                    esc(a.email.as_deref().unwrap_or(""))
                )
            })
            .collect();
        let more = if page.total > LISTED {
            format!("<p class=\"muted\">The first {LISTED} of {} members were checked.</p>", page.total)
        } else {
            String::new()
        };
        let list = if missing.is_empty() {
            "<p class=\"muted\">Everyone in it has enrolled.</p>".to_owned()
        } else {
            format!("<ul class=\"not-enrolled\" data-usergroup=\"{}\">{rows}</ul>", esc(&group.id))
        };
        body.push_str(&format!(
            "<h2>{} <code>{}</code></h2><p>{} of {} members have not enrolled.</p>{list}{more}",
            esc(&group.name),
            esc(&group.id),
            missing.len(),
            page.accounts.len(),
        ));
    }
    body.push_str(&format!("<p><a href=\"{PREFIX}/admin/people\">Back to people</a></p>"));
    Ok(view::page(StatusCode::OK, "Second factors not enrolled", &body))
}
