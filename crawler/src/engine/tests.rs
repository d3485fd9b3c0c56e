//! Crawls of local fixture sites (127.0.0.1) through the whole pipeline, acting as the
//! node does.

use super::*;
use crate::fetch::Fetcher;
use crate::normalize::normalize;
use crate::test_util::{
    FakeDns, PUBLIC_IP, at, public_stand_in, serve, serve_at, serve_secret, wait_until,
};
use axum::Router;
use axum::extract::Path as AxumPath;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const SITE_PAGES: usize = 20;

/// 20 pages; page i links to i+1, i+2, the home page and itself.
fn site_router() -> Router {
    Router::new()
        .route(
            "/robots.txt",
            get(|| async { "User-agent: *\nDisallow: /private\n" }),
        )
        .route(
            "/page/{n}",
            get(|AxumPath(n): AxumPath<usize>| async move {
                if n >= SITE_PAGES {
                    return StatusCode::NOT_FOUND.into_response();
                }
                let mut links = String::new();
                for target in [n + 1, n + 2, 0, n] {
                    if target < SITE_PAGES {
                        links.push_str(&format!("<a href=\"/page/{target}\">page {target}</a> "));
                    }
                }
                (
                    [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    format!(
                        "<html><head><title>Page {n}</title></head>\
                         <body><p>Unique words for page number {n}.</p>{links}</body></html>"
                    ),
                )
                    .into_response()
            }),
        )
}

fn test_config() -> CrawlerConfig {
    CrawlerConfig {
        crawl_rate: 1000.0,
        allow_private_addresses: true,
        request_timeout: Duration::from_secs(10),
        ..CrawlerConfig::default()
    }
}

/// Acts as the node: enqueues links and marks every page committed until the crawl
/// is idle (nothing queued or in flight, or the fetch budget spent and nothing in
/// flight); then stops the loop. Returns the pages received. `limit` only bounds a
/// hang: the test fails when the crawl does not go idle within it.
async fn crawl_until_idle(crawler: &Crawler, limit: Duration) -> Vec<CrawledPage> {
    let (tx, mut rx) = mpsc::channel(16);
    let shutdown = CancellationToken::new();
    let run = tokio::spawn({
        let crawler = crawler.clone();
        let shutdown = shutdown.clone();
        async move { crawler.run(tx, shutdown).await }
    });
    let mut pages = Vec::new();
    let idle = |c: &Crawler| {
        let stats = c.stats();
        stats.in_flight == 0 && (stats.frontier_size == 0 || c.budget_exhausted())
    };
    tokio::time::timeout(limit, async {
        loop {
            match tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
                Ok(Some(page)) => {
                    commit(crawler, &page).await;
                    pages.push(page);
                }
                Ok(None) => break,
                Err(_) if idle(crawler) => break,
                Err(_) => {}
            }
        }
    })
    .await
    .expect("the crawl did not go idle in time");
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("crawl loop stops on shutdown")
        .unwrap();
    // A page sent just as the crawl looked idle is still in the channel.
    while let Ok(page) = rx.try_recv() {
        commit(crawler, &page).await;
        pages.push(page);
    }
    pages
}

/// What the node does with a page: enqueue its links, mark it committed.
async fn commit(crawler: &Crawler, page: &CrawledPage) {
    crawler.enqueue(page.links.clone()).await.unwrap();
    crawler
        .mark_committed(std::slice::from_ref(&page.url))
        .await
        .unwrap();
}

#[tokio::test]
async fn crawls_a_small_site_once_and_goes_idle() {
    let base = serve(site_router()).await;
    let dir = tempfile::tempdir().unwrap();
    let crawler = Crawler::open(dir.path(), test_config()).unwrap();
    let report = crawler
        .enqueue(vec![
            Seed::new(normalize(&format!("{base}/page/0"), None).unwrap()),
            Seed::new(normalize(&format!("{base}/private/x"), None).unwrap()),
        ])
        .await
        .unwrap();
    assert_eq!(report.accepted, 2);

    let pages = crawl_until_idle(&crawler, Duration::from_secs(60)).await;
    let urls: Vec<String> = pages.iter().map(|p| p.url.to_string()).collect();
    let distinct: HashSet<&String> = urls.iter().collect();
    assert_eq!(
        distinct.len(),
        urls.len(),
        "a page was reported twice: {urls:?}"
    );
    assert_eq!(pages.len(), SITE_PAGES + 1, "{urls:?}");

    let private = pages
        .iter()
        .find(|p| p.url.as_url().path() == "/private/x")
        .expect("robots-denied url reported");
    assert_eq!(private.outcome, Outcome::RobotsDenied);
    for page in pages
        .iter()
        .filter(|p| p.url.as_url().path() != "/private/x")
    {
        assert_eq!(page.outcome, Outcome::Indexable, "{}", page.url);
        let doc = page.page.as_ref().unwrap();
        assert!(doc.title.starts_with("Page "));
        assert!(page.depth <= SITE_PAGES as u32);
    }
    let page1 = pages
        .iter()
        .find(|p| p.url.as_url().path() == "/page/1")
        .unwrap();
    assert_eq!(page1.anchors, vec!["page 1".to_owned()]);

    let stats = crawler.stats();
    assert_eq!(stats.frontier_size, 0);
    assert_eq!(stats.in_flight, 0);
    assert_eq!(stats.pages_crawled, SITE_PAGES as u64);
    assert_eq!(stats.pages_failed, 0);
    assert_eq!(stats.outcomes.get("indexable"), Some(&(SITE_PAGES as u64)));
    assert_eq!(stats.outcomes.get("robots_denied"), Some(&1));

    // Everything is done durably: reopening finds nothing to crawl.
    drop(crawler);
    let crawler = Crawler::open(dir.path(), test_config()).unwrap();
    assert_eq!(crawler.stats().frontier_size, 0);
    let again = crawler
        .enqueue(vec![Seed::new(
            normalize(&format!("{base}/page/3"), None).unwrap(),
        )])
        .await
        .unwrap();
    assert_eq!(again.accepted, 0);
}

#[tokio::test]
async fn reports_redirects_noindex_duplicates_and_failures() {
    let flaky_hits = Arc::new(AtomicUsize::new(0));
    let hits = flaky_hits.clone();
    let router = Router::new()
        .route("/robots.txt", get(|| async { StatusCode::NOT_FOUND }))
        .route("/old", get(|| async { Redirect::permanent("/new") }))
        .route(
            "/new",
            get(|| async { axum::response::Html("<title>New</title><p>new text</p>") }),
        )
        .route(
            "/noindex",
            get(|| async {
                axum::response::Html(
                    "<meta name=robots content=noindex><p>hidden</p><a href=/linked>l</a>",
                )
            }),
        )
        .route(
            "/linked",
            get(|| async { axum::response::Html("<title>Linked</title><p>linked</p>") }),
        )
        .route(
            "/copy",
            get(|| async { axum::response::Html("<title>New</title><p>new text</p>") }),
        )
        .route("/gone", get(|| async { StatusCode::GONE }))
        .route(
            "/pdf",
            get(|| async { ([(header::CONTENT_TYPE, "application/pdf")], "%PDF-1.4") }),
        )
        .route(
            "/flaky",
            get(move || {
                let n = hits.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n == 0 {
                        StatusCode::SERVICE_UNAVAILABLE.into_response()
                    } else {
                        axum::response::Html("<title>Flaky</title><p>ok now</p>").into_response()
                    }
                }
            }),
        );
    let base = serve(router).await;
    let dir = tempfile::tempdir().unwrap();
    let crawler = Crawler::open(dir.path(), test_config()).unwrap();
    let url = |p: &str| normalize(&format!("{base}{p}"), None).unwrap();
    // `/old` first so that `/copy` (same content as `/new`) comes later.
    crawler.enqueue(vec![Seed::new(url("/old"))]).await.unwrap();
    let first = crawl_until_idle(&crawler, Duration::from_secs(30)).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].outcome, Outcome::Indexable);
    assert_eq!(first[0].final_url, url("/new"));
    assert!(crawler.is_done(&url("/new")).await.unwrap());
    assert!(crawler.is_done(&url("/old")).await.unwrap());

    crawler
        .enqueue(
            ["/new", "/noindex", "/copy", "/gone", "/pdf", "/flaky"]
                .iter()
                .map(|p| Seed::new(url(p)))
                .collect(),
        )
        .await
        .unwrap();
    let pages = crawl_until_idle(&crawler, Duration::from_secs(60)).await;
    let outcome = |p: &str| {
        pages
            .iter()
            .find(|page| page.url == url(p))
            .map(|page| page.outcome.clone())
    };
    // `/new` was done as the redirect target of `/old`: refused as seen.
    assert_eq!(outcome("/new"), None);
    assert_eq!(outcome("/noindex"), Some(Outcome::NoIndex));
    assert_eq!(outcome("/linked"), Some(Outcome::Indexable));
    assert_eq!(outcome("/copy"), Some(Outcome::Duplicate));
    assert_eq!(outcome("/gone"), Some(Outcome::HttpError(410)));
    assert_eq!(outcome("/pdf"), Some(Outcome::NotHtml));
    assert_eq!(outcome("/flaky"), Some(Outcome::Indexable));
    assert_eq!(flaky_hits.load(Ordering::SeqCst), 2);
    let noindex = pages.iter().find(|p| p.url == url("/noindex")).unwrap();
    assert!(noindex.page.is_none());
    assert_eq!(noindex.links.len(), 1);

    let errors = crawler.recent_errors();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].1, url("/gone").to_string());
    assert_eq!(crawler.stats().pages_failed, 1);
}

/// Crawls the 20-page site from `/page/0` with `config` until idle.
async fn crawl_site(config: CrawlerConfig) -> (Crawler, Vec<CrawledPage>, tempfile::TempDir) {
    let base = serve(site_router()).await;
    let dir = tempfile::tempdir().unwrap();
    let crawler = Crawler::open(dir.path(), config).unwrap();
    let start = normalize(&format!("{base}/page/0"), None).unwrap();
    crawler.enqueue(vec![Seed::new(start)]).await.unwrap();
    let pages = crawl_until_idle(&crawler, Duration::from_secs(60)).await;
    (crawler, pages, dir)
}

#[tokio::test]
async fn blocked_destinations_are_reported() {
    let (crawler, pages, _dir) = crawl_site(CrawlerConfig {
        allow_private_addresses: false,
        ..test_config()
    })
    .await;
    assert_eq!(pages.len(), 1);
    assert!(
        matches!(pages[0].outcome, Outcome::Blocked(_)),
        "{:?}",
        pages[0].outcome
    );
    assert_eq!(crawler.stats().pages_failed, 1);
    assert_eq!(crawler.recent_errors().len(), 1);
}

#[tokio::test]
async fn max_pages_stops_fetching() {
    let (crawler, pages, _dir) = crawl_site(CrawlerConfig {
        max_pages: Some(3),
        ..test_config()
    })
    .await;
    assert_eq!(pages.len(), 3);
    assert!(crawler.stats().frontier_size > 0);
}

#[tokio::test]
async fn shutdown_puts_interrupted_jobs_back() {
    let router = Router::new().route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "late"
        }),
    );
    let base = serve(router).await;
    let dir = tempfile::tempdir().unwrap();
    let crawler = Crawler::open(dir.path(), test_config()).unwrap();
    crawler
        .enqueue(vec![Seed::new(
            normalize(&format!("{base}/slow"), None).unwrap(),
        )])
        .await
        .unwrap();
    let (tx, _rx) = mpsc::channel(4);
    let shutdown = CancellationToken::new();
    let run = tokio::spawn({
        let crawler = crawler.clone();
        let shutdown = shutdown.clone();
        async move { crawler.run(tx, shutdown).await }
    });
    wait_until(Duration::from_secs(30), || async {
        crawler.stats().in_flight == 1
    })
    .await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .unwrap()
        .unwrap();
    let stats = crawler.stats();
    assert_eq!(stats.in_flight, 0);
    assert_eq!(stats.frontier_size, 1);
}

/// A handler that counts its requests and serves an indexable page.
fn counted_page(hits: &Arc<AtomicUsize>, title: &'static str) -> axum::routing::MethodRouter {
    let hits = hits.clone();
    get(move || {
        hits.fetch_add(1, Ordering::SeqCst);
        async move { axum::response::Html(format!("<title>{title}</title><p>{title} text</p>")) }
    })
}

fn page_of<'a>(pages: &'a [CrawledPage], url: &NormalizedUrl) -> &'a CrawledPage {
    pages
        .iter()
        .find(|p| p.url == *url)
        .unwrap_or_else(|| panic!("{url} not reported"))
}

#[tokio::test]
async fn redirect_to_a_path_disallowed_by_robots_is_not_fetched() {
    let private_hits = Arc::new(AtomicUsize::new(0));
    let router = Router::new()
        .route(
            "/robots.txt",
            get(|| async { "User-agent: *\nDisallow: /private\n" }),
        )
        .route("/public", get(|| async { Redirect::to("/private") }))
        .route("/private", counted_page(&private_hits, "Private"));
    let base = serve(router).await;
    let dir = tempfile::tempdir().unwrap();
    let crawler = Crawler::open(dir.path(), test_config()).unwrap();
    let public = normalize(&format!("{base}/public"), None).unwrap();
    crawler
        .enqueue(vec![Seed::new(public.clone())])
        .await
        .unwrap();
    let pages = crawl_until_idle(&crawler, Duration::from_secs(60)).await;
    assert_eq!(pages.len(), 1);
    let page = page_of(&pages, &public);
    assert_eq!(page.outcome, Outcome::RobotsDenied);
    assert!(page.page.is_none());
    assert_eq!(
        private_hits.load(Ordering::SeqCst),
        0,
        "/private was fetched"
    );
    assert!(crawler.is_done(&public).await.unwrap());
}

#[tokio::test]
async fn cross_host_redirect_target_must_pass_its_own_robots() {
    let secret_hits = Arc::new(AtomicUsize::new(0));
    let open_hits = Arc::new(AtomicUsize::new(0));
    let other = serve(
        Router::new()
            .route(
                "/robots.txt",
                get(|| async { "User-agent: peersearch\nDisallow: /secret\n" }),
            )
            .route("/secret", counted_page(&secret_hits, "Secret"))
            .route("/open", counted_page(&open_hits, "Open")),
    )
    .await;
    let (to_secret, to_open) = (format!("{other}/secret"), format!("{other}/open"));
    let base = serve(
        Router::new()
            .route("/robots.txt", get(|| async { StatusCode::NOT_FOUND }))
            .route(
                "/go-secret",
                get(move || async move { Redirect::to(&to_secret) }),
            )
            .route(
                "/go-open",
                get(move || async move { Redirect::to(&to_open) }),
            ),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let crawler = Crawler::open(dir.path(), test_config()).unwrap();
    let url = |s: &str| normalize(s, None).unwrap();
    let (go_secret, go_open) = (
        url(&format!("{base}/go-secret")),
        url(&format!("{base}/go-open")),
    );
    crawler
        .enqueue(vec![
            Seed::new(go_secret.clone()),
            Seed::new(go_open.clone()),
        ])
        .await
        .unwrap();
    let pages = crawl_until_idle(&crawler, Duration::from_secs(60)).await;
    assert_eq!(page_of(&pages, &go_secret).outcome, Outcome::RobotsDenied);
    assert_eq!(secret_hits.load(Ordering::SeqCst), 0, "/secret was fetched");
    let opened = page_of(&pages, &go_open);
    assert_eq!(opened.outcome, Outcome::Indexable);
    assert_eq!(opened.final_url, url(&format!("{other}/open")));
    assert_eq!(open_hits.load(Ordering::SeqCst), 1);
}

/// A crawler with the SSRF guard on whose DNS is `dns`, dialling `fixture` when the
/// guard lets [`PUBLIC_IP`] through (the test seam of `fetch::guard`).
fn guarded_crawler(dir: &std::path::Path, dns: &Arc<FakeDns>, fixture: SocketAddr) -> Crawler {
    let config = CrawlerConfig {
        allow_private_addresses: false,
        resolver: Some(dns.resolver()),
        ..test_config()
    };
    let fetcher = Fetcher::new(crate::fetch::FetchConfig {
        stand_ins: public_stand_in(fixture),
        ..config.fetch_config()
    })
    .unwrap();
    Crawler::open_with_fetcher(dir, config, fetcher).unwrap()
}

#[tokio::test]
async fn crawl_with_the_guard_on_refuses_a_redirect_to_loopback() {
    let (secret, secret_hits) = serve_secret().await;
    let page_hits = Arc::new(AtomicUsize::new(0));
    let to_secret = format!("http://127.0.0.1:{}/", secret.port());
    let fixture = serve_at(
        Router::new()
            .route("/robots.txt", get(|| async { StatusCode::NOT_FOUND }))
            .route("/page", counted_page(&page_hits, "Allowed"))
            .route("/go", get(move || async move { Redirect::to(&to_secret) })),
    )
    .await;
    let dns = Arc::new(FakeDns::default());
    dns.answer("allowed.test", vec![at(PUBLIC_IP)]);
    let dir = tempfile::tempdir().unwrap();
    let crawler = guarded_crawler(dir.path(), &dns, fixture);
    let url = |s: &str| normalize(s, None).unwrap();
    let (page, go) = (
        url("http://allowed.test/page"),
        url("http://allowed.test/go"),
    );
    crawler
        .enqueue(vec![Seed::new(page.clone()), Seed::new(go.clone())])
        .await
        .unwrap();
    let pages = crawl_until_idle(&crawler, Duration::from_secs(60)).await;
    // The allowed site is crawled with the guard on ...
    assert_eq!(page_of(&pages, &page).outcome, Outcome::Indexable);
    assert_eq!(page_hits.load(Ordering::SeqCst), 1);
    // ... and its redirect to loopback is refused by it.
    let refused = page_of(&pages, &go);
    assert!(
        matches!(refused.outcome, Outcome::Blocked(_)),
        "{:?}",
        refused.outcome
    );
    assert_eq!(secret_hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn crawl_refuses_a_site_whose_name_rebinds_to_loopback() {
    let (secret, secret_hits) = serve_secret().await;
    // robots.txt is fetched over the first answer; closing the connection makes the
    // page fetch resolve again, and the name then answers loopback.
    let fixture = serve_at(Router::new().route(
        "/robots.txt",
        get(|| async { ([(header::CONNECTION, "close")], "User-agent: *\nAllow: /\n") }),
    ))
    .await;
    let dns = Arc::new(FakeDns::default());
    dns.answer("rebind.test", vec![at(PUBLIC_IP), vec![secret]]);
    let dir = tempfile::tempdir().unwrap();
    let crawler = guarded_crawler(dir.path(), &dns, fixture);
    let page = normalize("http://rebind.test/page", None).unwrap();
    crawler
        .enqueue(vec![Seed::new(page.clone())])
        .await
        .unwrap();
    let pages = crawl_until_idle(&crawler, Duration::from_secs(60)).await;
    let refused = page_of(&pages, &page);
    assert!(
        matches!(refused.outcome, Outcome::Blocked(_)),
        "{:?}",
        refused.outcome
    );
    assert_eq!(dns.lookups("rebind.test"), 2);
    assert_eq!(secret_hits.load(Ordering::SeqCst), 0);
}

/// A scoped seed's crawl follows only links inside its scope: the others are never looked
/// up, their robots.txt is never asked for, and they are no failure; the links kept carry
/// the scope on; a redirect out of the scope is not followed, and is no failure either.
#[tokio::test]
async fn a_scoped_crawl_never_touches_what_is_outside_its_scope() {
    let outside_hits = Arc::new(AtomicUsize::new(0));
    let fixture = serve_at(
        Router::new()
            .route("/robots.txt", get(|| async { StatusCode::NOT_FOUND }))
            .route(
                "/",
                get(|| async {
                    axum::response::Html(
                        "<title>Home</title><p>home</p>\
                         <a href=\"/docs/a\">in</a> <a href=\"/blog/b\">other path</a>\
                         <a href=\"/docs/a?print=1\">denied</a>\
                         <a href=\"http://outside.test/x\">another site</a>\
                         <a href=\"/docs/away\">redirect</a>",
                    )
                }),
            )
            .route(
                "/docs/a",
                get(|| async {
                    axum::response::Html(
                        "<title>A</title><p>a</p><a href=\"/docs/deeper\">deeper</a>",
                    )
                }),
            )
            .route("/docs/deeper", counted_page(&outside_hits, "Too deep"))
            .route("/blog/b", counted_page(&outside_hits, "Blog"))
            .route(
                "/docs/away",
                get(|| async { Redirect::to("http://outside.test/y") }),
            ),
    )
    .await;
    let dns = Arc::new(FakeDns::default());
    dns.answer("site.test", vec![at(PUBLIC_IP)]);
    dns.answer("outside.test", vec![at(PUBLIC_IP)]);
    let dir = tempfile::tempdir().unwrap();
    let crawler = guarded_crawler(dir.path(), &dns, fixture);
    let url = |s: &str| normalize(s, None).unwrap();
    let scope = crate::Scope {
        prefixes: vec!["http://site.test/docs/".into()],
        deny: vec![r"\?print=".into()],
        max_depth: Some(1),
        ..crate::Scope::default()
    }
    .checked()
    .unwrap();
    let home = url("http://site.test/");
    crawler
        .enqueue(vec![Seed {
            scope: Some(scope.clone()),
            ..Seed::new(home.clone())
        }])
        .await
        .unwrap();
    let pages = crawl_until_idle(&crawler, Duration::from_secs(60)).await;
    // The seed itself is crawled even though its scope names only /docs/.
    let seed_page = page_of(&pages, &home);
    assert_eq!(seed_page.outcome, Outcome::Indexable);
    let followed: Vec<&str> = seed_page.links.iter().map(|l| l.url.as_str()).collect();
    assert_eq!(
        followed,
        vec!["http://site.test/docs/a", "http://site.test/docs/away"]
    );
    assert!(
        seed_page
            .links
            .iter()
            .all(|l| l.scope.as_ref() == Some(&scope))
    );
    assert_eq!(
        page_of(&pages, &url("http://site.test/docs/a")).outcome,
        Outcome::Indexable
    );
    let away = page_of(&pages, &url("http://site.test/docs/away"));
    assert_eq!(away.outcome, Outcome::OutOfScope);
    assert!(!away.outcome.is_failure());
    assert_eq!(pages.len(), 3, "{pages:?}");
    assert_eq!(
        outside_hits.load(Ordering::SeqCst),
        0,
        "/blog or a too deep page was fetched"
    );
    assert_eq!(
        dns.lookups("outside.test"),
        0,
        "a host outside the scope was looked up"
    );
    assert_eq!(crawler.stats().pages_failed, 0);
}

/// A seed that redirects out of its own scope (`http://x/` to `https://www.x/`) is still
/// fetched where it lands, and that site becomes part of its scope: its links are followed.
#[tokio::test]
async fn a_scoped_seed_that_redirects_elsewhere_is_crawled_where_it_lands() {
    let fixture = serve_at(
        Router::new()
            .route("/robots.txt", get(|| async { StatusCode::NOT_FOUND }))
            .route(
                "/start",
                get(|| async { Redirect::to("http://www.site.test/") }),
            )
            .route(
                "/",
                get(|| async {
                    axum::response::Html("<title>Home</title><p>home</p><a href=\"/a\">a</a>")
                }),
            )
            .route(
                "/a",
                get(|| async { axum::response::Html("<title>A</title><p>a</p>") }),
            ),
    )
    .await;
    let dns = Arc::new(FakeDns::default());
    dns.answer("site.test", vec![at(PUBLIC_IP)]);
    dns.answer("www.site.test", vec![at(PUBLIC_IP)]);
    let dir = tempfile::tempdir().unwrap();
    let crawler = guarded_crawler(dir.path(), &dns, fixture);
    let url = |s: &str| normalize(s, None).unwrap();
    let scope = crate::Scope {
        hosts: vec!["site.test".into()],
        ..crate::Scope::default()
    };
    let start = url("http://site.test/start");
    crawler
        .enqueue(vec![Seed {
            scope: Some(scope),
            ..Seed::new(start.clone())
        }])
        .await
        .unwrap();
    let pages = crawl_until_idle(&crawler, Duration::from_secs(60)).await;
    let landed = page_of(&pages, &start);
    assert_eq!(landed.outcome, Outcome::Indexable);
    assert_eq!(landed.final_url, url("http://www.site.test/"));
    assert_eq!(
        page_of(&pages, &url("http://www.site.test/a")).outcome,
        Outcome::Indexable
    );
}

/// Runs the crawl loop, acting as the node does, until `enough` says so about the pages
/// received (in order); `limit` only bounds a hang.
async fn crawl_until(
    crawler: &Crawler,
    limit: Duration,
    mut enough: impl FnMut(&[CrawledPage]) -> bool,
) -> Vec<CrawledPage> {
    let (tx, mut rx) = mpsc::channel(16);
    let shutdown = CancellationToken::new();
    let run = tokio::spawn({
        let crawler = crawler.clone();
        let shutdown = shutdown.clone();
        async move { crawler.run(tx, shutdown).await }
    });
    let mut pages = Vec::new();
    tokio::time::timeout(limit, async {
        while !enough(&pages) {
            let page = rx.recv().await.expect("the crawl loop runs");
            commit(crawler, &page).await;
            pages.push(page);
        }
    })
    .await
    .unwrap_or_else(|_| {
        let seen: Vec<_> = pages
            .iter()
            .map(|p| (p.url.to_string(), p.revisit, p.outcome.clone()))
            .collect();
        panic!("the crawl did not get there in time: {seen:?}")
    });
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("crawl loop stops on shutdown")
        .unwrap();
    pages
}

/// Revisits: a 304 to a conditional fetch, the same content again, a changed page, a page
/// that answers 404, and one that redirects elsewhere now; each found for what it is.
#[tokio::test]
async fn revisits_find_what_changed_and_what_went_away() {
    use axum::http::HeaderMap;
    use std::sync::atomic::AtomicBool;

    let version = Arc::new(AtomicUsize::new(1));
    let not_modified = Arc::new(AtomicUsize::new(0));
    let changed = Arc::new(AtomicBool::new(false));
    let router = {
        let (version, not_modified, changed2, changed3) = (
            version.clone(),
            not_modified.clone(),
            changed.clone(),
            changed.clone(),
        );
        Router::new()
            .route("/robots.txt", get(|| async { StatusCode::NOT_FOUND }))
            .route(
                "/p",
                get(move |headers: HeaderMap| {
                    let n = version.load(Ordering::SeqCst);
                    let etag = format!("\"v{n}\"");
                    let matches = headers
                        .get(header::IF_NONE_MATCH)
                        .is_some_and(|v| v.to_str().ok() == Some(etag.as_str()));
                    if matches {
                        not_modified.fetch_add(1, Ordering::SeqCst);
                    }
                    async move {
                        if matches {
                            return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)])
                                .into_response();
                        }
                        (
                            [(header::ETAG, etag)],
                            axum::response::Html(format!(
                                "<title>Version {n}</title><p>edition{n} of this page</p>"
                            )),
                        )
                            .into_response()
                    }
                }),
            )
            .route(
                "/same",
                get(|| async { axum::response::Html("<title>Same</title><p>never changes</p>") }),
            )
            .route(
                "/gone",
                get(move || {
                    let gone = changed2.load(Ordering::SeqCst);
                    async move {
                        if gone {
                            StatusCode::NOT_FOUND.into_response()
                        } else {
                            axum::response::Html("<title>Soon gone</title><p>here now</p>")
                                .into_response()
                        }
                    }
                }),
            )
            .route(
                "/moved",
                get(move || {
                    let moved = changed3.load(Ordering::SeqCst);
                    async move {
                        if moved {
                            Redirect::permanent("/target").into_response()
                        } else {
                            axum::response::Html("<title>Moving</title><p>about to move</p>")
                                .into_response()
                        }
                    }
                }),
            )
            .route(
                "/target",
                get(|| async { axum::response::Html("<title>Target</title><p>moved here</p>") }),
            )
    };
    let base = serve(router).await;
    let dir = tempfile::tempdir().unwrap();
    let crawler = Crawler::open(
        dir.path(),
        CrawlerConfig {
            min_revisit_secs: 1,
            max_revisit_secs: 2,
            ..test_config()
        },
    )
    .unwrap();
    let url = |p: &str| normalize(&format!("{base}{p}"), None).unwrap();
    let paths = ["/p", "/same", "/gone", "/moved"];
    crawler
        .enqueue(paths.iter().map(|p| Seed::new(url(p))).collect())
        .await
        .unwrap();
    let revisit_of = |pages: &[CrawledPage], p: &str| {
        pages
            .iter()
            .rev()
            .find(|page| page.revisit && page.url == url(p))
            .cloned()
    };
    // Nothing changed yet: every page is revisited and found as it was.
    let pages = crawl_until(&crawler, Duration::from_secs(60), |pages| {
        paths.iter().all(|p| revisit_of(pages, p).is_some())
    })
    .await;
    let first = pages.iter().find(|p| p.url == url("/p")).unwrap();
    assert!(!first.revisit && first.outcome == Outcome::Indexable);
    assert_eq!(
        revisit_of(&pages, "/p").unwrap().outcome,
        Outcome::NotModified
    );
    assert!(
        not_modified.load(Ordering::SeqCst) >= 1,
        "the ETag went back"
    );
    for p in ["/same", "/gone", "/moved"] {
        let revisit = revisit_of(&pages, p).unwrap();
        assert_eq!(revisit.outcome, Outcome::Unchanged, "{p}");
        assert!(revisit.page.is_none() && revisit.removed.is_empty(), "{p}");
    }

    // Now the page changes, one page dies and one moves.
    version.store(2, Ordering::SeqCst);
    changed.store(true, Ordering::SeqCst);
    let settled = |pages: &[CrawledPage]| {
        let p = revisit_of(pages, "/p");
        let gone = revisit_of(pages, "/gone");
        let moved = revisit_of(pages, "/moved");
        p.is_some_and(|p| p.outcome == Outcome::Indexable)
            && gone.is_some_and(|g| g.outcome == Outcome::HttpError(404))
            && moved.is_some_and(|m| m.final_url == url("/target"))
    };
    let pages = crawl_until(&crawler, Duration::from_secs(60), settled).await;
    let p = revisit_of(&pages, "/p").unwrap();
    let text = &p.page.as_ref().unwrap().text;
    assert!(text.contains("edition2"), "{text}");
    assert!(p.removed.is_empty(), "a changed page keeps its document");
    let gone = revisit_of(&pages, "/gone").unwrap();
    assert_eq!(gone.removed, [url("/gone")], "a 404 removes the document");
    let moved = revisit_of(&pages, "/moved").unwrap();
    assert_eq!(moved.outcome, Outcome::Indexable);
    assert_eq!(
        moved.removed,
        [url("/moved")],
        "the old document makes way for the target"
    );
    let stats = crawler.stats();
    assert!(stats.pages_revisited >= 7, "{stats:?}");
    assert!(stats.pages_changed >= 1, "{stats:?}");
    assert!(stats.pages_unchanged >= 4, "{stats:?}");
    assert!(stats.pages_removed >= 2, "{stats:?}");
}

/// Sitemaps: a page linked from nowhere but listed in the sitemap robots.txt names is crawled;
/// a hostile sitemap (an index that loops, a gzip bomb, 100 000 URLs, other sites' URLs) is
/// cut off at its caps, reaches no other site, and the crawl goes on.
#[tokio::test]
async fn sitemaps_feed_the_frontier_within_their_caps() {
    use std::io::Write as _;
    let (secret, secret_hits) = serve_secret().await;
    let bomb = {
        // 200 MiB of XML whitespace after a valid start, compressed.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(b"<?xml version=\"1.0\"?><urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">")
            .unwrap();
        let chunk = vec![b' '; 1 << 20];
        for _ in 0..200 {
            gz.write_all(&chunk).unwrap();
        }
        Arc::new(gz.finish().unwrap())
    };
    let bound = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", bound.local_addr().unwrap());
    let big = {
        let mut xml = String::from(
            "<?xml version=\"1.0\"?><urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">",
        );
        xml.push_str(&format!("<url><loc>http://{secret}/stolen</loc></url>"));
        for i in 0..100_000 {
            xml.push_str(&format!("<url><loc>{base}/many/{i}</loc></url>"));
        }
        xml.push_str("</urlset>");
        Arc::new(xml)
    };
    let index = format!(
        "<?xml version=\"1.0\"?><sitemapindex xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\
         <sitemap><loc>{base}/maps/index.xml</loc></sitemap>\
         <sitemap><loc>{base}/maps/pages.xml</loc></sitemap>\
         <sitemap><loc>{base}/maps/big.xml</loc></sitemap>\
         <sitemap><loc>http://{secret}/sitemap.xml</loc></sitemap>\
         </sitemapindex>"
    );
    let pages = format!(
        "<?xml version=\"1.0\"?><urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\
         <url><loc>{base}/hidden</loc><lastmod>2026-01-01</lastmod></url>\
         <url><loc>http://{secret}/other</loc></url></urlset>"
    );
    let router = Router::new()
        .route(
            "/robots.txt",
            get(|| async {
                "User-agent: *\nAllow: /\nSitemap: /maps/index.xml\nSitemap: /maps/bomb.xml.gz\n"
            }),
        )
        .route(
            "/",
            get(|| async { axum::response::Html("<title>Home</title><p>the home page</p>") }),
        )
        .route(
            "/hidden",
            get(|| async {
                axum::response::Html("<title>Hidden</title><p>only the sitemap knows</p>")
            }),
        )
        .route(
            "/maps/index.xml",
            get(move || {
                let index = index.clone();
                async move { index }
            }),
        )
        .route(
            "/maps/pages.xml",
            get(move || {
                let pages = pages.clone();
                async move { pages }
            }),
        )
        .route(
            "/maps/big.xml",
            get(move || {
                let big = big.clone();
                async move { big.to_string() }
            }),
        )
        .route(
            "/maps/bomb.xml.gz",
            get(move || {
                let bomb = bomb.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "application/gzip")],
                        bomb.as_ref().clone(),
                    )
                }
            }),
        );
    tokio::spawn(async move {
        axum::serve(bound, router).await.unwrap();
    });
    let dir = tempfile::tempdir().unwrap();
    let crawler = Crawler::open(
        dir.path(),
        CrawlerConfig {
            max_pages_per_site: 50,
            ..test_config()
        },
    )
    .unwrap();
    let url = |p: &str| normalize(&format!("{base}{p}"), None).unwrap();
    crawler.enqueue(vec![Seed::new(url("/"))]).await.unwrap();
    let pages = crawl_until(&crawler, Duration::from_secs(120), |pages| {
        pages.iter().any(|p| p.url == url("/hidden")) && crawler.stats().sitemap_rounds >= 1
    })
    .await;
    let hidden = pages.iter().find(|p| p.url == url("/hidden")).unwrap();
    assert_eq!(hidden.outcome, Outcome::Indexable);
    let stats = crawler.stats();
    assert_eq!(stats.sitemap_rounds, 1, "one round per revisit interval");
    assert!(
        stats.sitemap_urls <= crate::sitemap::MAX_SITE_URLS as u64,
        "{stats:?}"
    );
    assert!(
        stats.frontier_size + stats.in_flight + pages.len() as u64 <= 50 + 1,
        "the site's page limit holds: {stats:?}"
    );
    assert_eq!(
        secret_hits.load(Ordering::SeqCst),
        0,
        "another site was reached"
    );
}

/// A page that keeps failing (5xx after retries) stays indexed through its first failures and
/// is removed on the failure that makes [`DEAD_AFTER_FAILURES`] in a row.
#[tokio::test]
async fn a_page_that_keeps_failing_is_removed_after_repeated_failures() {
    use crate::frontier::revisit::DEAD_AFTER_FAILURES;
    use std::sync::atomic::AtomicBool;
    let broken = Arc::new(AtomicBool::new(false));
    let flag = broken.clone();
    let router = Router::new()
        .route("/robots.txt", get(|| async { StatusCode::NOT_FOUND }))
        .route(
            "/",
            get(move || {
                let down = flag.load(Ordering::SeqCst);
                async move {
                    if down {
                        StatusCode::SERVICE_UNAVAILABLE.into_response()
                    } else {
                        axum::response::Html("<title>Up</title><p>working for now</p>")
                            .into_response()
                    }
                }
            }),
        );
    let base = serve(router).await;
    let dir = tempfile::tempdir().unwrap();
    let crawler = Crawler::open(
        dir.path(),
        CrawlerConfig {
            min_revisit_secs: 1,
            max_revisit_secs: 2,
            ..test_config()
        },
    )
    .unwrap();
    let home = normalize(&format!("{base}/"), None).unwrap();
    crawler
        .enqueue(vec![Seed::new(home.clone())])
        .await
        .unwrap();
    let first = crawl_until(&crawler, Duration::from_secs(30), |pages| !pages.is_empty()).await;
    assert_eq!(first[0].outcome, Outcome::Indexable);
    broken.store(true, Ordering::SeqCst);
    let pages = crawl_until(&crawler, Duration::from_secs(120), |pages| {
        pages.iter().any(|p| !p.removed.is_empty())
    })
    .await;
    let failed: Vec<&CrawledPage> = pages.iter().filter(|p| p.revisit).collect();
    assert!(
        failed.iter().all(|p| p.outcome == Outcome::HttpError(503)),
        "{:?}",
        failed.iter().map(|p| &p.outcome).collect::<Vec<_>>()
    );
    assert_eq!(
        failed.len(),
        DEAD_AFTER_FAILURES as usize,
        "kept through the first failures, removed on the last"
    );
    assert_eq!(failed.last().unwrap().removed, [home]);
    assert_eq!(crawler.stats().pages_removed, 1);
}
