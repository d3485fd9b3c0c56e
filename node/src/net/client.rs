//! The handle the rest of the node uses: [`Client`] to ask, [`Event`] to be told.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use libp2p::request_response::ResponseChannel;
use libp2p::{Multiaddr, PeerId};
use peersearch_indexer::TermStats;
use tokio::sync::{mpsc, oneshot};

use super::behaviour::{Behaviour, REQUEST_TIMEOUT};
use super::error::{Error, Result};
use super::wire::{
    ClaimRequest, ClaimResponse, DigestRequest, DigestResponse, DocRequest, DocResponse,
    HandoffRequest, HandoffResponse, ReplicateRequest, ReplicateResponse, Reply, SearchRequest,
    SearchResponse, StatsRequest, Traffic,
};

/// Grace added to the behaviour's own request timeout for the client-side deadline of
/// hand-off, replication and digest requests: the behaviour answers `Timeout` first.
const CLIENT_DEADLINE_GRACE: Duration = Duration::from_secs(5);
/// Deadline of local queries to the event loop (listen addresses, peers, dials).
const LOCAL_DEADLINE: Duration = Duration::from_secs(30);

/// What a peer looks like from here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSummary {
    /// The peer.
    pub peer_id: PeerId,
    /// Its known listen addresses.
    pub addrs: Vec<Multiaddr>,
    /// Last ping round trip, if any.
    pub rtt: Option<Duration>,
    /// Whether a connection is open right now.
    pub connected: bool,
}

/// Something the network tells the node.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// A peer asks for a leaf search.
    InboundSearch {
        /// Who asks.
        peer: PeerId,
        /// The request.
        request: SearchRequest,
        /// Where to answer.
        reply: Responder<SearchResponse>,
    },
    /// A peer asks for term statistics.
    InboundStats {
        /// Who asks.
        peer: PeerId,
        /// The request.
        request: StatsRequest,
        /// Where to answer.
        reply: Responder<TermStats>,
    },
    /// A peer hands off URLs; answer only after persisting them.
    InboundHandoff {
        /// Who sends.
        peer: PeerId,
        /// The request.
        request: HandoffRequest,
        /// Where to answer.
        reply: Responder<HandoffResponse>,
    },
    /// A peer replicates documents; answer only after storing them.
    InboundReplicate {
        /// Who sends.
        peer: PeerId,
        /// The request.
        request: ReplicateRequest,
        /// Where to answer.
        reply: Responder<ReplicateResponse>,
    },
    /// A peer asks for the digest of a site.
    InboundDigest {
        /// Who asks.
        peer: PeerId,
        /// The request.
        request: DigestRequest,
        /// Where to answer.
        reply: Responder<DigestResponse>,
    },
    /// A peer claims a site: yield its crawl (or refuse, when closer to it).
    InboundClaim {
        /// Who claims.
        peer: PeerId,
        /// The request.
        request: ClaimRequest,
        /// Where to answer.
        reply: Responder<ClaimResponse>,
    },
    /// A peer asks for this peer's copy of the document of a URL.
    InboundDoc {
        /// Who asks.
        peer: PeerId,
        /// The request.
        request: DocRequest,
        /// Where to answer.
        reply: Responder<DocResponse>,
    },
    /// The first connection to a peer opened (it is alive).
    PeerConnected(PeerId),
    /// The last connection to a peer closed. It may only have been idle: liveness changes
    /// are [`Event::PeerDead`] and [`Event::PeerConnected`].
    PeerDisconnected(PeerId),
    /// Kademlia learned a new peer (it joins [`Client::live_peers`]).
    PeerDiscovered(PeerId),
    /// A peer became dead or was banned (it leaves [`Client::live_peers`]).
    PeerDead(PeerId),
}

/// The boxed action a [`Responder`] sends to the event loop.
pub(crate) type ResponseAction = Box<dyn FnOnce(&mut Behaviour) + Send>;

/// Answers one inbound request. Send exactly once with [`Responder::send`] or
/// [`Responder::fail`]; dropping it unanswered is harmless (the requester sees a closed
/// stream).
///
/// It holds a sender of its own to the event loop, not a [`Client`]: a pending responder
/// never keeps the event loop alive after the last client is gone.
pub struct Responder<T> {
    channel: ResponseChannel<Reply<T>>,
    actions: mpsc::UnboundedSender<ResponseAction>,
    deliver: fn(&mut Behaviour, ResponseChannel<Reply<T>>, Reply<T>),
    /// The request's place among its peer's requests in flight, held until the answer is
    /// delivered.
    slot: Option<super::inflight::Slot>,
}

impl<T> fmt::Debug for Responder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Responder")
            .field("open", &self.channel.is_open())
            .finish()
    }
}

impl<T: Send + 'static> Responder<T> {
    pub(crate) fn new(
        channel: ResponseChannel<Reply<T>>,
        actions: mpsc::UnboundedSender<ResponseAction>,
        deliver: fn(&mut Behaviour, ResponseChannel<Reply<T>>, Reply<T>),
        slot: Option<super::inflight::Slot>,
    ) -> Self {
        Self {
            channel,
            actions,
            deliver,
            slot,
        }
    }

    /// Whether the requester still waits (its stream is open).
    pub fn is_open(&self) -> bool {
        self.channel.is_open()
    }

    /// Answer with `response`.
    pub fn send(self, response: T) -> Result<()> {
        self.reply(Ok(response))
    }

    /// Answer with an error message (the requester gets [`Error::Remote`]).
    pub fn fail(self, message: impl Into<String>) -> Result<()> {
        self.reply(Err(message.into()))
    }

    fn reply(self, reply: Reply<T>) -> Result<()> {
        let Responder {
            channel,
            actions,
            deliver,
            slot,
        } = self;
        actions
            .send(Box::new(move |b: &mut Behaviour| {
                deliver(b, channel, reply);
                drop(slot);
            }))
            .map_err(|_| Error::Shutdown)
    }
}

/// A request to one peer, as the event loop receives it.
pub(crate) enum OutboundRequest {
    Search(SearchRequest, oneshot::Sender<Result<SearchResponse>>),
    Stats(StatsRequest, oneshot::Sender<Result<TermStats>>),
    Handoff(HandoffRequest, oneshot::Sender<Result<HandoffResponse>>),
    Replicate(ReplicateRequest, oneshot::Sender<Result<ReplicateResponse>>),
    Digest(DigestRequest, oneshot::Sender<Result<DigestResponse>>),
    Claim(ClaimRequest, oneshot::Sender<Result<ClaimResponse>>),
    Doc(DocRequest, oneshot::Sender<Result<DocResponse>>),
}

/// What a [`Client`] asks the event loop.
pub(crate) enum Command {
    ListenAddrs(oneshot::Sender<Vec<Multiaddr>>),
    Peers(oneshot::Sender<Vec<PeerSummary>>),
    RoutingTableSize(oneshot::Sender<usize>),
    LivePeers(oneshot::Sender<Vec<PeerId>>),
    Dial(Multiaddr, oneshot::Sender<Result<PeerId>>),
    AddAddress(PeerId, Multiaddr),
    /// Boxed: a replication request is large, the other commands are small.
    Request(PeerId, Box<OutboundRequest>),
    /// A component found a peer's answer false (the network layer could not tell).
    Misbehaved(PeerId),
}

/// Cloneable handle to the network. Every method is bounded by a deadline; once the event
/// loop has stopped they return [`Error::Shutdown`]. Dropping the last client stops the loop.
#[derive(Clone)]
pub struct Client {
    commands: mpsc::Sender<Command>,
    local_peer_id: PeerId,
    traffic: Arc<Traffic>,
    outbound: super::inflight::Outbound,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("local_peer_id", &self.local_peer_id)
            .finish()
    }
}

impl Client {
    pub(crate) fn new(
        commands: mpsc::Sender<Command>,
        local_peer_id: PeerId,
        traffic: Arc<Traffic>,
    ) -> Self {
        Self {
            commands,
            local_peer_id,
            traffic,
            outbound: Default::default(),
        }
    }

    /// This peer's id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// Bytes `(sent, received)` per request-response protocol name, counted in the codec.
    pub fn traffic(&self) -> BTreeMap<String, (u64, u64)> {
        self.traffic.snapshot()
    }

    /// Send a command and wait for its answer, for at most `deadline`.
    async fn ask<T>(
        &self,
        deadline: Duration,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        let exchange = async {
            self.commands
                .send(make(tx))
                .await
                .map_err(|_| Error::Shutdown)?;
            rx.await.map_err(|_| Error::Shutdown)
        };
        tokio::time::timeout(deadline, exchange)
            .await
            .map_err(|_| Error::Timeout)?
    }

    /// Send `peer` a request of `protocol` once this peer has fewer than
    /// [`super::inflight::MAX_OUTBOUND_PER_PEER`] of them in flight to it, and wait for the
    /// answer; the whole exchange, waiting for the turn included, within `deadline`.
    async fn ask_peer<T>(
        &self,
        peer: PeerId,
        protocol: &'static str,
        deadline: Duration,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T> {
        let exchange = async {
            let _turn = self.outbound.turn(peer, protocol).await;
            let (tx, rx) = oneshot::channel();
            self.commands
                .send(make(tx))
                .await
                .map_err(|_| Error::Shutdown)?;
            rx.await.map_err(|_| Error::Shutdown)
        };
        tokio::time::timeout(deadline, exchange)
            .await
            .map_err(|_| Error::Timeout)?
    }

    /// The addresses actually bound (port 0 resolved), each ending in `/p2p/<local id>`.
    /// Waits (briefly) until every listener has reported its address.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>> {
        self.ask(LOCAL_DEADLINE, Command::ListenAddrs).await
    }

    /// Connected peers and routing-table peers, with their addresses and last ping RTT.
    pub async fn peers(&self) -> Result<Vec<PeerSummary>> {
        self.ask(LOCAL_DEADLINE, Command::Peers).await
    }

    /// Number of peers in the Kademlia routing table.
    pub async fn routing_table_size(&self) -> Result<usize> {
        self.ask(LOCAL_DEADLINE, Command::RoutingTableSize).await
    }

    /// Peers believed alive: connected peers that identified as peersearch peers, plus
    /// routing-table peers not known to be dead; never banned peers, never this peer.
    /// Sorted by peer id. This is the peer set ownership is computed over.
    pub async fn live_peers(&self) -> Result<Vec<PeerId>> {
        self.ask(LOCAL_DEADLINE, Command::LivePeers).await
    }

    /// Connect to `addr` and return the id of the peer that answered.
    pub async fn dial(&self, addr: Multiaddr) -> Result<PeerId> {
        self.ask(LOCAL_DEADLINE, |tx| Command::Dial(addr, tx))
            .await?
    }

    /// Tell the swarm where `peer` can be reached (used by later requests).
    pub async fn add_peer_address(&self, peer: PeerId, addr: Multiaddr) -> Result<()> {
        self.commands
            .send(Command::AddAddress(peer, addr))
            .await
            .map_err(|_| Error::Shutdown)
    }

    /// Count a misbehaviour against `peer`: an answer that decoded and passed the network
    /// layer's checks but that a component found false (a hit whose score its evidence does
    /// not give, statistics that cannot be true). Enough of them get the peer banned, as for
    /// undecodable answers.
    pub async fn report_misbehaviour(&self, peer: PeerId) -> Result<()> {
        self.commands
            .send(Command::Misbehaved(peer))
            .await
            .map_err(|_| Error::Shutdown)
    }

    /// Ask `peer` to search its shard. Returns within `timeout` whatever happens; a response
    /// that fails [`super::wire::validate_search_answer`] is [`Error::Protocol`].
    pub async fn search(
        &self,
        peer: PeerId,
        request: SearchRequest,
        timeout: Duration,
    ) -> Result<SearchResponse> {
        self.ask_peer(peer, "search", timeout, |tx| {
            Command::Request(peer, Box::new(OutboundRequest::Search(request, tx)))
        })
        .await?
    }

    /// [`Client::search`] without this peer's outbound bound: the query flood of the
    /// hostile-peer tests, which must reach the other peer's inbound bound.
    #[cfg(feature = "test-hooks")]
    pub(crate) async fn search_unbounded(
        &self,
        peer: PeerId,
        request: SearchRequest,
        timeout: Duration,
    ) -> Result<SearchResponse> {
        self.ask(timeout, |tx| {
            Command::Request(peer, Box::new(OutboundRequest::Search(request, tx)))
        })
        .await?
    }

    /// Ask `peer` for the statistics of a query's terms on its shard, within `timeout`.
    pub async fn term_stats(
        &self,
        peer: PeerId,
        request: StatsRequest,
        timeout: Duration,
    ) -> Result<TermStats> {
        self.ask_peer(peer, "stats", timeout, |tx| {
            Command::Request(peer, Box::new(OutboundRequest::Stats(request, tx)))
        })
        .await?
    }

    /// Hand URLs off to `peer`; `Ok` means it persisted them. Deadline: [`REQUEST_TIMEOUT`].
    pub async fn handoff(&self, peer: PeerId, request: HandoffRequest) -> Result<HandoffResponse> {
        self.ask_peer(
            peer,
            "handoff",
            REQUEST_TIMEOUT + CLIENT_DEADLINE_GRACE,
            |tx| Command::Request(peer, Box::new(OutboundRequest::Handoff(request, tx))),
        )
        .await?
    }

    /// Replicate documents to `peer`; `Ok` means it stored them. Deadline: [`REQUEST_TIMEOUT`].
    pub async fn replicate(
        &self,
        peer: PeerId,
        request: ReplicateRequest,
    ) -> Result<ReplicateResponse> {
        self.ask_peer(
            peer,
            "replicate",
            REQUEST_TIMEOUT + CLIENT_DEADLINE_GRACE,
            |tx| Command::Request(peer, Box::new(OutboundRequest::Replicate(request, tx))),
        )
        .await?
    }

    /// Ask `peer` what it holds of a site. Deadline: [`REQUEST_TIMEOUT`].
    pub async fn digest(&self, peer: PeerId, request: DigestRequest) -> Result<DigestResponse> {
        self.ask_peer(
            peer,
            "digest",
            REQUEST_TIMEOUT + CLIENT_DEADLINE_GRACE,
            |tx| Command::Request(peer, Box::new(OutboundRequest::Digest(request, tx))),
        )
        .await?
    }

    /// Ask `peer` for its copy of the document of `request.url`, within `timeout`. An answer
    /// that fails [`super::wire::validate_doc_answer`] or carries another URL's document is
    /// [`Error::Protocol`]: a copy is never taken on trust.
    pub async fn doc(
        &self,
        peer: PeerId,
        request: DocRequest,
        timeout: Duration,
    ) -> Result<DocResponse> {
        let url = request.url.clone();
        let resp = self
            .ask_peer(peer, "doc", timeout, |tx| {
                Command::Request(peer, Box::new(OutboundRequest::Doc(request, tx)))
            })
            .await??;
        match &resp.doc {
            Some(d) if d.url != url => Err(Error::Protocol(format!(
                "asked for {url}, answered with {}",
                d.url
            ))),
            _ => Ok(resp),
        }
    }

    /// Claim a site from `peer`: it yields the site's crawl and answers with its crawl
    /// state. Deadline: [`REQUEST_TIMEOUT`].
    pub async fn claim(&self, peer: PeerId, request: ClaimRequest) -> Result<ClaimResponse> {
        self.ask_peer(
            peer,
            "claim",
            REQUEST_TIMEOUT + CLIENT_DEADLINE_GRACE,
            |tx| Command::Request(peer, Box::new(OutboundRequest::Claim(request, tx))),
        )
        .await?
    }
}
