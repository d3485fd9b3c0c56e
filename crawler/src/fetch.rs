//! HTTP fetching behind an SSRF guard: timeouts, a decompressed-size cap and
//! redirects followed by hand so that every hop is checked again.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{CONTENT_TYPE, LOCATION};
use serde::{Deserialize, Serialize};
use url::Host;

use crate::error::{Error, Result};
use crate::normalize::{NormalizedUrl, normalize};

/// Most redirects followed for one fetch. RFC 9309 asks robots.txt fetchers to
/// follow at least 5; browsers stop around 20; 10 covers real sites.
pub const MAX_REDIRECTS: usize = 10;

/// Default cap on a response body, after decompression. Pages larger than this are
/// almost never useful text, and the cap bounds memory per fetch.
pub const DEFAULT_MAX_BODY_BYTES: usize = 5 * 1024 * 1024;

/// Default total deadline for one fetch, redirects and body included.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// TCP + TLS connect deadline. A server that takes longer is effectively down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the crawler accepts: HTML first, anything else tolerated (robots.txt is text).
const ACCEPT: &str = "text/html,application/xhtml+xml;q=0.9,text/plain;q=0.5,*/*;q=0.1";

/// The default User-Agent header.
pub fn default_user_agent() -> String {
    format!(
        "peersearch/{} (+https://github.com/peersearch)",
        env!("CARGO_PKG_VERSION")
    )
}

/// Settings of a [`Fetcher`].
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// Allow loopback, private, link-local ... destinations (tests and the demo).
    pub allow_private_addresses: bool,
    /// Total deadline per fetch, including redirects and the body.
    pub request_timeout: Duration,
    /// Body cap, counted after decompression.
    pub max_body_bytes: usize,
    /// User-Agent header value.
    pub user_agent: String,
    /// Local address outgoing connections are bound to (a multi-homed host); `None` lets
    /// the system choose.
    pub local_address: Option<std::net::IpAddr>,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            allow_private_addresses: false,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            user_agent: default_user_agent(),
            local_address: None,
        }
    }
}

/// A successful (2xx) response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FetchResult {
    /// The URL that answered, after redirects.
    pub final_url: NormalizedUrl,
    /// HTTP status (2xx).
    pub status: u16,
    /// The Content-Type header, if any.
    pub content_type: Option<String>,
    /// Every X-Robots-Tag header value.
    pub x_robots_tag: Vec<String>,
    /// The decompressed body.
    #[serde(with = "bytes_serde")]
    pub body: Bytes,
    /// The redirect targets in order (empty when there was no redirect); the last one
    /// is `final_url`.
    pub redirects: Vec<NormalizedUrl>,
}

mod bytes_serde {
    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(b)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        Ok(Bytes::from(Vec::<u8>::deserialize(d)?))
    }
}

/// What to do when a body reaches the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Overflow {
    /// Fail with [`Error::TooLarge`].
    Fail,
    /// Keep the first `limit` bytes (robots.txt: RFC 9309 parses at least 500 KiB).
    Truncate,
}

/// Why an address may not be fetched, or `None` when it is a public address.
pub fn forbidden_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    if ip.is_unspecified() || a == 0 {
        Some("unspecified address")
    } else if ip.is_loopback() {
        Some("loopback address")
    } else if ip.is_private() {
        Some("private address")
    } else if ip.is_link_local() {
        Some("link-local address")
    } else if a == 100 && (64..128).contains(&b) {
        Some("shared (cgnat) address")
    } else if ip.is_broadcast() {
        Some("broadcast address")
    } else if ip.is_documentation() {
        Some("documentation address")
    } else if ip.is_multicast() {
        Some("multicast address")
    } else if a >= 240 {
        Some("reserved address")
    } else if a == 198 && (b == 18 || b == 19) {
        Some("benchmarking address")
    } else if a == 192 && b == 0 && c == 0 {
        Some("protocol assignment address")
    } else {
        None
    }
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let seg = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4);
    }
    // NAT64 (64:ff9b::/96) embeds an IPv4 address in the low 32 bits.
    if seg[0] == 0x64 && seg[1] == 0xff9b && seg[2..6] == [0, 0, 0, 0] {
        let [.., hi, lo] = seg;
        return forbidden_v4(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
    }
    if ip.is_unspecified() {
        Some("unspecified address")
    } else if ip.is_loopback() {
        Some("loopback address")
    } else if seg[0..6] == [0, 0, 0, 0, 0, 0] {
        // Deprecated IPv4-compatible addresses (::a.b.c.d).
        Some("ipv4-compatible address")
    } else if (seg[0] & 0xfe00) == 0xfc00 {
        Some("unique local address")
    } else if (seg[0] & 0xffc0) == 0xfe80 || (seg[0] & 0xffc0) == 0xfec0 {
        Some("link-local address")
    } else if (seg[0] & 0xff00) == 0xff00 {
        Some("multicast address")
    } else if seg[0] == 0x2001 && seg[1] == 0x0db8 {
        Some("documentation address")
    } else {
        None
    }
}

/// Prefix of the resolver's refusal message: reqwest/hyper wrap resolver errors in
/// ways that can hide the source chain, so the message is recognised by text too.
const BLOCKED_MARKER: &str = "blocked destination: ";

/// Error returned by [`GuardedResolver`] so it can be recognised in reqwest's error chain.
#[derive(Debug)]
struct BlockedAddress(String);

impl std::fmt::Display for BlockedAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BlockedAddress {}

/// A DNS resolver that drops forbidden addresses, so a public name pointing at a
/// private address (DNS rebinding included) is refused at connect time.
struct GuardedResolver {
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if allow_private {
                return Ok(Box::new(addrs.into_iter()) as Addrs);
            }
            let mut reason = "no address";
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|addr| match forbidden_reason(addr.ip()) {
                    Some(why) => {
                        reason = why;
                        false
                    }
                    None => true,
                })
                .collect();
            if allowed.is_empty() {
                tracing::debug!(host = %host, reason, "dns answer refused");
                return Err(Box::new(BlockedAddress(format!(
                    "{BLOCKED_MARKER}{host} resolves to a {reason}"
                )))
                .into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The HTTP client of the crawler. Cheap to clone.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    config: Arc<FetchConfig>,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("config", &self.config)
            .finish()
    }
}

impl Fetcher {
    /// Builds the client: rustls, gzip + brotli, connect timeout, no proxy, no
    /// automatic redirects, and the guarded resolver.
    pub fn new(config: FetchConfig) -> Result<Fetcher> {
        let client = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .connect_timeout(CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve names itself, bypassing the guard.
            .no_proxy()
            .gzip(true)
            .brotli(true)
            .dns_resolver(GuardedResolver {
                allow_private: config.allow_private_addresses,
            })
            .local_address(config.local_address)
            .build()
            .map_err(|e| Error::Client(e.to_string()))?;
        Ok(Fetcher {
            client,
            config: Arc::new(config),
        })
    }

    /// The settings this fetcher was built with.
    pub fn config(&self) -> &FetchConfig {
        &self.config
    }

    /// Fetches `url`, following redirects, within the configured deadline and body cap.
    /// Non-2xx answers are [`Error::Http`].
    pub async fn fetch(&self, url: &NormalizedUrl) -> Result<FetchResult> {
        self.fetch_limited(url, self.config.max_body_bytes, Overflow::Fail)
            .await
    }

    pub(crate) async fn fetch_limited(
        &self,
        url: &NormalizedUrl,
        limit: usize,
        overflow: Overflow,
    ) -> Result<FetchResult> {
        tokio::time::timeout(
            self.config.request_timeout,
            self.fetch_chain(url, limit, overflow),
        )
        .await
        .map_err(|_| Error::Timeout)?
    }

    /// Refuses IP-literal hosts that are forbidden (reqwest does not resolve literals,
    /// so the resolver never sees them).
    fn check_literal(&self, url: &NormalizedUrl) -> Result<()> {
        if self.config.allow_private_addresses {
            return Ok(());
        }
        let ip = match url.as_url().host() {
            Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
            _ => return Ok(()),
        };
        match forbidden_reason(ip) {
            Some(reason) => Err(Error::Blocked(format!("{ip} is a {reason}"))),
            None => Ok(()),
        }
    }

    async fn fetch_chain(
        &self,
        url: &NormalizedUrl,
        limit: usize,
        overflow: Overflow,
    ) -> Result<FetchResult> {
        let mut current = url.clone();
        let mut redirects: Vec<NormalizedUrl> = Vec::new();
        let mut visited: HashSet<String> = HashSet::from([url.as_str().to_owned()]);
        loop {
            self.check_literal(&current)?;
            let response = self
                .client
                .get(current.as_url().clone())
                .header(reqwest::header::ACCEPT, ACCEPT)
                .send()
                .await
                .map_err(map_reqwest_error)?;
            let status = response.status();
            if matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
                && let Some(location) = response.headers().get(LOCATION)
            {
                if redirects.len() >= MAX_REDIRECTS {
                    return Err(Error::TooManyRedirects);
                }
                let location = location
                    .to_str()
                    .map_err(|_| Error::InvalidUrl("redirect location is not text".into()))?;
                let next = normalize(location, Some(current.as_url()))?;
                if !visited.insert(next.as_str().to_owned()) {
                    return Err(Error::RedirectLoop(next.to_string()));
                }
                tracing::trace!(from = %current, to = %next, "following redirect");
                redirects.push(next.clone());
                current = next;
                continue;
            }
            if !status.is_success() {
                return Err(Error::Http(status.as_u16()));
            }
            let content_type = response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let x_robots_tag = response
                .headers()
                .get_all("x-robots-tag")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(str::to_owned)
                .collect();
            let body = read_body(response, limit, overflow).await?;
            return Ok(FetchResult {
                final_url: current,
                status: status.as_u16(),
                content_type,
                x_robots_tag,
                body,
                redirects,
            });
        }
    }
}

/// Reads the (decompressed) body chunk by chunk, stopping as soon as the cap is passed.
async fn read_body(
    mut response: reqwest::Response,
    limit: usize,
    overflow: Overflow,
) -> Result<Bytes> {
    // Shortcut: a declared length over the cap fails before reading anything. With
    // compression the header gives the compressed size, so it is only a lower bound.
    if overflow == Overflow::Fail
        && let Some(len) = response.content_length()
        && len > limit as u64
    {
        return Err(Error::TooLarge { limit });
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(map_reqwest_error)? {
        if body.len() + chunk.len() > limit {
            match overflow {
                Overflow::Fail => return Err(Error::TooLarge { limit }),
                Overflow::Truncate => {
                    body.extend_from_slice(&chunk[..limit - body.len()]);
                    break;
                }
            }
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn map_reqwest_error(error: reqwest::Error) -> Error {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    let mut chain = Vec::new();
    while let Some(e) = source {
        if let Some(blocked) = e.downcast_ref::<BlockedAddress>() {
            return Error::Blocked(blocked.0.trim_start_matches(BLOCKED_MARKER).to_owned());
        }
        let text = e.to_string();
        if let Some(at) = text.find(BLOCKED_MARKER) {
            return Error::Blocked(text[at + BLOCKED_MARKER.len()..].to_owned());
        }
        chain.push(text);
        source = e.source();
    }
    if error.is_timeout() {
        return Error::Timeout;
    }
    chain.dedup();
    Error::Network(chain.join(": "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::extract::Path;
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::response::{IntoResponse, Redirect, Response};
    use axum::routing::get;
    use std::io::Write;

    use crate::test_util::serve;

    fn gzip_of_zeros(len: usize) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1024 * 1024];
        let mut left = len;
        while left > 0 {
            let n = left.min(zeros.len());
            enc.write_all(&zeros[..n]).unwrap();
            left -= n;
        }
        enc.finish().unwrap()
    }

    fn test_router() -> Router {
        Router::new()
            .route(
                "/ok",
                get(|| async {
                    (
                        [
                            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                            (header::HeaderName::from_static("x-robots-tag"), "noarchive"),
                        ],
                        "<title>ok</title>",
                    )
                }),
            )
            .route(
                "/chain/{n}",
                get(|Path(n): Path<u32>| async move {
                    if n == 0 {
                        Redirect::temporary("/ok").into_response()
                    } else {
                        Redirect::permanent(&format!("/chain/{}", n - 1)).into_response()
                    }
                }),
            )
            .route("/loop/a", get(|| async { Redirect::temporary("/loop/b") }))
            .route("/loop/b", get(|| async { Redirect::temporary("/loop/a") }))
            .route(
                "/to-mailto",
                get(|| async { Redirect::temporary("mailto:a@example.com") }),
            )
            .route("/missing", get(|| async { StatusCode::NOT_FOUND }))
            .route(
                "/big",
                get(|| async {
                    // Streamed without Content-Length so the streaming cap does the work.
                    let chunk = Bytes::from(vec![b'a'; 1024 * 1024]);
                    let stream = futures::stream::iter(
                        (0..20).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
                    );
                    Body::from_stream(stream)
                }),
            )
            .route(
                "/big-declared",
                get(|| async { vec![b'a'; 6 * 1024 * 1024] }),
            )
            .route(
                "/bomb",
                get(|| async {
                    let mut headers = HeaderMap::new();
                    headers.insert(header::CONTENT_ENCODING, "gzip".parse().unwrap());
                    headers.insert(header::CONTENT_TYPE, "text/html".parse().unwrap());
                    (headers, gzip_of_zeros(50 * 1024 * 1024))
                }),
            )
            .route(
                "/stall",
                get(|| async {
                    let first = futures::stream::once(async {
                        Ok::<_, std::io::Error>(Bytes::from_static(b"<html>"))
                    });
                    let stream = futures::StreamExt::chain(first, futures::stream::pending());
                    Response::new(Body::from_stream(stream))
                }),
            )
    }

    fn fetcher(allow_private: bool) -> Fetcher {
        Fetcher::new(FetchConfig {
            allow_private_addresses: allow_private,
            request_timeout: Duration::from_secs(10),
            ..FetchConfig::default()
        })
        .unwrap()
    }

    fn url(s: &str) -> NormalizedUrl {
        normalize(s, None).unwrap()
    }

    #[test]
    fn classifies_forbidden_addresses() {
        let forbidden = [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "192.0.2.1",
            "224.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
        ];
        for ip in forbidden {
            assert!(
                forbidden_reason(ip.parse().unwrap()).is_some(),
                "{ip} allowed"
            );
        }
        for ip in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(forbidden_reason(ip.parse().unwrap()), None, "{ip} refused");
        }
    }

    #[tokio::test]
    async fn guard_refuses_loopback_literal_by_default() {
        let base = serve(test_router()).await;
        let err = fetcher(false)
            .fetch(&url(&format!("{base}/ok")))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Blocked(_)), "{err:?}");
    }

    #[tokio::test]
    async fn guard_refuses_hostname_resolving_to_loopback() {
        let base = serve(test_router()).await;
        let port = base.rsplit(':').next().unwrap();
        let err = fetcher(false)
            .fetch(&url(&format!("http://localhost:{port}/ok")))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Blocked(_)), "{err:?}");
    }

    #[tokio::test]
    async fn guard_allows_private_addresses_when_configured() {
        let base = serve(test_router()).await;
        let port = base.rsplit(':').next().unwrap();
        let f = fetcher(true);
        let res = f.fetch(&url(&format!("{base}/ok"))).await.unwrap();
        assert_eq!(res.status, 200);
        assert_eq!(&res.body[..], b"<title>ok</title>");
        assert_eq!(
            res.content_type.as_deref(),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(res.x_robots_tag, vec!["noarchive".to_owned()]);
        assert!(res.redirects.is_empty());
        let res = f
            .fetch(&url(&format!("http://localhost:{port}/ok")))
            .await
            .unwrap();
        assert_eq!(res.status, 200);
    }

    #[tokio::test]
    async fn follows_a_redirect_chain() {
        let base = serve(test_router()).await;
        let res = fetcher(true)
            .fetch(&url(&format!("{base}/chain/3")))
            .await
            .unwrap();
        assert_eq!(res.final_url.as_str(), format!("{base}/ok"));
        let hops: Vec<String> = res.redirects.iter().map(|u| u.to_string()).collect();
        assert_eq!(
            hops,
            vec![
                format!("{base}/chain/2"),
                format!("{base}/chain/1"),
                format!("{base}/chain/0"),
                format!("{base}/ok"),
            ]
        );
    }

    #[tokio::test]
    async fn ten_redirects_are_followed_eleven_are_refused() {
        let base = serve(test_router()).await;
        let f = fetcher(true);
        // /chain/9 makes 10 redirects in all (9..0, then /ok).
        let res = f.fetch(&url(&format!("{base}/chain/9"))).await.unwrap();
        assert_eq!(res.redirects.len(), 10);
        let err = f
            .fetch(&url(&format!("{base}/chain/10")))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::TooManyRedirects), "{err:?}");
    }

    #[tokio::test]
    async fn redirect_loop_stops() {
        let base = serve(test_router()).await;
        let err = fetcher(true)
            .fetch(&url(&format!("{base}/loop/a")))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::RedirectLoop(_)), "{err:?}");
    }

    #[tokio::test]
    async fn redirect_to_other_scheme_is_refused() {
        let base = serve(test_router()).await;
        let err = fetcher(true)
            .fetch(&url(&format!("{base}/to-mailto")))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidUrl(_)), "{err:?}");
    }

    #[tokio::test]
    async fn non_2xx_is_an_http_error() {
        let base = serve(test_router()).await;
        let err = fetcher(true)
            .fetch(&url(&format!("{base}/missing")))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Http(404)), "{err:?}");
        assert!(!err.is_retryable());
        assert!(Error::Http(503).is_retryable());
    }

    #[tokio::test]
    async fn streamed_body_over_the_cap_is_too_large() {
        let base = serve(test_router()).await;
        let err = fetcher(true)
            .fetch(&url(&format!("{base}/big")))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::TooLarge { .. }), "{err:?}");
        let err = fetcher(true)
            .fetch(&url(&format!("{base}/big-declared")))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::TooLarge { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn gzip_bomb_stops_at_the_cap() {
        let base = serve(test_router()).await;
        assert!(gzip_of_zeros(50 * 1024 * 1024).len() < 200 * 1024);
        let err = fetcher(true)
            .fetch(&url(&format!("{base}/bomb")))
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::TooLarge { limit } if limit == DEFAULT_MAX_BODY_BYTES),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn truncating_fetch_keeps_the_first_bytes() {
        let base = serve(test_router()).await;
        let res = fetcher(true)
            .fetch_limited(&url(&format!("{base}/big")), 1000, Overflow::Truncate)
            .await
            .unwrap();
        assert_eq!(res.body.len(), 1000);
    }

    #[tokio::test]
    async fn stalling_server_hits_the_deadline() {
        let base = serve(test_router()).await;
        let f = Fetcher::new(FetchConfig {
            allow_private_addresses: true,
            request_timeout: Duration::from_millis(300),
            ..FetchConfig::default()
        })
        .unwrap();
        let err = f.fetch(&url(&format!("{base}/stall"))).await.unwrap_err();
        assert!(matches!(err, Error::Timeout), "{err:?}");
    }

    #[test]
    fn user_agent_names_the_crate_version() {
        let ua = default_user_agent();
        assert!(ua.starts_with("peersearch/"));
        assert!(ua.contains(env!("CARGO_PKG_VERSION")));
    }
}
