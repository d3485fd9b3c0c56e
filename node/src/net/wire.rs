//! What crosses the wire: one request/response pair per protocol, CBOR-encoded, each message
//! framed by a 4-byte big-endian length and checked against the protocol's size cap.
//!
//! Every response travels as [`Reply<T>`] (`Result<T, String>`): a peer that cannot serve a
//! request (its shard failed, its disk is full) says so instead of going silent.

use std::collections::BTreeMap;
use std::io;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::prelude::*;
use libp2p::StreamProtocol;
use libp2p::request_response;
use peersearch_indexer::{Document, Hit, TermStats};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Protocol of leaf searches.
pub const SEARCH_PROTOCOL: StreamProtocol = StreamProtocol::new("/peersearch/search/1.0.0");
/// Protocol of term statistics (the global BM25 statistics gathered by the root).
pub const STATS_PROTOCOL: StreamProtocol = StreamProtocol::new("/peersearch/stats/1.0.0");
/// Protocol of URL hand-offs to the owner of a site.
pub const HANDOFF_PROTOCOL: StreamProtocol = StreamProtocol::new("/peersearch/handoff/1.0.0");
/// Protocol of document replication to the other owners of a site.
pub const REPLICATE_PROTOCOL: StreamProtocol = StreamProtocol::new("/peersearch/replicate/1.0.0");
/// Protocol of replica digests (which documents of a site a peer holds).
pub const DIGEST_PROTOCOL: StreamProtocol = StreamProtocol::new("/peersearch/digest/1.0.0");

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// Size caps of one protocol, in bytes of CBOR payload (the 4-byte length prefix excluded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request accepted.
    pub request: u64,
    /// Largest response accepted.
    pub response: u64,
}

/// A query string is a few hundred bytes; the statistics sent along cover only its terms.
pub const SEARCH_LIMITS: Limits = Limits {
    request: 64 * KIB,
    // Up to a few hundred hits of title + snippet (a snippet is ~200-400 bytes).
    response: 4 * MIB,
};
/// Term statistics: per-term document frequencies of one query, both ways.
pub const STATS_LIMITS: Limits = Limits {
    request: 256 * KIB,
    response: 256 * KIB,
};
/// A hand-off batch: thousands of URLs (a URL is capped at a few KiB by the crawler).
pub const HANDOFF_LIMITS: Limits = Limits {
    request: 4 * MIB,
    response: 64 * KIB,
};
/// A replication batch: tens of documents (bodies are capped by the extractor) plus the
/// site's crawl state.
pub const REPLICATE_LIMITS: Limits = Limits {
    request: 16 * MIB,
    // The answer to a claim carries a site's crawl state.
    response: 16 * MIB,
};
/// A digest may list every URL of a site with its fetch time.
pub const DIGEST_LIMITS: Limits = Limits {
    request: 64 * KIB,
    response: 16 * MIB,
};

/// A response as it travels: the value, or the responder's error message.
pub type Reply<T> = Result<T, String>;

/// A leaf search request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchRequest {
    /// The user's query string.
    pub query: String,
    /// Most hits wanted (the root asks for `offset + limit`). A response with more hits is
    /// a protocol violation.
    pub top_k: u32,
    /// Network-wide statistics to score with; `None` scores with the leaf's own.
    pub stats: Option<TermStats>,
}

/// A leaf's answer to a [`SearchRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SearchResponse {
    /// Best first, at most `top_k`.
    pub hits: Vec<Hit>,
    /// How many documents of the leaf's shard matched.
    pub total_matches: u64,
}

/// Ask a peer for the statistics of the terms of a query on its shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsRequest {
    /// The user's query string.
    pub query: String,
}

/// One URL handed off to the owner of its site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffUrl {
    /// Absolute URL.
    pub url: String,
    /// Crawl depth at which it was found.
    pub depth: u32,
    /// Anchor text of the link that pointed at it, if any.
    pub anchor: Option<String>,
}

/// A batch of URLs for sites the receiver owns (or should forward to the owner).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffRequest {
    /// The URLs.
    pub urls: Vec<HandoffUrl>,
    /// How many times this batch was already forwarded (bounded by the node).
    pub hops: u8,
}

/// Acknowledgement of a hand-off, sent only after the receiver persisted the URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffResponse {
    /// How many URLs were accepted (persisted or forwarded).
    pub accepted: u32,
}

/// Documents (and deletions) of one site, sent by its primary to the other owners.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicateRequest {
    /// The site authority the batch belongs to (`host[:port]`).
    #[serde(default)]
    pub site: String,
    /// Documents to upsert.
    pub docs: Vec<Document>,
    /// Opaque crawl state of the site, so a replica can resume the crawl if it becomes
    /// the primary.
    pub site_state: Option<Vec<u8>>,
    /// URLs whose documents must be removed.
    pub deletes: Vec<String>,
    /// URLs the primary crawled and committed in this batch (with or without a document:
    /// redirects, errors and `noindex` pages count too), so a replica that takes the crawl
    /// over never fetches them again.
    #[serde(default)]
    pub crawled: Vec<String>,
    /// Links to pages of the same site found by the pages of this batch: a replica keeps
    /// them, so a primary killed between two crawl-state shares loses no part of the site.
    #[serde(default)]
    pub links: Vec<HandoffUrl>,
    /// The sender is the closest live owner of the site and is about to crawl it: the
    /// receiver stops crawling the site if it does (after its fetches in flight are
    /// committed) and answers with everything it knows of the site's crawl.
    #[serde(default)]
    pub claim: bool,
}

/// Acknowledgement of a replication batch, sent after the documents were stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicateResponse {
    /// How many documents were stored.
    pub stored: u32,
    /// The answer to a claim: the site's crawl state as the receiver knew it (JSON).
    #[serde(default)]
    pub site_state: Option<Vec<u8>>,
}

/// Ask a peer what it holds of one site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestRequest {
    /// The site authority.
    pub site: String,
    /// Whether to list every URL with its fetch time (expensive; only when hashes differ).
    #[serde(default)]
    pub list_urls: bool,
}

/// What a peer holds of one site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DigestResponse {
    /// Number of documents of the site.
    pub count: u64,
    /// Hash over the site's `(url, fetched_at)` pairs (its definition belongs to the node).
    pub hash: String,
    /// `(url, fetched_at)` pairs when asked for.
    pub urls: Option<Vec<(String, i64)>>,
}

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
    /// Find the [`WireError`] inside an `io::Error` produced by [`Codec`], if any.
    pub fn from_io(err: &io::Error) -> Option<&WireError> {
        err.get_ref().and_then(|e| e.downcast_ref::<WireError>())
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
        let payload = read_frame(io, self.limits.response, &self.counter).await?;
        decode_payload(&payload).await
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
        let frame = encode_frame(resp, self.limits.response).await?;
        io.write_all(&frame).await?;
        self.counter.add_sent(frame.len() as u64);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::Cursor;
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
        }
    }

    #[tokio::test]
    async fn request_and_response_round_trip_and_are_counted() {
        let (mut c, counter) = codec(SEARCH_LIMITS);
        let req = SearchRequest {
            query: "rust async".into(),
            top_k: 10,
            stats: Some(TermStats::default()),
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
    fn protocols_are_versioned_peersearch_names() {
        for p in [
            SEARCH_PROTOCOL,
            STATS_PROTOCOL,
            HANDOFF_PROTOCOL,
            REPLICATE_PROTOCOL,
            DIGEST_PROTOCOL,
        ] {
            assert!(p.as_ref().starts_with("/peersearch/"));
            assert!(p.as_ref().ends_with("/1.0.0"));
        }
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
