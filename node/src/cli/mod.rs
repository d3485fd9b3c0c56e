//! The command line's parts, beside the binary (the library knows nothing of terminals,
//! signals or the demo).
//!
//! - [`client`]: `search`, `crawl` and `status` against a running peer's JSON API.
//! - [`demo`]: `peersearch demo`, N peers on loopback over a bundled corpus.
//! - [`extract`]: `peersearch extract`, what a peer would index of a local page.
//! - [`logging`]: `tracing` setup.
//! - [`signal`]: Ctrl-C / SIGTERM, and running a peer until one arrives.
//! - [`term`]: text from elsewhere made safe to print on a terminal.

pub mod client;
pub mod demo;
pub mod extract;
pub mod logging;
pub mod signal;
pub mod term;
