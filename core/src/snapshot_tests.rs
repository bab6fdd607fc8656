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
    let mut c = Chunker::new();
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
    assert_eq!(verify_chunk(&c.info, &c.raw).unwrap(), objs);
    let mut flipped = c.raw.clone();
    flipped[10] ^= 1;
    assert_eq!(verify_chunk(&c.info, &flipped), Err(ChunkInvalid::Hash(0)));
    assert!(matches!(
        verify_chunk(&c.info, &c.raw[1..]),
        Err(ChunkInvalid::Length { .. })
    ));
}

#[test]
fn unsorted_input_is_refused() {
    let mut c = Chunker::new();
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
