//! The XML documents: the OpenSearch 1.1 description and search results as RSS 2.0.
//! Written by hand; every interpolated string goes through [`crate::escape::escape`].

use std::fmt::Write as _;

use crate::api::{SearchParams, SearchResponse};
use crate::escape::{escape, sanitize_snippet};
use crate::params::feed_query;
use crate::text::{display_title, is_linkable};

/// `Content-Type` of the OpenSearch description.
pub const OPENSEARCH_CONTENT_TYPE: &str = "application/opensearchdescription+xml";
/// `Content-Type` of the RSS feed.
pub const RSS_CONTENT_TYPE: &str = "application/rss+xml; charset=utf-8";

/// Longest `Host` value used to build absolute URLs (RFC 1035 names are at most 253 bytes,
/// plus a port).
const MAX_HOST_LEN: usize = 261;

/// True when `host` looks like `name[:port]` or `[v6][:port]`: only the characters a host and
/// a port can have, so it is safe and meaningful inside an absolute URL.
pub fn is_plausible_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= MAX_HOST_LEN
        && host.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'_')
        })
}

/// `GET /opensearch.xml`: lets a browser add this peer as a search engine. `base` is
/// `scheme://host[/prefix]` without a trailing slash (the public URL, or the request's
/// validated `Host`), so the URLs point back at this peer as the browser reached it.
pub fn opensearch_description(base: &str) -> String {
    let host = base.split_once("://").map_or(base, |(_, rest)| rest);
    let base = escape(base);
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<OpenSearchDescription xmlns="http://a9.com/-/spec/opensearch/1.1/">
<ShortName>peersearch</ShortName>
<Description>Decentralized web search: results from a network of peers, through the peer at {host}.</Description>
<InputEncoding>UTF-8</InputEncoding>
<OutputEncoding>UTF-8</OutputEncoding>
<Image height="16" width="16" type="image/svg+xml">{base}/favicon.svg</Image>
<Url type="text/html" template="{base}/search?q={{searchTerms}}"/>
<Url type="application/rss+xml" template="{base}/search.rss?q={{searchTerms}}"/>
<Url type="application/json" template="{base}/api/search?q={{searchTerms}}"/>
<Url type="application/opensearchdescription+xml" rel="self" template="{base}/opensearch.xml"/>
</OpenSearchDescription>
"#,
        host = escape(host),
    )
}

/// `GET /search.rss?q=...`: the results of a search as an RSS 2.0 channel (with the OpenSearch
/// response elements, so feed readers and aggregators know the totals).
/// `base` as in [`opensearch_description`].
pub fn rss_feed(base: &str, params: &SearchParams, response: &SearchResponse) -> String {
    let qs = feed_query(params);
    let shown = (params.offset + response.hits.len()) as u64;
    let mut out = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom" xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">
<channel>
<title>peersearch: {q}</title>
<link>{html}</link>
<description>Search results for {q} from peersearch</description>
<atom:link rel="self" type="application/rss+xml" href="{feed}"/>
<atom:link rel="search" type="application/opensearchdescription+xml" href="{osd}"/>
<opensearch:totalResults>{total}</opensearch:totalResults>
<opensearch:startIndex>{start}</opensearch:startIndex>
<opensearch:itemsPerPage>{per_page}</opensearch:itemsPerPage>
<opensearch:Query role="request" searchTerms="{q}" startIndex="{start}"/>
"#,
        q = escape(&params.q),
        html = escape(&format!("{base}/search?{qs}")),
        feed = escape(&format!("{base}/search.rss?{qs}")),
        osd = escape(&format!("{base}/opensearch.xml")),
        total = response.total_hits.max(shown),
        start = params.offset + 1,
        per_page = params.limit,
    );
    for hit in &response.hits {
        let permalink = is_linkable(&hit.url);
        let _ = writeln!(
            out,
            "<item>\n<title>{title}</title>\n<link>{url}</link>\n<description>{description}</description>\n<guid isPermaLink=\"{permalink}\">{url}</guid>\n</item>",
            title = escape(display_title(hit)),
            url = escape(&hit.url),
            // The highlighted snippet as HTML, escaped as text (the RSS convention).
            description = escape(&sanitize_snippet(&hit.snippet)),
        );
    }
    out.push_str("</channel>\n</rss>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plausible_hosts_are_host_characters_only() {
        assert!(is_plausible_host("localhost:8080"));
        assert!(is_plausible_host("[::1]:8080"));
        assert!(is_plausible_host("search.example.org"));
        assert!(!is_plausible_host("evil\"><x"));
        assert!(!is_plausible_host("a/b"));
        assert!(!is_plausible_host(""));
    }

    #[test]
    fn opensearch_templates_use_the_host() {
        let xml = opensearch_description("http://localhost:8080");
        assert!(xml.contains(
            r#"<Url type="text/html" template="http://localhost:8080/search?q={searchTerms}"/>"#
        ));
    }
}
