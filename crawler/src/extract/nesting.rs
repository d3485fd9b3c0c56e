//! A light pre-parse scan that bounds what html5ever is quadratic in before it sees the
//! page: element nesting and attributes per tag.

use std::borrow::Cow;

use super::charset::find;
use super::text::BLOCK_ELEMENTS;

/// Deepest element nesting passed to the parser. html5ever's tree builder scans the
/// stack of open elements for every start tag, so 100 000 unclosed `<div>`s cost
/// O(n²) (minutes); Blink caps its DOM depth at 512 for the same reason. No real page
/// nests anywhere near 256 elements.
pub const MAX_NESTING: usize = 256;

/// Most attributes kept per tag. html5ever compares every new attribute of a tag with
/// all the earlier ones (duplicates are dropped), so one tag with 500 000 attributes
/// costs O(n²) (minutes); real elements carry a few dozen at most. Attributes past the
/// cap are dropped.
pub const MAX_ATTRIBUTES: usize = 512;

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

/// Drops the attributes of a tag past [`MAX_ATTRIBUTES`], and keeps element nesting
/// within [`MAX_NESTING`]: a start tag past the cap is preceded
/// by an end tag for the deepest open element, so it opens as a sibling; all content
/// is kept. A light scan, not a parser: it tracks
/// start and end tags, void elements, raw text and the commonest implied end tags,
/// which is enough to tell pathological nesting from real pages. Returns the input
/// unchanged (borrowed) when nothing is that deep.
pub(super) fn cap_nesting(html: &str) -> Cow<'_, str> {
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
        // Find the closing `>`, skipping quoted attribute values, and where the
        // attribute past the cap starts. An attribute starts after whitespace, a `/`
        // or a closing quote (html5ever's states), so this overcounts at worst.
        let mut j = name_end;
        let mut quote: Option<u8> = None;
        let mut attributes = 0;
        let mut after_separator = true;
        let mut cut: Option<usize> = None;
        while j < len {
            let b = bytes[j];
            match (quote, b) {
                (Some(q), b) if b == q => {
                    quote = None;
                    after_separator = true;
                }
                (Some(_), _) => {}
                (None, b'>') => break,
                (None, b'"' | b'\'') => quote = Some(b),
                (None, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' | b'/') => after_separator = true,
                (None, b'=') => after_separator = false,
                (None, _) => {
                    if after_separator {
                        attributes += 1;
                        if attributes > MAX_ATTRIBUTES && cut.is_none() {
                            cut = Some(j);
                        }
                    }
                    after_separator = false;
                }
            }
            j += 1;
        }
        if let Some(cut) = cut {
            let out = out.get_or_insert_with(|| String::with_capacity(html.len()));
            out.push_str(&html[copied..cut]);
            copied = j;
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
