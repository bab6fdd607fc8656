//! The validator set and how it changes over epochs.
//!
//! The set for epoch 0 and 1 is the genesis set. A registration committed by
//! the anchor of round `a` joins the set at the start of epoch
//! `epoch(a) + 2`. The two-epoch delay gives every node time to *decide* the
//! set before it is needed: the set for epoch `e` is final once an anchor at
//! or after the last anchor round of epoch `e − 2` is committed, because every
//! anchor up to there is then either committed or skipped for good. A node
//! never validates or produces a vertex of an epoch whose set is not final; it
//! holds such vertices as pending instead. This is what makes the set a pure
//! function of the commit sequence, identical on every node.
//!
//! A member leaves the same way: its `LeaveValidator` committed by the
//! anchor of round `a` takes it out of the set from epoch `epoch(a) + 2`
//! (the last member cannot leave). A key that left cannot register again.
//!
//! Members are weighted (`ValidatorInfo::weight`); a quorum is more than two
//! thirds of the set's total weight, counted over distinct authors: one
//! author, one vote, whatever its weight.
//!
//! A member proven to have equivocated (`evidence.rs`), by a proof committed
//! at anchor round `a`, loses anchor duty from epoch `epoch(a) + 2` on — the
//! same delay as a registration, for the same reason: the anchor of a round
//! must be the same on every node, so it may only change in an epoch not yet
//! decided. It stays a member: it still votes and its vertices still count
//! towards quorums (removing members is validator-set policy, not evidence).

use crate::genesis::ValidatorInfo;
use crate::ids::{Epoch, PublicKey, Round};
use borsh::{BorshDeserialize, BorshSerialize};
use std::collections::{BTreeMap, BTreeSet};

/// An immutable validator set, sorted by key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    members: Vec<ValidatorInfo>,
    /// Members that take turns as anchor author, sorted; all of them unless
    /// some were proven to equivocate.
    on_duty: Vec<PublicKey>,
}

impl ValidatorSet {
    /// A set from any list; duplicates keep the first entry.
    pub fn new(mut members: Vec<ValidatorInfo>) -> Self {
        members.sort_by_key(|m| m.key);
        members.dedup_by(|a, b| a.key == b.key);
        let on_duty = members.iter().map(|m| m.key).collect();
        ValidatorSet { members, on_duty }
    }

    /// The set with `off_duty` members no longer anchor authors; if that
    /// would leave nobody (more equivocators than any quorum tolerates),
    /// everyone keeps duty rather than the chain stopping.
    fn without_anchor_duty(mut self, off_duty: &BTreeSet<PublicKey>) -> Self {
        let on_duty: Vec<PublicKey> = self
            .members
            .iter()
            .map(|m| m.key)
            .filter(|k| !off_duty.contains(k))
            .collect();
        if !on_duty.is_empty() {
            self.on_duty = on_duty;
        }
        self
    }

    /// Number of validators.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// True for an empty set (never the case on a valid chain).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The sum of the members' weights.
    pub fn total_weight(&self) -> u64 {
        self.members.iter().map(|m| m.weight).sum()
    }

    /// ⌊2W/3⌋ + 1 of the total weight W: two quorums always share weight
    /// of an honest member when the faulty weigh at most ⌊(W−1)/3⌋.
    pub fn quorum(&self) -> u64 {
        2 * self.total_weight() / 3 + 1
    }

    /// W − quorum + 1: any members of this much weight include an honest
    /// one (the faulty weigh less).
    pub fn honest_support(&self) -> u64 {
        self.total_weight() - self.quorum() + 1
    }

    /// The weight of `key`, 0 for a non-member.
    pub fn weight_of(&self, key: &PublicKey) -> u64 {
        self.members
            .binary_search_by(|m| m.key.cmp(key))
            .map_or(0, |i| self.members[i].weight)
    }

    /// The summed weight of `keys`, each counted once; non-members weigh 0.
    pub fn weight_of_keys<'a>(&self, keys: impl IntoIterator<Item = &'a PublicKey>) -> u64 {
        let distinct: BTreeSet<&PublicKey> = keys.into_iter().collect();
        distinct.into_iter().map(|k| self.weight_of(k)).sum()
    }

    /// Whether `keys` (distinct members) weigh a quorum.
    pub fn is_quorum<'a>(&self, keys: impl IntoIterator<Item = &'a PublicKey>) -> bool {
        self.weight_of_keys(keys) >= self.quorum()
    }

    /// The highest round that members weighing the honest support claim
    /// to have reached (so one honest member did, if the claims are
    /// signed); `None` until they weigh that much. Non-members count 0;
    /// each key is counted once, at its highest claim.
    pub fn reached_by_honest_support(
        &self,
        claims: impl Iterator<Item = (PublicKey, Round)>,
    ) -> Option<Round> {
        let mut highest: BTreeMap<PublicKey, Round> = BTreeMap::new();
        for (k, r) in claims.filter(|(k, _)| self.contains(k)) {
            let top = highest.entry(k).or_insert(r);
            *top = (*top).max(r);
        }
        let mut by_round: Vec<(Round, u64)> = highest
            .iter()
            .map(|(k, r)| (*r, self.weight_of(k)))
            .collect();
        by_round.sort_unstable_by(|a, b| b.cmp(a));
        let support = self.honest_support();
        let mut weight = 0;
        by_round.into_iter().find_map(|(r, w)| {
            weight += w;
            (weight >= support).then_some(r)
        })
    }

    /// The fewest members whose weights reach a quorum: the heaviest
    /// first. A vertex with fewer parents cannot cite a quorum, whoever
    /// their authors are.
    pub fn fewest_for_quorum(&self) -> usize {
        let mut weights: Vec<u64> = self.members.iter().map(|m| m.weight).collect();
        weights.sort_unstable_by(|a, b| b.cmp(a));
        let quorum = self.quorum();
        let mut sum = 0;
        for (i, w) in weights.iter().enumerate() {
            sum += w;
            if sum >= quorum {
                return i + 1;
            }
        }
        weights.len()
    }

    /// Whether `key` is a member.
    pub fn contains(&self, key: &PublicKey) -> bool {
        self.members.binary_search_by(|m| m.key.cmp(key)).is_ok()
    }

    /// The members, sorted by key.
    pub fn members(&self) -> &[ValidatorInfo] {
        &self.members
    }

    /// The author of the anchor of an (even) round: members on anchor duty
    /// take turns in key order, one per anchor round.
    pub fn anchor_author(&self, round: Round) -> PublicKey {
        let slot = (round.0 / 2) % self.on_duty.len() as u64;
        self.on_duty[slot as usize]
    }

    /// Whether `key` takes turns as anchor author.
    pub fn on_anchor_duty(&self, key: &PublicKey) -> bool {
        self.on_duty.binary_search(key).is_ok()
    }
}

/// Genesis plus every committed registration, keyed by the epoch it takes
/// effect. Persisted with each commit as part of the consensus metadata.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ValidatorSchedule {
    epoch_rounds: u64,
    max_validators: u32,
    genesis: Vec<ValidatorInfo>,
    additions: BTreeMap<Epoch, Vec<ValidatorInfo>>,
    /// Proven equivocators and the epoch they lose anchor duty from.
    off_duty: BTreeMap<PublicKey, Epoch>,
    /// Members that left, by the epoch they are out from.
    removals: BTreeMap<Epoch, Vec<PublicKey>>,
}

/// Why a registration was refused (recorded as the transaction's failure).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationError {
    /// Already a member, or already registered for a later epoch.
    #[error("already a validator or already registered")]
    AlreadyRegistered,
    /// The set is at `ChainParams::max_validators`.
    #[error("validator set is full ({0} members)")]
    SetFull(u32),
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

impl ValidatorSchedule {
    /// The schedule at genesis.
    pub fn new(genesis: Vec<ValidatorInfo>, epoch_rounds: u64, max_validators: u32) -> Self {
        ValidatorSchedule {
            epoch_rounds,
            max_validators,
            genesis,
            additions: BTreeMap::new(),
            off_duty: BTreeMap::new(),
            removals: BTreeMap::new(),
        }
    }

    /// The epoch of a round.
    pub fn epoch_of(&self, round: Round) -> Epoch {
        Epoch(round.0 / self.epoch_rounds)
    }

    /// Whether the set of `epoch` is final given the last committed anchor
    /// round (see the module docs).
    pub fn is_decided(&self, epoch: Epoch, last_anchor: Option<Round>) -> bool {
        if epoch.0 <= 1 {
            return true;
        }
        let last_anchor_of_e_minus_2 = (epoch.0 - 1) * self.epoch_rounds - 2;
        last_anchor.is_some_and(|a| a.0 >= last_anchor_of_e_minus_2)
    }

    /// The set in force during `epoch` (assuming it is decided).
    pub fn set_for_epoch(&self, epoch: Epoch) -> ValidatorSet {
        let mut members = self.genesis.clone();
        for added in self.additions.range(..=epoch).flat_map(|(_, v)| v) {
            members.push(added.clone());
        }
        let gone: BTreeSet<PublicKey> = self
            .removals
            .range(..=epoch)
            .flat_map(|(_, v)| v.iter().copied())
            .collect();
        members.retain(|m| !gone.contains(&m.key));
        let off_duty: BTreeSet<PublicKey> = self
            .off_duty
            .iter()
            .filter(|(_, from)| **from <= epoch)
            .map(|(k, _)| *k)
            .collect();
        ValidatorSet::new(members).without_anchor_duty(&off_duty)
    }

    /// Takes `key`, proven to have equivocated by a proof committed at
    /// `anchor_round`, off anchor duty two epochs later. Returns that epoch,
    /// or `None` when `key` is no validator or already off duty.
    pub fn take_off_anchor_duty(&mut self, key: PublicKey, anchor_round: Round) -> Option<Epoch> {
        if !self.knows(&key) || self.off_duty.contains_key(&key) {
            return None;
        }
        let from = Epoch(self.epoch_of(anchor_round).0 + 2);
        self.off_duty.insert(key, from);
        Some(from)
    }

    /// Committed registrations that take effect after `epoch`, with the
    /// epoch each joins the set.
    pub fn pending_after(&self, epoch: Epoch) -> Vec<(Epoch, &ValidatorInfo)> {
        self.additions
            .range(Epoch(epoch.0 + 1)..)
            .flat_map(|(e, infos)| infos.iter().map(move |i| (*e, i)))
            .collect()
    }

    /// Whether `key` was taken off anchor duty (from whatever epoch).
    pub fn is_off_duty(&self, key: &PublicKey) -> bool {
        self.off_duty.contains_key(key)
    }

    /// Validators taken off anchor duty, with the epoch it took effect.
    pub fn off_anchor_duty(&self) -> impl Iterator<Item = (&PublicKey, &Epoch)> {
        self.off_duty.iter()
    }

    /// The set in force at `round`.
    pub fn set_for_round(&self, round: Round) -> ValidatorSet {
        self.set_for_epoch(self.epoch_of(round))
    }

    /// Whether `key` is a genesis validator or has a committed registration
    /// (whatever epoch it takes effect in).
    pub fn knows(&self, key: &PublicKey) -> bool {
        self.genesis
            .iter()
            .chain(self.additions.values().flatten())
            .any(|m| m.key == *key)
    }

    /// Whether `key` is a member at `epoch` or registered for a later one:
    /// a validator that counts now. Unlike [`ValidatorSchedule::knows`], a
    /// member that left is no longer one.
    pub fn counts_at(&self, key: &PublicKey, epoch: Epoch) -> bool {
        self.set_for_epoch(epoch).contains(key)
            || self.pending_after(epoch).iter().any(|(_, m)| m.key == *key)
    }

    /// Records a registration committed by the anchor of `anchor_round`.
    pub fn register(
        &mut self,
        info: ValidatorInfo,
        anchor_round: Round,
    ) -> Result<Epoch, RegistrationError> {
        let effective = Epoch(self.epoch_of(anchor_round).0 + 2);
        let known = self
            .genesis
            .iter()
            .chain(self.additions.values().flatten())
            .any(|m| m.key == info.key);
        if known {
            return Err(RegistrationError::AlreadyRegistered);
        }
        let left = self.removals.values().map(Vec::len).sum::<usize>();
        let total = (self.genesis.len() + self.additions.values().map(Vec::len).sum::<usize>())
            .saturating_sub(left);
        if total >= self.max_validators as usize {
            return Err(RegistrationError::SetFull(self.max_validators));
        }
        self.additions.entry(effective).or_default().push(info);
        Ok(effective)
    }

    /// Records that `key` leaves, by a transaction committed by the anchor
    /// of `anchor_round`: it is out of the set from epoch `epoch(a) + 2`,
    /// the first whose set is not decided yet. It must be a member of the
    /// set of that epoch as it stands, and not the last one.
    pub fn leave(&mut self, key: PublicKey, anchor_round: Round) -> Result<Epoch, LeaveError> {
        let effective = Epoch(self.epoch_of(anchor_round).0 + 2);
        let set = self.set_for_epoch(effective);
        if !set.contains(&key) {
            return Err(LeaveError::NotAMember);
        }
        if set.len() <= 1 {
            return Err(LeaveError::LastMember);
        }
        self.removals.entry(effective).or_default().push(key);
        Ok(effective)
    }

    /// Members leaving after `epoch`, with the epoch each is out from.
    pub fn leaving_after(&self, epoch: Epoch) -> Vec<(Epoch, PublicKey)> {
        self.removals
            .range(Epoch(epoch.0 + 1)..)
            .flat_map(|(e, keys)| keys.iter().map(move |k| (*e, *k)))
            .collect()
    }

    /// The first round of `epoch`.
    pub fn first_round(&self, epoch: Epoch) -> Round {
        Round(epoch.0 * self.epoch_rounds)
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
    fn quorum_is_two_thirds_plus_one() {
        let q =
            |n: usize| ValidatorSet::new((0..n).map(|i| info(&i.to_string())).collect()).quorum();
        assert_eq!([q(1), q(2), q(3), q(4), q(7), q(10)], [1, 2, 3, 3, 5, 7]);
    }

    #[test]
    fn quorums_support_and_the_fewest_parents_are_counted_in_weight() {
        let weighted = |w: &[u64]| {
            let members = w.iter().enumerate().map(|(i, w)| ValidatorInfo {
                weight: *w,
                ..info(&i.to_string())
            });
            ValidatorSet::new(members.collect())
        };
        let set = weighted(&[5, 1, 1, 1]);
        assert_eq!(
            (set.total_weight(), set.quorum(), set.honest_support()),
            (8, 6, 3)
        );
        assert_eq!(set.fewest_for_quorum(), 2);
        assert_eq!(weighted(&[1, 1, 1, 1]).fewest_for_quorum(), 3);
        let key = |i: usize| info(&i.to_string()).key;
        let heavy = set.members().iter().position(|m| m.weight == 5).unwrap();
        let heavy = set.members()[heavy].key;
        let lights: Vec<PublicKey> = (0..4).map(key).filter(|k| *k != heavy).collect();
        assert!(!set.is_quorum(&lights));
        assert!(set.is_quorum(&[heavy, lights[0]]));
        assert_eq!(set.weight_of_keys(&[heavy, heavy]), 5, "a key counts once");
        // The honest support: the heavy member alone claims more than any
        // f could, three light ones together as much.
        let claims = |c: &[(PublicKey, u64)]| {
            set.reached_by_honest_support(c.iter().map(|(k, r)| (*k, Round(*r))))
        };
        assert_eq!(claims(&[(heavy, 9), (lights[0], 3)]), Some(Round(9)));
        assert_eq!(claims(&[(lights[0], 9), (lights[1], 7)]), None);
        assert_eq!(
            claims(&[(lights[0], 9), (lights[1], 7), (lights[2], 5)]),
            Some(Round(5))
        );
    }

    #[test]
    fn registration_takes_effect_two_epochs_later_and_only_once() {
        let mut s = ValidatorSchedule::new(vec![info("a")], 10, 3);
        assert_eq!(s.register(info("b"), Round(15)), Ok(Epoch(3)));
        assert_eq!(s.set_for_round(Round(29)).len(), 1);
        assert_eq!(s.set_for_round(Round(30)).len(), 2);
        assert_eq!(
            s.register(info("b"), Round(16)),
            Err(RegistrationError::AlreadyRegistered)
        );
        assert_eq!(s.register(info("c"), Round(16)), Ok(Epoch(3)));
        assert_eq!(
            s.register(info("d"), Round(16)),
            Err(RegistrationError::SetFull(3))
        );
    }

    #[test]
    fn epoch_sets_are_decided_once_the_anchors_two_epochs_back_are() {
        let s = ValidatorSchedule::new(vec![info("a")], 10, 8);
        assert!(s.is_decided(Epoch(1), None));
        assert!(!s.is_decided(Epoch(2), Some(Round(6))));
        assert!(s.is_decided(Epoch(2), Some(Round(8))));
        assert!(!s.is_decided(Epoch(3), Some(Round(16))));
        assert!(s.is_decided(Epoch(3), Some(Round(18))));
    }

    #[test]
    fn a_proven_equivocator_loses_anchor_duty_two_epochs_after_the_proof_commits() {
        let mut s = ValidatorSchedule::new(vec![info("a"), info("b"), info("c")], 10, 8);
        let b = info("b").key;
        let authors = |s: &ValidatorSchedule, from: u64| -> BTreeSet<PublicKey> {
            (from..from + 10)
                .step_by(2)
                .map(|r| s.set_for_round(Round(r)).anchor_author(Round(r)))
                .collect()
        };
        assert_eq!(s.take_off_anchor_duty(b, Round(12)), Some(Epoch(3)));
        assert_eq!(s.take_off_anchor_duty(b, Round(14)), None, "once");
        assert_eq!(s.take_off_anchor_duty(info("z").key, Round(14)), None);
        assert!(authors(&s, 20).contains(&b), "epoch 2 is decided already");
        assert!(!authors(&s, 30).contains(&b));
        assert_eq!(authors(&s, 30).len(), 2);
        let set = s.set_for_round(Round(30));
        assert!(set.contains(&b) && !set.on_anchor_duty(&b), "still votes");
        assert_eq!(set.quorum(), 3);
    }

    #[test]
    fn a_member_leaves_two_epochs_after_its_leave_commits_but_never_the_last() {
        let mut s = ValidatorSchedule::new(vec![info("a"), info("b")], 10, 8);
        let (a, b) = (info("a").key, info("b").key);
        assert_eq!(s.leave(b, Round(12)), Ok(Epoch(3)));
        assert_eq!(s.leave(b, Round(14)), Err(LeaveError::NotAMember), "once");
        assert_eq!(
            s.leave(info("z").key, Round(14)),
            Err(LeaveError::NotAMember)
        );
        assert_eq!(s.set_for_round(Round(29)).len(), 2);
        assert_eq!(s.set_for_round(Round(30)).len(), 1);
        assert!(!s.set_for_round(Round(30)).contains(&b));
        assert_eq!(s.leave(a, Round(14)), Err(LeaveError::LastMember));
        assert_eq!(s.leaving_after(Epoch(2)), vec![(Epoch(3), b)]);
        assert!(s.leaving_after(Epoch(3)).is_empty());
        assert!(s.counts_at(&b, Epoch(2)) && !s.counts_at(&b, Epoch(3)));
        assert!(s.knows(&b), "it cannot register again");
        // Its seat is free again.
        let mut full = ValidatorSchedule::new(vec![info("a"), info("b")], 10, 2);
        assert_eq!(full.leave(b, Round(0)), Ok(Epoch(2)));
        assert_eq!(full.register(info("c"), Round(0)), Ok(Epoch(2)));
    }

    #[test]
    fn with_every_member_off_duty_everyone_keeps_it() {
        let mut s = ValidatorSchedule::new(vec![info("a")], 10, 8);
        let _ = s.take_off_anchor_duty(info("a").key, Round(0));
        assert_eq!(
            s.set_for_round(Round(40)).anchor_author(Round(40)),
            info("a").key
        );
    }

    #[test]
    fn anchors_rotate_over_members() {
        let set = ValidatorSet::new(vec![info("a"), info("b")]);
        assert_ne!(set.anchor_author(Round(0)), set.anchor_author(Round(2)));
        assert_eq!(set.anchor_author(Round(0)), set.anchor_author(Round(4)));
    }
}
