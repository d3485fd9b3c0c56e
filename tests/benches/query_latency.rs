//! Query latency of one peer: a 20 000-document shard of the Rust docs built with the indexer
//! straight into `<data dir>/index` (outside the timing), then 1 000 deterministic queries
//! (page titles and common terms) through `GET /api/search?scope=local` over one keep-alive
//! HTTP connection, and the same queries through `Shard::search` in-process (the leaf alone).
//!
//! `cargo bench -p peersearch-node --bench query_latency`
//! (`BENCH_DOCS=N` to change the corpus size).

mod common;

use common::{
    Latency, corpus_queries, keep_alive_client, ms, print_table, require_peer_binary,
    rust_docs_corpus, timed_search,
};
use peersearch_indexer::Shard;
use peersearch_tests::harness::{PeerOptions, PeerProcess};
use std::time::{Duration, Instant};

/// Documents in the shard.
const DEFAULT_DOCS: usize = 20_000;
/// Measured queries.
const QUERIES: usize = 1_000;
/// Queries run before measuring (page cache, allocator, connection).
const WARMUP: usize = 100;
/// Hits asked for, as the web UI does (the API default).
const LIMIT: usize = 10;
/// Documents between two commits while building the shard.
const BUILD_COMMIT_EVERY: usize = 1_000;

/// One in-process pass over every query.
struct LeafRun {
    /// Latency of each measured query.
    lat: Vec<Duration>,
    /// Measured queries with at least one hit.
    hits: usize,
    /// URL of the best hit of each measured query.
    tops: Vec<Option<String>>,
    /// Searchable segments of the shard.
    segments: usize,
}

/// Open the shard in `dir` and run `queries` (the first [`WARMUP`] not measured).
fn leaf_run(dir: &std::path::Path, queries: &[String]) -> anyhow::Result<LeafRun> {
    let shard = Shard::open(dir)?;
    let mut out = LeafRun {
        lat: Vec::with_capacity(QUERIES),
        hits: 0,
        tops: Vec::with_capacity(QUERIES),
        segments: shard.index().searchable_segment_ids()?.len(),
    };
    for (i, q) in queries.iter().enumerate() {
        let t = Instant::now();
        let r = shard.search(q, LIMIT, None)?;
        let took = t.elapsed();
        if i >= WARMUP {
            out.lat.push(took);
            out.hits += usize::from(!r.hits.is_empty());
            out.tops.push(r.hits.first().map(|h| h.url.clone()));
        }
    }
    Ok(out)
}

async fn run() -> anyhow::Result<()> {
    require_peer_binary()?;
    let n = std::env::var("BENCH_DOCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_DOCS);
    let docs = rust_docs_corpus(n)?;
    let queries = corpus_queries(&docs, QUERIES + WARMUP, 0x5EED);
    let tmp = tempfile::tempdir()?;
    let data_dir = tmp.path().join("peer");

    // Build the shard (not timed), then measure the leaf in-process on it.
    let built = Instant::now();
    let shard = Shard::open(&data_dir.join("index"))?;
    for (i, d) in docs.iter().enumerate() {
        shard.upsert(d)?;
        if (i + 1) % BUILD_COMMIT_EVERY == 0 {
            shard.commit()?;
        }
    }
    shard.commit()?;
    let num_docs = shard.num_docs();
    let index_mib = shard.size_bytes() as f64 / (1 << 20) as f64;
    eprintln!(
        "shard: {num_docs} docs, {index_mib:.1} MiB, built in {:.1?}",
        built.elapsed()
    );
    drop(docs);
    // The building writer may still be merging in the background, which would compete with
    // the measured searches: drop it; each measurement reopens the segments on disk as they
    // are (the peer opens the same ones).
    drop(shard);
    let before = leaf_run(&data_dir.join("index"), &queries)?;
    eprintln!("in-process, before the peer: {} segments", before.segments);

    let peer = PeerProcess::spawn(
        &data_dir,
        &PeerOptions {
            args: common::args(&["--replication", "1"]),
            ..PeerOptions::default()
        },
    )
    .await?;
    let st = peer
        .wait_status(Duration::from_secs(60), |st| {
            st["docs_indexed"].as_u64() == Some(num_docs)
        })
        .await?;
    let rss_start = peer.peak_rss_kib().unwrap_or(0);
    eprintln!(
        "peer up: {} docs, peak RSS so far {} MiB",
        st["docs_indexed"],
        rss_start / 1024
    );

    let client = keep_alive_client();
    let extra = format!("&scope=local&limit={LIMIT}");
    let mut http = Vec::with_capacity(QUERIES);
    let mut http_hits = 0usize;
    let mut same_top = 0usize;
    let started = Instant::now();
    for (i, q) in queries.iter().enumerate() {
        let (took, v) = timed_search(&client, &peer.base, q, &extra).await?;
        if i >= WARMUP {
            http.push(took);
            let top = v["hits"][0]["url"].as_str().map(String::from);
            http_hits += usize::from(top.is_some());
            same_top += usize::from(top == before.tops[i - WARMUP]);
        }
    }
    let http_secs = started.elapsed().as_secs_f64();
    let rss_peak = peer.peak_rss_kib().unwrap_or(0);

    // The peer holds the shard's writer lock: stop it before measuring the leaf again.
    drop(peer);
    let after = leaf_run(&data_dir.join("index"), &queries)?;

    let l = Latency::of(&before.lat);
    let l2 = Latency::of(&after.lat);
    let h = Latency::of(&http);
    let row = |name: &str, x: &Latency, hits: usize| {
        vec![
            name.to_string(),
            x.n.to_string(),
            ms(x.p50),
            ms(x.p99),
            ms(x.mean),
            format!("{hits}"),
        ]
    };
    print_table(
        &format!(
            "{QUERIES} queries on a {num_docs}-document Rust-docs shard ({index_mib:.0} MiB, {} segments), limit {LIMIT}",
            before.segments
        ),
        &[
            "path",
            "queries",
            "p50 ms",
            "p99 ms",
            "mean ms",
            "queries with hits",
        ],
        &[
            row(
                "Shard::search in-process (leaf only), before",
                &l,
                before.hits,
            ),
            row(
                "GET /api/search?scope=local (keep-alive HTTP)",
                &h,
                http_hits,
            ),
            row(
                "Shard::search in-process (leaf only), after",
                &l2,
                after.hits,
            ),
        ],
    );
    println!(
        "http/leaf p50 ratio {:.2}, p99 ratio {:.2} (leaf = the mean of before and after); sequential HTTP throughput {:.0} queries/s",
        2.0 * h.p50.as_secs_f64() / (l.p50 + l2.p50).as_secs_f64(),
        2.0 * h.p99.as_secs_f64() / (l.p99 + l2.p99).as_secs_f64(),
        (QUERIES + WARMUP) as f64 / http_secs
    );
    println!(
        "peer peak RSS (VmHWM): {} MiB after start, {} MiB after the queries",
        rss_start / 1024,
        rss_peak / 1024
    );
    // Both paths search the same shard with its own statistics: the best hit must agree.
    println!("same top hit over HTTP as in-process: {same_top}/{QUERIES}");
    Ok(())
}

fn main() -> anyhow::Result<()> {
    common::run_on_runtime(run())
}
