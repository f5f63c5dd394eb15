//! The account page's sessions: every live session of the account, and the forms that end
//! one of them or all but this one. A session is named on the page by its handle (see
//! [`SessionKey::handle`]), looked up among the account's own sessions only: a handle of
//! anyone else's session names nothing here.

use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, StatusCode, header};

use super::{Posted, done, posted, refuse};
use crate::error::GatewayError;
use crate::forms::{self, Binding};
use crate::html::esc;
use crate::session::{SessionKey, SessionStore};
use crate::state::AppState;
use crate::visitor::Visitor;
use crate::web::PREFIX;

/// The form value that ends every session but this one.
const OTHERS: &str = "others";

/// A Unix time as `YYYY-MM-DD HH:MM UTC`.
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let (hour, minute) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    // Civil date from days since 1970-01-01 (the proleptic Gregorian calendar).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02} UTC")
}

/// The sessions section.
pub(super) async fn section(
    state: &AppState,
    binding: &Binding,
    this: &SessionKey,
    account_id: &str,
) -> Result<String, GatewayError> {
    let sessions = state.sessions.account_sessions(account_id).await?;
    let end = |value: &str, label: &str| {
        format!(
            "<form method=\"post\" action=\"{PREFIX}/account/sessions/end\">{csrf}\
             <input type=\"hidden\" name=\"session\" value=\"{value}\"><button type=\"submit\">{label}</button></form>",
            csrf = binding.field(state),
            value = esc(value),
            label = esc(label),
        )
    };
    let rows: String = sessions
        .iter()
        .map(|(key, s)| {
            let handle = key.handle();
            let (marker, button) = if key == this {
                ("<strong>This session</strong><br>", end(&handle, "Sign out"))
            } else {
                ("", end(&handle, "End"))
            };
            format!(
                "<tr data-session=\"{handle}\"><td>{marker}Signed in {created} with {provider}<br>\
                 <span class=\"muted\">last seen {seen} · from {addr}<br>{agent}</span></td><td>{button}</td></tr>",
                handle = esc(&handle),
                created = utc(s.created_at),
                provider = esc(&state.config.provider_label(&s.provider)),
                seen = utc(s.last_seen),
                addr = esc(s.client_addr.as_deref().unwrap_or("an unknown address")),
                agent = esc(s.user_agent.as_deref().unwrap_or("an unknown browser")),
            )
        })
        .collect();
    let others = if sessions.iter().any(|(k, _)| k != this) {
        end(OTHERS, "End every other session")
    } else {
        String::new()
    };
    Ok(format!(
        "<section id=\"sessions\"><h2>Sessions</h2><table class=\"sessions\">{rows}</table>{others}</section>"
    ))
}

/// The posted session to end.
#[derive(serde::Deserialize)]
pub struct EndForm {
    #[serde(default)]
    session: String,
    #[serde(default)]
    csrf: String,
}

/// `POST /account/sessions/end`: ends one of the account's sessions, or every other one.
/// Ending this one signs out.
pub async fn end(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Form(f): Form<EndForm>,
) -> Result<Response, GatewayError> {
    let (key, session) = match posted(&state, visitor, &headers, &f.csrf).await? {
        Posted::By(key, session) => (key, session),
        Posted::Answered(resp) => return Ok(resp),
    };
    let me = (&key, &*session);
    let account = &session.account_id;
    let mine = state.sessions.account_sessions(account).await?;
    if f.session == OTHERS {
        let mut ended = 0;
        for (other, s) in mine.iter().filter(|(k, _)| *k != key) {
            state.sessions.delete(other).await?;
            crate::signin::revoke_grant(&state, s).await;
            ended += 1;
        }
        tracing::info!(target: "deskgate::audit", account = %account, ended, "Every other session ended by its owner");
        return Ok(done("ended-others"));
    }
    let Some((target, ended)) = mine.iter().find(|(k, _)| k.handle() == f.session) else {
        let text = "There is no such session of yours: it may have ended already.";
        return refuse(&state, &headers, me, StatusCode::NOT_FOUND, text).await;
    };
    state.sessions.delete(target).await?;
    crate::signin::revoke_grant(&state, ended).await;
    tracing::info!(target: "deskgate::audit", account = %account, "A session ended by its owner");
    if *target == key {
        let mut resp = Redirect::to(&format!("{PREFIX}/login")).into_response();
        resp.headers_mut().append(header::SET_COOKIE, forms::session_cookie(&state, None));
        return Ok(resp);
    }
    Ok(done("ended"))
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn unix_times_read_as_utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_798_761_599), "2026-12-31 23:59 UTC");
        assert_eq!(utc(4_107_542_400), "2100-03-01 00:00 UTC");
    }
}
