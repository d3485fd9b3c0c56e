//! What the crawler reports: the outcome of each URL, the page sent to the node, and
//! the counters behind [`CrawlStats`] and the recent errors.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::RECENT_ERRORS;
use crate::error::Error;
use crate::extract::ExtractedPage;
use crate::frontier::Seed;
use crate::normalize::NormalizedUrl;
use crate::util::{lock, unix_now};

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
    /// It redirected out of its crawl scope: not followed, and not a failure.
    OutOfScope,
    /// A revisit the server answered 304 Not Modified: nothing to extract or index.
    NotModified,
    /// A revisit that found the same content as before: nothing to index.
    Unchanged,
}

/// Every outcome label, in [`Outcome::index`] order.
const OUTCOME_LABELS: [&str; 12] = [
    "indexable",
    "no_index",
    "not_html",
    "duplicate",
    "robots_denied",
    "robots_unavailable",
    "http_error",
    "fetch_error",
    "blocked",
    "out_of_scope",
    "not_modified",
    "unchanged",
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
            Outcome::OutOfScope => 9,
            Outcome::NotModified => 10,
            Outcome::Unchanged => 11,
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

    /// The outcome of a fetch that failed with `error` (after retries).
    pub(crate) fn of_fetch_error(error: Error) -> Outcome {
        match error {
            Error::Http(status) => Outcome::HttpError(status),
            Error::Blocked(reason) => Outcome::Blocked(reason),
            Error::RobotsDisallowed(_) => Outcome::RobotsDenied,
            Error::RobotsUnavailable(reason) => Outcome::RobotsUnavailable(reason),
            Error::OutOfScope(_) => Outcome::OutOfScope,
            other => Outcome::FetchError(other.to_string()),
        }
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
    /// A revisit found the page gone, moved or no longer indexable: the documents of these
    /// URLs must leave the index (and the replicas). Committed like a document: the URL is
    /// marked done by the node, after the removal is committed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<NormalizedUrl>,
    /// Whether this was a revisit of a URL crawled before.
    #[serde(default)]
    pub revisit: bool,
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
    /// Revisits due now and not taken ([`Frontier::revisits_due`](crate::frontier)).
    #[serde(default)]
    pub revisits_due: u64,
    /// Revisits made in this run.
    #[serde(default)]
    pub pages_revisited: u64,
    /// Revisits that found a changed document.
    #[serde(default)]
    pub pages_changed: u64,
    /// Revisits that found nothing new (304, or the same content).
    #[serde(default)]
    pub pages_unchanged: u64,
    /// Revisits that removed a document (gone, moved, no longer indexable).
    #[serde(default)]
    pub pages_removed: u64,
    /// Sitemap rounds made in this run (one per site and revisit interval at most).
    #[serde(default)]
    pub sitemap_rounds: u64,
    /// Page URLs the sitemaps listed (inside the crawl scope), all rounds together.
    #[serde(default)]
    pub sitemap_urls: u64,
}

/// The counters of one run: outcomes, pages crawled and failed, recent failures.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pages_crawled: AtomicU64,
    pages_failed: AtomicU64,
    outcomes: [AtomicU64; OUTCOME_LABELS.len()],
    recent_errors: Mutex<VecDeque<(i64, String, String)>>,
    revisited: AtomicU64,
    changed: AtomicU64,
    unchanged: AtomicU64,
    removed: AtomicU64,
    sitemap_rounds: AtomicU64,
    sitemap_urls: AtomicU64,
}

impl Counters {
    /// Counts the outcome of `url`; failures are logged and kept among the recent errors.
    pub(super) fn record(&self, url: &NormalizedUrl, outcome: &Outcome) {
        self.outcomes[outcome.index()].fetch_add(1, Ordering::Relaxed);
        if outcome.is_failure() {
            self.pages_failed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(url = %url, outcome = outcome.as_str(), "crawl failed");
            let mut errors = lock(&self.recent_errors);
            if errors.len() >= RECENT_ERRORS {
                errors.pop_front();
            }
            errors.push_back((unix_now(), url.to_string(), outcome.reason()));
        } else if *outcome != Outcome::RobotsDenied {
            self.pages_crawled.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a revisit: whether it found a change, nothing new, or removed documents.
    pub(super) fn record_revisit(&self, outcome: &Outcome, removed: bool) {
        self.revisited.fetch_add(1, Ordering::Relaxed);
        let counter = if removed {
            &self.removed
        } else if matches!(outcome, Outcome::NotModified | Outcome::Unchanged) {
            &self.unchanged
        } else if outcome.is_indexable() {
            &self.changed
        } else {
            return;
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a sitemap round that listed `urls` pages.
    pub(super) fn record_sitemaps(&self, urls: u64) {
        self.sitemap_rounds.fetch_add(1, Ordering::Relaxed);
        self.sitemap_urls.fetch_add(urls, Ordering::Relaxed);
    }

    /// The counters as stats; the frontier's numbers are the caller's.
    pub(super) fn stats(
        &self,
        frontier_size: u64,
        in_flight: u64,
        revisits_due: u64,
    ) -> CrawlStats {
        CrawlStats {
            frontier_size,
            in_flight,
            revisits_due,
            pages_revisited: self.revisited.load(Ordering::Relaxed),
            pages_changed: self.changed.load(Ordering::Relaxed),
            pages_unchanged: self.unchanged.load(Ordering::Relaxed),
            pages_removed: self.removed.load(Ordering::Relaxed),
            sitemap_rounds: self.sitemap_rounds.load(Ordering::Relaxed),
            sitemap_urls: self.sitemap_urls.load(Ordering::Relaxed),
            pages_crawled: self.pages_crawled.load(Ordering::Relaxed),
            pages_failed: self.pages_failed.load(Ordering::Relaxed),
            outcomes: OUTCOME_LABELS
                .iter()
                .zip(&self.outcomes)
                .map(|(label, n)| (label.to_string(), n.load(Ordering::Relaxed)))
                .filter(|(_, n)| *n > 0)
                .collect(),
        }
    }

    pub(super) fn recent_errors(&self) -> Vec<(i64, String, String)> {
        lock(&self.recent_errors).iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_labels_are_snake_case() {
        assert_eq!(Outcome::HttpError(404).as_str(), "http_error");
        assert_eq!(Outcome::NoIndex.as_str(), "no_index");
        assert_eq!(Outcome::Blocked("x".into()).as_str(), "blocked");
        assert!(Outcome::FetchError("x".into()).is_failure());
        assert!(!Outcome::Duplicate.is_failure());
    }

    #[test]
    fn fetch_errors_map_to_outcomes() {
        assert_eq!(
            Outcome::of_fetch_error(Error::RobotsDisallowed("u".into())),
            Outcome::RobotsDenied
        );
        assert_eq!(
            Outcome::of_fetch_error(Error::Http(410)),
            Outcome::HttpError(410)
        );
        assert!(matches!(
            Outcome::of_fetch_error(Error::Blocked("b".into())),
            Outcome::Blocked(_)
        ));
        assert!(matches!(
            Outcome::of_fetch_error(Error::Timeout),
            Outcome::FetchError(_)
        ));
    }

    #[test]
    fn recent_errors_are_bounded() {
        let counters = Counters::default();
        let url = crate::normalize::normalize("http://a.example/", None).unwrap();
        for _ in 0..RECENT_ERRORS + 5 {
            counters.record(&url, &Outcome::HttpError(500));
        }
        counters.record(&url, &Outcome::Indexable);
        counters.record(&url, &Outcome::RobotsDenied);
        assert_eq!(counters.recent_errors().len(), RECENT_ERRORS);
        let stats = counters.stats(0, 0, 0);
        assert_eq!(stats.pages_failed, (RECENT_ERRORS + 5) as u64);
        assert_eq!(stats.pages_crawled, 1);
        assert_eq!(stats.outcomes.get("robots_denied"), Some(&1));
    }
}
