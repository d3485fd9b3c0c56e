//! Support for peersearch's integration tests and benchmarks: fixture web sites served by real
//! HTTP servers on loopback, and a harness that starts real `peersearch` processes.

pub mod fixture;
pub mod harness;
