//! Checking a chunk answer off the event loop.
//!
//! Decompressing a chunk (or rebuilding it from a delta), hashing it and
//! walking its records is most of a joiner's work per byte. Done on the
//! event loop, it held every other input up behind it, and the loop was the
//! busiest thread of a 1,000,000-object join (issue 14). So the node hands
//! each check to its driver as [`Action::CheckChunk`]; the driver runs it on
//! a bounded pool of worker threads and feeds the result back as
//! [`Input::ChunkChecked`]. The check is a pure function of the job, so
//! where and when it runs changes nothing but time: the node still decides
//! what to ask for, whom to ban and what to stage. A [`VerifiedChunk`] only
//! comes out of [`ChunkCheck::run`], so nothing unverified can be staged.
//!
//! [`Action::CheckChunk`]: crate::interface::Action::CheckChunk
//! [`Input::ChunkChecked`]: crate::interface::Input::ChunkChecked

use super::chunk::{decompress_chunk, verify_record_ends, ChunkInfo, ChunkKind, OutcomeRecord};
use super::pages::{self, Pages};
use crate::ids::{Hash, PeerId};
use crate::store::{ChunkStager, ChunkToStage};
use crate::tx::Object;
pub use crate::verified_chunk::VerifiedChunk;
use std::fmt;
use std::sync::Arc;

/// A chunk answer to check against its manifest entry.
#[derive(Clone)]
pub struct ChunkCheck {
    root: Hash,
    peer: PeerId,
    info: ChunkInfo,
    payload: Payload,
}

#[derive(Clone)]
enum Payload {
    /// The zstd frame of the raw bytes.
    Whole(Vec<u8>),
    /// The zstd frame of a delta, and the pages it was asked against (none:
    /// a delta nobody asked for).
    Delta(Vec<u8>, Option<Pages>),
}

impl fmt::Debug for ChunkCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, bytes) = match &self.payload {
            Payload::Whole(b) => ("whole", b.len()),
            Payload::Delta(b, _) => ("delta", b.len()),
        };
        write!(
            f,
            "ChunkCheck({} of {}, {kind} {bytes} B from {})",
            self.info.index, self.root, self.peer
        )
    }
}

impl ChunkCheck {
    /// A whole chunk (its zstd frame) that `peer` sent for entry `info` of
    /// the manifest with root `root`.
    pub(crate) fn whole(root: Hash, peer: PeerId, info: ChunkInfo, bytes: Vec<u8>) -> Self {
        ChunkCheck {
            root,
            peer,
            info,
            payload: Payload::Whole(bytes),
        }
    }

    /// A delta that `peer` sent, to rebuild against `held`.
    pub(crate) fn delta(
        root: Hash,
        peer: PeerId,
        info: ChunkInfo,
        bytes: Vec<u8>,
        held: Option<Pages>,
    ) -> Self {
        ChunkCheck {
            root,
            peer,
            info,
            payload: Payload::Delta(bytes, held),
        }
    }

    /// What to report if the check cannot finish (it panicked — on bytes
    /// its sender chose): a corrupt answer, so the chunk is asked again.
    pub fn failed(&self, why: &str) -> CheckedChunk {
        CheckedChunk {
            root: self.root,
            peer: self.peer,
            index: self.info.index,
            rebuilt: matches!(self.payload, Payload::Delta(..)),
            result: Err(why.to_string()),
        }
    }

    /// Decompresses (or rebuilds) the chunk, at most to the manifest's raw
    /// length, and checks it against the manifest entry. Blocks for about a
    /// millisecond per raw megabyte; touches nothing but its own bytes.
    pub fn run(self) -> CheckedChunk {
        let (raw, rebuilt) = match self.payload {
            Payload::Whole(bytes) => (decompress_chunk(&bytes, self.info.raw_len), false),
            Payload::Delta(bytes, Some(held)) => {
                (pages::rebuild(&bytes, &held, self.info.raw_len), true)
            }
            Payload::Delta(_, None) => {
                (Err("a delta answer to a whole-chunk request".into()), true)
            }
        };
        let result = raw.and_then(|raw| verify_raw(&self.info, raw).map(Arc::new));
        CheckedChunk {
            root: self.root,
            peer: self.peer,
            index: self.info.index,
            rebuilt,
            result,
        }
    }
}

/// Verified chunks to stage off the event loop through the store's
/// [`ChunkStager`]: run [`StageJob::run`] on a blocking thread and feed the
/// result back as `Input::ChunksStaged`. Staging writes and syncs about as
/// many bytes as the chunks hold; on the loop, that wait held every other
/// input up.
#[derive(Clone)]
pub struct StageJob {
    root: Hash,
    stager: Arc<dyn ChunkStager>,
    chunks: Vec<ChunkToStage>,
}

impl fmt::Debug for StageJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StageJob({} chunks of {})", self.chunks.len(), self.root)
    }
}

impl StageJob {
    pub(crate) fn new(root: Hash, stager: Arc<dyn ChunkStager>, chunks: Vec<ChunkToStage>) -> Self {
        StageJob {
            root,
            stager,
            chunks,
        }
    }

    /// What to report if the job cannot finish (it panicked): a staging
    /// failure, which halts the node like any failed write.
    pub fn failed(&self, why: &str) -> ChunksStaged {
        ChunksStaged {
            root: self.root,
            result: Err(why.to_string()),
        }
    }

    /// Stages the chunks; blocks on the store.
    pub fn run(self) -> ChunksStaged {
        ChunksStaged {
            root: self.root,
            result: self.stager.stage(&self.chunks).map_err(|e| e.to_string()),
        }
    }
}

/// What a [`StageJob`] did.
#[derive(Clone, Debug)]
pub struct ChunksStaged {
    pub(crate) root: Hash,
    pub(crate) result: Result<(), String>,
}

/// What a [`ChunkCheck`] found.
#[derive(Clone, Debug)]
pub struct CheckedChunk {
    pub(crate) root: Hash,
    pub(crate) peer: PeerId,
    pub(crate) index: u32,
    /// Whether it was rebuilt from a delta.
    pub(crate) rebuilt: bool,
    /// The verified chunk, or why the answer is corrupt.
    pub(crate) result: Result<Arc<VerifiedChunk>, String>,
}

/// Decompresses a whole chunk (capped at the manifest's raw length) and
/// checks it against manifest entry `info` (a probe's check, inline).
pub fn verify_whole(info: &ChunkInfo, compressed: &[u8]) -> Result<VerifiedChunk, String> {
    verify_raw(info, decompress_chunk(compressed, info.raw_len)?)
}

/// Checks raw bytes against manifest entry `info`: the verified chunk, or
/// why not.
pub fn verify_raw(info: &ChunkInfo, raw: Vec<u8>) -> Result<VerifiedChunk, String> {
    let ends = match info.kind {
        ChunkKind::Objects => verify_record_ends::<Object>(info, &raw),
        ChunkKind::Outcomes => verify_record_ends::<OutcomeRecord>(info, &raw),
    }
    .map_err(|e| e.to_string())?;
    Ok(VerifiedChunk::checked(info.kind, raw, ends))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ObjectId, PublicKey};
    use crate::snapshot::chunk::{compress_chunk, Chunker};
    use crate::tx::TxOutcome;

    fn object(i: u8) -> Object {
        Object {
            id: ObjectId([i; 32]),
            version: u64::from(i),
            owner: PublicKey([9; 32]),
            data: vec![i; usize::from(i)],
        }
    }

    fn whole(info: &ChunkInfo, raw: &[u8]) -> CheckedChunk {
        let bytes = compress_chunk(raw);
        ChunkCheck::whole(Hash([1; 32]), PeerId(7), info.clone(), bytes).run()
    }

    /// The bytes staged for each record are exactly what the store keeps
    /// for it through the ordinary writes (`borsh` of the object, of the
    /// outcome), so a snapshot staged in bulk reads back like one written
    /// record by record.
    #[test]
    fn the_staged_bytes_of_each_record_are_its_store_encoding() {
        let objects: Vec<Object> = (1..=5).map(object).collect();
        let mut chunker = Chunker::<Object>::new(0);
        for o in &objects {
            assert!(chunker.push(o).unwrap().is_none());
        }
        let chunk = chunker.finish().unwrap();
        let verified = whole(&chunk.info, &chunk.raw).result.unwrap();
        let entries: Vec<(Vec<u8>, Vec<u8>)> = verified
            .entries()
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect();
        let expected: Vec<(Vec<u8>, Vec<u8>)> = objects
            .iter()
            .map(|o| (o.id.0.to_vec(), borsh::to_vec(o).unwrap()))
            .collect();
        assert_eq!(entries, expected);
        assert_eq!(verified.objects().unwrap(), objects);

        let outcome = |i: u8| OutcomeRecord {
            tx: Hash([i; 32]),
            outcome: TxOutcome::Failed {
                round: crate::ids::Round(u64::from(i)),
                reason: format!("reason {i}"),
            },
        };
        let mut chunker = Chunker::<OutcomeRecord>::new(1);
        for i in 1..=3 {
            chunker.push(&outcome(i)).unwrap();
        }
        let chunk = chunker.finish().unwrap();
        let verified = whole(&chunk.info, &chunk.raw).result.unwrap();
        for ((k, v), i) in verified.entries().zip(1..=3) {
            assert_eq!(k, &[i; 32]);
            assert_eq!(v, borsh::to_vec(&outcome(i).outcome).unwrap());
        }
    }

    /// Every way an answer can lie is refused by the check, with the
    /// reason the ban will carry.
    #[test]
    fn a_lying_answer_fails_the_check() {
        let mut chunker = Chunker::<Object>::new(0);
        for i in 1..=3 {
            chunker.push(&object(i)).unwrap();
        }
        let chunk = chunker.finish().unwrap();
        let mut flipped = chunk.raw.clone();
        flipped[40] ^= 1;
        assert!(whole(&chunk.info, &flipped).result.is_err());
        let mut wider = chunk.info.clone();
        wider.count += 1;
        assert!(whole(&wider, &chunk.raw).result.is_err());
        let not_zstd = ChunkCheck::whole(Hash([1; 32]), PeerId(7), chunk.info.clone(), vec![1, 2]);
        assert!(not_zstd.run().result.is_err());
        let unasked = ChunkCheck::delta(Hash([1; 32]), PeerId(7), chunk.info, vec![1], None);
        let checked = unasked.run();
        assert!(checked.rebuilt);
        assert!(checked.result.unwrap_err().contains("whole-chunk request"));
    }
}
