//! Running one scenario: hosts, workload, faults, heal, invariants.

use crate::hostile::{tamper, Hostility};
use crate::links::{self, Downloads};
use crate::net::{LinkShape, SimRuntime, SimSocket};
use crate::store::{SharedDisk, SimStore};
use crate::{Scenario, SimOptions};
use bluepods_core::config::{SyncConfig, SyncMode};
use bluepods_core::crypto::Domain;
use bluepods_core::rng::DetRng;
use bluepods_core::tx::{Operation, TxBody, TxStatus};
use bluepods_core::{
    ChainParams, Event, Genesis, Hash, Keypair, Node, NodeConfig, Role, Round, SyncPhase,
    Timestamp, ValidatorInfo,
};
use bluepods_drivers::event_loop::{EventLoop, NodeHandle, TokioClock};
use bluepods_drivers::transport::{endpoint_over, Resolver, Transport, TransportConfig};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Every node listens on this port of its own host.
const PORT: u16 = 9000;

/// Every node's round interval.
pub const ROUND_INTERVAL_MS: u64 = 100;

/// The host name of `adversary`'s hostile listener.
const PEST: &str = "p0";

/// Rows of the trace kept for a failure report.
const TAIL_ROWS: usize = 40;

/// What a run found.
#[derive(Clone, Debug)]
pub struct Report {
    /// The run.
    pub options: SimOptions,
    /// SHA-256 of the trace (every event of every node, in order, with its
    /// simulated time).
    pub trace_hash: String,
    /// Trace rows.
    pub events: u64,
    /// Invariants that did not hold (empty: the run passed).
    pub violations: Vec<String>,
    /// Transactions the nodes accepted.
    pub accepted_txs: usize,
    /// Of those, lost with the mempool of a node that crashed after
    /// accepting them (allowed).
    pub lost_in_crash: usize,
    /// Peers banned by honest nodes for a proven fault.
    pub bans: u64,
    /// Per node at the end: last committed round.
    pub committed: BTreeMap<String, Option<Round>>,
    /// Per joiner that went live: simulated ms from its start to live.
    pub time_to_live_ms: BTreeMap<String, u64>,
    /// Commit latency: simulated ms from an anchor's production to its
    /// commit, over every commit by an honest node of an anchor whose
    /// production was seen (mean, and the commits counted).
    pub commit_latency_ms: Option<(f64, usize)>,
    /// The last rows of the trace.
    pub tail: Vec<String>,
    /// Wall-clock milliseconds the run took.
    pub wall_ms: u128,
}

impl Report {
    /// Whether every invariant held.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// What the observers and clients share.
#[derive(Default)]
struct Shared {
    /// Rows kept (`TAIL_ROWS`, or all with `keep_trace`).
    keep: usize,
    hasher: Sha256,
    events: u64,
    tail: std::collections::VecDeque<String>,
    /// Committed anchor per round, and who saw it first.
    anchors: BTreeMap<Round, (Hash, String)>,
    /// The rounds each honest node committed an anchor of: a node that
    /// skips a slot another commits breaks the one sequence as surely as
    /// one that commits another anchor.
    commit_rounds: BTreeMap<String, std::collections::BTreeSet<Round>>,
    /// Honest nodes that took a validator off anchor duty.
    revoked: std::collections::BTreeSet<String>,
    /// Snapshot root per round, and who built it first.
    roots: BTreeMap<Round, (Hash, String)>,
    violations: Vec<String>,
    handles: BTreeMap<String, NodeHandle>,
    /// Accepted transactions: hash, the node that accepted it, when (ms).
    accepted: Vec<(Hash, String, u64)>,
    /// Crash times (ms) per node.
    crashes: BTreeMap<String, Vec<u64>>,
    /// Accepted transactions lost with a crashed node's mempool.
    lost_in_crash: usize,
    /// Bans by honest nodes.
    bans: u64,
    /// Hostile nodes (left out of the checks).
    hostile: std::collections::BTreeSet<String>,
    /// Their keys: an honest node banning any other key is a violation.
    hostile_keys: std::collections::BTreeSet<bluepods_core::PublicKey>,
    /// When each joiner started (ms), and when it was first live.
    joined_at: BTreeMap<String, u64>,
    live_at: BTreeMap<String, u64>,
    /// When each vertex was produced (ms), and the commit latencies seen.
    produced_at: BTreeMap<Hash, u64>,
    commit_latencies_ms: Vec<u64>,
    finals: BTreeMap<String, Option<Round>>,
    /// `slow-links`: what the downloads cost.
    downloads: Option<Downloads>,
    /// `adversary`: honest nodes that took the relay for a ready peer.
    relay_findings: crate::relay::Findings,
}

type SharedRef = Arc<Mutex<Shared>>;

fn lock(s: &SharedRef) -> std::sync::MutexGuard<'_, Shared> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// Honest nodes whose committed rounds differ where both committed: within
/// the rounds both span, every slot one committed the other committed too.
fn skipped_slots(commits: &BTreeMap<String, std::collections::BTreeSet<Round>>) -> Vec<String> {
    let mut out = Vec::new();
    let nodes: Vec<_> = commits.iter().filter(|(_, c)| !c.is_empty()).collect();
    for (i, (a, ca)) in nodes.iter().enumerate() {
        for (b, cb) in &nodes[i + 1..] {
            let lo = (*ca.first().unwrap()).max(*cb.first().unwrap());
            let hi = (*ca.last().unwrap()).min(*cb.last().unwrap());
            if lo > hi {
                continue;
            }
            let only = ca
                .range(lo..=hi)
                .find(|r| !cb.contains(r))
                .map(|r| (a, b, r))
                .or_else(|| {
                    cb.range(lo..=hi)
                        .find(|r| !ca.contains(r))
                        .map(|r| (b, a, r))
                });
            if let Some((has, lacks, r)) = only {
                out.push(format!(
                    "{has} committed the anchor of round {r}, {lacks} skipped it"
                ));
            }
        }
    }
    out
}

impl Shared {
    fn observe(&mut self, node: &str, honest: bool, e: &Event) {
        let t = turmoil::sim_elapsed().unwrap_or_default().as_millis();
        let row = format!("{t:>7} {node:<4} {e:?}");
        self.hasher.update(row.as_bytes());
        self.hasher.update(b"\n");
        self.events += 1;
        self.tail.push_back(row);
        if self.tail.len() > self.keep.max(TAIL_ROWS) {
            self.tail.pop_front();
        }
        if !honest {
            return; // only honest nodes are held to the invariants
        }
        if let Event::PeerBanned { key, reason, .. } = e {
            self.bans += 1;
            if !self.hostile_keys.contains(key) {
                self.violations.push(format!(
                    "{node} banned the honest key {}: {reason}",
                    key.short()
                ));
            }
        }
        if let Event::PhaseChanged {
            to: SyncPhase::Live,
            ..
        } = e
        {
            if self.joined_at.contains_key(node) && !self.live_at.contains_key(node) {
                self.live_at.insert(node.to_string(), t as u64);
            }
        }
        if let Some(v) = self.downloads.as_mut().and_then(|d| d.observe(node, e)) {
            self.violations.push(v);
        }
        match e {
            Event::VertexProduced { hash, .. } => {
                self.produced_at.entry(*hash).or_insert(t as u64);
            }
            Event::Committed { round, anchor, .. } => {
                if let Some(at) = self.produced_at.get(anchor) {
                    self.commit_latencies_ms
                        .push((t as u64).saturating_sub(*at));
                }
                self.commit_rounds
                    .entry(node.to_string())
                    .or_default()
                    .insert(*round);
                let first = self.anchors.entry(*round).or_insert((*anchor, node.into()));
                if first.0 != *anchor {
                    let v = format!(
                        "round {round}: {node} committed anchor {}, {} committed {}",
                        anchor.short(),
                        first.1,
                        first.0.short()
                    );
                    self.violations.push(v);
                }
            }
            Event::AnchorDutyRevoked { .. } => {
                self.revoked.insert(node.to_string());
            }
            Event::SnapshotBuilt { round, root, .. } => {
                let first = self.roots.entry(*round).or_insert((*root, node.into()));
                if first.0 != *root {
                    let v = format!(
                        "round {round}: {node} has state root {}, {} has {}",
                        root.short(),
                        first.1,
                        first.0.short()
                    );
                    self.violations.push(v);
                }
            }
            Event::StateMismatch { round, .. } => {
                self.violations
                    .push(format!("{node}: state mismatch at round {round}"));
            }
            Event::StorageFailed { error } => {
                self.violations
                    .push(format!("{node}: storage failed: {error}"));
            }
            _ => {}
        }
    }
}

/// A node of the run: everything needed to (re)start its host.
#[derive(Clone)]
struct NodeSpec {
    name: String,
    key: Keypair,
    config: NodeConfig,
    genesis: Option<Genesis>,
    disk: SharedDisk,
    seed: u64,
    hostile: Option<Hostility>,
    /// Its uplink, if shaped (`slow-links`).
    shape: Option<LinkShape>,
}

fn resolver() -> Resolver {
    Arc::new(|addr: String| {
        Box::pin(async move {
            let (host, port) = addr
                .rsplit_once(':')
                .ok_or_else(|| std::io::Error::other(format!("{addr}: no port")))?;
            let port: u16 = port
                .parse()
                .map_err(|_| std::io::Error::other(format!("{addr}: bad port")))?;
            Ok(SocketAddr::new(turmoil::lookup(host), port))
        })
    })
}

/// Registers `spec` as a turmoil host; turmoil calls the closure again on
/// every restart, and the node comes back from its disk.
fn add_host(sim: &mut turmoil::Sim<'_>, spec: NodeSpec, shared: SharedRef) {
    let name = spec.name.clone();
    sim.host(name.as_str(), move || {
        let spec = spec.clone();
        let shared = shared.clone();
        async move {
            let mut store = SimStore::recover(&spec.disk);
            if let Some(g) = &spec.genesis {
                if bluepods_core::store::read_meta::<Genesis>(
                    &store,
                    bluepods_core::store::MetaKey::Genesis,
                )?
                .is_none()
                {
                    bluepods_core::init_chain(&mut store, g)?;
                }
            }
            let node = Node::new(
                spec.config.clone(),
                spec.key.clone(),
                store,
                spec.seed,
                Timestamp(0),
            )?;
            let cfg = TransportConfig::default();
            let socket = match spec.shape {
                Some(shape) => SimSocket::bind_shaped(PORT, shape).await?,
                None => SimSocket::bind(PORT).await?,
            };
            let mut quic_seed = [0u8; 32];
            quic_seed[..8].copy_from_slice(&spec.seed.to_le_bytes());
            let endpoint = endpoint_over(socket, Arc::new(SimRuntime), quic_seed, &cfg)?;
            let (net_tx, net_rx) = tokio::sync::mpsc::channel(4096);
            let mut transport = Transport::new(endpoint, net_tx, resolver(), cfg);
            if let Some(h) = spec.hostile {
                transport = transport.tamper_with(tamper(h, spec.key.clone()));
                if h == Hostility::Mute {
                    transport = transport.reading_no_answers();
                }
            }
            let (mut lp, handle) = EventLoop::new(node, transport, net_rx, TokioClock::new());
            lp.build_snapshots_inline();
            let (obs, who, honest) = (shared.clone(), spec.name.clone(), spec.hostile.is_none());
            lp.observe(Box::new(move |e| lock(&obs).observe(&who, honest, e)));
            {
                let mut s = lock(&shared);
                s.handles.insert(spec.name.clone(), handle);
                if !honest {
                    s.hostile.insert(spec.name.clone());
                    s.hostile_keys.insert(spec.key.public());
                }
            }
            let (exit, _node) = lp.run().await;
            if spec.hostile.is_some() {
                // A hostile node may well be cut off and give up: its
                // business, not a violation.
                return Ok(());
            }
            Err(format!("{} stopped: {exit:?}", spec.name).into())
        }
    });
}

fn genesis(validators: usize, scenario: Scenario) -> (Genesis, Vec<Keypair>) {
    let slow = scenario == Scenario::SlowLinks;
    let keys: Vec<Keypair> = (0..validators)
        .map(|i| Keypair::from_label(&format!("sim-validator-{i}")))
        .collect();
    let genesis = Genesis {
        chain_name: "sim".into(),
        created_unix_ms: 0,
        params: ChainParams {
            // `byzantine`: epochs of 10 s, so the forkers keep anchor duty
            // while the joiners come (until epoch 2, when the first proofs
            // committed take it away).
            epoch_rounds: if scenario == Scenario::Byzantine {
                100
            } else {
                ChainParams::default().epoch_rounds
            },
            snapshot_interval_rounds: if slow {
                links::SNAPSHOT_INTERVAL_ROUNDS
            } else {
                20
            },
            ..ChainParams::default()
        },
        validators: keys
            .iter()
            .enumerate()
            .map(|(i, k)| ValidatorInfo {
                key: k.public(),
                address: format!("v{i}:{PORT}"),
            })
            .collect(),
        objects: Vec::new(),
        synthetic_objects: if slow { links::STATE_OBJECTS } else { 2_000 },
    };
    (genesis, keys)
}

fn node_seed(seed: u64, name: &str) -> u64 {
    let h = bluepods_core::crypto::hash(Domain::Vertex, name.as_bytes());
    seed ^ u64::from_le_bytes(h.0[..8].try_into().expect("8 bytes"))
}

/// Scheduled faults and joins, decided from the seed before the run.
enum Action {
    Join(Box<NodeSpec>),
    Partition(String, String),
    Repair(String, String),
    Crash(String),
    Restart(String),
}

/// The relay host `r0` between validators `a` and `b` (`relay.rs`).
fn add_relay(
    sim: &mut turmoil::Sim<'_>,
    seed: u64,
    a: String,
    b: String,
    findings: crate::relay::Findings,
) {
    sim.host("r0", move || {
        let (a, b, findings) = (a.clone(), b.clone(), findings.clone());
        async move {
            let cfg = TransportConfig::default();
            let socket = SimSocket::bind(PORT).await?;
            let mut quic_seed = [0u8; 32];
            quic_seed[..8].copy_from_slice(&node_seed(seed, "r0").to_le_bytes());
            let endpoint = endpoint_over(socket, Arc::new(SimRuntime), quic_seed, &cfg)?;
            let (a, b) = (format!("{a}:{PORT}"), format!("{b}:{PORT}"));
            crate::relay::relay(endpoint, resolver(), a, b, findings).await
        }
    });
}

/// A hostile listener `name` that dials `vias` and sends a status every
/// 200 ms (each one its cue to misbehave).
fn hostile_listener(
    seed: u64,
    name: &str,
    vias: &[String],
    chain_id: Hash,
    how: Hostility,
) -> NodeSpec {
    NodeSpec {
        seed: node_seed(seed, name),
        key: Keypair::from_label(match how {
            Hostility::Flooder => "sim-flooder",
            Hostility::Mute => "sim-mute",
            _ => "sim-pest",
        }),
        config: NodeConfig {
            role: Role::Listener,
            listen_addr: Some(format!("{name}:{PORT}")),
            bootstrap_peers: vias.iter().map(|v| format!("{v}:{PORT}")).collect(),
            trusted_chain_id: Some(chain_id),
            status_interval_ms: 200,
            ..NodeConfig::default()
        },
        name: name.to_string(),
        genesis: None,
        disk: SharedDisk::default(),
        hostile: Some(how),
        shape: None,
    }
}

/// Runs one scenario to its end and checks the invariants.
pub fn run(opts: &SimOptions) -> Report {
    let wall = std::time::Instant::now();
    let mut rng = DetRng::new(opts.seed);
    let (genesis, keys) = genesis(opts.validators.max(1), opts.scenario);
    let slow = opts.scenario == Scenario::SlowLinks;
    // Its own stream, so the other scenarios' draws stay as they were.
    let mut link_rng = DetRng::new(opts.seed ^ 0x511c);
    let chain_id = genesis.chain_id();
    let total = opts.duration_s + opts.heal_s;
    let latency_max = 5 + rng.below(45);
    let mut builder = turmoil::Builder::new();
    builder
        .rng_seed(opts.seed)
        .simulation_duration(Duration::from_secs(total + 120))
        .tick_duration(Duration::from_millis(1))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(latency_max))
        .udp_capacity(1 << 16);
    if opts.scenario == Scenario::Partition {
        builder
            .fail_rate(0.0005 * (1 + rng.below(4)) as f64)
            .repair_rate(0.3);
    }
    if slow {
        // Each link gets a fixed latency in this range when its second
        // host appears (`link_latency_ms`).
        builder
            .min_message_latency(Duration::from_millis(20))
            .max_message_latency(Duration::from_millis(75));
    }
    let mut sim = builder.build();
    let shared: SharedRef = Arc::new(Mutex::new(Shared {
        keep: if opts.keep_trace {
            usize::MAX
        } else {
            TAIL_ROWS
        },
        downloads: slow.then(Downloads::default),
        ..Shared::default()
    }));

    let validator_names: Vec<String> = (0..keys.len()).map(|i| format!("v{i}")).collect();
    let last = validator_names.len() - 1;
    // Hostile validators, by name.
    let mut hostile: BTreeMap<String, Hostility> = BTreeMap::new();
    if opts.scenario == Scenario::Hostile && keys.len() >= 4 {
        // The last validator lies or equivocates (from the seed).
        let how = if rng.below(2) == 0 {
            Hostility::Liar
        } else {
            Hostility::Equivocator
        };
        hostile.insert(validator_names[last].clone(), how);
    }
    // Adversary: the last validator is Byzantine (`adversaries` on).
    let adversary = opts.scenario == Scenario::Adversary && keys.len() >= 4;
    if adversary && opts.adversaries {
        hostile.insert(validator_names[last].clone(), Hostility::Byzantine);
    }
    // Byzantine: the last f of the 3f + 1 fork.
    let byzantine = opts.scenario == Scenario::Byzantine;
    if byzantine {
        let f = (keys.len() - 1) / 3;
        for name in &validator_names[keys.len() - f..] {
            hostile.insert(name.clone(), Hostility::Forker);
        }
    }
    for (i, key) in keys.iter().enumerate() {
        let name = validator_names[i].clone();
        let config = NodeConfig {
            role: Role::Validator,
            listen_addr: Some(format!("{name}:{PORT}")),
            round_interval_ms: ROUND_INTERVAL_MS,
            ..NodeConfig::default()
        };
        add_host(
            &mut sim,
            NodeSpec {
                seed: node_seed(opts.seed, &name),
                name,
                key: key.clone(),
                config,
                genesis: Some(genesis.clone()),
                disk: SharedDisk::default(),
                hostile: hostile.get(&validator_names[i]).copied(),
                shape: slow.then(|| links::uplink(&mut link_rng, true)),
            },
            shared.clone(),
        );
    }
    if slow {
        for (i, a) in validator_names.iter().enumerate() {
            for b in &validator_names[i + 1..] {
                let ms = links::link_latency_ms(&mut link_rng);
                sim.set_link_latency(a.as_str(), b.as_str(), Duration::from_millis(ms));
            }
        }
    }
    let honest_validators: Vec<String> = validator_names
        .iter()
        .filter(|v| !hostile.contains_key(*v))
        .cloned()
        .collect();

    // The schedule: (time in ms, action), decided now from the seed.
    let mut schedule: Vec<(u64, Action)> = Vec::new();
    let span = opts.duration_s * 1000;
    let mut all_names = validator_names.clone();
    if opts.scenario != Scenario::Steady {
        for j in 0..opts.joiners {
            let name = format!("j{j}");
            let validator = rng.below(3) == 0;
            let strategy =
                [SyncMode::Range, SyncMode::Snapshot, SyncMode::Auto][rng.below(3) as usize];
            // Among hostile peers, joiners download snapshots: that is where
            // a liar's chunks and manifests can hurt.
            let strategy = if opts.scenario == Scenario::Hostile || slow {
                SyncMode::Snapshot
            } else if (adversary || byzantine) && strategy == SyncMode::Auto {
                // `auto` picks by how far behind the joiner is, and the
                // network's round at the join differs a little with and
                // without the adversaries: near the threshold the same
                // seed would compare a snapshot join with a range join.
                // Among forkers, each joiner takes one path or the other.
                SyncMode::Snapshot
            } else {
                strategy
            };
            let validator = validator && !slow;
            let via = &validator_names[rng.below(validator_names.len() as u64) as usize];
            let mut bootstrap_peers = vec![format!("{via}:{PORT}")];
            for h in hostile.keys() {
                // Every joiner meets the hostile validators first.
                bootstrap_peers.insert(0, format!("{h}:{PORT}"));
            }
            if adversary {
                // And the pest (absent in the baseline: the dial fails).
                let last = &validator_names[last];
                if hostile.is_empty() {
                    bootstrap_peers.insert(0, format!("{last}:{PORT}"));
                }
                bootstrap_peers.insert(0, format!("{PEST}:{PORT}"));
            }
            let config = NodeConfig {
                role: if validator {
                    Role::Validator
                } else {
                    Role::Listener
                },
                listen_addr: Some(format!("{name}:{PORT}")),
                bootstrap_peers,
                trusted_chain_id: Some(chain_id),
                round_interval_ms: ROUND_INTERVAL_MS,
                sync: SyncConfig {
                    default_strategy: strategy,
                    // A short threshold so that "auto" and the strategy
                    // switch get exercised in a short run.
                    strategy_switch_threshold: 60,
                    ..SyncConfig::default()
                },
                ..NodeConfig::default()
            };
            let at = 1_000 + rng.below(span.saturating_sub(1_000).max(1));
            // Far joiners come early: their downloads are long.
            let at = if slow { 1_000 + at % 4_000 } else { at };
            if slow && j == 0 {
                // Killed mid-download, back 1.5 s later.
                schedule.push((at + 15_000, Action::Crash(name.clone())));
                schedule.push((at + 16_500, Action::Restart(name.clone())));
            }
            schedule.push((
                at,
                Action::Join(Box::new(NodeSpec {
                    seed: node_seed(opts.seed, &name),
                    name: name.clone(),
                    key: Keypair::from_label(&format!("sim-joiner-{j}-{}", opts.seed)),
                    config,
                    genesis: None,
                    disk: SharedDisk::default(),
                    hostile: None,
                    shape: slow.then(|| links::uplink(&mut link_rng, false)),
                })),
            ));
            all_names.push(name);
        }
    }
    if adversary && opts.adversaries {
        let spec = hostile_listener(opts.seed, PEST, &validator_names, chain_id, Hostility::Pest);
        schedule.push((300, Action::Join(Box::new(spec))));
        let mut mute =
            hostile_listener(opts.seed, "m0", &validator_names, chain_id, Hostility::Mute);
        mute.genesis = Some(genesis.clone());
        schedule.push((400, Action::Join(Box::new(mute))));
        if honest_validators.len() >= 2 {
            let findings = lock(&shared).relay_findings.clone();
            let (a, b) = (honest_validators[0].clone(), honest_validators[1].clone());
            add_relay(&mut sim, opts.seed, a, b, findings);
        }
    }
    if opts.scenario == Scenario::Hostile {
        // A listener that floods, from the start.
        let spec = hostile_listener(
            opts.seed,
            "f0",
            &honest_validators,
            chain_id,
            Hostility::Flooder,
        );
        schedule.push((500, Action::Join(Box::new(spec))));
        // And a slow validator: its links take up to 200 ms.
        if honest_validators.len() >= 2 {
            let slow = &honest_validators[0];
            for other in validator_names.iter().filter(|v| *v != slow) {
                sim.set_link_max_message_latency(
                    slow.as_str(),
                    other.as_str(),
                    Duration::from_millis(200),
                );
            }
        }
    }
    match opts.scenario {
        Scenario::Partition => {
            for _ in 0..3 {
                let a = all_names[rng.below(all_names.len() as u64) as usize].clone();
                let b = all_names[rng.below(all_names.len() as u64) as usize].clone();
                if a == b {
                    continue;
                }
                let at = 2_000 + rng.below(span.saturating_sub(4_000).max(1));
                let len = 1_000 + rng.below(5_000);
                schedule.push((at, Action::Partition(a.clone(), b.clone())));
                schedule.push(((at + len).min(span), Action::Repair(a, b)));
            }
        }
        Scenario::Crash => {
            for _ in 0..3 {
                let who = all_names[rng.below(all_names.len() as u64) as usize].clone();
                let at = 2_000 + rng.below(span.saturating_sub(4_000).max(1));
                let down = 500 + rng.below(4_000);
                schedule.push((at, Action::Crash(who.clone())));
                schedule.push(((at + down).min(span), Action::Restart(who)));
            }
        }
        Scenario::Steady
        | Scenario::Join
        | Scenario::Hostile
        | Scenario::SlowLinks
        | Scenario::Adversary
        | Scenario::Byzantine => {}
    }
    schedule.sort_by_key(|(t, _)| *t);

    // Load: one transaction every 200 ms to a validator of the genesis,
    // until the heal phase.
    {
        let shared = shared.clone();
        let validators = honest_validators.clone();
        let mut load_rng = DetRng::new(opts.seed ^ 0x10ad);
        let span_ms = span;
        sim.client("load", async move {
            let user = Keypair::from_label("sim-user");
            let mut nonce = 0u64;
            while turmoil::sim_elapsed().unwrap_or_default().as_millis() < u128::from(span_ms) {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let to = &validators[load_rng.below(validators.len() as u64) as usize];
                let handle = lock(&shared).handles.get(to).cloned();
                let Some(handle) = handle else { continue };
                let tx = TxBody {
                    chain_id,
                    sender: user.public(),
                    nonce,
                    expiry: Round(1_000_000),
                    ops: vec![Operation::Create {
                        data: nonce.to_le_bytes().to_vec(),
                    }],
                }
                .sign(&user);
                nonce += 1;
                if let Ok(Ok(hash)) = handle.submit(tx).await {
                    let at = turmoil::sim_elapsed().unwrap_or_default().as_millis() as u64;
                    lock(&shared).accepted.push((hash, to.clone(), at));
                }
            }
            Ok(())
        });
    }

    // The check, at the end of the heal phase.
    {
        let shared = shared.clone();
        let end_ms = total * 1000;
        sim.client("check", async move {
            tokio::time::sleep(Duration::from_millis(end_ms)).await;
            let (handles, accepted) = {
                let s = lock(&shared);
                (s.handles.clone(), s.accepted.clone())
            };
            let mut seen: BTreeMap<Hash, Vec<(String, Option<TxStatus>)>> = BTreeMap::new();
            let mut problems = Vec::new();
            let hostile = lock(&shared).hostile.clone();
            for (name, h) in handles.iter().filter(|(n, _)| !hostile.contains(*n)) {
                let Ok(status) = h.status().await else {
                    problems.push(format!("{name}: not running at the end"));
                    continue;
                };
                lock(&shared)
                    .finals
                    .insert(name.clone(), status.last_committed_round);
                if status.phase != SyncPhase::Live {
                    let peers: Vec<String> = status
                        .peers
                        .iter()
                        .filter(|p| p.ready)
                        .map(|p| format!("{}@{:?}", p.addr, p.highest_round.map(|r| r.0)))
                        .collect();
                    problems.push(format!(
                        "{name}: {} at the end, not live (highest {:?}, committed {:?}, \
                         pending {}, dag {}, peers {})",
                        status.phase,
                        status.highest_round.map(|r| r.0),
                        status.last_committed_round.map(|r| r.0),
                        status.pending_vertices,
                        status.dag_vertices,
                        peers.join(" ")
                    ));
                }
                if status.buffer_bytes > SyncConfig::default().buffer_max_bytes {
                    problems.push(format!("{name}: buffer over its bound"));
                }
                if status.pending_vertices > NodeConfig::default().max_pending_vertices {
                    problems.push(format!("{name}: pending set over its bound"));
                }
                for (hash, _, _) in &accepted {
                    let st = h.tx_status(*hash).await.ok().and_then(Result::ok);
                    seen.entry(*hash).or_default().push((name.clone(), st));
                }
            }
            // A transaction committed anywhere must be committed, at the
            // same round, everywhere. One committed nowhere was lost: only
            // allowed if the node that accepted it crashed afterwards (its
            // mempool is memory; clients resubmit).
            let crashes = lock(&shared).crashes.clone();
            let mut lost_in_crash = 0;
            for (hash, via, at) in &accepted {
                let views = seen.remove(hash).unwrap_or_default();
                let committed: Vec<&TxStatus> = views
                    .iter()
                    .filter_map(|(_, s)| s.as_ref())
                    .filter(|s| matches!(s, TxStatus::Committed { .. } | TxStatus::Failed { .. }))
                    .collect();
                if committed.is_empty() {
                    let crashed_after = crashes
                        .get(via)
                        .is_some_and(|ts| ts.iter().any(|t| t >= at));
                    if crashed_after {
                        lost_in_crash += 1;
                    } else {
                        problems.push(format!(
                            "tx {} accepted by {via} at {at} ms is committed nowhere",
                            hash.short()
                        ));
                    }
                    continue;
                }
                for (name, st) in &views {
                    if st.as_ref() != Some(committed[0]) {
                        problems.push(format!(
                            "tx {}: {name} has {st:?}, another node {:?}",
                            hash.short(),
                            committed[0]
                        ));
                    }
                }
            }
            let mut s = lock(&shared);
            s.lost_in_crash = lost_in_crash;
            s.violations.extend(problems);
            Ok(())
        });
    }

    let mut next = 0;
    let mut host_errors = Vec::new();
    // Faults only touch hosts that exist (a joiner may not have joined yet).
    let mut hosts: std::collections::BTreeSet<String> = validator_names.iter().cloned().collect();
    loop {
        let now = sim.elapsed().as_millis() as u64;
        while next < schedule.len() && schedule[next].0 <= now {
            match &schedule[next].1 {
                Action::Join(spec) => {
                    hosts.insert(spec.name.clone());
                    if spec.hostile.is_none() {
                        lock(&shared).joined_at.insert(spec.name.clone(), now);
                    }
                    add_host(&mut sim, (**spec).clone(), shared.clone());
                    if slow {
                        for other in hosts.iter().filter(|h| **h != spec.name) {
                            let ms = links::link_latency_ms(&mut link_rng);
                            let latency = Duration::from_millis(ms);
                            sim.set_link_latency(spec.name.as_str(), other.as_str(), latency);
                        }
                    }
                }
                Action::Partition(a, b) if hosts.contains(a) && hosts.contains(b) => {
                    sim.partition(a.as_str(), b.as_str())
                }
                Action::Repair(a, b) if hosts.contains(a) && hosts.contains(b) => {
                    sim.repair(a.as_str(), b.as_str())
                }
                Action::Partition(..) | Action::Repair(..) => {}
                Action::Crash(who) => {
                    if hosts.contains(who) && sim.is_host_running(who.as_str()) {
                        let mut s = lock(&shared);
                        s.handles.remove(who);
                        s.crashes.entry(who.clone()).or_default().push(now);
                        if let Some(d) = s.downloads.as_mut() {
                            d.crashed(who);
                        }
                        drop(s);
                        sim.crash(who.as_str());
                    }
                }
                Action::Restart(who) => {
                    if hosts.contains(who) && !sim.is_host_running(who.as_str()) {
                        sim.bounce(who.as_str());
                    }
                }
            }
            next += 1;
        }
        match sim.step() {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => {
                host_errors.push(format!("{e}"));
                break;
            }
        }
    }

    let s = lock(&shared);
    let mut violations = host_errors;
    violations.extend(s.violations.iter().cloned());
    violations.extend(
        s.relay_findings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned(),
    );
    if let Some(d) = &s.downloads {
        violations.extend(d.check(links::interval_ms(ROUND_INTERVAL_MS)));
    }
    violations.extend(skipped_slots(&s.commit_rounds));
    if opts.scenario == Scenario::Byzantine {
        // Else the run proved nothing about evidence.
        for v in &honest_validators {
            if !s.revoked.contains(v) {
                violations.push(format!("{v} never took a forker off anchor duty"));
            }
        }
    }
    Report {
        options: opts.clone(),
        trace_hash: hex::encode(s.hasher.clone().finalize()),
        events: s.events,
        violations,
        accepted_txs: s.accepted.len(),
        lost_in_crash: s.lost_in_crash,
        bans: s.bans,
        committed: s.finals.clone(),
        time_to_live_ms: s
            .live_at
            .iter()
            .filter_map(|(n, at)| Some((n.clone(), at.checked_sub(*s.joined_at.get(n)?)?)))
            .collect(),
        commit_latency_ms: (!s.commit_latencies_ms.is_empty()).then(|| {
            let n = s.commit_latencies_ms.len();
            (
                s.commit_latencies_ms.iter().sum::<u64>() as f64 / n as f64,
                n,
            )
        }),
        tail: s.tail.iter().cloned().collect(),
        wall_ms: wall.elapsed().as_millis(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rounds(rs: &[u64]) -> std::collections::BTreeSet<Round> {
        rs.iter().map(|r| Round(*r)).collect()
    }

    #[test]
    fn a_slot_one_node_commits_and_another_skips_is_a_violation_where_both_span_it() {
        let mut commits = BTreeMap::new();
        commits.insert("a".to_string(), rounds(&[0, 2, 4, 6, 8]));
        commits.insert("b".to_string(), rounds(&[4, 6, 8, 10]));
        assert!(skipped_slots(&commits).is_empty(), "a joiner starts later");
        commits.insert("c".to_string(), rounds(&[2, 6, 8]));
        let found = skipped_slots(&commits);
        assert_eq!(
            found,
            vec![
                "a committed the anchor of round 4, c skipped it".to_string(),
                "b committed the anchor of round 4, c skipped it".to_string(),
            ]
        );
    }
}
