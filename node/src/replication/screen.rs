//! What a replica batch may carry, by who sent it (issue: "replication only from owners").
//!
//! A batch is taken only when its sender and this peer both own its site in this peer's view,
//! counting [`OWNER_SLACK`](crate::routing::OWNER_SLACK) peers beyond the R owners (views differ for a while after a peer
//! joins or leaves, and a former owner pushes its documents to the new owners before it drops
//! them). Within a taken batch:
//! - every document must be of the batch's site (its URL says so, not its `site` field), its
//!   `fetched_at` is clamped to now (a far-future fetch would win every digest comparison and
//!   spread by repair), and its content hash is computed here from its title and text;
//! - deletes and crawled URLs (marked done, never fetched here) come only from the site's
//!   primary;
//! - a crawl state's done URLs come only from an owner; its queued URLs only add pages to
//!   crawl, so they are taken from any peer that hands a site's crawl to this peer as its
//!   primary (a peer whose frontier held the site), and parked states only from owners.
//!
//! A document of another site, or a fetch time more than [`FETCH_SKEW_SECS`] ahead, cannot
//! come from an honest peer (batches are built per site, from fetches already made), so it
//! counts as misbehaviour, in a refused batch too; a batch refused for ownership alone does
//! not (views differ).

use crate::net::wire;
use crate::routing::Placement;
use libp2p::PeerId;
use peersearch_crawler::SiteState;

/// The verdict on one batch.
#[derive(Debug)]
pub(super) enum Screened {
    /// Take this (what was left of the batch).
    Take {
        request: Box<wire::ReplicateRequest>,
        /// Whether the batch held something no honest peer sends.
        forged: bool,
    },
    /// Refuse the whole batch, for this reason.
    Refuse {
        why: String,
        /// Whether the batch held something no honest peer sends.
        forged: bool,
    },
}

/// How far in the future a fetch time may lie before it is a forgery rather than a clock
/// that is off (a fetch time past now is clamped to now either way).
pub(super) const FETCH_SKEW_SECS: i64 = 86_400;

/// Whether `peer` owns `site` in `placement`, with the slack.
fn owns(placement: &Placement, site: &str, peer: &PeerId) -> bool {
    placement.owns_with_slack(site, peer)
}

/// Screen `request` from `from` in `placement` (this peer's view, `from` counted live), at
/// unix time `now`.
pub(super) fn screen(
    mut request: wire::ReplicateRequest,
    from: PeerId,
    placement: &Placement,
    now: i64,
) -> Screened {
    let site = request.site.clone();
    if site.is_empty() {
        return Screened::Refuse {
            why: "a replica batch names no site".into(),
            forged: true,
        };
    }
    let of_site =
        |url: &str| peersearch_crawler::normalize(url, None).is_ok_and(|u| u.site() == site);
    // Honest peers build batches per site, from fetches made before now.
    let future = |t: i64| t > now.saturating_add(FETCH_SKEW_SECS);
    let mut forged = request
        .docs
        .iter()
        .any(|d| !of_site(&d.url) || future(d.fetched_at))
        || request
            .site_state
            .as_ref()
            .is_some_and(|st| st.done.iter().any(|d| future(d.fetched_at)))
        || request
            .tombstones
            .iter()
            .any(|(u, at)| !of_site(u) || future(*at));
    let me = placement.me();
    let sender_owns = owns(placement, &site, &from);
    let i_own = owns(placement, &site, &me);
    let i_am_primary = placement.is_primary(&site);
    let sender_is_primary = placement.primary(&site) == from;
    let only_state = request.docs.is_empty()
        && request.deletes.is_empty()
        && request.tombstones.is_empty()
        && request.crawled.is_empty()
        && request.links.is_empty()
        && request.anchors.is_empty();
    // A crawl handed to this peer as the site's primary may come from any peer that had
    // the site in its frontier; everything else needs both ends to own the site.
    let handover = only_state && request.site_state.is_some() && i_am_primary;
    let taken = handover || (sender_owns && i_own);
    if !taken {
        return Screened::Refuse {
            why: format!(
                "not taken: {} own {site} in this peer's view",
                match (sender_owns, i_own) {
                    (false, false) => "neither the sender nor this peer",
                    (false, true) => "the sender does not",
                    _ => "this peer does not",
                }
            ),
            forged,
        };
    }

    let before = request.docs.len();
    request.docs.retain(|d| of_site(&d.url));
    forged |= request.docs.len() < before;
    for d in &mut request.docs {
        d.site = site.clone();
        d.fetched_at = d.fetched_at.clamp(0, now);
        d.content_hash = peersearch_crawler::content_hash(&d.title, &d.body);
    }
    if sender_is_primary {
        request.deletes.retain(|u| of_site(u));
        request.crawled.retain(|u| of_site(u));
    } else {
        request.deletes.clear();
        request.crawled.clear();
    }
    request.anchors.retain(|(u, _)| of_site(u));
    // From any owner: intake applies the primary's and checks the others'.
    request.tombstones.retain(|(u, _)| of_site(u));
    for (_, at) in &mut request.tombstones {
        *at = (*at).clamp(0, now);
    }
    if let Some(state) = request.site_state.as_mut() {
        screen_state(state, &site, sender_owns, now);
    }
    Screened::Take {
        request: Box::new(request),
        forged,
    }
}

/// Keep of a shared crawl state what its sender may say: the batch's site only; done URLs
/// only from an owner, with fetch times clamped to now.
fn screen_state(state: &mut SiteState, site: &str, sender_owns: bool, now: i64) {
    state.site = site.to_string();
    state.queued.retain(|q| q.url.site() == site);
    if sender_owns {
        state.done.retain(|d| d.url.site() == site);
        for d in &mut state.done {
            d.fetched_at = d.fetched_at.clamp(0, now);
        }
    } else {
        state.done.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peersearch_crawler::{DoneUrl, QueuedUrl, normalize};
    use peersearch_indexer::Document;

    const NOW: i64 = 1_800_000_000;

    fn peers(n: usize) -> Vec<PeerId> {
        (0..n).map(|_| PeerId::random()).collect()
    }

    /// A network of 8 peers at R=2 and a site: its owners in order, and the peers far from
    /// it (beyond the slack).
    struct Net {
        all: Vec<PeerId>,
        site: String,
    }

    impl Net {
        fn new() -> Net {
            Net {
                all: peers(8),
                site: "example.org".into(),
            }
        }
        /// The view of `me`.
        fn view(&self, me: PeerId) -> Placement {
            let others = self.all.iter().copied().filter(|p| *p != me).collect();
            Placement::new(me, others, 2)
        }
        fn ranked(&self) -> Vec<PeerId> {
            self.view(self.all[0]).closest(&self.site, self.all.len())
        }
    }

    fn doc(url: &str, fetched_at: i64) -> Document {
        Document {
            url: url.into(),
            site: "example.org".into(),
            title: "A page".into(),
            body: "its text".into(),
            fetched_at,
            content_hash: "forged".into(),
            ..Document::default()
        }
    }

    fn batch(site: &str) -> wire::ReplicateRequest {
        wire::ReplicateRequest {
            site: site.into(),
            docs: vec![doc("http://example.org/a", NOW - 10)],
            deletes: vec!["http://example.org/b".into()],
            crawled: vec!["http://example.org/c".into()],
            ..Default::default()
        }
    }

    fn take(s: Screened) -> (wire::ReplicateRequest, bool) {
        match s {
            Screened::Take { request, forged } => (*request, forged),
            Screened::Refuse { why, .. } => panic!("refused: {why}"),
        }
    }

    #[test]
    fn the_primary_to_an_owner_is_taken_whole_with_a_true_content_hash() {
        let net = Net::new();
        let r = net.ranked();
        let (req, forged) = take(screen(batch(&net.site), r[0], &net.view(r[1]), NOW));
        assert!(!forged);
        assert_eq!(req.docs.len(), 1);
        assert_eq!(
            req.docs[0].content_hash,
            peersearch_crawler::content_hash("A page", "its text")
        );
        assert_eq!(req.deletes.len(), 1, "deletes from the primary");
        assert_eq!(req.crawled.len(), 1, "crawled URLs from the primary");
    }

    #[test]
    fn a_peer_far_from_the_site_cannot_replicate_it() {
        let net = Net::new();
        let r = net.ranked();
        let far = *r.last().unwrap();
        match screen(batch(&net.site), far, &net.view(r[1]), NOW) {
            Screened::Refuse { why, forged } => {
                assert!(why.contains("the sender does not"), "{why}");
                assert!(!forged, "a stale view is no forgery");
            }
            other => panic!("taken: {other:?}"),
        }
        // Nor can an owner fill the disk of a peer that does not own the site.
        match screen(batch(&net.site), r[0], &net.view(far), NOW) {
            Screened::Refuse { why, .. } => assert!(why.contains("this peer does not"), "{why}"),
            other => panic!("taken: {other:?}"),
        }
    }

    #[test]
    fn a_former_owner_within_the_slack_still_hands_its_documents_over() {
        let net = Net::new();
        let r = net.ranked();
        // r[3]: the last place the slack covers at R=2 (R + 2 peers: r[0..4]).
        let (req, _) = take(screen(batch(&net.site), r[3], &net.view(r[0]), NOW));
        assert_eq!(req.docs.len(), 1, "documents from a former owner are kept");
        assert!(
            req.deletes.is_empty() && req.crawled.is_empty(),
            "but only the primary deletes or marks URLs crawled"
        );
    }

    #[test]
    fn tombstones_keep_to_their_site_and_never_lie_in_the_future() {
        let net = Net::new();
        let r = net.ranked();
        let mut req = batch(&net.site);
        req.tombstones = vec![
            ("http://example.org/gone".into(), NOW - 5),
            ("http://example.org/soon".into(), NOW + 60),
        ];
        // From another owner too (intake decides what to do with them).
        let (taken, forged) = take(screen(req.clone(), r[1], &net.view(r[0]), NOW));
        assert!(!forged, "a minute of clock skew is no forgery");
        assert_eq!(
            taken.tombstones,
            [
                ("http://example.org/gone".to_string(), NOW - 5),
                ("http://example.org/soon".to_string(), NOW)
            ],
            "clamped to now"
        );
        req.tombstones
            .push(("http://victim.example/page".into(), NOW));
        let (taken, forged) = take(screen(req.clone(), r[0], &net.view(r[1]), NOW));
        assert!(forged, "a removal of another site's page is a forgery");
        assert_eq!(taken.tombstones.len(), 2);
        req.tombstones = vec![("http://example.org/x".into(), NOW + 10 * 365 * 86_400)];
        assert!(
            take(screen(req, r[0], &net.view(r[1]), NOW)).1,
            "far future"
        );
    }

    #[test]
    fn forged_documents_are_cut_down_to_what_an_honest_owner_could_send() {
        let net = Net::new();
        let r = net.ranked();
        let mut req = batch(&net.site);
        req.docs.push(doc("http://victim.example/page", NOW));
        req.docs
            .push(doc("http://example.org/future", NOW + 10 * 365 * 86_400));
        req.deletes.push("http://victim.example/".into());
        req.anchors
            .push(("http://victim.example/".into(), Default::default()));
        let (req, forged) = take(screen(req, r[0], &net.view(r[1]), NOW));
        assert!(forged, "a document of another site is a forgery");
        let urls: Vec<&str> = req.docs.iter().map(|d| d.url.as_str()).collect();
        assert_eq!(urls, ["http://example.org/a", "http://example.org/future"]);
        assert_eq!(
            req.docs[1].fetched_at, NOW,
            "a future fetch is clamped to now"
        );
        assert_eq!(req.deletes, ["http://example.org/b"]);
        assert!(req.anchors.is_empty());
    }

    fn state(site: &str) -> SiteState {
        SiteState {
            site: site.into(),
            queued: vec![QueuedUrl {
                url: normalize("http://example.org/q", None).unwrap(),
                depth: 1,
                anchors: Vec::new(),
                scope: None,
            }],
            done: vec![DoneUrl {
                url: normalize("http://example.org/d", None).unwrap(),
                fetched_at: NOW + 1000,
            }],
        }
    }

    #[test]
    fn a_handed_over_crawl_keeps_its_queue_but_only_an_owner_marks_pages_done() {
        let net = Net::new();
        let r = net.ranked();
        let far = *r.last().unwrap();
        let only_state = |st: SiteState| wire::ReplicateRequest {
            site: net.site.clone(),
            site_state: Some(st),
            ..Default::default()
        };
        // To the primary, from a peer far from the site: the queue only.
        let (req, _) = take(screen(
            only_state(state("other.site")),
            far,
            &net.view(r[0]),
            NOW,
        ));
        let st = req.site_state.unwrap();
        assert_eq!(st.site, net.site, "the state is the batch's site's");
        assert_eq!(st.queued.len(), 1);
        assert!(st.done.is_empty(), "a stranger cannot mark pages done");
        // From an owner: done URLs too, clamped.
        let (req, _) = take(screen(
            only_state(state(&net.site)),
            r[1],
            &net.view(r[0]),
            NOW,
        ));
        let st = req.site_state.unwrap();
        assert_eq!(st.done.len(), 1);
        assert_eq!(st.done[0].fetched_at, NOW);
        // To a replica, a state from a stranger is refused.
        assert!(matches!(
            screen(only_state(state(&net.site)), far, &net.view(r[1]), NOW),
            Screened::Refuse { forged: false, .. }
        ));
    }

    #[test]
    fn a_far_future_fetch_time_is_a_forgery_even_in_a_refused_batch() {
        let net = Net::new();
        let r = net.ranked();
        let far = *r.last().unwrap();
        let mut req = batch(&net.site);
        req.docs[0].fetched_at = NOW + 2 * FETCH_SKEW_SECS;
        assert!(matches!(
            screen(req.clone(), far, &net.view(r[1]), NOW),
            Screened::Refuse { forged: true, .. }
        ));
        // A clock a little ahead is no forgery: clamped, not counted.
        req.docs[0].fetched_at = NOW + 600;
        let (req, forged) = take(screen(req, r[0], &net.view(r[1]), NOW));
        assert!(!forged);
        assert_eq!(req.docs[0].fetched_at, NOW);
    }
}
