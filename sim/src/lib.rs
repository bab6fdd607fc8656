//! The deterministic simulator: many BluePods nodes under turmoil.
//!
//! Each node is a turmoil host running the production event loop
//! (`bluepods_drivers::event_loop`) and the production QUIC transport; only
//! the UDP socket ([`net::SimSocket`]), quinn's runtime clock
//! ([`net::SimRuntime`]) and the store ([`store::SimStore`], in memory with
//! crash semantics) differ. Snapshot builds, chunk checks and staging
//! run on the loop instead of other threads (`run_work_inline`), and
//! every random choice — turmoil's latencies and losses, QUIC's
//! connection ids, the nodes' own RNGs, the scenario's faults — comes from
//! the seed. The same seed gives the same trace, row for row; `trace_hash`
//! is its SHA-256.
//!
//! A scenario stacks a workload (transactions), joins and faults, then a
//! heal phase with no faults and no load, then checks the invariants:
//! honest nodes agree on every committed anchor and every snapshot root at
//! the same round (so on the state, transaction outcomes included); every
//! accepted transaction is committed at the same round on every node (none
//! lost, none applied twice); every node is live at the end; buffers and
//! pending sets stayed within their limits; no node failed or panicked.

pub mod hostile;
mod hosts;
mod links;
pub mod net;
mod observe;
pub mod relay;
mod rotation;
mod run;
pub mod store;

pub use observe::Report;
pub use run::{run, ROUND_INTERVAL_MS};

use std::fmt;
use std::str::FromStr;

/// What happens during a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// Validators and a transaction load; latency from the seed.
    Steady,
    /// Steady, plus listeners and validators joining at random times, by
    /// range, by snapshot or in auto mode.
    Join,
    /// Join, plus message loss and partitions that come and go.
    Partition,
    /// Join, plus crashes and restarts of random nodes (joiners included,
    /// so some crash mid-sync).
    Crash,
    /// Join, with one validator lying (corrupt chunks, false manifests, a
    /// forged genesis) or equivocating, a flooding listener, and a slow
    /// validator; the invariants are checked on the honest nodes.
    Hostile,
    /// Snapshot joiners far away on slow, lossy uplinks (40–150 ms RTT,
    /// 0–1% loss, rate caps), downloading a state that spans many snapshot
    /// intervals, one of them killed mid-download (`links.rs`).
    SlowLinks,
    /// Join, with a quarter of the nodes hostile in the ways a reader of
    /// the code would pick (`hostile.rs`: `Byzantine`, a validator that
    /// claims far rounds, repeats its vertices and signs far-future and
    /// attestation-poisoning ones; `Pest`, a listener that claims far
    /// rounds, withholds every answer, floods range requests, repeats what
    /// it forwards and adds self-signed far-future vertices; `Mute`, a
    /// listener that floods range requests and reads no answer), plus a relay
    /// `r0` that passes two validators' handshakes to each other
    /// (`relay.rs`). Honest nodes
    /// must converge, never ban each other and never stop; with
    /// `adversaries` off the same seed runs without them, for comparison.
    Adversary,
    /// Join, with f of the 3f + 1 validators Byzantine (`hostile.rs`,
    /// `Forker`: two signed versions of every vertex, one to each half of
    /// their peers, votes withheld from one half, the other version served
    /// to whoever fetches); joiners come by range and by snapshot. Honest
    /// nodes must commit one anchor sequence — the same rounds, the same
    /// anchors — reach equal state roots, and all go live. 7 validators
    /// unless `--validators` says otherwise.
    Byzantine,
    /// The validator set rotates while nodes join (`rotation.rs`): epochs
    /// of 1 s; validator joiners are admitted by the approvals of the
    /// members they connect to, a genesis validator leaves by
    /// transaction, another vanishes for good and is removed for
    /// inactivity, and joiners by snapshot check the certificate chain to
    /// their snapshot's epoch. At the end both genesis validators are out
    /// of the set and a joiner is in.
    Rotation,
}

impl Scenario {
    /// Every scenario, for sweeps.
    pub const ALL: [Scenario; 9] = [
        Scenario::Steady,
        Scenario::Join,
        Scenario::Partition,
        Scenario::Crash,
        Scenario::Hostile,
        Scenario::SlowLinks,
        Scenario::Adversary,
        Scenario::Byzantine,
        Scenario::Rotation,
    ];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Steady => "steady",
            Scenario::Join => "join",
            Scenario::Partition => "partition",
            Scenario::Crash => "crash",
            Scenario::Hostile => "hostile",
            Scenario::SlowLinks => "slow-links",
            Scenario::Adversary => "adversary",
            Scenario::Byzantine => "byzantine",
            Scenario::Rotation => "rotation",
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scenario {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Scenario::ALL
            .into_iter()
            .find(|x| x.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Scenario::ALL.iter().map(|x| x.name()).collect();
                format!("unknown scenario {s:?} (one of: {})", names.join(", "))
            })
    }
}

/// One run.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// What happens.
    pub scenario: Scenario,
    /// Everything random derives from it.
    pub seed: u64,
    /// Validators in the genesis.
    pub validators: usize,
    /// Nodes that join during the run (not in `Steady`).
    pub joiners: usize,
    /// Simulated seconds of load and faults, before the heal phase.
    pub duration_s: u64,
    /// Simulated seconds of the heal phase (the bound within which every
    /// node must be live and every transaction committed).
    pub heal_s: u64,
    /// Keep every trace row in the report (for `--trace`), not only the
    /// last ones.
    pub keep_trace: bool,
    /// `adversary` only: whether the hostile nodes take part (off: the
    /// same seed, every node honest — the baseline for time to live).
    pub adversaries: bool,
}

impl SimOptions {
    /// The defaults for `scenario` and `seed`: 4 validators (7 in
    /// `byzantine`, for f = 2), 3 joiners, 20 s, 25 s of heal (50 s in
    /// `slow-links`: a far joiner's download of its ~8 MB takes ~25 s, and
    /// one is killed and restarted on the way).
    pub fn new(scenario: Scenario, seed: u64) -> Self {
        SimOptions {
            scenario,
            seed,
            validators: if scenario == Scenario::Byzantine {
                7
            } else {
                4
            },
            joiners: if scenario == Scenario::Steady { 0 } else { 3 },
            duration_s: 20,
            heal_s: if scenario == Scenario::SlowLinks {
                50
            } else {
                25
            },
            keep_trace: false,
            adversaries: true,
        }
    }

    /// How to run it again.
    pub fn reproduce(&self) -> String {
        format!(
            "bluepods sim --scenario {} --seed {} --nodes {} --validators {} --duration {} --heal {}{}",
            self.scenario,
            self.seed,
            self.validators + self.joiners,
            self.validators,
            self.duration_s,
            self.heal_s,
            if self.adversaries { "" } else { " --calm" }
        )
    }
}
