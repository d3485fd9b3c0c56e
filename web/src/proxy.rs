//! The base of every absolute URL the peer serves: `--public-url` when set, else what a trusted
//! reverse proxy says (`Forwarded`, `X-Forwarded-Proto`, `X-Forwarded-Host`), else `http://` and
//! the request's `Host`.

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, Uri};

use crate::feeds::is_plausible_host;
use crate::host::public_host;

/// A validated `--public-url`: an absolute `http`/`https` URL without query or fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PublicUrl {
    /// Scheme, authority and path prefix without the trailing slash, e.g.
    /// `https://example.org/search-engine`; links are `{base}/search?...`.
    pub(crate) base: String,
    /// The authority as a `Host` header names it (`example.org`, `example.org:8443`), lowercase.
    pub(crate) host: String,
    /// The authority with the scheme's default port spelled out (`example.org:443`).
    pub(crate) host_with_port: String,
    /// The origin a browser sends in `Origin` (`https://example.org[:port]`).
    pub(crate) origin: String,
    /// The path prefix without the trailing slash (`/search-engine`; empty at the root).
    pub(crate) path_prefix: String,
}

/// Check and normalize a public URL: absolute `http` or `https`, a host, no user info, no query,
/// no fragment; the path ends with exactly one `/` (`https://a.example/x` →
/// `https://a.example/x/`). The error is a sentence fragment for the config error.
pub fn parse_public_url(text: &str) -> Result<String, String> {
    let url = url::Url::parse(text.trim()).map_err(|e| format!("not an absolute URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http:// or https:// URL".to_owned());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain a user name or password".to_owned());
    }
    if url.query().is_some() {
        return Err("must not have a query (?...)".to_owned());
    }
    if url.fragment().is_some() {
        return Err("must not have a fragment (#...)".to_owned());
    }
    let mut normalized = url.to_string();
    while normalized.ends_with("//") {
        normalized.pop();
    }
    if !normalized.ends_with('/') {
        normalized.push('/');
    }
    Ok(normalized)
}

impl PublicUrl {
    /// The parsed form of a URL that [`parse_public_url`] accepts.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let normalized = parse_public_url(text)?;
        let url = url::Url::parse(&normalized).map_err(|e| e.to_string())?;
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.clone(),
        };
        let port = url.port_or_known_default().unwrap_or(80);
        Ok(Self {
            path_prefix: url.path().trim_end_matches('/').to_owned(),
            origin: format!("{}://{authority}", url.scheme()),
            base: normalized.trim_end_matches('/').to_owned(),
            host_with_port: format!("{host}:{port}"),
            host: authority,
        })
    }

    /// True when a `Host` header value names this public URL's host (with its port, or the
    /// scheme's default port, or no port when the URL has none).
    pub(crate) fn admits_host(&self, host: &str) -> bool {
        let host = host.trim();
        host.eq_ignore_ascii_case(&self.host) || host.eq_ignore_ascii_case(&self.host_with_port)
    }
}

/// What decides the base of absolute URLs; built once from [`crate::WebConfig`].
#[derive(Debug, Clone, Default)]
pub(crate) struct UrlBase {
    /// `--public-url`.
    pub(crate) public: Option<PublicUrl>,
    /// `--trusted-proxy`: the client addresses whose forwarding headers are believed.
    pub(crate) trusted_proxies: Vec<IpAddr>,
}

impl UrlBase {
    /// The base (`scheme://host[/prefix]`, no trailing slash) of absolute URLs for a request
    /// from `client` (the TCP peer; `None` when unknown, which is never trusted). Precedence:
    /// public URL, then forwarding headers from a trusted proxy, then `http://` + `Host`.
    pub(crate) fn base(
        &self,
        bound_addr: SocketAddr,
        headers: &HeaderMap,
        uri: &Uri,
        client: Option<IpAddr>,
    ) -> String {
        if let Some(public) = &self.public {
            return public.base.clone();
        }
        let (mut proto, mut host) = (None, None);
        if client.is_some_and(|ip| self.is_trusted(ip)) {
            (proto, host) = forwarded(headers);
        }
        let proto = proto.unwrap_or("http");
        let host = host.unwrap_or_else(|| public_host(bound_addr, headers, uri));
        format!("{proto}://{host}")
    }

    /// The prefix of the peer's own root-relative links in the search pages and redirects:
    /// the public URL's path prefix (`/search-engine`), empty without one (links stay as they
    /// always were). Root-relative links resolve against whatever origin the browser used, so
    /// they work through the proxy and through an SSH tunnel alike.
    pub(crate) fn link_prefix(&self) -> &str {
        self.public.as_ref().map_or("", |p| p.path_prefix.as_str())
    }

    /// The absolute `href` of the pages' `<link rel="search">` when a public URL is set.
    pub(crate) fn opensearch_href(&self) -> Option<String> {
        self.public
            .as_ref()
            .map(|p| format!("{}/opensearch.xml", p.base))
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.trusted_proxies.iter().any(|t| t.to_canonical() == ip)
    }
}

/// The scheme and host a proxy forwarded: RFC 7239 `Forwarded` (its first element, the one the
/// proxy nearest the client added… in practice the only one) first, then `X-Forwarded-Proto` /
/// `X-Forwarded-Host` (first value). Values that are not `http`/`https` or not a plausible
/// host are ignored.
pub(crate) fn forwarded(headers: &HeaderMap) -> (Option<&'static str>, Option<String>) {
    let (mut proto, mut host) = (None, None);
    if let Some(value) = headers
        .get("forwarded")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
    {
        for (key, val) in forwarded_pairs(value) {
            if key.eq_ignore_ascii_case("proto") && proto.is_none() {
                proto = scheme(&val);
            } else if key.eq_ignore_ascii_case("host") && host.is_none() {
                host = Some(val).filter(|h| is_plausible_host(h));
            }
        }
    }
    let first = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_owned())
    };
    if proto.is_none() {
        proto = first("x-forwarded-proto").and_then(|p| scheme(&p));
    }
    if host.is_none() {
        host = first("x-forwarded-host").filter(|h| is_plausible_host(h));
    }
    (proto, host)
}

fn scheme(value: &str) -> Option<&'static str> {
    if value.eq_ignore_ascii_case("https") {
        Some("https")
    } else if value.eq_ignore_ascii_case("http") {
        Some("http")
    } else {
        None
    }
}

/// The `key=value` pairs of one `Forwarded` element (`;`-separated), values unquoted
/// (`"..."` with `\` escapes, RFC 7230 quoted-string).
fn forwarded_pairs(element: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut chars = element.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ';') {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ';' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.next() != Some('=') {
            continue;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => {
                        if let Some(escaped) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    c => value.push(c),
                }
            }
            while chars.peek().is_some_and(|c| *c != ';') {
                chars.next();
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ';' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        pairs.push((key.trim().to_owned(), value.trim().to_owned()));
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_urls_are_checked_and_normalized() {
        assert_eq!(
            parse_public_url("https://Search.Example.org").unwrap(),
            "https://search.example.org/"
        );
        assert_eq!(
            parse_public_url("https://example.org/search-engine").unwrap(),
            "https://example.org/search-engine/"
        );
        assert_eq!(
            parse_public_url("http://example.org:8443/a//").unwrap(),
            "http://example.org:8443/a/"
        );
        for bad in [
            "example.org",
            "/search",
            "ftp://example.org/",
            "https://example.org/?q=1",
            "https://example.org/#x",
            "https://user:pw@example.org/",
            "",
        ] {
            assert!(parse_public_url(bad).is_err(), "{bad}");
        }
        let p = PublicUrl::parse("https://example.org/search-engine/").unwrap();
        assert_eq!(p.base, "https://example.org/search-engine");
        assert_eq!(p.path_prefix, "/search-engine");
        assert_eq!(p.origin, "https://example.org");
        let root = PublicUrl::parse("https://example.org:8443").unwrap();
        assert_eq!(root.path_prefix, "");
        assert_eq!(root.origin, "https://example.org:8443");
        assert!(root.admits_host("example.org:8443"));
        assert!(!root.admits_host("example.org"));
        assert!(p.admits_host("example.org"));
        assert!(p.admits_host("EXAMPLE.org:443"));
        assert!(!p.admits_host("example.org:8080"));
        assert!(!p.admits_host("evil.example"));
    }

    #[test]
    fn forwarded_elements_are_parsed_with_quotes() {
        let pairs =
            forwarded_pairs(r#"for="[2001:db8::1]:4711";proto=https; host="a.example:8443""#);
        assert_eq!(
            pairs,
            vec![
                ("for".to_owned(), "[2001:db8::1]:4711".to_owned()),
                ("proto".to_owned(), "https".to_owned()),
                ("host".to_owned(), "a.example:8443".to_owned()),
            ]
        );
        assert_eq!(
            forwarded_pairs(r#"host="a\"b";x"#),
            vec![("host".to_owned(), "a\"b".to_owned())]
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            "forwarded",
            r#"Proto="HTTPS";Host="s.example", proto=http;host=other"#
                .parse()
                .unwrap(),
        );
        headers.insert("x-forwarded-proto", "http".parse().unwrap());
        assert_eq!(
            forwarded(&headers),
            (Some("https"), Some("s.example".to_owned()))
        );
        let mut headers = HeaderMap::new();
        headers.insert("forwarded", r#"host="evil\"><x""#.parse().unwrap());
        headers.insert("x-forwarded-proto", "gopher".parse().unwrap());
        assert_eq!(forwarded(&headers), (None, None));
    }
}
