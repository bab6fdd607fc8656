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

use crate::config::NodeConfig;
use crate::crypto::Keypair;
use crate::genesis::{ChainParams, Genesis, ValidatorInfo};
use crate::ids::{PeerId, Round, Timestamp};
use crate::interface::{Action, Channel, Direction, Event, Input};
use crate::node::{init_chain, Node};
use crate::rng::DetRng;
use crate::store::MemStore;
use crate::tx::Transaction;
use crate::wire::{self, Message, Role};
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
    /// Nodes whose snapshot chunks are corrupted on the way out (hostile).
    corrupt_chunks_from: BTreeSet<usize>,
    /// Extra delay on everything a node sends.
    slow: BTreeMap<usize, u64>,
    /// Messages a node never hears (a peer that ignores some requests).
    deaf: BTreeMap<usize, fn(&Message) -> bool>,
    next_conn: u64,
    /// Consecutive timer firings that left a timer due (spin detector).
    spins: u32,
    /// Trace rows, if tracing.
    pub trace: Vec<String>,
    tracing: bool,
}

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
            .map(|(i, k)| ValidatorInfo {
                key: k.public(),
                address: format!("v{i}"),
            })
            .collect(),
        objects: Vec::new(),
        synthetic_objects: 0,
    };
    (genesis, keys)
}

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
            corrupt_chunks_from: BTreeSet::new(),
            next_conn: 1,
            spins: 0,
            trace: Vec::new(),
            tracing: false,
            slow: BTreeMap::new(),
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

    /// Closes a connection; the closing side's reason reaches the other
    /// side, as a QUIC application close would.
    fn cut(&mut self, end: (usize, PeerId), reason: &str) {
        let Some(other) = self.links.remove(&end) else {
            return;
        };
        self.links.remove(&other);
        let reasons = [
            format!("closed locally: {reason}"),
            format!("closed by peer: {reason}"),
        ];
        for ((to, peer), reason) in [end, other].into_iter().zip(reasons) {
            if self.nodes[to].node.is_some() {
                let at = self.now.plus_ms(1);
                self.schedule(at, Delivery::Disconnected { to, peer, reason });
            }
        }
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

    fn schedule(&mut self, at: Timestamp, d: Delivery) {
        self.seq += 1;
        self.queue.insert((at, self.seq), d);
    }

    fn delay(&mut self) -> u64 {
        let span = self
            .faults
            .max_delay_ms
            .saturating_sub(self.faults.min_delay_ms)
            + 1;
        self.faults.min_delay_ms + self.rng.below(span)
    }

    fn blocked(&self, a: usize, b: usize) -> bool {
        self.partitioned.contains(&(a.min(b), a.max(b)))
    }

    /// Executes the actions node `i` has queued.
    fn drain(&mut self, i: usize) {
        loop {
            let Some(action) = self.nodes[i].node.as_mut().and_then(|n| n.poll_action()) else {
                return;
            };
            match action {
                Action::Event(e) => {
                    if self.tracing {
                        if let Some(row) = event_row(&e) {
                            self.row(i, "**", &row);
                        }
                    }
                    self.nodes[i].events.push((self.now, e));
                }
                Action::Connect { addr } => self.connect(i, addr),
                Action::BuildSnapshot(job) => {
                    // Built at once; the results arrive like driver inputs.
                    let at = self.now;
                    crate::snapshot::run_job(job, |input| {
                        self.schedule(
                            at,
                            Delivery::Local {
                                to: i,
                                input: Box::new(input),
                            },
                        )
                    });
                }
                Action::Disconnect { peer, reason } => self.cut((i, peer), &reason),
                Action::Send { peer, channel, msg } => self.send(i, peer, channel, msg),
            }
        }
    }

    fn connect(&mut self, from: usize, addr: String) {
        let target = self
            .nodes
            .iter()
            .position(|n| n.name == addr && n.node.is_some());
        let at = self.now.plus_ms(self.delay());
        match target {
            Some(to) if !self.blocked(from, to) && to != from => {
                let (pa, pb) = (PeerId(self.next_conn), PeerId(self.next_conn + 1));
                self.next_conn += 2;
                self.links.insert((from, pa), (to, pb));
                self.links.insert((to, pb), (from, pa));
                let from_name = self.nodes[from].name.clone();
                self.schedule(
                    at,
                    Delivery::Connected {
                        to: from,
                        peer: pa,
                        addr,
                        direction: Direction::Outbound,
                    },
                );
                self.schedule(
                    at,
                    Delivery::Connected {
                        to,
                        peer: pb,
                        addr: from_name,
                        direction: Direction::Inbound,
                    },
                );
            }
            _ => self.schedule(at, Delivery::ConnectFailed { to: from, addr }),
        }
    }

    fn send(&mut self, from: usize, peer: PeerId, channel: Channel, mut msg: Message) {
        if self.corrupt_chunks_from.contains(&from) {
            if let Message::Chunk { bytes, .. } = &mut msg {
                if let Some(b) = bytes.last_mut() {
                    *b ^= 0xff;
                }
            }
        }
        let Some(&(to, their_peer)) = self.links.get(&(from, peer)) else {
            return;
        };
        let droppable = matches!(msg, Message::Vertex(_)) || channel == Channel::Request;
        if droppable
            && self.faults.drop_per_mille > 0
            && self.rng.below(1000) < self.faults.drop_per_mille
        {
            return;
        }
        if self.tracing {
            let row = format!("-> {} {}", self.nodes[to].name, summary(&msg));
            self.row(from, "  ", &row);
        }
        let extra = self.slow.get(&from).copied().unwrap_or(0);
        let mut at = self.now.plus_ms(self.delay() + extra);
        if channel == Channel::Gossip {
            let tail = self.gossip_tail.entry((from, peer)).or_default();
            at = at.max(*tail);
            *tail = at;
        }
        let bytes = wire::encode(&msg);
        self.schedule(
            at,
            Delivery::Message {
                to,
                peer: their_peer,
                bytes,
            },
        );
    }

    fn row(&mut self, node: usize, dir: &str, text: &str) {
        let name = &self.nodes[node].name;
        self.trace
            .push(format!("{:>6} {:<3} {} {}", self.now.0, name, dir, text));
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

    /// Processes the earliest delivery or timer not after `end`.
    fn step(&mut self, end: Timestamp) -> bool {
        let next_delivery = self.queue.keys().next().map(|(t, _)| *t);
        let next_timer = self
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                n.node
                    .as_ref()
                    .and_then(|n| n.poll_timeout())
                    .map(|(t, _)| (t, i))
            })
            .min();
        let timer_first = match (next_timer, next_delivery) {
            (Some((t, _)), Some(d)) => t <= d,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return false,
        };
        if timer_first {
            let (t, i) = next_timer.expect("checked");
            if t > end {
                return false;
            }
            self.now = self.now.max(t);
            let now = self.now;
            self.nodes[i]
                .node
                .as_mut()
                .expect("running")
                .handle_timeout(now);
            self.drain(i);
            // A timer that stays due after handle_timeout would make a real
            // driver spin: every timer must move or disappear.
            let again = self.nodes[i].node.as_ref().and_then(|n| n.poll_timeout());
            if let Some((t2, kind)) = again.filter(|(t2, _)| *t2 <= now) {
                self.spins += 1;
                assert!(
                    self.spins < 1_000,
                    "node {} timer {kind:?} at {t2:?} does not advance",
                    self.nodes[i].name
                );
            } else {
                self.spins = 0;
            }
            return true;
        }
        let key = *self.queue.keys().next().expect("checked");
        if key.0 > end {
            return false;
        }
        let delivery = self.queue.remove(&key).expect("present");
        self.now = self.now.max(key.0);
        self.deliver(delivery);
        true
    }

    fn deliver(&mut self, d: Delivery) {
        let now = self.now;
        let (to, input) = match d {
            Delivery::Local { to, input } => (to, *input),
            Delivery::Connected {
                to,
                peer,
                addr,
                direction,
            } => {
                if !self.links.contains_key(&(to, peer)) {
                    return; // cut before it came up
                }
                (
                    to,
                    Input::PeerConnected {
                        peer,
                        addr,
                        direction,
                    },
                )
            }
            Delivery::ConnectFailed { to, addr } => (
                to,
                Input::ConnectFailed {
                    addr,
                    reason: "unreachable".into(),
                },
            ),
            Delivery::Disconnected { to, peer, reason } => {
                (to, Input::PeerDisconnected { peer, reason })
            }
            Delivery::Message { to, peer, bytes } => {
                if !self.links.contains_key(&(to, peer)) {
                    return; // connection gone
                }
                let input = match wire::decode(&bytes, usize::MAX) {
                    Ok(msg) if self.deaf.get(&to).is_some_and(|deaf| deaf(&msg)) => return,
                    Ok(msg) => {
                        if self.tracing {
                            let from = self.links[&(to, peer)].0;
                            let row = format!("<- {} {}", self.nodes[from].name, summary(&msg));
                            self.row(to, "  ", &row);
                        }
                        Input::Message { peer, msg }
                    }
                    Err(e) => Input::MalformedMessage {
                        peer,
                        error: e.to_string(),
                    },
                };
                (to, input)
            }
        };
        let Some(node) = self.nodes[to].node.as_mut() else {
            return;
        };
        node.handle(now, input);
        self.drain(to);
    }

    /// Every running node's last committed round.
    pub fn committed_rounds(&self) -> Vec<Option<Round>> {
        self.nodes
            .iter()
            .map(|n| n.node.as_ref().and_then(|n| n.last_committed_round()))
            .collect()
    }
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

/// A one-line summary of a message: kind, rounds, short hashes, no payloads.
pub fn summary(msg: &Message) -> String {
    match msg {
        Message::Hello(h) => format!(
            "hello role={} chain={} top={}",
            h.role,
            h.chain_id
                .map_or("-".into(), |c| c.short()[..8].to_string()),
            h.highest_round.map_or("-".into(), |r| r.to_string())
        ),
        Message::Vertex(v) => format!(
            "vertex r={} h={} txs={}",
            v.round(),
            &v.hash().short()[..8],
            v.body.txs.len()
        ),
        Message::Vertices {
            vertices, through, ..
        } => format!(
            "vertices n={} through={}",
            vertices.len(),
            through.map_or("-".into(), |r| r.to_string())
        ),
        Message::GetRounds { from, to, .. } => format!("get_rounds {from}..={to}"),
        Message::GetVertices { hashes, .. } => format!("get_vertices n={}", hashes.len()),
        Message::Status {
            highest_round,
            committed_round,
        } => format!(
            "status top={} committed={}",
            highest_round.map_or("-".into(), |r| r.to_string()),
            committed_round.map_or("-".into(), |r| r.to_string())
        ),
        Message::Manifest {
            manifest,
            attestations,
            ..
        } => format!(
            "manifest r={} root={} chunks={} attestations={}",
            manifest.round,
            &manifest.root().short()[..8],
            manifest.chunks.len(),
            attestations.len()
        ),
        Message::GetChunk { round, index, .. } => format!("get_chunk r={round} i={index}"),
        Message::Chunk { round, index, .. } => format!("chunk r={round} i={index}"),
        Message::Peers { peers, .. } => format!("peers n={}", peers.len()),
        other => other.kind().to_string(),
    }
}

/// A trace row for the events worth showing; `None` for the rest.
fn event_row(e: &Event) -> Option<String> {
    Some(match e {
        Event::PhaseChanged { from, to } => format!("phase {from} -> {to}"),
        Event::GenesisAdopted { chain_id, pinned, .. } => format!("genesis {} pinned={pinned}", &chain_id.short()[..8]),
        Event::PeerReady { key, role, .. } => format!("ready {} {role}", &key.short()[..8]),
        Event::PeerRejected { reason, .. } => format!("rejected: {reason}"),
        Event::PeerBanned { key, .. } => format!("banned {}", &key.short()[..8]),
        Event::RegistrationSubmitted { tx, .. } => format!("registration {}", &tx.short()[..8]),
        Event::ValidatorSetChanged { epoch, size, includes_self } => {
            format!("validator set epoch={epoch} size={size} self={includes_self}")
        }
        Event::VertexProduced { round, hash, txs } => format!("produced r={round} h={} txs={txs}", &hash.short()[..8]),
        Event::VertexAccepted { round, hash, source, .. } => format!("accepted r={round} h={} {source:?}", &hash.short()[..8]),
        Event::Committed { round, anchor, vertices, txs_committed, txs_failed } => format!(
            "committed r={round} anchor={} vertices={vertices} ok={txs_committed} failed={txs_failed}",
            &anchor.short()[..8]
        ),
        Event::Equivocation { round, .. } => format!("equivocation r={round}"),
        Event::SnapshotBuilt { round, root, chunks, objects, .. } => {
            format!("snapshot r={round} root={} chunks={chunks} objects={objects}", &root.short()[..8])
        }
        Event::SyncFailed { reason } => format!("sync failed: {reason}"),
        Event::SyncBackoff { reason, retry_in_ms } => format!("sync backoff {retry_in_ms} ms: {reason}"),
        Event::SnapshotSyncStarted { round, root, chunks, peers, .. } => {
            format!("snapshot sync r={round} root={} chunks={chunks} peers={peers}", &root.short()[..8])
        }
        Event::SnapshotApplied { round, objects, outcomes, .. } => {
            format!("snapshot applied r={round} objects={objects} outcomes={outcomes}")
        }
        Event::ReplayStarted { vertices, .. } => format!("replay {vertices} buffered"),
        Event::StateVerified { round, .. } => format!("state verified r={round}"),
        Event::SnapshotResumed { round, chunks_done, chunks_total } => {
            format!("snapshot resumed r={round} {chunks_done}/{chunks_total}")
        }
        Event::StateMismatch { round, .. } => format!("STATE MISMATCH r={round}"),
        _ => return None,
    })
}

/// A transaction from `alice` (a fixed test key) creating one 8-byte
/// object, with `nonce`, valid until round 10,000.
pub fn alice_creates(genesis: &Genesis, nonce: u64) -> Transaction {
    let alice = Keypair::from_label("alice");
    crate::tx::TxBody {
        chain_id: genesis.chain_id(),
        sender: alice.public(),
        nonce,
        expiry: Round(10_000),
        ops: vec![crate::tx::Operation::Create { data: vec![0; 8] }],
    }
    .sign(&alice)
}

/// A validator config for the harness with the given round interval.
pub fn validator_config(round_interval_ms: u64) -> NodeConfig {
    NodeConfig {
        role: Role::Validator,
        round_interval_ms,
        ..NodeConfig::default()
    }
}

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
    node.handle(
        now,
        Input::Message {
            peer,
            msg: Message::Hello(hello),
        },
    );
    let proof = key.sign(
        crate::crypto::Domain::Handshake,
        &crate::peers::proof_message(&nonce, &key.public(), chain_id.as_ref()),
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
