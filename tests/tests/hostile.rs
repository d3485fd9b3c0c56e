//! Hostile peers (issue 11), each mode against 4 honest peers at R=2 and one central peer
//! over the same fixture sites:
//!
//! - **Statistics poisoning** (`PEERSEARCH_TEST_MISBEHAVE=poison_stats`): a peer answers
//!   every statistics request with 2^60 documents, 2^60 holders of every term and about
//!   70 KiB of junk keys. It changes no score of an honest root, gets no honest peer banned
//!   (its junk no longer pushes the root's search request over its cap), and is itself cut
//!   off by every root it poisons. It holds no document (the sites are chosen among fixture
//!   ports so that it owns none), so the statistics left out hold nothing and the honest
//!   roots give exactly the central peer's top 10, URLs and scores.
//! - **Result poisoning** (`poison_results`): a peer that owns some of the sites crawls and
//!   indexes honestly, but raises every score it returns by 150, rewrites every title and
//!   slips in a spam URL. The root recomputes every score from the hit's evidence with the
//!   statistics it sent, so no poisoned hit or title is ever shown; the peer is banned after
//!   three answers, and the honest co-owners' copies give the central peer's top 10.
//! - **Replica poisoning** (`poison_replicas`, at R=1): a peer that owns none of the sites
//!   (it is outside each site's owner and the owners' slack of 2) sends every peer, every second,
//!   replica batches of the sites whose URLs were seeded through it: every page as a
//!   `poisoned` document, and the same URLs as deletes, crawled and done URLs. The owners
//!   refuse all of it, so nothing is deleted or rewritten and the top 10 stay the central
//!   ones; once it also sends documents fetched ten years ahead (a forgery no honest peer
//!   makes), every honest peer bans it.
//! - **Query flood** (`flood_queries`): once seeded, a peer keeps 96 searches in flight to
//!   every other peer. Each peer answers at most 32 requests of a protocol from one peer at a
//!   time and refuses the rest at once as busy (`node/src/net/inflight.rs`), so an honest
//!   root's queries are answered by every honest peer and give the answers they gave before
//!   the flood; and an honest root with 48 queries at once still gets whole answers.

use axum::Router;
use peersearch_tests::fixture::{Bound, Rng, Server, numbered_pages_router};
use peersearch_tests::harness::{
    PeerOptions, PeerProcess, settled_top10, start_network_with, wait_mesh, wait_network_idle,
};
use peersearch_tests::ownership;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

const HONEST: usize = 4;
const R: usize = 2;
/// The replica-poisoning network's R.
const REPLICA_R: usize = 1;
const SITES: usize = 4;
const PAGES: usize = 6;
/// Ports bound (one at a time, until the sites wanted are found) to pick the sites from.
/// Averaged over peer ids a port is free of the hostile peer with probability 3/5 (R=2 of 5
/// peers) and has it as second owner with probability 1/5, but for one set of ids the share
/// of the key space where the hostile peer holds a given place can be far smaller (XOR
/// distance: a peer whose id shares a long prefix with another's is rarely second); 2048
/// candidates cover a share down to about 1/200.
const CANDIDATE_PORTS: usize = 2048;
const LINK_TEXTS: [&str; 3] = ["field notes", "reference material", "further reading"];

fn args(r: usize) -> Vec<String> {
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

fn env() -> Vec<(String, String)> {
    vec![("PEERSEARCH_MAINTENANCE_INTERVAL_MS".into(), "1000".into())]
}

/// Page `n` of site `site`: generated words, a link to the next page and one to a page of
/// another site.
fn page_html(site: usize, n: usize, others: &[String]) -> String {
    let mut rng = Rng::new(0xBAD5_7A75 ^ ((site as u64) << 16) ^ n as u64);
    let title = rng.words(3);
    let body = format!("<p>{}</p><p>{}</p>", rng.words(30), rng.words(30));
    let other = &others[rng.below(others.len())];
    let to = rng.below(PAGES);
    let text = LINK_TEXTS[rng.below(LINK_TEXTS.len())];
    let next = (n + 1) % PAGES;
    format!(
        "<!doctype html><html><head><title>{title}</title></head><body><main>\
         <h1>{title}</h1>{body}<p><a href=\"/p/{next}.html\">next</a> \
         <a href=\"{other}/p/{to}.html\">{text}</a></p></main></body></html>"
    )
}

fn site_router(site: usize, others: Vec<String>) -> Router {
    let others = Arc::new(others);
    let home = format!(
        "<!doctype html><html><head><title>site {site}</title></head><body><main>\
         <p>Welcome to site {site}.</p><a href=\"/p/0.html\">start</a></main></body></html>"
    );
    numbered_pages_router(home, PAGES, move |n| page_html(site, n, &others))
}

/// [`SITES`] linked sites on ports chosen by who owns them among `peers` at `R`: with
/// `hostile_owns` false, none is owned by `hostile`; with true, exactly two are, with
/// `hostile` as their second owner. (Not as their primary: a site's primary counts its
/// documents in the statistics, and once the root bans that peer, the others still count
/// by their own view, where it is the primary: the site's documents would drop out of the
/// root's statistics. Known gap, see issue 11's notes: the fix is statistics requests that
/// say which peers the root counts with.)
async fn sites_for(hostile: &str, peers: &[String], hostile_owns: bool) -> Vec<Server> {
    let want_owned = if hostile_owns { 2 } else { 0 };
    let (mut owned, mut free): (Vec<Bound>, Vec<Bound>) = (Vec::new(), Vec::new());
    for _ in 0..CANDIDATE_PORTS {
        let b = Server::bind().await.unwrap();
        let authority = b.addr.to_string();
        let owners = ownership::owners(&authority, peers, R);
        let by_hostile = owners.iter().any(|o| o == hostile);
        let secondary = owners.first().is_some_and(|o| o != hostile);
        if by_hostile && secondary && owned.len() < want_owned {
            owned.push(b);
        } else if !by_hostile && free.len() < SITES - want_owned {
            free.push(b);
        }
        if owned.len() + free.len() == SITES {
            break;
        }
    }
    let chosen: Vec<Bound> = owned.into_iter().chain(free).collect();
    serve_sites(chosen)
}

/// [`SITES`] linked sites on ports where `hostile` is outside every site's owners and
/// their slack at R=1 (R + 2 = the 3 peers closest to the site, of 5). (At R=2 that would
/// leave only the farthest place, whose share of the key space can be tiny for one set of
/// peer ids; the 2 farthest places hold far more of it.)
async fn far_sites(hostile: &str, peers: &[String]) -> Vec<Server> {
    let mut chosen = Vec::new();
    for _ in 0..CANDIDATE_PORTS {
        let b = Server::bind().await.unwrap();
        let near = ownership::owners(&b.addr.to_string(), peers, REPLICA_R + 2);
        if !near.iter().any(|p| p == hostile) {
            chosen.push(b);
            if chosen.len() == SITES {
                break;
            }
        }
    }
    serve_sites(chosen)
}

/// Serve [`SITES`] linked fixture sites on `chosen`.
fn serve_sites(chosen: Vec<Bound>) -> Vec<Server> {
    assert_eq!(chosen.len(), SITES, "too few ports with the owners wanted");
    let urls: Vec<String> = chosen.iter().map(|b| b.url("")).collect();
    chosen
        .into_iter()
        .enumerate()
        .map(|(i, b)| {
            let others = (0..SITES).filter(|j| *j != i).map(|j| urls[j].clone());
            b.serve(site_router(i, others.collect()))
        })
        .collect()
}

fn queries() -> Vec<String> {
    let mut out: Vec<String> = LINK_TEXTS.iter().map(|s| s.to_string()).collect();
    let mut rng = Rng::new(11);
    for i in 0..5 {
        out.push(rng.words(1 + i % 2));
    }
    out
}

/// Whether `peer`'s log says it banned `id`.
fn banned(peer: &PeerProcess, id: &str) -> bool {
    let log = std::fs::read_to_string(&peer.log_path).unwrap_or_default();
    log.lines()
        .any(|l| l.contains("banning misbehaving peer") && l.contains(id))
}

/// Whether an answer shows anything of the result-poisoning peer's making.
fn poisoned(v: &Value) -> bool {
    v["hits"].as_array().is_some_and(|hits| {
        hits.iter().any(|h| {
            h["title"] == "poisoned" || h["title"] == "spam" || h["url"] == "http://spam.example/"
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poisoned_statistics_change_no_score_and_get_no_honest_peer_banned() {
    hostile_network(Mode::Stats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poisoned_results_are_never_shown_and_their_peer_is_banned() {
    hostile_network(Mode::Results).await;
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    Stats,
    Results,
}

/// One hostile network at a time: two at once on a 2-core machine slow the crawl and the
/// anchor hand-offs enough for the answers to look settled before they are.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// [`HONEST`] honest peers at `r` and one hostile peer (the last) misbehaving as `mode`,
/// meshed; with every peer's id.
async fn network_with_hostile(
    dir: &std::path::Path,
    r: usize,
    mode: &str,
) -> (Vec<PeerProcess>, Vec<String>) {
    let mut peers = start_network_with(dir, HONEST, &args(r), &env())
        .await
        .unwrap();
    if mode == "poison_results" {
        let honest: Vec<String> = peers.iter().map(PeerProcess::peer_id).collect();
        write_key_of_a_second_owner(&dir.join("hostile"), &honest, r);
    }
    let hostile = PeerProcess::spawn(
        &dir.join("hostile"),
        &PeerOptions {
            args: [args(r), vec!["--bootstrap".into(), peers[0].p2p_addr()]].concat(),
            env: [
                env(),
                vec![("PEERSEARCH_TEST_MISBEHAVE".into(), mode.into())],
            ]
            .concat(),
        },
    )
    .await
    .unwrap();
    peers.push(hostile);
    wait_mesh(&peers, HONEST).await.unwrap();
    let ids = peers.iter().map(PeerProcess::peer_id).collect();
    (peers, ids)
}

/// Write into `data_dir` the key of a peer that, among `honest` and itself at `r`, is the
/// second owner of a fair share of sites (at least 1 in 64). With a random key it can be
/// never: a peer alone in its half of the id space is primary there and last elsewhere.
fn write_key_of_a_second_owner(data_dir: &std::path::Path, honest: &[String], r: usize) {
    const SAMPLE: u16 = 4096;
    for _ in 0..256 {
        let key = libp2p::identity::Keypair::generate_ed25519();
        let id = key.public().to_peer_id().to_string();
        let ids: Vec<String> = honest.iter().cloned().chain([id.clone()]).collect();
        let second = (0..SAMPLE)
            .filter(|i| {
                let owners = ownership::owners(&format!("127.0.0.1:{}", 20000 + i), &ids, r);
                owners.first().is_some_and(|o| *o != id) && owners.contains(&id)
            })
            .count();
        if second * 64 >= usize::from(SAMPLE) {
            std::fs::create_dir_all(data_dir).unwrap();
            std::fs::write(
                data_dir.join("peer_key"),
                key.to_protobuf_encoding().unwrap(),
            )
            .unwrap();
            return;
        }
    }
    panic!("no key in 256 makes a peer a second owner of 1 site in 64");
}

/// The central peer: one peer that crawls `seeds` alone, idle when this returns.
async fn central_of(dir: &std::path::Path, seeds: &[String]) -> PeerProcess {
    let central = PeerProcess::spawn(
        &dir.join("central"),
        &PeerOptions {
            args: args(1),
            env: env(),
        },
    )
    .await
    .unwrap();
    central.seed(seeds).await.unwrap();
    central
        .wait_crawl_idle(Duration::from_secs(60))
        .await
        .unwrap();
    central
}

async fn hostile_network(mode: Mode) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let misbehave = match mode {
        Mode::Stats => "poison_stats",
        Mode::Results => "poison_results",
    };
    // A refused answer is a failed peer until the ban; refused statistics are not.
    let failing = u64::from(mode == Mode::Results);
    let dir = tempfile::tempdir().unwrap();
    let (peers, ids) = network_with_hostile(dir.path(), R, misbehave).await;
    let hostile_id = ids[HONEST].clone();
    let sites = sites_for(&hostile_id, &ids, mode == Mode::Results).await;
    let seeds: Vec<String> = sites.iter().map(|s| s.url("/")).collect();
    let central = central_of(dir.path(), &seeds).await;
    peers[0].seed(&seeds).await.unwrap();
    wait_network_idle(&peers, Duration::from_secs(60))
        .await
        .unwrap();
    let st: Value = hostile_status(&peers).await;
    match mode {
        Mode::Stats => assert_eq!(
            st["docs_indexed"], 0,
            "the hostile peer holds nothing: {st}"
        ),
        Mode::Results => assert!(
            st["docs_indexed"].as_u64() > Some(0),
            "the hostile peer owns sites: {st}"
        ),
    }

    // A root that never asked before: the hostile peer is in its fan-out, the answer whole.
    let queries = queries();
    let fresh_root = &peers[3];
    let v = fresh_root
        .search(&queries[0], "&limit=10&timeout_ms=5000")
        .await
        .unwrap();
    assert_eq!(v["partial"], failing == 1, "{v}");
    assert_eq!(v["peers"]["queried"], HONEST + 1, "{v}");
    assert_eq!(v["peers"]["failed"], failing, "{v}");
    assert!(!poisoned(&v), "{v}");

    // Another root: each query catches the hostile peer once (its statistics, or its
    // answer), and the third gets it banned. With poisoned statistics that query's search
    // round has it still in its fan-out and counts it as failed; with poisoned results
    // every answer of it before the ban is refused (failed). No honest peer ever fails.
    let root = &peers[1];
    let mut caught = None;
    for (i, q) in queries.iter().cycle().take(6).enumerate() {
        let v = root.search(q, "&limit=10&timeout_ms=5000").await.unwrap();
        // The root itself and the honest peers answer, always.
        assert!(
            v["peers"]["answered"].as_u64() >= Some(HONEST as u64),
            "{q:?}: {v}"
        );
        assert!(!poisoned(&v), "{q:?}: {v}");
        // The ban is logged by the root's network task a moment after the answer (the
        // result check reports the peer after it answered): give it a few seconds, bounded.
        let grace = if i + 1 >= 3 { 50 } else { 1 };
        let mut is_banned = false;
        for _ in 0..grace {
            is_banned = banned(root, &hostile_id);
            if is_banned {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if is_banned {
            caught = Some(i + 1);
            break;
        }
        assert_eq!(v["partial"], failing == 1, "{q:?}: {v}");
        assert_eq!(v["peers"]["failed"], failing, "{q:?}: {v}");
    }
    assert_eq!(
        caught,
        Some(3),
        "the hostile peer is banned by the third query"
    );
    // Many more queries (every one a statistics round): whole answers, the central scores.
    let got = settled_top10(root, &queries, "")
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", root.log_tail()));
    // The central answers read after the network's, so that late anchor votes had as long
    // to land there.
    let expected = settled_top10(&central, &queries, "").await.unwrap();
    assert!(
        expected.iter().filter(|a| !a.is_empty()).count() >= queries.len() / 2,
        "too few queries match anything: {expected:?}"
    );
    for ((q, want), have) in queries.iter().zip(&expected).zip(&got) {
        if want != have {
            let extra = "&limit=10&timeout_ms=5000&explain=1";
            let central_says = central.search(q, extra).await.unwrap();
            let root_says = root.search(q, extra).await.unwrap();
            panic!(
                "{q:?}: the root's top 10 is not the central one\n  central {want:?}\n  \
                 network {have:?}\ncentral's explanations: {central_says}\n\
                 root's explanations: {root_says}"
            );
        }
    }
    // Still whole after all that: every honest peer asked, none failed; the hostile peer is
    // out of the fan-out.
    for q in &queries[..4] {
        let v = root.search(q, "&limit=10&timeout_ms=5000").await.unwrap();
        assert_eq!(v["partial"], false, "{q:?}: {v}");
        assert_eq!(v["peers"]["failed"], 0, "{q:?}: {v}");
        assert_eq!(v["peers"]["queried"], HONEST, "{q:?}: {v}");
    }
    assert!(
        banned(root, &hostile_id),
        "the root did not ban the hostile peer"
    );
    for p in &peers[..HONEST] {
        for other in &ids[..HONEST] {
            assert!(!banned(p, other), "{} banned honest {other}", p.peer_id());
        }
    }
    drop(sites);
}

/// The `poison_replicas` rounds `peer` logged.
fn forged_rounds(peer: &PeerProcess) -> usize {
    let log = std::fs::read_to_string(&peer.log_path).unwrap_or_default();
    log.lines()
        .filter(|l| l.contains("sent forged replica batches"))
        .count()
}

/// Every honest peer's documents, and no `poisoned` one anywhere.
async fn docs_and_no_poison(peers: &[PeerProcess]) -> u64 {
    let mut total = 0;
    for p in &peers[..HONEST] {
        let st: Value = p.get_json("/api/status").await.unwrap();
        total += st["docs_indexed"].as_u64().unwrap();
        let v = p
            .search("poisoned replica", "&scope=local&limit=10")
            .await
            .unwrap();
        assert_eq!(
            v["total_hits"],
            0,
            "{} stored a forged replica: {v}",
            p.peer_id()
        );
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_replicas_are_refused_and_their_peer_is_banned() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let (peers, ids) = network_with_hostile(dir.path(), REPLICA_R, "poison_replicas").await;
    let hostile_id = ids[HONEST].clone();
    let sites = far_sites(&hostile_id, &ids).await;
    // Every page a seed, so that the hostile peer knows every URL it attacks.
    let seeds: Vec<String> = sites
        .iter()
        .flat_map(|s| {
            std::iter::once(s.url("/")).chain((0..PAGES).map(|n| s.url(&format!("/p/{n}.html"))))
        })
        .collect();
    let central = central_of(dir.path(), &seeds).await;
    // Through the hostile peer: it routes them to their owners (honestly) and remembers them.
    peers[HONEST].seed(&seeds).await.unwrap();
    wait_network_idle(&peers, Duration::from_secs(60))
        .await
        .unwrap();
    let held = (seeds.len() * REPLICA_R) as u64;
    assert_eq!(
        docs_and_no_poison(&peers).await,
        held,
        "every page on its R owners"
    );

    // Five more rounds of batches that look honest, against the full index.
    let before = forged_rounds(&peers[HONEST]);
    for _ in 0..100 {
        if forged_rounds(&peers[HONEST]) >= before + 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        forged_rounds(&peers[HONEST]) >= before + 5,
        "the hostile peer sends its rounds: {}",
        peers[HONEST].log_tail()
    );
    assert_eq!(
        docs_and_no_poison(&peers).await,
        held,
        "nothing deleted or replaced"
    );
    let queries = queries();
    let root = &peers[1];
    let got = settled_top10(root, &queries, "").await.unwrap();
    let expected = settled_top10(&central, &queries, "").await.unwrap();
    assert!(
        expected.iter().filter(|a| !a.is_empty()).count() >= queries.len() / 2,
        "too few queries match anything: {expected:?}"
    );
    assert_eq!(got, expected, "the root's top 10 are the central ones");
    for p in &peers[..HONEST] {
        assert!(
            !banned(p, &hostile_id),
            "refused for ownership alone: no ban"
        );
    }

    // Seeded again, it adds far-future fetch times: a forgery every honest peer bans.
    peers[HONEST].seed(&seeds[..1]).await.unwrap();
    for _ in 0..150 {
        if peers[..HONEST].iter().all(|p| banned(p, &hostile_id)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for p in &peers[..HONEST] {
        assert!(
            banned(p, &hostile_id),
            "{} did not ban the forger",
            p.peer_id()
        );
        for other in &ids[..HONEST] {
            assert!(!banned(p, other), "{} banned honest {other}", p.peer_id());
        }
    }
    assert_eq!(docs_and_no_poison(&peers).await, held);
    let v = root.search(&queries[0], "&limit=10").await.unwrap();
    assert!(!poisoned(&v), "{v}");
    drop(sites);
}

/// The last counter `name` a peer logged in a line with `message` (0 before the first).
fn logged_count(peer: &PeerProcess, message: &str, name: &str) -> u64 {
    let log = std::fs::read_to_string(&peer.log_path).unwrap_or_default();
    log.lines()
        .rev()
        .find(|l| l.contains(message))
        .and_then(|l| l.split(&format!("{name}=")).nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The last `busy` count a flooding peer logged.
fn flood_busy(peer: &PeerProcess) -> u64 {
    logged_count(peer, "flooding searches", "busy")
}

/// `root`'s answers to `queries` during a flood: every honest peer answers, and each top 10
/// is the one of before the flood. The took_ms of each answer.
async fn assert_answers_unchanged(
    root: &PeerProcess,
    queries: &[String],
    before: &[Vec<(String, f64)>],
) -> Vec<u64> {
    let mut took = Vec::new();
    for (q, want) in queries.iter().zip(before) {
        let v = root.search(q, "&limit=10&timeout_ms=5000").await.unwrap();
        took.push(v["took_ms"].as_u64().unwrap_or(0));
        // Every honest peer answers (the flooder, whose own outbound flood shares its
        // connections, may not: it owns none of the sites).
        assert!(
            v["peers"]["answered"].as_u64() >= Some(HONEST as u64),
            "{q:?} in the flood: {v}"
        );
        let have: Vec<(String, f64)> = v["hits"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|h| Some((h["url"].as_str()?.to_string(), h["score"].as_f64()?)))
            .collect();
        assert_eq!(&have, want, "{q:?}: another answer in the flood");
    }
    took
}

/// Resident memory of a peer process, in MiB (a measurement to print).
fn rss_mib(peer: &PeerProcess) -> u64 {
    let Some(pid) = peer.pid() else { return 0 };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_flood_is_bounded_and_honest_queries_stay_whole() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let (peers, ids) = network_with_hostile(dir.path(), R, "flood_queries").await;
    let flooder_id = ids[HONEST].clone();
    let sites = sites_for(&flooder_id, &ids, false).await;
    let seeds: Vec<String> = sites.iter().map(|s| s.url("/")).collect();
    peers[0].seed(&seeds).await.unwrap();
    wait_network_idle(&peers, Duration::from_secs(60))
        .await
        .unwrap();
    let queries = queries();
    let root = &peers[1];
    let before = settled_top10(root, &queries, "").await.unwrap();
    assert!(
        before.iter().filter(|a| !a.is_empty()).count() >= queries.len() / 2,
        "too few queries match anything: {before:?}"
    );
    // A busy honest root first: 48 queries at once, more than the 32 requests a leaf takes
    // from one peer at a time; none of them is turned away.
    let many: Vec<String> = (0..48)
        .map(|i| queries[i % queries.len()].clone())
        .collect();
    let answers = futures::future::join_all(
        many.iter()
            .map(|q| root.search(q, "&limit=10&timeout_ms=10000")),
    )
    .await;
    for (q, v) in many.iter().zip(answers) {
        let v = v.unwrap();
        assert_eq!(v["partial"], false, "{q:?} among 48 at once: {v}");
    }
    let rss_before: Vec<u64> = peers[..HONEST].iter().map(rss_mib).collect();
    let mut took_before = Vec::new();
    for q in &queries {
        let v = root.search(q, "&limit=10&timeout_ms=5000").await.unwrap();
        took_before.push(v["took_ms"].as_u64().unwrap_or(0));
    }

    // Seeding the flooder starts its flood; wait until the bound turns requests away.
    peers[HONEST].seed(&seeds[..1]).await.unwrap();
    for _ in 0..300 {
        if flood_busy(&peers[HONEST]) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        flood_busy(&peers[HONEST]) > 0,
        "no request of the flood was refused as busy: {}",
        peers[HONEST].log_tail()
    );
    // Honest queries in the flood: whole, and the answers of before.
    let took_during = assert_answers_unchanged(root, &queries, &before).await;
    let rss_during: Vec<u64> = peers[..HONEST].iter().map(rss_mib).collect();
    println!(
        "honest peers' resident MiB before the flood {rss_before:?}, during {rss_during:?}; \
         the root's took_ms before {took_before:?}, during {took_during:?}; \
         flood requests refused busy so far: {}",
        flood_busy(&peers[HONEST])
    );
    for p in &peers[..HONEST] {
        for other in &ids[..HONEST] {
            assert!(!banned(p, other), "{} banned honest {other}", p.peer_id());
        }
    }
    drop(sites);
}

/// The last `flooding hand-offs` counter `name` a flooding peer logged.
fn handoff_flood(peer: &PeerProcess, name: &str) -> u64 {
    logged_count(peer, "flooding hand-offs", name)
}

/// A peer that hands every peer 5 000 junk URLs per message, as fast as they answer, with a
/// spent hop budget (which once forced the receiver to keep them): each sender gets a quota
/// of URLs per minute and is refused as busy past it, URLs past their hops are kept only for
/// sites the receiver owns, and honest queries stay whole and unchanged meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_off_flood_is_held_to_a_quota_and_honest_queries_stay_whole() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let (peers, ids) = network_with_hostile(dir.path(), R, "flood_handoffs").await;
    let flooder_id = ids[HONEST].clone();
    let sites = sites_for(&flooder_id, &ids, false).await;
    let seeds: Vec<String> = sites.iter().map(|s| s.url("/")).collect();
    peers[0].seed(&seeds).await.unwrap();
    wait_network_idle(&peers, Duration::from_secs(60))
        .await
        .unwrap();
    let queries = queries();
    let root = &peers[1];
    let before = settled_top10(root, &queries, "").await.unwrap();
    assert!(
        before.iter().filter(|a| !a.is_empty()).count() >= queries.len() / 2,
        "too few queries match anything: {before:?}"
    );

    // Seeding the flooder starts its flood; wait until the quota turns hand-offs away.
    let started = std::time::Instant::now();
    peers[HONEST].seed(&seeds[..1]).await.unwrap();
    for _ in 0..300 {
        if handoff_flood(&peers[HONEST], "busy") > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        handoff_flood(&peers[HONEST], "busy") > 0,
        "no hand-off of the flood was refused: {}",
        peers[HONEST].log_tail()
    );
    // Honest queries in the flood: whole, and the answers of before.
    assert_answers_unchanged(root, &queries, &before).await;
    // What the honest peers kept of it is within their quotas: a burst of two messages each,
    // then 1 000 URLs a second (measured from before the flood began, so the bound is loose).
    let (answered, busy, kept) = (
        handoff_flood(&peers[HONEST], "answered"),
        handoff_flood(&peers[HONEST], "busy"),
        handoff_flood(&peers[HONEST], "kept"),
    );
    let secs = started.elapsed().as_secs() + 1;
    let bound = HONEST as u64 * (10_000 + 1_000 * secs);
    println!(
        "hand-off flood: {answered} messages taken, {busy} refused as busy, {kept} URLs kept \
         by the honest peers in about {secs} s (their quotas allow {bound})"
    );
    assert!(
        kept <= bound,
        "the honest peers kept {kept} URLs, over their quotas ({bound})"
    );
    assert!(
        kept < answered * 5_000,
        "every URL past its hops was kept, also for sites the receiver does not own"
    );
    for p in &peers[..HONEST] {
        for other in &ids[..HONEST] {
            assert!(!banned(p, other), "{} banned honest {other}", p.peer_id());
        }
    }
    drop(sites);
}

async fn hostile_status(peers: &[PeerProcess]) -> Value {
    peers[HONEST].get_json("/api/status").await.unwrap()
}
