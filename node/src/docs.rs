//! Document look-ups: what the network holds for one URL (`GET /api/doc`, the cached-text
//! page). The document lives on the owners of its site ([`Placement::owners`]) and may linger
//! on a former owner: this peer looks in its own shard and asks the site's closest peers over
//! `/peersearch/doc/1.0.0`, all by one deadline, and answers with the newest copy (the
//! primary's on a tie) and every peer that answered with one.
//!
//! Answers are not taken on trust: the event loop checks their sizes
//! ([`wire::validate_doc_answer`]) and the client that the document is the one asked for
//! ([`net::Client::doc`]); a peer that fails either is skipped (and counts as failed).

use std::time::{Duration, Instant};

use futures::future::join_all;
use libp2p::PeerId;
use peersearch_indexer::Document;
use peersearch_web::api::{DocParams, DocResponse, PeerCounts, Scope};
use tracing::debug;

use crate::error::Result;
use crate::indexing::Indexing;
use crate::net::{self, wire};
use crate::routing::{Placement, Routing};

/// How many of a site's closest peers are asked, as a multiple of the replication factor:
/// the owners, and as many again, where a former owner's copy may linger after a join.
const ASK_FACTOR: usize = 2;
/// Most peers one look-up asks.
const MAX_ASKED: usize = 16;

/// The document component: a cloneable handle.
#[derive(Clone)]
pub struct Docs {
    net: net::Client,
    indexing: Indexing,
    routing: Routing,
}

impl std::fmt::Debug for Docs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Docs").finish_non_exhaustive()
    }
}

/// One copy and who holds it.
#[derive(Debug, Clone)]
struct Held {
    peer: PeerId,
    doc: Document,
}

/// The URL a look-up asks for and its site: the crawler's normalized form (what the index
/// keys on), or the URL as given when it does not normalize (nothing can be indexed under it
/// then, so the look-up finds nothing).
fn lookup_key(url: &str) -> (String, String) {
    match peersearch_crawler::normalize(url, None) {
        Ok(u) => (u.as_str().to_owned(), u.site()),
        Err(_) => {
            let site = url::Url::parse(url)
                .map(|u| peersearch_crawler::site_of(&u))
                .unwrap_or_default();
            (url.to_owned(), site)
        }
    }
}

/// The peers to ask for a document of `site`, closest first, this peer left out.
fn peers_to_ask(placement: &Placement, site: &str) -> Vec<PeerId> {
    let n = (placement.replication() * ASK_FACTOR).clamp(1, MAX_ASKED);
    placement
        .closest(site, n + 1)
        .into_iter()
        .filter(|p| *p != placement.me())
        .take(n)
        .collect()
}

/// The answer from the copies found, in the order of `rank` (the site's closest peers,
/// the primary first): the newest `fetched_at` wins, the earlier-ranked holder on a tie.
fn choose(mut copies: Vec<Held>, rank: &[PeerId], counts: PeerCounts) -> Option<DocResponse> {
    let pos = |p: &PeerId| rank.iter().position(|r| r == p).unwrap_or(usize::MAX);
    copies.sort_by_key(|c| pos(&c.peer));
    let holders = copies.iter().map(|c| c.peer.to_string()).collect();
    let best = copies
        .iter()
        .enumerate()
        .max_by_key(|(i, c)| (c.doc.fetched_at, std::cmp::Reverse(*i)))
        .map(|(_, c)| c.clone())?;
    let d = best.doc;
    Some(
        DocResponse {
            url: d.url,
            site: d.site,
            title: d.title,
            description: d.description,
            text: d.body,
            headings: d.headings,
            anchor_text: d.anchor_text,
            inlink_sites: d.inlink_sites,
            inlink_pages: d.inlink_pages,
            lang: d.lang,
            fetched_at: d.fetched_at,
            content_hash: d.content_hash,
            holders,
            peer: best.peer.to_string(),
            partial: counts.failed > 0,
            peers: counts,
            truncated: false,
            took_ms: 0,
        }
        .capped(),
    )
}

impl Docs {
    /// Look-ups over the local shard (`indexing`) and the site's peers (`net`, `routing`).
    pub fn new(net: net::Client, indexing: Indexing, routing: Routing) -> Docs {
        Docs {
            net,
            indexing,
            routing,
        }
    }

    /// This peer's copy of `url`, if any.
    async fn local(&self, url: &str) -> Result<Option<Document>> {
        Ok(self
            .indexing
            .docs(vec![url.to_owned()])
            .await?
            .into_iter()
            .find(|d| d.url == url))
    }

    /// What the network (or this peer, with `scope=local`) holds for `params.url`; `None`
    /// when no peer asked holds it. Returns by `params.timeout_ms` whatever happens.
    pub async fn lookup(&self, params: DocParams) -> Result<Option<DocResponse>> {
        let started = Instant::now();
        let deadline = Duration::from_millis(params.timeout_ms);
        let (url, site) = lookup_key(&params.url);
        let me = self.net.local_peer_id();
        let (asked, rank) = match params.scope {
            Scope::Local => (Vec::new(), vec![me]),
            Scope::Network => {
                let placement = self.routing.placement().await;
                let asked = peers_to_ask(&placement, &site);
                let mut rank = placement.closest(&site, asked.len() + 1);
                if !rank.contains(&me) {
                    rank.push(me);
                }
                (asked, rank)
            }
        };
        let remaining = deadline.saturating_sub(started.elapsed());
        let ask = |peer: PeerId| {
            let request = wire::DocRequest { url: url.clone() };
            async move { (peer, self.net.doc(peer, request, remaining).await) }
        };
        let local = tokio::time::timeout(remaining, self.local(&url));
        let (local, answers) = tokio::join!(local, join_all(asked.iter().copied().map(ask)));
        let mut copies = Vec::new();
        let mut counts = PeerCounts {
            queried: asked.len() + 1,
            ..PeerCounts::default()
        };
        match local {
            Ok(Ok(doc)) => {
                counts.answered += 1;
                copies.extend(doc.map(|doc| Held { peer: me, doc }));
            }
            Ok(Err(e)) => {
                debug!(error = %e, "local document look-up failed");
                counts.failed += 1;
            }
            Err(_) => counts.failed += 1,
        }
        for (peer, answer) in answers {
            match answer {
                Ok(resp) => {
                    counts.answered += 1;
                    copies.extend(resp.doc.map(|doc| Held { peer, doc }));
                }
                Err(e) => {
                    debug!(%peer, error = %e, "document look-up failed");
                    counts.failed += 1;
                }
            }
        }
        Ok(choose(copies, &rank, counts).map(|mut d| {
            d.took_ms = started.elapsed().as_millis() as u64;
            d
        }))
    }

    /// Answer another peer's look-up from the local shard (no copy when the shard fails;
    /// the asker counts what the others sent).
    pub async fn on_doc(
        &self,
        request: wire::DocRequest,
        reply: net::Responder<wire::DocResponse>,
    ) {
        #[cfg(feature = "test-hooks")]
        if let Some(forged) = crate::net::hooks::Hooks::from_env().doc_answer() {
            let _ = reply.send(forged);
            return;
        }
        let doc = match self.local(&request.url).await {
            Ok(doc) => doc,
            Err(e) => {
                debug!(error = %e, "document look-up failed");
                let _ = reply.fail("document look-up failed");
                return;
            }
        };
        let _ = reply.send(wire::DocResponse { doc });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(peer: PeerId, fetched_at: i64, title: &str) -> Held {
        Held {
            peer,
            doc: Document {
                url: "http://a.example/".into(),
                title: title.into(),
                fetched_at,
                ..Document::default()
            },
        }
    }

    #[test]
    fn the_newest_copy_wins_and_the_primary_breaks_ties() {
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        let rank = [a, b, c];
        let counts = PeerCounts::default();
        let same = choose(
            vec![copy(c, 5, "c"), copy(a, 5, "a"), copy(b, 5, "b")],
            &rank,
            counts,
        )
        .unwrap();
        assert_eq!(same.title, "a");
        assert_eq!(same.peer, a.to_string());
        assert_eq!(
            same.holders,
            vec![a.to_string(), b.to_string(), c.to_string()]
        );
        let newer = choose(vec![copy(a, 5, "a"), copy(c, 9, "c")], &rank, counts).unwrap();
        assert_eq!(newer.title, "c");
        assert_eq!(newer.holders, vec![a.to_string(), c.to_string()]);
        assert!(choose(Vec::new(), &rank, counts).is_none());
    }

    #[test]
    fn look_ups_ask_the_closest_peers_but_not_this_one() {
        let me = PeerId::random();
        let peers: Vec<PeerId> = (0..10).map(|_| PeerId::random()).collect();
        let placement = Placement::new(me, peers, 3);
        let asked = peers_to_ask(&placement, "a.example");
        assert_eq!(asked.len(), 6);
        assert!(!asked.contains(&me));
        for owner in placement.owners("a.example") {
            assert!(
                owner == me || asked.contains(&owner),
                "every owner is asked"
            );
        }
    }
}
