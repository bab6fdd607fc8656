//! Key paths driven on purpose, each proven taken by its coverage mark
//! (`bluepods_core::cov`): the end state alone could be reached another way.

use bluepods_core::config::{SyncConfig, SyncMode};
use bluepods_core::cov;
use bluepods_core::harness::{alice_creates, test_genesis, Cluster, Faults};
use bluepods_core::TxStatus;
use bluepods_core::{ChainParams, Event, Keypair, Message, NodeConfig, Role, SyncPhase};

fn steady() -> Faults {
    Faults {
        min_delay_ms: 5,
        max_delay_ms: 5,
        drop_per_mille: 0,
    }
}

/// Validator 0 puts a transaction in a vertex that nobody else ever sees
/// (it is cut off the moment it produced it); the others go on far past
/// the garbage-collection window. Once back, validator 0 finds its vertex
/// below the window, uncommitted, and gives the transaction back to its
/// mempool, so it still commits everywhere.
#[test]
fn an_own_vertex_left_behind_the_window_gives_its_transactions_back() {
    let params = ChainParams {
        gc_depth_rounds: 8,
        ..ChainParams::default()
    };
    let (genesis, keys) = test_genesis(4, params);
    let mut c = Cluster::new(11, steady());
    c.add_validators(&genesis, &keys, 50);
    c.run_for(500);
    let tx = alice_creates(&genesis, 0);
    let hash = c.submit(0, tx).expect("accepted");
    let carried = |c: &Cluster| {
        c.nodes[0]
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::VertexProduced { txs, .. } if *txs > 0))
    };
    assert!(c.run_until(5_000, carried));
    for other in 1..4 {
        c.partition(0, other);
    }
    c.run_for(2_000);
    c.heal();
    let committed = |c: &Cluster| {
        (0..4).all(|i| matches!(c.node(i).tx_status(&hash), Ok(TxStatus::Committed { .. })))
    };
    assert!(c.run_until(30_000, committed));
    assert!(cov::hits("orphaned_own_transaction_reinjected") > 0);
}

/// A listener's range requests go unanswered for a while: each failed one
/// is planned afresh from where the node is (not re-sent as it was), and
/// once the validators answer again the listener is live.
#[test]
fn an_unanswered_range_request_is_planned_afresh() {
    let (genesis, keys) = test_genesis(2, ChainParams::default());
    let mut c = Cluster::new(12, steady());
    c.add_validators(&genesis, &keys, 50);
    c.run_for(1_000);
    let ranges = |m: &Message| matches!(m, Message::GetRounds { .. });
    c.deafen(0, ranges);
    c.deafen(1, ranges);
    let cfg = NodeConfig {
        role: Role::Listener,
        bootstrap_peers: vec!["v0".into(), "v1".into()],
        sync: SyncConfig {
            default_strategy: SyncMode::Range,
            peer_timeout_ms: 300,
            ..SyncConfig::default()
        },
        ..NodeConfig::default()
    };
    let l = c.add_joiner("l0", Keypair::from_label("listener"), cfg);
    assert!(c.run_until(5_000, |_| cov::hits("failed_range_planned_afresh") > 0));
    c.undeafen(0);
    c.undeafen(1);
    assert!(c.run_until(20_000, |c| c.node(l).phase() == SyncPhase::Live));
}
