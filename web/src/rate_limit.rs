//! The per-client rate limit: GCRA from `governor`, keyed by client IP (IPv6 per /64),
//! loopback clients optionally exempt, idle clients pruned.
//!
//! The limiter reads time from tokio's clock ([`TokioClock`]), like the request timeout
//! does: one time source for the whole web layer, and tests can pause and advance it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use tokio::time::Instant;

use crate::config::RATE_LIMIT_BURST_FACTOR;
use crate::error::ApiError;

/// How often idle clients are dropped from the limiter's table.
const PRUNE_INTERVAL: Duration = Duration::from_secs(60);
/// IPv6 clients are limited per /64: one subscriber usually holds a whole /64.
const IPV6_CLIENT_PREFIX_BITS: u32 = 64;

/// A `governor` clock on tokio's time: the time since the limiter was made.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TokioClock {
    origin: Instant,
}

impl TokioClock {
    fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(self.origin.elapsed())
    }
}

/// The state of the [`rate_limit`] layer.
#[derive(Debug)]
pub(crate) struct ClientRateLimiter {
    limiter: RateLimiter<IpAddr, DashMapStateStore<IpAddr>, TokioClock, NoOpMiddleware<Nanos>>,
    exempt_loopback: bool,
    last_prune: Mutex<Instant>,
}

impl ClientRateLimiter {
    /// A limiter of `per_sec` requests per second with a burst of
    /// [`RATE_LIMIT_BURST_FACTOR`] times that; `None` when `per_sec` is 0 (no limit).
    pub(crate) fn new(per_sec: u32, exempt_loopback: bool) -> Option<Self> {
        let rate = NonZeroU32::new(per_sec)?;
        let burst =
            NonZeroU32::new(rate.get().saturating_mul(RATE_LIMIT_BURST_FACTOR)).unwrap_or(rate);
        let quota = Quota::per_second(rate).allow_burst(burst);
        Some(Self {
            limiter: RateLimiter::dashmap_with_clock(quota, TokioClock::new()),
            exempt_loopback,
            last_prune: Mutex::new(Instant::now()),
        })
    }

    /// Spend one request of `ip`'s budget; when it is spent, the whole seconds to wait
    /// (at least 1, rounded up: what `Retry-After` says).
    pub(crate) fn check(&self, ip: IpAddr) -> Result<(), u64> {
        if self.exempt_loopback && ip.to_canonical().is_loopback() {
            return Ok(());
        }
        self.prune_if_due();
        self.limiter
            .check_key(&client_key(ip))
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(self.limiter.clock().now());
                (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
            })
    }

    /// Drop the clients whose budget is full again, at most once per [`PRUNE_INTERVAL`]
    /// (`try_lock`: a request never waits for another one's pruning).
    fn prune_if_due(&self) {
        if let Ok(mut last) = self.last_prune.try_lock()
            && last.elapsed() >= PRUNE_INTERVAL
        {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
            *last = Instant::now();
        }
    }

    /// Clients currently tracked.
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.limiter.len()
    }
}

/// The rate-limit key of a client: its IP, IPv6 addresses cut to their /64.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let mask = u128::MAX << (128 - IPV6_CLIENT_PREFIX_BITS);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
        v4 => v4,
    }
}

/// Refuse a client over its budget with [`ApiError::RateLimited`] (429 and `Retry-After`);
/// no limiter, no limit. Without `ConnectInfo` (a test calling the router directly) the client
/// is 127.0.0.1.
pub(crate) async fn rate_limit(
    State(limiter): State<Option<Arc<ClientRateLimiter>>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(limiter) = limiter else {
        return next.run(request).await;
    };
    let ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    if let Err(retry_after_s) = limiter.check(ip) {
        tracing::debug!(%ip, retry_after_s, "rate limited");
        return ApiError::RateLimited { retry_after_s }.into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_clients_share_a_key_per_64() {
        let a = ip("2001:db8:1:2:aaaa::1");
        let b = ip("2001:db8:1:2:bbbb::2");
        let c = ip("2001:db8:1:3::1");
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        assert_eq!(client_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    }

    #[test]
    fn zero_rate_means_no_limiter() {
        assert!(ClientRateLimiter::new(0, false).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn budget_refills_at_the_rate() {
        let limiter = ClientRateLimiter::new(2, false).unwrap();
        let client = ip("192.0.2.1");
        // Burst of 4 (twice the rate), then 1 request per 500 ms.
        for _ in 0..4 {
            assert_eq!(limiter.check(client), Ok(()));
        }
        assert_eq!(limiter.check(client), Err(1), "0.5 s to wait says 1 s");
        tokio::time::advance(Duration::from_millis(499)).await;
        assert_eq!(limiter.check(client), Err(1));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(limiter.check(client), Ok(()));
        assert_eq!(limiter.check(client), Err(1));
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_never_says_zero_seconds() {
        // 1 per second, burst 2: after the burst the next slot is 1 s away.
        let limiter = ClientRateLimiter::new(1, false).unwrap();
        let client = ip("192.0.2.1");
        assert_eq!(limiter.check(client), Ok(()));
        assert_eq!(limiter.check(client), Ok(()));
        assert_eq!(limiter.check(client), Err(1));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(limiter.check(client), Err(1), "1 ms to wait says 1 s");
        tokio::time::advance(Duration::from_millis(999)).await;
        assert_eq!(limiter.check(client), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn loopback_is_exempt_only_when_configured() {
        let exempt = ClientRateLimiter::new(1, true).unwrap();
        let strict = ClientRateLimiter::new(1, false).unwrap();
        for _ in 0..10 {
            assert_eq!(exempt.check(ip("127.0.0.1")), Ok(()));
            assert_eq!(exempt.check(ip("::1")), Ok(()));
            assert_eq!(exempt.check(ip("::ffff:127.0.0.1")), Ok(()));
        }
        assert_eq!(exempt.tracked(), 0, "exempt clients take no table entry");
        assert_eq!(strict.check(ip("127.0.0.1")), Ok(()));
        assert_eq!(strict.check(ip("127.0.0.1")), Ok(()));
        assert_eq!(strict.check(ip("127.0.0.1")), Err(1));
    }

    #[tokio::test(start_paused = true)]
    async fn idle_clients_are_pruned_after_the_interval() {
        let limiter = ClientRateLimiter::new(1, false).unwrap();
        for i in 1..=5 {
            assert_eq!(limiter.check(ip(&format!("192.0.2.{i}"))), Ok(()));
        }
        assert_eq!(limiter.tracked(), 5);
        // Every budget is full again long before the interval, but nothing is pruned yet.
        tokio::time::advance(PRUNE_INTERVAL - Duration::from_secs(1)).await;
        assert_eq!(limiter.check(ip("192.0.2.1")), Ok(()));
        assert_eq!(limiter.tracked(), 5, "not pruned before the interval");
        tokio::time::advance(PRUNE_INTERVAL).await;
        assert_eq!(limiter.check(ip("198.51.100.1")), Ok(()));
        assert_eq!(
            limiter.tracked(),
            1,
            "only the client that just asked is left"
        );
    }
}
