//! The commit rule's quorum, checked as a property rather than through a
//! trace: an anchor commits directly only once a quorum of distinct
//! validators of the next round cite it. (Weakening the quorum in
//! `consensus.rs` used to be caught only because insta traces changed.)

use bluepods_core::consensus::{Consensus, ConsensusMeta};
use bluepods_core::harness::test_genesis;
use bluepods_core::validators::ValidatorSchedule;
use bluepods_core::vertex::{Vertex, VertexBody};
use bluepods_core::{ChainParams, Genesis, Hash, Keypair, Round};
use std::sync::Arc;

fn consensus(genesis: &Genesis) -> Consensus {
    let meta = ConsensusMeta {
        last_anchor: None,
        schedule: ValidatorSchedule::new(
            genesis.validators.clone(),
            genesis.params.epoch_rounds,
            genesis.params.max_validators,
        ),
        committed_vertices: 0,
        executed_txs: 0,
    };
    Consensus::new(meta, genesis.params.clone(), 1_000, 1_000)
}

fn vertex(genesis: &Genesis, key: &Keypair, round: u64, parents: &[Hash]) -> (Hash, Arc<Vertex>) {
    let mut parents = parents.to_vec();
    parents.sort();
    let v = VertexBody {
        chain_id: genesis.chain_id(),
        round: Round(round),
        author: key.public(),
        parents,
        txs: Vec::new(),
        attestation: None,
    }
    .sign(key);
    (v.hash(), Arc::new(v))
}

/// Offers `v`; it must join the DAG.
fn insert(c: &mut Consensus, (hash, v): (Hash, Arc<Vertex>)) {
    let offer = c.offer(v, hash);
    assert!(
        matches!(offer, bluepods_core::consensus::Offer::Inserted { .. }),
        "{offer:?}"
    );
}

#[test]
fn an_anchor_commits_only_once_a_quorum_of_the_next_round_cites_it() {
    let (genesis, keys) = test_genesis(4, ChainParams::default());
    let mut c = consensus(&genesis);
    let round0: Vec<_> = keys.iter().map(|k| vertex(&genesis, k, 0, &[])).collect();
    for v in &round0 {
        insert(&mut c, v.clone());
    }
    let leader = c
        .meta()
        .schedule
        .set_for_round(Round(0))
        .anchor_author(Round(0));
    let leader_at = keys.iter().position(|k| k.public() == leader);
    let anchor = round0[leader_at.expect("leader is a validator")].0;
    let others: Vec<Hash> = round0
        .iter()
        .map(|(h, _)| *h)
        .filter(|h| *h != anchor)
        .collect();
    // Round 1: two validators cite the anchor, two do not (each still cites
    // a quorum of round 0, as it must).
    let with_anchor = [anchor, others[0], others[1]];
    let quorum = c.meta().schedule.set_for_round(Round(1)).quorum();
    assert_eq!(quorum, 3);
    for (i, key) in keys.iter().enumerate() {
        let parents: &[Hash] = if i < quorum - 1 {
            &with_anchor
        } else {
            &others
        };
        insert(&mut c, vertex(&genesis, key, 1, parents));
    }
    assert!(
        c.try_commit().is_empty(),
        "an anchor with {} of {quorum} votes committed",
        quorum - 1
    );
    assert_eq!(c.last_committed_round(), None);
    // The same, with one validator more citing the anchor: a quorum.
    let mut c = consensus(&genesis);
    for v in &round0 {
        insert(&mut c, v.clone());
    }
    for (i, key) in keys.iter().enumerate() {
        let parents: &[Hash] = if i < quorum { &with_anchor } else { &others };
        insert(&mut c, vertex(&genesis, key, 1, parents));
    }
    let committed = c.try_commit();
    assert_eq!(committed.len(), 1);
    assert_eq!(
        (committed[0].round, committed[0].anchor),
        (Round(0), anchor)
    );
}
