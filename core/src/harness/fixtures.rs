//! Fixtures for tests: a genesis with labelled validator keys, configs, a
//! transaction, a peer attached by hand, and a store's commit sequence.

use crate::config::NodeConfig;
use crate::crypto::Keypair;
use crate::genesis::{ChainParams, Genesis, ValidatorInfo};
use crate::ids::{PeerId, Round, Timestamp};
use crate::interface::{Action, Direction, Input};
use crate::node::Node;
use crate::store::MemStore;
use crate::tx::Transaction;
use crate::wire::{Message, Role};

/// A genesis with `n` validators named `v0..vn` and their keys.
pub fn test_genesis(n: usize, params: ChainParams) -> (Genesis, Vec<Keypair>) {
    let keys: Vec<Keypair> = (0..n)
        .map(|i| Keypair::from_label(&format!("validator-{i}")))
        .collect();
    let genesis = Genesis {
        chain_name: "harness".into(),
        created_unix_ms: 0,
        params,
        validators: keys
            .iter()
            .enumerate()
            .map(|(i, k)| ValidatorInfo::new(k.public(), format!("v{i}")))
            .collect(),
        objects: Vec::new(),
        synthetic_objects: 0,
    };
    (genesis, keys)
}

/// The commit sequence recorded in a store: committed vertices sorted by
/// (anchor round, round, hash), which is exactly the order they were applied.
pub fn commit_sequence(store: &MemStore) -> Vec<(Round, Round, crate::ids::Hash)> {
    use crate::store::Store;
    let mut seq: Vec<_> = store
        .vertices_in_rounds(Round(0), Round(u64::MAX), usize::MAX)
        .expect("memory store cannot fail")
        .into_iter()
        .filter_map(|s| {
            s.committed_at
                .map(|a| (a, s.vertex.round(), s.vertex.hash()))
        })
        .collect();
    seq.sort();
    seq
}

/// A transaction of `ops` signed by `key`, with `nonce`, valid until round
/// 10,000.
pub fn signed_tx(
    genesis: &Genesis,
    key: &Keypair,
    nonce: u64,
    ops: Vec<crate::tx::Operation>,
) -> Transaction {
    crate::tx::TxBody {
        chain_id: genesis.chain_id(),
        sender: key.public(),
        nonce,
        expiry: Round(10_000),
        ops,
    }
    .sign(key)
}

/// A transaction from `alice` (a fixed test key) creating one 8-byte
/// object, with `nonce`, valid until round 10,000.
pub fn alice_creates(genesis: &Genesis, nonce: u64) -> Transaction {
    let ops = vec![crate::tx::Operation::Create { data: vec![0; 8] }];
    signed_tx(genesis, &Keypair::from_label("alice"), nonce, ops)
}

/// A vertex of `round` by `key` citing `parents` (sorted, as producers
/// sort them), with no transactions: for tests that build DAGs by hand.
pub fn test_vertex(
    genesis: &Genesis,
    key: &Keypair,
    round: u64,
    parents: &[crate::ids::Hash],
) -> crate::vertex::Vertex {
    let mut parents = parents.to_vec();
    parents.sort();
    crate::vertex::VertexBody {
        chain_id: genesis.chain_id(),
        round: Round(round),
        author: key.public(),
        parents,
        txs: Vec::new(),
        attestation: None,
        evidence: Vec::new(),
        epoch_vote: None,
    }
    .sign(key)
}

/// A validator config for the harness with the given round interval.
pub fn validator_config(round_interval_ms: u64) -> NodeConfig {
    NodeConfig {
        role: Role::Validator,
        round_interval_ms,
        ..NodeConfig::default()
    }
}

/// The session binding of connections in tests that talk to one node
/// directly (`Input::PeerConnected::session`).
pub const TEST_SESSION: [u8; 32] = [0x5E; 32];

/// Completes a handshake with `node` as a listener peer holding `key`, for
/// tests and benchmarks that talk to one node directly. Drains (and drops)
/// the node's actions.
pub fn attach_peer<S: crate::store::Store>(
    node: &mut Node<S>,
    now: Timestamp,
    peer: PeerId,
    key: &Keypair,
    role: Role,
) -> Result<(), String> {
    use crate::wire::{Hello, PROTOCOL_VERSION};
    let chain_id = node.chain_id();
    node.handle(
        now,
        Input::PeerConnected {
            peer,
            addr: "test-peer".into(),
            direction: Direction::Inbound,
            session: TEST_SESSION,
        },
    );
    let mut nonce = None;
    while let Some(a) = node.poll_action() {
        if let Action::Send {
            msg: Message::Hello(h),
            ..
        } = a
        {
            nonce = Some(h.nonce);
        }
    }
    let nonce = nonce.ok_or("node sent no hello")?;
    let hello = Hello {
        version: PROTOCOL_VERSION,
        chain_id,
        node_key: key.public(),
        role,
        highest_round: None,
        committed_round: None,
        snapshot_round: None,
        nonce: [7; 32],
        listen_addr: None,
    };
    let proof = key.sign(
        crate::crypto::Domain::Handshake,
        &crate::peers::proof_message(&nonce, &TEST_SESSION, &hello),
    );
    node.handle(
        now,
        Input::Message {
            peer,
            msg: Message::Hello(hello),
        },
    );
    node.handle(
        now,
        Input::Message {
            peer,
            msg: Message::HelloProof(proof),
        },
    );
    while node.poll_action().is_some() {}
    let ready = node
        .status()
        .peers
        .iter()
        .any(|p| p.id == peer.0 && p.ready);
    ready
        .then_some(())
        .ok_or_else(|| "handshake did not complete".to_string())
}
