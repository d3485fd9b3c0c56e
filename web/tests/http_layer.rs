//! Tests of the HTTP layer through `tower::ServiceExt::oneshot`, with a canned in-test
//! [`Backend`]. (The tests with real peers live in the workspace's `tests/` crate.)

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use peersearch_web::{
    Activity, ApiHit, Backend, BackendError, CrawlErrorEntry, CrawlResponse, HistoryPoint,
    MetricsSnapshot, PeerCounts, PeerInfo, Rejected, Scope, SearchParams, SearchResponse,
    StatusResponse, WebConfig, app,
};
use tower::ServiceExt as _;

const PEER_ID: &str = "12D3KooWQvZ8t9jJ3o5Jc1bVd2Ezy6rX7YxkJdQn8cYb5uJzKpAb";
const HOST: &str = "localhost:8080";

/// What the canned backend does on `search`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SearchMode {
    Answer,
    BadQuery,
    Unavailable,
    Internal,
    Panic,
}

struct FakeBackend {
    mode: Mutex<SearchMode>,
    hits: Vec<ApiHit>,
    total_hits: u64,
    partial: bool,
    searches: Mutex<Vec<SearchParams>>,
    submitted: Mutex<Vec<Vec<String>>>,
}

impl FakeBackend {
    fn new(hits: Vec<ApiHit>) -> Self {
        Self {
            mode: Mutex::new(SearchMode::Answer),
            total_hits: hits.len() as u64,
            hits,
            partial: false,
            searches: Mutex::new(Vec::new()),
            submitted: Mutex::new(Vec::new()),
        }
    }

    fn set_mode(&self, mode: SearchMode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn last_search(&self) -> SearchParams {
        self.searches
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("a search ran")
    }
}

fn hit(i: usize, title: &str, snippet: &str, url: &str) -> ApiHit {
    ApiHit {
        url: url.to_owned(),
        title: title.to_owned(),
        snippet: snippet.to_owned(),
        score: 10.0 - i as f32,
        peer: PEER_ID.to_owned(),
    }
}

fn plain_hits(n: usize) -> Vec<ApiHit> {
    (0..n)
        .map(|i| {
            hit(
                i,
                &format!("Page {i} about rust"),
                "learn <b>rust</b> &amp; more",
                &format!("http://example.com/{i}"),
            )
        })
        .collect()
}

impl Backend for FakeBackend {
    async fn search(&self, params: SearchParams) -> Result<SearchResponse, BackendError> {
        self.searches.lock().unwrap().push(params.clone());
        let mode = *self.mode.lock().unwrap();
        match mode {
            SearchMode::Answer => {}
            SearchMode::BadQuery => return Err(BackendError::BadQuery("unbalanced quote".into())),
            SearchMode::Unavailable => {
                return Err(BackendError::Unavailable("shutting down".into()));
            }
            SearchMode::Internal => {
                return Err(BackendError::Internal("disk /var/secret exploded".into()));
            }
            SearchMode::Panic => panic!("backend bug"),
        }
        let hits: Vec<ApiHit> = self
            .hits
            .iter()
            .skip(params.offset)
            .take(params.limit)
            .cloned()
            .collect();
        Ok(SearchResponse {
            query: params.q,
            hits,
            took_ms: 14,
            peers: PeerCounts {
                queried: 3,
                answered: if self.partial { 2 } else { 3 },
                failed: usize::from(self.partial),
            },
            partial: self.partial,
            total_hits: self.total_hits,
        })
    }

    async fn submit_urls(&self, urls: Vec<String>) -> CrawlResponse {
        let rejected: Vec<Rejected> = urls
            .iter()
            .filter(|u| !u.starts_with("http"))
            .map(|u| Rejected {
                url: u.clone(),
                reason: "not an http url".into(),
            })
            .collect();
        let accepted = urls.len() - rejected.len();
        self.submitted.lock().unwrap().push(urls);
        CrawlResponse { accepted, rejected }
    }

    async fn status(&self) -> StatusResponse {
        StatusResponse {
            peer_id: PEER_ID.into(),
            version: "0.1.0".into(),
            http_addr: "127.0.0.1:8080".into(),
            listen_addrs: vec![format!("/ip4/127.0.0.1/tcp/4001/p2p/{PEER_ID}")],
            peers_connected: 2,
            routing_table_size: 2,
            docs_indexed: 1234,
            frontier_size: 56,
            crawl_in_flight: 3,
            pages_crawled: 1300,
            pages_failed: 12,
            uptime_s: 3725,
        }
    }

    async fn peers(&self) -> Vec<PeerInfo> {
        vec![
            PeerInfo {
                peer_id: "12D3KooWPeerOne<script>".into(),
                addrs: vec!["/ip4/127.0.0.1/tcp/4002".into()],
                rtt_ms: Some(0.42),
            },
            PeerInfo {
                peer_id: "12D3KooWPeerTwo".into(),
                addrs: vec![],
                rtt_ms: None,
            },
        ]
    }

    async fn activity(&self) -> Activity {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        Activity {
            history: (0..60)
                .map(|i| HistoryPoint {
                    at_unix: now - 3540 + i * 60,
                    pages_crawled: i * 20,
                    docs_indexed: i * 18,
                })
                .collect(),
            recent_errors: vec![CrawlErrorEntry {
                at_unix: now - 90,
                url: "http://broken.example/<script>alert(1)</script>".into(),
                reason: "http 500".into(),
            }],
        }
    }

    async fn metrics(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            crawl_outcomes: BTreeMap::from([("indexed".into(), 1200), ("http_error".into(), 12)]),
            docs_indexed: 1234,
            index_bytes: 99_000,
            frontier_size: 56,
            peers_connected: 2,
            bytes_sent: BTreeMap::from([("/peersearch/search/1.0.0".into(), 4096)]),
            bytes_received: BTreeMap::from([("/peersearch/search/1.0.0".into(), 8192)]),
        }
    }
}

fn config() -> WebConfig {
    WebConfig {
        bound_addr: "127.0.0.1:8080".parse().unwrap(),
        rate_limit_per_sec: 0,
        exempt_loopback_clients: false,
        max_body_bytes: 64 * 1024,
        csrf_secret: [42; 32],
    }
}

fn router_with(backend: FakeBackend) -> (Router, Arc<FakeBackend>) {
    let backend = Arc::new(backend);
    (app(backend.clone(), config()), backend)
}

fn router() -> (Router, Arc<FakeBackend>) {
    router_with(FakeBackend::new(plain_hits(3)))
}

fn get(path: &str) -> Request<Body> {
    Request::get(path)
        .header(header::HOST, HOST)
        .body(Body::empty())
        .unwrap()
}

fn post_json(path: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(path)
        .header(header::HOST, HOST)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .unwrap()
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not json ({e}): {}", self.body))
    }

    fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    /// Asserts the contract's error shape and returns the code.
    fn error_code(&self) -> String {
        assert!(
            self.content_type().starts_with("application/json"),
            "{} {}",
            self.content_type(),
            self.body
        );
        let json = self.json();
        let error = json["error"].as_object().expect("error object");
        assert_eq!(error.len(), 2, "{json}");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
        let code = error["code"].as_str().expect("code").to_owned();
        assert!(
            code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{code}"
        );
        code
    }
}

async fn send(router: &Router, request: Request<Body>) -> Reply {
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    Reply {
        status,
        headers,
        body: String::from_utf8(bytes.to_vec()).expect("utf-8 body"),
    }
}

// ------------------------------------------------------------------------------------------
// Checkers

/// Parse errors of an HTML document as html5ever reports them, plus the checks every page
/// must pass: lang, `<main>`, the OpenSearch link, a label for every visible input, no script.
fn check_page(html: &str) {
    use scraper::{Html, Selector};
    let doc = Html::parse_document(html);
    assert!(
        doc.errors.is_empty(),
        "html parse errors: {:?}\n{html}",
        doc.errors
    );
    assert!(html.starts_with("<!DOCTYPE html>"));
    let sel = |s: &str| Selector::parse(s).unwrap();
    assert_eq!(doc.select(&sel("html[lang=en]")).count(), 1);
    assert_eq!(doc.select(&sel("main")).count(), 1, "one <main>");
    assert_eq!(doc.select(&sel("header")).count(), 1);
    assert_eq!(doc.select(&sel("footer")).count(), 1);
    assert!(doc.select(&sel("nav[aria-label]")).count() >= 1);
    assert!(doc.select(&sel("a.skip-link[href='#main']")).count() == 1);
    assert_eq!(
        doc.select(&sel(
            r#"link[rel=search][type="application/opensearchdescription+xml"][href="/opensearch.xml"]"#
        ))
        .count(),
        1
    );
    assert_eq!(doc.select(&sel("meta[name=viewport]")).count(), 1);
    assert_eq!(doc.select(&sel("script")).count(), 0, "no script");
    // Nothing loaded from elsewhere.
    for element in doc.select(&sel("[src], link[href]")) {
        let url = element
            .value()
            .attr("src")
            .or(element.value().attr("href"))
            .unwrap();
        assert!(url.starts_with('/'), "asset from outside: {url}");
    }
    let labels: HashSet<&str> = doc
        .select(&sel("label[for]"))
        .map(|l| l.value().attr("for").unwrap())
        .collect();
    let mut ids = HashSet::new();
    for element in doc.select(&sel("[id]")) {
        assert!(
            ids.insert(element.value().attr("id").unwrap()),
            "duplicate id"
        );
    }
    for input in doc.select(&sel("input, textarea, select")) {
        let kind = input.value().attr("type").unwrap_or("text");
        if matches!(kind, "hidden" | "submit") {
            continue;
        }
        let id = input.value().attr("id").expect("input with an id");
        assert!(labels.contains(id), "no label for #{id}");
    }
}

/// Parse `xml` completely with xml-rs; returns the (local name, attributes) of every element.
fn parse_xml(xml: &str) -> Vec<(String, HashMap<String, String>)> {
    use xml::reader::{EventReader, XmlEvent};
    let mut elements = Vec::new();
    for event in EventReader::from_str(xml) {
        match event.unwrap_or_else(|e| panic!("invalid xml ({e}):\n{xml}")) {
            XmlEvent::StartElement {
                name, attributes, ..
            } => elements.push((
                name.local_name,
                attributes
                    .into_iter()
                    .map(|a| (a.name.local_name, a.value))
                    .collect(),
            )),
            XmlEvent::EndDocument => break,
            _ => {}
        }
    }
    elements
}

/// The text of every element named `name`.
fn xml_texts(xml: &str, name: &str) -> Vec<String> {
    use xml::reader::{EventReader, XmlEvent};
    let mut out = Vec::new();
    let mut inside = false;
    let mut text = String::new();
    for event in EventReader::from_str(xml) {
        match event.unwrap() {
            XmlEvent::StartElement { name: n, .. } if n.local_name == name => {
                inside = true;
                text.clear();
            }
            XmlEvent::Characters(t) | XmlEvent::CData(t) if inside => text.push_str(&t),
            XmlEvent::EndElement { name: n } if n.local_name == name => {
                inside = false;
                out.push(text.clone());
            }
            _ => {}
        }
    }
    out
}

/// A small parser of the Prometheus text format: every line is a HELP, a TYPE or a sample
/// `name{labels} value`, and every sample belongs to a family with HELP and TYPE. Returns the
/// samples as (name, labels, value).
fn parse_prometheus(text: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    let mut helps = HashSet::new();
    let mut types = HashMap::new();
    let mut samples = Vec::new();
    let is_name_char = |c: char, first: bool| {
        c.is_ascii_alphabetic() || c == '_' || c == ':' || (!first && c.is_ascii_digit())
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("help text");
            assert!(!help.is_empty());
            assert!(helps.insert(name.to_owned()), "duplicate HELP {name}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("type");
            assert!(
                matches!(
                    kind,
                    "counter" | "gauge" | "histogram" | "summary" | "untyped"
                ),
                "{kind}"
            );
            assert!(types.insert(name.to_owned(), kind.to_owned()).is_none());
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "stray line {line:?}"
        );
        let mut chars = line.char_indices().peekable();
        let mut name_end = 0;
        while let Some(&(i, c)) = chars.peek() {
            if is_name_char(c, i == 0) {
                name_end = i + c.len_utf8();
                chars.next();
            } else {
                break;
            }
        }
        assert!(name_end > 0, "no metric name in {line:?}");
        let name = &line[..name_end];
        let mut labels = BTreeMap::new();
        let mut rest = &line[name_end..];
        if let Some(after) = rest.strip_prefix('{') {
            let mut s = after;
            loop {
                if let Some(after) = s.strip_prefix('}') {
                    s = after;
                    break;
                }
                let (key, after) = s.split_once("=\"").expect("label=\"");
                assert!(
                    key.chars()
                        .enumerate()
                        .all(|(i, c)| is_name_char(c, i == 0) && c != ':')
                );
                let mut value = String::new();
                let mut it = after.char_indices();
                let end = loop {
                    let (i, c) = it.next().expect("unterminated label value");
                    match c {
                        '\\' => match it.next().expect("escape").1 {
                            'n' => value.push('\n'),
                            '\\' => value.push('\\'),
                            '"' => value.push('"'),
                            other => panic!("bad escape \\{other}"),
                        },
                        '"' => break i,
                        '\n' => panic!("raw newline"),
                        c => value.push(c),
                    }
                };
                labels.insert(key.to_owned(), value);
                s = &after[end + 1..];
                s = s.strip_prefix(',').unwrap_or(s);
            }
            rest = s;
        }
        let value = rest.strip_prefix(' ').expect("space before value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix)
                    .filter(|base| types.get(*base).is_some_and(|t| t == "histogram"))
            })
            .unwrap_or(name);
        assert!(types.contains_key(family), "no TYPE for {name}");
        assert!(helps.contains(family), "no HELP for {name}");
        samples.push((name.to_owned(), labels, value));
    }
    samples
}

// ------------------------------------------------------------------------------------------
// JSON API

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
            timeout_ms: 500
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
    let answer: CrawlResponse = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(answer.accepted, 1);
    assert_eq!(answer.rejected[0].url, "ftp://b.example/");
    assert_eq!(
        backend.submitted.lock().unwrap()[0],
        vec!["http://a.example/", "ftp://b.example/"]
    );
}

#[tokio::test]
async fn crawl_refuses_bad_bodies_in_the_error_shape() {
    let (router, backend) = router();
    let huge = format!(
        r#"{{"urls": ["http://a.example/{}"]}}"#,
        "x".repeat(3 << 20)
    );
    let reply = send(&router, post_json("/api/crawl", huge.clone())).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.error_code(), "payload_too_large");

    // The same without Content-Length (a streamed body).
    let stream = futures::stream::iter(
        huge.into_bytes()
            .chunks(64 * 1024)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let reply = send(&router, post_json("/api/crawl", Body::from_stream(stream))).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.error_code(), "payload_too_large");

    let not_json = Request::post("/api/crawl")
        .header(header::HOST, HOST)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from("http://a.example/"))
        .unwrap();
    let reply = send(&router, not_json).await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(reply.error_code(), "unsupported_media_type");

    let reply = send(&router, post_json("/api/crawl", "{not json")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "bad_request");

    let reply = send(&router, post_json("/api/crawl", r#"{"urls": "http://a/"}"#)).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.error_code(), "invalid_body");

    let reply = send(&router, post_json("/api/crawl", r#"{"urls": []}"#)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "invalid_parameter");

    let many: Vec<String> = (0..1001).map(|i| format!("http://a.example/{i}")).collect();
    let body = serde_json::json!({ "urls": many }).to_string();
    let reply = send(&router, post_json("/api/crawl", body)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "invalid_parameter");

    assert!(backend.submitted.lock().unwrap().is_empty());
}

#[tokio::test]
async fn status_and_peers_are_json() {
    let (router, _) = router();
    let reply = send(&router, get("/api/status")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let status: StatusResponse = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(status.peer_id, PEER_ID);
    let reply = send(&router, get("/api/peers")).await;
    let peers: Vec<PeerInfo> = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(peers.len(), 2);
    assert_eq!(peers[0].rtt_ms, Some(0.42));
}

#[tokio::test]
async fn unknown_routes_and_methods_are_404_and_405_in_the_right_format() {
    let (router, _) = router();
    let reply = send(&router, get("/api/nope")).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.error_code(), "not_found");

    let reply = send(&router, get("/no/such/page")).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(reply.content_type().starts_with("text/html"));
    check_page(&reply.body);

    let reply = send(&router, post_json("/api/search?q=x", "{}")).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.error_code(), "method_not_allowed");

    let reply = send(&router, get("/api/crawl")).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.error_code(), "method_not_allowed");
}

// ------------------------------------------------------------------------------------------
// Security

#[tokio::test]
async fn foreign_host_is_refused_when_bound_to_loopback() {
    let (router, _) = router();
    for (host, ok) in [
        (Some("evil.example"), false),
        (Some("evil.example:8080"), false),
        (Some("localhost.evil.example"), false),
        (None, false),
        (Some("localhost:8080"), true),
        (Some("localhost"), true),
        (Some("127.0.0.1:8080"), true),
        (Some("[::1]:8080"), true),
    ] {
        let mut request = Request::get("/api/status");
        if let Some(host) = host {
            request = request.header(header::HOST, host);
        }
        let reply = send(&router, request.body(Body::empty()).unwrap()).await;
        if ok {
            assert_eq!(reply.status, StatusCode::OK, "{host:?}");
        } else {
            assert_eq!(reply.status, StatusCode::FORBIDDEN, "{host:?}");
            assert_eq!(reply.error_code(), "forbidden_host");
        }
    }
    // The pages get an HTML refusal.
    let request = Request::get("/")
        .header(header::HOST, "evil.example")
        .body(Body::empty())
        .unwrap();
    let reply = send(&router, request).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    check_page(&reply.body);
}

#[tokio::test]
async fn any_host_is_accepted_when_bound_to_a_public_address() {
    let backend = Arc::new(FakeBackend::new(plain_hits(1)));
    let config = WebConfig {
        bound_addr: "0.0.0.0:8080".parse().unwrap(),
        ..config()
    };
    let router = app(backend, config);
    let request = Request::get("/api/status")
        .header(header::HOST, "search.example.org")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&router, request).await.status, StatusCode::OK);
}

#[tokio::test]
async fn responses_carry_security_headers_and_no_cors() {
    let (router, _) = router();
    let cross_origin = |method: Method, path: &str| {
        Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, HOST)
            .header(header::ORIGIN, "http://evil.example")
            .header("access-control-request-method", "GET")
            .body(Body::empty())
            .unwrap()
    };
    for request in [
        get("/"),
        get("/api/search?q=x"),
        get("/nope"),
        cross_origin(Method::GET, "/api/status"),
        cross_origin(Method::OPTIONS, "/api/search"),
    ] {
        let reply = send(&router, request).await;
        assert_eq!(
            reply.headers[header::CONTENT_SECURITY_POLICY],
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
        );
        assert_eq!(reply.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(reply.headers[header::REFERRER_POLICY], "same-origin");
        assert!(
            !reply
                .headers
                .keys()
                .any(|k| k.as_str().starts_with("access-control-")),
            "no CORS headers"
        );
    }
}

#[tokio::test]
async fn rate_limit_answers_429_after_the_burst_per_client() {
    let backend = Arc::new(FakeBackend::new(plain_hits(1)));
    let config = WebConfig {
        rate_limit_per_sec: 1,
        ..config()
    };
    let router = app(backend, config);
    let from = |ip: &str, path: &str| {
        let mut request = get(path);
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(ip.parse().unwrap(), 50_000)));
        request
    };
    // Burst of 2 (twice the rate), then refused; far fewer requests than a second's refill.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(send(&router, from("192.0.2.1", "/api/status")).await.status);
    }
    assert_eq!(&statuses[..2], &[StatusCode::OK, StatusCode::OK]);
    let reply = send(&router, from("192.0.2.1", "/api/status")).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.error_code(), "rate_limited");
    let retry: u64 = reply.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry));

    let page = send(&router, from("192.0.2.1", "/help")).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(page.content_type().starts_with("text/html"));
    assert!(page.headers.contains_key(header::RETRY_AFTER));
    check_page(&page.body);

    // Another client has its own budget; so does a request without ConnectInfo (127.0.0.1).
    assert_eq!(
        send(&router, from("192.0.2.2", "/api/status")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        send(&router, get("/api/status")).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn loopback_clients_skip_the_rate_limit_when_exempt() {
    let backend = Arc::new(FakeBackend::new(plain_hits(1)));
    let config = WebConfig {
        rate_limit_per_sec: 1,
        exempt_loopback_clients: true,
        ..config()
    };
    let router = app(backend, config);
    for _ in 0..10 {
        let mut request = get("/api/status");
        request.extensions_mut().insert(ConnectInfo(SocketAddr::new(
            "127.0.0.1".parse().unwrap(),
            50_000,
        )));
        assert_eq!(send(&router, request).await.status, StatusCode::OK);
    }
    let remote = |_| {
        let mut request = get("/api/status");
        request.extensions_mut().insert(ConnectInfo(SocketAddr::new(
            "192.0.2.9".parse().unwrap(),
            50_000,
        )));
        request
    };
    let mut statuses = Vec::new();
    for i in 0..4 {
        statuses.push(send(&router, remote(i)).await.status);
    }
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
}

// ------------------------------------------------------------------------------------------
// Pages

#[tokio::test]
async fn every_page_is_well_formed_and_accessible() {
    let (router, _) = router();
    for path in [
        "/",
        "/search?q=rust",
        "/search?q=rust&page=2&limit=1",
        "/search?q=nothing&offset=999",
        "/help",
        "/status",
        "/status?accepted=3&rejected=1",
        "/nope",
    ] {
        let reply = send(&router, get(path)).await;
        assert!(
            reply.content_type().starts_with("text/html"),
            "{path}: {}",
            reply.content_type()
        );
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
    assert_eq!(body.matches("<polyline").count(), 2);
    assert!(body.contains("role=\"img\""));
    assert!(body.contains("http 500"));
    assert!(body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(body.contains("12D3KooWPeerOne&lt;script&gt;"));
    assert_eq!(reply.headers[header::CACHE_CONTROL], "no-store");
    check_page(body);
}

/// The CSRF cookie set by `GET /status` and the token in its form.
async fn csrf_pair(router: &Router) -> (String, String) {
    let reply = send(router, get("/status")).await;
    let cookie = reply.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.contains("SameSite=Strict"));
    assert!(cookie.contains("HttpOnly"));
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let doc = scraper::Html::parse_document(&reply.body);
    let sel = scraper::Selector::parse("input[type=hidden][name=csrf]").unwrap();
    let field = doc
        .select(&sel)
        .next()
        .expect("csrf field")
        .value()
        .attr("value")
        .unwrap()
        .to_owned();
    (cookie, field)
}

fn seed_post(cookie: Option<&str>, form: &str, extra: &[(&str, &str)]) -> Request<Body> {
    let mut request = Request::post("/status/seeds")
        .header(header::HOST, HOST)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    for (k, v) in extra {
        request = request.header(*k, *v);
    }
    request.body(Body::from(form.to_owned())).unwrap()
}

#[tokio::test]
async fn seed_form_needs_the_csrf_token() {
    let (router, backend) = router();
    let (cookie, token) = csrf_pair(&router).await;
    assert_eq!(cookie, format!("peersearch_csrf={token}"));
    let urls = "urls=http%3A%2F%2Fa.example%2F%0D%0A%0D%0Anot-a-url%0D%0Ahttp%3A%2F%2Fb.example%2F";

    let refused = [
        seed_post(None, urls, &[]),
        seed_post(Some(&cookie), urls, &[]),
        seed_post(
            Some(&cookie),
            &format!("csrf=00{}&{urls}", &token[2..]),
            &[],
        ),
        seed_post(None, &format!("csrf={token}&{urls}"), &[]),
        seed_post(
            Some(&cookie),
            &format!("csrf={token}&{urls}"),
            &[("sec-fetch-site", "cross-site")],
        ),
        seed_post(
            Some(&cookie),
            &format!("csrf={token}&{urls}"),
            &[("origin", "http://localhost:9999")],
        ),
    ];
    for request in refused {
        let reply = send(&router, request).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        assert!(reply.content_type().starts_with("text/html"));
        check_page(&reply.body);
    }
    assert!(backend.submitted.lock().unwrap().is_empty());

    let reply = send(
        &router,
        seed_post(
            Some(&cookie),
            &format!("csrf={token}&{urls}"),
            &[
                ("sec-fetch-site", "same-origin"),
                ("origin", "http://localhost:8080"),
            ],
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(
        reply.headers[header::LOCATION],
        "/status?accepted=2&rejected=1"
    );
    assert_eq!(
        backend.submitted.lock().unwrap()[0],
        vec!["http://a.example/", "not-a-url", "http://b.example/"]
    );

    // Coming back with the cookie keeps the same token (no new Set-Cookie).
    let mut again = get("/status?accepted=2&rejected=1");
    again
        .headers_mut()
        .insert(header::COOKIE, cookie.parse().unwrap());
    let reply = send(&router, again).await;
    assert!(!reply.headers.contains_key(header::SET_COOKIE));
    assert!(reply.body.contains(&token));
    assert!(reply.body.contains("2 URLs accepted, 1 rejected."));
}

// ------------------------------------------------------------------------------------------
// Machine-readable documents

#[tokio::test]
async fn opensearch_description_is_valid_xml_with_the_templates() {
    let (router, _) = router();
    let reply = send(&router, get("/opensearch.xml")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.content_type(),
        "application/opensearchdescription+xml"
    );
    let elements = parse_xml(&reply.body);
    assert_eq!(elements[0].0, "OpenSearchDescription");
    assert_eq!(xml_texts(&reply.body, "ShortName"), vec!["peersearch"]);
    assert_eq!(xml_texts(&reply.body, "InputEncoding"), vec!["UTF-8"]);
    let templates: HashMap<&str, &str> = elements
        .iter()
        .filter(|(name, _)| name == "Url")
        .map(|(_, a)| (a["type"].as_str(), a["template"].as_str()))
        .collect();
    assert_eq!(
        templates["text/html"],
        "http://localhost:8080/search?q={searchTerms}"
    );
    assert_eq!(
        templates["application/rss+xml"],
        "http://localhost:8080/search.rss?q={searchTerms}"
    );
    assert_eq!(
        templates["application/json"],
        "http://localhost:8080/api/search?q={searchTerms}"
    );
}

#[tokio::test]
async fn rss_feed_is_valid_rss() {
    let (router, _) = router();
    let reply = send(&router, get("/search.rss?q=rust+%26+co")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.content_type().starts_with("application/rss+xml"));
    let elements = parse_xml(&reply.body);
    assert_eq!(elements[0].0, "rss");
    assert_eq!(elements[0].1["version"], "2.0");
    assert_eq!(elements.iter().filter(|(n, _)| n == "item").count(), 3);
    assert_eq!(xml_texts(&reply.body, "title")[0], "peersearch: rust & co");
    assert_eq!(xml_texts(&reply.body, "guid")[0], "http://example.com/0");
    assert_eq!(
        xml_texts(&reply.body, "description")[1],
        "learn <b>rust</b> &amp; more"
    );
    assert_eq!(
        xml_texts(&reply.body, "link")[0],
        "http://localhost:8080/search?q=rust+%26+co"
    );
}

#[tokio::test]
async fn metrics_are_valid_prometheus_text() {
    let (router, _) = router();
    send(&router, get("/api/search?q=x")).await;
    send(&router, get("/search?q=x")).await;
    send(&router, get("/api/search?q=")).await;
    send(&router, get("/wp-login.php")).await;
    let reply = send(&router, get("/metrics")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply
            .content_type()
            .starts_with("text/plain; version=0.0.4")
    );
    let samples = parse_prometheus(&reply.body);
    let find = |name: &str, labels: &[(&str, &str)]| {
        samples
            .iter()
            .find(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, v)| *v)
            .unwrap_or_else(|| panic!("no sample {name} {labels:?}\n{}", reply.body))
    };
    assert_eq!(
        find("peersearch_crawl_pages_total", &[("outcome", "indexed")]),
        1200.0
    );
    assert_eq!(find("peersearch_docs_indexed", &[]), 1234.0);
    assert_eq!(find("peersearch_index_bytes", &[]), 99_000.0);
    assert_eq!(find("peersearch_frontier_size", &[]), 56.0);
    assert_eq!(find("peersearch_peers_connected", &[]), 2.0);
    assert_eq!(
        find(
            "peersearch_p2p_bytes_sent_total",
            &[("protocol", "/peersearch/search/1.0.0")]
        ),
        4096.0
    );
    assert_eq!(
        find(
            "peersearch_p2p_bytes_received_total",
            &[("protocol", "/peersearch/search/1.0.0")]
        ),
        8192.0
    );
    assert_eq!(
        find(
            "peersearch_http_requests_total",
            &[("route", "/api/search"), ("status", "200")]
        ),
        1.0
    );
    assert_eq!(
        find(
            "peersearch_http_requests_total",
            &[("route", "/api/search"), ("status", "400")]
        ),
        1.0
    );
    assert_eq!(
        find(
            "peersearch_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ),
        1.0
    );
    assert_eq!(find("peersearch_search_duration_seconds_count", &[]), 2.0);
    assert_eq!(
        find(
            "peersearch_search_duration_seconds_bucket",
            &[("le", "+Inf")]
        ),
        2.0
    );
    // Buckets are cumulative.
    let buckets: Vec<f64> = samples
        .iter()
        .filter(|(n, _, _)| n == "peersearch_search_duration_seconds_bucket")
        .map(|(_, _, v)| *v)
        .collect();
    assert_eq!(buckets.len(), 12);
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]));
}

#[tokio::test]
async fn static_assets_are_served_from_the_peer() {
    let (router, _) = router();
    let css = send(&router, get("/static/style.css")).await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.content_type().starts_with("text/css"));
    assert!(css.body.contains("prefers-color-scheme: dark"));
    assert!(css.body.contains(":focus-visible"));
    assert!(!css.body.contains("url("), "no external resources");
    let icon = send(&router, get("/favicon.svg")).await;
    assert_eq!(icon.status, StatusCode::OK);
    assert_eq!(icon.content_type(), "image/svg+xml");
    assert_eq!(parse_xml(&icon.body)[0].0, "svg");
}

// ------------------------------------------------------------------------------------------
// The checkers themselves must be able to fail.

#[test]
fn page_checker_rejects_broken_or_incomplete_html() {
    let good = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"x\"><title>t</title><link rel=\"search\" type=\"application/opensearchdescription+xml\" title=\"p\" href=\"/opensearch.xml\"></head><body><a class=\"skip-link\" href=\"#main\">s</a><header><nav aria-label=\"Site\"></nav></header><main id=\"main\"><label for=\"q\">q</label><input id=\"q\"></main><footer></footer></body></html>";
    check_page(good);
    for broken in [
        good.replace("<main id=\"main\">", "<main id=\"main\"></div>"),
        good.replace("<label for=\"q\">q</label>", ""),
        good.replace("<link rel=\"search\"", "<link rel=\"alternate\""),
        good.replace("</main>", "<script>x</script></main>"),
        good.replace("<!DOCTYPE html>\n", ""),
    ] {
        let result = std::panic::catch_unwind(|| check_page(&broken));
        assert!(result.is_err(), "accepted: {broken}");
    }
}

#[test]
fn prometheus_checker_rejects_malformed_text() {
    let good = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\\\"\"} 3\n";
    assert_eq!(parse_prometheus(good)[0].1["x"], "1\"");
    for broken in [
        "a_total 3\n",
        "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1} 3\n",
        "# HELP a_total A.\n# TYPE a_total counter\na_total three\n",
        "# HELP a_total A.\n# TYPE a_total counter\na_total{x=1} 3\n",
    ] {
        let result = std::panic::catch_unwind(|| parse_prometheus(broken));
        assert!(result.is_err(), "accepted: {broken}");
    }
}

// ------------------------------------------------------------------------------------------
// Over a real socket

/// One raw HTTP/1.1 request over TCP; returns the whole response text.
async fn raw_request(addr: SocketAddr, request: String) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut out),
    )
    .await
    .expect("response within 10 s")
    .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn serve_answers_over_tcp_and_shuts_down_gracefully() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let backend = Arc::new(FakeBackend::new(plain_hits(1)));
    let router = app(
        backend,
        WebConfig {
            bound_addr: addr,
            ..config()
        },
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(peersearch_web::serve(listener, router, async {
        let _ = stopped.await;
    }));

    let ok = raw_request(
        addr,
        format!("GET /api/status HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.contains(PEER_ID));

    let refused = raw_request(
        addr,
        "GET /api/status HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n".to_owned(),
    )
    .await;
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
    assert!(refused.contains("forbidden_host"));

    stop.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .expect("server stops within 10 s")
        .unwrap()
        .unwrap();
}
