//! The p2p layer: a libp2p swarm (TCP + noise + yamux, and QUIC) running Kademlia under
//! `/peersearch/kad/1.0.0`, identify, ping, and one request-response protocol per
//! peersearch message pair (search, term statistics, hand-off, replication, digest, claim,
//! document look-up).
//!
//! The shape follows rust-libp2p's file-sharing example: [`new`] returns a cloneable
//! [`Client`] handle, a stream of [`Event`]s and an [`EventLoop`] that owns the swarm. The
//! client sends commands carrying `oneshot` senders; the loop `select!`s over swarm events,
//! commands and a housekeeping timer, and ends when every [`Client`] is dropped.
//!
//! ```no_run
//! # async fn demo() -> peersearch_node::net::Result<()> {
//! use peersearch_node::net::{self, Event, NetConfig, SearchResponse};
//! let dir = std::path::PathBuf::from("/tmp/peer");
//! let (client, mut events, event_loop) = net::new(NetConfig {
//!     keypair: net::load_or_create_keypair(&dir)?,
//!     listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
//!     bootstrap: vec![],
//!     data_dir: dir,
//! })?;
//! tokio::spawn(event_loop.run());
//! tokio::spawn(async move {
//!     while let Some(event) = events.recv().await {
//!         if let Event::InboundSearch { reply, .. } = event {
//!             let _ = reply.send(SearchResponse::default());
//!         }
//!     }
//! });
//! println!("listening on {:?}", client.listen_addrs().await?);
//! # Ok(()) }
//! ```
//!
//! Health: a peer whose dial fails, whose lost connection cannot be re-established, or whose
//! requests fail [`DEAD_AFTER_FAILURES`] times in a row is dead until it reconnects, and
//! [`Client::live_peers`] leaves it out. A peer that sends undecodable, oversized or invalid
//! answers collects misbehaviour points and is disconnected and banned for a while past
//! [`BAN_THRESHOLD`].

mod behaviour;
mod client;
mod codec;
mod error;
mod event_loop;
mod fsutil;
// Test hooks (cargo feature `test-hooks`): misbehaviour for the hostile-peer tests.
#[cfg(feature = "test-hooks")]
pub(crate) mod hooks;
mod identity;
mod inflight;
mod peers;
pub mod wire;

pub use behaviour::{
    Behaviour, BehaviourEvent, IDENTIFY_PROTOCOL_VERSION, KAD_PROTOCOL, MAX_ESTABLISHED,
    MAX_ESTABLISHED_PER_PEER, PING_INTERVAL, REQUEST_TIMEOUT, SEARCH_TIMEOUT, is_dialable,
};
pub use client::{Client, Event, PeerSummary, Responder};
pub use error::{Error, Result};
pub use event_loop::{EventLoop, IDLE_CONNECTION_TIMEOUT, new};
pub use identity::{KEY_FILE, load_or_create_keypair};
pub use peers::{BAN_DURATION, BAN_THRESHOLD, DEAD_AFTER_FAILURES, KNOWN_PEERS_FILE};
pub use wire::{
    ClaimRequest, ClaimResponse, DigestRequest, DigestResponse, DocRequest, DocResponse,
    HandoffRequest, HandoffResponse, Link, ReplicateRequest, ReplicateResponse, SearchRequest,
    SearchResponse, StatsRequest,
};

use std::path::PathBuf;

use libp2p::Multiaddr;
use libp2p::identity::Keypair;

/// What the network layer needs to start.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// The peer's identity (see [`load_or_create_keypair`]).
    pub keypair: Keypair,
    /// Addresses to listen on, e.g. `/ip4/0.0.0.0/tcp/4001` and `/ip4/0.0.0.0/udp/4001/quic-v1`
    /// (port 0 picks a free port; [`Client::listen_addrs`] tells which).
    pub listen: Vec<Multiaddr>,
    /// Peers to join through (with or without `/p2p/<id>`).
    pub bootstrap: Vec<Multiaddr>,
    /// Where `known_peers.json` lives (the key file is loaded by the caller).
    pub data_dir: PathBuf,
}
