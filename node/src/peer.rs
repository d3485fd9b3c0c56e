//! One running peer: opens the data dir, starts the swarm, the crawl loop, the index loop, the
//! hand-off router, replica maintenance and the web server, and implements the web layer's
//! [`Backend`].

use crate::config::PeerConfig;
use crate::net::{self, wire};
use crate::outbox::{HandoffItem, Outbox, Parked};
use crate::ownership::{self, SiteKey};
use crate::search::{self, LeafAnswer, StatsCache};
use libp2p::{Multiaddr, PeerId};
use peersearch_crawler::{CrawledPage, Crawler, CrawlerConfig, NormalizedUrl, Seed};
use peersearch_indexer::{Document, Shard, TermStats};
use peersearch_web::api::{
    Activity, ApiHit, Backend, BackendError, CrawlErrorEntry, CrawlResponse, HistoryPoint,
    MetricsSnapshot, PeerCounts, PeerInfo, Rejected, Scope, SearchParams, SearchResponse,
    StatusResponse,
};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// Errors of starting or running a peer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// Another process uses the data dir.
    #[error("data dir {0} is in use by another peersearch process")]
    DataDirLocked(PathBuf),
    /// A file system problem.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The index could not be opened.
    #[error("index: {0}")]
    Index(#[from] peersearch_indexer::Error),
    /// The crawl state could not be opened.
    #[error("crawler: {0}")]
    Crawler(#[from] peersearch_crawler::Error),
    /// The p2p layer failed.
    #[error("network: {0}")]
    Net(#[from] net::Error),
    /// The node's store failed.
    #[error(transparent)]
    Store(#[from] crate::outbox::StoreError),
    /// A bad address.
    #[error("invalid address {addr}: {message}")]
    Addr {
        /// The address.
        addr: String,
        /// Why.
        message: String,
    },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> PeerError {
    let context = context.into();
    move |source| PeerError::Io { context, source }
}

/// How many history samples the peer page shows (one per [`HISTORY_EVERY`], one hour).
const HISTORY_LEN: usize = 360;
/// Sampling period of the activity chart.
const HISTORY_EVERY: Duration = Duration::from_secs(10);
/// Staged documents past this count are committed early (bounds memory between commits).
const MAX_STAGED_DOCS: usize = 2_000;
/// How often the hand-off router looks at the outbox when nothing woke it.
const ROUTER_EVERY: Duration = Duration::from_millis(500);
/// Hops a hand-off may travel before the receiver accepts it whatever it believes.
const MAX_HOPS: u8 = 3;
/// Links kept in memory while they cannot be stored, at most.
const MAX_UNROUTED: usize = 200_000;
/// URLs per hand-off message.
const HANDOFF_BATCH: usize = 500;
/// Work for the index loop.
enum IndexJob {
    /// Documents from another owner of their site; acknowledged after they are committed.
    Replica {
        docs: Vec<Document>,
        deletes: Vec<String>,
        done: oneshot::Sender<Result<u32, String>>,
    },
}

/// The shared state of a running peer.
pub struct Node {
    config: PeerConfig,
    peer_id: PeerId,
    shard: Arc<Shard>,
    crawler: Crawler,
    net: net::Client,
    outbox: Outbox,
    parked: Parked,
    http_addr: SocketAddr,
    started: Instant,
    history: Mutex<VecDeque<HistoryPoint>>,
    stats_cache: Mutex<StatsCache>,
    index_jobs: mpsc::Sender<IndexJob>,
    router_wake: tokio::sync::Notify,
    replicated_docs: AtomicU64,
    search_stall: Option<Duration>,
    misbehave: Option<String>,
    /// Whether this peer's view of the network has settled since it started (see
    /// `claim.rs`); until then it makes no decision as a site's primary.
    pub(crate) settled: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("peer_id", &self.peer_id)
            .finish_non_exhaustive()
    }
}

/// A started peer: its node, the tasks it runs, and the token that stops them.
pub struct RunningPeer {
    /// The node (also the web backend).
    pub node: Arc<Node>,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
    index_task: tokio::task::JoinHandle<()>,
    _lock: File,
}

impl std::fmt::Debug for RunningPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningPeer")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

/// Set up `tracing` from `RUST_LOG` (default `info` for peersearch, `warn` for the rest).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(
            "warn,peersearch=info,peersearch_node=info,peersearch_crawler=info,peersearch_indexer=info,peersearch_web=info",
        )
    });
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal())
        .with_target(false)
        // A log line that cannot be written (a full disk under the log file) is dropped;
        // the default would report it on stderr, and panic if stderr is full too.
        .log_internal_errors(false)
        .try_init();
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Take the data dir's lock file so that a second process on the same dir is refused.
fn lock_data_dir(dir: &Path) -> Result<File, PeerError> {
    let path = dir.join("peersearch.lock");
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io(format!("cannot open {}", path.display())))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(PeerError::DataDirLocked(dir.to_path_buf())),
        Err(std::fs::TryLockError::Error(e)) => Err(io("cannot lock the data dir")(e)),
    }
}

/// Run a peer until Ctrl-C or SIGTERM, then shut it down cleanly.
pub async fn run_until_signal(config: PeerConfig) -> Result<(), PeerError> {
    let peer = start(config).await?;
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

/// Start every part of a peer.
pub async fn start(config: PeerConfig) -> Result<RunningPeer, PeerError> {
    std::fs::create_dir_all(&config.data_dir).map_err(io(format!(
        "cannot create data dir {}",
        config.data_dir.display()
    )))?;
    let lock = lock_data_dir(&config.data_dir)?;
    let shutdown = CancellationToken::new();

    let shard = {
        let dir = config.data_dir.join("index");
        std::fs::create_dir_all(&dir).map_err(io("cannot create the index dir"))?;
        Arc::new(
            tokio::task::spawn_blocking(move || Shard::open(&dir))
                .await
                .map_err(|e| PeerError::Io {
                    context: "index open task".into(),
                    source: std::io::Error::other(e),
                })??,
        )
    };
    let crawler = Crawler::open(
        &config.data_dir,
        CrawlerConfig {
            crawl_rate: config.crawl_rate,
            max_concurrency: config.crawl_concurrency,
            max_depth: config.max_depth,
            max_pages_per_site: config.max_pages_per_site,
            max_pages: config.max_pages,
            allow_private_addresses: config.allow_private_addresses,
            request_timeout: config.fetch_timeout(),
            local_address: config.crawl_bind_addr,
            ..CrawlerConfig::default()
        },
    )?;
    let outbox = Outbox::open(&config.data_dir.join("node.redb"))?;

    let keypair = net::load_or_create_keypair(&config.data_dir)?;
    let parse = |a: &String| -> Result<Multiaddr, PeerError> {
        a.parse()
            .map_err(|e: libp2p::multiaddr::Error| PeerError::Addr {
                addr: a.clone(),
                message: e.to_string(),
            })
    };
    let listen = config
        .listen
        .iter()
        .map(parse)
        .collect::<Result<Vec<_>, _>>()?;
    let bootstrap = config
        .bootstrap
        .iter()
        .map(parse)
        .collect::<Result<Vec<_>, _>>()?;
    let (client, events, event_loop) = net::new(net::NetConfig {
        keypair,
        listen,
        bootstrap,
        data_dir: config.data_dir.clone(),
    })?;
    let mut tasks = JoinSet::new();
    tasks.spawn(event_loop.run());
    let peer_id = client.local_peer_id();

    let listener = tokio::net::TcpListener::bind(config.http)
        .await
        .map_err(io(format!("cannot bind the web server to {}", config.http)))?;
    let http_addr = listener
        .local_addr()
        .map_err(io("cannot read the web address"))?;

    let (index_tx, index_rx) = mpsc::channel(64);
    let search_stall = std::env::var("PEERSEARCH_TEST_STALL_SEARCH_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis);
    let node = Arc::new(Node {
        peer_id,
        shard,
        crawler: crawler.clone(),
        net: client,
        parked: Parked::with_db(outbox.db()),
        outbox,
        http_addr,
        started: Instant::now(),
        history: Mutex::new(VecDeque::new()),
        stats_cache: Mutex::new(StatsCache::default()),
        index_jobs: index_tx,
        router_wake: tokio::sync::Notify::new(),
        replicated_docs: AtomicU64::new(0),
        search_stall,
        misbehave: std::env::var("PEERSEARCH_TEST_MISBEHAVE").ok(),
        settled: std::sync::atomic::AtomicBool::new(false),
        config,
    });
    if node.config.replication > 1 {
        // In a network a site is crawled only once claimed (claim.rs).
        crawler.gate_sites();
    }

    // The crawl loop feeds the index loop.
    let (page_tx, page_rx) = mpsc::channel::<CrawledPage>(256);
    {
        let crawler = crawler.clone();
        let token = shutdown.clone();
        tasks.spawn(async move { crawler.run(page_tx, token).await });
    }
    let index_task = tokio::spawn(index_loop(
        node.clone(),
        page_rx,
        index_rx,
        shutdown.clone(),
    ));
    tasks.spawn(net_events(node.clone(), events, shutdown.clone()));
    tasks.spawn(router_loop(node.clone(), shutdown.clone()));
    tasks.spawn(history_loop(node.clone(), shutdown.clone()));
    tasks.spawn(crate::maintenance::run(node.clone(), shutdown.clone()));
    tasks.spawn(crate::claim::run(node.clone(), shutdown.clone()));
    tasks.spawn(progress_log(node.clone(), shutdown.clone()));

    // The web server.
    {
        let config = peersearch_web::WebConfig::new(http_addr);
        let router = peersearch_web::app(node.clone(), config);
        let token = shutdown.clone();
        tasks.spawn(async move {
            if let Err(e) =
                peersearch_web::serve(listener, router, async move { token.cancelled().await })
                    .await
            {
                warn!(error = %e, "web server stopped");
            }
        });
    }
    if let Ok(path) = std::env::var("PEERSEARCH_HTTP_ADDR_FILE") {
        // For scripts and tests that ask for port 0: the bound address, written atomically.
        let tmp = format!("{path}.tmp");
        if std::fs::write(&tmp, http_addr.to_string()).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
    }
    info!(peer_id = %peer_id, http = %format!("http://{http_addr}"), "peer started");

    // Seeds from the configuration.
    let seeds = node.config.seed.clone();
    if !seeds.is_empty() {
        let r = node.submit(seeds).await;
        for rej in &r.rejected {
            warn!(url = %rej.url, reason = %rej.reason, "seed rejected");
        }
    }
    Ok(RunningPeer {
        node,
        shutdown,
        tasks,
        index_task,
        _lock: lock,
    })
}

impl RunningPeer {
    /// Stop crawling, commit what was fetched, flush the crawl state, stop the server.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        if tokio::time::timeout(Duration::from_secs(30), &mut self.index_task)
            .await
            .is_err()
        {
            warn!("index loop did not stop in time");
        }
        let deadline = tokio::time::sleep(Duration::from_secs(10));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                next = self.tasks.join_next() => if next.is_none() { break },
                _ = &mut deadline => { self.tasks.abort_all(); break }
            }
        }
        info!("peer stopped");
    }
}

impl Node {
    /// This peer's id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The bound web address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The local shard.
    pub fn shard(&self) -> &Arc<Shard> {
        &self.shard
    }

    /// The crawler.
    pub fn crawler(&self) -> &Crawler {
        &self.crawler
    }

    /// The p2p client.
    pub fn net(&self) -> &net::Client {
        &self.net
    }

    /// The configured replication factor.
    pub fn replication(&self) -> usize {
        self.config.replication
    }

    /// The owners of `site` among the live peers this peer knows, closest first.
    pub async fn owners_of(&self, site: &str) -> Vec<PeerId> {
        self.owners_with(site, None).await
    }

    /// [`Node::owners_of`], counting `also` as live: a peer that just sent a request is,
    /// even if this peer has not identified it yet.
    pub async fn owners_with(&self, site: &str, also: Option<PeerId>) -> Vec<PeerId> {
        let mut peers = self.net.live_peers().await.unwrap_or_default();
        if let Some(p) = also
            && !peers.contains(&p)
        {
            peers.push(p);
        }
        ownership::owners(
            &SiteKey::of(site),
            self.peer_id,
            &peers,
            self.config.replication,
        )
    }

    /// Validate seeds, then route them to their owners.
    pub async fn submit(&self, urls: Vec<String>) -> CrawlResponse {
        let mut resp = CrawlResponse::default();
        let mut items = Vec::new();
        let mut accepted_raw = Vec::new();
        for raw in urls {
            match peersearch_crawler::normalize(raw.trim(), None) {
                Ok(u) => {
                    if let Err(reason) = self.check_destination(&u) {
                        resp.rejected.push(Rejected { url: raw, reason });
                        continue;
                    }
                    items.push(HandoffItem {
                        url: u.to_string(),
                        depth: 0,
                        anchor: None,
                        hops: 0,
                    });
                    accepted_raw.push(raw);
                }
                Err(e) => resp.rejected.push(Rejected {
                    url: raw,
                    reason: e.to_string(),
                }),
            }
        }
        match self.route(items).await {
            Ok(()) => resp.accepted = accepted_raw.len(),
            Err(e) => {
                warn!(error = %e, "cannot store seeds");
                resp.rejected
                    .extend(accepted_raw.into_iter().map(|url| Rejected {
                        url,
                        reason: "the peer could not store it; try again".into(),
                    }));
            }
        }
        resp
    }

    /// Refuse IP-literal destinations the SSRF guard would refuse anyway, so the user hears
    /// about it at once (host names are checked when they are resolved, at fetch time).
    fn check_destination(&self, u: &NormalizedUrl) -> Result<(), String> {
        if self.config.allow_private_addresses {
            return Ok(());
        }
        let ip: std::net::IpAddr = match u.as_url().host() {
            Some(url::Host::Ipv4(ip)) => ip.into(),
            Some(url::Host::Ipv6(ip)) => ip.into(),
            _ => return Ok(()),
        };
        match peersearch_crawler::forbidden_reason(ip) {
            Some(why) => Err(format!(
                "{why} address refused (start the peer with --allow-private-addresses to allow it)"
            )),
            None => Ok(()),
        }
    }

    /// Enqueue items whose site this peer crawls; persist the rest in the outbox for the
    /// router to hand off.
    async fn route(&self, items: Vec<HandoffItem>) -> Result<(), PeerError> {
        if items.is_empty() {
            return Ok(());
        }
        let peers = self.net.live_peers().await.unwrap_or_default();
        let mut local = Vec::new();
        let mut remote = Vec::new();
        for it in items {
            let Ok(u) = peersearch_crawler::normalize(&it.url, None) else {
                continue;
            };
            let owners = ownership::owners(&SiteKey::of(&u.site()), self.peer_id, &peers, 1);
            if owners.first() == Some(&self.peer_id) || it.hops >= MAX_HOPS {
                local.push(Seed {
                    url: u,
                    depth: it.depth,
                    anchor: it.anchor,
                });
            } else {
                remote.push(it);
            }
        }
        if !local.is_empty() {
            self.crawler.enqueue(local).await?;
        }
        if !remote.is_empty() {
            let outbox = self.outbox.clone();
            tokio::task::spawn_blocking(move || outbox.push(&remote))
                .await
                .map_err(|e| PeerError::Io {
                    context: "outbox task".into(),
                    source: std::io::Error::other(e),
                })??;
            self.router_wake.notify_one();
        }
        Ok(())
    }

    /// Leaf search on the local shard (blocking work on a blocking thread).
    pub async fn leaf_search(
        &self,
        query: String,
        top_k: usize,
        stats: Option<TermStats>,
    ) -> Result<peersearch_indexer::SearchResults, peersearch_indexer::Error> {
        let shard = self.shard.clone();
        tokio::task::spawn_blocking(move || shard.search(&query, top_k, stats.as_ref()))
            .await
            .map_err(|e| peersearch_indexer::Error::Io(std::io::Error::other(e)))?
    }

    /// Local term statistics for a query.
    pub async fn local_stats(&self, query: String) -> Result<TermStats, peersearch_indexer::Error> {
        let shard = self.shard.clone();
        tokio::task::spawn_blocking(move || shard.term_stats(&query))
            .await
            .map_err(|e| peersearch_indexer::Error::Io(std::io::Error::other(e)))?
    }

    /// Hand replica documents to the index loop; resolves after they are committed.
    pub async fn store_replicas(
        &self,
        docs: Vec<Document>,
        deletes: Vec<String>,
    ) -> Result<u32, String> {
        let (done, rx) = oneshot::channel();
        self.index_jobs
            .send(IndexJob::Replica {
                docs,
                deletes,
                done,
            })
            .await
            .map_err(|_| "shutting down".to_string())?;
        rx.await.map_err(|_| "shutting down".to_string())?
    }

    async fn network_search(
        &self,
        p: &SearchParams,
    ) -> Result<(Vec<LeafAnswer>, usize, usize), BackendError> {
        let deadline = Duration::from_millis(p.timeout_ms);
        let started = Instant::now();
        let top_k = p.offset + p.limit;
        let mut peers = self.net.live_peers().await.unwrap_or_default();
        peers.truncate(search::MAX_FANOUT);
        let cached = self
            .stats_cache
            .lock()
            .ok()
            .and_then(|c| c.get(&p.q, peers.len()));
        let stats = match cached {
            Some(s) => s,
            None => {
                let local = self.local_stats(p.q.clone()).await.map_err(bad_query)?;
                let s = search::gather_stats(&self.net, &peers, &p.q, local, deadline).await;
                if let Ok(mut c) = self.stats_cache.lock() {
                    c.put(&p.q, peers.len(), s.clone());
                }
                s
            }
        };
        let remaining = deadline.saturating_sub(started.elapsed());
        let request = wire::SearchRequest {
            query: p.q.clone(),
            top_k: top_k as u32,
            stats: Some(stats.clone()),
        };
        let local_fut = self.leaf_search(p.q.clone(), top_k, Some(stats));
        let remote_fut = search::fan_out(&self.net, &peers, request, None, remaining);
        let (local, mut fan) = tokio::join!(local_fut, remote_fut);
        let local = local.map_err(bad_query)?;
        fan.answers.push(LeafAnswer {
            peer: self.peer_id.to_string(),
            hits: local.hits,
            total_matches: local.total_matches,
        });
        fan.queried += 1;
        Ok((fan.answers, fan.queried, fan.failed))
    }

    /// How many peers have an open connection to this one.
    async fn connected_peers(&self) -> usize {
        self.net
            .peers()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|p| p.connected)
            .count()
    }

    /// Sites whose crawl state is parked here.
    pub fn parked_sites(&self) -> Result<Vec<String>, crate::outbox::StoreError> {
        self.parked.sites()
    }

    /// Park the crawl state of a site this peer replicates.
    pub fn park_state(&self, site: &str, bytes: &[u8]) -> Result<(), String> {
        self.parked.put(site, bytes).map_err(|e| e.to_string())
    }

    /// Forget a parked state.
    pub fn drop_parked(&self, site: &str) {
        if let Err(e) = self.parked.remove(site) {
            warn!(site, error = %e, "cannot forget parked crawl state");
        }
    }

    /// Whether this peer's view of the network has settled since it started.
    pub fn is_settled(&self) -> bool {
        self.settled.load(Ordering::Relaxed)
    }

    /// What this peer parked of a site's crawl: the shared state and the links replicated
    /// since (empty when nothing is parked).
    pub fn parked_state(&self, site: &str) -> peersearch_crawler::SiteState {
        let mut state = match self.parked.get(site) {
            Ok(Some(bytes)) => serde_json::from_slice::<peersearch_crawler::SiteState>(&bytes)
                .unwrap_or_else(|e| {
                    warn!(site, error = %e, "unreadable parked crawl state");
                    peersearch_crawler::SiteState::empty(site)
                }),
            Ok(None) => peersearch_crawler::SiteState::empty(site),
            Err(e) => {
                warn!(site, error = %e, "cannot read parked crawl state");
                peersearch_crawler::SiteState::empty(site)
            }
        };
        match self.parked.links(site) {
            Ok(links) => state.queued.extend(links.into_iter().filter_map(|l| {
                let url = peersearch_crawler::normalize(&l.url, None).ok()?;
                (url.site() == site).then(|| peersearch_crawler::QueuedUrl {
                    url,
                    depth: l.depth,
                    anchors: l.anchor.into_iter().collect(),
                })
            })),
            Err(e) => warn!(site, error = %e, "cannot read parked links"),
        }
        state
    }

    /// Queue the crawl of a site from its parked state and links (this peer became its
    /// primary; the claim loop releases it once no other owner crawls it).
    pub async fn import_parked(&self, site: &str) {
        let state = self.parked_state(site);
        match self.crawler.import_site_state(state).await {
            Ok(n) => {
                info!(
                    site,
                    queued = n,
                    "continuing the crawl of a site from its shared state"
                );
                self.drop_parked(site);
            }
            Err(e) => warn!(site, error = %e, "cannot import crawl state"),
        }
    }

    /// Keep (or, as the primary, enqueue) same-site links and crawled URLs replicated with
    /// a site's documents.
    pub async fn accept_crawl_progress(
        &self,
        from: PeerId,
        site: &str,
        crawled: Vec<String>,
        links: Vec<wire::HandoffUrl>,
    ) -> Result<(), String> {
        let crawled: Vec<NormalizedUrl> = crawled
            .iter()
            .filter_map(|u| peersearch_crawler::normalize(u, None).ok())
            .filter(|u| u.site() == site)
            .collect();
        if !crawled.is_empty() {
            self.crawler
                .mark_committed(&crawled)
                .await
                .map_err(|e| e.to_string())?;
        }
        if links.is_empty() {
            return Ok(());
        }
        let primary = self.owners_with(site, Some(from)).await.first() == Some(&self.peer_id);
        if primary {
            let seeds = links
                .into_iter()
                .filter_map(|l| {
                    let url = peersearch_crawler::normalize(&l.url, None).ok()?;
                    (url.site() == site).then_some(Seed {
                        url,
                        depth: l.depth,
                        anchor: l.anchor,
                    })
                })
                .collect();
            self.crawler
                .enqueue(seeds)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        } else {
            let links: Vec<crate::outbox::ParkedLink> = links
                .into_iter()
                .map(|l| crate::outbox::ParkedLink {
                    url: l.url,
                    depth: l.depth,
                    anchor: l.anchor,
                })
                .collect();
            let parked = self.parked.clone();
            let site = site.to_string();
            tokio::task::spawn_blocking(move || parked.add_links(&site, &links))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())
        }
    }

    /// Import a crawl state sent by another owner into the crawler.
    pub async fn import_state_bytes(&self, bytes: &[u8]) -> Result<(), String> {
        let state: peersearch_crawler::SiteState =
            serde_json::from_slice(bytes).map_err(|e| format!("bad crawl state: {e}"))?;
        self.crawler
            .import_site_state(state)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn record_history(&self) {
        let st = self.crawler.stats();
        let point = HistoryPoint {
            at_unix: now_unix(),
            pages_crawled: st.pages_crawled,
            docs_indexed: self.shard.num_docs(),
        };
        if let Ok(mut h) = self.history.lock() {
            h.push_back(point);
            while h.len() > HISTORY_LEN {
                h.pop_front();
            }
        }
    }
}

fn bad_query(e: peersearch_indexer::Error) -> BackendError {
    match e {
        peersearch_indexer::Error::EmptyQuery => {
            BackendError::BadQuery("the query has no searchable terms".into())
        }
        other => BackendError::Internal(other.to_string()),
    }
}

impl Backend for Node {
    async fn search(&self, p: SearchParams) -> Result<SearchResponse, BackendError> {
        let started = Instant::now();
        let (answers, queried, failed) = match p.scope {
            Scope::Local => {
                let r = self
                    .leaf_search(p.q.clone(), p.offset + p.limit, None)
                    .await
                    .map_err(bad_query)?;
                (
                    vec![LeafAnswer {
                        peer: self.peer_id.to_string(),
                        hits: r.hits,
                        total_matches: r.total_matches,
                    }],
                    1,
                    0,
                )
            }
            Scope::Network => self.network_search(&p).await?,
        };
        let total_hits = answers.iter().map(|a| a.total_matches).max().unwrap_or(0);
        let hits = search::merge(answers, p.offset, p.limit)
            .into_iter()
            .map(|m| ApiHit {
                url: m.hit.url,
                title: m.hit.title,
                snippet: m.hit.snippet,
                score: m.hit.score,
                peer: m.peer,
            })
            .collect();
        Ok(SearchResponse {
            query: p.q,
            hits,
            took_ms: started.elapsed().as_millis() as u64,
            peers: PeerCounts {
                queried,
                answered: queried - failed,
                failed,
            },
            partial: failed > 0,
            total_hits,
        })
    }

    async fn submit_urls(&self, urls: Vec<String>) -> CrawlResponse {
        self.submit(urls).await
    }

    async fn status(&self) -> StatusResponse {
        let st = self.crawler.stats();
        let outbox = self.outbox.len().unwrap_or(0);
        StatusResponse {
            peer_id: self.peer_id.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            http_addr: self.http_addr.to_string(),
            listen_addrs: self
                .net
                .listen_addrs()
                .await
                .unwrap_or_default()
                .into_iter()
                .map(|a| a.to_string())
                .collect(),
            peers_connected: self.connected_peers().await,
            routing_table_size: self.net.routing_table_size().await.unwrap_or(0),
            docs_indexed: self.shard.num_docs(),
            frontier_size: st.frontier_size + outbox,
            crawl_in_flight: st.in_flight,
            pages_crawled: st.pages_crawled,
            pages_failed: st.pages_failed,
            uptime_s: self.started.elapsed().as_secs(),
        }
    }

    async fn peers(&self) -> Vec<PeerInfo> {
        self.net
            .peers()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|p| p.connected)
            .map(|p| PeerInfo {
                peer_id: p.peer_id.to_string(),
                addrs: p.addrs.iter().map(|a| a.to_string()).collect(),
                rtt_ms: p.rtt.map(|d| d.as_secs_f64() * 1000.0),
            })
            .collect()
    }

    async fn activity(&self) -> Activity {
        let history = self
            .history
            .lock()
            .map(|h| h.iter().copied().collect())
            .unwrap_or_default();
        let recent_errors = self
            .crawler
            .recent_errors()
            .into_iter()
            .map(|(at, url, reason)| CrawlErrorEntry {
                at_unix: at.max(0) as u64,
                url,
                reason,
            })
            .collect();
        Activity {
            history,
            recent_errors,
        }
    }

    async fn metrics(&self) -> MetricsSnapshot {
        let st = self.crawler.stats();
        let traffic = self.net.traffic();
        let mut bytes_sent = BTreeMap::new();
        let mut bytes_received = BTreeMap::new();
        for (proto, (sent, recv)) in traffic {
            bytes_sent.insert(proto.clone(), sent);
            bytes_received.insert(proto, recv);
        }
        let mut crawl_outcomes = st.outcomes.clone();
        crawl_outcomes.insert(
            "replica_received".into(),
            self.replicated_docs.load(Ordering::Relaxed),
        );
        MetricsSnapshot {
            crawl_outcomes,
            docs_indexed: self.shard.num_docs(),
            index_bytes: self.shard.size_bytes(),
            frontier_size: st.frontier_size,
            peers_connected: self.connected_peers().await,
            bytes_sent,
            bytes_received,
        }
    }
}

/// Build the indexed document of a crawled page.
fn to_document(page: &CrawledPage) -> Option<Document> {
    let p = page.page.as_ref()?;
    Some(Document {
        url: page.final_url.to_string(),
        site: page.final_url.site(),
        title: p.title.clone(),
        description: p.description.clone().unwrap_or_default(),
        body: p.text.clone(),
        headings: p.headings.join("\n"),
        anchor_text: page.anchors.join("\n"),
        lang: p.lang.clone().unwrap_or_default(),
        fetched_at: page.fetched_at,
        content_hash: p.content_hash.clone(),
    })
}

/// The index loop: stages crawled pages and replicas, commits at least every
/// `commit_interval_ms`, then marks the crawled URLs done and replicates the new documents.
async fn index_loop(
    node: Arc<Node>,
    mut pages: mpsc::Receiver<CrawledPage>,
    mut jobs: mpsc::Receiver<IndexJob>,
    shutdown: CancellationToken,
) {
    let mut staged_docs: Vec<Document> = Vec::new();
    let mut staged_urls: Vec<NormalizedUrl> = Vec::new();
    let mut staged_links: Vec<(String, wire::HandoffUrl)> = Vec::new();
    // Links that could not be stored (a full disk): routed again at every tick.
    let mut unrouted: Vec<HandoffItem> = Vec::new();
    let mut replica_docs: Vec<Document> = Vec::new();
    let mut replica_deletes: Vec<String> = Vec::new();
    let mut acks: Vec<(oneshot::Sender<Result<u32, String>>, u32)> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(node.config.commit_interval_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let (stopping, ticked) = tokio::select! {
            Some(page) = pages.recv() => {
                handle_page(&node, page, &mut staged_docs, &mut staged_urls, &mut staged_links, &mut unrouted).await;
                (false, false)
            }
            Some(job) = jobs.recv() => {
                match job {
                    IndexJob::Replica { docs, deletes, done } => {
                        let n = docs.len() as u32;
                        replica_docs.extend(docs);
                        replica_deletes.extend(deletes);
                        acks.push((done, n));
                    }
                }
                (false, false)
            }
            _ = tick.tick() => (false, true),
            _ = shutdown.cancelled() => (true, false),
        };
        if ticked && !unrouted.is_empty() {
            let items = std::mem::take(&mut unrouted);
            match node.route(items.clone()).await {
                Ok(()) => info!(links = items.len(), "stored the links kept back"),
                Err(_) => unrouted = items,
            }
        }
        if stopping {
            // Take what the crawl loop already sent, then commit it all once more.
            while let Ok(page) = pages.try_recv() {
                handle_page(
                    &node,
                    page,
                    &mut staged_docs,
                    &mut staged_urls,
                    &mut staged_links,
                    &mut unrouted,
                )
                .await;
            }
        }
        let due = staged_docs.len() + replica_docs.len() >= MAX_STAGED_DOCS || ticked || stopping;
        if due && !(staged_urls.is_empty() && replica_docs.is_empty() && replica_deletes.is_empty())
        {
            commit_batch(
                &node,
                &mut staged_docs,
                &mut staged_urls,
                &mut staged_links,
                &mut replica_docs,
                &mut replica_deletes,
                &mut acks,
            )
            .await;
        }
        if stopping {
            break;
        }
    }
}

async fn handle_page(
    node: &Arc<Node>,
    page: CrawledPage,
    staged_docs: &mut Vec<Document>,
    staged_urls: &mut Vec<NormalizedUrl>,
    staged_links: &mut Vec<(String, wire::HandoffUrl)>,
    unrouted: &mut Vec<HandoffItem>,
) {
    if let Some(doc) = to_document(&page) {
        staged_docs.push(doc);
    }
    staged_urls.push(page.url.clone());
    if page.final_url != page.url {
        staged_urls.push(page.final_url.clone());
    }
    if !page.links.is_empty() {
        // Same-site links travel with the documents to the replicas (see `replicate_new`).
        let site = page.final_url.site();
        staged_links.extend(page.links.iter().filter(|l| l.url.site() == site).map(|l| {
            (
                site.clone(),
                wire::HandoffUrl {
                    url: l.url.to_string(),
                    depth: l.depth,
                    anchor: l.anchor.clone(),
                },
            )
        }));
        let items: Vec<HandoffItem> = page
            .links
            .iter()
            .map(|s| HandoffItem {
                url: s.url.to_string(),
                depth: s.depth,
                anchor: s.anchor.clone(),
                hops: 0,
            })
            .collect();
        if let Err(e) = node.route(items.clone()).await {
            // Kept in memory and tried again at every tick (a full disk, say); the page
            // itself stays in flight until its commit succeeds.
            warn!(error = %e, url = %page.url, "cannot store links; will retry");
            unrouted.extend(items);
            if unrouted.len() > MAX_UNROUTED {
                let excess = unrouted.len() - MAX_UNROUTED;
                warn!(
                    dropped = excess,
                    "too many links kept back; dropping the oldest"
                );
                unrouted.drain(..excess);
            }
        }
    }
}

async fn commit_batch(
    node: &Arc<Node>,
    staged_docs: &mut Vec<Document>,
    staged_urls: &mut Vec<NormalizedUrl>,
    staged_links: &mut Vec<(String, wire::HandoffUrl)>,
    replica_docs: &mut Vec<Document>,
    replica_deletes: &mut Vec<String>,
    acks: &mut Vec<(oneshot::Sender<Result<u32, String>>, u32)>,
) {
    let docs = std::mem::take(staged_docs);
    let replicas = std::mem::take(replica_docs);
    // Replicated pages count as crawled here too: if this peer becomes the primary of their
    // site, it continues the crawl without fetching them again.
    let replica_urls: Vec<NormalizedUrl> = replicas
        .iter()
        .filter_map(|d| peersearch_crawler::normalize(&d.url, None).ok())
        .collect();
    let deletes = std::mem::take(replica_deletes);
    let shard = node.shard.clone();
    let docs_for_blocking = docs.clone();
    let result = tokio::task::spawn_blocking(move || {
        for d in &docs_for_blocking {
            shard.upsert(d)?;
        }
        for d in &replicas {
            shard.upsert(d)?;
        }
        for u in &deletes {
            shard.delete(u)?;
        }
        shard.commit()
    })
    .await;
    let ok = matches!(result, Ok(Ok(())));
    match result {
        Ok(Ok(())) => {
            debug!(docs = docs.len(), "committed");
        }
        Ok(Err(e)) => warn!(error = %e, "commit failed; the batch will be crawled again"),
        Err(e) => warn!(error = %e, "commit task failed"),
    }
    for (done, n) in acks.drain(..) {
        if ok {
            node.replicated_docs.fetch_add(n as u64, Ordering::Relaxed);
        }
        let _ = done.send(if ok {
            Ok(n)
        } else {
            Err("commit failed".into())
        });
    }
    let urls = std::mem::take(staged_urls);
    let links = std::mem::take(staged_links);
    if ok && !replica_urls.is_empty() && node.crawler.mark_committed(&replica_urls).await.is_err() {
        warn!("cannot record replicated urls as crawled");
    }
    if ok {
        if node.crawler.mark_committed(&urls).await.is_err() {
            warn!("cannot mark committed urls done; they will be fetched again");
        }
        if node.config.replication > 1 && !urls.is_empty() {
            let node = node.clone();
            tokio::spawn(async move { replicate_new(&node, docs, urls, links).await });
        }
    } else {
        // Not committed (a full disk, say): the shard keeps the staged operations and replays
        // them at the next commit, so the URLs stay in flight until a commit succeeds.
        staged_urls.extend(urls);
        staged_links.extend(links);
    }
}

/// Links per replication message at most (the rest follow in further messages).
const REPLICATE_LINKS: usize = 5_000;

/// Send freshly committed documents to the other owners of their sites, with the crawl
/// progress behind them: every URL the batch crawled and the same-site links it found, so
/// a replica that takes over the site's crawl neither fetches a page twice nor misses one.
async fn replicate_new(
    node: &Arc<Node>,
    docs: Vec<Document>,
    crawled: Vec<NormalizedUrl>,
    links: Vec<(String, wire::HandoffUrl)>,
) {
    #[derive(Default)]
    struct SiteBatch {
        docs: Vec<Document>,
        crawled: Vec<String>,
        links: Vec<wire::HandoffUrl>,
    }
    let mut by_site: HashMap<String, SiteBatch> = HashMap::new();
    for d in docs {
        by_site.entry(d.site.clone()).or_default().docs.push(d);
    }
    for u in crawled {
        by_site
            .entry(u.site())
            .or_default()
            .crawled
            .push(u.to_string());
    }
    for (site, l) in links {
        by_site.entry(site).or_default().links.push(l);
    }
    for (site, batch) in by_site {
        let owners = node.owners_of(&site).await;
        let mut messages: Vec<wire::ReplicateRequest> =
            crate::maintenance::size_batches(batch.docs)
                .into_iter()
                .map(|docs| wire::ReplicateRequest {
                    site: site.clone(),
                    docs,
                    ..Default::default()
                })
                .collect();
        if messages.is_empty() {
            messages.push(wire::ReplicateRequest {
                site: site.clone(),
                ..Default::default()
            });
        }
        // Progress rides on the last message: after the documents it describes.
        let mut links = batch.links;
        while links.len() > REPLICATE_LINKS {
            let rest = links.split_off(REPLICATE_LINKS);
            messages.push(wire::ReplicateRequest {
                site: site.clone(),
                links: std::mem::replace(&mut links, rest),
                ..Default::default()
            });
        }
        if let Some(last) = messages.last_mut() {
            last.crawled = batch.crawled;
            last.links.extend(links);
        }
        for owner in owners.into_iter().filter(|o| *o != node.peer_id) {
            for req in &messages {
                if let Err(e) = node.net.replicate(owner, req.clone()).await {
                    // Replica maintenance compares digests and repairs what is missing; the
                    // periodic crawl-state share carries the progress.
                    debug!(peer = %owner, site, error = %e, "replication deferred");
                    break;
                }
            }
        }
    }
}

/// Answer requests from other peers.
async fn net_events(
    node: Arc<Node>,
    mut events: mpsc::Receiver<net::Event>,
    shutdown: CancellationToken,
) {
    loop {
        let ev = tokio::select! {
            ev = events.recv() => match ev { Some(ev) => ev, None => break },
            _ = shutdown.cancelled() => break,
        };
        let node = node.clone();
        // Each request is answered on its own task so a slow one never holds up the rest.
        tokio::spawn(async move { handle_event(node, ev).await });
    }
}

async fn handle_event(node: Arc<Node>, ev: net::Event) {
    match ev {
        net::Event::InboundSearch { request, reply, .. } => {
            if let Some(stall) = node.search_stall {
                // Test hook (PEERSEARCH_TEST_STALL_SEARCH_MS): a peer that answers late.
                tokio::time::sleep(stall).await;
            }
            match node.misbehave.as_deref() {
                // Test hooks: a hostile peer that floods the root with fake hits, or with an
                // answer far over the protocol's size cap.
                Some("flood") | Some("oversized") => {
                    let big = node.misbehave.as_deref() == Some("oversized");
                    let hits = (0..10_000)
                        .map(|i| peersearch_indexer::Hit {
                            url: format!("http://spam.example/{i}"),
                            title: "spam".into(),
                            snippet: if big { "x".repeat(1024) } else { "spam".into() },
                            score: 1e9,
                        })
                        .collect();
                    let _ = reply.send(wire::SearchResponse {
                        hits,
                        total_matches: 10_000,
                    });
                    return;
                }
                _ => {}
            }
            let top_k = (request.top_k as usize).min(1100);
            let resp = match node.leaf_search(request.query, top_k, request.stats).await {
                Ok(r) => wire::SearchResponse {
                    hits: r.hits,
                    total_matches: r.total_matches,
                },
                Err(e) => {
                    debug!(error = %e, "leaf search failed");
                    wire::SearchResponse {
                        hits: Vec::new(),
                        total_matches: 0,
                    }
                }
            };
            let _ = reply.send(resp);
        }
        net::Event::InboundStats { request, reply, .. } => {
            let stats = node.local_stats(request.query).await.unwrap_or_default();
            let _ = reply.send(stats);
        }
        net::Event::InboundHandoff { request, reply, .. } => {
            let items: Vec<HandoffItem> = request
                .urls
                .into_iter()
                .take(crate::maintenance::MAX_HANDOFF_URLS)
                .map(|u| HandoffItem {
                    url: u.url,
                    depth: u.depth,
                    anchor: u.anchor,
                    hops: request.hops.saturating_add(1),
                })
                .collect();
            let n = items.len() as u32;
            // Persist before acknowledging; the router enqueues or forwards them.
            let outbox = node.outbox.clone();
            let stored = tokio::task::spawn_blocking(move || outbox.push(&items)).await;
            if matches!(stored, Ok(Ok(()))) {
                node.router_wake.notify_one();
                let _ = reply.send(wire::HandoffResponse { accepted: n });
            } else {
                warn!("cannot persist a hand-off; not acknowledged");
            }
        }
        net::Event::InboundReplicate {
            peer,
            request,
            reply,
        } => {
            crate::maintenance::on_replicate(&node, peer, request, reply).await;
        }
        net::Event::InboundDigest { request, reply, .. } => {
            crate::maintenance::on_digest(&node, request, reply).await;
        }
        other => debug!(event = ?other, "network event"),
    }
}

/// Route what waits in the outbox: enqueue locally or hand off to the primary.
async fn router_loop(node: Arc<Node>, shutdown: CancellationToken) {
    let mut backoff: HashMap<PeerId, Instant> = HashMap::new();
    loop {
        tokio::select! {
            _ = node.router_wake.notified() => {}
            _ = tokio::time::sleep(ROUTER_EVERY) => {}
            _ = shutdown.cancelled() => return,
        }
        let outbox = node.outbox.clone();
        let Ok(Ok(items)) = tokio::task::spawn_blocking(move || outbox.peek(5_000)).await else {
            continue;
        };
        if items.is_empty() {
            continue;
        }
        let peers = node.net.live_peers().await.unwrap_or_default();
        let mut local: Vec<(u64, Seed)> = Vec::new();
        let mut remote: HashMap<PeerId, Vec<(u64, HandoffItem)>> = HashMap::new();
        let mut dropped = Vec::new();
        for (seq, it) in items {
            let Ok(u) = peersearch_crawler::normalize(&it.url, None) else {
                dropped.push(seq);
                continue;
            };
            let owners = ownership::owners(&SiteKey::of(&u.site()), node.peer_id, &peers, 1);
            match owners.first() {
                Some(p) if *p != node.peer_id && it.hops < MAX_HOPS => {
                    remote.entry(*p).or_default().push((seq, it));
                }
                _ => local.push((
                    seq,
                    Seed {
                        url: u,
                        depth: it.depth,
                        anchor: it.anchor,
                    },
                )),
            }
        }
        let mut done: Vec<u64> = dropped;
        if !local.is_empty() {
            let (seqs, seeds): (Vec<u64>, Vec<Seed>) = local.into_iter().unzip();
            if node.crawler.enqueue(seeds).await.is_ok() {
                done.extend(seqs);
            }
        }
        let now = Instant::now();
        for (peer, batch) in remote {
            if backoff.get(&peer).is_some_and(|t| *t > now) {
                continue;
            }
            for chunk in batch.chunks(HANDOFF_BATCH) {
                let req = wire::HandoffRequest {
                    urls: chunk
                        .iter()
                        .map(|(_, it)| wire::HandoffUrl {
                            url: it.url.clone(),
                            depth: it.depth,
                            anchor: it.anchor.clone(),
                        })
                        .collect(),
                    hops: chunk.iter().map(|(_, it)| it.hops).max().unwrap_or(0),
                };
                match node.net.handoff(peer, req).await {
                    Ok(_) => done.extend(chunk.iter().map(|(s, _)| *s)),
                    Err(e) => {
                        debug!(peer = %peer, error = %e, "hand-off failed; will retry");
                        backoff.insert(peer, now + Duration::from_secs(2));
                        break;
                    }
                }
            }
        }
        let outbox = node.outbox.clone();
        let _ = tokio::task::spawn_blocking(move || outbox.remove(&done)).await;
    }
}

async fn history_loop(node: Arc<Node>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(HISTORY_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => node.record_history(),
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Progress lines at info level every few seconds while something happens.
async fn progress_log(node: Arc<Node>, shutdown: CancellationToken) {
    const EVERY: Duration = Duration::from_secs(10);
    let mut last_pages = node.crawler.stats().pages_crawled;
    let mut last_docs = node.shard.num_docs();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = shutdown.cancelled() => return,
        }
        let st = node.crawler.stats();
        let docs = node.shard.num_docs();
        if st.pages_crawled != last_pages || docs != last_docs || st.frontier_size > 0 {
            let rate =
                (st.pages_crawled - last_pages.min(st.pages_crawled)) as f64 / EVERY.as_secs_f64();
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
