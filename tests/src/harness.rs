//! Start real `peersearch` processes on loopback and talk to them over their HTTP API.
//!
//! Every process the harness starts ([`spawn_in_group`]: the peers of [`PeerProcess`] and
//! [`start_network`], the `peersearch demo` of the demo test) runs in its own process group,
//! whose every process is killed with `SIGKILL` and reaped when its [`GroupChild`] is dropped,
//! also while a failing test unwinds. A test process that dies without unwinding (Ctrl-C, a
//! timeout, `kill -9`) runs no drop: for that the harness sets
//! `PEERSEARCH_TEST_EXIT_WITH_PARENT=1`, and the peer (built with the `test-hooks` feature)
//! exits by itself within a second of its parent's death (`node/src/parent_watch.rs`).

use serde::de::DeserializeOwned;
use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Errors of the harness (tests unwrap them; the message says what went wrong).
pub type Result<T> = std::result::Result<T, anyhow::Error>;

/// The `peersearch` binary built from the code under test: cargo builds it for the integration
/// tests and benches of `peersearch-node` (whose targets they are) and names it in
/// `CARGO_BIN_EXE_peersearch`. `$PEERSEARCH_BIN` (or its alias `$PEERSEARCH_BENCH_BIN`)
/// overrides it (a benchmark against another build, e.g. the previous version). Never a guess
/// at `target/*/peersearch`, which may be stale.
pub fn binary() -> PathBuf {
    for var in ["PEERSEARCH_BIN", "PEERSEARCH_BENCH_BIN"] {
        if let Some(p) = std::env::var_os(var) {
            return PathBuf::from(p);
        }
    }
    match std::env::var_os("CARGO_BIN_EXE_peersearch") {
        Some(p) => PathBuf::from(p),
        None => panic!(
            "CARGO_BIN_EXE_peersearch is not set: run the integration tests and benches with \
             cargo (`cargo test -p peersearch-node`), or set PEERSEARCH_BIN to a peersearch binary"
        ),
    }
}

/// The variable that makes a test-hooks peer exit when its parent process is gone.
pub const EXIT_WITH_PARENT_ENV: &str = "PEERSEARCH_TEST_EXIT_WITH_PARENT";

/// Spawn `cmd` in a process group of its own (`process_group(0)`), with
/// `PEERSEARCH_TEST_EXIT_WITH_PARENT=1`: the one way the harness and the tests start a
/// `peersearch` process, so that none outlives its test.
pub fn spawn_in_group(cmd: &mut Command) -> Result<GroupChild> {
    cmd.process_group(0).env(EXIT_WITH_PARENT_ENV, "1");
    let child = cmd
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot start {:?}: {e}", cmd.get_program()))?;
    Ok(GroupChild {
        child: Some(child),
        exited: None,
    })
}

/// A child process leading its own process group ([`spawn_in_group`]): dropping it (also
/// during a panic's unwinding) kills the whole group with `SIGKILL` and reaps the child.
#[derive(Debug)]
pub struct GroupChild {
    child: Option<Child>,
    /// Its exit status, once reaped.
    exited: Option<ExitStatus>,
}

impl GroupChild {
    /// The OS process id (also the process group id); `None` once killed.
    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Its stdout, if it was piped (once).
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.as_mut()?.stdout.take()
    }

    /// Its exit status if it has exited (it is reaped then), without waiting.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        if self.exited.is_none()
            && let Some(c) = self.child.as_mut()
        {
            self.exited = c.try_wait()?;
        }
        Ok(self.exited)
    }

    /// Send `signal` (a name for `kill -s`, e.g. `TERM`) to the child alone.
    pub fn signal(&self, signal: &str) {
        if let Some(pid) = self.id()
            && self.exited.is_none()
        {
            run_kill(signal, &pid.to_string());
        }
    }

    /// `SIGKILL` to every process of its group, then reap the child (idempotent).
    pub fn kill(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        if self.exited.is_none() {
            // The group first, while the unreaped child keeps the group id from being reused;
            // then the child itself, should `kill` not run.
            run_kill("KILL", &format!("-{}", c.id()));
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Wait (bounded) until the child exits: its status, or `None` at the deadline.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.try_wait() {
                Ok(Some(st)) => return Some(st),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                _ => return None,
            }
        }
    }
}

impl Drop for GroupChild {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `kill -s SIGNAL -- TARGET` (std cannot signal a process group, and this crate has no
/// unsafe code); best effort.
fn run_kill(signal: &str, target: &str) {
    let _ = Command::new("kill")
        .args(["-s", signal, "--", target])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Whether process `pid` still exists and is not a zombie (from `/proc/PID/stat`).
pub fn process_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `PID (COMM) STATE ...`; COMM may hold spaces or parentheses, so after the last ')'.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, Some("Z" | "X" | "x") | None)
}

/// A running peer process in its own process group ([`spawn_in_group`]), killed (the whole
/// group) and reaped when dropped.
#[derive(Debug)]
pub struct PeerProcess {
    child: GroupChild,
    /// Its data dir.
    pub data_dir: PathBuf,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The status right after start (peer id, listen addrs).
    pub status: Value,
    /// Where its log goes.
    pub log_path: PathBuf,
}

/// Options of [`PeerProcess::spawn`].
#[derive(Debug, Clone, Default)]
pub struct PeerOptions {
    /// Extra flags for `peersearch start`.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
}

impl PeerProcess {
    /// Start `peersearch start` on `data_dir` with an HTTP port and a p2p port picked by the OS,
    /// and wait (bounded) until its API answers.
    pub async fn spawn(data_dir: &Path, opts: &PeerOptions) -> Result<PeerProcess> {
        std::fs::create_dir_all(data_dir)?;
        let log_path = data_dir.with_extension("log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let addr_file = data_dir.join("http_addr.test");
        let _ = std::fs::remove_file(&addr_file);
        let mut cmd = Command::new(binary());
        cmd.arg("start")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--http")
            .arg("127.0.0.1:0");
        if !opts.args.iter().any(|a| a == "--listen") {
            // A p2p port picked by the OS, unless the test gives one (a peer that restarts on
            // the same port, as a real one does).
            cmd.arg("--listen").arg("/ip4/127.0.0.1/tcp/0");
        }
        cmd.args(&opts.args)
            .env("PEERSEARCH_HTTP_ADDR_FILE", &addr_file)
            .env(
                "RUST_LOG",
                std::env::var("PEERSEARCH_TEST_LOG").unwrap_or("info".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        let child = spawn_in_group(&mut cmd)?;
        let mut p = PeerProcess {
            child,
            data_dir: data_dir.to_path_buf(),
            base: String::new(),
            status: Value::Null,
            log_path,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(s) = std::fs::read_to_string(&addr_file)
                && !s.trim().is_empty()
            {
                p.base = format!("http://{}", s.trim());
                if let Ok(st) = p.get_json::<Value>("/api/status").await {
                    p.status = st;
                    return Ok(p);
                }
            }
            if let Some(code) = p.child.try_wait()? {
                anyhow::bail!("peer exited early with {code}: {}", p.log_tail());
            }
            if Instant::now() > deadline {
                anyhow::bail!("peer did not come up: {}", p.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The OS process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Its peer id.
    pub fn peer_id(&self) -> String {
        self.status["peer_id"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Its first p2p address (with `/p2p/<id>`).
    pub fn p2p_addr(&self) -> String {
        self.status["listen_addrs"][0]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The last 4 KiB of its log.
    pub fn log_tail(&self) -> String {
        let s = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let start = s.len().saturating_sub(4096);
        let start = (start..s.len())
            .find(|i| s.is_char_boundary(*i))
            .unwrap_or(0);
        s[start..].to_string()
    }

    /// `GET path` and parse the JSON answer; any status but 2xx is an error (with the body).
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let (status, body) = http_get(&format!("{}{}", self.base, path)).await?;
        anyhow::ensure!(
            (200..300).contains(&status),
            "GET {path} answered {status}: {body}"
        );
        serde_json::from_str(&body).map_err(|e| anyhow::anyhow!("GET {path}: {e}: {body}"))
    }

    /// `POST path` with a JSON body; returns status and body.
    pub async fn post_json(&self, path: &str, body: &Value) -> Result<(u16, String)> {
        http_post(&format!("{}{}", self.base, path), &body.to_string()).await
    }

    /// Submit `urls` as seeds (`POST /api/crawl`); an error unless all are accepted (202).
    pub async fn seed(&self, urls: &[String]) -> Result<()> {
        let (status, body) = self
            .post_json("/api/crawl", &serde_json::json!({ "urls": urls }))
            .await?;
        if status != 202 {
            anyhow::bail!("seeding {urls:?}: {status} {body}");
        }
        Ok(())
    }

    /// Local or network search; the raw JSON answer (an error unless the status is 2xx).
    pub async fn search(&self, q: &str, extra: &str) -> Result<Value> {
        let q = url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>();
        self.get_json(&format!("/api/search?q={q}{extra}")).await
    }

    /// The URLs a search returns.
    pub async fn search_urls(&self, q: &str, extra: &str) -> Result<Vec<String>> {
        let v = self.search(q, extra).await?;
        Ok(v["hits"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|h| h["url"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Poll `/api/status` until `pred` holds or `timeout` passes.
    pub async fn wait_status(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&Value) -> bool,
    ) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let st: Value = self.get_json("/api/status").await?;
            if pred(&st) {
                return Ok(st);
            }
            if Instant::now() > deadline {
                anyhow::bail!("status condition not met in {timeout:?}: {st}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Wait until the crawl is idle (frontier and in-flight both 0) for a few polls in a row.
    pub async fn wait_crawl_idle(&self, timeout: Duration) -> Result<Value> {
        let mut calm = 0;
        self.wait_status(timeout, |st| {
            let idle = st["frontier_size"] == 0 && st["crawl_in_flight"] == 0;
            calm = if idle { calm + 1 } else { 0 };
            calm >= 5
        })
        .await
    }

    /// Peak resident memory (VmHWM) in KiB, read from /proc.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        self.proc_status_kib("VmHWM:")
    }

    /// The peer's resident memory now, in KiB (`VmRSS` of `/proc/<pid>/status`), if known.
    pub fn rss_kib(&self) -> Option<u64> {
        self.proc_status_kib("VmRSS:")
    }

    /// A `kB` line of the peer's `/proc/<pid>/status`.
    fn proc_status_kib(&self, key: &str) -> Option<u64> {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        s.lines()
            .find(|l| l.starts_with(key))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }

    /// `kill -9` (its whole process group), and reap it.
    pub fn kill9(&mut self) {
        self.child.kill();
    }

    /// SIGTERM and wait (bounded) for a clean exit; returns whether it exited 0 (after 30 s
    /// its group is killed).
    pub fn terminate(&mut self) -> bool {
        if self.child.id().is_none() {
            return false;
        }
        self.child.signal("TERM");
        let st = self.child.wait_timeout(Duration::from_secs(30));
        self.child.kill();
        st.is_some_and(|st| st.success())
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

/// `GET url`: status and body.
pub async fn http_get(url: &str) -> Result<(u16, String)> {
    let r = client().get(url).send().await?;
    let status = r.status().as_u16();
    Ok((status, r.text().await?))
}

/// `POST url` with a JSON body: status and body.
pub async fn http_post(url: &str, json: &str) -> Result<(u16, String)> {
    let r = client()
        .post(url)
        .header("content-type", "application/json")
        .body(json.to_string())
        .send()
        .await?;
    let status = r.status().as_u16();
    Ok((status, r.text().await?))
}

/// Start `n` peers under `root` (`peer-0` .. `peer-{n-1}`): the first alone, the others
/// bootstrapping from it; wait until every peer knows all the others.
pub async fn start_network(root: &Path, n: usize, args: &[String]) -> Result<Vec<PeerProcess>> {
    start_network_with(root, n, args, &[]).await
}

/// [`start_network`] with extra environment variables for every peer.
pub async fn start_network_with(
    root: &Path,
    n: usize,
    args: &[String],
    env: &[(String, String)],
) -> Result<Vec<PeerProcess>> {
    let mut peers: Vec<PeerProcess> = Vec::new();
    for i in 0..n {
        let mut a = args.to_vec();
        if let Some(first) = peers.first() {
            a.push("--bootstrap".into());
            a.push(first.p2p_addr());
        }
        let p = PeerProcess::spawn(
            &root.join(format!("peer-{i}")),
            &PeerOptions {
                args: a,
                env: env.to_vec(),
            },
        )
        .await?;
        peers.push(p);
    }
    wait_mesh(&peers, n - 1).await?;
    Ok(peers)
}

/// Wait (bounded) until every peer in `peers` knows at least `want` other peers, in its
/// routing table or by an open connection (both count as live for ownership).
pub async fn wait_mesh(peers: &[PeerProcess], want: usize) -> Result<()> {
    for p in peers {
        p.wait_status(Duration::from_secs(90), |st| {
            let known = st["routing_table_size"]
                .as_u64()
                .max(st["peers_connected"].as_u64())
                .unwrap_or(0);
            known as usize >= want
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}\n{}", p.log_tail()))?;
    }
    Ok(())
}

/// Wait until every peer's crawl is idle and the network's document count is stable.
pub async fn wait_network_idle(peers: &[PeerProcess], timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut last_total = u64::MAX;
    let mut calm = 0;
    loop {
        let mut idle = true;
        let mut total = 0;
        for p in peers {
            let st: Value = p.get_json("/api/status").await?;
            idle &= st["frontier_size"] == 0 && st["crawl_in_flight"] == 0;
            total += st["docs_indexed"].as_u64().unwrap_or(0);
        }
        calm = if idle && total == last_total {
            calm + 1
        } else {
            0
        };
        last_total = total;
        if calm >= 6 {
            return Ok(());
        }
        if Instant::now() > deadline {
            anyhow::bail!("network not idle after {timeout:?} (docs {total})");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The top 10 `(url, score)` of `q` through `peer` (`extra`: more query parameters); an
/// error for a partial answer.
pub async fn top10(peer: &PeerProcess, q: &str, extra: &str) -> Result<Vec<(String, f64)>> {
    let v = peer
        .search(q, &format!("&limit=10&timeout_ms=5000{extra}"))
        .await?;
    if v["partial"] != false {
        anyhow::bail!("a partial answer for {q:?}: {v}");
    }
    Ok(v["hits"]
        .as_array()
        .map(|hits| {
            hits.iter()
                .filter_map(|h| Some((h["url"].as_str()?.to_string(), h["score"].as_f64()?)))
                .collect()
        })
        .unwrap_or_default())
}

/// [`top10`] of every query, once the answers stop changing: after the crawl is idle, anchor
/// votes that arrived late still re-index their pages (a commit or two), so the answers are
/// read until three rounds two seconds apart agree (at most 60 rounds).
pub async fn settled_top10(
    peer: &PeerProcess,
    queries: &[String],
    extra: &str,
) -> Result<Vec<Vec<(String, f64)>>> {
    let mut last = Vec::new();
    let mut same = 0;
    for _ in 0..60 {
        let mut now = Vec::new();
        for q in queries {
            now.push(top10(peer, q, extra).await?);
        }
        same = if now == last { same + 1 } else { 0 };
        if same >= 2 {
            return Ok(now);
        }
        last = now;
        tokio::time::sleep(Duration::from_millis(2_000)).await;
    }
    anyhow::bail!("answers kept changing for 2 minutes")
}
