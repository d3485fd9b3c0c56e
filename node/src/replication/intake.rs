//! Replica intake: documents from another owner are stored through the index loop and
//! acknowledged after their commit; the crawl progress that rides with them is enqueued when
//! this peer is the site's primary and parked otherwise.

use super::Replication;
use super::screen::{Screened, screen};
use crate::error::{Error, Result};
use crate::link::Link;
use crate::net::{self, wire};
use libp2p::PeerId;
use peersearch_crawler::{NormalizedUrl, Seed, SiteState};
use tracing::{debug, warn};

impl Replication {
    /// Answer a replication request: store documents (acknowledged after commit), crawled
    /// URLs and links, and a shared crawl state (imported as the primary, parked otherwise).
    pub async fn on_replicate(
        &self,
        from: PeerId,
        request: wire::ReplicateRequest,
        reply: net::Responder<wire::ReplicateResponse>,
    ) {
        match self.intake(from, request).await {
            Ok(stored) => {
                let _ = reply.send(wire::ReplicateResponse { stored });
            }
            Err(e) => {
                let _ = reply.fail(e.to_string());
            }
        }
    }

    async fn intake(&self, from: PeerId, request: wire::ReplicateRequest) -> Result<u32> {
        let placement = self.placement().await.with_peer(from);
        let now = i64::try_from(crate::clock::now_unix()).unwrap_or(i64::MAX);
        let request = match screen(request, from, &placement, now) {
            Screened::Take { request, forged } => {
                if forged {
                    warn!(peer = %from, site = request.site, "forged documents in a replica batch");
                    let _ = self.inner.net.report_misbehaviour(from).await;
                }
                *request
            }
            Screened::Refuse { why, forged } => {
                if forged {
                    warn!(peer = %from, why, "forged replica batch");
                    let _ = self.inner.net.report_misbehaviour(from).await;
                } else {
                    debug!(peer = %from, why, "replica batch refused");
                }
                return Err(Error::Refused(why));
            }
        };
        let mut stored = 0;
        // The votes first: they only add (a merge is a set union), so a message seen twice
        // or from several owners changes nothing more.
        let site = request.site.as_str();
        let anchors: Vec<_> = request
            .anchors
            .into_iter()
            .filter(|(url, _)| {
                peersearch_crawler::normalize(url, None).is_ok_and(|u| u.site() == site)
            })
            .collect();
        self.inner.anchors.merge(anchors).await?;
        let tombstones = &self.inner.tombstones;
        let mut docs = request.docs;
        let mut deletes = request.deletes;
        // A copy fetched before its page was removed is stale: a removal is never undone.
        let stale = tombstones
            .stale(
                docs.iter()
                    .map(|d| (site.to_string(), d.url.clone(), d.fetched_at))
                    .collect(),
            )
            .await?;
        if !stale.is_empty() {
            debug!(peer = %from, site, stale = stale.len(), "replica documents older than their removal");
            docs.retain(|d| !stale.contains(&d.url));
        }
        // Removals: the primary's are applied; another owner's (repair after a change of
        // primary) make this peer, when it is the primary, fetch the pages again to see.
        let mut removals = Vec::new();
        if !request.tombstones.is_empty() {
            let placement = self.placement().await.with_peer(from);
            if placement.primary(site) == from {
                deletes.extend(request.tombstones.iter().map(|(u, _)| u.clone()));
                removals = request.tombstones;
            } else if placement.is_primary(site) {
                let urls: Vec<NormalizedUrl> = request
                    .tombstones
                    .iter()
                    .filter_map(|(u, _)| peersearch_crawler::normalize(u, None).ok())
                    .collect();
                let soon = self.inner.crawler.revisit_soon(urls).await?;
                debug!(peer = %from, site, soon, "another owner says pages went away: revisiting");
            }
        }
        if !docs.is_empty() || !deletes.is_empty() {
            let written: Vec<_> = docs
                .iter()
                .map(|d| (site.to_string(), d.url.clone(), d.fetched_at))
                .collect();
            stored = self.inner.indexing.store_replicas(docs, deletes).await?;
            tombstones.clear_older(written).await?;
        }
        let removals = removals
            .into_iter()
            .map(|(u, at)| (site.to_string(), u, at))
            .collect();
        tombstones.record(removals).await?;
        if !request.crawled.is_empty() || !request.links.is_empty() {
            self.accept_crawl_progress(from, &request.site, request.crawled, request.links)
                .await?;
        }
        if let Some(state) = request.site_state {
            self.accept_state(from, request.site, state).await?;
        }
        Ok(stored)
    }

    /// A crawl state shared by `from`: imported when this peer is the site's primary (counting
    /// `from` as live), parked otherwise.
    async fn accept_state(&self, from: PeerId, site: String, mut state: SiteState) -> Result<()> {
        // The state is the message's site's, whatever it says.
        state.site = site;
        let placement = self.placement().await.with_peer(from);
        if placement.is_primary(&state.site) {
            self.import_state(state).await
        } else {
            Ok(self.inner.parked.put(state).await?)
        }
    }

    /// Keep (or, as the primary, enqueue) same-site links and crawled URLs replicated with
    /// a site's documents.
    async fn accept_crawl_progress(
        &self,
        from: PeerId,
        site: &str,
        crawled: Vec<String>,
        links: Vec<Link>,
    ) -> Result<()> {
        let crawled: Vec<NormalizedUrl> = crawled
            .iter()
            .filter_map(|u| peersearch_crawler::normalize(u, None).ok())
            .filter(|u| u.site() == site)
            .collect();
        if !crawled.is_empty() {
            self.inner.crawler.mark_committed(&crawled).await?;
        }
        if links.is_empty() {
            return Ok(());
        }
        let placement = self.placement().await.with_peer(from);
        if placement.is_primary(site) {
            let seeds: Vec<Seed> = links.iter().filter_map(|l| l.to_seed_of(site)).collect();
            self.inner.crawler.enqueue(seeds).await?;
            Ok(())
        } else {
            Ok(self.inner.parked.add_links(site, links).await?)
        }
    }

    /// Answer a digest request from the local shard.
    pub async fn on_digest(
        &self,
        request: wire::DigestRequest,
        reply: net::Responder<wire::DigestResponse>,
    ) {
        match self.local_digest(&request.site).await {
            Ok(d) => {
                let _ = reply.send(wire::DigestResponse {
                    count: d.pairs.len() as u64,
                    hash: d.hash,
                    urls: request.list_urls.then_some(d.pairs),
                });
            }
            Err(e) => {
                let _ = reply.fail(e.to_string());
            }
        }
    }
}
