//! Support for peersearch's integration tests and benchmarks: fixture web sites served by real
//! HTTP servers on loopback, a harness that starts real `peersearch` processes, what a test
//! needs from the machine (and the one way to skip on purpose), and site ownership computed
//! from the design, independently of the node's code; and the search-quality evaluation
//! (known-item query sets on the Rust docs, bare-tantivy baselines).

pub mod fixture;
pub mod harness;
pub mod need;
pub mod ownership;
pub mod quality;
