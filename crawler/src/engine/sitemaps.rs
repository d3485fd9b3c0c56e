//! Sitemaps feed the frontier: once per site and revisit round (`--min-revisit-secs`), after
//! the first page of the site is fetched, the crawler reads the sitemaps its robots.txt lists
//! (or `/sitemap.xml`) through [`crate::sitemap`] (size caps, gzip, index files, loops, same-site
//! URLs only), queues the pages it lists inside the crawl's scope, and brings forward the
//! revisit of every page whose `lastmod` is later than its last fetch. Every sitemap request
//! passes robots.txt and the host's politeness like a page fetch (one request in flight,
//! `--crawl-rate`, Crawl-delay).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Crawler;
use crate::error::{Error, Result};
use crate::frontier::{Job, Seed};
use crate::normalize::{NormalizedUrl, normalize};
use crate::politeness::{HostBusy, HostPermit};
use crate::robots::RobotsVerdict;
use crate::scope::Scope;
use crate::sitemap;
use crate::util::{lock, now};

/// Longest a sitemap round of one site may take, all files together.
const SITEMAP_ROUND_LIMIT: Duration = Duration::from_secs(300);
/// Sites whose last round time is remembered before the old ones are forgotten.
const REMEMBERED_ROUNDS: usize = 10_000;

impl Crawler {
    /// Starts a sitemap round for the site of `job` unless one ran within the shortest
    /// revisit interval. It runs on its own task and stops with `stop`.
    pub(super) fn maybe_read_sitemaps(&self, job: &Job, stop: &CancellationToken) {
        let site = job.url.site();
        let every = Duration::from_secs(self.inner.config.revisit_policy().min_secs);
        {
            let mut rounds = lock(&self.inner.sitemap_rounds);
            let t = now();
            if rounds
                .get(&site)
                .is_some_and(|last| t.duration_since(*last) < every)
            {
                return;
            }
            if rounds.len() >= REMEMBERED_ROUNDS {
                rounds.retain(|_, last| t.duration_since(*last) < every);
            }
            rounds.insert(site, t);
        }
        let Ok(root) = normalize("/", Some(job.url.as_url())) else {
            return;
        };
        let (this, scope, stop) = (self.clone(), job.scope.clone(), stop.clone());
        tokio::spawn(async move {
            tokio::select! {
                done = tokio::time::timeout(SITEMAP_ROUND_LIMIT, this.read_sitemaps(root, scope)) => {
                    if done.is_err() {
                        tracing::debug!("sitemap round cut off at its time limit");
                    }
                }
                _ = stop.cancelled() => {}
            }
        });
    }

    /// One sitemap round of the site of `root`; its pages are queued in `scope`.
    async fn read_sitemaps(&self, root: NormalizedUrl, scope: Option<Scope>) {
        let site = root.site();
        let robots = self.inner.robots.sitemaps(&site);
        let listed = sitemap::same_site_sitemaps(robots.iter().map(String::as_str), &root);
        let held: Arc<Mutex<Option<(HostPermit, Duration)>>> = Arc::default();
        let report = sitemap::discover_gated(&self.inner.fetcher, &root, listed, |url| {
            let (this, held) = (self.clone(), held.clone());
            async move { this.sitemap_gate(url, &held).await }
        })
        .await;
        if let Some((permit, delay)) = lock(&held).take() {
            permit.release(delay);
        }
        let matcher = scope.as_ref().map(Scope::matcher);
        let entries: Vec<(NormalizedUrl, Option<i64>)> = report
            .entries
            .into_iter()
            .filter(|(url, _)| matcher.as_ref().is_none_or(|m| m.allows(url, 1)))
            .collect();
        let listed = entries.len();
        let hints: Vec<(NormalizedUrl, i64)> = entries
            .iter()
            .filter_map(|(url, lastmod)| lastmod.map(|t| (url.clone(), t)))
            .collect();
        let seeds: Vec<Seed> = entries
            .into_iter()
            .map(|(url, _)| Seed {
                url,
                depth: 1,
                anchor: None,
                scope: scope.clone(),
            })
            .collect();
        let queued = match self.enqueue(seeds).await {
            Ok(r) => r.accepted,
            Err(e) => {
                tracing::warn!(site, error = %e, "cannot queue the pages of a sitemap");
                0
            }
        };
        let forward = match self
            .frontier_io(move |f| f.changed_since_fetch(&hints))
            .await
        {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(site, error = %e, "cannot bring changed pages forward");
                0
            }
        };
        if forward > 0 {
            self.inner.wake.notify_one();
        }
        self.inner.counters.record_sitemaps(listed as u64);
        tracing::debug!(
            site,
            files = report.files_fetched,
            failed = report.files_failed,
            cut = report.files_cut,
            listed,
            queued,
            forward,
            dropped_other_site = report.dropped_other_site,
            "sitemaps read"
        );
    }

    /// The gate of every sitemap request: robots.txt must allow it, and the host's politeness
    /// grants it (the previous request of the round frees the host, after the Crawl-delay).
    async fn sitemap_gate(
        &self,
        url: NormalizedUrl,
        held: &Mutex<Option<(HostPermit, Duration)>>,
    ) -> Result<()> {
        let delay = match self.inner.robots.check(&url).await {
            RobotsVerdict::Allowed { crawl_delay } => crawl_delay.unwrap_or_default(),
            RobotsVerdict::Disallowed => return Err(Error::RobotsDisallowed(url.to_string())),
            RobotsVerdict::Blocked(reason) => return Err(Error::Blocked(reason)),
            RobotsVerdict::Unavailable { reason, .. } => {
                return Err(Error::RobotsUnavailable(reason));
            }
        };
        let previous = lock(held).take();
        if let Some((permit, delay)) = previous {
            permit.release(delay);
        }
        let site = url.site();
        loop {
            match self.inner.politeness.try_acquire(&site) {
                Ok(permit) => {
                    *lock(held) = Some((permit, delay));
                    return Ok(());
                }
                Err(HostBusy::Wait(wait)) => {
                    tokio::time::sleep(wait.min(Duration::from_secs(1))).await;
                }
                Err(HostBusy::InFlight) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }
}
