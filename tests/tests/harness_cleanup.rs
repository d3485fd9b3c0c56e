//! No `peersearch` process outlives the test that started it: a peer dropped (also while a
//! test panics) is killed with its process group and reaped, and a peer whose test process is
//! killed with `kill -9` (no drop runs then) exits by itself (`PEERSEARCH_TEST_EXIT_WITH_PARENT`,
//! the test-hooks watcher in `node/src/parent_watch.rs`).

use peersearch_tests::harness::{PeerOptions, PeerProcess, process_alive, spawn_in_group};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Set (to a directory) only in the child test process that [`a_killed_test_process_leaves_no_peer_behind`]
/// starts: the helper test runs only then.
const CHILD_ENV: &str = "PEERSEARCH_TEST_CLEANUP_CHILD_DIR";
/// The helper's name, for the child's `--exact` filter.
const HELPER: &str = "helper_starts_a_peer_and_sleeps";
/// How long the peer may take to notice that its parent is gone and exit.
const EXIT_WITHIN: Duration = Duration::from_secs(20);

/// Wait (bounded) until `pid` is gone; whether it went.
fn gone_within(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while process_alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// The process's command name (`/proc/PID/comm`).
fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// The child test process, killed with `SIGKILL` and reaped if the test fails before it does.
struct ChildTest(Child);

impl Drop for ChildTest {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Kill a process left behind (a failed assertion must not leave it running).
fn kill9(pid: u32) {
    let _ = Command::new("kill")
        .args(["-s", "KILL", "--", &pid.to_string()])
        .status();
}

#[test]
fn a_killed_test_process_leaves_no_peer_behind() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("peer.pid");
    let log_path = dir.path().join("child-test.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = ChildTest(
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", HELPER, "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let child_log = || std::fs::read_to_string(&log_path).unwrap_or_default();

    // The helper ran: it started a peer and wrote the peer's pid.
    let deadline = Instant::now() + Duration::from_secs(90);
    let peer_pid: u32 = loop {
        if let Ok(s) = std::fs::read_to_string(&pid_file) {
            break s
                .trim()
                .parse()
                .unwrap_or_else(|e| panic!("pid file {s:?}: {e}"));
        }
        if let Some(st) = child.0.try_wait().unwrap() {
            panic!(
                "the child test exited ({st}) before writing the peer's pid:\n{}",
                child_log()
            );
        }
        assert!(
            Instant::now() < deadline,
            "the child test wrote no pid file in 90 s:\n{}",
            child_log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        process_alive(peer_pid),
        "the peer {peer_pid} runs before the kill"
    );
    assert_eq!(comm(peer_pid), "peersearch", "pid {peer_pid} is the peer");

    // `kill -9` the test process: no drop, no unwinding; the peer must go by itself.
    child.0.kill().unwrap();
    let st = child.0.wait().unwrap();
    assert!(!st.success(), "the child test was killed: {st}");
    let killed = Instant::now();
    let gone = gone_within(peer_pid, EXIT_WITHIN);
    if !gone {
        kill9(peer_pid);
    }
    assert!(
        gone,
        "the peer {peer_pid} still runs {EXIT_WITHIN:?} after its test process was killed:\n{}",
        std::fs::read_to_string(dir.path().join("peer.log")).unwrap_or_default()
    );
    eprintln!(
        "the peer exited {:.2} s after its test process was killed",
        killed.elapsed().as_secs_f64()
    );
}

/// Run only in the child test process: start a peer through the harness, write its pid, and
/// sleep until killed (bounded: it returns after 120 s, dropping the peer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helper_starts_a_peer_and_sleeps() {
    let Some(dir) = std::env::var_os(CHILD_ENV).map(PathBuf::from) else {
        return;
    };
    let peer = PeerProcess::spawn(&dir.join("peer"), &PeerOptions::default())
        .await
        .unwrap();
    let tmp = dir.join("peer.pid.tmp");
    std::fs::write(&tmp, peer.pid().unwrap().to_string()).unwrap();
    std::fs::rename(&tmp, dir.join("peer.pid")).unwrap();
    tokio::time::sleep(Duration::from_secs(120)).await;
    drop(peer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_peer_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let peer = PeerProcess::spawn(&dir.path().join("peer"), &PeerOptions::default())
        .await
        .unwrap();
    let pid = peer.pid().unwrap();
    assert!(process_alive(pid), "the peer {pid} runs");
    drop(peer);
    // Drop kills and reaps: gone at once, not a zombie.
    assert!(!process_alive(pid), "the dropped peer {pid} still runs");
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists() || comm(pid) != "peersearch",
        "the dropped peer {pid} is not reaped"
    );
}

#[test]
fn a_panicking_test_leaves_no_peer_behind() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("peer");
    let (tx, rx) = std::sync::mpsc::channel();
    let joined = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let peer = rt
            .block_on(PeerProcess::spawn(&data, &PeerOptions::default()))
            .unwrap();
        tx.send(peer.pid().unwrap()).unwrap();
        panic!("a failing test (on purpose): its peer must go while it unwinds");
    })
    .join();
    assert!(joined.is_err(), "the thread panicked");
    let pid = rx.recv().unwrap();
    let gone = !process_alive(pid);
    if !gone {
        kill9(pid);
    }
    assert!(gone, "the peer {pid} still runs after its test panicked");
}

#[test]
fn dropping_a_group_child_kills_its_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("sleep.pid");
    // A shell whose child (`sleep`) is in its process group, not a direct child of the test.
    let mut group = spawn_in_group(Command::new("sh").arg("-c").arg(format!(
        "sleep 60 & echo $! > {}.tmp && mv {0}.tmp {0}; wait",
        pid_file.display()
    )))
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let sleep_pid: u32 = loop {
        if let Ok(s) = std::fs::read_to_string(&pid_file) {
            break s.trim().parse().unwrap();
        }
        assert!(
            group.try_wait().unwrap().is_none(),
            "the shell exited early"
        );
        assert!(Instant::now() < deadline, "no sleep pid in 10 s");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(process_alive(sleep_pid), "the grandchild {sleep_pid} runs");
    drop(group);
    let gone = gone_within(sleep_pid, Duration::from_secs(5));
    if !gone {
        kill9(sleep_pid);
    }
    assert!(
        gone,
        "the grandchild {sleep_pid} outlived its dropped group"
    );
}
