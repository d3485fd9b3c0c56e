//! `peersearch extract`: what a peer would index of a page, from a local file or stdin.
//!
//! It runs the crawler's own extraction (`peersearch_crawler::extract`, the function the crawl
//! worker calls on every fetched body), so what it prints is what the crawler indexes for the
//! same bytes: the title, the main text (the body field), the chrome kept in a low-weight
//! field, headings, language, charset, canonical URL, robots directives and the outgoing links
//! with their anchor texts.

use super::term::sanitize;
use anyhow::{Context, Result, bail};
use peersearch_crawler::{DEFAULT_MAX_BODY_BYTES, ExtractedPage, extract};
use serde_json::json;
use std::io::Read;
use std::path::Path;
use url::Url;

/// Bytes looked at for a NUL, the mark of a binary file.
const SNIFF_BYTES: usize = 8 * 1024;

/// Read what to extract: `-` is stdin. At most the crawler's body cap is accepted.
fn read_input(path: &str) -> Result<Vec<u8>> {
    let cap = DEFAULT_MAX_BODY_BYTES;
    let mut body = Vec::new();
    if path == "-" {
        std::io::stdin()
            .lock()
            .take(cap as u64 + 1)
            .read_to_end(&mut body)
            .context("cannot read standard input")?;
    } else {
        let file = std::fs::File::open(path).with_context(|| format!("cannot open {path}"))?;
        let meta = file
            .metadata()
            .with_context(|| format!("cannot read {path}"))?;
        if meta.is_dir() {
            bail!("{path} is a directory, not a page");
        }
        file.take(cap as u64 + 1)
            .read_to_end(&mut body)
            .with_context(|| format!("cannot read {path}"))?;
    }
    if body.len() > cap {
        bail!("{path} is larger than the crawler's cap of {cap} bytes: a peer would not index it");
    }
    Ok(body)
}

/// The page's URL: `--url`, else the file's `file:` URL (stdin: `file:///dev/stdin`).
fn page_url(path: &str, url: Option<&str>) -> Result<Url> {
    if let Some(u) = url {
        return Url::parse(u).with_context(|| format!("--url {u:?} is not a URL"));
    }
    if path == "-" {
        return Ok(Url::parse("file:///dev/stdin").expect("a valid URL"));
    }
    let abs =
        std::fs::canonicalize(Path::new(path)).with_context(|| format!("cannot resolve {path}"))?;
    Url::from_file_path(&abs)
        .map_err(|()| anyhow::anyhow!("cannot make a URL of {}", abs.display()))
}

/// Extract `path` (or stdin) as the crawler would, with `content_type` as the server's
/// Content-Type header if given; print it as text, or as one JSON object.
pub fn run(path: &str, url: Option<&str>, content_type: Option<&str>, as_json: bool) -> Result<()> {
    let body = read_input(path)?;
    if content_type.is_none() && body[..body.len().min(SNIFF_BYTES)].contains(&0) {
        bail!("{path} is a binary file, not an HTML page");
    }
    let url = page_url(path, url)?;
    let page =
        extract(&body, content_type, &url).with_context(|| format!("cannot extract {path}"))?;
    if as_json {
        println!("{}", to_json(&page));
    } else {
        print!("{}", to_text(&page));
    }
    Ok(())
}

/// The JSON form: `title`, `text` (the main text as indexed), `links` (`url`, `anchor`), and
/// every other part.
pub fn to_json(page: &ExtractedPage) -> serde_json::Value {
    json!({
        "title": page.title,
        "description": page.description,
        "text": page.text,
        "chrome": page.chrome,
        "headings": page.headings,
        "lang": page.lang,
        "charset": page.charset,
        "canonical": page.canonical.as_ref().map(|c| c.to_string()),
        "robots": { "noindex": page.robots.noindex, "nofollow": page.robots.nofollow },
        "content_hash": page.content_hash,
        "links": page.links.iter().map(|l| json!({
            "url": l.url.to_string(),
            "anchor": l.anchor,
            "nofollow": l.nofollow,
        })).collect::<Vec<_>>(),
    })
}

/// The text form, every part labelled, safe for a terminal.
pub fn to_text(page: &ExtractedPage) -> String {
    let mut out = String::new();
    let mut line = |label: &str, value: &str| {
        out.push_str(&format!("{label}: {}\n", sanitize(value)));
    };
    line("title", &page.title);
    line("description", page.description.as_deref().unwrap_or(""));
    line("language", page.lang.as_deref().unwrap_or(""));
    line("charset", &page.charset);
    line(
        "canonical",
        &page
            .canonical
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_default(),
    );
    let robots = match (page.robots.noindex, page.robots.nofollow) {
        (false, false) => "index, follow",
        (true, false) => "noindex, follow",
        (false, true) => "index, nofollow",
        (true, true) => "noindex, nofollow",
    };
    line("robots", robots);
    line("content hash", &page.content_hash);
    out.push_str(&format!("headings ({}):\n", page.headings.len()));
    for h in &page.headings {
        out.push_str(&format!("  {}\n", sanitize(h)));
    }
    out.push_str(&format!(
        "text ({} bytes):\n  {}\n",
        page.text.len(),
        sanitize(&page.text)
    ));
    out.push_str(&format!(
        "chrome ({} bytes):\n  {}\n",
        page.chrome.len(),
        sanitize(&page.chrome)
    ));
    out.push_str(&format!("links ({}):\n", page.links.len()));
    for l in &page.links {
        let nofollow = if l.nofollow { " [nofollow]" } else { "" };
        out.push_str(&format!(
            "  {} \"{}\"{nofollow}\n",
            sanitize(l.url.as_str()),
            sanitize(&l.anchor)
        ));
    }
    out
}
