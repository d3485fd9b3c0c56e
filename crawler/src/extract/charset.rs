//! Which character encoding a page is in: BOM, Content-Type, then `<meta>` sniffing.

use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};

/// The HTML spec sniffs `<meta charset>` in the first 1024 bytes.
pub(super) const CHARSET_SNIFF_BYTES: usize = 1024;

/// The encoding of `body`: its BOM, else the Content-Type's `charset`, else a `<meta>`
/// in the first 1024 bytes, else UTF-8.
pub(super) fn detect(body: &[u8], content_type: Option<&str>) -> &'static Encoding {
    Encoding::for_bom(body)
        .map(|(enc, _)| enc)
        .or_else(|| content_type.and_then(charset_from_content_type))
        .or_else(|| sniff_meta_charset(body))
        .unwrap_or(UTF_8)
}

/// The encoding named by a label, with the HTML spec's overrides: a page cannot
/// declare UTF-16 in ASCII-compatible markup, so that label means UTF-8.
fn encoding_for_label(label: &str) -> Option<&'static Encoding> {
    let enc = Encoding::for_label(label.trim().trim_matches(['"', '\'']).as_bytes())?;
    if enc == encoding_rs::UTF_16LE || enc == encoding_rs::UTF_16BE {
        return Some(UTF_8);
    }
    if enc == encoding_rs::X_USER_DEFINED {
        return Some(WINDOWS_1252);
    }
    Some(enc)
}

fn charset_from_content_type(content_type: &str) -> Option<&'static Encoding> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| encoding_for_label(value))
            .flatten()
    })
}

/// Finds `charset=` inside a `<meta ...>` tag in the first 1024 bytes: covers both
/// `<meta charset="x">` and `<meta http-equiv="content-type" content="...; charset=x">`.
fn sniff_meta_charset(body: &[u8]) -> Option<&'static Encoding> {
    let head = &body[..body.len().min(CHARSET_SNIFF_BYTES)];
    let lower: Vec<u8> = head.to_ascii_lowercase();
    let mut pos = 0;
    while let Some(found) = find(&lower[pos..], b"<meta") {
        let start = pos + found + 5;
        let end = find(&lower[start..], b">").map_or(lower.len(), |e| start + e);
        let tag = &lower[start..end];
        if let Some(c) = find(tag, b"charset") {
            let rest = &tag[c + 7..];
            let rest = trim_ascii_start(rest);
            if let Some(rest) = rest.strip_prefix(b"=") {
                let rest = trim_ascii_start(rest);
                let rest = rest
                    .strip_prefix(b"\"")
                    .or_else(|| rest.strip_prefix(b"'"))
                    .unwrap_or(rest);
                let len = rest
                    .iter()
                    .position(|b| !(b.is_ascii_alphanumeric() || b"-_:.".contains(b)))
                    .unwrap_or(rest.len());
                if let Some(enc) = std::str::from_utf8(&rest[..len])
                    .ok()
                    .and_then(encoding_for_label)
                {
                    return Some(enc);
                }
            }
        }
        pos = end;
    }
    None
}

pub(super) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn trim_ascii_start(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
    &b[n..]
}
