//! What crosses the wire: one request/response pair per protocol, CBOR-encoded, each message
//! framed by a 4-byte big-endian length and checked against the protocol's size cap.
//!
//! Every response travels as [`Reply<T>`] (`Result<T, String>`): a peer that cannot serve a
//! request (its shard failed, its disk is full) says so instead of going silent.

use libp2p::StreamProtocol;
use peersearch_crawler::SiteState;
use peersearch_indexer::{Document, Hit, TermStats};
use serde::{Deserialize, Serialize};

pub use super::codec::{ByteCounter, Codec, Traffic, WireError, decode_payload, encode_frame};

/// Protocol of leaf searches.
pub const SEARCH_PROTOCOL: StreamProtocol = StreamProtocol::new("/peersearch/search/1.0.0");
/// Protocol of term statistics (the global BM25 statistics gathered by the root).
pub const STATS_PROTOCOL: StreamProtocol = StreamProtocol::new("/peersearch/stats/1.0.0");
/// Protocol of URL hand-offs to the owner of a site.
pub const HANDOFF_PROTOCOL: StreamProtocol = StreamProtocol::new("/peersearch/handoff/1.0.0");
/// Protocol of document replication to the other owners of a site.
pub const REPLICATE_PROTOCOL: StreamProtocol = StreamProtocol::new("/peersearch/replicate/1.0.0");
/// Protocol of replica digests (which documents of a site a peer holds).
pub const DIGEST_PROTOCOL: StreamProtocol = StreamProtocol::new("/peersearch/digest/1.0.0");
/// Protocol of site claims (the closest owner asks the others to yield a site's crawl).
pub const CLAIM_PROTOCOL: StreamProtocol = StreamProtocol::new("/peersearch/claim/1.0.0");
/// Protocol of document look-ups (what a peer holds for one URL: the cached text).
pub const DOC_PROTOCOL: StreamProtocol = StreamProtocol::new("/peersearch/doc/1.0.0");

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// Size caps of one protocol, in bytes of CBOR payload (the 4-byte length prefix excluded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request accepted.
    pub request: u64,
    /// Largest response accepted.
    pub response: u64,
}

/// A query string is a few hundred bytes; the statistics sent along cover only its terms.
pub const SEARCH_LIMITS: Limits = Limits {
    request: 64 * KIB,
    // Up to a few hundred hits of title + snippet (a snippet is ~200-400 bytes).
    response: 4 * MIB,
};
/// Term statistics: per-term document frequencies of one query, both ways.
pub const STATS_LIMITS: Limits = Limits {
    request: 256 * KIB,
    response: 256 * KIB,
};
/// A hand-off batch: thousands of URLs (a URL is capped at a few KiB by the crawler).
pub const HANDOFF_LIMITS: Limits = Limits {
    request: 4 * MIB,
    response: 64 * KIB,
};
/// A replication batch: tens of documents (bodies are capped by the extractor) plus the
/// site's crawl state.
pub const REPLICATE_LIMITS: Limits = Limits {
    request: 16 * MIB,
    // An acknowledgement.
    response: 64 * KIB,
};
/// A claim names one site; its answer carries the site's whole crawl state (queued and done
/// URLs, a few KiB of URL each, capped per site by the crawler).
pub const CLAIM_LIMITS: Limits = Limits {
    request: 64 * KIB,
    response: 16 * MIB,
};
/// A digest may list every URL of a site with its fetch time.
pub const DIGEST_LIMITS: Limits = Limits {
    request: 64 * KIB,
    response: 16 * MIB,
};

/// A document look-up names one URL (the crawler caps URLs at 2 KiB); the answer is one
/// document: main text and chrome are each capped at 1 MiB by the extractor, the rest is small.
pub const DOC_LIMITS: Limits = Limits {
    request: 16 * KIB,
    response: 4 * MIB,
};

/// A response as it travels: the value, or the responder's error message.
pub type Reply<T> = Result<T, String>;

/// A leaf search request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchRequest {
    /// The user's query string.
    pub query: String,
    /// Most hits wanted (the root asks for `offset + limit`). A response with more hits is
    /// a protocol violation.
    pub top_k: u32,
    /// Network-wide statistics to score with; `None` scores with the leaf's own.
    pub stats: Option<TermStats>,
    /// Send each hit's score evidence ([`peersearch_indexer::Evidence`]), so that the root
    /// can recompute every score with the statistics it sent.
    #[serde(default)]
    pub evidence: bool,
    /// Send the leaf's share of the query's statistics with the answer (what a statistics
    /// request would get), so that the root can tell whether the statistics it searched
    /// with are still the network's without a statistics round of its own.
    #[serde(default)]
    pub share: bool,
}

/// A leaf's answer to a [`SearchRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SearchResponse {
    /// Best first, at most `top_k`.
    pub hits: Vec<Hit>,
    /// How many documents of the leaf's shard matched.
    pub total_matches: u64,
    /// The leaf's share of the query's statistics, when the request asked for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<TermStats>,
}

/// Ask a peer for the statistics of the terms of a query on its shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsRequest {
    /// The user's query string.
    pub query: String,
}

/// A URL to crawl and how it was found: the one link type of the node, used by hand-offs,
/// replicated crawl progress and parked links alike.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Link {
    /// Absolute URL.
    pub url: String,
    /// Crawl depth at which it was found.
    pub depth: u32,
    /// Anchor text of the link that pointed at it, if any.
    pub anchor: Option<String>,
    /// The page the link was found on (its anchor text then counts for the target, see
    /// `anchors`); `None` for seeds and for links from older peers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The crawl scope the link was found in: the owner follows the target's links only
    /// inside it (`peersearch_crawler::Scope`). `None`: every link is followed (and links of
    /// older peers). A scope over its bounds makes the link unusable, never unscoped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<peersearch_crawler::Scope>,
}

/// A batch of URLs for sites the receiver owns (or should forward to the owner).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffRequest {
    /// The URLs.
    pub urls: Vec<Link>,
    /// How many times this batch was already forwarded (bounded by the node).
    pub hops: u8,
}

/// Acknowledgement of a hand-off, sent only after the receiver persisted the URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffResponse {
    /// How many URLs were accepted (persisted or forwarded).
    pub accepted: u32,
}

/// Documents (and deletions) of one site, sent by its primary to the other owners.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicateRequest {
    /// The site authority the batch belongs to (`host[:port]`).
    #[serde(default)]
    pub site: String,
    /// Documents to upsert.
    pub docs: Vec<Document>,
    /// The crawl state of the site, so a replica can resume the crawl if it becomes the
    /// primary.
    pub site_state: Option<SiteState>,
    /// URLs whose documents must be removed.
    pub deletes: Vec<String>,
    /// URLs the primary crawled and committed in this batch (with or without a document:
    /// redirects, errors and `noindex` pages count too), so a replica that takes the crawl
    /// over never fetches them again.
    #[serde(default)]
    pub crawled: Vec<String>,
    /// Links to pages of the same site found by the pages of this batch: a replica keeps
    /// them, so a primary killed between two crawl-state shares loses no part of the site.
    #[serde(default)]
    pub links: Vec<Link>,
    /// The anchor records of this message's documents (`crate::anchors`), so that every
    /// owner holds the votes, not only the primary that counted them.
    #[serde(default)]
    pub anchors: Vec<(String, crate::anchors::AnchorRecord)>,
    /// Documents removed by a revisit (the page went away or moved), with the time of the
    /// removal: the newest word on a URL wins, so that no stale copy brings it back
    /// (`crate::tombstones`). Applied when the primary sends them; sent by another owner during
    /// repair, they make the primary look at the page again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tombstones: Vec<(String, i64)>,
}

/// Acknowledgement of a replication batch, sent after the documents were stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicateResponse {
    /// How many documents were stored.
    pub stored: u32,
}

/// The sender is the closest live owner of `site` and is about to crawl it: the receiver
/// stops crawling the site if it does (after its fetches in flight are committed) and answers
/// with everything it knows of the site's crawl. A receiver closer to the site refuses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimRequest {
    /// The site authority.
    pub site: String,
}

/// The answer to a claim: the site's crawl state as the receiver knew it (its own queue and
/// done URLs, plus what it parked as a replica).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimResponse {
    /// The crawl state.
    pub state: SiteState,
}

/// Longest URL or title a search hit may carry (the crawler caps URLs at 2 KiB).
pub const MAX_HIT_FIELD: usize = 4096;
/// Longest snippet a search hit may carry (the indexer's snippets are a few hundred bytes).
pub const MAX_HIT_SNIPPET: usize = 16 * 1024;

/// Check a leaf's search answer before trusting it: no more hits than asked, finite scores
/// (the root merges by score), sane sizes. The one check of leaf answers: the event loop
/// applies it to every search response, and a peer that breaks it misbehaved
/// ([`Error::Protocol`](super::Error::Protocol)).
pub fn validate_search_answer(resp: &SearchResponse, top_k: u32) -> super::Result<()> {
    let invalid = |why: String| Err(super::Error::Protocol(why));
    if resp.hits.len() as u64 > u64::from(top_k) {
        return invalid(format!("{} hits for top_k {top_k}", resp.hits.len()));
    }
    for h in &resp.hits {
        if !h.score.is_finite() {
            return invalid("non-finite score".into());
        }
        if h.url.len() > MAX_HIT_FIELD
            || h.title.len() > MAX_HIT_FIELD
            || h.snippet.len() > MAX_HIT_SNIPPET
        {
            return invalid("oversized hit".into());
        }
        if h.evidence.as_ref().is_some_and(|e| {
            e.terms.len() + e.proximity.len() > peersearch_indexer::MAX_EVIDENCE_ENTRIES
                || e.terms.iter().any(|t| t.field.len() > MAX_HIT_FIELD)
        }) {
            return invalid("oversized score evidence".into());
        }
    }
    Ok(())
}

/// Ask a peer what it holds of one site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestRequest {
    /// The site authority.
    pub site: String,
    /// Whether to list every URL with its fetch time (expensive; only when hashes differ).
    #[serde(default)]
    pub list_urls: bool,
}

/// What a peer holds of one site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DigestResponse {
    /// Number of documents of the site.
    pub count: u64,
    /// Hash over the site's `(url, fetched_at)` pairs (its definition belongs to the node).
    pub hash: String,
    /// `(url, fetched_at)` pairs when asked for.
    pub urls: Option<Vec<(String, i64)>>,
}

/// Ask a peer for its copy of the document of one URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocRequest {
    /// The normalized URL.
    pub url: String,
}

/// A peer's answer to a [`DocRequest`]: its copy, or `None` when it holds none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DocResponse {
    /// The document.
    pub doc: Option<Document>,
}

/// Longest main text or chrome a document may carry: the extractor's cap (1 MiB) plus room
/// for the last character it cut at.
pub const MAX_DOC_TEXT: usize = 1024 * 1024 + 4;
/// Longest anchor text or headings a document may carry (anchor records keep a capped set of
/// texts of at most 120 characters; the extractor keeps at most 128 headings).
pub const MAX_DOC_LIST: usize = 256 * 1024;
/// Longest title, description, site, language or hash a document may carry (titles are
/// capped at 512 characters and descriptions at 1024 by the extractor).
pub const MAX_DOC_FIELD: usize = 16 * 1024;

/// Check a peer's document answer before trusting it: every field within its cap. (That the
/// document is the one asked for is checked by [`Client::doc`](super::Client::doc), which
/// knows the URL.) A peer that breaks it misbehaved.
pub fn validate_doc_answer(resp: &DocResponse, _: u32) -> super::Result<()> {
    let Some(d) = &resp.doc else {
        return Ok(());
    };
    let small = [&d.title, &d.description, &d.site, &d.lang, &d.content_hash];
    if d.url.len() > MAX_HIT_FIELD
        || small.iter().any(|f| f.len() > MAX_DOC_FIELD)
        || d.body.len() > MAX_DOC_TEXT
        || d.chrome.len() > MAX_DOC_TEXT
        || d.anchor_text.len() > MAX_DOC_LIST
        || d.headings.len() > MAX_DOC_LIST
    {
        return Err(super::Error::Protocol("oversized document".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(i: usize) -> Hit {
        Hit {
            url: format!("http://example.com/{i}"),
            title: "t".into(),
            snippet: "s".into(),
            score: 1.0,
            evidence: None,
        }
    }

    #[test]
    fn protocols_are_versioned_peersearch_names() {
        for p in [
            SEARCH_PROTOCOL,
            STATS_PROTOCOL,
            HANDOFF_PROTOCOL,
            REPLICATE_PROTOCOL,
            DIGEST_PROTOCOL,
            CLAIM_PROTOCOL,
            DOC_PROTOCOL,
        ] {
            assert!(p.as_ref().starts_with("/peersearch/"));
            assert!(p.as_ref().ends_with("/1.0.0"));
        }
    }

    #[test]
    fn search_answers_over_top_k_or_with_bad_scores_or_sizes_are_invalid() {
        let ok = |hits: Vec<Hit>, k| {
            validate_search_answer(
                &SearchResponse {
                    hits,
                    total_matches: 0,
                    share: None,
                },
                k,
            )
        };
        assert!(ok((0..11).map(hit).collect(), 10).is_err());
        assert!(ok((0..10).map(hit).collect(), 10).is_ok());
        let mut nan = hit(1);
        nan.score = f32::NAN;
        assert!(ok(vec![nan], 10).is_err());
        let mut big = hit(1);
        big.snippet = "x".repeat(MAX_HIT_SNIPPET + 1);
        assert!(ok(vec![big], 10).is_err());
    }

    #[tokio::test]
    async fn claim_answers_carry_a_typed_crawl_state() {
        let state = SiteState {
            site: "a.example".into(),
            queued: vec![peersearch_crawler::QueuedUrl {
                url: peersearch_crawler::normalize("http://a.example/x", None).unwrap(),
                depth: 2,
                anchors: vec!["x".into()],
                scope: None,
            }],
            done: Vec::new(),
        };
        let resp: Reply<ClaimResponse> = Ok(ClaimResponse { state });
        let frame = encode_frame(resp.clone(), CLAIM_LIMITS.response)
            .await
            .unwrap();
        let back: Reply<ClaimResponse> = decode_payload(&frame[4..]).await.unwrap();
        assert_eq!(back, resp);
    }

    #[test]
    fn doc_answers_with_oversized_fields_are_invalid() {
        let doc = Document {
            url: "http://a.example/".into(),
            body: "x".repeat(MAX_DOC_TEXT),
            ..Document::default()
        };
        let ok = |doc: Document| validate_doc_answer(&DocResponse { doc: Some(doc) }, 0);
        assert!(ok(doc.clone()).is_ok());
        assert!(validate_doc_answer(&DocResponse { doc: None }, 0).is_ok());
        let mut big = doc.clone();
        big.body.push('x');
        assert!(ok(big).is_err());
        let mut big = doc.clone();
        big.title = "t".repeat(MAX_DOC_FIELD + 1);
        assert!(ok(big).is_err());
        let mut big = doc;
        big.anchor_text = "a".repeat(MAX_DOC_LIST + 1);
        assert!(ok(big).is_err());
    }
}
