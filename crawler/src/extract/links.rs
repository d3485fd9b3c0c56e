//! Links of a page: collected from the whole page (menus included: they matter for
//! crawling and anchor text), then resolved, normalized and deduplicated.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use url::Url;

use super::text::{TextBuf, cap_chars};
use super::{MAX_ANCHOR_CHARS, MAX_LINKS};
use crate::normalize::{NormalizedUrl, normalize};

/// A link found on a page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// Where it points, resolved and normalized.
    pub url: NormalizedUrl,
    /// Its anchor text (or the alt text of an image inside it), whitespace folded.
    pub anchor: String,
    /// `rel` holds `nofollow`, `ugc` or `sponsored`.
    pub nofollow: bool,
}

/// An `<a href>` as written in the page.
pub(super) struct RawLink {
    pub href: String,
    pub text: TextBuf,
    pub nofollow: bool,
}

impl RawLink {
    pub(super) fn new(href: &str, rel: Option<&str>) -> RawLink {
        let nofollow = rel.is_some_and(|rel| {
            rel.split_whitespace().any(|r| {
                ["nofollow", "ugc", "sponsored"]
                    .iter()
                    .any(|n| r.eq_ignore_ascii_case(n))
            })
        });
        RawLink {
            href: href.to_owned(),
            text: TextBuf::with_cap(MAX_ANCHOR_CHARS * 4),
            nofollow,
        }
    }
}

/// The crawlable links among `raw` (http/https, not fragments of the page itself),
/// resolved against `base`, first occurrence kept, at most [`MAX_LINKS`].
pub(super) fn resolve(raw: Vec<RawLink>, base: &Url) -> Vec<Link> {
    let mut seen = HashSet::new();
    let mut links = Vec::new();
    for raw in raw {
        if links.len() >= MAX_LINKS {
            break;
        }
        let href = raw.href.trim();
        if href.is_empty() || href.starts_with('#') {
            continue;
        }
        let Ok(target) = normalize(href, Some(base)) else {
            continue;
        };
        if seen.insert(target.as_str().to_owned()) {
            links.push(Link {
                url: target,
                anchor: cap_chars(raw.text.into_string(), MAX_ANCHOR_CHARS),
                nofollow: raw.nofollow,
            });
        }
    }
    links
}
