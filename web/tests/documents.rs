//! The machine-readable documents: the OpenSearch description, the RSS feed, `/metrics` and
//! the static assets; and the checkers that read them, which must be able to fail.

use crate::common;

use std::collections::HashMap;

use axum::http::StatusCode;
use common::checks::{check_page, parse_prometheus, parse_xml, xml_texts};
use common::{get, router, send};

#[tokio::test]
async fn opensearch_description_is_valid_xml_with_the_templates() {
    let (router, _) = router();
    let reply = send(&router, get("/opensearch.xml")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.content_type(),
        "application/opensearchdescription+xml"
    );
    let elements = parse_xml(&reply.body);
    assert_eq!(elements[0].0, "OpenSearchDescription");
    assert_eq!(xml_texts(&reply.body, "ShortName"), vec!["peersearch"]);
    assert_eq!(xml_texts(&reply.body, "InputEncoding"), vec!["UTF-8"]);
    let templates: HashMap<&str, &str> = elements
        .iter()
        .filter(|(name, _)| name == "Url")
        .map(|(_, a)| (a["type"].as_str(), a["template"].as_str()))
        .collect();
    assert_eq!(
        templates["text/html"],
        "http://localhost:8080/search?q={searchTerms}"
    );
    assert_eq!(
        templates["application/rss+xml"],
        "http://localhost:8080/search.rss?q={searchTerms}"
    );
    assert_eq!(
        templates["application/json"],
        "http://localhost:8080/api/search?q={searchTerms}"
    );
}

#[tokio::test]
async fn rss_feed_is_valid_rss() {
    let (router, _) = router();
    let reply = send(&router, get("/search.rss?q=rust+%26+co")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.content_type().starts_with("application/rss+xml"));
    let elements = parse_xml(&reply.body);
    assert_eq!(elements[0].0, "rss");
    assert_eq!(elements[0].1["version"], "2.0");
    assert_eq!(elements.iter().filter(|(n, _)| n == "item").count(), 3);
    assert_eq!(xml_texts(&reply.body, "title")[0], "peersearch: rust & co");
    assert_eq!(xml_texts(&reply.body, "guid")[0], "http://example.com/0");
    assert_eq!(
        xml_texts(&reply.body, "description")[1],
        "learn <b>rust</b> &amp; more"
    );
    assert_eq!(
        xml_texts(&reply.body, "link")[0],
        "http://localhost:8080/search?q=rust+%26+co"
    );
}

#[tokio::test]
async fn metrics_are_valid_prometheus_text() {
    let (router, _) = router();
    for (path, status) in [
        ("/api/search?q=x", StatusCode::OK),
        ("/search?q=x", StatusCode::OK),
        ("/api/search?q=", StatusCode::BAD_REQUEST),
        ("/wp-login.php", StatusCode::NOT_FOUND),
    ] {
        assert_eq!(send(&router, get(path)).await.status, status, "{path}");
    }
    let reply = send(&router, get("/metrics")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply
            .content_type()
            .starts_with("text/plain; version=0.0.4")
    );
    let samples = parse_prometheus(&reply.body);
    let find = |name: &str, labels: &[(&str, &str)]| {
        samples
            .iter()
            .find(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, v)| *v)
            .unwrap_or_else(|| panic!("no sample {name} {labels:?}\n{}", reply.body))
    };
    assert_eq!(
        find("peersearch_crawl_pages_total", &[("outcome", "indexed")]),
        1200.0
    );
    assert_eq!(find("peersearch_docs_indexed", &[]), 1234.0);
    assert_eq!(find("peersearch_index_bytes", &[]), 99_000.0);
    assert_eq!(find("peersearch_frontier_size", &[]), 56.0);
    assert_eq!(find("peersearch_peers_connected", &[]), 2.0);
    assert_eq!(find("process_resident_memory_bytes", &[]), 67_108_864.0);
    assert_eq!(
        find("peersearch_network_queries_total", &[("rounds", "1")]),
        40.0
    );
    assert_eq!(
        find(
            "peersearch_p2p_bytes_sent_total",
            &[("protocol", "/peersearch/search/1.0.0")]
        ),
        4096.0
    );
    assert_eq!(
        find(
            "peersearch_p2p_bytes_received_total",
            &[("protocol", "/peersearch/search/1.0.0")]
        ),
        8192.0
    );
    assert_eq!(
        find(
            "peersearch_http_requests_total",
            &[("route", "/api/search"), ("status", "200")]
        ),
        1.0
    );
    assert_eq!(
        find(
            "peersearch_http_requests_total",
            &[("route", "/api/search"), ("status", "400")]
        ),
        1.0
    );
    assert_eq!(
        find(
            "peersearch_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ),
        1.0
    );
    assert_eq!(find("peersearch_search_duration_seconds_count", &[]), 2.0);
    assert_eq!(
        find(
            "peersearch_search_duration_seconds_bucket",
            &[("le", "+Inf")]
        ),
        2.0
    );
    // Buckets are cumulative.
    let buckets: Vec<f64> = samples
        .iter()
        .filter(|(n, _, _)| n == "peersearch_search_duration_seconds_bucket")
        .map(|(_, _, v)| *v)
        .collect();
    assert_eq!(buckets.len(), 12);
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]));
}

#[tokio::test]
async fn static_assets_are_served_from_the_peer() {
    let (router, _) = router();
    let css = send(&router, get("/static/style.css")).await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.content_type().starts_with("text/css"));
    assert!(css.body.contains("prefers-color-scheme: dark"));
    assert!(css.body.contains(":focus-visible"));
    assert!(!css.body.contains("url("), "no external resources");
    let icon = send(&router, get("/favicon.svg")).await;
    assert_eq!(icon.status, StatusCode::OK);
    assert_eq!(icon.content_type(), "image/svg+xml");
    assert_eq!(parse_xml(&icon.body)[0].0, "svg");
}

// ------------------------------------------------------------------------------------------
// The checkers themselves must be able to fail.

#[test]
fn page_checker_rejects_broken_or_incomplete_html() {
    let good = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"x\"><title>t</title><link rel=\"search\" type=\"application/opensearchdescription+xml\" title=\"p\" href=\"/opensearch.xml\"></head><body><a class=\"skip-link\" href=\"#main\">s</a><header><nav aria-label=\"Site\"></nav></header><main id=\"main\"><label for=\"q\">q</label><input id=\"q\"></main><footer></footer></body></html>";
    check_page(good);
    for broken in [
        good.replace("<main id=\"main\">", "<main id=\"main\"></div>"),
        good.replace("<label for=\"q\">q</label>", ""),
        good.replace("<link rel=\"search\"", "<link rel=\"alternate\""),
        good.replace("</main>", "<script>x</script></main>"),
        good.replace("<!DOCTYPE html>\n", ""),
    ] {
        let result = std::panic::catch_unwind(|| check_page(&broken));
        assert!(result.is_err(), "accepted: {broken}");
    }
}

#[test]
fn prometheus_checker_rejects_malformed_text() {
    let good = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\\\"\"} 3\n";
    assert_eq!(parse_prometheus(good)[0].1["x"], "1\"");
    for broken in [
        "a_total 3\n",
        "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1} 3\n",
        "# HELP a_total A.\n# TYPE a_total counter\na_total three\n",
        "# HELP a_total A.\n# TYPE a_total counter\na_total{x=1} 3\n",
    ] {
        let result = std::panic::catch_unwind(|| parse_prometheus(broken));
        assert!(result.is_err(), "accepted: {broken}");
    }
}
