//! What the HTTP-layer tests share: a canned [`Backend`], request builders, and [`Reply`] with
//! its assertions. The document checkers are in [`checks`].
#![allow(dead_code)] // each test file uses its own part

pub mod checks;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode, header};
use peersearch_indexer::{
    Bm25Params, Coverage, Depth, Explanation, Prior, ProximityPart, Relevance, TermPart, WordStat,
};
use peersearch_web::{
    Activity, ApiHit, Backend, BackendError, CrawlErrorEntry, CrawlResponse, CrawlScope, DocParams,
    DocResponse, HistoryPoint, MetricsSnapshot, PeerCounts, PeerInfo, Rejected, SearchParams,
    SearchResponse, StatusResponse, WebConfig, app,
};
use tower::ServiceExt as _;

pub const PEER_ID: &str = "12D3KooWQvZ8t9jJ3o5Jc1bVd2Ezy6rX7YxkJdQn8cYb5uJzKpAb";
pub const HOST: &str = "localhost:8080";

/// What the canned backend does on `search`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchMode {
    Answer,
    BadQuery,
    Unavailable,
    Internal,
    Panic,
}

pub struct FakeBackend {
    mode: Mutex<SearchMode>,
    hits: Vec<ApiHit>,
    total_hits: u64,
    /// Answer as if one of three peers did not answer in time.
    pub partial: bool,
    /// Every search that reached the backend.
    pub searches: Mutex<Vec<SearchParams>>,
    /// Every URL list submitted to the crawl.
    pub submitted: Mutex<Vec<Vec<String>>>,
    /// The scope of each submission, in the same order.
    pub scopes: Mutex<Vec<Option<CrawlScope>>>,
    /// The documents `document` knows, by URL.
    pub docs: Vec<DocResponse>,
    /// Every document look-up that reached the backend.
    pub doc_lookups: Mutex<Vec<DocParams>>,
    /// The explanation of a hit by URL, given only to searches that ask (`explain`); a hit
    /// without one here has none.
    pub explanations: BTreeMap<String, Explanation>,
}

impl FakeBackend {
    pub fn new(hits: Vec<ApiHit>) -> Self {
        Self {
            mode: Mutex::new(SearchMode::Answer),
            total_hits: hits.len() as u64,
            hits,
            partial: false,
            searches: Mutex::new(Vec::new()),
            submitted: Mutex::new(Vec::new()),
            scopes: Mutex::new(Vec::new()),
            docs: Vec::new(),
            doc_lookups: Mutex::new(Vec::new()),
            explanations: BTreeMap::new(),
        }
    }

    /// The canned backend with `hits`, explaining each of them (see [`explanation`]).
    pub fn explaining(hits: Vec<ApiHit>) -> Self {
        let explanations = hits
            .iter()
            .map(|h| (h.url.clone(), explanation(h.score, "rust", "body")))
            .collect();
        Self {
            explanations,
            ..Self::new(hits)
        }
    }

    /// The canned backend, also holding `docs`.
    pub fn with_docs(docs: Vec<DocResponse>) -> Self {
        Self {
            docs,
            ..Self::new(plain_hits(3))
        }
    }

    pub fn set_mode(&self, mode: SearchMode) {
        *self.mode.lock().unwrap() = mode;
    }

    pub fn last_search(&self) -> SearchParams {
        self.searches
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("a search ran")
    }
}

pub fn hit(i: usize, title: &str, snippet: &str, url: &str) -> ApiHit {
    ApiHit {
        url: url.to_owned(),
        title: title.to_owned(),
        snippet: snippet.to_owned(),
        score: 10.0 - i as f32,
        peer: PEER_ID.to_owned(),
        explanation: None,
    }
}

/// An explanation with one term part (`clause` in `field`) and one proximity part, whose
/// relevance sum and curve are computed as the indexer's; `score` is taken as given.
pub fn explanation(score: f32, clause: &str, field: &str) -> Explanation {
    let term = 7.25f32;
    let near = 1.5f32;
    let prior = 0.5;
    let sum = f64::from(term) + f64::from(near) + prior;
    let relevance = 85.0 * sum / (sum + 50.0);
    let depth = 10.0;
    Explanation {
        score,
        num_docs: 5692,
        bm25: Bm25Params { k1: 1.2, b: 0.75 },
        coverage: Coverage {
            clauses: 2,
            matched: 1,
            per_clause: 100.0,
            value: 100.0,
        },
        terms: vec![TermPart {
            clause: clause.to_owned(),
            field: field.to_owned(),
            weight: 1.0,
            term_freq: 3,
            field_length: 120,
            average_field_length: 88.125,
            words: vec![WordStat {
                word: clause.to_owned(),
                doc_freq: 45,
                idf: 4.81,
            }],
            value: term,
        }],
        proximity: vec![ProximityPart {
            field: field.to_owned(),
            words: [clause.to_owned(), "async".to_owned()],
            max_distance: 3,
            weight: 0.5,
            encounters: 2,
            field_length: 120,
            average_field_length: 88.125,
            idf: 9.5,
            value: near,
        }],
        prior: Prior {
            inlink_sites: 7,
            inlink_pages: 90,
            per_doubling_sites: 0.4,
            per_doubling_pages: 0.1,
            value: prior,
        },
        relevance: Relevance {
            sum,
            cap: 85.0,
            half: 50.0,
            value: relevance,
        },
        depth: Depth {
            url_depth: 1,
            value: depth,
        },
        constant: 0.0,
    }
}

pub fn plain_hits(n: usize) -> Vec<ApiHit> {
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
            .map(|mut hit| {
                if params.explain {
                    hit.explanation = self.explanations.get(&hit.url).cloned();
                }
                hit
            })
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
            rounds: 0,
        })
    }

    async fn submit_urls(
        &self,
        urls: Vec<String>,
        scope: Option<CrawlScope>,
    ) -> Result<CrawlResponse, BackendError> {
        if let Some(bad) = scope
            .as_ref()
            .and_then(|s| s.deny.iter().find(|d| d.contains('(')))
        {
            return Err(BackendError::BadScope(format!(
                "deny: cannot parse {bad:?}"
            )));
        }
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
        self.scopes.lock().unwrap().push(scope);
        Ok(CrawlResponse { accepted, rejected })
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
            revisits_due: 7,
            pages_revisited: 240,
            pages_changed: 60,
            pages_unchanged: 170,
            pages_removed: 10,
            index_commits: 99,
            rss_bytes: 64 << 20,
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
                    pages_revisited: i * 4,
                    pages_changed: i,
                    pages_unchanged: i * 2,
                    pages_removed: i / 4,
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
            revisits_due: 7,
            revisits: BTreeMap::from([
                ("all".into(), 240),
                ("changed".into(), 60),
                ("unchanged".into(), 170),
                ("removed".into(), 10),
            ]),
            rss_bytes: 64 << 20,
            query_rounds: BTreeMap::from([("1".into(), 40), ("2".into(), 3)]),
            peers_connected: 2,
            bytes_sent: BTreeMap::from([("/peersearch/search/1.0.0".into(), 4096)]),
            bytes_received: BTreeMap::from([("/peersearch/search/1.0.0".into(), 8192)]),
        }
    }

    async fn document(&self, params: DocParams) -> Result<Option<DocResponse>, BackendError> {
        Ok(self.find_doc(params))
    }
}

impl FakeBackend {
    fn find_doc(&self, params: DocParams) -> Option<DocResponse> {
        let found = self.docs.iter().find(|d| d.url == params.url).cloned();
        self.doc_lookups.lock().unwrap().push(params);
        found
    }
}

/// A document as a peer would answer it, with `title` and `text`.
pub fn doc(url: &str, title: &str, text: &str) -> DocResponse {
    DocResponse {
        url: url.to_owned(),
        site: "example.com".to_owned(),
        title: title.to_owned(),
        text: text.to_owned(),
        fetched_at: 1_700_000_000,
        content_hash: "ab".repeat(32),
        holders: vec![PEER_ID.to_owned()],
        peer: PEER_ID.to_owned(),
        peers: PeerCounts {
            queried: 3,
            answered: 3,
            failed: 0,
        },
        ..DocResponse::default()
    }
}

/// A server bound to loopback, without rate limit (the rate-limit tests set their own).
pub fn config() -> WebConfig {
    WebConfig {
        bound_addr: "127.0.0.1:8080".parse().unwrap(),
        rate_limit_per_sec: 0,
        exempt_loopback_clients: false,
        max_body_bytes: 64 * 1024,
        csrf_secret: [42; 32],
        public_url: None,
        trusted_proxies: Vec::new(),
    }
}

pub fn router_with(backend: FakeBackend) -> (Router, Arc<FakeBackend>) {
    router_with_config(backend, config())
}

pub fn router_with_config(backend: FakeBackend, config: WebConfig) -> (Router, Arc<FakeBackend>) {
    let backend = Arc::new(backend);
    (app(backend.clone(), config), backend)
}

pub fn router() -> (Router, Arc<FakeBackend>) {
    router_with(FakeBackend::new(plain_hits(3)))
}

/// `GET path` addressed to `localhost:8080`.
pub fn get(path: &str) -> Request<Body> {
    Request::get(path)
        .header(header::HOST, HOST)
        .body(Body::empty())
        .unwrap()
}

/// `GET path` with `Host: host` (none when `None`).
pub fn get_with_host(path: &str, host: Option<&str>) -> Request<Body> {
    let mut request = Request::get(path);
    if let Some(host) = host {
        request = request.header(header::HOST, host);
    }
    request.body(Body::empty()).unwrap()
}

/// `request` as if it came over a socket from `ip` (the rate limiter keys on it).
pub fn from_ip(ip: &str, mut request: Request<Body>) -> Request<Body> {
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::new(ip.parse().unwrap(), 50_000)));
    request
}

pub fn post_json(path: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(path)
        .header(header::HOST, HOST)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .unwrap()
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not json ({e}): {}", self.body))
    }

    pub fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    pub fn is_html(&self) -> bool {
        self.content_type().starts_with("text/html")
    }

    /// Asserts the contract's error shape, `{"error": {"code": "...", "message": "..."}}` and
    /// nothing else, and returns the code.
    pub fn error_code(&self) -> String {
        assert_error_shape(self.content_type(), &self.body)
    }

    /// Asserts the status, and that the body is the contract's error with `code`.
    pub fn assert_api_error(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.error_code(), code, "{}", self.body);
    }

    /// The `Retry-After` header, in seconds.
    pub fn retry_after(&self) -> u64 {
        self.headers[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    }
}

/// Asserts that `body` (of type `content_type`) is exactly the contract's error shape and
/// returns its code.
pub fn assert_error_shape(content_type: &str, body: &str) -> String {
    assert!(
        content_type.starts_with("application/json"),
        "{content_type} {body}"
    );
    let json: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("not json ({e}): {body}"));
    let top = json.as_object().expect("a JSON object");
    assert_eq!(top.len(), 1, "only `error` at the top: {json}");
    let error = json["error"].as_object().expect("error object");
    assert_eq!(error.len(), 2, "only `code` and `message`: {json}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{json}"
    );
    let code = error["code"].as_str().expect("code").to_owned();
    assert!(
        !code.is_empty() && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
        "{code}"
    );
    code
}

pub async fn send(router: &Router, request: Request<Body>) -> Reply {
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
