//! Objects and transactions.
//!
//! An object is a versioned blob with an owner. A transaction is a signed list
//! of operations by one sender; it executes atomically (see [`crate::exec`]).
//! The transaction hash covers the whole body (chain id, sender, nonce, expiry,
//! operations) and the signature is over that hash, so a transaction can neither
//! be altered nor replayed on another chain.

use crate::crypto::{self, Domain, Keypair};
use crate::ids::{Hash, ObjectId, PublicKey, Round, Signature};
use crate::params::ChainParams;
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

/// A versioned piece of state owned by a key.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Object {
    /// Stable identifier.
    pub id: ObjectId,
    /// Starts at 1 on creation; every update or transfer adds one.
    pub version: u64,
    /// Only the owner may update, transfer or delete the object.
    pub owner: PublicKey,
    /// Opaque payload, at most `ChainParams::max_object_data_bytes`.
    #[serde(with = "hex_bytes")]
    pub data: Vec<u8>,
}

/// One step of a transaction.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub enum Operation {
    /// Create an object owned by the sender; its id is `H(tx hash ‖ op index)`.
    Create {
        /// Initial payload.
        #[serde(with = "hex_bytes")]
        data: Vec<u8>,
    },
    /// Replace the payload of an object the sender owns at `version`.
    Update {
        /// Target object.
        id: ObjectId,
        /// The version the sender expects (optimistic concurrency).
        version: u64,
        /// New payload.
        #[serde(with = "hex_bytes")]
        data: Vec<u8>,
    },
    /// Give an object the sender owns at `version` to `new_owner`.
    Transfer {
        /// Target object.
        id: ObjectId,
        /// The version the sender expects.
        version: u64,
        /// The new owner.
        new_owner: PublicKey,
    },
    /// Remove an object the sender owns at `version`.
    Delete {
        /// Target object.
        id: ObjectId,
        /// The version the sender expects.
        version: u64,
    },
    /// Ask to join the validator set (the sender's key): a candidate until
    /// members weighing a quorum approve it, unless admission is open;
    /// effective at a later epoch boundary.
    RegisterValidator {
        /// QUIC address other nodes should dial (`host:port`).
        address: String,
    },
    /// Leave the validator set (the sender must be a member); effective
    /// at the start of the second epoch after the commit (or later, past
    /// the churn bound).
    LeaveValidator,
    /// Approve a registration waiting for admission (the sender must be a
    /// member of the set in force); admitted once approvals weigh a quorum.
    ApproveValidator {
        /// The candidate's key.
        candidate: PublicKey,
    },
}

/// The signed part of a transaction.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct TxBody {
    /// The chain this transaction is valid on (genesis hash).
    pub chain_id: Hash,
    /// Who signs and pays; owner of created objects.
    pub sender: PublicKey,
    /// Distinguishes otherwise identical transactions.
    pub nonce: u64,
    /// Last round at which the transaction may commit; later it fails as expired.
    pub expiry: Round,
    /// Applied in order, all or nothing.
    pub ops: Vec<Operation>,
}

/// A transaction: body plus the sender's signature over its hash.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Transaction {
    /// What is signed.
    pub body: TxBody,
    /// `sign(Tx, hash(body))` by `body.sender`.
    pub signature: Signature,
}

/// Why a transaction is malformed before any execution.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TxInvalid {
    /// Signed for another chain.
    #[error("transaction is for chain {got}, this chain is {expected}")]
    WrongChain {
        /// This chain.
        expected: Hash,
        /// The transaction's.
        got: Hash,
    },
    /// The signature does not verify.
    #[error("bad transaction signature")]
    BadSignature,
    /// No operations, or more than allowed.
    #[error("transaction has {got} operations, allowed 1..={max}")]
    OpCount {
        /// Operations present.
        got: usize,
        /// `ChainParams::max_tx_ops`.
        max: u32,
    },
    /// An object payload exceeds the limit.
    #[error("object data of {got} bytes exceeds {max}")]
    DataTooLarge {
        /// Payload size.
        got: usize,
        /// `ChainParams::max_object_data_bytes`.
        max: u32,
    },
    /// A validator address is empty or too long.
    #[error("validator address of {got} bytes, allowed 1..={max}")]
    BadAddress {
        /// Address length.
        got: usize,
        /// `ChainParams::max_address_bytes`.
        max: u32,
    },
}

impl TxBody {
    /// The transaction hash (the id used everywhere).
    pub fn hash(&self) -> Hash {
        crypto::hash_borsh(Domain::Tx, self)
    }

    /// Signs the body with `key` (which should be `self.sender`).
    pub fn sign(self, key: &Keypair) -> Transaction {
        let signature = key.sign(Domain::Tx, self.hash().as_bytes());
        Transaction {
            body: self,
            signature,
        }
    }
}

impl Transaction {
    /// The transaction hash.
    pub fn hash(&self) -> Hash {
        self.body.hash()
    }

    /// Encoded size in bytes.
    pub fn encoded_len(&self) -> usize {
        borsh::object_length(self).unwrap_or(usize::MAX)
    }

    /// Stateless checks: chain, limits and signature. Returns the hash so the
    /// caller does not compute it twice.
    pub fn check(&self, chain_id: &Hash, params: &ChainParams) -> Result<Hash, TxInvalid> {
        if self.body.chain_id != *chain_id {
            return Err(TxInvalid::WrongChain {
                expected: *chain_id,
                got: self.body.chain_id,
            });
        }
        let ops = self.body.ops.len();
        if ops == 0 || ops > params.max_tx_ops as usize {
            return Err(TxInvalid::OpCount {
                got: ops,
                max: params.max_tx_ops,
            });
        }
        for op in &self.body.ops {
            match op {
                Operation::Create { data } | Operation::Update { data, .. }
                    if data.len() > params.max_object_data_bytes as usize =>
                {
                    return Err(TxInvalid::DataTooLarge {
                        got: data.len(),
                        max: params.max_object_data_bytes,
                    });
                }
                Operation::RegisterValidator { address }
                    if address.is_empty() || address.len() > params.max_address_bytes as usize =>
                {
                    return Err(TxInvalid::BadAddress {
                        got: address.len(),
                        max: params.max_address_bytes,
                    });
                }
                _ => {}
            }
        }
        let hash = self.hash();
        if !crypto::verify(
            &self.body.sender,
            Domain::Tx,
            hash.as_bytes(),
            &self.signature,
        ) {
            return Err(TxInvalid::BadSignature);
        }
        Ok(hash)
    }
}

/// The id of the object created by operation `index` of transaction `tx`.
pub fn created_object_id(tx: &Hash, index: u32) -> ObjectId {
    ObjectId(crypto::hash_parts(Domain::Object, &[tx.as_bytes(), &index.to_le_bytes()]).0)
}

/// What became of a transaction.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TxOutcome {
    /// Executed and applied.
    Committed {
        /// The anchor round whose commit applied it.
        round: Round,
    },
    /// Executed, found invalid against state, and recorded without effect.
    Failed {
        /// The anchor round whose commit recorded it.
        round: Round,
        /// Why it failed.
        reason: String,
    },
}

/// Status of a transaction as a node knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TxStatus {
    /// Accepted and waiting to commit (in this node's mempool, in a vertex not
    /// yet committed, or forwarded to a validator).
    Pending,
    /// Committed with effect at `round`.
    Committed {
        /// Anchor round.
        round: Round,
    },
    /// Recorded as failed at `round`.
    Failed {
        /// Anchor round.
        round: Round,
        /// Why it failed.
        reason: String,
    },
    /// This node has never seen the transaction.
    Unknown,
}

impl From<TxOutcome> for TxStatus {
    fn from(o: TxOutcome) -> Self {
        match o {
            TxOutcome::Committed { round } => TxStatus::Committed { round },
            TxOutcome::Failed { round, reason } => TxStatus::Failed { round, reason },
        }
    }
}

/// Serde helper: byte vectors as hex strings in JSON.
pub mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes bytes as a hex string.
    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(b))
    }

    /// Reads a hex string into bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(ops: Vec<Operation>) -> TxBody {
        TxBody {
            chain_id: Hash([1; 32]),
            sender: Keypair::from_label("alice").public(),
            nonce: 7,
            expiry: Round(100),
            ops,
        }
    }

    #[test]
    fn signed_transaction_passes_checks_and_tampering_fails() {
        let key = Keypair::from_label("alice");
        let params = ChainParams::default();
        let tx = body(vec![Operation::Create {
            data: b"hi".to_vec(),
        }])
        .sign(&key);
        assert_eq!(tx.check(&Hash([1; 32]), &params), Ok(tx.hash()));
        let mut bad = tx.clone();
        bad.body.nonce += 1;
        assert_eq!(
            bad.check(&Hash([1; 32]), &params),
            Err(TxInvalid::BadSignature)
        );
        assert!(matches!(
            tx.check(&Hash([2; 32]), &params),
            Err(TxInvalid::WrongChain { .. })
        ));
    }

    #[test]
    fn limits_are_enforced_before_the_signature() {
        let key = Keypair::from_label("alice");
        let params = ChainParams::default();
        let big = vec![0u8; params.max_object_data_bytes as usize + 1];
        let tx = body(vec![Operation::Create { data: big }]).sign(&key);
        assert!(matches!(
            tx.check(&Hash([1; 32]), &params),
            Err(TxInvalid::DataTooLarge { .. })
        ));
        let empty = body(vec![]).sign(&key);
        assert!(matches!(
            empty.check(&Hash([1; 32]), &params),
            Err(TxInvalid::OpCount { .. })
        ));
    }

    #[test]
    fn created_ids_differ_per_index() {
        let h = Hash([9; 32]);
        assert_ne!(created_object_id(&h, 0), created_object_id(&h, 1));
    }
}
