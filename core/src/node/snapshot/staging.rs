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
