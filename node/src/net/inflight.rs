//! How many requests of one protocol a peer may have in flight here at once.
//!
//! Every inbound request is answered on a task of its own; without a bound, one peer that
//! sends requests faster than they are answered (a query flood) makes this peer start as many
//! searches as it likes, and the honest requests wait behind them. Each inbound request holds
//! a [`Slot`] of its peer and protocol until it is answered (or dropped); a request over
//! [`MAX_IN_FLIGHT_PER_PEER`] is answered at once with [`BUSY`] and costs nothing. The bound
//! is above what an honest peer asks of another: [`Outbound`] keeps this peer's own requests
//! to one peer and protocol at [`MAX_OUTBOUND_PER_PEER`] (half the bound), and the rest wait
//! their turn here instead of being refused there. (A busy root with 48 queries at once sent
//! 48 searches to every leaf, and a slow leaf answered some of them busy.)

use libp2p::PeerId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
#[cfg(test)]
use std::time::Duration;

/// Requests of one protocol one peer may have in flight here.
pub const MAX_IN_FLIGHT_PER_PEER: usize = 32;

/// The answer to a request over the bound.
pub const BUSY: &str = "busy: too many requests in flight from this peer";

/// Requests of one protocol this peer sends one peer at once; more wait for a turn.
pub const MAX_OUTBOUND_PER_PEER: usize = MAX_IN_FLIGHT_PER_PEER / 2;

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

type Turns = Arc<Mutex<HashMap<(PeerId, &'static str), Arc<tokio::sync::Semaphore>>>>;

/// The bound on this peer's own requests in flight to one peer and protocol.
#[derive(Debug, Clone)]
pub struct Outbound {
    max: usize,
    turns: Turns,
}

impl Default for Outbound {
    fn default() -> Self {
        Outbound::new(MAX_OUTBOUND_PER_PEER)
    }
}

impl Outbound {
    /// At most `max` requests per peer and protocol in flight.
    pub fn new(max: usize) -> Outbound {
        Outbound {
            max,
            turns: Arc::default(),
        }
    }

    /// Wait for a turn to send `peer` one more request of `protocol`; the turn ends when the
    /// returned [`Turn`] is dropped (the answer came, or the asker gave up).
    pub async fn turn(&self, peer: PeerId, protocol: &'static str) -> Turn {
        let sem = {
            let mut turns = self.turns.lock().unwrap_or_else(|e| e.into_inner());
            turns
                .entry((peer, protocol))
                .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(self.max)))
                .clone()
        };
        let permit = sem
            .acquire_owned()
            .await
            .expect("the semaphore of a turn is never closed");
        Turn {
            permit: Some(permit),
            key: (peer, protocol),
            max: self.max,
            turns: self.turns.clone(),
        }
    }

    /// How many peers and protocols have a semaphore (requests in flight or waiting).
    #[cfg(test)]
    fn entries(&self) -> usize {
        self.turns.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// One outbound request's turn; freed when dropped.
#[derive(Debug)]
pub struct Turn {
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    key: (PeerId, &'static str),
    max: usize,
    turns: Turns,
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut turns = self.turns.lock().unwrap_or_else(|e| e.into_inner());
        drop(self.permit.take());
        // Nobody else holds or waits for this semaphore (the map's is the only reference):
        // forget it, so that quiet peers leave nothing behind. (An asker that gave up while
        // waiting after the last turn ended leaves its entry until the next turn of that
        // peer ends.)
        if let Some(sem) = turns.get(&self.key)
            && Arc::strong_count(sem) == 1
            && sem.available_permits() == self.max
        {
            turns.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn outbound_requests_past_the_bound_wait_for_a_turn() {
        let o = Outbound::new(2);
        let (a, b) = (PeerId::random(), PeerId::random());
        let t1 = o.turn(a, "search").await;
        let _t2 = o.turn(a, "search").await;
        let third = tokio::time::timeout(Duration::from_secs(1), o.turn(a, "search")).await;
        assert!(third.is_err(), "a third request to the same peer waits");
        let _other = o.turn(b, "search").await;
        let _stats = o.turn(a, "stats").await;
        let waiting = tokio::spawn({
            let o = o.clone();
            async move { o.turn(a, "search").await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(t1);
        let t3 = waiting.await.unwrap();
        drop((t3, _t2, _other, _stats));
        assert_eq!(o.entries(), 0, "nothing left for quiet peers");
    }

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
