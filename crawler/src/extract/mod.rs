//! Extraction of the searchable parts of an HTML page.
//!
//! Synchronous on purpose: `scraper::Html` is not `Send`, and parsing is CPU work, so
//! callers run [`extract`] on `spawn_blocking`. Every pass is iterative (no
//! recursion), so pathologically deep documents cannot overflow the stack, and linear
//! in the size of the page.
//!
//! # How a page is read
//!
//! 1. [`charset`]: the encoding (BOM, Content-Type, `<meta>`), decoded lossily.
//! 2. [`nesting`]: element nesting is capped at [`MAX_NESTING`] before parsing
//!    (html5ever has no cap of its own), then scraper parses the page.
//! 3. [`dom`]: the tree is flattened into open/text/close events.
//! 4. [`main_content`]: which elements are the page's own content and which are chrome
//!    (navigation, header, footer, sidebars, banners, hidden popups).
//! 5. [`collect`]: one pass over the events fills [`ExtractedPage`]: main text, chrome
//!    text, headings of the main content, links of the whole page, metadata.

mod charset;
mod collect;
mod directives;
mod dom;
mod links;
mod main_content;
mod nesting;
#[cfg(test)]
mod tests;
mod text;

use scraper::Html;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;

pub use directives::RobotsDirectives;
pub use links::Link;

use crate::error::{Error, Result};
use crate::normalize::NormalizedUrl;

/// Largest input parsed, in bytes; the fetcher's body cap is the same, this guards
/// callers that feed other input. html5ever has no nesting cap, so size is the bound.
pub const MAX_HTML_BYTES: usize = 5 * 1024 * 1024;

/// Text kept per page, in bytes, for the main text and for the chrome each: far beyond
/// any real article, small enough for the index to take thousands of pages per commit.
pub const MAX_TEXT_BYTES: usize = 1024 * 1024;

/// Title length kept, in characters (search results show about 60).
pub const MAX_TITLE_CHARS: usize = 512;

/// Meta description length kept, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 1024;

/// Headings kept per page.
pub const MAX_HEADINGS: usize = 128;

/// Distinct links kept per page; pages with more are link farms or sitemaps.
pub const MAX_LINKS: usize = 500;

/// Characters of anchor text kept per link.
pub const MAX_ANCHOR_CHARS: usize = 256;

/// What the crawler keeps of an HTML page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtractedPage {
    /// `<title>`, whitespace folded, at most [`MAX_TITLE_CHARS`] characters.
    pub title: String,
    /// `<meta name="description">`.
    pub description: Option<String>,
    /// The page's main content: its visible text without navigation, header, footer,
    /// sidebars and banners, whitespace folded, at most [`MAX_TEXT_BYTES`]. When no main
    /// content stands out (a tiny page, a page of links), the whole visible text.
    pub text: String,
    /// The rest of the visible text (navigation, header, footer, sidebars, banners,
    /// hidden popups), whitespace folded, at most [`MAX_TEXT_BYTES`]; empty when
    /// [`text`](Self::text) holds the whole page.
    pub chrome: String,
    /// h1 to h6 texts of the main content, in document order.
    pub headings: Vec<String>,
    /// Distinct crawlable links (http/https) of the whole page, chrome included, at most
    /// [`MAX_LINKS`].
    pub links: Vec<Link>,
    /// `<link rel="canonical">`, resolved and normalized.
    pub canonical: Option<NormalizedUrl>,
    /// `<meta name="robots">` directives.
    pub robots: RobotsDirectives,
    /// `<html lang>`.
    pub lang: Option<String>,
    /// Name of the character encoding used to decode the page.
    pub charset: String,
    /// Hex SHA-256 of `title + "\n" + text` (the main text, not the chrome): equal for
    /// pages with the same content, whatever their menus and footers say.
    pub content_hash: String,
}

/// Whether a Content-Type names HTML.
pub fn is_html_content_type(content_type: &str) -> bool {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    mime == "text/html" || mime == "application/xhtml+xml"
}

/// Extracts an HTML page fetched from `url`. Other content types are [`Error::NotHtml`];
/// a missing Content-Type is accepted when the body looks like HTML.
pub fn extract(body: &[u8], content_type: Option<&str>, url: &Url) -> Result<ExtractedPage> {
    match content_type {
        Some(ct) if !is_html_content_type(ct) => return Err(Error::NotHtml(ct.to_owned())),
        None if !looks_like_html(body) => return Err(Error::NotHtml("unknown".into())),
        _ => {}
    }
    let body = &body[..body.len().min(MAX_HTML_BYTES)];
    let encoding = charset::detect(body, content_type);
    // `decode` honours a BOM and replaces malformed sequences (lossy).
    let (text, used, _) = encoding.decode(body);
    let html = Html::parse_document(&nesting::cap_nesting(&text));
    let dom = dom::Dom::new(&html);
    let regions = main_content::classify(&dom);
    Ok(collect::collect(&dom, &regions, url, used.name()))
}

fn looks_like_html(body: &[u8]) -> bool {
    let start = &body[..body.len().min(charset::CHARSET_SNIFF_BYTES)];
    let lower = String::from_utf8_lossy(start).to_ascii_lowercase();
    let trimmed = lower.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    if trimmed.starts_with("<!doctype html") || trimmed.starts_with("<!--") {
        return true;
    }
    // The WHATWG MIME sniffing patterns for HTML (plus `meta`): a known tag name
    // followed by a space or `>`.
    let Some(rest) = trimmed.strip_prefix('<') else {
        return false;
    };
    let name_len = rest
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(rest.len());
    let terminated = rest[name_len..].starts_with([' ', '>', '\t', '\n', '\r']);
    terminated
        && [
            "html", "head", "script", "iframe", "h1", "div", "font", "table", "a", "style",
            "title", "b", "body", "br", "p", "meta",
        ]
        .contains(&&rest[..name_len])
}

/// Hex SHA-256 of `title + "\n" + text`.
pub fn content_hash(title: &str, text: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(title.as_bytes());
    hasher.update(b"\n");
    hasher.update(text.as_bytes());
    hex::encode(hasher.finalize())
}
