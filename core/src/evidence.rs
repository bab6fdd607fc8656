//! Equivocation evidence: proof that a validator signed two different
//! vertices for one round.
//!
//! A vertex's signature covers its header (`vertex.rs`), so two signed
//! headers of one author and round with different hashes are a proof anyone
//! can check with the author's key alone: no DAG, no payload, 344 bytes
//! plus 32 per parent named in either header (about 1 KB at ten
//! validators). A proof is canonical — the header with the
//! smaller hash comes first — so the same equivocation gives the same proof
//! on every node, and a node keeps and gossips one proof per (author,
//! round).
//!
//! What a proof does:
//! - It travels as a message of its own ([`crate::wire::Message::Evidence`]):
//!   a node that finds an equivocation, or receives a proof it did not have,
//!   verifies it and forwards it once to its other peers.
//! - A validator puts proofs it has not yet seen committed into its next
//!   vertex (at most `ChainParams::max_vertex_evidence`). When that vertex
//!   is committed, execution takes the accused off anchor duty from the
//!   first epoch whose set is not yet decided (`validators.rs`): the
//!   exclusion must be a function of the commit sequence, like every change
//!   to the schedule, or honest nodes would disagree about who the anchor
//!   of a round is.
//! - The node reports it (`Event::Equivocation`, `/v1/status`, `/metrics`).
//!
//! Evidence never changes a vote: the commit rule already counts one vote
//! per author (`consensus/decide.rs`); evidence only stops an equivocator
//! from being an anchor, where its two versions would make its slots cost
//! the network a round of waiting each.

pub use crate::header::SignedHeader;
use crate::ids::{Hash, PublicKey, Round};
use crate::params::ChainParams;
use borsh::{BorshDeserialize, BorshSerialize};

/// Two signed headers of one author and round with different hashes, the
/// smaller hash first.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct EquivocationProof {
    /// The version with the smaller hash.
    pub first: SignedHeader,
    /// The version with the larger hash.
    pub second: SignedHeader,
}

/// Why a proof proves nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceInvalid {
    /// A header of another chain.
    #[error("a header is for another chain")]
    WrongChain,
    /// Different authors or rounds, the same header twice, or not in
    /// canonical order.
    #[error("the headers are not two versions of one author's round")]
    NotAConflict,
    /// More parents than any valid vertex has.
    #[error("a header names {got} parents, limit {max}")]
    TooManyParents {
        /// Count.
        got: usize,
        /// `ChainParams::max_validators`.
        max: u32,
    },
    /// A signature does not verify.
    #[error("a header's signature does not verify")]
    BadSignature,
}

impl EquivocationProof {
    /// The proof that `a` and `b` (`Vertex::signed_header`) are two
    /// versions of one slot, or `None` when they are not (other author or
    /// round, or the same vertex).
    pub fn new(a: SignedHeader, b: SignedHeader) -> Option<Self> {
        let (ha, hb) = (a.header.hash(), b.header.hash());
        let (x, y) = (&a.header, &b.header);
        if x.author != y.author || x.round != y.round || ha == hb {
            return None;
        }
        let (first, second) = if ha < hb { (a, b) } else { (b, a) };
        Some(EquivocationProof { first, second })
    }

    /// The validator it accuses.
    pub fn accused(&self) -> PublicKey {
        self.first.header.author
    }

    /// The round it equivocated in.
    pub fn round(&self) -> Round {
        self.first.header.round
    }

    /// The two vertex hashes, smaller first.
    pub fn hashes(&self) -> (Hash, Hash) {
        (self.first.header.hash(), self.second.header.hash())
    }

    /// Every check that needs neither the DAG nor the validator set: same
    /// chain, author and round, two distinct headers in order, plausible
    /// sizes, both signatures. (Whether the accused was a member at that
    /// round is the caller's check: it needs the schedule.)
    pub fn verify(&self, chain_id: &Hash, params: &ChainParams) -> Result<(), EvidenceInvalid> {
        let (a, b) = (&self.first.header, &self.second.header);
        if a.chain_id != *chain_id || b.chain_id != *chain_id {
            return Err(EvidenceInvalid::WrongChain);
        }
        for h in [a, b] {
            if h.parents.len() > params.max_validators as usize {
                return Err(EvidenceInvalid::TooManyParents {
                    got: h.parents.len(),
                    max: params.max_validators,
                });
            }
        }
        let (ha, hb) = self.hashes();
        if a.author != b.author || a.round != b.round || ha >= hb {
            return Err(EvidenceInvalid::NotAConflict);
        }
        if !self.first.signed() || !self.second.signed() {
            return Err(EvidenceInvalid::BadSignature);
        }
        Ok(())
    }

    /// Encoded size in bytes.
    pub fn encoded_len(&self) -> usize {
        borsh::object_length(self).unwrap_or(usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{Domain, Keypair};
    use crate::header::VertexHeader;

    const CHAIN: Hash = Hash([7; 32]);

    /// A signed header of `key`'s vertex of `round` on `parent`.
    fn version(key: &Keypair, round: u64, parent: u8) -> SignedHeader {
        let header = VertexHeader {
            chain_id: CHAIN,
            round: Round(round),
            author: key.public(),
            parents: vec![Hash([parent; 32])],
            payload_hash: Hash([0; 32]),
        };
        let signature = key.sign(Domain::Vertex, header.hash().as_bytes());
        SignedHeader { header, signature }
    }

    #[test]
    fn two_signed_versions_of_one_round_prove_an_equivocation_in_either_order() {
        let k = Keypair::from_label("b");
        let (a, b) = (version(&k, 4, 1), version(&k, 4, 2));
        let proof = EquivocationProof::new(a.clone(), b.clone()).expect("a conflict");
        assert_eq!(
            Some(&proof),
            EquivocationProof::new(b.clone(), a.clone()).as_ref()
        );
        assert_eq!(proof.verify(&CHAIN, &ChainParams::default()), Ok(()));
        assert_eq!((proof.accused(), proof.round()), (k.public(), Round(4)));
        let (h1, h2) = proof.hashes();
        let (ha, hb) = (a.header.hash(), b.header.hash());
        assert!(h1 < h2 && [h1, h2].contains(&ha) && [h1, h2].contains(&hb));
        assert_eq!(proof.encoded_len(), 344 + 2 * 32, "two one-parent headers");
    }

    #[test]
    fn no_proof_comes_from_one_vertex_two_authors_or_two_rounds() {
        let (k, other) = (Keypair::from_label("b"), Keypair::from_label("c"));
        let a = version(&k, 4, 1);
        assert_eq!(EquivocationProof::new(a.clone(), a.clone()), None);
        assert_eq!(
            EquivocationProof::new(a.clone(), version(&other, 4, 2)),
            None
        );
        assert_eq!(EquivocationProof::new(a, version(&k, 6, 2)), None);
    }

    /// A forged proof must not take an honest validator off anchor duty:
    /// every way of making one from honest headers is refused.
    #[test]
    fn a_forged_reordered_or_foreign_proof_is_refused() {
        let params = ChainParams::default();
        let k = Keypair::from_label("b");
        let good = EquivocationProof::new(version(&k, 4, 1), version(&k, 4, 2)).unwrap();

        let mut forged = good.clone();
        forged.second.header.parents = vec![Hash([9; 32])];
        let refused = forged.verify(&CHAIN, &params);
        assert!(matches!(
            refused,
            Err(EvidenceInvalid::BadSignature | EvidenceInvalid::NotAConflict)
        ));

        let mut swapped = good.clone();
        std::mem::swap(&mut swapped.first, &mut swapped.second);
        assert_eq!(
            swapped.verify(&CHAIN, &params),
            Err(EvidenceInvalid::NotAConflict)
        );

        let mut twice = good.clone();
        twice.second = twice.first.clone();
        assert_eq!(
            twice.verify(&CHAIN, &params),
            Err(EvidenceInvalid::NotAConflict)
        );

        let mut other_author = good.clone();
        other_author.second = version(&Keypair::from_label("c"), 4, 2);
        assert!(other_author.verify(&CHAIN, &params).is_err());

        assert_eq!(
            good.verify(&Hash([8; 32]), &params),
            Err(EvidenceInvalid::WrongChain)
        );

        let mut bad_sig = good.clone();
        bad_sig.first.signature = bad_sig.second.signature;
        assert_eq!(
            bad_sig.verify(&CHAIN, &params),
            Err(EvidenceInvalid::BadSignature)
        );
    }
}
