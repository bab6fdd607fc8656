//! Protocol traces of the sync paths, pinned with insta: a validator
//! joining, a download resumed after a crash, a lagging node catching up by
//! range, and the switch to a snapshot past the threshold.
//!
//! Rows are those of one node (`t_ms node dir summary`, as in `traces.rs`),
//! without the steady gossip (vertices, status, accepted and commit
//! events), so that what remains is the protocol: handshakes, requests and
//! answers, phase changes, bans, snapshot and replay events.

use bluepods_core::config::{SyncConfig, SyncMode};
use bluepods_core::harness::{test_genesis, validator_config, Cluster, Faults};
use bluepods_core::{ChainParams, Keypair, NodeConfig, Role, SyncPhase};

const NOISE: [&str; 5] = [
    " vertex r=",
    " status top=",
    "accepted r=",
    "committed r=",
    "commit r=",
];

/// `node`'s protocol rows from row `from` on, up to and including the first
/// row containing `until`.
fn protocol_rows(trace: &[String], from: usize, node: &str, until: &str) -> String {
    let mut out = Vec::new();
    for row in &trace[from..] {
        let mine = row.split_whitespace().nth(1) == Some(node)
            || row.contains(&format!("> {node} "))
            || row.contains(&format!("- {node} "));
        if !mine || NOISE.iter().any(|n| row.contains(n)) && !row.contains(until) {
            continue;
        }
        out.push(row.clone());
        if row.contains(until) {
            break;
        }
    }
    out.join("\n")
}

fn steady() -> Faults {
    Faults {
        min_delay_ms: 10,
        max_delay_ms: 10,
        drop_per_mille: 0,
    }
}

fn listener(via: &str, mode: SyncMode) -> NodeConfig {
    NodeConfig {
        role: Role::Listener,
        bootstrap_peers: vec![via.into()],
        sync: SyncConfig {
            default_strategy: mode,
            ..SyncConfig::default()
        },
        ..NodeConfig::default()
    }
}

#[test]
fn a_validator_joins_registers_and_produces() {
    let (genesis, keys) = test_genesis(1, ChainParams::default());
    let mut c = Cluster::new(91, steady());
    // A devnet's bootstrap: it approves the candidates connected to it.
    let mut boot = validator_config(100);
    boot.auto_approve = true;
    c.add_genesis_node("v0", keys[0].clone(), &genesis, boot);
    c.run_for(1_000);
    let mut cfg = validator_config(100);
    cfg.bootstrap_peers = vec!["v0".into()];
    c.enable_trace();
    let j = c.add_joiner("v1", Keypair::from_label("new-validator"), cfg);
    assert!(c.run_until(30_000, |c| c.node(j).status().own_last_round.is_some()));
    insta::assert_snapshot!(protocol_rows(&c.trace, 0, "v1", "produced"));
}

#[test]
fn a_joiner_killed_mid_download_resumes_where_it_stopped() {
    let params = ChainParams {
        snapshot_interval_rounds: 10,
        ..ChainParams::default()
    };
    let (mut genesis, keys) = test_genesis(1, params);
    genesis.synthetic_objects = 30_000;
    let mut c = Cluster::new(92, steady());
    c.add_validators(&genesis, &keys, 50);
    c.run_for(1_000);
    let mut cfg = listener("v0", SyncMode::Snapshot);
    cfg.sync.parallel_download_limit = 1;
    // Each chunk staged as it is verified, so the crash falls between two.
    cfg.sync.stage_batch_bytes = 1;
    let j = c.add_joiner("j0", Keypair::from_label("joiner"), cfg);
    assert!(c.run_until(10_000, |c| c
        .node(j)
        .status()
        .download
        .is_some_and(|d| d.chunks_done >= 2)));
    c.crash(j);
    c.run_for(200);
    c.enable_trace();
    c.start(j);
    assert!(c.run_until(20_000, |c| c.node(j).applied_snapshot().is_some()));
    insta::assert_snapshot!(protocol_rows(&c.trace, 0, "j0", "snapshot applied"));
}

/// A listener that follows two validators is cut off from both for about
/// 60 rounds, then the partition heals.
fn lagging_cluster(seed: u64, mode: SyncMode, threshold: u64) -> (Cluster, usize, usize) {
    let params = ChainParams {
        snapshot_interval_rounds: 10,
        ..ChainParams::default()
    };
    let (mut genesis, keys) = test_genesis(2, params);
    genesis.synthetic_objects = 5_000;
    let mut c = Cluster::new(seed, steady());
    c.add_validators(&genesis, &keys, 50);
    c.run_for(500);
    let mut cfg = listener("v0", mode);
    cfg.bootstrap_peers.push("v1".into());
    cfg.sync.strategy_switch_threshold = threshold;
    cfg.sync.range_fetch_rounds = 16;
    let l = c.add_joiner("l0", Keypair::from_label("lagging"), cfg);
    assert!(c.run_until(10_000, |c| c.node(l).phase() == SyncPhase::Live));
    c.run_for(1_000);
    c.partition(0, l);
    c.partition(1, l);
    c.run_for(3_000);
    c.enable_trace();
    let from = c.trace.len();
    c.heal();
    let target = c.node(0).highest_round().unwrap();
    assert!(c.run_until(20_000, |c| c.node(l).phase() == SyncPhase::Live
        && c.node(l).highest_round() >= Some(target)));
    (c, l, from)
}

#[test]
fn a_lagging_node_catches_up_by_range_in_parallel_windows() {
    let (c, l, from) = lagging_cluster(93, SyncMode::Range, 400);
    assert!(c.nodes[l]
        .events
        .iter()
        .all(|(_, e)| !matches!(e, bluepods_core::Event::SnapshotApplied { .. })));
    insta::assert_snapshot!(protocol_rows(&c.trace, from, "l0", "-> live"));
}

#[test]
fn past_the_threshold_a_lagging_node_takes_a_snapshot_instead() {
    let (c, l, from) = lagging_cluster(94, SyncMode::Auto, 30);
    assert!(c.nodes[l]
        .events
        .iter()
        .any(|(_, e)| matches!(e, bluepods_core::Event::SnapshotApplied { .. })));
    insta::assert_snapshot!(protocol_rows(&c.trace, from, "l0", "-> live"));
}
