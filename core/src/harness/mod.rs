//! An in-process network of core nodes for tests, property tests and fuzzing.
//!
//! Every node is a real [`Node`] over a [`MemStore`]; messages really go
//! through the wire encoding. Time is virtual and every random choice (link
//! delays, drops, node seeds) comes from one seed, so a run is reproducible.
//!
//! Links model QUIC: the gossip stream of a connection is ordered (a message
//! never overtakes an earlier one on the same stream), while request streams
//! are independent. `drop_per_mille` drops gossiped vertices and request
//! traffic, never handshake messages, the way a lost stream would. A partition
//! closes the connections across it and refuses new ones until healed.
//!
//! The harness also records a trace, one fixed-width row per delivery or
//! event (`t_ms node dir summary`), for insta snapshots.
//!
//! `net.rs` moves messages (links, delays, drops, partitions), `trace.rs`
//! formats trace rows, `fixtures.rs` holds genesis, keys and configs for
//! tests.

use crate::config::NodeConfig;
use crate::crypto::Keypair;
use crate::genesis::Genesis;
use crate::ids::{PeerId, Round, Timestamp};
use crate::interface::{Direction, Event, Input};
use crate::node::{init_chain, Node};
use crate::rng::DetRng;
use crate::store::MemStore;
use crate::tx::Transaction;
use crate::wire::{self, Message};
use std::collections::{BTreeMap, BTreeSet};

/// Link behaviour.
#[derive(Clone, Debug)]
pub struct Faults {
    /// Smallest one-way delay.
    pub min_delay_ms: u64,
    /// Largest one-way delay.
    pub max_delay_ms: u64,
    /// Chance in 1000 that a gossiped vertex or a request-stream message is lost.
    pub drop_per_mille: u64,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            min_delay_ms: 5,
            max_delay_ms: 20,
            drop_per_mille: 0,
        }
    }
}

impl Faults {
    /// Every message takes exactly `delay_ms`, none is lost.
    pub fn fixed_delay(delay_ms: u64) -> Self {
        Faults {
            min_delay_ms: delay_ms,
            max_delay_ms: delay_ms,
            drop_per_mille: 0,
        }
    }
}

/// One node of the cluster.
pub struct SimNode {
    /// Its address (`n0`, `v1`, …).
    pub name: String,
    /// The node, or `None` while crashed.
    pub node: Option<Node<MemStore>>,
    key: Keypair,
    config: NodeConfig,
    store: Option<MemStore>,
    /// Every event the node reported, in order.
    pub events: Vec<(Timestamp, Event)>,
}

enum Delivery {
    Local {
        to: usize,
        input: Box<Input>,
    },
    Connected {
        to: usize,
        peer: PeerId,
        addr: String,
        direction: Direction,
    },
    ConnectFailed {
        to: usize,
        addr: String,
    },
    Message {
        to: usize,
        peer: PeerId,
        bytes: Vec<u8>,
    },
    Disconnected {
        to: usize,
        peer: PeerId,
        reason: String,
    },
}

/// A test's rewrite of a hostile node's outgoing messages.
type Rewrite = Box<dyn FnMut(&mut Message)>;

/// A deterministic in-process network.
pub struct Cluster {
    /// The nodes, by index.
    pub nodes: Vec<SimNode>,
    now: Timestamp,
    rng: DetRng,
    faults: Faults,
    queue: BTreeMap<(Timestamp, u64), Delivery>,
    seq: u64,
    /// Connection ends: (node, peer id) → (other node, other peer id).
    links: BTreeMap<(usize, PeerId), (usize, PeerId)>,
    /// Latest scheduled gossip delivery per directed connection end (FIFO).
    gossip_tail: BTreeMap<(usize, PeerId), Timestamp>,
    partitioned: BTreeSet<(usize, usize)>,
    /// Other addresses that reach a node (a relay, a NAT): alias → name.
    aliases: BTreeMap<String, String>,
    /// Nodes whose snapshot chunks are corrupted on the way out (hostile).
    corrupt_chunks_from: BTreeSet<usize>,
    /// Nodes whose manifest answers carry only this many attestations.
    thin_attestations_from: BTreeMap<usize, usize>,
    /// Nodes whose manifest answers name another root (a forged frontier).
    forge_manifests_from: BTreeSet<usize>,
    /// Nodes whose every outgoing message goes through a rewrite (a
    /// hostile peer scripted by a test).
    rewrite_from: BTreeMap<usize, Rewrite>,
    /// Nodes whose chunk answers carry another index than the one asked.
    misnumber_chunks_from: BTreeSet<usize>,
    /// Nodes whose manifest answers start with this many genuine-looking
    /// attestation vertices from keys outside the validator set.
    pad_attestations_from: BTreeMap<usize, usize>,
    /// Extra delay on everything a node sends.
    slow: BTreeMap<usize, u64>,
    /// Extra delay of chunk answers only, per sender.
    slow_chunks: BTreeMap<usize, u64>,
    /// Messages a node never hears (a peer that ignores some requests).
    deaf: BTreeMap<usize, fn(&Message) -> bool>,
    next_conn: u64,
    /// Consecutive timer firings that left a timer due (spin detector).
    spins: u32,
    /// Trace rows, if tracing.
    pub trace: Vec<String>,
    tracing: bool,
}

mod fixtures;
mod net;
mod trace;

pub use fixtures::{
    alice_creates, attach_peer, commit_sequence, signed_tx, test_genesis, test_vertex,
    validator_config, TEST_SESSION,
};
pub use trace::summary;

impl Cluster {
    /// An empty cluster.
    pub fn new(seed: u64, faults: Faults) -> Self {
        Cluster {
            nodes: Vec::new(),
            now: Timestamp(0),
            rng: DetRng::new(seed),
            faults,
            queue: BTreeMap::new(),
            seq: 0,
            links: BTreeMap::new(),
            gossip_tail: BTreeMap::new(),
            partitioned: BTreeSet::new(),
            aliases: BTreeMap::new(),
            corrupt_chunks_from: BTreeSet::new(),
            thin_attestations_from: BTreeMap::new(),
            forge_manifests_from: BTreeSet::new(),
            rewrite_from: BTreeMap::new(),
            misnumber_chunks_from: BTreeSet::new(),
            pad_attestations_from: BTreeMap::new(),
            next_conn: 1,
            spins: 0,
            trace: Vec::new(),
            tracing: false,
            slow: BTreeMap::new(),
            slow_chunks: BTreeMap::new(),
            deaf: BTreeMap::new(),
        }
    }

    /// Starts recording trace rows.
    pub fn enable_trace(&mut self) {
        self.tracing = true;
    }

    /// Current virtual time.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Adds a node whose store already holds `genesis` (a genesis validator).
    pub fn add_genesis_node(
        &mut self,
        name: &str,
        key: Keypair,
        genesis: &Genesis,
        mut config: NodeConfig,
    ) -> usize {
        let mut store = MemStore::new();
        init_chain(&mut store, genesis).expect("memory store cannot fail");
        config.listen_addr = Some(name.to_string());
        self.add(name, key, config, store)
    }

    /// Adds every genesis validator as `v0..vn`, producing every
    /// `round_interval_ms`.
    pub fn add_validators(&mut self, genesis: &Genesis, keys: &[Keypair], round_interval_ms: u64) {
        for (i, k) in keys.iter().enumerate() {
            self.add_genesis_node(
                &format!("v{i}"),
                k.clone(),
                genesis,
                validator_config(round_interval_ms),
            );
        }
    }

    /// Adds a node with an empty store that joins through `config.bootstrap_peers`.
    pub fn add_joiner(&mut self, name: &str, key: Keypair, mut config: NodeConfig) -> usize {
        config.listen_addr = Some(name.to_string());
        self.add(name, key, config, MemStore::new())
    }

    fn add(&mut self, name: &str, key: Keypair, config: NodeConfig, store: MemStore) -> usize {
        let index = self.nodes.len();
        self.nodes.push(SimNode {
            name: name.to_string(),
            node: None,
            key,
            config,
            store: Some(store),
            events: Vec::new(),
        });
        self.start(index);
        index
    }

    /// Starts (or restarts) a crashed node on its store.
    pub fn start(&mut self, i: usize) {
        let seed = self.rng.next_u64();
        let n = &mut self.nodes[i];
        let store = n.store.take().expect("node is not running");
        let node = Node::new(n.config.clone(), n.key.clone(), store, seed, self.now)
            .expect("memory store cannot fail");
        n.node = Some(node);
        self.drain(i);
    }

    /// Changes the configuration node `i` gets when it next starts (a
    /// restart with other flags).
    pub fn reconfigure(&mut self, i: usize, change: impl FnOnce(&mut NodeConfig)) {
        change(&mut self.nodes[i].config);
    }

    /// Crashes a node: its connections drop and it keeps only its store.
    pub fn crash(&mut self, i: usize) {
        let Some(node) = self.nodes[i].node.take() else {
            return;
        };
        self.nodes[i].store = Some(node.into_store());
        let ends: Vec<(usize, PeerId)> = self
            .links
            .keys()
            .filter(|(n, _)| *n == i)
            .copied()
            .collect();
        for end in ends {
            self.cut(end, "crashed");
        }
        self.queue.retain(|_, d| match d {
            Delivery::Connected { to, .. }
            | Delivery::ConnectFailed { to, .. }
            | Delivery::Message { to, .. }
            | Delivery::Disconnected { to, .. }
            | Delivery::Local { to, .. } => *to != i,
        });
    }

    /// Makes `addr` a second address of node `i`, as a relay or a NAT in
    /// front of it would: dials to `addr` reach it, while it still
    /// advertises its own name.
    pub fn alias(&mut self, addr: &str, i: usize) {
        let name = self.nodes[i].name.clone();
        self.aliases.insert(addr.to_string(), name);
    }

    /// Cuts every connection between `a` and `b` and refuses new ones.
    pub fn partition(&mut self, a: usize, b: usize) {
        self.partitioned.insert((a.min(b), a.max(b)));
        let ends: Vec<(usize, PeerId)> = self
            .links
            .iter()
            .filter(|((x, _), (y, _))| (*x == a && *y == b) || (*x == b && *y == a))
            .map(|(k, _)| *k)
            .collect();
        for end in ends {
            self.cut(end, "partitioned");
        }
    }

    /// Makes node `i` hostile: every snapshot chunk it serves arrives with
    /// a flipped byte.
    pub fn corrupt_chunks_from(&mut self, i: usize) {
        self.corrupt_chunks_from.insert(i);
    }

    /// Makes node `i` hostile: every manifest it serves lists one more
    /// committed frontier vertex than the real one, so its root differs
    /// (while its structure still checks).
    pub fn forge_manifests_from(&mut self, i: usize) {
        self.forge_manifests_from.insert(i);
    }

    /// Makes node `i` hostile in the way `rewrite` says: every message it
    /// sends goes through it first.
    pub fn rewrite_from(&mut self, i: usize, rewrite: impl FnMut(&mut Message) + 'static) {
        self.rewrite_from.insert(i, Box::new(rewrite));
    }

    /// Makes node `i` hostile: every chunk it serves claims another index
    /// (the asked one plus 1,000) than the one it was asked for.
    pub fn misnumber_chunks_from(&mut self, i: usize) {
        self.misnumber_chunks_from.insert(i);
    }

    /// Makes every manifest answer of node `i` start with `n` attestation
    /// vertices signed by keys outside the validator set (well formed,
    /// attesting the same root), before the real ones.
    pub fn pad_attestations_from(&mut self, i: usize, n: usize) {
        self.pad_attestations_from.insert(i, n);
    }

    /// Makes every manifest answer of node `i` carry at most `keep` of its
    /// attestation vertices (each still genuine: too few, not false).
    pub fn thin_attestations_from(&mut self, i: usize, keep: usize) {
        self.thin_attestations_from.insert(i, keep);
    }

    /// Makes node `i`'s chunk answers arrive `extra_ms` later, and nothing
    /// else: a source on a link too slow for a chunk within the request
    /// timeout, whose small answers still come in time.
    pub fn slow_chunks_from(&mut self, i: usize, extra_ms: u64) {
        self.slow_chunks.insert(i, extra_ms);
    }

    /// Makes node `i` slow: everything it sends arrives `extra_ms` later
    /// (an overloaded or far-away peer, honest but slow).
    pub fn slow_down(&mut self, i: usize, extra_ms: u64) {
        self.slow.insert(i, extra_ms);
    }

    /// Makes node `i` ignore every message `which` selects (it never sees
    /// them, so never answers): a peer that stalls some requests.
    pub fn deafen(&mut self, i: usize, which: fn(&Message) -> bool) {
        self.deaf.insert(i, which);
    }

    /// Node `i` hears everything again.
    pub fn undeafen(&mut self, i: usize) {
        self.deaf.remove(&i);
    }

    /// Heals every partition.
    pub fn heal(&mut self) {
        self.partitioned.clear();
    }

    /// The store of a crashed node.
    pub fn crashed_store(&self, i: usize) -> Option<&MemStore> {
        self.nodes[i].store.as_ref()
    }

    /// The node at `i` (panics if crashed).
    pub fn node(&self, i: usize) -> &Node<MemStore> {
        self.nodes[i].node.as_ref().expect("node is running")
    }

    /// Submits a transaction to node `i`.
    pub fn submit(
        &mut self,
        i: usize,
        tx: Transaction,
    ) -> Result<crate::ids::Hash, crate::node::produce_api::SubmitError> {
        let now = self.now;
        let r = self.nodes[i]
            .node
            .as_mut()
            .expect("node is running")
            .submit_transaction(now, tx);
        self.drain(i);
        r
    }

    /// Sends `msg` to node `to` as if node `from` had sent it on their
    /// connection (for hostile-peer scenarios). Returns false if the two are
    /// not connected.
    pub fn send_as(&mut self, from: usize, to: usize, msg: Message) -> bool {
        let link = self
            .links
            .iter()
            .find(|((a, _), (b, _))| *a == from && *b == to)
            .map(|(_, theirs)| *theirs);
        let Some((to, peer)) = link else { return false };
        let at = self.now.plus_ms(1);
        let bytes = wire::encode(&msg);
        self.schedule(at, Delivery::Message { to, peer, bytes });
        true
    }

    /// Runs until `until` (virtual ms) has passed.
    pub fn run_for(&mut self, ms: u64) {
        let end = self.now.plus_ms(ms);
        while self.step(end) {}
        self.now = end;
    }

    /// Runs until `done` holds or `limit_ms` of virtual time passes. Returns
    /// whether `done` held.
    pub fn run_until(&mut self, limit_ms: u64, mut done: impl FnMut(&Cluster) -> bool) -> bool {
        let end = self.now.plus_ms(limit_ms);
        loop {
            if done(self) {
                return true;
            }
            if !self.step(end) {
                self.now = end;
                return done(self);
            }
        }
    }

    /// Every running node's last committed round.
    pub fn committed_rounds(&self) -> Vec<Option<Round>> {
        self.nodes
            .iter()
            .map(|n| n.node.as_ref().and_then(|n| n.last_committed_round()))
            .collect()
    }
}
