//! How the validator set changes: admission (`admission.rs`), leaving,
//! removal of inactive members, and the bound on churn.
//!
//! Every change is made by a commit, so it is the same on every node: a
//! transaction (registration, approval, leave) executed in the commit of
//! the anchor of round `a`, or the commit of that anchor itself (inactivity
//! is measured in committed vertices). A change takes effect at the first
//! epoch boundary from `epoch(a) + 2` on — the first whose set is not
//! decided yet (`validators.rs`) — at which fewer than
//! `max_churn_per_epoch` changes take effect; later ones wait for the next
//! boundary. The bound keeps each epoch's set mostly the previous one's, so
//! a burst of registrations cannot replace a quorum of the set in one step.
//!
//! A member with no committed vertex for `inactive_epochs_max` epochs is
//! removed, so a vanished member does not weigh on the quorum for ever. The
//! removal needs commits, so it cannot undo a stall: members that vanished
//! with a third of the weight or more stop commits, and with them their
//! own removal. That is why admission asks for approval, and why a node that
//! approves on its own (`NodeConfig::auto_approve`) approves only
//! candidates it is connected to.

use crate::admission::ApprovalError;
use crate::genesis::ValidatorInfo;
use crate::ids::{Epoch, PublicKey, Round};
use crate::params::Admission;
use crate::validators::ValidatorSchedule;

/// Why a registration was refused (recorded as the transaction's failure).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationError {
    /// Already a member, registered for a later epoch, waiting for
    /// approval, or a key that left.
    #[error("already a validator, a candidate, or a key that left")]
    AlreadyRegistered,
    /// The set is at `ChainParams::max_validators`.
    #[error("validator set is full ({0} members)")]
    SetFull(u32),
    /// `ChainParams::max_candidates` registrations wait for approval.
    #[error("{0} registrations already wait for approval")]
    CandidatesFull(u32),
}

/// Why a leave was refused (recorded as the transaction's failure).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LeaveError {
    /// Not a member of the set it would leave, or already leaving.
    #[error("not a validator of the set, or already leaving")]
    NotAMember,
    /// It is the last member: a chain without validators stops for good.
    #[error("the last validator cannot leave")]
    LastMember,
}

/// What a registration did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Registered {
    /// The key waits for approval.
    Candidate,
    /// Admitted (open admission): a member from this epoch.
    Admitted(Epoch),
}

/// What an approval did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Approved {
    /// Recorded; the candidate's approvals weigh this much of the quorum.
    Waiting {
        /// Weight of the approvals so far.
        weight: u64,
        /// Weight needed.
        quorum: u64,
    },
    /// The approvals weigh a quorum: a member from this epoch.
    Admitted(Epoch),
}

impl ValidatorSchedule {
    /// Changes taking effect at `epoch`.
    fn changes_at(&self, epoch: Epoch) -> usize {
        self.additions.get(&epoch).map_or(0, Vec::len)
            + self.removals.get(&epoch).map_or(0, Vec::len)
    }

    /// The epoch a change committed by the anchor of `anchor_round` takes
    /// effect: the first from `epoch(a) + 2` with room under the churn
    /// bound.
    fn effective_epoch(&self, anchor_round: Round) -> Epoch {
        let mut e = Epoch(self.epoch_of(anchor_round).0 + 2);
        while self.changes_at(e) >= self.policy.max_churn_per_epoch as usize {
            e = Epoch(e.0 + 1);
        }
        e
    }

    /// Members once every committed change has taken effect.
    fn members_ahead(&self) -> usize {
        let left = self.removals.values().map(Vec::len).sum::<usize>();
        (self.genesis.len() + self.additions.values().map(Vec::len).sum::<usize>())
            .saturating_sub(left)
    }

    /// Admits `info` by a commit of the anchor of `anchor_round`, whatever
    /// the admission rule (approval calls this once approvals weigh a
    /// quorum). Returns the epoch it is a member from.
    pub fn register(
        &mut self,
        info: ValidatorInfo,
        anchor_round: Round,
    ) -> Result<Epoch, RegistrationError> {
        if self.knows(&info.key) {
            return Err(RegistrationError::AlreadyRegistered);
        }
        if self.members_ahead() >= self.max_validators as usize {
            return Err(RegistrationError::SetFull(self.max_validators));
        }
        let effective = self.effective_epoch(anchor_round);
        // Inactivity is counted from the epoch it joins.
        self.last_active.insert(info.key, effective);
        self.additions.entry(effective).or_default().push(info);
        self.memo.clear();
        Ok(effective)
    }

    /// A committed `RegisterValidator` from `info.key`: a candidate under
    /// approval admission, a member-to-be under open admission.
    pub fn request_admission(
        &mut self,
        info: ValidatorInfo,
        anchor_round: Round,
    ) -> Result<Registered, RegistrationError> {
        if self.policy.admission == Admission::Open {
            return self.register(info, anchor_round).map(Registered::Admitted);
        }
        // Expired candidates go first: a key whose registration expired
        // may register again.
        let epoch = self.epoch_of(anchor_round);
        self.candidates
            .expire(epoch, self.policy.candidate_expiry_epochs);
        if self.knows(&info.key) || self.candidates.contains(&info.key) {
            return Err(RegistrationError::AlreadyRegistered);
        }
        if self.members_ahead() >= self.max_validators as usize {
            return Err(RegistrationError::SetFull(self.max_validators));
        }
        if self.candidates.len() >= self.policy.max_candidates as usize {
            return Err(RegistrationError::CandidatesFull(
                self.policy.max_candidates,
            ));
        }
        self.candidates.insert(info, epoch);
        Ok(Registered::Candidate)
    }

    /// A committed `ApproveValidator` of `candidate` by `approver`, who
    /// must be a member of the set in force at the anchor's round. Once the
    /// approvals of that set's members weigh its quorum, the candidate is
    /// admitted.
    pub fn approve(
        &mut self,
        approver: PublicKey,
        candidate: &PublicKey,
        anchor_round: Round,
    ) -> Result<Approved, ApprovalError> {
        if self.policy.admission == Admission::Open {
            return Err(ApprovalError::OpenAdmission);
        }
        let epoch = self.epoch_of(anchor_round);
        let set = self.set_for_epoch(epoch);
        if !set.contains(&approver) {
            return Err(ApprovalError::NotAMember);
        }
        self.candidates
            .expire(epoch, self.policy.candidate_expiry_epochs);
        let c = self.candidates.approve(candidate, approver)?;
        let (weight, quorum) = (set.weight_of_keys(&c.approvals), set.quorum());
        if weight < quorum {
            return Ok(Approved::Waiting { weight, quorum });
        }
        let info = c.info.clone();
        match self.register(info, anchor_round) {
            Ok(e) => {
                self.candidates.remove(candidate);
                Ok(Approved::Admitted(e))
            }
            Err(RegistrationError::SetFull(max)) => Err(ApprovalError::SetFull(max)),
            Err(_) => {
                self.candidates.remove(candidate);
                Err(ApprovalError::UnknownCandidate(candidate.short()))
            }
        }
    }

    /// Records that `key` leaves, by a transaction committed by the anchor
    /// of `anchor_round`. It must be a member of the set of the epoch it
    /// would be out from, as that set stands, not leaving already, and not
    /// the last member.
    pub fn leave(&mut self, key: PublicKey, anchor_round: Round) -> Result<Epoch, LeaveError> {
        if self.removals.values().flatten().any(|k| *k == key) {
            return Err(LeaveError::NotAMember);
        }
        let effective = self.effective_epoch(anchor_round);
        let set = self.set_for_epoch(effective);
        if !set.contains(&key) {
            return Err(LeaveError::NotAMember);
        }
        if set.len() <= 1 {
            return Err(LeaveError::LastMember);
        }
        self.removals.entry(effective).or_default().push(key);
        self.memo.clear();
        self.last_active.remove(&key);
        Ok(effective)
    }

    /// A committed vertex by `author` at `round`: it was active then.
    pub fn record_activity(&mut self, author: PublicKey, round: Round) {
        // A member on its way out needs no clock: its last vertices still
        // commit, and must not bring back the entry its removal dropped.
        if self.removals.values().flatten().any(|k| *k == author) {
            return;
        }
        let epoch = self.epoch_of(round);
        let last = self.last_active.entry(author).or_insert(epoch);
        *last = (*last).max(epoch);
    }

    /// At the commit of the anchor of `anchor_round`: members of the set in
    /// force with no committed vertex for more than `inactive_epochs_max`
    /// epochs are removed (never the last member), each from the epoch its
    /// removal takes effect. Returns them with that epoch.
    pub fn remove_inactive(&mut self, anchor_round: Round) -> Vec<(PublicKey, Epoch)> {
        let epoch = self.epoch_of(anchor_round);
        let max = self.policy.inactive_epochs_max;
        let idle: Vec<PublicKey> = self
            .set_for_epoch(epoch)
            .members()
            .iter()
            .map(|m| m.key)
            .filter(|k| {
                let last = self.last_active.get(k).copied().unwrap_or(Epoch(0));
                last.0.saturating_add(max) < epoch.0
            })
            .collect();
        let mut removed = Vec::new();
        for key in idle {
            if let Ok(from) = self.leave(key, anchor_round) {
                self.last_active.remove(&key);
                removed.push((key, from));
            }
        }
        removed
    }
}
