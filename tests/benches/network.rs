//! The overlay on loopback, every figure measured beside its reference in the same run:
//!
//! - (a) query latency of an 8-peer network (R=1) against one peer holding the same
//!   documents (`scope=local`), and that single peer with `scope=network` (the fan-out
//!   machinery with nobody to ask);
//! - (b) how network latency grows with 2, 4, 8 and 16 peers (a fresh network each size,
//!   the same corpus and queries);
//! - (c) p2p bytes per query of all peers together (search and stats protocols), from
//!   `/metrics` before and after the batch;
//! - (d) a peer joining a 7-peer network: the time until its document count stops growing,
//!   and the replicate/digest traffic it caused;
//! - (e) the measured queries twice to one root of the 8-peer network: the second pass finds
//!   the terms of the first in the root's statistics cache (latency, rounds, stats bytes).
//!
//! The corpus is `linked_sites(16, 60)`: 16 loopback sites of 61 pages, 976 documents, seeded
//! with one home page and crawled by the reference peer and by every network.
//!
//! `cargo bench -p peersearch-node --bench network` (`BENCH_SIZES=8` for some sizes of (b)
//! only, `BENCH_SKIP_JOIN=1` to leave (d) out)

mod common;

use common::{Latency, args, keep_alive_client, ms, p2p_counters, print_table, timed_search};
use peersearch_tests::fixture::{FetchLog, Rng, Server, linked_sites, marker};
use peersearch_tests::harness::{PeerOptions, PeerProcess, wait_mesh, wait_network_idle};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Sites of the corpus.
const SITES: usize = 16;
/// Generated pages per site (plus the home page).
const PAGES: usize = 60;
/// Documents the corpus yields.
const TOTAL_DOCS: u64 = (SITES * (PAGES + 1)) as u64;
/// Network sizes of (b); (a) is the 8-peer one.
const SIZES: [usize; 4] = [2, 4, 8, 16];
/// Measured queries per series.
const QUERIES: usize = 300;
/// Queries per series before measuring (connections, caches).
const WARMUP: usize = 30;
/// Query deadline asked of the API (the default is 2 000 ms; a loaded 2-core box can be slow
/// to start 16 processes' worth of work, and a partial answer would time something else).
const QUERY_TIMEOUT_MS: u64 = 5_000;
/// Peers already in the network when one more joins in (d).
const JOIN_BASE: usize = 7;
/// Maintenance period of the peers of (d) (`PEERSEARCH_MAINTENANCE_INTERVAL_MS`; default 5 s).
const JOIN_MAINTENANCE_MS: &str = "1000";
/// The joiner's document count must stay still this long to count as settled.
const JOIN_SETTLED_AFTER: Duration = Duration::from_secs(10);
/// Bound of the join measurement.
const JOIN_TIMEOUT: Duration = Duration::from_secs(180);
/// Bound of one crawl of the corpus.
const CRAWL_TIMEOUT: Duration = Duration::from_secs(600);
/// Documents per replication message at most (`node/src/replication/out.rs`, `BATCH_DOCS`; a
/// message is also cut at 8 MiB, which this corpus's pages never reach).
const REPAIR_BATCH: u64 = 512;

const SEARCH_PROTO: &str = "/peersearch/search/1.0.0";
const STATS_PROTO: &str = "/peersearch/stats/1.0.0";
const SENT: &str = "peersearch_p2p_bytes_sent_total";
const RECEIVED: &str = "peersearch_p2p_bytes_received_total";

fn peer_args() -> Vec<String> {
    args(&[
        "--allow-private-addresses",
        "--crawl-rate",
        "200",
        "--fetch-timeout-secs",
        "5",
        "--replication",
        "1",
    ])
}

/// Deterministic queries: fixture words alone and in pairs, page markers (known items), and a
/// word with a marker.
fn queries(n: usize) -> Vec<String> {
    let mut rng = Rng::new(0xBEEF);
    (0..n)
        .map(|i| {
            let site = 100 + rng.below(SITES);
            let page = rng.below(PAGES);
            match i % 4 {
                0 => rng.word().to_string(),
                1 => format!("{} {}", rng.word(), rng.word()),
                2 => marker(site, page),
                _ => format!("{} {}", rng.word(), marker(site, page)),
            }
        })
        .collect()
}

/// `n` peers under `root`, the first alone and the others bootstrapping from it, with `env`;
/// waits until every peer knows every other.
async fn start_peers(
    root: &Path,
    n: usize,
    env: &[(String, String)],
) -> anyhow::Result<Vec<PeerProcess>> {
    let mut peers: Vec<PeerProcess> = Vec::new();
    for i in 0..n {
        let mut a = peer_args();
        if let Some(first) = peers.first() {
            a.push("--bootstrap".into());
            a.push(first.p2p_addr());
        }
        peers.push(
            PeerProcess::spawn(
                &root.join(format!("peer-{i}")),
                &PeerOptions {
                    args: a,
                    env: env.to_vec(),
                },
            )
            .await?,
        );
    }
    wait_mesh(&peers, n - 1).await?;
    Ok(peers)
}

async fn total_docs(peers: &[PeerProcess]) -> anyhow::Result<u64> {
    let mut total = 0;
    for p in peers {
        let st: Value = p.get_json("/api/status").await?;
        total += st["docs_indexed"].as_u64().unwrap_or(0);
    }
    Ok(total)
}

/// Seed the first home on `peers[0]`, wait until the whole network is idle; the seconds it
/// took and the documents indexed by all peers together.
async fn crawl(peers: &[PeerProcess], sites: &[Server]) -> anyhow::Result<(f64, u64)> {
    let t = Instant::now();
    let (status, body) = peers[0]
        .post_json(
            "/api/crawl",
            &serde_json::json!({ "urls": [sites[0].url("/")] }),
        )
        .await?;
    anyhow::ensure!(status == 202, "seeding answered {status}: {body}");
    wait_network_idle(peers, CRAWL_TIMEOUT).await?;
    let docs = total_docs(peers).await?;
    if docs != TOTAL_DOCS {
        eprintln!(
            "WARNING: {} peers hold {docs} documents, expected {TOTAL_DOCS}",
            peers.len()
        );
    }
    Ok((t.elapsed().as_secs_f64(), docs))
}

/// Bytes sent and received per protocol, summed over `peers`.
async fn traffic(peers: &[PeerProcess]) -> anyhow::Result<BTreeMap<String, (u64, u64)>> {
    let mut out: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for p in peers {
        for (proto, v) in p2p_counters(p, SENT).await? {
            out.entry(proto).or_default().0 += v;
        }
        for (proto, v) in p2p_counters(p, RECEIVED).await? {
            out.entry(proto).or_default().1 += v;
        }
    }
    Ok(out)
}

fn delta(
    after: &BTreeMap<String, (u64, u64)>,
    before: &BTreeMap<String, (u64, u64)>,
    proto: &str,
) -> (u64, u64) {
    let a = after.get(proto).copied().unwrap_or_default();
    let b = before.get(proto).copied().unwrap_or_default();
    (a.0.saturating_sub(b.0), a.1.saturating_sub(b.1))
}

/// One measured series: where its queries go and what came back.
struct Series {
    name: String,
    bases: Vec<String>,
    extra: String,
    lat: Vec<Duration>,
    partial: usize,
    tops: Vec<Vec<String>>,
    /// Answers by the `rounds` they report (`-` for a peer too old to report it).
    rounds: BTreeMap<String, usize>,
}

impl Series {
    fn new(name: &str, peers: &[&PeerProcess], scope: &str) -> Series {
        Series {
            name: name.to_string(),
            bases: peers.iter().map(|p| p.base.clone()).collect(),
            extra: format!("&scope={scope}&limit=10&timeout_ms={QUERY_TIMEOUT_MS}"),
            lat: Vec::new(),
            partial: 0,
            tops: Vec::new(),
            rounds: BTreeMap::new(),
        }
    }
}

/// Run every query on every series, interleaved (query i on series 1, 2, ... then query
/// i+1), so that load from elsewhere on the machine hits all series alike. A network series
/// sends query i to its peer `i % len`.
async fn run_series(
    client: &reqwest::Client,
    series: &mut [Series],
    qs: &[String],
    record: bool,
) -> anyhow::Result<()> {
    for (i, q) in qs.iter().enumerate() {
        for s in series.iter_mut() {
            let base = &s.bases[i % s.bases.len()];
            let (took, v) = timed_search(client, base, q, &s.extra).await?;
            if record {
                s.lat.push(took);
                s.partial += usize::from(v["partial"] == true);
                let rounds = v["rounds"].as_u64().map_or("-".into(), |r| r.to_string());
                *s.rounds.entry(rounds).or_default() += 1;
                s.tops.push(
                    v["hits"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|h| h["url"].as_str().map(String::from))
                                .collect()
                        })
                        .unwrap_or_default(),
                );
            }
        }
    }
    Ok(())
}

/// How many of `s`'s answers list exactly the reference's top 10.
fn same_as(s: &Series, reference: &Series) -> usize {
    s.tops
        .iter()
        .zip(&reference.tops)
        .filter(|(a, b)| a == b)
        .count()
}

struct SizeResult {
    peers: usize,
    crawl_s: f64,
    docs: u64,
    net: Latency,
    local: Latency,
    partial: usize,
    same: usize,
    search_sent: u64,
    stats_sent: u64,
    search_recv: u64,
    stats_recv: u64,
}

/// (e): `qs` twice to the first peer of `peers` alone, the rows of the table.
async fn one_root(
    client: &reqwest::Client,
    peers: &[PeerProcess],
    qs: &[String],
) -> anyhow::Result<Vec<Vec<String>>> {
    let mut rows = Vec::new();
    for pass in 1..=2 {
        let mut series = vec![Series::new("one root", &[&peers[0]], "network")];
        let before = traffic(peers).await?;
        run_series(client, &mut series, qs, true).await?;
        let after = traffic(peers).await?;
        let q = qs.len() as u64;
        let x = Latency::of(&series[0].lat);
        let rounds: Vec<String> = series[0]
            .rounds
            .iter()
            .map(|(r, n)| format!("{r}: {n}"))
            .collect();
        rows.push(vec![
            pass.to_string(),
            ms(x.p50),
            ms(x.p99),
            rounds.join(", "),
            (delta(&after, &before, STATS_PROTO).0 / q).to_string(),
            (delta(&after, &before, SEARCH_PROTO).0 / q).to_string(),
        ]);
    }
    Ok(rows)
}

/// (d): one more peer joins a crawled network of [`JOIN_BASE`].
async fn join(
    root: &Path,
    sites: &[Server],
    logs: &[FetchLog],
) -> anyhow::Result<Vec<Vec<String>>> {
    let env = vec![
        (
            "PEERSEARCH_MAINTENANCE_INTERVAL_MS".to_string(),
            JOIN_MAINTENANCE_MS.to_string(),
        ),
        (
            "RUST_LOG".to_string(),
            "info,peersearch_node::replication::maintenance=debug".to_string(),
        ),
    ];
    let mut peers = start_peers(root, JOIN_BASE, &env).await?;
    let (crawl_s, docs) = crawl(&peers, sites).await?;
    eprintln!("join: {JOIN_BASE} peers crawled {docs} docs in {crawl_s:.1} s");
    // Let maintenance settle before the join (with R=1 there is nothing to repair).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = traffic(&peers).await?;
    let log_offsets: Vec<usize> = peers
        .iter()
        .map(|p| std::fs::metadata(&p.log_path).map_or(0, |m| m.len() as usize))
        .collect();
    for l in logs {
        l.reset();
    }

    let t = Instant::now();
    let mut a = peer_args();
    a.push("--bootstrap".into());
    a.push(peers[0].p2p_addr());
    let joiner = PeerProcess::spawn(
        &root.join(format!("peer-{JOIN_BASE}")),
        &PeerOptions { args: a, env },
    )
    .await?;
    let up_s = t.elapsed().as_secs_f64();
    let mut meshed_s = None;
    let mut last_docs = 0u64;
    let mut last_change = t.elapsed();
    let mut first_doc_s = None;
    let mut timeline: Vec<(f64, u64)> = Vec::new();
    while t.elapsed() < JOIN_TIMEOUT {
        let st: Value = joiner.get_json("/api/status").await?;
        let d = st["docs_indexed"].as_u64().unwrap_or(0);
        if meshed_s.is_none() && st["routing_table_size"].as_u64().unwrap_or(0) >= JOIN_BASE as u64
        {
            meshed_s = Some(t.elapsed().as_secs_f64());
        }
        if d != last_docs {
            last_docs = d;
            last_change = t.elapsed();
            first_doc_s.get_or_insert(t.elapsed().as_secs_f64());
            timeline.push((t.elapsed().as_secs_f64(), d));
        }
        if d > 0 && t.elapsed() - last_change >= JOIN_SETTLED_AFTER {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let settled = last_docs > 0 && t.elapsed() - last_change >= JOIN_SETTLED_AFTER;
    eprintln!(
        "join: joiner's documents over time: {}",
        timeline
            .iter()
            .map(|(s, d)| format!("{s:.1}s={d}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    // When the joiner first held half of its final share.
    let half_s = timeline
        .iter()
        .find(|(_, d)| *d * 2 >= last_docs)
        .map_or("-".into(), |(s, _)| format!("{s:.2} s"));
    peers.push(joiner);
    let after = traffic(&peers).await?;
    let total_after = total_docs(&peers).await?;
    let received = common::metric_value(
        &peers[JOIN_BASE],
        "peersearch_crawl_pages_total{outcome=\"replica_received\"}",
    )
    .await?;
    let refetched: u64 = logs
        .iter()
        .map(|l| {
            u64::from(l.total())
                - u64::from(l.count("/robots.txt"))
                - u64::from(l.count("/sitemap.xml"))
        })
        .sum();

    // Replication messages, from the senders' "repairing replica ... missing=N" lines.
    let mut repairs = 0u64;
    let mut repair_msgs = 0u64;
    for (p, off) in peers
        .iter()
        .zip(log_offsets.iter().chain(std::iter::once(&0)))
    {
        let log = std::fs::read(&p.log_path).unwrap_or_default();
        let tail = common::strip_ansi(&String::from_utf8_lossy(&log[(*off).min(log.len())..]));
        for line in tail.lines().filter(|l| l.contains("repairing replica")) {
            if let Some(n) = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("missing="))
                .and_then(|n| n.parse::<u64>().ok())
            {
                repairs += 1;
                repair_msgs += n.div_ceil(REPAIR_BATCH);
            }
        }
    }
    let rep = delta(&after, &before, "/peersearch/replicate/1.0.0");
    let dig = delta(&after, &before, "/peersearch/digest/1.0.0");
    let hand = delta(&after, &before, "/peersearch/handoff/1.0.0");
    let kib = |b: u64| format!("{:.1}", b as f64 / 1024.0);
    let rows = vec![
        vec!["joiner's API up after".into(), format!("{up_s:.2} s")],
        vec![
            format!("joiner knows all {JOIN_BASE} peers after"),
            meshed_s.map_or("-".into(), |s| format!("{s:.2} s")),
        ],
        vec![
            "first document after".into(),
            first_doc_s.map_or("-".into(), |s| format!("{s:.2} s")),
        ],
        vec!["half of them after".into(), half_s],
        vec![
            "documents stop growing after".into(),
            if settled {
                format!("{:.2} s", last_change.as_secs_f64())
            } else {
                format!("not settled in {JOIN_TIMEOUT:?}")
            },
        ],
        vec![
            "joiner's documents (share of the corpus)".into(),
            format!(
                "{last_docs} of {TOTAL_DOCS} ({:.0}%; an even share is {:.0})",
                100.0 * last_docs as f64 / TOTAL_DOCS as f64,
                TOTAL_DOCS as f64 / (JOIN_BASE + 1) as f64
            ),
        ],
        vec![
            "documents received as replicas (joiner's metric)".into(),
            received.to_string(),
        ],
        vec![
            "documents in the network after the join".into(),
            format!("{total_after} (expected {TOTAL_DOCS})"),
        ],
        vec![
            "pages fetched again from the sites".into(),
            refetched.to_string(),
        ],
        vec![
            "replicate: KiB sent / received (all peers)".into(),
            format!("{} / {}", kib(rep.0), kib(rep.1)),
        ],
        vec![
            "replicate: messages (from `repairing replica` log lines)".into(),
            format!("{repair_msgs} in {repairs} site repairs"),
        ],
        vec![
            "digest: KiB sent / received (all peers)".into(),
            format!("{} / {}", kib(dig.0), kib(dig.1)),
        ],
        vec![
            "handoff: KiB sent / received (all peers)".into(),
            format!("{} / {}", kib(hand.0), kib(hand.1)),
        ],
    ];
    drop(peers);
    Ok(rows)
}

async fn run() -> anyhow::Result<()> {
    common::require_peer_binary()?;
    let tmp = tempfile::tempdir()?;
    let (sites, logs) = linked_sites(SITES, PAGES).await?;
    let client = keep_alive_client();
    let qs = queries(QUERIES + WARMUP);
    let (warm, measured) = qs.split_at(WARMUP);

    // The reference: one peer that crawls everything alone.
    let reference = PeerProcess::spawn(
        &tmp.path().join("reference"),
        &PeerOptions {
            args: peer_args(),
            ..PeerOptions::default()
        },
    )
    .await?;
    let (ref_crawl_s, ref_docs) = crawl(std::slice::from_ref(&reference), &sites).await?;
    eprintln!("reference: {ref_docs} docs in {ref_crawl_s:.1} s");

    let mut sizes = Vec::new();
    let mut part_a = Vec::new();
    let mut part_e = Vec::new();
    for n in bench_sizes()? {
        let root = tmp.path().join(format!("net{n}"));
        let peers = start_peers(&root, n, &[]).await?;
        let (crawl_s, docs) = crawl(&peers, &sites).await?;
        eprintln!("{n} peers: {docs} docs in {crawl_s:.1} s");
        let net_peers: Vec<&PeerProcess> = peers.iter().collect();
        let mut series = vec![
            Series::new("one peer, scope=local", &[&reference], "local"),
            Series::new("one peer, scope=network", &[&reference], "network"),
            Series::new(&format!("{n} peers, scope=network"), &net_peers, "network"),
        ];
        run_series(&client, &mut series, warm, false).await?;
        let before = traffic(&peers).await?;
        run_series(&client, &mut series, measured, true).await?;
        let after = traffic(&peers).await?;
        let search = delta(&after, &before, SEARCH_PROTO);
        let stats = delta(&after, &before, STATS_PROTO);
        let q = measured.len() as u64;
        let [local, _, net] = &series[..] else {
            unreachable!("three series")
        };
        sizes.push(SizeResult {
            peers: n,
            crawl_s,
            docs,
            net: Latency::of(&net.lat),
            local: Latency::of(&local.lat),
            partial: net.partial,
            same: same_as(net, local),
            search_sent: search.0 / q,
            stats_sent: stats.0 / q,
            search_recv: search.1 / q,
            stats_recv: stats.1 / q,
        });
        if n == 8 {
            part_e = one_root(&client, &peers, measured).await?;
            let l = Latency::of(&local.lat);
            for s in &series {
                let x = Latency::of(&s.lat);
                part_a.push(vec![
                    s.name.clone(),
                    ms(x.p50),
                    ms(x.p99),
                    ms(x.mean),
                    format!("{:.2}", x.p50.as_secs_f64() / l.p50.as_secs_f64()),
                    format!("{:.2}", x.p99.as_secs_f64() / l.p99.as_secs_f64()),
                    s.partial.to_string(),
                    format!("{}/{}", same_as(s, local), s.tops.len()),
                    s.rounds
                        .iter()
                        .map(|(r, n)| format!("{r}: {n}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                ]);
            }
        }
        drop(series);
        drop(peers);
    }

    print_table(
        &format!(
            "(a) {} queries: an 8-peer network (R=1) against one peer with the same {TOTAL_DOCS} documents",
            measured.len()
        ),
        &[
            "series",
            "p50 ms",
            "p99 ms",
            "mean ms",
            "p50 / local",
            "p99 / local",
            "partial",
            "same top 10 as local",
            "answers by rounds",
        ],
        &part_a,
    );
    let rows: Vec<Vec<String>> = sizes
        .iter()
        .map(|s| {
            vec![
                s.peers.to_string(),
                format!("{} ({:.0} s)", s.docs, s.crawl_s),
                ms(s.net.p50),
                ms(s.net.p99),
                ms(s.local.p50),
                format!("{:.2}", s.net.p50.as_secs_f64() / s.local.p50.as_secs_f64()),
                format!("{:.2}", s.net.p99.as_secs_f64() / s.local.p99.as_secs_f64()),
                s.partial.to_string(),
                format!("{}/{}", s.same, measured.len()),
            ]
        })
        .collect();
    print_table(
        "(b) network latency by size (fresh network each, same corpus and queries; local = the one peer, same window)",
        &[
            "peers",
            "docs (crawl)",
            "network p50 ms",
            "network p99 ms",
            "local p50 ms",
            "p50 / local",
            "p99 / local",
            "partial",
            "same top 10 as local",
        ],
        &rows,
    );
    let rows: Vec<Vec<String>> = sizes
        .iter()
        .map(|s| {
            vec![
                s.peers.to_string(),
                s.search_sent.to_string(),
                s.stats_sent.to_string(),
                (s.search_sent + s.stats_sent).to_string(),
                format!("{} / {}", s.search_recv, s.stats_recv),
            ]
        })
        .collect();
    print_table(
        "(c) p2p bytes per query, all peers together",
        &[
            "peers",
            "search sent B/query",
            "stats sent B/query",
            "total sent B/query",
            "received B/query (search / stats)",
        ],
        &rows,
    );

    print_table(
        &format!(
            "(e) the same {} queries twice to one root of the 8-peer network (its statistics cache holds the terms of the first pass in the second)",
            measured.len()
        ),
        &[
            "pass",
            "p50 ms",
            "p99 ms",
            "answers by rounds",
            "stats sent B/query",
            "search sent B/query",
        ],
        &part_e,
    );
    if std::env::var_os("BENCH_SKIP_JOIN").is_some() {
        drop(reference);
        return Ok(());
    }
    let rows = join(&tmp.path().join("join"), &sites, &logs).await?;
    print_table(
        &format!(
            "(d) one peer joins a crawled {JOIN_BASE}-peer network (R=1, maintenance every {JOIN_MAINTENANCE_MS} ms on every peer)"
        ),
        &["", "value"],
        &rows,
    );
    drop(reference);
    Ok(())
}

/// The network sizes of (b): `BENCH_SIZES` (e.g. `8` or `4,8`), else [`SIZES`].
fn bench_sizes() -> anyhow::Result<Vec<usize>> {
    match std::env::var("BENCH_SIZES") {
        Ok(list) => list
            .split(',')
            .map(|n| {
                n.trim()
                    .parse()
                    .map_err(|e| anyhow::anyhow!("BENCH_SIZES {list:?}: {e}"))
            })
            .collect(),
        Err(_) => Ok(SIZES.to_vec()),
    }
}

fn main() -> anyhow::Result<()> {
    common::run_on_runtime(run())
}
