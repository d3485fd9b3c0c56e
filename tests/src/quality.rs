//! Search-quality evaluation on the Rust documentation rustup installs: known-item query sets
//! built from the pages themselves, MRR@10 and success@1, and two bare-tantivy baselines over
//! the same pages with the same queries.
//!
//! **The corpus.** One site per directory of `$(rustc --print sysroot)/share/doc/rust/html`
//! (a book or a crate's API docs), each on its own loopback port under its own path
//! (`http://127.0.0.1:PORT/cargo/...`, as on doc.rust-lang.org, so that rustdoc's links to
//! `../../std/index.html` resolve). A page is every HTML file that a reader would land on: not
//! rustdoc's ~400-byte redirect stubs, not `noindex` pages (mdBook's `print.html`, the Book's
//! old-edition stubs), not `toc.html` / `404.html`, nothing the docs' `robots.txt` disallows.
//! [`corpus_router`] answers 404 for every HTML page outside the site's directory or left out
//! by sampling, and the evaluation seeds every corpus page, so the peer and the baselines
//! index the same pages (the peer may add the redirect stubs and `noindex` pages that the
//! site serves and a careful crawler skips) and the figures measure ranking, not reachability.
//!
//! **The query sets** (fixed seed, built the same way on any site, so nothing is tuned to these
//! pages):
//! - *titles*: the page's `<title>` without the site's suffix (`" - The Cargo Book"`,
//!   `" - Rust"`), only titles that name one page of the corpus;
//! - *remembered words*: 4 consecutive content words (English stop words dropped, words of one
//!   character dropped) from one paragraph of the page's main content (`<p>` inside `<main>`)
//!   that has at least 8 of them and is found on no other page (boilerplate such as the Book's
//!   "this edition is no longer distributed" stubs names no one page), as a person recalls a
//!   page they read;
//! - *navigational*: each site by its name ("The Cargo Book", "Rust by Example"); the target
//!   is the site's front page.
//!
//! A query's reciprocal rank is `1/rank` of its target in the first 10 hits (0 when absent);
//! MRR@10 is their mean, success@1 the share of queries whose first hit is the target.

use crate::fixture::{Rng, Server, static_dir_router};
use crate::harness::{PeerOptions, PeerProcess};
use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::IntoResponse;
use scraper::{ElementRef, Html, Node, Selector};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One site of the corpus: a directory of the Rust docs, served as its own site.
#[derive(Debug, Clone, Copy)]
pub struct SiteSpec {
    /// The directory under the docs root (`cargo`, `std`).
    pub dir: &'static str,
    /// The name a person types to find the site: its navigational query.
    pub name: &'static str,
    /// Keep every `sample`-th page only (1 keeps all; the front page is always kept), for
    /// sites too big for a quick run.
    pub sample: usize,
}

const fn site(dir: &'static str, name: &'static str) -> SiteSpec {
    SiteSpec {
        dir,
        name,
        sample: 1,
    }
}

/// Every book and the API docs of std and its siblings, whole. `core` (41 000 pages, mostly
/// the same items as std) is left out.
pub const ALL_SITES: &[SiteSpec] = &[
    site("book", "The Rust Programming Language"),
    site("cargo", "The Cargo Book"),
    site("reference", "The Rust Reference"),
    site("rust-by-example", "Rust by Example"),
    site("nomicon", "The Rustonomicon"),
    site("edition-guide", "The Rust Edition Guide"),
    site("rustc", "The rustc book"),
    site("rustdoc", "The rustdoc book"),
    site("embedded-book", "The Embedded Rust Book"),
    site("style-guide", "The Rust Style Guide"),
    site("unstable-book", "The Unstable Book"),
    site("clippy", "Clippy Documentation"),
    site("error_codes", "Rust error codes index"),
    site("std", "The Rust Standard Library"),
    site("alloc", "The Rust core allocation and collections library"),
    site("proc_macro", "proc_macro crate"),
    site("test", "test crate"),
];

/// rustdoc writes a ~400-byte "Redirection" stub for every re-exported item; no real page is
/// this small (the benches' corpus uses the same bound).
const MIN_PAGE_BYTES: u64 = 1_500;

/// mdBook files that are not chapters: the whole book on one page, the table of contents, the
/// not-found page.
const SKIPPED_FILES: &[&str] = &["print.html", "toc.html", "404.html"];

/// Content words a paragraph needs to give a remembered-words query.
pub const MIN_PARAGRAPH_WORDS: usize = 8;
/// Words in a remembered-words query.
pub const REMEMBERED_WORDS: usize = 4;
/// Hits looked at: MRR@10.
pub const CUTOFF: usize = 10;

/// English stop words dropped from remembered-words queries (the classic NLTK list, with the
/// fragments that splitting contractions leaves: "don" of "don't").
#[rustfmt::skip]
pub const STOP_WORDS: &[&str] = &[
    "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are",
    "aren", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both",
    "but", "by", "can", "couldn", "did", "didn", "do", "does", "doesn", "doing", "don", "down",
    "during", "each", "few", "for", "from", "further", "had", "hadn", "has", "hasn", "have",
    "haven", "having", "he", "her", "here", "hers", "herself", "him", "himself", "his", "how",
    "i", "if", "in", "into", "is", "isn", "it", "its", "itself", "just", "ll", "me", "mightn",
    "more", "most", "mustn", "my", "myself", "needn", "no", "nor", "not", "now", "of", "off",
    "on", "once", "only", "or", "other", "our", "ours", "ourselves", "out", "over", "own", "re",
    "same", "shan", "she", "should", "shouldn", "so", "some", "such", "than", "that", "the",
    "their", "theirs", "them", "themselves", "then", "there", "these", "they", "this", "those",
    "through", "to", "too", "under", "until", "up", "ve", "very", "was", "wasn", "we", "were",
    "weren", "what", "when", "where", "which", "while", "who", "whom", "why", "will", "with",
    "won", "would", "wouldn", "you", "your", "yours", "yourself", "yourselves",
];

/// One page of the corpus, as read from its HTML file.
#[derive(Debug, Clone)]
pub struct Page {
    /// Path relative to the site root (`guide/index.html`).
    pub rel: String,
    /// The `<title>`, whitespace collapsed.
    pub title: String,
    /// The title without the site's suffix: the title query.
    pub short_title: String,
    /// The text of each `<p>` of the main content (`<main>`, else rustdoc's or mdBook's
    /// content element), whitespace collapsed.
    pub paragraphs: Vec<String>,
    /// All visible text of `<body>` (no script, style, noscript, template): what a simple
    /// indexer indexes, the body field of the baselines.
    pub body: String,
}

/// The pages of one site.
#[derive(Debug, Clone)]
pub struct SiteCorpus {
    /// What it is.
    pub spec: SiteSpec,
    /// The docs directory: the site's server serves it, so that a page's links to
    /// `../../std/index.html` resolve as on doc.rust-lang.org.
    pub docs: PathBuf,
    /// Its directory (`<docs>/<spec.dir>`).
    pub root: PathBuf,
    /// The suffix stripped from its titles (`" - The Cargo Book"`), if any.
    pub title_suffix: Option<String>,
    /// Its pages, sorted by path.
    pub pages: Vec<Page>,
    /// Index of the front page (`index.html`) in `pages`.
    pub front: Option<usize>,
    /// Pages left out by sampling (their server answers 404).
    pub left_out: Vec<String>,
}

/// A page of the corpus: site and page index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PageRef {
    /// Index in [`Corpus::sites`].
    pub site: usize,
    /// Index in that site's pages.
    pub page: usize,
}

/// The whole corpus.
#[derive(Debug, Clone)]
pub struct Corpus {
    /// Its sites, in the order given.
    pub sites: Vec<SiteCorpus>,
}

/// A known-item query: the query and the one page it must find.
#[derive(Debug, Clone)]
pub struct KnownItem {
    /// What is typed.
    pub query: String,
    /// The page looked for.
    pub target: PageRef,
}

/// A named query set.
#[derive(Debug, Clone)]
pub struct QuerySet {
    /// `titles`, `remembered words`, `navigational`.
    pub name: &'static str,
    /// Its queries.
    pub queries: Vec<KnownItem>,
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).expect("a valid selector")
}

/// Visible text under `el`, skipping elements that are never shown.
fn visible_text(el: ElementRef<'_>, out: &mut String) {
    for child in el.children() {
        match child.value() {
            Node::Text(t) => {
                out.push_str(t);
            }
            Node::Element(e) => {
                if matches!(e.name(), "script" | "style" | "noscript" | "template") {
                    continue;
                }
                if let Some(c) = ElementRef::wrap(child) {
                    // Block boundaries separate words even where the HTML has no whitespace.
                    out.push(' ');
                    visible_text(c, out);
                    out.push(' ');
                }
            }
            _ => {}
        }
    }
}

/// What one HTML file gives: (title, paragraphs, body), or None when it is no page a reader
/// lands on (noindex, a redirect).
fn read_page(html: &str) -> Option<(String, Vec<String>, String)> {
    let doc = Html::parse_document(html);
    let robots = sel(r#"meta[name="robots"]"#);
    if doc.select(&robots).any(|m| {
        m.value()
            .attr("content")
            .is_some_and(|c| c.to_ascii_lowercase().contains("noindex"))
    }) {
        return None;
    }
    let refresh = sel(r#"meta[http-equiv="refresh"]"#);
    if doc.select(&refresh).next().is_some() {
        return None;
    }
    let title = doc
        .select(&sel("title"))
        .next()
        .map(|t| collapse(&t.text().collect::<String>()))?;
    if title.is_empty() || title == "Redirection" {
        return None;
    }
    let main = ["main", "#main-content", "#content", ".content"]
        .iter()
        .find_map(|s| doc.select(&sel(s)).next());
    let paragraphs = main
        .map(|m| {
            m.select(&sel("p"))
                .map(|p| collapse(&p.text().collect::<String>()))
                .filter(|p| !p.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let mut body = String::new();
    if let Some(b) = doc.select(&sel("body")).next() {
        visible_text(b, &mut body);
    }
    Some((title, paragraphs, collapse(&body)))
}

/// HTML files of `dir`, sorted, recursively, as paths relative to `root`.
fn html_files(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            html_files(root, &p, out);
        } else if p.extension().is_some_and(|x| x == "html")
            && !p
                .file_name()
                .is_some_and(|n| SKIPPED_FILES.iter().any(|s| n == *s))
            && p.metadata().is_ok_and(|m| m.len() >= MIN_PAGE_BYTES)
            && let Ok(rel) = p.strip_prefix(root)
        {
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

/// The `Disallow:` prefixes of `<docs>/robots.txt` (one `User-agent: *` group there).
fn disallowed_prefixes(docs: &Path) -> Vec<String> {
    std::fs::read_to_string(docs.join("robots.txt"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Disallow:"))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

/// The suffix most of a site's titles share after their last `" - "` (`" - The Cargo Book"`,
/// `" - Rust"`), if at least half of them do.
fn common_suffix(titles: &[&str]) -> Option<String> {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for t in titles {
        if let Some((_, tail)) = t.rsplit_once(" - ") {
            *count.entry(tail).or_default() += 1;
        }
    }
    let (tail, n) = count
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))?;
    (n * 2 >= titles.len()).then(|| format!(" - {tail}"))
}

impl SiteCorpus {
    /// Read the pages of `spec.dir` under `docs` (parsing on `threads` threads).
    pub fn load(docs: &Path, spec: SiteSpec, threads: usize) -> anyhow::Result<SiteCorpus> {
        let root = docs.join(spec.dir);
        anyhow::ensure!(
            root.join("index.html").exists(),
            "{} has no index.html",
            root.display()
        );
        let mut files = Vec::new();
        html_files(&root, &root, &mut files);
        // The docs' robots.txt (served at the root of every site's server) keeps crawlers out
        // of the Book's old editions: those are no pages of the corpus either.
        let disallowed = disallowed_prefixes(docs);
        files.retain(|rel| {
            let path = format!("/{}/{rel}", spec.dir);
            !disallowed.iter().any(|d| path.starts_with(d.as_str()))
        });
        let sample = spec.sample.max(1);
        let mut left_out = Vec::new();
        let mut kept = Vec::new();
        for (i, rel) in files.into_iter().enumerate() {
            if i % sample == 0 || rel == "index.html" {
                kept.push(rel);
            } else {
                left_out.push(rel);
            }
        }
        let files = kept;
        let threads = threads.max(1);
        let chunk = files.len().div_ceil(threads).max(1);
        let read: Vec<Option<Page>> = std::thread::scope(|s| {
            let handles: Vec<_> = files
                .chunks(chunk)
                .map(|part| {
                    let root = &root;
                    s.spawn(move || {
                        part.iter()
                            .map(|rel| {
                                let html = std::fs::read_to_string(root.join(rel)).ok()?;
                                let (title, paragraphs, body) = read_page(&html)?;
                                Some(Page {
                                    rel: rel.clone(),
                                    short_title: title.clone(),
                                    title,
                                    paragraphs,
                                    body,
                                })
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        });
        let mut pages: Vec<Page> = read.into_iter().flatten().collect();
        let titles: Vec<&str> = pages.iter().map(|p| p.title.as_str()).collect();
        let title_suffix = common_suffix(&titles);
        if let Some(suffix) = &title_suffix {
            for p in &mut pages {
                if let Some(short) = p.title.strip_suffix(suffix.as_str()) {
                    p.short_title = short.trim().to_string();
                }
            }
        }
        let front = pages.iter().position(|p| p.rel == "index.html");
        Ok(SiteCorpus {
            spec,
            docs: docs.to_path_buf(),
            root,
            title_suffix,
            pages,
            front,
            left_out,
        })
    }
}

impl Corpus {
    /// Read every site of `specs` under `docs` (the rust-docs directory).
    pub fn load(docs: &Path, specs: &[SiteSpec]) -> anyhow::Result<Corpus> {
        let sites = specs
            .iter()
            .map(|s| SiteCorpus::load(docs, *s, 2))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Corpus { sites })
    }

    /// Number of pages.
    pub fn len(&self) -> usize {
        self.sites.iter().map(|s| s.pages.len()).sum()
    }

    /// Whether there is no page.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The page `r`.
    pub fn page(&self, r: PageRef) -> &Page {
        &self.sites[r.site].pages[r.page]
    }

    /// Every page.
    pub fn refs(&self) -> impl Iterator<Item = PageRef> + '_ {
        self.sites
            .iter()
            .enumerate()
            .flat_map(|(site, s)| (0..s.pages.len()).map(move |page| PageRef { site, page }))
    }

    /// Title queries: the short title of pages whose short title names no other page of the
    /// corpus (compared as lowercased words: `read_lines` and "read lines" are one title); at
    /// most `n`, drawn with `seed` (all of them when fewer).
    pub fn title_queries(&self, n: usize, seed: u64) -> QuerySet {
        let mut count: HashMap<String, usize> = HashMap::new();
        for r in self.refs() {
            *count
                .entry(title_key(&self.page(r).short_title))
                .or_default() += 1;
        }
        let mut eligible: Vec<PageRef> = self
            .refs()
            .filter(|r| {
                let key = title_key(&self.page(*r).short_title);
                !key.is_empty() && count[&key] == 1
            })
            .collect();
        let mut rng = Rng::new(seed);
        shuffle(&mut eligible, &mut rng);
        eligible.truncate(n);
        eligible.sort_by_key(|r| (r.site, r.page));
        QuerySet {
            name: "titles",
            queries: eligible
                .into_iter()
                .map(|r| KnownItem {
                    query: self.page(r).short_title.clone(),
                    target: r,
                })
                .collect(),
        }
    }

    /// Remembered-words queries: `n` distinct pages drawn with `seed` among those with a
    /// paragraph of at least [`MIN_PARAGRAPH_WORDS`] content words that no other page has;
    /// from each, one such paragraph and [`REMEMBERED_WORDS`] consecutive content words of it.
    pub fn remembered_words_queries(&self, n: usize, seed: u64) -> QuerySet {
        // A paragraph found on several pages (a "this page has moved" stub, a licence notice)
        // is boilerplate: it names no one page, so no query is made from it.
        let mut pages_with: HashMap<&str, usize> = HashMap::new();
        for r in self.refs() {
            let distinct: HashSet<&str> =
                self.page(r).paragraphs.iter().map(String::as_str).collect();
            for p in distinct {
                *pages_with.entry(p).or_default() += 1;
            }
        }
        let mut eligible: Vec<(PageRef, Vec<Vec<String>>)> = self
            .refs()
            .filter_map(|r| {
                let paras: Vec<Vec<String>> = self
                    .page(r)
                    .paragraphs
                    .iter()
                    .filter(|p| pages_with[p.as_str()] == 1)
                    .map(|p| content_words(p))
                    .filter(|w| w.len() >= MIN_PARAGRAPH_WORDS)
                    .collect();
                (!paras.is_empty()).then_some((r, paras))
            })
            .collect();
        let mut rng = Rng::new(seed);
        shuffle(&mut eligible, &mut rng);
        eligible.truncate(n);
        let mut queries: Vec<KnownItem> = eligible
            .into_iter()
            .map(|(r, paras)| {
                let words = &paras[rng.below(paras.len())];
                let start = rng.below(words.len() - REMEMBERED_WORDS + 1);
                KnownItem {
                    query: words[start..start + REMEMBERED_WORDS].join(" "),
                    target: r,
                }
            })
            .collect();
        queries.sort_by_key(|q| (q.target.site, q.target.page));
        QuerySet {
            name: "remembered words",
            queries,
        }
    }

    /// Navigational queries: each site's name, looking for its front page.
    pub fn navigational_queries(&self) -> QuerySet {
        QuerySet {
            name: "navigational",
            queries: self
                .sites
                .iter()
                .enumerate()
                .filter_map(|(site, s)| {
                    Some(KnownItem {
                        query: s.spec.name.to_string(),
                        target: PageRef {
                            site,
                            page: s.front?,
                        },
                    })
                })
                .collect(),
        }
    }
}

/// A title as compared for uniqueness: its lowercased runs of letters and digits.
fn title_key(title: &str) -> String {
    title
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Fisher–Yates with the fixture's deterministic generator.
fn shuffle<T>(v: &mut [T], rng: &mut Rng) {
    for i in (1..v.len()).rev() {
        let j = rng.below(i + 1);
        v.swap(i, j);
    }
}

/// The content words of `text`, in order: lowercased runs of letters, digits and `_` of at
/// least two characters, without [`STOP_WORDS`].
pub fn content_words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .map(|w| w.trim_matches('_').to_lowercase())
        .filter(|w| w.chars().count() >= 2 && !STOP_WORDS.contains(&w.as_str()))
        .collect()
}

/// A URL as compared: no fragment, and `dir/` the same as `dir/index.html`.
pub fn normalize_url(u: &str) -> String {
    let u = u.split('#').next().unwrap_or(u);
    u.strip_suffix("index.html").unwrap_or(u).to_string()
}

/// The sites of a corpus served on loopback, one port each.
#[derive(Debug)]
pub struct ServedCorpus {
    /// One server per site, in the corpus's order.
    pub servers: Vec<Server>,
}

impl ServedCorpus {
    /// Serve every site of `corpus` ([`corpus_router`]).
    pub async fn start(corpus: &Corpus) -> std::io::Result<ServedCorpus> {
        let mut servers = Vec::new();
        for s in &corpus.sites {
            servers.push(Server::start(corpus_router(s)).await?);
        }
        Ok(ServedCorpus { servers })
    }

    /// The URL of page `r`: `http://127.0.0.1:PORT/<site dir>/<page path>`.
    pub fn url(&self, corpus: &Corpus, r: PageRef) -> String {
        let dir = corpus.sites[r.site].spec.dir;
        self.servers[r.site].url(&format!("/{dir}/{}", corpus.page(r).rel))
    }

    /// The URL of site `site`'s front page.
    pub fn front_url(&self, corpus: &Corpus, site: usize) -> String {
        self.servers[site].url(&format!("/{}/index.html", corpus.sites[site].spec.dir))
    }
}

/// A site's server: the docs directory ([`static_dir_router`]), so that the site's pages sit
/// under `/<site dir>/` and their links resolve as on doc.rust-lang.org, except that an HTML
/// page outside the site's directory (another site's page) or left out by sampling answers
/// 404: each port is one site, and the peer can index no page that the baselines lack but
/// those the corpus skips on purpose (redirect stubs, `noindex` pages such as mdBook's
/// `toc.html`, which the site still serves and links to).
pub fn corpus_router(site: &SiteCorpus) -> Router {
    let dir = site.spec.dir;
    let prefix = format!("/{dir}/");
    let left_out: HashSet<String> = site
        .left_out
        .iter()
        .map(|rel| format!("/{dir}/{rel}"))
        .collect();
    let left_out = Arc::new(left_out);
    static_dir_router(site.docs.clone()).layer(axum::middleware::from_fn(
        move |req: Request, next: Next| {
            let left_out = left_out.clone();
            let prefix = prefix.clone();
            async move {
                let path = req.uri().path();
                // A directory (`/std`, `/std/`) serves its index.html: a page too.
                let last = path.rsplit('/').next().unwrap_or_default();
                let page = path.ends_with(".html") || !last.contains('.');
                let in_site = path.starts_with(&prefix) || format!("{path}/") == prefix;
                if page && (!in_site || left_out.contains(path)) {
                    return StatusCode::NOT_FOUND.into_response();
                }
                next.run(req).await
            }
        },
    ))
}

/// Start one peer on `data_dir` that crawls every page of the served corpus (each page
/// seeded, in batches the API accepts), and wait until its crawl is idle.
pub async fn crawl_with_one_peer(
    data_dir: &Path,
    corpus: &Corpus,
    served: &ServedCorpus,
    timeout: Duration,
) -> anyhow::Result<(PeerProcess, serde_json::Value, Duration)> {
    let mut args: Vec<String> = [
        "--allow-private-addresses",
        "--crawl-rate",
        "1000",
        "--crawl-concurrency",
        "32",
        "--max-depth",
        "1000",
        "--replication",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for site in 0..served.servers.len() {
        args.push("--seed".into());
        args.push(served.front_url(corpus, site));
    }
    let started = Instant::now();
    let peer = PeerProcess::spawn(
        data_dir,
        &PeerOptions {
            args,
            ..PeerOptions::default()
        },
    )
    .await?;
    let urls: Vec<String> = corpus.refs().map(|r| served.url(corpus, r)).collect();
    // 500 URLs of ~70 bytes stay well inside the API's body limit (64 KiB, 1 000 URLs).
    for batch in urls.chunks(500) {
        let (status, body) = peer
            .post_json("/api/crawl", &serde_json::json!({ "urls": batch }))
            .await?;
        anyhow::ensure!(status == 202, "seeding answered {status}: {body}");
    }
    let st = peer
        .wait_crawl_idle(timeout)
        .await
        .map_err(|e| anyhow::anyhow!("{e}\n{}", peer.log_tail()))?;
    Ok((peer, st, started.elapsed()))
}

/// How one query did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The query.
    pub query: String,
    /// The target's URL.
    pub target: String,
    /// 1-based rank of the target in the first [`CUTOFF`] hits.
    pub rank: Option<usize>,
    /// The first hit.
    pub top: Option<String>,
    /// The first hit's title, when the system gives one.
    pub top_title: Option<String>,
}

/// MRR@10, success@1 and the number of queries of one set on one system.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scores {
    /// Mean reciprocal rank within the first [`CUTOFF`] hits.
    pub mrr: f64,
    /// Share of queries whose first hit is the target.
    pub success1: f64,
    /// Queries.
    pub n: usize,
}

impl Scores {
    /// The scores of `outcomes`.
    pub fn of(outcomes: &[Outcome]) -> Scores {
        let n = outcomes.len();
        if n == 0 {
            return Scores::default();
        }
        let rr: f64 = outcomes
            .iter()
            .filter_map(|o| o.rank)
            .map(|r| 1.0 / r as f64)
            .sum();
        let s1 = outcomes.iter().filter(|o| o.rank == Some(1)).count();
        Scores {
            mrr: rr / n as f64,
            success1: s1 as f64 / n as f64,
            n,
        }
    }
}

/// Judge `hits` (URLs, best first) for a query looking for `target`.
pub fn judge(query: &str, target: &str, hits: &[String]) -> Outcome {
    let want = normalize_url(target);
    let mut seen: Vec<String> = Vec::new();
    for h in hits {
        let h = normalize_url(h);
        if !seen.contains(&h) {
            seen.push(h);
        }
    }
    Outcome {
        query: query.to_string(),
        target: target.to_string(),
        rank: seen
            .iter()
            .take(CUTOFF)
            .position(|h| *h == want)
            .map(|i| i + 1),
        top: hits.first().cloned(),
        top_title: None,
    }
}

/// Run `set` against the peer's JSON API (`scope=local`, `limit=10`).
pub async fn run_on_peer(
    peer: &PeerProcess,
    corpus: &Corpus,
    served: &ServedCorpus,
    set: &QuerySet,
) -> anyhow::Result<Vec<Outcome>> {
    let mut out = Vec::with_capacity(set.queries.len());
    for q in &set.queries {
        let v = peer
            .search(&q.query, &format!("&scope=local&limit={CUTOFF}"))
            .await?;
        let hits: Vec<&serde_json::Value> = v["hits"].as_array().into_iter().flatten().collect();
        let urls: Vec<String> = hits
            .iter()
            .filter_map(|h| h["url"].as_str().map(String::from))
            .collect();
        let mut o = judge(&q.query, &served.url(corpus, q.target), &urls);
        o.top_title = hits
            .first()
            .and_then(|h| h["title"].as_str().map(String::from));
        out.push(o);
    }
    Ok(out)
}

/// How a baseline combines the terms of a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaselineMode {
    /// Every term must match (tantivy's `QueryParser` with conjunction by default).
    Conjunctive,
    /// Any term may match (the `QueryParser`'s default), plus a sloppy phrase of the query's
    /// terms on title and body.
    OrPhrase,
}

impl BaselineMode {
    /// Its name in the tables.
    pub fn label(self) -> &'static str {
        match self {
            BaselineMode::Conjunctive => "bare tantivy, AND",
            BaselineMode::OrPhrase => "bare tantivy, OR + phrase",
        }
    }
}

/// Weight of the title field against the body in the baselines.
pub const BASELINE_TITLE_BOOST: f32 = 2.0;
/// Slop of the baselines' phrase clause: a remembered-words query leaves out the stop words
/// between its words, one or two per gap.
pub const BASELINE_PHRASE_SLOP: u32 = 6;

/// A plain tantivy index of the corpus, in RAM: title (boost 2) and body (all visible text),
/// both with tantivy's `en_stem` analyzer, as a simple indexer would build.
pub struct Baseline {
    index: tantivy::Index,
    reader: tantivy::IndexReader,
    title: tantivy::schema::Field,
    body: tantivy::schema::Field,
    url: tantivy::schema::Field,
}

impl std::fmt::Debug for Baseline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Baseline").finish_non_exhaustive()
    }
}

impl Baseline {
    /// Index every page of `corpus` under its served URL.
    pub fn build(corpus: &Corpus, served: &ServedCorpus) -> anyhow::Result<Baseline> {
        use tantivy::schema::{
            IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions,
        };
        let text = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("en_stem")
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        let mut b = Schema::builder();
        let title = b.add_text_field("title", text.clone());
        let body = b.add_text_field("body", text);
        let url = b.add_text_field("url", STRING | STORED);
        let index = tantivy::Index::create_in_ram(b.build());
        let mut writer: tantivy::IndexWriter = index.writer_with_num_threads(1, 50_000_000)?;
        for r in corpus.refs() {
            let p = corpus.page(r);
            let mut doc = tantivy::TantivyDocument::default();
            doc.add_text(title, &p.title);
            doc.add_text(body, &p.body);
            doc.add_text(url, served.url(corpus, r));
            writer.add_document(doc)?;
        }
        writer.commit()?;
        let reader = index.reader()?;
        Ok(Baseline {
            index,
            reader,
            title,
            body,
            url,
        })
    }

    /// The URLs of the first [`CUTOFF`] hits of `q`.
    pub fn search(&self, q: &str, mode: BaselineMode) -> anyhow::Result<Vec<String>> {
        use tantivy::query::{BooleanQuery, BoostQuery, Occur, PhraseQuery, Query, QueryParser};
        use tantivy::schema::Value;
        // Query syntax is not what is measured: keep letters and digits only, lowercased (no
        // field prefixes, no AND/OR/NOT operators).
        let clean: String = q
            .chars()
            .map(|c| {
                if c.is_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    ' '
                }
            })
            .collect();
        if clean.trim().is_empty() {
            return Ok(Vec::new());
        }
        let mut parser = QueryParser::for_index(&self.index, vec![self.title, self.body]);
        parser.set_field_boost(self.title, BASELINE_TITLE_BOOST);
        if mode == BaselineMode::Conjunctive {
            parser.set_conjunction_by_default();
        }
        let (base, _errors) = parser.parse_query_lenient(&clean);
        let query: Box<dyn Query> = match mode {
            BaselineMode::Conjunctive => base,
            BaselineMode::OrPhrase => {
                let mut analyzer = self
                    .index
                    .tokenizers()
                    .get("en_stem")
                    .ok_or_else(|| anyhow::anyhow!("no en_stem analyzer"))?;
                let mut tokens = Vec::new();
                let mut stream = analyzer.token_stream(&clean);
                while let Some(t) = stream.next() {
                    tokens.push(t.text.clone());
                }
                let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Should, base)];
                if tokens.len() >= 2 {
                    for (field, boost) in [(self.title, BASELINE_TITLE_BOOST), (self.body, 1.0)] {
                        let terms = tokens
                            .iter()
                            .map(|t| tantivy::Term::from_field_text(field, t))
                            .collect();
                        let mut phrase = PhraseQuery::new(terms);
                        phrase.set_slop(BASELINE_PHRASE_SLOP);
                        clauses.push((
                            Occur::Should,
                            Box::new(BoostQuery::new(Box::new(phrase), boost)),
                        ));
                    }
                }
                Box::new(BooleanQuery::new(clauses))
            }
        };
        let searcher = self.reader.searcher();
        let top = searcher.search(
            &query,
            &tantivy::collector::TopDocs::with_limit(CUTOFF).order_by_score(),
        )?;
        let mut out = Vec::with_capacity(top.len());
        for (_score, addr) in top {
            let doc: tantivy::TantivyDocument = searcher.doc(addr)?;
            if let Some(u) = doc.get_first(self.url).and_then(|v| v.as_str()) {
                out.push(u.to_string());
            }
        }
        Ok(out)
    }

    /// Run `set` against this baseline.
    pub fn run(
        &self,
        corpus: &Corpus,
        served: &ServedCorpus,
        set: &QuerySet,
        mode: BaselineMode,
    ) -> anyhow::Result<Vec<Outcome>> {
        set.queries
            .iter()
            .map(|q| {
                let hits = self.search(&q.query, mode)?;
                Ok(judge(&q.query, &served.url(corpus, q.target), &hits))
            })
            .collect()
    }
}

/// One row of a results table.
#[derive(Debug, Clone)]
pub struct Row {
    /// The query set.
    pub set: &'static str,
    /// The system (`peersearch`, a baseline).
    pub system: String,
    /// Its scores.
    pub scores: Scores,
}

/// The rows as a Markdown table.
pub fn markdown_table(rows: &[Row]) -> String {
    let mut s = String::from(
        "| query set | system | MRR@10 | success@1 | n |\n| --- | --- | --- | --- | --- |\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {:.3} | {:.3} | {} |\n",
            r.set, r.system, r.scores.mrr, r.scores.success1, r.scores.n
        ));
    }
    s
}

/// The misses of `outcomes` (the target not first), one line each: the query, the target's
/// rank, the target and what came first.
pub fn misses(outcomes: &[Outcome]) -> Vec<String> {
    outcomes
        .iter()
        .filter(|o| o.rank != Some(1))
        .map(|o| {
            format!(
                "{:?} rank {} want {} got {}{}",
                o.query,
                o.rank.map_or("-".to_string(), |r| r.to_string()),
                o.target,
                o.top.as_deref().unwrap_or("nothing"),
                o.top_title
                    .as_deref()
                    .map(|t| format!(" ({t:?})"))
                    .unwrap_or_default()
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_words_drop_stop_words_and_single_letters() {
        assert_eq!(
            content_words("It's the borrow checker that won't let a Vec<T> go; see `Vec::new`."),
            vec!["borrow", "checker", "let", "vec", "go", "see", "vec", "new"]
        );
    }

    #[test]
    fn the_common_title_suffix_is_found() {
        let t = ["A - The Cargo Book", "B - The Cargo Book", "The Cargo Book"];
        assert_eq!(common_suffix(&t).as_deref(), Some(" - The Cargo Book"));
        assert_eq!(common_suffix(&["a", "b", "c - d"]), None);
    }

    #[test]
    fn a_page_gives_main_paragraphs_and_all_visible_text() {
        let html = "<html><head><title>Ch - Bk</title><script>var x</script></head><body>\
                    <nav><p>menu item</p></nav><main><h1>Head</h1><p>first  para</p>\
                    <p>second</p></main><script>hidden()</script></body></html>";
        let (title, paras, body) = read_page(html).unwrap();
        assert_eq!(title, "Ch - Bk");
        assert_eq!(paras, vec!["first para", "second"]);
        assert_eq!(body, "menu item Head first para second");
        assert!(read_page("<html><head><meta name=\"robots\" content=\"noindex\"><title>x</title></head></html>").is_none());
    }

    #[test]
    fn judging_counts_ranks_within_ten_and_folds_index_html() {
        let hits: Vec<String> = ["http://h/a.html", "http://h/b/", "http://h/c.html"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(judge("q", "http://h/b/index.html", &hits).rank, Some(2));
        assert_eq!(judge("q", "http://h/z.html", &hits).rank, None);
        let o = [
            judge("q", "http://h/a.html", &hits),
            judge("q", "http://h/c.html", &hits),
        ];
        let s = Scores::of(&o);
        assert!((s.mrr - (1.0 + 1.0 / 3.0) / 2.0).abs() < 1e-9);
        assert!((s.success1 - 0.5).abs() < 1e-9);
    }
}
