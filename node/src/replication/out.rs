//! Replication out: committed batches go to the other owners of their sites, with the crawl
//! progress behind them: every URL the batch crawled and the same-site links it found, so a
//! replica that takes over the site's crawl neither fetches a page twice nor misses one.

use super::Replication;
use crate::anchors::AnchorRecord;
use crate::indexing::CommittedBatch;
use crate::link::Link;
use crate::net::wire;
use peersearch_indexer::Document;
use std::collections::HashMap;
use tokio::sync::mpsc;
use tracing::debug;

/// Payload budget of one replication message: half the protocol's 16 MiB cap, so CBOR
/// overhead never pushes a batch over it. Each message is acknowledged after the receiver's
/// next commit (about a second), so batches must be large for a joining peer to catch up fast.
const BATCH_BYTES: usize = (wire::REPLICATE_LIMITS.request / 2) as usize;
/// Documents per replication message at most.
const BATCH_DOCS: usize = 512;
/// Links per replication message at most (the rest follow in further messages).
const REPLICATE_LINKS: usize = 5_000;

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

/// What one site's part of a batch becomes on the wire.
#[derive(Default)]
struct SiteBatch {
    docs: Vec<Document>,
    crawled: Vec<String>,
    links: Vec<Link>,
    anchors: HashMap<String, AnchorRecord>,
    removed: Vec<(String, i64)>,
}

/// Group a committed batch by site.
fn by_site(batch: CommittedBatch) -> HashMap<String, SiteBatch> {
    let mut by_site: HashMap<String, SiteBatch> = HashMap::new();
    let mut anchors: HashMap<String, AnchorRecord> = batch.anchors.into_iter().collect();
    for d in batch.docs {
        let entry = by_site.entry(d.site.clone()).or_default();
        if let Some(record) = anchors.remove(&d.url) {
            entry.anchors.insert(d.url.clone(), record);
        }
        entry.docs.push(d);
    }
    for u in batch.crawled {
        by_site
            .entry(u.site())
            .or_default()
            .crawled
            .push(u.to_string());
    }
    for (site, l) in batch.links {
        by_site.entry(site).or_default().links.push(l);
    }
    for (u, at) in batch.removed {
        let site = peersearch_crawler::normalize(&u, None).map(|n| n.site());
        if let Ok(site) = site {
            by_site.entry(site).or_default().removed.push((u, at));
        }
    }
    by_site
}

/// The messages of one site: documents in size batches, then the progress (crawled URLs and
/// links) on the last message, after the documents it describes.
fn messages(site: &str, batch: SiteBatch) -> Vec<wire::ReplicateRequest> {
    let mut anchors = batch.anchors;
    let mut messages: Vec<wire::ReplicateRequest> = size_batches(batch.docs)
        .into_iter()
        .map(|docs| wire::ReplicateRequest {
            site: site.to_string(),
            // Each document's anchor record rides with it (64 votes at most).
            anchors: docs
                .iter()
                .filter_map(|d| anchors.remove_entry(&d.url))
                .collect(),
            docs,
            ..Default::default()
        })
        .collect();
    if messages.is_empty() {
        messages.push(wire::ReplicateRequest {
            site: site.to_string(),
            ..Default::default()
        });
    }
    let mut links = batch.links;
    while links.len() > REPLICATE_LINKS {
        let rest = links.split_off(REPLICATE_LINKS);
        messages.push(wire::ReplicateRequest {
            site: site.to_string(),
            links: std::mem::replace(&mut links, rest),
            ..Default::default()
        });
    }
    if let Some(last) = messages.last_mut() {
        last.crawled = batch.crawled;
        last.links.extend(links);
        // Removals go with the progress, as tombstones (the newest word on a URL wins).
        last.tombstones = batch.removed;
    }
    messages
}

impl Replication {
    /// Replicate every committed batch from `batches` until the index loop stops.
    pub async fn run_out(self, mut batches: mpsc::UnboundedReceiver<CommittedBatch>) {
        while let Some(batch) = batches.recv().await {
            let this = self.clone();
            // Each batch on its own task: a slow owner never holds up the next commit.
            tokio::spawn(async move { this.replicate(batch).await });
        }
    }

    async fn replicate(&self, batch: CommittedBatch) {
        let placement = self.placement().await;
        for (site, batch) in by_site(batch) {
            let owners = placement.owners(&site);
            let messages = messages(&site, batch);
            for owner in owners.into_iter().filter(|o| *o != self.inner.me) {
                for req in &messages {
                    if let Err(e) = self.inner.net.replicate(owner, req.clone()).await {
                        // Maintenance compares digests and repairs what is missing; the
                        // periodic crawl-state share carries the progress.
                        debug!(peer = %owner, site, error = %e, "replication deferred");
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(i: usize, body: usize) -> Document {
        Document {
            url: format!("http://a.example/{i}"),
            site: "a.example".into(),
            body: "x".repeat(body),
            ..Document::default()
        }
    }

    #[test]
    fn batches_respect_the_byte_budget_and_keep_every_document() {
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
    fn progress_rides_on_the_last_message_after_the_documents() {
        let link = |i: usize| Link {
            url: format!("http://a.example/l{i}"),
            depth: 1,
            anchor: None,
            source: None,
            scope: None,
        };
        let batch = SiteBatch {
            docs: (0..600).map(|i| doc(i, 10)).collect(),
            crawled: vec!["http://a.example/0".into()],
            links: (0..REPLICATE_LINKS + 10).map(link).collect(),
            anchors: [("http://a.example/599".to_string(), AnchorRecord::default())].into(),
            removed: vec![("http://a.example/gone".into(), 7)],
        };
        let m = messages("a.example", batch);
        assert_eq!(m.len(), 3, "two document batches, one message of links");
        assert!(m[..2].iter().all(|r| r.crawled.is_empty()));
        assert_eq!(m[2].crawled.len(), 1);
        assert_eq!(
            m[2].tombstones,
            [("http://a.example/gone".to_string(), 7)],
            "removals go with the progress"
        );
        assert!(m[..2].iter().all(|r| r.tombstones.is_empty()));
        assert_eq!(
            m[1].anchors.len(),
            1,
            "an anchor record rides with its document"
        );
        assert_eq!(m[1].anchors[0].0, "http://a.example/599");
        assert_eq!(
            m.iter().map(|r| r.links.len()).sum::<usize>(),
            REPLICATE_LINKS + 10
        );
        assert!(
            m.iter()
                .all(|r| r.site == "a.example" && r.site_state.is_none())
        );
        let empty = messages("a.example", SiteBatch::default());
        assert_eq!(empty.len(), 1, "progress alone still travels");
    }
}
