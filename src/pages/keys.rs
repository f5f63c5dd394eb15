//! `/.deskgate/account/keys`: a signed-in person registers security keys and passkeys (each
//! with a name), sees them, and removes them. With at least one key, signing in with a
//! password asks for a key as well (see `key_login`).
//!
//! Registering is two requests: `begin` (a CSRF-checked form post, answered with the JSON
//! options for `navigator.credentials.create`) and the page's own form post with the
//! browser's answer. The page's small script only converts between JSON and the binary
//! values the browser API takes.

use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::accounts::{FactorStore, KeyStore, StoredKey};
use crate::error::GatewayError;
use crate::forms::{self, Binding};
use crate::html::{self, esc, query_value};
use crate::mfa;
use crate::passkeys::{self, Begun, KeyRefusal, NAME_MAX};
use crate::session::{Session, SessionKey};
use crate::state::AppState;
use crate::visitor::Visitor;
use crate::web::PREFIX;

#[cfg(test)]
mod tests {
    #[test]
    fn dates_are_shown_in_the_civil_calendar() {
        assert_eq!(super::date(0), "1970-01-01 00:00 UTC");
        assert_eq!(super::date(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(super::date(1_764_979_200 + 3_660), "2025-12-06 01:01 UTC");
    }

    #[test]
    fn key_names_are_one_trimmed_line_of_bounded_length() {
        assert_eq!(super::key_name("  Office key "), Some("Office key"));
        for bad in ["", "   ", "a\nb", "tab\there", &"x".repeat(65)] {
            assert_eq!(super::key_name(bad), None, "{bad:?}");
        }
        assert!(super::key_name(&"é".repeat(64)).is_some(), "characters, not bytes");
    }

    #[test]
    fn inline_json_cannot_end_its_script_element() {
        let s = super::script_json(&"</script><script>alert(1)</script>&");
        assert!(!s.contains('<') && !s.contains('>') && !s.contains('&'), "{s}");
    }
}

/// Where the page lives.
const PAGE: &str = "/account/keys";

/// JSON for an inline `<script type="application/json">`: nothing in it can end the element.
pub(super) fn script_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value)
        .unwrap_or_else(|_| "null".into())
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// Conversions between the JSON the server speaks (binary values as base64url) and the
/// browser API (ArrayBuffers).
pub(super) const CODEC: &str = "const b64=s=>Uint8Array.from(atob(s.replace(/-/g,'+').replace(/_/g,'/')+\
'='.repeat((4-s.length%4)%4)),c=>c.charCodeAt(0));\
const enc=b=>btoa(String.fromCharCode(...new Uint8Array(b))).replace(/\\+/g,'-').replace(/\\//g,'_').replace(/=+$/,'');";

fn not_offered() -> Response {
    html::message(
        StatusCode::NOT_FOUND,
        "Not found",
        "Security keys are not available here: this gateway's public URL names no domain.",
        None,
    )
}

fn login_redirect() -> Response {
    Redirect::to(&format!("{PREFIX}/login?next={}", query_value(&format!("{PREFIX}{PAGE}")))).into_response()
}

/// `YYYY-MM-DD HH:MM UTC` of Unix seconds (the civil calendar from a day count).
fn date(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or_default();
    let (hh, mm) = (secs % 86_400 / 3600, secs % 3600 / 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02} UTC")
}

fn listing(state: &AppState, binding: &Binding, keys: &[StoredKey]) -> String {
    if keys.is_empty() {
        return "<p class=\"muted\">No security key yet: you sign in with your password alone.</p>".into();
    }
    let rows: String = keys
        .iter()
        .map(|k| {
            format!(
                "<tr><td class=\"key-name\">{}</td><td>{}</td><td>{}</td><td>\
                 <form method=\"post\" action=\"{PREFIX}{PAGE}/remove\">{}\
                 <input type=\"hidden\" name=\"id\" value=\"{}\">\
                 <button type=\"submit\" class=\"remove\">Remove</button></form></td></tr>",
                esc(&k.name),
                date(k.created_at),
                k.last_used_at.map_or_else(|| "never".into(), date),
                binding.field(state),
                esc(&k.id),
            )
        })
        .collect();
    format!(
        "<p>Signing in asks for one of these after your password.</p>\
         <table id=\"keys\"><thead><tr><th>Name</th><th>Added</th><th>Last used</th><th></th></tr></thead>\
         <tbody>{rows}</tbody></table>"
    )
}

fn page(
    state: &AppState,
    binding: &Binding,
    keys: &[StoredKey],
    status: StatusCode,
    alert: Option<&str>,
) -> Response {
    let alert = alert.map_or(String::new(), |a| {
        format!("<div class=\"alert\" role=\"alert\" id=\"alert\">{}</div>", esc(a))
    });
    let body = format!(
        "{alert}<div class=\"alert\" role=\"alert\" id=\"failed\" hidden></div>{list}\
         <h2>Add a security key or passkey</h2>\
         <form id=\"add\" method=\"post\" action=\"{PREFIX}{PAGE}\">{csrf}\
         <input type=\"hidden\" name=\"ceremony\"><input type=\"hidden\" name=\"credential\">\
         <label for=\"name\">Name (for example \"Office key\")</label>\
         <input id=\"name\" name=\"name\" required maxlength=\"{NAME_MAX}\">\
         <button type=\"submit\">Add</button></form>\
         <p class=\"muted\"><a href=\"{PREFIX}\">Back</a></p>\
         <script>{CODEC}\
         const form=document.getElementById('add'),failed=document.getElementById('failed');\
         form.addEventListener('submit',async e=>{{e.preventDefault();failed.hidden=true;\
         try{{const r=await fetch('{PREFIX}{PAGE}/begin',{{method:'POST',credentials:'same-origin',\
         body:new URLSearchParams({{csrf:form.csrf.value}})}});\
         if(!r.ok)throw new Error('the server refused to start ('+r.status+')');\
         const s=await r.json(),pk=s.options.publicKey;\
         pk.challenge=b64(pk.challenge);pk.user.id=b64(pk.user.id);\
         (pk.excludeCredentials||[]).forEach(c=>c.id=b64(c.id));\
         const c=await navigator.credentials.create({{publicKey:pk}});\
         form.ceremony.value=s.ceremony;\
         form.credential.value=JSON.stringify({{id:c.id,rawId:enc(c.rawId),type:c.type,extensions:{{}},\
         response:{{attestationObject:enc(c.response.attestationObject),clientDataJSON:enc(c.response.clientDataJSON)}}}});\
         form.submit();}}catch(err){{failed.textContent='The key was not added: '+err.message;failed.hidden=false;}}}});\
         </script>",
        list = listing(state, binding, keys),
        csrf = binding.field(state),
    );
    html::page(status, "Security keys", &body)
}

/// Whether this session may add or remove a key: it used a second factor, or the account
/// has none. Otherwise a session that skipped the account's factor (a provider sign-in, say)
/// could plant a key of its own, or take the account's away.
async fn may_change(state: &AppState, session: &Session) -> Result<bool, GatewayError> {
    Ok(mfa::satisfied(&session.amr)
        || state.accounts.enrolled(std::slice::from_ref(&session.account_id)).await?.is_empty())
}

const FACTOR_FIRST: &str = "Your account has a second factor this session did not use: give it first \
     (/.deskgate/mfa), then change your keys.";

/// `GET`: the keys and the form to add one.
pub async fn show(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
) -> Result<Response, GatewayError> {
    let Some((_, session)) = super::account::signed_in(visitor) else { return Ok(login_redirect()) };
    if passkeys::relying_party(&state).is_none() {
        return Ok(not_offered());
    }
    let keys = state.accounts.keys(&session.account_id).await?;
    let binding = forms::binding(&state, &headers);
    let resp = page(&state, &binding, &keys, StatusCode::OK, None);
    Ok(binding.attach(resp))
}

/// The posted `begin` form.
#[derive(serde::Deserialize)]
pub struct BeginForm {
    #[serde(default)]
    csrf: String,
}

fn json(status: StatusCode, body: String) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// `POST begin`: starts a registration; JSON `{ceremony, options}`.
pub async fn begin(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Form(f): Form<BeginForm>,
) -> Result<Response, GatewayError> {
    let Some((_, session)) = super::account::signed_in(visitor) else {
        return Ok(json(StatusCode::UNAUTHORIZED, r#"{"error":"not signed in"}"#.into()));
    };
    if !forms::csrf_ok(&state, &headers, &f.csrf) {
        return Ok(json(StatusCode::FORBIDDEN, r#"{"error":"the form has expired"}"#.into()));
    }
    if !may_change(&state, &session).await? {
        return Ok(json(StatusCode::FORBIDDEN, serde_json::json!({ "error": FACTOR_FIRST }).to_string()));
    }
    let login = session.email.clone().unwrap_or_else(|| session.name.clone());
    let (ceremony, options) =
        match passkeys::begin_registration(&state, &session.account_id, &login, &session.name).await? {
            Begun::Started(ceremony, options) => (ceremony, options),
            Begun::NotOffered => {
                return Ok(json(
                    StatusCode::NOT_FOUND,
                    r#"{"error":"security keys are not available"}"#.into(),
                ));
            }
            Begun::TooMany => {
                return Ok(json(
                    StatusCode::TOO_MANY_REQUESTS,
                    r#"{"error":"too many registrations started"}"#.into(),
                ));
            }
        };
    let body = serde_json::json!({ "ceremony": ceremony, "options": options });
    Ok(json(StatusCode::OK, body.to_string()))
}

/// The posted registration.
#[derive(serde::Deserialize)]
pub struct FinishForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    ceremony: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    credential: String,
}

/// A key name as kept: trimmed, one line, not empty, at most [`NAME_MAX`] characters.
fn key_name(name: &str) -> Option<&str> {
    let name = name.trim();
    let fits = !name.is_empty() && name.chars().count() <= NAME_MAX && !name.chars().any(char::is_control);
    fits.then_some(name)
}

async fn again(
    state: &AppState,
    headers: &HeaderMap,
    account_id: &str,
    status: StatusCode,
    text: &str,
) -> Result<Response, GatewayError> {
    let keys = state.accounts.keys(account_id).await?;
    let binding = forms::binding(state, headers);
    let resp = page(state, &binding, &keys, status, Some(text));
    Ok(binding.attach(resp))
}

/// The signed-in person behind a posted form with a valid CSRF token; else the answer to give.
async fn poster(
    state: &AppState,
    visitor: Visitor,
    headers: &HeaderMap,
    csrf: &str,
) -> Result<Result<(SessionKey, std::sync::Arc<Session>), Response>, GatewayError> {
    let Some((key, session)) = super::account::signed_in(visitor) else { return Ok(Err(login_redirect())) };
    if !forms::csrf_ok(state, headers, csrf) {
        let text = "This form has expired or did not come from this site. Please try again.";
        return again(state, headers, &session.account_id, StatusCode::FORBIDDEN, text).await.map(Err);
    }
    Ok(Ok((key, session)))
}

/// `POST`: the browser's answer; stores the key.
pub async fn finish(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Form(f): Form<FinishForm>,
) -> Result<Response, GatewayError> {
    let (key, session) = match poster(&state, visitor, &headers, &f.csrf).await? {
        Ok(s) => s,
        Err(answer) => return Ok(answer),
    };
    let account = session.account_id.as_str();
    let Some(name) = key_name(&f.name) else {
        let text = "Please give the key a name of one line, at most 64 characters.";
        return again(&state, &headers, account, StatusCode::UNPROCESSABLE_ENTITY, text).await;
    };
    if !may_change(&state, &session).await? {
        return again(&state, &headers, account, StatusCode::FORBIDDEN, FACTOR_FIRST).await;
    }
    let (status, text) =
        match passkeys::finish_registration(&state, account, &f.ceremony, &f.credential, name).await? {
            Ok(_) => {
                // Registering the account's first factor proves the key now: the session
                // counts as having used it (a usergroup that requires one lets it on).
                if !mfa::satisfied(&session.amr) {
                    mfa::upgrade(&state, &key, &session, &["hwk"]).await?;
                }
                return Ok(Redirect::to(&format!("{PREFIX}{PAGE}")).into_response());
            }
            Err(KeyRefusal::Unknown) => {
                (StatusCode::BAD_REQUEST, "This registration has expired. Please try again.")
            }
            Err(KeyRefusal::Malformed | KeyRefusal::Invalid) => {
                (StatusCode::BAD_REQUEST, "The key's answer could not be verified. Please try again.")
            }
            Err(KeyRefusal::Duplicate) => (StatusCode::CONFLICT, "This key is already registered."),
            Err(KeyRefusal::TooMany) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "You have as many keys as you may: remove one first.")
            }
        };
    again(&state, &headers, account, status, text).await
}

/// The posted removal.
#[derive(serde::Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
}

/// `POST remove`: removes one of the person's own keys.
pub async fn remove(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Form(f): Form<RemoveForm>,
) -> Result<Response, GatewayError> {
    let (_, session) = match poster(&state, visitor, &headers, &f.csrf).await? {
        Ok(s) => s,
        Err(answer) => return Ok(answer),
    };
    if !may_change(&state, &session).await? {
        return again(&state, &headers, &session.account_id, StatusCode::FORBIDDEN, FACTOR_FIRST).await;
    }
    let account = session.account_id.as_str();
    if f.id.len() > 64 || !state.accounts.remove_key(account, &f.id).await? {
        return again(&state, &headers, account, StatusCode::NOT_FOUND, "There is no such key.").await;
    }
    tracing::info!(target: "deskgate::audit", account = %account, key = %f.id.escape_debug(), "Security key removed");
    Ok(Redirect::to(&format!("{PREFIX}{PAGE}")).into_response())
}
