//! The overlay: peers on loopback find each other, split the URL space, and answer queries
//! together with the ranking one central index would give.

use peersearch_tests::fixture::{self, FetchLog, Rng, Server, linked_sites};
use peersearch_tests::harness::{
    PeerOptions, PeerProcess, settled_top10, start_network, wait_mesh, wait_network_idle,
};
use peersearch_tests::ownership;
use serde_json::Value;
use std::collections::HashSet;
use std::time::Duration;

const SITES: usize = 10;
const PAGES: usize = 30;

fn base_args(r: usize) -> Vec<String> {
    [
        "--allow-private-addresses",
        "--crawl-rate",
        "500",
        "--fetch-timeout-secs",
        "5",
        "--replication",
        &r.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn queries() -> Vec<String> {
    let mut rng = Rng::new(42);
    (0..50)
        .map(|i| match i % 3 {
            0 => rng.word().to_string(),
            1 => format!("{} {}", rng.word(), rng.word()),
            _ => format!("{} {} {}", rng.word(), rng.word(), rng.word()),
        })
        .collect()
}

async fn seed(p: &PeerProcess, sites: &[Server]) {
    let urls: Vec<String> = sites.iter().map(|s| s.url("/")).collect();
    let (status, body) = p
        .post_json("/api/crawl", &serde_json::json!({ "urls": urls }))
        .await
        .unwrap();
    assert_eq!(status, 202, "{body}");
}

/// Ask `peer` the queries of `orders` in turn (each a text it was not asked just before)
/// until an answer takes one round; that query and answer. At most 40 tries, half a second
/// apart.
async fn until_one_round(peer: &PeerProcess, orders: &[String]) -> (String, Value) {
    let mut last = Value::Null;
    for q in orders.iter().cycle().take(40) {
        let v = peer.search(q, "").await.unwrap();
        if v["rounds"] == 1 {
            return (q.clone(), v);
        }
        last = v;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("no query took one round in 40 tries; the last: {last}");
}

/// The URLs and scores of an answer, in order.
fn scored(answer: &Value) -> Vec<(String, f64)> {
    answer["hits"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| {
            let url = h["url"].as_str().unwrap_or_default().to_string();
            (url, h["score"].as_f64().unwrap_or(f64::NAN))
        })
        .collect()
}

fn assert_fetched_once(logs: &[FetchLog]) {
    for (i, log) in logs.iter().enumerate() {
        assert!(
            log.repeated().is_empty(),
            "site {i} refetched: {:?}",
            log.repeated()
        );
        assert_eq!(
            log.count("/robots.txt"),
            1,
            "site {i} crawled by one peer only"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_splits_the_crawl_and_ranks_like_one_central_index() {
    let (sites, logs) = linked_sites(SITES, PAGES).await.unwrap();
    let total_docs = (SITES * (PAGES + 1)) as u64;
    let dir = tempfile::tempdir().unwrap();

    // The reference: one peer that crawls everything alone.
    let reference = PeerProcess::spawn(
        &dir.path().join("reference"),
        &PeerOptions {
            args: base_args(1),
            ..PeerOptions::default()
        },
    )
    .await
    .unwrap();
    seed(&reference, &sites[..1]).await;
    let st = reference
        .wait_crawl_idle(Duration::from_secs(300))
        .await
        .unwrap();
    assert_eq!(st["docs_indexed"], total_docs, "{st}");
    let qs = queries();
    // Read once late anchor votes have re-indexed their pages.
    let expected = settled_top10(&reference, &qs, "&scope=local")
        .await
        .unwrap();
    drop(reference);

    for r in [1usize, 3] {
        for log in &logs {
            log.reset();
        }
        let root = dir.path().join(format!("r{r}"));
        let peers = start_network(&root, 5, &base_args(r)).await.unwrap();
        // One seed on one peer: links lead to every site, each handed to its owner.
        seed(&peers[2], &sites[..1]).await;
        wait_network_idle(&peers, Duration::from_secs(300))
            .await
            .unwrap();
        // Replicas settle after the crawl (replication is asynchronous).
        let want = total_docs * r as u64;
        let mut held = 0;
        for _ in 0..120 {
            held = 0;
            for p in &peers {
                let st: Value = p.get_json("/api/status").await.unwrap();
                held += st["docs_indexed"].as_u64().unwrap();
            }
            if held == want {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert_eq!(held, want, "R={r}: every document held by R peers");
        assert_fetched_once(&logs);

        // Every document is held by exactly R peers.
        for site in 0..SITES {
            let m = fixture::marker(100 + site, 7);
            let mut holders = 0;
            for p in &peers {
                holders +=
                    usize::from(!p.search_urls(&m, "&scope=local").await.unwrap().is_empty());
            }
            assert_eq!(holders, r, "R={r}: {m} held by {holders} peers");
        }
        // A query to any peer returns the page of every site: the marker of page 3 of a site
        // finds that page, and only it.
        for p in &peers {
            let mut seen = HashSet::new();
            let mut wrong = Vec::new();
            for (site, server) in sites.iter().enumerate() {
                let hits = p
                    .search_urls(&fixture::marker(100 + site, 3), "&timeout_ms=5000")
                    .await
                    .unwrap();
                if hits == [server.url("/page/3.html")] {
                    seen.insert(site);
                } else {
                    wrong.push((site, hits));
                }
            }
            assert_eq!(
                seen.len(),
                SITES,
                "R={r}: sites not found (or not only their page) through {}: {wrong:?}",
                p.peer_id()
            );
        }

        // Ranking fidelity against the reference.
        let mut overlap_sum = 0.0;
        let answers = settled_top10(&peers[0], &qs, "&scope=network")
            .await
            .unwrap();
        for ((q, want), got) in qs.iter().zip(&expected).zip(answers) {
            if r == 1 {
                assert_eq!(
                    &got, want,
                    "R=1 top 10 of {q:?} differs from the central index"
                );
            }
            let want_urls: HashSet<_> = want.iter().map(|(u, _)| u).collect();
            let inter = got.iter().filter(|(u, _)| want_urls.contains(u)).count();
            overlap_sum += inter as f64 / want.len().max(1) as f64;
        }
        let overlap = overlap_sum / qs.len() as f64;
        println!("R={r}: average top-10 overlap with the central index: {overlap:.3}");
        assert!(overlap >= 0.95, "R={r}: overlap {overlap:.3}");

        // Statistics are cached per term, not per query: a query made of the words of two
        // earlier ones, in an order never asked before, takes the search round alone once
        // its terms are cached, and scores as with a statistics round. (Each try is a new
        // order: late anchor votes can still move a statistic, which costs a round.)
        let words: Vec<&str> = qs[2].split(' ').chain(qs[1].split(' ')).collect();
        let order = |i: usize| {
            let mut w = words.clone();
            let n = w.len();
            w.rotate_left(i % n);
            if i / n % 2 == 1 {
                w.reverse();
            }
            w.join(" ")
        };
        let orders: Vec<String> = (0..2 * words.len()).map(order).collect();
        let (q, cached) = until_one_round(&peers[0], &orders).await;
        // The same query to another root, whose first query of these terms gathers them.
        let gathered = peers[1].search(&q, "").await.unwrap();
        assert_ne!(gathered["rounds"], 1, "R={r}: {gathered}");
        assert_eq!(scored(&cached), scored(&gathered), "R={r}: {q:?}");
        // When the network's statistics change (a new site crawled), the root learns it
        // from the shares the leaves send with their answers and searches again (or, if
        // they expired meanwhile, gathers them first): two rounds or more, then one again,
        // with the scores of the statistics as they are now. The new site's primary must be
        // another peer: the root's own share is read afresh for every query, so a site the
        // root counts itself changes nothing the cache holds (one round, and rightly so).
        let ids: Vec<String> = peers.iter().map(PeerProcess::peer_id).collect();
        let mut extra = None;
        for _ in 0..20 {
            let site = Server::start(
                fixture::PlainSite {
                    site: 7,
                    pages: 3,
                    home_links: String::new(),
                }
                .router(),
            )
            .await
            .unwrap();
            if ownership::owners(&site.addr.to_string(), &ids, r)[0] != ids[0] {
                extra = Some(site);
                break;
            }
        }
        let extra = extra.expect("a site whose primary is not the root, in 20 draws");
        seed(&peers[0], std::slice::from_ref(&extra)).await;
        wait_network_idle(&peers, Duration::from_secs(120))
            .await
            .unwrap();
        let changed = peers[0].search(&q, "").await.unwrap();
        let rounds = changed["rounds"].as_u64().unwrap_or(0);
        assert!(rounds >= 2, "R={r}: statistics changed: {changed}");
        let (q, cached) = until_one_round(&peers[0], &orders).await;
        let gathered = peers[2].search(&q, "").await.unwrap();
        assert_eq!(scored(&cached), scored(&gathered), "R={r}: {q:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_peer_does_not_hold_the_query_past_its_deadline() {
    let site = Server::start(
        fixture::PlainSite {
            site: 9,
            pages: 5,
            home_links: String::new(),
        }
        .router(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut peers = start_network(dir.path(), 2, &base_args(1)).await.unwrap();
    let staller = PeerProcess::spawn(
        &dir.path().join("staller"),
        &PeerOptions {
            args: [
                base_args(1),
                vec!["--bootstrap".into(), peers[0].p2p_addr()],
            ]
            .concat(),
            env: vec![("PEERSEARCH_TEST_STALL_SEARCH_MS".into(), "8000".into())],
        },
    )
    .await
    .unwrap();
    peers.push(staller);
    wait_mesh(&peers, 2).await.unwrap();
    seed(&peers[0], std::slice::from_ref(&site)).await;
    wait_network_idle(&peers, Duration::from_secs(120))
        .await
        .unwrap();
    let v = peers[0]
        .search(&fixture::marker(9, 1), "&timeout_ms=600")
        .await
        .unwrap();
    assert_eq!(v["partial"], true, "{v}");
    assert_eq!(v["peers"]["failed"], 1, "{v}");
    assert_eq!(v["peers"]["queried"], 3, "{v}");
    assert_eq!(v["peers"]["answered"], 2, "{v}");
    // The 600 ms deadline against the staller's 8 s: a measurement, not an assertion (real
    // processes on a shared machine give no bound on time).
    eprintln!(
        "query with a stalled peer and a 600 ms deadline: took_ms {}",
        v["took_ms"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_joiner_receives_its_share_and_restart_rejoins_without_bootstrap() {
    const JOIN_SITES: usize = 20;
    let (sites, _logs) = linked_sites(JOIN_SITES, 4).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut args = base_args(1);
    args.extend(["--commit-interval-ms".to_string(), "200".to_string()]);
    let fast_maintenance = vec![(
        "PEERSEARCH_MAINTENANCE_INTERVAL_MS".to_string(),
        "1000".to_string(),
    )];
    let mut peers = Vec::new();
    for i in 0..2 {
        let mut a = args.clone();
        if let Some(first) = peers.first() {
            a.extend(["--bootstrap".to_string(), PeerProcess::p2p_addr(first)]);
        }
        peers.push(
            PeerProcess::spawn(
                &dir.path().join(format!("peer-{i}")),
                &PeerOptions {
                    args: a,
                    env: fast_maintenance.clone(),
                },
            )
            .await
            .unwrap(),
        );
    }
    wait_mesh(&peers, 1).await.unwrap();
    seed(&peers[0], &sites[..1]).await;
    wait_network_idle(&peers, Duration::from_secs(120))
        .await
        .unwrap();

    // A third peer joins: it becomes the owner of some sites and receives their documents,
    // and the peers that owned them before let go of them.
    let joiner_dir = dir.path().join("joiner");
    let joiner_args = [
        args.clone(),
        vec!["--bootstrap".into(), peers[0].p2p_addr()],
    ]
    .concat();
    let mut joiner = PeerProcess::spawn(
        &joiner_dir,
        &PeerOptions {
            args: joiner_args,
            env: fast_maintenance.clone(),
        },
    )
    .await
    .unwrap();
    let id = joiner.peer_id();
    let ids: Vec<String> = peers
        .iter()
        .chain(std::iter::once(&joiner))
        .map(PeerProcess::peer_id)
        .collect();
    // The test kit's own reading of the design, not the node's code, says who owns what.
    let owned: Vec<usize> = (0..JOIN_SITES)
        .filter(|i| ownership::owners(&sites[*i].addr.to_string(), &ids, 1) == [id.clone()])
        .collect();
    assert!(
        !owned.is_empty(),
        "with {JOIN_SITES} sites the joiner owns some"
    );
    let want = (owned.len() * 5) as u64;
    let st = joiner
        .wait_status(Duration::from_secs(120), |st| st["docs_indexed"] == want)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", joiner.log_tail()));
    for i in &owned {
        let m = fixture::marker(100 + i, 2);
        assert_eq!(
            joiner.search_urls(&m, "&scope=local").await.unwrap().len(),
            1,
            "the joiner holds {m} of site {i}, which the design says it owns"
        );
        // The former owner drops the site once the joiner holds it.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        for p in &peers {
            while !p.search_urls(&m, "&scope=local").await.unwrap().is_empty() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{m} still held by the old owner"
                );
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    }
    let got = st["docs_indexed"].as_u64().unwrap();

    // Restart without --bootstrap: same id, same data, back in the network.
    assert!(joiner.terminate(), "clean shutdown");
    let joiner = PeerProcess::spawn(
        &joiner_dir,
        &PeerOptions {
            args: base_args(1),
            ..PeerOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(joiner.peer_id(), id, "the peer id survives a restart");
    let st: Value = joiner.get_json("/api/status").await.unwrap();
    assert!(st["docs_indexed"].as_u64().unwrap() >= got, "{st}");
    peers.push(joiner);
    wait_mesh(&peers, 2).await.unwrap();
    // And the network answers through it with every site.
    for i in 0..JOIN_SITES {
        let hits = peers[2]
            .search_urls(&fixture::marker(100 + i, 1), "&timeout_ms=5000")
            .await
            .unwrap();
        assert_eq!(hits.len(), 1, "site {i} through the restarted peer");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_peers_are_cut_off_and_honest_results_still_come_back() {
    let site = Server::start(
        fixture::PlainSite {
            site: 11,
            pages: 5,
            home_links: String::new(),
        }
        .router(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Every peer holds every document (R=4), so whichever peer crawls the site, the honest
    // peers hold the page: the hostile ones only lie in their search answers.
    let mut peers = start_network(dir.path(), 2, &base_args(4)).await.unwrap();
    for mode in ["flood", "oversized"] {
        let p = PeerProcess::spawn(
            &dir.path().join(mode),
            &PeerOptions {
                // The same replication factor as the honest peers: the hostile peers only
                // lie in search answers. (With R=1 here, a hostile primary never replicated
                // the site to the honest peers: the flake of earlier runs.)
                args: [
                    base_args(4),
                    vec!["--bootstrap".into(), peers[0].p2p_addr()],
                ]
                .concat(),
                env: vec![("PEERSEARCH_TEST_MISBEHAVE".into(), mode.into())],
            },
        )
        .await
        .unwrap();
        peers.push(p);
    }
    wait_mesh(&peers, 3).await.unwrap();
    seed(&peers[0], std::slice::from_ref(&site)).await;
    wait_network_idle(&peers, Duration::from_secs(120))
        .await
        .unwrap();
    // Replication is asynchronous: every peer holds the 6 pages before the queries.
    for p in &peers {
        p.wait_status(Duration::from_secs(60), |st| st["docs_indexed"] == 6)
            .await
            .unwrap();
    }
    let hostile: Vec<String> = peers[2..].iter().map(PeerProcess::peer_id).collect();
    let honest: Vec<String> = peers[..2].iter().map(PeerProcess::peer_id).collect();
    for p in &peers[..2] {
        let v = p
            .search(&fixture::marker(11, 2), "&timeout_ms=3000")
            .await
            .unwrap();
        let hits = v["hits"].as_array().unwrap();
        // The honest answer is complete: the one page, from an honest peer.
        let urls: Vec<&str> = hits.iter().map(|h| h["url"].as_str().unwrap()).collect();
        assert_eq!(urls, vec![site.url("/page/2.html")], "{v}");
        for h in hits {
            let from = h["peer"].as_str().unwrap_or_default().to_string();
            assert!(!hostile.contains(&from), "a hit from a hostile peer: {h}");
            assert!(honest.contains(&from), "a hit from an unknown peer: {h}");
        }
        // Both hostile peers were asked and both count as failed: the flood (more hits than
        // asked) and the oversized one (a response frame over the protocol's cap).
        assert_eq!(v["partial"], true, "{v}");
        assert_eq!(v["peers"]["queried"], 4, "{v}");
        assert_eq!(v["peers"]["failed"], 2, "both hostile peers fail: {v}");
    }
}

/// Crawl scopes travel with hand-offs: a seed scoped to two sites is crawled on both (by
/// their owners, two different peers) and nowhere else, and the peers' default scope
/// (`--crawl-scope site`) keeps an unscoped seed on its own site. A site outside every
/// scope is never asked for anything, not even its robots.txt, and nothing counts as failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_scope_travels_with_hand_offs_and_nothing_outside_it_is_fetched() {
    const N: usize = 6;
    let dir = tempfile::tempdir().unwrap();
    let args = [base_args(1), vec!["--crawl-scope".into(), "site".into()]].concat();
    let peers = start_network(dir.path(), 3, &args).await.unwrap();
    wait_mesh(&peers, 2).await.unwrap();
    let ids: Vec<String> = peers.iter().map(PeerProcess::peer_id).collect();
    let owner = |site: &Server| ownership::owners(&site.addr.to_string(), &ids, 1)[0].clone();
    // Two sites with different owners: the scope has to cross a hand-off. Six sites on
    // fresh ports can all land on one peer (about 1 % with skewed XOR distances), so new
    // ports are drawn until two owners differ; nothing is crawled before that.
    let mut drawn = None;
    for _ in 0..20 {
        let (sites, logs) = linked_sites(N, 4).await.unwrap();
        let pair = (0..N)
            .flat_map(|a| (0..N).map(move |b| (a, b)))
            .find(|&(a, b)| a != b && owner(&sites[a]) != owner(&sites[b]));
        if let Some((a, b)) = pair {
            drawn = Some((sites, logs, a, b));
            break;
        }
    }
    let (sites, logs, a, b) = drawn.expect("two sites with different owners in 20 draws");
    let authority = |i: usize| sites[i].addr.to_string();
    let c = (0..N).find(|&c| c != a && c != b).unwrap();

    let scoped = serde_json::json!({
        "urls": [sites[a].url("/")],
        "scope": { "hosts": [authority(a), authority(b)] },
    });
    let (status, body) = peers[0].post_json("/api/crawl", &scoped).await.unwrap();
    assert_eq!(status, 202, "{body}");
    // No scope given: the peer's default, this seed's own site.
    let (status, body) = peers[0]
        .post_json(
            "/api/crawl",
            &serde_json::json!({ "urls": [sites[c].url("/")] }),
        )
        .await
        .unwrap();
    assert_eq!(status, 202, "{body}");
    // A scope that cannot be used is refused, naming why.
    let (status, body) = peers[0]
        .post_json(
            "/api/crawl",
            &serde_json::json!({ "urls": [sites[c].url("/")], "scope": { "deny": ["("] } }),
        )
        .await
        .unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("scope"), "{body}");

    wait_network_idle(&peers, Duration::from_secs(60))
        .await
        .unwrap();
    let mut docs = 0;
    for p in &peers {
        let st: Value = p.get_json("/api/status").await.unwrap();
        assert_eq!(st["pages_failed"], 0, "{st}");
        docs += st["docs_indexed"].as_u64().unwrap();
    }
    for (i, log) in logs.iter().enumerate() {
        if [a, b, c].contains(&i) {
            assert!(
                log.count("/robots.txt") >= 1,
                "site {i} in scope is crawled"
            );
            assert!(log.count("/") >= 1, "site {i} in scope is crawled");
        } else {
            assert_eq!(
                log.total(),
                0,
                "site {i} is outside every scope, yet was asked for something"
            );
        }
    }
    assert_eq!(
        docs,
        3 * 5,
        "the three sites in scope, each home and 4 pages"
    );
}
