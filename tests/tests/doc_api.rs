//! `GET /api/doc` with real peers: 4 peers at `--replication 3` crawl a small fixture site;
//! the one peer that does not own it (by the design's ownership, computed independently in
//! `tests/src/ownership.rs`) answers with the page's text, held by exactly the owners, asked
//! over `/peersearch/doc/1.0.0`. A URL never crawled is a 404, a bad URL a 400, and
//! `scope=local` looks at the asked peer only. A peer that forges its answers is skipped.

use peersearch_tests::fixture::{self, PlainSite, Server};
use peersearch_tests::harness::{
    PeerOptions, PeerProcess, http_get, start_network, wait_mesh, wait_network_idle,
};
use peersearch_tests::ownership;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Index of the fixture site (part of its markers).
const SITE: usize = 41;
/// Pages of the fixture site.
const PAGES: usize = 6;
/// Peers and owners per site.
const PEERS: usize = 4;
const R: usize = 3;
/// Longest wait for the crawl, and for the copies to settle on the owners.
const WAIT: Duration = Duration::from_secs(180);

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `GET /api/doc?url=URL&extra` from `peer`: status and JSON body.
async fn get_doc(peer: &PeerProcess, url: &str, extra: &str) -> (u16, Value) {
    let (status, body) = http_get(&format!("{}/api/doc?url={}{extra}", peer.base, enc(url)))
        .await
        .unwrap();
    let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("not json ({e}): {body}"));
    (status, json)
}

fn holders(doc: &Value) -> Vec<String> {
    doc["holders"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|h| h.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn args(site: &Server) -> Vec<String> {
    [
        "--allow-private-addresses",
        "--crawl-rate",
        "200",
        "--replication",
        "3",
        "--maintenance-interval-ms",
        "500",
        "--seed",
        &site.url("/"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

async fn plain_site() -> Server {
    Server::start(
        PlainSite {
            site: SITE,
            pages: PAGES,
            home_links: String::new(),
        }
        .router(),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_owner_gets_the_cached_text_held_by_exactly_the_owners() {
    let site = plain_site().await;
    let dir = tempfile::tempdir().unwrap();
    let peers = start_network(dir.path(), PEERS, &args(&site))
        .await
        .unwrap();
    let logs = || {
        peers
            .iter()
            .map(PeerProcess::log_tail)
            .collect::<Vec<_>>()
            .join("\n---\n")
    };
    wait_network_idle(&peers, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", logs()));

    let ids: Vec<String> = peers.iter().map(PeerProcess::peer_id).collect();
    let authority = site.addr.to_string();
    let owners = ownership::owners(&authority, &ids, R);
    let outsider = peers
        .iter()
        .find(|p| !owners.contains(&p.peer_id()))
        .expect("one peer of four is no owner");
    let page = site.url("/page/2.html");
    let marker = fixture::marker(SITE, 2);

    // The outsider asks the owners: the page's text, held by exactly the owners (primary
    // first). A copy lingering on a peer that owned the site while the network formed counts
    // as held until maintenance drops it, so wait (bounded) for the copies to settle.
    let deadline = Instant::now() + WAIT;
    let doc = loop {
        let (status, doc) = get_doc(outsider, &page, "&timeout_ms=5000").await;
        if status == 200 && holders(&doc) == owners && doc["partial"] == false {
            break doc;
        }
        assert!(
            Instant::now() < deadline,
            "holders never became the owners {owners:?}: {status} {doc}\n{}",
            logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(doc["url"], page.as_str());
    assert_eq!(doc["site"], authority.as_str());
    let text = doc["text"].as_str().unwrap();
    assert!(text.contains(&marker), "the page's text: {text}");
    assert!(
        doc["title"].as_str().unwrap().contains(&marker),
        "the page's title: {doc}"
    );
    assert!(doc["fetched_at"].as_i64().unwrap() > 1_600_000_000);
    assert_eq!(doc["content_hash"].as_str().unwrap().len(), 64);
    assert!(owners.contains(&doc["peer"].as_str().unwrap().to_owned()));
    assert_eq!(doc["truncated"], false);
    assert_eq!(doc["peers"]["queried"], PEERS);
    // Other pages link to page 2: their anchor texts are aggregated into its record.
    assert!(
        !doc["anchor_text"].as_str().unwrap().trim().is_empty(),
        "anchor texts: {doc}"
    );
    assert!(doc["inlink_pages"].as_u64().unwrap() >= 1, "{doc}");

    // The outsider holds nothing itself; an owner holds its own copy.
    let (status, local) = get_doc(outsider, &page, "&scope=local").await;
    assert_eq!(status, 404, "{local}");
    let owner = peers.iter().find(|p| p.peer_id() == owners[1]).unwrap();
    let (status, local) = get_doc(owner, &page, "&scope=local").await;
    assert_eq!(status, 200, "{local}");
    assert_eq!(holders(&local), [owners[1].clone()]);
    assert_eq!(local["text"], doc["text"]);

    // A URL never crawled: 404 in the contract's error shape, from every peer.
    for p in &peers {
        let (status, err) = get_doc(p, &site.url("/never-crawled.html"), "").await;
        assert_eq!(status, 404, "{err}");
        assert_eq!(err["error"]["code"], "not_found", "{err}");
        assert!(
            err["error"]["message"]
                .as_str()
                .unwrap()
                .contains("no peer holds"),
            "{err}"
        );
    }
    // A bad URL: 400.
    let (status, err) = get_doc(outsider, "javascript:alert(1)", "").await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["error"]["code"], "invalid_parameter");

    // The cached-text page of the same URL, from the outsider.
    let (status, html) = http_get(&format!("{}/doc?url={}", outsider.base, enc(&page)))
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(html.contains(&marker));
    for owner in &owners {
        assert!(html.contains(owner.as_str()), "holder {owner} listed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_forges_documents_is_skipped() {
    let site = plain_site().await;
    let dir = tempfile::tempdir().unwrap();
    // Three honest peers and one that answers every look-up with a forged document of
    // another URL (`PEERSEARCH_TEST_MISBEHAVE=forge_doc`), with the newest fetch time: were
    // it trusted, its copy would win.
    let mut peers = start_network(dir.path(), PEERS - 1, &args(&site))
        .await
        .unwrap();
    let hostile = PeerProcess::spawn(
        &dir.path().join("forger"),
        &PeerOptions {
            args: [args(&site), vec!["--bootstrap".into(), peers[0].p2p_addr()]].concat(),
            env: vec![("PEERSEARCH_TEST_MISBEHAVE".into(), "forge_doc".into())],
        },
    )
    .await
    .unwrap();
    peers.push(hostile);
    wait_mesh(&peers, PEERS - 1).await.unwrap();
    wait_network_idle(&peers, WAIT).await.unwrap();
    let forger = peers[PEERS - 1].peer_id();
    let page = site.url("/page/3.html");
    let marker = fixture::marker(SITE, 3);
    for p in &peers[..PEERS - 1] {
        let deadline = Instant::now() + WAIT;
        let doc = loop {
            let (status, doc) = get_doc(p, &page, "&timeout_ms=5000").await;
            if status == 200 {
                break doc;
            }
            assert!(Instant::now() < deadline, "{status} {doc}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        assert_eq!(doc["url"], page.as_str(), "{doc}");
        assert!(doc["text"].as_str().unwrap().contains(&marker), "{doc}");
        assert!(
            !holders(&doc).contains(&forger),
            "the forger is no holder: {doc}"
        );
        assert_ne!(doc["peer"], forger.as_str());
        assert!(doc["peers"]["failed"].as_u64().unwrap() >= 1, "{doc}");
        assert_eq!(doc["partial"], true, "{doc}");
    }
    // The forger's own answer from its shard is honest (it forges only what it sends).
    let (status, _) = get_doc(&peers[PEERS - 1], &site.url("/never.html"), "").await;
    assert_eq!(status, 404);
}
