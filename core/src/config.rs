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
}

/// Everything a node is told at construction, except its key and store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Validator or listener.
    pub role: Role,
    /// Address this node accepts connections on, announced in the handshake.
    pub listen_addr: Option<String>,
    /// Peers to dial at start and whenever the connection drops.
    pub bootstrap_peers: Vec<String>,
    /// The chain id this node must join. Without it a fresh node trusts the
    /// first peer's chain id (trust on first use, with a loud warning).
    pub trusted_chain_id: Option<Hash>,
    /// Minimum time between two vertices of this node.
    pub round_interval_ms: u64,
    /// A peer must complete the handshake within this time.
    pub handshake_timeout_ms: u64,
    /// A request without answer by then is retried elsewhere.
    pub request_timeout_ms: u64,
    /// First reconnect delay; doubles per failure up to the maximum.
    pub reconnect_backoff_ms_base: u64,
    /// Longest reconnect delay.
    pub reconnect_backoff_ms_max: u64,
    /// Attempts per request before the node gives up on it.
    pub retry_attempts: u32,
    /// How often a node tells its peers how far it is.
    pub status_interval_ms: u64,
    /// Most connections at once.
    pub max_peers: usize,
    /// Most connections from listeners (nodes outside the validator set).
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
    /// Rounds asked for in one range request.
    pub range_fetch_rounds: u64,
    /// A node more than this many rounds behind its best peer fetches by
    /// range instead of waiting for gossip.
    pub catch_up_threshold_rounds: u64,
    /// In `SyncMode::Snapshot`, a node more than this many rounds behind
    /// joins again from a snapshot instead of fetching every round.
    pub strategy_switch_threshold_rounds: u64,
    /// A node whose DAG has not grown for this long asks a peer that is as
    /// far or further for the range (gossip never repeats old vertices).
    pub stall_timeout_ms: u64,
    /// Most requests of this node awaiting an answer at once.
    pub max_requests_in_flight: usize,
    /// Most hashes in one `GetVertices`.
    pub max_fetch_hashes: usize,
    /// Snapshots kept servable (the newest never breaks a download of the
    /// previous one).
    pub snapshots_kept: usize,
    /// How a fresh node joins.
    pub sync_mode: SyncMode,
    /// Peers asked for a manifest during discovery.
    pub max_sync_peers: usize,
    /// Chunk requests in flight at once during a snapshot download.
    pub parallel_download_limit: usize,
    /// Bytes of gossiped vertices kept while a snapshot downloads.
    pub buffer_max_bytes: usize,
    /// Span of rounds of gossiped vertices kept while a snapshot downloads.
    pub buffer_max_rounds: u64,
    /// Largest response this node sends.
    pub max_response_bytes: usize,
    /// Largest frame this node accepts or sends.
    pub max_frame_bytes: usize,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            role: Role::Validator,
            listen_addr: None,
            bootstrap_peers: Vec::new(),
            trusted_chain_id: None,
            round_interval_ms: 250,
            handshake_timeout_ms: 5_000,
            request_timeout_ms: 5_000,
            reconnect_backoff_ms_base: 250,
            reconnect_backoff_ms_max: 8_000,
            retry_attempts: 5,
            status_interval_ms: 1_000,
            max_peers: 64,
            max_listener_peers: 32,
            ban_duration_ms: 600_000,
            max_banned_peers: 1_024,
            max_pending_vertices: 4_096,
            max_rounds_ahead: 1_000,
            max_mempool_txs: 50_000,
            max_forwarded_txs: 50_000,
            range_fetch_rounds: 64,
            catch_up_threshold_rounds: 4,
            strategy_switch_threshold_rounds: 400,
            stall_timeout_ms: 1_000,
            max_requests_in_flight: 256,
            max_fetch_hashes: 256,
            snapshots_kept: 2,
            sync_mode: SyncMode::Range,
            max_sync_peers: 8,
            parallel_download_limit: 8,
            buffer_max_bytes: 64 * 1024 * 1024,
            buffer_max_rounds: 2_000,
            max_response_bytes: 4 * 1024 * 1024,
            max_frame_bytes: 16 * 1024 * 1024,
        }
    }
}
