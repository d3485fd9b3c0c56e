//! `peersearch demo`: N peers on loopback that find each other, crawl a real corpus served by
//! local HTTP servers (the Rust documentation that rustup installs, one site per book; a small
//! built-in site when it is absent) and answer searches together. Needs no network.

use super::signal::wait_for_signal;
use anyhow::{Context, Result};
use axum::Router;
use axum::extract::Path as UrlPath;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use peersearch_crawler::{Scope, ScopeSpec};
use peersearch_node::{PeerConfig, RunningPeer};
use peersearch_web::{rust_docs_dir, static_dir};
use std::net::SocketAddr;
use std::path::PathBuf;
use tracing::{info, warn};

/// The books of the Rust documentation served as sites, in crawl order.
const BOOKS: &[&str] = &[
    "book",
    "cargo",
    "reference",
    "rust-by-example",
    "nomicon",
    "edition-guide",
    "rustc",
    "rustdoc",
    "std",
];
/// Pages per site the demo crawls at most (std alone has tens of thousands).
const DEMO_MAX_PAGES_PER_SITE: u64 = 3_000;
/// Requests per second per demo site: the servers are ours, on loopback.
const DEMO_CRAWL_RATE: f64 = 25.0;
/// Replication in the demo: two copies keep indexing cheap on small machines.
const DEMO_REPLICATION: usize = 2;

/// The built-in site used when the Rust documentation is not installed.
fn builtin_site() -> Router {
    const TOPICS: &[(&str, &str)] = &[
        (
            "peer-to-peer",
            "A peer-to-peer network has no central server: every peer is both client and server, and the network keeps working while peers come and go.",
        ),
        (
            "kademlia",
            "Kademlia is a distributed hash table in which peers and keys share one identifier space and distance is the XOR of identifiers.",
        ),
        (
            "bm25",
            "BM25 ranks documents by term frequency, inverse document frequency and document length; shared statistics make scores from different shards comparable.",
        ),
        (
            "crawler",
            "A polite crawler honours robots.txt, limits its rate per host and never fetches the same page twice.",
        ),
        (
            "tantivy",
            "Tantivy is a full-text search engine library written in Rust, inspired by Lucene.",
        ),
        (
            "libp2p",
            "libp2p is a modular network stack: transports, encryption, multiplexing, peer discovery and request-response protocols.",
        ),
        (
            "replication",
            "Each document is held by several peers so that search keeps finding it when a peer leaves without warning.",
        ),
        (
            "snippets",
            "A snippet shows the part of a page where the query terms occur, with the terms highlighted.",
        ),
    ];
    let page = |i: usize| {
        let (title, text) = TOPICS[i];
        let links: String = TOPICS
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(j, (t, _))| format!("<li><a href=\"/{j}.html\">{t}</a></li>"))
            .collect();
        format!(
            "<!doctype html><html lang=\"en\"><head><title>{title}</title></head><body><h1>{title}</h1><p>{text}</p><ul>{links}</ul></body></html>"
        )
    };
    Router::new()
        .route(
            "/",
            get(move || async move {
                (
                    [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    page(0),
                )
            }),
        )
        .route(
            "/{file}",
            get(move |UrlPath(file): UrlPath<String>| async move {
                match file
                    .strip_suffix(".html")
                    .and_then(|n| n.parse::<usize>().ok())
                    .filter(|n| *n < TOPICS.len())
                {
                    Some(n) => (
                        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                        page(n),
                    )
                        .into_response(),
                    None => StatusCode::NOT_FOUND.into_response(),
                }
            }),
        )
}

/// Serve a demo site on a free loopback port; its address.
async fn serve(router: Router) -> Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot bind a demo site")?;
    let addr = listener.local_addr().context("demo site address")?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(addr)
}

/// Start the demo sites; the seed URLs, each with its crawl scope. The demo crawls only what
/// it serves: nothing it does leaves the machine.
async fn start_sites() -> Result<Vec<(String, ScopeSpec)>> {
    let mut seeds = Vec::new();
    if let Some(docs) = rust_docs_dir() {
        for book in BOOKS {
            if docs.join(book).join("index.html").exists() {
                // Each book's site serves the whole documentation, so that the books'
                // relative links to each other resolve as they do on doc.rust-lang.org (no
                // false broken links); its crawl keeps to the book's own directory (a prefix
                // scope), since every other book is crawled from its own site.
                let addr = serve(static_dir(docs.clone())).await?;
                let prefix = format!("http://{addr}/{book}/");
                info!(book, site = %prefix, "serving a book of the rust documentation");
                let scope = ScopeSpec {
                    site: false,
                    scope: Scope {
                        prefixes: vec![prefix.clone()],
                        ..Scope::default()
                    },
                };
                seeds.push((format!("{prefix}index.html"), scope));
            }
        }
    }
    if seeds.is_empty() {
        warn!(
            "rust documentation not found (rustup component add rust-docs); serving the built-in site"
        );
        let addr = serve(builtin_site()).await?;
        let scope = ScopeSpec {
            site: true,
            scope: Scope::default(),
        };
        seeds.push((format!("http://{addr}/"), scope));
    }
    Ok(seeds)
}

/// Run the demo until Ctrl-C / SIGTERM.
pub async fn run(peers: usize, http: SocketAddr, data_dir: Option<PathBuf>) -> Result<()> {
    let (root, _tmp_guard) = match data_dir {
        Some(d) => (d, None),
        None => {
            let d = std::env::temp_dir().join(format!("peersearch-demo-{}", std::process::id()));
            (d.clone(), Some(RemoveOnDrop(d)))
        }
    };
    let seeds = start_sites().await?;
    let mut running: Vec<RunningPeer> = Vec::new();
    let mut bootstrap: Vec<String> = Vec::new();
    for i in 0..peers {
        let config = PeerConfig {
            data_dir: root.join(format!("peer-{i}")),
            http: if i == 0 {
                http
            } else {
                SocketAddr::from(([127, 0, 0, 1], 0))
            },
            listen: vec!["/ip4/127.0.0.1/tcp/0".to_string()],
            bootstrap: bootstrap.clone(),
            seed: Vec::new(),
            replication: DEMO_REPLICATION.min(peers),
            crawl_rate: DEMO_CRAWL_RATE,
            max_pages_per_site: DEMO_MAX_PAGES_PER_SITE,
            allow_private_addresses: true,
            ..PeerConfig::default()
        };
        let p = match peersearch_node::start(config).await {
            Ok(p) => p,
            Err(e) => {
                // The peers already started still commit and flush before the demo exits.
                shutdown_all(running).await;
                return Err(e).with_context(|| format!("cannot start demo peer {i}"));
            }
        };
        if i == 0 {
            bootstrap = p
                .listen_addrs()
                .await
                .iter()
                .map(|a| a.to_string())
                .collect();
        }
        running.push(p);
    }
    // Let the peers find each other before seeding, so each site goes to its owner at once.
    for _ in 0..50 {
        if running[0].live_peer_count().await + 1 >= peers {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let mut accepted = 0;
    for (seed, scope) in seeds {
        let resp = running[0]
            .submit_scoped(vec![seed], scope)
            .await
            .context("the demo's crawl scope")?;
        for r in &resp.rejected {
            warn!(url = %r.url, reason = %r.reason, "demo seed rejected");
        }
        accepted += resp.accepted;
    }
    let ui = running[0].http_addr();
    println!("peersearch demo: {peers} peers on loopback, crawling {accepted} site(s)");
    let pages: Vec<String> = running
        .iter()
        .map(|p| format!("http://{}/status", p.http_addr()))
        .collect();
    println!("peer pages: {}", pages.join(" "));
    println!("open http://{ui}/ to search (status: http://{ui}/status); Ctrl-C to stop");
    wait_for_signal().await;
    info!("stopping the demo");
    shutdown_all(running).await;
    Ok(())
}

/// Stop every peer at once: one after another, each survivor would take over the sites of the
/// peers already stopped, and the demo took about 30 s to exit. Each shutdown still commits
/// its index and flushes its crawl state; the first poll of `join_all` cancels them all.
async fn shutdown_all(peers: Vec<RunningPeer>) {
    futures::future::join_all(peers.into_iter().map(RunningPeer::shutdown)).await;
}

/// The demo's temporary data dir, removed when the demo ends.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
