//! Churn on loopback: what a 16-peer network still finds when peers die without warning, and
//! what it costs to bring every document back to R copies.
//!
//! - (a) recall right after `kill -9` of 2, 5 and 8 of 16 peers (10 %, 30 %, 50 %) for
//!   `--replication` 1, 2 and 3, before any repair can run (maintenance period 1 h). Beside
//!   each measured recall: what random placement predicts (a document is lost only when all
//!   its R copies were on killed peers, P = C(k,R)/C(n,R)), and what the actual placement of
//!   that run predicts (which peer held which document before the kill, read with a
//!   `scope=local` `site:` query per peer and site). One crawl per R; after each fraction the
//!   killed peers are restarted on their data dirs and the next fraction starts once every
//!   peer again answers network queries with all 16 peers.
//! - (b) R=3, 5 of 16 peers killed: the time until the survivors hold R copies of every
//!   document that survived, and the replicate and digest bytes it took (survivors'
//!   `peersearch_p2p_bytes_sent_total`), with maintenance every 1 s and every 5 s (the
//!   default).
//!
//! The corpus is `linked_sites(40, 24)`: 40 loopback sites of 25 pages, 1 000 documents, each
//! with a marker word, seeded with one home page.
//!
//! `cargo bench -p peersearch-node --bench churn`

mod common;

use common::{args, keep_alive_client, p2p_counters, print_table, timed_search};
use futures::StreamExt;
use peersearch_tests::fixture::{Rng, Server, linked_sites, marker};
use peersearch_tests::harness::{
    PeerOptions, PeerProcess, start_network_with, wait_mesh, wait_network_idle,
};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

/// Peers of every network.
const PEERS: usize = 16;
/// Sites of the corpus.
const SITES: usize = 40;
/// Generated pages per site (plus the home page).
const PAGES: usize = 24;
/// Documents the corpus yields.
const TOTAL_DOCS: usize = SITES * (PAGES + 1);
/// Replication factors of (a).
const REPLICATIONS: [usize; 3] = [1, 2, 3];
/// Peers killed at once in (a): 10 %, 30 % and 50 % of [`PEERS`], rounded.
const KILLS: [usize; 3] = [2, 5, 8];
/// Maintenance period of (a): longer than a network of (a) lives, so no repair ever runs and
/// the recall measured is the one right after the kill.
const NO_REPAIR_MS: u64 = 3_600_000;
/// Replication factor of (b).
const REPAIR_R: usize = 3;
/// Peers killed in (b).
const REPAIR_KILLED: usize = 5;
/// Maintenance periods of (b): the join bench's 1 s and the default 5 s.
const REPAIR_PERIODS_MS: [u64; 2] = [1_000, 5_000];
/// How long (b) watches the idle network's background traffic before the kill.
const BASELINE: Duration = Duration::from_secs(10);
/// Query deadline asked of the API (the API's default).
const QUERY_TIMEOUT_MS: u64 = 2_000;
/// Recall queries in flight at once.
const IN_FLIGHT: usize = 4;
/// Bound of one crawl of the corpus.
const CRAWL_TIMEOUT: Duration = Duration::from_secs(400);
/// Bound of bringing killed peers back (restart, data back, answered by every peer).
const RESTART_TIMEOUT: Duration = Duration::from_secs(120);
/// Bound of the repair of (b).
const REPAIR_TIMEOUT: Duration = Duration::from_secs(300);

const REPLICATE_PROTO: &str = "/peersearch/replicate/1.0.0";
const DIGEST_PROTO: &str = "/peersearch/digest/1.0.0";
const SENT: &str = "peersearch_p2p_bytes_sent_total";

/// One document of the corpus: its marker word and its URL.
struct Doc {
    marker: String,
    url: String,
    site: usize,
}

/// Every document of the fixture, site by site.
fn documents(sites: &[Server]) -> Vec<Doc> {
    let mut out = Vec::with_capacity(TOTAL_DOCS);
    for (s, server) in sites.iter().enumerate() {
        out.push(Doc {
            marker: marker(100 + s, 999_999),
            url: server.url("/"),
            site: s,
        });
        for n in 0..PAGES {
            out.push(Doc {
                marker: marker(100 + s, n),
                url: server.url(&format!("/page/{n}.html")),
                site: s,
            });
        }
    }
    out
}

fn peer_args(r: usize) -> Vec<String> {
    args(&[
        "--allow-private-addresses",
        "--crawl-rate",
        "500",
        "--fetch-timeout-secs",
        "5",
        "--replication",
        &r.to_string(),
    ])
}

fn peer_env(maintenance_ms: u64) -> Vec<(String, String)> {
    vec![
        (
            "PEERSEARCH_MAINTENANCE_INTERVAL_MS".to_string(),
            maintenance_ms.to_string(),
        ),
        // Quiet logs, but the senders' "repairing replica ... missing=N" lines of (b).
        (
            "RUST_LOG".to_string(),
            "warn,peersearch_node::replication::maintenance=debug".to_string(),
        ),
    ]
}

/// A network of [`PEERS`] that can lose peers and get them back.
struct Net {
    root: std::path::PathBuf,
    peers: Vec<PeerProcess>,
    alive: Vec<bool>,
    r: usize,
    env: Vec<(String, String)>,
}

impl Net {
    /// `PEERS` peers under `root`, the first alone and the others bootstrapping from it;
    /// waits until every peer knows every other.
    async fn start(root: &Path, r: usize, env: Vec<(String, String)>) -> anyhow::Result<Net> {
        let peers = start_network_with(root, PEERS, &peer_args(r), &env).await?;
        Ok(Net {
            root: root.to_path_buf(),
            peers,
            alive: vec![true; PEERS],
            r,
            env,
        })
    }

    fn live(&self) -> impl Iterator<Item = (usize, &PeerProcess)> {
        self.peers
            .iter()
            .enumerate()
            .filter(|(i, _)| self.alive[*i])
    }

    /// `docs_indexed` of every live peer (None for the dead).
    async fn doc_counts(&self) -> anyhow::Result<Vec<Option<u64>>> {
        let mut out = vec![None; PEERS];
        for (i, p) in self.live() {
            let st: Value = p.get_json("/api/status").await?;
            out[i] = Some(st["docs_indexed"].as_u64().unwrap_or(0));
        }
        Ok(out)
    }

    async fn total_docs(&self) -> anyhow::Result<u64> {
        Ok(self.doc_counts().await?.into_iter().flatten().sum())
    }

    /// `kill -9` of the peers `which`, all at once.
    fn kill(&mut self, which: &[usize]) {
        for &i in which {
            self.peers[i].kill9();
            self.alive[i] = false;
        }
    }

    /// Restart the peers `which` on their data dirs (bootstrapping from a live peer), wait
    /// until each holds `counts[i]` documents again and every peer's network query is
    /// answered by all [`PEERS`] peers. Returns the seconds it took.
    async fn restart(
        &mut self,
        which: &[usize],
        counts: &[Option<u64>],
        probe: &str,
        client: &reqwest::Client,
    ) -> anyhow::Result<f64> {
        let t = Instant::now();
        let boot = self
            .live()
            .next()
            .map(|(_, p)| p.p2p_addr())
            .ok_or_else(|| anyhow::anyhow!("no live peer to bootstrap from"))?;
        for &i in which {
            let mut a = peer_args(self.r);
            a.push("--bootstrap".into());
            a.push(boot.clone());
            let old_id = self.peers[i].peer_id();
            let p = PeerProcess::spawn(
                &self.root.join(format!("peer-{i}")),
                &PeerOptions {
                    args: a,
                    env: self.env.clone(),
                },
            )
            .await?;
            anyhow::ensure!(p.peer_id() == old_id, "peer {i} changed its id on restart");
            self.peers[i] = p;
            self.alive[i] = true;
        }
        for &i in which {
            let want = counts[i].unwrap_or(0);
            self.peers[i]
                .wait_status(RESTART_TIMEOUT, |st| {
                    st["docs_indexed"].as_u64() == Some(want)
                })
                .await?;
        }
        wait_mesh(&self.peers, PEERS - 1).await?;
        // Every peer must reach every other with a query again.
        let deadline = t + RESTART_TIMEOUT;
        for p in &self.peers {
            loop {
                let (_, v) = timed_search(
                    client,
                    &p.base,
                    probe,
                    &format!("&limit=1&timeout_ms={QUERY_TIMEOUT_MS}"),
                )
                .await?;
                if v["peers"]["answered"].as_u64() == Some(PEERS as u64)
                    && v["peers"]["failed"].as_u64() == Some(0)
                {
                    break;
                }
                anyhow::ensure!(
                    Instant::now() < deadline,
                    "after restarting {which:?}, {} still reaches only {} peers",
                    p.peer_id(),
                    v["peers"]
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        Ok(t.elapsed().as_secs_f64())
    }

    /// Bytes sent per protocol, summed over the live peers.
    async fn traffic(&self) -> anyhow::Result<BTreeMap<String, u64>> {
        let mut out = BTreeMap::new();
        for (_, p) in self.live() {
            for (proto, v) in p2p_counters(p, SENT).await? {
                *out.entry(proto).or_default() += v;
            }
        }
        Ok(out)
    }
}

fn delta(after: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>, proto: &str) -> u64 {
    after
        .get(proto)
        .copied()
        .unwrap_or(0)
        .saturating_sub(before.get(proto).copied().unwrap_or(0))
}

/// Seed the first home on `net.peers[0]` and wait until the live peers hold `want` documents
/// in all (stable for 3 polls) and the crawl is idle. Seconds taken and the total reached.
async fn crawl(net: &Net, sites: &[Server], want: u64) -> anyhow::Result<(f64, u64)> {
    let t = Instant::now();
    let (status, body) = net.peers[0]
        .post_json(
            "/api/crawl",
            &serde_json::json!({ "urls": [sites[0].url("/")] }),
        )
        .await?;
    anyhow::ensure!(status == 202, "seeding answered {status}: {body}");
    let mut calm = 0;
    let mut total = 0;
    while t.elapsed() < CRAWL_TIMEOUT {
        total = net.total_docs().await?;
        calm = if total == want { calm + 1 } else { 0 };
        if calm >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let secs = t.elapsed().as_secs_f64();
    if total != want {
        eprintln!("WARNING: the network holds {total} document copies, expected {want}");
    }
    wait_network_idle(&net.peers, CRAWL_TIMEOUT).await?;
    Ok((secs, total))
}

/// Which URLs each live peer holds (None for the dead): a `scope=local` query
/// `site:127.0.0.1:PORT` per peer and site (a site has 25 pages, below the limit of 100).
async fn holdings(
    net: &Net,
    sites: &[Server],
    client: &reqwest::Client,
) -> anyhow::Result<Vec<Option<HashSet<String>>>> {
    let mut out = vec![None; PEERS];
    for (i, p) in net.live() {
        let answers: Vec<anyhow::Result<Vec<String>>> = futures::stream::iter(sites.iter())
            .map(|s| async move {
                let (_, v) = timed_search(
                    client,
                    &p.base,
                    &format!("site:{}", s.addr),
                    "&scope=local&limit=100",
                )
                .await?;
                Ok(v["hits"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|h| h["url"].as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default())
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        let mut held = HashSet::new();
        for a in answers {
            held.extend(a?);
        }
        out[i] = Some(held);
    }
    Ok(out)
}

/// Holders of every document (peer indices), from [`holdings`].
fn holders(docs: &[Doc], held: &[Option<HashSet<String>>]) -> Vec<Vec<usize>> {
    docs.iter()
        .map(|d| {
            held.iter()
                .enumerate()
                .filter(|(_, h)| h.as_ref().is_some_and(|h| h.contains(&d.url)))
                .map(|(i, _)| i)
                .collect()
        })
        .collect()
}

/// Which documents have a copy outside `killed`.
fn survives(holders: &[Vec<usize>], killed: &[usize]) -> Vec<bool> {
    holders
        .iter()
        .map(|h| h.iter().any(|p| !killed.contains(p)))
        .collect()
}

/// Sites all of whose documents are lost.
fn sites_lost(docs: &[Doc], alive: &[bool]) -> usize {
    (0..SITES)
        .filter(|s| {
            docs.iter()
                .zip(alive)
                .filter(|(d, _)| d.site == *s)
                .all(|(_, a)| !a)
        })
        .count()
}

/// C(n, k).
fn choose(n: usize, k: usize) -> f64 {
    if k > n {
        return 0.0;
    }
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// Recall random placement predicts: 1 - C(k,R)/C(n,R).
fn random_recall(n: usize, k: usize, r: usize) -> f64 {
    1.0 - choose(k, r) / choose(n, r)
}

/// Over every one of the C(PEERS, k) kill sets, with this run's placement (`holders`): the
/// mean recall, the share of kill sets that lose at least one document, and the worst recall.
fn every_kill_set(holders: &[Vec<usize>], k: usize) -> (f64, f64, f64) {
    // Documents grouped by holder set (a bit mask of peers).
    let mut by_set: HashMap<u32, usize> = HashMap::new();
    for h in holders {
        *by_set
            .entry(h.iter().fold(0u32, |m, p| m | 1 << p))
            .or_default() += 1;
    }
    let total = holders.len() as f64;
    let (mut sets, mut sum, mut lossy, mut worst) = (0u64, 0.0, 0u64, 1.0f64);
    for mask in 0u32..(1 << PEERS) {
        if mask.count_ones() as usize != k {
            continue;
        }
        let lost: usize = by_set
            .iter()
            .filter(|(h, _)| *h & !mask == 0)
            .map(|(_, n)| n)
            .sum();
        let recall = 1.0 - lost as f64 / total;
        sets += 1;
        sum += recall;
        lossy += u64::from(lost > 0);
        worst = worst.min(recall);
    }
    (sum / sets as f64, lossy as f64 / sets as f64, worst)
}

/// Share of kill sets of size `k` that lose at least one of [`SITES`] sites when every site
/// sits on its own independent random R-set of peers.
fn random_lossy(k: usize, r: usize) -> f64 {
    1.0 - random_recall(PEERS, k, r).powi(SITES as i32)
}

/// Distinct holder sets among the sites (sites whose documents disagree count once each).
fn distinct_sets(docs: &[Doc], holders: &[Vec<usize>]) -> usize {
    let mut per_site: BTreeMap<usize, HashSet<Vec<usize>>> = BTreeMap::new();
    for (d, h) in docs.iter().zip(holders) {
        per_site.entry(d.site).or_default().insert(h.clone());
    }
    for (s, sets) in &per_site {
        if sets.len() > 1 {
            eprintln!(
                "WARNING: the documents of site {s} sit on {} different peer sets",
                sets.len()
            );
        }
    }
    per_site.values().flatten().collect::<HashSet<_>>().len()
}

/// Expected distinct R-sets when [`SITES`] sites each pick one of C(PEERS, R) at random.
fn random_distinct(r: usize) -> f64 {
    let m = choose(PEERS, r);
    m * (1.0 - (1.0 - 1.0 / m).powi(SITES as i32))
}

/// `k` distinct peers out of [`PEERS`], chosen by `rng`, sorted.
fn pick(rng: &mut Rng, k: usize) -> Vec<usize> {
    let mut all: Vec<usize> = (0..PEERS).collect();
    for i in 0..k {
        let j = i + rng.below(PEERS - i);
        all.swap(i, j);
    }
    let mut out = all[..k].to_vec();
    out.sort_unstable();
    out
}

/// What a batch of marker queries through one peer found.
struct Recall {
    found: Vec<bool>,
    partial: usize,
    errors: usize,
    min_answered: u64,
    p95_took_ms: u64,
    secs: f64,
}

impl Recall {
    fn rate(&self) -> f64 {
        self.found.iter().filter(|f| **f).count() as f64 / self.found.len() as f64
    }
}

/// Ask `base` (`scope=network`) for every document's marker; a document is found when its URL
/// is among the hits.
async fn recall(client: &reqwest::Client, base: &str, docs: &[Doc]) -> Recall {
    let t = Instant::now();
    let extra = format!("&scope=network&limit=3&timeout_ms={QUERY_TIMEOUT_MS}");
    let results: Vec<Option<(bool, bool, u64, u64)>> = futures::stream::iter(docs.iter())
        .map(|d| {
            let extra = extra.clone();
            async move {
                let (_, v) = timed_search(client, base, &d.marker, &extra).await.ok()?;
                let hit = v["hits"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|h| h["url"].as_str() == Some(&d.url)));
                Some((
                    hit,
                    v["partial"] == true,
                    v["peers"]["answered"].as_u64().unwrap_or(0),
                    v["took_ms"].as_u64().unwrap_or(0),
                ))
            }
        })
        .buffered(IN_FLIGHT)
        .collect()
        .await;
    let partial_at: Vec<usize> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.is_some_and(|r| r.1))
        .map(|(i, _)| i)
        .collect();
    if !partial_at.is_empty() {
        eprintln!("partial answers at queries {partial_at:?}");
    }
    let mut took: Vec<u64> = results.iter().flatten().map(|r| r.3).collect();
    took.sort_unstable();
    Recall {
        found: results.iter().map(|r| r.is_some_and(|r| r.0)).collect(),
        partial: results.iter().flatten().filter(|r| r.1).count(),
        errors: results.iter().filter(|r| r.is_none()).count(),
        min_answered: results.iter().flatten().map(|r| r.2).min().unwrap_or(0),
        p95_took_ms: took
            .get((took.len() * 95 / 100).min(took.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0),
        secs: t.elapsed().as_secs_f64(),
    }
}

/// Rows of (a) for one replication factor, and one row of the crawl table.
async fn recall_for(
    root: &Path,
    r: usize,
    sites: &[Server],
    docs: &[Doc],
    client: &reqwest::Client,
) -> anyhow::Result<(Vec<Vec<String>>, Vec<String>, Vec<Vec<String>>)> {
    let t = Instant::now();
    let mut net = Net::start(root, r, peer_env(NO_REPAIR_MS)).await?;
    let start_s = t.elapsed().as_secs_f64();
    let (crawl_s, copies) = crawl(&net, sites, (TOTAL_DOCS * r) as u64).await?;
    let counts = net.doc_counts().await?;
    let held = holdings(&net, sites, client).await?;
    let who = holders(docs, &held);
    let held_sum: usize = held.iter().flatten().map(HashSet::len).sum();
    let exactly_r = who.iter().filter(|h| h.len() == r).count();
    let anywhere = who.iter().filter(|h| !h.is_empty()).count();
    if held_sum as u64 != copies {
        eprintln!(
            "WARNING: R={r}: site: queries list {held_sum} copies, docs_indexed sums to {copies}"
        );
    }
    let before = recall(client, &net.peers[0].base, docs).await;
    eprintln!(
        "R={r}: started in {start_s:.1} s, crawled {copies} copies in {crawl_s:.1} s, \
         recall before any kill {:.3} ({:.1} s)",
        before.rate(),
        before.secs
    );
    let crawl_row = vec![
        r.to_string(),
        format!("{start_s:.0}"),
        format!("{crawl_s:.0}"),
        format!("{copies} (ideal {})", TOTAL_DOCS * r),
        format!("{anywhere}/{TOTAL_DOCS}"),
        format!("{exactly_r}/{TOTAL_DOCS}"),
        format!("{:.3}", before.rate()),
        format!(
            "{} (independent random: {:.1})",
            distinct_sets(docs, &who),
            random_distinct(r)
        ),
    ];

    let mut rows = Vec::new();
    let mut spread = Vec::new();
    let mut rng = Rng::new(0xC4_0000 + r as u64);
    for (round, &k) in KILLS.iter().enumerate() {
        let killed = pick(&mut rng, k);
        let alive = survives(&who, &killed);
        let predicted = alive.iter().filter(|a| **a).count() as f64 / TOTAL_DOCS as f64;
        let lost_sites = sites_lost(docs, &alive);
        let (mean, lossy, worst) = every_kill_set(&who, k);
        spread.push(vec![
            r.to_string(),
            format!("{k} of {PEERS}"),
            format!("{mean:.3}"),
            format!("{:.3}", random_recall(PEERS, k, r)),
            format!("{:.1} %", 100.0 * lossy),
            format!("{:.1} %", 100.0 * random_lossy(k, r)),
            format!("{worst:.3}"),
        ]);
        let root_i = (0..PEERS)
            .find(|i| !killed.contains(i))
            .expect("a survivor");
        net.kill(&killed);
        let m = recall(client, &net.peers[root_i].base, docs).await;
        // Documents that survived somewhere but were not found, and the reverse.
        let missed = m
            .found
            .iter()
            .zip(&alive)
            .filter(|(f, a)| **a && !**f)
            .count();
        let ghosts = m
            .found
            .iter()
            .zip(&alive)
            .filter(|(f, a)| **f && !**a)
            .count();
        eprintln!(
            "R={r} killed {killed:?}: recall {:.3} (placement {predicted:.3}, random {:.3}), \
             missed {missed}, found-but-lost {ghosts}, partial {}, errors {}, \
             min answered {}, {:.1} s",
            m.rate(),
            random_recall(PEERS, k, r),
            m.partial,
            m.errors,
            m.min_answered,
            m.secs
        );
        let restart_s = if round + 1 < KILLS.len() {
            let s = net
                .restart(&killed, &counts, &docs[0].marker, client)
                .await?;
            eprintln!("R={r}: {k} peers back in {s:.1} s");
            format!("{s:.1}")
        } else {
            "-".into()
        };
        rows.push(vec![
            r.to_string(),
            format!("{k} of {PEERS}"),
            format!("**{:.3}**", m.rate()),
            format!("{predicted:.3}"),
            format!("{:.3}", random_recall(PEERS, k, r)),
            format!("{lost_sites}"),
            format!("{:.2}", SITES as f64 * (1.0 - random_recall(PEERS, k, r))),
            format!("{missed}"),
            format!("{}/{}", m.partial, m.found.len()),
            format!("{}", m.p95_took_ms),
            restart_s,
        ]);
    }
    Ok((rows, crawl_row, spread))
}

/// What the senders' "repairing replica" log lines after `offsets` say.
struct RepairLog {
    /// Lines (one per site repair sent).
    lines: usize,
    /// Distinct (sender, receiver, site).
    by_sender: usize,
    /// Distinct (receiver, site).
    pairs: usize,
    /// Sum of `missing=` (documents sent).
    docs: u64,
    /// Most lines of one sender.
    max_per_sender: usize,
}

fn repair_lines(net: &Net, offsets: &HashMap<usize, usize>) -> RepairLog {
    let mut lines = 0;
    let mut max_per_sender = 0;
    let mut triples = HashSet::new();
    let mut pairs = HashSet::new();
    let mut docs = 0;
    for (i, p) in net.live() {
        let log = std::fs::read(&p.log_path).unwrap_or_default();
        let off = offsets.get(&i).copied().unwrap_or(0).min(log.len());
        let tail = common::strip_ansi(&String::from_utf8_lossy(&log[off..]));
        let mut mine = 0;
        for line in tail.lines().filter(|l| l.contains("repairing replica")) {
            let field = |name: &str| {
                line.split_whitespace()
                    .find_map(|w| w.strip_prefix(name))
                    .map(String::from)
            };
            if let Some(n) = field("missing=").and_then(|n| n.parse::<u64>().ok()) {
                lines += 1;
                mine += 1;
                docs += n;
                triples.insert((i, field("peer="), field("site=")));
                pairs.insert((field("peer="), field("site=")));
            }
        }
        max_per_sender = max_per_sender.max(mine);
    }
    RepairLog {
        lines,
        by_sender: triples.len(),
        pairs: pairs.len(),
        docs,
        max_per_sender,
    }
}

/// (b): one column of the repair table for maintenance period `period_ms`.
async fn repair(
    root: &Path,
    period_ms: u64,
    sites: &[Server],
    docs: &[Doc],
    client: &reqwest::Client,
) -> anyhow::Result<Vec<String>> {
    let r = REPAIR_R;
    let mut net = Net::start(root, r, peer_env(period_ms)).await?;
    let (crawl_s, copies) = crawl(&net, sites, (TOTAL_DOCS * r) as u64).await?;
    let held = holdings(&net, sites, client).await?;
    let who = holders(docs, &held);
    let killed = pick(&mut Rng::new(0x5EED_0000 + period_ms), REPAIR_KILLED);
    let alive = survives(&who, &killed);
    let surviving = alive.iter().filter(|a| **a).count();
    let target = (surviving * r) as u64;
    eprintln!(
        "repair ({period_ms} ms): crawled {copies} copies in {crawl_s:.1} s; killing {killed:?} \
         leaves {surviving} documents, target {target} copies"
    );

    // What the crawl's own pushes cost per copy (they also carry crawl progress: an upper
    // bound of a document's size on the wire).
    let crawl_traffic = net.traffic().await?;
    let crawl_push = crawl_traffic.get(REPLICATE_PROTO).copied().unwrap_or(0) as f64
        / copies.saturating_sub(TOTAL_DOCS as u64).max(1) as f64;
    // Background traffic of the idle network (digest rounds never stop), measured on the
    // future survivors.
    for &i in &killed {
        net.alive[i] = false;
    }
    let quiet = net.traffic().await?;
    let quiet_t = Instant::now();
    tokio::time::sleep(BASELINE).await;
    let before = net.traffic().await?;
    let base_digest_per_s =
        delta(&before, &quiet, DIGEST_PROTO) as f64 / quiet_t.elapsed().as_secs_f64();
    let base_replicate = delta(&before, &quiet, REPLICATE_PROTO);
    let offsets: HashMap<usize, usize> = net
        .live()
        .map(|(i, p)| {
            (
                i,
                std::fs::metadata(&p.log_path).map_or(0, |m| m.len() as usize),
            )
        })
        .collect();
    for &i in &killed {
        net.alive[i] = true;
    }
    let at_kill: u64 = net
        .doc_counts()
        .await?
        .iter()
        .enumerate()
        .filter(|(i, _)| !killed.contains(i))
        .filter_map(|(_, c)| *c)
        .sum();

    let t = Instant::now();
    net.kill(&killed);
    let mut timeline: Vec<(f64, u64)> = vec![(0.0, at_kill)];
    let mut reached: Option<f64> = None;
    let mut calm = 0;
    let mut last = at_kill;
    while t.elapsed() < REPAIR_TIMEOUT {
        let now = net.total_docs().await?;
        if now != last {
            timeline.push((t.elapsed().as_secs_f64(), now));
            last = now;
        }
        if now == target {
            reached.get_or_insert(t.elapsed().as_secs_f64());
            calm += 1;
            if calm >= 4 {
                break;
            }
        } else {
            reached = None;
            calm = 0;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let after = net.traffic().await?;
    let watched = t.elapsed().as_secs_f64();
    eprintln!(
        "repair ({period_ms} ms): survivors' copies over time: {}",
        timeline
            .iter()
            .map(|(s, d)| format!("{s:.1}s={d}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let first_s = timeline.get(1).map(|(s, _)| *s);
    let half_s = timeline
        .iter()
        .find(|(_, d)| d.saturating_sub(at_kill) * 2 >= target.saturating_sub(at_kill))
        .map(|(s, _)| *s);
    let held_after = holdings(&net, sites, client).await?;
    let who_after = holders(docs, &held_after);
    let exactly_r = who_after
        .iter()
        .zip(&alive)
        .filter(|(h, a)| **a && h.len() == r)
        .count();
    let log = repair_lines(&net, &offsets);
    let repair_docs = log.docs;
    let restored = last.saturating_sub(at_kill);
    let rep = delta(&after, &before, REPLICATE_PROTO);
    let dig = delta(&after, &before, DIGEST_PROTO);
    let others: u64 = after
        .keys()
        .filter(|p| p.as_str() != REPLICATE_PROTO && p.as_str() != DIGEST_PROTO)
        .map(|p| delta(&after, &before, p))
        .sum();
    let kib = |b: u64| format!("{:.1}", b as f64 / 1024.0);
    let secs = |s: Option<f64>| s.map_or("-".to_string(), |s| format!("{s:.1} s"));
    let per_copy = |b: u64| {
        if restored == 0 {
            "-".to_string()
        } else {
            format!("{:.0}", b as f64 / restored as f64)
        }
    };
    Ok(vec![
        format!("{crawl_s:.0} s, {copies} copies"),
        format!("{killed:?}"),
        format!(
            "{surviving} of {TOTAL_DOCS} ({} lost)",
            TOTAL_DOCS - surviving
        ),
        format!("{at_kill} → target {target}"),
        secs(first_s),
        secs(half_s),
        match reached {
            Some(s) => format!("**{s:.1} s**"),
            None => format!("not reached in {watched:.0} s ({last} of {target})"),
        },
        format!("{restored}"),
        format!("{exactly_r}/{surviving}"),
        format!("{} ({} B/copy)", kib(rep), per_copy(rep)),
        format!("{:.0} B", rep as f64 / repair_docs.max(1) as f64),
        format!("{crawl_push:.0} B"),
        format!("{} ({} B/copy)", kib(dig), per_copy(dig)),
        format!(
            "{:.1} KiB/s digest, {} KiB replicate",
            base_digest_per_s / 1024.0,
            kib(base_replicate)
        ),
        format!(
            "{:.1} KiB",
            (dig as f64 - base_digest_per_s * watched) / 1024.0
        ),
        format!("{} ({} B/copy)", kib(rep + dig), per_copy(rep + dig)),
        kib(others),
        format!(
            "{} for {} (receiver, site) pairs: {} again by the same sender, {} by a second sender; most by one sender {}",
            log.lines,
            log.pairs,
            log.lines - log.by_sender,
            log.by_sender - log.pairs,
            log.max_per_sender
        ),
        format!(
            "{repair_docs} for {restored} copies ({:.2}x)",
            repair_docs as f64 / restored.max(1) as f64
        ),
    ])
}

async fn run() -> anyhow::Result<()> {
    common::require_peer_binary()?;
    let started = Instant::now();
    let tmp = tempfile::tempdir()?;
    let (sites, _logs) = linked_sites(SITES, PAGES).await?;
    let docs = documents(&sites);
    let client = keep_alive_client();

    let mut recall_rows = Vec::new();
    let mut crawl_rows = Vec::new();
    let mut spread_rows = Vec::new();
    for r in REPLICATIONS {
        let (rows, crawl_row, spread) =
            recall_for(&tmp.path().join(format!("r{r}")), r, &sites, &docs, &client).await?;
        recall_rows.extend(rows);
        spread_rows.extend(spread);
        crawl_rows.push(crawl_row);
        eprintln!("elapsed {:.0} s", started.elapsed().as_secs_f64());
    }
    print_table(
        &format!(
            "(a) the networks: {PEERS} peers, {TOTAL_DOCS} documents on {SITES} sites, one crawl per R"
        ),
        &[
            "R",
            "start s",
            "crawl s",
            "copies (sum of docs_indexed)",
            "documents held somewhere",
            "documents on exactly R peers",
            "recall before any kill",
            "distinct holder sets of the 40 sites",
        ],
        &crawl_rows,
    );
    print_table(
        &format!(
            "(a) recall right after kill -9 (no repair: maintenance every {} s), {TOTAL_DOCS} marker queries through a survivor, scope=network",
            NO_REPAIR_MS / 1000
        ),
        &[
            "R",
            "killed",
            "recall measured",
            "placement of this run predicts",
            "random placement predicts",
            "sites lost (this run)",
            "sites lost (random, expected)",
            "surviving documents not found",
            "partial answers",
            "p95 took_ms",
            "restart s",
        ],
        &recall_rows,
    );
    print_table(
        "(a) the same placements over every kill set of the same size (computed from the holders, not measured)",
        &[
            "R",
            "killed",
            "mean recall, this placement",
            "1 - C(k,R)/C(n,R)",
            "kill sets losing a site, this placement",
            "same, independent random placement of 40 sites",
            "worst kill set's recall, this placement",
        ],
        &spread_rows,
    );

    let mut columns = Vec::new();
    for period in REPAIR_PERIODS_MS {
        columns.push(
            repair(
                &tmp.path().join(format!("repair{period}")),
                period,
                &sites,
                &docs,
                &client,
            )
            .await?,
        );
        eprintln!("elapsed {:.0} s", started.elapsed().as_secs_f64());
    }
    let labels = [
        "crawl (fresh network)",
        "killed peers",
        "documents with a surviving copy",
        "copies on the survivors at the kill",
        "first new copy after",
        "half the missing copies after",
        "every surviving document on R survivors after",
        "copies restored",
        "surviving documents on exactly R survivors (site: queries)",
        "replicate KiB sent (survivors)",
        "replicate bytes per document sent",
        "(the crawl's own pushes: replicate bytes per pushed copy, with crawl progress)",
        "digest KiB sent (survivors)",
        "idle background before the kill",
        "digest above the idle background",
        "replicate + digest KiB",
        "other protocols KiB",
        "senders' `repairing replica` lines (site repairs)",
        "documents sent (`missing=` summed)",
    ];
    let rows: Vec<Vec<String>> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| {
            std::iter::once(l.to_string())
                .chain(columns.iter().map(|c| c[i].clone()))
                .collect()
        })
        .collect();
    let headers: Vec<String> = std::iter::once(String::new())
        .chain(
            REPAIR_PERIODS_MS
                .iter()
                .map(|p| format!("maintenance every {p} ms")),
        )
        .collect();
    let header_refs: Vec<&str> = headers.iter().map(String::as_str).collect();
    print_table(
        &format!(
            "(b) R={REPAIR_R}: {REPAIR_KILLED} of {PEERS} peers killed, until every surviving document is on R survivors"
        ),
        &header_refs,
        &rows,
    );
    eprintln!("total {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn main() -> anyhow::Result<()> {
    common::run_on_runtime(run())
}
