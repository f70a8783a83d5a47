//! The SSRF guard of HTTP deliveries. Task URLs come from API clients; with
//! the guard on (`--block-private-destinations`,
//! `REBOUND_BLOCK_PRIVATE_DESTINATIONS=true`; off by default) a delivery to
//! a loopback, private (RFC 1918, `fc00::/7`, `100.64.0.0/10`), link-local
//! (`169.254.0.0/16`, `fe80::/10`), unspecified, broadcast or multicast
//! address is refused, and the task goes to its dead destination at once.
//!
//! Where it is checked:
//! - an IP literal in the URL, before the request;
//! - a host name, in the client's DNS resolver ([`GuardedResolver`]): the
//!   addresses checked are the addresses connected to, so a DNS rebind
//!   between a check and the connection cannot slip through, and `localhost`
//!   or a name resolving to `127.0.0.1` is refused like the literal;
//! - every redirect hop, in the client's redirect policy (an IP literal
//!   there; a name goes through the resolver again).
//!
//! `allow` exempts exact `ip:port` destinations written as IP literals in a
//! task URL (an internal endpoint you trust); names are never exempted.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// A destination the guard refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("destination {addr} refused: {why} address (--block-private-destinations)")]
pub struct Refused {
    /// The address (and port) refused.
    pub addr: SocketAddr,
    /// `loopback`, `private`, `link-local`, …
    pub why: &'static str,
}

/// What the guard lets through.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    /// Exact destinations allowed although private.
    pub allow: Vec<SocketAddr>,
}

/// Why `ip` is not a public destination, if it is not.
pub fn blocked_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => blocked_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return blocked_v4(v4);
            }
            let s = v6.segments();
            // IPv4 inside IPv6: NAT64 (64:ff9b::/96) and the deprecated
            // IPv4-compatible form (::a.b.c.d) reach the embedded address.
            let embedded =
                Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
            let nat64 = s[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
            let compatible = s[..6] == [0; 6] && !v6.is_loopback() && !v6.is_unspecified();
            if nat64 || compatible {
                return blocked_v4(embedded);
            }
            let first = s[0];
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if first & 0xfe00 == 0xfc00 {
                Some("private")
            } else if first & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if v6.is_multicast() {
                Some("multicast")
            } else {
                None
            }
        }
    }
}

fn blocked_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private()
        || (a == 100 && (64..128).contains(&b))
        || (a == 198 && (18..20).contains(&b))
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
    {
        // RFC 1918, shared (CGNAT), benchmarking and IETF protocol space.
        Some("private")
    } else if a >= 240 && !ip.is_broadcast() {
        Some("reserved")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if ip.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if ip.is_broadcast() {
        Some("broadcast")
    } else if ip.is_multicast() {
        Some("multicast")
    } else {
        None
    }
}

impl Guard {
    /// Refuses `addr` unless it is public or allowed.
    pub fn check(&self, addr: SocketAddr) -> Result<(), Refused> {
        if self.allow.contains(&addr) {
            return Ok(());
        }
        match blocked_kind(addr.ip()) {
            Some(why) => Err(Refused { addr, why }),
            None => Ok(()),
        }
    }

    /// Checks a URL whose host is an IP literal (names are checked when
    /// resolved).
    pub fn check_url(&self, url: &url::Url) -> Result<(), Refused> {
        let port = url.port_or_known_default().unwrap_or(80);
        let ip = match url.host() {
            Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
            _ => return Ok(()),
        };
        self.check(SocketAddr::new(ip, port))
    }

    /// The redirect policy: each hop checked, at most 10 hops.
    pub fn redirect_policy(self: &Arc<Self>) -> reqwest::redirect::Policy {
        let guard = self.clone();
        reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 10 {
                return attempt.error("more than 10 redirects");
            }
            match guard.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(refused) => attempt.error(refused),
            }
        })
    }
}

/// A resolver that refuses names resolving to a blocked address. The
/// connection uses exactly the addresses it returns.
#[derive(Debug, Clone)]
pub struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            for a in &addrs {
                if let Some(why) = blocked_kind(a.ip()) {
                    let err: Box<dyn std::error::Error + Send + Sync> =
                        Box::new(Refused { addr: *a, why });
                    return Err(err);
                }
            }
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// The [`Refused`] somewhere in `e`'s causes, if the guard refused it.
pub fn refused_in(e: &(dyn std::error::Error + 'static)) -> Option<Refused> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<Refused>() {
            return Some(r.clone());
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_link_local_and_unspecified_are_blocked() {
        for (ip, why) in [
            ("127.0.0.1", Some("loopback")),
            ("10.1.2.3", Some("private")),
            ("172.16.0.1", Some("private")),
            ("192.168.1.1", Some("private")),
            ("100.64.0.1", Some("private")),
            ("169.254.169.254", Some("link-local")),
            ("0.0.0.0", Some("unspecified")),
            ("::1", Some("loopback")),
            ("::", Some("unspecified")),
            ("fd00::1", Some("private")),
            ("fe80::1", Some("link-local")),
            ("::ffff:127.0.0.1", Some("loopback")),
            ("64:ff9b::a00:1", Some("private")),
            ("64:ff9b::7f00:1", Some("loopback")),
            ("::a00:1", Some("private")),
            ("198.18.0.1", Some("private")),
            ("192.0.0.8", Some("private")),
            ("240.0.0.1", Some("reserved")),
            ("255.255.255.255", Some("broadcast")),
            ("64:ff9b::5db8:d70e", None),
            ("93.184.215.14", None),
            ("2606:4700::1111", None),
            ("172.32.0.1", None),
        ] {
            assert_eq!(blocked_kind(ip.parse().unwrap()), why, "{ip}");
        }
    }

    #[test]
    fn literal_urls_are_checked_and_allowed_addresses_pass() {
        let g = Guard {
            allow: vec!["127.0.0.1:8080".parse().unwrap()],
        };
        let url = |s: &str| url::Url::parse(s).unwrap();
        assert!(g.check_url(&url("http://127.0.0.1:8080/x")).is_ok());
        let e = g.check_url(&url("http://127.0.0.1:8081/x")).unwrap_err();
        assert_eq!(e.why, "loopback");
        assert!(g.check_url(&url("http://[fe80::1]/x")).is_err());
        assert!(g.check_url(&url("http://example.com/x")).is_ok());
    }
}
