//! The sync phases and the one table of allowed transitions.
//!
//! The phase is derived from the node's sync state (`node/state.rs`), whose
//! one setter checks this table on every change and emits
//! `Event::PhaseChanged`. An edge that is not in the table is a bug, and the
//! check fails loudly in debug builds (release builds report it as an event
//! and keep the old state rather than crash a running node). The table holds
//! exactly the edges the node takes: `core/tests/phase_edges.rs` drives
//! scenarios through every one of them and fails on an edge never taken.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a node is in joining or following the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncPhase {
    /// Constructed, nothing started.
    Idle,
    /// Dialing peers.
    Connecting,
    /// Connected; proving keys, agreeing on the chain, fetching genesis.
    Handshake,
    /// Asking peers for status and snapshot manifests.
    Discovery,
    /// Downloading snapshot chunks.
    SnapshotFetch,
    /// Switching the verified snapshot in.
    SnapshotApply,
    /// Replaying the consensus frontier and buffered vertices.
    Replay,
    /// Following the network (and producing, for a validator in the set).
    Live,
    /// Fetching missing rounds by range, without a snapshot.
    CatchUp,
    /// Catch-up failed `retry_attempts` times in a row, or nobody answered
    /// for the genesis or a manifest: waiting `catch_up_backoff_ms` before
    /// trying again.
    Backoff,
    /// A one-shot sync gave up; the reason is in the last
    /// `Event::SyncFailed`. A daemon never gets here.
    Failed,
}

impl SyncPhase {
    /// The allowed next phases.
    pub fn successors(self) -> &'static [SyncPhase] {
        use SyncPhase::*;
        match self {
            // A bootstrap (or a restart without peers) is live at once.
            Idle => &[Connecting, Live],
            Connecting => &[Handshake],
            // Backoff (a daemon) or Failed (a one-shot sync): the genesis
            // could not be fetched.
            Handshake => &[Discovery, CatchUp, Live, Backoff, Failed],
            // CatchUp: no useful snapshot for a node with state of its own;
            // Backoff or Failed: no peer answered for a manifest.
            Discovery => &[SnapshotFetch, CatchUp, Backoff, Failed],
            // Discovery: every source left.
            SnapshotFetch => &[SnapshotApply, Discovery],
            SnapshotApply => &[Replay],
            Replay => &[Live, CatchUp],
            // Discovery: far behind, a snapshot is faster.
            CatchUp => &[Live, Discovery, Backoff],
            Live => &[CatchUp, Discovery],
            // Handshake: to ask for the genesis again.
            Backoff => &[CatchUp, Handshake],
            Failed => &[],
        }
    }

    /// Whether `self → next` is allowed.
    pub fn can_become(self, next: SyncPhase) -> bool {
        self.successors().contains(&next)
    }

    /// Lower-case name for logs, metrics and the API.
    pub fn name(self) -> &'static str {
        use SyncPhase::*;
        match self {
            Idle => "idle",
            Connecting => "connecting",
            Handshake => "handshake",
            Discovery => "discovery",
            SnapshotFetch => "snapshot_fetch",
            SnapshotApply => "snapshot_apply",
            Replay => "replay",
            Live => "live",
            CatchUp => "catch_up",
            Backoff => "backoff",
            Failed => "failed",
        }
    }

    /// Every edge of the table, `(from, to)`.
    pub fn edges() -> impl Iterator<Item = (SyncPhase, SyncPhase)> {
        SyncPhase::ALL
            .into_iter()
            .flat_map(|from| from.successors().iter().map(move |to| (from, *to)))
    }

    /// Every phase, in declaration order (for metrics).
    pub const ALL: [SyncPhase; 11] = [
        SyncPhase::Idle,
        SyncPhase::Connecting,
        SyncPhase::Handshake,
        SyncPhase::Discovery,
        SyncPhase::SnapshotFetch,
        SyncPhase::SnapshotApply,
        SyncPhase::Replay,
        SyncPhase::Live,
        SyncPhase::CatchUp,
        SyncPhase::Backoff,
        SyncPhase::Failed,
    ];
}

impl fmt::Display for SyncPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_is_terminal_and_every_phase_can_leave_idle_or_reach_live_or_failed() {
        assert!(SyncPhase::Failed.successors().is_empty());
        assert!(SyncPhase::Idle.can_become(SyncPhase::Live));
        assert!(!SyncPhase::Live.can_become(SyncPhase::Idle));
        for p in SyncPhase::ALL {
            assert!(!p.can_become(p), "{p} must not loop to itself");
        }
    }
}
