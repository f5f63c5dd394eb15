//! `/.deskgate/login/key`: the second step of a password sign-in for an account with a
//! security key or passkey. The password step leaves only a short-lived cookie naming the
//! pending sign-in (see [`crate::passkeys`]); the session is made here, after the key's
//! answer verifies, and records `amr` = `pwd`, `hwk`, `mfa`.

use axum::Form;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use deskgate_provider::Identity;
use http::{HeaderMap, HeaderValue, StatusCode, header};

use super::keys::{CODEC, script_json};
use crate::accounts::Account;
use crate::error::GatewayError;
use crate::forms;
use crate::html;
use crate::metrics::SignIn;
use crate::passkeys::{self, CEREMONY_TTL, KeyRefusal, Step};
use crate::session::SessionKey;
use crate::signin::{self, Refusal};
use crate::state::AppState;
use crate::visitor::Visitor;
use crate::web::{self, CookieAttrs, PREFIX};

fn cookie_name(state: &AppState) -> String {
    format!("{}_keystep", state.config.session.cookie_name)
}

fn step_cookie(state: &AppState, value: Option<&str>) -> HeaderValue {
    let attrs = CookieAttrs {
        path: PREFIX,
        secure: state.config.server.secure,
        max_age: value.map_or(0, |_| CEREMONY_TTL),
        domain: None,
    };
    web::set_cookie(&cookie_name(state), value.unwrap_or(""), attrs)
}

/// Called once the password of `account` checked out: `None` when the account has no key
/// (the caller signs the person in), else the response that takes them to the key step.
pub async fn after_password(
    state: &AppState,
    account: &Account,
    identity: &Identity,
    next: &str,
) -> Result<Option<Response>, GatewayError> {
    match passkeys::begin_sign_in(state, &account.id, identity, next).await? {
        Step::PasswordOnly => Ok(None),
        Step::Key(token) => {
            let mut resp = Redirect::to(&format!("{PREFIX}/login/key")).into_response();
            resp.headers_mut().append(header::SET_COOKIE, step_cookie(state, Some(&token)));
            Ok(Some(resp))
        }
        Step::Unavailable => Ok(Some(html::message(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in unavailable",
            "Your account asks for a security key, which cannot be checked at the moment. \
             Please contact an administrator.",
            Some((&format!("{PREFIX}/login"), "Back to sign-in")),
        ))),
    }
}

fn start_again(state: &AppState, status: StatusCode, text: &str) -> Response {
    let mut resp =
        html::message(status, "Sign in again", text, Some((&format!("{PREFIX}/login"), "Sign in")));
    resp.headers_mut().append(header::SET_COOKIE, step_cookie(state, None));
    resp
}

/// `GET`: asks for the key.
pub async fn show(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, GatewayError> {
    let token = web::cookie(&headers, &cookie_name(&state)).unwrap_or_default().to_owned();
    let Some(pending) = passkeys::peek_sign_in(&state, &token).await? else {
        return Ok(start_again(
            &state,
            StatusCode::BAD_REQUEST,
            "This sign-in has expired. Please sign in again.",
        ));
    };
    // An account with an authenticator app as well may give a code instead (a lost key).
    let code = crate::mfa::has_factor(&state, &pending.account_id).await?;
    Ok(key_page(&state, &headers, &pending.options, &format!("{PREFIX}/login/key"), code))
}

/// The page that asks for a key: `options` for the browser, the answer posted to `action`;
/// with `code`, a button that gives up the key for the code step instead.
fn key_page(
    state: &AppState,
    headers: &HeaderMap,
    options: &impl serde::Serialize,
    action: &str,
    code: bool,
) -> Response {
    let binding = forms::binding(state, headers);
    let code = if code {
        format!(
            "<form method=\"post\" action=\"{PREFIX}/login/key/code\" id=\"code-instead\">{csrf}\
             <button type=\"submit\" class=\"link\">Use a code from your authenticator app or a \
             recovery code instead</button></form>",
            csrf = binding.field(state)
        )
    } else {
        String::new()
    };
    let body = format!(
        "<p>Your account is protected by a security key. Use it to go on.</p>\
         <div class=\"alert\" role=\"alert\" id=\"failed\" hidden></div>\
         <form id=\"key\" method=\"post\" action=\"{action}\">{csrf}\
         <input type=\"hidden\" name=\"credential\">\
         <button type=\"submit\" id=\"use-key\">Use my security key</button></form>\
         {code}<p class=\"muted\"><a href=\"{PREFIX}/login\">Cancel</a></p>\
         <script type=\"application/json\" id=\"options\">{options}</script>\
         <script>{CODEC}\
         const form=document.getElementById('key'),failed=document.getElementById('failed');\
         form.addEventListener('submit',async e=>{{e.preventDefault();failed.hidden=true;\
         try{{const pk=JSON.parse(document.getElementById('options').textContent).publicKey;\
         pk.challenge=b64(pk.challenge);(pk.allowCredentials||[]).forEach(c=>c.id=b64(c.id));\
         const c=await navigator.credentials.get({{publicKey:pk}});\
         form.credential.value=JSON.stringify({{id:c.id,rawId:enc(c.rawId),type:c.type,extensions:{{}},\
         response:{{authenticatorData:enc(c.response.authenticatorData),clientDataJSON:enc(c.response.clientDataJSON),\
         signature:enc(c.response.signature),userHandle:c.response.userHandle?enc(c.response.userHandle):null}}}});\
         form.submit();}}catch(err){{failed.textContent='The key did not answer: '+err.message;failed.hidden=false;}}}});\
         </script>",
        action = html::esc(action),
        csrf = binding.field(state),
        options = script_json(options),
    );
    binding.attach(html::page(StatusCode::OK, "Use your security key", &body))
}

/// The posted switch to a code.
#[derive(serde::Deserialize)]
pub struct SwitchForm {
    #[serde(default)]
    csrf: String,
}

/// `POST code`: gives up the key step for the code step, when the account has an
/// authenticator app. The pending sign-in is used up; its password's result goes on, sealed
/// as the code step keeps it, so the session still waits for a second factor.
pub async fn to_code(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<SwitchForm>,
) -> Result<Response, GatewayError> {
    if !forms::csrf_ok(&state, &headers, &f.csrf) {
        let text = "This form has expired or did not come from this site. Please sign in again.";
        return Ok(start_again(&state, StatusCode::FORBIDDEN, text));
    }
    let token = web::cookie(&headers, &cookie_name(&state)).unwrap_or_default().to_owned();
    let Some(pending) = passkeys::take_sign_in(&state, &token).await? else {
        return Ok(start_again(
            &state,
            StatusCode::BAD_REQUEST,
            "This sign-in has expired. Please sign in again.",
        ));
    };
    if !crate::mfa::has_factor(&state, &pending.account_id).await? {
        let text = "Your account has no authenticator app. Please sign in again and use your security key.";
        return Ok(start_again(&state, StatusCode::BAD_REQUEST, text));
    }
    let step = crate::mfa::SecondStep {
        account_id: pending.account_id,
        identity: pending.identity,
        next: pending.next,
    };
    let mut resp = Redirect::to(&format!("{PREFIX}/mfa")).into_response();
    resp.headers_mut().append(header::SET_COOKIE, crate::mfa::second_step_set_cookie(&state, Some(&step)));
    resp.headers_mut().append(header::SET_COOKIE, step_cookie(&state, None));
    Ok(resp)
}

/// Query of the step-up page.
#[derive(serde::Deserialize)]
pub struct StepUpQuery {
    next: Option<String>,
}

fn to_login(next: &str) -> Response {
    Redirect::to(&format!("{PREFIX}/login?next={}", html::query_value(next))).into_response()
}

/// `GET /mfa/key`: a signed-in session that has not used a second factor (a provider's
/// sign-in, or one from before the key was registered) proves one of the account's keys
/// now; the session then counts it, as a code counts on `/mfa` (step-up).
pub async fn step_up_show(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Query(q): Query<StepUpQuery>,
) -> Result<Response, GatewayError> {
    let next = forms::next_or_root(&state, q.next.as_deref());
    let Visitor::SignedIn { session, .. } = visitor else { return Ok(to_login(&next)) };
    if crate::mfa::satisfied(&session.amr) {
        return Ok(Redirect::to(&next).into_response());
    }
    let placeholder = Identity::new(session.provider.clone(), session.subject.to_string());
    match passkeys::begin_sign_in(&state, &session.account_id, &placeholder, &next).await? {
        Step::PasswordOnly => Ok(Redirect::to(&crate::mfa::enrolment_url(&next)).into_response()),
        Step::Unavailable => Ok(html::message(
            StatusCode::SERVICE_UNAVAILABLE,
            "Security key unavailable",
            "Your security key cannot be checked at the moment. Please contact an administrator.",
            None,
        )),
        Step::Key(token) => {
            let Some(pending) = passkeys::peek_sign_in(&state, &token).await? else {
                return Ok(start_again(&state, StatusCode::BAD_REQUEST, "Please try again."));
            };
            let mut resp = key_page(&state, &headers, &pending.options, &format!("{PREFIX}/mfa/key"), false);
            resp.headers_mut().append(header::SET_COOKIE, step_cookie(&state, Some(&token)));
            Ok(resp)
        }
    }
}

/// `POST /mfa/key`: checks the key's answer and records in the session that a key was used.
pub async fn step_up_submit(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Form(f): Form<KeyForm>,
) -> Result<Response, GatewayError> {
    let Visitor::SignedIn { key, session } = visitor else { return Ok(to_login("/")) };
    if !forms::csrf_ok(&state, &headers, &f.csrf) {
        let text = "This form has expired or did not come from this site. Please try again.";
        return Ok(start_again(&state, StatusCode::FORBIDDEN, text));
    }
    let token = web::cookie(&headers, &cookie_name(&state)).unwrap_or_default().to_owned();
    let pending = match passkeys::finish_sign_in(&state, &token, &f.credential).await? {
        // The step must be this account's: another's (begun in another session) proves nothing here.
        Ok(p) if p.account_id == session.account_id => p,
        Ok(_) | Err(KeyRefusal::Invalid | KeyRefusal::Duplicate | KeyRefusal::TooMany) => {
            tracing::info!(target: "deskgate::audit", account = %session.account_id, "Security key step-up refused");
            let text = "Your security key did not confirm this. Please try again.";
            return Ok(start_again(&state, StatusCode::UNAUTHORIZED, text));
        }
        Err(KeyRefusal::Unknown | KeyRefusal::Malformed) => {
            return Ok(start_again(
                &state,
                StatusCode::BAD_REQUEST,
                "This step has expired. Please try again.",
            ));
        }
    };
    crate::mfa::upgrade(&state, &key, &session, &["hwk"]).await?;
    tracing::info!(target: "deskgate::audit", account = %session.account_id, "Security key given in the session");
    let mut resp = Redirect::to(&pending.next).into_response();
    resp.headers_mut().append(header::SET_COOKIE, step_cookie(&state, None));
    Ok(resp)
}

/// The posted answer.
#[derive(serde::Deserialize)]
pub struct KeyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    credential: String,
}

/// `POST`: checks the key's answer and signs the person in.
pub async fn submit(
    State(state): State<AppState>,
    client: signin::Client,
    headers: HeaderMap,
    Form(f): Form<KeyForm>,
) -> Result<Response, GatewayError> {
    if !forms::csrf_ok(&state, &headers, &f.csrf) {
        let text = "This form has expired or did not come from this site. Please sign in again.";
        return Ok(start_again(&state, StatusCode::FORBIDDEN, text));
    }
    let token = web::cookie(&headers, &cookie_name(&state)).unwrap_or_default().to_owned();
    let pending = match passkeys::finish_sign_in(&state, &token, &f.credential).await? {
        Ok(p) => p,
        Err(KeyRefusal::Unknown) => {
            return Ok(start_again(
                &state,
                StatusCode::BAD_REQUEST,
                "This sign-in has expired. Please sign in again.",
            ));
        }
        Err(KeyRefusal::Malformed) => {
            let text = "The browser's answer was not understood. Please sign in again.";
            return Ok(start_again(&state, StatusCode::BAD_REQUEST, text));
        }
        Err(_) => {
            let text = "Your security key did not confirm this sign-in. Please sign in again.";
            return Ok(start_again(&state, StatusCode::UNAUTHORIZED, text));
        }
    };
    // The account is read again: it may have been disabled while the key was fetched.
    let policy = state.config.account_policy(&pending.identity.provider).cloned().unwrap_or_default();
    let account = match signin::resolve_account(&state, &pending.identity, &policy).await? {
        Ok(a) if a.id == pending.account_id => a,
        Ok(_) | Err(Refusal::NoAccount | Refusal::EmailInUse { .. }) => return Ok(super::login::no_account()),
        Err(Refusal::Disabled) => {
            let text = "This account is disabled. Please contact an administrator.";
            return Ok(start_again(&state, StatusCode::FORBIDDEN, text));
        }
    };
    // The provider id was kept server-side with the pending sign-in: a bounded label.
    state.metrics.sign_in(&pending.identity.provider, SignIn::Success);
    let previous = web::cookie(&headers, &state.config.session.cookie_name).map(SessionKey::from_cookie);
    let mut identity = pending.identity;
    let amr = crate::mfa::with_methods(&crate::mfa::amr_of(&identity, true), &["hwk", "mfa"]);
    identity.attributes.insert(crate::mfa::AMR.to_owned(), amr);
    let cookie = signin::start_session(&state, &account, &identity, &policy, previous, None, &client).await?;
    let mut resp = Redirect::to(&pending.next).into_response();
    resp.headers_mut().append(header::SET_COOKIE, forms::session_cookie(&state, Some(&cookie)));
    resp.headers_mut().append(header::SET_COOKIE, step_cookie(&state, None));
    Ok(resp)
}
