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

/// Map a request failure to an error, and tell whether the peer misbehaved.
fn classify_failure(error: &OutboundFailure) -> (Error, bool) {
    match error {
        OutboundFailure::DialFailure => (Error::Unreachable("dial failed".into()), false),
        OutboundFailure::Timeout => (Error::Timeout, false),
        OutboundFailure::ConnectionClosed => {
            (Error::Disconnected("connection closed".into()), false)
        }
        OutboundFailure::UnsupportedProtocols => (
            Error::Protocol("peer does not support the protocol".into()),
            false,
        ),
        OutboundFailure::Io(e) => match WireError::from_io(e) {
            Some(WireError::TooLarge { size, max }) => (
                Error::TooLarge {
                    size: *size,
                    max: *max,
                },
                true,
            ),
            Some(WireError::Decode(msg)) => (Error::Protocol(msg.clone()), true),
            None => (Error::Disconnected(e.to_string()), false),
        },
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
                let responder = Responder::new(channel, state.actions_tx.clone(), deliver);
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
            let (err, misbehaving) = classify_failure(&error);
            tracing::debug!(%peer, protocol, error = %err, "request failed");
            if misbehaving {
                misbehaved(state, peer);
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

fn misbehaved(state: &mut State, peer: PeerId) {
    if state.book.on_misbehaviour(peer, Instant::now()) {
        state.to_ban.push(peer);
    }
}
