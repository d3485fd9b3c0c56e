//! String helpers shared by the query parser and the snippets.

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub(crate) fn truncate_to_char_boundary(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_never_splits_a_character() {
        assert_eq!(truncate_to_char_boundary("short", 10), "short");
        assert_eq!(truncate_to_char_boundary("abcdef", 3), "abc");
        // `é` is two bytes: a cut in its middle backs off before it.
        assert_eq!(truncate_to_char_boundary("aé", 2), "a");
        assert_eq!(truncate_to_char_boundary("aé", 3), "aé");
        assert_eq!(truncate_to_char_boundary("é", 0), "");
    }
}
