//! Anchor text from every link, network-wide.
//!
//! Every link any peer finds travels to the primary of its target's site with the hand-off
//! that already exists, carrying its anchor text and the page it was found on. The primary
//! keeps one [`AnchorRecord`] per target URL in the node's store (`node.redb`) and re-indexes
//! the target when its record changes, so a page's anchor text and in-link counts no longer
//! depend on which links the crawler happened to know when it fetched the page, nor on which
//! peer saw which link.
//!
//! A record is a set, and every cap keeps the smallest hashes of that set, so merging the same
//! votes in any order, any number of times, gives the same record: the central peer and a
//! network of peers that saw the same links in another order agree.
//! - votes: `(text, source site)` pairs, at most [`MAX_VOTES`]. The same text from 1 000
//!   pages of one site is one vote; three sites saying it are three votes.
//! - linking pages and linking sites: K-minimum-values sketches ([`SKETCH`] smallest hashes),
//!   exact below `SKETCH` and an estimate above.

use peersearch_crawler::reopen::Reopening;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use crate::store::{StoreError, StoreResult, blocking, db_err};

/// Target URL -> JSON [`AnchorRecord`].
const ANCHORS: TableDefinition<&str, &[u8]> = TableDefinition::new("anchors");
/// Target URLs whose record changed and whose document is not re-indexed yet.
const DIRTY: TableDefinition<&str, u64> = TableDefinition::new("anchors_dirty");
/// The generation counter of dirty marks (one row, key 0).
const GENERATION: TableDefinition<u8, u64> = TableDefinition::new("anchors_generation");

/// Most distinct `(text, site)` votes kept per URL.
pub const MAX_VOTES: usize = 64;
/// Size of the linking-pages and linking-sites sketches.
pub const SKETCH: usize = 64;
/// Longest anchor text kept, in characters.
pub const MAX_ANCHOR_CHARS: usize = 120;

/// One vote: an anchor text given by a site.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Vote {
    /// Hash of `(text lowercased, site)`: the cap keeps the smallest, whatever the order.
    key: u64,
    /// The anchor text, whitespace folded.
    pub text: String,
    /// The site of the page the link was on.
    pub site: String,
}

/// What the network knows of the links to one URL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnchorRecord {
    votes: BTreeSet<Vote>,
    pages: BTreeSet<u64>,
    sites: BTreeSet<u64>,
}

/// One link seen: to `target`, with anchor `text`, on page `source` of site `source_site`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// The target URL (normalized).
    pub target: String,
    /// The anchor text, if the link had one.
    pub text: Option<String>,
    /// The URL of the page the link was on.
    pub source: String,
    /// That page's site.
    pub source_site: String,
}

fn hash(parts: &[&str]) -> u64 {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    let d = h.finalize();
    u64::from_be_bytes(d[..8].try_into().expect("a SHA-256 digest has 32 bytes"))
}

/// Insert into a set that keeps only its `cap` smallest members; true when it changed.
fn insert_capped<T: Ord>(set: &mut BTreeSet<T>, item: T, cap: usize) -> bool {
    if set.len() >= cap && set.last().is_some_and(|max| item >= *max) {
        return false;
    }
    if !set.insert(item) {
        return false;
    }
    while set.len() > cap {
        set.pop_last();
    }
    true
}

/// Distinct members counted by a K-minimum-values sketch of `SKETCH` hashes.
fn sketch_count(set: &BTreeSet<u64>) -> u32 {
    if set.len() < SKETCH {
        return set.len() as u32;
    }
    let max = set.last().copied().unwrap_or(u64::MAX).max(1);
    let estimate = (SKETCH as f64 - 1.0) * (u64::MAX as f64 / max as f64);
    estimate.min(f64::from(u32::MAX)) as u32
}

/// Whitespace folded, trimmed, at most [`MAX_ANCHOR_CHARS`]; `None` when nothing is left.
pub fn clean_text(text: &str) -> Option<String> {
    let folded: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(MAX_ANCHOR_CHARS)
        .collect();
    let folded = folded.trim().to_string();
    (!folded.is_empty()).then_some(folded)
}

impl AnchorRecord {
    /// Count one link; true when the record changed. A page linking to itself counts
    /// nothing.
    pub fn add(&mut self, link: &Incoming) -> bool {
        if link.source == link.target {
            return false;
        }
        let mut changed = insert_capped(&mut self.pages, hash(&[&link.source]), SKETCH);
        changed |= insert_capped(&mut self.sites, hash(&[&link.source_site]), SKETCH);
        if let Some(text) = link.text.as_deref().and_then(clean_text) {
            let vote = Vote {
                key: hash(&[&text.to_lowercase(), &link.source_site]),
                text,
                site: link.source_site.clone(),
            };
            changed |= insert_capped(&mut self.votes, vote, MAX_VOTES);
        }
        changed
    }

    /// Merge another record of the same URL; true when this one changed.
    pub fn merge(&mut self, other: &AnchorRecord) -> bool {
        let mut changed = false;
        for v in &other.votes {
            changed |= insert_capped(&mut self.votes, v.clone(), MAX_VOTES);
        }
        for p in &other.pages {
            changed |= insert_capped(&mut self.pages, *p, SKETCH);
        }
        for s in &other.sites {
            changed |= insert_capped(&mut self.sites, *s, SKETCH);
        }
        changed
    }

    /// The anchor text to index: each vote's text once (a text given by three sites three
    /// times), in a fixed order.
    pub fn anchor_text(&self) -> String {
        let mut texts: Vec<&str> = self.votes.iter().map(|v| v.text.as_str()).collect();
        texts.sort_unstable();
        texts.join("\n")
    }

    /// Distinct pages linking here (estimated past [`SKETCH`]).
    pub fn inlink_pages(&self) -> u32 {
        sketch_count(&self.pages)
    }

    /// Distinct sites linking here (estimated past [`SKETCH`]).
    pub fn inlink_sites(&self) -> u32 {
        sketch_count(&self.sites)
    }

    /// The votes, for inspection.
    pub fn votes(&self) -> impl Iterator<Item = &Vote> {
        self.votes.iter()
    }
}

/// The anchor store (`anchors.redb` in the data dir): a cloneable handle.
///
/// redb refuses every transaction after one failed with an I/O error (a full disk) until the
/// database is opened again, so a failed operation closes it and the next one reopens it:
/// anchors are counted again once space returns, without a restart. The database has a file
/// of its own so that this never closes the outbox under another component's feet.
#[derive(Clone)]
pub struct Anchors {
    db: Arc<Reopening>,
}

/// Create the tables (at open and after every reopen).
fn init(db: &Database) -> Result<(), redb::Error> {
    let txn = db.begin_write()?;
    txn.open_table(ANCHORS)?;
    txn.open_table(DIRTY)?;
    txn.open_table(GENERATION)?;
    txn.commit()?;
    Ok(())
}

impl std::fmt::Debug for Anchors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Anchors").finish_non_exhaustive()
    }
}

fn decode(bytes: &[u8]) -> StoreResult<AnchorRecord> {
    serde_json::from_slice(bytes).map_err(db_err)
}

impl Anchors {
    /// Open (or create) the anchor store at `path`.
    pub async fn open(path: &Path) -> StoreResult<Anchors> {
        let path = path.to_path_buf();
        blocking(move || {
            Ok(Anchors {
                db: Arc::new(Reopening::create(&path, init)?),
            })
        })
        .await
    }

    /// Count `links`; the URLs whose record changed are marked dirty (durably, in the same
    /// transaction) and returned.
    pub async fn record(&self, links: Vec<Incoming>) -> StoreResult<Vec<String>> {
        if links.is_empty() {
            return Ok(Vec::new());
        }
        let store = self.db.clone();
        blocking(move || {
            store.run(|db| {
                let mut by_target: BTreeMap<String, Vec<Incoming>> = BTreeMap::new();
                for l in links {
                    by_target.entry(l.target.clone()).or_default().push(l);
                }
                let records = by_target.into_iter().map(|(target, links)| {
                    let f = move |r: &mut AnchorRecord| {
                        let mut changed = false;
                        for l in &links {
                            changed |= r.add(l);
                        }
                        changed
                    };
                    (target, f)
                });
                update(db, records)
            })
        })
        .await
    }

    /// Merge records received from another owner (replication); returns the changed URLs.
    pub async fn merge(&self, records: Vec<(String, AnchorRecord)>) -> StoreResult<Vec<String>> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let store = self.db.clone();
        blocking(move || {
            store.run(|db| {
                let records = records
                    .into_iter()
                    .map(|(url, other)| (url, move |r: &mut AnchorRecord| r.merge(&other)));
                update(db, records)
            })
        })
        .await
    }

    /// The records of `urls` (absent ones are left out).
    pub async fn get(&self, urls: Vec<String>) -> StoreResult<BTreeMap<String, AnchorRecord>> {
        let store = self.db.clone();
        blocking(move || {
            store.run(|db| {
                let txn = db.begin_read().map_err(db_err)?;
                let table = txn.open_table(ANCHORS).map_err(db_err)?;
                let mut out = BTreeMap::new();
                for u in urls {
                    if let Some(v) = table.get(u.as_str()).map_err(db_err)? {
                        out.insert(u, decode(v.value())?);
                    }
                }
                Ok(out)
            })
        })
        .await
    }

    /// At most `max` dirty URLs (their record changed since their document was indexed),
    /// each with the generation of its mark (see [`Anchors::clean`]).
    pub async fn dirty(&self, max: usize) -> StoreResult<Vec<(String, u64)>> {
        let store = self.db.clone();
        blocking(move || {
            store.run(|db| {
                let txn = db.begin_read().map_err(db_err)?;
                let table = txn.open_table(DIRTY).map_err(db_err)?;
                let mut out = Vec::new();
                for row in table.iter().map_err(db_err)?.take(max) {
                    let (k, v) = row.map_err(db_err)?;
                    out.push((k.value().to_string(), v.value()));
                }
                Ok(out)
            })
        })
        .await
    }

    /// Clear the dirty marks of `urls` (their documents are re-indexed and committed), each
    /// only if it is still of the generation read by [`Anchors::dirty`]: a vote counted
    /// meanwhile keeps its URL dirty.
    pub async fn clean(&self, urls: Vec<(String, u64)>) -> StoreResult<()> {
        if urls.is_empty() {
            return Ok(());
        }
        let store = self.db.clone();
        blocking(move || {
            store.run(|db| {
                let txn = db.begin_write().map_err(db_err)?;
                {
                    let mut table = txn.open_table(DIRTY).map_err(db_err)?;
                    for (u, generation) in &urls {
                        let current = table.get(u.as_str()).map_err(db_err)?.map(|g| g.value());
                        if current == Some(*generation) {
                            table.remove(u.as_str()).map_err(db_err)?;
                        }
                    }
                }
                txn.commit().map_err(db_err)
            })
        })
        .await
    }
}

/// Apply `f` to the record of each URL in one transaction; mark and return the changed ones.
fn update<F>(
    db: &Database,
    records: impl Iterator<Item = (String, F)>,
) -> Result<Vec<String>, StoreError>
where
    F: FnOnce(&mut AnchorRecord) -> bool,
{
    let txn = db.begin_write().map_err(db_err)?;
    let mut changed = Vec::new();
    {
        let mut table = txn.open_table(ANCHORS).map_err(db_err)?;
        let mut dirty = txn.open_table(DIRTY).map_err(db_err)?;
        let mut generations = txn.open_table(GENERATION).map_err(db_err)?;
        let mut generation = generations.get(0).map_err(db_err)?.map_or(0, |g| g.value());
        for (url, f) in records {
            let mut record = match table.get(url.as_str()).map_err(db_err)? {
                Some(v) => decode(v.value())?,
                None => AnchorRecord::default(),
            };
            if f(&mut record) {
                tracing::trace!(url, anchors = ?record.anchor_text(), "anchor record changed");
                let bytes = serde_json::to_vec(&record).map_err(db_err)?;
                table
                    .insert(url.as_str(), bytes.as_slice())
                    .map_err(db_err)?;
                generation += 1;
                dirty.insert(url.as_str(), generation).map_err(db_err)?;
                changed.push(url);
            }
        }
        generations.insert(0, generation).map_err(db_err)?;
    }
    txn.commit().map_err(db_err)?;
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(target: &str, text: &str, source: &str) -> Incoming {
        let source_site = source.split('/').nth(2).unwrap_or_default().to_string();
        Incoming {
            target: target.into(),
            text: Some(text.into()),
            source: source.into(),
            source_site,
        }
    }

    #[test]
    fn one_site_repeating_a_text_is_one_vote_three_sites_are_three() {
        let mut r = AnchorRecord::default();
        for i in 0..1000 {
            r.add(&link(
                "http://t.example/",
                "Home",
                &format!("http://a.example/{i}"),
            ));
        }
        assert_eq!(r.anchor_text(), "Home");
        assert_eq!(r.votes().count(), 1);
        assert!(r.inlink_pages() > 500, "estimated: {}", r.inlink_pages());
        assert_eq!(r.inlink_sites(), 1);
        r.add(&link("http://t.example/", "home", "http://b.example/x"));
        r.add(&link(
            "http://t.example/",
            "Home  page",
            "http://c.example/x",
        ));
        assert_eq!(r.votes().count(), 3);
        assert_eq!(r.inlink_sites(), 3);
        assert_eq!(r.anchor_text(), "Home\nHome page\nhome");
    }

    #[test]
    fn the_order_of_links_does_not_change_the_record() {
        let links: Vec<Incoming> = (0..300)
            .map(|i| {
                link(
                    "http://t.example/",
                    &format!("text {}", i % 97),
                    &format!("http://s{}.example/p{i}", i % 13),
                )
            })
            .collect();
        let mut forward = AnchorRecord::default();
        links.iter().for_each(|l| {
            forward.add(l);
        });
        let mut backward = AnchorRecord::default();
        links.iter().rev().for_each(|l| {
            backward.add(l);
        });
        assert_eq!(forward, backward);
        assert_eq!(forward.votes().count(), MAX_VOTES, "capped");
        // Two halves merged in either order give the same record too.
        let (mut a, mut b) = (AnchorRecord::default(), AnchorRecord::default());
        for (i, l) in links.iter().enumerate() {
            if i % 2 == 0 {
                a.add(l)
            } else {
                b.add(l)
            };
        }
        let mut ab = a.clone();
        ab.merge(&b);
        let mut ba = b.clone();
        ba.merge(&a);
        assert_eq!(ab, forward);
        assert_eq!(ba, forward);
        assert!(!ab.merge(&b), "merging again changes nothing");
    }

    #[test]
    fn self_links_and_empty_texts_count_no_vote() {
        let mut r = AnchorRecord::default();
        assert!(!r.add(&link("http://t.example/", "me", "http://t.example/")));
        assert!(r.add(&link("http://t.example/", " \n ", "http://a.example/")));
        assert_eq!(r.votes().count(), 0);
        assert_eq!(r.inlink_pages(), 1);
        let long = "x".repeat(1000);
        r.add(&link("http://t.example/", &long, "http://a.example/"));
        assert_eq!(r.anchor_text().chars().count(), MAX_ANCHOR_CHARS);
    }

    #[tokio::test]
    async fn records_and_dirty_marks_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("anchors.redb");
        {
            let a = Anchors::open(&path).await.unwrap();
            let changed = a
                .record(vec![
                    link("http://t.example/", "one", "http://a.example/"),
                    link("http://t.example/", "one", "http://a.example/"),
                    link("http://u.example/", "two", "http://a.example/"),
                ])
                .await
                .unwrap();
            assert_eq!(changed.len(), 2);
            let again = a
                .record(vec![link("http://t.example/", "one", "http://a.example/")])
                .await
                .unwrap();
            assert!(again.is_empty(), "nothing new");
        }
        let a = Anchors::open(&path).await.unwrap();
        let dirty = a.dirty(10).await.unwrap();
        let urls: Vec<&str> = dirty.iter().map(|(u, _)| u.as_str()).collect();
        assert_eq!(urls, vec!["http://t.example/", "http://u.example/"]);
        let got = a.get(vec!["http://t.example/".into()]).await.unwrap();
        assert_eq!(got["http://t.example/"].anchor_text(), "one");
        // A vote counted after the dirty marks were read keeps its URL dirty.
        a.record(vec![link(
            "http://u.example/",
            "three",
            "http://b.example/",
        )])
        .await
        .unwrap();
        a.clean(dirty).await.unwrap();
        let left: Vec<String> = a
            .dirty(10)
            .await
            .unwrap()
            .into_iter()
            .map(|(u, _)| u)
            .collect();
        assert_eq!(left, vec!["http://u.example/"]);
    }
}
