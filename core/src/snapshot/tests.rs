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
        assert!(c.raw.len() >= CHUNK_MIN_RAW_BYTES, "{}", c.raw.len());
        assert!(c.raw.len() < CHUNK_MAX_RAW_BYTES + 1024, "{}", c.raw.len());
    }
    let total: u32 = a.iter().map(|c| c.info.count).sum();
    assert_eq!(total, 20_000);
}

/// A cheap object for cut-point tests: a hashed id, `len` bytes of data.
fn object(i: u64, len: usize) -> Object {
    Object {
        id: ObjectId(crate::crypto::hash(crate::crypto::Domain::Object, &i.to_le_bytes()).0),
        version: 1,
        owner: PublicKey([7; 32]),
        data: vec![(i % 251) as u8; len],
    }
}

fn sorted(mut v: Vec<Object>) -> Vec<Object> {
    v.sort_by_key(|o| o.id);
    v
}

/// Chunks of `new` whose content `old` has too (what a joiner keeps).
fn kept(old: &[RawChunk], new: &[RawChunk]) -> usize {
    new.iter()
        .filter(|n| old.iter().any(|o| o.info.same_content(&n.info)))
        .count()
}

#[test]
fn one_insert_delete_or_growth_changes_at_most_two_chunks() {
    let base = sorted((0..60_000).map(|i| object(i, 100)).collect());
    let before = chunk_all(&base);
    assert!(before.len() >= 8, "{} chunks", before.len());
    let mut inserted = base.clone();
    inserted.push(object(1_000_000, 100));
    let mut deleted = base.clone();
    deleted.remove(base.len() / 3);
    let mut grown = base.clone();
    grown[base.len() / 2].data = vec![1; 5_000];
    for (what, state) in [
        ("insert", sorted(inserted)),
        ("delete", deleted),
        ("growth", grown),
    ] {
        let after = chunk_all(&state);
        let changed = after.len() - kept(&before, &after);
        assert!(
            changed <= 2,
            "{what}: {changed} of {} chunks changed",
            after.len()
        );
    }
}

#[test]
fn cut_points_survive_inserts_and_deletes_spread_over_the_state() {
    // 30 inserts and 30 deletes, each in its own region: every chunk that
    // none of them falls in is kept.
    let base = sorted((0..120_000).map(|i| object(i, 100)).collect());
    let before = chunk_all(&base);
    let mut state = base.clone();
    for k in 0..30 {
        state.remove(k * 3_900);
    }
    state.extend((0..30).map(|k| object(2_000_000 + k, 100)));
    let after = chunk_all(&sorted(state));
    let reused = kept(&before, &after);
    assert!(
        reused + 2 * 60 >= after.len(),
        "{reused} of {} chunks kept",
        after.len()
    );
}

/// The figure asked for: 1% of the objects changed as one workload's
/// objects do (a run of neighbouring ids: one account's objects, one
/// contract's) leaves >= 90% of the chunks byte-identical. Postmortem: with
/// cuts by running byte count, the one size change at the start of the run
/// shifted every later boundary and a joiner moving to the newer snapshot
/// kept nothing.
#[test]
fn after_one_percent_of_the_objects_change_ninety_percent_of_the_chunks_are_reused() {
    let base = sorted((0..200_000).map(|i| object(i, 100)).collect());
    let before = chunk_all(&base);
    let mut state = base.clone();
    let start = base.len() / 5;
    for o in &mut state[start..start + base.len() / 100] {
        o.version += 1;
        o.data.push(1);
    }
    let after = chunk_all(&state);
    let reused = kept(&before, &after);
    eprintln!(
        "1% changed as one run: {reused} of {} chunks reused",
        after.len()
    );
    assert!(
        reused * 10 >= after.len() * 9,
        "{reused} of {} chunks reused",
        after.len()
    );
}

/// The figure for scattered change (issue 10): the same 1% spread
/// uniformly over the ids touches every chunk (~55 objects each), so no
/// chunk stays byte-identical; a joiner that verified the old chunks
/// rebuilds every new one from the pages it holds in that chunk's key range
/// (`pages`), for a small part of the chunk's bytes.
#[test]
fn after_one_percent_scattered_change_every_chunk_is_rebuilt_from_held_pages() {
    use crate::snapshot::pages::{delta_parts, encode_delta, rebuild, Pages};
    let base = objects(200_000);
    let before = chunk_all(&base);
    let mut scattered = base.clone();
    for o in scattered.iter_mut().step_by(100) {
        o.version += 1;
        o.data[0] ^= 1;
    }
    let after = chunk_all(&scattered);
    let (mut whole_bytes, mut delta_bytes, mut digest_bytes) = (0, 0, 0);
    for (i, c) in after.iter().enumerate() {
        // What the joiner holds of the chunk's territory: the old records
        // after the previous chunk's last key, up to this one's.
        let after_key = i.checked_sub(1).map(|p| after[p].info.last_key);
        let last = i + 1 == after.len();
        let held: Vec<Object> = base
            .iter()
            .filter(|o| after_key.is_none_or(|k| o.id.0 > k) && (last || o.id.0 <= c.info.last_key))
            .cloned()
            .collect();
        let held = Pages::of_records(&held);
        let served = Pages::of_raw::<Object>(c.raw.clone()).unwrap();
        let digests = held.digests();
        let delta = encode_delta(&delta_parts(&served, &digests));
        assert_eq!(rebuild(&delta, &held, c.info.raw_len).unwrap(), c.raw);
        whole_bytes += compress_chunk(&c.raw).len();
        delta_bytes += delta.len();
        digest_bytes += 8 * digests.len();
    }
    let fetched = delta_bytes + digest_bytes;
    eprintln!(
        "1% changed, scattered: {} of {} chunks byte-identical; all rebuilt from held pages \
         for {delta_bytes} bytes of deltas and {digest_bytes} of digests, {:.1}% of the \
         {whole_bytes} compressed bytes",
        kept(&before, &after),
        after.len(),
        100.0 * fetched as f64 / whole_bytes as f64
    );
    assert!(kept(&before, &after) <= 1);
    assert!(
        fetched * 4 <= whole_bytes,
        "{fetched} of {whole_bytes} bytes"
    );
}

#[test]
fn shared_chunks_pairs_old_and_new_indices_of_equal_content() {
    let base = sorted((0..40_000).map(|i| object(i, 100)).collect());
    let mut grown = base.clone();
    grown[0].data = vec![2; 3_000];
    let manifest = |chunks: &[RawChunk]| Manifest {
        version: SNAPSHOT_FORMAT_VERSION,
        chain_id: Hash([9; 32]),
        round: Round(4),
        object_count: 0,
        outcome_count: 0,
        raw_bytes: 0,
        chunks: chunks.iter().map(|c| c.info.clone()).collect(),
        frontier: Frontier {
            meta: crate::consensus::ConsensusMeta {
                last_anchor: Some((Round(4), Hash([1; 32]))),
                schedule: crate::validators::ValidatorSchedule::new(vec![], 20, 4),
                committed_vertices: 0,
                executed_txs: 0,
            },
            committed: vec![],
        },
    };
    let (old, new) = (chunk_all(&base), chunk_all(&grown));
    let shared = manifest(&new).shared_chunks(&manifest(&old));
    assert!(!shared.is_empty());
    assert!(shared.len() < new.len(), "the grown chunk is not shared");
    for (o, n) in shared {
        assert_eq!(old[o as usize].raw, new[n as usize].raw);
    }
    // An entry with the same hash but another key range is not the same
    // chunk: its records would be staged under keys the manifest denies.
    let mut liar = manifest(&old);
    liar.chunks[1].first_key = [0; 32];
    assert!(!manifest(&old)
        .shared_chunks(&liar)
        .iter()
        .any(|&(o, _)| o == 1));
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
