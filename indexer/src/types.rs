//! Plain data types shared with the rest of peersearch (they cross the wire in CBOR).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One crawled page as the shard stores it. `url` is the unique key (upsert by URL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Document {
    /// Normalized URL; the document's identity.
    pub url: String,
    /// The site authority, `host[:port]` lowercased, default port elided.
    pub site: String,
    /// `<title>` text.
    pub title: String,
    /// `<meta name="description">`.
    pub description: String,
    /// Visible text (no script/style), whitespace folded.
    pub body: String,
    /// Text of `h1`..`h6`, joined by newlines.
    pub headings: String,
    /// Anchor texts of links pointing at this page, joined by newlines.
    pub anchor_text: String,
    /// `<html lang>` (may be empty).
    pub lang: String,
    /// Unix seconds when fetched.
    pub fetched_at: i64,
    /// Hex SHA-256 of the extracted text (title + body); used for duplicate detection.
    pub content_hash: String,
    /// Page boilerplate: navigation, header, footer, sidebars (the `body` is the main
    /// content). Indexed with a low weight, stored. Absent from older peers' messages.
    #[serde(default)]
    pub chrome: String,
    /// How many distinct sites link to this page (a ranking prior). Absent from older peers'
    /// messages.
    #[serde(default)]
    pub inlink_sites: u32,
    /// How many distinct pages link to this page (a ranking prior). Absent from older peers'
    /// messages.
    #[serde(default)]
    pub inlink_pages: u32,
}

/// Corpus statistics for the terms of one query: what BM25 needs to score comparably
/// across shards. Merging the stats of every shard gives the statistics of one central index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TermStats {
    /// Number of documents.
    pub num_docs: u64,
    /// Total number of tokens per indexed text field (by field name).
    pub field_tokens: BTreeMap<String, u64>,
    /// Document frequency per term, keyed by [`term_key`] (`field` + `\u{0}` + term text).
    pub doc_freq: BTreeMap<String, u64>,
}

impl TermStats {
    /// Add the statistics of another shard into these. The sums saturate at `u64::MAX`: a
    /// share can come from a peer that lies, and a sum that wrapped (or panicked, in a debug
    /// build) would hand that peer the query.
    pub fn merge(&mut self, other: &TermStats) {
        self.num_docs = self.num_docs.saturating_add(other.num_docs);
        for (k, v) in &other.field_tokens {
            let sum = self.field_tokens.entry(k.clone()).or_default();
            *sum = sum.saturating_add(*v);
        }
        for (k, v) in &other.doc_freq {
            let sum = self.doc_freq.entry(k.clone()).or_default();
            *sum = sum.saturating_add(*v);
        }
    }
}

/// The key of a term in [`TermStats::doc_freq`].
pub fn term_key(field: &str, text: &str) -> String {
    format!("{field}\u{0}{text}")
}

/// One search hit from a shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    /// The page's URL.
    pub url: String,
    /// Its title (plain text).
    pub title: String,
    /// HTML-escaped snippet where only `<b>`/`</b>` mark query terms.
    pub snippet: String,
    /// BM25 score (with the statistics handed in, if any).
    pub score: f32,
    /// What the score is made of, when asked for ([`Shard::search_with`](crate::Shard::search_with)):
    /// with the statistics, [`crate::explain()`] recomputes the score from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<crate::Evidence>,
}

/// The result of one shard search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SearchResults {
    /// Best first; ties broken by URL ascending so that every shard orders alike.
    pub hits: Vec<Hit>,
    /// How many documents of this shard matched.
    pub total_matches: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_from_an_older_peer_decodes_with_defaults() {
        // What a peer of the first release sends: no chrome, no in-link counts.
        let old = serde_json::json!({
            "url": "http://a.example/", "site": "a.example", "title": "t",
            "description": "", "body": "b", "headings": "", "anchor_text": "",
            "lang": "en", "fetched_at": 1, "content_hash": "ff"
        });
        let doc: Document = serde_json::from_value(old).expect("decodes");
        assert_eq!(doc.chrome, "");
        assert_eq!((doc.inlink_sites, doc.inlink_pages), (0, 0));
        assert_eq!(doc.body, "b");
    }

    #[test]
    fn merging_saturates_instead_of_wrapping() {
        let key = term_key("body", "rust");
        let share = |n: u64| TermStats {
            num_docs: n,
            field_tokens: BTreeMap::from([("body".to_string(), n)]),
            doc_freq: BTreeMap::from([(key.clone(), n)]),
        };
        let mut merged = share(10);
        merged.merge(&share(u64::MAX - 3));
        merged.merge(&share(u64::MAX));
        assert_eq!(merged, share(u64::MAX));
        // Keys only one side has are added as they are.
        let mut merged = share(2);
        merged.merge(&TermStats {
            num_docs: 1,
            field_tokens: BTreeMap::from([("title".to_string(), 5)]),
            doc_freq: BTreeMap::new(),
        });
        assert_eq!(merged.num_docs, 3);
        assert_eq!(merged.field_tokens["body"], 2);
        assert_eq!(merged.field_tokens["title"], 5);
        assert_eq!(merged.doc_freq[&key], 2);
    }
}
