//! Verify once, and make useless copies cost their sender.
//!
//! Checking a vertex's signatures (its own and every carried
//! transaction's) is what a node spends its time on, so:
//!
//! - [`VerifiedVertices`] remembers the vertices whose checks passed — by
//!   body hash *and* signature, so a copy with another signature is checked
//!   on its own — with who sent each. A copy of one is not checked again
//!   on any path (gossip, fetch, range, buffer), even if the consensus did
//!   not keep the first (too far ahead, below the pruning floor), which is
//!   exactly the copy a flood would resend.
//! - A peer that sends the same vertex again is counted: an honest node
//!   forwards each vertex once per connection, so past
//!   `max_useless_vertices` the sender is banned for a while.
//! - [`crate::budget::SignatureBudget`] bounds the checks one peer's unsolicited gossip
//!   may cost per second (`max_gossip_signature_checks_per_sec`); answers
//!   to the node's own requests are not counted, since it chose to ask.

use crate::ids::{Hash, PeerId, Signature};
use std::collections::{BTreeMap, VecDeque};

/// Senders remembered per vertex: enough for every connection a vertex
/// normally arrives on; a copy from a sender beyond these is still not
/// verified again, only not counted as a repeat.
const SENDERS_KEPT: usize = 16;

/// One verified vertex: its signature and who sent it, how often.
#[derive(Debug)]
struct Verified {
    signature: Signature,
    senders: Vec<(PeerId, u32)>,
}

/// What the cache knows of a vertex copy.
#[derive(Debug, PartialEq, Eq)]
pub(in crate::node) enum Copy {
    /// Never verified (or forgotten): check it.
    Unchecked,
    /// Verified before; this sender had sent it `before` times already.
    Verified {
        /// Earlier copies from the same sender.
        before: u32,
    },
}

/// The vertices verified lately, at most `max` (oldest forgotten first).
#[derive(Debug)]
pub(in crate::node) struct VerifiedVertices {
    by_hash: BTreeMap<Hash, Verified>,
    order: VecDeque<Hash>,
    max: usize,
}

impl VerifiedVertices {
    pub(in crate::node) fn new(max: usize) -> Self {
        VerifiedVertices {
            by_hash: BTreeMap::new(),
            order: VecDeque::new(),
            max,
        }
    }

    /// Looks a copy up and records `from` as one of its senders.
    pub(in crate::node) fn copy(
        &mut self,
        hash: Hash,
        signature: &Signature,
        from: Option<PeerId>,
    ) -> Copy {
        let Some(v) = self.by_hash.get_mut(&hash) else {
            return Copy::Unchecked;
        };
        if v.signature != *signature {
            return Copy::Unchecked;
        }
        let Some(peer) = from else {
            return Copy::Verified { before: 0 };
        };
        match v.senders.iter_mut().find(|(p, _)| *p == peer) {
            Some((_, times)) => {
                let before = *times;
                *times = times.saturating_add(1);
                Copy::Verified { before }
            }
            None => {
                if v.senders.len() < SENDERS_KEPT {
                    v.senders.push((peer, 1));
                }
                Copy::Verified { before: 0 }
            }
        }
    }

    /// Remembers a vertex whose checks passed, sent by `from`.
    pub(in crate::node) fn insert(
        &mut self,
        hash: Hash,
        signature: Signature,
        from: Option<PeerId>,
    ) {
        if self.max == 0 || self.by_hash.contains_key(&hash) {
            return;
        }
        while self.order.len() >= self.max {
            if let Some(old) = self.order.pop_front() {
                self.by_hash.remove(&old);
            }
        }
        let senders = from.map(|p| vec![(p, 1)]).unwrap_or_default();
        self.by_hash.insert(hash, Verified { signature, senders });
        self.order.push_back(hash);
    }

    /// How many are remembered.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_is_known_by_hash_and_signature_and_counted_per_sender() {
        let mut cache = VerifiedVertices::new(2);
        let (a, b) = (PeerId(1), PeerId(2));
        let sig = Signature([3; 64]);
        cache.insert(Hash([1; 32]), sig, Some(a));
        assert_eq!(
            cache.copy(Hash([1; 32]), &sig, Some(b)),
            Copy::Verified { before: 0 }
        );
        assert_eq!(
            cache.copy(Hash([1; 32]), &sig, Some(a)),
            Copy::Verified { before: 1 }
        );
        assert_eq!(
            cache.copy(Hash([1; 32]), &sig, Some(a)),
            Copy::Verified { before: 2 }
        );
        // Another signature over the same body is checked on its own.
        let other = Signature([4; 64]);
        assert_eq!(cache.copy(Hash([1; 32]), &other, Some(a)), Copy::Unchecked);
        // The oldest is forgotten first.
        cache.insert(Hash([2; 32]), sig, None);
        cache.insert(Hash([3; 32]), sig, None);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.copy(Hash([1; 32]), &sig, None), Copy::Unchecked);
    }
}
