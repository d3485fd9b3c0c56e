//! The `/why` page: how one result's score is made, from its [`Explanation`].
//!
//! Everything in an explanation came from the peers (the clause and field names, the words)
//! and is escaped like every other text from outside; the numbers are formatted here.

use std::fmt::Write as _;

use peersearch_indexer::{Explanation, MAX_EVIDENCE_ENTRIES, ProximityPart, TermPart};

use crate::api::{ApiHit, SearchParams};
use crate::escape::escape;
use crate::pages::{Head, doc_href, layout, results_href, search_form};
use crate::text::{display_title, group_digits, is_linkable, short_peer_id, truncate_chars};

/// Longest title shown, in characters (as on the results page).
const MAX_TITLE_CHARS: usize = 300;
/// Longest URL, clause, field or word shown, in characters.
const MAX_SHOWN_CHARS: usize = 200;
/// Most rows a table shows: as many entries as a leaf's evidence may hold, so a real
/// explanation is never cut.
const MAX_ROWS: usize = MAX_EVIDENCE_ENTRIES;

/// `x` with `places` decimals.
fn fixed(x: f64, places: usize) -> String {
    format!("{x:.places$}")
}

/// Text from a peer, shortened and escaped.
fn text(s: &str) -> String {
    escape(&truncate_chars(s, MAX_SHOWN_CHARS))
}

/// `<table>` with a hidden caption, column headers and the given rows (already markup).
fn table(caption: &str, headers: &[&str], rows: &[String]) -> String {
    let mut out = format!(
        "<div class=\"table-wrap\">\n<table>\n<caption class=\"visually-hidden\">{caption}</caption>\n<thead><tr>"
    );
    for h in headers {
        let _ = write!(out, "<th scope=\"col\">{h}</th>");
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in rows.iter().take(MAX_ROWS) {
        out.push_str(row);
        out.push('\n');
    }
    out.push_str("</tbody>\n</table>\n</div>");
    if rows.len() > MAX_ROWS {
        let _ = write!(
            out,
            "\n<p class=\"meta\">and {} more</p>",
            group_digits((rows.len() - MAX_ROWS) as u64)
        );
    }
    out
}

fn term_row(t: &TermPart, num_docs: u64) -> String {
    let labelled = t.words.len() > 1;
    let label = |word: &str| {
        if labelled {
            format!("<code>{}</code> ", text(word))
        } else {
            String::new()
        }
    };
    let df: Vec<String> = t
        .words
        .iter()
        .map(|w| {
            format!(
                "{}{} / {}",
                label(&w.word),
                group_digits(w.doc_freq),
                group_digits(num_docs)
            )
        })
        .collect();
    let idf: Vec<String> = t
        .words
        .iter()
        .map(|w| format!("{}{}", label(&w.word), fixed(f64::from(w.idf), 3)))
        .collect();
    format!(
        "<tr><td><code>{clause}</code></td><td>{field}</td><td>{weight}</td><td>{tf}</td><td>{len}</td><td>{avg}</td><td>{df}</td><td>{idf}</td><td>{value}</td></tr>",
        clause = text(&t.clause),
        field = text(&t.field),
        weight = fixed(f64::from(t.weight), 2),
        tf = group_digits(u64::from(t.term_freq)),
        len = group_digits(u64::from(t.field_length)),
        avg = fixed(f64::from(t.average_field_length), 1),
        df = df.join("<br>"),
        idf = idf.join("<br>"),
        value = fixed(f64::from(t.value), 3),
    )
}

fn proximity_row(p: &ProximityPart) -> String {
    format!(
        "<tr><td><code>{a}</code> <code>{b}</code></td><td>{field}</td><td>{distance}</td><td>{weight}</td><td>{encounters}</td><td>{len}</td><td>{avg}</td><td>{idf}</td><td>{value}</td></tr>",
        a = text(&p.words[0]),
        b = text(&p.words[1]),
        field = text(&p.field),
        distance = group_digits(u64::from(p.max_distance)),
        weight = fixed(f64::from(p.weight), 2),
        encounters = group_digits(u64::from(p.encounters)),
        len = group_digits(u64::from(p.field_length)),
        avg = fixed(f64::from(p.average_field_length), 1),
        idf = fixed(f64::from(p.idf), 3),
        value = fixed(f64::from(p.value), 3),
    )
}

/// The explanation itself: score, formula, the parts and their sum.
fn explanation_html(e: &Explanation, hit_score: f32) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<dl class="facts">
<dt>Score</dt><dd>{score}</dd>
<dt>Documents (N)</dt><dd>{n}</dd>
<dt>BM25</dt><dd>k1 = {k1}, b = {b}</dd>
</dl>
<p class="formula"><code>score = coverage + relevance + depth + constant</code>, where <code>relevance = cap · sum / (sum + half)</code> and <code>sum = Σ terms + Σ proximity + prior</code>; each term is <code>weight · idf · (k1 + 1) · tf / (tf + k1 · (1 − b + b · length / average length))</code>.</p>"#,
        score = fixed(f64::from(e.score), 3),
        n = group_digits(e.num_docs),
        k1 = fixed(f64::from(e.bm25.k1), 2),
        b = fixed(f64::from(e.bm25.b), 2),
    );
    if e.score.to_bits() != hit_score.to_bits() {
        let _ = writeln!(
            out,
            "<p class=\"notice\" role=\"status\">The peer that answered gave this result the score {}; recomputed from its evidence it is {}.</p>",
            fixed(f64::from(hit_score), 3),
            fixed(f64::from(e.score), 3),
        );
    }

    let _ = writeln!(
        out,
        "<h2>Coverage</h2>\n<p>{matched} of {clauses} words or phrases of the query matched, {per} each: <strong>{value}</strong>.</p>",
        matched = group_digits(u64::from(e.coverage.matched)),
        clauses = group_digits(u64::from(e.coverage.clauses)),
        per = fixed(f64::from(e.coverage.per_clause), 1),
        value = fixed(e.coverage.value, 3),
    );

    out.push_str("<h2>Terms</h2>\n");
    if e.terms.is_empty() {
        out.push_str("<p>No word of the query scored in this page.</p>\n");
    } else {
        let rows: Vec<String> = e.terms.iter().map(|t| term_row(t, e.num_docs)).collect();
        out.push_str(&table(
            "Each word or phrase in each field where it matched",
            &[
                "Clause",
                "Field",
                "Weight",
                "tf",
                "Field length",
                "Avg length",
                "df / N",
                "idf",
                "Value",
            ],
            &rows,
        ));
        out.push('\n');
    }

    out.push_str("<h2>Proximity</h2>\n");
    if e.proximity.is_empty() {
        out.push_str("<p>No two consecutive words of the query were found near each other.</p>\n");
    } else {
        let rows: Vec<String> = e.proximity.iter().map(proximity_row).collect();
        out.push_str(&table(
            "Consecutive words of the query found near each other",
            &[
                "Words",
                "Field",
                "Within",
                "Weight",
                "Times",
                "Field length",
                "Avg length",
                "idf",
                "Value",
            ],
            &rows,
        ));
        out.push('\n');
    }

    let _ = writeln!(
        out,
        "<h2>Links to the page</h2>\n<p>Linked from {sites} and {pages}; {per_site} per doubling of the sites and {per_page} per doubling of the pages: <strong>{value}</strong>.</p>",
        sites = crate::text::plural(e.prior.inlink_sites, "site", "sites"),
        pages = crate::text::plural(e.prior.inlink_pages, "page", "pages"),
        per_site = fixed(e.prior.per_doubling_sites, 2),
        per_page = fixed(e.prior.per_doubling_pages, 2),
        value = fixed(e.prior.value, 3),
    );

    let terms: f64 = e.terms.iter().map(|t| f64::from(t.value)).sum();
    let proximity: f64 = e.proximity.iter().map(|p| f64::from(p.value)).sum();
    let r = &e.relevance;
    let _ = writeln!(
        out,
        "<h2>Relevance</h2>\n<p>sum = {terms} (terms) + {proximity} (proximity) + {prior} (links) = {sum}</p>\n<p>relevance = {cap} · {sum} / ({sum} + {half}) = <strong>{value}</strong></p>",
        terms = fixed(terms, 3),
        proximity = fixed(proximity, 3),
        prior = fixed(e.prior.value, 3),
        sum = fixed(r.sum, 3),
        cap = fixed(r.cap, 1),
        half = fixed(r.half, 1),
        value = fixed(r.value, 3),
    );

    let _ = writeln!(
        out,
        "<h2>URL depth</h2>\n<p>{depth} deep: <strong>{value}</strong>.</p>",
        depth = crate::text::plural(e.depth.url_depth, "path segment", "path segments"),
        value = fixed(e.depth.value, 3),
    );

    let _ = writeln!(
        out,
        "<h2>Total</h2>\n<p class=\"total\">The parts add up to the score: {coverage} (coverage) + {relevance} (relevance) + {depth} (depth) + {constant} (constant) = <strong>{score}</strong>.</p>",
        coverage = fixed(e.coverage.value, 3),
        relevance = fixed(e.relevance.value, 3),
        depth = fixed(e.depth.value, 3),
        constant = fixed(f64::from(e.constant), 3),
        score = fixed(f64::from(e.score), 3),
    );
    out
}

/// `GET /why?q=...&url=...`: how `hit`, a result of the search `params`, scored.
pub fn why_page(params: &SearchParams, hit: &ApiHit) -> String {
    let title = truncate_chars(display_title(hit), MAX_TITLE_CHARS);
    let shown_url = text(&hit.url);
    let url = if is_linkable(&hit.url) {
        format!(
            "<a href=\"{}\" rel=\"noreferrer\">{shown_url}</a>",
            escape(&hit.url)
        )
    } else {
        shown_url
    };
    let mut main = format!(
        "<article class=\"why\">\n<h1>Why this result: {title}</h1>\n<p class=\"url\">{url}</p>\n<p class=\"meta\">A result for <strong>{q}</strong> from peer <code title=\"{peer}\">{short}</code> · <a href=\"{results}\">back to the results</a> · <a href=\"{cached}\">cached text</a></p>\n",
        title = escape(&title),
        q = escape(&params.q),
        peer = escape(&hit.peer),
        short = escape(&short_peer_id(&hit.peer)),
        results = escape(&results_href(params, params.offset)),
        cached = escape(&doc_href(&hit.url)),
    );
    match &hit.explanation {
        Some(e) => main.push_str(&explanation_html(e, hit.score)),
        None => {
            let _ = writeln!(
                main,
                "<p class=\"notice\" role=\"status\">There is no explanation of this result's score ({}): the peer that answered with it did not send what it takes.</p>",
                fixed(f64::from(hit.score), 3)
            );
        }
    }
    main.push_str("</article>");
    layout(&format!("{title} - why"), &Head::default(), &main)
}

/// The `/why` page for a URL that is not among the results of the search `params` (any
/// more): what happened, and the way back.
pub fn why_missing_page(params: &SearchParams, url: &str) -> String {
    let main = format!(
        "<h1>Result not found</h1>\n<p class=\"error\" role=\"alert\">The page <code>{url}</code> is not among these results for <strong>{q}</strong>: the results may have changed since.</p>\n<p><a href=\"{results}\">Back to the results</a></p>\n{form}",
        url = text(url),
        q = escape(&params.q),
        results = escape(&results_href(params, params.offset)),
        form = search_form(&params.q, false, true),
    );
    layout("Result not found", &Head::default(), &main)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_have_fixed_decimals() {
        assert_eq!(fixed(7.2134, 3), "7.213");
        assert_eq!(fixed(88.06, 1), "88.1");
        assert_eq!(fixed(f64::NAN, 2), "NaN");
    }
}
