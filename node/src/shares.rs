//! The root's cache of its peers' statistics shares, per term (issue 14, "one-round queries").
//!
//! A network query needs the network's BM25 statistics of its terms: the sum of every peer's
//! share (documents, tokens per field, document frequency per term). Gathering them is a round
//! of requests to every peer before the search round can start. This cache keeps what each
//! peer last said, **per term**, not per query text: a query whose terms the root has seen in
//! any earlier query (in any order, any combination) is scored with the cached shares and costs
//! only the search round. Only peers that never sent a share of one of its terms (or whose
//! share is older than [`SHARE_TTL`]) are asked in a statistics round first.
//!
//! The cache never makes an answer stale. Each leaf sends its current share of the query with
//! its search answer (`SearchRequest::share`); when one differs from the share the root
//! searched with, and the merged statistics differ with it, the root searches again with the
//! current statistics (`search::Search::root`). What the cache saves is the round, never the
//! exactness.
//!
//! Bounded: shares of live peers only, at most [`MAX_TERMS_PER_PEER`] terms per peer (the
//! oldest go first).

use libp2p::PeerId;
use peersearch_indexer::TermStats;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// A share older than this is asked for again before a query uses it.
pub const SHARE_TTL: Duration = Duration::from_secs(30);

/// Most terms kept per peer.
pub const MAX_TERMS_PER_PEER: usize = 4096;

/// What one peer last said.
#[derive(Debug)]
struct PeerShares {
    /// Its documents, as of `totals_at`.
    num_docs: u64,
    /// Its tokens per field, as of `totals_at`.
    field_tokens: BTreeMap<String, u64>,
    totals_at: Instant,
    /// Document frequency per term key, with when it was said.
    terms: HashMap<String, (u64, Instant)>,
}

/// The cache (one per root).
#[derive(Debug, Default)]
pub struct ShareCache {
    peers: HashMap<PeerId, PeerShares>,
}

impl ShareCache {
    /// `peer`'s cached share of the query whose own share is `own` (its keys are the query's),
    /// if every part of it is cached and younger than [`SHARE_TTL`] at `now`.
    pub fn share(&self, peer: &PeerId, own: &TermStats, now: Instant) -> Option<TermStats> {
        let cached = self.peers.get(peer)?;
        let fresh = |at: Instant| now.saturating_duration_since(at) < SHARE_TTL;
        if !fresh(cached.totals_at) {
            return None;
        }
        let mut share = TermStats {
            num_docs: cached.num_docs,
            ..TermStats::default()
        };
        for field in own.field_tokens.keys() {
            share
                .field_tokens
                .insert(field.clone(), *cached.field_tokens.get(field)?);
        }
        for key in own.doc_freq.keys() {
            let &(df, at) = cached.terms.get(key)?;
            if !fresh(at) {
                return None;
            }
            share.doc_freq.insert(key.clone(), df);
        }
        Some(share)
    }

    /// Remember `share`, which `peer` sent at `now` (checked by the caller:
    /// [`crate::stats_check::check_share`]).
    pub fn put(&mut self, peer: PeerId, share: &TermStats, now: Instant) {
        let entry = self.peers.entry(peer).or_insert_with(|| PeerShares {
            num_docs: 0,
            field_tokens: BTreeMap::new(),
            totals_at: now,
            terms: HashMap::new(),
        });
        entry.num_docs = share.num_docs;
        entry.totals_at = now;
        for (field, &tokens) in &share.field_tokens {
            entry.field_tokens.insert(field.clone(), tokens);
        }
        for (key, &df) in &share.doc_freq {
            entry.terms.insert(key.clone(), (df, now));
        }
        if entry.terms.len() > MAX_TERMS_PER_PEER {
            // The oldest half goes: a full sort only once per MAX_TERMS_PER_PEER / 2 terms.
            let mut ages: Vec<Instant> = entry.terms.values().map(|&(_, at)| at).collect();
            ages.sort_unstable();
            let cut = ages[ages.len() / 2];
            entry.terms.retain(|_, &mut (_, at)| at > cut);
        }
    }

    /// Forget what `peer` said (it sent a share that cannot be true, or none).
    pub fn forget(&mut self, peer: &PeerId) {
        self.peers.remove(peer);
    }

    /// Keep only the shares of `live` peers.
    pub fn retain_peers(&mut self, live: &[PeerId]) {
        if self.peers.len() > live.len() || self.peers.keys().any(|p| !live.contains(p)) {
            let live: std::collections::HashSet<&PeerId> = live.iter().collect();
            self.peers.retain(|p, _| live.contains(p));
        }
    }

    /// Terms cached for `peer` (for tests and the bound).
    #[cfg(test)]
    fn terms_of(&self, peer: &PeerId) -> usize {
        self.peers.get(peer).map_or(0, |p| p.terms.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peersearch_indexer::term_key;

    /// A share with `docs` documents holding each of `terms` in `df` of them.
    fn share(docs: u64, terms: &[&str], df: u64) -> TermStats {
        let mut s = TermStats {
            num_docs: docs,
            ..TermStats::default()
        };
        for f in ["title", "body"] {
            s.field_tokens.insert(f.into(), docs * 50);
            for t in terms {
                s.doc_freq.insert(term_key(f, t), df);
            }
        }
        s
    }

    #[test]
    fn a_query_made_of_terms_seen_in_other_queries_is_served_from_the_cache() {
        let peer = PeerId::random();
        let t0 = Instant::now();
        let mut cache = ShareCache::default();
        cache.put(peer, &share(100, &["rust", "async"], 7), t0);
        cache.put(peer, &share(100, &["tantivy"], 3), t0);
        // Another query, another order, terms of two earlier queries.
        let own = share(5, &["tantivy", "rust"], 1);
        let got = cache.share(&peer, &own, t0 + Duration::from_secs(1));
        let mut want = share(100, &["tantivy"], 3);
        for f in ["title", "body"] {
            want.doc_freq.insert(term_key(f, "rust"), 7);
        }
        assert_eq!(got, Some(want));
        // A term never seen from this peer: not cached.
        let own = share(5, &["rust", "search"], 1);
        assert_eq!(cache.share(&peer, &own, t0), None);
        // Another peer: nothing cached.
        assert_eq!(cache.share(&PeerId::random(), &own, t0), None);
    }

    #[test]
    fn shares_expire_and_the_newest_totals_count() {
        let peer = PeerId::random();
        let t0 = Instant::now();
        let mut cache = ShareCache::default();
        cache.put(peer, &share(100, &["rust"], 7), t0);
        let own = share(5, &["rust"], 1);
        assert!(cache.share(&peer, &own, t0 + SHARE_TTL / 2).is_some());
        assert_eq!(cache.share(&peer, &own, t0 + SHARE_TTL), None, "expired");
        // Fresh totals do not make an old term fresh.
        cache.put(peer, &share(120, &["async"], 2), t0 + SHARE_TTL);
        assert_eq!(cache.share(&peer, &own, t0 + SHARE_TTL), None);
        let async_own = share(5, &["async"], 1);
        let got = cache.share(&peer, &async_own, t0 + SHARE_TTL).unwrap();
        assert_eq!(got.num_docs, 120);
    }

    #[test]
    fn the_cache_is_bounded_per_peer_and_to_live_peers() {
        let (a, b) = (PeerId::random(), PeerId::random());
        let t0 = Instant::now();
        let mut cache = ShareCache::default();
        for i in 0..3 * MAX_TERMS_PER_PEER {
            let term = format!("t{i}");
            let at = t0 + Duration::from_millis(i as u64);
            cache.put(a, &share(10, &[term.as_str()], 1), at);
            assert!(cache.terms_of(&a) <= MAX_TERMS_PER_PEER, "{i}");
        }
        // The newest stay.
        let last = format!("t{}", 3 * MAX_TERMS_PER_PEER - 1);
        let own = share(1, &[last.as_str()], 1);
        let now = t0 + Duration::from_millis(3 * MAX_TERMS_PER_PEER as u64);
        assert!(cache.share(&a, &own, now).is_some());
        cache.put(b, &share(10, &["x"], 1), t0);
        cache.retain_peers(&[b]);
        assert_eq!(cache.terms_of(&a), 0, "a left the network");
        assert_eq!(cache.terms_of(&b), 2);
        cache.forget(&b);
        assert_eq!(cache.terms_of(&b), 0);
    }
}
