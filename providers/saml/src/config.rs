//! The `[providers.saml.<id>]` table and its compile step: every problem is reported at
//! once, each at its key path relative to the table.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use deskgate_provider::config::{GroupRule, Problem, parse_duration};
use openssl::pkey::{PKey, Private};

use crate::clock::{Clock, SystemClock};
use crate::identity::Mapping;
use crate::metadata::{self, IdpMetadata, Source};
use crate::{Saml, Settings};

/// A provider whose defaults deskgate knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// OneLogin: metadata at `https://<subdomain>.onelogin.com/saml/metadata/<app id>`,
    /// emailAddress NameIDs, attributes `User.email` and `memberOf`.
    Onelogin,
}

/// One SAML identity provider, as written in the configuration file.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct SamlConfig {
    /// `onelogin`, or absent for any other SAML 2.0 IdP; decides the defaults below.
    #[serde(default)]
    pub preset: Option<Preset>,
    /// File holding the IdP's metadata XML. Exactly one of this and `idp_metadata_url`.
    #[serde(default)]
    pub idp_metadata_file: Option<PathBuf>,
    /// URL of the IdP's metadata: `https://`, or `http://` on a loopback address only.
    #[serde(default)]
    pub idp_metadata_url: Option<String>,
    /// How often the metadata is read again, e.g. `1h` (the default); a failed read keeps
    /// the last good metadata.
    #[serde(default)]
    pub metadata_refresh: Option<String>,
    /// This service provider's entity id; default `<public URL>/.deskgate/saml/<id>/metadata`.
    #[serde(default)]
    pub entity_id: Option<String>,
    /// PEM RSA private key that signs AuthnRequests (RSA-SHA256); needs `sp_cert_file`.
    #[serde(default)]
    pub sp_key_file: Option<PathBuf>,
    /// PEM certificate of `sp_key_file`, published in the SP metadata.
    #[serde(default)]
    pub sp_cert_file: Option<PathBuf>,
    /// Accept responses the IdP sends without a request from deskgate (default false).
    #[serde(default)]
    pub allow_idp_initiated: bool,
    /// Require the Assertion itself to be signed, as the SP metadata then declares
    /// (`WantAssertionsSigned`); default true. With false, a signed Response around an
    /// unsigned Assertion is accepted too, and the metadata says so.
    #[serde(default)]
    pub want_assertions_signed: Option<bool>,
    /// How far the IdP's clock may be off, default `2m`, at most `5m`.
    #[serde(default)]
    pub clock_skew: Option<String>,
    /// NameID format to ask for; OneLogin default emailAddress, otherwise the IdP's choice.
    #[serde(default)]
    pub name_id_format: Option<String>,
    /// Attribute holding the email address (OneLogin default `User.email`); without it, an
    /// emailAddress NameID is the email.
    #[serde(default)]
    pub email_attribute: Option<String>,
    /// Attribute holding the person's display name.
    #[serde(default)]
    pub name_attribute: Option<String>,
    /// Multi-valued attribute listing the person's groups (OneLogin default `memberOf`;
    /// e.g. `groups` elsewhere).
    #[serde(default)]
    pub groups_attribute: Option<String>,
    /// How the login page names this IdP (default "OneLogin" for the preset, else "SAML").
    #[serde(default)]
    pub display_name: Option<String>,
    /// Create an account just in time for someone the IdP knows but deskgate does not.
    #[serde(default)]
    pub create_accounts: bool,
    /// Link to an existing account with the same email address.
    #[serde(default)]
    pub link_by_email: bool,
    /// Group attribute value → usergroups rules, applied by the gateway.
    #[serde(default)]
    pub groups: Vec<GroupRule>,
    /// `AuthnContextClassRef` values that mean the IdP used a second factor (e.g.
    /// `urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract`): a sign-in that
    /// carries one satisfies `mfa = "required"`.
    #[serde(default)]
    pub strong_authn_contexts: Vec<String>,
    /// The longest `SAMLResponse` form field accepted, in bytes (default 262144, 256 KiB).
    #[serde(default)]
    pub max_response_bytes: Option<usize>,
}

const DEFAULT_SKEW: Duration = Duration::from_secs(120);
const MAX_SKEW: Duration = Duration::from_secs(300);
const DEFAULT_REFRESH: Duration = Duration::from_secs(3600);
const MIN_REFRESH: Duration = Duration::from_secs(60);
const DEFAULT_MAX_RESPONSE: usize = 256 * 1024;
const MAX_RESPONSE_RANGE: std::ops::RangeInclusive<usize> = 4 * 1024..=4 * 1024 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
pub(crate) const EMAIL_FORMAT: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";

impl SamlConfig {
    /// Compiles the table into the provider `saml.<id>`, reading the metadata file and the
    /// SP key. `public_url` is the gateway's external URL (`https://gate.example.com`); the
    /// ACS is `<public_url>/.deskgate/saml/<id>/acs`. Returns every problem found.
    pub fn build(&self, id: &str, public_url: &str) -> Result<Saml, Vec<Problem>> {
        self.build_with_clock(id, public_url, Arc::new(SystemClock))
    }

    /// [`build`](Self::build) with a chosen clock for assertion lifetimes and metadata expiry.
    pub fn build_with_clock(
        &self,
        id: &str,
        public_url: &str,
        clock: Arc<dyn Clock>,
    ) -> Result<Saml, Vec<Problem>> {
        self.assemble(id, public_url, clock, false).map(|(built, _)| built)
    }

    /// As [`build`](Self::build), but a secret absent here (see [`Problem::absent`]) does not
    /// stop it: the provider is built without it, and the absent secrets are returned with
    /// it, for a config check away from the machine that holds them.
    pub fn build_allowing_absent_secrets(
        &self,
        id: &str,
        public_url: &str,
    ) -> Result<(Saml, Vec<Problem>), Vec<Problem>> {
        self.assemble(id, public_url, Arc::new(SystemClock), true)
    }

    fn assemble(
        &self,
        id: &str,
        public_url: &str,
        clock: Arc<dyn Clock>,
        absent_ok: bool,
    ) -> Result<(Saml, Vec<Problem>), Vec<Problem>> {
        let mut problems = Vec::new();
        let onelogin = self.preset == Some(Preset::Onelogin);

        let base = match url::Url::parse(public_url) {
            Ok(url) if matches!(url.scheme(), "https" | "http") && url.host().is_some() => {
                Some(public_url.trim_end_matches('/').to_owned())
            }
            _ => {
                problems.push(Problem::new(
                    "entity_id",
                    format!("the public URL `{public_url}` is not an http(s) URL"),
                ));
                None
            }
        };
        let base = base.unwrap_or_default();
        let acs = format!("{base}/.deskgate/saml/{id}/acs");
        let entity_id =
            self.entity_id.clone().unwrap_or_else(|| format!("{base}/.deskgate/saml/{id}/metadata"));
        if entity_id.trim().is_empty() || entity_id.len() > 1024 || entity_id.chars().any(char::is_whitespace)
        {
            problems
                .push(Problem::new("entity_id", "must be a URI of at most 1024 characters without spaces"));
        }

        let source = self.source(&mut problems, onelogin);
        let initial = match &source {
            Some(Source::File(path)) => read_metadata_file(&mut problems, path, clock.as_ref()),
            _ => None,
        };

        let duration =
            |problems: &mut Vec<Problem>, key: &str, value: &Option<String>, default: Duration| match value {
                None => default,
                Some(text) => parse_duration(text).unwrap_or_else(|message| {
                    problems.push(Problem::new(key, message));
                    default
                }),
            };
        let refresh = duration(&mut problems, "metadata_refresh", &self.metadata_refresh, DEFAULT_REFRESH);
        if refresh < MIN_REFRESH {
            problems.push(Problem::new("metadata_refresh", "must be at least 1m"));
        }
        let skew = duration(&mut problems, "clock_skew", &self.clock_skew, DEFAULT_SKEW);
        if skew > MAX_SKEW {
            problems.push(Problem::new("clock_skew", "must be at most 5m"));
        }

        let sp_key = self.sp_key(&mut problems);

        let attribute =
            |problems: &mut Vec<Problem>, key: &str, value: &Option<String>, preset: Option<&str>| {
                let name = value.clone().or_else(|| preset.filter(|_| onelogin).map(str::to_owned));
                if name.as_deref().is_some_and(|n| n.trim().is_empty()) {
                    problems.push(Problem::new(key, "must not be empty"));
                }
                name
            };
        let email_attribute =
            attribute(&mut problems, "email_attribute", &self.email_attribute, Some("User.email"));
        let name_attribute = attribute(&mut problems, "name_attribute", &self.name_attribute, None);
        let groups_attribute =
            attribute(&mut problems, "groups_attribute", &self.groups_attribute, Some("memberOf"));
        let name_id_format =
            attribute(&mut problems, "name_id_format", &self.name_id_format, Some(EMAIL_FORMAT));

        let max_response_bytes = self.max_response_bytes.unwrap_or(DEFAULT_MAX_RESPONSE);
        if !MAX_RESPONSE_RANGE.contains(&max_response_bytes) {
            problems.push(Problem::new("max_response_bytes", "must be between 4096 and 4194304"));
        }

        for (i, rule) in self.groups.iter().enumerate() {
            if rule.group.trim().is_empty() {
                problems.push(Problem::new(format!("groups[{i}].group"), "must not be empty"));
            }
            if rule.usergroups.is_empty() {
                problems.push(Problem::new(format!("groups[{i}].usergroups"), "name at least one usergroup"));
            }
        }

        let http = match metadata::http_client(FETCH_TIMEOUT) {
            Ok(client) => Some(client),
            Err(error) => {
                problems
                    .push(Problem::new("idp_metadata_url", format!("cannot set up an HTTP client: {error}")));
                None
            }
        };

        let (Some(source), Some(http), true) = (source, http, problems.iter().all(|p| absent_ok && p.absent))
        else {
            return Err(problems);
        };
        let (sp_key, sp_cert_der) = match sp_key {
            Some((key, cert)) => (Some(key), Some(cert)),
            None => (None, None),
        };
        let sp_metadata = match crate::sp::metadata(
            &entity_id,
            &acs,
            name_id_format.as_deref(),
            sp_cert_der.as_deref(),
            self.want_assertions_signed.unwrap_or(true),
        ) {
            Ok(xml) => xml,
            Err(message) => {
                return Err(vec![Problem::new("entity_id", format!("cannot write SP metadata: {message}"))]);
            }
        };
        let display_name =
            self.display_name.clone().unwrap_or_else(|| if onelogin { "OneLogin" } else { "SAML" }.into());
        let settings = Settings {
            provider: format!("saml.{id}"),
            entity_id,
            acs,
            source,
            refresh,
            skew,
            sp_key,
            sp_metadata,
            name_id_format,
            allow_idp_initiated: self.allow_idp_initiated,
            want_assertions_signed: self.want_assertions_signed.unwrap_or(true),
            max_response_bytes,
            mapping: Mapping {
                provider: format!("saml.{id}"),
                email_attribute,
                name_attribute,
                groups_attribute,
                strong_contexts: self.strong_authn_contexts.iter().map(|c| c.trim().to_owned()).collect(),
            },
            display_name,
            create_accounts: self.create_accounts,
            link_by_email: self.link_by_email,
            groups: self.groups.clone(),
        };
        Ok((Saml::from_parts(settings, http, clock, initial), problems))
    }

    fn source(&self, problems: &mut Vec<Problem>, onelogin: bool) -> Option<Source> {
        match (&self.idp_metadata_file, &self.idp_metadata_url) {
            (Some(path), None) => Some(Source::File(path.clone())),
            (None, Some(url)) => match check_metadata_url(url, onelogin) {
                Ok(()) => Some(Source::Url(url.clone())),
                Err(message) => {
                    problems.push(Problem::new("idp_metadata_url", message));
                    None
                }
            },
            (Some(_), Some(_)) => {
                problems.push(Problem::new(
                    "idp_metadata_file",
                    "set idp_metadata_file or idp_metadata_url, not both",
                ));
                None
            }
            (None, None) => {
                problems.push(Problem::new("idp_metadata_url", "set idp_metadata_url or idp_metadata_file"));
                None
            }
        }
    }

    /// The SP key and its certificate (DER), both or neither, and matching each other.
    fn sp_key(&self, problems: &mut Vec<Problem>) -> Option<(PKey<Private>, Vec<u8>)> {
        let (key_file, cert_file) = match (&self.sp_key_file, &self.sp_cert_file) {
            (None, None) => return None,
            (Some(key), Some(cert)) => (key, cert),
            (Some(_), None) => {
                problems.push(Problem::new("sp_cert_file", "is required with sp_key_file"));
                return None;
            }
            (None, Some(_)) => {
                problems.push(Problem::new("sp_key_file", "is required with sp_cert_file"));
                return None;
            }
        };
        let key = read_file(problems, "sp_key_file", key_file, true).and_then(|pem| {
            PKey::private_key_from_pem(&pem)
                .map_err(|_| problems.push(Problem::new("sp_key_file", "is not a PEM private key")))
                .ok()
        });
        let cert = read_file(problems, "sp_cert_file", cert_file, true).and_then(|pem| {
            openssl::x509::X509::from_pem(&pem)
                .map_err(|_| problems.push(Problem::new("sp_cert_file", "is not a PEM certificate")))
                .ok()
        });
        let (key, cert) = (key?, cert?);
        // Redirect-binding signatures are RSA-SHA256 here; IdPs expect ECDSA ones in XML-DSig's
        // raw form, which OpenSSL does not produce.
        if key.rsa().is_err() {
            problems.push(Problem::new("sp_key_file", "must be an RSA key"));
            return None;
        }
        let matches = cert.public_key().is_ok_and(|public| public.public_eq(&key));
        if !matches {
            problems.push(Problem::new("sp_cert_file", "does not belong to the key in sp_key_file"));
            return None;
        }
        match cert.to_der() {
            Ok(der) => Some((key, der)),
            Err(_) => {
                problems.push(Problem::new("sp_cert_file", "cannot be encoded"));
                None
            }
        }
    }
}

/// Reads a file the config names; a secret one (the SP key and its certificate) that does
/// not exist is an absent secret.
fn read_file(problems: &mut Vec<Problem>, key: &str, path: &Path, secret: bool) -> Option<Vec<u8>> {
    std::fs::read(path)
        .map_err(|error| {
            let problem = Problem::reading(key, path, &error);
            problems.push(if secret { problem } else { Problem { absent: false, ..problem } })
        })
        .ok()
}

fn read_metadata_file(problems: &mut Vec<Problem>, path: &Path, clock: &dyn Clock) -> Option<IdpMetadata> {
    let bytes = read_file(problems, "idp_metadata_file", path, false)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| problems.push(Problem::new("idp_metadata_file", "is not UTF-8")))
        .ok()?;
    metadata::parse(&text, clock.now())
        .map_err(|error| {
            problems.push(Problem::new("idp_metadata_file", format!("{}: {error}", path.display())))
        })
        .ok()
}

/// `https://`, or `http://` to a loopback address (a test IdP); for OneLogin, its shape.
fn check_metadata_url(text: &str, onelogin: bool) -> Result<(), String> {
    let url = url::Url::parse(text).map_err(|error| format!("`{text}` is not a URL: {error}"))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => return Err(format!("`{text}` has no host")),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err(format!("`{text}` must be https:// (http:// only on a loopback address)")),
    }
    if onelogin {
        let host = url.host_str().unwrap_or_default();
        let subdomain = host.strip_suffix(".onelogin.com").unwrap_or_default();
        let segments: Vec<&str> = url.path_segments().map(Iterator::collect).unwrap_or_default();
        let shaped = url.scheme() == "https"
            && !subdomain.is_empty()
            && !subdomain.contains('.')
            && matches!(segments.as_slice(), ["saml", "metadata", app] if !app.is_empty());
        if !shaped {
            return Err(format!(
                "`{text}` is not a OneLogin metadata URL (https://<subdomain>.onelogin.com/saml/metadata/<app id>)"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
