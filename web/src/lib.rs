//! The web layer of peersearch: the JSON API of the contract, the server-rendered search pages,
//! the OpenSearch description and RSS feed, and `/metrics` — all in one axum [`Router`]
//! built by [`app`] over a [`Backend`] the node implements.
//!
//! Design choices:
//! - **No JavaScript, no outside assets.** Pages are rendered on the server with `format!` and
//!   one escaping helper ([`escape()`]); the stylesheet and favicon are compiled in. The
//!   Content-Security-Policy allows nothing else ([`CONTENT_SECURITY_POLICY`]).
//! - **One error type.** Handlers, extractors and layers all end in an [`ApiError`]; a final
//!   middleware gives it the JSON shape of the contract under `/api/` and an HTML page
//!   elsewhere, so axum's plain-text rejections never leak.
//! - **Safe on localhost.** Bound to a loopback address, the server answers only requests
//!   whose `Host` is a loopback name (DNS rebinding); there are no CORS headers; the one
//!   state-changing form (seed URLs on the peer page) carries a signed double-submit CSRF
//!   token and checks `Origin`/`Sec-Fetch-Site`. Every client is rate limited per IP, bodies
//!   are capped, and every request has a deadline.
//! - **Nothing blocks a worker.** Handlers await the [`Backend`] and format bounded strings;
//!   the only locks are short in-memory counters, and the rate limiter never waits for one.
//!
//! Modules: `router` (routes and layers), `finalize` (error shapes, security headers),
//! `host` (the `Host` check), `rate_limit`, `handlers/` (JSON API, pages, documents),
//! `pages` / `why` / `chart` / `feeds` / `metrics` (rendering), `escape` / `text` (escaping and
//! formatting), `params` (request parsing), `csrf`, `config`, `static_files`.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # async fn run<B: peersearch_web::Backend>(backend: Arc<B>) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! let config = peersearch_web::WebConfig::new(listener.local_addr()?);
//! let router = peersearch_web::app(backend, config);
//! peersearch_web::serve(listener, router, async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await
//! # }
//! ```

pub mod api;
mod assets;
mod chart;
mod config;
mod csrf;
mod error;
mod escape;
mod feeds;
mod finalize;
mod handlers;
mod host;
mod metrics;
mod pages;
mod params;
mod proxy;
mod rate_limit;
mod router;
mod static_files;
mod text;
mod why;

pub use api::{
    Activity, ApiHit, Backend, BackendError, CrawlErrorEntry, CrawlResponse, CrawlScope, DocParams,
    DocResponse, HistoryPoint, MAX_DOC_FIELD_BYTES, MAX_DOC_HOLDERS, MAX_DOC_LIST_BYTES,
    MAX_DOC_TEXT_BYTES, MAX_DOC_URL_BYTES, MetricsSnapshot, PeerCounts, PeerInfo, Rejected, Scope,
    SearchParams, SearchResponse, StatusResponse,
};
pub use config::{
    DEFAULT_MAX_BODY_BYTES, DEFAULT_RATE_LIMIT_PER_SEC, RATE_LIMIT_BURST_FACTOR, REQUEST_TIMEOUT,
    WebConfig,
};
pub use error::{ApiError, Result};
pub use escape::{escape, sanitize_snippet};
pub use finalize::CONTENT_SECURITY_POLICY;
pub use host::is_loopback_host;
pub use params::{
    DEFAULT_LIMIT, DEFAULT_TIMEOUT_MS, LIMIT_RANGE, MAX_CRAWL_URLS, MAX_OFFSET, MAX_QUERY_BYTES,
    TIMEOUT_MS_RANGE,
};
pub use proxy::parse_public_url;
pub use router::{app, serve};
pub use static_files::{rust_docs_dir, static_dir};
