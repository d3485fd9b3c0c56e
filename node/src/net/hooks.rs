//! Test hooks (cargo feature `test-hooks`, or `hostile`, which is the same; compiled only into
//! the binary this package's own tests run, or a build that asks for it): misbehaviour that
//! the hostile-peer and slow-peer tests need, read from the environment once. A mode is named
//! by `PEERSEARCH_HOSTILE=<mode>` (`poison-results`, ...) or, as the tests do,
//! `PEERSEARCH_TEST_MISBEHAVE=<mode>` (`poison_results`, ...); a mode this build does not
//! have stops the peer at start ([`check_env`]).
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
//! - `PEERSEARCH_TEST_MISBEHAVE=poison_replicas`: the peer remembers the URLs submitted to it
//!   as seeds (it routes them honestly) and, every second for [`POISON_REPLICA_ROUNDS`]
//!   rounds, sends every live peer forged replica batches of every seeded site
//!   ([`Hooks::forged_replica_batches`]): one that looks honest (every seeded URL as a
//!   document titled `poisoned`, fetched now, and the same URLs as deletes, crawled URLs and
//!   done URLs of a crawl state); once seeds were submitted to it a second time, also the
//!   same documents fetched ten years ahead. Receivers refuse what the sender does not own
//!   (`crate::replication`), and the far-future batch is a forgery that gets the peer banned
//!   (so the test lets the first kind run against a full index before it sends the second).

use super::wire;
use peersearch_indexer::{TermStats, term_key};
use std::sync::{Arc, OnceLock};
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
    /// Forged replica batches of the seeded sites, sent to every peer.
    PoisonReplicas,
    /// Search requests to every peer, as many at once as the transport lets through.
    FloodQueries,
    /// Hand-offs of junk URLs with a spent hop budget to every peer, as fast as answered.
    FloodHandoffs,
}

/// Searches a `flood-queries` peer keeps in flight to each peer.
pub const FLOOD_IN_FLIGHT: usize = 96;
/// How long a `flood-queries` peer floods after its first seeding.
pub const FLOOD_FOR: Duration = Duration::from_secs(120);

/// How many rounds of forged replica batches a `poison_replicas` peer sends (one a second).
pub const POISON_REPLICA_ROUNDS: u32 = 300;

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
    /// The hooks the environment asks for (an unknown mode counts as none; [`check_env`]
    /// refuses it at start).
    pub fn from_env() -> Hooks {
        *HOOKS.get_or_init(|| Hooks {
            stall: std::env::var("PEERSEARCH_TEST_STALL_SEARCH_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .map(Duration::from_millis),
            misbehave: mode_from_env().ok().flatten(),
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
            Misbehave::ForgeDoc
            | Misbehave::PoisonStats
            | Misbehave::PoisonResults
            | Misbehave::PoisonReplicas
            | Misbehave::FloodQueries
            | Misbehave::FloodHandoffs => {
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
            share: None,
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

impl Hooks {
    /// Whether this peer forges replica batches (`poison_replicas`).
    pub fn poisons_replicas(&self) -> bool {
        self.misbehave == Some(Misbehave::PoisonReplicas)
    }

    /// Whether this peer floods others with searches (`flood-queries`).
    pub fn floods_queries(&self) -> bool {
        self.misbehave == Some(Misbehave::FloodQueries)
    }

    /// Whether this peer floods others with hand-offs (`flood-handoffs`).
    pub fn floods_handoffs(&self) -> bool {
        self.misbehave == Some(Misbehave::FloodHandoffs)
    }

    /// With `poison_replicas`, remember seeds submitted to this peer: the victims (and with
    /// `flood-queries`, the signal to start).
    pub fn note_seeds(&self, urls: &[String]) {
        if self.poisons_replicas() || self.floods_queries() || self.floods_handoffs() {
            lock_victims().extend(urls.iter().cloned());
            SEEDINGS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// The forged batches of one round at unix time `now`: per seeded site, one that looks
    /// honest and, after a second seeding, one with fetch times ten years ahead.
    pub fn forged_replica_batches(&self, now: i64) -> Vec<wire::ReplicateRequest> {
        let mut by_site: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for raw in lock_victims().iter() {
            if let Ok(u) = peersearch_crawler::normalize(raw, None) {
                by_site.entry(u.site()).or_default().push(u.to_string());
            }
        }
        let mut out = Vec::new();
        for (site, urls) in by_site {
            let ahead = (SEEDINGS.load(std::sync::atomic::Ordering::SeqCst) >= 2)
                .then_some(now + 10 * 365 * 86_400);
            for fetched_at in std::iter::once(now).chain(ahead) {
                let docs = urls
                    .iter()
                    .map(|u| peersearch_indexer::Document {
                        url: u.clone(),
                        site: site.clone(),
                        title: "poisoned".into(),
                        body: "poisoned replica".into(),
                        fetched_at,
                        ..Default::default()
                    })
                    .collect();
                let done = urls
                    .iter()
                    .filter_map(|u| peersearch_crawler::normalize(u, None).ok())
                    .map(|url| peersearch_crawler::DoneUrl { url, fetched_at })
                    .collect();
                out.push(wire::ReplicateRequest {
                    site: site.clone(),
                    docs,
                    site_state: Some(peersearch_crawler::SiteState {
                        site: site.clone(),
                        queued: Vec::new(),
                        done,
                    }),
                    deletes: urls.clone(),
                    crawled: urls.clone(),
                    ..Default::default()
                });
            }
        }
        out
    }
}

/// Send forged replica batches to every live peer, a round a second (`poison_replicas`).
pub async fn poison_replicas(net: super::Client, stop: tokio_util::sync::CancellationToken) {
    let hooks = Hooks::from_env();
    for round in 1..=POISON_REPLICA_ROUNDS {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.cancelled() => return,
        }
        let now = i64::try_from(crate::clock::now_unix()).unwrap_or(i64::MAX);
        let batches = hooks.forged_replica_batches(now);
        if batches.is_empty() {
            continue;
        }
        let peers = net.live_peers().await.unwrap_or_default();
        let mut refused = 0;
        for peer in &peers {
            for b in &batches {
                if net.replicate(*peer, b.clone()).await.is_err() {
                    refused += 1;
                }
            }
        }
        tracing::info!(
            round,
            peers = peers.len(),
            batches = batches.len(),
            refused,
            "sent forged replica batches"
        );
    }
}

/// How many times seeds were submitted to this peer.
static SEEDINGS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Flood every live peer with searches, [`FLOOD_IN_FLIGHT`] at a time each, for
/// [`FLOOD_FOR`] after the first seeding (`flood-queries`); log what came back each second.
pub async fn flood_queries(net: super::Client, stop: tokio_util::sync::CancellationToken) {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    while SEEDINGS.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = stop.cancelled() => return,
        }
    }
    let (answered, busy, failed) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let until = tokio::time::Instant::now() + FLOOD_FOR;
    let mut flights = tokio::task::JoinSet::new();
    let mut next_log = tokio::time::Instant::now();
    while tokio::time::Instant::now() < until && !stop.is_cancelled() {
        let peers = net.live_peers().await.unwrap_or_default();
        while flights.len() < FLOOD_IN_FLIGHT * peers.len().max(1) {
            for peer in &peers {
                let (net, answered, busy, failed) =
                    (net.clone(), answered.clone(), busy.clone(), failed.clone());
                let peer = *peer;
                flights.spawn(async move {
                    let request = wire::SearchRequest {
                        query: "page site text".into(),
                        top_k: 10,
                        stats: None,
                        evidence: true,
                        share: false,
                    };
                    match net
                        .search_unbounded(peer, request, Duration::from_secs(10))
                        .await
                    {
                        Ok(_) => answered.fetch_add(1, Relaxed),
                        Err(super::Error::Remote(m)) if m.contains("busy") => {
                            busy.fetch_add(1, Relaxed)
                        }
                        Err(_) => failed.fetch_add(1, Relaxed),
                    };
                });
            }
            if peers.is_empty() {
                break;
            }
        }
        tokio::select! {
            _ = flights.join_next() => {}
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        if tokio::time::Instant::now() >= next_log {
            next_log += Duration::from_secs(1);
            tracing::info!(
                answered = answered.load(Relaxed),
                busy = busy.load(Relaxed),
                failed = failed.load(Relaxed),
                "flooding searches"
            );
        }
    }
    flights.abort_all();
}

/// Hand-offs a `flood-handoffs` peer keeps in flight to each peer.
const HANDOFF_FLOOD_IN_FLIGHT: usize = 8;

/// One flood hand-off: [`crate::routing::MAX_HANDOFF_URLS`] URLs, each on a site of its own
/// (loopback addresses where nothing listens, so that nothing leaves the machine), with the
/// largest hop count, which an older peer kept whatever it owned.
fn flood_handoff(round: u64) -> wire::HandoffRequest {
    let urls = (0..crate::routing::MAX_HANDOFF_URLS as u64)
        .map(|i| {
            let n = round.wrapping_mul(7_919).wrapping_add(i) % (1 << 24);
            wire::Link {
                url: format!(
                    "http://127.{}.{}.{}:1/flood/{round}/{i}",
                    n >> 16,
                    (n >> 8) & 0xff,
                    n & 0xff
                ),
                depth: 1,
                anchor: Some("flood".into()),
                source: None,
                scope: None,
            }
        })
        .collect();
    wire::HandoffRequest {
        urls,
        hops: u8::MAX,
    }
}

/// Flood every live peer with hand-offs, [`HANDOFF_FLOOD_IN_FLIGHT`] at a time each, for
/// [`FLOOD_FOR`] after the first seeding (`flood-handoffs`); log each second how many
/// were answered, refused as busy or failed, and how many URLs the peers kept.
pub async fn flood_handoffs(net: super::Client, stop: tokio_util::sync::CancellationToken) {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    while SEEDINGS.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = stop.cancelled() => return,
        }
    }
    let counts: Arc<[AtomicU64; 4]> = Arc::new(Default::default());
    let until = tokio::time::Instant::now() + FLOOD_FOR;
    let mut flights = tokio::task::JoinSet::new();
    let mut next_log = tokio::time::Instant::now();
    let mut round = 0u64;
    while tokio::time::Instant::now() < until && !stop.is_cancelled() {
        let peers = net.live_peers().await.unwrap_or_default();
        while flights.len() < HANDOFF_FLOOD_IN_FLIGHT * peers.len().max(1) && !peers.is_empty() {
            for peer in &peers {
                round += 1;
                let (net, counts, peer, request) =
                    (net.clone(), counts.clone(), *peer, flood_handoff(round));
                flights.spawn(async move {
                    match net.handoff(peer, request).await {
                        Ok(ack) => {
                            counts[0].fetch_add(1, Relaxed);
                            counts[3].fetch_add(u64::from(ack.accepted), Relaxed);
                        }
                        Err(super::Error::Remote(m)) if m.contains("busy") => {
                            counts[1].fetch_add(1, Relaxed);
                        }
                        Err(_) => {
                            counts[2].fetch_add(1, Relaxed);
                        }
                    }
                });
            }
        }
        tokio::select! {
            _ = flights.join_next() => {}
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        if tokio::time::Instant::now() >= next_log {
            next_log += Duration::from_secs(1);
            tracing::info!(
                answered = counts[0].load(Relaxed),
                busy = counts[1].load(Relaxed),
                failed = counts[2].load(Relaxed),
                kept = counts[3].load(Relaxed),
                "flooding hand-offs"
            );
        }
    }
    flights.abort_all();
}

static VICTIMS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn lock_victims() -> std::sync::MutexGuard<'static, Vec<String>> {
    VICTIMS.lock().unwrap_or_else(|e| e.into_inner())
}

static HOOKS: OnceLock<Hooks> = OnceLock::new();

/// The modes by name: `PEERSEARCH_HOSTILE` takes the first spelling, the older
/// `PEERSEARCH_TEST_MISBEHAVE` the second.
const MODES: [(&str, &str, Misbehave); 8] = [
    ("flood", "flood", Misbehave::Flood),
    ("oversized", "oversized", Misbehave::Oversized),
    ("forge-doc", "forge_doc", Misbehave::ForgeDoc),
    ("poison-stats", "poison_stats", Misbehave::PoisonStats),
    ("poison-results", "poison_results", Misbehave::PoisonResults),
    (
        "poison-replicas",
        "poison_replicas",
        Misbehave::PoisonReplicas,
    ),
    ("flood-queries", "flood_queries", Misbehave::FloodQueries),
    ("flood-handoffs", "flood_handoffs", Misbehave::FloodHandoffs),
];

/// The misbehaviour `PEERSEARCH_HOSTILE` (or `PEERSEARCH_TEST_MISBEHAVE`) names; an error
/// naming the known modes when it names none of them.
fn mode_from_env() -> Result<Option<Misbehave>, String> {
    let (var, value) = match (
        std::env::var("PEERSEARCH_HOSTILE"),
        std::env::var("PEERSEARCH_TEST_MISBEHAVE"),
    ) {
        (Ok(v), _) if !v.is_empty() => ("PEERSEARCH_HOSTILE", v),
        (_, Ok(v)) if !v.is_empty() => ("PEERSEARCH_TEST_MISBEHAVE", v),
        _ => return Ok(None),
    };
    parse_mode(var, &value).map(Some)
}

/// The mode `value` of variable `var` names.
fn parse_mode(var: &str, value: &str) -> Result<Misbehave, String> {
    MODES
        .iter()
        .find(|(kebab, snake, _)| value == *kebab || value == *snake)
        .map(|(_, _, m)| *m)
        .ok_or_else(|| {
            let known: Vec<&str> = MODES.iter().map(|(k, _, _)| *k).collect();
            format!(
                "{var}={value}: not a mode this build has (it has: {})",
                known.join(", ")
            )
        })
}

/// Refuse to start with a hostile mode this build does not have: a peer asked to misbehave
/// that silently behaves would make an attack test pass for the wrong reason.
pub fn check_env() -> Result<(), String> {
    mode_from_env().map(|_| ())
}

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

    #[test]
    fn modes_are_named_both_ways_and_an_unknown_one_is_an_error() {
        assert_eq!(
            parse_mode("PEERSEARCH_HOSTILE", "poison-results"),
            Ok(Misbehave::PoisonResults)
        );
        assert_eq!(
            parse_mode("PEERSEARCH_TEST_MISBEHAVE", "poison_replicas"),
            Ok(Misbehave::PoisonReplicas)
        );
        let err = parse_mode("PEERSEARCH_HOSTILE", "claim-all").unwrap_err();
        assert!(err.contains("PEERSEARCH_HOSTILE=claim-all"), "{err}");
        assert!(err.contains("poison-stats"), "{err}");
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
            share: false,
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
            share: None,
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
