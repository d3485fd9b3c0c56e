//! Text that came from elsewhere (a crawled page, a peer's answer) made safe for a terminal.
//!
//! A crawled title such as `"\x1b]0;pwned\x07"` would otherwise retitle the user's terminal,
//! and `"\x1b[2J"` would clear it: every C0 and C1 control character (and DEL) is replaced
//! before the text is printed. The CLI's own highlighting is added after this, so it survives.

/// What a control character is printed as: visible, so that a tampered text shows that it was.
const REPLACEMENT: char = '\u{FFFD}';

/// `s` with its control characters replaced: tab, line feed, vertical tab, form feed and
/// carriage return become a space, every other C0 or C1 control and DEL becomes U+FFFD.
pub fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\t' | '\n' | '\u{0b}' | '\u{0c}' | '\r' => ' ',
            c if c.is_control() => REPLACEMENT,
            c => c,
        })
        .collect()
}

/// A JSON body from a peer, printed as it came but with control characters escaped as
/// `\uXXXX`: inside a JSON string that is the same value, and outside strings control
/// characters are not valid JSON anyway. Tab, line feed and carriage return (JSON's
/// whitespace) stay.
pub fn sanitize_json(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    for c in body.chars() {
        match c {
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_lose_their_escape_and_bell() {
        let s = sanitize("a\x1b]0;pwned\x07b\x1b[2Jc\u{9b}31md\u{7f}");
        assert!(!s.contains('\x1b') && !s.contains('\x07'), "{s:?}");
        assert!(!s.contains('\u{9b}') && !s.contains('\u{7f}'), "{s:?}");
        assert_eq!(
            s,
            "a\u{fffd}]0;pwned\u{fffd}b\u{fffd}[2Jc\u{fffd}31md\u{fffd}"
        );
    }

    #[test]
    fn whitespace_controls_become_spaces_and_text_stays() {
        assert_eq!(sanitize("Grüße\tan\r\ndich 日本"), "Grüße an  dich 日本");
    }

    #[test]
    fn json_keeps_its_value_and_loses_raw_controls() {
        let body = "{\"title\": \"x\u{1b}[2J\u{9b}y\"}\n";
        let safe = sanitize_json(body);
        assert!(
            !safe.contains('\x1b') && !safe.contains('\u{9b}'),
            "{safe:?}"
        );
        let a: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(a["title"], "x\u{1b}[2J\u{9b}y");
        assert!(safe.ends_with('\n'));
    }
}
