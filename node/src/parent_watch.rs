//! Exit with the parent (cargo feature `test-hooks` only, like [`crate::net::hooks`]): the
//! equivalent of Linux's `PR_SET_PDEATHSIG` without unsafe code, so that a peer started by a
//! test does not outlive a test process killed by Ctrl-C, a timeout or `kill -9` (holding its
//! ports and CPU and skewing the next run's figures).
//!
//! - `PEERSEARCH_TEST_EXIT_WITH_PARENT=1`: the peer records its parent's process id
//!   ([`std::os::unix::process::parent_id`]) when it starts and checks it every
//!   [`CHECK_EVERY`] on a tokio task; once it changes (the parent died and the peer was
//!   re-parented to init or a subreaper), the peer logs one line and exits at once with
//!   [`EXIT_CODE`], without a clean shutdown (a killed test needs no last commit).
//!
//! The test harness (`peersearch-tests`) sets the variable for every process it starts. One
//! watcher per process, however many peers it runs (`peersearch demo` runs several).

#![cfg(feature = "test-hooks")]

use std::sync::Once;
use std::time::Duration;

/// The environment variable that turns the watcher on (value `1`).
pub const ENV: &str = "PEERSEARCH_TEST_EXIT_WITH_PARENT";
/// How often the parent id is checked.
pub const CHECK_EVERY: Duration = Duration::from_millis(250);
/// The exit code of a peer whose parent is gone.
pub const EXIT_CODE: i32 = 70;

static STARTED: Once = Once::new();

/// Start the watcher if the environment asks for it (once per process; needs a tokio runtime).
pub fn spawn_if_asked() {
    if std::env::var(ENV).as_deref() != Ok("1") {
        return;
    }
    STARTED.call_once(|| {
        let parent = std::os::unix::process::parent_id();
        tracing::info!(
            parent,
            "{ENV}=1: this process exits when its parent is gone"
        );
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(CHECK_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let now = std::os::unix::process::parent_id();
                if now != parent {
                    // Best effort (the log may be a pipe whose reader died with the parent;
                    // tracing ignores a failed write, where `eprintln!` would panic).
                    tracing::warn!(parent, now, "the parent process is gone: exiting");
                    std::process::exit(EXIT_CODE);
                }
            }
        });
    });
}
