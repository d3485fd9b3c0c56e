//! What this peer remembers about others: the addresses to rejoin with after a restart
//! (`known_peers.json`), and the health of each peer (dead, misbehaving, banned, RTT).

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};

/// File name of the remembered peers inside the data directory.
pub const KNOWN_PEERS_FILE: &str = "known_peers.json";
/// Most peers remembered: enough to rejoin through any of them, small enough to dial all at
/// start (and well under the 256-connection limit).
pub(crate) const MAX_KNOWN_PEERS: usize = 200;
/// Most addresses remembered per peer (a peer listening on 0.0.0.0 reports one per interface).
pub(crate) const MAX_ADDRS_PER_PEER: usize = 8;
/// Consecutive failed requests (or pings) after which a peer counts as dead.
pub const DEAD_AFTER_FAILURES: u32 = 3;
/// Misbehaviour points (undecodable, oversized or invalid answers) that get a peer banned.
pub const BAN_THRESHOLD: u32 = 3;
/// How long a misbehaving peer stays banned.
pub const BAN_DURATION: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Serialize, Deserialize)]
struct KnownPeersFile {
    peers: Vec<KnownPeerEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct KnownPeerEntry {
    peer_id: String,
    addrs: Vec<String>,
    /// Unix seconds when last seen connected or identified.
    last_seen: u64,
}

/// Remembered peers, newest first, bounded by [`MAX_KNOWN_PEERS`].
#[derive(Debug, Default)]
pub(crate) struct KnownPeers {
    entries: Vec<(PeerId, Vec<Multiaddr>, u64)>,
    dirty: bool,
}

impl KnownPeers {
    /// Load `<data_dir>/known_peers.json`; a missing or corrupt file gives an empty list
    /// (logged), since the peer can still join through `--bootstrap`.
    pub(crate) fn load(data_dir: &Path) -> KnownPeers {
        let path = data_dir.join(KNOWN_PEERS_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return KnownPeers::default(),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read known peers");
                return KnownPeers::default();
            }
        };
        match Self::from_json(&bytes) {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring corrupt known peers");
                KnownPeers::default()
            }
        }
    }

    fn from_json(bytes: &[u8]) -> serde_json::Result<KnownPeers> {
        let file: KnownPeersFile = serde_json::from_slice(bytes)?;
        let mut known = KnownPeers::default();
        for entry in file.peers.into_iter().take(MAX_KNOWN_PEERS) {
            let Ok(peer) = entry.peer_id.parse::<PeerId>() else {
                continue;
            };
            if known.entries.iter().any(|(p, _, _)| *p == peer) {
                continue;
            }
            let addrs: Vec<Multiaddr> = entry
                .addrs
                .iter()
                .filter_map(|a| a.parse().ok())
                .take(MAX_ADDRS_PER_PEER)
                .collect();
            if !addrs.is_empty() {
                known.entries.push((peer, addrs, entry.last_seen));
            }
        }
        Ok(known)
    }

    /// The file content: JSON, newest first.
    pub(crate) fn to_json(&self) -> Vec<u8> {
        let file = KnownPeersFile {
            peers: self
                .entries
                .iter()
                .map(|(p, addrs, seen)| KnownPeerEntry {
                    peer_id: p.to_string(),
                    addrs: addrs.iter().map(|a| a.to_string()).collect(),
                    last_seen: *seen,
                })
                .collect(),
        };
        serde_json::to_vec_pretty(&file).unwrap_or_default()
    }

    /// Remember that `peer` was just seen at `addrs` (newest first, merged with what was known).
    pub(crate) fn record(&mut self, peer: PeerId, addrs: &[Multiaddr]) {
        if addrs.is_empty() {
            return;
        }
        let mut merged: Vec<Multiaddr> = Vec::new();
        let old = self
            .entries
            .iter()
            .position(|(p, _, _)| *p == peer)
            .map(|i| self.entries.remove(i));
        let old_addrs = old.map(|(_, a, _)| a).unwrap_or_default();
        for a in addrs.iter().chain(old_addrs.iter()) {
            if !merged.contains(a) && merged.len() < MAX_ADDRS_PER_PEER {
                merged.push(a.clone());
            }
        }
        self.entries
            .insert(0, (peer, merged, crate::clock::now_unix()));
        self.entries.truncate(MAX_KNOWN_PEERS);
        self.dirty = true;
    }

    /// Forget `peer` (banned peers are not worth rejoining through).
    pub(crate) fn forget(&mut self, peer: &PeerId) {
        let before = self.entries.len();
        self.entries.retain(|(p, _, _)| p != peer);
        self.dirty |= before != self.entries.len();
    }

    /// Remembered peers and addresses, newest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&PeerId, &[Multiaddr])> {
        self.entries.iter().map(|(p, a, _)| (p, a.as_slice()))
    }

    /// Addresses remembered for `peer`.
    pub(crate) fn addrs(&self, peer: &PeerId) -> &[Multiaddr] {
        self.entries
            .iter()
            .find(|(p, _, _)| p == peer)
            .map(|(_, a, _)| a.as_slice())
            .unwrap_or(&[])
    }

    /// Whether there are changes not yet written.
    pub(crate) fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Mark the current content as written.
    pub(crate) fn mark_clean(&mut self) {
        self.dirty = false;
    }
}

/// Health of one peer.
#[derive(Debug, Default, Clone)]
pub(crate) struct PeerState {
    /// Last ping round trip.
    pub(crate) rtt: Option<Duration>,
    /// Failed requests in a row.
    failures: u32,
    /// Unreachable until it reconnects.
    dead: bool,
    /// Misbehaviour points.
    score: u32,
    banned_until: Option<Instant>,
    /// Identify said it runs peersearch (same protocol version).
    peersearch: bool,
}

/// Health of every peer this peer has dealt with.
#[derive(Debug, Default)]
pub(crate) struct PeerBook {
    peers: HashMap<PeerId, PeerState>,
}

impl PeerBook {
    /// The state of `peer`, if any.
    pub(crate) fn get(&self, peer: &PeerId) -> Option<&PeerState> {
        self.peers.get(peer)
    }

    /// A connection was established: the peer is alive.
    pub(crate) fn on_connected(&mut self, peer: PeerId) {
        let s = self.peers.entry(peer).or_default();
        s.dead = false;
        s.failures = 0;
    }

    /// A request to the peer succeeded.
    pub(crate) fn on_success(&mut self, peer: PeerId) {
        self.on_connected(peer);
    }

    /// A request (or ping) failed; returns true when this made the peer dead.
    pub(crate) fn on_failure(&mut self, peer: PeerId) -> bool {
        let s = self.peers.entry(peer).or_default();
        s.failures = s.failures.saturating_add(1);
        if s.failures >= DEAD_AFTER_FAILURES && !s.dead {
            s.dead = true;
            return true;
        }
        false
    }

    /// The peer cannot be reached (dial failed, connection lost and redial failed).
    pub(crate) fn mark_dead(&mut self, peer: PeerId) {
        self.peers.entry(peer).or_default().dead = true;
    }

    /// Whether the peer is known to be dead.
    pub(crate) fn is_dead(&self, peer: &PeerId) -> bool {
        self.peers.get(peer).is_some_and(|s| s.dead)
    }

    /// The peer misbehaved; returns true when this got it banned.
    pub(crate) fn on_misbehaviour(&mut self, peer: PeerId, now: Instant) -> bool {
        let s = self.peers.entry(peer).or_default();
        s.score = s.score.saturating_add(1);
        if s.score >= BAN_THRESHOLD && s.banned_until.is_none() {
            s.banned_until = Some(now + BAN_DURATION);
            s.dead = true;
            return true;
        }
        false
    }

    /// Whether the peer is banned at `now`.
    pub(crate) fn is_banned(&self, peer: &PeerId, now: Instant) -> bool {
        self.peers
            .get(peer)
            .and_then(|s| s.banned_until)
            .is_some_and(|until| until > now)
    }

    /// Lift the bans that ended by `now` (the score starts over); returns those peers.
    pub(crate) fn expire_bans(&mut self, now: Instant) -> Vec<PeerId> {
        let mut lifted = Vec::new();
        for (peer, s) in &mut self.peers {
            if s.banned_until.is_some_and(|until| until <= now) {
                s.banned_until = None;
                s.score = 0;
                lifted.push(*peer);
            }
        }
        lifted
    }

    /// Identify confirmed that the peer runs peersearch.
    pub(crate) fn mark_peersearch(&mut self, peer: PeerId) {
        self.peers.entry(peer).or_default().peersearch = true;
    }

    /// Whether identify confirmed that the peer runs peersearch.
    pub(crate) fn is_peersearch(&self, peer: &PeerId) -> bool {
        self.peers.get(peer).is_some_and(|s| s.peersearch)
    }

    /// Record a ping round trip.
    pub(crate) fn set_rtt(&mut self, peer: PeerId, rtt: Duration) {
        self.peers.entry(peer).or_default().rtt = Some(rtt);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> Multiaddr {
        format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap()
    }

    #[test]
    fn known_peers_round_trip_newest_first() {
        let (a, b) = (PeerId::random(), PeerId::random());
        let mut known = KnownPeers::default();
        known.record(a, &[addr(1)]);
        known.record(b, &[addr(2)]);
        known.record(a, &[addr(3)]);
        let back = KnownPeers::from_json(&known.to_json()).unwrap();
        let order: Vec<PeerId> = back.iter().map(|(p, _)| *p).collect();
        assert_eq!(order, vec![a, b]);
        assert_eq!(back.addrs(&a), &[addr(3), addr(1)]);
    }

    #[test]
    fn known_peers_are_bounded() {
        let mut known = KnownPeers::default();
        let first = PeerId::random();
        known.record(first, &[addr(1)]);
        for i in 0..MAX_KNOWN_PEERS + 10 {
            known.record(PeerId::random(), &[addr(i as u16 + 2)]);
        }
        assert_eq!(known.iter().count(), MAX_KNOWN_PEERS);
        assert!(known.addrs(&first).is_empty(), "oldest entry dropped");
        let addrs: Vec<Multiaddr> = (0..20).map(addr).collect();
        let p = PeerId::random();
        known.record(p, &addrs);
        assert_eq!(known.addrs(&p).len(), MAX_ADDRS_PER_PEER);
    }

    #[test]
    fn corrupt_known_peers_file_loads_empty() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(KNOWN_PEERS_FILE), b"{not json").unwrap();
        assert_eq!(KnownPeers::load(dir.path()).iter().count(), 0);
    }

    #[test]
    fn peer_becomes_dead_after_repeated_failures_and_revives_on_connect() {
        let mut book = PeerBook::default();
        let p = PeerId::random();
        for _ in 1..DEAD_AFTER_FAILURES {
            assert!(!book.on_failure(p));
        }
        assert!(book.on_failure(p));
        assert!(book.is_dead(&p));
        book.on_connected(p);
        assert!(!book.is_dead(&p));
    }

    #[test]
    fn success_resets_the_failure_count() {
        let mut book = PeerBook::default();
        let p = PeerId::random();
        for _ in 0..10 {
            book.on_failure(p);
            book.on_success(p);
        }
        assert!(!book.is_dead(&p));
    }

    #[test]
    fn misbehaving_peer_is_banned_then_released() {
        let mut book = PeerBook::default();
        let p = PeerId::random();
        let now = Instant::now();
        for _ in 1..BAN_THRESHOLD {
            assert!(!book.on_misbehaviour(p, now));
        }
        assert!(book.on_misbehaviour(p, now));
        assert!(book.is_banned(&p, now));
        assert!(book.expire_bans(now).is_empty());
        let later = now + BAN_DURATION;
        assert!(!book.is_banned(&p, later));
        assert_eq!(book.expire_bans(later), vec![p]);
        assert!(!book.on_misbehaviour(p, later), "score starts over");
    }
}
