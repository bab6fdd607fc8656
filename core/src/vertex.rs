//! Vertices: one per validator per round, the unit of the DAG.
//!
//! A vertex names its parents (round − 1 vertices) by hash, carries
//! transactions, and may carry a snapshot attestation and equivocation
//! proofs. Its hash is that of its [`VertexHeader`]: chain, round, author,
//! parents and the hash of the payload (everything else). The author signs
//! the header hash, so a header and its signature alone prove what the
//! author signed — which is what makes equivocation evidence small
//! (`evidence.rs`). The hash is recomputed from the canonical encoding on
//! receipt; [`Vertex::verify`] performs every check that does not need the
//! DAG (chain, size, signature, transactions, evidence).
//! Checks that need the DAG (parents exist, quorum of parents, author in the
//! validator set for the round) live in [`crate::dag`].

use crate::crypto::{self, Domain, Keypair};
use crate::epochs::EpochVote;
use crate::evidence::{EquivocationProof, EvidenceInvalid};
use crate::genesis::ChainParams;
use crate::header::{SignedHeader, VertexHeader};
use crate::ids::{Hash, PublicKey, Round, Signature};
use crate::tx::{Transaction, TxInvalid};
use borsh::{BorshDeserialize, BorshSerialize};

/// A validator's signed statement that the snapshot of `round` has
/// `manifest_root`. Joiners accept a snapshot only with a quorum of these.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Attestation {
    /// The snapshot round.
    pub round: Round,
    /// The manifest root the author computed for that round.
    pub manifest_root: Hash,
}

/// The signed part of a vertex.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct VertexBody {
    /// The chain (genesis hash); stops replay across networks.
    pub chain_id: Hash,
    /// The round.
    pub round: Round,
    /// The producing validator.
    pub author: PublicKey,
    /// Hashes of round − 1 vertices, sorted, distinct; empty at round 0.
    pub parents: Vec<Hash>,
    /// Transactions to order.
    pub txs: Vec<Transaction>,
    /// Optional snapshot attestation.
    pub attestation: Option<Box<Attestation>>,
    /// Proofs that other validators equivocated; once committed they take
    /// the accused off anchor duty (`validators.rs`).
    pub evidence: Vec<EquivocationProof>,
    /// The author's vote for the set of the next epoch (or, late, of its
    /// own): a signature that epoch certificates are made of (`epochs.rs`).
    pub epoch_vote: Option<Box<EpochVote>>,
}

/// A signed vertex as it travels on the wire.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Vertex {
    /// What is signed.
    pub body: VertexBody,
    /// `sign(Vertex, hash(body))` by `body.author`.
    pub signature: Signature,
}

/// Why a vertex is rejected before it reaches the DAG.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VertexInvalid {
    /// Built for another chain.
    #[error("vertex is for another chain")]
    WrongChain,
    /// Encoded size over `ChainParams::max_vertex_bytes`.
    #[error("vertex of {got} bytes exceeds {max}")]
    TooLarge {
        /// Encoded size.
        got: usize,
        /// Limit.
        max: u32,
    },
    /// More transactions than `ChainParams::max_vertex_txs`.
    #[error("vertex carries {got} transactions, limit {max}")]
    TooManyTxs {
        /// Count.
        got: usize,
        /// Limit.
        max: u32,
    },
    /// Parents not sorted and distinct, more than `max_validators`, or
    /// present at round 0.
    #[error("vertex parents are malformed")]
    MalformedParents,
    /// Signature does not verify.
    #[error("bad vertex signature")]
    BadSignature,
    /// A carried transaction is malformed.
    #[error("vertex carries an invalid transaction: {0}")]
    BadTx(TxInvalid),
    /// The same transaction twice in one vertex.
    #[error("vertex carries the same transaction twice")]
    DuplicateTx,
    /// More proofs than `ChainParams::max_vertex_evidence`.
    #[error("vertex carries {got} equivocation proofs, limit {max}")]
    TooMuchEvidence {
        /// Count.
        got: usize,
        /// Limit.
        max: u32,
    },
    /// A carried equivocation proof does not prove one.
    #[error("vertex carries a false equivocation proof: {0}")]
    BadEvidence(EvidenceInvalid),
    /// An epoch vote for an epoch other than the vertex's own or the next,
    /// or whose signature does not verify.
    #[error("vertex carries a false epoch vote")]
    BadEpochVote,
    /// An attestation of a round after the vertex's own, or of an odd round
    /// (snapshots are taken at anchor rounds, which are even).
    #[error("vertex attests round {0}, which no snapshot can have")]
    BadAttestationRound(Round),
}

impl VertexBody {
    /// The vertex hash: that of its header.
    pub fn hash(&self) -> Hash {
        self.header().hash()
    }

    /// The header: the payload replaced by its hash.
    pub fn header(&self) -> VertexHeader {
        let payload = (
            &self.txs,
            &self.attestation,
            &self.evidence,
            &self.epoch_vote,
        );
        VertexHeader {
            chain_id: self.chain_id,
            round: self.round,
            author: self.author,
            parents: self.parents.clone(),
            payload_hash: crypto::hash_borsh(Domain::Payload, &payload),
        }
    }

    /// Signs the body.
    pub fn sign(self, key: &Keypair) -> Vertex {
        let signature = key.sign(Domain::Vertex, self.hash().as_bytes());
        Vertex {
            body: self,
            signature,
        }
    }
}

impl Vertex {
    /// The vertex hash, recomputed from the body.
    pub fn hash(&self) -> Hash {
        self.body.hash()
    }

    /// The round.
    pub fn round(&self) -> Round {
        self.body.round
    }

    /// The author.
    pub fn author(&self) -> PublicKey {
        self.body.author
    }

    /// Signatures [`Vertex::verify`] checks: its own, one per transaction,
    /// two per equivocation proof, one for an epoch vote.
    pub fn signature_checks(&self) -> u64 {
        1 + self.body.txs.len() as u64
            + 2 * self.body.evidence.len() as u64
            + u64::from(self.body.epoch_vote.is_some())
    }

    /// The header with the author's signature: what evidence is made of.
    pub fn signed_header(&self) -> SignedHeader {
        SignedHeader {
            header: self.body.header(),
            signature: self.signature,
        }
    }

    /// Encoded size in bytes.
    pub fn encoded_len(&self) -> usize {
        borsh::object_length(self).unwrap_or(usize::MAX)
    }

    /// Every check that needs neither the DAG nor the validator set. Returns
    /// the recomputed hash.
    pub fn verify(&self, chain_id: &Hash, params: &ChainParams) -> Result<Hash, VertexInvalid> {
        let b = &self.body;
        if b.chain_id != *chain_id {
            return Err(VertexInvalid::WrongChain);
        }
        let len = self.encoded_len();
        if len > params.max_vertex_bytes as usize {
            return Err(VertexInvalid::TooLarge {
                got: len,
                max: params.max_vertex_bytes,
            });
        }
        if b.txs.len() > params.max_vertex_txs as usize {
            return Err(VertexInvalid::TooManyTxs {
                got: b.txs.len(),
                max: params.max_vertex_txs,
            });
        }
        let sorted = b.parents.windows(2).all(|w| w[0] < w[1]);
        // More parents than validators can only be a forgery; refused here
        // so that no vertex that passes this check makes a proof that fails
        // `EquivocationProof::verify` (a node would forward it and be banned).
        let too_many = b.parents.len() > params.max_validators as usize;
        if !sorted || too_many || (b.round == Round(0) && !b.parents.is_empty()) {
            return Err(VertexInvalid::MalformedParents);
        }
        let hash = b.hash();
        if !crypto::verify(&b.author, Domain::Vertex, hash.as_bytes(), &self.signature) {
            return Err(VertexInvalid::BadSignature);
        }
        let mut seen = std::collections::BTreeSet::new();
        for tx in &b.txs {
            let h = tx.check(chain_id, params).map_err(VertexInvalid::BadTx)?;
            if !seen.insert(h) {
                return Err(VertexInvalid::DuplicateTx);
            }
        }
        if b.evidence.len() > params.max_vertex_evidence as usize {
            return Err(VertexInvalid::TooMuchEvidence {
                got: b.evidence.len(),
                max: params.max_vertex_evidence,
            });
        }
        for proof in &b.evidence {
            proof
                .verify(chain_id, params)
                .map_err(VertexInvalid::BadEvidence)?;
        }
        if let Some(a) = &b.attestation {
            if a.round > b.round || a.round.0 % 2 != 0 {
                return Err(VertexInvalid::BadAttestationRound(a.round));
            }
        }
        if let Some(vote) = &b.epoch_vote {
            // Its own epoch or the next (the epoch first: a far one has no
            // link to check).
            let own = b.round.0 / params.epoch_rounds;
            let near = (own..=own.saturating_add(1)).contains(&vote.epoch.0);
            let link = vote.link(*chain_id, params.epoch_rounds).filter(|_| near);
            if !link.is_some_and(|l| l.verify(&b.author, &vote.signature)) {
                return Err(VertexInvalid::BadEpochVote);
            }
        }
        Ok(hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tx::{Operation, TxBody};

    fn vertex(key: &Keypair, round: u64, parents: Vec<Hash>) -> Vertex {
        let alice = Keypair::from_label("alice");
        let tx = TxBody {
            chain_id: Hash([1; 32]),
            sender: alice.public(),
            nonce: 1,
            expiry: Round(10),
            ops: vec![Operation::Create { data: vec![1] }],
        }
        .sign(&alice);
        VertexBody {
            chain_id: Hash([1; 32]),
            round: Round(round),
            author: key.public(),
            parents,
            txs: vec![tx],
            attestation: None,
            evidence: Vec::new(),
            epoch_vote: None,
        }
        .sign(key)
    }

    #[test]
    fn a_well_formed_vertex_verifies_and_its_hash_is_recomputed() {
        let k = Keypair::from_label("v");
        let v = vertex(&k, 0, vec![]);
        assert_eq!(
            v.verify(&Hash([1; 32]), &ChainParams::default()),
            Ok(v.hash())
        );
    }

    /// Issue 13: an attestation counts only for a snapshot round (snapshots
    /// are taken at anchor rounds, which are even) and never for a round
    /// after the attesting vertex's own, so a vertex cannot vouch for a
    /// state it could not have seen.
    #[test]
    fn an_attestation_of_a_later_round_or_an_odd_round_makes_the_vertex_invalid() {
        let k = Keypair::from_label("attester");
        let params = ChainParams::default();
        let attesting = |vertex_round: u64, attested: u64| {
            let mut body = vertex(&k, vertex_round, vec![Hash([1; 32])]).body;
            body.attestation = Some(Box::new(Attestation {
                round: Round(attested),
                manifest_root: Hash([7; 32]),
            }));
            body.sign(&k)
        };
        for (vertex_round, attested) in [(10, 12), (10, 9), (10, 11)] {
            let v = attesting(vertex_round, attested);
            assert_eq!(
                v.verify(&v.body.chain_id, &params),
                Err(VertexInvalid::BadAttestationRound(Round(attested))),
                "round {vertex_round} attesting {attested}"
            );
        }
        for (vertex_round, attested) in [(10, 10), (10, 8), (11, 10)] {
            let v = attesting(vertex_round, attested);
            assert_eq!(v.verify(&v.body.chain_id, &params), Ok(v.hash()));
        }
    }

    /// Review finding (issue 13): the vote's link was computed, with
    /// `epoch × epoch_rounds`, before its epoch was checked: a self-signed
    /// vertex voting for epoch 2^64 − 1 overflowed (a panic with overflow
    /// checks) in the first check every gossiped vertex goes through.
    #[test]
    fn a_vote_for_a_far_epoch_is_refused_without_overflow() {
        let k = Keypair::from_label("far");
        let mut v = vertex(&k, 3, vec![Hash([1; 32])]);
        v.body.epoch_vote = Some(Box::new(EpochVote {
            epoch: crate::ids::Epoch(u64::MAX),
            set_hash: Hash([2; 32]),
            signature: Signature([0; 64]),
        }));
        let v = v.body.sign(&k);
        let params = ChainParams::default();
        assert_eq!(
            v.verify(&v.body.chain_id, &params),
            Err(VertexInvalid::BadEpochVote)
        );
    }

    #[test]
    fn tampering_and_malformed_parents_are_rejected() {
        let k = Keypair::from_label("v");
        let params = ChainParams::default();
        let mut v = vertex(&k, 3, vec![Hash([2; 32]), Hash([3; 32])]);
        v.body.round = Round(4);
        assert_eq!(
            v.verify(&Hash([1; 32]), &params),
            Err(VertexInvalid::BadSignature)
        );
        let unsorted = vertex(&k, 3, vec![Hash([3; 32]), Hash([2; 32])]);
        assert_eq!(
            unsorted.verify(&Hash([1; 32]), &params),
            Err(VertexInvalid::MalformedParents)
        );
        let round0 = vertex(&k, 0, vec![Hash([3; 32])]);
        assert_eq!(
            round0.verify(&Hash([1; 32]), &params),
            Err(VertexInvalid::MalformedParents)
        );
    }

    /// The signature covers the payload through the header's payload hash:
    /// a changed transaction list changes the hash and breaks the
    /// signature, and the header alone shows what was signed.
    #[test]
    fn the_header_names_the_payload_and_alone_carries_the_signature() {
        let k = Keypair::from_label("v");
        let v = vertex(&k, 3, vec![Hash([2; 32])]);
        let signed = v.signed_header();
        assert_eq!(signed.header.hash(), v.hash());
        assert!(signed.signed());
        let mut emptied = v.clone();
        emptied.body.txs.clear();
        assert_ne!(emptied.hash(), v.hash());
        assert_eq!(
            emptied.verify(&Hash([1; 32]), &ChainParams::default()),
            Err(VertexInvalid::BadSignature)
        );
    }

    /// The limits are inclusive: a vertex exactly at the byte or transaction
    /// limit verifies, one past it does not; a parent listed twice is
    /// malformed (killed mutants: each bound off by one).
    #[test]
    fn size_and_transaction_limits_are_inclusive_and_parents_are_distinct() {
        let k = Keypair::from_label("v");
        let chain = Hash([1; 32]);
        let v = vertex(&k, 3, vec![Hash([2; 32])]);
        let at = |bytes: usize, txs: u32| ChainParams {
            max_vertex_bytes: bytes as u32,
            max_vertex_txs: txs,
            ..ChainParams::default()
        };
        let len = v.encoded_len();
        assert_eq!(v.verify(&chain, &at(len, 1)), Ok(v.hash()));
        assert!(matches!(
            v.verify(&chain, &at(len - 1, 1)),
            Err(VertexInvalid::TooLarge { .. })
        ));
        assert!(matches!(
            v.verify(&chain, &at(len, 0)),
            Err(VertexInvalid::TooManyTxs { .. })
        ));
        let twice = vertex(&k, 3, vec![Hash([2; 32]), Hash([2; 32])]);
        assert_eq!(
            twice.verify(&chain, &ChainParams::default()),
            Err(VertexInvalid::MalformedParents)
        );
        // Review of issue 12: more parents than validators passed here, and
        // a proof made from such a vertex failed `EquivocationProof::verify`
        // at every node it was forwarded to, which banned the forwarder.
        let two = |n| ChainParams {
            max_validators: n,
            ..ChainParams::default()
        };
        let parents = vertex(&k, 3, vec![Hash([2; 32]), Hash([3; 32])]);
        assert_eq!(parents.verify(&chain, &two(2)), Ok(parents.hash()));
        assert_eq!(
            parents.verify(&chain, &two(1)),
            Err(VertexInvalid::MalformedParents)
        );
    }
}
