//! Behind a reverse proxy: `--public-url` as the base of every absolute URL and of the pages'
//! own links, forwarding headers believed only from `--trusted-proxy` addresses, and the `Host`
//! check admitting the public URL's host.

use crate::common;

use std::collections::HashMap;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::checks::{parse_xml, xml_texts};
use common::{
    FakeBackend, config, from_ip, get, get_with_host, plain_hits, router_with_config, send,
};
use peersearch_web::WebConfig;

const PUBLIC: &str = "https://example.org/search-engine/";

fn public_router() -> Router {
    let config = config().with_public_url(Some(PUBLIC.to_owned()));
    router_with_config(FakeBackend::new(plain_hits(3)), config).0
}

fn proxied_router() -> Router {
    let config = config().with_trusted_proxies(vec!["127.0.0.1".parse().unwrap()]);
    router_with_config(FakeBackend::new(plain_hits(3)), config).0
}

/// The OpenSearch templates by type.
fn templates(xml: &str) -> HashMap<String, String> {
    parse_xml(xml)
        .into_iter()
        .filter(|(name, _)| name == "Url")
        .map(|(_, a)| (a["type"].clone(), a["template"].clone()))
        .collect()
}

/// `GET path` with extra headers, addressed to `localhost:8080`.
fn get_with(path: &str, headers: &[(&'static str, &str)]) -> Request<Body> {
    let mut request = get(path);
    for (name, value) in headers {
        request.headers_mut().insert(*name, value.parse().unwrap());
    }
    request
}

async fn search_template(router: &Router, request: Request<Body>) -> String {
    let reply = send(router, request).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    templates(&reply.body)["text/html"].clone()
}

#[tokio::test]
async fn public_url_is_the_base_of_opensearch_and_rss() {
    let router = public_router();
    let reply = send(&router, get("/opensearch.xml")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let t = templates(&reply.body);
    assert_eq!(
        t["text/html"],
        "https://example.org/search-engine/search?q={searchTerms}"
    );
    assert_eq!(
        t["application/rss+xml"],
        "https://example.org/search-engine/search.rss?q={searchTerms}"
    );
    assert_eq!(
        t["application/opensearchdescription+xml"],
        "https://example.org/search-engine/opensearch.xml"
    );
    assert!(!reply.body.contains("localhost"), "{}", reply.body);

    let reply = send(&router, get("/search.rss?q=rust")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let channel_link = &xml_texts(&reply.body, "link")[0];
    assert_eq!(
        channel_link,
        "https://example.org/search-engine/search?q=rust"
    );
    let atom: Vec<String> = parse_xml(&reply.body)
        .into_iter()
        .filter(|(name, a)| name == "link" && a.contains_key("href"))
        .map(|(_, a)| a["href"].clone())
        .collect();
    assert_eq!(
        atom,
        vec![
            "https://example.org/search-engine/search.rss?q=rust",
            "https://example.org/search-engine/opensearch.xml"
        ]
    );
    // Item links point at the crawled pages, not at the peer.
    assert!(
        !reply
            .body
            .contains("<link>https://example.org/search-engine/http")
    );
}

#[tokio::test]
async fn public_url_beats_forwarded_headers() {
    let config = config()
        .with_public_url(Some(PUBLIC.to_owned()))
        .with_trusted_proxies(vec!["127.0.0.1".parse().unwrap()]);
    let router = router_with_config(FakeBackend::new(plain_hits(1)), config).0;
    let request = from_ip(
        "127.0.0.1",
        get_with(
            "/opensearch.xml",
            &[
                ("x-forwarded-proto", "http"),
                ("x-forwarded-host", "other.example"),
            ],
        ),
    );
    assert_eq!(
        search_template(&router, request).await,
        "https://example.org/search-engine/search?q={searchTerms}"
    );
}

#[tokio::test]
async fn public_url_prefixes_the_pages_own_links() {
    let router = public_router();
    let reply = send(&router, get("/search?q=rust")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let body = &reply.body;
    for link in [
        r#"<link rel="search" type="application/opensearchdescription+xml" title="peersearch" href="https://example.org/search-engine/opensearch.xml">"#,
        r#"href="/search-engine/static/style.css""#,
        r#"action="/search-engine/search""#,
        r#"href="/search-engine/search.rss?q=rust""#,
        r#"href="/search-engine/help""#,
    ] {
        assert!(body.contains(link), "{link} missing in\n{body}");
    }
    assert!(
        !body.contains("href=\"/opensearch.xml") && !body.contains("href=\"/help"),
        "a link without the prefix is left:\n{body}"
    );
    assert!(body.contains("href=\"#main\""), "in-page links stay");
    // Hits link to the crawled pages, untouched.
    assert!(body.contains("href=\"http"), "{body}");
    // Without q the results page goes back to the home page under the prefix.
    let reply = send(&router, get("/search")).await;
    assert_eq!(reply.headers[header::LOCATION], "/search-engine/");
    // The peer page is the operator's (SSH tunnel): its links stay root-relative.
    let reply = send(&router, get("/status")).await;
    assert!(
        reply.body.contains(r#"action="/status/seeds""#),
        "{}",
        reply.body
    );
    // A public URL at the root keeps the links, only the search link becomes absolute.
    let config = config().with_public_url(Some("https://search.example.org".to_owned()));
    let root = router_with_config(FakeBackend::new(plain_hits(1)), config).0;
    let reply = send(&root, get("/")).await;
    assert!(
        reply
            .body
            .contains(r#"href="https://search.example.org/opensearch.xml""#)
    );
    assert!(reply.body.contains(r#"href="/help""#));
    // Without a public URL nothing changes.
    let (plain, _) = common::router();
    let reply = send(&plain, get("/search?q=rust")).await;
    assert!(
        reply
            .body
            .contains(r#"title="peersearch" href="/opensearch.xml""#)
    );
    assert_eq!(
        send(&plain, get("/search")).await.headers[header::LOCATION],
        "/"
    );
}

#[tokio::test]
async fn host_check_admits_the_public_host_when_bound_to_loopback() {
    let router = public_router();
    for host in [
        "example.org",
        "EXAMPLE.ORG",
        "example.org:443",
        "localhost:8080",
    ] {
        let reply = send(&router, get_with_host("/api/status", Some(host))).await;
        assert_eq!(reply.status, StatusCode::OK, "{host}: {}", reply.body);
    }
    for host in [
        "evil.example",
        "example.org:8080",
        "example.org.evil.example",
    ] {
        let reply = send(&router, get_with_host("/api/status", Some(host))).await;
        reply.assert_api_error(StatusCode::FORBIDDEN, "forbidden_host");
    }
    // Without a public URL the same host is foreign.
    let (plain, _) = common::router();
    send(&plain, get_with_host("/api/status", Some("example.org")))
        .await
        .assert_api_error(StatusCode::FORBIDDEN, "forbidden_host");
    // Forwarded headers never admit a host: only the Host header is checked.
    let proxied = proxied_router();
    let mut request = from_ip(
        "127.0.0.1",
        get_with_host("/api/status", Some("search.example.org")),
    );
    request
        .headers_mut()
        .insert("x-forwarded-host", "localhost".parse().unwrap());
    send(&proxied, request)
        .await
        .assert_api_error(StatusCode::FORBIDDEN, "forbidden_host");
}

#[tokio::test]
async fn trusted_proxy_forwarded_proto_gives_https_links() {
    let router = proxied_router();
    let request = from_ip(
        "127.0.0.1",
        get_with("/opensearch.xml", &[("x-forwarded-proto", "https")]),
    );
    assert_eq!(
        search_template(&router, request).await,
        "https://localhost:8080/search?q={searchTerms}"
    );
    let request = from_ip(
        "127.0.0.1",
        get_with(
            "/search.rss?q=rust",
            &[
                ("x-forwarded-proto", "https, http"),
                ("x-forwarded-host", "search.example.org"),
            ],
        ),
    );
    let reply = send(&router, request).await;
    assert_eq!(
        xml_texts(&reply.body, "link")[0],
        "https://search.example.org/search?q=rust"
    );
    // Nonsense values are ignored.
    let request = from_ip(
        "127.0.0.1",
        get_with(
            "/opensearch.xml",
            &[
                ("x-forwarded-proto", "javascript"),
                ("x-forwarded-host", "a/b\"c"),
            ],
        ),
    );
    assert_eq!(
        search_template(&router, request).await,
        "http://localhost:8080/search?q={searchTerms}"
    );
}

#[tokio::test]
async fn forwarding_headers_from_untrusted_clients_are_ignored() {
    let router = proxied_router();
    let headers = [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "attacker.example"),
        ("forwarded", "proto=https;host=attacker.example"),
    ];
    let untrusted = from_ip("203.0.113.9", get_with("/opensearch.xml", &headers));
    assert_eq!(
        search_template(&router, untrusted).await,
        "http://localhost:8080/search?q={searchTerms}"
    );
    // No ConnectInfo: the client is unknown, never trusted.
    assert_eq!(
        search_template(&router, get_with("/opensearch.xml", &headers)).await,
        "http://localhost:8080/search?q={searchTerms}"
    );
    // No trusted proxy at all: exactly as before, even from loopback.
    let (plain, _) = common::router();
    assert_eq!(
        search_template(
            &plain,
            from_ip("127.0.0.1", get_with("/opensearch.xml", &headers))
        )
        .await,
        "http://localhost:8080/search?q={searchTerms}"
    );
}

#[tokio::test]
async fn rfc7239_forwarded_is_parsed_with_quoted_values() {
    let router = proxied_router();
    let request = from_ip(
        "127.0.0.1",
        get_with(
            "/opensearch.xml",
            &[
                (
                    "forwarded",
                    r#"for="[2001:db8:cafe::17]:4711";Proto="https";host="search.example.org:8443", for=198.51.100.17;proto=http"#,
                ),
                // Forwarded beats X-Forwarded-*.
                ("x-forwarded-proto", "http"),
                ("x-forwarded-host", "other.example"),
            ],
        ),
    );
    assert_eq!(
        search_template(&router, request).await,
        "https://search.example.org:8443/search?q={searchTerms}"
    );
    // A Forwarded element without host keeps the Host header's.
    let request = from_ip(
        "127.0.0.1",
        get_with(
            "/opensearch.xml",
            &[("forwarded", "for=192.0.2.60;proto=https;by=203.0.113.43")],
        ),
    );
    assert_eq!(
        search_template(&router, request).await,
        "https://localhost:8080/search?q={searchTerms}"
    );
}

#[tokio::test]
async fn ipv4_mapped_proxy_addresses_are_trusted() {
    let config = WebConfig::new("127.0.0.1:8080".parse().unwrap())
        .with_trusted_proxies(vec!["127.0.0.1".parse().unwrap()]);
    let router = router_with_config(FakeBackend::new(plain_hits(1)), config).0;
    let request = from_ip(
        "::ffff:127.0.0.1",
        get_with("/opensearch.xml", &[("x-forwarded-proto", "https")]),
    );
    assert_eq!(
        search_template(&router, request).await,
        "https://localhost:8080/search?q={searchTerms}"
    );
}
