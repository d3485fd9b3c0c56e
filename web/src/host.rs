//! The `Host` check (DNS-rebinding defence) and the host names the server answers with.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Uri, Version, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::feeds::is_plausible_host;
use crate::proxy::PublicUrl;

/// The state of the [`check_host`] layer.
#[derive(Debug, Clone)]
pub(crate) struct HostGuard {
    /// Answer only requests addressed to a loopback name (set when bound to loopback) or to
    /// the public URL's host.
    pub(crate) loopback_only: bool,
    /// `--public-url`: its host is admitted too (the operator's own name, which a rebinding
    /// page cannot make a browser send).
    pub(crate) public: Option<PublicUrl>,
}

impl HostGuard {
    /// The guard of a server bound to `bound_addr`, reached by the public at `public`.
    pub(crate) fn for_bound_addr(bound_addr: SocketAddr, public: Option<PublicUrl>) -> Self {
        Self {
            loopback_only: bound_addr.ip().is_loopback(),
            public,
        }
    }

    /// True when a request addressed to `host` is answered.
    fn admits(&self, host: &str) -> bool {
        is_loopback_host(host) || self.public.as_ref().is_some_and(|p| p.admits_host(host))
    }
}

/// True when `host` (a `Host` header value) names this machine: `localhost`, `127.x.x.x` or
/// `[::1]`, with or without a port.
pub fn is_loopback_host(host: &str) -> bool {
    fn valid_port(port: &str) -> bool {
        !port.is_empty()
            && port.len() <= 5
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok()
    }
    let host = host.trim();
    if let Some(rest) = host.strip_prefix('[') {
        let Some((ip, after)) = rest.split_once(']') else {
            return false;
        };
        let port_ok = after.is_empty() || after.strip_prefix(':').is_some_and(valid_port);
        return port_ok && ip.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback());
    }
    let name = match host.rsplit_once(':') {
        Some((name, port)) if valid_port(port) => name,
        Some(_) => return false,
        None => host,
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// The host the client addressed: the `Host` header, else the URI's authority.
pub(crate) fn request_host(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| uri.authority().map(|a| a.as_str().to_owned()))
}

/// The host to put into absolute URLs: the request's own when plausible, else the bound
/// address.
pub(crate) fn public_host(bound_addr: SocketAddr, headers: &HeaderMap, uri: &Uri) -> String {
    request_host(headers, uri)
        .filter(|h| is_plausible_host(h))
        .unwrap_or_else(|| bound_addr.to_string())
}

/// DNS-rebinding defence: bound to loopback, answer only requests addressed to a loopback
/// name or to the host of `--public-url` (a reverse proxy that passes the public `Host` on).
/// A page on `evil.example` whose DNS later points at 127.0.0.1 sends `Host:
/// evil.example` and is refused with [`ApiError::ForbiddenHost`].
pub(crate) async fn check_host(
    State(guard): State<HostGuard>,
    request: Request,
    next: Next,
) -> Response {
    if guard.loopback_only {
        match request_host(request.headers(), request.uri()) {
            Some(host) if guard.admits(&host) => {}
            // HTTP/1.0 clients may omit Host; browsers never do.
            None if request.version() < Version::HTTP_11 => {}
            host => {
                tracing::debug!(host = ?host, "refused request for a foreign host");
                return ApiError::ForbiddenHost.into_response();
            }
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_recognised() {
        for host in [
            "localhost",
            "localhost:8080",
            "LOCALHOST:1",
            "localhost.",
            "127.0.0.1",
            "127.0.0.1:8080",
            "127.1.2.3:65535",
            "[::1]",
            "[::1]:8080",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "evil.localhost",
            "10.0.0.1",
            "0.0.0.0",
            "[::2]:80",
            "[::1",
            "localhost:99999",
            "localhost:",
            "localhost:abc",
            "",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn public_host_falls_back_to_the_bound_address() {
        let bound: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let uri = Uri::from_static("/opensearch.xml");
        let mut headers = HeaderMap::new();
        assert_eq!(public_host(bound, &headers, &uri), "127.0.0.1:8080");
        headers.insert(header::HOST, "localhost:9000".parse().unwrap());
        assert_eq!(public_host(bound, &headers, &uri), "localhost:9000");
        headers.insert(header::HOST, "evil\"><x".parse().unwrap());
        assert_eq!(public_host(bound, &headers, &uri), "127.0.0.1:8080");
    }
}
