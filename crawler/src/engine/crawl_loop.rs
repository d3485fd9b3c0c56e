//! The crawl loop: takes jobs from the frontier as global fetch slots and hosts free
//! up, and runs each one as a task ([`super::worker`]).

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{CrawledPage, Crawler};
use crate::frontier::NextJob;
use crate::util::now;

/// How often idle per-host state is pruned.
const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

/// Longest sleep of the idle loop before it looks again (wake-ups normally come
/// from [`tokio::sync::Notify`]; this only bounds a missed one).
const IDLE_POLL: Duration = Duration::from_secs(1);

impl Crawler {
    /// Runs the crawl loop until `shutdown` fires (or `out` is closed), sending one
    /// [`CrawledPage`] per URL crawled. When it returns, no fetch is running; URLs
    /// that were interrupted are back in the frontier. Only one loop runs at a time:
    /// a second call returns at once.
    pub async fn run(&self, out: mpsc::Sender<CrawledPage>, shutdown: CancellationToken) {
        if self.inner.running.swap(true, Ordering::SeqCst) {
            tracing::warn!("crawl loop already running");
            return;
        }
        tracing::info!(
            frontier = self.inner.frontier.frontier_size(),
            "crawl loop started"
        );
        let mut tasks: JoinSet<()> = JoinSet::new();
        let mut last_prune = now();
        // Tasks stop on this one, which also fires when the loop ends for another
        // reason (output closed), so interrupted jobs always go back to the frontier.
        let stop = shutdown.child_token();
        loop {
            while let Some(done) = tasks.try_join_next() {
                if let Err(e) = done {
                    tracing::error!(error = %e, "crawl task failed");
                }
            }
            if now().duration_since(last_prune) >= PRUNE_INTERVAL {
                self.inner.politeness.prune();
                last_prune = now();
            }
            if out.is_closed() {
                tracing::warn!("crawl output closed, stopping");
                break;
            }
            let permit = tokio::select! {
                p = self.inner.politeness.global_permit() => p,
                _ = shutdown.cancelled() => break,
            };
            let next = if self.budget_exhausted() {
                Ok(NextJob::Wait(None))
            } else {
                let politeness = self.inner.politeness.clone();
                self.frontier_io(move |f| f.next_job(|site| politeness.try_acquire(site)))
                    .await
            };
            let wait = match next {
                Ok(NextJob::Job(job, host)) => {
                    self.inner.fetch_budget_used.fetch_add(1, Ordering::SeqCst);
                    let this = self.clone();
                    let (out, stop) = (out.clone(), stop.clone());
                    tasks.spawn(async move {
                        this.process(job, host, permit, out, stop).await;
                    });
                    continue;
                }
                Ok(NextJob::Wait(wait)) => wait.unwrap_or(IDLE_POLL).min(IDLE_POLL),
                Ok(NextJob::Empty) => IDLE_POLL,
                Err(e) => {
                    tracing::error!(error = %e, "frontier read failed");
                    IDLE_POLL
                }
            };
            drop(permit);
            tokio::select! {
                _ = self.inner.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.cancelled() => break,
            }
        }
        // Tasks put their jobs back when stopped; wait for them.
        stop.cancel();
        while let Some(done) = tasks.join_next().await {
            if let Err(e) = done {
                tracing::error!(error = %e, "crawl task failed");
            }
        }
        self.inner.running.store(false, Ordering::SeqCst);
        tracing::info!("crawl loop stopped");
    }
}
