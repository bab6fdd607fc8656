//! Protocol traces from the in-process harness, pinned with insta.
//!
//! Legend: `t_ms node dir summary`. `->`/`<-` rows are messages sent and
//! received (kind, round, 8-hex-digit short hashes, counts; no payloads);
//! `**` rows are events.

use bluepods_core::harness::{test_genesis, validator_config, Cluster, Faults};
use bluepods_core::{ChainParams, Keypair, NodeConfig, Role};

#[test]
fn bootstrap_and_listener_first_rounds() {
    let (genesis, keys) = test_genesis(1, ChainParams::default());
    let mut c = Cluster::new(
        7,
        Faults {
            min_delay_ms: 10,
            max_delay_ms: 10,
            drop_per_mille: 0,
        },
    );
    c.enable_trace();
    c.add_genesis_node("v0", keys[0].clone(), &genesis, validator_config(100));
    c.run_for(250);
    let listener = NodeConfig {
        role: Role::Listener,
        bootstrap_peers: vec!["v0".into()],
        ..NodeConfig::default()
    };
    c.add_joiner("l0", Keypair::from_label("listener"), listener);
    c.run_for(400);
    insta::assert_snapshot!(c.trace.join("\n"));
}

/// Rows of the trace that involve `node` (its events, and messages it sends
/// or receives), up to and including the first row containing `until`.
fn rows_of(trace: &[String], node: &str, until: &str) -> String {
    let mut out = Vec::new();
    for row in trace {
        let mine = row.split_whitespace().nth(1) == Some(node)
            || row.contains(&format!("> {node} "))
            || row.contains(&format!("- {node} "));
        if mine {
            out.push(row.clone());
            if row.contains(until) {
                break;
            }
        }
    }
    out.join("\n")
}

fn snapshot_cluster(seed: u64, hostile: Option<usize>) -> Cluster {
    use bluepods_core::config::{SyncConfig, SyncMode};
    use bluepods_core::tx::{Operation, TxBody};
    use bluepods_core::Round;
    let params = ChainParams {
        snapshot_interval_rounds: 10,
        ..ChainParams::default()
    };
    let (genesis, keys) = test_genesis(2, params);
    let mut c = Cluster::new(
        seed,
        Faults {
            min_delay_ms: 10,
            max_delay_ms: 10,
            drop_per_mille: 0,
        },
    );
    c.add_validators(&genesis, &keys, 100);
    if let Some(h) = hostile {
        c.corrupt_chunks_from(h);
    }
    let alice = Keypair::from_label("alice");
    for n in 0..12u64 {
        let tx = TxBody {
            chain_id: genesis.chain_id(),
            sender: alice.public(),
            nonce: n,
            expiry: Round(10_000),
            ops: vec![
                Operation::Create {
                    data: vec![n as u8; 3_000]
                };
                16
            ],
        }
        .sign(&alice);
        c.submit((n % 2) as usize, tx).unwrap();
        c.run_for(300);
    }
    c.run_for(2_000);
    c.enable_trace();
    let joiner = NodeConfig {
        role: Role::Listener,
        bootstrap_peers: vec!["v0".into(), "v1".into()],
        sync: SyncConfig {
            default_strategy: SyncMode::Snapshot,
            ..SyncConfig::default()
        },
        ..NodeConfig::default()
    };
    c.add_joiner("j0", Keypair::from_label("joiner"), joiner);
    c.run_until(20_000, |c| c.node(2).state_verification().is_some());
    c
}

#[test]
fn a_joiner_syncs_from_a_snapshot_while_transactions_flow() {
    let c = snapshot_cluster(41, None);
    insta::assert_snapshot!(rows_of(&c.trace, "j0", "state verified"));
}

#[test]
fn a_hostile_peer_serves_a_corrupt_chunk_and_the_joiner_recovers_from_an_honest_one() {
    let c = snapshot_cluster(42, Some(1));
    let rows = rows_of(&c.trace, "j0", "state verified");
    assert!(rows.contains("corrupt chunk"), "{rows}");
    insta::assert_snapshot!(rows);
}
