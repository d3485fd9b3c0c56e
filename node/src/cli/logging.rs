//! Logging of `peersearch start` and `demo`: `tracing` to stdout, filtered by `RUST_LOG`.

use std::io::IsTerminal;

/// The filter when `RUST_LOG` is not set: peersearch's own crates at `info`, the rest at `warn`.
const DEFAULT_FILTER: &str = "warn,peersearch=info,peersearch_node=info,peersearch_crawler=info,peersearch_indexer=info,peersearch_web=info";

/// Set up `tracing` from `RUST_LOG` (default [`DEFAULT_FILTER`]); colours only on a terminal.
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_FILTER));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal())
        .with_target(false)
        // A log line that cannot be written (a full disk under the log file) is dropped;
        // the default would report it on stderr, and panic if stderr is full too.
        .log_internal_errors(false)
        .try_init();
}
