//! The frontier's in-memory state: per-site ready queues, the round-robin rotation,
//! taken URLs (in flight or awaiting commit) and their aliases, counters, and which
//! sites may be crawled. Pure data: no I/O, so it can sit behind a short lock that
//! async code takes too.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::time::Duration;

use super::Job;
use super::revisit::VisitNote;
use crate::normalize::NormalizedUrl;
use crate::politeness::HostBusy;
use crate::scope::Scope;

/// A (site, url) key of the store.
pub(super) type SiteUrl = (String, String);

/// A (content hash, url) entry of the store.
pub(super) type HashUrl = (String, String);

/// A URL being marked done that gets (or keeps) a revisit schedule: a job's URL, or a URL
/// marked done without being taken here (a replica's). Aliases get none: their document is
/// refreshed through the job that claimed them.
#[derive(Debug, Clone)]
pub(super) struct Visited {
    pub site: String,
    pub url: String,
    pub depth: u32,
    pub scope: Option<Scope>,
    /// What the visit found; `None` for a URL not fetched here (scheduled as new when it has
    /// no schedule yet, left alone otherwise).
    pub note: Option<VisitNote>,
}

#[derive(Debug, Default)]
pub(super) struct SiteQueue {
    pub(super) ready: VecDeque<Job>,
    /// The store may hold queued URLs of this site that are not in `ready`.
    pub(super) more_in_store: bool,
    /// Revisits that came due, loaded from the store.
    pub(super) revisits: VecDeque<Job>,
    /// Whether the next job is a revisit when both kinds wait (they take turns).
    revisit_turn: bool,
}

#[derive(Debug)]
struct Taken {
    site: String,
    /// Whether the URL is in the QUEUED table (it is not for redirect targets and revisits).
    queued: bool,
    aliases: Vec<String>,
    content_hash: Option<String>,
    /// The job's depth and scope (its revisit schedule keeps them).
    depth: u32,
    scope: Option<Scope>,
    /// What the worker found, stored with the schedule when the job is done.
    note: Option<VisitNote>,
}

impl Taken {
    fn alias(site: String, queued: bool) -> Taken {
        Taken {
            site,
            queued,
            aliases: Vec::new(),
            content_hash: None,
            depth: 0,
            scope: None,
            note: None,
        }
    }
}

/// What [`State::pick`] found.
pub(super) enum Pick<P> {
    /// A job, with the host permit; it is now taken.
    Job(Job, P),
    /// The ready queue of this site is empty but the store has more: load it
    /// ([`State::merge_ready`]) and pick again.
    Refill(String),
    /// Nothing ready: try again after this long, or when woken (`None`).
    Wait(Option<Duration>),
    /// Nothing crawlable is queued.
    Empty,
}

#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) sites: HashMap<String, SiteQueue>,
    rotation: VecDeque<String>,
    /// Taken URLs (jobs and their aliases: redirect targets, canonical URLs).
    taken: HashMap<String, Taken>,
    /// alias -> the job URL it belongs to.
    alias_of: HashMap<String, String>,
    /// Entries of the QUEUED table.
    pub(super) queued_total: u64,
    /// Entries of the QUEUED table that are taken.
    taken_queued: u64,
    /// Jobs taken (aliases not counted).
    pub(super) jobs: u64,
    /// Sites whose queued URLs are not handed out (their crawl moves to another peer).
    paused: HashSet<String>,
    /// When set, only sites in `released` are crawled (a peer of a network first makes sure
    /// no other peer crawls a site, then releases it).
    gated: bool,
    /// Sites cleared for crawling while `gated`.
    released: HashSet<String>,
    /// Sites with revisits scheduled, crawlable when last looked at: the earliest next visit
    /// (never later than the store's; an earlier one makes a load that finds nothing).
    revisit_at: HashMap<String, i64>,
    /// `revisit_at` by time.
    revisit_order: BTreeSet<(i64, String)>,
    /// Sites with revisits scheduled that were not crawlable when last looked at.
    revisit_parked: HashMap<String, i64>,
    /// Revisits due, per site, as counted when the site's due revisits were last loaded,
    /// minus those taken since.
    revisits_due: HashMap<String, u64>,
}

impl State {
    /// Queued URLs not taken.
    pub(super) fn frontier_size(&self) -> u64 {
        self.queued_total.saturating_sub(self.taken_queued)
    }

    pub(super) fn rotation_len(&self) -> usize {
        self.rotation.len()
    }

    pub(super) fn crawlable(&self, site: &str) -> bool {
        !self.paused.contains(site) && (!self.gated || self.released.contains(site))
    }

    pub(super) fn pause(&mut self, site: &str) {
        self.paused.insert(site.to_owned());
        self.released.remove(site);
    }

    pub(super) fn resume(&mut self, site: &str) {
        self.paused.remove(site);
        self.released.insert(site.to_owned());
        if let Some(at) = self.revisit_parked.remove(site) {
            self.schedule(site, at);
        }
    }

    /// Sites with revisits scheduled.
    pub(super) fn revisit_sites(&self) -> Vec<String> {
        let mut sites: Vec<String> = self
            .revisit_at
            .keys()
            .chain(self.revisit_parked.keys())
            .cloned()
            .collect();
        sites.sort();
        sites
    }

    /// Revisits due now, as last counted.
    pub(super) fn revisits_due(&self) -> u64 {
        self.revisits_due.values().sum()
    }

    /// A URL of `site` is next visited at `at`.
    pub(super) fn schedule(&mut self, site: &str, at: i64) {
        if let Some(parked) = self.revisit_parked.get_mut(site) {
            *parked = (*parked).min(at);
            return;
        }
        match self.revisit_at.get(site).copied() {
            Some(old) if old <= at => {}
            old => {
                if let Some(old) = old {
                    self.revisit_order.remove(&(old, site.to_owned()));
                }
                self.revisit_at.insert(site.to_owned(), at);
                self.revisit_order.insert((at, site.to_owned()));
            }
        }
    }

    fn unschedule(&mut self, site: &str) -> Option<i64> {
        let at = self.revisit_at.remove(site)?;
        self.revisit_order.remove(&(at, site.to_owned()));
        Some(at)
    }

    /// Up to `max` crawlable sites with revisits due at `now` and none loaded; sites found
    /// not crawlable are parked until [`State::resume`].
    pub(super) fn due_sites(&mut self, now: i64, max: usize) -> Vec<String> {
        let candidates: Vec<String> = self
            .revisit_order
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, site)| site.clone())
            .collect();
        let mut due = Vec::new();
        for site in candidates {
            if !self.crawlable(&site) {
                if let Some(at) = self.unschedule(&site) {
                    self.revisit_parked.insert(site, at);
                }
                continue;
            }
            if self
                .sites
                .get(&site)
                .is_some_and(|q| !q.revisits.is_empty())
            {
                continue;
            }
            due.push(site);
            if due.len() >= max {
                break;
            }
        }
        due
    }

    /// Revisit jobs loaded for `site`: `due` revisits were due (loaded or not), `more` when
    /// some due ones were left in the store, `next` the first one due later.
    pub(super) fn merge_revisits(
        &mut self,
        site: &str,
        jobs: Vec<Job>,
        due: u64,
        more: bool,
        next: Option<i64>,
        now: i64,
    ) {
        self.unschedule(site);
        if more {
            self.schedule(site, now);
        } else if let Some(next) = next {
            self.schedule(site, next);
        }
        let fresh: Vec<Job> = jobs
            .into_iter()
            .filter(|j| !self.is_taken(j.url.as_str()))
            .collect();
        self.revisits_due.insert(site.to_owned(), due);
        if fresh.is_empty() {
            return;
        }
        let queue = self.add_site(site);
        for job in fresh {
            if !queue.revisits.iter().any(|r| r.url == job.url) {
                queue.revisits.push_back(job);
            }
        }
    }

    /// Notes what the visit of the job `primary` found.
    pub(super) fn note(&mut self, primary: &NormalizedUrl, note: VisitNote) {
        if let Some(t) = self.taken.get_mut(primary.as_str()) {
            t.note = Some(note);
        }
    }

    pub(super) fn gate(&mut self) {
        self.gated = true;
    }

    pub(super) fn add_site(&mut self, site: &str) -> &mut SiteQueue {
        if !self.sites.contains_key(site) {
            self.rotation.push_back(site.to_owned());
        }
        self.sites.entry(site.to_owned()).or_default()
    }

    pub(super) fn is_taken(&self, url: &str) -> bool {
        self.taken.contains_key(url) || self.alias_of.contains_key(url)
    }

    /// Of `urls`, those taken now.
    pub(super) fn taken_among<'a>(&self, urls: impl Iterator<Item = &'a str>) -> HashSet<String> {
        urls.filter(|u| self.is_taken(u))
            .map(str::to_owned)
            .collect()
    }

    /// Taken URLs of `site` (a refill skips them).
    pub(super) fn taken_of_site(&self, site: &str) -> HashSet<String> {
        self.taken
            .iter()
            .filter(|(_, t)| t.site == site)
            .map(|(url, _)| url.clone())
            .collect()
    }

    /// Jobs of `site` taken and not done yet.
    pub(super) fn site_in_flight(&self, site: &str) -> usize {
        self.taken.values().filter(|t| t.site == site).count()
    }

    /// Newly queued jobs (already stored): into their ready queue while it has room.
    pub(super) fn add_queued(&mut self, jobs: Vec<Job>, ready_per_site: usize) {
        self.queued_total += jobs.len() as u64;
        for job in jobs {
            let site = self.add_site(&job.url.site());
            if site.ready.len() < ready_per_site {
                site.ready.push_back(job);
            } else {
                site.more_in_store = true;
            }
        }
    }

    /// Jobs loaded from the store for `site`; `full` when the load stopped at its limit
    /// (the store may hold more). Jobs taken or readied since the load began are dropped.
    pub(super) fn merge_ready(&mut self, site: &str, jobs: Vec<Job>, full: bool) {
        let fresh: Vec<Job> = jobs
            .into_iter()
            .filter(|j| !self.is_taken(j.url.as_str()))
            .collect();
        let queue = self.sites.entry(site.to_owned()).or_default();
        let fresh: Vec<Job> = fresh
            .into_iter()
            .filter(|j| !queue.ready.iter().any(|r| r.url == j.url))
            .collect();
        // An empty load ends the refills of this site, whatever `full` says: a refill
        // never loops.
        queue.more_in_store = full && !fresh.is_empty();
        queue.ready.extend(fresh);
    }

    /// Takes the next URL of the first site (round robin) whose host `try_host` grants.
    /// `remaining` bounds the sites looked at over one whole `next_job` (refills
    /// included); `wait` collects the shortest wait of the busy hosts seen.
    pub(super) fn pick<P>(
        &mut self,
        try_host: &mut impl FnMut(&str) -> Result<P, HostBusy>,
        remaining: &mut usize,
        wait: &mut Option<Duration>,
    ) -> Pick<P> {
        while *remaining > 0 {
            *remaining -= 1;
            let Some(site) = self.rotation.pop_front() else {
                break;
            };
            let Some(queue) = self.sites.get(&site) else {
                continue;
            };
            if !self.crawlable(&site) {
                self.rotation.push_back(site);
                continue;
            }
            // Discovery and revisits take turns; either takes every turn the other leaves
            // (discovery waits while its ready queue or the store holds URLs).
            let discovery_waits = !queue.ready.is_empty() || queue.more_in_store;
            let revisit_next =
                !queue.revisits.is_empty() && (queue.revisit_turn || !discovery_waits);
            if queue.ready.is_empty() && !revisit_next {
                if queue.more_in_store {
                    // Look at this site again once it is refilled.
                    self.rotation.push_front(site.clone());
                    *remaining += 1;
                    return Pick::Refill(site);
                }
                self.sites.remove(&site);
                continue;
            }
            match try_host(&site) {
                Ok(permit) => {
                    let queue = self.sites.get_mut(&site).expect("site checked above");
                    let job = if revisit_next {
                        queue.revisits.pop_front()
                    } else {
                        queue.ready.pop_front()
                    }
                    .expect("queue checked non-empty");
                    queue.revisit_turn = !revisit_next;
                    self.rotation.push_back(site.clone());
                    let revisit = job.revisit.is_some();
                    if revisit && let Some(n) = self.revisits_due.get_mut(&site) {
                        *n = n.saturating_sub(1);
                    }
                    self.taken.insert(
                        job.url.as_str().to_owned(),
                        Taken {
                            depth: job.depth,
                            scope: job.scope.clone(),
                            ..Taken::alias(site, !revisit)
                        },
                    );
                    if !revisit {
                        self.taken_queued += 1;
                    }
                    self.jobs += 1;
                    return Pick::Job(job, permit);
                }
                Err(HostBusy::InFlight) => self.rotation.push_back(site),
                Err(HostBusy::Wait(d)) => {
                    *wait = Some(wait.map_or(d, |w| w.min(d)));
                    self.rotation.push_back(site);
                }
            }
        }
        if self.sites.keys().all(|s| !self.crawlable(s)) {
            Pick::Empty
        } else {
            Pick::Wait(*wait)
        }
    }

    /// Puts a taken job back at the front of its site's queue; its aliases are released.
    pub(super) fn untake(&mut self, job: Job) {
        let key = job.url.as_str().to_owned();
        let Some(taken) = self.taken.remove(&key) else {
            return;
        };
        self.jobs = self.jobs.saturating_sub(1);
        if taken.queued {
            self.taken_queued = self.taken_queued.saturating_sub(1);
        }
        for alias in &taken.aliases {
            self.alias_of.remove(alias);
            if let Some(t) = self.taken.remove(alias)
                && t.queued
            {
                self.taken_queued = self.taken_queued.saturating_sub(1);
                self.add_site(&t.site).more_in_store = true;
            }
        }
        let queue = self.add_site(&taken.site);
        if job.revisit.is_some() {
            queue.revisits.push_front(job);
        } else {
            queue.ready.push_front(job);
        }
    }

    /// Takes `alias` for the job `primary`; `queued` says whether the store queues it.
    pub(super) fn claim(&mut self, primary: &NormalizedUrl, alias: &NormalizedUrl, queued: bool) {
        let key = alias.as_str();
        let site = alias.site();
        if queued {
            self.taken_queued += 1;
            if let Some(q) = self.sites.get_mut(&site) {
                q.ready.retain(|j| j.url.as_str() != key);
            }
        }
        self.taken
            .insert(key.to_owned(), Taken::alias(site, queued));
        self.alias_of
            .insert(key.to_owned(), primary.as_str().to_owned());
        if let Some(t) = self.taken.get_mut(primary.as_str()) {
            t.aliases.push(key.to_owned());
        }
    }

    /// Another taken job than `primary` whose content hash is `hash`.
    pub(super) fn in_flight_with_hash(
        &self,
        primary: &NormalizedUrl,
        hash: &str,
    ) -> Option<String> {
        self.taken.iter().find_map(|(url, t)| {
            (t.content_hash.as_deref() == Some(hash) && url != primary.as_str())
                .then(|| url.clone())
        })
    }

    /// Whether `other` (the page the store names for a content hash) is a page that
    /// counts against `primary`: not `primary` itself nor one of its aliases, and
    /// `done` in the store or taken now.
    pub(super) fn hash_owner_counts(
        &self,
        primary: &NormalizedUrl,
        other: &str,
        done: bool,
    ) -> bool {
        other != primary.as_str()
            && self
                .alias_of
                .get(other)
                .is_none_or(|p| p != primary.as_str())
            && (done || self.is_taken(other))
    }

    pub(super) fn set_hash(&mut self, primary: &NormalizedUrl, hash: &str) {
        if let Some(t) = self.taken.get_mut(primary.as_str()) {
            t.content_hash = Some(hash.to_owned());
        }
    }

    /// What marking `urls` done writes: (site, url) of each URL and of the aliases claimed
    /// for it, (hash, url) of the content hashes recorded for them, and the revisit
    /// schedules of the URLs that are not aliases.
    pub(super) fn done_targets(
        &self,
        urls: &[NormalizedUrl],
    ) -> (Vec<SiteUrl>, Vec<HashUrl>, Vec<Visited>) {
        let mut targets = Vec::new();
        let mut hashes = Vec::new();
        let mut visited = Vec::new();
        for url in urls {
            let key = url.as_str();
            let site = url.site();
            targets.push((site.clone(), key.to_owned()));
            if self.alias_of.contains_key(key) {
                continue;
            }
            let taken = self.taken.get(key);
            visited.push(Visited {
                url: key.to_owned(),
                depth: taken.map_or(1, |t| t.depth),
                // A URL not crawled here (a replica's): its links are followed on its own
                // site only, the crawl scope it was found in being unknown here.
                scope: match taken {
                    Some(t) => t.scope.clone(),
                    None => Some(Scope {
                        hosts: vec![site.clone()],
                        ..Scope::default()
                    }),
                },
                note: taken.and_then(|t| t.note.clone()),
                site,
            });
            if let Some(t) = taken {
                for alias in &t.aliases {
                    if let Some(a) = self.taken.get(alias) {
                        targets.push((a.site.clone(), alias.clone()));
                    }
                }
                if let Some(h) = &t.content_hash {
                    hashes.push((h.clone(), key.to_owned()));
                }
            }
        }
        (targets, hashes, visited)
    }

    /// After the store marked `targets` done, removed `dequeued` from its queue and
    /// `scheduled` revisits.
    pub(super) fn apply_done(
        &mut self,
        targets: &[SiteUrl],
        dequeued: &[SiteUrl],
        scheduled: &[(String, i64)],
    ) {
        for (site, at) in scheduled {
            self.schedule(site, *at);
        }
        self.queued_total = self.queued_total.saturating_sub(dequeued.len() as u64);
        for (site, url) in dequeued {
            match self.taken.get(url) {
                Some(t) if t.queued => {
                    self.taken_queued = self.taken_queued.saturating_sub(1);
                }
                Some(_) => {}
                None => {
                    // Done while waiting in a ready queue (the node marked it).
                    if let Some(q) = self.sites.get_mut(site) {
                        q.ready.retain(|j| j.url.as_str() != url);
                    }
                }
            }
        }
        for (_, url) in targets {
            let Some(t) = self.taken.remove(url) else {
                continue;
            };
            if let Some(primary) = self.alias_of.remove(url) {
                if let Some(p) = self.taken.get_mut(&primary) {
                    p.aliases.retain(|a| a != url);
                }
            } else {
                self.jobs = self.jobs.saturating_sub(1);
                for alias in t.aliases {
                    self.alias_of.remove(&alias);
                    self.taken.remove(&alias);
                }
            }
        }
    }

    /// After the store imported a site's state: `newly_queued` URLs queued, `dequeued`
    /// ones done now. The site's ready queue is reloaded from the store.
    pub(super) fn apply_import(
        &mut self,
        site: &str,
        newly_queued: u64,
        dequeued: &[String],
        scheduled: Option<i64>,
    ) {
        if let Some(at) = scheduled {
            self.schedule(site, at);
        }
        self.queued_total =
            (self.queued_total + newly_queued).saturating_sub(dequeued.len() as u64);
        for url in dequeued {
            if let Some(t) = self.taken.get_mut(url)
                && t.queued
            {
                t.queued = false;
                self.taken_queued = self.taken_queued.saturating_sub(1);
            }
        }
        let entry = self.add_site(site);
        entry.ready.clear();
        entry.more_in_store = true;
    }

    /// After the store dropped the `removed` queued URLs of `site`.
    pub(super) fn apply_forget(&mut self, site: &str, removed: u64) {
        self.queued_total = self.queued_total.saturating_sub(removed);
        self.sites.remove(site);
        self.revisits_due.remove(site);
        self.paused.remove(site);
        self.released.remove(site);
        let mut unqueued = 0;
        for t in self.taken.values_mut() {
            if t.site == site && t.queued {
                t.queued = false;
                unqueued += 1;
            }
        }
        self.taken_queued = self.taken_queued.saturating_sub(unqueued);
    }
}
