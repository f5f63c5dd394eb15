//! Signing in with directory accounts: Samba as a real Active Directory domain controller
//! and OpenLDAP, started by `bash tests/run` (tests/peers/samba.sh, tests/peers/openldap.sh).

use crate::browser::Chromium;
use crate::support::*;

const AD_BASE: &str = "DC=corp,DC=example,DC=com";
const HELPDESK_AGENTS: &str = "CN=Helpdesk Agents,CN=Users,DC=corp,DC=example,DC=com";
const VIPS: &str = "CN=VIPs,CN=Users,DC=corp,DC=example,DC=com";

/// The service account's password, written beside each stack's config (and removed with it).
const PASSWORD_FILE: (&str, &str) = ("ldap-service.pw", "Svc-Passw0rd!\n");

/// `[providers.ldap.corp]` for Samba, with the given URLs and account creation rule.
fn ad(urls: &[String], create_accounts: bool) -> Option<String> {
    let vips = VIPS.to_lowercase();
    ad_with(urls, create_accounts, "", &[(HELPDESK_AGENTS, "power_users"), (&vips, "vips")])
}

/// `[providers.ldap.corp]` for Samba with more keys and the given group → usergroup rules.
fn ad_with(urls: &[String], create_accounts: bool, keys: &str, rules: &[(&str, &str)]) -> Option<String> {
    let ca = peer("DESKGATE_TEST_SAMBA_CA")?;
    let urls: Vec<String> = urls.iter().map(|u| format!("\"{u}\"")).collect();
    // Literal TOML strings: the DNs hold backslashes and quotes, never an apostrophe.
    let rules: String = rules
        .iter()
        .map(|(group, usergroup)| {
            format!("\n[[providers.ldap.corp.groups]]\ngroup = '{group}'\nusergroups = [\"{usergroup}\"]\n")
        })
        .collect();
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
{keys}
{rules}"#,
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

// Nina's groups in the Samba peer: she is in TEAM (under OU=Teams), which is in LEADS (under
// CN=Users); her primary group is Domain Users. Each DN is written here in another of its
// valid RFC 4514 spellings than the one Samba answers with.
const LEADS_ESCAPED: &str = r#"CN=Leads\, Ost \+ Süd\; \"Nacht\",CN=Users,DC=corp,DC=example,DC=com"#;
const LEADS_HEX: &str = r"CN=Leads\2C Ost \2B S\C3\BCd\3B \22Nacht\22,CN=Users,DC=corp,DC=example,DC=com";
const LEADS_OTHER_CASE: &str = r#"cn=LEADS\, OST \+ SÜD\; \"NACHT\",cn=users,dc=CORP,dc=Example,dc=com"#;
const LEADS_SPACED: &str = r#"CN = Leads\, Ost \+ Süd\; \"Nacht\", CN=Users, DC=corp, DC=example, DC=com"#;
const TEAM_ESCAPED: &str = r"CN=\#Ω Team (Nord) *,OU=Teams,DC=corp,DC=example,DC=com";
const TEAM_HEX_LOWER: &str = r"cn=\23ω team \28nord\29 \2a,ou=teams,dc=corp,dc=example,dc=com";
const DOMAIN_USERS: &str = "CN=Domain Users,CN=Users,DC=corp,DC=example,DC=com";
const BUILTIN_USERS: &str = "CN=Users,CN=Builtin,DC=corp,DC=example,DC=com";
const TEAMS_BASE: &str = "OU=Teams,DC=corp,DC=example,DC=com";

/// The helpdesk model with one usergroup per spelling, so each rule shows on its own.
fn spelled_model() -> String {
    let mut model = HELPDESK.to_owned();
    for id in [
        "leads_escaped",
        "leads_hex",
        "leads_case",
        "leads_spaced",
        "team_escaped",
        "team_hex",
        "domain_users",
    ] {
        model.push_str(&format!("\n[usergroups.{id}]\nname = \"{id}\"\npermissions = [\"x.{id}\"]\n"));
    }
    model
}

const SPELLED_RULES: &[(&str, &str)] = &[
    (LEADS_ESCAPED, "leads_escaped"),
    (LEADS_HEX, "leads_hex"),
    (LEADS_OTHER_CASE, "leads_case"),
    (LEADS_SPACED, "leads_spaced"),
    (TEAM_ESCAPED, "team_escaped"),
    (TEAM_HEX_LOWER, "team_hex"),
    (DOMAIN_USERS, "domain_users"),
];

async fn nina_stack(port: u16, keys: &str, rules: &[(&str, &str)]) -> Option<Stack> {
    let ip = peer("DESKGATE_TEST_SAMBA1")?;
    let head = ad_with(&[format!("ldaps://{ip}")], true, keys, rules)?;
    let options = Options {
        head,
        model: spelled_model(),
        port: Some(port),
        files: vec![PASSWORD_FILE],
        ..Default::default()
    };
    Some(start(options).await)
}

async fn usergroups_of(stack: &Stack, username: &str, password: &str) -> String {
    let mut b = Browser::new(stack);
    let page = b.sign_in_with("ldap.corp", username, password).await;
    assert_eq!(page.status, 303, "{username}: {}", page.body);
    b.whoami().await["headers"]["x-deskgate-usergroups"].as_str().unwrap_or_default().to_owned()
}

/// A mapping written with backslash escapes, hex escapes, another case (non-ASCII letters
/// too), or spaces after commas names the same group as Samba's own spelling (`\3B`, `\#`).
#[tokio::test]
async fn a_group_mapping_matches_the_directorys_dn_in_every_valid_spelling() {
    let Some(stack) = nina_stack(19650, "", SPELLED_RULES).await else { return };
    let groups = usergroups_of(&stack, "nina", "Passw0rd-nina").await;
    assert_eq!(
        groups,
        "everyone,registered,domain_users,leads_case,leads_escaped,leads_hex,leads_spaced,team_escaped,team_hex",
        "every spelling of the direct group, the nested group and the primary group maps"
    );
    // Someone in none of those groups gets only the primary group's usergroup.
    assert_eq!(usergroups_of(&stack, "bob", "Passw0rd-bob").await, "everyone,registered,domain_users");
}

/// Domain Users is nobody's `member`; it counts through primaryGroupID, and only when it
/// lies under `group_base_dn`, like every other group.
#[tokio::test]
async fn the_primary_group_maps_only_when_it_lies_under_the_group_base() {
    let keys = format!("group_base_dn = \"{TEAMS_BASE}\"");
    let Some(stack) = nina_stack(19651, &keys, SPELLED_RULES).await else { return };
    assert_eq!(
        usergroups_of(&stack, "nina", "Passw0rd-nina").await,
        "everyone,registered,team_escaped,team_hex",
        "Domain Users and Leads lie outside OU=Teams"
    );
    assert_eq!(usergroups_of(&stack, "bob", "Passw0rd-bob").await, "everyone,registered");
}

/// `OTHERDOMAIN\alice` used to sign in as CORP's alice. A domain or UPN suffix the provider
/// does not serve is refused with the usual message; by default the provider serves the
/// domain's own NetBIOS and DNS names, read from the directory, and `domains` replaces them.
#[tokio::test]
async fn a_down_level_domain_or_upn_suffix_that_is_not_ours_signs_nobody_in() {
    let Some(stack) = nina_stack(19652, "", &[(DOMAIN_USERS, "domain_users")]).await else { return };
    for spelling in
        ["OTHERDOMAIN\\alice", "alice@other.example.com", "alice@corp.example.com.evil", "EXAMPLE\\alice"]
    {
        let mut b = Browser::new(&stack);
        let page = b.sign_in_with("ldap.corp", spelling, "Passw0rd-alice").await;
        assert_eq!(page.status, 401, "{spelling}: {}", page.body);
        assert!(page.body.contains("The username or password is not correct."), "{spelling}: {}", page.body);
        assert!(b.session_cookie().is_none(), "{spelling} got a session");
    }
    for spelling in
        ["CORP\\alice", "corp\\alice", "corp.example.com\\alice", "alice@CORP.EXAMPLE.COM", "alice"]
    {
        assert!(
            usergroups_of(&stack, spelling, "Passw0rd-alice").await.contains("domain_users"),
            "{spelling}"
        );
    }

    let keys = "domains = [\"LEGACY\", \"corp.example.com\"]";
    let Some(listed) = nina_stack(19653, keys, &[(DOMAIN_USERS, "domain_users")]).await else { return };
    for (spelling, signs_in) in
        [("LEGACY\\alice", true), ("alice@corp.example.com", true), ("CORP\\alice", false), ("alice", true)]
    {
        let mut b = Browser::new(&listed);
        let page = b.sign_in_with("ldap.corp", spelling, "Passw0rd-alice").await;
        assert_eq!(page.status, if signs_in { 303 } else { 401 }, "{spelling}: {}", page.body);
    }
}

/// `deskgate check` refuses a group mapping that is not a DN, naming the key and its line.
#[test]
fn an_ldap_group_mapping_that_is_not_a_dn_fails_the_check_at_its_line() {
    let dir = TempDir::new();
    let path = dir.0.join("deskgate.toml");
    let text = format!(
        "[server]\npublic_url = \"http://127.0.0.1:19654\"\n\n[upstream]\nurl = \"http://127.0.0.1:9\"\n\n\
         [providers.ldap.corp]\nkind = \"active-directory\"\nurls = [\"ldaps://dc1.corp.example.com\"]\n\
         bind_dn = \"svc@corp.example.com\"\nbind_password_env = \"DESKGATE_TEST_UNSET_LDAP_PASSWORD\"\n\
         base_dn = \"{AD_BASE}\"\n\n[[providers.ldap.corp.groups]]\ngroup = '{LEADS_HEX}'\nusergroups = [\"vips\"]\n\n\
         [[providers.ldap.corp.groups]]\ngroup = 'CN=Leads; Ost,CN=Users,{AD_BASE}'\nusergroups = [\"vips\"]\n{HELPDESK}"
    );
    std::fs::write(&path, text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_deskgate"))
        .arg("check")
        .arg(&path)
        .env_remove("DESKGATE_TEST_UNSET_LDAP_PASSWORD")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    let errors: Vec<&str> = stdout.lines().filter(|l| l.contains(".group:")).collect();
    assert_eq!(errors.len(), 1, "only the malformed DN is refused: {stdout}");
    assert!(
        errors[0].starts_with(&format!("{}:19:", path.display()))
            && errors[0].contains("providers.ldap.corp.groups[1].group:")
            && errors[0].contains("must be escaped"),
        "{stdout}"
    );
}

/// Markup between `<` and `>` dropped and the entities deskgate writes undone.
fn text_of(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// An administrator's browser shows, on the page of a person who signed in through AD, every
/// group the directory returned (nested and primary ones too), each marked mapped or not.
#[tokio::test]
async fn chromium_admin_sees_every_directory_group_of_a_person_marked_mapped_or_not() {
    use deskgate_ldap::dn::Dn;
    let Some(driver) = peer("DESKGATE_TEST_CHROMEDRIVER") else { return };
    let mut model = spelled_model();
    model.push_str("\n[usergroups.admins]\nname = \"Administrators\"\npermissions = [\"deskgate.admin\"]\n");
    let Some(ip) = peer("DESKGATE_TEST_SAMBA1") else { return };
    let rules = [(TEAM_HEX_LOWER, "team_hex"), (DOMAIN_USERS, "domain_users")];
    let Some(head) = ad_with(&[format!("ldaps://{ip}")], true, "", &rules) else { return };
    let options =
        Options { head, model, port: Some(19655), files: vec![PASSWORD_FILE], ..Default::default() };
    let stack = start(options).await;
    account(&stack, "admin@example.org", "Ada Admin", "correct horse battery", &["admins"]).await;

    let mut nina = Browser::new(&stack);
    assert_eq!(nina.sign_in_with("ldap.corp", "nina", "Passw0rd-nina").await.status, 303);
    let id = nina.whoami().await["headers"]["x-deskgate-user"].as_str().unwrap().to_owned();
    // What the directory returns for her, asked directly.
    let said = stack.gateway.config.ldap[0].ldap.sign_in("nina", "Passw0rd-nina").await.expect("nina");
    let returned: Vec<Dn> = said.identity.groups.iter().map(|g| Dn::parse(g).expect("a DN")).collect();
    // Builtin\Users holds Domain Users, so it comes with the primary group.
    let expected: Vec<Dn> =
        [LEADS_ESCAPED, TEAM_ESCAPED, DOMAIN_USERS, BUILTIN_USERS].map(|g| Dn::parse(g).unwrap()).to_vec();
    assert_eq!(returned.len(), expected.len(), "{:?}", said.identity.groups);
    assert!(expected.iter().all(|e| returned.contains(e)), "{:?}", said.identity.groups);

    let chrome = Chromium::start(&driver).await;
    let page_url = format!("{}/.deskgate/admin/people/{id}", stack.base);
    chrome.go(&page_url).await;
    chrome.wait_for_url("the login page", |u| u.contains("/.deskgate/login")).await;
    chrome.click("input[name=provider][value=builtin]").await;
    chrome.type_into("input[name=username]", "admin@example.org").await;
    chrome.type_into("input[name=password]", "correct horse battery").await;
    chrome.click("form[action$='/login'] button").await;
    chrome.wait_for_url("the person's page", |u| u == page_url).await;
    let page = chrome.source().await;

    let table = page
        .split("<table class=\"said\" data-provider=\"ldap.corp\">")
        .nth(1)
        .and_then(|t| t.split("</table>").next())
        .unwrap_or_else(|| panic!("no table of what ldap.corp said: {page}"));
    let rows: Vec<(Dn, String)> = table
        .split("<tr>")
        .skip(2)
        .map(|row| {
            let cells: Vec<String> = row.split("</td>").map(text_of).collect();
            let dn = Dn::parse(cells[0].trim()).unwrap_or_else(|e| panic!("{e}: {row}"));
            (dn, cells[1].trim().to_owned())
        })
        .collect();
    assert_eq!(rows.len(), returned.len(), "one row per group the directory returned: {table}");
    for (dn, outcome) in &rows {
        assert!(returned.contains(dn), "{dn:?} was not returned: {table}");
        if *dn == expected[0] || *dn == expected[3] {
            assert!(outcome.starts_with("not mapped"), "{outcome}");
        } else {
            assert!(outcome.starts_with("mapped to"), "{outcome}");
        }
    }
    assert!(rows.iter().any(|(_, o)| o == "mapped to team_hex"), "{table}");
    assert!(rows.iter().any(|(_, o)| o == "mapped to domain_users"), "{table}");
    assert!(page.contains("Ω Team"), "the name as the directory has it: {table}");
    chrome.quit().await;
}
