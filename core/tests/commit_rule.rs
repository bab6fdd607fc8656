//! The commit rule's quorums, checked as properties rather than through a
//! trace: an anchor commits directly only once a quorum of distinct
//! validators two rounds up certify it, each with a quorum of votes among
//! its parents. (Weakening a quorum in `consensus.rs` used to be caught
//! only because insta traces changed.) `commit_model.rs` checks that honest
//! views agree.

use bluepods_core::consensus::{Consensus, ConsensusMeta};
use bluepods_core::harness::{test_genesis, test_vertex};
use bluepods_core::vertex::Vertex;
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
    let v = test_vertex(genesis, key, round, parents);
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

/// Round 2 over `round1`: every validator cites all of it.
fn certify_all(c: &mut Consensus, genesis: &Genesis, keys: &[Keypair], round1: &[Hash]) {
    for k in keys {
        insert(c, vertex(genesis, k, 2, round1));
    }
}

#[test]
fn an_anchor_commits_only_once_a_quorum_two_rounds_up_certifies_it() {
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
    let quorum = c.meta().schedule.set_for_round(Round(1)).quorum() as usize;
    assert_eq!(quorum, 3);
    let mut round1 = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let parents: &[Hash] = if i < quorum - 1 {
            &with_anchor
        } else {
            &others
        };
        let v = vertex(&genesis, key, 1, parents);
        round1.push(v.0);
        insert(&mut c, v);
    }
    // Round 2 cites all of round 1: two votes, fewer than a quorum, so no
    // round-2 vertex certifies the anchor.
    certify_all(&mut c, &genesis, &keys, &round1);
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
    let mut round1 = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let parents: &[Hash] = if i < quorum { &with_anchor } else { &others };
        let v = vertex(&genesis, key, 1, parents);
        round1.push(v.0);
        insert(&mut c, v);
    }
    assert!(
        c.try_commit().is_empty(),
        "votes alone do not commit: certificates two rounds up do"
    );
    certify_all(&mut c, &genesis, &keys, &round1);
    let committed = c.try_commit();
    assert_eq!(committed.len(), 1);
    assert_eq!(
        (committed[0].round, committed[0].anchor),
        (Round(0), anchor)
    );
}

/// An equivocating anchor author leaves two versions of its round-0 anchor
/// reachable: the version a quorum voted for, and only it, is certified
/// and committed, whatever the hashes.
#[test]
fn an_equivocated_anchor_commits_the_version_a_quorum_voted_for() {
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
    // Round 2 cites all of round 1, the leader's vertex too, so both
    // versions are reachable; A has three votes among the parents.
    let r1: Vec<Hash> = round1.iter().map(|v| v.0).collect();
    certify_all(&mut c, &genesis, &keys, &r1);
    let committed = c.try_commit();
    let at_zero: Vec<Hash> = committed
        .iter()
        .filter(|a| a.round == Round(0))
        .map(|a| a.anchor)
        .collect();
    assert_eq!(at_zero, vec![a.0], "A' has one vote, A has three");
}

/// Postmortem (issue 11): a vertex at the pruning floor was not checked
/// for parents at all, so a node there took a parentless vertex a node
/// with more history refused; at the floor the parents are now counted.
/// Issue 12 found that counting is not enough: a snapshot joiner, whose
/// floor lies a garbage-collection depth below its snapshot, took a
/// Byzantine vertex on three made-up parents — one every node with more
/// history keeps pending forever. A chain of that author's vertices on top
/// of it, up to the current round, was then cited by the joiner's own next
/// vertex, which no other node could ever take. Refusing vertices at the
/// floor outright would stall a joiner behind an honest but slow
/// validator whose uncommitted chain reaches down there. Now a vertex taken
/// at the floor is marked unchecked, and so is all that descends from it:
/// the node never cites (nor forwards) one.
#[test]
fn a_vertex_taken_at_the_pruning_floor_and_all_above_it_are_never_cited() {
    use bluepods_core::consensus::{LinkError, Offer};
    let (genesis, keys) = test_genesis(4, ChainParams::default());
    let mut c = consensus(&genesis);
    // A snapshot joiner: the committed frontier of round 5, floor at 5.
    let made_up: Vec<Hash> = (1..=3).map(|i| Hash([i; 32])).collect();
    let frontier: Vec<(Hash, Arc<Vertex>)> = keys[..3]
        .iter()
        .map(|k| vertex(&genesis, k, 5, &made_up))
        .collect();
    for (h, v) in &frontier {
        c.restore(v.clone(), *h, Some(Round(5)));
    }
    c.prune_below(Round(5));
    let (hash0, parentless) = vertex(&genesis, &keys[3], 5, &[]);
    assert_eq!(
        c.offer(parentless, hash0),
        Offer::Rejected(LinkError::TooFewParents { got: 0, fewest: 3 }),
        "a parentless vertex at the floor is refused"
    );
    let bogus = vertex(&genesis, &keys[3], 5, &made_up);
    let bogus_hash = bogus.0;
    insert(&mut c, bogus);
    let unchecked = |c: &Consensus, h: &Hash| c.dag().get(h).unwrap().unchecked;
    assert!(
        unchecked(&c, &bogus_hash),
        "taken on a count of its parents"
    );
    assert!(frontier.iter().all(|(h, _)| !unchecked(&c, h)), "restored");
    // Round 6: the Byzantine author builds on its floor vertex; an honest
    // vertex builds on the frontier.
    let mut on_bogus: Vec<Hash> = frontier[..2].iter().map(|(h, _)| *h).collect();
    on_bogus.push(bogus_hash);
    let chained = vertex(&genesis, &keys[3], 6, &on_bogus);
    let chained_hash = chained.0;
    insert(&mut c, chained);
    let honest_parents: Vec<Hash> = frontier.iter().map(|(h, _)| *h).collect();
    let honest = vertex(&genesis, &keys[0], 6, &honest_parents);
    let honest_hash = honest.0;
    insert(&mut c, honest);
    assert!(
        unchecked(&c, &chained_hash),
        "descends from an unchecked vertex"
    );
    assert!(!unchecked(&c, &honest_hash));
    // What a producer here would cite at rounds 5 and 6: never the
    // unchecked ones.
    let cited = |r: u64| -> Vec<Hash> {
        c.dag()
            .round_firsts(Round(r))
            .iter()
            .map(|v| v.hash)
            .collect()
    };
    assert!(!cited(5).contains(&bogus_hash) && cited(5).len() == 3);
    assert_eq!(cited(6), vec![honest_hash]);
    assert_eq!(c.dag().authors_at(Round(6)).count(), 1);
}

/// Every vertex offered to a fresh consensus in round order, and what it
/// commits: (round, anchor) in order.
fn commits_of(genesis: &Genesis, view: &[(Hash, Arc<Vertex>)]) -> Vec<(Round, Hash)> {
    let mut c = consensus(genesis);
    let mut view = view.to_vec();
    view.sort_by_key(|(h, v)| (v.round(), *h));
    let mut out = Vec::new();
    for v in view {
        insert(&mut c, v);
        out.extend(c.try_commit().into_iter().map(|a| (a.round, a.anchor)));
    }
    out
}

/// Postmortem (issue 12): walking back from a committed anchor, the rule
/// took the version of an equivocated anchor with a quorum of votes *in
/// the local DAG*, else the smallest hash. With n = 4: B signs A and A';
/// H1, H2 and B vote for A, H3 for A', and B once more for A'. H1 holds
/// all of it and commits A directly. Y holds only the round-1 vertices of
/// H2, H3 and B's second, and everything later that cites only those: no
/// version has a quorum there, so Y took the smaller hash, A', and its
/// state differed from H1's for ever.
#[test]
fn a_node_without_the_votes_commits_what_a_node_with_them_committed() {
    let (genesis, keys) = test_genesis(4, ChainParams::default());
    let c = consensus(&genesis);
    let leader = c
        .meta()
        .schedule
        .set_for_round(Round(0))
        .anchor_author(Round(0));
    let b = keys.iter().position(|k| k.public() == leader).unwrap();
    let h: Vec<usize> = (0..4).filter(|i| *i != b).collect();
    let mut all = Vec::new();
    // Round 0: two versions of B's anchor; A' is the one with the smaller
    // hash, which the old rule's tie-break picks.
    let first = vertex(&genesis, &keys[b], 0, &[]);
    let mut body = first.1.body.clone();
    body.txs = vec![bluepods_core::harness::alice_creates(&genesis, 0)];
    let second = body.sign(&keys[b]);
    let second = (second.hash(), Arc::new(second));
    let (a, a_prime) = if first.0 > second.0 {
        (first, second)
    } else {
        (second, first)
    };
    let h0: Vec<_> = h
        .iter()
        .map(|i| vertex(&genesis, &keys[*i], 0, &[]))
        .collect();
    all.extend([a.clone(), a_prime.clone()]);
    all.extend(h0.iter().cloned());
    let h0: Vec<Hash> = h0.iter().map(|v| v.0).collect();
    // Round 1.
    let h1_1 = vertex(&genesis, &keys[h[0]], 1, &[a.0, h0[0], h0[1]]);
    let h2_1 = vertex(&genesis, &keys[h[1]], 1, &[a.0, h0[1], h0[2]]);
    let h3_1 = vertex(&genesis, &keys[h[2]], 1, &[a_prime.0, h0[0], h0[2]]);
    let b_1 = vertex(&genesis, &keys[b], 1, &[a.0, h0[0], h0[1]]);
    let b_1_twin = vertex(&genesis, &keys[b], 1, &[a_prime.0, h0[1], h0[2]]);
    all.extend([
        h1_1.clone(),
        h2_1.clone(),
        h3_1.clone(),
        b_1.clone(),
        b_1_twin.clone(),
    ]);
    // Round 2: H1 cites what it holds; the others cite what Y holds.
    let seen_by_y = vec![h2_1.0, h3_1.0, b_1_twin.0];
    all.push(vertex(&genesis, &keys[h[0]], 2, &[h1_1.0, h2_1.0, b_1.0]));
    // Rounds 2 to 9: every validator cites the vertices of H2, H3 and B
    // of the round before; nobody cites H1's after round 1.
    let mut prev = seen_by_y;
    for round in 2..10 {
        let mut next = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            if round == 2 && i == h[0] {
                continue;
            }
            let v = vertex(&genesis, key, round, &prev);
            if i != h[0] {
                next.push(v.0);
            }
            all.push(v);
        }
        prev = next;
    }
    let by_hash: std::collections::BTreeMap<Hash, Arc<Vertex>> = all.iter().cloned().collect();
    // Y's view: the causal closure of the last round's vertices.
    let mut y = std::collections::BTreeSet::new();
    let mut stack = prev.clone();
    while let Some(x) = stack.pop() {
        if y.insert(x) {
            stack.extend(by_hash[&x].body.parents.iter().copied());
        }
    }
    let y_view: Vec<_> = all.iter().filter(|(x, _)| y.contains(x)).cloned().collect();
    let h1_seq = commits_of(&genesis, &all);
    let y_seq = commits_of(&genesis, &y_view);
    assert!(!y_seq.is_empty(), "Y commits");
    let k = h1_seq.len().min(y_seq.len());
    assert_eq!(
        h1_seq[..k],
        y_seq[..k],
        "H1 and Y commit different sequences"
    );
}
