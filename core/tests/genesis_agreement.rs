//! Genesis agreement (issue 13): a node without `--chain-id` trusts a chain
//! id only once its peers agree on it. Before, it adopted the chain of the
//! first peer that answered: one peer on another network (or lying about
//! it) decided which network a fresh node joined.

use bluepods_core::harness::{test_genesis, validator_config, Cluster, Faults};
use bluepods_core::{ChainParams, Event, Keypair, NodeConfig, Role};

fn listener(bootstrap: &[&str]) -> NodeConfig {
    NodeConfig {
        role: Role::Listener,
        bootstrap_peers: bootstrap.iter().map(|s| s.to_string()).collect(),
        ..NodeConfig::default()
    }
}

/// Chain A: validator `a0` and listener `a1` (which dials `a0`); chain B:
/// validator `b0`. Their chain ids.
fn two_networks(c: &mut Cluster) -> (bluepods_core::Hash, bluepods_core::Hash) {
    let (a, a_keys) = test_genesis(1, ChainParams::default());
    let mut other = ChainParams::default();
    other.gc_depth_rounds += 2;
    let (b, b_keys) = test_genesis(1, other);
    c.add_genesis_node("a0", a_keys[0].clone(), &a, validator_config(100));
    c.add_genesis_node("a1", Keypair::from_label("a1"), &a, listener(&["a0"]));
    c.add_genesis_node("b0", b_keys[0].clone(), &b, validator_config(100));
    (a.chain_id(), b.chain_id())
}

#[test]
fn peers_that_disagree_on_the_genesis_stop_discovery_with_a_clear_error() {
    let mut c = Cluster::new(21, Faults::fixed_delay(5));
    let (a, b) = two_networks(&mut c);
    c.run_for(300);
    let mut cfg = listener(&["a0", "a1", "b0"]);
    cfg.sync.give_up_after_retries = true; // a one-shot sync
    let j = c.add_joiner("j", Keypair::from_label("j"), cfg);
    c.run_for(2_000);
    assert_eq!(c.node(j).chain_id(), None, "trusted no chain");
    let failed = c.nodes[j].events.iter().find_map(|(_, e)| match e {
        Event::SyncFailed { reason } => Some(reason.clone()),
        _ => None,
    });
    let reason = failed.expect("the sync failed");
    assert!(
        reason.contains("peers disagree on the chain")
            && reason.contains(&a.short())
            && reason.contains(&b.short())
            && reason.contains("--chain-id"),
        "{reason}"
    );
}

#[test]
fn a_daemon_whose_peers_disagree_backs_off_and_says_why_each_time() {
    let mut c = Cluster::new(22, Faults::fixed_delay(5));
    two_networks(&mut c);
    c.run_for(300);
    let j = c.add_joiner("j", Keypair::from_label("j"), listener(&["a0", "b0"]));
    c.run_for(12_000);
    assert_eq!(c.node(j).chain_id(), None);
    let backoffs = c.nodes[j]
        .events
        .iter()
        .filter(|(_, e)| {
            matches!(e, Event::SyncBackoff { reason, .. } if reason.contains("peers disagree"))
        })
        .count();
    assert!(backoffs >= 2, "backed off {backoffs} times");
}

#[test]
fn a_joiner_without_a_chain_id_waits_for_the_peers_it_learns_of_before_it_trusts_one() {
    let mut c = Cluster::new(23, Faults::fixed_delay(5));
    two_networks(&mut c);
    c.run_for(300);
    // Told only of a0; learns a1 by peer exchange.
    let j = c.add_joiner("j", Keypair::from_label("j"), listener(&["a0"]));
    assert!(c.run_until(3_000, |c| c.node(j).chain_id().is_some()));
    let events = &c.nodes[j].events;
    let adopted_at = events
        .iter()
        .position(|(_, e)| matches!(e, Event::GenesisAdopted { .. }))
        .expect("adopted");
    let ready_before = events[..adopted_at]
        .iter()
        .filter(|(_, e)| matches!(e, Event::PeerReady { .. }))
        .count();
    assert_eq!(ready_before, 2, "a0 and a1 agreed first");
    assert!(
        matches!(
            events[adopted_at].1,
            Event::GenesisAdopted { pinned: false, .. }
        ),
        "not pinned: the log warns"
    );
}

/// Review of issue 13: peers that dialed in counted in the agreement, so
/// anyone who connected to a fresh node's port with another chain id kept
/// it from ever trusting one. Only the peers the node dialed — its
/// bootstrap peers and those it learned of — have a say now.
#[test]
fn a_node_that_dials_in_with_another_chain_has_no_say() {
    let mut c = Cluster::new(24, Faults::fixed_delay(5));
    two_networks(&mut c);
    c.run_for(300);
    let j = c.add_joiner("j", Keypair::from_label("j"), listener(&["a0"]));
    // b0's chain dials the joiner as soon as it listens.
    let cfg = listener(&["j"]);
    let (b, _) = test_genesis(1, {
        let mut p = ChainParams::default();
        p.gc_depth_rounds += 2;
        p
    });
    c.add_genesis_node("x", Keypair::from_label("x"), &b, cfg);
    assert!(
        c.run_until(3_000, |c| c.node(j).chain_id().is_some()),
        "{:?}",
        c.nodes[j].events.iter().map(|(_, e)| e).collect::<Vec<_>>()
    );
}
