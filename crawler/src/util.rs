//! Small helpers every module of the crate shares: the clock, text truncation and
//! lock poisoning. One copy each, so that no module grows its own variant.

use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

/// The monotonic time, read from tokio's clock: inside a runtime whose clock is paused
/// (tests with `start_paused`) it is the paused time, elsewhere the system's. Rate
/// limits, Crawl-delay and cache lifetimes all read it, so tests can check them
/// without waiting.
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Unix seconds of the wall clock (timestamps stored or reported; never used for waits).
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The longest prefix of `s` with at most `max_chars` characters.
pub(crate) fn truncate_chars(s: &str, max_chars: usize) -> &str {
    match s.char_indices().nth(max_chars) {
        Some((end, _)) => &s[..end],
        None => s,
    }
}

/// The longest prefix of `s` with at most `max_bytes` bytes that ends on a character
/// boundary.
pub(crate) fn truncate_bytes(s: &str, max_bytes: usize) -> &str {
    if s.len() <= max_bytes {
        return s;
    }
    let mut end = max_bytes;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `s` with every run of whitespace folded into one space, trimmed at both ends.
pub(crate) fn fold_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Locks `m`, ignoring poisoning: every critical section of the crate leaves its data
/// consistent before anything that can panic, so a panicked holder breaks nothing.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_respects_character_boundaries() {
        assert_eq!(truncate_chars("héllo", 2), "hé");
        assert_eq!(truncate_chars("hé", 5), "hé");
        assert_eq!(truncate_bytes("héllo", 2), "h");
        assert_eq!(truncate_bytes("héllo", 3), "hé");
        assert_eq!(truncate_bytes("abc", 10), "abc");
    }

    #[test]
    fn whitespace_is_folded() {
        assert_eq!(fold_whitespace("  a \n\t b  c "), "a b c");
        assert_eq!(fold_whitespace(" \n "), "");
    }

    #[tokio::test(start_paused = true)]
    async fn now_follows_the_paused_clock() {
        let before = now();
        tokio::time::advance(std::time::Duration::from_secs(3600)).await;
        assert_eq!(now() - before, std::time::Duration::from_secs(3600));
    }
}
