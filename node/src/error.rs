//! The one error type of the node library and its `Result` alias.
//!
//! Errors of the crates below (crawler, indexer) and of the node's modules with an error type
//! of their own (the p2p layer `net`, the store, the configuration) convert with `?`. An error
//! that must cross the wire is turned into the remote's message at the responder
//! (`Responder::fail(e.to_string())`), never sent as a type.

use std::path::PathBuf;

/// Why starting or running a part of a peer failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Another process uses the data dir.
    #[error("data dir {0} is in use by another peersearch process")]
    DataDirLocked(PathBuf),
    /// A file system problem.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The index failed.
    #[error("index: {0}")]
    Index(#[from] peersearch_indexer::Error),
    /// The crawler or its crawl state failed.
    #[error("crawler: {0}")]
    Crawler(#[from] peersearch_crawler::Error),
    /// The p2p layer failed.
    #[error("network: {0}")]
    Net(#[from] crate::net::Error),
    /// The node's own store (outbox, parked crawl states) failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The configuration is not valid (an unreadable or malformed file, a value out of range).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A bad address in the configuration.
    #[error("invalid address {addr}: {message}")]
    Addr {
        /// The address.
        addr: String,
        /// Why.
        message: String,
    },
    /// A blocking task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// A hostile test mode this build does not have (feature `hostile`).
    #[error("{0}")]
    Hostile(String),
    /// A peer asked for something this peer refuses (a claim by a peer farther from the site).
    #[error("refused: {0}")]
    Refused(String),
    /// The index could not commit (a full disk, say); what was staged is replayed later.
    #[error("commit failed")]
    CommitFailed,
    /// The peer is shutting down.
    #[error("shutting down")]
    ShuttingDown,
}

impl Error {
    /// A file system error with what was being done.
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}

/// `Result` with the node's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
