//! The JSON types of the HTTP contract (`../shared/CONTRACT.md`) and the [`Backend`] trait
//! through which the web layer reaches the peer. The node implements [`Backend`]; the CLI
//! client deserializes the same types.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::future::Future;

/// Where a search runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Fan out across the overlay (the default).
    #[default]
    Network,
    /// Only this peer's shard.
    Local,
}

/// A validated search request (limits already checked by the web layer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchParams {
    /// The raw query text, 1..=1024 bytes.
    pub q: String,
    /// 1..=100.
    pub limit: usize,
    /// 0..=1000.
    pub offset: usize,
    /// Network or local.
    pub scope: Scope,
    /// 50..=10000.
    pub timeout_ms: u64,
    /// Ask for each hit's score explanation ([`ApiHit::explanation`]).
    pub explain: bool,
}

/// One search hit as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiHit {
    /// The page's URL.
    pub url: String,
    /// The page's title (plain text, not escaped).
    pub title: String,
    /// HTML-escaped text in which only `<b>` and `</b>` mark the query terms.
    pub snippet: String,
    /// BM25 score with network-wide statistics.
    pub score: f32,
    /// The peer id of the peer that answered with this hit.
    pub peer: String,
    /// How the score is made, when the search asked for it (`explain`) and it could be
    /// recomputed (a peer may not send what it takes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<peersearch_indexer::Explanation>,
}

/// How many peers a search reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PeerCounts {
    /// Peers the query was sent to (this peer included).
    pub queried: usize,
    /// Peers that answered in time.
    pub answered: usize,
    /// Peers that failed or timed out.
    pub failed: usize,
}

/// The 200 answer of `GET /api/search`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchResponse {
    /// The query as received.
    pub query: String,
    /// Ordered by score, highest first, no URL twice.
    pub hits: Vec<ApiHit>,
    /// Wall time spent answering.
    pub took_ms: u64,
    /// Fan-out accounting.
    pub peers: PeerCounts,
    /// True when some peer did not answer within the deadline.
    pub partial: bool,
    /// Total matching documents as far as known (an estimate across peers; may count replicas).
    #[serde(default)]
    pub total_hits: u64,
    /// Rounds of requests to other peers the answer took: 0 for `scope=local` or a peer
    /// alone; 1 when the statistics of every term of the query were cached and still
    /// current (the search round only); 2 with a statistics round first, or a second search
    /// round because statistics changed; 3 with both.
    #[serde(default)]
    pub rounds: u32,
}

/// One refused seed URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    /// The URL as submitted.
    pub url: String,
    /// Why it was refused.
    pub reason: String,
}

/// The crawl scope of a submission (`scope` of `POST /api/crawl`): which links the crawl
/// of these seeds follows, on every peer that continues it. Empty lists restrict nothing; a
/// link is followed when it is at most `max_depth` links from its seed, is on the seed's own
/// site (`site`) or one of `hosts`, or starts with one of `prefixes` (when any of these three
/// is given), and matches none of the `deny` regular expressions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrawlScope {
    /// Follow links to each seed's own site.
    #[serde(default)]
    pub site: bool,
    /// Sites (`host[:port]`) whose links are followed.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// URL prefixes that are followed.
    #[serde(default)]
    pub prefixes: Vec<String>,
    /// Regular expressions of URLs that are not followed.
    #[serde(default)]
    pub deny: Vec<String>,
    /// Most links followed from a seed.
    #[serde(default)]
    pub max_depth: Option<u32>,
}

/// The 202 answer of `POST /api/crawl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CrawlResponse {
    /// How many URLs were accepted (queued here or handed to their owner).
    pub accepted: usize,
    /// The URLs that were refused, with reasons.
    pub rejected: Vec<Rejected>,
}

/// `GET /api/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct StatusResponse {
    /// This peer's libp2p id.
    pub peer_id: String,
    /// Crate version.
    pub version: String,
    /// The bound HTTP address.
    pub http_addr: String,
    /// The bound p2p addresses, each ending in `/p2p/<peer_id>`.
    pub listen_addrs: Vec<String>,
    /// Connected peers.
    pub peers_connected: usize,
    /// Peers in the Kademlia routing table.
    pub routing_table_size: usize,
    /// Committed documents a search can find now.
    pub docs_indexed: u64,
    /// URLs waiting to be fetched.
    pub frontier_size: u64,
    /// URLs being fetched or fetched but not yet committed.
    pub crawl_in_flight: u64,
    /// Pages fetched by this peer (any outcome but failure).
    pub pages_crawled: u64,
    /// Fetches that failed.
    pub pages_failed: u64,
    /// Revisits of crawled pages whose time has come and that wait for their host.
    #[serde(default)]
    pub revisits_due: u64,
    /// Revisits made since start, and what they found: a changed document, nothing new (a
    /// 304 or the same content), or a page that went away (its document removed).
    #[serde(default)]
    pub pages_revisited: u64,
    /// Revisits that found a changed document.
    #[serde(default)]
    pub pages_changed: u64,
    /// Revisits that found nothing new.
    #[serde(default)]
    pub pages_unchanged: u64,
    /// Revisits that removed a document.
    #[serde(default)]
    pub pages_removed: u64,
    /// Index commits since start: a batch that changes no document (pages without one,
    /// revisits that found nothing new) makes none.
    #[serde(default)]
    pub index_commits: u64,
    /// The peer process's resident memory in bytes (0 where the system does not tell).
    #[serde(default)]
    pub rss_bytes: u64,
    /// Seconds since start.
    pub uptime_s: u64,
}

/// One entry of `GET /api/peers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// The remote peer id.
    pub peer_id: String,
    /// Its known addresses.
    pub addrs: Vec<String>,
    /// Last measured round-trip time, if any.
    pub rtt_ms: Option<f64>,
}

/// One point of the activity history (one per minute is plenty).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct HistoryPoint {
    /// Unix seconds.
    pub at_unix: u64,
    /// Cumulative pages crawled at that time.
    pub pages_crawled: u64,
    /// Documents indexed at that time.
    pub docs_indexed: u64,
    /// Cumulative revisits at that time.
    #[serde(default)]
    pub pages_revisited: u64,
    /// Cumulative revisits that found a change.
    #[serde(default)]
    pub pages_changed: u64,
    /// Cumulative revisits that found nothing new.
    #[serde(default)]
    pub pages_unchanged: u64,
    /// Cumulative revisits that removed a document.
    #[serde(default)]
    pub pages_removed: u64,
}

/// A recent crawl failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrawlErrorEntry {
    /// Unix seconds.
    pub at_unix: u64,
    /// The URL that failed.
    pub url: String,
    /// Why (short, lowercase).
    pub reason: String,
}

/// What the peer page shows beyond [`StatusResponse`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Activity {
    /// Samples over the last hour, oldest first.
    pub history: Vec<HistoryPoint>,
    /// Most recent crawl errors, newest first (bounded).
    pub recent_errors: Vec<CrawlErrorEntry>,
}

/// Counters the node exposes for `/metrics` (the web layer adds its own HTTP metrics).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct MetricsSnapshot {
    /// Crawl results by outcome (`indexed`, `not_html`, `robots_denied`, `noindex`,
    /// `duplicate`, `http_error`, `fetch_error`, ...).
    pub crawl_outcomes: BTreeMap<String, u64>,
    /// Committed documents.
    pub docs_indexed: u64,
    /// Bytes on disk of the index.
    pub index_bytes: u64,
    /// URLs waiting.
    pub frontier_size: u64,
    /// Revisits due.
    #[serde(default)]
    pub revisits_due: u64,
    /// Revisits by what they found (`changed`, `unchanged`, `removed`; `all` counts every
    /// revisit, failures included).
    #[serde(default)]
    pub revisits: BTreeMap<String, u64>,
    /// The peer process's resident memory in bytes (0 where the system does not tell).
    #[serde(default)]
    pub rss_bytes: u64,
    /// Network queries this peer answered as root, by the rounds of requests they took
    /// (`"0"` to `"3"`, as `rounds` in the search answer).
    #[serde(default)]
    pub query_rounds: BTreeMap<String, u64>,
    /// Connected peers.
    pub peers_connected: usize,
    /// Bytes sent per protocol name.
    pub bytes_sent: BTreeMap<String, u64>,
    /// Bytes received per protocol name.
    pub bytes_received: BTreeMap<String, u64>,
}

/// A validated document look-up (`GET /api/doc`, the cached-text page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocParams {
    /// The URL asked for: absolute http(s), at most [`MAX_DOC_URL_BYTES`].
    pub url: String,
    /// `network` asks the site's owners, `local` only looks at this peer's shard.
    pub scope: Scope,
    /// One deadline for every peer asked, 50..=10000.
    pub timeout_ms: u64,
}

/// Longest URL `GET /api/doc` accepts, in bytes: the crawler's cap on the URLs it indexes
/// (`peersearch_crawler::MAX_URL_BYTES`, the de-facto limit of browsers and servers).
pub const MAX_DOC_URL_BYTES: usize = 2048;
/// Longest main text an answer carries, in bytes: the crawler's own cap on extracted text
/// (1 MiB), so a document is cut only when a peer sent more than an honest crawler keeps.
pub const MAX_DOC_TEXT_BYTES: usize = 1024 * 1024;
/// Longest anchor text (all of it, newline-separated) or headings an answer carries.
pub const MAX_DOC_LIST_BYTES: usize = 64 * 1024;
/// Longest title, description, site, language or content hash an answer carries.
pub const MAX_DOC_FIELD_BYTES: usize = 4096;
/// Most holders an answer lists.
pub const MAX_DOC_HOLDERS: usize = 32;

/// The 200 answer of `GET /api/doc`: what the network holds for one URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DocResponse {
    /// The document's (normalized) URL.
    pub url: String,
    /// Its site, `host[:port]`.
    pub site: String,
    /// The page's title (plain text, not escaped).
    pub title: String,
    /// `<meta name="description">`.
    pub description: String,
    /// The main text, as indexed (the document's body; navigation and other chrome left out).
    pub text: String,
    /// The page's headings, newline-separated.
    pub headings: String,
    /// The aggregated anchor texts of links to the page, newline-separated.
    pub anchor_text: String,
    /// How many distinct sites link to the page.
    pub inlink_sites: u32,
    /// How many distinct pages link to the page.
    pub inlink_pages: u32,
    /// `<html lang>` (may be empty).
    pub lang: String,
    /// When the copy shown was fetched, unix seconds.
    pub fetched_at: i64,
    /// Hex SHA-256 of the extracted text of the copy shown.
    pub content_hash: String,
    /// The peer ids of every peer that answered with a copy, the site's primary first.
    pub holders: Vec<String>,
    /// The peer whose copy is shown.
    pub peer: String,
    /// Look-up accounting: peers asked (this peer included), answered, failed.
    pub peers: PeerCounts,
    /// True when some peer asked did not answer by the deadline.
    pub partial: bool,
    /// True when a field was cut to its cap ([`MAX_DOC_TEXT_BYTES`] and co.).
    pub truncated: bool,
    /// Wall time spent answering.
    pub took_ms: u64,
}

/// `s` cut to at most `max` bytes at a character boundary; true when it was cut.
fn cap_bytes(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    true
}

impl DocResponse {
    /// Cut every field to its cap, and mark the answer `truncated` when one was cut. The
    /// node applies it to what peers sent, the web layer again to what the backend gave.
    pub fn capped(mut self) -> DocResponse {
        let mut cut = cap_bytes(&mut self.text, MAX_DOC_TEXT_BYTES);
        for list in [&mut self.anchor_text, &mut self.headings] {
            cut |= cap_bytes(list, MAX_DOC_LIST_BYTES);
        }
        for field in [
            &mut self.url,
            &mut self.site,
            &mut self.title,
            &mut self.description,
            &mut self.lang,
            &mut self.content_hash,
            &mut self.peer,
        ] {
            cut |= cap_bytes(field, MAX_DOC_FIELD_BYTES);
        }
        if self.holders.len() > MAX_DOC_HOLDERS {
            self.holders.truncate(MAX_DOC_HOLDERS);
            cut = true;
        }
        for h in &mut self.holders {
            cut |= cap_bytes(h, MAX_DOC_FIELD_BYTES);
        }
        self.truncated |= cut;
        self
    }
}

/// A backend failure the web layer maps to a 5xx (or 4xx for `BadQuery`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The query could not be used (the message is safe to show).
    #[error("bad query: {0}")]
    BadQuery(String),
    /// The crawl scope of a submission could not be used (the message is safe to show).
    #[error("bad crawl scope: {0}")]
    BadScope(String),
    /// The peer is shutting down or a component is gone.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Anything else; details are logged, not shown.
    #[error("internal error: {0}")]
    Internal(String),
}

/// What the web layer needs from the peer. Implemented by the node.
pub trait Backend: Send + Sync + 'static {
    /// Run a search (network or local per `params.scope`).
    fn search(
        &self,
        params: SearchParams,
    ) -> impl Future<Output = Result<SearchResponse, BackendError>> + Send;
    /// Submit seed URLs to the crawl, in `scope` (`None`: the peer's default scope). A scope
    /// that cannot be used is [`BackendError::BadScope`].
    fn submit_urls(
        &self,
        urls: Vec<String>,
        scope: Option<CrawlScope>,
    ) -> impl Future<Output = Result<CrawlResponse, BackendError>> + Send;
    /// The status snapshot.
    fn status(&self) -> impl Future<Output = StatusResponse> + Send;
    /// Connected peers.
    fn peers(&self) -> impl Future<Output = Vec<PeerInfo>> + Send;
    /// History and recent errors for the peer page.
    fn activity(&self) -> impl Future<Output = Activity> + Send;
    /// Counters for `/metrics`.
    fn metrics(&self) -> impl Future<Output = MetricsSnapshot> + Send;
    /// What the network (or, with `scope=local`, this peer) holds for one URL; `None` when
    /// no peer asked holds it.
    fn document(
        &self,
        params: DocParams,
    ) -> impl Future<Output = Result<Option<DocResponse>, BackendError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_cuts_fields_at_char_boundaries_and_marks_truncation() {
        let doc = DocResponse {
            text: "é".repeat(MAX_DOC_TEXT_BYTES),
            title: "t".into(),
            ..DocResponse::default()
        }
        .capped();
        assert!(doc.truncated);
        assert!(doc.text.len() <= MAX_DOC_TEXT_BYTES);
        assert!(doc.text.len() > MAX_DOC_TEXT_BYTES - 2);
        let small = DocResponse {
            text: "short".into(),
            ..DocResponse::default()
        }
        .capped();
        assert!(!small.truncated);
        assert_eq!(small.text, "short");
    }
}
