//! The server-rendered HTML pages. No JavaScript, no asset from outside the peer; every string
//! that came from outside goes through [`crate::escape`].
//!
//! Pages are built with `format!` into one layout ([`layout`]): the markup is small enough that
//! a template engine would add more than it saves.

use std::fmt::Write as _;

use axum::http::StatusCode;

use crate::api::{
    Activity, CrawlErrorEntry, DocResponse, PeerInfo, Scope, SearchParams, SearchResponse,
    StatusResponse,
};
use crate::chart::activity_chart;
use crate::escape::{escape, query_string, sanitize_snippet};
use crate::params::{DEFAULT_LIMIT, MAX_OFFSET, feed_query};
use crate::text::{
    ago, display_title, format_duration, group_digits, is_linkable, iso8601, plural, short_peer_id,
    truncate_chars,
};

/// Longest title shown for a hit, in characters (crawled titles can be absurdly long).
const MAX_TITLE_CHARS: usize = 300;
/// Longest URL shown under a hit, in characters (the link keeps the full URL).
const MAX_SHOWN_URL_CHARS: usize = 200;
/// Longest main text the cached-text page shows, in bytes (the JSON API has up to 1 MiB):
/// escaped, the page stays within a few MiB even for text made only of `<` and `&`.
pub const MAX_PAGE_TEXT_BYTES: usize = 256 * 1024;
/// Most anchor texts and headings the cached-text page lists.
const MAX_PAGE_LIST_ITEMS: usize = 200;
/// A line of main text longer than this, in bytes, is broken into paragraphs at the next
/// sentence end (the extractor folds whitespace, so a page's text may be one long line).
const PARAGRAPH_BYTES: usize = 800;
/// How many page-number links the pagination shows at most.
const PAGE_LINKS: usize = 9;

/// The crate version shown in the footer.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Extra `<head>` content of one page.
#[derive(Debug, Default)]
pub struct Head {
    /// Extra elements, already escaped.
    pub extra: String,
}

/// The `<link rel="search">` of [`layout`].
const OPENSEARCH_LINK: &str = r#"title="peersearch" href="/opensearch.xml">"#;

/// `html` for a peer behind a public URL: the `<link rel="search">` points at
/// `opensearch_href` (absolute) when given, and the peer's own root-relative links
/// (`href="/..."`, `action="/..."`) get the public URL's path `prefix` (`/search-engine`) when
/// it is not empty. Text from outside is escaped (`"` is `&quot;`), so only the markup written
/// here can match.
pub fn rebase(html: String, prefix: &str, opensearch_href: Option<&str>) -> String {
    let mut html = match opensearch_href {
        Some(href) => html.replacen(
            OPENSEARCH_LINK,
            &format!(r#"title="peersearch" href="{}">"#, escape(href)),
            1,
        ),
        None => html,
    };
    if !prefix.is_empty() {
        let prefix = escape(prefix);
        html = html
            .replace("href=\"/", &format!("href=\"{prefix}/"))
            .replace("action=\"/", &format!("action=\"{prefix}/"));
    }
    html
}

/// The page skeleton shared by every page: landmarks, skip link, stylesheet, favicon and the
/// OpenSearch `<link rel="search">`.
pub fn layout(title: &str, head: &Head, main: &str) -> String {
    let title = escape(title);
    format!(
        r##"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · peersearch</title>
<link rel="stylesheet" href="/static/style.css">
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
<link rel="search" type="application/opensearchdescription+xml" title="peersearch" href="/opensearch.xml">
{extra}</head>
<body>
<a class="skip-link" href="#main">Skip to main content</a>
<header class="site-header">
<a class="brand" href="/">peersearch</a>
<nav aria-label="Site">
<ul>
<li><a href="/">Search</a></li>
<li><a href="/help">Help</a></li>
<li><a href="/status">This peer</a></li>
</ul>
</nav>
</header>
<main id="main">
{main}
</main>
<footer class="site-footer">
<p>peersearch {VERSION} · a decentralized web search engine: every peer crawls and indexes its share of the web and answers queries for the others. <a href="/opensearch.xml">Add to your browser</a></p>
</footer>
</body>
</html>
"##,
        extra = head.extra,
    )
}

/// The search form; the query is kept in the box.
pub(crate) fn search_form(q: &str, autofocus: bool, visible_label: bool) -> String {
    let autofocus = if autofocus { " autofocus" } else { "" };
    let label_class = if visible_label {
        ""
    } else {
        " class=\"visually-hidden\""
    };
    format!(
        r#"<form class="search-form" role="search" action="/search" method="get">
<label for="q"{label_class}>Search the web</label>
<input type="search" id="q" name="q" value="{q}" required{autofocus} autocomplete="off" spellcheck="false">
<button type="submit">Search</button>
</form>"#,
        q = escape(q),
    )
}

/// `GET /`.
pub fn home_page() -> String {
    let main = format!(
        r#"<div class="home">
<h1>peersearch</h1>
<p class="tagline">Search the web, answered by a network of peers.</p>
{form}
<p><a href="/help">How to search</a> · <a href="/status">This peer</a></p>
</div>"#,
        form = search_form("", true, false),
    );
    layout("Search", &Head::default(), &main)
}

/// `GET /help`.
pub fn help_page() -> String {
    let main = r#"<h1>How to search</h1>
<p>peersearch is a decentralized web search engine. Every peer crawls the part of the web that hashes to it, keeps those pages in a local index, and answers queries for the other peers. When you search, this peer asks the others, merges their answers by relevance and shows them here. Nothing is tracked and no page of this site loads anything from elsewhere.</p>
<h2>Operators</h2>
<dl class="help">
<dt><code>rust async</code></dt>
<dd>Pages with these words; pages that have all of them rank higher.</dd>
<dt><code>"exact phrase"</code></dt>
<dd>Pages where the words appear together, in this order.</dd>
<dt><code>+term</code></dt>
<dd>Only pages that contain <em>term</em>.</dd>
<dt><code>-term</code></dt>
<dd>Leave out pages that contain <em>term</em>.</dd>
<dt><code>site:example.com</code></dt>
<dd>Only pages from <em>example.com</em> and its subdomains.</dd>
</dl>
<h2>Results</h2>
<p>Every result shows the peer that answered with it; its <em>why</em> link shows how its score is made. When some peers do not answer in time the page says so: the results are then incomplete, and searching again may find more.</p>
<h2>Other ways in</h2>
<ul>
<li>Add peersearch to your browser's search engines: most browsers offer it after you visit this page (it publishes an <a href="/opensearch.xml">OpenSearch description</a>).</li>
<li>Every results page is also a feed: add <code>.rss</code> after <code>/search</code> in its address.</li>
<li>Programs can use the JSON API: <code>/api/search?q=…</code>.</li>
</ul>"#;
    layout("Help", &Head::default(), main)
}

/// `/search?...` for another page of the same search (not escaped).
pub(crate) fn results_href(params: &SearchParams, offset: usize) -> String {
    let limit = params.limit.to_string();
    let offset = offset.to_string();
    let mut pairs: Vec<(&str, &str)> = vec![("q", &params.q)];
    if params.limit != DEFAULT_LIMIT {
        pairs.push(("limit", &limit));
    }
    if params.scope == Scope::Local {
        pairs.push(("scope", "local"));
    }
    if offset != "0" {
        pairs.push(("offset", &offset));
    }
    format!("/search?{}", query_string(pairs))
}

/// `/why?...`: how the result `url` of the results page `params` scored (not escaped). The
/// page runs the same search again, so the link carries its query, page and scope (and the
/// page's size when it is not the default, so that the result is among those found again).
pub(crate) fn why_href(params: &SearchParams, url: &str) -> String {
    let limit = params.limit.to_string();
    let offset = params.offset.to_string();
    let mut pairs: Vec<(&str, &str)> = vec![("q", &params.q), ("url", url)];
    if params.offset != 0 {
        pairs.push(("offset", &offset));
    }
    if params.limit != DEFAULT_LIMIT {
        pairs.push(("limit", &limit));
    }
    if params.scope == Scope::Local {
        pairs.push(("scope", "local"));
    }
    format!("/why?{}", query_string(pairs))
}

/// `/search.rss?...` for the same search.
fn feed_href(params: &SearchParams) -> String {
    format!("/search.rss?{}", feed_query(params))
}

/// The pagination `<nav>`, or nothing when there is a single page.
fn pagination(params: &SearchParams, response: &SearchResponse) -> String {
    let limit = params.limit.max(1);
    let offset = params.offset;
    let shown_end = offset + response.hits.len();
    let more_known = response.total_hits > 0 && (shown_end as u64) < response.total_hits;
    let has_next = response.hits.len() >= limit
        && offset + limit <= MAX_OFFSET as usize
        && (response.total_hits == 0 || more_known);
    if offset == 0 && !has_next {
        return String::new();
    }
    let current = offset / limit + 1;
    let max_page = MAX_OFFSET as usize / limit + 1;
    let last = if response.total_hits > 0 {
        (response.total_hits as usize)
            .div_ceil(limit)
            .clamp(current, max_page)
    } else {
        current + usize::from(has_next)
    };
    let first_shown = current.saturating_sub(PAGE_LINKS / 2).max(1);
    let last_shown = (first_shown + PAGE_LINKS - 1).min(last);

    let mut out = String::from("<nav class=\"pagination\" aria-label=\"Pagination\">\n<ul>\n");
    if offset > 0 {
        let href = results_href(params, offset.saturating_sub(limit));
        let _ = writeln!(
            out,
            "<li><a href=\"{}\" rel=\"prev\">Previous</a></li>",
            escape(&href)
        );
    }
    for page in first_shown..=last_shown {
        if page == current && offset.is_multiple_of(limit) {
            let _ = writeln!(out, "<li><span aria-current=\"page\">{page}</span></li>");
        } else {
            let href = results_href(params, (page - 1) * limit);
            let _ = writeln!(
                out,
                "<li><a href=\"{}\" aria-label=\"Page {page}\">{page}</a></li>",
                escape(&href)
            );
        }
    }
    if has_next {
        let href = results_href(params, offset + limit);
        let _ = writeln!(
            out,
            "<li><a href=\"{}\" rel=\"next\">Next</a></li>",
            escape(&href)
        );
    }
    out.push_str("</ul>\n</nav>");
    out
}

/// `GET /search?q=...`: the results of a search.
pub fn results_page(params: &SearchParams, response: &SearchResponse) -> String {
    let mut main = search_form(&params.q, false, false);
    main.push('\n');
    let _ = writeln!(
        main,
        "<h1 class=\"visually-hidden\">Results for {}</h1>",
        escape(&params.q)
    );
    let shown = (params.offset + response.hits.len()) as u64;
    let total = response.total_hits.max(shown);
    let _ = writeln!(
        main,
        "<p class=\"summary\">{} in {} ms from {} of {}</p>",
        plural(total, "result", "results"),
        group_digits(response.took_ms),
        group_digits(response.peers.answered as u64),
        plural(response.peers.queried as u64, "peer", "peers"),
    );
    if response.partial {
        main.push_str(
            "<p class=\"notice\" role=\"status\">Some peers did not answer in time, so these results may be incomplete. Searching again may find more.</p>\n",
        );
    }
    if response.hits.is_empty() {
        let what = if params.offset > 0 {
            "No more results"
        } else {
            "No results"
        };
        let _ = writeln!(
            main,
            "<div class=\"empty\"><p>{what} for <strong>{}</strong>.</p>\n<p>Check the spelling, try fewer or more general words, or remove operators. See <a href=\"/help\">how to search</a>.</p></div>",
            escape(&params.q)
        );
    } else {
        let _ = writeln!(
            main,
            "<ol class=\"results\" start=\"{}\">",
            params.offset + 1
        );
        for hit in &response.hits {
            let title = escape(&truncate_chars(display_title(hit), MAX_TITLE_CHARS));
            let heading = if is_linkable(&hit.url) {
                format!(
                    "<a href=\"{}\" rel=\"noreferrer\">{title}</a>",
                    escape(&hit.url)
                )
            } else {
                title
            };
            let _ = writeln!(
                main,
                "<li class=\"result\">\n<h2>{heading}</h2>\n<p class=\"url\">{url}</p>\n<p class=\"snippet\">{snippet}</p>\n<p class=\"meta\">from peer <code title=\"{peer}\">{short}</code> · <a class=\"cached\" href=\"{cached}\">cached text</a> · <a class=\"why\" href=\"{why}\">why</a></p>\n</li>",
                cached = escape(&doc_href(&hit.url)),
                why = escape(&why_href(params, &hit.url)),
                url = escape(&truncate_chars(&hit.url, MAX_SHOWN_URL_CHARS)),
                snippet = sanitize_snippet(&hit.snippet),
                peer = escape(&hit.peer),
                short = escape(&short_peer_id(&hit.peer)),
            );
        }
        main.push_str("</ol>\n");
    }
    main.push_str(&pagination(params, response));
    let head = Head {
        extra: format!(
            "<link rel=\"alternate\" type=\"application/rss+xml\" title=\"peersearch results for {}\" href=\"{}\">\n",
            escape(&params.q),
            escape(&feed_href(params)),
        ),
    };
    layout(&format!("{} - search", params.q), &head, &main)
}

/// The link to the cached-text page of `url` (not escaped).
pub fn doc_href(url: &str) -> String {
    format!("/doc?{}", query_string([("url", url)]))
}

/// `s` cut to at most `max` bytes at a character boundary.
fn cut_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The main text as paragraphs: one per line, long lines broken after a sentence end.
fn paragraphs(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut rest = line.trim();
        while rest.len() > PARAGRAPH_BYTES {
            let split = rest[PARAGRAPH_BYTES..]
                .find(". ")
                .map(|i| PARAGRAPH_BYTES + i + 1);
            let Some(at) = split else { break };
            out.push(rest[..at].trim());
            rest = rest[at..].trim_start();
        }
        if !rest.is_empty() {
            out.push(rest);
        }
    }
    out
}

/// A newline-separated list (anchor texts, headings) as `<ul>`, bounded.
fn text_list(list: &str) -> String {
    let items: Vec<&str> = list
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mut out = String::from("<ul class=\"cached-list\">\n");
    for item in items.iter().take(MAX_PAGE_LIST_ITEMS) {
        let _ = writeln!(
            out,
            "<li>{}</li>",
            escape(&truncate_chars(item, MAX_TITLE_CHARS))
        );
    }
    out.push_str("</ul>");
    if items.len() > MAX_PAGE_LIST_ITEMS {
        let _ = write!(
            out,
            "\n<p class=\"meta\">and {} more</p>",
            group_digits((items.len() - MAX_PAGE_LIST_ITEMS) as u64)
        );
    }
    out
}

/// `GET /doc?url=...`: the cached text of a page, as the network holds it. Everything in it
/// came from a crawled page or a peer and is escaped; the page's own markup has no script,
/// no event handler, and links only to http(s) URLs and this peer's own pages.
pub fn doc_page(doc: &DocResponse) -> String {
    let title = if doc.title.trim().is_empty() {
        &doc.url
    } else {
        &doc.title
    };
    let title = truncate_chars(title, MAX_TITLE_CHARS);
    let mut main = format!("<article class=\"cached\">\n<h1>{}</h1>\n", escape(&title));
    let shown_url = escape(&truncate_chars(&doc.url, MAX_SHOWN_URL_CHARS));
    let url = if is_linkable(&doc.url) {
        format!(
            "<a href=\"{}\" rel=\"noreferrer nofollow\">{shown_url}</a>",
            escape(&doc.url)
        )
    } else {
        shown_url
    };
    let fetched = iso8601(doc.fetched_at.max(0) as u64);
    let holders: Vec<String> = doc
        .holders
        .iter()
        .map(|h| format!("<li><code>{}</code></li>", escape(h)))
        .collect();
    let holders = if holders.is_empty() {
        "none".to_owned()
    } else {
        format!("<ul>{}</ul>", holders.join(""))
    };
    let lang = if doc.lang.is_empty() {
        "unknown".to_owned()
    } else {
        escape(&doc.lang)
    };
    let _ = writeln!(
        main,
        r#"<dl class="facts">
<dt>URL</dt><dd>{url}</dd>
<dt>Fetched</dt><dd><time datetime="{fetched}">{fetched}</time></dd>
<dt>Held by</dt><dd>{holders}</dd>
<dt>Language</dt><dd>{lang}</dd>
<dt>Linked from</dt><dd>{sites}, {pages}</dd>
<dt>Content hash</dt><dd><code>{hash}</code></dd>
</dl>"#,
        sites = plural(u64::from(doc.inlink_sites), "site", "sites"),
        pages = plural(u64::from(doc.inlink_pages), "page", "pages"),
        hash = escape(&doc.content_hash),
    );
    if doc.partial {
        main.push_str("<p class=\"notice\" role=\"status\">Some peers did not answer in time: other copies may exist.</p>\n");
    }
    let text = cut_bytes(&doc.text, MAX_PAGE_TEXT_BYTES);
    if doc.truncated || text.len() < doc.text.len() {
        let _ = writeln!(
            main,
            "<p class=\"notice\" role=\"status\">This text is cut short. The whole document is at <a href=\"{}\">the JSON API</a>.</p>",
            escape(&format!(
                "/api/doc?{}",
                query_string([("url", doc.url.as_str())])
            ))
        );
    }
    if !doc.description.trim().is_empty() {
        let _ = writeln!(
            main,
            "<p class=\"description\">{}</p>",
            escape(&truncate_chars(&doc.description, 2 * MAX_TITLE_CHARS))
        );
    }
    if !doc.anchor_text.trim().is_empty() {
        let _ = writeln!(
            main,
            "<h2>Anchor texts of links to this page</h2>\n{}",
            text_list(&doc.anchor_text)
        );
    }
    if !doc.headings.trim().is_empty() {
        let _ = writeln!(main, "<h2>Headings</h2>\n{}", text_list(&doc.headings));
    }
    main.push_str("<h2>Text</h2>\n<div class=\"cached-text\">\n");
    let paras = paragraphs(text);
    if paras.is_empty() {
        main.push_str("<p class=\"meta\">This page has no main text.</p>\n");
    }
    for p in paras {
        main.push_str("<p>");
        crate::escape::escape_into(&mut main, p);
        main.push_str("</p>\n");
    }
    main.push_str("</div>\n</article>");
    layout(&format!("{title} - cached text"), &Head::default(), &main)
}

/// The results page for a query that could not be run: the form, kept query, and the reason.
pub fn search_error_page(q: &str, message: &str) -> String {
    let main = format!(
        "{form}\n<h1 class=\"visually-hidden\">Search</h1>\n<p class=\"error\" role=\"alert\">{message}</p>\n<p>See <a href=\"/help\">how to search</a>.</p>",
        form = search_form(q, false, true),
        message = escape(message),
    );
    layout("Search", &Head::default(), &main)
}

/// `message` with a capital first letter and a final period (error texts are lowercase for
/// logs and JSON; a page shows them as sentences).
fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    let Some(first) = chars.next() else {
        return String::new();
    };
    let mut out: String = first.to_uppercase().chain(chars).collect();
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// A whole error page (404, 429, 500, ...).
pub fn error_page(status: StatusCode, message: &str, retry_after_s: Option<u64>) -> String {
    let reason = status.canonical_reason().unwrap_or("Error");
    let mut main = format!(
        "<h1>{} {}</h1>\n<p class=\"error\" role=\"alert\">{}</p>\n",
        status.as_u16(),
        escape(reason),
        escape(&sentence(message)),
    );
    if let Some(secs) = retry_after_s {
        let _ = writeln!(
            main,
            "<p>Please wait {} before trying again.</p>",
            plural(secs, "second", "seconds")
        );
    }
    main.push_str("<p><a href=\"/\">Back to the search page</a></p>\n");
    main.push_str(&search_form("", false, true));
    layout(reason, &Head::default(), &main)
}

/// A notice shown after the seed form was submitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedOutcome {
    /// URLs accepted.
    pub accepted: u64,
    /// URLs rejected.
    pub rejected: u64,
}

/// Everything the peer page shows.
#[derive(Debug)]
pub struct StatusView<'a> {
    /// The status snapshot.
    pub status: &'a StatusResponse,
    /// Connected peers.
    pub peers: &'a [PeerInfo],
    /// History and recent errors.
    pub activity: &'a Activity,
    /// The CSRF token for the seed form.
    pub csrf_token: &'a str,
    /// The outcome of a seed submission just made, if any.
    pub seeds: Option<SeedOutcome>,
    /// The current time, unix seconds.
    pub now_unix: u64,
}

fn errors_table(errors: &[CrawlErrorEntry], now: u64) -> String {
    if errors.is_empty() {
        return "<p>No crawl errors recently.</p>".to_owned();
    }
    let mut out = String::from(
        "<div class=\"table-wrap\">\n<table>\n<caption class=\"visually-hidden\">Most recent crawl errors, newest first</caption>\n<thead><tr><th scope=\"col\">When</th><th scope=\"col\">URL</th><th scope=\"col\">Reason</th></tr></thead>\n<tbody>\n",
    );
    for e in errors {
        let _ = writeln!(
            out,
            "<tr><td><time datetime=\"{iso}\" title=\"{iso}\">{ago}</time></td><td>{url}</td><td>{reason}</td></tr>",
            iso = iso8601(e.at_unix),
            ago = ago(e.at_unix, now),
            url = escape(&truncate_chars(&e.url, MAX_SHOWN_URL_CHARS)),
            reason = escape(&e.reason),
        );
    }
    out.push_str("</tbody>\n</table>\n</div>");
    out
}

fn peers_table(peers: &[PeerInfo]) -> String {
    if peers.is_empty() {
        return "<p>No peers connected.</p>".to_owned();
    }
    let mut out = String::from(
        "<div class=\"table-wrap\">\n<table>\n<caption class=\"visually-hidden\">Connected peers</caption>\n<thead><tr><th scope=\"col\">Peer</th><th scope=\"col\">Addresses</th><th scope=\"col\">Round trip</th></tr></thead>\n<tbody>\n",
    );
    for p in peers {
        let addrs: Vec<String> = p
            .addrs
            .iter()
            .map(|a| format!("<code>{}</code>", escape(a)))
            .collect();
        let rtt = match p.rtt_ms {
            Some(ms) if ms.is_finite() => format!("{ms:.1} ms"),
            _ => "–".to_owned(),
        };
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td>{rtt}</td></tr>",
            escape(&p.peer_id),
            addrs.join("<br>"),
        );
    }
    out.push_str("</tbody>\n</table>\n</div>");
    out
}

/// `GET /status`: the peer page.
pub fn status_page(view: &StatusView<'_>) -> String {
    let s = view.status;
    let mut main = String::from("<h1>This peer</h1>\n");
    if let Some(outcome) = view.seeds {
        let _ = writeln!(
            main,
            "<p class=\"notice\" role=\"status\">{} accepted, {} rejected.</p>",
            plural(outcome.accepted, "URL", "URLs"),
            group_digits(outcome.rejected),
        );
    }
    let listen: Vec<String> = s
        .listen_addrs
        .iter()
        .map(|a| format!("<li><code>{}</code></li>", escape(a)))
        .collect();
    let listen = if listen.is_empty() {
        "none".to_owned()
    } else {
        format!("<ul>{}</ul>", listen.join(""))
    };
    let crawl_state = if s.frontier_size == 0 && s.crawl_in_flight == 0 {
        "idle"
    } else {
        "crawling"
    };
    let _ = writeln!(
        main,
        r#"<dl class="facts">
<dt>Peer id</dt><dd><code>{peer_id}</code></dd>
<dt>Version</dt><dd>{version}</dd>
<dt>Web address</dt><dd><code>{http}</code></dd>
<dt>Listen addresses</dt><dd>{listen}</dd>
<dt>Uptime</dt><dd>{uptime}</dd>
<dt>Connected peers</dt><dd>{peers}</dd>
<dt>Routing table</dt><dd>{routing}</dd>
<dt>Documents indexed</dt><dd>{docs}</dd>
<dt>Crawl</dt><dd>{crawl_state}</dd>
<dt>Frontier</dt><dd>{frontier} URLs waiting, {in_flight} in flight</dd>
<dt>Pages crawled</dt><dd>{crawled}</dd>
<dt>Pages failed</dt><dd>{failed}</dd>
<dt>Revisits</dt><dd>{revisited} made: {changed} changed, {unchanged} unchanged, {removed} removed; {due} due</dd>
</dl>"#,
        peer_id = escape(&s.peer_id),
        version = escape(&s.version),
        http = escape(&s.http_addr),
        uptime = format_duration(s.uptime_s),
        peers = group_digits(s.peers_connected as u64),
        routing = group_digits(s.routing_table_size as u64),
        docs = group_digits(s.docs_indexed),
        frontier = group_digits(s.frontier_size),
        in_flight = group_digits(s.crawl_in_flight),
        crawled = group_digits(s.pages_crawled),
        failed = group_digits(s.pages_failed),
        revisited = group_digits(s.pages_revisited),
        changed = group_digits(s.pages_changed),
        unchanged = group_digits(s.pages_unchanged),
        removed = group_digits(s.pages_removed),
        due = group_digits(s.revisits_due),
    );
    let _ = writeln!(
        main,
        "<h2>Activity</h2>\n{}",
        activity_chart(&view.activity.history, view.now_unix)
    );
    let _ = writeln!(
        main,
        "<h2>Connected peers</h2>\n{}",
        peers_table(view.peers)
    );
    let _ = writeln!(
        main,
        r#"<h2>Add seed URLs</h2>
<form method="post" action="/status/seeds">
<input type="hidden" name="{field}" value="{token}">
<p><label for="urls">URLs to crawl, one per line</label></p>
<p><textarea id="urls" name="urls" rows="5" required spellcheck="false" placeholder="https://example.com/"></textarea></p>
<p><label for="follow">Links to follow</label>
<select id="follow" name="follow">
<option value="" selected>as this peer is set up to</option>
<option value="site">only to each URL's own site</option>
<option value="any">to any site</option>
</select></p>
<p><button type="submit">Add to the crawl</button></p>
</form>"#,
        token = escape(view.csrf_token),
        field = crate::csrf::CSRF_FIELD,
    );
    let _ = writeln!(
        main,
        "<h2>Recent crawl errors</h2>\n{}",
        errors_table(&view.activity.recent_errors, view.now_unix)
    );
    layout("This peer", &Head::default(), &main)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_become_sentences() {
        assert_eq!(sentence("no such page"), "No such page.");
        assert_eq!(sentence("done."), "Done.");
        assert_eq!(sentence(""), "");
    }

    #[test]
    fn pagination_links_use_offsets() {
        let params = SearchParams {
            q: "a&b".into(),
            limit: 10,
            offset: 10,
            scope: Scope::Network,
            timeout_ms: 2000,
            explain: false,
        };
        let response = SearchResponse {
            query: "a&b".into(),
            hits: (0..10)
                .map(|i| crate::api::ApiHit {
                    url: format!("http://e.com/{i}"),
                    title: "t".into(),
                    snippet: "s".into(),
                    score: 1.0,
                    peer: "p".into(),
                    explanation: None,
                })
                .collect(),
            took_ms: 1,
            peers: Default::default(),
            partial: false,
            total_hits: 45,
            rounds: 0,
        };
        let nav = pagination(&params, &response);
        assert!(
            nav.contains("href=\"/search?q=a%26b\" rel=\"prev\""),
            "{nav}"
        );
        assert!(
            nav.contains("href=\"/search?q=a%26b&amp;offset=20\" rel=\"next\""),
            "{nav}"
        );
        assert!(nav.contains("<span aria-current=\"page\">2</span>"));
        assert!(nav.contains(">5</a>"));
        assert!(!nav.contains(">6</a>"));
    }
}
