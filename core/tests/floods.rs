//! Data that is of no use costs its sender, not the node: a vertex is
//! verified once however often it arrives, a peer that sends the same one
//! again is cut off, and unsolicited gossip gets a signature-check budget
//! per peer.

use bluepods_core::harness::{alice_creates, attach_peer, test_genesis};
use bluepods_core::interface::Limit;
use bluepods_core::vertex::{Vertex, VertexBody};
use bluepods_core::{
    cov, init_chain, Action, ChainParams, Event, Genesis, Hash, Input, Keypair, MemStore, Message,
    Node, NodeConfig, PeerId, Role, Round, Timestamp,
};

const NOW: Timestamp = Timestamp(1_000);

/// A listener on a chain of `validators`, with one attached listener peer.
fn listener_on(
    validators: usize,
    config: NodeConfig,
) -> (Node<MemStore>, Genesis, Vec<Keypair>, PeerId) {
    let (genesis, keys) = test_genesis(validators, ChainParams::default());
    let mut store = MemStore::new();
    init_chain(&mut store, &genesis).unwrap();
    let config = NodeConfig {
        role: Role::Listener,
        ..config
    };
    let mut n = Node::new(config, Keypair::from_label("node"), store, 1, NOW).unwrap();
    while n.poll_action().is_some() {}
    let peer = PeerId(1);
    attach_peer(
        &mut n,
        NOW,
        peer,
        &Keypair::from_label("flooder"),
        Role::Listener,
    )
    .unwrap();
    (n, genesis, keys, peer)
}

/// [`listener_on`] a one-validator chain.
fn listener_with_peer(config: NodeConfig) -> (Node<MemStore>, Vec<Keypair>, PeerId) {
    let (n, _, keys, peer) = listener_on(1, config);
    (n, keys, peer)
}

/// A validly signed vertex far beyond the node's horizon, carrying `txs`
/// transactions (each one more signature to check).
fn far_vertex(n: &Node<MemStore>, author: &Keypair, round: u64, txs: u64) -> Vertex {
    let (genesis, _) = test_genesis(1, ChainParams::default());
    VertexBody {
        chain_id: n.chain_id().unwrap(),
        round: Round(round),
        author: author.public(),
        parents: vec![Hash([1; 32])],
        txs: (0..txs).map(|i| alice_creates(&genesis, i)).collect(),
        attestation: None,
        evidence: Vec::new(),
        epoch_vote: None,
    }
    .sign(author)
}

/// Sends `v` as gossip; whether the node cut the peer off.
fn gossip(n: &mut Node<MemStore>, peer: PeerId, v: &Vertex) -> (bool, Vec<Event>) {
    n.handle(
        NOW,
        Input::Message {
            peer,
            msg: Message::Vertex(v.clone()),
        },
    );
    let mut cut = false;
    let mut events = Vec::new();
    while let Some(a) = n.poll_action() {
        match a {
            Action::Disconnect { peer: p, .. } if p == peer => cut = true,
            Action::Event(e) => events.push(e),
            _ => {}
        }
    }
    (cut, events)
}

/// Postmortem: a copy the consensus dropped (too far ahead, or below the
/// pruning floor) was not held, so the next copy was verified again: one
/// 2,000-transaction vertex resent in a loop cost ~2,000 signature checks
/// per copy on the event loop, and the sender was never punished.
#[test]
fn a_vertex_resent_in_a_loop_is_verified_once_and_its_sender_is_cut_off() {
    let (mut n, keys, peer) = listener_with_peer(NodeConfig::default());
    let v = far_vertex(&n, &keys[0], 1_000_000, 20);
    let before = cov::hits("vertex_verified");
    let mut copies = 0;
    let mut banned = false;
    for _ in 0..1_000 {
        copies += 1;
        let (cut, events) = gossip(&mut n, peer, &v);
        banned |= events
            .iter()
            .any(|e| matches!(e, Event::PeerBanned { reason, .. } if reason.contains("again")));
        if cut {
            break;
        }
    }
    assert_eq!(cov::hits("vertex_verified") - before, 1, "verified once");
    assert!(banned, "the sender is banned for a while");
    assert!(copies <= 17, "cut off after {copies} copies");
}

/// Postmortem: nothing bounded what unsolicited gossip could make a node
/// verify: distinct valid vertices, each useless (far ahead), cost their
/// full signature checks, as fast as a peer could send them.
#[test]
fn unsolicited_gossip_past_a_peers_signature_budget_is_dropped_unchecked() {
    let config = NodeConfig {
        max_gossip_signature_checks_per_sec: 100,
        ..NodeConfig::default()
    };
    let (mut n, keys, peer) = listener_with_peer(config);
    let before = cov::hits("vertex_verified");
    let mut over_budget = 0;
    for round in 0..20 {
        // 21 signatures each: five fit in 100 (the fifth into debt).
        let v = far_vertex(&n, &keys[0], 1_000_000 + round, 20);
        let (cut, events) = gossip(&mut n, peer, &v);
        assert!(!cut, "over budget is not a fault: an honest burst may be");
        over_budget += events
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    Event::LimitHit {
                        limit: Limit::GossipVerification
                    }
                )
            })
            .count();
    }
    assert_eq!(cov::hits("vertex_verified") - before, 5);
    assert_eq!(over_budget, 15);
}

/// Postmortem: a vertex the links check refused banned whoever forwarded
/// it at once; but a node at its pruning floor cannot check a parent's
/// round and author, so an honest forwarder could be banned for a
/// Byzantine author's vertex. Now a refused vertex costs the forwarder one
/// useless vertex, and only many of them ban it.
#[test]
fn one_vertex_the_links_check_refuses_does_not_ban_its_forwarder_but_many_do() {
    let (mut n, genesis, keys, peer) = listener_on(4, NodeConfig::default());
    let body = |key: &Keypair, round: u64, parents: Vec<Hash>| {
        VertexBody {
            chain_id: genesis.chain_id(),
            round: Round(round),
            author: key.public(),
            parents,
            txs: vec![],
            attestation: None,
            evidence: Vec::new(),
            epoch_vote: None,
        }
        .sign(key)
    };
    let firsts: Vec<Vertex> = keys.iter().map(|k| body(k, 0, vec![])).collect();
    for v in &firsts {
        let (cut, _) = gossip(&mut n, peer, v);
        assert!(!cut);
    }
    let mut refused = 0;
    let mut cut_at = None;
    for i in 0..16u8 {
        // One parent where a quorum (3) is needed; a distinct body each time.
        let mut v = body(&keys[(i % 4) as usize], 1, vec![firsts[0].hash()]);
        v.body.txs = vec![alice_creates(&genesis, u64::from(i))];
        let v = v.body.sign(&keys[(i % 4) as usize]);
        let (cut, events) = gossip(&mut n, peer, &v);
        refused += events
            .iter()
            .filter(|e| matches!(e, Event::VertexRejected { .. }))
            .count();
        if cut {
            cut_at = Some(i + 1);
            break;
        }
    }
    assert_eq!(cut_at, Some(16), "{refused} refused before the ban");
}

/// Postmortem: the driver cut off a peer that did not read with a warning
/// of its own; the core never heard of it, so no `LimitHit` counted it and
/// the operator's metrics showed nothing. Now the driver reports it and the
/// core drops the peer.
#[test]
fn a_peer_that_does_not_read_is_dropped_by_the_core_and_counted() {
    let (mut n, _, peer) = listener_with_peer(NodeConfig::default());
    n.handle(
        NOW,
        Input::SendQueueFull {
            peer,
            queued_bytes: 70 << 20,
        },
    );
    let actions: Vec<Action> = std::iter::from_fn(|| n.poll_action()).collect();
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Event(Event::LimitHit {
            limit: Limit::SendQueue
        })
    )));
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Disconnect { peer: p, reason, .. } if *p == peer && reason.contains("does not read")
    )));
    // One the core forgot already is still closed: the driver stopped
    // sending to it and waits for the word.
    let stranger = PeerId(99);
    n.handle(
        NOW,
        Input::SendQueueFull {
            peer: stranger,
            queued_bytes: 1,
        },
    );
    let actions: Vec<Action> = std::iter::from_fn(|| n.poll_action()).collect();
    assert!(actions
        .iter()
        .any(|a| matches!(a, Action::Disconnect { peer: p, .. } if *p == stranger)));
}

/// Postmortem (the `adversary` simulation): a pest dropped for not reading
/// (24 MB queued towards it) dialed again 17 ms later and made the node
/// queue another 24 MB for it, and so on for the whole run. The first time
/// may be an honest peer on a bad link; the second time within a ban
/// period it is banned.
#[test]
fn a_peer_that_stops_reading_again_after_being_dropped_is_banned() {
    let (mut n, _, peer) = listener_with_peer(NodeConfig::default());
    let overflow = |n: &mut Node<MemStore>, peer: PeerId, at: Timestamp| {
        n.handle(
            at,
            Input::SendQueueFull {
                peer,
                queued_bytes: 70 << 20,
            },
        );
        std::iter::from_fn(|| n.poll_action()).collect::<Vec<Action>>()
    };
    let banned = |actions: &[Action]| {
        actions
            .iter()
            .any(|a| matches!(a, Action::Event(Event::PeerBanned { .. })))
    };
    let first = overflow(&mut n, peer, NOW);
    assert!(!banned(&first), "dropped, not banned, the first time");
    let again = PeerId(2);
    let later = Timestamp(NOW.0 + 100);
    attach_peer(
        &mut n,
        later,
        again,
        &Keypair::from_label("flooder"),
        Role::Listener,
    )
    .unwrap();
    while n.poll_action().is_some() {}
    let second = overflow(&mut n, again, later);
    assert!(banned(&second), "banned the second time: {second:?}");
}

/// Issue 12, one author one vote: two versions of a vertex prove an
/// equivocation; a third proves nothing more. Before, every version was
/// verified, stored and forwarded: a Byzantine validator could sign
/// thousands per round. Now a version past the second is dropped before
/// its signatures are checked. (Not counted against the sender: an honest
/// node may forward a version its peer already has two others of.)
#[test]
fn a_third_version_of_a_vertex_is_dropped_before_its_signatures_are_checked() {
    let (mut n, keys, peer) = listener_with_peer(NodeConfig::default());
    let (genesis, _) = test_genesis(1, ChainParams::default());
    let version = |tag: u8| {
        let mut body = bluepods_core::harness::test_vertex(&genesis, &keys[0], 0, &[]).body;
        body.attestation = Some(Box::new(bluepods_core::vertex::Attestation {
            round: Round(0),
            manifest_root: Hash([tag; 32]),
        }));
        body.sign(&keys[0])
    };
    let before = cov::hits("vertex_verified");
    for tag in 1..=2 {
        let (cut, _) = gossip(&mut n, peer, &version(tag));
        assert!(!cut);
    }
    assert_eq!(
        cov::hits("vertex_verified") - before,
        2,
        "two versions checked"
    );
    assert!(
        n.evidence().next().is_some(),
        "the equivocation is on record"
    );
    for tag in 3..=10 {
        let (cut, _) = gossip(&mut n, peer, &version(tag));
        assert!(!cut, "forwarding a version is no fault");
    }
    assert_eq!(
        cov::hits("vertex_verified") - before,
        2,
        "no later version is checked"
    );
    let held = n
        .chain()
        .unwrap()
        .consensus
        .versions_held(Round(0), &keys[0].public());
    assert_eq!(held, 2, "two versions kept");
}

/// Postmortem (`bluepods sim --scenario hostile --seed 10 --nodes 9
/// --validators 4`): an equivocating validator's transport made three
/// versions of its round-123 vertex. One honest validator kept two of them,
/// the others another pair; the equivocator's next vertex cited the third,
/// every honest vertex after it cited that one, and the node that had
/// dropped the third as excess could never take any of them: it stayed in
/// catch-up at round 125 for the rest of the run while the network went on
/// to round 352. A version beyond the two kept is still dropped unasked,
/// but one that a vertex held here names as its parent is taken.
#[test]
fn a_third_version_that_a_held_vertex_names_as_parent_is_taken() {
    let (mut n, genesis, keys, peer) = listener_on(4, NodeConfig::default());
    let equivocator = &keys[3];
    let version = |tag: u8| {
        let mut body = bluepods_core::harness::test_vertex(&genesis, equivocator, 0, &[]).body;
        body.attestation = Some(Box::new(bluepods_core::vertex::Attestation {
            round: Round(0),
            manifest_root: Hash([tag; 32]),
        }));
        body.sign(equivocator)
    };
    let vertex = bluepods_core::harness::test_vertex;
    let honest0: Vec<Vertex> = keys[..3]
        .iter()
        .map(|k| vertex(&genesis, k, 0, &[]))
        .collect();
    let hashes0: Vec<Hash> = honest0.iter().map(Vertex::hash).collect();
    for v in honest0.iter().chain([&version(1), &version(2)]) {
        assert!(!gossip(&mut n, peer, v).0);
    }
    // The equivocator's round-1 vertex cites its third version; two honest
    // round-1 vertices and it make the quorum an honest round-2 vertex cites.
    let third = version(3);
    let mut parents = hashes0.clone();
    parents.push(third.hash());
    let its_next = vertex(&genesis, equivocator, 1, &parents);
    let honest1: Vec<Vertex> = keys[..2]
        .iter()
        .map(|k| vertex(&genesis, k, 1, &hashes0))
        .collect();
    let mut parents2: Vec<Hash> = honest1.iter().map(Vertex::hash).collect();
    parents2.push(its_next.hash());
    let honest2 = vertex(&genesis, &keys[0], 2, &parents2);
    for v in honest1.iter().chain([&its_next, &honest2]) {
        assert!(!gossip(&mut n, peer, v).0);
    }
    let consensus = &n.chain().unwrap().consensus;
    assert!(
        consensus.is_pending(&honest2.hash()),
        "waits for its parent"
    );
    // The third version comes (asked for, or forwarded): it is taken, and
    // so is all that waited on it.
    assert!(!gossip(&mut n, peer, &third).0);
    let consensus = &n.chain().unwrap().consensus;
    assert_eq!(consensus.versions_held(Round(0), &equivocator.public()), 3);
    assert!(
        consensus.dag().contains(&honest2.hash()),
        "the honest vertex on top is in the DAG"
    );
    // A fourth version that nothing here names is still dropped unchecked.
    let before = cov::hits("vertex_verified");
    assert!(!gossip(&mut n, peer, &version(4)).0);
    assert_eq!(cov::hits("vertex_verified"), before, "not checked");
}
