//! Search quality on a real corpus: the known-item query sets of `peersearch_tests::quality`
//! (titles, remembered words, navigational) on the Rust docs rustup installs (every book and
//! the API docs of std — half of its pages —, alloc, proc_macro and test, each served as its
//! own site on loopback and crawled by one peer, every page seeded), checked against a bare
//! tantivy index of the same pages queried with the same queries. The targets:
//! remembered-words MRR@10 >= 0.55 and above both bare-tantivy variants (AND; OR + phrase),
//! titles MRR@10 >= 0.97, navigational success@1 >= 0.9. The full sets are the `quality`
//! bench (`docs/benchmarks.md`).

use peersearch_tests::need;
use peersearch_tests::quality::{
    ALL_SITES, Baseline, BaselineMode, Corpus, Row, Scores, ServedCorpus, SiteSpec,
    crawl_with_one_peer, markdown_table, misses, run_on_peer,
};
use std::time::{Duration, Instant};

/// Title queries (drawn among the unique titles).
const TITLES: usize = 300;
/// Remembered-words queries (one per drawn page).
const WORDS: usize = 300;
/// The seed of both draws (another than the bench's, so the two see different queries).
const SEED: u64 = 0x007E_570F_2026;
/// std keeps every `STD_SAMPLE`-th page: the run stays under about 3 minutes on 2 cores.
const STD_SAMPLE: usize = 2;
/// Misses printed per set and system, for diagnosis.
const SHOWN_MISSES: usize = 20;

const WORDS_MRR_MIN: f64 = 0.55;
const TITLES_MRR_MIN: f64 = 0.97;
const NAVIGATIONAL_S1_MIN: f64 = 0.9;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_item_queries_on_the_rust_docs_beat_bare_tantivy() {
    let Some(docs) = need::rust_docs("the quality test") else {
        return;
    };
    let started = Instant::now();
    let specs: Vec<SiteSpec> = ALL_SITES
        .iter()
        .map(|s| SiteSpec {
            sample: if s.dir == "std" { STD_SAMPLE } else { 1 },
            ..*s
        })
        .collect();
    let corpus = Corpus::load(&docs, &specs).unwrap();
    let sets = [
        corpus.title_queries(TITLES, SEED),
        corpus.remembered_words_queries(WORDS, SEED),
        corpus.navigational_queries(),
    ];
    assert!(
        sets[0].queries.len() == TITLES && sets[1].queries.len() == WORDS,
        "too few pages for the query sets: {} titles, {} remembered words",
        sets[0].queries.len(),
        sets[1].queries.len()
    );
    assert_eq!(
        sets[2].queries.len(),
        specs.len(),
        "a site without a front page"
    );

    let served = ServedCorpus::start(&corpus).await.unwrap();
    let baseline = Baseline::build(&corpus, &served).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (peer, st, crawl_took) = crawl_with_one_peer(
        &dir.path().join("peer"),
        &corpus,
        &served,
        Duration::from_secs(600),
    )
    .await
    .unwrap();

    let mut rows = Vec::new();
    let mut report = String::new();
    let mut scores = Vec::new();
    for set in &sets {
        let ours = run_on_peer(&peer, &corpus, &served, set).await.unwrap();
        let ours_scores = Scores::of(&ours);
        rows.push(Row {
            set: set.name,
            system: "peersearch".into(),
            scores: ours_scores,
        });
        let m = misses(&ours);
        report.push_str(&format!(
            "\npeersearch misses of {:?}: {} of {}\n",
            set.name,
            m.len(),
            set.queries.len()
        ));
        for line in m.iter().take(SHOWN_MISSES) {
            report.push_str(&format!("  {line}\n"));
        }
        let mut theirs_scores = Vec::new();
        for mode in [BaselineMode::Conjunctive, BaselineMode::OrPhrase] {
            let s = Scores::of(&baseline.run(&corpus, &served, set, mode).unwrap());
            rows.push(Row {
                set: set.name,
                system: mode.label().into(),
                scores: s,
            });
            theirs_scores.push(s);
        }
        scores.push((ours_scores, theirs_scores));
    }
    println!(
        "{} pages ({} docs indexed by the peer, crawled in {:.1?}); whole test {:.1?}\n\n{}{}",
        corpus.len(),
        st["docs_indexed"],
        crawl_took,
        started.elapsed(),
        markdown_table(&rows),
        report
    );

    let mut failures = Vec::new();
    let (titles, _) = &scores[0];
    if titles.mrr < TITLES_MRR_MIN {
        failures.push(format!(
            "titles MRR@10 {:.3} < {TITLES_MRR_MIN}",
            titles.mrr
        ));
    }
    let (words, bare) = &scores[1];
    if words.mrr < WORDS_MRR_MIN {
        failures.push(format!(
            "remembered-words MRR@10 {:.3} < {WORDS_MRR_MIN}",
            words.mrr
        ));
    }
    for (b, mode) in bare
        .iter()
        .zip([BaselineMode::Conjunctive, BaselineMode::OrPhrase])
    {
        if words.mrr <= b.mrr {
            failures.push(format!(
                "remembered-words MRR@10 {:.3} not above {} ({:.3})",
                words.mrr,
                mode.label(),
                b.mrr
            ));
        }
    }
    let (nav, _) = &scores[2];
    if nav.success1 < NAVIGATIONAL_S1_MIN {
        failures.push(format!(
            "navigational success@1 {:.3} < {NAVIGATIONAL_S1_MIN}",
            nav.success1
        ));
    }
    assert!(
        failures.is_empty(),
        "search quality below target: {}",
        failures.join("; ")
    );
}
