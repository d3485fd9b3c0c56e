//! Text primitives: which elements hold no visible text, which separate words, and a
//! whitespace-folding buffer with a byte cap.

use crate::util::truncate_chars;

/// Elements whose content is never visible text; their subtrees are not walked.
pub(super) const SKIPPED_ELEMENTS: &[&str] = &[
    "script", "style", "noscript", "template", "svg", "math", "iframe", "object", "canvas",
];

/// Elements that separate words (so `<p>a</p><p>b</p>` reads "a b", not "ab").
pub(super) const BLOCK_ELEMENTS: &[&str] = &[
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

/// Whitespace-folding text buffer with a byte cap.
#[derive(Debug, Default)]
pub(super) struct TextBuf {
    buf: String,
    pending_space: bool,
    cap: usize,
    full: bool,
}

impl TextBuf {
    pub(super) fn with_cap(cap: usize) -> TextBuf {
        TextBuf {
            cap,
            ..TextBuf::default()
        }
    }

    pub(super) fn push(&mut self, s: &str) {
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

    pub(super) fn separate(&mut self) {
        self.pending_space = true;
    }

    pub(super) fn into_string(self) -> String {
        self.buf
    }
}

pub(super) fn cap_chars(s: String, max: usize) -> String {
    match truncate_chars(&s, max) {
        cut if cut.len() < s.len() => cut.trim_end().to_owned(),
        _ => s,
    }
}
