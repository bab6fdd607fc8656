//! The handshake's checks, each on its own: what a node refuses, which of
//! two connections from one key it keeps, and what it reports.

use bluepods_core::crypto::Domain;
use bluepods_core::harness::{test_genesis, TEST_SESSION};
use bluepods_core::peers::proof_message;
use bluepods_core::wire::{Hello, PROTOCOL_VERSION};
use bluepods_core::{
    init_chain, Action, CloseCode, Direction, Event, Hash, Input, Keypair, MemStore, Message, Node,
    NodeConfig, PeerId, Role, Timestamp,
};

const NOW: Timestamp = Timestamp(1_000);

/// A listener node, on a chain if `chain` is set, drained.
fn node(chain: Option<&bluepods_core::Genesis>, config: NodeConfig) -> Node<MemStore> {
    let mut store = MemStore::new();
    if let Some(g) = chain {
        init_chain(&mut store, g).unwrap();
    }
    let mut n = Node::new(config, Keypair::from_label("node"), store, 1, NOW).unwrap();
    while n.poll_action().is_some() {}
    n
}

fn listener() -> NodeConfig {
    NodeConfig {
        role: Role::Listener,
        ..NodeConfig::default()
    }
}

/// Connects `peer` (in `direction`); the node's challenge.
fn connect(n: &mut Node<MemStore>, peer: PeerId, direction: Direction) -> [u8; 32] {
    n.handle(
        NOW,
        Input::PeerConnected {
            peer,
            addr: format!("peer{}", peer.0),
            direction,
            session: TEST_SESSION,
        },
    );
    std::iter::from_fn(|| n.poll_action())
        .find_map(|a| match a {
            Action::Send {
                msg: Message::Hello(h),
                ..
            } => Some(h.nonce),
            _ => None,
        })
        .expect("the node says hello first")
}

fn hello(key: &Keypair, role: Role, chain_id: Option<Hash>) -> Message {
    Message::Hello(Hello {
        version: PROTOCOL_VERSION,
        chain_id,
        node_key: key.public(),
        role,
        highest_round: None,
        committed_round: None,
        snapshot_round: None,
        nonce: [9; 32],
        listen_addr: None,
    })
}

/// The proof for `hello` (the prover's own) against the challenge `nonce`.
fn proof(key: &Keypair, nonce: &[u8; 32], hello: &Message) -> Message {
    let Message::Hello(hello) = hello else {
        panic!("a proof covers a hello");
    };
    let msg = proof_message(nonce, &TEST_SESSION, hello);
    Message::HelloProof(key.sign(Domain::Handshake, &msg))
}

/// Runs a whole handshake as `key` on connection `peer`; every action.
fn handshake(
    n: &mut Node<MemStore>,
    peer: PeerId,
    direction: Direction,
    key: &Keypair,
    role: Role,
    chain_id: Option<Hash>,
) -> Vec<Action> {
    let nonce = connect(n, peer, direction);
    let mut out = Vec::new();
    let ours = hello(key, role, chain_id);
    let proven = proof(key, &nonce, &ours);
    for msg in [ours, proven] {
        n.handle(NOW, Input::Message { peer, msg });
        out.extend(std::iter::from_fn(|| n.poll_action()));
    }
    out
}

fn dropped(actions: &[Action], peer: PeerId) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::Disconnect { peer: p, .. } if *p == peer))
}

fn ready(actions: &[Action], peer: PeerId) -> Option<bool> {
    actions.iter().find_map(|a| match a {
        Action::Event(Event::PeerReady {
            peer: p, outbound, ..
        }) if *p == peer => Some(*outbound),
        _ => None,
    })
}

#[test]
fn two_nodes_that_both_know_no_chain_refuse_each_other() {
    let mut n = node(None, listener());
    connect(&mut n, PeerId(1), Direction::Inbound);
    let stranger = Keypair::from_label("stranger");
    n.handle(
        NOW,
        Input::Message {
            peer: PeerId(1),
            msg: hello(&stranger, Role::Listener, None),
        },
    );
    let actions: Vec<Action> = std::iter::from_fn(|| n.poll_action()).collect();
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Send { msg: Message::Reject { reason }, .. } if reason.contains("neither side")
    )));
    assert!(dropped(&actions, PeerId(1)));
}

#[test]
fn the_listener_limit_applies_to_listeners_only() {
    let (genesis, keys) = test_genesis(1, Default::default());
    let chain = Some(genesis.chain_id());
    let config = NodeConfig {
        max_listener_peers: 0,
        ..listener()
    };
    let mut n = node(Some(&genesis), config);
    let l = handshake(
        &mut n,
        PeerId(1),
        Direction::Inbound,
        &Keypair::from_label("l"),
        Role::Listener,
        chain,
    );
    assert!(dropped(&l, PeerId(1)) && ready(&l, PeerId(1)).is_none());
    // A member of the validator set (a claim alone is not enough: see
    // `claiming_to_be_a_validator_does_not_get_past_the_listener_limit`).
    let v = handshake(
        &mut n,
        PeerId(2),
        Direction::Inbound,
        &keys[0],
        Role::Validator,
        chain,
    );
    assert!(!dropped(&v, PeerId(2)) && ready(&v, PeerId(2)).is_some());
}

#[test]
fn a_second_connection_from_one_key_in_the_same_direction_replaces_the_first() {
    let (genesis, _) = test_genesis(1, Default::default());
    let chain = Some(genesis.chain_id());
    let mut n = node(Some(&genesis), listener());
    let key = Keypair::from_label("twice");
    let first = handshake(
        &mut n,
        PeerId(1),
        Direction::Inbound,
        &key,
        Role::Listener,
        chain,
    );
    assert!(ready(&first, PeerId(1)).is_some());
    let second = handshake(
        &mut n,
        PeerId(2),
        Direction::Inbound,
        &key,
        Role::Listener,
        chain,
    );
    assert!(dropped(&second, PeerId(1)), "the older connection goes");
    assert!(!dropped(&second, PeerId(2)) && ready(&second, PeerId(2)).is_some());
}

#[test]
fn peer_ready_says_who_dialed() {
    let (genesis, _) = test_genesis(1, Default::default());
    let chain = Some(genesis.chain_id());
    let mut n = node(Some(&genesis), listener());
    let theirs = handshake(
        &mut n,
        PeerId(1),
        Direction::Inbound,
        &Keypair::from_label("a"),
        Role::Listener,
        chain,
    );
    assert_eq!(ready(&theirs, PeerId(1)), Some(false));
    let ours = handshake(
        &mut n,
        PeerId(2),
        Direction::Outbound,
        &Keypair::from_label("b"),
        Role::Listener,
        chain,
    );
    assert_eq!(ready(&ours, PeerId(2)), Some(true));
}

/// Postmortem (issue 11): `--bootstrap-addr 127.0.0.1:1` (nothing there)
/// and `nonsense:xx` sat in `phase idle -> connecting` with no further log
/// line, forever: failed dials were retried silently, and a one-shot sync
/// never gave up. Now each failure is an event (address, attempt, reason,
/// next attempt), and after `retry_attempts` failures of every bootstrap
/// address the node names why a one-shot sync should give up.
#[test]
fn an_unreachable_bootstrap_is_reported_at_every_attempt_and_given_up_on_after_retry_attempts() {
    use bluepods_core::harness::{Cluster, Faults};
    let mut c = Cluster::new(5, Faults::default());
    let config = NodeConfig {
        bootstrap_peers: vec!["nowhere:9000".into()],
        ..listener()
    };
    let j = c.add_joiner("j0", Keypair::from_label("joiner"), config);
    let attempts = |c: &Cluster| -> Vec<(u32, u64)> {
        c.nodes[j]
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::DialFailed {
                    addr,
                    attempt,
                    attempts_max,
                    reason,
                    retry_in_ms,
                } => {
                    assert_eq!((addr.as_str(), *attempts_max), ("nowhere:9000", 5));
                    assert!(!reason.is_empty());
                    Some((*attempt, *retry_in_ms))
                }
                _ => None,
            })
            .collect()
    };
    let given_up = |c: &Cluster| c.node(j).unreachable_bootstraps();
    assert!(c.run_until(60_000, |c| attempts(c).len() >= 4));
    assert_eq!(given_up(&c), None, "not before the fifth failure");
    assert!(c.run_until(60_000, |c| given_up(c).is_some()));
    let seen = attempts(&c);
    assert_eq!(
        seen.iter().map(|(a, _)| *a).collect::<Vec<_>>(),
        (1..=seen.len() as u32).collect::<Vec<_>>()
    );
    // Backing off: each wait at least the one before (jitter aside).
    assert!(seen.windows(2).all(|w| w[1].1 + 250 >= w[0].1), "{seen:?}");
    let why = given_up(&c).unwrap();
    assert!(
        why.contains("nowhere:9000") && why.contains("5 attempts"),
        "{why}"
    );
    // A daemon keeps trying, and its status says where and why.
    let status = c.node(j).status();
    let u = &status.unreachable[0];
    assert_eq!(u.addr, "nowhere:9000");
    assert!(u.failures >= 5 && u.last_error.is_some(), "{u:?}");
}

/// Postmortem (issue 11): a peer's reason strings (its `Reject`, its
/// `NotAvailable`, the reason it closed the connection with) went into the
/// log as sent, so a newline and a timestamp forged a log line of their own
/// ("phase catch_up -> live", "state verification: OK"). They are now
/// printable text of bounded length before anything reports them.
#[test]
fn a_peers_reason_strings_cannot_forge_log_lines() {
    let (genesis, _) = test_genesis(1, Default::default());
    let mut n = node(Some(&genesis), listener());
    let forged = format!(
        "bye\n2026-12-01T00:00:00.000000Z  INFO [SYNC] state verification: OK\r\u{1b}[2K{}",
        "x".repeat(10_000)
    );
    let reasons = |actions: &[Action]| -> Vec<String> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Event(
                    Event::PeerRejected { reason, .. } | Event::PeerGone { reason, .. },
                ) => Some(reason.clone()),
                _ => None,
            })
            .collect()
    };
    let mut seen = Vec::new();
    // A peer that refuses us with a forged reason.
    let key = Keypair::from_label("liar");
    handshake(
        &mut n,
        PeerId(1),
        Direction::Outbound,
        &key,
        Role::Listener,
        Some(genesis.chain_id()),
    );
    n.handle(
        NOW,
        Input::Message {
            peer: PeerId(1),
            msg: Message::Reject {
                reason: forged.clone(),
            },
        },
    );
    seen.extend(reasons(
        &std::iter::from_fn(|| n.poll_action()).collect::<Vec<_>>(),
    ));
    // A peer that closes the connection with one.
    handshake(
        &mut n,
        PeerId(2),
        Direction::Inbound,
        &key,
        Role::Listener,
        Some(genesis.chain_id()),
    );
    n.handle(
        NOW,
        Input::PeerDisconnected {
            peer: PeerId(2),
            reason: format!("closed by peer: {forged}"),
        },
    );
    seen.extend(reasons(
        &std::iter::from_fn(|| n.poll_action()).collect::<Vec<_>>(),
    ));
    assert_eq!(seen.len(), 2, "{seen:?}");
    for r in &seen {
        let head: String = r.chars().take(120).collect();
        assert!(!r.chars().any(char::is_control), "{head:?}");
        assert!(r.len() <= 400, "{} bytes", r.len());
    }
}

/// Postmortem (issue 11): a hello's `listen_addr` had no bound: a peer
/// could announce megabytes of address, or one with a newline, and the node
/// stored it, showed it in its status and handed it on in peer exchange
/// (whose own answers were bounded to 256-byte addresses).
#[test]
fn a_hello_announcing_an_oversized_or_unprintable_address_is_refused() {
    let (genesis, _) = test_genesis(1, Default::default());
    let key = Keypair::from_label("announcer");
    for (i, addr) in ["a".repeat(10_000), "10.0.0.1:9000\nforged".to_string()]
        .into_iter()
        .enumerate()
    {
        let mut n = node(Some(&genesis), listener());
        let peer = PeerId(i as u64 + 1);
        connect(&mut n, peer, Direction::Inbound);
        let Message::Hello(mut h) = hello(&key, Role::Listener, Some(genesis.chain_id())) else {
            unreachable!()
        };
        h.listen_addr = Some(addr);
        n.handle(
            NOW,
            Input::Message {
                peer,
                msg: Message::Hello(h),
            },
        );
        let actions: Vec<Action> = std::iter::from_fn(|| n.poll_action()).collect();
        assert!(dropped(&actions, peer), "{actions:?}");
    }
    // A sane one is fine.
    let mut n = node(Some(&genesis), listener());
    let a = handshake(
        &mut n,
        PeerId(9),
        Direction::Inbound,
        &key,
        Role::Listener,
        Some(genesis.chain_id()),
    );
    assert_eq!(ready(&a, PeerId(9)), Some(false));
}

/// Postmortem (issue 11): `max_listener_peers` counted peers by the role
/// they claimed in their hello, so any number of nodes claiming to be
/// validators took connection slots past it, up to `max_peers`. Only a
/// proven key of the validator set (this epoch's or the next) counts as a
/// validator; everyone else, whatever it claims, is a listener.
#[test]
fn claiming_to_be_a_validator_does_not_get_past_the_listener_limit() {
    let (genesis, keys) = test_genesis(1, Default::default());
    let config = NodeConfig {
        max_listener_peers: 2,
        ..listener()
    };
    let mut n = node(Some(&genesis), config);
    let chain = Some(genesis.chain_id());
    for i in 1..=2u64 {
        let key = Keypair::from_label(&format!("claimer-{i}"));
        let a = handshake(
            &mut n,
            PeerId(i),
            Direction::Inbound,
            &key,
            Role::Validator,
            chain,
        );
        assert_eq!(ready(&a, PeerId(i)), Some(false), "within the limit");
    }
    let key = Keypair::from_label("claimer-3");
    let a = handshake(
        &mut n,
        PeerId(3),
        Direction::Inbound,
        &key,
        Role::Validator,
        chain,
    );
    assert!(
        dropped(&a, PeerId(3)),
        "a third non-member claiming validator: {a:?}"
    );
    // A member of the set is a validator, whatever the count.
    let a = handshake(
        &mut n,
        PeerId(4),
        Direction::Inbound,
        &keys[0],
        Role::Validator,
        chain,
    );
    assert_eq!(ready(&a, PeerId(4)), Some(false));
}

/// Postmortem (issue 11): requests that overtake a peer's proof are held
/// until it arrives, `max_early_messages` of them — counted in messages,
/// not bytes. With 16 MiB frames a peer that never sends its proof pinned
/// 256 MiB, and every half-open connection as much again. Held requests
/// are now bounded in bytes too (`max_early_message_bytes`).
#[test]
fn requests_held_before_a_peers_proof_are_bounded_in_bytes() {
    let (genesis, _) = test_genesis(1, Default::default());
    let mut n = node(Some(&genesis), listener());
    let key = Keypair::from_label("unproven");
    let peer = PeerId(1);
    connect(&mut n, peer, Direction::Inbound);
    let chain = Some(genesis.chain_id());
    n.handle(
        NOW,
        Input::Message {
            peer,
            msg: hello(&key, Role::Listener, chain),
        },
    );
    let big = |i: u8| Message::GetVertices {
        request: bluepods_core::wire::RequestId(u64::from(i)),
        hashes: vec![Hash([i; 32]); 5_000],
    };
    let mut actions = Vec::new();
    for i in 0..3 {
        n.handle(NOW, Input::Message { peer, msg: big(i) });
        actions.extend(std::iter::from_fn(|| n.poll_action()));
    }
    assert!(dropped(&actions, peer), "480 KB held for an unproven peer");
}

/// Postmortem: bytes that did not decode dropped an unproven peer with a
/// reason that named only its handle, so an operator could not tell who sent
/// them, and the close carried the same code as "too many peers".
#[test]
fn a_malformed_frame_is_reported_once_with_the_senders_address_and_closes_as_a_violation() {
    let (genesis, _) = test_genesis(1, Default::default());
    let mut n = node(Some(&genesis), listener());
    let peer = PeerId(4);
    connect(&mut n, peer, Direction::Inbound);
    let mut actions = Vec::new();
    for _ in 0..3 {
        n.handle(
            NOW,
            Input::MalformedMessage {
                peer,
                error: "frame of 4294967295 bytes is over the 4194304-byte limit".into(),
            },
        );
        actions.extend(std::iter::from_fn(|| n.poll_action()));
    }
    let reports: Vec<&Event> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Event(e @ (Event::PeerRejected { .. } | Event::PeerBanned { .. })) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(reports.len(), 1, "one report per peer: {reports:?}");
    assert!(
        matches!(reports[0], Event::PeerRejected { addr, reason, .. }
            if addr == "peer4" && reason.contains("malformed") && reason.contains("4294967295")),
        "{reports:?}"
    );
    let closes: Vec<&Action> = actions
        .iter()
        .filter(|a| matches!(a, Action::Disconnect { .. }))
        .collect();
    assert_eq!(closes.len(), 1);
    assert!(
        matches!(
            closes[0],
            Action::Disconnect {
                code: CloseCode::Violation,
                ..
            }
        ),
        "{closes:?}"
    );
}

/// Postmortem: connections that never said hello took peer slots until
/// their handshake deadline, so a client opening `max_peers` connections
/// and staying silent — again every five seconds — kept every honest peer
/// out, the node's own dials included.
#[test]
fn silent_connections_cannot_fill_the_peer_table() {
    let (genesis, _) = test_genesis(1, Default::default());
    let config = NodeConfig {
        max_peers: 20,
        ..listener()
    };
    let mut n = node(Some(&genesis), config);
    let mut refused = 0;
    for i in 0..20 {
        n.handle(
            NOW,
            Input::PeerConnected {
                peer: PeerId(100 + i),
                addr: format!("flood{i}"),
                direction: Direction::Inbound,
                session: TEST_SESSION,
            },
        );
        let actions: Vec<Action> = std::iter::from_fn(|| n.poll_action()).collect();
        if dropped(&actions, PeerId(100 + i)) {
            refused += 1;
        }
    }
    assert_eq!(refused, 4, "only max_unproven_peers (16) wait for a hello");
    let key = Keypair::from_label("honest");
    let actions = handshake(
        &mut n,
        PeerId(7),
        Direction::Outbound,
        &key,
        Role::Listener,
        Some(genesis.chain_id()),
    );
    assert_eq!(
        ready(&actions, PeerId(7)),
        Some(true),
        "our own dial gets through"
    );
}

/// Postmortem: the proof signed the challenge, key and chain but not the
/// connection, so a relay between two nodes could pass each one's hello and
/// proof to the other and be taken for either (then get it banned, or
/// rewrite its address and role, which nothing signed). The relay's two
/// connections have different TLS sessions, and the proof now signs the
/// session and the whole hello.
#[test]
fn a_relay_passing_a_proof_through_is_not_taken_for_its_author() {
    let (genesis, _) = test_genesis(1, Default::default());
    let chain = Some(genesis.chain_id());
    let victim = Keypair::from_label("victim");
    for rewrite_addr in [false, true] {
        let mut n = node(Some(&genesis), listener());
        let peer = PeerId(1);
        let nonce = connect(&mut n, peer, Direction::Inbound);
        let signed = hello(&victim, Role::Listener, chain);
        // The victim signed for its own connection to the relay.
        let Message::Hello(h) = &signed else {
            unreachable!()
        };
        let session = if rewrite_addr {
            TEST_SESSION
        } else {
            [0xAB; 32]
        };
        let msg = proof_message(&nonce, &session, h);
        let proof = Message::HelloProof(victim.sign(Domain::Handshake, &msg));
        let passed_on = if rewrite_addr {
            Message::Hello(Hello {
                listen_addr: Some("203.0.113.9:7000".into()),
                ..h.clone()
            })
        } else {
            signed.clone()
        };
        let mut actions = Vec::new();
        for msg in [passed_on, proof] {
            n.handle(NOW, Input::Message { peer, msg });
            actions.extend(std::iter::from_fn(|| n.poll_action()));
        }
        assert_eq!(ready(&actions, peer), None, "rewrite_addr={rewrite_addr}");
        assert!(dropped(&actions, peer));
    }
}
