//! URL normalization: one spelling per page, so the seen set and the site key agree.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

use crate::error::{Error, Result};
use crate::util::truncate_bytes;

/// Longest URL the crawler accepts, in bytes. 2048 is the de-facto limit of
/// old browsers and of sitemaps.org; longer URLs are almost always traps or junk.
pub const MAX_URL_BYTES: usize = 2048;

/// Query and path parameters that identify a session or a campaign, not a page.
const SESSION_PARAMS: &[&str] = &[
    "jsessionid",
    "phpsessid",
    "sid",
    "sessionid",
    "fbclid",
    "gclid",
];

/// A URL in canonical form: http(s), host present and lowercase, no fragment, no
/// credentials, default port elided, no session or tracking parameters, at most
/// [`MAX_URL_BYTES`] long. Build one with [`normalize`].
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NormalizedUrl(Url);

impl NormalizedUrl {
    /// The URL as a string.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The underlying [`Url`].
    pub fn as_url(&self) -> &Url {
        &self.0
    }

    /// Wraps a URL read back from our own store (already normalized).
    pub(crate) fn from_stored(url: Url) -> NormalizedUrl {
        NormalizedUrl(url)
    }

    /// The site key of this URL (see [`site_of`]).
    pub fn site(&self) -> String {
        site_of(&self.0)
    }
}

impl fmt::Display for NormalizedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for NormalizedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NormalizedUrl({})", self.as_str())
    }
}

impl AsRef<str> for NormalizedUrl {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl FromStr for NormalizedUrl {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        normalize(s, None)
    }
}

impl Serialize for NormalizedUrl {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for NormalizedUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        normalize(&s, None).map_err(serde::de::Error::custom)
    }
}

/// The site key of a URL: `host[:port]`, lowercase, default port elided.
/// The network hashes this string (SHA-256) to decide which peer crawls the site.
pub fn site_of(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    }
}

/// Parses `raw` (resolved against `base` when it is relative) into its canonical form.
pub fn normalize(raw: &str, base: Option<&Url>) -> Result<NormalizedUrl> {
    let raw = raw.trim();
    if raw.len() > MAX_URL_BYTES * 2 {
        return Err(Error::InvalidUrl("url too long".into()));
    }
    let mut url = match base {
        Some(base) => base.join(raw),
        None => Url::parse(raw),
    }
    .map_err(|e| Error::InvalidUrl(format!("{e}: {}", truncate_bytes(raw, 100))))?;

    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::InvalidUrl(format!(
            "unsupported scheme {}",
            url.scheme()
        )));
    }
    let host = match url.host_str() {
        Some(h) if !h.is_empty() => h.to_owned(),
        _ => return Err(Error::InvalidUrl("no host".into())),
    };
    // "example.com." and "example.com" are the same site.
    if host.len() > 1 && host.ends_with('.') {
        url.set_host(Some(host.trim_end_matches('.')))
            .map_err(|e| Error::InvalidUrl(e.to_string()))?;
    }
    // Credentials never belong in a crawled URL; ignoring the results is fine: they
    // only fail for URLs that cannot have credentials, which http(s) with a host can.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_fragment(None);
    // The url crate already elides a default port (`port()` is None for it) and
    // lowercases the host.

    strip_path_params(&mut url);
    strip_query_params(&mut url);
    if url.path().is_empty() {
        url.set_path("/");
    }
    if url.as_str().len() > MAX_URL_BYTES {
        return Err(Error::InvalidUrl(format!(
            "url longer than {MAX_URL_BYTES} bytes"
        )));
    }
    Ok(NormalizedUrl(url))
}

fn is_session_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.starts_with("utm_") || SESSION_PARAMS.contains(&name.as_str())
}

/// Removes `;jsessionid=...` style parameters from every path segment.
fn strip_path_params(url: &mut Url) {
    if !url.path().contains(';') {
        return;
    }
    let path: Vec<String> = url
        .path()
        .split('/')
        .map(|segment| {
            let mut parts = segment.split(';');
            let mut kept = parts.next().unwrap_or_default().to_owned();
            for param in parts {
                let name = param.split('=').next().unwrap_or_default();
                if !is_session_param(name) {
                    kept.push(';');
                    kept.push_str(param);
                }
            }
            kept
        })
        .collect();
    url.set_path(&path.join("/"));
}

/// Removes session and tracking parameters from the query, keeping the order and the
/// encoding of the others; drops the query when nothing is left.
fn strip_query_params(url: &mut Url) {
    let Some(query) = url.query() else { return };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter(|pair| !is_session_param(pair.split('=').next().unwrap_or_default()))
        .collect();
    if kept.is_empty() {
        url.set_query(None);
    } else {
        let joined = kept.join("&");
        url.set_query(Some(&joined));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_table() {
        let cases = [
            ("http://Example.COM", "http://example.com/"),
            ("HTTP://example.com:80/a", "http://example.com/a"),
            ("https://example.com:443/a", "https://example.com/a"),
            ("https://example.com:8443/a", "https://example.com:8443/a"),
            ("http://example.com/a#frag", "http://example.com/a"),
            ("http://example.com/a?", "http://example.com/a"),
            (
                "http://example.com/a?utm_source=x&b=1",
                "http://example.com/a?b=1",
            ),
            (
                "http://example.com/a?UTM_Campaign=x&fbclid=1&gclid=2",
                "http://example.com/a",
            ),
            (
                "http://example.com/a?PHPSESSID=abc&q=rust&sid=1",
                "http://example.com/a?q=rust",
            ),
            (
                "http://example.com/shop;jsessionid=ABC123?x=1",
                "http://example.com/shop?x=1",
            ),
            ("http://example.com/a;v=2", "http://example.com/a;v=2"),
            ("http://example.com/a/./b/../c", "http://example.com/a/c"),
            ("http://user:pw@example.com/", "http://example.com/"),
            ("http://example.com./x", "http://example.com/x"),
            ("  http://example.com/x  ", "http://example.com/x"),
            ("http://[::1]:8080/", "http://[::1]:8080/"),
            (
                "http://example.com/?a=1&&b=2",
                "http://example.com/?a=1&b=2",
            ),
        ];
        for (raw, want) in cases {
            let got = normalize(raw, None).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(got.as_str(), want, "normalizing {raw}");
        }
    }

    #[test]
    fn relative_links_resolve_against_base() {
        let base = Url::parse("http://example.com/dir/page.html").unwrap();
        let cases = [
            ("other.html", "http://example.com/dir/other.html"),
            ("/root", "http://example.com/root"),
            ("../up", "http://example.com/up"),
            ("//cdn.example.org/x", "http://cdn.example.org/x"),
            ("?q=1", "http://example.com/dir/page.html?q=1"),
            ("#top", "http://example.com/dir/page.html"),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize(raw, Some(&base)).unwrap().as_str(), want);
        }
    }

    #[test]
    fn rejects_what_cannot_be_crawled() {
        let base = Url::parse("http://example.com/").unwrap();
        for raw in [
            "mailto:a@example.com",
            "javascript:alert(1)",
            "ftp://example.com/",
            "data:text/html,hi",
            "file:///etc/passwd",
        ] {
            assert!(normalize(raw, Some(&base)).is_err(), "{raw} accepted");
        }
        assert!(normalize("not a url", None).is_err());
        let long = format!("http://example.com/{}", "a".repeat(MAX_URL_BYTES));
        assert!(matches!(normalize(&long, None), Err(Error::InvalidUrl(_))));
    }

    #[test]
    fn site_key_is_host_and_non_default_port() {
        let site = |u: &str| normalize(u, None).unwrap().site();
        assert_eq!(site("http://Example.com/a"), "example.com");
        assert_eq!(site("https://example.com:443/"), "example.com");
        assert_eq!(site("http://example.com:8080/"), "example.com:8080");
        assert_eq!(site("http://127.0.0.1:3000/x"), "127.0.0.1:3000");
    }

    #[test]
    fn serde_round_trips_as_a_string() {
        let url = normalize("http://example.com/a?b=1", None).unwrap();
        let json = serde_json::to_string(&url).unwrap();
        assert_eq!(json, "\"http://example.com/a?b=1\"");
        let back: NormalizedUrl = serde_json::from_str(&json).unwrap();
        assert_eq!(back, url);
        assert!(serde_json::from_str::<NormalizedUrl>("\"ftp://x/\"").is_err());
    }

    #[test]
    fn normalizing_twice_changes_nothing() {
        let once = normalize("HTTP://A.example:80/x/../y?utm_x=1&k=v#f", None).unwrap();
        let twice = normalize(once.as_str(), None).unwrap();
        assert_eq!(once, twice);
    }
}
