//! Checkers of the documents the server writes: HTML pages, XML, the Prometheus text format.
//! They must be able to fail: `documents.rs` tests them on broken input.

use std::collections::{BTreeMap, HashMap, HashSet};

/// Parse errors of an HTML document as html5ever reports them, plus the checks every page
/// must pass: lang, `<main>`, the OpenSearch link, a label for every visible input, no script.
pub fn check_page(html: &str) {
    use scraper::{Html, Selector};
    let doc = Html::parse_document(html);
    assert!(
        doc.errors.is_empty(),
        "html parse errors: {:?}\n{html}",
        doc.errors
    );
    assert!(html.starts_with("<!DOCTYPE html>"));
    let sel = |s: &str| Selector::parse(s).unwrap();
    assert_eq!(doc.select(&sel("html[lang=en]")).count(), 1);
    assert_eq!(doc.select(&sel("main")).count(), 1, "one <main>");
    assert_eq!(doc.select(&sel("header")).count(), 1);
    assert_eq!(doc.select(&sel("footer")).count(), 1);
    assert!(doc.select(&sel("nav[aria-label]")).count() >= 1);
    assert!(doc.select(&sel("a.skip-link[href='#main']")).count() == 1);
    assert_eq!(
        doc.select(&sel(
            r#"link[rel=search][type="application/opensearchdescription+xml"][href="/opensearch.xml"]"#
        ))
        .count(),
        1
    );
    assert_eq!(doc.select(&sel("meta[name=viewport]")).count(), 1);
    assert_eq!(doc.select(&sel("script")).count(), 0, "no script");
    // Nothing loaded from elsewhere.
    for element in doc.select(&sel("[src], link[href]")) {
        let url = element
            .value()
            .attr("src")
            .or(element.value().attr("href"))
            .unwrap();
        assert!(url.starts_with('/'), "asset from outside: {url}");
    }
    let labels: HashSet<&str> = doc
        .select(&sel("label[for]"))
        .map(|l| l.value().attr("for").unwrap())
        .collect();
    let mut ids = HashSet::new();
    for element in doc.select(&sel("[id]")) {
        assert!(
            ids.insert(element.value().attr("id").unwrap()),
            "duplicate id"
        );
    }
    for input in doc.select(&sel("input, textarea, select")) {
        let kind = input.value().attr("type").unwrap_or("text");
        if matches!(kind, "hidden" | "submit") {
            continue;
        }
        let id = input.value().attr("id").expect("input with an id");
        assert!(labels.contains(id), "no label for #{id}");
    }
}

/// Parse `xml` completely with xml-rs; returns the (local name, attributes) of every element.
pub fn parse_xml(xml: &str) -> Vec<(String, HashMap<String, String>)> {
    use xml::reader::{EventReader, XmlEvent};
    let mut elements = Vec::new();
    for event in EventReader::from_str(xml) {
        match event.unwrap_or_else(|e| panic!("invalid xml ({e}):\n{xml}")) {
            XmlEvent::StartElement {
                name, attributes, ..
            } => elements.push((
                name.local_name,
                attributes
                    .into_iter()
                    .map(|a| (a.name.local_name, a.value))
                    .collect(),
            )),
            XmlEvent::EndDocument => break,
            _ => {}
        }
    }
    elements
}

/// The text of every element named `name`.
pub fn xml_texts(xml: &str, name: &str) -> Vec<String> {
    use xml::reader::{EventReader, XmlEvent};
    let mut out = Vec::new();
    let mut inside = false;
    let mut text = String::new();
    for event in EventReader::from_str(xml) {
        match event.unwrap() {
            XmlEvent::StartElement { name: n, .. } if n.local_name == name => {
                inside = true;
                text.clear();
            }
            XmlEvent::Characters(t) | XmlEvent::CData(t) if inside => text.push_str(&t),
            XmlEvent::EndElement { name: n } if n.local_name == name => {
                inside = false;
                out.push(text.clone());
            }
            _ => {}
        }
    }
    out
}

/// A small parser of the Prometheus text format: every line is a HELP, a TYPE or a sample
/// `name{labels} value`, and every sample belongs to a family with HELP and TYPE. Returns the
/// samples as (name, labels, value).
pub fn parse_prometheus(text: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    let mut helps = HashSet::new();
    let mut types = HashMap::new();
    let mut samples = Vec::new();
    let is_name_char = |c: char, first: bool| {
        c.is_ascii_alphabetic() || c == '_' || c == ':' || (!first && c.is_ascii_digit())
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("help text");
            assert!(!help.is_empty());
            assert!(helps.insert(name.to_owned()), "duplicate HELP {name}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("type");
            assert!(
                matches!(
                    kind,
                    "counter" | "gauge" | "histogram" | "summary" | "untyped"
                ),
                "{kind}"
            );
            assert!(types.insert(name.to_owned(), kind.to_owned()).is_none());
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "stray line {line:?}"
        );
        let mut chars = line.char_indices().peekable();
        let mut name_end = 0;
        while let Some(&(i, c)) = chars.peek() {
            if is_name_char(c, i == 0) {
                name_end = i + c.len_utf8();
                chars.next();
            } else {
                break;
            }
        }
        assert!(name_end > 0, "no metric name in {line:?}");
        let name = &line[..name_end];
        let mut labels = BTreeMap::new();
        let mut rest = &line[name_end..];
        if let Some(after) = rest.strip_prefix('{') {
            let mut s = after;
            loop {
                if let Some(after) = s.strip_prefix('}') {
                    s = after;
                    break;
                }
                let (key, after) = s.split_once("=\"").expect("label=\"");
                assert!(
                    key.chars()
                        .enumerate()
                        .all(|(i, c)| is_name_char(c, i == 0) && c != ':')
                );
                let mut value = String::new();
                let mut it = after.char_indices();
                let end = loop {
                    let (i, c) = it.next().expect("unterminated label value");
                    match c {
                        '\\' => match it.next().expect("escape").1 {
                            'n' => value.push('\n'),
                            '\\' => value.push('\\'),
                            '"' => value.push('"'),
                            other => panic!("bad escape \\{other}"),
                        },
                        '"' => break i,
                        '\n' => panic!("raw newline"),
                        c => value.push(c),
                    }
                };
                labels.insert(key.to_owned(), value);
                s = &after[end + 1..];
                s = s.strip_prefix(',').unwrap_or(s);
            }
            rest = s;
        }
        let value = rest.strip_prefix(' ').expect("space before value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix)
                    .filter(|base| types.get(*base).is_some_and(|t| t == "histogram"))
            })
            .unwrap_or(name);
        assert!(types.contains_key(family), "no TYPE for {name}");
        assert!(helps.contains(family), "no HELP for {name}");
        samples.push((name.to_owned(), labels, value));
    }
    samples
}
