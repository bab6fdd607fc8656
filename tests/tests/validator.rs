//! Seed 000 phase 4, test 1, with real processes: a second node started in
//! validator mode syncs, registers, joins the set at an epoch boundary and
//! produces; both nodes see each other's vertices and commits go on.

use bluepods_core::Keypair;
use bluepods_tests::*;
use std::time::Duration;

#[test]
fn a_second_validator_joins_and_both_keep_committing() {
    let dir = tempfile::tempdir().unwrap();
    let boot = bootstrap(dir.path(), "bootstrap");
    assert!(wait_committed(&boot, 4, Duration::from_secs(20)));
    let node2 = validator(dir.path(), "node2", &boot.quic);
    let member = wait_until(Duration::from_secs(60), || {
        api(&node2)
            .status()
            .is_ok_and(|s| s.is_member && s.own_last_round.is_some())
    });
    assert!(member, "{}", tail(&node2.log_text(), 30));
    assert!(node2
        .log_text()
        .contains("[VALIDATOR] registering as a validator"));
    assert_eq!(api(&boot).status().unwrap().validators, 2);

    // Both produce, both commit, and a transaction through the new
    // validator commits on both.
    let before = api(&boot).status().unwrap();
    let tx = create_txs(&node2, &Keypair::from_label("e2e-validator"), 1).remove(0);
    let hash = api(&node2).submit(&tx).unwrap();
    assert!(wait_until(Duration::from_secs(30), || {
        is_committed(&boot, &hash) && is_committed(&node2, &hash)
    }));
    let produced_by_2 = |n: &NodeProcess| api(n).status().unwrap().own_last_round.unwrap().0;
    let r2 = produced_by_2(&node2);
    assert!(wait_committed(
        &boot,
        before.last_committed_round.unwrap().0 + 10,
        Duration::from_secs(30)
    ));
    assert!(
        produced_by_2(&node2) > r2,
        "the new validator keeps producing"
    );
    assert!(produced_by_2(&boot) > before.own_last_round.unwrap().0);
}
