//! The bounds on what nobody signed in can make deskgate keep or do: sign-in attempts,
//! password hashing, the memory store, sign-ups and validation mails. Client addresses are
//! set with `X-Forwarded-For`, believed from the test's own loopback (a trusted proxy).

use std::time::Duration;

use deskgate::session::Sessions;

use crate::support::*;

const TRUSTED: &str = "trusted_proxies = [\"127.0.0.1\"]";
const PASSWORD: &str = "correct horse battery";

/// Signs in (CSRF token first) as if from `ip`.
async fn sign_in_from(b: &mut Browser, ip: &str, email: &str, password: &str) -> Page {
    let csrf = b.csrf().await;
    b.post_with(
        "/.deskgate/login",
        &[("email", email), ("password", password), ("csrf", &csrf)],
        &[("x-forwarded-for", ip)],
    )
    .await
}

fn memory(stack: &Stack) -> &deskgate::session::MemoryStore {
    match &stack.gateway.sessions {
        Sessions::Memory(m) => m,
        Sessions::Redis(_) => panic!("these tests run on the memory store"),
    }
}

/// Five wrong passwords used to refuse the right one for 15 minutes from
/// every address. Now the guessing address is refused, and the owner, from an address that
/// has not failed, gets in after a delay that grows with the failures and is bounded.
#[tokio::test]
async fn wrong_passwords_from_elsewhere_never_lock_the_owner_out() {
    let head = "[rate_limit]\nper_account = 3\nper_account_and_address = 3\nper_address = 50\n\
                window = \"10m\"\nmax_delay = \"4s\"\n";
    let stack = start(Options { server: TRUSTED.into(), head: head.into(), ..Default::default() }).await;
    account(&stack, "owner@example.org", "Owner", PASSWORD, &[]).await;
    let mut attacker = Browser::new(&stack);
    // Guesses from three addresses: twelve failures on the account, four past its limit.
    for ip in ["203.0.113.7", "203.0.113.8", "203.0.113.9"] {
        for _ in 0..3 {
            let page = sign_in_from(&mut attacker, ip, "owner@example.org", "wrong guess").await;
            assert_eq!(page.status, 401, "{}", page.body);
        }
        // The attacker's address is refused for this account, even with the right password.
        let page = sign_in_from(&mut attacker, ip, "owner@example.org", PASSWORD).await;
        assert_eq!(page.status, 429, "{}", page.body);
        assert!(page.body.contains("Too many failed sign-in attempts. Please wait 10 minutes"));
        assert!(attacker.session_cookie().is_none());
    }
    // Other spellings of the name count as the same account.
    let page = sign_in_from(&mut attacker, "203.0.113.7", " OWNER@example.ORG ", PASSWORD).await;
    assert_eq!(page.status, 429);

    let (before, _) = stack.clock.paused();
    let mut owner = Browser::new(&stack);
    let page = sign_in_from(&mut owner, "198.51.100.20", "owner@example.org", PASSWORD).await;
    assert_eq!(page.status, 303, "the owner gets in from a clean address: {}", page.body);
    assert!(owner.is_signed_in().await);
    let (after, longest) = stack.clock.paused();
    assert!(after > before, "a sign-in to an account under attack is slowed down");
    assert!(longest <= Duration::from_secs(4), "never longer than max_delay: {longest:?}");

    // The owner's own address keeps working, and the attacker's stays refused.
    let mut again = Browser::new(&stack);
    assert_eq!(sign_in_from(&mut again, "198.51.100.20", "owner@example.org", PASSWORD).await.status, 303);
    assert_eq!(sign_in_from(&mut attacker, "203.0.113.8", "owner@example.org", PASSWORD).await.status, 429);
    // When the window has passed, the attacker's address may try again.
    stack.clock.advance(11 * 60);
    assert_eq!(sign_in_from(&mut attacker, "203.0.113.8", "owner@example.org", PASSWORD).await.status, 303);
}

/// Counters read before the check and counted after it let 35 attempts past a
/// limit of 20 from 16 connections. Reserving first: 64 wrong passwords at once from one
/// address, and at most the limit reach the password check.
#[tokio::test]
async fn concurrent_wrong_passwords_from_one_address_never_pass_its_limit() {
    let head = "[rate_limit]\nper_address = 20\nper_account_and_address = 64\n\n\
                [limits]\nhashing_wait = \"1m\"\n";
    let stack = start(Options { server: TRUSTED.into(), head: head.into(), ..Default::default() }).await;
    account(&stack, "target@example.org", "T", PASSWORD, &[]).await;
    let mut b = Browser::new(&stack);
    let csrf = b.csrf().await;
    let checks_before = stack.gateway.builtin.hashing().checks();
    let runs = (0..64).map(|n| {
        let (mut b, csrf) = (b.clone(), csrf.clone());
        tokio::spawn(async move {
            // Half of them for an account that exists, half for names that do not.
            let email =
                if n % 2 == 0 { "target@example.org".to_owned() } else { format!("nobody{n}@example.org") };
            let form = [("email", email.as_str()), ("password", "wrong guess"), ("csrf", csrf.as_str())];
            b.post_with("/.deskgate/login", &form, &[("x-forwarded-for", "203.0.113.50")]).await.status
        })
    });
    let statuses: Vec<u16> =
        futures_util::future::join_all(runs).await.into_iter().map(|r| r.unwrap()).collect();
    let checked = stack.gateway.builtin.hashing().checks() - checks_before;
    let wrong = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(wrong + refused, 64, "{statuses:?}");
    assert!(checked <= 20, "{checked} password checks ran past a limit of 20");
    assert_eq!(wrong as u64, checked);
    // Another address is untouched.
    let mut other = Browser::new(&stack);
    assert_eq!(sign_in_from(&mut other, "198.51.100.1", "target@example.org", PASSWORD).await.status, 303);
}

/// 64 sign-ins at once took 1.2 GB, each argon2id check 19 MiB with nothing
/// bounding how many ran. Now they take turns: every one either gets in or gets a clear
/// 503 after a short wait, none hangs, and the hashing memory kept is one area per turn.
#[tokio::test]
async fn sixty_four_concurrent_sign_ins_get_in_or_a_clear_503_and_none_hangs() {
    let head = "[limits]\nhashing_concurrency = 2\nhashing_wait = \"300ms\"\n";
    let stack = start(Options { server: TRUSTED.into(), head: head.into(), ..Default::default() }).await;
    account(&stack, "busy@example.org", "B", PASSWORD, &[]).await;
    let mut b = Browser::new(&stack);
    let csrf = b.csrf().await;
    let runs = (0..64).map(|n| {
        let (mut b, csrf) = (b.clone(), csrf.clone());
        tokio::spawn(async move {
            let form = [("email", "busy@example.org"), ("password", PASSWORD), ("csrf", csrf.as_str())];
            let ip = format!("10.1.0.{n}");
            b.post_with("/.deskgate/login", &form, &[("x-forwarded-for", ip.as_str())]).await
        })
    });
    let all = tokio::time::timeout(Duration::from_secs(60), futures_util::future::join_all(runs))
        .await
        .expect("no sign-in hangs");
    let (mut ok, mut busy) = (0, 0);
    for page in all.into_iter().map(|r| r.unwrap()) {
        match page.status {
            303 => ok += 1,
            503 => {
                assert!(page.body.contains("Too many people are signing in at this moment"), "{}", page.body);
                assert_eq!(page.headers.get("retry-after").map(|v| v.to_str().unwrap()), Some("5"));
                busy += 1;
            }
            other => panic!("status {other}: {}", page.body),
        }
    }
    assert_eq!(ok + busy, 64);
    assert!(ok >= 2, "the turns were used");
    assert!(stack.gateway.builtin.hashing().pooled() <= 2, "one memory area per turn, no more");
    // Once the burst is over, sign-in works at once.
    let mut later = Browser::new(&stack);
    assert_eq!(sign_in_from(&mut later, "10.2.0.1", "busy@example.org", PASSWORD).await.status, 303);
}

/// Failed sign-ins with a new name each time, refused by the address limit, must
/// keep nothing new; and while one address floods, a signed-in person and another address
/// sign in as usual.
#[tokio::test]
async fn a_flood_of_new_names_from_one_address_keeps_no_state_per_attempt() {
    let head = "[rate_limit]\nper_address = 20\n\n[limits]\nmemory_counters = 300\n";
    let stack = start(Options { server: TRUSTED.into(), head: head.into(), ..Default::default() }).await;
    let mut person = signed_in(&stack, "person@example.org", &[]).await;
    account(&stack, "other@example.org", "O", PASSWORD, &[]).await;
    let mut flood = Browser::new(&stack);
    let csrf = flood.csrf().await;
    let held_before = memory(&stack).held().0;
    for n in 0..400 {
        let email = format!("random{n}@nowhere.example");
        let form = [("email", email.as_str()), ("password", "guess"), ("csrf", csrf.as_str())];
        let page = flood.post_with("/.deskgate/login", &form, &[("x-forwarded-for", "203.0.113.99")]).await;
        assert_eq!(page.status, if n < 20 { 401 } else { 429 }, "attempt {n}");
        // One counter for the address, then per name one for the name and one for the
        // name from this address, for the 20 attempts that got past the address.
        assert!(memory(&stack).held().0 - held_before <= 1 + 2 * 20);
        if n % 100 == 50 {
            assert!(person.is_signed_in().await, "a signed-in person is served during the flood");
        }
    }
    let mut other = Browser::new(&stack);
    assert_eq!(sign_in_from(&mut other, "198.51.100.7", "other@example.org", PASSWORD).await.status, 303);
    assert!(person.is_signed_in().await);
}

/// At the memory store's bound (a flood from many addresses), new counters are refused:
/// the store never grows past it, the client gets a clear 503, and people already signed
/// in are not affected.
#[tokio::test]
async fn at_the_counter_bound_new_sign_ins_get_a_clear_503_and_the_store_stops_growing() {
    let head = "[limits]\nmemory_counters = 300\n";
    let stack = start(Options { server: TRUSTED.into(), head: head.into(), ..Default::default() }).await;
    let mut person = signed_in(&stack, "person@example.org", &[]).await;
    let mut flood = Browser::new(&stack);
    let csrf = flood.csrf().await;
    let mut busy = 0;
    for n in 0..250u32 {
        let ip = format!("10.{}.{}.1", n / 200, n % 200);
        let email = format!("random{n}@nowhere.example");
        let form = [("email", email.as_str()), ("password", "guess"), ("csrf", csrf.as_str())];
        let page = flood.post_with("/.deskgate/login", &form, &[("x-forwarded-for", ip.as_str())]).await;
        match page.status {
            401 => {}
            503 => {
                assert!(page.body.contains("Too many sign-ins are in progress"), "{}", page.body);
                busy += 1;
            }
            other => panic!("status {other}"),
        }
        assert!(memory(&stack).held().0 <= 300);
    }
    assert!(busy > 0, "three counters per attempt reach 300 within 250 attempts");
    assert!(person.is_signed_in().await);
}

/// Sign-ups (and the accounts waiting for approval they leave) are bounded per
/// address and in total, each with a clear page.
#[tokio::test]
async fn sign_ups_are_bounded_per_address_and_waiting_accounts_in_total() {
    let head =
        "[registration]\nmode = \"approval\"\n\n[limits]\nsign_ups_per_address = 3\npending_sign_ups = 4\n";
    let stack = start(Options { server: TRUSTED.into(), head: head.into(), ..Default::default() }).await;
    let sign_up = |ip: &'static str, n: u32| {
        let mut b = Browser::new(&stack);
        async move {
            let form = b.get("/.deskgate/register").await;
            let csrf = form.field("csrf").unwrap();
            let email = format!("new{n}@example.org");
            let fields = [
                ("name", "New"),
                ("email", email.as_str()),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
                ("csrf", csrf.as_str()),
            ];
            b.post_with("/.deskgate/register", &fields, &[("x-forwarded-for", ip)]).await
        }
    };
    for n in 0..3 {
        assert_eq!(sign_up("203.0.113.1", n).await.status, 200);
    }
    let page = sign_up("203.0.113.1", 3).await;
    assert_eq!(page.status, 429);
    assert!(page.body.contains("Too many sign-ups from your network"), "{}", page.body);
    assert_eq!(sign_up("203.0.113.2", 4).await.status, 200, "another address signs up");
    let page = sign_up("203.0.113.3", 5).await;
    assert_eq!(page.status, 503, "four accounts are waiting for approval");
    assert!(page.body.contains("Sign-up is very busy right now"), "{}", page.body);
}

/// Sign-ups in open mode are bounded in total per window; a new window lets them
/// in again.
#[tokio::test]
async fn open_sign_ups_are_bounded_in_total_per_window() {
    let head = "[limits]\nsign_ups_total = 2\nsign_up_window = \"1h\"\n";
    let stack = start(Options { server: TRUSTED.into(), head: head.into(), ..Default::default() }).await;
    let mut b = Browser::new(&stack);
    assert_eq!(b.sign_up("One", "one@example.org", PASSWORD).await.status, 303);
    let mut b = Browser::new(&stack);
    assert_eq!(b.sign_up("Two", "two@example.org", PASSWORD).await.status, 303);
    let mut b = Browser::new(&stack);
    assert_eq!(b.sign_up("Three", "three@example.org", PASSWORD).await.status, 503);
    stack.clock.advance(3601);
    assert_eq!(b.sign_up("Three", "three@example.org", PASSWORD).await.status, 303);
}

/// Validation mails (the sign-up's own and the resent ones) are bounded per
/// address; over the bound no account is made and no mail goes out.
#[tokio::test]
async fn validation_mails_are_bounded_per_address() {
    let (port, mut mails) = super::signup::smtp_server().await;
    let head = format!(
        "{}\n[limits]\nsign_ups_per_address = 10\nvalidation_mails_per_address = 2\n",
        super::signup::validation_head(port)
    );
    let stack = start(Options { server: TRUSTED.into(), head, ..Default::default() }).await;
    let mut sent = 0;
    for n in 0..3 {
        let mut b = Browser::new(&stack);
        let form = b.get("/.deskgate/register").await;
        let csrf = form.field("csrf").unwrap();
        let email = format!("mail{n}@example.org");
        let fields = [
            ("name", "M"),
            ("email", email.as_str()),
            ("password", PASSWORD),
            ("confirm", PASSWORD),
            ("csrf", &csrf),
        ];
        let page = b.post_with("/.deskgate/register", &fields, &[("x-forwarded-for", "203.0.113.4")]).await;
        if n < 2 {
            assert_eq!(page.status, 200, "{}", page.body);
            mails.recv().await.expect("a mail");
            sent += 1;
        } else {
            assert_eq!(page.status, 429, "{}", page.body);
        }
    }
    assert_eq!(sent, 2);
    // The third sign-up left no account: its owner cannot even be asked to validate.
    use deskgate::accounts::AccountStore;
    assert!(stack.gateway.accounts.by_email("mail2@example.org").await.unwrap().is_none());
    // Signing in before validating would mail a new link; this address is over its bound.
    stack.clock.advance(601);
    let mut b = Browser::new(&stack);
    let page = sign_in_from(&mut b, "203.0.113.4", "mail0@example.org", PASSWORD).await;
    assert_eq!(page.status, 401);
    assert!(mails.try_recv().is_err(), "no mail over the bound");
    // From another address the link goes out.
    let page = sign_in_from(&mut b, "203.0.113.5", "mail0@example.org", PASSWORD).await;
    assert!(page.body.contains("we have just sent you a new link"), "{}", page.body);
    mails.recv().await.expect("a mail");
}

/// A reload keeps the hashing turns (and their count) unless their limits changed, so that
/// requests under the old and the new config share one bound.
#[tokio::test]
async fn a_reload_keeps_the_hashing_turns_unless_their_limits_change() {
    let config = |limits: &str| {
        let text = format!(
            "[upstream]\nurl = \"http://127.0.0.1:9\"\n[storage]\naccounts = \"sqlite::memory:\"\n{limits}\n{HELPDESK}"
        );
        deskgate::config::load_str("t.toml", &text, std::path::Path::new("/")).expect("config")
    };
    let gateway =
        deskgate::Gateway::new(config("[limits]\nhashing_concurrency = 1\n")).await.expect("starts");
    let gate = gateway.state().builtin.hashing().clone();
    let hash = deskgate_builtin::hash_password(PASSWORD).unwrap();
    assert!(gate.verify(PASSWORD, &hash).await.unwrap());
    gateway.reloader().reload(config("[limits]\nhashing_concurrency = 1\n")).await.expect("reload");
    assert_eq!(gateway.state().builtin.hashing().checks(), 1, "the same turns");
    gateway.reloader().reload(config("[limits]\nhashing_concurrency = 2\n")).await.expect("reload");
    let now = gateway.state().builtin.hashing().clone();
    assert_eq!((now.checks(), now.limits().concurrency), (0, 2), "new limits, new turns");
}
