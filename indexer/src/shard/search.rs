//! Searching a shard and reporting its statistics: the leaf side of a distributed query.

use std::collections::{BTreeMap, HashMap};

use tantivy::collector::sort_key::{SortBySimilarityScore, SortByString};
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{Bm25StatisticsProvider, EnableScoring};
use tantivy::{DocId, Order, TantivyDocument, Term};

use super::{MAX_TOP_K, Shard};
use crate::error::Result;
use crate::explain::Evidence;
use crate::query::{build_query, needs_chrome, parse_query, rank_query};
use crate::schema::{names, stored_document};
use crate::snippet::Snippets;
use crate::stats::{LocalStats, ProvidedStats, StatsCache, gather};
use crate::types::{Hit, SearchResults, TermStats};

impl Shard {
    /// This shard's BM25 statistics for the terms of `query`; merge the stats of every
    /// shard ([`TermStats::merge`]) and hand the sum to [`Shard::search`] to score as one
    /// central index would. Fails with [`Error::EmptyQuery`](crate::Error::EmptyQuery) like `search`.
    ///
    /// Only live documents count (not the deleted ones a merge has not purged yet), so the
    /// numbers depend on which documents the shard holds, never on how it came to hold them:
    /// `num_docs` equals [`Shard::num_docs`]. Token counts are the sums of the documents'
    /// lengths as BM25 sees them (tantivy's fieldnorms).
    pub fn term_stats(&self, query: &str) -> Result<TermStats> {
        self.stats_for(query, None)
    }

    /// Like [`Shard::term_stats`], counting only the documents whose site (exact
    /// `host[:port]`, as in [`Document::site`](crate::Document::site)) is one of `sites`. With replication, each
    /// peer counts the sites it is the primary owner of, so that the merged statistics count
    /// every document once and equal those of one central index.
    pub fn term_stats_for_sites(&self, query: &str, sites: &[String]) -> Result<TermStats> {
        self.stats_for(query, Some(sites))
    }

    fn stats_for(&self, query: &str, sites: Option<&[String]>) -> Result<TermStats> {
        let parsed = parse_query(query)?;
        let searcher = self.reader.searcher();
        let counted = StatsCache::counted(&self.stats_cache, &searcher, &self.fields, sites)?;
        Ok(gather(
            &counted,
            &searcher,
            &self.schema,
            &self.fields,
            &parsed,
        )?)
    }

    /// The best `top_k` (at most [`MAX_TOP_K`]) hits for `query`, ordered by score
    /// descending then URL ascending, with snippets, and the number of matching documents.
    ///
    /// With `stats` (merged from every shard the query reaches, see [`Shard::term_stats`])
    /// scores are exactly — bit for bit — those of one index holding every shard's
    /// documents, so hits from different shards can be merged by score. Without, the
    /// shard's own statistics are used (those [`Shard::term_stats`] reports: live documents
    /// only). The score is described in the crate docs (coverage, BM25, proximity, prior). A query of only `site:` filters lists the sites'
    /// documents, all scored [`crate::SITE_LISTING_SCORE`] (so in URL order).
    pub fn search(
        &self,
        query: &str,
        top_k: usize,
        stats: Option<&TermStats>,
    ) -> Result<SearchResults> {
        self.search_with(query, top_k, stats, false)
    }

    /// [`Shard::search`], with each hit's [`Evidence`](crate::Evidence) when `evidence` is
    /// true: with the statistics the query was scored with, [`crate::explain()`] recomputes
    /// every hit's score from it, bit for bit.
    pub fn search_with(
        &self,
        query: &str,
        top_k: usize,
        stats: Option<&TermStats>,
        evidence: bool,
    ) -> Result<SearchResults> {
        let parsed = parse_query(query)?;
        let searcher = self.reader.searcher();
        // Ties are broken by URL inside the collector, so that every shard (and a central
        // index) cuts the same documents at `top_k`.
        let top_docs = TopDocs::with_limit(top_k.clamp(1, MAX_TOP_K)).order_by((
            (SortBySimilarityScore, Order::Desc),
            (SortByString::for_field(names::URL), Order::Asc),
        ));
        let collector = (top_docs, Count);
        let counted = StatsCache::counted(&self.stats_cache, &searcher, &self.fields, None)?;
        let local = || LocalStats {
            counted: &counted,
            searcher: &searcher,
        };
        let provided = stats.map(|stats| ProvidedStats {
            stats,
            local: Some(local()),
            schema: &self.schema,
        });
        let own = local();
        let statistics: &dyn Bm25StatisticsProvider = match &provided {
            Some(p) => p,
            None => &own,
        };
        let include_chrome = needs_chrome(&parsed, &self.fields, |field, text| {
            statistics
                .doc_freq(&Term::from_field_text(field, text))
                .unwrap_or(0)
        });
        let tantivy_query = build_query(&parsed, &self.fields, include_chrome);
        // The ranking part alone, to read each hit's evidence from (a site listing has none).
        let rank_weight = match evidence && !parsed.is_site_listing() {
            true => Some(
                rank_query(&parsed, &self.fields, include_chrome).rank_weight(
                    EnableScoring::enabled_from_statistics_provider(statistics, &searcher),
                )?,
            ),
            false => None,
        };
        let (top, total) =
            searcher.search_with_statistics_provider(&*tantivy_query, &collector, statistics)?;

        // Rarer terms weigh more when choosing the snippet passage.
        let mut snippet_terms = BTreeMap::new();
        for text in parsed.scoring_terms() {
            let df = statistics.doc_freq(&Term::from_field_text(self.fields.body, text))?;
            snippet_terms.insert(text.to_string(), 1.0 / (1.0 + df as f32));
        }
        let snippets = Snippets::new(snippet_terms, self.fields.body);

        let top: Vec<_> = top.into_iter().take(top_k).collect();
        // Evidence per hit, read segment by segment in document order.
        let mut evidences = HashMap::new();
        if let Some(weight) = &rank_weight {
            let mut by_segment: BTreeMap<u32, Vec<DocId>> = BTreeMap::new();
            for (_, address) in &top {
                by_segment
                    .entry(address.segment_ord)
                    .or_default()
                    .push(address.doc_id);
            }
            for (segment, mut docs) in by_segment {
                docs.sort_unstable();
                docs.dedup();
                let found = weight.evidence(searcher.segment_reader(segment), &docs)?;
                evidences.extend(docs.into_iter().map(|d| (segment, d)).zip(found));
            }
        }
        let mut hits = Vec::with_capacity(top.len());
        for ((score, _url), address) in top {
            let stored: TantivyDocument = searcher.doc(address)?;
            let doc = stored_document(&self.schema, &stored);
            let title = if doc.title.trim().is_empty() {
                doc.url.clone()
            } else {
                doc.title.trim().to_string()
            };
            let evidence = match evidences.remove(&(address.segment_ord, address.doc_id)) {
                Some(found) => Some(found),
                None if evidence => Some(Evidence::default()),
                None => None,
            };
            hits.push(Hit {
                snippet: snippets.make(&doc.body, &doc.description),
                url: doc.url,
                title,
                score,
                evidence,
            });
        }
        Ok(SearchResults {
            hits,
            total_matches: total as u64,
        })
    }
}
