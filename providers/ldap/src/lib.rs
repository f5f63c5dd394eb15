//! deskgate's LDAP and Active Directory password provider.
//!
//! A sign-in finds the person's entry with the service account (the typed name escaped
//! into the search filter), then binds as that entry's DN on a connection of its own that
//! is never used for anything else, then reads the groups the person is in. The service
//! connection is kept and shared between sign-ins; servers are tried in configured order
//! and one that refuses or times out is skipped for a while.

mod ad;
pub mod config;
mod connections;
pub mod dn;
mod error;
pub mod escape;
mod groups;
mod login;
mod recheck;
mod servers;

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deskgate_provider::config::GroupRule;
use deskgate_provider::{AuthError, Identity, PasswordProvider};
use ldap3::{LdapError, ResultEntry, Scope, SearchEntry, SearchOptions};

pub use config::{Kind, LdapConfig};
pub use error::DirectoryError;
pub use login::MAX_USERNAME_BYTES;
pub use recheck::Standing;
pub use servers::{Clock, SystemClock};

use config::Secret;
use servers::{Connector, Health, is_server_failure};

/// The compiled configuration.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) provider: String,
    pub(crate) kind: Kind,
    pub(crate) urls: Vec<String>,
    pub(crate) starttls: bool,
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    pub(crate) bind_dn: String,
    pub(crate) bind_password: Secret,
    pub(crate) base_dn: String,
    pub(crate) group_base_dn: String,
    pub(crate) user_filter: String,
    pub(crate) email_attribute: String,
    pub(crate) display_name_attribute: String,
    pub(crate) organization_attribute: String,
    /// The domains a login may name (lower case); the directory's own when `None`.
    pub(crate) domains: Option<Vec<String>>,
    pub(crate) nested_groups: bool,
    pub(crate) max_group_depth: u32,
    pub(crate) connect_timeout: Duration,
    pub(crate) timeout: Duration,
    pub(crate) retry_after: Duration,
    pub(crate) create_accounts: bool,
    pub(crate) link_by_email: bool,
    pub(crate) groups: Vec<GroupRule>,
}

/// An LDAP or Active Directory password provider. Cheap to clone; clones share the
/// service connection and the record of which servers are down.
#[derive(Debug, Clone)]
pub struct Ldap {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: Settings,
    connector: Connector,
    health: Mutex<Health>,
    clock: Arc<dyn Clock>,
    service: tokio::sync::Mutex<Option<Service>>,
    /// The directory's own domain names, once read.
    own_domains: tokio::sync::OnceCell<Vec<String>>,
}

/// The shared service connection and the index of the server it is open to.
#[derive(Debug, Clone)]
struct Service {
    ldap: ldap3::Ldap,
    server: usize,
}

/// A successful sign-in, with the server that checked the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignIn {
    /// Who signed in.
    pub identity: Identity,
    /// The URL of the server that found the entry and accepted the bind.
    pub server: String,
}

/// How the user's bind ended, when a server answered it.
enum Bind {
    /// The password was accepted by the server at this index.
    Accepted(usize),
    /// The server refused, with the AD diagnostic code if there was one.
    Refused(AuthError, Option<String>),
}

/// What the user search found.
enum Found {
    Nobody,
    One(Box<SearchEntry>),
    Several,
}

impl Ldap {
    pub(crate) fn from_settings(settings: Settings, clock: Arc<dyn Clock>) -> Self {
        let connector = Connector {
            starttls: settings.starttls,
            tls: settings.tls.clone(),
            connect_timeout: settings.connect_timeout,
        };
        let health = Mutex::new(Health::new(settings.urls.len(), settings.retry_after));
        Ldap {
            inner: Arc::new(Inner {
                settings,
                connector,
                health,
                clock,
                service: tokio::sync::Mutex::new(None),
                own_domains: tokio::sync::OnceCell::new(),
            }),
        }
    }

    /// The provider id that identities carry, `ldap.<id>`.
    pub fn provider_id(&self) -> &str {
        &self.inner.settings.provider
    }

    /// Active Directory or generic LDAP.
    pub fn kind(&self) -> Kind {
        self.inner.settings.kind
    }

    /// The configured server URLs, in the order they are tried.
    pub fn urls(&self) -> &[String] {
        &self.inner.settings.urls
    }

    /// The group DN → usergroups rules, for the gateway to apply.
    pub fn group_rules(&self) -> &[GroupRule] {
        &self.inner.settings.groups
    }

    /// Whether the gateway may create an account just in time.
    pub fn create_accounts(&self) -> bool {
        self.inner.settings.create_accounts
    }

    /// Whether the gateway may link to an existing account by email.
    pub fn link_by_email(&self) -> bool {
        self.inner.settings.link_by_email
    }

    /// Checks a username and password and says which server answered.
    pub async fn sign_in(&self, username: &str, password: &str) -> Result<SignIn, AuthError> {
        let settings = &self.inner.settings;
        let login = match login::login_name(settings.kind, username, password) {
            Ok(login) => login,
            Err(refusal) => {
                tracing::info!(
                    provider = %settings.provider,
                    reason = refusal.reason(),
                    "Sign-in refused before asking the directory"
                );
                return Err(AuthError::InvalidCredentials);
            }
        };
        if login.domain.is_some() {
            let allowed = self.domains().await.map_err(|e| self.unavailable(e))?;
            if !login::domain_allowed(&login, &allowed) {
                tracing::info!(
                    provider = %settings.provider,
                    user = %username.trim(),
                    "Sign-in names a domain this provider does not serve (see domains)"
                );
                return Err(AuthError::InvalidCredentials);
            }
        }
        let login = login.name;
        let filter = settings.user_filter.replace("{username}", &escape::filter_value(&login));

        let (service, found) = self.find_user(&filter).await.map_err(|e| self.unavailable(e))?;
        let server_url = self.url(service.server).to_owned();
        let entry = match found {
            Found::One(entry) => entry,
            Found::Nobody => {
                tracing::info!(provider = %settings.provider, user = %login, "No directory entry matches");
                return Err(AuthError::InvalidCredentials);
            }
            Found::Several => {
                tracing::warn!(
                    provider = %settings.provider,
                    user = %login,
                    "Several directory entries match; refusing rather than guessing (check user_filter)"
                );
                return Err(AuthError::InvalidCredentials);
            }
        };

        let bind_server = match self.bind_user(service.server, &entry.dn, password).await {
            Ok(Bind::Accepted(server)) => server,
            Ok(Bind::Refused(reason, ad_code)) => {
                tracing::info!(
                    provider = %settings.provider,
                    user = %login,
                    dn = %entry.dn,
                    reason = reason.code(),
                    ad_code = ad_code.as_deref().unwrap_or(""),
                    "The directory refused the password"
                );
                return Err(reason);
            }
            Err(error) => return Err(self.unavailable(error)),
        };

        let mut ldap = service.ldap.clone();
        let groups = groups::of_user(&mut ldap, settings, &server_url, &entry)
            .await
            .map_err(|e| self.unavailable(e))?;
        let identity = self.identity(&entry, &login, groups, &server_url).map_err(|e| self.unavailable(e))?;
        let server = self.url(bind_server).to_owned();
        tracing::info!(
            provider = %settings.provider,
            user = %login,
            server = %server,
            groups = identity.groups.len(),
            "Directory accepted the sign-in"
        );
        Ok(SignIn { identity, server })
    }

    /// The domains a login may name: the configured ones, else the directory's own names,
    /// read once.
    async fn domains(&self) -> Result<Vec<String>, DirectoryError> {
        let settings = &self.inner.settings;
        if let Some(domains) = &settings.domains {
            return Ok(domains.clone());
        }
        self.inner
            .own_domains
            .get_or_try_init(|| async {
                let service = self.service().await?;
                let mut ldap = service.ldap.clone();
                let url = self.url(service.server).to_owned();
                let found = ad::own_domains(&mut ldap, settings.timeout, &url).await;
                if let Err(DirectoryError::Operation { source, .. }) = &found {
                    if is_server_failure(source) {
                        self.service_failed(&service, source).await;
                    }
                }
                let found = found?;
                tracing::info!(provider = %settings.provider, domains = ?found, "The directory's own domain names");
                Ok(found)
            })
            .await
            .cloned()
    }

    /// Searches for the user on the service connection; a server that fails mid-search is
    /// marked down and the search is repeated on the next one.
    async fn find_user(&self, filter: &str) -> Result<(Service, Found), DirectoryError> {
        let settings = &self.inner.settings;
        self.search_user(&settings.base_dn, Scope::Subtree, filter).await
    }

    /// [`find_user`](Self::find_user) under any base and scope.
    async fn search_user(
        &self,
        base: &str,
        scope: Scope,
        filter: &str,
    ) -> Result<(Service, Found), DirectoryError> {
        let settings = &self.inner.settings;
        let attrs = self.user_attributes();
        let mut last = None;
        // One more round than servers: the first may be a cached connection gone stale.
        for _ in 0..=settings.urls.len() {
            let service = self.service().await?;
            let mut ldap = service.ldap.clone();
            let searched = ldap
                .with_search_options(SearchOptions::new().sizelimit(2))
                .with_timeout(settings.timeout)
                .search(base, scope, filter, attrs.clone())
                .await;
            let url = self.url(service.server);
            match searched {
                Ok(ldap3::SearchResult(raw, result)) if matches!(result.rc, 0 | 4) => {
                    let mut found = entries(raw, url)?;
                    let found = match found.len() {
                        0 => Found::Nobody,
                        1 => Found::One(Box::new(found.remove(0))),
                        _ => Found::Several,
                    };
                    return Ok((service, found));
                }
                Ok(ldap3::SearchResult(_, result)) => {
                    let error = LdapError::LdapResult { result };
                    if !is_server_failure(&error) {
                        return Err(DirectoryError::Operation {
                            operation: "user search",
                            server: url.to_owned(),
                            source: Box::new(error),
                        });
                    }
                    self.service_failed(&service, &error).await;
                    last = Some(Box::new(error));
                }
                Err(error) => {
                    self.service_failed(&service, &error).await;
                    last = Some(Box::new(error));
                }
            }
        }
        Err(DirectoryError::NoServerAnswered { tried: settings.urls.len() + 1, last })
    }

    /// Logs why the directory could not answer; the person is only told "unavailable".
    fn unavailable(&self, error: DirectoryError) -> AuthError {
        tracing::error!(
            provider = %self.inner.settings.provider,
            error = %error::chain(&error),
            "Directory unavailable"
        );
        AuthError::Unavailable(Box::new(error))
    }

    fn user_attributes(&self) -> Vec<String> {
        let s = &self.inner.settings;
        let (subject, login) = match s.kind {
            Kind::ActiveDirectory => ("objectGUID", "sAMAccountName"),
            Kind::Ldap => ("entryUUID", "uid"),
        };
        let mut attributes = vec![
            subject.to_owned(),
            login.to_owned(),
            "memberOf".to_owned(),
            s.email_attribute.clone(),
            s.display_name_attribute.clone(),
            s.organization_attribute.clone(),
        ];
        if s.kind == Kind::ActiveDirectory {
            // What names the primary group, which memberOf leaves out; and read again
            // during sessions: a disabled or expired account ends them.
            attributes.extend([
                "objectSid".to_owned(),
                "primaryGroupID".to_owned(),
                "userAccountControl".to_owned(),
                "accountExpires".to_owned(),
            ]);
        }
        attributes
    }

    fn identity(
        &self,
        entry: &SearchEntry,
        login: &str,
        groups: Vec<String>,
        server: &str,
    ) -> Result<Identity, DirectoryError> {
        let s = &self.inner.settings;
        let subject = match s.kind {
            Kind::ActiveDirectory => binary_value(entry, "objectGUID").and_then(|b| ad::guid_text(&b)),
            Kind::Ldap => first(entry, "entryUUID").or_else(|| Some(entry.dn.clone())),
        };
        let subject = subject.ok_or_else(|| DirectoryError::MalformedEntry {
            server: server.to_owned(),
            detail: format!("{} has no usable objectGUID", entry.dn),
        })?;
        let login_attribute = match s.kind {
            Kind::ActiveDirectory => "sAMAccountName",
            Kind::Ldap => "uid",
        };
        let mut identity = Identity::new(s.provider.clone(), subject);
        identity.username = first(entry, login_attribute).or_else(|| Some(login.to_owned()));
        identity.email = first(entry, &s.email_attribute);
        // The directory's mail attribute is set by its administrators, not by the person.
        identity.email_verified = identity.email.is_some();
        identity.display_name = first(entry, &s.display_name_attribute);
        identity.groups = groups;
        identity.attributes.insert("dn".to_owned(), vec![entry.dn.clone()]);
        if let Some(org) = groups::attr_values(entry, &s.organization_attribute) {
            identity.attributes.insert("organization".to_owned(), org.clone());
        }
        Ok(identity)
    }
}

impl PasswordProvider for Ldap {
    async fn verify(&self, username: &str, password: &str) -> Result<Identity, AuthError> {
        self.sign_in(username, password).await.map(|s| s.identity)
    }
}

/// Decodes search results, skipping referrals (AD returns them for its other naming
/// contexts) and intermediate messages.
pub(crate) fn entries(raw: Vec<ResultEntry>, server: &str) -> Result<Vec<SearchEntry>, DirectoryError> {
    raw.into_iter()
        .filter(|e| !e.is_ref() && !e.is_intermediate())
        .map(|e| {
            // ldap3 panics on an undecodable entry; a broken server must not take the
            // sign-in task down with it.
            std::panic::catch_unwind(AssertUnwindSafe(|| SearchEntry::construct(e))).map_err(|_| {
                DirectoryError::MalformedEntry {
                    server: server.to_owned(),
                    detail: "undecodable entry".into(),
                }
            })
        })
        .collect()
}

fn first(entry: &SearchEntry, name: &str) -> Option<String> {
    groups::attr_values(entry, name).and_then(|v| v.first()).cloned()
}

/// A binary attribute's first value; ldap3 files values that happen to be valid UTF-8
/// under the text attributes.
pub(crate) fn binary_value(entry: &SearchEntry, name: &str) -> Option<Vec<u8>> {
    let binary = entry.bin_attrs.iter().find(|(k, _)| k.eq_ignore_ascii_case(name));
    match binary {
        Some((_, values)) => values.first().cloned(),
        None => first(entry, name).map(String::into_bytes),
    }
}
