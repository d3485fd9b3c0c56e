//! Where a URL goes: the one owner decision ([`Placement`]) and the component that acts on it
//! ([`Routing`]): seeds and links are enqueued here when this peer is the site's primary and
//! persisted in the outbox otherwise; the router hands the outbox off to the primaries and
//! takes in their hand-offs (DESIGN.md, "Who crawls what").

use crate::anchors::Anchors;
use crate::error::{Error, Result};
use crate::link::Link;
use crate::net::{self, wire};
use crate::ownership::{self, SiteKey};
use crate::store::{HandoffItem, Outbox};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use libp2p::PeerId;
use peersearch_crawler::{Crawler, NormalizedUrl, Scope, ScopeSpec, Seed};
use peersearch_web::api::{CrawlResponse, Rejected};
use std::collections::HashMap;
use std::future::Future;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// Hops a hand-off may travel before the receiver keeps it whatever it believes (among the
/// site's owners with the slack: a hop count is the sender's word, so a spent budget never
/// makes a peer crawl a site it has nothing to do with).
pub const MAX_HOPS: u8 = 3;
/// URLs one peer may hand this peer per minute, after a burst of [`HANDOFF_BURST`]: far more
/// than an honest crawl hands one peer (its router sends 500 per message and backs off when
/// refused), and a bound on what a flooding peer makes this one store.
pub const HANDOFF_URLS_PER_MINUTE: u32 = 60_000;
/// URLs one peer may hand this peer at once: two full messages.
pub const HANDOFF_BURST: u32 = 2 * MAX_HANDOFF_URLS as u32;
/// Senders the quota remembers before it forgets the ones whose quota is full again.
const QUOTA_KEYS: usize = 4_096;
/// Most URLs accepted from one hand-off message.
pub const MAX_HANDOFF_URLS: usize = 5_000;
/// How often the hand-off router looks at the outbox when nothing woke it.
const ROUTER_EVERY: Duration = Duration::from_millis(500);
/// URLs per hand-off message.
const HANDOFF_BATCH: usize = 500;
/// Outbox rows routed per round.
const ROUTE_READ: usize = 5_000;
/// How long the router leaves a peer alone after a failed hand-off.
const HANDOFF_BACKOFF: Duration = Duration::from_secs(2);

/// Where a URL goes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hop {
    /// This peer crawls it.
    Here,
    /// Hand it off to this peer, the site's primary.
    Forward(PeerId),
}

/// Peers beyond a site's R owners, in the root's view, who still count as its owners
/// (their hits are taken, their replica batches stored): views differ for a while after a peer joins or leaves, and a former owner keeps
/// the documents until the hand-over is done.
pub const OWNER_SLACK: usize = 2;

/// Who owns which site, by one view of the network: this peer and the live peers it knows.
/// Every owner decision of the node is made here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    me: PeerId,
    peers: Vec<PeerId>,
    replication: usize,
}

/// The hand-off quota of each sender: a token bucket of URLs per peer
/// ([`HANDOFF_URLS_PER_MINUTE`], [`HANDOFF_BURST`]).
pub struct HandoffQuota<C: Clock = DefaultClock> {
    limiter: RateLimiter<PeerId, DefaultKeyedStateStore<PeerId>, C, NoOpMiddleware<C::Instant>>,
}

impl HandoffQuota {
    /// The quota on the system clock.
    pub fn new() -> HandoffQuota {
        HandoffQuota::with_clock(DefaultClock::default())
    }
}

impl Default for HandoffQuota {
    fn default() -> Self {
        HandoffQuota::new()
    }
}

impl<C: Clock> HandoffQuota<C> {
    /// The quota on `clock` (tests: a fake one).
    pub fn with_clock(clock: C) -> HandoffQuota<C> {
        let nz = |n: u32| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_minute(nz(HANDOFF_URLS_PER_MINUTE)).allow_burst(nz(HANDOFF_BURST));
        HandoffQuota {
            limiter: RateLimiter::new(quota, DefaultKeyedStateStore::default(), clock),
        }
    }

    /// Take `n` URLs from `peer`'s quota: false (and nothing taken) when it has fewer left.
    pub fn take(&self, peer: &PeerId, n: usize) -> bool {
        if self.limiter.len() > QUOTA_KEYS {
            // Fresh ids are free: forget the senders whose bucket is full again.
            self.limiter.retain_recent();
        }
        let Some(n) = u32::try_from(n).ok().and_then(NonZeroU32::new) else {
            return n == 0;
        };
        matches!(self.limiter.check_key_n(peer, n), Ok(Ok(())))
    }
}

impl Placement {
    /// The placement over `peers` (this peer `me` is always counted) with `replication`
    /// owners per site.
    pub fn new(me: PeerId, peers: Vec<PeerId>, replication: usize) -> Placement {
        Placement {
            me,
            peers,
            replication,
        }
    }

    /// The same view, counting `also` as live: a peer that just sent a request is, even if
    /// this peer has not identified it yet.
    pub fn with_peer(mut self, also: PeerId) -> Placement {
        if also != self.me && !self.peers.contains(&also) {
            self.peers.push(also);
        }
        self
    }

    /// This peer.
    pub fn me(&self) -> PeerId {
        self.me
    }

    /// The live peers of this view (this peer not included).
    pub fn peers(&self) -> &[PeerId] {
        &self.peers
    }

    /// The configured number of owners per site.
    pub fn replication(&self) -> usize {
        self.replication
    }

    /// The `n` peers closest to `site`, closest first.
    pub fn closest(&self, site: &str, n: usize) -> Vec<PeerId> {
        ownership::owners(&SiteKey::of(site), self.me, &self.peers, n)
    }

    /// Whether `peer` owns `site`, counting [`OWNER_SLACK`] peers beyond the R owners.
    pub fn owns_with_slack(&self, site: &str, peer: &PeerId) -> bool {
        self.closest(site, self.replication + OWNER_SLACK)
            .contains(peer)
    }

    /// Whether `me` keeps `link`, handed to it with its hop budget spent: only for a site
    /// it owns with the slack (a hop count is the sender's word).
    pub fn keeps_spent(&self, link: &Link, me: &PeerId) -> bool {
        peersearch_crawler::normalize(&link.url, None)
            .is_ok_and(|u| self.owns_with_slack(&u.site(), me))
    }

    /// The owners of `site`, the primary first.
    pub fn owners(&self, site: &str) -> Vec<PeerId> {
        self.closest(site, self.replication)
    }

    /// The primary of `site` (this peer when it knows no other).
    pub fn primary(&self, site: &str) -> PeerId {
        self.closest(site, 1).first().copied().unwrap_or(self.me)
    }

    /// Whether this peer is the primary of `site`.
    pub fn is_primary(&self, site: &str) -> bool {
        self.primary(site) == self.me
    }

    /// Whether this peer is one of the owners of `site`.
    pub fn is_owner(&self, site: &str) -> bool {
        self.owners(site).contains(&self.me)
    }

    /// The hop rule, written once: a URL that travelled `hops` times goes to the site's
    /// primary, unless this peer is the primary or the hop budget is spent (then it stays).
    pub fn hop(&self, site: &str, hops: u8) -> Hop {
        let primary = self.primary(site);
        if primary == self.me || hops >= MAX_HOPS {
            Hop::Here
        } else {
            Hop::Forward(primary)
        }
    }
}

/// Somewhere links can be stored durably: routed to the crawler or to the outbox.
pub trait LinkStore: Send + Sync {
    /// Store `links` (found at hop 0); `Ok` once they are enqueued or persisted.
    fn store_links(&self, links: Vec<Link>) -> impl Future<Output = Result<()>> + Send;
}

/// The routing component: a cloneable handle.
#[derive(Clone)]
pub struct Routing {
    inner: Arc<Inner>,
}

struct Inner {
    me: PeerId,
    replication: usize,
    allow_private_addresses: bool,
    net: net::Client,
    crawler: Crawler,
    outbox: Outbox,
    anchors: Anchors,
    wake: Notify,
    quota: HandoffQuota,
}

impl std::fmt::Debug for Routing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Routing").finish_non_exhaustive()
    }
}

impl LinkStore for Routing {
    async fn store_links(&self, links: Vec<Link>) -> Result<()> {
        self.route(
            links
                .into_iter()
                .map(|link| HandoffItem { link, hops: 0 })
                .collect(),
        )
        .await
    }
}

impl Routing {
    /// The routing of peer `net.local_peer_id()`, over its crawler and outbox.
    pub fn new(
        net: net::Client,
        crawler: Crawler,
        outbox: Outbox,
        anchors: Anchors,
        replication: usize,
        allow_private_addresses: bool,
    ) -> Routing {
        Routing {
            inner: Arc::new(Inner {
                me: net.local_peer_id(),
                replication,
                allow_private_addresses,
                net,
                crawler,
                outbox,
                anchors,
                wake: Notify::new(),
                quota: HandoffQuota::new(),
            }),
        }
    }

    /// The placement by this peer's current view of the network.
    pub async fn placement(&self) -> Placement {
        let peers = self.inner.net.live_peers().await.unwrap_or_default();
        Placement::new(self.inner.me, peers, self.inner.replication)
    }

    /// How many URLs wait in the outbox.
    pub async fn outbox_len(&self) -> u64 {
        self.inner.outbox.len().await.unwrap_or(0)
    }

    /// Validate seeds, then route them to their owners, each with its scope from `scope`
    /// (checked by the caller).
    pub async fn submit(&self, urls: Vec<String>, scope: &ScopeSpec) -> CrawlResponse {
        #[cfg(feature = "test-hooks")]
        crate::net::hooks::Hooks::from_env().note_seeds(&urls);
        let mut resp = CrawlResponse::default();
        let mut items = Vec::new();
        let mut accepted_raw = Vec::new();
        for raw in urls {
            match peersearch_crawler::normalize(raw.trim(), None) {
                Ok(u) => {
                    if let Some(reason) = self.refusal(&u) {
                        resp.rejected.push(Rejected { url: raw, reason });
                        continue;
                    }
                    // The seed's own site can take a scope over its bounds.
                    let seed_scope = match scope.for_seed(&u).map(Scope::checked).transpose() {
                        Ok(s) => s,
                        Err(e) => {
                            resp.rejected.push(Rejected {
                                url: raw,
                                reason: e.to_string(),
                            });
                            continue;
                        }
                    };
                    items.push(HandoffItem {
                        link: Link {
                            url: u.to_string(),
                            depth: 0,
                            anchor: None,
                            source: None,
                            scope: seed_scope,
                        },
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
    /// Why `u` is refused, if it is.
    fn refusal(&self, u: &NormalizedUrl) -> Option<String> {
        if self.inner.allow_private_addresses {
            return None;
        }
        let ip: std::net::IpAddr = match u.as_url().host() {
            Some(url::Host::Ipv4(ip)) => ip.into(),
            Some(url::Host::Ipv6(ip)) => ip.into(),
            _ => return None,
        };
        peersearch_crawler::forbidden_reason(ip).map(|why| {
            format!(
                "{why} address refused (start the peer with --allow-private-addresses to allow it)"
            )
        })
    }

    /// Enqueue items whose site this peer crawls; persist the rest in the outbox for the
    /// router to hand off.
    pub async fn route(&self, items: Vec<HandoffItem>) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let placement = self.placement().await;
        let mut local = Vec::new();
        let mut votes = Vec::new();
        let mut remote = Vec::new();
        for it in items {
            let Some(seed) = it.link.to_seed() else {
                continue;
            };
            match placement.hop(&seed.url.site(), it.hops) {
                Hop::Here => {
                    votes.extend(it.link.incoming());
                    local.push(seed);
                }
                Hop::Forward(_) => remote.push(it),
            }
        }
        // The anchors first: a link is enqueued only once its vote is counted.
        self.inner.anchors.record(votes).await?;
        if !local.is_empty() {
            self.inner.crawler.enqueue(local).await?;
        }
        if !remote.is_empty() {
            self.inner.outbox.push(remote).await?;
            self.inner.wake.notify_one();
        }
        Ok(())
    }

    /// Take in a hand-off from `from`: within its quota, persist it, then acknowledge (the
    /// router enqueues or forwards it). Over the quota it is refused as busy, and an honest
    /// sender retries after its back-off. URLs whose hop budget is spent are kept only for
    /// the sites this peer owns (with the slack); the others are dropped.
    pub async fn on_handoff(
        &self,
        from: PeerId,
        request: wire::HandoffRequest,
        reply: net::Responder<wire::HandoffResponse>,
    ) {
        let offered = request.urls.len().min(MAX_HANDOFF_URLS);
        if !self.inner.quota.take(&from, offered) {
            debug!(peer = %from, urls = offered, "hand-off over the sender's quota; refused");
            let _ = reply.fail("busy: over this peer's hand-off quota, retry later");
            return;
        }
        let hops = request.hops.saturating_add(1);
        let spent = if hops >= MAX_HOPS {
            Some(self.placement().await)
        } else {
            None
        };
        let me = self.inner.me;
        let items: Vec<HandoffItem> = request
            .urls
            .into_iter()
            .take(MAX_HANDOFF_URLS)
            .filter(|link| spent.as_ref().is_none_or(|p| p.keeps_spent(link, &me)))
            .map(|link| HandoffItem { link, hops })
            .collect();
        if items.len() < offered {
            debug!(
                peer = %from,
                dropped = offered - items.len(),
                "hand-off URLs past their hops for sites this peer does not own; dropped"
            );
        }
        let n = items.len() as u32;
        match self.inner.outbox.push(items).await {
            Ok(()) => {
                self.inner.wake.notify_one();
                let _ = reply.send(wire::HandoffResponse { accepted: n });
            }
            Err(e) => {
                warn!(error = %e, "cannot persist a hand-off; not acknowledged");
                let _ = reply.fail(Error::from(e).to_string());
            }
        }
    }

    /// The router: route what waits in the outbox (enqueue locally or hand off to the
    /// primary, retrying until acknowledged) until `shutdown`.
    pub async fn run_router(self, shutdown: CancellationToken) {
        let mut backoff: HashMap<PeerId, Instant> = HashMap::new();
        loop {
            tokio::select! {
                _ = self.inner.wake.notified() => {}
                _ = tokio::time::sleep(ROUTER_EVERY) => {}
                _ = shutdown.cancelled() => return,
            }
            if let Err(e) = self.route_outbox(&mut backoff).await {
                debug!(error = %e, "routing the outbox failed; will retry");
            }
        }
    }

    async fn route_outbox(&self, backoff: &mut HashMap<PeerId, Instant>) -> Result<()> {
        let items = self.inner.outbox.peek(ROUTE_READ).await?;
        if items.is_empty() {
            return Ok(());
        }
        let placement = self.placement().await;
        let mut local: Vec<(u64, Seed)> = Vec::new();
        let mut votes = Vec::new();
        let mut remote: HashMap<PeerId, Vec<(u64, HandoffItem)>> = HashMap::new();
        let mut done: Vec<u64> = Vec::new();
        for (seq, it) in items {
            let Some(seed) = it.link.to_seed() else {
                done.push(seq);
                continue;
            };
            match placement.hop(&seed.url.site(), it.hops) {
                Hop::Here => {
                    votes.extend(it.link.incoming());
                    local.push((seq, seed));
                }
                Hop::Forward(p) => remote.entry(p).or_default().push((seq, it)),
            }
        }
        // Counting a vote twice changes nothing, so a failure after this is retried whole.
        if !local.is_empty() && self.inner.anchors.record(votes).await.is_ok() {
            let (seqs, seeds): (Vec<u64>, Vec<Seed>) = local.into_iter().unzip();
            if self.inner.crawler.enqueue(seeds).await.is_ok() {
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
                    urls: chunk.iter().map(|(_, it)| it.link.clone()).collect(),
                    hops: chunk.iter().map(|(_, it)| it.hops).max().unwrap_or(0),
                };
                match self.inner.net.handoff(peer, req).await {
                    Ok(_) => done.extend(chunk.iter().map(|(s, _)| *s)),
                    Err(e) => {
                        debug!(peer = %peer, error = %e, "hand-off failed; will retry");
                        backoff.insert(peer, now + HANDOFF_BACKOFF);
                        break;
                    }
                }
            }
        }
        self.inner.outbox.remove(done).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sender_past_its_hand_off_quota_is_refused_until_it_refills() {
        let clock = governor::clock::FakeRelativeClock::default();
        let quota = HandoffQuota::with_clock(clock.clone());
        let (flooder, honest) = (PeerId::random(), PeerId::random());
        let full = MAX_HANDOFF_URLS;
        assert!(quota.take(&flooder, full));
        assert!(quota.take(&flooder, full), "the burst is two full messages");
        assert!(!quota.take(&flooder, full), "over the burst");
        assert!(!quota.take(&flooder, 500), "still over");
        assert!(quota.take(&honest, 500), "another sender has its own quota");
        assert!(quota.take(&flooder, 0), "an empty hand-off costs nothing");
        // The bucket refills at the rate: 1 000 URLs a second.
        clock.advance(Duration::from_secs(1));
        assert!(quota.take(&flooder, 1_000));
        assert!(!quota.take(&flooder, 1_000));
        clock.advance(Duration::from_secs(60));
        assert!(quota.take(&flooder, full));
        assert!(
            !quota.take(&flooder, usize::MAX),
            "more than any bucket holds"
        );
    }

    #[test]
    fn owning_with_the_slack_counts_r_plus_two_peers() {
        let all = peers(8);
        let me = all[0];
        let p = Placement::new(me, all[1..].to_vec(), 2);
        let site = "a.example";
        let order = p.closest(site, 8);
        for (i, peer) in order.iter().enumerate() {
            assert_eq!(
                p.owns_with_slack(site, peer),
                i < 2 + OWNER_SLACK,
                "place {i}"
            );
        }
        // A link past its hops is kept only by an owner with the slack.
        let link = Link {
            url: format!("http://{site}/x"),
            depth: 1,
            anchor: None,
            source: None,
            scope: None,
        };
        let far = order[7];
        let near = order[3];
        let from = |me: PeerId| {
            let others = all.iter().copied().filter(|q| *q != me).collect();
            Placement::new(me, others, 2)
        };
        assert!(from(near).keeps_spent(&link, &near));
        assert!(!from(far).keeps_spent(&link, &far));
        let bad = Link {
            url: "not a url".into(),
            ..link
        };
        assert!(!from(near).keeps_spent(&bad, &near));
    }

    fn peers(n: usize) -> Vec<PeerId> {
        (0..n).map(|_| PeerId::random()).collect()
    }

    /// A site whose primary, among `all`, is not `me`.
    fn site_owned_by_other(me: PeerId, all: &[PeerId]) -> String {
        (0..)
            .map(|i| format!("site{i}.example"))
            .find(|s| ownership::owners(&SiteKey::of(s), me, all, 1)[0] != me)
            .unwrap()
    }

    #[test]
    fn the_primary_keeps_a_url_and_others_forward_it_to_the_primary() {
        let all = peers(5);
        let me = all[0];
        let p = Placement::new(me, all[1..].to_vec(), 3);
        let site = site_owned_by_other(me, &all);
        let primary = p.primary(&site);
        assert_ne!(primary, me);
        assert!(!p.is_primary(&site));
        assert_eq!(p.hop(&site, 0), Hop::Forward(primary));
        assert_eq!(p.hop(&site, MAX_HOPS - 1), Hop::Forward(primary));
        assert_eq!(p.hop(&site, MAX_HOPS), Hop::Here, "the hop budget is spent");
        let theirs = Placement::new(
            primary,
            all.iter().copied().filter(|x| *x != primary).collect(),
            3,
        );
        assert!(theirs.is_primary(&site));
        assert_eq!(theirs.hop(&site, 0), Hop::Here);
    }

    #[test]
    fn owners_start_with_the_primary_and_ownership_matches_them() {
        let all = peers(6);
        let p = Placement::new(all[0], all[1..].to_vec(), 3);
        for i in 0..20 {
            let site = format!("s{i}.example");
            let owners = p.owners(&site);
            assert_eq!(owners.len(), 3);
            assert_eq!(owners[0], p.primary(&site));
            assert_eq!(p.is_owner(&site), owners.contains(&all[0]));
            assert_eq!(p.is_primary(&site), owners[0] == all[0]);
        }
    }

    #[test]
    fn a_lone_peer_is_primary_of_everything_and_a_new_sender_counts() {
        let me = PeerId::random();
        let p = Placement::new(me, Vec::new(), 3);
        assert!(p.is_primary("a.example"));
        assert_eq!(p.owners("a.example"), vec![me]);
        let other = PeerId::random();
        let p = p.with_peer(other).with_peer(other).with_peer(me);
        assert_eq!(p.peers(), &[other], "no duplicates, never itself");
        assert_eq!(p.owners("a.example").len(), 2);
    }
}
