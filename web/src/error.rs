//! The one error type of the web layer and how it becomes an HTTP response.
//!
//! Every failure a client can see, whatever produced it (a handler, an extractor, a
//! middleware, axum itself), ends up as an [`ApiError`]. JSON clients get
//! `{"error": {"code": "...", "message": "..."}}` (CONTRACT.md); the pages get the same status
//! and message as an HTML page (see `crate::finalize`).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::api::BackendError;

/// Result alias of the web crate.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// Everything that can go wrong while answering a request.
///
/// The `Display` text is the message shown to the client; for 5xx errors it is generic and the
/// details (carried in the variant) are only logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The request as a whole is malformed (e.g. the body is not JSON).
    #[error("{0}")]
    BadRequest(String),
    /// One named parameter is missing or out of range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// The parameter's name.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The backend refused the query (the message is safe to show).
    #[error("bad query: {0}")]
    BadQuery(String),
    /// The request was refused (e.g. a missing or wrong CSRF token).
    #[error("{0}")]
    Forbidden(String),
    /// The `Host` header names no loopback host while the server listens on loopback
    /// (DNS-rebinding defence).
    #[error("this peer only answers requests addressed to localhost")]
    ForbiddenHost,
    /// No such page or endpoint.
    #[error("no such page or endpoint")]
    NotFound,
    /// No peer asked holds a document for the URL (`GET /api/doc`, `/doc`).
    #[error("no peer holds a document for this url (it was never crawled, or not yet)")]
    NoDocument,
    /// The path exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The body is larger than the configured limit.
    #[error("request body too large")]
    PayloadTooLarge,
    /// The body has the wrong content type.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The body is syntactically fine but does not have the expected shape.
    #[error("{0}")]
    Unprocessable(String),
    /// The client sent too many requests; it may retry after this many seconds.
    #[error("too many requests, retry in {retry_after_s} s")]
    RateLimited {
        /// Seconds until the next request would be allowed (at least 1).
        retry_after_s: u64,
    },
    /// A bug or an unexpected failure; the detail is logged, never shown.
    #[error("internal server error")]
    Internal(String),
    /// The peer is shutting down or a component is gone; the detail is logged.
    #[error("this peer is not available right now")]
    Unavailable(String),
    /// The request took longer than the server's request timeout.
    #[error("the request took too long")]
    Timeout,
    /// Any other error status produced below the web layer (kept as is).
    #[error("request failed")]
    Other(StatusCode),
}

/// The JSON body of every error (CONTRACT.md).
#[derive(Debug, Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Debug, Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: String,
}

impl ApiError {
    /// The HTTP status and the stable snake_case code of this error.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::InvalidParameter { .. } => (StatusCode::BAD_REQUEST, "invalid_parameter"),
            Self::BadQuery(_) => (StatusCode::BAD_REQUEST, "bad_query"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::ForbiddenHost => (StatusCode::FORBIDDEN, "forbidden_host"),
            Self::NotFound | Self::NoDocument => (StatusCode::NOT_FOUND, "not_found"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Self::Unprocessable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Timeout => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
            Self::Other(status) if status.is_server_error() => (*status, "internal"),
            Self::Other(status) => (*status, "bad_request"),
        }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        self.status_and_code().0
    }

    /// The error matching a bare error status produced by a layer or by axum itself.
    pub fn from_status(status: StatusCode) -> Self {
        match status {
            StatusCode::BAD_REQUEST => Self::BadRequest("bad request".to_owned()),
            StatusCode::NOT_FOUND => Self::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => Self::MethodNotAllowed,
            StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => Self::Timeout,
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                Self::UnsupportedMediaType("unsupported content type".to_owned())
            }
            StatusCode::UNPROCESSABLE_ENTITY => {
                Self::Unprocessable("the request body has the wrong shape".to_owned())
            }
            StatusCode::TOO_MANY_REQUESTS => Self::RateLimited { retry_after_s: 1 },
            StatusCode::INTERNAL_SERVER_ERROR => Self::Internal(format!("status {status}")),
            StatusCode::SERVICE_UNAVAILABLE => Self::Unavailable(format!("status {status}")),
            other => Self::Other(other),
        }
    }

    /// Headers that go with this error whatever the body format (`Retry-After`, `Allow`).
    pub(crate) fn extra_headers(&self, headers: &mut axum::http::HeaderMap) {
        if let Self::RateLimited { retry_after_s } = self {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_s));
        }
    }

    /// Log the details that are not shown to the client.
    pub(crate) fn log(&self) {
        match self {
            Self::Internal(detail) => tracing::error!(%detail, "internal error"),
            Self::Unavailable(detail) => tracing::warn!(%detail, "backend unavailable"),
            _ => {}
        }
    }
}

impl From<BackendError> for ApiError {
    fn from(err: BackendError) -> Self {
        match err {
            BackendError::BadQuery(msg) => Self::BadQuery(msg),
            BackendError::BadScope(reason) => Self::InvalidParameter {
                name: "scope",
                reason,
            },
            BackendError::Unavailable(msg) => Self::Unavailable(msg),
            BackendError::Internal(msg) => Self::Internal(msg),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log();
        let (status, code) = self.status_and_code();
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message: self.to_string(),
            },
        };
        let mut response = (status, Json(body)).into_response();
        self.extra_headers(response.headers_mut());
        // Marks the response as already shaped, and lets the page layer re-render it as HTML.
        response.extensions_mut().insert(self);
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_hide_their_details() {
        let err = ApiError::Internal("db at /secret/path broke".into());
        assert_eq!(err.to_string(), "internal server error");
        assert_eq!(
            err.status_and_code(),
            (StatusCode::INTERNAL_SERVER_ERROR, "internal")
        );
    }

    #[test]
    fn bare_statuses_map_to_their_errors() {
        assert_eq!(
            ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE),
            ApiError::PayloadTooLarge
        );
        assert_eq!(
            ApiError::from_status(StatusCode::NOT_FOUND).status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            ApiError::from_status(StatusCode::IM_A_TEAPOT).status(),
            StatusCode::IM_A_TEAPOT
        );
    }

    #[test]
    fn rate_limited_response_carries_retry_after() {
        let response = ApiError::RateLimited { retry_after_s: 3 }.into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
    }

    #[test]
    fn backend_errors_map_to_statuses() {
        let bad: ApiError = BackendError::BadQuery("x".into()).into();
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        let gone: ApiError = BackendError::Unavailable("x".into()).into();
        assert_eq!(gone.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
