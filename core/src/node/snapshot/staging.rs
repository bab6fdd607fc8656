//! What a snapshot download stages, and what of it survives: the chunk
//! check that guards the staging area, the record that lets a restart
//! trust what is staged, and the chunks one download hands to the next.
//!
//! Verified work is never thrown away (issue 10). A chunk is known by its
//! content (hash, kind, key range, count, length), not by its index or its
//! snapshot: when a joiner moves to another snapshot — its source pruned the
//! old one, or it restarted and only a newer one is on offer — every staged
//! chunk the new manifest lists too is kept, and only the records of the
//! others are fetched. With content-defined cut points (`snapshot::chunk`)
//! two snapshots of nearly the same state share nearly every chunk when
//! the changes are few and close together.
//!
//! Scattered changes leave no chunk intact, so the records of the others
//! stay staged too, as the base of delta requests (`snapshot::pages`): a
//! chunk is rebuilt from the pages held in its *territory* and the few
//! pages the server sends. A chunk's territory runs from just after the
//! previous chunk of its kind to its own last key (the whole rest of the
//! key space at either end), so a manifest's territories cover every key:
//! staging a chunk replaces whatever its territory held, and once every
//! chunk is staged the staging area holds exactly the manifest's records,
//! whatever an earlier download left there.

use crate::ids::{Hash, ObjectId};
use crate::snapshot::{ChunkKind, Manifest};
use crate::store::{WriteBatch, WriteOp};
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
/// ([`Manifest::shared_chunks`]). The records of the other chunks of
/// `previous` stay, as delta bases; what a kept chunk's territory holds
/// beyond the chunk, and every staged record of a kind the manifest has no
/// chunk of, are removed in `batch` — the batch that records the new
/// download, so a crash never leaves a record naming chunks whose
/// territories hold more.
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
    let kept: BTreeSet<u32> = manifest
        .shared_chunks(&previous.manifest)
        .into_iter()
        .filter(|(old, _)| verified.contains(old))
        .map(|(_, new)| new)
        .collect();
    for index in &kept {
        let c = &manifest.chunks[*index as usize];
        let (lo, hi) = territory(manifest, *index);
        if let Some(before) = key_before(c.first_key).filter(|b| lo <= *b) {
            batch.push(delete_staged(c.kind, lo, before));
        }
        if let Some(after) = key_after(c.last_key).filter(|a| *a <= hi) {
            batch.push(delete_staged(c.kind, after, hi));
        }
    }
    for kind in [ChunkKind::Objects, ChunkKind::Outcomes] {
        if !manifest.chunks.iter().any(|c| c.kind == kind) {
            batch.push(delete_staged(kind, [0; 32], [0xff; 32]));
        }
    }
    kept
}

/// The key range chunk `index` of `manifest` answers for in the staging
/// area, inclusive: from just after the previous chunk of its kind (from
/// the first key there is, for the first) to its last key (to the last key
/// there is, for the last of its kind).
pub(super) fn territory(manifest: &Manifest, index: u32) -> ([u8; 32], [u8; 32]) {
    let chunks = &manifest.chunks;
    let i = index as usize;
    let kind = chunks[i].kind;
    let lo = match i.checked_sub(1).map(|p| &chunks[p]) {
        Some(prev) if prev.kind == kind => key_after(prev.last_key).unwrap_or([0xff; 32]),
        _ => [0; 32],
    };
    let hi = match chunks.get(i + 1) {
        Some(next) if next.kind == kind => chunks[i].last_key,
        _ => [0xff; 32],
    };
    (lo, hi)
}

/// The key right after `key` in big-endian order, if any.
fn key_after(mut key: [u8; 32]) -> Option<[u8; 32]> {
    for b in key.iter_mut().rev() {
        if *b == 0xff {
            *b = 0;
        } else {
            *b += 1;
            return Some(key);
        }
    }
    None
}

/// The key right before `key` in big-endian order, if any.
fn key_before(mut key: [u8; 32]) -> Option<[u8; 32]> {
    for b in key.iter_mut().rev() {
        if *b == 0 {
            *b = 0xff;
        } else {
            *b -= 1;
            return Some(key);
        }
    }
    None
}

fn delete_staged(kind: ChunkKind, first: [u8; 32], last: [u8; 32]) -> WriteOp {
    match kind {
        ChunkKind::Objects => WriteOp::DeleteStagedObjects {
            first: ObjectId(first),
            last: ObjectId(last),
        },
        ChunkKind::Outcomes => WriteOp::DeleteStagedOutcomes {
            first: Hash(first),
            last: Hash(last),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::ConsensusMeta;
    use crate::ids::Round;
    use crate::snapshot::ChunkInfo;
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
    /// kept under their new indices; the records of the one it changed
    /// stay staged (a delta base); what a kept chunk's territory holds
    /// besides the chunk is unstaged, and so is every outcome (the new
    /// manifest has no outcome chunk).
    #[test]
    fn a_newer_snapshot_keeps_the_shared_verified_chunks_and_clears_around_them() {
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
        let objects = |first: [u8; 32], last: [u8; 32]| WriteOp::DeleteStagedObjects {
            first: ObjectId(first),
            last: ObjectId(last),
        };
        let mut after_0 = [0; 32];
        after_0[31] = 1;
        let mut before_1 = [1; 32];
        before_1[31] = 0;
        let mut after_6 = [6; 32];
        after_6[31] = 7;
        let mut before_7 = [7; 32];
        before_7[31] = 6;
        let mut after_8 = [8; 32];
        after_8[31] = 9;
        assert_eq!(
            batch.ops,
            vec![
                objects(after_0, before_1),
                objects(after_6, before_7),
                objects(after_8, [0xff; 32]),
                WriteOp::DeleteStagedOutcomes {
                    first: Hash([0; 32]),
                    last: Hash([0xff; 32]),
                },
            ]
        );
        // The same root: everything verified stays, nothing is deleted.
        let mut batch = WriteBatch::new(false);
        let root = previous.root;
        let same = previous.manifest.clone();
        let kept = keep_verified_chunks(previous, root, &same, &mut batch);
        assert_eq!(kept, BTreeSet::from([0, 1, 3]));
        assert!(batch.ops.is_empty());
    }

    /// Territories tile each kind's key space: staging every chunk over
    /// its territory leaves nothing an earlier download staged.
    #[test]
    fn the_territories_of_a_manifest_cover_every_key_once() {
        let mut outcome = chunk(3, 9, 9, 30);
        outcome.kind = ChunkKind::Outcomes;
        let m = manifest(
            5,
            vec![
                chunk(0, 1, 2, 11),
                chunk(1, 3, 4, 12),
                chunk(2, 6, 8, 13),
                outcome,
            ],
        );
        let mut after_2 = [2; 32];
        after_2[31] = 3;
        let mut after_4 = [4; 32];
        after_4[31] = 5;
        assert_eq!(territory(&m, 0), ([0; 32], [2; 32]));
        assert_eq!(territory(&m, 1), (after_2, [4; 32]));
        assert_eq!(territory(&m, 2), (after_4, [0xff; 32]));
        assert_eq!(territory(&m, 3), ([0; 32], [0xff; 32]));
        assert_eq!(key_after([0xff; 32]), None);
        assert_eq!(key_before([0; 32]), None);
        assert_eq!(key_before(key_after([7; 32]).unwrap()), Some([7; 32]));
    }
}
