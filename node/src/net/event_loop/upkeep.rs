//! The event loop's upkeep of the peer's place in the network: dialing the seeds, the
//! housekeeping timer (bans, bootstrap, re-dial, known-peers writes) and shutdown.

use std::time::Instant;

use futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use tokio::task::JoinHandle;

use super::*;
use crate::net::fsutil::write_atomic;
use crate::net::peers::KNOWN_PEERS_FILE;

impl EventLoop {
    /// Dial the bootstrap addresses and the remembered peers.
    pub(super) fn dial_seeds(&mut self) {
        for addr in self.state.bootstrap.clone() {
            let opts = match peer_of(&addr) {
                Some(peer) if peer == self.state.local => continue,
                Some(peer) => DialOpts::peer_id(peer)
                    .addresses(vec![addr.clone()])
                    .condition(PeerCondition::DisconnectedAndNotDialing)
                    .build(),
                None => DialOpts::unknown_peer_id().address(addr.clone()).build(),
            };
            if let Err(e) = self.swarm.dial(opts) {
                tracing::debug!(%addr, error = %e, "bootstrap dial failed");
            }
        }
        let remembered: Vec<(PeerId, Vec<Multiaddr>)> = self
            .state
            .known
            .iter()
            .filter(|(p, _)| **p != self.state.local)
            .map(|(p, a)| (*p, a.to_vec()))
            .collect();
        for (peer, addrs) in remembered {
            if self.swarm.is_connected(&peer) || self.state.book.is_banned(&peer, Instant::now()) {
                continue;
            }
            let opts = DialOpts::peer_id(peer)
                .addresses(addrs)
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            if let Err(e) = self.swarm.dial(opts) {
                tracing::debug!(%peer, error = %e, "dial of remembered peer failed");
            }
        }
    }

    pub(super) fn housekeeping(&mut self) {
        let now = Instant::now();
        for peer in self.state.book.expire_bans(now) {
            tracing::info!(%peer, "ban lifted");
            self.swarm.behaviour_mut().blocked.unblock_peer(peer);
        }
        if !self.state.listen_waiters.is_empty()
            && now.duration_since(self.state.started) >= LISTEN_WAIT
        {
            self.answer_listen_waiters();
        }
        let table_size = self.routing_table().len();
        if now >= self.state.next_bootstrap {
            if table_size > 0 {
                let _ = self.swarm.behaviour_mut().kademlia.bootstrap();
            }
            let interval = if now.duration_since(self.state.started) < EARLY_PHASE {
                EARLY_BOOTSTRAP_INTERVAL
            } else {
                LATE_BOOTSTRAP_INTERVAL
            };
            self.state.next_bootstrap = now + interval;
        }
        if table_size == 0
            && self.swarm.connected_peers().next().is_none()
            && now >= self.state.next_redial
        {
            tracing::debug!(backoff = ?self.state.redial_backoff, "isolated, re-dialing seeds");
            self.dial_seeds();
            self.state.next_redial = now + self.state.redial_backoff;
            self.state.redial_backoff = (self.state.redial_backoff * 2).min(MAX_REDIAL_BACKOFF);
        }
        let due = self
            .state
            .last_known_write
            .is_none_or(|t| now.duration_since(t) >= KNOWN_PEERS_WRITE_INTERVAL);
        let writing = self
            .state
            .known_write
            .as_ref()
            .is_some_and(|h| !h.is_finished());
        if self.state.known.is_dirty() && due && !writing {
            self.state.known_write = Some(self.write_known_peers());
            self.state.last_known_write = Some(now);
        }
    }

    /// Write the remembered peers on a blocking thread.
    fn write_known_peers(&mut self) -> JoinHandle<()> {
        let bytes = self.state.known.to_json();
        self.state.known.mark_clean();
        let path = self.state.data_dir.join(KNOWN_PEERS_FILE);
        tokio::task::spawn_blocking(move || {
            if let Err(e) = write_atomic(&path, &bytes, 0o644) {
                tracing::warn!(path = %path.display(), error = %e, "cannot save known peers");
            }
        })
    }

    pub(super) async fn shutdown(mut self) {
        tracing::debug!("network shutting down");
        for id in self.state.listeners.clone() {
            self.swarm.remove_listener(id);
        }
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        while !self.state.listeners.is_empty() {
            match tokio::time::timeout_at(deadline, self.swarm.select_next_some()).await {
                Ok(SwarmEvent::ListenerClosed { listener_id, .. }) => {
                    self.state.listeners.retain(|l| *l != listener_id);
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        if let Some(h) = self.state.known_write.take() {
            let _ = h.await;
        }
        if self.state.known.is_dirty() {
            let _ = self.write_known_peers().await;
        }
    }
}
