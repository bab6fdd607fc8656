//! The in-memory store with crash semantics: what a node wrote without
//! `durable` since its last durable write is lost when its host crashes.
//!
//! Each node's "disk" outlives its host (turmoil drops a crashed host's
//! future and everything in it). Reads come from the live copy; a durable
//! write, and the staging switch (durable by contract), first applies the
//! writes pending since the last one to the disk copy. A restarted host
//! starts from the disk copy. This is the strictest model a real store can
//! show (fjall usually keeps more), so it finds code that trusts a write
//! it never asked to be durable.

use bluepods_core::snapshot::StateSource;
use bluepods_core::store::{MemStore, MetaKey, StoreError, StoredVertex, WriteBatch};
use bluepods_core::tx::{Object, TxOutcome};
use bluepods_core::{Hash, ObjectId, Round, Store};
use std::sync::{Arc, Mutex};

/// Writes since the last durable one, in order.
#[derive(Clone, Debug)]
enum Pending {
    Write(WriteBatch),
    BeginStaging,
    ResumeStaging,
}

/// What survives a crash.
#[derive(Debug, Default)]
pub struct Disk {
    durable: MemStore,
    pending: Vec<Pending>,
}

/// A node's disk, shared between its successive hosts.
pub type SharedDisk = Arc<Mutex<Disk>>;

/// The store a simulated node runs on.
#[derive(Debug)]
pub struct SimStore {
    live: MemStore,
    disk: SharedDisk,
}

impl SimStore {
    /// The store of a (re)starting node: what its disk holds.
    pub fn recover(disk: &SharedDisk) -> Self {
        let mut d = disk.lock().unwrap_or_else(|e| e.into_inner());
        d.pending.clear();
        SimStore {
            live: d.durable.clone(),
            disk: disk.clone(),
        }
    }

    fn record(&self, op: Pending, durable: bool) -> Result<(), StoreError> {
        let mut d = self.disk.lock().unwrap_or_else(|e| e.into_inner());
        d.pending.push(op);
        if durable {
            let ops = std::mem::take(&mut d.pending);
            for op in ops {
                match op {
                    Pending::Write(b) => d.durable.write(b)?,
                    Pending::BeginStaging => d.durable.begin_staging()?,
                    Pending::ResumeStaging => {
                        d.durable.resume_staging()?;
                    }
                }
            }
        }
        Ok(())
    }
}

impl Store for SimStore {
    fn get_object(&self, id: &ObjectId) -> Result<Option<Object>, StoreError> {
        self.live.get_object(id)
    }

    fn objects_after(
        &self,
        after: Option<&ObjectId>,
        limit: usize,
    ) -> Result<Vec<Object>, StoreError> {
        self.live.objects_after(after, limit)
    }

    fn get_vertex(&self, hash: &Hash) -> Result<Option<StoredVertex>, StoreError> {
        self.live.get_vertex(hash)
    }

    fn vertices_in_rounds(
        &self,
        from: Round,
        to: Round,
        limit: usize,
    ) -> Result<Vec<StoredVertex>, StoreError> {
        self.live.vertices_in_rounds(from, to, limit)
    }

    fn tx_outcome(&self, hash: &Hash) -> Result<Option<TxOutcome>, StoreError> {
        self.live.tx_outcome(hash)
    }

    fn outcomes_after(
        &self,
        after: Option<&Hash>,
        limit: usize,
    ) -> Result<Vec<(Hash, TxOutcome)>, StoreError> {
        self.live.outcomes_after(after, limit)
    }

    fn staged_objects(
        &self,
        first: &ObjectId,
        last: &ObjectId,
        limit: usize,
    ) -> Result<Vec<Object>, StoreError> {
        self.live.staged_objects(first, last, limit)
    }

    fn staged_outcomes(
        &self,
        first: &Hash,
        last: &Hash,
        limit: usize,
    ) -> Result<Vec<(Hash, TxOutcome)>, StoreError> {
        self.live.staged_outcomes(first, last, limit)
    }

    fn get_meta(&self, key: MetaKey) -> Result<Option<Vec<u8>>, StoreError> {
        self.live.get_meta(key)
    }

    fn write(&mut self, batch: WriteBatch) -> Result<(), StoreError> {
        let durable = batch.durable;
        self.live.write(batch.clone())?;
        self.record(Pending::Write(batch), durable)
    }

    fn begin_staging(&mut self) -> Result<(), StoreError> {
        self.live.begin_staging()?;
        self.record(Pending::BeginStaging, false)
    }

    fn resume_staging(&mut self) -> Result<bool, StoreError> {
        let found = self.live.resume_staging()?;
        self.record(Pending::ResumeStaging, false)?;
        Ok(found)
    }

    fn adopt_staging(&mut self, batch: WriteBatch) -> Result<(), StoreError> {
        self.live.adopt_staging(batch.clone())?;
        // Durable by contract: everything before it reaches the disk, then
        // the switch itself.
        self.record(Pending::Write(WriteBatch::new(true)), true)?;
        let mut d = self.disk.lock().unwrap_or_else(|e| e.into_inner());
        d.durable.adopt_staging(batch)
    }

    fn state_view(&self) -> Result<Box<dyn StateSource + Send>, StoreError> {
        self.live.state_view()
    }

    fn snapshot_chunk(&self, round: Round, index: u32) -> Result<Option<Vec<u8>>, StoreError> {
        self.live.snapshot_chunk(round, index)
    }

    fn manifests(&self) -> Result<Vec<(Round, Vec<u8>)>, StoreError> {
        self.live.manifests()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(value: u8, durable: bool) -> WriteBatch {
        let mut b = WriteBatch::new(durable);
        b.put_meta(MetaKey::OwnLastRound, &value);
        b
    }

    #[test]
    fn a_crash_loses_exactly_the_writes_after_the_last_durable_one() {
        let disk = SharedDisk::default();
        let mut s = SimStore::recover(&disk);
        s.write(meta(1, false)).unwrap();
        s.write(meta(2, true)).unwrap();
        s.write(meta(3, false)).unwrap();
        assert_eq!(s.get_meta(MetaKey::OwnLastRound).unwrap(), Some(vec![3]));
        let after = SimStore::recover(&disk);
        assert_eq!(
            after.get_meta(MetaKey::OwnLastRound).unwrap(),
            Some(vec![2])
        );
    }
}
