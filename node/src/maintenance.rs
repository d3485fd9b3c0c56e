//! Replica maintenance and crawl hand-over (DESIGN.md, "Who crawls what").
//!
//! Every [`MAINTENANCE_EVERY`] each peer walks the sites it holds documents of:
//! - for a site it owns, it compares a digest (count plus a hash of `(url, fetched_at)` pairs)
//!   with every other current owner and sends only the documents they lack or hold older;
//! - for a site it no longer owns, it does the same, and once every current owner confirms it
//!   holds everything, it drops the site (never before);
//! - the primary of a site shares the site's crawl state (queued and done URLs) with the other
//!   owners, who park it; a peer that finds it became the primary of a site imports the parked
//!   state and continues the crawl without fetching again what is already indexed;
//! - a peer whose frontier holds URLs of a site it is no longer primary of hands the crawl
//!   state to the new primary and forgets the queue.

use crate::net::{self, wire};
use crate::ownership::{self, SiteKey};
use crate::peer::Node;
use libp2p::PeerId;
use peersearch_indexer::Document;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// Default period of a maintenance round (`PEERSEARCH_MAINTENANCE_MS` overrides it, for tests
/// that want churn to settle quickly).
pub const MAINTENANCE_EVERY: Duration = Duration::from_secs(5);
/// Most URLs accepted from one hand-off message.
pub const MAX_HANDOFF_URLS: usize = 5_000;
/// Documents read from the shard at a time during repair.
const REPAIR_READ: usize = 512;
/// Payload budget of one replication message: half the protocol's 16 MiB cap, so CBOR
/// overhead never pushes a batch over it. Each message is acknowledged after the receiver's
/// next commit (about a second), so batches must be large for a joining peer to catch up fast.
const BATCH_BYTES: usize = 8 << 20;
/// Documents per replication message at most.
const BATCH_DOCS: usize = 512;

/// Split documents into replication messages of at most [`BATCH_BYTES`] and [`BATCH_DOCS`]
/// (a single larger document still travels alone; the crawler caps text at 1 MiB).
pub fn size_batches(docs: Vec<Document>) -> Vec<Vec<Document>> {
    let mut out: Vec<Vec<Document>> = Vec::new();
    let mut bytes = 0;
    for d in docs {
        let size = d.url.len()
            + d.title.len()
            + d.description.len()
            + d.body.len()
            + d.headings.len()
            + d.anchor_text.len()
            + 256;
        let start_new = match out.last() {
            None => true,
            Some(last) => last.len() >= BATCH_DOCS || bytes + size > BATCH_BYTES,
        };
        if start_new {
            out.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
        if let Some(last) = out.last_mut() {
            last.push(d);
        }
    }
    out
}
/// Share the crawl state of a site with its replicas every this many rounds.
const SHARE_STATE_EVERY: u64 = 4;

/// The maintenance period in effect.
pub(crate) fn period() -> Duration {
    std::env::var("PEERSEARCH_MAINTENANCE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(MAINTENANCE_EVERY)
}

/// The maintenance loop.
pub async fn run(node: Arc<Node>, shutdown: CancellationToken) {
    let every = period();
    let mut round: u64 = 0;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.cancelled() => return,
        }
        round += 1;
        if let Err(e) = tick(&node, round, &shutdown).await {
            warn!(error = %e, "maintenance round failed");
        }
    }
}

/// A site's digest: its `(url, fetched_at)` pairs sorted by URL and their hash.
#[derive(Debug, Clone, Default)]
pub struct SiteDigest {
    /// Sorted pairs.
    pub pairs: Vec<(String, i64)>,
    /// Hex SHA-256 over `url \t fetched_at \n` lines.
    pub hash: String,
}

/// Digest of the local documents of `site`.
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
    }
}

async fn local_digest(node: &Arc<Node>, site: &str) -> Result<SiteDigest, String> {
    let shard = node.shard().clone();
    let site = site.to_string();
    tokio::task::spawn_blocking(move || shard.site_digest(&site))
        .await
        .map_err(|e| e.to_string())?
        .map(digest_of)
        .map_err(|e| e.to_string())
}

async fn tick(node: &Arc<Node>, round: u64, shutdown: &CancellationToken) -> Result<(), String> {
    let me = node.peer_id();
    let r = node.replication();
    let peers = node.net().live_peers().await.map_err(|e| e.to_string())?;
    let owners_of = |site: &str| ownership::owners(&SiteKey::of(site), me, &peers, r);

    // Parked crawl states of sites this peer is now the primary of: continue their crawl
    // (not before this peer's view of the network has settled after its start).
    if node.is_settled() {
        for site in node.parked_sites().map_err(|e| e.to_string())? {
            if owners_of(&site).first() == Some(&me) {
                node.import_parked(&site).await;
            }
        }
    }

    // The frontier: hand the crawl of sites owned elsewhere to their primary; share the
    // state of sites this peer crawls with their replicas.
    for site in node
        .crawler()
        .frontier_sites()
        .await
        .map_err(|e| e.to_string())?
    {
        if shutdown.is_cancelled() {
            return Ok(());
        }
        let owners = owners_of(&site);
        let Some(primary) = owners.first().copied() else {
            continue;
        };
        if primary != me {
            // Stop fetching the site, let the fetches in flight reach a commit, then hand
            // the state over: every URL is then either done in it or still queued, so the
            // new primary fetches nothing this peer fetched.
            node.crawler().pause_site(&site);
            let in_flight = node.crawler().site_in_flight(&site);
            if in_flight > 0 {
                debug!(
                    site,
                    in_flight, "waiting for fetches in flight before handing the crawl over"
                );
                continue;
            }
            if send_state(node, primary, &site).await {
                info!(site, to = %primary, "crawl handed over to the new primary");
                let _ = node.crawler().forget_site(&site).await;
            }
        } else if node.crawler().is_crawlable(&site) {
            // This peer crawls the site (the claim loop releases a site it is the primary of
            // once no other owner crawls it).
            if round.is_multiple_of(SHARE_STATE_EVERY) {
                for o in owners.iter().skip(1) {
                    send_state(node, *o, &site).await;
                }
            }
        }
    }

    // Documents: bring every owner up to date; drop what this peer no longer owns once the
    // owners hold it.
    let shard = node.shard().clone();
    let sites = tokio::task::spawn_blocking(move || shard.sites())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    for (site, _count) in sites {
        if shutdown.is_cancelled() {
            return Ok(());
        }
        let owners = owners_of(&site);
        let i_own = owners.contains(&me);
        if i_own && owners.len() == 1 {
            continue;
        }
        let local = local_digest(node, &site).await?;
        let mut all_hold = true;
        for o in owners.iter().filter(|o| **o != me) {
            match sync_site(node, *o, &site, &local).await {
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
            if let Err(e) = node.store_replicas(Vec::new(), urls).await {
                warn!(site, error = %e, "cannot drop site");
            }
            node.drop_parked(&site);
        }
    }
    Ok(())
}

/// Bring `peer` up to date with the local documents of `site`. `Ok(true)` when, after this
/// call, the peer is known to hold every local document (at the same or a newer fetch).
async fn sync_site(
    node: &Arc<Node>,
    peer: PeerId,
    site: &str,
    local: &SiteDigest,
) -> Result<bool, net::Error> {
    let quick = node
        .net()
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
    let full = node
        .net()
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
    for chunk in missing.chunks(REPAIR_READ) {
        let shard = node.shard().clone();
        let urls = chunk.to_vec();
        let docs: Vec<Document> = tokio::task::spawn_blocking(move || {
            urls.iter()
                .filter_map(|u| shard.get(u).ok().flatten())
                .collect()
        })
        .await
        .unwrap_or_default();
        for batch in size_batches(docs) {
            node.net()
                .replicate(
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

/// Send the crawl state of `site` to `peer`; whether it was stored.
async fn send_state(node: &Arc<Node>, peer: PeerId, site: &str) -> bool {
    let Ok(state) = node.crawler().export_site_state(site).await else {
        return false;
    };
    let Ok(bytes) = serde_json::to_vec(&state) else {
        return false;
    };
    node.net()
        .replicate(
            peer,
            wire::ReplicateRequest {
                site: site.to_string(),
                site_state: Some(bytes),
                ..Default::default()
            },
        )
        .await
        .is_ok()
}

/// Answer a replication request: store documents (acknowledged after commit) and crawl state
/// (imported if this peer is the site's primary, parked otherwise).
pub async fn on_replicate(
    node: &Arc<Node>,
    from: PeerId,
    request: wire::ReplicateRequest,
    reply: net::Responder<wire::ReplicateResponse>,
) {
    if request.claim {
        match crate::claim::on_claim(node, from, &request.site).await {
            Ok(state) => {
                let _ = reply.send(wire::ReplicateResponse {
                    stored: 0,
                    site_state: Some(state),
                });
            }
            Err(e) => {
                let _ = reply.fail(e);
            }
        }
        return;
    }
    let mut stored = 0;
    if !request.docs.is_empty() || !request.deletes.is_empty() {
        match node.store_replicas(request.docs, request.deletes).await {
            Ok(n) => stored = n,
            Err(e) => {
                let _ = reply.fail(e);
                return;
            }
        }
    }
    if (!request.crawled.is_empty() || !request.links.is_empty())
        && let Err(e) = node
            .accept_crawl_progress(from, &request.site, request.crawled, request.links)
            .await
    {
        let _ = reply.fail(e);
        return;
    }
    if let Some(bytes) = request.site_state {
        let site = request.site;
        let owners = node.owners_with(&site, Some(from)).await;
        let result = if owners.first() == Some(&node.peer_id()) {
            node.import_state_bytes(&bytes).await
        } else {
            node.park_state(&site, &bytes)
        };
        if let Err(e) = result {
            let _ = reply.fail(e);
            return;
        }
    }
    let _ = reply.send(wire::ReplicateResponse {
        stored,
        ..Default::default()
    });
}

/// Answer a digest request from the local shard.
pub async fn on_digest(
    node: &Arc<Node>,
    request: wire::DigestRequest,
    reply: net::Responder<wire::DigestResponse>,
) {
    match local_digest(node, &request.site).await {
        Ok(d) => {
            let _ = reply.send(wire::DigestResponse {
                count: d.pairs.len() as u64,
                hash: d.hash,
                urls: request.list_urls.then_some(d.pairs),
            });
        }
        Err(e) => {
            let _ = reply.fail(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_the_byte_budget_and_keep_every_document() {
        let doc = |i: usize, body: usize| Document {
            url: format!("http://a.example/{i}"),
            body: "x".repeat(body),
            ..Document::default()
        };
        let small: Vec<Document> = (0..1000).map(|i| doc(i, 100)).collect();
        let b = size_batches(small);
        assert_eq!(b.len(), 2, "512 documents per message at most");
        assert_eq!(b.iter().map(Vec::len).sum::<usize>(), 1000);
        let big: Vec<Document> = (0..20).map(|i| doc(i, 1 << 20)).collect();
        let b = size_batches(big);
        assert!(
            b.iter().all(|x| x.len() <= 8),
            "{:?}",
            b.iter().map(Vec::len).collect::<Vec<_>>()
        );
        assert_eq!(b.iter().map(Vec::len).sum::<usize>(), 20);
        assert!(size_batches(Vec::new()).is_empty());
    }

    #[test]
    fn digest_ignores_order_and_sees_fetch_times() {
        let a = digest_of(vec![("u2".into(), 2), ("u1".into(), 1)]);
        let b = digest_of(vec![("u1".into(), 1), ("u2".into(), 2)]);
        assert_eq!(a.hash, b.hash);
        let c = digest_of(vec![("u1".into(), 1), ("u2".into(), 3)]);
        assert_ne!(a.hash, c.hash, "a newer fetch changes the digest");
    }
}
