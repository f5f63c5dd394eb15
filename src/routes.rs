//! Which upstream a proxied request goes to: `[[routes]]` send a path prefix and/or a host
//! to a named upstream (`[upstreams.<id>]`); everything else goes to `[upstream]`.
//!
//! A prefix matches whole segments of the normalized path, in the same plain reading the
//! rules use (lower case): `/api` covers `/api`, `/api/` and `/API/x`, never `/apix`; the
//! tricks normalization settles (`//api`, `/./api`, `/x/../api`, `/%2Fapi`) are settled
//! before a route is chosen. A host is matched like a rule's host: lower case, without the
//! port, `*.example.com` wildcards. The most specific route wins: one that names the
//! request's host beats one that does not (an exact name beats a wildcard), then the
//! longest prefix. Routing only chooses where a request goes: rules and identity headers
//! are decided the same for every upstream, before the route is looked at.

use crate::policy::{HostPattern, NormalPath, request_host};

/// One `[[routes]]` entry, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The host it is for; `None`: any host.
    pub host: Option<HostPattern>,
    /// The path prefix's segments, lower case; empty: every path.
    pub prefix: Vec<String>,
    /// The `[upstreams.<id>]` it sends to.
    pub upstream: String,
}

impl Route {
    fn specificity(&self) -> (usize, usize) {
        (self.host.as_ref().map_or(0, |h| h.specificity().saturating_add(1)), self.prefix.len())
    }

    fn covers(&self, host: Option<&str>, path: &[String]) -> bool {
        let host_ok = match (&self.host, host) {
            (None, _) => true,
            (Some(pattern), Some(host)) => pattern.covers(host),
            (Some(_), None) => false,
        };
        host_ok && path.len() >= self.prefix.len() && path.iter().zip(&self.prefix).all(|(a, b)| a == b)
    }

    /// The route as written, for logs and `deskgate check`.
    pub fn describe(&self) -> String {
        let prefix = format!("/{}", self.prefix.join("/"));
        match &self.host {
            Some(host) => format!("{host}{prefix} → {}", self.upstream),
            None => format!("{prefix} → {}", self.upstream),
        }
    }
}

/// Every route, most specific first.
#[derive(Debug, Clone, Default)]
pub struct Routes(Vec<Route>);

impl Routes {
    /// Orders `routes` so that the first one covering a request is the most specific.
    pub fn new(mut routes: Vec<Route>) -> Routes {
        routes.sort_by_key(|r| std::cmp::Reverse(r.specificity()));
        Routes(routes)
    }

    /// The routes, most specific first.
    pub fn all(&self) -> &[Route] {
        &self.0
    }

    /// The named upstream for a request whose `Host` (or HTTP/2 authority) is `authority`,
    /// to `path`; `None`: the default `[upstream]`. The host is read (as the rules read it)
    /// only when there are routes.
    pub fn pick(&self, authority: Option<&str>, path: &NormalPath) -> Option<&str> {
        if self.0.is_empty() {
            return None;
        }
        let host = authority.and_then(request_host);
        let segments = path.lower();
        self.0.iter().find(|r| r.covers(host.as_deref(), segments)).map(|r| r.upstream.as_str())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]
mod tests {
    use super::*;
    use crate::policy::normalize;

    fn route(host: Option<&str>, prefix: &str, upstream: &str) -> Route {
        Route {
            host: host.map(|h| HostPattern::parse(h).unwrap()),
            prefix: prefix.split('/').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
            upstream: upstream.to_owned(),
        }
    }

    fn routes() -> Routes {
        Routes::new(vec![
            route(None, "/api", "api"),
            route(None, "/api/v2/chat", "chat"),
            route(Some("chat.example.com"), "/", "chat"),
            route(Some("*.example.com"), "/api", "wild"),
        ])
    }

    fn pick(host: Option<&str>, path: &str) -> Option<String> {
        routes().pick(host, &normalize(path).unwrap()).map(str::to_owned)
    }

    #[test]
    fn a_prefix_matches_at_a_segment_boundary_only() {
        assert_eq!(pick(None, "/api").as_deref(), Some("api"));
        assert_eq!(pick(None, "/api/").as_deref(), Some("api"));
        assert_eq!(pick(None, "/api/tickets/1").as_deref(), Some("api"));
        assert_eq!(pick(None, "/apix"), None);
        assert_eq!(pick(None, "/ap"), None);
        assert_eq!(pick(None, "/"), None);
        assert_eq!(pick(None, "/x/api"), None);
    }

    #[test]
    fn other_spellings_of_a_prefix_route_as_the_normalized_path() {
        for trick in
            ["/API/x", "//api/x", "/./api/x", "/%2Fapi/x", "/x/../api/x", "/%61pi/x", "/api;p/x", "\\api\\x"]
        {
            assert_eq!(pick(None, trick).as_deref(), Some("api"), "{trick}");
        }
        for not in ["/api%2Ex", "/ap%69x", "/api../x"] {
            assert_eq!(pick(None, not), None, "{not}");
        }
    }

    #[test]
    fn the_most_specific_route_wins() {
        assert_eq!(pick(None, "/api/v2/chat/room").as_deref(), Some("chat"));
        assert_eq!(pick(None, "/api/v2/other").as_deref(), Some("api"));
        // A route naming the host beats one that does not; an exact host beats a wildcard.
        assert_eq!(pick(Some("chat.example.com"), "/api/x").as_deref(), Some("chat"));
        assert_eq!(pick(Some("help.example.com"), "/api/x").as_deref(), Some("wild"));
        assert_eq!(pick(Some("help.example.com"), "/kb").as_deref(), None);
        assert_eq!(pick(Some("other.test"), "/api").as_deref(), Some("api"));
    }

    proptest::proptest! {
        /// However a path is spelled, it goes where its normalized form goes, and the API
        /// upstream gets exactly the paths whose first segment is `api` in any case.
        #[test]
        fn a_path_is_routed_as_its_normalized_form(
            pieces in proptest::collection::vec(
                proptest::sample::select(&["api", "API", "Api", "apix", "ap", "v2", "chat", "x", ".", "..", "", "%2F", "%5c", "%61pi", "api;p", "a%2Fpi"][..]),
                0..6,
            ),
        ) {
            let raw = format!("/{}", pieces.join("/"));
            let Ok(normal) = normalize(&raw) else { return Ok(()) };
            let again = normalize(&normal.encoded()).unwrap();
            let routes = routes();
            proptest::prop_assert_eq!(routes.pick(None, &normal), routes.pick(None, &again));
            let first_is_api = normal.lower().first().is_some_and(|s| s == "api");
            proptest::prop_assert_eq!(routes.pick(None, &normal).is_some(), first_is_api, "{}", raw);
        }
    }
}
