//! The sync state: one value that says where the node is in joining or
//! following the network, and owns the data of that stage.
//!
//! The phase reported to the driver ([`SyncPhase`]) is derived from the
//! variant, so the two cannot drift apart, and every change goes through
//! [`Node::become_`], which asserts the edge against the transition table in
//! `phase.rs`. A stage's data lives in its variant and nowhere else: the
//! discovery offers and the gossip buffered meanwhile exist only while the
//! node discovers or downloads; a download's chunks only while it downloads.
//!
//! The one way into `Replay` from a snapshot is a
//! [`VerifiedSnapshot`](super::snapshot::download::VerifiedSnapshot), which only
//! `Download::finish` can make, and only once every chunk and every
//! frontier vertex has been checked against the attested manifest (the
//! rustls idea: the state that needs a check cannot be reached without the
//! value the check produces).

use super::snapshot::download::Download;
use super::snapshot::plan::{Probe, SyncPlan};
use super::Node;
use crate::buffer::VertexBuffer;
use crate::ids::{Hash, PeerId, Round, Timestamp};
use crate::interface::{Event, TimerKind};
use crate::phase::SyncPhase;
use crate::snapshot::Manifest;
use crate::store::Store;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Where the node is, with the data of that stage.
#[derive(Debug)]
pub(super) enum SyncState {
    /// Constructed, nothing started.
    Idle,
    /// Dialing the bootstrap peers.
    Connecting,
    /// A connection is up: proving keys, agreeing on the chain, fetching the
    /// genesis.
    Handshake,
    /// Asking peers for attested manifests.
    Discovery(Discovery),
    /// `plan_only`: the snapshot is chosen; one chunk per source measures it.
    Probe(Probe),
    /// `plan_only`: the plan is made; nothing more happens.
    Planned(Box<SyncPlan>),
    /// Downloading the chosen snapshot.
    Fetch(Box<Download>),
    /// A verified snapshot is being switched in (within one step).
    Apply,
    /// Replaying the frontier and the buffered gossip of a snapshot sync.
    Replay(CatchingUp),
    /// Fetching missing rounds by range.
    CatchUp(CatchingUp),
    /// Following the network.
    Live,
    /// Range fetches failed `retry_attempts` times in a row, or nobody
    /// answered for the genesis or a manifest: wait, then try again.
    Backoff(Backoff),
    /// Gave up; the reason was reported in `Event::SyncFailed`.
    Failed,
}

impl SyncState {
    /// The phase this state reports.
    pub(super) fn phase(&self) -> SyncPhase {
        match self {
            SyncState::Idle => SyncPhase::Idle,
            SyncState::Connecting => SyncPhase::Connecting,
            SyncState::Handshake => SyncPhase::Handshake,
            SyncState::Discovery(_) | SyncState::Probe(_) | SyncState::Planned(_) => {
                SyncPhase::Discovery
            }
            SyncState::Fetch(_) => SyncPhase::SnapshotFetch,
            SyncState::Apply => SyncPhase::SnapshotApply,
            SyncState::Replay(_) => SyncPhase::Replay,
            SyncState::CatchUp(_) => SyncPhase::CatchUp,
            SyncState::Live => SyncPhase::Live,
            SyncState::Backoff(_) => SyncPhase::Backoff,
            SyncState::Failed => SyncPhase::Failed,
        }
    }

    /// The gossip held back while a snapshot sync runs, if one does.
    pub(super) fn buffer(&self) -> Option<&VertexBuffer> {
        match self {
            SyncState::Discovery(d) => Some(&d.buffer),
            SyncState::Fetch(d) => Some(&d.buffer),
            _ => None,
        }
    }

    /// See [`SyncState::buffer`].
    pub(super) fn buffer_mut(&mut self) -> Option<&mut VertexBuffer> {
        match self {
            SyncState::Discovery(d) => Some(&mut d.buffer),
            SyncState::Fetch(d) => Some(&mut d.buffer),
            _ => None,
        }
    }

    /// Whether a snapshot sync (discovery, planning or download) runs.
    pub(super) fn in_snapshot_sync(&self) -> bool {
        matches!(
            self,
            SyncState::Discovery(_)
                | SyncState::Probe(_)
                | SyncState::Planned(_)
                | SyncState::Fetch(_)
        )
    }

    /// The round catch-up or replay started from, for progress.
    pub(super) fn catching_up_from(&self) -> Option<Round> {
        match self {
            SyncState::Replay(c) | SyncState::CatchUp(c) => Some(c.from),
            SyncState::Backoff(b) => Some(b.from),
            _ => None,
        }
    }
}

/// Snapshot discovery: attested offers collected so far.
#[derive(Debug)]
pub(super) struct Discovery {
    /// Attested offers by root, with the peers that made them.
    pub(super) offers: BTreeMap<Hash, (Arc<Manifest>, BTreeSet<PeerId>)>,
    /// Peers asked for a manifest.
    pub(super) asked: BTreeSet<PeerId>,
    /// When discovery began.
    pub(super) since: Timestamp,
    /// When enough peers had answered to choose (`MIN_DISCOVERY_PEERS`)
    /// while others had not yet.
    pub(super) enough_at: Option<Timestamp>,
    /// Gossip held for the replay.
    pub(super) buffer: VertexBuffer,
    /// Manifests (with their attestations) of an epoch the certificate
    /// chain does not reach yet: one per peer and at most `max_sync_peers`
    /// in all (the furthest round makes way for a nearer one), of at most
    /// `max_frame_bytes` each.
    pub(super) uncertified: BTreeMap<PeerId, (Manifest, Vec<crate::vertex::Vertex>)>,
}

impl Discovery {
    /// A discovery starting at `now`, keeping the gossip in `buffer`.
    pub(super) fn new(now: Timestamp, buffer: VertexBuffer) -> Self {
        Discovery {
            offers: BTreeMap::new(),
            asked: BTreeSet::new(),
            since: now,
            enough_at: None,
            buffer,
            uncertified: BTreeMap::new(),
        }
    }

    /// Until when the peers that have not answered yet are waited for:
    /// once enough have, for as long again as they took (within the
    /// `STRAGGLER_GRACE_*` bounds).
    pub(super) fn stragglers_until(&self) -> Option<Timestamp> {
        use super::snapshot::{STRAGGLER_GRACE_MAX_MS, STRAGGLER_GRACE_MIN_MS};
        let at = self.enough_at?;
        let took_ms = at.ms_since(self.since);
        Some(at.plus_ms(took_ms.clamp(STRAGGLER_GRACE_MIN_MS, STRAGGLER_GRACE_MAX_MS)))
    }
}

/// Catch-up or replay progress.
#[derive(Clone, Copy, Debug)]
pub(super) struct CatchingUp {
    /// Highest round held when it began.
    pub(super) from: Round,
}

/// Waiting before catching up again.
#[derive(Clone, Copy, Debug)]
pub(super) struct Backoff {
    /// When to try again.
    pub(super) until: Timestamp,
    /// Where catch-up began before the failures.
    pub(super) from: Round,
}

impl<S: Store> Node<S> {
    /// The only way to change the sync state; returns the state it
    /// replaced. The edge between the two phases must be in the transition
    /// table: a missing edge is a bug, and fails loudly in debug builds; a
    /// release build reports it and keeps the old state (returning `next`)
    /// rather than crash a running node. A change that keeps the phase
    /// (discovery to probe) emits nothing.
    pub(super) fn become_(&mut self, next: SyncState) -> SyncState {
        let from = self.sync.phase();
        let to = next.phase();
        if from == to {
            return std::mem::replace(&mut self.sync, next);
        }
        debug_assert!(
            from.can_become(to),
            "invalid phase transition {from} -> {to}"
        );
        if !from.can_become(to) {
            self.emit(Event::SyncFailed {
                reason: format!("internal error: invalid phase transition {from} -> {to}"),
            });
            return next;
        }
        let old = std::mem::replace(&mut self.sync, next);
        if to == SyncPhase::Live && std::mem::take(&mut self.joined.range_until_live) {
            // Live once after a snapshot: falling far behind again may
            // call for another at once (see `apply_snapshot`).
            self.joined.snapshot_cooldown_until = self.clock.last_now;
        }
        self.emit(Event::PhaseChanged { from, to });
        old
    }

    /// Enters catch-up by range, keeping the start of a catch-up (or
    /// replay) already under way.
    pub(super) fn become_catch_up(&mut self) {
        let from = self
            .sync
            .catching_up_from()
            .unwrap_or_else(|| self.highest_round().unwrap_or_default());
        self.become_(SyncState::CatchUp(CatchingUp { from }));
    }

    /// The times at which the sync state may change without an input.
    pub(super) fn sync_deadlines(&self) -> [Option<(Timestamp, TimerKind)>; 5] {
        let mut out = [None; 5];
        let Some(chain) = &self.chain else {
            // Backing off before asking for the genesis again.
            if let SyncState::Backoff(b) = &self.sync {
                out[3] = Some((b.until, TimerKind::Backoff));
            }
            // Waiting for the peers to agree on a chain: the wait ends
            // without an input (a dial may never report back).
            if let Some(since) = self.joined.genesis_wait_since {
                let until = since.plus_ms(self.config.sync.genesis_agreement_wait_ms);
                out[0] = Some((until, TimerKind::DiscoveryWait));
            }
            return out;
        };
        let stall = self
            .clock
            .last_progress_at
            .plus_ms(self.config.stall_timeout_ms);
        match &self.sync {
            SyncState::Discovery(disc) => {
                let wait = self.discovery_wait_until(disc);
                let stragglers = disc.stragglers_until();
                // Both must be over before discovery chooses.
                let wait = stragglers.map_or(wait, |s| s.max(wait));
                out[0] = Some((wait, TimerKind::DiscoveryWait));
                out[1] = Some((stall, TimerKind::Stall));
            }
            SyncState::Fetch(d) => {
                let interval = self.config.sync.progress_report_interval_ms;
                out[2] = d
                    .last_report
                    .map(|t| (t.plus_ms(interval), TimerKind::Progress));
            }
            SyncState::Backoff(b) => out[3] = Some((b.until, TimerKind::Backoff)),
            SyncState::Failed | SyncState::Idle | SyncState::Probe(_) | SyncState::Planned(_) => {}
            _ => out[1] = Some((stall, TimerKind::Stall)),
        }
        if self.config.sync.default_strategy.uses_snapshots()
            && chain.consensus.last_committed_round().is_some()
        {
            out[4] = Some((
                self.joined.snapshot_cooldown_until,
                TimerKind::SnapshotCooldown,
            ));
        }
        out
    }
}
