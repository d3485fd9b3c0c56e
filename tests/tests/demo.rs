//! `peersearch demo` as a newcomer runs it: a child process that starts several peers on
//! loopback, serves a corpus, seeds the crawl and prints the web UI's address; a search on that
//! address must find pages of the corpus.

use peersearch_tests::harness::{binary, http_get};
use serde_json::Value;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_starts_finds_peers_and_answers_a_search() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(binary())
        .args([
            "demo",
            "--peers",
            "3",
            "--http",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let started = Instant::now();
    let mut base = None;
    while let Ok(Ok(Some(line))) =
        tokio::time::timeout(Duration::from_secs(120), lines.next_line()).await
    {
        if let Some(rest) = line.strip_prefix("open ") {
            base = rest
                .split_whitespace()
                .next()
                .map(|u| u.trim_end_matches('/').to_string());
            break;
        }
    }
    let base = base.expect("the demo prints the web UI's address");

    // The peers find each other.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, body) = http_get(&format!("{base}/api/status")).await.unwrap();
        let st: Value = serde_json::from_str(&body).unwrap();
        if st["routing_table_size"].as_u64() >= Some(2) {
            break;
        }
        assert!(Instant::now() < deadline, "peers did not meet: {st}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // A search over the network finds pages of the corpus (the Rust docs, or the built-in
    // site when they are absent: both talk about crates... or peers).
    let deadline = Instant::now() + Duration::from_secs(120);
    let hits = loop {
        let (status, body) = http_get(&format!("{base}/api/search?q=rust+OR+peer&limit=5"))
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        let hits = v["hits"].as_array().cloned().unwrap_or_default();
        if !hits.is_empty() {
            assert!(v["peers"]["queried"].as_u64() >= Some(3), "{v}");
            break hits;
        }
        assert!(Instant::now() < deadline, "no results from the demo: {v}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    println!(
        "demo answered its first search {:.1} s after start",
        started.elapsed().as_secs_f64()
    );
    assert!(
        hits[0]["url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    let _ = child.kill().await;
}
