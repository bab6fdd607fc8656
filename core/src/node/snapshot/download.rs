//! The snapshot download: chunks from every peer that offered the attested
//! root, scheduled by how well each peer serves.
//!
//! Each source has a request window sized to its measured bandwidth-delay
//! product (`PeerStats::window`: at most `peer_download_window`, halved per
//! recent timeout); a free slot goes to the least loaded source, ties to the
//! better ranked one (fewer strikes, higher goodput, lower RTT). Because a
//! slot frees when its answer lands, a fast peer is asked again sooner and
//! carries more of the download; a slow one loses weight but is never
//! banned for slowness. A timed-out chunk goes back to the queue for the
//! next free slot. The last ~5% of the chunks are hedged with a second
//! source. Every verified chunk is staged together with the download
//! record, so a restart resumes without fetching it again.

use super::delta::{held_pages, ChunkPayload};
pub(in crate::node) use super::schedule::{Slots, Step};
use super::stage::StageWhen;
use super::staging::keep_verified_chunks;
pub(in crate::node) use super::staging::DownloadRecord;
use crate::buffer::VertexBuffer;
use crate::ids::{Hash, PeerId, Round, Timestamp};
use crate::interface::{Action, Event};
use crate::node::fetch::RequestKind;
use crate::node::state::{Discovery, SyncState};
use crate::node::Node;
use crate::snapshot::check::{ChunkCheck, VerifiedChunk};
use crate::snapshot::Manifest;
use crate::store::{MetaKey, Store, StoreError, WriteBatch};
use crate::vertex::Vertex;
use crate::wire::RequestId;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// A snapshot download in progress.
#[derive(Debug)]
pub(in crate::node) struct Download {
    pub(in crate::node) root: Hash,
    pub(in crate::node) manifest: Arc<Manifest>,
    /// Peers that offered this root.
    pub(in crate::node) sources: Vec<PeerId>,
    /// Chunks not requested yet.
    pub(in crate::node) todo: BTreeSet<u32>,
    pub(in crate::node) done: BTreeSet<u32>,
    pub(in crate::node) bytes_done: u64,
    pub(in crate::node) frontier_missing: BTreeSet<Hash>,
    pub(in crate::node) frontier: BTreeMap<Hash, Vertex>,
    /// Requests for frontier vertices made: each goes to the next source,
    /// so one that answers with other vertices cannot hold the join up.
    pub(in crate::node) frontier_asks: usize,
    pub(in crate::node) started: Timestamp,
    /// When progress was last reported (the first chunk always is).
    pub(in crate::node) last_report: Option<Timestamp>,
    /// Chunks staged since the last durable write (see `report_progress`).
    pub(in crate::node) staged_since_sync: usize,
    /// Chunks verified before this download began.
    pub(in crate::node) kept: usize,
    /// Chunks whose answer is being checked (`Action::CheckChunk`).
    pub(in crate::node) checking: BTreeSet<u32>,
    /// Chunks checked and not staged yet, staged together in index order
    /// (`stage.rs`).
    pub(in crate::node) verified: Vec<(u32, Arc<VerifiedChunk>)>,
    /// Their raw bytes.
    pub(in crate::node) verified_bytes: u64,
    /// Chunks in the staging job out (`Action::StageChunks`), if any.
    pub(in crate::node) staging: Vec<u32>,
    /// No chunk below this index is waiting to be staged: where the search
    /// for the ordered run starts (`stage.rs`).
    pub(in crate::node) settled_below: u32,
    /// Chunks already asked of a second source.
    pub(in crate::node) hedged: BTreeSet<u32>,
    /// Peers asked whether they serve this snapshot.
    pub(in crate::node) asked: BTreeSet<PeerId>,
    /// Gossip held for the replay.
    pub(in crate::node) buffer: VertexBuffer,
}

impl Download {
    /// Whether an answer for chunk `index` of `round` is still wanted: of
    /// this snapshot, and not verified yet (a hedged chunk's second answer
    /// is not staged or counted again).
    pub(in crate::node) fn wants(&self, round: Round, index: u32) -> bool {
        round == self.manifest.round && !self.answered(index)
    }

    /// Whether chunk `index` has an answer: being checked, verified and
    /// waiting to be staged, being staged, or done. Such a chunk is never
    /// queued again, whatever happens to its other requests.
    pub(in crate::node) fn answered(&self, index: u32) -> bool {
        self.done.contains(&index)
            || self.checking.contains(&index)
            || self.staging.contains(&index)
            || self.verified.iter().any(|(i, _)| *i == index)
    }

    /// Whether every chunk is verified: staged, being staged, or waiting
    /// to be.
    pub(in crate::node) fn all_in(&self) -> bool {
        self.done.len() + self.staging.len() + self.verified.len() == self.manifest.chunks.len()
    }

    /// What a restart (or the next download) needs of this one: the
    /// attested manifest and the chunks verified and staged.
    pub(in crate::node) fn record(&self) -> DownloadRecord {
        DownloadRecord {
            root: self.root,
            manifest: (*self.manifest).clone(),
            done: self.done.iter().copied().collect(),
        }
    }

    /// Whether every chunk and every frontier vertex is in.
    pub(super) fn is_complete(&self) -> bool {
        self.todo.is_empty()
            && self.frontier_missing.is_empty()
            && self.done.len() == self.manifest.chunks.len()
    }

    /// The verified snapshot, once the download is complete; the download
    /// back otherwise.
    pub(in crate::node) fn finish(self: Box<Self>) -> Result<VerifiedSnapshot, Box<Self>> {
        if !self.is_complete() {
            return Err(self);
        }
        let d = *self;
        Ok(VerifiedSnapshot {
            root: d.root,
            manifest: d.manifest,
            frontier: d.frontier,
            buffer: d.buffer,
        })
    }
}

/// The proof that a snapshot download completed: every chunk verified
/// against the attested manifest and staged, every frontier vertex checked
/// against it. Only [`Download::finish`] makes one (its fields are private
/// to this file), and applying a snapshot takes one.
#[derive(Debug)]
#[must_use = "a verified snapshot is to be applied"]
pub(in crate::node) struct VerifiedSnapshot {
    root: Hash,
    manifest: Arc<Manifest>,
    frontier: BTreeMap<Hash, Vertex>,
    buffer: VertexBuffer,
}

impl VerifiedSnapshot {
    /// The attested root.
    pub(in crate::node) fn root(&self) -> Hash {
        self.root
    }

    /// The manifest.
    pub(in crate::node) fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The committed frontier vertices, checked against the manifest.
    pub(in crate::node) fn frontier(&self) -> &BTreeMap<Hash, Vertex> {
        &self.frontier
    }

    /// Takes the gossip buffered during the sync, for the replay.
    pub(in crate::node) fn into_buffer(self) -> VertexBuffer {
        self.buffer
    }
}

impl<S: Store> Node<S> {
    pub(in crate::node) fn start_download(
        &mut self,
        now: Timestamp,
        root: Hash,
        manifest: Arc<Manifest>,
        sources: Vec<PeerId>,
        buffer: VertexBuffer,
    ) -> Result<(), StoreError> {
        // Verified work is never thrown away: an interrupted download of
        // the same root continues, and one of another snapshot (its source
        // pruned it, or the node restarted and only a newer one is offered)
        // hands over every staged chunk the new manifest lists too.
        let previous = self.joined.resume.take();
        self.joined.resume_unserved = false;
        let mut batch = WriteBatch::new(false);
        let (done, from_round) = match previous {
            Some(r) if self.store.resume_staging()? => {
                let from = r.manifest.round;
                (keep_verified_chunks(r, root, &manifest, &mut batch), from)
            }
            _ => {
                self.store.begin_staging()?;
                (BTreeSet::new(), manifest.round)
            }
        };
        let total = manifest.chunks.len() as u32;
        let bytes_done: u64 = done
            .iter()
            .filter_map(|i| manifest.chunks.get(*i as usize))
            .map(|c| u64::from(c.raw_len))
            .sum();
        self.emit(Event::SnapshotSyncStarted {
            round: manifest.round,
            root,
            chunks: total as usize,
            raw_bytes: manifest.raw_bytes,
            peers: sources.len(),
        });
        // A move is reported even when no chunk survived it whole: the
        // records staged stay, as delta bases.
        if !done.is_empty() || from_round != manifest.round {
            self.emit(Event::SnapshotResumed {
                from_round,
                round: manifest.round,
                chunks_done: done.len(),
                chunks_total: total as usize,
            });
        }
        let download = Download {
            root,
            frontier_missing: manifest
                .frontier
                .committed
                .iter()
                .map(|(_, h)| *h)
                .collect(),
            todo: (0..total).filter(|i| !done.contains(i)).collect(),
            manifest,
            sources,
            kept: done.len(),
            staged_since_sync: 0,
            done,
            bytes_done,
            frontier: BTreeMap::new(),
            frontier_asks: 0,
            started: now,
            last_report: None,
            checking: BTreeSet::new(),
            verified: Vec::new(),
            verified_bytes: 0,
            staging: Vec::new(),
            settled_below: 0,
            hedged: BTreeSet::new(),
            asked: BTreeSet::new(),
            buffer,
        };
        batch.put_meta(MetaKey::SnapshotDownload, &download.record());
        self.write(batch)?;
        self.become_(SyncState::Fetch(Box::new(download)));
        self.top_up_download(now)
    }

    /// Keeps `parallel_download_limit` chunk requests in flight, asks for
    /// missing frontier vertices, and applies once everything is in.
    pub(in crate::node) fn top_up_download(&mut self, now: Timestamp) -> Result<(), StoreError> {
        let window = self.config.sync.peer_download_window;
        let SyncState::Fetch(d) = &self.sync else {
            return Ok(());
        };
        // What a chunk answer weighs on the link: the compressed size seen so
        // far (goodput counts compressed bytes), the raw mean before any.
        // Postmortem (issue 10): the raw mean against compressed goodput
        // sized every window a quarter too small.
        let chunk_bytes = match self.joined.chunk_answers {
            0 => d.manifest.raw_bytes / d.manifest.chunks.len().max(1) as u64,
            n => self.joined.chunk_answer_bytes / n,
        };
        let backlog =
            !d.staging.is_empty() && d.verified_bytes >= self.config.sync.stage_batch_bytes;
        let slots = Slots {
            standing: self
                .peers
                .ready()
                .map(|p| {
                    let (strikes, goodput, rtt) = p.stats.rank();
                    let member = p.key.as_ref().is_some_and(|k| self.is_known_validator(k));
                    let rank = (strikes, member, goodput, rtt);
                    let standing = (rank, p.stats.window(window, chunk_bytes));
                    (p.id, standing)
                })
                .collect(),
            chunks_in_flight: self
                .requests
                .in_flight
                .values()
                .filter_map(|r| match r.kind {
                    RequestKind::Chunk { index, .. } => Some((index, r.peer)),
                    _ => None,
                })
                .collect(),
            chunks_checking: d.checking.len(),
            asking_vertices: self
                .requests
                .in_flight
                .values()
                .any(|r| matches!(r.kind, RequestKind::Vertices { .. })),
            // Verified chunks pile up behind a staging job: the disk is
            // the bottleneck, ask for nothing more until it catches up.
            parallel_download_limit: match backlog {
                true => 0,
                false => self.config.sync.parallel_download_limit,
            },
            max_sync_peers: self.config.sync.max_sync_peers,
            max_fetch_hashes: self.config.max_fetch_hashes,
        };
        let SyncState::Fetch(d) = &mut self.sync else {
            return Ok(());
        };
        let (requests, complete) = match d.schedule(&slots) {
            Step::SourcesGone => {
                // Every source left: start over with whoever is connected,
                // keeping the gossip buffered so far and the verified
                // chunks (the next download keeps those it lists too).
                // A staging job still out would write after the next
                // download cleared around what it keeps: wait for it.
                self.stage_verified(StageWhen::Leaving)?;
                let SyncState::Fetch(d) = &mut self.sync else {
                    return Ok(());
                };
                if !d.staging.is_empty() {
                    return Ok(());
                }
                let buffer = std::mem::take(&mut d.buffer);
                self.joined.resume = Some(d.record());
                self.become_(SyncState::Discovery(Discovery::new(now, buffer)));
                return Ok(());
            }
            Step::Requests { requests, complete } => (requests, complete),
        };
        for (peer, kind) in requests {
            self.request(now, peer, kind);
        }
        if !complete {
            return Ok(());
        }
        let SyncState::Fetch(d) = self.become_(SyncState::Apply) else {
            return Ok(());
        };
        self.emit(Event::SnapshotDownloaded {
            round: d.manifest.round,
            chunks_total: d.manifest.chunks.len(),
            chunks_kept: d.kept,
            chunks_rebuilt: self.joined.chunks_rebuilt,
            chunk_answers: self.joined.chunk_answers,
            chunks_staged: self.joined.chunks_staged,
            compressed_bytes: self.joined.chunk_answer_bytes,
            elapsed_ms: now.ms_since(d.started),
        });
        match d.finish() {
            Ok(verified) => self.apply_snapshot(now, verified),
            Err(_) => unreachable!("a complete download finishes"),
        }
    }

    /// A chunk request timed out: back to the queue, for whichever source
    /// has a free slot next (the slow peer already lost a strike).
    pub(in crate::node) fn chunk_timed_out(&mut self, index: u32) {
        match &mut self.sync {
            SyncState::Probe(_) => self.probe_answered(),
            SyncState::Fetch(d) if !d.answered(index) => {
                d.todo.insert(index);
                d.hedged.remove(&index);
            }
            _ => {}
        }
    }

    /// A chunk answer, whole or as a delta: verify it against the manifest
    /// before staging it over its territory.
    pub(in crate::node) fn on_chunk(
        &mut self,
        now: Timestamp,
        peer: PeerId,
        request: RequestId,
        round: Round,
        index: u32,
        payload: ChunkPayload,
    ) -> Result<(), StoreError> {
        let answer_bytes = match &payload {
            ChunkPayload::Whole(b) | ChunkPayload::Delta(b) => b.len() as u64,
        };
        let Some(req) = self.take_request(now, peer, request, answer_bytes) else {
            return Ok(());
        };
        if matches!(self.sync, SyncState::Probe(_)) {
            if let ChunkPayload::Whole(bytes) = &payload {
                self.on_probe_chunk(now, peer, index, bytes);
            }
            return Ok(());
        }
        self.joined.chunk_answers += 1;
        self.joined.chunk_answer_bytes += answer_bytes;
        let SyncState::Fetch(d) = &mut self.sync else {
            return Ok(());
        };
        let RequestKind::Chunk { round: r, index: i } = req.kind else {
            return Ok(());
        };
        if (r, i) != (round, index) {
            // Not the chunk asked for: the asked one goes back to the queue
            // (or nobody would ask for it again), and the sender, which
            // broke the protocol, is banned.
            if r == d.manifest.round && !d.answered(i) {
                d.todo.insert(i);
            }
            let reason = format!(
                "answered chunk {i} of round {r} with another chunk ({index} of round {round})"
            );
            self.ban_peer(now, peer, &reason);
            return self.top_up_download(now);
        }
        if !d.wants(round, index) {
            return Ok(()); // a hedged chunk's second answer, or a stale one
        }
        let info = d.manifest.chunks[index as usize].clone();
        let check = match payload {
            ChunkPayload::Whole(bytes) => ChunkCheck::whole(d.root, peer, info, bytes),
            ChunkPayload::Delta(bytes) => {
                // The pages a delta request was based on, read again: the
                // chunk's territory changes only when the chunk is staged,
                // so they are the ones its digests named (and nothing is
                // kept per request).
                let max_pages = self.config.sync.max_delta_pages;
                let held = held_pages(&self.store, &d.manifest, index, max_pages)?;
                ChunkCheck::delta(d.root, peer, info, bytes, held)
            }
        };
        // Checked off the event loop (`snapshot::check`); the result comes
        // back as `Input::ChunkChecked`, handled in `stage.rs`.
        d.checking.insert(index);
        self.push(Action::CheckChunk(check));
        self.clock.last_progress_at = now;
        self.top_up_download(now)
    }

    /// A source answered that it no longer has a chunk (it pruned the
    /// snapshot): ask the others; with no source left, discovery restarts.
    pub(in crate::node) fn chunk_unavailable(&mut self, peer: PeerId, index: u32) {
        match &mut self.sync {
            SyncState::Probe(_) => self.probe_answered(),
            SyncState::Fetch(d) => {
                crate::cov::mark("source_pruned_the_snapshot");
                d.sources.retain(|p| *p != peer);
                if !d.answered(index) {
                    d.todo.insert(index);
                }
            }
            _ => {}
        }
    }

    /// Whether the download reports its progress now: the first chunk,
    /// `progress_report_interval_ms` after the last report, or the end.
    fn progress_due(&self, now: Timestamp) -> bool {
        let SyncState::Fetch(d) = &self.sync else {
            return false;
        };
        d.all_in()
            || d.last_report
                .is_none_or(|t| now.ms_since(t) >= self.config.sync.progress_report_interval_ms)
    }

    /// Reports the download's progress when due. Staged chunks become
    /// durable first (an empty durable batch syncs what came before), so
    /// what the log says is verified survives a power cut — one sync per
    /// report, about once a second, not one per chunk. Postmortem (issue
    /// 10, found by the `slow-links` simulation): no staging write was ever
    /// durable, and a joiner killed after verifying 8 of 12 chunks kept none.
    pub(in crate::node) fn report_progress(&mut self, now: Timestamp) -> Result<(), StoreError> {
        if !self.progress_due(now) {
            return Ok(());
        }
        self.stage_verified(StageWhen::Due)?;
        let SyncState::Fetch(d) = &mut self.sync else {
            return Ok(());
        };
        if std::mem::take(&mut d.staged_since_sync) > 0 {
            self.write(WriteBatch::new(true))?;
        }
        let SyncState::Fetch(d) = &mut self.sync else {
            return Ok(());
        };
        d.last_report = Some(now);
        let progress = crate::progress::Progress {
            done: d.bytes_done,
            total: d.manifest.raw_bytes,
            elapsed_ms: now.ms_since(d.started),
        };
        let event = Event::SnapshotProgress {
            chunks_done: d.done.len(),
            chunks_total: d.manifest.chunks.len(),
            bytes_done: d.bytes_done,
            bytes_total: d.manifest.raw_bytes,
            bytes_per_sec: progress.per_sec(),
            eta_ms: progress.eta_ms(),
        };
        self.emit(event);
        Ok(())
    }
}

#[cfg(test)]
#[path = "download_tests.rs"]
mod tests;
