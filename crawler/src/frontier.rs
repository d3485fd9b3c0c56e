//! The persistent frontier and seen set, in redb at `<data_dir>/crawl.redb`.
//!
//! A URL is *queued* (stored), then *taken* by the crawl loop (in memory only: in
//! flight, then awaiting commit), then *done* (stored). Nothing about "taken" is
//! stored, so after a crash every URL that is not done is simply queued again.
//!
//! Memory stays bounded: per site only a small ready queue (at most
//! [`READY_PER_SITE`] URLs) is loaded; it is refilled from the store when it runs
//! empty. The sites with queued URLs are listed once at open by skipping through the
//! store's key space one site at a time.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::error::Result;
use crate::extract::MAX_ANCHOR_CHARS;
use crate::normalize::{MAX_URL_BYTES, NormalizedUrl};
use crate::politeness::HostBusy;

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

/// Upper bound for URL keys in range scans: normalized URLs are ASCII below 0x7f.
const URL_KEY_MAX: &str = "\u{7f}";

/// Default maximum link depth from a seed. Deeper pages are rarely worth indexing
/// and depth is the last defence against infinite URL spaces.
pub const DEFAULT_MAX_DEPTH: u32 = 16;

/// Default maximum URLs accepted per site, so one huge site cannot eat a peer.
pub const DEFAULT_MAX_PAGES_PER_SITE: u64 = 10_000;

/// URLs loaded in memory per site; the rest waits in the store.
pub const READY_PER_SITE: usize = 32;

/// Anchor texts remembered per queued URL (they are indexed with the page).
pub const MAX_ANCHORS_PER_URL: usize = 8;

/// Paths deeper than this are crawler traps (calendars, recursive relative links).
pub const MAX_PATH_SEGMENTS: usize = 32;

/// A path segment repeated this often (`/a/b/a/b/a/b`) marks a trap.
pub const MAX_SEGMENT_REPEATS: usize = 3;

/// A URL to crawl.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seed {
    /// The URL.
    pub url: NormalizedUrl,
    /// Links followed from a seed to reach it (0 for seeds).
    pub depth: u32,
    /// The anchor text of the link that led here, if any.
    pub anchor: Option<String>,
}

impl Seed {
    /// A seed at depth 0 with no anchor.
    pub fn new(url: NormalizedUrl) -> Seed {
        Seed {
            url,
            depth: 0,
            anchor: None,
        }
    }
}

/// Why [`enqueue`](crate::Crawler::enqueue) refused a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RefuseReason {
    /// Already queued, in flight or done.
    AlreadySeen,
    /// Deeper than the maximum depth.
    TooDeep,
    /// The site has reached its page limit.
    SiteLimit,
    /// The path looks like a crawler trap (too deep or repeating).
    PathTrap,
    /// Longer than the URL length cap.
    TooLong,
}

impl RefuseReason {
    /// snake_case label (API responses, metrics).
    pub fn as_str(&self) -> &'static str {
        match self {
            RefuseReason::AlreadySeen => "already_seen",
            RefuseReason::TooDeep => "too_deep",
            RefuseReason::SiteLimit => "site_limit",
            RefuseReason::PathTrap => "path_trap",
            RefuseReason::TooLong => "too_long",
        }
    }
}

impl std::fmt::Display for RefuseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One refused URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refused {
    /// The URL.
    pub url: NormalizedUrl,
    /// Why.
    pub reason: RefuseReason,
}

/// The result of an enqueue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnqueueReport {
    /// URLs newly queued.
    pub accepted: usize,
    /// URLs not queued, with the reason.
    pub refused: Vec<Refused>,
}

/// A queued URL of a [`SiteState`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedUrl {
    /// The URL.
    pub url: NormalizedUrl,
    /// Its depth.
    pub depth: u32,
    /// Anchor texts of links to it.
    pub anchors: Vec<String>,
}

/// A done URL of a [`SiteState`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoneUrl {
    /// The URL.
    pub url: NormalizedUrl,
    /// Unix seconds when it was fetched.
    pub fetched_at: i64,
}

/// The crawl state of one site, so another peer can continue its crawl.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteState {
    /// The site key (`host[:port]`).
    pub site: String,
    /// URLs still to crawl (including those in flight here).
    pub queued: Vec<QueuedUrl>,
    /// URLs crawled.
    pub done: Vec<DoneUrl>,
}

impl SiteState {
    /// A state with nothing queued or done.
    pub fn empty(site: &str) -> SiteState {
        SiteState {
            site: site.to_owned(),
            queued: Vec::new(),
            done: Vec::new(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct QueueRecord {
    anchors: Vec<String>,
    enqueued_at: i64,
}

/// A URL handed to the crawl loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Job {
    pub url: NormalizedUrl,
    pub depth: u32,
    pub anchors: Vec<String>,
    /// Fetch attempts already made (for retries).
    pub attempt: u32,
}

/// What [`Frontier::next_job`] found.
#[derive(Debug)]
pub(crate) enum NextJob<P> {
    /// A URL to fetch, with the host permit.
    Job(Job, P),
    /// Nothing ready: try again after this long, or when woken (`None`).
    Wait(Option<Duration>),
    /// Nothing queued at all.
    Empty,
}

#[derive(Debug, Default)]
struct SiteQueue {
    ready: VecDeque<Job>,
    /// The store may hold queued URLs of this site that are not in `ready`.
    more_in_store: bool,
}

#[derive(Debug)]
struct Taken {
    site: String,
    /// Whether the URL is in the QUEUED table (it is not for redirect targets).
    queued: bool,
    aliases: Vec<String>,
    content_hash: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    sites: HashMap<String, SiteQueue>,
    rotation: VecDeque<String>,
    /// Taken URLs (jobs and their aliases: redirect targets, canonical URLs).
    taken: HashMap<String, Taken>,
    /// alias -> the job URL it belongs to.
    alias_of: HashMap<String, String>,
    /// Entries of the QUEUED table.
    queued_total: u64,
    /// Entries of the QUEUED table that are taken.
    taken_queued: u64,
    /// Jobs taken (aliases not counted).
    jobs: u64,
    /// Sites whose queued URLs are not handed out (their crawl moves to another peer).
    paused: HashSet<String>,
    /// When set, only sites in `released` are crawled (a peer of a network first makes sure
    /// no other peer crawls a site, then releases it).
    gated: bool,
    /// Sites cleared for crawling while `gated`.
    released: HashSet<String>,
}

impl State {
    fn crawlable(&self, site: &str) -> bool {
        !self.paused.contains(site) && (!self.gated || self.released.contains(site))
    }
}

impl State {
    fn add_site(&mut self, site: &str) -> &mut SiteQueue {
        if !self.sites.contains_key(site) {
            self.rotation.push_back(site.to_owned());
        }
        self.sites.entry(site.to_owned()).or_default()
    }

    fn is_taken(&self, url: &str) -> bool {
        self.taken.contains_key(url) || self.alias_of.contains_key(url)
    }
}

/// Limits applied by [`Frontier::enqueue`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrontierLimits {
    pub max_depth: u32,
    pub max_pages_per_site: u64,
}

/// The persistent frontier. All methods block (redb I/O): call them from
/// `spawn_blocking` in async code.
pub(crate) struct Frontier {
    db: Database,
    limits: FrontierLimits,
    state: Mutex<State>,
}

impl std::fmt::Debug for Frontier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frontier")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn stored_url(s: &str) -> Option<NormalizedUrl> {
    Url::parse(s).ok().map(NormalizedUrl::from_stored)
}

/// Whether the path looks like an infinite URL space.
pub(crate) fn is_path_trap(url: &Url) -> bool {
    let segments: Vec<&str> = url.path().split('/').filter(|s| !s.is_empty()).collect();
    if segments.len() > MAX_PATH_SEGMENTS {
        return true;
    }
    let mut counts: HashMap<&str, usize> = HashMap::new();
    segments.iter().any(|s| {
        let c = counts.entry(s).or_default();
        *c += 1;
        *c >= MAX_SEGMENT_REPEATS
    })
}

fn clean_anchor(anchor: &str) -> Option<String> {
    let folded = anchor.split_whitespace().collect::<Vec<_>>().join(" ");
    if folded.is_empty() {
        return None;
    }
    Some(match folded.char_indices().nth(MAX_ANCHOR_CHARS) {
        Some((end, _)) => folded[..end].to_owned(),
        None => folded,
    })
}

impl Frontier {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: &Path, limits: FrontierLimits) -> Result<Frontier> {
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        {
            txn.open_table(QUEUE)?;
            txn.open_table(QUEUED)?;
            txn.open_table(DONE)?;
            txn.open_table(SITE_PAGES)?;
            txn.open_table(HASHES)?;
        }
        txn.commit()?;

        let mut state = State::default();
        let read = db.begin_read()?;
        let queued = read.open_table(QUEUED)?;
        state.queued_total = queued.len()?;
        // Skip-scan: one lookup per site with queued URLs.
        let mut from = String::new();
        loop {
            let next = queued.range((from.as_str(), "")..)?.next().transpose()?;
            let Some((key, _)) = next else { break };
            let site = key.value().0.to_owned();
            from = format!("{site}\0");
            state.add_site(&site).more_in_store = true;
        }
        drop(queued);
        drop(read);
        tracing::debug!(
            queued = state.queued_total,
            sites = state.sites.len(),
            "frontier opened"
        );
        Ok(Frontier {
            db,
            limits,
            state: Mutex::new(state),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queued URLs not taken by the crawl loop.
    pub fn frontier_size(&self) -> u64 {
        let s = self.state();
        s.queued_total.saturating_sub(s.taken_queued)
    }

    /// URLs taken by the crawl loop and not done yet.
    pub fn in_flight(&self) -> u64 {
        self.state().jobs
    }

    /// Queues new URLs in one transaction; see [`RefuseReason`] for what is refused.
    pub fn enqueue(&self, seeds: Vec<Seed>) -> Result<EnqueueReport> {
        let mut report = EnqueueReport::default();
        let mut accepted: Vec<Job> = Vec::new();
        let now = unix_now();
        let mut state = self.state();
        let txn = self.db.begin_write()?;
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
                if url.len() > MAX_URL_BYTES {
                    report.refused.push(refuse(RefuseReason::TooLong));
                    continue;
                }
                if seed.depth > self.limits.max_depth {
                    report.refused.push(refuse(RefuseReason::TooDeep));
                    continue;
                }
                if is_path_trap(seed.url.as_url()) {
                    report.refused.push(refuse(RefuseReason::PathTrap));
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
                    || state.is_taken(&url)
                    || done.get((site.as_str(), url.as_str()))?.is_some()
                {
                    report.refused.push(refuse(RefuseReason::AlreadySeen));
                    continue;
                }
                let pages = site_pages.get(site.as_str())?.map_or(0, |g| g.value());
                if pages >= self.limits.max_pages_per_site {
                    report.refused.push(refuse(RefuseReason::SiteLimit));
                    continue;
                }
                let record = QueueRecord {
                    anchors: anchor.into_iter().collect(),
                    enqueued_at: now,
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
                    attempt: 0,
                });
            }
        }
        txn.commit()?;
        report.accepted = accepted.len();
        state.queued_total += accepted.len() as u64;
        for job in accepted {
            let site = state.add_site(&job.url.site());
            if site.ready.len() < READY_PER_SITE {
                site.ready.push_back(job);
            } else {
                site.more_in_store = true;
            }
        }
        Ok(report)
    }

    /// Loads up to [`READY_PER_SITE`] queued, untaken URLs of `site` (shallowest first).
    fn refill(&self, state: &mut State, site: &str) -> Result<()> {
        let read = self.db.begin_read()?;
        let queue = read.open_table(QUEUE)?;
        let mut loaded = Vec::new();
        for entry in queue.range((site, 0u32, "")..=(site, u32::MAX, URL_KEY_MAX))? {
            let (key, value) = entry?;
            let (_, depth, url) = key.value();
            if state.is_taken(url) {
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
                attempt: 0,
            });
            if loaded.len() >= READY_PER_SITE {
                break;
            }
        }
        let queue_site = state.sites.entry(site.to_owned()).or_default();
        queue_site.more_in_store = loaded.len() >= READY_PER_SITE;
        queue_site.ready.extend(loaded);
        Ok(())
    }

    /// Takes the next URL of the first site (round robin) whose host is free.
    pub fn next_job<P>(
        &self,
        mut try_host: impl FnMut(&str) -> std::result::Result<P, HostBusy>,
    ) -> Result<NextJob<P>> {
        let mut state = self.state();
        let mut wait: Option<Duration> = None;
        for _ in 0..state.rotation.len() {
            let Some(site) = state.rotation.pop_front() else {
                break;
            };
            let Some(queue) = state.sites.get(&site) else {
                continue;
            };
            if !state.crawlable(&site) {
                state.rotation.push_back(site);
                continue;
            }
            if queue.ready.is_empty() {
                if queue.more_in_store {
                    self.refill(&mut state, &site)?;
                }
                if state.sites.get(&site).is_none_or(|q| q.ready.is_empty()) {
                    state.sites.remove(&site);
                    continue;
                }
            }
            match try_host(&site) {
                Ok(permit) => {
                    let job = state
                        .sites
                        .get_mut(&site)
                        .and_then(|q| q.ready.pop_front())
                        .expect("ready queue checked non-empty");
                    state.rotation.push_back(site.clone());
                    state.taken.insert(
                        job.url.as_str().to_owned(),
                        Taken {
                            site,
                            queued: true,
                            aliases: Vec::new(),
                            content_hash: None,
                        },
                    );
                    state.taken_queued += 1;
                    state.jobs += 1;
                    return Ok(NextJob::Job(job, permit));
                }
                Err(HostBusy::InFlight) => state.rotation.push_back(site),
                Err(HostBusy::Wait(d)) => {
                    wait = Some(wait.map_or(d, |w| w.min(d)));
                    state.rotation.push_back(site);
                }
            }
        }
        if state.sites.keys().all(|s| !state.crawlable(s)) {
            Ok(NextJob::Empty)
        } else {
            Ok(NextJob::Wait(wait))
        }
    }

    /// Stops handing out URLs of `site` (until [`Frontier::resume_site`] or
    /// [`Frontier::forget_site`]); jobs already taken finish normally.
    pub fn pause_site(&self, site: &str) {
        let mut state = self.state();
        state.paused.insert(site.to_owned());
        state.released.remove(site);
    }

    /// Hands out URLs of `site` again (and releases it when sites are gated).
    pub fn resume_site(&self, site: &str) {
        let mut state = self.state();
        state.paused.remove(site);
        state.released.insert(site.to_owned());
    }

    /// Crawl only released sites from now on (see [`Frontier::resume_site`]).
    pub fn gate_sites(&self) {
        self.state().gated = true;
    }

    /// Whether URLs of `site` are handed out.
    pub fn is_crawlable(&self, site: &str) -> bool {
        self.state().crawlable(site)
    }

    /// Jobs of `site` taken and not done yet (fetching, or fetched and not committed).
    pub fn site_in_flight(&self, site: &str) -> usize {
        self.state()
            .taken
            .values()
            .filter(|t| t.site == site)
            .count()
    }

    /// Puts a taken job back at the front of its site's queue (retry, shutdown).
    /// Its aliases are released.
    pub fn untake(&self, job: Job) {
        let mut state = self.state();
        let key = job.url.as_str().to_owned();
        let Some(taken) = state.taken.remove(&key) else {
            return;
        };
        state.jobs = state.jobs.saturating_sub(1);
        if taken.queued {
            state.taken_queued = state.taken_queued.saturating_sub(1);
        }
        for alias in &taken.aliases {
            state.alias_of.remove(alias);
            if let Some(t) = state.taken.remove(alias)
                && t.queued
            {
                state.taken_queued = state.taken_queued.saturating_sub(1);
                state.add_site(&t.site).more_in_store = true;
            }
        }
        state.add_site(&taken.site).ready.push_front(job);
    }

    /// Claims `alias` (a redirect target or canonical URL) for the job `primary`, so
    /// it is not fetched separately and becomes done with it. False when the alias is
    /// done or taken already: the page is then a duplicate.
    pub fn claim_alias(&self, primary: &NormalizedUrl, alias: &NormalizedUrl) -> Result<bool> {
        if primary == alias {
            return Ok(true);
        }
        let mut state = self.state();
        let key = alias.as_str();
        if state.is_taken(key) {
            return Ok(false);
        }
        let site = alias.site();
        let read = self.db.begin_read()?;
        if read.open_table(DONE)?.get((site.as_str(), key))?.is_some() {
            return Ok(false);
        }
        let queued = read
            .open_table(QUEUED)?
            .get((site.as_str(), key))?
            .is_some();
        drop(read);
        if queued {
            state.taken_queued += 1;
            if let Some(q) = state.sites.get_mut(&site) {
                q.ready.retain(|j| j.url.as_str() != key);
            }
        }
        state.taken.insert(
            key.to_owned(),
            Taken {
                site,
                queued,
                aliases: Vec::new(),
                content_hash: None,
            },
        );
        state
            .alias_of
            .insert(key.to_owned(), primary.as_str().to_owned());
        if let Some(t) = state.taken.get_mut(primary.as_str()) {
            t.aliases.push(key.to_owned());
        }
        Ok(true)
    }

    /// Records `hash` for the job `primary` (stored when the job is done). Returns the
    /// URL of another page, done or in flight, that has the same content.
    pub fn check_content_hash(
        &self,
        primary: &NormalizedUrl,
        hash: &str,
    ) -> Result<Option<String>> {
        let mut state = self.state();
        // Another job in flight with the same content?
        let in_flight = state.taken.iter().find_map(|(url, t)| {
            (t.content_hash.as_deref() == Some(hash) && url != primary.as_str())
                .then(|| url.clone())
        });
        if let Some(other) = in_flight {
            return Ok(Some(other));
        }
        let read = self.db.begin_read()?;
        let stored = read
            .open_table(HASHES)?
            .get(hash)?
            .map(|g| g.value().to_owned());
        if let Some(other) = stored
            && other != primary.as_str()
            && state
                .alias_of
                .get(&other)
                .is_none_or(|p| p != primary.as_str())
        {
            // Only a page that really was crawled counts; a stale entry (its page
            // was forgotten or never committed) is overwritten.
            let other_site = stored_url(&other).map(|u| u.site()).unwrap_or_default();
            let done = read
                .open_table(DONE)?
                .get((other_site.as_str(), other.as_str()))?
                .is_some();
            if done || state.is_taken(&other) {
                return Ok(Some(other));
            }
        }
        if let Some(t) = state.taken.get_mut(primary.as_str()) {
            t.content_hash = Some(hash.to_owned());
        }
        Ok(None)
    }

    /// Marks URLs done durably (one transaction): each URL, the aliases claimed for
    /// it, and its content hash. Unknown URLs are simply recorded as done.
    pub fn mark_done(&self, urls: &[NormalizedUrl], fetched_at: i64) -> Result<()> {
        if urls.is_empty() {
            return Ok(());
        }
        let mut state = self.state();
        // (site, url) pairs to mark done, and hashes to store.
        let mut targets: Vec<(String, String)> = Vec::new();
        let mut hashes: Vec<(String, String)> = Vec::new();
        for url in urls {
            let key = url.as_str();
            targets.push((url.site(), key.to_owned()));
            if let Some(t) = state.taken.get(key) {
                for alias in &t.aliases {
                    if let Some(a) = state.taken.get(alias) {
                        targets.push((a.site.clone(), alias.clone()));
                    }
                }
                if let Some(h) = &t.content_hash {
                    hashes.push((h.clone(), key.to_owned()));
                }
            }
        }
        let txn = self.db.begin_write()?;
        let mut removed_from_queue: Vec<(String, String)> = Vec::new();
        {
            let mut queue = txn.open_table(QUEUE)?;
            let mut queued = txn.open_table(QUEUED)?;
            let mut done = txn.open_table(DONE)?;
            let mut hash_table = txn.open_table(HASHES)?;
            for (site, url) in &targets {
                let depth = queued
                    .remove((site.as_str(), url.as_str()))?
                    .map(|g| g.value());
                if let Some(depth) = depth {
                    queue.remove((site.as_str(), depth, url.as_str()))?;
                    removed_from_queue.push((site.clone(), url.clone()));
                }
                done.insert((site.as_str(), url.as_str()), fetched_at)?;
            }
            for (hash, url) in &hashes {
                hash_table.insert(hash.as_str(), url.as_str())?;
            }
        }
        txn.commit()?;

        state.queued_total = state
            .queued_total
            .saturating_sub(removed_from_queue.len() as u64);
        for (site, url) in &removed_from_queue {
            match state.taken.get(url) {
                Some(t) if t.queued => {
                    state.taken_queued = state.taken_queued.saturating_sub(1);
                }
                Some(_) => {}
                None => {
                    // Done while waiting in a ready queue (the node marked it).
                    if let Some(q) = state.sites.get_mut(site) {
                        q.ready.retain(|j| j.url.as_str() != url);
                    }
                }
            }
        }
        for (_, url) in &targets {
            let Some(t) = state.taken.remove(url) else {
                continue;
            };
            if let Some(primary) = state.alias_of.remove(url) {
                if let Some(p) = state.taken.get_mut(&primary) {
                    p.aliases.retain(|a| a != url);
                }
            } else {
                state.jobs = state.jobs.saturating_sub(1);
                for alias in t.aliases {
                    state.alias_of.remove(&alias);
                    state.taken.remove(&alias);
                }
            }
        }
        Ok(())
    }

    /// Whether `url` is done.
    pub fn is_done(&self, url: &NormalizedUrl) -> Result<bool> {
        let read = self.db.begin_read()?;
        Ok(read
            .open_table(DONE)?
            .get((url.site().as_str(), url.as_str()))?
            .is_some())
    }

    /// Sites with URLs waiting in the queue, in order.
    pub fn queued_sites(&self) -> Result<Vec<String>> {
        let read = self.db.begin_read()?;
        let table = match read.open_table(QUEUE) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
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
    }

    /// The queued and done URLs of `site`.
    pub fn export_site(&self, site: &str) -> Result<SiteState> {
        let read = self.db.begin_read()?;
        let mut state = SiteState {
            site: site.to_owned(),
            queued: Vec::new(),
            done: Vec::new(),
        };
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
    }

    /// Merges a site's state from another peer: its done URLs become done here, its
    /// queued URLs are queued unless seen. Returns how many URLs were newly queued.
    pub fn import_site(&self, site_state: SiteState) -> Result<usize> {
        let site = site_state.site.as_str();
        let now = unix_now();
        let mut state = self.state();
        let mut newly_queued = 0u64;
        let mut dequeued: Vec<String> = Vec::new();
        let txn = self.db.begin_write()?;
        {
            let mut queue = txn.open_table(QUEUE)?;
            let mut queued = txn.open_table(QUEUED)?;
            let mut done = txn.open_table(DONE)?;
            let mut site_pages = txn.open_table(SITE_PAGES)?;
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
                    done.insert((site, url), d.fetched_at)?;
                }
            }
            for q in &site_state.queued {
                let url = q.url.as_str();
                if q.url.site() != site
                    || state.is_taken(url)
                    || queued.get((site, url))?.is_some()
                    || done.get((site, url))?.is_some()
                {
                    continue;
                }
                let record = QueueRecord {
                    anchors: q
                        .anchors
                        .iter()
                        .take(MAX_ANCHORS_PER_URL)
                        .cloned()
                        .collect(),
                    enqueued_at: now,
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
        txn.commit()?;
        state.queued_total =
            (state.queued_total + newly_queued).saturating_sub(dequeued.len() as u64);
        for url in &dequeued {
            if let Some(t) = state.taken.get_mut(url)
                && t.queued
            {
                t.queued = false;
                state.taken_queued = state.taken_queued.saturating_sub(1);
            }
        }
        // Reload the site's ready queue from the store.
        let entry = state.add_site(site);
        entry.ready.clear();
        entry.more_in_store = true;
        Ok(newly_queued as usize)
    }

    /// Drops the queue of `site` (another peer crawls it now). Its done URLs stay done, so
    /// a page fetched here is never fetched here again should the site come back. URLs of
    /// the site in flight finish normally.
    pub fn forget_site(&self, site: &str) -> Result<()> {
        let mut state = self.state();
        let mut removed = 0u64;
        let txn = self.db.begin_write()?;
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
        txn.commit()?;
        state.queued_total = state.queued_total.saturating_sub(removed);
        state.sites.remove(site);
        state.paused.remove(site);
        state.released.remove(site);
        let mut unqueued = 0;
        for t in state.taken.values_mut() {
            if t.site == site && t.queued {
                t.queued = false;
                unqueued += 1;
            }
        }
        state.taken_queued = state.taken_queued.saturating_sub(unqueued);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::normalize;

    fn limits() -> FrontierLimits {
        FrontierLimits {
            max_depth: DEFAULT_MAX_DEPTH,
            max_pages_per_site: DEFAULT_MAX_PAGES_PER_SITE,
        }
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
        let dir = tempfile::tempdir()?;
        let f = Frontier::open(&dir.path().join("crawl.redb"), limits())?;
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
            },
        )?;
        let report = f.enqueue(vec![
            seed("http://a.example/1"),
            seed("http://a.example/1"),
            Seed {
                url: url("http://a.example/deep"),
                depth: 3,
                anchor: None,
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
    fn path_trap_detection() {
        let trap = |s: &str| is_path_trap(url(s).as_url());
        assert!(trap("http://a.example/a/b/a/b/a/b"));
        assert!(trap("http://a.example/x/x/x"));
        assert!(!trap("http://a.example/2020/01/01/post"));
        assert!(!trap("http://a.example/a/b/a/b"));
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
        let dir = tempfile::tempdir()?;
        let f = Frontier::open(&dir.path().join("crawl.redb"), limits())?;
        let seeds: Vec<Seed> = (0..200)
            .map(|i| seed(&format!("http://a.example/p{i}")))
            .collect();
        assert_eq!(f.enqueue(seeds)?.accepted, 200);
        assert!(f.state().sites["a.example"].ready.len() <= READY_PER_SITE);
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
        let dir = tempfile::tempdir()?;
        let f = Frontier::open(&dir.path().join("crawl.redb"), limits())?;
        f.enqueue(vec![
            Seed {
                url: url("http://a.example/deep"),
                depth: 5,
                anchor: None,
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
        let dir = tempfile::tempdir()?;
        let f = Frontier::open(&dir.path().join("crawl.redb"), limits())?;
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
        let dir = tempfile::tempdir()?;
        let f = Frontier::open(&dir.path().join("crawl.redb"), limits())?;
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
        assert!(!f.claim_alias(&redirecting.url, &new.url)?);
        assert!(f.claim_alias(&redirecting.url, &url("http://a.example/old"))?);
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
        let dir = tempfile::tempdir()?;
        let f = Frontier::open(&dir.path().join("crawl.redb"), limits())?;
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
        let dir = tempfile::tempdir()?;
        let f = Frontier::open(&dir.path().join("crawl.redb"), limits())?;
        let with = |a: &str| Seed {
            url: url("http://a.example/"),
            depth: 1,
            anchor: Some(a.to_owned()),
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
}
