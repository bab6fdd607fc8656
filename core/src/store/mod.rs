//! The storage boundary: a `Store` trait the core reads and writes through,
//! and `MemStore`, its in-memory implementation for tests, the harness and
//! fuzzing. The driver implements the same trait on fjall.
//!
//! Writes happen only in [`WriteBatch`]es, which a store applies atomically.
//! A batch marked `durable` must be on stable storage when `write` returns: the
//! core marks every batch that backs something it will tell a peer or a client
//! (its own vertex before broadcast, a commit before it reports it) as durable.

use crate::ids::{Hash, ObjectId, Round};
use crate::tx::{Object, TxOutcome};
use crate::vertex::Vertex;
use borsh::{BorshDeserialize, BorshSerialize};

mod mem;
pub use mem::MemStore;

/// A storage failure. The core cannot continue safely after one: it stops
/// and reports it (see `Event::StorageFailed`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The backend failed (disk, permissions, full device).
    #[error("storage I/O error: {0}")]
    Io(String),
    /// Stored bytes do not decode: the data directory is damaged.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// Keys of single metadata records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum MetaKey {
    /// The adopted genesis document (borsh `Genesis`).
    Genesis,
    /// The consensus cursor (borsh `ConsensusMeta`), written with each commit.
    Consensus,
    /// The last round this node produced a vertex for (borsh `Round`).
    OwnLastRound,
    /// The snapshot being downloaded (borsh `DownloadRecord`), so that a
    /// restarted node resumes it.
    SnapshotDownload,
    /// The certificate of an epoch's validator set (borsh
    /// `EpochCertificate`, `epochs.rs`).
    EpochCertificate(crate::ids::Epoch),
    /// Present (borsh `()`) while the genesis objects of an adopted genesis
    /// are not written yet: a node that may join from a snapshot writes
    /// them before its first commit, or never if a snapshot replaces its
    /// state first.
    GenesisStateDeferred,
}

impl MetaKey {
    /// Stable key bytes for backends.
    pub fn as_bytes(self) -> Vec<u8> {
        match self {
            MetaKey::Genesis => b"genesis".to_vec(),
            MetaKey::Consensus => b"consensus".to_vec(),
            MetaKey::OwnLastRound => b"own_last_round".to_vec(),
            MetaKey::SnapshotDownload => b"snapshot_download".to_vec(),
            MetaKey::GenesisStateDeferred => b"genesis_state_deferred".to_vec(),
            MetaKey::EpochCertificate(e) => {
                [b"epoch_cert/".as_slice(), &e.0.to_be_bytes()].concat()
            }
        }
    }
}

/// A vertex as stored, with the anchor round that committed it, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredVertex {
    /// The vertex, shared with the DAG that holds it and with any copy of
    /// the store (the simulator keeps a live and a durable one).
    pub vertex: std::sync::Arc<Vertex>,
    /// The anchor round whose commit included it.
    pub committed_at: Option<Round>,
}

/// One write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteOp {
    /// Insert or replace an object.
    PutObject(Object),
    /// Remove an object.
    DeleteObject(ObjectId),
    /// Store a vertex under its hash and round.
    PutVertex {
        /// The vertex hash.
        hash: Hash,
        /// The vertex, shared with the DAG (issue 14: a copy per DAG, per
        /// store and per batch was most of a 50-node simulation's memory).
        vertex: std::sync::Arc<Vertex>,
    },
    /// Record that a stored vertex was committed by the anchor of `anchor`.
    MarkCommitted {
        /// The vertex hash.
        hash: Hash,
        /// Anchor round.
        anchor: Round,
    },
    /// Record a transaction's outcome.
    PutTxOutcome {
        /// Transaction hash.
        hash: Hash,
        /// Outcome.
        outcome: TxOutcome,
    },
    /// Store one compressed snapshot chunk.
    PutSnapshotChunk {
        /// Snapshot round.
        round: Round,
        /// Chunk index.
        index: u32,
        /// The zstd frame, as served; shared, like a vertex.
        bytes: std::sync::Arc<[u8]>,
    },
    /// Store a snapshot manifest (borsh), which makes the snapshot servable.
    PutManifest {
        /// Snapshot round.
        round: Round,
        /// Borsh bytes of the manifest.
        bytes: Vec<u8>,
    },
    /// Remove a snapshot: its manifest and every chunk.
    DeleteSnapshot(Round),
    /// Stage an object of a snapshot being applied (see `begin_staging`).
    PutStagedObject(Object),
    /// Stage a transaction outcome of a snapshot being applied.
    PutStagedOutcome {
        /// Transaction hash.
        hash: Hash,
        /// Outcome.
        outcome: TxOutcome,
    },
    /// Stage a verified chunk over its territory: remove the staged
    /// records of its kind with keys in `first ..= last`, then stage its
    /// records. A store may write the records in bulk (sorted ingestion)
    /// ahead of the rest of the batch: the node trusts staged records only
    /// once a durable download record names their chunk, so records that
    /// land early are harmless.
    StageChunk(ChunkToStage),
    /// Remove the staged objects with ids in `first ..= last`: the records
    /// of a chunk a joiner verified for one snapshot that the next one it
    /// moves to does not list.
    DeleteStagedObjects {
        /// Smallest id removed.
        first: ObjectId,
        /// Largest id removed.
        last: ObjectId,
    },
    /// Remove the staged outcomes with hashes in `first ..= last`.
    DeleteStagedOutcomes {
        /// Smallest hash removed.
        first: Hash,
        /// Largest hash removed.
        last: Hash,
    },
    /// Remove a metadata record.
    DeleteMeta(MetaKey),
    /// Replace a metadata record.
    PutMeta {
        /// Which record.
        key: MetaKey,
        /// Borsh bytes.
        value: Vec<u8>,
    },
}

/// Reads stored snapshot chunks; shareable across threads.
pub trait ChunkReader: Send + Sync {
    /// The compressed chunk `index` of the snapshot of `round`, as stored.
    fn snapshot_chunk(&self, round: Round, index: u32) -> Result<Option<Vec<u8>>, StoreError>;
}

/// A verified chunk to stage over its territory: the staged records of its
/// kind with keys in `first ..= last` are removed, then its records staged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkToStage {
    /// Smallest key of the territory.
    pub first: [u8; 32],
    /// Largest key of the territory.
    pub last: [u8; 32],
    /// The chunk.
    pub chunk: std::sync::Arc<crate::verified_chunk::VerifiedChunk>,
}

/// Stages verified chunks from another thread (`Store::chunk_stager`).
pub trait ChunkStager: Send + Sync {
    /// Stages `chunks`, in index order, each over its territory; durable
    /// when it returns.
    fn stage(&self, chunks: &[ChunkToStage]) -> Result<(), StoreError>;
}

/// Writes applied atomically, all or none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteBatch {
    /// The writes, applied in order.
    pub ops: Vec<WriteOp>,
    /// The batch must be on stable storage when `write` returns.
    pub durable: bool,
}

impl WriteBatch {
    /// An empty batch with the given durability.
    pub fn new(durable: bool) -> Self {
        WriteBatch {
            ops: Vec::new(),
            durable,
        }
    }

    /// Appends a write.
    pub fn push(&mut self, op: WriteOp) {
        self.ops.push(op);
    }

    /// Appends a metadata write of a borsh value.
    pub fn put_meta<T: BorshSerialize>(&mut self, key: MetaKey, value: &T) {
        let value = borsh::to_vec(value).expect("borsh encoding into memory is infallible");
        self.ops.push(WriteOp::PutMeta { key, value });
    }
}

/// What the core needs from storage.
pub trait Store {
    /// An object by id.
    fn get_object(&self, id: &ObjectId) -> Result<Option<Object>, StoreError>;
    /// Up to `limit` objects with id strictly greater than `after`, sorted by id.
    fn objects_after(
        &self,
        after: Option<&ObjectId>,
        limit: usize,
    ) -> Result<Vec<Object>, StoreError>;
    /// A vertex by hash.
    fn get_vertex(&self, hash: &Hash) -> Result<Option<StoredVertex>, StoreError>;
    /// Vertices of rounds `from..=to`, sorted by (round, hash), at most `limit`.
    fn vertices_in_rounds(
        &self,
        from: Round,
        to: Round,
        limit: usize,
    ) -> Result<Vec<StoredVertex>, StoreError>;
    /// A transaction's recorded outcome.
    fn tx_outcome(&self, hash: &Hash) -> Result<Option<TxOutcome>, StoreError>;
    /// Up to `limit` outcomes with transaction hash strictly greater than
    /// `after`, sorted by hash.
    fn outcomes_after(
        &self,
        after: Option<&Hash>,
        limit: usize,
    ) -> Result<Vec<(Hash, TxOutcome)>, StoreError>;
    /// A metadata record's bytes.
    fn get_meta(&self, key: MetaKey) -> Result<Option<Vec<u8>>, StoreError>;
    /// Applies `batch` atomically; durably if `batch.durable`.
    fn write(&mut self, batch: WriteBatch) -> Result<(), StoreError>;
    /// Discards any staging area and starts an empty one, into which
    /// `PutStagedObject` and `PutStagedOutcome` write.
    fn begin_staging(&mut self) -> Result<(), StoreError>;
    /// Reopens the staging area left by an interrupted download, keeping
    /// what it holds; `false` if there is none (then call `begin_staging`).
    fn resume_staging(&mut self) -> Result<bool, StoreError>;
    /// Makes the staged objects and outcomes the live ones, replacing the
    /// old, and applies `batch`, atomically and durably: after a crash either
    /// the old state or the whole new one is live.
    fn adopt_staging(&mut self, batch: WriteBatch) -> Result<(), StoreError>;
    /// Staged objects with ids in `first ..= last`, in id order, at most
    /// `limit`; none without a staging area. What a download holds of a
    /// key range from an earlier snapshot (`snapshot::pages`).
    fn staged_objects(
        &self,
        first: &ObjectId,
        last: &ObjectId,
        limit: usize,
    ) -> Result<Vec<Object>, StoreError>;
    /// Staged outcomes with hashes in `first ..= last`, as
    /// [`Store::staged_objects`].
    fn staged_outcomes(
        &self,
        first: &Hash,
        last: &Hash,
        limit: usize,
    ) -> Result<Vec<(Hash, TxOutcome)>, StoreError>;
    /// A consistent read-only view of the objects as they are now, unaffected
    /// by later writes, that can be read from another thread (snapshot
    /// building off the commit path).
    fn state_view(&self) -> Result<Box<dyn StateSource + Send>, StoreError>;
    /// A stored snapshot chunk (compressed).
    fn snapshot_chunk(&self, round: Round, index: u32) -> Result<Option<Vec<u8>>, StoreError>;
    /// A handle that reads snapshot chunks from any thread, if this store
    /// has one: the node then lets its driver read and send chunk answers
    /// off the event loop (`Action::ServeChunk`). `None` (the default, and
    /// the in-memory stores) serves them inline.
    fn chunk_reader(&self) -> Option<std::sync::Arc<dyn ChunkReader>> {
        None
    }
    /// A handle that stages verified chunks into the current staging area
    /// from another thread, if this store has one: the node then lets its
    /// driver stage off the event loop (`Action::StageChunks`). `None` (the
    /// default, the in-memory stores, and no staging area) stages inline.
    fn chunk_stager(&self) -> Option<std::sync::Arc<dyn ChunkStager>> {
        None
    }
    /// Every stored manifest, `(round, borsh bytes)`, sorted by round.
    fn manifests(&self) -> Result<Vec<(Round, Vec<u8>)>, StoreError>;
}

/// Reads a borsh metadata record.
pub fn read_meta<T: BorshDeserialize>(
    store: &dyn Store,
    key: MetaKey,
) -> Result<Option<T>, StoreError> {
    match store.get_meta(key)? {
        None => Ok(None),
        Some(bytes) => borsh::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("meta {key:?}: {e}"))),
    }
}

/// Sorted reads from a consistent view of committed state.
pub trait StateSource {
    /// Up to `limit` objects with id strictly greater than `after`, sorted.
    fn next_objects(
        &self,
        after: Option<&ObjectId>,
        limit: usize,
    ) -> Result<Vec<Object>, StoreError>;
    /// Up to `limit` outcomes with hash strictly greater than `after`, sorted.
    fn next_outcomes(
        &self,
        after: Option<&Hash>,
        limit: usize,
    ) -> Result<Vec<(Hash, TxOutcome)>, StoreError>;
}

impl<S: Store + ?Sized> StateSource for S {
    fn next_objects(
        &self,
        after: Option<&ObjectId>,
        limit: usize,
    ) -> Result<Vec<Object>, StoreError> {
        Store::objects_after(self, after, limit)
    }

    fn next_outcomes(
        &self,
        after: Option<&Hash>,
        limit: usize,
    ) -> Result<Vec<(Hash, TxOutcome)>, StoreError> {
        Store::outcomes_after(self, after, limit)
    }
}
