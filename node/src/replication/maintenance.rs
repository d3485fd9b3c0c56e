//! Replica maintenance and crawl hand-over. Every maintenance period each peer:
//! - continues the crawl of sites it became the primary of from their parked state (once its
//!   view of the network has settled);
//! - hands the crawl of sites in its frontier that another peer is now primary of to that
//!   peer ([`handover`](super::handover)), and shares the state of the sites it crawls with
//!   their replicas;
//! - for every site it holds documents of, compares a digest (count plus a hash of
//!   `(url, fetched_at)` pairs) with every other current owner and sends only what they lack
//!   or hold older; a site it no longer owns is dropped once every owner holds it.

use super::Replication;
use super::handover::{self, Outcome};
use crate::error::Result;
use crate::net::{self, wire};
use libp2p::PeerId;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// Documents read from the shard at a time during repair.
const REPAIR_READ: usize = 512;
/// Share the crawl state of a site with its replicas every this many rounds.
const SHARE_STATE_EVERY: u64 = 4;

/// A site's digest: its `(url, fetched_at)` pairs sorted by URL and their hash. A removed
/// page counts with its removal time (its tombstone), so the newest word on a URL wins.
#[derive(Debug, Clone, Default)]
pub struct SiteDigest {
    /// Sorted pairs.
    pub pairs: Vec<(String, i64)>,
    /// Hex SHA-256 over `url \t fetched_at \n` lines.
    pub hash: String,
    /// The URLs among `pairs` that are tombstones.
    pub tombstones: HashSet<String>,
}

/// The digest of a site's `(url, fetched_at)` pairs.
pub fn digest_of(mut pairs: Vec<(String, i64)>) -> SiteDigest {
    pairs.sort();
    let mut h = Sha256::new();
    for (u, t) in &pairs {
        h.update(u.as_bytes());
        h.update(b"\t");
        h.update(t.to_string().as_bytes());
        h.update(b"\n");
    }
    SiteDigest {
        pairs,
        hash: hex::encode(h.finalize()),
        tombstones: HashSet::new(),
    }
}

impl Replication {
    /// The maintenance loop, until `shutdown`.
    pub async fn run_maintenance(self, shutdown: CancellationToken) {
        let mut round: u64 = 0;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.inner.maintenance_every) => {}
                _ = shutdown.cancelled() => return,
            }
            round += 1;
            if let Err(e) = self.tick(round, &shutdown).await {
                warn!(error = %e, "maintenance round failed");
            }
        }
    }

    /// The digest of the local documents of `site` and of its tombstones (a tombstone newer
    /// than the document of its URL stands in its place).
    pub(super) async fn local_digest(&self, site: &str) -> Result<SiteDigest> {
        let mut pairs: HashMap<String, i64> = self
            .inner
            .indexing
            .site_digest(site)
            .await?
            .into_iter()
            .collect();
        let mut tombstones = HashSet::new();
        for (url, at) in self.inner.tombstones.of_site(site).await? {
            if pairs.get(&url).is_none_or(|fetched| *fetched <= at) {
                pairs.insert(url.clone(), at);
                tombstones.insert(url);
            }
        }
        let mut digest = digest_of(pairs.into_iter().collect());
        digest.tombstones = tombstones;
        Ok(digest)
    }

    async fn tick(&self, round: u64, shutdown: &CancellationToken) -> Result<()> {
        let me = self.inner.me;
        let placement = self.placement().await;
        let crawler = &self.inner.crawler;

        // Parked crawl states of sites this peer is now the primary of: continue their crawl
        // (not before this peer's view of the network has settled after its start).
        if self.is_settled() {
            for site in self.inner.parked.sites().await? {
                if placement.is_primary(&site) {
                    self.import_parked(&site).await;
                }
            }
        }

        // The frontier: hand the crawl of sites owned elsewhere to their primary; share the
        // state of sites this peer crawls with their replicas.
        for site in crawler.frontier_sites().await? {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            let owners = placement.owners(&site);
            let primary = placement.primary(&site);
            if primary != me {
                // No wait here: a site with fetches in flight is looked at again next round.
                let out = handover::hand_over(crawler, &site, Duration::ZERO, |state| {
                    self.send_state(primary, state)
                })
                .await;
                match out {
                    Ok(Outcome::HandedOver) => {
                        info!(site, to = %primary, "crawl handed over to the new primary");
                    }
                    Ok(_) => {}
                    Err(e) => warn!(site, error = %e, "crawl hand-over failed"),
                }
            } else if crawler.is_crawlable(&site) && round.is_multiple_of(SHARE_STATE_EVERY) {
                // This peer crawls the site (the claim loop releases a site it is the primary
                // of once no other owner crawls it).
                if let Ok(state) = crawler.export_site_state(&site).await {
                    for o in owners.iter().skip(1) {
                        self.send_state(*o, state.clone()).await;
                    }
                }
            }
        }

        // Sites whose crawl is complete but whose pages this peer revisits: another primary
        // takes the revisits over (the same hand-over; its state carries the done URLs).
        for site in crawler.revisit_sites() {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            let primary = placement.primary(&site);
            if primary == me || !crawler.is_crawlable(&site) {
                continue;
            }
            let out = handover::hand_over(crawler, &site, Duration::ZERO, |state| {
                self.send_state(primary, state)
            })
            .await;
            match out {
                Ok(Outcome::HandedOver) => {
                    info!(site, to = %primary, "revisits handed over to the new primary");
                }
                Ok(_) => {}
                Err(e) => warn!(site, error = %e, "revisit hand-over failed"),
            }
        }

        // Documents: bring every owner up to date; drop what this peer no longer owns once the
        // owners hold it.
        for (site, _count) in self.inner.indexing.sites().await? {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            let owners = placement.owners(&site);
            let i_own = placement.is_owner(&site);
            if i_own && owners.len() == 1 {
                continue;
            }
            let local = self.local_digest(&site).await?;
            let mut all_hold = true;
            for o in owners.iter().filter(|o| **o != me) {
                match self.sync_site(*o, &site, &local).await {
                    Ok(true) => {}
                    Ok(false) => all_hold = false,
                    Err(e) => {
                        debug!(peer = %o, site, error = %e, "replica sync failed");
                        all_hold = false;
                    }
                }
            }
            if !i_own && all_hold && !owners.is_empty() {
                let urls: Vec<String> = local.pairs.into_iter().map(|(u, _)| u).collect();
                info!(
                    site,
                    docs = urls.len(),
                    "dropping a site now held by its owners"
                );
                if let Err(e) = self.inner.indexing.store_replicas(Vec::new(), urls).await {
                    warn!(site, error = %e, "cannot drop site");
                }
                self.drop_parked(&site).await;
            }
        }
        Ok(())
    }

    /// Bring `peer` up to date with the local documents of `site`. `Ok(true)` when, after
    /// this call, the peer is known to hold every local document (at the same or a newer
    /// fetch).
    async fn sync_site(
        &self,
        peer: PeerId,
        site: &str,
        local: &SiteDigest,
    ) -> std::result::Result<bool, net::Error> {
        let net = &self.inner.net;
        let quick = net
            .digest(
                peer,
                wire::DigestRequest {
                    site: site.to_string(),
                    list_urls: false,
                },
            )
            .await?;
        if quick.count == local.pairs.len() as u64 && quick.hash == local.hash {
            return Ok(true);
        }
        let full = net
            .digest(
                peer,
                wire::DigestRequest {
                    site: site.to_string(),
                    list_urls: true,
                },
            )
            .await?;
        let theirs: HashMap<String, i64> = full.urls.unwrap_or_default().into_iter().collect();
        let missing: Vec<String> = local
            .pairs
            .iter()
            .filter(|(u, t)| theirs.get(u).is_none_or(|their| their < t))
            .map(|(u, _)| u.clone())
            .collect();
        if missing.is_empty() {
            return Ok(true);
        }
        debug!(peer = %peer, site, missing = missing.len(), "repairing replica");
        let (removed, missing): (Vec<String>, Vec<String>) = missing
            .into_iter()
            .partition(|u| local.tombstones.contains(u));
        if !removed.is_empty() {
            let at: HashMap<&str, i64> =
                local.pairs.iter().map(|(u, t)| (u.as_str(), *t)).collect();
            let tombstones = removed
                .iter()
                .map(|u| (u.clone(), at.get(u.as_str()).copied().unwrap_or(0)))
                .collect();
            net.replicate(
                peer,
                wire::ReplicateRequest {
                    site: site.to_string(),
                    tombstones,
                    ..Default::default()
                },
            )
            .await?;
        }
        for chunk in missing.chunks(REPAIR_READ) {
            let docs = self
                .inner
                .indexing
                .docs(chunk.to_vec())
                .await
                .unwrap_or_default();
            for batch in super::size_batches(docs) {
                net.replicate(
                    peer,
                    wire::ReplicateRequest {
                        site: site.to_string(),
                        docs: batch,
                        ..Default::default()
                    },
                )
                .await?;
            }
        }
        Ok(true)
    }

    /// Send a crawl state to `peer`; whether it was stored.
    async fn send_state(&self, peer: PeerId, state: peersearch_crawler::SiteState) -> bool {
        let req = wire::ReplicateRequest {
            site: state.site.clone(),
            site_state: Some(state),
            ..Default::default()
        };
        self.inner.net.replicate(peer, req).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_ignores_order_and_sees_fetch_times() {
        let a = digest_of(vec![("u2".into(), 2), ("u1".into(), 1)]);
        let b = digest_of(vec![("u1".into(), 1), ("u2".into(), 2)]);
        assert_eq!(a.hash, b.hash);
        let c = digest_of(vec![("u1".into(), 1), ("u2".into(), 3)]);
        assert_ne!(a.hash, c.hash, "a newer fetch changes the digest");
    }
}
