//! Which part of a page is its own content ("main") and which is chrome: navigation,
//! header, footer, sidebars, banners, cookie notices, hidden popups.
//!
//! # The method
//!
//! Linear passes over the flattened page ([`Dom`]), no recursion:
//!
//! 1. **Statistics** per element: visible characters (non-whitespace), characters inside
//!    links, commas, and "flow" characters (text not inside a nested block element, so
//!    a `<div>` used as a paragraph counts like a `<p>`).
//! 2. **Hints** per element: chrome by semantics (`nav`, `aside`, `footer`, `header`
//!    (an article's header is its title and byline), `figcaption`, ARIA landmarks such
//!    as `role=navigation`, form controls), hidden (`hidden`, `aria-hidden=true`, inline
//!    `display:none`: such text lands in the chrome, not nowhere, as scripts may show
//!    it), and class/id words
//!    (`sidebar`, `menu`, `breadcrumb`, `cookie`, `comment`, `share`, ... against
//!    `article`, `content`, `main`, ...).
//! 3. **Scoring**, after Readability: every paragraph-like element with at least
//!    [`MIN_PARAGRAPH_CHARS`] characters of text outside links gives points (1, plus
//!    its commas, plus one per 100 characters up to 3) to its parent, half to its
//!    grandparent and less to three more ancestors; an ancestor's total is weighed by
//!    its tag and class hints and scaled by `1 - link density`. Paragraphs inside
//!    chrome give nothing. As in Readability, a short winner (under
//!    [`SHORT_CANDIDATE_CHARS`]) is checked against the best candidate without class
//!    weights, and against a scoring that keeps paragraphs inside unlikely elements
//!    (a whole page may sit in `class="container with-sidebar"`).
//! 4. **The root** of the main content is the best-scored element, widened to the
//!    nearest enclosing `<main>`, `role=main` or `<article>` (so documentation keeps
//!    every section of its `<main>`), or, without a semantic container, joined by its
//!    siblings that score well or read as prose.
//! 5. **Pruning** inside the root: chrome by semantics or hints, and link-dense blocks
//!    (menus, tag lists, "related" link lists), unless they hold most of the root's text.
//!
//! Everything outside the root, and everything pruned, is chrome. When the result has
//! less than [`MIN_MAIN_CHARS`] characters (a tiny page, a page of links), the whole
//! page is main content and the chrome is empty. A page that marks its content with one
//! visible `<main>` (or `role=main`) has it there, pruned, however short: a home page whose
//! `<main>` says two lines is not about the words of its menu.

use super::dom::{Dom, ElementId, Event};

/// A paragraph scores only with at least this many characters of text outside links
/// (Readability's threshold: shorter blocks are captions, buttons, bylines).
const MIN_PARAGRAPH_CHARS: u32 = 25;

/// Below this many characters of main text, the page has no discernible main content
/// and all of its text is kept as main text.
const MIN_MAIN_CHARS: u32 = 25;

/// A top candidate with fewer characters than this is checked against the best one
/// by text alone (Readability's 500-character retry).
const SHORT_CANDIDATE_CHARS: u32 = 500;

/// Ancestors a paragraph's score reaches (Readability uses 5).
const SCORE_LEVELS: usize = 5;

/// A block inside the main content is chrome when more than this share of its text
/// is link text ...
const LINK_DENSE: f32 = 0.5;

/// ... and it has at least this many links ...
const LINK_DENSE_MIN_LINKS: u32 = 2;

/// ... and fewer characters than this outside links (prose with many links stays),
/// and no `<p>` (a paragraph of links, like a grammar rule, is still prose).
const LINK_DENSE_MAX_PLAIN_CHARS: u32 = 200;

/// A hinted (menu, sidebar, ...) element is never pruned when it holds at least this
/// share of the root's text: the hint then describes a wrapper, not chrome.
const PRUNE_MAX_SHARE: f32 = 0.5;

/// Where a piece of text belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Region {
    /// The page's own content: [`ExtractedPage::text`](super::ExtractedPage::text).
    Main,
    /// Navigation and the like: [`ExtractedPage::chrome`](super::ExtractedPage::chrome).
    Chrome,
}

/// The analysis: text is in `initial` until an element with a mark opens; the mark
/// holds for that element's subtree, until a nested mark.
pub(super) struct Regions {
    pub initial: Region,
    /// Per element, the region its subtree starts, or `None` to inherit.
    pub marks: Vec<Option<Region>>,
}

impl Regions {
    /// Everything is main content.
    fn whole_page(n: usize) -> Regions {
        Regions {
            initial: Region::Main,
            marks: vec![None; n],
        }
    }
}

/// What the tag and attributes of an element say about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Hint {
    #[default]
    None,
    /// Navigation, landmarks other than main, form controls, hidden elements.
    Chrome,
    /// Class or id words of chrome (`sidebar`, `menu`, `cookie`, ...).
    Unlikely,
    /// `<main>`, `role=main`, `<article>`, `itemprop=articleBody`.
    Container,
}

#[derive(Debug, Clone, Copy, Default)]
struct Stats {
    /// Visible non-whitespace characters of the subtree.
    chars: u32,
    /// Of which inside links.
    link_chars: u32,
    /// Characters not inside a nested block element (counted for the element itself
    /// and its inline descendants).
    flow_chars: u32,
    /// Of which inside links.
    flow_link_chars: u32,
    commas: u32,
    links: u32,
    /// `<p>` elements.
    paragraphs: u32,
    /// Elements in the subtree, itself included: its descendants are the ids
    /// `id + 1 .. id + size`.
    size: u32,
    hint: Hint,
    /// Inside a `<head>`, a link, an `<article>` or `<main>`; below chrome; below an
    /// unlikely element.
    in_head: bool,
    in_link: bool,
    in_container: bool,
    in_chrome: bool,
    in_unlikely: bool,
    /// Readability points received from paragraphs, when any.
    points: Option<f32>,
    /// Starting score by tag, and by class and id.
    tag_weight: f32,
    class_weight: f32,
}

impl Stats {
    /// Readability's score of a candidate: its points and weights, scaled by
    /// `1 - link density`; the class weight only `with_class`.
    fn score(&self, with_class: bool) -> Option<f32> {
        let weight = self.tag_weight + if with_class { self.class_weight } else { 0.0 };
        self.points
            .map(|points| (points + weight) * (1.0 - self.link_density()))
    }

    fn link_density(&self) -> f32 {
        if self.chars == 0 {
            0.0
        } else {
            self.link_chars as f32 / self.chars as f32
        }
    }
}

/// Elements that end a run of flow text: a `<div>` holding only inline content reads as
/// one paragraph, one with blocks inside does not.
const FLOW_BREAKING: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "dd",
    "details",
    "dialog",
    "div",
    "dl",
    "dt",
    "fieldset",
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
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "td",
    "th",
    "tr",
    "ul",
];

/// The page's one visible `<main>` (or `role=main`) element, if it has exactly one.
fn marked_main(dom: &Dom) -> Option<ElementId> {
    let mut found = dom.elements.iter().enumerate().filter(|(_, e)| {
        let main = e.el.name() == "main"
            || e.el
                .attr("role")
                .is_some_and(|r| r.trim().eq_ignore_ascii_case("main"));
        main && !matches!(hint(e.el), Hint::Chrome)
    });
    let (first, _) = found.next()?;
    if found.next().is_some() {
        return None;
    }
    ElementId::try_from(first).ok()
}

/// Classifies every element of `dom` as main content or chrome.
pub(super) fn classify(dom: &Dom) -> Regions {
    let n = dom.elements.len();
    if n == 0 {
        return Regions::whole_page(0);
    }
    let mut stats = statistics(dom);
    score(dom, &mut stats, true);
    let mut top = top_candidate(&stats);
    if top.is_none_or(|t| stats[t as usize].chars < SHORT_CANDIDATE_CHARS) {
        // Readability's retry: the article may sit in an element hinted unlikely
        // (`class="container with_sidebar"`).
        let mut again = stats.clone();
        score(dom, &mut again, false);
        let retry = top_candidate(&again);
        let chars = |t: Option<ElementId>, s: &[Stats]| t.map_or(0, |t| s[t as usize].chars);
        if chars(retry, &again) > chars(top, &stats) {
            stats = again;
            top = retry;
        }
    }
    // A page that marks its content (one visible `<main>` or `role=main`) has it there,
    // however short, and whatever paragraphs its menus hold: what the scores found is kept
    // only if it lies inside that element.
    let found = roots(dom, &stats, top);
    let roots = match marked_main(dom) {
        Some(main) => {
            let size = stats[main as usize].size;
            let inside = |r: ElementId| r >= main && r < main + size;
            if !found.is_empty() && found.iter().all(|&r| inside(r)) {
                found
            } else {
                vec![main]
            }
        }
        None => found,
    };
    let mut marks = vec![None; n];
    for &root in &roots {
        marks[root as usize] = Some(Region::Main);
        prune(dom, &stats, root, &mut marks);
    }
    let regions = Regions {
        initial: Region::Chrome,
        marks,
    };
    if marked_main(dom).is_some() || main_chars(dom, &regions) >= MIN_MAIN_CHARS {
        return regions;
    }
    Regions::whole_page(n)
}

/// Pass 1 and 2: statistics and hints of every element.
fn statistics(dom: &Dom) -> Vec<Stats> {
    let n = dom.elements.len();
    let mut stats = vec![Stats::default(); n];
    // Forward: inherited flags and hints, own text. Parents precede their children.
    let mut open: Vec<ElementId> = Vec::new();
    for event in &dom.events {
        match *event {
            Event::Open(id) => {
                let elem = &dom.elements[id as usize];
                let name = elem.el.name();
                let parent = elem.parent.map(|p| stats[p as usize]);
                let hint = hint(elem.el);
                let s = &mut stats[id as usize];
                s.hint = hint;
                s.size = 1;
                if let Some(p) = parent {
                    s.in_head = p.in_head;
                    s.in_link = p.in_link;
                    s.in_container = p.in_container;
                    s.in_chrome = p.in_chrome || p.hint == Hint::Chrome;
                    s.in_unlikely = p.in_unlikely || p.hint == Hint::Unlikely;
                }
                s.in_head |= name == "head";
                s.paragraphs = u32::from(name == "p");
                if name == "a" && elem.el.attr("href").is_some() {
                    s.in_link = true;
                    s.links = 1;
                }
                s.in_container |= hint == Hint::Container;
                open.push(id);
            }
            Event::Close(_) => {
                open.pop();
            }
            Event::Text(t) => {
                let Some(&id) = open.last() else { continue };
                let s = &mut stats[id as usize];
                if s.in_head {
                    continue;
                }
                let (chars, commas) = count(t);
                s.chars += chars;
                s.flow_chars += chars;
                s.commas += commas;
                if s.in_link {
                    s.link_chars += chars;
                    s.flow_link_chars += chars;
                }
            }
        }
    }
    // Backward: subtree totals. Children follow their parents, so by the time an element
    // is added to its parent, its own totals are complete.
    for id in (0..n).rev() {
        let Some(parent) = dom.elements[id].parent else {
            continue;
        };
        let child = stats[id];
        let flow = !FLOW_BREAKING.contains(&dom.name(id as ElementId));
        let p = &mut stats[parent as usize];
        p.chars += child.chars;
        p.link_chars += child.link_chars;
        p.commas += child.commas;
        p.links += child.links;
        p.paragraphs += child.paragraphs;
        p.size += child.size;
        if flow {
            p.flow_chars += child.flow_chars;
            p.flow_link_chars += child.flow_link_chars;
        }
    }
    stats
}

/// Non-whitespace characters and commas of a text.
fn count(t: &str) -> (u32, u32) {
    let mut chars = 0u32;
    let mut commas = 0u32;
    for c in t.chars() {
        if !c.is_whitespace() {
            chars += 1;
            // Latin, ideographic and Arabic commas.
            if matches!(c, ',' | '，' | '、' | '،') {
                commas += 1;
            }
        }
    }
    (chars, commas)
}

/// ARIA roles of landmarks and widgets that are not the page's content.
const CHROME_ROLES: &[&str] = &[
    "navigation",
    "banner",
    "contentinfo",
    "complementary",
    "search",
    "menu",
    "menubar",
    "dialog",
    "alertdialog",
    "toolbar",
    "tablist",
];

/// Tags whose content is chrome wherever they are.
const CHROME_TAGS: &[&str] = &[
    "nav",
    "aside",
    "footer",
    "dialog",
    "button",
    "select",
    "menu",
    "option",
    "input",
    "figcaption",
];

fn hint(el: &scraper::node::Element) -> Hint {
    let name = el.name();
    if el.attr("hidden").is_some()
        || el
            .attr("aria-hidden")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        || el.attr("style").is_some_and(hidden_by_style)
    {
        return Hint::Chrome;
    }
    let role = el.attr("role").map(|r| r.trim().to_ascii_lowercase());
    if let Some(role) = role.as_deref() {
        if role == "main" || role == "article" {
            return Hint::Container;
        }
        if CHROME_ROLES.contains(&role) {
            return Hint::Chrome;
        }
    }
    if CHROME_TAGS.contains(&name) || name == "header" {
        return Hint::Chrome;
    }
    if name == "main"
        || name == "article"
        || el
            .attr("itemprop")
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("articlebody"))
    {
        return Hint::Container;
    }
    if name == "body" || name == "html" {
        return Hint::None;
    }
    let mut unlikely = false;
    let mut maybe = false;
    for attr in [el.attr("class"), el.attr("id")].into_iter().flatten() {
        for word in attr
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
        {
            unlikely |= is_unlikely_word(word);
            maybe |= MAYBE_WORDS.iter().any(|m| word.eq_ignore_ascii_case(m));
        }
    }
    if unlikely && !maybe {
        Hint::Unlikely
    } else {
        Hint::None
    }
}

/// `display: none` or `visibility: hidden` in an inline style.
fn hidden_by_style(style: &str) -> bool {
    style.split(';').any(|declaration| {
        let Some((property, value)) = declaration.split_once(':') else {
            return false;
        };
        // `display: none !important` too.
        let property = property.trim();
        let value = value.split_whitespace().next().unwrap_or_default();
        (property.eq_ignore_ascii_case("display") && value.eq_ignore_ascii_case("none"))
            || (property.eq_ignore_ascii_case("visibility") && value.eq_ignore_ascii_case("hidden"))
    })
}

/// Class/id words that mark chrome, matched as prefixes of a word (`sidebar-left`,
/// `comments`, `navbar`).
const UNLIKELY_PREFIXES: &[&str] = &[
    "sidebar",
    "menu",
    "navbar",
    "navigation",
    "breadcrumb",
    "cookie",
    "consent",
    "gdpr",
    "footer",
    "masthead",
    "share",
    "sharing",
    "social",
    "related",
    "recommend",
    "promo",
    "advert",
    "sponsor",
    "newsletter",
    "subscri",
    "signup",
    "popup",
    "modal",
    "comment",
    "disqus",
    "pagination",
    "pager",
    "toolbar",
    "topbar",
    "widget",
    "banner",
    "outbrain",
    "taboola",
];

/// Class/id words that mark chrome only as whole words.
const UNLIKELY_WORDS: &[&str] = &["nav", "toc", "tags", "ad", "ads", "skip", "breadcrumbs"];

/// Class/id words that keep an element despite an unlikely word (`article-menu`?
/// unclear; `main-content-sidebar`? the content wins), as Readability does.
const MAYBE_WORDS: &[&str] = &["article", "body", "content", "main", "column"];

/// Whether a class/id word (any case) is one of chrome.
fn is_unlikely_word(word: &str) -> bool {
    UNLIKELY_WORDS.iter().any(|w| word.eq_ignore_ascii_case(w))
        || UNLIKELY_PREFIXES.iter().any(|p| {
            word.get(..p.len())
                .is_some_and(|start| start.eq_ignore_ascii_case(p))
        })
}

/// Class/id substrings that lower or raise an element's score as a candidate
/// (Readability's lists).
const NEGATIVE_SUBSTRINGS: &[&str] = &[
    "banner",
    "combx",
    "comment",
    "contact",
    "foot",
    "gdpr",
    "masthead",
    "media",
    "meta",
    "outbrain",
    "promo",
    "related",
    "scroll",
    "share",
    "shoutbox",
    "sidebar",
    "skyscraper",
    "sponsor",
    "shopping",
    "tags",
    "tool",
    "widget",
    "header",
    "menu",
    "nav",
];
const POSITIVE_SUBSTRINGS: &[&str] = &[
    "article", "body", "content", "entry", "hentry", "main", "page", "post", "text", "blog",
    "story",
];

/// Readability's class weight: -25 or +25 for each of class and id.
fn class_weight(el: &scraper::node::Element) -> f32 {
    let mut weight = 0.0;
    for attr in [el.attr("class"), el.attr("id")].into_iter().flatten() {
        let lower = attr.to_ascii_lowercase();
        if NEGATIVE_SUBSTRINGS.iter().any(|s| lower.contains(s)) {
            weight -= 25.0;
        }
        if POSITIVE_SUBSTRINGS.iter().any(|s| lower.contains(s)) {
            weight += 25.0;
        }
    }
    weight
}

/// Readability's starting score of a candidate, by tag.
fn tag_weight(name: &str) -> f32 {
    match name {
        "div" | "article" | "main" | "section" => 5.0,
        "pre" | "td" | "blockquote" => 3.0,
        "address" | "ol" | "ul" | "dl" | "dd" | "dt" | "li" | "form" => -3.0,
        "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "th" => -5.0,
        _ => 0.0,
    }
}

/// Elements never pruned as link-dense blocks: a paragraph of links is still prose.
const PARAGRAPH_TAGS: &[&str] = &["p", "pre", "td", "blockquote", "dd", "li"];

/// Pass 3: Readability scores of the ancestors of every paragraph.
/// Paragraphs inside unlikely elements are left out when `strip_unlikely`.
fn score(dom: &Dom, stats: &mut [Stats], strip_unlikely: bool) {
    for s in stats.iter_mut() {
        s.points = None;
    }
    for id in 0..stats.len() {
        let s = stats[id];
        if s.in_head
            || s.in_chrome
            || s.hint == Hint::Chrome
            || (strip_unlikely && (s.in_unlikely || s.hint == Hint::Unlikely))
        {
            continue;
        }
        let name = dom.name(id as ElementId);
        let is_p = name == "p" || name == "pre";
        let plain = if is_p {
            s.chars - s.link_chars
        } else {
            s.flow_chars - s.flow_link_chars
        };
        if plain < MIN_PARAGRAPH_CHARS {
            continue;
        }
        let points = 1.0 + s.commas as f32 + (plain / 100).min(3) as f32;
        // A `<div>` of text and blocks holds its text as Readability's rewritten
        // paragraphs would: as children. One of text only is a paragraph itself.
        let mixed = !is_p && s.chars > s.flow_chars;
        let mut ancestor = if mixed {
            Some(id as ElementId)
        } else {
            dom.elements[id].parent
        };
        for level in 0..SCORE_LEVELS {
            // The body and the root hold everything: never candidates.
            let Some(a) = ancestor.filter(|&a| !matches!(dom.name(a), "body" | "html")) else {
                break;
            };
            let a_stats = &mut stats[a as usize];
            if a_stats.points.is_none() {
                let el = dom.elements[a as usize].el;
                a_stats.tag_weight = tag_weight(el.name());
                a_stats.class_weight = class_weight(el);
            }
            let divider = match level {
                0 => 1.0,
                1 => 2.0,
                l => l as f32 * 3.0,
            };
            a_stats.points = Some(a_stats.points.unwrap_or(0.0) + points / divider);
            ancestor = dom.elements[a as usize].parent;
        }
    }
}

/// The best-scored candidate.
fn top_candidate(stats: &[Stats]) -> Option<ElementId> {
    let best = |with_class: bool| {
        (0..stats.len())
            .filter_map(|id| {
                let s = &stats[id];
                s.score(with_class)
                    .filter(|_| !s.in_chrome && s.hint != Hint::Chrome)
                    .map(|score| (id as ElementId, score))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(id, _)| id)
    };
    // Readability retries without class weights when the winner is short: a title
    // block in `class="content-title"` must not beat the article.
    match best(true) {
        Some(t) if stats[t as usize].chars < SHORT_CANDIDATE_CHARS => best(false)
            .filter(|&u| stats[u as usize].chars > stats[t as usize].chars)
            .or(Some(t)),
        top => top,
    }
}

/// Pass 4: the roots of the main content.
fn roots(dom: &Dom, stats: &[Stats], top: Option<ElementId>) -> Vec<ElementId> {
    let body = (0..dom.elements.len() as ElementId).find(|&id| dom.name(id) == "body");
    let Some(top) = top else {
        // No paragraph anywhere: the semantic container if there is one (outermost),
        // else the body, pruned.
        let mains: Vec<ElementId> = (0..dom.elements.len() as ElementId)
            .filter(|&id| {
                stats[id as usize].hint == Hint::Container && !stats[id as usize].in_container
            })
            .collect();
        return match mains.as_slice() {
            [only] => vec![*only],
            _ => vec![body.unwrap_or(0)],
        };
    };
    // The nearest semantic container around the top candidate holds the whole content.
    let mut a = Some(top);
    while let Some(id) = a {
        if stats[id as usize].hint == Hint::Container {
            return vec![id];
        }
        a = dom.elements[id as usize].parent;
    }
    // A top candidate above a semantic container (a wrapper of `<main>` and a sidebar):
    // the container when it holds most of the candidate's text.
    let t = stats[top as usize];
    let end = top + t.size;
    if let Some(c) = (top + 1..end).find(|&id| {
        let s = &stats[id as usize];
        s.hint == Hint::Container && !s.in_chrome && s.chars as f32 >= 0.5 * t.chars as f32
    }) {
        return vec![c];
    }
    // Readability: a lone child stands for its parent.
    let mut top = top;
    while let Some(parent) = dom.elements[top as usize].parent {
        let p = &stats[parent as usize];
        if p.size != stats[top as usize].size + 1 || Some(parent) == body {
            break;
        }
        top = parent;
    }
    // Siblings that score well or read as prose join the top candidate.
    let Some(parent) = dom.elements[top as usize].parent else {
        return vec![top];
    };
    let top_score = stats[top as usize].score(true).unwrap_or(0.0);
    let threshold = (top_score * 0.2).max(10.0);
    let mut roots = Vec::new();
    let p_end = parent + stats[parent as usize].size;
    let mut id = parent + 1;
    while id < p_end {
        let s = &stats[id as usize];
        let sibling_end = id + s.size;
        let joins = id == top
            || (!s.in_chrome
                && !matches!(s.hint, Hint::Chrome | Hint::Unlikely)
                && (s.score(true).is_some_and(|sc| sc >= threshold)
                    || reads_as_prose(dom, stats, id)));
        if joins {
            roots.push(id);
        }
        id = sibling_end;
    }
    roots
}

/// Readability's test for a sibling paragraph: long with few links, or short without
/// links and ending a sentence.
fn reads_as_prose(dom: &Dom, stats: &[Stats], id: ElementId) -> bool {
    if dom.name(id) != "p" {
        return false;
    }
    let s = &stats[id as usize];
    let ld = s.link_density();
    (s.chars > 80 && ld < 0.25) || (s.chars > 0 && ld == 0.0 && s.commas > 0)
}

/// Blocks that can be link-dense chrome: containers, not paragraphs, headings or inline
/// elements (a `<code>` made of two links is part of its sentence).
fn is_block_container(name: &str) -> bool {
    FLOW_BREAKING.contains(&name)
        && !PARAGRAPH_TAGS.contains(&name)
        && !matches!(name, "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "dt")
}

/// Pass 5: marks chrome inside `root`.
fn prune(dom: &Dom, stats: &[Stats], root: ElementId, marks: &mut [Option<Region>]) {
    let r = stats[root as usize];
    let end = root + r.size;
    let mut id = root + 1;
    while id < end {
        let s = &stats[id as usize];
        let big = s.chars as f32 >= PRUNE_MAX_SHARE * r.chars as f32 && s.chars > 0;
        let hinted = matches!(s.hint, Hint::Chrome | Hint::Unlikely) && !big;
        let link_dense = s.links >= LINK_DENSE_MIN_LINKS
            && s.link_density() > LINK_DENSE
            && s.chars - s.link_chars < LINK_DENSE_MAX_PLAIN_CHARS
            && is_block_container(dom.name(id))
            && s.paragraphs == 0
            && !big;
        if hinted || link_dense {
            marks[id as usize] = Some(Region::Chrome);
            // Its subtree is chrome: skip it.
            id += s.size;
        } else {
            id += 1;
        }
    }
}

/// Characters of main text `regions` gives, counted as the collector will.
fn main_chars(dom: &Dom, regions: &Regions) -> u32 {
    let mut region = regions.initial;
    let mut stack = Vec::new();
    let mut in_head = 0u32;
    let mut total = 0u32;
    for event in &dom.events {
        match *event {
            Event::Open(id) => {
                stack.push(region);
                if let Some(r) = regions.marks[id as usize] {
                    region = r;
                }
                in_head += u32::from(dom.name(id) == "head");
            }
            Event::Close(id) => {
                in_head = in_head.saturating_sub(u32::from(dom.name(id) == "head"));
                region = stack.pop().unwrap_or(region);
            }
            Event::Text(t) => {
                if region == Region::Main && in_head == 0 {
                    total += count(t).0;
                }
            }
        }
    }
    total
}
