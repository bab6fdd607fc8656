//! Staging what the chunk checks verified.
//!
//! A chunk answer is checked off the event loop (`snapshot::check`); what
//! comes back verified waits here, in memory, and is staged with the
//! others in index order: one sorted run per kind, which a store may write
//! by bulk ingestion (fjall's, in the driver) instead of record by record.
//! A store that has a [`crate::store::ChunkStager`] stages off the event
//! loop too (`Action::StageChunks`, one job at a time); the others stage
//! inline, in one batch with the download record.
//!
//! Chunks are staged in index order where they can be: a batch is the run
//! of verified chunks that continues what is staged, once its raw bytes
//! reach `stage_batch_bytes`. Each batch is then a sorted run whose keys
//! all come after the last one's, which fjall moves into its tree without
//! rewriting it; batches that overlapped made it merge and rewrite what
//! was staged, again and again (10,000,000-object join: 84 batches took
//! 12 s). A progress report stages the run so far (what the log says is
//! verified is staged and durable). Everything verified is staged, in
//! whatever order, when the last chunk is in, when twice
//! `stage_batch_bytes` wait behind a chunk that is late, and before the
//! download is left for another. While a job is out and a batch waits
//! behind it, no new chunk is requested: memory stays bounded when the
//! disk is slower than the link. A chunk counts as done —
//! in the download record a restart trusts — only once it is staged; a
//! restart loses what was not, and fetches it again.

use super::download::Download;
use super::staging::territory;
use crate::ids::Timestamp;
use crate::interface::Action;
use crate::node::state::SyncState;
use crate::node::Node;
use crate::snapshot::check::{CheckedChunk, ChunksStaged, StageJob};
use crate::store::{ChunkToStage, MetaKey, Store, StoreError, WriteBatch, WriteOp};

/// What calls for staging.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::node) enum StageWhen {
    /// A chunk came in: stage a full batch, if one is ready.
    Full,
    /// A progress report is due: stage the ordered run, whatever its size.
    Due,
    /// The download is being left: stage everything.
    Leaving,
}

impl Download {
    /// The verified chunks (sorted) that continue what is staged, without
    /// a gap: how many, and their raw bytes.
    fn ordered_run(&mut self) -> (usize, u64) {
        let settled = |i: u32| self.done.contains(&i) || self.staging.contains(&i);
        // Chunks only become settled (a staging failure halts the node), so
        // the search resumes where it last stopped: linear over a download,
        // not quadratic.
        let mut next = (self.settled_below..)
            .find(|i| !settled(*i))
            .unwrap_or(u32::MAX);
        self.settled_below = next;
        let mut bytes = 0;
        for (n, (index, chunk)) in self.verified.iter().enumerate() {
            if *index != next {
                return (n, bytes);
            }
            bytes += chunk.raw_len() as u64;
            next = (index + 1..).find(|i| !settled(*i)).unwrap_or(u32::MAX);
        }
        (self.verified.len(), bytes)
    }
}

impl<S: Store> Node<S> {
    /// A chunk check finished: a corrupt answer bans its sender and the
    /// chunk is asked again; a verified one waits to be staged.
    pub(in crate::node) fn on_chunk_checked(
        &mut self,
        now: Timestamp,
        checked: CheckedChunk,
    ) -> Result<(), StoreError> {
        let SyncState::Fetch(d) = &mut self.sync else {
            return Ok(()); // the download ended meanwhile
        };
        let index = checked.index;
        // A check of another download (of another snapshot, or one left
        // and begun again) is stale: that download's state is gone.
        if checked.root != d.root || !d.checking.remove(&index) {
            return Ok(());
        }
        match checked.result {
            Err(why) => {
                d.todo.insert(index);
                let what = if checked.rebuilt {
                    "chunk delta"
                } else {
                    "chunk"
                };
                let reason = format!("served a corrupt {what} {index}: {why}");
                self.ban_peer(now, checked.peer, &reason);
            }
            Ok(chunk) => {
                self.joined.chunks_rebuilt += usize::from(checked.rebuilt);
                d.verified_bytes += chunk.raw_len() as u64;
                d.verified.push((index, chunk));
                self.stage_verified(StageWhen::Full)?;
                self.report_progress(now)?;
            }
        }
        self.top_up_download(now)
    }

    /// Stages what `when` calls for of the verified chunks held, unless a
    /// staging job is out (the next starts when it is back). Inline, the
    /// records and the download record that names them done share one
    /// batch.
    pub(in crate::node) fn stage_verified(&mut self, when: StageWhen) -> Result<(), StoreError> {
        let batch_bytes = self.config.sync.stage_batch_bytes;
        let SyncState::Fetch(d) = &mut self.sync else {
            return Ok(());
        };
        if d.verified.is_empty() || !d.staging.is_empty() {
            return Ok(());
        }
        // Index order is key order, kind by kind.
        d.verified.sort_by_key(|(index, _)| *index);
        let everything = when == StageWhen::Leaving
            || d.all_in()
            || d.verified_bytes >= batch_bytes.saturating_mul(2);
        let (count, bytes) = match everything {
            true => (d.verified.len(), d.verified_bytes),
            false => d.ordered_run(),
        };
        let ready = everything || bytes >= batch_bytes || (when == StageWhen::Due && count > 0);
        if !ready {
            return Ok(());
        }
        let verified: Vec<_> = d.verified.drain(..count).collect();
        d.verified_bytes -= bytes;
        let indices: Vec<u32> = verified.iter().map(|(i, _)| *i).collect();
        let chunks: Vec<ChunkToStage> = verified
            .into_iter()
            .map(|(index, chunk)| {
                let (first, last) = territory(&d.manifest, index);
                ChunkToStage { first, last, chunk }
            })
            .collect();
        if let Some(stager) = self.store.chunk_stager() {
            d.staging = indices;
            let job = StageJob::new(d.root, stager, chunks);
            self.push(Action::StageChunks(job));
            return Ok(());
        }
        let mut batch = WriteBatch::new(false);
        batch.ops = chunks.into_iter().map(WriteOp::StageChunk).collect();
        self.mark_staged(indices, batch)
    }

    /// A staging job is back: its chunks are done.
    pub(in crate::node) fn on_chunks_staged(
        &mut self,
        now: Timestamp,
        staged: ChunksStaged,
    ) -> Result<(), StoreError> {
        let SyncState::Fetch(d) = &mut self.sync else {
            return Ok(());
        };
        if staged.root != d.root || d.staging.is_empty() {
            return Ok(());
        }
        // A store that cannot stage cannot be trusted with the rest.
        staged.result.map_err(StoreError::Io)?;
        let indices = std::mem::take(&mut d.staging);
        self.mark_staged(indices, WriteBatch::new(false))?;
        self.stage_verified(StageWhen::Full)?;
        self.report_progress(now)?;
        self.top_up_download(now)
    }

    /// Counts `indices` done and writes the download record naming them,
    /// in `batch` (which stages them, inline).
    fn mark_staged(&mut self, indices: Vec<u32>, mut batch: WriteBatch) -> Result<(), StoreError> {
        let SyncState::Fetch(d) = &mut self.sync else {
            return Ok(());
        };
        for index in indices {
            d.bytes_done += u64::from(d.manifest.chunks[index as usize].raw_len);
            d.done.insert(index);
            d.staged_since_sync += 1;
            self.joined.chunks_staged += 1;
        }
        batch.put_meta(MetaKey::SnapshotDownload, &d.record());
        self.write(batch)
    }
}
