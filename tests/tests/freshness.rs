//! A fresh index: crawled pages are visited again. A page whose text changes is found by its
//! new words and no longer by its old ones, a page that starts answering 404 leaves the index
//! of every peer that holds it, a page that answers 304 costs the index nothing, and a removal
//! is never undone by a replica that missed it.

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use peersearch_tests::fixture::{FetchLog, Server};
use peersearch_tests::harness::{PeerOptions, PeerProcess, start_network, start_network_with};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const R: usize = 3;

/// A site that changes when `changed` is set: `/news` swaps its words, `/old` starts
/// answering 404, and `/stable` (with an ETag) answers 304 to a conditional request.
/// `/sitemap.xml` lists `/extra`, which no page links to.
fn changing_site(changed: Arc<AtomicBool>) -> Router {
    let (news, old) = (changed.clone(), changed);
    Router::new()
        .route(
            "/sitemap.xml",
            get(|headers: HeaderMap| async move {
                let host = headers
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                (
                    [(header::CONTENT_TYPE, "application/xml")],
                    format!(
                        "<?xml version=\"1.0\"?><urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\
                         <url><loc>http://{host}/extra</loc></url></urlset>"
                    ),
                )
            }),
        )
        .route(
            "/extra",
            get(|| async { Html("<title>Extra</title><p>orchard telescope sitemap only</p>") }),
        )
        .route("/robots.txt", get(|| async { "User-agent: *\nAllow: /\n" }))
        .route(
            "/",
            get(|| async {
                Html(
                    "<title>Freshness home</title><p>hometown chronicle front page</p>\
                     <a href=/news>news</a> <a href=/old>old</a> <a href=/stable>stable</a>",
                )
            }),
        )
        .route(
            "/news",
            get(move || {
                let text = if news.load(Ordering::SeqCst) {
                    "zebracorn moonlight festival announced"
                } else {
                    "quagmire harvest parade cancelled"
                };
                async move { Html(format!("<title>News</title><p>{text}</p>")) }
            }),
        )
        .route(
            "/old",
            get(move || {
                let gone = old.load(Ordering::SeqCst);
                async move {
                    if gone {
                        StatusCode::NOT_FOUND.into_response()
                    } else {
                        Html("<title>Old</title><p>vanishing lighthouse keeper</p>").into_response()
                    }
                }
            }),
        )
        .route(
            "/stable",
            get(|headers: HeaderMap| async move {
                let etag = "\"stable-1\"";
                if headers
                    .get(header::IF_NONE_MATCH)
                    .and_then(|v| v.to_str().ok())
                    == Some(etag)
                {
                    return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
                }
                (
                    [(header::ETAG, etag)],
                    Html("<title>Stable</title><p>granite almanac unchanging</p>"),
                )
                    .into_response()
            }),
        )
}

/// The URLs a local search on `peer` returns for `q`.
async fn local(peer: &PeerProcess, q: &str) -> Vec<String> {
    peer.search_urls(q, "&scope=local").await.unwrap()
}

/// Poll (bounded; the bound only stops a hang) until `cond` holds on every peer.
async fn on_every_peer(
    peers: &[PeerProcess],
    what: &str,
    cond: impl AsyncFn(&PeerProcess) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut all = true;
        for p in peers {
            all &= cond(p).await;
        }
        if all {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not on every peer in time: {what}\n{}",
            peers[0].log_tail()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn status(p: &PeerProcess) -> Value {
    p.get_json("/api/status").await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_pages_are_found_by_their_new_words_and_dead_pages_disappear_everywhere() {
    let changed = Arc::new(AtomicBool::new(false));
    let log = FetchLog::default();
    let site = Server::start(log.wrap(changing_site(changed.clone())))
        .await
        .unwrap();
    let root = tempfile::tempdir().unwrap();
    let peers = start_network(root.path(), R, &freshness_args())
        .await
        .unwrap();
    let (status_code, body) = peers[0]
        .post_json(
            "/api/crawl",
            &serde_json::json!({ "urls": [site.url("/")] }),
        )
        .await
        .unwrap();
    assert_eq!(status_code, 202, "{body}");

    // Every peer holds every page (R = 3 of 3 peers).
    let news = site.url("/news");
    let old = site.url("/old");
    on_every_peer(&peers, "the first crawl replicated", async |p| {
        local(p, "quagmire harvest").await.contains(&news)
            && local(p, "vanishing lighthouse").await.contains(&old)
            && local(p, "granite almanac")
                .await
                .contains(&site.url("/stable"))
            && local(p, "orchard telescope")
                .await
                .contains(&site.url("/extra"))
    })
    .await;

    // The site changes: new words on /news, /old is gone.
    changed.store(true, Ordering::SeqCst);
    on_every_peer(&peers, "the change reached every replica", async |p| {
        local(p, "zebracorn moonlight").await.contains(&news)
            && !local(p, "quagmire harvest").await.contains(&news)
            && !local(p, "vanishing lighthouse").await.contains(&old)
    })
    .await;
    for p in &peers {
        let hits = p
            .search("lighthouse keeper", "&scope=network")
            .await
            .unwrap();
        let urls: Vec<&str> = hits["hits"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|h| h["url"].as_str())
            .collect();
        assert!(
            !urls.contains(&old.as_str()),
            "a dead page in a network answer: {hits}"
        );
    }

    // The crawling peer: its revisits found a change and removed a page.
    let mut crawler = None;
    for p in &peers {
        let st = status(p).await;
        if st["pages_revisited"].as_u64() > Some(0) {
            crawler = Some((p, st));
        }
    }
    let (crawler, st) = crawler.expect("one peer revisits the site");
    assert!(st["pages_changed"].as_u64() >= Some(1), "{st}");
    assert!(st["pages_removed"].as_u64() >= Some(1), "{st}");
    assert!(st.get("revisits_due").is_some_and(Value::is_u64), "{st}");

    // Nothing changes any more: revisits (304s for /stable) cost no index commit and no
    // document. The removal and the change are committed already; wait until /stable has
    // been answered 304 at least twice more.
    let docs = st["docs_indexed"].as_u64().unwrap();
    let settle = crawler
        .wait_status(Duration::from_secs(60), |s| {
            s["pages_unchanged"].as_u64() > st["pages_unchanged"].as_u64()
        })
        .await
        .unwrap();
    let (commits, unchanged) = (
        settle["index_commits"].as_u64().unwrap(),
        settle["pages_unchanged"].as_u64().unwrap(),
    );
    let stable_before = log.count("/stable");
    let after = crawler
        .wait_status(Duration::from_secs(60), |s| {
            s["pages_unchanged"].as_u64().unwrap() >= unchanged + 3
                && log.count("/stable") >= stable_before + 2
        })
        .await
        .unwrap();
    assert_eq!(after["index_commits"].as_u64(), Some(commits), "{after}");
    assert_eq!(after["docs_indexed"].as_u64(), Some(docs), "{after}");
    assert!(after["pages_revisited"].as_u64() > st["pages_revisited"].as_u64());
    // /metrics counts the revisits.
    let (code, metrics) = peersearch_tests::harness::http_get(&format!("{}/metrics", crawler.base))
        .await
        .unwrap();
    assert_eq!(code, 200);
    assert!(
        metrics.contains("peersearch_revisits_total{result=\"unchanged\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("peersearch_revisits_due"), "{metrics}");
}

fn freshness_args() -> Vec<String> {
    [
        "--allow-private-addresses",
        "--crawl-rate",
        "100",
        "--replication",
        &R.to_string(),
        "--min-revisit-secs",
        "2",
        "--max-revisit-secs",
        "10",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A replica that was down while the primary removed a page comes back after the primary died
/// and holds the old copy: repair must not spread it (the removal is a tombstone, newer than
/// the copy), and the copy goes too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_is_not_undone_by_a_replica_that_missed_it() {
    let changed = Arc::new(AtomicBool::new(false));
    let site = Server::start(changing_site(changed.clone())).await.unwrap();
    let root = tempfile::tempdir().unwrap();
    let env = [(
        "PEERSEARCH_MAINTENANCE_INTERVAL_MS".to_string(),
        "1000".to_string(),
    )];
    let mut peers = start_network_with(root.path(), R, &freshness_args(), &env)
        .await
        .unwrap();
    let (code, body) = peers[0]
        .post_json(
            "/api/crawl",
            &serde_json::json!({ "urls": [site.url("/")] }),
        )
        .await
        .unwrap();
    assert_eq!(code, 202, "{body}");
    let old = site.url("/old");
    on_every_peer(&peers, "the first crawl replicated", async |p| {
        local(p, "vanishing lighthouse").await.contains(&old)
    })
    .await;

    // The primary is the peer that crawled; one of the others goes down.
    let mut primary = None;
    for (i, p) in peers.iter().enumerate() {
        if status(p).await["pages_crawled"].as_u64() > Some(0) {
            primary = Some(i);
        }
    }
    let primary = primary.expect("one peer crawled the site");
    let others: Vec<usize> = (0..R).filter(|i| *i != primary).collect();
    let (stale, witness) = (others[0], others[1]);
    let stale_dir = peers[stale].data_dir.clone();
    peers[stale].kill9();

    // The page dies; the primary and the witness remove it.
    changed.store(true, Ordering::SeqCst);
    let alive = [&peers[primary], &peers[witness]];
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut gone = true;
        for p in alive {
            gone &= !local(p, "vanishing lighthouse").await.contains(&old);
        }
        if gone {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the removal did not reach the witness"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // The primary dies; the stale replica comes back with its old copy.
    peers[primary].kill9();
    let back = PeerProcess::spawn(
        &stale_dir,
        &PeerOptions {
            args: [
                freshness_args(),
                vec!["--bootstrap".into(), peers[witness].p2p_addr()],
            ]
            .concat(),
            env: env.to_vec(),
        },
    )
    .await
    .unwrap();
    // Watch the witness while the two repair each other: the page must never come back, and
    // the stale copy must go.
    let witness = &peers[witness];
    let came_back = Instant::now();
    let deadline = came_back + Duration::from_secs(120);
    loop {
        assert!(
            !local(witness, "vanishing lighthouse").await.contains(&old),
            "a stale replica brought a removed page back\n{}",
            back.log_tail()
        );
        let stale_gone = !local(&back, "vanishing lighthouse").await.contains(&old);
        // A few maintenance rounds (1 s each) and a revisit interval after the return.
        if stale_gone && came_back.elapsed() > Duration::from_secs(15) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stale copy stayed\n{}",
            back.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for p in [witness, &back] {
        let hits = p
            .search("vanishing lighthouse", "&scope=network")
            .await
            .unwrap();
        assert!(
            !hits.to_string().contains(&old),
            "a removed page in a network answer: {hits}"
        );
    }
}
