//! Seed 000 phase 4, test 1, with real processes: a second node started in
//! validator mode syncs, registers, is approved by the bootstrap (a
//! devnet's bootstrap approves the candidates connected to it), joins the
//! set at an epoch boundary and produces; both nodes see each other's
//! vertices and commits go on.

use bluepods_core::Keypair;
use bluepods_tests::*;
use std::time::Duration;

#[test]
fn a_second_validator_joins_and_both_keep_committing() {
    let dir = tempfile::tempdir().unwrap();
    let boot = bootstrap(dir.path(), "bootstrap");
    assert!(wait_committed(&boot, 4, Duration::from_secs(20)));
    let node2 = validator(dir.path(), "node2", &boot.quic);
    // `GET /v1/validators`: the registration is listed as pending (it
    // takes effect two epochs after its commit), then as a member.
    let key2 = wait_until_some(Duration::from_secs(30), || {
        api(&node2).status().ok().map(|s| s.node_key)
    });
    let pending = wait_until(Duration::from_secs(60), || {
        api(&boot)
            .validators()
            .is_ok_and(|v| v.pending.iter().any(|p| p.key == key2))
    });
    assert!(pending, "{}", tail(&node2.log_text(), 30));
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
    let set = api(&boot).validators().unwrap();
    assert_eq!(set.members.len(), 2);
    assert_eq!(set.quorum, 2);
    assert!(set
        .members
        .iter()
        .any(|m| m.key == key2 && m.on_anchor_duty));
    // `bluepods validator list`, as an operator runs it.
    let http = boot.http.clone().unwrap();
    let (text, _) = bluepods(["validator", "list", "--http", &http]);
    assert!(text.contains("2 members, weight 2, quorum 2"), "{text}");
    assert!(text.contains(&key2.to_string()), "{text}");

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

    // `bluepods validator leave` with the node's own key: the leave
    // commits and the set lists node2 as leaving two epochs on.
    leave_with_own_key(&node2, &http);
    let set = api(&boot).validators().unwrap();
    assert!(
        set.leaving
            .iter()
            .any(|l| l.key == key2 && l.from_epoch > set.epoch),
        "{set:?}"
    );
}

/// Issue 13, end to end: `bluepods validator register` from a key that
/// runs no node commits, and the key waits for approval: the bootstrap
/// approves on its own only candidates it is connected to. Commits go on
/// through three epochs (before admission, this registration made the
/// quorum 2 of 2 on a one-validator network, and commits stopped for good).
/// Then `bluepods validator approve` with the bootstrap's key admits it: it
/// is listed as joining two epochs on. (Once it joined, this network could
/// not reach a quorum: the test stops before.)
#[test]
fn a_registration_from_a_key_that_runs_no_node_waits_for_approval_while_commits_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let boot = bootstrap(dir.path(), "bootstrap");
    assert!(wait_committed(&boot, 2, Duration::from_secs(20)));
    let http = boot.http.clone().unwrap();
    let key = dir.path().join("candidate.key");
    let (text, err) = bluepods([
        "validator",
        "register",
        "--wait",
        "--http",
        &http,
        "--address",
        "127.0.0.1:1",
        "--key",
        key.to_str().unwrap(),
    ]);
    assert!(text.contains("\"committed\""), "{text}");
    // The CLI created the key and said which it is.
    let hex = err
        .split("(public key ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .unwrap_or_else(|| panic!("no key in {err}"));
    let candidate = bluepods_core::PublicKey::from_hex(hex).unwrap();
    let set = api(&boot).validators().unwrap();
    assert_eq!(set.admission, "approval");
    let waiting: Vec<_> = set
        .candidates
        .iter()
        .filter(|c| c.key == candidate)
        .collect();
    assert_eq!(waiting.len(), 1, "{set:?}");
    assert_eq!(waiting[0].address, "127.0.0.1:1");
    assert!(set.pending.is_empty(), "{set:?}");
    // Three epochs of commits.
    let from = api(&boot).status().unwrap().last_committed_round.unwrap().0;
    assert!(wait_committed(
        &boot,
        from + 3 * set.epoch_rounds,
        Duration::from_secs(60)
    ));
    let set = api(&boot).validators().unwrap();
    assert_eq!(set.members.len(), 1);
    assert!(set
        .candidates
        .iter()
        .any(|c| c.key == candidate && c.approvals.is_empty()));
    let (table, _) = bluepods(["validator", "list", "--http", &http]);
    assert!(table.contains("candidates waiting for approval"), "{table}");
    assert!(table.contains(hex), "{table}");

    // The operator approves it with the bootstrap's key.
    let boot_key = boot.data.join("node.key");
    let (text, _) = bluepods([
        "validator",
        "approve",
        "--wait",
        "--http",
        &http,
        "--key",
        boot_key.to_str().unwrap(),
        "--candidate",
        hex,
    ]);
    assert!(text.contains("\"committed\""), "{text}");
    let set = api(&boot).validators().unwrap();
    let pending: Vec<_> = set.pending.iter().filter(|p| p.key == candidate).collect();
    assert_eq!(pending.len(), 1, "{set:?}");
    assert!(pending[0].from_epoch > set.epoch);
    assert!(set.candidates.is_empty(), "{set:?}");
}
