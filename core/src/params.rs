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
    /// Heaviest voting weight a genesis validator may have. The genesis
    /// check keeps it times `max_validators` under 2^62, so no sum of
    /// weights (nor twice one) overflows.
    pub max_validator_weight: u64,
    /// Who may become a validator (`admission.rs`): `approval` by a quorum
    /// of the set's weight, or `open` (devnets only).
    pub admission: Admission,
    /// Most registrations waiting for approval at once; one more fails.
    pub max_candidates: u32,
    /// A registration not approved within this many epochs is dropped.
    pub candidate_expiry_epochs: u64,
    /// A member with no committed vertex for this many epochs is removed
    /// at a boundary, so that a vanished member cannot halt the chain for
    /// good (120 epochs of 20 rounds at 250 ms: 10 minutes).
    pub inactive_epochs_max: u64,
    /// Most set changes (joins, leaves, removals) that take effect at one
    /// epoch boundary; later ones wait for the next.
    pub max_churn_per_epoch: u32,
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
            admission: Admission::Approval,
            max_candidates: 16,
            candidate_expiry_epochs: 8,
            inactive_epochs_max: 120,
            max_churn_per_epoch: 4,
        }
    }
}

/// How registrations are admitted (a genesis parameter).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Admission {
    /// A quorum of the set's weight must approve each candidate.
    #[default]
    Approval,
    /// Every registration is admitted: devnets only.
    Open,
}

impl Admission {
    /// Its name in configuration and status: `approval` or `open`.
    pub fn name(self) -> &'static str {
        match self {
            Admission::Approval => "approval",
            Admission::Open => "open",
        }
    }
}

impl std::str::FromStr for Admission {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "approval" => Ok(Admission::Approval),
            "open" => Ok(Admission::Open),
            other => Err(format!("unknown admission {other:?} (approval or open)")),
        }
    }
}

/// The genesis rules for set changes.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SetPolicy {
    /// How registrations are admitted.
    pub admission: Admission,
    /// Most registrations waiting for approval at once.
    pub max_candidates: u32,
    /// A registration not approved within this many epochs is dropped.
    pub candidate_expiry_epochs: u64,
    /// Epochs without a committed vertex after which a member is removed.
    pub inactive_epochs_max: u64,
    /// Most changes taking effect at one boundary.
    pub max_churn_per_epoch: u32,
}

impl From<&ChainParams> for SetPolicy {
    fn from(p: &ChainParams) -> Self {
        SetPolicy {
            admission: p.admission,
            max_candidates: p.max_candidates,
            candidate_expiry_epochs: p.candidate_expiry_epochs,
            inactive_epochs_max: p.inactive_epochs_max,
            max_churn_per_epoch: p.max_churn_per_epoch.max(1),
        }
    }
}
