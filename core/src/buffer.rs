//! The gossip buffer of a node that is syncing from a snapshot.
//!
//! From the first connection until the snapshot is applied, gossiped
//! vertices that pass their stand-alone checks are kept here: deduplicated by
//! hash, indexed by round, bounded in bytes and in the span of rounds held.
//! When a bound is hit the
//! *oldest* rounds go first: the replay fills any gap by range fetch, while
//! the newest vertices are the ones gossip will not bring again — unless
//! the newest round is not *supported*: fewer distinct authors than can all
//! be Byzantine (`support`, f + 1 of the set) hold it. Then that round goes
//! first, so one validator signing a vertex at round 10^9 cannot make the
//! span bound evict everything else. Two vertices by one author for one
//! round are kept both, as evidence. (The node offers only vertices by
//! members of the validator set it knows.)

use crate::ids::{Hash, PublicKey, Round};
use crate::vertex::Vertex;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// What happened to a vertex offered to the buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "an equivocation found by the buffer is evidence to record"]
pub enum Buffered {
    /// Kept.
    Added,
    /// Already held.
    Duplicate,
    /// Kept; its author already has `first` at this round.
    Equivocation {
        /// The vertex held before.
        first: Hash,
    },
}

/// The buffer.
#[derive(Debug, Default)]
pub struct VertexBuffer {
    by_round: BTreeMap<(Round, Hash), Arc<Vertex>>,
    hashes: HashSet<Hash>,
    authors: BTreeMap<(Round, PublicKey), Hash>,
    bytes: usize,
    max_bytes: usize,
    max_rounds: u64,
    /// Distinct authors a round needs to be sure an honest one reached it.
    support: usize,
    /// Vertices evicted by a bound since creation.
    pub evicted: u64,
}

impl VertexBuffer {
    /// An empty buffer holding at most `max_bytes` of encoded vertices from
    /// at most `max_rounds` consecutive rounds.
    pub fn new(max_bytes: usize, max_rounds: u64) -> Self {
        VertexBuffer {
            max_bytes,
            max_rounds,
            support: 1,
            ..Self::default()
        }
    }

    /// The same, where a round counts as reached by an honest validator
    /// only once `support` distinct authors hold it (f + 1).
    pub fn with_support(mut self, support: usize) -> Self {
        self.support = support.max(1);
        self
    }

    /// Whether the newest round held is unproven: fewer than `support`
    /// authors hold it, and it is not the round after the newest one that
    /// enough do (the next round of an honest network starts with one
    /// author, and must not be evicted for it).
    fn newest_unproven(&self) -> bool {
        let Some(((top, _), _)) = self.by_round.last_key_value() else {
            return false;
        };
        // The newest round that `support` authors hold, walking down from
        // the top: it is almost always the top one or the one below, so
        // this stops early (collecting every round first made each
        // eviction cost the whole buffer).
        let mut supported = None;
        let mut current: Option<(Round, usize)> = None;
        for (round, _) in self.authors.keys().rev() {
            let count = match current {
                Some((r, n)) if r == *round => n + 1,
                _ => 1,
            };
            current = Some((*round, count));
            if count >= self.support {
                supported = Some(*round);
                break;
            }
        }
        supported.is_none_or(|s| top.0 > s.0.saturating_add(1))
    }

    fn over_bounds(&self) -> bool {
        let span = self.rounds().map_or(0, |(lo, hi)| hi.0 - lo.0);
        self.by_round.len() > 1 && (self.bytes > self.max_bytes || span >= self.max_rounds)
    }

    /// Vertices held.
    pub fn len(&self) -> usize {
        self.by_round.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.by_round.is_empty()
    }

    /// Encoded bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Lowest and highest round held.
    pub fn rounds(&self) -> Option<(Round, Round)> {
        let lo = self.by_round.keys().next()?.0;
        let hi = self.by_round.keys().next_back()?.0;
        Some((lo, hi))
    }

    /// Adds a vertex whose hash and signature were checked.
    pub fn add(&mut self, vertex: Arc<Vertex>, hash: Hash) -> Buffered {
        if !self.hashes.insert(hash) {
            return Buffered::Duplicate;
        }
        let round = vertex.round();
        self.bytes += vertex.encoded_len();
        let result = match self.authors.get(&(round, vertex.author())) {
            Some(first) => Buffered::Equivocation { first: *first },
            None => {
                self.authors.insert((round, vertex.author()), hash);
                Buffered::Added
            }
        };
        self.by_round.insert((round, hash), vertex);
        while self.over_bounds() {
            let evicted = if self.newest_unproven() {
                crate::cov::mark("unsupported_newest_round_evicted");
                self.by_round.pop_last()
            } else {
                self.by_round.pop_first()
            };
            let Some(((r, h), v)) = evicted else {
                break;
            };
            self.bytes -= v.encoded_len();
            self.hashes.remove(&h);
            if self.authors.get(&(r, v.author())) == Some(&h) {
                self.authors.remove(&(r, v.author()));
            }
            self.evicted += 1;
        }
        result
    }

    /// The buffered vertex of `round` with `hash`.
    pub fn get(&self, round: Round, hash: &Hash) -> Option<&Arc<Vertex>> {
        self.by_round.get(&(round, *hash))
    }

    /// Takes every vertex, in (round, hash) order, leaving the buffer empty.
    pub fn drain(&mut self) -> Vec<(Hash, Arc<Vertex>)> {
        self.hashes.clear();
        self.authors.clear();
        self.bytes = 0;
        std::mem::take(&mut self.by_round)
            .into_iter()
            .map(|((_, h), v)| (h, v))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keypair;
    use crate::vertex::VertexBody;

    fn vertex(key: &Keypair, round: u64, nonce: u8) -> (Hash, Arc<Vertex>) {
        let v = VertexBody {
            chain_id: Hash([nonce; 32]),
            round: Round(round),
            author: key.public(),
            parents: vec![],
            txs: vec![],
            attestation: None,
            evidence: Vec::new(),
            epoch_vote: None,
        }
        .sign(key);
        (v.hash(), Arc::new(v))
    }

    #[test]
    fn dedups_detects_equivocation_and_drains_in_round_order() {
        let k = Keypair::from_label("a");
        let mut b = VertexBuffer::new(1 << 20, 100);
        let (h3, v3) = vertex(&k, 3, 0);
        let (h1, v1) = vertex(&k, 1, 0);
        let (h1b, v1b) = vertex(&k, 1, 1);
        assert_eq!(b.add(v3.clone(), h3), Buffered::Added);
        assert_eq!(b.add(v3, h3), Buffered::Duplicate);
        assert_eq!(b.add(v1, h1), Buffered::Added);
        assert_eq!(b.add(v1b, h1b), Buffered::Equivocation { first: h1 });
        assert_eq!(b.rounds(), Some((Round(1), Round(3))));
        let rounds: Vec<u64> = b.drain().iter().map(|(_, v)| v.round().0).collect();
        assert_eq!(rounds, vec![1, 1, 3]);
        assert!(b.is_empty());
    }

    #[test]
    fn the_byte_bound_evicts_the_oldest_rounds_first() {
        let k = Keypair::from_label("a");
        let (_, one) = vertex(&k, 0, 0);
        let size = one.encoded_len();
        let mut b = VertexBuffer::new(size * 3, 100);
        for r in 0..10 {
            let (h, v) = vertex(&k, r, 0);
            assert_eq!(b.add(v, h), Buffered::Added);
        }
        assert_eq!(b.len(), 3);
        assert_eq!(b.rounds(), Some((Round(7), Round(9))));
        assert_eq!(b.evicted, 7);
        assert!(b.bytes() <= size * 3);
    }

    /// Postmortem: the span bound evicted the oldest rounds whatever the
    /// newest was, so one vertex at round 10^9 emptied the buffer of
    /// every real one.
    #[test]
    fn a_far_round_that_too_few_authors_hold_goes_before_the_real_ones() {
        let keys: Vec<Keypair> = (0..4)
            .map(|i| Keypair::from_label(&i.to_string()))
            .collect();
        let mut b = VertexBuffer::new(1 << 30, 100).with_support(2);
        for r in 10..20 {
            for k in &keys {
                let (h, v) = vertex(k, r, 0);
                assert_eq!(b.add(v, h), Buffered::Added);
            }
        }
        let (h, v) = vertex(&keys[3], 1_000_000_000, 0);
        assert_eq!(b.add(v, h), Buffered::Added);
        assert_eq!(
            b.rounds(),
            Some((Round(10), Round(19))),
            "the far vertex went"
        );
        assert_eq!(b.len(), 40);
        // The round after the newest supported one is how an honest
        // network moves on: kept, and the oldest round makes room.
        let (h, v) = vertex(&keys[0], 20, 0);
        assert_eq!(b.add(v, h), Buffered::Added);
        let (h, v) = vertex(&keys[3], 20, 0);
        assert_eq!(b.add(v, h), Buffered::Added);
        assert_eq!(b.rounds(), Some((Round(10), Round(20))));
        let mut b = VertexBuffer::new(1 << 30, 10).with_support(2);
        for r in 0..10 {
            for k in &keys[..2] {
                let (h, v) = vertex(k, r, 0);
                let _ = b.add(v, h);
            }
        }
        let (h, v) = vertex(&keys[0], 10, 0);
        let _ = b.add(v, h);
        assert_eq!(b.rounds(), Some((Round(1), Round(10))));
    }

    #[test]
    fn the_round_bound_keeps_the_newest_rounds() {
        let k = Keypair::from_label("a");
        let mut b = VertexBuffer::new(1 << 30, 4);
        for r in 0..10 {
            let (h, v) = vertex(&k, r, 0);
            assert_eq!(b.add(v, h), Buffered::Added);
        }
        assert_eq!(b.rounds(), Some((Round(6), Round(9))));
    }
}
