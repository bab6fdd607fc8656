//! The chain's protocol parameters: the limits every node must share. They
//! are part of the genesis document (and so of the chain id), but live in a
//! module of their own so that the types they limit (transactions,
//! vertices) need not depend on the genesis that holds those types.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

/// Protocol limits that every node must share. Part of the genesis document.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ChainParams {
    /// Largest object payload.
    pub max_object_data_bytes: u32,
    /// Most operations in one transaction.
    pub max_tx_ops: u32,
    /// Most transactions in one vertex.
    pub max_vertex_txs: u32,
    /// Largest encoded vertex.
    pub max_vertex_bytes: u32,
    /// Largest validator set.
    pub max_validators: u32,
    /// Longest validator address in a registration.
    pub max_address_bytes: u32,
    /// Rounds per epoch; the validator set changes only at epoch starts. Even.
    pub epoch_rounds: u64,
    /// A commit at anchor round `a` ignores uncommitted vertices older than
    /// `a - gc_depth_rounds`; nodes keep this many rounds of DAG in memory.
    pub gc_depth_rounds: u64,
    /// A snapshot is taken after the first committed anchor at or past each
    /// multiple of this many rounds (40 rounds of 250 ms: about 10 s).
    pub snapshot_interval_rounds: u64,
    /// Most equivocation proofs one vertex may carry (`evidence.rs`); each
    /// costs its receivers two signature checks.
    pub max_vertex_evidence: u32,
    /// Heaviest voting weight a genesis validator may have; it keeps every
    /// sum of weights far from overflow.
    pub max_validator_weight: u64,
}

impl Default for ChainParams {
    fn default() -> Self {
        ChainParams {
            max_object_data_bytes: 4096,
            max_tx_ops: 16,
            max_vertex_txs: 2000,
            max_vertex_bytes: 4 * 1024 * 1024,
            max_validators: 64,
            max_address_bytes: 128,
            epoch_rounds: 20,
            gc_depth_rounds: 50,
            snapshot_interval_rounds: 40,
            max_vertex_evidence: 4,
            max_validator_weight: 1_000_000,
        }
    }
}
