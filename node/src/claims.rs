//! Claims: before a peer crawls a site, it makes sure no other peer does.
//!
//! Ownership is computed over each peer's own view of the network, and views differ for a
//! while whenever peers come and go: a peer back from a crash still has its old queue, a new
//! peer receives hand-offs for sites another peer is crawling, a replica that saw the
//! primary die continues from the state it parked. Crawling at once would fetch pages twice.
//! So a peer of a network crawls a site only once it has *claimed* it
//! (`/peersearch/claim/1.0.0`): it asks the other owners in its view, and as many peers again;
//! each one that crawls the site hands it over (the [`handover`] sequence) and answers with its
//! crawl state, parked state and parked links included; the claimant merges every answer, then
//! releases the site to its crawler. XOR distance decides who yields, so two peers never both
//! win a claim.

use crate::error::{Error, Result};
use crate::net::{self, wire};
use crate::replication::Replication;
use crate::replication::handover::{self, Outcome};
use crate::routing::{Placement, Routing};
use libp2p::PeerId;
use peersearch_crawler::{Crawler, SiteState};
use std::collections::HashSet;
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

/// The peers to claim `site` from, by `placement`: `None` when this peer is not the site's
/// primary (maintenance hands the crawl over then); otherwise the other owners and as many
/// peers again (a peer that crawls the site by a stale view of the network is near it, if not
/// among the owners this peer sees).
pub fn claim_targets(placement: &Placement, site: &str) -> Option<Vec<PeerId>> {
    let near = placement.closest(site, 2 * placement.replication());
    (near.first() == Some(&placement.me())).then(|| near[1..].to_vec())
}

/// Whether this peer (`me`) must yield `site` to the claimant `from`: only to a peer closer to
/// the site than itself.
pub fn yields_to(me: PeerId, from: PeerId, site: &str) -> bool {
    Placement::new(me, vec![from], 1).primary(site) == from
}

/// The claims component.
#[derive(Clone)]
pub struct Claims {
    net: net::Client,
    crawler: Crawler,
    routing: Routing,
    replication: Replication,
    /// Cancelled when the peer starts stopping: it then yields nothing and claims nothing.
    stopping: CancellationToken,
}

impl std::fmt::Debug for Claims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claims").finish_non_exhaustive()
    }
}

impl Claims {
    /// Claims over the given components; `stopping` ends them.
    pub fn new(
        net: net::Client,
        crawler: Crawler,
        routing: Routing,
        replication: Replication,
        stopping: CancellationToken,
    ) -> Claims {
        Claims {
            net,
            crawler,
            routing,
            replication,
            stopping,
        }
    }

    /// The claim loop: claims the sites this peer is the primary of and has not released yet
    /// (sites of its frontier, and sites whose pages it revisits).
    pub async fn run(self) {
        let started = Instant::now();
        let mut last_view: Vec<PeerId> = Vec::new();
        let mut view_since = Instant::now();
        let in_progress: Arc<Mutex<HashSet<String>>> = Arc::default();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(CLAIM_EVERY) => {}
                _ = self.stopping.cancelled() => return,
            }
            let placement = self.routing.placement().await;
            if !self.replication.is_settled() {
                let view = placement.peers().to_vec();
                if view != last_view {
                    last_view = view;
                    view_since = Instant::now();
                    continue;
                }
                if started.elapsed() < SETTLE_AFTER || view_since.elapsed() < SETTLE_AFTER {
                    continue;
                }
                debug!(peers = last_view.len(), "view of the network settled");
                self.replication.set_settled();
            }
            let Ok(mut sites) = self.crawler.frontier_sites().await else {
                continue;
            };
            // A site whose crawl is complete is claimed too: its pages are revisited.
            sites.extend(self.crawler.revisit_sites());
            sites.sort();
            sites.dedup();
            for site in sites {
                if self.crawler.is_crawlable(&site) {
                    continue;
                }
                let Some(others) = claim_targets(&placement, &site) else {
                    continue;
                };
                if !in_progress
                    .lock()
                    .map(|mut s| s.insert(site.clone()))
                    .unwrap_or(false)
                {
                    continue;
                }
                let this = self.clone();
                let in_progress = in_progress.clone();
                tokio::spawn(async move {
                    this.claim(&site, &others).await;
                    if let Ok(mut s) = in_progress.lock() {
                        s.remove(&site);
                    }
                });
            }
        }
    }

    /// Ask `others` to yield `site`, merge what they answer, and release the site to the
    /// crawler when every one of them answered or is gone.
    async fn claim(&self, site: &str, others: &[PeerId]) {
        for o in others {
            if self.stopping.is_cancelled() {
                return;
            }
            let req = wire::ClaimRequest {
                site: site.to_string(),
            };
            match self.net.claim(*o, req).await {
                Ok(resp) => {
                    if let Err(e) = self.replication.import_state(resp.state).await {
                        warn!(site, peer = %o, error = %e, "cannot merge a claimed crawl state");
                        return;
                    }
                }
                Err(e) => {
                    let alive = self.net.live_peers().await.is_ok_and(|p| p.contains(o));
                    if alive {
                        // It may still be crawling the site: try again later.
                        debug!(site, peer = %o, error = %e, "claim not answered; will retry");
                        return;
                    }
                }
            }
        }
        // Ownership may have moved while the claim ran.
        if !self.stopping.is_cancelled() && self.routing.placement().await.is_primary(site) {
            info!(site, "crawling site (no other owner crawls it)");
            self.crawler.resume_site(site);
        }
    }

    /// Answer a claim from `from`: yield the site if `from` is closer to it than this peer.
    pub async fn on_claim(
        &self,
        from: PeerId,
        request: wire::ClaimRequest,
        reply: net::Responder<wire::ClaimResponse>,
    ) {
        if let Err(e) = self.yield_site(from, &request.site, reply).await {
            debug!(site = request.site, peer = %from, error = %e, "claim refused");
        }
    }

    async fn yield_site(
        &self,
        from: PeerId,
        site: &str,
        reply: net::Responder<wire::ClaimResponse>,
    ) -> Result<()> {
        let refuse = |reply: net::Responder<wire::ClaimResponse>, e: Error| {
            let _ = reply.fail(e.to_string());
            Err(e)
        };
        if self.stopping.is_cancelled() {
            return refuse(reply, Error::ShuttingDown);
        }
        if !yields_to(self.net.local_peer_id(), from, site) {
            return refuse(
                reply,
                Error::Refused("this peer is closer to the site".into()),
            );
        }
        // What this peer parked of the site (it is a replica) counts too.
        let parked = self.replication.parked_state(site).await;
        let answer = |mut state: SiteState| {
            state.queued.extend(parked.queued);
            state.done.extend(parked.done);
            wire::ClaimResponse { state }
        };
        // Always the whole hand-over, even when no URL of the site is queued here: a site
        // whose last queued URL is in flight still counts as released, and its fetch would
        // queue new links that this peer then crawled beside the claimant. The hand-over
        // waits for those fetches and un-releases the site.
        let was_crawling = self.crawler.is_crawlable(site);
        let mut reply = Some(reply);
        let out = handover::hand_over(&self.crawler, site, DRAIN_TIMEOUT, |state| {
            let sent = reply.take().map(|r| r.send(answer(state)).is_ok());
            std::future::ready(sent.unwrap_or(false))
        })
        .await;
        match out {
            Ok(Outcome::HandedOver) => {
                if was_crawling {
                    info!(site, to = %from, "crawl yielded to a closer peer");
                } else {
                    debug!(site, to = %from, "crawl state handed to a closer peer");
                }
                Ok(())
            }
            Ok(Outcome::InFlight(_)) | Ok(Outcome::NotDelivered) => match reply.take() {
                Some(r) => refuse(
                    r,
                    Error::Refused("fetches of the site still in flight".into()),
                ),
                None => Ok(()),
            },
            Err(e) => match reply.take() {
                Some(r) => refuse(r, e),
                None => Err(e),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn of_two_peers_exactly_one_yields_to_the_other() {
        for i in 0..50 {
            let (a, b) = (PeerId::random(), PeerId::random());
            let site = format!("site{i}.example");
            assert_ne!(yields_to(a, b, &site), yields_to(b, a, &site), "site {i}");
        }
    }

    #[test]
    fn only_the_primary_claims_and_asks_twice_the_owners() {
        let all: Vec<PeerId> = (0..8).map(|_| PeerId::random()).collect();
        for i in 0..20 {
            let site = format!("site{i}.example");
            let claimants: Vec<(PeerId, Vec<PeerId>)> = all
                .iter()
                .filter_map(|me| {
                    let others = all.iter().copied().filter(|p| p != me).collect();
                    let p = Placement::new(*me, others, 3);
                    claim_targets(&p, &site).map(|t| (*me, t))
                })
                .collect();
            assert_eq!(claimants.len(), 1, "one claimant for site {i}");
            let (me, targets) = &claimants[0];
            assert_eq!(targets.len(), 5, "2R peers minus itself");
            assert!(!targets.contains(me));
            assert!(
                targets.iter().all(|t| yields_to(*t, *me, &site)),
                "every target yields"
            );
        }
    }
}
