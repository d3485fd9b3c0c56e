//! The one wall clock of the node: seconds since the Unix epoch, for what is stored or shown
//! (history samples, when a peer was last seen). Timers and deadlines use tokio's clock.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (0 before it).
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
