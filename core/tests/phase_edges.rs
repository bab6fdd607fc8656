//! The transition table is law: real scenarios on the harness walk every
//! edge of `SyncPhase::successors`, and the test fails on an edge of the
//! table that none of them took (a dead edge goes, or gets a scenario).
//! An edge outside the table fails sooner: the node's debug assertion.

use bluepods_core::config::{SyncConfig, SyncMode};
use bluepods_core::cov;
use bluepods_core::harness::{test_genesis, validator_config, Cluster, Faults};
use bluepods_core::{ChainParams, Event, Keypair, Message, NodeConfig, Role, SyncPhase};
use std::collections::BTreeSet;

type Edges = BTreeSet<(SyncPhase, SyncPhase)>;

/// Which messages a deafened node never hears.
type Deaf = fn(&Message) -> bool;

fn steady() -> Faults {
    Faults {
        min_delay_ms: 10,
        max_delay_ms: 10,
        drop_per_mille: 0,
    }
}

fn listener(vias: &[&str], mode: SyncMode) -> NodeConfig {
    NodeConfig {
        role: Role::Listener,
        bootstrap_peers: vias.iter().map(|v| v.to_string()).collect(),
        sync: SyncConfig {
            default_strategy: mode,
            ..SyncConfig::default()
        },
        ..NodeConfig::default()
    }
}

/// Every phase change any node of `c` reported.
fn taken(c: &Cluster) -> Edges {
    c.nodes
        .iter()
        .flat_map(|n| n.events.iter())
        .filter_map(|(_, e)| match e {
            Event::PhaseChanged { from, to } => Some((*from, *to)),
            _ => None,
        })
        .collect()
}

fn phase(c: &Cluster, i: usize) -> SyncPhase {
    c.node(i).phase()
}

/// Validators start live; listeners that join catch up by range first; a
/// listener restarted at once is live right after its handshake.
fn range_joins() -> Edges {
    let (genesis, keys) = test_genesis(1, ChainParams::default());
    let mut c = Cluster::new(1, steady());
    c.add_validators(&genesis, &keys, 100);
    let early = c.add_joiner("early", Keypair::from_label("early"), {
        listener(&["v0"], SyncMode::Range)
    });
    c.run_for(2_000);
    let late = c.add_joiner("late", Keypair::from_label("late"), {
        listener(&["v0"], SyncMode::Range)
    });
    assert!(c.run_until(20_000, |c| phase(c, early) == SyncPhase::Live
        && phase(c, late) == SyncPhase::Live));
    // Restarted at once, a node with state of its own is not behind.
    c.crash(early);
    c.start(early);
    assert!(c.run_until(20_000, |c| phase(c, early) == SyncPhase::Live));
    taken(&c)
}

/// A snapshot joiner whose only source is so slow that it prunes the
/// snapshot mid-download discovers again, and finishes once the source is
/// fast; a second one keeps almost no gossip, so after the replay it is
/// behind and catches up by range.
fn snapshot_joins() -> Edges {
    let params = ChainParams {
        snapshot_interval_rounds: 10,
        ..ChainParams::default()
    };
    let (mut genesis, keys) = test_genesis(1, params);
    genesis.synthetic_objects = 30_000;
    let mut c = Cluster::new(2, steady());
    // No leases: the source prunes under a slow download, as it may once
    // the retention time or the disk budget is spent.
    let config = NodeConfig {
        snapshot_lease_ms: 0,
        ..validator_config(50)
    };
    c.add_genesis_node("v0", keys[0].clone(), &genesis, config);
    c.run_for(1_000);
    c.slow_down(0, 400);
    let mut cfg = listener(&["v0"], SyncMode::Snapshot);
    cfg.sync.parallel_download_limit = 1;
    let pruned = c.add_joiner("pruned", Keypair::from_label("pruned"), cfg);
    let rediscovered = |c: &Cluster| {
        c.nodes[pruned].events.iter().any(|(_, e)| {
            matches!(
                e,
                Event::PhaseChanged {
                    from: SyncPhase::SnapshotFetch,
                    to: SyncPhase::Discovery
                }
            )
        })
    };
    assert!(c.run_until(30_000, rediscovered));
    assert!(cov::hits("source_pruned_the_snapshot") > 0);
    c.slow_down(0, 0);
    let mut cfg = listener(&["v0"], SyncMode::Snapshot);
    cfg.sync.buffer_max_rounds = 1;
    cfg.sync.parallel_download_limit = 1;
    let forgetful = c.add_joiner("forgetful", Keypair::from_label("forgetful"), cfg);
    assert!(c.run_until(60_000, |c| phase(c, pruned) == SyncPhase::Live
        && phase(c, forgetful) == SyncPhase::Live));
    taken(&c)
}

/// A listener cut off from two validators for a while, then healed.
fn lagging(seed: u64, mode: SyncMode, threshold: u64, params: ChainParams) -> (Cluster, usize) {
    let (mut genesis, keys) = test_genesis(2, params);
    genesis.synthetic_objects = 2_000;
    let mut c = Cluster::new(seed, steady());
    c.add_validators(&genesis, &keys, 50);
    c.run_for(500);
    let mut cfg = listener(&["v0", "v1"], mode);
    cfg.sync.strategy_switch_threshold = threshold;
    cfg.sync.peer_timeout_ms = 300;
    cfg.sync.retry_attempts = 2;
    cfg.sync.catch_up_backoff_ms = 1_000;
    let l = c.add_joiner("l0", Keypair::from_label("lagging"), cfg);
    assert!(c.run_until(10_000, |c| phase(c, l) == SyncPhase::Live));
    c.partition(0, l);
    c.partition(1, l);
    c.run_for(3_000);
    (c, l)
}

/// Within the threshold, a lagging node catches up by range.
fn lagging_by_range() -> Edges {
    let (mut c, l) = lagging(3, SyncMode::Range, 400, ChainParams::default());
    c.heal();
    assert!(c.run_until(20_000, |c| phase(c, l) == SyncPhase::CatchUp));
    assert!(c.run_until(20_000, |c| phase(c, l) == SyncPhase::Live));
    taken(&c)
}

/// Far behind, a live node looks for a snapshot; none is ahead of it (the
/// network builds none), so it catches up by range; its peers ignore range
/// requests, so it backs off and tries again; once the snapshot cool-down
/// is over it looks again, finds nothing again, and, once its peers answer,
/// is live again.
fn lagging_without_snapshots() -> Edges {
    let params = ChainParams {
        snapshot_interval_rounds: 100_000,
        ..ChainParams::default()
    };
    let (mut c, l) = lagging(4, SyncMode::Auto, 30, params);
    let ranges: Deaf = |m| matches!(m, Message::GetRounds { .. });
    c.deafen(0, ranges);
    c.deafen(1, ranges);
    c.heal();
    assert!(c.run_until(20_000, |c| phase(c, l) == SyncPhase::Backoff));
    assert!(cov::hits("catch_up_backoff") > 0);
    let back_in_discovery = |c: &Cluster| {
        c.nodes[l]
            .events
            .iter()
            .rev()
            .take_while(|(_, e)| {
                !matches!(
                    e,
                    Event::PhaseChanged {
                        to: SyncPhase::Backoff,
                        ..
                    }
                )
            })
            .any(|(_, e)| {
                matches!(
                    e,
                    Event::PhaseChanged {
                        from: SyncPhase::CatchUp,
                        to: SyncPhase::Discovery
                    }
                )
            })
    };
    assert!(c.run_until(60_000, back_in_discovery));
    c.undeafen(0);
    c.undeafen(1);
    assert!(c.run_until(60_000, |c| phase(c, l) == SyncPhase::Live));
    taken(&c)
}

/// A joiner whose only peer never answers for the genesis, and a snapshot
/// joiner whose only peer never answers for a manifest: as daemons they
/// back off and try again (and join once the peer answers), as one-shot
/// syncs they give up.
fn unanswered() -> Edges {
    let (genesis, keys) = test_genesis(1, ChainParams::default());
    let mut edges = Edges::new();
    let cases: [(SyncMode, Deaf); 2] = [
        (SyncMode::Range, |m| matches!(m, Message::GetGenesis { .. })),
        (SyncMode::Snapshot, |m| {
            matches!(m, Message::GetManifest { .. })
        }),
    ];
    for (seed, (mode, deaf)) in (5..).zip(cases) {
        for give_up in [true, false] {
            let mut c = Cluster::new(seed, steady());
            c.add_genesis_node("v0", keys[0].clone(), &genesis, validator_config(100));
            c.deafen(0, deaf);
            let mut cfg = listener(&["v0"], mode);
            cfg.sync.peer_timeout_ms = 300;
            cfg.sync.retry_attempts = 2;
            cfg.sync.catch_up_backoff_ms = 500;
            cfg.sync.give_up_after_retries = give_up;
            let j = c.add_joiner("j0", Keypair::from_label("joiner"), cfg);
            if give_up {
                assert!(c.run_until(30_000, |c| phase(c, j) == SyncPhase::Failed));
            } else {
                assert!(c.run_until(30_000, |c| phase(c, j) == SyncPhase::Backoff));
                c.run_for(1_000);
                c.undeafen(0);
                assert!(c.run_until(30_000, |c| phase(c, j) == SyncPhase::Live));
            }
            edges.extend(taken(&c));
        }
    }
    edges
}

#[test]
fn every_edge_of_the_transition_table_is_taken_by_a_real_scenario() {
    let mut seen = Edges::new();
    for scenario in [
        range_joins,
        snapshot_joins,
        lagging_by_range,
        lagging_without_snapshots,
        unanswered,
    ] {
        seen.extend(scenario());
    }
    let table: Edges = SyncPhase::edges().collect();
    let outside: Vec<_> = seen.difference(&table).collect();
    assert!(outside.is_empty(), "edges outside the table: {outside:?}");
    let never: Vec<_> = table.difference(&seen).collect();
    assert!(
        never.is_empty(),
        "edges of the table never taken: {never:?}"
    );
}
