//! The server-rendered pages: structure and accessibility, results, pagination, empty and
//! error states, escaping of crawled markup, the peer page.

use crate::common;

use axum::http::{StatusCode, header};
use common::checks::{check_page, xml_texts};
use common::{FakeBackend, PEER_ID, SearchMode, get, hit, plain_hits, router, router_with, send};

#[tokio::test]
async fn every_page_is_well_formed_and_accessible() {
    let (router, _) = router();
    for (path, status) in [
        ("/", StatusCode::OK),
        ("/search?q=rust", StatusCode::OK),
        ("/search?q=rust&page=2&limit=1", StatusCode::OK),
        ("/search?q=nothing&offset=999", StatusCode::OK),
        ("/search?q=", StatusCode::BAD_REQUEST),
        ("/help", StatusCode::OK),
        ("/status", StatusCode::OK),
        ("/status?accepted=3&rejected=1", StatusCode::OK),
        ("/nope", StatusCode::NOT_FOUND),
    ] {
        let reply = send(&router, get(path)).await;
        assert_eq!(reply.status, status, "{path}");
        assert!(reply.is_html(), "{path}: {}", reply.content_type());
        check_page(&reply.body);
    }
}

#[tokio::test]
async fn home_page_has_an_autofocused_labelled_search_box() {
    let (router, _) = router();
    let reply = send(&router, get("/")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let doc = scraper::Html::parse_document(&reply.body);
    let sel =
        scraper::Selector::parse(r#"form[action="/search"][method=get] input[name=q][autofocus]"#)
            .unwrap();
    assert_eq!(doc.select(&sel).count(), 1);
    assert!(reply.body.contains("href=\"/help\""));
    assert!(reply.body.contains("href=\"/status\""));
}

#[tokio::test]
async fn results_page_shows_hits_summary_and_pagination() {
    let mut backend = FakeBackend::new(plain_hits(25));
    backend.partial = true;
    let (router, backend) = router_with(backend);
    let reply = send(&router, get("/search?q=rust+%22quoted%22&page=2")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(backend.last_search().offset, 10);
    let body = &reply.body;
    assert!(
        body.contains("value=\"rust &quot;quoted&quot;\""),
        "query kept in the box"
    );
    assert!(
        body.contains("25 results in 14 ms from 2 of 3 peers"),
        "{body}"
    );
    assert!(body.contains("Some peers did not answer in time"));
    assert!(
        body.contains(
            "<a href=\"http://example.com/10\" rel=\"noreferrer\">Page 10 about rust</a>"
        )
    );
    assert!(body.contains("learn <b>rust</b> &amp; more"));
    assert!(body.contains(">…JzKpAb</code>"), "short peer id");
    assert!(body.contains(&format!("title=\"{PEER_ID}\"")));
    assert!(body.contains("rel=\"prev\""));
    assert!(body.contains("rel=\"next\""));
    assert!(body.contains("offset=20"));
    assert!(body.contains("<span aria-current=\"page\">2</span>"));
    assert!(body.contains("type=\"application/rss+xml\""));
    check_page(body);
}

#[tokio::test]
async fn results_page_has_an_empty_state() {
    let (router, _) = router_with(FakeBackend::new(Vec::new()));
    let reply = send(&router, get("/search?q=zzz")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.body.contains("No results for <strong>zzz</strong>"));
    assert!(!reply.body.contains("class=\"pagination\""));
    check_page(&reply.body);
}

#[tokio::test]
async fn bad_queries_on_the_results_page_give_an_html_400() {
    let (router, backend) = router();
    let long = "b".repeat(2048);
    for path in [
        "/search?q=".to_owned(),
        "/search?q=%20%20".to_owned(),
        format!("/search?q={long}"),
        "/search?q=x&limit=1e9".to_owned(),
        "/search?q=x&page=0".to_owned(),
    ] {
        let reply = send(&router, get(&path)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(reply.content_type().starts_with("text/html"), "{path}");
        assert!(reply.body.contains("class=\"error\""), "{path}");
        check_page(&reply.body);
    }
    backend.set_mode(SearchMode::BadQuery);
    let reply = send(&router, get("/search?q=%22open")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.body.contains("unbalanced quote"));
    check_page(&reply.body);

    let reply = send(&router, get("/search")).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.headers[header::LOCATION], "/");
}

#[tokio::test]
async fn crawled_markup_is_shown_as_text() {
    let evil = vec![
        hit(
            0,
            "<img src=x onerror=alert(1)>",
            "<script>alert(1)</script> <b>term</b> <img src=y>",
            "http://example.com/\"><script>alert(2)</script>",
        ),
        hit(
            1,
            "<script>alert(3)</script>",
            "plain",
            "javascript:alert(4)",
        ),
    ];
    let (router, _) = router_with(FakeBackend::new(evil));
    let reply = send(&router, get("/search?q=term")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let body = &reply.body;
    assert!(
        body.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{body}"
    );
    assert!(body.contains("&lt;script&gt;alert(1)&lt;/script&gt; <b>term</b> &lt;img src=y&gt;"));
    assert!(body.contains("&lt;script&gt;alert(3)&lt;/script&gt;"));
    assert!(!body.contains("<script"));
    assert!(!body.contains("<img"));
    assert!(!body.contains("href=\"javascript:"));
    check_page(body);
    let doc = scraper::Html::parse_document(body);
    let sel = |s: &str| scraper::Selector::parse(s).unwrap();
    assert_eq!(doc.select(&sel("img, script, [onerror]")).count(), 0);
    assert_eq!(doc.select(&sel(".snippet b")).count(), 1);

    let feed = send(&router, get("/search.rss?q=term")).await;
    assert_eq!(feed.status, StatusCode::OK);
    assert!(!feed.body.contains("<script"));
    assert_eq!(
        xml_texts(&feed.body, "title")[1],
        "<img src=x onerror=alert(1)>",
        "the title survives XML escaping as text"
    );
}

#[tokio::test]
async fn status_page_shows_the_peer_chart_and_errors() {
    let (router, _) = router();
    let reply = send(&router, get("/status")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let body = &reply.body;
    assert!(body.contains(PEER_ID));
    assert!(body.contains("/ip4/127.0.0.1/tcp/4001/p2p/"));
    assert!(body.contains("0.4 ms"));
    assert!(body.contains("1,234"));
    assert!(body.contains("1 h 2 min"));
    // Pages crawled, documents indexed, and the four revisit series.
    assert_eq!(body.matches("<polyline").count(), 6);
    assert!(
        body.contains("240 made: 60 changed, 170 unchanged, 10 removed; 7 due"),
        "the revisit facts"
    );
    assert!(body.contains("role=\"img\""));
    assert!(body.contains("http 500"));
    assert!(body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(body.contains("12D3KooWPeerOne&lt;script&gt;"));
    assert_eq!(reply.headers[header::CACHE_CONTROL], "no-store");
    check_page(body);
}
