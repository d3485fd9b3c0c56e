//! The crawler of one peer: frontier -> robots.txt -> politeness -> fetch -> extract ->
//! channel. This module holds the handle and its API; the loop that schedules fetches
//! is in [`crawl_loop`], what happens to one URL in [`worker`].

mod config;
mod crawl_loop;
mod outcome;
mod sitemaps;
#[cfg(test)]
mod tests;
mod worker;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use crate::error::Result;
use crate::fetch::Fetcher;
use crate::frontier::{EnqueueReport, Frontier, Seed, SiteState};
use crate::normalize::NormalizedUrl;
use crate::politeness::Politeness;
use crate::robots::RobotsCache;
use crate::util::unix_now;
pub use config::CrawlerConfig;
use outcome::Counters;
pub use outcome::{CrawlStats, CrawledPage, Outcome};

/// File name of the crawl store inside the data directory.
pub const CRAWL_DB_FILE: &str = "crawl.redb";

/// Retries after the first attempt for network errors, timeouts, 5xx and 429.
pub const MAX_FETCH_RETRIES: u32 = 2;

/// Backoff before the first retry, doubled for each further one (2 s, 4 s): long
/// enough for a restarting server, short enough to finish a crawl promptly.
pub const RETRY_BACKOFF: Duration = Duration::from_secs(2);

/// Times a host is put aside because its robots.txt is unavailable (5xx,
/// unreachable) before its URLs are given up, one by one, as failures. RFC 9309 reads
/// 5xx as "disallow all"; 0 applies that at once, so a crawl ends instead of waiting
/// out the robots cache lifetime for a broken site.
pub const ROBOTS_MAX_DEFERRALS: u32 = 0;

/// Failures kept for [`Crawler::recent_errors`].
pub const RECENT_ERRORS: usize = 50;

struct Inner {
    config: CrawlerConfig,
    frontier: Frontier,
    fetcher: Fetcher,
    robots: RobotsCache,
    politeness: Politeness,
    wake: Notify,
    running: AtomicBool,
    /// Fetches started (or reserved) in this run, for `max_pages`.
    fetch_budget_used: AtomicU64,
    counters: Counters,
    robots_deferrals: Mutex<HashMap<String, u32>>,
    /// When each site's sitemaps were last read in this run.
    sitemap_rounds: Mutex<HashMap<String, std::time::Instant>>,
}

/// The crawler of one peer. Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct Crawler {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Crawler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crawler")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Crawler {
    /// Opens the crawl state in `data_dir` (created if missing). Blocking (file I/O).
    pub fn open(data_dir: &Path, config: CrawlerConfig) -> Result<Crawler> {
        let fetcher = Fetcher::new(config.fetch_config())?;
        Crawler::open_with_fetcher(data_dir, config, fetcher)
    }

    /// [`Crawler::open`] with a fetcher built by the caller (tests: a fake resolver and
    /// the guard's stand-ins). Blocking.
    pub(crate) fn open_with_fetcher(
        data_dir: &Path,
        config: CrawlerConfig,
        fetcher: Fetcher,
    ) -> Result<Crawler> {
        std::fs::create_dir_all(data_dir)?;
        let frontier = Frontier::open(&data_dir.join(CRAWL_DB_FILE), config.frontier_limits())?;
        let robots = RobotsCache::new(fetcher.clone());
        let politeness = Politeness::new(config.crawl_rate, config.max_concurrency);
        Ok(Crawler {
            inner: Arc::new(Inner {
                config,
                frontier,
                fetcher,
                robots,
                politeness,
                wake: Notify::new(),
                running: AtomicBool::new(false),
                fetch_budget_used: AtomicU64::new(0),
                counters: Counters::default(),
                robots_deferrals: Mutex::new(HashMap::new()),
                sitemap_rounds: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &CrawlerConfig {
        &self.inner.config
    }

    /// Runs `f` on the frontier on a blocking thread: every store call of async code
    /// goes through here.
    async fn frontier_io<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Frontier) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner.frontier)).await?
    }

    /// Queues URLs (persisted before returning) and wakes the crawl loop.
    pub async fn enqueue(&self, urls: Vec<Seed>) -> Result<EnqueueReport> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.enqueue_blocking(urls)).await?
    }

    /// [`Crawler::enqueue`] for synchronous callers (blocks on file I/O).
    pub fn enqueue_blocking(&self, urls: Vec<Seed>) -> Result<EnqueueReport> {
        let report = self.inner.frontier.enqueue(urls)?;
        if report.accepted > 0 {
            self.inner.wake.notify_one();
        }
        Ok(report)
    }

    /// Marks URLs done durably: they are never fetched again, also after a restart.
    /// Call it with [`CrawledPage::url`] once the page is committed to the index and
    /// its links are enqueued or handed off.
    pub async fn mark_committed(&self, urls: &[NormalizedUrl]) -> Result<()> {
        let this = self.clone();
        let urls = urls.to_vec();
        tokio::task::spawn_blocking(move || this.mark_committed_blocking(&urls)).await?
    }

    /// [`Crawler::mark_committed`] for synchronous callers (blocks on file I/O).
    pub fn mark_committed_blocking(&self, urls: &[NormalizedUrl]) -> Result<()> {
        self.inner.frontier.mark_done(urls, unix_now())?;
        self.inner.wake.notify_one();
        Ok(())
    }

    /// Visits `urls` again as soon as their hosts allow (each a done URL; the others are left
    /// alone): a hint that they changed or went away (a sitemap's `lastmod`, another owner's
    /// word that a page is gone). Returns how many were brought forward.
    pub async fn revisit_soon(&self, urls: Vec<NormalizedUrl>) -> Result<usize> {
        let moved = self
            .frontier_io(move |f| {
                let now = f.now();
                f.expedite(&urls, now)
            })
            .await?;
        if moved > 0 {
            self.inner.wake.notify_one();
        }
        Ok(moved)
    }

    /// Whether `url` is done (crawled and committed, or given up).
    pub async fn is_done(&self, url: &NormalizedUrl) -> Result<bool> {
        let url = url.clone();
        self.frontier_io(move |f| f.is_done(&url)).await
    }

    /// Counters; cheap (memory only, never waits for the store).
    pub fn stats(&self) -> CrawlStats {
        let frontier = &self.inner.frontier;
        self.inner.counters.stats(
            frontier.frontier_size(),
            frontier.in_flight(),
            frontier.revisits_due(),
        )
    }

    /// The last [`RECENT_ERRORS`] failures: (unix seconds, url, reason), oldest first.
    pub fn recent_errors(&self) -> Vec<(i64, String, String)> {
        self.inner.counters.recent_errors()
    }

    /// The queued and done URLs of `site`, for another peer to continue its crawl.
    pub async fn export_site_state(&self, site: &str) -> Result<SiteState> {
        let site = site.to_owned();
        self.frontier_io(move |f| f.export_site(&site)).await
    }

    /// Merges a site's state exported by another peer; returns how many URLs were
    /// newly queued.
    pub async fn import_site_state(&self, state: SiteState) -> Result<usize> {
        let n = self.frontier_io(move |f| f.import_site(state)).await?;
        self.inner.wake.notify_one();
        Ok(n)
    }

    /// Stops fetching URLs of `site` (its crawl moves to another peer); fetches already
    /// started finish. Undone by [`Crawler::resume_site`] or [`Crawler::forget_site`].
    pub fn pause_site(&self, site: &str) {
        self.inner.frontier.pause_site(site);
    }

    /// From now on, crawl only sites released with [`Crawler::resume_site`]: a peer of a
    /// network first makes sure no other peer crawls a site.
    pub fn gate_sites(&self) {
        self.inner.frontier.gate_sites();
    }

    /// Whether URLs of `site` are fetched (not paused, and released if sites are gated).
    pub fn is_crawlable(&self, site: &str) -> bool {
        self.inner.frontier.is_crawlable(site)
    }

    /// Fetches URLs of `site` again (releases it when sites are gated).
    pub fn resume_site(&self, site: &str) {
        self.inner.frontier.resume_site(site);
        self.inner.wake.notify_one();
    }

    /// URLs of `site` taken and not committed yet (being fetched, or waiting for the index
    /// commit that makes them done).
    pub fn site_in_flight(&self, site: &str) -> usize {
        self.inner.frontier.site_in_flight(site)
    }

    /// Sites that have URLs waiting in the frontier (the node hands the crawl of sites it no
    /// longer owns to their new primary).
    pub async fn frontier_sites(&self) -> Result<Vec<String>> {
        self.frontier_io(|f| f.queued_sites()).await
    }

    /// Sites whose crawled pages are visited again by this crawler when it crawls them (every
    /// site with a done URL): a site whose crawl is complete still has to be claimed (and
    /// handed over) for its revisits. Cheap (memory only).
    pub fn revisit_sites(&self) -> Vec<String> {
        self.inner.frontier.revisit_sites()
    }

    /// Drops the queue of `site` and its cached robots.txt; done URLs stay done.
    pub async fn forget_site(&self, site: &str) -> Result<()> {
        self.inner.robots.invalidate(site);
        let site = site.to_owned();
        self.frontier_io(move |f| f.forget_site(&site)).await
    }

    /// Whether `max_pages` fetches were made in this run.
    pub(crate) fn budget_exhausted(&self) -> bool {
        self.inner
            .config
            .max_pages
            .is_some_and(|max| self.inner.fetch_budget_used.load(Ordering::SeqCst) >= max)
    }

    fn refund_budget(&self) {
        let _ =
            self.inner
                .fetch_budget_used
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    }
}
