//! Staging verified snapshot chunks by sorted bulk ingestion.
//!
//! A joiner's staging writes were most of its work: each record went
//! through fjall's journal and memtable, was flushed to a table later, and
//! had been decoded and encoded again on the way (issue 14). The node now
//! hands over verified chunks in index order (`WriteOp::StageChunk`), whose
//! records are in strictly increasing key order within and across chunks
//! of a kind. fjall's ingestion writes such a run straight into new tables:
//! no journal, no memtable, no flush, and the value bytes are the chunk's
//! own.
//!
//! Order of writes, so that a crash at any point leaves nothing the node
//! trusts wrongly: first the territories are cleared (one batch), then the
//! records are ingested (durable when ingestion returns, and newer than
//! the clearing), then the caller's other writes — the download record that
//! names the chunks done — are committed. A crash before that record lands
//! leaves staged records the node does not trust yet; it fetches those
//! chunks again and stages them over their territories.

use super::{io, FjallStore};
use bluepods_core::store::{ChunkStager, ChunkToStage, StoreError, WriteOp};
use bluepods_core::verified_chunk::{ChunkKind, VerifiedChunk};
use fjall::{Database, Keyspace, PersistMode};
use std::sync::Arc;

/// Stages into one staging area (the keyspaces of the next generation),
/// from any thread.
pub(super) struct FjallStager {
    db: Database,
    objects: Keyspace,
    outcomes: Keyspace,
}

impl FjallStore {
    /// A stager for the current staging area, if there is one.
    pub(super) fn stager(&self) -> Option<FjallStager> {
        let (objects, outcomes) = self.staging.clone()?;
        Some(FjallStager {
            db: self.db.clone(),
            objects,
            outcomes,
        })
    }

    /// Stages the `StageChunk` ops of a batch (a node staging inline); the
    /// other ops, to commit after them.
    pub(super) fn stage_chunks(&mut self, ops: Vec<WriteOp>) -> Result<Vec<WriteOp>, StoreError> {
        if !ops.iter().any(|op| matches!(op, WriteOp::StageChunk(_))) {
            return Ok(ops);
        }
        let (mut chunks, mut rest) = (Vec::new(), Vec::new());
        for op in ops {
            match op {
                WriteOp::StageChunk(c) => chunks.push(c),
                other => rest.push(other),
            }
        }
        let stager = self.stager().ok_or_else(super::no_staging)?;
        stager.stage(&chunks)?;
        Ok(rest)
    }
}

impl ChunkStager for FjallStager {
    fn stage(&self, chunks: &[ChunkToStage]) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        // Ingestion fsyncs its tables (and the cleared territories with
        // them) at once, while what the node wrote before — the download
        // record these chunks belong to — may sit unsynced in the journal.
        // Sync it first, or a power cut could keep this download's records
        // under an earlier download's record (found in review).
        self.db.persist(PersistMode::SyncAll).map_err(io)?;
        let mut clear = self.db.batch();
        for c in chunks {
            super::remove_range(&mut clear, self.keyspace(c.chunk.kind()), &c.first, &c.last)?;
        }
        clear.commit().map_err(io)?;
        for kind in [ChunkKind::Objects, ChunkKind::Outcomes] {
            let of_kind: Vec<&Arc<VerifiedChunk>> = chunks
                .iter()
                .map(|c| &c.chunk)
                .filter(|c| c.kind() == kind)
                .collect();
            self.ingest(self.keyspace(kind), &of_kind)?;
        }
        crate::profile::SYNC.staged(chunks.len(), started.elapsed());
        Ok(())
    }
}

impl FjallStager {
    fn keyspace(&self, kind: ChunkKind) -> &Keyspace {
        match kind {
            ChunkKind::Objects => &self.objects,
            ChunkKind::Outcomes => &self.outcomes,
        }
    }

    /// Writes `chunks` into `keyspace`: one ingestion for every chunk whose
    /// keys all come after the previous one's (all of them, for an honest
    /// manifest), and a plain batch for any other. fjall's ingestion
    /// panics on keys out of order, and a node never panics on what a peer
    /// sent, even through an attested manifest.
    fn ingest(
        &self,
        keyspace: &Keyspace,
        chunks: &[&Arc<VerifiedChunk>],
    ) -> Result<(), StoreError> {
        if chunks.is_empty() {
            return Ok(());
        }
        let mut ingestion = keyspace.start_ingestion().map_err(io)?;
        let mut stray = self.db.batch();
        let mut last: Option<&[u8]> = None;
        for chunk in chunks {
            let first = chunk.entries().next().map(|(k, _)| k);
            let in_order = match (last, first) {
                (Some(prev), Some(first)) => first > prev,
                _ => true,
            };
            for (key, value) in chunk.entries() {
                if in_order {
                    ingestion.write(key, value).map_err(io)?;
                } else {
                    stray.insert(keyspace, key, value);
                }
            }
            if in_order {
                last = chunk.entries().last().map(|(k, _)| k).or(last);
            }
        }
        ingestion.finish().map_err(io)?;
        stray.commit().map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::FjallStore;
    use bluepods_core::snapshot::check::verify_raw;
    use bluepods_core::snapshot::{Chunker, RawChunk};
    use bluepods_core::store::{ChunkToStage, MetaKey, Store, WriteBatch, WriteOp};
    use bluepods_core::tx::Object;
    use bluepods_core::{ObjectId, PublicKey};
    use std::sync::Arc;

    fn chunk_of(ids: &[u8]) -> RawChunk {
        let mut chunker = Chunker::<Object>::new(0);
        for i in ids {
            let o = Object {
                id: ObjectId([*i; 32]),
                version: 1,
                owner: PublicKey([1; 32]),
                data: vec![*i; 40],
            };
            assert!(chunker.push(&o).unwrap().is_none());
        }
        chunker.finish().unwrap()
    }

    fn to_stage(raw: &RawChunk, first: u8, last: u8) -> ChunkToStage {
        ChunkToStage {
            first: [first; 32],
            last: [last; 32],
            chunk: Arc::new(verify_raw(&raw.info, raw.raw.clone()).unwrap()),
        }
    }

    fn staged_ids(s: &FjallStore) -> Vec<u8> {
        s.staged_objects(&ObjectId([0; 32]), &ObjectId([0xff; 32]), 100)
            .unwrap()
            .iter()
            .map(|o| o.id.0[0])
            .collect()
    }

    /// Chunks staged off the loop replace what their territories held —
    /// including records an earlier write staged there — and read back
    /// like records written one by one.
    #[test]
    fn staged_chunks_replace_their_territories_and_read_back_as_objects() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = FjallStore::open(dir.path()).unwrap();
        s.begin_staging().unwrap();
        let (low, high) = (chunk_of(&[2, 4]), chunk_of(&[8, 9]));
        let mut stale = WriteBatch::new(false);
        stale.push(WriteOp::StageChunk(to_stage(&chunk_of(&[3, 5]), 0, 5)));
        s.write(stale).unwrap();
        assert_eq!(staged_ids(&s), vec![3, 5]);
        let stager = s.chunk_stager().expect("a staging area");
        stager
            .stage(&[to_stage(&low, 0, 5), to_stage(&high, 6, 0xff)])
            .unwrap();
        assert_eq!(staged_ids(&s), vec![2, 4, 8, 9]);
        let objects = s
            .staged_objects(&ObjectId([8; 32]), &ObjectId([8; 32]), 1)
            .unwrap();
        assert_eq!(objects[0].data, vec![8; 40]);
    }

    /// A joiner killed right after a staging job comes back with the
    /// download record written before the job: staged records never stand
    /// on disk without the record they belong to. The child process below
    /// writes a record, stages a chunk and aborts. (A kill keeps what
    /// reached the OS, so this passed before the journal sync in `stage`
    /// too; that sync closes the power-cut case — ingestion fsyncs its
    /// tables while the record was only written — which a kill cannot
    /// show.)
    #[test]
    fn what_a_staging_job_writes_never_outlives_the_record_written_before_it() {
        const DIR: &str = "BLUEPODS_STAGING_CRASH_DIR";
        if let Ok(dir) = std::env::var(DIR) {
            let mut s = FjallStore::open(std::path::Path::new(&dir)).unwrap();
            s.begin_staging().unwrap();
            let mut record = WriteBatch::new(false);
            record.push(WriteOp::PutMeta {
                key: MetaKey::SnapshotDownload,
                value: vec![7],
            });
            s.write(record).unwrap();
            let chunk = to_stage(&chunk_of(&[2, 4]), 0, 0xff);
            s.chunk_stager().unwrap().stage(&[chunk]).unwrap();
            std::process::abort();
        }
        let dir = tempfile::tempdir().unwrap();
        let name = "store::staging::tests::what_a_staging_job_writes_never_outlives_the_record_written_before_it";
        let child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", name, "--test-threads", "1"])
            .env(DIR, dir.path())
            .output()
            .unwrap();
        assert!(!child.status.success(), "the child aborts");
        let mut s = FjallStore::open(dir.path()).unwrap();
        assert!(s.resume_staging().unwrap());
        let record = s.get_meta(MetaKey::SnapshotDownload).unwrap();
        assert!(
            staged_ids(&s).is_empty() || record.is_some(),
            "records staged on disk ({:?}) without the record written before them",
            staged_ids(&s)
        );
    }

    /// fjall's ingestion panics on keys out of order. Chunks whose key
    /// ranges overlap (a manifest no honest node makes) are staged by a
    /// plain batch instead: no panic, and every record is staged.
    #[test]
    fn overlapping_chunks_are_staged_without_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = FjallStore::open(dir.path()).unwrap();
        s.begin_staging().unwrap();
        let (first, overlapping) = (chunk_of(&[2, 6]), chunk_of(&[4, 9]));
        let stager = s.chunk_stager().unwrap();
        stager
            .stage(&[to_stage(&first, 0, 6), to_stage(&overlapping, 7, 0xff)])
            .unwrap();
        assert_eq!(staged_ids(&s), vec![2, 4, 6, 9]);
    }
}
