//! Sign-ins against a real OpenID Connect provider: npm `oidc-provider`, started by
//! `tests/peers/oidc.sh start`. The browser's part is played by a cookie-keeping HTTP client
//! that posts the provider's login form and stops at the redirect to the callback URL.
//!
//! The provider is found through `DESKGATE_TEST_OIDC_ISSUER` (e.g. `http://127.0.0.1:19380`);
//! `DESKGATE_TEST_OIDC_CLIENT_ID` and `DESKGATE_TEST_OIDC_CLIENT_SECRET` override the script's
//! fixed client. Without the issuer a test fails under `CI=true` and otherwise says SKIP and
//! returns.

mod browser;
mod signin;
mod tokens;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use deskgate_oidc::{Clock, Oidc, OidcConfig};
use deskgate_provider::{AuthError, Callback, Identity, RedirectProvider, Started};

pub use browser::Browser;

/// Where the provider sends the browser back to; nothing listens there, the test reads the
/// redirect instead.
pub const CALLBACK: &str = "http://127.0.0.1:9/callback";

/// Tests share one provider; the restart test takes this for writing.
static PEER: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

fn issuer() -> Option<String> {
    const VAR: &str = "DESKGATE_TEST_OIDC_ISSUER";
    match std::env::var(VAR) {
        Ok(value) if !value.is_empty() => Some(value),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{VAR} is not set; CI must start the provider (see providers/oidc/README.md)")
        }
        _ => {
            // Written past the test harness's capture (which only takes the print macros), so
            // the skip shows in a normal `cargo test` run; once per run is enough.
            static BANNER: std::sync::Once = std::sync::Once::new();
            BANNER.call_once(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "\n********************************************************************\n\
                     SKIP: {VAR} is not set, so the OIDC peer tests did not run\n\
                     against a real OpenID provider. Run tests/peers/oidc.sh start and\n\
                     set it to the issuer it prints (providers/oidc/README.md).\n\
                     ********************************************************************\n"
                );
            });
            None
        }
    }
}

/// The issuer, or return from the test after the SKIP banner.
macro_rules! require_issuer {
    () => {
        match crate::issuer() {
            Some(value) => value,
            None => return,
        }
    };
}
pub(crate) use require_issuer;

pub fn client_id(suffix: &str) -> String {
    let base = std::env::var("DESKGATE_TEST_OIDC_CLIENT_ID").unwrap_or_else(|_| "deskgate-test".into());
    format!("{base}{suffix}")
}

pub fn client_secret() -> String {
    std::env::var("DESKGATE_TEST_OIDC_CLIENT_SECRET").unwrap_or_else(|_| "deskgate-test-secret".into())
}

fn secret_file() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("deskgate-oidc-it-{}.secret", std::process::id()));
        std::fs::write(&path, format!("{}\n", client_secret())).expect("write secret file");
        path
    })
}

/// The provider's table for the client `deskgate-test<suffix>` (`""`, `-es256`, `-eddsa`).
pub fn config(issuer: &str, suffix: &str) -> OidcConfig {
    OidcConfig {
        issuer: Some(issuer.to_owned()),
        client_id: client_id(suffix),
        client_secret_file: Some(secret_file().to_owned()),
        groups_claim: Some("groups".into()),
        ..OidcConfig::default()
    }
}

/// The system clock moved by a chosen number of seconds, or stopped at a chosen time.
#[derive(Debug)]
pub struct TestClock {
    state: Mutex<ClockState>,
}

#[derive(Debug, Clone, Copy)]
enum ClockState {
    Shifted(i64),
    Stopped(SystemTime),
}

fn real_plus(seconds: i64) -> SystemTime {
    let by = Duration::from_secs(seconds.unsigned_abs());
    if seconds >= 0 { SystemTime::now() + by } else { SystemTime::now() - by }
}

impl TestClock {
    /// Runs with the system clock, `seconds` ahead (or behind, when negative).
    pub fn shifted(seconds: i64) -> Arc<TestClock> {
        Arc::new(TestClock { state: Mutex::new(ClockState::Shifted(seconds)) })
    }

    /// Stands still at the current time until told otherwise.
    pub fn stopped() -> Arc<TestClock> {
        Arc::new(TestClock { state: Mutex::new(ClockState::Stopped(SystemTime::now())) })
    }

    /// Jumps to `seconds` after the current real time and stands still there.
    pub fn stop_at_real_plus(&self, seconds: i64) {
        *self.state.lock().expect("clock") = ClockState::Stopped(real_plus(seconds));
    }
}

impl Clock for TestClock {
    fn now(&self) -> SystemTime {
        match *self.state.lock().expect("clock") {
            ClockState::Shifted(seconds) => real_plus(seconds),
            ClockState::Stopped(at) => at,
        }
    }
}

pub fn build(config: &OidcConfig, clock: Option<Arc<TestClock>>) -> Oidc {
    let built = match clock {
        Some(clock) => config.build_with_clock("peer", clock),
        None => config.build("peer"),
    };
    built.unwrap_or_else(|problems| panic!("config problems: {problems:?}"))
}

/// A sign-in that reached the callback, ready to be completed.
pub struct Landed {
    pub started: Started,
    pub callback: Callback,
}

/// Begins a sign-in and plays the browser through the provider's login form.
pub async fn land(oidc: &Oidc, email: &str, password: &str) -> Landed {
    let started = oidc.begin(CALLBACK).await.expect("begin");
    let location = Browser::default()
        .sign_in(&started.location, email, password)
        .await
        .unwrap_or_else(|page| panic!("the provider did not accept {email}: {page}"));
    Landed { started, callback: callback_of(&location) }
}

pub fn callback_of(location: &url::Url) -> Callback {
    Callback { params: location.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect() }
}

/// A whole sign-in: begin, the provider's form, complete.
pub async fn sign_in(oidc: &Oidc, email: &str, password: &str) -> Result<Identity, AuthError> {
    let landed = land(oidc, email, password).await;
    oidc.complete(&landed.started.pending, CALLBACK, &landed.callback).await
}

/// The error's code and message, for assertions that say which refusal it was.
pub fn refusal(result: Result<Identity, AuthError>) -> (&'static str, String) {
    match result {
        Ok(identity) => panic!("expected a refusal, got {identity:?}"),
        Err(error) => (error.code(), error.to_string()),
    }
}
