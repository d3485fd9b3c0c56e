//! Reading a response body under a cap counted after decompression.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};

use super::map_reqwest_error;
use crate::error::{Error, Result};

/// What to do when a body reaches the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Overflow {
    /// Fail with [`Error::TooLarge`].
    Fail,
    /// Keep the first `limit` bytes (robots.txt: RFC 9309 parses at least 500 KiB).
    Truncate,
}

/// Reads the (decompressed) body chunk by chunk, stopping as soon as the cap is passed:
/// a compression bomb is decompressed only up to the cap plus one chunk (reqwest's
/// decoder hands out a few KiB at a time). Every chunk pulled is added to `counter`.
pub(crate) async fn read_body(
    mut response: reqwest::Response,
    limit: usize,
    overflow: Overflow,
    counter: &AtomicU64,
) -> Result<Bytes> {
    // Shortcut: a declared length over the cap fails before reading anything. With
    // compression the header gives the compressed size, so it is only a lower bound.
    if overflow == Overflow::Fail
        && let Some(len) = response.content_length()
        && len > limit as u64
    {
        return Err(Error::TooLarge { limit });
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(map_reqwest_error)? {
        counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        if body.len() + chunk.len() > limit {
            match overflow {
                Overflow::Fail => return Err(Error::TooLarge { limit }),
                Overflow::Truncate => {
                    body.extend_from_slice(&chunk[..limit - body.len()]);
                    break;
                }
            }
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}
