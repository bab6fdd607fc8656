//! Deterministic transaction execution.
//!
//! A commit executes its transactions in commit order against an overlay on
//! the store. Each transaction runs against its own scratch overlay that is
//! merged only if every operation succeeds, so a failed transaction has no
//! effect at all; its failure and reason are still recorded, which also marks
//! its hash as used so it can never commit later. The caller writes the merged
//! overlay and the outcomes in one atomic batch.

use crate::genesis::{ChainParams, ValidatorInfo};
use crate::ids::{Hash, ObjectId, Round};
use crate::store::{Store, StoreError, WriteOp};
use crate::tx::{created_object_id, Object, Operation, Transaction, TxOutcome};
use crate::validators::ValidatorSchedule;
use std::collections::BTreeMap;

/// Executes transactions of one commit against a store plus pending writes.
pub struct Executor<'a> {
    store: &'a dyn Store,
    overlay: BTreeMap<ObjectId, Option<Object>>,
    outcomes: BTreeMap<Hash, TxOutcome>,
    order: Vec<Hash>,
}

/// Counts of what a commit did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExecStats {
    /// Transactions applied.
    pub committed: u32,
    /// Transactions recorded as failed.
    pub failed: u32,
    /// Transactions skipped because their hash already has an outcome.
    pub duplicates: u32,
}

impl<'a> Executor<'a> {
    /// An executor with an empty overlay.
    pub fn new(store: &'a dyn Store) -> Self {
        Executor {
            store,
            overlay: BTreeMap::new(),
            outcomes: BTreeMap::new(),
            order: Vec::new(),
        }
    }

    fn object(&self, id: &ObjectId) -> Result<Option<Object>, StoreError> {
        match self.overlay.get(id) {
            Some(o) => Ok(o.clone()),
            None => self.store.get_object(id),
        }
    }

    /// Whether `hash` already has an outcome, in this commit or before.
    pub fn already_executed(&self, hash: &Hash) -> Result<bool, StoreError> {
        Ok(self.outcomes.contains_key(hash) || self.store.tx_outcome(hash)?.is_some())
    }

    /// Executes one transaction at anchor round `round`. Duplicates (a hash
    /// with an outcome already) are skipped and counted.
    pub fn execute(
        &mut self,
        tx: &Transaction,
        hash: Hash,
        round: Round,
        schedule: &mut ValidatorSchedule,
        params: &ChainParams,
        stats: &mut ExecStats,
    ) -> Result<(), StoreError> {
        if self.already_executed(&hash)? {
            stats.duplicates += 1;
            return Ok(());
        }
        let outcome = match self.try_apply(tx, hash, round, schedule, params)? {
            Ok(()) => {
                stats.committed += 1;
                TxOutcome::Committed { round }
            }
            Err(reason) => {
                stats.failed += 1;
                TxOutcome::Failed { round, reason }
            }
        };
        self.outcomes.insert(hash, outcome);
        self.order.push(hash);
        Ok(())
    }

    /// Runs the operations on a scratch overlay; merges it only on success.
    /// The outer `Result` is a storage failure, the inner one the
    /// transaction's own failure reason.
    fn try_apply(
        &mut self,
        tx: &Transaction,
        hash: Hash,
        round: Round,
        schedule: &mut ValidatorSchedule,
        params: &ChainParams,
    ) -> Result<Result<(), String>, StoreError> {
        let body = &tx.body;
        if round > body.expiry {
            return Ok(Err(format!(
                "expired: committed at round {round}, expiry round {}",
                body.expiry
            )));
        }
        let mut scratch: BTreeMap<ObjectId, Option<Object>> = BTreeMap::new();
        let mut registrations = Vec::new();
        let mut leaves = Vec::new();
        let mut approvals = Vec::new();
        for (index, op) in body.ops.iter().enumerate() {
            let result = match op {
                Operation::Create { data } => {
                    let id = created_object_id(&hash, index as u32);
                    scratch.insert(
                        id,
                        Some(Object {
                            id,
                            version: 1,
                            owner: body.sender,
                            data: data.clone(),
                        }),
                    );
                    Ok(())
                }
                Operation::Update { id, version, data } => {
                    self.owned(&scratch, id, *version, tx)?.map(|mut o| {
                        o.version += 1;
                        o.data = data.clone();
                        scratch.insert(*id, Some(o));
                    })
                }
                Operation::Transfer {
                    id,
                    version,
                    new_owner,
                } => self.owned(&scratch, id, *version, tx)?.map(|mut o| {
                    o.version += 1;
                    o.owner = *new_owner;
                    scratch.insert(*id, Some(o));
                }),
                Operation::Delete { id, version } => {
                    self.owned(&scratch, id, *version, tx)?.map(|_| {
                        scratch.insert(*id, None);
                    })
                }
                Operation::RegisterValidator { address } => {
                    registrations.push(ValidatorInfo::new(body.sender, address.clone()));
                    Ok(())
                }
                Operation::LeaveValidator => {
                    leaves.push(body.sender);
                    Ok(())
                }
                Operation::ApproveValidator { candidate } => {
                    approvals.push(*candidate);
                    Ok(())
                }
            };
            if let Err(reason) = result {
                return Ok(Err(format!("operation {index}: {reason}")));
            }
        }
        if !registrations.is_empty() || !leaves.is_empty() || !approvals.is_empty() {
            let mut next = schedule.clone();
            for r in registrations {
                if let Err(e) = next.request_admission(r, round) {
                    return Ok(Err(format!("register validator: {e}")));
                }
            }
            for candidate in approvals {
                if let Err(e) = next.approve(body.sender, &candidate, round) {
                    return Ok(Err(format!("approve validator: {e}")));
                }
            }
            for key in leaves {
                if let Err(e) = next.leave(key, round) {
                    return Ok(Err(format!("leave validator set: {e}")));
                }
            }
            *schedule = next;
        }
        let _ = params;
        self.overlay.append(&mut scratch);
        Ok(Ok(()))
    }

    /// The object `id` if it exists (in scratch, overlay or store), is owned
    /// by the sender and is at `version`.
    fn owned(
        &self,
        scratch: &BTreeMap<ObjectId, Option<Object>>,
        id: &ObjectId,
        version: u64,
        tx: &Transaction,
    ) -> Result<Result<Object, String>, StoreError> {
        let current = match scratch.get(id) {
            Some(o) => o.clone(),
            None => self.object(id)?,
        };
        let Some(obj) = current else {
            return Ok(Err(format!("object {} not found", id.short())));
        };
        if obj.owner != tx.body.sender {
            return Ok(Err(format!(
                "object {} is owned by {}, not the sender",
                id.short(),
                obj.owner.short()
            )));
        }
        if obj.version != version {
            return Ok(Err(format!(
                "object {} is at version {}, transaction expects {version}",
                id.short(),
                obj.version
            )));
        }
        Ok(Ok(obj))
    }

    /// Writes for the merged overlay and the outcomes, in deterministic order.
    pub fn into_writes(self) -> Vec<WriteOp> {
        let mut ops = Vec::with_capacity(self.overlay.len() + self.outcomes.len());
        for (id, obj) in self.overlay {
            ops.push(match obj {
                Some(o) => WriteOp::PutObject(o),
                None => WriteOp::DeleteObject(id),
            });
        }
        let mut outcomes = self.outcomes;
        for hash in self.order {
            if let Some(outcome) = outcomes.remove(&hash) {
                ops.push(WriteOp::PutTxOutcome { hash, outcome });
            }
        }
        ops
    }
}

#[cfg(test)]
#[path = "exec_tests.rs"]
mod tests;
