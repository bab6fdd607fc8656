//! A fresh node in `auto` mode writes the genesis state only if it joins by
//! range: one that takes a snapshot never spends the time to write objects
//! the snapshot replaces.

use bluepods_core::config::{SyncConfig, SyncMode};
use bluepods_core::cov;
use bluepods_core::harness::{test_genesis, validator_config, Cluster, Faults};
use bluepods_core::{ChainParams, Event, Keypair, NodeConfig, Role, SyncPhase};

const OBJECTS: u64 = 5_000;

fn took_a_snapshot(c: &Cluster, j: usize) -> bool {
    c.nodes[j]
        .events
        .iter()
        .any(|(_, e)| matches!(e, Event::SnapshotApplied { .. }))
}

/// One validator with `OBJECTS` genesis objects, run for `run_ms`, and a
/// fresh `auto` listener through it with the given switch threshold.
fn auto_join(run_ms: u64, threshold: u64) -> (Cluster, usize) {
    let params = ChainParams {
        snapshot_interval_rounds: 10,
        ..ChainParams::default()
    };
    let (mut genesis, keys) = test_genesis(1, params);
    genesis.synthetic_objects = OBJECTS;
    let mut c = Cluster::new(7, Faults::fixed_delay(5));
    c.add_genesis_node("v0", keys[0].clone(), &genesis, validator_config(50));
    c.run_for(run_ms);
    let config = NodeConfig {
        role: Role::Listener,
        bootstrap_peers: vec!["v0".into()],
        sync: SyncConfig {
            default_strategy: SyncMode::Auto,
            strategy_switch_threshold: threshold,
            ..SyncConfig::default()
        },
        ..NodeConfig::default()
    };
    let j = c.add_joiner("j0", Keypair::from_label("auto"), config);
    (c, j)
}

/// Postmortem (issue 14, found by `scripts/bench-strategies.sh`): an `auto`
/// joiner wrote the whole genesis state when it adopted the genesis, before
/// it knew how it would join. Far behind, it then took a snapshot that
/// replaced all of it: with a million objects in the genesis that was 2.3 s
/// of a 3.9 s join, against 1.4 s in `snapshot` mode.
#[test]
fn an_auto_joiner_far_behind_takes_a_snapshot_without_writing_the_genesis_state() {
    let (mut c, j) = auto_join(3_000, 20);
    let written = cov::hits("genesis_state_written");
    assert!(c.run_until(10_000, |c| c.node(j).phase() == SyncPhase::Live));
    assert!(took_a_snapshot(&c, j));
    assert_eq!(
        cov::hits("genesis_state_written"),
        written,
        "the joiner wrote the genesis state it was about to replace"
    );
    assert_eq!(c.node(j).store().objects().count() as u64, OBJECTS);
}

#[test]
fn an_auto_joiner_of_a_young_network_joins_by_range_on_the_genesis_state() {
    let (mut c, j) = auto_join(1_000, 400);
    let written = cov::hits("genesis_state_written");
    let synced = |c: &Cluster| {
        c.node(j).phase() == SyncPhase::Live
            && c.node(j).store().objects().count() as u64 == OBJECTS
            && c.committed_rounds()[j].is_some()
    };
    assert!(c.run_until(10_000, synced));
    assert_eq!(cov::hits("genesis_state_written"), written + 1);
    assert!(!took_a_snapshot(&c, j));
}

/// Review finding (issue 14): a `snapshot` joiner wrote the genesis record
/// but none of the genesis objects. Interrupted before its snapshot came and
/// restarted to join by range, it executed its first commit on an empty
/// state.
#[test]
fn a_snapshot_joiner_restarted_to_join_by_range_executes_on_the_genesis_state() {
    let (mut c, j) = auto_join(1_000, 400);
    c.crash(j);
    c.reconfigure(j, |cfg| cfg.sync.default_strategy = SyncMode::Snapshot);
    c.start(j);
    let adopted = |c: &Cluster| {
        c.nodes[j]
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::GenesisAdopted { .. }))
    };
    assert!(c.run_until(5_000, adopted));
    c.crash(j);
    c.reconfigure(j, |cfg| cfg.sync.default_strategy = SyncMode::Range);
    c.start(j);
    let synced =
        |c: &Cluster| c.node(j).phase() == SyncPhase::Live && c.committed_rounds()[j].is_some();
    assert!(c.run_until(10_000, synced));
    assert!(!took_a_snapshot(&c, j));
    assert_eq!(c.node(j).store().objects().count() as u64, OBJECTS);
}
