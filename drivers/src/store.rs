//! The fjall implementation of the core's `Store`.
//!
//! One keyspace per kind of record (objects, vertices, the round index,
//! commit marks, transaction outcomes, metadata), written through fjall's
//! cross-keyspace atomic batches. A batch the core marks durable is fsynced
//! before `write` returns. A lock file keeps two processes from opening one
//! data directory.
//!
//! Key layout: objects and vertices by their 32-byte id; the round index is
//! `round (u64 big-endian) ‖ vertex hash`, so a range scan returns vertices in
//! (round, hash) order, the order the core asks for.

use bluepods_core::snapshot::StateSource;
use bluepods_core::store::{MetaKey, Store, StoreError, StoredVertex, WriteBatch, WriteOp};
use bluepods_core::tx::{Object, TxOutcome};
use bluepods_core::{Hash, ObjectId, Round, Vertex};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode, Readable};
use std::fs::File;
use std::path::{Path, PathBuf};

#[path = "store_staging.rs"]
mod staging;

/// A fjall-backed store in a data directory.
pub struct FjallStore {
    db: Database,
    objects: Keyspace,
    vertices: Keyspace,
    rounds: Keyspace,
    committed: Keyspace,
    outcomes: Keyspace,
    meta: Keyspace,
    chunks: Keyspace,
    manifests: Keyspace,
    /// Objects and outcomes being staged by a snapshot sync.
    staging: Option<(Keyspace, Keyspace)>,
    /// Generation of the live object and outcome keyspaces.
    generation: u64,
    _lock: File,
    path: PathBuf,
}

/// Why a data directory could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Another process holds the lock.
    #[error("data directory {0} is in use by another bluepods-node process")]
    Locked(PathBuf),
    /// The directory or database could not be opened.
    #[error("cannot open data directory {path}: {error}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// What failed.
        error: String,
    },
}

/// Adds to `b` the removal of every key of `keyspace` in `first ..= last`.
fn remove_range(
    b: &mut fjall::OwnedWriteBatch,
    keyspace: &Keyspace,
    first: &[u8],
    last: &[u8],
) -> Result<(), StoreError> {
    for guard in keyspace.range(first.to_vec()..=last.to_vec()) {
        b.remove(keyspace, guard.key().map_err(io)?);
    }
    Ok(())
}

fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(e.to_string())
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

/// Memtable size per keyspace. fjall's default (64 MiB) lets a bulk write,
/// such as staging a large snapshot, hold two such tables (active and
/// flushing) in memory; a smaller one keeps a joiner's memory bounded at
/// little cost in write speed.
const MEMTABLE_BYTES: u64 = 16 * 1024 * 1024;

fn keyspace_options() -> KeyspaceCreateOptions {
    KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE_BYTES)
}

/// fjall's background threads (flushes and compactions). One: with two or
/// more, fjall 3's first worker hands every compaction request back to the
/// queue while another worker compacts, and picks it up again at once — a
/// busy loop that burned half a core for the length of every compaction.
/// A joiner's bulk staging queues a compaction per ingestion; measured on
/// a 1,000,000-object join, the spin took 0.3 CPU-seconds of a 1-second
/// join on two cores (issue 14).
const FJALL_WORKERS: usize = 1;

/// Meta key of the live state generation (u64 big-endian).
const GENERATION_KEY: &[u8] = b"state_generation";

fn objects_name(generation: u64) -> String {
    format!("objects.{generation}")
}

fn outcomes_name(generation: u64) -> String {
    format!("outcomes.{generation}")
}

fn round_key(round: Round, hash: &Hash) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..8].copy_from_slice(&round.0.to_be_bytes());
    k[8..].copy_from_slice(hash.as_bytes());
    k
}

impl FjallStore {
    /// Opens (or creates) the store under `dir/db`, taking `dir/LOCK`.
    pub fn open(dir: &Path) -> Result<Self, OpenError> {
        let fail = |e: &dyn std::fmt::Display| OpenError::Io {
            path: dir.to_path_buf(),
            error: e.to_string(),
        };
        std::fs::create_dir_all(dir).map_err(|e| fail(&e))?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("LOCK"))
            .map_err(|e| fail(&e))?;
        if lock.try_lock().is_err() {
            return Err(OpenError::Locked(dir.to_path_buf()));
        }
        let db = Database::builder(dir.join("db"))
            .worker_threads(FJALL_WORKERS)
            .open()
            .map_err(|e| fail(&e))?;
        let ks = |name: &str| db.keyspace(name, keyspace_options).map_err(|e| fail(&e));
        let meta = ks("meta")?;
        let generation = match meta.get(GENERATION_KEY).map_err(|e| fail(&e))? {
            None => 0,
            Some(v) => u64::from_be_bytes(
                v.as_ref()
                    .try_into()
                    .map_err(|_| fail(&"bad state generation"))?,
            ),
        };
        let store = FjallStore {
            objects: ks(&objects_name(generation))?,
            vertices: ks("vertices")?,
            rounds: ks("rounds")?,
            committed: ks("committed")?,
            outcomes: ks(&outcomes_name(generation))?,
            meta,
            chunks: ks("snapshot_chunks")?,
            manifests: ks("snapshot_manifests")?,
            staging: None,
            generation,
            db,
            _lock: lock,
            path: dir.to_path_buf(),
        };
        store.drop_other_generations().map_err(|e| fail(&e))?;
        Ok(store)
    }

    /// Removes object and outcome keyspaces of other generations: leftovers
    /// of a staging area abandoned by a crash, or of the state a snapshot
    /// replaced.
    fn drop_other_generations(&self) -> Result<(), StoreError> {
        // The next generation is a staging area a restarted download may
        // resume (`resume_staging`); `begin_staging` wipes it otherwise.
        let keep = [
            objects_name(self.generation),
            outcomes_name(self.generation),
            objects_name(self.generation + 1),
            outcomes_name(self.generation + 1),
        ];
        for name in self.db.list_keyspace_names() {
            let name: &str = name.as_ref();
            let generational = name.starts_with("objects.") || name.starts_with("outcomes.");
            if generational && !keep.iter().any(|k| k == name) {
                let handle = self.db.keyspace(name, keyspace_options).map_err(io)?;
                self.db.delete_keyspace(handle).map_err(io)?;
            }
        }
        Ok(())
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Applies `ops` (plus whatever `extra` adds) in one fjall batch.
    fn commit_ops(
        &mut self,
        ops: Vec<WriteOp>,
        durable: bool,
        extra: impl FnOnce(&mut fjall::OwnedWriteBatch),
    ) -> Result<(), StoreError> {
        let mut b = self.db.batch();
        if durable {
            b = b.durability(Some(PersistMode::SyncAll));
        }
        for op in ops {
            match op {
                WriteOp::PutObject(o) => {
                    let bytes = borsh::to_vec(&o).map_err(io)?;
                    b.insert(&self.objects, o.id.as_bytes().to_vec(), bytes);
                }
                WriteOp::DeleteObject(id) => b.remove(&self.objects, id.as_bytes().to_vec()),
                WriteOp::PutVertex { hash, vertex } => {
                    let bytes = borsh::to_vec(&*vertex).map_err(io)?;
                    b.insert(&self.vertices, hash.as_bytes().to_vec(), bytes);
                    b.insert(
                        &self.rounds,
                        round_key(vertex.round(), &hash).to_vec(),
                        Vec::new(),
                    );
                }
                WriteOp::MarkCommitted { hash, anchor } => {
                    b.insert(
                        &self.committed,
                        hash.as_bytes().to_vec(),
                        anchor.0.to_be_bytes().to_vec(),
                    );
                }
                WriteOp::PutTxOutcome { hash, outcome } => {
                    let bytes = borsh::to_vec(&outcome).map_err(io)?;
                    b.insert(&self.outcomes, hash.as_bytes().to_vec(), bytes);
                }
                WriteOp::PutMeta { key, value } => b.insert(&self.meta, key.as_bytes(), value),
                WriteOp::DeleteMeta(key) => b.remove(&self.meta, key.as_bytes()),
                WriteOp::PutSnapshotChunk {
                    round,
                    index,
                    bytes,
                } => {
                    b.insert(&self.chunks, chunk_key(round, index).to_vec(), bytes);
                }
                WriteOp::PutManifest { round, bytes } => {
                    b.insert(&self.manifests, round.0.to_be_bytes().to_vec(), bytes);
                }
                WriteOp::DeleteSnapshot(round) => {
                    for guard in self.chunks.prefix(round.0.to_be_bytes()) {
                        b.remove(&self.chunks, guard.key().map_err(io)?);
                    }
                    b.remove(&self.manifests, round.0.to_be_bytes().to_vec());
                }
                WriteOp::PutStagedObject(o) => {
                    let (objects, _) = self.staging.as_ref().ok_or_else(no_staging)?;
                    let bytes = borsh::to_vec(&o).map_err(io)?;
                    b.insert(objects, o.id.as_bytes().to_vec(), bytes);
                }
                WriteOp::PutStagedOutcome { hash, outcome } => {
                    let (_, outcomes) = self.staging.as_ref().ok_or_else(no_staging)?;
                    let bytes = borsh::to_vec(&outcome).map_err(io)?;
                    b.insert(outcomes, hash.as_bytes().to_vec(), bytes);
                }
                WriteOp::StageChunk(_) => {
                    // `write` stages chunks before anything else.
                    return Err(StoreError::Io("a chunk to stage in a commit".into()));
                }
                WriteOp::DeleteStagedObjects { first, last } => {
                    let (objects, _) = self.staging.as_ref().ok_or_else(no_staging)?;
                    remove_range(&mut b, objects, first.as_bytes(), last.as_bytes())?;
                }
                WriteOp::DeleteStagedOutcomes { first, last } => {
                    let (_, outcomes) = self.staging.as_ref().ok_or_else(no_staging)?;
                    remove_range(&mut b, outcomes, first.as_bytes(), last.as_bytes())?;
                }
            }
        }
        extra(&mut b);
        b.commit().map_err(io)
    }

    /// Approximate number of objects (fast; exact after compaction).
    pub fn approximate_objects(&self) -> usize {
        self.objects.approximate_len()
    }
}

impl Store for FjallStore {
    fn get_object(&self, id: &ObjectId) -> Result<Option<Object>, StoreError> {
        match self.objects.get(id.as_bytes()).map_err(io)? {
            None => Ok(None),
            Some(v) => borsh::from_slice(&v)
                .map(Some)
                .map_err(|e| corrupt("object", e)),
        }
    }

    fn objects_after(
        &self,
        after: Option<&ObjectId>,
        limit: usize,
    ) -> Result<Vec<Object>, StoreError> {
        decode_objects(
            self.objects
                .range::<Vec<u8>, _>(keys_from(after.map(ObjectId::as_bytes))),
            limit,
        )
    }

    fn get_vertex(&self, hash: &Hash) -> Result<Option<StoredVertex>, StoreError> {
        let Some(bytes) = self.vertices.get(hash.as_bytes()).map_err(io)? else {
            return Ok(None);
        };
        let vertex: Vertex = borsh::from_slice(&bytes).map_err(|e| corrupt("vertex", e))?;
        let committed_at = match self.committed.get(hash.as_bytes()).map_err(io)? {
            None => None,
            Some(v) => {
                let arr: [u8; 8] = v
                    .as_ref()
                    .try_into()
                    .map_err(|e| corrupt("commit mark", e))?;
                Some(Round(u64::from_be_bytes(arr)))
            }
        };
        Ok(Some(StoredVertex {
            vertex: vertex.into(),
            committed_at,
        }))
    }

    fn vertices_in_rounds(
        &self,
        from: Round,
        to: Round,
        limit: usize,
    ) -> Result<Vec<StoredVertex>, StoreError> {
        if from > to {
            return Ok(Vec::new());
        }
        let lo = round_key(from, &Hash([0; 32]));
        let hi = round_key(to, &Hash([0xff; 32]));
        let mut out = Vec::new();
        for guard in self.rounds.range(lo..=hi).take(limit) {
            let key = guard.key().map_err(io)?;
            let hash = Hash(key[8..].try_into().map_err(|e| corrupt("round index", e))?);
            match self.get_vertex(&hash)? {
                Some(v) => out.push(v),
                None => {
                    return Err(StoreError::Corrupt(format!(
                        "round index names missing vertex {hash}"
                    )))
                }
            }
        }
        Ok(out)
    }

    fn outcomes_after(
        &self,
        after: Option<&Hash>,
        limit: usize,
    ) -> Result<Vec<(Hash, TxOutcome)>, StoreError> {
        decode_outcomes(
            self.outcomes
                .range::<Vec<u8>, _>(keys_from(after.map(Hash::as_bytes))),
            limit,
        )
    }

    fn staged_objects(
        &self,
        first: &ObjectId,
        last: &ObjectId,
        limit: usize,
    ) -> Result<Vec<Object>, StoreError> {
        let Some((objects, _)) = &self.staging else {
            return Ok(Vec::new());
        };
        let range = first.as_bytes().to_vec()..=last.as_bytes().to_vec();
        decode_objects(objects.range(range), limit)
    }

    fn staged_outcomes(
        &self,
        first: &Hash,
        last: &Hash,
        limit: usize,
    ) -> Result<Vec<(Hash, TxOutcome)>, StoreError> {
        let Some((_, outcomes)) = &self.staging else {
            return Ok(Vec::new());
        };
        let range = first.as_bytes().to_vec()..=last.as_bytes().to_vec();
        decode_outcomes(outcomes.range(range), limit)
    }

    fn tx_outcome(&self, hash: &Hash) -> Result<Option<TxOutcome>, StoreError> {
        match self.outcomes.get(hash.as_bytes()).map_err(io)? {
            None => Ok(None),
            Some(v) => borsh::from_slice(&v)
                .map(Some)
                .map_err(|e| corrupt("tx outcome", e)),
        }
    }

    fn get_meta(&self, key: MetaKey) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .meta
            .get(key.as_bytes())
            .map_err(io)?
            .map(|v| v.to_vec()))
    }

    fn chunk_stager(&self) -> Option<std::sync::Arc<dyn bluepods_core::store::ChunkStager>> {
        self.stager().map(|s| {
            std::sync::Arc::new(s) as std::sync::Arc<dyn bluepods_core::store::ChunkStager>
        })
    }

    fn write(&mut self, batch: WriteBatch) -> Result<(), StoreError> {
        let ops = self.stage_chunks(batch.ops)?;
        self.commit_ops(ops, batch.durable, |_| {})
    }

    fn begin_staging(&mut self) -> Result<(), StoreError> {
        let next = self.generation + 1;
        self.staging = None;
        for name in [objects_name(next), outcomes_name(next)] {
            if self.db.keyspace_exists(&name) {
                let handle = self.db.keyspace(&name, keyspace_options).map_err(io)?;
                self.db.delete_keyspace(handle).map_err(io)?;
            }
        }
        let open = |name: String| self.db.keyspace(&name, keyspace_options).map_err(io);
        self.staging = Some((open(objects_name(next))?, open(outcomes_name(next))?));
        Ok(())
    }

    fn resume_staging(&mut self) -> Result<bool, StoreError> {
        let next = self.generation + 1;
        let (o, t) = (objects_name(next), outcomes_name(next));
        if !(self.db.keyspace_exists(&o) && self.db.keyspace_exists(&t)) {
            return Ok(false);
        }
        let open = |name: String| self.db.keyspace(&name, keyspace_options).map_err(io);
        self.staging = Some((open(o)?, open(t)?));
        Ok(true)
    }

    fn adopt_staging(&mut self, batch: WriteBatch) -> Result<(), StoreError> {
        let (objects, outcomes) = self.staging.take().ok_or_else(no_staging)?;
        let next = self.generation + 1;
        // The caller's writes go to the new state, and the generation switch
        // rides in the same atomic, durable commit: after a crash either the
        // old state or the complete new one is live, never a mix.
        let old_objects = std::mem::replace(&mut self.objects, objects);
        let old_outcomes = std::mem::replace(&mut self.outcomes, outcomes);
        let meta = self.meta.clone();
        let switch = move |b: &mut fjall::OwnedWriteBatch| {
            b.insert(&meta, GENERATION_KEY.to_vec(), next.to_be_bytes().to_vec());
        };
        if let Err(e) = self.commit_ops(batch.ops, true, switch) {
            let staged_objects = std::mem::replace(&mut self.objects, old_objects);
            let staged_outcomes = std::mem::replace(&mut self.outcomes, old_outcomes);
            self.staging = Some((staged_objects, staged_outcomes));
            return Err(e);
        }
        self.generation = next;
        self.db.delete_keyspace(old_objects).map_err(io)?;
        self.db.delete_keyspace(old_outcomes).map_err(io)
    }

    fn state_view(&self) -> Result<Box<dyn StateSource + Send>, StoreError> {
        Ok(Box::new(FjallView {
            snapshot: self.db.snapshot(),
            objects: self.objects.clone(),
            outcomes: self.outcomes.clone(),
        }))
    }

    fn snapshot_chunk(&self, round: Round, index: u32) -> Result<Option<Vec<u8>>, StoreError> {
        read_chunk(&self.chunks, round, index)
    }

    fn chunk_reader(&self) -> Option<std::sync::Arc<dyn bluepods_core::store::ChunkReader>> {
        Some(std::sync::Arc::new(ChunkKeyspace(self.chunks.clone())))
    }

    fn manifests(&self) -> Result<Vec<(Round, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        for guard in self.manifests.iter() {
            let (k, v) = guard.into_inner().map_err(io)?;
            let arr: [u8; 8] = k
                .as_ref()
                .try_into()
                .map_err(|e| corrupt("manifest key", e))?;
            out.push((Round(u64::from_be_bytes(arr)), v.to_vec()));
        }
        Ok(out)
    }
}

/// The key range strictly after a 32-byte key.
fn keys_from(after: Option<&[u8; 32]>) -> (std::ops::Bound<Vec<u8>>, std::ops::Bound<Vec<u8>>) {
    use std::ops::Bound;
    let lower = match after {
        Some(key) => Bound::Excluded(key.to_vec()),
        None => Bound::Unbounded,
    };
    (lower, Bound::Unbounded)
}

/// Decodes up to `limit` objects from a key-ordered iterator.
fn decode_objects(iter: fjall::Iter, limit: usize) -> Result<Vec<Object>, StoreError> {
    let mut out = Vec::new();
    for guard in iter.take(limit) {
        let v = guard.value().map_err(io)?;
        out.push(borsh::from_slice(&v).map_err(|e| corrupt("object", e))?);
    }
    Ok(out)
}

/// Decodes up to `limit` outcomes from a key-ordered iterator.
fn decode_outcomes(iter: fjall::Iter, limit: usize) -> Result<Vec<(Hash, TxOutcome)>, StoreError> {
    let mut out = Vec::new();
    for guard in iter.take(limit) {
        let (k, v) = guard.into_inner().map_err(io)?;
        let key: [u8; 32] = k
            .as_ref()
            .try_into()
            .map_err(|e| corrupt("outcome key", e))?;
        out.push((
            Hash(key),
            borsh::from_slice(&v).map_err(|e| corrupt("tx outcome", e))?,
        ));
    }
    Ok(out)
}

fn no_staging() -> StoreError {
    StoreError::Io("no staging area: begin_staging was not called".into())
}

/// The chunk keyspace, read from the driver's blocking threads while the
/// event loop goes on (fjall handles are shareable).
struct ChunkKeyspace(Keyspace);

impl bluepods_core::store::ChunkReader for ChunkKeyspace {
    fn snapshot_chunk(&self, round: Round, index: u32) -> Result<Option<Vec<u8>>, StoreError> {
        read_chunk(&self.0, round, index)
    }
}

fn read_chunk(chunks: &Keyspace, round: Round, index: u32) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(chunks
        .get(chunk_key(round, index))
        .map_err(io)?
        .map(|v| v.to_vec()))
}

fn chunk_key(round: Round, index: u32) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..8].copy_from_slice(&round.0.to_be_bytes());
    k[8..].copy_from_slice(&index.to_be_bytes());
    k
}

/// A point-in-time read view (fjall MVCC snapshot) of the objects.
struct FjallView {
    snapshot: fjall::Snapshot,
    objects: Keyspace,
    outcomes: Keyspace,
}

impl StateSource for FjallView {
    fn next_outcomes(
        &self,
        after: Option<&Hash>,
        limit: usize,
    ) -> Result<Vec<(Hash, TxOutcome)>, StoreError> {
        decode_outcomes(
            self.snapshot
                .range::<Vec<u8>, _>(&self.outcomes, keys_from(after.map(Hash::as_bytes))),
            limit,
        )
    }

    fn next_objects(
        &self,
        after: Option<&ObjectId>,
        limit: usize,
    ) -> Result<Vec<Object>, StoreError> {
        let range = self
            .snapshot
            .range::<Vec<u8>, _>(&self.objects, keys_from(after.map(ObjectId::as_bytes)));
        decode_objects(range, limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bluepods_core::{Keypair, PublicKey};

    #[test]
    fn writes_survive_reopen_and_the_lock_refuses_a_second_opener() {
        let dir = tempfile::tempdir().unwrap();
        let obj = Object {
            id: ObjectId([3; 32]),
            version: 1,
            owner: PublicKey([1; 32]),
            data: vec![1, 2],
        };
        {
            let mut s = FjallStore::open(dir.path()).unwrap();
            assert!(matches!(
                FjallStore::open(dir.path()),
                Err(OpenError::Locked(_))
            ));
            let mut batch = WriteBatch::new(true);
            batch.push(WriteOp::PutObject(obj.clone()));
            batch.put_meta(MetaKey::OwnLastRound, &Round(9));
            s.write(batch).unwrap();
        }
        let s = FjallStore::open(dir.path()).unwrap();
        assert_eq!(s.get_object(&obj.id).unwrap(), Some(obj.clone()));
        assert_eq!(
            Store::objects_after(&s, None, 10).unwrap(),
            vec![obj.clone()]
        );
        assert!(Store::objects_after(&s, Some(&obj.id), 10)
            .unwrap()
            .is_empty());
        let r: Option<Round> = bluepods_core::store::read_meta(&s, MetaKey::OwnLastRound).unwrap();
        assert_eq!(r, Some(Round(9)));
    }

    #[test]
    fn vertices_come_back_in_round_order_with_commit_marks() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = FjallStore::open(dir.path()).unwrap();
        let key = Keypair::from_label("v");
        let mut batch = WriteBatch::new(false);
        let mut hashes = Vec::new();
        for r in [3u64, 1, 2] {
            let v = bluepods_core::vertex::VertexBody {
                chain_id: Hash([0; 32]),
                round: Round(r),
                author: key.public(),
                parents: vec![],
                txs: vec![],
                attestation: None,
                evidence: Vec::new(),
                epoch_vote: None,
            }
            .sign(&key);
            hashes.push(v.hash());
            batch.push(WriteOp::PutVertex {
                hash: v.hash(),
                vertex: v.into(),
            });
        }
        batch.push(WriteOp::MarkCommitted {
            hash: hashes[1],
            anchor: Round(2),
        });
        s.write(batch).unwrap();
        let got = s.vertices_in_rounds(Round(1), Round(2), 10).unwrap();
        assert_eq!(
            got.iter().map(|v| v.vertex.round().0).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(got[0].committed_at, Some(Round(2)));
        assert_eq!(got[1].committed_at, None);
    }

    #[test]
    fn a_state_view_ignores_later_writes_and_snapshots_are_deleted_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = FjallStore::open(dir.path()).unwrap();
        let obj = |b: u8| Object {
            id: ObjectId([b; 32]),
            version: 1,
            owner: PublicKey([0; 32]),
            data: vec![b],
        };
        let mut batch = WriteBatch::new(false);
        batch.push(WriteOp::PutObject(obj(1)));
        s.write(batch).unwrap();
        let view = s.state_view().unwrap();
        let mut batch = WriteBatch::new(false);
        batch.push(WriteOp::PutObject(obj(2)));
        batch.push(WriteOp::PutSnapshotChunk {
            round: Round(5),
            index: 0,
            bytes: vec![1].into(),
        });
        batch.push(WriteOp::PutSnapshotChunk {
            round: Round(5),
            index: 1,
            bytes: vec![2].into(),
        });
        batch.push(WriteOp::PutSnapshotChunk {
            round: Round(6),
            index: 0,
            bytes: vec![3].into(),
        });
        batch.push(WriteOp::PutManifest {
            round: Round(5),
            bytes: vec![9],
        });
        s.write(batch).unwrap();
        assert_eq!(view.next_objects(None, 10).unwrap(), vec![obj(1)]);
        assert_eq!(Store::objects_after(&s, None, 10).unwrap().len(), 2);
        assert_eq!(s.snapshot_chunk(Round(5), 1).unwrap(), Some(vec![2]));
        assert_eq!(s.manifests().unwrap(), vec![(Round(5), vec![9])]);
        // The reader the driver serves chunks with, off the event loop,
        // sees what the store holds, then and after a deletion.
        let reader = s.chunk_reader().expect("fjall chunks are shareable");
        let on_a_thread = std::thread::spawn({
            let reader = reader.clone();
            move || reader.snapshot_chunk(Round(5), 1).unwrap()
        });
        assert_eq!(on_a_thread.join().unwrap(), Some(vec![2]));
        let mut batch = WriteBatch::new(true);
        batch.push(WriteOp::DeleteSnapshot(Round(5)));
        s.write(batch).unwrap();
        assert_eq!(reader.snapshot_chunk(Round(5), 1).unwrap(), None);
        assert_eq!(s.snapshot_chunk(Round(5), 0).unwrap(), None);
        assert_eq!(s.snapshot_chunk(Round(6), 0).unwrap(), Some(vec![3]));
        assert!(s.manifests().unwrap().is_empty());
    }

    #[test]
    fn staging_replaces_the_state_atomically_and_an_abandoned_staging_leaves_it_alone() {
        let dir = tempfile::tempdir().unwrap();
        let obj = |b: u8| Object {
            id: ObjectId([b; 32]),
            version: 1,
            owner: PublicKey([0; 32]),
            data: vec![b],
        };
        {
            let mut s = FjallStore::open(dir.path()).unwrap();
            let mut batch = WriteBatch::new(true);
            batch.push(WriteOp::PutObject(obj(1)));
            s.write(batch).unwrap();
            // Abandoned: staged but never adopted (a crash mid-sync).
            s.begin_staging().unwrap();
            let mut batch = WriteBatch::new(false);
            batch.push(WriteOp::PutStagedObject(obj(7)));
            s.write(batch).unwrap();
        }
        let mut s = FjallStore::open(dir.path()).unwrap();
        assert_eq!(Store::objects_after(&s, None, 10).unwrap(), vec![obj(1)]);
        s.begin_staging().unwrap();
        let mut batch = WriteBatch::new(false);
        batch.push(WriteOp::PutStagedObject(obj(2)));
        for b in [4, 5, 6, 9] {
            batch.push(WriteOp::PutStagedObject(obj(b)));
        }
        batch.push(WriteOp::PutStagedOutcome {
            hash: Hash([5; 32]),
            outcome: TxOutcome::Committed { round: Round(3) },
        });
        s.write(batch).unwrap();
        // A chunk of another snapshot that the next one does not list:
        // its key range leaves the staging area, nothing else does.
        let mut batch = WriteBatch::new(false);
        batch.push(WriteOp::DeleteStagedObjects {
            first: ObjectId([4; 32]),
            last: ObjectId([9; 32]),
        });
        s.write(batch).unwrap();
        assert_eq!(
            Store::objects_after(&s, None, 10).unwrap(),
            vec![obj(1)],
            "staging is invisible"
        );
        let mut adopt = WriteBatch::new(false);
        adopt.put_meta(MetaKey::OwnLastRound, &Round(11));
        s.adopt_staging(adopt).unwrap();
        assert_eq!(Store::objects_after(&s, None, 10).unwrap(), vec![obj(2)]);
        drop(s);
        let s = FjallStore::open(dir.path()).unwrap();
        assert_eq!(Store::objects_after(&s, None, 10).unwrap(), vec![obj(2)]);
        assert_eq!(s.outcomes_after(None, 10).unwrap().len(), 1);
        let r: Option<Round> = bluepods_core::store::read_meta(&s, MetaKey::OwnLastRound).unwrap();
        assert_eq!(r, Some(Round(11)));
    }

    /// A chunk staged over its territory (`node/snapshot/staging.rs`): one
    /// batch deletes the range and puts the chunk's records back, some
    /// under the keys it just deleted. The puts must win, and the staged
    /// reads a delta request is built from must see exactly them.
    #[test]
    fn a_batch_that_clears_a_staged_range_and_restages_some_of_it_keeps_the_new_records() {
        let dir = tempfile::tempdir().unwrap();
        let obj = |b: u8, version: u64| Object {
            id: ObjectId([b; 32]),
            version,
            owner: PublicKey([0; 32]),
            data: vec![b],
        };
        let mut s = FjallStore::open(dir.path()).unwrap();
        assert!(s
            .staged_objects(&ObjectId([0; 32]), &ObjectId([0xff; 32]), 10)
            .unwrap()
            .is_empty());
        s.begin_staging().unwrap();
        let mut batch = WriteBatch::new(false);
        for b in [2, 4, 5, 6, 9] {
            batch.push(WriteOp::PutStagedObject(obj(b, 1)));
        }
        batch.push(WriteOp::PutStagedOutcome {
            hash: Hash([5; 32]),
            outcome: TxOutcome::Committed { round: Round(3) },
        });
        s.write(batch).unwrap();
        assert_eq!(
            s.staged_objects(&ObjectId([4; 32]), &ObjectId([6; 32]), 2)
                .unwrap(),
            vec![obj(4, 1), obj(5, 1)],
            "a range, in id order, up to the limit"
        );
        let mut batch = WriteBatch::new(false);
        batch.push(WriteOp::DeleteStagedObjects {
            first: ObjectId([3; 32]),
            last: ObjectId([9; 32]),
        });
        batch.push(WriteOp::PutStagedObject(obj(4, 2)));
        batch.push(WriteOp::PutStagedObject(obj(6, 1)));
        s.write(batch).unwrap();
        let all = s
            .staged_objects(&ObjectId([0; 32]), &ObjectId([0xff; 32]), 10)
            .unwrap();
        assert_eq!(all, vec![obj(2, 1), obj(4, 2), obj(6, 1)]);
        assert_eq!(
            s.staged_outcomes(&Hash([0; 32]), &Hash([0xff; 32]), 10)
                .unwrap()
                .len(),
            1
        );
        drop(s);
        let mut s = FjallStore::open(dir.path()).unwrap();
        assert!(s.resume_staging().unwrap());
        let all = s
            .staged_objects(&ObjectId([0; 32]), &ObjectId([0xff; 32]), 10)
            .unwrap();
        assert_eq!(
            all,
            vec![obj(2, 1), obj(4, 2), obj(6, 1)],
            "after a restart"
        );
    }
}
