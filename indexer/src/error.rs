//! The indexer's error type.

use std::path::PathBuf;

/// Everything that can go wrong in the indexer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The query has nothing to search for: it is empty after analysis, or it only excludes.
    /// The web layer answers it with a 400.
    #[error("query has no search terms")]
    EmptyQuery,
    /// Another live process (or another `Shard` in this process) holds the index writer lock.
    #[error("index at {0} is in use by another writer")]
    Locked(PathBuf),
    /// An error from tantivy (I/O, corruption, schema mismatch, ...).
    #[error("index error: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    /// The index directory could not be opened.
    #[error("cannot open index directory: {0}")]
    OpenDirectory(#[from] tantivy::directory::error::OpenDirectoryError),
    /// The index directory could not be synced to disk after a commit (the commit is
    /// searchable but may not survive a power loss; the next commit retries the sync).
    #[error("cannot sync index directory {dir}: {source}")]
    SyncDirectory {
        /// The index directory.
        dir: PathBuf,
        /// Why the sync failed.
        source: std::io::Error,
    },
    /// A hit's score evidence does not fit its query (see [`crate::explain()`]): a clause,
    /// field or window the query does not have, an entry twice, too many entries.
    #[error("invalid score evidence: {0}")]
    Evidence(String),
    /// Plain I/O (creating the directory, measuring its size).
    #[error("io error: {0}")]
    Io(#[from] std::io::Error),
}

/// The indexer's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
