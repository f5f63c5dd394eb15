//! Signing in with OpenID Connect against a real OpenID Certified provider (npm
//! `oidc-provider`, started by `bash tests/run` through tests/peers/oidc.sh) issuing
//! Google-shaped ID tokens (`hd`, `email_verified`, `groups`).
//!
//! The provider knows its clients' callback URLs in advance, so these tests run the gateway
//! on fixed ports (19391–19396), which tests/run registers.

use std::collections::BTreeMap;

use url::Url;

use crate::support::*;

/// The test clients' secret, in a file beside the config (relative paths are the
/// config's), so it goes with the stack.
pub(crate) const SECRET_FILE: (&str, &str) = ("oidc-client.secret", "deskgate-test-secret\n");

/// `[providers.oidc.KEY]` for the test provider's client `client`.
pub(crate) fn provider(key: &str, client: &str, label: &str, issuer: &str, extra: &str) -> String {
    format!(
        r#"
[providers.oidc.{key}]
issuer = "{issuer}"
client_id = "{client}"
client_secret_file = "{secret}"
display_name = "{label}"
groups_claim = "groups"
create_accounts = true
{extra}
"#,
        secret = SECRET_FILE.0,
    )
}

pub(crate) const GOOGLE_RULES: &str = r#"allowed_domains = ["corp.example.com"]

[[providers.oidc.google.groups]]
group = "hd:corp.example.com"
usergroups = ["trial_users"]

[[providers.oidc.google.groups]]
group = "vips"
usergroups = ["vips"]
"#;

/// The provider knows one callback URL per port (19391–19396): tests sharing a port take
/// turns on it.
static PORTS: [tokio::sync::Mutex<()>; 6] = [const { tokio::sync::Mutex::const_new(()) }; 6];

/// A gateway on `port`, and this test's turn on it (held until the test ends).
pub(crate) async fn stack_with(port: u16, head: String) -> (Stack, tokio::sync::MutexGuard<'static, ()>) {
    stack_with_model(port, head, HELPDESK.to_owned()).await
}

/// As [`stack_with`], with another model and rules.
pub(crate) async fn stack_with_model(
    port: u16,
    head: String,
    model: String,
) -> (Stack, tokio::sync::MutexGuard<'static, ()>) {
    let turn = PORTS[usize::from(port - 19391)].lock().await;
    // The previous test's runtime, and with it its listener, may still be closing.
    for _ in 0..100 {
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let options = Options { head, model, port: Some(port), files: vec![SECRET_FILE], ..Default::default() };
    (start(options).await, turn)
}

/// The provider's side of the flow: a cookie jar of its own, redirects followed by hand
/// until the browser is sent back to the gateway.
#[derive(Default)]
pub(crate) struct AtProvider {
    cookies: BTreeMap<String, String>,
}

impl AtProvider {
    async fn send(&mut self, req: reqwest::RequestBuilder) -> (u16, Option<Url>, String, Url) {
        let cookie: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let resp = req.header("cookie", cookie.join("; ")).send().await.expect("the provider answers");
        let url = resp.url().clone();
        for set in resp.headers().get_all("set-cookie") {
            let set = set.to_str().unwrap();
            if let Some((name, value)) = set.split(';').next().and_then(|p| p.split_once('=')) {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let location = resp.headers().get("location").map(|l| url.join(l.to_str().unwrap()).unwrap());
        let status = resp.status().as_u16();
        (status, location, resp.text().await.unwrap(), url)
    }

    /// Follows `authorize`, signs in as `email`, and returns the callback URL at `gateway`.
    pub(crate) async fn sign_in(&mut self, authorize: &str, email: &str, gateway: &str) -> String {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let local = email.split('@').next().unwrap();
        let mut next = Url::parse(authorize).unwrap();
        let mut posted = false;
        for _ in 0..12 {
            let (status, location, body, here) = self.send(http.get(next.clone())).await;
            if let Some(l) = location {
                if l.as_str().starts_with(gateway) {
                    return l.to_string();
                }
                next = l;
                continue;
            }
            assert_eq!(status, 200, "{body}");
            assert!(!posted, "the provider showed a page after the login form: {body}");
            let action = body
                .split("action=\"")
                .skip(1)
                .filter_map(|r| r.split('"').next())
                .find(|a| a.ends_with("/login"));
            let action = here.join(action.expect("a login form")).unwrap();
            let form = [("email", email.to_owned()), ("password", format!("Passw0rd-{local}"))];
            let (_, location, body, _) = self.send(http.post(action).form(&form)).await;
            next = location.unwrap_or_else(|| panic!("no redirect after the login form: {body}"));
            if next.as_str().starts_with(gateway) {
                return next.to_string();
            }
            posted = true;
        }
        panic!("too many redirects");
    }
}

/// A page's text with the entities deskgate's pages escape turned back.
fn html_unescaped(body: &str) -> String {
    body.replace("&#39;", "'").replace("&#x27;", "'").replace("&quot;", "\"").replace("&amp;", "&")
}

/// Starts at the gateway, signs in at the provider, and returns the gateway's answer to
/// the callback (the browser's session cookie is kept in `b`).
async fn through(b: &mut Browser, key: &str, email: &str, tamper: impl Fn(String) -> String) -> Page {
    let start = b.get(&format!("/.deskgate/oidc/{key}/start?next=/kb")).await;
    assert_eq!(start.status, 303, "{}", start.body);
    let authorize = tamper(start.location().unwrap().to_owned());
    let callback = AtProvider::default().sign_in(&authorize, email, &b.base).await;
    b.get(&callback[b.base.len()..]).await
}

#[tokio::test]
async fn google_shaped_sign_in_maps_the_hosted_domain_and_the_groups_claim_to_usergroups() {
    let Some(issuer) = peer("DESKGATE_TEST_OIDC_ISSUER") else { return };
    let (stack, _turn) =
        stack_with(19391, provider("google", "deskgate-test", "Google", &issuer, GOOGLE_RULES)).await;
    let mut b = Browser::new(&stack);
    let done = through(&mut b, "google", "alice@corp.example.com", |u| u).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location(), Some("/kb"), "back to the page first asked for");
    let seen = b.whoami().await;
    let h = &seen["headers"];
    assert_eq!(h["x-deskgate-provider"], "oidc.google");
    assert_eq!(h["x-deskgate-email"], "alice@corp.example.com");
    assert_eq!(
        h["x-deskgate-usergroups"], "everyone,registered,trial_users,vips",
        "hd → trial_users, groups → vips"
    );
    assert_eq!(seen["verified"], true);
}

#[tokio::test]
async fn unverified_email_and_another_hosted_domain_are_refused_even_with_a_tampered_hd_parameter() {
    let Some(issuer) = peer("DESKGATE_TEST_OIDC_ISSUER") else { return };
    let (stack, _turn) =
        stack_with(19392, provider("google", "deskgate-test", "Google", &issuer, GOOGLE_RULES)).await;
    let tamper = |u: String| {
        let mut url = Url::parse(&u).unwrap();
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != "hd")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs).append_pair("hd", "other.example.com");
        url.to_string()
    };
    for (email, tampered, why) in [
        ("carol@corp.example.com", false, "the provider has not verified this account's email address."),
        (
            "dave@other.example.com",
            false,
            "this account is in the domain other.example.com, which is not an allowed domain here.",
        ),
        (
            "dave@other.example.com",
            true,
            "this account is in the domain other.example.com, which is not an allowed domain here.",
        ),
        (
            "bob@gmail.example",
            false,
            "this is a personal account, and only accounts of an allowed domain may sign in here.",
        ),
    ] {
        let mut b = Browser::new(&stack);
        let done = if tampered {
            through(&mut b, "google", email, tamper).await
        } else {
            through(&mut b, "google", email, |u| u).await
        };
        assert_eq!(done.status, 403, "{email} (tampered: {tampered}): {}", done.body);
        // In plain words, naming the provider, as directory refusals are.
        let said = html_unescaped(&done.body);
        assert!(
            said.contains(&format!("Signing in with Google was refused: {why}")),
            "{email}: {}",
            done.body
        );
        assert!(b.session_cookie().is_none(), "{email} got a session");
    }
}

#[tokio::test]
async fn replayed_code_forged_state_and_a_callback_with_no_pending_login_get_a_clear_page_and_no_session() {
    let Some(issuer) = peer("DESKGATE_TEST_OIDC_ISSUER") else { return };
    let (stack, _turn) =
        stack_with(19393, provider("google", "deskgate-test", "Google", &issuer, GOOGLE_RULES)).await;
    let mut b = Browser::new(&stack);
    let start = b.get("/.deskgate/oidc/google/start").await;
    let callback =
        AtProvider::default().sign_in(start.location().unwrap(), "alice@corp.example.com", &b.base).await;
    let path = &callback[b.base.len()..];
    assert_eq!(b.get(path).await.status, 303, "the first use signs in");

    // The same callback again, from another browser: it holds no pending sign-in.
    let mut replay = Browser::new(&stack);
    let page = replay.get(path).await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("not started in this browser"), "{}", page.body);
    assert!(replay.session_cookie().is_none());

    // The used code with a fresh, genuine state: the provider refuses the code.
    let code =
        Url::parse(&callback).unwrap().query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    let mut again = Browser::new(&stack);
    let fresh = again.get("/.deskgate/oidc/google/start").await;
    let state = Url::parse(fresh.location().unwrap())
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let page = again.get(&format!("/.deskgate/oidc/google/callback?code={code}&state={state}")).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("could not be completed"));
    assert!(again.session_cookie().is_none());

    for forged in ["?code=abc&state=forged-state", "?code=abc", "", "?error=access_denied&state=nothing"] {
        let mut f = Browser::new(&stack);
        let page = f.get(&format!("/.deskgate/oidc/google/callback{forged}")).await;
        assert_eq!(page.status, 400, "{forged}");
        assert!(page.body.contains("Please start again"), "{forged}");
        assert!(f.session_cookie().is_none());
    }
}

#[tokio::test]
async fn the_login_page_offers_built_in_google_and_a_second_provider_and_each_signs_in() {
    let Some(issuer) = peer("DESKGATE_TEST_OIDC_ISSUER") else { return };
    let head = format!(
        "{}{}",
        provider("google", "deskgate-test", "Google", &issuer, GOOGLE_RULES),
        provider("corp", "deskgate-test-es256", "Corp SSO", &issuer, "")
    );
    let (stack, _turn) = stack_with(19394, head).await;
    let mut b = Browser::new(&stack);
    let login = b.get("/.deskgate/login?next=/news").await;
    assert!(login.body.contains("name=\"password\""), "the built-in form");
    assert!(
        login.body.contains("Sign in with Google")
            && login.body.contains("/.deskgate/oidc/google/start?next=/news")
    );
    assert!(
        login.body.contains("Sign in with Corp SSO")
            && login.body.contains("/.deskgate/oidc/corp/start?next=/news")
    );

    account(&stack, "local@example.org", "Local", "correct horse battery", &[]).await;
    assert_eq!(b.sign_in("local@example.org", "correct horse battery").await.status, 303);
    assert_eq!(b.whoami().await["headers"]["x-deskgate-provider"], "builtin");

    let mut g = Browser::new(&stack);
    assert_eq!(through(&mut g, "google", "alice@corp.example.com", |u| u).await.status, 303);
    assert_eq!(g.whoami().await["headers"]["x-deskgate-provider"], "oidc.google");

    let mut c = Browser::new(&stack);
    assert_eq!(through(&mut c, "corp", "bob@gmail.example", |u| u).await.status, 303);
    let seen = c.whoami().await;
    assert_eq!(seen["headers"]["x-deskgate-provider"], "oidc.corp");
    assert_eq!(seen["headers"]["x-deskgate-usergroups"], "everyone,registered");
}

#[tokio::test]
async fn with_only_one_provider_elsewhere_the_login_page_goes_straight_to_it() {
    let Some(issuer) = peer("DESKGATE_TEST_OIDC_ISSUER") else { return };
    let head = format!(
        "[registration]\nmode = \"disabled\"\n[providers.builtin]\nenabled = false\n{}",
        provider("google", "deskgate-test", "Google", &issuer, GOOGLE_RULES)
    );
    let (stack, _turn) = stack_with(19395, head).await;
    let mut b = Browser::new(&stack);
    let page = b.get("/.deskgate/login?next=/kb").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location(), Some("/.deskgate/oidc/google/start?next=/kb"));
}

/// Entra ID sends no `email_verified`: with `allow_unverified_email` the address is kept and
/// forwarded, marked unverified, and it brings no organization or assignment and takes no
/// one's account or address.
#[tokio::test]
async fn an_unverified_provider_email_is_forwarded_marked_unverified_and_grants_and_links_nothing() {
    let Some(issuer) = peer("DESKGATE_TEST_OIDC_ISSUER") else { return };
    let model = format!(
        "{HELPDESK}\n[organizations.corp]\ndomains = [\"corp.example.com\"]\nusergroups = [\"vips\"]\n\n\
         [[assignments]]\nemail = \"carol@corp.example.com\"\nusergroups = [\"power_users\"]\n"
    );
    // Keyed `corp`: the provider knows callbacks for the keys `google` and `corp` only.
    let head = provider("corp", "deskgate-test", "Entra", &issuer, "allow_unverified_email = true\n");
    let (stack, _turn) = stack_with_model(19392, head, model).await;
    // Carol's real account, made by an administrator with her address.
    let existing = account(&stack, "carol@corp.example.com", "Carol", "correct horse battery", &[]).await;

    let mut b = Browser::new(&stack);
    let done = through(&mut b, "corp", "carol@corp.example.com", |u| u).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let seen = b.whoami().await;
    let h = &seen["headers"];
    assert_eq!(h["x-deskgate-provider"], "oidc.corp");
    assert_eq!(h["x-deskgate-email"], "carol@corp.example.com", "kept and forwarded");
    assert_eq!(h["x-deskgate-email-verified"], "false");
    assert_eq!(seen["claims"]["email_verified"], false);
    assert_eq!(seen["verified"], true, "the helpdesk verified the JWT");
    assert_eq!(h["x-deskgate-usergroups"], "everyone,registered", "no organization corp, no assignment");
    assert_ne!(h["x-deskgate-user"], existing.as_str(), "not linked to Carol's account by email");
    assert_eq!(b.get("/chat/support").await.status, 403);
}

/// The same person through a second provider that may create accounts but not link by
/// email: never a 500 (before, "an account with this email already exists" for ever), but a
/// page that names how the account signs in and gives a reference; an administrator links
/// that reference on the person's page, and the person gets in; unlinking ends the session.
#[tokio::test]
async fn a_second_provider_for_the_same_person_gets_a_clear_page_never_a_500_and_an_admin_can_link_it() {
    let Some(issuer) = peer("DESKGATE_TEST_OIDC_ISSUER") else { return };
    let head = format!(
        "{}{}",
        provider("google", "deskgate-test", "Google", &issuer, GOOGLE_RULES),
        provider("corp", "deskgate-test-es256", "Corp SSO", &issuer, "")
    );
    let (stack, _turn) = stack_with_model(19396, head, crate::admin::model()).await;
    let mut first = Browser::new(&stack);
    assert_eq!(through(&mut first, "google", "alice@corp.example.com", |u| u).await.status, 303);
    let id = first.whoami().await["headers"]["x-deskgate-user"].as_str().unwrap().to_owned();

    let mut second = Browser::new(&stack);
    for _ in 0..2 {
        let refused = through(&mut second, "corp", "alice@corp.example.com", |u| u).await;
        assert_eq!(refused.status, 409, "{}", refused.body);
        assert!(
            refused.body.contains("already exists") && refused.body.contains("signs in with Google"),
            "{}",
            refused.body
        );
        assert!(
            refused.body.contains("Corp SSO") && refused.body.contains("link_by_email"),
            "{}",
            refused.body
        );
        assert!(!second.is_signed_in().await);
    }
    let refused = through(&mut second, "corp", "alice@corp.example.com", |u| u).await;
    let reference =
        refused.body.split("(reference: ").nth(1).and_then(|r| r.split(')').next()).unwrap().to_owned();
    let (provider_id, subject) = reference.split_once(' ').unwrap();
    assert_eq!(provider_id, "oidc.corp");

    // An administrator sees the linked sign-in and what Google said (every group, mapped or
    // not), links the new one, and the person gets in.
    let mut admin = crate::admin::admin(&stack).await;
    let page = admin.get(&format!("/.deskgate/admin/people/{id}")).await;
    assert!(page.body.contains("Provider sign-ins") && page.body.contains("oidc.google "), "{}", page.body);
    assert!(
        page.body
            .contains("<code>vips</code></td><td><span class=\"mapped\">mapped</span> to <code>vips</code>"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("<code>helpdesk-agents</code></td><td><span class=\"badge unmapped\">not mapped</span> no [[providers.oidc.google.groups]] rule names this group"),
        "{}",
        page.body
    );
    assert!(page.body.contains("<code>email: alice@corp.example.com</code>"), "{}", page.body);
    let google_subject =
        page.body.split("oidc.google ").nth(1).and_then(|r| r.split('<').next()).unwrap().to_owned();
    let explained = std::process::Command::new(env!("CARGO_BIN_EXE_deskgate"))
        .args(["explain", "--config"])
        .arg(&stack.config_path)
        .args(["--account", &format!("oidc.google {google_subject}")])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&explained.stdout);
    assert!(explained.status.success(), "{text}{}", String::from_utf8_lossy(&explained.stderr));
    assert!(text.contains("Account:    Alice") || text.contains("<alice@corp.example.com>"), "{text}");
    assert!(text.contains("group vips → vips"), "{text}");
    assert!(
        text.contains("group helpdesk-agents → not mapped: no [[providers.oidc.google.groups]] rule"),
        "{text}"
    );
    let csrf = admin.csrf().await;
    let path = format!("/.deskgate/admin/people/{id}/link");
    let bad = admin.post(&path, &[("csrf", &csrf), ("provider", "oidc.nope"), ("subject", subject)]).await;
    assert_eq!(bad.status, 422, "an unknown provider is refused: {}", bad.body);
    let linked = admin.post(&path, &[("csrf", &csrf), ("provider", provider_id), ("subject", subject)]).await;
    assert_eq!(linked.status, 303, "{}", linked.body);
    let page = admin.get(&format!("/.deskgate/admin/people/{id}")).await;
    assert!(page.body.contains(&format!("oidc.corp {subject}")), "{}", page.body);
    let other = crate::admin::person(&stack, "other@example.org", &[]).await.0;
    let taken = admin
        .post(
            &format!("/.deskgate/admin/people/{other}/link"),
            &[("csrf", &csrf), ("provider", provider_id), ("subject", subject)],
        )
        .await;
    assert_eq!(taken.status, 409, "a sign-in linked elsewhere is not moved: {}", taken.body);

    assert_eq!(through(&mut second, "corp", "alice@corp.example.com", |u| u).await.status, 303);
    let seen = second.whoami().await;
    assert_eq!(seen["headers"]["x-deskgate-user"], id.as_str(), "the same account");
    assert_eq!(seen["headers"]["x-deskgate-provider"], "oidc.corp");

    let unlinked = admin
        .post(
            &format!("/.deskgate/admin/people/{id}/unlink"),
            &[("csrf", &csrf), ("provider", provider_id), ("subject", subject)],
        )
        .await;
    assert_eq!(unlinked.status, 303, "{}", unlinked.body);
    assert!(!second.is_signed_in().await, "the session through the unlinked sign-in ended");
    assert!(first.is_signed_in().await, "the other provider's session goes on");
}
