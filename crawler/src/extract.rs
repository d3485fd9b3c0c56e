//! Extraction of the searchable parts of an HTML page.
//!
//! Synchronous on purpose: `scraper::Html` is not `Send`, and parsing is CPU work, so
//! callers run [`extract`] on `spawn_blocking`. The tree walk is iterative (no
//! recursion), so pathologically deep documents cannot overflow the stack.

use std::borrow::Cow;
use std::collections::HashSet;

use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};
use scraper::{Html, Node};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;

use crate::error::{Error, Result};
use crate::normalize::{NormalizedUrl, normalize};
use crate::util::{fold_whitespace, truncate_chars};

/// Largest input parsed, in bytes; the fetcher's body cap is the same, this guards
/// callers that feed other input. html5ever has no nesting cap, so size is the bound.
pub const MAX_HTML_BYTES: usize = 5 * 1024 * 1024;

/// Visible text kept per page, in bytes: far beyond any real article, small enough
/// for the index to take thousands of pages per commit.
pub const MAX_TEXT_BYTES: usize = 1024 * 1024;

/// Title length kept, in characters (search results show about 60).
pub const MAX_TITLE_CHARS: usize = 512;

/// Meta description length kept, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 1024;

/// Headings kept per page, and characters per heading.
pub const MAX_HEADINGS: usize = 128;
const MAX_HEADING_CHARS: usize = 512;

/// Distinct links kept per page; pages with more are link farms or sitemaps.
pub const MAX_LINKS: usize = 500;

/// `<a>` elements looked at per page before giving up (bounds normalization work).
const MAX_RAW_LINKS: usize = 10 * MAX_LINKS;

/// Characters of anchor text kept per link.
pub const MAX_ANCHOR_CHARS: usize = 256;

/// The HTML spec sniffs `<meta charset>` in the first 1024 bytes.
const CHARSET_SNIFF_BYTES: usize = 1024;

/// Elements whose content is never visible text; their subtrees are not walked.
const SKIPPED_ELEMENTS: &[&str] = &[
    "script", "style", "noscript", "template", "svg", "math", "iframe", "object", "canvas",
];

/// Elements that separate words (so `<p>a</p><p>b</p>` reads "a b", not "ab").
const BLOCK_ELEMENTS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "br",
    "button",
    "caption",
    "dd",
    "details",
    "dialog",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "img",
    "input",
    "label",
    "li",
    "main",
    "nav",
    "ol",
    "option",
    "p",
    "pre",
    "section",
    "select",
    "summary",
    "table",
    "tbody",
    "td",
    "textarea",
    "tfoot",
    "th",
    "thead",
    "tr",
    "ul",
];

/// A link found on a page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// Where it points, resolved and normalized.
    pub url: NormalizedUrl,
    /// Its anchor text (or the alt text of an image inside it), whitespace folded.
    pub anchor: String,
    /// `rel` holds `nofollow`, `ugc` or `sponsored`.
    pub nofollow: bool,
}

/// Robots directives from `<meta name="robots">` or an X-Robots-Tag header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RobotsDirectives {
    /// Do not index this page.
    pub noindex: bool,
    /// Do not follow the links of this page.
    pub nofollow: bool,
}

impl RobotsDirectives {
    /// Parses a comma separated directive list (`noindex, nofollow`, `none`, ...).
    pub fn parse(value: &str) -> RobotsDirectives {
        let mut d = RobotsDirectives::default();
        for token in value.split([',', ' ', '\t']).map(str::trim) {
            match token.to_ascii_lowercase().as_str() {
                "noindex" => d.noindex = true,
                "nofollow" => d.nofollow = true,
                "none" => {
                    d.noindex = true;
                    d.nofollow = true;
                }
                _ => {}
            }
        }
        d
    }

    /// Parses X-Robots-Tag header values. A value may start with a user agent
    /// (`googlebot: noindex`); such values apply only when the agent is `peersearch`.
    pub fn from_x_robots_tag<S: AsRef<str>>(values: &[S], agent: &str) -> RobotsDirectives {
        let mut d = RobotsDirectives::default();
        for value in values {
            let value = value.as_ref();
            let applies = match value.split_once(':') {
                Some((prefix, rest)) if is_user_agent_prefix(prefix) => {
                    prefix.trim().eq_ignore_ascii_case(agent).then_some(rest)
                }
                _ => Some(value),
            };
            if let Some(directives) = applies {
                d = d.union(RobotsDirectives::parse(directives));
            }
        }
        d
    }

    /// Both sets of directives together.
    pub fn union(self, other: RobotsDirectives) -> RobotsDirectives {
        RobotsDirectives {
            noindex: self.noindex || other.noindex,
            nofollow: self.nofollow || other.nofollow,
        }
    }
}

/// `unavailable_after: date` and `max-snippet: 3` also contain a colon.
fn is_user_agent_prefix(prefix: &str) -> bool {
    let p = prefix.trim().to_ascii_lowercase();
    !p.is_empty()
        && !p.contains([',', ' '])
        && !matches!(
            p.as_str(),
            "unavailable_after" | "max-snippet" | "max-image-preview" | "max-video-preview"
        )
}

/// What the crawler keeps of an HTML page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtractedPage {
    /// `<title>`, whitespace folded, at most [`MAX_TITLE_CHARS`] characters.
    pub title: String,
    /// `<meta name="description">`.
    pub description: Option<String>,
    /// Visible text, whitespace folded, at most [`MAX_TEXT_BYTES`].
    pub text: String,
    /// h1 to h6 texts in document order.
    pub headings: Vec<String>,
    /// Distinct crawlable links (http/https), at most [`MAX_LINKS`].
    pub links: Vec<Link>,
    /// `<link rel="canonical">`, resolved and normalized.
    pub canonical: Option<NormalizedUrl>,
    /// `<meta name="robots">` directives.
    pub robots: RobotsDirectives,
    /// `<html lang>`.
    pub lang: Option<String>,
    /// Name of the character encoding used to decode the page.
    pub charset: String,
    /// Hex SHA-256 of `title + "\n" + text`: equal for pages with the same content.
    pub content_hash: String,
}

/// Deepest element nesting passed to the parser. html5ever's tree builder scans the
/// stack of open elements for every start tag, so 100 000 unclosed `<div>`s cost
/// O(n²) (minutes); Blink caps its DOM depth at 512 for the same reason. No real page
/// nests anywhere near 256 elements.
pub const MAX_NESTING: usize = 256;

/// Elements that have no end tag.
const VOID_ELEMENTS: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "keygen", "link", "meta", "param",
    "source", "track", "wbr",
];

/// Elements whose content is not markup, skipped up to their end tag.
const RAW_TEXT_ELEMENTS: &[&str] = &[
    "script",
    "style",
    "textarea",
    "title",
    "xmp",
    "iframe",
    "noembed",
    "noframes",
    "plaintext",
];

/// Elements that close themselves when a sibling of the same name opens.
const SELF_SIBLING_CLOSING: &[&str] = &["p", "li", "dt", "dd", "option", "tr", "td", "th"];

/// Keeps element nesting within [`MAX_NESTING`]: a start tag past the cap is preceded
/// by an end tag for the deepest open element, so it opens as a sibling; all content
/// is kept. A light scan, not a parser: it tracks
/// start and end tags, void elements, raw text and the commonest implied end tags,
/// which is enough to tell pathological nesting from real pages. Returns the input
/// unchanged (borrowed) when nothing is that deep.
fn cap_nesting(html: &str) -> Cow<'_, str> {
    let bytes = html.as_bytes();
    let len = bytes.len();
    let mut stack: Vec<String> = Vec::new();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while let Some(off) = bytes[i..].iter().position(|&b| b == b'<') {
        let lt = i + off;
        let rest = &bytes[lt..];
        if rest.starts_with(b"<!--") {
            i = find(&bytes[lt + 4..], b"-->").map_or(len, |e| lt + 4 + e + 3);
            continue;
        }
        if rest.starts_with(b"<!") || rest.starts_with(b"<?") {
            i = find(&bytes[lt..], b">").map_or(len, |e| lt + e + 1);
            continue;
        }
        let closing = rest.get(1) == Some(&b'/');
        let name_start = lt + 1 + usize::from(closing);
        if !bytes.get(name_start).is_some_and(u8::is_ascii_alphabetic) {
            i = lt + 1;
            continue;
        }
        let name_end = bytes[name_start..]
            .iter()
            .position(|b| b" \t\n\r\x0c/>".contains(b))
            .map_or(len, |p| name_start + p);
        let name = html[name_start..name_end].to_ascii_lowercase();
        // Find the closing `>`, skipping quoted attribute values.
        let mut j = name_end;
        let mut quote: Option<u8> = None;
        while j < len {
            match (quote, bytes[j]) {
                (Some(q), b) if b == q => quote = None,
                (None, b'"' | b'\'') => quote = Some(bytes[j]),
                (None, b'>') => break,
                _ => {}
            }
            j += 1;
        }
        let self_closing = j > name_end && bytes[j - 1] == b'/';
        i = (j + 1).min(len);
        if closing {
            if let Some(pos) = stack.iter().rposition(|n| *n == name) {
                stack.truncate(pos);
            }
            continue;
        }
        if RAW_TEXT_ELEMENTS.contains(&name.as_str()) {
            let end_tag = format!("</{name}");
            let lower_rest = bytes[i..].to_ascii_lowercase();
            i = find(&lower_rest, end_tag.as_bytes()).map_or(len, |e| i + e);
            continue;
        }
        if VOID_ELEMENTS.contains(&name.as_str()) || self_closing {
            continue;
        }
        while let Some(top) = stack.last()
            && ((*top == name && SELF_SIBLING_CLOSING.contains(&name.as_str()))
                || (top == "p" && BLOCK_ELEMENTS.contains(&name.as_str())))
        {
            stack.pop();
        }
        if stack.len() >= MAX_NESTING
            && let Some(top) = stack.pop()
        {
            // Like Blink: past the cap, a new element becomes a sibling of the
            // deepest one instead of its child.
            let out = out.get_or_insert_with(|| String::with_capacity(html.len() + 64));
            out.push_str(&html[copied..lt]);
            out.push_str("</");
            out.push_str(&top);
            out.push('>');
            copied = lt;
        }
        stack.push(name);
    }
    match out {
        None => Cow::Borrowed(html),
        Some(mut out) => {
            out.push_str(&html[copied..]);
            Cow::Owned(out)
        }
    }
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
    let encoding = Encoding::for_bom(body)
        .map(|(enc, _)| enc)
        .or_else(|| content_type.and_then(charset_from_content_type))
        .or_else(|| sniff_meta_charset(body))
        .unwrap_or(UTF_8);
    // `decode` honours a BOM and replaces malformed sequences (lossy).
    let (text, used, _) = encoding.decode(body);
    let html = Html::parse_document(&cap_nesting(&text));
    let mut collector = Collector::default();
    walk(&html, &mut collector);
    Ok(collector.finish(url, used.name()))
}

fn looks_like_html(body: &[u8]) -> bool {
    let start = &body[..body.len().min(CHARSET_SNIFF_BYTES)];
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

/// The encoding named by a label, with the HTML spec's overrides: a page cannot
/// declare UTF-16 in ASCII-compatible markup, so that label means UTF-8.
fn encoding_for_label(label: &str) -> Option<&'static Encoding> {
    let enc = Encoding::for_label(label.trim().trim_matches(['"', '\'']).as_bytes())?;
    if enc == encoding_rs::UTF_16LE || enc == encoding_rs::UTF_16BE {
        return Some(UTF_8);
    }
    if enc == encoding_rs::X_USER_DEFINED {
        return Some(WINDOWS_1252);
    }
    Some(enc)
}

fn charset_from_content_type(content_type: &str) -> Option<&'static Encoding> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| encoding_for_label(value))
            .flatten()
    })
}

/// Finds `charset=` inside a `<meta ...>` tag in the first 1024 bytes: covers both
/// `<meta charset="x">` and `<meta http-equiv="content-type" content="...; charset=x">`.
fn sniff_meta_charset(body: &[u8]) -> Option<&'static Encoding> {
    let head = &body[..body.len().min(CHARSET_SNIFF_BYTES)];
    let lower: Vec<u8> = head.to_ascii_lowercase();
    let mut pos = 0;
    while let Some(found) = find(&lower[pos..], b"<meta") {
        let start = pos + found + 5;
        let end = find(&lower[start..], b">").map_or(lower.len(), |e| start + e);
        let tag = &lower[start..end];
        if let Some(c) = find(tag, b"charset") {
            let rest = &tag[c + 7..];
            let rest = trim_ascii_start(rest);
            if let Some(rest) = rest.strip_prefix(b"=") {
                let rest = trim_ascii_start(rest);
                let rest = rest
                    .strip_prefix(b"\"")
                    .or_else(|| rest.strip_prefix(b"'"))
                    .unwrap_or(rest);
                let len = rest
                    .iter()
                    .position(|b| !(b.is_ascii_alphanumeric() || b"-_:.".contains(b)))
                    .unwrap_or(rest.len());
                if let Some(enc) = std::str::from_utf8(&rest[..len])
                    .ok()
                    .and_then(encoding_for_label)
                {
                    return Some(enc);
                }
            }
        }
        pos = end;
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn trim_ascii_start(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
    &b[n..]
}

/// Whitespace-folding text buffer with a byte cap.
#[derive(Debug, Default)]
struct TextBuf {
    buf: String,
    pending_space: bool,
    cap: usize,
    full: bool,
}

impl TextBuf {
    fn with_cap(cap: usize) -> TextBuf {
        TextBuf {
            cap,
            ..TextBuf::default()
        }
    }

    fn push(&mut self, s: &str) {
        if self.full {
            return;
        }
        for c in s.chars() {
            if c.is_whitespace() {
                self.pending_space = true;
                continue;
            }
            let extra = c.len_utf8() + usize::from(self.pending_space);
            if self.buf.len() + extra > self.cap {
                self.full = true;
                return;
            }
            if self.pending_space && !self.buf.is_empty() {
                self.buf.push(' ');
            }
            self.pending_space = false;
            self.buf.push(c);
        }
    }

    fn separate(&mut self) {
        self.pending_space = true;
    }

    fn into_string(self) -> String {
        self.buf
    }
}

fn cap_chars(s: String, max: usize) -> String {
    match truncate_chars(&s, max) {
        cut if cut.len() < s.len() => cut.trim_end().to_owned(),
        _ => s,
    }
}

struct RawLink {
    href: String,
    text: TextBuf,
    nofollow: bool,
}

#[derive(Default)]
struct Collector {
    text: Option<TextBuf>,
    title: Option<String>,
    title_buf: Option<TextBuf>,
    /// Depth of `<head>` elements open: text there is not visible.
    in_head: u32,
    heading: Option<TextBuf>,
    headings: Vec<String>,
    anchor: Option<RawLink>,
    raw_links: Vec<RawLink>,
    base_href: Option<String>,
    canonical: Option<String>,
    description: Option<String>,
    robots: RobotsDirectives,
    lang: Option<String>,
}

impl Collector {
    fn text(&mut self) -> &mut TextBuf {
        self.text
            .get_or_insert_with(|| TextBuf::with_cap(MAX_TEXT_BYTES))
    }

    /// Called when entering a node; returns whether to walk its children.
    fn open(&mut self, node: &Node) -> bool {
        match node {
            Node::Text(t) => {
                if let Some(title) = &mut self.title_buf {
                    title.push(t);
                    return false;
                }
                if let Some(h) = &mut self.heading {
                    h.push(t);
                }
                if let Some(a) = &mut self.anchor {
                    a.text.push(t);
                }
                if self.in_head == 0 {
                    self.text().push(t);
                }
                false
            }
            Node::Element(el) => {
                let name = el.name();
                if SKIPPED_ELEMENTS.contains(&name) {
                    return false;
                }
                if BLOCK_ELEMENTS.contains(&name) {
                    self.text().separate();
                    if let Some(a) = &mut self.anchor {
                        a.text.separate();
                    }
                }
                match name {
                    "html" if self.lang.is_none() => {
                        self.lang = el
                            .attr("lang")
                            .map(str::trim)
                            .filter(|l| !l.is_empty() && l.len() <= 35)
                            .map(str::to_owned);
                    }
                    "head" => self.in_head += 1,
                    "title" if self.title.is_none() && self.title_buf.is_none() => {
                        self.title_buf = Some(TextBuf::with_cap(MAX_TITLE_CHARS * 4));
                    }
                    "base" if self.base_href.is_none() => {
                        self.base_href = el.attr("href").map(str::to_owned);
                    }
                    "meta" => self.meta(el),
                    "link" => {
                        let canonical = el.attr("rel").is_some_and(|rel| {
                            rel.split_whitespace()
                                .any(|r| r.eq_ignore_ascii_case("canonical"))
                        });
                        if canonical && self.canonical.is_none() {
                            self.canonical = el.attr("href").map(str::to_owned);
                        }
                    }
                    "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                        self.heading = Some(TextBuf::with_cap(MAX_HEADING_CHARS * 4));
                    }
                    "a" => {
                        self.end_anchor();
                        if let Some(href) = el.attr("href")
                            && self.raw_links.len() < MAX_RAW_LINKS
                        {
                            let nofollow = el.attr("rel").is_some_and(|rel| {
                                rel.split_whitespace().any(|r| {
                                    ["nofollow", "ugc", "sponsored"]
                                        .iter()
                                        .any(|n| r.eq_ignore_ascii_case(n))
                                })
                            });
                            self.anchor = Some(RawLink {
                                href: href.to_owned(),
                                text: TextBuf::with_cap(MAX_ANCHOR_CHARS * 4),
                                nofollow,
                            });
                        }
                    }
                    "img" => {
                        if let (Some(a), Some(alt)) = (&mut self.anchor, el.attr("alt")) {
                            a.text.push(alt);
                        }
                    }
                    _ => {}
                }
                true
            }
            Node::Document | Node::Fragment => true,
            _ => false,
        }
    }

    fn close(&mut self, node: &Node) {
        let Node::Element(el) = node else { return };
        let name = el.name();
        if SKIPPED_ELEMENTS.contains(&name) {
            return;
        }
        if BLOCK_ELEMENTS.contains(&name) {
            self.text().separate();
        }
        match name {
            "head" => self.in_head = self.in_head.saturating_sub(1),
            "title" => {
                if let Some(buf) = self.title_buf.take() {
                    self.title = Some(cap_chars(buf.into_string(), MAX_TITLE_CHARS));
                }
            }
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                if let Some(h) = self.heading.take() {
                    let h = cap_chars(h.into_string(), MAX_HEADING_CHARS);
                    if !h.is_empty() && self.headings.len() < MAX_HEADINGS {
                        self.headings.push(h);
                    }
                }
            }
            "a" => self.end_anchor(),
            _ => {}
        }
    }

    fn end_anchor(&mut self) {
        if let Some(a) = self.anchor.take() {
            self.raw_links.push(a);
        }
    }

    fn meta(&mut self, el: &scraper::node::Element) {
        let Some(name) = el.attr("name") else { return };
        let content = el.attr("content").unwrap_or_default();
        match name.trim().to_ascii_lowercase().as_str() {
            "description" if self.description.is_none() => {
                let d = cap_chars(fold_whitespace(content), MAX_DESCRIPTION_CHARS);
                if !d.is_empty() {
                    self.description = Some(d);
                }
            }
            "robots" => {
                self.robots = self.robots.union(RobotsDirectives::parse(content));
            }
            _ => {}
        }
    }

    fn finish(mut self, url: &Url, charset: &str) -> ExtractedPage {
        self.end_anchor();
        if let Some(buf) = self.title_buf.take() {
            self.title = Some(cap_chars(buf.into_string(), MAX_TITLE_CHARS));
        }
        // `<base href>` may be relative to the page URL; a bad one is ignored.
        let base = self
            .base_href
            .as_deref()
            .and_then(|b| url.join(b.trim()).ok())
            .filter(|b| matches!(b.scheme(), "http" | "https"))
            .unwrap_or_else(|| url.clone());
        let mut seen = HashSet::new();
        let mut links = Vec::new();
        for raw in self.raw_links {
            if links.len() >= MAX_LINKS {
                break;
            }
            let href = raw.href.trim();
            if href.is_empty() || href.starts_with('#') {
                continue;
            }
            let Ok(target) = normalize(href, Some(&base)) else {
                continue;
            };
            if seen.insert(target.as_str().to_owned()) {
                links.push(Link {
                    url: target,
                    anchor: cap_chars(raw.text.into_string(), MAX_ANCHOR_CHARS),
                    nofollow: raw.nofollow,
                });
            }
        }
        let canonical = self
            .canonical
            .as_deref()
            .and_then(|c| normalize(c, Some(&base)).ok());
        let title = self.title.unwrap_or_default();
        let text = self.text.map(TextBuf::into_string).unwrap_or_default();
        let content_hash = content_hash(&title, &text);
        ExtractedPage {
            title,
            description: self.description,
            text,
            headings: self.headings,
            links,
            canonical,
            robots: self.robots,
            lang: self.lang,
            charset: charset.to_owned(),
            content_hash,
        }
    }
}

/// Hex SHA-256 of `title + "\n" + text`.
pub fn content_hash(title: &str, text: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(title.as_bytes());
    hasher.update(b"\n");
    hasher.update(text.as_bytes());
    hex::encode(hasher.finalize())
}

/// Walks the tree in document order without recursion, calling `open` on entry and
/// `close` on exit of every node; children are skipped when `open` returns false.
fn walk(html: &Html, collector: &mut Collector) {
    let root = html.tree.root();
    let mut current = root.first_child();
    while let Some(node) = current {
        if collector.open(node.value())
            && let Some(child) = node.first_child()
        {
            current = Some(child);
            continue;
        }
        let mut n = node;
        current = loop {
            collector.close(n.value());
            if let Some(sibling) = n.next_sibling() {
                break Some(sibling);
            }
            match n.parent() {
                Some(parent) if parent.id() != root.id() => n = parent,
                _ => break None,
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page_url() -> Url {
        Url::parse("http://example.com/dir/page.html").unwrap()
    }

    const FULL_PAGE: &str = r##"<!doctype html>
<html lang="en-GB">
<head>
  <meta charset="utf-8">
  <title>  Rust   async
     book </title>
  <meta name="description" content="  All about   async Rust ">
  <meta name="robots" content="noindex">
  <link rel="canonical" href="/canonical">
  <base href="http://example.com/base/">
  <style>body { color: red }</style>
  <script>var hidden = "script text";</script>
</head>
<body>
  <h1>Getting started</h1>
  <p>Futures are <b>lazy</b>.</p><p>Second paragraph</p>
  <noscript>enable js</noscript>
  <template><p>template text</p></template>
  <svg><text>svg text</text></svg>
  <h2>Links   here</h2>
  <a href="relative.html">Relative   link</a>
  <a href="/abs?utm_source=x">Absolute</a>
  <a href="http://other.example/" rel="nofollow noopener">Other site</a>
  <a href="javascript:alert(1)">js</a>
  <a href="mailto:a@example.com">mail</a>
  <a href="#top">top</a>
  <a href="relative.html">duplicate</a>
  <a href="img.html"><img src="x.png" alt="Picture link"></a>
</body>
</html>"##;

    #[test]
    fn extracts_every_field() {
        let page = extract(
            FULL_PAGE.as_bytes(),
            Some("text/html; charset=utf-8"),
            &page_url(),
        )
        .unwrap();
        assert_eq!(page.title, "Rust async book");
        assert_eq!(page.description.as_deref(), Some("All about async Rust"));
        assert_eq!(page.lang.as_deref(), Some("en-GB"));
        assert_eq!(page.charset, "UTF-8");
        assert!(page.robots.noindex);
        assert!(!page.robots.nofollow);
        assert_eq!(
            page.canonical.as_ref().map(|c| c.as_str()),
            Some("http://example.com/canonical")
        );
        assert_eq!(page.headings, vec!["Getting started", "Links here"]);
        assert!(page.text.contains("Futures are lazy. Second paragraph"));
        for hidden in [
            "script text",
            "color: red",
            "enable js",
            "template text",
            "svg text",
            "Rust async book",
        ] {
            assert!(!page.text.contains(hidden), "{hidden:?} in {:?}", page.text);
        }
        let links: Vec<(&str, &str, bool)> = page
            .links
            .iter()
            .map(|l| (l.url.as_str(), l.anchor.as_str(), l.nofollow))
            .collect();
        assert_eq!(
            links,
            vec![
                (
                    "http://example.com/base/relative.html",
                    "Relative link",
                    false
                ),
                ("http://example.com/abs", "Absolute", false),
                ("http://other.example/", "Other site", true),
                ("http://example.com/base/img.html", "Picture link", false),
            ]
        );
        assert_eq!(page.content_hash, content_hash(&page.title, &page.text));
        assert_eq!(page.content_hash.len(), 64);
    }

    #[test]
    fn decodes_windows_1252_from_the_header_and_from_meta() {
        // "café – naïve" in windows-1252.
        let body: &[u8] =
            b"<html><head><title>caf\xe9</title></head><body>\x96 na\xefve</body></html>";
        let page = extract(body, Some("text/html; charset=windows-1252"), &page_url()).unwrap();
        assert_eq!(page.title, "café");
        assert_eq!(page.text, "– naïve");
        assert_eq!(page.charset, "windows-1252");

        let body: &[u8] = b"<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=ISO-8859-1\"><title>caf\xe9</title></head></html>";
        let page = extract(body, Some("text/html"), &page_url()).unwrap();
        assert_eq!(page.title, "café");
        assert_eq!(page.charset, "windows-1252");

        let body: &[u8] = b"<meta charset='windows-1252'><title>\xe9t\xe9</title>";
        let page = extract(body, None, &page_url()).unwrap();
        assert_eq!(page.title, "été");
    }

    #[test]
    fn invalid_utf8_is_decoded_lossily() {
        let body: &[u8] = b"<title>a\xffb</title>";
        let page = extract(body, Some("text/html"), &page_url()).unwrap();
        assert_eq!(page.title, "a\u{fffd}b");
        assert_eq!(page.charset, "UTF-8");
    }

    #[test]
    fn deeply_nested_malformed_html_does_not_crash() {
        let depth = 100_000;
        let mut html = String::with_capacity(depth * 6 + 100);
        html.push_str("<html><body>");
        for _ in 0..depth {
            html.push_str("<div>");
        }
        html.push_str("deep text <a href=/x>deep link</a><span><b><i>");
        // No closing tags at all.
        let page = extract(html.as_bytes(), Some("text/html"), &page_url()).unwrap();
        assert!(page.text.contains("deep text"), "{}", &page.text);
        assert_eq!(page.links.len(), 1);
        assert_eq!(page.links[0].anchor, "deep link");
    }

    #[test]
    fn nesting_cap_keeps_real_pages_intact() {
        assert!(matches!(cap_nesting(FULL_PAGE), Cow::Borrowed(_)));
        let list: String = (0..5000).map(|i| format!("<li>item {i}<p>para")).collect();
        let html = format!("<ul>{list}</ul>");
        assert!(matches!(cap_nesting(&html), Cow::Borrowed(_)));
        let deep = format!(
            "{}x<script>if (a < b) {{}}</script>",
            "<div class='a>b'>".repeat(1000)
        );
        let capped = cap_nesting(&deep);
        assert_eq!(capped.matches("</div>").count(), 1000 - MAX_NESTING);
        assert!(capped.ends_with("x<script>if (a < b) {}</script>"));
    }

    #[test]
    fn script_in_title_is_literal_text() {
        let body =
            "<html><head><title><script>alert(1)</script></title></head><body>x</body></html>";
        let page = extract(body.as_bytes(), Some("text/html"), &page_url()).unwrap();
        assert_eq!(page.title, "<script>alert(1)</script>");
        assert_eq!(page.text, "x");
    }

    #[test]
    fn non_html_is_refused() {
        for ct in [
            "application/pdf",
            "image/png",
            "text/plain",
            "application/json",
        ] {
            assert!(matches!(
                extract(b"<html></html>", Some(ct), &page_url()),
                Err(Error::NotHtml(_))
            ));
        }
        assert!(matches!(
            extract(b"%PDF-1.4", None, &page_url()),
            Err(Error::NotHtml(_))
        ));
        assert!(extract(b"<p>x", Some("application/xhtml+xml"), &page_url()).is_ok());
    }

    #[test]
    fn links_are_capped() {
        let mut html = String::from("<body>");
        for i in 0..(MAX_LINKS + 100) {
            html.push_str(&format!("<a href=\"/p{i}\">p{i}</a>"));
        }
        let page = extract(html.as_bytes(), Some("text/html"), &page_url()).unwrap();
        assert_eq!(page.links.len(), MAX_LINKS);
    }

    #[test]
    fn text_and_title_are_capped() {
        let long_title = "t".repeat(MAX_TITLE_CHARS * 3);
        let long_text = "word ".repeat(MAX_TEXT_BYTES / 4);
        let html = format!("<title>{long_title}</title><body><p>{long_text}</p>");
        let page = extract(html.as_bytes(), Some("text/html"), &page_url()).unwrap();
        assert_eq!(page.title.chars().count(), MAX_TITLE_CHARS);
        assert!(page.text.len() <= MAX_TEXT_BYTES);
        assert!(page.text.len() > MAX_TEXT_BYTES - 10);
    }

    #[test]
    fn robots_directives_parse() {
        assert_eq!(
            RobotsDirectives::parse("NOINDEX, follow"),
            RobotsDirectives {
                noindex: true,
                nofollow: false
            }
        );
        assert_eq!(
            RobotsDirectives::parse("none"),
            RobotsDirectives {
                noindex: true,
                nofollow: true
            }
        );
        let x = RobotsDirectives::from_x_robots_tag(
            &[
                "googlebot: noindex",
                "peersearch: nofollow",
                "unavailable_after: 2020",
            ],
            "peersearch",
        );
        assert_eq!(
            x,
            RobotsDirectives {
                noindex: false,
                nofollow: true
            }
        );
        assert!(RobotsDirectives::from_x_robots_tag(&["noindex"], "peersearch").noindex);
    }

    #[test]
    fn identical_content_hashes_equal() {
        let a = extract(
            b"<title>T</title><p>same  text</p>",
            Some("text/html"),
            &page_url(),
        )
        .unwrap();
        let b = extract(
            b"<html><title>T</title><body><p>same text</p></body></html>",
            Some("text/html"),
            &page_url(),
        )
        .unwrap();
        assert_eq!(a.content_hash, b.content_hash);
    }
}
