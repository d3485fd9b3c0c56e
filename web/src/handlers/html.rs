//! The HTML pages: home, help, results, why a result scored, cached text, the peer page and
//! its seed form. Errors that are not
//! rendered here become HTML error pages in [`crate::finalize`].

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::AppState;
use super::{check_url_count, timed_search};
use crate::api::{Backend, BackendError, CrawlScope};
use crate::csrf::{CSRF_COOKIE, cookie_value};
use crate::error::ApiError;
use crate::escape::query_string;
use crate::finalize::RenderedErrorPage;
use crate::host::request_host;
use crate::pages::{self, SeedOutcome, StatusView};
use crate::params::{ApiForm, MAX_QUERY_BYTES, QueryPairs};
use crate::proxy::PublicUrl;
use crate::why;

/// `GET /doc?url=URL`: the cached text of a page. A bad URL is a 400 page, a URL no peer
/// holds a 404 page (both rendered by [`crate::finalize`]).
pub(crate) async fn doc_page<B: Backend>(
    State(state): State<Arc<AppState<B>>>,
    query: QueryPairs,
) -> Result<Response, ApiError> {
    let params = query.doc_params()?;
    match state.backend.document(params).await? {
        Some(doc) => Ok(Html(rebase(&state, pages::doc_page(&doc.capped()))).into_response()),
        None => Err(ApiError::NoDocument),
    }
}

/// `GET /`.
pub(crate) async fn home<B: Backend>(State(state): State<Arc<AppState<B>>>) -> Html<String> {
    Html(rebase(&state, pages::home_page()))
}

/// A search page's HTML for the public URL, if any (see [`pages::rebase`]).
fn rebase<B>(state: &AppState<B>, html: String) -> String {
    let href = state.url_base.opensearch_href();
    pages::rebase(html, state.url_base.link_prefix(), href.as_deref())
}

/// `GET /help`.
pub(crate) async fn help<B: Backend>(State(state): State<Arc<AppState<B>>>) -> Html<String> {
    Html(rebase(&state, pages::help_page()))
}

/// The results page for a query that cannot run, with status 400.
fn search_error<B>(state: &AppState<B>, q: &str, message: &str) -> Response {
    RenderedErrorPage::mark(
        (
            StatusCode::BAD_REQUEST,
            Html(rebase(state, pages::search_error_page(q, message))),
        )
            .into_response(),
    )
}

/// A human sentence for a parameter error on the results page.
fn search_error_message(err: &ApiError) -> String {
    match err {
        ApiError::InvalidParameter { name: "q", reason }
            if reason.contains("empty") || reason.contains("required") =>
        {
            "Type something to search for.".to_owned()
        }
        ApiError::InvalidParameter { name: "q", .. } => {
            format!("That query is too long: at most {MAX_QUERY_BYTES} bytes, please.")
        }
        ApiError::InvalidParameter { name, reason } => {
            format!("The parameter “{name}” {reason}.")
        }
        other => format!("{other}."),
    }
}

/// `GET /search`: the results page; without `q`, back to the home page.
pub(crate) async fn search_page<B: Backend>(
    State(state): State<Arc<AppState<B>>>,
    query: QueryPairs,
) -> Result<Response, ApiError> {
    let prefix = state.url_base.link_prefix();
    let Some(q) = query.get("q") else {
        return Ok(Redirect::to(&format!("{prefix}/")).into_response());
    };
    let params = match query.search_params() {
        Ok(params) => params,
        Err(err) => return Ok(search_error(&state, q, &search_error_message(&err))),
    };
    match timed_search(&state, params.clone()).await {
        Ok(response) => {
            Ok(Html(rebase(&state, pages::results_page(&params, &response))).into_response())
        }
        Err(BackendError::BadQuery(message)) => Ok(search_error(
            &state,
            &params.q,
            &format!("This query cannot be run: {message}."),
        )),
        Err(other) => Err(other.into()),
    }
}

/// `GET /why?q=...&url=...`: the search `q` (same page and scope) run again with
/// explanations, and the one of the result `url`. Bad parameters are a 400 page, a URL not
/// among the results a 404 page with the way back.
pub(crate) async fn why_page<B: Backend>(
    State(state): State<Arc<AppState<B>>>,
    query: QueryPairs,
) -> Result<Response, ApiError> {
    let (params, url) = query.why_params()?;
    let response = timed_search(&state, params.clone()).await?;
    match response.hits.iter().find(|hit| hit.url == url) {
        Some(hit) => Ok(Html(rebase(&state, why::why_page(&params, hit))).into_response()),
        None => Ok(RenderedErrorPage::mark(
            (
                StatusCode::NOT_FOUND,
                Html(rebase(&state, why::why_missing_page(&params, &url))),
            )
                .into_response(),
        )),
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// The CSRF cookie of the request, if any.
fn csrf_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::COOKIE)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| cookie_value(h, CSRF_COOKIE))
}

/// `GET /status`: the peer page, with a CSRF token for its seed form (the cookie's when it is
/// still valid, else a new one, set as a cookie).
pub(crate) async fn status_page<B: Backend>(
    State(state): State<Arc<AppState<B>>>,
    headers: HeaderMap,
    query: QueryPairs,
) -> Response {
    let (status, peers, activity) = tokio::join!(
        state.backend.status(),
        state.backend.peers(),
        state.backend.activity()
    );
    let existing = csrf_cookie(&headers)
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
    // The peer page is the operator's, reached through an SSH tunnel rather than the public
    // URL: its links and form stay root-relative.
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
fn check_same_origin(
    headers: &HeaderMap,
    uri: &Uri,
    public: Option<&PublicUrl>,
) -> Result<(), ApiError> {
    let forbidden =
        || ApiError::Forbidden("this form may only be sent from this peer's own page".to_owned());
    if let Some(site) = headers.get("sec-fetch-site")
        && !matches!(site.as_bytes(), b"same-origin" | b"none")
    {
        return Err(forbidden());
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().map_err(|_| forbidden())?;
        if public.is_some_and(|p| origin.eq_ignore_ascii_case(&p.origin)) {
            return Ok(());
        }
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
pub(crate) struct SeedForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    urls: String,
    /// Which links the crawl follows: "" (the peer's default scope), "site" (each URL's own
    /// site) or "any".
    #[serde(default)]
    follow: String,
}

/// `POST /status/seeds`: submit the form's URLs (one per line) and go back to the peer page,
/// which tells how many were accepted.
pub(crate) async fn post_seeds<B: Backend>(
    State(state): State<Arc<AppState<B>>>,
    headers: HeaderMap,
    uri: Uri,
    ApiForm(form): ApiForm<SeedForm>,
) -> Result<Response, ApiError> {
    check_same_origin(&headers, &uri, state.url_base.public.as_ref())?;
    if !state.csrf.verify(csrf_cookie(&headers), Some(&form.csrf)) {
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
    let scope = match form.follow.as_str() {
        "" => None,
        "site" => Some(CrawlScope {
            site: true,
            ..CrawlScope::default()
        }),
        "any" => Some(CrawlScope::default()),
        _ => {
            return Err(ApiError::InvalidParameter {
                name: "follow",
                reason: "must be empty, \"site\" or \"any\"".to_owned(),
            });
        }
    };
    let outcome = state.backend.submit_urls(urls, scope).await?;
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

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn same_origin_check_trusts_only_this_origin() {
        let uri = Uri::from_static("/status/seeds");
        let ok = |pairs| check_same_origin(&headers(pairs), &uri, None).is_ok();
        assert!(ok(&[("host", "localhost:8080")]), "no browser headers");
        assert!(ok(&[
            ("host", "localhost:8080"),
            ("sec-fetch-site", "same-origin"),
            ("origin", "http://localhost:8080"),
        ]));
        assert!(ok(&[
            ("host", "localhost:8080"),
            ("sec-fetch-site", "none")
        ]));
        assert!(!ok(&[
            ("host", "localhost:8080"),
            ("sec-fetch-site", "cross-site")
        ]));
        assert!(!ok(&[
            ("host", "localhost:8080"),
            ("origin", "http://localhost:9999")
        ]));
        assert!(!ok(&[("host", "localhost:8080"), ("origin", "null")]));
        assert!(!ok(&[("origin", "http://localhost:8080")]), "no host");
    }

    #[test]
    fn parameter_errors_read_as_sentences() {
        let empty = ApiError::InvalidParameter {
            name: "q",
            reason: "must not be empty".to_owned(),
        };
        assert_eq!(
            search_error_message(&empty),
            "Type something to search for."
        );
        let limit = ApiError::InvalidParameter {
            name: "limit",
            reason: "must be an integer from 1 to 100".to_owned(),
        };
        assert_eq!(
            search_error_message(&limit),
            "The parameter “limit” must be an integer from 1 to 100."
        );
    }
}
