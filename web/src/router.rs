//! The router: [`app`] puts the routes and the layers together, [`serve`] runs it.
//!
//! Layers, outermost first: tracing → [`finalize`] (catches panics, gives every error the JSON
//! or HTML shape, adds the security headers, counts requests) → request timeout → `Host` check
//! ([`check_host`], DNS-rebinding defence) → per-client rate limit ([`rate_limit`]) → body
//! size limit → routes ([`crate::handlers`]).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware;
use axum::routing::{get, post};
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::api::Backend;
use crate::config::{REQUEST_TIMEOUT, WebConfig};
use crate::csrf::Csrf;
use crate::finalize::finalize;
use crate::handlers::{AppState, documents, html, json_api, method_not_allowed, not_found};
use crate::host::{HostGuard, check_host};
use crate::metrics::HttpMetrics;
use crate::proxy::{PublicUrl, UrlBase};
use crate::rate_limit::{ClientRateLimiter, rate_limit};

/// The router of the whole web layer: the JSON API, the pages, the feeds and `/metrics`.
///
/// Tests can call it with `tower::ServiceExt::oneshot`; without `ConnectInfo` (no socket) the
/// client counts as 127.0.0.1.
pub fn app<B: Backend>(backend: Arc<B>, config: WebConfig) -> Router {
    let metrics = Arc::new(HttpMetrics::default());
    let public = config
        .public_url
        .as_deref()
        .and_then(|text| match PublicUrl::parse(text) {
            Ok(public) => Some(public),
            Err(reason) => {
                tracing::error!(url = text, %reason, "ignoring invalid public url");
                None
            }
        });
    let url_base = UrlBase {
        public: public.clone(),
        trusted_proxies: config.trusted_proxies.clone(),
    };
    let state = Arc::new(AppState {
        backend,
        bound_addr: config.bound_addr,
        csrf: Csrf::new(config.csrf_secret),
        metrics: metrics.clone(),
        url_base,
    });
    let limiter = ClientRateLimiter::new(config.rate_limit_per_sec, config.exempt_loopback_clients)
        .map(Arc::new);

    let middleware = ServiceBuilder::new()
        .layer(TraceLayer::new_for_http())
        .layer(middleware::from_fn_with_state(metrics, finalize))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(middleware::from_fn_with_state(
            HostGuard::for_bound_addr(config.bound_addr, public),
            check_host,
        ))
        .layer(middleware::from_fn_with_state(limiter, rate_limit))
        .layer(RequestBodyLimitLayer::new(config.max_body_bytes));

    Router::new()
        .route("/", get(html::home::<B>))
        .route("/search", get(html::search_page::<B>))
        .route("/search.rss", get(documents::search_feed::<B>))
        .route("/help", get(html::help::<B>))
        .route("/why", get(html::why_page::<B>))
        .route("/doc", get(html::doc_page::<B>))
        .route("/status", get(html::status_page::<B>))
        .route("/status/seeds", post(html::post_seeds::<B>))
        .route("/opensearch.xml", get(documents::opensearch::<B>))
        .route("/static/style.css", get(documents::style_css))
        .route("/favicon.svg", get(documents::favicon))
        .route("/metrics", get(documents::metrics_text::<B>))
        .route("/api/search", get(json_api::search::<B>))
        .route("/api/crawl", post(json_api::crawl::<B>))
        .route("/api/status", get(json_api::status::<B>))
        .route("/api/peers", get(json_api::peers::<B>))
        .route("/api/doc", get(json_api::doc::<B>))
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
