//! Result snippets: a short passage of the page with the query terms in `<b>`…`</b>`, and
//! everything else HTML-escaped.

use std::collections::BTreeMap;

use tantivy::schema::Field;
use tantivy::snippet::SnippetGenerator;

use crate::schema::en_stem_analyzer;
use crate::text::truncate_to_char_boundary;

/// Longest snippet, in characters: about two lines of a result page, like the big engines.
pub const SNIPPET_MAX_CHARS: usize = 200;
/// How much of a text (in bytes) a snippet is looked for in. The generator tokenizes the
/// whole text it is given, and bodies can be large; a match beyond this is rare to be the
/// best passage, and the page lead is shown instead.
const SNIPPET_SOURCE_BYTES: usize = 64 * 1024;

/// Makes snippets for one query.
pub(crate) struct Snippets {
    generator: SnippetGenerator,
}

impl Snippets {
    /// `terms` maps each analyzed query term to its weight (rarer terms weigh more, so the
    /// passage with the rare word wins). `field` is only a label for tantivy here.
    pub(crate) fn new(terms: BTreeMap<String, f32>, field: Field) -> Self {
        Snippets {
            generator: SnippetGenerator::new(terms, en_stem_analyzer(), field, SNIPPET_MAX_CHARS),
        }
    }

    /// The snippet of a page: the best passage of the body that holds query terms, else of
    /// the description, else the start of the body (or of the description), unhighlighted.
    pub(crate) fn make(&self, body: &str, description: &str) -> String {
        for text in [body, description] {
            let snippet = self
                .generator
                .snippet(truncate_to_char_boundary(text, SNIPPET_SOURCE_BYTES));
            if !snippet.highlighted().is_empty() {
                // `to_html` escapes everything outside the highlights and inside them.
                return snippet.to_html();
            }
        }
        let lead = if body.trim().is_empty() {
            description
        } else {
            body
        };
        html_escape::encode_safe(lead_text(lead.trim(), SNIPPET_MAX_CHARS)).into_owned()
    }
}

/// The first `max_chars` characters of `text`, cut back to a word boundary when one is near.
fn lead_text(text: &str, max_chars: usize) -> &str {
    let Some((end, _)) = text.char_indices().nth(max_chars) else {
        return text;
    };
    let head = &text[..end];
    match head.rfind(char::is_whitespace) {
        Some(space) if space > end / 2 => head[..space].trim_end(),
        _ => head,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::schema::Schema;

    fn snippets(terms: &[&str]) -> Snippets {
        let mut b = Schema::builder();
        let f = b.add_text_field("body", tantivy::schema::TEXT);
        let mut analyzer = en_stem_analyzer();
        let terms = terms
            .iter()
            .flat_map(|t| crate::schema::analyze(&mut analyzer, t))
            .map(|t| (t, 1.0))
            .collect();
        Snippets::new(terms, f)
    }

    #[test]
    fn highlights_stemmed_matches_and_escapes_markup() {
        let s = snippets(&["running"]);
        let html = s.make("<script>alert(1)</script> dogs & cats running \"fast\"", "");
        assert!(html.contains("<b>running</b>"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(html.contains("&amp;"), "{html}");
        assert!(!html.contains("<script"), "{html}");
        assert_eq!(html.matches('<').count(), 2, "only <b> and </b>: {html}");
    }

    #[test]
    fn falls_back_to_description_then_to_escaped_lead() {
        let s = snippets(&["zebra"]);
        // tantivy ends a fragment at the last token: the trailing `>` is not part of it.
        assert_eq!(
            s.make("no match here", "a Zebra <i>"),
            "a <b>Zebra</b> &lt;i"
        );
        let long = format!("<p> {}", "word ".repeat(100));
        let html = s.make(&long, "");
        assert!(html.starts_with("&lt;p&gt; word"), "{html}");
        assert!(html.chars().count() <= SNIPPET_MAX_CHARS + 10, "{html}");
        assert_eq!(s.make("", "only <desc>"), "only &lt;desc&gt;");
    }

    #[test]
    fn snippet_is_short() {
        let s = snippets(&["needle"]);
        let body = format!("{} needle {}", "hay ".repeat(500), "hay ".repeat(500));
        let html = s.make(&body, "");
        assert!(html.contains("<b>needle</b>"));
        assert!(html.len() <= SNIPPET_MAX_CHARS + "<b></b>".len(), "{html}");
    }

    #[test]
    fn lead_text_cuts_at_a_word_boundary_and_char_boundary() {
        assert_eq!(lead_text("short", 10), "short");
        assert_eq!(lead_text("hello wonderful world", 18), "hello wonderful");
        assert_eq!(lead_text("hello wonderful world", 12), "hello wonder");
        assert_eq!(lead_text("éééééé", 3), "ééé");
    }
}
