//! The in-memory store: what the harness, the simulator and the tests run
//! the node on.

use super::{MetaKey, StateSource, Store, StoreError, StoredVertex, WriteBatch, WriteOp};
use crate::ids::{Hash, ObjectId, Round};
use crate::tx::{Object, TxOutcome};
use crate::verified_chunk::ChunkKind;
use std::collections::BTreeMap;

/// An in-memory store. `Clone` gives an independent copy, which tests use to
/// compare states.
#[derive(Clone, Debug, Default)]
pub struct MemStore {
    objects: BTreeMap<ObjectId, Object>,
    vertices: BTreeMap<Hash, StoredVertex>,
    rounds: BTreeMap<(Round, Hash), ()>,
    outcomes: BTreeMap<Hash, TxOutcome>,
    meta: BTreeMap<MetaKey, Vec<u8>>,
    chunks: BTreeMap<(Round, u32), std::sync::Arc<[u8]>>,
    manifests: BTreeMap<Round, Vec<u8>>,
    staging: Option<(BTreeMap<ObjectId, Object>, BTreeMap<Hash, TxOutcome>)>,
    /// Number of batches written, for tests.
    pub batches_written: u64,
    /// Number of durable batches written, for tests.
    pub durable_batches_written: u64,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// All objects, sorted by id.
    pub fn objects(&self) -> impl Iterator<Item = &Object> {
        self.objects.values()
    }

    /// All transaction outcomes, sorted by hash.
    pub fn outcomes(&self) -> impl Iterator<Item = (&Hash, &TxOutcome)> {
        self.outcomes.iter()
    }
}

impl Store for MemStore {
    fn get_object(&self, id: &ObjectId) -> Result<Option<Object>, StoreError> {
        Ok(self.objects.get(id).cloned())
    }

    fn objects_after(
        &self,
        after: Option<&ObjectId>,
        limit: usize,
    ) -> Result<Vec<Object>, StoreError> {
        use std::ops::Bound;
        let lower = match after {
            Some(id) => Bound::Excluded(*id),
            None => Bound::Unbounded,
        };
        Ok(self
            .objects
            .range((lower, Bound::Unbounded))
            .take(limit)
            .map(|(_, o)| o.clone())
            .collect())
    }

    fn get_vertex(&self, hash: &Hash) -> Result<Option<StoredVertex>, StoreError> {
        Ok(self.vertices.get(hash).cloned())
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
        Ok(self
            .rounds
            .range((from, Hash([0; 32]))..=(to, Hash([0xff; 32])))
            .take(limit)
            .filter_map(|((_, h), _)| self.vertices.get(h).cloned())
            .collect())
    }

    fn tx_outcome(&self, hash: &Hash) -> Result<Option<TxOutcome>, StoreError> {
        Ok(self.outcomes.get(hash).cloned())
    }

    fn outcomes_after(
        &self,
        after: Option<&Hash>,
        limit: usize,
    ) -> Result<Vec<(Hash, TxOutcome)>, StoreError> {
        Ok(range_after(&self.outcomes, after, limit))
    }

    fn get_meta(&self, key: MetaKey) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.meta.get(&key).cloned())
    }

    fn write(&mut self, batch: WriteBatch) -> Result<(), StoreError> {
        for op in batch.ops {
            match op {
                WriteOp::PutObject(o) => {
                    self.objects.insert(o.id, o);
                }
                WriteOp::DeleteObject(id) => {
                    self.objects.remove(&id);
                }
                WriteOp::PutVertex { hash, vertex } => {
                    self.rounds.insert((vertex.round(), hash), ());
                    let committed_at = self.vertices.get(&hash).and_then(|s| s.committed_at);
                    self.vertices.insert(
                        hash,
                        StoredVertex {
                            vertex,
                            committed_at,
                        },
                    );
                }
                WriteOp::MarkCommitted { hash, anchor } => {
                    if let Some(s) = self.vertices.get_mut(&hash) {
                        s.committed_at = Some(anchor);
                    }
                }
                WriteOp::PutTxOutcome { hash, outcome } => {
                    self.outcomes.insert(hash, outcome);
                }
                WriteOp::PutMeta { key, value } => {
                    self.meta.insert(key, value);
                }
                WriteOp::DeleteMeta(key) => {
                    self.meta.remove(&key);
                }
                WriteOp::PutSnapshotChunk {
                    round,
                    index,
                    bytes,
                } => {
                    self.chunks.insert((round, index), bytes);
                }
                WriteOp::PutManifest { round, bytes } => {
                    self.manifests.insert(round, bytes);
                }
                WriteOp::DeleteSnapshot(round) => {
                    self.manifests.remove(&round);
                    self.chunks.retain(|(r, _), _| *r != round);
                }
                WriteOp::PutStagedObject(o) => {
                    let (objects, _) = self.staging.as_mut().ok_or_else(no_staging)?;
                    objects.insert(o.id, o);
                }
                WriteOp::PutStagedOutcome { hash, outcome } => {
                    let (_, outcomes) = self.staging.as_mut().ok_or_else(no_staging)?;
                    outcomes.insert(hash, outcome);
                }
                WriteOp::StageChunk(super::ChunkToStage { first, last, chunk }) => {
                    let (objects, outcomes) = self.staging.as_mut().ok_or_else(no_staging)?;
                    let corrupt = StoreError::Corrupt;
                    match chunk.kind() {
                        ChunkKind::Objects => {
                            let (first, last) = (ObjectId(first), ObjectId(last));
                            objects.retain(|id, _| !(first..=last).contains(id));
                            for o in chunk.objects().map_err(corrupt)? {
                                objects.insert(o.id, o);
                            }
                        }
                        ChunkKind::Outcomes => {
                            let (first, last) = (Hash(first), Hash(last));
                            outcomes.retain(|h, _| !(first..=last).contains(h));
                            for (hash, outcome) in chunk.outcomes().map_err(corrupt)? {
                                outcomes.insert(hash, outcome);
                            }
                        }
                    }
                }
                WriteOp::DeleteStagedObjects { first, last } => {
                    let (objects, _) = self.staging.as_mut().ok_or_else(no_staging)?;
                    objects.retain(|id, _| !(first..=last).contains(id));
                }
                WriteOp::DeleteStagedOutcomes { first, last } => {
                    let (_, outcomes) = self.staging.as_mut().ok_or_else(no_staging)?;
                    outcomes.retain(|h, _| !(first..=last).contains(h));
                }
            }
        }
        self.batches_written += 1;
        if batch.durable {
            self.durable_batches_written += 1;
        }
        Ok(())
    }

    fn begin_staging(&mut self) -> Result<(), StoreError> {
        self.staging = Some(Default::default());
        Ok(())
    }

    fn resume_staging(&mut self) -> Result<bool, StoreError> {
        Ok(self.staging.is_some())
    }

    fn adopt_staging(&mut self, batch: WriteBatch) -> Result<(), StoreError> {
        let (objects, outcomes) = self.staging.take().ok_or_else(no_staging)?;
        self.objects = objects;
        self.outcomes = outcomes;
        self.write(WriteBatch {
            ops: batch.ops,
            durable: true,
        })
    }

    fn staged_objects(
        &self,
        first: &ObjectId,
        last: &ObjectId,
        limit: usize,
    ) -> Result<Vec<Object>, StoreError> {
        Ok(self.staging.as_ref().map_or_else(Vec::new, |(objects, _)| {
            objects
                .range(*first..=*last)
                .take(limit)
                .map(|(_, o)| o.clone())
                .collect()
        }))
    }

    fn staged_outcomes(
        &self,
        first: &Hash,
        last: &Hash,
        limit: usize,
    ) -> Result<Vec<(Hash, TxOutcome)>, StoreError> {
        Ok(self
            .staging
            .as_ref()
            .map_or_else(Vec::new, |(_, outcomes)| {
                outcomes
                    .range(*first..=*last)
                    .take(limit)
                    .map(|(h, o)| (*h, o.clone()))
                    .collect()
            }))
    }

    fn state_view(&self) -> Result<Box<dyn StateSource + Send>, StoreError> {
        Ok(Box::new(MemView {
            objects: self.objects.clone(),
            outcomes: self.outcomes.clone(),
        }))
    }

    fn snapshot_chunk(&self, round: Round, index: u32) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.chunks.get(&(round, index)).map(|b| b.to_vec()))
    }

    fn manifests(&self) -> Result<Vec<(Round, Vec<u8>)>, StoreError> {
        Ok(self
            .manifests
            .iter()
            .map(|(r, b)| (*r, b.clone()))
            .collect())
    }
}

fn no_staging() -> StoreError {
    StoreError::Io("no staging area: begin_staging was not called".into())
}

/// Up to `limit` values of `map` with key strictly greater than `after`.
fn range_after<K: Ord + Copy, V: Clone>(
    map: &BTreeMap<K, V>,
    after: Option<&K>,
    limit: usize,
) -> Vec<(K, V)> {
    use std::ops::Bound;
    let lower = after.map_or(Bound::Unbounded, |k| Bound::Excluded(*k));
    map.range((lower, Bound::Unbounded))
        .take(limit)
        .map(|(k, v)| (*k, v.clone()))
        .collect()
}

/// A frozen copy of a `MemStore`'s state.
struct MemView {
    objects: BTreeMap<ObjectId, Object>,
    outcomes: BTreeMap<Hash, TxOutcome>,
}

impl StateSource for MemView {
    fn next_objects(
        &self,
        after: Option<&ObjectId>,
        limit: usize,
    ) -> Result<Vec<Object>, StoreError> {
        Ok(range_after(&self.objects, after, limit)
            .into_iter()
            .map(|(_, o)| o)
            .collect())
    }

    fn next_outcomes(
        &self,
        after: Option<&Hash>,
        limit: usize,
    ) -> Result<Vec<(Hash, TxOutcome)>, StoreError> {
        Ok(range_after(&self.outcomes, after, limit))
    }
}
