//! What a node catching up by range spends its time on: the rounds it
//! replays, not snapshots of rounds the network left long ago.

use bluepods_core::config::{SyncConfig, SyncMode};
use bluepods_core::harness::{test_genesis, Cluster, Faults};
use bluepods_core::{ChainParams, Event, Keypair, NodeConfig, Role, SyncPhase};

/// `validators` validators (a snapshot every 10 rounds, 2,000 objects)
/// producing every 50 ms.
fn network(seed: u64, validators: usize) -> Cluster {
    let params = ChainParams {
        snapshot_interval_rounds: 10,
        ..ChainParams::default()
    };
    let (mut genesis, keys) = test_genesis(validators, params);
    genesis.synthetic_objects = 2_000;
    let mut c = Cluster::new(seed, Faults::fixed_delay(5));
    c.add_validators(&genesis, &keys, 50);
    c
}

/// A listener through `vias` in `sync`.
fn listener(vias: &[&str], sync: SyncConfig) -> NodeConfig {
    NodeConfig {
        role: Role::Listener,
        bootstrap_peers: vias.iter().map(|v| v.to_string()).collect(),
        sync,
        ..NodeConfig::default()
    }
}

/// Postmortem (issue 14, found by `scripts/bench-strategies.sh`): a range
/// joiner replaying 100,000 rounds of a network with a million objects
/// started a snapshot build at every snapshot round it committed, back to
/// back on the cores its replay needed (each build skipped the next one
/// while it ran, and said so in the log). Its join took 46 s where the
/// same history with ten thousand objects took 23 s.
#[test]
fn a_node_catching_up_builds_no_snapshot_of_rounds_the_network_left_long_ago() {
    let mut c = network(11, 1);
    c.run_for(10_000);
    let config = listener(
        &["v0"],
        SyncConfig {
            default_strategy: SyncMode::Range,
            ..SyncConfig::default()
        },
    );
    let j = c.add_joiner("j0", Keypair::from_label("range"), config);
    assert!(c.run_until(20_000, |c| c.node(j).phase() == SyncPhase::Live));
    c.run_for(2_000);
    let live_at = c.nodes[j]
        .events
        .iter()
        .position(|(_, e)| {
            matches!(
                e,
                Event::PhaseChanged {
                    to: SyncPhase::Live,
                    ..
                }
            )
        })
        .expect("the joiner went live");
    let builds = |events: &[(bluepods_core::Timestamp, Event)]| {
        events
            .iter()
            .filter(|(_, e)| {
                matches!(
                    e,
                    Event::SnapshotBuilt { .. } | Event::SnapshotFailed { .. }
                )
            })
            .count()
    };
    let before = builds(&c.nodes[j].events[..live_at]);
    let after = builds(&c.nodes[j].events[live_at..]);
    // About 200 rounds replayed, a snapshot round every 10: only those near
    // the head are built.
    assert!(
        before <= 3,
        "{before} snapshots built or skipped while catching up"
    );
    assert!(after >= 1, "a live node builds snapshots again");
}

/// Postmortem (issue 14, found by `scripts/bench-catchup.sh`): a validator
/// restarted after five minutes, 48 epochs behind, caught up by range for
/// 20 s where a snapshot would have taken a second. Two faults: no
/// snapshot after the sixteenth was attested by a quorum any more (see
/// `attestations.rs`), and discovery kept the manifest for want of the
/// epochs' certificates and at once concluded that nothing was on offer.
/// Either alone fails this test.
#[test]
fn a_node_many_epochs_behind_waits_for_the_certificates_and_takes_a_snapshot() {
    let mut c = network(12, 2);
    c.run_for(500);
    let config = listener(
        &["v0", "v1"],
        SyncConfig {
            default_strategy: SyncMode::Auto,
            strategy_switch_threshold: 30,
            ..SyncConfig::default()
        },
    );
    let l = c.add_joiner("l0", Keypair::from_label("lagging"), config);
    assert!(c.run_until(10_000, |c| c.node(l).phase() == SyncPhase::Live));
    c.partition(0, l);
    c.partition(1, l);
    // About 200 rounds: ten epochs of 20.
    c.run_for(10_000);
    c.heal();
    let target = c.node(0).highest_round().unwrap();
    assert!(c.run_until(20_000, |c| c.node(l).phase() == SyncPhase::Live
        && c.node(l).highest_round() >= Some(target)));
    assert!(
        c.nodes[l]
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::SnapshotApplied { .. })),
        "the lagging node caught up by range"
    );
}
