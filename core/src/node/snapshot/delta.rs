//! Delta requests: how a download asks for a chunk whose key range it
//! already holds records of (from an earlier download of another snapshot),
//! and how the answer becomes the chunk's raw bytes (`snapshot::pages`).
//!
//! A delta answer names the asker's pages by position. They are read from
//! the staging area twice, for the request and for the answer, rather than
//! kept: a chunk's territory changes only when that chunk is staged, so
//! both reads give the same pages, and a download that times out on every
//! chunk keeps no pages for any of them.
//! Whatever arrives is checked like a whole chunk (`snapshot::check`) before
//! anything is staged; a server that rebuilds to a wrong chunk is banned as
//! one that served a corrupt chunk.

use super::staging::territory;
use crate::ids::{Hash, ObjectId, Round};
use crate::node::state::SyncState;
use crate::node::Node;
use crate::snapshot::pages::{Pages, PAGE_CUT_MEAN_RECORDS};
use crate::snapshot::{ChunkKind, Manifest, OutcomeRecord};
use crate::store::{Store, StoreError};
use crate::wire::{Message, RequestId};

impl<S: Store> Node<S> {
    /// The request for chunk `index` of the snapshot at `round`: a delta
    /// request when the staging area holds records of the chunk's
    /// territory from an earlier download (`snapshot::pages`), else the
    /// whole chunk.
    pub(in crate::node) fn chunk_request(
        &self,
        request: RequestId,
        round: Round,
        index: u32,
    ) -> Message {
        let whole = Message::GetChunk {
            request,
            round,
            index,
        };
        let max_pages = self.config.sync.max_delta_pages;
        let SyncState::Fetch(d) = &self.sync else {
            return whole;
        };
        if d.manifest.round != round || max_pages == 0 {
            return whole;
        }
        match held_pages(&self.store, &d.manifest, index, max_pages) {
            Ok(Some(pages)) => Message::GetChunkDelta {
                request,
                round,
                index,
                held: pages.digests(),
            },
            // Nothing held there, or too much: the whole chunk. A read
            // error costs the delta, not the download.
            Ok(None) | Err(_) => whole,
        }
    }
}

/// Held bytes allowed beyond twice the chunk's raw length (a small chunk's
/// territory may hold a few more records than it).
const HELD_SLACK_BYTES: usize = 64 * 1024;

/// What the staging area holds in chunk `index`'s territory, paged: the
/// base of a delta request; `None` if it holds nothing there, more than
/// `max_pages` pages, or more than about twice the chunk's bytes (then the
/// chunk is fetched whole).
pub(in crate::node) fn held_pages(
    store: &dyn Store,
    manifest: &Manifest,
    index: u32,
    max_pages: usize,
) -> Result<Option<Pages>, StoreError> {
    let (lo, hi) = territory(manifest, index);
    // Pages hold PAGE_CUT_MEAN_RECORDS records on average: reading twice
    // that many per allowed page bounds the read, not the decision.
    let limit = max_pages.saturating_mul(2 * PAGE_CUT_MEAN_RECORDS as usize);
    let pages = match manifest.chunks[index as usize].kind {
        ChunkKind::Objects => {
            let records = store.staged_objects(&ObjectId(lo), &ObjectId(hi), limit)?;
            if records.len() >= limit {
                return Ok(None);
            }
            Pages::of_records(&records)
        }
        ChunkKind::Outcomes => {
            let records: Vec<OutcomeRecord> = store
                .staged_outcomes(&Hash(lo), &Hash(hi), limit)?
                .into_iter()
                .map(|(tx, outcome)| OutcomeRecord { tx, outcome })
                .collect();
            if records.len() >= limit {
                return Ok(None);
            }
            Pages::of_records(&records)
        }
    };
    // Held pages stay in memory until the chunk is verified, one set per
    // chunk in flight: more than twice the chunk is not worth keeping
    // (a territory emptied by mass deletion), it is fetched whole.
    let info = &manifest.chunks[index as usize];
    let worth_keeping = pages.raw.len() <= 2 * info.raw_len as usize + HELD_SLACK_BYTES;
    let usable = !pages.ranges.is_empty() && pages.ranges.len() <= max_pages && worth_keeping;
    Ok(usable.then_some(pages))
}

/// A chunk as it arrived: whole (compressed), or as a delta against the
/// pages this node holds.
pub(in crate::node) enum ChunkPayload {
    /// `Chunk`: the zstd frame of the raw bytes.
    Whole(Vec<u8>),
    /// `ChunkDelta`: the zstd frame of the parts.
    Delta(Vec<u8>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::ConsensusMeta;
    use crate::snapshot::ChunkInfo;
    use crate::snapshot::{Frontier, SNAPSHOT_FORMAT_VERSION};
    use crate::store::{MemStore, WriteBatch, WriteOp};
    use crate::tx::Object;
    use crate::validators::ValidatorSchedule;

    fn one_chunk(raw_len: u32) -> Manifest {
        Manifest {
            version: SNAPSHOT_FORMAT_VERSION,
            chain_id: Hash([1; 32]),
            round: Round(3),
            object_count: 1,
            outcome_count: 0,
            raw_bytes: u64::from(raw_len),
            chunks: vec![ChunkInfo {
                index: 0,
                kind: ChunkKind::Objects,
                first_key: [0x40; 32],
                last_key: [0x80; 32],
                count: 1,
                raw_len,
                hash: Hash([2; 32]),
            }],
            frontier: Frontier {
                meta: ConsensusMeta {
                    last_anchor: Some((Round(3), Hash([3; 32]))),
                    schedule: ValidatorSchedule::new(Vec::new(), 20, 64),
                    committed_vertices: 0,
                    executed_txs: 0,
                },
                committed: Vec::new(),
            },
        }
    }

    fn staged(n: u16) -> MemStore {
        let mut store = MemStore::new();
        store.begin_staging().unwrap();
        let mut batch = WriteBatch::new(false);
        for i in 0..n {
            batch.push(WriteOp::PutStagedObject(Object {
                id: ObjectId(
                    crate::crypto::hash(crate::crypto::Domain::Object, &i.to_le_bytes()).0,
                ),
                version: 1,
                owner: crate::ids::PublicKey([7; 32]),
                data: vec![i as u8; 100],
            }));
        }
        store.write(batch).unwrap();
        store
    }

    #[test]
    fn a_delta_is_based_on_what_the_territory_holds_within_its_bounds() {
        // The only chunk's territory is the whole key space.
        let manifest = one_chunk(200 * 180);
        let none = held_pages(&staged(0), &manifest, 0, 16_384).unwrap();
        assert!(none.is_none(), "nothing held: the whole chunk");
        let pages = held_pages(&staged(200), &manifest, 0, 16_384)
            .unwrap()
            .unwrap();
        assert_eq!(Pages::of_raw::<Object>(pages.raw.clone()).unwrap(), pages);
        // More pages than a request may carry: the whole chunk.
        assert!(held_pages(&staged(200), &manifest, 0, 10)
            .unwrap()
            .is_none());
        // Far more held than the chunk holds: not worth the memory.
        assert!(held_pages(&staged(1_000), &one_chunk(1_000), 0, 16_384)
            .unwrap()
            .is_none());
    }
}
