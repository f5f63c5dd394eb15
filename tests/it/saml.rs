//! Signing in with SAML 2.0 against a real IdP (SimpleSAMLphp, started by `bash tests/run`
//! through tests/peers/saml.sh with the gateway registered as SP `…/.deskgate/saml/onelogin/…`
//! at http://127.0.0.1:19397, the fixed port these tests use).

use crate::support::*;

pub(crate) const PORT: u16 = 19397;

/// The IdP knows one callback port: these tests take turns on it.
static PORT_IN_USE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn config(idp: &str, idp_initiated: bool) -> String {
    format!(
        r#"
[server]
public_url = "http://127.0.0.1:{PORT}"

[providers.saml.onelogin]
display_name = "OneLogin"
idp_metadata_url = "{idp}/saml2/idp/metadata.php"
email_attribute = "email"
name_attribute = "displayName"
groups_attribute = "memberOf"
allow_idp_initiated = {idp_initiated}
create_accounts = true

[[providers.saml.onelogin.groups]]
group = "helpdesk-agents"
usergroups = ["power_users"]

[[providers.saml.onelogin.groups]]
group = "vips"
usergroups = ["vips"]
"#
    )
}

pub(crate) async fn stack(idp: &str, idp_initiated: bool) -> (Stack, tokio::sync::MutexGuard<'static, ()>) {
    let turn = PORT_IN_USE.lock().await;
    // The previous test's runtime, and with it its listener, may still be closing.
    for _ in 0..100 {
        if std::net::TcpListener::bind(("127.0.0.1", PORT)).is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    (stack_on_port(idp, idp_initiated).await, turn)
}

async fn stack_on_port(idp: &str, idp_initiated: bool) -> Stack {
    let opts = Options { server: String::new(), head: String::new(), port: Some(PORT), ..Default::default() };
    // The [server] table comes from the config here, with the fixed public URL.
    let text = config(idp, idp_initiated);
    let (server, rest) = text.split_once("\n[providers").unwrap();
    start(Options {
        server: server.replace("[server]", "").trim().to_owned(),
        head: format!("[providers{rest}"),
        ..opts
    })
    .await
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#039;", "'")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn input(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let start = html[..at].rfind('<')?;
    let tag = &html[start..at + html[at..].find('>')?];
    let v = tag.find("value=\"")? + 7;
    Some(unescape(&tag[v..v + tag[v..].find('"')?]))
}

/// At the IdP: follows `location`, signs in as `user`, returns the auto-POST form's fields.
pub(crate) async fn at_idp(location: &str, user: &str) -> Vec<(String, String)> {
    let http = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let page = http.get(location).send().await.unwrap();
    let login = page.url().clone();
    let html = page.text().await.unwrap();
    let auth_state = input(&html, "AuthState").unwrap_or_else(|| panic!("no login form: {html}"));
    let local = user.split('@').next().unwrap();
    let form =
        [("username", user.to_owned()), ("password", format!("Passw0rd-{local}")), ("AuthState", auth_state)];
    let html = http.post(login).form(&form).send().await.unwrap().text().await.unwrap();
    let mut fields =
        vec![("SAMLResponse".to_owned(), input(&html, "SAMLResponse").unwrap_or_else(|| panic!("{html}")))];
    if let Some(relay) = input(&html, "RelayState") {
        fields.push(("RelayState".to_owned(), relay));
    }
    fields
}

pub(crate) async fn post_acs(b: &mut Browser, fields: &[(String, String)]) -> Page {
    let form: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    b.post("/.deskgate/saml/onelogin/acs", &form).await
}

#[tokio::test]
async fn sp_initiated_sign_in_maps_the_multi_valued_groups_attribute_and_refuses_replays() {
    let Some(idp) = peer("DESKGATE_TEST_SAML_IDP") else { return };
    let (stack, _turn) = stack(&idp, false).await;
    let mut b = Browser::new(&stack);
    let login = b.get("/.deskgate/login?next=/kb").await;
    assert!(login.body.contains("Sign in with OneLogin"));
    let start = b.get("/.deskgate/saml/onelogin/start?next=/kb").await;
    assert_eq!(start.status, 303, "{}", start.body);
    let fields = at_idp(start.location().unwrap(), "alice@corp.example.com").await;
    let relay = fields.iter().find(|(k, _)| k == "RelayState").map(|(_, v)| v.clone()).unwrap();
    assert!(!relay.contains('/'), "RelayState is a reference, never a URL: {relay}");

    let done = post_acs(&mut b, &fields).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location(), Some("/kb"));
    let seen = b.whoami().await;
    assert_eq!(seen["headers"]["x-deskgate-provider"], "saml.onelogin");
    assert_eq!(seen["headers"]["x-deskgate-email"], "alice@corp.example.com");
    assert_eq!(seen["headers"]["x-deskgate-usergroups"], "everyone,registered,power_users,vips");

    // The same response posted again, by anyone: refused, no session.
    let mut replay = Browser::new(&stack);
    let again = post_acs(&mut replay, &fields).await;
    assert_eq!(again.status, 400, "{}", again.body);
    assert!(replay.session_cookie().is_none());

    // A RelayState that names nothing, and a 5 MB body: clear pages, no session.
    let mut forged = Browser::new(&stack);
    let mut other = fields.clone();
    other.retain(|(k, _)| k != "RelayState");
    other.push(("RelayState".into(), "forged".into()));
    assert_eq!(post_acs(&mut forged, &other).await.status, 400);
    let huge = vec![("SAMLResponse".to_owned(), "A".repeat(5 * 1024 * 1024))];
    let page = post_acs(&mut forged, &huge).await;
    assert_eq!(page.status, 413);
    assert!(page.body.contains("The request is too large"), "{}", page.body);
    assert!(forged.session_cookie().is_none());
}

#[tokio::test]
async fn an_idp_initiated_response_is_accepted_once_when_allowed() {
    let Some(idp) = peer("DESKGATE_TEST_SAML_IDP") else { return };
    let (stack, _turn) = stack(&idp, true).await;
    let entity = format!("http://127.0.0.1:{PORT}/.deskgate/saml/onelogin/metadata");
    let url = format!(
        "{idp}/saml2/idp/SSOService.php?spentityid={}",
        url::form_urlencoded::byte_serialize(entity.as_bytes()).collect::<String>()
    );
    let fields = at_idp(&url, "bob@corp.example.com").await;
    let mut b = Browser::new(&stack);
    let done = post_acs(&mut b, &fields).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(b.whoami().await["headers"]["x-deskgate-usergroups"], "everyone,registered");

    let mut replay = Browser::new(&stack);
    let again = post_acs(&mut replay, &fields).await;
    assert_eq!(again.status, 400);
    assert!(again.body.contains("already used"), "the replay cache refuses it: {}", again.body);
    assert!(replay.session_cookie().is_none());
}

/// With `allow_idp_initiated` off (the default), a sign-in started at the IdP's portal is
/// refused with a page that says sign-ins start here and names the setting, rather than
/// "this sign-in has expired".
#[tokio::test]
async fn an_idp_initiated_response_when_not_allowed_says_sign_ins_start_here() {
    let Some(idp) = peer("DESKGATE_TEST_SAML_IDP") else { return };
    let (stack, _turn) = stack(&idp, false).await;
    let entity = format!("http://127.0.0.1:{PORT}/.deskgate/saml/onelogin/metadata");
    let url = format!(
        "{idp}/saml2/idp/SSOService.php?spentityid={}",
        url::form_urlencoded::byte_serialize(entity.as_bytes()).collect::<String>()
    );
    let fields = at_idp(&url, "bob@corp.example.com").await;
    let mut b = Browser::new(&stack);
    let done = post_acs(&mut b, &fields).await;
    assert_eq!(done.status, 400, "{}", done.body);
    assert!(
        done.body.contains("must start here") && done.body.contains("allow_idp_initiated = true"),
        "{}",
        done.body
    );
    assert!(!done.body.contains("expired or was already used"), "{}", done.body);
    assert!(b.session_cookie().is_none());
}

#[tokio::test]
async fn the_service_provider_metadata_names_our_entity_and_acs() {
    let Some(idp) = peer("DESKGATE_TEST_SAML_IDP") else { return };
    let (stack, _turn) = stack(&idp, false).await;
    let mut b = Browser::new(&stack);
    let page = b.get("/.deskgate/saml/onelogin/metadata").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.headers.get("content-type").unwrap(), "application/samlmetadata+xml");
    assert!(
        page.body.contains(&format!("entityID=\"http://127.0.0.1:{PORT}/.deskgate/saml/onelogin/metadata\""))
    );
    assert!(page.body.contains(&format!("Location=\"http://127.0.0.1:{PORT}/.deskgate/saml/onelogin/acs\"")));
}
