//! Entry points of the cargo-fuzz targets in `fuzz/` (feature `fuzzing`; not a stable API).
//! Each takes arbitrary bytes, runs one edge of deskgate on them and asserts what must hold
//! whatever the input; a failed assertion or a panic is a crash for the fuzzer. The unit
//! tests run every entry point over its committed seeds in `fuzz/seeds/<target>/`.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use futures_util::FutureExt as _;
use http::{HeaderMap, HeaderName, HeaderValue, Method, header};

use crate::clock::Clock;
use crate::config::load_str;
use crate::forwarded;
use crate::identity::{HeaderNames, normalize_name};
use crate::policy::{Decision, Policy, Rule, Who, decide, normalize};
use crate::session::{MemoryStore, Session, SessionKey, SessionStore};
use crate::usergroups::Resolved;
use crate::web;

/// The cookie name the `cookies` target looks for (deskgate's default).
pub const COOKIE_NAME: &str = "deskgate_session";
/// The one cookie value that has a session in the `cookies` target's store.
pub const SEED_COOKIE: &str = "c2Vzc2lvbi1mb3ItZnV6emluZy1vbmx5LTAwMDAwMDAwMDAw";

/// Cookie parsing and session lookup: `data` holds Cookie header values, one per line.
/// The session is found exactly when our cookie's value is the seeded one, and once the
/// cookie is removed for the upstream no spelling of it is left.
pub fn cookies(data: &[u8]) {
    let mut headers = HeaderMap::new();
    for line in data.split(|b| *b == b'\n') {
        if let Ok(value) = HeaderValue::from_bytes(line) {
            headers.append(header::COOKIE, value);
        }
    }
    let value = web::cookie(&headers, COOKIE_NAME);
    if let Some(value) = value {
        let found = store()
            .get_with_epoch(&SessionKey::from_cookie(value))
            .now_or_never()
            .and_then(Result::ok)
            .flatten();
        assert_eq!(found.is_some(), value == SEED_COOKIE, "session lookup for {value:?}");
    }
    let others = |h: &HeaderMap| -> Vec<String> {
        h.get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .map(str::trim)
            .filter(|p| !p.is_empty() && p.split_once('=').is_none_or(|(k, _)| k != COOKIE_NAME))
            .map(str::to_owned)
            .collect()
    };
    let before = others(&headers);
    web::remove_cookie(&mut headers, COOKIE_NAME);
    assert_eq!(web::cookie(&headers, COOKIE_NAME), None, "our cookie survived removal");
    assert_eq!(others(&headers), before, "removal touched other cookies");
}

fn store() -> &'static MemoryStore {
    static STORE: OnceLock<MemoryStore> = OnceLock::new();
    STORE.get_or_init(|| {
        let store = MemoryStore::new(Clock::manual(1_000));
        let session = Session {
            account_id: "a-1".into(),
            name: "Seed".into(),
            provider: "builtin".into(),
            resolved: Arc::new(Resolved::default()),
            ..Session::default()
        };
        // The in-memory store never waits.
        let _ = store.put(&SessionKey::from_cookie(SEED_COOKIE), session, u64::MAX).now_or_never();
        store
    })
}

/// The rules the `paths` target decides under.
pub fn policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        let rules = [
            ("/", "portal.view"),
            ("/kb", "kb.read"),
            ("/kb/advanced", "kb.category.advanced"),
            ("/chat/sales", "chat.sales"),
            ("/billing", "billing.view"),
            ("/api/*/admin", "api.admin"),
        ];
        Policy::new(rules.iter().filter_map(|(p, perm)| Rule::new(p, perm).ok()).collect())
    })
}

/// Path normalization and decision: `data` is a request path. Whatever it is, a normalized
/// path has no empty or dot segments, an ASCII one has a single reading, the path sent
/// upstream normalizes to itself and is decided the same, and a pattern accepted as a rule
/// reads one way only.
pub fn paths(data: &[u8]) {
    let Ok(raw) = std::str::from_utf8(data) else { return };
    if let Ok(rule) = Rule::new(raw, "x") {
        let normal = normalize(&rule.pattern);
        assert!(normal.is_ok_and(|n| n.readings().count() == 1), "accepted pattern {raw:?} is ambiguous");
    }
    let Ok(normal) = normalize(raw) else { return };
    assert!(normal.segments().iter().all(|s| !s.is_empty() && s != "." && s != ".."), "{raw:?}");
    for reading in normal.readings() {
        assert!(reading.iter().all(|s| !s.is_empty() && s != "." && s != ".."), "{raw:?}");
    }
    if normal.segments().iter().all(|s| s.is_ascii()) {
        assert_eq!(normal.readings().count(), 1, "ASCII path {raw:?} read more than one way");
    }
    let again = normalize(&normal.encoded());
    assert_eq!(again.as_ref().ok(), Some(&normal), "normalizing {raw:?} twice changed it");
    let all = Resolved {
        usergroups: vec![],
        permissions: [
            "api.admin",
            "billing.view",
            "chat.sales",
            "kb.category.advanced",
            "kb.read",
            "portal.view",
        ]
        .map(String::from)
        .to_vec(),
    };
    let portal = Resolved { usergroups: vec![], permissions: vec!["portal.view".into()] };
    // Every rule is granted, and `/` covers every path.
    assert_eq!(
        decide(policy(), true, Who::SignedIn(&all), &Method::GET, &normal),
        Decision::Allow,
        "{raw:?}"
    );
    // Signed in, a refusal is a Deny; a guest is refused only where no rule would let them in.
    assert_ne!(
        decide(policy(), true, Who::SignedIn(&portal), &Method::GET, &normal),
        Decision::LoginRequired,
        "{raw:?}"
    );
    let guest = decide(policy(), true, Who::Guest(&portal), &Method::GET, &normal);
    assert!(matches!(guest, Decision::Allow | Decision::LoginRequired), "{raw:?}: {guest:?}");
}

/// Header stripping: `data` holds header lines, `name: value` or a bare name. Afterwards no
/// spelling of an identity or forwarding header is left and every other header is intact.
pub fn headers(data: &[u8]) {
    let names = HeaderNames::new("X-Deskgate-").ok();
    let mut headers = HeaderMap::new();
    for line in data.split(|b| *b == b'\n') {
        let (name, value) = match line.iter().position(|b| *b == b':') {
            Some(i) => (&line[..i], line[i + 1..].trim_ascii()),
            None => (line, &b""[..]),
        };
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            headers.append(n, v);
        }
    }
    // Sorted: the map's order may change as entries go.
    let kept = |h: &HeaderMap| {
        let mut kept: Vec<(String, Vec<u8>)> = h
            .iter()
            .filter(|(n, _)| {
                let spelled = normalize_name(n.as_str());
                !spelled.starts_with("x-deskgate-") && !forwarding(&spelled)
            })
            .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
            .collect();
        kept.sort();
        kept
    };
    let before = kept(&headers);
    if let Some(names) = &names {
        names.strip(&mut headers);
    }
    forwarded::strip(&mut headers);
    for name in headers.keys() {
        let spelled = normalize_name(name.as_str());
        assert!(!spelled.starts_with("x-deskgate-"), "identity header {name} survived");
        assert!(!forwarding(&spelled), "forwarding header {name} survived");
    }
    assert_eq!(kept(&headers), before, "stripping touched another header");
}

/// An independent statement of the forwarding headers, over a name already lower-cased
/// with `_` spelled `-`.
fn forwarding(spelled: &str) -> bool {
    spelled.strip_prefix("x-forwarded-").is_some_and(|rest| !rest.is_empty())
        || matches!(spelled, "forwarded" | "x-real-ip" | "x-client-ip")
}

/// Config loading: `data` is a config file. Nothing panics, and every problem is located on
/// a line of the text. Inputs with a key naming a file are skipped: reading files is not
/// parsing, and a fuzzer could name `/dev/zero`.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if names_a_file(text) {
        return;
    }
    if let Err(problems) = load_str("fuzz.toml", text, Path::new("/nonexistent/deskgate-fuzz")) {
        assert!(!problems.is_empty(), "an error without a problem");
        let lines = text.split('\n').count();
        for p in problems {
            assert!(p.line >= 1 && p.line <= lines && p.col >= 1, "{p} is outside the text");
        }
    }
}

/// Whether any key of the document (quoted and escaped keys decoded) mentions `file`. A
/// document that does not parse names nothing: loading stops at its syntax.
fn names_a_file(text: &str) -> bool {
    fn table(t: &dyn toml_edit::TableLike) -> bool {
        t.iter().any(|(k, v)| k.to_ascii_lowercase().contains("file") || item(v))
    }
    fn value(v: &toml_edit::Value) -> bool {
        match v {
            toml_edit::Value::InlineTable(t) => table(t),
            toml_edit::Value::Array(a) => a.iter().any(value),
            _ => false,
        }
    }
    fn item(i: &toml_edit::Item) -> bool {
        match i {
            toml_edit::Item::Table(t) => table(t),
            toml_edit::Item::ArrayOfTables(a) => a.iter().any(|t| table(t)),
            toml_edit::Item::Value(v) => value(v),
            toml_edit::Item::None => false,
        }
    }
    text.parse::<toml_edit::DocumentMut>().is_ok_and(|doc| table(doc.as_table()))
}

#[cfg(test)]
mod tests;
