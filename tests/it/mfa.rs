//! Second factors: enrolling an authenticator app (codes computed from the secret in the
//! QR code's `otpauth://` URI), the code step of a password sign-in, recovery codes, wrong
//! codes limited, `mfa = "required"` on a usergroup (enrol before anything else) and on a
//! rule (step-up), an OIDC sign-in whose token says `amr: ["mfa"]`, and what the backend is
//! told. Gateways run on 19910–19922; the OIDC test uses 19910, which tests/run registers
//! with the provider.

use std::time::Duration;

use deskgate::accounts::FactorStore;
use deskgate::mfa::totp;

use crate::browser::Chromium;
use crate::support::*;

const PASSWORD: &str = "correct horse battery";

/// The helpdesk with `agents` requiring a second factor and `/api/tickets` asking for one.
fn model() -> String {
    let rules = HELPDESK.replace(
        "path = \"/api/tickets\"\npermission = \"tickets.read\"",
        "path = \"/api/tickets\"\npermission = \"tickets.read\"\nmfa = \"required\"",
    );
    assert_ne!(rules, HELPDESK, "the tickets rule is where it was");
    format!(
        "{rules}\n[usergroups.agents]\nname = \"Agents\"\npermissions = [\"kb.category.advanced\"]\nmfa = \"required\"\n\
         [usergroups.admins]\npermissions = [\"deskgate.admin\"]\n"
    )
}

/// Ports of this module's gateways, a turn each (the OIDC one is fixed by the provider).
static PORTS: [tokio::sync::Mutex<()>; 13] = [const { tokio::sync::Mutex::const_new(()) }; 13];

async fn stack_on(port: u16, head: String) -> (Stack, tokio::sync::MutexGuard<'static, ()>) {
    stack_serving(port, head, String::new()).await
}

async fn stack_serving(
    port: u16,
    head: String,
    server: String,
) -> (Stack, tokio::sync::MutexGuard<'static, ()>) {
    let turn = PORTS[usize::from(port - 19910)].lock().await;
    for _ in 0..100 {
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let options = Options {
        server,
        head,
        model: model(),
        port: Some(port),
        files: vec![crate::oidc::SECRET_FILE],
        ..Default::default()
    };
    (start(options).await, turn)
}

/// The code of the stack's current 30-second step.
fn code_now(stack: &Stack, secret: &str) -> String {
    totp::code_at(secret, stack.clock.now() / totp::STEP).expect("a code")
}

/// The next step's code: the clock moves on a step first, as a person's next sign-in would.
fn next_code(stack: &Stack, secret: &str) -> String {
    stack.clock.advance(totp::STEP);
    code_now(stack, secret)
}

/// The secret in a page's `otpauth://` URI.
fn secret_in(body: &str) -> String {
    let uri = body.split("data-otpauth=\"").nth(1).and_then(|r| r.split('"').next()).expect("an otpauth URI");
    let uri = uri.replace("&amp;", "&");
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    let secret = uri.split("secret=").nth(1).and_then(|r| r.split('&').next()).expect("a secret");
    secret.to_owned()
}

/// Enrols an authenticator app on the security page; returns the secret and the recovery codes.
async fn enrol(b: &mut Browser, stack: &Stack) -> (String, Vec<String>) {
    let page = b.get("/.deskgate/account/security").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("<svg"), "the QR code is an inline SVG");
    let secret = secret_in(&page.body);
    let form = [
        ("csrf", page.field("csrf").expect("csrf")),
        ("secret", page.field("secret").expect("sealed secret")),
        ("code", code_now(stack, &secret)),
        ("next", "/".to_owned()),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let done = b.post("/.deskgate/account/security/totp", &form).await;
    assert_eq!(done.status, 200, "{}", done.body);
    let codes: Vec<String> = done
        .body
        .split("<li><code>")
        .skip(1)
        .filter_map(|r| r.split("</code>").next())
        .map(str::to_owned)
        .collect();
    assert_eq!(codes.len(), 10, "ten recovery codes: {}", done.body);
    (secret, codes)
}

/// Signs in with the password; returns the answer (303 to the code form for an account
/// with a second factor).
async fn password(b: &mut Browser, email: &str) -> Page {
    b.sign_in(email, PASSWORD).await
}

/// Posts a code on the code form.
async fn give_code(b: &mut Browser, code: &str) -> Page {
    let form = b.get("/.deskgate/mfa").await;
    assert_eq!(form.status, 200, "{}", form.body);
    let csrf = form.field("csrf").expect("csrf");
    b.post("/.deskgate/mfa", &[("code", code), ("csrf", &csrf), ("next", "/")]).await
}

/// A signed-in browser of a new account that has an authenticator app, and its secret and
/// recovery codes; signed out again.
async fn enrolled(stack: &Stack, email: &str, groups: &[&str]) -> (Browser, String, Vec<String>) {
    account(stack, email, "Second Factor", PASSWORD, groups).await;
    let mut b = Browser::new(stack);
    assert_eq!(password(&mut b, email).await.status, 303);
    let (secret, codes) = enrol(&mut b, stack).await;
    b.sign_out().await;
    assert!(!b.is_signed_in().await);
    (b, secret, codes)
}

#[tokio::test]
async fn chromium_enrols_an_authenticator_app_then_signs_in_with_password_and_code() {
    let Some(driver) = peer("DESKGATE_TEST_CHROMEDRIVER") else { return };
    let (stack, _turn) = stack_on(19911, String::new()).await;
    account(&stack, "tess@example.org", "Tess Totp", PASSWORD, &[]).await;
    let chrome = Chromium::start(&driver).await;
    let sign_in = async |chrome: &Chromium| {
        chrome.go(&format!("{}/.deskgate/login", stack.base)).await;
        chrome.type_into("input[name=username]", "tess@example.org").await;
        chrome.type_into("input[name=password]", PASSWORD).await;
        chrome.click("form[action$='/login'] button").await;
    };
    sign_in(&chrome).await;
    chrome.wait_for_url("the home page", |u| u == format!("{}/", stack.base)).await;

    // From the session page to enrolment; the code comes from the QR code's URI.
    chrome.go(&format!("{}/.deskgate/", stack.base)).await;
    chrome.click("a[href$='/.deskgate/account/security']").await;
    chrome.wait_for_url("the security page", |u| u.contains("/.deskgate/account/security")).await;
    let secret = secret_in(&chrome.source().await);
    chrome.type_into("input[name=code]", &code_now(&stack, &secret)).await;
    chrome.click("form[action$='/account/security/totp'] button").await;
    let began = std::time::Instant::now();
    while !chrome.source().await.contains("recovery-codes") {
        assert!(began.elapsed() < Duration::from_secs(20), "no codes: {}", chrome.source().await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Signed out, the password alone is not enough: the code is asked for next.
    chrome.go(&format!("{}/.deskgate/logout", stack.base)).await;
    chrome.click("form[action$='/logout'] button").await;
    chrome.wait_for_url("signed out", |u| !u.contains("/logout")).await;
    sign_in(&chrome).await;
    chrome.wait_for_url("the code form", |u| u.ends_with("/.deskgate/mfa")).await;
    chrome.type_into("input[name=code]", &next_code(&stack, &secret)).await;
    chrome.click("form[action$='/mfa'] button").await;
    chrome.wait_for_url("the home page", |u| u == format!("{}/", stack.base)).await;
    chrome.go(&format!("{}/whoami", stack.base)).await;
    let seen = chrome.source().await;
    assert!(seen.contains("tess@example.org"), "signed in: {seen}");
    assert!(seen.contains("\"x-deskgate-amr\":\"pwd,otp,mfa\""), "the backend is told: {seen}");
    chrome.quit().await;
}

#[tokio::test]
async fn a_recovery_code_works_once() {
    let (stack, _turn) = stack_on(19912, String::new()).await;
    let (mut b, _secret, codes) = enrolled(&stack, "rico@example.org", &[]).await;
    let first = password(&mut b, "rico@example.org").await;
    assert_eq!(first.location(), Some("/.deskgate/mfa"), "{}", first.body);
    // Typed as people type them: upper case, a space for the dash.
    let typed = codes[3].to_uppercase().replace('-', " ");
    let done = give_code(&mut b, &typed).await;
    assert_eq!((done.status, done.location()), (303, Some("/")), "{}", done.body);
    let me = b.whoami().await;
    assert_eq!(me["headers"]["x-deskgate-amr"], "pwd,otp,mfa");
    assert_eq!(me["claims"]["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    b.sign_out().await;

    password(&mut b, "rico@example.org").await;
    let again = give_code(&mut b, &codes[3]).await;
    assert_eq!(again.status, 401, "a used recovery code is refused");
    assert!(!b.is_signed_in().await);
    assert_eq!(give_code(&mut b, &codes[4]).await.status, 303, "another one works");
    assert!(b.is_signed_in().await);
}

#[tokio::test]
async fn a_replayed_code_is_refused() {
    let (stack, _turn) = stack_on(19913, String::new()).await;
    let (mut b, secret, _) = enrolled(&stack, "replay@example.org", &[]).await;
    // The code that confirmed enrolment is spent.
    password(&mut b, "replay@example.org").await;
    assert_eq!(give_code(&mut b, &code_now(&stack, &secret)).await.status, 401, "the enrolment code again");
    let code = next_code(&stack, &secret);
    assert_eq!(give_code(&mut b, &code).await.status, 303);
    b.sign_out().await;
    // Another browser replays the same code within its step: refused.
    let mut thief = Browser::new(&stack);
    password(&mut thief, "replay@example.org").await;
    assert_eq!(give_code(&mut thief, &code).await.status, 401);
    assert!(!thief.is_signed_in().await);
    // A code of the step before is refused too: steps only move forward.
    stack.clock.advance(totp::STEP);
    let older = totp::code_at(&secret, stack.clock.now() / totp::STEP - 2).expect("code");
    assert_eq!(give_code(&mut thief, &older).await.status, 401, "outside the window");
}

#[tokio::test]
async fn five_wrong_codes_are_refused_for_a_while_per_account_and_per_client() {
    let (stack, _turn) = stack_on(19914, String::new()).await;
    let (mut b, secret, _) = enrolled(&stack, "guess@example.org", &[]).await;
    let (mut other, other_secret, _) = enrolled(&stack, "bystander@example.org", &[]).await;
    password(&mut b, "guess@example.org").await;
    for n in 0..5 {
        let wrong = give_code(&mut b, &format!("{:06}", 100_000 + n)).await;
        assert_eq!(wrong.status, 401, "wrong code {n}");
    }
    let right = next_code(&stack, &secret);
    let refused = give_code(&mut b, &right).await;
    assert_eq!(refused.status, 429, "even the right code waits: {}", refused.body);
    assert!(refused.body.contains("Too many wrong codes"));
    assert!(!b.is_signed_in().await);
    // The same client, another account: refused too (per client address).
    password(&mut other, "bystander@example.org").await;
    assert_eq!(give_code(&mut other, &code_now(&stack, &other_secret)).await.status, 429);

    // After the window, the right code works again.
    stack.clock.advance(stack.gateway.config.rate_limit.window.as_secs() + 1);
    password(&mut b, "guess@example.org").await;
    assert_eq!(give_code(&mut b, &code_now(&stack, &secret)).await.status, 303);
}

#[tokio::test]
async fn the_second_step_cannot_be_skipped_by_going_elsewhere_with_its_cookie() {
    let (stack, _turn) = stack_on(19915, String::new()).await;
    let (mut b, secret, _) = enrolled(&stack, "skip@example.org", &[]).await;
    let first = password(&mut b, "skip@example.org").await;
    assert_eq!(first.location(), Some("/.deskgate/mfa"));
    assert!(b.session_cookie().is_none(), "no session before the code");
    assert!(b.cookies.keys().any(|k| k.ends_with("_second_step")), "{:?}", b.cookies);
    // Everywhere else, the waiting sign-in is nobody.
    assert!(!b.is_signed_in().await);
    for path in ["/.deskgate/", "/.deskgate/account/security", "/api/tickets", "/.deskgate/admin/people"] {
        let page = b.get(path).await;
        assert!(page.location().is_some_and(|l| l.contains("/.deskgate/login")), "{path}: {page:?}");
    }
    // Its cookie is no session cookie, under the session cookie's name either.
    let mut forged = Browser::new(&stack);
    let value =
        b.cookies.iter().find(|(k, _)| k.ends_with("_second_step")).map(|(_, v)| v.clone()).expect("c");
    forged.cookies.insert("deskgate_session".into(), value.clone());
    assert!(!forged.is_signed_in().await);
    // Tampered with, it opens nothing.
    let mut tampered = b.clone();
    let name = b.cookies.keys().find(|k| k.ends_with("_second_step")).cloned().expect("name");
    let mut bytes = value.into_bytes();
    bytes[20] = if bytes[20] == b'A' { b'B' } else { b'A' };
    tampered.cookies.insert(name, String::from_utf8(bytes).expect("text"));
    let page = tampered.get("/.deskgate/mfa").await;
    assert!(page.location().is_some_and(|l| l.contains("/.deskgate/login")), "{page:?}");
    // The real one still finishes with the code.
    assert_eq!(give_code(&mut b, &next_code(&stack, &secret)).await.status, 303);
    assert!(b.is_signed_in().await);
}

#[tokio::test]
async fn a_member_of_a_usergroup_requiring_mfa_is_taken_to_enrol_and_reaches_nothing_else() {
    let (stack, _turn) = stack_on(19916, String::new()).await;
    let mut agent = signed_in(&stack, "agent@example.org", &["agents"]).await;
    let home = agent.get("/").await;
    assert_eq!(home.status, 302);
    assert_eq!(home.location(), Some("/.deskgate/account/security?next=/"));
    let api = agent.get_with("/kb", &[("accept", "application/json")]).await;
    assert_eq!(api.status, 403, "{}", api.body);
    assert_eq!(api.json()["reason"], "mfa-enrolment-required");
    for path in ["/.deskgate/", "/.deskgate/admin/people", "/whoami"] {
        let page = agent.get(path).await;
        assert!(
            page.location().is_some_and(|l| l.starts_with("/.deskgate/account/security")),
            "{path}: {page:?}"
        );
    }
    // No spelling of an allowed page leads past it.
    let cookie = format!("deskgate_session={}", agent.session_cookie().expect("cookie"));
    for target in [
        "/.deskgate/mfa/../../whoami",
        "/.deskgate/account/security/%2e%2e/%2e%2e/%2e%2e/whoami",
        "/.deskgate/logout/..%2f..%2fwhoami",
        "/.deskgate//mfa",
        "/.deskgate/MFA",
    ] {
        let (status, body) =
            raw(stack.addr, target, &[("cookie", &cookie), ("accept", "application/json")]).await;
        assert!(status == 403 || status == 302 || status == 404, "{target}: {status} {body}");
        assert!(!body.contains("x-deskgate-user"), "{target} reached the backend: {body}");
    }
    // Enrolling opens everything again, in this session.
    let (_secret, _codes) = enrol(&mut agent, &stack).await;
    assert_eq!(agent.get("/").await.status, 200);
    let me = agent.whoami().await;
    assert_eq!(me["headers"]["x-deskgate-amr"], "pwd,otp,mfa");

    // Someone outside the usergroup is never asked.
    let mut customer = signed_in(&stack, "customer@example.org", &[]).await;
    assert_eq!(customer.get("/").await.status, 200);
    assert_eq!(customer.whoami().await["headers"]["x-deskgate-amr"], "pwd");
}

#[tokio::test]
async fn a_rule_requiring_mfa_steps_up_a_session_that_has_not_used_a_second_factor() {
    let (stack, _turn) = stack_on(19917, String::new()).await;
    let id = account(&stack, "step@example.org", "Step Up", PASSWORD, &[]).await;
    let mut b = Browser::new(&stack);
    assert_eq!(password(&mut b, "step@example.org").await.status, 303, "no factor yet: signed in");
    // Asked at the rule only; without a factor, the way there is enrolling.
    assert_eq!(b.get("/kb").await.status, 200);
    let asked = b.get("/api/tickets").await;
    assert_eq!(asked.location(), Some("/.deskgate/mfa?next=/api/tickets"));
    let form = b.get("/.deskgate/mfa?next=/api/tickets").await;
    assert_eq!(form.location(), Some("/.deskgate/account/security?next=/api/tickets"));
    // An app enrolled elsewhere (another session): this session has still not used it.
    let secret = totp::new_secret();
    stack.gateway.accounts.enrol_totp(&id, &secret, 0, &[], stack.clock.now()).await.expect("enrol");
    let api = b.get_with("/api/tickets", &[("accept", "application/json")]).await;
    assert_eq!(api.status, 403, "{}", api.body);
    assert_eq!(api.json()["reason"], "mfa-required");
    assert_eq!(b.get("/.deskgate/mfa?next=/api/tickets").await.status, 200, "the code form");
    let csrf = b.get("/.deskgate/mfa").await.field("csrf").expect("csrf");
    let wrong =
        b.post("/.deskgate/mfa", &[("code", "000000"), ("csrf", &csrf), ("next", "/api/tickets")]).await;
    assert_eq!(wrong.status, 401);
    let code = code_now(&stack, &secret);
    let done = b.post("/.deskgate/mfa", &[("code", &code), ("csrf", &csrf), ("next", "/api/tickets")]).await;
    assert_eq!(done.location(), Some("/api/tickets"), "{}", done.body);
    let tickets = b.get_with("/api/tickets", &[("accept", "application/json")]).await;
    assert_eq!(tickets.status, 200, "{}", tickets.body);
    assert_eq!(b.whoami().await["claims"]["amr"], serde_json::json!(["pwd", "otp", "mfa"]));

    // A guest on the rule signs in first.
    let mut guest = Browser::new(&stack);
    assert!(guest.get("/api/tickets").await.location().is_some_and(|l| l.starts_with("/.deskgate/login")));
}

#[tokio::test]
async fn a_spoofed_amr_header_never_reaches_the_backend_nor_passes_a_rule() {
    let (stack, _turn) = stack_on(19918, String::new()).await;
    let mut guest = Browser::new(&stack);
    for spelling in ["X-Deskgate-Amr", "x_deskgate_amr", "X-DESKGATE-AMR"] {
        let page =
            guest.get_with("/whoami", &[("accept", "application/json"), (spelling, "pwd,otp,mfa")]).await;
        assert_eq!(page.json()["headers"]["x-deskgate-amr"], "", "{spelling}: set, and empty, for a guest");
    }
    let mut b = signed_in(&stack, "spoof@example.org", &[]).await;
    let page = b
        .get_with(
            "/whoami",
            &[("accept", "application/json"), ("X-Deskgate-Amr", "mfa"), ("x_deskgate_amr", "hwk")],
        )
        .await;
    assert_eq!(page.json()["headers"]["x-deskgate-amr"], "pwd");
    let asked = b.get_with("/api/tickets", &[("X-Deskgate-Amr", "mfa"), ("accept", "text/html")]).await;
    assert_eq!(asked.status, 302, "a header the client sends proves nothing");
}

#[tokio::test]
async fn turning_it_off_needs_the_current_password_and_a_code() {
    let (stack, _turn) = stack_on(19919, String::new()).await;
    let (mut b, secret, codes) = enrolled(&stack, "off@example.org", &[]).await;
    password(&mut b, "off@example.org").await;
    assert_eq!(give_code(&mut b, &next_code(&stack, &secret)).await.status, 303);
    let page = b.get("/.deskgate/account/security").await;
    assert!(page.body.contains("recovery-left\">10<"), "{}", page.body);
    let csrf = page.field("csrf").expect("csrf");
    let off = |password: &str, code: &str| {
        [("csrf", csrf.clone()), ("password", password.to_owned()), ("code", code.to_owned())]
    };
    let post = async |b: &mut Browser, form: [(&str, String); 3]| {
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        b.post("/.deskgate/account/security/disable", &form).await
    };
    assert_eq!(post(&mut b, off("wrong password", &codes[0])).await.status, 401);
    assert_eq!(post(&mut b, off(PASSWORD, "123")).await.status, 401);
    let done = post(&mut b, off(PASSWORD, &codes[0])).await;
    assert_eq!(done.status, 200, "{}", done.body);
    let id = b.whoami().await["user"].as_str().expect("id").to_owned();
    assert_eq!(stack.gateway.accounts.totp(&id).await.expect("read"), None);
    // The next sign-in is the password alone.
    b.sign_out().await;
    assert_eq!(password(&mut b, "off@example.org").await.location(), Some("/"));
}

#[tokio::test]
async fn an_oidc_sign_in_whose_token_says_mfa_passes_without_being_asked() {
    let Some(issuer) = peer("DESKGATE_TEST_OIDC_ISSUER") else { return };
    let groups = "[[providers.oidc.corp.groups]]\ngroup = \"helpdesk-agents\"\nusergroups = [\"agents\"]\n\
                  [[providers.oidc.corp.groups]]\ngroup = \"other-staff\"\nusergroups = [\"agents\"]\n";
    let head = crate::oidc::provider("corp", "deskgate-test", "Corp", &issuer, groups);
    let (stack, _turn) = stack_on(19910, head).await;
    let through = async |email: &str| {
        let mut b = Browser::new(&stack);
        let start = b.get("/.deskgate/oidc/corp/start?next=/").await;
        assert_eq!(start.status, 303, "{}", start.body);
        let callback = crate::oidc::AtProvider::default()
            .sign_in(start.location().expect("authorize"), email, &stack.base)
            .await;
        let done = b.get(&callback[stack.base.len()..]).await;
        assert_eq!(done.status, 303, "{}", done.body);
        b
    };
    // Erin's provider says she used a second factor: an agent, and never asked.
    let mut erin = through("erin@corp.example.com").await;
    assert_eq!(erin.get("/").await.status, 200);
    let tickets = erin.get_with("/api/tickets", &[("accept", "application/json")]).await;
    assert_eq!(tickets.status, 200, "{}", tickets.body);
    let me = erin.whoami().await;
    assert!(me["usergroups"].as_array().expect("list").iter().any(|g| g == "agents"), "{me}");
    assert_eq!(me["headers"]["x-deskgate-amr"], "pwd,otp,mfa");
    // Dave's says nothing of it: an agent too, so he is taken to enrol.
    let mut dave = through("dave@other.example.com").await;
    let home = dave.get("/").await;
    assert_eq!(home.location(), Some("/.deskgate/account/security?next=/"), "{home:?}");
}

#[tokio::test]
async fn forward_auth_asks_for_the_second_factor_as_it_asks_for_a_sign_in() {
    let (stack, _turn) =
        stack_serving(19920, String::new(), "trusted_proxies = [\"127.0.0.1\"]\n".into()).await;
    let ask = async |b: &mut Browser, uri: &str, accept: &str| {
        let headers = [
            ("x-forwarded-method", "GET"),
            ("x-forwarded-proto", "http"),
            ("x-forwarded-host", "help.test"),
            ("x-forwarded-uri", uri),
            ("accept", accept),
        ];
        b.get_with("/.deskgate/authz/forward-auth", &headers).await
    };
    let mut b = signed_in(&stack, "proxied@example.org", &[]).await;
    let ok = ask(&mut b, "/kb", "text/html").await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.headers.get("x-deskgate-amr").map(|v| v.to_str().unwrap()), Some("pwd"));
    let stepped = ask(&mut b, "/api/tickets", "text/html").await;
    assert_eq!(stepped.status, 302);
    let to = format!("{}/.deskgate/mfa?next=http%3A//help.test/api/tickets", stack.base);
    assert_eq!(stepped.location(), Some(to.as_str()));
    assert_eq!(ask(&mut b, "/api/tickets", "application/json").await.status, 401);

    let mut agent = signed_in(&stack, "proxied-agent@example.org", &["agents"]).await;
    let enrol = ask(&mut agent, "/kb", "text/html").await;
    assert_eq!(enrol.status, 302);
    assert!(enrol.location().is_some_and(|l| l.contains("/.deskgate/account/security?next=")), "{enrol:?}");
}

#[tokio::test]
async fn a_bearer_token_is_refused_where_a_second_factor_is_required_since_a_program_cannot_give_one() {
    use deskgate::accounts::AccountStore;
    use deskgate::bearer::issue::{Wanted, issue};
    let (stack, _turn) = stack_on(19922, String::new()).await;
    let state = &stack.gateway;
    let mut secrets = Vec::new();
    for (email, groups) in [("script@example.org", &[][..]), ("agent-script@example.org", &["agents"][..])] {
        let id = account(&stack, email, "Script Owner", PASSWORD, groups).await;
        let owner = state.accounts.by_id(&id).await.expect("store").expect("the account");
        let wanted = Wanted { name: "script".into(), expires_in: "1d".into(), permissions: vec![] };
        secrets.push(issue(state, &owner, &wanted, "test").await.expect("a token").1);
    }
    let client = reqwest::Client::new();
    let ask = |path: &str, token: &str| {
        client.get(format!("{}{path}", stack.base)).bearer_auth(token).header("accept", "text/html").send()
    };

    // The token works where no second factor is asked for, and says how it came.
    let seen = ask("/whoami", &secrets[0]).await.expect("whoami");
    assert_eq!(seen.status(), 200);
    let seen: serde_json::Value = seen.json().await.expect("JSON");
    assert_eq!(seen["headers"]["x-deskgate-amr"], "token", "{seen}");

    // A rule that asks for one: 403 JSON, even to a client that accepts pages, never a
    // redirect to a code form a program cannot fill in.
    let refused = ask("/api/tickets", &secrets[0]).await.expect("tickets");
    assert_eq!(refused.status(), 403);
    assert!(refused.headers().get("location").is_none());
    let body: serde_json::Value = refused.json().await.expect("JSON");
    assert_eq!(body["error"], "second factor required", "{body}");

    // A member of a usergroup that requires one: refused everywhere, not sent to enrol.
    let refused = ask("/whoami", &secrets[1]).await.expect("whoami");
    assert_eq!(refused.status(), 403);
    let body: serde_json::Value = refused.json().await.expect("JSON");
    assert_eq!(body["reason"], "mfa-enrolment-required", "{body}");
}

#[tokio::test]
async fn an_administrator_resets_second_factors_and_sees_who_has_not_enrolled() {
    let (stack, _turn) = stack_on(19921, String::new()).await;
    let mut admin = signed_in(&stack, "boss@example.org", &["admins"]).await;
    let (mut agent, _secret, _) = enrolled(&stack, "keen@example.org", &["agents"]).await;
    let lazy = account(&stack, "lazy@example.org", "Lazy Agent", PASSWORD, &["agents"]).await;
    let list = admin.get("/.deskgate/admin/mfa").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(list.body.contains("lazy@example.org"), "{}", list.body);
    assert!(list.body.contains(&lazy));
    assert!(!list.body.contains("keen@example.org"), "enrolled: not listed");
    assert!(list.body.contains("1 of 2 members have not enrolled"), "{}", list.body);

    let keen = agent_id(&stack, "keen@example.org").await;
    let page = admin.get(&format!("/.deskgate/admin/people/{keen}")).await;
    assert!(page.body.contains("Reset second factors"), "{}", page.body);
    let csrf = page.field("csrf").expect("csrf");
    let origin = stack.base.clone();
    let reset = admin
        .post_with(
            &format!("/.deskgate/admin/people/{keen}/factors/reset"),
            &[("csrf", &csrf)],
            &[("origin", &origin)],
        )
        .await;
    assert_eq!(reset.status, 303, "{}", reset.body);
    assert_eq!(stack.gateway.accounts.totp(&keen).await.expect("read"), None);
    assert!(admin.get(&format!("/.deskgate/admin/people/{keen}")).await.body.contains("None set up"));
    // A foreign form resets nothing.
    let refused = admin
        .post_with(
            &format!("/.deskgate/admin/people/{lazy}/factors/reset"),
            &[("csrf", "forged")],
            &[("origin", &origin)],
        )
        .await;
    assert_eq!(refused.status, 403);
    // Someone not an administrator cannot.
    let mut other = signed_in(&stack, "nosy@example.org", &[]).await;
    let csrf = other.csrf().await;
    let denied =
        other.post(&format!("/.deskgate/admin/people/{keen}/factors/reset"), &[("csrf", &csrf)]).await;
    assert_eq!(denied.status, 403);

    // The password alone signs the agent in again, straight to enrolment.
    assert_eq!(password(&mut agent, "keen@example.org").await.location(), Some("/"));
    assert!(agent.get("/").await.location().is_some_and(|l| l.starts_with("/.deskgate/account/security")));
}

async fn agent_id(stack: &Stack, email: &str) -> String {
    use deskgate::accounts::AccountStore;
    stack.gateway.accounts.by_email(email).await.expect("read").expect("found").id
}
