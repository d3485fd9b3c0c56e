//! `/metrics` in the Prometheus text exposition format (version 0.0.4), written by hand.
//!
//! The node's counters come from [`crate::api::MetricsSnapshot`]; the web layer adds
//! `peersearch_http_requests_total{route,status}` and the search latency histogram
//! `peersearch_search_duration_seconds`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use crate::api::MetricsSnapshot;

/// Every route of [`crate::router::app`], as `/metrics` labels them (a fixed set, so the label stays bounded).
const ROUTES: [&str; 17] = [
    "/",
    "/search",
    "/search.rss",
    "/help",
    "/why",
    "/doc",
    "/status",
    "/status/seeds",
    "/opensearch.xml",
    "/static/style.css",
    "/favicon.svg",
    "/metrics",
    "/api/search",
    "/api/crawl",
    "/api/status",
    "/api/peers",
    "/api/doc",
];

/// The route label of `/metrics` for a path: the route itself, or `unmatched`.
pub(crate) fn route_label(path: &str) -> &'static str {
    ROUTES
        .iter()
        .find(|r| **r == path)
        .copied()
        .unwrap_or("unmatched")
}

/// Upper bounds of the search latency histogram, in seconds (Prometheus' default buckets:
/// from 5 ms, well under a local search, to 10 s, the largest `timeout_ms` allowed).
pub const SEARCH_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The `Content-Type` of the exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Debug, Default)]
struct Histogram {
    /// Non-cumulative counts per bucket of [`SEARCH_BUCKETS`], plus one for `+Inf`.
    counts: [u64; SEARCH_BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

/// What the web layer measures itself.
#[derive(Debug, Default)]
pub struct HttpMetrics {
    /// Requests by (route, status). Routes come from a fixed list, so this stays small.
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    search: Mutex<Histogram>,
}

impl HttpMetrics {
    /// Count one answered request.
    pub fn record_request(&self, route: &'static str, status: u16) {
        let mut map = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry((route, status)).or_default() += 1;
    }

    /// Record the duration of one search.
    pub fn record_search(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let bucket = SEARCH_BUCKETS
            .iter()
            .position(|le| secs <= *le)
            .unwrap_or(SEARCH_BUCKETS.len());
        let mut h = self.search.lock().unwrap_or_else(|e| e.into_inner());
        h.counts[bucket] += 1;
        h.sum += secs;
        h.count += 1;
    }

    /// The whole exposition: the node's counters and the web layer's.
    pub fn render(&self, node: &MetricsSnapshot) -> String {
        let mut out = String::with_capacity(4096);
        family(
            &mut out,
            "peersearch_crawl_pages_total",
            "counter",
            "Pages the crawler handled, by outcome.",
        );
        for (outcome, n) in &node.crawl_outcomes {
            sample(
                &mut out,
                "peersearch_crawl_pages_total",
                &[("outcome", outcome)],
                *n,
            );
        }
        family(
            &mut out,
            "peersearch_revisits_total",
            "counter",
            "Revisits of crawled pages since start, by what they found (all: every revisit).",
        );
        for (result, n) in &node.revisits {
            sample(
                &mut out,
                "peersearch_revisits_total",
                &[("result", result)],
                *n,
            );
        }
        family(
            &mut out,
            "peersearch_network_queries_total",
            "counter",
            "Network queries answered as root, by the rounds of requests to other peers they took.",
        );
        for (rounds, n) in &node.query_rounds {
            sample(
                &mut out,
                "peersearch_network_queries_total",
                &[("rounds", rounds)],
                *n,
            );
        }
        let gauges: [(&str, &str, u64); 6] = [
            (
                "peersearch_revisits_due",
                "Revisits whose time has come, waiting for their host.",
                node.revisits_due,
            ),
            (
                "peersearch_docs_indexed",
                "Committed documents a search can find.",
                node.docs_indexed,
            ),
            (
                "peersearch_index_bytes",
                "Bytes on disk of the index shard.",
                node.index_bytes,
            ),
            (
                "peersearch_frontier_size",
                "URLs waiting to be fetched.",
                node.frontier_size,
            ),
            (
                "peersearch_peers_connected",
                "Connected peers.",
                node.peers_connected as u64,
            ),
            (
                "process_resident_memory_bytes",
                "Resident memory of the peer process in bytes (0 where the system does not tell).",
                node.rss_bytes,
            ),
        ];
        for (name, help, value) in gauges {
            family(&mut out, name, "gauge", help);
            sample(&mut out, name, &[], value);
        }
        for (name, help, map) in [
            (
                "peersearch_p2p_bytes_sent_total",
                "Bytes sent to other peers, by protocol.",
                &node.bytes_sent,
            ),
            (
                "peersearch_p2p_bytes_received_total",
                "Bytes received from other peers, by protocol.",
                &node.bytes_received,
            ),
        ] {
            family(&mut out, name, "counter", help);
            for (protocol, n) in map {
                sample(&mut out, name, &[("protocol", protocol)], *n);
            }
        }

        family(
            &mut out,
            "peersearch_http_requests_total",
            "counter",
            "HTTP requests answered, by route and status.",
        );
        {
            let map = self.requests.lock().unwrap_or_else(|e| e.into_inner());
            for ((route, status), n) in map.iter() {
                let status = status.to_string();
                sample(
                    &mut out,
                    "peersearch_http_requests_total",
                    &[("route", route), ("status", &status)],
                    *n,
                );
            }
        }

        let name = "peersearch_search_duration_seconds";
        family(
            &mut out,
            name,
            "histogram",
            "Time to answer a search, from the web layer's view.",
        );
        let h = self.search.lock().unwrap_or_else(|e| e.into_inner());
        let mut cumulative = 0u64;
        for (i, le) in SEARCH_BUCKETS.iter().enumerate() {
            cumulative += h.counts[i];
            let le = format_float(*le);
            sample(
                &mut out,
                &format!("{name}_bucket"),
                &[("le", &le)],
                cumulative,
            );
        }
        cumulative += h.counts[SEARCH_BUCKETS.len()];
        sample(
            &mut out,
            &format!("{name}_bucket"),
            &[("le", "+Inf")],
            cumulative,
        );
        let _ = writeln!(out, "{name}_sum {}", format_float(h.sum));
        let _ = writeln!(out, "{name}_count {}", h.count);
        out
    }
}

/// `# HELP` and `# TYPE` lines of one metric family.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// One sample line `name{k="v",...} value`.
fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: u64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"{}\"", escape_label_value(v));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// Label values escape backslash, double quote and newline (exposition format 0.0.4).
pub fn escape_label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// HELP text escapes backslash and newline.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A float as Prometheus writes it (`0.005`, `1`, `10`).
fn format_float(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_labels_are_bounded() {
        assert_eq!(route_label("/api/search"), "/api/search");
        assert_eq!(route_label("/"), "/");
        assert_eq!(route_label("/wp-admin/x"), "unmatched");
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = HttpMetrics::default();
        m.record_search(Duration::from_millis(3));
        m.record_search(Duration::from_millis(300));
        m.record_search(Duration::from_secs(60));
        let text = m.render(&MetricsSnapshot::default());
        assert!(text.contains("peersearch_search_duration_seconds_bucket{le=\"0.005\"} 1\n"));
        assert!(text.contains("peersearch_search_duration_seconds_bucket{le=\"0.5\"} 2\n"));
        assert!(text.contains("peersearch_search_duration_seconds_bucket{le=\"10\"} 2\n"));
        assert!(text.contains("peersearch_search_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(text.contains("peersearch_search_duration_seconds_count 3\n"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let m = HttpMetrics::default();
        let mut node = MetricsSnapshot::default();
        node.bytes_sent.insert("/odd\"proto\n".into(), 5);
        let text = m.render(&node);
        assert!(
            text.contains("peersearch_p2p_bytes_sent_total{protocol=\"/odd\\\"proto\\n\"} 5\n")
        );
    }

    #[test]
    fn requests_are_counted_by_route_and_status() {
        let m = HttpMetrics::default();
        m.record_request("/api/search", 200);
        m.record_request("/api/search", 200);
        m.record_request("/api/search", 400);
        let text = m.render(&MetricsSnapshot::default());
        assert!(
            text.contains(
                "peersearch_http_requests_total{route=\"/api/search\",status=\"200\"} 2\n"
            )
        );
        assert!(
            text.contains(
                "peersearch_http_requests_total{route=\"/api/search\",status=\"400\"} 1\n"
            )
        );
    }
}
