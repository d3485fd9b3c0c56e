//! Which peers own a site, computed by the test kit on its own, from the design, so that a
//! test's expectations do not come from the code under test (`node/src/ownership.rs`).
//!
//! The design (`../shared/DESIGN.md`, "Who crawls what"): a site's key is SHA-256 of its
//! lowercased authority `host[:port]`; a peer's Kademlia key is SHA-256 of its peer id's bytes
//! (libp2p-kad's `kbucket::Key::from(PeerId)` is `Sha256::digest(peer_id.to_bytes())`, see its
//! `src/kbucket/key.rs`); a site's owners are the R peers whose keys have the smallest XOR
//! distance to the site key's point in the Kademlia keyspace, the 32 bytes compared as a
//! big-endian integer, the closest first. That point is where Kademlia puts any record key:
//! SHA-256 of the key's bytes (`kbucket::Key::new`), so the site's point is
//! SHA-256(SHA-256(authority)), and a DHT lookup of the site key finds its owners.

use libp2p::PeerId;
use sha2::{Digest, Sha256};

/// A 32-byte point of the keyspace.
pub type Key = [u8; 32];

fn sha256(bytes: &[u8]) -> Key {
    let mut out = [0u8; 32];
    out.copy_from_slice(&Sha256::digest(bytes));
    out
}

/// The key of a site: SHA-256 of its lowercased authority (`host[:port]`, the default port
/// left out by the caller, as in a URL).
pub fn site_key(authority: &str) -> Key {
    sha256(authority.to_ascii_lowercase().as_bytes())
}

/// Where a site sits in the Kademlia keyspace: SHA-256 of its site key (libp2p-kad hashes
/// every record key once more to place it).
pub fn site_point(authority: &str) -> Key {
    sha256(&site_key(authority))
}

/// The Kademlia key of a peer: SHA-256 of its peer id's bytes (the multihash).
pub fn peer_key(peer_id: &str) -> Key {
    let id: PeerId = peer_id
        .parse()
        .unwrap_or_else(|e| panic!("not a peer id {peer_id:?}: {e}"));
    sha256(&id.to_bytes())
}

/// XOR of two keys; comparing the arrays compares the distances as big-endian integers.
pub fn distance(a: &Key, b: &Key) -> Key {
    let mut d = [0u8; 32];
    for (i, x) in d.iter_mut().enumerate() {
        *x = a[i] ^ b[i];
    }
    d
}

/// The `r` owners of the site `authority` among `peers` (peer ids as the API prints them),
/// closest first; duplicates count once.
pub fn owners(authority: &str, peers: &[String], r: usize) -> Vec<String> {
    let site = site_point(authority);
    let mut by_distance: Vec<(Key, &String)> = peers
        .iter()
        .map(|p| (distance(&site, &peer_key(p)), p))
        .collect();
    by_distance.sort();
    by_distance.dedup_by(|a, b| a.1 == b.1);
    by_distance
        .into_iter()
        .take(r)
        .map(|(_, p)| p.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Peer ids whose multihash is sha2-256 (0x12, 32 bytes) of 32 times the byte 1, 2, 3, 4.
    const PEERS: [&str; 4] = [
        "QmNQa1FSTXNHmrjjfgUW3Px3Vkke4oKiFWdigWkYSux2Pi",
        "QmNUVJPjvXxb55spvBuoNKEvGWzoGzzmwLC8MAovVWhMiR",
        "QmNYQbY3PYYtNK1vAhM6hEXo3HExVCfqd9kY1psJY7Sh38",
        "QmNcKtgLrZ9BfYA1RCnQ29pfp3V7hQLuJyJwgUvgaiC2Mq",
    ];

    fn hex(k: &Key) -> String {
        k.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The peer half agrees with libp2p-kad's own keyspace (`kbucket::Key::from(PeerId)`).
    #[test]
    fn peer_key_is_libp2p_kads_key_of_the_peer() {
        for p in PEERS {
            let id: PeerId = p.parse().unwrap();
            let kad = libp2p::kad::KBucketKey::from(id);
            assert_eq!(&peer_key(p)[..], kad.hashed_bytes(), "{p}");
        }
        let random = PeerId::random();
        assert_eq!(
            &peer_key(&random.to_string())[..],
            libp2p::kad::KBucketKey::from(random).hashed_bytes()
        );
    }

    /// Worked by hand (Python's hashlib, outside this code): the site key, one peer key, and
    /// the site's point, and the order of the XOR distances, whose first bytes are 0x20
    /// (peer 3), 0x34 (peer 1), 0x7f (peer 4), 0xa9 (peer 2).
    #[test]
    fn owners_of_a_hand_computed_example() {
        assert_eq!(
            hex(&site_key("127.0.0.1:8080")),
            "b678fa77dde442f6b0ba2fa3a0f4af238df5790666bfb2414405f2efc01c92c6"
        );
        assert_eq!(site_key("LocalHost:8080"), site_key("localhost:8080"));
        assert_eq!(
            hex(&peer_key(PEERS[0])),
            "c5b1b83732d84dfe0082e7146ae4e57d6b2fd7544d050250ad5a90970ed65198"
        );
        assert_eq!(
            hex(&site_point("127.0.0.1:8080")),
            "f1c0a56f0102afd3ecb1c699d8858d9eedb9c5c9dea313f44802db4d2e762e5f"
        );
        assert_eq!(
            hex(&distance(
                &site_point("127.0.0.1:8080"),
                &peer_key(PEERS[3])
            )),
            "7fe39a814d8df7940abefed6aa96daf0389b69181e627662df149a4513a6a182"
        );
        let peers: Vec<String> = PEERS.iter().map(|s| s.to_string()).collect();
        let want =
            |idx: &[usize]| -> Vec<String> { idx.iter().map(|i| peers[*i].clone()).collect() };
        assert_eq!(owners("127.0.0.1:8080", &peers, 3), want(&[2, 0, 3]));
        assert_eq!(owners("127.0.0.1:8080", &peers, 1), want(&[2]));
        // Input order and duplicates do not matter; r beyond the peers gives them all.
        let shuffled = vec![
            peers[1].clone(),
            peers[3].clone(),
            peers[0].clone(),
            peers[3].clone(),
            peers[2].clone(),
        ];
        assert_eq!(owners("127.0.0.1:8080", &shuffled, 9), want(&[2, 0, 3, 1]));
    }
}
