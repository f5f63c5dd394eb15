//! `X-Forwarded-*`: believed only from trusted proxies, always set by deskgate.

use std::net::IpAddr;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::config::IpRange;

/// Whether `name` equals `pattern` (lower-case, `-`) with `_` allowed for `-`. Header names
/// are already lower-case; this runs for every header of every request, so it allocates
/// nothing.
fn spelled(name: &[u8], pattern: &[u8]) -> bool {
    name.len() == pattern.len() && name.iter().zip(pattern).all(|(n, p)| n == p || (*n == b'_' && *p == b'-'))
}

/// Whether `name`, in any spelling, is a forwarding header a client could forge.
pub fn is_forwarding_header(name: &HeaderName) -> bool {
    let n = name.as_str().as_bytes();
    let prefix = b"x-forwarded-";
    (n.len() > prefix.len() && spelled(&n[..prefix.len()], prefix))
        || spelled(n, b"forwarded")
        || spelled(n, b"x-real-ip")
        || spelled(n, b"x-client-ip")
}

/// Removes every forwarding header; returns how many.
pub fn strip(headers: &mut HeaderMap) -> usize {
    let doomed: Vec<HeaderName> = headers.keys().filter(|n| is_forwarding_header(n)).cloned().collect();
    let n = doomed.len();
    for name in doomed {
        headers.remove(&name);
    }
    n
}

/// Whether `ip` is one of the trusted proxies.
pub fn trusted(ip: IpAddr, proxies: &[IpRange]) -> bool {
    proxies.iter().any(|r| r.contains(ip))
}

/// The client's address: the peer's, or, behind trusted proxies, the right-most
/// `X-Forwarded-For` entry that is not itself a trusted proxy.
pub fn client_addr(peer: IpAddr, headers: &HeaderMap, proxies: &[IpRange]) -> IpAddr {
    if !trusted(peer, proxies) {
        return peer;
    }
    let chain: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    chain.into_iter().rev().find(|ip| !trusted(*ip, proxies)).unwrap_or(peer)
}

/// Sets `X-Forwarded-For/-Proto/-Host` for the upstream. Client values were already
/// removed unless the peer is trusted; a trusted proxy's values are extended or kept.
pub fn set(headers: &mut HeaderMap, peer: IpAddr, proto: &'static str, host: Option<HeaderValue>) {
    let xff = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prev) => format!("{prev}, {peer}"),
        None => peer.to_string(),
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        headers.insert("x-forwarded-for", v);
    }
    if !headers.contains_key("x-forwarded-proto") {
        headers.insert("x-forwarded-proto", HeaderValue::from_static(proto));
    }
    if let Some(host) = host
        && !headers.contains_key("x-forwarded-host")
    {
        headers.insert("x-forwarded-host", host);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxies: Vec<IpRange> = vec!["10.0.0.0/8".parse().expect("range")];
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6, 203.0.113.9, 10.0.0.2"));
        assert_eq!(client_addr(ip("192.0.2.1"), &h, &proxies), ip("192.0.2.1"));
        assert_eq!(client_addr(ip("10.0.0.1"), &h, &proxies), ip("203.0.113.9"));
    }

    #[test]
    fn every_spelling_of_a_forwarding_header_is_stripped() {
        let mut h = HeaderMap::new();
        for n in ["x-forwarded-for", "X_Forwarded_Host", "forwarded", "x-real-ip", "x_forwarded_proto"] {
            h.insert(HeaderName::from_bytes(n.as_bytes()).expect("name"), HeaderValue::from_static("x"));
        }
        h.insert("accept", HeaderValue::from_static("*/*"));
        assert_eq!(strip(&mut h), 5);
        assert_eq!(h.len(), 1);
    }
}

#[cfg(test)]
mod properties;
