//! How a score is made, in two forms that are one representation:
//!
//! - [`Evidence`]: what a leaf reports with each hit, the document's side of the score (per
//!   clause and field the term frequency and field length, the proximity encounters, the
//!   in-link counts). It is small and carries no statistics.
//! - [`Explanation`]: the evidence recomputed with the statistics the query was scored with
//!   ([`explain`]): every part with the numbers it came from (document frequency, document
//!   count, average field length, idf, BM25 parameters, field weight, priors), the parts
//!   adding up to the score.
//!
//! [`explain`] runs the very arithmetic of the ranking query (tantivy's BM25 weights, the
//! same boosts, the same summation order), so the score it gives equals the leaf's score bit
//! for bit when the evidence is true. A root that sent the statistics can thus check every
//! hit a leaf returns (a forged score does not match its evidence) and show a person why a
//! result ranks where it does, with the network-wide statistics rather than a leaf's own.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use tantivy::fieldnorm::FieldNormReader;
use tantivy::query::{Bm25StatisticsProvider, Bm25Weight};
use tantivy::schema::{Field, Schema};
use tantivy::{Score, Term};

use crate::error::{Error, Result};
use crate::query::{needs_chrome, parse_query, rank_query};
use crate::rank::{self, Leaf};
use crate::schema::{Fields, build_schema, url_depth};
use crate::stats::ProvidedStats;
use crate::types::TermStats;
use crate::{COVERAGE_SCORE, SITE_LISTING_SCORE};

/// BM25's term-frequency saturation (tantivy's).
pub const BM25_K1: f32 = 1.2;
/// BM25's length normalization (tantivy's).
pub const BM25_B: f32 = 0.75;

/// The most term and proximity entries one hit's evidence may hold (far above what the
/// query limits allow: 32 clauses × 7 fields, 31 pairs × 3 windows).
pub const MAX_EVIDENCE_ENTRIES: usize = 512;

/// The document's side of one hit's score, as a leaf reports it (module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Evidence {
    /// One entry per clause and field in which the clause matched, in clause then field
    /// order.
    pub terms: Vec<TermEvidence>,
    /// One entry per proximity window in which two consecutive clauses met.
    #[serde(default)]
    pub proximity: Vec<ProximityEvidence>,
    /// Distinct sites linking to the page (the in-link prior).
    #[serde(default)]
    pub inlink_sites: u64,
    /// Distinct pages linking to the page.
    #[serde(default)]
    pub inlink_pages: u64,
}

/// A clause (word or phrase) that matched in one field. On the wire a tuple
/// `[clause, field, freq, fieldnorm]`: a hit carries dozens of them to every root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "(u32, String, u32, u8)", into = "(u32, String, u32, u8)")]
pub struct TermEvidence {
    /// The clause's index among the query's positive clauses.
    pub clause: u32,
    /// The field's name.
    pub field: String,
    /// How often the clause occurs in the field (for a phrase: how often the phrase does).
    pub freq: u32,
    /// The field's length as tantivy encodes it (a fieldnorm id, 0..=255).
    pub fieldnorm: u8,
}

/// Two consecutive clauses that met within one proximity window. On the wire a tuple
/// `[pair, window, encounters, fieldnorm]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "(u32, u32, u32, u8)", into = "(u32, u32, u32, u8)")]
pub struct ProximityEvidence {
    /// The pair's index in the query's proximity list (pairs of consecutive clauses, then
    /// fields, in order).
    pub pair: u32,
    /// The window's index among the pair's windows.
    pub window: u32,
    /// How often the two words met within the window.
    pub encounters: u32,
    /// The field's length (fieldnorm id).
    pub fieldnorm: u8,
}

impl From<(u32, String, u32, u8)> for TermEvidence {
    fn from((clause, field, freq, fieldnorm): (u32, String, u32, u8)) -> Self {
        TermEvidence {
            clause,
            field,
            freq,
            fieldnorm,
        }
    }
}

impl From<TermEvidence> for (u32, String, u32, u8) {
    fn from(t: TermEvidence) -> Self {
        (t.clause, t.field, t.freq, t.fieldnorm)
    }
}

impl From<(u32, u32, u32, u8)> for ProximityEvidence {
    fn from((pair, window, encounters, fieldnorm): (u32, u32, u32, u8)) -> Self {
        ProximityEvidence {
            pair,
            window,
            encounters,
            fieldnorm,
        }
    }
}

impl From<ProximityEvidence> for (u32, u32, u32, u8) {
    fn from(p: ProximityEvidence) -> Self {
        (p.pair, p.window, p.encounters, p.fieldnorm)
    }
}

/// How one hit's score is made (module docs). With `f64` sums as the ranking computes them:
///
/// ```text
/// relevance.sum   = Σ terms[i].value + Σ proximity[j].value + prior.value   (in that order)
/// relevance.value = relevance.cap · sum / (sum + relevance.half)
/// score           = f32(coverage.value + relevance.value + depth.value) + constant
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// The score these parts make.
    pub score: f32,
    /// Documents in the statistics the query was scored with (N of every idf).
    pub num_docs: u64,
    /// BM25's parameters.
    pub bm25: Bm25Params,
    /// What matching more of the query's words and phrases is worth.
    pub coverage: Coverage,
    /// Per clause and field where the clause matched: its BM25 and where that came from.
    pub terms: Vec<TermPart>,
    /// Consecutive clauses found near each other.
    pub proximity: Vec<ProximityPart>,
    /// The in-link prior.
    pub prior: Prior,
    /// The relevance curve over terms, proximity and prior.
    pub relevance: Relevance,
    /// The URL-depth prior (added after the curve).
    pub depth: Depth,
    /// A constant of the query itself: a `site:` listing scores every page alike.
    pub constant: f32,
}

/// BM25's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bm25Params {
    /// Term-frequency saturation.
    pub k1: f32,
    /// Length normalization.
    pub b: f32,
}

/// The coverage part.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    /// Positive clauses of the query.
    pub clauses: u32,
    /// Clauses the page matched in some field.
    pub matched: u32,
    /// What each matched clause adds.
    pub per_clause: f32,
    /// `matched · per_clause`.
    pub value: f64,
}

/// One word or phrase statistic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WordStat {
    /// The word as indexed (stemmed, lowercased).
    pub word: String,
    /// Documents holding it in this field, in the statistics used.
    pub doc_freq: u64,
    /// `ln(1 + (N - n + 0.5) / (n + 0.5))`.
    pub idf: f32,
}

/// One clause in one field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TermPart {
    /// The clause as indexed: a word, or a quoted phrase.
    pub clause: String,
    /// The field.
    pub field: String,
    /// The field's weight.
    pub weight: f32,
    /// Occurrences of the clause in the field.
    pub term_freq: u32,
    /// The field's length in tokens (as BM25 sees it: tantivy's fieldnorm, exact up to 40).
    pub field_length: u32,
    /// The field's average length in the statistics used.
    pub average_field_length: f32,
    /// The clause's words (a phrase's idf is the sum of its words').
    pub words: Vec<WordStat>,
    /// `weight · idf · (k1 + 1) · tf / (tf + k1 · (1 - b + b · dl / avgdl))`.
    pub value: f32,
}

/// Two consecutive clauses near each other in one field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProximityPart {
    /// The field.
    pub field: String,
    /// The two words (last of the first clause, first of the second).
    pub words: [String; 2],
    /// The window: at most this many positions apart, in either order.
    pub max_distance: u32,
    /// The window's weight.
    pub weight: f32,
    /// How often they met within the window (BM25's tf).
    pub encounters: u32,
    /// The field's length.
    pub field_length: u32,
    /// The field's average length.
    pub average_field_length: f32,
    /// The sum of the two words' idf.
    pub idf: f32,
    /// The window's BM25, weighted.
    pub value: f32,
}

/// The in-link prior.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Prior {
    /// Distinct linking sites.
    pub inlink_sites: u64,
    /// Distinct linking pages.
    pub inlink_pages: u64,
    /// Added per doubling of linking sites (`⌊log₂(1 + sites)⌋` doublings).
    pub per_doubling_sites: f64,
    /// Added per doubling of linking pages.
    pub per_doubling_pages: f64,
    /// The prior.
    pub value: f64,
}

/// The relevance curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Relevance {
    /// Terms, proximity and prior, summed.
    pub sum: f64,
    /// The curve's bound (never reached).
    pub cap: f64,
    /// The sum at which the curve reaches half its bound.
    pub half: f64,
    /// `cap · sum / (sum + half)`.
    pub value: f64,
}

/// The URL-depth prior.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Depth {
    /// Path segments of the URL (an `index.html` not counted).
    pub url_depth: u64,
    /// The prior.
    pub value: f64,
}

/// The shard schema, built once (its field handles are the same in every shard).
fn schema() -> &'static (Schema, Fields) {
    static SCHEMA: OnceLock<(Schema, Fields)> = OnceLock::new();
    SCHEMA.get_or_init(build_schema)
}

fn bad(why: impl Into<String>) -> Error {
    Error::Evidence(why.into())
}

/// Recompute the score of the hit `url` for `query` from its `evidence` and the statistics
/// it was scored with (module docs). `evidence` is `None` for a query that is only `site:`
/// filters (its hits score a constant). Fails with [`Error::Evidence`] when the evidence
/// does not fit the query (a clause, field or window the query does not have, an entry twice,
/// too many entries), and with [`Error::EmptyQuery`] for a query with nothing to search for.
pub fn explain(
    query: &str,
    stats: &TermStats,
    url: &str,
    evidence: Option<&Evidence>,
) -> Result<Explanation> {
    let parsed = parse_query(query)?;
    let (schema, fields) = schema();
    // The statistics as the leaves read them; the root's hold every term and field of its
    // parse of the query, so the leaves never fall back to their own numbers.
    let provider = ProvidedStats {
        stats,
        local: None,
        schema,
    };
    let num_docs = stats.num_docs.max(1);
    let mut out = Explanation {
        score: 0.0,
        num_docs,
        bm25: Bm25Params {
            k1: BM25_K1,
            b: BM25_B,
        },
        coverage: Coverage {
            clauses: 0,
            matched: 0,
            per_clause: COVERAGE_SCORE,
            value: 0.0,
        },
        terms: Vec::new(),
        proximity: Vec::new(),
        prior: Prior {
            inlink_sites: 0,
            inlink_pages: 0,
            per_doubling_sites: rank::PRIOR_PER_DOUBLING_SITES,
            per_doubling_pages: rank::PRIOR_PER_DOUBLING_PAGES,
            value: 0.0,
        },
        relevance: Relevance {
            sum: 0.0,
            cap: rank::RELEVANCE_CAP,
            half: rank::RELEVANCE_HALF,
            value: 0.0,
        },
        depth: Depth {
            url_depth: url_depth(url),
            value: 0.0,
        },
        constant: 0.0,
    };
    if parsed.is_site_listing() {
        if evidence.is_some_and(|e| !e.terms.is_empty() || !e.proximity.is_empty()) {
            return Err(bad("a site listing has no term evidence"));
        }
        out.constant = SITE_LISTING_SCORE;
        out.score = SITE_LISTING_SCORE;
        return Ok(out);
    }
    let evidence = evidence.ok_or_else(|| bad("no evidence for a scored hit"))?;
    if evidence.terms.len() + evidence.proximity.len() > MAX_EVIDENCE_ENTRIES {
        return Err(bad("too many evidence entries"));
    }
    let include_chrome = needs_chrome(&parsed, fields, |field, text| {
        provider
            .doc_freq(&Term::from_field_text(field, text))
            .unwrap_or(0)
    });
    let rank = rank_query(&parsed, fields, include_chrome);
    let clauses: Vec<String> = parsed
        .positive_clauses()
        .map(|c| {
            if c.is_phrase() {
                format!("\"{}\"", c.terms.join(" "))
            } else {
                c.terms[0].clone()
            }
        })
        .collect();
    out.coverage.clauses = clauses.len() as u32;

    // Terms, in clause then field order (the order the ranking sums them in).
    let mut relevance = 0f64;
    let mut matched = vec![false; rank.clauses.len()];
    let mut last: Option<(usize, usize)> = None;
    for t in &evidence.terms {
        let c = t.clause as usize;
        let leaves = rank
            .clauses
            .get(c)
            .ok_or_else(|| bad(format!("clause {c} is not in the query")))?;
        let (l, leaf) = leaves
            .iter()
            .enumerate()
            .find(|(_, leaf)| schema.get_field_name(leaf_field(leaf)) == t.field)
            .ok_or_else(|| bad(format!("field {:?} is not searched", t.field)))?;
        if last.is_some_and(|previous| previous >= (c, l)) {
            return Err(bad("term evidence out of order or repeated"));
        }
        last = Some((c, l));
        if t.freq == 0 {
            return Err(bad("a match with no occurrence"));
        }
        let bm25 = Bm25Weight::for_terms(&provider, &leaf.terms)?.boost_by(leaf.weight);
        let value = bm25.score(t.fieldnorm, t.freq);
        relevance += f64::from(value);
        matched[c] = true;
        out.terms.push(TermPart {
            clause: clauses[c].clone(),
            field: t.field.clone(),
            weight: leaf.weight,
            term_freq: t.freq,
            field_length: FieldNormReader::id_to_fieldnorm(t.fieldnorm),
            average_field_length: average(&provider, leaf_field(leaf))?,
            words: leaf
                .terms
                .iter()
                .map(|term| word_stat(&provider, term))
                .collect::<tantivy::Result<_>>()?,
            value,
        });
    }

    // Proximity, in the query's pair and window order.
    let mut last: Option<(u32, u32)> = None;
    for p in &evidence.proximity {
        let pair = rank
            .proximity
            .get(p.pair as usize)
            .ok_or_else(|| bad(format!("proximity pair {} is not in the query", p.pair)))?;
        let &(distance, weight) = pair
            .windows
            .get(p.window as usize)
            .ok_or_else(|| bad(format!("proximity window {} is not in the query", p.window)))?;
        if last.is_some_and(|previous| previous >= (p.pair, p.window)) {
            return Err(bad("proximity evidence out of order or repeated"));
        }
        last = Some((p.pair, p.window));
        if p.encounters == 0 {
            return Err(bad("a proximity entry with no encounter"));
        }
        let bm25 = Bm25Weight::for_terms(&provider, &pair.terms)?.boost_by(weight);
        let value = bm25.score(p.fieldnorm, p.encounters);
        relevance += f64::from(value);
        let [a, b] = &pair.terms;
        out.proximity.push(ProximityPart {
            field: schema.get_field_name(pair.field).to_string(),
            words: [term_text(a), term_text(b)],
            max_distance: distance,
            weight,
            encounters: p.encounters,
            field_length: FieldNormReader::id_to_fieldnorm(p.fieldnorm),
            average_field_length: average(&provider, pair.field)?,
            idf: word_stat(&provider, a)?.idf + word_stat(&provider, b)?.idf,
            value,
        });
    }

    out.prior.inlink_sites = evidence.inlink_sites;
    out.prior.inlink_pages = evidence.inlink_pages;
    out.prior.value = rank::prior(evidence.inlink_sites, evidence.inlink_pages);
    relevance += out.prior.value;
    out.relevance.sum = relevance;
    out.relevance.value = rank::relevance_part(relevance);
    out.depth.value = rank::depth_prior(out.depth.url_depth);
    out.coverage.matched = matched.iter().filter(|m| **m).count() as u32;
    out.coverage.value = f64::from(COVERAGE_SCORE) * f64::from(out.coverage.matched);
    out.score = rank::combine(out.coverage.matched, relevance, out.depth.value);
    Ok(out)
}

fn leaf_field(leaf: &Leaf) -> Field {
    leaf.terms[0].field()
}

fn term_text(term: &Term) -> String {
    term.value().as_str().unwrap_or_default().to_string()
}

fn average(provider: &ProvidedStats<'_>, field: Field) -> tantivy::Result<f32> {
    Ok(provider.total_num_tokens(field)? as Score / provider.total_num_docs()? as Score)
}

fn word_stat(provider: &ProvidedStats<'_>, term: &Term) -> tantivy::Result<WordStat> {
    let doc_freq = provider.doc_freq(term)?;
    let n = provider.total_num_docs()?;
    // tantivy's idf (`query::bm25::idf`), for showing; the value comes from its weight.
    let x = ((n - doc_freq) as Score + 0.5) / (doc_freq as Score + 0.5);
    Ok(WordStat {
        word: term_text(term),
        doc_freq,
        idf: (1.0 + x).ln(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::Shard;
    use crate::test_support::{QUERIES, corpus, page, shard_with};
    use crate::types::{Document, term_key};

    /// Every hit of every query, explained with `stats`, scores what the shard scored.
    fn check_all(shard: &Shard, stats: Option<&TermStats>) -> Result<usize> {
        let mut checked = 0;
        for q in QUERIES {
            let own;
            let used = match stats {
                Some(s) => s,
                None => {
                    own = shard.term_stats(q)?;
                    &own
                }
            };
            let r = shard.search_with(q, 50, stats, true)?;
            for hit in &r.hits {
                let e = explain(q, used, &hit.url, hit.evidence.as_ref())?;
                assert_eq!(
                    e.score.to_bits(),
                    hit.score.to_bits(),
                    "{q} {}: {e:#?}",
                    hit.url
                );
                assert_eq!(e.num_docs, used.num_docs.max(1));
                // The parts add up as documented.
                let sum: f64 = e.terms.iter().map(|t| f64::from(t.value)).sum::<f64>()
                    + e.proximity.iter().map(|p| f64::from(p.value)).sum::<f64>()
                    + e.prior.value;
                assert!((sum - e.relevance.sum).abs() < 1e-9, "{q}");
                let total = (e.coverage.value + e.relevance.value + e.depth.value) as f32;
                assert_eq!(total.to_bits(), hit.score.to_bits(), "{q}");
                checked += 1;
            }
        }
        Ok(checked)
    }

    #[test]
    fn evidence_recomputes_every_score_bit_for_bit() -> Result<()> {
        let mut docs = corpus(0..300);
        docs.push(Document {
            inlink_sites: 7,
            inlink_pages: 90,
            anchor_text: "alpha beta omega".into(),
            ..page(
                "http://linked.example/",
                "Alpha beta",
                "alpha beta omega rust",
            )
        });
        // Two commits: hits from two segments, read segment by segment.
        let shard = shard_with(&docs[..150])?;
        for d in &docs[150..] {
            shard.upsert(d)?;
        }
        shard.commit()?;
        assert!(shard.index().searchable_segment_ids()?.len() >= 2);
        assert!(check_all(&shard, None)? > 100);
        // With statistics from elsewhere (a network's), the explanation shows those.
        let other = shard_with(&corpus(300..700))?;
        for q in QUERIES {
            let mut stats = shard.term_stats(q)?;
            stats.merge(&other.term_stats(q)?);
            let r = shard.search_with(q, 5, Some(&stats), true)?;
            for hit in &r.hits {
                let e = explain(q, &stats, &hit.url, hit.evidence.as_ref())?;
                assert_eq!(e.score.to_bits(), hit.score.to_bits());
                assert_eq!(e.num_docs, 701);
                for t in &e.terms {
                    for w in &t.words {
                        let key = term_key(&t.field, &w.word);
                        assert_eq!(Some(&w.doc_freq), stats.doc_freq.get(&key), "{key}");
                    }
                }
            }
        }
        Ok(())
    }

    #[test]
    fn a_phrase_reports_its_phrase_count_and_a_listing_its_constant() -> Result<()> {
        let shard = shard_with(&[
            page(
                "http://p.example/a",
                "",
                "red apple red apple red apple green pear",
            ),
            page("http://p.example/b", "", "apple red"),
        ])?;
        let q = "\"red apple\" pear";
        let stats = shard.term_stats(q)?;
        let r = shard.search_with(q, 10, None, true)?;
        let e = explain(q, &stats, &r.hits[0].url, r.hits[0].evidence.as_ref())?;
        let phrase = e.terms.iter().find(|t| t.clause == "\"red appl\"");
        assert_eq!(phrase.map(|t| t.term_freq), Some(3), "{e:#?}");
        assert_eq!(e.coverage.matched, 2);
        assert_eq!(e.score, r.hits[0].score);

        let r = shard.search_with("site:p.example", 10, None, true)?;
        let e = explain(
            "site:p.example",
            &stats,
            &r.hits[0].url,
            r.hits[0].evidence.as_ref(),
        )?;
        assert_eq!(e.score, r.hits[0].score);
        assert_eq!(e.constant, SITE_LISTING_SCORE);
        Ok(())
    }

    #[test]
    fn forged_evidence_does_not_give_the_score_or_is_refused() -> Result<()> {
        let shard = shard_with(&corpus(0..100))?;
        let q = "alpha beta";
        let stats = shard.term_stats(q)?;
        let r = shard.search_with(q, 3, None, true)?;
        let hit = &r.hits[0];
        let true_evidence = hit.evidence.clone().expect("asked for");
        // More occurrences than the page has: another score.
        let mut more = true_evidence.clone();
        more.terms[0].freq += 5;
        assert_ne!(explain(q, &stats, &hit.url, Some(&more))?.score, hit.score);
        // Other statistics: another score (a leaf scoring with its own, or forged ones).
        let mut skewed = stats.clone();
        skewed.num_docs += 1000;
        assert_ne!(
            explain(q, &skewed, &hit.url, Some(&true_evidence))?.score,
            hit.score
        );
        // Entries the query does not have, repeated, or empty are refused.
        let refused = |e: Evidence| {
            matches!(
                explain(q, &stats, &hit.url, Some(&e)),
                Err(Error::Evidence(_))
            )
        };
        let mut e = true_evidence.clone();
        e.terms[0].clause = 7;
        assert!(refused(e));
        let mut e = true_evidence.clone();
        e.terms[0].field = "lang".into();
        assert!(refused(e));
        let mut e = true_evidence.clone();
        e.terms.push(e.terms[0].clone());
        assert!(refused(e));
        let mut e = true_evidence.clone();
        e.terms[0].freq = 0;
        assert!(refused(e));
        let mut e = true_evidence.clone();
        e.proximity.push(ProximityEvidence {
            pair: 99,
            window: 0,
            encounters: 1,
            fieldnorm: 3,
        });
        assert!(refused(e));
        assert!(matches!(
            explain(q, &stats, &hit.url, None),
            Err(Error::Evidence(_))
        ));
        Ok(())
    }
}
