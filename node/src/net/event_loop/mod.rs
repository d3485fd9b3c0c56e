//! The event loop: owns the swarm, answers client commands, delivers events, and keeps the
//! peer's place in the network (bootstrap, re-dial, health, remembered peers).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::core::transport::ListenerId;
use libp2p::kad;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::OutboundRequestId;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionError, ConnectionId, DialError, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, SwarmBuilder, identify, noise, ping, tcp, yamux};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

mod requests;
mod upkeep;
mod view;

use requests::{handle_rr, no_check};

use super::NetConfig;
use super::behaviour::{Behaviour, BehaviourEvent, IDENTIFY_PROTOCOL_VERSION, is_dialable};
use super::client::{Client, Command, Event, OutboundRequest, ResponseAction};
use super::error::{Error, Result};
use super::peers::{KnownPeers, MAX_ADDRS_PER_PEER, PeerBook};
use super::wire::{SearchResponse, Traffic};

/// Connections with no stream open for this long are closed.
pub const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);
/// Capacity of the client command channel.
const COMMAND_CAPACITY: usize = 256;
/// Capacity of the event channel. Inbound requests that do not fit are dropped (the
/// requester sees a closed stream) rather than stalling the network.
const EVENT_CAPACITY: usize = 1024;
/// Housekeeping period (bans, bootstrap, re-dial, known-peers writes).
const TICK: Duration = Duration::from_secs(2);
/// Kademlia bootstrap period while the peer is young: it learns the network quickly.
const EARLY_BOOTSTRAP_INTERVAL: Duration = Duration::from_secs(30);
/// How long the peer counts as young.
const EARLY_PHASE: Duration = Duration::from_secs(5 * 60);
/// Kademlia bootstrap period afterwards (Kademlia's own default).
const LATE_BOOTSTRAP_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// First delay before re-dialing bootstrap and remembered peers when isolated; doubles up
/// to [`MAX_REDIAL_BACKOFF`].
const MIN_REDIAL_BACKOFF: Duration = Duration::from_secs(10);
/// Longest delay between re-dials when isolated.
const MAX_REDIAL_BACKOFF: Duration = Duration::from_secs(5 * 60);
/// Known peers are written at most this often (and on shutdown).
const KNOWN_PEERS_WRITE_INTERVAL: Duration = Duration::from_secs(10);
/// `listen_addrs` waits at most this long for listeners to report their addresses.
const LISTEN_WAIT: Duration = Duration::from_secs(5);
/// Shutdown waits at most this long for listeners to close.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// An outbound request waiting for its answer.
struct Pending<T> {
    peer: PeerId,
    reply: oneshot::Sender<Result<T>>,
    /// Most hits allowed (search only; `u32::MAX` otherwise).
    top_k: u32,
}

type PendingMap<T> = HashMap<OutboundRequestId, Pending<T>>;

/// Everything but the swarm, so handlers can borrow both.
struct State {
    local: PeerId,
    data_dir: PathBuf,
    bootstrap: Vec<Multiaddr>,
    events: mpsc::Sender<Event>,
    actions_tx: mpsc::UnboundedSender<ResponseAction>,
    book: PeerBook,
    known: KnownPeers,
    started: Instant,
    next_bootstrap: Instant,
    next_redial: Instant,
    redial_backoff: Duration,
    last_known_write: Option<Instant>,
    known_write: Option<JoinHandle<()>>,
    listeners: Vec<ListenerId>,
    unreported_listeners: HashSet<ListenerId>,
    listen_waiters: Vec<oneshot::Sender<Vec<Multiaddr>>>,
    pending_dials: HashMap<ConnectionId, oneshot::Sender<Result<PeerId>>>,
    search: PendingMap<SearchResponse>,
    stats: PendingMap<peersearch_indexer::TermStats>,
    handoff: PendingMap<super::wire::HandoffResponse>,
    replicate: PendingMap<super::wire::ReplicateResponse>,
    digest: PendingMap<super::wire::DigestResponse>,
    claim: PendingMap<super::wire::ClaimResponse>,
    doc: PendingMap<super::wire::DocResponse>,
    /// Peers to ban once the current event is handled (needs the swarm).
    to_ban: Vec<PeerId>,
    /// Inbound requests in flight, per peer and protocol (bounded).
    in_flight: super::inflight::InFlight,
}

/// Owns the swarm; drive it with [`EventLoop::run`].
pub struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    actions: mpsc::UnboundedReceiver<ResponseAction>,
    state: State,
}

/// Build the swarm, start listening and dialing, and return the client handle, the event
/// stream and the loop (spawn [`EventLoop::run`]). Must be called inside a Tokio runtime.
///
/// Besides `config.bootstrap`, the peers remembered in `<data_dir>/known_peers.json` are
/// dialed, so a restarted peer rejoins without `--bootstrap`.
pub fn new(config: NetConfig) -> Result<(Client, mpsc::Receiver<Event>, EventLoop)> {
    let traffic = Arc::new(Traffic::default());
    let behaviour_traffic = traffic.clone();
    let Ok(builder) = SwarmBuilder::with_existing_identity(config.keypair.clone())
        .with_tokio()
        .with_tcp(
            tcp::Config::new().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| Error::Transport(e.to_string()))?
        .with_quic()
        .with_behaviour(|key| Behaviour::new(key, &behaviour_traffic));
    let mut swarm = builder
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
        .build();
    let local = *swarm.local_peer_id();

    let mut listeners = Vec::new();
    for addr in &config.listen {
        let id = swarm
            .listen_on(addr.clone())
            .map_err(|e| Error::Transport(format!("listen on {addr}: {e}")))?;
        listeners.push(id);
    }

    let (commands_tx, commands) = mpsc::channel(COMMAND_CAPACITY);
    let (events_tx, events) = mpsc::channel(EVENT_CAPACITY);
    let (actions_tx, actions) = mpsc::unbounded_channel();
    let now = Instant::now();
    let known = KnownPeers::load(&config.data_dir);
    let mut event_loop = EventLoop {
        swarm,
        commands,
        actions,
        state: State {
            local,
            data_dir: config.data_dir,
            bootstrap: config.bootstrap,
            events: events_tx,
            actions_tx,
            book: PeerBook::default(),
            known,
            started: now,
            next_bootstrap: now + EARLY_BOOTSTRAP_INTERVAL,
            next_redial: now + MIN_REDIAL_BACKOFF,
            redial_backoff: MIN_REDIAL_BACKOFF,
            last_known_write: None,
            known_write: None,
            unreported_listeners: listeners.iter().copied().collect(),
            listeners,
            listen_waiters: Vec::new(),
            pending_dials: HashMap::new(),
            search: HashMap::new(),
            stats: HashMap::new(),
            handoff: HashMap::new(),
            replicate: HashMap::new(),
            digest: HashMap::new(),
            claim: HashMap::new(),
            doc: HashMap::new(),
            to_ban: Vec::new(),
            in_flight: Default::default(),
        },
    };
    event_loop.dial_seeds();
    let client = Client::new(commands_tx, local, traffic);
    Ok((client, events, event_loop))
}

/// The peer id at the end of `addr`, if any.
fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    match addr.iter().last() {
        Some(Protocol::P2p(peer)) => Some(peer),
        _ => None,
    }
}

impl EventLoop {
    /// Run until every [`Client`] is dropped, then close the listeners and save the
    /// remembered peers.
    pub async fn run(mut self) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = self.commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => break,
                },
                Some(action) = self.actions.recv() => action(self.swarm.behaviour_mut()),
                _ = tick.tick() => self.housekeeping(),
            }
            self.apply_bans();
        }
        self.shutdown().await;
    }

    fn emit(&self, event: Event) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.state.events.try_send(event) {
            tracing::warn!("event channel full, dropping event");
        }
    }

    fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.swarm
            .listeners()
            .map(|a| a.clone().with(Protocol::P2p(self.state.local)))
            .collect()
    }

    fn answer_listen_waiters(&mut self) {
        let addrs = self.listen_addrs();
        for waiter in self.state.listen_waiters.drain(..) {
            let _ = waiter.send(addrs.clone());
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::ListenAddrs(tx) => {
                if self.state.unreported_listeners.is_empty() {
                    let _ = tx.send(self.listen_addrs());
                } else {
                    self.state.listen_waiters.push(tx);
                }
            }
            Command::Peers(tx) => {
                let _ = tx.send(self.peer_summaries());
            }
            Command::RoutingTableSize(tx) => {
                let n = self.routing_table().len();
                let _ = tx.send(n);
            }
            Command::LivePeers(tx) => {
                let _ = tx.send(self.live_peers());
            }
            Command::Dial(addr, tx) => {
                let opts = match peer_of(&addr) {
                    Some(peer) => DialOpts::peer_id(peer)
                        .addresses(vec![addr.clone()])
                        .build(),
                    None => DialOpts::unknown_peer_id().address(addr.clone()).build(),
                };
                let id = opts.connection_id();
                match self.swarm.dial(opts) {
                    Ok(()) => {
                        self.state.pending_dials.insert(id, tx);
                    }
                    Err(e) => {
                        let _ = tx.send(Err(Error::Unreachable(e.to_string())));
                    }
                }
            }
            Command::AddAddress(peer, addr) => {
                if is_dialable(&addr) || addr.iter().any(|p| matches!(p, Protocol::Memory(_))) {
                    self.swarm.add_peer_address(peer, addr);
                }
            }
            Command::Request(peer, request) => self.send_request(peer, *request),
            Command::Misbehaved(peer) => requests::misbehaved(&mut self.state, peer),
        }
    }

    fn send_request(&mut self, peer: PeerId, request: OutboundRequest) {
        let refusal = if peer == self.state.local {
            Some(Error::Unreachable("cannot send a request to self".into()))
        } else if self.state.book.is_banned(&peer, Instant::now()) {
            Some(Error::Unreachable("peer is banned".into()))
        } else {
            None
        };
        let b = self.swarm.behaviour_mut();
        let s = &mut self.state;
        macro_rules! go {
            ($field:ident, $req:expr, $tx:expr, $top_k:expr) => {{
                if let Some(err) = refusal {
                    let _ = $tx.send(Err(err));
                    return;
                }
                let id = b.$field.send_request(&peer, $req);
                s.$field.insert(
                    id,
                    Pending {
                        peer,
                        reply: $tx,
                        top_k: $top_k,
                    },
                );
            }};
        }
        match request {
            OutboundRequest::Search(req, tx) => {
                let top_k = req.top_k;
                go!(search, req, tx, top_k)
            }
            OutboundRequest::Stats(req, tx) => go!(stats, req, tx, u32::MAX),
            OutboundRequest::Handoff(req, tx) => go!(handoff, req, tx, u32::MAX),
            OutboundRequest::Replicate(req, tx) => go!(replicate, req, tx, u32::MAX),
            OutboundRequest::Digest(req, tx) => go!(digest, req, tx, u32::MAX),
            OutboundRequest::Claim(req, tx) => go!(claim, req, tx, u32::MAX),
            OutboundRequest::Doc(req, tx) => go!(doc, req, tx, u32::MAX),
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event),
            SwarmEvent::NewListenAddr {
                listener_id,
                address,
            } => {
                tracing::info!(%address, "listening");
                self.state.unreported_listeners.remove(&listener_id);
                if self.state.unreported_listeners.is_empty() {
                    self.answer_listen_waiters();
                }
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                ..
            } => {
                if let Err(e) = reason {
                    tracing::warn!(error = %e, "listener closed");
                }
                self.state.listeners.retain(|l| *l != listener_id);
                self.state.unreported_listeners.remove(&listener_id);
                if self.state.unreported_listeners.is_empty() {
                    self.answer_listen_waiters();
                }
            }
            SwarmEvent::ListenerError { error, .. } => {
                tracing::warn!(%error, "listener error");
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                num_established,
                ..
            } => {
                self.state.book.on_connected(peer_id);
                self.state.redial_backoff = MIN_REDIAL_BACKOFF;
                if let Some(tx) = self.state.pending_dials.remove(&connection_id) {
                    let _ = tx.send(Ok(peer_id));
                }
                if num_established.get() == 1 {
                    tracing::debug!(peer = %peer_id, "peer connected");
                    self.emit(Event::PeerConnected(peer_id));
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                cause,
                ..
            } => {
                if num_established > 0 {
                    return;
                }
                tracing::debug!(peer = %peer_id, cause = ?cause, "peer disconnected");
                self.emit(Event::PeerDisconnected(peer_id));
                // An idle connection we closed says nothing about the peer. A connection that
                // broke may be a dead peer or a peer that closed its idle side: find out by
                // dialing it again (a failed dial marks it dead).
                if matches!(cause, Some(ConnectionError::IO(_)))
                    && !self.state.book.is_banned(&peer_id, Instant::now())
                {
                    let opts = DialOpts::peer_id(peer_id)
                        .condition(PeerCondition::DisconnectedAndNotDialing)
                        .build();
                    if self.swarm.dial(opts).is_err() {
                        self.mark_dead(peer_id);
                    }
                }
            }
            SwarmEvent::OutgoingConnectionError {
                peer_id,
                connection_id,
                error,
            } => {
                if let Some(tx) = self.state.pending_dials.remove(&connection_id) {
                    let _ = tx.send(Err(Error::Unreachable(error.to_string())));
                }
                let Some(peer) = peer_id else { return };
                let unreachable = !matches!(
                    error,
                    DialError::Aborted
                        | DialError::DialPeerConditionFalse(_)
                        | DialError::Denied { .. }
                );
                if unreachable && !self.swarm.is_connected(&peer) {
                    tracing::debug!(%peer, %error, "peer unreachable");
                    self.mark_dead(peer);
                }
            }
            _ => {}
        }
    }

    fn mark_dead(&mut self, peer: PeerId) {
        if !self.state.book.is_dead(&peer) {
            self.state.book.mark_dead(peer);
            self.emit(Event::PeerDead(peer));
        }
    }

    fn on_behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                if info.protocol_version != IDENTIFY_PROTOCOL_VERSION {
                    tracing::debug!(peer = %peer_id, version = %info.protocol_version, "peer of another network");
                    return;
                }
                self.state.book.mark_peersearch(peer_id);
                let addrs: Vec<Multiaddr> = info
                    .listen_addrs
                    .into_iter()
                    .filter(is_dialable)
                    .take(MAX_ADDRS_PER_PEER)
                    .collect();
                for addr in &addrs {
                    self.swarm
                        .behaviour_mut()
                        .kademlia
                        .add_address(&peer_id, addr.clone());
                }
                self.state.known.record(peer_id, &addrs);
            }
            BehaviourEvent::Identify(_) => {}
            BehaviourEvent::Kademlia(kad::Event::RoutingUpdated {
                peer, is_new_peer, ..
            }) => {
                if is_new_peer && !self.state.book.is_dead(&peer) {
                    self.emit(Event::PeerDiscovered(peer));
                }
            }
            BehaviourEvent::Kademlia(kad::Event::OutboundQueryProgressed {
                result: kad::QueryResult::Bootstrap(result),
                ..
            }) => {
                tracing::debug!(ok = result.is_ok(), "kademlia bootstrap step");
            }
            BehaviourEvent::Kademlia(_) => {}
            BehaviourEvent::Ping(ping::Event { peer, result, .. }) => match result {
                Ok(rtt) => self.state.book.set_rtt(peer, rtt),
                // A peer without ping is odd but not dead; a ping that times out or breaks is
                // a failed request.
                Err(ping::Failure::Unsupported) => {}
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "ping failed");
                    if self.state.book.on_failure(peer) {
                        self.emit(Event::PeerDead(peer));
                    }
                }
            },
            BehaviourEvent::Search(e) => handle_rr(
                &mut self.state,
                e,
                |s| &mut s.search,
                "search",
                super::wire::validate_search_answer,
                |peer, request, reply| Event::InboundSearch {
                    peer,
                    request,
                    reply,
                },
                |b, ch, r| {
                    let _ = b.search.send_response(ch, r);
                },
            ),
            BehaviourEvent::Stats(e) => handle_rr(
                &mut self.state,
                e,
                |s| &mut s.stats,
                "stats",
                no_check,
                |peer, request, reply| Event::InboundStats {
                    peer,
                    request,
                    reply,
                },
                |b, ch, r| {
                    let _ = b.stats.send_response(ch, r);
                },
            ),
            BehaviourEvent::Handoff(e) => handle_rr(
                &mut self.state,
                e,
                |s| &mut s.handoff,
                "handoff",
                no_check,
                |peer, request, reply| Event::InboundHandoff {
                    peer,
                    request,
                    reply,
                },
                |b, ch, r| {
                    let _ = b.handoff.send_response(ch, r);
                },
            ),
            BehaviourEvent::Replicate(e) => handle_rr(
                &mut self.state,
                e,
                |s| &mut s.replicate,
                "replicate",
                no_check,
                |peer, request, reply| Event::InboundReplicate {
                    peer,
                    request,
                    reply,
                },
                |b, ch, r| {
                    let _ = b.replicate.send_response(ch, r);
                },
            ),
            BehaviourEvent::Digest(e) => handle_rr(
                &mut self.state,
                e,
                |s| &mut s.digest,
                "digest",
                no_check,
                |peer, request, reply| Event::InboundDigest {
                    peer,
                    request,
                    reply,
                },
                |b, ch, r| {
                    let _ = b.digest.send_response(ch, r);
                },
            ),
            BehaviourEvent::Claim(e) => handle_rr(
                &mut self.state,
                e,
                |s| &mut s.claim,
                "claim",
                no_check,
                |peer, request, reply| Event::InboundClaim {
                    peer,
                    request,
                    reply,
                },
                |b, ch, r| {
                    let _ = b.claim.send_response(ch, r);
                },
            ),
            BehaviourEvent::Doc(e) => handle_rr(
                &mut self.state,
                e,
                |s| &mut s.doc,
                "doc",
                super::wire::validate_doc_answer,
                |peer, request, reply| Event::InboundDoc {
                    peer,
                    request,
                    reply,
                },
                |b, ch, r| {
                    let _ = b.doc.send_response(ch, r);
                },
            ),
            BehaviourEvent::Blocked(never) => match never {},
            BehaviourEvent::Limits(never) => match never {},
        }
    }

    /// Ban the peers that crossed the misbehaviour threshold.
    fn apply_bans(&mut self) {
        for peer in std::mem::take(&mut self.state.to_ban) {
            tracing::warn!(%peer, "banning misbehaving peer");
            let b = self.swarm.behaviour_mut();
            b.blocked.block_peer(peer);
            b.kademlia.remove_peer(&peer);
            self.state.known.forget(&peer);
            self.emit(Event::PeerDead(peer));
        }
    }
}
