//! The web crate's HTTP tests, in one test binary: the router is built against the same fake
//! backend by every module, so one binary compiles and links its generics once instead of once
//! per file (eight binaries took 90 s of a fresh build, see `.ci/run`).

mod common;

mod doc;
mod documents;
mod json_api;
mod pages;
mod proxy;
mod security;
mod serve;
mod why;
