//! Search quality on the Rust docs rustup installs: three known-item query sets (titles,
//! remembered words, navigational; `peersearch_tests::quality` says how they are made) run
//! against one peer that crawled every book and the API docs of std, alloc, proc_macro and test
//! (each served as its own site on loopback, every page seeded), and against two bare tantivy
//! indexes of the same pages (AND; OR + a sloppy phrase). Prints MRR@10, success@1 and n per
//! set and system, then the peer's first misses of each set.
//!
//! `cargo bench -p peersearch-node --bench quality`
//! `PEERSEARCH_BENCH_BIN=/path/to/peersearch` (or `PEERSEARCH_BIN`) measures another build;
//! `BENCH_TITLES=N` and `BENCH_WORDS=N` change the sizes of the two big sets;
//! `BENCH_MISSES=N` prints N misses per set (default 15).

// No `mod common`: this bench needs none of the indexer's types, so it keeps building while
// the document schema changes.
use peersearch_tests::need;
use peersearch_tests::quality::{
    ALL_SITES, Baseline, BaselineMode, Corpus, Row, Scores, ServedCorpus, crawl_with_one_peer,
    markdown_table, misses, run_on_peer,
};
use std::time::{Duration, Instant};

/// Title queries (drawn from the unique titles).
const DEFAULT_TITLES: usize = 500;
/// Remembered-words queries (one per drawn page).
const DEFAULT_WORDS: usize = 400;
/// The seed of both draws.
const SEED: u64 = 0x0051_7E5E_A4C4;
/// The crawl of ~6 000 pages takes a minute or two; this bounds a stuck one.
const CRAWL_TIMEOUT: Duration = Duration::from_secs(1_200);

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn run() -> anyhow::Result<()> {
    let bin = peersearch_tests::harness::binary();
    anyhow::ensure!(
        bin.exists(),
        "{} not found: run the bench with `cargo bench -p peersearch-node --bench quality` \
         (or set PEERSEARCH_BENCH_BIN)",
        bin.display()
    );
    eprintln!("peer binary: {}", bin.display());
    let Some(docs) = need::rust_docs("the quality bench") else {
        std::process::exit(0);
    };
    let t = Instant::now();
    let corpus = Corpus::load(&docs, ALL_SITES)?;
    eprintln!(
        "corpus: {} pages in {} sites, read in {:.1?}",
        corpus.len(),
        corpus.sites.len(),
        t.elapsed()
    );
    for s in &corpus.sites {
        eprintln!(
            "  {:<16} {:>5} pages, title suffix {:?}",
            s.spec.dir,
            s.pages.len(),
            s.title_suffix.as_deref().unwrap_or("")
        );
    }
    let sets = [
        corpus.title_queries(env_usize("BENCH_TITLES", DEFAULT_TITLES), SEED),
        corpus.remembered_words_queries(env_usize("BENCH_WORDS", DEFAULT_WORDS), SEED),
        corpus.navigational_queries(),
    ];
    for s in &sets {
        eprintln!("set {:?}: {} queries", s.name, s.queries.len());
    }

    let served = ServedCorpus::start(&corpus).await?;
    let t = Instant::now();
    let baseline = Baseline::build(&corpus, &served)?;
    eprintln!("baseline index built in {:.1?}", t.elapsed());

    let tmp = tempfile::tempdir()?;
    let (peer, st, took) =
        crawl_with_one_peer(&tmp.path().join("peer"), &corpus, &served, CRAWL_TIMEOUT).await?;
    eprintln!(
        "peer crawled in {:.1?}: {} docs indexed ({} corpus pages), {} crawled, {} failed",
        took,
        st["docs_indexed"],
        corpus.len(),
        st["pages_crawled"],
        st["pages_failed"]
    );

    let show = env_usize("BENCH_MISSES", 15);
    let mut rows = Vec::new();
    let mut miss_report = String::new();
    for set in &sets {
        let t = Instant::now();
        let ours = run_on_peer(&peer, &corpus, &served, set).await?;
        let peer_secs = t.elapsed().as_secs_f64();
        rows.push(Row {
            set: set.name,
            system: "peersearch".into(),
            scores: Scores::of(&ours),
        });
        for mode in [BaselineMode::Conjunctive, BaselineMode::OrPhrase] {
            let theirs = baseline.run(&corpus, &served, set, mode)?;
            rows.push(Row {
                set: set.name,
                system: mode.label().into(),
                scores: Scores::of(&theirs),
            });
        }
        let m = misses(&ours);
        miss_report.push_str(&format!(
            "\npeersearch misses of {:?} ({} of {}; queries took {peer_secs:.1} s):\n",
            set.name,
            m.len(),
            set.queries.len()
        ));
        for line in m.iter().take(show) {
            miss_report.push_str(&format!("  {line}\n"));
        }
    }
    println!(
        "\n### quality (peer binary {})\n\n{}",
        peersearch_tests::harness::binary().display(),
        markdown_table(&rows)
    );
    println!("{miss_report}");
    Ok(())
}

fn main() -> anyhow::Result<()> {
    // 2 worker threads: the machine has 2 cores.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run())
}
