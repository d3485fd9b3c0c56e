//! [`Shard`]: one peer's tantivy index.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tantivy::collector::TopDocs;
use tantivy::directory::MmapDirectory;
use tantivy::directory::error::LockError;
use tantivy::query::TermQuery;
use tantivy::schema::{IndexRecordOption, Schema};
use tantivy::{
    DocAddress, DocSet, Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, TERMINATED,
    TantivyDocument, TantivyError, Term,
};
use tracing::{debug, info, warn};

use crate::error::{Error, Result};
use crate::migrate::{self, sync_dir};
use crate::schema::{
    ANALYZER_NAME, Fields, build_schema, en_stem_analyzer, names, stored_document,
};
use crate::stats::StatsCache;
use crate::types::Document;

/// Most hits one search returns: the API's deepest page is offset 1000 + limit 100
/// (CONTRACT.md), and callers ask for `offset + limit`.
pub const MAX_TOP_K: usize = 1100;
/// Most documents one [`Shard::docs_for_site`] call returns (a replication batch).
pub const MAX_SITE_PAGE: usize = 1000;
/// Indexing heap of the writer. tantivy needs at least 15 MB per indexing thread; 50 MB
/// flushes segments rarely enough for crawl-sized batches (DEPENDENCIES.md).
const WRITER_HEAP_BYTES: usize = 50_000_000;
/// One indexing thread: the target machines have 2 cores, shared with crawling and search.
const WRITER_THREADS: usize = 1;
/// How long `open` waits for a writer lock held by a live process that is shutting down
/// (a lock left by a killed process is released by the OS and never waits).
const LOCK_RETRY_ATTEMPTS: u32 = 20;
const LOCK_RETRY_DELAY: Duration = Duration::from_millis(100);

/// One peer's index shard: documents keyed by URL, searched with BM25.
///
/// All methods block (tantivy does disk I/O and CPU work): async callers run them on
/// `tokio::task::spawn_blocking`, sharing the shard in an `Arc`. Writes (`upsert`,
/// `delete`) are staged until [`Shard::commit`]; reads (`search`, `get`, `num_docs`, ...)
/// see what was last committed.
pub struct Shard {
    index: Index,
    schema: Schema,
    reader: IndexReader,
    fields: Fields,
    writer: Mutex<WriterState>,
    dir: Option<PathBuf>,
    /// Makes the directory's entries durable after a commit: [`sync_dir`], replaced in tests.
    dir_sync: DirSync,
    /// Live-document statistics of the current searcher generation.
    stats_cache: Mutex<StatsCache>,
}

/// How a shard makes its directory's entries durable.
type DirSync = Box<dyn Fn(&Path) -> std::io::Result<()> + Send + Sync>;

struct WriterState {
    writer: IndexWriter,
    /// Every operation since the last successful commit, kept so that a failed commit
    /// (a full disk) can be retried: the writer is rolled back and these are replayed.
    staged: Vec<StagedOp>,
    /// The writer does not hold all of `staged` (a commit or an add failed).
    needs_replay: bool,
    /// A commit succeeded but the directory sync after it did not: the commit is not known
    /// to be durable, and the next commit retries the sync before it reports success.
    unsynced: bool,
}

enum StagedOp {
    Upsert { url: String, doc: TantivyDocument },
    Delete(String),
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard")
            .field("dir", &self.dir)
            .field("num_docs", &self.num_docs())
            .finish_non_exhaustive()
    }
}

impl Shard {
    /// Opens the shard in `dir`, creating the directory and an empty index if missing.
    /// Documents committed before survive; uncommitted ones are gone. A writer lock left by
    /// a killed process does not stop it (the OS released it); a lock held by a live process
    /// is waited for briefly, then reported as [`Error::Locked`].
    ///
    /// A shard written with an older schema (say, before the `chrome` field) is migrated
    /// first: rebuilt from its stored documents and swapped in so that a crash at any point
    /// leaves the old or the new index usable (see the `migrate` module); a migration a crash
    /// interrupted is finished or rolled back here.
    pub fn open(dir: &Path) -> Result<Shard> {
        migrate::recover(dir)?;
        if dir.exists() && migrate::needs_migration(dir)? {
            migrate::migrate(dir, None)?;
        }
        let created = !dir.exists();
        std::fs::create_dir_all(dir)?;
        if created && let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            // The new directory's own entry, which the syncs after each commit do not cover.
            sync_dir(parent).map_err(|source| Error::SyncDirectory {
                dir: parent.to_path_buf(),
                source,
            })?;
        }
        let (schema, fields) = build_schema();
        let directory = MmapDirectory::open(dir)?;
        let index = Index::open_or_create(directory, schema.clone())?;
        Self::from_index(index, schema, fields, Some(dir.to_path_buf()))
    }

    /// A shard that lives in memory only (tests, benchmarks, throwaway peers).
    pub fn open_in_ram() -> Result<Shard> {
        let (schema, fields) = build_schema();
        let index = Index::create_in_ram(schema.clone());
        Self::from_index(index, schema, fields, None)
    }

    fn from_index(
        index: Index,
        schema: Schema,
        fields: Fields,
        dir: Option<PathBuf>,
    ) -> Result<Shard> {
        index
            .tokenizers()
            .register(ANALYZER_NAME, en_stem_analyzer());
        let writer = open_writer(&index, dir.as_deref())?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let shard = Shard {
            index,
            schema,
            reader,
            fields,
            writer: Mutex::new(WriterState {
                writer,
                staged: Vec::new(),
                needs_replay: false,
                unsynced: false,
            }),
            dir,
            dir_sync: Box::new(sync_dir),
            stats_cache: Mutex::new(StatsCache::default()),
        };
        info!(dir = ?shard.dir, docs = shard.num_docs(), "shard opened");
        Ok(shard)
    }

    /// The directory of the shard; `None` in RAM.
    pub fn path(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    fn lock_writer(&self) -> MutexGuard<'_, WriterState> {
        // A panic while holding the lock leaves the state consistent enough: at worst the
        // writer misses an operation, which `needs_replay` would not know about, so mark it.
        self.writer.lock().unwrap_or_else(|poisoned| {
            let mut state = poisoned.into_inner();
            state.needs_replay = true;
            state
        })
    }

    /// Stages `doc`, replacing any document with the same URL at the next commit.
    pub fn upsert(&self, doc: &Document) -> Result<()> {
        let tantivy_doc = self.fields.to_tantivy_document(doc);
        let mut state = self.lock_writer();
        if !state.needs_replay {
            state.writer.delete_term(self.fields.url_term(&doc.url));
            if let Err(error) = state.writer.add_document(tantivy_doc.clone()) {
                // Kept in `staged`: the next commit rolls back and replays it.
                warn!(%error, url = %doc.url, "staging document failed");
                state.needs_replay = true;
            }
        }
        state.staged.push(StagedOp::Upsert {
            url: doc.url.clone(),
            doc: tantivy_doc,
        });
        Ok(())
    }

    /// Stages the removal of the document of `url` (no-op if there is none).
    pub fn delete(&self, url: &str) -> Result<()> {
        let mut state = self.lock_writer();
        if !state.needs_replay {
            state.writer.delete_term(self.fields.url_term(url));
        }
        state.staged.push(StagedOp::Delete(url.to_string()));
        Ok(())
    }

    /// Makes every staged operation durable and searchable. On failure (a full disk) the
    /// error is logged and returned, the staged operations are kept, and the shard stays
    /// usable: a later commit retries them.
    ///
    /// Durable means synced: tantivy writes `meta.json` to a temporary file, syncs it and
    /// renames it into place, but syncs the directory only *before* that rename, so after a
    /// power loss the directory could still name the previous `meta.json`. The directory is
    /// therefore synced after every commit, before `commit` returns `Ok` (and the caller, say,
    /// marks the committed URLs as crawled). If that sync fails, the commit is searchable but
    /// `commit` fails with [`Error::SyncDirectory`], and the next commit syncs again.
    pub fn commit(&self) -> Result<()> {
        let mut state = self.lock_writer();
        if state.staged.is_empty() && !state.needs_replay {
            self.sync_dir_if_unsynced(&mut state)?;
            self.reader.reload()?;
            return Ok(());
        }
        if state.needs_replay {
            self.replay(&mut state)?;
        }
        let pending = state.staged.len();
        match state.writer.commit() {
            Ok(_) => {
                state.staged.clear();
                state.unsynced = true;
                let synced = self.sync_dir_if_unsynced(&mut state);
                drop(state);
                if let Err(error) = self.reader.reload() {
                    warn!(%error, "reloading the index reader failed");
                    return Err(error.into());
                }
                synced?;
                debug!(pending, docs = self.num_docs(), "shard committed");
                Ok(())
            }
            Err(error) => {
                warn!(%error, pending, "commit failed");
                state.needs_replay = true;
                Err(error.into())
            }
        }
    }

    /// Syncs the index directory if a commit since the last sync has not been synced (never
    /// for a shard in RAM).
    fn sync_dir_if_unsynced(&self, state: &mut WriterState) -> Result<()> {
        if !state.unsynced {
            return Ok(());
        }
        if let Some(dir) = &self.dir
            && let Err(source) = (self.dir_sync)(dir)
        {
            warn!(error = %source, dir = %dir.display(), "syncing the index directory failed");
            return Err(Error::SyncDirectory {
                dir: dir.clone(),
                source,
            });
        }
        state.unsynced = false;
        Ok(())
    }

    /// Rolls the writer back to the last commit and re-applies the staged operations.
    fn replay(&self, state: &mut WriterState) -> Result<()> {
        if let Err(error) = state.writer.rollback() {
            warn!(%error, "rolling back the index writer failed");
            return Err(error.into());
        }
        for op in &state.staged {
            match op {
                StagedOp::Upsert { url, doc } => {
                    state.writer.delete_term(self.fields.url_term(url));
                    if let Err(error) = state.writer.add_document(doc.clone()) {
                        warn!(%error, "replaying staged documents failed");
                        return Err(error.into());
                    }
                }
                StagedOp::Delete(url) => {
                    state.writer.delete_term(self.fields.url_term(url));
                }
            }
        }
        state.needs_replay = false;
        debug!(ops = state.staged.len(), "staged operations replayed");
        Ok(())
    }

    /// Number of committed (searchable) documents.
    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Number of operations (upserts and deletes) staged since the last successful commit.
    pub fn pending(&self) -> usize {
        self.lock_writer().staged.len()
    }

    /// The committed document of `url`.
    pub fn get(&self, url: &str) -> Result<Option<Document>> {
        let searcher = self.reader.searcher();
        let query = TermQuery::new(self.fields.url_term(url), IndexRecordOption::Basic);
        let top = searcher.search(&query, &TopDocs::with_limit(1).order_by_score())?;
        match top.first() {
            Some(&(_, address)) => {
                let doc: TantivyDocument = searcher.doc(address)?;
                Ok(Some(stored_document(&self.schema, &doc)))
            }
            None => Ok(None),
        }
    }

    /// The committed documents of `site` (exact `host[:port]`), as `(url, fetched_at)`
    /// sorted by URL: what a replica compares to find what it lacks.
    pub fn site_digest(&self, site: &str) -> Result<Vec<(String, i64)>> {
        let searcher = self.reader.searcher();
        Ok(self
            .site_docs(&searcher, site)?
            .into_iter()
            .map(|d| (d.url, d.fetched_at))
            .collect())
    }

    /// Up to `limit` (at most [`MAX_SITE_PAGE`]) committed documents of `site`, in URL
    /// order, skipping the first `offset`: pages of a replication transfer.
    pub fn docs_for_site(&self, site: &str, offset: usize, limit: usize) -> Result<Vec<Document>> {
        let searcher = self.reader.searcher();
        self.site_docs(&searcher, site)?
            .into_iter()
            .skip(offset)
            .take(limit.min(MAX_SITE_PAGE))
            .map(|d| {
                let doc: TantivyDocument = searcher.doc(d.address)?;
                Ok(stored_document(&self.schema, &doc))
            })
            .collect()
    }

    /// Every alive document of `site`, sorted by URL, read from fast fields.
    fn site_docs(&self, searcher: &Searcher, site: &str) -> Result<Vec<SiteDoc>> {
        let term = Term::from_field_text(self.fields.site, site);
        let mut out = Vec::new();
        for (ord, segment) in searcher.segment_readers().iter().enumerate() {
            let inverted = segment.inverted_index(self.fields.site)?;
            let Some(mut postings) = inverted.read_postings(&term, IndexRecordOption::Basic)?
            else {
                continue;
            };
            let Some(urls) = segment.fast_fields().str(names::URL)? else {
                continue;
            };
            let fetched = segment.fast_fields().i64(names::FETCHED_AT)?;
            let mut url = String::new();
            let mut doc = postings.doc();
            while doc != TERMINATED {
                if !segment.is_deleted(doc)
                    && let Some(url_ord) = urls.ords().first(doc)
                    && urls.ord_to_str(url_ord, &mut url)?
                {
                    out.push(SiteDoc {
                        url: url.clone(),
                        fetched_at: fetched.first(doc).unwrap_or_default(),
                        address: DocAddress::new(ord as u32, doc),
                    });
                }
                doc = postings.advance();
            }
        }
        out.sort_by(|a, b| a.url.cmp(&b.url));
        Ok(out)
    }

    /// Every site with committed documents and how many it has, sorted by site.
    pub fn sites(&self) -> Result<Vec<(String, u64)>> {
        let searcher = self.reader.searcher();
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for segment in searcher.segment_readers() {
            let inverted = segment.inverted_index(self.fields.site)?;
            let mut stream = inverted.terms().stream()?;
            while stream.advance() {
                let info = stream.value();
                let alive = if segment.has_deletes() {
                    let mut postings =
                        inverted.read_postings_from_terminfo(info, IndexRecordOption::Basic)?;
                    let mut alive = 0u64;
                    let mut doc = postings.doc();
                    while doc != TERMINATED {
                        if !segment.is_deleted(doc) {
                            alive += 1;
                        }
                        doc = postings.advance();
                    }
                    alive
                } else {
                    u64::from(info.doc_freq)
                };
                if alive > 0 {
                    let site = String::from_utf8_lossy(stream.key()).into_owned();
                    *counts.entry(site).or_default() += alive;
                }
            }
        }
        Ok(counts.into_iter().collect())
    }

    /// Bytes the index takes on disk (0 in RAM).
    pub fn size_bytes(&self) -> u64 {
        let Some(dir) = &self.dir else {
            return 0;
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        entries
            .filter_map(|e| e.ok()?.metadata().ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum()
    }

    /// The tantivy index (for tools such as benchmarks or inspection).
    pub fn index(&self) -> &Index {
        &self.index
    }
}

struct SiteDoc {
    url: String,
    fetched_at: i64,
    address: DocAddress,
}

fn open_writer(index: &Index, dir: Option<&Path>) -> Result<IndexWriter> {
    let mut attempt = 0;
    loop {
        match index.writer_with_num_threads(WRITER_THREADS, WRITER_HEAP_BYTES) {
            Ok(writer) => return Ok(writer),
            Err(TantivyError::LockFailure(LockError::LockBusy, _))
                if attempt + 1 < LOCK_RETRY_ATTEMPTS =>
            {
                attempt += 1;
                debug!(attempt, "index writer lock busy, retrying");
                std::thread::sleep(LOCK_RETRY_DELAY);
            }
            Err(TantivyError::LockFailure(LockError::LockBusy, _)) => {
                return Err(Error::Locked(
                    dir.map(Path::to_path_buf).unwrap_or_default(),
                ));
            }
            Err(error) => return Err(error.into()),
        }
    }
}

mod search;
#[cfg(test)]
mod tests;
