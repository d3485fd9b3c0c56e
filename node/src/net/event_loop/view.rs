//! What the event loop tells about the network: the routing table, the live peers ownership
//! is computed over, and the peer summaries of the status page.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use libp2p::{Multiaddr, PeerId};

use super::EventLoop;
use crate::net::client::PeerSummary;

impl EventLoop {
    pub(super) fn routing_table(&mut self) -> Vec<(PeerId, Vec<Multiaddr>)> {
        let mut out = Vec::new();
        for bucket in self.swarm.behaviour_mut().kademlia.kbuckets() {
            for entry in bucket.iter() {
                out.push((
                    *entry.node.key.preimage(),
                    entry.node.value.iter().cloned().collect(),
                ));
            }
        }
        out
    }

    pub(super) fn live_peers(&mut self) -> Vec<PeerId> {
        let now = Instant::now();
        // A connected peer counts once identify confirmed it runs peersearch: any libp2p node
        // can connect, and only peersearch peers may own sites.
        let mut live: HashSet<PeerId> = self
            .swarm
            .connected_peers()
            .filter(|p| self.state.book.is_peersearch(p))
            .copied()
            .collect();
        for (peer, _) in self.routing_table() {
            if !self.state.book.is_dead(&peer) {
                live.insert(peer);
            }
        }
        let mut live: Vec<PeerId> = live
            .into_iter()
            .filter(|p| *p != self.state.local && !self.state.book.is_banned(p, now))
            .collect();
        live.sort();
        live
    }

    pub(super) fn peer_summaries(&mut self) -> Vec<PeerSummary> {
        let mut addrs: HashMap<PeerId, Vec<Multiaddr>> = self.routing_table().into_iter().collect();
        for peer in self.swarm.connected_peers() {
            addrs.entry(*peer).or_default();
        }
        let mut out: Vec<PeerSummary> = addrs
            .into_iter()
            .map(|(peer_id, mut addrs)| {
                if addrs.is_empty() {
                    addrs = self.state.known.addrs(&peer_id).to_vec();
                }
                PeerSummary {
                    peer_id,
                    addrs,
                    rtt: self.state.book.get(&peer_id).and_then(|s| s.rtt),
                    connected: self.swarm.is_connected(&peer_id),
                }
            })
            .collect();
        out.sort_by_key(|p| p.peer_id);
        out
    }
}
