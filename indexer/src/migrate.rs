//! Schema migration of a shard on disk.
//!
//! tantivy cannot change the schema of an existing index, but every field of a [`Document`]
//! is stored (`url_text` and `site_suffixes` are derived from stored fields), so a shard with
//! an older schema is rebuilt losslessly from its stored documents into a fresh directory
//! beside it, which then replaces it:
//!
//! 1. `<dir>.migrate-new` is removed if a previous attempt left it, the documents of `<dir>`
//!    are indexed there with the current schema, committed, and the marker file
//!    [`COMPLETE_MARKER`] is written and synced: the new index is complete.
//! 2. `<dir>` is renamed to `<dir>.migrate-old`.
//! 3. `<dir>.migrate-new` is renamed to `<dir>`.
//! 4. `<dir>.migrate-old` is removed.
//!
//! Each rename is made durable (parent directory synced) before the next step. A crash
//! anywhere leaves a state that [`recover`] (run by every `Shard::open` first) turns into a
//! usable shard: before step 2 the old index is still `<dir>` (the half-built new one is
//! dropped, and the migration runs again); between steps 2 and 3 the new index is complete
//! and is moved into place; after step 3 only the old copy is left to remove.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tantivy::directory::error::LockError;
use tantivy::directory::{DirectoryLock, INDEX_WRITER_LOCK, MmapDirectory};
use tantivy::{Directory, Index, IndexWriter, ReloadPolicy, TantivyDocument};
use tracing::{info, warn};

use crate::error::{Error, Result};
use crate::schema::{ANALYZER_NAME, build_schema, en_stem_analyzer, stored_document};

/// The file that marks a rebuilt index as complete (written after its commit).
pub(crate) const COMPLETE_MARKER: &str = ".peersearch-migration-complete";
const NEW_SUFFIX: &str = "migrate-new";
const OLD_SUFFIX: &str = "migrate-old";
/// Writer heap of the rebuild (one thread; tantivy needs at least 15 MB).
const REBUILD_HEAP_BYTES: usize = 50_000_000;
/// Documents cached per store block while reading the old index.
const STORE_CACHE_BLOCKS: usize = 10;
/// How long a migration waits for the old index's writer lock (see `Shard::open`).
const LOCK_RETRY_ATTEMPTS: u32 = 20;
const LOCK_RETRY_DELAY: Duration = Duration::from_millis(100);

/// Where a migration may stop early in tests, simulating a crash right after that step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopAfter {
    /// The new index is complete, the old one is still in place.
    Build,
    /// The old index was moved aside, the new one not yet moved in.
    MoveAside,
    /// The new index is in place, the old copy not yet removed.
    MoveIn,
}

/// `<dir>.<suffix>`, beside `dir`.
fn sibling(dir: &Path, suffix: &str) -> Result<PathBuf> {
    let name = dir.file_name().ok_or_else(|| {
        Error::Io(std::io::Error::other(format!(
            "index directory {} has no name",
            dir.display()
        )))
    })?;
    let mut name = name.to_os_string();
    name.push(".");
    name.push(suffix);
    Ok(dir.with_file_name(name))
}

fn parent_of(dir: &Path) -> &Path {
    dir.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Makes the entries of `dir` durable (`fsync` of the directory; a no-op off unix).
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

fn sync_parent(dir: &Path) -> Result<()> {
    let parent = parent_of(dir);
    sync_dir(parent).map_err(|source| Error::SyncDirectory {
        dir: parent.to_path_buf(),
        source,
    })
}

/// Finishes or rolls back a migration of `dir` that a crash interrupted (see the module
/// docs); a no-op when none was under way.
pub(crate) fn recover(dir: &Path) -> Result<()> {
    let Ok(new_dir) = sibling(dir, NEW_SUFFIX) else {
        return Ok(());
    };
    let old_dir = sibling(dir, OLD_SUFFIX)?;
    if !dir.exists() && old_dir.exists() {
        if new_dir.join(COMPLETE_MARKER).exists() {
            info!(dir = %dir.display(), "completing an interrupted shard migration");
            std::fs::rename(&new_dir, dir)?;
        } else {
            warn!(dir = %dir.display(), "rolling back an interrupted shard migration");
            std::fs::rename(&old_dir, dir)?;
        }
        sync_parent(dir)?;
    }
    let marker = dir.join(COMPLETE_MARKER);
    if marker.exists() {
        std::fs::remove_file(&marker)?;
    }
    for leftover in [&old_dir, &new_dir] {
        if leftover.exists() {
            info!(path = %leftover.display(), "removing a leftover of a shard migration");
            std::fs::remove_dir_all(leftover)?;
            sync_parent(dir)?;
        }
    }
    Ok(())
}

/// True when `dir` holds an index whose schema differs from the current one.
pub(crate) fn needs_migration(dir: &Path) -> Result<bool> {
    let directory = MmapDirectory::open(dir)?;
    if !Index::exists(&directory).map_err(|e| Error::Tantivy(e.into()))? {
        return Ok(false);
    }
    let index = Index::open(directory)?;
    Ok(index.schema() != build_schema().0)
}

/// Rebuilds the index in `dir` with the current schema and swaps it in (module docs).
/// Returns the number of documents carried over. `stop_after` stops after a step, simulating a crash (tests).
pub(crate) fn migrate(dir: &Path, stop_after: Option<StopAfter>) -> Result<u64> {
    let new_dir = sibling(dir, NEW_SUFFIX)?;
    let old_dir = sibling(dir, OLD_SUFFIX)?;
    if new_dir.exists() {
        std::fs::remove_dir_all(&new_dir)?;
    }
    let old_directory = MmapDirectory::open(dir)?;
    // No other writer may change the old index while it is copied.
    let lock = acquire_writer_lock(&old_directory, dir)?;
    let old_index = Index::open(old_directory)?;
    let old_schema = old_index.schema();
    info!(dir = %dir.display(), "shard schema changed, migrating the index");

    std::fs::create_dir_all(&new_dir)?;
    let (schema, fields) = build_schema();
    let new_index = Index::create_in_dir(&new_dir, schema)?;
    new_index
        .tokenizers()
        .register(ANALYZER_NAME, en_stem_analyzer());
    let mut writer: IndexWriter = new_index.writer_with_num_threads(1, REBUILD_HEAP_BYTES)?;
    let reader = old_index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()?;
    let searcher = reader.searcher();
    let mut carried = 0u64;
    for segment in searcher.segment_readers() {
        let store = segment.get_store_reader(STORE_CACHE_BLOCKS)?;
        for doc in 0..segment.max_doc() {
            if segment.is_deleted(doc) {
                continue;
            }
            let stored: TantivyDocument = store.get(doc)?;
            let document = stored_document(&old_schema, &stored);
            writer.add_document(fields.to_tantivy_document(&document))?;
            carried += 1;
        }
    }
    writer.commit()?;
    writer.wait_merging_threads()?;
    drop(searcher);
    drop(reader);
    drop(old_index);
    let marker = new_dir.join(COMPLETE_MARKER);
    std::fs::write(&marker, b"")?;
    std::fs::File::open(&marker)?.sync_all()?;
    sync_dir(&new_dir)?;
    sync_parent(dir)?;
    drop(lock);
    if stop_after == Some(StopAfter::Build) {
        return Ok(carried);
    }

    std::fs::rename(dir, &old_dir)?;
    sync_parent(dir)?;
    if stop_after == Some(StopAfter::MoveAside) {
        return Ok(carried);
    }
    std::fs::rename(&new_dir, dir)?;
    sync_parent(dir)?;
    if stop_after == Some(StopAfter::MoveIn) {
        return Ok(carried);
    }
    std::fs::remove_file(dir.join(COMPLETE_MARKER))?;
    std::fs::remove_dir_all(&old_dir)?;
    sync_parent(dir)?;
    info!(dir = %dir.display(), docs = carried, "shard migrated to the current schema");
    Ok(carried)
}

fn acquire_writer_lock(directory: &MmapDirectory, dir: &Path) -> Result<DirectoryLock> {
    let mut attempt = 0;
    loop {
        match directory.acquire_lock(&INDEX_WRITER_LOCK) {
            Ok(lock) => return Ok(lock),
            Err(LockError::LockBusy) if attempt + 1 < LOCK_RETRY_ATTEMPTS => {
                attempt += 1;
                std::thread::sleep(LOCK_RETRY_DELAY);
            }
            Err(LockError::LockBusy) => return Err(Error::Locked(dir.to_path_buf())),
            Err(LockError::IoError(error)) => {
                return Err(Error::Io(std::io::Error::new(
                    error.kind(),
                    error.to_string(),
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::Shard;
    use crate::types::Document;
    use tantivy::schema::{
        FAST, INDEXED, IndexRecordOption, STORED, STRING, TextFieldIndexing, TextOptions,
    };

    /// The schema of the first release (before `chrome`, `inlink_sites`, `inlink_pages`).
    fn first_release_schema() -> tantivy::schema::Schema {
        let mut b = tantivy::schema::Schema::builder();
        let indexing = TextFieldIndexing::default()
            .set_tokenizer(ANALYZER_NAME)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions);
        let stored = TextOptions::default()
            .set_indexing_options(indexing.clone())
            .set_stored();
        b.add_text_field("url", STRING | STORED | FAST);
        b.add_text_field("site", STRING | STORED);
        b.add_text_field("site_suffixes", STRING);
        for name in ["title", "description", "body", "headings", "anchor_text"] {
            b.add_text_field(name, stored.clone());
        }
        b.add_text_field(
            "url_text",
            TextOptions::default().set_indexing_options(indexing),
        );
        b.add_text_field("lang", STRING | STORED);
        b.add_i64_field("fetched_at", FAST | STORED | INDEXED);
        b.add_text_field("content_hash", STRING | STORED);
        b.build()
    }

    fn old_doc(i: usize) -> Document {
        Document {
            url: format!("http://old.example/{i}"),
            site: "old.example".into(),
            title: format!("page {i} about migration"),
            description: format!("description {i}"),
            body: format!("body words of page {i}, migrated losslessly"),
            headings: format!("heading {i}"),
            anchor_text: format!("anchor {i}"),
            lang: "en".into(),
            fetched_at: 1_700_000_000 + i as i64,
            content_hash: format!("{i:064x}"),
            ..Document::default()
        }
    }

    /// A shard directory as the first release wrote it: 5 documents, one deleted and one
    /// replaced afterwards, in two segments.
    fn write_first_release_shard(dir: &Path) -> Vec<Document> {
        let schema = first_release_schema();
        let index = Index::create_in_dir(dir, schema.clone()).unwrap();
        index
            .tokenizers()
            .register(ANALYZER_NAME, en_stem_analyzer());
        let mut writer: IndexWriter = index.writer_with_num_threads(1, 15_000_000).unwrap();
        let add = |writer: &mut IndexWriter, d: &Document| {
            let mut t = TantivyDocument::default();
            let f = |n: &str| schema.get_field(n).unwrap();
            t.add_text(f("url"), &d.url);
            t.add_text(f("site"), &d.site);
            t.add_text(f("site_suffixes"), &d.site);
            t.add_text(f("title"), &d.title);
            t.add_text(f("description"), &d.description);
            t.add_text(f("body"), &d.body);
            t.add_text(f("headings"), &d.headings);
            t.add_text(f("anchor_text"), &d.anchor_text);
            t.add_text(f("url_text"), &d.url);
            t.add_text(f("lang"), &d.lang);
            t.add_i64(f("fetched_at"), d.fetched_at);
            t.add_text(f("content_hash"), &d.content_hash);
            writer.delete_term(tantivy::Term::from_field_text(f("url"), &d.url));
            writer.add_document(t).unwrap();
        };
        let mut docs: Vec<Document> = (0..5).map(old_doc).collect();
        for d in &docs {
            add(&mut writer, d);
        }
        writer.commit().unwrap();
        writer.delete_term(tantivy::Term::from_field_text(
            schema.get_field("url").unwrap(),
            &docs[1].url,
        ));
        docs[3].title = "replaced title".into();
        add(&mut writer, &docs[3]);
        writer.commit().unwrap();
        docs.remove(1);
        docs
    }

    fn assert_holds(shard: &Shard, docs: &[Document]) {
        assert_eq!(shard.num_docs(), docs.len() as u64);
        for d in docs {
            assert_eq!(shard.get(&d.url).unwrap().as_ref(), Some(d), "{}", d.url);
        }
        let hits = shard.search("migrated", 10, None).unwrap();
        assert_eq!(hits.total_matches, docs.len() as u64);
    }

    fn leftovers(dir: &Path) -> Vec<PathBuf> {
        [NEW_SUFFIX, OLD_SUFFIX]
            .iter()
            .map(|s| sibling(dir, s).unwrap())
            .filter(|p| p.exists())
            .collect()
    }

    #[test]
    fn opening_an_old_schema_shard_migrates_it_losslessly() -> Result<()> {
        let parent = tempfile::tempdir()?;
        let dir = parent.path().join("index");
        std::fs::create_dir_all(&dir)?;
        let docs = write_first_release_shard(&dir);
        assert!(needs_migration(&dir)?);
        let shard = Shard::open(&dir)?;
        assert_holds(&shard, &docs);
        assert!(!needs_migration(&dir)?);
        assert!(leftovers(&dir).is_empty());
        assert!(!dir.join(COMPLETE_MARKER).exists());
        // The migrated shard takes the new fields.
        shard.upsert(&Document {
            chrome: "navigation sidebar".into(),
            inlink_sites: 3,
            ..old_doc(9)
        })?;
        shard.commit()?;
        drop(shard);
        let shard = Shard::open(&dir)?;
        assert_eq!(shard.num_docs(), docs.len() as u64 + 1);
        assert_eq!(shard.get(&old_doc(9).url)?.map(|d| d.inlink_sites), Some(3));
        Ok(())
    }

    #[test]
    fn a_crash_at_any_step_of_a_migration_leaves_a_usable_shard() -> Result<()> {
        for crash in [StopAfter::Build, StopAfter::MoveAside, StopAfter::MoveIn] {
            let parent = tempfile::tempdir()?;
            let dir = parent.path().join("index");
            std::fs::create_dir_all(&dir)?;
            let docs = write_first_release_shard(&dir);
            migrate(&dir, Some(crash))?;
            assert!(
                !leftovers(&dir).is_empty(),
                "{crash:?} leaves something behind"
            );
            let shard = Shard::open(&dir)?;
            assert_holds(&shard, &docs);
            assert!(!needs_migration(&dir)?, "{crash:?}");
            assert!(leftovers(&dir).is_empty(), "{crash:?}");
        }
        Ok(())
    }

    #[test]
    fn a_crash_while_building_keeps_the_old_index_and_migrates_again() -> Result<()> {
        let parent = tempfile::tempdir()?;
        let dir = parent.path().join("index");
        std::fs::create_dir_all(&dir)?;
        let docs = write_first_release_shard(&dir);
        // A half-written new index: no completion marker.
        let new_dir = sibling(&dir, NEW_SUFFIX)?;
        std::fs::create_dir_all(&new_dir)?;
        std::fs::write(new_dir.join("meta.json"), b"{ half written")?;
        let shard = Shard::open(&dir)?;
        assert_holds(&shard, &docs);
        assert!(leftovers(&dir).is_empty());

        // Moved aside without a complete new index (not a state migrate writes, but a
        // damaged one): the old index is restored.
        drop(shard);
        let parent = tempfile::tempdir()?;
        let dir = parent.path().join("index");
        std::fs::create_dir_all(&dir)?;
        let docs = write_first_release_shard(&dir);
        std::fs::rename(&dir, sibling(&dir, OLD_SUFFIX)?)?;
        std::fs::create_dir_all(sibling(&dir, NEW_SUFFIX)?)?;
        let shard = Shard::open(&dir)?;
        assert_holds(&shard, &docs);
        assert!(leftovers(&dir).is_empty());
        Ok(())
    }

    #[test]
    fn a_current_shard_is_not_migrated() -> Result<()> {
        let parent = tempfile::tempdir()?;
        let dir = parent.path().join("index");
        assert!(!dir.exists() || !needs_migration(&dir)?);
        let shard = Shard::open(&dir)?;
        shard.upsert(&old_doc(1))?;
        shard.commit()?;
        drop(shard);
        assert!(!needs_migration(&dir)?);
        assert_eq!(Shard::open(&dir)?.num_docs(), 1);
        Ok(())
    }
}
