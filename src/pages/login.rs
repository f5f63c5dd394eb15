//! `/.deskgate/login`: the sign-in form for built-in accounts.

use std::net::SocketAddr;

use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use deskgate_provider::{AuthError, Identity, PasswordProvider};
use http::{HeaderMap, StatusCode, header};

use crate::error::GatewayError;
use crate::forms::{self, Binding};
use crate::html::{self, esc, query_value};
use crate::limits;
use crate::metrics::SignIn;
use crate::mfa;
use crate::session::SessionKey;
use crate::signin::{self, AccountPolicy, Refusal};
use crate::state::AppState;
use crate::visitor::Visitor;
use crate::web::{self, PREFIX};

/// Query of the login page.
#[derive(Debug, serde::Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    /// ingress-nginx's and oauth2-proxy's name for `next`.
    rd: Option<String>,
}

/// The posted form.
#[derive(serde::Deserialize)]
pub struct LoginForm {
    #[serde(default, alias = "email")]
    username: String,
    provider: Option<String>,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    next: Option<String>,
}

/// The password providers the form offers: id and label, built-in accounts first.
fn choices(state: &AppState) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    if state.config.builtin_enabled {
        out.push((deskgate_builtin::PROVIDER_ID, "Email and password"));
    }
    #[cfg(feature = "ldap")]
    out.extend(state.config.ldap.iter().map(|p| (p.id.as_str(), p.label.as_str())));
    out
}

/// The redirect providers the page offers: the link that starts each, and its label.
fn redirect_choices(state: &AppState, next: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    #[cfg(feature = "oidc")]
    out.extend(state.config.oidc.iter().map(|p| {
        (
            format!("{PREFIX}/oidc/{}/start?next={}", p.key, query_value(next)),
            format!("Sign in with {}", p.label),
        )
    }));
    #[cfg(feature = "saml")]
    out.extend(state.config.saml.iter().map(|p| {
        (
            format!("{PREFIX}/saml/{}/start?next={}", p.key, query_value(next)),
            format!("Sign in with {}", p.label),
        )
    }));
    let _ = (state, next);
    out
}

fn form(
    state: &AppState,
    binding: &Binding,
    next: &str,
    entered: &Entered<'_>,
    alert: Option<&str>,
) -> String {
    let alert =
        alert.map_or(String::new(), |a| format!("<div class=\"alert\" role=\"alert\">{}</div>", esc(a)));
    let register = match state.config.registration {
        ref r if r.allows_sign_up() && state.config.builtin_enabled => format!(
            "<p class=\"muted\">No account yet? <a href=\"{PREFIX}/register?next={}\">Register</a></p>",
            esc(&query_value(next))
        ),
        _ => String::new(),
    };
    let forgot = if state.config.password_reset.is_some() && state.config.builtin_enabled {
        format!("<p class=\"muted\"><a href=\"{PREFIX}/forgot\">Forgot your password?</a></p>")
    } else {
        String::new()
    };
    let buttons: String = redirect_choices(state, next)
        .iter()
        .map(|(href, label)| format!("<a class=\"button\" href=\"{}\">{}</a>", esc(href), esc(label)))
        .collect();
    let choices = choices(state);
    if choices.is_empty() {
        return format!("{alert}<div class=\"providers\">{buttons}</div>");
    }
    let buttons = if buttons.is_empty() {
        buttons
    } else {
        format!("<p class=\"or\">or</p><div class=\"providers\">{buttons}</div>")
    };
    let chosen = entered.provider.filter(|p| choices.iter().any(|(id, _)| id == p));
    let chosen = chosen.or(choices.first().map(|(id, _)| *id)).unwrap_or_default();
    let chooser = if choices.len() > 1 {
        let options: String = choices
            .iter()
            .map(|(id, label)| {
                let checked = if *id == chosen { " checked" } else { "" };
                format!(
                    "<label class=\"choice\"><input type=\"radio\" name=\"provider\" value=\"{}\"{checked}> {}</label>",
                    esc(id),
                    esc(label)
                )
            })
            .collect();
        format!("<fieldset><legend>Sign in with</legend>{options}</fieldset>")
    } else {
        format!("<input type=\"hidden\" name=\"provider\" value=\"{}\">", esc(chosen))
    };
    let (label, kind) = if choices.len() == 1 && chosen == deskgate_builtin::PROVIDER_ID {
        ("Email", "email")
    } else {
        ("Email or username", "text")
    };
    format!(
        "{alert}<form method=\"post\" action=\"{PREFIX}/login\">{csrf}{next}{chooser}\
         <label for=\"username\">{label}</label>\
         <input id=\"username\" name=\"username\" type=\"{kind}\" autocomplete=\"username\" required value=\"{user}\">\
         <label for=\"password\">Password</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
         <button type=\"submit\">Sign in</button></form>{forgot}{buttons}{register}",
        csrf = binding.field(state),
        next = forms::next_field(next),
        user = esc(entered.username),
    )
}

/// What the person typed, shown again after a refusal.
#[derive(Default)]
struct Entered<'a> {
    username: &'a str,
    provider: Option<&'a str>,
}

/// Shows the form; a signed-in person is sent on.
pub async fn show(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let next = forms::next_or_root(&state, q.next.as_deref().or(q.rd.as_deref()));
    if let Visitor::SignedIn { .. } = visitor {
        return Redirect::to(&next).into_response();
    }
    // With one way to sign in, and that one elsewhere, go straight there.
    let redirects = redirect_choices(&state, &next);
    if choices(&state).is_empty()
        && let [(href, _)] = redirects.as_slice()
    {
        return Redirect::to(href).into_response();
    }
    let binding = forms::binding(&state, &headers);
    let body = form(&state, &binding, &next, &Entered::default(), None);
    binding.attach(html::page(StatusCode::OK, "Sign in", &body))
}

fn refusal(state: &AppState, headers: &HeaderMap, status: StatusCode, f: &LoginForm, text: &str) -> Response {
    let binding = forms::binding(state, headers);
    let next = forms::next_or_root(state, f.next.as_deref());
    let entered = Entered { username: &f.username, provider: f.provider.as_deref() };
    let body = form(state, &binding, &next, &entered, Some(text));
    binding.attach(html::page(status, "Sign in", &body))
}

/// What a person is told when a provider refuses them; the reason code goes to the log.
fn explain(error: &AuthError, builtin: bool) -> &'static str {
    match error {
        AuthError::InvalidCredentials if builtin => "The email or password is not correct.",
        AuthError::InvalidCredentials => "The username or password is not correct.",
        AuthError::AccountDisabled => "This account is disabled. Please contact an administrator.",
        AuthError::PasswordExpired => {
            "Your password has expired. Change it (for example when signing in to your computer) and try again."
        }
        AuthError::AccountExpired => "This account has expired. Please contact an administrator.",
        AuthError::PasswordMustChange => {
            "You must change your password before you can sign in. Change it (for example when signing in to your computer) and try again."
        }
        AuthError::AccountLocked => {
            "This account is locked after too many failed attempts. Try again later or contact an administrator."
        }
        AuthError::AccountPending(why) => why,
        AuthError::NotAllowed(_) => "You may not sign in here with this account.",
        AuthError::Unavailable(_) | AuthError::Protocol(_) => {
            "Sign-in is unavailable. Please try again shortly."
        }
    }
}

/// The account policy of a password provider, by id.
pub(super) fn password_policy(state: &AppState, provider: &str) -> Option<AccountPolicy> {
    if provider == deskgate_builtin::PROVIDER_ID && state.config.builtin_enabled {
        return Some(AccountPolicy::default());
    }
    #[cfg(feature = "ldap")]
    if let Some(p) = state.config.ldap.iter().find(|p| p.id == provider) {
        return Some(p.policy.clone());
    }
    None
}

/// Checks credentials with the chosen provider.
async fn verify(
    state: &AppState,
    provider: &str,
    username: &str,
    password: &str,
) -> Option<Result<(Identity, AccountPolicy), AuthError>> {
    if provider == deskgate_builtin::PROVIDER_ID && state.config.builtin_enabled {
        return Some(state.builtin.verify(username, password).await.map(|i| (i, AccountPolicy::default())));
    }
    #[cfg(feature = "ldap")]
    if let Some(p) = state.config.ldap.iter().find(|p| p.id == provider) {
        return Some(p.ldap.verify(username, password).await.map(|i| (i, p.policy.clone())));
    }
    None
}

/// Checks the form and signs in.
pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    client: signin::Client,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Result<Response, GatewayError> {
    let next = forms::next_or_root(&state, f.next.as_deref());
    if !forms::csrf_ok(&state, &headers, &f.csrf) {
        let text = "This form has expired or did not come from this site. Please sign in again.";
        return Ok(refusal(&state, &headers, StatusCode::FORBIDDEN, &f, text));
    }
    let default = choices(&state).first().map(|(id, _)| id.to_string()).unwrap_or_default();
    let provider = f.provider.clone().filter(|p| !p.is_empty()).unwrap_or(default);
    let login = format!("{provider}:{}", f.username.trim().to_lowercase());
    let ip = forms::client_ip(&state, peer, &headers);
    // Only configured providers become metric labels: the form's value is the client's.
    let label =
        if choices(&state).iter().any(|(id, _)| *id == provider) { provider.as_str() } else { "unknown" };
    let attempt = match limits::sign_in(&state, &login, ip).await? {
        Ok(a) => a,
        Err(refused) => {
            state.metrics.sign_in(label, SignIn::Refused);
            // Logged as one line a minute by the limit's notice, not one per refusal.
            let minutes = state.config.rate_limit.window.as_secs().div_ceil(60);
            let text =
                format!("Too many failed sign-in attempts. Please wait {minutes} minutes and try again.");
            return Ok(refusal(&state, &headers, refused.status(), &f, &text));
        }
    };
    let Some(verified) = verify(&state, &provider, &f.username, &f.password).await else {
        attempt.abandoned(&state).await?;
        return Ok(refusal(&state, &headers, StatusCode::BAD_REQUEST, &f, "Please choose how to sign in."));
    };
    let (identity, policy) = match verified {
        Ok(found) => found,
        Err(AuthError::Unavailable(e)) => {
            attempt.abandoned(&state).await?;
            if e.is::<deskgate_builtin::Busy>() {
                state.notices.hashing.hit(state.clock.now(), "every password check turn stayed taken");
                return Ok(busy(&state, &headers, &f));
            }
            return Err(GatewayError::IdentitySource(AuthError::Unavailable(e)));
        }
        Err(e) => {
            attempt.failed(&state).await?;
            state.metrics.sign_in(label, SignIn::Failure);
            tracing::info!(
                target: "deskgate::audit",
                client = %ip,
                %provider,
                reason = e.code(),
                "Sign-in failed"
            );
            let builtin = provider == deskgate_builtin::PROVIDER_ID;
            if let (AuthError::AccountPending(_), true, crate::config::Registration::EmailValidation(smtp)) =
                (&e, builtin, &state.config.registration)
                && super::validate::resend(&state, smtp, &f.username, ip).await?
            {
                let text = "Please confirm your email address first: we have just sent you a new link. \
                            Open it, then sign in.";
                return Ok(refusal(&state, &headers, StatusCode::UNAUTHORIZED, &f, text));
            }
            let text = explain(&e, builtin);
            return Ok(refusal(&state, &headers, StatusCode::UNAUTHORIZED, &f, text));
        }
    };
    // The password checked out: whatever the account's state, this was no guess.
    attempt.succeeded(&state).await?;
    let account = match signin::resolve_account(&state, &identity, &policy).await? {
        Ok(a) => a,
        Err(Refusal::Disabled) => {
            state.metrics.sign_in(label, SignIn::Refused);
            tracing::info!(
                target: "deskgate::audit",
                client = %ip,
                %provider,
                subject = %identity.subject,
                "Sign-in refused: account disabled"
            );
            let text = "This account is disabled. Please contact an administrator.";
            return Ok(refusal(&state, &headers, StatusCode::FORBIDDEN, &f, text));
        }
        Err(Refusal::NoAccount) => {
            state.metrics.sign_in(label, SignIn::Refused);
            tracing::info!(
                target: "deskgate::audit",
                %provider,
                subject = %identity.subject,
                "Sign-in refused: no account"
            );
            return Ok(no_account());
        }
        Err(Refusal::EmailInUse { signs_in_with }) => {
            state.metrics.sign_in(label, SignIn::Refused);
            return Ok(email_in_use(&state, &identity, &signs_in_with));
        }
    };
    // A password is one factor: said so, whatever the provider passed along.
    let mut identity = identity;
    identity.attributes.insert(mfa::AMR.to_owned(), vec!["pwd".to_owned()]);
    // A second factor, when the account has one, before any session exists.
    if let Some(step) =
        super::second_factor::after_password(&state, &account, identity.clone(), &next).await?
    {
        return Ok(step);
    }
    state.metrics.sign_in(label, SignIn::Success);
    let previous = web::cookie(&headers, &state.config.session.cookie_name).map(SessionKey::from_cookie);
    let cookie = signin::start_session(&state, &account, &identity, &policy, previous, None, &client).await?;
    let mut resp = Redirect::to(&next).into_response();
    resp.headers_mut().append(header::SET_COOKIE, forms::session_cookie(&state, Some(&cookie)));
    Ok(resp)
}

/// Every password check turn stayed taken for longer than a sign-in waits: try again.
fn busy(state: &AppState, headers: &HeaderMap, f: &LoginForm) -> Response {
    let text = "Too many people are signing in at this moment. Please try again in a few seconds.";
    let mut resp = refusal(state, headers, StatusCode::SERVICE_UNAVAILABLE, f, text);
    resp.headers_mut().insert(header::RETRY_AFTER, http::HeaderValue::from_static("5"));
    resp
}

/// The page for a person whose identity checked out but who has no account here.
/// A provider vouched for an address another account holds and may not link to it (see
/// [`Refusal::EmailInUse`]): what the person, and their administrator, can do.
pub fn email_in_use(state: &AppState, identity: &Identity, signs_in_with: &[String]) -> Response {
    let config = &state.config;
    let this = config.provider_label(&identity.provider);
    let before = if signs_in_with.is_empty() {
        "another way".to_owned()
    } else {
        signs_in_with.iter().map(|p| config.provider_label(p)).collect::<Vec<_>>().join(" or ")
    };
    let text = format!(
        "An account with this email address already exists, and it signs in with {before}: please sign in that way. \
         To sign in to it with {this} as well, ask an administrator to link this sign-in to your account \
         (reference: {} {}). Administrators link it on the person's page, or let {} link by email \
         (link_by_email = true).",
        identity.provider, identity.subject, identity.provider
    );
    html::message(
        StatusCode::CONFLICT,
        "Account already exists",
        &text,
        Some((&format!("{PREFIX}/login"), "Back to sign-in")),
    )
}

pub fn no_account() -> Response {
    html::message(
        StatusCode::FORBIDDEN,
        "No account",
        "You signed in correctly, but there is no account for you here. Please ask an administrator to create one.",
        Some((&format!("{PREFIX}/login"), "Back to sign-in")),
    )
}
