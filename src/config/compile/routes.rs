//! `[upstreams.<id>]` and `[[routes]]`: further applications behind the same gateway, and
//! which requests go to each.

use std::collections::BTreeMap;

use super::{Ctx, server, valid_id};
use crate::config::Upstream;
use crate::config::file::{RouteFile, UpstreamFile};
use crate::policy::{HostPattern, normalize};
use crate::routes::{Route, Routes};

pub(super) fn routes(
    cx: &mut Ctx<'_>,
    upstreams: BTreeMap<String, UpstreamFile>,
    routes: Vec<RouteFile>,
) -> (BTreeMap<String, Upstream>, Routes) {
    let mut named = BTreeMap::new();
    for (id, file) in upstreams {
        let at = format!("upstreams.{id}");
        if !valid_id(&id) {
            cx.problem(&at, "upstream ids may hold only lower-case letters, digits, `_` and `-`");
        }
        named.insert(id, server::upstream(cx, &at, Some(file)));
    }
    let mut out: Vec<Route> = Vec::new();
    for (i, r) in routes.into_iter().enumerate() {
        let at = |key: &str| format!("routes[{i}].{key}");
        let upstream = match r.upstream {
            None => {
                cx.problem(at("upstream"), "name the `[upstreams.<id>]` these requests go to");
                continue;
            }
            Some(id) if !named.contains_key(&id) => {
                let known: Vec<&str> = named.keys().map(String::as_str).collect();
                let known = if known.is_empty() { "none is defined".to_owned() } else { known.join(", ") };
                cx.problem(at("upstream"), format!("there is no `[upstreams.{id}]` (defined: {known})"));
                continue;
            }
            Some(id) => id,
        };
        let host = match r.host.as_deref().map(HostPattern::parse) {
            None => None,
            Some(Ok(h)) => Some(h),
            Some(Err(e)) => {
                cx.problem(at("host"), e);
                continue;
            }
        };
        let prefix = match r.prefix.as_deref() {
            None if host.is_none() => {
                cx.problem(at("prefix"), "a route needs a prefix, a host, or both");
                continue;
            }
            None => Vec::new(),
            Some(p) => match prefix(p) {
                Ok(segments) => segments,
                Err(e) => {
                    cx.problem(at("prefix"), e);
                    continue;
                }
            },
        };
        let route = Route { host, prefix, upstream };
        if let Some(same) = out.iter().find(|o| o.host == route.host && o.prefix == route.prefix) {
            cx.problem(
                at("prefix"),
                format!("another route already sends these requests to `{}`", same.upstream),
            );
            continue;
        }
        out.push(route);
    }
    (named, Routes::new(out))
}

/// A prefix as its lower-case segments; it must be written as normalization leaves it, so
/// that what an admin reads is what is matched.
fn prefix(text: &str) -> Result<Vec<String>, String> {
    let normal = normalize(text).map_err(|e| format!("`{text}` is not a path: {e}"))?;
    let written = text.strip_suffix('/').filter(|t| !t.is_empty()).unwrap_or(text);
    let encoded = normal.encoded();
    let plain = encoded.strip_suffix('/').filter(|t| !t.is_empty()).unwrap_or(&encoded);
    if !text.starts_with('/') || written != plain || text.contains('%') {
        return Err(format!("write the prefix as a plain path such as `/api` (here: `{plain}`)"));
    }
    Ok(normal.lower().to_vec())
}

#[cfg(test)]
mod tests {
    use super::prefix;

    #[test]
    fn prefixes_are_plain_paths() {
        assert_eq!(prefix("/api"), Ok(vec!["api".to_owned()]));
        assert_eq!(prefix("/API/v2/"), Ok(vec!["api".to_owned(), "v2".to_owned()]));
        assert_eq!(prefix("/"), Ok(Vec::new()));
        for bad in ["api", "/api//x", "/./api", "/a/../api", "/%61pi", "/api;x", "/a\\b", ""] {
            assert!(prefix(bad).is_err(), "{bad}");
        }
    }
}
