//! Admission: who may become a validator.
//!
//! A `RegisterValidator` transaction, signed by the candidate's own key
//! (so nobody registers a key they do not hold), makes the key a
//! *candidate*. It joins the set only once members weighing a quorum of
//! the set in force have committed an `ApproveValidator` for it; then it
//! joins two epochs after the approving commit, like any change
//! (`validators.rs`).
//!
//! # Why approval, not stake
//!
//! Stake needs something scarce to bond. This chain has no native coin:
//! objects cost nothing to create, so "stake" made of objects would be free
//! and any key could buy itself a majority of the weight. A bonded coin
//! brings unbonding delays, slashing and an economy with it — a project of
//! its own. Approval needs none of that and gives the property that
//! matters here: the set changes only with the consent of a quorum of its
//! weight, so it stays out of a minority's hands, honest members can keep
//! a key that runs no node out, and a joiner can check each change against
//! the set that made it (epoch certificates). Weights come from the
//! genesis; an admitted validator weighs 1.
//!
//! `open` admission (every registration is a member-to-be, as on a devnet)
//! is a genesis option. A node on such a chain warns at start and in
//! `/v1/status`: on it, anyone can halt the chain by registering keys that
//! run no node, or take it over by registering enough of them.
//!
//! Candidates are a peer-fed structure (anyone can send a registration), so
//! they are bounded: at most `ChainParams::max_candidates` at once, each
//! at most `32 + max_address_bytes` bytes plus 32 per approval (the set
//! size bounds those), and a candidate not admitted within
//! `candidate_expiry_epochs` epochs is dropped, so stale registrations
//! cannot keep the list full for good.

use crate::genesis::ValidatorInfo;
use crate::ids::{Epoch, PublicKey};
use borsh::{BorshDeserialize, BorshSerialize};
use std::collections::{BTreeMap, BTreeSet};

pub use crate::params::Admission;

/// The warning a node on an `open` chain logs and shows in its status.
pub const OPEN_ADMISSION_WARNING: &str = "validator admission is OPEN on this chain: any key \
     that registers becomes a validator, so anyone can stall it with keys that run no node or \
     take it over with enough of them; for devnets only";

/// A registration waiting for approval.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Candidate {
    /// Who asks, and where to dial it.
    pub info: ValidatorInfo,
    /// The epoch its registration committed in.
    pub since: Epoch,
    /// Members whose approval committed.
    pub approvals: BTreeSet<PublicKey>,
}

/// Why an approval was refused (recorded as the transaction's failure).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalError {
    /// Only members of the set in force approve.
    #[error("only a member of the validator set can approve")]
    NotAMember,
    /// No such candidate (never registered, expired, or admitted already).
    #[error("no registration of {0} is waiting for approval")]
    UnknownCandidate(String),
    /// The set is at `ChainParams::max_validators`: the candidate waits.
    #[error("validator set is full ({0} members)")]
    SetFull(u32),
    /// The chain admits every registration: there is nothing to approve.
    #[error("admission is open on this chain: nothing to approve")]
    OpenAdmission,
}

/// The candidates, by key.
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Candidates {
    by_key: BTreeMap<PublicKey, Candidate>,
}

impl Candidates {
    /// Drops candidates registered more than `expiry_epochs` before
    /// `epoch`.
    pub fn expire(&mut self, epoch: Epoch, expiry_epochs: u64) {
        self.by_key
            .retain(|_, c| c.since.0.saturating_add(expiry_epochs) >= epoch.0);
    }

    /// Whether `key` is a candidate.
    pub fn contains(&self, key: &PublicKey) -> bool {
        self.by_key.contains_key(key)
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// True when nobody waits.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Adds a candidate (the caller checked it is new and there is room).
    pub fn insert(&mut self, info: ValidatorInfo, since: Epoch) {
        let key = info.key;
        let candidate = Candidate {
            info,
            since,
            approvals: BTreeSet::new(),
        };
        self.by_key.insert(key, candidate);
    }

    /// Records `approver`'s approval of `key` and returns the candidate.
    pub fn approve(
        &mut self,
        key: &PublicKey,
        approver: PublicKey,
    ) -> Result<&Candidate, ApprovalError> {
        let c = self
            .by_key
            .get_mut(key)
            .ok_or_else(|| ApprovalError::UnknownCandidate(key.short()))?;
        c.approvals.insert(approver);
        Ok(c)
    }

    /// Takes `key` off the list (admitted).
    pub fn remove(&mut self, key: &PublicKey) -> Option<Candidate> {
        self.by_key.remove(key)
    }

    /// The candidates, by key.
    pub fn iter(&self) -> impl Iterator<Item = &Candidate> {
        self.by_key.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keypair;

    fn info(label: &str) -> ValidatorInfo {
        ValidatorInfo::new(Keypair::from_label(label).public(), format!("{label}:1"))
    }

    #[test]
    fn a_candidate_expires_after_its_epochs_and_approvals_accumulate_once_each() {
        let mut c = Candidates::default();
        c.insert(info("a"), Epoch(3));
        let (a, m) = (info("a").key, info("m").key);
        assert_eq!(c.approve(&a, m).unwrap().approvals.len(), 1);
        assert_eq!(c.approve(&a, m).unwrap().approvals.len(), 1);
        assert!(matches!(
            c.approve(&info("b").key, m),
            Err(ApprovalError::UnknownCandidate(_))
        ));
        c.expire(Epoch(7), 4);
        assert!(c.contains(&a), "four epochs on, still waiting");
        c.expire(Epoch(8), 4);
        assert!(c.is_empty());
    }

    #[test]
    fn admission_names_round_trip() {
        for a in [Admission::Approval, Admission::Open] {
            assert_eq!(a.name().parse::<Admission>(), Ok(a));
        }
        assert!("anyone".parse::<Admission>().is_err());
    }
}
