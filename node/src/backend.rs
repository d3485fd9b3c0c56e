//! The web layer's [`Backend`], over the node's components.

use crate::docs::Docs;
use crate::error::Error;
use crate::indexing::Indexing;
use crate::net;
use crate::routing::Routing;
use crate::search::Search;
use crate::telemetry::History;
use peersearch_crawler::{Crawler, Scope, ScopeSpec};
use peersearch_web::api::{
    Activity, Backend, BackendError, CrawlErrorEntry, CrawlResponse, CrawlScope, DocParams,
    DocResponse, MetricsSnapshot, PeerInfo, SearchParams, SearchResponse, StatusResponse,
};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Instant;
use tracing::debug;

/// What the web layer sees of a peer.
#[derive(Debug)]
pub struct NodeBackend {
    pub(crate) http_addr: SocketAddr,
    pub(crate) started: Instant,
    pub(crate) net: net::Client,
    pub(crate) crawler: Crawler,
    pub(crate) indexing: Indexing,
    pub(crate) routing: Routing,
    pub(crate) search: Search,
    pub(crate) history: History,
    pub(crate) docs: Docs,
    pub(crate) default_scope: ScopeSpec,
}

/// The API's error for a failed search: a query without terms is the caller's fault,
/// anything else is ours.
fn search_error(e: Error) -> BackendError {
    match e {
        Error::Index(peersearch_indexer::Error::EmptyQuery) => {
            BackendError::BadQuery("the query has no searchable terms".into())
        }
        other => {
            debug!(error = %other, "search failed");
            BackendError::Internal(other.to_string())
        }
    }
}

impl NodeBackend {
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
}

impl Backend for NodeBackend {
    async fn search(&self, p: SearchParams) -> Result<SearchResponse, BackendError> {
        self.search.search(p).await.map_err(search_error)
    }

    async fn submit_urls(
        &self,
        urls: Vec<String>,
        scope: Option<CrawlScope>,
    ) -> Result<CrawlResponse, BackendError> {
        let scope = match scope {
            None => self.default_scope.clone(),
            Some(s) => ScopeSpec {
                site: s.site,
                scope: Scope {
                    hosts: s.hosts,
                    prefixes: s.prefixes,
                    deny: s.deny,
                    max_depth: s.max_depth,
                },
            }
            .checked()
            .map_err(|e| match e {
                peersearch_crawler::Error::BadScope(m) => BackendError::BadScope(m),
                other => BackendError::BadScope(other.to_string()),
            })?,
        };
        Ok(self.routing.submit(urls, &scope).await)
    }

    async fn status(&self) -> StatusResponse {
        let st = self.crawler.stats();
        let outbox = self.routing.outbox_len().await;
        StatusResponse {
            peer_id: self.net.local_peer_id().to_string(),
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
            docs_indexed: self.indexing.num_docs(),
            frontier_size: st.frontier_size + outbox,
            crawl_in_flight: st.in_flight,
            pages_crawled: st.pages_crawled,
            pages_failed: st.pages_failed,
            revisits_due: st.revisits_due,
            pages_revisited: st.pages_revisited,
            pages_changed: st.pages_changed,
            pages_unchanged: st.pages_unchanged,
            pages_removed: st.pages_removed,
            index_commits: self.indexing.commits(),
            rss_bytes: crate::telemetry::resident_bytes().await.unwrap_or(0),
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
            history: self.history.points(),
            recent_errors,
        }
    }

    async fn document(&self, params: DocParams) -> Result<Option<DocResponse>, BackendError> {
        self.docs.lookup(params).await.map_err(|e| {
            debug!(error = %e, "document look-up failed");
            BackendError::Internal(e.to_string())
        })
    }

    async fn metrics(&self) -> MetricsSnapshot {
        let st = self.crawler.stats();
        let mut bytes_sent = BTreeMap::new();
        let mut bytes_received = BTreeMap::new();
        for (proto, (sent, recv)) in self.net.traffic() {
            bytes_sent.insert(proto.clone(), sent);
            bytes_received.insert(proto, recv);
        }
        let mut crawl_outcomes = st.outcomes.clone();
        crawl_outcomes.insert("replica_received".into(), self.indexing.replicated_docs());
        MetricsSnapshot {
            crawl_outcomes,
            docs_indexed: self.indexing.num_docs(),
            index_bytes: self.indexing.size_bytes().await,
            frontier_size: st.frontier_size,
            revisits_due: st.revisits_due,
            revisits: [
                ("all", st.pages_revisited),
                ("changed", st.pages_changed),
                ("unchanged", st.pages_unchanged),
                ("removed", st.pages_removed),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
            rss_bytes: crate::telemetry::resident_bytes().await.unwrap_or(0),
            query_rounds: self
                .search
                .queries_by_rounds()
                .iter()
                .enumerate()
                .map(|(rounds, n)| (rounds.to_string(), *n))
                .collect(),
            peers_connected: self.connected_peers().await,
            bytes_sent,
            bytes_received,
        }
    }
}
