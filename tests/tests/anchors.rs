//! Anchor text from every link, network-wide: a page is found by the words other sites use
//! to link to it, whichever peer crawled those sites, after a restart, and on every owner
//! (node/src/anchors.rs). The one-vote-per-site rule and the order independence of the
//! records are unit tests there.

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use peersearch_tests::fixture::Server;
use peersearch_tests::harness::{PeerOptions, PeerProcess, start_network_with};
use peersearch_tests::ownership;
use std::time::{Duration, Instant};

/// A site of one home page with `body` (HTML).
fn home(title: &str, body: String) -> Router {
    let page = format!(
        "<!doctype html><html><head><title>{title}</title></head><body><main>{body}</main></body></html>"
    );
    Router::new()
        .route("/", get(move || async move { Html(page) }))
        .route("/robots.txt", get(|| async { "User-agent: *\nAllow: /\n" }))
}

/// The target site: a home page and `/target.html`, whose own text has none of the anchor
/// words.
fn target_site() -> Router {
    let page = "<!doctype html><html><head><title>A quiet page</title></head><body><main>\
                <p>Nothing special is written here, only ordinary words about the weather \
                and the garden.</p></main></body></html>";
    home(
        "target home",
        "<p>The home of the target site.</p><a href=\"/target.html\">the quiet page</a>".into(),
    )
    .route("/target.html", get(move || async move { Html(page) }))
}

/// A site whose home page links to `target` with `text`.
async fn linking_site(name: &str, target: &str, text: &str) -> Server {
    Server::start(home(
        &format!("site {name}"),
        format!("<p>Site {name} recommends a page.</p><a href=\"{target}\">{text}</a>"),
    ))
    .await
    .unwrap()
}

fn args() -> Vec<String> {
    ["--allow-private-addresses", "--crawl-rate", "100"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// Wait (bounded) until a search for `q` through `peer` (with `extra` parameters) returns
/// `url`; false if it never does.
async fn wait_found(peer: &PeerProcess, q: &str, extra: &str, url: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        let urls = peer.search_urls(q, extra).await.unwrap_or_default();
        if urls.iter().any(|u| u == url) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_is_found_by_the_anchor_texts_of_three_sites_and_they_survive_a_restart() {
    let target = Server::start(target_site()).await.unwrap();
    let page = target.url("/target.html");
    let a = linking_site("a", &page, "zqalpha report").await;
    let b = linking_site("b", &page, "zqbeta notes").await;
    let c = linking_site("c", &page, "zqgamma story").await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("peer");
    let opts = PeerOptions {
        args: args(),
        ..PeerOptions::default()
    };

    let mut peer = PeerProcess::spawn(&data, &opts).await.unwrap();
    peer.seed(&[a.url("/"), b.url("/")]).await.unwrap();
    for word in ["zqalpha", "zqbeta"] {
        assert!(
            wait_found(&peer, word, "&limit=5", &page).await,
            "{word} does not find the page it links to\n{}",
            peer.log_tail()
        );
    }
    assert!(peer.terminate(), "the peer stops on SIGTERM");

    // After a restart a third site's vote re-indexes the page from its stored record: the
    // first two texts are still there.
    let peer = PeerProcess::spawn(&data, &opts).await.unwrap();
    peer.seed(&[c.url("/")]).await.unwrap();
    assert!(
        wait_found(&peer, "zqgamma", "&limit=5", &page).await,
        "the third text does not find the page\n{}",
        peer.log_tail()
    );
    for word in ["zqalpha", "zqbeta"] {
        let urls = peer.search_urls(word, "&limit=5").await.unwrap();
        assert!(
            urls.contains(&page),
            "{word} lost after the restart and a new vote: {urls:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_owner_holds_the_anchors_and_a_new_primary_keeps_them() {
    const R: usize = 3;
    let target = Server::start(target_site()).await.unwrap();
    let page = target.url("/target.html");
    let a = linking_site("a", &page, "zqalpha report").await;
    let b = linking_site("b", &page, "zqbeta notes").await;
    let d = linking_site("d", &page, "zqdelta review").await;
    let dir = tempfile::tempdir().unwrap();
    let mut net_args = args();
    net_args.extend(["--replication".to_string(), R.to_string()]);
    let env = [(
        "PEERSEARCH_MAINTENANCE_INTERVAL_MS".to_string(),
        "1000".to_string(),
    )];
    let mut peers = start_network_with(dir.path(), 5, &net_args, &env)
        .await
        .unwrap();
    peers[0].seed(&[a.url("/"), b.url("/")]).await.unwrap();

    // Every owner of the target's site finds the page by both texts in its own shard.
    let ids: Vec<String> = peers.iter().map(|p| p.peer_id()).collect();
    let site = page.split('/').nth(2).unwrap().to_string();
    let owners = ownership::owners(&site, &ids, R);
    for owner in &owners {
        let p = peers.iter().find(|p| &p.peer_id() == owner).unwrap();
        for word in ["zqalpha", "zqbeta"] {
            assert!(
                wait_found(p, word, "&scope=local&limit=5", &page).await,
                "owner {owner} does not find the page by {word} locally\n{}",
                p.log_tail()
            );
        }
    }

    // The primary dies; the new primary counts a new vote on top of the replicated record.
    let primary = owners[0].clone();
    let index = peers.iter().position(|p| p.peer_id() == primary).unwrap();
    peers[index].kill9();
    let _dead = peers.remove(index);
    let root = &peers[0];
    root.seed(&[d.url("/")]).await.unwrap();
    assert!(
        wait_found(root, "zqdelta", "&limit=5", &page).await,
        "the new primary did not count the new vote\n{}",
        root.log_tail()
    );
    let next_primary = ownership::owners(
        &site,
        &ids.iter()
            .filter(|i| **i != primary)
            .cloned()
            .collect::<Vec<_>>(),
        1,
    )[0]
    .clone();
    let p = peers.iter().find(|p| p.peer_id() == next_primary).unwrap();
    assert!(
        wait_found(p, "zqdelta", "&scope=local&limit=5", &page).await,
        "the new primary's own copy lacks the new vote\n{}",
        p.log_tail()
    );
    for word in ["zqalpha", "zqbeta"] {
        let urls = p.search_urls(word, "&scope=local&limit=5").await.unwrap();
        assert!(
            urls.contains(&page),
            "{word} lost at the new primary after a new vote: {urls:?}"
        );
    }
}
