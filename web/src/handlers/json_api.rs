//! The JSON API of the contract: `GET /api/search`, `POST /api/crawl`, `GET /api/status`,
//! `GET /api/peers`, and the extension `GET /api/doc`. Errors are [`ApiError`]s, which answer in the contract's error shape.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use super::AppState;
use super::{check_url_count, timed_search};
use crate::api::{
    Backend, CrawlResponse, CrawlScope, DocResponse, PeerInfo, SearchResponse, StatusResponse,
};
use crate::error::ApiError;
use crate::params::{ApiJson, QueryPairs};

/// `GET /api/search`.
pub(crate) async fn search<B: Backend>(
    State(state): State<Arc<AppState<B>>>,
    query: QueryPairs,
) -> Result<Json<SearchResponse>, ApiError> {
    let params = query.search_params()?;
    Ok(Json(timed_search(&state, params).await?))
}

/// The body of `POST /api/crawl`.
#[derive(Debug, Deserialize)]
pub(crate) struct CrawlRequest {
    urls: Vec<String>,
    /// Which links the crawl follows; absent: the peer's default scope.
    #[serde(default)]
    scope: Option<CrawlScope>,
}

/// `POST /api/crawl`: 202 with what was accepted and rejected.
pub(crate) async fn crawl<B: Backend>(
    State(state): State<Arc<AppState<B>>>,
    ApiJson(body): ApiJson<CrawlRequest>,
) -> Result<(StatusCode, Json<CrawlResponse>), ApiError> {
    check_url_count(&body.urls)?;
    let response = state.backend.submit_urls(body.urls, body.scope).await?;
    Ok((StatusCode::ACCEPTED, Json(response)))
}

/// `GET /api/status`.
pub(crate) async fn status<B: Backend>(
    State(state): State<Arc<AppState<B>>>,
) -> Json<StatusResponse> {
    Json(state.backend.status().await)
}

/// `GET /api/doc?url=URL`: what the network holds for one URL (capped, see
/// [`DocResponse::capped`]); 404 when no peer asked holds it.
pub(crate) async fn doc<B: Backend>(
    State(state): State<Arc<AppState<B>>>,
    query: QueryPairs,
) -> Result<Json<DocResponse>, ApiError> {
    let params = query.doc_params()?;
    match state.backend.document(params).await? {
        Some(doc) => Ok(Json(doc.capped())),
        None => Err(ApiError::NoDocument),
    }
}

/// `GET /api/peers`.
pub(crate) async fn peers<B: Backend>(
    State(state): State<Arc<AppState<B>>>,
) -> Json<Vec<PeerInfo>> {
    Json(state.backend.peers().await)
}
