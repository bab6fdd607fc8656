//! Equivocation evidence at the node (the proof itself: `crate::evidence`).
//!
//! - **Found**: consensus or the snapshot buffer reports a second version of
//!   an author's round; the node builds the proof from the two vertices.
//! - **Received**: a `Message::Evidence` from a peer. A proof already held
//!   (same author and round) costs nothing. Otherwise its two signatures
//!   come out of the sender's gossip signature budget; a proof that does
//!   not verify bans the sender (no honest node forwards one it did not
//!   verify). One against a key this node does not know as a validator is
//!   dropped: the sender may know a later set.
//! - **Learned** either way: kept (bounded by `max_evidence_kept` and
//!   `max_evidence_bytes`, the lowest rounds go first), reported
//!   (`Event::Equivocation`), forwarded once to every other ready peer, and
//!   — on a validator — put into its next vertex unless the accused is
//!   already off anchor duty or this node already carried a proof against
//!   it. Committing that vertex takes the accused off anchor duty
//!   (`validators.rs`).

use crate::evidence::EquivocationProof;
use crate::ids::{PeerId, PublicKey, Round, Timestamp};
use crate::interface::{Channel, Event, Limit};
use crate::node::Node;
use crate::store::Store;
use crate::vertex::Vertex;
use crate::wire::Message;
use std::collections::{BTreeMap, BTreeSet};

/// The proofs a node holds and what it still has to do with them.
#[derive(Debug, Default)]
pub(in crate::node) struct EvidenceBook {
    /// One proof per (author, round).
    proofs: BTreeMap<(Round, PublicKey), EquivocationProof>,
    bytes: usize,
    /// Accused this validator has yet to carry a proof against.
    to_carry: BTreeMap<PublicKey, (Round, PublicKey)>,
    /// Accused this validator carried a proof against.
    carried: BTreeSet<PublicKey>,
    /// Proofs learned since start.
    pub(in crate::node) learned: u64,
}

impl EvidenceBook {
    /// Whether a proof for this author's round is held.
    fn holds(&self, round: Round, author: &PublicKey) -> bool {
        self.proofs.contains_key(&(round, *author))
    }

    /// The proofs held, by round.
    pub(in crate::node) fn proofs(&self) -> impl DoubleEndedIterator<Item = &EquivocationProof> {
        self.proofs.values()
    }

    /// Keeps `proof`, dropping the lowest rounds' past the bounds.
    fn keep(&mut self, proof: EquivocationProof, max_count: usize, max_bytes: usize) {
        self.bytes += proof.encoded_len();
        self.proofs.insert((proof.round(), proof.accused()), proof);
        self.learned += 1;
        while self.proofs.len() > max_count || self.bytes > max_bytes {
            let Some((_, dropped)) = self.proofs.pop_first() else {
                break;
            };
            self.bytes = self.bytes.saturating_sub(dropped.encoded_len());
        }
    }
}

impl<S: Store> Node<S> {
    /// Two versions `a` and `b` of one author's round were found here.
    pub(in crate::node) fn found_equivocation(&mut self, now: Timestamp, a: &Vertex, b: &Vertex) {
        if let Some(proof) = EquivocationProof::new(a.signed_header(), b.signed_header()) {
            self.learn_evidence(now, None, proof);
        }
    }

    /// A peer sent a proof.
    pub(in crate::node) fn on_evidence(
        &mut self,
        now: Timestamp,
        peer: PeerId,
        proof: EquivocationProof,
    ) {
        let Some(chain) = self.chain.as_ref() else {
            return; // nothing to check it against yet
        };
        if self.evidence.holds(proof.round(), &proof.accused()) {
            crate::cov::mark("known_evidence_dropped_unchecked");
            return;
        }
        let rate = self.config.max_gossip_signature_checks_per_sec;
        let within = self
            .peers
            .peers
            .get_mut(&peer)
            .is_some_and(|p| p.gossip_checks.take(now, rate, 2));
        if !within {
            self.emit(Event::LimitHit {
                limit: Limit::GossipVerification,
            });
            return;
        }
        if let Err(e) = proof.verify(&chain.chain_id, &chain.genesis.params) {
            self.ban_peer(now, peer, &format!("false equivocation proof: {e}"));
            return;
        }
        if !chain.consensus.meta().schedule.knows(&proof.accused()) {
            crate::cov::mark("evidence_against_an_unknown_key_dropped");
            return;
        }
        self.learn_evidence(now, Some(peer), proof);
    }

    /// A verified proof: keep, report, forward once, carry.
    fn learn_evidence(&mut self, _now: Timestamp, from: Option<PeerId>, proof: EquivocationProof) {
        let (round, author) = (proof.round(), proof.accused());
        if self.evidence.holds(round, &author) {
            return;
        }
        let (first, second) = proof.hashes();
        self.emit(Event::Equivocation {
            author,
            round,
            first,
            second,
        });
        let off_duty = self.chain.as_ref().is_some_and(|c| {
            c.consensus
                .meta()
                .schedule
                .off_anchor_duty()
                .any(|(k, _)| *k == author)
        });
        if self.config.role == crate::wire::Role::Validator
            && !off_duty
            && !self.evidence.carried.contains(&author)
        {
            self.evidence.to_carry.insert(author, (round, author));
        }
        for peer in self.ready_peers_but(from) {
            self.send(
                peer,
                Channel::Gossip,
                Message::Evidence(Box::new(proof.clone())),
            );
        }
        let (count, bytes) = (
            self.config.max_evidence_kept,
            self.config.max_evidence_bytes,
        );
        self.evidence.keep(proof, count, bytes);
    }

    /// Proofs for the next own vertex: at most `max`, one per accused not
    /// yet off anchor duty.
    pub(in crate::node) fn evidence_to_carry(&mut self, max: usize) -> Vec<EquivocationProof> {
        let Some(chain) = self.chain.as_ref() else {
            return Vec::new();
        };
        let off_duty: BTreeSet<PublicKey> = chain
            .consensus
            .meta()
            .schedule
            .off_anchor_duty()
            .map(|(k, _)| *k)
            .collect();
        let mut out = Vec::new();
        while out.len() < max {
            let Some((author, key)) = self.evidence.to_carry.pop_first() else {
                break;
            };
            if off_duty.contains(&author) {
                continue;
            }
            if let Some(proof) = self.evidence.proofs.get(&key) {
                out.push(proof.clone());
                self.evidence.carried.insert(author);
            }
        }
        out
    }
}
