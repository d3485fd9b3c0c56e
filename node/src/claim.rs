//! Claims: before a peer crawls a site, it makes sure no other peer does.
//!
//! Ownership is computed over each peer's own view of the network, and views differ for a
//! while whenever peers come and go: a peer back from a crash still has its old queue, a new
//! peer receives hand-offs for sites another peer is crawling, a replica that saw the
//! primary die continues from the state it parked. Crawling at once would fetch pages twice.
//! So a peer of a network crawls a site only once it has *claimed* it: it asks the other
//! owners in its view; each one that crawls the site stops (after its fetches in flight are
//! committed), forgets its queue and answers with its crawl state, parked state and parked
//! links included; the claimant merges every answer, then releases the site to its crawler.
//! XOR distance decides who yields, so two peers never both win a claim.

use crate::net::wire;
use crate::ownership::{self, SiteKey};
use crate::peer::Node;
use libp2p::PeerId;
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// How often the claim loop looks for sites to claim.
const CLAIM_EVERY: Duration = Duration::from_millis(300);
/// A starting peer's view counts as settled once its live peer set held still this long.
const SETTLE_AFTER: Duration = Duration::from_millis(1_500);
/// How long a yielding peer waits for its fetches of the site to be committed.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The claim loop: claims the sites of the frontier this peer is the primary of and has not
/// released yet.
pub async fn run(node: Arc<Node>, shutdown: CancellationToken) {
    let started = Instant::now();
    let mut last_view: Vec<PeerId> = Vec::new();
    let mut view_since = Instant::now();
    let in_progress: Arc<Mutex<HashSet<String>>> = Arc::default();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(CLAIM_EVERY) => {}
            _ = shutdown.cancelled() => return,
        }
        let Ok(view) = node.net().live_peers().await else {
            continue;
        };
        if !node.is_settled() {
            if view != last_view {
                last_view = view;
                view_since = Instant::now();
                continue;
            }
            if started.elapsed() < SETTLE_AFTER || view_since.elapsed() < SETTLE_AFTER {
                continue;
            }
            debug!(peers = view.len(), "view of the network settled");
            node.settled.store(true, Ordering::Relaxed);
        }
        let Ok(sites) = node.crawler().frontier_sites().await else {
            continue;
        };
        for site in sites {
            if node.crawler().is_crawlable(&site) {
                continue;
            }
            // The owners, and as many peers again: a peer that crawls the site by a stale
            // view of the network is near it, if not among the owners this peer sees.
            let owners = ownership::owners(
                &SiteKey::of(&site),
                node.peer_id(),
                &view,
                2 * node.replication(),
            );
            if owners.first() != Some(&node.peer_id()) {
                // Another peer is the primary: maintenance hands the crawl over.
                continue;
            }
            if !in_progress
                .lock()
                .map(|mut s| s.insert(site.clone()))
                .unwrap_or(false)
            {
                continue;
            }
            let node = node.clone();
            let in_progress = in_progress.clone();
            tokio::spawn(async move {
                claim(&node, &site, &owners[1..]).await;
                if let Ok(mut s) = in_progress.lock() {
                    s.remove(&site);
                }
            });
        }
    }
}

/// Ask `others` to yield `site`, merge what they answer, and release the site to the crawler
/// when every one of them answered or is gone.
async fn claim(node: &Arc<Node>, site: &str, others: &[PeerId]) {
    for o in others {
        let req = wire::ReplicateRequest {
            site: site.to_string(),
            claim: true,
            ..Default::default()
        };
        match node.net().replicate(*o, req).await {
            Ok(resp) => {
                if let Some(bytes) = resp.site_state
                    && let Err(e) = node.import_state_bytes(&bytes).await
                {
                    warn!(site, peer = %o, error = %e, "cannot merge a claimed crawl state");
                    return;
                }
            }
            Err(e) => {
                let alive = node.net().live_peers().await.is_ok_and(|p| p.contains(o));
                if alive {
                    // It may still be crawling the site: try again later.
                    debug!(site, peer = %o, error = %e, "claim not answered; will retry");
                    return;
                }
            }
        }
    }
    // Ownership may have moved while the claim ran.
    if node.owners_of(site).await.first() == Some(&node.peer_id()) {
        info!(site, "crawling site (no other owner crawls it)");
        node.crawler().resume_site(site);
    }
}

/// Answer a claim from `from`: yield the site if `from` is closer to it than this peer.
pub async fn on_claim(node: &Arc<Node>, from: PeerId, site: &str) -> Result<Vec<u8>, String> {
    let key = SiteKey::of(site);
    if ownership::owners(&key, node.peer_id(), &[from], 1).first() != Some(&from) {
        return Err("this peer is closer to the site".into());
    }
    let crawler = node.crawler();
    let crawling = crawler
        .frontier_sites()
        .await
        .map_err(|e| e.to_string())?
        .iter()
        .any(|s| s == site);
    if crawling {
        crawler.pause_site(site);
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while crawler.site_in_flight(site) > 0 {
            if Instant::now() > deadline {
                return Err("fetches of the site still in flight".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let mut state = crawler
        .export_site_state(site)
        .await
        .map_err(|e| e.to_string())?;
    if crawling {
        crawler.forget_site(site).await.map_err(|e| e.to_string())?;
        info!(site, to = %from, "crawl yielded to a closer peer");
    }
    // What this peer parked of the site (it is a replica) counts too.
    let parked = node.parked_state(site);
    state.queued.extend(parked.queued);
    state.done.extend(parked.done);
    serde_json::to_vec(&state).map_err(|e| e.to_string())
}
