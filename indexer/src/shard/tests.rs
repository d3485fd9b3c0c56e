//! Tests of the shard: writes, commits and durability, search semantics, exact scores.

use super::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use crate::query::SITE_LISTING_SCORE;
use crate::test_support::{corpus, page, shard_with, urls};
use crate::types::{Hit, TermStats, term_key};

#[test]
fn shard_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Shard>();
    assert_send_sync::<Arc<Shard>>();
}

#[test]
fn upsert_of_the_same_url_keeps_one_document() -> Result<()> {
    let shard = Shard::open_in_ram()?;
    shard.upsert(&page("http://a.example/", "old title", "old body"))?;
    shard.commit()?;
    shard.upsert(&page("http://a.example/", "new title", "new body"))?;
    assert_eq!(shard.pending(), 1);
    assert_eq!(shard.num_docs(), 1);
    shard.commit()?;
    assert_eq!(shard.pending(), 0);
    assert_eq!(shard.num_docs(), 1);
    let doc = shard.get("http://a.example/")?.expect("document is there");
    assert_eq!(doc.title, "new title");
    assert!(shard.search("old", 10, None)?.hits.is_empty());
    // Twice in one batch also ends as one document.
    shard.upsert(&page("http://b.example/", "one", "x"))?;
    shard.upsert(&page("http://b.example/", "two", "x"))?;
    shard.commit()?;
    assert_eq!(shard.num_docs(), 2);
    assert_eq!(
        shard.get("http://b.example/")?.map(|d| d.title),
        Some("two".into())
    );
    Ok(())
}

#[test]
fn delete_removes_the_document_at_commit() -> Result<()> {
    let shard = shard_with(&[
        page("http://a.example/1", "alpha", "x"),
        page("http://a.example/2", "beta", "x"),
    ])?;
    shard.delete("http://a.example/1")?;
    shard.delete("http://nowhere.example/")?;
    assert_eq!(shard.pending(), 2);
    assert_eq!(shard.num_docs(), 2, "not visible before commit");
    shard.commit()?;
    assert_eq!(shard.num_docs(), 1);
    assert!(shard.get("http://a.example/1")?.is_none());
    assert!(shard.search("alpha", 10, None)?.hits.is_empty());
    assert_eq!(shard.sites()?, vec![("a.example".to_string(), 1)]);
    Ok(())
}

#[test]
fn reopening_keeps_committed_documents_and_drops_uncommitted_ones() -> Result<()> {
    let dir = tempfile::tempdir()?;
    {
        let shard = Shard::open(dir.path())?;
        shard.upsert(&page("http://a.example/kept", "kept", "committed words"))?;
        shard.commit()?;
        shard.upsert(&page("http://a.example/lost", "lost", "staged words"))?;
        assert!(shard.size_bytes() > 0);
    }
    let shard = Shard::open(dir.path())?;
    assert_eq!(shard.num_docs(), 1);
    assert!(shard.get("http://a.example/kept")?.is_some());
    assert!(shard.get("http://a.example/lost")?.is_none());
    assert_eq!(
        urls(&shard.search("words", 10, None)?),
        vec!["http://a.example/kept"]
    );
    Ok(())
}

#[test]
fn a_leftover_lock_file_does_not_stop_opening() -> Result<()> {
    let dir = tempfile::tempdir()?;
    {
        let shard = Shard::open(dir.path())?;
        shard.upsert(&page("http://a.example/", "t", "b"))?;
        shard.commit()?;
    }
    // What a killed process leaves behind: the lock files, no longer locked by anyone.
    std::fs::write(dir.path().join(".tantivy-writer.lock"), b"")?;
    std::fs::write(dir.path().join(".tantivy-meta.lock"), b"")?;
    let shard = Shard::open(dir.path())?;
    assert_eq!(shard.num_docs(), 1);
    shard.upsert(&page("http://a.example/2", "t", "b"))?;
    shard.commit()?;
    assert_eq!(shard.num_docs(), 2);
    Ok(())
}

#[test]
fn a_second_live_writer_on_the_same_directory_is_refused() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let _first = Shard::open(dir.path())?;
    assert!(matches!(Shard::open(dir.path()), Err(Error::Locked(_))));
    Ok(())
}

/// What a recording directory sync saw: the directory and its `meta.json` at that moment.
type SyncLog = Arc<std::sync::Mutex<Vec<(PathBuf, String)>>>;

/// `shard` with a directory sync that records each call, then does the real sync, or
/// fails while `fail` is set.
fn record_dir_syncs(shard: &mut Shard, fail: Arc<AtomicBool>) -> SyncLog {
    let log = SyncLog::default();
    let seen = log.clone();
    shard.dir_sync = Box::new(move |dir: &Path| {
        let meta = std::fs::read_to_string(dir.join("meta.json"))?;
        seen.lock().unwrap().push((dir.to_path_buf(), meta));
        if fail.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("injected sync failure"));
        }
        sync_dir(dir)
    });
    log
}

#[test]
fn commit_syncs_the_directory_after_the_new_meta_json_is_in_place() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut shard = Shard::open(dir.path())?;
    let log = record_dir_syncs(&mut shard, Arc::default());
    let meta = || std::fs::read_to_string(dir.path().join("meta.json"));
    let before = meta()?;

    shard.upsert(&page("http://a.example/", "t", "b"))?;
    shard.commit()?;
    let synced = log.lock().unwrap().clone();
    assert_eq!(synced.len(), 1, "one sync per commit");
    assert_eq!(synced[0].0, dir.path());
    assert_ne!(synced[0].1, before, "synced after the rename, not before");
    assert_eq!(synced[0].1, meta()?, "synced the commit's own meta.json");

    shard.commit()?;
    assert_eq!(
        log.lock().unwrap().len(),
        1,
        "nothing committed, nothing to sync"
    );
    shard.delete("http://a.example/")?;
    shard.commit()?;
    assert_eq!(log.lock().unwrap().len(), 2, "a delete is a commit too");
    Ok(())
}

#[test]
fn a_failed_directory_sync_fails_the_commit_until_a_later_sync_succeeds() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut shard = Shard::open(dir.path())?;
    let fail = Arc::new(AtomicBool::new(true));
    let log = record_dir_syncs(&mut shard, fail.clone());

    shard.upsert(&page("http://a.example/", "t", "b"))?;
    let err = shard
        .commit()
        .expect_err("an unsynced commit is not reported durable");
    assert!(matches!(err, Error::SyncDirectory { ref dir, .. } if dir == shard.path().unwrap()));
    assert_eq!(shard.num_docs(), 1, "the commit itself is searchable");
    assert_eq!(shard.pending(), 0, "and is not replayed");
    // Nothing new staged, but the last commit is not yet durable: still an error.
    assert!(shard.commit().is_err());
    assert_eq!(log.lock().unwrap().len(), 2, "each commit retries the sync");

    fail.store(false, Ordering::SeqCst);
    shard.commit()?;
    assert_eq!(log.lock().unwrap().len(), 3);
    shard.commit()?;
    assert_eq!(
        log.lock().unwrap().len(),
        3,
        "synced once, then nothing to do"
    );
    Ok(())
}

#[test]
fn directory_sync_opens_the_real_directory() {
    let dir = tempfile::tempdir().unwrap();
    sync_dir(dir.path()).expect("a directory syncs");
    #[cfg(unix)]
    assert!(
        sync_dir(&dir.path().join("missing")).is_err(),
        "the sync really opens the directory"
    );
}

#[test]
fn opening_a_new_directory_creates_it_and_commits_there() -> Result<()> {
    let parent = tempfile::tempdir()?;
    let dir = parent.path().join("a").join("index");
    let shard = Shard::open(&dir)?;
    shard.upsert(&page("http://a.example/", "t", "b"))?;
    shard.commit()?;
    drop(shard);
    assert_eq!(Shard::open(&dir)?.num_docs(), 1);
    Ok(())
}

#[test]
fn failed_writer_state_is_replayed_at_the_next_commit() -> Result<()> {
    let shard = shard_with(&[page("http://a.example/0", "zero", "x")])?;
    shard.upsert(&page("http://a.example/1", "one", "x"))?;
    shard.upsert(&page("http://a.example/0", "zero again", "x"))?;
    shard.delete("http://a.example/1")?;
    shard.upsert(&page("http://a.example/2", "two", "x"))?;
    // What a failed commit leaves: the writer may miss staged operations.
    shard.lock_writer().needs_replay = true;
    shard.upsert(&page("http://a.example/3", "three", "x"))?;
    assert_eq!(shard.pending(), 5);
    shard.commit()?;
    assert_eq!(shard.pending(), 0);
    assert_eq!(shard.num_docs(), 3);
    assert_eq!(
        shard.get("http://a.example/0")?.map(|d| d.title),
        Some("zero again".into())
    );
    assert!(shard.get("http://a.example/1")?.is_none());
    assert!(shard.get("http://a.example/3")?.is_some());
    Ok(())
}

#[test]
fn phrase_must_and_exclude_select_documents() -> Result<()> {
    let shard = shard_with(&[
        page("http://a.example/1", "", "the quick brown fox jumps"),
        page("http://a.example/2", "", "brown quick fox sleeps"),
        page("http://a.example/3", "", "a lazy dog and a quick cat"),
    ])?;
    let r = shard.search("\"quick brown\"", 10, None)?;
    assert_eq!(urls(&r), vec!["http://a.example/1"]);
    assert_eq!(r.total_matches, 1);

    let mut r = urls(&shard.search("quick +fox", 10, None)?)
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    r.sort();
    assert_eq!(r, vec!["http://a.example/1", "http://a.example/2"]);

    let r = shard.search("quick -fox", 10, None)?;
    assert_eq!(urls(&r), vec!["http://a.example/3"]);
    let r = shard.search("quick -\"brown fox\"", 10, None)?;
    assert_eq!(r.total_matches, 2);
    assert!(!urls(&r).contains(&"http://a.example/1"));
    // Words are OR'ed by default.
    assert_eq!(shard.search("jumps sleeps", 10, None)?.total_matches, 2);
    Ok(())
}

#[test]
fn site_filter_matches_subdomains_and_excludes() -> Result<()> {
    let shard = shard_with(&[
        page("http://example.com/a", "", "rust guide"),
        page("http://docs.example.com:8080/b", "", "rust reference"),
        page("http://other.org/c", "", "rust news"),
        page("http://notexample.com/d", "", "rust blog"),
    ])?;
    let mut found = urls(&shard.search("rust site:example.com", 10, None)?)
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    found.sort();
    assert_eq!(
        found,
        vec!["http://docs.example.com:8080/b", "http://example.com/a"]
    );
    let r = shard.search("rust site:docs.example.com:8080", 10, None)?;
    assert_eq!(urls(&r), vec!["http://docs.example.com:8080/b"]);
    let r = shard.search("rust site:other.org site:notexample.com", 10, None)?;
    assert_eq!(r.total_matches, 2);
    let r = shard.search("rust -site:example.com", 10, None)?;
    assert_eq!(r.total_matches, 2);
    assert!(
        urls(&r)
            .iter()
            .all(|u| !u.contains("example.com/") || u.contains("notexample"))
    );
    Ok(())
}

#[test]
fn only_site_filter_lists_the_site_in_url_order() -> Result<()> {
    let shard = shard_with(&[
        page("http://example.com/b", "", "two"),
        page("http://example.com/a", "", "one"),
        page("http://sub.example.com/c", "", "three"),
        page("http://other.org/", "", "four"),
    ])?;
    let r = shard.search("site:example.com", 10, None)?;
    assert_eq!(
        urls(&r),
        vec![
            "http://example.com/a",
            "http://example.com/b",
            "http://sub.example.com/c"
        ]
    );
    assert!(r.hits.iter().all(|h| h.score == SITE_LISTING_SCORE));
    let r = shard.search("site:example.com -three", 10, None)?;
    assert_eq!(r.total_matches, 2);
    assert_eq!(
        urls(&shard.search("site:example.com", 1, None)?),
        vec!["http://example.com/a"]
    );
    Ok(())
}

#[test]
fn stemming_finds_other_forms_of_a_word() -> Result<()> {
    let shard = shard_with(&[page("http://a.example/", "", "she runs every day")])?;
    assert_eq!(shard.search("running", 10, None)?.total_matches, 1);
    assert_eq!(shard.search("RUN", 10, None)?.total_matches, 1);
    let hit = &shard.search("running", 10, None)?.hits[0];
    assert!(hit.snippet.contains("<b>runs</b>"), "{}", hit.snippet);
    Ok(())
}

#[test]
fn words_in_the_url_are_found() -> Result<()> {
    let shard = shard_with(&[page("http://a.example/tantivy-guide", "guide", "text")])?;
    assert_eq!(shard.search("tantivy", 10, None)?.total_matches, 1);
    Ok(())
}

#[test]
fn a_title_match_outranks_a_body_match() -> Result<()> {
    let shard = shard_with(&[
        page(
            "http://a.example/body",
            "something else",
            "all about zebras here",
        ),
        page(
            "http://a.example/title",
            "zebras",
            "all about something here",
        ),
    ])?;
    let r = shard.search("zebra", 10, None)?;
    assert_eq!(
        urls(&r),
        vec!["http://a.example/title", "http://a.example/body"]
    );
    assert!(r.hits[0].score > r.hits[1].score);
    Ok(())
}

#[test]
fn equal_scores_are_ordered_by_url_and_cut_alike() -> Result<()> {
    let docs: Vec<Document> = ["d", "b", "e", "a", "c"]
        .iter()
        .map(|n| page(&format!("http://a.example/{n}"), "same", "same text"))
        .collect();
    let shard = shard_with(&docs)?;
    let r = shard.search("same", 3, None)?;
    assert_eq!(
        urls(&r),
        vec![
            "http://a.example/a",
            "http://a.example/b",
            "http://a.example/c"
        ]
    );
    assert_eq!(r.total_matches, 5);
    assert!(shard.search("same", 0, None)?.hits.is_empty());
    Ok(())
}

#[test]
fn hostile_queries_neither_panic_nor_hang() -> Result<()> {
    let shard = Arc::new(shard_with(&[page(
        "http://a.example/",
        "a title",
        "a body with words",
    )])?);
    let junk: String = (0..2048u32)
        .map(|i| char::from_u32(33 + (i * 7919) % 94).unwrap_or('x'))
        .collect();
    let control: String = (0u8..32).map(char::from).collect();
    let queries = vec![
        "a:(^".to_string(),
        "\"unbalanced".to_string(),
        "((((".to_string(),
        junk,
        "-x".to_string(),
        "🦀 🚀 body".to_string(),
        "🦀🚀".to_string(),
        control,
        "title:a AND body:(b OR c)^2 ~ * ? [a TO z]".to_string(),
        "site:".to_string(),
        "+\"\" -\"\"".to_string(),
        "\u{202e}body\u{200b}".to_string(),
        "x".repeat(100_000),
    ];
    let (tx, rx) = mpsc::channel();
    let worker = {
        let shard = Arc::clone(&shard);
        std::thread::spawn(move || {
            for q in queries {
                let outcome = (shard.search(&q, 10, None), shard.term_stats(&q));
                let ok = matches!(outcome.0, Ok(_) | Err(Error::EmptyQuery))
                    && matches!(outcome.1, Ok(_) | Err(Error::EmptyQuery));
                tx.send((q.chars().take(40).collect::<String>(), ok))
                    .expect("test thread waits");
            }
        })
    };
    for _ in 0..13 {
        let (q, ok) = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("query finished in time");
        assert!(ok, "unexpected error for {q:?}");
    }
    worker.join().expect("no panic");
    assert!(matches!(
        shard.search("-x", 10, None),
        Err(Error::EmptyQuery)
    ));
    assert_eq!(shard.search("🦀 🚀 body", 10, None)?.total_matches, 1);
    Ok(())
}

#[test]
fn snippets_escape_html_and_highlight_terms() -> Result<()> {
    let shard = shard_with(&[Document {
        description: "a description".into(),
        ..page(
            "http://a.example/",
            "<i>Title</i>",
            "intro <script>alert(1)</script> then the keyword & more text",
        )
    }])?;
    let hit = &shard.search("keyword", 10, None)?.hits[0];
    assert!(hit.snippet.contains("<b>keyword</b>"), "{}", hit.snippet);
    assert!(
        hit.snippet
            .contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{}",
        hit.snippet
    );
    assert!(hit.snippet.contains("&amp;"), "{}", hit.snippet);
    assert_eq!(hit.snippet.matches('<').count(), 2, "{}", hit.snippet);
    assert_eq!(hit.title, "<i>Title</i>", "title stays plain text");
    // A title-only match falls back to the escaped start of the body.
    let hit = &shard.search("title", 10, None)?.hits[0];
    assert!(
        hit.snippet.starts_with("intro &lt;script&gt;"),
        "{}",
        hit.snippet
    );
    Ok(())
}

#[test]
fn term_stats_count_documents_tokens_and_frequencies() -> Result<()> {
    let shard = shard_with(&[
        page("http://a.example/1", "Fox", "the quick fox"),
        page("http://a.example/2", "Dogs", "lazy dogs and a fox"),
        page("http://a.example/3", "", "nothing"),
    ])?;
    let stats = shard.term_stats("foxes \"lazy dog\" -nothing")?;
    assert_eq!(stats.num_docs, 3);
    assert_eq!(stats.field_tokens["title"], 2);
    assert_eq!(stats.field_tokens["body"], 3 + 5 + 1);
    // url_text: http a example 1 -> 4 tokens each.
    assert_eq!(stats.field_tokens["url_text"], 12);
    assert_eq!(stats.field_tokens.len(), 7);
    assert_eq!(stats.doc_freq[&term_key("body", "fox")], 2);
    assert_eq!(stats.doc_freq[&term_key("title", "fox")], 1);
    assert_eq!(stats.doc_freq[&term_key("body", "lazi")], 1);
    assert_eq!(stats.doc_freq[&term_key("title", "dog")], 1);
    assert_eq!(stats.doc_freq[&term_key("anchor_text", "dog")], 0);
    assert!(!stats.doc_freq.contains_key(&term_key("body", "noth")));
    assert_eq!(stats.doc_freq.len(), 3 * 7);
    assert!(matches!(shard.term_stats("-fox"), Err(Error::EmptyQuery)));
    Ok(())
}

#[test]
fn own_stats_give_the_same_scores_as_no_stats() -> Result<()> {
    let shard = shard_with(&corpus(0..60))?;
    for q in ["alpha beta", "+gamma delta", "\"alpha beta\" omega"] {
        let stats = shard.term_stats(q)?;
        assert_eq!(
            shard.search(q, 20, None)?,
            shard.search(q, 20, Some(&stats))?,
            "{q}"
        );
    }
    Ok(())
}

#[test]
fn inconsistent_stats_do_not_panic() -> Result<()> {
    let shard = shard_with(&corpus(0..20))?;
    let mut stats = TermStats::default();
    stats.doc_freq.insert(term_key("body", "alpha"), u64::MAX);
    stats.field_tokens.insert("body".into(), 0);
    let r = shard.search("alpha", 10, Some(&stats))?;
    assert!(r.hits.iter().all(|h| h.score.is_finite()));
    Ok(())
}

#[test]
fn site_digest_and_pages_list_a_site_in_url_order() -> Result<()> {
    let mut docs = vec![
        page("http://s.example/c", "", "x"),
        page("http://s.example/a", "", "x"),
        page("http://t.example/z", "", "x"),
    ];
    docs[0].fetched_at = 30;
    docs[1].fetched_at = 10;
    let shard = shard_with(&docs)?;
    shard.upsert(&page("http://s.example/b", "", "x"))?;
    shard.commit()?;
    shard.delete("http://s.example/c")?;
    shard.upsert(&page("http://sub.s.example/d", "", "x"))?;
    shard.commit()?;
    assert_eq!(
        shard.site_digest("s.example")?,
        vec![
            ("http://s.example/a".to_string(), 10),
            ("http://s.example/b".to_string(), 1_700_000_000),
        ]
    );
    let page2 = shard.docs_for_site("s.example", 1, 10)?;
    assert_eq!(page2.len(), 1);
    assert_eq!(page2[0].url, "http://s.example/b");
    assert_eq!(page2[0], shard.get("http://s.example/b")?.expect("present"));
    assert!(shard.docs_for_site("s.example", 5, 10)?.is_empty());
    assert!(shard.site_digest("nowhere.example")?.is_empty());
    assert_eq!(
        shard.sites()?,
        vec![
            ("s.example".to_string(), 2),
            ("sub.s.example".to_string(), 1),
            ("t.example".to_string(), 1),
        ]
    );
    Ok(())
}

/// tantivy sums an intersection's clauses in order of their cost (document frequency in
/// the segment), which differs between a half and the whole when term frequencies are
/// distributed unevenly; the scores must not.
#[test]
fn uneven_term_frequencies_across_shards_still_score_exactly() -> Result<()> {
    let body = |parts: &[(&str, usize)], pad: usize| {
        let mut words = Vec::new();
        for &(word, n) in parts {
            words.extend(std::iter::repeat_n(word, n));
        }
        words.extend(std::iter::repeat_n("pad", pad));
        words.join(" ")
    };
    let mut half_a_docs = Vec::new();
    for i in 0..30usize {
        let mut parts = vec![("zulu", 1 + i % 3)];
        if i < 20 {
            parts.push(("yank", 1 + i % 4));
        }
        if i < 10 {
            parts.push(("xray", 1 + i % 5));
        }
        half_a_docs.push(page(
            &format!("http://a.example/{i}"),
            "",
            &body(&parts, i % 7),
        ));
    }
    let mut half_b_docs = Vec::new();
    for j in 0..41usize {
        let mut parts = vec![("yank", 1 + j % 2)];
        if j < 40 {
            parts.push(("xray", 1 + j % 3));
        }
        if j == 0 {
            parts.push(("zulu", 1));
        }
        half_b_docs.push(page(
            &format!("http://b.example/{j}"),
            "",
            &body(&parts, j % 5),
        ));
    }
    let all: Vec<Document> = half_a_docs.iter().chain(&half_b_docs).cloned().collect();
    let combined = shard_with(&all)?;
    let half_a = shard_with(&half_a_docs)?;
    let half_b = shard_with(&half_b_docs)?;
    for q in [
        "+xray +yank +zulu",
        "+zulu +yank +xray +pad",
        "xray yank zulu pad",
    ] {
        let mut stats = half_a.term_stats(q)?;
        stats.merge(&half_b.term_stats(q)?);
        let central = combined.search(q, MAX_TOP_K, None)?;
        let mut hits = half_a.search(q, MAX_TOP_K, Some(&stats))?.hits;
        hits.extend(half_b.search(q, MAX_TOP_K, Some(&stats))?.hits);
        hits.sort_by(|x, y| y.score.total_cmp(&x.score).then_with(|| x.url.cmp(&y.url)));
        assert!(!hits.is_empty());
        for (split, whole) in hits.iter().zip(&central.hits) {
            assert_eq!(split.url, whole.url, "{q}");
            assert_eq!(
                split.score.to_bits(),
                whole.score.to_bits(),
                "{q}: {}",
                split.url
            );
        }
        assert_eq!(hits.len(), central.hits.len());
    }
    Ok(())
}

/// The property the whole network relies on: shard A scored with the merged stats of
/// A and B gives every document exactly the score one index over A+B gives it, so the
/// merged top-10 of the halves equals the central top-10, bit for bit.
#[test]
fn split_shards_with_merged_stats_score_exactly_like_one_index() -> Result<()> {
    let docs = corpus(0..220);
    let combined = shard_with(&docs)?;
    let half_a = Shard::open_in_ram()?;
    let half_b = Shard::open_in_ram()?;
    for (i, doc) in docs.iter().enumerate() {
        let shard = if (i * 7 + 3) % 5 < 2 {
            &half_a
        } else {
            &half_b
        };
        shard.upsert(doc)?;
        if i == 100 {
            // Several segments on one side.
            half_a.commit()?;
        }
    }
    half_a.commit()?;
    half_b.commit()?;
    assert_eq!(half_a.num_docs() + half_b.num_docs(), combined.num_docs());

    let queries = [
        "alpha",
        "omega",
        "link",
        "alpha beta",
        "rust search engine",
        "peer index shard query score",
        "+alpha beta",
        "+gamma +delta epsilon",
        "alpha -beta",
        "\"alpha beta\"",
        "\"alpha alpha\" gamma",
        "\"beta gamma delta\"",
        "lambda omega link page crawl network",
        "alpha site:site3.example",
        "beta gamma site:site1.example site:site2.example",
        "eta theta -site:site0.example",
        "+kappa -\"alpha beta\"",
        "zeta eta theta iota kappa lambda omega rust search engine peer",
        "alphas betas",
        "+search +engine +peer",
        "crawl page link -alpha -beta",
        "delta \"epsilon zeta\" +iota",
        "site:site4.example",
        "+alpha +beta +gamma",
        "+beta +gamma +delta +epsilon +zeta",
        "+alpha +gamma +epsilon eta theta",
        "+\"alpha beta\" +gamma +delta",
    ];
    let mut compared_hits = 0;
    for q in queries {
        let mut stats = half_a.term_stats(q)?;
        stats.merge(&half_b.term_stats(q)?);
        assert_eq!(stats, combined.term_stats(q)?, "merged stats for {q}");

        let central = combined.search(q, 10, None)?;
        let a = half_a.search(q, 10, Some(&stats))?;
        let b = half_b.search(q, 10, Some(&stats))?;
        assert_eq!(
            a.total_matches + b.total_matches,
            central.total_matches,
            "{q}"
        );
        let mut merged: Vec<Hit> = a.hits.into_iter().chain(b.hits).collect();
        merged.sort_by(|x, y| y.score.total_cmp(&x.score).then_with(|| x.url.cmp(&y.url)));
        merged.truncate(10);
        let key = |hits: &[Hit]| {
            hits.iter()
                .map(|h| (h.url.clone(), h.score.to_bits()))
                .collect::<Vec<_>>()
        };
        assert_eq!(key(&merged), key(&central.hits), "top-10 differs for {q:?}");
        assert_eq!(merged, central.hits, "{q}");
        compared_hits += central.hits.len();

        // Not only the top: every matching document scores alike.
        let central = combined.search(q, MAX_TOP_K, None)?;
        let mut all: Vec<Hit> = half_a.search(q, MAX_TOP_K, Some(&stats))?.hits;
        all.extend(half_b.search(q, MAX_TOP_K, Some(&stats))?.hits);
        all.sort_by(|x, y| y.score.total_cmp(&x.score).then_with(|| x.url.cmp(&y.url)));
        assert_eq!(key(&all), key(&central.hits), "scores differ for {q:?}");
    }
    assert!(
        compared_hits > 150,
        "the queries must match documents: {compared_hits}"
    );
    Ok(())
}
