//! The persistent frontier and seen set.
//!
//! A URL is *queued* (stored), then *taken* by the crawl loop (in memory only: in
//! flight, then awaiting commit), then *done* (stored). Nothing about "taken" is
//! stored, so after a crash every URL that is not done is simply queued again.
//!
//! Memory stays bounded: per site only a small ready queue (at most
//! [`READY_PER_SITE`] URLs) is loaded; it is refilled from the store when it runs
//! empty. The sites with queued URLs are listed once at open by skipping through the
//! store's key space one site at a time.
//!
//! # Locks and blocking
//!
//! - `store` ([`store`]) is redb: every call is blocking I/O.
//! - `state` ([`state`]) is memory only, behind a lock that is held for a few map
//!   operations, never across store I/O. Async code takes it (stats, pause, untake).
//! - `writer` serializes the operations that read or write the store and then change
//!   `state` on what they read (enqueue, next job, aliases, hashes, mark done, import,
//!   forget). It is held across commits, and only ever taken on blocking threads.
//!
//! So a method either is *blocking* (takes `writer`, does I/O: call it from
//! `spawn_blocking`) or only touches `state` (safe anywhere). A state change made by
//! async code while a writer is between its store I/O and its state update (an
//! `untake`) is one the writer's update tolerates; see each method.

pub(crate) mod revisit;
#[cfg(test)]
mod revisit_tests;
mod state;
mod store;
#[cfg(test)]
mod tests;
mod traps;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::normalize::NormalizedUrl;
use crate::politeness::HostBusy;
use crate::scope::Scope;
use crate::util::lock;
pub use revisit::RevisitPolicy;
use revisit::{LastVisit, VisitNote};
use state::{Pick, State};
use store::Store;

/// Default maximum link depth from a seed. Deeper pages are rarely worth indexing
/// and depth is the last defence against infinite URL spaces.
pub const DEFAULT_MAX_DEPTH: u32 = 16;

/// Default maximum URLs accepted per site, so one huge site cannot eat a peer.
pub const DEFAULT_MAX_PAGES_PER_SITE: u64 = 10_000;

/// URLs loaded in memory per site; the rest waits in the store.
pub const READY_PER_SITE: usize = 32;

/// Sites whose due revisits one [`Frontier::next_job`] loads at most (the others wait for
/// the next call), so that a restart with many sites due never stalls a call.
const DUE_SITES_PER_CALL: usize = 8;

/// Anchor texts remembered per queued URL (they are indexed with the page).
pub const MAX_ANCHORS_PER_URL: usize = 8;

/// A URL to crawl.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seed {
    /// The URL.
    pub url: NormalizedUrl,
    /// Links followed from a seed to reach it (0 for seeds).
    pub depth: u32,
    /// The anchor text of the link that led here, if any.
    pub anchor: Option<String>,
    /// The crawl scope it was reached in (its links are followed only inside it); `None`:
    /// every link is followed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
}

impl Seed {
    /// A seed at depth 0 with no anchor.
    pub fn new(url: NormalizedUrl) -> Seed {
        Seed {
            url,
            depth: 0,
            anchor: None,
            scope: None,
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
    /// Its crawl scope ([`Seed::scope`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
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

/// A URL handed to the crawl loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Job {
    pub url: NormalizedUrl,
    pub depth: u32,
    pub anchors: Vec<String>,
    /// Its crawl scope ([`Seed::scope`]).
    pub scope: Option<Scope>,
    /// Fetch attempts already made (for retries).
    pub attempt: u32,
    /// A revisit of a done URL: what its last visit left.
    pub revisit: Option<Box<LastVisit>>,
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

/// Limits applied by [`Frontier::enqueue`], the revisit intervals, and the clock of revisit
/// times.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrontierLimits {
    pub max_depth: u32,
    pub max_pages_per_site: u64,
    pub revisit: RevisitPolicy,
    /// Unix seconds now (the wall clock; tests pass their own).
    pub now: fn() -> i64,
}

/// The persistent frontier. Methods marked *blocking* do store I/O: call them from
/// `spawn_blocking` in async code; the others only touch memory.
pub(crate) struct Frontier {
    store: Store,
    limits: FrontierLimits,
    /// Serializes store I/O with the state updates that depend on it (see the module
    /// docs). Never taken by async code.
    writer: Mutex<()>,
    state: Mutex<State>,
}

impl std::fmt::Debug for Frontier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frontier")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Frontier {
    /// Opens (or creates) the store at `path`. Blocking.
    pub fn open(path: &Path, limits: FrontierLimits) -> Result<Frontier> {
        let opened = Store::open(path, limits.revisit)?;
        let mut state = State::default();
        state.queued_total = opened.queued_total;
        for site in &opened.sites {
            state.add_site(site).more_in_store = true;
        }
        for (site, at) in &opened.revisits {
            state.schedule(site, *at);
        }
        tracing::debug!(
            queued = state.queued_total,
            sites = state.sites.len(),
            "frontier opened"
        );
        Ok(Frontier {
            store: opened.store,
            limits,
            writer: Mutex::new(()),
            state: Mutex::new(state),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn writer(&self) -> MutexGuard<'_, ()> {
        lock(&self.writer)
    }

    /// Queued URLs not taken by the crawl loop.
    pub fn frontier_size(&self) -> u64 {
        self.state().frontier_size()
    }

    /// URLs taken by the crawl loop and not done yet.
    pub fn in_flight(&self) -> u64 {
        self.state().jobs
    }

    /// Revisits due now and not taken, as counted when their site's due revisits were last
    /// loaded (a site not looked at since its revisits came due counts none yet).
    pub fn revisits_due(&self) -> u64 {
        self.state().revisits_due()
    }

    /// Sites with revisits scheduled (memory only).
    pub fn revisit_sites(&self) -> Vec<String> {
        self.state().revisit_sites()
    }

    /// Notes what the visit of the taken job `primary` found; stored with its revisit
    /// schedule when it is marked done.
    pub fn note_visit(&self, primary: &NormalizedUrl, note: VisitNote) {
        self.state().note(primary, note);
    }

    /// Queues new URLs in one transaction; see [`RefuseReason`] for what is refused.
    /// Blocking.
    pub fn enqueue(&self, seeds: Vec<Seed>) -> Result<EnqueueReport> {
        let _writer = self.writer();
        // Only writers take URLs, so what is taken now stays taken until the update.
        let taken = self
            .state()
            .taken_among(seeds.iter().map(|s| s.url.as_str()));
        let (report, accepted) =
            self.store
                .enqueue(seeds, &taken, self.limits, (self.limits.now)())?;
        self.state().add_queued(accepted, READY_PER_SITE);
        Ok(report)
    }

    /// Takes the next URL of the first site (round robin) whose host `try_host` grants,
    /// refilling ready queues from the store as needed. Blocking.
    pub fn next_job<P>(
        &self,
        mut try_host: impl FnMut(&str) -> std::result::Result<P, HostBusy>,
    ) -> Result<NextJob<P>> {
        let _writer = self.writer();
        // Revisits that came due join their site's queue first, a few sites per call.
        let now = (self.limits.now)();
        let due_sites = self.state().due_sites(now, DUE_SITES_PER_CALL);
        for site in due_sites {
            let skip = self.state().taken_of_site(&site);
            let due = self.store.load_due(&site, now, &skip, READY_PER_SITE)?;
            self.state()
                .merge_revisits(&site, due.jobs, due.count, due.more, due.next, now);
        }
        let mut remaining = self.state().rotation_len();
        let mut wait: Option<Duration> = None;
        loop {
            let pick = self.state().pick(&mut try_host, &mut remaining, &mut wait);
            match pick {
                Pick::Job(job, permit) => return Ok(NextJob::Job(job, permit)),
                Pick::Wait(wait) => return Ok(NextJob::Wait(wait)),
                Pick::Empty => return Ok(NextJob::Empty),
                Pick::Refill(site) => {
                    let skip = self.state().taken_of_site(&site);
                    let (jobs, full) = self.store.load_ready(&site, &skip, READY_PER_SITE)?;
                    // An `untake` meanwhile may have readied one of these: merged once.
                    self.state().merge_ready(&site, jobs, full);
                }
            }
        }
    }

    /// Stops handing out URLs of `site` (until [`Frontier::resume_site`] or
    /// [`Frontier::forget_site`]); jobs already taken finish normally.
    pub fn pause_site(&self, site: &str) {
        self.state().pause(site);
    }

    /// Hands out URLs of `site` again (and releases it when sites are gated).
    pub fn resume_site(&self, site: &str) {
        self.state().resume(site);
    }

    /// Crawl only released sites from now on (see [`Frontier::resume_site`]).
    pub fn gate_sites(&self) {
        self.state().gate();
    }

    /// Whether URLs of `site` are handed out.
    pub fn is_crawlable(&self, site: &str) -> bool {
        self.state().crawlable(site)
    }

    /// Jobs of `site` taken and not done yet (fetching, or fetched and not committed).
    pub fn site_in_flight(&self, site: &str) -> usize {
        self.state().site_in_flight(site)
    }

    /// Puts a taken job back at the front of its site's queue (retry, shutdown).
    /// Its aliases are released.
    pub fn untake(&self, job: Job) {
        self.state().untake(job);
    }

    /// Claims `alias` (a redirect target or canonical URL) for the job `primary`, so
    /// it is not fetched separately and becomes done with it. False when the alias is
    /// taken already, or done and not `reclaim`: the page is then a duplicate. A revisit
    /// reclaims the URL its document was stored under. Blocking.
    pub fn claim_alias(
        &self,
        primary: &NormalizedUrl,
        alias: &NormalizedUrl,
        reclaim: bool,
    ) -> Result<bool> {
        if primary == alias {
            return Ok(true);
        }
        let _writer = self.writer();
        if self.state().is_taken(alias.as_str()) {
            return Ok(false);
        }
        let status = self.store.status(alias)?;
        if status.done && !reclaim {
            return Ok(false);
        }
        self.state().claim(primary, alias, status.queued);
        Ok(true)
    }

    /// Records `hash` for the job `primary` (stored when the job is done). Returns the
    /// URL of another page, done or in flight, that has the same content. Blocking.
    pub fn check_content_hash(
        &self,
        primary: &NormalizedUrl,
        hash: &str,
    ) -> Result<Option<String>> {
        let _writer = self.writer();
        if let Some(other) = self.state().in_flight_with_hash(primary, hash) {
            return Ok(Some(other));
        }
        let stored = self.store.hash_owner(hash)?;
        let mut state = self.state();
        // Only a page that really was crawled counts; a stale entry (its page was
        // forgotten or never committed) is overwritten when this one is done.
        if let Some((other, done)) = stored
            && state.hash_owner_counts(primary, &other, done)
        {
            return Ok(Some(other));
        }
        state.set_hash(primary, hash);
        Ok(None)
    }

    /// Marks URLs done durably (one transaction): each URL, the aliases claimed for
    /// it, its content hash and its next visit. Unknown URLs are simply recorded as done
    /// (and scheduled unless they are already). Blocking.
    pub fn mark_done(&self, urls: &[NormalizedUrl], fetched_at: i64) -> Result<()> {
        if urls.is_empty() {
            return Ok(());
        }
        let _writer = self.writer();
        let (targets, hashes, visited) = self.state().done_targets(urls);
        let done =
            self.store
                .mark_done(&targets, &hashes, &visited, fetched_at, self.limits.revisit)?;
        // A target untaken meanwhile sits in a ready queue again: the update drops it
        // there like any URL done while waiting.
        self.state()
            .apply_done(&targets, &done.dequeued, &done.scheduled);
        Ok(())
    }

    /// Brings the next visit of each of `urls` (done URLs) forward to `at` unless it comes
    /// sooner already; returns how many moved. Blocking.
    pub fn expedite(&self, urls: &[NormalizedUrl], at: i64) -> Result<usize> {
        let _writer = self.writer();
        let moved = self.store.expedite(urls, at)?;
        let mut state = self.state();
        for (site, at) in &moved {
            state.schedule(site, *at);
        }
        Ok(moved.len())
    }

    /// Visits again, as soon as their hosts allow, the done URLs among `hints` ((url, when
    /// it changed, e.g. a sitemap's `lastmod`; a time ahead counts as now)) fetched before
    /// they changed. Returns how many were brought forward. Blocking.
    pub fn changed_since_fetch(&self, hints: &[(NormalizedUrl, i64)]) -> Result<usize> {
        let now = self.now();
        let hints: Vec<(NormalizedUrl, i64)> = hints
            .iter()
            .map(|(u, t)| (u.clone(), (*t).min(now)))
            .collect();
        let stale = self.store.done_before(&hints)?;
        self.expedite(&stale, now)
    }

    /// Unix seconds now, by the frontier's clock.
    pub fn now(&self) -> i64 {
        (self.limits.now)()
    }

    /// Whether `url` is done. Blocking.
    pub fn is_done(&self, url: &NormalizedUrl) -> Result<bool> {
        self.store.is_done(url)
    }

    /// Sites with URLs waiting in the queue, in order. Blocking.
    pub fn queued_sites(&self) -> Result<Vec<String>> {
        self.store.queued_sites()
    }

    /// The queued and done URLs of `site`. Blocking.
    pub fn export_site(&self, site: &str) -> Result<SiteState> {
        self.store.export_site(site)
    }

    /// Merges a site's state from another peer: its done URLs become done here, its
    /// queued URLs are queued unless seen. Returns how many URLs were newly queued.
    /// Blocking.
    pub fn import_site(&self, site_state: SiteState) -> Result<usize> {
        let _writer = self.writer();
        let taken = self
            .state()
            .taken_among(site_state.queued.iter().map(|q| q.url.as_str()));
        let imported = self.store.import_site(
            &site_state,
            &taken,
            (self.limits.now)(),
            self.limits.revisit,
        )?;
        self.state().apply_import(
            &site_state.site,
            imported.newly_queued,
            &imported.dequeued,
            imported.scheduled,
        );
        let newly_queued = imported.newly_queued;
        Ok(newly_queued as usize)
    }

    /// Drops the queue of `site` (another peer crawls it now). Its done URLs stay done, so
    /// a page fetched here is never fetched here again should the site come back. URLs of
    /// the site in flight finish normally. Blocking.
    pub fn forget_site(&self, site: &str) -> Result<()> {
        let _writer = self.writer();
        let removed = self.store.forget_site(site)?;
        self.state().apply_forget(site, removed);
        Ok(())
    }

    /// The in-memory state, for tests that look inside.
    #[cfg(test)]
    fn state_for_test(&self) -> MutexGuard<'_, State> {
        self.state()
    }
}
