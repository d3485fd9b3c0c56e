//! The peersearch crawler: a persistent frontier, robots.txt, per-host politeness, a
//! guarded fetcher and HTML extraction, driven by one crawl loop.
//!
//! # How the node uses it
//!
//! The node decides *which* URLs this peer crawls (site ownership) and commits
//! documents to the index; the crawler does everything in between:
//!
//! ```no_run
//! use peersearch_crawler::{Crawler, CrawlerConfig, Seed, normalize};
//! use tokio_util::sync::CancellationToken;
//!
//! # async fn example() -> peersearch_crawler::Result<()> {
//! let crawler = Crawler::open(std::path::Path::new("/tmp/peer"), CrawlerConfig::default())?;
//! crawler.enqueue(vec![Seed::new(normalize("https://example.com/", None)?)]).await?;
//!
//! let (tx, mut rx) = tokio::sync::mpsc::channel(64);
//! let shutdown = CancellationToken::new();
//! tokio::spawn({
//!     let crawler = crawler.clone();
//!     let shutdown = shutdown.clone();
//!     async move { crawler.run(tx, shutdown).await }
//! });
//! while let Some(page) = rx.recv().await {
//!     if let Some(doc) = &page.page {
//!         // index `doc` under `page.final_url`, commit ...
//!         let _ = doc;
//!     }
//!     // enqueue page.links of owned sites, hand off the others ...
//!     crawler.mark_committed(&[page.url.clone()]).await?;
//! }
//! # Ok(())
//! # }
//! ```
//!
//! ## The rule for `mark_committed`
//!
//! **Call [`Crawler::mark_committed`] with [`CrawledPage::url`] for every page received,
//! after its document (if any) is committed and its links are persisted (enqueued
//! here or acknowledged by their owner).** Until then the URL counts as in flight and
//! a restart crawls it again, so a crash never loses a document or a link.
//!
//! Pages that carry nothing for the node (`page` is `None` and `links` is empty:
//! failures, robots denials, duplicates, non-HTML) are already marked done by the
//! crawler before they are sent; calling `mark_committed` for them too is harmless
//! (it is idempotent), so the node needs no special case. Batching several URLs in
//! one call makes one store transaction.
//!
//! Only [`Outcome::Indexable`] pages carry a `page` to index. `NoIndex` pages carry
//! no `page` but do carry their links (unless nofollow).
//!
//! # Design choices
//!
//! - **State** lives in redb at `<data_dir>/crawl.redb`: queued URLs keyed by
//!   (site, depth, url) so each site is crawled breadth first, done URLs, per-site
//!   counts and content hashes. Only a small ready queue per site is in memory;
//!   "in flight" is never stored, so after a crash it is simply queued again.
//! - **Dedup**: normalized URLs ([`normalize`]) form the seen set. A redirect target
//!   and a same-site `<link rel=canonical>` are claimed as aliases of the URL being
//!   crawled: the document is reported under the canonical/final URL (when that was
//!   not crawled already — otherwise the page is a [`Outcome::Duplicate`]) and the
//!   alias is marked done together with it. Identical content (SHA-256 of title and
//!   main text) is reported once; later copies are `Duplicate`.
//! - **Politeness**: a governor rate limiter per host (`crawl_rate`), exactly one
//!   request in flight per host, robots.txt Crawl-delay (capped at 30 s) added after
//!   each request, a global cap on concurrent fetches. Hosts are served round robin.
//! - **robots.txt** (RFC 9309, token `peersearch`): 4xx allows all; 5xx or
//!   unreachable disallows all, cached 10 min; the site is put aside until then, and
//!   after [`ROBOTS_MAX_DEFERRALS`] such periods its URLs are given up one by one as
//!   [`Outcome::RobotsUnavailable`]. A disallowed URL is done for good.
//! - **Safety**: the fetcher refuses loopback, private, link-local, CGNAT, multicast
//!   and documentation addresses (after DNS resolution, and for IP literals, on every
//!   redirect hop) unless `allow_private_addresses`; bodies are capped after
//!   decompression while streaming (gzip bombs stop early); every fetch has a total
//!   deadline; redirects are followed by hand (at most 10, loops detected).
//! - **Retries**: network errors, timeouts, 5xx and 429 are retried twice with a
//!   per-host backoff (2 s, 4 s), then reported as failures and done.
//! - **Links** with `rel=nofollow|ugc|sponsored` are extracted (flagged) but not
//!   followed; nothing is followed from a page with meta robots / X-Robots-Tag
//!   `nofollow`.
//! - **`max_pages`** counts fetches made by this process (a restart starts over).
//! - **Redirects** are followed by the fetcher; every hop's target must pass the SSRF
//!   guard and then robots.txt of its host (same site or another) before it is
//!   requested, and a disallowed target ends the fetch as [`Outcome::RobotsDenied`].
//!   For a target on another site that site's rate is not consulted for that one
//!   request; the document is reported under the target URL (`final_url`), whose
//!   site the node may not own.
//! - **DNS**: names resolve through the system resolver, or through
//!   [`CrawlerConfig::resolver`] ([`DnsResolver`]); the guard judges the answers of
//!   either, on every connection (a name that rebinds to a private address is refused).
//! - **Main content**: [`ExtractedPage::text`] is the page's own text, found by
//!   semantics (`<main>`, `<article>`, ARIA landmarks), Readability-style text and link
//!   density scoring and class/id hints; navigation, header, footer, sidebars, banners
//!   and hidden popups go to [`ExtractedPage::chrome`]; links come from the whole page.
//!   A page without discernible main content keeps all its text as `text`.
//! - Extraction is synchronous and iterative (no recursion), with element nesting and
//!   attributes per tag capped before parsing: the crawl loop runs it
//!   on `spawn_blocking`; all store I/O also runs on blocking threads, and no lock
//!   that async code takes (stats, pause, untake) is held across a store commit.

mod engine;
mod error;
mod extract;
mod fetch;
mod frontier;
mod normalize;
mod politeness;
pub mod reopen;
mod robots;
mod scope;
pub mod sitemap;
#[cfg(test)]
mod test_util;
mod util;

pub use engine::{
    CRAWL_DB_FILE, CrawlStats, CrawledPage, Crawler, CrawlerConfig, MAX_FETCH_RETRIES, Outcome,
    RECENT_ERRORS, RETRY_BACKOFF, ROBOTS_MAX_DEFERRALS,
};
pub use error::{Error, Result};
pub use extract::{
    ExtractedPage, Link, MAX_LINKS, MAX_TEXT_BYTES, RobotsDirectives, content_hash, extract,
    is_html_content_type,
};
pub use fetch::{
    DEFAULT_MAX_BODY_BYTES, DEFAULT_REQUEST_TIMEOUT, DnsResolver, FetchConfig, FetchResult,
    Fetcher, MAX_REDIRECTS, NET_LOG_TARGET, Validators, default_user_agent, forbidden_reason,
};
pub use frontier::revisit::{
    DEAD_AFTER_FAILURES, DEFAULT_MAX_REVISIT_SECS, DEFAULT_MIN_REVISIT_SECS, HUB_LINKS,
};
pub use frontier::{
    DEFAULT_MAX_DEPTH, DEFAULT_MAX_PAGES_PER_SITE, DoneUrl, EnqueueReport, QueuedUrl, RefuseReason,
    Refused, RevisitPolicy, Seed, SiteState,
};
pub use normalize::{MAX_URL_BYTES, NormalizedUrl, normalize, site_of};
pub use politeness::{DEFAULT_CRAWL_RATE, DEFAULT_MAX_CONCURRENCY};
pub use robots::{MAX_CRAWL_DELAY, ROBOTS_USER_AGENT, RobotsCache, RobotsVerdict};
pub use scope::{MAX_SCOPE_ENTRIES, MAX_SCOPE_ENTRY_LEN, Scope, ScopeMatcher, ScopeSpec};
