//! The commit rule's quorum, checked as a property rather than through a
//! trace: an anchor commits directly only once a quorum of distinct
//! validators of the next round cite it. (Weakening the quorum in
//! `consensus.rs` used to be caught only because insta traces changed.)

use bluepods_core::consensus::{Consensus, ConsensusMeta};
use bluepods_core::harness::test_genesis;
use bluepods_core::vertex::{Vertex, VertexBody};
use bluepods_core::{ChainParams, Genesis, Hash, Keypair, Round};
use std::sync::Arc;

fn consensus(genesis: &Genesis) -> Consensus {
    Consensus::new(
        ConsensusMeta::at_genesis(genesis),
        genesis.params.clone(),
        1_000,
        1_000,
    )
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

/// An equivocating anchor author leaves two versions of its round-0 anchor
/// reachable from a later anchor: the walk back from that anchor commits
/// the version a quorum voted for, whatever the hashes (killed mutant: the
/// walk-back quorum test inverted).
#[test]
fn walking_back_an_equivocated_anchor_commits_the_version_a_quorum_voted_for() {
    let (genesis, keys) = test_genesis(4, ChainParams::default());
    let mut c = consensus(&genesis);
    let leader = c
        .meta()
        .schedule
        .set_for_round(Round(0))
        .anchor_author(Round(0));
    let l = keys.iter().position(|k| k.public() == leader).unwrap();
    let others: Vec<usize> = (0..4).filter(|i| *i != l).collect();
    // Round 0: the leader signs two versions (one carries a transaction).
    let a = vertex(&genesis, &keys[l], 0, &[]);
    let mut body = a.1.body.clone();
    body.txs = vec![bluepods_core::harness::alice_creates(&genesis, 0)];
    let twin = body.sign(&keys[l]);
    let a_prime = (twin.hash(), Arc::new(twin));
    let honest0: Vec<_> = others
        .iter()
        .map(|i| vertex(&genesis, &keys[*i], 0, &[]))
        .collect();
    for v in [&a, &a_prime].into_iter().chain(honest0.iter()) {
        let _ = c.offer(v.1.clone(), v.0);
    }
    // Round 1: the three honest validators vote for A; the leader cites A'.
    let h: Vec<Hash> = honest0.iter().map(|v| v.0).collect();
    let mut round1 = Vec::new();
    for (n, i) in others.iter().enumerate() {
        let parents = [a.0, h[n], h[(n + 1) % 3]];
        round1.push(vertex(&genesis, &keys[*i], 1, &parents));
    }
    round1.push(vertex(&genesis, &keys[l], 1, &[a_prime.0, h[0], h[1]]));
    for v in &round1 {
        insert(&mut c, v.clone());
    }
    // Round 2 cites the leader's round-1 vertex too, so both versions are
    // reachable; round 3 votes for the round-2 anchor.
    let r1: Vec<Hash> = round1.iter().map(|v| v.0).collect();
    let round2: Vec<_> = keys
        .iter()
        .map(|k| vertex(&genesis, k, 2, &[r1[0], r1[1], r1[3]]))
        .collect();
    for v in &round2 {
        insert(&mut c, v.clone());
    }
    let r2: Vec<Hash> = round2.iter().map(|v| v.0).collect();
    for k in &keys {
        insert(&mut c, vertex(&genesis, k, 3, &r2));
    }
    let committed = c.try_commit();
    let at_zero: Vec<Hash> = committed
        .iter()
        .filter(|a| a.round == Round(0))
        .map(|a| a.anchor)
        .collect();
    assert_eq!(at_zero, vec![a.0], "A' has one vote, A has three");
}

/// Postmortem: a vertex at the pruning floor was not checked for parents
/// at all (its parents lie below the window), so a node there accepted a
/// parentless vertex from a Byzantine validator and forwarded it, and a
/// node one anchor behind, which could check it, rejected it and banned the
/// honest forwarder. At the floor the parents are counted against the
/// quorum of the round before, the one check that needs no history.
#[test]
fn a_vertex_at_the_pruning_floor_needs_a_quorum_of_parents_too() {
    let (genesis, keys) = test_genesis(4, ChainParams::default());
    let mut c = consensus(&genesis);
    c.prune_below(Round(5));
    let (hash, parentless) = vertex(&genesis, &keys[0], 5, &[]);
    assert!(
        matches!(
            c.offer(parentless, hash),
            bluepods_core::consensus::Offer::Rejected(
                bluepods_core::consensus::LinkError::NoQuorum { got: 0, quorum: 3 }
            )
        ),
        "a parentless vertex at the floor is refused"
    );
    let below: Vec<Hash> = (1..=3).map(|i| Hash([i; 32])).collect();
    insert(&mut c, vertex(&genesis, &keys[1], 5, &below));
}
