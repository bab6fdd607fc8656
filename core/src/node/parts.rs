//! The components a [`Node`](super::Node) is made of, besides its chain,
//! peers and sync state: each groups the fields one concern owns, so a
//! reader sees which part of the node a method touches.

use super::fetch::InFlight;
use super::snapshot::attestations::AttestationTable;
use super::snapshot::download::DownloadRecord;
use super::snapshot::serve::ServedSnapshot;
use super::status::AppliedSnapshot;
use crate::ids::{Hash, PeerId, Round, Timestamp};
use crate::mempool::Mempool;
use crate::vertex::Attestation;
use crate::wire::RequestId;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

/// Requests awaiting an answer (`sync.rs`).
#[derive(Debug)]
pub(super) struct Requests {
    /// By id.
    pub(super) in_flight: BTreeMap<RequestId, InFlight>,
    /// The id of the next request.
    pub(super) next_id: u64,
    /// Vertex hashes asked for and not yet received.
    pub(super) wanted: BTreeSet<Hash>,
    /// Chunk requests that timed out, newest last, at most
    /// `max_requests_in_flight`: their answers may still come, and a chunk
    /// that arrives late is as good as one that arrives on time.
    pub(super) expired: BTreeMap<RequestId, InFlight>,
}

impl Requests {
    /// The peers with a request in flight of a kind `what` selects.
    pub(super) fn peers_asked(
        &self,
        what: impl Fn(&crate::node::fetch::RequestKind) -> bool,
    ) -> BTreeSet<PeerId> {
        self.in_flight
            .values()
            .filter(|r| what(&r.kind))
            .map(|r| r.peer)
            .collect()
    }
}

impl Default for Requests {
    fn default() -> Self {
        Requests {
            in_flight: BTreeMap::new(),
            next_id: 1,
            wanted: BTreeSet::new(),
            expired: BTreeMap::new(),
        }
    }
}

/// Range catch-up's bookkeeping beyond the requests in flight
/// (`catchup.rs`).
#[derive(Debug, Default)]
pub(super) struct Ranges {
    /// Range fetches that failed in a row.
    pub(super) count: u32,
    /// The peer that failed last (asked again only if nobody else can).
    pub(super) last_peer: Option<PeerId>,
    /// Windows answered in full, by (from, to), with when: while one below
    /// them is missing they wait in the pending set, and the held round
    /// does not show them. Not asked again until the next request timeout
    /// (the pending set may have dropped them by then); forgotten once the
    /// node holds past them. At most `parallel_range_fetches` are asked at
    /// a time, so this stays as small.
    pub(super) landed: BTreeMap<(Round, Round), Timestamp>,
}

/// This node's own vertices, registration and approvals (`produce.rs`,
/// `membership.rs`).
#[derive(Debug, Default)]
pub(super) struct Production {
    /// The round of the last vertex this node produced.
    pub(super) own_last_round: Option<Round>,
    /// When it produced it.
    pub(super) last_produced_at: Option<Timestamp>,
    /// When the next vertex is due, if one is.
    pub(super) produce_at: Option<Timestamp>,
    /// The round waiting for its anchor or the anchor's votes, since when.
    pub(super) waiting: Option<(Round, Timestamp)>,
    /// The validator set last reported: its epoch and member keys (a
    /// leave and a join in one epoch change the members, not the size).
    pub(super) last_set: Option<(u64, Vec<crate::ids::PublicKey>)>,
    /// Own vertices not known to be committed, to re-inject their
    /// transactions if they fall out of the window uncommitted.
    pub(super) own_uncommitted: BTreeSet<(Round, Hash)>,
    /// This node's pending registration as a validator: transaction hash
    /// and expiry round.
    pub(super) registration: Option<(Hash, Round)>,
    /// This member's approvals on their way (`membership.rs`): candidate,
    /// transaction hash and expiry round.
    pub(super) approvals: BTreeMap<crate::ids::PublicKey, (Hash, Round)>,
}

/// Transactions on their way to a commit (`produce.rs`, `gossip.rs`).
#[derive(Debug)]
pub(super) struct Transactions {
    /// Waiting for a vertex of this node.
    pub(super) mempool: Mempool,
    /// Transactions this node forwarded to a validator, oldest first.
    pub(super) forwarded: VecDeque<Hash>,
    /// The same, for lookups.
    pub(super) forwarded_set: BTreeSet<Hash>,
    /// Transactions carried by accepted, not yet committed vertices, with
    /// the vertex round (so they read as pending, and leave with the
    /// window).
    pub(super) in_dag: HashMap<Hash, Round>,
}

impl Transactions {
    /// No transactions, a mempool of at most `max_mempool_txs`.
    pub(super) fn new(max_mempool_txs: usize) -> Self {
        Transactions {
            mempool: Mempool::new(max_mempool_txs),
            forwarded: VecDeque::new(),
            forwarded_set: BTreeSet::new(),
            in_dag: HashMap::new(),
        }
    }
}

/// The serving side of snapshots (`snapshots.rs`).
#[derive(Debug, Default)]
pub(super) struct Serving {
    /// Servable snapshots by round: the newest `snapshots_kept`, and older
    /// ones while a download of them holds a lease.
    pub(super) snapshots: BTreeMap<Round, ServedSnapshot>,
    /// The round of the snapshot being built, if any.
    pub(super) building: Option<Round>,
    /// Compressed bytes stored so far for the snapshot being built.
    pub(super) building_bytes: u64,
    /// A manifest root to attest in this node's next vertex.
    pub(super) pending_attestation: Option<Attestation>,
    /// Attestations seen in accepted vertices.
    pub(super) attestations: AttestationTable,
}

/// What this node knows of joining from a snapshot, across sync states
/// (`snapsync.rs`, `replay.rs`).
#[derive(Debug, Default)]
pub(super) struct JoinRecord {
    /// When the first peer announcing a chain id was ready, for a node
    /// without a chain (`handshake/genesis.rs`).
    pub(super) genesis_wait_since: Option<crate::ids::Timestamp>,
    /// The last snapshot download that did not finish (found at start, or
    /// left when its sources went away): its verified chunks are staged,
    /// and the next download keeps every one it lists too.
    pub(super) resume: Option<DownloadRecord>,
    /// Chunk answers received since this process started (used or not),
    /// and their bytes: what the downloads cost.
    pub(super) chunk_answers: u64,
    /// Bytes of `chunk_answers`.
    pub(super) chunk_answer_bytes: u64,
    /// Chunks verified and staged from answers since this process started.
    pub(super) chunks_staged: u64,
    /// Of those, the ones rebuilt from a delta answer.
    pub(super) chunks_rebuilt: usize,
    /// Nobody serves `resume`'s snapshot any more: discovery asks for the
    /// latest one instead (and the download keeps the shared chunks).
    pub(super) resume_unserved: bool,
    /// The snapshot this node joined from.
    pub(super) applied: Option<AppliedSnapshot>,
    /// After joining from a snapshot: the round at which this node's state
    /// was compared with a quorum's attestation, and whether it matched.
    pub(super) verified: Option<(Round, bool)>,
    /// A snapshot was applied and the node has not been live since: the
    /// cool-down keeps it closing the gap by range, and ends when it is.
    pub(super) range_until_live: bool,
    /// No snapshot sync is started for falling behind before this time.
    pub(super) snapshot_cooldown_until: Timestamp,
}

/// The node's sense of time, all of it from inputs.
#[derive(Debug)]
pub(super) struct Clock {
    /// The time of the last input.
    pub(super) last_now: Timestamp,
    /// When a vertex last joined the DAG (or a range fetch last started).
    pub(super) last_progress_at: Timestamp,
    /// When to tell peers how far this node is next.
    pub(super) next_status_at: Timestamp,
}

impl Clock {
    /// Everything at `now`.
    pub(super) fn new(now: Timestamp) -> Self {
        Clock {
            last_now: now,
            last_progress_at: now,
            next_status_at: now,
        }
    }
}
