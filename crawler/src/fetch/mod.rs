//! HTTP fetching behind an SSRF guard: timeouts, a decompressed-size cap and
//! redirects followed by hand so that every hop is checked again (by the guard, and by
//! a gate the caller passes: the crawl loop's robots.txt check).

mod body;
mod guard;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{
    CONTENT_TYPE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED, LOCATION,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::normalize::{NormalizedUrl, normalize};

pub(crate) use body::Overflow;
use body::read_body;
#[cfg(test)]
pub(crate) use guard::test_seam::StandIns;
use guard::{BLOCKED_MARKER, BlockedAddress, GuardedResolver, check_literal};
pub use guard::{DnsResolver, forbidden_reason};

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
    /// Resolves host names in place of the system resolver (`None`: the system's). Its
    /// answers still pass the SSRF guard.
    pub resolver: Option<DnsResolver>,
    /// Test builds only: loopback sockets dialled in place of public addresses the guard
    /// let through (see the guard's `test_seam`).
    #[cfg(test)]
    pub(crate) stand_ins: StandIns,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            allow_private_addresses: false,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            user_agent: default_user_agent(),
            local_address: None,
            resolver: None,
            #[cfg(test)]
            stand_ins: StandIns::default(),
        }
    }
}

/// Validators of a page fetched before (its `ETag` and `Last-Modified` headers): a
/// conditional fetch sends them back, and a server that has nothing new answers 304.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validators {
    /// The `ETag` header, as sent (quotes and `W/` included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// The `Last-Modified` header, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
}

/// Longest validator kept; a longer header is junk and is not sent back.
const MAX_VALIDATOR_BYTES: usize = 256;

impl Validators {
    /// The validators of a response's headers.
    fn of(headers: &reqwest::header::HeaderMap) -> Validators {
        let get = |name| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty() && v.len() <= MAX_VALIDATOR_BYTES)
                .map(str::to_owned)
        };
        Validators {
            etag: get(ETAG),
            last_modified: get(LAST_MODIFIED),
        }
    }

    /// True when there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }
}

/// A successful (2xx) response, or a 304 to a conditional fetch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FetchResult {
    /// The URL that answered, after redirects.
    pub final_url: NormalizedUrl,
    /// HTTP status (2xx, or 304 when a conditional fetch found nothing new: the body is
    /// then empty).
    pub status: u16,
    /// The validators the answer carries.
    #[serde(default)]
    pub validators: Validators,
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

/// The HTTP client of the crawler. Cheap to clone.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    config: Arc<FetchConfig>,
    /// Decompressed body bytes pulled from responses by this fetcher and its clones.
    body_bytes: Arc<AtomicU64>,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("config", &self.config)
            .finish()
    }
}

/// The `tracing` target of the crawler's network log: one "crawler request" event per HTTP
/// request (its `host` and `port`), one "crawler lookup" event per name lookup (its `host`
/// and the `addrs` that may be dialled), both at debug level.
pub const NET_LOG_TARGET: &str = "peersearch_crawler::net";

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
            .dns_resolver(GuardedResolver::new(&config))
            .local_address(config.local_address)
            .build()
            .map_err(|e| Error::Client(e.to_string()))?;
        Ok(Fetcher {
            client,
            config: Arc::new(config),
            body_bytes: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The settings this fetcher was built with.
    pub fn config(&self) -> &FetchConfig {
        &self.config
    }

    /// Decompressed body bytes read so far by this fetcher and its clones, all fetches
    /// together (a body over the cap counts up to where reading stopped).
    pub fn body_bytes_read(&self) -> u64 {
        self.body_bytes.load(Ordering::Relaxed)
    }

    /// Fetches `url`, following redirects, within the configured deadline and body cap.
    /// Non-2xx answers are [`Error::Http`].
    pub async fn fetch(&self, url: &NormalizedUrl) -> Result<FetchResult> {
        self.fetch_gated(url, no_gate).await
    }

    /// [`Fetcher::fetch`], asking `gate` about every redirect target before requesting
    /// it (after the SSRF guard's literal check); an error from the gate ends the fetch
    /// with that error. The crawl loop passes robots.txt of the target's host.
    pub async fn fetch_gated<G, F>(&self, url: &NormalizedUrl, gate: G) -> Result<FetchResult>
    where
        G: FnMut(NormalizedUrl) -> F,
        F: Future<Output = Result<()>>,
    {
        self.fetch_limited(url, self.config.max_body_bytes, Overflow::Fail, gate)
            .await
    }

    /// [`Fetcher::fetch_gated`] of a page fetched before: `validators` go out as
    /// `If-None-Match` / `If-Modified-Since`, and a 304 answer is a [`FetchResult`] with
    /// status 304 and an empty body.
    pub async fn fetch_conditional<G, F>(
        &self,
        url: &NormalizedUrl,
        validators: &Validators,
        gate: G,
    ) -> Result<FetchResult>
    where
        G: FnMut(NormalizedUrl) -> F,
        F: Future<Output = Result<()>>,
    {
        let limit = self.config.max_body_bytes;
        self.fetch_chain(url, limit, Overflow::Fail, Some(validators), gate)
            .await
    }

    pub(crate) async fn fetch_limited<G, F>(
        &self,
        url: &NormalizedUrl,
        limit: usize,
        overflow: Overflow,
        gate: G,
    ) -> Result<FetchResult>
    where
        G: FnMut(NormalizedUrl) -> F,
        F: Future<Output = Result<()>>,
    {
        self.fetch_chain(url, limit, overflow, None, gate).await
    }

    /// [`Fetcher::follow_chain`] within the configured deadline: the one place every fetch
    /// gets its deadline.
    async fn fetch_chain<G, F>(
        &self,
        url: &NormalizedUrl,
        limit: usize,
        overflow: Overflow,
        validators: Option<&Validators>,
        gate: G,
    ) -> Result<FetchResult>
    where
        G: FnMut(NormalizedUrl) -> F,
        F: Future<Output = Result<()>>,
    {
        tokio::time::timeout(
            self.config.request_timeout,
            self.follow_chain(url, limit, overflow, validators, gate),
        )
        .await
        .map_err(|_| Error::Timeout)?
    }

    async fn follow_chain<G, F>(
        &self,
        url: &NormalizedUrl,
        limit: usize,
        overflow: Overflow,
        validators: Option<&Validators>,
        mut gate: G,
    ) -> Result<FetchResult>
    where
        G: FnMut(NormalizedUrl) -> F,
        F: Future<Output = Result<()>>,
    {
        let allow_private = self.config.allow_private_addresses;
        let mut current = url.clone();
        let mut redirects: Vec<NormalizedUrl> = Vec::new();
        let mut visited: HashSet<String> = HashSet::from([url.as_str().to_owned()]);
        check_literal(&current, allow_private)?;
        loop {
            // Every destination the crawler asks, for anyone who must know what it reaches
            // (`RUST_LOG=peersearch_crawler::net=debug`; the demo's test reads it).
            tracing::debug!(
                target: NET_LOG_TARGET,
                host = current.as_url().host_str().unwrap_or(""),
                port = current.as_url().port_or_known_default().unwrap_or(0),
                "crawler request"
            );
            let mut request = self
                .client
                .get(current.as_url().clone())
                .header(reqwest::header::ACCEPT, ACCEPT);
            // Sent on every hop: a hop that redirects ignores them.
            if let Some(v) = validators {
                if let Some(etag) = &v.etag {
                    request = request.header(IF_NONE_MATCH, etag);
                }
                if let Some(date) = &v.last_modified {
                    request = request.header(IF_MODIFIED_SINCE, date);
                }
            }
            let response = request.send().await.map_err(map_reqwest_error)?;
            let status = response.status();
            if status.as_u16() == 304 && validators.is_some_and(|v| !v.is_empty()) {
                return Ok(FetchResult {
                    final_url: current,
                    status: 304,
                    validators: Validators::of(response.headers()),
                    content_type: None,
                    x_robots_tag: Vec::new(),
                    body: Bytes::new(),
                    redirects,
                });
            }
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
                check_literal(&next, allow_private)?;
                gate(next.clone()).await?;
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
            let validators = Validators::of(response.headers());
            let body = read_body(response, limit, overflow, &self.body_bytes).await?;
            return Ok(FetchResult {
                final_url: current,
                status: status.as_u16(),
                validators,
                content_type,
                x_robots_tag,
                body,
                redirects,
            });
        }
    }
}

/// The gate of a fetch that checks nothing beyond the SSRF guard.
pub(crate) fn no_gate(_: NormalizedUrl) -> std::future::Ready<Result<()>> {
    std::future::ready(Ok(()))
}

pub(crate) fn map_reqwest_error(error: reqwest::Error) -> Error {
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
