//! `peersearch demo` as a newcomer runs it: a child process that starts several peers on
//! loopback, serves a corpus, seeds the crawl and prints the web UI's address; a search on that
//! address must find pages of the corpus. The corpus is the Rust documentation rustup installs
//! (the test fails without it, unless `PEERSEARCH_SKIP_RUST_DOCS=1`: then the demo's built-in
//! site is searched instead).

use peersearch_tests::harness::{binary, http_get, spawn_in_group};
use peersearch_tests::need;
use serde_json::Value;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_starts_finds_peers_and_answers_a_search() {
    // What the demo serves, and a query with the title of a page it must find: the Rust Book's
    // chapter on ownership, or the built-in site's page on Kademlia.
    let (query, title) = match need::rust_docs("the demo test's search of the Rust docs") {
        Some(_) => (
            "what is ownership",
            "What is Ownership? - The Rust Programming Language",
        ),
        None => ("kademlia", "kademlia"),
    };
    let dir = tempfile::tempdir().unwrap();
    // In its own process group, killed (with the peers it runs) when `child` drops.
    let mut child = spawn_in_group(
        std::process::Command::new(binary())
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
            .stderr(Stdio::null()),
    )
    .unwrap();
    let stdout = tokio::process::ChildStdout::from_std(child.take_stdout().unwrap()).unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let started = Instant::now();
    let mut base = None;
    let mut printed = Vec::new();
    while let Ok(Ok(Some(line))) =
        tokio::time::timeout(Duration::from_secs(120), lines.next_line()).await
    {
        printed.push(line.clone());
        if let Some(rest) = line.strip_prefix("open ") {
            base = rest
                .split_whitespace()
                .next()
                .map(|u| u.trim_end_matches('/').to_string());
            break;
        }
    }
    let base = base.unwrap_or_else(|| panic!("the demo prints the web UI's address: {printed:?}"));

    // The peers find each other.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = http_get(&format!("{base}/api/status")).await.unwrap();
        assert_eq!(status, 200, "{body}");
        let st: Value = serde_json::from_str(&body).unwrap();
        if st["routing_table_size"].as_u64() >= Some(2) {
            break;
        }
        assert!(Instant::now() < deadline, "peers did not meet: {st}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // A search over the network finds the page of the corpus by its title.
    let q = url::form_urlencoded::byte_serialize(query.as_bytes()).collect::<String>();
    let deadline = Instant::now() + Duration::from_secs(120);
    let hit = loop {
        let (status, body) = http_get(&format!("{base}/api/search?q={q}&limit=10"))
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        let hits = v["hits"].as_array().cloned().unwrap_or_default();
        if let Some(hit) = hits.iter().find(|h| h["title"] == title) {
            assert!(v["peers"]["queried"].as_u64() >= Some(3), "{v}");
            break hit.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the demo did not find {title:?} for {query:?}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    eprintln!(
        "demo answered {query:?} with {title:?} {:.1} s after start",
        started.elapsed().as_secs_f64()
    );
    assert!(
        hit["url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:"),
        "the demo serves its corpus on loopback: {hit}"
    );
    child.kill();
}
