//! BM25 statistics: gathering them from a shard, and scoring with statistics handed in.

use tantivy::query::Bm25StatisticsProvider;
use tantivy::schema::{Field, Schema};
use tantivy::{Searcher, Term};

use crate::query::ParsedQuery;
use crate::schema::Fields;
use crate::types::{TermStats, term_key};

/// The statistics of this searcher for the terms of `parsed`.
///
/// `num_docs` and every count are tantivy's own BM25 inputs: documents and tokens are
/// counted per segment including deleted documents that a merge has not purged yet (that is
/// what tantivy's `Searcher` reports as a statistics provider, and `doc_freq` counts them
/// too, so the counts stay consistent with each other). Merging the stats of shards gives
/// exactly what one index holding all their segments would report.
pub(crate) fn gather(
    searcher: &Searcher,
    schema: &Schema,
    fields: &Fields,
    parsed: &ParsedQuery,
) -> tantivy::Result<TermStats> {
    let mut stats = TermStats {
        num_docs: Bm25StatisticsProvider::total_num_docs(searcher)?,
        ..TermStats::default()
    };
    let terms = parsed.scoring_terms();
    if terms.is_empty() {
        return Ok(stats);
    }
    for &(field, _) in &fields.text {
        let name = schema.get_field_name(field);
        stats.field_tokens.insert(
            name.to_string(),
            Bm25StatisticsProvider::total_num_tokens(searcher, field)?,
        );
        for text in &terms {
            let df = searcher.doc_freq(&Term::from_field_text(field, text))?;
            stats.doc_freq.insert(term_key(name, text), df);
        }
    }
    Ok(stats)
}

/// Scores with statistics from outside (the merged stats of every shard a query reaches).
///
/// Whatever the map lacks falls back to this shard's own numbers. Every number is also
/// raised to at least the local one, and a document frequency is capped by the document
/// count: legitimate merged stats already satisfy both (they include this shard), while
/// stale or hostile ones could otherwise trip tantivy's `doc_freq <= num_docs` assertion.
pub(crate) struct ProvidedStats<'a> {
    pub stats: &'a TermStats,
    pub searcher: &'a Searcher,
    pub schema: &'a Schema,
}

impl Bm25StatisticsProvider for ProvidedStats<'_> {
    fn total_num_tokens(&self, field: Field) -> tantivy::Result<u64> {
        let local = Bm25StatisticsProvider::total_num_tokens(self.searcher, field)?;
        let name = self.schema.get_field_name(field);
        Ok(self
            .stats
            .field_tokens
            .get(name)
            .map_or(local, |&global| global.max(local)))
    }

    fn total_num_docs(&self) -> tantivy::Result<u64> {
        let local = Bm25StatisticsProvider::total_num_docs(self.searcher)?;
        Ok(self.stats.num_docs.max(local))
    }

    fn doc_freq(&self, term: &Term) -> tantivy::Result<u64> {
        let local = self.searcher.doc_freq(term)?;
        let global = term.value().as_str().and_then(|text| {
            let name = self.schema.get_field_name(term.field());
            self.stats.doc_freq.get(&term_key(name, text)).copied()
        });
        let df = global.map_or(local, |g| g.max(local));
        Ok(df.min(self.total_num_docs()?))
    }
}
