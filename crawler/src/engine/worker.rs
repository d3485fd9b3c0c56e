//! What happens to one URL: robots.txt, the guarded fetch (each redirect hop gated by
//! robots.txt too), retries, aliases, extraction, duplicates, and the page reported.

use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_util::sync::CancellationToken;

use std::time::Duration;

use super::{CrawledPage, Crawler, MAX_FETCH_RETRIES, Outcome, RETRY_BACKOFF};
use crate::error::{Error, Result};
use crate::extract::{RobotsDirectives, extract};
use crate::fetch::Validators;
use crate::frontier::revisit::{DEAD_AFTER_FAILURES, HUB_LINKS, LastVisit, VisitKind, VisitNote};
use crate::frontier::{Job, Seed};
use crate::normalize::NormalizedUrl;
use crate::politeness::HostPermit;
use crate::robots::{ROBOTS_USER_AGENT, RobotsVerdict};
use crate::scope::Scope;
use crate::util::{lock, now, unix_now};

/// Longest wait for the extraction of one page (normally milliseconds; input size
/// and nesting are capped, this bounds whatever html5ever still finds hard).
const EXTRACT_TIMEOUT: Duration = Duration::from_secs(30);

/// What a fetch's answer carried, for the next visit.
struct Fetched {
    validators: Validators,
    content_hash: Option<String>,
    /// Whether the page is a hub; `None` when the answer had no page to tell (a 304).
    hub: Option<bool>,
}

/// What processing one job led to.
enum Step {
    /// A page to report.
    Report(Box<CrawledPage>),
    /// The job went back to the frontier (retry or robots deferral).
    Requeued,
}

impl Crawler {
    pub(super) async fn process(
        self,
        job: Job,
        host: HostPermit,
        permit: OwnedSemaphorePermit,
        out: mpsc::Sender<CrawledPage>,
        shutdown: CancellationToken,
    ) {
        let _permit = permit;
        let url = job.url.clone();
        let work = async {
            match self.crawl_one(job.clone(), host).await {
                Ok(Step::Report(page)) => {
                    // The site answered (and its robots.txt is known now): its sitemaps may
                    // be read.
                    let answered = !page.outcome.is_failure()
                        && !matches!(page.outcome, Outcome::RobotsDenied | Outcome::OutOfScope);
                    if answered {
                        self.maybe_read_sitemaps(&job, &shutdown);
                    }
                    if out.send(*page).await.is_err() {
                        tracing::debug!(url = %url, "crawl output closed");
                    }
                }
                Ok(Step::Requeued) => {}
                Err(e) => {
                    // Store failure: leave the URL to a later attempt.
                    tracing::error!(url = %url, error = %e, "crawl step failed");
                    self.inner.frontier.untake(job.clone());
                }
            }
        };
        tokio::select! {
            _ = work => {}
            _ = shutdown.cancelled() => {
                self.inner.frontier.untake(job);
                self.refund_budget();
            }
        }
        self.inner.wake.notify_one();
    }

    async fn crawl_one(&self, mut job: Job, host: HostPermit) -> Result<Step> {
        let site = host.site().to_owned();
        let crawl_delay = match self.inner.robots.check(&job.url).await {
            RobotsVerdict::Allowed { crawl_delay } => {
                lock(&self.inner.robots_deferrals).remove(&site);
                crawl_delay.unwrap_or_default()
            }
            RobotsVerdict::Blocked(reason) => {
                drop(host);
                return self.finish(job, Outcome::Blocked(reason)).await;
            }
            RobotsVerdict::Disallowed => {
                lock(&self.inner.robots_deferrals).remove(&site);
                drop(host);
                self.refund_budget();
                return self.finish(job, Outcome::RobotsDenied).await;
            }
            RobotsVerdict::Unavailable { retry_at, reason } => {
                let deferrals = {
                    let mut map = lock(&self.inner.robots_deferrals);
                    let n = map.entry(site.clone()).or_default();
                    *n += 1;
                    *n
                };
                self.refund_budget();
                if deferrals <= self.inner.config.robots_max_deferrals {
                    tracing::debug!(site = %site, reason = %reason, "robots.txt unavailable, deferring site");
                    host.release(retry_at.saturating_duration_since(now()));
                    self.inner.frontier.untake(job);
                    return Ok(Step::Requeued);
                }
                drop(host);
                return self.finish(job, Outcome::RobotsUnavailable(reason)).await;
            }
        };

        // Every redirect target must be inside the crawl's scope and pass robots.txt of its
        // host before it is requested. A seed's own redirects are followed wherever they go
        // (`http://x/` to `https://www.x/`): the seed is fetched whatever its scope says.
        let (scope, depth) = (job.scope.clone().filter(|_| job.depth > 0), job.depth);
        let gate = |hop| self.redirect_gate(hop, scope.as_ref(), depth);
        // A revisit sends the validators of the last answer: a 304 costs no extraction.
        let fetched = match job.revisit.as_ref().map(|r| &r.validators) {
            Some(v) if !v.is_empty() => {
                self.inner
                    .fetcher
                    .fetch_conditional(&job.url, v, gate)
                    .await
            }
            _ => self.inner.fetcher.fetch_gated(&job.url, gate).await,
        };
        let res = match fetched {
            Ok(res) => {
                host.release(crawl_delay);
                res
            }
            Err(e) if e.is_retryable() && job.attempt < MAX_FETCH_RETRIES => {
                let backoff = RETRY_BACKOFF * 2u32.pow(job.attempt);
                tracing::debug!(url = %job.url, error = %e, attempt = job.attempt, "fetch failed, will retry");
                host.release(backoff.max(crawl_delay));
                job.attempt += 1;
                self.refund_budget();
                self.inner.frontier.untake(job);
                return Ok(Step::Requeued);
            }
            Err(e) => {
                host.release(crawl_delay);
                return self.finish(job, Outcome::of_fetch_error(e)).await;
            }
        };

        let previous_doc = job.revisit.as_ref().and_then(|r| r.doc.clone());
        if res.status == 304 {
            let kept = previous_doc
                .as_deref()
                .and_then(|d| crate::normalize::normalize(d, None).ok());
            let doc_url = kept.clone().unwrap_or_else(|| job.url.clone());
            let fetched = Fetched {
                validators: res.validators.clone(),
                content_hash: None,
                hub: None,
            };
            return self
                .conclude(
                    job,
                    doc_url,
                    Outcome::NotModified,
                    kept.as_ref(),
                    Some(fetched),
                )
                .await;
        }

        // The redirect target is the same document: claim it so it is not fetched
        // separately; if it was crawled already, this is a duplicate (a revisit reclaims
        // the URL its document is stored under).
        let reclaims = |u: &NormalizedUrl| previous_doc.as_deref() == Some(u.as_str());
        let mut doc_url = res.final_url.clone();
        if doc_url != job.url
            && !self
                .claim_alias(&job.url, &doc_url, reclaims(&doc_url))
                .await?
        {
            let kept = doc_url.clone();
            return self
                .conclude(job, kept.clone(), Outcome::Duplicate, Some(&kept), None)
                .await;
        }
        // A seed that redirected to another site out of its scope: the site it landed on is
        // its own site.
        if job.depth == 0
            && res.final_url.site() != job.url.site()
            && let Some(scope) = job.scope.as_mut()
            && !scope.matcher().allows(&res.final_url, 0)
            && scope.hosts.len() < crate::scope::MAX_SCOPE_ENTRIES
        {
            scope.hosts.push(res.final_url.site());
        }
        let body = res.body.clone();
        let content_type = res.content_type.clone();
        let page_url = res.final_url.as_url().clone();
        let extraction =
            tokio::task::spawn_blocking(move || extract(&body, content_type.as_deref(), &page_url));
        // A blocking task cannot be cancelled; past the deadline the page is given up
        // and the thread finishes on its own.
        let Ok(extracted) = tokio::time::timeout(EXTRACT_TIMEOUT, extraction).await else {
            tracing::warn!(url = %job.url, "extraction timed out");
            return self
                .finish(job, Outcome::FetchError("extraction timed out".into()))
                .await;
        };
        let extracted = extracted?;
        let page = match extracted {
            Ok(page) => page,
            Err(Error::NotHtml(_)) => return self.finish_doc(job, doc_url, Outcome::NotHtml).await,
            Err(e) => return self.finish(job, Outcome::FetchError(e.to_string())).await,
        };
        let directives = page.robots.union(RobotsDirectives::from_x_robots_tag(
            &res.x_robots_tag,
            ROBOTS_USER_AGENT,
        ));
        if let Some(canonical) = &page.canonical
            && *canonical != doc_url
            && canonical.site() == doc_url.site()
        {
            if !self
                .claim_alias(&job.url, canonical, reclaims(canonical))
                .await?
            {
                let kept = canonical.clone();
                return self
                    .conclude(job, doc_url, Outcome::Duplicate, Some(&kept), None)
                    .await;
            }
            doc_url = canonical.clone();
        }
        let same_site_links = page
            .links
            .iter()
            .filter(|l| l.url.site() == doc_url.site())
            .count();
        let fetched = Fetched {
            validators: res.validators.clone(),
            content_hash: Some(page.content_hash.clone()),
            hub: Some(same_site_links >= HUB_LINKS),
        };
        // A revisit that finds the same content under the same URL: nothing to index.
        if let Some(last) = &job.revisit
            && last.content_hash.as_deref() == Some(page.content_hash.as_str())
            && previous_doc
                .as_deref()
                .is_none_or(|d| d == doc_url.as_str())
            && !directives.noindex
        {
            let kept = doc_url.clone();
            return self
                .conclude(job, doc_url, Outcome::Unchanged, Some(&kept), Some(fetched))
                .await;
        }
        let duplicate_of = {
            let (primary, hash) = (job.url.clone(), page.content_hash.clone());
            self.frontier_io(move |f| f.check_content_hash(&primary, &hash))
                .await?
        };
        if let Some(other) = duplicate_of {
            tracing::debug!(url = %job.url, same_as = %other, "duplicate content");
            return self
                .conclude(job, doc_url, Outcome::Duplicate, None, Some(fetched))
                .await;
        }
        let links = if directives.nofollow {
            Vec::new()
        } else {
            let depth = job.depth + 1;
            if depth > self.inner.config.max_depth {
                Vec::new()
            } else {
                // Links outside the scope are dropped here, before anything is asked of
                // their hosts; the ones kept carry the scope on.
                let matcher = job.scope.as_ref().map(Scope::matcher);
                page.links
                    .iter()
                    .filter(|l| !l.nofollow)
                    .filter(|l| matcher.as_ref().is_none_or(|m| m.allows(&l.url, depth)))
                    .map(|l| Seed {
                        url: l.url.clone(),
                        depth,
                        anchor: (!l.anchor.is_empty()).then(|| l.anchor.clone()),
                        scope: job.scope.clone(),
                    })
                    .collect()
            }
        };
        let (outcome, page) = if directives.noindex {
            (Outcome::NoIndex, None)
        } else {
            (Outcome::Indexable, Some(page))
        };
        self.inner.counters.record(&job.url, &outcome);
        let kept = page.is_some().then(|| doc_url.clone());
        let removed = self.note_visit(&job, &outcome, kept.as_ref(), Some(fetched));
        let crawled = CrawledPage {
            url: job.url.clone(),
            final_url: doc_url,
            depth: job.depth,
            fetched_at: unix_now(),
            outcome,
            page,
            anchors: job.anchors.clone(),
            links,
            removed,
            revisit: job.revisit.is_some(),
        };
        if crawled.page.is_none() && crawled.links.is_empty() && crawled.removed.is_empty() {
            self.mark_done_now(&job.url).await?;
        }
        Ok(Step::Report(Box::new(crawled)))
    }

    /// Notes what the visit of `job` found (its next visit is scheduled from it when it is
    /// marked done) and returns the URLs whose documents it removes: on a revisit, the
    /// document it had, unless it is `kept` (still this page's, or another page's now).
    /// `fetched`: what the answer carried, when there was one.
    fn note_visit(
        &self,
        job: &Job,
        outcome: &Outcome,
        kept: Option<&NormalizedUrl>,
        fetched: Option<Fetched>,
    ) -> Vec<NormalizedUrl> {
        let prev = job.revisit.as_deref();
        let mut kind = match outcome {
            Outcome::Indexable => VisitKind::Changed,
            Outcome::NotModified | Outcome::Unchanged => VisitKind::Unchanged,
            Outcome::HttpError(404 | 410) => VisitKind::Gone,
            o if o.is_failure() => VisitKind::Failed,
            _ => VisitKind::Gone,
        };
        let failures = if kind == VisitKind::Failed {
            prev.map_or(0, |p| p.failures).saturating_add(1)
        } else {
            0
        };
        if failures >= DEAD_AFTER_FAILURES {
            tracing::debug!(url = %job.url, failures, "page failed too often: gone");
            kind = VisitKind::Gone;
        }
        let (validators, content_hash, hub) = match fetched {
            Some(f) => (f.validators, f.content_hash, f.hub),
            None => (Validators::default(), None, None),
        };
        let last = match kind {
            VisitKind::Changed => LastVisit {
                validators,
                content_hash,
                doc: kept.map(|u| u.to_string()),
                failures: 0,
                gone: false,
            },
            VisitKind::Unchanged => {
                let prev = prev.cloned().unwrap_or_default();
                LastVisit {
                    validators: Validators {
                        etag: validators.etag.or(prev.validators.etag),
                        last_modified: validators.last_modified.or(prev.validators.last_modified),
                    },
                    content_hash: content_hash.or(prev.content_hash),
                    doc: kept.map(|u| u.to_string()).or(prev.doc),
                    failures: 0,
                    gone: false,
                }
            }
            VisitKind::Failed => LastVisit {
                failures,
                ..prev.cloned().unwrap_or_default()
            },
            VisitKind::Gone => LastVisit {
                failures,
                gone: true,
                ..LastVisit::default()
            },
        };
        let mut removed = Vec::new();
        if let Some(prev) = prev
            && !prev.gone
            && matches!(kind, VisitKind::Changed | VisitKind::Gone)
        {
            let had = prev
                .doc
                .as_deref()
                .and_then(|d| crate::normalize::normalize(d, None).ok())
                .unwrap_or_else(|| job.url.clone());
            let mut candidates = vec![had];
            if kind == VisitKind::Gone && candidates[0] != job.url {
                candidates.push(job.url.clone());
            }
            removed = candidates.into_iter().filter(|u| Some(u) != kept).collect();
        }
        if prev.is_some() {
            self.inner
                .counters
                .record_revisit(outcome, !removed.is_empty());
        }
        self.inner.frontier.note_visit(
            &job.url,
            VisitNote {
                kind,
                last,
                hub: if kind == VisitKind::Gone {
                    Some(false)
                } else {
                    hub
                },
            },
        );
        removed
    }

    /// The gate of every redirect hop: the target must be inside the job's scope (at the
    /// job's depth: a redirect is the same document), and robots.txt of the target's host
    /// (same host or another) must allow it. The target host's rate and Crawl-delay are not
    /// consulted for this one request.
    async fn redirect_gate(
        &self,
        hop: NormalizedUrl,
        scope: Option<&Scope>,
        depth: u32,
    ) -> Result<()> {
        if let Some(scope) = scope
            && !scope.matcher().allows(&hop, depth)
        {
            tracing::debug!(url = %hop, "redirect target outside the crawl scope");
            return Err(Error::OutOfScope(hop.to_string()));
        }
        match self.inner.robots.check(&hop).await {
            RobotsVerdict::Allowed { .. } => Ok(()),
            RobotsVerdict::Disallowed => {
                tracing::debug!(url = %hop, "redirect target disallowed by robots.txt");
                Err(Error::RobotsDisallowed(hop.to_string()))
            }
            RobotsVerdict::Blocked(reason) => Err(Error::Blocked(reason)),
            RobotsVerdict::Unavailable { reason, .. } => Err(Error::RobotsUnavailable(reason)),
        }
    }

    async fn claim_alias(
        &self,
        primary: &NormalizedUrl,
        alias: &NormalizedUrl,
        reclaim: bool,
    ) -> Result<bool> {
        let (primary, alias) = (primary.clone(), alias.clone());
        self.frontier_io(move |f| f.claim_alias(&primary, &alias, reclaim))
            .await
    }

    async fn mark_done_now(&self, url: &NormalizedUrl) -> Result<()> {
        let url = url.clone();
        self.frontier_io(move |f| f.mark_done(&[url], unix_now()))
            .await
    }

    /// Reports a URL that carries no page and no links; it is marked done right away,
    /// unless a revisit removes documents (the node marks it once the removal is committed).
    async fn finish(&self, job: Job, outcome: Outcome) -> Result<Step> {
        let doc_url = job.url.clone();
        self.finish_doc(job, doc_url, outcome).await
    }

    async fn finish_doc(&self, job: Job, doc_url: NormalizedUrl, outcome: Outcome) -> Result<Step> {
        self.conclude(job, doc_url, outcome, None, None).await
    }

    /// [`Crawler::finish_doc`] with what stays indexed (`kept`) and what the answer carried.
    async fn conclude(
        &self,
        job: Job,
        doc_url: NormalizedUrl,
        outcome: Outcome,
        kept: Option<&NormalizedUrl>,
        fetched: Option<Fetched>,
    ) -> Result<Step> {
        self.inner.counters.record(&job.url, &outcome);
        let removed = self.note_visit(&job, &outcome, kept, fetched);
        if removed.is_empty() {
            self.mark_done_now(&job.url).await?;
        }
        Ok(Step::Report(Box::new(CrawledPage {
            revisit: job.revisit.is_some(),
            url: job.url,
            final_url: doc_url,
            depth: job.depth,
            fetched_at: unix_now(),
            outcome,
            page: None,
            anchors: job.anchors,
            links: Vec::new(),
            removed,
        })))
    }
}
