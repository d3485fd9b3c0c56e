//! Test hooks (cargo feature `test-hooks`, compiled only into the binary this package's own
//! tests run): misbehaviour that the hostile-peer and slow-peer tests need, read from the
//! environment once.
//!
//! - `PEERSEARCH_TEST_STALL_SEARCH_MS=N`: the leaf answers every search N ms late.
//! - `PEERSEARCH_TEST_MISBEHAVE=flood`: the leaf answers with 10 000 fake hits, far more than
//!   asked (the root's check of leaf answers refuses them).
//! - `PEERSEARCH_TEST_MISBEHAVE=oversized`: the same, with 1 KiB snippets, and this peer's
//!   codec lifts its own response cap, so a frame of about 10 MiB really goes out over the
//!   search protocol's 4 MiB response cap (the root refuses it from its length prefix).
//! - `PEERSEARCH_TEST_MISBEHAVE=forge_doc`: the peer answers every document look-up with a
//!   forged document of another URL (the asker's check refuses it); searches stay honest.
//! - `PEERSEARCH_TEST_MISBEHAVE=poison_stats`: the peer answers every statistics request with
//!   its own statistics of the query poisoned ([`Hooks::poison_stats`]): `num_docs` and every
//!   document frequency [`POISON_COUNT`] (2^60, which would drive every term's IDF to zero),
//!   plus about 70 KiB of junk term keys (which would push the root's search request over
//!   its 64 KiB cap). The root's check of statistics shares refuses them
//!   (`crate::stats_check`); searches stay honest.
//! - `PEERSEARCH_TEST_MISBEHAVE=poison_results`: the peer's search answers are poisoned after
//!   the honest search ([`Hooks::poison_answer`]): every hit's score raised by 150 (its
//!   evidence kept, so that the score no longer follows from it), every title rewritten to
//!   `poisoned`, and one extra hit `http://spam.example/` with score 10^6 (evidence copied
//!   from the first hit).

use super::wire;
use peersearch_indexer::{TermStats, term_key};
use std::sync::OnceLock;
use std::time::Duration;

/// How a hostile test peer answers searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misbehave {
    /// Far more hits than asked.
    Flood,
    /// Far more hits than asked, in a frame over the protocol's response cap.
    Oversized,
    /// Document look-ups answered with a forged document of another URL.
    ForgeDoc,
    /// Statistics answered with huge counts and junk keys.
    PoisonStats,
    /// Search answers with raised scores, rewritten titles and a spam hit.
    PoisonResults,
}

/// The count a `poison_stats` peer claims: documents, and holders of every query term.
pub const POISON_COUNT: u64 = 1 << 60;

/// Junk term keys a `poison_stats` peer adds: about 24 bytes each in CBOR (a 15-byte key and
/// a 9-byte count), so about 70 KiB, over the search request's 64 KiB cap and under the
/// statistics response's 256 KiB one.
const POISON_JUNK_KEYS: usize = 3_000;

/// The hooks in effect.
#[derive(Debug, Clone, Copy, Default)]
pub struct Hooks {
    stall: Option<Duration>,
    misbehave: Option<Misbehave>,
}

impl Hooks {
    /// The hooks the environment asks for.
    pub fn from_env() -> Hooks {
        *HOOKS.get_or_init(|| Hooks {
            stall: std::env::var("PEERSEARCH_TEST_STALL_SEARCH_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .map(Duration::from_millis),
            misbehave: match std::env::var("PEERSEARCH_TEST_MISBEHAVE").as_deref() {
                Ok("flood") => Some(Misbehave::Flood),
                Ok("oversized") => Some(Misbehave::Oversized),
                Ok("forge_doc") => Some(Misbehave::ForgeDoc),
                Ok("poison_stats") => Some(Misbehave::PoisonStats),
                Ok("poison_results") => Some(Misbehave::PoisonResults),
                _ => None,
            },
        })
    }

    /// Before a leaf search: wait the stall, then the hostile answer if there is one (the
    /// honest search runs when this is `None`).
    pub async fn search_answer(&self) -> Option<wire::SearchResponse> {
        if let Some(stall) = self.stall {
            tokio::time::sleep(stall).await;
        }
        let big = match self.misbehave? {
            Misbehave::Flood => false,
            Misbehave::Oversized => true,
            Misbehave::ForgeDoc | Misbehave::PoisonStats | Misbehave::PoisonResults => {
                return None;
            }
        };
        let hits = (0..10_000)
            .map(|i| peersearch_indexer::Hit {
                url: format!("http://spam.example/{i}"),
                title: "spam".into(),
                snippet: if big { "x".repeat(1024) } else { "spam".into() },
                score: 1e9,
                evidence: None,
            })
            .collect();
        Some(wire::SearchResponse {
            hits,
            total_matches: 10_000,
        })
    }
}

impl Hooks {
    /// Whether this peer poisons its statistics answers (`poison_stats`).
    pub fn poisons_stats(&self) -> bool {
        self.misbehave == Some(Misbehave::PoisonStats)
    }

    /// With `poison_stats`, poison a statistics answer: `num_docs` and every document
    /// frequency [`POISON_COUNT`], plus [`POISON_JUNK_KEYS`] junk term keys; otherwise leave
    /// it alone.
    pub fn poison_stats(&self, stats: &mut TermStats) {
        if !self.poisons_stats() {
            return;
        }
        stats.num_docs = POISON_COUNT;
        stats
            .doc_freq
            .values_mut()
            .for_each(|df| *df = POISON_COUNT);
        for i in 0..POISON_JUNK_KEYS {
            let key = term_key("body", &format!("junk{i:06}"));
            stats.doc_freq.insert(key, POISON_COUNT);
        }
    }

    /// With `poison_results`, poison a leaf's honest search answer: every hit's score plus
    /// 150 (its evidence kept), every title `poisoned`, and one more hit
    /// `http://spam.example/` with score 10^6, title `spam` and the first hit's evidence (in
    /// place of the last hit, so that the answer holds no more hits than asked and passes the
    /// network layer's checks); otherwise leave it alone.
    pub fn poison_answer(&self, resp: &mut wire::SearchResponse) {
        if self.misbehave != Some(Misbehave::PoisonResults) {
            return;
        }
        for hit in &mut resp.hits {
            hit.score += 150.0;
            hit.title = "poisoned".into();
        }
        let evidence = resp.hits.first().and_then(|h| h.evidence.clone());
        if resp.hits.pop().is_none() {
            resp.total_matches = resp.total_matches.saturating_add(1);
        }
        resp.hits.push(peersearch_indexer::Hit {
            url: "http://spam.example/".into(),
            title: "spam".into(),
            snippet: "spam".into(),
            score: 1e6,
            evidence,
        });
    }

    /// The hostile answer to a document look-up, if this peer forges them.
    pub fn doc_answer(&self) -> Option<wire::DocResponse> {
        (self.misbehave? == Misbehave::ForgeDoc).then(|| wire::DocResponse {
            doc: Some(peersearch_indexer::Document {
                url: "http://forged.example/".into(),
                site: "forged.example".into(),
                title: "forged".into(),
                body: "forged text".into(),
                fetched_at: i64::MAX,
                ..Default::default()
            }),
        })
    }
}

static HOOKS: OnceLock<Hooks> = OnceLock::new();

/// Whether this peer's codec writes responses over the protocol's cap (the `oversized` hook).
pub fn answers_over_the_cap() -> bool {
    Hooks::from_env().misbehave == Some(Misbehave::Oversized)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hooks(misbehave: Misbehave) -> Hooks {
        Hooks {
            stall: None,
            misbehave: Some(misbehave),
        }
    }

    #[tokio::test]
    async fn poisoned_stats_are_huge_and_over_the_search_request_cap() {
        let honest = TermStats {
            num_docs: 3,
            field_tokens: [("body".to_string(), 30)].into(),
            doc_freq: [(term_key("body", "rust"), 1)].into(),
        };
        let mut stats = honest.clone();
        hooks(Misbehave::PoisonResults).poison_stats(&mut stats);
        assert_eq!(stats, honest, "only poison_stats poisons statistics");
        hooks(Misbehave::PoisonStats).poison_stats(&mut stats);
        assert_eq!(stats.num_docs, POISON_COUNT);
        assert_eq!(stats.doc_freq[&term_key("body", "rust")], POISON_COUNT);
        assert_eq!(stats.doc_freq.len(), 1 + POISON_JUNK_KEYS);
        let request = wire::SearchRequest {
            query: "rust".into(),
            top_k: 10,
            stats: Some(stats.clone()),
            evidence: true,
        };
        let request = wire::encode_frame(request, u64::MAX).await.unwrap();
        assert!(request.len() as u64 > wire::SEARCH_LIMITS.request);
        let reply = wire::encode_frame(stats, u64::MAX).await.unwrap();
        assert!((reply.len() as u64) < wire::STATS_LIMITS.response);
    }

    #[test]
    fn poisoned_answers_raise_scores_rewrite_titles_and_slip_in_spam() {
        let hit = |url: &str, score: f32| peersearch_indexer::Hit {
            url: url.into(),
            title: "honest".into(),
            snippet: "s".into(),
            score,
            evidence: None,
        };
        let honest = wire::SearchResponse {
            hits: vec![hit("http://a/", 2.0), hit("http://b/", 1.0)],
            total_matches: 2,
        };
        let mut resp = honest.clone();
        hooks(Misbehave::PoisonStats).poison_answer(&mut resp);
        assert_eq!(resp, honest, "only poison_results poisons answers");
        hooks(Misbehave::PoisonResults).poison_answer(&mut resp);
        let got: Vec<(&str, f32, &str)> = resp
            .hits
            .iter()
            .map(|h| (h.url.as_str(), h.score, h.title.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("http://a/", 152.0, "poisoned"),
                ("http://spam.example/", 1e6, "spam"),
            ],
            "no more hits than the honest answer had"
        );
        let mut empty = wire::SearchResponse::default();
        hooks(Misbehave::PoisonResults).poison_answer(&mut empty);
        assert_eq!(empty.hits.len(), 1);
        assert!(empty.hits[0].evidence.is_none());
    }
}
