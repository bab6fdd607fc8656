//! What the node tells about itself: the status snapshot the HTTP API, the
//! CLI and the metrics read.

use super::Node;
use crate::ids::{Hash, PublicKey, Round};
use crate::phase::SyncPhase;
use crate::store::Store;
use crate::wire::Role;
use serde::{Deserialize, Serialize};

/// A snapshot a node joined from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedSnapshot {
    /// Its round.
    pub round: Round,
    /// Its manifest root.
    pub root: Hash,
    /// Objects it held.
    pub objects: u64,
    /// Transaction outcomes it held.
    pub outcomes: u64,
}

/// A snapshot download as the status API shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadStatus {
    /// Snapshot round.
    pub round: Round,
    /// Chunks verified and staged.
    pub chunks_done: usize,
    /// Chunks in the snapshot.
    pub chunks_total: usize,
    /// Raw bytes verified and staged.
    pub bytes_done: u64,
    /// Raw bytes in the snapshot.
    pub bytes_total: u64,
    /// Milliseconds since the download started.
    pub elapsed_ms: u64,
    /// Peers serving it.
    pub peers: usize,
}

/// Replay or catch-up progress, in rounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatchUpStatus {
    /// Highest round held when it began.
    pub from: Round,
    /// Highest round held now.
    pub through: Round,
    /// Highest round a trusted peer reported.
    pub target: Round,
}

/// A peer as the status API shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PeerStatus {
    /// Handle.
    pub id: u64,
    /// Address.
    pub addr: String,
    /// Proven key, once ready.
    pub key: Option<PublicKey>,
    /// Role.
    pub role: Role,
    /// Handshake complete.
    pub ready: bool,
    /// Highest round it reported.
    pub highest_round: Option<Round>,
    /// Last committed round it reported.
    pub committed_round: Option<Round>,
    /// Latest snapshot round it announced or offered.
    pub snapshot_round: Option<Round>,
    /// Smoothed request round-trip time.
    pub rtt_ms: Option<u64>,
    /// Useful bytes per second while it had requests outstanding.
    pub goodput_bps: Option<u64>,
    /// Useful bytes received from it.
    pub bytes_received: u64,
    /// Requests it answered.
    pub answers: u64,
    /// Requests to it that timed out.
    pub failures: u32,
    /// Recent timeouts not yet made up for by answers (each halves its
    /// request window).
    pub strikes: u32,
    /// Goodput halved per strike.
    pub score: u64,
}

/// An address this node keeps dialing and cannot reach.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UnreachableStatus {
    /// The address.
    pub addr: String,
    /// Failed dials in a row.
    pub failures: u32,
    /// Why the last one failed.
    pub last_error: Option<String>,
    /// Next attempt at this node time (ms).
    pub next_attempt_ms: u64,
}

/// An equivocation this node holds a proof of.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EquivocationStatus {
    /// The validator that signed two versions.
    pub author: PublicKey,
    /// The round.
    pub round: Round,
    /// The two vertex hashes, smaller first.
    pub versions: (Hash, Hash),
}

/// A validator off anchor duty for equivocating.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OffDutyStatus {
    /// The validator.
    pub author: PublicKey,
    /// The first epoch without its anchor slots.
    pub from_epoch: u64,
}

/// A member of the validator set as `GET /v1/validators` shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MemberStatus {
    /// Its key.
    pub key: PublicKey,
    /// The QUIC address it registered.
    pub address: String,
    /// Its voting weight.
    pub weight: u64,
    /// Whether it takes turns as anchor author (not if proven to
    /// equivocate).
    pub on_anchor_duty: bool,
}

/// A committed registration that takes effect in a later epoch.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PendingMember {
    /// Its key.
    pub key: PublicKey,
    /// The QUIC address it registered.
    pub address: String,
    /// The epoch it joins the set.
    pub from_epoch: u64,
}

/// A registration waiting for approval (`admission.rs`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CandidateStatus {
    /// Its key.
    pub key: PublicKey,
    /// The QUIC address it registered.
    pub address: String,
    /// The epoch its registration committed.
    pub since_epoch: u64,
    /// Members whose approval committed.
    pub approvals: Vec<PublicKey>,
    /// Their weight in the set in force (a quorum admits).
    pub approval_weight: u64,
}

/// A member whose leave committed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LeavingMember {
    /// Its key.
    pub key: PublicKey,
    /// The first epoch without it.
    pub from_epoch: u64,
}

/// The validator set in force at the node's highest round, and what is to
/// come: `GET /v1/validators`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ValidatorsStatus {
    /// The epoch of `round`.
    pub epoch: u64,
    /// The node's highest round.
    pub round: Round,
    /// Rounds per epoch.
    pub epoch_rounds: u64,
    /// Weight a quorum needs.
    pub quorum: u64,
    /// The members, by key.
    pub members: Vec<MemberStatus>,
    /// Registrations committed for later epochs.
    pub pending: Vec<PendingMember>,
    /// Members whose leave committed or that were removed for
    /// inactivity, with the epoch they are out from.
    #[serde(default)]
    pub leaving: Vec<LeavingMember>,
    /// Validators off anchor duty for equivocating, and from when.
    pub off_anchor_duty: Vec<OffDutyStatus>,
    /// How registrations are admitted: `approval` or `open`.
    #[serde(default)]
    pub admission: String,
    /// Registrations waiting for approval.
    #[serde(default)]
    pub candidates: Vec<CandidateStatus>,
    /// The last epoch whose set this node holds a certificate of (or
    /// knows from genesis), as `EPOCH:SET_HASH`: what another node's
    /// operator may pass as `--trust-checkpoint` (`epochs.rs`).
    #[serde(default)]
    pub checkpoint: Option<String>,
}

/// Validators off anchor duty, as both status views list them.
fn off_duty_status(schedule: &crate::validators::ValidatorSchedule) -> Vec<OffDutyStatus> {
    schedule
        .off_anchor_duty()
        .map(|(k, e)| OffDutyStatus {
            author: *k,
            from_epoch: e.0,
        })
        .collect()
}

/// Most equivocations `/v1/status` lists.
const MAX_LISTED_EQUIVOCATIONS: usize = 32;

/// A banned key.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BanStatus {
    /// The key.
    pub key: PublicKey,
    /// Banned until this node time (ms).
    pub until_ms: u64,
}

/// A snapshot of the node's state for the status API and the CLI.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Validator or listener.
    pub role: Role,
    /// Sync phase.
    pub phase: SyncPhase,
    /// This node's key.
    pub node_key: PublicKey,
    /// Chain id, once known.
    pub chain_id: Option<Hash>,
    /// Highest DAG round held.
    pub highest_round: Option<Round>,
    /// Last committed anchor round.
    pub last_committed_round: Option<Round>,
    /// Last round this node produced.
    pub own_last_round: Option<Round>,
    /// Validators in the set of the current round.
    pub validators: usize,
    /// Whether this node is in that set.
    pub is_member: bool,
    /// Vertices committed since genesis.
    pub committed_vertices: u64,
    /// Transactions executed since genesis.
    pub executed_txs: u64,
    /// Transactions in the mempool.
    pub mempool_txs: usize,
    /// Vertices waiting for parents.
    pub pending_vertices: usize,
    /// Vertices in the in-memory DAG window.
    pub dag_vertices: usize,
    /// Connections.
    pub peers: Vec<PeerStatus>,
    /// Keys banned now.
    pub bans: Vec<BanStatus>,
    /// Addresses whose last dial failed: the node backs off and retries.
    #[serde(default)]
    pub unreachable: Vec<UnreachableStatus>,
    /// Latest servable snapshot: round and manifest root.
    pub snapshot: Option<(Round, Hash)>,
    /// A snapshot download under way.
    pub download: Option<DownloadStatus>,
    /// Replay or range catch-up under way: the round it started from, the
    /// highest round held now and the round it is heading for.
    pub catch_up: Option<CatchUpStatus>,
    /// Gossip buffered while a snapshot downloads: vertices and bytes.
    pub buffer_vertices: usize,
    /// See `buffer_vertices`.
    pub buffer_bytes: usize,
    /// How the chain admits validators: `approval` or `open`; empty
    /// before the node has a chain.
    #[serde(default)]
    pub admission: String,
    /// What the operator should know: open admission, above all.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Validators proven to equivocate since start (one proof each).
    #[serde(default)]
    pub equivocations_total: u64,
    /// The proofs held, one per validator (at most 32 listed).
    #[serde(default)]
    pub equivocations: Vec<EquivocationStatus>,
    /// Validators taken off anchor duty by committed proofs.
    #[serde(default)]
    pub off_anchor_duty: Vec<OffDutyStatus>,
    /// Why the node stopped, if it did.
    pub halted: Option<String>,
}

impl<S: Store> Node<S> {
    /// The validator set at the highest round held, or `None` before the
    /// node has a chain.
    pub fn validators(&self) -> Option<ValidatorsStatus> {
        let chain = self.chain.as_ref()?;
        let round = self.highest_round().unwrap_or(Round(0));
        let schedule = &chain.consensus.meta().schedule;
        let epoch = schedule.epoch_of(round);
        let set = schedule.set_for_round(round);
        Some(ValidatorsStatus {
            epoch: epoch.0,
            round,
            epoch_rounds: chain.genesis.params.epoch_rounds,
            quorum: set.quorum(),
            members: set
                .members()
                .iter()
                .map(|m| MemberStatus {
                    key: m.key,
                    address: m.address.clone(),
                    weight: m.weight,
                    on_anchor_duty: set.on_anchor_duty(&m.key),
                })
                .collect(),
            pending: schedule
                .pending_after(epoch)
                .into_iter()
                .map(|(e, m)| PendingMember {
                    key: m.key,
                    address: m.address.clone(),
                    from_epoch: e.0,
                })
                .collect(),
            leaving: schedule
                .leaving_after(epoch)
                .into_iter()
                .map(|(e, key)| LeavingMember {
                    key,
                    from_epoch: e.0,
                })
                .collect(),
            off_anchor_duty: off_duty_status(schedule),
            admission: schedule.policy().admission.name().to_string(),
            checkpoint: self.checkpoint().map(|c| c.to_string()),
            candidates: schedule
                .candidates_at(epoch)
                .map(|c| CandidateStatus {
                    key: c.info.key,
                    address: c.info.address.clone(),
                    since_epoch: c.since.0,
                    approvals: c.approvals.iter().copied().collect(),
                    approval_weight: set.weight_of_keys(&c.approvals),
                })
                .collect(),
        })
    }

    /// The last certified epoch and its set hash.
    pub fn checkpoint(&self) -> Option<crate::epochs::TrustCheckpoint> {
        let chain = self.epochs.chain.as_ref()?;
        let epoch = chain.tip_epoch()?;
        Some(crate::epochs::TrustCheckpoint {
            epoch,
            set_hash: chain.hash_at(epoch)?,
        })
    }

    /// A full status snapshot.
    pub fn status(&self) -> NodeStatus {
        let chain = self.chain.as_ref();
        let round = self.highest_round().unwrap_or(Round(0));
        let set = chain.map(|c| c.consensus.meta().schedule.set_for_round(round));
        NodeStatus {
            role: self.config.role,
            phase: self.phase(),
            node_key: self.key.public(),
            chain_id: self.chain_id(),
            highest_round: self.highest_round(),
            last_committed_round: self.last_committed_round(),
            own_last_round: self.producer.own_last_round,
            validators: set.as_ref().map_or(0, |s| s.len()),
            is_member: set.as_ref().is_some_and(|s| s.contains(&self.key.public())),
            committed_vertices: chain.map_or(0, |c| c.consensus.meta().committed_vertices),
            executed_txs: chain.map_or(0, |c| c.consensus.meta().executed_txs),
            mempool_txs: self.txs.mempool.len(),
            pending_vertices: chain.map_or(0, |c| c.consensus.pending_len()),
            dag_vertices: chain.map_or(0, |c| c.consensus.dag().len()),
            peers: self
                .peers
                .peers
                .values()
                .map(|p| PeerStatus {
                    id: p.id.0,
                    addr: p.addr.clone(),
                    key: p.key,
                    role: p.role,
                    ready: p.is_ready(),
                    highest_round: p.highest_round,
                    committed_round: p.committed_round,
                    snapshot_round: p.snapshot_round,
                    rtt_ms: p.stats.rtt_ms,
                    goodput_bps: p.stats.goodput_bps(),
                    bytes_received: p.stats.bytes_received,
                    answers: p.stats.answers,
                    failures: p.stats.failures,
                    strikes: p.stats.strikes,
                    score: p.stats.score(),
                })
                .collect(),
            bans: self
                .peers
                .bans(self.clock.last_now)
                .map(|(key, until)| BanStatus {
                    key: *key,
                    until_ms: until.0,
                })
                .collect(),
            unreachable: self
                .peers
                .targets
                .iter()
                .filter(|(_, t)| t.connected.is_none() && t.failures > 0 && t.last_error.is_some())
                .map(|(addr, t)| UnreachableStatus {
                    addr: addr.clone(),
                    failures: t.failures,
                    last_error: t.last_error.clone(),
                    next_attempt_ms: t.next_attempt.0,
                })
                .collect(),
            snapshot: self
                .serving
                .snapshots
                .iter()
                .next_back()
                .map(|(r, s)| (*r, s.root)),
            download: self.download_status(),
            catch_up: self.sync.catching_up_from().map(|from| {
                let through = self.highest_round().unwrap_or_default();
                CatchUpStatus {
                    from,
                    through,
                    target: self.trusted_best_round().unwrap_or(through).max(through),
                }
            }),
            buffer_vertices: self.sync.buffer().map_or(0, |b| b.len()),
            buffer_bytes: self.sync.buffer().map_or(0, |b| b.bytes()),
            admission: chain.map_or(String::new(), |c| c.genesis.params.admission.name().into()),
            warnings: chain
                .filter(|c| c.genesis.params.admission == crate::admission::Admission::Open)
                .map(|_| crate::admission::OPEN_ADMISSION_WARNING.to_string())
                .into_iter()
                .collect(),
            equivocations_total: self.evidence.learned,
            equivocations: self
                .evidence
                .proofs()
                .take(MAX_LISTED_EQUIVOCATIONS)
                .map(|p| EquivocationStatus {
                    author: p.accused(),
                    round: p.round(),
                    versions: p.hashes(),
                })
                .collect(),
            off_anchor_duty: chain
                .map(|c| off_duty_status(&c.consensus.meta().schedule))
                .unwrap_or_default(),
            halted: self.halted.clone(),
        }
    }
}
