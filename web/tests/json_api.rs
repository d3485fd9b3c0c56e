//! The JSON API of the contract through `tower::ServiceExt::oneshot`: parameters, answers,
//! and every error in the contract's shape.

use crate::common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::checks::check_page;
use common::{HOST, PEER_ID, SearchMode, get, post_json, router, send};
use peersearch_web::{
    CrawlResponse, CrawlScope, PeerInfo, Scope, SearchParams, SearchResponse, StatusResponse,
};

#[tokio::test]
async fn api_search_passes_validated_params_and_returns_the_answer() {
    let (router, backend) = router();
    let reply = send(
        &router,
        get("/api/search?q=rust%20async&limit=2&offset=1&scope=local&timeout_ms=500&unknown=1"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.content_type().starts_with("application/json"));
    let answer: SearchResponse = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(answer.query, "rust async");
    assert_eq!(answer.hits.len(), 2);
    assert_eq!(answer.hits[0].url, "http://example.com/1");
    assert_eq!(
        backend.last_search(),
        SearchParams {
            q: "rust async".into(),
            limit: 2,
            offset: 1,
            scope: Scope::Local,
            timeout_ms: 500,
            explain: false,
        }
    );
}

#[tokio::test]
async fn every_bad_search_parameter_gets_a_400_with_its_code() {
    let (router, backend) = router();
    let long = "a".repeat(2048);
    let cases = [
        "/api/search".to_owned(),
        "/api/search?q=".to_owned(),
        "/api/search?q=%20%20%09".to_owned(),
        format!("/api/search?q={long}"),
        "/api/search?q=x&limit=0".to_owned(),
        "/api/search?q=x&limit=1e9".to_owned(),
        "/api/search?q=x&limit=1000000000".to_owned(),
        "/api/search?q=x&limit=-1".to_owned(),
        "/api/search?q=x&limit=abc".to_owned(),
        "/api/search?q=x&offset=1001".to_owned(),
        "/api/search?q=x&timeout_ms=10".to_owned(),
        "/api/search?q=x&timeout_ms=99999".to_owned(),
        "/api/search?q=x&scope=x".to_owned(),
    ];
    for path in &cases {
        let reply = send(&router, get(path)).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{path}: {}",
            reply.body
        );
        assert_eq!(reply.error_code(), "invalid_parameter", "{path}");
    }
    assert!(
        backend.searches.lock().unwrap().is_empty(),
        "no bad query reached the backend"
    );
}

#[tokio::test]
async fn backend_failures_map_to_statuses_without_leaking_details() {
    let (router, backend) = router();
    for (mode, status, code) in [
        (SearchMode::BadQuery, StatusCode::BAD_REQUEST, "bad_query"),
        (
            SearchMode::Unavailable,
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
        ),
        (
            SearchMode::Internal,
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
        ),
        (
            SearchMode::Panic,
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
        ),
    ] {
        backend.set_mode(mode);
        let reply = send(&router, get("/api/search?q=x")).await;
        assert_eq!(reply.status, status, "{mode:?}");
        assert_eq!(reply.error_code(), code);
        assert!(!reply.body.contains("secret"), "{}", reply.body);
        assert!(!reply.body.contains("backend bug"), "{}", reply.body);
    }
    backend.set_mode(SearchMode::Internal);
    let reply = send(&router, get("/search?q=x")).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(reply.content_type().starts_with("text/html"));
    assert!(!reply.body.contains("secret"));
    check_page(&reply.body);
}

#[tokio::test]
async fn crawl_accepts_urls_with_202() {
    let (router, backend) = router();
    let reply = send(
        &router,
        post_json(
            "/api/crawl",
            r#"{"urls": ["http://a.example/", "ftp://b.example/"]}"#,
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert!(reply.content_type().starts_with("application/json"));
    let answer: CrawlResponse = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(answer.accepted, 1);
    assert_eq!(answer.rejected[0].url, "ftp://b.example/");
    assert_eq!(
        backend.submitted.lock().unwrap()[0],
        vec!["http://a.example/", "ftp://b.example/"]
    );
}

#[tokio::test]
async fn crawl_passes_a_scope_on_and_refuses_a_bad_one_by_name() {
    let (router, backend) = router();
    let body = r#"{"urls": ["http://a.example/"],
        "scope": {"site": true, "hosts": ["b.example"], "deny": ["\\?print"], "max_depth": 2}}"#;
    let reply = send(&router, post_json("/api/crawl", body)).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    // Without a scope the backend decides (the peer's default).
    let reply = send(
        &router,
        post_json("/api/crawl", r#"{"urls": ["http://a.example/"]}"#),
    )
    .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    assert_eq!(
        *backend.scopes.lock().unwrap(),
        vec![
            Some(CrawlScope {
                site: true,
                hosts: vec!["b.example".into()],
                prefixes: Vec::new(),
                deny: vec![r"\?print".into()],
                max_depth: Some(2),
            }),
            None
        ]
    );
    // What the backend cannot use is a 400 that names the scope.
    let bad = r#"{"urls": ["http://a.example/"], "scope": {"deny": ["("]}}"#;
    let reply = send(&router, post_json("/api/crawl", bad)).await;
    reply.assert_api_error(StatusCode::BAD_REQUEST, "invalid_parameter");
    assert!(reply.body.contains("scope"), "{}", reply.body);
    // A misspelt field is refused, not ignored (it would widen the crawl).
    let typo = r#"{"urls": ["http://a.example/"], "scope": {"host": ["b.example"]}}"#;
    let reply = send(&router, post_json("/api/crawl", typo)).await;
    reply.assert_api_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    assert_eq!(backend.submitted.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn crawl_refuses_bad_bodies_in_the_error_shape() {
    let (router, backend) = router();
    let huge = format!(
        r#"{{"urls": ["http://a.example/{}"]}}"#,
        "x".repeat(3 << 20)
    );
    let reply = send(&router, post_json("/api/crawl", huge.clone())).await;
    reply.assert_api_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");

    // The same without Content-Length (a streamed body).
    let stream = futures::stream::iter(
        huge.into_bytes()
            .chunks(64 * 1024)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let reply = send(&router, post_json("/api/crawl", Body::from_stream(stream))).await;
    reply.assert_api_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");

    let not_json = Request::post("/api/crawl")
        .header(header::HOST, HOST)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from("http://a.example/"))
        .unwrap();
    let reply = send(&router, not_json).await;
    reply.assert_api_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");

    let reply = send(&router, post_json("/api/crawl", "{not json")).await;
    reply.assert_api_error(StatusCode::BAD_REQUEST, "bad_request");

    let reply = send(&router, post_json("/api/crawl", r#"{"urls": "http://a/"}"#)).await;
    reply.assert_api_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");

    let reply = send(&router, post_json("/api/crawl", r#"{"urls": []}"#)).await;
    reply.assert_api_error(StatusCode::BAD_REQUEST, "invalid_parameter");

    let many: Vec<String> = (0..1001).map(|i| format!("http://a.example/{i}")).collect();
    let body = serde_json::json!({ "urls": many }).to_string();
    let reply = send(&router, post_json("/api/crawl", body)).await;
    reply.assert_api_error(StatusCode::BAD_REQUEST, "invalid_parameter");

    assert!(backend.submitted.lock().unwrap().is_empty());
}

#[tokio::test]
async fn status_and_peers_are_json() {
    let (router, _) = router();
    let reply = send(&router, get("/api/status")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let status: StatusResponse = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(status.peer_id, PEER_ID);
    assert!(reply.content_type().starts_with("application/json"));
    let reply = send(&router, get("/api/peers")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.content_type().starts_with("application/json"));
    let peers: Vec<PeerInfo> = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(peers.len(), 2);
    assert_eq!(peers[0].rtt_ms, Some(0.42));
}

#[tokio::test]
async fn unknown_routes_and_methods_are_404_and_405_in_the_right_format() {
    let (router, _) = router();
    let reply = send(&router, get("/api/nope")).await;
    reply.assert_api_error(StatusCode::NOT_FOUND, "not_found");

    let reply = send(&router, get("/no/such/page")).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(reply.content_type().starts_with("text/html"));
    check_page(&reply.body);

    let reply = send(&router, post_json("/api/search?q=x", "{}")).await;
    reply.assert_api_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");

    let reply = send(&router, get("/api/crawl")).await;
    reply.assert_api_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
}
