//! Revisits through the frontier on a real store, with a clock the tests move.

use super::revisit::{LastVisit, VisitKind, VisitNote};
use super::*;
use crate::fetch::Validators;
use crate::normalize::normalize;
use std::cell::Cell;

thread_local! {
    /// Each test runs on its own thread, and the frontier reads the clock on the caller's.
    static NOW: Cell<i64> = const { Cell::new(1_000_000) };
}

fn clock() -> i64 {
    NOW.with(Cell::get)
}

fn set_clock(t: i64) {
    NOW.with(|c| c.set(t));
}

/// min 10 s, max 1 000 s: a first visit's base interval is 40 s (a leaf's delay 36–44 s).
fn limits() -> FrontierLimits {
    FrontierLimits {
        max_depth: DEFAULT_MAX_DEPTH,
        max_pages_per_site: DEFAULT_MAX_PAGES_PER_SITE,
        revisit: RevisitPolicy {
            min_secs: 10,
            max_secs: 1_000,
        },
        now: clock,
    }
}

fn url(s: &str) -> NormalizedUrl {
    normalize(s, None).unwrap()
}

fn leaf(s: &str) -> Seed {
    Seed {
        depth: 1,
        ..Seed::new(url(s))
    }
}

fn take(f: &Frontier) -> Option<Job> {
    match f.next_job(|_| Ok::<_, HostBusy>(())).unwrap() {
        NextJob::Job(job, ()) => Some(job),
        _ => None,
    }
}

fn note(kind: VisitKind, etag: &str, hash: &str, doc: &str) -> VisitNote {
    VisitNote {
        kind,
        last: LastVisit {
            validators: Validators {
                etag: Some(etag.into()),
                last_modified: None,
            },
            content_hash: Some(hash.into()),
            doc: Some(doc.into()),
            failures: 0,
            gone: false,
        },
        hub: Some(false),
    }
}

/// Takes the one job there is, notes `kind` for it and marks it done now.
fn visit(f: &Frontier, kind: VisitKind, etag: &str) -> Job {
    let job = take(f).expect("a job is due");
    f.note_visit(&job.url, note(kind, etag, "h", job.url.as_str()));
    f.mark_done(std::slice::from_ref(&job.url), clock())
        .unwrap();
    job
}

#[test]
fn a_done_url_comes_due_again_with_what_its_last_visit_left() -> Result<()> {
    set_clock(1_000_000);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("crawl.redb");
    let f = Frontier::open(&path, limits())?;
    f.enqueue(vec![leaf("http://a.example/page")])?;
    let first = visit(&f, VisitKind::Changed, "\"v1\"");
    assert!(first.revisit.is_none(), "the first visit is no revisit");
    assert!(take(&f).is_none(), "not due yet");
    set_clock(1_000_000 + 35);
    assert!(
        take(&f).is_none(),
        "not before the interval less its jitter"
    );
    set_clock(1_000_000 + 45);
    let again = take(&f).expect("due after the interval and its jitter");
    assert_eq!(again.url, first.url);
    assert_eq!(again.depth, 1);
    let last = again
        .revisit
        .clone()
        .expect("a revisit carries its last visit");
    assert_eq!(last.validators.etag.as_deref(), Some("\"v1\""));
    assert_eq!(last.content_hash.as_deref(), Some("h"));
    assert_eq!(f.in_flight(), 1);
    // Interrupted (a shutdown): back in the revisit queue, handed out again.
    f.untake(again);
    let again = take(&f).expect("an untaken revisit comes back");
    assert!(again.revisit.is_some());
    f.note_visit(
        &again.url,
        note(VisitKind::Unchanged, "\"v1\"", "h", again.url.as_str()),
    );
    f.mark_done(std::slice::from_ref(&again.url), clock())?;
    drop(f);
    // The schedule survives a restart: unchanged, the base doubled to 80 s (72–88 s).
    let f = Frontier::open(&path, limits())?;
    set_clock(1_000_045 + 70);
    assert!(take(&f).is_none(), "an unchanged page waits longer");
    set_clock(1_000_045 + 90);
    let third = take(&f).expect("due after the doubled interval");
    assert_eq!(third.url, first.url);
    // Changed now: the base halves back to 40 s.
    f.note_visit(
        &third.url,
        note(VisitKind::Changed, "\"v2\"", "h2", third.url.as_str()),
    );
    f.mark_done(std::slice::from_ref(&third.url), clock())?;
    set_clock(clock() + 45);
    let fourth = take(&f).expect("a changed page comes back sooner");
    assert_eq!(
        fourth.revisit.unwrap().validators.etag.as_deref(),
        Some("\"v2\"")
    );
    Ok(())
}

#[test]
fn revisits_and_discovery_take_turns_on_a_host() -> Result<()> {
    set_clock(2_000_000);
    let dir = tempfile::tempdir()?;
    let f = Frontier::open(&dir.path().join("crawl.redb"), limits())?;
    // More of each than a ready queue holds: the store refills both in turn.
    let n = READY_PER_SITE + 8;
    let old: Vec<Seed> = (0..n)
        .map(|i| leaf(&format!("http://a.example/old{i}")))
        .collect();
    f.enqueue(old)?;
    for _ in 0..n {
        visit(&f, VisitKind::Changed, "e");
    }
    let new: Vec<Seed> = (0..n)
        .map(|i| leaf(&format!("http://a.example/new{i}")))
        .collect();
    f.enqueue(new)?;
    set_clock(2_000_000 + 100);
    let kinds: Vec<bool> = std::iter::from_fn(|| take(&f))
        .take(4 * n)
        .map(|j| j.revisit.is_some())
        .collect();
    assert_eq!(kinds.len(), 2 * n, "every revisit and every new page");
    assert!(
        kinds.windows(2).all(|w| w[0] != w[1]),
        "one of each in turn while both wait: {kinds:?}"
    );
    assert_eq!(kinds.iter().filter(|r| **r).count(), n);
    assert_eq!(f.revisits_due(), 0, "every due revisit was handed out");
    Ok(())
}

#[test]
fn a_site_not_crawled_here_is_not_revisited_until_released() -> Result<()> {
    set_clock(3_000_000);
    let dir = tempfile::tempdir()?;
    let f = Frontier::open(&dir.path().join("crawl.redb"), limits())?;
    // A replica's URL: marked done without being fetched here.
    let replica = url("http://b.example/doc");
    f.mark_done(std::slice::from_ref(&replica), clock())?;
    f.gate_sites();
    set_clock(3_000_000 + 2_000);
    assert!(
        take(&f).is_none(),
        "a site that is not released stays alone"
    );
    f.resume_site("b.example");
    let job = take(&f).expect("released: its revisit is due");
    assert_eq!(job.url, replica);
    let scope = job
        .scope
        .expect("a replica's URL follows its own site only");
    assert_eq!(scope.hosts, ["b.example"]);
    Ok(())
}

#[test]
fn a_store_from_before_revisits_gets_a_schedule_for_every_done_url() -> Result<()> {
    set_clock(4_000_000);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("crawl.redb");
    {
        let f = Frontier::open(&path, limits())?;
        f.enqueue(vec![leaf("http://c.example/1"), leaf("http://c.example/2")])?;
        let jobs: Vec<NormalizedUrl> = std::iter::from_fn(|| take(&f)).map(|j| j.url).collect();
        f.mark_done(&jobs, clock())?;
    }
    {
        // What an older version left: done URLs, no schedule.
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        assert!(txn.delete_table(store::REVISITS).unwrap());
        assert!(txn.delete_table(store::DUE).unwrap());
        txn.commit().unwrap();
    }
    let f = Frontier::open(&path, limits())?;
    assert!(take(&f).is_none());
    set_clock(4_000_000 + 1_000);
    let mut due: Vec<String> = std::iter::from_fn(|| take(&f))
        .map(|j| j.url.to_string())
        .collect();
    due.sort();
    assert_eq!(due, ["http://c.example/1", "http://c.example/2"]);
    Ok(())
}

#[test]
fn a_hint_brings_a_revisit_forward() -> Result<()> {
    set_clock(5_000_000);
    let dir = tempfile::tempdir()?;
    let f = Frontier::open(&dir.path().join("crawl.redb"), limits())?;
    f.enqueue(vec![leaf("http://d.example/page")])?;
    let job = visit(&f, VisitKind::Unchanged, "e");
    set_clock(5_000_000 + 5);
    assert!(take(&f).is_none(), "not due for another 30 s or so");
    assert_eq!(
        f.expedite(&[job.url.clone(), url("http://d.example/never")], clock())?,
        1
    );
    let again = take(&f).expect("due now");
    assert_eq!(again.url, job.url);
    assert!(again.revisit.is_some());
    Ok(())
}

#[test]
fn a_sitemap_lastmod_after_the_fetch_brings_the_revisit_forward() -> Result<()> {
    set_clock(6_000_000);
    let dir = tempfile::tempdir()?;
    let f = Frontier::open(&dir.path().join("crawl.redb"), limits())?;
    f.enqueue(vec![leaf("http://e.example/a"), leaf("http://e.example/b")])?;
    visit(&f, VisitKind::Changed, "e");
    visit(&f, VisitKind::Changed, "e");
    set_clock(6_000_000 + 5);
    let hints = [
        // Changed after its fetch (a time ahead counts as now).
        (url("http://e.example/a"), 6_000_000 + 3_600),
        // Changed before it: nothing new since.
        (url("http://e.example/b"), 5_000_000),
        // Not crawled: left alone (the sitemap enqueues it).
        (url("http://e.example/c"), 6_000_000 + 1),
    ];
    assert_eq!(f.changed_since_fetch(&hints)?, 1);
    let job = take(&f).expect("brought forward");
    assert_eq!(job.url, url("http://e.example/a"));
    assert!(take(&f).is_none());
    Ok(())
}

#[test]
fn a_hub_stays_a_hub_through_a_304() -> Result<()> {
    set_clock(7_000_000);
    let dir = tempfile::tempdir()?;
    let f = Frontier::open(&dir.path().join("crawl.redb"), limits())?;
    f.enqueue(vec![leaf("http://h.example/hub")])?;
    let job = take(&f).expect("a job");
    // A hub: half the base interval of 40 s.
    let hub_note = VisitNote {
        hub: Some(true),
        ..note(VisitKind::Changed, "e", "h", job.url.as_str())
    };
    f.note_visit(&job.url, hub_note);
    f.mark_done(std::slice::from_ref(&job.url), clock())?;
    set_clock(7_000_000 + 23);
    let again = take(&f).expect("a hub comes after 18-22 s");
    // A 304 says nothing of the links: still a hub, base doubled to 80 s, due after 36-44 s
    // (a leaf would wait 72-88 s).
    let not_modified = VisitNote {
        hub: None,
        ..note(VisitKind::Unchanged, "e", "h", again.url.as_str())
    };
    f.note_visit(&again.url, not_modified);
    f.mark_done(std::slice::from_ref(&again.url), clock())?;
    set_clock(clock() + 45);
    assert!(take(&f).is_some(), "scheduled as the hub it is");
    Ok(())
}
