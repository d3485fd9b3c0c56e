//! The composed network behaviour: Kademlia, identify, ping, connection limits, a block list
//! for banned peers, and one request-response behaviour per peersearch protocol.

use std::time::Duration;

use libp2p::identity::Keypair;
use libp2p::kad::{self, store::MemoryStore};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;
use libp2p::{Multiaddr, StreamProtocol, allow_block_list, connection_limits, identify, ping};
use peersearch_indexer::TermStats;

use super::wire::{
    self, ByteCounter, ClaimRequest, ClaimResponse, Codec, DigestRequest, DigestResponse,
    DocRequest, DocResponse, HandoffRequest, HandoffResponse, Limits, ReplicateRequest,
    ReplicateResponse, Reply, SearchRequest, SearchResponse, StatsRequest, Traffic,
};

/// Kademlia protocol name: peersearch's own DHT, never the IPFS one.
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/peersearch/kad/1.0.0");
/// Identify's protocol-version string: peers of other networks are told apart by it.
pub const IDENTIFY_PROTOCOL_VERSION: &str = "/peersearch/id/1.0.0";
/// Ping interval: often enough to notice a dead connection within a minute (the idle timeout).
pub const PING_INTERVAL: Duration = Duration::from_secs(15);
/// Most established connections in total (one per peer is typical; 200 remembered peers fit).
pub const MAX_ESTABLISHED: u32 = 256;
/// Most established connections to one peer (simultaneous dials plus TCP and QUIC).
pub const MAX_ESTABLISHED_PER_PEER: u32 = 4;
/// Most inbound connections still in their handshake.
pub const MAX_PENDING_INCOMING: u32 = 64;
/// Request timeout of the search behaviour; the caller's own deadline is usually shorter.
pub const SEARCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Request timeout of the other protocols (hand-off and replication write to disk first).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Kademlia query timeout.
const KAD_QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Request-response behaviour of one peersearch protocol.
pub type RrBehaviour<Req, Resp> = request_response::Behaviour<Codec<Req, Reply<Resp>>>;

pub use composed::{Behaviour, BehaviourEvent};

/// The derive generates `BehaviourEvent` (one variant per field, named after it) without
/// docs; this module only exists to allow that.
#[allow(missing_docs)]
mod composed {
    use super::*;

    /// Everything the swarm runs.
    #[derive(NetworkBehaviour)]
    pub struct Behaviour {
        /// Refuses connections of banned peers (and closes theirs).
        pub blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
        /// Caps the number of connections.
        pub limits: connection_limits::Behaviour,
        /// Peer discovery and routing.
        pub kademlia: kad::Behaviour<MemoryStore>,
        /// Exchanges listen addresses and protocol versions.
        pub identify: identify::Behaviour,
        /// Measures round trips and notices dead connections.
        pub ping: ping::Behaviour,
        /// Leaf searches.
        pub search: RrBehaviour<SearchRequest, SearchResponse>,
        /// Term statistics.
        pub stats: RrBehaviour<StatsRequest, TermStats>,
        /// URL hand-offs.
        pub handoff: RrBehaviour<HandoffRequest, HandoffResponse>,
        /// Document replication.
        pub replicate: RrBehaviour<ReplicateRequest, ReplicateResponse>,
        /// Replica digests.
        pub digest: RrBehaviour<DigestRequest, DigestResponse>,
        /// Site claims.
        pub claim: RrBehaviour<ClaimRequest, ClaimResponse>,
        /// Document look-ups (the cached text of a URL).
        pub doc: RrBehaviour<DocRequest, DocResponse>,
    }
}

fn rr<Req, Resp>(
    protocol: StreamProtocol,
    limits: Limits,
    timeout: Duration,
    counter: std::sync::Arc<ByteCounter>,
) -> RrBehaviour<Req, Resp>
where
    Req: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
    Resp: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    request_response::Behaviour::with_codec(
        Codec::new(limits, counter),
        [(protocol, ProtocolSupport::Full)],
        request_response::Config::default().with_request_timeout(timeout),
    )
}

impl Behaviour {
    /// Build the behaviour for `key`, counting request-response bytes into `traffic`.
    pub fn new(key: &Keypair, traffic: &Traffic) -> Behaviour {
        let peer_id = key.public().to_peer_id();
        let mut kad_config = kad::Config::new(KAD_PROTOCOL);
        kad_config.set_query_timeout(KAD_QUERY_TIMEOUT);
        let mut kademlia =
            kad::Behaviour::with_config(peer_id, MemoryStore::new(peer_id), kad_config);
        // On loopback and behind NAT no external address is ever confirmed, and kad would stay
        // a client that refuses to answer; every peersearch peer serves the DHT.
        kademlia.set_mode(Some(kad::Mode::Server));

        let identify = identify::Behaviour::new(
            identify::Config::new(IDENTIFY_PROTOCOL_VERSION.to_owned(), key.public())
                .with_agent_version(format!("peersearch/{}", env!("CARGO_PKG_VERSION"))),
        );
        let counter = |p: &StreamProtocol| traffic.counter(p.as_ref());
        Behaviour {
            blocked: allow_block_list::Behaviour::default(),
            limits: connection_limits::Behaviour::new(
                connection_limits::ConnectionLimits::default()
                    .with_max_established(Some(MAX_ESTABLISHED))
                    .with_max_established_per_peer(Some(MAX_ESTABLISHED_PER_PEER))
                    .with_max_pending_incoming(Some(MAX_PENDING_INCOMING)),
            ),
            kademlia,
            identify,
            ping: ping::Behaviour::new(ping::Config::new().with_interval(PING_INTERVAL)),
            search: rr(
                wire::SEARCH_PROTOCOL,
                wire::SEARCH_LIMITS,
                SEARCH_TIMEOUT,
                counter(&wire::SEARCH_PROTOCOL),
            ),
            stats: rr(
                wire::STATS_PROTOCOL,
                wire::STATS_LIMITS,
                REQUEST_TIMEOUT,
                counter(&wire::STATS_PROTOCOL),
            ),
            handoff: rr(
                wire::HANDOFF_PROTOCOL,
                wire::HANDOFF_LIMITS,
                REQUEST_TIMEOUT,
                counter(&wire::HANDOFF_PROTOCOL),
            ),
            replicate: rr(
                wire::REPLICATE_PROTOCOL,
                wire::REPLICATE_LIMITS,
                REQUEST_TIMEOUT,
                counter(&wire::REPLICATE_PROTOCOL),
            ),
            digest: rr(
                wire::DIGEST_PROTOCOL,
                wire::DIGEST_LIMITS,
                REQUEST_TIMEOUT,
                counter(&wire::DIGEST_PROTOCOL),
            ),
            claim: rr(
                wire::CLAIM_PROTOCOL,
                wire::CLAIM_LIMITS,
                REQUEST_TIMEOUT,
                counter(&wire::CLAIM_PROTOCOL),
            ),
            doc: rr(
                wire::DOC_PROTOCOL,
                wire::DOC_LIMITS,
                SEARCH_TIMEOUT,
                counter(&wire::DOC_PROTOCOL),
            ),
        }
    }
}

/// Whether an address a peer reports is worth dialing and storing: it must have an IP and a
/// transport we speak (TCP, or QUIC v1 over UDP), and not be the unspecified address.
/// Loopback and private addresses are kept (tests and LANs use them); link-local IPv6 is
/// dropped (it needs a zone to be dialable).
pub fn is_dialable(addr: &Multiaddr) -> bool {
    let mut ip_ok = false;
    let mut transport = false;
    for p in addr.iter() {
        match p {
            Protocol::Ip4(ip) => ip_ok = !ip.is_unspecified() && !ip.is_broadcast(),
            Protocol::Ip6(ip) => {
                ip_ok = !ip.is_unspecified() && (ip.segments()[0] & 0xffc0) != 0xfe80;
            }
            Protocol::Dns(_) | Protocol::Dns4(_) | Protocol::Dns6(_) => ip_ok = true,
            Protocol::Tcp(port) => transport = port != 0,
            Protocol::QuicV1 => transport = true,
            Protocol::Udp(0) => return false,
            Protocol::P2pCircuit => return false,
            _ => {}
        }
    }
    ip_ok && transport
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialable_keeps_loopback_and_drops_unspecified() {
        let ok = |s: &str| is_dialable(&s.parse().unwrap());
        assert!(ok("/ip4/127.0.0.1/tcp/4001"));
        assert!(ok("/ip4/192.168.1.2/udp/4001/quic-v1"));
        assert!(ok("/ip6/::1/tcp/4001"));
        assert!(!ok("/ip4/0.0.0.0/tcp/4001"));
        assert!(!ok("/ip4/127.0.0.1/tcp/0"));
        assert!(!ok("/ip6/fe80::1/tcp/4001"));
        assert!(!ok("/ip4/127.0.0.1/udp/4001"));
        assert!(!ok("/ip4/1.2.3.4/tcp/1/p2p-circuit"));
    }
}
