//! A real headless Chromium, driven over WebDriver by `chromedriver` (Debian's chromium and
//! chromium-driver; `bash tests/run` installs them), signs in through deskgate's pages.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

/// The W3C WebDriver element key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One Chromium session behind one chromedriver process.
pub(crate) struct Chromium {
    http: reqwest::Client,
    base: String,
    session: String,
    _driver: tokio::process::Child,
    _profile: TempDir,
}

impl Chromium {
    pub(crate) async fn start(driver: &str) -> Chromium {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // Chromium's own temporary folders go inside the profile, which is removed on drop.
        let profile = TempDir::new();
        let tmp = profile.0.join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        let child = tokio::process::Command::new(driver)
            .arg(format!("--port={port}"))
            .env("TMPDIR", &tmp)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver runs");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let ready = Instant::now();
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(ready.elapsed() < Duration::from_secs(20), "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                         format!("--user-data-dir={}", profile.0.join("data").display())],
            },
        }}});
        let created: Value =
            http.post(format!("{base}/session")).json(&caps).send().await.unwrap().json().await.unwrap();
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_owned();
        Chromium { http, base, session, _driver: child, _profile: profile }
    }

    pub(crate) async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let req = self.http.request(method.clone(), url);
        // WebDriver takes a body with POST only.
        let req = if method == reqwest::Method::POST { req.json(&body) } else { req };
        let resp: Value = req.send().await.unwrap().json().await.unwrap();
        resp["value"].clone()
    }

    pub(crate) async fn go(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", json!({"url": url})).await;
    }

    pub(crate) async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", Value::Null).await.as_str().unwrap_or_default().to_owned()
    }

    pub(crate) async fn source(&self) -> String {
        self.call(reqwest::Method::GET, "/source", Value::Null).await.as_str().unwrap_or_default().to_owned()
    }

    pub(crate) async fn find(&self, css: &str) -> String {
        let found = self
            .call(reqwest::Method::POST, "/element", json!({"using": "css selector", "value": css}))
            .await;
        found[ELEMENT].as_str().unwrap_or_else(|| panic!("no element {css}: {found}")).to_owned()
    }

    pub(crate) async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{id}/click"), json!({})).await;
    }

    pub(crate) async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{id}/value"), json!({"text": text})).await;
    }

    /// Waits until the address satisfies `done`.
    pub(crate) async fn wait_for_url(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let began = Instant::now();
        loop {
            let url = self.url().await;
            if done(&url) {
                return url;
            }
            assert!(
                began.elapsed() < Duration::from_secs(20),
                "never reached {what}; at {url}: {}",
                self.source().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Adds a W3C virtual authenticator (a platform passkey store that verifies its user);
    /// returns its id.
    pub(crate) async fn add_authenticator(&self) -> String {
        let options = json!({"protocol": "ctap2", "transport": "internal", "hasResidentKey": true,
                             "hasUserVerification": true, "isUserVerified": true});
        let id = self.call(reqwest::Method::POST, "/webauthn/authenticator", options).await;
        id.as_str().unwrap_or_else(|| panic!("no virtual authenticator: {id}")).to_owned()
    }

    /// The credentials a virtual authenticator holds (id, private key, sign count, ...).
    pub(crate) async fn authenticator_credentials(&self, id: &str) -> Vec<Value> {
        let path = format!("/webauthn/authenticator/{id}/credentials");
        self.call(reqwest::Method::GET, &path, Value::Null).await.as_array().cloned().unwrap_or_default()
    }

    /// Removes a virtual authenticator, with its credentials.
    pub(crate) async fn remove_authenticator(&self, id: &str) {
        self.call(reqwest::Method::DELETE, &format!("/webauthn/authenticator/{id}"), Value::Null).await;
    }

    /// The value of a cookie the browser holds for the current page.
    pub(crate) async fn cookie(&self, name: &str) -> Option<String> {
        let c = self.call(reqwest::Method::GET, &format!("/cookie/{name}"), Value::Null).await;
        c["value"].as_str().map(str::to_owned)
    }

    /// Forgets a cookie of the current page.
    pub(crate) async fn delete_cookie(&self, name: &str) {
        self.call(reqwest::Method::DELETE, &format!("/cookie/{name}"), Value::Null).await;
    }

    /// Waits until the page's source contains `text`.
    pub(crate) async fn wait_for_text(&self, text: &str) -> String {
        let began = Instant::now();
        loop {
            let source = self.source().await;
            if source.contains(text) {
                return source;
            }
            let body = source.split_once("<main>").map_or(source.as_str(), |(_, b)| b);
            assert!(began.elapsed() < Duration::from_secs(20), "never showed {text:?}: {body}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) async fn quit(self) {
        self.call(reqwest::Method::DELETE, "", Value::Null).await;
    }
}

#[tokio::test]
async fn chromium_signs_in_through_the_chooser_and_the_providers_form() {
    let Some(driver) = peer("DESKGATE_TEST_CHROMEDRIVER") else { return };
    let Some(issuer) = peer("DESKGATE_TEST_OIDC_ISSUER") else { return };
    let head = format!(
        r#"
[providers.oidc.google]
issuer = "{issuer}"
client_id = "deskgate-test"
client_secret_file = "{}"
display_name = "Google"
allowed_domains = ["corp.example.com"]
create_accounts = true

[[providers.oidc.google.groups]]
group = "hd:corp.example.com"
usergroups = ["trial_users"]
"#,
        crate::oidc::SECRET_FILE.0
    );
    // Takes its turn on the port with the OIDC tests.
    let (stack, _turn) = crate::oidc::stack_with(19396, head).await;
    let chrome = Chromium::start(&driver).await;

    // A guest asks for sales chat and is sent to the login page, which offers Google.
    chrome.go(&format!("{}/chat/sales", stack.base)).await;
    chrome.wait_for_url("the login page", |u| u.contains("/.deskgate/login")).await;
    assert!(chrome.source().await.contains("Sign in with Google"));
    chrome.click("a[href*='/.deskgate/oidc/google/start']").await;

    // The provider's own form.
    chrome
        .wait_for_url("the provider's form", |u| u.starts_with(&issuer) && u.contains("/interaction/"))
        .await;
    chrome.type_into("input[name=email]", "alice@corp.example.com").await;
    chrome.type_into("input[name=password]", "Passw0rd-alice").await;
    chrome.click("form[action$='/login'] button").await;

    // Back at the page first asked for, signed in, with the usergroup the hosted domain gives.
    let landed = chrome.wait_for_url("sales chat", |u| u == format!("{}/chat/sales", stack.base)).await;
    let page = chrome.source().await;
    assert!(page.contains("Chat with sales"), "{landed}: {page}");
    assert!(page.contains("alice@corp.example.com"), "the helpdesk shows who signed in: {page}");
    chrome.quit().await;
}
