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
//! - **Ranking.** BM25 across title, anchor text, headings, description, body and URL words,
//!   with field boosts (title 3, anchor 2, headings 1.5, description 1.2, body and URL 1);
//!   words are optional (OR) by default, `+word` is required, `-word` excludes. Every text field
//!   and query term goes through one English stemming analyzer (`running` finds `runs`).
//! - **Exact distributed scores.** [`Shard::term_stats`] reports document count, token counts
//!   and document frequencies; merged over every shard and passed to [`Shard::search`] (through
//!   tantivy's `Bm25StatisticsProvider`), they give each document exactly — to the last bit —
//!   the score it would get in one index holding every shard. This needs more than the right
//!   statistics: tantivy sums the scores of a boolean query's clauses in an order that depends
//!   on the segment's documents, and float addition is not associative, so queries are built as
//!   binary trees (never more than two scoring clauses per node). Hits are ordered by score,
//!   then URL, inside the collector, so every shard cuts ties at `top_k` alike.
//! - **`site:` filters** match a site and its subdomains: each document indexes every parent
//!   domain of its host. A query of only `site:` filters lists the site's pages in URL order.
//! - **Snippets** come from tantivy's snippet generator over the body (or description): the
//!   best passage of about 200 characters, HTML-escaped, with query terms in `<b>`…`</b>`.

mod error;
mod query;
mod schema;
mod shard;
mod snippet;
mod stats;
mod text;
mod types;

pub use error::{Error, Result};
pub use query::{
    Clause, MAX_PHRASE_TERMS, MAX_QUERY_BYTES, MAX_QUERY_TERMS, MAX_SITE_FILTERS, Occurrence,
    ParsedQuery, SITE_LISTING_SCORE, parse_query,
};
pub use schema::en_stem_analyzer;
pub use shard::{MAX_SITE_PAGE, MAX_TOP_K, Shard};
pub use snippet::SNIPPET_MAX_CHARS;
pub use types::{Document, Hit, SearchResults, TermStats, term_key};
