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
