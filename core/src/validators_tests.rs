//! Unit tests of `validators.rs`.

use super::*;
use crate::crypto::Keypair;
use crate::set_changes::{LeaveError, Registered, RegistrationError};

fn info(label: &str) -> ValidatorInfo {
    ValidatorInfo::new(Keypair::from_label(label).public(), format!("{label}:1"))
}

#[test]
fn quorum_is_two_thirds_plus_one() {
    let q = |n: usize| ValidatorSet::new((0..n).map(|i| info(&i.to_string())).collect()).quorum();
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
    // Any three members weigh the support of 3 (the light ones: 3);
    // two light ones do not.
    assert_eq!(set.heads_for_honest_support(), 3);
    assert_eq!(weighted(&[1, 1, 1, 1]).heads_for_honest_support(), 2);
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

#[test]
fn candidates_are_bounded_and_an_expired_one_frees_its_place() {
    let mut s = ValidatorSchedule::new(vec![info("a")], 10, 64);
    s.policy.max_candidates = 2;
    s.policy.candidate_expiry_epochs = 3;
    for c in ["b", "c"] {
        assert_eq!(
            s.request_admission(info(c), Round(5)),
            Ok(Registered::Candidate)
        );
    }
    assert_eq!(
        s.request_admission(info("b"), Round(5)),
        Err(RegistrationError::AlreadyRegistered)
    );
    assert_eq!(
        s.request_admission(info("d"), Round(5)),
        Err(RegistrationError::CandidatesFull(2))
    );
    assert_eq!(
        s.request_admission(info("a"), Round(5)),
        Err(RegistrationError::AlreadyRegistered)
    );
    // Epoch 4: "b" and "c" (epoch 0) are past their three epochs.
    assert_eq!(
        s.request_admission(info("d"), Round(40)),
        Ok(Registered::Candidate)
    );
    assert_eq!(s.candidates_at(Epoch(4)).count(), 1);
}

#[test]
fn no_more_than_the_churn_bound_of_changes_take_effect_at_one_boundary() {
    let mut s = ValidatorSchedule::new(vec![info("a"), info("b")], 10, 64);
    s.policy.max_churn_per_epoch = 2;
    assert_eq!(s.register(info("c"), Round(5)), Ok(Epoch(2)));
    assert_eq!(s.leave(info("b").key, Round(5)), Ok(Epoch(2)));
    // The boundary of epoch 2 is full: the next changes wait.
    assert_eq!(s.register(info("d"), Round(5)), Ok(Epoch(3)));
    assert_eq!(s.leave(info("a").key, Round(6)), Ok(Epoch(3)));
    assert_eq!(s.set_for_epoch(Epoch(2)).len(), 2);
    let keys: Vec<_> = s
        .set_for_epoch(Epoch(3))
        .members()
        .iter()
        .map(|m| m.key)
        .collect();
    let mut want = vec![info("c").key, info("d").key];
    want.sort();
    assert_eq!(keys, want);
}

#[test]
fn a_member_without_committed_vertices_for_too_long_is_removed_never_the_last() {
    let mut s = ValidatorSchedule::new(vec![info("a"), info("b"), info("c")], 10, 64);
    s.policy.inactive_epochs_max = 3;
    for epoch in 0..6 {
        s.record_activity(info("a").key, Round(epoch * 10));
    }
    s.record_activity(info("c").key, Round(20));
    // Epoch 3: "b" was last active at 0 — three epochs, not more.
    assert_eq!(s.remove_inactive(Round(30)), vec![]);
    assert_eq!(
        s.remove_inactive(Round(40)),
        vec![(info("b").key, Epoch(6))]
    );
    assert_eq!(s.remove_inactive(Round(41)), vec![], "once");
    // Epoch 6: "c" (last active at 2) goes too; "a" stays.
    assert_eq!(
        s.remove_inactive(Round(60)),
        vec![(info("c").key, Epoch(8))]
    );
    let mut lone = ValidatorSchedule::new(vec![info("z")], 10, 64);
    lone.policy.inactive_epochs_max = 1;
    assert_eq!(
        lone.remove_inactive(Round(100)),
        vec![],
        "the last member stays"
    );
    // An admitted member's clock starts when it joins.
    assert_eq!(s.register(info("d"), Round(60)), Ok(Epoch(8)));
    s.record_activity(info("a").key, Round(120));
    assert_eq!(s.remove_inactive(Round(110)), vec![]);
    assert_eq!(
        s.remove_inactive(Round(120)),
        vec![(info("d").key, Epoch(14))]
    );
}

/// Review finding (issue 13): the duplicate check ran before expiry, so
/// a registration that expired answered `AlreadyRegistered` to every new
/// attempt by the same key until some other key's registration happened
/// to purge it.
#[test]
fn a_key_whose_registration_expired_can_register_again() {
    let mut s = ValidatorSchedule::new(vec![info("a")], 10, 64);
    s.policy.candidate_expiry_epochs = 2;
    assert_eq!(
        s.request_admission(info("b"), Round(5)),
        Ok(Registered::Candidate)
    );
    assert_eq!(
        s.request_admission(info("b"), Round(15)),
        Err(RegistrationError::AlreadyRegistered),
        "still waiting"
    );
    assert_eq!(
        s.request_admission(info("b"), Round(35)),
        Ok(Registered::Candidate)
    );
    assert_eq!(
        s.candidates_at(Epoch(3)).next().map(|c| c.since),
        Some(Epoch(3))
    );
}

/// Issue 14: sets are remembered per epoch (`SetMemo`), and every change
/// of membership must be seen by the next question. Each set is asked for
/// first, then changed by a registration, a leave and a proof of
/// equivocation in turn; a memo that kept its answers would fail here. A
/// copy and a decoded schedule give the same sets.
#[test]
fn a_remembered_set_follows_every_change_of_membership() {
    let mut s = ValidatorSchedule::new(vec![info("a"), info("b"), info("c")], 10, 8);
    let (b, d) = (info("b").key, info("d").key);
    let at = Round(30);
    assert_eq!(s.set_for_round(at).len(), 3);
    assert_eq!(s.register(info("d"), Round(12)), Ok(Epoch(3)));
    assert!(s.set_for_round(at).contains(&d), "registration seen");
    assert_eq!(s.leave(b, Round(12)), Ok(Epoch(3)));
    assert!(!s.set_for_round(at).contains(&b), "leave seen");
    let a = info("a").key;
    assert!(s.set_for_round(at).on_anchor_duty(&a));
    assert_eq!(s.take_off_anchor_duty(a, Round(12)), Some(Epoch(3)));
    assert!(!s.set_for_round(at).on_anchor_duty(&a), "anchor duty seen");
    let copy = s.clone();
    let decoded = ValidatorSchedule::try_from_slice(&borsh::to_vec(&s).unwrap()).unwrap();
    for other in [&copy, &decoded] {
        assert_eq!(other, &s);
        assert_eq!(
            other.set_for_round(at).members(),
            s.set_for_round(at).members()
        );
    }
}
