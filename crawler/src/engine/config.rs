//! The settings of a [`Crawler`](super::Crawler).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ROBOTS_MAX_DEFERRALS;
use crate::fetch::{
    DEFAULT_MAX_BODY_BYTES, DEFAULT_REQUEST_TIMEOUT, DnsResolver, FetchConfig, default_user_agent,
};
use crate::frontier::revisit::{DEFAULT_MAX_REVISIT_SECS, DEFAULT_MIN_REVISIT_SECS};
use crate::frontier::{
    DEFAULT_MAX_DEPTH, DEFAULT_MAX_PAGES_PER_SITE, FrontierLimits, RevisitPolicy,
};
use crate::politeness::{DEFAULT_CRAWL_RATE, DEFAULT_MAX_CONCURRENCY};

/// Settings of a [`Crawler`](super::Crawler).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CrawlerConfig {
    /// Requests per second per host (`--crawl-rate`, default 1.0; fractional allowed).
    pub crawl_rate: f64,
    /// Fetches in flight at once across all hosts (default 16).
    pub max_concurrency: usize,
    /// Maximum link depth from a seed (default 16).
    pub max_depth: u32,
    /// Maximum URLs accepted per site (default 10 000).
    pub max_pages_per_site: u64,
    /// Stop fetching after this many pages in this run (`--max-pages`; default none).
    pub max_pages: Option<u64>,
    /// Allow loopback/private/link-local destinations (`--allow-private-addresses`).
    pub allow_private_addresses: bool,
    /// Total deadline per fetch, redirects and body included (default 30 s).
    #[serde(with = "duration_ms")]
    pub request_timeout: Duration,
    /// Body cap after decompression (default 5 MiB).
    pub max_body_bytes: usize,
    /// User-Agent header.
    pub user_agent: String,
    /// Times a site is put aside when its robots.txt is unavailable before its URLs are
    /// given up (default [`ROBOTS_MAX_DEFERRALS`]).
    pub robots_max_deferrals: u32,
    /// Local address the crawler's connections leave from (`--crawl-bind-addr`).
    pub local_address: Option<std::net::IpAddr>,
    /// Shortest interval between two visits of a page, seconds (`--min-revisit-secs`,
    /// default one day).
    pub min_revisit_secs: u64,
    /// Longest interval between two visits of a page, seconds (`--max-revisit-secs`,
    /// default 30 days).
    pub max_revisit_secs: u64,
    /// Resolves host names in place of the system resolver (default `None`: the
    /// system's). The SSRF guard still judges every answer. Not serialized.
    #[serde(skip)]
    pub resolver: Option<DnsResolver>,
}

mod duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

impl Default for CrawlerConfig {
    fn default() -> Self {
        CrawlerConfig {
            crawl_rate: DEFAULT_CRAWL_RATE,
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            max_depth: DEFAULT_MAX_DEPTH,
            max_pages_per_site: DEFAULT_MAX_PAGES_PER_SITE,
            max_pages: None,
            allow_private_addresses: false,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            user_agent: default_user_agent(),
            robots_max_deferrals: ROBOTS_MAX_DEFERRALS,
            local_address: None,
            min_revisit_secs: DEFAULT_MIN_REVISIT_SECS,
            max_revisit_secs: DEFAULT_MAX_REVISIT_SECS,
            resolver: None,
        }
    }
}

impl CrawlerConfig {
    /// The fetcher's part of the settings.
    pub fn fetch_config(&self) -> FetchConfig {
        FetchConfig {
            allow_private_addresses: self.allow_private_addresses,
            request_timeout: self.request_timeout,
            max_body_bytes: self.max_body_bytes,
            user_agent: self.user_agent.clone(),
            local_address: self.local_address,
            resolver: self.resolver.clone(),
            #[cfg(test)]
            stand_ins: Default::default(),
        }
    }

    /// The revisit intervals (made sane: at least 1 s, the longest at least the shortest).
    pub fn revisit_policy(&self) -> RevisitPolicy {
        RevisitPolicy {
            min_secs: self.min_revisit_secs,
            max_secs: self.max_revisit_secs,
        }
        .sane()
    }

    pub(crate) fn frontier_limits(&self) -> FrontierLimits {
        FrontierLimits {
            max_depth: self.max_depth,
            max_pages_per_site: self.max_pages_per_site,
            revisit: self.revisit_policy(),
            now: crate::util::unix_now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trips_through_json_without_the_resolver() {
        let config = CrawlerConfig {
            crawl_rate: 2.5,
            request_timeout: Duration::from_millis(1500),
            ..CrawlerConfig::default()
        };
        let json = serde_json::to_string(&config).unwrap();
        assert!(json.contains("\"request_timeout\":1500"), "{json}");
        assert!(!json.contains("resolver"), "{json}");
        let back: CrawlerConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, config);
    }
}
