//! How many requests of one protocol a peer may have in flight here at once.
//!
//! Every inbound request is answered on a task of its own; without a bound, one peer that
//! sends requests faster than they are answered (a query flood) makes this peer start as many
//! searches as it likes, and the honest requests wait behind them. Each inbound request holds
//! a [`Slot`] of its peer and protocol until it is answered (or dropped); a request over
//! [`MAX_IN_FLIGHT_PER_PEER`] is answered at once with [`BUSY`] and costs nothing. The bound
//! is far above what an honest root asks of one leaf (a query holds one stats and then one
//! search request per leaf; a busy root has a few dozen queries in flight at most).

use libp2p::PeerId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Requests of one protocol one peer may have in flight here.
pub const MAX_IN_FLIGHT_PER_PEER: usize = 32;

/// The answer to a request over the bound.
pub const BUSY: &str = "busy: too many requests in flight from this peer";

type Counts = Arc<Mutex<HashMap<(PeerId, &'static str), usize>>>;

fn lock(c: &Counts) -> MutexGuard<'_, HashMap<(PeerId, &'static str), usize>> {
    c.lock().unwrap_or_else(|e| e.into_inner())
}

/// The in-flight counts of every peer and protocol.
#[derive(Debug, Clone)]
pub struct InFlight {
    max: usize,
    counts: Counts,
}

impl Default for InFlight {
    fn default() -> Self {
        InFlight::new(MAX_IN_FLIGHT_PER_PEER)
    }
}

impl InFlight {
    /// At most `max` requests per peer and protocol.
    pub fn new(max: usize) -> InFlight {
        InFlight {
            max,
            counts: Arc::default(),
        }
    }

    /// A slot for one more request of `protocol` from `peer`, if it has fewer in flight than
    /// the bound.
    pub fn try_acquire(&self, peer: PeerId, protocol: &'static str) -> Option<Slot> {
        let mut counts = lock(&self.counts);
        let n = counts.entry((peer, protocol)).or_default();
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Slot {
            key: (peer, protocol),
            counts: self.counts.clone(),
        })
    }

    /// How many requests of `protocol` from `peer` are in flight.
    #[cfg(test)]
    pub fn count(&self, peer: &PeerId, protocol: &'static str) -> usize {
        lock(&self.counts)
            .get(&(*peer, protocol))
            .copied()
            .unwrap_or(0)
    }
}

/// One request in flight; freed when dropped.
#[derive(Debug)]
pub struct Slot {
    key: (PeerId, &'static str),
    counts: Counts,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = lock(&self.counts);
        if let Some(n) = counts.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_gets_its_bound_per_protocol_and_a_slot_back_when_answered() {
        let f = InFlight::new(2);
        let (a, b) = (PeerId::random(), PeerId::random());
        let s1 = f.try_acquire(a, "search").unwrap();
        let _s2 = f.try_acquire(a, "search").unwrap();
        assert!(f.try_acquire(a, "search").is_none(), "over the bound");
        assert!(f.try_acquire(a, "stats").is_some(), "another protocol");
        assert!(f.try_acquire(b, "search").is_some(), "another peer");
        drop(s1);
        assert_eq!(f.count(&a, "search"), 1);
        assert!(f.try_acquire(a, "search").is_some(), "a slot freed");
    }

    #[test]
    fn counts_go_away_with_their_last_slot() {
        let f = InFlight::new(4);
        let a = PeerId::random();
        let slots: Vec<Slot> = (0..4).filter_map(|_| f.try_acquire(a, "doc")).collect();
        assert_eq!(slots.len(), 4);
        drop(slots);
        assert_eq!(f.count(&a, "doc"), 0);
        assert!(lock(&f.counts).is_empty(), "no entry left for a quiet peer");
    }
}
