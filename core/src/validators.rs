//! The validator set and how it changes over epochs.
//!
//! The set for epoch 0 and 1 is the genesis set. A member admitted by a
//! commit of the anchor of round `a` (`set_changes.rs`: the registration
//! under open admission, the approval completing a quorum otherwise) joins
//! the set at the start of epoch `epoch(a) + 2`, or later if the churn bound
//! is reached there. The two-epoch delay gives every node time to *decide* the
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

use crate::admission::Candidates;
use crate::genesis::ValidatorInfo;
use crate::ids::{Epoch, PublicKey, Round};
use crate::params::SetPolicy;
use borsh::{BorshDeserialize, BorshSerialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

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

    /// Where `key` sits among the sorted members, if it is one.
    fn position(&self, key: &PublicKey) -> Option<usize> {
        self.members.binary_search_by(|m| m.key.cmp(key)).ok()
    }

    /// The weight of `key`, 0 for a non-member.
    pub fn weight_of(&self, key: &PublicKey) -> u64 {
        self.position(key).map_or(0, |i| self.members[i].weight)
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
        // Each member's highest claim, by its place in the sorted members:
        // this runs after every input a node handles (`trusted_best_round`),
        // so one search per claim and no map (issue 14: 3% of a 20-node
        // simulation's time).
        let mut highest: Vec<Option<Round>> = vec![None; self.members.len()];
        for (k, r) in claims {
            if let Some(i) = self.position(&k) {
                highest[i] = highest[i].max(Some(r));
            }
        }
        let mut by_round: Vec<(Round, u64)> = highest
            .iter()
            .zip(&self.members)
            .filter_map(|(r, m)| Some(((*r)?, m.weight)))
            .collect();
        by_round.sort_unstable_by(|a, b| b.cmp(a));
        let support = self.honest_support();
        let mut weight = 0;
        by_round.into_iter().find_map(|(r, w)| {
            weight += w;
            (weight >= support).then_some(r)
        })
    }

    /// The least number of members such that *any* that many weigh the
    /// honest support (the lightest first): where only authors are
    /// counted (the snapshot buffer), that many distinct members include
    /// an honest one whatever their weights. W − quorum + 1 when all weigh
    /// the same.
    pub fn heads_for_honest_support(&self) -> usize {
        let mut weights: Vec<u64> = self.members.iter().map(|m| m.weight).collect();
        weights.sort_unstable();
        let support = self.honest_support();
        let mut sum = 0;
        for (i, w) in weights.iter().enumerate() {
            sum += w;
            if sum >= support {
                return i + 1;
            }
        }
        weights.len().max(1)
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
        self.position(key).is_some()
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
    pub(crate) epoch_rounds: u64,
    pub(crate) max_validators: u32,
    pub(crate) genesis: Vec<ValidatorInfo>,
    pub(crate) additions: BTreeMap<Epoch, Vec<ValidatorInfo>>,
    /// Proven equivocators and the epoch they lose anchor duty from.
    pub(crate) off_duty: BTreeMap<PublicKey, Epoch>,
    /// Members that left or were removed, by the epoch they are out from.
    pub(crate) removals: BTreeMap<Epoch, Vec<PublicKey>>,
    /// Admission, churn and inactivity rules (from the genesis).
    pub(crate) policy: SetPolicy,
    /// Registrations waiting for approval (`admission.rs`).
    pub(crate) candidates: Candidates,
    /// For each member, the latest epoch with a committed vertex by it (or
    /// the epoch it joined): the clock of inactivity removal.
    pub(crate) last_active: BTreeMap<PublicKey, Epoch>,
    /// The sets of recent epochs, each computed once (not persisted).
    #[borsh(skip)]
    pub(crate) memo: SetMemo,
}

/// Epochs whose sets [`SetMemo`] keeps: the current one, the one before
/// (parents, votes), the next (epoch votes), and a few asked for by
/// attestations and the pruning floor.
const MEMO_EPOCHS: usize = 8;

/// The validator sets of recent epochs, computed once each. A set is asked
/// for with every vertex checked, every vote counted and every anchor
/// decided, and computing one clones the members and sorts them: that was
/// a third of a 50-node simulation's time (allocations, and the key
/// comparisons of the sort; issue 14). A set is a function of the schedule,
/// so every change to the schedule's membership clears the memo
/// ([`SetMemo::clear`]; three places make such changes: registrations
/// taking effect, leaves and removals, anchor duty). Not part of the
/// schedule's value: a copy or a decoded schedule starts empty, and two
/// schedules compare equal whatever their memos hold.
#[derive(Default)]
pub(crate) struct SetMemo(std::sync::Mutex<BTreeMap<Epoch, Arc<ValidatorSet>>>);

impl SetMemo {
    /// The set of `epoch`, from memory or made by `make`.
    fn get_or(&self, epoch: Epoch, make: impl FnOnce() -> ValidatorSet) -> Arc<ValidatorSet> {
        let mut sets = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(set) = sets.get(&epoch) {
            return set.clone();
        }
        let set = Arc::new(make());
        if sets.len() >= MEMO_EPOCHS {
            sets.pop_first();
        }
        sets.insert(epoch, set.clone());
        set
    }

    /// Forgets every set: the membership changed.
    pub(crate) fn clear(&self) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

impl Clone for SetMemo {
    fn clone(&self) -> Self {
        SetMemo::default()
    }
}

impl PartialEq for SetMemo {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for SetMemo {}

impl std::fmt::Debug for SetMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SetMemo")
    }
}

impl ValidatorSchedule {
    /// A schedule from `genesis` members, with the default policy.
    pub fn new(genesis: Vec<ValidatorInfo>, epoch_rounds: u64, max_validators: u32) -> Self {
        ValidatorSchedule {
            epoch_rounds,
            max_validators,
            genesis,
            additions: BTreeMap::new(),
            off_duty: BTreeMap::new(),
            removals: BTreeMap::new(),
            policy: SetPolicy::from(&crate::genesis::ChainParams::default()),
            candidates: Candidates::default(),
            last_active: BTreeMap::new(),
            memo: SetMemo::default(),
        }
    }

    /// The schedule at a chain's genesis.
    pub fn at_genesis(genesis: &crate::genesis::Genesis) -> Self {
        let p = &genesis.params;
        ValidatorSchedule {
            policy: SetPolicy::from(p),
            ..Self::new(genesis.validators.clone(), p.epoch_rounds, p.max_validators)
        }
    }

    /// The admission, churn and inactivity rules it follows.
    pub fn policy(&self) -> &SetPolicy {
        &self.policy
    }

    /// Registrations waiting for approval as of `epoch` (expired ones are
    /// dropped at the next registration or approval; they are not listed).
    pub fn candidates_at(
        &self,
        epoch: Epoch,
    ) -> impl Iterator<Item = &crate::admission::Candidate> {
        let expiry = self.policy.candidate_expiry_epochs;
        self.candidates
            .iter()
            .filter(move |c| c.since.0.saturating_add(expiry) >= epoch.0)
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
    pub fn set_for_epoch(&self, epoch: Epoch) -> Arc<ValidatorSet> {
        self.memo.get_or(epoch, || self.compute_set(epoch))
    }

    /// The set of `epoch`, computed from the genesis and the changes.
    fn compute_set(&self, epoch: Epoch) -> ValidatorSet {
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
        self.memo.clear();
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
    pub fn set_for_round(&self, round: Round) -> Arc<ValidatorSet> {
        self.set_for_epoch(self.epoch_of(round))
    }

    /// Whether `key` is a genesis validator or was admitted (whatever epoch
    /// it takes effect in, and even if it left since); a candidate waiting
    /// for approval is not.
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
#[path = "validators_tests.rs"]
mod tests;
