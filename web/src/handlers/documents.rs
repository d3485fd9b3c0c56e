//! The machine-readable documents and the assets: the OpenSearch description, the RSS feed,
//! `/metrics`, the stylesheet and the favicon.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Uri, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::timed_search;
use crate::api::Backend;
use crate::assets::{FAVICON_SVG, STYLE_CSS};
use crate::error::ApiError;
use crate::feeds::{OPENSEARCH_CONTENT_TYPE, RSS_CONTENT_TYPE, opensearch_description, rss_feed};
use crate::metrics;
use crate::params::QueryPairs;

/// Static assets may be cached for an hour (they change only with the binary).
const ASSET_CACHE_CONTROL: &str = "public, max-age=3600";

/// The TCP peer of a request, when it came over a socket.
pub(crate) type Client = Option<Extension<ConnectInfo<SocketAddr>>>;

/// The base of absolute URLs for this request (see [`crate::proxy::UrlBase::base`]).
pub(crate) fn base_of<B>(
    state: &AppState<B>,
    headers: &HeaderMap,
    uri: &Uri,
    client: Client,
) -> String {
    let client = client.map(|Extension(ConnectInfo(addr))| addr.ip());
    state.url_base.base(state.bound_addr, headers, uri, client)
}

/// `GET /search.rss`: a search as an RSS feed.
pub(crate) async fn search_feed<B: Backend>(
    State(state): State<Arc<AppState<B>>>,
    client: Client,
    headers: HeaderMap,
    uri: Uri,
    query: QueryPairs,
) -> Result<Response, ApiError> {
    let params = query.search_params()?;
    let response = timed_search(&state, params.clone()).await?;
    let base = base_of(&state, &headers, &uri, client);
    Ok((
        [(header::CONTENT_TYPE, RSS_CONTENT_TYPE)],
        rss_feed(&base, &params, &response),
    )
        .into_response())
}

/// `GET /opensearch.xml`.
pub(crate) async fn opensearch<B: Backend>(
    State(state): State<Arc<AppState<B>>>,
    client: Client,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let base = base_of(&state, &headers, &uri, client);
    (
        [(header::CONTENT_TYPE, OPENSEARCH_CONTENT_TYPE)],
        opensearch_description(&base),
    )
        .into_response()
}

/// `GET /metrics`: the node's counters and the web layer's own.
pub(crate) async fn metrics_text<B: Backend>(State(state): State<Arc<AppState<B>>>) -> Response {
    let snapshot = state.backend.metrics().await;
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        state.metrics.render(&snapshot),
    )
        .into_response()
}

/// A compiled-in asset.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, ASSET_CACHE_CONTROL),
        ],
        body,
    )
        .into_response()
}

/// `GET /static/style.css`.
pub(crate) async fn style_css() -> Response {
    asset("text/css; charset=utf-8", STYLE_CSS)
}

/// `GET /favicon.svg`.
pub(crate) async fn favicon() -> Response {
    asset("image/svg+xml", FAVICON_SVG)
}
