//! Groups that stay current during a session: every `session.recheck_interval` the provider
//! is asked again (a directory with the service connection, an OIDC provider with the
//! session's refresh token), on the injected clock. OpenLDAP and Samba are started by
//! `bash tests/run`; the OIDC tests run the gateway on port 19670, which the provider must
//! know as a callback.

use std::process::{Command, Stdio};

use crate::faults::Relay;
use crate::oidc::{AtProvider, SECRET_FILE, provider};
use crate::support::*;
use deskgate::session::SessionStore;

const BASE: &str = "dc=deskgate,dc=test";
const PASSWORD_FILE: (&str, &str) = ("ldap-service.pw", "Svc-Passw0rd!\n");

/// Runs an LDIF change as the OpenLDAP peer's administrator.
fn ldapmodify(url: &str, ldif: &str) {
    let mut child = Command::new("ldapmodify")
        .args(["-x", "-a", "-H", url, "-D", &format!("cn=admin,{BASE}"), "-w", "admin-secret"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("ldapmodify runs (ldap-utils)");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), ldif.as_bytes()).unwrap();
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success(), "ldapmodify: {ldif}");
}

/// A person of their own in a group of their own, removed again when dropped.
struct Entries {
    url: String,
    uid: String,
}

impl Entries {
    fn add(url: &str) -> Entries {
        let uid = format!("rc{}", &new_id()[..10]);
        let hash = Command::new("slappasswd").args(["-s", &format!("Passw0rd-{uid}")]).output().unwrap();
        let hash = String::from_utf8(hash.stdout).unwrap();
        ldapmodify(
            url,
            &format!(
                "dn: uid={uid},ou=people,{BASE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: Example\n\
                 mail: {uid}@deskgate.test\nuserPassword: {}\n\n\
                 dn: cn={uid},ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: {uid}\n\
                 member: uid={uid},ou=people,{BASE}\nmember: cn=nobody,{BASE}\n",
                hash.trim()
            ),
        );
        Entries { url: url.to_owned(), uid }
    }

    fn person(&self) -> String {
        format!("uid={},ou=people,{BASE}", self.uid)
    }

    fn group(&self) -> String {
        format!("cn={},ou=groups,{BASE}", self.uid)
    }

    fn leave_group(&self) {
        ldapmodify(
            &self.url,
            &format!("dn: {}\nchangetype: modify\ndelete: member\nmember: {}\n", self.group(), self.person()),
        );
    }

    fn delete_person(&self) {
        ldapmodify(&self.url, &format!("dn: {}\nchangetype: delete\n", self.person()));
    }
}

impl Drop for Entries {
    fn drop(&mut self) {
        for dn in [self.person(), self.group()] {
            let _ = Command::new("ldapdelete")
                .args(["-x", "-H", &self.url, "-D", &format!("cn=admin,{BASE}"), "-w", "admin-secret", &dn])
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn new_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// A gateway whose directory `dir` is reached at `url`, mapping `group` to vips.
async fn openldap_stack(url: &str, group: &str) -> Stack {
    let head = format!(
        r#"
[session]
recheck_interval = "15m"

[providers.ldap.dir]
kind = "ldap"
urls = ["{url}"]
allow_plaintext = true
bind_dn = "cn=deskgate,ou=services,{BASE}"
bind_password_file = "{pw}"
base_dn = "{BASE}"
group_base_dn = "ou=groups,{BASE}"
connect_timeout = "1s"
timeout = "2s"
create_accounts = true

[[providers.ldap.dir.groups]]
group = "{group}"
usergroups = ["vips"]
"#,
        pw = PASSWORD_FILE.0,
    );
    start(Options { head, files: vec![PASSWORD_FILE], ..Default::default() }).await
}

async fn usergroups(b: &mut Browser) -> String {
    b.whoami().await["headers"]["x-deskgate-usergroups"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_person_removed_from_a_directory_group_loses_the_usergroup_at_the_next_check_but_not_while_the_directory_is_unreachable()
 {
    let Some(url) = peer("DESKGATE_TEST_OPENLDAP") else { return };
    let entries = Entries::add(&url);
    let mut relay = Relay::start(url.trim_start_matches("ldap://").to_owned()).await;
    let stack = openldap_stack(&format!("ldap://{}", relay.addr), &entries.group()).await;
    let mut b = Browser::new(&stack);
    let page = b.sign_in_with("ldap.dir", &entries.uid, &format!("Passw0rd-{}", entries.uid)).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(usergroups(&mut b).await, "everyone,registered,vips");

    entries.leave_group();
    stack.clock.advance(14 * 60);
    assert_eq!(usergroups(&mut b).await, "everyone,registered,vips", "not before the interval");

    relay.cut();
    stack.clock.advance(2 * 60);
    assert!(b.is_signed_in().await, "an unreachable directory ends nothing");
    assert_eq!(usergroups(&mut b).await, "everyone,registered,vips", "kept as it was, never changed");

    relay.resume().await;
    stack.clock.advance(60);
    assert_eq!(usergroups(&mut b).await, "everyone,registered,vips", "the next try waits its turn");
    stack.clock.advance(61);
    assert_eq!(usergroups(&mut b).await, "everyone,registered", "asked again once it answers");
    assert!(b.is_signed_in().await, "only the group went");
}

#[tokio::test]
async fn a_deleted_directory_entry_ends_the_session_at_the_next_check() {
    let Some(url) = peer("DESKGATE_TEST_OPENLDAP") else { return };
    let entries = Entries::add(&url);
    let stack = openldap_stack(&url, &entries.group()).await;
    let mut b = Browser::new(&stack);
    let page = b.sign_in_with("ldap.dir", &entries.uid, &format!("Passw0rd-{}", entries.uid)).await;
    assert_eq!(page.status, 303, "{}", page.body);
    entries.delete_person();
    stack.clock.advance(10 * 60);
    assert!(b.is_signed_in().await, "not before the interval");
    stack.clock.advance(6 * 60);
    assert!(!b.is_signed_in().await, "gone from the directory, gone from the gateway");
}

/// Runs samba-tool on the database of the Samba peer named `name` (tests/peers/samba.sh
/// keeps it under .peers/samba/NAME).
fn samba_tool(name: &str, args: &[&str]) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".peers/samba").join(name);
    let out = Command::new("samba-tool")
        .args(args)
        .arg(format!("--configfile={}", dir.join("etc/smb.conf").display()))
        .arg("-H")
        .arg(dir.join("private/sam.ldb"))
        .output()
        .expect("samba-tool runs");
    assert!(out.status.success(), "samba-tool {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn a_disabled_expired_or_deleted_ad_account_ends_its_session_at_the_next_check() {
    let Some(ip) = peer("DESKGATE_TEST_SAMBA1") else { return };
    let Some(ca) = peer("DESKGATE_TEST_SAMBA_CA") else { return };
    let Some(dc) = peer("DESKGATE_TEST_SAMBA1_NAME") else { return };
    let head = format!(
        r#"
[registration]
mode = "disabled"

[session]
recheck_interval = "15m"

[providers.ldap.corp]
kind = "active-directory"
urls = ["ldaps://{ip}"]
ca_file = "{ca}"
bind_dn = "svc-deskgate@corp.example.com"
bind_password_file = "{pw}"
base_dn = "DC=corp,DC=example,DC=com"
create_accounts = true
"#,
        pw = PASSWORD_FILE.0,
    );
    let stack = start(Options { head, files: vec![PASSWORD_FILE], ..Default::default() }).await;
    let id = &new_id()[..8];
    let (disabled, expired, deleted) = (format!("rcd{id}"), format!("rce{id}"), format!("rcx{id}"));
    let mut browsers = Vec::new();
    for user in [&disabled, &expired, &deleted] {
        samba_tool(&dc, &["user", "create", user, "Passw0rd-Recheck1!"]);
        let mut b = Browser::new(&stack);
        let page = b.sign_in_with("ldap.corp", user, "Passw0rd-Recheck1!").await;
        assert_eq!(page.status, 303, "{user}: {}", page.body);
        browsers.push(b);
    }
    samba_tool(&dc, &["user", "disable", &disabled]);
    // Expires now: AD's accountExpires, in the directory's own clock.
    samba_tool(&dc, &["user", "setexpiry", &expired, "--days=0"]);
    samba_tool(&dc, &["user", "delete", &deleted]);
    stack.clock.advance(14 * 60);
    for b in &mut browsers {
        assert!(b.is_signed_in().await, "not before the interval");
    }
    stack.clock.advance(2 * 60);
    for (b, user) in browsers.iter_mut().zip([&disabled, &expired, &deleted]) {
        assert!(!b.is_signed_in().await, "{user}'s session outlived the account");
    }
    samba_tool(&dc, &["user", "delete", &disabled]);
    samba_tool(&dc, &["user", "delete", &expired]);
}

/// Calls one of the OIDC peer's test controls.
async fn control(issuer: &str, path: &str) {
    let status = reqwest::Client::new().post(format!("{issuer}{path}")).send().await.unwrap().status();
    assert_eq!(status.as_u16(), 204, "{path}");
}

#[tokio::test]
async fn oidc_groups_follow_the_provider_after_the_interval_an_outage_keeps_the_session_and_a_revoked_grant_ends_it()
 {
    let Some(issuer) = peer("DESKGATE_TEST_OIDC_ISSUER") else { return };
    let extra = "refresh_groups = true\n\n[[providers.oidc.corp.groups]]\ngroup = \"vips\"\nusergroups = [\"vips\"]\n\n\
                 [[providers.oidc.corp.groups]]\ngroup = \"helpdesk-agents\"\nusergroups = [\"power_users\"]\n";
    let head = format!(
        "[session]\nrecheck_interval = \"15m\"\n{}",
        // A client of its own: the provider's outage below cuts off only this client.
        provider("corp", "deskgate-test-outage", "Corp", &issuer, extra)
    );
    let stack =
        start(Options { head, port: Some(19670), files: vec![SECRET_FILE], ..Default::default() }).await;
    let rex = "/test/groups?email=rex@corp.example.com";
    let mut b = Browser::new(&stack);
    let begin = b.get("/.deskgate/oidc/corp/start?next=/kb").await;
    let authorize = begin.location().unwrap().to_owned();
    assert!(authorize.contains("offline_access") && authorize.contains("prompt=consent"), "{authorize}");
    let callback = AtProvider::default().sign_in(&authorize, "rex@corp.example.com", &b.base).await;
    assert_eq!(b.get(&callback[b.base.len()..]).await.status, 303);
    assert_eq!(usergroups(&mut b).await, "everyone,registered,power_users,vips");

    control(&issuer, &format!("{rex}&group=helpdesk-agents")).await;
    stack.clock.advance(14 * 60);
    assert_eq!(usergroups(&mut b).await, "everyone,registered,power_users,vips", "not before the interval");
    stack.clock.advance(2 * 60);
    assert_eq!(usergroups(&mut b).await, "everyone,registered,power_users", "vips went at the provider");

    control(&issuer, &format!("{rex}&group=helpdesk-agents&group=vips")).await;
    control(&issuer, "/test/outage?on=1").await;
    stack.clock.advance(16 * 60);
    let during = usergroups(&mut b).await;
    control(&issuer, "/test/outage?on=0").await;
    assert_eq!(during, "everyone,registered,power_users", "an outage keeps the session as it is");

    control(&issuer, "/test/revoke?email=rex@corp.example.com").await;
    stack.clock.advance(3 * 60);
    assert!(!b.is_signed_in().await, "a revoked grant ends the session");
}

/// A replica on a clock of its own, sharing sessions in Redis and accounts in PostgreSQL.
async fn replica_on(dir: &std::path::Path, name: &str, text: &str, clock: deskgate::clock::Clock) -> Browser {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text.replace("PUBLIC_URL", &format!("http://{addr}"))).unwrap();
    let config = deskgate::config::load_file(&path).unwrap_or_else(|d| panic!("{d:?}"));
    let gateway = deskgate::Gateway::with_clock(config, clock).await.expect("replica starts");
    tokio::spawn(gateway.serve_until(listener, std::future::pending()));
    crate::scale::browser_at(addr)
}

#[tokio::test]
async fn a_recheck_on_one_replica_reaches_the_session_on_another_through_the_store() {
    let Some(url) = peer("DESKGATE_TEST_OPENLDAP") else { return };
    let Some(redis) = peer("DESKGATE_TEST_REDIS") else { return };
    let Some(db) = crate::scale::Database::create().await else { return };
    let entries = Entries::add(&url);
    let dir = TempDir::new();
    std::fs::write(dir.0.join("secret"), "a shared secret of at least thirty-two bytes").unwrap();
    std::fs::write(dir.0.join(PASSWORD_FILE.0), PASSWORD_FILE.1).unwrap();
    let prefix = RedisPrefix::new(&redis);
    // Replica B cannot reach the directory (nothing listens on 127.0.0.9): what it shows
    // after the check can only have come from A through Redis.
    let upstream = crate::scale::helpdesk().await;
    let text = |directory: &str| {
        format!(
            "[server]\npublic_url = \"PUBLIC_URL\"\n[upstream]\nurl = \"{upstream}\"\n\
             [session]\nsecret_file = \"secret\"\nrecheck_interval = \"15m\"\n\
             [storage]\naccounts = \"{accounts}\"\nsessions = \"{redis}\"\nredis_prefix = \"{prefix}\"\nredis_local_cache = \"0s\"\n\
             [providers.ldap.dir]\nkind = \"ldap\"\nurls = [\"{directory}\"]\nallow_plaintext = true\n\
             bind_dn = \"cn=deskgate,ou=services,{BASE}\"\nbind_password_file = \"{pw}\"\nbase_dn = \"{BASE}\"\n\
             group_base_dn = \"ou=groups,{BASE}\"\nconnect_timeout = \"1s\"\ncreate_accounts = true\n\
             [[providers.ldap.dir.groups]]\ngroup = \"{group}\"\nusergroups = [\"vips\"]\n{HELPDESK}",
            accounts = db.url,
            pw = PASSWORD_FILE.0,
            group = entries.group(),
        )
    };
    let now = deskgate::clock::Clock::system().now();
    let (clock_a, clock_b) = (deskgate::clock::Clock::manual(now), deskgate::clock::Clock::manual(now));
    let mut on_a = replica_on(&dir.0, "a", &text(&url), clock_a.clone()).await;
    let mut on_b = replica_on(&dir.0, "b", &text("ldap://127.0.0.9:10389"), clock_b.clone()).await;
    let page = on_a.sign_in_with("ldap.dir", &entries.uid, &format!("Passw0rd-{}", entries.uid)).await;
    assert_eq!(page.status, 303, "{}", page.body);
    on_b.cookies = on_a.cookies.clone();
    assert_eq!(usergroups(&mut on_b).await, "everyone,registered,vips");

    entries.leave_group();
    clock_a.advance(16 * 60);
    clock_b.advance(16 * 60);
    assert_eq!(usergroups(&mut on_a).await, "everyone,registered", "checked on A");
    assert_eq!(usergroups(&mut on_b).await, "everyone,registered", "B has A's result from the store");
    assert!(on_b.is_signed_in().await);
}

/// Posts a refresh with `token` at the test provider, as deskgate's client; the status.
async fn refresh_status(issuer: &str, token: &str) -> u16 {
    let discovery: serde_json::Value = reqwest::get(format!("{issuer}/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let endpoint = discovery["token_endpoint"].as_str().expect("a token endpoint");
    let form = [("grant_type", "refresh_token"), ("refresh_token", token)];
    let answer = reqwest::Client::new()
        .post(endpoint)
        .basic_auth("deskgate-test", Some(SECRET_FILE.1.trim()))
        .form(&form)
        .send()
        .await
        .unwrap();
    answer.status().as_u16()
}

#[tokio::test]
async fn signing_out_revokes_the_refresh_token_of_the_sign_in_at_the_provider() {
    let Some(issuer) = peer("DESKGATE_TEST_OIDC_ISSUER") else { return };
    let head = provider("corp", "deskgate-test", "Corp", &issuer, "refresh_groups = true\n");
    let stack =
        start(Options { head, port: Some(19671), files: vec![SECRET_FILE], ..Default::default() }).await;
    // Alice signs in twice (two browsers, a grant each); each session keeps its refresh token.
    let mut signed = Vec::new();
    for _ in 0..2 {
        let mut b = Browser::new(&stack);
        let begin = b.get("/.deskgate/oidc/corp/start?next=/kb").await;
        let authorize = begin.location().unwrap().to_owned();
        let callback = AtProvider::default().sign_in(&authorize, "alice@corp.example.com", &b.base).await;
        assert_eq!(b.get(&callback[b.base.len()..]).await.status, 303);
        let cookie = b.session_cookie().expect("a session");
        let key = deskgate::session::SessionKey::from_cookie(&cookie);
        let session = stack.gateway.sessions.get(&key).await.unwrap().expect("the session");
        let binding =
            deskgate::session::token_binding(&session.account_id, &session.provider, &session.subject);
        let sealed = session.refresh_token.as_deref().expect("a refresh token");
        let token = stack.gateway.pending.open_token(&binding, sealed).expect("it opens");
        signed.push((b, token));
    }
    let (mut leaving, revoked) = signed.remove(0);
    let (_staying, kept) = signed.remove(0);
    leaving.sign_out().await;
    assert!(!leaving.is_signed_in().await);
    // The grant of the session that ended is gone at the provider; the other one's stands.
    assert_eq!(refresh_status(&issuer, &revoked).await, 400, "revoked at sign-out");
    assert_eq!(refresh_status(&issuer, &kept).await, 200, "another session's grant is untouched");
}
