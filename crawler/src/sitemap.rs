//! Sitemaps ([sitemaps.org] protocol 0.9): the `Sitemap:` lines of robots.txt, the
//! site's `/sitemap.xml`, sitemap index files and gzip, read as input from a stranger.
//!
//! - [`parse`] reads one file, gzip or not, as a stream (never as a tree): at most
//!   [`MAX_SITEMAP_URLS`] entries and [`MAX_SITEMAP_BYTES`] decompressed bytes, so a
//!   gzip bomb is decompressed only up to the cap. Every `<loc>` is normalized and kept
//!   only when it is on the sitemap's own site, child sitemaps of an index included.
//!   A document type declaration is refused before the XML parser sees it, so no
//!   entity (internal or external) is ever defined, let alone expanded.
//! - [`robots_sitemaps`] reads the `Sitemap:` lines of a robots.txt body.
//! - [`discover`] fetches a site's sitemaps (the robots.txt ones, else `/sitemap.xml`),
//!   follows index files with loop detection, holds every cap of this module and
//!   returns the page URLs with their `lastmod`. It knows nothing of the frontier: the
//!   caller feeds it.
//!
//! [sitemaps.org]: https://www.sitemaps.org/protocol.html

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::io::{self, BufReader, Read};
use std::sync::atomic::{AtomicBool, Ordering};

use futures::future::Either;
use xml::reader::{ParserConfig, XmlEvent};

use crate::error::{Error, Result};
use crate::fetch::{Fetcher, Overflow, no_gate};
use crate::normalize::{MAX_URL_BYTES, NormalizedUrl, normalize};
use crate::robots::MAX_ROBOTS_BYTES;

/// Most entries (`<url>` of a urlset, `<sitemap>` of an index) read from one file: the
/// protocol's limit. Reading stops at the next entry.
pub const MAX_SITEMAP_URLS: usize = 50_000;

/// Most bytes read from one file, counted after decompression (the protocol's 50 MiB
/// "uncompressed"); the rest of the file is not read.
pub const MAX_SITEMAP_BYTES: usize = 50 * 1024 * 1024;

/// Most sitemap files requested for one site in one [`discover`] round, index files and
/// failed requests included.
pub const MAX_SITEMAP_FILES: usize = 16;

/// Most index files between a root sitemap and a file that is still fetched. The
/// protocol's indexes list sitemaps only (depth 1); one index listing another is
/// tolerated (depth 2); the children of an index at depth 2 are not fetched.
pub const MAX_INDEX_DEPTH: usize = 2;

/// Most page URLs one [`discover`] round returns for a site, all files together.
pub const MAX_SITE_URLS: usize = 50_000;

/// Most `Sitemap:` URLs taken from one robots.txt (same-site ones, after dedup).
pub const MAX_ROBOTS_SITEMAPS: usize = 8;

/// Deepest element nesting read: a sitemap needs 3 (4 with extensions); xml-rs keeps a
/// stack entry per open element, so a file of nothing but `<a><a><a>...` stops here.
const MAX_XML_DEPTH: usize = 32;

/// Longest text node, comment or processing instruction the XML parser buffers.
const MAX_XML_TEXT: usize = 256 * 1024;

/// Longest `<lastmod>` text kept (`2005-01-01T00:00:00.000000+00:00` is 32 bytes).
const MAX_LASTMOD_BYTES: usize = 64;

/// The gzip magic bytes: a body starting with them is raw gzip (a `.xml.gz` served as
/// `application/gzip` or `application/octet-stream`, which reqwest does not decode).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// What a sitemap file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SitemapKind {
    /// A `<urlset>`: its entries are pages.
    UrlSet,
    /// A `<sitemapindex>`: its entries are other sitemap files.
    Index,
}

/// Why reading a file stopped before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// [`MAX_SITEMAP_URLS`] entries were read and another one followed.
    Urls,
    /// [`MAX_SITEMAP_BYTES`] (decompressed) were read and more followed.
    Bytes,
}

/// Entries of a file that were not kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dropped {
    /// `<loc>` on another site than the sitemap's.
    pub other_site: usize,
    /// `<loc>` missing, too long or not a crawlable URL (see [`normalize`]).
    pub unparseable: usize,
}

/// One sitemap file, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// Urlset or index.
    pub kind: SitemapKind,
    /// The kept `<loc>` URLs, in file order, with their `<lastmod>` in unix seconds
    /// (`None` when absent or unparseable): pages of a urlset, sitemaps of an index.
    pub entries: Vec<(NormalizedUrl, Option<i64>)>,
    /// Entries read but not kept.
    pub dropped: Dropped,
    /// Set when a cap stopped the reading (the entries before it are kept).
    pub cut: Option<Cut>,
    /// The XML error that ended the reading after the root element had started (the
    /// entries before it are kept). `None` when the file ended well or was [`Cut`].
    pub error: Option<String>,
    /// Bytes read, after decompression.
    pub bytes_read: u64,
}

/// Reads one sitemap file fetched from `sitemap_url` (its final URL, after redirects):
/// plain XML, or gzip (told by its magic bytes, not by its name) decompressed while
/// reading. Relative `<loc>`s resolve against `sitemap_url`, and only those on its
/// site are kept. Synchronous and CPU-bound (up to [`MAX_SITEMAP_BYTES`] of XML): run it
/// on a blocking thread.
///
/// Fails with [`Error::Sitemap`] when the file is no sitemap: not XML (an HTML error
/// page, binary), a root other than `<urlset>`/`<sitemapindex>`, a document type
/// declaration (no sitemap has one; refusing it rules out entity expansion), or no
/// root within the cap. An XML error after the root started is [`Parsed::error`].
pub fn parse(bytes: &[u8], sitemap_url: &NormalizedUrl) -> Result<Parsed> {
    if bytes.starts_with(&GZIP_MAGIC) {
        // MultiGzDecoder: a gzip file may hold several members; the cap counts them all.
        parse_stream(flate2::read::MultiGzDecoder::new(bytes), sitemap_url)
    } else {
        parse_stream(bytes, sitemap_url)
    }
}

/// Which text element of an entry is being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Loc,
    Lastmod,
}

/// The `<loc>` and `<lastmod>` text of the entry being read.
#[derive(Default)]
struct EntryText {
    loc: Option<String>,
    lastmod: Option<String>,
    /// The `<loc>` text outgrew any URL the crawler accepts.
    loc_too_long: bool,
    /// The `<lastmod>` text outgrew any date.
    lastmod_too_long: bool,
}

fn parse_stream<R: Read>(source: R, sitemap_url: &NormalizedUrl) -> Result<Parsed> {
    let site = sitemap_url.site();
    let capped = Capped::new(source, MAX_SITEMAP_BYTES as u64);
    let text = without_bom(capped).map_err(|e| Error::Sitemap(format!("unreadable: {e}")))?;
    let reader = BufReader::with_capacity(64 * 1024, NoDtd::new(text));
    let mut events = ParserConfig::new()
        .cdata_to_characters(true)
        .coalesce_characters(true)
        .ignore_comments(true)
        .ignore_root_level_whitespace(true)
        // Sitemaps are UTF-8 (the protocol says so): whatever the declaration says, the
        // bytes the DTD guard saw are the characters the parser reads.
        .override_encoding(Some(xml::Encoding::Utf8))
        .ignore_invalid_encoding_declarations(true)
        .allow_multiple_root_elements(false)
        // No entity can be declared (the guard refuses DTDs); tight limits all the same.
        .max_entity_expansion_depth(2)
        .max_entity_expansion_length(4096)
        .max_name_length(1024)
        .max_attributes(64)
        .max_attribute_length(64 * 1024)
        .max_data_length(MAX_XML_TEXT)
        .create_reader(reader);

    let mut kind: Option<SitemapKind> = None;
    let mut root_ns: Option<String> = None;
    let mut entries = Vec::new();
    let mut dropped = Dropped::default();
    let mut cut = None;
    let mut error = None;
    let mut seen = 0usize;
    let mut depth = 0usize;
    let mut entry: Option<EntryText> = None;
    let mut field: Option<Field> = None;

    loop {
        let event = match events.next() {
            Ok(event) => event,
            Err(e) => {
                let guard = events.source().get_ref();
                if guard.inner.get_ref().1.over {
                    // The cap cut the document mid-way: that, not the XML, is the news.
                    cut = Some(Cut::Bytes);
                } else if let Some(reason) = &guard.refused {
                    return Err(Error::Sitemap(reason.clone()));
                } else {
                    error = Some(e.to_string());
                }
                break;
            }
        };
        match event {
            XmlEvent::StartElement { name, .. } => {
                depth += 1;
                if depth > MAX_XML_DEPTH {
                    error = Some(format!("elements nested deeper than {MAX_XML_DEPTH}"));
                    break;
                }
                if depth == 1 {
                    kind = Some(match name.local_name.as_str() {
                        "urlset" => SitemapKind::UrlSet,
                        "sitemapindex" => SitemapKind::Index,
                        other => {
                            return Err(Error::Sitemap(format!(
                                "root element <{}> is neither urlset nor sitemapindex",
                                crate::util::truncate_bytes(other, 64)
                            )));
                        }
                    });
                    root_ns = name.namespace;
                    continue;
                }
                // Only elements of the root's namespace count (any prefix, or none):
                // `<image:loc>` and other extensions are not the page's `<loc>`.
                if name.namespace != root_ns {
                    continue;
                }
                let wanted = match kind {
                    Some(SitemapKind::UrlSet) => "url",
                    _ => "sitemap",
                };
                if depth == 2 && name.local_name == wanted {
                    if seen == MAX_SITEMAP_URLS {
                        cut = Some(Cut::Urls);
                        break;
                    }
                    entry = Some(EntryText::default());
                } else if depth == 3
                    && let Some(entry) = entry.as_mut()
                {
                    // The first `<loc>` / `<lastmod>` of an entry counts; a repeated one
                    // is not appended to it.
                    field = match name.local_name.as_str() {
                        "loc" if entry.loc.is_none() => {
                            entry.loc = Some(String::new());
                            Some(Field::Loc)
                        }
                        "lastmod" if entry.lastmod.is_none() => {
                            entry.lastmod = Some(String::new());
                            Some(Field::Lastmod)
                        }
                        _ => None,
                    };
                }
            }
            XmlEvent::Characters(text) | XmlEvent::CData(text) => {
                if let (Some(field), Some(entry)) = (field, entry.as_mut()) {
                    append_text(entry, field, &text);
                }
            }
            XmlEvent::EndElement { .. } => {
                if depth == 3 {
                    field = None;
                } else if depth == 2
                    && let Some(text) = entry.take()
                {
                    seen += 1;
                    keep_entry(text, sitemap_url, &site, &mut entries, &mut dropped);
                }
                depth = depth.saturating_sub(1);
            }
            XmlEvent::EndDocument => break,
            _ => {}
        }
    }

    let Some(kind) = kind else {
        return Err(Error::Sitemap(match (cut, error) {
            (Some(_), _) => format!("no root element in the first {MAX_SITEMAP_BYTES} bytes"),
            (None, Some(e)) => format!("not XML: {e}"),
            (None, None) => "no root element".to_owned(),
        }));
    };
    let bytes_read = events.source().get_ref().inner.get_ref().1.read;
    Ok(Parsed {
        kind,
        entries,
        dropped,
        cut,
        error,
        bytes_read,
    })
}

/// Adds `text` to the entry's `field`, within bounds.
fn append_text(entry: &mut EntryText, field: Field, text: &str) {
    match field {
        Field::Loc => {
            let loc = entry.loc.get_or_insert_with(String::new);
            if loc.len() + text.len() > MAX_URL_BYTES * 2 {
                entry.loc_too_long = true;
            } else if !entry.loc_too_long {
                loc.push_str(text);
            }
        }
        Field::Lastmod => {
            let lastmod = entry.lastmod.get_or_insert_with(String::new);
            if lastmod.len() + text.len() > MAX_LASTMOD_BYTES {
                entry.lastmod_too_long = true;
            } else if !entry.lastmod_too_long {
                lastmod.push_str(text);
            }
        }
    }
}

/// Judges one finished entry: kept, or counted in `dropped`.
fn keep_entry(
    text: EntryText,
    sitemap_url: &NormalizedUrl,
    site: &str,
    entries: &mut Vec<(NormalizedUrl, Option<i64>)>,
    dropped: &mut Dropped,
) {
    let loc = match text.loc {
        Some(loc) if !text.loc_too_long && !loc.trim().is_empty() => loc,
        _ => {
            dropped.unparseable += 1;
            return;
        }
    };
    match normalize(&loc, Some(sitemap_url.as_url())) {
        Ok(url) if url.site() == site => {
            let lastmod = match text.lastmod {
                Some(lastmod) if !text.lastmod_too_long => parse_w3c_datetime(&lastmod),
                _ => None,
            };
            entries.push((url, lastmod));
        }
        Ok(_) => dropped.other_site += 1,
        Err(_) => dropped.unparseable += 1,
    }
}

/// `source` past a UTF-8 byte order mark, if it starts with one: the parser is told the
/// text is UTF-8, and would then take the mark for a character outside the root.
fn without_bom<R: Read>(mut source: R) -> io::Result<io::Chain<io::Cursor<Vec<u8>>, R>> {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    let mut head = Vec::with_capacity(BOM.len());
    let mut byte = [0u8; 1];
    while head.len() < BOM.len() && BOM.starts_with(&head) {
        match source.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => head.push(byte[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if head == BOM {
        head.clear();
    }
    Ok(io::Cursor::new(head).chain(source))
}

/// A reader that ends after `limit` bytes, noting whether more followed.
struct Capped<R> {
    inner: R,
    left: u64,
    /// Bytes handed out.
    read: u64,
    /// The source had more than `limit` bytes.
    over: bool,
    /// The byte after the cap was looked for already.
    probed: bool,
}

impl<R: Read> Capped<R> {
    fn new(inner: R, limit: u64) -> Self {
        Capped {
            inner,
            left: limit,
            read: 0,
            over: false,
            probed: false,
        }
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            if !self.probed {
                self.probed = true;
                let mut probe = [0u8; 1];
                // An error past the cap (a corrupt gzip tail) does not matter: we stop here.
                self.over = matches!(self.inner.read(&mut probe), Ok(n) if n > 0);
            }
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        self.read += n as u64;
        Ok(n)
    }
}

/// Where the DTD guard is in the document's prolog (everything before the root
/// element's `<`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prolog {
    /// Between markup.
    Text,
    /// After `<`.
    Lt,
    /// After `<!`.
    Bang,
    /// After `<!-`.
    BangDash,
    /// Inside a comment; the count of `-` just seen (up to 2).
    Comment(u8),
    /// Inside a processing instruction (the XML declaration too); whether `?` was just seen.
    Pi(bool),
    /// The root element started: the prolog is over, and so is the guard's work.
    Done,
}

/// A reader that refuses a document type declaration (`<!DOCTYPE ...>` in the prolog:
/// the only place where entities can be declared) and NUL bytes in the prolog (UTF-16 or
/// UTF-32 text, which would hide the declaration from a byte scan), before the XML
/// parser sees them. Comments and processing instructions are followed so that a `<`
/// inside them is not taken for the root element.
struct NoDtd<R> {
    inner: R,
    state: Prolog,
    /// Why the document was refused.
    refused: Option<String>,
}

impl<R: Read> NoDtd<R> {
    fn new(inner: R) -> Self {
        NoDtd {
            inner,
            state: Prolog::Text,
            refused: None,
        }
    }

    fn refuse(&mut self, reason: &str) -> io::Error {
        self.refused = Some(reason.to_owned());
        io::Error::new(io::ErrorKind::InvalidData, reason.to_owned())
    }
}

impl<R: Read> Read for NoDtd<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(reason) = &self.refused {
            return Err(io::Error::new(io::ErrorKind::InvalidData, reason.clone()));
        }
        let n = self.inner.read(buf)?;
        for &byte in &buf[..n] {
            if self.state == Prolog::Done {
                break;
            }
            if byte == 0 {
                return Err(self.refuse("NUL byte before the root element (sitemaps are UTF-8)"));
            }
            self.state = match (self.state, byte) {
                (Prolog::Text, b'<') => Prolog::Lt,
                (Prolog::Text, _) => Prolog::Text,
                (Prolog::Lt, b'!') => Prolog::Bang,
                (Prolog::Lt, b'?') => Prolog::Pi(false),
                (Prolog::Lt, _) => Prolog::Done,
                (Prolog::Bang, b'-') => Prolog::BangDash,
                (Prolog::Bang, _) => {
                    return Err(self.refuse("a document type declaration (DTD) is not allowed"));
                }
                (Prolog::BangDash, b'-') => Prolog::Comment(0),
                (Prolog::BangDash, _) => return Err(self.refuse("malformed comment")),
                (Prolog::Comment(dashes), b'>') if dashes >= 2 => Prolog::Text,
                (Prolog::Comment(dashes), b'-') => Prolog::Comment((dashes + 1).min(2)),
                (Prolog::Comment(_), _) => Prolog::Comment(0),
                (Prolog::Pi(true), b'>') => Prolog::Text,
                (Prolog::Pi(_), b'?') => Prolog::Pi(true),
                (Prolog::Pi(_), _) => Prolog::Pi(false),
                (Prolog::Done, _) => Prolog::Done,
            };
        }
        Ok(n)
    }
}

/// Unix seconds of a W3C datetime (the `<lastmod>` format): `YYYY`, `YYYY-MM`,
/// `YYYY-MM-DD`, or `YYYY-MM-DDThh:mm[:ss[.s+]]TZD` with `TZD` one of `Z`, `+hh:mm`,
/// `-hh:mm` (`+hhmm` and a missing `TZD`, read as UTC, are tolerated: both are common).
/// A date alone is midnight UTC; fractions of a second are dropped. Anything else, an
/// impossible date (`2023-02-29`) included, is `None`.
pub fn parse_w3c_datetime(text: &str) -> Option<i64> {
    let mut c = Cursor(text.trim().as_bytes());
    let year = c.digits(4)?;
    let (mut month, mut day) = (1, 1);
    let mut seconds_of_day = 0;
    let mut offset = 0;
    if c.eat(b'-') {
        month = c.digits(2)?;
        if c.eat(b'-') {
            day = c.digits(2)?;
            if c.eat(b'T') || c.eat(b't') {
                let hour = c.digits(2)?;
                if !c.eat(b':') {
                    return None;
                }
                let minute = c.digits(2)?;
                let mut second = 0;
                if c.eat(b':') {
                    second = c.digits(2)?;
                    if c.eat(b'.') {
                        c.fraction()?;
                    }
                }
                if hour > 23 || minute > 59 || second > 60 {
                    return None;
                }
                seconds_of_day = hour * 3600 + minute * 60 + second;
                offset = c.zone()?;
            }
        }
    }
    if !c.0.is_empty() || !(1..=12).contains(&month) || day < 1 || day > days_in(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + seconds_of_day - offset)
}

/// A byte cursor of [`parse_w3c_datetime`].
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    /// Exactly `n` ASCII digits.
    fn digits(&mut self, n: usize) -> Option<i64> {
        let digits = self.0.get(..n)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.0 = &self.0[n..];
        Some(digits.iter().fold(0, |v, d| v * 10 + i64::from(d - b'0')))
    }

    /// Consumes `byte` when it comes next.
    fn eat(&mut self, byte: u8) -> bool {
        match self.0.split_first() {
            Some((&first, rest)) if first == byte => {
                self.0 = rest;
                true
            }
            _ => false,
        }
    }

    /// One or more digits (a fraction of a second, ignored).
    fn fraction(&mut self) -> Option<()> {
        let n = self.0.iter().take_while(|b| b.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        self.0 = &self.0[n..];
        Some(())
    }

    /// The time zone designator, as seconds east of UTC (0 when absent).
    fn zone(&mut self) -> Option<i64> {
        if self.0.is_empty() || self.eat(b'Z') || self.eat(b'z') {
            return Some(0);
        }
        let sign = if self.eat(b'+') {
            1
        } else if self.eat(b'-') {
            -1
        } else {
            return None;
        };
        let hours = self.digits(2)?;
        self.eat(b':');
        let minutes = self.digits(2)?;
        if hours > 23 || minutes > 59 {
            return None;
        }
        Some(sign * (hours * 3600 + minutes * 60))
    }
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The `Sitemap:` URLs of a robots.txt body (the field name in any case; `#` starts a
/// comment), resolved against `site_root`, on its site only, deduplicated, at most
/// [`MAX_ROBOTS_SITEMAPS`]. (`texting_robots::Robot::sitemaps` holds the same lines,
/// unfiltered: [`same_site_sitemaps`] filters such a list.)
pub fn robots_sitemaps(robots_txt: &[u8], site_root: &NormalizedUrl) -> Vec<NormalizedUrl> {
    let values = robots_txt
        .split(|&b| b == b'\n' || b == b'\r')
        .filter_map(|line| std::str::from_utf8(line).ok())
        .filter_map(|line| {
            let line = line.trim_start_matches('\u{feff}');
            let line = line.split('#').next().unwrap_or_default();
            let (field, value) = line.split_once(':')?;
            field
                .trim()
                .eq_ignore_ascii_case("sitemap")
                .then_some(value.trim())
        });
    same_site_sitemaps(values, site_root)
}

/// The sitemap URLs among `urls` that normalize (relative ones against `site_root`) to
/// `site_root`'s site, deduplicated, in order, at most [`MAX_ROBOTS_SITEMAPS`].
pub fn same_site_sitemaps<'a>(
    urls: impl IntoIterator<Item = &'a str>,
    site_root: &NormalizedUrl,
) -> Vec<NormalizedUrl> {
    let site = site_root.site();
    let mut kept: Vec<NormalizedUrl> = Vec::new();
    for raw in urls {
        if kept.len() == MAX_ROBOTS_SITEMAPS {
            break;
        }
        if raw.is_empty() {
            continue;
        }
        match normalize(raw, Some(site_root.as_url())) {
            Ok(url) if url.site() == site && !kept.contains(&url) => kept.push(url),
            Ok(url) if url.site() != site => {
                tracing::debug!(site = %site, sitemap = %url, "robots.txt sitemap of another site ignored");
            }
            _ => {}
        }
    }
    kept
}

/// Fetches the robots.txt of `site_root`'s site (at most the RFC 9309 500 KiB, as the
/// robots cache does) and returns its [`robots_sitemaps`]. A request of its own: when
/// the robots.txt body is at hand, call [`robots_sitemaps`] on it instead.
pub async fn fetch_robots_sitemaps(
    fetcher: &Fetcher,
    site_root: &NormalizedUrl,
) -> Result<Vec<NormalizedUrl>> {
    let robots_url = normalize("/robots.txt", Some(site_root.as_url()))?;
    let res = fetcher
        .fetch_limited(&robots_url, MAX_ROBOTS_BYTES, Overflow::Truncate, no_gate)
        .await?;
    Ok(robots_sitemaps(&res.body, site_root))
}

/// What one [`discover`] round found on a site.
#[derive(Debug, Default)]
pub struct SitemapReport {
    /// Same-site page URLs with their `lastmod` (unix seconds), deduplicated (a URL listed
    /// twice keeps its latest `lastmod`), in the order found, at most [`MAX_SITE_URLS`].
    pub entries: Vec<(NormalizedUrl, Option<i64>)>,
    /// Sitemap files read (2xx and a sitemap, possibly cut or broken off).
    pub files_fetched: usize,
    /// Sitemap files that failed: HTTP error, network, refused by the gate, redirected to
    /// another site, or no sitemap. Each has its line in `errors`.
    pub files_failed: usize,
    /// Files read only up to [`MAX_SITEMAP_URLS`] or [`MAX_SITEMAP_BYTES`].
    pub files_cut: usize,
    /// Sitemap files listed but not requested: [`MAX_SITEMAP_FILES`] or
    /// [`MAX_SITE_URLS`] reached, or deeper than [`MAX_INDEX_DEPTH`].
    pub files_skipped: usize,
    /// Sitemap URLs listed again (an index listing itself, a loop of indexes, a
    /// redirect to another file of the round): not requested again.
    pub repeats: usize,
    /// URLs (pages, or sitemaps of an index) of another site, dropped.
    pub dropped_other_site: usize,
    /// `<loc>`s missing or not crawlable, dropped.
    pub dropped_unparseable: usize,
    /// Page URLs past [`MAX_SITE_URLS`], dropped.
    pub dropped_over_cap: usize,
    /// Page URLs listed again (in the same file or another), merged.
    pub duplicates: usize,
    /// What went wrong, per sitemap URL: failures, and XML errors of files whose entries
    /// before the error were kept.
    pub errors: Vec<(NormalizedUrl, Error)>,
}

/// [`discover_gated`] with no gate beyond the fetcher's SSRF guard and the same-site rule.
pub async fn discover(
    fetcher: &Fetcher,
    site_root: &NormalizedUrl,
    robots_sitemaps: Vec<NormalizedUrl>,
) -> SitemapReport {
    discover_gated(fetcher, site_root, robots_sitemaps, no_gate).await
}

/// Reads the sitemaps of `site_root`'s site: `robots_sitemaps` (the same-site ones, at
/// most [`MAX_ROBOTS_SITEMAPS`]), or `/sitemap.xml` when there are none; follows index
/// files breadth first (each sitemap URL requested once per round: loops stop) down to
/// [`MAX_INDEX_DEPTH`], at most [`MAX_SITEMAP_FILES`] requests, one at a time, and
/// stops once [`MAX_SITE_URLS`] pages are kept. Nothing fails the round: failures are
/// counted and listed in the report.
///
/// `gate` is asked before every request, the first of each file and every redirect
/// target (a redirect to another site is refused before the gate): the crawl loop passes
/// robots.txt and the site's politeness wait, as for pages. An error from it fails that
/// file only.
pub async fn discover_gated<G, F>(
    fetcher: &Fetcher,
    site_root: &NormalizedUrl,
    robots_sitemaps: Vec<NormalizedUrl>,
    mut gate: G,
) -> SitemapReport
where
    G: FnMut(NormalizedUrl) -> F,
    F: Future<Output = Result<()>>,
{
    let site = site_root.site();
    let mut report = SitemapReport::default();
    let mut roots = Vec::new();
    for url in robots_sitemaps {
        if url.site() != site {
            report.dropped_other_site += 1;
        } else if !roots.contains(&url) && roots.len() < MAX_ROBOTS_SITEMAPS {
            roots.push(url);
        }
    }
    if roots.is_empty() {
        match normalize("/sitemap.xml", Some(site_root.as_url())) {
            Ok(url) => roots.push(url),
            Err(e) => {
                report.errors.push((site_root.clone(), e));
                return report;
            }
        }
    }
    let mut visited: HashSet<NormalizedUrl> = roots.iter().cloned().collect();
    let mut queue: VecDeque<(NormalizedUrl, usize)> = roots.into_iter().map(|u| (u, 0)).collect();
    let mut index_of: HashMap<NormalizedUrl, usize> = HashMap::new();

    while let Some((url, depth)) = queue.pop_front() {
        if report.files_fetched + report.files_failed >= MAX_SITEMAP_FILES
            || report.entries.len() >= MAX_SITE_URLS
        {
            report.files_skipped += 1 + queue.len();
            tracing::debug!(site = %site, skipped = 1 + queue.len(), "sitemap caps reached");
            break;
        }
        let parsed = match fetch_and_parse(fetcher, &url, &site, &visited, &mut gate).await {
            Ok(Fetched::Parsed(parsed)) => parsed,
            Ok(Fetched::Repeat) => {
                tracing::debug!(sitemap = %url, "sitemap redirects to another of this round");
                report.repeats += 1;
                continue;
            }
            Err(e) => {
                tracing::debug!(sitemap = %url, error = %e, "sitemap failed");
                report.files_failed += 1;
                report.errors.push((url, e));
                continue;
            }
        };
        let (parsed, final_url) = *parsed;
        visited.insert(final_url);
        report.files_fetched += 1;
        report.files_cut += usize::from(parsed.cut.is_some());
        report.dropped_other_site += parsed.dropped.other_site;
        report.dropped_unparseable += parsed.dropped.unparseable;
        tracing::debug!(
            sitemap = %url,
            kind = ?parsed.kind,
            entries = parsed.entries.len(),
            other_site = parsed.dropped.other_site,
            unparseable = parsed.dropped.unparseable,
            cut = ?parsed.cut,
            error = parsed.error.as_deref().unwrap_or(""),
            "sitemap read"
        );
        if let Some(e) = parsed.error {
            report.errors.push((url.clone(), Error::Sitemap(e)));
        }
        match parsed.kind {
            SitemapKind::Index if depth >= MAX_INDEX_DEPTH => {
                tracing::debug!(sitemap = %url, depth, "sitemap index too deep: children not read");
                report.files_skipped += parsed.entries.len();
            }
            SitemapKind::Index => {
                for (child, _) in parsed.entries {
                    if visited.insert(child.clone()) {
                        queue.push_back((child, depth + 1));
                    } else {
                        report.repeats += 1;
                    }
                }
            }
            SitemapKind::UrlSet => {
                for (page, lastmod) in parsed.entries {
                    if let Some(&i) = index_of.get(&page) {
                        report.duplicates += 1;
                        let kept = &mut report.entries[i].1;
                        *kept = (*kept).max(lastmod);
                    } else if report.entries.len() >= MAX_SITE_URLS {
                        report.dropped_over_cap += 1;
                    } else {
                        index_of.insert(page.clone(), report.entries.len());
                        report.entries.push((page, lastmod));
                    }
                }
            }
        }
    }
    tracing::debug!(
        site = %site,
        pages = report.entries.len(),
        files = report.files_fetched,
        failed = report.files_failed,
        skipped = report.files_skipped,
        "sitemaps discovered"
    );
    report
}

/// The outcome of one sitemap request.
enum Fetched {
    /// Read: the file and its final URL (boxed: the other variant is small).
    Parsed(Box<(Parsed, NormalizedUrl)>),
    /// Redirected to another sitemap URL of this round (not followed).
    Repeat,
}

/// Fetches `url` (gate first, same-site redirects only, at most [`MAX_SITEMAP_BYTES`] of
/// body) and parses it on a blocking thread. A redirect to a sitemap URL of this round
/// (`visited`) is not followed: that file is read (or was) on its own.
async fn fetch_and_parse<G, F>(
    fetcher: &Fetcher,
    url: &NormalizedUrl,
    site: &str,
    visited: &HashSet<NormalizedUrl>,
    gate: &mut G,
) -> Result<Fetched>
where
    G: FnMut(NormalizedUrl) -> F,
    F: Future<Output = Result<()>>,
{
    gate(url.clone()).await?;
    let repeated = AtomicBool::new(false);
    let redirect_gate = |next: NormalizedUrl| {
        if next.site() != site {
            Either::Left(std::future::ready(Err(Error::Sitemap(format!(
                "redirect to another site: {next}"
            )))))
        } else if visited.contains(&next) {
            repeated.store(true, Ordering::Relaxed);
            Either::Left(std::future::ready(Err(Error::Sitemap(format!(
                "redirect to {next}, a sitemap of this round"
            )))))
        } else {
            Either::Right(gate(next))
        }
    };
    let fetched = fetcher
        .fetch_limited(url, MAX_SITEMAP_BYTES, Overflow::Truncate, redirect_gate)
        .await;
    if repeated.load(Ordering::Relaxed) {
        return Ok(Fetched::Repeat);
    }
    let res = fetched?;
    let truncated = res.body.len() >= MAX_SITEMAP_BYTES;
    let body = res.body;
    let final_url = res.final_url;
    let base = final_url.clone();
    let mut parsed = tokio::task::spawn_blocking(move || parse(&body, &base)).await??;
    if truncated && parsed.cut.is_none() {
        // The transfer (before any gzip of the file's own was undone) hit the cap: the XML
        // error at the truncation point is the cut's doing.
        parsed.cut = Some(Cut::Bytes);
        parsed.error = None;
    }
    Ok(Fetched::Parsed(Box::new((parsed, final_url))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use axum::Router;
    use axum::http::{StatusCode, Uri, header};
    use axum::response::IntoResponse;
    use bytes::Bytes;

    use crate::fetch::FetchConfig;
    use crate::test_util::serve;
    use crate::util::lock;

    const NS: &str = "http://www.sitemaps.org/schemas/sitemap/0.9";

    fn url(s: &str) -> NormalizedUrl {
        normalize(s, None).unwrap()
    }

    /// A urlset of `pages` (loc, lastmod).
    fn urlset(pages: &[(&str, Option<&str>)]) -> String {
        let mut xml =
            format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<urlset xmlns=\"{NS}\">\n");
        for (loc, lastmod) in pages {
            xml.push_str(&format!("  <url><loc>{loc}</loc>"));
            if let Some(lastmod) = lastmod {
                xml.push_str(&format!("<lastmod>{lastmod}</lastmod>"));
            }
            xml.push_str("</url>\n");
        }
        xml.push_str("</urlset>\n");
        xml
    }

    /// A sitemap index of `sitemaps`.
    fn index(sitemaps: &[&str]) -> String {
        let mut xml = format!("<sitemapindex xmlns=\"{NS}\">");
        for loc in sitemaps {
            xml.push_str(&format!("<sitemap><loc>{loc}</loc></sitemap>"));
        }
        xml.push_str("</sitemapindex>");
        xml
    }

    fn locs(parsed: &Parsed) -> Vec<&str> {
        parsed.entries.iter().map(|(u, _)| u.as_str()).collect()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    /// A gzip bomb that is a well-formed sitemap of `base`'s site: pages 1 to 3, a comment
    /// of `padding` bytes (ignored comments cost the XML parser no memory, so only the
    /// byte cap stops it), then page `after`. Written through the encoder 1 MiB at a
    /// time: the test never holds the decompressed text.
    fn gzip_bomb(base: &str, padding: usize) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let pages: Vec<String> = (1..=3).map(|i| format!("{base}/{i}")).collect();
        let head = urlset(&pages.iter().map(|p| (p.as_str(), None)).collect::<Vec<_>>());
        let head = head.trim_end().trim_end_matches("</urlset>");
        enc.write_all(head.as_bytes()).unwrap();
        enc.write_all(b"<!--").unwrap();
        let chunk = vec![b'a'; 1024 * 1024];
        let mut left = padding;
        while left > 0 {
            let n = left.min(chunk.len());
            enc.write_all(&chunk[..n]).unwrap();
            left -= n;
        }
        let tail = format!("--><url><loc>{base}/after</loc></url></urlset>");
        enc.write_all(tail.as_bytes()).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn w3c_datetimes() {
        let day = 1_104_537_600; // 2005-01-01T00:00:00Z
        let good = [
            ("2005", day),
            ("2005-01", day),
            ("2005-02", day + 31 * 86_400),
            ("2005-01-01", day),
            ("  2005-01-01\n", day),
            ("2005-01-01T12:30Z", day + 45_000),
            ("2005-01-01t12:30z", day + 45_000),
            ("2005-01-01T12:30:15Z", day + 45_015),
            ("2005-01-01T00:00:00.123456+00:00", day),
            ("2004-12-31T19:00:00-05:00", day),
            ("2005-01-01T01:00:00+01:00", day),
            ("2005-01-01T05:30+0530", day),
            ("2005-01-01T00:00:00", day),
            ("1970-01-01", 0),
            ("1969-12-31", -86_400),
            ("2000-03-01", 951_868_800),
            ("2024-02-29", 1_709_164_800),
            ("2000-02-29T23:59:59Z", 951_868_799),
        ];
        for (text, want) in good {
            assert_eq!(parse_w3c_datetime(text), Some(want), "{text:?}");
        }
        let bad = [
            "",
            "yesterday",
            "2023-02-29",
            "1900-02-29",
            "2005-13-01",
            "2005-00-10",
            "2005-01-00",
            "2005-01-32",
            "2005-04-31",
            "2005-1-1",
            "05-01-01",
            "20050101",
            "2005-01-01T",
            "2005-01-01T12Z",
            "2005-01-01T24:00Z",
            "2005-01-01T12:60Z",
            "2005-01-01T12:00:61Z",
            "2005-01-01T12:00:00.Z",
            "2005-01-01T12:00+5",
            "2005-01-01T12:00+24:00",
            "2005-01-01T12:00 +01:00",
            "2005-01-01 12:00",
            "2005-01-01x",
            "２００５-01-01",
        ];
        for text in bad {
            assert_eq!(parse_w3c_datetime(text), None, "{text:?}");
        }
    }

    #[test]
    fn urlset_entries_with_lastmod_variants() {
        let xml = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="{NS}" xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
  <url>
    <loc>
      http://example.com/a?x=1&amp;y=2
    </loc>
    <lastmod>2005-01-01</lastmod>
    <changefreq>daily</changefreq>
    <priority>0.8</priority>
  </url>
  <url><lastmod>2005-01-01T12:30:15+00:00</lastmod><loc><![CDATA[http://example.com/b]]></loc></url>
  <url>
    <loc>http://example.com/c</loc>
    <image:image><image:loc>http://example.com/c.png</image:loc></image:image>
  </url>
  <url><loc>/relative</loc><lastmod>last tuesday</lastmod></url>
  <url><loc>https://example.com/d#frag</loc><lastmod>2004-12-31T19:00-05:00</lastmod></url>
</urlset>"#
        );
        let parsed = parse(xml.as_bytes(), &url("http://example.com/sitemap.xml")).unwrap();
        assert_eq!(parsed.kind, SitemapKind::UrlSet);
        assert_eq!(
            parsed.entries,
            vec![
                (url("http://example.com/a?x=1&y=2"), Some(1_104_537_600)),
                (url("http://example.com/b"), Some(1_104_537_600 + 45_015)),
                (url("http://example.com/c"), None),
                (url("http://example.com/relative"), None),
                (url("https://example.com/d"), Some(1_104_537_600)),
            ]
        );
        assert_eq!(parsed.dropped, Dropped::default());
        assert_eq!((parsed.cut, parsed.error), (None, None));
        assert_eq!(parsed.bytes_read, xml.len() as u64);
    }

    #[test]
    fn namespaces_and_prefixes_are_tolerated() {
        let site = url("http://example.com/sitemap.xml");
        let prefixed = format!(
            "<sm:urlset xmlns:sm=\"{NS}\"><sm:url><sm:loc>http://example.com/p</sm:loc>\
             <sm:lastmod>2005-01-01</sm:lastmod></sm:url></sm:urlset>"
        );
        let parsed = parse(prefixed.as_bytes(), &site).unwrap();
        assert_eq!(
            parsed.entries,
            vec![(url("http://example.com/p"), Some(1_104_537_600))]
        );

        // No namespace at all (old generators), and a foreign `loc` right in the entry.
        let bare = "<urlset><url><x:loc xmlns:x=\"urn:other\">http://example.com/wrong</x:loc>\
                    <loc>http://example.com/right</loc></url></urlset>";
        let parsed = parse(bare.as_bytes(), &site).unwrap();
        assert_eq!(locs(&parsed), ["http://example.com/right"]);

        // An entry of another namespace is no entry.
        let foreign = format!(
            "<urlset xmlns=\"{NS}\"><o:url xmlns:o=\"urn:o\"><o:loc>http://example.com/o</o:loc></o:url>\
             <url><loc>http://example.com/u</loc><loc>http://example.com/second</loc></url></urlset>"
        );
        let parsed = parse(foreign.as_bytes(), &site).unwrap();
        assert_eq!(locs(&parsed), ["http://example.com/u"]);
    }

    #[test]
    fn index_lists_same_site_sitemaps() {
        let xml = format!(
            "<sitemapindex xmlns=\"{NS}\">\
             <sitemap><loc>http://example.com/s1.xml.gz</loc><lastmod>2005-01-01</lastmod></sitemap>\
             <sitemap><loc>http://other.example/s2.xml</loc></sitemap>\
             <sitemap><loc>/s3.xml</loc></sitemap>\
             <url><loc>http://example.com/not-an-entry-of-an-index</loc></url>\
             </sitemapindex>"
        );
        let parsed = parse(xml.as_bytes(), &url("http://example.com/sitemap_index.xml")).unwrap();
        assert_eq!(parsed.kind, SitemapKind::Index);
        assert_eq!(
            parsed.entries,
            vec![
                (url("http://example.com/s1.xml.gz"), Some(1_104_537_600)),
                (url("http://example.com/s3.xml"), None),
            ]
        );
        assert_eq!(parsed.dropped.other_site, 1);
    }

    #[test]
    fn other_sites_and_unparseable_locs_are_dropped() {
        let long = format!("http://example.com/{}", "a".repeat(MAX_URL_BYTES * 3));
        let xml = urlset(&[
            ("http://example.com/kept", None),
            ("https://example.com/kept-too", None),
            ("http://other.example/x", None),
            ("http://www.example.com/x", None),
            ("http://example.com:8080/x", None),
            ("//cdn.example.org/x", None),
            ("javascript:alert(1)", None),
            ("mailto:a@example.com", None),
            ("ftp://example.com/x", None),
            ("   ", None),
            (&long, None),
        ])
        .replace(
            "</urlset>",
            "<url><lastmod>2005-01-01</lastmod></url></urlset>",
        );
        let parsed = parse(xml.as_bytes(), &url("http://example.com/sitemap.xml")).unwrap();
        assert_eq!(
            locs(&parsed),
            ["http://example.com/kept", "https://example.com/kept-too"]
        );
        assert_eq!(
            parsed.dropped,
            Dropped {
                other_site: 4,
                unparseable: 6
            }
        );
    }

    #[test]
    fn hundred_thousand_urls_are_cut_at_the_cap() {
        let pages: Vec<String> = (0..100_000)
            .map(|i| format!("http://example.com/p{i}"))
            .collect();
        let list: Vec<(&str, Option<&str>)> = pages.iter().map(|p| (p.as_str(), None)).collect();
        let xml = urlset(&list);
        let site = url("http://example.com/sitemap.xml");
        let parsed = parse(xml.as_bytes(), &site).unwrap();
        assert_eq!(parsed.entries.len(), MAX_SITEMAP_URLS);
        assert_eq!(parsed.cut, Some(Cut::Urls));
        assert_eq!(
            parsed.entries.last().unwrap().0.as_str(),
            "http://example.com/p49999"
        );
        assert!(parsed.bytes_read < xml.len() as u64, "read on past the cap");

        // Exactly the cap is no cut.
        let exact = urlset(&list[..MAX_SITEMAP_URLS]);
        let parsed = parse(exact.as_bytes(), &site).unwrap();
        assert_eq!((parsed.entries.len(), parsed.cut), (MAX_SITEMAP_URLS, None));
    }

    #[test]
    fn gzip_is_told_by_its_magic_bytes() {
        let xml = urlset(&[("http://example.com/g", Some("2005-01-01"))]);
        let parsed = parse(&gzip(xml.as_bytes()), &url("http://example.com/pages.xml")).unwrap();
        assert_eq!(
            parsed.entries,
            vec![(url("http://example.com/g"), Some(1_104_537_600))]
        );
        assert_eq!(parsed.bytes_read, xml.len() as u64);

        // A corrupt gzip body after some pages keeps them and says what broke.
        let many = urlset(
            &(0..2000)
                .map(|_| ("http://example.com/x", None))
                .collect::<Vec<_>>(),
        );
        let mut broken = gzip(many.as_bytes());
        let len = broken.len();
        broken[len / 2..].fill(0xff);
        let parsed = parse(&broken, &url("http://example.com/pages.xml")).unwrap();
        assert!(parsed.error.is_some());
        assert!(!parsed.entries.is_empty() && parsed.entries.len() < 2000);
    }

    #[test]
    fn a_gzip_bomb_is_cut_at_the_decompressed_cap() {
        let bomb = gzip_bomb("http://example.com", 200 * 1024 * 1024);
        assert!(bomb.len() < 1024 * 1024, "the bomb is {} bytes", bomb.len());
        let parsed = parse(&bomb, &url("http://example.com/bomb.xml.gz")).unwrap();
        assert_eq!(parsed.cut, Some(Cut::Bytes));
        assert_eq!(parsed.bytes_read, MAX_SITEMAP_BYTES as u64);
        assert_eq!(parsed.error, None);
        assert_eq!(
            locs(&parsed),
            [
                "http://example.com/1",
                "http://example.com/2",
                "http://example.com/3"
            ]
        );
    }

    #[test]
    fn malformed_xml_keeps_what_was_read() {
        let site = url("http://example.com/sitemap.xml");
        let cases = [
            "<url><loc>http://example.com/c</loc></ur></urlset>",
            "<url><loc>http://example.com/c&nbsp;</loc></url></urlset>",
            "<url><loc>http://example.com/c</loc></url>",
            "<url><loc>http://example.com/c</loc></url></urlset><urlset></urlset>",
            "<url><loc>http://example.com/c</loc></url><!DOCTYPE x [<!ENTITY a \"b\">]></urlset>",
            "<url><loc>http://example.com/c</loc><a b=\"1\" b=\"2\"/></url></urlset>",
        ];
        for tail in cases {
            let xml = format!(
                "<urlset xmlns=\"{NS}\"><url><loc>http://example.com/a</loc></url>\
                 <url><loc>http://example.com/b</loc></url>{tail}"
            );
            let parsed = parse(xml.as_bytes(), &site).unwrap_or_else(|e| panic!("{tail}: {e}"));
            assert!(parsed.error.is_some(), "{tail}: no error");
            assert_eq!(
                &locs(&parsed)[..2],
                ["http://example.com/a", "http://example.com/b"],
                "{tail}"
            );
        }

        // Deep nesting stops at the depth cap instead of growing the parser's stack.
        let deep = format!("<urlset xmlns=\"{NS}\">{}", "<a>".repeat(200_000));
        let parsed = parse(deep.as_bytes(), &site).unwrap();
        assert!(parsed.error.unwrap().contains("nested deeper"));
        assert!(parsed.bytes_read < deep.len() as u64);

        // Not a sitemap at all.
        for junk in [
            &b""[..],
            b"   ",
            b"<!doctype html><html><body>Not found</body></html>",
            b"<html><body>Not found</body></html>",
            b"<rss><channel></channel></rss>",
            b"User-agent: *\nDisallow: /",
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR",
            b"<?xml version=\"1.0\"?>",
        ] {
            let got = parse(junk, &site);
            assert!(
                matches!(got, Err(Error::Sitemap(_))),
                "{:?}: {got:?}",
                String::from_utf8_lossy(junk)
            );
        }
    }

    #[test]
    fn entity_declarations_are_refused_before_parsing() {
        let site = url("http://example.com/sitemap.xml");
        let body = format!(
            "<urlset xmlns=\"{NS}\"><url><loc>http://example.com/&lol9;</loc></url></urlset>"
        );
        let mut laughs =
            String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol \"lol\">\n");
        for i in 1..=9 {
            let prev = if i == 1 {
                "lol".to_owned()
            } else {
                format!("lol{}", i - 1)
            };
            laughs.push_str(&format!(
                "<!ENTITY lol{i} \"{}\">\n",
                format!("&{prev};").repeat(10)
            ));
        }
        laughs.push_str("]>\n");
        // Parameter entities grow inside the DTD itself, before any element.
        let mut parameter = String::from("<!DOCTYPE p [\n<!ENTITY % a0 \"aaaaaaaaaa\">\n");
        for i in 1..=9 {
            parameter.push_str(&format!(
                "<!ENTITY % a{i} \"{}\">\n",
                format!("%a{};", i - 1).repeat(10)
            ));
        }
        parameter.push_str("]>\n");
        let cases = [
            format!("{laughs}{body}"),
            format!("{parameter}{body}"),
            format!("<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>{body}"),
            format!("<!-- a <b> in a comment --><!DOCTYPE x [<!ENTITY lol9 \"x\">]>{body}"),
            format!("<?pi <urlset> ?><!doctype x [<!ENTITY lol9 \"x\">]>{body}"),
            format!("\u{feff}<!DOCTYPE urlset>{body}"),
        ];
        for xml in &cases {
            let got = parse(xml.as_bytes(), &site);
            assert!(
                matches!(&got, Err(Error::Sitemap(m)) if m.contains("DTD")),
                "{xml}: {got:?}"
            );
            // Gzipped too.
            let got = parse(&gzip(xml.as_bytes()), &site);
            assert!(
                matches!(&got, Err(Error::Sitemap(m)) if m.contains("DTD")),
                "{got:?}"
            );
        }

        // UTF-16 would hide the declaration from a byte scan: refused by its NUL bytes.
        let utf16: Vec<u8> = format!("{laughs}{body}")
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let with_bom = [&[0xff, 0xfe][..], &utf16].concat();
        for bytes in [utf16, with_bom] {
            assert!(matches!(parse(&bytes, &site), Err(Error::Sitemap(m)) if m.contains("NUL")));
        }

        // The guard lets a BOM, the declaration, comments and instructions through.
        let fine = format!(
            "\u{feff}<?xml version=\"1.0\" encoding=\"UTF-16\"?>\n<!-- <x> - -> --><?pi a<b?>\n\
             <urlset xmlns=\"{NS}\"><url><loc>http://example.com/ok</loc></url></urlset>"
        );
        let parsed = parse(fine.as_bytes(), &site).unwrap();
        assert_eq!(locs(&parsed), ["http://example.com/ok"]);
    }

    #[test]
    fn robots_txt_sitemap_lines() {
        let root = url("http://example.com/");
        let mut robots = String::from(
            "\u{feff}Sitemap: http://example.com/first.xml\r\n\
             User-agent: *\r\n\
             Disallow: /private\r\n\
             sitemap:/relative.xml # a comment\n\
             SITEMAP : http://example.com/first.xml\n\
             Sitemap: http://other.example/theirs.xml\n\
             Sitemap: http://example.com:8080/port.xml\n\
             # Sitemap: http://example.com/commented.xml\n\
             Sitemaps: http://example.com/misspelled.xml\n\
             Sitemap: javascript:alert(1)\n\
             Sitemap:\n\
             \tSitemap:\thttps://example.com/tabbed.xml\n",
        );
        for i in 0..20 {
            robots.push_str(&format!("Sitemap: http://example.com/s{i}.xml\n"));
        }
        let got = robots_sitemaps(robots.as_bytes(), &root);
        let got: Vec<&str> = got.iter().map(NormalizedUrl::as_str).collect();
        assert_eq!(
            got,
            [
                "http://example.com/first.xml",
                "http://example.com/relative.xml",
                "https://example.com/tabbed.xml",
                "http://example.com/s0.xml",
                "http://example.com/s1.xml",
                "http://example.com/s2.xml",
                "http://example.com/s3.xml",
                "http://example.com/s4.xml",
            ]
        );
        assert_eq!(got.len(), MAX_ROBOTS_SITEMAPS);
        assert!(robots_sitemaps(b"\xff\xfe\0garbage", &root).is_empty());
    }

    /// What a fixture path answers.
    #[derive(Clone)]
    enum Reply {
        Text(&'static str, Bytes),
        Redirect(String),
    }

    fn xml(body: String) -> Reply {
        Reply::Text("application/xml", Bytes::from(body))
    }

    /// A site on 127.0.0.1 whose files are set after it started (they name its base),
    /// counting the requests of every path.
    struct Fixture {
        base: String,
        files: Arc<Mutex<HashMap<String, Reply>>>,
        hits: Arc<Mutex<HashMap<String, usize>>>,
    }

    impl Fixture {
        async fn start() -> Fixture {
            let files: Arc<Mutex<HashMap<String, Reply>>> = Arc::default();
            let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
            let router = Router::new().fallback({
                let files = files.clone();
                let hits = hits.clone();
                move |uri: Uri| {
                    let path = uri.path().to_owned();
                    *lock(&hits).entry(path.clone()).or_default() += 1;
                    let reply = lock(&files).get(&path).cloned();
                    async move {
                        match reply {
                            Some(Reply::Text(ctype, body)) => {
                                ([(header::CONTENT_TYPE, ctype)], body).into_response()
                            }
                            Some(Reply::Redirect(to)) => {
                                (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
                            }
                            None => StatusCode::NOT_FOUND.into_response(),
                        }
                    }
                }
            });
            Fixture {
                base: serve(router).await,
                files,
                hits,
            }
        }

        fn at(&self, path: &str) -> String {
            format!("{}{path}", self.base)
        }

        fn put(&self, path: &str, reply: Reply) {
            lock(&self.files).insert(path.to_owned(), reply);
        }

        fn hits(&self, path: &str) -> usize {
            lock(&self.hits).get(path).copied().unwrap_or(0)
        }

        fn total_hits(&self) -> usize {
            lock(&self.hits).values().sum()
        }
    }

    fn fetcher() -> Fetcher {
        Fetcher::new(FetchConfig {
            allow_private_addresses: true,
            request_timeout: Duration::from_secs(60),
            ..FetchConfig::default()
        })
        .unwrap()
    }

    #[tokio::test]
    async fn discover_follows_indexes_once_and_records_failures() {
        let s = Fixture::start().await;
        let other = Fixture::start().await;
        let robots = format!(
            "User-agent: *\nDisallow: /private\n\
             Sitemap: {}\nSitemap: {}\nSitemap: {}\nSitemap: {}\nSitemap: {}\nSitemap: {}\n",
            s.at("/index.xml"),
            s.at("/missing.xml"),
            other.at("/sitemap.xml"),
            s.at("/pages"),
            s.at("/moved.xml"),
            s.at("/again.xml"),
        );
        s.put(
            "/robots.txt",
            Reply::Text("text/plain", Bytes::from(robots)),
        );
        s.put(
            "/index.xml",
            xml(index(&[
                &s.at("/index.xml"),
                &s.at("/index2.xml"),
                &s.at("/a.xml"),
                &other.at("/other.xml"),
            ])),
        );
        s.put(
            "/index2.xml",
            xml(index(&[
                &s.at("/index.xml"),
                &s.at("/b.xml"),
                &s.at("/index3.xml"),
            ])),
        );
        s.put("/index3.xml", xml(index(&[&s.at("/deep.xml")])));
        s.put("/deep.xml", xml(urlset(&[(&s.at("/deep-page"), None)])));
        s.put(
            "/a.xml",
            xml(urlset(&[
                (&s.at("/p1"), Some("2005-01-01")),
                (&s.at("/p2"), None),
                (&other.at("/x"), None),
                ("javascript:alert(1)", None),
            ])),
        );
        s.put(
            "/b.xml",
            xml(urlset(&[
                (&s.at("/p2"), Some("2006-01-01")),
                (&s.at("/p3"), None),
            ])),
        );
        // A `.xml.gz` under a name that does not say so, as raw bytes.
        let gz = gzip(urlset(&[(&s.at("/g1"), None), (&s.at("/g2"), None)]).as_bytes());
        s.put(
            "/pages",
            Reply::Text("application/octet-stream", Bytes::from(gz)),
        );
        s.put("/moved.xml", Reply::Redirect(other.at("/moved.xml")));
        s.put("/again.xml", Reply::Redirect("/index.xml".to_owned()));
        other.put("/moved.xml", xml(urlset(&[(&other.at("/stolen"), None)])));

        let fetcher = fetcher();
        let root = url(&s.at("/"));
        let listed = fetch_robots_sitemaps(&fetcher, &root).await.unwrap();
        assert_eq!(listed.len(), 5, "{listed:?}");
        let report = discover(&fetcher, &root, listed).await;

        let pages: Vec<(&str, Option<i64>)> = report
            .entries
            .iter()
            .map(|(u, m)| (u.as_str(), *m))
            .collect();
        let (g1, g2, p1, p2, p3) = (
            s.at("/g1"),
            s.at("/g2"),
            s.at("/p1"),
            s.at("/p2"),
            s.at("/p3"),
        );
        assert_eq!(
            pages,
            [
                (g1.as_str(), None),
                (g2.as_str(), None),
                (p1.as_str(), Some(1_104_537_600)),
                (p2.as_str(), Some(1_136_073_600)),
                (p3.as_str(), None),
            ]
        );
        // index, pages, index2, a, b, index3.
        assert_eq!(report.files_fetched, 6, "{report:#?}");
        // missing (404), moved (to another site).
        assert_eq!(report.files_failed, 2, "{report:#?}");
        // index listing itself, again.xml redirecting to it, index2 listing it.
        assert_eq!(report.repeats, 3, "{report:#?}");
        // deep.xml, below an index at depth 2.
        assert_eq!(report.files_skipped, 1, "{report:#?}");
        assert_eq!(report.files_cut, 0);
        // other.xml in the index, /x in a.xml.
        assert_eq!(report.dropped_other_site, 2);
        assert_eq!(report.dropped_unparseable, 1);
        assert_eq!(report.duplicates, 1);
        assert_eq!(report.dropped_over_cap, 0);
        let errors: Vec<(&str, String)> = report
            .errors
            .iter()
            .map(|(u, e)| (u.as_str(), e.to_string()))
            .collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(matches!(report.errors[0].1, Error::Http(404)), "{errors:?}");
        assert!(errors[1].1.contains("another site"), "{errors:?}");

        for path in [
            "/robots.txt",
            "/index.xml",
            "/index2.xml",
            "/index3.xml",
            "/a.xml",
            "/b.xml",
        ] {
            assert_eq!(s.hits(path), 1, "{path}");
        }
        for path in ["/pages", "/missing.xml", "/moved.xml", "/again.xml"] {
            assert_eq!(s.hits(path), 1, "{path}");
        }
        assert_eq!(s.hits("/deep.xml"), 0);
        assert_eq!(other.total_hits(), 0, "another site was asked");
    }

    #[tokio::test]
    async fn discover_holds_the_caps_on_hostile_sitemaps() {
        let s = Fixture::start().await;
        // No robots list: /sitemap.xml, an index of a loop, a gzip bomb, 30 000 pages, then
        // 100 000 pages (cut at the file cap, then at the site's), then files never read.
        let mut children = vec![
            s.at("/loop.xml"),
            s.at("/bomb.xml.gz"),
            s.at("/big1.xml"),
            s.at("/big2.xml"),
        ];
        children.extend((0..20).map(|i| s.at(&format!("/f{i}.xml"))));
        let children: Vec<&str> = children.iter().map(String::as_str).collect();
        s.put("/sitemap.xml", xml(index(&children)));
        s.put(
            "/loop.xml",
            xml(index(&[&s.at("/loop.xml"), &s.at("/sitemap.xml")])),
        );
        s.put(
            "/bomb.xml.gz",
            Reply::Text(
                "application/gzip",
                Bytes::from(gzip_bomb(&s.base, 200 * 1024 * 1024)),
            ),
        );
        let pages = |prefix: &str, n: usize| {
            let all: Vec<String> = (0..n).map(|i| s.at(&format!("/{prefix}{i}"))).collect();
            urlset(&all.iter().map(|p| (p.as_str(), None)).collect::<Vec<_>>())
        };
        s.put("/big1.xml", xml(pages("a", 30_000)));
        s.put("/big2.xml", xml(pages("b", 100_000)));
        for i in 0..20 {
            s.put(&format!("/f{i}.xml"), xml(pages(&format!("f{i}-"), 1)));
        }

        let report = discover(&fetcher(), &url(&s.at("/")), Vec::new()).await;
        // The bomb's pages before the cut, all of big1, then big2 up to the site cap.
        assert_eq!(report.entries.len(), MAX_SITE_URLS);
        let at = |i: usize| report.entries[i].0.as_str().to_owned();
        assert_eq!(
            [at(0), at(1), at(2), at(3), at(30_002), at(30_003)],
            [
                s.at("/1"),
                s.at("/2"),
                s.at("/3"),
                s.at("/a0"),
                s.at("/a29999"),
                s.at("/b0")
            ]
        );
        assert_eq!(at(MAX_SITE_URLS - 1), s.at("/b19996"));
        // big2 was read up to its own cap: 50 000 pages, 19 997 of them kept.
        assert_eq!(report.dropped_over_cap, MAX_SITEMAP_URLS - 19_997);
        // sitemap, loop, bomb, big1, big2; then the site's cap: f0..f19 are not requested.
        assert_eq!(report.files_fetched, 5, "{report:#?}");
        assert_eq!(report.files_cut, 2, "{report:#?}");
        assert_eq!(report.files_skipped, 20, "{report:#?}");
        // loop.xml listing itself and sitemap.xml.
        assert_eq!(report.repeats, 2, "{report:#?}");
        assert_eq!(report.files_failed, 0, "{report:#?}");
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!(s.hits("/sitemap.xml"), 1);
        assert_eq!(s.hits("/loop.xml"), 1);
        for i in 0..20 {
            assert_eq!(s.hits(&format!("/f{i}.xml")), 0);
        }
    }

    #[tokio::test]
    async fn discover_stops_at_the_file_cap_and_asks_the_gate() {
        let s = Fixture::start().await;
        let children: Vec<String> = (0..30).map(|i| s.at(&format!("/s{i}.xml"))).collect();
        let children: Vec<&str> = children.iter().map(String::as_str).collect();
        s.put("/sitemap-index.xml", xml(index(&children)));
        for i in 0..30 {
            s.put(
                &format!("/s{i}.xml"),
                xml(urlset(&[(&s.at(&format!("/page{i}")), None)])),
            );
        }
        let listed = vec![
            url(&s.at("/sitemap-index.xml")),
            url("http://other.example/sitemap.xml"),
        ];
        let refused = url(&s.at("/s3.xml"));
        let mut asked = Vec::new();
        let gate = |u: NormalizedUrl| {
            asked.push(u.clone());
            std::future::ready(if u == refused {
                Err(Error::RobotsDisallowed(u.to_string()))
            } else {
                Ok(())
            })
        };
        let fetcher = fetcher();
        let root = url(&s.at("/"));
        let round = discover_gated(&fetcher, &root, listed, gate);
        fn assert_send<T: Send>(_: &T) {}
        assert_send(&round);
        let report = round.await;

        // The index and 15 children were tried; s3 was refused by the gate, unrequested.
        assert_eq!(
            report.files_fetched + report.files_failed,
            MAX_SITEMAP_FILES
        );
        assert_eq!(report.files_failed, 1);
        assert!(matches!(&report.errors[..], [(u, Error::RobotsDisallowed(_))] if *u == refused));
        assert_eq!(report.entries.len(), MAX_SITEMAP_FILES - 2);
        assert_eq!(report.files_skipped, 30 - (MAX_SITEMAP_FILES - 1));
        assert_eq!(report.dropped_other_site, 1);
        assert_eq!(asked.len(), MAX_SITEMAP_FILES);
        assert_eq!(s.total_hits(), MAX_SITEMAP_FILES - 1);
        assert_eq!(s.hits("/s3.xml"), 0);
        // Robots listed a sitemap, so /sitemap.xml is not guessed.
        assert_eq!(s.hits("/sitemap.xml"), 0);
    }
}
