//! Signing in with directory accounts: Samba as a real Active Directory domain controller
//! and OpenLDAP, started by `bash tests/run` (tests/peers/samba.sh, tests/peers/openldap.sh).

use crate::support::*;

const AD_BASE: &str = "DC=corp,DC=example,DC=com";
const HELPDESK_AGENTS: &str = "CN=Helpdesk Agents,CN=Users,DC=corp,DC=example,DC=com";
const VIPS: &str = "CN=VIPs,CN=Users,DC=corp,DC=example,DC=com";

/// The service account's password, written beside each stack's config (and removed with it).
const PASSWORD_FILE: (&str, &str) = ("ldap-service.pw", "Svc-Passw0rd!\n");

/// `[providers.ldap.corp]` for Samba, with the given URLs and account creation rule.
fn ad(urls: &[String], create_accounts: bool) -> Option<String> {
    let ca = peer("DESKGATE_TEST_SAMBA_CA")?;
    let urls: Vec<String> = urls.iter().map(|u| format!("\"{u}\"")).collect();
    Some(format!(
        r#"
[registration]
mode = "disabled"

[providers.ldap.corp]
kind = "active-directory"
display_name = "Corporate account"
urls = [{urls}]
ca_file = "{ca}"
bind_dn = "svc-deskgate@corp.example.com"
bind_password_file = "{pw}"
base_dn = "{AD_BASE}"
connect_timeout = "2s"
timeout = "5s"
create_accounts = {create_accounts}

[[providers.ldap.corp.groups]]
group = "{HELPDESK_AGENTS}"
usergroups = ["power_users"]

[[providers.ldap.corp.groups]]
group = "{}"
usergroups = ["vips"]
"#,
        VIPS.to_lowercase(),
        urls = urls.join(", "),
        pw = PASSWORD_FILE.0,
    ))
}

async fn samba() -> Option<(String, Stack)> {
    let ip = peer("DESKGATE_TEST_SAMBA1")?;
    let head = ad(&[format!("ldaps://{ip}")], true)?;
    Some((ip, start(Options { head, files: vec![PASSWORD_FILE], ..Default::default() }).await))
}

#[tokio::test]
async fn ad_user_signs_in_in_three_spellings_and_gets_direct_and_nested_groups_mapped() {
    let Some((_, stack)) = samba().await else { return };
    let mut ids = Vec::new();
    for spelling in ["alice", "alice@corp.example.com", "CORP\\alice"] {
        let mut b = Browser::new(&stack);
        let login = b.get("/.deskgate/login").await;
        assert!(login.body.contains("Corporate account"), "the chooser names the directory");
        assert!(!login.body.contains("/.deskgate/register"), "registration is disabled");
        let page = b.sign_in_with("ldap.corp", spelling, "Passw0rd-alice").await;
        assert_eq!(page.status, 303, "{spelling}: {}", page.body);
        let seen = b.whoami().await;
        let h = &seen["headers"];
        assert_eq!(h["x-deskgate-provider"], "ldap.corp");
        assert_eq!(
            h["x-deskgate-usergroups"], "everyone,registered,power_users,vips",
            "{spelling}: power_users from Helpdesk Agents, vips from the group it is nested in"
        );
        assert_eq!(seen["verified"], true);
        ids.push(h["x-deskgate-user"].as_str().unwrap().to_owned());
        assert_eq!(b.get("/chat/support").await.status, 200, "VIPs reach support chat");
    }
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "one account, whatever the spelling: {ids:?}");
}

/// What the directory said at sign-in is kept with the account: `deskgate explain` names the
/// group behind each mapped usergroup, the organization behind another, and for a denied path
/// the rule and the reason, with the person signed out.
#[tokio::test]
async fn deskgate_explain_names_the_directory_group_and_the_organization_behind_each_usergroup() {
    let Some(ip) = peer("DESKGATE_TEST_SAMBA1") else { return };
    let Some(mut head) = ad(&[format!("ldaps://{ip}")], true) else { return };
    head.push_str(
        "\n[organizations.corp]\nname = \"Corp\"\ndomains = [\"corp.example.com\"]\nusergroups = [\"trial_users\"]\n\n\
         [usergroups.reporters]\nname = \"Reporters\"\npermissions = [\"reports.view\"]\n\n\
         [[rules]]\npath = \"/reports\"\npermission = \"reports.view\"\n",
    );
    let stack = start(Options { head, files: vec![PASSWORD_FILE], ..Default::default() }).await;
    let mut b = Browser::new(&stack);
    assert_eq!(b.sign_in_with("ldap.corp", "alice", "Passw0rd-alice").await.status, 303);
    assert_eq!(b.sign_out().await.status, 303);

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_deskgate"))
        .args(["explain", "--config"])
        .arg(&stack.config_path)
        .args(["--account", "alice@corp.example.com", "--path", "/reports/q3"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    println!("{text}");
    let line = |start: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(start))
            .unwrap_or_else(|| panic!("no {start}: {text}"))
            .to_lowercase()
    };
    assert!(line("Signs in:").contains("ldap.corp"), "{text}");
    assert!(
        line("power_users ").ends_with(&format!(
            "provider group mapping: group `{}` of `ldap.corp`",
            HELPDESK_AGENTS.to_lowercase()
        )),
        "{text}"
    );
    assert!(
        line("vips ")
            .ends_with(&format!("provider group mapping: group `{}` of `ldap.corp`", VIPS.to_lowercase())),
        "the nested group: {text}"
    );
    assert!(line("trial_users ").ends_with("organization `corp`"), "{text}");
    assert!(line("Rule:").ends_with("/reports requires reports.view"), "{text}");
    assert_eq!(
        line("Decision:").trim(),
        "decision:   deny — permission-missing: none of this account's usergroups grants `reports.view`"
    );
}

#[tokio::test]
async fn ad_refusals_each_get_their_own_message_and_no_session() {
    let Some((_, stack)) = samba().await else { return };
    let cases = [
        ("alice", "wrong password", "The username or password is not correct."),
        ("carol", "Passw0rd-carol", "This account is disabled."),
        ("dave", "Passw0rd-dave", "You must change your password before you can sign in."),
        ("erin", "Passw0rd-erin", "This account has expired."),
        ("frank", "Passw0rd-frank", "This account is locked"),
        ("henry", "Passw0rd-henry", "Your password has expired."),
    ];
    for (user, password, message) in cases {
        let mut b = Browser::new(&stack);
        let page = b.sign_in_with("ldap.corp", user, password).await;
        assert_eq!(page.status, 401, "{user}");
        assert!(page.body.contains(message), "{user}: expected {message:?} in {}", page.body);
        assert!(b.session_cookie().is_none(), "{user} got a session");
        assert!(!b.is_signed_in().await, "{user}");
    }
}

#[tokio::test]
async fn unknown_directory_user_gets_the_no_account_page_unless_accounts_may_be_created() {
    let Some(ip) = peer("DESKGATE_TEST_SAMBA1") else { return };
    let Some(head) = ad(&[format!("ldaps://{ip}")], false) else { return };
    let stack = start(Options { head, files: vec![PASSWORD_FILE], ..Default::default() }).await;
    let mut b = Browser::new(&stack);
    let page = b.sign_in_with("ldap.corp", "bob", "Passw0rd-bob").await;
    assert_eq!(page.status, 403);
    assert!(page.body.contains("there is no account for you here"), "{}", page.body);
    assert!(b.session_cookie().is_none());

    // The same person with `create_accounts = true` gets an account at first sign-in.
    let Some((_, open)) = samba().await else { return };
    let mut b = Browser::new(&open);
    assert_eq!(b.sign_in_with("ldap.corp", "bob", "Passw0rd-bob").await.status, 303);
    assert_eq!(b.whoami().await["headers"]["x-deskgate-email"], "bob@corp.example.com");
}

#[tokio::test]
async fn a_domain_controller_that_refuses_is_skipped_for_the_next_one() {
    let Some(ip) = peer("DESKGATE_TEST_SAMBA1") else { return };
    // Nothing listens on 127.0.0.9: the first URL refuses, the second answers.
    let Some(head) = ad(&["ldaps://127.0.0.9".to_owned(), format!("ldaps://{ip}")], true) else { return };
    let stack = start(Options { head, files: vec![PASSWORD_FILE], ..Default::default() }).await;
    for _ in 0..2 {
        let mut b = Browser::new(&stack);
        let page = b.sign_in_with("ldap.corp", "alice", "Passw0rd-alice").await;
        assert_eq!(page.status, 303, "{}", page.body);
    }
}

#[tokio::test]
async fn hostile_usernames_sign_nobody_in_and_reach_the_directory_escaped() {
    let Some(url) = peer("DESKGATE_TEST_OPENLDAP") else { return };
    let Some(log) = peer("DESKGATE_TEST_OPENLDAP_LOG") else { return };
    let head = format!(
        r#"
[providers.ldap.dir]
kind = "ldap"
urls = ["{url}"]
allow_plaintext = true
bind_dn = "cn=deskgate,ou=services,dc=deskgate,dc=test"
bind_password_file = "{pw}"
base_dn = "dc=deskgate,dc=test"
group_base_dn = "ou=groups,dc=deskgate,dc=test"
create_accounts = true

[[providers.ldap.dir.groups]]
group = "cn=staff,ou=groups,dc=deskgate,dc=test"
usergroups = ["vips"]
"#,
        pw = PASSWORD_FILE.0,
    );
    let stack = start(Options { head, files: vec![PASSWORD_FILE], ..Default::default() }).await;
    let before = std::fs::read_to_string(&log).unwrap_or_default().len();
    let long = "a".repeat(10 * 1024);
    for hostile in ["*)(uid=*", "alice)(|(objectClass=*", "alice\0", &long] {
        let mut b = Browser::new(&stack);
        let page = b.sign_in_with("ldap.dir", hostile, "Passw0rd-alice").await;
        assert_eq!(page.status, 401, "{:.40}", hostile);
        assert!(b.session_cookie().is_none());
    }
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    let logged = logged[before.min(logged.len())..].to_lowercase();
    assert!(logged.contains(r#"filter="(uid=\2a\29\28uid=\2a)""#), "the escaped filter reached slapd");
    assert!(logged.contains(r#"filter="(uid=alice\29\28|\28objectclass=\2a)""#));
    assert!(!logged.contains("filter=\"(uid=*)"), "no widened search");
    assert!(!logged.contains(&long[..200]), "an over-long name never reaches the server");

    // The generic directory: search then bind, nesting walked by deskgate (alice is in
    // helpdesk, which is in vips, which is in staff).
    let mut b = Browser::new(&stack);
    let page = b.sign_in_with("ldap.dir", "alice", "Passw0rd-alice").await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(b.whoami().await["headers"]["x-deskgate-usergroups"], "everyone,registered,vips");
}
