//! Node configuration: every limit and timeout the node obeys, with the
//! defaults documented in the README. Values that decide *validity* (sizes,
//! epoch length) are chain parameters in the genesis instead, because every
//! node must share them.

use crate::ids::Hash;
use crate::wire::Role;
use serde::{Deserialize, Serialize};

/// How a node with no committed state of its own gets the network's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    /// Fetch and replay every round from genesis (a listener that must see
    /// every vertex).
    Range,
    /// Download an attested snapshot, then replay what came after it.
    Snapshot,
    /// The default: join by range while the network is young (its best
    /// round within `strategy_switch_threshold` of genesis: every vertex,
    /// little to fetch), by snapshot past that; a live node that falls that
    /// far behind joins again from a snapshot.
    Auto,
}

impl SyncMode {
    /// Whether this mode ever takes snapshots.
    pub fn uses_snapshots(self) -> bool {
        self != SyncMode::Range
    }
}

/// Everything a node is told at construction, except its key and store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Validator or listener.
    pub role: Role,
    /// As a member, approve every validator candidate this node holds a
    /// connection to (`admission.rs`): how a devnet's bootstrap admits the
    /// validators that join it. Off by default; `bluepods-node --bootstrap`
    /// turns it on unless told `--auto-approve false`.
    pub auto_approve: bool,
    /// Address this node accepts connections on, announced in the handshake.
    pub listen_addr: Option<String>,
    /// Peers to dial at start and whenever the connection drops.
    pub bootstrap_peers: Vec<String>,
    /// The chain id this node must join. Without it a fresh node trusts the
    /// chain id its peers agree on (`handshake/genesis.rs`; with one peer,
    /// trust on first use), with a loud warning.
    pub trusted_chain_id: Option<Hash>,
    /// Minimum time between two vertices of this node.
    pub round_interval_ms: u64,
    /// How long a validator waits, once a round is due, for the anchor it
    /// is to vote for, or for a quorum of votes for the anchor it is to
    /// certify (`consensus/decide.rs`). Without the wait, a vertex
    /// produced the moment a quorum of the round before arrived often cites
    /// neither, and slots commit only indirectly, later.
    pub leader_timeout_ms: u64,
    /// First reconnect delay; doubles per failure up to the maximum.
    pub reconnect_backoff_ms_base: u64,
    /// Longest reconnect delay.
    pub reconnect_backoff_ms_max: u64,
    /// How often a node tells its peers how far it is.
    pub status_interval_ms: u64,
    /// Most connections at once.
    pub max_peers: usize,
    /// Inbound connections whose handshake has not completed, at most:
    /// one more is refused, so silent connections cannot fill `max_peers`.
    pub max_unproven_peers: usize,
    /// Most connections from nodes outside the validator set (whatever
    /// role they claim: only a key of the set counts as a validator).
    pub max_listener_peers: usize,
    /// How long a peer caught lying (bad chunk, false manifest, invalid
    /// vertex, wrong genesis, malformed message) stays banned.
    pub ban_duration_ms: u64,
    /// Most banned keys remembered.
    pub max_banned_peers: usize,
    /// Most vertices waiting for parents or for their epoch's set.
    pub max_pending_vertices: usize,
    /// Vertices further than this ahead of the last commit are dropped (and
    /// fetched by range later) rather than held.
    pub max_rounds_ahead: u64,
    /// Most transactions waiting in the mempool.
    pub max_mempool_txs: usize,
    /// Most forwarded transactions remembered as pending (listeners).
    pub max_forwarded_txs: usize,
    /// A node whose DAG has not grown for this long asks a peer that is as
    /// far or further for the range (gossip never repeats old vertices).
    pub stall_timeout_ms: u64,
    /// Most requests of this node awaiting an answer at once.
    pub max_requests_in_flight: usize,
    /// Most hashes in one `GetVertices`.
    pub max_fetch_hashes: usize,
    /// The newest snapshots always kept servable.
    pub snapshots_kept: usize,
    /// An older snapshot stays servable while requests for it keep coming:
    /// each renews its lease for this long (a download in progress).
    pub snapshot_lease_ms: u64,
    /// No lease keeps a snapshot servable longer than this after it was
    /// built.
    pub snapshot_retention_max_ms: u64,
    /// Leased snapshots are let go, oldest first, while the kept snapshots'
    /// compressed chunks together exceed this many bytes (the newest
    /// `snapshots_kept` are always kept).
    pub snapshot_disk_budget_bytes: u64,
    /// Largest response this node sends.
    pub max_response_bytes: usize,
    /// Largest frame this node accepts or sends.
    pub max_frame_bytes: usize,
    /// Messages kept from a peer whose handshake proof has not arrived yet
    /// (its requests may overtake the proof); one more drops the peer.
    pub max_early_messages: usize,
    /// Bytes of those messages (encoded) kept per peer; past it the peer
    /// is dropped. Sized for a few requests, a delta request's digests
    /// (up to 128 KiB) among them.
    pub max_early_message_bytes: usize,
    /// Vertex hashes remembered as verified (with who sent them), so that
    /// no vertex is verified twice, even one the consensus did not keep
    /// (too far ahead, below the pruning floor). About 100 bytes each:
    /// 6.5 MB at the default.
    pub max_verified_vertices: usize,
    /// Useless vertices one peer may gossip before it is banned for
    /// `ban_duration_ms`: one it already sent (an honest node forwards each
    /// vertex once per connection), or one the links check refuses (an
    /// honest forwarder with less history may have taken it, so one is no
    /// proof, but honest nodes forward few).
    pub max_useless_vertices: u32,
    /// Equivocation proofs kept (one per proven validator, so the set size
    /// bounds it first), to forward, to put in own vertices and to show;
    /// past it a new one is refused, not forwarded.
    pub max_evidence_kept: usize,
    /// Bytes of those proofs (encoded; 344 bytes plus 32 per parent each).
    pub max_evidence_bytes: usize,
    /// Most epoch certificates in one answer (`epochs.rs`); the answer
    /// also stays under `max_response_bytes`.
    pub max_certificates_per_response: usize,
    /// Signature checks (one per vertex, one per carried transaction) the
    /// node spends per second on one peer's unsolicited gossip; past it,
    /// that peer's vertices are dropped unchecked (`LimitHit
    /// gossip_verification`) and fetched again if needed. Answers to the
    /// node's own requests are not counted: it asked for them.
    pub max_gossip_signature_checks_per_sec: u64,
    /// Bytes per second this node sends in answers to requests (snapshot
    /// chunks, ranges), per connection; 0 for no limit. Serving peers keep
    /// bandwidth for consensus this way. Enforced by the driver.
    pub max_upload_bandwidth: u64,
    /// Synchronization: how this node joins and catches up.
    pub sync: SyncConfig,
    /// Stop before downloading: choose the snapshot as a joiner would,
    /// probe each serving peer with one chunk and report a `SyncPlan`
    /// (`bluepods sync-plan`).
    pub plan_only: bool,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            role: Role::Validator,
            auto_approve: false,
            listen_addr: None,
            bootstrap_peers: Vec::new(),
            trusted_chain_id: None,
            round_interval_ms: 250,
            leader_timeout_ms: 500,
            reconnect_backoff_ms_base: 250,
            reconnect_backoff_ms_max: 8_000,
            status_interval_ms: 1_000,
            max_peers: 64,
            max_unproven_peers: 16,
            max_listener_peers: 32,
            ban_duration_ms: 600_000,
            max_banned_peers: 1_024,
            max_pending_vertices: 4_096,
            max_verified_vertices: 65_536,
            max_useless_vertices: 16,
            max_evidence_kept: 1_024,
            max_evidence_bytes: 4 * 1024 * 1024,
            max_certificates_per_response: 256,
            max_gossip_signature_checks_per_sec: 20_000,
            max_rounds_ahead: 1_000,
            max_mempool_txs: 50_000,
            max_forwarded_txs: 50_000,
            stall_timeout_ms: 1_000,
            max_requests_in_flight: 256,
            max_fetch_hashes: 256,
            snapshots_kept: 2,
            snapshot_lease_ms: 30_000,
            snapshot_retention_max_ms: 1_800_000,
            snapshot_disk_budget_bytes: 8 << 30,
            max_response_bytes: 4 * 1024 * 1024,
            max_frame_bytes: 16 * 1024 * 1024,
            max_early_messages: 16,
            max_early_message_bytes: 256 * 1024,
            max_upload_bandwidth: 0,
            sync: SyncConfig::default(),
            plan_only: false,
        }
    }
}

/// How a node joins and catches up: the fields of seed 001's `SyncConfig`
/// that apply to a DAG of rounds (blocks are rounds here; durations are in
/// milliseconds). `peer_rotation_interval` has no counterpart: sources are
/// re-ranked on every request by their measured goodput and RTT.
/// `validation_pipeline_size` neither: chunks are verified as they land.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncConfig {
    /// How a node with no state of its own joins.
    pub default_strategy: SyncMode,
    /// Unless in `SyncMode::Range`, a node more than this many rounds
    /// behind joins (again) from a snapshot instead of fetching every
    /// round. The default, 110, is derived from measured join times (README,
    /// "Which strategy when"): where a range under 1,000 tx/s takes as long
    /// as the geometric mean of the smallest and largest snapshot joins.
    pub strategy_switch_threshold: u64,
    /// A node more than this many rounds behind its best peer stops
    /// producing and fetches by range (`CatchUp`).
    #[serde(alias = "max_behind_blocks")]
    pub max_behind_rounds: u64,
    /// Peers asked for a manifest during discovery.
    pub max_sync_peers: usize,
    /// A request without answer by then is sent again elsewhere, and the
    /// peer loses weight.
    pub peer_timeout_ms: u64,
    /// A peer must complete the handshake within this time; a dial with no
    /// QUIC handshake by then fails (and is reported, then retried).
    pub connection_timeout_ms: u64,
    /// Chunk requests in flight at once, over all peers.
    pub parallel_download_limit: usize,
    /// Most chunk requests in flight at once to one peer. Within it, the
    /// window follows the peer's measured bandwidth-delay product, halved
    /// per recent timeout of that peer.
    pub peer_download_window: usize,
    /// Most page digests in a delta request (`GetChunkDelta`, 8 bytes
    /// each): a joiner holding more pages in a chunk's key range fetches
    /// the chunk whole, and a server answers a longer list with the whole
    /// chunk. 0 turns delta requests off.
    pub max_delta_pages: usize,
    /// A chunk request's timeout is `peer_timeout_ms` plus twice the time
    /// the source's measured goodput needs for it and the answers queued
    /// before it (`PeerStats::transfer_allowance_ms`), at most this much
    /// more.
    pub max_transfer_allowance_ms: u64,
    /// The goodput a chunk request's timeout assumes of a source measured
    /// slower or not measured yet (bytes/s): a first request on a slow link
    /// gets the time such a link needs.
    pub min_expected_goodput_bytes_per_sec: u64,
    /// Rounds asked for in one range request.
    #[serde(alias = "block_batch_size")]
    pub range_fetch_rounds: u64,
    /// Range requests in flight at once during catch-up, each to another
    /// peer.
    pub parallel_range_fetches: usize,
    /// How long the range the node waits on may go unanswered before it is
    /// asked of a second peer too (a peer may withhold its answers); at
    /// least four of that peer's round trips.
    pub range_hedge_ms: u64,
    /// Attempts per request before the node gives up on it (range fetches:
    /// failures in a row before a catching-up node backs off).
    pub retry_attempts: u32,
    /// How long a node waits (`Backoff`) before it tries again when its
    /// range fetches all failed, or `retry_attempts` requests for the
    /// genesis or a manifest went unanswered.
    pub catch_up_backoff_ms: u64,
    /// Whether `retry_attempts` unanswered requests for the genesis or a
    /// manifest end the sync (`Failed`): set by one-shot syncs
    /// (`--sync-snapshot`, `--sync-full`), which exit with the reason. A
    /// daemon leaves it off and backs off instead: peers that do not help
    /// must never stop a node.
    pub give_up_after_retries: bool,
    /// The validator set this node trusts at one epoch
    /// (`--trust-checkpoint EPOCH:SET_HASH`): certificates are checked from
    /// there instead of from genesis, so keys of sets before it — leaked,
    /// perhaps — cannot fool it (`epochs.rs`).
    pub trust_checkpoint: Option<crate::epochs::TrustCheckpoint>,
    /// Least time between two download progress reports.
    pub progress_report_interval_ms: u64,
    /// Raw bytes of checked chunks held before they are staged together,
    /// in one sorted bulk write (a progress report or the last chunk
    /// stages them sooner). Bigger batches cost fewer store writes and
    /// hold more memory.
    pub stage_batch_bytes: u64,
    /// Bytes of gossiped vertices kept while a snapshot downloads.
    pub buffer_max_bytes: usize,
    /// Span of rounds of gossiped vertices kept while a snapshot downloads.
    pub buffer_max_rounds: u64,
    /// Addresses accepted from one peer-exchange answer (and sent in one).
    pub max_peer_exchange: usize,
    /// Connections a node outside the validator set opens beyond its
    /// bootstrap peers: to this many validators of the set, and up to as
    /// many more addresses learned by peer exchange.
    pub target_peers: usize,
    /// A node without `--chain-id` trusts a chain id only once this many
    /// ready peers announce it and none announces another (fewer if no
    /// more peers are on the way, or after `genesis_agreement_wait_ms`).
    pub genesis_agreement_peers: usize,
    /// Longest wait, from the first ready peer, for
    /// `genesis_agreement_peers` of them.
    pub genesis_agreement_wait_ms: u64,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            default_strategy: SyncMode::Auto,
            strategy_switch_threshold: 110,
            max_behind_rounds: 4,
            max_sync_peers: 8,
            peer_timeout_ms: 5_000,
            connection_timeout_ms: 5_000,
            parallel_download_limit: 32,
            peer_download_window: 24,
            max_delta_pages: 16_384,
            max_transfer_allowance_ms: 60_000,
            min_expected_goodput_bytes_per_sec: 64 * 1024,
            range_fetch_rounds: 64,
            parallel_range_fetches: 4,
            range_hedge_ms: 500,
            retry_attempts: 5,
            catch_up_backoff_ms: 5_000,
            give_up_after_retries: false,
            trust_checkpoint: None,
            progress_report_interval_ms: 1_000,
            stage_batch_bytes: 16 * 1024 * 1024,
            buffer_max_bytes: 64 * 1024 * 1024,
            buffer_max_rounds: 2_000,
            max_peer_exchange: 32,
            target_peers: 4,
            genesis_agreement_peers: 3,
            genesis_agreement_wait_ms: 2_000,
        }
    }
}
