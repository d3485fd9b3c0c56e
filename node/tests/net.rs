//! Real swarms over loopback TCP: discovery, requests, deadlines, misbehaving peers,
//! restarts.

use std::future::Future;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use futures::prelude::*;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, StreamProtocol, noise, tcp, yamux};
use peersearch_indexer::{Document, Hit, TermStats};
use peersearch_node::net::wire::{self, SEARCH_PROTOCOL};
use peersearch_node::net::{
    self, ClaimRequest, ClaimResponse, Client, DigestRequest, DigestResponse, Error, Event,
    HandoffRequest, HandoffResponse, Link, NetConfig, ReplicateRequest, ReplicateResponse,
    SearchRequest, SearchResponse, StatsRequest,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Upper bound for the network to settle (discovery, dead-peer detection) on a busy CI box.
const SETTLE: Duration = Duration::from_secs(60);

/// How a test peer answers inbound requests.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Answers everything at once; a search for "fail" gets a remote error, a search for
    /// "drop" is dropped unanswered.
    Echo,
    /// Keeps search requests and never answers them.
    Stall,
}

struct TestPeer {
    client: Client,
    event_loop: JoinHandle<()>,
    server: JoinHandle<()>,
}

impl TestPeer {
    fn id(&self) -> PeerId {
        self.client.local_peer_id()
    }

    async fn addr(&self) -> Multiaddr {
        self.client.listen_addrs().await.expect("listen addrs")[0].clone()
    }

    /// Drop the client and wait for the event loop to finish (it saves known peers).
    async fn stop(self) {
        drop(self.client);
        tokio::time::timeout(Duration::from_secs(10), self.event_loop)
            .await
            .expect("event loop ends when the client is dropped")
            .expect("event loop does not panic");
        self.server.abort();
    }
}

fn tcp_loopback() -> Multiaddr {
    "/ip4/127.0.0.1/tcp/0".parse().unwrap()
}

fn start_peer(
    dir: &Path,
    listen: Vec<Multiaddr>,
    bootstrap: Vec<Multiaddr>,
    mode: Mode,
) -> TestPeer {
    let keypair = net::load_or_create_keypair(dir).expect("keypair");
    let (client, events, event_loop) = net::new(NetConfig {
        keypair,
        listen,
        bootstrap,
        data_dir: dir.to_path_buf(),
    })
    .expect("network starts");
    let me = client.local_peer_id();
    TestPeer {
        client,
        event_loop: tokio::spawn(event_loop.run()),
        server: tokio::spawn(serve(events, mode, me)),
    }
}

async fn serve(mut events: mpsc::Receiver<Event>, mode: Mode, me: PeerId) {
    let mut held = Vec::new();
    while let Some(event) = events.recv().await {
        match event {
            Event::InboundSearch { request, reply, .. } => match mode {
                Mode::Stall => held.push(reply),
                Mode::Echo if request.query == "drop" => drop(reply),
                Mode::Echo if request.query == "fail" => {
                    let _ = reply.fail("shard failed");
                }
                Mode::Echo => {
                    let _ = reply.send(SearchResponse {
                        hits: vec![Hit {
                            url: format!("http://{me}/"),
                            title: request.query,
                            snippet: String::new(),
                            score: 1.5,
                            evidence: None,
                        }],
                        total_matches: 1,
                        share: None,
                    });
                }
            },
            Event::InboundStats { request, reply, .. } => {
                let mut stats = TermStats {
                    num_docs: 42,
                    ..TermStats::default()
                };
                stats.doc_freq.insert(request.query, 7);
                let _ = reply.send(stats);
            }
            Event::InboundHandoff { request, reply, .. } => {
                let _ = reply.send(HandoffResponse {
                    accepted: request.urls.len() as u32,
                });
            }
            Event::InboundReplicate { request, reply, .. } => {
                let _ = reply.send(ReplicateResponse {
                    stored: request.docs.len() as u32,
                });
            }
            Event::InboundDigest { request, reply, .. } => {
                let _ = reply.send(DigestResponse {
                    count: 1,
                    hash: request.site,
                    urls: request.list_urls.then(Vec::new),
                });
            }
            Event::InboundClaim { request, reply, .. } => {
                let _ = reply.send(ClaimResponse {
                    state: peersearch_crawler::SiteState::empty(&request.site),
                });
            }
            _ => {}
        }
    }
}

/// Poll `check` every 100 ms until it holds, failing the test after `limit`.
async fn wait_until<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < limit, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn knows(client: &Client, peer: PeerId) -> bool {
    client.live_peers().await.unwrap().contains(&peer)
}

fn search(query: &str) -> SearchRequest {
    SearchRequest {
        query: query.into(),
        top_k: 10,
        stats: None,
        evidence: false,
        share: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_discover_each_other_and_answer_every_protocol() {
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let first = start_peer(
        dirs[0].path(),
        vec![
            tcp_loopback(),
            "/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap(),
        ],
        vec![],
        Mode::Echo,
    );
    let first_addrs = first.client.listen_addrs().await.unwrap();
    assert_eq!(first_addrs.len(), 2, "one TCP and one QUIC address");
    for a in &first_addrs {
        let s = a.to_string();
        assert!(s.ends_with(&format!("/p2p/{}", first.id())), "{s}");
        assert!(
            !s.contains("/tcp/0/") && !s.contains("/udp/0/"),
            "port resolved: {s}"
        );
    }
    let boot = first.addr().await;
    let mut peers = vec![first];
    for dir in &dirs[1..] {
        peers.push(start_peer(
            dir.path(),
            vec![tcp_loopback()],
            vec![boot.clone()],
            Mode::Echo,
        ));
    }
    let ids: Vec<PeerId> = peers.iter().map(TestPeer::id).collect();
    for p in &peers {
        wait_until("every peer knows all others", SETTLE, || async {
            let live = p.client.live_peers().await.unwrap();
            ids.iter()
                .filter(|id| **id != p.id())
                .all(|id| live.contains(id))
        })
        .await;
        assert!(
            !p.client.live_peers().await.unwrap().contains(&p.id()),
            "self excluded"
        );
        assert!(p.client.routing_table_size().await.unwrap() >= 1);
    }

    // Peers 1..3 only knew peer 0; they found each other through Kademlia.
    let (asker, target) = (&peers[3], &peers[1]);
    let got = asker
        .client
        .search(target.id(), search("hello"), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(got.total_matches, 1);
    assert_eq!(got.hits[0].url, format!("http://{}/", target.id()));
    assert_eq!(got.hits[0].title, "hello");

    let err = asker
        .client
        .search(target.id(), search("fail"), Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Remote(ref m) if m == "shard failed"),
        "{err}"
    );

    // A responder dropped unanswered: the asker learns at once, nobody is blamed.
    let err = asker
        .client
        .search(target.id(), search("drop"), Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Disconnected(_)), "{err}");
    assert!(knows(&asker.client, target.id()).await);

    let stats = asker
        .client
        .term_stats(
            target.id(),
            StatsRequest { query: "q".into() },
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(stats.num_docs, 42);
    assert_eq!(stats.doc_freq.get("q"), Some(&7));

    let urls = (0..3)
        .map(|i| Link {
            url: format!("http://site.example/{i}"),
            depth: 1,
            anchor: None,
            source: None,
            scope: None,
        })
        .collect();
    let ack = asker
        .client
        .handoff(target.id(), HandoffRequest { urls, hops: 0 })
        .await
        .unwrap();
    assert_eq!(ack.accepted, 3);

    let docs = vec![Document {
        url: "http://site.example/".into(),
        site: "site.example".into(),
        ..Document::default()
    }];
    let stored = asker
        .client
        .replicate(
            target.id(),
            ReplicateRequest {
                site: "site.example".into(),
                docs,
                site_state: Some(peersearch_crawler::SiteState::empty("site.example")),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(stored.stored, 1);

    let digest = asker
        .client
        .digest(
            target.id(),
            DigestRequest {
                site: "site.example".into(),
                list_urls: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(digest.hash, "site.example");
    assert_eq!(digest.urls, Some(vec![]));

    let claimed = asker
        .client
        .claim(
            target.id(),
            ClaimRequest {
                site: "site.example".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(claimed.state.site, "site.example");

    let traffic = asker.client.traffic();
    for proto in [
        "/peersearch/search/1.0.0",
        "/peersearch/stats/1.0.0",
        "/peersearch/handoff/1.0.0",
        "/peersearch/replicate/1.0.0",
        "/peersearch/digest/1.0.0",
        "/peersearch/claim/1.0.0",
    ] {
        let (sent, received) = traffic[proto];
        assert!(sent > 0 && received > 0, "{proto}: {sent}/{received}");
    }

    let summaries = asker.client.peers().await.unwrap();
    let summary = summaries
        .iter()
        .find(|s| s.peer_id == target.id())
        .expect("target listed");
    assert!(summary.connected);
    assert!(!summary.addrs.is_empty());

    for p in peers {
        p.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_responder_makes_search_time_out_within_the_deadline() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let staller = start_peer(da.path(), vec![tcp_loopback()], vec![], Mode::Stall);
    let asker = start_peer(
        db.path(),
        vec![tcp_loopback()],
        vec![staller.addr().await],
        Mode::Echo,
    );
    wait_until("asker knows staller", SETTLE, || {
        knows(&asker.client, staller.id())
    })
    .await;

    let deadline = Duration::from_millis(300);
    let start = Instant::now();
    let err = asker
        .client
        .search(staller.id(), search("anything"), deadline)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout), "{err}");
    // The behaviour's own timeout is 10 s; the caller's deadline governs.
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    // One timeout does not make the peer dead.
    assert!(knows(&asker.client, staller.id()).await);

    asker.stop().await;
    staller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_id_survives_restart_and_peer_rejoins_without_bootstrap() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = start_peer(da.path(), vec![tcp_loopback()], vec![], Mode::Echo);
    let b = start_peer(
        db.path(),
        vec![tcp_loopback()],
        vec![a.addr().await],
        Mode::Echo,
    );
    let (a_id, b_id) = (a.id(), b.id());
    wait_until("b knows a", SETTLE, || knows(&b.client, a_id)).await;
    wait_until("a knows b", SETTLE, || knows(&a.client, b_id)).await;
    b.stop().await;

    let known = std::fs::read_to_string(db.path().join(net::KNOWN_PEERS_FILE)).unwrap();
    assert!(known.contains(&a_id.to_string()), "{known}");

    // A notices that b is gone.
    wait_until("a drops dead b", SETTLE, || async {
        !knows(&a.client, b_id).await
    })
    .await;

    // Same data dir, no bootstrap: same identity, rejoins through known_peers.json.
    let b = start_peer(db.path(), vec![tcp_loopback()], vec![], Mode::Echo);
    assert_eq!(b.id(), b_id);
    wait_until("restarted b knows a", SETTLE, || knows(&b.client, a_id)).await;
    wait_until("a knows b again", SETTLE, || knows(&a.client, b_id)).await;
    let got = b
        .client
        .search(a_id, search("again"), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(got.hits[0].title, "again");

    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_loop_runs_until_the_last_client_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let p = start_peer(dir.path(), vec![tcp_loopback()], vec![], Mode::Echo);
    let client = p.client.clone();
    let TestPeer {
        client: original,
        event_loop,
        server,
    } = p;
    drop(original);
    // A clone is still alive: the loop keeps running.
    assert!(client.live_peers().await.unwrap().is_empty());
    drop(client);
    tokio::time::timeout(Duration::from_secs(10), event_loop)
        .await
        .unwrap()
        .unwrap();
    server.abort();
}

// ---- a rogue peer that speaks the search protocol badly ----

/// How the rogue answers, chosen by the query of each request.
const GARBAGE: &str = "garbage";
const OVERSIZED: &str = "oversized";
const FLOOD: &str = "flood";

/// Reads honest search requests and answers with whatever the query asks for.
#[derive(Clone, Default)]
struct RogueCodec;

impl request_response::Codec for RogueCodec {
    type Protocol = StreamProtocol;
    type Request = SearchRequest;
    type Response = String;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<SearchRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut header = [0u8; 4];
        io.read_exact(&mut header).await?;
        let mut payload = vec![0u8; u32::from_be_bytes(header) as usize];
        io.read_exact(&mut payload).await?;
        wire::decode_payload(&payload).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, _: &mut T) -> io::Result<String>
    where
        T: AsyncRead + Unpin + Send,
    {
        Err(io::Error::other("the rogue never asks"))
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
        _: SearchRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        Err(io::Error::other("the rogue never asks"))
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        mode: String,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let bytes = match mode.as_str() {
            GARBAGE => {
                let junk: Vec<u8> = (0..200u32)
                    .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                    .collect();
                let mut frame = (junk.len() as u32).to_be_bytes().to_vec();
                frame.extend(junk);
                frame
            }
            OVERSIZED => {
                // Claims 64 MiB and starts sending it.
                let mut frame = (64u32 << 20).to_be_bytes().to_vec();
                frame.extend(vec![0u8; 64 * 1024]);
                frame
            }
            FLOOD => {
                let hits = (0..10_000)
                    .map(|i| Hit {
                        url: format!("http://spam.example/{i}"),
                        title: "spam".into(),
                        snippet: String::new(),
                        score: 1e9,
                        evidence: None,
                    })
                    .collect();
                let resp: Result<SearchResponse, String> = Ok(SearchResponse {
                    hits,
                    total_matches: 10_000,
                    share: None,
                });
                wire::encode_frame(resp, u64::from(u32::MAX)).await?
            }
            _ => return Err(io::Error::other("unknown mode")),
        };
        io.write_all(&bytes).await?;
        io.close().await
    }
}

/// Start the rogue on loopback; returns its id and address.
async fn start_rogue() -> (PeerId, Multiaddr, JoinHandle<()>) {
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|_| {
            request_response::Behaviour::with_codec(
                RogueCodec,
                [(SEARCH_PROTOCOL, ProtocolSupport::Full)],
                request_response::Config::default(),
            )
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    swarm.listen_on(tcp_loopback()).unwrap();
    let addr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
            break address;
        }
    };
    let id = *swarm.local_peer_id();
    let task = tokio::spawn(async move {
        loop {
            if let SwarmEvent::Behaviour(request_response::Event::Message {
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            }) = swarm.select_next_some().await
            {
                let _ = swarm.behaviour_mut().send_response(channel, request.query);
            }
        }
    });
    (id, addr, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rogue_answers_fail_the_request_and_get_the_peer_banned() {
    let dir = tempfile::tempdir().unwrap();
    let honest = start_peer(dir.path(), vec![tcp_loopback()], vec![], Mode::Echo);
    let (rogue, rogue_addr, rogue_task) = start_rogue().await;
    assert_eq!(honest.client.dial(rogue_addr).await.unwrap(), rogue);
    let deadline = Duration::from_secs(20);

    let err = honest
        .client
        .search(rogue, search(GARBAGE), deadline)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Protocol(_)), "garbage: {err}");

    let err = honest
        .client
        .search(rogue, search(OVERSIZED), deadline)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::TooLarge { size, max } if size == 64 << 20 && max == wire::SEARCH_LIMITS.response),
        "oversized: {err}"
    );

    // Well-formed but 10 000 hits for top_k 10: the third strike.
    let err = honest
        .client
        .search(rogue, search(FLOOD), deadline)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Protocol(ref m) if m.contains("10000 hits")),
        "flood: {err}"
    );

    // Connected, but it never identified as a peersearch peer: it owns nothing.
    assert!(!honest.client.live_peers().await.unwrap().contains(&rogue));
    let err = honest
        .client
        .search(rogue, search("again"), deadline)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Unreachable(ref m) if m.contains("banned")),
        "{err}"
    );
    wait_until("rogue is disconnected", SETTLE, || async {
        let summaries = honest.client.peers().await.unwrap();
        summaries.iter().all(|s| s.peer_id != rogue || !s.connected)
    })
    .await;

    rogue_task.abort();
    honest.stop().await;
}
