//! Tests of the frontier on a real store in a temporary directory.

use super::*;
use crate::normalize::normalize;
use std::collections::HashSet;

/// The frontier's clock in these tests: far less than a revisit interval after the fetch
/// times they mark (so nothing comes due unless a test says so).
fn fixed_now() -> i64 {
    1_000
}

fn limits() -> FrontierLimits {
    FrontierLimits {
        max_depth: DEFAULT_MAX_DEPTH,
        max_pages_per_site: DEFAULT_MAX_PAGES_PER_SITE,
        revisit: RevisitPolicy::default(),
        now: fixed_now,
    }
}

/// A frontier on a store in a fresh temporary directory (kept alive by the first value).
fn open_temp() -> Result<(tempfile::TempDir, Frontier)> {
    let dir = tempfile::tempdir()?;
    let f = Frontier::open(&dir.path().join("crawl.redb"), limits())?;
    Ok((dir, f))
}

fn url(s: &str) -> NormalizedUrl {
    normalize(s, None).unwrap()
}

fn seed(s: &str) -> Seed {
    Seed::new(url(s))
}

fn take(f: &Frontier) -> Option<Job> {
    match f.next_job(|_| Ok::<_, HostBusy>(())).unwrap() {
        NextJob::Job(job, ()) => Some(job),
        _ => None,
    }
}

fn take_all(f: &Frontier) -> Vec<Job> {
    std::iter::from_fn(|| take(f)).take(10_000).collect()
}

#[test]
fn queued_sites_lists_each_site_with_waiting_urls_once() -> Result<()> {
    let (_dir, f) = open_temp()?;
    assert!(f.queued_sites()?.is_empty());
    f.enqueue(vec![
        seed("http://b.example/1"),
        seed("http://a.example/1"),
        seed("http://a.example/2"),
        seed("http://a.example:8080/1"),
    ])?;
    assert_eq!(
        f.queued_sites()?,
        vec!["a.example", "a.example:8080", "b.example"]
    );
    f.forget_site("a.example")?;
    assert_eq!(f.queued_sites()?, vec!["a.example:8080", "b.example"]);
    Ok(())
}

#[test]
fn enqueue_dedups_and_enforces_limits() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let f = Frontier::open(
        &dir.path().join("crawl.redb"),
        FrontierLimits {
            max_depth: 2,
            max_pages_per_site: 3,
            ..limits()
        },
    )?;
    let report = f.enqueue(vec![
        seed("http://a.example/1"),
        seed("http://a.example/1"),
        Seed {
            url: url("http://a.example/deep"),
            depth: 3,
            anchor: None,
            scope: None,
        },
        seed("http://a.example/x/y/x/y/x/y"),
        seed(&format!("http://a.example/{}", "d/".repeat(40))),
        seed("http://a.example/2"),
        seed("http://a.example/3"),
        seed("http://a.example/4"),
        seed("http://b.example/1"),
    ])?;
    assert_eq!(report.accepted, 4);
    let reasons: Vec<(String, RefuseReason)> = report
        .refused
        .iter()
        .map(|r| (r.url.to_string(), r.reason))
        .collect();
    assert_eq!(
        reasons,
        vec![
            ("http://a.example/1".into(), RefuseReason::AlreadySeen),
            ("http://a.example/deep".into(), RefuseReason::TooDeep),
            (
                "http://a.example/x/y/x/y/x/y".into(),
                RefuseReason::PathTrap
            ),
            (
                format!("http://a.example/{}", "d/".repeat(40)),
                RefuseReason::PathTrap
            ),
            ("http://a.example/4".into(), RefuseReason::SiteLimit),
        ]
    );
    assert_eq!(f.frontier_size(), 4);
    let again = f.enqueue(vec![seed("http://a.example/2")])?;
    assert_eq!(again.accepted, 0);
    assert_eq!(again.refused[0].reason, RefuseReason::AlreadySeen);
    Ok(())
}

#[test]
fn state_survives_reopen() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("crawl.redb");
    {
        let f = Frontier::open(&path, limits())?;
        f.enqueue(vec![
            seed("http://a.example/queued"),
            seed("http://a.example/inflight"),
            seed("http://a.example/done"),
        ])?;
        let jobs = take_all(&f);
        assert_eq!(jobs.len(), 3);
        assert_eq!(f.in_flight(), 3);
        assert_eq!(f.frontier_size(), 0);
        // One finishes, one stays in flight (lost with the crash), one goes back.
        f.mark_done(&[url("http://a.example/done")], 42)?;
        let queued = jobs
            .into_iter()
            .find(|j| j.url.as_str() == "http://a.example/queued")
            .unwrap();
        f.untake(queued);
        assert_eq!(f.in_flight(), 1);
        assert_eq!(f.frontier_size(), 1);
    }
    let f = Frontier::open(&path, limits())?;
    assert_eq!(f.frontier_size(), 2);
    assert_eq!(f.in_flight(), 0);
    assert!(f.is_done(&url("http://a.example/done"))?);
    let mut urls: Vec<String> = take_all(&f)
        .into_iter()
        .map(|j| j.url.to_string())
        .collect();
    urls.sort();
    assert_eq!(
        urls,
        vec!["http://a.example/inflight", "http://a.example/queued"]
    );
    // Done and queued URLs are still deduplicated.
    let report = f.enqueue(vec![
        seed("http://a.example/done"),
        seed("http://a.example/queued"),
    ])?;
    assert_eq!(report.accepted, 0);
    Ok(())
}

#[test]
fn ready_queue_is_bounded_and_refilled_from_the_store() -> Result<()> {
    let (_dir, f) = open_temp()?;
    let seeds: Vec<Seed> = (0..200)
        .map(|i| seed(&format!("http://a.example/p{i}")))
        .collect();
    assert_eq!(f.enqueue(seeds)?.accepted, 200);
    assert!(f.state_for_test().sites["a.example"].ready.len() <= READY_PER_SITE);
    let jobs = take_all(&f);
    assert_eq!(jobs.len(), 200);
    let distinct: HashSet<String> = jobs.iter().map(|j| j.url.to_string()).collect();
    assert_eq!(distinct.len(), 200);
    let urls: Vec<NormalizedUrl> = jobs.into_iter().map(|j| j.url).collect();
    f.mark_done(&urls, 1)?;
    assert_eq!(f.frontier_size(), 0);
    assert_eq!(f.in_flight(), 0);
    assert!(matches!(
        f.next_job(|_| Ok::<_, HostBusy>(()))?,
        NextJob::Empty
    ));
    Ok(())
}

#[test]
fn shallow_urls_come_first_and_sites_alternate() -> Result<()> {
    let (dir, f) = open_temp()?;
    f.enqueue(vec![
        Seed {
            url: url("http://a.example/deep"),
            depth: 5,
            anchor: None,
            scope: None,
        },
        seed("http://b.example/"),
    ])?;
    // Reopen so the order comes from the store.
    drop(f);
    let f = Frontier::open(&dir.path().join("crawl.redb"), limits())?;
    f.enqueue(vec![seed("http://a.example/top")])?;
    let order: Vec<String> = take_all(&f)
        .into_iter()
        .map(|j| j.url.to_string())
        .collect();
    assert_eq!(order.len(), 3);
    assert_eq!(order[0], "http://a.example/top");
    assert_eq!(order[1], "http://b.example/");
    Ok(())
}

#[test]
fn busy_hosts_are_skipped_with_the_shortest_wait() -> Result<()> {
    let (_dir, f) = open_temp()?;
    f.enqueue(vec![seed("http://a.example/"), seed("http://b.example/")])?;
    let next = f.next_job(|site| {
        Err::<(), _>(if site == "a.example" {
            HostBusy::Wait(Duration::from_secs(3))
        } else {
            HostBusy::Wait(Duration::from_secs(1))
        })
    })?;
    assert!(matches!(next, NextJob::Wait(Some(d)) if d == Duration::from_secs(1)));
    let next = f.next_job(|site| {
        if site == "b.example" {
            Ok(())
        } else {
            Err(HostBusy::InFlight)
        }
    })?;
    match next {
        NextJob::Job(job, ()) => assert_eq!(job.url.as_str(), "http://b.example/"),
        other => panic!("{other:?}"),
    }
    Ok(())
}

#[test]
fn aliases_become_done_with_their_job() -> Result<()> {
    let (_dir, f) = open_temp()?;
    f.enqueue(vec![
        seed("http://a.example/old"),
        seed("http://a.example/new"),
        seed("http://a.example/redirecting"),
    ])?;
    let mut jobs = take_all(&f);
    assert_eq!(jobs.len(), 3);
    jobs.sort_by(|a, b| a.url.cmp(&b.url));
    let redirecting = jobs.pop().unwrap();
    let old = jobs.pop().unwrap();
    let new = jobs.pop().unwrap();
    f.untake(old);
    assert_eq!(f.frontier_size(), 1);
    // `new` is in flight: claiming it fails; `old` is queued: claiming works.
    assert!(!f.claim_alias(&redirecting.url, &new.url, false)?);
    assert!(f.claim_alias(&redirecting.url, &url("http://a.example/old"), false)?);
    assert_eq!(f.frontier_size(), 0);
    assert!(take(&f).is_none(), "a claimed alias is not handed out");
    f.mark_done(std::slice::from_ref(&redirecting.url), 1)?;
    assert!(f.is_done(&url("http://a.example/old"))?);
    assert_eq!(f.in_flight(), 1);
    f.mark_done(&[new.url], 1)?;
    assert_eq!(f.in_flight(), 0);
    assert_eq!(f.frontier_size(), 0);
    Ok(())
}

#[test]
fn identical_content_is_reported_once() -> Result<()> {
    let (dir, f) = open_temp()?;
    f.enqueue(vec![seed("http://a.example/1"), seed("http://a.example/2")])?;
    let a = take(&f).unwrap();
    let b = take(&f).unwrap();
    assert_eq!(f.check_content_hash(&a.url, "h")?, None);
    assert_eq!(f.check_content_hash(&b.url, "h")?, Some(a.url.to_string()));
    f.mark_done(&[a.url.clone(), b.url.clone()], 1)?;
    // After reopening, the stored hash still points at the first page.
    drop(f);
    let f = Frontier::open(&dir.path().join("crawl.redb"), limits())?;
    f.enqueue(vec![seed("http://a.example/3")])?;
    let c = take(&f).unwrap();
    assert_eq!(f.check_content_hash(&c.url, "h")?, Some(a.url.to_string()));
    Ok(())
}

#[test]
fn anchors_accumulate_on_queued_urls() -> Result<()> {
    let (dir, f) = open_temp()?;
    let with = |a: &str| Seed {
        url: url("http://a.example/"),
        depth: 1,
        anchor: Some(a.to_owned()),
        scope: None,
    };
    f.enqueue(vec![with("first  anchor")])?;
    f.enqueue(vec![with("second"), with("first anchor")])?;
    drop(f);
    let f = Frontier::open(&dir.path().join("crawl.redb"), limits())?;
    let job = take(&f).unwrap();
    assert_eq!(job.anchors, vec!["first anchor", "second"]);
    Ok(())
}

#[test]
fn site_state_export_import_and_forget() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let a = Frontier::open(&dir.path().join("a.redb"), limits())?;
    a.enqueue(vec![
        seed("http://s.example/1"),
        seed("http://s.example/2"),
        seed("http://other.example/"),
    ])?;
    a.mark_done(&[url("http://s.example/1")], 7)?;
    let exported = a.export_site("s.example")?;
    assert_eq!(exported.queued.len(), 1);
    assert_eq!(exported.queued[0].url.as_str(), "http://s.example/2");
    assert_eq!(exported.done.len(), 1);
    assert_eq!(exported.done[0].fetched_at, 7);
    let json = serde_json::to_string(&exported)?;
    let back: SiteState = serde_json::from_str(&json)?;

    let b = Frontier::open(&dir.path().join("b.redb"), limits())?;
    assert_eq!(b.import_site(back)?, 1);
    assert_eq!(b.frontier_size(), 1);
    assert!(b.is_done(&url("http://s.example/1"))?);
    assert_eq!(take(&b).unwrap().url.as_str(), "http://s.example/2");

    a.forget_site("s.example")?;
    assert_eq!(a.frontier_size(), 1);
    let after = a.export_site("s.example")?;
    assert!(after.queued.is_empty(), "the queue goes with the crawl");
    assert_eq!(after.done.len(), 1, "what was fetched stays done");
    assert_eq!(take(&a).unwrap().url.as_str(), "http://other.example/");
    // Forgotten queued URLs can be queued again; fetched ones are never fetched twice.
    assert_eq!(a.enqueue(vec![seed("http://s.example/2")])?.accepted, 1);
    assert_eq!(a.enqueue(vec![seed("http://s.example/1")])?.accepted, 0);
    Ok(())
}

#[test]
fn the_state_lock_is_free_while_the_store_commits() -> Result<()> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (_dir, f) = open_temp()?;
    let f = Arc::new(f);
    f.enqueue(vec![seed("http://a.example/1"), seed("http://a.example/2")])?;
    let job = take(&f).unwrap();
    let commits = Arc::new(AtomicUsize::new(0));
    let hook: store::CommitHook = {
        let (f, commits) = (f.clone(), commits.clone());
        Arc::new(move || {
            // What async code calls, from another thread, while this commit runs.
            let probe = f.clone();
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = (probe.frontier_size(), probe.in_flight());
                let _ = probe.is_crawlable("a.example");
                let _ = probe.site_in_flight("a.example");
                probe.pause_site("c.example");
                probe.resume_site("c.example");
                tx.send(()).ok();
            });
            // A hang, not a timing assertion: the probe takes microseconds when free.
            rx.recv_timeout(Duration::from_secs(60))
                .expect("the in-memory state stayed locked during a commit");
            commits.fetch_add(1, Ordering::SeqCst);
        })
    };
    f.store.set_commit_hook(Some(hook));
    f.enqueue(vec![seed("http://a.example/3")])?;
    f.mark_done(std::slice::from_ref(&job.url), 1)?;
    f.import_site(SiteState::empty("a.example"))?;
    f.forget_site("b.example")?;
    f.store.set_commit_hook(None);
    assert_eq!(commits.load(Ordering::SeqCst), 4);
    assert!(f.is_done(&job.url)?);
    assert_eq!(f.frontier_size(), 2);
    Ok(())
}

#[test]
fn an_untake_during_a_commit_is_kept_consistent() -> Result<()> {
    use std::sync::{Arc, Mutex};
    // The node marks a URL done while the crawl loop puts the same job back (shutdown):
    // whichever order the two end in, the URL ends done and is never handed out again.
    let (_dir, f) = open_temp()?;
    let f = Arc::new(f);
    f.enqueue(vec![seed("http://a.example/1")])?;
    let job = take(&f).unwrap();
    let pending = Arc::new(Mutex::new(Some(job.clone())));
    let hook: store::CommitHook = {
        let (f, pending) = (f.clone(), pending.clone());
        Arc::new(move || {
            if let Some(job) = pending.lock().unwrap().take() {
                f.untake(job);
            }
        })
    };
    f.store.set_commit_hook(Some(hook));
    f.mark_done(std::slice::from_ref(&job.url), 1)?;
    f.store.set_commit_hook(None);
    assert!(f.is_done(&job.url)?);
    assert_eq!(f.in_flight(), 0);
    assert_eq!(f.frontier_size(), 0);
    assert!(take(&f).is_none(), "a done URL was handed out again");
    Ok(())
}

/// A queued URL keeps its crawl scope in the store, across a restart and through a site's
/// export and import (a hand-over to another peer); an imported URL whose scope is over its
/// bounds is dropped rather than crawled without a scope.
#[test]
fn a_queued_url_keeps_its_scope_through_restart_export_and_import() -> Result<()> {
    let scope = crate::Scope {
        hosts: vec!["s.example".into()],
        max_depth: Some(2),
        ..crate::Scope::default()
    };
    let (dir, f) = open_temp()?;
    f.enqueue(vec![Seed {
        scope: Some(scope.clone()),
        ..seed("http://s.example/a")
    }])?;
    drop(f);
    let f = Frontier::open(&dir.path().join("crawl.redb"), limits())?;
    let mut state = f.export_site("s.example")?;
    assert_eq!(state.queued[0].scope.as_ref(), Some(&scope));
    state.queued.push(QueuedUrl {
        url: url("http://s.example/bad"),
        depth: 1,
        anchors: Vec::new(),
        scope: Some(crate::Scope {
            deny: vec!["(".into()],
            ..crate::Scope::default()
        }),
    });
    let (_other_dir, other) = open_temp()?;
    assert_eq!(
        other.import_site(state)?,
        1,
        "the URL with a bad scope is dropped"
    );
    let job = take(&other).expect("the imported URL is queued");
    assert_eq!(job.url, url("http://s.example/a"));
    assert_eq!(job.scope, Some(scope));
    Ok(())
}
