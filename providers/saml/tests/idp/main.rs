//! Sign-ins against a real SAML identity provider: SimpleSAMLphp 1.19, started by
//! `tests/peers/saml.sh` (see its header for the service providers and people it knows).
//!
//! The IdP is found through `DESKGATE_TEST_SAML_IDP` (its base URL, e.g.
//! `http://127.0.0.1:19480`, or its metadata URL). The signed-request test also needs the SP
//! key the script made: `DESKGATE_TEST_SAML_SP_KEY` / `DESKGATE_TEST_SAML_SP_CERT`, by default
//! `.peers/saml/cert/sp.key` / `sp.crt` in the repository. Without them a test fails under
//! `CI=true` and otherwise says SKIP and returns.
//!
//! Logins are driven without a browser: follow the redirect to the IdP with a cookie jar,
//! post its login form, and collect the auto-POST form's `SAMLResponse` and `RelayState`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use deskgate_provider::config::GroupRule;
use deskgate_provider::{Callback, Identity, RedirectProvider, Started};
use deskgate_saml::{Clock, Saml, SamlConfig, SamlError};

/// deskgate's public URL as the IdP knows it (`SAML_SP_BASE` of the peer script).
const PUBLIC_URL: &str = "http://127.0.0.1:9";

fn peer(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Some(value),
        _ => missing(var),
    }
}

fn missing(what: &str) -> Option<String> {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{what} is not set; CI must start the test IdP (see providers/saml/README.md)");
    }
    eprintln!(
        "\n********************************************************************\n\
         SKIP: {what} is not set, so this test did not run against a real\n\
         SAML IdP. Start it (tests/peers/saml.sh start) and set it.\n\
         ********************************************************************\n"
    );
    None
}

/// The running IdP.
#[derive(Debug, Clone)]
struct Idp {
    base: String,
    metadata_url: String,
}

fn idp() -> Option<Idp> {
    let value = peer("DESKGATE_TEST_SAML_IDP")?;
    let value = value.trim_end_matches('/');
    let base = value.strip_suffix("/saml2/idp/metadata.php").unwrap_or(value).to_owned();
    Some(Idp { metadata_url: format!("{base}/saml2/idp/metadata.php"), base })
}

macro_rules! require_idp {
    () => {
        match idp() {
            Some(idp) => idp,
            None => return,
        }
    };
}

/// The file the peer script made, from `var` or the repository's `.peers/saml/cert/`.
fn peer_file(var: &str, name: &str) -> Option<PathBuf> {
    let path = std::env::var(var).ok().filter(|v| !v.is_empty()).map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.peers/saml/cert").join(name)
    });
    if path.is_file() { Some(path) } else { missing(var).map(PathBuf::from) }
}

/// The configuration for the peer's service provider `id` (see saml.sh), with groups mapped.
fn config(idp: &Idp) -> SamlConfig {
    SamlConfig {
        idp_metadata_url: Some(idp.metadata_url.clone()),
        email_attribute: Some("email".into()),
        name_attribute: Some("displayName".into()),
        groups_attribute: Some("memberOf".into()),
        name_id_format: Some("urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress".into()),
        groups: vec![GroupRule { group: "helpdesk-agents".into(), usergroups: vec!["agents".into()] }],
        ..SamlConfig::default()
    }
}

/// [`config`] for the IdP entry `variant`: one that signs only the Response needs
/// `want_assertions_signed = false`.
fn config_for(idp: &Idp, variant: &str) -> SamlConfig {
    SamlConfig { want_assertions_signed: Some(variant != "response-signed"), ..config(idp) }
}

fn build(config: &SamlConfig, id: &str) -> Saml {
    match config.build(id, PUBLIC_URL) {
        Ok(saml) => saml,
        Err(problems) => panic!("config problems: {problems:?}"),
    }
}

fn build_with_clock(config: &SamlConfig, id: &str, clock: Arc<dyn Clock>) -> Saml {
    match config.build_with_clock(id, PUBLIC_URL, clock) {
        Ok(saml) => saml,
        Err(problems) => panic!("config problems: {problems:?}"),
    }
}

/// The system clock moved by a fixed number of seconds (negative: into the past).
#[derive(Debug)]
struct ShiftedClock(i64);

impl Clock for ShiftedClock {
    fn now(&self) -> SystemTime {
        let by = Duration::from_secs(self.0.unsigned_abs());
        if self.0 >= 0 { SystemTime::now() + by } else { SystemTime::now() - by }
    }
}

fn shifted(seconds: i64) -> Arc<dyn Clock> {
    Arc::new(ShiftedClock(seconds))
}

/// Someone the IdP knows; the password is "Passw0rd-<local part>".
fn password(user: &str) -> String {
    format!("Passw0rd-{}", user.split('@').next().unwrap_or(user))
}

/// What the browser would post to the ACS.
#[derive(Debug, Clone)]
struct Posted {
    action: String,
    saml_response: String,
    relay_state: Option<String>,
}

impl Posted {
    fn callback(&self) -> Callback {
        let mut params = vec![("SAMLResponse".to_owned(), self.saml_response.clone())];
        if let Some(relay_state) = &self.relay_state {
            params.push(("RelayState".to_owned(), relay_state.clone()));
        }
        Callback { params }
    }

    fn xml(&self) -> String {
        String::from_utf8(STANDARD.decode(&self.saml_response).expect("base64")).expect("utf-8")
    }

    /// The same post with the response's XML changed by `edit`.
    fn edited(&self, edit: impl FnOnce(String) -> String) -> Posted {
        Posted { saml_response: STANDARD.encode(edit(self.xml())), ..self.clone() }
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .timeout(Duration::from_secs(20))
        .build()
        .expect("http client")
}

fn unescape_html(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#039;", "'")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The `value` of the input named `name` in `html`, unescaped.
fn input_value(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let tag_start = html[..at].rfind('<')?;
    let tag_end = at + html[at..].find('>')?;
    let tag = &html[tag_start..tag_end];
    let value_at = tag.find("value=\"")? + "value=\"".len();
    let value_end = value_at + tag[value_at..].find('"')?;
    Some(unescape_html(&tag[value_at..value_end]))
}

fn form_action(html: &str) -> Option<String> {
    let at = html.find("<form")?;
    let action_at = at + html[at..].find("action=\"")? + "action=\"".len();
    let end = action_at + html[action_at..].find('"')?;
    Some(unescape_html(&html[action_at..end]))
}

/// Follows `location` to the IdP, signs in as `user` and returns the auto-POST form's
/// content, or the page the IdP showed instead.
async fn login_at(location: &str, user: &str) -> Result<Posted, String> {
    let http = client();
    let page = http.get(location).send().await.map_err(|e| e.to_string())?;
    let login_url = page.url().clone();
    let html = page.text().await.map_err(|e| e.to_string())?;
    let auth_state = input_value(&html, "AuthState").ok_or_else(|| format!("no login form: {html}"))?;
    let form = [("username", user.to_owned()), ("password", password(user)), ("AuthState", auth_state)];
    let answer = http.post(login_url).form(&form).send().await.map_err(|e| e.to_string())?;
    let html = answer.text().await.map_err(|e| e.to_string())?;
    let saml_response =
        input_value(&html, "SAMLResponse").ok_or_else(|| format!("no SAMLResponse: {html}"))?;
    Ok(Posted {
        action: form_action(&html).unwrap_or_default(),
        saml_response,
        relay_state: input_value(&html, "RelayState"),
    })
}

/// An SP-initiated login at `saml` as `user`, answered at the provider's ACS.
async fn login(saml: &Saml, user: &str) -> (Started, Posted) {
    login_with_callback(saml, saml.acs_url(), user).await
}

async fn login_with_callback(saml: &Saml, callback_url: &str, user: &str) -> (Started, Posted) {
    let started = saml.begin(callback_url).await.expect("begin");
    let posted = login_at(&started.location, user).await.expect("login at the IdP");
    (started, posted)
}

/// Completes with this crate's error, for precise assertions.
async fn finish(saml: &Saml, started: &Started, posted: &Posted) -> Result<Identity, SamlError> {
    saml.finish(&started.pending, saml.acs_url(), &posted.callback()).await
}

/// Asserts a refusal with the given code and returns the error.
fn refused(result: Result<Identity, SamlError>, code: &str) -> SamlError {
    match result {
        Ok(identity) => panic!("expected a refusal ({code}), got {identity:?}"),
        Err(error) => {
            assert_eq!(error.code(), code, "refused for another reason: {error:?}");
            error
        }
    }
}

/// The first `<tag …>…</tag>` element of `xml` whose start tag begins with `start`.
fn element<'a>(xml: &'a str, start: &str, end: &str) -> &'a str {
    let from = xml.find(start).expect("start tag");
    let to = from + xml[from..].find(end).expect("end tag") + end.len();
    &xml[from..to]
}

/// `xml` without its `ds:Signature` elements.
fn without_signatures(xml: &str) -> String {
    let mut out = xml.to_owned();
    while let Some(from) = out.find("<ds:Signature ") {
        let to = from + out[from..].find("</ds:Signature>").expect("end") + "</ds:Signature>".len();
        out.replace_range(from..to, "");
    }
    out
}

mod refresh;
mod refusals;
mod signin;
mod wrapping;
