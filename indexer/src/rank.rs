//! The ranking query: one tantivy [`Query`] that computes a document's whole score in a fixed
//! order from its per-field BM25 scores, its proximity matches and its in-link prior.
//!
//! # The score
//!
//! For a query with positive clauses `c₁..cₙ` (a clause is a word or a quoted phrase, `+`
//! clauses included) and a document `d`:
//!
//! ```text
//! m(d)     = number of clauses matched by d in any text field
//! rel(d)   = Σ_c Σ_f w_f · BM25_f(c, d)                      (clause c in field f)
//!          + Σ_(a,b) Σ_(f,slop) w_(f,slop) · BM25_f("a b"~slop, d)   (proximity)
//!          + prior(d)
//! prior(d) = PRIOR_PER_DOUBLING_SITES · ⌊log₂(1 + inlink_sites)⌋
//!          + PRIOR_PER_DOUBLING_PAGES · ⌊log₂(1 + inlink_pages)⌋
//! depth(d) = DEPTH_PRIOR[min(url_depth, 3)]   (home page 0, `/guide/` 1, `/guide/x` 2, deeper 3+)
//! score(d) = COVERAGE · m(d) + RELEVANCE_CAP · rel(d) / (rel(d) + RELEVANCE_HALF) + depth(d)
//! ```
//!
//! with `COVERAGE` = [`COVERAGE_SCORE`] = 100, `RELEVANCE_CAP` = 85, `RELEVANCE_HALF` = 50,
//! field weights `w_f` from [`TEXT_FIELDS`], proximity windows (body: distance ≤ 3 weight 3,
//! ≤ 10 weight 1.5; title: ≤ 3 weight 2) in `query.rs`, prior weights 0.4 per doubling of
//! linking sites, 0.1 per doubling of linking pages, depth bonus 12 / 10 / 2 / 0 (at most 12,
//! so relevance and depth together stay below 97 < `COVERAGE`). BM25 is tantivy's
//! (k1 = 1.2, b = 0.75); a proximity window's BM25 takes the number of encounters (see
//! [`encounters`]) as term frequency and the sum of the two terms' idf.
//!
//! - **Coverage first.** `rel/(rel + h)` is below 1 and grows with `rel`, so the second term
//!   is always below `RELEVANCE_CAP`, and with the depth bonus below `COVERAGE`: a document
//!   matching more clauses always
//!   ranks above one matching fewer, and among documents matching as many, the order is
//!   that of `rel`. A query whose words no page holds all of falls back gracefully to the
//!   pages holding most of them.
//! - **Proximity.** For every two consecutive positive clauses of the query (last word of
//!   the first, first word of the second), sloppy phrase queries in the body (a tight and a
//!   wide window) and the title add their BM25 score, with the phrase count as frequency.
//!   tantivy's slop is a budget of moves in which a transposition costs 2, so `"a b"~s`
//!   matches `a` then `b` with up to `s` words between, and `b` then `a` with up to `s - 2`:
//!   either order counts.
//! - **Prior.** Integer logarithms of the in-link counts and a bonus for pages near the top
//!   of their site (fast fields; integers, so the same on every machine). Someone naming a
//!   site means its home page, which otherwise ties with every page that has the name in its
//!   title. It is inside `rel`, so it orders documents of equal coverage and never outweighs
//!   one more matched clause.
//! - **Network-exact.** Every part is a function of the document, the query and the BM25
//!   statistics handed in (per-field BM25 uses the statistics provider given to the search);
//!   the sums run in a fixed order (clauses in query order, fields in [`TEXT_FIELDS`] order,
//!   then proximity, then the prior), never in an order that depends on the other documents
//!   of the segment, so every shard computes the same bits.
//!
//! [`TEXT_FIELDS`]: crate::schema::TEXT_FIELDS

use std::fmt;

use tantivy::columnar::Column;
use tantivy::fieldnorm::FieldNormReader;
use tantivy::postings::{Postings, SegmentPostings};
use tantivy::query::{Bm25Weight, EnableScoring, Explanation, Query, Scorer, Weight};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocId, DocSet, Score, SegmentReader, TERMINATED, TantivyError, Term};

use crate::explain::{Evidence, ProximityEvidence, TermEvidence};
use crate::schema::names;

/// What each matched clause adds: more than everything else together can.
pub const COVERAGE_SCORE: f32 = 100.0;
/// Upper bound (never reached) of the relevance part of a score.
pub const RELEVANCE_CAP: f64 = 85.0;
/// The relevance at which the relevance part reaches half of [`RELEVANCE_CAP`]. The curve is
/// monotone, so this does not change the order; it spreads typical sums (10..200) over the
/// range so that f32 keeps their differences.
pub(crate) const RELEVANCE_HALF: f64 = 50.0;
/// Relevance is clamped to this before it is combined (far above any real BM25 sum).
const MAX_RELEVANCE: f64 = 1e12;
/// Prior per doubling of the number of linking sites (at most 32 doublings).
pub(crate) const PRIOR_PER_DOUBLING_SITES: f64 = 0.4;
/// Prior per doubling of the number of linking pages.
pub(crate) const PRIOR_PER_DOUBLING_PAGES: f64 = 0.1;
/// Prior by URL depth: a site's home page, a top-level section (or a book's front page under
/// one path, as on doc.rust-lang.org), a page of such a section, anything deeper. A
/// navigational query names a site or a section, whose every page carries that name in its
/// title; the shallower page is what its name stands for.
/// It is added after the relevance curve, so that a strong BM25 match does not flatten it,
/// and it is at most [`MAX_DEPTH_PRIOR`]: with [`RELEVANCE_CAP`] it stays below one clause.
const DEPTH_PRIOR: [f64; 4] = [MAX_DEPTH_PRIOR, 10.0, 2.0, 0.0];
/// The largest depth prior.
const MAX_DEPTH_PRIOR: f64 = 12.0;

/// One leaf: a query (of one clause in one field) and the weight its score is multiplied by.
pub(crate) struct Leaf {
    pub query: Box<dyn Query>,
    /// The clause's terms in the leaf's field (one word, or a phrase's words).
    pub terms: Vec<Term>,
    pub weight: f32,
}

impl Clone for Leaf {
    fn clone(&self) -> Self {
        Leaf {
            query: self.query.box_clone(),
            terms: self.terms.clone(),
            weight: self.weight,
        }
    }
}

/// Two query terms that score when they occur near each other in one field.
#[derive(Clone, Debug)]
pub(crate) struct Proximity {
    /// The field both terms are looked for in.
    pub field: Field,
    /// The terms, in query order (the score does not depend on their order in the text).
    pub terms: [Term; 2],
    /// Windows: (largest distance between the two positions, weight of the window's BM25).
    pub windows: Vec<(u32, f32)>,
}

/// The ranking query (module docs). Matches the documents that match at least one clause.
#[derive(Clone)]
pub(crate) struct RankQuery {
    /// Per positive clause, its per-field leaves (fixed order).
    pub clauses: Vec<Vec<Leaf>>,
    /// Term pairs: they only add to the score of documents the clauses match.
    pub proximity: Vec<Proximity>,
}

impl fmt::Debug for RankQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RankQuery")
            .field("clauses", &self.clauses.len())
            .field("proximity", &self.proximity.len())
            .finish()
    }
}

impl RankQuery {
    /// The query's weight, typed (for [`RankWeight::evidence`]).
    pub(crate) fn rank_weight(
        &self,
        enable_scoring: EnableScoring<'_>,
    ) -> tantivy::Result<RankWeight> {
        let leaf_weight = |leaf: &Leaf| -> tantivy::Result<LeafWeight> {
            Ok(LeafWeight {
                weight: leaf.query.weight(enable_scoring)?,
                boost: leaf.weight,
                terms: leaf.terms.clone(),
            })
        };
        let clauses = self
            .clauses
            .iter()
            .map(|leaves| leaves.iter().map(leaf_weight).collect())
            .collect::<tantivy::Result<_>>()?;
        let mut proximity = Vec::new();
        if let EnableScoring::Enabled {
            statistics_provider,
            ..
        } = enable_scoring
        {
            for p in &self.proximity {
                let bm25 = Bm25Weight::for_terms(statistics_provider, &p.terms)?;
                let windows = p
                    .windows
                    .iter()
                    .map(|&(distance, weight)| (distance, bm25.boost_by(weight)))
                    .collect();
                proximity.push(ProximityWeight {
                    field: p.field,
                    terms: p.terms.clone(),
                    windows,
                });
            }
        }
        Ok(RankWeight { clauses, proximity })
    }
}

impl Query for RankQuery {
    fn weight(&self, enable_scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(self.rank_weight(enable_scoring)?))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        for leaf in self.clauses.iter().flatten() {
            leaf.query.query_terms(visitor);
        }
        for p in &self.proximity {
            for term in &p.terms {
                visitor(term, true);
            }
        }
    }
}

pub(crate) struct RankWeight {
    clauses: Vec<Vec<LeafWeight>>,
    proximity: Vec<ProximityWeight>,
}

struct LeafWeight {
    weight: Box<dyn Weight>,
    boost: f32,
    /// The clause's terms in the leaf's field.
    terms: Vec<Term>,
}

struct ProximityWeight {
    field: Field,
    terms: [Term; 2],
    windows: Vec<(u32, Bm25Weight)>,
}

/// The positions of two terms in one segment, read at the documents that are scored.
struct ProximityScorer {
    /// The pair's index in [`RankQuery::proximity`].
    index: usize,
    postings: [SegmentPostings; 2],
    fieldnorms: FieldNormReader,
    windows: Vec<(u32, Bm25Weight)>,
    positions: [Vec<u32>; 2],
}

impl ProximityScorer {
    /// Whether both terms are in `doc`; then their positions are read.
    fn read(&mut self, doc: DocId) -> bool {
        for (postings, positions) in self.postings.iter_mut().zip(&mut self.positions) {
            if postings.doc() < doc {
                postings.seek(doc);
            }
            if postings.doc() != doc {
                return false;
            }
            postings.positions(positions);
        }
        true
    }

    /// The proximity score of `doc` (0 when the two terms are not both in it).
    fn score(&mut self, doc: DocId) -> f64 {
        if !self.read(doc) {
            return 0.0;
        }
        let fieldnorm_id = self.fieldnorms.fieldnorm_id(doc);
        let mut score = 0.0;
        for (distance, bm25) in &self.windows {
            let count = encounters(&self.positions[0], &self.positions[1], *distance);
            if count > 0 {
                score += f64::from(bm25.score(fieldnorm_id, count));
            }
        }
        score
    }
}

/// How often the two terms meet within `distance` positions: walking both position lists
/// merged in text order, the number of steps from one term to the other that are at most
/// `distance` long. Symmetric in the two lists, so either order in the text counts alike.
pub(crate) fn encounters(a: &[u32], b: &[u32], distance: u32) -> u32 {
    let (mut i, mut j) = (0, 0);
    let mut previous: Option<(u32, bool)> = None;
    let mut count = 0;
    while i < a.len() || j < b.len() {
        let from_a = j >= b.len() || (i < a.len() && a[i] <= b[j]);
        let position = if from_a {
            i += 1;
            a[i - 1]
        } else {
            j += 1;
            b[j - 1]
        };
        if let Some((last, last_from_a)) = previous
            && last_from_a != from_a
            && position - last <= distance
        {
            count += 1;
        }
        previous = Some((position, from_a));
    }
    count
}

impl RankWeight {
    fn rank_scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<RankScorer> {
        let leaf = |leaf: &LeafWeight| leaf.weight.scorer(reader, boost * leaf.boost);
        let clauses = self
            .clauses
            .iter()
            .map(|leaves| leaves.iter().map(leaf).collect())
            .collect::<tantivy::Result<Vec<Vec<_>>>>()?;
        let mut proximity = Vec::new();
        for (index, p) in self.proximity.iter().enumerate() {
            let inverted = reader.inverted_index(p.field)?;
            let read = |term: &Term| {
                inverted.read_postings(term, IndexRecordOption::WithFreqsAndPositions)
            };
            if let (Some(a), Some(b)) = (read(&p.terms[0])?, read(&p.terms[1])?) {
                proximity.push(ProximityScorer {
                    index,
                    postings: [a, b],
                    fieldnorms: reader.get_fieldnorms_reader(p.field)?,
                    windows: p
                        .windows
                        .iter()
                        .map(|(d, bm25)| (*d, bm25.boost_by(boost)))
                        .collect(),
                    positions: [Vec::new(), Vec::new()],
                });
            }
        }
        // A shard migrated from an older schema always has them; without, no prior.
        let fast = reader.fast_fields();
        let inlink_sites = fast.u64(names::INLINK_SITES).ok();
        let inlink_pages = fast.u64(names::INLINK_PAGES).ok();
        let url_depth = fast.u64(names::URL_DEPTH).ok();
        let mut scorer = RankScorer {
            clauses,
            proximity,
            inlink_sites,
            inlink_pages,
            url_depth,
            doc: 0,
        };
        scorer.doc = scorer.min_doc();
        Ok(scorer)
    }

    /// What the scores of `docs` (ascending, each matching the query) are made of, as
    /// [`crate::explain`] recomputes them: per clause and field that matched, the frequency
    /// and the field's fieldnorm; the proximity encounters per window; the in-link counts.
    /// One pass over the segment's postings for all of them.
    pub(crate) fn evidence(
        &self,
        reader: &SegmentReader,
        docs: &[DocId],
    ) -> tantivy::Result<Vec<Evidence>> {
        let mut scorer = self.rank_scorer(reader, 1.0)?;
        // A word's postings, read once per segment, for its frequencies.
        let mut word_postings: Vec<Vec<Option<SegmentPostings>>> = Vec::new();
        for leaves in &self.clauses {
            let mut row = Vec::with_capacity(leaves.len());
            for leaf in leaves {
                row.push(match leaf.terms.as_slice() {
                    [term] => reader
                        .inverted_index(term.field())?
                        .read_postings(term, IndexRecordOption::WithFreqs)?,
                    _ => None,
                });
            }
            word_postings.push(row);
        }
        let mut out = Vec::with_capacity(docs.len());
        for &doc in docs {
            if scorer.doc() > doc || scorer.seek(doc) != doc {
                return Err(TantivyError::InvalidArgument(format!(
                    "document {doc} does not match"
                )));
            }
            let mut evidence = Evidence::default();
            let rows = self
                .clauses
                .iter()
                .zip(&scorer.clauses)
                .zip(&mut word_postings);
            for (c, ((leaves, scorers), postings)) in rows.enumerate() {
                for ((leaf, leaf_scorer), postings) in leaves.iter().zip(scorers).zip(postings) {
                    if leaf_scorer.doc() != doc {
                        continue;
                    }
                    let field = leaf.terms[0].field();
                    let freq = match postings {
                        // A word: its frequency, straight from the postings.
                        Some(p) => {
                            if p.doc() < doc {
                                p.seek(doc);
                            }
                            (p.doc() == doc).then(|| p.term_freq())
                        }
                        // A phrase: tantivy's scorer counts it; its explanation says the count.
                        None => explained_freq(&leaf.weight.explain(reader, doc)?),
                    }
                    .ok_or_else(|| {
                        TantivyError::InternalError(format!(
                            "no frequency for a matching leaf of document {doc}"
                        ))
                    })?;
                    evidence.terms.push(TermEvidence {
                        clause: c as u32,
                        field: reader.schema().get_field_name(field).to_string(),
                        freq,
                        fieldnorm: reader.get_fieldnorms_reader(field)?.fieldnorm_id(doc),
                    });
                }
            }
            for p in &mut scorer.proximity {
                if !p.read(doc) {
                    continue;
                }
                let fieldnorm = p.fieldnorms.fieldnorm_id(doc);
                for (window, (distance, _)) in p.windows.iter().enumerate() {
                    let encounters = encounters(&p.positions[0], &p.positions[1], *distance);
                    if encounters > 0 {
                        evidence.proximity.push(ProximityEvidence {
                            pair: p.index as u32,
                            window: window as u32,
                            encounters,
                            fieldnorm,
                        });
                    }
                }
            }
            (evidence.inlink_sites, evidence.inlink_pages) = scorer.inlinks(doc);
            out.push(evidence);
        }
        Ok(out)
    }
}

/// The term (or phrase) frequency in tantivy's BM25 explanation of a leaf (its `freq`
/// constant; a phrase scorer does not expose its count otherwise).
fn explained_freq(explanation: &Explanation) -> Option<u32> {
    fn find(value: &serde_json::Value) -> Option<f64> {
        let description = value.get("description")?.as_str()?;
        if description.starts_with("freq,") {
            return value.get("value")?.as_f64();
        }
        value.get("details")?.as_array()?.iter().find_map(find)
    }
    let freq = find(&serde_json::to_value(explanation).ok()?)?;
    (freq >= 1.0 && freq <= f64::from(u32::MAX)).then_some(freq as u32)
}

impl Weight for RankWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        Ok(Box::new(self.rank_scorer(reader, boost)?))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.scorer(reader, 1.0)?;
        if scorer.doc() > doc || scorer.seek(doc) != doc {
            return Err(TantivyError::InvalidArgument(format!(
                "document {doc} does not match"
            )));
        }
        Ok(Explanation::new("peersearch rank", scorer.score()))
    }
}

struct RankScorer {
    clauses: Vec<Vec<Box<dyn Scorer>>>,
    proximity: Vec<ProximityScorer>,
    inlink_sites: Option<Column<u64>>,
    inlink_pages: Option<Column<u64>>,
    url_depth: Option<Column<u64>>,
    doc: DocId,
}

impl RankScorer {
    fn min_doc(&self) -> DocId {
        self.clauses
            .iter()
            .flatten()
            .map(|s| s.doc())
            .min()
            .unwrap_or(TERMINATED)
    }

    /// The document's in-link counts.
    fn inlinks(&self, doc: DocId) -> (u64, u64) {
        let read =
            |column: &Option<Column<u64>>| column.as_ref().and_then(|c| c.first(doc)).unwrap_or(0);
        (read(&self.inlink_sites), read(&self.inlink_pages))
    }

    /// The document's URL depth; without the column (never after migration), the deepest.
    fn depth(&self, doc: DocId) -> u64 {
        self.url_depth
            .as_ref()
            .and_then(|c| c.first(doc))
            .unwrap_or(u64::MAX)
    }
}

/// The in-link prior (part of the relevance).
pub(crate) fn prior(inlink_sites: u64, inlink_pages: u64) -> f64 {
    let doublings = |n: u64| f64::from(n.saturating_add(1).ilog2());
    PRIOR_PER_DOUBLING_SITES * doublings(inlink_sites)
        + PRIOR_PER_DOUBLING_PAGES * doublings(inlink_pages)
}

/// The URL-depth prior (added after the relevance curve).
pub(crate) fn depth_prior(url_depth: u64) -> f64 {
    let last = DEPTH_PRIOR.len() - 1;
    DEPTH_PRIOR[usize::try_from(url_depth).map_or(last, |d| d.min(last))]
}

/// The relevance part of a score: the curve over the relevance sum.
pub(crate) fn relevance_part(relevance: f64) -> f64 {
    // Hostile statistics can make BM25 huge or NaN; the bound keeps the arithmetic finite.
    let relevance = if relevance > 0.0 {
        relevance.min(MAX_RELEVANCE)
    } else {
        0.0
    };
    RELEVANCE_CAP * relevance / (relevance + RELEVANCE_HALF)
}

/// The score of a document from its coverage and relevance (module docs).
pub(crate) fn combine(matched: u32, relevance: f64, depth_prior: f64) -> Score {
    let part = relevance_part(relevance);
    let depth = if depth_prior > 0.0 {
        depth_prior.min(MAX_DEPTH_PRIOR)
    } else {
        0.0
    };
    (f64::from(COVERAGE_SCORE) * f64::from(matched) + part + depth) as Score
}

impl DocSet for RankScorer {
    fn advance(&mut self) -> DocId {
        let doc = self.doc;
        if doc == TERMINATED {
            return TERMINATED;
        }
        for scorer in self.clauses.iter_mut().flatten() {
            if scorer.doc() == doc {
                scorer.advance();
            }
        }
        self.doc = self.min_doc();
        self.doc
    }

    fn seek(&mut self, target: DocId) -> DocId {
        if self.doc >= target {
            return self.doc;
        }
        for scorer in self.clauses.iter_mut().flatten() {
            if scorer.doc() < target {
                scorer.seek(target);
            }
        }
        self.doc = self.min_doc();
        self.doc
    }

    fn doc(&self) -> DocId {
        self.doc
    }

    fn size_hint(&self) -> u32 {
        self.clauses
            .iter()
            .flatten()
            .map(|s| s.size_hint())
            .max()
            .unwrap_or(0)
    }

    fn cost(&self) -> u64 {
        self.clauses.iter().flatten().map(|s| s.cost()).sum()
    }
}

impl Scorer for RankScorer {
    fn score(&mut self) -> Score {
        let doc = self.doc;
        let mut matched = 0u32;
        let mut relevance = 0f64;
        for clause in &mut self.clauses {
            let mut hit = false;
            for scorer in clause {
                if scorer.doc() == doc {
                    relevance += f64::from(scorer.score());
                    hit = true;
                }
            }
            matched += u32::from(hit);
        }
        for proximity in &mut self.proximity {
            relevance += proximity.score(doc);
        }
        let (sites, pages) = self.inlinks(doc);
        relevance += prior(sites, pages);
        combine(matched, relevance, depth_prior(self.depth(doc)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Result;
    use crate::shard::Shard;
    use crate::types::{Document, SearchResults};

    fn doc(path: &str, title: &str, body: &str) -> Document {
        Document {
            url: format!("http://rank.example/{path}"),
            site: "rank.example".into(),
            title: title.into(),
            body: body.into(),
            ..Document::default()
        }
    }

    fn shard_with(docs: &[Document]) -> Result<Shard> {
        let shard = Shard::open_in_ram()?;
        for d in docs {
            shard.upsert(d)?;
        }
        shard.commit()?;
        Ok(shard)
    }

    fn urls(r: &SearchResults) -> Vec<&str> {
        r.hits
            .iter()
            .map(|h| h.url.trim_start_matches("http://rank.example/"))
            .collect()
    }

    const FILLER: &str = "this page talks about many other things in some detail and length";

    #[test]
    fn words_near_each_other_in_the_body_beat_a_word_repeated_in_title_or_navigation() -> Result<()>
    {
        let near = doc(
            "near",
            "Configuration",
            &format!("{FILLER}. To tune the widget cache eviction policy, edit the file. {FILLER}"),
        );
        let title = doc("title", "Cache cache cache", FILLER);
        // All four words, but only in the navigation, plus one in the title.
        let nav = Document {
            chrome: "Home | Widget | Cache | Eviction | Policy | About".into(),
            ..doc("nav", "Cache", FILLER)
        };
        let scattered = doc(
            "scattered",
            "Notes",
            &format!(
                "widget {FILLER} {FILLER} cache {FILLER} {FILLER} eviction {FILLER} {FILLER} policy"
            ),
        );
        let shard = shard_with(&[title, nav, scattered, near])?;
        let r = shard.search("widget cache eviction policy", 10, None)?;
        assert_eq!(urls(&r)[..2], ["near", "scattered"], "{r:#?}");
        assert_eq!(urls(&r).len(), 4);
        // One word of four each (the navigation's words do not count: the pages' own texts
        // hold them all).
        assert!(r.hits[2].score < COVERAGE_SCORE * 2.0, "{r:#?}");
        Ok(())
    }

    #[test]
    fn pages_matching_only_in_their_chrome_are_left_out_unless_no_page_has_the_words() -> Result<()>
    {
        let menu = |name: &str| Document {
            chrome: "Guides on migration, troubleshooting and the glossary | Home | About".into(),
            ..doc(name, &format!("Topic {name}"), FILLER)
        };
        let content = doc(
            "content",
            "Upgrading",
            &format!("{FILLER}. Read about migration and troubleshooting in the glossary."),
        );
        let shard = shard_with(&[menu("m1"), menu("m2"), content.clone(), menu("m3")])?;
        let r = shard.search("migration troubleshooting glossary", 10, None)?;
        assert_eq!(urls(&r), vec!["content"], "{r:#?}");
        // One word in no page's own text: the chrome is searched, the content page first.
        let r = shard.search("migration troubleshooting about", 10, None)?;
        assert_eq!(urls(&r).len(), 4, "{r:#?}");
        // No page holds the words in its text at all: the menus are better than nothing.
        let menus_only = shard_with(&[menu("m1"), menu("m2")])?;
        let r = menus_only.search("glossary", 10, None)?;
        assert_eq!(urls(&r), vec!["m1", "m2"]);
        // The decision follows the statistics handed in, as in a network: a shard that holds
        // only menus does not return them when the merged statistics show a content page.
        let stats = {
            let mut s = menus_only.term_stats("migration troubleshooting glossary")?;
            s.merge(&shard_with(&[content])?.term_stats("migration troubleshooting glossary")?);
            s
        };
        let r = menus_only.search("migration troubleshooting glossary", 10, Some(&stats))?;
        assert!(r.hits.is_empty(), "{r:#?}");
        Ok(())
    }

    #[test]
    fn all_terms_beat_more_frequent_partial_matches() -> Result<()> {
        let shard = shard_with(&[
            doc(
                "partial",
                "alpha beta",
                "alpha beta alpha beta alpha beta alpha beta",
            ),
            doc(
                "all",
                "",
                &format!("{FILLER} alpha {FILLER} beta {FILLER} gamma {FILLER}"),
            ),
            doc("one", "gamma gamma", "gamma gamma gamma gamma"),
        ])?;
        let r = shard.search("alpha beta gamma", 10, None)?;
        assert_eq!(urls(&r), vec!["all", "partial", "one"]);
        assert!(r.hits[0].score > 3.0 * COVERAGE_SCORE);
        assert!(r.hits[1].score < 3.0 * COVERAGE_SCORE);
        // Graceful fallback: no page has every word, the ones with most come first.
        let r = shard.search("alpha beta gamma missingword", 10, None)?;
        assert_eq!(urls(&r), vec!["all", "partial", "one"]);
        Ok(())
    }

    #[test]
    fn proximity_counts_in_either_order() -> Result<()> {
        let shard = shard_with(&[
            doc("forward", "", &format!("{FILLER} lorem ipsum {FILLER}")),
            doc("reversed", "", &format!("{FILLER} ipsum lorem {FILLER}")),
            doc("apart", "", &format!("lorem {FILLER} ipsum {FILLER}")),
        ])?;
        for q in ["lorem ipsum", "ipsum lorem"] {
            let r = shard.search(q, 10, None)?;
            assert_eq!(urls(&r)[2], "apart", "{q}: {r:#?}");
            assert_eq!(
                r.hits[0].score.to_bits(),
                r.hits[1].score.to_bits(),
                "{q}: either order scores alike"
            );
            assert!(r.hits[1].score > r.hits[2].score, "{q}");
        }
        Ok(())
    }

    #[test]
    fn the_prior_breaks_ties_but_never_beats_coverage() -> Result<()> {
        let body = format!("{FILLER} tiebreak words here");
        let plain = doc("a/b/plain", "", &body);
        let linked = Document {
            inlink_sites: 40,
            inlink_pages: 300,
            ..doc("a/b/linked", "", &body)
        };
        // The most linked page at the top of its site, but missing one word.
        let famous = Document {
            inlink_sites: u32::MAX,
            inlink_pages: u32::MAX,
            ..doc("", "tiebreak words", "tiebreak words tiebreak words")
        };
        let shard = shard_with(&[plain, linked, famous])?;
        let r = shard.search("tiebreak words here", 10, None)?;
        assert_eq!(urls(&r), vec!["a/b/linked", "a/b/plain", ""], "{r:#?}");
        Ok(())
    }

    #[test]
    fn operators_keep_their_meaning() -> Result<()> {
        let shard = shard_with(&[
            doc("both", "", "red apple and green pear"),
            doc("red", "", "red red red apple"),
            doc("pear", "", "green pear only"),
            doc("phrase", "", "green apple red pear"),
        ])?;
        // `+pear` is required even where other pages match more of the words.
        let r = shard.search("red apple +pear", 10, None)?;
        assert_eq!(urls(&r).len(), 3);
        assert_eq!(urls(&r)[2], "pear");
        let r = shard.search("\"red apple\"", 10, None)?;
        assert_eq!(urls(&r), vec!["red", "both"]);
        let r = shard.search("apple -green", 10, None)?;
        assert_eq!(urls(&r), vec!["red"]);
        let r = shard.search("apple -\"green pear\"", 10, None)?;
        assert_eq!(urls(&r), vec!["phrase", "red"], "a tie, in URL order");
        Ok(())
    }

    #[test]
    fn one_more_clause_beats_any_relevance() {
        for m in 0..32 {
            assert!(
                combine(m + 1, 0.0, 0.0) > combine(m, 1e30, MAX_DEPTH_PRIOR),
                "{m}"
            );
            assert!(
                combine(m + 1, 1e-6, 0.0) > combine(m, f64::MAX, f64::MAX),
                "{m}"
            );
        }
        assert_eq!(combine(2, f64::NAN, 0.0), combine(2, 0.0, 0.0));
        assert_eq!(combine(2, 1.0, f64::NAN), combine(2, 1.0, 0.0));
        assert!(combine(1, 2.0, 0.0) > combine(1, 1.0, 0.0));
    }

    #[test]
    fn encounters_count_near_steps_in_either_order() {
        // a b . . a . . . . . . b
        let a = [0, 4];
        let b = [1, 11];
        assert_eq!(encounters(&a, &b, 1), 1);
        assert_eq!(encounters(&b, &a, 1), 1);
        assert_eq!(encounters(&a, &b, 3), 2, "b at 1 to a at 4");
        assert_eq!(encounters(&a, &b, 7), 3);
        assert_eq!(encounters(&a, &[], 7), 0);
        assert_eq!(encounters(&[5], &[2], 3), 1, "b before a");
        assert_eq!(encounters(&[5], &[2], 2), 0);
    }
}
