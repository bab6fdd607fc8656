//! Seed 000 phase 1, end to end: a bootstrap and a listener as real processes.

use bluepods_core::Keypair;
use bluepods_tests::*;
use std::collections::BTreeSet;
use std::time::Duration;

#[test]
fn a_listener_receives_every_vertex_the_bootstrap_produces_and_produces_none() {
    let dir = tempfile::tempdir().unwrap();
    let mut boot = bootstrap(dir.path(), "bootstrap");
    assert!(
        wait_committed(&boot, 4, Duration::from_secs(20)),
        "{}",
        tail(&boot.log_text(), 20)
    );
    let mut lis = listener(dir.path(), "listener", &boot.quic.clone());
    let live = wait_until(Duration::from_secs(20), || {
        api(&lis)
            .status()
            .is_ok_and(|s| s.phase == bluepods_core::SyncPhase::Live)
    });
    assert!(live, "{}", tail(&lis.log_text(), 20));
    assert!(boot
        .log_text()
        .contains("[VALIDATOR] created genesis chain_id="));

    // Transactions through both nodes: the listener forwards its share.
    let key = Keypair::from_label("e2e-alice");
    let txs = create_txs(&boot, &key, 12);
    let mut hashes = Vec::new();
    for (i, tx) in txs.iter().enumerate() {
        let via = if i % 3 == 0 { &lis } else { &boot };
        hashes.push(
            api(via)
                .submit(tx)
                .unwrap_or_else(|e| panic!("submit via {}: {e}", via.name)),
        );
    }
    let all_committed = wait_until(Duration::from_secs(30), || {
        hashes
            .iter()
            .all(|h| is_committed(&boot, h) && is_committed(&lis, h))
    });
    assert!(
        all_committed,
        "listener log:\n{}",
        tail(&lis.log_text(), 30)
    );

    // The objects are readable on both nodes, and metrics tell the same story.
    let created = bluepods_core::tx::created_object_id(&hashes[0], 0);
    for node in [&boot, &lis] {
        let obj = api(node).object(&created).unwrap().expect("object exists");
        assert_eq!(obj.owner, key.public());
        assert_eq!(obj.data, b"object 0".to_vec());
    }
    let metrics = api(&lis).metrics().unwrap();
    assert!(
        metrics.contains("bluepods_last_committed_round "),
        "{metrics}"
    );
    assert!(
        metrics.contains("bluepods_txs_committed_total 12"),
        "{metrics}"
    );

    boot.stop(Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(750));
    let status = api(&lis).status().unwrap();
    lis.stop(Duration::from_secs(5));

    let produced = logged_vertices(&boot.log_text(), "[VALIDATOR] produced vertex");
    let received: BTreeSet<_> = logged_vertices(&lis.log_text(), "[LISTENER] received vertex")
        .into_iter()
        .collect();
    assert!(
        produced.len() >= 5,
        "bootstrap produced only {}",
        produced.len()
    );
    let rounds: Vec<u64> = produced.iter().map(|v| v.0).collect();
    assert_eq!(
        rounds,
        (0..produced.len() as u64).collect::<Vec<_>>(),
        "one vertex per round"
    );
    let missing: Vec<_> = produced.iter().filter(|v| !received.contains(v)).collect();
    assert!(missing.is_empty(), "listener missed {missing:?}");
    assert_eq!(
        received.len(),
        produced.len(),
        "listener received vertices nobody produced"
    );
    assert!(!lis.log_text().contains("produced vertex"));
    // Seed 000's consistency check: the two dumps are byte for byte equal.
    let (a, b) = (boot.dump_state().unwrap(), lis.dump_state().unwrap());
    assert!(a.contains("objects 12"), "{a}");
    assert_eq!(a, b, "bootstrap and listener states differ");
    assert_eq!(status.own_last_round, None);
    let connected = lis
        .log_text()
        .contains(&format!("[LISTENER] connected to bootstrap {}", boot.quic));
    assert!(connected, "{}", tail(&lis.log_text(), 30));
}

#[test]
fn a_listener_pinned_to_another_chain_is_refused_with_a_clear_reason() {
    let dir = tempfile::tempdir().unwrap();
    let boot = bootstrap(dir.path(), "bootstrap");
    let wrong = "00".repeat(32);
    let lis = NodeProcess::start(
        "listener",
        &dir.path().join("listener"),
        &[
            "--listener",
            "--bootstrap-addr",
            &boot.quic,
            "--chain-id",
            &wrong,
            "--http",
            "127.0.0.1:0",
        ],
        true,
    )
    .unwrap();
    let refused = wait_until(Duration::from_secs(15), || {
        lis.log_text().contains("chain mismatch")
    });
    assert!(refused, "{}", tail(&lis.log_text(), 20));
    let st = api(&lis).status().unwrap();
    assert!(st.peers.iter().all(|p| !p.ready));
    assert_eq!(st.chain_id, None);
}
