//! The indexing component: the index loop that stages crawled pages and replicas, commits at
//! least every `commit_interval_ms`, then marks the crawled URLs done and hands the committed
//! batch to replication; and [`Indexing`], the cloneable handle through which the rest of the
//! node reads the shard (every tantivy call on a blocking thread) and stores replicas.
//!
//! A crawled page is marked done only once its document is committed *and* its links are
//! stored (enqueued or in the outbox): after a crash, a page whose links were only in memory is
//! crawled again instead of losing them.

use crate::anchors::{AnchorRecord, Anchors};
use crate::error::{Error, Result};
use crate::link::Link;
use crate::routing::LinkStore;
use crate::tombstones::Tombstones;
use peersearch_crawler::{CrawledPage, Crawler, NormalizedUrl, Seed};
use peersearch_indexer::{Document, SearchResults, Shard, TermStats};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// Staged documents past this count are committed early (bounds memory between commits).
const MAX_STAGED_DOCS: usize = 2_000;
/// Links held in memory while they cannot be stored, at most; the pages that found the
/// oldest ones are given up past it (not marked done: crawled again after a restart).
const MAX_HELD_LINKS: usize = 200_000;
/// Capacity of the replica job queue.
const JOB_QUEUE: usize = 64;
/// Documents re-indexed per commit because their anchor records changed, at most.
const MAX_REANCHOR: usize = 1_000;

/// Work for the index loop.
enum IndexJob {
    /// Documents from another owner of their site; acknowledged after they are committed.
    Replica {
        docs: Vec<Document>,
        deletes: Vec<String>,
        done: oneshot::Sender<Result<u32>>,
    },
}

/// What one commit made durable, for replication to the other owners.
#[derive(Debug, Default)]
pub struct CommittedBatch {
    /// The crawled documents.
    pub docs: Vec<Document>,
    /// Every URL the batch crawled (with or without a document).
    pub crawled: Vec<NormalizedUrl>,
    /// Same-site links the batch found, with their site.
    pub links: Vec<(String, Link)>,
    /// The anchor records of the documents, by URL.
    pub anchors: Vec<(String, AnchorRecord)>,
    /// URLs whose documents revisits removed (gone, moved, no longer indexable), none of
    /// them among `docs`, with the time of the removal.
    pub removed: Vec<(String, i64)>,
}

/// The handle to the shard and the index loop.
#[derive(Clone)]
pub struct Indexing {
    shard: Arc<Shard>,
    jobs: mpsc::Sender<IndexJob>,
    num_docs: Arc<AtomicU64>,
    replicated: Arc<AtomicU64>,
    commits: Arc<AtomicU64>,
}

impl std::fmt::Debug for Indexing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Indexing").finish_non_exhaustive()
    }
}

/// Run `f` over the shard on a blocking thread.
async fn on_shard<T: Send + 'static>(
    shard: &Arc<Shard>,
    f: impl FnOnce(&Shard) -> peersearch_indexer::Result<T> + Send + 'static,
) -> Result<T> {
    let shard = shard.clone();
    Ok(tokio::task::spawn_blocking(move || f(&shard)).await??)
}

impl Indexing {
    /// Hand replica documents (and deletions) to the index loop; resolves after they are
    /// committed, with how many documents were stored.
    pub async fn store_replicas(&self, docs: Vec<Document>, deletes: Vec<String>) -> Result<u32> {
        let (done, rx) = oneshot::channel();
        self.jobs
            .send(IndexJob::Replica {
                docs,
                deletes,
                done,
            })
            .await
            .map_err(|_| Error::ShuttingDown)?;
        rx.await.map_err(|_| Error::ShuttingDown)?
    }

    /// Leaf search on the local shard.
    /// With `evidence`, each hit carries what its score is made of
    /// ([`peersearch_indexer::Shard::search_with`]).
    pub async fn search(
        &self,
        query: String,
        top_k: usize,
        stats: Option<TermStats>,
        evidence: bool,
    ) -> Result<SearchResults> {
        on_shard(&self.shard, move |s| {
            s.search_with(&query, top_k, stats.as_ref(), evidence)
        })
        .await
    }

    /// Local term statistics of a query.
    pub async fn term_stats(&self, query: String) -> Result<TermStats> {
        on_shard(&self.shard, move |s| s.term_stats(&query)).await
    }

    /// Local term statistics of a query over the documents of `sites` only.
    pub async fn term_stats_for_sites(
        &self,
        query: String,
        sites: Vec<String>,
    ) -> Result<TermStats> {
        on_shard(&self.shard, move |s| s.term_stats_for_sites(&query, &sites)).await
    }

    /// `(url, fetched_at)` of every local document of `site`.
    pub async fn site_digest(&self, site: &str) -> Result<Vec<(String, i64)>> {
        let site = site.to_string();
        on_shard(&self.shard, move |s| s.site_digest(&site)).await
    }

    /// Every site with local documents, with its document count.
    pub async fn sites(&self) -> Result<Vec<(String, u64)>> {
        on_shard(&self.shard, |s| s.sites()).await
    }

    /// The local documents of `urls` (those that exist and can be read).
    pub async fn docs(&self, urls: Vec<String>) -> Result<Vec<Document>> {
        on_shard(&self.shard, move |s| {
            Ok(urls
                .iter()
                .filter_map(|u| s.get(u).ok().flatten())
                .collect())
        })
        .await
    }

    /// Committed documents, as of the last commit.
    pub fn num_docs(&self) -> u64 {
        self.num_docs.load(Ordering::Relaxed)
    }

    /// Size of the index on disk.
    pub async fn size_bytes(&self) -> u64 {
        on_shard(&self.shard, |s| Ok(s.size_bytes()))
            .await
            .unwrap_or(0)
    }

    /// Replica documents committed since start.
    pub fn replicated_docs(&self) -> u64 {
        self.replicated.load(Ordering::Relaxed)
    }

    /// Index commits since start (a batch that changes no document, such as revisits that
    /// found nothing new, makes none).
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }
}

/// A crawled page whose links could not be stored yet.
#[derive(Debug)]
struct HeldPage {
    urls: Vec<NormalizedUrl>,
    links: Vec<Link>,
}

/// What the index loop holds between two commits.
#[derive(Debug, Default)]
struct Staging {
    docs: Vec<Document>,
    /// Crawled URLs whose links are stored: marked done after the next commit.
    urls: Vec<NormalizedUrl>,
    /// Same-site links for the replicas.
    links: Vec<(String, Link)>,
    /// Pages whose links wait to be stored, oldest first.
    held: VecDeque<HeldPage>,
    held_links: usize,
    /// Documents revisits removed: deleted before the batch's documents are written, so a
    /// document of the same batch stays.
    removed: Vec<String>,
    replica_docs: Vec<Document>,
    replica_deletes: Vec<String>,
    acks: Vec<(oneshot::Sender<Result<u32>>, u32)>,
    /// Dirty anchor marks whose documents are staged: cleared after the next commit.
    reanchored: Vec<(String, u64)>,
    /// The last commit failed: the shard holds operations that the next commit must write,
    /// whatever that batch holds.
    shard_pending: bool,
}

impl Staging {
    /// Stage a crawled page: its document, its URLs (`url` and where it redirected to) and
    /// its links, which are stored at once when possible and held otherwise.
    async fn add_page(
        &mut self,
        doc: Option<Document>,
        urls: Vec<NormalizedUrl>,
        site: &str,
        links: &[Seed],
        store: &impl LinkStore,
    ) {
        self.docs.extend(doc);
        // Same-site links travel with the documents to the replicas.
        self.links.extend(
            links
                .iter()
                .filter(|l| l.url.site() == site)
                .map(|l| (site.to_string(), Link::from(l))),
        );
        // Each link knows the page it was found on: its anchor text counts for its target.
        let source = urls.last().map(|u| u.to_string());
        let links: Vec<Link> = links
            .iter()
            .map(|l| Link {
                source: source.clone(),
                ..Link::from(l)
            })
            .collect();
        if links.is_empty() {
            self.urls.extend(urls);
            return;
        }
        if self.held.is_empty() {
            match store.store_links(links.clone()).await {
                Ok(()) => {
                    self.urls.extend(urls);
                    return;
                }
                Err(e) => warn!(error = %e, "cannot store links; will retry"),
            }
        }
        self.held_links += links.len();
        self.held.push_back(HeldPage { urls, links });
        while self.held_links > MAX_HELD_LINKS
            && let Some(old) = self.held.pop_front()
        {
            self.held_links -= old.links.len();
            warn!(
                dropped = old.links.len(),
                "too many links kept back; their page will be crawled again"
            );
        }
    }

    /// Store the held links, oldest first, until one fails; their pages become due.
    async fn retry_held(&mut self, store: &impl LinkStore) {
        let mut stored = 0;
        while let Some(page) = self.held.front() {
            if store.store_links(page.links.clone()).await.is_err() {
                break;
            }
            if let Some(page) = self.held.pop_front() {
                self.held_links -= page.links.len();
                stored += page.links.len();
                self.urls.extend(page.urls);
            }
        }
        if stored > 0 {
            info!(links = stored, "stored the links kept back");
        }
    }

    fn has_work(&self) -> bool {
        !(self.urls.is_empty()
            && self.docs.is_empty()
            && self.removed.is_empty()
            && self.reanchored.is_empty()
            && self.replica_docs.is_empty()
            && self.replica_deletes.is_empty())
    }

    fn staged_docs(&self) -> usize {
        self.docs.len() + self.replica_docs.len()
    }
}

/// Build the indexed document of a crawled page, with the anchor record of its URL (that
/// of the URL it was asked for and of where it redirected to, merged).
fn to_document(page: &CrawledPage, anchors: Option<&AnchorRecord>) -> Option<Document> {
    let p = page.page.as_ref()?;
    let mut doc = Document {
        url: page.final_url.to_string(),
        site: page.final_url.site(),
        title: p.title.clone(),
        description: p.description.clone().unwrap_or_default(),
        body: p.text.clone(),
        chrome: p.chrome.clone(),
        headings: p.headings.join("\n"),
        lang: p.lang.clone().unwrap_or_default(),
        fetched_at: page.fetched_at,
        content_hash: p.content_hash.clone(),
        ..Document::default()
    };
    if let Some(record) = anchors {
        apply_anchors(&mut doc, record);
    }
    Some(doc)
}

/// Put `record` into `doc`; true when that changed it. The anchor text and in-link counts
/// come only from the record, never from the links the crawler knew when it fetched the
/// page: those depend on crawl order and on which peer saw which link.
fn apply_anchors(doc: &mut Document, record: &AnchorRecord) -> bool {
    let (text, sites, pages) = (
        record.anchor_text(),
        record.inlink_sites(),
        record.inlink_pages(),
    );
    if doc.anchor_text == text && doc.inlink_sites == sites && doc.inlink_pages == pages {
        return false;
    }
    doc.anchor_text = text;
    doc.inlink_sites = sites;
    doc.inlink_pages = pages;
    true
}

/// The index loop, ready to run.
pub struct IndexLoop<S> {
    shard: Arc<Shard>,
    crawler: Crawler,
    links: S,
    pages: mpsc::Receiver<CrawledPage>,
    jobs: mpsc::Receiver<IndexJob>,
    committed: Option<mpsc::UnboundedSender<CommittedBatch>>,
    commit_every: Duration,
    num_docs: Arc<AtomicU64>,
    replicated: Arc<AtomicU64>,
    commits: Arc<AtomicU64>,
    anchors: Anchors,
    tombstones: Option<Tombstones>,
}

/// The indexing component over `shard`: its handle and its loop, which takes crawled pages
/// from `pages`, stores their links in `links`, and sends every committed batch to
/// `committed` (replication; `None` without replicas).
pub async fn new<S: LinkStore>(
    shard: Arc<Shard>,
    crawler: Crawler,
    links: S,
    anchors: Anchors,
    pages: mpsc::Receiver<CrawledPage>,
    committed: Option<mpsc::UnboundedSender<CommittedBatch>>,
    commit_every: Duration,
) -> Result<(Indexing, IndexLoop<S>)> {
    let (jobs_tx, jobs) = mpsc::channel(JOB_QUEUE);
    let docs = on_shard(&shard, |s| Ok(s.num_docs())).await?;
    let num_docs = Arc::new(AtomicU64::new(docs));
    let replicated = Arc::new(AtomicU64::new(0));
    let commits = Arc::new(AtomicU64::new(0));
    let handle = Indexing {
        shard: shard.clone(),
        jobs: jobs_tx,
        num_docs: num_docs.clone(),
        replicated: replicated.clone(),
        commits: commits.clone(),
    };
    let run = IndexLoop {
        shard,
        crawler,
        links,
        pages,
        jobs,
        committed,
        commit_every,
        num_docs,
        replicated,
        commits,
        anchors,
        tombstones: None,
    };
    Ok((handle, run))
}

impl<S: LinkStore> IndexLoop<S> {
    /// Record the removals in `tombstones` (and clear those that documents written later
    /// outdate), so that no stale copy brings a removed page back.
    pub fn with_tombstones(mut self, tombstones: Tombstones) -> Self {
        self.tombstones = Some(tombstones);
        self
    }

    /// After a commit: the removals are tombstones now, and the documents written clear the
    /// tombstones they outdate (pages that came back).
    async fn record_tombstones(
        &self,
        removed: &[(String, i64)],
        written: Vec<(String, String, i64)>,
    ) {
        let Some(tombstones) = &self.tombstones else {
            return;
        };
        let of = |url: &str| peersearch_crawler::normalize(url, None).map(|u| u.site());
        let stones = removed
            .iter()
            .filter_map(|(u, at)| of(u).ok().map(|site| (site, u.clone(), *at)))
            .collect();
        if let Err(e) = tombstones.record(stones).await {
            warn!(error = %e, "cannot record removals; a stale copy may bring them back");
        }
        if let Err(e) = tombstones.clear_older(written).await {
            debug!(error = %e, "cannot clear outdated tombstones");
        }
    }

    /// Run until `shutdown`, then take what the crawl loop already sent and commit once more.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut st = Staging::default();
        let mut tick = tokio::time::interval(self.commit_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let (stopping, ticked) = tokio::select! {
                Some(page) = self.pages.recv() => {
                    self.add_page(&mut st, page).await;
                    (false, false)
                }
                Some(job) = self.jobs.recv() => {
                    match job {
                        IndexJob::Replica { docs, deletes, done } => {
                            let n = docs.len() as u32;
                            st.replica_docs.extend(docs);
                            st.replica_deletes.extend(deletes);
                            st.acks.push((done, n));
                        }
                    }
                    (false, false)
                }
                _ = tick.tick() => (false, true),
                _ = shutdown.cancelled() => (true, false),
            };
            if ticked || stopping {
                st.retry_held(&self.links).await;
            }
            if stopping {
                while let Ok(page) = self.pages.try_recv() {
                    self.add_page(&mut st, page).await;
                }
            }
            let due = st.staged_docs() >= MAX_STAGED_DOCS || ticked || stopping;
            if due && st.has_work() {
                self.commit(&mut st).await;
            }
            if ticked && !stopping {
                self.reanchor(&mut st).await;
            }
            if stopping {
                break;
            }
        }
    }

    async fn add_page(&self, st: &mut Staging, page: CrawledPage) {
        let mut urls = vec![page.url.clone()];
        if page.final_url != page.url {
            urls.push(page.final_url.clone());
        }
        let record = match self
            .anchors
            .get(urls.iter().map(|u| u.to_string()).collect())
            .await
        {
            Ok(found) => found.into_values().reduce(|mut a, b| {
                a.merge(&b);
                a
            }),
            Err(e) => {
                // Indexed without; the record's dirty mark re-indexes it later.
                warn!(error = %e, "cannot read anchor records");
                None
            }
        };
        let doc = to_document(&page, record.as_ref());
        let site = page.final_url.site();
        if !page.removed.is_empty() {
            debug!(url = %page.url, removed = page.removed.len(), "a revisit removes documents");
        }
        st.removed
            .extend(page.removed.iter().map(|u| u.to_string()));
        st.add_page(doc, urls, &site, &page.links, &self.links)
            .await;
    }

    /// Stage again the committed documents whose anchor records changed (read right after a
    /// commit, so a document staged but not committed is never missed: its page read the
    /// record when it was staged, and a later vote leaves a newer dirty mark).
    async fn reanchor(&self, st: &mut Staging) {
        if !st.reanchored.is_empty() {
            return;
        }
        let dirty = match self.anchors.dirty(MAX_REANCHOR).await {
            Ok(d) if !d.is_empty() => d,
            Ok(_) => return,
            Err(e) => {
                debug!(error = %e, "cannot read dirty anchor marks");
                return;
            }
        };
        let urls: Vec<String> = dirty.iter().map(|(u, _)| u.clone()).collect();
        let records = match self.anchors.get(urls.clone()).await {
            Ok(r) => r,
            Err(e) => {
                debug!(error = %e, "cannot read anchor records");
                return;
            }
        };
        let docs = on_shard(&self.shard, move |s| {
            Ok(urls
                .iter()
                .filter_map(|u| s.get(u).ok().flatten())
                .collect::<Vec<_>>())
        })
        .await
        .unwrap_or_default();
        let mut changed = 0;
        for mut doc in docs {
            if let Some(record) = records.get(&doc.url)
                && apply_anchors(&mut doc, record)
            {
                tracing::trace!(url = doc.url, anchors = ?doc.anchor_text, sites = doc.inlink_sites, pages = doc.inlink_pages, "re-anchored");
                st.docs.push(doc);
                changed += 1;
            }
        }
        if changed > 0 {
            debug!(
                docs = changed,
                "re-indexing documents whose anchors changed"
            );
        }
        st.reanchored = dirty;
    }

    /// Put this peer's anchor record into every replica document before it is stored. A
    /// record only grows (votes are a set union, and intake merges the sender's record into
    /// ours before its documents get here), so ours is at least as complete as the one the
    /// document was built with. Without this, a replica that arrives late (a retried batch,
    /// a repair copy from another owner) would overwrite a re-anchored copy with older anchor
    /// text, and no dirty mark would ever correct it: that copy could then outscore the
    /// primary's and differ from the central answer.
    async fn anchor_replicas(&self, replicas: &mut [Document]) {
        if replicas.is_empty() {
            return;
        }
        let urls = replicas.iter().map(|d| d.url.clone()).collect();
        match self.anchors.get(urls).await {
            Ok(records) => {
                for doc in replicas.iter_mut() {
                    if let Some(record) = records.get(&doc.url) {
                        apply_anchors(doc, record);
                    }
                }
            }
            // Stored as sent; the next batch or repair of these documents tries again.
            Err(e) => warn!(error = %e, "cannot read anchor records of replica documents"),
        }
    }

    /// Commit what is staged; on success mark the crawled URLs done and hand the batch to
    /// replication. A failed commit (a full disk) keeps everything staged: the shard replays
    /// its operations at the next commit, and the URLs stay in flight until then.
    async fn commit(&self, st: &mut Staging) {
        let docs = std::mem::take(&mut st.docs);
        let staged_removals = std::mem::take(&mut st.removed);
        let mut removed = staged_removals.clone();
        // A document staged in the same batch is the newer word on its URL.
        removed.retain(|u| !docs.iter().any(|d| d.url == *u));
        removed.sort();
        removed.dedup();
        let removed_at = i64::try_from(crate::clock::now_unix()).unwrap_or(i64::MAX);
        let mut replicas = std::mem::take(&mut st.replica_docs);
        self.anchor_replicas(&mut replicas).await;
        let deletes = std::mem::take(&mut st.replica_deletes);
        // Replicated pages count as crawled here too: if this peer becomes the primary of
        // their site, it continues the crawl without fetching them again.
        let replica_urls: Vec<NormalizedUrl> = replicas
            .iter()
            .filter_map(|d| peersearch_crawler::normalize(&d.url, None).ok())
            .collect();
        let to_write = docs.clone();
        let to_remove = removed.clone();
        let written: Vec<(String, String, i64)> = docs
            .iter()
            .chain(&replicas)
            .map(|d| (d.site.clone(), d.url.clone(), d.fetched_at))
            .collect();
        // Nothing for the index (pages without a document, revisits that found nothing new):
        // no commit, the URLs are only marked done.
        let untouched = !st.shard_pending
            && docs.is_empty()
            && replicas.is_empty()
            && deletes.is_empty()
            && removed.is_empty();
        let result = if untouched {
            Ok(self.num_docs.load(Ordering::Relaxed))
        } else {
            self.commits.fetch_add(1, Ordering::Relaxed);
            on_shard(&self.shard, move |shard| {
                for u in &to_remove {
                    shard.delete(u)?;
                }
                for d in to_write.iter().chain(&replicas) {
                    shard.upsert(d)?;
                }
                for u in &deletes {
                    shard.delete(u)?;
                }
                shard.commit()?;
                Ok(shard.num_docs())
            })
            .await
        };
        let ok = match result {
            Ok(n) => {
                self.num_docs.store(n, Ordering::Relaxed);
                debug!(docs = docs.len(), "committed");
                true
            }
            Err(e) => {
                warn!(error = %e, "commit failed; the batch will be crawled again");
                false
            }
        };
        for (done, n) in st.acks.drain(..) {
            if ok {
                self.replicated.fetch_add(u64::from(n), Ordering::Relaxed);
            }
            let _ = done.send(if ok { Ok(n) } else { Err(Error::CommitFailed) });
        }
        st.shard_pending = !ok;
        if !ok {
            // The shard keeps the staged operations; the URLs wait for the next commit, and
            // the removals too (their tombstones and replication come with that commit).
            st.removed = staged_removals;
            return;
        }
        let removed: Vec<(String, i64)> = removed.into_iter().map(|u| (u, removed_at)).collect();
        self.record_tombstones(&removed, written).await;
        let reanchored = std::mem::take(&mut st.reanchored);
        if let Err(e) = self.anchors.clean(reanchored).await {
            debug!(error = %e, "cannot clear anchor marks; the documents are looked at again");
        }
        let urls = std::mem::take(&mut st.urls);
        let links = std::mem::take(&mut st.links);
        if !replica_urls.is_empty() && self.crawler.mark_committed(&replica_urls).await.is_err() {
            warn!("cannot record replicated urls as crawled");
        }
        if self.crawler.mark_committed(&urls).await.is_err() {
            warn!("cannot mark committed urls done; they will be fetched again");
        }
        if let Some(tx) = &self.committed
            && !(urls.is_empty() && docs.is_empty() && removed.is_empty())
        {
            let anchors = self
                .anchors
                .get(docs.iter().map(|d| d.url.clone()).collect())
                .await
                .map(|r| r.into_iter().collect())
                .unwrap_or_default();
            let _ = tx.send(CommittedBatch {
                docs,
                crawled: urls,
                links,
                anchors,
                removed,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicBool;

    /// A link store that fails while `broken` is set and records what it stored.
    #[derive(Default)]
    struct FakeStore {
        broken: AtomicBool,
        stored: Mutex<Vec<Link>>,
    }

    impl LinkStore for FakeStore {
        async fn store_links(&self, links: Vec<Link>) -> Result<()> {
            if self.broken.load(Ordering::Relaxed) {
                return Err(Error::Refused("disk full".into()));
            }
            self.stored.lock().unwrap().extend(links);
            Ok(())
        }
    }

    fn url(u: &str) -> NormalizedUrl {
        peersearch_crawler::normalize(u, None).unwrap()
    }

    fn seed(u: &str) -> Seed {
        Seed {
            url: url(u),
            depth: 1,
            anchor: None,
            scope: None,
        }
    }

    #[tokio::test]
    async fn a_page_is_due_only_once_its_links_are_stored() {
        let store = FakeStore::default();
        let mut st = Staging::default();
        store.broken.store(true, Ordering::Relaxed);
        let links = [seed("http://a.example/2"), seed("http://b.example/")];
        st.add_page(
            None,
            vec![url("http://a.example/1")],
            "a.example",
            &links,
            &store,
        )
        .await;
        assert!(
            st.urls.is_empty(),
            "links only in memory: the page is not due"
        );
        assert_eq!(st.held.len(), 1);
        assert_eq!(
            st.links.len(),
            1,
            "the same-site link still goes to replicas"
        );
        // A page without links after a failure is due at once; one with links waits its turn.
        st.add_page(
            None,
            vec![url("http://a.example/3")],
            "a.example",
            &[],
            &store,
        )
        .await;
        st.add_page(
            None,
            vec![url("http://a.example/4")],
            "a.example",
            &links[..1],
            &store,
        )
        .await;
        assert_eq!(st.urls, vec![url("http://a.example/3")]);
        st.retry_held(&store).await;
        assert_eq!(st.held.len(), 2, "still failing: still held");
        store.broken.store(false, Ordering::Relaxed);
        st.retry_held(&store).await;
        assert!(st.held.is_empty());
        assert_eq!(st.held_links, 0);
        assert_eq!(
            st.urls,
            vec![
                url("http://a.example/3"),
                url("http://a.example/1"),
                url("http://a.example/4")
            ]
        );
        assert_eq!(store.stored.lock().unwrap().len(), 3);
    }

    /// A replica document built with older anchors (a retried batch, a repair copy) is
    /// stored with this peer's record, which only grows: it never undoes a re-anchored copy.
    #[tokio::test]
    async fn a_replica_is_stored_with_the_local_anchor_record() {
        let dir = tempfile::tempdir().unwrap();
        let shard = Arc::new(Shard::open_in_ram().unwrap());
        let crawler = Crawler::open(dir.path(), Default::default()).unwrap();
        let anchors = Anchors::open(&dir.path().join("anchors.redb"))
            .await
            .unwrap();
        let target = "http://a.example/page";
        anchors
            .record(vec![crate::anchors::Incoming {
                target: target.into(),
                text: Some("reference material".into()),
                source: "http://b.example/".into(),
                source_site: "b.example".into(),
            }])
            .await
            .unwrap();
        let (_pages_tx, pages) = mpsc::channel(1);
        let (indexing, run) = new(
            shard.clone(),
            crawler,
            FakeStore::default(),
            anchors,
            pages,
            None,
            Duration::from_millis(10),
        )
        .await
        .unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run.run(shutdown.clone()));
        let stale = Document {
            url: target.into(),
            site: "a.example".into(),
            title: "A page".into(),
            body: "some text".into(),
            ..Document::default()
        };
        assert_eq!(
            indexing.store_replicas(vec![stale], vec![]).await.unwrap(),
            1
        );
        let stored = shard.get(target).unwrap().unwrap();
        assert_eq!(stored.anchor_text, "reference material");
        assert_eq!((stored.inlink_sites, stored.inlink_pages), (1, 1));
        shutdown.cancel();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn links_stored_at_once_make_the_page_due_at_once() {
        let store = FakeStore::default();
        let mut st = Staging::default();
        st.add_page(
            Some(Document::default()),
            vec![url("http://a.example/1"), url("http://a.example/final")],
            "a.example",
            &[seed("http://a.example/2")],
            &store,
        )
        .await;
        assert_eq!(st.urls.len(), 2);
        assert!(st.held.is_empty());
        assert!(st.has_work());
        assert_eq!(st.staged_docs(), 1);
    }
}
