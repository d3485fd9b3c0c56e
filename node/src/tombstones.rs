//! Tombstones: the URLs whose documents a revisit removed (the page went away, moved, or is no
//! longer indexable), with the time of the removal, in the node's store (`node.redb`).
//!
//! A removal must never be undone by a copy that missed it. So the removal time is a version
//! like a document's fetch time, and the newest wins: a replica document fetched at or before a
//! tombstone is stale and is not stored; a tombstone takes part in a site's digest like a
//! document (its URL with its removal time), so an owner that still holds the old document
//! sees that the others hold something newer and never pushes it back during repair, and an
//! owner that holds the tombstone sends it to the owners that lack it. A page that comes back
//! (fetched after its removal) clears its tombstone.
//!
//! Tombstones are bounded per site ([`MAX_TOMBSTONES_PER_SITE`], the crawler's page limit
//! twice over): past it, new ones are not kept (a removal still happens; only its protection
//! against stale copies is lost).

use crate::store::{StoreError, StoreResult, blocking, db_err};
use peersearch_crawler::reopen::Reopening;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use std::collections::HashSet;
use std::sync::Arc;

/// (site, url) -> unix seconds of the removal.
const TOMBSTONES: TableDefinition<(&str, &str), i64> = TableDefinition::new("tombstones");

/// Upper bound for URL keys in range scans: normalized URLs are ASCII below 0x7f.
const URL_KEY_MAX: &str = "\u{7f}";

/// Tombstones kept per site at most.
pub const MAX_TOMBSTONES_PER_SITE: usize = 20_000;

/// One tombstone: site, URL, removal time.
pub type Tombstone = (String, String, i64);

/// The tombstones (a table of the node's store). Cheap to clone.
#[derive(Clone)]
pub struct Tombstones {
    db: Arc<Reopening>,
}

impl std::fmt::Debug for Tombstones {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tombstones").finish_non_exhaustive()
    }
}

impl Tombstones {
    /// The tombstones of the store `db` (its table created if missing). Blocking.
    pub(crate) fn with_db(db: Arc<Reopening>) -> StoreResult<Tombstones> {
        db.run(|db| {
            let w = db.begin_write().map_err(db_err)?;
            w.open_table(TOMBSTONES).map_err(db_err)?;
            w.commit().map_err(db_err)
        })?;
        Ok(Tombstones { db })
    }

    /// The tombstones of a store opened with [`Tombstones::with_db`] already.
    pub(crate) fn of_db(db: Arc<Reopening>) -> Tombstones {
        Tombstones { db }
    }

    /// Record removals (a later time replaces an earlier one); returns how many were kept.
    pub async fn record(&self, entries: Vec<Tombstone>) -> StoreResult<usize> {
        if entries.is_empty() {
            return Ok(0);
        }
        let store = self.db.clone();
        blocking(move || {
            store.run(|db| {
                let w = db.begin_write().map_err(db_err)?;
                let mut kept = 0;
                // Tombstones per site, counted once per call.
                let mut counts: std::collections::HashMap<String, usize> = Default::default();
                {
                    let mut t = w.open_table(TOMBSTONES).map_err(db_err)?;
                    for (site, url, at) in &entries {
                        let key = (site.as_str(), url.as_str());
                        let old = t.get(key).map_err(db_err)?.map(|g| g.value());
                        match old {
                            Some(old) if old >= *at => continue,
                            Some(_) => {}
                            None => {
                                let count = match counts.get_mut(site) {
                                    Some(n) => n,
                                    None => {
                                        let n = t
                                            .range(
                                                (site.as_str(), "")..(site.as_str(), URL_KEY_MAX),
                                            )
                                            .map_err(db_err)?
                                            .take(MAX_TOMBSTONES_PER_SITE)
                                            .count();
                                        counts.entry(site.clone()).or_insert(n)
                                    }
                                };
                                if *count >= MAX_TOMBSTONES_PER_SITE {
                                    tracing::debug!(site, "too many tombstones for a site");
                                    continue;
                                }
                                *count += 1;
                            }
                        }
                        t.insert(key, *at).map_err(db_err)?;
                        kept += 1;
                    }
                }
                w.commit().map_err(db_err)?;
                Ok(kept)
            })
        })
        .await
    }

    /// The tombstones of `site`: (url, removal time).
    pub async fn of_site(&self, site: &str) -> StoreResult<Vec<(String, i64)>> {
        let store = self.db.clone();
        let site = site.to_string();
        blocking(move || {
            store.run(|db| {
                let r = db.begin_read().map_err(db_err)?;
                let t = r.open_table(TOMBSTONES).map_err(db_err)?;
                let mut out = Vec::new();
                for entry in t
                    .range((site.as_str(), "")..(site.as_str(), URL_KEY_MAX))
                    .map_err(db_err)?
                {
                    let (k, v) = entry.map_err(db_err)?;
                    out.push((k.value().1.to_string(), v.value()));
                }
                Ok::<_, StoreError>(out)
            })
        })
        .await
    }

    /// Of `docs` ((site, url, fetch time)), the URLs a tombstone at or after their fetch
    /// time makes stale.
    pub async fn stale(&self, docs: Vec<Tombstone>) -> StoreResult<HashSet<String>> {
        if docs.is_empty() {
            return Ok(HashSet::new());
        }
        let store = self.db.clone();
        blocking(move || {
            store.run(|db| {
                let r = db.begin_read().map_err(db_err)?;
                let t = r.open_table(TOMBSTONES).map_err(db_err)?;
                let mut out = HashSet::new();
                for (site, url, fetched_at) in &docs {
                    let at = t
                        .get((site.as_str(), url.as_str()))
                        .map_err(db_err)?
                        .map(|g| g.value());
                    if at.is_some_and(|at| at >= *fetched_at) {
                        out.insert(url.clone());
                    }
                }
                Ok::<_, StoreError>(out)
            })
        })
        .await
    }

    /// Clear the tombstones that `docs` ((site, url, fetch time)) outdate: pages that came back.
    pub async fn clear_older(&self, docs: Vec<Tombstone>) -> StoreResult<()> {
        if docs.is_empty() {
            return Ok(());
        }
        let store = self.db.clone();
        blocking(move || {
            store.run(|db| {
                let w = db.begin_write().map_err(db_err)?;
                {
                    let mut t = w.open_table(TOMBSTONES).map_err(db_err)?;
                    for (site, url, fetched_at) in &docs {
                        let key = (site.as_str(), url.as_str());
                        let at = t.get(key).map_err(db_err)?.map(|g| g.value());
                        if at.is_some_and(|at| at < *fetched_at) {
                            t.remove(key).map_err(db_err)?;
                        }
                    }
                }
                w.commit().map_err(db_err)
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn open() -> (tempfile::TempDir, Tombstones) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.redb");
        let db = Arc::new(Reopening::create(&path, |_| Ok(())).unwrap());
        (dir, Tombstones::with_db(db).unwrap())
    }

    fn t(url: &str, at: i64) -> Tombstone {
        ("a.example".into(), url.into(), at)
    }

    #[tokio::test]
    async fn the_newest_word_on_a_url_wins() {
        let (_dir, ts) = open().await;
        assert_eq!(
            ts.record(vec![t("http://a.example/x", 100)]).await.unwrap(),
            1
        );
        assert_eq!(
            ts.record(vec![t("http://a.example/x", 50)]).await.unwrap(),
            0,
            "an older removal changes nothing"
        );
        let stale = ts
            .stale(vec![
                t("http://a.example/x", 90),
                t("http://a.example/x", 100),
                t("http://a.example/y", 1),
            ])
            .await
            .unwrap();
        assert_eq!(stale, HashSet::from(["http://a.example/x".to_string()]));
        assert!(
            ts.stale(vec![t("http://a.example/x", 101)])
                .await
                .unwrap()
                .is_empty(),
            "a copy fetched after the removal is newer"
        );
        ts.clear_older(vec![t("http://a.example/x", 100)])
            .await
            .unwrap();
        assert_eq!(ts.of_site("a.example").await.unwrap().len(), 1, "not newer");
        ts.clear_older(vec![t("http://a.example/x", 101)])
            .await
            .unwrap();
        assert!(
            ts.of_site("a.example").await.unwrap().is_empty(),
            "came back"
        );
    }

    #[tokio::test]
    async fn tombstones_are_bounded_per_site() {
        let (_dir, ts) = open().await;
        let many: Vec<Tombstone> = (0..MAX_TOMBSTONES_PER_SITE + 10)
            .map(|i| t(&format!("http://a.example/{i}"), 1))
            .collect();
        assert_eq!(ts.record(many).await.unwrap(), MAX_TOMBSTONES_PER_SITE);
        let other = ("b.example".to_string(), "http://b.example/".to_string(), 1);
        assert_eq!(
            ts.record(vec![other]).await.unwrap(),
            1,
            "another site has room"
        );
    }
}
