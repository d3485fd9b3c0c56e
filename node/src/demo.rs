//! `peersearch demo`: N peers on loopback that find each other, crawl a real corpus served by
//! local HTTP servers (the Rust documentation that rustup installs, one site per book; a small
//! built-in site when it is absent) and answer searches together. Needs no network.

use crate::config::PeerConfig;
use crate::peer::{self, PeerError, RunningPeer};
use axum::Router;
use axum::extract::Path as UrlPath;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
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

/// Serve the files under `root` (read-only, no `..`).
pub fn static_site(root: PathBuf) -> Router {
    let root = Arc::new(root);
    let serve = move |path: Option<UrlPath<String>>| {
        let root = root.clone();
        async move { serve_file(&root, path.map(|UrlPath(p)| p).unwrap_or_default()).await }
    };
    Router::new()
        .route("/", get(serve.clone()))
        .route("/{*path}", get(serve))
}

async fn serve_file(root: &Path, rel: String) -> Response {
    if rel.split('/').any(|seg| seg == "..") {
        return StatusCode::BAD_REQUEST.into_response();
    }
    let mut file = root.join(&rel);
    if rel.is_empty()
        || rel.ends_with('/')
        || tokio::fs::metadata(&file).await.is_ok_and(|m| m.is_dir())
    {
        file = file.join("index.html");
    }
    let ctype = match file.extension().and_then(|e| e.to_str()) {
        Some("html") | Some("htm") => "text/html; charset=utf-8",
        Some("css") => "text/css",
        Some("js") => "text/javascript",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    };
    match tokio::fs::read(&file).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, ctype)], bytes).into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

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

async fn serve(router: Router) -> Result<SocketAddr, PeerError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|source| PeerError::Io {
            context: "cannot bind a demo site".into(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| PeerError::Io {
        context: "demo site address".into(),
        source,
    })?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(addr)
}

/// The Rust documentation rustup installs (`$(rustc --print sysroot)/share/doc/rust/html`), if
/// present.
pub fn rust_docs() -> Option<PathBuf> {
    let out = std::process::Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .ok()?;
    let dir = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim()).join("share/doc/rust/html");
    dir.join("book/index.html").exists().then_some(dir)
}

/// Start the demo sites; the seed URLs.
async fn start_sites() -> Result<Vec<String>, PeerError> {
    let mut seeds = Vec::new();
    if let Some(docs) = rust_docs() {
        for book in BOOKS {
            let dir = docs.join(book);
            if dir.join("index.html").exists() {
                let addr = serve(static_site(dir)).await?;
                info!(book, site = %format!("http://{addr}/"), "serving a book of the rust documentation");
                seeds.push(format!("http://{addr}/index.html"));
            }
        }
    }
    if seeds.is_empty() {
        warn!(
            "rust documentation not found (rustup component add rust-docs); serving the built-in site"
        );
        let addr = serve(builtin_site()).await?;
        seeds.push(format!("http://{addr}/"));
    }
    Ok(seeds)
}

/// Run the demo until Ctrl-C / SIGTERM.
pub async fn run(
    peers: usize,
    http: SocketAddr,
    data_dir: Option<PathBuf>,
) -> Result<(), PeerError> {
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
        let p = peer::start(config).await?;
        if i == 0 {
            let addrs = p.node.net().listen_addrs().await.unwrap_or_default();
            bootstrap = addrs.iter().map(|a| a.to_string()).collect();
        }
        running.push(p);
    }
    // Let the peers find each other before seeding, so each site goes to its owner at once.
    for _ in 0..50 {
        let n = running[0]
            .node
            .net()
            .live_peers()
            .await
            .map(|p| p.len())
            .unwrap_or(0);
        if n + 1 >= peers {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let resp = running[0].node.submit(seeds).await;
    let ui = running[0].node.http_addr();
    println!(
        "peersearch demo: {peers} peers on loopback, crawling {} site(s)",
        resp.accepted
    );
    println!("open http://{ui}/ to search (status: http://{ui}/status); Ctrl-C to stop");
    peer::wait_for_signal().await;
    info!("stopping the demo");
    for p in running {
        p.shutdown().await;
    }
    Ok(())
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
