//! The error type of the p2p layer.

use std::io;

/// Why a network operation failed.
///
/// Request failures say what happened to that one request; the event loop also uses them to
/// track which peers are dead or misbehaving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer did not answer before the deadline.
    #[error("request timed out")]
    Timeout,
    /// No connection to the peer could be made (dial failed, no known address, or banned).
    #[error("peer unreachable: {0}")]
    Unreachable(String),
    /// The connection or stream closed before the answer arrived.
    #[error("peer disconnected: {0}")]
    Disconnected(String),
    /// The peer broke the protocol: undecodable bytes, an invalid answer, or an
    /// unsupported protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A message was larger than the cap of its protocol.
    #[error("message too large: {size} bytes, cap {max}")]
    TooLarge {
        /// Size the message claimed or had, in bytes.
        size: u64,
        /// The protocol's cap, in bytes.
        max: u64,
    },
    /// The peer answered with an error of its own (for example its shard failed).
    #[error("remote error: {0}")]
    Remote(String),
    /// The event loop has stopped.
    #[error("network is shut down")]
    Shutdown,
    /// The peer key file could not be decoded or encoded.
    #[error("peer key: {0}")]
    Identity(String),
    /// Building the transport or listening failed.
    #[error("transport: {0}")]
    Transport(String),
    /// A local file operation (key, known peers) failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// `Result` with the p2p layer's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
