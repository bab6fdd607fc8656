//! Execution tests: effects, failures, atomicity, expiry, duplicates.

use super::*;
use crate::crypto::Keypair;
use crate::ids::Epoch;
use crate::store::{MemStore, WriteBatch};
use crate::tx::TxBody;

struct World {
    store: MemStore,
    schedule: ValidatorSchedule,
    params: ChainParams,
}

impl World {
    /// No genesis members, open admission: registrations admit.
    fn new() -> Self {
        let mut w = World::with_members(&[]);
        w.schedule.policy.admission = crate::admission::Admission::Open;
        w
    }

    /// `members` of weight 1 at genesis, approval admission.
    fn with_members(members: &[&Keypair]) -> Self {
        let params = ChainParams::default();
        let genesis = members
            .iter()
            .map(|k| crate::genesis::ValidatorInfo::new(k.public(), "m:1"))
            .collect();
        World {
            store: MemStore::new(),
            schedule: ValidatorSchedule::new(genesis, params.epoch_rounds, params.max_validators),
            params,
        }
    }

    /// Executes `txs` as one commit at `round` and applies the writes.
    fn commit(&mut self, round: u64, txs: &[Transaction]) -> ExecStats {
        let mut stats = ExecStats::default();
        let mut ex = Executor::new(&self.store);
        for tx in txs {
            ex.execute(
                tx,
                tx.hash(),
                Round(round),
                &mut self.schedule,
                &self.params,
                &mut stats,
            )
            .unwrap();
        }
        let mut batch = WriteBatch::new(true);
        batch.ops = ex.into_writes();
        self.store.write(batch).unwrap();
        stats
    }

    fn outcome(&self, tx: &Transaction) -> TxOutcome {
        self.store
            .tx_outcome(&tx.hash())
            .unwrap()
            .expect("executed")
    }
}

fn tx(key: &Keypair, nonce: u64, ops: Vec<Operation>) -> Transaction {
    TxBody {
        chain_id: Hash([0; 32]),
        sender: key.public(),
        nonce,
        expiry: Round(100),
        ops,
    }
    .sign(key)
}

#[test]
fn create_update_transfer_delete_follow_owner_and_version() {
    let (alice, bob) = (Keypair::from_label("alice"), Keypair::from_label("bob"));
    let mut w = World::new();
    let create = tx(
        &alice,
        1,
        vec![Operation::Create {
            data: b"a".to_vec(),
        }],
    );
    let id = created_object_id(&create.hash(), 0);
    w.commit(2, &[create]);
    let update = tx(
        &alice,
        2,
        vec![Operation::Update {
            id,
            version: 1,
            data: b"b".to_vec(),
        }],
    );
    let give = tx(
        &alice,
        3,
        vec![Operation::Transfer {
            id,
            version: 2,
            new_owner: bob.public(),
        }],
    );
    let stats = w.commit(4, &[update, give]);
    assert_eq!(stats.committed, 2);
    let obj = w.store.get_object(&id).unwrap().unwrap();
    assert_eq!(
        (obj.version, obj.owner, obj.data.as_slice()),
        (3, bob.public(), &b"b"[..])
    );
    let steal = tx(&alice, 4, vec![Operation::Delete { id, version: 3 }]);
    let delete = tx(&bob, 5, vec![Operation::Delete { id, version: 3 }]);
    w.commit(6, &[steal.clone(), delete]);
    assert!(
        matches!(w.outcome(&steal), TxOutcome::Failed { reason, .. } if reason.contains("owned by"))
    );
    assert_eq!(w.store.get_object(&id).unwrap(), None);
}

#[test]
fn a_failing_operation_undoes_the_whole_transaction() {
    let alice = Keypair::from_label("alice");
    let mut w = World::new();
    let bad = tx(
        &alice,
        1,
        vec![
            Operation::Create {
                data: b"x".to_vec(),
            },
            Operation::Update {
                id: ObjectId([7; 32]),
                version: 1,
                data: vec![],
            },
        ],
    );
    let stats = w.commit(2, std::slice::from_ref(&bad));
    assert_eq!((stats.committed, stats.failed), (0, 1));
    assert_eq!(w.store.objects().count(), 0);
    assert!(
        matches!(w.outcome(&bad), TxOutcome::Failed { reason, .. } if reason.contains("operation 1"))
    );
}

#[test]
fn stale_versions_and_expired_transactions_fail_with_reasons() {
    let alice = Keypair::from_label("alice");
    let mut w = World::new();
    let create = tx(&alice, 1, vec![Operation::Create { data: vec![] }]);
    let id = created_object_id(&create.hash(), 0);
    w.commit(2, &[create]);
    let stale = tx(
        &alice,
        2,
        vec![Operation::Update {
            id,
            version: 9,
            data: vec![],
        }],
    );
    let mut late = tx(&alice, 3, vec![Operation::Create { data: vec![] }]);
    late.body.expiry = Round(3);
    let late = late.body.sign(&alice);
    w.commit(4, &[stale.clone(), late.clone()]);
    assert!(
        matches!(w.outcome(&stale), TxOutcome::Failed { reason, .. } if reason.contains("version 1"))
    );
    assert!(
        matches!(w.outcome(&late), TxOutcome::Failed { reason, .. } if reason.contains("expired"))
    );
}

#[test]
fn a_transaction_executes_at_most_once() {
    let alice = Keypair::from_label("alice");
    let mut w = World::new();
    let create = tx(&alice, 1, vec![Operation::Create { data: vec![] }]);
    let first = w.commit(2, &[create.clone(), create.clone()]);
    assert_eq!((first.committed, first.duplicates), (1, 1));
    let again = w.commit(4, std::slice::from_ref(&create));
    assert_eq!((again.committed, again.duplicates), (0, 1));
    assert_eq!(w.outcome(&create), TxOutcome::Committed { round: Round(2) });
}

#[test]
fn registration_changes_the_schedule_only_when_the_transaction_succeeds() {
    let alice = Keypair::from_label("alice");
    let mut w = World::new();
    let register = tx(
        &alice,
        1,
        vec![Operation::RegisterValidator {
            address: "a:1".into(),
        }],
    );
    w.commit(2, &[register]);
    assert!(w
        .schedule
        .set_for_round(Round(2 * w.params.epoch_rounds))
        .contains(&alice.public()));
    let bob = Keypair::from_label("bob");
    let failing = tx(
        &bob,
        2,
        vec![
            Operation::RegisterValidator {
                address: "b:1".into(),
            },
            Operation::Delete {
                id: ObjectId([1; 32]),
                version: 1,
            },
        ],
    );
    w.commit(4, &[failing]);
    assert!(!w
        .schedule
        .set_for_round(Round(10 * w.params.epoch_rounds))
        .contains(&bob.public()));
}

#[test]
fn a_member_leaves_by_transaction_and_a_stranger_cannot() {
    let (alice, bob) = (Keypair::from_label("alice"), Keypair::from_label("bob"));
    let mut w = World::new();
    for (k, nonce) in [(&alice, 1), (&bob, 2)] {
        let register = tx(
            k,
            nonce,
            vec![Operation::RegisterValidator {
                address: "a:1".into(),
            }],
        );
        w.commit(2, &[register]);
    }
    let later = Round(4 * w.params.epoch_rounds);
    assert_eq!(w.schedule.set_for_round(later).len(), 2);
    let leave = tx(&bob, 3, vec![Operation::LeaveValidator]);
    let stats = w.commit(2 * w.params.epoch_rounds, &[leave]);
    assert_eq!(stats.committed, 1);
    assert!(!w.schedule.set_for_round(later).contains(&bob.public()));
    let carol = Keypair::from_label("carol");
    let stranger = tx(&carol, 4, vec![Operation::LeaveValidator]);
    let stats = w.commit(2 * w.params.epoch_rounds, &[stranger]);
    assert_eq!(stats.failed, 1, "not a member: the transaction fails");
    let last = tx(&alice, 5, vec![Operation::LeaveValidator]);
    let stats = w.commit(2 * w.params.epoch_rounds, &[last]);
    assert_eq!(stats.failed, 1, "the last validator cannot leave");
}

#[test]
fn under_approval_a_registration_waits_until_members_weighing_a_quorum_approve() {
    let members: Vec<Keypair> = (0..4)
        .map(|i| Keypair::from_label(&format!("m{i}")))
        .collect();
    let mut w = World::with_members(&members.iter().collect::<Vec<_>>());
    let (carol, stranger) = (
        Keypair::from_label("carol"),
        Keypair::from_label("stranger"),
    );
    let register = Operation::RegisterValidator {
        address: "c:1".into(),
    };
    assert_eq!(w.commit(2, &[tx(&carol, 1, vec![register])]).committed, 1);
    let far = Round(10 * w.params.epoch_rounds);
    assert!(!w.schedule.set_for_round(far).contains(&carol.public()));
    assert_eq!(w.schedule.candidates_at(Epoch(0)).count(), 1);
    let approve = || Operation::ApproveValidator {
        candidate: carol.public(),
    };
    let stats = w.commit(4, &[tx(&stranger, 2, vec![approve()])]);
    assert_eq!(stats.failed, 1, "only members approve");
    // Two of four (quorum 3): not yet; the same member twice counts once.
    for (k, nonce) in [(&members[0], 3), (&members[1], 4), (&members[1], 5)] {
        assert_eq!(w.commit(4, &[tx(k, nonce, vec![approve()])]).committed, 1);
    }
    assert!(!w.schedule.set_for_round(far).contains(&carol.public()));
    // The third: admitted, two epochs after the approving commit.
    let at = 3 * w.params.epoch_rounds;
    assert_eq!(
        w.commit(at, &[tx(&members[2], 6, vec![approve()])])
            .committed,
        1
    );
    assert!(!w
        .schedule
        .set_for_round(Round(at + 2 * w.params.epoch_rounds - 1))
        .contains(&carol.public()));
    assert!(w
        .schedule
        .set_for_round(Round(at + 2 * w.params.epoch_rounds))
        .contains(&carol.public()));
    assert_eq!(w.schedule.candidates_at(Epoch(3)).count(), 0);
    let again = w.commit(at, &[tx(&members[3], 7, vec![approve()])]);
    assert_eq!(again.failed, 1, "admitted: no longer a candidate");
}

/// The expiry round is the last round at which a transaction may commit
/// (killed mutant: `round > expiry` weakened to `>=`).
#[test]
fn a_transaction_commits_at_its_expiry_round_and_not_after() {
    let alice = Keypair::from_label("alice");
    let mut w = World::new();
    let mut on_time = tx(&alice, 1, vec![Operation::Create { data: vec![] }]);
    on_time.body.expiry = Round(4);
    let on_time = on_time.body.sign(&alice);
    let mut late = tx(&alice, 2, vec![Operation::Create { data: vec![] }]);
    late.body.expiry = Round(3);
    let late = late.body.sign(&alice);
    w.commit(4, &[on_time.clone(), late.clone()]);
    assert_eq!(
        w.outcome(&on_time),
        TxOutcome::Committed { round: Round(4) }
    );
    assert!(matches!(w.outcome(&late), TxOutcome::Failed { .. }));
}
