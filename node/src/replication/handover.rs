//! The one site hand-over sequence: stop fetching the site, let the fetches in flight reach
//! a commit, export the crawl state, deliver it, and only then forget the queue (done URLs
//! stay done). Every URL is then either done in the state or still queued in it, so the peer
//! that takes over fetches nothing this peer fetched. Maintenance hands a site to its new
//! primary with it; a peer that yields to a claim answers the claim with it.

use crate::error::Result;
use peersearch_crawler::{Crawler, SiteState};
use std::future::Future;
use std::time::Duration;
use tracing::debug;

/// How often the fetches in flight are counted while waiting for them.
const DRAIN_POLL: Duration = Duration::from_millis(100);

/// What the hand-over needs of a crawler.
pub trait CrawlControl: Sync {
    /// Stop starting fetches of `site`.
    fn pause_site(&self, site: &str);
    /// Fetches of `site` not yet committed.
    fn site_in_flight(&self, site: &str) -> usize;
    /// The crawl state of `site`.
    fn export_site_state(&self, site: &str) -> impl Future<Output = Result<SiteState>> + Send;
    /// Forget the queue of `site`.
    fn forget_site(&self, site: &str) -> impl Future<Output = Result<()>> + Send;
}

impl CrawlControl for Crawler {
    fn pause_site(&self, site: &str) {
        Crawler::pause_site(self, site);
    }
    fn site_in_flight(&self, site: &str) -> usize {
        Crawler::site_in_flight(self, site)
    }
    async fn export_site_state(&self, site: &str) -> Result<SiteState> {
        Ok(Crawler::export_site_state(self, site).await?)
    }
    async fn forget_site(&self, site: &str) -> Result<()> {
        Ok(Crawler::forget_site(self, site).await?)
    }
}

/// How a hand-over ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Delivered and forgotten.
    HandedOver,
    /// Fetches were still in flight when the wait ran out; the site stays paused (try again).
    InFlight(usize),
    /// The state could not be delivered; the site stays paused and queued here.
    NotDelivered,
}

/// Hand the crawl of `site` over: pause it, wait at most `drain` for its fetches in flight,
/// export its state, `deliver` it (`true` when the receiver has it), then forget the queue.
pub async fn hand_over<C, F, Fut>(
    crawl: &C,
    site: &str,
    drain: Duration,
    deliver: F,
) -> Result<Outcome>
where
    C: CrawlControl,
    F: FnOnce(SiteState) -> Fut,
    Fut: Future<Output = bool>,
{
    crawl.pause_site(site);
    let deadline = tokio::time::Instant::now() + drain;
    loop {
        let in_flight = crawl.site_in_flight(site);
        if in_flight == 0 {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            debug!(
                site,
                in_flight, "fetches still in flight; hand-over postponed"
            );
            return Ok(Outcome::InFlight(in_flight));
        }
        tokio::time::sleep(DRAIN_POLL).await;
    }
    let state = crawl.export_site_state(site).await?;
    if !deliver(state).await {
        return Ok(Outcome::NotDelivered);
    }
    crawl.forget_site(site).await?;
    Ok(Outcome::HandedOver)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A crawler whose fetches in flight finish one per poll; it records the calls.
    #[derive(Default)]
    struct FakeCrawl {
        in_flight: Mutex<usize>,
        calls: Mutex<Vec<String>>,
    }

    impl FakeCrawl {
        fn with_in_flight(n: usize) -> FakeCrawl {
            FakeCrawl {
                in_flight: Mutex::new(n),
                ..FakeCrawl::default()
            }
        }
        fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }
        fn log(&self, c: &str) {
            self.calls.lock().unwrap().push(c.to_string());
        }
    }

    impl CrawlControl for FakeCrawl {
        fn pause_site(&self, _: &str) {
            self.log("pause");
        }
        fn site_in_flight(&self, _: &str) -> usize {
            let mut n = self.in_flight.lock().unwrap();
            let now = *n;
            *n = n.saturating_sub(1);
            now
        }
        async fn export_site_state(&self, site: &str) -> Result<SiteState> {
            self.log("export");
            Ok(SiteState::empty(site))
        }
        async fn forget_site(&self, _: &str) -> Result<()> {
            self.log("forget");
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn waits_for_fetches_then_exports_delivers_and_forgets() {
        let c = FakeCrawl::with_in_flight(3);
        let out = hand_over(&c, "a.example", Duration::from_secs(10), |s| async move {
            assert_eq!(s.site, "a.example");
            true
        })
        .await
        .unwrap();
        assert_eq!(out, Outcome::HandedOver);
        assert_eq!(c.calls(), vec!["pause", "export", "forget"]);
    }

    #[tokio::test(start_paused = true)]
    async fn fetches_in_flight_past_the_wait_postpone_the_hand_over() {
        let c = FakeCrawl::with_in_flight(1_000);
        let out = hand_over(&c, "a.example", Duration::from_secs(1), |_| async { true })
            .await
            .unwrap();
        assert!(matches!(out, Outcome::InFlight(n) if n > 0), "{out:?}");
        assert_eq!(c.calls(), vec!["pause"], "nothing exported or forgotten");
        let c = FakeCrawl::with_in_flight(1);
        let out = hand_over(&c, "a.example", Duration::ZERO, |_| async { true })
            .await
            .unwrap();
        assert_eq!(out, Outcome::InFlight(1), "no wait: one look only");
    }

    #[tokio::test(start_paused = true)]
    async fn an_undelivered_state_is_not_forgotten() {
        let c = FakeCrawl::default();
        let out = hand_over(&c, "a.example", Duration::from_secs(1), |_| async { false })
            .await
            .unwrap();
        assert_eq!(out, Outcome::NotDelivered);
        assert_eq!(c.calls(), vec!["pause", "export"]);
    }
}
