//! Chunks: deterministic cutting of sorted records, verification against a
//! manifest entry, and compression.
//!
//! A chunk's raw bytes are the borsh encodings of its records, back to back.
//!
//! Cut points are content-defined: whether a chunk ends after a record
//! depends on that record's key and size (see [`is_cut_point`]), not on a
//! running byte count. So every honest node still cuts the same state into
//! the same chunks, and a small change to the state — an insert, a delete,
//! an object that grew — changes the chunk it falls in and rarely more than
//! the next one; every other chunk stays byte-identical, and a joiner that moves to a
//! newer snapshot keeps the chunks it already verified (DESIGN §6.4). With a
//! running byte count instead, one insert near the start shifted every later
//! boundary, and a newer snapshot shared no chunk with the old one.
//!
//! Bounds keep the sizes sane whatever the keys: no cut before
//! [`CHUNK_MIN_RAW_BYTES`] (so keys ground to look like cut points cannot
//! make tiny chunks), a forced cut at [`CHUNK_MAX_RAW_BYTES`] (so a chunk
//! always fits in a response); in between, a record ends the chunk with
//! probability `its size / CHUNK_CUT_MEAN_RAW_BYTES`, which puts the mean chunk
//! near `CHUNK_MIN_RAW_BYTES + CHUNK_CUT_MEAN_RAW_BYTES` ≈ 1 MiB for records
//! of any size.

use crate::crypto::{self, Domain};
use crate::ids::Hash;
use crate::tx::{Object, TxOutcome};
use borsh::{BorshDeserialize, BorshSerialize};
use std::marker::PhantomData;

/// No chunk is cut before it holds this many raw bytes (but the last).
/// Protocol constants, these three: changing one changes every manifest root.
pub const CHUNK_MIN_RAW_BYTES: usize = 256 * 1024;

/// Past the minimum, a record ends its chunk with probability
/// `record bytes / CHUNK_CUT_MEAN_RAW_BYTES`: the mean extra length.
pub const CHUNK_CUT_MEAN_RAW_BYTES: usize = 768 * 1024;

/// A chunk is always cut once it holds this many raw bytes, so even an
/// incompressible chunk fits in a 4 MiB response.
pub const CHUNK_MAX_RAW_BYTES: usize = 3 * 1024 * 1024;

/// Whether a chunk ends after a record with this key whose encoding is
/// `record_len` bytes long (once the chunk holds `CHUNK_MIN_RAW_BYTES`).
///
/// A pure function of the record, so the decision is the same on every node
/// and survives any change elsewhere in the state. The key is mixed first:
/// object ids and transaction hashes are hashes already, but the mix keeps
/// the cut rate right even for keys that are not uniform.
pub fn is_cut_point(key: &[u8; 32], record_len: usize) -> bool {
    let mut mixed: u64 = 0x9e37_79b9_7f4a_7c15;
    for word in key.chunks_exact(8) {
        let w = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        mixed = (mixed ^ w).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        mixed ^= mixed >> 31;
    }
    // mixed / 2^64 < record_len / MEAN, without floating point.
    u128::from(mixed) * (CHUNK_CUT_MEAN_RAW_BYTES as u128) < (record_len as u128) << 64
}

/// zstd level for chunks: fast, and most of the gain.
const ZSTD_LEVEL: i32 = 3;

pub use crate::verified_chunk::ChunkKind;

/// One chunk as the manifest describes it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ChunkInfo {
    /// Position in the snapshot, from 0 (object chunks first).
    pub index: u32,
    /// What the chunk holds.
    pub kind: ChunkKind,
    /// Smallest key (object id or transaction hash) in the chunk.
    pub first_key: [u8; 32],
    /// Largest key in the chunk.
    pub last_key: [u8; 32],
    /// Records in the chunk.
    pub count: u32,
    /// Length of the raw (uncompressed) bytes.
    pub raw_len: u32,
    /// `H(Chunk, raw bytes)`.
    pub hash: Hash,
}

impl ChunkInfo {
    /// Whether `other` describes the same records: same kind, key range,
    /// count, length and hash, whatever the index. Bytes verified against
    /// one entry verify against the other.
    pub fn same_content(&self, other: &ChunkInfo) -> bool {
        (
            self.kind,
            self.first_key,
            self.last_key,
            self.count,
            self.raw_len,
            self.hash,
        ) == (
            other.kind,
            other.first_key,
            other.last_key,
            other.count,
            other.raw_len,
            other.hash,
        )
    }
}

/// A record that goes into chunks, sorted by its key.
pub trait Record: BorshSerialize + BorshDeserialize {
    /// The kind of chunk holding it.
    const KIND: ChunkKind;
    /// Its sort key.
    fn key(&self) -> [u8; 32];
}

impl Record for Object {
    const KIND: ChunkKind = ChunkKind::Objects;
    fn key(&self) -> [u8; 32] {
        self.id.0
    }
}

/// A transaction's outcome as a snapshot record.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct OutcomeRecord {
    /// Transaction hash.
    pub tx: Hash,
    /// Its outcome.
    pub outcome: TxOutcome,
}

impl Record for OutcomeRecord {
    const KIND: ChunkKind = ChunkKind::Outcomes;
    fn key(&self) -> [u8; 32] {
        self.tx.0
    }
}

/// A finished chunk: its description and raw bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawChunk {
    /// As listed in the manifest.
    pub info: ChunkInfo,
    /// The raw bytes.
    pub raw: Vec<u8>,
}

/// Cuts a stream of records, in strictly increasing key order, into chunks.
#[derive(Debug)]
pub struct Chunker<R> {
    buf: Vec<u8>,
    first: Option<[u8; 32]>,
    last: Option<[u8; 32]>,
    count: u32,
    next_index: u32,
    /// Records pushed so far.
    pub records: u64,
    /// Raw bytes of all finished chunks.
    pub raw_bytes: u64,
    _kind: PhantomData<R>,
}

/// Records given out of order: the source is not a sorted read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "records out of order: {} then {}",
    hex::encode(after),
    hex::encode(got)
)]
pub struct OutOfOrder {
    after: [u8; 32],
    got: [u8; 32],
}

impl<R: Record> Chunker<R> {
    /// A chunker whose first chunk gets index `first_index`.
    pub fn new(first_index: u32) -> Self {
        Chunker {
            buf: Vec::new(),
            first: None,
            last: None,
            count: 0,
            next_index: first_index,
            records: 0,
            raw_bytes: 0,
            _kind: PhantomData,
        }
    }

    /// The index the next chunk will get.
    pub fn next_index(&self) -> u32 {
        self.next_index
    }

    /// Adds the next record; returns a chunk when this record completes one.
    pub fn push(&mut self, record: &R) -> Result<Option<RawChunk>, OutOfOrder> {
        let key = record.key();
        if let Some(last) = self.last {
            if key <= last {
                return Err(OutOfOrder {
                    after: last,
                    got: key,
                });
            }
        }
        let before = self.buf.len();
        record
            .serialize(&mut self.buf)
            .expect("writing to a Vec cannot fail");
        let len = self.buf.len();
        self.first.get_or_insert(key);
        self.last = Some(key);
        self.count += 1;
        self.records += 1;
        let ends = len >= CHUNK_MAX_RAW_BYTES
            || (len >= CHUNK_MIN_RAW_BYTES && is_cut_point(&key, len - before));
        Ok(ends.then(|| self.cut()))
    }

    /// The last, partial chunk, if any record is left.
    pub fn finish(&mut self) -> Option<RawChunk> {
        (self.count > 0).then(|| self.cut())
    }

    fn cut(&mut self) -> RawChunk {
        let raw = std::mem::take(&mut self.buf);
        let info = ChunkInfo {
            index: self.next_index,
            kind: R::KIND,
            first_key: self.first.take().expect("a chunk has records"),
            last_key: self.last.expect("a chunk has records"),
            count: std::mem::take(&mut self.count),
            raw_len: raw.len() as u32,
            hash: crypto::hash(Domain::Chunk, &raw),
        };
        self.next_index += 1;
        self.raw_bytes += raw.len() as u64;
        RawChunk { info, raw }
    }
}

/// Why a chunk does not match its manifest entry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChunkInvalid {
    /// Size differs from the manifest.
    #[error("chunk {index}: {got} raw bytes, manifest says {expected}")]
    Length {
        /// Chunk index.
        index: u32,
        /// Received.
        got: usize,
        /// Expected.
        expected: u32,
    },
    /// Hash differs from the manifest.
    #[error("chunk {0}: hash does not match the manifest")]
    Hash(u32),
    /// Content does not decode or disagrees with the manifest entry.
    #[error("chunk {index}: {why}")]
    Content {
        /// Chunk index.
        index: u32,
        /// What is wrong.
        why: String,
    },
}

/// Checks raw chunk bytes against their manifest entry and decodes them.
/// The hash is checked first, so nothing is decoded from unverified bytes.
pub fn verify_chunk<R: Record>(info: &ChunkInfo, raw: &[u8]) -> Result<Vec<R>, ChunkInvalid> {
    let mut records: Vec<R> = Vec::with_capacity(info.count as usize);
    check_records::<R>(info, raw, |record, _| records.push(record))?;
    Ok(records)
}

/// Checks raw chunk bytes against their manifest entry like
/// [`verify_chunk`], keeping of each record only the offset where its
/// encoding ends: the records stay in `raw`, where staging reads them
/// without encoding them again.
pub fn verify_record_ends<R: Record>(
    info: &ChunkInfo,
    raw: &[u8],
) -> Result<Vec<u32>, ChunkInvalid> {
    let mut ends = Vec::with_capacity(info.count as usize);
    // `raw_len` is a u32, and the length was checked against it.
    check_records::<R>(info, raw, |_, end| ends.push(end as u32))?;
    Ok(ends)
}

/// The checks of [`verify_chunk`] (length, hash, kind, decoding, strict key
/// order, count, first and last key), handing each decoded record and the
/// offset where its encoding ends to `each`.
fn check_records<R: Record>(
    info: &ChunkInfo,
    raw: &[u8],
    mut each: impl FnMut(R, usize),
) -> Result<(), ChunkInvalid> {
    if raw.len() != info.raw_len as usize {
        return Err(ChunkInvalid::Length {
            index: info.index,
            got: raw.len(),
            expected: info.raw_len,
        });
    }
    if crypto::hash(Domain::Chunk, raw) != info.hash {
        return Err(ChunkInvalid::Hash(info.index));
    }
    let bad = |why: &str| ChunkInvalid::Content {
        index: info.index,
        why: why.to_string(),
    };
    if info.kind != R::KIND {
        return Err(bad("chunk kind differs"));
    }
    let mut rest = raw;
    let (mut count, mut first, mut last) = (0usize, None, None::<[u8; 32]>);
    while !rest.is_empty() {
        let record = R::deserialize(&mut rest).map_err(|e| bad(&e.to_string()))?;
        let key = record.key();
        if last.is_some_and(|p| p >= key) {
            return Err(bad("records out of order"));
        }
        first.get_or_insert(key);
        last = Some(key);
        count += 1;
        each(record, raw.len() - rest.len());
    }
    if count != info.count as usize || first != Some(info.first_key) || last != Some(info.last_key)
    {
        return Err(bad("keys or count differ from the manifest"));
    }
    Ok(())
}

/// Compresses raw chunk bytes into one independent zstd frame.
pub fn compress_chunk(raw: &[u8]) -> Vec<u8> {
    zstd::bulk::compress(raw, ZSTD_LEVEL).expect("compressing into memory cannot fail")
}

/// Decompresses a chunk, refusing to produce more than `raw_len` bytes (the
/// manifest's figure), so a hostile peer cannot make us allocate more.
pub fn decompress_chunk(compressed: &[u8], raw_len: u32) -> Result<Vec<u8>, String> {
    zstd::bulk::decompress(compressed, raw_len as usize)
        .map_err(|e| format!("chunk does not decompress within {raw_len} bytes: {e}"))
}
