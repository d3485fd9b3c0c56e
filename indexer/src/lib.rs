//! The peersearch index shard: one peer's slice of the web in a tantivy index.
//!
//! ```
//! use peersearch_indexer::{Document, Shard, TermStats};
//!
//! # fn main() -> peersearch_indexer::Result<()> {
//! let shard = Shard::open_in_ram()?;
//! shard.upsert(&Document {
//!     url: "http://example.com/".into(),
//!     site: "example.com".into(),
//!     title: "Example Domain".into(),
//!     body: "This domain is for use in illustrative examples.".into(),
//!     ..Document::default()
//! })?;
//! shard.commit()?;
//!
//! // Distributed search: gather every shard's statistics, merge, score with the sum.
//! let mut stats = TermStats::default();
//! stats.merge(&shard.term_stats("illustrative example")?);
//! let results = shard.search("illustrative example", 10, Some(&stats))?;
//! assert_eq!(results.hits[0].url, "http://example.com/");
//! assert!(results.hits[0].snippet.contains("<b>illustrative</b>"));
//! # Ok(())
//! # }
//! ```
//!
//! # Design choices
//!
//! - **One writer, staged writes, explicit commits.** A [`Shard`] owns one tantivy
//!   `IndexWriter` (one indexing thread, 50 MB heap) behind a mutex. [`Shard::upsert`] deletes
//!   by URL and adds; nothing is visible until [`Shard::commit`], which also reloads the reader
//!   (manual reload policy), so [`Shard::num_docs`] is exact right after a commit. The crawler
//!   marks a URL crawled only after the commit that holds it, so a `kill -9` loses at most one
//!   batch, which is crawled again. A failed commit (full disk) keeps the staged operations,
//!   rolls the writer back and replays them at the next commit.
//! - **Blocking API.** Every method blocks; async code calls it through `spawn_blocking`.
//! - **Our own query language** ([`parse_query`]): a forgiving single-pass parser that accepts
//!   every string, never panics and cannot hang, instead of tantivy's `QueryParser` (which
//!   hangs on `a:(^`, tantivy issue 3032, and exposes field syntax).
//! - **Ranking** (the `rank` module docs hold the formula). Coverage first: a document
//!   matching more of the query's distinct words and phrases (in any field) always ranks
//!   above one matching fewer — each matched clause adds [`COVERAGE_SCORE`], everything else
//!   together stays below [`RELEVANCE_CAP`] — so all-words pages come first and a query no
//!   page fully matches falls back to the pages matching most. Within a coverage level:
//!   BM25 per field with weights (title 2.5, anchor text 1.5, headings 1.2, description 1,
//!   body 1, URL words 0.8, page chrome 0.2), proximity of consecutive query words in the
//!   body and title (either order), and a small prior from in-link counts and URL depth.
//!   `+word` is required, `-word` excludes, `"phrase"` is exact. Every text field and query
//!   term goes through one English stemming analyzer (`running` finds `runs`).
//! - **Exact distributed scores.** [`Shard::term_stats`] reports document count, token counts
//!   and document frequencies over live documents only (never deleted ones a merge has not
//!   purged), and [`Shard::term_stats_for_sites`] only those of given sites, so that replicas
//!   each counting their own sites sum to the central numbers. Merged over every shard and
//!   passed to [`Shard::search`] (through tantivy's `Bm25StatisticsProvider`), they give each
//!   document exactly — to the last bit — the score it would get in one index holding every
//!   shard. This needs more than the right statistics: tantivy sums a boolean query's clauses
//!   in an order that depends on the segment's documents, and its sloppy phrase matching
//!   depends on which term is rarer in the segment, so the ranking query computes the whole
//!   score itself, in a fixed order, with its own proximity matching. Hits are ordered by
//!   score, then URL, inside the collector, so every shard cuts ties at `top_k` alike.
//! - **Schema migration.** A shard written with an older schema is rebuilt from its stored
//!   documents when opened, and swapped in so that a crash leaves the old or the new index.
//! - **`site:` filters** match a site and its subdomains: each document indexes every parent
//!   domain of its host. A query of only `site:` filters lists the site's pages in URL order.
//! - **Snippets** come from tantivy's snippet generator over the body (or description): the
//!   best passage of about 200 characters, HTML-escaped, with query terms in `<b>`…`</b>`.

mod error;
mod explain;
mod migrate;
mod query;
mod rank;
mod schema;
mod shard;
mod snippet;
mod stats;
#[cfg(test)]
mod test_support;
mod text;
mod types;

pub use error::{Error, Result};
pub use explain::{
    BM25_B, BM25_K1, Bm25Params, Coverage, Depth, Evidence, Explanation, MAX_EVIDENCE_ENTRIES,
    Prior, ProximityEvidence, ProximityPart, Relevance, TermEvidence, TermPart, WordStat, explain,
};
pub use query::{
    Clause, MAX_PHRASE_TERMS, MAX_QUERY_BYTES, MAX_QUERY_TERMS, MAX_SITE_FILTERS, Occurrence,
    ParsedQuery, SITE_LISTING_SCORE, parse_query,
};
pub use rank::{COVERAGE_SCORE, RELEVANCE_CAP};
pub use schema::en_stem_analyzer;
pub use shard::{MAX_SITE_PAGE, MAX_TOP_K, Shard};
pub use snippet::SNIPPET_MAX_CHARS;
pub use types::{Document, Hit, SearchResults, TermStats, term_key};
