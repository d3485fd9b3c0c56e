//! Request-response events: inbound requests become [`Event`]s, answers resolve the pending
//! outbound requests, and failures keep peer health and misbehaviour scores up to date.

use std::time::Instant;

use libp2p::PeerId;
use libp2p::request_response::{self, OutboundFailure, ResponseChannel};
use tokio::sync::mpsc;

use super::{PendingMap, State};
use crate::net::behaviour::Behaviour;
use crate::net::client::{Event, Responder};
use crate::net::error::Error;
use crate::net::wire::{Reply, WireError};

pub(super) fn no_check<T>(_: &T, _: u32) -> crate::net::Result<()> {
    Ok(())
}

/// Who a failed outbound request is held against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Blame {
    /// The peer misbehaved: its response was over the protocol's cap or undecodable.
    Peer,
    /// The link to the peer failed (dial, timeout, closed stream, I/O): its health suffers,
    /// no misbehaviour point.
    Link,
    /// This peer's own request could not go out (over the protocol's cap, not encodable):
    /// nothing is held against the peer, which never saw it. Without this, one peer that
    /// inflates a root's request (a statistics reply full of junk keys) would get every
    /// honest leaf of that root banned.
    Us,
}

/// Map a request failure to an error, and tell who is to blame. Only a fault in reading the
/// peer's own response ([`WireError::in_response`]) counts against that peer.
fn classify_failure(error: &OutboundFailure) -> (Error, Blame) {
    match error {
        OutboundFailure::DialFailure => (Error::Unreachable("dial failed".into()), Blame::Link),
        OutboundFailure::Timeout => (Error::Timeout, Blame::Link),
        OutboundFailure::ConnectionClosed => {
            (Error::Disconnected("connection closed".into()), Blame::Link)
        }
        OutboundFailure::UnsupportedProtocols => (
            Error::Protocol("peer does not support the protocol".into()),
            Blame::Link,
        ),
        OutboundFailure::Io(e) => {
            let blame = if WireError::in_response(e).is_some() {
                Blame::Peer
            } else {
                Blame::Us
            };
            match WireError::from_io(e) {
                Some(WireError::TooLarge { size, max }) => (
                    Error::TooLarge {
                        size: *size,
                        max: *max,
                    },
                    blame,
                ),
                Some(WireError::Decode(msg)) => (Error::Protocol(msg.clone()), blame),
                None => (Error::Disconnected(e.to_string()), Blame::Link),
            }
        }
    }
}

/// Handle one event of a request-response behaviour: deliver inbound requests as events,
/// resolve pending outbound requests, and keep peer health up to date.
#[allow(clippy::too_many_arguments)]
pub(super) fn handle_rr<Req, Resp: Send + 'static>(
    state: &mut State,
    event: request_response::Event<Req, Reply<Resp>>,
    pending: fn(&mut State) -> &mut PendingMap<Resp>,
    protocol: &'static str,
    validate: fn(&Resp, u32) -> crate::net::Result<()>,
    inbound: fn(PeerId, Req, Responder<Resp>) -> Event,
    deliver: fn(&mut Behaviour, ResponseChannel<Reply<Resp>>, Reply<Resp>),
) {
    match event {
        request_response::Event::Message { peer, message, .. } => match message {
            request_response::Message::Request {
                request, channel, ..
            } => {
                // A request of a peersearch protocol that decoded: the sender is a live
                // peersearch peer, whether or not identify has told us yet.
                state.book.mark_peersearch(peer);
                state.book.on_connected(peer);
                let Some(slot) = state.in_flight.try_acquire(peer, protocol) else {
                    tracing::debug!(%peer, protocol, "too many requests in flight; refused");
                    let refused = Responder::new(channel, state.actions_tx.clone(), deliver, None);
                    let _ = refused.fail(super::super::inflight::BUSY);
                    return;
                };
                let responder =
                    Responder::new(channel, state.actions_tx.clone(), deliver, Some(slot));
                let event = inbound(peer, request, responder);
                if let Err(mpsc::error::TrySendError::Full(_)) = state.events.try_send(event) {
                    tracing::warn!(%peer, protocol, "event channel full, dropping request");
                }
            }
            request_response::Message::Response {
                request_id,
                response,
            } => {
                let Some(p) = pending(state).remove(&request_id) else {
                    return;
                };
                let result = match response {
                    Ok(resp) => match validate(&resp, p.top_k) {
                        Ok(()) => {
                            state.book.on_success(peer);
                            Ok(resp)
                        }
                        Err(err) => {
                            tracing::warn!(%peer, protocol, reason = %err, "invalid response");
                            misbehaved(state, peer);
                            Err(err)
                        }
                    },
                    Err(msg) => {
                        // The peer is alive and answered; its own failure is not ours to count.
                        state.book.on_success(peer);
                        Err(Error::Remote(msg))
                    }
                };
                let _ = p.reply.send(result);
            }
        },
        request_response::Event::OutboundFailure {
            peer,
            request_id,
            error,
            ..
        } => {
            let (err, blame) = classify_failure(&error);
            tracing::debug!(%peer, protocol, error = %err, ?blame, "request failed");
            if blame == Blame::Peer {
                misbehaved(state, peer);
            } else if blame == Blame::Us {
                tracing::warn!(%peer, protocol, error = %err, "own request not sent");
            } else if matches!(err, Error::Unreachable(_)) {
                if !state.book.is_dead(&peer) {
                    state.book.mark_dead(peer);
                    let _ = state.events.try_send(Event::PeerDead(peer));
                }
            } else if state.book.on_failure(peer) {
                let _ = state.events.try_send(Event::PeerDead(peer));
            }
            if let Some(p) = pending(state).remove(&request_id) {
                debug_assert_eq!(p.peer, peer);
                let _ = p.reply.send(Err(err));
            }
        }
        request_response::Event::InboundFailure { peer, error, .. } => {
            tracing::debug!(%peer, protocol, %error, "inbound request failed");
        }
        request_response::Event::ResponseSent { .. } => {}
    }
}

pub(super) fn misbehaved(state: &mut State, peer: PeerId) {
    if state.book.on_misbehaviour(peer, Instant::now()) {
        state.to_ban.push(peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::wire::{
        ByteCounter, Codec, Limits, SEARCH_PROTOCOL, SearchRequest, SearchResponse,
    };
    use futures::io::Cursor;
    use libp2p::request_response::Codec as _;
    use std::sync::Arc;

    type SearchCodec = Codec<SearchRequest, Reply<SearchResponse>>;

    fn codec() -> SearchCodec {
        let limits = Limits {
            request: 64,
            response: 64,
        };
        Codec::new(limits, Arc::new(ByteCounter::default()))
    }

    fn io_failure(err: std::io::Error) -> OutboundFailure {
        OutboundFailure::Io(err)
    }

    #[tokio::test]
    async fn only_a_fault_of_the_peers_own_response_counts_against_it() {
        // Our own request over the cap: not the peer's doing.
        let request = SearchRequest {
            query: "x".repeat(100),
            top_k: 10,
            stats: None,
            evidence: false,
            share: false,
        };
        let err = codec()
            .write_request(&SEARCH_PROTOCOL, &mut Vec::new(), request)
            .await
            .unwrap_err();
        let (e, blame) = classify_failure(&io_failure(err));
        assert_eq!(blame, Blame::Us, "{e}");
        assert!(matches!(e, Error::TooLarge { max: 64, .. }), "{e}");

        // The peer's response over the cap (from its length prefix), or undecodable.
        let frame = 1000u32.to_be_bytes().to_vec();
        let err = codec()
            .read_response(&SEARCH_PROTOCOL, &mut Cursor::new(frame))
            .await
            .unwrap_err();
        let (e, blame) = classify_failure(&io_failure(err));
        assert_eq!(blame, Blame::Peer, "{e}");
        assert!(matches!(e, Error::TooLarge { size: 1000, .. }), "{e}");
        let mut frame = 4u32.to_be_bytes().to_vec();
        frame.extend_from_slice(&[0xff; 4]);
        let err = codec()
            .read_response(&SEARCH_PROTOCOL, &mut Cursor::new(frame))
            .await
            .unwrap_err();
        let (e, blame) = classify_failure(&io_failure(err));
        assert_eq!(blame, Blame::Peer, "{e}");
        assert!(matches!(e, Error::Protocol(_)), "{e}");

        // A response cut short, a plain I/O error, a timeout: the link, not misbehaviour.
        let mut frame = 40u32.to_be_bytes().to_vec();
        frame.extend_from_slice(&[0xa0; 4]);
        let err = codec()
            .read_response(&SEARCH_PROTOCOL, &mut Cursor::new(frame))
            .await
            .unwrap_err();
        assert_eq!(classify_failure(&io_failure(err)).1, Blame::Link);
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(classify_failure(&io_failure(reset)).1, Blame::Link);
        for failure in [
            OutboundFailure::Timeout,
            OutboundFailure::DialFailure,
            OutboundFailure::ConnectionClosed,
            OutboundFailure::UnsupportedProtocols,
        ] {
            assert_eq!(classify_failure(&failure).1, Blame::Link, "{failure:?}");
        }
    }
}
