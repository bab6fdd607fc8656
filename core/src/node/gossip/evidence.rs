//! Equivocation evidence at the node (the proof itself: `crate::evidence`).
//!
//! One proof per accused validator is all a node keeps and passes on: one
//! is enough to take it off anchor duty, and keying by author and round
//! would let an equivocator sign proofs against itself at ever higher
//! rounds until they pushed every other proof out, and the pushed-out ones
//! came back from the neighbours to be verified and forwarded again.
//!
//! - **Found**: consensus or the snapshot buffer reports a second version of
//!   an author's round; the node builds the proof from the two vertices and
//!   checks it like any other (a vertex that passed its own checks always
//!   makes a good proof, but a proof this node forwards must never be one
//!   that gets it banned).
//! - **Received**: a `Message::Evidence` from a peer. A proof against an
//!   author already proven costs nothing and goes nowhere; so does one
//!   against a key this node does not know as a validator (the sender may
//!   know a later set). Otherwise its two signatures come out of the
//!   sender's gossip signature budget, and a proof that does not verify bans
//!   the sender (no honest node forwards one it did not verify).
//! - **Learned** either way: kept (bounded by `max_evidence_kept` and
//!   `max_evidence_bytes`; the set of validators bounds it first),
//!   reported (`Event::Equivocation`), forwarded once to every other ready
//!   peer, and — on a validator — put into its next vertex unless the
//!   accused is already off anchor duty. Committing that vertex takes the
//!   accused off anchor duty (`validators.rs`).

use crate::evidence::EquivocationProof;
use crate::ids::{PeerId, PublicKey, Timestamp};
use crate::interface::{Channel, Event, Limit};
use crate::node::Node;
use crate::store::Store;
use crate::vertex::Vertex;
use crate::wire::Message;
use std::collections::{BTreeMap, BTreeSet};

/// The proofs a node holds and what it still has to do with them.
#[derive(Debug, Default)]
pub(in crate::node) struct EvidenceBook {
    /// One proof per accused validator.
    proofs: BTreeMap<PublicKey, EquivocationProof>,
    bytes: usize,
    /// Accused this validator has yet to carry a proof against.
    to_carry: BTreeSet<PublicKey>,
    /// Validators proven to equivocate since start (never decreases, even
    /// when a bound drops a proof).
    pub(in crate::node) learned: u64,
}

impl EvidenceBook {
    /// Whether a proof against `author` is held.
    fn holds(&self, author: &PublicKey) -> bool {
        self.proofs.contains_key(author)
    }

    /// The proofs held, by accused.
    pub(in crate::node) fn proofs(&self) -> impl Iterator<Item = &EquivocationProof> {
        self.proofs.values()
    }

    /// Keeps `proof` if the bounds allow: true if kept. Past a bound a new
    /// proof is refused, not an old one dropped, so nothing once forwarded
    /// can come back as news.
    fn keep(&mut self, proof: EquivocationProof, max_count: usize, max_bytes: usize) -> bool {
        let len = proof.encoded_len();
        if self.proofs.len() >= max_count || self.bytes.saturating_add(len) > max_bytes {
            return false;
        }
        self.bytes += len;
        self.proofs.insert(proof.accused(), proof);
        self.learned += 1;
        true
    }
}

impl<S: Store> Node<S> {
    /// Two versions `a` and `b` of one author's round were found here.
    pub(in crate::node) fn found_equivocation(&mut self, a: &Vertex, b: &Vertex) {
        let Some(chain) = self.chain.as_ref() else {
            return;
        };
        let Some(proof) = EquivocationProof::new(a.signed_header(), b.signed_header()) else {
            return;
        };
        if self.evidence.holds(&proof.accused()) {
            return;
        }
        if proof
            .verify(&chain.chain_id, &chain.genesis.params)
            .is_err()
        {
            crate::cov::mark("found_evidence_that_does_not_verify");
            return;
        }
        self.learn_evidence(None, proof);
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
        if self.evidence.holds(&proof.accused()) {
            crate::cov::mark("known_evidence_dropped_unchecked");
            return;
        }
        if !chain.consensus.meta().schedule.knows(&proof.accused()) {
            crate::cov::mark("evidence_against_an_unknown_key_dropped");
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
        self.learn_evidence(Some(peer), proof);
    }

    /// A verified proof against an author not proven before: keep, report,
    /// forward once, carry.
    fn learn_evidence(&mut self, from: Option<PeerId>, proof: EquivocationProof) {
        let (round, author) = (proof.round(), proof.accused());
        let (count, bytes) = (
            self.config.max_evidence_kept,
            self.config.max_evidence_bytes,
        );
        if !self.evidence.keep(proof.clone(), count, bytes) {
            self.emit(Event::LimitHit {
                limit: Limit::Evidence,
            });
            return;
        }
        let (first, second) = proof.hashes();
        self.emit(Event::Equivocation {
            author,
            round,
            first,
            second,
        });
        let off_duty = self
            .chain
            .as_ref()
            .is_some_and(|c| c.consensus.meta().schedule.is_off_duty(&author));
        if self.config.role == crate::wire::Role::Validator && !off_duty {
            self.evidence.to_carry.insert(author);
        }
        for peer in self.ready_peers_but(from) {
            self.send(
                peer,
                Channel::Gossip,
                Message::Evidence(Box::new(proof.clone())),
            );
        }
    }

    /// Proofs for the next own vertex: at most `max`, one per accused not
    /// yet off anchor duty.
    pub(in crate::node) fn evidence_to_carry(&mut self, max: usize) -> Vec<EquivocationProof> {
        let Some(chain) = self.chain.as_ref() else {
            return Vec::new();
        };
        let schedule = &chain.consensus.meta().schedule;
        let mut out = Vec::new();
        while out.len() < max {
            let Some(author) = self.evidence.to_carry.pop_first() else {
                break;
            };
            if schedule.is_off_duty(&author) {
                continue;
            }
            if let Some(proof) = self.evidence.proofs.get(&author) {
                out.push(proof.clone());
            }
        }
        out
    }
}
