//! [`WebConfig`]: how the web layer is set up, and the defaults behind it.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

/// Default per-client request rate (requests per second; the brief). A person clicking through
/// pages needs a handful; a script hammering the API gets 429s.
pub const DEFAULT_RATE_LIMIT_PER_SEC: u32 = 20;
/// The burst a client may spend at once, as a multiple of the rate (20/s -> 40).
pub const RATE_LIMIT_BURST_FACTOR: u32 = 2;
/// Default request body limit: 64 KiB holds a crawl submission of 1000 ordinary URLs.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
/// Longest time one request may take: above the largest search `timeout_ms` (10 s) with room
/// for the merge and the rendering.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// How the web layer is set up.
#[derive(Clone)]
pub struct WebConfig {
    /// The address the HTTP server is bound to. When it is a loopback address, only requests
    /// whose `Host` names a loopback host are answered (DNS-rebinding defence).
    pub bound_addr: SocketAddr,
    /// Requests per second allowed per client IP (IPv6: per /64), with a burst of twice that;
    /// 0 turns rate limiting off. Default [`DEFAULT_RATE_LIMIT_PER_SEC`].
    pub rate_limit_per_sec: u32,
    /// Whether clients on loopback addresses skip the rate limit (default true): they are the
    /// person who runs the peer and their own programs, not the remote clients the limit is
    /// for.
    pub exempt_loopback_clients: bool,
    /// Largest request body accepted, in bytes. Default [`DEFAULT_MAX_BODY_BYTES`].
    pub max_body_bytes: usize,
    /// Key of the CSRF tokens of the peer page's seed form. Any 32 unpredictable bytes; a new
    /// value on each start only invalidates forms that were open across the restart.
    pub csrf_secret: [u8; 32],
    /// The URL the public reaches this peer at (`--public-url`, e.g.
    /// `https://example.org/search-engine/`), the base of every absolute URL the peer serves
    /// and of the pages' own links; its host is also admitted by the `Host` check. Should be
    /// normalized by [`crate::parse_public_url`]; an invalid value is logged and ignored.
    /// Default none: `http://` and the request's `Host`.
    pub public_url: Option<String>,
    /// Client addresses (the TCP peer) whose `Forwarded` / `X-Forwarded-Proto` /
    /// `X-Forwarded-Host` headers are believed (`--trusted-proxy`). Default none: those
    /// headers are ignored.
    pub trusted_proxies: Vec<IpAddr>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("bound_addr", &self.bound_addr)
            .field("rate_limit_per_sec", &self.rate_limit_per_sec)
            .field("exempt_loopback_clients", &self.exempt_loopback_clients)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("csrf_secret", &"<redacted>")
            .field("public_url", &self.public_url)
            .field("trusted_proxies", &self.trusted_proxies)
            .finish()
    }
}

impl WebConfig {
    /// The defaults for a server bound to `bound_addr`, with a fresh random CSRF secret.
    pub fn new(bound_addr: SocketAddr) -> Self {
        Self {
            bound_addr,
            rate_limit_per_sec: DEFAULT_RATE_LIMIT_PER_SEC,
            exempt_loopback_clients: true,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            csrf_secret: random_secret(),
            public_url: None,
            trusted_proxies: Vec::new(),
        }
    }

    /// With `public_url` as the base of absolute URLs (see [`WebConfig::public_url`]).
    pub fn with_public_url(mut self, public_url: Option<String>) -> Self {
        self.public_url = public_url;
        self
    }

    /// With `proxies` as the trusted reverse proxies (see [`WebConfig::trusted_proxies`]).
    pub fn with_trusted_proxies(mut self, proxies: Vec<IpAddr>) -> Self {
        self.trusted_proxies = proxies;
        self
    }
}

/// Nanoseconds since the Unix epoch (0 if the clock is before it): an input of the secrets
/// and nonces below, never a measure of elapsed time.
pub(crate) fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

/// 32 unpredictable bytes without a dedicated RNG dependency: std's `RandomState` keys are
/// seeded from the operating system's random source; several of them, the clock and the
/// process id go through SHA-256.
fn random_secret() -> [u8; 32] {
    let nanos = unix_nanos();
    let mut digest = Sha256::new();
    for i in 0u8..4 {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u8(i);
        hasher.write_u128(nanos);
        hasher.write_u32(std::process::id());
        digest.update(hasher.finish().to_le_bytes());
    }
    digest.update(nanos.to_le_bytes());
    digest.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_debug_hides_the_secret() {
        let config = WebConfig::new("127.0.0.1:8080".parse().unwrap());
        let shown = format!("{config:?}");
        assert!(shown.contains("redacted"));
        assert!(!shown.contains(&format!("{:?}", config.csrf_secret)));
        assert_ne!(
            config.csrf_secret,
            WebConfig::new(config.bound_addr).csrf_secret
        );
    }
}
