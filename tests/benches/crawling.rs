//! Crawl throughput: pages per second of one peer crawling a 2 000-page fixture spread over 20
//! loopback sites (seeded with one home page; the homes link to each other), against GNU wget
//! recursing over the same sites in the same run.
//!
//! wget follows links to other ports of the same host without `--span-hosts` (it compares host
//! names only), so one `wget --recursive` from one home crawls all 20 sites, one request at a
//! time: that is the "sequential" variant. The "parallel" variant runs 20 wgets at once, each
//! kept to its own site with `--reject-regex` on the other sites' ports. The peer fetches with
//! up to 32 requests in flight, and also extracts and indexes every page (wget only downloads
//! and parses links).
//!
//! `cargo bench -p peersearch-node --bench crawling`

mod common;

use common::{args, print_table, require_peer_binary};
use peersearch_tests::fixture::{FetchLog, Server, linked_sites};
use peersearch_tests::harness::{PeerOptions, PeerProcess};
use peersearch_tests::need;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// Sites in the fixture.
const SITES: usize = 20;
/// Generated pages per site; with the home page, 100 pages per site and 2 000 in all.
const PAGES: usize = 99;
/// Each variant runs this many times, alternating, so drift on the shared machine hits all.
const ROUNDS: usize = 3;
/// Bound of one crawl of the whole fixture (a peer manages it in seconds).
const CRAWL_TIMEOUT: Duration = Duration::from_secs(300);
/// How long the peer idles after its crawl before its resident memory is read.
const IDLE_FOR: Duration = Duration::from_secs(10);
/// How often the peer's status is polled during its crawl.
const POLL_EVERY: Duration = Duration::from_millis(50);

struct Outcome {
    variant: String,
    pages: u64,
    secs: f64,
    note: String,
}

fn reset(logs: &[FetchLog]) {
    for l in logs {
        l.reset();
    }
}

/// Pages requested from the fixture (robots.txt excluded) and how many of them more than once.
fn fetched(logs: &[FetchLog]) -> (u64, usize) {
    let pages = logs
        .iter()
        .map(|l| {
            u64::from(l.total())
                - u64::from(l.count("/robots.txt"))
                - u64::from(l.count("/sitemap.xml"))
        })
        .sum();
    let repeated = logs.iter().map(|l| l.repeated().len()).sum();
    (pages, repeated)
}

fn wget_command(cwd: &Path, url: &str, reject_ports: &[u16]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new("wget");
    c.current_dir(cwd)
        .args([
            "--recursive",
            "--level=inf",
            "--no-parent",
            "-e",
            "robots=on",
            "--no-verbose",
            "--delete-after",
            "--tries=1",
            "--timeout=10",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    if !reject_ports.is_empty() {
        let ports: Vec<String> = reject_ports.iter().map(u16::to_string).collect();
        c.arg(format!(
            "--reject-regex=^http://127\\.0\\.0\\.1:({})/",
            ports.join("|")
        ));
    }
    c.arg(url);
    c
}

/// Run the wgets, all at once, and wait for them (bounded); the error lines they printed.
async fn run_wgets(cmds: Vec<tokio::process::Command>) -> anyhow::Result<usize> {
    let mut children = Vec::new();
    for mut c in cmds {
        children.push(c.spawn()?);
    }
    let all = futures::future::join_all(children.into_iter().map(|c| c.wait_with_output()));
    let outs = tokio::time::timeout(CRAWL_TIMEOUT, all)
        .await
        .map_err(|_| anyhow::anyhow!("wget did not finish in {CRAWL_TIMEOUT:?}"))?;
    let mut errors = 0;
    for o in outs {
        let o = o?;
        // wget exits 8 when some request failed; count the error lines instead.
        errors += String::from_utf8_lossy(&o.stderr)
            .lines()
            .filter(|l| l.contains("ERROR"))
            .count();
    }
    Ok(errors)
}

async fn wget_sequential(sites: &[Server], logs: &[FetchLog]) -> anyhow::Result<Outcome> {
    reset(logs);
    let tmp = tempfile::tempdir()?;
    let t = Instant::now();
    let errors = run_wgets(vec![wget_command(tmp.path(), &sites[0].url("/"), &[])]).await?;
    let secs = t.elapsed().as_secs_f64();
    let (pages, repeated) = fetched(logs);
    Ok(Outcome {
        variant: "wget, one process from one home".into(),
        pages,
        secs,
        note: format!("{errors} error lines, {repeated} URLs fetched twice"),
    })
}

async fn wget_parallel(sites: &[Server], logs: &[FetchLog]) -> anyhow::Result<Outcome> {
    reset(logs);
    let tmp = tempfile::tempdir()?;
    let ports: Vec<u16> = sites.iter().map(|s| s.addr.port()).collect();
    let cmds = sites
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let others: Vec<u16> = ports
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, p)| *p)
                .collect();
            let dir = tmp.path().join(i.to_string());
            let _ = std::fs::create_dir_all(&dir);
            wget_command(&dir, &s.url("/"), &others)
        })
        .collect();
    let t = Instant::now();
    let errors = run_wgets(cmds).await?;
    let secs = t.elapsed().as_secs_f64();
    let (pages, repeated) = fetched(logs);
    Ok(Outcome {
        variant: format!("wget, {} processes, one per site", sites.len()),
        pages,
        secs,
        note: format!("{errors} error lines, {repeated} URLs fetched twice"),
    })
}

async fn peer_crawl(sites: &[Server], logs: &[FetchLog]) -> anyhow::Result<Outcome> {
    reset(logs);
    let expected = (SITES * (PAGES + 1)) as u64;
    let tmp = tempfile::tempdir()?;
    let mut peer = PeerProcess::spawn(
        &tmp.path().join("peer"),
        &PeerOptions {
            args: args(&[
                "--allow-private-addresses",
                "--crawl-rate",
                "1000",
                "--crawl-concurrency",
                "32",
                "--replication",
                "1",
                // As deep as wget's --level=inf (the fixture is at most ~100 links deep).
                "--max-depth",
                "1000",
                "--fetch-timeout-secs",
                "10",
            ]),
            ..PeerOptions::default()
        },
    )
    .await?;
    let client = common::keep_alive_client();
    let t = Instant::now();
    let (status, body) = peer
        .post_json(
            "/api/crawl",
            &serde_json::json!({ "urls": [sites[0].url("/")] }),
        )
        .await?;
    anyhow::ensure!(status == 202, "seeding answered {status}: {body}");
    let mut all_fetched: Option<f64> = None;
    let mut all_indexed: Option<f64> = None;
    let mut calm = 0;
    let mut last: Value = Value::Null;
    while t.elapsed() < CRAWL_TIMEOUT {
        let r = client
            .get(format!("{}/api/status", peer.base))
            .send()
            .await?;
        anyhow::ensure!(
            r.status().is_success(),
            "/api/status answered {}",
            r.status()
        );
        let st: Value = r.json().await?;
        let now = t.elapsed().as_secs_f64();
        if all_fetched.is_none() && fetched(logs).0 >= expected {
            all_fetched = Some(now);
        }
        if all_indexed.is_none() && st["docs_indexed"].as_u64().unwrap_or(0) >= expected {
            all_indexed = Some(now);
        }
        let idle = st["frontier_size"] == 0 && st["crawl_in_flight"] == 0;
        calm = if idle { calm + 1 } else { 0 };
        last = st;
        // Done when everything is indexed, or when the crawl has been idle for a second
        // without getting there (then the table says how many pages it indexed).
        if all_indexed.is_some() || calm >= 20 {
            break;
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
    let (pages, repeated) = fetched(logs);
    let secs = all_indexed.unwrap_or_else(|| t.elapsed().as_secs_f64());
    let rss = peer.peak_rss_kib().unwrap_or(0);
    // What the peer keeps once the crawl is over: resident memory after IDLE_FOR idle.
    tokio::time::sleep(IDLE_FOR).await;
    let idle_rss = peer.rss_kib().unwrap_or(0);
    peer.kill9();
    Ok(Outcome {
        variant: "peer (fetch + extract + index), 32 in flight".into(),
        pages,
        secs,
        note: format!(
            "all fetched at {} ({} pages/s), {} docs indexed at {:.2} s, {repeated} URLs fetched twice, {} failed, peak RSS {} MiB, RSS {} MiB after {} s idle",
            all_fetched.map_or("-".into(), |s| format!("{s:.2} s")),
            all_fetched.map_or("-".into(), |s| format!("{:.0}", pages as f64 / s)),
            last["docs_indexed"],
            secs,
            last["pages_failed"],
            rss / 1024,
            idle_rss / 1024,
            IDLE_FOR.as_secs()
        ),
    })
}

async fn run() -> anyhow::Result<()> {
    require_peer_binary()?;
    // Without wget (and PEERSEARCH_SKIP_WGET=1) only the peer's own row is measured.
    let with_wget = need::WGET
        .check(
            "the crawling bench's wget baseline",
            need::tool_runs("wget"),
        )
        .is_some();
    let (sites, logs) = linked_sites(SITES, PAGES).await?;
    let mut outcomes = Vec::new();
    for round in 0..ROUNDS {
        let mut round_outcomes = Vec::new();
        if with_wget {
            round_outcomes.push(wget_sequential(&sites, &logs).await?);
            round_outcomes.push(wget_parallel(&sites, &logs).await?);
        }
        round_outcomes.push(peer_crawl(&sites, &logs).await?);
        for o in round_outcomes {
            eprintln!(
                "round {round}: {}: {} pages in {:.2} s ({})",
                o.variant, o.pages, o.secs, o.note
            );
            outcomes.push((round, o));
        }
    }
    // Best round of each variant.
    let mut best: Vec<&Outcome> = Vec::new();
    for (_, o) in &outcomes {
        match best.iter_mut().find(|b| b.variant == o.variant) {
            Some(b) if o.pages as f64 / o.secs > b.pages as f64 / b.secs => *b = o,
            Some(_) => {}
            None => best.push(o),
        }
    }
    let peer_rate = best
        .iter()
        .find(|o| o.variant.starts_with("peer"))
        .map(|o| o.pages as f64 / o.secs)
        .unwrap_or(0.0);
    let rows: Vec<Vec<String>> = best
        .iter()
        .map(|o| {
            let rate = o.pages as f64 / o.secs;
            vec![
                o.variant.clone(),
                o.pages.to_string(),
                format!("{:.2}", o.secs),
                format!("{rate:.0}"),
                format!("{:.2}", peer_rate / rate),
                o.note.clone(),
            ]
        })
        .collect();
    print_table(
        &format!(
            "crawling {} pages on {SITES} loopback sites (best of {ROUNDS} rounds)",
            SITES * (PAGES + 1)
        ),
        &["variant", "pages", "s", "pages/s", "peer / this", "notes"],
        &rows,
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    common::run_on_runtime(run())
}
