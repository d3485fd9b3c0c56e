//! Main content against chrome, on small hand-written pages whose main content is
//! known: the main text holds it and none of the chrome, the chrome holds the menus,
//! and the links of the menus are still extracted.

use std::time::{Duration, Instant};

use scraper::{Html, Selector};
use url::Url;

use crate::extract::{ExtractedPage, extract};
use crate::util::fold_whitespace;

fn url() -> Url {
    Url::parse("http://example.com/dir/page.html").unwrap()
}

fn page(html: &str) -> ExtractedPage {
    extract(html.as_bytes(), Some("text/html; charset=utf-8"), &url()).unwrap()
}

#[track_caller]
fn assert_in(haystack: &str, needles: &[&str], what: &str) {
    for needle in needles {
        assert!(
            haystack.contains(needle),
            "{needle:?} missing from {what}: {haystack:?}"
        );
    }
}

#[track_caller]
fn assert_not_in(haystack: &str, needles: &[&str], what: &str) {
    for needle in needles {
        assert!(
            !haystack.contains(needle),
            "{needle:?} in {what}: {haystack:?}"
        );
    }
}

/// The text of every `<p>` inside `selector`, whitespace folded.
fn paragraphs(html: &str, selector: &str) -> Vec<String> {
    let doc = Html::parse_document(html);
    let sel = Selector::parse(selector).unwrap();
    doc.select(&sel)
        .map(|p| fold_whitespace(&p.text().collect::<String>()))
        .filter(|p| !p.is_empty())
        .collect()
}

fn anchor_of<'a>(page: &'a ExtractedPage, url: &str) -> Option<&'a str> {
    page.links
        .iter()
        .find(|l| l.url.as_str() == url)
        .map(|l| l.anchor.as_str())
}

const ARTICLE: &str = include_str!("fixtures/article_with_chrome.html");

#[test]
fn article_text_leaves_out_menu_sidebar_footer_and_cookie_banner() {
    let p = page(ARTICLE);
    assert_in(
        &p.text,
        &[
            "Alpine glaciers lost a tenth of their remaining volume",
            "meltwater now reaches the glacier bed",
            "Warmer nights matter as much as hot days",
            "covering the tongues of their glaciers with white fleece",
        ],
        "text",
    );
    assert_not_in(
        &p.text,
        &[
            "Politics",
            "Weather",
            "Most read",
            "tram extension",
            "Comet visits",
            "newsletter",
            "Copyright",
            "Terms of service",
            "cookies",
            "Accept all",
            "Share on Facebook",
        ],
        "text",
    );
    assert_in(
        &p.chrome,
        &[
            "Politics",
            "Weather",
            "Most read",
            "tram extension",
            "Copyright",
            "cookies",
        ],
        "chrome",
    );
    assert_not_in(&p.chrome, &["Alpine glaciers", "Warmer nights"], "chrome");
    assert!(
        p.headings.contains(&"Why the ice retreats".to_owned()),
        "{:?}",
        p.headings
    );
    assert!(
        !p.headings.contains(&"Most read".to_owned()),
        "{:?}",
        p.headings
    );
    assert!(
        !p.headings.contains(&"More from Science".to_owned()),
        "{:?}",
        p.headings
    );
}

#[test]
fn menu_links_are_still_extracted_with_their_anchors() {
    let p = page(ARTICLE);
    assert_eq!(
        anchor_of(&p, "http://example.com/politics"),
        Some("Politics")
    );
    assert_eq!(anchor_of(&p, "http://example.com/weather"), Some("Weather"));
    assert_eq!(
        anchor_of(&p, "http://example.com/c"),
        Some("Storm closes mountain passes")
    );
    assert_eq!(
        anchor_of(&p, "http://example.com/terms"),
        Some("Terms of service")
    );
}

#[test]
fn content_hash_covers_the_title_and_the_main_text_only() {
    let p = page(ARTICLE);
    assert_eq!(
        p.content_hash,
        crate::extract::content_hash(&p.title, &p.text)
    );
    // Another menu and footer around the same article: the same content.
    let other = ARTICLE
        .replace("Weather", "Travel")
        .replace("All rights reserved", "Some rights reserved");
    assert_eq!(page(&other).content_hash, p.content_hash);
}

#[test]
fn div_soup_menu_is_found_by_its_link_density() {
    let p = page(include_str!("fixtures/div_soup.html"));
    assert_in(
        &p.text,
        &[
            "Limescale builds up wherever the water is hard",
            "boil a full kettle of fresh water once",
            "Descale every month in hard water areas",
        ],
        "text",
    );
    assert_not_in(
        &p.text,
        &[
            "Toasters",
            "Spare parts",
            "Glass kettles",
            "Imprint",
            "Returns",
        ],
        "text",
    );
    assert_in(
        &p.chrome,
        &["Toasters", "Glass kettles", "Imprint"],
        "chrome",
    );
    assert_eq!(
        anchor_of(&p, "http://example.com/kettles/glass"),
        Some("Glass kettles")
    );
}

#[test]
fn rustdoc_page_keeps_every_paragraph_of_main_and_drops_sidebar_and_help() {
    let html = include_str!("fixtures/rustdoc_like.html");
    let p = page(html);
    let main = paragraphs(html, "main p");
    assert!(main.len() >= 6, "{main:?}");
    assert_in(
        &p.text,
        &main.iter().map(String::as_str).collect::<Vec<_>>(),
        "text",
    );
    assert_in(
        &p.text,
        &[
            "pub struct Gadget",
            "g.spin(3);",
            "pub fn spin(&self, turns: u32)",
        ],
        "text",
    );
    assert_not_in(
        &p.text,
        &[
            "Skip to main content",
            "Trait Implementations Clone Debug",
            "In gizmo::widgets",
            "Keyboard Shortcuts",
            "Focus the search field",
            "Copy item path",
            "0.3.1",
        ],
        "text",
    );
    assert_in(
        &p.chrome,
        &["In gizmo::widgets", "Skip to main content"],
        "chrome",
    );
    assert!(
        p.headings.iter().any(|h| h.contains("Struct Gadget")),
        "{:?}",
        p.headings
    );
    assert!(
        p.headings.contains(&"§Panics".to_owned()),
        "{:?}",
        p.headings
    );
    assert!(!p.headings.contains(&"Keyboard Shortcuts".to_owned()));
    assert_eq!(
        anchor_of(&p, "http://example.com/dir/struct.Flywheel.html"),
        Some("Flywheel")
    );
}

#[test]
fn mdbook_page_keeps_every_paragraph_of_main_and_drops_sidebar_top_bar_and_help() {
    let html = include_str!("fixtures/mdbook_like.html");
    let p = page(html);
    let main = paragraphs(html, "main p");
    assert_eq!(main.len(), 4, "{main:?}");
    assert_in(
        &p.text,
        &main.iter().map(String::as_str).collect::<Vec<_>>(),
        "text",
    );
    assert_in(
        &p.text,
        &["Turns are whole numbers.", "g.spin(3); g.spin(3);"],
        "text",
    );
    assert_not_in(
        &p.text,
        &[
            "Keyboard shortcuts",
            "navigate between chapters",
            "Installation",
            "Appendix: glossary",
            "The Gadget Book",
            "Print this book",
            "Coal",
            "Previous chapter",
        ],
        "text",
    );
    assert_in(
        &p.chrome,
        &[
            "Keyboard shortcuts",
            "navigate between chapters",
            "Appendix: glossary",
            "The Gadget Book",
            "Previous chapter",
        ],
        "chrome",
    );
    assert_eq!(p.headings, vec!["Spinning gadgets", "Momentum"]);
    assert_eq!(
        anchor_of(&p, "http://example.com/dir/appendix.html"),
        Some("5. Appendix: glossary")
    );
}

#[test]
fn a_table_can_be_the_main_content() {
    let p = page(include_str!("fixtures/table_main.html"));
    assert_in(
        &p.text,
        &[
            "Melting point (°C)",
            "Aluminium 660.3 2.70",
            "Tungsten 3422 19.25",
        ],
        "text",
    );
    assert_not_in(&p.text, &["Alloys", "Imprint"], "text");
    assert_in(&p.chrome, &["Alloys", "Imprint"], "chrome");
}

#[test]
fn a_code_listing_can_be_the_main_content() {
    let p = page(include_str!("fixtures/code_listing.html"));
    assert_in(
        &p.text,
        &[
            "def fizzbuzz(limit):",
            "print(\"FizzBuzz\")",
            "fizzbuzz(100)",
        ],
        "text",
    );
    assert_not_in(&p.text, &["Snippet box", "New snippet", "Terms"], "text");
    assert_in(&p.chrome, &["Snippet box", "Terms"], "chrome");
}

#[test]
fn legacy_charsets_decode_before_the_main_content_is_chosen() {
    // windows-1252, declared in a <meta>.
    let mut body: Vec<u8> = b"<html><head><meta charset=\"windows-1252\"><title>Cr\xe8me br\xfbl\xe9e</title></head><body>\
        <ul class=\"menu\"><li><a href=\"/desserts\">Desserts</a></li><li><a href=\"/g\xe2teaux\">G\xe2teaux</a></li><li><a href=\"/entr\xe9es\">Entr\xe9es</a></li></ul>\
        <div class=\"recette\"><p>"
        .to_vec();
    body.extend_from_slice(
        b"La cr\xe8me br\xfbl\xe9e se pr\xe9pare la veille, avec six jaunes d'\x9cufs, du sucre, de la cr\xe8me enti\xe8re et une gousse de vanille.</p>\
        <p>On caram\xe9lise le sucre au dernier moment, \xe0 la flamme, pour que la cro\xfbte reste fine et croquante.</p></div></body></html>",
    );
    let p = extract(&body, Some("text/html"), &url()).unwrap();
    assert_eq!(p.charset, "windows-1252");
    assert_eq!(p.title, "Crème brûlée");
    assert_in(
        &p.text,
        &["six jaunes d'œufs", "On caramélise le sucre"],
        "text",
    );
    assert_not_in(&p.text, &["Gâteaux", "Entrées"], "text");
    assert_in(&p.chrome, &["Gâteaux", "Entrées"], "chrome");
    assert_eq!(
        anchor_of(&p, "http://example.com/g%C3%A2teaux"),
        Some("Gâteaux")
    );

    // Shift_JIS, declared in the Content-Type.
    let html = "<html><head><title>お知らせ</title></head><body>\
        <nav><a href=\"/\">ホーム</a> <a href=\"/news\">ニュース</a> <a href=\"/contact\">お問い合わせ</a></nav>\
        <article><p>本日、新しい図書館が駅前に開館しました。開館時間は午前九時から午後八時までで、毎週月曜日は休館日です。</p>\
        <p>館内には二万冊の本があり、子供向けの読書室もあります。</p></article></body></html>";
    let (bytes, _, unmappable) = encoding_rs::SHIFT_JIS.encode(html);
    assert!(!unmappable);
    let p = extract(&bytes, Some("text/html; charset=Shift_JIS"), &url()).unwrap();
    assert_eq!(p.charset, "Shift_JIS");
    assert_in(
        &p.text,
        &["新しい図書館が駅前に開館しました", "子供向けの読書室"],
        "text",
    );
    assert_not_in(&p.text, &["ホーム", "お問い合わせ"], "text");
    assert_in(&p.chrome, &["ホーム", "お問い合わせ"], "chrome");
}

#[test]
fn a_page_without_discernible_main_content_keeps_all_its_text() {
    // Everything is navigation.
    let p = page(
        "<html><body><nav><a href=\"/a\">Alpha</a> <a href=\"/b\">Beta</a></nav>\
         <footer><a href=\"/c\">Gamma</a></footer></body></html>",
    );
    assert_eq!(p.text, "Alpha Beta Gamma");
    assert_eq!(p.chrome, "");
    // A page that is a list of links (a site map).
    let list: String = (0..40)
        .map(|i| format!("<li><a href=\"/p{i}\">Page number {i}</a></li>"))
        .collect();
    let p = page(&format!("<html><body><ul>{list}</ul></body></html>"));
    assert_in(&p.text, &["Page number 0", "Page number 39"], "text");
    assert_eq!(p.links.len(), 40);
    // A tiny page.
    let p = page("<html><body><div>Hello</div></body></html>");
    assert_eq!(p.text, "Hello");
}

#[test]
fn hidden_elements_are_not_main_content() {
    let p = page(
        "<html><body><article><p>The visible paragraph of the article, long enough to count as one.</p>\
         <div hidden><p>The hidden paragraph that only a script would show to the reader.</p></div>\
         <div style=\"color: red; DISPLAY: none !important\"><p>Another paragraph hidden by an inline style sheet rule.</p></div>\
         <div aria-hidden=\"true\">Decorative text</div></article></body></html>",
    );
    assert_in(&p.text, &["The visible paragraph"], "text");
    assert_not_in(
        &p.text,
        &["hidden paragraph", "inline style", "Decorative"],
        "text",
    );
    assert_in(&p.chrome, &["hidden paragraph"], "chrome");
}

/// A generous bound for work that takes milliseconds, and minutes when quadratic.
const HOSTILE_BOUND: Duration = Duration::from_secs(10);

#[test]
fn huge_attribute_counts_take_bounded_time() {
    // 400 000 attributes in one tag (about 60 s of html5ever without the cap), with and
    // without spaces between them.
    let glued: String = (0..200_000).map(|i| format!("b{i}=\"\"")).collect();
    let spaced: String = (0..200_000).map(|i| format!(" a{i}=x")).collect();
    let html = format!(
        "<html><body><div {glued}{spaced}><p class=x>Text of a paragraph after the attributes.</p>\
         <a href=\"/after\">after</a></div></body></html>"
    );
    assert!(html.len() < crate::extract::MAX_HTML_BYTES);
    let start = Instant::now();
    let p = page(&html);
    assert!(start.elapsed() < HOSTILE_BOUND, "{:?}", start.elapsed());
    assert_in(
        &p.text,
        &["Text of a paragraph after the attributes."],
        "text",
    );
    assert_eq!(anchor_of(&p, "http://example.com/after"), Some("after"));
}

#[test]
fn deep_nesting_and_many_elements_take_bounded_time() {
    let start = Instant::now();
    // Unclosed nesting with text at every level, then a wide flat page.
    let deep: String = (0..50_000)
        .map(|i| format!("<div class=\"sidebar menu\"><span>level {i}, </span>"))
        .collect();
    let p = page(&format!("<html><body>{deep}</body></html>"));
    assert!(p.text.contains("level 49999") || p.chrome.contains("level 49999"));
    let wide: String = (0..20_000)
        .map(|i| format!("<p>Paragraph {i} has, some commas, in it.</p>"))
        .collect();
    let p = page(&format!("<html><body>{wide}</body></html>"));
    assert_in(&p.text, &["Paragraph 0 has", "Paragraph 19999 has"], "text");
    assert!(start.elapsed() < HOSTILE_BOUND, "{:?}", start.elapsed());
}

#[test]
fn a_short_marked_main_stays_the_main_text() {
    // A home page whose <main> says one line: its menu's words are not its text.
    let p = page(
        "<html><body><nav><p>Guides on migration, troubleshooting and the glossary</p>\
         <a href=\"/a\">Installation</a> <a href=\"/b\">Pricing</a></nav>\
         <main><p>Start here.</p></main><footer>Copyright Example</footer></body></html>",
    );
    assert_eq!(p.text, "Start here.");
    assert_in(
        &p.chrome,
        &["migration, troubleshooting", "Installation"],
        "chrome",
    );
}
