//! The crawl loop: frontier -> robots.txt -> politeness -> fetch -> extract -> channel.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, OwnedSemaphorePermit, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::extract::{ExtractedPage, RobotsDirectives, extract};
use crate::fetch::{
    DEFAULT_MAX_BODY_BYTES, DEFAULT_REQUEST_TIMEOUT, FetchConfig, Fetcher, default_user_agent,
};
use crate::frontier::{
    DEFAULT_MAX_DEPTH, DEFAULT_MAX_PAGES_PER_SITE, EnqueueReport, Frontier, FrontierLimits, Job,
    NextJob, Seed, SiteState, unix_now,
};
use crate::normalize::NormalizedUrl;
use crate::politeness::{DEFAULT_CRAWL_RATE, DEFAULT_MAX_CONCURRENCY, HostPermit, Politeness};
use crate::robots::{ROBOTS_USER_AGENT, RobotsCache, RobotsVerdict};

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

/// Longest wait for the extraction of one page (normally milliseconds; input size
/// and nesting are capped, this bounds whatever html5ever still finds hard).
const EXTRACT_TIMEOUT: Duration = Duration::from_secs(30);

/// How often idle per-host state is pruned.
const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

/// Longest sleep of the idle loop before it looks again (wake-ups normally come
/// from [`Notify`]; this only bounds a missed one).
const IDLE_POLL: Duration = Duration::from_secs(1);

/// Settings of a [`Crawler`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CrawlerConfig {
    /// Requests per second per host (`--crawl-rate`, default 1.0; fractional allowed).
    pub crawl_rate: f64,
    /// Fetches in flight at once across all hosts (default 16).
    pub max_concurrency: usize,
    /// Maximum link depth from a seed (default 16).
    pub max_depth: u32,
    /// Maximum URLs accepted per site (default 10 000).
    pub max_pages_per_site: u64,
    /// Stop fetching after this many pages in this run (`--max-pages`; default none).
    pub max_pages: Option<u64>,
    /// Allow loopback/private/link-local destinations (`--allow-private-addresses`).
    pub allow_private_addresses: bool,
    /// Total deadline per fetch, redirects and body included (default 30 s).
    #[serde(with = "duration_ms")]
    pub request_timeout: Duration,
    /// Body cap after decompression (default 5 MiB).
    pub max_body_bytes: usize,
    /// User-Agent header.
    pub user_agent: String,
    /// Times a site is put aside when its robots.txt is unavailable before its URLs are
    /// given up (default [`ROBOTS_MAX_DEFERRALS`]).
    pub robots_max_deferrals: u32,
    /// Local address the crawler's connections leave from (`--crawl-bind-addr`).
    pub local_address: Option<std::net::IpAddr>,
}

mod duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

impl Default for CrawlerConfig {
    fn default() -> Self {
        CrawlerConfig {
            crawl_rate: DEFAULT_CRAWL_RATE,
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            max_depth: DEFAULT_MAX_DEPTH,
            max_pages_per_site: DEFAULT_MAX_PAGES_PER_SITE,
            max_pages: None,
            allow_private_addresses: false,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            user_agent: default_user_agent(),
            robots_max_deferrals: ROBOTS_MAX_DEFERRALS,
            local_address: None,
        }
    }
}

/// What happened to a crawled URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// An HTML page to index.
    Indexable,
    /// An HTML page that asks not to be indexed (meta robots or X-Robots-Tag).
    NoIndex,
    /// Not HTML (PDF, image, ...): nothing to index.
    NotHtml,
    /// Same content, redirect target or canonical URL as a page already crawled.
    Duplicate,
    /// robots.txt forbids the URL.
    RobotsDenied,
    /// robots.txt stayed unavailable (5xx, unreachable), so the URL was given up.
    RobotsUnavailable(String),
    /// The server answered with this non-2xx status (after retries for 5xx/429).
    HttpError(u16),
    /// Network error, timeout, too large, redirect trouble (after retries).
    FetchError(String),
    /// The SSRF guard refused the destination.
    Blocked(String),
}

/// Every outcome label, in [`Outcome::index`] order.
const OUTCOME_LABELS: [&str; 9] = [
    "indexable",
    "no_index",
    "not_html",
    "duplicate",
    "robots_denied",
    "robots_unavailable",
    "http_error",
    "fetch_error",
    "blocked",
];

impl Outcome {
    /// snake_case label (metrics, logs).
    pub fn as_str(&self) -> &'static str {
        OUTCOME_LABELS[self.index()]
    }

    fn index(&self) -> usize {
        match self {
            Outcome::Indexable => 0,
            Outcome::NoIndex => 1,
            Outcome::NotHtml => 2,
            Outcome::Duplicate => 3,
            Outcome::RobotsDenied => 4,
            Outcome::RobotsUnavailable(_) => 5,
            Outcome::HttpError(_) => 6,
            Outcome::FetchError(_) => 7,
            Outcome::Blocked(_) => 8,
        }
    }

    /// Whether the page should go into the index.
    pub fn is_indexable(&self) -> bool {
        matches!(self, Outcome::Indexable)
    }

    /// Whether this is a failure (counted in `pages_failed`).
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            Outcome::RobotsUnavailable(_)
                | Outcome::HttpError(_)
                | Outcome::FetchError(_)
                | Outcome::Blocked(_)
        )
    }

    fn reason(&self) -> String {
        match self {
            Outcome::RobotsUnavailable(r) => format!("robots.txt unavailable: {r}"),
            Outcome::HttpError(s) => format!("http status {s}"),
            Outcome::FetchError(r) | Outcome::Blocked(r) => r.clone(),
            other => other.as_str().to_owned(),
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One crawled URL, sent to the node. See the crate docs for what the node must do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrawledPage {
    /// The URL as it was queued; pass it to [`Crawler::mark_committed`].
    pub url: NormalizedUrl,
    /// The document URL: the redirect target, or the canonical URL when the page
    /// names one on the same site; `url` when neither applies.
    pub final_url: NormalizedUrl,
    /// Link depth of `url`.
    pub depth: u32,
    /// Unix seconds of the fetch.
    pub fetched_at: i64,
    /// What happened.
    pub outcome: Outcome,
    /// The extracted page; `Some` only when `outcome` is [`Outcome::Indexable`].
    pub page: Option<ExtractedPage>,
    /// Anchor texts other pages used for this URL.
    pub anchors: Vec<String>,
    /// Links to crawl next (depth + 1); empty when the page says nofollow.
    pub links: Vec<Seed>,
}

/// Counters of the crawler (all cheap to read).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrawlStats {
    /// Queued URLs not taken yet.
    pub frontier_size: u64,
    /// URLs taken and not done yet (fetching, or sent and awaiting commit).
    pub in_flight: u64,
    /// Pages fetched with a 2xx answer in this run.
    pub pages_crawled: u64,
    /// URLs given up as failures in this run.
    pub pages_failed: u64,
    /// Count per [`Outcome::as_str`] label in this run.
    pub outcomes: BTreeMap<String, u64>,
}

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
    pages_crawled: AtomicU64,
    pages_failed: AtomicU64,
    outcomes: [AtomicU64; OUTCOME_LABELS.len()],
    recent_errors: Mutex<VecDeque<(i64, String, String)>>,
    robots_deferrals: Mutex<HashMap<String, u32>>,
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

/// What processing one job led to.
enum Step {
    /// A page to report.
    Report(Box<CrawledPage>),
    /// The job went back to the frontier (retry or robots deferral).
    Requeued,
}

impl Crawler {
    /// Opens the crawl state in `data_dir` (created if missing). Blocking (file I/O).
    pub fn open(data_dir: &Path, config: CrawlerConfig) -> Result<Crawler> {
        std::fs::create_dir_all(data_dir)?;
        let frontier = Frontier::open(
            &data_dir.join(CRAWL_DB_FILE),
            FrontierLimits {
                max_depth: config.max_depth,
                max_pages_per_site: config.max_pages_per_site,
            },
        )?;
        let fetcher = Fetcher::new(FetchConfig {
            allow_private_addresses: config.allow_private_addresses,
            request_timeout: config.request_timeout,
            max_body_bytes: config.max_body_bytes,
            user_agent: config.user_agent.clone(),
            local_address: config.local_address,
        })?;
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
                pages_crawled: AtomicU64::new(0),
                pages_failed: AtomicU64::new(0),
                outcomes: Default::default(),
                recent_errors: Mutex::new(VecDeque::new()),
                robots_deferrals: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &CrawlerConfig {
        &self.inner.config
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

    /// Whether `url` is done (crawled and committed, or given up).
    pub async fn is_done(&self, url: &NormalizedUrl) -> Result<bool> {
        let this = self.clone();
        let url = url.clone();
        tokio::task::spawn_blocking(move || this.inner.frontier.is_done(&url)).await?
    }

    /// Counters; cheap.
    pub fn stats(&self) -> CrawlStats {
        let inner = &self.inner;
        CrawlStats {
            frontier_size: inner.frontier.frontier_size(),
            in_flight: inner.frontier.in_flight(),
            pages_crawled: inner.pages_crawled.load(Ordering::Relaxed),
            pages_failed: inner.pages_failed.load(Ordering::Relaxed),
            outcomes: OUTCOME_LABELS
                .iter()
                .zip(&inner.outcomes)
                .map(|(label, n)| (label.to_string(), n.load(Ordering::Relaxed)))
                .filter(|(_, n)| *n > 0)
                .collect(),
        }
    }

    /// The last [`RECENT_ERRORS`] failures: (unix seconds, url, reason), oldest first.
    pub fn recent_errors(&self) -> Vec<(i64, String, String)> {
        lock(&self.inner.recent_errors).iter().cloned().collect()
    }

    /// The queued and done URLs of `site`, for another peer to continue its crawl.
    pub async fn export_site_state(&self, site: &str) -> Result<SiteState> {
        let this = self.clone();
        let site = site.to_owned();
        tokio::task::spawn_blocking(move || this.inner.frontier.export_site(&site)).await?
    }

    /// Merges a site's state exported by another peer; returns how many URLs were
    /// newly queued.
    pub async fn import_site_state(&self, state: SiteState) -> Result<usize> {
        let this = self.clone();
        let n =
            tokio::task::spawn_blocking(move || this.inner.frontier.import_site(state)).await??;
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
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.inner.frontier.queued_sites()).await?
    }

    /// Drops the queue of `site` and its cached robots.txt; done URLs stay done.
    pub async fn forget_site(&self, site: &str) -> Result<()> {
        self.inner.robots.invalidate(site);
        let this = self.clone();
        let site = site.to_owned();
        tokio::task::spawn_blocking(move || this.inner.frontier.forget_site(&site)).await?
    }

    /// Runs the crawl loop until `shutdown` fires (or `out` is closed), sending one
    /// [`CrawledPage`] per URL crawled. When it returns, no fetch is running; URLs
    /// that were interrupted are back in the frontier. Only one loop runs at a time:
    /// a second call returns at once.
    pub async fn run(&self, out: mpsc::Sender<CrawledPage>, shutdown: CancellationToken) {
        if self.inner.running.swap(true, Ordering::SeqCst) {
            tracing::warn!("crawl loop already running");
            return;
        }
        tracing::info!(
            frontier = self.inner.frontier.frontier_size(),
            "crawl loop started"
        );
        let mut tasks: JoinSet<()> = JoinSet::new();
        let mut last_prune = Instant::now();
        // Tasks stop on this one, which also fires when the loop ends for another
        // reason (output closed), so interrupted jobs always go back to the frontier.
        let stop = shutdown.child_token();
        loop {
            while let Some(done) = tasks.try_join_next() {
                if let Err(e) = done {
                    tracing::error!(error = %e, "crawl task failed");
                }
            }
            if last_prune.elapsed() >= PRUNE_INTERVAL {
                self.inner.politeness.prune();
                last_prune = Instant::now();
            }
            if out.is_closed() {
                tracing::warn!("crawl output closed, stopping");
                break;
            }
            let permit = tokio::select! {
                p = self.inner.politeness.global_permit() => p,
                _ = shutdown.cancelled() => break,
            };
            let next = if self.budget_exhausted() {
                Ok(NextJob::Wait(None))
            } else {
                let this = self.clone();
                tokio::task::spawn_blocking(move || {
                    let politeness = this.inner.politeness.clone();
                    this.inner
                        .frontier
                        .next_job(|site| politeness.try_acquire(site))
                })
                .await
                .map_err(Error::from)
                .and_then(|r| r)
            };
            let wait = match next {
                Ok(NextJob::Job(job, host)) => {
                    self.inner.fetch_budget_used.fetch_add(1, Ordering::SeqCst);
                    let this = self.clone();
                    let (out, stop) = (out.clone(), stop.clone());
                    tasks.spawn(async move {
                        this.process(job, host, permit, out, stop).await;
                    });
                    continue;
                }
                Ok(NextJob::Wait(wait)) => wait.unwrap_or(IDLE_POLL).min(IDLE_POLL),
                Ok(NextJob::Empty) => IDLE_POLL,
                Err(e) => {
                    tracing::error!(error = %e, "frontier read failed");
                    IDLE_POLL
                }
            };
            drop(permit);
            tokio::select! {
                _ = self.inner.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.cancelled() => break,
            }
        }
        // Tasks put their jobs back when stopped; wait for them.
        stop.cancel();
        while let Some(done) = tasks.join_next().await {
            if let Err(e) = done {
                tracing::error!(error = %e, "crawl task failed");
            }
        }
        self.inner.running.store(false, Ordering::SeqCst);
        tracing::info!("crawl loop stopped");
    }

    fn budget_exhausted(&self) -> bool {
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

    async fn process(
        self,
        job: Job,
        host: HostPermit,
        permit: OwnedSemaphorePermit,
        out: mpsc::Sender<CrawledPage>,
        shutdown: CancellationToken,
    ) {
        let _permit = permit;
        let url = job.url.clone();
        let work = async {
            match self.crawl_one(job.clone(), host).await {
                Ok(Step::Report(page)) => {
                    if out.send(*page).await.is_err() {
                        tracing::debug!(url = %url, "crawl output closed");
                    }
                }
                Ok(Step::Requeued) => {}
                Err(e) => {
                    // Store failure: leave the URL to a later attempt.
                    tracing::error!(url = %url, error = %e, "crawl step failed");
                    self.inner.frontier.untake(job.clone());
                }
            }
        };
        tokio::select! {
            _ = work => {}
            _ = shutdown.cancelled() => {
                self.inner.frontier.untake(job);
                self.refund_budget();
            }
        }
        self.inner.wake.notify_one();
    }

    async fn crawl_one(&self, mut job: Job, host: HostPermit) -> Result<Step> {
        let site = host.site().to_owned();
        let crawl_delay = match self.inner.robots.check(&job.url).await {
            RobotsVerdict::Allowed { crawl_delay } => {
                lock(&self.inner.robots_deferrals).remove(&site);
                crawl_delay.unwrap_or_default()
            }
            RobotsVerdict::Blocked(reason) => {
                drop(host);
                return self.finish(job, Outcome::Blocked(reason)).await;
            }
            RobotsVerdict::Disallowed => {
                lock(&self.inner.robots_deferrals).remove(&site);
                drop(host);
                self.refund_budget();
                return self.finish(job, Outcome::RobotsDenied).await;
            }
            RobotsVerdict::Unavailable { retry_at, reason } => {
                let deferrals = {
                    let mut map = lock(&self.inner.robots_deferrals);
                    let n = map.entry(site.clone()).or_default();
                    *n += 1;
                    *n
                };
                self.refund_budget();
                if deferrals <= self.inner.config.robots_max_deferrals {
                    tracing::debug!(site = %site, reason = %reason, "robots.txt unavailable, deferring site");
                    host.release(retry_at.saturating_duration_since(Instant::now()));
                    self.inner.frontier.untake(job);
                    return Ok(Step::Requeued);
                }
                drop(host);
                return self.finish(job, Outcome::RobotsUnavailable(reason)).await;
            }
        };

        let fetched = self.inner.fetcher.fetch(&job.url).await;
        let res = match fetched {
            Ok(res) => {
                host.release(crawl_delay);
                res
            }
            Err(e) if e.is_retryable() && job.attempt < MAX_FETCH_RETRIES => {
                let backoff = RETRY_BACKOFF * 2u32.pow(job.attempt);
                tracing::debug!(url = %job.url, error = %e, attempt = job.attempt, "fetch failed, will retry");
                host.release(backoff.max(crawl_delay));
                job.attempt += 1;
                self.refund_budget();
                self.inner.frontier.untake(job);
                return Ok(Step::Requeued);
            }
            Err(e) => {
                host.release(crawl_delay);
                let outcome = match e {
                    Error::Http(status) => Outcome::HttpError(status),
                    Error::Blocked(reason) => Outcome::Blocked(reason),
                    other => Outcome::FetchError(other.to_string()),
                };
                return self.finish(job, outcome).await;
            }
        };

        // The redirect target is the same document: claim it so it is not fetched
        // separately; if it was crawled already, this is a duplicate.
        let mut doc_url = res.final_url.clone();
        if doc_url != job.url && !self.claim_alias(&job.url, &doc_url).await? {
            return self.finish(job, Outcome::Duplicate).await;
        }
        let body = res.body.clone();
        let content_type = res.content_type.clone();
        let page_url = res.final_url.as_url().clone();
        let extraction =
            tokio::task::spawn_blocking(move || extract(&body, content_type.as_deref(), &page_url));
        // A blocking task cannot be cancelled; past the deadline the page is given up
        // and the thread finishes on its own.
        let Ok(extracted) = tokio::time::timeout(EXTRACT_TIMEOUT, extraction).await else {
            tracing::warn!(url = %job.url, "extraction timed out");
            return self
                .finish(job, Outcome::FetchError("extraction timed out".into()))
                .await;
        };
        let extracted = extracted?;
        let page = match extracted {
            Ok(page) => page,
            Err(Error::NotHtml(_)) => return self.finish_doc(job, doc_url, Outcome::NotHtml).await,
            Err(e) => return self.finish(job, Outcome::FetchError(e.to_string())).await,
        };
        let directives = page.robots.union(RobotsDirectives::from_x_robots_tag(
            &res.x_robots_tag,
            ROBOTS_USER_AGENT,
        ));
        if let Some(canonical) = &page.canonical
            && *canonical != doc_url
            && canonical.site() == doc_url.site()
        {
            if !self.claim_alias(&job.url, canonical).await? {
                return self.finish_doc(job, doc_url, Outcome::Duplicate).await;
            }
            doc_url = canonical.clone();
        }
        let duplicate_of = {
            let this = self.clone();
            let (primary, hash) = (job.url.clone(), page.content_hash.clone());
            tokio::task::spawn_blocking(move || {
                this.inner.frontier.check_content_hash(&primary, &hash)
            })
            .await??
        };
        if let Some(other) = duplicate_of {
            tracing::debug!(url = %job.url, same_as = %other, "duplicate content");
            return self.finish_doc(job, doc_url, Outcome::Duplicate).await;
        }
        let links = if directives.nofollow {
            Vec::new()
        } else {
            let depth = job.depth + 1;
            if depth > self.inner.config.max_depth {
                Vec::new()
            } else {
                page.links
                    .iter()
                    .filter(|l| !l.nofollow)
                    .map(|l| Seed {
                        url: l.url.clone(),
                        depth,
                        anchor: (!l.anchor.is_empty()).then(|| l.anchor.clone()),
                    })
                    .collect()
            }
        };
        let (outcome, page) = if directives.noindex {
            (Outcome::NoIndex, None)
        } else {
            (Outcome::Indexable, Some(page))
        };
        self.record(&job.url, &outcome);
        let crawled = CrawledPage {
            url: job.url.clone(),
            final_url: doc_url,
            depth: job.depth,
            fetched_at: unix_now(),
            outcome,
            page,
            anchors: job.anchors.clone(),
            links,
        };
        if crawled.page.is_none() && crawled.links.is_empty() {
            self.mark_done_now(&job.url).await?;
        }
        Ok(Step::Report(Box::new(crawled)))
    }

    async fn claim_alias(&self, primary: &NormalizedUrl, alias: &NormalizedUrl) -> Result<bool> {
        let this = self.clone();
        let (primary, alias) = (primary.clone(), alias.clone());
        tokio::task::spawn_blocking(move || this.inner.frontier.claim_alias(&primary, &alias))
            .await?
    }

    async fn mark_done_now(&self, url: &NormalizedUrl) -> Result<()> {
        let this = self.clone();
        let url = url.clone();
        tokio::task::spawn_blocking(move || this.inner.frontier.mark_done(&[url], unix_now()))
            .await?
    }

    /// Reports a URL that carries nothing for the node (no page, no links) and marks
    /// it done right away.
    async fn finish(&self, job: Job, outcome: Outcome) -> Result<Step> {
        let doc_url = job.url.clone();
        self.finish_doc(job, doc_url, outcome).await
    }

    async fn finish_doc(&self, job: Job, doc_url: NormalizedUrl, outcome: Outcome) -> Result<Step> {
        self.record(&job.url, &outcome);
        self.mark_done_now(&job.url).await?;
        Ok(Step::Report(Box::new(CrawledPage {
            url: job.url,
            final_url: doc_url,
            depth: job.depth,
            fetched_at: unix_now(),
            outcome,
            page: None,
            anchors: job.anchors,
            links: Vec::new(),
        })))
    }

    fn record(&self, url: &NormalizedUrl, outcome: &Outcome) {
        let inner = &self.inner;
        inner.outcomes[outcome.index()].fetch_add(1, Ordering::Relaxed);
        if outcome.is_failure() {
            inner.pages_failed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(url = %url, outcome = outcome.as_str(), "crawl failed");
            let mut errors = lock(&inner.recent_errors);
            if errors.len() >= RECENT_ERRORS {
                errors.pop_front();
            }
            errors.push_back((unix_now(), url.to_string(), outcome.reason()));
        } else if *outcome != Outcome::RobotsDenied {
            inner.pages_crawled.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::normalize;
    use axum::Router;
    use axum::extract::Path as AxumPath;
    use axum::http::{StatusCode, header};
    use axum::response::{IntoResponse, Redirect};
    use axum::routing::get;
    use std::collections::HashSet;
    use std::sync::atomic::AtomicUsize;

    const SITE_PAGES: usize = 20;

    use crate::test_util::serve;

    /// 20 pages; page i links to i+1, i+2, the home page and itself.
    fn site_router() -> Router {
        Router::new()
            .route(
                "/robots.txt",
                get(|| async { "User-agent: *\nDisallow: /private\n" }),
            )
            .route(
                "/page/{n}",
                get(|AxumPath(n): AxumPath<usize>| async move {
                    if n >= SITE_PAGES {
                        return StatusCode::NOT_FOUND.into_response();
                    }
                    let mut links = String::new();
                    for target in [n + 1, n + 2, 0, n] {
                        if target < SITE_PAGES {
                            links.push_str(&format!(
                                "<a href=\"/page/{target}\">page {target}</a> "
                            ));
                        }
                    }
                    (
                        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                        format!(
                            "<html><head><title>Page {n}</title></head>\
                             <body><p>Unique words for page number {n}.</p>{links}</body></html>"
                        ),
                    )
                        .into_response()
                }),
            )
    }

    fn test_config() -> CrawlerConfig {
        CrawlerConfig {
            crawl_rate: 1000.0,
            allow_private_addresses: true,
            request_timeout: Duration::from_secs(10),
            ..CrawlerConfig::default()
        }
    }

    /// Acts as the node: enqueues links, marks every page committed, stops when the
    /// crawl is idle. Returns the pages received.
    async fn crawl_until_idle(crawler: &Crawler, deadline: Duration) -> Vec<CrawledPage> {
        let (tx, mut rx) = mpsc::channel(16);
        let shutdown = CancellationToken::new();
        let run = tokio::spawn({
            let crawler = crawler.clone();
            let shutdown = shutdown.clone();
            async move { crawler.run(tx, shutdown).await }
        });
        let mut pages = Vec::new();
        let start = Instant::now();
        while start.elapsed() < deadline {
            match tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
                Ok(Some(page)) => {
                    crawler.enqueue(page.links.clone()).await.unwrap();
                    crawler
                        .mark_committed(std::slice::from_ref(&page.url))
                        .await
                        .unwrap();
                    pages.push(page);
                }
                Ok(None) => break,
                Err(_) => {
                    let stats = crawler.stats();
                    if stats.frontier_size == 0 && stats.in_flight == 0 {
                        break;
                    }
                }
            }
        }
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), run)
            .await
            .expect("crawl loop stops on shutdown")
            .unwrap();
        pages
    }

    #[tokio::test]
    async fn crawls_a_small_site_once_and_goes_idle() {
        let base = serve(site_router()).await;
        let dir = tempfile::tempdir().unwrap();
        let crawler = Crawler::open(dir.path(), test_config()).unwrap();
        let report = crawler
            .enqueue(vec![
                Seed::new(normalize(&format!("{base}/page/0"), None).unwrap()),
                Seed::new(normalize(&format!("{base}/private/x"), None).unwrap()),
            ])
            .await
            .unwrap();
        assert_eq!(report.accepted, 2);

        let pages = crawl_until_idle(&crawler, Duration::from_secs(60)).await;
        let urls: Vec<String> = pages.iter().map(|p| p.url.to_string()).collect();
        let distinct: HashSet<&String> = urls.iter().collect();
        assert_eq!(
            distinct.len(),
            urls.len(),
            "a page was reported twice: {urls:?}"
        );
        assert_eq!(pages.len(), SITE_PAGES + 1, "{urls:?}");

        let private = pages
            .iter()
            .find(|p| p.url.as_url().path() == "/private/x")
            .expect("robots-denied url reported");
        assert_eq!(private.outcome, Outcome::RobotsDenied);
        for page in pages
            .iter()
            .filter(|p| p.url.as_url().path() != "/private/x")
        {
            assert_eq!(page.outcome, Outcome::Indexable, "{}", page.url);
            let doc = page.page.as_ref().unwrap();
            assert!(doc.title.starts_with("Page "));
            assert!(page.depth <= SITE_PAGES as u32);
        }
        let page1 = pages
            .iter()
            .find(|p| p.url.as_url().path() == "/page/1")
            .unwrap();
        assert_eq!(page1.anchors, vec!["page 1".to_owned()]);

        let stats = crawler.stats();
        assert_eq!(stats.frontier_size, 0);
        assert_eq!(stats.in_flight, 0);
        assert_eq!(stats.pages_crawled, SITE_PAGES as u64);
        assert_eq!(stats.pages_failed, 0);
        assert_eq!(stats.outcomes.get("indexable"), Some(&(SITE_PAGES as u64)));
        assert_eq!(stats.outcomes.get("robots_denied"), Some(&1));

        // Everything is done durably: reopening finds nothing to crawl.
        drop(crawler);
        let crawler = Crawler::open(dir.path(), test_config()).unwrap();
        assert_eq!(crawler.stats().frontier_size, 0);
        let again = crawler
            .enqueue(vec![Seed::new(
                normalize(&format!("{base}/page/3"), None).unwrap(),
            )])
            .await
            .unwrap();
        assert_eq!(again.accepted, 0);
    }

    #[tokio::test]
    async fn reports_redirects_noindex_duplicates_and_failures() {
        let flaky_hits = Arc::new(AtomicUsize::new(0));
        let hits = flaky_hits.clone();
        let router = Router::new()
            .route("/robots.txt", get(|| async { StatusCode::NOT_FOUND }))
            .route("/old", get(|| async { Redirect::permanent("/new") }))
            .route(
                "/new",
                get(|| async { axum::response::Html("<title>New</title><p>new text</p>") }),
            )
            .route(
                "/noindex",
                get(|| async {
                    axum::response::Html(
                        "<meta name=robots content=noindex><p>hidden</p><a href=/linked>l</a>",
                    )
                }),
            )
            .route(
                "/linked",
                get(|| async { axum::response::Html("<title>Linked</title><p>linked</p>") }),
            )
            .route(
                "/copy",
                get(|| async { axum::response::Html("<title>New</title><p>new text</p>") }),
            )
            .route("/gone", get(|| async { StatusCode::GONE }))
            .route(
                "/pdf",
                get(|| async { ([(header::CONTENT_TYPE, "application/pdf")], "%PDF-1.4") }),
            )
            .route(
                "/flaky",
                get(move || {
                    let n = hits.fetch_add(1, Ordering::SeqCst);
                    async move {
                        if n == 0 {
                            StatusCode::SERVICE_UNAVAILABLE.into_response()
                        } else {
                            axum::response::Html("<title>Flaky</title><p>ok now</p>")
                                .into_response()
                        }
                    }
                }),
            );
        let base = serve(router).await;
        let dir = tempfile::tempdir().unwrap();
        let crawler = Crawler::open(dir.path(), test_config()).unwrap();
        let url = |p: &str| normalize(&format!("{base}{p}"), None).unwrap();
        // `/old` first so that `/copy` (same content as `/new`) comes later.
        crawler.enqueue(vec![Seed::new(url("/old"))]).await.unwrap();
        let first = crawl_until_idle(&crawler, Duration::from_secs(30)).await;
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].outcome, Outcome::Indexable);
        assert_eq!(first[0].final_url, url("/new"));
        assert!(crawler.is_done(&url("/new")).await.unwrap());
        assert!(crawler.is_done(&url("/old")).await.unwrap());

        crawler
            .enqueue(
                ["/new", "/noindex", "/copy", "/gone", "/pdf", "/flaky"]
                    .iter()
                    .map(|p| Seed::new(url(p)))
                    .collect(),
            )
            .await
            .unwrap();
        let pages = crawl_until_idle(&crawler, Duration::from_secs(60)).await;
        let outcome = |p: &str| {
            pages
                .iter()
                .find(|page| page.url == url(p))
                .map(|page| page.outcome.clone())
        };
        // `/new` was done as the redirect target of `/old`: refused as seen.
        assert_eq!(outcome("/new"), None);
        assert_eq!(outcome("/noindex"), Some(Outcome::NoIndex));
        assert_eq!(outcome("/linked"), Some(Outcome::Indexable));
        assert_eq!(outcome("/copy"), Some(Outcome::Duplicate));
        assert_eq!(outcome("/gone"), Some(Outcome::HttpError(410)));
        assert_eq!(outcome("/pdf"), Some(Outcome::NotHtml));
        assert_eq!(outcome("/flaky"), Some(Outcome::Indexable));
        assert_eq!(flaky_hits.load(Ordering::SeqCst), 2);
        let noindex = pages.iter().find(|p| p.url == url("/noindex")).unwrap();
        assert!(noindex.page.is_none());
        assert_eq!(noindex.links.len(), 1);

        let errors = crawler.recent_errors();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].1, url("/gone").to_string());
        assert_eq!(crawler.stats().pages_failed, 1);
    }

    #[tokio::test]
    async fn blocked_destinations_are_reported() {
        let base = serve(site_router()).await;
        let dir = tempfile::tempdir().unwrap();
        let config = CrawlerConfig {
            allow_private_addresses: false,
            ..test_config()
        };
        let crawler = Crawler::open(dir.path(), config).unwrap();
        crawler
            .enqueue(vec![Seed::new(
                normalize(&format!("{base}/page/0"), None).unwrap(),
            )])
            .await
            .unwrap();
        let pages = crawl_until_idle(&crawler, Duration::from_secs(30)).await;
        assert_eq!(pages.len(), 1);
        assert!(
            matches!(pages[0].outcome, Outcome::Blocked(_)),
            "{:?}",
            pages[0].outcome
        );
        assert_eq!(crawler.stats().pages_failed, 1);
        assert_eq!(crawler.recent_errors().len(), 1);
    }

    #[tokio::test]
    async fn max_pages_stops_fetching() {
        let base = serve(site_router()).await;
        let dir = tempfile::tempdir().unwrap();
        let config = CrawlerConfig {
            max_pages: Some(3),
            ..test_config()
        };
        let crawler = Crawler::open(dir.path(), config).unwrap();
        crawler
            .enqueue(vec![Seed::new(
                normalize(&format!("{base}/page/0"), None).unwrap(),
            )])
            .await
            .unwrap();
        let pages = crawl_until_idle(&crawler, Duration::from_secs(3)).await;
        assert_eq!(pages.len(), 3);
        assert!(crawler.stats().frontier_size > 0);
    }

    #[tokio::test]
    async fn shutdown_puts_interrupted_jobs_back() {
        let router = Router::new().route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        );
        let base = serve(router).await;
        let dir = tempfile::tempdir().unwrap();
        let crawler = Crawler::open(dir.path(), test_config()).unwrap();
        crawler
            .enqueue(vec![Seed::new(
                normalize(&format!("{base}/slow"), None).unwrap(),
            )])
            .await
            .unwrap();
        let (tx, _rx) = mpsc::channel(4);
        let shutdown = CancellationToken::new();
        let run = tokio::spawn({
            let crawler = crawler.clone();
            let shutdown = shutdown.clone();
            async move { crawler.run(tx, shutdown).await }
        });
        for _ in 0..100 {
            if crawler.stats().in_flight == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(crawler.stats().in_flight, 1);
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), run)
            .await
            .unwrap()
            .unwrap();
        let stats = crawler.stats();
        assert_eq!(stats.in_flight, 0);
        assert_eq!(stats.frontier_size, 1);
    }

    #[test]
    fn outcome_labels_are_snake_case() {
        assert_eq!(Outcome::HttpError(404).as_str(), "http_error");
        assert_eq!(Outcome::NoIndex.as_str(), "no_index");
        assert_eq!(Outcome::Blocked("x".into()).as_str(), "blocked");
        assert!(Outcome::FetchError("x".into()).is_failure());
        assert!(!Outcome::Duplicate.is_failure());
    }
}
