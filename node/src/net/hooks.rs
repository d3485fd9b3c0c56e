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

use super::wire;
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
}

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
            Misbehave::ForgeDoc => return None,
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
