//! Snapshot format tests.

use super::*;
use crate::genesis::synthetic_object;
use crate::ids::PublicKey;

fn objects(n: u64) -> Vec<Object> {
    let mut v: Vec<Object> = (0..n).map(synthetic_object).collect();
    v.sort_by_key(|o| o.id);
    v
}

fn chunk_all(objs: &[Object]) -> Vec<RawChunk> {
    let mut c = Chunker::<Object>::new(0);
    let mut out: Vec<RawChunk> = objs.iter().filter_map(|o| c.push(o).unwrap()).collect();
    out.extend(c.finish());
    out
}

#[test]
fn chunk_boundaries_depend_only_on_the_objects() {
    let objs = objects(20_000);
    let a = chunk_all(&objs);
    let b = chunk_all(&objs);
    assert_eq!(a, b);
    assert!(a.len() >= 3, "{} chunks", a.len());
    for c in &a[..a.len() - 1] {
        assert!(c.raw.len() >= CHUNK_TARGET_RAW_BYTES);
        assert!(c.raw.len() < CHUNK_TARGET_RAW_BYTES + 8 * 1024);
    }
    let total: u32 = a.iter().map(|c| c.info.count).sum();
    assert_eq!(total, 20_000);
}

#[test]
fn a_chunk_verifies_against_its_entry_and_any_change_is_caught() {
    let objs = objects(500);
    let chunks = chunk_all(&objs);
    let c = &chunks[0];
    assert_eq!(verify_chunk::<Object>(&c.info, &c.raw).unwrap(), objs);
    let mut flipped = c.raw.clone();
    flipped[10] ^= 1;
    assert_eq!(
        verify_chunk::<Object>(&c.info, &flipped),
        Err(ChunkInvalid::Hash(0))
    );
    assert!(matches!(
        verify_chunk::<Object>(&c.info, &c.raw[1..]),
        Err(ChunkInvalid::Length { .. })
    ));
    assert!(matches!(
        verify_chunk::<OutcomeRecord>(&c.info, &c.raw),
        Err(ChunkInvalid::Content { .. })
    ));
}

#[test]
fn unsorted_input_is_refused() {
    let mut c = Chunker::<Object>::new(0);
    let a = Object {
        id: ObjectId([2; 32]),
        version: 1,
        owner: PublicKey([0; 32]),
        data: vec![],
    };
    let b = Object {
        id: ObjectId([1; 32]),
        ..a.clone()
    };
    c.push(&a).unwrap();
    assert!(c.push(&b).is_err());
    assert!(c.push(&a).is_err(), "duplicates are out of order too");
}

#[test]
fn manifest_checks_catch_reordered_or_inconsistent_chunk_lists() {
    use crate::consensus::ConsensusMeta;
    use crate::validators::ValidatorSchedule;
    let objs = objects(20_000);
    let chunks: Vec<ChunkInfo> = chunk_all(&objs).into_iter().map(|c| c.info).collect();
    let meta = ConsensusMeta {
        last_anchor: Some((Round(4), Hash([1; 32]))),
        schedule: ValidatorSchedule::new(vec![], 20, 4),
        committed_vertices: 0,
        executed_txs: 0,
    };
    let good = Manifest {
        version: SNAPSHOT_FORMAT_VERSION,
        chain_id: Hash([9; 32]),
        round: Round(4),
        object_count: 20_000,
        outcome_count: 0,
        raw_bytes: chunks.iter().map(|c| u64::from(c.raw_len)).sum(),
        chunks,
        frontier: Frontier {
            meta,
            committed: vec![],
        },
    };
    assert_eq!(good.check(&Hash([9; 32])), Ok(()));
    assert!(good.check(&Hash([8; 32])).is_err());
    let mut swapped = good.clone();
    swapped.chunks.swap(0, 1);
    assert!(swapped.check(&Hash([9; 32])).is_err());
    let mut inflated = good.clone();
    inflated.object_count += 1;
    assert!(inflated.check(&Hash([9; 32])).is_err());
    let mut wrong_round = good.clone();
    wrong_round.round = Round(6);
    assert!(wrong_round.check(&Hash([9; 32])).is_err());
    // Each entry on its own (killed mutants: the three checks of an entry
    // joined by `&&` instead of `||`): a wrong index, an empty chunk whose
    // count the totals agree with, an inverted key range.
    let mut renumbered = good.clone();
    renumbered.chunks[0].index = 7;
    assert!(renumbered.check(&Hash([9; 32])).is_err());
    let mut empty = good.clone();
    empty.object_count -= u64::from(empty.chunks[0].count);
    empty.chunks[0].count = 0;
    assert!(empty.check(&Hash([9; 32])).is_err());
    let mut inverted = good;
    let c = &mut inverted.chunks[0];
    std::mem::swap(&mut c.first_key, &mut c.last_key);
    assert!(inverted.check(&Hash([9; 32])).is_err());
}

/// Single-record chunks (first key = last key) and several outcome chunks in
/// a row are a valid manifest, objects after outcomes or overlapping chunks
/// are not (killed mutants: `first > last` tightened to `>=` or `==`; the
/// ordering guards dropped or inverted).
#[test]
fn single_record_chunks_and_consecutive_outcome_chunks_pass_the_check() {
    use crate::consensus::ConsensusMeta;
    use crate::validators::ValidatorSchedule;
    let entry = |index, kind, key: u8| ChunkInfo {
        index,
        kind,
        first_key: [key; 32],
        last_key: [key; 32],
        count: 1,
        raw_len: 10,
        hash: Hash([0; 32]),
    };
    let manifest = Manifest {
        version: SNAPSHOT_FORMAT_VERSION,
        chain_id: Hash([9; 32]),
        round: Round(4),
        object_count: 1,
        outcome_count: 2,
        raw_bytes: 30,
        chunks: vec![
            entry(0, ChunkKind::Objects, 1),
            entry(1, ChunkKind::Outcomes, 1),
            entry(2, ChunkKind::Outcomes, 2),
        ],
        frontier: Frontier {
            meta: ConsensusMeta {
                last_anchor: Some((Round(4), Hash([1; 32]))),
                schedule: ValidatorSchedule::new(vec![], 20, 4),
                committed_vertices: 0,
                executed_txs: 0,
            },
            committed: vec![],
        },
    };
    assert_eq!(manifest.check(&Hash([9; 32])), Ok(()));
    // Objects after outcomes, and two chunks of one kind that overlap, are
    // not (killed mutants: either ordering guard dropped).
    let mut late_objects = manifest.clone();
    late_objects.chunks[0].kind = ChunkKind::Outcomes;
    late_objects.chunks[1].kind = ChunkKind::Objects;
    assert!(late_objects.check(&Hash([9; 32])).is_err());
    let mut overlapping = manifest;
    overlapping.chunks[2].first_key = [1; 32];
    assert!(overlapping.check(&Hash([9; 32])).is_err());
}
