//! Request parsing: the search parameters of the contract and extractors whose rejections come
//! out as [`ApiError`]s instead of axum's plain-text bodies.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::api::{DocParams, MAX_DOC_URL_BYTES, Scope, SearchParams};
use crate::error::ApiError;
use crate::escape::query_string;

/// Longest query accepted, in bytes (CONTRACT.md: `q` 1..=1024 bytes).
pub const MAX_QUERY_BYTES: usize = 1024;
/// Smallest and largest `limit` (CONTRACT.md), and the default.
pub const LIMIT_RANGE: (u64, u64) = (1, 100);
/// Default `limit` (CONTRACT.md).
pub const DEFAULT_LIMIT: usize = 10;
/// Largest `offset` (CONTRACT.md); deeper pages are not worth fanning out for.
pub const MAX_OFFSET: u64 = 1000;
/// Smallest and largest `timeout_ms` (CONTRACT.md).
pub const TIMEOUT_MS_RANGE: (u64, u64) = (50, 10_000);
/// Default `timeout_ms` (CONTRACT.md).
pub const DEFAULT_TIMEOUT_MS: u64 = 2000;
/// Most URLs in one crawl submission (the brief; a 64 KiB body holds about that many).
pub const MAX_CRAWL_URLS: usize = 1000;
/// Longest number accepted in a parameter: 20 digits is `u64::MAX`'s width.
const MAX_NUMBER_DIGITS: usize = 20;

/// Decoded `name=value` pairs of a query string, in order.
#[derive(Debug, Default, Clone)]
pub struct QueryPairs(Vec<(String, String)>);

impl QueryPairs {
    /// Parse a raw (percent-encoded) query string.
    pub fn parse(raw: Option<&str>) -> Self {
        Self(
            raw.map(|raw| {
                url::form_urlencoded::parse(raw.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default(),
        )
    }

    /// The first value of parameter `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Parameter `name` as an integer in `min..=max`, or `default` when absent.
    ///
    /// Only plain decimal digits are numbers here: `1e9`, `-1`, `+1`, `0x10`, `abc` and the
    /// empty string are refused.
    pub fn number(
        &self,
        name: &'static str,
        min: u64,
        max: u64,
        default: u64,
    ) -> Result<u64, ApiError> {
        let Some(raw) = self.get(name) else {
            return Ok(default);
        };
        let invalid = || ApiError::InvalidParameter {
            name,
            reason: format!("must be an integer from {min} to {max}"),
        };
        if raw.is_empty()
            || raw.len() > MAX_NUMBER_DIGITS
            || !raw.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(invalid());
        }
        let n: u64 = raw.parse().map_err(|_| invalid())?;
        if (min..=max).contains(&n) {
            Ok(n)
        } else {
            Err(invalid())
        }
    }

    /// `scope`: `network` (the default) or `local`.
    fn scope(&self) -> Result<Scope, ApiError> {
        match self.get("scope") {
            None | Some("network") => Ok(Scope::Network),
            Some("local") => Ok(Scope::Local),
            Some(_) => Err(ApiError::InvalidParameter {
                name: "scope",
                reason: "must be `network` or `local`".to_owned(),
            }),
        }
    }

    /// `explain`: absent, `0` or `false` (the default) for no, `1` or `true` for yes.
    fn explain(&self) -> Result<bool, ApiError> {
        match self.get("explain") {
            None | Some("0" | "false") => Ok(false),
            Some("1" | "true") => Ok(true),
            Some(_) => Err(ApiError::InvalidParameter {
                name: "explain",
                reason: "must be `1`, `true`, `0` or `false`".to_owned(),
            }),
        }
    }

    /// The parameters of a document look-up: `url` (required, an absolute http or https URL
    /// with a host, at most [`MAX_DOC_URL_BYTES`] bytes), `scope` and `timeout_ms` as for a
    /// search.
    pub fn doc_params(&self) -> Result<DocParams, ApiError> {
        let url = self.url()?;
        let timeout_ms = self.number(
            "timeout_ms",
            TIMEOUT_MS_RANGE.0,
            TIMEOUT_MS_RANGE.1,
            DEFAULT_TIMEOUT_MS,
        )?;
        Ok(DocParams {
            url,
            scope: self.scope()?,
            timeout_ms,
        })
    }

    /// `url`: required, an absolute http or https URL with a host, at most
    /// [`MAX_DOC_URL_BYTES`] bytes (surrounding whitespace dropped).
    fn url(&self) -> Result<String, ApiError> {
        let invalid = |reason: String| ApiError::InvalidParameter {
            name: "url",
            reason,
        };
        let raw = self
            .get("url")
            .ok_or_else(|| invalid("is required".to_owned()))?
            .trim();
        if raw.is_empty() {
            return Err(invalid("must not be empty".to_owned()));
        }
        if raw.len() > MAX_DOC_URL_BYTES {
            return Err(invalid(format!(
                "must be at most {MAX_DOC_URL_BYTES} bytes"
            )));
        }
        let parsed = url::Url::parse(raw)
            .map_err(|_| invalid("must be an absolute http or https URL".to_owned()))?;
        if !matches!(parsed.scheme(), "http" | "https")
            || parsed.host_str().is_none_or(str::is_empty)
        {
            return Err(invalid("must be an absolute http or https URL".to_owned()));
        }
        Ok(raw.to_owned())
    }

    /// The parameters of the `/why` page: the search the result came from (as
    /// [`Self::search_params`] reads it, with `explain` on) and the result's `url` (as a
    /// document look-up reads it).
    pub fn why_params(&self) -> Result<(SearchParams, String), ApiError> {
        let mut params = self.search_params()?;
        params.explain = true;
        Ok((params, self.url()?))
    }

    /// The search parameters of the contract; `page` (1-based, in units of `limit`) is also
    /// understood when `offset` is absent, for the HTML pages.
    pub fn search_params(&self) -> Result<SearchParams, ApiError> {
        let q = self.get("q").ok_or_else(|| ApiError::InvalidParameter {
            name: "q",
            reason: "is required".to_owned(),
        })?;
        if q.trim().is_empty() {
            return Err(ApiError::InvalidParameter {
                name: "q",
                reason: "must not be empty".to_owned(),
            });
        }
        if q.len() > MAX_QUERY_BYTES {
            return Err(ApiError::InvalidParameter {
                name: "q",
                reason: format!("must be at most {MAX_QUERY_BYTES} bytes"),
            });
        }
        let limit = self.number("limit", LIMIT_RANGE.0, LIMIT_RANGE.1, DEFAULT_LIMIT as u64)?;
        let offset = if self.get("offset").is_some() || self.get("page").is_none() {
            self.number("offset", 0, MAX_OFFSET, 0)?
        } else {
            let max_page = MAX_OFFSET / limit + 1;
            (self.number("page", 1, max_page, 1)? - 1) * limit
        };
        let timeout_ms = self.number(
            "timeout_ms",
            TIMEOUT_MS_RANGE.0,
            TIMEOUT_MS_RANGE.1,
            DEFAULT_TIMEOUT_MS,
        )?;
        let scope = self.scope()?;
        Ok(SearchParams {
            q: q.to_owned(),
            limit: limit as usize,
            offset: offset as usize,
            scope,
            timeout_ms,
            explain: self.explain()?,
        })
    }
}

/// The query string that names a search independently of its page: `q` and, when not the
/// default, `scope` (the RSS feed's links and the results page's feed link).
pub(crate) fn feed_query(params: &SearchParams) -> String {
    let mut pairs: Vec<(&str, &str)> = vec![("q", &params.q)];
    if params.scope == Scope::Local {
        pairs.push(("scope", "local"));
    }
    query_string(pairs)
}

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::parse(parts.uri.query()))
    }
}

/// Map one of axum's extractor rejections to our error, by its status.
fn map_rejection(status: axum::http::StatusCode, body_text: String) -> ApiError {
    use axum::http::StatusCode;
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(body_text),
        StatusCode::UNPROCESSABLE_ENTITY => ApiError::Unprocessable(body_text),
        StatusCode::BAD_REQUEST => ApiError::BadRequest(body_text),
        other => ApiError::from_status(other),
    }
}

/// `axum::Json` whose rejections are [`ApiError`]s: 415 without `Content-Type:
/// application/json`, 400 for malformed JSON, 422 for JSON of the wrong shape, 413 for a body
/// over the limit.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(map_rejection(rejection.status(), rejection.body_text())),
        }
    }
}

/// `axum::Form` whose rejections are [`ApiError`]s.
#[derive(Debug, Clone)]
pub struct ApiForm<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiForm<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(value)) => Ok(Self(value)),
            Err(rejection) => Err(map_rejection(rejection.status(), rejection.body_text())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> Result<SearchParams, ApiError> {
        QueryPairs::parse(Some(q)).search_params()
    }

    fn bad_param(q: &str) -> &'static str {
        match parse(q) {
            Err(ApiError::InvalidParameter { name, .. }) => name,
            other => panic!("expected invalid parameter for {q:?}, got {other:?}"),
        }
    }

    #[test]
    fn defaults_apply_when_only_q_is_given() {
        let p = parse("q=rust+async").unwrap();
        assert_eq!(
            p,
            SearchParams {
                q: "rust async".into(),
                limit: 10,
                offset: 0,
                scope: Scope::Network,
                timeout_ms: 2000,
                explain: false,
            }
        );
    }

    #[test]
    fn explain_is_a_boolean_flag() {
        for (query, explain) in [
            ("q=x", false),
            ("q=x&explain=0", false),
            ("q=x&explain=false", false),
            ("q=x&explain=1", true),
            ("q=x&explain=true", true),
        ] {
            assert_eq!(parse(query).unwrap().explain, explain, "{query}");
        }
        for query in [
            "q=x&explain=",
            "q=x&explain=yes",
            "q=x&explain=2",
            "q=x&explain=TRUE",
            "q=x&explain=%201",
        ] {
            assert_eq!(bad_param(query), "explain", "{query}");
        }
    }

    #[test]
    fn all_parameters_are_read_and_unknown_ones_ignored() {
        let p = parse("q=x&limit=100&offset=1000&scope=local&timeout_ms=50&foo=bar").unwrap();
        assert_eq!(
            (p.limit, p.offset, p.scope, p.timeout_ms),
            (100, 1000, Scope::Local, 50)
        );
    }

    #[test]
    fn the_query_is_kept_as_given() {
        assert_eq!(parse("q=%20a%20").unwrap().q, " a ");
    }

    #[test]
    fn bad_queries_are_refused() {
        assert_eq!(bad_param(""), "q");
        assert_eq!(bad_param("q="), "q");
        assert_eq!(bad_param("q=%20%09%0A"), "q");
        assert_eq!(bad_param(&format!("q={}", "a".repeat(1025))), "q");
        assert!(parse(&format!("q={}", "a".repeat(1024))).is_ok());
    }

    #[test]
    fn bad_numbers_are_refused() {
        for (query, name) in [
            ("q=x&limit=0", "limit"),
            ("q=x&limit=101", "limit"),
            ("q=x&limit=1e9", "limit"),
            ("q=x&limit=-1", "limit"),
            ("q=x&limit=abc", "limit"),
            ("q=x&limit=", "limit"),
            ("q=x&limit=%2B5", "limit"),
            ("q=x&limit=99999999999999999999999", "limit"),
            ("q=x&offset=1001", "offset"),
            ("q=x&timeout_ms=10", "timeout_ms"),
            ("q=x&timeout_ms=10001", "timeout_ms"),
            ("q=x&scope=x", "scope"),
            ("q=x&scope=", "scope"),
        ] {
            assert_eq!(bad_param(query), name, "{query}");
        }
    }

    #[test]
    fn doc_urls_must_be_absolute_http_and_bounded() {
        let doc = |q: &str| QueryPairs::parse(Some(q)).doc_params();
        let p = doc("url=http%3A%2F%2Fa.example%2Fx&scope=local&timeout_ms=500").unwrap();
        assert_eq!(
            p,
            DocParams {
                url: "http://a.example/x".into(),
                scope: Scope::Local,
                timeout_ms: 500
            }
        );
        assert_eq!(doc("url=https://a.example/").unwrap().scope, Scope::Network);
        for bad in [
            "",
            "url=",
            "url=%20",
            "url=/relative",
            "url=a.example/x",
            "url=javascript:alert(1)",
            "url=ftp://a.example/",
            "url=file:///etc/passwd",
            "url=http://",
        ] {
            assert!(
                matches!(
                    doc(bad),
                    Err(ApiError::InvalidParameter { name: "url", .. })
                ),
                "{bad}"
            );
        }
        let long = format!("url=http://a.example/{}", "a".repeat(MAX_DOC_URL_BYTES));
        assert!(doc(&long).is_err());
        let fits = format!(
            "url=http://a.example/{}",
            "a".repeat(MAX_DOC_URL_BYTES - 21)
        );
        assert!(doc(&fits).is_ok());
        assert!(matches!(
            doc("url=http://a.example/&scope=all"),
            Err(ApiError::InvalidParameter { name: "scope", .. })
        ));
        assert!(matches!(
            doc("url=http://a.example/&timeout_ms=1"),
            Err(ApiError::InvalidParameter {
                name: "timeout_ms",
                ..
            })
        ));
    }

    #[test]
    fn why_needs_a_search_and_a_url_and_always_explains() {
        let why = |q: &str| QueryPairs::parse(Some(q)).why_params();
        let (params, url) =
            why("q=rust&url=http%3A%2F%2Fa.example%2F&offset=20&scope=local&explain=0").unwrap();
        assert_eq!(url, "http://a.example/");
        assert_eq!(
            (params.q.as_str(), params.offset, params.scope, params.limit),
            ("rust", 20, Scope::Local, DEFAULT_LIMIT)
        );
        assert!(params.explain);
        for (query, name) in [
            ("url=http://a.example/", "q"),
            ("q=&url=http://a.example/", "q"),
            ("q=rust", "url"),
            ("q=rust&url=javascript:alert(1)", "url"),
            ("q=rust&url=http://a.example/&offset=x", "offset"),
            ("q=rust&url=http://a.example/&explain=maybe", "explain"),
        ] {
            match why(query) {
                Err(ApiError::InvalidParameter { name: got, .. }) => {
                    assert_eq!(got, name, "{query}")
                }
                other => panic!("{query}: {other:?}"),
            }
        }
    }

    #[test]
    fn page_turns_into_offset() {
        assert_eq!(parse("q=x&page=3").unwrap().offset, 20);
        assert_eq!(parse("q=x&page=2&limit=50").unwrap().offset, 50);
        assert_eq!(parse("q=x&page=3&offset=5").unwrap().offset, 5);
        assert_eq!(bad_param("q=x&page=0"), "page");
        assert_eq!(bad_param("q=x&page=102"), "page");
        assert_eq!(parse("q=x&page=101").unwrap().offset, 1000);
    }
}
