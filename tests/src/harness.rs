//! Start real `peersearch` processes on loopback and talk to them over their HTTP API.

use serde::de::DeserializeOwned;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Errors of the harness (tests unwrap them; the message says what went wrong).
pub type Result<T> = std::result::Result<T, anyhow::Error>;

/// The `peersearch` binary built from the code under test: cargo builds it for the integration
/// tests and benches of `peersearch-node` (whose targets they are) and names it in
/// `CARGO_BIN_EXE_peersearch`. `$PEERSEARCH_BIN` overrides it (a benchmark against another
/// build). Never a guess at `target/*/peersearch`, which may be stale.
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("PEERSEARCH_BIN") {
        return PathBuf::from(p);
    }
    match std::env::var_os("CARGO_BIN_EXE_peersearch") {
        Some(p) => PathBuf::from(p),
        None => panic!(
            "CARGO_BIN_EXE_peersearch is not set: run the integration tests and benches with \
             cargo (`cargo test -p peersearch-node`), or set PEERSEARCH_BIN to a peersearch binary"
        ),
    }
}

/// A running peer process, killed when dropped.
#[derive(Debug)]
pub struct PeerProcess {
    child: Option<Child>,
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
        let child = cmd.spawn()?;
        let mut p = PeerProcess {
            child: Some(child),
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
            if let Some(c) = p.child.as_mut()
                && let Some(code) = c.try_wait()?
            {
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
        self.child.as_ref().map(Child::id)
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
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        s.lines()
            .find(|l| l.starts_with("VmHWM:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }

    /// `kill -9`.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait (bounded) for a clean exit; returns whether it exited 0.
    pub fn terminate(&mut self) -> bool {
        let Some(mut c) = self.child.take() else {
            return false;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = c.try_wait() {
                return st.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
        false
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        self.kill9();
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
