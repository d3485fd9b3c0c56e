//! The root's check of the statistics shares it gathers (issue 11, "validated statistics").
//!
//! For a network query the root asks every peer for its share of the query's BM25
//! statistics and adds the shares up ([`TermStats::merge`], which saturates). No share can
//! be verified, so the root refuses what cannot be true and bounds what it cannot check.
//!
//! **False shares** are left out of the sum and their peer gets a misbehaviour point:
//!
//! - *Keys*: a share may hold only the keys of the root's own statistics of the query. Both
//!   come from the same parse of the same query text (one `field_tokens` entry per text
//!   field, one `doc_freq` entry per scoring term and text field), so an honest peer of this
//!   version sends exactly those keys; fewer are accepted (a missing number adds nothing).
//!   Taking the root's own statistics as the allowed set, rather than re-deriving the keys
//!   from [`peersearch_indexer::parse_query`], keeps one definition of which keys a query
//!   has (the indexer's), with no copy of its field list here to drift. Any other key, and
//!   any junk meant to push the root's search request over its cap, is refused.
//! - *Counts*: `num_docs` at most [`MAX_PEER_DOCS`]; every document frequency at most the
//!   share's `num_docs`; every field's token count at most `num_docs` ×
//!   [`MAX_TOKENS_PER_DOC`].
//!
//! **Outsized shares** are left out of the sum, without a point: a share whose `num_docs`
//! exceeds `max(`[`SHARE_FACTOR`]` × median, `[`SHARE_FLOOR`]`)`, the median taken (the
//! lower one) over the non-empty shares that passed the checks above, the root's own
//! included. Empty shares do not count towards the median: in a young network most peers
//! are the primary of nothing, and one peer that holds the corpus must not look outsized
//! next to them. An honest peer can trip this rule (a network of very unequal peers), so it
//! costs the peer nothing but its share of this query's statistics: its documents still
//! score, with statistics that lack them.
//!
//! **Residual risk**: a hostile peer that stays inside the rules still moves the statistics:
//! it can claim up to `max(32 × median, 10 000)` documents, each holding any term of the
//! query, which lowers that term's IDF. The rules bound the damage, so that a lie of 2^60
//! documents cannot zero a term's weight, wrap a sum or cut a root off; they cannot tell a
//! plausible lie from the truth. That is the job of the root's check of the scores it gets
//! back, and of owner and identity checks (issue 11, items 1 and 4).

use peersearch_indexer::TermStats;

/// Most documents one peer's share may count: more than a peer on one machine indexes by
/// orders of magnitude (and than one tantivy segment can address, `u32` document ids).
pub const MAX_PEER_DOCS: u64 = 1 << 32;

/// Most tokens one document may add to a field's token count. The extractor keeps at most
/// `MAX_TEXT_BYTES` (1 MiB) of text per field (`peersearch_crawler::extract`), a token takes
/// at least one byte, and BM25's field length (the fieldnorm) never exceeds the token count.
pub const MAX_TOKENS_PER_DOC: u64 = 1 << 20;

/// A share may count up to this many times the median share's documents. 32: an honest
/// network where one peer holds 20 times what the others hold (a big crawler among small
/// ones) is not affected, with room to spare.
pub const SHARE_FACTOR: u64 = 32;

/// A share of at most this many documents is never outsized: small networks, where the
/// median share is a few dozen documents, keep the share of every peer.
pub const SHARE_FLOOR: u64 = 10_000;

/// The verdict on the shares of one statistics round.
#[derive(Debug)]
pub struct Screened<P> {
    /// Shares to add up.
    pub accepted: Vec<(P, TermStats)>,
    /// False shares: left out, and the peer gets a misbehaviour point.
    pub refused: Vec<(P, String)>,
    /// Outsized shares: left out, without a point.
    pub outsized: Vec<(P, String)>,
}

/// Sort the shares peers sent for a query: `own` is the root's own share of it (its keys
/// are the allowed ones, its documents count towards the median).
pub fn screen<P>(own: &TermStats, shares: Vec<(P, TermStats)>) -> Screened<P> {
    let mut valid = Vec::with_capacity(shares.len());
    let mut refused = Vec::new();
    for (peer, share) in shares {
        match check_share(own, &share) {
            Ok(()) => valid.push((peer, share)),
            Err(why) => refused.push((peer, why)),
        }
    }
    let bound =
        share_bound(std::iter::once(own.num_docs).chain(valid.iter().map(|(_, s)| s.num_docs)));
    let (accepted, outsized): (Vec<_>, Vec<_>) =
        valid.into_iter().partition(|(_, s)| s.num_docs <= bound);
    let outsized = outsized
        .into_iter()
        .map(|(p, s)| {
            let why = format!("{} documents, over the bound of {bound}", s.num_docs);
            (p, why)
        })
        .collect();
    Screened {
        accepted,
        refused,
        outsized,
    }
}

/// Whether `share` can be true, for a query whose keys are those of `own`.
pub fn check_share(own: &TermStats, share: &TermStats) -> Result<(), String> {
    // Cheap first: a share with more keys than allowed is refused before any look-up, so
    // a 256 KiB reply of junk costs nothing here.
    if share.field_tokens.len() > own.field_tokens.len()
        || share.doc_freq.len() > own.doc_freq.len()
    {
        return Err(format!(
            "{} field and {} term keys, the query has {} and {}",
            share.field_tokens.len(),
            share.doc_freq.len(),
            own.field_tokens.len(),
            own.doc_freq.len()
        ));
    }
    if share.num_docs > MAX_PEER_DOCS {
        return Err(format!("{} documents", share.num_docs));
    }
    let max_tokens = share.num_docs.saturating_mul(MAX_TOKENS_PER_DOC);
    for (field, &tokens) in &share.field_tokens {
        if !own.field_tokens.contains_key(field) {
            return Err(format!("field {field:?} is not the query's"));
        }
        if tokens > max_tokens {
            return Err(format!(
                "{tokens} tokens in {field:?} for {} documents",
                share.num_docs
            ));
        }
    }
    for (key, &df) in &share.doc_freq {
        if !own.doc_freq.contains_key(key) {
            return Err(format!(
                "term {:?} is not the query's",
                key.replace('\0', ":")
            ));
        }
        if df > share.num_docs {
            return Err(format!(
                "document frequency {df} of {:?} over {} documents",
                key.replace('\0', ":"),
                share.num_docs
            ));
        }
    }
    Ok(())
}

/// The most documents a share may count, given the document counts of the shares (empty
/// ones are left out of the median).
fn share_bound(docs: impl Iterator<Item = u64>) -> u64 {
    let mut counted: Vec<u64> = docs.filter(|&n| n > 0).collect();
    counted.sort_unstable();
    let median = match counted.len() {
        0 => 0,
        n => counted[(n - 1) / 2],
    };
    median.saturating_mul(SHARE_FACTOR).max(SHARE_FLOOR)
}

/// Add up `own` and the accepted shares.
pub fn merge(own: TermStats, screened: &Screened<impl Sized>) -> TermStats {
    let mut merged = own;
    for (_, share) in &screened.accepted {
        merged.merge(share);
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use peersearch_indexer::term_key;

    const FIELDS: [&str; 3] = ["title", "body", "anchor_text"];
    const TERMS: [&str; 2] = ["rust", "async"];

    /// A share of `docs` documents with the query's keys, each term in a tenth of them.
    fn share(docs: u64) -> TermStats {
        let mut s = TermStats {
            num_docs: docs,
            ..TermStats::default()
        };
        for f in FIELDS {
            s.field_tokens.insert(f.into(), docs * 100);
            for t in TERMS {
                s.doc_freq.insert(term_key(f, t), docs / 10);
            }
        }
        s
    }

    fn peers_of(s: &Screened<u32>) -> [Vec<u32>; 3] {
        [
            s.accepted.iter().map(|(p, _)| *p).collect(),
            s.refused.iter().map(|(p, _)| *p).collect(),
            s.outsized.iter().map(|(p, _)| *p).collect(),
        ]
    }

    #[test]
    fn honest_shares_pass_also_partial_or_empty_ones() {
        let own = share(50);
        assert_eq!(check_share(&own, &share(80)), Ok(()));
        assert_eq!(check_share(&own, &share(0)), Ok(()));
        assert_eq!(check_share(&own, &TermStats::default()), Ok(()));
        let mut fewer = share(30);
        fewer.field_tokens.remove("body");
        fewer.doc_freq.remove(&term_key("body", "rust"));
        assert_eq!(check_share(&own, &fewer), Ok(()));
        // A query without scoring terms has no keys; nor may the shares.
        let bare = TermStats {
            num_docs: 7,
            ..TermStats::default()
        };
        assert_eq!(check_share(&bare, &bare), Ok(()));
        assert!(check_share(&bare, &share(7)).is_err());
    }

    #[test]
    fn shares_that_cannot_be_true_are_refused() {
        let own = share(50);
        let mut junk = share(50);
        junk.doc_freq.remove(&term_key("body", "rust"));
        junk.doc_freq.insert(term_key("body", "junk"), 1);
        assert!(check_share(&own, &junk).unwrap_err().contains("junk"));
        let mut field = share(50);
        field.field_tokens.remove("body");
        field.field_tokens.insert("nosuchfield".into(), 1);
        assert!(check_share(&own, &field).is_err());
        let mut many = share(50);
        for i in 0..3000 {
            many.doc_freq
                .insert(term_key("body", &format!("junk{i}")), 1);
        }
        assert!(check_share(&own, &many).is_err());
        let mut df = share(50);
        df.doc_freq.insert(term_key("title", "rust"), 51);
        assert!(check_share(&own, &df).is_err());
        let mut tokens = share(2);
        tokens
            .field_tokens
            .insert("body".into(), 2 * MAX_TOKENS_PER_DOC + 1);
        assert!(check_share(&own, &tokens).is_err());
        let mut huge = share(0);
        huge.num_docs = 1 << 60;
        huge.doc_freq.values_mut().for_each(|v| *v = 1 << 60);
        assert!(check_share(&own, &huge).is_err());
        let mut max = share(0);
        max.num_docs = u64::MAX;
        max.field_tokens.values_mut().for_each(|v| *v = u64::MAX);
        assert!(check_share(&own, &max).is_err());
    }

    #[test]
    fn unequal_honest_shards_all_count() {
        // One peer holds 20 times what each of the others holds.
        let own = share(1_000);
        let shares = vec![(1, share(900)), (2, share(1_100)), (3, share(20_000))];
        let s = screen(&own, shares);
        assert_eq!(peers_of(&s), [vec![1, 2, 3], vec![], vec![]]);
        let merged = merge(own, &s);
        assert_eq!(merged.num_docs, 23_000);
        // A young network: one peer holds the corpus, the others are primaries of nothing.
        let s = screen(
            &share(0),
            vec![(1, share(0)), (2, share(5_000_000)), (3, share(0))],
        );
        assert_eq!(peers_of(&s), [vec![1, 2, 3], vec![], vec![]]);
        // A small network where shares differ a lot: the floor keeps them all.
        let s = screen(&share(3), vec![(1, share(2)), (2, share(9_000))]);
        assert_eq!(peers_of(&s), [vec![1, 2], vec![], vec![]]);
    }

    #[test]
    fn a_share_far_over_the_median_is_left_out_without_a_point() {
        let own = share(1_000);
        let shares = vec![
            (1, share(1_000)),
            (2, share(1_000)),
            (3, share(32 * 1_000 + 1)),
            (4, share(32 * 1_000)),
        ];
        let s = screen(&own, shares);
        assert_eq!(peers_of(&s), [vec![1, 2, 4], vec![], vec![3]]);
        assert_eq!(merge(own, &s).num_docs, 1_000 + 1_000 + 1_000 + 32_000);
    }

    #[test]
    fn a_poisoned_share_is_refused_and_the_rest_add_up() {
        let own = share(40);
        let mut poison = share(0);
        poison.num_docs = 1 << 60;
        poison.doc_freq.values_mut().for_each(|v| *v = 1 << 60);
        for i in 0..3000 {
            poison
                .doc_freq
                .insert(term_key("body", &format!("junk{i:05}")), 1 << 60);
        }
        let s = screen(&own, vec![(1, share(10)), (2, poison), (3, share(30))]);
        assert_eq!(peers_of(&s), [vec![1, 3], vec![2], vec![]]);
        let merged = merge(own, &s);
        let mut want = share(40);
        want.merge(&share(10));
        want.merge(&share(30));
        assert_eq!(merged, want);
        assert_eq!(merged.doc_freq.len(), FIELDS.len() * TERMS.len());
    }
}
