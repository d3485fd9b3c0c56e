//! The cost of a revisit round: one peer crawls a 2 000-page site (one host, pages of about
//! 6 KiB), then 5 % of the pages change, and the peer visits every page again. Measured:
//! requests and response body bytes the site served per revisit, scaled to a round of the whole
//! site, the documents re-indexed and the index commits, with conditional fetches (the site
//! sends an `ETag` and answers 304 to a matching `If-None-Match`) and without (the same site
//! ignoring `If-None-Match`: every revisit is a full 200, which the peer finds unchanged by
//! its content hash).
//!
//! `cargo bench -p peersearch-node --bench revisits`

mod common;

use axum::Router;
use axum::extract::Path as AxumPath;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use common::{args, print_table, require_peer_binary};
use peersearch_tests::fixture::{FetchLog, Server};
use peersearch_tests::harness::{PeerOptions, PeerProcess};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Pages besides the home page and the hubs.
const PAGES: usize = 2_000;
/// Hubs: the home links to each, each links to `PAGES / HUBS` pages.
const HUBS: usize = 20;
/// One page in this many changes.
const CHANGE_EVERY: usize = 20;
/// Bound of one crawl or revisit round (the peer needs seconds).
const ROUND_TIMEOUT: Duration = Duration::from_secs(600);

/// The fixture: pages whose text depends on a generation, an ETag per page and generation,
/// and a switch for honouring `If-None-Match`.
#[derive(Clone, Default)]
struct Site {
    changed: Arc<AtomicBool>,
    conditional: Arc<AtomicBool>,
    body_bytes: Arc<AtomicU64>,
    not_modified: Arc<AtomicU64>,
}

impl Site {
    fn generation(&self, n: usize) -> u32 {
        u32::from(self.changed.load(Ordering::SeqCst) && n.is_multiple_of(CHANGE_EVERY))
    }

    fn page(&self, n: usize, headers: &HeaderMap) -> axum::response::Response {
        let generation = self.generation(n);
        let etag = format!("\"p{n}-g{generation}\"");
        let matches = headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            == Some(etag.as_str());
        if matches && self.conditional.load(Ordering::SeqCst) {
            self.not_modified.fetch_add(1, Ordering::Relaxed);
            return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
        }
        let mut body = format!(
            "<html><head><title>Page {n}</title></head><body><h1>Page {n} edition {generation}</h1>"
        );
        for p in 0..30 {
            body.push_str(&format!(
                "<p>Paragraph {p} of page {n}, edition {generation}: revisit fixture text \
                 with enough words to look like documentation prose about crawling.</p>"
            ));
        }
        body.push_str("</body></html>");
        self.body_bytes
            .fetch_add(body.len() as u64, Ordering::Relaxed);
        ([(header::ETAG, etag)], Html(body)).into_response()
    }

    fn router(&self) -> Router {
        let (home, hub, page) = (self.clone(), self.clone(), self.clone());
        Router::new()
            .route("/robots.txt", get(|| async { "User-agent: *\nAllow: /\n" }))
            .route(
                "/",
                get(move || {
                    let site = home.clone();
                    async move {
                        let links: String = (0..HUBS)
                            .map(|h| format!("<a href=\"/hub/{h}\">hub {h}</a> "))
                            .collect();
                        let body = format!("<title>Home</title><p>revisit fixture</p>{links}");
                        site.body_bytes
                            .fetch_add(body.len() as u64, Ordering::Relaxed);
                        Html(body)
                    }
                }),
            )
            .route(
                "/hub/{h}",
                get(move |AxumPath(h): AxumPath<usize>| {
                    let site = hub.clone();
                    async move {
                        let per = PAGES / HUBS;
                        let links: String = (h * per..(h + 1) * per)
                            .map(|n| format!("<a href=\"/page/{n}\">page {n}</a> "))
                            .collect();
                        let body = format!("<title>Hub {h}</title><p>hub {h}</p>{links}");
                        site.body_bytes
                            .fetch_add(body.len() as u64, Ordering::Relaxed);
                        Html(body)
                    }
                }),
            )
            .route(
                "/page/{n}",
                get(move |AxumPath(n): AxumPath<usize>, headers: HeaderMap| {
                    let site = page.clone();
                    async move {
                        if n >= PAGES {
                            return StatusCode::NOT_FOUND.into_response();
                        }
                        site.page(n, &headers)
                    }
                }),
            )
    }
}

async fn status(p: &PeerProcess) -> anyhow::Result<Value> {
    p.get_json("/api/status").await
}

struct Row {
    variant: &'static str,
    revisits: u64,
    requests: u64,
    bytes: u64,
    not_modified: u64,
    changed: u64,
    commits: u64,
    docs_before: u64,
    docs_after: u64,
}

/// One variant: crawl, change 5 %, wait for a whole revisit round, count.
async fn variant(name: &'static str, conditional: bool) -> anyhow::Result<Row> {
    let site = Site::default();
    site.conditional.store(conditional, Ordering::SeqCst);
    let log = FetchLog::default();
    let server = Server::start(log.wrap(site.router())).await?;
    let dir = tempfile::tempdir()?;
    let peer = PeerProcess::spawn(
        &dir.path().join("peer"),
        &PeerOptions {
            args: args(&[
                "--allow-private-addresses",
                "--crawl-rate",
                "1000",
                "--replication",
                "1",
                "--min-revisit-secs",
                "2",
                "--max-revisit-secs",
                "8",
            ]),
            env: vec![],
        },
    )
    .await?;
    peer.seed(&[server.url("/")]).await?;
    let all = (PAGES + HUBS + 1) as u64;
    let deadline = Instant::now() + ROUND_TIMEOUT;
    loop {
        let st = status(&peer).await?;
        if st["docs_indexed"].as_u64() >= Some(all) {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "first crawl too slow: {st}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The change, then a whole round: every page visited once more after it.
    site.changed.store(true, Ordering::SeqCst);
    log.reset();
    site.body_bytes.store(0, Ordering::SeqCst);
    site.not_modified.store(0, Ordering::SeqCst);
    let before = status(&peer).await?;
    let start = Instant::now();
    let round = loop {
        let st = status(&peer).await?;
        let pages_seen = (0..PAGES)
            .filter(|n| log.count(&format!("/page/{n}")) > 0)
            .count();
        if pages_seen == PAGES && st["crawl_in_flight"] == 0 {
            break st;
        }
        anyhow::ensure!(Instant::now() < deadline, "revisit round too slow: {st}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    eprintln!("{name}: round in {:.1} s", start.elapsed().as_secs_f64());
    let diff = |key: &str| {
        round[key]
            .as_u64()
            .unwrap_or(0)
            .saturating_sub(before[key].as_u64().unwrap_or(0))
    };
    let requests = u64::from(log.total()) - u64::from(log.count("/robots.txt"));
    let row = Row {
        variant: name,
        revisits: diff("pages_revisited"),
        requests,
        bytes: site.body_bytes.load(Ordering::SeqCst),
        not_modified: site.not_modified.load(Ordering::SeqCst),
        changed: diff("pages_changed"),
        commits: diff("index_commits"),
        docs_before: before["docs_indexed"].as_u64().unwrap_or(0),
        docs_after: round["docs_indexed"].as_u64().unwrap_or(0),
    };
    drop(peer);
    Ok(row)
}

async fn run() -> anyhow::Result<()> {
    require_peer_binary()?;
    let mut rows = Vec::new();
    for (name, conditional) in [("conditional (ETag, 304)", true), ("unconditional", false)] {
        let r = variant(name, conditional).await?;
        let site_pages = (PAGES + HUBS + 1) as f64;
        let per = |v: u64| v as f64 / r.revisits.max(1) as f64;
        rows.push(vec![
            r.variant.to_string(),
            r.revisits.to_string(),
            format!("{:.0}", per(r.requests) * site_pages),
            format!("{:.1}", per(r.bytes) * site_pages / 1024.0 / 1024.0),
            format!("{:.0}", per(r.bytes)),
            r.not_modified.to_string(),
            r.changed.to_string(),
            r.commits.to_string(),
            format!("{} → {}", r.docs_before, r.docs_after),
        ]);
    }
    print_table(
        &format!(
            "Revisit round of a {PAGES}-page site, 1 page in {CHANGE_EVERY} changed (figures per round scaled from the revisits made)"
        ),
        &[
            "variant",
            "revisits made",
            "requests per round",
            "MiB per round",
            "bytes per revisit",
            "304 answers",
            "changed found",
            "index commits",
            "documents",
        ],
        &rows,
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    common::run_on_runtime(run())
}
