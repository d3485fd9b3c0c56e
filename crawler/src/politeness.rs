//! Politeness: a rate per host, one request in flight per host, Crawl-delay, and a
//! global cap on concurrent fetches.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::util::{lock, now};

/// Default requests per second per host (`--crawl-rate`): one a second is the
/// customary polite rate of well-behaved crawlers.
pub const DEFAULT_CRAWL_RATE: f64 = 1.0;

/// Default cap on fetches in flight across all hosts: enough to keep a small peer
/// busy without hogging its sockets and CPU (2 cores, HTML parsing).
pub const DEFAULT_MAX_CONCURRENCY: usize = 16;

/// Bounds of the per-host rate: below one request every 1000 s is pointless, above
/// a million per second governor's nanosecond period underflows.
const MIN_RATE: f64 = 0.001;
const MAX_RATE: f64 = 1_000_000.0;

#[derive(Debug, Default)]
struct HostSlot {
    in_flight: bool,
    not_before: Option<Instant>,
}

/// governor's clock read from [`now`]: the rate limit follows tokio's (pausable) clock,
/// like every other wait of the crawler.
#[derive(Debug, Clone, Copy, Default)]
struct CrawlClock;

impl Clock for CrawlClock {
    type Instant = Instant;

    fn now(&self) -> Instant {
        now()
    }
}

type HostLimiter =
    RateLimiter<String, DefaultKeyedStateStore<String>, CrawlClock, NoOpMiddleware<Instant>>;

struct Inner {
    limiter: HostLimiter,
    clock: CrawlClock,
    hosts: Mutex<HashMap<String, HostSlot>>,
    global: Arc<Semaphore>,
}

/// Shared politeness state. Cheap to clone.
#[derive(Clone)]
pub struct Politeness {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Politeness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Politeness")
            .field("available_permits", &self.inner.global.available_permits())
            .finish()
    }
}

/// Why a host cannot be fetched right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostBusy {
    /// A request to the host is in flight; it will be free when that one ends.
    InFlight,
    /// The host may be fetched again after this long.
    Wait(Duration),
}

/// The right to send one request to a host. Dropping it frees the host at once;
/// [`HostPermit::release`] frees it after an extra delay (Crawl-delay, backoff).
#[derive(Debug)]
pub struct HostPermit {
    politeness: Politeness,
    site: String,
    released: bool,
}

impl HostPermit {
    /// The host this permit is for.
    pub fn site(&self) -> &str {
        &self.site
    }

    /// Frees the host; the next request to it waits at least `delay` from now.
    pub fn release(mut self, delay: Duration) {
        self.released = true;
        self.politeness.release(&self.site, delay);
    }
}

impl Drop for HostPermit {
    fn drop(&mut self) {
        if !self.released {
            self.politeness.release(&self.site, Duration::ZERO);
        }
    }
}

impl Politeness {
    /// `rate` requests per second per host (fractional allowed), at most
    /// `max_concurrency` requests in flight overall.
    pub fn new(rate: f64, max_concurrency: usize) -> Politeness {
        let rate = if rate.is_finite() {
            rate.clamp(MIN_RATE, MAX_RATE)
        } else {
            DEFAULT_CRAWL_RATE
        };
        let period = Duration::from_secs_f64(1.0 / rate).max(Duration::from_nanos(1));
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::MIN);
        Politeness {
            inner: Arc::new(Inner {
                limiter: RateLimiter::new(quota, DefaultKeyedStateStore::default(), CrawlClock),
                clock: CrawlClock,
                hosts: Mutex::new(HashMap::new()),
                global: Arc::new(Semaphore::new(max_concurrency.max(1))),
            }),
        }
    }

    fn hosts(&self) -> std::sync::MutexGuard<'_, HashMap<String, HostSlot>> {
        lock(&self.inner.hosts)
    }

    /// Waits for one of the global fetch slots.
    pub async fn global_permit(&self) -> OwnedSemaphorePermit {
        self.inner
            .global
            .clone()
            .acquire_owned()
            .await
            .expect("the politeness semaphore is never closed")
    }

    /// Takes the host if it is free and its rate allows a request now.
    pub fn try_acquire(&self, site: &str) -> Result<HostPermit, HostBusy> {
        let now = now();
        let mut hosts = self.hosts();
        let slot = hosts.entry(site.to_owned()).or_default();
        if slot.in_flight {
            return Err(HostBusy::InFlight);
        }
        if let Some(not_before) = slot.not_before {
            if not_before > now {
                return Err(HostBusy::Wait(not_before - now));
            }
            slot.not_before = None;
        }
        let key = site.to_owned();
        if let Err(not_until) = self.inner.limiter.check_key(&key) {
            return Err(HostBusy::Wait(
                not_until.wait_time_from(self.inner.clock.now()),
            ));
        }
        slot.in_flight = true;
        Ok(HostPermit {
            politeness: self.clone(),
            site: key,
            released: false,
        })
    }

    fn release(&self, site: &str, delay: Duration) {
        let mut hosts = self.hosts();
        let slot = hosts.entry(site.to_owned()).or_default();
        slot.in_flight = false;
        slot.not_before = (!delay.is_zero()).then(|| now() + delay);
    }

    /// Whether a request to `site` is in flight.
    #[cfg(test)]
    pub fn is_in_flight(&self, site: &str) -> bool {
        self.hosts().get(site).is_some_and(|s| s.in_flight)
    }

    /// Drops state of hosts that are idle and have no pending delay, and the rate
    /// limiter keys that are back to full capacity.
    pub fn prune(&self) {
        let now = now();
        self.hosts()
            .retain(|_, s| s.in_flight || s.not_before.is_some_and(|t| t > now));
        self.inner.limiter.retain_recent();
        self.inner.limiter.shrink_to_fit();
    }

    /// Number of hosts with tracked state.
    #[cfg(test)]
    pub fn tracked_hosts(&self) -> usize {
        self.hosts().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_request_in_flight_per_host() {
        let p = Politeness::new(1000.0, 4);
        let permit = p.try_acquire("a.example").unwrap();
        assert_eq!(p.try_acquire("a.example").unwrap_err(), HostBusy::InFlight);
        assert!(p.is_in_flight("a.example"));
        // Another host is independent.
        let _other = p.try_acquire("b.example").unwrap();
        drop(permit);
        assert!(!p.is_in_flight("a.example"));
    }

    /// The wait `try_acquire` asks for (panics when the host is free or in flight).
    fn wait_for(p: &Politeness, site: &str) -> Duration {
        match p.try_acquire(site) {
            Err(HostBusy::Wait(wait)) => wait,
            other => panic!("expected a wait, got {other:?}"),
        }
    }

    /// `site` asks for exactly `wait`, then for the rest of it as the clock advances,
    /// and is free once it has passed.
    async fn assert_free_after(p: &Politeness, site: &str, wait: Duration) {
        assert_eq!(wait_for(p, site), wait);
        let most = wait * 3 / 4;
        tokio::time::advance(most).await;
        assert_eq!(wait_for(p, site), wait - most);
        tokio::time::advance(wait - most).await;
        assert!(p.try_acquire(site).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn fractional_rate_spaces_requests() {
        let p = Politeness::new(0.5, 4);
        p.try_acquire("a.example").unwrap().release(Duration::ZERO);
        assert_free_after(&p, "a.example", Duration::from_secs(2)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn crawl_delay_stretches_the_interval() {
        let p = Politeness::new(1000.0, 4);
        p.try_acquire("a.example")
            .unwrap()
            .release(Duration::from_secs(5));
        assert_free_after(&p, "a.example", Duration::from_secs(5)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn prune_forgets_idle_hosts() {
        let p = Politeness::new(1000.0, 4);
        for i in 0..10 {
            drop(p.try_acquire(&format!("h{i}.example")).unwrap());
        }
        let busy = p.try_acquire("busy.example").unwrap();
        p.try_acquire("delayed.example")
            .unwrap()
            .release(Duration::from_secs(10));
        assert_eq!(p.tracked_hosts(), 12);
        p.prune();
        assert_eq!(p.tracked_hosts(), 2, "the busy and the delayed host stay");
        tokio::time::advance(Duration::from_secs(10)).await;
        drop(busy);
        p.prune();
        assert_eq!(p.tracked_hosts(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn global_permits_are_capped() {
        let p = Politeness::new(1.0, 2);
        let a = p.global_permit().await;
        let _b = p.global_permit().await;
        // On the paused clock the timeout elapses only once nothing else can run.
        let third = tokio::time::timeout(Duration::from_secs(3600), p.global_permit()).await;
        assert!(third.is_err(), "a third permit was granted");
        drop(a);
        let third = tokio::time::timeout(Duration::from_secs(1), p.global_permit()).await;
        assert!(third.is_ok());
    }
}
