//! A joiner that moves to a newer snapshot after scattered change rebuilds
//! what it verified from deltas (`snapshot::pages`), on the in-process
//! harness.

use bluepods_core::config::{SyncConfig, SyncMode};
use bluepods_core::harness::{test_genesis, validator_config, Cluster, Faults};
use bluepods_core::tx::{Operation, TxBody};
use bluepods_core::{ChainParams, Event, Keypair, NodeConfig, Role, Round};

/// Postmortem (issue 10): content-defined chunks survive only changes that
/// miss them. When 1% of the objects changed all over the key space, a
/// joiner whose source pruned its snapshot kept none of the chunks it had
/// verified (0 of 36 for a million objects) and fetched them all again.
/// Now it sends the digests of the pages it holds in each chunk's key
/// range and gets back only the pages that changed.
#[test]
fn a_joiner_moved_to_a_snapshot_after_scattered_change_rebuilds_what_it_verified() {
    let params = ChainParams {
        snapshot_interval_rounds: 10,
        ..ChainParams::default()
    };
    let (mut genesis, keys) = test_genesis(1, params);
    genesis.synthetic_objects = 30_000;
    let mut c = Cluster::new(
        71,
        Faults {
            min_delay_ms: 10,
            max_delay_ms: 10,
            drop_per_mille: 0,
        },
    );
    // No leases: the source prunes the joiner's snapshot under it.
    let config = NodeConfig {
        snapshot_lease_ms: 0,
        ..validator_config(50)
    };
    c.add_genesis_node("v0", keys[0].clone(), &genesis, config);
    c.run_for(1_000);
    c.slow_down(0, 400);
    let cfg = NodeConfig {
        role: Role::Listener,
        bootstrap_peers: vec!["v0".to_string()],
        sync: SyncConfig {
            default_strategy: SyncMode::Snapshot,
            parallel_download_limit: 1,
            ..SyncConfig::default()
        },
        ..NodeConfig::default()
    };
    let j = c.add_joiner("j0", Keypair::from_label("joiner"), cfg);
    c.enable_trace();
    let verified = |c: &Cluster| {
        c.nodes[j]
            .events
            .iter()
            .rev()
            .find_map(|(_, e)| match e {
                Event::SnapshotProgress { chunks_done, .. } => Some(*chunks_done),
                _ => None,
            })
            .unwrap_or(0)
    };
    assert!(c.run_until(30_000, |c| verified(c) >= 3));
    // 1% more objects, created all over the key space (ids are hashes).
    let alice = Keypair::from_label("alice");
    for nonce in 0..300u64 {
        let tx = TxBody {
            chain_id: genesis.chain_id(),
            sender: alice.public(),
            nonce,
            expiry: Round(100_000),
            ops: vec![Operation::Create {
                data: nonce.to_le_bytes().to_vec(),
            }],
        }
        .sign(&alice);
        c.submit(0, tx).unwrap();
    }
    assert!(c.run_until(120_000, |c| matches!(
        c.node(j).state_verification(),
        Some((_, true))
    )));

    let events: Vec<&Event> = c.nodes[j].events.iter().map(|(_, e)| e).collect();
    let (kept, rebuilt, total) = events
        .iter()
        .find_map(|e| match e {
            Event::SnapshotDownloaded {
                chunks_kept,
                chunks_rebuilt,
                chunks_total,
                ..
            } => Some((*chunks_kept, *chunks_rebuilt, *chunks_total)),
            _ => None,
        })
        .expect("the download finished");
    let moved = events
        .iter()
        .filter(|e| matches!(e, Event::SnapshotResumed { from_round, round, .. } if from_round != round))
        .count();
    assert!(moved > 0, "the source never pruned under the joiner");
    // Every chunk verified when the change landed (three or more) is
    // rebuilt from a delta.
    assert!(
        rebuilt >= 3,
        "{rebuilt} of {total} chunks rebuilt, {kept} kept, after {moved} moves"
    );
    let deltas = c
        .trace
        .iter()
        .filter(|r| r.contains(" j0 ") && r.contains("-> v0 get_chunk_delta r="))
        .count();
    assert!(deltas >= rebuilt);
}
