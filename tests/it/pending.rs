//! Pending OIDC and SAML sign-ins live in a sealed cookie of the browser that started them:
//! a callback from another browser (login CSRF), a replay, a tampered or expired cookie
//! are refused with a clear page and no session, and starts keep nothing on the server.

use deskgate::session::Sessions;

use crate::oidc::{AtProvider, GOOGLE_RULES, SECRET_FILE, provider, stack_with};
use crate::saml;
use crate::support::*;

/// The browser's pending sign-in cookies, by name.
fn pending_cookies(b: &Browser) -> Vec<(String, String)> {
    b.cookies
        .iter()
        .filter(|(k, _)| k.starts_with("deskgate_pending_"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The one `Set-Cookie` of a start, which must be the pending sign-in's.
fn pending_set_cookie(page: &Page) -> String {
    let all: Vec<&str> = page.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).collect();
    assert_eq!(all.len(), 1, "{all:?}");
    assert!(all[0].starts_with("deskgate_pending_"), "{all:?}");
    all[0].to_owned()
}

fn google(issuer: &str) -> String {
    provider("google", "deskgate-test", "Google", issuer, GOOGLE_RULES)
}

/// Starts a Google sign-in in `b` and signs in at the provider; returns the callback path.
async fn to_callback(b: &mut Browser, email: &str) -> String {
    let start = b.get("/.deskgate/oidc/google/start?next=/kb").await;
    assert_eq!(start.status, 303, "{}", start.body);
    let callback = AtProvider::default().sign_in(start.location().unwrap(), email, &b.base).await;
    callback[b.base.len()..].to_owned()
}

fn memory_entries(stack: &Stack) -> usize {
    match &stack.gateway.sessions {
        Sessions::Memory(m) => m.entries(),
        Sessions::Redis(_) => panic!("these tests run on the memory store"),
    }
}

#[tokio::test]
async fn an_oidc_callback_finished_in_another_browser_is_refused_with_no_session() {
    let Some(issuer) = peer("DESKGATE_TEST_OIDC_ISSUER") else { return };
    let (stack, _turn) = stack_with(19395, google(&issuer)).await;
    // The attacker starts a sign-in as themselves and sends the callback URL to the victim.
    let mut attacker = Browser::new(&stack);
    let path = to_callback(&mut attacker, "alice@corp.example.com").await;
    let before = memory_entries(&stack);

    let mut victim = Browser::new(&stack);
    let page = victim.get(&path).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("not started in this browser"), "{}", page.body);
    assert!(victim.session_cookie().is_none());
    assert!(!victim.is_signed_in().await);

    // A victim with a sign-in of their own under way is refused the same way.
    let mut busy = Browser::new(&stack);
    assert_eq!(busy.get("/.deskgate/oidc/google/start").await.status, 303);
    let page = busy.get(&path).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("not started in this browser"));
    assert!(busy.session_cookie().is_none());
    assert_eq!(memory_entries(&stack), before, "refused callbacks keep nothing");

    // The refusals used nothing up: the browser that started it still finishes it.
    let done = attacker.get(&path).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location(), Some("/kb"));
    assert!(attacker.is_signed_in().await);
    assert!(pending_cookies(&attacker).is_empty(), "the callback clears its cookie");
}

#[tokio::test]
async fn an_oidc_callback_replayed_in_the_browser_that_started_it_is_refused_the_second_time() {
    let Some(issuer) = peer("DESKGATE_TEST_OIDC_ISSUER") else { return };
    let (stack, _turn) = stack_with(19393, google(&issuer)).await;
    let mut b = Browser::new(&stack);
    let path = to_callback(&mut b, "alice@corp.example.com").await;
    let cookie = pending_cookies(&b);
    assert_eq!(cookie.len(), 1);
    assert_eq!(b.get(&path).await.status, 303, "the first use signs in");
    assert!(pending_cookies(&b).is_empty(), "the callback clears its cookie");

    // The browser replays it: its cookie is gone.
    let page = b.get(&path).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("not started in this browser"));

    // A copy of the cookie kept back (a browser that ignored the clearing, or a thief): the
    // state was used once already, and the provider is not even asked.
    let mut kept = Browser::new(&stack);
    kept.cookies.extend(cookie);
    let page = kept.get(&path).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("expired or was already used"), "{}", page.body);
    assert!(kept.session_cookie().is_none());
    assert!(pending_cookies(&kept).is_empty(), "cleared again");
}

#[tokio::test]
async fn a_tampered_or_expired_pending_cookie_is_refused_with_no_session() {
    let Some(issuer) = peer("DESKGATE_TEST_OIDC_ISSUER") else { return };
    let (stack, _turn) = stack_with(19394, google(&issuer)).await;
    let mut b = Browser::new(&stack);
    let path = to_callback(&mut b, "alice@corp.example.com").await;
    let (name, genuine) = pending_cookies(&b).remove(0);
    let before = memory_entries(&stack);

    let mid = genuine.len() / 2;
    let flipped = if &genuine[mid..=mid] == "A" { "B" } else { "A" };
    let tampered = [
        format!("{}{flipped}{}", &genuine[..mid], &genuine[mid + 1..]),
        genuine[..genuine.len() - 2].to_owned(),
        format!("{genuine}AAAA"),
        String::new(),
        "%00garbage".to_owned(),
    ];
    for value in &tampered {
        let mut t = Browser::new(&stack);
        t.cookies.insert(name.clone(), value.clone());
        let page = t.get(&path).await;
        assert_eq!(page.status, 400, "{value}: {}", page.body);
        assert!(page.body.contains("Please start again"), "{value}");
        assert!(t.session_cookie().is_none(), "{value}");
    }
    // The cookie of another sign-in, under this sign-in's name.
    let mut other = Browser::new(&stack);
    other.get("/.deskgate/oidc/google/start").await;
    let (_, foreign) = pending_cookies(&other).remove(0);
    other.cookies.clear();
    other.cookies.insert(name.clone(), foreign);
    let page = other.get(&path).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(other.session_cookie().is_none());
    assert_eq!(memory_entries(&stack), before, "refused cookies keep nothing");

    // The genuine cookie, past its ten minutes (a browser may keep it longer).
    stack.clock.advance(601);
    let page = b.get(&path).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("expired"), "{}", page.body);
    assert!(b.session_cookie().is_none());
}

#[tokio::test]
async fn sign_ins_started_in_parallel_tabs_each_finish_and_a_browser_keeps_at_most_four() {
    let Some(issuer) = peer("DESKGATE_TEST_OIDC_ISSUER") else { return };
    let (stack, _turn) = stack_with(19392, google(&issuer)).await;
    let mut b = Browser::new(&stack);
    let first = to_callback(&mut b, "alice@corp.example.com").await;
    let second = to_callback(&mut b, "alice@corp.example.com").await;
    assert_eq!(pending_cookies(&b).len(), 2, "one cookie per sign-in");
    // Finished in the other order than started.
    assert_eq!(b.get(&second).await.status, 303);
    let page = b.get(&first).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert!(pending_cookies(&b).is_empty());
    assert!(b.is_signed_in().await);

    // Six starts a second apart: the browser is told to drop the oldest beyond four, so
    // the Cookie header stays small; the newest still finish.
    let mut tabs = Browser::new(&stack);
    let mut paths = Vec::new();
    for _ in 0..6 {
        paths.push(to_callback(&mut tabs, "alice@corp.example.com").await);
        stack.clock.advance(1);
    }
    assert_eq!(pending_cookies(&tabs).len(), 4);
    for oldest in &paths[..2] {
        let page = tabs.get(oldest).await;
        assert_eq!(page.status, 400, "{}", page.body);
        assert!(page.body.contains("not started in this browser"));
    }
    assert!(tabs.session_cookie().is_none());
    let page = tabs.get(&paths[5]).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert!(tabs.session_cookie().is_some());
}

#[tokio::test]
async fn a_saml_response_posted_from_another_browser_is_refused_with_no_session() {
    let Some(idp) = peer("DESKGATE_TEST_SAML_IDP") else { return };
    let (stack, _turn) = saml::stack(&idp, false).await;
    let mut b = Browser::new(&stack);
    let start = b.get("/.deskgate/saml/onelogin/start?next=/kb").await;
    assert_eq!(start.status, 303, "{}", start.body);
    let set = pending_set_cookie(&start);
    assert!(set.contains("; Path=/.deskgate/saml/onelogin;") && set.contains("HttpOnly"), "{set}");
    assert!(set.contains("SameSite=Lax") && !set.contains("Secure"), "plain http: Lax: {set}");
    let cookie = pending_cookies(&b);
    let fields = saml::at_idp(start.location().unwrap(), "alice@corp.example.com").await;

    let mut victim = Browser::new(&stack);
    let page = saml::post_acs(&mut victim, &fields).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("not started in this browser"), "{}", page.body);
    assert!(victim.session_cookie().is_none());

    let done = saml::post_acs(&mut b, &fields).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location(), Some("/kb"));
    assert!(pending_cookies(&b).is_empty(), "the ACS clears the cookie");

    // Replayed with a kept copy of the cookie: the RelayState was used once.
    let mut kept = Browser::new(&stack);
    kept.cookies.extend(cookie);
    let page = saml::post_acs(&mut kept, &fields).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("expired or was already used"), "{}", page.body);
    assert!(kept.session_cookie().is_none());
}

#[tokio::test]
async fn sign_in_starts_and_garbage_callbacks_keep_nothing_on_the_server() {
    let (Some(issuer), Some(idp)) = (peer("DESKGATE_TEST_OIDC_ISSUER"), peer("DESKGATE_TEST_SAML_IDP"))
    else {
        return;
    };
    // Any port will do: starting needs only the provider's discovery document and the
    // IdP's metadata, and nothing here goes back to either.
    let head = format!(
        "{}\n[providers.saml.onelogin]\nidp_metadata_url = \"{idp}/saml2/idp/metadata.php\"\n",
        google(&issuer)
    );
    // An https public URL: the SAML cookie must then be sent with a cross-site POST.
    let stack = start(Options {
        server: "public_url = \"https://help.example.com\"".into(),
        head,
        files: vec![SECRET_FILE],
        ..Default::default()
    })
    .await;
    let mut b = Browser::new(&stack);
    // The first of each loads the discovery document and the metadata.
    let oidc = b.get("/.deskgate/oidc/google/start").await;
    let set = pending_set_cookie(&oidc);
    for attr in
        ["; Path=/.deskgate/oidc/google;", "; Max-Age=600;", "; HttpOnly", "; SameSite=Lax", "; Secure"]
    {
        assert!(set.contains(attr), "{attr}: {set}");
    }
    let saml_start = b.get("/.deskgate/saml/onelogin/start").await;
    assert_eq!(saml_start.status, 303, "{}", saml_start.body);
    let set = pending_set_cookie(&saml_start);
    for attr in ["; Path=/.deskgate/saml/onelogin;", "; HttpOnly", "; SameSite=None", "; Secure"] {
        assert!(set.contains(attr), "{attr}: {set}");
    }

    let before = memory_entries(&stack);
    for i in 0..300 {
        b.cookies.clear();
        for path in ["/.deskgate/oidc/google/start?next=/kb", "/.deskgate/saml/onelogin/start"] {
            let page = b.get(path).await;
            assert_eq!(page.status, 303, "{i}: {}", page.body);
        }
        // Garbage callbacks: no cookie, and a forged cookie under the name their state picks.
        for forge in [false, true] {
            let (state, relay) = (format!("st{i}"), format!("r{i}"));
            if forge {
                for key in [&state, &relay] {
                    b.cookies.insert(deskgate::pending::cookie_name(key), "A".repeat(60 + i));
                }
            }
            let page = b.get(&format!("/.deskgate/oidc/google/callback?code=x&state={state}")).await;
            assert_eq!(page.status, 400, "{}", page.body);
            let fields =
                [("SAMLResponse".to_owned(), "PGZvbz4=".to_owned()), ("RelayState".to_owned(), relay)];
            let page = saml::post_acs(&mut b, &fields).await;
            assert_eq!(page.status, 400, "{}", page.body);
        }
    }
    assert_eq!(memory_entries(&stack), before, "600 starts and 600 garbage callbacks stored nothing");
}

#[tokio::test]
async fn replicas_and_reloads_sharing_the_secret_open_pending_sign_ins_and_a_new_secret_drops_them() {
    let dir = TempDir::new();
    std::fs::write(dir.0.join("secret"), "the session secret, at least 32 bytes long").unwrap();
    std::fs::write(dir.0.join("other"), "another session secret, 32 bytes or more").unwrap();
    let config = |secret: &str| {
        let text = format!(
            "[server]\npublic_url = \"http://127.0.0.1:9\"\n[upstream]\nurl = \"http://127.0.0.1:9\"\n\
             [storage]\naccounts = \"sqlite::memory:\"\n[session]\nsecret_file = \"{secret}\"\n{HELPDESK}"
        );
        deskgate::config::load_str("deskgate.toml", &text, &dir.0).unwrap_or_else(|d| panic!("{d:?}"))
    };
    let pending = deskgate::pending::Pending {
        provider: "oidc.google".into(),
        key: "state-1".into(),
        state: "{}".into(),
        next: "/kb".into(),
        expires: u64::MAX,
    };
    let gateway = deskgate::Gateway::new(config("secret")).await.unwrap();
    let sealed = gateway.state().pending.seal(&pending);
    let opens = |g: &deskgate::Gateway| g.state().pending.open(&sealed, "oidc.google", "state-1", 0);

    let replica = deskgate::Gateway::new(config("secret")).await.unwrap();
    assert_eq!(opens(&replica), Ok(pending.clone()), "another replica with the same secret");
    assert_eq!(
        replica.state().signer.kid(),
        gateway.state().signer.kid(),
        "and signs identity tokens with the same key, without a jwt.key_file"
    );
    gateway.reloader().reload(config("secret")).await.unwrap();
    assert_eq!(opens(&gateway), Ok(pending), "a reload keeping the secret");
    gateway.reloader().reload(config("other")).await.unwrap();
    assert_eq!(opens(&gateway), Err(deskgate::pending::Unsealed::Damaged), "a new secret, a new key");
}
