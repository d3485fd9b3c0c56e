//! Root search: gather network-wide BM25 statistics, fan the query out to every live peer's
//! leaf search, merge by score with one hit per URL, and answer by the deadline with whatever
//! arrived (`partial` names the peers that did not answer).
//!
//! Two phases as in Quickwit/Stract: a statistics round (`/peersearch/stats/1.0.0`, cached per
//! query for [`STATS_TTL`]) and a search round (`/peersearch/search/1.0.0`) that carries the
//! merged statistics, so every leaf scores as one central index would.

use crate::net::{self, wire};
use libp2p::PeerId;
use peersearch_indexer::{Hit, TermStats};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// How long merged statistics of a query are reused. Statistics move slowly (a few documents
/// per second against thousands), and reusing them halves the messages of repeated queries.
pub const STATS_TTL: Duration = Duration::from_secs(30);

/// At most this many peers are asked per query (DESIGN.md: "all known peers up to a fan-out
/// cap"); beyond it the network needs query routing.
pub const MAX_FANOUT: usize = 64;

/// Share of the deadline the statistics round may use; the rest is for the search round.
const STATS_SHARE: f64 = 0.4;

/// One peer's answer to the leaf search.
#[derive(Debug, Clone)]
pub struct LeafAnswer {
    /// Who answered.
    pub peer: String,
    /// Its hits.
    pub hits: Vec<Hit>,
    /// Its match count.
    pub total_matches: u64,
}

/// A hit with the peer that returned it.
#[derive(Debug, Clone, PartialEq)]
pub struct MergedHit {
    /// The hit.
    pub hit: Hit,
    /// The answering peer.
    pub peer: String,
}

/// Check a leaf answer before trusting it: no more hits than asked, finite scores, sane sizes.
/// A peer that breaks these rules is treated as failed for this query.
pub fn validate_answer(hits: &[Hit], top_k: usize) -> Result<(), String> {
    if hits.len() > top_k {
        return Err(format!("{} hits for top {top_k}", hits.len()));
    }
    for h in hits {
        if !h.score.is_finite() {
            return Err("non-finite score".into());
        }
        if h.url.len() > 4096 || h.title.len() > 4096 || h.snippet.len() > 16 * 1024 {
            return Err("oversized hit".into());
        }
    }
    Ok(())
}

/// Merge leaf answers: order by score (highest first, ties by URL so every root agrees), keep
/// the best copy of each URL, then cut `offset..offset + limit`.
pub fn merge(answers: Vec<LeafAnswer>, offset: usize, limit: usize) -> Vec<MergedHit> {
    let mut all: Vec<MergedHit> = answers
        .into_iter()
        .flat_map(|a| {
            let peer = a.peer;
            a.hits.into_iter().map(move |hit| MergedHit {
                hit,
                peer: peer.clone(),
            })
        })
        .collect();
    all.sort_by(|a, b| {
        b.hit
            .score
            .total_cmp(&a.hit.score)
            .then_with(|| a.hit.url.cmp(&b.hit.url))
            .then_with(|| a.peer.cmp(&b.peer))
    });
    let mut seen = HashSet::new();
    all.retain(|m| seen.insert(m.hit.url.clone()));
    all.into_iter().skip(offset).take(limit).collect()
}

/// A small cache of merged statistics per query text.
#[derive(Debug, Default)]
pub struct StatsCache {
    entries: HashMap<String, (Instant, usize, TermStats)>,
}

impl StatsCache {
    /// Cached stats for `query` gathered from `peers` peers, if fresh.
    pub fn get(&self, query: &str, peers: usize) -> Option<TermStats> {
        let (at, n, stats) = self.entries.get(query)?;
        (at.elapsed() < STATS_TTL && *n == peers).then(|| stats.clone())
    }
    /// Remember stats (bounded: old entries are dropped first).
    pub fn put(&mut self, query: &str, peers: usize, stats: TermStats) {
        if self.entries.len() >= 1024 {
            self.entries
                .retain(|_, (at, _, _)| at.elapsed() < STATS_TTL);
            if self.entries.len() >= 1024 {
                self.entries.clear();
            }
        }
        self.entries
            .insert(query.to_string(), (Instant::now(), peers, stats));
    }
}

/// The outcome of a fan-out.
#[derive(Debug, Clone, Default)]
pub struct FanoutResult {
    /// Answers that arrived and passed validation (the local one included).
    pub answers: Vec<LeafAnswer>,
    /// Peers asked, the local one included.
    pub queried: usize,
    /// Peers that failed, timed out or sent invalid answers.
    pub failed: usize,
}

/// Gather statistics from `peers` (the local stats are given) within `deadline`.
/// Peers that do not answer in time are left out of the statistics; their absence only
/// shifts scores slightly, it never blocks the query.
pub async fn gather_stats(
    client: &net::Client,
    peers: &[PeerId],
    query: &str,
    local: TermStats,
    deadline: Duration,
) -> TermStats {
    let budget = deadline.mul_f64(STATS_SHARE);
    let calls = peers.iter().map(|p| {
        let client = client.clone();
        let p = *p;
        let req = wire::StatsRequest {
            query: query.to_string(),
        };
        async move { client.term_stats(p, req, budget).await }
    });
    let mut merged = local;
    for r in futures::future::join_all(calls).await {
        match r {
            Ok(s) => merged.merge(&s),
            Err(e) => tracing::debug!(error = %e, "stats round: peer left out"),
        }
    }
    merged
}

/// Send the search round to `peers` and collect answers until `deadline` (the local leaf
/// answer is passed in already computed).
pub async fn fan_out(
    client: &net::Client,
    peers: &[PeerId],
    request: wire::SearchRequest,
    local: Option<LeafAnswer>,
    deadline: Duration,
) -> FanoutResult {
    let top_k = request.top_k as usize;
    let calls = peers.iter().map(|p| {
        let client = client.clone();
        let p = *p;
        let req = request.clone();
        async move { (p, client.search(p, req, deadline).await) }
    });
    let mut out = FanoutResult {
        queried: peers.len() + usize::from(local.is_some()),
        ..FanoutResult::default()
    };
    if let Some(l) = local {
        out.answers.push(l);
    }
    for (p, r) in futures::future::join_all(calls).await {
        match r {
            Ok(resp) => match validate_answer(&resp.hits, top_k) {
                Ok(()) => out.answers.push(LeafAnswer {
                    peer: p.to_string(),
                    hits: resp.hits,
                    total_matches: resp.total_matches,
                }),
                Err(why) => {
                    tracing::warn!(peer = %p, why, "invalid search answer ignored");
                    out.failed += 1;
                }
            },
            Err(e) => {
                tracing::debug!(peer = %p, error = %e, "leaf search failed");
                out.failed += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(url: &str, score: f32) -> Hit {
        Hit {
            url: url.into(),
            title: String::new(),
            snippet: String::new(),
            score,
        }
    }

    #[test]
    fn merge_orders_by_score_dedups_urls_and_pages() {
        let a = LeafAnswer {
            peer: "a".into(),
            hits: vec![hit("u1", 3.0), hit("u2", 2.0), hit("u4", 1.0)],
            total_matches: 3,
        };
        let b = LeafAnswer {
            peer: "b".into(),
            hits: vec![hit("u1", 3.0), hit("u3", 2.5), hit("u0", 2.0)],
            total_matches: 3,
        };
        let m = merge(vec![a, b], 0, 10);
        let urls: Vec<_> = m.iter().map(|h| h.hit.url.as_str()).collect();
        assert_eq!(
            urls,
            vec!["u1", "u3", "u0", "u2", "u4"],
            "ties broken by url"
        );
        assert_eq!(m[0].peer, "a", "best copy kept once, deterministic peer");
        let page2: Vec<_> = merge(
            vec![LeafAnswer {
                peer: "a".into(),
                hits: vec![hit("x", 3.0), hit("y", 2.0), hit("z", 1.0)],
                total_matches: 3,
            }],
            1,
            1,
        )
        .into_iter()
        .map(|h| h.hit.url)
        .collect();
        assert_eq!(page2, vec!["y"]);
    }

    #[test]
    fn answers_with_too_many_hits_or_bad_scores_are_rejected() {
        let many: Vec<Hit> = (0..10_000).map(|i| hit(&format!("u{i}"), 1.0)).collect();
        assert!(validate_answer(&many, 10).is_err());
        assert!(validate_answer(&[hit("u", f32::NAN)], 10).is_err());
        assert!(validate_answer(&[hit("u", 1.0)], 10).is_ok());
    }

    #[test]
    fn stats_cache_expires_by_peer_count() {
        let mut c = StatsCache::default();
        let s = TermStats {
            num_docs: 5,
            ..TermStats::default()
        };
        c.put("q", 3, s.clone());
        assert_eq!(c.get("q", 3), Some(s));
        assert_eq!(c.get("q", 4), None, "a changed peer set gathers again");
        assert_eq!(c.get("other", 3), None);
    }
}
