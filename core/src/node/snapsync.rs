//! Joining from a snapshot: discovery, trust, download, apply, replay.
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
//! Limit, for now: attestations are checked against the validator set this
//! node derives from its genesis. Registrations committed after genesis are
//! not yet provable to a joiner (DESIGN §6.5, next issue).

use super::download::Download;
use super::Node;
use crate::buffer::Buffered;
use crate::consensus::Consensus;
use crate::ids::{Hash, PeerId, PublicKey, Timestamp};
use crate::interface::{Event, Limit};
use crate::node::sync::RequestKind;
use crate::phase::SyncPhase;
use crate::snapshot::Manifest;
use crate::store::{MetaKey, Store, StoreError, WriteBatch, WriteOp};
use crate::vertex::Vertex;
use crate::wire::RequestId;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Discovery waits for answers from this many peers (or every known one,
/// if fewer) before choosing, unless `connection_timeout_ms` passes first:
/// one peer's offer is a poor basis for a choice (seed 003).
const MIN_DISCOVERY_PEERS: usize = 3;

/// After a snapshot sync found nothing useful, range catch-up only for this
/// long before snapshots are considered again.
const SNAPSHOT_RETRY_COOLDOWN_MS: u64 = 30_000;

/// Snapshot sync state.
#[derive(Debug, Default)]
pub(super) struct SnapSync {
    /// Attested offers by root, with the peers that made them.
    pub(super) offers: BTreeMap<Hash, (Arc<Manifest>, BTreeSet<PeerId>)>,
    /// Peers asked for a manifest (during the download: for the chosen
    /// one, to add them as sources).
    pub(super) asked: BTreeSet<PeerId>,
    pub(super) download: Option<Download>,
    /// When discovery began.
    pub(super) since: Timestamp,
}

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
    pub(super) fn wants_snapshot_sync(&self, now: Timestamp) -> bool {
        let Some(chain) = &self.chain else {
            return false;
        };
        let mode = self.config.sync.default_strategy;
        if !mode.uses_snapshots() {
            return false;
        }
        if self.snap.is_some() {
            return true;
        }
        let fresh = self.applied.is_none() && chain.consensus.last_committed_round().is_none();
        let ours = chain.consensus.dag().highest_round().unwrap_or_default();
        let far_behind = self.trusted_best_round().is_some_and(|best| {
            best.0
                > ours
                    .0
                    .saturating_add(self.config.sync.strategy_switch_threshold)
        });
        let fresh = fresh && mode == crate::config::SyncMode::Snapshot;
        fresh || (far_behind && now >= self.snapshot_cooldown_until)
    }

    /// The download under way, for the status API.
    pub(super) fn download_status(&self) -> Option<super::DownloadStatus> {
        let d = self.snap.as_ref()?.download.as_ref()?;
        Some(super::DownloadStatus {
            round: d.manifest.round,
            chunks_done: d.done.len(),
            chunks_total: d.manifest.chunks.len(),
            bytes_done: d.bytes_done,
            bytes_total: d.manifest.raw_bytes,
            elapsed_ms: self.last_progress_at.ms_since(d.started),
            peers: d.sources.len(),
        })
    }

    /// Whether gossip goes to the buffer rather than to consensus.
    pub(super) fn buffering(&self) -> bool {
        self.snap.is_some()
    }

    pub(super) fn drive_snapshot_sync(&mut self, now: Timestamp) -> Result<(), StoreError> {
        if self.snap.is_none() {
            self.snap = Some(SnapSync {
                since: now,
                ..SnapSync::default()
            });
            if self.phase.can_become(SyncPhase::Discovery) {
                self.set_phase(SyncPhase::Discovery);
            }
        }
        if self.snap.as_ref().is_some_and(|s| s.download.is_some()) {
            return self.top_up_download(now);
        }
        // Discovery: ask every ready peer not asked yet.
        let asking = self
            .requests
            .values()
            .any(|r| matches!(r.kind, RequestKind::Manifest { .. }));
        let snap = self.snap.as_ref().expect("set above");
        let fresh: Vec<PeerId> = self
            .peers
            .ready()
            .filter(|p| !snap.asked.contains(&p.id))
            .map(|p| p.id)
            .take(
                self.config
                    .sync
                    .max_sync_peers
                    .saturating_sub(snap.asked.len()),
            )
            .collect();
        // A node that was interrupted mid-download asks for the same
        // snapshot first, to resume it.
        let round = self.resume.as_ref().map(|r| r.manifest.round);
        for peer in fresh {
            self.snap.as_mut().expect("set above").asked.insert(peer);
            self.request(now, peer, RequestKind::Manifest { round });
        }
        if asking
            || self
                .requests
                .values()
                .any(|r| matches!(r.kind, RequestKind::Manifest { .. }))
        {
            return Ok(());
        }
        let snap = self.snap.as_ref().expect("set above");
        let known = self.peers.targets.len().max(self.peers.ready().count());
        let wanted = known
            .min(MIN_DISCOVERY_PEERS)
            .min(self.config.sync.max_sync_peers);
        if snap.asked.len() < wanted
            && now.ms_since(snap.since) < self.config.sync.connection_timeout_ms
        {
            return Ok(()); // more peers are still connecting
        }
        let offers = &self.snap.as_ref().expect("set above").offers;
        let resumable = self
            .resume
            .as_ref()
            .and_then(|r| offers.get_key_value(&r.root));
        let best = resumable
            .or_else(|| {
                offers
                    .iter()
                    .max_by_key(|(root, (m, peers))| (m.round, peers.len(), **root))
            })
            .map(|(root, (m, peers))| {
                (*root, m.clone(), peers.iter().copied().collect::<Vec<_>>())
            });
        match best {
            Some((root, manifest, sources)) if self.config.plan_only => {
                if !self.probing() && self.plan.is_none() {
                    self.start_probe(now, root, manifest, sources);
                }
                Ok(())
            }
            Some((root, manifest, sources)) => self.start_download(now, root, manifest, sources),
            None if self.resume.is_some() => {
                // Nobody serves the interrupted snapshot any more: forget it
                // and take a newer one.
                self.resume = None;
                let mut batch = WriteBatch::new(false);
                batch.push(WriteOp::DeleteMeta(MetaKey::SnapshotDownload));
                self.write(batch)?;
                if let Some(s) = self.snap.as_mut() {
                    s.asked.clear();
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
                self.snap = None;
                self.buffer.drain();
                self.snapshot_cooldown_until = now.plus_ms(SNAPSHOT_RETRY_COOLDOWN_MS);
                if self.phase.can_become(SyncPhase::CatchUp) {
                    self.set_phase(SyncPhase::CatchUp);
                }
                Ok(())
            }
            None => {
                // Nobody had an attested snapshot yet (attestations trail a
                // build by a round): ask everyone again later.
                if let Some(s) = self.snap.as_mut() {
                    if now.ms_since(self.last_progress_at) >= self.config.stall_timeout_ms {
                        s.asked.clear();
                        self.last_progress_at = now;
                    }
                }
                Ok(())
            }
        }
    }

    /// A manifest answer: check it and its attestations.
    pub(super) fn on_manifest(
        &mut self,
        now: Timestamp,
        peer: PeerId,
        request: RequestId,
        manifest: Manifest,
        attestations: Vec<Vertex>,
    ) -> Result<(), StoreError> {
        if self.take_request(now, peer, request, 0).is_none() || self.snap.is_none() {
            return Ok(());
        }
        let Some(chain) = &self.chain else {
            return Ok(());
        };
        if let Err(e) = manifest.check(&chain.chain_id) {
            self.ban_peer(now, peer, &format!("served a false manifest: {e}"));
            return Ok(());
        }
        let root = manifest.root();
        match self.attesters(&manifest, root, &attestations) {
            Err(fault) => self.ban_peer(now, peer, &format!("served a false attestation: {fault}")),
            Ok(attesters) => {
                let quorum = chain
                    .consensus
                    .meta()
                    .schedule
                    .set_for_round(manifest.round)
                    .quorum();
                // A snapshot at or behind our own commits would take us back.
                let useful = chain
                    .consensus
                    .last_committed_round()
                    .is_none_or(|ours| manifest.round > ours);
                if let Some(p) = self.peers.peers.get_mut(&peer) {
                    p.snapshot_round = p.snapshot_round.max(Some(manifest.round));
                }
                let snap = self.snap.as_mut().expect("checked");
                if let Some(d) = snap.download.as_mut().filter(|d| d.root == root) {
                    // A peer met during the download serves the same
                    // snapshot: one more source.
                    if !d.sources.contains(&peer) {
                        d.sources.push(peer);
                    }
                } else if attesters.len() >= quorum && useful && snap.download.is_none() {
                    let entry = snap
                        .offers
                        .entry(root)
                        .or_insert_with(|| (Arc::new(manifest), BTreeSet::new()));
                    entry.1.insert(peer);
                }
            }
        }
        self.last_progress_at = now;
        Ok(())
    }

    /// The distinct validators whose vertices attest `root` for the
    /// manifest's round. A vertex that does not verify is a fault.
    fn attesters(
        &self,
        manifest: &Manifest,
        root: Hash,
        attestations: &[Vertex],
    ) -> Result<BTreeSet<PublicKey>, String> {
        let chain = self.chain.as_ref().expect("sync implies a chain");
        let set = chain
            .consensus
            .meta()
            .schedule
            .set_for_round(manifest.round);
        let mut out = BTreeSet::new();
        for v in attestations
            .iter()
            .take(2 * chain.genesis.params.max_validators as usize)
        {
            v.verify(&chain.chain_id, &chain.genesis.params)
                .map_err(|e| e.to_string())?;
            let a = v
                .body
                .attestation
                .as_ref()
                .ok_or("vertex carries no attestation")?;
            if a.round != manifest.round || a.manifest_root != root {
                return Err("attestation names another snapshot".into());
            }
            if set.contains(&v.author()) {
                out.insert(v.author());
            }
        }
        Ok(out)
    }

    /// A vertex that arrived while syncing from a snapshot: a frontier
    /// vertex we asked for, or gossip to buffer for the replay.
    pub(super) fn hold_vertex(&mut self, v: Vertex, hash: Hash) {
        if let Some(d) = self.snap.as_mut().and_then(|s| s.download.as_mut()) {
            if d.frontier_missing.remove(&hash) {
                d.frontier.insert(hash, v);
                return;
            }
        }
        let evicted = self.buffer.evicted;
        if let Buffered::Equivocation { first } = self.buffer.add(Arc::new(v), hash) {
            self.record_evidence((first, hash));
        }
        if self.buffer.evicted > evicted {
            self.emit(Event::LimitHit {
                limit: Limit::Buffer,
            });
        }
    }

    /// Everything is verified: make it live atomically, then replay.
    pub(super) fn apply_snapshot(&mut self, now: Timestamp) -> Result<(), StoreError> {
        let Some(d) = self.snap.take().and_then(|s| s.download) else {
            return Ok(());
        };
        self.set_phase(SyncPhase::SnapshotApply);
        let manifest = d.manifest;
        let round = manifest.round;
        let mut batch = WriteBatch::new(true);
        batch.put_meta(MetaKey::Consensus, &manifest.frontier.meta);
        batch.push(WriteOp::DeleteMeta(MetaKey::SnapshotDownload));
        for (hash, v) in &d.frontier {
            batch.push(WriteOp::PutVertex {
                hash: *hash,
                vertex: v.clone(),
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
        for (hash, v) in d.frontier {
            consensus.restore(Arc::new(v), hash, Some(round));
        }
        consensus.prune_below(round.saturating_sub(params.gc_depth_rounds));
        chain.consensus = consensus;
        self.dag_txs.clear();
        self.own_uncommitted.clear();
        self.wanted.clear();
        // A node that re-synced verifies its new state again.
        self.verified = None;
        self.applied = Some(super::AppliedSnapshot {
            round,
            root: d.root,
            objects: manifest.object_count,
            outcomes: manifest.outcome_count,
        });
        self.emit(Event::SnapshotApplied {
            round,
            root: d.root,
            objects: manifest.object_count,
            outcomes: manifest.outcome_count,
        });
        self.set_phase(SyncPhase::Replay);
        self.replay_buffer(now)
    }

    /// Offers every buffered vertex, in round order, through normal
    /// validation; the commit rule decides what commits and when.
    fn replay_buffer(&mut self, now: Timestamp) -> Result<(), StoreError> {
        let buffered = self.buffer.drain();
        let rounds = buffered
            .first()
            .zip(buffered.last())
            .map(|(a, b)| (a.1.round(), b.1.round()));
        self.emit(Event::ReplayStarted {
            vertices: buffered.len(),
            from: rounds.map(|r| r.0),
            to: rounds.map(|r| r.1),
        });
        let before = self.chain.as_ref().map_or(0, |c| c.consensus.dag().len());
        let processed = buffered.len();
        for (hash, v) in buffered {
            self.offer_verified(
                now,
                None,
                Arc::try_unwrap(v).unwrap_or_else(|v| (*v).clone()),
                hash,
                crate::interface::VertexSource::Gossip,
            )?;
        }
        let after = self.chain.as_ref().map_or(0, |c| c.consensus.dag().len());
        self.emit(Event::ReplayFinished {
            processed,
            inserted: after.saturating_sub(before),
            current: self.highest_round(),
        });
        Ok(())
    }

    /// Once this node has built a snapshot after the one it applied, compare
    /// its root with what a quorum of validators attested for that round.
    pub(super) fn check_state_verification(&mut self) {
        let Some(applied) = self.applied.map(|a| a.round) else {
            return;
        };
        if self.verified.is_some() {
            return;
        }
        let Some(chain) = &self.chain else { return };
        for (round, served) in self.snapshots.iter().filter(|(r, _)| **r > applied) {
            let quorum = chain
                .consensus
                .meta()
                .schedule
                .set_for_round(*round)
                .quorum();
            let for_root = |root: &Hash| {
                self.attestations
                    .get(&(*round, *root))
                    .map_or(0, BTreeMap::len)
            };
            if for_root(&served.root) >= quorum {
                self.verified = Some((*round, true));
                self.emit(Event::StateVerified {
                    round: *round,
                    root: served.root,
                });
                return;
            }
            let other = self
                .attestations
                .iter()
                .find(|((r, root), who)| r == round && *root != served.root && who.len() >= quorum)
                .map(|((_, root), _)| *root);
            if let Some(attested) = other {
                self.verified = Some((*round, false));
                self.emit(Event::StateMismatch {
                    round: *round,
                    ours: served.root,
                    attested,
                });
                return;
            }
        }
    }
}
