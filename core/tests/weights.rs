//! Weighted quorums (issue 13): a quorum is more than two thirds of the
//! set's total weight, not of its head count — in a vertex's parents and in
//! the commit rule alike. The genesis here gives v0 a weight of 5 and the
//! three others 1 each: the total is 8 and a quorum 6, so v0 and any one
//! other member make a quorum, and the three light members alone do not.
//! Counted by heads, both would be the other way round.

use bluepods_core::consensus::{Consensus, ConsensusMeta, LinkError, Offer};
use bluepods_core::harness::{test_genesis, test_vertex, validator_config, Cluster, Faults};
use bluepods_core::{ChainParams, Genesis, Hash, Keypair, Round};
use std::sync::Arc;

/// Four validators weighing 5, 1, 1 and 1.
fn heavy_first() -> (Genesis, Vec<Keypair>) {
    let (mut genesis, keys) = test_genesis(4, ChainParams::default());
    let v0 = keys[0].public();
    for v in &mut genesis.validators {
        if v.key == v0 {
            v.weight = 5;
        }
    }
    (genesis, keys)
}

fn offer(
    c: &mut Consensus,
    genesis: &Genesis,
    key: &Keypair,
    round: u64,
    parents: &[Hash],
) -> (Hash, Offer) {
    let v = test_vertex(genesis, key, round, parents);
    let hash = v.hash();
    (hash, c.offer(Arc::new(v), hash))
}

#[test]
fn a_vertex_whose_parents_weigh_less_than_a_quorum_is_refused_however_many_they_are() {
    let (genesis, keys) = heavy_first();
    let mut c = Consensus::new(
        ConsensusMeta::at_genesis(&genesis),
        genesis.params.clone(),
        1_000,
        1_000,
    );
    let round0: Vec<Hash> = keys
        .iter()
        .map(|k| offer(&mut c, &genesis, k, 0, &[]).0)
        .collect();
    // Three parents of weight 1 each: 3 of the 6 needed.
    let (_, light) = offer(&mut c, &genesis, &keys[1], 1, &round0[1..]);
    assert!(
        matches!(
            light,
            Offer::Rejected(LinkError::NoQuorum { got: 3, quorum: 6 })
        ),
        "{light:?}"
    );
    // Two parents, v0 among them: 6.
    let (_, heavy) = offer(&mut c, &genesis, &keys[1], 1, &round0[..2]);
    assert!(matches!(heavy, Offer::Inserted { .. }), "{heavy:?}");
}

fn cluster(genesis: &Genesis, keys: &[Keypair]) -> Cluster {
    let mut c = Cluster::new(13, Faults::fixed_delay(10));
    for (i, k) in keys.iter().enumerate() {
        c.add_genesis_node(&format!("v{i}"), k.clone(), genesis, validator_config(100));
    }
    c
}

#[test]
fn the_heavy_validator_and_one_other_commit_on_while_two_light_ones_are_down() {
    let (genesis, keys) = heavy_first();
    let mut c = cluster(&genesis, &keys);
    assert!(c.run_until(3_000, |c| c.node(0).last_committed_round()
        >= Some(Round(6))));
    c.crash(2);
    c.crash(3);
    let before = c.node(0).last_committed_round().expect("committed");
    c.run_for(3_000);
    let after = c.node(0).last_committed_round().expect("committed");
    assert!(after >= before.saturating_add(10), "{before} -> {after}");
    assert_eq!(c.node(1).last_committed_round(), Some(after));
}

#[test]
fn three_light_validators_of_four_commit_nothing_while_the_heavy_one_is_down() {
    let (genesis, keys) = heavy_first();
    let mut c = cluster(&genesis, &keys);
    assert!(c.run_until(3_000, |c| c.node(1).last_committed_round()
        >= Some(Round(6))));
    c.crash(0);
    // What was in flight may still commit; then nothing more.
    c.run_for(1_000);
    let before = c.node(1).last_committed_round();
    c.run_for(3_000);
    assert_eq!(c.node(1).last_committed_round(), before);
    assert!(c.node(1).highest_round() <= before.map(|r| r.saturating_add(4)));
}
