//! Indexing throughput: documents per second through `Shard::upsert` + `Shard::commit` (a
//! commit every [`COMMIT_EVERY`] documents, as a crawling peer does) against a bare tantivy
//! loop over an index of the same schema (the same 16 fields, options and analyzer, the same writer
//! budget), on the same documents extracted once from the Rust docs, in the same run.
//!
//! `cargo bench -p peersearch-node --bench indexing` (`BENCH_DOCS=N` to change the size).

mod common;

use common::{print_table, rust_docs_corpus};
use peersearch_indexer::{Document, Shard, en_stem_analyzer};
use std::path::Path;
use std::time::{Duration, Instant};
use tantivy::schema::{
    FAST, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::{Index, IndexWriter, TantivyDocument};

/// Documents in the corpus (the brief: about 20 000 pages of the Rust docs).
const DEFAULT_DOCS: usize = 20_000;
/// Documents between two commits of the shard (a peer commits every second while crawling;
/// 1 000 pages is about what one second of a fast crawl yields).
const COMMIT_EVERY: usize = 1_000;
/// Writer settings of the shard (`indexer/src/shard.rs`: `WRITER_THREADS`,
/// `WRITER_HEAP_BYTES`), repeated for the bare loop so that only the wrapper differs.
const WRITER_THREADS: usize = 1;
const WRITER_HEAP_BYTES: usize = 50_000_000;
/// Measured rounds; each runs every variant once, in turn.
const ROUNDS: usize = 5;
/// Documents indexed (and thrown away) by every variant before measuring.
const WARMUP_DOCS: usize = 1_000;

/// The shard's schema rebuilt with plain tantivy (`indexer/src/schema.rs`).
struct Bare {
    schema: Schema,
    f: [tantivy::schema::Field; 16],
}

impl Bare {
    fn new() -> Bare {
        let mut b = Schema::builder();
        let idx = TextFieldIndexing::default()
            .set_tokenizer("en_stem")
            .set_index_option(IndexRecordOption::WithFreqsAndPositions);
        let stored = TextOptions::default()
            .set_indexing_options(idx.clone())
            .set_stored();
        let unstored = TextOptions::default().set_indexing_options(idx);
        let f = [
            b.add_text_field("url", STRING | STORED | FAST),
            b.add_text_field("site", STRING | STORED),
            b.add_text_field("site_suffixes", STRING),
            b.add_text_field("title", stored.clone()),
            b.add_text_field("description", stored.clone()),
            b.add_text_field("body", stored.clone()),
            b.add_text_field("headings", stored.clone()),
            b.add_text_field("anchor_text", stored.clone()),
            b.add_text_field("url_text", unstored),
            b.add_text_field("lang", STRING | STORED),
            b.add_i64_field("fetched_at", FAST | STORED | INDEXED),
            b.add_text_field("content_hash", STRING | STORED),
            b.add_text_field("chrome", stored),
            b.add_u64_field("inlink_sites", FAST | STORED),
            b.add_u64_field("inlink_pages", FAST | STORED),
            b.add_u64_field("url_depth", FAST),
        ];
        Bare {
            schema: b.build(),
            f,
        }
    }

    fn doc(&self, d: &Document) -> TantivyDocument {
        let f = &self.f;
        let mut t = TantivyDocument::default();
        t.add_text(f[0], &d.url);
        t.add_text(f[1], &d.site);
        // The site and its parent domains, as the shard files them for `site:` filters.
        let mut rest = d.site.as_str();
        t.add_text(f[2], rest);
        while let Some((_, parent)) = rest.split_once('.') {
            t.add_text(f[2], parent);
            rest = parent;
        }
        t.add_text(f[3], &d.title);
        t.add_text(f[4], &d.description);
        t.add_text(f[5], &d.body);
        t.add_text(f[6], &d.headings);
        t.add_text(f[7], &d.anchor_text);
        t.add_text(f[8], &d.url);
        t.add_text(f[9], &d.lang);
        t.add_i64(f[10], d.fetched_at);
        t.add_text(f[11], &d.content_hash);
        t.add_text(f[12], &d.chrome);
        t.add_u64(f[13], u64::from(d.inlink_sites));
        t.add_u64(f[14], u64::from(d.inlink_pages));
        // The shard derives the depth from the URL's path; the bare loop counts slashes.
        let depth = d
            .url
            .splitn(4, '/')
            .nth(3)
            .map_or(0, |p| p.matches('/').count());
        t.add_u64(f[15], depth as u64);
        t
    }

    /// Index `docs` into a fresh index in `dir`, committing every `commit_every` documents
    /// (and once at the end).
    fn run(&self, dir: &Path, docs: &[Document], commit_every: usize) -> anyhow::Result<()> {
        let index = Index::create_in_dir(dir, self.schema.clone())?;
        index.tokenizers().register("en_stem", en_stem_analyzer());
        let mut writer: IndexWriter =
            index.writer_with_num_threads(WRITER_THREADS, WRITER_HEAP_BYTES)?;
        for (i, d) in docs.iter().enumerate() {
            writer.add_document(self.doc(d))?;
            if (i + 1) % commit_every == 0 {
                writer.commit()?;
            }
        }
        // Not `wait_merging_threads`: the shard does not wait for background merges either;
        // both variants stop the clock when every document is committed.
        writer.commit()?;
        Ok(())
    }
}

/// Index `docs` through the shard, committing every [`COMMIT_EVERY`] documents.
fn run_shard(dir: &Path, docs: &[Document]) -> anyhow::Result<u64> {
    let shard = Shard::open(dir)?;
    for (i, d) in docs.iter().enumerate() {
        shard.upsert(d)?;
        if (i + 1) % COMMIT_EVERY == 0 {
            shard.commit()?;
        }
    }
    shard.commit()?;
    Ok(shard.num_docs())
}

#[derive(Clone, Copy, PartialEq)]
enum Variant {
    BareOneCommit,
    BareCommitEvery,
    Shard,
}

impl Variant {
    fn name(self) -> String {
        match self {
            Variant::BareOneCommit => "bare tantivy, one commit".into(),
            Variant::BareCommitEvery => format!("bare tantivy, commit every {COMMIT_EVERY}"),
            Variant::Shard => format!("Shard::upsert, commit every {COMMIT_EVERY}"),
        }
    }

    fn run(self, bare: &Bare, dir: &Path, docs: &[Document]) -> anyhow::Result<()> {
        match self {
            Variant::BareOneCommit => bare.run(dir, docs, usize::MAX),
            Variant::BareCommitEvery => bare.run(dir, docs, COMMIT_EVERY),
            Variant::Shard => {
                let n = run_shard(dir, docs)?;
                // Rust-docs URLs are unique, so every upsert is a new document.
                anyhow::ensure!(n == docs.len() as u64, "shard holds {n} of {}", docs.len());
                Ok(())
            }
        }
    }
}

fn main() -> anyhow::Result<()> {
    let n = std::env::var("BENCH_DOCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_DOCS);
    let docs = rust_docs_corpus(n)?;
    let bare = Bare::new();
    let variants = [
        Variant::BareOneCommit,
        Variant::BareCommitEvery,
        Variant::Shard,
    ];

    for v in variants {
        let tmp = tempfile::tempdir()?;
        v.run(&bare, tmp.path(), &docs[..WARMUP_DOCS.min(docs.len())])?;
    }

    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); variants.len()];
    for round in 0..ROUNDS {
        // Rotate the order each round so that no variant always runs first or last.
        for k in 0..variants.len() {
            let i = (k + round) % variants.len();
            let v = variants[i];
            let tmp = tempfile::tempdir()?;
            let t = Instant::now();
            v.run(&bare, tmp.path(), &docs)?;
            let took = t.elapsed();
            eprintln!("round {round}: {} {:.2?}", v.name(), took);
            times[i].push(took);
        }
    }

    // The median round of each variant: the machine is shared, single rounds swing widely.
    let best: Vec<Duration> = times
        .iter()
        .map(|t| {
            let mut t = t.clone();
            t.sort();
            t[t.len() / 2]
        })
        .collect();
    let rate = |d: Duration| docs.len() as f64 / d.as_secs_f64();
    let reference = rate(best[0]);
    let rows: Vec<Vec<String>> = variants
        .iter()
        .enumerate()
        .map(|(i, v)| {
            vec![
                v.name(),
                format!("{:.2}", best[i].as_secs_f64()),
                format!("{:.0}", rate(best[i])),
                format!("{:.2}", rate(best[i]) / reference),
                times[i]
                    .iter()
                    .map(|t| format!("{:.2}", t.as_secs_f64()))
                    .collect::<Vec<_>>()
                    .join(" / "),
            ]
        })
        .collect();
    print_table(
        &format!("indexing {} Rust-docs documents", docs.len()),
        &[
            "variant",
            "median s",
            "docs/s",
            "ratio to bare one commit",
            "every round s",
        ],
        &rows,
    );
    println!(
        "ours/bare (same commit cadence): {:.2}; ours/bare (one commit): {:.2}",
        rate(best[2]) / rate(best[1]),
        rate(best[2]) / rate(best[0])
    );
    Ok(())
}
