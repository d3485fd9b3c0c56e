//! The outermost own layer: every response leaves through [`finalize`], which turns panics into
//! 500s, gives every error the shape of its audience (the contract's JSON under `/api/`, an
//! HTML page elsewhere), adds the security headers and counts the request for `/metrics`.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use futures::FutureExt as _;

use crate::error::ApiError;
use crate::metrics::HttpMetrics;
use crate::metrics::route_label;
use crate::pages;

/// The Content-Security-Policy of every response: nothing but this peer's own stylesheet,
/// images and forms; no scripts at all; no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Marks a handler's own HTML error page (e.g. the results page for a bad query), which
/// [`finalize`] must leave as it is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RenderedErrorPage;

impl RenderedErrorPage {
    /// `response`, marked as a finished error page.
    pub(crate) fn mark(mut response: Response) -> Response {
        response.extensions_mut().insert(Self);
        response
    }
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

/// Give an error response the shape of its audience. An [`ApiError`] in the extensions says
/// the response already has the JSON shape; a bare error status (from a layer or axum) gets
/// the error of that status.
fn shape_error(mut response: Response, is_api: bool) -> Response {
    let status = response.status();
    let err = response.extensions_mut().remove::<ApiError>();
    match (err, is_api) {
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
    }
}

/// See the module documentation.
pub(crate) async fn finalize(
    State(metrics): State<Arc<HttpMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
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
        response = shape_error(response, is_api_path(&path));
    }
    set_security_headers(response.headers_mut());
    metrics.record_request(route_label(&path), response.status().as_u16());
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn api_paths_are_recognised() {
        assert!(is_api_path("/api"));
        assert!(is_api_path("/api/search"));
        assert!(!is_api_path("/apis"));
        assert!(!is_api_path("/search"));
    }

    #[test]
    fn bare_error_statuses_get_the_shape_of_their_audience() {
        let bare = || StatusCode::NOT_FOUND.into_response();
        let json = shape_error(bare(), true);
        assert_eq!(json.status(), StatusCode::NOT_FOUND);
        assert_eq!(json.headers()[header::CONTENT_TYPE], "application/json");
        let html = shape_error(bare(), false);
        assert_eq!(html.status(), StatusCode::NOT_FOUND);
        assert!(
            html.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }
}
