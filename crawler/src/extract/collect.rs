//! One pass over the page's events that gathers every field of [`ExtractedPage`]:
//! metadata from `<head>`, main text and chrome text by the regions the main-content
//! analysis marked, headings of the main content, and the links of the whole page.

use scraper::node::Element;
use url::Url;

use super::directives::RobotsDirectives;
use super::dom::{Dom, Event};
use super::links::{self, RawLink};
use super::main_content::{Region, Regions};
use super::text::{BLOCK_ELEMENTS, SKIPPED_ELEMENTS, TextBuf, cap_chars};
use super::{
    ExtractedPage, MAX_DESCRIPTION_CHARS, MAX_HEADINGS, MAX_TEXT_BYTES, MAX_TITLE_CHARS,
    content_hash,
};
use crate::util::fold_whitespace;

/// Characters kept per heading.
const MAX_HEADING_CHARS: usize = 512;

/// `<a>` elements looked at per page before giving up (bounds normalization work).
const MAX_RAW_LINKS: usize = 10 * super::MAX_LINKS;

struct Collector {
    text: TextBuf,
    chrome: TextBuf,
    /// The region of the innermost open element, and of each enclosing one.
    region: Region,
    region_stack: Vec<Region>,
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

/// Builds the page from `dom`, its main content marked by `regions`.
pub(super) fn collect(dom: &Dom, regions: &Regions, url: &Url, charset: &str) -> ExtractedPage {
    let mut c = Collector {
        text: TextBuf::with_cap(MAX_TEXT_BYTES),
        chrome: TextBuf::with_cap(MAX_TEXT_BYTES),
        region: regions.initial,
        region_stack: Vec::new(),
        title: None,
        title_buf: None,
        in_head: 0,
        heading: None,
        headings: Vec::new(),
        anchor: None,
        raw_links: Vec::new(),
        base_href: None,
        canonical: None,
        description: None,
        robots: RobotsDirectives::default(),
        lang: None,
    };
    for event in &dom.events {
        match *event {
            Event::Text(t) => c.text_node(t),
            Event::Open(id) => {
                c.region_stack.push(c.region);
                if let Some(region) = regions.marks[id as usize] {
                    c.region = region;
                }
                c.open(dom.elements[id as usize].el);
            }
            Event::Close(id) => {
                c.close(dom.name(id));
                if let Some(region) = c.region_stack.pop() {
                    c.region = region;
                }
            }
        }
    }
    c.finish(url, charset)
}

impl Collector {
    fn body(&mut self) -> &mut TextBuf {
        match self.region {
            Region::Main => &mut self.text,
            Region::Chrome => &mut self.chrome,
        }
    }

    fn text_node(&mut self, t: &str) {
        if let Some(title) = &mut self.title_buf {
            title.push(t);
            return;
        }
        if let Some(h) = &mut self.heading {
            h.push(t);
        }
        if let Some(a) = &mut self.anchor {
            a.text.push(t);
        }
        if self.in_head == 0 {
            self.body().push(t);
        }
    }

    fn open(&mut self, el: &Element) {
        let name = el.name();
        if SKIPPED_ELEMENTS.contains(&name) {
            return;
        }
        if BLOCK_ELEMENTS.contains(&name) {
            self.text.separate();
            self.chrome.separate();
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
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" if self.region == Region::Main => {
                self.heading = Some(TextBuf::with_cap(MAX_HEADING_CHARS * 4));
            }
            "a" => {
                self.end_anchor();
                if let Some(href) = el.attr("href")
                    && self.raw_links.len() < MAX_RAW_LINKS
                {
                    self.anchor = Some(RawLink::new(href, el.attr("rel")));
                }
            }
            "img" => {
                if let (Some(a), Some(alt)) = (&mut self.anchor, el.attr("alt")) {
                    a.text.push(alt);
                }
            }
            _ => {}
        }
    }

    fn close(&mut self, name: &str) {
        if SKIPPED_ELEMENTS.contains(&name) {
            return;
        }
        if BLOCK_ELEMENTS.contains(&name) {
            self.text.separate();
            self.chrome.separate();
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

    fn meta(&mut self, el: &Element) {
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
        let links = links::resolve(self.raw_links, &base);
        let canonical = self
            .canonical
            .as_deref()
            .and_then(|c| crate::normalize::normalize(c, Some(&base)).ok());
        let title = self.title.unwrap_or_default();
        let text = self.text.into_string();
        let content_hash = content_hash(&title, &text);
        ExtractedPage {
            title,
            description: self.description,
            text,
            chrome: self.chrome.into_string(),
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
