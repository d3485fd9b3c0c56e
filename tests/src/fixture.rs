//! Fixture web sites served by real axum servers on `127.0.0.1:0`.
//!
//! [`TrapSite`] is the hostile site of the single-peer test: a few hundred interlinked pages
//! with varied text plus every trap a crawler meets in the wild (robots.txt, noindex and
//! nofollow, redirect chains and loops, 404s, a PDF, a 20 MiB page, a gzip bomb, a stalling
//! page, deeply nested malformed HTML, a script in a title, an endless calendar). [`PlainSite`]
//! serves plain interlinked pages (many of them make a multi-site corpus). Each page carries a
//! marker word (`pgmark<site><n>`) so a test can ask for it by name.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Words the generated pages are written with (varied enough for BM25 to rank).
const WORDS: &[&str] = &[
    "river", "mountain", "engine", "garden", "library", "compiler", "harbor", "violin", "planet",
    "orchard", "lantern", "glacier", "teapot", "railway", "meadow", "puzzle", "candle", "falcon",
    "thunder", "biscuit", "canyon", "quartz", "saddle", "willow", "anchor", "bicycle", "cobalt",
    "dolphin", "ember", "fjord", "granite", "hammock", "igloo", "jasmine", "kettle", "lagoon",
    "marble", "nectar", "oyster", "pepper", "quiver", "raven", "sparrow", "tundra", "umbrella",
    "velvet", "walnut", "yonder", "zephyr", "almond", "basalt", "cactus", "delta", "estuary",
    "fossil", "geyser", "horizon", "island", "juniper", "kayak", "lichen", "monsoon", "nebula",
    "obsidian", "prairie", "quarry", "reef", "savanna", "tide", "upland", "volcano", "wetland",
    "async", "borrow", "closure", "trait", "macro", "lifetime", "iterator", "pattern", "module",
    "crate", "vector", "string", "thread", "channel", "future", "runtime", "socket", "buffer",
];

/// A small deterministic generator (splitmix64) so fixtures are the same on every run.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// A random word of the fixture vocabulary.
    pub fn word(&mut self) -> &'static str {
        WORDS[self.below(WORDS.len())]
    }
    /// `n` random words joined by spaces.
    pub fn words(&mut self, n: usize) -> String {
        (0..n).map(|_| self.word()).collect::<Vec<_>>().join(" ")
    }
}

/// The marker word of page `n` of site `site` (one token for the analyzer).
pub fn marker(site: usize, n: usize) -> String {
    format!("pgmark{site}x{n}")
}

/// A running fixture server; aborted when dropped.
#[derive(Debug)]
pub struct Server {
    /// The bound address.
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Server {
    /// Serve `router` on a fresh port of 127.0.0.1 (the listener is bound before returning,
    /// so there is no bind-then-drop race).
    pub async fn start(router: Router) -> std::io::Result<Server> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            // Connection info lets a [`FetchLog`] tell crawlers apart by source address.
            let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
            let _ = axum::serve(listener, service).await;
        });
        Ok(Server { addr, task })
    }
    /// `http://127.0.0.1:PORT` + path.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Bind a port now and serve later (for sites that must link to each other).
    pub async fn bind() -> std::io::Result<Bound> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        Ok(Bound { listener, addr })
    }
}

/// A bound, not yet serving, fixture port.
#[derive(Debug)]
pub struct Bound {
    listener: TcpListener,
    /// The bound address.
    pub addr: SocketAddr,
}

impl Bound {
    /// `http://127.0.0.1:PORT` + path.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
    /// Start serving `router`.
    pub fn serve(self, router: Router) -> Server {
        let listener = self.listener;
        let task = tokio::spawn(async move {
            let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
            let _ = axum::serve(listener, service).await;
        });
        Server {
            addr: self.addr,
            task,
        }
    }
}

/// `n` plain sites of `pages` pages each whose home pages link to each other, each counting
/// its requests.
pub async fn linked_sites(n: usize, pages: usize) -> std::io::Result<(Vec<Server>, Vec<FetchLog>)> {
    let mut bound = Vec::new();
    for _ in 0..n {
        bound.push(Server::bind().await?);
    }
    let homes: Vec<String> = bound.iter().map(|b| b.url("/")).collect();
    let mut servers = Vec::new();
    let mut logs = Vec::new();
    for (i, b) in bound.into_iter().enumerate() {
        let links: String = homes
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(j, h)| format!("<a href=\"{h}\">site {j}</a> "))
            .collect();
        let log = FetchLog::default();
        let router = log.wrap(
            PlainSite {
                site: 100 + i,
                pages,
                home_links: links,
            }
            .router(),
        );
        servers.push(b.serve(router));
        logs.push(log);
    }
    Ok((servers, logs))
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn html(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

fn page_html(title: &str, head_extra: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>{head_extra}</head><body>{body}</body></html>"
    )
}

/// The anchor text of every link to page `n` of site `site`.
fn anchor_for(site: usize, n: usize) -> String {
    Rng::new(0xA11C_0000 ^ ((site as u64) << 20) ^ n as u64).words(3)
}

/// Generated text and links of one plain page.
fn plain_page(site: usize, n: usize, pages: usize, extra_links: &str) -> String {
    let mut rng = Rng::new((site as u64) << 32 | n as u64);
    let title = format!("{} {} {}", rng.word(), rng.word(), marker(site, n));
    let mut body = format!("<h1>{title}</h1>");
    for _ in 0..3 {
        body.push_str(&format!("<p>{} {}</p>", rng.words(40), marker(site, n)));
    }
    body.push_str("<ul>");
    // A chain through every page guarantees reachability; a few random links make a web.
    // Every link to a page carries the same anchor text, so a page's indexed anchor text does
    // not depend on the order in which the crawl discovered its links.
    let next = (n + 1) % pages;
    body.push_str(&format!(
        "<li><a href=\"/page/{next}.html\">{}</a></li>",
        anchor_for(site, next)
    ));
    for _ in 0..4 {
        let to = rng.below(pages);
        body.push_str(&format!(
            "<li><a href=\"/page/{to}.html\">{}</a></li>",
            anchor_for(site, to)
        ));
    }
    body.push_str("</ul>");
    body.push_str(extra_links);
    page_html(&title, "", &body)
}

/// A site of `pages` interlinked plain pages: `/` links to `/page/0.html`.
#[derive(Debug, Clone)]
pub struct PlainSite {
    /// Index of the site (part of every marker).
    pub site: usize,
    /// Number of pages.
    pub pages: usize,
    /// Extra HTML added to the home page (e.g. links to other sites).
    pub home_links: String,
}

impl PlainSite {
    /// The axum router of the site.
    pub fn router(self) -> Router {
        let s = Arc::new(self);
        Router::new()
            .route(
                "/",
                get(|State(s): State<Arc<PlainSite>>| async move {
                    html(page_html(
                        &format!("home of site {}", s.site),
                        "",
                        &format!(
                            "<p>welcome {}</p><a href=\"/page/0.html\">start</a>{}",
                            marker(s.site, 999_999),
                            s.home_links
                        ),
                    ))
                }),
            )
            .route(
                "/page/{file}",
                get(
                    |State(s): State<Arc<PlainSite>>, Path(file): Path<String>| async move {
                        match file
                            .strip_suffix(".html")
                            .and_then(|n| n.parse::<usize>().ok())
                        {
                            Some(n) if n < s.pages => html(plain_page(s.site, n, s.pages, "")),
                            _ => StatusCode::NOT_FOUND.into_response(),
                        }
                    },
                ),
            )
            .route("/robots.txt", get(|| async { "User-agent: *\nAllow: /\n" }))
            .with_state(s)
    }
}

/// The site index of the trap site's generated pages.
pub const TRAP_SITE: usize = 0;
/// Generated pages on the trap site.
pub const TRAP_PAGES: usize = 300;

/// The hostile single-peer fixture, crawled with `--allow-private-addresses` (it is on
/// loopback); the SSRF guard is tested without that flag, against a [`FetchLog`]ged site.
#[derive(Debug, Clone, Default)]
pub struct TrapSite {
    /// Base URL of the site whose robots.txt fails with 500.
    pub robots_500_site: String,
    /// A URL of another site on another port of 127.0.0.1 that the home page links to.
    pub other_port_url: String,
    /// Counts what `/bomb.html` sent.
    pub bomb: BombMeter,
}

/// Paths of the trap site that must end up searchable (besides the generated pages), with a
/// word each that finds them.
pub const TRAP_EXPECTED: &[(&str, &str)] = &[
    ("/", "trapwelcome"),
    ("/landing.html", "landingmarker"),
    ("/via-noindex.html", "vianoindexmarker"),
    ("/nofollow.html", "nofollowmarker"),
    ("/nested.html", "nestedmarker"),
    ("/script-title.html", "scripttitlemarker"),
];

/// Paths of the trap site that must never be searchable, with a word only they contain.
pub const TRAP_FORBIDDEN: &[(&str, &str)] = &[
    ("/private/secret.html", "privatesecretmarker"),
    ("/noindex.html", "noindexmarker"),
    ("/only-from-nofollow.html", "onlyfromnofollowmarker"),
    ("/doc.pdf", "pdfmarker"),
    ("/huge.html", "hugemarker"),
    ("/bomb.html", "bombmarker"),
    ("/stall.html", "stallmarker"),
];

impl TrapSite {
    /// The axum router of the trap site.
    pub fn router(self) -> Router {
        let bomb = self.bomb.clone();
        let s = Arc::new(self);
        let mut links = String::new();
        for p in [
            "/private/secret.html",
            "/noindex.html",
            "/nofollow.html",
            "/redirect/1",
            "/loop/a",
            "/missing-1.html",
            "/missing-2.html",
            "/doc.pdf",
            "/huge.html",
            "/bomb.html",
            "/stall.html",
            "/nested.html",
            "/script-title.html",
            "/calendar?month=0",
        ] {
            links.push_str(&format!("<a href=\"{p}\">{p}</a> "));
        }
        let home_links = Arc::new(links);
        Router::new()
            .route(
                "/",
                get(move |State(s): State<Arc<TrapSite>>| {
                    let home_links = home_links.clone();
                    async move {
                        html(page_html(
                            "trap site home",
                            "",
                            &format!(
                                "<p>trapwelcome</p><a href=\"/page/0.html\">pages</a> {} <a href=\"{}/\">other site</a> <a href=\"{}\">other port</a>",
                                home_links, s.robots_500_site, s.other_port_url
                            ),
                        ))
                    }
                }),
            )
            .route(
                "/page/{file}",
                get(|Path(file): Path<String>| async move {
                    match file.strip_suffix(".html").and_then(|n| n.parse::<usize>().ok()) {
                        Some(n) if n < TRAP_PAGES => {
                            html(plain_page(TRAP_SITE, n, TRAP_PAGES, ""))
                        }
                        _ => StatusCode::NOT_FOUND.into_response(),
                    }
                }),
            )
            .route(
                "/robots.txt",
                get(|| async { "User-agent: *\nDisallow: /private/\n" }),
            )
            .route(
                "/private/secret.html",
                get(|| async { html(page_html("secret", "", "<p>privatesecretmarker</p>")) }),
            )
            .route(
                "/noindex.html",
                get(|| async {
                    html(page_html(
                        "noindex page",
                        "<meta name=\"robots\" content=\"noindex\">",
                        "<p>noindexmarker</p><a href=\"/via-noindex.html\">onward</a>",
                    ))
                }),
            )
            .route(
                "/via-noindex.html",
                get(|| async { html(page_html("reached via noindex", "", "<p>vianoindexmarker</p>")) }),
            )
            .route(
                "/nofollow.html",
                get(|| async {
                    html(page_html(
                        "nofollow page",
                        "<meta name=\"robots\" content=\"nofollow\">",
                        "<p>nofollowmarker</p><a href=\"/only-from-nofollow.html\">hidden</a>",
                    ))
                }),
            )
            .route(
                "/only-from-nofollow.html",
                get(|| async { html(page_html("unreachable", "", "<p>onlyfromnofollowmarker</p>")) }),
            )
            .route("/redirect/1", get(|| async { Redirect::permanent("/redirect/2") }))
            .route("/redirect/2", get(|| async { Redirect::temporary("/redirect/3") }))
            .route("/redirect/3", get(|| async { Redirect::to("/landing.html") }))
            .route(
                "/landing.html",
                get(|| async { html(page_html("landing page", "", "<p>landingmarker</p>")) }),
            )
            .route("/loop/a", get(|| async { Redirect::temporary("/loop/b") }))
            .route("/loop/b", get(|| async { Redirect::temporary("/loop/a") }))
            .route(
                "/doc.pdf",
                get(|| async {
                    (
                        [(header::CONTENT_TYPE, "application/pdf")],
                        "%PDF-1.4\n% pdfmarker\n%%EOF\n",
                    )
                }),
            )
            .route(
                "/huge.html",
                get(|| async {
                    let mut body = String::with_capacity(20 << 20);
                    body.push_str("<html><head><title>huge</title></head><body><p>hugemarker ");
                    while body.len() < 20 << 20 {
                        body.push_str("filler text for the twenty mebibyte page ");
                    }
                    html(body)
                }),
            )
            .route(
                "/bomb.html",
                get(move || {
                    let bomb = bomb.clone();
                    async move {
                        let mut r = Response::new(bomb.body());
                        r.headers_mut()
                            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
                        r.headers_mut()
                            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                        r
                    }
                }),
            )
            .route(
                "/stall.html",
                get(|| async {
                    // Longer than any fetch deadline a test sets; the server stays bounded
                    // because the fixture is dropped at the end of the test.
                    tokio::time::sleep(Duration::from_secs(120)).await;
                    html(page_html("stall", "", "<p>stallmarker</p>"))
                }),
            )
            .route("/nested.html", get(|| async { html(nested_html()) }))
            .route(
                "/script-title.html",
                get(|| async {
                    html(
                        "<html><head><title><script>alert(1)</script> scripted title</title></head><body><p>scripttitlemarker</p></body></html>".to_string(),
                    )
                }),
            )
            .route(
                "/calendar",
                get(|Query(q): Query<HashMap<String, String>>| async move {
                    let month: u64 = q.get("month").and_then(|m| m.parse().ok()).unwrap_or(0);
                    html(page_html(
                        &format!("calendar month {month}"),
                        "",
                        &format!(
                            "<p>calendartrap month {month}</p><a href=\"/calendar?month={}\">next month</a>",
                            month + 1
                        ),
                    ))
                }),
            )
            .with_state(s)
    }
}

/// A site whose robots.txt answers 500: nothing of it may be crawled.
pub fn robots_500_router() -> Router {
    Router::new()
        .route(
            "/robots.txt",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }),
        )
        .route(
            "/",
            get(|| async {
                html(page_html(
                    "robots 500 site",
                    "",
                    "<p>robotsfivehundredmarker</p><a href=\"/a.html\">a</a>",
                ))
            }),
        )
        .route(
            "/a.html",
            get(|| async { html(page_html("a", "", "<p>robotsfivehundredmarker</p>")) }),
        )
}

/// Repetitions of [`BOMB_PAIRS`] per block of the gzip bomb: each pair is a back-reference of
/// 258 bytes at distance 1 (13 bits in fixed Huffman codes), and 6 + 8m pairs make a block of
/// whole bytes (3 header bits + 13 bits per pair + 7 end-of-block bits), so one block of bytes
/// can be sent again and again.
const BOMB_PAIRS: usize = 630;
/// Bytes one block of the bomb inflates to.
const BOMB_BLOCK_INFLATED: u64 = BOMB_PAIRS as u64 * 258;
/// Blocks in the whole bomb.
const BOMB_BLOCKS: usize = 1 << 16;
/// Blocks per chunk handed to the HTTP server (about 64 KiB).
const BOMB_BLOCKS_PER_CHUNK: usize = 64;
/// What the bomb's page starts with, before the spaces.
const BOMB_PREFIX: &[u8] = b"<html><body><p>bombmarker ";

/// Counts the bytes `/bomb.html` of a [`TrapSite`] put on the wire (handed to the HTTP server,
/// so at most the socket buffers more than the client read) and how often it was asked for.
///
/// The bomb is a valid gzip stream of [`BombMeter::WIRE_BYTES`] (64 MiB) that inflates to about
/// 10 GiB of spaces: a crawler that caps the inflated body stops reading after a few dozen KiB,
/// so the server gets to send only what fits in the socket buffers beyond that.
#[derive(Debug, Clone, Default)]
pub struct BombMeter {
    sent: Arc<std::sync::atomic::AtomicU64>,
    requests: Arc<std::sync::atomic::AtomicU32>,
}

/// One block of the bomb, in bytes.
fn bomb_block() -> Vec<u8> {
    let mut bits = BitWriter::default();
    bits.bits(0, 1); // not the last block
    bits.bits(1, 2); // fixed Huffman codes
    for _ in 0..BOMB_PAIRS {
        bits.huffman(0b1100_0101, 8); // length code 285: 258 bytes
        bits.huffman(0, 5); // distance code 0: distance 1
    }
    bits.huffman(0, 7); // end of block (256)
    assert_eq!(bits.used, 0, "a bomb block is whole bytes");
    bits.out
}

/// A deflate bit stream: fields least significant bit first, Huffman codes most significant
/// bit first (RFC 1951, 3.1.1).
#[derive(Default)]
struct BitWriter {
    out: Vec<u8>,
    used: u8,
}

impl BitWriter {
    fn bit(&mut self, b: u32) {
        if self.used == 0 {
            self.out.push(0);
        }
        if b & 1 == 1 {
            *self.out.last_mut().expect("a byte") |= 1 << self.used;
        }
        self.used = (self.used + 1) % 8;
    }
    fn bits(&mut self, value: u32, n: u32) {
        for i in 0..n {
            self.bit(value >> i);
        }
    }
    fn huffman(&mut self, code: u32, n: u32) {
        for i in (0..n).rev() {
            self.bit(code >> i);
        }
    }
}

impl BombMeter {
    /// Bytes of the whole bomb on the wire.
    pub const WIRE_BYTES: u64 = (10 + 5 + BOMB_PREFIX.len() + BOMB_BLOCKS * 1025 + 2 + 8) as u64;
    /// Bytes the whole bomb inflates to.
    pub const INFLATED_BYTES: u64 =
        BOMB_PREFIX.len() as u64 + BOMB_BLOCKS as u64 * BOMB_BLOCK_INFLATED;

    /// Bytes of the bomb handed to the HTTP server so far, over all requests.
    pub fn bytes_sent(&self) -> u64 {
        self.sent.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Requests for the bomb so far.
    pub fn requests(&self) -> u32 {
        self.requests.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The gzip stream, in chunks that are counted as the server takes them.
    pub fn body(&self) -> Body {
        self.requests
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let (head, chunk, tail) = bomb_parts();
        let chunks = std::iter::once(head)
            .chain(std::iter::repeat_n(
                chunk,
                BOMB_BLOCKS / BOMB_BLOCKS_PER_CHUNK,
            ))
            .chain(std::iter::once(tail));
        let sent = self.sent.clone();
        Body::from_stream(futures::stream::iter(chunks.map(move |c| {
            sent.fetch_add(c.len() as u64, std::sync::atomic::Ordering::SeqCst);
            Ok::<_, std::convert::Infallible>(c)
        })))
    }
}

/// The bomb in three parts: gzip header and the prefix (a stored block); a chunk of
/// [`BOMB_BLOCKS_PER_CHUNK`] blocks; the last (empty) block and the gzip trailer.
fn bomb_parts() -> (axum::body::Bytes, axum::body::Bytes, axum::body::Bytes) {
    static PARTS: std::sync::OnceLock<(axum::body::Bytes, axum::body::Bytes, axum::body::Bytes)> =
        std::sync::OnceLock::new();
    PARTS
        .get_or_init(|| {
            let mut head = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
            let len = BOMB_PREFIX.len() as u16;
            head.push(0); // a stored block, not the last
            head.extend(len.to_le_bytes());
            head.extend((!len).to_le_bytes());
            head.extend(BOMB_PREFIX);
            let block = bomb_block();
            let chunk = block.repeat(BOMB_BLOCKS_PER_CHUNK);
            // The last block: fixed codes, only the end-of-block code.
            let mut last = BitWriter::default();
            last.bits(1, 1);
            last.bits(1, 2);
            last.huffman(0, 7);
            let mut tail = last.out;
            let mut crc = flate2::Crc::new();
            crc.update(BOMB_PREFIX);
            // The spaces of one chunk (10 MiB), then combined once per chunk.
            let mut chunk_crc = flate2::Crc::new();
            chunk_crc.update(&vec![
                b' ';
                BOMB_BLOCKS_PER_CHUNK * BOMB_BLOCK_INFLATED as usize
            ]);
            for _ in 0..BOMB_BLOCKS / BOMB_BLOCKS_PER_CHUNK {
                crc.combine(&chunk_crc);
            }
            tail.extend(crc.sum().to_le_bytes());
            tail.extend((BombMeter::INFLATED_BYTES as u32).to_le_bytes());
            (head.into(), chunk.into(), tail.into())
        })
        .clone()
}

/// 60 000 unclosed nested elements around a marker.
fn nested_html() -> String {
    let mut s = String::from("<html><head><title>nested page</title></head><body>");
    for i in 0..60_000 {
        s.push_str(if i % 2 == 0 {
            "<div><span>"
        } else {
            "<b><i><table><td>"
        });
    }
    s.push_str("<p>nestedmarker deep inside</p>");
    s.push_str("</body></html>");
    s
}

/// Serve the files under `root` (read-only; `..` refused), with a content type by extension:
/// the demo's static server, used to serve real corpora such as the Rust documentation.
pub fn static_dir_router(root: std::path::PathBuf) -> Router {
    peersearch_web::static_dir(root)
}

/// Counts the requests a fixture server receives, per path and query, and remembers each
/// one's time and source address.
#[derive(Debug, Clone, Default)]
pub struct FetchLog(
    Arc<std::sync::Mutex<HashMap<String, u32>>>,
    Arc<std::sync::Mutex<Vec<Fetch>>>,
);

/// One request a fixture server received.
#[derive(Debug, Clone)]
pub struct Fetch {
    /// When it arrived.
    pub at: std::time::Instant,
    /// Path and query.
    pub path: String,
    /// The client's IP address (each test peer can crawl from its own, `--crawl-bind-addr`).
    pub from: Option<std::net::IpAddr>,
}

impl FetchLog {
    /// Wrap `router` so that every request is counted here.
    pub fn wrap(&self, router: Router) -> Router {
        let log = self.clone();
        router.layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let log = log.clone();
                async move {
                    let key = req
                        .uri()
                        .path_and_query()
                        .map(|p| p.as_str().to_string())
                        .unwrap_or_default();
                    let from = req
                        .extensions()
                        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                        .map(|c| c.0.ip());
                    if let Ok(mut m) = log.1.lock() {
                        m.push(Fetch {
                            at: std::time::Instant::now(),
                            path: key.clone(),
                            from,
                        });
                    }
                    if let Ok(mut m) = log.0.lock() {
                        *m.entry(key).or_default() += 1;
                    }
                    next.run(req).await
                }
            },
        ))
    }
    /// Every request so far, in arrival order.
    pub fn fetches(&self) -> Vec<Fetch> {
        self.1.lock().map(|v| v.clone()).unwrap_or_default()
    }
    /// How often `path` was requested.
    pub fn count(&self, path: &str) -> u32 {
        self.0
            .lock()
            .map(|m| m.get(path).copied().unwrap_or(0))
            .unwrap_or(0)
    }
    /// Every path requested more than once, with its count.
    pub fn repeated(&self) -> Vec<(String, u32)> {
        let mut v: Vec<_> = self
            .0
            .lock()
            .map(|m| {
                m.iter()
                    .filter(|(_, n)| **n > 1)
                    .map(|(k, n)| (k.clone(), *n))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
    /// Forget every count.
    pub fn reset(&self) {
        if let Ok(mut m) = self.0.lock() {
            m.clear();
        }
        if let Ok(mut m) = self.1.lock() {
            m.clear();
        }
    }
    /// Total requests.
    pub fn total(&self) -> u32 {
        self.0.lock().map(|m| m.values().sum()).unwrap_or(0)
    }
}

/// A generated site: `home` at `/`, pages `/p/0.html` .. `/p/{pages - 1}.html` made by
/// `page(n)`, 404 beyond, and a robots.txt that allows everything.
pub fn numbered_pages_router(
    home: String,
    pages: usize,
    page: impl Fn(usize) -> String + Clone + Send + Sync + 'static,
) -> Router {
    Router::new()
        .route("/", get(move || async move { axum::response::Html(home) }))
        .route(
            "/p/{file}",
            get(move |Path(file): Path<String>| {
                let page = page.clone();
                async move {
                    match file
                        .strip_suffix(".html")
                        .and_then(|n| n.parse::<usize>().ok())
                    {
                        Some(n) if n < pages => axum::response::Html(page(n)).into_response(),
                        _ => StatusCode::NOT_FOUND.into_response(),
                    }
                }
            }),
        )
        .route("/robots.txt", get(|| async { "User-agent: *\nAllow: /\n" }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// The start of the bomb inflates to its prefix and then spaces only.
    #[test]
    fn bomb_inflates_to_the_prefix_and_spaces() {
        let (head, chunk, tail) = bomb_parts();
        let wire: Vec<u8> = [&head[..], &chunk[..], &chunk[..], &tail[..]].concat();
        assert_eq!(
            head.len() + chunk.len() * (BOMB_BLOCKS / BOMB_BLOCKS_PER_CHUNK) + tail.len(),
            BombMeter::WIRE_BYTES as usize
        );
        // Two chunks then the end: a valid deflate stream (the CRC is the whole bomb's).
        let mut out = Vec::new();
        let _ = flate2::read::GzDecoder::new(&wire[..]).read_to_end(&mut out);
        let spaces = 2 * BOMB_BLOCKS_PER_CHUNK as u64 * BOMB_BLOCK_INFLATED;
        assert_eq!(out.len() as u64, BOMB_PREFIX.len() as u64 + spaces);
        assert!(out.starts_with(BOMB_PREFIX));
        assert!(out[BOMB_PREFIX.len()..].iter().all(|b| *b == b' '));
    }
}
