//! The snapshot format: deterministic chunks of the committed state and the
//! manifest that binds them.
//!
//! A snapshot is taken right after a commit. Objects are read in id order and
//! cut into chunks at deterministic boundaries: a chunk ends after the object
//! that brings its raw size to [`CHUNK_TARGET_RAW_BYTES`] or more. Since the
//! boundaries depend only on the objects, every honest node cuts the same
//! state into the same chunks, so any of them can serve any chunk and all
//! compute the same manifest root.
//!
//! A chunk's raw bytes are the borsh encodings of its objects, back to back.
//! The manifest lists per chunk (index, first id, last id, count, raw length,
//! SHA-256 of the raw bytes) and binds the chunk list, the round, the object
//! count and the consensus frontier: the consensus cursor and validator
//! schedule, and the committed vertices of the garbage-collection window
//! (what a joiner needs to continue the commit rule exactly; see DESIGN §6.8).
//! Vertices of that window that are *not* committed are deliberately left
//! out: which of them a node holds depends on its view, while the manifest must
//! not; a joiner fetches them by hash when later vertices name them, and the
//! commit rule applies them exactly once.

use crate::consensus::ConsensusMeta;
use crate::crypto::{self, Domain};
use crate::ids::{Hash, ObjectId, Round};
use crate::store::{read_meta, MetaKey, Store, StoreError};
use crate::tx::Object;
use borsh::{BorshDeserialize, BorshSerialize};
use std::fmt::Write as _;

/// Version of the snapshot format.
pub const SNAPSHOT_FORMAT_VERSION: u32 = 1;

/// Raw bytes after which a chunk is cut. A protocol constant: changing it
/// changes every manifest root.
pub const CHUNK_TARGET_RAW_BYTES: usize = 1 << 20;

/// One chunk as the manifest describes it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ChunkInfo {
    /// Position in the snapshot, from 0.
    pub index: u32,
    /// Smallest object id in the chunk.
    pub first_id: ObjectId,
    /// Largest object id in the chunk.
    pub last_id: ObjectId,
    /// Objects in the chunk.
    pub count: u32,
    /// Length of the raw (uncompressed) bytes.
    pub raw_len: u32,
    /// `H(Chunk, raw bytes)`.
    pub hash: Hash,
}

/// What a joiner needs besides the objects to continue consensus exactly.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Frontier {
    /// Commit cursor, validator schedule, totals.
    pub meta: ConsensusMeta,
    /// Committed vertices of the window `(round − gc_depth ..= round)`, as
    /// `(round, hash)`, sorted.
    pub committed: Vec<(Round, Hash)>,
}

/// The manifest of a snapshot. Its root is what validators attest.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Manifest {
    /// [`SNAPSHOT_FORMAT_VERSION`].
    pub version: u32,
    /// The chain.
    pub chain_id: Hash,
    /// The last committed anchor round the state reflects.
    pub round: Round,
    /// Objects in the state.
    pub object_count: u64,
    /// Sum of the chunks' raw lengths.
    pub raw_bytes: u64,
    /// The chunks, in order.
    pub chunks: Vec<ChunkInfo>,
    /// The consensus frontier.
    pub frontier: Frontier,
}

impl Manifest {
    /// The manifest root: the hash of the whole manifest.
    pub fn root(&self) -> Hash {
        crypto::hash_borsh(Domain::Manifest, self)
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

/// Cuts a stream of objects, in strictly increasing id order, into chunks.
#[derive(Debug, Default)]
pub struct Chunker {
    buf: Vec<u8>,
    first: Option<ObjectId>,
    last: Option<ObjectId>,
    count: u32,
    next_index: u32,
    /// Objects pushed so far.
    pub objects: u64,
    /// Raw bytes of all finished chunks.
    pub raw_bytes: u64,
}

/// Objects given out of order: the source is not a sorted read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("objects out of order: {after} then {got}")]
pub struct OutOfOrder {
    after: ObjectId,
    got: ObjectId,
}

impl Chunker {
    /// An empty chunker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the next object; returns a chunk when this object completes one.
    pub fn push(&mut self, obj: &Object) -> Result<Option<RawChunk>, OutOfOrder> {
        if let Some(last) = self.last {
            if obj.id <= last {
                return Err(OutOfOrder {
                    after: last,
                    got: obj.id,
                });
            }
        }
        obj.serialize(&mut self.buf)
            .expect("writing to a Vec cannot fail");
        self.first.get_or_insert(obj.id);
        self.last = Some(obj.id);
        self.count += 1;
        self.objects += 1;
        Ok((self.buf.len() >= CHUNK_TARGET_RAW_BYTES).then(|| self.cut()))
    }

    /// The last, partial chunk, if any object is left.
    pub fn finish(&mut self) -> Option<RawChunk> {
        (self.count > 0).then(|| self.cut())
    }

    fn cut(&mut self) -> RawChunk {
        let raw = std::mem::take(&mut self.buf);
        let info = ChunkInfo {
            index: self.next_index,
            first_id: self.first.take().expect("a chunk has objects"),
            last_id: self.last.expect("a chunk has objects"),
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
    /// Content does not decode or disagrees with the manifest's ids and count.
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
pub fn verify_chunk(info: &ChunkInfo, raw: &[u8]) -> Result<Vec<Object>, ChunkInvalid> {
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
    let bad = |why: String| ChunkInvalid::Content {
        index: info.index,
        why,
    };
    let mut rest = raw;
    let mut objects = Vec::with_capacity(info.count as usize);
    while !rest.is_empty() {
        let obj = Object::deserialize(&mut rest).map_err(|e| bad(e.to_string()))?;
        if objects.last().is_some_and(|p: &Object| p.id >= obj.id) {
            return Err(bad("objects out of order".into()));
        }
        objects.push(obj);
    }
    if objects.len() != info.count as usize
        || objects.first().map(|o| o.id) != Some(info.first_id)
        || objects.last().map(|o| o.id) != Some(info.last_id)
    {
        return Err(bad("ids or count differ from the manifest".into()));
    }
    Ok(objects)
}

/// Objects read per call while building.
const READ_BATCH: usize = 4096;

/// Sorted object reads from a consistent view of committed state.
pub trait ObjectSource {
    /// Up to `limit` objects with id strictly greater than `after`, sorted.
    fn next_objects(
        &self,
        after: Option<&ObjectId>,
        limit: usize,
    ) -> Result<Vec<Object>, StoreError>;
}

impl<S: Store + ?Sized> ObjectSource for S {
    fn next_objects(
        &self,
        after: Option<&ObjectId>,
        limit: usize,
    ) -> Result<Vec<Object>, StoreError> {
        Store::objects_after(self, after, limit)
    }
}

/// Whether committing the anchor of `round` after `previous` starts a
/// snapshot: the first anchor at or past each multiple of `interval` does (and
/// the very first anchor, so a young chain has one too). Every node commits
/// the same anchors, so every node picks the same ones.
pub fn is_snapshot_anchor(previous: Option<Round>, round: Round, interval: u64) -> bool {
    match previous {
        None => true,
        Some(p) => p.0 / interval.max(1) < round.0 / interval.max(1),
    }
}

/// Builds the manifest of the objects in `source` with the given frontier,
/// handing each finished chunk to `sink` as it is cut, so memory stays at one
/// chunk whatever the state size.
pub fn build_from<O: ObjectSource + ?Sized>(
    source: &O,
    chain_id: Hash,
    frontier: Frontier,
    mut sink: impl FnMut(RawChunk) -> Result<(), StoreError>,
) -> Result<Manifest, StoreError> {
    let round = frontier.meta.last_anchor.map_or(Round(0), |(r, _)| r);
    let mut chunker = Chunker::new();
    let mut chunks = Vec::new();
    let mut after: Option<ObjectId> = None;
    loop {
        let batch = source.next_objects(after.as_ref(), READ_BATCH)?;
        let Some(last) = batch.last().map(|o| o.id) else {
            break;
        };
        for obj in &batch {
            let done = chunker
                .push(obj)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if let Some(chunk) = done {
                chunks.push(chunk.info.clone());
                sink(chunk)?;
            }
        }
        after = Some(last);
    }
    if let Some(chunk) = chunker.finish() {
        chunks.push(chunk.info.clone());
        sink(chunk)?;
    }
    Ok(Manifest {
        version: SNAPSHOT_FORMAT_VERSION,
        chain_id,
        round,
        object_count: chunker.objects,
        raw_bytes: chunker.raw_bytes,
        chunks,
        frontier,
    })
}

/// The chain id and frontier of the committed state of a (stopped) store.
pub fn frontier_from_store(store: &dyn Store) -> Result<(Hash, Frontier), StoreError> {
    let genesis: crate::genesis::Genesis = read_meta(store, MetaKey::Genesis)?
        .ok_or_else(|| StoreError::Corrupt("no genesis in store".into()))?;
    let meta: ConsensusMeta = read_meta(store, MetaKey::Consensus)?
        .ok_or_else(|| StoreError::Corrupt("no consensus metadata in store".into()))?;
    let committed = match meta.last_anchor {
        None => Vec::new(),
        Some((a, _)) => {
            let floor = a.saturating_sub(genesis.params.gc_depth_rounds);
            let mut out: Vec<(Round, Hash)> = store
                .vertices_in_rounds(floor, a, usize::MAX)?
                .into_iter()
                .filter(|s| s.committed_at.is_some_and(|c| c <= a))
                .map(|s| (s.vertex.round(), s.vertex.hash()))
                .collect();
            out.sort();
            out
        }
    };
    Ok((genesis.chain_id(), Frontier { meta, committed }))
}

/// Builds the manifest of the committed state of a store that does not
/// change during the call (a stopped node, or a consistent view).
pub fn build(
    store: &dyn Store,
    sink: impl FnMut(RawChunk) -> Result<(), StoreError>,
) -> Result<Manifest, StoreError> {
    let (chain_id, frontier) = frontier_from_store(store)?;
    build_from(store, chain_id, frontier, sink)
}

/// A snapshot to build: what the node hands the driver.
pub struct SnapshotJob {
    /// The anchor round the state reflects.
    pub round: Round,
    /// The chain.
    pub chain_id: Hash,
    /// The frontier, captured at the commit.
    pub frontier: Frontier,
    /// The objects as they were right after the commit.
    pub view: Box<dyn ObjectSource + Send>,
}

impl std::fmt::Debug for SnapshotJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SnapshotJob(round {})", self.round)
    }
}

/// Builds the snapshot of a job, handing each compressed chunk and then the
/// manifest (or the failure) to `emit` as node inputs. Pure computation over
/// the job's view: run it wherever it does not block the node.
pub fn run_job(job: SnapshotJob, mut emit: impl FnMut(crate::interface::Input)) {
    use crate::interface::Input;
    let round = job.round;
    let result = build_from(&*job.view, job.chain_id, job.frontier, |chunk| {
        emit(Input::SnapshotChunk {
            round,
            index: chunk.info.index,
            bytes: compress_chunk(&chunk.raw),
        });
        Ok(())
    });
    emit(match result {
        Ok(manifest) => Input::SnapshotBuilt {
            manifest: Box::new(manifest),
        },
        Err(e) => Input::SnapshotFailed {
            round,
            error: e.to_string(),
        },
    });
}

/// zstd level for chunks: fast, and most of the gain.
const ZSTD_LEVEL: i32 = 3;

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

/// The committed state of `store` as sorted text: a header with the last
/// committed round and the manifest root, then one object per line. The same
/// state always gives the same bytes, so two nodes compare with `diff`.
pub fn dump_state(store: &dyn Store, out: &mut dyn std::io::Write) -> Result<(), StoreError> {
    let io = |e: std::io::Error| StoreError::Io(e.to_string());
    let manifest = build(store, |_| Ok(()))?;
    let round = manifest
        .frontier
        .meta
        .last_anchor
        .map_or("none".to_string(), |(r, _)| r.to_string());
    writeln!(out, "# bluepods committed state").map_err(io)?;
    writeln!(out, "chain_id {}", manifest.chain_id).map_err(io)?;
    writeln!(out, "last_committed_round {round}").map_err(io)?;
    writeln!(out, "manifest_root {}", manifest.root()).map_err(io)?;
    writeln!(out, "objects {}", manifest.object_count).map_err(io)?;
    let mut after: Option<ObjectId> = None;
    let mut line = String::new();
    loop {
        let batch = store.objects_after(after.as_ref(), READ_BATCH)?;
        let Some(last) = batch.last().map(|o| o.id) else {
            break;
        };
        for o in &batch {
            line.clear();
            let _ = write!(
                line,
                "{} v={} owner={} data={}",
                o.id,
                o.version,
                o.owner,
                hex::encode(&o.data)
            );
            writeln!(out, "{line}").map_err(io)?;
        }
        after = Some(last);
    }
    Ok(())
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod tests;
