//! Telemetry: the activity history the peer page charts (one sample every
//! [`HISTORY_EVERY`], one hour kept) and the progress lines in the log.

use crate::indexing::Indexing;
use peersearch_crawler::Crawler;
use peersearch_web::api::HistoryPoint;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::info;

/// How many history samples the peer page shows (one per [`HISTORY_EVERY`], one hour).
const HISTORY_LEN: usize = 360;
/// Sampling period of the activity chart.
pub const HISTORY_EVERY: Duration = Duration::from_secs(10);
/// Period of the progress log lines.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// The activity samples: a cloneable handle.
#[derive(Debug, Clone, Default)]
pub struct History {
    points: Arc<Mutex<VecDeque<HistoryPoint>>>,
}

impl History {
    /// Add a sample, forgetting the oldest past [`HISTORY_LEN`].
    pub fn record(&self, point: HistoryPoint) {
        if let Ok(mut h) = self.points.lock() {
            h.push_back(point);
            while h.len() > HISTORY_LEN {
                h.pop_front();
            }
        }
    }

    /// The samples, oldest first.
    pub fn points(&self) -> Vec<HistoryPoint> {
        self.points
            .lock()
            .map(|h| h.iter().copied().collect())
            .unwrap_or_default()
    }
}

/// Sample the crawl and the index into `history` until `shutdown`.
pub async fn run_history(
    history: History,
    crawler: Crawler,
    indexing: Indexing,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(HISTORY_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let st = crawler.stats();
                history.record(HistoryPoint {
                    at_unix: crate::clock::now_unix(),
                    pages_crawled: st.pages_crawled,
                    docs_indexed: indexing.num_docs(),
                    pages_revisited: st.pages_revisited,
                    pages_changed: st.pages_changed,
                    pages_unchanged: st.pages_unchanged,
                    pages_removed: st.pages_removed,
                });
            }
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Progress lines at info level every few seconds while something happens.
pub async fn run_progress_log(crawler: Crawler, indexing: Indexing, shutdown: CancellationToken) {
    let mut last_pages = crawler.stats().pages_crawled;
    let mut last_docs = indexing.num_docs();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(PROGRESS_EVERY) => {}
            _ = shutdown.cancelled() => return,
        }
        let st = crawler.stats();
        let docs = indexing.num_docs();
        if st.pages_crawled != last_pages || docs != last_docs || st.frontier_size > 0 {
            let rate = (st.pages_crawled - last_pages.min(st.pages_crawled)) as f64
                / PROGRESS_EVERY.as_secs_f64();
            info!(
                pages_crawled = st.pages_crawled,
                pages_failed = st.pages_failed,
                rate = format!("{rate:.1}/s"),
                docs_indexed = docs,
                frontier = st.frontier_size,
                "crawl progress"
            );
        }
        last_pages = st.pages_crawled;
        last_docs = docs;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keeps_the_last_hour() {
        let h = History::default();
        for i in 0..(HISTORY_LEN as u64 + 5) {
            h.record(HistoryPoint {
                at_unix: i,
                pages_crawled: i,
                ..HistoryPoint::default()
            });
        }
        let p = h.points();
        assert_eq!(p.len(), HISTORY_LEN);
        assert_eq!(p[0].at_unix, 5, "the oldest went first");
    }
}

/// This process's resident set size in bytes (`VmRSS` of `/proc/self/status`), where the
/// system has procfs (Linux); `None` elsewhere.
pub async fn resident_bytes() -> Option<u64> {
    let status = tokio::fs::read_to_string("/proc/self/status").await.ok()?;
    parse_vm_rss(&status)
}

/// `VmRSS` of a `/proc/<pid>/status` text, in bytes.
fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut parts = line["VmRSS:".len()..].split_whitespace();
    let n: u64 = parts.next()?.parse().ok()?;
    match parts.next()? {
        "kB" => n.checked_mul(1024),
        _ => None,
    }
}

#[cfg(test)]
mod rss_tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_in_bytes_and_nonsense_is_none() {
        let status = "Name:\tpeersearch\nVmPeak:\t  900 kB\nVmRSS:\t   65536 kB\nThreads:\t9\n";
        assert_eq!(parse_vm_rss(status), Some(64 << 20));
        assert_eq!(parse_vm_rss("VmRSS:\tlots kB\n"), None);
        assert_eq!(parse_vm_rss("VmRSS:\t12 MB\n"), None);
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
    }

    #[tokio::test]
    async fn this_process_has_a_resident_size() {
        let rss = resident_bytes().await.expect("procfs on this machine");
        assert!(rss > 1 << 20, "{rss}");
    }
}
