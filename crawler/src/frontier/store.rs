//! The frontier's redb store at `<data_dir>/crawl.redb`: queued URLs, done URLs,
//! per-site counts and content hashes. Every method is blocking I/O and takes only the
//! store's own [`Reopening`] lock for one operation: the frontier calls it from blocking
//! threads only, with its writer lock held where the in-memory state must agree with what
//! is read.

use std::collections::HashSet;
use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};
use url::Url;

use super::revisit::{LastVisit, RevisitPolicy, VisitKind};
use super::state::{HashUrl, SiteUrl, Visited};
use super::traps::{clean_anchor, refuse_reason};
use super::{
    DoneUrl, EnqueueReport, FrontierLimits, Job, MAX_ANCHORS_PER_URL, QueuedUrl, RefuseReason,
    Refused, Seed, SiteState,
};
use crate::error::Result;
use crate::normalize::NormalizedUrl;
use crate::reopen::Reopening;
use crate::scope::Scope;

/// (site, depth, url) -> [`QueueRecord`] as JSON. Ordered by depth within a site, so a
/// site is crawled breadth first.
const QUEUE: TableDefinition<(&str, u32, &str), &[u8]> = TableDefinition::new("queue");
/// (site, url) -> depth: the index of `QUEUE` by URL.
const QUEUED: TableDefinition<(&str, &str), u32> = TableDefinition::new("queued");
/// (site, url) -> unix seconds when it was fetched (or given up).
const DONE: TableDefinition<(&str, &str), i64> = TableDefinition::new("done");
/// site -> URLs ever accepted for the site (queued + done).
const SITE_PAGES: TableDefinition<&str, u64> = TableDefinition::new("site_pages");
/// content hash -> URL of the page that has this content.
const HASHES: TableDefinition<&str, &str> = TableDefinition::new("content_hashes");
/// (site, url) -> [`RevisitRecord`] as JSON: when and how a done URL is visited again.
pub(super) const REVISITS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("revisits");
/// (site, unix seconds of the next visit, url): the revisit schedule, by site and time.
pub(super) const DUE: TableDefinition<(&str, i64, &str), ()> = TableDefinition::new("revisits_due");

/// Upper bound for URL keys in range scans: normalized URLs are ASCII below 0x7f.
const URL_KEY_MAX: &str = "\u{7f}";

#[derive(Debug, Serialize, Deserialize)]
struct QueueRecord {
    anchors: Vec<String>,
    enqueued_at: i64,
    /// Absent in records written before scopes existed: unrestricted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope: Option<Scope>,
}

/// The revisit schedule of a done URL.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RevisitRecord {
    /// Unix seconds of the next visit (its `DUE` key).
    next_at: i64,
    /// The base interval, seconds ([`RevisitPolicy::next_base`]).
    interval: u64,
    depth: u32,
    #[serde(default)]
    hub: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope: Option<Scope>,
    #[serde(default)]
    last: LastVisit,
    /// Visits made, and how many found a change.
    #[serde(default)]
    visits: u32,
    #[serde(default)]
    changes: u32,
}

/// What [`Store::mark_done`] changed.
pub(super) struct MarkedDone {
    /// Targets that were queued (now dequeued).
    pub dequeued: Vec<SiteUrl>,
    /// (site, next visit) of each schedule written.
    pub scheduled: Vec<(String, i64)>,
}

/// What [`Store::import_site`] changed.
pub(super) struct Imported {
    pub newly_queued: u64,
    /// Queued URLs now done.
    pub dequeued: Vec<String>,
    /// The earliest next visit scheduled for the newly done URLs.
    pub scheduled: Option<i64>,
}

/// The due revisits of a site ([`Store::load_due`]).
pub(super) struct Due {
    pub jobs: Vec<Job>,
    /// Revisits due and not taken, loaded or not, counted up to [`MAX_DUE_COUNT`].
    pub count: u64,
    /// Due revisits not loaded (beyond the limit).
    pub more: bool,
    /// The first revisit due later.
    pub next: Option<i64>,
}

/// Due entries counted per load at most.
const MAX_DUE_COUNT: u64 = 100_000;

/// A new schedule (a URL done for the first time, or found without one): written, with
/// its `DUE` entry; returns the next visit.
#[allow(clippy::too_many_arguments)]
fn schedule_new(
    revisits: &mut redb::Table<(&str, &str), &[u8]>,
    due: &mut redb::Table<(&str, i64, &str), ()>,
    site: &str,
    url: &str,
    depth: u32,
    scope: Option<Scope>,
    fetched_at: i64,
    policy: RevisitPolicy,
) -> Result<i64> {
    let interval = policy.initial();
    let delay = policy.delay(interval, VisitKind::Changed, depth, false, url, fetched_at);
    let record = RevisitRecord {
        next_at: fetched_at.saturating_add(delay as i64),
        interval,
        depth,
        hub: false,
        scope,
        last: LastVisit::default(),
        visits: 0,
        changes: 0,
    };
    revisits.insert((site, url), serde_json::to_vec(&record)?.as_slice())?;
    due.insert((site, record.next_at, url), ())?;
    Ok(record.next_at)
}

fn stored_url(s: &str) -> Option<NormalizedUrl> {
    Url::parse(s).ok().map(NormalizedUrl::from_stored)
}

/// What the store knows of one URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct UrlStatus {
    pub done: bool,
    pub queued: bool,
}

/// What the store holds at open.
pub(super) struct Opened {
    pub store: Store,
    /// Entries of the QUEUED table.
    pub queued_total: u64,
    /// Sites with queued URLs.
    pub sites: Vec<String>,
    /// Sites with revisits scheduled, with the earliest.
    pub revisits: Vec<(String, i64)>,
}

/// Test builds only: called right before every write transaction commits.
#[cfg(test)]
pub(super) type CommitHook = std::sync::Arc<dyn Fn() + Send + Sync>;

pub(super) struct Store {
    /// Reopened after a failed operation: a full disk fails the store only while it is full.
    db: Reopening,
    #[cfg(test)]
    commit_hook: std::sync::Mutex<Option<CommitHook>>,
}

/// Create the tables (at open and after every reopen).
fn init(db: &Database) -> std::result::Result<(), redb::Error> {
    let txn = db.begin_write()?;
    {
        txn.open_table(QUEUE)?;
        txn.open_table(QUEUED)?;
        txn.open_table(DONE)?;
        txn.open_table(SITE_PAGES)?;
        txn.open_table(HASHES)?;
        txn.open_table(REVISITS)?;
        txn.open_table(DUE)?;
    }
    txn.commit()?;
    Ok(())
}

impl Store {
    /// Opens (or creates) the store at `path` and lists the sites with queued URLs and
    /// with revisits. A store written before revisits existed gets a schedule for every done
    /// URL.
    pub fn open(path: &Path, policy: RevisitPolicy) -> Result<Opened> {
        let store = Store {
            db: Reopening::create(path, init)?,
            #[cfg(test)]
            commit_hook: std::sync::Mutex::new(None),
        };
        let queued_total = store
            .db
            .run(|db| Ok::<_, crate::Error>(db.begin_read()?.open_table(QUEUED)?.len()?))?;
        store.schedule_unscheduled(policy)?;
        let sites = store.queued_sites()?;
        let revisits = store.revisit_sites()?;
        Ok(Opened {
            store,
            queued_total,
            sites,
            revisits,
        })
    }

    /// Schedules every done URL when no URL has a schedule (a store of an older version).
    fn schedule_unscheduled(&self, policy: RevisitPolicy) -> Result<()> {
        self.db.run(|db| {
            {
                let read = db.begin_read()?;
                if !read.open_table(REVISITS)?.is_empty()? || read.open_table(DONE)?.is_empty()? {
                    return Ok(());
                }
            }
            let txn = db.begin_write()?;
            let mut scheduled = 0u64;
            {
                let done = txn.open_table(DONE)?;
                let mut revisits = txn.open_table(REVISITS)?;
                let mut due = txn.open_table(DUE)?;
                for entry in done.iter()? {
                    let (key, value) = entry?;
                    let (site, url) = key.value();
                    let scope = Some(Scope {
                        hosts: vec![site.to_owned()],
                        ..Scope::default()
                    });
                    schedule_new(
                        &mut revisits,
                        &mut due,
                        site,
                        url,
                        1,
                        scope,
                        value.value(),
                        policy,
                    )?;
                    scheduled += 1;
                }
            }
            self.commit(txn)?;
            tracing::info!(
                urls = scheduled,
                "scheduled revisits of the URLs crawled before"
            );
            Ok(())
        })
    }

    /// Sites with revisits scheduled, each with its earliest.
    fn revisit_sites(&self) -> Result<Vec<(String, i64)>> {
        self.db.run(|db| {
            let read = db.begin_read()?;
            let table = read.open_table(DUE)?;
            let mut sites: Vec<(String, i64)> = Vec::new();
            let mut from = String::new();
            loop {
                let next = table
                    .range((from.as_str(), i64::MIN, "")..)?
                    .next()
                    .transpose()?
                    .map(|(k, _)| {
                        let (site, at, _) = k.value();
                        (site.to_owned(), at)
                    });
                match next {
                    Some((site, at)) if sites.last().is_none_or(|(s, _)| *s != site) => {
                        from = format!("{site}\u{0}");
                        sites.push((site, at));
                    }
                    _ => break,
                }
            }
            Ok(sites)
        })
    }

    /// The revisits of `site` due at `now` (up to `max`, not in `skip`), as jobs.
    pub fn load_due(
        &self,
        site: &str,
        now: i64,
        skip: &HashSet<String>,
        max: usize,
    ) -> Result<Due> {
        self.db.run(|db| {
            let read = db.begin_read()?;
            let due = read.open_table(DUE)?;
            let revisits = read.open_table(REVISITS)?;
            let mut out = Due {
                jobs: Vec::new(),
                count: 0,
                more: false,
                next: None,
            };
            for entry in due.range((site, i64::MIN, "")..=(site, now, URL_KEY_MAX))? {
                let (key, _) = entry?;
                let (_, _, url) = key.value();
                if skip.contains(url) {
                    continue;
                }
                out.count += 1;
                if out.count >= MAX_DUE_COUNT {
                    out.more = true;
                    break;
                }
                if out.jobs.len() >= max {
                    out.more = true;
                    continue;
                }
                let Some(normalized) = stored_url(url) else {
                    continue;
                };
                let Some(bytes) = revisits.get((site, url))?.map(|g| g.value().to_vec()) else {
                    continue;
                };
                let record: RevisitRecord = serde_json::from_slice(&bytes)?;
                out.jobs.push(Job {
                    url: normalized,
                    depth: record.depth,
                    anchors: Vec::new(),
                    scope: record.scope,
                    attempt: 0,
                    revisit: Some(Box::new(record.last)),
                });
            }
            out.next = due
                .range((site, now.saturating_add(1), "")..=(site, i64::MAX, URL_KEY_MAX))?
                .next()
                .transpose()?
                .map(|(k, _)| k.value().1);
            Ok(out)
        })
    }

    fn commit(&self, txn: redb::WriteTransaction) -> Result<()> {
        #[cfg(test)]
        if let Some(hook) = crate::util::lock(&self.commit_hook).clone() {
            hook();
        }
        txn.commit()?;
        Ok(())
    }

    #[cfg(test)]
    pub(super) fn set_commit_hook(&self, hook: Option<CommitHook>) {
        *crate::util::lock(&self.commit_hook) = hook;
    }

    /// Queues `seeds` in one transaction, refusing what [`RefuseReason`] lists; `taken`
    /// are URLs in flight (seen). Returns the report and the accepted jobs.
    pub fn enqueue(
        &self,
        seeds: Vec<Seed>,
        taken: &HashSet<String>,
        limits: FrontierLimits,
        now: i64,
    ) -> Result<(EnqueueReport, Vec<Job>)> {
        self.db.run(|db| {
            let mut report = EnqueueReport::default();
            let mut accepted: Vec<Job> = Vec::new();
            let txn = db.begin_write()?;
            {
                let mut queue = txn.open_table(QUEUE)?;
                let mut queued = txn.open_table(QUEUED)?;
                let done = txn.open_table(DONE)?;
                let mut site_pages = txn.open_table(SITE_PAGES)?;
                let mut batch: HashSet<String> = HashSet::new();
                for seed in seeds {
                    let url = seed.url.as_str().to_owned();
                    let site = seed.url.site();
                    let anchor = seed.anchor.as_deref().and_then(clean_anchor);
                    let refuse = |reason| Refused {
                        url: seed.url.clone(),
                        reason,
                    };
                    if let Some(reason) = refuse_reason(&seed, limits) {
                        report.refused.push(refuse(reason));
                        continue;
                    }
                    let existing_depth = queued
                        .get((site.as_str(), url.as_str()))?
                        .map(|g| g.value());
                    if let Some(depth) = existing_depth {
                        // Remember one more way to describe this page.
                        if let Some(anchor) = anchor {
                            let key = (site.as_str(), depth, url.as_str());
                            let record = queue.get(key)?.map(|g| g.value().to_vec());
                            if let Some(bytes) = record {
                                let mut record: QueueRecord = serde_json::from_slice(&bytes)?;
                                if record.anchors.len() < MAX_ANCHORS_PER_URL
                                    && !record.anchors.contains(&anchor)
                                {
                                    record.anchors.push(anchor);
                                    queue.insert(key, serde_json::to_vec(&record)?.as_slice())?;
                                }
                            }
                        }
                        report.refused.push(refuse(RefuseReason::AlreadySeen));
                        continue;
                    }
                    if batch.contains(&url)
                        || taken.contains(&url)
                        || done.get((site.as_str(), url.as_str()))?.is_some()
                    {
                        report.refused.push(refuse(RefuseReason::AlreadySeen));
                        continue;
                    }
                    let pages = site_pages.get(site.as_str())?.map_or(0, |g| g.value());
                    if pages >= limits.max_pages_per_site {
                        report.refused.push(refuse(RefuseReason::SiteLimit));
                        continue;
                    }
                    let record = QueueRecord {
                        anchors: anchor.into_iter().collect(),
                        enqueued_at: now,
                        scope: seed.scope,
                    };
                    queue.insert(
                        (site.as_str(), seed.depth, url.as_str()),
                        serde_json::to_vec(&record)?.as_slice(),
                    )?;
                    queued.insert((site.as_str(), url.as_str()), seed.depth)?;
                    site_pages.insert(site.as_str(), pages + 1)?;
                    batch.insert(url);
                    accepted.push(Job {
                        url: seed.url,
                        depth: seed.depth,
                        anchors: record.anchors,
                        scope: record.scope,
                        attempt: 0,
                        revisit: None,
                    });
                }
            }
            self.commit(txn)?;
            report.accepted = accepted.len();
            Ok((report, accepted))
        })
    }

    /// Up to `max` queued URLs of `site` not in `skip`, shallowest first; and whether the
    /// load stopped at `max` (more may wait).
    pub fn load_ready(
        &self,
        site: &str,
        skip: &HashSet<String>,
        max: usize,
    ) -> Result<(Vec<Job>, bool)> {
        self.db.run(|db| {
            let read = db.begin_read()?;
            let queue = read.open_table(QUEUE)?;
            let mut loaded = Vec::new();
            for entry in queue.range((site, 0u32, "")..=(site, u32::MAX, URL_KEY_MAX))? {
                let (key, value) = entry?;
                let (_, depth, url) = key.value();
                if skip.contains(url) {
                    continue;
                }
                let Some(normalized) = stored_url(url) else {
                    tracing::warn!(url, "unparseable url in frontier");
                    continue;
                };
                let record: QueueRecord = serde_json::from_slice(value.value())?;
                loaded.push(Job {
                    url: normalized,
                    depth,
                    anchors: record.anchors,
                    scope: record.scope,
                    attempt: 0,
                    revisit: None,
                });
                if loaded.len() >= max {
                    return Ok((loaded, true));
                }
            }
            Ok((loaded, false))
        })
    }

    /// Whether `url` is done, and whether it is queued.
    pub fn status(&self, url: &NormalizedUrl) -> Result<UrlStatus> {
        self.db.run(|db| {
            let read = db.begin_read()?;
            let site = url.site();
            let key = (site.as_str(), url.as_str());
            Ok(UrlStatus {
                done: read.open_table(DONE)?.get(key)?.is_some(),
                queued: read.open_table(QUEUED)?.get(key)?.is_some(),
            })
        })
    }

    /// The page stored for content `hash`, and whether it is done.
    pub fn hash_owner(&self, hash: &str) -> Result<Option<(String, bool)>> {
        self.db.run(|db| {
            let read = db.begin_read()?;
            let Some(other) = read
                .open_table(HASHES)?
                .get(hash)?
                .map(|g| g.value().to_owned())
            else {
                return Ok(None);
            };
            let other_site = stored_url(&other).map(|u| u.site()).unwrap_or_default();
            let done = read
                .open_table(DONE)?
                .get((other_site.as_str(), other.as_str()))?
                .is_some();
            Ok(Some((other, done)))
        })
    }

    /// Marks (site, url) `targets` done at `fetched_at`, stores (hash, url) `hashes` and
    /// the next visit of each of `visited`, in one transaction.
    pub fn mark_done(
        &self,
        targets: &[SiteUrl],
        hashes: &[HashUrl],
        visited: &[Visited],
        fetched_at: i64,
        policy: RevisitPolicy,
    ) -> Result<MarkedDone> {
        self.db.run(|db| {
            let txn = db.begin_write()?;
            let mut dequeued: Vec<SiteUrl> = Vec::new();
            let mut scheduled: Vec<(String, i64)> = Vec::new();
            {
                let mut queue = txn.open_table(QUEUE)?;
                let mut queued = txn.open_table(QUEUED)?;
                let mut done = txn.open_table(DONE)?;
                let mut hash_table = txn.open_table(HASHES)?;
                let mut revisits = txn.open_table(REVISITS)?;
                let mut due = txn.open_table(DUE)?;
                for (site, url) in targets {
                    let depth = queued
                        .remove((site.as_str(), url.as_str()))?
                        .map(|g| g.value());
                    if let Some(depth) = depth {
                        queue.remove((site.as_str(), depth, url.as_str()))?;
                        dequeued.push((site.clone(), url.clone()));
                    }
                    done.insert((site.as_str(), url.as_str()), fetched_at)?;
                }
                for v in visited {
                    let (site, url) = (v.site.as_str(), v.url.as_str());
                    let prev: Option<RevisitRecord> = match revisits.get((site, url))? {
                        Some(g) => serde_json::from_slice(g.value()).ok(),
                        None => None,
                    };
                    let Some(note) = &v.note else {
                        // Not fetched here: a schedule it has stays as it is.
                        if prev.is_none() {
                            let at = schedule_new(
                                &mut revisits,
                                &mut due,
                                site,
                                url,
                                v.depth,
                                v.scope.clone(),
                                fetched_at,
                                policy,
                            )?;
                            scheduled.push((v.site.clone(), at));
                        }
                        continue;
                    };
                    if let Some(p) = &prev {
                        due.remove((site, p.next_at, url))?;
                        // The old content is no longer this page's.
                        if let Some(old) = &p.last.content_hash
                            && note.last.content_hash.as_ref() != Some(old)
                        {
                            let mine = hash_table
                                .get(old.as_str())?
                                .is_some_and(|g| g.value() == url);
                            if mine {
                                hash_table.remove(old.as_str())?;
                            }
                        }
                    }
                    let interval = policy.next_base(prev.as_ref().map(|p| p.interval), note.kind);
                    let hub = note
                        .hub
                        .unwrap_or_else(|| prev.as_ref().is_some_and(|p| p.hub));
                    let delay = policy.delay(interval, note.kind, v.depth, hub, url, fetched_at);
                    let (visits, changes) = prev.as_ref().map_or((0, 0), |p| (p.visits, p.changes));
                    let record = RevisitRecord {
                        next_at: fetched_at.saturating_add(delay as i64),
                        interval,
                        depth: v.depth,
                        hub,
                        scope: v.scope.clone(),
                        last: note.last.clone(),
                        visits: visits.saturating_add(1),
                        changes: changes.saturating_add(u32::from(note.kind == VisitKind::Changed)),
                    };
                    revisits.insert((site, url), serde_json::to_vec(&record)?.as_slice())?;
                    due.insert((site, record.next_at, url), ())?;
                    scheduled.push((v.site.clone(), record.next_at));
                }
                for (hash, url) in hashes {
                    hash_table.insert(hash.as_str(), url.as_str())?;
                }
            }
            self.commit(txn)?;
            Ok(MarkedDone {
                dequeued,
                scheduled,
            })
        })
    }

    /// Of `hints` ((url, time it changed)), the URLs done here before that time.
    pub fn done_before(&self, hints: &[(NormalizedUrl, i64)]) -> Result<Vec<NormalizedUrl>> {
        self.db.run(|db| {
            let read = db.begin_read()?;
            let done = read.open_table(DONE)?;
            let mut out = Vec::new();
            for (url, changed) in hints {
                let site = url.site();
                let fetched = done.get((site.as_str(), url.as_str()))?.map(|g| g.value());
                if fetched.is_some_and(|f| f < *changed) {
                    out.push(url.clone());
                }
            }
            Ok(out)
        })
    }

    /// Brings the next visit of each of `urls` (done, with a schedule) forward to `at`
    /// when it lies later. Returns (site, at) of each schedule moved.
    pub fn expedite(&self, urls: &[NormalizedUrl], at: i64) -> Result<Vec<(String, i64)>> {
        self.db.run(|db| {
            let txn = db.begin_write()?;
            let mut moved = Vec::new();
            {
                let mut revisits = txn.open_table(REVISITS)?;
                let mut due = txn.open_table(DUE)?;
                for url in urls {
                    let site = url.site();
                    let key = (site.as_str(), url.as_str());
                    let Some(bytes) = revisits.get(key)?.map(|g| g.value().to_vec()) else {
                        continue;
                    };
                    let mut record: RevisitRecord = serde_json::from_slice(&bytes)?;
                    if record.next_at <= at {
                        continue;
                    }
                    due.remove((site.as_str(), record.next_at, url.as_str()))?;
                    record.next_at = at;
                    due.insert((site.as_str(), at, url.as_str()), ())?;
                    revisits.insert(key, serde_json::to_vec(&record)?.as_slice())?;
                    moved.push((site, at));
                }
            }
            self.commit(txn)?;
            Ok(moved)
        })
    }

    /// Whether `url` is done.
    pub fn is_done(&self, url: &NormalizedUrl) -> Result<bool> {
        Ok(self.status(url)?.done)
    }

    /// Sites with URLs waiting in the queue, in order.
    pub fn queued_sites(&self) -> Result<Vec<String>> {
        self.db.run(|db| {
            let read = db.begin_read()?;
            let table = read.open_table(QUEUE)?;
            let mut sites: Vec<String> = Vec::new();
            // Jump from site to site instead of walking every queued URL.
            let mut from = String::new();
            loop {
                let next = table
                    .range((from.as_str(), 0u32, "")..)?
                    .next()
                    .transpose()?
                    .map(|(k, _)| k.value().0.to_owned());
                match next {
                    Some(site) if sites.last() != Some(&site) => {
                        from = format!("{site}\u{0}");
                        sites.push(site);
                    }
                    _ => break,
                }
            }
            Ok(sites)
        })
    }

    /// The queued and done URLs of `site`.
    pub fn export_site(&self, site: &str) -> Result<SiteState> {
        self.db.run(|db| {
            let read = db.begin_read()?;
            let mut state = SiteState::empty(site);
            for entry in read
                .open_table(QUEUE)?
                .range((site, 0u32, "")..=(site, u32::MAX, URL_KEY_MAX))?
            {
                let (key, value) = entry?;
                let (_, depth, url) = key.value();
                let record: QueueRecord = serde_json::from_slice(value.value())?;
                if let Some(url) = stored_url(url) {
                    state.queued.push(QueuedUrl {
                        url,
                        depth,
                        anchors: record.anchors,
                        scope: record.scope,
                    });
                }
            }
            for entry in read
                .open_table(DONE)?
                .range((site, "")..(site, URL_KEY_MAX))?
            {
                let (key, value) = entry?;
                if let Some(url) = stored_url(key.value().1) {
                    state.done.push(DoneUrl {
                        url,
                        fetched_at: value.value(),
                    });
                }
            }
            Ok(state)
        })
    }

    /// Merges a site's state from another peer (one transaction): its done URLs become
    /// done here, its queued URLs are queued unless seen (`taken` are in flight here).
    /// Returns how many URLs were newly queued and the queued URLs now done.
    pub fn import_site(
        &self,
        site_state: &SiteState,
        taken: &HashSet<String>,
        now: i64,
        policy: RevisitPolicy,
    ) -> Result<Imported> {
        self.db.run(|db| {
            let site = site_state.site.as_str();
            let mut newly_queued = 0u64;
            let mut dequeued: Vec<String> = Vec::new();
            let mut scheduled: Option<i64> = None;
            let txn = db.begin_write()?;
            {
                let mut queue = txn.open_table(QUEUE)?;
                let mut queued = txn.open_table(QUEUED)?;
                let mut done = txn.open_table(DONE)?;
                let mut site_pages = txn.open_table(SITE_PAGES)?;
                let mut revisits = txn.open_table(REVISITS)?;
                let mut due = txn.open_table(DUE)?;
                for d in &site_state.done {
                    if d.url.site() != site {
                        continue;
                    }
                    let url = d.url.as_str();
                    if let Some(depth) = queued.remove((site, url))?.map(|g| g.value()) {
                        queue.remove((site, depth, url))?;
                        dequeued.push(url.to_owned());
                    }
                    if done.get((site, url))?.is_none() {
                        // Another peer's fetch: clamped to now, its revisit scheduled from it.
                        let fetched_at = d.fetched_at.min(now);
                        done.insert((site, url), fetched_at)?;
                        if revisits.get((site, url))?.is_none() {
                            let scope = Some(Scope {
                                hosts: vec![site.to_owned()],
                                ..Scope::default()
                            });
                            let at = schedule_new(
                                &mut revisits,
                                &mut due,
                                site,
                                url,
                                1,
                                scope,
                                fetched_at,
                                policy,
                            )?;
                            scheduled = Some(scheduled.map_or(at, |s| s.min(at)));
                        }
                    }
                }
                for q in &site_state.queued {
                    let url = q.url.as_str();
                    if q.url.site() != site
                        || taken.contains(url)
                        || queued.get((site, url))?.is_some()
                        || done.get((site, url))?.is_some()
                    {
                        continue;
                    }
                    // A state from another peer: its scope is stored as checked (normalized);
                    // a URL whose scope is over its bounds is dropped, never widened to
                    // "follow everything".
                    let scope = match &q.scope {
                        None => None,
                        Some(s) => match s.clone().checked() {
                            Ok(s) => Some(s),
                            Err(_) => continue,
                        },
                    };
                    let record = QueueRecord {
                        anchors: q
                            .anchors
                            .iter()
                            .take(MAX_ANCHORS_PER_URL)
                            .cloned()
                            .collect(),
                        enqueued_at: now,
                        scope,
                    };
                    queue.insert(
                        (site, q.depth, url),
                        serde_json::to_vec(&record)?.as_slice(),
                    )?;
                    queued.insert((site, url), q.depth)?;
                    newly_queued += 1;
                }
                let known = (site_state.queued.len() + site_state.done.len()) as u64;
                let pages = site_pages.get(site)?.map_or(0, |g| g.value());
                site_pages.insert(site, pages.max(known))?;
            }
            self.commit(txn)?;
            Ok(Imported {
                newly_queued,
                dequeued,
                scheduled,
            })
        })
    }

    /// Drops the queue of `site` and its page count (done URLs stay); returns how many
    /// queued URLs were dropped.
    pub fn forget_site(&self, site: &str) -> Result<u64> {
        self.db.run(|db| {
            let mut removed = 0u64;
            let txn = db.begin_write()?;
            {
                let mut queue = txn.open_table(QUEUE)?;
                let mut queued = txn.open_table(QUEUED)?;
                let mut site_pages = txn.open_table(SITE_PAGES)?;
                queue.retain_in((site, 0u32, "")..=(site, u32::MAX, URL_KEY_MAX), |_, _| {
                    false
                })?;
                queued.retain_in((site, "")..(site, URL_KEY_MAX), |_, _| {
                    removed += 1;
                    false
                })?;
                site_pages.remove(site)?;
            }
            self.commit(txn)?;
            Ok(removed)
        })
    }
}
