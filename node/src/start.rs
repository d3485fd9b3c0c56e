//! The composition root: opens the data dir, builds every component with the handles it
//! needs, starts their tasks, and stops them in order ([`RunningPeer::shutdown`]).

use crate::anchors::Anchors;
use crate::backend::NodeBackend;
use crate::claims::Claims;
use crate::config::PeerConfig;
use crate::docs::Docs;
use crate::error::{Error, Result};
use crate::indexing;
use crate::net;
use crate::replication::Replication;
use crate::routing::Routing;
use crate::search::Search;
use crate::store;
use crate::telemetry::{self, History};
use libp2p::{Multiaddr, PeerId};
use peersearch_crawler::{CrawledPage, Crawler, CrawlerConfig, ScopeSpec};
use peersearch_indexer::Shard;
use peersearch_web::api::CrawlResponse;
use std::fs::File;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// How long shutdown waits for the index loop's last commit.
const INDEX_STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long shutdown waits for the other tasks.
const TASKS_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for the network to close its listeners and save known peers.
const NET_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// A started peer: the tasks it runs and the tokens that stop them.
pub struct RunningPeer {
    peer_id: PeerId,
    http_addr: SocketAddr,
    net: net::Client,
    routing: Routing,
    /// The crawl scope of seeds submitted without one.
    default_scope: ScopeSpec,
    /// Stops what moves work between peers (router, maintenance, claims, inbound requests).
    coordination: CancellationToken,
    /// Stops the crawl, the index loop (after its last commit) and the web server.
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
    index_task: JoinHandle<()>,
    net_task: JoinHandle<()>,
    _lock: File,
}

impl std::fmt::Debug for RunningPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningPeer")
            .field("peer_id", &self.peer_id)
            .field("http_addr", &self.http_addr)
            .finish_non_exhaustive()
    }
}

/// Take the data dir's lock file so that a second process on the same dir is refused.
fn lock_data_dir(dir: &Path) -> Result<File> {
    let path = dir.join("peersearch.lock");
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(Error::io(format!("cannot open {}", path.display())))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::DataDirLocked(dir.to_path_buf())),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io("cannot lock the data dir")(e)),
    }
}

fn parse_addrs(addrs: &[String]) -> Result<Vec<Multiaddr>> {
    addrs
        .iter()
        .map(|a| {
            a.parse()
                .map_err(|e: libp2p::multiaddr::Error| Error::Addr {
                    addr: a.clone(),
                    message: e.to_string(),
                })
        })
        .collect()
}

/// Open the data dir, its lock, the index and the crawl state (file system work, on a
/// blocking thread).
async fn open_data_dir(config: &PeerConfig) -> Result<(File, Arc<Shard>, Crawler)> {
    let dir = config.data_dir.clone();
    let crawler_config = CrawlerConfig {
        crawl_rate: config.crawl_rate,
        max_concurrency: config.crawl_concurrency,
        max_depth: config.max_depth,
        max_pages_per_site: config.max_pages_per_site,
        min_revisit_secs: config.min_revisit_secs,
        max_revisit_secs: config.max_revisit_secs,
        max_pages: config.max_pages,
        allow_private_addresses: config.allow_private_addresses,
        request_timeout: config.fetch_timeout(),
        local_address: config.crawl_bind_addr,
        ..CrawlerConfig::default()
    };
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir).map_err(Error::io(format!(
            "cannot create data dir {}",
            dir.display()
        )))?;
        let lock = lock_data_dir(&dir)?;
        let index_dir = dir.join("index");
        std::fs::create_dir_all(&index_dir).map_err(Error::io("cannot create the index dir"))?;
        let shard = Arc::new(Shard::open(&index_dir)?);
        let crawler = Crawler::open(&dir, crawler_config)?;
        Ok((lock, shard, crawler))
    })
    .await?
}

/// Start every part of a peer.
pub async fn start(config: PeerConfig) -> Result<RunningPeer> {
    #[cfg(feature = "test-hooks")]
    crate::parent_watch::spawn_if_asked();
    #[cfg(feature = "test-hooks")]
    net::hooks::check_env().map_err(Error::Hostile)?;
    let (lock, shard, crawler) = open_data_dir(&config).await?;
    let (outbox, parked) = store::open(&config.data_dir.join("node.redb")).await?;
    let anchors = Anchors::open(&config.data_dir.join("anchors.redb")).await?;
    let shutdown = CancellationToken::new();
    let coordination = shutdown.child_token();

    let dir = config.data_dir.clone();
    let keypair = tokio::task::spawn_blocking(move || net::load_or_create_keypair(&dir)).await??;
    let (net, events, event_loop) = net::new(net::NetConfig {
        keypair,
        listen: parse_addrs(&config.listen)?,
        bootstrap: parse_addrs(&config.bootstrap)?,
        data_dir: config.data_dir.clone(),
    })?;
    let net_task = tokio::spawn(event_loop.run());
    let peer_id = net.local_peer_id();

    let listener = tokio::net::TcpListener::bind(config.http)
        .await
        .map_err(Error::io(format!(
            "cannot bind the web server to {}",
            config.http
        )))?;
    let http_addr = listener
        .local_addr()
        .map_err(Error::io("cannot read the web address"))?;

    // The components, each with the handles it needs.
    let networked = config.replication > 1;
    if networked {
        // In a network a site is crawled only once claimed (claims.rs).
        crawler.gate_sites();
    }
    let routing = Routing::new(
        net.clone(),
        crawler.clone(),
        outbox,
        anchors.clone(),
        config.replication,
        config.allow_private_addresses,
    );
    let (page_tx, page_rx) = mpsc::channel::<CrawledPage>(256);
    let (committed_tx, committed_rx) = mpsc::unbounded_channel();
    let (indexing, index_loop) = indexing::new(
        shard,
        crawler.clone(),
        routing.clone(),
        anchors.clone(),
        page_rx,
        networked.then_some(committed_tx),
        Duration::from_millis(config.commit_interval_ms),
    )
    .await?;
    let index_loop = index_loop.with_tombstones(parked.tombstones());
    let replication = Replication::new(
        net.clone(),
        crawler.clone(),
        indexing.clone(),
        parked,
        anchors,
        routing.clone(),
        Duration::from_millis(config.maintenance_interval_ms),
    );
    let claims = Claims::new(
        net.clone(),
        crawler.clone(),
        routing.clone(),
        replication.clone(),
        coordination.clone(),
    );
    let search = Search::new(net.clone(), indexing.clone(), routing.clone());
    let history = History::default();
    let docs = Docs::new(net.clone(), indexing.clone(), routing.clone());

    // Their tasks.
    let mut tasks = JoinSet::new();
    {
        let crawler = crawler.clone();
        let token = shutdown.clone();
        tasks.spawn(async move { crawler.run(page_tx, token).await });
    }
    let index_task = tokio::spawn(index_loop.run(shutdown.clone()));
    tasks.spawn(replication.clone().run_out(committed_rx));
    tasks.spawn(answer_requests(
        Responders {
            search: search.clone(),
            routing: routing.clone(),
            replication: replication.clone(),
            claims: claims.clone(),
            docs: docs.clone(),
            #[cfg(feature = "test-hooks")]
            indexing: indexing.clone(),
        },
        events,
        coordination.clone(),
    ));
    tasks.spawn(routing.clone().run_router(coordination.clone()));
    #[cfg(feature = "test-hooks")]
    if net::hooks::Hooks::from_env().poisons_replicas() {
        tasks.spawn(net::hooks::poison_replicas(
            net.clone(),
            coordination.clone(),
        ));
    }
    #[cfg(feature = "test-hooks")]
    if net::hooks::Hooks::from_env().floods_queries() {
        tasks.spawn(net::hooks::flood_queries(net.clone(), coordination.clone()));
    }
    #[cfg(feature = "test-hooks")]
    if net::hooks::Hooks::from_env().floods_handoffs() {
        tasks.spawn(net::hooks::flood_handoffs(
            net.clone(),
            coordination.clone(),
        ));
    }
    tasks.spawn(replication.run_maintenance(coordination.clone()));
    tasks.spawn(claims.run());
    tasks.spawn(telemetry::run_history(
        history.clone(),
        crawler.clone(),
        indexing.clone(),
        shutdown.clone(),
    ));
    tasks.spawn(telemetry::run_progress_log(
        crawler.clone(),
        indexing.clone(),
        shutdown.clone(),
    ));

    // The web server.
    let default_scope = config.default_scope()?;
    let backend = Arc::new(NodeBackend {
        default_scope: default_scope.clone(),
        http_addr,
        started: Instant::now(),
        net: net.clone(),
        crawler,
        indexing,
        routing: routing.clone(),
        search,
        history,
        docs,
    });
    let web_config = peersearch_web::WebConfig::new(http_addr)
        .with_public_url(config.public_url.clone())
        .with_trusted_proxies(config.trusted_proxy.clone());
    let router = peersearch_web::app(backend, web_config);
    {
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
    if let Some(path) = &config.http_addr_file {
        write_addr_file(path, http_addr).await;
    }
    info!(peer_id = %peer_id, http = %format!("http://{http_addr}"), "peer started");

    let peer = RunningPeer {
        peer_id,
        http_addr,
        net,
        routing,
        default_scope,
        coordination,
        shutdown,
        tasks,
        index_task,
        net_task,
        _lock: lock,
    };
    // Seeds from the configuration.
    if !config.seed.is_empty() {
        let r = peer.submit(config.seed.clone()).await;
        for rej in &r.rejected {
            warn!(url = %rej.url, reason = %rej.reason, "seed rejected");
        }
    }
    Ok(peer)
}

/// For scripts and tests that ask for port 0: the bound address, written atomically.
async fn write_addr_file(path: &Path, addr: SocketAddr) {
    let path = path.to_path_buf();
    let written = tokio::task::spawn_blocking(move || {
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        std::fs::write(&tmp, addr.to_string())?;
        std::fs::rename(&tmp, &path)
    })
    .await;
    if !matches!(written, Ok(Ok(()))) {
        warn!("cannot write the http address file");
    }
}

/// The components that answer other peers' requests.
struct Responders {
    search: Search,
    routing: Routing,
    replication: Replication,
    claims: Claims,
    docs: Docs,
    /// The shard, for the statistics a `poison_stats` test peer poisons.
    #[cfg(feature = "test-hooks")]
    indexing: indexing::Indexing,
}

/// Answer requests from other peers, each on its own task so a slow one never holds up the
/// rest, until `stop`.
async fn answer_requests(
    r: Responders,
    mut events: mpsc::Receiver<net::Event>,
    stop: CancellationToken,
) {
    let r = Arc::new(r);
    loop {
        let ev = tokio::select! {
            ev = events.recv() => match ev { Some(ev) => ev, None => break },
            _ = stop.cancelled() => break,
        };
        let r = r.clone();
        tokio::spawn(async move {
            match ev {
                net::Event::InboundSearch { request, reply, .. } => {
                    r.search.on_search(request, reply).await
                }
                net::Event::InboundStats { request, reply, .. } => {
                    #[cfg(feature = "test-hooks")]
                    {
                        let hooks = net::hooks::Hooks::from_env();
                        if hooks.poisons_stats() {
                            let q = request.query;
                            let mut stats = r.indexing.term_stats(q).await.unwrap_or_default();
                            hooks.poison_stats(&mut stats);
                            let _ = reply.send(stats);
                            return;
                        }
                    }
                    r.search.on_stats(request, reply).await
                }
                net::Event::InboundHandoff {
                    peer,
                    request,
                    reply,
                } => r.routing.on_handoff(peer, request, reply).await,
                net::Event::InboundReplicate {
                    peer,
                    request,
                    reply,
                } => r.replication.on_replicate(peer, request, reply).await,
                net::Event::InboundDigest { request, reply, .. } => {
                    r.replication.on_digest(request, reply).await
                }
                net::Event::InboundClaim {
                    peer,
                    request,
                    reply,
                } => r.claims.on_claim(peer, request, reply).await,
                net::Event::InboundDoc { request, reply, .. } => {
                    r.docs.on_doc(request, reply).await
                }
                other => debug!(event = ?other, "network event"),
            }
        });
    }
}

impl RunningPeer {
    /// This peer's id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The bound web address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The p2p addresses actually bound, each ending in `/p2p/<peer id>`.
    pub async fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.net.listen_addrs().await.unwrap_or_default()
    }

    /// How many peers this peer believes alive.
    pub async fn live_peer_count(&self) -> usize {
        self.net.live_peers().await.map_or(0, |p| p.len())
    }

    /// Validate seed URLs and route them to their owners, in the peer's default scope.
    pub async fn submit(&self, urls: Vec<String>) -> CrawlResponse {
        self.routing.submit(urls, &self.default_scope).await
    }

    /// [`RunningPeer::submit`] in `scope` (checked here).
    pub async fn submit_scoped(
        &self,
        urls: Vec<String>,
        scope: ScopeSpec,
    ) -> Result<CrawlResponse> {
        let scope = scope.checked()?;
        Ok(self.routing.submit(urls, &scope).await)
    }

    /// Stop: first what moves work between peers (so a stopping peer starts no hand-over and
    /// yields no claim), then the crawl; commit what was fetched, flush the crawl state, stop
    /// the server, and let the network save its known peers.
    pub async fn shutdown(self) {
        let RunningPeer {
            net,
            routing,
            coordination,
            shutdown,
            mut tasks,
            mut index_task,
            net_task,
            ..
        } = self;
        coordination.cancel();
        shutdown.cancel();
        if tokio::time::timeout(INDEX_STOP_TIMEOUT, &mut index_task)
            .await
            .is_err()
        {
            warn!("index loop did not stop in time");
            index_task.abort();
        }
        let deadline = tokio::time::sleep(TASKS_STOP_TIMEOUT);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                next = tasks.join_next() => if next.is_none() { break },
                _ = &mut deadline => { tasks.abort_all(); break }
            }
        }
        // The event loop ends once every network handle is gone.
        drop((net, routing));
        let abort = net_task.abort_handle();
        if tokio::time::timeout(NET_STOP_TIMEOUT, net_task)
            .await
            .is_err()
        {
            debug!("network did not stop in time");
            abort.abort();
        }
        info!("peer stopped");
    }
}
