//! The snapshot format: deterministic chunks of the committed state and the
//! manifest that binds them.
//!
//! A snapshot is taken right after a commit. Objects are read in id order and
//! cut into chunks at content-defined boundaries ([`chunk::is_cut_point`]):
//! whether a chunk ends after an object depends on that object alone. Every
//! honest node cuts the same state into the same chunks, so any of them can
//! serve any chunk and all compute the same manifest root; and two snapshots
//! of nearly the same state share nearly all their chunks, so a joiner that
//! moves to the newer one keeps what it verified.
//!
//! The state is the objects (by id) and the transaction outcomes (by hash);
//! both are cut into chunks (see [`chunk`]). The manifest lists per chunk
//! (index, kind, first key, last key, count, raw length, SHA-256 of the raw
//! bytes) and binds the chunk list, the round, the counts and the consensus
//! frontier: the consensus cursor and validator
//! schedule, and the committed vertices of the garbage-collection window
//! (what a joiner needs to continue the commit rule exactly; see DESIGN §6.8).
//! Vertices of that window that are *not* committed are deliberately left
//! out: which of them a node holds depends on its view, while the manifest must
//! not; a joiner fetches them by hash when later vertices name them, and the
//! commit rule applies them exactly once.

pub mod check;
pub mod chunk;
pub mod pages;

pub use chunk::{
    compress_chunk, decompress_chunk, verify_chunk, verify_record_ends, ChunkInfo, ChunkInvalid,
    ChunkKind, Chunker, OutcomeRecord, RawChunk, Record, CHUNK_CUT_MEAN_RAW_BYTES,
    CHUNK_MAX_RAW_BYTES, CHUNK_MIN_RAW_BYTES,
};

use crate::consensus::ConsensusMeta;
use crate::crypto::{self, Domain};
use crate::ids::{Hash, ObjectId, Round};
use crate::store::{read_meta, MetaKey, Store, StoreError};
use crate::tx::{Object, TxOutcome};
use borsh::{BorshDeserialize, BorshSerialize};
use std::fmt::Write as _;

/// Version of the snapshot format. 2: the validator schedule in the
/// frontier records who is off anchor duty (issue 12). 3: it records
/// weights, candidates, activity and the set policy (issue 13).
pub const SNAPSHOT_FORMAT_VERSION: u32 = 3;

/// What a joiner needs besides the state to continue consensus exactly.
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
    /// Transaction outcomes in the state.
    pub outcome_count: u64,
    /// Sum of the chunks' raw lengths.
    pub raw_bytes: u64,
    /// The chunks, object chunks first, indices 0, 1, 2, …
    pub chunks: Vec<ChunkInfo>,
    /// The consensus frontier.
    pub frontier: Frontier,
}

impl Manifest {
    /// The manifest root: the hash of the whole manifest.
    pub fn root(&self) -> Hash {
        crypto::hash_borsh(Domain::Manifest, self)
    }

    /// The chunks this manifest shares with `older` (same content, see
    /// [`ChunkInfo::same_content`]), as `(index in older, index in self)`,
    /// in this manifest's order. A joiner moving from a download of `older`
    /// to this one keeps those chunks and fetches only the others.
    pub fn shared_chunks(&self, older: &Manifest) -> Vec<(u32, u32)> {
        let by_hash: std::collections::BTreeMap<Hash, &ChunkInfo> =
            older.chunks.iter().map(|c| (c.hash, c)).collect();
        self.chunks
            .iter()
            .filter_map(|c| {
                let old = by_hash.get(&c.hash)?;
                old.same_content(c).then_some((old.index, c.index))
            })
            .collect()
    }

    /// Structural checks a joiner runs before using a manifest: version,
    /// chain, round, contiguous indices, strictly increasing keys per kind,
    /// totals that add up.
    pub fn check(&self, chain_id: &Hash) -> Result<(), String> {
        if self.version != SNAPSHOT_FORMAT_VERSION {
            return Err(format!(
                "snapshot format {} (this node reads {SNAPSHOT_FORMAT_VERSION})",
                self.version
            ));
        }
        if self.chain_id != *chain_id {
            return Err("manifest is for another chain".into());
        }
        if self.frontier.meta.last_anchor.map(|(r, _)| r) != Some(self.round) {
            return Err("manifest round differs from its consensus cursor".into());
        }
        let (mut objects, mut outcomes, mut raw) = (0u64, 0u64, 0u64);
        let mut last: Option<(ChunkKind, [u8; 32])> = None;
        for (i, c) in self.chunks.iter().enumerate() {
            if c.index as usize != i || c.count == 0 || c.first_key > c.last_key {
                return Err(format!("chunk entry {i} is malformed"));
            }
            match last {
                Some((ChunkKind::Outcomes, _)) if c.kind == ChunkKind::Objects => {
                    return Err("object chunks must come first".into());
                }
                Some((kind, key)) if kind == c.kind && c.first_key <= key => {
                    return Err(format!("chunk {i} overlaps the previous one"));
                }
                _ => {}
            }
            last = Some((c.kind, c.last_key));
            match c.kind {
                ChunkKind::Objects => objects += u64::from(c.count),
                ChunkKind::Outcomes => outcomes += u64::from(c.count),
            }
            raw += u64::from(c.raw_len);
        }
        if (objects, outcomes, raw) != (self.object_count, self.outcome_count, self.raw_bytes) {
            return Err("manifest totals do not add up".into());
        }
        Ok(())
    }
}

pub use crate::store::StateSource;

/// Records read per call while building.
const READ_BATCH: usize = 4096;

pub use crate::consensus::is_snapshot_anchor;

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// Builds the manifest of the state in `source` with the given frontier,
/// handing each finished chunk to `sink` as it is cut, so memory stays at one
/// chunk whatever the state size.
pub fn build_from<O: StateSource + ?Sized>(
    source: &O,
    chain_id: Hash,
    frontier: Frontier,
    mut sink: impl FnMut(RawChunk) -> Result<(), StoreError>,
) -> Result<Manifest, StoreError> {
    let round = frontier.meta.last_anchor.map_or(Round(0), |(r, _)| r);
    let mut chunks = Vec::new();
    let mut emit = |chunk: RawChunk, chunks: &mut Vec<ChunkInfo>| {
        chunks.push(chunk.info.clone());
        sink(chunk)
    };
    let mut objects = Chunker::<Object>::new(0);
    let mut after: Option<ObjectId> = None;
    loop {
        let batch = source.next_objects(after.as_ref(), READ_BATCH)?;
        let Some(last) = batch.last().map(|o| o.id) else {
            break;
        };
        for o in &batch {
            if let Some(chunk) = objects.push(o).map_err(corrupt)? {
                emit(chunk, &mut chunks)?;
            }
        }
        after = Some(last);
    }
    if let Some(chunk) = objects.finish() {
        emit(chunk, &mut chunks)?;
    }
    let mut outcomes = Chunker::<OutcomeRecord>::new(objects.next_index());
    let mut after: Option<Hash> = None;
    loop {
        let batch = source.next_outcomes(after.as_ref(), READ_BATCH)?;
        let Some(last) = batch.last().map(|(h, _)| *h) else {
            break;
        };
        for (tx, outcome) in batch {
            let record = OutcomeRecord { tx, outcome };
            if let Some(chunk) = outcomes.push(&record).map_err(corrupt)? {
                emit(chunk, &mut chunks)?;
            }
        }
        after = Some(last);
    }
    if let Some(chunk) = outcomes.finish() {
        emit(chunk, &mut chunks)?;
    }
    Ok(Manifest {
        version: SNAPSHOT_FORMAT_VERSION,
        chain_id,
        round,
        object_count: objects.records,
        outcome_count: outcomes.records,
        raw_bytes: objects.raw_bytes + outcomes.raw_bytes,
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
    pub view: Box<dyn StateSource + Send>,
}

impl std::fmt::Debug for SnapshotJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SnapshotJob(round {})", self.round)
    }
}

/// What building a snapshot yields, in order: every compressed chunk as it
/// is cut, then the manifest, or the failure.
#[derive(Debug)]
pub enum BuildOutput {
    /// One chunk, compressed, as served.
    Chunk {
        /// Snapshot round.
        round: Round,
        /// Chunk index.
        index: u32,
        /// The zstd frame.
        bytes: Vec<u8>,
    },
    /// The build is done.
    Built(Box<Manifest>),
    /// The build failed.
    Failed {
        /// Snapshot round.
        round: Round,
        /// Why.
        error: String,
    },
}

/// Builds the snapshot of a job, handing each compressed chunk and then the
/// manifest (or the failure) to `emit`; each output becomes a node input
/// (`Input::from`). Pure computation over the job's view: run it wherever it
/// does not block the node.
pub fn run_job(job: SnapshotJob, mut emit: impl FnMut(BuildOutput)) {
    let round = job.round;
    let result = build_from(&*job.view, job.chain_id, job.frontier, |chunk| {
        emit(BuildOutput::Chunk {
            round,
            index: chunk.info.index,
            bytes: compress_chunk(&chunk.raw),
        });
        Ok(())
    });
    emit(match result {
        Ok(manifest) => BuildOutput::Built(Box::new(manifest)),
        Err(e) => BuildOutput::Failed {
            round,
            error: e.to_string(),
        },
    });
}

/// The committed state of `store` as sorted text: a header with the last
/// committed round and the manifest root, one line per object, then one line
/// per transaction outcome. The same state always gives the same bytes, so
/// two nodes compare with `diff`.
pub fn dump_state(store: &dyn Store, out: &mut dyn std::io::Write) -> Result<(), StoreError> {
    dump_view(&StateDump::of(store)?, out)
}

/// A consistent picture of the committed state to write out later, from
/// any thread: taken in one step of the node, it is unaffected by what the
/// node commits meanwhile (the driver streams `GET /v1/state` from one off
/// the event loop).
pub struct StateDump {
    chain_id: Hash,
    frontier: Frontier,
    view: Box<dyn StateSource + Send>,
}

impl StateDump {
    /// The committed state of `store`, as it is now.
    pub fn of(store: &dyn Store) -> Result<Self, StoreError> {
        let (chain_id, frontier) = frontier_from_store(store)?;
        Ok(StateDump {
            chain_id,
            frontier,
            view: store.state_view()?,
        })
    }
}

/// Writes `dump` as [`dump_state`] text.
pub fn dump_view(dump: &StateDump, out: &mut dyn std::io::Write) -> Result<(), StoreError> {
    let io = |e: std::io::Error| StoreError::Io(e.to_string());
    let view = &*dump.view;
    let manifest = build_from(view, dump.chain_id, dump.frontier.clone(), |_| Ok(()))?;
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
        let batch = view.next_objects(after.as_ref(), READ_BATCH)?;
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
    writeln!(out, "outcomes {}", manifest.outcome_count).map_err(io)?;
    let mut after: Option<Hash> = None;
    loop {
        let batch = view.next_outcomes(after.as_ref(), READ_BATCH)?;
        let Some(last) = batch.last().map(|(h, _)| *h) else {
            break;
        };
        for (tx, outcome) in &batch {
            let text = match outcome {
                TxOutcome::Committed { round } => format!("tx {tx} committed round={round}"),
                TxOutcome::Failed { round, reason } => {
                    format!("tx {tx} failed round={round} reason={reason}")
                }
            };
            writeln!(out, "{text}").map_err(io)?;
        }
        after = Some(last);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
