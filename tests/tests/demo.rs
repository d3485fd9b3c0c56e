//! `peersearch demo` as a newcomer runs it: a child process that starts several peers on
//! loopback, serves a corpus, seeds the crawl and prints the web UI's address; a search on that
//! address must find pages of the corpus. The corpus is the Rust documentation rustup installs
//! (the test fails without it, unless `PEERSEARCH_SKIP_RUST_DOCS=1`: then the demo's built-in
//! site is searched instead).
//!
//! The demo stays on the machine: every request and name lookup its crawlers make (their
//! network log, `peersearch_crawler::net`) is on loopback, and no peer records a failure
//! beyond the broken links the docs really contain, counted here from the files.

use peersearch_tests::harness::{binary, http_get, spawn_in_group};
use peersearch_tests::need;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};

/// The books the demo says it serves (its `serving a book` log lines: `site=URL/BOOK/`).
fn served_books(output: &str) -> Vec<String> {
    output
        .lines()
        .filter(|l| l.contains("serving a book"))
        .filter_map(|l| l.split(" site=").nth(1))
        .filter_map(|site| site.trim().trim_end_matches('/').rsplit('/').next())
        .map(str::to_string)
        .collect()
}

/// The links of the books' pages that stay inside their book's directory (what a crawl
/// scoped to the book follows) and lead to no file: the broken links the docs contain.
fn broken_links_in(docs: &Path, books: &[String]) -> BTreeSet<String> {
    let selector = scraper::Selector::parse("a[href]").unwrap();
    let base = url::Url::parse("http://docs.invalid/").unwrap();
    let mut broken = BTreeSet::new();
    for book in books {
        let mut dirs = vec![docs.join(book)];
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "html") {
                    continue;
                }
                let rel = path
                    .strip_prefix(docs)
                    .unwrap()
                    .to_string_lossy()
                    .to_string();
                let page = base.join(&rel).unwrap();
                let html = std::fs::read_to_string(&path).unwrap_or_default();
                let doc = scraper::Html::parse_document(&html);
                for a in doc.select(&selector) {
                    let Some(mut target) = a.value().attr("href").and_then(|h| page.join(h).ok())
                    else {
                        continue;
                    };
                    target.set_fragment(None);
                    target.set_query(None);
                    if target.host_str() != Some("docs.invalid")
                        || !target.path().starts_with(&format!("/{book}/"))
                    {
                        continue;
                    }
                    // The docs' file names need no percent-decoding (ASCII, no spaces).
                    let mut file = docs.join(target.path().trim_start_matches('/'));
                    if target.path().ends_with('/') || file.is_dir() {
                        file = file.join("index.html");
                    }
                    if !file.exists() {
                        broken.insert(target.to_string());
                    }
                }
            }
        }
    }
    broken
}

/// The network log lines of the demo's crawlers (`peersearch_crawler::net`: "crawler
/// request" and "crawler lookup") that name a destination outside loopback, and how many
/// lines there were.
fn off_loopback(log: &str) -> (Vec<String>, usize) {
    let field = |line: &str, name: &str| -> Option<String> {
        let at = line.find(&format!(" {name}="))? + name.len() + 2;
        let rest = &line[at..];
        let end = if rest.starts_with('[') {
            rest.find(']').map_or(rest.len(), |i| i + 1)
        } else {
            rest.find(' ').unwrap_or(rest.len())
        };
        Some(rest[..end].trim_matches('"').to_string())
    };
    let loopback = |host: &str| {
        host == "localhost"
            || host
                .trim_matches(|c| c == '[' || c == ']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    };
    let mut bad = Vec::new();
    let mut lines = 0;
    for line in log
        .lines()
        .filter(|l| l.contains("crawler request") || l.contains("crawler lookup"))
    {
        lines += 1;
        let ok = if line.contains("crawler request") {
            field(line, "host").is_some_and(|h| loopback(&h))
        } else {
            // Every address a name resolved to, loopback only.
            field(line, "addrs").is_some_and(|a| {
                a.trim_matches(|c| c == '[' || c == ']')
                    .split(", ")
                    .filter(|s| !s.is_empty())
                    .all(|s| {
                        s.parse::<std::net::SocketAddr>()
                            .is_ok_and(|a| a.ip().is_loopback())
                    })
            })
        };
        if !ok {
            bad.push(line.to_string());
        }
    }
    (bad, lines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_starts_finds_peers_and_answers_a_search() {
    // What the demo serves, and a query with the title of a page it must find: the Rust Book's
    // chapter on ownership, or the built-in site's page on Kademlia.
    let docs = need::rust_docs("the demo test's search of the Rust docs");
    let (query, title) = match docs {
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
            .env(
                "RUST_LOG",
                "warn,peersearch=info,peersearch_crawler::net=debug",
            )
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    )
    .unwrap();
    // Everything the demo prints (its log too) is read all along: a full pipe would stall it.
    let stdout = tokio::process::ChildStdout::from_std(child.take_stdout().unwrap()).unwrap();
    let output = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (line_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    let reader = tokio::spawn({
        let output = output.clone();
        async move {
            let mut stdout = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = stdout.next_line().await {
                let mut all = output.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
                let _ = line_tx.send(line);
            }
        }
    });
    let started = Instant::now();
    let mut base = None;
    let mut peer_pages: Vec<String> = Vec::new();
    let mut printed = Vec::new();
    while let Ok(Some(line)) = tokio::time::timeout(Duration::from_secs(120), lines.recv()).await {
        if !line.contains(" DEBUG ") {
            printed.push(line.clone());
        }
        if let Some(rest) = line.strip_prefix("peer pages: ") {
            peer_pages = rest
                .split_whitespace()
                .map(|u| u.trim_end_matches("/status").to_string())
                .collect();
        }
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
    assert_eq!(
        peer_pages.len(),
        3,
        "the demo prints every peer's page: {printed:?}"
    );

    // Crawl on for a while (bounded: the whole documentation takes minutes), then check what
    // the peers recorded and what the crawlers reached.
    let books = served_books(&output.lock().unwrap());
    if docs.is_some() {
        assert!(
            books.len() >= 2,
            "the demo serves the books of the docs: {books:?}"
        );
    }
    let broken = docs
        .as_deref()
        .map(|d| broken_links_in(d, &books))
        .unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(60);
    let (crawled, failed) = loop {
        let (mut crawled, mut failed, mut busy) = (0, 0, false);
        for page in &peer_pages {
            let (status, body) = http_get(&format!("{page}/api/status")).await.unwrap();
            assert_eq!(status, 200, "{body}");
            let st: Value = serde_json::from_str(&body).unwrap();
            crawled += st["pages_crawled"].as_u64().unwrap();
            failed += st["pages_failed"].as_u64().unwrap();
            busy |=
                st["frontier_size"].as_u64() > Some(0) || st["crawl_in_flight"].as_u64() > Some(0);
        }
        if crawled >= 1_000 || !busy || Instant::now() > deadline {
            break (crawled, failed);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    eprintln!(
        "demo: {crawled} pages crawled, {failed} failed; the docs hold {} broken links",
        broken.len()
    );
    // The built-in site has 8 pages; the docs thousands.
    let enough = if docs.is_some() { 20 } else { 8 };
    assert!(crawled >= enough, "the demo crawled only {crawled} pages");
    assert!(
        failed as usize <= broken.len(),
        "the demo's peers recorded {failed} failures, but the docs contain only {} broken \
         links: {broken:?}",
        broken.len()
    );
    child.kill();
    let _ = tokio::time::timeout(Duration::from_secs(10), reader).await;
    let log = output.lock().unwrap().clone();
    let (outside, lines) = off_loopback(&log);
    assert!(
        lines > 0,
        "no network log from the demo's crawlers (RUST_LOG ignored?)"
    );
    assert!(
        outside.is_empty(),
        "the demo left loopback ({} of {lines} lines): {:?}",
        outside.len(),
        &outside[..outside.len().min(10)]
    );
}

#[test]
fn the_network_log_check_sees_what_leaves_loopback() {
    let log = "2026-12-03T09:12:33Z DEBUG crawler request host=\"127.0.0.1\" port=46449\n\
               2026-12-03T09:12:33Z DEBUG crawler request host=\"github.com\" port=443\n\
               2026-12-03T09:12:33Z  INFO committed docs=3\n\
               2026-12-03T09:12:33Z DEBUG crawler lookup host=localhost addrs=[127.0.0.1:0]\n\
               2026-12-03T09:12:33Z DEBUG crawler lookup host=crates.io addrs=[127.0.0.1:0, 13.1.2.3:0]\n";
    let (outside, lines) = off_loopback(log);
    assert_eq!(lines, 4);
    assert_eq!(outside.len(), 2, "{outside:?}");
    assert!(outside[0].contains("github.com") && outside[1].contains("crates.io"));
}
