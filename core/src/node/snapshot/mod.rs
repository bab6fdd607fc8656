//! The snapshot mini-protocol: discovery, trust, download, apply, replay.
//!
//! - **Messages**: `GetManifest { round }` → `Manifest { manifest,
//!   attestations }` or `NotAvailable`; `GetChunk { round, index }` →
//!   `Chunk { bytes }` or `NotAvailable`.
//! - **Requester side**: here (discovery, the trust check, apply),
//!   `download.rs` (chunk scheduling and verification; the only maker of a
//!   `VerifiedSnapshot`), `staging.rs` (the chunk check, the download
//!   record, the chunks kept across snapshots), `replay.rs` (the buffered gossip, then state
//!   verification), `plan.rs` (`sync-plan`: probes instead of a download).
//! - **Responder side**: `serve.rs` (builds, keeps and serves snapshots,
//!   attests their roots).
//! - **Tests**: `core/tests/snapshot_sync.rs` (joining, a corrupt chunk, a
//!   restart mid-download, the tail hedge, too few attestations),
//!   `core/tests/snapshots.rs` (serving), `core/tests/sync_traces.rs`,
//!   `core/tests/phase_edges.rs`.
//!
//! A fresh node in `SyncMode::Snapshot` asks its peers (up to
//! `max_sync_peers`) for their latest attested manifest. It accepts a root
//! only with attestations — vertices signed by validators of the set in force
//! at the snapshot round — from a quorum, never on one peer's word; a peer
//! whose manifest is malformed or whose attestation vertices do not verify is
//! dropped. It then downloads the chunks from every peer that offered the same
//! root, `parallel_download_limit` at a time, checking each against the
//! manifest before staging it: a bad chunk drops its sender at once and is
//! asked again elsewhere. The committed vertices of the frontier are fetched
//! by hash and checked against it too. When everything is in, the staged
//! state, the frontier and the consensus cursor become live in one atomic
//! step; then the gossip buffered since the first connection is replayed
//! through normal validation, and the usual machinery (missing parents by
//! hash, gaps by range) takes over.
//!
//! Attestations count only from the certified validator set of the
//! snapshot's epoch (`offers.rs`, `epochs.rs`): a joiner proves that set
//! from genesis or from its trusted checkpoint before it counts any.

pub(in crate::node) mod attestations;
mod delta;
pub(in crate::node) mod download;
mod offers;
pub(in crate::node) mod plan;
mod replay;
mod schedule;
pub(in crate::node) mod serve;
mod stage;
mod staging;

pub(in crate::node) use delta::ChunkPayload;

use crate::buffer::{Buffered, VertexBuffer};
use crate::consensus::Consensus;
use crate::ids::{Hash, PeerId, Timestamp};
use crate::interface::{Event, Limit};
use crate::node::fetch::RequestKind;
use crate::node::snapshot::download::VerifiedSnapshot;
use crate::node::state::{CatchingUp, Discovery, SyncState};
use crate::node::Node;
use crate::store::{MetaKey, Store, StoreError, WriteBatch, WriteOp};
use crate::vertex::Vertex;
use std::sync::Arc;

/// Discovery waits for answers from this many peers (or from every peer
/// that is connected or connecting, if fewer) before choosing, unless
/// `connection_timeout_ms` passes first: one peer's offer is a poor basis
/// for a choice (seed 003).
const MIN_DISCOVERY_PEERS: usize = 3;

/// How long discovery still waits for the other answers once
/// `MIN_DISCOVERY_PEERS` have answered with an attested offer: as long
/// again as those answers took, within these bounds. An honest peer on a
/// link like theirs answers in about as long; one that takes far longer is
/// far away or withholding, and either way the join goes on without it
/// (it is asked again once the download runs, as a newcomer). The upper
/// bound is far shorter than a request timeout.
pub(in crate::node) const STRAGGLER_GRACE_MAX_MS: u64 = 500;
pub(in crate::node) const STRAGGLER_GRACE_MIN_MS: u64 = 20;

/// After a snapshot sync found nothing useful, or after one was applied
/// (until the node is live), range catch-up only for this long before
/// snapshots are considered again.
const SNAPSHOT_RETRY_COOLDOWN_MS: u64 = 30_000;

impl<S: Store> Node<S> {
    /// Whether this node should join from a snapshot now.
    ///
    /// In `SyncMode::Snapshot`, a node with no state of its own; in
    /// `Snapshot` and `Auto`, one (fresh or not) that is more than
    /// `strategy_switch_threshold` rounds behind the network
    /// (replaying that many rounds would take longer than a download). Once
    /// started, a snapshot sync runs to its end (hysteresis: the node does
    /// not flap back to range catch-up when the gap briefly narrows); if no
    /// useful snapshot is on offer it gives up and the node catches up by
    /// range, not trying snapshots again before a cool-down.
    pub(in crate::node) fn wants_snapshot_sync(&self, now: Timestamp) -> bool {
        let Some(chain) = &self.chain else {
            return false;
        };
        let mode = self.config.sync.default_strategy;
        if !mode.uses_snapshots() {
            return false;
        }
        if self.sync.in_snapshot_sync() {
            return true;
        }
        // A node replaying a snapshot it just applied finishes that first.
        if matches!(self.sync, SyncState::Replay(_)) {
            return false;
        }
        let fresh =
            self.joined.applied.is_none() && chain.consensus.last_committed_round().is_none();
        let ours = chain.consensus.dag().highest_round().unwrap_or_default();
        let far_behind = self.trusted_best_round().is_some_and(|best| {
            best.0
                > ours
                    .0
                    .saturating_add(self.config.sync.strategy_switch_threshold)
        });
        let fresh = fresh && mode == crate::config::SyncMode::Snapshot;
        fresh || (far_behind && now >= self.joined.snapshot_cooldown_until)
    }

    /// The download under way, for the status API.
    pub(in crate::node) fn download_status(&self) -> Option<crate::node::DownloadStatus> {
        let SyncState::Fetch(d) = &self.sync else {
            return None;
        };
        Some(crate::node::DownloadStatus {
            round: d.manifest.round,
            chunks_done: d.done.len(),
            chunks_total: d.manifest.chunks.len(),
            bytes_done: d.bytes_done,
            bytes_total: d.manifest.raw_bytes,
            elapsed_ms: self.clock.last_progress_at.ms_since(d.started),
            peers: d.sources.len(),
        })
    }

    /// Whether gossip goes to the buffer rather than to consensus.
    pub(in crate::node) fn buffering(&self) -> bool {
        self.sync.in_snapshot_sync()
    }

    /// The discovery under way, if any.
    fn discovery_mut(&mut self) -> Option<&mut Discovery> {
        match &mut self.sync {
            SyncState::Discovery(d) => Some(d),
            _ => None,
        }
    }

    /// One step of a snapshot sync: enters discovery if none runs, asks
    /// ready peers not asked yet for their attested manifest, and once the
    /// answers are in (or the wait is over) chooses a snapshot to download
    /// (or to probe, with `plan_only`); a download under way is topped up.
    pub(in crate::node) fn drive_snapshot_sync(
        &mut self,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        if !self.sync.in_snapshot_sync() {
            // Authors of the set this node knows who, whoever they are,
            // weigh more than the faulty weight: a round that many hold was
            // reached by an honest validator.
            let support = self.chain.as_ref().map_or(1, |c| {
                let round = c.consensus.dag().highest_round().unwrap_or_default();
                c.consensus
                    .meta()
                    .schedule
                    .set_for_round(round)
                    .heads_for_honest_support()
            });
            let buffer = VertexBuffer::new(
                self.config.sync.buffer_max_bytes,
                self.config.sync.buffer_max_rounds,
            )
            .with_support(support);
            self.become_(SyncState::Discovery(Discovery::new(now, buffer)));
        }
        match &self.sync {
            SyncState::Fetch(_) => return self.top_up_download(now),
            SyncState::Discovery(_) => {}
            // A plan is being made, or made: nothing to drive.
            _ => return Ok(()),
        }
        // Discovery: ask every ready peer not asked yet.
        let asking = self
            .requests
            .in_flight
            .values()
            .any(|r| matches!(r.kind, RequestKind::Manifest { .. }));
        let max_sync_peers = self.config.sync.max_sync_peers;
        let Some(disc) = self.discovery_mut() else {
            return Ok(());
        };
        let asked = disc.asked.len();
        let fresh: Vec<PeerId> = self
            .peers
            .ready()
            .filter(|p| !self.discovery_asked(p.id))
            .map(|p| p.id)
            .take(max_sync_peers.saturating_sub(asked))
            .collect();
        // A node that was interrupted mid-download asks for the same
        // snapshot first, to resume it.
        let round = match &self.joined.resume {
            Some(r) if !self.joined.resume_unserved => Some(r.manifest.round),
            _ => None,
        };
        for peer in fresh {
            if let Some(disc) = self.discovery_mut() {
                disc.asked.insert(peer);
            }
            self.request(now, peer, RequestKind::Manifest { round });
        }
        let waiting_on = self
            .requests
            .peers_asked(|k| matches!(k, RequestKind::Manifest { .. }));
        let outstanding = waiting_on.len();
        let SyncState::Discovery(disc) = &self.sync else {
            return Ok(());
        };
        // Every answer is waited for only for a grace after
        // MIN_DISCOVERY_PEERS have answered (`Discovery::stragglers_until`):
        // a peer that withholds its answer must not hold the join up for
        // its whole request timeout.
        let answered = disc.asked.difference(&waiting_on).count();
        let enough = answered >= MIN_DISCOVERY_PEERS;
        if (asking || outstanding > 0) && !enough {
            return Ok(());
        }
        if outstanding > 0 {
            let until = match self.discovery_mut() {
                Some(d) => {
                    d.enough_at.get_or_insert(now);
                    d.stragglers_until().unwrap_or(now)
                }
                None => now,
            };
            if now < until {
                return Ok(());
            }
            crate::cov::mark("discovery_did_not_wait_for_a_straggler");
        }
        let SyncState::Discovery(disc) = &self.sync else {
            return Ok(());
        };
        if now < self.discovery_wait_until(disc) {
            return Ok(()); // more peers are still connecting
        }
        let resumable = self
            .joined
            .resume
            .as_ref()
            .and_then(|r| disc.offers.get_key_value(&r.root));
        let best = resumable
            .or_else(|| {
                disc.offers
                    .iter()
                    .max_by_key(|(root, (m, peers))| (m.round, peers.len(), **root))
            })
            .map(|(root, (m, peers))| {
                (*root, m.clone(), peers.iter().copied().collect::<Vec<_>>())
            });
        // A manifest that waits for its epoch's certificates is an offer
        // on its way: nothing on offer yet does not mean nothing ahead.
        // Postmortem (issue 14): a validator restarted 48 epochs behind
        // concluded at once that no snapshot was on offer and caught up by
        // range for 20 s. The certificates come in a few round trips; the
        // wait is bounded by a request timeout from the start.
        let certifying = !disc.uncertified.is_empty()
            && now < disc.since.plus_ms(self.config.sync.peer_timeout_ms);
        if best.is_none() && certifying {
            crate::cov::mark("discovery_waits_for_certificates");
            return Ok(());
        }
        match best {
            Some((root, manifest, sources)) if self.config.plan_only => {
                self.start_probe(now, root, manifest, sources);
                Ok(())
            }
            Some((root, manifest, sources)) => {
                let Some(disc) = self.discovery_mut() else {
                    return Ok(());
                };
                let buffer = std::mem::take(&mut disc.buffer);
                self.start_download(now, root, manifest, sources, buffer)
            }
            None if self.joined.resume.is_some() && !self.joined.resume_unserved => {
                // Nobody serves the interrupted snapshot any more: take a
                // newer one, keeping every verified chunk it lists too.
                crate::cov::mark("resumed_snapshot_no_longer_served");
                self.joined.resume_unserved = true;
                if let Some(disc) = self.discovery_mut() {
                    disc.asked.clear();
                }
                Ok(())
            }
            None if self
                .chain
                .as_ref()
                .is_some_and(|c| c.consensus.last_committed_round().is_some()) =>
            {
                // A node with state of its own found no snapshot ahead of
                // it: catch up by range, and do not try again for a while.
                self.joined.snapshot_cooldown_until = now.plus_ms(SNAPSHOT_RETRY_COOLDOWN_MS);
                self.become_catch_up();
                Ok(())
            }
            None => {
                // Nobody had an attested snapshot yet (attestations trail a
                // build by a round): ask everyone again later.
                if now
                    >= self
                        .clock
                        .last_progress_at
                        .plus_ms(self.config.stall_timeout_ms)
                {
                    self.clock.last_progress_at = now;
                    if let Some(disc) = self.discovery_mut() {
                        disc.asked.clear();
                        disc.enough_at = None;
                    }
                }
                Ok(())
            }
        }
    }

    /// Whether discovery already asked `peer`.
    fn discovery_asked(&self, peer: PeerId) -> bool {
        matches!(&self.sync, SyncState::Discovery(d) if d.asked.contains(&peer))
    }

    /// Until when discovery waits for more peers to answer before it
    /// chooses: while fewer than `MIN_DISCOVERY_PEERS` were asked and more
    /// connections are on their way (handshakes, dials), until
    /// `connection_timeout_ms` after it began; otherwise not at all. Once
    /// every connected peer has answered and nobody else is coming, waiting
    /// would buy nothing. Postmortem (issue 10): counting known addresses
    /// instead, a peer reached through a relay or NAT (dialed under one
    /// address, advertising another) looked like two peers, and every such
    /// joiner waited the full 5 s for the second one.
    pub(in crate::node) fn discovery_wait_until(&self, disc: &Discovery) -> Timestamp {
        let reachable = self.peers.ready().count() + self.peers.connecting();
        let wanted = reachable
            .min(MIN_DISCOVERY_PEERS)
            .min(self.config.sync.max_sync_peers);
        if disc.asked.len() < wanted {
            disc.since.plus_ms(self.config.sync.connection_timeout_ms)
        } else {
            disc.since
        }
    }

    /// A vertex that arrived while syncing from a snapshot: a frontier
    /// vertex we asked for, or gossip to buffer for the replay.
    pub(in crate::node) fn hold_vertex(&mut self, v: Vertex, hash: Hash) {
        if let SyncState::Fetch(d) = &mut self.sync {
            if d.frontier_missing.remove(&hash) {
                d.frontier.insert(hash, v);
                return;
            }
        }
        // Only members' vertices are held: anyone can sign a vertex, and
        // one at a far round would push the real ones out. The members are
        // those of the set this node knows, or of the snapshot it
        // downloads (the set may have grown since genesis).
        let author = v.author();
        let in_download = match &self.sync {
            SyncState::Fetch(d) => {
                let schedule = &d.manifest.frontier.meta.schedule;
                schedule.counts_at(&author, schedule.epoch_of(d.manifest.round))
            }
            _ => false,
        };
        if !in_download && !self.is_known_validator(&author) {
            crate::cov::mark("buffered_vertex_of_a_non_member_dropped");
            return;
        }
        // Planning keeps no buffer: a planning node never replays.
        let Some(buffer) = self.sync.buffer_mut() else {
            return;
        };
        let evicted = buffer.evicted;
        let v = Arc::new(v);
        let added = buffer.add(v.clone(), hash);
        let overflowed = buffer.evicted > evicted;
        if let Buffered::Equivocation { first } = added {
            if let Some(first) = buffer.get(v.round(), &first).cloned() {
                self.found_equivocation(&first, &v);
            }
        }
        if overflowed {
            self.emit(Event::LimitHit {
                limit: Limit::Buffer,
            });
        }
    }

    /// Everything is verified: make it live atomically, then replay.
    pub(in crate::node) fn apply_snapshot(
        &mut self,
        now: Timestamp,
        verified: VerifiedSnapshot,
    ) -> Result<(), StoreError> {
        let manifest = verified.manifest();
        let round = manifest.round;
        let root = verified.root();
        let mut batch = WriteBatch::new(true);
        batch.put_meta(MetaKey::Consensus, &manifest.frontier.meta);
        batch.push(WriteOp::DeleteMeta(MetaKey::SnapshotDownload));
        // The snapshot is the state now: genesis objects not written yet
        // never will be.
        batch.push(WriteOp::DeleteMeta(MetaKey::GenesisStateDeferred));
        for (hash, v) in verified.frontier() {
            batch.push(WriteOp::PutVertex {
                hash: *hash,
                vertex: Arc::new(v.clone()),
            });
            batch.push(WriteOp::MarkCommitted {
                hash: *hash,
                anchor: round,
            });
        }
        self.store.adopt_staging(batch)?;
        let chain = self.chain.as_mut().expect("sync implies a chain");
        let params = chain.genesis.params.clone();
        let mut consensus = Consensus::new(
            manifest.frontier.meta.clone(),
            params.clone(),
            self.config.max_pending_vertices,
            self.config.max_rounds_ahead,
        );
        for (hash, v) in verified.frontier() {
            consensus.restore(Arc::new(v.clone()), *hash, Some(round));
        }
        consensus.prune_below(round.saturating_sub(params.gc_depth_rounds));
        chain.consensus = consensus;
        self.txs.in_dag.clear();
        self.producer.own_uncommitted.clear();
        self.requests.wanted.clear();
        // A node that re-synced verifies its new state again.
        self.joined.verified = None;
        let (objects, outcomes) = (manifest.object_count, manifest.outcome_count);
        self.joined.applied = Some(crate::node::AppliedSnapshot {
            round,
            root,
            objects,
            outcomes,
        });
        self.emit(Event::SnapshotApplied {
            round,
            root,
            objects,
            outcomes,
        });
        // The rounds produced while the download ran are closed by range
        // (for the cool-down, or until the node is live once): far cheaper
        // than the whole state again. Postmortem (issue 10,
        // found by the `slow-links` simulation): a download longer than
        // `strategy_switch_threshold` rounds left the joiner "far behind"
        // the moment it applied, so it took a newer snapshot, and another,
        // and was never live.
        self.joined.snapshot_cooldown_until = now.plus_ms(SNAPSHOT_RETRY_COOLDOWN_MS);
        self.joined.range_until_live = true;
        let from = self.highest_round().unwrap_or_default();
        self.become_(SyncState::Replay(CatchingUp { from }));
        self.replay_buffer(now, verified.into_buffer())
    }
}

/// What the certificate chain says of a manifest's validator set.
pub(super) enum Certified {
    /// Certified: these members attest.
    Set(std::sync::Arc<crate::validators::ValidatorSet>),
    /// The chain does not reach the snapshot's epoch yet.
    NotYet,
    /// Not the certified set: the sender lies.
    Refused(String),
}
