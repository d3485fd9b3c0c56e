//! Ranking as one central index would rank: a network of peers (at R=1 and R=3) answers every
//! query with the same top 10, in the same order and with the same scores, as one peer that
//! crawled the same sites alone, whatever order the pages were crawled in and whichever peer
//! saw which link; and a page that matches a query only in its navigation menu does not
//! outrank, or even appear beside, a page that has the words in its content.

use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use peersearch_tests::fixture::{Rng, Server, numbered_pages_router};
use peersearch_tests::harness::{
    PeerOptions, PeerProcess, settled_top10, start_network_with, wait_network_idle,
};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

const SITES: usize = 6;
const PAGES: usize = 8;
/// Texts other sites use to link to a page: several per target, so that a page's anchor text
/// depends on which links reach its owner.
const LINK_TEXTS: [&str; 4] = [
    "field notes",
    "a useful guide",
    "reference material",
    "further reading",
];

/// The HTML of page `n` of site `site`: generated paragraphs, links within the site and one
/// link to a page of another site with a text chosen by the linking page.
fn page_html(site: usize, n: usize, others: &[String]) -> String {
    let mut rng = Rng::new(0x5EED_0000 ^ ((site as u64) << 16) ^ n as u64);
    let title = format!("{} {} {}", rng.word(), rng.word(), rng.word());
    let mut body = String::new();
    for _ in 0..3 {
        body.push_str(&format!("<p>{}</p>", rng.words(30)));
    }
    let other = &others[rng.below(others.len())];
    let to = rng.below(PAGES);
    let text = LINK_TEXTS[rng.below(LINK_TEXTS.len())];
    body.push_str(&format!(
        "<p>See <a href=\"{other}/p/{to}.html\">{text}</a>.</p>"
    ));
    let next = (n + 1) % PAGES;
    let jump = rng.below(PAGES);
    format!(
        "<!doctype html><html><head><title>{title}</title></head><body>\
         <nav><a href=\"/\">home</a> <a href=\"/p/{next}.html\">next</a> \
         <a href=\"/p/{jump}.html\">more</a></nav><main><h1>{title}</h1>{body}</main></body></html>"
    )
}

/// A generated site that links to the sites at `others`.
fn site_router(site: usize, others: Vec<String>) -> Router {
    let others = Arc::new(others);
    let home_links: String = (0..PAGES)
        .map(|n| format!("<li><a href=\"/p/{n}.html\">page {n}</a></li>"))
        .collect();
    let home = format!(
        "<!doctype html><html><head><title>site {site}</title></head><body><main>\
         <p>Welcome to site {site}.</p><ul>{home_links}</ul></main></body></html>"
    );
    numbered_pages_router(home, PAGES, move |n| page_html(site, n, &others))
}

/// The linked fixture sites.
async fn sites() -> Vec<Server> {
    let mut bound = Vec::new();
    for _ in 0..SITES {
        bound.push(Server::bind().await.unwrap());
    }
    let urls: Vec<String> = bound.iter().map(|b| b.url("")).collect();
    bound
        .into_iter()
        .enumerate()
        .map(|(i, b)| {
            let others = urls
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, u)| u.clone())
                .collect();
            b.serve(site_router(i, others))
        })
        .collect()
}

/// Queries of two and three words taken from the fixture's pages, and the link texts.
fn queries() -> Vec<String> {
    let mut out: Vec<String> = LINK_TEXTS.iter().map(|s| s.to_string()).collect();
    let mut rng = Rng::new(77);
    for i in 0..16 {
        let n = 2 + i % 2;
        out.push(rng.words(n));
    }
    out
}

fn args(r: usize) -> Vec<String> {
    [
        "--allow-private-addresses",
        "--crawl-rate",
        "200",
        "--replication",
        &r.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn env() -> Vec<(String, String)> {
    vec![
        ("PEERSEARCH_MAINTENANCE_INTERVAL_MS".into(), "1000".into()),
        (
            "RUST_LOG".into(),
            "info,peersearch_node::anchors=trace,peersearch_node::indexing=trace".into(),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_at_r1_and_r3_ranks_exactly_as_one_central_peer() {
    let sites = sites().await;
    let seeds: Vec<String> = sites.iter().map(|s| s.url("/")).collect();
    let queries = queries();
    let _ = std::fs::remove_dir_all("/tmp/rk");
    std::fs::create_dir_all("/tmp/rk").unwrap();
    let dir = tempfile::tempdir_in("/tmp/rk").unwrap().keep();
    struct D(std::path::PathBuf);
    impl D {
        fn path(&self) -> &std::path::Path {
            &self.0
        }
    }
    let dir = D(dir);

    // The central peer crawls everything alone.
    let central = PeerProcess::spawn(
        &dir.path().join("central"),
        &PeerOptions {
            args: args(1),
            env: env(),
        },
    )
    .await
    .unwrap();
    central.seed(&seeds).await.unwrap();
    central
        .wait_crawl_idle(Duration::from_secs(120))
        .await
        .unwrap();
    let expected = settled_top10(&central, &queries, "").await.unwrap();
    let central_docs = docs_indexed(&central).await;
    check_explanations(&central, &queries, "", central_docs).await;
    assert!(
        expected.iter().filter(|a| !a.is_empty()).count() >= queries.len() - 2,
        "too few queries match anything: {expected:?}"
    );
    drop(central);

    for r in [1, 3] {
        let root = dir.path().join(format!("net-r{r}"));
        let peers = start_network_with(&root, 6, &args(r), &env())
            .await
            .unwrap();
        // Seeds in reverse through another peer: another crawl order than the central one.
        let reversed: Vec<String> = seeds.iter().rev().cloned().collect();
        peers[3].seed(&reversed).await.unwrap();
        wait_network_idle(&peers, Duration::from_secs(180))
            .await
            .unwrap();
        let got = settled_top10(&peers[0], &queries, "").await.unwrap();
        // Every hit's explanation adds up to its score, with the network's statistics: as
        // many documents as the central peer holds, not the answering peer's own.
        check_explanations(&peers[0], &queries, "", central_docs).await;
        // A local search is explained with the peer's own statistics (the peer holding most,
        // so that some query finds something there: a peer may own no site at all).
        // (At R=3 a peer may own every site; it is not the one asked.)
        let mut fullest = (0, 0);
        for (i, p) in peers.iter().enumerate() {
            let own = docs_indexed(p).await;
            if own < central_docs {
                fullest = fullest.max((own, i));
            }
        }
        let (own, i) = fullest;
        assert!(own > 0, "R={r}: no peer holds a part of the documents");
        check_explanations(&peers[i], &queries, "&scope=local", own).await;
        let mut diffs = Vec::new();
        for ((q, want), have) in queries.iter().zip(&expected).zip(&got) {
            if want != have {
                diffs.push(format!("{q:?}:\n  central {want:?}\n  network {have:?}"));
            }
        }
        assert!(
            diffs.is_empty(),
            "R={r}: {} of {} queries rank differently from the central peer:\n{}",
            diffs.len(),
            queries.len(),
            diffs.join("\n")
        );
    }
}

async fn docs_indexed(peer: &PeerProcess) -> u64 {
    let st: Value = peer.get_json("/api/status").await.unwrap();
    st["docs_indexed"].as_u64().unwrap()
}

/// `explain=1` on every query: each hit has an explanation whose parts add up to its score
/// (to the bit, as the ranking computes it) and whose statistics count `num_docs` documents.
async fn check_explanations(peer: &PeerProcess, queries: &[String], extra: &str, num_docs: u64) {
    let mut explained = 0;
    for q in queries {
        let v = peer
            .search(q, &format!("&limit=10&timeout_ms=5000&explain=1{extra}"))
            .await
            .unwrap();
        if v["hits"].as_array().is_none_or(|h| h.is_empty()) {
            eprintln!("{q:?}{extra}: no hits: {v}");
        }
        for hit in v["hits"].as_array().unwrap() {
            let e = &hit["explanation"];
            assert!(e.is_object(), "{q:?}: no explanation in {hit}");
            let f = |v: &Value| v.as_f64().unwrap();
            let score = f(&hit["score"]) as f32;
            let sum: f64 = e["terms"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| f(&t["value"]))
                .chain(
                    e["proximity"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| f(&p["value"])),
                )
                .sum::<f64>()
                + f(&e["prior"]["value"]);
            let rel = &e["relevance"];
            assert!((sum - f(&rel["sum"])).abs() < 1e-4, "{q:?}: {e}");
            let curve = f(&rel["cap"]) * f(&rel["sum"]) / (f(&rel["sum"]) + f(&rel["half"]));
            assert!((curve - f(&rel["value"])).abs() < 1e-9, "{q:?}: {e}");
            let total = (f(&e["coverage"]["value"]) + f(&rel["value"]) + f(&e["depth"]["value"]))
                as f32
                + f(&e["constant"]) as f32;
            assert_eq!(total, score, "{q:?}: the parts do not add up: {e}");
            assert_eq!(f(&e["score"]) as f32, score, "{q:?}");
            assert_eq!(e["num_docs"].as_u64(), Some(num_docs), "{q:?}: {e}");
            explained += 1;
        }
    }
    // Most queries match on a network; a peer's own shard may hold none of a query's pages.
    let want = if extra.contains("scope=local") {
        1
    } else {
        queries.len()
    };
    assert!(explained >= want, "only {explained} hits explained");
}

/// A site whose every page carries a large menu (links, and a line of text naming three
/// subjects that no title or link uses), and one page that has those words in its content.
fn menu_site() -> Router {
    const TOPICS: [&str; 24] = [
        "installation",
        "overview",
        "examples",
        "pricing",
        "faq",
        "benchmarks",
        "security",
        "roadmap",
        "tutorials",
        "community",
        "changelog",
        "licensing",
        "deployment",
        "monitoring",
        "backups",
        "upgrades",
        "plugins",
        "themes",
        "accessibility",
        "localization",
        "performance",
        "integrations",
        "support",
        "contact",
    ];
    let menu: String = TOPICS
        .iter()
        .enumerate()
        .map(|(i, t)| format!("<li><a href=\"/t/{i}.html\">{t}</a></li>"))
        .collect();
    let page = move |title: String, content: String| {
        format!(
            "<!doctype html><html><head><title>{title}</title></head><body>\
             <header><a href=\"/\">Example Docs</a></header>\
             <nav class=\"sidebar\"><p>Guides on migration, troubleshooting and the \
             glossary</p><ul>{menu}</ul></nav>\
             <main><h1>{title}</h1>{content}</main>\
             <footer>Copyright Example Docs. All rights reserved.</footer></body></html>"
        )
    };
    let page = Arc::new(page);
    let home = page(
        "Example Docs".into(),
        "<p>Start here.</p><p><a href=\"/t/0.html\">first topic</a></p>".into(),
    );
    Router::new()
        .route("/", get(move || async move { Html(home) }))
        .route(
            "/t/{file}",
            get(move |Path(file): Path<String>| {
                let page = page.clone();
                async move {
                    let Some(n) = file
                        .strip_suffix(".html")
                        .and_then(|n| n.parse::<usize>().ok())
                        .filter(|n| *n < TOPICS.len())
                    else {
                        return StatusCode::NOT_FOUND.into_response();
                    };
                    let mut rng = Rng::new(n as u64);
                    let content = if n == 7 {
                        // The one page about these words.
                        "<p>Before the upgrade, read about migration and troubleshooting: \
                         the glossary explains every term the migration guide uses.</p>"
                            .to_string()
                    } else {
                        format!("<p>{}</p><p>{}</p>", rng.words(40), rng.words(40))
                    };
                    Html(page(format!("Topic {n}: {}", TOPICS[n]), content)).into_response()
                }
            }),
        )
        .route("/robots.txt", get(|| async { "User-agent: *\nAllow: /\n" }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_matching_only_in_its_menu_is_not_returned_beside_one_with_the_words_in_content() {
    let site = Server::start(menu_site()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let peer = PeerProcess::spawn(
        &dir.path().join("peer"),
        &PeerOptions {
            args: args(1),
            env: env(),
        },
    )
    .await
    .unwrap();
    peer.seed(&[site.url("/")]).await.unwrap();
    peer.wait_crawl_idle(Duration::from_secs(120))
        .await
        .unwrap();
    let st: Value = peer.get_json("/api/status").await.unwrap();
    assert!(st["docs_indexed"].as_u64().unwrap() >= 20, "{st}");
    let content_page = site.url("/t/7.html");
    for q in [
        "migration troubleshooting glossary",
        "glossary migration",
        "troubleshooting glossary",
    ] {
        let urls = peer.search_urls(q, "&limit=10").await.unwrap();
        assert_eq!(
            urls,
            vec![content_page.clone()],
            "{q:?}: only the page with the words in its content"
        );
    }
}
