//! Our own lenient query language, and its translation into tantivy queries.
//!
//! Syntax: bare words, `"exact phrase"`, `+must`, `-exclude`, `-"excluded phrase"`,
//! `site:example.com` (several are OR'ed; `-site:` excludes). `OR` and `AND` in capitals are
//! ignored (words are OR'ed by default). Every string parses: an unbalanced quote makes the
//! rest of the query a phrase, characters that are neither letters nor digits separate words,
//! and whatever is over the limits below is dropped. The parser is a single forward pass over
//! at most [`MAX_QUERY_BYTES`], so it cannot hang.
//!
//! We do not use tantivy's `QueryParser`: it hangs on some inputs (`a:(^`, tantivy issue
//! 3032) and exposes field syntax (`body:x`) that we do not want to promise.

use std::collections::BTreeSet;

use tantivy::Term;
use tantivy::query::{BooleanQuery, ConstScoreQuery, Occur, PhraseQuery, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption};

use crate::error::{Error, Result};
use crate::rank::{Leaf, Proximity, RankQuery};
use crate::schema::{Fields, analyze, en_stem_analyzer, names};
use crate::text::truncate_to_char_boundary;

/// Longest query we look at, in bytes; the rest is ignored. The JSON API accepts `q` up to
/// 1024 bytes (CONTRACT.md), so nothing a user sends through it is cut.
pub const MAX_QUERY_BYTES: usize = 1024;
/// Most analyzed terms (counting every word of every phrase, excluded ones too) a query may
/// use; later ones are dropped. Each term costs one posting-list walk per text field (6), and
/// nobody types more than a couple of dozen words into a search box.
pub const MAX_QUERY_TERMS: usize = 32;
/// Most words in one phrase; a longer phrase keeps its first words. Phrase matching is the
/// costliest query part (positions of every word), and 16 words pin a sentence down.
pub const MAX_PHRASE_TERMS: usize = 16;
/// Most `site:` filters (included plus excluded) a query may use; later ones are dropped.
pub const MAX_SITE_FILTERS: usize = 16;
/// Longest `site:` value: a DNS name is at most 253 bytes, plus `:65535`.
const MAX_SITE_BYTES: usize = 253 + 6;

/// The score every document gets from a query that only has `site:` filters: all hits tie
/// and come out ordered by URL.
pub const SITE_LISTING_SCORE: f32 = 1.0;

/// How a clause takes part in matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Occurrence {
    /// Optional: a match raises the score. If the query has no `Must` clause, a document
    /// has to match at least one `Should` clause.
    Should,
    /// Required (`+word`).
    Must,
    /// Excluded (`-word`): matching documents are dropped; never scores.
    MustNot,
}

/// One word or phrase of a query, after analysis.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Clause {
    /// How the clause takes part in matching.
    pub occur: Occurrence,
    /// Analyzed tokens (lowercased, stemmed). One token is a term; several are a phrase
    /// (a quoted phrase, or one word that analysis splits, like `e-mail`).
    pub terms: Vec<String>,
}

impl Clause {
    /// True when the clause is a phrase (more than one token).
    pub fn is_phrase(&self) -> bool {
        self.terms.len() > 1
    }
}

/// A parsed query: plain data, the same for every shard.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedQuery {
    /// Words and phrases, in query order, without duplicates.
    pub clauses: Vec<Clause>,
    /// `site:` filters, normalized (`example.com`); a document must be on one of them
    /// (or on a subdomain of one).
    pub sites: Vec<String>,
    /// `-site:` filters; documents on these sites (or their subdomains) are dropped.
    pub excluded_sites: Vec<String>,
}

impl ParsedQuery {
    /// The clauses that select and score documents (`Should` and `Must`).
    pub fn positive_clauses(&self) -> impl Iterator<Item = &Clause> {
        self.clauses
            .iter()
            .filter(|c| c.occur != Occurrence::MustNot)
    }

    /// True when the query has no words to score, only `site:` filters: it lists the
    /// documents of those sites, each scored [`SITE_LISTING_SCORE`].
    pub fn is_site_listing(&self) -> bool {
        self.positive_clauses().next().is_none()
    }

    /// The distinct analyzed terms that score (those of `Should` and `Must` clauses).
    pub fn scoring_terms(&self) -> BTreeSet<&str> {
        self.positive_clauses()
            .flat_map(|c| c.terms.iter().map(String::as_str))
            .collect()
    }
}

/// Parses `q`. Never panics and never fails on odd input; the only error is
/// [`Error::EmptyQuery`], when nothing is left to search for (no words after analysis and no
/// `site:` filter, or only exclusions).
pub fn parse_query(q: &str) -> Result<ParsedQuery> {
    let q = truncate_to_char_boundary(q, MAX_QUERY_BYTES);
    let chars: Vec<char> = q.chars().collect();
    let mut analyzer = en_stem_analyzer();
    let mut parsed = ParsedQuery::default();
    let mut term_budget = MAX_QUERY_TERMS;
    let mut i = 0;
    while i < chars.len() {
        if is_separator(chars[i]) {
            i += 1;
            continue;
        }
        let mut occur = Occurrence::Should;
        if (chars[i] == '+' || chars[i] == '-')
            && chars.get(i + 1).is_some_and(|&c| !is_separator(c))
        {
            occur = if chars[i] == '+' {
                Occurrence::Must
            } else {
                Occurrence::MustNot
            };
            i += 1;
        }
        if chars[i] == '"' {
            // A phrase runs to the next quote, or to the end when the quote is unbalanced.
            let start = i + 1;
            let end = chars[start..]
                .iter()
                .position(|&c| c == '"')
                .map_or(chars.len(), |p| start + p);
            let text: String = chars[start..end].iter().collect();
            i = end + 1;
            let terms = analyze(&mut analyzer, &text);
            push_clause(&mut parsed, occur, terms, &mut term_budget);
            continue;
        }
        let start = i;
        while i < chars.len() && !is_separator(chars[i]) {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        if occur == Occurrence::Should && (word == "OR" || word == "AND") {
            continue;
        }
        if let Some(value) = strip_prefix_ignore_case(&word, "site:") {
            if let Some(site) = normalize_site(value) {
                let full = parsed.sites.len() + parsed.excluded_sites.len() >= MAX_SITE_FILTERS;
                let list = if occur == Occurrence::MustNot {
                    &mut parsed.excluded_sites
                } else {
                    &mut parsed.sites
                };
                if !full && !list.contains(&site) {
                    list.push(site);
                }
            }
            continue;
        }
        let terms = analyze(&mut analyzer, &word);
        push_clause(&mut parsed, occur, terms, &mut term_budget);
    }
    if parsed.is_site_listing() && parsed.sites.is_empty() {
        return Err(Error::EmptyQuery);
    }
    Ok(parsed)
}

fn push_clause(
    parsed: &mut ParsedQuery,
    occur: Occurrence,
    mut terms: Vec<String>,
    budget: &mut usize,
) {
    terms.truncate(MAX_PHRASE_TERMS.min(*budget));
    if terms.is_empty() {
        return;
    }
    let clause = Clause { occur, terms };
    if parsed.clauses.contains(&clause) {
        return;
    }
    *budget -= clause.terms.len();
    parsed.clauses.push(clause);
}

/// Whitespace and control characters separate query tokens.
fn is_separator(c: char) -> bool {
    c.is_whitespace() || c.is_control()
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// Normalizes a `site:` value to the form [`crate::schema::site_suffixes`] indexes:
/// lowercase host (and port), no scheme, path, user info, `www.`-style wildcard or
/// default port. `None` when nothing usable is left.
pub(crate) fn normalize_site(raw: &str) -> Option<String> {
    let mut s = raw.trim_matches('"').trim().to_lowercase();
    for scheme in ["http://", "https://"] {
        if let Some(rest) = s.strip_prefix(scheme) {
            s = rest.to_string();
        }
    }
    if let Some(end) = s.find(['/', '?', '#']) {
        s.truncate(end);
    }
    if let Some((_, host)) = s.rsplit_once('@') {
        s = host.to_string();
    }
    let mut s = s.trim_start_matches("*.").trim_matches('.').to_string();
    for default_port in [":80", ":443"] {
        if let Some(host) = s.strip_suffix(default_port) {
            s = host.to_string();
        }
    }
    let s = s.trim_end_matches('.');
    if s.is_empty() || s.len() > MAX_SITE_BYTES || s.chars().any(is_separator) {
        return None;
    }
    Some(s.to_string())
}

/// Proximity windows: where two consecutive query words are scored for occurring near each
/// other, in either order, and how much. `(field, largest distance between the positions,
/// weight)`; distance 3 is "the words, or with a word or two between" (queries often drop
/// the stop words a text has between them), 10 is about a sentence.
const PROXIMITY: [(&str, &[(u32, f32)]); 2] = [
    (names::BODY, &[(3, 3.0), (10, 1.5)]),
    (names::TITLE, &[(3, 2.0)]),
];

/// Translates a parsed query into a tantivy query over `fields`.
///
/// The words and phrases score through one [`RankQuery`] (coverage, per-field BM25,
/// proximity, prior; see the `rank` module). `+` clauses, `site:` filters and exclusions
/// are boolean filters around it that score a constant 0.0, so they select documents
/// without touching the score (`x + 0.0 == x`, whatever the order of the additions).
///
/// With `include_chrome` false, the words are searched in the page's own text only, not in
/// its chrome (navigation, header, footer): see [`needs_chrome`].
pub(crate) fn build_query(
    parsed: &ParsedQuery,
    fields: &Fields,
    include_chrome: bool,
) -> Box<dyn Query> {
    let mut top: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    if !parsed.is_site_listing() {
        top.push((
            Occur::Must,
            Box::new(rank_query(parsed, fields, include_chrome)),
        ));
    }
    for clause in &parsed.clauses {
        match clause.occur {
            Occurrence::Must => top.push((
                Occur::Must,
                Box::new(ConstScoreQuery::new(clause_match(clause, fields), 0.0)),
            )),
            Occurrence::MustNot => top.push((Occur::MustNot, clause_match(clause, fields))),
            Occurrence::Should => {}
        }
    }
    if !parsed.sites.is_empty() {
        let sites = parsed
            .sites
            .iter()
            .map(|s| site_query(fields.site_suffixes, s))
            .collect();
        let filter = balanced(sites, Occur::Should).expect("sites is not empty");
        let score = if parsed.is_site_listing() {
            SITE_LISTING_SCORE
        } else {
            0.0
        };
        top.push((Occur::Must, Box::new(ConstScoreQuery::new(filter, score))));
    }
    for site in &parsed.excluded_sites {
        top.push((Occur::MustNot, site_query(fields.site_suffixes, site)));
    }
    if top.len() == 1 && top[0].0 == Occur::Must {
        return top.pop().expect("length checked").1;
    }
    Box::new(BooleanQuery::new(top))
}

/// Whether a query must search the pages' chrome: only when one of its words is in no
/// page's own text (title, anchors, headings, description, body, URL), as `doc_freq` (field,
/// term) says. A page is not about the words of its menu: when pages hold the words in
/// their text, pages that hold them only in their navigation are not returned at all; when
/// none does, the chrome is searched (at a low weight) rather than finding nothing. The
/// decision depends only on the query and the statistics, so with the merged statistics of
/// a network every shard decides as one central index would.
pub(crate) fn needs_chrome(
    parsed: &ParsedQuery,
    fields: &Fields,
    mut doc_freq: impl FnMut(Field, &str) -> u64,
) -> bool {
    parsed.positive_clauses().any(|clause| {
        !clause.terms.iter().all(|term| {
            fields
                .text
                .iter()
                .filter(|(field, _)| *field != fields.chrome)
                .any(|&(field, _)| doc_freq(field, term) > 0)
        })
    })
}

/// The scoring part of a query: its positive clauses in every text field (the chrome only
/// if `include_chrome`), and proximity phrases for consecutive clauses.
pub(crate) fn rank_query(parsed: &ParsedQuery, fields: &Fields, include_chrome: bool) -> RankQuery {
    let positive: Vec<&Clause> = parsed.positive_clauses().collect();
    let clauses = positive
        .iter()
        .map(|clause| {
            fields
                .text
                .iter()
                .filter(|(field, _)| include_chrome || *field != fields.chrome)
                .map(|&(field, weight)| Leaf {
                    query: field_query(clause, field),
                    terms: clause
                        .terms
                        .iter()
                        .map(|t| Term::from_field_text(field, t))
                        .collect(),
                    weight,
                })
                .collect()
        })
        .collect();
    let mut proximity = Vec::new();
    for pair in positive.windows(2) {
        let (Some(a), Some(b)) = (pair[0].terms.last(), pair[1].terms.first()) else {
            continue;
        };
        if a == b {
            continue;
        }
        for (name, windows) in PROXIMITY {
            let field = fields.by_name(name);
            proximity.push(Proximity {
                field,
                terms: [
                    Term::from_field_text(field, a),
                    Term::from_field_text(field, b),
                ],
                windows: windows.to_vec(),
            });
        }
    }
    RankQuery { clauses, proximity }
}

/// The query of one clause in one field: a term, or an exact phrase.
fn field_query(clause: &Clause, field: Field) -> Box<dyn Query> {
    if clause.is_phrase() {
        let terms = clause
            .terms
            .iter()
            .map(|t| Term::from_field_text(field, t))
            .collect();
        Box::new(PhraseQuery::new(terms))
    } else {
        Box::new(TermQuery::new(
            Term::from_field_text(field, &clause.terms[0]),
            IndexRecordOption::WithFreqs,
        ))
    }
}

/// The documents that hold `clause` in any text field (for filters; its score is not used).
fn clause_match(clause: &Clause, fields: &Fields) -> Box<dyn Query> {
    let per_field = fields
        .text
        .iter()
        .map(|&(field, _)| field_query(clause, field))
        .collect();
    balanced(per_field, Occur::Should).expect("there is at least one text field")
}

fn site_query(field: Field, site: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, site),
        IndexRecordOption::Basic,
    ))
}

/// Combines queries into a balanced binary tree of boolean nodes, each with two `occur`
/// clauses. `None` for no queries. (Used for filters only, which score a constant.)
fn balanced(mut queries: Vec<Box<dyn Query>>, occur: Occur) -> Option<Box<dyn Query>> {
    while queries.len() > 1 {
        let mut next = Vec::with_capacity(queries.len().div_ceil(2));
        let mut it = queries.into_iter();
        while let Some(a) = it.next() {
            match it.next() {
                Some(b) => next.push(
                    Box::new(BooleanQuery::new(vec![(occur, a), (occur, b)])) as Box<dyn Query>
                ),
                None => next.push(a),
            }
        }
        queries = next;
    }
    queries.pop()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clause(occur: Occurrence, terms: &[&str]) -> Clause {
        Clause {
            occur,
            terms: terms.iter().map(|t| t.to_string()).collect(),
        }
    }

    #[test]
    fn words_phrases_must_and_exclude_are_recognized() -> Result<()> {
        let p = parse_query(r#"Rust +async -"blocking io" -tokio "fast runtimes""#)?;
        assert_eq!(
            p.clauses,
            vec![
                clause(Occurrence::Should, &["rust"]),
                clause(Occurrence::Must, &["async"]),
                clause(Occurrence::MustNot, &["block", "io"]),
                clause(Occurrence::MustNot, &["tokio"]),
                clause(Occurrence::Should, &["fast", "runtim"]),
            ]
        );
        assert!(p.sites.is_empty());
        Ok(())
    }

    #[test]
    fn unbalanced_quote_makes_the_rest_a_phrase() -> Result<()> {
        let p = parse_query(r#"alpha "beta gamma"#)?;
        assert_eq!(
            p.clauses,
            vec![
                clause(Occurrence::Should, &["alpha"]),
                clause(Occurrence::Should, &["beta", "gamma"]),
            ]
        );
        Ok(())
    }

    #[test]
    fn site_filters_are_normalized_and_split_by_sign() -> Result<()> {
        let p = parse_query(
            "rust site:Example.COM SITE:https://docs.rs/tantivy -site:spam.example:80 site:",
        )?;
        assert_eq!(p.sites, vec!["example.com", "docs.rs"]);
        assert_eq!(p.excluded_sites, vec!["spam.example"]);
        assert_eq!(p.clauses, vec![clause(Occurrence::Should, &["rust"])]);
        Ok(())
    }

    #[test]
    fn only_site_filter_is_a_listing() -> Result<()> {
        let p = parse_query("site:example.com -draft")?;
        assert!(p.is_site_listing());
        assert_eq!(p.clauses, vec![clause(Occurrence::MustNot, &["draft"])]);
        Ok(())
    }

    #[test]
    fn nothing_to_search_for_is_empty_query() {
        for q in [
            "",
            "   ",
            "-x",
            "-x -\"y z\"",
            "((((",
            "🦀🦀",
            "\u{0}\u{7}",
            "OR",
            "-site:a.b",
        ] {
            assert!(
                matches!(parse_query(q), Err(Error::EmptyQuery)),
                "{q:?} should be an empty query"
            );
        }
    }

    #[test]
    fn hostile_input_parses_without_panicking() {
        let junk: String = (0..2048u32)
            .map(|i| char::from_u32(32 + (i * 7919) % 95).unwrap_or('x'))
            .collect();
        for q in [
            "a:(^",
            "\"unbalanced",
            "+",
            "-",
            "+-+-",
            "\"",
            "\"\"\"",
            "site:\"",
            "a\u{0}b\u{1b}[31mc",
            junk.as_str(),
            "é".repeat(600).as_str(),
        ] {
            match parse_query(q) {
                Ok(_) | Err(Error::EmptyQuery) => {}
                Err(e) => panic!("{q:?}: unexpected error {e}"),
            }
        }
    }

    #[test]
    fn term_and_phrase_limits_are_enforced() -> Result<()> {
        let many: Vec<String> = (0..100).map(|i| format!("w{i}")).collect();
        let p = parse_query(&many.join(" "))?;
        assert_eq!(p.clauses.len(), MAX_QUERY_TERMS);
        let phrase = format!("\"{}\"", many.join(" "));
        let p = parse_query(&phrase)?;
        assert_eq!(p.clauses[0].terms.len(), MAX_PHRASE_TERMS);
        Ok(())
    }

    #[test]
    fn query_is_cut_at_a_char_boundary() {
        let q = "é".repeat(MAX_QUERY_BYTES); // 2 bytes per char
        assert_eq!(truncate_to_char_boundary(&q, 1023).len(), 1022);
        // One 1024-byte word is longer than any token: nothing left to search for.
        assert!(matches!(parse_query(&q), Err(Error::EmptyQuery)));
        let q = "é ".repeat(MAX_QUERY_BYTES); // 3 bytes per word
        assert_eq!(parse_query(&q).map(|p| p.clauses.len()).ok(), Some(1));
    }

    #[test]
    fn hyphenated_word_is_a_phrase_and_duplicates_collapse() -> Result<()> {
        let p = parse_query("e-mail rust rust OR Rust")?;
        assert_eq!(
            p.clauses,
            vec![
                clause(Occurrence::Should, &["e", "mail"]),
                clause(Occurrence::Should, &["rust"]),
            ]
        );
        Ok(())
    }
}
