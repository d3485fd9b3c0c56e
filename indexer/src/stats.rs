//! BM25 statistics over live documents: gathering them from a shard (optionally counting only
//! the documents of some sites), and scoring with statistics handed in.
//!
//! tantivy's own statistics count deleted documents until a merge purges them, so they
//! depend on a shard's upsert history; and with replication every document is on several
//! peers. Here every number is a function of the set of counted documents only:
//!
//! - `num_docs`: counted live documents;
//! - `field_tokens[f]`: the sum over them of their length in `f` as BM25 sees it (the
//!   document's fieldnorm, tantivy's one-byte encoding of its token count, decoded). It is
//!   the very length BM25 normalizes each document by, so the average is consistent with it;
//! - `doc_freq[f, t]`: counted live documents holding `t` in `f`.
//!
//! With a site filter only the documents of those sites count, so peers that each count the
//! sites they are the primary owner of report every document once, whatever the
//! replication factor. The document-independent part (which documents count, token sums) is
//! computed once per searcher generation and site set and cached, with the document
//! frequencies asked so far.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tantivy::query::Bm25StatisticsProvider;
use tantivy::schema::{Field, IndexRecordOption, Schema};
use tantivy::{BitSet, DocSet, Searcher, TERMINATED, Term};

use crate::query::ParsedQuery;
use crate::schema::Fields;
use crate::types::{TermStats, term_key};

/// Site sets cached per searcher generation (the node asks with one set, tests with a few).
const MAX_CACHED_SITE_SETS: usize = 8;
/// Document frequencies cached per counted set before the cache starts over.
const MAX_CACHED_DOC_FREQS: usize = 16_384;

/// Which documents of one searcher count, and their document-independent statistics.
pub(crate) struct Counted {
    /// Per segment: `None` when every document of the segment counts (no deletes, no site
    /// filter), else the counted documents.
    segments: Vec<Option<BitSet>>,
    num_docs: u64,
    /// Token sums per text field.
    field_tokens: HashMap<Field, u64>,
    doc_freqs: Mutex<HashMap<Term, u64>>,
}

impl Counted {
    /// The counted documents of `searcher`: the live ones, of `sites` only when given.
    pub(crate) fn compute(
        searcher: &Searcher,
        fields: &Fields,
        sites: Option<&[String]>,
    ) -> tantivy::Result<Counted> {
        let mut segments = Vec::with_capacity(searcher.segment_readers().len());
        let mut num_docs = 0u64;
        let mut field_tokens: HashMap<Field, u64> = HashMap::new();
        for segment in searcher.segment_readers() {
            let max_doc = segment.max_doc();
            let counted = match sites {
                Some(sites) => {
                    let mut set = BitSet::with_max_value(max_doc);
                    let inverted = segment.inverted_index(fields.site)?;
                    for site in sites {
                        let term = Term::from_field_text(fields.site, site);
                        let Some(mut postings) =
                            inverted.read_postings(&term, IndexRecordOption::Basic)?
                        else {
                            continue;
                        };
                        let mut doc = postings.doc();
                        while doc != TERMINATED {
                            if !segment.is_deleted(doc) {
                                set.insert(doc);
                            }
                            doc = postings.advance();
                        }
                    }
                    Some(set)
                }
                None if segment.has_deletes() => {
                    let mut set = BitSet::with_max_value(max_doc);
                    for doc in 0..max_doc {
                        if !segment.is_deleted(doc) {
                            set.insert(doc);
                        }
                    }
                    Some(set)
                }
                None => None,
            };
            num_docs += counted
                .as_ref()
                .map_or(u64::from(max_doc), |set| set.len() as u64);
            for &(field, _) in &fields.text {
                let norms = segment.get_fieldnorms_reader(field)?;
                let mut sum = 0u64;
                match &counted {
                    None => {
                        for doc in 0..max_doc {
                            sum += u64::from(norms.fieldnorm(doc));
                        }
                    }
                    Some(set) => {
                        for doc in 0..max_doc {
                            if set.contains(doc) {
                                sum += u64::from(norms.fieldnorm(doc));
                            }
                        }
                    }
                }
                *field_tokens.entry(field).or_default() += sum;
            }
            segments.push(counted);
        }
        Ok(Counted {
            segments,
            num_docs,
            field_tokens,
            doc_freqs: Mutex::new(HashMap::new()),
        })
    }

    pub(crate) fn num_docs(&self) -> u64 {
        self.num_docs
    }

    pub(crate) fn field_tokens(&self, field: Field) -> u64 {
        self.field_tokens.get(&field).copied().unwrap_or(0)
    }

    /// Counted documents that hold `term`.
    pub(crate) fn doc_freq(&self, searcher: &Searcher, term: &Term) -> tantivy::Result<u64> {
        if let Some(&df) = self.lock_doc_freqs().get(term) {
            return Ok(df);
        }
        let mut df = 0u64;
        for (segment, counted) in searcher.segment_readers().iter().zip(&self.segments) {
            let inverted = segment.inverted_index(term.field())?;
            match counted {
                None => df += u64::from(inverted.doc_freq(term)?),
                Some(set) => {
                    let Some(mut postings) =
                        inverted.read_postings(term, IndexRecordOption::Basic)?
                    else {
                        continue;
                    };
                    let mut doc = postings.doc();
                    while doc != TERMINATED {
                        if set.contains(doc) {
                            df += 1;
                        }
                        doc = postings.advance();
                    }
                }
            }
        }
        let mut cache = self.lock_doc_freqs();
        if cache.len() >= MAX_CACHED_DOC_FREQS {
            cache.clear();
        }
        cache.insert(term.clone(), df);
        Ok(df)
    }

    fn lock_doc_freqs(&self) -> std::sync::MutexGuard<'_, HashMap<Term, u64>> {
        // The map is only a cache: a panic while it was held leaves it usable.
        self.doc_freqs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The [`Counted`] sets of the current searcher generation, by site set.
#[derive(Default)]
pub(crate) struct StatsCache {
    generation: Option<u64>,
    entries: Vec<(Option<Vec<String>>, Arc<Counted>)>,
}

impl StatsCache {
    /// The counted documents of `searcher` for `sites` (`None`: all), from the cache when it
    /// holds them for this searcher generation.
    pub(crate) fn counted(
        cache: &Mutex<StatsCache>,
        searcher: &Searcher,
        fields: &Fields,
        sites: Option<&[String]>,
    ) -> tantivy::Result<Arc<Counted>> {
        let generation = searcher.generation().generation_id();
        let key = sites.map(|s| {
            let mut s = s.to_vec();
            s.sort();
            s.dedup();
            s
        });
        let lock = || {
            cache
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        };
        {
            let state = lock();
            if state.generation == Some(generation)
                && let Some((_, counted)) = state.entries.iter().find(|(k, _)| *k == key)
            {
                return Ok(Arc::clone(counted));
            }
        }
        let counted = Arc::new(Counted::compute(searcher, fields, key.as_deref())?);
        let mut state = lock();
        if state.generation != Some(generation) {
            state.generation = Some(generation);
            state.entries.clear();
        }
        if state.entries.len() >= MAX_CACHED_SITE_SETS {
            state.entries.remove(0);
        }
        state.entries.push((key, Arc::clone(&counted)));
        Ok(counted)
    }
}

/// The local statistics of a shard: its counted (live) documents.
pub(crate) struct LocalStats<'a> {
    pub counted: &'a Counted,
    pub searcher: &'a Searcher,
}

impl Bm25StatisticsProvider for LocalStats<'_> {
    fn total_num_tokens(&self, field: Field) -> tantivy::Result<u64> {
        Ok(self.counted.field_tokens(field).max(1))
    }

    fn total_num_docs(&self) -> tantivy::Result<u64> {
        Ok(self.counted.num_docs().max(1))
    }

    fn doc_freq(&self, term: &Term) -> tantivy::Result<u64> {
        let df = self.counted.doc_freq(self.searcher, term)?;
        Ok(df.min(self.counted.num_docs().max(1)))
    }
}

/// The statistics of `counted` for the terms of `parsed`.
pub(crate) fn gather(
    counted: &Counted,
    searcher: &Searcher,
    schema: &Schema,
    fields: &Fields,
    parsed: &ParsedQuery,
) -> tantivy::Result<TermStats> {
    let mut stats = TermStats {
        num_docs: counted.num_docs(),
        ..TermStats::default()
    };
    let terms = parsed.scoring_terms();
    if terms.is_empty() {
        return Ok(stats);
    }
    for &(field, _) in &fields.text {
        let name = schema.get_field_name(field);
        stats
            .field_tokens
            .insert(name.to_string(), counted.field_tokens(field));
        for text in &terms {
            let df = counted.doc_freq(searcher, &Term::from_field_text(field, text))?;
            stats.doc_freq.insert(term_key(name, text), df);
        }
    }
    Ok(stats)
}

/// Scores with statistics from outside (the merged stats of every shard a query reaches).
///
/// The numbers handed in are used as they are — raising them to this shard's own would
/// break exactness, since what this shard counts (all its live documents) is not what it
/// contributed to the sum (only its own sites' documents). A number the map lacks (a peer
/// of an older version, a field it did not know) falls back to this shard's live count when
/// `local` is given, and is 0 otherwise (as when [`crate::explain()`] recomputes a score at a
/// root that holds the statistics only).
/// Hostile or stale numbers cannot break tantivy: the document count is at least 1, a
/// document frequency at most the document count, a token count at least 1.
pub(crate) struct ProvidedStats<'a> {
    pub stats: &'a TermStats,
    pub local: Option<LocalStats<'a>>,
    pub schema: &'a Schema,
}

impl Bm25StatisticsProvider for ProvidedStats<'_> {
    fn total_num_tokens(&self, field: Field) -> tantivy::Result<u64> {
        let name = self.schema.get_field_name(field);
        match (self.stats.field_tokens.get(name), &self.local) {
            (Some(&tokens), _) => Ok(tokens.max(1)),
            (None, Some(local)) => local.total_num_tokens(field),
            (None, None) => Ok(1),
        }
    }

    fn total_num_docs(&self) -> tantivy::Result<u64> {
        Ok(self.stats.num_docs.max(1))
    }

    fn doc_freq(&self, term: &Term) -> tantivy::Result<u64> {
        let provided = term.value().as_str().and_then(|text| {
            let name = self.schema.get_field_name(term.field());
            self.stats.doc_freq.get(&term_key(name, text)).copied()
        });
        let df = match (provided, &self.local) {
            (Some(df), _) => df,
            (None, Some(local)) => local.counted.doc_freq(local.searcher, term)?,
            (None, None) => 0,
        };
        Ok(df.min(self.total_num_docs()?))
    }
}

#[cfg(test)]
mod tests {
    use crate::error::Result;
    use crate::shard::{MAX_TOP_K, Shard};
    use crate::test_support::{QUERIES, corpus, shard_with};
    use crate::types::{Document, Hit, TermStats, term_key};
    use tantivy::query::Bm25StatisticsProvider;

    /// Every hit of `q` on `shards` scored with `stats`, merged by score then URL.
    fn merged_hits(shards: &[&Shard], q: &str, stats: &TermStats) -> Result<Vec<Hit>> {
        let mut hits = Vec::new();
        for shard in shards {
            hits.extend(shard.search(q, MAX_TOP_K, Some(stats))?.hits);
        }
        hits.sort_by(|x, y| y.score.total_cmp(&x.score).then_with(|| x.url.cmp(&y.url)));
        Ok(hits)
    }

    fn bits(hits: &[Hit]) -> Vec<(String, u32)> {
        hits.iter()
            .map(|h| (h.url.clone(), h.score.to_bits()))
            .collect()
    }

    /// `doc` with other words: what an earlier crawl of the same URL may have found.
    fn older_version(doc: &Document, i: u64) -> Document {
        let other = &corpus(1000 + i..1001 + i)[0];
        Document {
            url: doc.url.clone(),
            site: doc.site.clone(),
            ..other.clone()
        }
    }

    fn raw_num_docs(shard: &Shard) -> u64 {
        let searcher = shard.index().reader().expect("reader").searcher();
        Bm25StatisticsProvider::total_num_docs(&searcher).expect("tantivy counts")
    }

    #[test]
    fn shards_with_different_upsert_histories_score_like_one_central_shard() -> Result<()> {
        let docs = corpus(0..160);
        let central = shard_with(&docs)?;
        let (a, b) = (Shard::open_in_ram()?, Shard::open_in_ram()?);
        let (mine_a, mine_b): (Vec<_>, Vec<_>) = docs.iter().partition(|d| d.url.len() % 2 == 0);
        // A: older versions of a third of its pages and pages since deleted, then the pages.
        for (i, d) in mine_a.iter().enumerate() {
            if i % 3 == 0 && i >= 10 {
                a.upsert(&older_version(d, i as u64))?;
            }
        }
        let gone = corpus(500..530);
        for d in &gone {
            a.upsert(d)?;
        }
        // (A segment whose documents are all deleted is dropped at commit: keep some.)
        for d in &mine_a[..10] {
            a.upsert(d)?;
        }
        a.commit()?;
        for d in &mine_a[10..] {
            a.upsert(d)?;
        }
        a.commit()?;
        for d in &gone {
            a.delete(&d.url)?;
        }
        a.commit()?;
        // B: its pages, a quarter of them upserted again, one changed and changed back.
        for d in &mine_b {
            b.upsert(d)?;
        }
        b.commit()?;
        for d in mine_b.iter().step_by(4) {
            b.upsert(d)?;
        }
        b.commit()?;
        b.upsert(&older_version(mine_b[1], 7))?;
        b.commit()?;
        b.upsert(mine_b[1])?;
        b.commit()?;
        assert_eq!(a.num_docs() + b.num_docs(), central.num_docs());
        assert!(
            raw_num_docs(&a) > a.num_docs() && raw_num_docs(&b) > b.num_docs(),
            "the shards hold deleted documents, or the test shows nothing"
        );

        for q in QUERIES {
            let mut stats = a.term_stats(q)?;
            stats.merge(&b.term_stats(q)?);
            assert_eq!(stats, central.term_stats(q)?, "{q}");
            let central_hits = central.search(q, MAX_TOP_K, None)?.hits;
            assert!(!central_hits.is_empty(), "{q}");
            assert_eq!(
                bits(&merged_hits(&[&a, &b], q, &stats)?),
                bits(&central_hits),
                "{q}"
            );
        }
        Ok(())
    }

    #[test]
    fn replicas_counting_only_their_own_sites_merge_to_the_central_stats() -> Result<()> {
        // Three sites; every shard holds every document (replication factor 3), each with
        // another history, and counts only the site it is the primary owner of.
        let docs: Vec<Document> = corpus(0..120)
            .into_iter()
            .enumerate()
            .map(|(i, d)| {
                let site = format!("site{}.example", i % 3);
                Document {
                    url: format!("http://{site}/page/{i}"),
                    site,
                    ..d
                }
            })
            .collect();
        let central = shard_with(&docs)?;
        let replicas = [
            Shard::open_in_ram()?,
            Shard::open_in_ram()?,
            Shard::open_in_ram()?,
        ];
        for (k, replica) in replicas.iter().enumerate() {
            for (i, d) in docs.iter().enumerate() {
                if (i + k) % 4 == 0 {
                    replica.upsert(&older_version(d, i as u64))?;
                    replica.commit()?;
                }
            }
            for d in docs.iter().rev() {
                replica.upsert(d)?;
            }
            replica.commit()?;
            assert_eq!(replica.num_docs(), central.num_docs());
        }
        for q in QUERIES {
            let mut stats = TermStats::default();
            for (k, replica) in replicas.iter().enumerate() {
                stats.merge(&replica.term_stats_for_sites(q, &[format!("site{k}.example")])?);
            }
            assert_eq!(stats, central.term_stats(q)?, "{q}");
            let central_results = central.search(q, MAX_TOP_K, None)?;
            for replica in &replicas {
                let results = replica.search(q, MAX_TOP_K, Some(&stats))?;
                assert_eq!(bits(&results.hits), bits(&central_results.hits), "{q}");
                assert_eq!(results, central_results, "{q}");
            }
            // Summing everything each replica holds would count every document 3 times.
            let mut tripled = TermStats::default();
            for replica in &replicas {
                tripled.merge(&replica.term_stats(q)?);
            }
            assert_eq!(tripled.num_docs, 3 * stats.num_docs);
        }
        // Sites in any order, twice, or unknown ones count alike.
        let s = &replicas[0];
        assert_eq!(
            s.term_stats_for_sites("alpha", &["site1.example".into(), "site0.example".into()])?,
            s.term_stats_for_sites(
                "alpha",
                &[
                    "site0.example".into(),
                    "site1.example".into(),
                    "site0.example".into(),
                    "nowhere".into()
                ]
            )?,
        );
        assert_eq!(s.term_stats_for_sites("alpha", &[])?.num_docs, 0);
        Ok(())
    }

    #[test]
    fn hostile_stats_neither_panic_nor_give_non_finite_scores() -> Result<()> {
        let shard = shard_with(&corpus(0..40))?;
        let q = "alpha beta \"gamma delta\" +epsilon";
        let honest = shard.term_stats(q)?;
        let mut cases = Vec::new();
        for num_docs in [0, 1, u64::MAX] {
            for tokens in [0, 1, u64::MAX] {
                for df in [0, 1, u64::MAX] {
                    let mut stats = honest.clone();
                    stats.num_docs = num_docs;
                    stats.field_tokens.values_mut().for_each(|v| *v = tokens);
                    stats.doc_freq.values_mut().for_each(|v| *v = df);
                    cases.push(stats);
                }
            }
        }
        let mut missing = honest.clone();
        missing.doc_freq.clear();
        missing.field_tokens.remove("body");
        cases.push(missing);
        cases.push(TermStats::default());
        let mut garbage = honest.clone();
        garbage.doc_freq.insert(term_key("nosuchfield", "alpha"), 3);
        garbage.field_tokens.insert("nosuchfield".into(), 9);
        cases.push(garbage);
        for stats in &cases {
            let r = shard.search(q, 20, Some(stats))?;
            assert!(!r.hits.is_empty());
            assert!(
                r.hits.iter().all(|h| h.score.is_finite() && h.score >= 0.0),
                "{stats:?}"
            );
            // Still deterministic.
            assert_eq!(r, shard.search(q, 20, Some(stats))?);
        }
        Ok(())
    }
}
