//! What a snapshot download stages, and what of it survives: the chunk
//! check that guards the staging area, the record that lets a restart
//! trust what is staged, and the chunks one download hands to the next.
//!
//! Verified work is never thrown away (issue 10). A chunk is known by its
//! content (hash, kind, key range, count, length), not by its index or its
//! snapshot: when a joiner moves to another snapshot — its source pruned the
//! old one, or it restarted and only a newer one is on offer — every staged
//! chunk the new manifest lists too is kept, and only the records of the
//! others leave the staging area. With content-defined cut points
//! (`snapshot::chunk`) two snapshots of nearly the same state share nearly
//! every chunk.

use crate::ids::Hash;
use crate::snapshot::{
    decompress_chunk, verify_chunk, ChunkInfo, ChunkKind, Manifest, OutcomeRecord,
};
use crate::store::{WriteBatch, WriteOp};
use crate::tx::Object;
use std::collections::BTreeSet;

/// What survives a restart of a snapshot download: the attested manifest
/// and which chunks are verified and staged.
#[derive(Clone, Debug, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub(in crate::node) struct DownloadRecord {
    pub(in crate::node) root: Hash,
    pub(in crate::node) manifest: Manifest,
    pub(in crate::node) done: Vec<u32>,
}

/// The chunks of `manifest` already verified and staged by the download
/// `previous`: all of them for the same root; for another snapshot, the
/// ones whose content both manifests list
/// ([`Manifest::shared_chunks`]). The staged records of every other
/// chunk of `previous` are removed in `batch` — the batch that records the
/// new download, so a crash never leaves a record naming chunks whose
/// records are gone.
pub(super) fn keep_verified_chunks(
    previous: DownloadRecord,
    root: Hash,
    manifest: &Manifest,
    batch: &mut WriteBatch,
) -> BTreeSet<u32> {
    if previous.root == root {
        return previous.done.into_iter().collect();
    }
    let verified: BTreeSet<u32> = previous.done.into_iter().collect();
    let mut kept = BTreeSet::new();
    let mut kept_old = BTreeSet::new();
    for (old, new) in manifest.shared_chunks(&previous.manifest) {
        if verified.contains(&old) {
            kept.insert(new);
            kept_old.insert(old);
        }
    }
    for index in verified.difference(&kept_old) {
        let Some(c) = previous.manifest.chunks.get(*index as usize) else {
            continue;
        };
        batch.push(match c.kind {
            ChunkKind::Objects => WriteOp::DeleteStagedObjects {
                first: crate::ids::ObjectId(c.first_key),
                last: crate::ids::ObjectId(c.last_key),
            },
            ChunkKind::Outcomes => WriteOp::DeleteStagedOutcomes {
                first: Hash(c.first_key),
                last: Hash(c.last_key),
            },
        });
    }
    kept
}

/// Decompresses a chunk (capped at the manifest's raw length) and checks it
/// against its manifest entry (hash, key range, count, order): the staging
/// writes of its records, or why it is corrupt. Nothing unverified is ever
/// staged.
pub(in crate::node) fn staged_records(
    info: &ChunkInfo,
    bytes: &[u8],
) -> Result<WriteBatch, String> {
    let raw = decompress_chunk(bytes, info.raw_len)?;
    let mut batch = WriteBatch::new(false);
    match info.kind {
        ChunkKind::Objects => {
            for o in verify_chunk::<Object>(info, &raw).map_err(|e| e.to_string())? {
                batch.push(WriteOp::PutStagedObject(o));
            }
        }
        ChunkKind::Outcomes => {
            for r in verify_chunk::<OutcomeRecord>(info, &raw).map_err(|e| e.to_string())? {
                batch.push(WriteOp::PutStagedOutcome {
                    hash: r.tx,
                    outcome: r.outcome,
                });
            }
        }
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::ConsensusMeta;
    use crate::ids::Round;
    use crate::snapshot::{Frontier, SNAPSHOT_FORMAT_VERSION};
    use crate::validators::ValidatorSchedule;

    /// An object chunk holding keys `first ..= last`, its content named by
    /// `content`.
    fn chunk(index: u32, first: u8, last: u8, content: u8) -> ChunkInfo {
        ChunkInfo {
            index,
            kind: ChunkKind::Objects,
            first_key: [first; 32],
            last_key: [last; 32],
            count: 1,
            raw_len: 10,
            hash: Hash([content; 32]),
        }
    }

    fn manifest(round: u64, chunks: Vec<ChunkInfo>) -> Manifest {
        Manifest {
            version: SNAPSHOT_FORMAT_VERSION,
            chain_id: Hash([1; 32]),
            round: Round(round),
            object_count: chunks.len() as u64,
            outcome_count: 0,
            raw_bytes: 10 * chunks.len() as u64,
            chunks,
            frontier: Frontier {
                meta: ConsensusMeta {
                    last_anchor: Some((Round(round), Hash([2; 32]))),
                    schedule: ValidatorSchedule::new(Vec::new(), 20, 64),
                    committed_vertices: 0,
                    executed_txs: 0,
                },
                committed: Vec::new(),
            },
        }
    }

    /// Moving to a newer snapshot: the verified chunks it lists again are
    /// kept under their new indices, the records of the verified one it
    /// changed leave the staging area, and nothing is deleted for chunks
    /// never verified.
    #[test]
    fn a_newer_snapshot_keeps_the_shared_verified_chunks_and_unstages_the_rest() {
        let old = manifest(
            10,
            vec![
                chunk(0, 1, 2, 11),
                chunk(1, 3, 4, 12),
                chunk(2, 5, 6, 13),
                chunk(3, 7, 8, 14),
            ],
        );
        // A new chunk in front; chunk 1's content changed; 2 and 3 the same.
        let new = manifest(
            20,
            vec![
                chunk(0, 0, 0, 20),
                chunk(1, 1, 2, 11),
                chunk(2, 3, 4, 99),
                chunk(3, 5, 6, 13),
                chunk(4, 7, 8, 14),
            ],
        );
        let previous = DownloadRecord {
            root: old.root(),
            manifest: old,
            done: vec![0, 1, 3],
        };
        let mut batch = WriteBatch::new(false);
        let kept = keep_verified_chunks(previous.clone(), new.root(), &new, &mut batch);
        assert_eq!(kept, BTreeSet::from([1, 4]));
        assert_eq!(
            batch.ops,
            vec![WriteOp::DeleteStagedObjects {
                first: crate::ids::ObjectId([3; 32]),
                last: crate::ids::ObjectId([4; 32]),
            }]
        );
        // The same root: everything verified stays, nothing is deleted.
        let mut batch = WriteBatch::new(false);
        let root = previous.root;
        let same = previous.manifest.clone();
        let kept = keep_verified_chunks(previous, root, &same, &mut batch);
        assert_eq!(kept, BTreeSet::from([0, 1, 3]));
        assert!(batch.ops.is_empty());
    }
}
