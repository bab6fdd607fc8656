//! Equivocation evidence (issue 12): a proof made of two signed headers,
//! gossiped once, checked by anyone, and — once committed — taking the
//! equivocator off anchor duty on every node alike.
//!
//! Before, an equivocation was recorded as a pair of hashes on the node that
//! saw both versions and went nowhere: other nodes could not check it, and
//! an equivocator stayed anchor author, each of its slots costing the
//! network a round of waiting.

use bluepods_core::evidence::EquivocationProof;
use bluepods_core::harness::{
    attach_peer, commit_sequence, test_genesis, test_vertex, Cluster, Faults,
};
use bluepods_core::vertex::{Attestation, Vertex};
use bluepods_core::{
    cov, init_chain, Action, ChainParams, Event, Genesis, Hash, Input, Keypair, MemStore, Message,
    Node, NodeConfig, PeerId, Role, Round, Timestamp,
};

const NOW: Timestamp = Timestamp(1_000);

/// Version `tag` of `key`'s round-0 vertex (versions differ in their
/// attestation, so their hashes differ).
fn version(genesis: &Genesis, key: &Keypair, tag: u8) -> Vertex {
    let mut body = test_vertex(genesis, key, 0, &[]).body;
    body.attestation = Some(Box::new(Attestation {
        round: Round(0),
        manifest_root: Hash([tag; 32]),
    }));
    body.sign(key)
}

fn proof_of(a: &Vertex, b: &Vertex) -> EquivocationProof {
    EquivocationProof::new(a.signed_header(), b.signed_header()).expect("two versions")
}

/// A listener on a two-validator chain with two listener peers.
fn listener_with_two_peers() -> (Node<MemStore>, Genesis, Vec<Keypair>) {
    let (genesis, keys) = test_genesis(2, ChainParams::default());
    let mut store = MemStore::new();
    init_chain(&mut store, &genesis).unwrap();
    let config = NodeConfig {
        role: Role::Listener,
        ..NodeConfig::default()
    };
    let mut n = Node::new(config, Keypair::from_label("node"), store, 1, NOW).unwrap();
    while n.poll_action().is_some() {}
    for (i, label) in [(1, "p1"), (2, "p2")] {
        let key = Keypair::from_label(label);
        attach_peer(&mut n, NOW, PeerId(i), &key, Role::Listener).unwrap();
    }
    (n, genesis, keys)
}

/// Delivers `msg` from `peer`; the proofs the node sent (to whom) and
/// whether it cut `peer` off.
fn deliver(
    n: &mut Node<MemStore>,
    peer: PeerId,
    msg: Message,
) -> (Vec<(PeerId, EquivocationProof)>, bool) {
    n.handle(NOW, Input::Message { peer, msg });
    let (mut proofs, mut cut) = (Vec::new(), false);
    while let Some(a) = n.poll_action() {
        match a {
            Action::Send {
                peer: to,
                msg: Message::Evidence(p),
                ..
            } => proofs.push((to, *p)),
            Action::Disconnect { peer: p, .. } if p == peer => cut = true,
            _ => {}
        }
    }
    (proofs, cut)
}

#[test]
fn an_equivocation_found_here_goes_to_every_peer_once_as_a_checkable_proof() {
    let (mut n, genesis, keys) = listener_with_two_peers();
    let (a, b) = (
        version(&genesis, &keys[0], 1),
        version(&genesis, &keys[0], 2),
    );
    let (sent, _) = deliver(&mut n, PeerId(1), Message::Vertex(a.clone()));
    assert!(sent.is_empty(), "one version proves nothing");
    let (sent, cut) = deliver(&mut n, PeerId(1), Message::Vertex(b.clone()));
    assert!(!cut);
    let to: Vec<PeerId> = sent.iter().map(|(p, _)| *p).collect();
    assert_eq!(to, vec![PeerId(1), PeerId(2)], "every ready peer, once");
    let proof = &sent[0].1;
    assert_eq!(proof, &proof_of(&a, &b));
    assert_eq!(
        proof.verify(&genesis.chain_id(), &genesis.params),
        Ok(()),
        "anyone can check it with the author's key alone"
    );
    assert_eq!(n.evidence().count(), 1);
    let status = n.status();
    assert_eq!(status.equivocations_total, 1);
    assert_eq!(status.equivocations[0].author, keys[0].public());
    assert_eq!(status.equivocations[0].versions, (proof.hashes()));

    // The proof coming back is not checked, kept or sent again.
    let before = cov::hits("known_evidence_dropped_unchecked");
    let (sent, cut) = deliver(
        &mut n,
        PeerId(2),
        Message::Evidence(Box::new(proof.clone())),
    );
    assert!(sent.is_empty() && !cut);
    assert_eq!(cov::hits("known_evidence_dropped_unchecked") - before, 1);
    assert_eq!(n.status().equivocations_total, 1);
}

#[test]
fn a_received_proof_is_checked_kept_and_forwarded_once_to_the_other_peers() {
    let (mut n, genesis, keys) = listener_with_two_peers();
    let proof = proof_of(
        &version(&genesis, &keys[1], 3),
        &version(&genesis, &keys[1], 4),
    );
    let msg = Message::Evidence(Box::new(proof.clone()));
    let (sent, cut) = deliver(&mut n, PeerId(1), msg.clone());
    assert!(!cut);
    assert_eq!(
        sent,
        vec![(PeerId(2), proof.clone())],
        "not back to its sender"
    );
    let (sent, _) = deliver(&mut n, PeerId(1), msg);
    assert!(sent.is_empty(), "gossiped once");
    assert_eq!(n.evidence().collect::<Vec<_>>(), vec![&proof]);
}

/// Review of issue 12: proofs were kept per (author, round), the lowest
/// rounds evicted first, so an equivocator signing proofs against itself
/// at ever higher rounds pushed every other proof out — and an evicted
/// proof, coming back from a neighbour, was news again, verified and
/// forwarded round and round. Now one proof per validator is kept and
/// passed on.
#[test]
fn proofs_against_a_validator_already_proven_are_neither_kept_nor_forwarded() {
    let (mut n, genesis, keys) = listener_with_two_peers();
    let far = |round: u64, tag: u8| {
        let mut body = test_vertex(&genesis, &keys[1], round, &[]).body;
        body.attestation = Some(Box::new(Attestation {
            round: Round(0),
            manifest_root: Hash([tag; 32]),
        }));
        body.sign(&keys[1])
    };
    let first = proof_of(&far(0, 1), &far(0, 2));
    let (sent, _) = deliver(
        &mut n,
        PeerId(1),
        Message::Evidence(Box::new(first.clone())),
    );
    assert_eq!(sent.len(), 1);
    let before = cov::hits("known_evidence_dropped_unchecked");
    for i in 0..50u64 {
        let later = proof_of(&far(1_000_000_000 + i, 1), &far(1_000_000_000 + i, 2));
        let (sent, cut) = deliver(&mut n, PeerId(2), Message::Evidence(Box::new(later)));
        assert!(sent.is_empty() && !cut);
    }
    assert_eq!(cov::hits("known_evidence_dropped_unchecked") - before, 50);
    assert_eq!(n.evidence().collect::<Vec<_>>(), vec![&first]);
    assert_eq!(n.status().equivocations_total, 1);
}

/// A forged proof would take an honest validator off anchor duty once a
/// validator carried it into a committed vertex; it is refused at the
/// first hop and its sender banned.
#[test]
fn a_forged_proof_bans_its_sender_and_goes_no_further() {
    let (mut n, genesis, keys) = listener_with_two_peers();
    let mut forged = proof_of(
        &version(&genesis, &keys[1], 3),
        &version(&genesis, &keys[1], 4),
    );
    forged.second.signature = forged.first.signature;
    let (sent, cut) = deliver(&mut n, PeerId(1), Message::Evidence(Box::new(forged)));
    assert!(cut, "banned");
    assert!(sent.is_empty());
    assert_eq!(n.evidence().count(), 0);
    assert!(n
        .status()
        .bans
        .iter()
        .any(|b| b.key == Keypair::from_label("p1").public()));
}

/// A proof against a key this node never knew as a validator may come from
/// a peer that knows a later set: dropped, nobody banned.
#[test]
fn a_proof_against_a_key_outside_the_known_set_is_dropped_without_a_ban() {
    let (mut n, genesis, _) = listener_with_two_peers();
    let stranger = Keypair::from_label("stranger");
    let proof = proof_of(
        &version(&genesis, &stranger, 3),
        &version(&genesis, &stranger, 4),
    );
    let (sent, cut) = deliver(&mut n, PeerId(1), Message::Evidence(Box::new(proof)));
    assert!(sent.is_empty() && !cut);
    assert_eq!(n.evidence().count(), 0);
}

/// The whole path: a proof reaches one validator, which carries it in its
/// next vertex; the commit of that vertex takes the equivocator off anchor
/// duty two epochs later on every node alike, and commits go on.
#[test]
fn a_committed_proof_takes_the_equivocator_off_anchor_duty_on_every_node() {
    let params = ChainParams {
        epoch_rounds: 6,
        ..ChainParams::default()
    };
    let (genesis, keys) = test_genesis(4, params);
    let mut c = Cluster::new(12, Faults::fixed_delay(5));
    c.add_validators(&genesis, &keys, 100);
    c.run_for(1_000);
    let accused = keys[3].public();
    let proof = proof_of(
        &version(&genesis, &keys[3], 7),
        &version(&genesis, &keys[3], 8),
    );
    assert!(c.send_as(3, 0, Message::Evidence(Box::new(proof))));
    let revoked = |c: &Cluster| {
        (0..4).all(|i| {
            c.node(i)
                .status()
                .off_anchor_duty
                .iter()
                .any(|o| o.author == accused)
        })
    };
    assert!(c.run_until(10_000, revoked), "every node revokes");
    let epochs: Vec<u64> = (0..4)
        .map(|i| c.node(i).status().off_anchor_duty[0].from_epoch)
        .collect();
    assert!(epochs.windows(2).all(|w| w[0] == w[1]), "{epochs:?}");
    let from = Round(epochs[0] * 6);
    assert!(
        c.run_until(20_000, |c| (0..4).all(|i| c
            .node(i)
            .last_committed_round()
            .is_some_and(|r| r >= from.saturating_add(12)))),
        "commits go on past the revocation: {:?}",
        c.committed_rounds()
    );
    // No anchor at or after `from` is the equivocator's.
    let mut checked = 0;
    for i in 0..4 {
        for (_, e) in &c.nodes[i].events {
            if let Event::Committed { round, anchor, .. } = e {
                if *round >= from {
                    let author = commit_author(&c, *anchor);
                    assert!(author.is_some());
                    assert_ne!(author, Some(accused), "anchor of round {round}");
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 4 * 5, "{checked} anchors after the revocation");
    // `GET /v1/validators` reads the same: still a member, off duty.
    let set = c.node(1).validators().unwrap();
    assert_eq!(set.members.len(), 4);
    let on_duty: Vec<bool> = set
        .members
        .iter()
        .filter(|m| m.key == accused)
        .map(|m| m.on_anchor_duty)
        .collect();
    assert_eq!(on_duty, vec![false]);
    assert_eq!(set.off_anchor_duty[0].author, accused);
    let seqs: Vec<_> = (0..4).map(|i| commit_sequence(c.node(i).store())).collect();
    let shortest = seqs.iter().map(Vec::len).min().unwrap();
    assert!(seqs.iter().all(|s| s[..shortest] == seqs[0][..shortest]));
}

/// The author of committed vertex `hash`, read from node 0's store.
fn commit_author(c: &Cluster, hash: Hash) -> Option<bluepods_core::PublicKey> {
    use bluepods_core::Store;
    c.node(0)
        .store()
        .get_vertex(&hash)
        .ok()
        .flatten()
        .map(|s| s.vertex.author())
}
