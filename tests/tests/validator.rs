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
    let key_file = node2.data.join("node.key");
    let key_file = key_file.to_str().unwrap();
    bluepods([
        "validator",
        "leave",
        "--wait",
        "--http",
        &http,
        "--key",
        key_file,
    ]);
    let set = api(&boot).validators().unwrap();
    assert!(
        set.leaving
            .iter()
            .any(|l| l.key == key2 && l.from_epoch > set.epoch),
        "{set:?}"
    );
}

/// `bluepods validator register`, as an operator runs it: the registration
/// commits and `GET /v1/validators` lists it as pending, to join the set
/// two epochs later. (The key runs no node: once it joined, this
/// one-validator network could not reach a quorum — the admission gap
/// issue 13 closes; the test stops before.)
#[test]
fn a_registration_from_the_cli_commits_and_is_listed_as_pending() {
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
    let pending: Vec<_> = set.pending.iter().filter(|p| p.key == candidate).collect();
    assert_eq!(pending.len(), 1, "{set:?}");
    assert_eq!(pending[0].address, "127.0.0.1:1");
    assert!(pending[0].from_epoch > set.epoch);
}
