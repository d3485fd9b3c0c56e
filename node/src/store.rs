//! The node's own store (`node.redb`): the hand-off [`Outbox`] and the [`Parked`] crawl states
//! and links of sites this peer replicates (the anchor records have a file of their own,
//! [`crate::anchors`]).
//!
//! The outbox holds URLs of sites another peer owns until that peer acknowledges them
//! (DESIGN.md: "the receiver persists it before acknowledging, the sender retries until
//! acknowledged"). Links found while crawling and seeds are pushed here when their site
//! belongs to someone else, and a received hand-off is pushed here before it is acknowledged;
//! the router then enqueues each URL locally or sends it on.
//!
//! Every public method is async and runs redb on a blocking thread: no redb call runs on an
//! async worker.

use crate::link::Link;
use peersearch_crawler::SiteState;
use peersearch_crawler::reopen::Reopening;
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("handoff_outbox");
/// Crawl states shared by a site's primary: site -> JSON [`SiteState`].
const PARKED: TableDefinition<&str, &[u8]> = TableDefinition::new("parked_site_state");
/// Same-site links replicated with documents: (site, url) -> JSON [`Link`].
const PARKED_LINKS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("parked_links");

/// Errors of the node's own store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The embedded database failed.
    #[error("store: {0}")]
    Db(String),
}

impl From<redb::Error> for StoreError {
    fn from(e: redb::Error) -> Self {
        db_err(e)
    }
}

pub(crate) fn db_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Db(e.to_string())
}

pub(crate) type StoreResult<T> = Result<T, StoreError>;

/// Run `f` on a blocking thread.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> StoreResult<T> + Send + 'static,
) -> StoreResult<T> {
    tokio::task::spawn_blocking(f).await.map_err(db_err)?
}

/// One URL on its way to its owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffItem {
    /// The link (stored flat: `url`, `depth`, `anchor`).
    #[serde(flatten)]
    pub link: Link,
    /// How many peers forwarded it already.
    pub hops: u8,
}

/// Open (or create) the store at `path`: its outbox and parked states.
pub async fn open(path: &Path) -> StoreResult<(Outbox, Parked)> {
    let path = path.to_path_buf();
    blocking(move || {
        let db = Arc::new(Reopening::create(&path, |_| Ok(()))?);
        let outbox = Outbox::with_db(db.clone())?;
        crate::tombstones::Tombstones::with_db(db.clone())?;
        Ok((outbox, Parked { db }))
    })
    .await
}

/// The persistent outbox (a table of the node's redb store).
#[derive(Clone)]
pub struct Outbox {
    db: Arc<Reopening>,
    next: Arc<AtomicU64>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").finish_non_exhaustive()
    }
}

impl Outbox {
    fn with_db(db: Arc<Reopening>) -> StoreResult<Outbox> {
        let last = db.run(|db| {
            let w = db.begin_write().map_err(db_err)?;
            let last = {
                let t = w.open_table(OUTBOX).map_err(db_err)?;
                t.last().map_err(db_err)?.map(|(k, _)| k.value())
            };
            w.commit().map_err(db_err)?;
            Ok::<_, StoreError>(last)
        })?;
        Ok(Outbox {
            db,
            next: Arc::new(AtomicU64::new(last.map_or(0, |l| l + 1))),
        })
    }

    /// Persist items (durable when this returns).
    pub async fn push(&self, items: Vec<HandoffItem>) -> StoreResult<()> {
        if items.is_empty() {
            return Ok(());
        }
        let (store, next) = (self.db.clone(), self.next.clone());
        blocking(move || {
            store.run(|db| {
                let w = db.begin_write().map_err(db_err)?;
                {
                    let mut t = w.open_table(OUTBOX).map_err(db_err)?;
                    for it in &items {
                        let seq = next.fetch_add(1, Ordering::Relaxed);
                        let bytes = serde_json::to_vec(it).map_err(db_err)?;
                        t.insert(seq, bytes.as_slice()).map_err(db_err)?;
                    }
                }
                w.commit().map_err(db_err)
            })
        })
        .await
    }

    /// Up to `max` oldest items with their sequence numbers.
    pub async fn peek(&self, max: usize) -> StoreResult<Vec<(u64, HandoffItem)>> {
        let store = self.db.clone();
        blocking(move || {
            store.run(|db| {
            let r = db.begin_read().map_err(db_err)?;
            let t = match r.open_table(OUTBOX) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(e) => return Err(db_err(e)),
            };
            let mut out = Vec::new();
            for row in t.iter().map_err(db_err)?.take(max) {
                let (k, v) = row.map_err(db_err)?;
                match serde_json::from_slice::<HandoffItem>(v.value()) {
                    Ok(it) => out.push((k.value(), it)),
                    Err(e) => {
                        tracing::warn!(seq = k.value(), error = %e, "dropping unreadable outbox row")
                    }
                }
            }
            Ok(out)
            })
        })
        .await
    }

    /// Remove acknowledged items.
    pub async fn remove(&self, seqs: Vec<u64>) -> StoreResult<()> {
        if seqs.is_empty() {
            return Ok(());
        }
        let store = self.db.clone();
        blocking(move || {
            store.run(|db| {
                let w = db.begin_write().map_err(db_err)?;
                {
                    let mut t = w.open_table(OUTBOX).map_err(db_err)?;
                    for s in &seqs {
                        t.remove(*s).map_err(db_err)?;
                    }
                }
                w.commit().map_err(db_err)
            })
        })
        .await
    }

    /// How many items wait.
    pub async fn len(&self) -> StoreResult<u64> {
        let store = self.db.clone();
        blocking(move || {
            store.run(|db| {
                let r = db.begin_read().map_err(db_err)?;
                match r.open_table(OUTBOX) {
                    Ok(t) => t.len().map_err(db_err),
                    Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
                    Err(e) => Err(db_err(e)),
                }
            })
        })
        .await
    }
}

/// Crawl states of sites this peer replicates but does not crawl: the primary shares them so
/// that whoever becomes primary next continues the crawl where it stopped.
#[derive(Clone)]
pub struct Parked {
    db: Arc<Reopening>,
}

impl std::fmt::Debug for Parked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parked").finish_non_exhaustive()
    }
}

impl Parked {
    /// The tombstones of the same store.
    pub fn tombstones(&self) -> crate::tombstones::Tombstones {
        crate::tombstones::Tombstones::of_db(self.db.clone())
    }

    /// Store (replace) the state of a site.
    pub async fn put(&self, state: SiteState) -> StoreResult<()> {
        let store = self.db.clone();
        blocking(move || {
            store.run(|db| {
                let bytes = serde_json::to_vec(&state).map_err(db_err)?;
                let w = db.begin_write().map_err(db_err)?;
                {
                    let mut t = w.open_table(PARKED).map_err(db_err)?;
                    t.insert(state.site.as_str(), bytes.as_slice())
                        .map_err(db_err)?;
                }
                w.commit().map_err(db_err)
            })
        })
        .await
    }

    /// What this peer parked of a site's crawl: the shared state and the links replicated
    /// since (an empty state when nothing is parked; an unreadable state counts as empty).
    pub async fn state(&self, site: &str) -> StoreResult<SiteState> {
        let store = self.db.clone();
        let site = site.to_string();
        blocking(move || {
            store.run(|db| {
                let r = db.begin_read().map_err(db_err)?;
                let mut state = match r.open_table(PARKED) {
                    Ok(t) => match t.get(site.as_str()).map_err(db_err)? {
                        Some(v) => {
                            serde_json::from_slice::<SiteState>(v.value()).unwrap_or_else(|e| {
                                tracing::warn!(site, error = %e, "unreadable parked crawl state");
                                SiteState::empty(&site)
                            })
                        }
                        None => SiteState::empty(&site),
                    },
                    Err(redb::TableError::TableDoesNotExist(_)) => SiteState::empty(&site),
                    Err(e) => return Err(db_err(e)),
                };
                let links = links_in(&r, &site)?;
                state
                    .queued
                    .extend(links.iter().filter_map(|l| l.to_queued_of(&site)));
                Ok(state)
            })
        })
        .await
    }

    /// Forget the state and the links of a site.
    pub async fn remove(&self, site: &str) -> StoreResult<()> {
        let store = self.db.clone();
        let site = site.to_string();
        blocking(move || {
            store.run(|db| {
                let w = db.begin_write().map_err(db_err)?;
                {
                    let mut t = w.open_table(PARKED).map_err(db_err)?;
                    t.remove(site.as_str()).map_err(db_err)?;
                    let mut l = w.open_table(PARKED_LINKS).map_err(db_err)?;
                    l.retain_in(
                        (site.as_str(), "")..(site.as_str(), "\u{10FFFF}"),
                        |_, _| false,
                    )
                    .map_err(db_err)?;
                }
                w.commit().map_err(db_err)
            })
        })
        .await
    }

    /// Every site with a parked state or parked links.
    pub async fn sites(&self) -> StoreResult<Vec<String>> {
        let store = self.db.clone();
        blocking(move || {
            store.run(|db| {
                let r = db.begin_read().map_err(db_err)?;
                let mut out = std::collections::BTreeSet::new();
                match r.open_table(PARKED) {
                    Ok(t) => {
                        for row in t.iter().map_err(db_err)? {
                            out.insert(row.map_err(db_err)?.0.value().to_string());
                        }
                    }
                    Err(redb::TableError::TableDoesNotExist(_)) => {}
                    Err(e) => return Err(db_err(e)),
                }
                match r.open_table(PARKED_LINKS) {
                    Ok(t) => {
                        // Jump from site to site rather than walking every link.
                        let mut from = String::new();
                        loop {
                            let next = t
                                .range((from.as_str(), "")..)
                                .map_err(db_err)?
                                .next()
                                .transpose()
                                .map_err(db_err)?
                                .map(|(k, _)| k.value().0.to_string());
                            match next {
                                Some(site) => {
                                    from = format!("{site}\u{0}");
                                    out.insert(site);
                                }
                                None => break,
                            }
                        }
                    }
                    Err(redb::TableError::TableDoesNotExist(_)) => {}
                    Err(e) => return Err(db_err(e)),
                }
                Ok(out.into_iter().collect())
            })
        })
        .await
    }

    /// Keep links of `site` (the first anchor seen of each URL is kept).
    pub async fn add_links(&self, site: &str, links: Vec<Link>) -> StoreResult<()> {
        if links.is_empty() {
            return Ok(());
        }
        let store = self.db.clone();
        let site = site.to_string();
        blocking(move || {
            store.run(|db| {
                let w = db.begin_write().map_err(db_err)?;
                {
                    let mut t = w.open_table(PARKED_LINKS).map_err(db_err)?;
                    for l in &links {
                        let key = (site.as_str(), l.url.as_str());
                        if t.get(key).map_err(db_err)?.is_some() {
                            continue;
                        }
                        let bytes = serde_json::to_vec(l).map_err(db_err)?;
                        t.insert(key, bytes.as_slice()).map_err(db_err)?;
                    }
                }
                w.commit().map_err(db_err)
            })
        })
        .await
    }

    /// The parked links of `site`.
    #[cfg(test)]
    pub async fn links(&self, site: &str) -> StoreResult<Vec<Link>> {
        let store = self.db.clone();
        let site = site.to_string();
        blocking(move || store.run(|db| links_in(&db.begin_read().map_err(db_err)?, &site))).await
    }
}

fn links_in(r: &redb::ReadTransaction, site: &str) -> StoreResult<Vec<Link>> {
    let t = match r.open_table(PARKED_LINKS) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(db_err(e)),
    };
    let mut out = Vec::new();
    for row in t.range((site, "")..(site, "\u{10FFFF}")).map_err(db_err)? {
        let (_, v) = row.map_err(db_err)?;
        if let Ok(l) = serde_json::from_slice::<Link>(v.value()) {
            out.push(l);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(u: &str) -> HandoffItem {
        HandoffItem {
            link: Link {
                url: u.to_string(),
                depth: 1,
                anchor: Some("a".into()),
                source: None,
                scope: None,
            },
            hops: 0,
        }
    }

    fn link(u: &str, a: &str) -> Link {
        Link {
            url: u.into(),
            depth: 2,
            anchor: Some(a.into()),
            source: None,
            scope: None,
        }
    }

    #[tokio::test]
    async fn items_survive_reopen_until_removed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("node.redb");
        {
            let (o, _) = open(&p).await.unwrap();
            o.push(vec![item("http://a/"), item("http://b/")])
                .await
                .unwrap();
        }
        let (o, _) = open(&p).await.unwrap();
        let got = o.peek(10).await.unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].1.link.url, "http://a/");
        o.remove(vec![got[0].0]).await.unwrap();
        o.push(vec![item("http://c/")]).await.unwrap();
        let urls: Vec<_> = o
            .peek(10)
            .await
            .unwrap()
            .into_iter()
            .map(|(_, i)| i.link.url)
            .collect();
        assert_eq!(
            urls,
            vec!["http://b/", "http://c/"],
            "order kept, new seq after reopen"
        );
        assert_eq!(o.len().await.unwrap(), 2);
    }

    #[test]
    fn outbox_rows_keep_the_flat_json_layout() {
        let json = serde_json::to_value(item("http://a/")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"url": "http://a/", "depth": 1, "anchor": "a", "hops": 0})
        );
    }

    #[tokio::test]
    async fn parked_states_replace_and_forget() {
        let dir = tempfile::tempdir().unwrap();
        let (_, p) = open(&dir.path().join("node.redb")).await.unwrap();
        assert!(p.sites().await.unwrap().is_empty());
        let mut s = SiteState::empty("a.example");
        s.done.push(peersearch_crawler::DoneUrl {
            url: peersearch_crawler::normalize("http://a.example/1", None).unwrap(),
            fetched_at: 5,
        });
        p.put(SiteState::empty("a.example")).await.unwrap();
        p.put(s.clone()).await.unwrap();
        assert_eq!(p.state("a.example").await.unwrap(), s);
        assert_eq!(p.sites().await.unwrap(), vec!["a.example".to_string()]);
        p.remove("a.example").await.unwrap();
        assert_eq!(
            p.state("a.example").await.unwrap(),
            SiteState::empty("a.example")
        );
    }

    #[tokio::test]
    async fn parked_links_are_listed_per_site_and_forgotten_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let (_, p) = open(&dir.path().join("node.redb")).await.unwrap();
        p.add_links("a.example", vec![link("http://a.example/1", "one")])
            .await
            .unwrap();
        p.add_links(
            "a.example",
            vec![
                link("http://a.example/1", "again"),
                link("http://a.example/2", "two"),
            ],
        )
        .await
        .unwrap();
        p.add_links("b.example", vec![link("http://b.example/", "b")])
            .await
            .unwrap();
        p.put(SiteState::empty("c.example")).await.unwrap();
        assert_eq!(
            p.sites().await.unwrap(),
            vec!["a.example", "b.example", "c.example"]
        );
        let a = p.links("a.example").await.unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(
            a[0].anchor.as_deref(),
            Some("one"),
            "the first anchor is kept"
        );
        assert_eq!(
            p.state("a.example").await.unwrap().queued.len(),
            2,
            "parked links count as queued"
        );
        p.remove("a.example").await.unwrap();
        assert!(p.links("a.example").await.unwrap().is_empty());
        assert_eq!(p.links("b.example").await.unwrap().len(), 1);
        assert_eq!(p.sites().await.unwrap(), vec!["b.example", "c.example"]);
    }
}
