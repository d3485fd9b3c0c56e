//! Score explanations: the `explain` parameter of the API, the results page's "why" link and
//! the `/why` page (the explanation of the right hit, escaped; 404 and 400 pages).

use crate::common;

use axum::http::StatusCode;
use common::checks::check_page;
use common::{FakeBackend, explanation, get, hit, plain_hits, router, router_with, send};
use peersearch_web::{Scope, SearchResponse};

#[tokio::test]
async fn api_search_passes_explain_and_returns_explanations_only_when_asked() {
    let (router, backend) = router_with(FakeBackend::explaining(plain_hits(3)));
    let reply = send(&router, get("/api/search?q=rust")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(!backend.last_search().explain);
    assert!(
        !reply.body.contains("explanation"),
        "no explanation key when not asked: {}",
        reply.body
    );

    for flag in ["1", "true"] {
        let reply = send(&router, get(&format!("/api/search?q=rust&explain={flag}"))).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert!(backend.last_search().explain);
        let answer: SearchResponse = serde_json::from_str(&reply.body).unwrap();
        let e = answer.hits[0].explanation.as_ref().expect("explained");
        assert_eq!(e.terms[0].clause, "rust");
        assert_eq!(e.num_docs, 5692);
        let json = reply.json();
        assert_eq!(
            json["hits"][0]["explanation"]["terms"][0]["words"][0]["doc_freq"],
            45
        );
    }
    for flag in ["0", "false"] {
        send(&router, get(&format!("/api/search?q=rust&explain={flag}"))).await;
        assert!(!backend.last_search().explain, "{flag}");
    }
}

#[tokio::test]
async fn a_bad_explain_parameter_is_a_400() {
    let (router, backend) = router();
    for path in [
        "/api/search?q=x&explain=yes",
        "/api/search?q=x&explain=",
        "/api/search?q=x&explain=2",
    ] {
        let reply = send(&router, get(path)).await;
        reply.assert_api_error(StatusCode::BAD_REQUEST, "invalid_parameter");
        assert!(reply.body.contains("explain"), "{}", reply.body);
    }
    let reply = send(&router, get("/search?q=x&explain=on")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.body.contains("explain"));
    check_page(&reply.body);
    assert!(backend.searches.lock().unwrap().is_empty());
}

#[tokio::test]
async fn every_result_has_a_why_link_with_its_search() {
    let (router, backend) = router_with(FakeBackend::new(plain_hits(25)));
    let reply = send(&router, get("/search?q=rust+%26+co&offset=10&scope=local")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        !backend.last_search().explain,
        "the results page does not explain"
    );
    let doc = scraper::Html::parse_document(&reply.body);
    let sel = scraper::Selector::parse(".result a.why").unwrap();
    let links: Vec<&str> = doc
        .select(&sel)
        .map(|a| a.value().attr("href").unwrap())
        .collect();
    assert_eq!(links.len(), 10);
    assert_eq!(
        links[0],
        "/why?q=rust+%26+co&url=http%3A%2F%2Fexample.com%2F10&offset=10&scope=local"
    );
    check_page(&reply.body);

    let reply = send(&router, get("/search?q=rust")).await;
    assert!(
        reply
            .body
            .contains("href=\"/why?q=rust&amp;url=http%3A%2F%2Fexample.com%2F0\">why</a>"),
        "no offset or scope when default: {}",
        reply.body
    );
}

#[tokio::test]
async fn why_page_explains_the_right_hit_with_hostile_text_escaped() {
    let mut backend = FakeBackend::explaining(plain_hits(15));
    let url = "http://example.com/12".to_owned();
    backend.explanations.insert(
        url.clone(),
        explanation(
            10.0 - 12.0,
            "<script>alert(1)</script>",
            "body\"><img src=x>",
        ),
    );
    let (router, backend) = router_with(backend);
    let reply = send(
        &router,
        get("/why?q=rust&url=http%3A%2F%2Fexample.com%2F12&offset=10&scope=local"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let search = backend.last_search();
    assert!(search.explain);
    assert_eq!(
        (search.q.as_str(), search.offset, search.limit, search.scope),
        ("rust", 10, 10, Scope::Local)
    );
    let body = &reply.body;
    check_page(body);
    assert!(body.contains("Page 12 about rust"), "{body}");
    assert!(
        body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{body}"
    );
    assert!(body.contains("body&quot;&gt;&lt;img src=x&gt;"), "{body}");
    assert!(
        !body.contains("<script") && !body.contains("<img"),
        "{body}"
    );
    // The table of term parts and the numbers that make the score.
    let doc = scraper::Html::parse_document(body);
    let sel = |s: &str| scraper::Selector::parse(s).unwrap();
    assert_eq!(doc.select(&sel("img, script")).count(), 0);
    let cells: Vec<String> = doc
        .select(&sel("table"))
        .next()
        .expect("a term table")
        .select(&sel("tbody td"))
        .map(|td| td.text().collect::<String>())
        .collect();
    assert_eq!(
        cells,
        [
            "<script>alert(1)</script>",
            "body\"><img src=x>",
            "1.00",
            "3",
            "120",
            "88.1",
            "45 / 5,692",
            "4.810",
            "7.250",
        ]
    );
    assert!(body.contains("-2.000"), "the score: {body}");
    assert!(body.contains("The parts add up to the score"));
    assert!(body.contains("Linked from 7 sites and 90 pages"), "{body}");
    assert!(
        body.contains("relevance = 85.0 · 9.250 / (9.250 + 50.0)"),
        "{body}"
    );
    assert!(body.contains("href=\"/search?q=rust&amp;scope=local&amp;offset=10\""));
    // Not another hit's explanation.
    assert!(!body.contains("Page 11 about rust"));
}

#[tokio::test]
async fn why_page_says_when_a_hit_has_no_explanation() {
    let (router, _) = router_with(FakeBackend::new(plain_hits(3)));
    let reply = send(&router, get("/why?q=rust&url=http://example.com/1")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply.body.contains("There is no explanation"),
        "{}",
        reply.body
    );
    check_page(&reply.body);
}

#[tokio::test]
async fn why_page_for_a_url_not_among_the_results_is_a_404_with_the_way_back() {
    let hits = vec![hit(0, "t", "s", "http://example.com/a")];
    let (router, _) = router_with(FakeBackend::explaining(hits));
    for path in [
        "/why?q=rust&url=http://example.com/elsewhere",
        // On another page of the results.
        "/why?q=rust&url=http://example.com/a&offset=10",
    ] {
        let reply = send(&router, get(path)).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert!(reply.is_html());
        assert!(reply.body.contains("Result not found"), "{}", reply.body);
        assert!(reply.body.contains("Back to the results"));
        assert!(reply.body.contains("href=\"/search?q=rust"));
        check_page(&reply.body);
    }
}

#[tokio::test]
async fn why_page_refuses_bad_parameters_with_a_400_page() {
    let (router, backend) = router();
    for path in [
        "/why",
        "/why?url=http://example.com/0",
        "/why?q=&url=http://example.com/0",
        "/why?q=rust",
        "/why?q=rust&url=javascript:alert(1)",
        "/why?q=rust&url=http://example.com/0&offset=-1",
    ] {
        let reply = send(&router, get(path)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(reply.is_html(), "{path}");
        assert!(!reply.body.contains("<script"));
        check_page(&reply.body);
    }
    assert!(backend.searches.lock().unwrap().is_empty());
}
