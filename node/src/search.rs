//! Search, root and leaf.
//!
//! The **root** (the queries this peer's API receives) gathers network-wide BM25 statistics,
//! fans the query out to every live peer's leaf search, merges by score with one hit per URL,
//! and answers by the deadline with whatever arrived (`partial` when some peer did not).
//! Two phases as in Quickwit/Stract: a statistics round (`/peersearch/stats/1.0.0`) and a
//! search round (`/peersearch/search/1.0.0`) that carries the merged statistics, so every leaf
//! scores as one central index would. Each peer counts only the documents of the sites it is
//! the primary of, so a document held by R owners counts once. The root caches every peer's
//! share per term ([`crate::shares`]): a query whose terms are all cached skips the
//! statistics round, and since each leaf sends its current share with its answer, the root
//! searches again when the statistics changed, so a cached share never makes a score stale.
//! Leaf answers are checked by the network layer (sizes,
//! counts, finite scores: [`wire::validate_search_answer`]), then here: each hit comes with
//! its score evidence, and the root recomputes every score from it with the statistics it
//! sent ([`verify_answer`]); an answer with one score that does not match is dropped and its
//! peer gets a misbehaviour point. The same evidence explains a hit's score (`explain=1`).
//!
//! The **leaf** answers other roots from the local shard, at most [`MAX_LEAF_TOP_K`] hits.

use crate::error::Result;
use crate::indexing::Indexing;
use crate::net::{self, wire};
use crate::routing::{OWNER_SLACK, Placement, Routing};
use crate::shares::ShareCache;
use libp2p::PeerId;
use peersearch_indexer::{Hit, SearchResults, TermStats};
use peersearch_web::api::{ApiHit, PeerCounts, Scope, SearchParams, SearchResponse};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::{debug, warn};

/// Most hits a leaf returns: the deepest page the API serves, `offset` at most
/// [`peersearch_web::MAX_OFFSET`] plus `limit` at most [`peersearch_web::LIMIT_RANGE`]'s end.
pub const MAX_LEAF_TOP_K: usize =
    peersearch_web::MAX_OFFSET as usize + peersearch_web::LIMIT_RANGE.1 as usize;

/// The number of hits a leaf computes for a request asking `top_k`.
pub fn leaf_top_k(top_k: u32) -> usize {
    (top_k as usize).min(MAX_LEAF_TOP_K)
}

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

impl LeafAnswer {
    fn new(peer: String, results: SearchResults) -> LeafAnswer {
        LeafAnswer {
            peer,
            hits: results.hits,
            total_matches: results.total_matches,
        }
    }
}

/// A hit with the peer that returned it.
#[derive(Debug, Clone, PartialEq)]
pub struct MergedHit {
    /// The hit.
    pub hit: Hit,
    /// The answering peer.
    pub peer: String,
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

/// The outcome of a fan-out to remote peers.
#[derive(Debug, Clone, Default)]
struct FanoutResult {
    /// Answers that arrived (validated by the network layer).
    answers: Vec<LeafAnswer>,
    /// Peers that failed, timed out or sent invalid answers.
    failed: usize,
    /// The statistics share each answering peer sent with its answer (`None`: it sent none).
    shares: Vec<(PeerId, Option<TermStats>)>,
}

/// The statistics round: ask `peers` for their shares of `query` (those that do not answer
/// within the round's share of `deadline` are left out).
async fn ask_stats(
    client: &net::Client,
    peers: &[PeerId],
    query: &str,
    deadline: Duration,
) -> Vec<(PeerId, TermStats)> {
    let budget = deadline.mul_f64(STATS_SHARE);
    let calls = peers.iter().map(|p| {
        let client = client.clone();
        let p = *p;
        let req = wire::StatsRequest {
            query: query.to_string(),
        };
        async move { (p, client.term_stats(p, req, budget).await) }
    });
    let mut shares = Vec::new();
    for (p, r) in futures::future::join_all(calls).await {
        match r {
            Ok(s) => shares.push((p, s)),
            Err(e) => debug!(peer = %p, error = %e, "stats round: peer left out"),
        }
    }
    shares
}

/// The shares of `peers` in `shares`, in the order of `peers`.
fn shares_of(peers: &[PeerId], shares: &HashMap<PeerId, TermStats>) -> Vec<(PeerId, TermStats)> {
    peers
        .iter()
        .filter_map(|p| shares.get(p).map(|s| (*p, s.clone())))
        .collect()
}

/// Screen the shares (`crate::stats_check`) and add up what passes with the root's own. The
/// peers of `fresh` (whose shares arrived for this query) get a misbehaviour point for a
/// share that cannot be true, one per query: those in `reported` already have theirs, and
/// the ones given a point now are added to it. A cached share that no longer fits is only
/// left out.
async fn screen_and_merge(
    client: &net::Client,
    local: &TermStats,
    shares: Vec<(PeerId, TermStats)>,
    fresh: &HashSet<PeerId>,
    reported: &mut HashSet<PeerId>,
) -> TermStats {
    let screened = crate::stats_check::screen(local, shares);
    for (p, why) in &screened.refused {
        if fresh.contains(p) {
            warn!(peer = %p, why, "statistics refused");
            if reported.insert(*p) {
                let _ = client.report_misbehaviour(*p).await;
            }
        } else {
            debug!(peer = %p, why, "cached statistics left out");
        }
    }
    for (p, why) in &screened.outsized {
        warn!(peer = %p, why, "statistics left out: outsized share");
    }
    crate::stats_check::merge(local.clone(), &screened)
}

/// Send the search round to `peers` and collect their answers until `deadline`. Every
/// answer is checked against the statistics sent ([`verify_answer`]); a peer whose answer
/// fails is left out like one that did not answer, and gets a misbehaviour point.
async fn fan_out(
    client: &net::Client,
    peers: &[PeerId],
    request: wire::SearchRequest,
    deadline: Duration,
) -> FanoutResult {
    let calls = peers.iter().map(|p| {
        let client = client.clone();
        let p = *p;
        let req = request.clone();
        async move { (p, client.search(p, req, deadline).await) }
    });
    let mut arrived = Vec::new();
    let mut out = FanoutResult::default();
    for (p, r) in futures::future::join_all(calls).await {
        match r {
            Ok(resp) => arrived.push((p, resp)),
            Err(e) => {
                debug!(peer = %p, error = %e, "leaf search failed");
                out.failed += 1;
            }
        }
    }
    let checked = match &request.stats {
        Some(stats) => {
            let (query, stats) = (request.query.clone(), stats.clone());
            tokio::task::spawn_blocking(move || {
                arrived
                    .into_iter()
                    .map(|(p, resp)| {
                        let verdict = verify_answer(&query, &stats, &resp.hits);
                        (p, resp, verdict)
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default()
        }
        None => arrived.into_iter().map(|(p, r)| (p, r, Ok(()))).collect(),
    };
    for (p, resp, verdict) in checked {
        match verdict {
            Ok(()) => {
                out.shares.push((p, resp.share));
                out.answers.push(LeafAnswer {
                    peer: p.to_string(),
                    hits: resp.hits,
                    total_matches: resp.total_matches,
                });
            }
            Err(why) => {
                warn!(peer = %p, why, "leaf answer refused: a score its evidence does not give");
                out.failed += 1;
                let _ = client.report_misbehaviour(p).await;
            }
        }
    }
    out
}

/// Drop the hits of `answer` whose site its peer does not own in `placement` (R plus
/// [`OWNER_SLACK`]): a peer can only vouch for the sites it holds by the network's rule, so a
/// hostile peer cannot slip pages of sites it does not own into every query. Owners answer
/// for those pages anyway.
fn keep_owned_hits(answer: &mut LeafAnswer, placement: &Placement) {
    let Ok(peer) = answer.peer.parse::<PeerId>() else {
        answer.hits.clear();
        return;
    };
    let before = answer.hits.len();
    answer.hits.retain(|hit| {
        url::Url::parse(&hit.url).is_ok_and(|url| {
            let site = peersearch_crawler::site_of(&url);
            placement
                .closest(&site, placement.replication() + OWNER_SLACK)
                .contains(&peer)
        })
    });
    if answer.hits.len() < before {
        debug!(
            peer = %peer,
            dropped = before - answer.hits.len(),
            "hits of sites the peer does not own left out"
        );
    }
}

/// Check a leaf's answer: every hit's score must be what its evidence gives with the
/// statistics the root sent, bit for bit ([`peersearch_indexer::explain`]; scores are exact
/// by design, so an honest leaf always passes). A leaf cannot raise a hit above its place
/// without claiming occurrences the page would have to hold; that claim is what a second
/// owner can be asked about.
pub fn verify_answer(
    query: &str,
    stats: &TermStats,
    hits: &[Hit],
) -> std::result::Result<(), String> {
    for hit in hits {
        let explained = peersearch_indexer::explain(query, stats, &hit.url, hit.evidence.as_ref())
            .map_err(|e| format!("{}: {e}", hit.url))?;
        if explained.score.to_bits() != hit.score.to_bits() {
            return Err(format!(
                "{}: score {} but its evidence gives {}",
                hit.url, hit.score, explained.score
            ));
        }
    }
    Ok(())
}

/// The API's answer from the leaf answers: merged, cut to the page, with the peer counts.
/// With `explain` (the query's statistics), each hit of the page carries its explanation.
#[allow(clippy::too_many_arguments)]
fn respond(
    query: String,
    answers: Vec<LeafAnswer>,
    queried: usize,
    failed: usize,
    offset: usize,
    limit: usize,
    explain: Option<&TermStats>,
    started: Instant,
) -> SearchResponse {
    let total_hits = answers.iter().map(|a| a.total_matches).max().unwrap_or(0);
    let hits = merge(answers, offset, limit)
        .into_iter()
        .map(|m| ApiHit {
            explanation: explain.and_then(|stats| {
                peersearch_indexer::explain(&query, stats, &m.hit.url, m.hit.evidence.as_ref()).ok()
            }),
            url: m.hit.url,
            title: m.hit.title,
            snippet: m.hit.snippet,
            score: m.hit.score,
            peer: m.peer,
        })
        .collect();
    SearchResponse {
        query,
        hits,
        took_ms: started.elapsed().as_millis() as u64,
        peers: PeerCounts {
            queried,
            answered: queried - failed,
            failed,
        },
        partial: failed > 0,
        total_hits,
        rounds: 0,
    }
}

/// The search component: root and leaf, a cloneable handle.
#[derive(Clone)]
pub struct Search {
    net: net::Client,
    indexing: Indexing,
    routing: Routing,
    shares: Arc<Mutex<ShareCache>>,
    /// Network queries answered, by the rounds they took (0, 1, 2, 3).
    rounds: Arc<[AtomicU64; 4]>,
    #[cfg(feature = "test-hooks")]
    hooks: crate::net::hooks::Hooks,
}

impl std::fmt::Debug for Search {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Search").finish_non_exhaustive()
    }
}

impl Search {
    /// Search over the local shard (`indexing`) and the network (`net`).
    pub fn new(net: net::Client, indexing: Indexing, routing: Routing) -> Search {
        Search {
            net,
            indexing,
            routing,
            shares: Arc::default(),
            rounds: Arc::default(),
            #[cfg(feature = "test-hooks")]
            hooks: crate::net::hooks::Hooks::from_env(),
        }
    }

    /// Network queries answered so far, by the rounds of requests they took (index 0 to 3).
    pub fn queries_by_rounds(&self) -> [u64; 4] {
        std::array::from_fn(|i| self.rounds[i].load(Ordering::Relaxed))
    }

    /// Answer an API search: the local shard only, or the network as its root.
    pub async fn search(&self, p: SearchParams) -> Result<SearchResponse> {
        let started = Instant::now();
        let top_k = p.offset + p.limit;
        let me = self.net.local_peer_id().to_string();
        let (answers, queried, failed, stats, rounds) = match p.scope {
            // Explained with the shard's own statistics, which are what it scores with.
            Scope::Local if p.explain => {
                let stats = self.indexing.term_stats(p.q.clone()).await?;
                let r = self
                    .indexing
                    .search(p.q.clone(), top_k, Some(stats.clone()), true)
                    .await?;
                (vec![LeafAnswer::new(me, r)], 1, 0, Some(stats), 0)
            }
            Scope::Local => {
                let r = self
                    .indexing
                    .search(p.q.clone(), top_k, None, false)
                    .await?;
                (vec![LeafAnswer::new(me, r)], 1, 0, None, 0)
            }
            Scope::Network => {
                let (answers, queried, failed, stats, rounds) = self.root(&p, top_k).await?;
                self.rounds[(rounds as usize).min(3)].fetch_add(1, Ordering::Relaxed);
                (answers, queried, failed, Some(stats), rounds)
            }
        };
        let explain = stats.as_ref().filter(|_| p.explain);
        let mut response = respond(
            p.q, answers, queried, failed, p.offset, p.limit, explain, started,
        );
        response.rounds = rounds;
        Ok(response)
    }

    /// The root: the query's statistics, then the search round to every peer and the local
    /// leaf. Returns the answers, the peers queried and failed, the statistics the answers
    /// were scored with, and the rounds of requests it took.
    ///
    /// The statistics are the root's own share (always fresh) plus each peer's share, from
    /// the [`ShareCache`] where it holds every term of the query, otherwise from a
    /// statistics round to the peers it lacks. With everything cached the query costs the
    /// search round alone. Every leaf sends its current share with its answer: when a share
    /// changed and the merged statistics with it, the root searches once more with the
    /// current ones, so the scores are always those of the statistics as they are now (or,
    /// when they change again during that second round, as they were a round earlier).
    async fn root(
        &self,
        p: &SearchParams,
        top_k: usize,
    ) -> Result<(Vec<LeafAnswer>, usize, usize, TermStats, u32)> {
        let deadline = Duration::from_millis(p.timeout_ms);
        let started = Instant::now();
        let mut peers = self.net.live_peers().await.unwrap_or_default();
        peers.truncate(MAX_FANOUT);
        let local = self.counted_stats(p.q.clone()).await?;
        let mut used: HashMap<PeerId, TermStats> = HashMap::new();
        let mut missing = Vec::new();
        if let Ok(mut cache) = self.shares.lock() {
            cache.retain_peers(&peers);
            let now = Instant::now();
            for peer in &peers {
                match cache.share(peer, &local, now) {
                    Some(share) => {
                        used.insert(*peer, share);
                    }
                    None => missing.push(*peer),
                }
            }
        }
        let mut rounds = u32::from(!peers.is_empty());
        let mut fresh: HashSet<PeerId> = HashSet::new();
        if !missing.is_empty() {
            rounds += 1;
            let asked = ask_stats(&self.net, &missing, &p.q, deadline).await;
            let now = Instant::now();
            if let Ok(mut cache) = self.shares.lock() {
                for (peer, share) in &asked {
                    if crate::stats_check::check_share(&local, share).is_ok() {
                        cache.put(*peer, share, now);
                    }
                }
            }
            for (peer, share) in asked {
                fresh.insert(peer);
                used.insert(peer, share);
            }
        }
        let mut reported = HashSet::new();
        let stats = screen_and_merge(
            &self.net,
            &local,
            shares_of(&peers, &used),
            &fresh,
            &mut reported,
        )
        .await;
        let remaining = deadline.saturating_sub(started.elapsed());
        let fan = self
            .search_round(&p.q, top_k, &peers, stats.clone(), remaining)
            .await?;
        // What the leaves say their shares are now.
        let current = self.take_shares(&local, &fan.shares, &used);
        let fresh: HashSet<PeerId> = fan
            .shares
            .iter()
            .filter(|(_, share)| share.is_some())
            .map(|(peer, _)| *peer)
            .collect();
        let now_stats = screen_and_merge(
            &self.net,
            &local,
            shares_of(&peers, &current),
            &fresh,
            &mut reported,
        )
        .await;
        if now_stats == stats {
            return Ok((fan.answers, peers.len() + 1, fan.failed, stats, rounds));
        }
        debug!(
            query = p.q,
            "statistics changed since they were gathered; searching again"
        );
        let remaining = deadline.saturating_sub(started.elapsed());
        let fan = self
            .search_round(&p.q, top_k, &peers, now_stats.clone(), remaining)
            .await?;
        self.take_shares(&local, &fan.shares, &current);
        Ok((
            fan.answers,
            peers.len() + 1,
            fan.failed,
            now_stats,
            rounds + 1,
        ))
    }

    /// Take the shares the leaves sent with their answers into the cache, and return every
    /// peer's share as it is now: what it sent, else what `before` held for it. A peer that
    /// sent none is forgotten (the next query asks it in a statistics round); one whose share
    /// cannot be true is forgotten and left out (its point comes from the screening).
    fn take_shares(
        &self,
        local: &TermStats,
        sent: &[(PeerId, Option<TermStats>)],
        before: &HashMap<PeerId, TermStats>,
    ) -> HashMap<PeerId, TermStats> {
        let mut now_shares = before.clone();
        let now = Instant::now();
        let Ok(mut cache) = self.shares.lock() else {
            return now_shares;
        };
        for (peer, share) in sent {
            match share {
                Some(share) => {
                    if crate::stats_check::check_share(local, share).is_ok() {
                        cache.put(*peer, share, now);
                    } else {
                        cache.forget(peer);
                    }
                    now_shares.insert(*peer, share.clone());
                }
                None => cache.forget(peer),
            }
        }
        now_shares
    }

    /// One search round with `stats`: every peer of `peers` and the local leaf.
    async fn search_round(
        &self,
        query: &str,
        top_k: usize,
        peers: &[PeerId],
        stats: TermStats,
        deadline: Duration,
    ) -> Result<FanoutResult> {
        let request = wire::SearchRequest {
            query: query.to_string(),
            top_k: top_k as u32,
            stats: Some(stats.clone()),
            evidence: true,
            share: true,
        };
        // The local leaf's evidence is not checked, but it explains the local hits.
        let local = self
            .indexing
            .search(query.to_string(), top_k, Some(stats), true);
        let remote = fan_out(&self.net, peers, request, deadline);
        let (local, mut fan) = tokio::join!(local, remote);
        let placement = self.routing.placement().await;
        for answer in &mut fan.answers {
            keep_owned_hits(answer, &placement);
        }
        fan.answers.push(LeafAnswer::new(
            self.net.local_peer_id().to_string(),
            local?,
        ));
        Ok(fan)
    }

    /// The leaf: answer another root's search from the local shard (an empty answer when the
    /// shard cannot search; the root merges what the others sent).
    pub async fn on_search(
        &self,
        request: wire::SearchRequest,
        reply: net::Responder<wire::SearchResponse>,
    ) {
        #[cfg(feature = "test-hooks")]
        if let Some(resp) = self.hooks.search_answer().await {
            let _ = reply.send(resp);
            return;
        }
        let top_k = leaf_top_k(request.top_k);
        let share = async {
            if request.share {
                self.counted_stats(request.query.clone()).await.ok()
            } else {
                None
            }
        };
        let search = self.indexing.search(
            request.query.clone(),
            top_k,
            request.stats,
            request.evidence,
        );
        let (share, found) = tokio::join!(share, search);
        #[cfg(feature = "test-hooks")]
        let share = share.map(|mut share| {
            self.hooks.poison_stats(&mut share);
            share
        });
        let resp = match found {
            Ok(r) => wire::SearchResponse {
                hits: r.hits,
                total_matches: r.total_matches,
                share,
            },
            Err(e) => {
                debug!(error = %e, "leaf search failed");
                wire::SearchResponse::default()
            }
        };
        #[cfg(feature = "test-hooks")]
        let resp = {
            let mut resp = resp;
            self.hooks.poison_answer(&mut resp);
            resp
        };
        let _ = reply.send(resp);
    }

    /// Answer a statistics request from the local shard.
    pub async fn on_stats(&self, request: wire::StatsRequest, reply: net::Responder<TermStats>) {
        let stats = self.counted_stats(request.query).await.unwrap_or_default();
        let _ = reply.send(stats);
    }

    /// This peer's share of a network query's statistics: the documents of the sites it is
    /// the primary of, by its view of the network. Every document lives on R owners (and
    /// for a while on a peer that no longer owns it); counting it only at its site's primary
    /// makes the merged statistics count it once, as one central index would.
    async fn counted_stats(&self, query: String) -> Result<TermStats> {
        let placement = self.routing.placement().await;
        let sites = self.indexing.sites().await?;
        let all = sites.len();
        let counted: Vec<String> = sites
            .into_iter()
            .map(|(site, _)| site)
            .filter(|site| placement.is_primary(site))
            .collect();
        if counted.len() == all {
            self.indexing.term_stats(query).await
        } else {
            self.indexing.term_stats_for_sites(query, counted).await
        }
    }
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
            evidence: None,
        }
    }

    #[test]
    fn honest_answers_verify_and_forged_scores_or_evidence_do_not() {
        let shard = peersearch_indexer::Shard::open_in_ram().unwrap();
        for (i, body) in ["rust search engine", "search the web", "a rust crate"]
            .iter()
            .enumerate()
        {
            shard
                .upsert(&peersearch_indexer::Document {
                    url: format!("http://v.example/{i}"),
                    site: "v.example".into(),
                    title: format!("page {i}"),
                    body: body.to_string(),
                    ..Default::default()
                })
                .unwrap();
        }
        shard.commit().unwrap();
        let q = "rust search";
        let stats = shard.term_stats(q).unwrap();
        let honest = shard.search_with(q, 10, Some(&stats), true).unwrap().hits;
        assert_eq!(honest.len(), 3);
        assert_eq!(verify_answer(q, &stats, &honest), Ok(()));

        let mut raised = honest.clone();
        raised[2].score += 150.0;
        assert!(verify_answer(q, &stats, &raised).is_err());
        let mut bare = honest.clone();
        bare[0].evidence = None;
        assert!(verify_answer(q, &stats, &bare).is_err());
        // Scored with other statistics than the root sent (its own, or made up).
        let own = shard.search_with(q, 10, None, true).unwrap().hits;
        let mut other = stats.clone();
        other.num_docs = 1_000;
        assert!(verify_answer(q, &other, &own).is_err());
        // A spam URL with an honest hit's evidence but a higher score.
        let mut spam = honest[0].clone();
        spam.url = "http://spam.example/".into();
        spam.score = 1e6;
        assert!(verify_answer(q, &stats, &[spam]).is_err());
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
    fn the_leaf_cap_covers_the_deepest_page_the_api_allows() {
        assert_eq!(MAX_LEAF_TOP_K, 1100);
        assert_eq!(leaf_top_k(u32::MAX), MAX_LEAF_TOP_K);
        assert_eq!(leaf_top_k(10), 10);
    }

    #[test]
    fn totals_take_the_largest_count_and_partial_follows_failures() {
        let answers = vec![
            LeafAnswer {
                peer: "a".into(),
                hits: vec![hit("u1", 1.0)],
                total_matches: 4,
            },
            LeafAnswer {
                peer: "b".into(),
                hits: vec![hit("u1", 1.0), hit("u2", 0.5)],
                total_matches: 7,
            },
        ];
        let r = respond("q".into(), answers, 3, 1, 0, 10, None, Instant::now());
        assert_eq!(r.total_hits, 7);
        assert_eq!(r.hits.len(), 2);
        assert_eq!(
            (r.peers.queried, r.peers.answered, r.peers.failed),
            (3, 2, 1)
        );
        assert!(r.partial);
    }
}
