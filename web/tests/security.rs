//! The defences of the HTTP layer: the `Host` check (DNS rebinding), security headers and no
//! CORS, the per-client rate limit (on tokio's paused clock) and the seed form's CSRF token.

use crate::common;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::checks::check_page;
use common::{
    FakeBackend, HOST, Reply, config, from_ip, get, get_with_host, plain_hits, router,
    router_with_config, send,
};
use peersearch_web::{CONTENT_SECURITY_POLICY, CrawlScope, WebConfig, escape};

// ------------------------------------------------------------------------------------------
// Host check

#[tokio::test]
async fn foreign_host_is_refused_with_403_forbidden_host_when_bound_to_loopback() {
    let (router, _) = router();
    for host in [
        Some("evil.example"),
        Some("evil.example:8080"),
        Some("localhost.evil.example"),
        Some("127.0.0.1.evil.example"),
        None,
    ] {
        let reply = send(&router, get_with_host("/api/status", host)).await;
        reply.assert_api_error(StatusCode::FORBIDDEN, "forbidden_host");
        assert_eq!(
            reply.json()["error"]["message"],
            "this peer only answers requests addressed to localhost",
            "{host:?}"
        );
    }
    for host in [
        "localhost:8080",
        "localhost",
        "127.0.0.1:8080",
        "[::1]:8080",
    ] {
        let reply = send(&router, get_with_host("/api/status", Some(host))).await;
        assert_eq!(reply.status, StatusCode::OK, "{host}: {}", reply.body);
    }
    // The pages get an HTML refusal with the same status and message.
    let reply = send(&router, get_with_host("/", Some("evil.example"))).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(reply.is_html(), "{}", reply.content_type());
    assert!(
        reply.body.contains("addressed to localhost"),
        "{}",
        reply.body
    );
    check_page(&reply.body);
}

#[tokio::test]
async fn any_host_is_accepted_when_bound_to_a_public_address() {
    let config = WebConfig {
        bound_addr: "0.0.0.0:8080".parse().unwrap(),
        ..config()
    };
    let (router, _) = router_with_config(FakeBackend::new(plain_hits(1)), config);
    let reply = send(
        &router,
        get_with_host("/api/status", Some("search.example.org")),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

// ------------------------------------------------------------------------------------------
// Headers

#[tokio::test]
async fn responses_carry_security_headers_and_no_cors() {
    let (router, _) = router();
    let cross_origin = |method: Method, path: &str| {
        Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, HOST)
            .header(header::ORIGIN, "http://evil.example")
            .header("access-control-request-method", "GET")
            .body(Body::empty())
            .unwrap()
    };
    for (request, status) in [
        (get("/"), StatusCode::OK),
        (get("/api/search?q=x"), StatusCode::OK),
        (get("/nope"), StatusCode::NOT_FOUND),
        (cross_origin(Method::GET, "/api/status"), StatusCode::OK),
        // A CORS preflight finds no OPTIONS route: no CORS.
        (
            cross_origin(Method::OPTIONS, "/api/search"),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
    ] {
        let path = request.uri().to_string();
        let reply = send(&router, request).await;
        assert_eq!(reply.status, status, "{path}");
        assert_eq!(
            reply.headers[header::CONTENT_SECURITY_POLICY],
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
        );
        assert_eq!(
            reply.headers[header::CONTENT_SECURITY_POLICY],
            CONTENT_SECURITY_POLICY
        );
        assert_eq!(reply.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(reply.headers[header::REFERRER_POLICY], "same-origin");
        assert_eq!(reply.headers["cross-origin-resource-policy"], "same-origin");
        assert_eq!(reply.headers["cross-origin-opener-policy"], "same-origin");
        assert!(
            !reply
                .headers
                .keys()
                .any(|k| k.as_str().starts_with("access-control-")),
            "no CORS headers on {path}"
        );
    }
}

// ------------------------------------------------------------------------------------------
// Rate limit. The limiter reads tokio's clock: paused here, so time moves only when the test
// advances it.

/// `GET /api/status` from `ip`.
async fn status_from(router: &Router, ip: &str) -> Reply {
    send(router, from_ip(ip, get("/api/status"))).await
}

/// Asserts that `ip` is served `times` times in a row.
async fn assert_served(router: &Router, ip: &str, times: usize) {
    for i in 0..times {
        let reply = status_from(router, ip).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{ip}, request {i}: {}",
            reply.body
        );
    }
}

/// Asserts that `ip` is refused with a 429 in the contract's shape; returns `Retry-After`.
async fn assert_refused(router: &Router, ip: &str) -> u64 {
    let reply = status_from(router, ip).await;
    reply.assert_api_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    reply.retry_after()
}

fn rate_limited_router(exempt_loopback_clients: bool) -> Router {
    let config = WebConfig {
        rate_limit_per_sec: 1,
        exempt_loopback_clients,
        ..config()
    };
    router_with_config(FakeBackend::new(plain_hits(1)), config).0
}

#[tokio::test(start_paused = true)]
async fn rate_limit_answers_429_after_the_burst_per_client() {
    let router = rate_limited_router(false);
    // 1 request per second with a burst of 2.
    assert_served(&router, "192.0.2.1", 2).await;
    let reply = status_from(&router, "192.0.2.1").await;
    reply.assert_api_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert_eq!(reply.retry_after(), 1);
    assert_eq!(
        reply.json()["error"]["message"],
        "too many requests, retry in 1 s"
    );

    // The pages get an HTML 429 that says how long to wait.
    let page = send(&router, from_ip("192.0.2.1", get("/help"))).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(page.is_html(), "{}", page.content_type());
    assert_eq!(page.retry_after(), 1);
    assert!(
        page.body
            .contains("Please wait 1 second before trying again.")
    );
    check_page(&page.body);

    // Another client has its own budget; so does a request without ConnectInfo (127.0.0.1).
    assert_served(&router, "192.0.2.2", 1).await;
    assert_eq!(
        send(&router, get("/api/status")).await.status,
        StatusCode::OK
    );
    // IPv6 clients share a budget per /64.
    assert_served(&router, "2001:db8::1", 1).await;
    assert_served(&router, "2001:db8::2", 1).await;
    assert_refused(&router, "2001:db8::3").await;
    assert_served(&router, "2001:db8:0:1::1", 1).await;
}

#[tokio::test(start_paused = true)]
async fn rate_limited_client_is_served_again_when_retry_after_has_passed() {
    let router = rate_limited_router(false);
    assert_served(&router, "192.0.2.1", 2).await;
    let retry_after = Duration::from_secs(assert_refused(&router, "192.0.2.1").await);

    // Just before the time it named: still refused, and Retry-After never says 0.
    tokio::time::advance(retry_after - Duration::from_millis(1)).await;
    assert_eq!(assert_refused(&router, "192.0.2.1").await, 1);

    tokio::time::advance(Duration::from_millis(1)).await;
    assert_served(&router, "192.0.2.1", 1).await;
    // One request's worth came back, not the burst.
    assert_refused(&router, "192.0.2.1").await;
}

#[tokio::test(start_paused = true)]
async fn loopback_clients_skip_the_rate_limit_when_exempt() {
    let router = rate_limited_router(true);
    for ip in ["127.0.0.1", "::1", "127.0.0.2"] {
        assert_served(&router, ip, 10).await;
    }
    // Remote clients are limited all the same: the burst of 2, then 429s.
    assert_served(&router, "192.0.2.9", 2).await;
    assert_refused(&router, "192.0.2.9").await;
    assert_refused(&router, "192.0.2.9").await;
}

#[tokio::test(start_paused = true)]
async fn loopback_clients_are_limited_when_not_exempt() {
    let router = rate_limited_router(false);
    assert_served(&router, "127.0.0.1", 2).await;
    assert_refused(&router, "127.0.0.1").await;
}

// ------------------------------------------------------------------------------------------
// The seed form's CSRF token

/// The CSRF cookie set by `GET /status` and the token in its form.
async fn csrf_pair(router: &Router) -> (String, String) {
    let reply = send(router, get("/status")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let cookie = reply.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.contains("SameSite=Strict"));
    assert!(cookie.contains("HttpOnly"));
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let doc = scraper::Html::parse_document(&reply.body);
    let sel = scraper::Selector::parse("input[type=hidden][name=csrf]").unwrap();
    let field = doc
        .select(&sel)
        .next()
        .expect("csrf field")
        .value()
        .attr("value")
        .unwrap()
        .to_owned();
    (cookie, field)
}

fn seed_post(cookie: Option<&str>, form: &str, extra: &[(&str, &str)]) -> Request<Body> {
    let mut request = Request::post("/status/seeds")
        .header(header::HOST, HOST)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    for (k, v) in extra {
        request = request.header(*k, *v);
    }
    request.body(Body::from(form.to_owned())).unwrap()
}

#[tokio::test]
async fn seed_form_needs_the_csrf_token() {
    let (router, backend) = router();
    let (cookie, token) = csrf_pair(&router).await;
    assert_eq!(cookie, format!("peersearch_csrf={token}"));
    let urls = "urls=http%3A%2F%2Fa.example%2F%0D%0A%0D%0Anot-a-url%0D%0Ahttp%3A%2F%2Fb.example%2F";

    // Each refusal for its own reason: the double-submit check, or the browser's headers.
    let csrf_refusal = "form has expired or did not come from this peer";
    let origin_refusal = "form may only be sent from this peer's own page";
    let refused = [
        (seed_post(None, urls, &[]), csrf_refusal),
        (seed_post(Some(&cookie), urls, &[]), csrf_refusal),
        (
            seed_post(
                Some(&cookie),
                &format!("csrf=00{}&{urls}", &token[2..]),
                &[],
            ),
            csrf_refusal,
        ),
        (
            seed_post(None, &format!("csrf={token}&{urls}"), &[]),
            csrf_refusal,
        ),
        (
            seed_post(
                Some(&cookie),
                &format!("csrf={token}&{urls}"),
                &[("sec-fetch-site", "cross-site")],
            ),
            origin_refusal,
        ),
        (
            seed_post(
                Some(&cookie),
                &format!("csrf={token}&{urls}"),
                &[("origin", "http://localhost:9999")],
            ),
            origin_refusal,
        ),
    ];
    for (request, reason) in refused {
        let reply = send(&router, request).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reason}");
        assert!(reply.is_html(), "{reason}");
        assert!(
            reply.body.contains(&escape(reason)),
            "{reason}: {}",
            reply.body
        );
        check_page(&reply.body);
    }
    assert!(backend.submitted.lock().unwrap().is_empty());

    let reply = send(
        &router,
        seed_post(
            Some(&cookie),
            &format!("csrf={token}&{urls}"),
            &[
                ("sec-fetch-site", "same-origin"),
                ("origin", "http://localhost:8080"),
            ],
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(
        reply.headers[header::LOCATION],
        "/status?accepted=2&rejected=1"
    );
    assert_eq!(
        backend.submitted.lock().unwrap()[0],
        vec!["http://a.example/", "not-a-url", "http://b.example/"]
    );

    // Coming back with the cookie keeps the same token (no new Set-Cookie).
    let mut again = get("/status?accepted=2&rejected=1");
    again
        .headers_mut()
        .insert(header::COOKIE, cookie.parse().unwrap());
    let reply = send(&router, again).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(!reply.headers.contains_key(header::SET_COOKIE));
    assert!(reply.body.contains(&token));
    assert!(reply.body.contains("2 URLs accepted, 1 rejected."));

    // The form's "links to follow" choice: the peer's default, each URL's own site, or any.
    for (follow, scope) in [
        ("", None),
        (
            "site",
            Some(CrawlScope {
                site: true,
                ..CrawlScope::default()
            }),
        ),
        ("any", Some(CrawlScope::default())),
    ] {
        let reply = send(
            &router,
            seed_post(
                Some(&cookie),
                &format!("csrf={token}&{urls}&follow={follow}"),
                &[("sec-fetch-site", "same-origin")],
            ),
        )
        .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        assert_eq!(backend.scopes.lock().unwrap().last(), Some(&scope));
    }
    let reply = send(
        &router,
        seed_post(
            Some(&cookie),
            &format!("csrf={token}&{urls}&follow=everything"),
            &[("sec-fetch-site", "same-origin")],
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert_eq!(backend.scopes.lock().unwrap().len(), 4);
}
