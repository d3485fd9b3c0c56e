//! The handlers behind the routes of [`crate::router::app`]: the JSON API ([`json_api`]), the
//! HTML pages ([`html`]) and the machine-readable documents and assets ([`documents`]).
//! Handlers only await the [`Backend`]; they do no blocking work of their own (rendering is
//! string formatting of bounded size).

pub(crate) mod documents;
pub(crate) mod html;
pub(crate) mod json_api;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use crate::api::{Backend, BackendError, SearchParams, SearchResponse};
use crate::csrf::Csrf;
use crate::error::ApiError;
use crate::metrics::HttpMetrics;
use crate::params::MAX_CRAWL_URLS;
use crate::proxy::UrlBase;

/// Shared by every handler.
pub(crate) struct AppState<B> {
    pub(crate) backend: Arc<B>,
    pub(crate) bound_addr: SocketAddr,
    pub(crate) csrf: Csrf,
    pub(crate) metrics: Arc<HttpMetrics>,
    /// What absolute URLs and the pages' own links are built from.
    pub(crate) url_base: UrlBase,
}

/// The fallback of unknown paths.
pub(crate) async fn not_found() -> ApiError {
    ApiError::NotFound
}

/// The fallback of known paths with another method.
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Run a search and record its duration.
async fn timed_search<B: Backend>(
    state: &AppState<B>,
    params: SearchParams,
) -> Result<SearchResponse, BackendError> {
    let started = Instant::now();
    let result = state.backend.search(params).await;
    state.metrics.record_search(started.elapsed());
    result
}

/// The URL list of a submission (API or seed form): at least one, at most
/// [`MAX_CRAWL_URLS`].
fn check_url_count(urls: &[String]) -> Result<(), ApiError> {
    let reason = if urls.is_empty() {
        "must list at least one URL".to_owned()
    } else if urls.len() > MAX_CRAWL_URLS {
        format!("must list at most {MAX_CRAWL_URLS} URLs")
    } else {
        return Ok(());
    };
    Err(ApiError::InvalidParameter {
        name: "urls",
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_count_is_bounded_on_both_sides() {
        assert!(check_url_count(&[]).is_err());
        assert!(check_url_count(&["http://a/".to_owned()]).is_ok());
        assert!(check_url_count(&vec![String::new(); MAX_CRAWL_URLS]).is_ok());
        assert!(check_url_count(&vec![String::new(); MAX_CRAWL_URLS + 1]).is_err());
    }
}
