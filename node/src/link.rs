//! The one link type, [`Link`] (`url`, `depth`, `anchor`), and its conversions from and to the
//! crawler's types: hand-off items, replicated crawl progress and parked links all carry it.

use crate::anchors::Incoming;
use peersearch_crawler::{QueuedUrl, Seed};

pub use crate::net::Link;

impl From<&Seed> for Link {
    fn from(s: &Seed) -> Link {
        Link {
            url: s.url.to_string(),
            depth: s.depth,
            anchor: s.anchor.clone(),
            source: None,
            scope: s.scope.clone(),
        }
    }
}

impl Link {
    /// The crawler's seed for this link, if its URL normalizes and its scope (from another
    /// peer, maybe a hostile one) is within bounds.
    pub fn to_seed(&self) -> Option<Seed> {
        let scope = match &self.scope {
            Some(s) => Some(s.clone().checked().ok()?),
            None => None,
        };
        Some(Seed {
            url: peersearch_crawler::normalize(&self.url, None).ok()?,
            depth: self.depth,
            anchor: self.anchor.clone(),
            scope,
        })
    }

    /// This link as an anchor vote for its target ([`crate::anchors`]): only a link that
    /// knows the page it was found on, and whose URLs normalize.
    pub fn incoming(&self) -> Option<Incoming> {
        let source = peersearch_crawler::normalize(self.source.as_deref()?, None).ok()?;
        let target = peersearch_crawler::normalize(&self.url, None).ok()?;
        Some(Incoming {
            target: target.to_string(),
            text: self.anchor.clone(),
            source_site: source.site(),
            source: source.to_string(),
        })
    }

    /// [`Link::to_seed`], only for a URL of `site`.
    pub fn to_seed_of(&self, site: &str) -> Option<Seed> {
        self.to_seed().filter(|s| s.url.site() == site)
    }

    /// The queued URL of a crawl state for this link, only for a URL of `site`.
    pub fn to_queued_of(&self, site: &str) -> Option<QueuedUrl> {
        let s = self.to_seed_of(site)?;
        Some(QueuedUrl {
            url: s.url,
            depth: s.depth,
            anchors: s.anchor.into_iter().collect(),
            scope: s.scope,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_convert_to_seeds_only_for_their_site() {
        let l = Link {
            url: "http://A.example/x#frag".into(),
            depth: 3,
            anchor: Some("x".into()),
            source: None,
            scope: None,
        };
        let s = l.to_seed().unwrap();
        assert_eq!(s.url.as_str(), "http://a.example/x");
        assert_eq!(Link::from(&s).depth, 3);
        assert!(l.to_seed_of("a.example").is_some());
        assert!(l.to_seed_of("b.example").is_none());
        let q = l.to_queued_of("a.example").unwrap();
        assert_eq!(q.anchors, vec!["x".to_string()]);
        let bad = Link {
            url: "not a url".into(),
            depth: 0,
            anchor: None,
            source: None,
            scope: None,
        };
        assert!(bad.to_seed().is_none());
    }
}
