//! Ctrl-C and SIGTERM: `peersearch start` runs until one arrives, then shuts its peer down
//! cleanly (commits the index, flushes the crawl state).

use anyhow::Result;
use peersearch_node::PeerConfig;
use tracing::info;

/// Run a peer until Ctrl-C or SIGTERM, then shut it down cleanly.
pub async fn run_until_signal(config: PeerConfig) -> Result<()> {
    let peer = peersearch_node::start(config).await?;
    wait_for_signal().await;
    info!("shutting down");
    peer.shutdown().await;
    Ok(())
}

/// Resolve on Ctrl-C or SIGTERM.
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
