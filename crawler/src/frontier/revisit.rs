//! When a done URL is fetched again. Every URL crawled here gets a next-visit time; the
//! interval adapts to what the visits found: halved when the page changed, doubled when it
//! did not (a 304, or the same content hash), kept when the visit failed (the next try comes
//! after the shortest interval), the longest after the page went away. A site's home page is
//! visited four times as often as a leaf, a hub page (many links) twice as often, and every
//! delay carries ±10 % jitter so that the pages of a site crawled together do not come due
//! together forever. All of it stays between [`RevisitPolicy::min_secs`] and
//! [`RevisitPolicy::max_secs`].

use std::hash::{DefaultHasher, Hash, Hasher};

use serde::{Deserialize, Serialize};

use crate::fetch::Validators;

/// Default shortest revisit interval (`--min-revisit-secs`): one day.
pub const DEFAULT_MIN_REVISIT_SECS: u64 = 24 * 60 * 60;
/// Default longest revisit interval (`--max-revisit-secs`): 30 days.
pub const DEFAULT_MAX_REVISIT_SECS: u64 = 30 * 24 * 60 * 60;
/// Failed visits in a row (5xx, timeouts, unreachable), each at least the shortest interval
/// after the one before, after which a page counts as gone and leaves the index.
pub const DEAD_AFTER_FAILURES: u32 = 3;
/// Same-site links from which a page counts as a hub (revisited twice as often).
pub const HUB_LINKS: usize = 20;

/// The revisit intervals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevisitPolicy {
    /// Shortest interval between two visits of a page, seconds.
    pub min_secs: u64,
    /// Longest interval, seconds.
    pub max_secs: u64,
}

impl Default for RevisitPolicy {
    fn default() -> Self {
        RevisitPolicy {
            min_secs: DEFAULT_MIN_REVISIT_SECS,
            max_secs: DEFAULT_MAX_REVISIT_SECS,
        }
    }
}

/// What a visit found, for the next interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum VisitKind {
    /// A document that is new or changed.
    Changed,
    /// Nothing new: a 304, or the same content.
    Unchanged,
    /// A failure that may pass (5xx, 429, a timeout, an unreachable host).
    Failed,
    /// Nothing to index any more (404, 410, robots.txt, noindex, a duplicate now, given up
    /// after [`DEAD_AFTER_FAILURES`] failures).
    Gone,
}

/// What the last visit of a done URL left for the next one: carried by a revisit job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LastVisit {
    /// The answer's validators (sent back on the next visit).
    #[serde(default)]
    pub validators: Validators,
    /// The content hash of its document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<String>,
    /// The URL its document is stored under (itself, its redirect target or canonical
    /// URL); `None` when it has no document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
    /// Failed visits in a row.
    #[serde(default)]
    pub failures: u32,
    /// The page went away (its document was removed): a further visit that finds it gone
    /// removes nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gone: bool,
}

/// The outcome of one visit, noted by the worker and stored when the URL is marked done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VisitNote {
    pub kind: VisitKind,
    pub last: LastVisit,
    /// The page has at least [`HUB_LINKS`] same-site links; `None` when the visit could not
    /// tell (a 304 carries no page): the last visit's word stands.
    pub hub: Option<bool>,
}

impl RevisitPolicy {
    /// The policy with `max_secs` raised to `min_secs` if below it, and 1 s at least.
    pub fn sane(self) -> RevisitPolicy {
        let min_secs = self.min_secs.max(1);
        RevisitPolicy {
            min_secs,
            max_secs: self.max_secs.max(min_secs),
        }
    }

    /// The first base interval of a page: four times the shortest.
    pub(crate) fn initial(&self) -> u64 {
        self.min_secs
            .saturating_mul(4)
            .clamp(self.min_secs, self.max_secs)
    }

    /// The base interval after a visit of `kind`, from the one before (`None`: first visit).
    pub(crate) fn next_base(&self, prev: Option<u64>, kind: VisitKind) -> u64 {
        let base = match (prev, kind) {
            (_, VisitKind::Gone) => self.max_secs,
            (None, _) => self.initial(),
            (Some(b), VisitKind::Changed) => b / 2,
            (Some(b), VisitKind::Unchanged) => b.saturating_mul(2),
            (Some(b), VisitKind::Failed) => b,
        };
        base.clamp(self.min_secs, self.max_secs)
    }

    /// Seconds until the next visit: the base interval scaled for the page's kind (home
    /// page a quarter, hub half; a failure waits the shortest interval), with ±10 % jitter
    /// drawn from `url` and `now`.
    pub(crate) fn delay(
        &self,
        base: u64,
        kind: VisitKind,
        depth: u32,
        hub: bool,
        url: &str,
        now: i64,
    ) -> u64 {
        let scaled = if kind == VisitKind::Failed {
            self.min_secs
        } else if depth == 0 {
            base / 4
        } else if hub {
            base / 2
        } else {
            base
        };
        let mut h = DefaultHasher::new();
        (url, now).hash(&mut h);
        // In [-0.1, 0.1].
        let unit = (h.finish() % 2001) as f64 / 1000.0 - 1.0;
        let jittered = scaled as f64 * (1.0 + 0.1 * unit);
        (jittered.round() as u64).clamp(self.min_secs, self.max_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400;

    #[test]
    fn intervals_adapt_and_stay_within_the_bounds() {
        let p = RevisitPolicy::default();
        assert_eq!(p.next_base(None, VisitKind::Changed), 4 * DAY);
        let mut base = p.initial();
        for _ in 0..10 {
            base = p.next_base(Some(base), VisitKind::Changed);
        }
        assert_eq!(
            base, DAY,
            "a page that keeps changing: the shortest interval"
        );
        for _ in 0..10 {
            base = p.next_base(Some(base), VisitKind::Unchanged);
        }
        assert_eq!(base, 30 * DAY, "one that never changes: the longest");
        assert_eq!(p.next_base(Some(2 * DAY), VisitKind::Failed), 2 * DAY);
        assert_eq!(p.next_base(Some(DAY), VisitKind::Gone), 30 * DAY);
        assert_eq!(p.next_base(None, VisitKind::Gone), 30 * DAY);
    }

    #[test]
    fn home_and_hub_pages_come_sooner_with_bounded_jitter() {
        let p = RevisitPolicy::default();
        let base = 8 * DAY;
        let (mut home, mut hub, mut leaf) = (Vec::new(), Vec::new(), Vec::new());
        for t in 0..200 {
            home.push(p.delay(base, VisitKind::Changed, 0, false, "http://a/", t));
            hub.push(p.delay(base, VisitKind::Changed, 2, true, "http://a/h", t));
            leaf.push(p.delay(base, VisitKind::Unchanged, 2, false, "http://a/l", t));
        }
        let within = |v: &[u64], mid: u64| {
            v.iter()
                .all(|d| *d >= mid * 9 / 10 && *d <= mid * 11 / 10 + 1)
        };
        assert!(within(&home, 2 * DAY), "{home:?}");
        assert!(within(&hub, 4 * DAY), "{hub:?}");
        assert!(within(&leaf, 8 * DAY), "{leaf:?}");
        let distinct: std::collections::HashSet<_> = leaf.iter().collect();
        assert!(distinct.len() > 50, "jitter spreads the visits");
        assert_eq!(
            p.delay(base, VisitKind::Failed, 3, false, "http://a/x", 0)
                .clamp(DAY * 9 / 10, DAY),
            DAY,
            "a failure is tried again after the shortest interval"
        );
    }

    #[test]
    fn delays_never_leave_the_bounds() {
        let p = RevisitPolicy {
            min_secs: 2,
            max_secs: 10,
        };
        for t in 0..500 {
            for (kind, depth, hub) in [
                (VisitKind::Changed, 0, false),
                (VisitKind::Unchanged, 5, false),
                (VisitKind::Gone, 1, true),
                (VisitKind::Failed, 0, false),
            ] {
                let base = p.next_base(Some(t as u64 % 20), kind);
                let d = p.delay(base, kind, depth, hub, "http://a/", t);
                assert!((2..=10).contains(&d), "{kind:?} {d}");
            }
        }
        let odd = RevisitPolicy {
            min_secs: 0,
            max_secs: 0,
        }
        .sane();
        assert_eq!((odd.min_secs, odd.max_secs), (1, 1));
    }
}
