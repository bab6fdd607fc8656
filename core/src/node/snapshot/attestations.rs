//! The snapshot attestations a node has seen in accepted vertices: which
//! members attested which manifest root for which round. A node serves a
//! snapshot's attestation vertices from here, and compares its own state
//! with a quorum's after it joined.
//!
//! The table is bounded, and what it keeps must not be up to one author:
//!
//! - a vertex attests only a snapshot of a round not after its own (a
//!   validator builds the snapshot of a round it has committed);
//! - an author attests one root per round: a second root from it for the
//!   same round is ignored;
//! - when full, the entry with the fewest attesters goes (the lowest round
//!   among equals), so entries a quorum backs outlast any number made up by
//!   fewer than a third of the set.
//!
//! Before (issue 11), the table kept 16 entries and dropped the lowest
//! round: 16 vertices attesting far-future rounds erased every real
//! attestation, and no joiner reached a quorum.

use crate::ids::{Hash, PublicKey, Round};
use crate::vertex::Attestation;
use std::collections::BTreeMap;

/// Attesters of one (round, root): author → the attesting vertex's hash.
pub(in crate::node) type Attesters = BTreeMap<PublicKey, Hash>;

/// Attestations by (round, root), at most `max` entries.
#[derive(Debug)]
pub(in crate::node) struct AttestationTable {
    entries: BTreeMap<(Round, Hash), Attesters>,
    max: usize,
}

/// Entries kept: a few snapshot intervals' worth, with room for roots that
/// disagree.
const MAX_ATTESTED_SNAPSHOTS: usize = 16;

impl Default for AttestationTable {
    fn default() -> Self {
        AttestationTable::new(MAX_ATTESTED_SNAPSHOTS)
    }
}

impl AttestationTable {
    pub(in crate::node) fn new(max: usize) -> Self {
        AttestationTable {
            entries: BTreeMap::new(),
            max,
        }
    }

    /// Records `a`, carried by `author`'s vertex `hash` of `vertex_round`;
    /// false if it was ignored.
    pub(in crate::node) fn note(
        &mut self,
        author: PublicKey,
        vertex_round: Round,
        a: &Attestation,
        hash: Hash,
    ) -> bool {
        if a.round > vertex_round {
            crate::cov::mark("attestation_of_a_later_round_ignored");
            return false;
        }
        let other_root = self
            .entries
            .range((a.round, Hash([0; 32]))..=(a.round, Hash([0xFF; 32])))
            .any(|((_, root), who)| *root != a.manifest_root && who.contains_key(&author));
        if other_root {
            crate::cov::mark("second_root_of_an_author_ignored");
            return false;
        }
        self.entries
            .entry((a.round, a.manifest_root))
            .or_default()
            .insert(author, hash);
        while self.entries.len() > self.max {
            let weakest = self
                .entries
                .iter()
                .min_by_key(|((round, _), who)| (who.len(), *round))
                .map(|(key, _)| *key);
            if let Some(key) = weakest {
                self.entries.remove(&key);
            }
        }
        true
    }

    /// Who attested `root` for `round`.
    pub(in crate::node) fn get(&self, round: Round, root: Hash) -> Option<&Attesters> {
        self.entries.get(&(round, root))
    }

    /// Every entry, by (round, root).
    pub(in crate::node) fn iter(&self) -> impl Iterator<Item = (&(Round, Hash), &Attesters)> {
        self.entries.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u8) -> PublicKey {
        crate::crypto::Keypair::from_label(&format!("member{i}")).public()
    }

    fn attest(round: u64, root: u8) -> Attestation {
        Attestation {
            round: Round(round),
            manifest_root: Hash([root; 32]),
        }
    }

    /// Postmortem: see the module doc — far-future attestations from one
    /// author evicted the real ones.
    #[test]
    fn one_author_cannot_push_a_quorums_attestation_out_of_the_table() {
        let mut t = AttestationTable::new(16);
        for i in 0..3 {
            assert!(t.note(key(i), Round(41), &attest(40, 1), Hash([i; 32])));
        }
        let liar = key(9);
        // Far-future rounds are refused outright.
        for r in 0..32 {
            assert!(!t.note(liar, Round(45), &attest(1_000_000 + r, 2), Hash([9; 32])));
        }
        // Rounds up to its own vertex's are taken, one root per round, and
        // each such entry has one attester: they go before the quorum's.
        for r in 0..32 {
            t.note(liar, Round(80), &attest(41 + r, 2), Hash([9; 32]));
        }
        assert!(!t.note(liar, Round(80), &attest(72, 3), Hash([9; 32])));
        assert_eq!(t.get(Round(40), Hash([1; 32])).map(BTreeMap::len), Some(3));
        assert_eq!(t.iter().count(), 16);
    }
}
