//! Replication (DESIGN.md, "Who crawls what"): the other owners of a site hold its documents
//! and its crawl progress, so whoever becomes its primary continues the crawl.
//!
//! - [`out`](Replication::run_out): every committed batch goes to the other owners of its
//!   sites, with the URLs it crawled and the same-site links it found;
//! - intake ([`Replication::on_replicate`], [`Replication::on_digest`]): replicas are stored
//!   through the index loop and acknowledged after their commit; crawl progress is parked, or
//!   enqueued by the primary;
//! - maintenance ([`Replication::run_maintenance`]): digests and repair, dropping sites no
//!   longer owned once their owners hold them, sharing and handing over crawl states;
//! - [`handover`]: the one sequence that hands a site's crawl to another peer (pause, wait
//!   for the fetches in flight, export, deliver, forget), used by maintenance and claims.

pub mod handover;
mod intake;
mod maintenance;
mod out;
mod screen;

pub use out::size_batches;

use crate::anchors::Anchors;
use crate::error::Result;
use crate::indexing::Indexing;
use crate::net;
use crate::routing::{Placement, Routing};
use crate::store::Parked;
use crate::tombstones::Tombstones;
use libp2p::PeerId;
use peersearch_crawler::{Crawler, SiteState};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tracing::{info, warn};

/// The replication component: a cloneable handle.
#[derive(Clone)]
pub struct Replication {
    inner: Arc<Inner>,
}

struct Inner {
    me: PeerId,
    net: net::Client,
    crawler: Crawler,
    indexing: Indexing,
    parked: Parked,
    tombstones: Tombstones,
    anchors: Anchors,
    routing: Routing,
    maintenance_every: Duration,
    /// Whether this peer's view of the network has settled since it started (the claim loop
    /// decides); until then it makes no decision as a site's primary.
    settled: AtomicBool,
}

impl std::fmt::Debug for Replication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replication").finish_non_exhaustive()
    }
}

impl Replication {
    /// Replication over the given components; maintenance runs every `maintenance_every`.
    pub fn new(
        net: net::Client,
        crawler: Crawler,
        indexing: Indexing,
        parked: Parked,
        anchors: Anchors,
        routing: Routing,
        maintenance_every: Duration,
    ) -> Replication {
        Replication {
            inner: Arc::new(Inner {
                me: net.local_peer_id(),
                net,
                crawler,
                indexing,
                tombstones: parked.tombstones(),
                parked,
                anchors,
                routing,
                maintenance_every,
                settled: AtomicBool::new(false),
            }),
        }
    }

    /// Whether this peer's view of the network has settled since it started.
    pub fn is_settled(&self) -> bool {
        self.inner.settled.load(Ordering::Relaxed)
    }

    /// Record that this peer's view of the network has settled.
    pub fn set_settled(&self) {
        self.inner.settled.store(true, Ordering::Relaxed);
    }

    async fn placement(&self) -> Placement {
        self.inner.routing.placement().await
    }

    /// What this peer parked of a site's crawl (empty when nothing, or when unreadable).
    pub async fn parked_state(&self, site: &str) -> SiteState {
        self.inner.parked.state(site).await.unwrap_or_else(|e| {
            warn!(site, error = %e, "cannot read parked crawl state");
            SiteState::empty(site)
        })
    }

    /// Forget a parked state.
    async fn drop_parked(&self, site: &str) {
        if let Err(e) = self.inner.parked.remove(site).await {
            warn!(site, error = %e, "cannot forget parked crawl state");
        }
    }

    /// Queue the crawl of a site from its parked state and links (this peer became its
    /// primary; the claim loop releases it once no other owner crawls it).
    async fn import_parked(&self, site: &str) {
        let state = self.parked_state(site).await;
        match self.inner.crawler.import_site_state(state).await {
            Ok(n) => {
                info!(
                    site,
                    queued = n,
                    "continuing the crawl of a site from its shared state"
                );
                self.drop_parked(site).await;
            }
            Err(e) => warn!(site, error = %e, "cannot import crawl state"),
        }
    }

    /// Import a crawl state sent by another owner into the crawler.
    pub async fn import_state(&self, state: SiteState) -> Result<()> {
        self.inner.crawler.import_site_state(state).await?;
        Ok(())
    }
}
