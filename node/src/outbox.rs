//! The hand-off outbox: URLs of sites that another peer owns, persisted until that peer
//! acknowledges them (DESIGN.md: "the receiver persists it before acknowledging, the sender
//! retries until acknowledged").
//!
//! Both directions use it: links found while crawling and seeds are pushed here when their
//! site belongs to someone else, and a received hand-off is pushed here before it is
//! acknowledged; the router then either enqueues each URL locally (this peer is the primary,
//! or the hop budget is spent) or sends it on.

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("handoff_outbox");
/// Same-site links replicated with documents: (site, url) -> JSON [`ParkedLink`].
const PARKED_LINKS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("parked_links");

/// A link of a site this peer replicates, kept in case it becomes the site's primary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParkedLink {
    /// Normalized URL.
    pub url: String,
    /// Link depth from its seed.
    pub depth: u32,
    /// Anchor text of the link.
    pub anchor: Option<String>,
}

/// Errors of the node's own store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The embedded database failed.
    #[error("store: {0}")]
    Db(String),
}

fn db_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Db(e.to_string())
}

/// One URL on its way to its owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffItem {
    /// Normalized URL.
    pub url: String,
    /// Link depth from its seed.
    pub depth: u32,
    /// Anchor text of the link that found it.
    pub anchor: Option<String>,
    /// How many peers forwarded it already.
    pub hops: u8,
}

/// The persistent outbox (a table of the node's redb store).
#[derive(Clone)]
pub struct Outbox {
    db: Arc<Database>,
    next: Arc<AtomicU64>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").finish_non_exhaustive()
    }
}

impl Outbox {
    /// Open (or create) the store at `path`.
    pub fn open(path: &Path) -> Result<Outbox, StoreError> {
        let db = Database::create(path).map_err(db_err)?;
        Self::with_db(Arc::new(db))
    }

    /// Use an already opened database.
    pub fn with_db(db: Arc<Database>) -> Result<Outbox, StoreError> {
        let w = db.begin_write().map_err(db_err)?;
        let last = {
            let t = w.open_table(OUTBOX).map_err(db_err)?;
            t.last().map_err(db_err)?.map(|(k, _)| k.value())
        };
        w.commit().map_err(db_err)?;
        Ok(Outbox {
            db,
            next: Arc::new(AtomicU64::new(last.map_or(0, |l| l + 1))),
        })
    }

    /// Persist items (durable when this returns).
    pub fn push(&self, items: &[HandoffItem]) -> Result<(), StoreError> {
        if items.is_empty() {
            return Ok(());
        }
        let w = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = w.open_table(OUTBOX).map_err(db_err)?;
            for it in items {
                let seq = self.next.fetch_add(1, Ordering::Relaxed);
                let bytes = serde_json::to_vec(it).map_err(db_err)?;
                t.insert(seq, bytes.as_slice()).map_err(db_err)?;
            }
        }
        w.commit().map_err(db_err)
    }

    /// Up to `max` oldest items with their sequence numbers.
    pub fn peek(&self, max: usize) -> Result<Vec<(u64, HandoffItem)>, StoreError> {
        let r = self.db.begin_read().map_err(db_err)?;
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
    }

    /// Remove acknowledged items.
    pub fn remove(&self, seqs: &[u64]) -> Result<(), StoreError> {
        if seqs.is_empty() {
            return Ok(());
        }
        let w = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = w.open_table(OUTBOX).map_err(db_err)?;
            for s in seqs {
                t.remove(*s).map_err(db_err)?;
            }
        }
        w.commit().map_err(db_err)
    }

    /// How many items wait.
    pub fn len(&self) -> Result<u64, StoreError> {
        let r = self.db.begin_read().map_err(db_err)?;
        match r.open_table(OUTBOX) {
            Ok(t) => t.len().map_err(db_err),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
            Err(e) => Err(db_err(e)),
        }
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }

    /// The database, to share with [`Parked`].
    pub fn db(&self) -> Arc<Database> {
        self.db.clone()
    }
}

const PARKED: TableDefinition<&str, &[u8]> = TableDefinition::new("parked_site_state");

/// Crawl states of sites this peer replicates but does not crawl: the primary shares them so
/// that whoever becomes primary next continues the crawl where it stopped.
#[derive(Clone)]
pub struct Parked {
    db: Arc<Database>,
}

impl std::fmt::Debug for Parked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parked").finish_non_exhaustive()
    }
}

impl Parked {
    /// Use the node's database.
    pub fn with_db(db: Arc<Database>) -> Parked {
        Parked { db }
    }

    /// Store (replace) the state of a site.
    pub fn put(&self, site: &str, state: &[u8]) -> Result<(), StoreError> {
        let w = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = w.open_table(PARKED).map_err(db_err)?;
            t.insert(site, state).map_err(db_err)?;
        }
        w.commit().map_err(db_err)
    }

    /// The state of a site, if parked.
    pub fn get(&self, site: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let r = self.db.begin_read().map_err(db_err)?;
        match r.open_table(PARKED) {
            Ok(t) => Ok(t.get(site).map_err(db_err)?.map(|v| v.value().to_vec())),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(db_err(e)),
        }
    }

    /// Forget the state of a site.
    pub fn remove(&self, site: &str) -> Result<(), StoreError> {
        let w = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = w.open_table(PARKED).map_err(db_err)?;
            t.remove(site).map_err(db_err)?;
            let mut l = w.open_table(PARKED_LINKS).map_err(db_err)?;
            l.retain_in((site, "")..(site, "\u{10FFFF}"), |_, _| false)
                .map_err(db_err)?;
        }
        w.commit().map_err(db_err)
    }

    /// Every site with a parked state or parked links.
    pub fn sites(&self) -> Result<Vec<String>, StoreError> {
        let r = self.db.begin_read().map_err(db_err)?;
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
    }

    /// Keep links of `site` (the first anchor seen of each URL is kept).
    pub fn add_links(&self, site: &str, links: &[ParkedLink]) -> Result<(), StoreError> {
        if links.is_empty() {
            return Ok(());
        }
        let w = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = w.open_table(PARKED_LINKS).map_err(db_err)?;
            for l in links {
                if t.get((site, l.url.as_str())).map_err(db_err)?.is_some() {
                    continue;
                }
                let bytes = serde_json::to_vec(l).map_err(db_err)?;
                t.insert((site, l.url.as_str()), bytes.as_slice())
                    .map_err(db_err)?;
            }
        }
        w.commit().map_err(db_err)
    }

    /// The parked links of `site`.
    pub fn links(&self, site: &str) -> Result<Vec<ParkedLink>, StoreError> {
        let r = self.db.begin_read().map_err(db_err)?;
        let t = match r.open_table(PARKED_LINKS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(db_err(e)),
        };
        let mut out = Vec::new();
        for row in t.range((site, "")..(site, "\u{10FFFF}")).map_err(db_err)? {
            let (_, v) = row.map_err(db_err)?;
            if let Ok(l) = serde_json::from_slice::<ParkedLink>(v.value()) {
                out.push(l);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(u: &str) -> HandoffItem {
        HandoffItem {
            url: u.to_string(),
            depth: 1,
            anchor: Some("a".into()),
            hops: 0,
        }
    }

    #[test]
    fn items_survive_reopen_until_removed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("node.redb");
        {
            let o = Outbox::open(&p).unwrap();
            o.push(&[item("http://a/"), item("http://b/")]).unwrap();
        }
        let o = Outbox::open(&p).unwrap();
        let got = o.peek(10).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].1.url, "http://a/");
        o.remove(&[got[0].0]).unwrap();
        o.push(&[item("http://c/")]).unwrap();
        let urls: Vec<_> = o
            .peek(10)
            .unwrap()
            .into_iter()
            .map(|(_, i)| i.url)
            .collect();
        assert_eq!(
            urls,
            vec!["http://b/", "http://c/"],
            "order kept, new seq after reopen"
        );
        assert_eq!(o.len().unwrap(), 2);
    }

    #[test]
    fn parked_states_replace_and_forget() {
        let dir = tempfile::tempdir().unwrap();
        let o = Outbox::open(&dir.path().join("node.redb")).unwrap();
        let p = Parked::with_db(o.db());
        assert!(p.sites().unwrap().is_empty());
        p.put("a.example", b"one").unwrap();
        p.put("a.example", b"two").unwrap();
        assert_eq!(p.get("a.example").unwrap().as_deref(), Some(&b"two"[..]));
        assert_eq!(p.sites().unwrap(), vec!["a.example".to_string()]);
        p.remove("a.example").unwrap();
        assert_eq!(p.get("a.example").unwrap(), None);
    }

    #[test]
    fn parked_links_are_listed_per_site_and_forgotten_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let o = Outbox::open(&dir.path().join("node.redb")).unwrap();
        let p = Parked::with_db(o.db());
        let link = |u: &str, a: &str| ParkedLink {
            url: u.into(),
            depth: 2,
            anchor: Some(a.into()),
        };
        p.add_links("a.example", &[link("http://a.example/1", "one")])
            .unwrap();
        p.add_links(
            "a.example",
            &[
                link("http://a.example/1", "again"),
                link("http://a.example/2", "two"),
            ],
        )
        .unwrap();
        p.add_links("b.example", &[link("http://b.example/", "b")])
            .unwrap();
        p.put("c.example", b"state").unwrap();
        assert_eq!(
            p.sites().unwrap(),
            vec!["a.example", "b.example", "c.example"]
        );
        let a = p.links("a.example").unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(
            a[0].anchor.as_deref(),
            Some("one"),
            "the first anchor is kept"
        );
        p.remove("a.example").unwrap();
        assert!(p.links("a.example").unwrap().is_empty());
        assert_eq!(p.links("b.example").unwrap().len(), 1);
        assert_eq!(p.sites().unwrap(), vec!["b.example", "c.example"]);
    }
}
