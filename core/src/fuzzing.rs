//! Fuzz target bodies, shared by the libFuzzer targets in `fuzz/` and by
//! the test that replays their committed corpora (`core/tests/fuzz_corpus.rs`),
//! so that `cargo test` keeps every input a fuzzer ever saved.
//!
//! Each function takes arbitrary bytes, must never panic, and checks a
//! property (it panics, which the fuzzer reports, when one fails):
//! - [`wire_decode`]: whatever decodes re-encodes to a message that decodes
//!   to the same value;
//! - [`handshake`]: arbitrary messages from an unproven peer never complete
//!   a handshake (the proof needs the peer's key) and never panic the node;
//! - [`node_inputs`]: any sequence of connections, messages, bytes and time
//!   keeps one node within its limits;
//! - [`cluster_schedule`]: four validators under the delays and losses the
//!   bytes choose commit the same sequence and hold the same objects;
//! - [`chunk_delta`]: a delta answer, however crafted, never panics its
//!   asker nor rebuilds past the chunk's length, and an honest one rebuilds
//!   the served chunk exactly.

use crate::genesis::ChainParams;
use crate::harness::{
    attach_peer, commit_sequence, test_genesis, validator_config, Cluster, Faults,
};
use crate::ids::{Hash, PeerId, Round, Timestamp};
use crate::interface::{Action, Direction, Event, Input};
use crate::node::{init_chain, Node};
use crate::store::MemStore;
use crate::wire::{self, Message, RequestId, Role};
use crate::Keypair;

/// Largest frame the targets accept (the default limit).
const MAX_FRAME: usize = 16 * 1024 * 1024;

/// Reads bytes off the front of the input; zeros once it runs out.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn u64(&mut self) -> u64 {
        (0..8).fold(0, |acc, _| (acc << 8) | u64::from(self.u8()))
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Decoding arbitrary bytes never panics, and a decoded message survives a
/// round trip unchanged.
pub fn wire_decode(data: &[u8]) {
    if let Ok(msg) = wire::decode(data, MAX_FRAME) {
        let again = wire::decode(&wire::encode(&msg), MAX_FRAME);
        assert_eq!(
            again.as_ref(),
            Ok(&msg),
            "a decoded message must round-trip"
        );
    }
}

fn validator_node() -> (Node<MemStore>, Hash) {
    let (genesis, keys) = test_genesis(1, ChainParams::default());
    let mut store = MemStore::new();
    init_chain(&mut store, &genesis).expect("memory store");
    let node = Node::new(
        validator_config(50),
        keys[0].clone(),
        store,
        1,
        Timestamp(0),
    )
    .expect("memory store");
    (node, genesis.chain_id())
}

/// Drains the node's actions; returns whether a peer became ready.
fn drain(node: &mut Node<MemStore>) -> bool {
    let mut ready = false;
    while let Some(a) = node.poll_action() {
        if let Action::Event(Event::PeerReady { .. }) = a {
            ready = true;
        }
    }
    ready
}

/// Bytes from `peer` as the driver would hand them over: a message, or a
/// malformed one.
fn decoded(peer: PeerId, bytes: &[u8]) -> Input {
    match wire::decode(bytes, MAX_FRAME) {
        Ok(msg) => Input::Message { peer, msg },
        Err(e) => Input::MalformedMessage {
            peer,
            error: e.to_string(),
        },
    }
}

/// Length-prefixed messages (one length byte, then that many bytes, or
/// two when the first is 255) from an unproven inbound peer.
pub fn handshake(data: &[u8]) {
    let (mut node, _) = validator_node();
    let mut b = Bytes(data);
    let peer = PeerId(1);
    node.handle(
        Timestamp(0),
        Input::PeerConnected {
            peer,
            addr: "fuzz".into(),
            direction: Direction::Inbound,
            session: crate::harness::TEST_SESSION,
        },
    );
    drain(&mut node);
    let mut now = 0;
    while !b.is_empty() {
        let mut len = usize::from(b.u8());
        if len == 255 {
            len += usize::from(b.u8()) << 8;
        }
        now += 1;
        node.handle(Timestamp(now), decoded(peer, b.take(len)));
        assert!(
            !drain(&mut node),
            "an unproven peer completed the handshake"
        );
    }
}

/// A structured message from a few bytes: requests of every kind with
/// fuzzed fields, so that the node's serving paths are reached.
fn crafted(b: &mut Bytes) -> Message {
    let request = RequestId(u64::from(b.u8()));
    let round = |b: &mut Bytes| Round(u64::from(b.u8()) * 7);
    match b.u8() % 8 {
        0 => Message::GetRounds {
            request,
            from: round(b),
            to: round(b),
        },
        1 => Message::GetVertices {
            request,
            hashes: (0..b.u8() % 8).map(|_| Hash([b.u8(); 32])).collect(),
        },
        2 => Message::GetManifest {
            request,
            round: (b.u8() % 2 == 0).then(|| round(b)),
        },
        3 => Message::GetChunk {
            request,
            round: round(b),
            index: u32::from(b.u8()),
        },
        4 => Message::Status {
            highest_round: Some(Round(b.u64() % 100_000)),
            committed_round: Some(round(b)),
        },
        5 => Message::GetPeers { request },
        6 => Message::GetChunkDelta {
            request,
            round: round(b),
            index: u32::from(b.u8()),
            held: (0..b.u8() % 16).map(|_| b.u64()).collect(),
        },
        _ => Message::GetGenesis { request },
    }
}

/// Any sequence of peers connecting, proving their keys, sending raw or
/// crafted messages, leaving, and time passing.
pub fn node_inputs(data: &[u8]) {
    let (mut node, _) = validator_node();
    let mut b = Bytes(data);
    let mut now = 0u64;
    let config = validator_config(50);
    while !b.is_empty() {
        let peer = PeerId(u64::from(b.u8() % 4) + 1);
        match b.u8() % 6 {
            0 => node.handle(
                Timestamp(now),
                Input::PeerConnected {
                    peer,
                    addr: format!("p{}", peer.0),
                    direction: Direction::Inbound,
                    session: crate::harness::TEST_SESSION,
                },
            ),
            1 => {
                let role = if b.u8() % 2 == 0 {
                    Role::Validator
                } else {
                    Role::Listener
                };
                let key = Keypair::from_label(&format!("fuzz-peer-{}", peer.0));
                let _ = attach_peer(&mut node, Timestamp(now), peer, &key, role);
            }
            2 => {
                let len = usize::from(b.u8());
                node.handle(Timestamp(now), decoded(peer, b.take(len)));
            }
            3 => {
                let msg = crafted(&mut b);
                node.handle(Timestamp(now), Input::Message { peer, msg });
            }
            4 => node.handle(
                Timestamp(now),
                Input::PeerDisconnected {
                    peer,
                    reason: "fuzz".into(),
                },
            ),
            _ => {
                now += u64::from(b.u8()) * 20;
                node.handle_timeout(Timestamp(now));
            }
        }
        drain(&mut node);
        let s = node.status();
        assert!(s.peers.len() <= config.max_peers, "peer limit");
        assert!(
            s.pending_vertices <= config.max_pending_vertices,
            "pending limit"
        );
        assert!(s.mempool_txs <= config.max_mempool_txs, "mempool limit");
        assert!(
            s.buffer_bytes <= config.sync.buffer_max_bytes,
            "buffer limit"
        );
    }
}

/// Four validators under the delays and losses the bytes choose, for three
/// simulated seconds, with a few transactions: the same commit sequence and
/// the same objects everywhere.
pub fn cluster_schedule(data: &[u8]) {
    let mut b = Bytes(data);
    let seed = b.u64();
    let max_delay = 1 + u64::from(b.u8() % 120);
    let drop_per_mille = u64::from(b.u8() % 50);
    let txs = usize::from(b.u8() % 6);
    let (genesis, keys) = test_genesis(4, ChainParams::default());
    let mut c = Cluster::new(
        seed,
        Faults {
            min_delay_ms: 1,
            max_delay_ms: max_delay,
            drop_per_mille,
        },
    );
    c.add_validators(&genesis, &keys, 50);
    c.run_for(300);
    let alice = Keypair::from_label("fuzz-alice");
    for n in 0..txs {
        let tx = crate::tx::TxBody {
            chain_id: genesis.chain_id(),
            sender: alice.public(),
            nonce: n as u64,
            expiry: Round(10_000),
            ops: vec![crate::tx::Operation::Create {
                data: vec![b.u8(); 4],
            }],
        }
        .sign(&alice);
        let _ = c.submit(usize::from(b.u8() % 4), tx);
    }
    c.run_for(3_000);
    let seqs: Vec<_> = (0..4).map(|i| commit_sequence(c.node(i).store())).collect();
    let shortest = seqs.iter().map(Vec::len).min().unwrap_or(0);
    for s in &seqs[1..] {
        assert_eq!(
            s[..shortest],
            seqs[0][..shortest],
            "commit sequences differ"
        );
    }
    // Nodes at the same committed round hold the same objects.
    let rounds = c.committed_rounds();
    for i in 1..4 {
        if rounds[i] == rounds[0] {
            let a: Vec<_> = c.node(0).store().objects().collect();
            let b: Vec<_> = c.node(i).store().objects().collect();
            assert_eq!(a, b, "same round, different objects");
        }
    }
}

/// Objects the bytes choose, sorted by id: ids from a small set, so that
/// two draws overlap as two snapshots of one state do.
fn drawn_objects(b: &mut Bytes) -> Vec<crate::tx::Object> {
    let mut by_id = std::collections::BTreeMap::new();
    for _ in 0..b.u8() % 64 {
        let id = crate::ids::ObjectId(
            crate::crypto::hash(crate::crypto::Domain::Object, &[b.u8() % 80]).0,
        );
        let version = u64::from(b.u8() % 3);
        by_id.insert(
            id,
            crate::tx::Object {
                id,
                version,
                owner: crate::ids::PublicKey([1; 32]),
                data: vec![b.u8(); usize::from(b.u8() % 40)],
            },
        );
    }
    by_id.into_values().collect()
}

/// Delta answers (`snapshot::pages`): crafted parts and raw bytes never
/// panic `rebuild` nor make it return more than the chunk's length; the
/// honest delta between two drawn states rebuilds the served one exactly.
pub fn chunk_delta(data: &[u8]) {
    use crate::snapshot::pages::{delta_parts, encode_delta, rebuild, PagePart, Pages};
    let mut b = Bytes(data);
    let held = Pages::of_records(&drawn_objects(&mut b));
    let served = Pages::of_records(&drawn_objects(&mut b));
    let honest = encode_delta(&delta_parts(&served, &held.digests()));
    let rebuilt = rebuild(&honest, &held, served.raw.len() as u32);
    assert_eq!(rebuilt.as_deref(), Ok(served.raw.as_slice()));
    let raw_len = u32::from(b.u8()) * 64;
    let parts: Vec<PagePart> = (0..b.u8() % 16)
        .map(|_| match b.u8() % 2 {
            0 => PagePart::Held(u32::from(b.u8())),
            _ => {
                let n = usize::from(b.u8() % 50);
                PagePart::Bytes(b.take(n).to_vec())
            }
        })
        .collect();
    if let Ok(raw) = rebuild(&encode_delta(&parts), &held, raw_len) {
        assert!(raw.len() <= raw_len as usize);
    }
    if let Ok(raw) = rebuild(b.0, &held, raw_len) {
        assert!(raw.len() <= raw_len as usize);
    }
}
