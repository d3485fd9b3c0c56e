//! Who owns which slice of the web.
//!
//! A site's key is SHA-256 of its authority (`host[:port]`, lowercased, default port elided;
//! the caller normalizes). Its owners are the R peers XOR-closest to it in the Kademlia
//! keyspace, among the live peers this peer knows, itself included. The closest is the
//! primary (it crawls the site); the others hold replicas.
//!
//! Keyspace: libp2p-kad does not place a peer at its raw id but at `SHA-256(peer id bytes)`
//! ([`kad::KBucketKey::from`]), and any other key at `SHA-256(key bytes)`
//! ([`kad::KBucketKey::new`]). Both sides here go through those two constructors, so the site
//! sits at `SHA-256(SiteKey)` and the owners are exactly the peers a DHT lookup
//! `get_closest_peers(site_key.as_bytes().to_vec())` converges on.

use std::fmt;

use libp2p::PeerId;
use libp2p::kad::{KBucketDistance, KBucketKey};
use sha2::{Digest, Sha256};

/// SHA-256 of a site authority: the point in URL space that decides the site's owners.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SiteKey([u8; 32]);

impl SiteKey {
    /// The key of a site authority (`host[:port]`). The authority is lowercased here; eliding
    /// the default port is the caller's job (it knows the scheme).
    pub fn of(authority: &str) -> SiteKey {
        let digest = Sha256::digest(authority.to_ascii_lowercase().as_bytes());
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(&digest);
        SiteKey(bytes)
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex of the key.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The site's position in the Kademlia keyspace.
    fn kad_key(&self) -> KBucketKey<Vec<u8>> {
        KBucketKey::new(self.0.to_vec())
    }

    /// XOR distance from the site to a peer in the Kademlia keyspace.
    pub fn distance(&self, peer: &PeerId) -> KBucketDistance {
        KBucketKey::from(*peer).distance(&self.kad_key())
    }
}

impl fmt::Debug for SiteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SiteKey({})", self.to_hex())
    }
}

impl fmt::Display for SiteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// The owners of `site`: the `r` peers among `local` and `peers` closest to it, closest first
/// (the first is the primary). Duplicates are ignored; distance ties, which need a SHA-256
/// collision, fall back to the peer id bytes, so every peer that knows the same set computes
/// the same list. `r == 0` yields an empty list.
pub fn owners(site: &SiteKey, local: PeerId, peers: &[PeerId], r: usize) -> Vec<PeerId> {
    let site_key = site.kad_key();
    let mut candidates: Vec<(KBucketDistance, PeerId)> = std::iter::once(local)
        .chain(peers.iter().copied())
        .map(|p| (KBucketKey::from(p).distance(&site_key), p))
        .collect();
    candidates
        .sort_by(|(da, pa), (db, pb)| da.cmp(db).then_with(|| pa.to_bytes().cmp(&pb.to_bytes())));
    candidates.dedup_by(|a, b| a.1 == b.1);
    candidates.into_iter().take(r).map(|(_, p)| p).collect()
}

/// Whether `local` is the primary (closest owner) of `site`.
pub fn is_primary(site: &SiteKey, local: PeerId, peers: &[PeerId]) -> bool {
    owners(site, local, peers, 1).first() == Some(&local)
}

/// Whether `local` is one of the `r` owners of `site`.
pub fn is_owner(site: &SiteKey, local: PeerId, peers: &[PeerId], r: usize) -> bool {
    owners(site, local, peers, r).contains(&local)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers(n: usize) -> Vec<PeerId> {
        (0..n).map(|_| PeerId::random()).collect()
    }

    #[test]
    fn site_key_is_sha256_of_lowercased_authority() {
        let k = SiteKey::of("Example.COM:8080");
        assert_eq!(k, SiteKey::of("example.com:8080"));
        assert_ne!(k, SiteKey::of("example.com"));
        assert_eq!(
            SiteKey::of("example.com").to_hex(),
            // sha256("example.com")
            "a379a6f6eeafb9a55e378c118034e2751e682fab9f2d30ab13d2125586ce1947"
        );
    }

    #[test]
    fn owners_are_sorted_by_xor_distance_and_include_local() {
        let all = peers(10);
        let site = SiteKey::of("example.org");
        let got = owners(&site, all[0], &all[1..], 10);
        assert_eq!(got.len(), 10);
        for pair in got.windows(2) {
            assert!(site.distance(&pair[0]) <= site.distance(&pair[1]));
        }
        assert!(got.contains(&all[0]));
    }

    #[test]
    fn every_peer_agrees_when_they_know_the_same_set() {
        let all = peers(8);
        for i in 0..50 {
            let site = SiteKey::of(&format!("site{i}.example"));
            let views: Vec<Vec<PeerId>> = all
                .iter()
                .map(|me| {
                    let others: Vec<PeerId> = all.iter().filter(|p| *p != me).copied().collect();
                    owners(&site, *me, &others, 3)
                })
                .collect();
            assert!(views.windows(2).all(|w| w[0] == w[1]), "site {i}");
            let primaries = all.iter().filter(|me| {
                let others: Vec<PeerId> = all.iter().filter(|p| p != me).copied().collect();
                is_primary(&site, **me, &others)
            });
            assert_eq!(primaries.count(), 1, "exactly one primary for site {i}");
        }
    }

    #[test]
    fn owners_are_deterministic_regardless_of_input_order_and_duplicates() {
        let all = peers(6);
        let site = SiteKey::of("example.net");
        let a = owners(&site, all[0], &all[1..], 3);
        let mut shuffled: Vec<PeerId> = all[1..].iter().rev().copied().collect();
        shuffled.extend_from_slice(&all[1..3]);
        shuffled.push(all[0]);
        let b = owners(&site, all[0], &shuffled, 3);
        assert_eq!(a, b);
    }

    #[test]
    fn r_larger_than_known_peers_returns_everyone() {
        let all = peers(3);
        let site = SiteKey::of("example.com");
        let got = owners(&site, all[0], &all[1..], 5);
        assert_eq!(got.len(), 3);
        assert!(is_owner(&site, all[0], &all[1..], 5));
        assert!(owners(&site, all[0], &all[1..], 0).is_empty());
    }

    #[test]
    fn a_lone_peer_owns_everything() {
        let me = PeerId::random();
        let site = SiteKey::of("example.com");
        assert_eq!(owners(&site, me, &[], 3), vec![me]);
        assert!(is_primary(&site, me, &[]));
    }

    #[test]
    fn owners_match_kademlia_keyspace() {
        // The site is placed like a kad key of its bytes, peers like kad peer keys.
        let all = peers(5);
        let site = SiteKey::of("example.com");
        let target = KBucketKey::new(site.as_bytes().to_vec());
        let mut expected = all.clone();
        expected.sort_by_key(|p| KBucketKey::from(*p).distance(&target));
        assert_eq!(owners(&site, all[0], &all[1..], 5), expected);
    }

    #[test]
    fn removing_a_non_owner_does_not_move_ownership() {
        let all = peers(8);
        let site = SiteKey::of("stable.example");
        let before = owners(&site, all[0], &all[1..], 3);
        let outsider = *all[1..]
            .iter()
            .find(|p| !before.contains(p))
            .expect("7 remote peers, 3 owners");
        let rest: Vec<PeerId> = all[1..]
            .iter()
            .filter(|p| **p != outsider)
            .copied()
            .collect();
        assert_eq!(owners(&site, all[0], &rest, 3), before);
    }
}
