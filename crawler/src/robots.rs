//! robots.txt by RFC 9309, fetched through the guarded [`Fetcher`] and cached per site.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use texting_robots::Robot;

use crate::error::Error;
use crate::fetch::{Fetcher, Overflow, no_gate};
use crate::normalize::{NormalizedUrl, normalize};
use crate::util::{lock, now};

/// The product token matched against `User-agent:` lines.
pub const ROBOTS_USER_AGENT: &str = "peersearch";

/// RFC 9309 2.5: crawlers must parse at least the first 500 KiB; the rest is ignored.
pub const MAX_ROBOTS_BYTES: usize = 500 * 1024;

/// RFC 9309 2.4: a cached robots.txt should not be used for more than 24 hours.
pub const ROBOTS_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// How long a 5xx / unreachable answer (full disallow) is kept before asking again.
/// Short, so that a brief outage does not stop a site for a day.
pub const ROBOTS_ERROR_TTL: Duration = Duration::from_secs(10 * 60);

/// Highest Crawl-delay honoured; a larger value would effectively stop the crawl of
/// the site (some robots.txt files say 3600).
pub const MAX_CRAWL_DELAY: Duration = Duration::from_secs(30);

/// Most sites cached at once; each entry is a few KiB of compiled rules.
pub const ROBOTS_CACHE_CAPACITY: usize = 10_000;

/// The answer for one URL.
#[derive(Debug, Clone, PartialEq)]
pub enum RobotsVerdict {
    /// The URL may be fetched, waiting at least `crawl_delay` between requests.
    Allowed {
        /// Crawl-delay of the site, capped at [`MAX_CRAWL_DELAY`].
        crawl_delay: Option<Duration>,
    },
    /// robots.txt forbids the URL.
    Disallowed,
    /// The SSRF guard refused the site's address (so the page would be refused too).
    Blocked(String),
    /// robots.txt answered 5xx or could not be reached: everything is disallowed
    /// until `retry_at`, when it is fetched again.
    Unavailable {
        /// When the cached failure expires.
        retry_at: Instant,
        /// What went wrong.
        reason: String,
    },
}

#[derive(Clone)]
enum Rules {
    AllowAll,
    Parsed(Arc<Robot>),
    Unavailable(String),
    Blocked(String),
}

#[derive(Clone)]
struct Entry {
    rules: Rules,
    fetched_at: Instant,
    expires_at: Instant,
}

/// A bounded per-site cache of robots.txt rules.
pub struct RobotsCache {
    fetcher: Fetcher,
    entries: Mutex<HashMap<String, Entry>>,
}

impl std::fmt::Debug for RobotsCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RobotsCache")
            .field("len", &self.len())
            .finish()
    }
}

impl RobotsCache {
    /// A cache fetching through `fetcher` (same guard, redirects, timeouts).
    pub fn new(fetcher: Fetcher) -> RobotsCache {
        RobotsCache {
            fetcher,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Number of cached sites.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        lock(&self.entries)
    }

    /// Whether `url` may be fetched, fetching the site's robots.txt when it is not cached.
    pub async fn check(&self, url: &NormalizedUrl) -> RobotsVerdict {
        let site = url.site();
        let now = now();
        let cached = self
            .lock()
            .get(&site)
            .filter(|e| e.expires_at > now)
            .cloned();
        let entry = match cached {
            Some(entry) => entry,
            None => {
                let entry = self.fetch_rules(url).await;
                self.insert(site, entry.clone());
                entry
            }
        };
        match &entry.rules {
            Rules::AllowAll => RobotsVerdict::Allowed { crawl_delay: None },
            Rules::Blocked(reason) => RobotsVerdict::Blocked(reason.clone()),
            Rules::Unavailable(reason) => RobotsVerdict::Unavailable {
                retry_at: entry.expires_at,
                reason: reason.clone(),
            },
            Rules::Parsed(robot) => {
                if robot.allowed(url.as_str()) {
                    RobotsVerdict::Allowed {
                        crawl_delay: robot.delay.and_then(crawl_delay),
                    }
                } else {
                    RobotsVerdict::Disallowed
                }
            }
        }
    }

    /// The `Sitemap:` lines of the cached robots.txt of `site` (as written; empty when none is
    /// cached or it was not parsed).
    pub fn sitemaps(&self, site: &str) -> Vec<String> {
        match self.lock().get(site).map(|e| &e.rules) {
            Some(Rules::Parsed(robot)) => robot.sitemaps.clone(),
            _ => Vec::new(),
        }
    }

    /// Forgets the cached rules of `site`.
    pub fn invalidate(&self, site: &str) {
        self.lock().remove(site);
    }

    fn insert(&self, site: String, entry: Entry) {
        let mut entries = self.lock();
        if entries.len() >= ROBOTS_CACHE_CAPACITY && !entries.contains_key(&site) {
            let now = now();
            entries.retain(|_, e| e.expires_at > now);
            if entries.len() >= ROBOTS_CACHE_CAPACITY {
                // Still full of live entries: drop the oldest one.
                if let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, e)| e.fetched_at)
                    .map(|(k, _)| k.clone())
                {
                    entries.remove(&oldest);
                }
            }
        }
        entries.insert(site, entry);
    }

    async fn fetch_rules(&self, url: &NormalizedUrl) -> Entry {
        let now = now();
        let ok = |rules| Entry {
            rules,
            fetched_at: now,
            expires_at: now + ROBOTS_TTL,
        };
        let robots_url = match normalize("/robots.txt", Some(url.as_url())) {
            Ok(u) => u,
            Err(e) => return ok(Rules::Unavailable(e.to_string())),
        };
        let result = self
            .fetcher
            .fetch_limited(&robots_url, MAX_ROBOTS_BYTES, Overflow::Truncate, no_gate)
            .await;
        match result {
            Ok(res) => match Robot::new(ROBOTS_USER_AGENT, &res.body) {
                Ok(robot) => ok(Rules::Parsed(Arc::new(robot))),
                Err(e) => {
                    // Unparseable rules say nothing: RFC 9309 parses what it can.
                    tracing::debug!(url = %robots_url, error = %e, "robots.txt unparseable");
                    ok(Rules::AllowAll)
                }
            },
            // RFC 9309 2.3.1.3: "unavailable" (4xx) means no restriction.
            Err(Error::Http(status)) if (400..500).contains(&status) => ok(Rules::AllowAll),
            Err(Error::Blocked(reason)) => Entry {
                rules: Rules::Blocked(reason),
                fetched_at: now,
                expires_at: now + ROBOTS_ERROR_TTL,
            },
            Err(e) => {
                tracing::debug!(url = %robots_url, error = %e, "robots.txt unavailable");
                Entry {
                    rules: Rules::Unavailable(e.to_string()),
                    fetched_at: now,
                    expires_at: now + ROBOTS_ERROR_TTL,
                }
            }
        }
    }
}

fn crawl_delay(seconds: f32) -> Option<Duration> {
    if !seconds.is_finite() || seconds <= 0.0 {
        return None;
    }
    Some(Duration::from_secs_f32(seconds).min(MAX_CRAWL_DELAY))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::FetchConfig;
    use axum::Router;
    use axum::http::StatusCode;
    use axum::routing::get;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use crate::test_util::serve;

    fn cache() -> RobotsCache {
        RobotsCache::new(
            Fetcher::new(FetchConfig {
                allow_private_addresses: true,
                request_timeout: Duration::from_secs(10),
                ..FetchConfig::default()
            })
            .unwrap(),
        )
    }

    fn url(s: &str) -> NormalizedUrl {
        normalize(s, None).unwrap()
    }

    #[tokio::test]
    async fn disallowed_paths_are_refused_and_crawl_delay_is_read() {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let base = serve(Router::new().route(
            "/robots.txt",
            get(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                async {
                    "User-agent: otherbot\nDisallow: /\n\n\
                     User-agent: peersearch\nDisallow: /private\nCrawl-delay: 2\n"
                }
            }),
        ))
        .await;
        let robots = cache();
        assert_eq!(
            robots.check(&url(&format!("{base}/private/x"))).await,
            RobotsVerdict::Disallowed
        );
        assert_eq!(
            robots.check(&url(&format!("{base}/public"))).await,
            RobotsVerdict::Allowed {
                crawl_delay: Some(Duration::from_secs(2))
            }
        );
        assert_eq!(hits.load(Ordering::SeqCst), 1, "robots.txt cached per site");
        assert_eq!(robots.len(), 1);
    }

    #[tokio::test]
    async fn huge_crawl_delay_is_capped() {
        let base = serve(Router::new().route(
            "/robots.txt",
            get(|| async { "User-agent: *\nCrawl-delay: 3600\n" }),
        ))
        .await;
        assert_eq!(
            cache().check(&url(&format!("{base}/a"))).await,
            RobotsVerdict::Allowed {
                crawl_delay: Some(MAX_CRAWL_DELAY)
            }
        );
    }

    #[tokio::test]
    async fn missing_robots_txt_allows_everything() {
        let base = serve(Router::new()).await;
        assert_eq!(
            cache().check(&url(&format!("{base}/anything"))).await,
            RobotsVerdict::Allowed { crawl_delay: None }
        );
    }

    #[tokio::test]
    async fn server_error_disallows_everything_until_expiry() {
        let base = serve(Router::new().route(
            "/robots.txt",
            get(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
        ))
        .await;
        let before = Instant::now();
        match cache().check(&url(&format!("{base}/a"))).await {
            RobotsVerdict::Unavailable { retry_at, .. } => {
                assert!(retry_at >= before + ROBOTS_ERROR_TTL);
                assert!(retry_at < before + ROBOTS_TTL);
            }
            other => panic!("expected unavailable, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn unreachable_host_disallows_everything() {
        // Bind then drop: nothing listens on this port any more.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let verdict = cache()
            .check(&url(&format!("http://127.0.0.1:{port}/a")))
            .await;
        assert!(
            matches!(verdict, RobotsVerdict::Unavailable { .. }),
            "{verdict:?}"
        );
    }

    #[tokio::test]
    async fn guarded_address_is_reported_as_blocked() {
        let base = serve(Router::new()).await;
        let robots = RobotsCache::new(Fetcher::new(FetchConfig::default()).unwrap());
        let verdict = robots.check(&url(&format!("{base}/a"))).await;
        assert!(matches!(verdict, RobotsVerdict::Blocked(_)), "{verdict:?}");
    }

    #[tokio::test]
    async fn robots_redirect_is_followed() {
        let base = serve(
            Router::new()
                .route(
                    "/robots.txt",
                    get(|| async { axum::response::Redirect::permanent("/real-robots.txt") }),
                )
                .route(
                    "/real-robots.txt",
                    get(|| async { "User-agent: *\nDisallow: /\n" }),
                ),
        )
        .await;
        assert_eq!(
            cache().check(&url(&format!("{base}/a"))).await,
            RobotsVerdict::Disallowed
        );
    }
}
