//! Formatting of values for the pages and feeds: numbers, durations, dates, shortened text.
//! Nothing here escapes: callers pass the results through [`crate::escape::escape`].

use std::fmt::Write as _;

use crate::api::ApiHit;

/// An integer with thin grouping commas: `1234567` -> `1,234,567`.
pub(crate) fn group_digits(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// `n` and the noun that goes with it: `1 result`, `1,234 results`.
pub(crate) fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", group_digits(n), if n == 1 { one } else { many })
}

/// Cut `s` to at most `max` characters, with an ellipsis when cut.
pub(crate) fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_owned(),
    }
}

/// The last few characters of a peer id (they all start with the same `12D3KooW`).
pub(crate) fn short_peer_id(peer: &str) -> String {
    let n = peer.chars().count();
    if n <= 10 {
        peer.to_owned()
    } else {
        let tail: String = peer.chars().skip(n - 6).collect();
        format!("…{tail}")
    }
}

/// True for URLs that may become links (`http`/`https` only, never `javascript:` and co.).
pub(crate) fn is_linkable(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
}

/// The title a hit is shown under: its own, or its URL when it has none.
pub(crate) fn display_title(hit: &ApiHit) -> &str {
    if hit.title.trim().is_empty() {
        &hit.url
    } else {
        &hit.title
    }
}

/// `3725` -> `1 h 2 min 5 s`.
pub(crate) fn format_duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let mut parts = Vec::new();
    if d > 0 {
        parts.push(format!("{d} d"));
    }
    if h > 0 || d > 0 {
        parts.push(format!("{h} h"));
    }
    if d == 0 && (m > 0 || h > 0) {
        parts.push(format!("{m} min"));
    }
    if d == 0 && h == 0 {
        parts.push(format!("{s} s"));
    }
    parts.join(" ")
}

/// `(year, month, day)` of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Unix seconds as `2024-05-01T12:03:04Z`.
pub(crate) fn iso8601(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let rem = unix % 86_400;
    let (y, mo, d) = civil_from_days(days);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// `now - at` as "12 s ago", "3 min ago", "2 h ago".
pub(crate) fn ago(at: u64, now: u64) -> String {
    let secs = now.saturating_sub(at);
    if secs < 60 {
        format!("{secs} s ago")
    } else if secs < 3600 {
        format!("{} min ago", secs / 60)
    } else if secs < 86_400 {
        format!("{} h ago", secs / 3600)
    } else {
        format!("{} d ago", secs / 86_400)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_digits_inserts_commas() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(1000), "1,000");
        assert_eq!(group_digits(1234567), "1,234,567");
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }

    #[test]
    fn short_peer_ids_keep_the_distinctive_tail() {
        assert_eq!(short_peer_id("12D3KooWAbCdEfGhIjKlMn"), "…IjKlMn");
        assert_eq!(short_peer_id("short"), "short");
    }

    #[test]
    fn only_http_urls_become_links() {
        assert!(is_linkable("https://example.com/a"));
        assert!(!is_linkable("javascript:alert(1)"));
        assert!(!is_linkable("data:text/html,x"));
        assert!(!is_linkable("not a url"));
    }

    #[test]
    fn iso8601_formats_known_dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601(1_714_564_984), "2024-05-01T12:03:04Z");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(5), "5 s");
        assert_eq!(format_duration(3725), "1 h 2 min");
        assert_eq!(format_duration(90_061), "1 d 1 h");
    }

    #[test]
    fn long_text_is_cut_at_a_character_with_an_ellipsis() {
        assert_eq!(truncate_chars("short", 10), "short");
        assert_eq!(truncate_chars("ééééé", 3), "ééé…");
    }

    #[test]
    fn hits_without_a_title_show_their_url() {
        let hit = ApiHit {
            url: "http://e.com/".into(),
            title: "  ".into(),
            snippet: String::new(),
            score: 1.0,
            peer: String::new(),
            explanation: None,
        };
        assert_eq!(display_title(&hit), "http://e.com/");
    }
}
