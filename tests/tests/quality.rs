//! Search quality on a real corpus: known-item queries made from the titles of pages of the
//! Rust Book, the Cargo Book and the Reference (the HTML documentation rustup installs), each
//! book served as its own site on loopback and crawled by one peer. MRR@10 must be >= 0.9.

use peersearch_tests::fixture::{Server, static_dir_router};
use peersearch_tests::harness::{PeerOptions, PeerProcess};
use peersearch_tests::need;
use serde_json::json;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

/// The books and the suffix mdBook appends to their titles.
const BOOKS: &[(&str, &str)] = &[
    ("book", " - The Rust Programming Language"),
    ("cargo", " - The Cargo Book"),
    ("reference", " - The Rust Reference"),
];
/// Queries evaluated (spread evenly over the eligible pages).
const QUERIES: usize = 200;

fn title_of(html: &str) -> Option<String> {
    let start = html.find("<title>")? + "<title>".len();
    let end = html[start..].find("</title>")? + start;
    Some(html_unescape(html[start..end].trim()))
}

fn html_unescape(s: &str) -> String {
    s.replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
}

/// Every indexable chapter page of a book: (relative path, title without the book suffix).
fn pages(dir: &Path, suffix: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "html") {
                let Ok(html) = std::fs::read_to_string(&p) else {
                    continue;
                };
                if html.contains("content=\"noindex\"") {
                    continue;
                }
                let Some(title) = title_of(&html) else {
                    continue;
                };
                let title = title
                    .strip_suffix(suffix)
                    .unwrap_or(&title)
                    .trim()
                    .to_string();
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().to_string();
                if title.is_empty() || rel == "404.html" || rel == "toc.html" {
                    continue;
                }
                out.push((rel, title));
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_item_queries_on_the_rust_books_reach_mrr_0_9() {
    let Some(docs) = need::rust_docs("the quality test") else {
        return;
    };
    let mut servers = Vec::new();
    let mut candidates = Vec::new();
    for (book, suffix) in BOOKS {
        let dir = docs.join(book);
        let server = Server::start(static_dir_router(dir.clone())).await.unwrap();
        for (rel, title) in pages(&dir, suffix) {
            candidates.push((server.url(&format!("/{rel}")), title));
        }
        servers.push(server);
    }
    // Known-item queries need a known item: drop titles that name several pages.
    let mut count: HashMap<String, usize> = HashMap::new();
    for (_, t) in &candidates {
        *count.entry(t.to_lowercase()).or_default() += 1;
    }
    candidates.retain(|(_, t)| count[&t.to_lowercase()] == 1);
    let step = (candidates.len() as f64 / QUERIES as f64).max(1.0);
    let chosen: Vec<(String, String)> = (0..QUERIES)
        .map(|i| (i as f64 * step) as usize)
        .filter(|i| *i < candidates.len())
        .map(|i| candidates[i].clone())
        .collect();
    assert!(chosen.len() >= 150, "too few pages: {}", chosen.len());

    let dir = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = [
        "--allow-private-addresses",
        "--crawl-rate",
        "1000",
        "--max-depth",
        "1000",
        "--replication",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for s in &servers {
        args.push("--seed".into());
        args.push(s.url("/index.html"));
    }
    let peer = PeerProcess::spawn(
        &dir.path().join("peer"),
        &PeerOptions {
            args,
            ..PeerOptions::default()
        },
    )
    .await
    .unwrap();
    // The chosen pages are seeded too, so the figure measures ranking, not reachability.
    let urls: Vec<&String> = chosen.iter().map(|(u, _)| u).collect();
    let (status, body) = peer
        .post_json("/api/crawl", &json!({ "urls": urls }))
        .await
        .unwrap();
    assert_eq!(status, 202, "{body}");
    let st = peer
        .wait_crawl_idle(Duration::from_secs(600))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", peer.log_tail()));

    let mut rr_sum = 0.0;
    let mut misses = Vec::new();
    for (url, title) in &chosen {
        let hits = peer
            .search_urls(title, "&scope=local&limit=10")
            .await
            .unwrap();
        match hits.iter().position(|h| h == url) {
            Some(i) => rr_sum += 1.0 / (i as f64 + 1.0),
            None => misses.push(format!("{title:?} -> {url} (got {:?})", hits.first())),
        }
    }
    let mrr = rr_sum / chosen.len() as f64;
    println!(
        "MRR@10 over {} known-item queries from titles: {mrr:.3} ({} docs indexed, {} misses)",
        chosen.len(),
        st["docs_indexed"],
        misses.len()
    );
    for m in misses.iter().take(10) {
        println!("  miss: {m}");
    }
    assert!(mrr >= 0.9, "MRR@10 {mrr:.3} below 0.9");
}
