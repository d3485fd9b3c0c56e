//! Helpers shared by the unit tests: pages, shards, a deterministic corpus.

use crate::error::Result;
use crate::shard::Shard;
use crate::types::{Document, SearchResults};

/// A page of the site its URL names.
pub(crate) fn page(url: &str, title: &str, body: &str) -> Document {
    let site = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default()
        .to_string();
    Document {
        url: url.to_string(),
        site,
        title: title.to_string(),
        body: body.to_string(),
        fetched_at: 1_700_000_000,
        ..Document::default()
    }
}

/// An in-RAM shard holding `docs`, committed.
pub(crate) fn shard_with(docs: &[Document]) -> Result<Shard> {
    let shard = Shard::open_in_ram()?;
    for doc in docs {
        shard.upsert(doc)?;
    }
    shard.commit()?;
    Ok(shard)
}

/// The URLs of `results`, best first.
pub(crate) fn urls(results: &SearchResults) -> Vec<&str> {
    results.hits.iter().map(|h| h.url.as_str()).collect()
}

/// Queries over [`corpus`]: words, phrases, `+`, `-` and `site:` operators.
pub(crate) const QUERIES: [&str; 10] = [
    "alpha",
    "alpha beta",
    "rust search engine",
    "+gamma delta",
    "\"alpha beta\" omega",
    "peer index shard query score",
    "eta theta -site:site0.example",
    "lambda omega site:site2.example",
    "+kappa -\"alpha beta\"",
    "zeta eta theta iota kappa lambda omega rust",
];

const VOCABULARY: [&str; 24] = [
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
    "lambda", "omega", "rust", "search", "engine", "peer", "index", "shard", "query", "score",
    "network", "crawl", "page", "link",
];

/// A deterministic pseudo-random corpus (no RNG dependency: a 64-bit LCG).
pub(crate) fn corpus(range: std::ops::Range<u64>) -> Vec<Document> {
    range
        .map(|i| {
            let mut state = i.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let mut next = |n: u64| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (state >> 33) % n
            };
            let mut words = |min: u64, span: u64| {
                let n = min + next(span);
                // Skewed choice: low words are common, high ones rare.
                (0..n)
                    .map(|_| {
                        let a = next(VOCABULARY.len() as u64);
                        let b = next(VOCABULARY.len() as u64);
                        VOCABULARY[a.min(b) as usize]
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let title = words(1, 5);
            let body = words(5, 80);
            let headings = words(0, 6);
            let description = words(0, 12);
            let anchor_text = words(0, 4);
            let chrome = words(0, 10);
            let site = format!("site{}.example", i % 7);
            Document {
                url: format!("http://{site}/page/{i}"),
                site,
                title,
                description,
                body,
                headings,
                anchor_text,
                lang: "en".into(),
                fetched_at: 1_700_000_000 + i as i64,
                content_hash: format!("{i:064x}"),
                chrome,
                inlink_sites: (i % 5) as u32,
                inlink_pages: (i % 11) as u32,
            }
        })
        .collect()
}
