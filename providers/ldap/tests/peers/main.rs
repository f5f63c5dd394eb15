//! Sign-ins against real directories: Samba as an Active Directory domain controller and
//! OpenLDAP, started by `tests/peers/samba.sh` and `tests/peers/openldap.sh`.
//!
//! The peers are found through environment variables:
//! `DESKGATE_TEST_SAMBA1` and `DESKGATE_TEST_SAMBA2` (the DCs' addresses, DC1 started under
//! the name `dc1` or `DESKGATE_TEST_SAMBA1_NAME`), `DESKGATE_TEST_SAMBA_CA` (the test CA),
//! `DESKGATE_TEST_OPENLDAP` (`ldap://127.0.0.1:PORT`) and `DESKGATE_TEST_OPENLDAP_LOG`.
//! Without one, a test fails under `CI=true` and otherwise says SKIP and returns.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use deskgate_ldap::{Kind, LdapConfig, SignIn};
use deskgate_provider::AuthError;
use deskgate_provider::config::GroupRule;

const SERVICE_PASSWORD: &str = "Svc-Passw0rd!";
const AD_BASE: &str = "DC=corp,DC=example,DC=com";
const HELPDESK: &str = "CN=Helpdesk Agents,CN=Users,DC=corp,DC=example,DC=com";
const VIPS: &str = "CN=VIPs,CN=Users,DC=corp,DC=example,DC=com";
const DOMAIN_USERS: &str = "CN=Domain Users,CN=Users,DC=corp,DC=example,DC=com";
const POWER_USERS: &str = "CN=Power Users,CN=Users,DC=corp,DC=example,DC=com";
const LDAP_BASE: &str = "dc=deskgate,dc=test";

/// The Samba tests share the DCs with the failover test, which stops one of them.
static SAMBA: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

fn peer(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Some(value),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{var} is not set; CI must start the test peers (see providers/ldap/README.md)")
        }
        _ => {
            eprintln!(
                "\n********************************************************************\n\
                 SKIP: {var} is not set, so this test did not run against a real\n\
                 directory. Start the peers (providers/ldap/README.md) and set it.\n\
                 ********************************************************************\n"
            );
            None
        }
    }
}

macro_rules! require {
    ($var:expr) => {
        match peer($var) {
            Some(value) => value,
            None => return,
        }
    };
}

fn password_file() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("deskgate-ldap-it-{}.pw", std::process::id()));
        std::fs::write(&path, format!("{SERVICE_PASSWORD}\n")).expect("write password file");
        path
    })
}

fn ad_config(urls: &[String]) -> LdapConfig {
    LdapConfig {
        kind: Kind::ActiveDirectory,
        urls: urls.to_vec(),
        starttls: false,
        allow_plaintext: true,
        ca_file: None,
        bind_dn: "svc-deskgate@corp.example.com".into(),
        bind_password_file: Some(password_file().to_owned()),
        bind_password_env: None,
        base_dn: AD_BASE.into(),
        user_filter: None,
        email_attribute: None,
        display_name_attribute: None,
        organization_attribute: None,
        group_base_dn: None,
        domains: None,
        nested_groups: true,
        max_group_depth: 8,
        connect_timeout: Some("3s".into()),
        timeout: Some("5s".into()),
        retry_after: Some("30s".into()),
        create_accounts: false,
        link_by_email: false,
        groups: vec![GroupRule { group: VIPS.to_lowercase(), usergroups: vec!["vip".into()] }],
        display_name: None,
    }
}

fn openldap_config(url: &str) -> LdapConfig {
    LdapConfig {
        kind: Kind::Ldap,
        bind_dn: format!("cn=deskgate,ou=services,{LDAP_BASE}"),
        base_dn: LDAP_BASE.into(),
        group_base_dn: Some(format!("ou=groups,{LDAP_BASE}")),
        groups: Vec::new(),
        ..ad_config(&[url.to_owned()])
    }
}

fn samba_url(var: &str) -> Option<String> {
    peer(var).map(|ip| format!("ldap://{ip}"))
}

fn has_group(sign_in: &SignIn, dn: &str) -> bool {
    sign_in.identity.groups.iter().any(|g| g.eq_ignore_ascii_case(dn))
}

fn sorted_lower(groups: &[String]) -> Vec<String> {
    let mut out: Vec<String> = groups.iter().map(|g| g.to_lowercase()).collect();
    out.sort();
    out
}

fn code(result: Result<SignIn, AuthError>) -> &'static str {
    match result {
        Ok(_) => "signed-in",
        Err(error) => error.code(),
    }
}

mod ad;
mod failover;
mod openldap;
