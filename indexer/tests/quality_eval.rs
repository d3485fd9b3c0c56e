//! A quick local ranking evaluation for tuning (ignored: it needs the rust-docs component and
//! prints figures instead of asserting much). It indexes the mdBook books rustup installs
//! with a crude extraction (title, `<main>` as body, its headings, everything else as
//! chrome, in-links counted from relative links), then runs, with a fixed seed:
//! - title queries (a page's title without the book suffix) — MRR@10;
//! - remembered-words queries (4 content words in order from one paragraph of the page, stop
//!   words dropped) — MRR@10;
//! - navigational queries (a book by its name) — success@1.
//!
//! `cargo test -p peersearch-indexer --test quality_eval -- --ignored --nocapture`

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use peersearch_indexer::{Document, Shard};

const BOOKS: &[(&str, &str, &str)] = &[
    (
        "book",
        " - The Rust Programming Language",
        "The Rust Programming Language",
    ),
    ("cargo", " - The Cargo Book", "The Cargo Book"),
    ("reference", " - The Rust Reference", "The Rust Reference"),
    ("rust-by-example", " - Rust By Example", "Rust By Example"),
    ("nomicon", " - The Rustonomicon", "The Rustonomicon"),
    (
        "edition-guide",
        " - The Rust Edition Guide",
        "The Rust Edition Guide",
    ),
    (
        "embedded-book",
        " - The Embedded Rust Book",
        "The Embedded Rust Book",
    ),
];

const STOP_WORDS: &[&str] = &[
    "a", "an", "the", "and", "or", "of", "to", "in", "on", "for", "with", "is", "are", "was",
    "were", "be", "been", "it", "its", "this", "that", "these", "those", "as", "at", "by", "from",
    "we", "you", "your", "our", "i", "can", "will", "would", "should", "not", "but", "if", "so",
    "do", "does", "has", "have", "had", "which", "what", "when", "there", "their", "they", "them",
    "than", "then", "also", "into", "all", "any", "some", "such", "one", "use", "using", "used",
    "more", "how", "about", "out", "up", "may", "must", "let", "s", "t",
];

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let i = s.find(start)? + start.len();
    let j = s[i..].find(end)? + i;
    Some(&s[i..j])
}

/// Removes `<tag ...>...</tag>` blocks.
fn drop_blocks(mut s: String, tag: &str) -> String {
    let open = format!("<{tag}");
    let close = format!("</{tag}>");
    while let Some(i) = s.find(&open) {
        let Some(j) = s[i..].find(&close) else { break };
        s.replace_range(i..i + j + close.len(), " ");
    }
    s
}

fn text_of(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    let out = out
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'");
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

struct Page {
    doc: Document,
    title_query: String,
    paragraphs: Vec<String>,
    /// (target, anchor text) of the page's relative links.
    links: Vec<(String, String)>,
}

fn page(root: &Path, book: &str, suffix: &str, path: &Path) -> Option<Page> {
    let html = std::fs::read_to_string(path).ok()?;
    if html.contains("content=\"noindex\"") {
        return None;
    }
    let rel = path
        .strip_prefix(root.join(book))
        .ok()?
        .to_string_lossy()
        .replace('\\', "/");
    if rel == "print.html" || rel == "404.html" || rel == "toc.html" {
        return None;
    }
    let title = text_of(between(&html, "<title>", "</title>")?);
    if title == "Redirection" || title.is_empty() {
        return None;
    }
    let title_query = title
        .strip_suffix(suffix)
        .unwrap_or(&title)
        .trim()
        .to_string();
    let cleaned = drop_blocks(drop_blocks(html.clone(), "script"), "style");
    let main = between(&cleaned, "<main>", "</main>").unwrap_or("");
    let mut headings = Vec::new();
    for level in 1..=6 {
        let open = format!("<h{level}");
        let close = format!("</h{level}>");
        let mut rest = main;
        while let Some(i) = rest.find(&open) {
            let Some(j) = rest[i..].find(&close) else {
                break;
            };
            headings.push(text_of(&format!("<{}", &rest[i + 1..i + j])));
            rest = &rest[i + j..];
        }
    }
    let mut paragraphs = Vec::new();
    let mut rest = main;
    while let Some(p) = between(rest, "<p>", "</p>") {
        paragraphs.push(text_of(p));
        let i = rest.find("<p>").unwrap() + 3 + p.len();
        rest = &rest[i..];
    }
    let chrome = match (cleaned.find("<main>"), cleaned.find("</main>")) {
        (Some(i), Some(j)) => format!("{} {}", text_of(&cleaned[..i]), text_of(&cleaned[j..])),
        _ => String::new(),
    };
    let dir = Path::new(&rel)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut links = Vec::new();
    let mut rest = cleaned.as_str();
    while let Some(href) = between(rest, "href=\"", "\"") {
        let i = rest.find("href=\"").unwrap() + 6 + href.len();
        rest = &rest[i..];
        let anchor = rest
            .find('>')
            .and_then(|gt| between(&rest[gt..], ">", "</a>"))
            .map(text_of)
            .unwrap_or_default();
        if href.contains("://") || href.starts_with('#') || href.starts_with("mailto:") {
            continue;
        }
        let href = href.split('#').next().unwrap_or("");
        if !href.ends_with(".html") && !href.ends_with('/') {
            continue;
        }
        // Resolve against the page's directory inside the doc root.
        let mut parts: Vec<String> = Path::new(book)
            .join(&dir)
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        for seg in href.split('/') {
            match seg {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                s => parts.push(s.to_string()),
            }
        }
        let mut target = parts.join("/");
        if href.ends_with('/') || target.is_empty() {
            target.push_str("/index.html");
        }
        links.push((target, anchor));
    }
    let site = format!("{book}.docs.example");
    Some(Page {
        doc: Document {
            url: format!("http://{site}/{rel}"),
            site,
            title,
            body: text_of(main),
            headings: headings.join("\n"),
            chrome,
            lang: "en".into(),
            fetched_at: 1_700_000_000,
            ..Document::default()
        },
        title_query,
        paragraphs,
        links,
    })
}

fn html_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "html") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

fn rank_of(shard: &Shard, q: &str, url: &str) -> Option<usize> {
    let r = shard.search(q, 10, None).ok()?;
    r.hits.iter().position(|h| h.url == url)
}

#[test]
#[ignore = "tuning aid: needs the rust-docs component, prints figures"]
fn ranking_figures_on_the_rust_books() {
    let sysroot = std::process::Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .expect("rustc runs");
    let root =
        PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim()).join("share/doc/rust/html");
    let mut pages = Vec::new();
    for (book, suffix, _) in BOOKS {
        for path in html_files(&root.join(book)) {
            if let Some(p) = page(&root, book, suffix, &path) {
                pages.push(p);
            }
        }
    }
    // In-links: distinct linking pages and sites, per target "<book>/<rel>".
    type Inlinks = (BTreeSet<String>, BTreeSet<String>, BTreeSet<String>);
    let mut inlinks: BTreeMap<String, Inlinks> = BTreeMap::new();
    for p in &pages {
        for (target, anchor) in &p.links {
            let e = inlinks.entry(target.clone()).or_default();
            e.0.insert(p.doc.url.clone());
            e.1.insert(p.doc.site.clone());
            if !anchor.is_empty() {
                e.2.insert(anchor.clone());
            }
        }
    }
    let shard = Shard::open_in_ram().unwrap();
    for p in &mut pages {
        let key = format!(
            "{}/{}",
            p.doc.site.trim_end_matches(".docs.example"),
            p.doc.url.splitn(4, '/').nth(3).unwrap_or("")
        );
        if let Some((pg, st, anchors)) = inlinks.get(&key) {
            p.doc.inlink_pages = pg.len() as u32;
            p.doc.inlink_sites = st.len() as u32;
            p.doc.anchor_text = anchors.iter().cloned().collect::<Vec<_>>().join("\n");
        }
        shard.upsert(&p.doc).unwrap();
    }
    shard.commit().unwrap();
    println!("indexed {} pages", shard.num_docs());

    let stop: BTreeSet<&str> = STOP_WORDS.iter().copied().collect();
    let mut rng = Lcg(42);
    let (mut title_rr, mut title_n) = (0.0, 0);
    let (mut words_rr, mut words_n) = (0.0, 0);
    let mut seen_titles = BTreeMap::new();
    for p in &pages {
        *seen_titles.entry(p.title_query.to_lowercase()).or_insert(0) += 1;
    }
    let step = (pages.len() / 400).max(1);
    for p in pages.iter().step_by(step) {
        if seen_titles[&p.title_query.to_lowercase()] == 1 {
            title_n += 1;
            let rank = rank_of(&shard, &p.title_query, &p.doc.url);
            if let Some(r) = rank {
                title_rr += 1.0 / (r + 1) as f64;
            }
            if std::env::var_os("EVAL_VERBOSE").is_some() && rank != Some(0) {
                let top = shard.search(&p.title_query, 2, None).unwrap();
                println!(
                    "title miss {:?} want {} got {:?} at {rank:?}",
                    p.title_query,
                    p.doc.url,
                    top.hits
                        .iter()
                        .map(|h| (&h.url, h.score))
                        .collect::<Vec<_>>()
                );
            }
        }
        let candidates: Vec<Vec<String>> = p
            .paragraphs
            .iter()
            .map(|para| {
                para.split(|c: char| !c.is_alphanumeric())
                    .filter(|w| w.len() > 1 && !stop.contains(w.to_lowercase().as_str()))
                    .filter(|w| w.chars().all(|c| c.is_alphabetic()))
                    .map(str::to_lowercase)
                    .collect::<Vec<_>>()
            })
            .filter(|ws| ws.len() >= 8)
            .collect();
        if candidates.is_empty() {
            continue;
        }
        let words = &candidates[rng.next(candidates.len())];
        let start = rng.next(words.len() - 3);
        let q = words[start..start + 4].join(" ");
        words_n += 1;
        let rank = rank_of(&shard, &q, &p.doc.url);
        if let Some(r) = rank {
            words_rr += 1.0 / (r + 1) as f64;
        }
        if std::env::var_os("EVAL_VERBOSE").is_some() && rank.is_none_or(|r| r > 2) {
            let top = shard.search(&q, 3, None).unwrap();
            println!(
                "miss {q:?} want {} got {:?} at {rank:?}",
                p.doc.url,
                top.hits
                    .iter()
                    .map(|h| (&h.url, h.score))
                    .collect::<Vec<_>>()
            );
        }
    }
    let started = std::time::Instant::now();
    let long: String = pages[7]
        .paragraphs
        .iter()
        .flat_map(|p| p.split(' '))
        .take(40)
        .collect::<Vec<_>>()
        .join(" ");
    for q in ["rust", "the", long.as_str()] {
        let t = std::time::Instant::now();
        let r = shard.search(q, 10, None).unwrap();
        println!(
            "{:?} matched {} in {:?}",
            q.chars().take(30).collect::<String>(),
            r.total_matches,
            t.elapsed()
        );
    }
    println!("timing queries took {:?}", started.elapsed());
    let mut nav_ok = 0;
    for (book, _, name) in BOOKS {
        let url = format!("http://{book}.docs.example/index.html");
        let top = shard.search(name, 3, None).unwrap();
        let ok = top.hits.first().is_some_and(|h| h.url == url);
        nav_ok += usize::from(ok);
        println!(
            "nav {name:?}: {:?}",
            top.hits
                .iter()
                .map(|h| (h.url.as_str(), h.score))
                .collect::<Vec<_>>()
        );
    }
    println!(
        "titles MRR@10 {:.3} ({title_n}), remembered words MRR@10 {:.3} ({words_n}), \
         navigational success@1 {:.2} ({})",
        title_rr / title_n as f64,
        words_rr / words_n as f64,
        nav_ok as f64 / BOOKS.len() as f64,
        BOOKS.len()
    );
}
