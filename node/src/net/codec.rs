//! The request-response codec: length-prefixed CBOR with a size cap per protocol and
//! direction, and byte counts per protocol.

use std::collections::BTreeMap;
use std::io;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::prelude::*;
use libp2p::StreamProtocol;
use libp2p::request_response;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::wire::{Limits, SEARCH_PROTOCOL};

/// Why a frame was rejected by the codec. Carried inside the `io::Error` that
/// request-response reports, so the event loop can tell misbehaviour from a closed stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The length prefix exceeds the cap.
    #[error("frame of {size} bytes exceeds cap of {max}")]
    TooLarge {
        /// Claimed size.
        size: u64,
        /// Cap.
        max: u64,
    },
    /// The payload is not valid CBOR for the expected type.
    #[error("undecodable frame: {0}")]
    Decode(String),
}

impl WireError {
    /// Find the [`WireError`] inside an `io::Error` produced by [`Codec`], if any: in a frame
    /// this peer refused to write or in one it read.
    pub fn from_io(err: &io::Error) -> Option<&WireError> {
        let inner = err.get_ref()?;
        inner
            .downcast_ref::<WireError>()
            .or_else(|| inner.downcast_ref::<InResponse>().map(|r| &r.0))
    }

    /// The [`WireError`] inside an `io::Error` of [`Codec`]'s `read_response`: a fault of the
    /// response the other peer sent, the one kind of failure of an outbound request that the
    /// other peer is to blame for. `None` for the failures of this peer's own request (too
    /// large to write, not encodable) and for plain I/O errors.
    pub fn in_response(err: &io::Error) -> Option<&WireError> {
        err.get_ref()
            .and_then(|e| e.downcast_ref::<InResponse>())
            .map(|r| &r.0)
    }
}

/// A [`WireError`] found in a response read from the other peer (marked so that the event
/// loop does not blame a peer for this peer's own oversized request: both are `TooLarge`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct InResponse(WireError);

/// Mark a failure to read a response as the responder's ([`WireError::in_response`]).
fn in_response(err: io::Error) -> io::Error {
    match WireError::from_io(&err) {
        Some(w) => io::Error::new(io::ErrorKind::InvalidData, InResponse(w.clone())),
        None => err,
    }
}

impl From<WireError> for io::Error {
    fn from(e: WireError) -> Self {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

/// Bytes sent and received on one protocol (payload and framing).
#[derive(Debug, Default)]
pub struct ByteCounter {
    sent: AtomicU64,
    received: AtomicU64,
}

impl ByteCounter {
    /// `(sent, received)` so far.
    pub fn get(&self) -> (u64, u64) {
        (
            self.sent.load(Ordering::Relaxed),
            self.received.load(Ordering::Relaxed),
        )
    }
    fn add_sent(&self, n: u64) {
        self.sent.fetch_add(n, Ordering::Relaxed);
    }
    fn add_received(&self, n: u64) {
        self.received.fetch_add(n, Ordering::Relaxed);
    }
}

/// Byte counters of every request-response protocol, by protocol name.
#[derive(Debug, Default)]
pub struct Traffic {
    counters: std::sync::Mutex<BTreeMap<String, Arc<ByteCounter>>>,
}

impl Traffic {
    /// The counter of `protocol`, created on first use.
    pub fn counter(&self, protocol: &str) -> Arc<ByteCounter> {
        let mut map = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(protocol.to_owned()).or_default().clone()
    }

    /// `(sent, received)` bytes per protocol name.
    pub fn snapshot(&self) -> BTreeMap<String, (u64, u64)> {
        let map = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        map.iter().map(|(k, c)| (k.clone(), c.get())).collect()
    }
}

/// Length of the frame header: a big-endian `u32` payload length.
const HEADER_LEN: u64 = 4;

/// A request-response codec: length-prefixed CBOR with a cap per direction and byte counts.
///
/// CBOR itself is done by libp2p's `cbor` codec (cbor4ii) over an in-memory buffer; this
/// type adds the framing, so an oversized message is refused from its length prefix before
/// any of it is read, and a truncated one is told apart from an undecodable one.
pub struct Codec<Req, Resp> {
    limits: Limits,
    counter: Arc<ByteCounter>,
    _types: PhantomData<fn() -> (Req, Resp)>,
}

impl<Req, Resp> Clone for Codec<Req, Resp> {
    fn clone(&self) -> Self {
        Self {
            limits: self.limits,
            counter: self.counter.clone(),
            _types: PhantomData,
        }
    }
}

impl<Req, Resp> Codec<Req, Resp> {
    /// A codec with the given caps, counting bytes into `counter`.
    pub fn new(limits: Limits, counter: Arc<ByteCounter>) -> Self {
        Self {
            limits,
            counter,
            _types: PhantomData,
        }
    }

    /// The caps of this codec.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The cap this peer holds its own responses to: the protocol's, except for the hostile
    /// test peer that answers over it on purpose (`test-hooks`).
    fn response_write_cap(&self) -> u64 {
        #[cfg(feature = "test-hooks")]
        if super::hooks::answers_over_the_cap() {
            return u64::from(u32::MAX);
        }
        self.limits.response
    }
}

impl<Req, Resp> Codec<Req, Resp>
where
    Req: Serialize + DeserializeOwned + Send,
    Resp: Serialize + DeserializeOwned + Send,
{
    fn cbor(max: u64) -> request_response::cbor::codec::Codec<Req, Resp> {
        request_response::cbor::codec::Codec::default()
            .set_request_size_maximum(max)
            .set_response_size_maximum(max)
    }
}

/// Encode one value as a frame (length prefix + CBOR), refusing values over `max`.
pub async fn encode_frame<T: Serialize + DeserializeOwned + Send>(
    value: T,
    max: u64,
) -> io::Result<Vec<u8>> {
    use request_response::Codec as _;
    let mut payload = Vec::new();
    Codec::<T, T>::cbor(max)
        .write_request(&SEARCH_PROTOCOL, &mut payload, value)
        .await?;
    let size = payload.len() as u64;
    if size > max || size > u64::from(u32::MAX) {
        return Err(WireError::TooLarge { size, max }.into());
    }
    let mut frame = Vec::with_capacity(payload.len() + HEADER_LEN as usize);
    frame.extend_from_slice(&(size as u32).to_be_bytes());
    frame.extend_from_slice(&payload);
    Ok(frame)
}

/// Decode one frame's payload (without its length prefix).
pub async fn decode_payload<T: Serialize + DeserializeOwned + Send>(
    payload: &[u8],
) -> io::Result<T> {
    use request_response::Codec as _;
    let mut reader = payload;
    Codec::<T, T>::cbor(payload.len() as u64)
        .read_request(&SEARCH_PROTOCOL, &mut reader)
        .await
        .map_err(|e| WireError::Decode(e.to_string()).into())
}

/// Read one frame from `io`: the length prefix, checked against `max`, then the payload.
async fn read_frame<T: AsyncRead + Unpin + Send>(
    io: &mut T,
    max: u64,
    counter: &ByteCounter,
) -> io::Result<Vec<u8>> {
    let mut header = [0u8; HEADER_LEN as usize];
    io.read_exact(&mut header).await?;
    let size = u64::from(u32::from_be_bytes(header));
    counter.add_received(HEADER_LEN);
    if size > max {
        return Err(WireError::TooLarge { size, max }.into());
    }
    let mut payload = vec![0u8; size as usize];
    io.read_exact(&mut payload).await?;
    counter.add_received(size);
    Ok(payload)
}

impl<Req, Resp> request_response::Codec for Codec<Req, Resp>
where
    Req: Serialize + DeserializeOwned + Send + 'static,
    Resp: Serialize + DeserializeOwned + Send + 'static,
{
    type Protocol = StreamProtocol;
    type Request = Req;
    type Response = Resp;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Req>
    where
        T: AsyncRead + Unpin + Send,
    {
        let payload = read_frame(io, self.limits.request, &self.counter).await?;
        decode_payload(&payload).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Resp>
    where
        T: AsyncRead + Unpin + Send,
    {
        let read = async {
            let payload = read_frame(io, self.limits.response, &self.counter).await?;
            decode_payload(&payload).await
        };
        read.await.map_err(in_response)
    }

    async fn write_request<T>(&mut self, _: &StreamProtocol, io: &mut T, req: Req) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let frame = encode_frame(req, self.limits.request).await?;
        io.write_all(&frame).await?;
        self.counter.add_sent(frame.len() as u64);
        Ok(())
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        resp: Resp,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let frame = encode_frame(resp, self.response_write_cap()).await?;
        io.write_all(&frame).await?;
        self.counter.add_sent(frame.len() as u64);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::wire::{Reply, SEARCH_LIMITS, SearchRequest, SearchResponse};
    use futures::io::Cursor;
    use peersearch_indexer::{Hit, TermStats};
    use request_response::Codec as _;

    type SearchCodec = Codec<SearchRequest, Reply<SearchResponse>>;

    fn codec(limits: Limits) -> (SearchCodec, Arc<ByteCounter>) {
        let counter = Arc::new(ByteCounter::default());
        (Codec::new(limits, counter.clone()), counter)
    }

    fn hit(i: usize) -> Hit {
        Hit {
            url: format!("http://example.com/{i}"),
            title: "t".into(),
            snippet: "s".into(),
            score: 1.0,
            evidence: None,
        }
    }

    #[tokio::test]
    async fn request_and_response_round_trip_and_are_counted() {
        let (mut c, counter) = codec(SEARCH_LIMITS);
        let req = SearchRequest {
            query: "rust async".into(),
            top_k: 10,
            stats: Some(TermStats::default()),
            evidence: true,
            share: true,
        };
        let mut buf = Vec::new();
        c.write_request(&SEARCH_PROTOCOL, &mut buf, req.clone())
            .await
            .unwrap();
        let sent = buf.len() as u64;
        let back = c
            .read_request(&SEARCH_PROTOCOL, &mut Cursor::new(buf))
            .await
            .unwrap();
        assert_eq!(back, req);

        let resp: Reply<SearchResponse> = Ok(SearchResponse {
            hits: vec![hit(1)],
            total_matches: 7,
            share: Some(TermStats::default()),
        });
        let mut buf = Vec::new();
        c.write_response(&SEARCH_PROTOCOL, &mut buf, resp.clone())
            .await
            .unwrap();
        let sent = sent + buf.len() as u64;
        let back = c
            .read_response(&SEARCH_PROTOCOL, &mut Cursor::new(buf))
            .await
            .unwrap();
        assert_eq!(back, resp);
        assert_eq!(counter.get(), (sent, sent));
    }

    #[tokio::test]
    async fn remote_error_round_trips() {
        let (mut c, _) = codec(SEARCH_LIMITS);
        let mut buf = Vec::new();
        c.write_response(&SEARCH_PROTOCOL, &mut buf, Err("shard failed".into()))
            .await
            .unwrap();
        let back = c
            .read_response(&SEARCH_PROTOCOL, &mut Cursor::new(buf))
            .await
            .unwrap();
        assert_eq!(back, Err("shard failed".to_string()));
    }

    #[tokio::test]
    async fn junk_bytes_are_a_decode_error() {
        let (mut c, _) = codec(SEARCH_LIMITS);
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for len in [1usize, 7, 64, 1000] {
            let mut frame = (len as u32).to_be_bytes().to_vec();
            for _ in 0..len {
                // xorshift: deterministic pseudo-random junk
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                frame.push(seed as u8);
            }
            let err = c
                .read_response(&SEARCH_PROTOCOL, &mut Cursor::new(frame))
                .await
                .unwrap_err();
            assert!(
                matches!(WireError::from_io(&err), Some(WireError::Decode(_))),
                "len {len}: {err}"
            );
        }
    }

    #[tokio::test]
    async fn deeply_nested_cbor_is_rejected_without_overflow() {
        let (mut c, _) = codec(SEARCH_LIMITS);
        // 100 000 nested one-element arrays (0x81).
        let payload = vec![0x81u8; 100_000];
        let mut frame = (payload.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&payload);
        let err = c
            .read_response(&SEARCH_PROTOCOL, &mut Cursor::new(frame))
            .await
            .unwrap_err();
        assert!(matches!(
            WireError::from_io(&err),
            Some(WireError::Decode(_))
        ));
    }

    #[tokio::test]
    async fn oversized_frame_is_refused_from_its_length_prefix() {
        let (mut c, counter) = codec(SEARCH_LIMITS);
        let claimed = SEARCH_LIMITS.response + 1;
        // Only the header is present: the codec must refuse before waiting for the body.
        let frame = (claimed as u32).to_be_bytes().to_vec();
        let err = c
            .read_response(&SEARCH_PROTOCOL, &mut Cursor::new(frame))
            .await
            .unwrap_err();
        assert_eq!(
            WireError::from_io(&err),
            Some(&WireError::TooLarge {
                size: claimed,
                max: SEARCH_LIMITS.response
            })
        );
        assert_eq!(counter.get(), (0, HEADER_LEN));
    }

    #[tokio::test]
    async fn writer_refuses_a_response_over_the_cap() {
        let (mut c, counter) = codec(Limits {
            request: 1024,
            response: 1024,
        });
        let resp: Reply<SearchResponse> = Ok(SearchResponse {
            hits: (0..100).map(hit).collect(),
            total_matches: 100,
            share: None,
        });
        let mut buf = Vec::new();
        let err = c
            .write_response(&SEARCH_PROTOCOL, &mut buf, resp)
            .await
            .unwrap_err();
        assert!(matches!(
            WireError::from_io(&err),
            Some(WireError::TooLarge { max: 1024, .. })
        ));
        assert!(buf.is_empty(), "nothing written");
        assert_eq!(counter.get(), (0, 0));
    }

    #[tokio::test]
    async fn truncated_frame_is_an_eof_not_a_decode_error() {
        let (mut c, _) = codec(SEARCH_LIMITS);
        let mut frame = 100u32.to_be_bytes().to_vec();
        frame.extend_from_slice(&[0xa0; 10]);
        let err = c
            .read_response(&SEARCH_PROTOCOL, &mut Cursor::new(frame))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(WireError::from_io(&err).is_none());
    }

    #[test]
    fn traffic_snapshot_lists_counters_by_protocol() {
        let traffic = Traffic::default();
        traffic.counter("/a").add_sent(3);
        traffic.counter("/a").add_received(4);
        traffic.counter("/b");
        let snap = traffic.snapshot();
        assert_eq!(snap.get("/a"), Some(&(3, 4)));
        assert_eq!(snap.get("/b"), Some(&(0, 0)));
    }
}
