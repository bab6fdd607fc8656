//! Snapshots on the serving side: starting a build right after the commit
//! that calls for one, storing the chunks as they come, keeping snapshots
//! servable while they are downloaded, and attesting each new manifest root
//! in this node's next vertex.
//!
//! Retention: the newest `snapshots_kept` snapshots are always kept. An
//! older one stays servable while a download of it is in progress: every
//! request for it (manifest or chunk) renews a lease of `snapshot_lease_ms`.
//! Two bounds keep leases from pinning disk forever: none outlives
//! `snapshot_retention_max_ms` after the snapshot was built, and leased
//! snapshots beyond the newest `snapshots_kept` are dropped, oldest first,
//! while all kept snapshots together exceed `snapshot_disk_budget_bytes`
//! (their compressed chunks' bytes). Keeping
//! only the last two by count made a joiner on a slow link lose its source
//! every two snapshot intervals and start over (issue 10).

use crate::ids::{Hash, Round, Timestamp};
use crate::interface::{Action, Event};
use crate::node::state::SyncState;
use crate::node::Node;
use crate::snapshot::{Frontier, Manifest, SnapshotJob};
use crate::store::{Store, StoreError, WriteBatch, WriteOp};
use crate::vertex::Attestation;
use std::sync::Arc;

/// A servable snapshot.
#[derive(Clone, Debug)]
pub struct ServedSnapshot {
    /// Its manifest root.
    pub root: Hash,
    /// Its manifest.
    pub manifest: Arc<Manifest>,
    /// Bytes it takes on disk: its compressed chunks (its raw bytes, an
    /// upper bound, for a snapshot restored from disk).
    pub stored_bytes: u64,
    /// When it became servable (for a snapshot restored from disk: when the
    /// node started).
    pub built_at: Timestamp,
    /// Until when a download keeps it servable: the last request for it
    /// plus `snapshot_lease_ms`.
    pub leased_until: Timestamp,
}

impl ServedSnapshot {
    fn new(root: Hash, manifest: Manifest, stored_bytes: u64, now: Timestamp) -> Self {
        ServedSnapshot {
            root,
            manifest: Arc::new(manifest),
            stored_bytes,
            built_at: now,
            leased_until: now,
        }
    }
}

impl<S: Store> Node<S> {
    /// Loads the manifests kept in the store (restart).
    pub(in crate::node) fn restore_snapshots(&mut self) -> Result<(), StoreError> {
        for (round, bytes) in self.store.manifests()? {
            let manifest: Manifest = borsh::from_slice(&bytes)
                .map_err(|e| StoreError::Corrupt(format!("manifest of round {round}: {e}")))?;
            let now = self.clock.last_now;
            let raw = manifest.raw_bytes;
            let served = ServedSnapshot::new(manifest.root(), manifest, raw, now);
            self.serving.snapshots.insert(round, served);
        }
        Ok(())
    }

    /// Called right after the commit of the anchor of `round` is durable,
    /// when that anchor starts a snapshot.
    /// `cursor` is the consensus metadata as of that anchor.
    pub(in crate::node) fn start_snapshot(
        &mut self,
        cursor: crate::consensus::ConsensusMeta,
        window: Vec<(Round, Hash)>,
    ) -> Result<(), StoreError> {
        let round = cursor.last_anchor.map_or(Round(0), |(r, _)| r);
        // A node catching up far behind would build snapshots of rounds the
        // network left long ago, back to back, on the cores its replay
        // needs: with a million objects that halved a range join's rate
        // (issue 14). Nobody asks for them, and a validator attests only
        // what it builds once it produces again. It builds the first one
        // near the network's head.
        let interval = self
            .chain
            .as_ref()
            .map_or(0, |c| c.genesis.params.snapshot_interval_rounds);
        // Only while catching up: a live node's commits trail the head by a
        // few rounds, more when a slot stays undecided, and with a short
        // interval that must not make validators skip different snapshots.
        let catching_up = matches!(self.sync, SyncState::CatchUp(_) | SyncState::Backoff(_));
        let far_behind = catching_up
            && self
                .trusted_best_round()
                .is_some_and(|best| best.0 > round.0.saturating_add(interval.saturating_mul(2)));
        if far_behind {
            crate::cov::mark("snapshot_far_behind_the_network_skipped");
            return Ok(());
        }
        if let Some(busy) = self.serving.building {
            self.emit(Event::SnapshotFailed {
                round,
                error: format!("skipped: the snapshot of round {busy} is still being built"),
            });
            return Ok(());
        }
        let chain = self.chain.as_ref().expect("commits imply a chain");
        let job = SnapshotJob {
            round,
            chain_id: chain.chain_id,
            frontier: Frontier {
                meta: cursor,
                committed: window,
            },
            view: self.store.state_view()?,
        };
        self.serving.building = Some(round);
        self.serving.building_bytes = 0;
        self.push(Action::BuildSnapshot(job));
        Ok(())
    }

    pub(in crate::node) fn on_snapshot_chunk(
        &mut self,
        round: Round,
        index: u32,
        bytes: Vec<u8>,
    ) -> Result<(), StoreError> {
        if self.serving.building != Some(round) {
            return Ok(());
        }
        self.serving.building_bytes += bytes.len() as u64;
        let mut batch = WriteBatch::new(false);
        batch.push(WriteOp::PutSnapshotChunk {
            round,
            index,
            bytes: bytes.into(),
        });
        self.write(batch)
    }

    pub(in crate::node) fn on_snapshot_built(
        &mut self,
        now: Timestamp,
        manifest: Manifest,
    ) -> Result<(), StoreError> {
        let round = manifest.round;
        if self.serving.building != Some(round) {
            return Ok(());
        }
        self.serving.building = None;
        let root = manifest.root();
        // Durable together with the pruning of the snapshots no download
        // holds any more, so the store never holds more than retention says.
        let mut batch = WriteBatch::new(true);
        batch.push(WriteOp::PutManifest {
            round,
            bytes: borsh::to_vec(&manifest).expect("encoding into memory cannot fail"),
        });
        let compressed_bytes = self.serving.building_bytes;
        self.serving.snapshots.insert(
            round,
            ServedSnapshot::new(root, manifest, compressed_bytes, now),
        );
        for old in self.snapshots_to_prune(now) {
            self.serving.snapshots.remove(&old);
            batch.push(WriteOp::DeleteSnapshot(old));
        }
        self.write(batch)?;
        let m = &self.serving.snapshots[&round].manifest;
        self.emit(Event::SnapshotBuilt {
            round,
            root,
            chunks: m.chunks.len(),
            objects: m.object_count,
            raw_bytes: m.raw_bytes,
            compressed_bytes,
        });
        self.serving.pending_attestation = Some(Attestation {
            round,
            manifest_root: root,
        });
        self.check_state_verification();
        Ok(())
    }

    /// The snapshots retention lets go at `now`, oldest first: beyond the
    /// newest `snapshots_kept`, those whose lease ran out or that are older
    /// than `snapshot_retention_max_ms`, then, while the kept ones exceed
    /// the disk budget, the oldest leased ones.
    pub(in crate::node) fn snapshots_to_prune(&self, now: Timestamp) -> Vec<Round> {
        let kept = self.config.snapshots_kept.max(1);
        let older = self.serving.snapshots.len().saturating_sub(kept);
        let mut prune = Vec::new();
        let mut bytes: u64 = self
            .serving
            .snapshots
            .values()
            .map(|s| s.stored_bytes)
            .sum();
        for (round, s) in self.serving.snapshots.iter().take(older) {
            let expired = now >= s.leased_until
                || now.ms_since(s.built_at) >= self.config.snapshot_retention_max_ms;
            if expired || bytes > self.config.snapshot_disk_budget_bytes {
                crate::cov::mark(if expired {
                    "snapshot_lease_expired"
                } else {
                    "snapshot_disk_budget_exceeded"
                });
                bytes -= s.stored_bytes;
                prune.push(*round);
            }
        }
        prune
    }

    /// A download asked for the snapshot of `round`: keep it servable for
    /// another `snapshot_lease_ms`.
    fn renew_lease(&mut self, now: Timestamp, round: Round) {
        let lease_ms = self.config.snapshot_lease_ms;
        if let Some(s) = self.serving.snapshots.get_mut(&round) {
            s.leased_until = s.leased_until.max(now.plus_ms(lease_ms));
        }
    }

    pub(in crate::node) fn on_snapshot_failed(
        &mut self,
        round: Round,
        error: String,
    ) -> Result<(), StoreError> {
        if self.serving.building != Some(round) {
            return Ok(());
        }
        self.serving.building = None;
        let mut batch = WriteBatch::new(false);
        batch.push(WriteOp::DeleteSnapshot(round));
        self.write(batch)?;
        self.emit(Event::SnapshotFailed { round, error });
        Ok(())
    }

    /// Answers a manifest request from the snapshots kept.
    pub(in crate::node) fn serve_manifest(
        &mut self,
        now: Timestamp,
        peer: crate::ids::PeerId,
        request: crate::wire::RequestId,
        round: Option<Round>,
    ) {
        use crate::wire::Message;
        if let Some(r) = round {
            self.renew_lease(now, r);
        }
        let found = match round {
            Some(r) => self.serving.snapshots.get(&r),
            // The newest snapshot a quorum has attested, else the newest.
            None => self
                .serving
                .snapshots
                .values()
                .rev()
                .find(|s| self.attested_by_quorum(s))
                .or_else(|| self.serving.snapshots.values().next_back()),
        };
        let found = found.cloned();
        let msg = match found {
            Some(s) => Message::Manifest {
                request,
                attestations: self.attestation_vertices(s.manifest.round, s.root),
                manifest: Box::new((*s.manifest).clone()),
            },
            None => Message::NotAvailable {
                request,
                reason: "no such snapshot".into(),
            },
        };
        self.send(peer, crate::interface::Channel::Request, msg);
    }

    fn attested_by_quorum(&self, s: &ServedSnapshot) -> bool {
        let Some(chain) = &self.chain else {
            return false;
        };
        let set = chain
            .consensus
            .meta()
            .schedule
            .set_for_round(s.manifest.round);
        self.serving
            .attestations
            .get(s.manifest.round, s.root)
            .is_some_and(|who| set.is_quorum(who.keys()))
    }

    /// The vertices attesting `(round, root)` that this node still holds.
    fn attestation_vertices(&self, round: Round, root: Hash) -> Vec<crate::vertex::Vertex> {
        let Some(who) = self.serving.attestations.get(round, root) else {
            return Vec::new();
        };
        who.values()
            .filter_map(
                |h| match self.chain.as_ref().and_then(|c| c.consensus.dag().get(h)) {
                    Some(dv) => Some((*dv.vertex).clone()),
                    None => self
                        .store
                        .get_vertex(h)
                        .ok()
                        .flatten()
                        .map(|s| Arc::unwrap_or_clone(s.vertex)),
                },
            )
            .collect()
    }

    /// Answers a chunk request with the stored frame, unchanged.
    pub(in crate::node) fn serve_chunk(
        &mut self,
        now: Timestamp,
        peer: crate::ids::PeerId,
        request: crate::wire::RequestId,
        round: Round,
        index: u32,
    ) -> Result<(), StoreError> {
        self.answer_chunk(now, peer, request, round, index, None)
    }

    /// Answers a delta request (`snapshot::pages`): as a delta when the
    /// snapshot lists the chunk and the asker's digests are within
    /// `sync.max_delta_pages`, else like a whole-chunk request.
    pub(in crate::node) fn serve_chunk_delta(
        &mut self,
        now: Timestamp,
        peer: crate::ids::PeerId,
        request: crate::wire::RequestId,
        round: Round,
        index: u32,
        held: Vec<crate::snapshot::pages::PageDigest>,
    ) -> Result<(), StoreError> {
        let entry = self
            .serving
            .snapshots
            .get(&round)
            .and_then(|s| s.manifest.chunks.get(index as usize));
        let ask = match entry {
            Some(c) if held.len() <= self.config.sync.max_delta_pages => {
                Some(crate::interface::DeltaAsk {
                    kind: c.kind,
                    raw_len: c.raw_len,
                    held,
                })
            }
            _ => None,
        };
        self.answer_chunk(now, peer, request, round, index, ask)
    }

    fn answer_chunk(
        &mut self,
        now: Timestamp,
        peer: crate::ids::PeerId,
        request: crate::wire::RequestId,
        round: Round,
        index: u32,
        delta: Option<crate::interface::DeltaAsk>,
    ) -> Result<(), StoreError> {
        self.renew_lease(now, round);
        let servable = self.serving.snapshots.contains_key(&round);
        if let (true, Some(reader)) = (servable, self.store.chunk_reader()) {
            // The read (a megabyte or so), and a delta's paging, happen
            // off the event loop.
            self.push(crate::interface::Action::ServeChunk(
                crate::interface::ChunkAnswer {
                    peer,
                    request,
                    round,
                    index,
                    reader,
                    delta,
                },
            ));
            return Ok(());
        }
        let found = servable
            .then(|| self.store.snapshot_chunk(round, index))
            .transpose()?
            .flatten();
        let msg = match &delta {
            None => crate::chunk_answer::chunk_message(request, round, index, found),
            Some(ask) => crate::chunk_answer::delta_message(request, round, index, found, ask),
        };
        self.send(peer, crate::interface::Channel::Request, msg);
        Ok(())
    }

    /// The servable snapshots, oldest first.
    pub fn snapshots(&self) -> impl Iterator<Item = &ServedSnapshot> {
        self.serving.snapshots.values()
    }

    /// The latest servable snapshot's round.
    pub fn latest_snapshot_round(&self) -> Option<Round> {
        self.serving.snapshots.keys().next_back().copied()
    }
}
