//! The command-line client: `peersearch search`, `crawl` and `status` talk to a running peer's
//! JSON API and print for a terminal (or raw JSON with `--json`).
//!
//! Everything printed that came from the peer (titles, URLs, snippets, addresses, its error
//! messages) goes through [`term::sanitize`] first: a crawled page must not be able to send
//! escape sequences to the user's terminal.

use super::term::{self, sanitize};
use peersearch_indexer::Explanation;
use peersearch_web::api::{CrawlResponse, CrawlScope, SearchResponse, StatusResponse};
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::time::Duration;

/// The API a client talks to when no `--node` is given.
pub const DEFAULT_NODE: &str = "http://127.0.0.1:8080";

/// Errors of the client commands (their messages are sanitized where they carry the peer's
/// text, and once more when `main` prints them).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The peer could not be reached.
    #[error("cannot reach the peer at {node}: {message} (is `peersearch start` running?)")]
    Unreachable {
        /// The API base URL.
        node: String,
        /// The transport error.
        message: String,
    },
    /// The peer answered with an error.
    #[error("the peer answered {status}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The error message of the JSON body (or the body).
        message: String,
    },
    /// The answer was not what the API promises.
    #[error("unexpected answer from the peer: {0}")]
    Decode(String),
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_default()
}

async fn check(node: &str, r: reqwest::Result<reqwest::Response>) -> Result<String, ClientError> {
    let r = r.map_err(|e| ClientError::Unreachable {
        node: node.to_string(),
        message: e.to_string(),
    })?;
    let status = r.status();
    let body = r.text().await.map_err(|e| ClientError::Unreachable {
        node: node.to_string(),
        message: e.to_string(),
    })?;
    if !status.is_success() {
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(String::from))
            .unwrap_or(body);
        return Err(ClientError::Api {
            status: status.as_u16(),
            message: sanitize(&message),
        });
    }
    Ok(body)
}

/// `peersearch search`; with `explain`, each hit's score explanation is asked for and
/// printed under it.
pub async fn search(
    node: &str,
    q: &str,
    limit: usize,
    offset: usize,
    local: bool,
    json: bool,
    explain: bool,
) -> Result<(), ClientError> {
    let node = node.trim_end_matches('/');
    let scope = if local { "local" } else { "network" };
    let url = format!("{node}/api/search");
    let r = http()
        .get(&url)
        .query(&[
            ("q", q.to_string()),
            ("limit", limit.to_string()),
            ("offset", offset.to_string()),
            ("scope", scope.to_string()),
            ("explain", if explain { "1" } else { "0" }.to_string()),
        ])
        .send()
        .await;
    let body = check(node, r).await?;
    if json {
        println!("{}", term::sanitize_json(&body));
        return Ok(());
    }
    let resp: SearchResponse =
        serde_json::from_str(&body).map_err(|e| ClientError::Decode(e.to_string()))?;
    print!(
        "{}",
        render_results(&resp, offset, std::io::stdout().is_terminal(), explain)
    );
    Ok(())
}

/// Render results for a terminal: title, URL, snippet with highlights in bold (ANSI) when
/// `color`, else with `*stars*`; with `explain`, each hit's score breakdown under it
/// ([`render_explanation`]).
pub fn render_results(resp: &SearchResponse, offset: usize, color: bool, explain: bool) -> String {
    let (bold, dim, reset) = if color {
        ("\x1b[1m", "\x1b[2m", "\x1b[0m")
    } else {
        ("", "", "")
    };
    let mut out = String::new();
    if resp.hits.is_empty() {
        // `{:?}` escapes control characters itself.
        let _ = writeln!(out, "no results for {:?}", resp.query);
    }
    for (i, h) in resp.hits.iter().enumerate() {
        let title = if h.title.trim().is_empty() {
            h.url.as_str()
        } else {
            h.title.trim()
        };
        let _ = writeln!(
            out,
            "{:>3}. {bold}{}{reset}",
            offset + i + 1,
            one_line(title)
        );
        let _ = writeln!(out, "     {dim}{}{reset}", one_line(&h.url));
        let snippet = snippet_for_terminal(&h.snippet, color);
        if !snippet.is_empty() {
            let _ = writeln!(out, "     {}", snippet);
        }
        if explain {
            match &h.explanation {
                Some(e) => out.push_str(&render_explanation(e)),
                None => {
                    let _ = writeln!(
                        out,
                        "       score {}: no explanation (the peer that answered did not send one)",
                        short(f64::from(h.score))
                    );
                }
            }
        }
        let _ = writeln!(out);
    }
    let partial = if resp.partial {
        " (partial: some peers did not answer in time)"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "{dim}{} results in {} ms from {} of {} peers{partial}{reset}",
        resp.hits.len(),
        resp.took_ms,
        resp.peers.answered,
        resp.peers.queried
    );
    out
}

/// `x` with at most two decimals, at least one: `4.8`, `7.21`, `1.0`.
fn short(x: f64) -> String {
    let s = format!("{x:.2}");
    if s.contains('.') && s.ends_with('0') && !s.ends_with(".0") {
        s[..s.len() - 1].to_string()
    } else {
        s
    }
}

/// A clause as printed: a word in quotes; a phrase already is.
fn quoted(clause: &str) -> String {
    let clause = one_line(clause);
    if clause.starts_with('"') {
        clause
    } else {
        format!("\"{clause}\"")
    }
}

/// A score explanation as indented lines: one per term part and proximity part, then the
/// in-link prior, the relevance curve, the coverage and depth, and the total. Every text in
/// it came from the peer and is sanitized.
pub fn render_explanation(e: &Explanation) -> String {
    const INDENT: &str = "       ";
    let mut out = String::new();
    for t in &e.terms {
        let df: Vec<String> = t
            .words
            .iter()
            .map(|w| {
                if t.words.len() > 1 {
                    format!("{} {}/{}", one_line(&w.word), w.doc_freq, e.num_docs)
                } else {
                    format!("{}/{}", w.doc_freq, e.num_docs)
                }
            })
            .collect();
        let idf: f64 = t.words.iter().map(|w| f64::from(w.idf)).sum();
        let _ = writeln!(
            out,
            "{INDENT}{} {}: tf {}, len {} (avg {}), df {}, idf {}, weight {} -> {}",
            one_line(&t.field),
            quoted(&t.clause),
            t.term_freq,
            t.field_length,
            short(f64::from(t.average_field_length)),
            df.join(", "),
            short(idf),
            short(f64::from(t.weight)),
            short(f64::from(t.value)),
        );
    }
    for p in &e.proximity {
        let _ = writeln!(
            out,
            "{INDENT}near {} {} {} (within {}): {} times, len {} (avg {}), idf {}, weight {} -> {}",
            one_line(&p.field),
            quoted(&p.words[0]),
            quoted(&p.words[1]),
            p.max_distance,
            p.encounters,
            p.field_length,
            short(f64::from(p.average_field_length)),
            short(f64::from(p.idf)),
            short(f64::from(p.weight)),
            short(f64::from(p.value)),
        );
    }
    let _ = writeln!(
        out,
        "{INDENT}prior: {} linking sites, {} pages -> {}",
        e.prior.inlink_sites,
        e.prior.inlink_pages,
        short(e.prior.value)
    );
    let r = &e.relevance;
    let _ = writeln!(
        out,
        "{INDENT}relevance: {} * {} / ({} + {}) -> {}",
        short(r.cap),
        short(r.sum),
        short(r.sum),
        short(r.half),
        short(r.value)
    );
    let _ = writeln!(
        out,
        "{INDENT}coverage: {} of {} clauses * {} -> {}",
        e.coverage.matched,
        e.coverage.clauses,
        short(f64::from(e.coverage.per_clause)),
        short(e.coverage.value)
    );
    let _ = writeln!(
        out,
        "{INDENT}depth {} -> {}",
        e.depth.url_depth,
        short(e.depth.value)
    );
    let constant = if e.constant != 0.0 {
        format!(" + constant {}", short(f64::from(e.constant)))
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "{INDENT}total {} = coverage {} + relevance {} + depth {}{constant} (N = {} documents)",
        short(f64::from(e.score)),
        short(e.coverage.value),
        short(r.value),
        short(e.depth.value),
        e.num_docs,
    );
    out
}

/// Text from the peer on one line, without control characters.
fn one_line(s: &str) -> String {
    sanitize(s).split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Turn an API snippet (HTML-escaped, `<b>` marks) into terminal text: each piece between the
/// marks is decoded and sanitized (an entity such as `&#27;` decodes to a control character),
/// then the marks become bold (or `*stars*`).
fn snippet_for_terminal(snippet: &str, color: bool) -> String {
    let (on, off) = if color {
        ("\x1b[1m", "\x1b[0m")
    } else {
        ("*", "*")
    };
    let mut out = String::with_capacity(snippet.len());
    let mut rest = snippet;
    loop {
        let next = [("<b>", on), ("</b>", off)]
            .into_iter()
            .filter_map(|(mark, term)| rest.find(mark).map(|at| (at, mark, term)))
            .min_by_key(|(at, _, _)| *at);
        let Some((at, mark, term)) = next else {
            out.push_str(&sanitize(&html_escape::decode_html_entities(rest)));
            break;
        };
        out.push_str(&sanitize(&html_escape::decode_html_entities(&rest[..at])));
        out.push_str(term);
        rest = &rest[at + mark.len()..];
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `peersearch crawl`; returns whether every URL was accepted.
pub async fn crawl(
    node: &str,
    urls: &[String],
    scope: Option<CrawlScope>,
) -> Result<bool, ClientError> {
    let node = node.trim_end_matches('/');
    let mut body = serde_json::json!({ "urls": urls });
    if let Some(scope) = scope {
        body["scope"] = serde_json::json!(scope);
    }
    let r = http()
        .post(format!("{node}/api/crawl"))
        .json(&body)
        .send()
        .await;
    let body = check(node, r).await?;
    let resp: CrawlResponse =
        serde_json::from_str(&body).map_err(|e| ClientError::Decode(e.to_string()))?;
    println!("accepted {} url(s)", resp.accepted);
    for r in &resp.rejected {
        println!("rejected {}: {}", one_line(&r.url), one_line(&r.reason));
    }
    Ok(resp.rejected.is_empty())
}

/// `peersearch status`.
pub async fn status(node: &str, json: bool) -> Result<(), ClientError> {
    let node = node.trim_end_matches('/');
    let body = check(node, http().get(format!("{node}/api/status")).send().await).await?;
    if json {
        println!("{}", term::sanitize_json(&body));
        return Ok(());
    }
    let s: StatusResponse =
        serde_json::from_str(&body).map_err(|e| ClientError::Decode(e.to_string()))?;
    print!("{}", render_status(&s));
    Ok(())
}

/// A status summary for a terminal.
pub fn render_status(s: &StatusResponse) -> String {
    let mut out = String::new();
    let crawl = if s.frontier_size == 0 && s.crawl_in_flight == 0 {
        "idle".to_string()
    } else {
        format!(
            "{} queued, {} in flight",
            s.frontier_size, s.crawl_in_flight
        )
    };
    let _ = writeln!(
        out,
        "peer        {} (peersearch {})",
        one_line(&s.peer_id),
        one_line(&s.version)
    );
    let _ = writeln!(out, "web ui      http://{}", one_line(&s.http_addr));
    for a in &s.listen_addrs {
        let _ = writeln!(out, "listening   {}", one_line(a));
    }
    let _ = writeln!(
        out,
        "peers       {} connected, {} in routing table",
        s.peers_connected, s.routing_table_size
    );
    let _ = writeln!(out, "documents   {}", s.docs_indexed);
    let _ = writeln!(
        out,
        "crawl       {crawl}; {} pages crawled, {} failed",
        s.pages_crawled, s.pages_failed
    );
    if s.rss_bytes > 0 {
        let _ = writeln!(
            out,
            "memory      {:.1} MiB resident",
            s.rss_bytes as f64 / 1048576.0
        );
    }
    let _ = writeln!(out, "uptime      {} s", s.uptime_s);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use peersearch_web::api::{ApiHit, PeerCounts};

    #[test]
    fn results_show_title_url_and_bold_highlights() {
        let resp = SearchResponse {
            query: "rust".into(),
            hits: vec![ApiHit {
                url: "http://a.example/".into(),
                title: "The  Rust\nBook".into(),
                snippet: "learn <b>rust</b> &amp; more &lt;x&gt;".into(),
                score: 1.0,
                peer: "p".into(),
                explanation: None,
            }],
            took_ms: 3,
            peers: PeerCounts {
                queried: 2,
                answered: 1,
                failed: 1,
            },
            partial: true,
            total_hits: 1,
            rounds: 0,
        };
        let plain = render_results(&resp, 0, false, false);
        assert!(plain.contains("1. The Rust Book"), "{plain}");
        assert!(plain.contains("http://a.example/"));
        assert!(plain.contains("learn *rust* & more <x>"), "{plain}");
        assert!(plain.contains("partial"));
        let color = render_results(&resp, 0, true, false);
        assert!(color.contains("\x1b[1mrust\x1b[0m"), "{color}");
    }

    fn hostile_response() -> SearchResponse {
        SearchResponse {
            query: "pwned".into(),
            hits: vec![ApiHit {
                url: "http://evil.example/\x1b[2J".into(),
                title: "Title\x1b]0;pwned\x07 and \x1b[2J\u{9b}2J".into(),
                snippet: "<b>pwned</b> &#27;[31mred&#x1b;]0;x&#7; \x1b[2J".into(),
                score: 1.0,
                peer: "p".into(),
                explanation: None,
            }],
            took_ms: 1,
            peers: PeerCounts {
                queried: 1,
                answered: 1,
                failed: 0,
            },
            partial: false,
            total_hits: 1,
            rounds: 0,
        }
    }

    #[test]
    fn crawled_text_cannot_send_escape_sequences_to_the_terminal() {
        let resp = hostile_response();
        let plain = render_results(&resp, 0, false, false);
        for bad in ['\x1b', '\x07', '\u{9b}'] {
            assert!(!plain.contains(bad), "{bad:?} in {plain:?}");
        }
        assert!(
            plain.contains("Title\u{fffd}]0;pwned\u{fffd} and"),
            "{plain:?}"
        );
        assert!(plain.contains("*pwned*"), "{plain:?}");
        // With colour the only escape sequences are the CLI's own bold and dim.
        let color = render_results(&resp, 0, true, false);
        let stripped = color
            .replace("\x1b[1m", "")
            .replace("\x1b[2m", "")
            .replace("\x1b[0m", "");
        assert!(
            !stripped.contains('\x1b') && !stripped.contains('\x07'),
            "{color:?}"
        );
        assert!(color.contains("\x1b[1mpwned\x1b[0m"), "{color:?}");
    }

    fn explanation(clause: &str, field: &str, word: &str) -> Explanation {
        use peersearch_indexer::{
            Bm25Params, Coverage, Depth, Prior, ProximityPart, Relevance, TermPart, WordStat,
        };
        Explanation {
            score: 229.47,
            num_docs: 5692,
            bm25: Bm25Params { k1: 1.2, b: 0.75 },
            coverage: Coverage {
                clauses: 2,
                matched: 2,
                per_clause: 100.0,
                value: 200.0,
            },
            terms: vec![TermPart {
                clause: clause.into(),
                field: field.into(),
                weight: 1.0,
                term_freq: 3,
                field_length: 120,
                average_field_length: 88.1,
                words: vec![WordStat {
                    word: word.into(),
                    doc_freq: 45,
                    idf: 4.8,
                }],
                value: 7.21,
            }],
            proximity: vec![ProximityPart {
                field: field.into(),
                words: [word.into(), "async".into()],
                max_distance: 3,
                weight: 0.5,
                encounters: 2,
                field_length: 120,
                average_field_length: 88.1,
                idf: 9.6,
                value: 1.25,
            }],
            prior: Prior {
                inlink_sites: 7,
                inlink_pages: 90,
                per_doubling_sites: 0.4,
                per_doubling_pages: 0.1,
                value: 1.8,
            },
            relevance: Relevance {
                sum: 10.26,
                cap: 85.0,
                half: 50.0,
                value: 14.47,
            },
            depth: Depth {
                url_depth: 1,
                value: 10.0,
            },
            constant: 0.0,
        }
    }

    #[test]
    fn explain_prints_each_part_and_the_total_under_its_result() {
        let mut resp = hostile_response();
        resp.hits[0].explanation = Some(explanation("cache", "body", "cache"));
        let out = render_results(&resp, 0, false, true);
        for line in [
            "body \"cache\": tf 3, len 120 (avg 88.1), df 45/5692, idf 4.8, weight 1.0 -> 7.21",
            "near body \"cache\" \"async\" (within 3): 2 times, len 120 (avg 88.1), idf 9.6, weight 0.5 -> 1.25",
            "prior: 7 linking sites, 90 pages -> 1.8",
            "relevance: 85.0 * 10.26 / (10.26 + 50.0) -> 14.47",
            "coverage: 2 of 2 clauses * 100.0 -> 200.0",
            "depth 1 -> 10.0",
            "total 229.47 = coverage 200.0 + relevance 14.47 + depth 10.0 (N = 5692 documents)",
        ] {
            assert!(out.contains(&format!("       {line}\n")), "{line}\n{out}");
        }
        // Without --explain nothing of it; with it, a hit without one says so.
        assert!(!render_results(&resp, 0, false, false).contains("tf 3"));
        resp.hits[0].explanation = None;
        let out = render_results(&resp, 0, false, true);
        assert!(out.contains("score 1.0: no explanation"), "{out}");
    }

    #[test]
    fn a_phrase_prints_its_words_statistics() {
        let mut e = explanation("\"red appl\"", "title", "red");
        e.terms[0].words.push(peersearch_indexer::WordStat {
            word: "appl".into(),
            doc_freq: 30,
            idf: 5.0,
        });
        let out = render_explanation(&e);
        assert!(
            out.contains("title \"red appl\": tf 3, len 120 (avg 88.1), df red 45/5692, appl 30/5692, idf 9.8,"),
            "{out}"
        );
    }

    #[test]
    fn hostile_text_in_an_explanation_cannot_reach_the_terminal() {
        let mut resp = hostile_response();
        resp.hits[0].explanation = Some(explanation(
            "x\x1b]0;pwned\x07",
            "body\x1b[2J\nfake line",
            "w\u{9b}2J",
        ));
        for color in [false, true] {
            let out = render_results(&resp, 0, color, true);
            let stripped = out
                .replace("\x1b[1m", "")
                .replace("\x1b[2m", "")
                .replace("\x1b[0m", "");
            for bad in ['\x1b', '\x07', '\u{9b}'] {
                assert!(!stripped.contains(bad), "{bad:?} in {out:?}");
            }
            assert!(
                out.contains("body\u{fffd}[2J fake line \"x\u{fffd}]0;pwned\u{fffd}\": tf 3"),
                "{out:?}"
            );
            assert!(
                !out.contains("\nfake line"),
                "no line of the peer's own: {out:?}"
            );
        }
    }

    #[test]
    fn status_from_a_hostile_peer_prints_without_escape_sequences() {
        let s = StatusResponse {
            peer_id: "12D3\x1b]0;pwned\x07".into(),
            version: "0.1\x1b[2J".into(),
            http_addr: "127.0.0.1:1\u{9b}2J".into(),
            listen_addrs: vec!["/ip4/1.2.3.4\x1b[2J".into()],
            peers_connected: 0,
            routing_table_size: 0,
            docs_indexed: 0,
            frontier_size: 0,
            crawl_in_flight: 0,
            pages_crawled: 0,
            pages_failed: 0,
            uptime_s: 0,
            ..StatusResponse::default()
        };
        let out = render_status(&s);
        for bad in ['\x1b', '\x07', '\u{9b}'] {
            assert!(!out.contains(bad), "{bad:?} in {out:?}");
        }
        assert!(out.contains("12D3\u{fffd}]0;pwned\u{fffd}"), "{out:?}");
    }
}
