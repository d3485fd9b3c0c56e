//! What the frontier refuses before looking at the store: URLs too long or too deep,
//! and paths that look like infinite URL spaces (crawler traps). Anchor texts are
//! cleaned here too, as they enter the frontier.

use std::collections::HashMap;

use url::Url;

use super::{FrontierLimits, RefuseReason, Seed};
use crate::extract::MAX_ANCHOR_CHARS;
use crate::normalize::MAX_URL_BYTES;
use crate::util::{fold_whitespace, truncate_chars};

/// Paths deeper than this are crawler traps (calendars, recursive relative links).
pub const MAX_PATH_SEGMENTS: usize = 32;

/// A path segment repeated this often (`/a/b/a/b/a/b`) marks a trap.
pub const MAX_SEGMENT_REPEATS: usize = 3;

/// Why `seed` is refused whatever the store holds, or `None`.
pub(super) fn refuse_reason(seed: &Seed, limits: FrontierLimits) -> Option<RefuseReason> {
    if seed.url.as_str().len() > MAX_URL_BYTES {
        Some(RefuseReason::TooLong)
    } else if seed.depth > limits.max_depth {
        Some(RefuseReason::TooDeep)
    } else if is_path_trap(seed.url.as_url()) {
        Some(RefuseReason::PathTrap)
    } else {
        None
    }
}

/// Whether the path looks like an infinite URL space.
pub(crate) fn is_path_trap(url: &Url) -> bool {
    let segments: Vec<&str> = url.path().split('/').filter(|s| !s.is_empty()).collect();
    if segments.len() > MAX_PATH_SEGMENTS {
        return true;
    }
    let mut counts: HashMap<&str, usize> = HashMap::new();
    segments.iter().any(|s| {
        let c = counts.entry(s).or_default();
        *c += 1;
        *c >= MAX_SEGMENT_REPEATS
    })
}

/// An anchor text as the frontier keeps it: whitespace folded, at most
/// [`MAX_ANCHOR_CHARS`] characters; `None` when nothing is left.
pub(super) fn clean_anchor(anchor: &str) -> Option<String> {
    let folded = fold_whitespace(anchor);
    (!folded.is_empty()).then(|| truncate_chars(&folded, MAX_ANCHOR_CHARS).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::normalize;

    #[test]
    fn path_trap_detection() {
        let trap = |s: &str| is_path_trap(normalize(s, None).unwrap().as_url());
        assert!(trap("http://a.example/a/b/a/b/a/b"));
        assert!(trap("http://a.example/x/x/x"));
        assert!(trap(&format!("http://a.example/{}", "d/".repeat(40))));
        assert!(!trap("http://a.example/2020/01/01/post"));
        assert!(!trap("http://a.example/a/b/a/b"));
    }

    #[test]
    fn anchors_are_folded_and_capped() {
        assert_eq!(clean_anchor("  a \n b ").as_deref(), Some("a b"));
        assert_eq!(clean_anchor(" \t "), None);
        let long = "é".repeat(MAX_ANCHOR_CHARS + 10);
        assert_eq!(
            clean_anchor(&long).unwrap().chars().count(),
            MAX_ANCHOR_CHARS
        );
    }
}
