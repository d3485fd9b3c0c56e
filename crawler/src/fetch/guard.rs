//! The SSRF guard: which addresses may be fetched, the resolver that drops forbidden
//! answers (DNS rebinding included), and the check of IP-literal hosts.
//!
//! Every connection the fetcher opens gets its addresses from [`GuardedResolver`]:
//! names go through the configured resolver (the system's by default, or one handed
//! in with [`DnsResolver`]) and only then through [`forbidden_reason`], so a resolver
//! cannot bypass the guard. Each connection resolves again, so a name that answers a
//! public address first and a private one later is refused the second time.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::Host;

use crate::error::{Error, Result};
use crate::normalize::NormalizedUrl;

/// Why an address may not be fetched, or `None` when it is a public address.
pub fn forbidden_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    if ip.is_unspecified() || a == 0 {
        Some("unspecified address")
    } else if ip.is_loopback() {
        Some("loopback address")
    } else if ip.is_private() {
        Some("private address")
    } else if ip.is_link_local() {
        Some("link-local address")
    } else if a == 100 && (64..128).contains(&b) {
        Some("shared (cgnat) address")
    } else if ip.is_broadcast() {
        Some("broadcast address")
    } else if ip.is_documentation() {
        Some("documentation address")
    } else if ip.is_multicast() {
        Some("multicast address")
    } else if a >= 240 {
        Some("reserved address")
    } else if a == 198 && (b == 18 || b == 19) {
        Some("benchmarking address")
    } else if a == 192 && b == 0 && c == 0 {
        Some("protocol assignment address")
    } else {
        None
    }
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let seg = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4);
    }
    // NAT64 (64:ff9b::/96) embeds an IPv4 address in the low 32 bits.
    if seg[0] == 0x64 && seg[1] == 0xff9b && seg[2..6] == [0, 0, 0, 0] {
        let [.., hi, lo] = seg;
        return forbidden_v4(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
    }
    if ip.is_unspecified() {
        Some("unspecified address")
    } else if ip.is_loopback() {
        Some("loopback address")
    } else if seg[0..6] == [0, 0, 0, 0, 0, 0] {
        // Deprecated IPv4-compatible addresses (::a.b.c.d).
        Some("ipv4-compatible address")
    } else if (seg[0] & 0xfe00) == 0xfc00 {
        Some("unique local address")
    } else if (seg[0] & 0xffc0) == 0xfe80 || (seg[0] & 0xffc0) == 0xfec0 {
        Some("link-local address")
    } else if (seg[0] & 0xff00) == 0xff00 {
        Some("multicast address")
    } else if seg[0] == 0x2001 && seg[1] == 0x0db8 {
        Some("documentation address")
    } else {
        None
    }
}

/// Refuses a forbidden IP-literal host (`http://127.0.0.1/`, and the spellings the URL
/// parser reads as one: `http://2130706433/`, `http://0177.0.0.1/`,
/// `http://[::ffff:127.0.0.1]/`). reqwest does not resolve literals, so the resolver
/// never sees them.
pub(crate) fn check_literal(url: &NormalizedUrl, allow_private: bool) -> Result<()> {
    if allow_private {
        return Ok(());
    }
    let ip = match url.as_url().host() {
        Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
        _ => return Ok(()),
    };
    match forbidden_reason(ip) {
        Some(reason) => Err(Error::Blocked(format!("{ip} is a {reason}"))),
        None => Ok(()),
    }
}

/// A name resolver handed to the fetcher ([`FetchConfig::resolver`](super::FetchConfig),
/// `CrawlerConfig::resolver`) in place of the system's. Its answers still pass the
/// guard. Compared by identity.
#[derive(Clone)]
pub struct DnsResolver(pub Arc<dyn Resolve>);

impl std::fmt::Debug for DnsResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DnsResolver(..)")
    }
}

impl PartialEq for DnsResolver {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// The system resolver (getaddrinfo on a blocking thread, through tokio).
struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Prefix of the resolver's refusal message: reqwest/hyper wrap resolver errors in
/// ways that can hide the source chain, so the message is recognised by text too.
pub(crate) const BLOCKED_MARKER: &str = "blocked destination: ";

/// Error returned by [`GuardedResolver`] so it can be recognised in reqwest's error chain.
#[derive(Debug)]
pub(crate) struct BlockedAddress(pub String);

impl std::fmt::Display for BlockedAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BlockedAddress {}

/// The resolver the HTTP client uses: asks `inner`, then drops forbidden addresses, so
/// a public name pointing at a private address is refused at connect time.
pub(crate) struct GuardedResolver {
    inner: Arc<dyn Resolve>,
    allow_private: bool,
    #[cfg(test)]
    stand_ins: test_seam::StandIns,
}

impl GuardedResolver {
    pub(crate) fn new(config: &super::FetchConfig) -> GuardedResolver {
        GuardedResolver {
            inner: match &config.resolver {
                Some(r) => r.0.clone(),
                None => Arc::new(SystemResolver),
            },
            allow_private: config.allow_private_addresses,
            #[cfg(test)]
            stand_ins: config.stand_ins.clone(),
        }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let answer = self.inner.resolve(name);
        let allow_private = self.allow_private;
        #[cfg(test)]
        let stand_ins = self.stand_ins.clone();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = answer.await?.collect();
            let allowed = if allow_private {
                addrs
            } else {
                guard_answer(&host, addrs)?
            };
            tracing::debug!(target: super::NET_LOG_TARGET, host = %host, addrs = ?allowed, "crawler lookup");
            // Test builds only: where each address the guard let through is dialled.
            #[cfg(test)]
            let allowed = stand_ins.dial(&host, allowed)?;
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The addresses of a DNS answer that may be dialled; an error when none may.
fn guard_answer(
    host: &str,
    addrs: Vec<SocketAddr>,
) -> std::result::Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
    let mut reason = "no address";
    let allowed: Vec<SocketAddr> = addrs
        .into_iter()
        .filter(|addr| match forbidden_reason(addr.ip()) {
            Some(why) => {
                reason = why;
                false
            }
            None => true,
        })
        .collect();
    if allowed.is_empty() {
        tracing::debug!(host = %host, reason, "dns answer refused");
        return Err(Box::new(BlockedAddress(format!(
            "{BLOCKED_MARKER}{host} resolves to a {reason}"
        ))));
    }
    Ok(allowed)
}

/// The seam that lets a unit test reach a loopback fixture while the guard is on.
///
/// A test hands the fetcher a fake [`DnsResolver`] that answers a *public* address for
/// a test name, and a stand-in table mapping that public address to the loopback
/// socket of a fixture. The guard ([`guard_answer`], production code) judges the
/// address the resolver answered; only after it has let the address through is the
/// stand-in dialled instead. A guard that wrongly let a private answer through would
/// dial it unchanged (tests point such answers at a counting loopback fixture), and
/// nothing outside loopback is ever dialled: an address left without a stand-in that
/// is not loopback fails the connection here.
#[cfg(test)]
pub(crate) mod test_seam {
    use std::collections::HashMap;
    use std::net::{IpAddr, SocketAddr};
    use std::sync::Arc;

    /// Public address -> loopback socket that answers for it.
    #[derive(Debug, Clone, Default)]
    pub(crate) struct StandIns(Arc<HashMap<IpAddr, SocketAddr>>);

    impl StandIns {
        pub(crate) fn new(map: impl IntoIterator<Item = (IpAddr, SocketAddr)>) -> StandIns {
            let map: HashMap<IpAddr, SocketAddr> = map.into_iter().collect();
            assert!(
                map.values().all(|s| s.ip().is_loopback()),
                "stand-ins must be loopback sockets"
            );
            StandIns(Arc::new(map))
        }

        pub(crate) fn dial(
            &self,
            host: &str,
            addrs: Vec<SocketAddr>,
        ) -> std::io::Result<Vec<SocketAddr>> {
            addrs
                .into_iter()
                .map(|a| match self.0.get(&a.ip()) {
                    Some(stand_in) => Ok(*stand_in),
                    None if a.ip().is_loopback() => Ok(a),
                    None => Err(std::io::Error::other(format!(
                        "test build refuses to dial {a} for {host} (not loopback)"
                    ))),
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_forbidden_addresses() {
        let forbidden = [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "192.0.2.1",
            "224.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
        ];
        for ip in forbidden {
            assert!(
                forbidden_reason(ip.parse().unwrap()).is_some(),
                "{ip} allowed"
            );
        }
        for ip in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(forbidden_reason(ip.parse().unwrap()), None, "{ip} refused");
        }
    }

    #[test]
    fn literal_spellings_of_loopback_are_refused() {
        for raw in [
            "http://127.0.0.1:8080/",
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://0x7f.1/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::1]/",
        ] {
            let url = crate::normalize::normalize(raw, None).unwrap();
            assert!(
                matches!(check_literal(&url, false), Err(Error::Blocked(_))),
                "{raw} ({url}) allowed"
            );
            assert!(check_literal(&url, true).is_ok());
        }
    }
}
