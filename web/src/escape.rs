//! Escaping for everything that goes into HTML and XML.
//!
//! Every string that came from outside (crawled titles, URLs, snippets, peer ids, the query)
//! passes through [`escape`] before it is written into a page, a feed or the OpenSearch
//! description. One function serves text and attribute values in HTML and XML alike: it escapes
//! all five special characters and drops characters that make a document ill-formed (C0/C1
//! controls other than tab, newline and carriage return, and Unicode noncharacters).

/// True for characters that may appear in HTML text and XML 1.0 documents without an error.
fn is_allowed_char(c: char) -> bool {
    let code = c as u32;
    match c {
        '\t' | '\n' | '\r' => true,
        // C0 controls, DEL and C1 controls: "control-character-in-input-stream" in HTML and
        // (for C0) not allowed at all in XML 1.0.
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => false,
        // Noncharacters: U+FDD0..U+FDEF and the last two code points of every plane.
        '\u{fdd0}'..='\u{fdef}' => false,
        _ => code & 0xfffe != 0xfffe,
    }
}

/// Append `s` to `out`, escaped for HTML/XML text and quoted attribute values.
pub fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if is_allowed_char(c) => out.push(c),
            _ => {}
        }
    }
}

/// `s` escaped for HTML/XML text and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    escape_into(&mut out, s);
    out
}

/// The highlight markers a snippet may contain (CONTRACT.md).
const OPEN_B: &str = "<b>";
const CLOSE_B: &str = "</b>";

/// Re-sanitize a snippet that should be "HTML-escaped text in which only `<b>` and `</b>`
/// mark the query terms".
///
/// The text between the markers is decoded (so an already escaped `&amp;` shows as `&`, not
/// `&amp;amp;`) and escaped again, so that nothing but the markers survives as markup. Unmatched
/// `</b>` are dropped and unclosed `<b>` are closed, so the result is always well-formed.
pub fn sanitize_snippet(snippet: &str) -> String {
    let mut out = String::with_capacity(snippet.len() + 16);
    let mut depth = 0usize;
    let mut rest = snippet;
    loop {
        let open = rest.find(OPEN_B);
        let close = rest.find(CLOSE_B);
        let (at, is_open) = match (open, close) {
            (Some(o), Some(c)) if o < c => (o, true),
            (_, Some(c)) => (c, false),
            (Some(o), None) => (o, true),
            (None, None) => break,
        };
        escape_into(&mut out, &html_escape::decode_html_entities(&rest[..at]));
        if is_open {
            out.push_str(OPEN_B);
            depth += 1;
            rest = &rest[at + OPEN_B.len()..];
        } else {
            if depth > 0 {
                out.push_str(CLOSE_B);
                depth -= 1;
            }
            rest = &rest[at + CLOSE_B.len()..];
        }
    }
    escape_into(&mut out, &html_escape::decode_html_entities(rest));
    for _ in 0..depth {
        out.push_str(CLOSE_B);
    }
    out
}

/// `name=value&...` with form-urlencoding, for links built on the server.
pub fn query_string<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        serializer.append_pair(name, value);
    }
    serializer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralizes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<img src=x onerror="alert('1')">&"#),
            "&lt;img src=x onerror=&quot;alert(&#39;1&#39;)&quot;&gt;&amp;"
        );
    }

    #[test]
    fn escape_drops_control_characters_and_noncharacters() {
        assert_eq!(escape("a\u{0}b\u{7}c\u{85}d\u{fffe}e\u{1ffff}f"), "abcdef");
        assert_eq!(escape("tab\tnew\nline"), "tab\tnew\nline");
        assert_eq!(escape("héllo ✓ 𝄞"), "héllo ✓ 𝄞");
    }

    #[test]
    fn sanitize_snippet_keeps_only_bold_markers() {
        assert_eq!(
            sanitize_snippet("a <b>rust</b> &amp; <script>x</script> <i>y</i>"),
            "a <b>rust</b> &amp; &lt;script&gt;x&lt;/script&gt; &lt;i&gt;y&lt;/i&gt;"
        );
    }

    #[test]
    fn sanitize_snippet_does_not_double_escape() {
        assert_eq!(
            sanitize_snippet("&lt;b&gt; is <b>bold</b>"),
            "&lt;b&gt; is <b>bold</b>"
        );
    }

    #[test]
    fn sanitize_snippet_balances_markers() {
        assert_eq!(sanitize_snippet("</b>a<b>b"), "a<b>b</b>");
        assert_eq!(sanitize_snippet("<b><b>x</b>"), "<b><b>x</b></b>");
        assert_eq!(sanitize_snippet("<B>x</B>"), "&lt;B&gt;x&lt;/B&gt;");
    }

    #[test]
    fn query_string_percent_encodes() {
        assert_eq!(
            query_string([("q", "a b&c"), ("offset", "10")]),
            "q=a+b%26c&offset=10"
        );
    }
}
