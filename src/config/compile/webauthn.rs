//! `[webauthn]`: the relying party that security keys and passkeys are bound to.

use super::{Ctx, Webauthn, WebauthnFile};

/// The origin (`scheme://host[:port]`) of an http(s) URL, lowercased; `None` when it has none.
fn origin_of(url: &str) -> Option<(String, String)> {
    let uri = url.parse::<http::Uri>().ok()?;
    let scheme = uri.scheme_str().filter(|s| matches!(*s, "http" | "https"))?;
    let authority = uri.authority()?;
    if authority.as_str().contains('@') {
        return None;
    }
    let host = authority.host().to_ascii_lowercase();
    let origin = match authority.port_u16() {
        Some(p) => format!("{scheme}://{host}:{p}"),
        None => format!("{scheme}://{host}"),
    };
    Some((origin, host))
}

/// Whether the WebAuthn library accepts `rp_id` for `origin` (an id that is the origin's
/// host or a parent domain of it, at a dot boundary, and a domain name, not an address).
fn usable(rp_id: &str, origin: &str) -> Result<(), String> {
    let url = webauthn_rs::prelude::Url::parse(origin).map_err(|e| format!("`{origin}`: {e}"))?;
    webauthn_rs::WebauthnBuilder::new(rp_id, &url)
        .and_then(|b| b.build())
        .map(drop)
        .map_err(|e| format!("`{rp_id}` is not a domain that `{origin}` belongs to ({e})"))
}

/// Compiles `[webauthn]`; the defaults are the public URL's host and origin. Without the
/// table, a public URL that makes no relying party (an address) is no problem: keys are
/// then not offered. With it, every key that does not work is named.
pub(super) fn webauthn(cx: &mut Ctx<'_>, f: Option<WebauthnFile>, public_url: &str) -> Option<Webauthn> {
    let present = f.is_some();
    let f = f.unwrap_or_default();
    let origin = match &f.rp_origin {
        Some(o) => match origin_of(o) {
            Some((origin, _)) if o.trim_end_matches('/').eq_ignore_ascii_case(&origin) => origin,
            _ => {
                cx.problem(
                    "webauthn.rp_origin",
                    format!("`{o}` is not an origin (`https://host[:port]`, no path)"),
                );
                return None;
            }
        },
        None => origin_of(public_url)?.0,
    };
    let host = origin_of(&origin).map(|(_, h)| h).unwrap_or_default();
    let rp_id = f.rp_id.as_deref().map_or(host, str::to_ascii_lowercase);
    match usable(&rp_id, &origin) {
        Ok(()) => Some(Webauthn { rp_id, rp_origin: origin }),
        Err(why) if present => {
            let key = if f.rp_id.is_some() { "webauthn.rp_id" } else { "webauthn.rp_origin" };
            cx.problem(key, why);
            None
        }
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Webauthn, load_str};

    fn load(extra: &str) -> Result<Option<Webauthn>, Vec<(usize, String, String)>> {
        let text = format!("[upstream]\nurl = \"http://127.0.0.1:8081\"\n{extra}");
        load_str("t.toml", &text, std::path::Path::new("/srv"))
            .map(|c| c.webauthn.clone())
            .map_err(|ds| ds.into_iter().map(|d| (d.line, d.path, d.message)).collect())
    }

    fn rp(id: &str, origin: &str) -> Option<Webauthn> {
        Some(Webauthn { rp_id: id.into(), rp_origin: origin.into() })
    }

    #[test]
    fn the_relying_party_defaults_to_the_public_url() {
        let c = load("[server]\npublic_url = \"https://Help.Example.com/desk/\"\n").expect("valid");
        assert_eq!(c, rp("help.example.com", "https://help.example.com"));
        let c = load("[server]\npublic_url = \"http://localhost:19970\"\n").expect("valid");
        assert_eq!(c, rp("localhost", "http://localhost:19970"));
    }

    #[test]
    fn a_public_url_without_a_domain_offers_no_keys_unless_webauthn_is_configured() {
        assert_eq!(load("[server]\npublic_url = \"http://127.0.0.1:8080\"\n").expect("valid"), None);
        let errors =
            load("[server]\npublic_url = \"http://127.0.0.1:8080\"\n[webauthn]\n").expect_err("refused");
        assert_eq!(errors[0].1, "webauthn.rp_origin", "{errors:?}");
    }

    #[test]
    fn a_parent_domain_is_a_relying_party_and_another_domain_is_an_error_at_its_line() {
        let head = "[server]\npublic_url = \"https://help.example.com\"\n[webauthn]\n";
        assert_eq!(
            load(&format!("{head}rp_id = \"example.com\"\n")).expect("valid"),
            rp("example.com", "https://help.example.com")
        );
        for bad in ["evil.example", "ample.com", "xhelp.example.com", "127.0.0.1"] {
            let errors = load(&format!("{head}rp_id = \"{bad}\"\n")).expect_err(bad);
            assert_eq!((errors[0].0, errors[0].1.as_str()), (6, "webauthn.rp_id"), "{bad}: {errors:?}");
        }
    }

    #[test]
    fn the_origin_must_be_an_origin() {
        let head = "[server]\npublic_url = \"https://help.example.com\"\n[webauthn]\n";
        let c =
            load(&format!("{head}rp_origin = \"https://sso.example.com:8443\"\nrp_id = \"example.com\"\n"));
        assert_eq!(c.expect("valid"), rp("example.com", "https://sso.example.com:8443"));
        for bad in [
            "https://help.example.com/path",
            "ftp://help.example.com",
            "help.example.com",
            "https://u@help.example.com",
        ] {
            let errors = load(&format!("{head}rp_origin = \"{bad}\"\n")).expect_err(bad);
            assert_eq!((errors[0].0, errors[0].1.as_str()), (6, "webauthn.rp_origin"), "{bad}: {errors:?}");
        }
        let errors = load(&format!("{head}rp_idd = \"example.com\"\n")).expect_err("unknown key");
        assert_eq!(errors[0].1, "webauthn.rp_idd", "{errors:?}");
    }
}
