//! The tantivy schema of a shard, its analyzer, and the mapping between [`Document`] and
//! tantivy documents.

use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing,
    TextOptions, Value,
};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, TextAnalyzer,
};
use tantivy::{TantivyDocument, Term};

use crate::types::Document;

/// Name under which the text analyzer is registered on every shard index.
pub(crate) const ANALYZER_NAME: &str = "en_stem";

/// Tokens longer than this many bytes are dropped (tantivy's own default for `en_stem`):
/// they are almost always base64, hashes or minified code, never words someone searches for.
const MAX_TOKEN_BYTES: usize = 40;

/// Field names. They also key [`crate::TermStats`] (`field_tokens`, `doc_freq`), so they are
/// part of the wire format between peers: never rename one.
pub(crate) mod names {
    pub const URL: &str = "url";
    pub const SITE: &str = "site";
    pub const SITE_SUFFIXES: &str = "site_suffixes";
    pub const TITLE: &str = "title";
    pub const DESCRIPTION: &str = "description";
    pub const BODY: &str = "body";
    pub const HEADINGS: &str = "headings";
    pub const ANCHOR_TEXT: &str = "anchor_text";
    pub const URL_TEXT: &str = "url_text";
    pub const LANG: &str = "lang";
    pub const FETCHED_AT: &str = "fetched_at";
    pub const CONTENT_HASH: &str = "content_hash";
    pub const CHROME: &str = "chrome";
    pub const INLINK_SITES: &str = "inlink_sites";
    pub const INLINK_PAGES: &str = "inlink_pages";
    pub const URL_DEPTH: &str = "url_depth";
}

/// The text fields a query searches, with the weights of their BM25 scores. Matches in the
/// title say most about a page, then what other pages call it (anchor text), then its
/// headings; the body (the page's main content) is the baseline, and the page chrome
/// (navigation, header, footer: the same on many pages of a site) counts little. The title
/// weighs 2.5 rather than the classic 3: coverage and proximity already favour pages about the
/// query, and a higher title weight let one title word outweigh a body holding the words
/// together (tuned on known-item queries, `tests/quality_eval.rs`).
pub(crate) const TEXT_FIELDS: [(&str, f32); 7] = [
    (names::TITLE, 2.5),
    (names::ANCHOR_TEXT, 1.5),
    (names::HEADINGS, 1.2),
    (names::DESCRIPTION, 1.0),
    (names::BODY, 1.0),
    (names::URL_TEXT, 0.8),
    (names::CHROME, 0.2),
];

/// The analyzer of every text field and of every query term: split on anything that is not a
/// letter or digit, drop over-long tokens, lowercase, English (Porter/Snowball) stemming.
pub fn en_stem_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES))
        .filter(LowerCaser)
        .filter(Stemmer::new(Language::English))
        .build()
}

/// Runs `text` through the analyzer and returns its tokens.
pub(crate) fn analyze(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stream = analyzer.token_stream(text);
    stream.process(&mut |token| out.push(token.text.clone()));
    out
}

/// Field handles of the shard schema.
#[derive(Debug, Clone)]
pub(crate) struct Fields {
    pub url: Field,
    pub site: Field,
    pub site_suffixes: Field,
    pub title: Field,
    pub description: Field,
    pub body: Field,
    pub headings: Field,
    pub anchor_text: Field,
    pub url_text: Field,
    pub lang: Field,
    pub fetched_at: Field,
    pub content_hash: Field,
    pub chrome: Field,
    pub inlink_sites: Field,
    pub inlink_pages: Field,
    pub url_depth: Field,
    /// The searched text fields with their boosts, in [`TEXT_FIELDS`] order.
    pub text: Vec<(Field, f32)>,
}

/// Builds the shard schema and its field handles.
pub(crate) fn build_schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text_indexing = TextFieldIndexing::default()
        .set_tokenizer(ANALYZER_NAME)
        .set_index_option(IndexRecordOption::WithFreqsAndPositions);
    let stored_text = TextOptions::default()
        .set_indexing_options(text_indexing.clone())
        .set_stored();
    let unstored_text = TextOptions::default().set_indexing_options(text_indexing);

    // url is FAST too: hits are ordered by (score desc, url asc) inside the collector, and the
    // replication digest reads urls without touching the document store.
    let url = b.add_text_field(names::URL, STRING | STORED | FAST);
    let site = b.add_text_field(names::SITE, STRING | STORED);
    let site_suffixes = b.add_text_field(names::SITE_SUFFIXES, STRING);
    let title = b.add_text_field(names::TITLE, stored_text.clone());
    let description = b.add_text_field(names::DESCRIPTION, stored_text.clone());
    let body = b.add_text_field(names::BODY, stored_text.clone());
    let headings = b.add_text_field(names::HEADINGS, stored_text.clone());
    let anchor_text = b.add_text_field(names::ANCHOR_TEXT, stored_text.clone());
    let url_text = b.add_text_field(names::URL_TEXT, unstored_text);
    let lang = b.add_text_field(names::LANG, STRING | STORED);
    let fetched_at = b.add_i64_field(names::FETCHED_AT, FAST | STORED | INDEXED);
    let content_hash = b.add_text_field(names::CONTENT_HASH, STRING | STORED);
    // Added after the first release: appended, so the fields above keep their ids.
    let chrome = b.add_text_field(names::CHROME, stored_text);
    let inlink_sites = b.add_u64_field(names::INLINK_SITES, FAST | STORED);
    let inlink_pages = b.add_u64_field(names::INLINK_PAGES, FAST | STORED);
    // Derived from the URL (like url_text), for the ranking prior: see `url_depth`.
    let url_depth = b.add_u64_field(names::URL_DEPTH, FAST);
    let schema = b.build();
    let text = TEXT_FIELDS
        .iter()
        .map(|(name, boost)| {
            let field = schema
                .get_field(name)
                .expect("every TEXT_FIELDS entry is added to the schema above");
            (field, *boost)
        })
        .collect();
    let fields = Fields {
        url,
        site,
        site_suffixes,
        title,
        description,
        body,
        headings,
        anchor_text,
        url_text,
        lang,
        fetched_at,
        content_hash,
        chrome,
        inlink_sites,
        inlink_pages,
        url_depth,
        text,
    };
    (schema, fields)
}

impl Fields {
    /// The tantivy document for `doc`, with the derived fields (`site_suffixes`, `url_text`).
    pub(crate) fn to_tantivy_document(&self, doc: &Document) -> TantivyDocument {
        let mut t = TantivyDocument::default();
        t.add_text(self.url, &doc.url);
        t.add_text(self.site, &doc.site);
        for suffix in site_suffixes(&doc.site) {
            t.add_text(self.site_suffixes, &suffix);
        }
        t.add_text(self.title, &doc.title);
        t.add_text(self.description, &doc.description);
        t.add_text(self.body, &doc.body);
        t.add_text(self.headings, &doc.headings);
        t.add_text(self.anchor_text, &doc.anchor_text);
        t.add_text(self.url_text, &doc.url);
        t.add_text(self.lang, &doc.lang);
        t.add_i64(self.fetched_at, doc.fetched_at);
        t.add_text(self.content_hash, &doc.content_hash);
        t.add_text(self.chrome, &doc.chrome);
        t.add_u64(self.inlink_sites, u64::from(doc.inlink_sites));
        t.add_u64(self.inlink_pages, u64::from(doc.inlink_pages));
        t.add_u64(self.url_depth, url_depth(&doc.url));
        t
    }

    /// The text field named `name` (one of [`TEXT_FIELDS`]).
    pub(crate) fn by_name(&self, name: &str) -> Field {
        let i = TEXT_FIELDS
            .iter()
            .position(|(n, _)| *n == name)
            .expect("a text field name");
        self.text[i].0
    }

    /// The term that identifies the document of `url`.
    pub(crate) fn url_term(&self, url: &str) -> Term {
        Term::from_field_text(self.url, url)
    }
}

/// The [`Document`] stored in `t`, a document of an index with schema `schema`. Fields are
/// looked up by name, so this reads the shards of every schema version (a field the schema
/// lacks, or a document lacks, reads as empty or 0): what a migration to a new schema needs.
pub(crate) fn stored_document(schema: &Schema, t: &TantivyDocument) -> Document {
    let value = |name: &str| schema.get_field(name).ok().and_then(|f| t.get_first(f));
    let text = |name: &str| -> String {
        value(name)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let count = |name: &str| -> u32 {
        value(name)
            .and_then(|v| v.as_u64())
            .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX))
    };
    Document {
        url: text(names::URL),
        site: text(names::SITE),
        title: text(names::TITLE),
        description: text(names::DESCRIPTION),
        body: text(names::BODY),
        headings: text(names::HEADINGS),
        anchor_text: text(names::ANCHOR_TEXT),
        lang: text(names::LANG),
        fetched_at: value(names::FETCHED_AT)
            .and_then(|v| v.as_i64())
            .unwrap_or_default(),
        content_hash: text(names::CONTENT_HASH),
        chrome: text(names::CHROME),
        inlink_sites: count(names::INLINK_SITES),
        inlink_pages: count(names::INLINK_PAGES),
    }
}

/// How deep in its site a URL is: the number of path segments, not counting a final
/// `index.html`-like name. A site's home page is 0, `/guide/` and `/guide.html` are 1.
pub(crate) fn url_depth(url: &str) -> u64 {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = rest.find('/').map_or("", |i| &rest[i..]);
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let mut segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if segments.last().is_some_and(|last| {
        let last = last.to_ascii_lowercase();
        [
            "index.html",
            "index.htm",
            "index.php",
            "default.html",
            "default.htm",
        ]
        .contains(&last.as_str())
    }) {
        segments.pop();
    }
    segments.len() as u64
}

/// Splits `host[:port]` (IPv6 literals in brackets) into host and optional port.
fn split_host_port(site: &str) -> (&str, Option<&str>) {
    if site.starts_with('[') {
        return match site.find(']') {
            Some(end) => {
                let rest = &site[end + 1..];
                (&site[..=end], rest.strip_prefix(':'))
            }
            None => (site, None),
        };
    }
    match site.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            (host, Some(port))
        }
        _ => (site, None),
    }
}

/// Every value a `site:` filter may name to match a page of `site`: the site itself
/// (`docs.example.com:8080`), its host without the port, and every parent domain of the host
/// (`example.com`, `com`), so that `site:example.com` also finds `docs.example.com`.
/// IP literals have no parent domains.
pub(crate) fn site_suffixes(site: &str) -> Vec<String> {
    let site = site.trim().to_lowercase();
    if site.is_empty() {
        return Vec::new();
    }
    let mut out = vec![site.clone()];
    let (host, port) = split_host_port(&site);
    if port.is_some() {
        out.push(host.to_string());
    }
    let is_ip = host.starts_with('[') || host.parse::<std::net::Ipv4Addr>().is_ok();
    if !is_ip {
        let mut rest = host;
        while let Some((_, parent)) = rest.split_once('.') {
            if !parent.is_empty() {
                out.push(parent.to_string());
            }
            rest = parent;
        }
    }
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_suffixes_cover_parent_domains_and_portless_host() {
        assert_eq!(
            site_suffixes("Docs.Example.com:8080"),
            vec![
                "docs.example.com:8080",
                "docs.example.com",
                "example.com",
                "com"
            ]
        );
        assert_eq!(site_suffixes("example.com"), vec!["example.com", "com"]);
    }

    #[test]
    fn site_suffixes_of_ip_literals_are_only_the_site_and_host() {
        assert_eq!(
            site_suffixes("127.0.0.1:8080"),
            vec!["127.0.0.1:8080", "127.0.0.1"]
        );
        assert_eq!(site_suffixes("[::1]:80"), vec!["[::1]:80", "[::1]"]);
        assert!(site_suffixes("  ").is_empty());
    }

    #[test]
    fn url_depth_counts_path_segments_but_not_index_pages() {
        assert_eq!(url_depth("http://a.example/"), 0);
        assert_eq!(url_depth("http://a.example"), 0);
        assert_eq!(url_depth("http://a.example/index.html?x=/y/z"), 0);
        assert_eq!(url_depth("http://a.example:8080/guide/"), 1);
        assert_eq!(url_depth("http://a.example/guide.html#a/b"), 1);
        assert_eq!(url_depth("http://a.example/guide/intro/Index.HTML"), 2);
        assert_eq!(url_depth("http://a.example/a/b/c.html"), 3);
    }

    #[test]
    fn analyzer_lowercases_and_stems() {
        let mut a = en_stem_analyzer();
        assert_eq!(
            analyze(&mut a, "Running RUNS, e-mail"),
            vec!["run", "run", "e", "mail"]
        );
    }

    #[test]
    fn document_round_trips_through_tantivy_document() {
        let doc = Document {
            url: "http://a.example/x".into(),
            site: "a.example".into(),
            title: "T".into(),
            description: "D".into(),
            body: "B".into(),
            headings: "H".into(),
            anchor_text: "A".into(),
            lang: "en".into(),
            fetched_at: 42,
            content_hash: "ff".into(),
            chrome: "Home | Docs".into(),
            inlink_sites: 7,
            inlink_pages: 12,
        };
        let (schema, fields) = build_schema();
        assert_eq!(
            stored_document(&schema, &fields.to_tantivy_document(&doc)),
            doc
        );
    }
}
