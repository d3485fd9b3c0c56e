//! Tests of the whole extraction: fields, charsets, limits, hostile input.

use std::borrow::Cow;

use super::nesting::{MAX_NESTING, cap_nesting};
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
    let body: &[u8] = b"<html><head><title>caf\xe9</title></head><body>\x96 na\xefve</body></html>";
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
    let body = "<html><head><title><script>alert(1)</script></title></head><body>x</body></html>";
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

mod main_content;
