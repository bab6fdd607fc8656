//! Vertex headers: what a validator's signature covers.
//!
//! A header is a vertex without its payload (transactions, attestation,
//! evidence), which it names by hash; the vertex hash is the header hash.
//! A header and its signature are therefore a small, self-contained record
//! of what an author signed for a round, which is what equivocation proofs
//! are made of (`evidence.rs`).

use crate::crypto::{self, Domain};
use crate::ids::{Hash, PublicKey, Round, Signature};
use borsh::{BorshDeserialize, BorshSerialize};

/// What the author's signature covers: the vertex without its payload,
/// which it names by hash. Its hash is the vertex hash.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct VertexHeader {
    /// The chain (genesis hash).
    pub chain_id: Hash,
    /// The round.
    pub round: Round,
    /// The producing validator.
    pub author: PublicKey,
    /// Hashes of round − 1 vertices, sorted, distinct.
    pub parents: Vec<Hash>,
    /// Hash of the transactions, attestation and evidence.
    pub payload_hash: Hash,
}

impl VertexHeader {
    /// The vertex hash.
    pub fn hash(&self) -> Hash {
        crypto::hash_borsh(Domain::Vertex, self)
    }
}

/// A vertex header with its author's signature.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SignedHeader {
    /// What was signed.
    pub header: VertexHeader,
    /// `sign(Vertex, hash(header))` by `header.author`.
    pub signature: Signature,
}

impl SignedHeader {
    /// Whether the author's signature is good.
    pub fn signed(&self) -> bool {
        let h = self.header.hash();
        crypto::verify(
            &self.header.author,
            Domain::Vertex,
            h.as_bytes(),
            &self.signature,
        )
    }
}
