//! peersearch node: the peer that wires crawler, indexer and web together over a libp2p
//! overlay (the `peersearch` binary is thin glue over this library).
//!
//! One composition root, [`start`], builds the components and hands each the narrow handles
//! it needs; no component reaches the others through a shared "node":
//!
//! - `store`: the node's redb store (hand-off outbox, parked crawl states), async.
//! - `routing`: the one owner decision (`Placement`: owners, primary, the hop rule), seeds
//!   and links to the crawler or the outbox, the hand-off router and intake.
//! - `indexing`: the index loop (stage, commit, mark done, hand to replication) and the
//!   handle that reads the shard on blocking threads.
//! - `replication`: replication out, replica intake, maintenance (digests, repair), and the
//!   one site hand-over sequence.
//! - `claims`: the claim protocol that keeps two peers from crawling one site.
//! - `search`: root (statistics round, fan-out, merge, deadline) and leaf; `stats_check`:
//!   the root's check of the statistics shares peers send.
//! - `backend`: the web layer's `Backend`; `telemetry`: history and progress log.
//! - [`net`]: the swarm behind a cloneable `Client`; [`ownership`]: XOR distance of site keys.
//!
//! ```no_run
//! # async fn run() -> peersearch_node::Result<()> {
//! let peer = peersearch_node::start(peersearch_node::PeerConfig::default()).await?;
//! println!("web UI on http://{}", peer.http_addr());
//! peer.shutdown().await;
//! # Ok(()) }
//! ```

mod anchors;
mod backend;
mod claims;
mod clock;
pub mod config;
mod docs;
mod error;
mod indexing;
mod link;
pub mod net;
pub mod ownership;
mod parent_watch;
mod replication;
mod routing;
mod search;
mod shares;
mod start;
mod stats_check;
mod store;
mod telemetry;
mod tombstones;

pub use config::{ConfigError, Overrides, PeerConfig};
pub use error::{Error, Result};
pub use start::{RunningPeer, start};
