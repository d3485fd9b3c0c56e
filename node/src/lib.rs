//! peersearch node: the libp2p overlay, URL-space ownership, query fan-out and merging, and the
//! peer that wires crawler, indexer and web together (the `peersearch` binary is thin glue over
//! this library).
//!
//! - [`net`]: the swarm (Kademlia, identify, ping, request-response protocols) behind a
//!   cloneable `Client`, an event stream and an `EventLoop` that owns the swarm.
//! - [`ownership`]: which peers own a site (XOR distance of the site key).
//! - [`peer`]: one running peer; implements the web layer's `Backend`.
//! - [`search`]: root search (statistics round, fan-out, merge, deadline).
//! - [`outbox`]: the persistent hand-off outbox and parked crawl states.
//! - [`maintenance`]: replica repair, hand-over of crawls when ownership moves.
//! - [`config`], [`client`], [`demo`]: the command line's parts.

pub mod claim;
pub mod client;
pub mod config;
pub mod demo;
pub mod maintenance;
pub mod net;
pub mod outbox;
pub mod ownership;
pub mod peer;
pub mod search;
