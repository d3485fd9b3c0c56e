//! The router, its middleware and its handlers.
//!
//! Layers, outermost first: tracing → `finalize` (catches panics, gives every error the JSON or
//! HTML shape, adds the security headers, counts requests) → request timeout → `Host` check
//! (DNS-rebinding defence) → per-client rate limit → body size limit → routes.

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Version, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use futures::FutureExt as _;
use governor::clock::Clock as _;
use governor::{DefaultKeyedRateLimiter, Quota};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::api::{Backend, BackendError, CrawlResponse};
use crate::assets::{FAVICON_SVG, STYLE_CSS};
use crate::csrf::{CSRF_COOKIE, Csrf, cookie_value};
use crate::error::ApiError;
use crate::escape::query_string;
use crate::feeds::{
    OPENSEARCH_CONTENT_TYPE, RSS_CONTENT_TYPE, is_plausible_host, opensearch_description, rss_feed,
};
use crate::metrics::{self, HttpMetrics};
use crate::pages::{self, SeedOutcome, StatusView};
use crate::params::{ApiForm, ApiJson, MAX_CRAWL_URLS, QueryPairs};

/// Default per-client request rate (requests per second; the brief). A person clicking through
/// pages needs a handful; a script hammering the API gets 429s.
pub const DEFAULT_RATE_LIMIT_PER_SEC: u32 = 20;
/// The burst a client may spend at once, as a multiple of the rate (20/s -> 40).
pub const RATE_LIMIT_BURST_FACTOR: u32 = 2;
/// Default request body limit: 64 KiB holds a crawl submission of 1000 ordinary URLs.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
/// Longest time one request may take: above the largest search `timeout_ms` (10 s) with room
/// for the merge and the rendering.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How often idle clients are dropped from the rate limiter's table.
const RATE_LIMIT_PRUNE_INTERVAL: Duration = Duration::from_secs(60);
/// IPv6 clients are limited per /64: one subscriber usually holds a whole /64.
const IPV6_CLIENT_PREFIX_BITS: u32 = 64;

/// The Content-Security-Policy of every response: nothing but this peer's own stylesheet,
/// images and forms; no scripts at all; no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// How the web layer is set up.
#[derive(Clone)]
pub struct WebConfig {
    /// The address the HTTP server is bound to. When it is a loopback address, only requests
    /// whose `Host` names a loopback host are answered (DNS-rebinding defence).
    pub bound_addr: SocketAddr,
    /// Requests per second allowed per client IP (IPv6: per /64), with a burst of twice that;
    /// 0 turns rate limiting off. Default [`DEFAULT_RATE_LIMIT_PER_SEC`].
    pub rate_limit_per_sec: u32,
    /// Whether clients on loopback addresses skip the rate limit (default true): they are the
    /// person who runs the peer and their own programs, not the remote clients the limit is
    /// for.
    pub exempt_loopback_clients: bool,
    /// Largest request body accepted, in bytes. Default [`DEFAULT_MAX_BODY_BYTES`].
    pub max_body_bytes: usize,
    /// Key of the CSRF tokens of the peer page's seed form. Any 32 unpredictable bytes; a new
    /// value on each start only invalidates forms that were open across the restart.
    pub csrf_secret: [u8; 32],
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("bound_addr", &self.bound_addr)
            .field("rate_limit_per_sec", &self.rate_limit_per_sec)
            .field("exempt_loopback_clients", &self.exempt_loopback_clients)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("csrf_secret", &"<redacted>")
            .finish()
    }
}

impl WebConfig {
    /// The defaults for a server bound to `bound_addr`, with a fresh random CSRF secret.
    pub fn new(bound_addr: SocketAddr) -> Self {
        Self {
            bound_addr,
            rate_limit_per_sec: DEFAULT_RATE_LIMIT_PER_SEC,
            exempt_loopback_clients: true,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            csrf_secret: random_secret(),
        }
    }
}

/// 32 unpredictable bytes without a dedicated RNG dependency: std's `RandomState` keys are
/// seeded from the operating system's random source; several of them, the clock and the
/// process id go through SHA-256.
fn random_secret() -> [u8; 32] {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut digest = Sha256::new();
    for i in 0u8..4 {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u8(i);
        hasher.write_u128(nanos);
        hasher.write_u32(std::process::id());
        digest.update(hasher.finish().to_le_bytes());
    }
    digest.update(nanos.to_le_bytes());
    digest.finalize().into()
}

/// Shared by every handler and middleware.
struct AppState<B> {
    backend: Arc<B>,
    bound_addr: SocketAddr,
    loopback_only: bool,
    csrf: Csrf,
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    exempt_loopback_clients: bool,
    last_prune: Mutex<Instant>,
    metrics: HttpMetrics,
}

/// Marks a handler's own HTML error page (e.g. the results page for a bad query), which
/// `finalize` must leave as it is.
#[derive(Debug, Clone, Copy)]
struct RenderedErrorPage;

/// The router of the whole web layer: the JSON API, the pages, the feeds and `/metrics`.
///
/// Tests can call it with `tower::ServiceExt::oneshot`; without `ConnectInfo` (no socket) the
/// client counts as 127.0.0.1.
pub fn app<B: Backend>(backend: Arc<B>, config: WebConfig) -> Router {
    let limiter = NonZeroU32::new(config.rate_limit_per_sec).map(|rate| {
        let burst =
            NonZeroU32::new(rate.get().saturating_mul(RATE_LIMIT_BURST_FACTOR)).unwrap_or(rate);
        DefaultKeyedRateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
    });
    let state = Arc::new(AppState {
        backend,
        bound_addr: config.bound_addr,
        loopback_only: config.bound_addr.ip().is_loopback(),
        csrf: Csrf::new(config.csrf_secret),
        limiter,
        exempt_loopback_clients: config.exempt_loopback_clients,
        last_prune: Mutex::new(Instant::now()),
        metrics: HttpMetrics::default(),
    });

    let middleware = ServiceBuilder::new()
        .layer(TraceLayer::new_for_http())
        .layer(middleware::from_fn_with_state(state.clone(), finalize::<B>))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            check_host::<B>,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            rate_limit::<B>,
        ))
        .layer(RequestBodyLimitLayer::new(config.max_body_bytes));

    Router::new()
        .route("/", get(home))
        .route("/search", get(search_page::<B>))
        .route("/search.rss", get(search_feed::<B>))
        .route("/help", get(help))
        .route("/status", get(status_page::<B>))
        .route("/status/seeds", post(post_seeds::<B>))
        .route("/opensearch.xml", get(opensearch::<B>))
        .route("/static/style.css", get(style_css))
        .route("/favicon.svg", get(favicon))
        .route("/metrics", get(metrics_text::<B>))
        .route("/api/search", get(api_search::<B>))
        .route("/api/crawl", post(api_crawl::<B>))
        .route("/api/status", get(api_status::<B>))
        .route("/api/peers", get(api_peers::<B>))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(middleware)
}

/// Serve `router` on `listener` until `shutdown` completes, then finish the requests in
/// flight. Client addresses are passed to the router (the rate limiter keys on them).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "http server listening");
    }
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    tracing::info!("http server stopped");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Middleware

/// The route label of `/metrics` for a path (a fixed set, so the label stays bounded).
fn route_label(path: &str) -> &'static str {
    const ROUTES: [&str; 14] = [
        "/",
        "/search",
        "/search.rss",
        "/help",
        "/status",
        "/status/seeds",
        "/opensearch.xml",
        "/static/style.css",
        "/favicon.svg",
        "/metrics",
        "/api/search",
        "/api/crawl",
        "/api/status",
        "/api/peers",
    ];
    ROUTES
        .iter()
        .find(|r| **r == path)
        .copied()
        .unwrap_or("unmatched")
}

fn is_api_path(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

/// An error as an HTML page, for browsers.
fn html_error_response(err: &ApiError) -> Response {
    let retry_after = match err {
        ApiError::RateLimited { retry_after_s } => Some(*retry_after_s),
        _ => None,
    };
    let status = err.status();
    let mut response = (
        status,
        Html(pages::error_page(status, &err.to_string(), retry_after)),
    )
        .into_response();
    err.extra_headers(response.headers_mut());
    response
}

fn set_security_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // `same-origin`, not `no-referrer`: under `no-referrer` browsers send `Origin: null` with
    // form posts, and the seed form's same-origin check (which needs the real origin) refused
    // every submission. Links to other sites still carry no referrer.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
}

/// Outermost own layer: turns panics into 500s, gives every error response our shape (JSON
/// under `/api/`, an HTML page elsewhere), adds the security headers and counts the request.
async fn finalize<B: Backend>(
    State(state): State<Arc<AppState<B>>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    let is_api = is_api_path(&path);
    let mut response = match AssertUnwindSafe(next.run(request)).catch_unwind().await {
        Ok(response) => response,
        Err(panic) => {
            let detail = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            ApiError::Internal(format!("handler panicked: {detail}")).into_response()
        }
    };
    let status = response.status();
    if (status.is_client_error() || status.is_server_error())
        && response.extensions().get::<RenderedErrorPage>().is_none()
    {
        let err = response.extensions_mut().remove::<ApiError>();
        response = match (err, is_api) {
            (Some(err), true) => {
                response.extensions_mut().insert(err);
                response
            }
            (None, true) => ApiError::from_status(status).into_response(),
            (Some(err), false) => html_error_response(&err),
            (None, false) => {
                let err = ApiError::from_status(status);
                err.log();
                html_error_response(&err)
            }
        };
    }
    set_security_headers(response.headers_mut());
    state
        .metrics
        .record_request(route_label(&path), response.status().as_u16());
    response
}

/// True when `host` (a `Host` header value) names this machine: `localhost`, `127.x.x.x` or
/// `[::1]`, with or without a port.
pub fn is_loopback_host(host: &str) -> bool {
    fn valid_port(port: &str) -> bool {
        !port.is_empty()
            && port.len() <= 5
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok()
    }
    let host = host.trim();
    if let Some(rest) = host.strip_prefix('[') {
        let Some((ip, after)) = rest.split_once(']') else {
            return false;
        };
        let port_ok = after.is_empty() || after.strip_prefix(':').is_some_and(valid_port);
        return port_ok && ip.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback());
    }
    let name = match host.rsplit_once(':') {
        Some((name, port)) if valid_port(port) => name,
        Some(_) => return false,
        None => host,
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// The host the client addressed: the `Host` header, else the URI's authority.
fn request_host(headers: &HeaderMap, uri: &axum::http::Uri) -> Option<String> {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| uri.authority().map(|a| a.as_str().to_owned()))
}

/// DNS-rebinding defence: bound to loopback, answer only requests addressed to a loopback
/// name. A page on `evil.example` whose DNS later points at 127.0.0.1 sends `Host:
/// evil.example` and is refused.
async fn check_host<B: Backend>(
    State(state): State<Arc<AppState<B>>>,
    request: Request,
    next: Next,
) -> Response {
    if state.loopback_only {
        match request_host(request.headers(), request.uri()) {
            Some(host) if is_loopback_host(&host) => {}
            // HTTP/1.0 clients may omit Host; browsers never do.
            None if request.version() < Version::HTTP_11 => {}
            host => {
                tracing::debug!(host = ?host, "refused request for a foreign host");
                return ApiError::ForbiddenHost.into_response();
            }
        }
    }
    next.run(request).await
}

/// The rate-limit key of a client: its IP, IPv6 addresses cut to their /64.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let mask = u128::MAX << (128 - IPV6_CLIENT_PREFIX_BITS);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
        v4 => v4,
    }
}

/// Per-client rate limit (GCRA from `governor`); idle clients are pruned every minute.
async fn rate_limit<B: Backend>(
    State(state): State<Arc<AppState<B>>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(limiter) = &state.limiter {
        let ip = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        if state.exempt_loopback_clients && ip.to_canonical().is_loopback() {
            return next.run(request).await;
        }
        if let Ok(mut last) = state.last_prune.try_lock()
            && last.elapsed() >= RATE_LIMIT_PRUNE_INTERVAL
        {
            limiter.retain_recent();
            limiter.shrink_to_fit();
            *last = Instant::now();
        }
        if let Err(not_until) = limiter.check_key(&client_key(ip)) {
            let wait = not_until.wait_time_from(limiter.clock().now());
            let retry_after_s = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
            tracing::debug!(%ip, retry_after_s, "rate limited");
            return ApiError::RateLimited { retry_after_s }.into_response();
        }
    }
    next.run(request).await
}

// ---------------------------------------------------------------------------------------------
// Handlers

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Run a search and record its duration.
async fn timed_search<B: Backend>(
    state: &AppState<B>,
    params: crate::api::SearchParams,
) -> Result<crate::api::SearchResponse, BackendError> {
    let started = Instant::now();
    let result = state.backend.search(params).await;
    state.metrics.record_search(started.elapsed());
    result
}

async fn api_search<B: Backend>(
    State(state): State<Arc<AppState<B>>>,
    query: QueryPairs,
) -> Result<axum::Json<crate::api::SearchResponse>, ApiError> {
    let params = query.search_params()?;
    Ok(axum::Json(timed_search(&state, params).await?))
}

/// The body of `POST /api/crawl`.
#[derive(Debug, Deserialize)]
struct CrawlRequest {
    urls: Vec<String>,
}

/// The URL list of a submission: at least one, at most [`MAX_CRAWL_URLS`].
fn check_url_count(urls: &[String]) -> Result<(), ApiError> {
    if urls.is_empty() {
        return Err(ApiError::InvalidParameter {
            name: "urls",
            reason: "must list at least one URL".to_owned(),
        });
    }
    if urls.len() > MAX_CRAWL_URLS {
        return Err(ApiError::InvalidParameter {
            name: "urls",
            reason: format!("must list at most {MAX_CRAWL_URLS} URLs"),
        });
    }
    Ok(())
}

async fn api_crawl<B: Backend>(
    State(state): State<Arc<AppState<B>>>,
    ApiJson(body): ApiJson<CrawlRequest>,
) -> Result<(StatusCode, axum::Json<CrawlResponse>), ApiError> {
    check_url_count(&body.urls)?;
    let response = state.backend.submit_urls(body.urls).await;
    Ok((StatusCode::ACCEPTED, axum::Json(response)))
}

async fn api_status<B: Backend>(
    State(state): State<Arc<AppState<B>>>,
) -> axum::Json<crate::api::StatusResponse> {
    axum::Json(state.backend.status().await)
}

async fn api_peers<B: Backend>(
    State(state): State<Arc<AppState<B>>>,
) -> axum::Json<Vec<crate::api::PeerInfo>> {
    axum::Json(state.backend.peers().await)
}

async fn metrics_text<B: Backend>(State(state): State<Arc<AppState<B>>>) -> Response {
    let snapshot = state.backend.metrics().await;
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        state.metrics.render(&snapshot),
    )
        .into_response()
}

async fn home() -> Html<String> {
    Html(pages::home_page())
}

async fn help() -> Html<String> {
    Html(pages::help_page())
}

/// The results page for a query that cannot run, with status 400.
fn search_error(q: &str, message: &str) -> Response {
    let mut response = (
        StatusCode::BAD_REQUEST,
        Html(pages::search_error_page(q, message)),
    )
        .into_response();
    response.extensions_mut().insert(RenderedErrorPage);
    response
}

/// A human sentence for a parameter error on the results page.
fn search_error_message(err: &ApiError) -> String {
    match err {
        ApiError::InvalidParameter { name: "q", reason }
            if reason.contains("empty") || reason.contains("required") =>
        {
            "Type something to search for.".to_owned()
        }
        ApiError::InvalidParameter { name: "q", .. } => format!(
            "That query is too long: at most {} bytes, please.",
            crate::params::MAX_QUERY_BYTES
        ),
        ApiError::InvalidParameter { name, reason } => {
            format!("The parameter “{name}” {reason}.")
        }
        other => format!("{other}."),
    }
}

async fn search_page<B: Backend>(
    State(state): State<Arc<AppState<B>>>,
    query: QueryPairs,
) -> Result<Response, ApiError> {
    let Some(q) = query.get("q") else {
        return Ok(Redirect::to("/").into_response());
    };
    let params = match query.search_params() {
        Ok(params) => params,
        Err(err) => return Ok(search_error(q, &search_error_message(&err))),
    };
    match timed_search(&state, params.clone()).await {
        Ok(response) => Ok(Html(pages::results_page(&params, &response)).into_response()),
        Err(BackendError::BadQuery(message)) => Ok(search_error(
            &params.q,
            &format!("This query cannot be run: {message}."),
        )),
        Err(other) => Err(other.into()),
    }
}

/// The host to put into absolute URLs: the request's own when plausible, else the bound
/// address.
fn public_host(
    state: &AppState<impl Backend>,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
) -> String {
    request_host(headers, uri)
        .filter(|h| is_plausible_host(h))
        .unwrap_or_else(|| state.bound_addr.to_string())
}

async fn search_feed<B: Backend>(
    State(state): State<Arc<AppState<B>>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    query: QueryPairs,
) -> Result<Response, ApiError> {
    let params = query.search_params()?;
    let response = timed_search(&state, params.clone()).await?;
    let host = public_host(&state, &headers, &uri);
    Ok((
        [(header::CONTENT_TYPE, RSS_CONTENT_TYPE)],
        rss_feed(&host, &params, &response),
    )
        .into_response())
}

async fn opensearch<B: Backend>(
    State(state): State<Arc<AppState<B>>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let host = public_host(&state, &headers, &uri);
    (
        [(header::CONTENT_TYPE, OPENSEARCH_CONTENT_TYPE)],
        opensearch_description(&host),
    )
        .into_response()
}

/// Static assets may be cached for an hour (they change only with the binary).
const ASSET_CACHE_CONTROL: &str = "public, max-age=3600";

async fn style_css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, ASSET_CACHE_CONTROL),
        ],
        STYLE_CSS,
    )
        .into_response()
}

async fn favicon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, ASSET_CACHE_CONTROL),
        ],
        FAVICON_SVG,
    )
        .into_response()
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

async fn status_page<B: Backend>(
    State(state): State<Arc<AppState<B>>>,
    headers: HeaderMap,
    query: QueryPairs,
) -> Response {
    let (status, peers, activity) = tokio::join!(
        state.backend.status(),
        state.backend.peers(),
        state.backend.activity()
    );
    let existing = headers
        .get(header::COOKIE)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| cookie_value(h, CSRF_COOKIE))
        .filter(|token| state.csrf.is_valid(token))
        .map(str::to_owned);
    let is_new_token = existing.is_none();
    let token = existing.unwrap_or_else(|| state.csrf.issue());
    let seeds = match (
        query.number("accepted", 0, u64::MAX, 0),
        query.number("rejected", 0, u64::MAX, 0),
    ) {
        (Ok(accepted), Ok(rejected))
            if query.get("accepted").is_some() || query.get("rejected").is_some() =>
        {
            Some(SeedOutcome { accepted, rejected })
        }
        _ => None,
    };
    let html = pages::status_page(&StatusView {
        status: &status,
        peers: &peers,
        activity: &activity,
        csrf_token: &token,
        seeds,
        now_unix: now_unix(),
    });
    let mut response = Html(html).into_response();
    let headers = response.headers_mut();
    // The page holds a CSRF token: keep it out of caches.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if is_new_token
        && let Ok(cookie) = HeaderValue::from_str(&format!(
            "{CSRF_COOKIE}={token}; Path=/status; SameSite=Strict; HttpOnly"
        ))
    {
        headers.insert(header::SET_COOKIE, cookie);
    }
    response
}

/// Refuse cross-site form posts by the browser's own account of where they come from, when it
/// says: `Sec-Fetch-Site` must be `same-origin` (or `none`: typed by the user), and `Origin`
/// must be this very origin.
fn check_same_origin(headers: &HeaderMap, uri: &axum::http::Uri) -> Result<(), ApiError> {
    let forbidden =
        || ApiError::Forbidden("this form may only be sent from this peer's own page".to_owned());
    if let Some(site) = headers.get("sec-fetch-site")
        && !matches!(site.as_bytes(), b"same-origin" | b"none")
    {
        return Err(forbidden());
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().map_err(|_| forbidden())?;
        let host = request_host(headers, uri).ok_or_else(forbidden)?;
        let same = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(|rest| rest.eq_ignore_ascii_case(&host));
        if !same {
            return Err(forbidden());
        }
    }
    Ok(())
}

/// The seed form of the peer page (`csrf` is [`crate::csrf::CSRF_FIELD`]).
#[derive(Debug, Default, Deserialize)]
struct SeedForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    urls: String,
}

async fn post_seeds<B: Backend>(
    State(state): State<Arc<AppState<B>>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    ApiForm(form): ApiForm<SeedForm>,
) -> Result<Response, ApiError> {
    check_same_origin(&headers, &uri)?;
    let cookie = headers
        .get(header::COOKIE)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| cookie_value(h, CSRF_COOKIE));
    if !state.csrf.verify(cookie, Some(&form.csrf)) {
        tracing::debug!("refused seed form with a missing or wrong csrf token");
        return Err(ApiError::Forbidden(
            "the form has expired or did not come from this peer: reload the page and try again"
                .to_owned(),
        ));
    }
    let urls: Vec<String> = form
        .urls
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect();
    check_url_count(&urls)?;
    let outcome = state.backend.submit_urls(urls).await;
    for rejected in &outcome.rejected {
        tracing::info!(url = %rejected.url, reason = %rejected.reason, "seed url rejected");
    }
    let accepted = outcome.accepted.to_string();
    let rejected = outcome.rejected.len().to_string();
    let location = format!(
        "/status?{}",
        query_string([
            ("accepted", accepted.as_str()),
            ("rejected", rejected.as_str())
        ])
    );
    Ok(Redirect::to(&location).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_recognised() {
        for host in [
            "localhost",
            "localhost:8080",
            "LOCALHOST:1",
            "localhost.",
            "127.0.0.1",
            "127.0.0.1:8080",
            "127.1.2.3:65535",
            "[::1]",
            "[::1]:8080",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "evil.localhost",
            "10.0.0.1",
            "0.0.0.0",
            "[::2]:80",
            "[::1",
            "localhost:99999",
            "localhost:",
            "localhost:abc",
            "",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn ipv6_clients_share_a_key_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(client_key(mapped), "192.0.2.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn route_labels_are_bounded() {
        assert_eq!(route_label("/api/search"), "/api/search");
        assert_eq!(route_label("/wp-admin/x"), "unmatched");
    }

    #[test]
    fn config_debug_hides_the_secret() {
        let config = WebConfig::new("127.0.0.1:8080".parse().unwrap());
        let shown = format!("{config:?}");
        assert!(shown.contains("redacted"));
        assert_ne!(
            config.csrf_secret,
            WebConfig::new(config.bound_addr).csrf_secret
        );
    }
}
