//! What the benchmarks share: the Rust-docs corpus, latency percentiles, a keep-alive HTTP
//! client, Prometheus counters and a plain-text table printer.
//!
//! Every bench is a `harness = false` binary that prints its own table. The machine they were
//! written for has 2 cores shared with other work, so every bench reports figures measured
//! side by side in the same run (ratios), never a single absolute number to compare with
//! another machine.

#![allow(dead_code)] // each bench uses a different part of this module

use peersearch_indexer::Document;
use peersearch_tests::harness::PeerProcess;
use peersearch_tests::need;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The site every Rust-docs document is filed under (their real home).
pub const DOCS_SITE: &str = "doc.rust-lang.org";

/// Directories of the rustup HTML docs taken, in this order, until the corpus is full: the
/// books first (prose), then the API docs of std and its siblings, then core (the only tree
/// big enough to fill 20 000 documents once redirect stubs are skipped).
const CORPUS_DIRS: &[&str] = &[
    "book",
    "reference",
    "nomicon",
    "rust-by-example",
    "cargo",
    "rustc",
    "edition-guide",
    "embedded-book",
    "unstable-book",
    "style-guide",
    "rustdoc",
    "error_codes",
    "std",
    "alloc",
    "proc_macro",
    "test",
    "core",
];

/// rustdoc writes a ~400-byte "Redirection" stub for every re-exported item; no real page is
/// this small, so files under this size are skipped without reading them.
const MIN_PAGE_BYTES: u64 = 1_500;

/// mdBook pages that are not chapters: the whole book on one page, the table of contents,
/// the not-found page.
const SKIPPED_FILES: &[&str] = &["print.html", "toc.html", "404.html"];

/// HTML files of `dir`, sorted, recursively.
fn html_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            html_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "html")
            && !p
                .file_name()
                .is_some_and(|n| SKIPPED_FILES.iter().any(|s| n == *s))
            && p.metadata().is_ok_and(|m| m.len() >= MIN_PAGE_BYTES)
        {
            out.push(p);
        }
    }
}

/// Extract one file into a [`Document`] as the crawler would (None for redirects and pages
/// the extractor refuses).
fn to_document(root: &Path, path: &Path) -> Option<Document> {
    let body = std::fs::read(path).ok()?;
    let rel = path
        .strip_prefix(root)
        .ok()?
        .to_string_lossy()
        .replace('\\', "/");
    let url = url::Url::parse(&format!("https://{DOCS_SITE}/{rel}")).ok()?;
    let page = peersearch_crawler::extract(&body, Some("text/html; charset=utf-8"), &url).ok()?;
    if page.title == "Redirection" || page.text.trim().is_empty() {
        return None;
    }
    Some(Document {
        url: url.to_string(),
        site: DOCS_SITE.to_string(),
        title: page.title,
        description: page.description.unwrap_or_default(),
        body: page.text,
        chrome: page.chrome,
        headings: page.headings.join("\n"),
        lang: page.lang.unwrap_or_default(),
        fetched_at: 1_700_000_000,
        content_hash: page.content_hash,
        ..Document::default()
    })
}

/// The first `n` documents of the Rust docs (books, then std & co, then core), extracted
/// with `peersearch_crawler::extract` on 2 threads. Deterministic for a given toolchain.
/// Panics when the rust-docs component is not installed, unless `PEERSEARCH_SKIP_RUST_DOCS=1`:
/// then the bench says it is skipped on purpose and exits 0 (it has nothing to measure).
pub fn rust_docs_corpus(n: usize) -> anyhow::Result<Vec<Document>> {
    let Some(root) = need::rust_docs("the benchmark corpus") else {
        std::process::exit(0);
    };
    let started = Instant::now();
    let mut files = Vec::new();
    for d in CORPUS_DIRS {
        html_files(&root.join(d), &mut files);
        // A few percent are redirects or empty pages: keep some slack.
        if files.len() >= n + n / 10 {
            break;
        }
    }
    files.truncate(n + n / 10);
    let half = files.len() / 2;
    let (a, b) = files.split_at(half);
    let (mut docs, tail) = std::thread::scope(|s| {
        let ha = s.spawn(|| {
            a.iter()
                .filter_map(|p| to_document(&root, p))
                .collect::<Vec<_>>()
        });
        let tail: Vec<Document> = b.iter().filter_map(|p| to_document(&root, p)).collect();
        (ha.join().unwrap_or_default(), tail)
    });
    docs.extend(tail);
    anyhow::ensure!(
        docs.len() >= n,
        "only {} usable pages in the rust docs (wanted {n})",
        docs.len()
    );
    docs.truncate(n);
    let bytes: usize = docs.iter().map(|d| d.body.len() + d.title.len()).sum();
    eprintln!(
        "corpus: {} documents ({:.1} MiB of extracted text) from {} in {:.1?}",
        docs.len(),
        bytes as f64 / (1 << 20) as f64,
        root.display(),
        started.elapsed()
    );
    Ok(docs)
}

/// The words of `s` a query can be made of (alphanumeric runs of 2+ characters).
pub fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 2)
        .map(str::to_lowercase)
        .collect()
}

/// Search terms common in the Rust docs, for queries that match many documents.
pub const COMMON_TERMS: &[&str] = &[
    "iterator",
    "trait",
    "lifetime",
    "borrow",
    "async",
    "closure",
    "vector",
    "string",
    "slice",
    "error",
    "thread",
    "mutex",
    "unsafe",
    "macro",
    "pattern",
    "ownership",
    "generic",
    "hash",
    "map",
    "file",
    "channel",
    "box",
    "pointer",
    "reference",
    "struct",
    "enum",
    "impl",
    "match",
    "option",
    "result",
    "panic",
    "memory",
    "atomic",
    "cargo",
    "module",
    "crate",
    "type",
    "function",
    "method",
    "array",
    "integer",
    "float",
    "compile",
    "test",
    "unwrap",
];

/// Deterministic queries from the corpus: page titles (their first 1 to 3 words), common
/// terms alone and in pairs, and title words mixed with a common term.
pub fn corpus_queries(docs: &[Document], n: usize, seed: u64) -> Vec<String> {
    let mut rng = peersearch_tests::fixture::Rng::new(seed);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let term = COMMON_TERMS[rng.below(COMMON_TERMS.len())];
        let q = match out.len() % 4 {
            0 | 1 => {
                let doc = &docs[rng.below(docs.len())];
                let w = words(&doc.title);
                let take = 1 + rng.below(3);
                w.into_iter().take(take).collect::<Vec<_>>().join(" ")
            }
            2 => {
                let other = COMMON_TERMS[rng.below(COMMON_TERMS.len())];
                if rng.below(2) == 0 {
                    term.to_string()
                } else {
                    format!("{term} {other}")
                }
            }
            _ => {
                let doc = &docs[rng.below(docs.len())];
                match words(&doc.title).into_iter().next() {
                    Some(w) => format!("{w} {term}"),
                    None => term.to_string(),
                }
            }
        };
        if !q.trim().is_empty() {
            out.push(q);
        }
    }
    out
}

/// Latency summary of one series.
#[derive(Debug, Clone, Copy)]
pub struct Latency {
    /// Median.
    pub p50: Duration,
    /// 99th percentile (nearest rank).
    pub p99: Duration,
    /// Mean.
    pub mean: Duration,
    /// Number of samples.
    pub n: usize,
}

impl Latency {
    /// Summarize `samples` (must not be empty).
    pub fn of(samples: &[Duration]) -> Latency {
        let mut s = samples.to_vec();
        s.sort();
        let rank = |p: f64| {
            let i = ((p * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1;
            s[i]
        };
        Latency {
            p50: rank(0.50),
            p99: rank(0.99),
            mean: s.iter().sum::<Duration>() / s.len().max(1) as u32,
            n: s.len(),
        }
    }
}

/// Milliseconds with 2 decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

/// Print a table in Markdown (so it can be pasted into docs/benchmarks.md).
pub fn print_table(title: &str, header: &[&str], rows: &[Vec<String>]) {
    println!("\n### {title}\n");
    println!("| {} |", header.join(" | "));
    println!(
        "|{}|",
        header.iter().map(|_| " --- ").collect::<Vec<_>>().join("|")
    );
    for r in rows {
        println!("| {} |", r.join(" | "));
    }
    println!();
}

/// A keep-alive HTTP client for measured requests (the harness makes a fresh client per call,
/// which would time a TCP handshake on every query).
pub fn keep_alive_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(4)
        .build()
        .expect("http client")
}

/// `GET {base}/api/search?q=..{extra}` with `client`: elapsed time and the JSON answer.
pub async fn timed_search(
    client: &reqwest::Client,
    base: &str,
    q: &str,
    extra: &str,
) -> anyhow::Result<(Duration, serde_json::Value)> {
    let enc = url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>();
    let url = format!("{base}/api/search?q={enc}{extra}");
    let t = Instant::now();
    let r = client.get(&url).send().await?;
    let status = r.status();
    let body = r.bytes().await?;
    let took = t.elapsed();
    anyhow::ensure!(
        status.is_success(),
        "{url}: {status} {}",
        String::from_utf8_lossy(&body)
    );
    Ok((took, serde_json::from_slice(&body)?))
}

/// Sum of the Prometheus counter `name{protocol="..."}` per protocol, read from `/metrics`.
pub async fn p2p_counters(
    peer: &PeerProcess,
    name: &str,
) -> anyhow::Result<std::collections::BTreeMap<String, u64>> {
    let (status, text) =
        peersearch_tests::harness::http_get(&format!("{}/metrics", peer.base)).await?;
    anyhow::ensure!(status == 200, "/metrics answered {status}");
    let mut out = std::collections::BTreeMap::new();
    let prefix = format!("{name}{{protocol=\"");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(&prefix)
            && let Some((proto, value)) = rest.split_once("\"} ")
            && let Ok(v) = value.trim().parse::<u64>()
        {
            *out.entry(proto.to_string()).or_default() += v;
        }
    }
    Ok(out)
}

/// A counter without labels (or with the given label set verbatim), from `/metrics`.
pub async fn metric_value(peer: &PeerProcess, series: &str) -> anyhow::Result<u64> {
    let (status, text) =
        peersearch_tests::harness::http_get(&format!("{}/metrics", peer.base)).await?;
    anyhow::ensure!(status == 200, "/metrics answered {status}");
    Ok(text
        .lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0))
}

/// Fail early, with the command to run, when the release binary is missing.
pub fn require_peer_binary() -> anyhow::Result<()> {
    let bin = peersearch_tests::harness::binary();
    anyhow::ensure!(
        bin.exists(),
        "{} not found: run the bench with `cargo bench -p peersearch-node` (or set PEERSEARCH_BIN)",
        bin.display()
    );
    eprintln!("peer binary: {}", bin.display());
    Ok(())
}

/// The flags as owned strings.
pub fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// Run a bench's async body on a 2-thread runtime (the machine has 2 cores).
pub fn run_on_runtime(
    body: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(body)
}

/// `s` without ANSI colour sequences (the peer's log colours field names even in a file).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ parameters final-byte
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
