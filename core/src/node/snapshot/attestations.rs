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
//! - an author keeps its newest `ATTESTATIONS_PER_AUTHOR`: an honest
//!   member attests one root per snapshot round, so its older ones are of
//!   snapshots nobody asks for any more, and a faulty one can push out only
//!   its own;
//! - past `max` entries in all (members come and go), the lowest round
//!   goes.
//!
//! Before (issue 11), the table kept 16 entries and dropped the lowest
//! round: 16 vertices attesting far-future rounds erased every real
//! attestation, and no joiner reached a quorum. Then (until issue 14) a
//! full table dropped the entry with the fewest attesters: once it held 16
//! snapshots attested by the whole set, each new snapshot's first
//! attestation was that entry and went at once, so on a network of more
//! than one validator no snapshot after the sixteenth reached a quorum.

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

/// Attestations kept per author: eight snapshot intervals' worth (a leased
/// snapshot older than that is rarely still downloaded).
const ATTESTATIONS_PER_AUTHOR: usize = 8;

/// Entries kept in all: every author's budget for a full set of 64
/// members, so the bound bites only when members have come and gone.
const MAX_ATTESTED_SNAPSHOTS: usize = ATTESTATIONS_PER_AUTHOR * 64;

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
        let key = (a.round, a.manifest_root);
        self.entries.entry(key).or_default().insert(author, hash);
        let mine: Vec<(Round, Hash)> = self
            .entries
            .iter()
            .filter(|(_, who)| who.contains_key(&author))
            .map(|(k, _)| *k)
            .collect();
        let over = mine.len().saturating_sub(ATTESTATIONS_PER_AUTHOR);
        for old in &mine[..over] {
            if let Some(who) = self.entries.get_mut(old) {
                who.remove(&author);
                if who.is_empty() {
                    self.entries.remove(old);
                }
            }
        }
        while self.entries.len() > self.max {
            self.entries.pop_first();
        }
        self.entries
            .get(&key)
            .is_some_and(|who| who.contains_key(&author))
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
        // it keeps only its newest: they push out its own, not the quorum's.
        for r in 0..32 {
            t.note(liar, Round(80), &attest(41 + r, 2), Hash([9; 32]));
        }
        assert!(!t.note(liar, Round(80), &attest(72, 3), Hash([9; 32])));
        assert!(!t.note(liar, Round(80), &attest(42, 2), Hash([9; 32])));
        assert_eq!(t.get(Round(40), Hash([1; 32])).map(BTreeMap::len), Some(3));
        assert_eq!(t.iter().count(), 1 + ATTESTATIONS_PER_AUTHOR);
    }

    /// Postmortem (issue 14, found by `scripts/bench-catchup.sh`): once the
    /// table held 16 entries, each attested by the whole set, a new
    /// snapshot's first attestation made the weakest entry and went at
    /// once, and so did every one after it. On a network of more than one
    /// validator no snapshot after the sixteenth was attested by a quorum:
    /// a validator restarted after five minutes found none to take.
    #[test]
    fn a_new_snapshot_is_attested_however_many_came_before() {
        let mut t = AttestationTable::default();
        for s in 0..40u8 {
            let round = u64::from(s) * 40;
            for i in 0..4 {
                t.note(key(i), Round(round + 1), &attest(round, s), Hash([i; 32]));
            }
            let attesters = t.get(Round(round), Hash([s; 32])).map(BTreeMap::len);
            assert_eq!(attesters, Some(4), "snapshot {s}");
        }
    }
}
