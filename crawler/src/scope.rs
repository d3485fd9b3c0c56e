//! Crawl scopes: which discovered links a crawl follows.
//!
//! A [`Scope`] travels with every URL it reached: a seed gets one (its own, or its peer's
//! default), each link found on a page in scope inherits the page's scope, and hand-offs and
//! replicated crawl states carry it, so the owner of a site reached through a scoped seed
//! applies the same scope. A link outside its page's scope is dropped before anything is
//! asked of its host (no robots.txt, no DNS lookup), and is not a failure; so is a redirect
//! that leaves the scope.
//!
//! A scope is input from strangers (it arrives in hand-offs): [`Scope::check`] bounds it, and
//! its deny patterns are regular expressions compiled with a size limit (the `regex` crate
//! matches in linear time).

use regex::RegexSetBuilder;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::normalize::{NormalizedUrl, normalize};

/// Most hosts, prefixes and deny patterns a scope may list, each.
pub const MAX_SCOPE_ENTRIES: usize = 32;
/// Longest host, prefix or deny pattern, in bytes.
pub const MAX_SCOPE_ENTRY_LEN: usize = 256;
/// Most bytes of a scope's hosts, prefixes and patterns together: every queued URL, link in a
/// hand-off and URL of a crawl state carries its scope, so it must stay small beside the
/// messages' fixed size caps (a hand-off of 500 links, a crawl state of 10 000 URLs).
pub const MAX_SCOPE_BYTES: usize = 1_024;
/// Compiled size limit of a scope's deny patterns together.
const DENY_SIZE_LIMIT: usize = 64 << 10;
/// Compiled deny sets kept, by pattern list: the same scope arrives with thousands of links.
const DENY_CACHE: usize = 256;

/// A pattern list compiled, or why it does not compile (that is kept too: it never will).
type Compiled = Result<Arc<regex::RegexSet>, String>;
/// Compiled deny sets by pattern list.
static DENY_SETS: std::sync::Mutex<Option<std::collections::HashMap<Vec<String>, Compiled>>> =
    std::sync::Mutex::new(None);

/// Which links a crawl follows. Empty lists mean "no restriction of that kind".
///
/// A URL is in scope when its depth is at most `max_depth` (if set), its site is one of
/// `hosts` or it starts with one of `prefixes` (when either list is non-empty), and no
/// `deny` pattern matches it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Scope {
    /// Sites (`host[:port]`, lowercased, default port elided) whose URLs are followed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// URL prefixes (normalized) that are followed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefixes: Vec<String>,
    /// Regular expressions: a URL matching any of them is not followed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
    /// Most links followed from the seed (the seed is depth 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_depth: Option<u32>,
}

/// How a scope is asked for: a [`Scope`], plus "the seed's own site", which each seed turns
/// into a host of its own scope ([`ScopeSpec::for_seed`]). This is what people and tools
/// give (flags, `/api/crawl`, the seed form); only resolved [`Scope`]s travel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeSpec {
    /// Follow links to the seed's own site only (added to `hosts`).
    #[serde(default)]
    pub site: bool,
    /// The rest of the scope.
    #[serde(flatten)]
    pub scope: Scope,
}

impl ScopeSpec {
    /// True when it restricts nothing (a crawl that follows every link).
    pub fn is_unrestricted(&self) -> bool {
        !self.site && self.scope.is_unrestricted()
    }

    /// Check the spec's bounds (leaving room for the seed's own site); prefixes are
    /// normalized and hosts lowercased.
    pub fn checked(mut self) -> Result<ScopeSpec> {
        self.scope = self.scope.checked()?;
        if self.site && self.scope.hosts.len() >= MAX_SCOPE_ENTRIES {
            return Err(Error::BadScope(format!(
                "at most {} hosts beside the seed's own site",
                MAX_SCOPE_ENTRIES - 1
            )));
        }
        Ok(self)
    }

    /// The scope of `seed`: `None` when unrestricted.
    pub fn for_seed(&self, seed: &NormalizedUrl) -> Option<Scope> {
        if self.is_unrestricted() {
            return None;
        }
        let mut scope = self.scope.clone();
        if self.site {
            let site = seed.site();
            if !scope.hosts.contains(&site) {
                scope.hosts.push(site);
            }
        }
        Some(scope)
    }
}

impl Scope {
    /// True when it restricts nothing.
    pub fn is_unrestricted(&self) -> bool {
        self.hosts.is_empty()
            && self.prefixes.is_empty()
            && self.deny.is_empty()
            && self.max_depth.is_none()
    }

    /// This scope with its bounds checked, hosts lowercased and prefixes normalized; an error
    /// names what is wrong.
    pub fn checked(mut self) -> Result<Scope> {
        let bad = |m: String| Err(Error::BadScope(m));
        for (name, list) in [
            ("hosts", &self.hosts),
            ("prefixes", &self.prefixes),
            ("deny", &self.deny),
        ] {
            if list.len() > MAX_SCOPE_ENTRIES {
                return bad(format!("at most {MAX_SCOPE_ENTRIES} {name}"));
            }
            if let Some(e) = list
                .iter()
                .find(|e| e.is_empty() || e.len() > MAX_SCOPE_ENTRY_LEN)
            {
                return bad(format!(
                    "{name}: {e:?} is empty or longer than {MAX_SCOPE_ENTRY_LEN} bytes"
                ));
            }
        }
        let bytes: usize = [&self.hosts, &self.prefixes, &self.deny]
            .iter()
            .flat_map(|l| l.iter())
            .map(String::len)
            .sum();
        if bytes > MAX_SCOPE_BYTES {
            return bad(format!(
                "{bytes} bytes of hosts, prefixes and patterns; at most {MAX_SCOPE_BYTES}"
            ));
        }
        for h in &mut self.hosts {
            if h.contains(['/', '@', '?', '#', ' ']) {
                return bad(format!("hosts: {h:?} is not a host[:port]"));
            }
            let parsed = normalize(&format!("http://{h}/"), None)
                .map_err(|_| Error::BadScope(format!("hosts: {h:?} is not a host")))?;
            // `host[:port]` as `NormalizedUrl::site` spells it; with `http://` the default
            // port of http is elided, so "example.org:443" keeps its port.
            *h = parsed.site();
        }
        for p in &mut self.prefixes {
            let parsed = normalize(p, None).map_err(|_| {
                Error::BadScope(format!("prefixes: {p:?} is not an absolute http(s) URL"))
            })?;
            // Lowercased scheme and host, as the URLs it is compared with are spelled.
            *p = parsed.as_str().to_string();
        }
        self.hosts.sort();
        self.hosts.dedup();
        self.prefixes.sort();
        self.prefixes.dedup();
        self.compile_deny()?;
        Ok(self)
    }

    /// The compiled deny patterns, from a small cache: a scope arrives with every link of a
    /// hand-off and every URL of a crawl state, and compiling is the costly part.
    fn compile_deny(&self) -> Result<Option<Arc<regex::RegexSet>>> {
        if self.deny.is_empty() {
            return Ok(None);
        }
        let mut cache = DENY_SETS.lock().unwrap_or_else(|e| e.into_inner());
        let cache = cache.get_or_insert_with(Default::default);
        if let Some(hit) = cache.get(&self.deny) {
            return hit.clone().map(Some).map_err(Error::BadScope);
        }
        let compiled = RegexSetBuilder::new(&self.deny)
            .size_limit(DENY_SIZE_LIMIT)
            .dfa_size_limit(DENY_SIZE_LIMIT)
            .build()
            .map(Arc::new)
            .map_err(|e| format!("deny: {e}"));
        if cache.len() >= DENY_CACHE {
            cache.clear();
        }
        cache.insert(self.deny.clone(), compiled.clone());
        compiled.map(Some).map_err(Error::BadScope)
    }

    /// A matcher for this scope (compiles the deny patterns once); a scope that does not
    /// compile allows nothing, since it cannot be told what it excludes.
    pub fn matcher(&self) -> ScopeMatcher<'_> {
        let deny = self.compile_deny();
        ScopeMatcher { scope: self, deny }
    }
}

/// A [`Scope`] ready to test many URLs.
#[derive(Debug)]
pub struct ScopeMatcher<'a> {
    scope: &'a Scope,
    deny: Result<Option<Arc<regex::RegexSet>>>,
}

impl ScopeMatcher<'_> {
    /// Whether a link to `url` at link depth `depth` is followed.
    pub fn allows(&self, url: &NormalizedUrl, depth: u32) -> bool {
        let s = self.scope;
        if s.max_depth.is_some_and(|max| depth > max) {
            return false;
        }
        let unrestricted_sites = s.hosts.is_empty() && s.prefixes.is_empty();
        // Prefixes compare without the scheme: a site that moved to https keeps its scope.
        let bare = |u: &str| u.split_once("://").map_or(u, |(_, rest)| rest).to_string();
        let url_bare = bare(url.as_str());
        let listed = s.hosts.contains(&url.site())
            || s.prefixes.iter().any(|p| url_bare.starts_with(&bare(p)));
        if !(unrestricted_sites || listed) {
            return false;
        }
        match &self.deny {
            Ok(None) => true,
            Ok(Some(set)) => !set.is_match(url.as_str()),
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(u: &str) -> NormalizedUrl {
        normalize(u, None).unwrap()
    }

    #[test]
    fn hosts_prefixes_deny_and_depth_each_restrict() {
        let s = Scope {
            hosts: vec!["A.example".into()],
            prefixes: vec!["http://b.example/docs/".into()],
            deny: vec![r"\?print=".into(), "/private/".into()],
            max_depth: Some(3),
        }
        .checked()
        .unwrap();
        assert_eq!(s.hosts, vec!["a.example"]);
        let m = s.matcher();
        assert!(m.allows(&url("http://a.example/x"), 1));
        assert!(m.allows(&url("http://b.example/docs/y"), 3));
        assert!(
            m.allows(&url("https://b.example/docs/y"), 3),
            "either scheme"
        );
        assert!(!m.allows(&url("http://b.example/docs/y"), 4), "too deep");
        assert!(
            !m.allows(&url("http://b.example/blog/"), 1),
            "outside the prefix"
        );
        assert!(!m.allows(&url("http://c.example/"), 1), "another host");
        assert!(!m.allows(&url("http://a.example/private/z"), 1), "denied");
        assert!(!m.allows(&url("http://a.example/p?print=1"), 1), "denied");
    }

    #[test]
    fn an_unrestricted_scope_allows_everything_and_is_no_scope() {
        let spec = ScopeSpec::default();
        assert!(spec.is_unrestricted());
        assert_eq!(spec.for_seed(&url("http://a.example/")), None);
        assert!(
            Scope::default()
                .matcher()
                .allows(&url("http://z.example/"), 99)
        );
    }

    #[test]
    fn the_seed_site_becomes_a_host_of_each_seed_scope() {
        let spec = ScopeSpec {
            site: true,
            scope: Scope {
                max_depth: Some(2),
                ..Scope::default()
            },
        };
        let s = spec.for_seed(&url("http://a.example:8080/start")).unwrap();
        assert_eq!(s.hosts, vec!["a.example:8080"]);
        assert_eq!(s.max_depth, Some(2));
        assert!(s.matcher().allows(&url("http://a.example:8080/other"), 1));
        assert!(
            !s.matcher().allows(&url("http://a.example/other"), 1),
            "another port"
        );
    }

    #[test]
    fn bad_scopes_are_refused_with_a_reason() {
        let too_many = Scope {
            hosts: (0..=MAX_SCOPE_ENTRIES)
                .map(|i| format!("h{i}.example"))
                .collect(),
            ..Scope::default()
        };
        assert!(matches!(too_many.checked(), Err(Error::BadScope(m)) if m.contains("hosts")));
        let bad_regex = Scope {
            deny: vec!["(unclosed".into()],
            ..Scope::default()
        };
        assert!(matches!(bad_regex.checked(), Err(Error::BadScope(m)) if m.contains("deny")));
        let huge = Scope {
            deny: vec![r"\w{200}\w{200}\w{200}".into()],
            ..Scope::default()
        };
        assert!(huge.checked().is_err(), "over the compiled size limit");
        let not_url = Scope {
            prefixes: vec!["docs/".into()],
            ..Scope::default()
        };
        assert!(not_url.checked().is_err());
        let long = Scope {
            prefixes: (0..5)
                .map(|i| format!("http://a.example/{i}/{}", "p".repeat(230)))
                .collect(),
            ..Scope::default()
        };
        assert!(
            matches!(long.checked(), Err(Error::BadScope(m)) if m.contains("bytes")),
            "over the total size"
        );
        for junk in ["a.example/x", "u@a.example", "a.example?q"] {
            let s = Scope {
                hosts: vec![junk.into()],
                ..Scope::default()
            };
            assert!(s.checked().is_err(), "{junk}");
        }
        let full = ScopeSpec {
            site: true,
            scope: Scope {
                hosts: (0..MAX_SCOPE_ENTRIES)
                    .map(|i| format!("h{i}.example"))
                    .collect(),
                ..Scope::default()
            },
        };
        assert!(
            full.checked().is_err(),
            "no room left for the seed's own site"
        );
        // A scope that cannot compile (it skipped `checked`) follows nothing.
        let m = Scope {
            deny: vec!["(".into()],
            ..Scope::default()
        };
        assert!(!m.matcher().allows(&url("http://a.example/"), 0));
    }

    #[test]
    fn a_scope_is_stable_on_the_wire() {
        let s = Scope {
            hosts: vec!["a.example".into()],
            ..Scope::default()
        };
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, r#"{"hosts":["a.example"]}"#);
        let spec: ScopeSpec =
            serde_json::from_str(r#"{"site":true,"deny":["x"],"max_depth":1}"#).unwrap();
        assert!(spec.site);
        assert_eq!(spec.scope.deny, vec!["x"]);
        assert_eq!(spec.scope.max_depth, Some(1));
    }
}
