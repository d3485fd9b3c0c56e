//! The `oversized` test hook (feature `test-hooks`, which this package's tests enable): a
//! hostile peer's codec really writes a search answer over the protocol's response cap, and
//! an honest reader refuses it from its length prefix. Its own process: the hook is read from
//! the environment once.

use std::sync::Arc;

use futures::io::Cursor;
use libp2p::request_response::Codec as _;
use peersearch_indexer::Hit;
use peersearch_node::net::wire::{
    self, ByteCounter, Codec, Reply, SEARCH_LIMITS, SEARCH_PROTOCOL, SearchRequest, SearchResponse,
    WireError,
};

#[tokio::test]
async fn the_oversized_hook_sends_a_frame_over_the_cap_and_the_reader_refuses_it() {
    if std::env::var("PEERSEARCH_TEST_MISBEHAVE").as_deref() != Ok("oversized") {
        // Setting the variable here would need `unsafe` (edition 2024): run this test again in
        // a child process with it set.
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "the_oversized_hook_sends_a_frame_over_the_cap_and_the_reader_refuses_it",
            ])
            .env("PEERSEARCH_TEST_MISBEHAVE", "oversized")
            .status()
            .unwrap();
        assert!(status.success(), "the test with the hook set failed");
        return;
    }
    let mut codec: Codec<SearchRequest, Reply<SearchResponse>> =
        Codec::new(SEARCH_LIMITS, Arc::new(ByteCounter::default()));
    let hits = (0..10_000)
        .map(|i| Hit {
            url: format!("http://spam.example/{i}"),
            title: "spam".into(),
            snippet: "x".repeat(1024),
            score: 1e9,
            evidence: None,
        })
        .collect();
    let mut buf = Vec::new();
    codec
        .write_response(
            &SEARCH_PROTOCOL,
            &mut buf,
            Ok(SearchResponse {
                hits,
                total_matches: 10_000,
                share: None,
            }),
        )
        .await
        .expect("the hostile peer writes the frame");
    assert!(
        buf.len() as u64 > SEARCH_LIMITS.response + 4,
        "{} bytes",
        buf.len()
    );
    let err = codec
        .read_response(&SEARCH_PROTOCOL, &mut Cursor::new(buf))
        .await
        .unwrap_err();
    assert!(
        matches!(wire::WireError::from_io(&err), Some(WireError::TooLarge { max, .. }) if *max == SEARCH_LIMITS.response),
        "{err}"
    );
}

/// A peer asked for a hostile mode its build does not have refuses to start, and says why:
/// silently honest, it would make an attack test pass for the wrong reason.
#[test]
fn an_unknown_hostile_mode_stops_the_peer_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_peersearch"))
        .args(["start", "--data-dir"])
        .arg(dir.path())
        .args(["--http", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0"])
        .env("PEERSEARCH_HOSTILE", "no-such-mode")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the peer started");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("PEERSEARCH_HOSTILE=no-such-mode") && stderr.contains("poison-results"),
        "{stderr}"
    );
}
