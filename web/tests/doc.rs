//! `GET /api/doc` and the cached-text page `/doc`: the JSON shape, 400 for a bad URL, 404 for
//! an unknown one, the size caps, the "cached text" link of every result, and hostile crawled
//! markup shown as text, never run.

use crate::common;

use axum::http::StatusCode;
use common::checks::check_page;
use common::{FakeBackend, doc, get, router_with, send};
use peersearch_web::{
    CONTENT_SECURITY_POLICY, DocResponse, MAX_DOC_LIST_BYTES, MAX_DOC_TEXT_BYTES,
    MAX_DOC_URL_BYTES, Scope,
};

const URL: &str = "http://example.com/page";
const HOSTILE_URL: &str = "http://example.com/hostile";

/// A document whose every crawled part is markup meant to run.
fn hostile() -> DocResponse {
    let mut d = doc(
        HOSTILE_URL,
        "<img src=x onerror=alert(1)><script>alert('title')</script>",
        "Intro <script>document.title='pwned'</script> text.\n\
         <a href=\"javascript:alert(2)\">click</a> and <img src=x onerror=alert(3)>\n\
         <iframe src=\"javascript:alert(4)\"></iframe> & more",
    );
    d.anchor_text =
        "<b onmouseover=alert(5)>home</b>\njavascript:alert(6)\n<script>x</script>".into();
    d.description = "<svg onload=alert(7)>".into();
    d.headings = "<h1 onclick=alert(8)>Head</h1>".into();
    d.lang = "en\"><script>alert(9)</script>".into();
    d.content_hash = "<script>".into();
    d.holders = vec!["12D3KooW<script>alert(10)</script>".into()];
    d
}

fn backend() -> FakeBackend {
    let mut plain = doc(URL, "A plain page", "First paragraph.\nSecond paragraph.");
    plain.anchor_text = "plain page\nthe page".into();
    plain.inlink_sites = 2;
    plain.inlink_pages = 5;
    plain.lang = "en".into();
    let huge = doc(
        "http://example.com/huge",
        "Huge",
        &"word ".repeat(MAX_DOC_TEXT_BYTES / 2),
    );
    FakeBackend::with_docs(vec![plain, hostile(), huge])
}

fn enc(url: &str) -> String {
    url::form_urlencoded::byte_serialize(url.as_bytes()).collect()
}

#[tokio::test]
async fn api_doc_answers_the_documented_json_shape() {
    let (router, backend) = router_with(backend());
    let reply = send(&router, get(&format!("/api/doc?url={}", enc(URL)))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let json = reply.json();
    for field in [
        "url",
        "site",
        "title",
        "description",
        "text",
        "headings",
        "anchor_text",
        "inlink_sites",
        "inlink_pages",
        "lang",
        "fetched_at",
        "content_hash",
        "holders",
        "peer",
        "peers",
        "partial",
        "truncated",
        "took_ms",
    ] {
        assert!(json.get(field).is_some(), "{field} missing: {json}");
    }
    assert_eq!(json["url"], URL);
    assert_eq!(json["text"], "First paragraph.\nSecond paragraph.");
    assert_eq!(json["anchor_text"], "plain page\nthe page");
    assert_eq!(json["inlink_sites"], 2);
    assert_eq!(json["fetched_at"], 1_700_000_000);
    assert_eq!(json["holders"].as_array().unwrap().len(), 1);
    assert_eq!(json["truncated"], false);
    let asked = backend.doc_lookups.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        (asked.url.as_str(), asked.scope, asked.timeout_ms),
        (URL, Scope::Network, 2000)
    );

    let reply = send(
        &router,
        get(&format!(
            "/api/doc?url={}&scope=local&timeout_ms=300",
            enc(URL)
        )),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let asked = backend.doc_lookups.lock().unwrap().last().cloned().unwrap();
    assert_eq!((asked.scope, asked.timeout_ms), (Scope::Local, 300));
}

#[tokio::test]
async fn an_unknown_url_is_a_404_with_a_clear_message() {
    let (router, _) = router_with(backend());
    let reply = send(
        &router,
        get(&format!("/api/doc?url={}", enc("http://example.com/never"))),
    )
    .await;
    reply.assert_api_error(StatusCode::NOT_FOUND, "not_found");
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("no peer holds"), "{message}");

    let page = send(
        &router,
        get(&format!("/doc?url={}", enc("http://example.com/never"))),
    )
    .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.is_html());
    assert!(
        page.body.contains("No peer holds a document"),
        "{}",
        page.body
    );
    check_page(&page.body);
}

#[tokio::test]
async fn a_bad_url_is_a_400_and_never_reaches_the_backend() {
    let (router, backend) = router_with(backend());
    let long = format!("http://example.com/{}", "a".repeat(MAX_DOC_URL_BYTES));
    for query in [
        String::new(),
        "url=".to_owned(),
        "url=not%20a%20url".to_owned(),
        "url=%2Frelative".to_owned(),
        format!("url={}", enc("javascript:alert(1)")),
        format!("url={}", enc("ftp://example.com/")),
        format!("url={}", enc(&long)),
        format!("url={}&scope=everywhere", enc(URL)),
        format!("url={}&timeout_ms=99999", enc(URL)),
    ] {
        let reply = send(&router, get(&format!("/api/doc?{query}"))).await;
        reply.assert_api_error(StatusCode::BAD_REQUEST, "invalid_parameter");
        let page = send(&router, get(&format!("/doc?{query}"))).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(page.is_html());
        check_page(&page.body);
    }
    assert!(backend.doc_lookups.lock().unwrap().is_empty());
}

#[tokio::test]
async fn answers_are_capped_and_say_so() {
    let mut big = doc("http://example.com/big", "Big", "");
    big.text = "é".repeat(MAX_DOC_TEXT_BYTES);
    big.anchor_text = "anchor\n".repeat(MAX_DOC_LIST_BYTES);
    big.title = "t".repeat(100_000);
    let (router, _) = router_with(FakeBackend::with_docs(vec![big]));
    let reply = send(
        &router,
        get(&format!("/api/doc?url={}", enc("http://example.com/big"))),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let json = reply.json();
    assert_eq!(json["truncated"], true);
    assert!(json["text"].as_str().unwrap().len() <= MAX_DOC_TEXT_BYTES);
    assert!(json["anchor_text"].as_str().unwrap().len() <= MAX_DOC_LIST_BYTES);
    assert!(json["title"].as_str().unwrap().len() <= 4096);
    assert!(reply.body.len() < MAX_DOC_TEXT_BYTES + 2 * MAX_DOC_LIST_BYTES + 64 * 1024);

    let page = send(
        &router,
        get(&format!("/doc?url={}", enc("http://example.com/big"))),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("This text is cut short"));
    assert!(
        page.body.len() < 1024 * 1024,
        "the page is bounded: {} bytes",
        page.body.len()
    );
    check_page(&page.body);
}

#[tokio::test]
async fn a_huge_text_is_shown_cut_with_a_notice() {
    let (router, _) = router_with(backend());
    let page = send(
        &router,
        get(&format!("/doc?url={}", enc("http://example.com/huge"))),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("This text is cut short"));
    assert!(page.body.len() < 512 * 1024, "{} bytes", page.body.len());
    check_page(&page.body);
}

#[tokio::test]
async fn the_cached_text_page_shows_the_document() {
    let (router, _) = router_with(backend());
    let page = send(&router, get(&format!("/doc?url={}", enc(URL)))).await;
    assert_eq!(page.status, StatusCode::OK);
    check_page(&page.body);
    let html = scraper::Html::parse_document(&page.body);
    let sel = |s: &str| scraper::Selector::parse(s).unwrap();
    let h1: String = html
        .select(&sel("main h1"))
        .next()
        .unwrap()
        .text()
        .collect();
    assert_eq!(h1, "A plain page");
    let paras: Vec<String> = html
        .select(&sel(".cached-text p"))
        .map(|p| p.text().collect())
        .collect();
    assert_eq!(paras, ["First paragraph.", "Second paragraph."]);
    let anchors: Vec<String> = html
        .select(&sel("ul.cached-list li"))
        .map(|p| p.text().collect())
        .collect();
    assert_eq!(anchors, ["plain page", "the page"]);
    assert!(
        page.body
            .contains(&format!("href=\"{URL}\" rel=\"noreferrer nofollow\""))
    );
    assert!(
        page.body.contains("2023-11-14T22:13:20Z"),
        "fetch time shown"
    );
    assert!(page.body.contains(common::PEER_ID), "holders shown");
    assert!(page.body.contains("2 sites, 5 pages"));
    assert_eq!(
        page.headers["content-security-policy"],
        CONTENT_SECURITY_POLICY
    );
}

#[tokio::test]
async fn hostile_markup_in_a_document_is_shown_as_text() {
    let (router, _) = router_with(backend());
    let page = send(&router, get(&format!("/doc?url={}", enc(HOSTILE_URL)))).await;
    assert_eq!(page.status, StatusCode::OK);
    check_page(&page.body);
    let html = scraper::Html::parse_document(&page.body);
    let sel = |s: &str| scraper::Selector::parse(s).unwrap();
    for bad in [
        "script",
        "img",
        "iframe",
        "svg",
        "[onerror]",
        "[onload]",
        "[onclick]",
        "[onmouseover]",
    ] {
        assert_eq!(html.select(&sel(bad)).count(), 0, "{bad} in the page");
    }
    for a in html.select(&sel("a[href]")) {
        let href = a.value().attr("href").unwrap();
        assert!(
            href.starts_with('/')
                || href.starts_with("http://")
                || href.starts_with("https://")
                || href == "#main",
            "link to {href}"
        );
        assert!(!href.to_ascii_lowercase().contains("javascript"), "{href}");
    }
    // Every hostile part is there, as text.
    let text: String = html.root_element().text().collect();
    for shown in [
        "<img src=x onerror=alert(1)><script>alert('title')</script>",
        "<script>document.title='pwned'</script>",
        "<a href=\"javascript:alert(2)\">click</a>",
        "<b onmouseover=alert(5)>home</b>",
        "javascript:alert(6)",
        "<svg onload=alert(7)>",
        "12D3KooW<script>alert(10)</script>",
    ] {
        assert!(text.contains(shown), "{shown} not shown as text");
    }
    assert!(!page.body.contains("<script"));
    assert!(!page.body.contains("<img"));
    assert_eq!(
        page.headers["content-security-policy"],
        CONTENT_SECURITY_POLICY
    );

    // The JSON keeps the text as it was (it is data; a client escapes it).
    let reply = send(&router, get(&format!("/api/doc?url={}", enc(HOSTILE_URL)))).await;
    assert_eq!(reply.json()["title"], hostile().title);
}

#[tokio::test]
async fn every_result_links_to_its_cached_text() {
    let (router, _) = router_with(FakeBackend::new(vec![common::hit(
        0,
        "Odd",
        "s",
        "http://example.com/a?b=1&c=<x>",
    )]));
    let page = send(&router, get("/search?q=odd")).await;
    assert_eq!(page.status, StatusCode::OK);
    let html = scraper::Html::parse_document(&page.body);
    let sel = scraper::Selector::parse("ol.results li.result a.cached").unwrap();
    let links: Vec<&str> = html
        .select(&sel)
        .map(|a| a.value().attr("href").unwrap())
        .collect();
    assert_eq!(
        links,
        [format!(
            "/doc?url={}",
            enc("http://example.com/a?b=1&c=<x>")
        )]
    );
    check_page(&page.body);
}
