//! This node's own part in set changes: a validator-mode node registers
//! itself once it is live, and a member told to (`NodeConfig::auto_approve`,
//! a devnet's bootstrap by default) approves the candidates it is
//! connected to.

use super::produce::SubmitError;
use super::Node;
use crate::admission::Admission;
use crate::ids::{Hash, PublicKey, Round, Timestamp};
use crate::interface::Event;
use crate::phase::SyncPhase;
use crate::store::{Store, StoreError};
use crate::tx::{Operation, TxBody, TxOutcome};
use crate::wire::Role;

/// Rounds a registration or approval may take to commit before it is sent
/// again.
const MEMBERSHIP_TX_TTL_ROUNDS: u64 = 200;

impl<S: Store> Node<S> {
    /// Whether the transaction `(tx, expiry)` may still commit: it has no
    /// failed outcome and its expiry round is not passed.
    fn still_on_its_way(
        &self,
        (tx, expiry): (Hash, Round),
        committed: Round,
    ) -> Result<bool, StoreError> {
        let failed = matches!(self.store.tx_outcome(&tx)?, Some(TxOutcome::Failed { .. }));
        Ok(!failed && committed <= expiry)
    }

    /// Signs `ops` with this node's key and submits them; `None` when no
    /// validator is reachable yet or the pool is full (try again later).
    fn submit_own(
        &mut self,
        now: Timestamp,
        ops: Vec<Operation>,
    ) -> Result<Option<(Hash, Round)>, StoreError> {
        let Some(chain) = &self.chain else {
            return Ok(None);
        };
        let committed = chain.consensus.last_committed_round().unwrap_or_default();
        let expiry = committed.saturating_add(MEMBERSHIP_TX_TTL_ROUNDS);
        let tx = TxBody {
            chain_id: chain.chain_id,
            sender: self.key.public(),
            nonce: self.rng.next_u64(),
            expiry,
            ops,
        }
        .sign(&self.key);
        match self.admit(now, tx, None) {
            Ok(hash) => Ok(Some((hash, expiry))),
            Err(SubmitError::Store(e)) => Err(e),
            Err(_) => Ok(None),
        }
    }

    /// A validator-mode node that is caught up but neither in the validator
    /// set nor waiting for approval registers itself (once at a time; again
    /// if the attempt failed or expired). It produces as soon as the set it
    /// joins takes effect.
    pub(super) fn maybe_register(&mut self, now: Timestamp) -> Result<(), StoreError> {
        if self.config.role != Role::Validator || self.phase() != SyncPhase::Live {
            return Ok(());
        }
        let Some(address) = self.config.listen_addr.clone() else {
            return Ok(());
        };
        let Some(chain) = &self.chain else {
            return Ok(());
        };
        let me = self.key.public();
        let schedule = &chain.consensus.meta().schedule;
        let committed = chain.consensus.last_committed_round().unwrap_or_default();
        let waiting = schedule
            .candidates_at(schedule.epoch_of(committed))
            .any(|c| c.info.key == me);
        if schedule.knows(&me) || waiting {
            return Ok(());
        }
        if let Some(sent) = self.producer.registration {
            if self.still_on_its_way(sent, committed)? {
                return Ok(());
            }
        }
        let ops = vec![Operation::RegisterValidator {
            address: address.clone(),
        }];
        if let Some(sent) = self.submit_own(now, ops)? {
            self.producer.registration = Some(sent);
            self.emit(Event::RegistrationSubmitted {
                tx: sent.0,
                address,
            });
        }
        Ok(())
    }

    /// A member with `auto_approve` approves each candidate it holds a
    /// ready connection to (so a key that runs no node is never approved
    /// this way), once at a time per candidate.
    pub(super) fn maybe_approve(&mut self, now: Timestamp) -> Result<(), StoreError> {
        if !self.config.auto_approve || self.phase() != SyncPhase::Live {
            return Ok(());
        }
        let Some(chain) = &self.chain else {
            return Ok(());
        };
        let schedule = &chain.consensus.meta().schedule;
        let committed = chain.consensus.last_committed_round().unwrap_or_default();
        let epoch = schedule.epoch_of(committed);
        let me = self.key.public();
        if schedule.policy().admission != Admission::Approval
            || !schedule.set_for_epoch(epoch).contains(&me)
        {
            return Ok(());
        }
        let candidates: Vec<PublicKey> = schedule
            .candidates_at(epoch)
            .filter(|c| !c.approvals.contains(&me))
            .filter(|c| self.peers.by_key(&c.info.key).is_some())
            .map(|c| c.info.key)
            .collect();
        // Only candidates are remembered: the set bounds this map.
        self.producer
            .approvals
            .retain(|k, _| candidates.contains(k));
        for candidate in candidates {
            if let Some(sent) = self.producer.approvals.get(&candidate).copied() {
                if self.still_on_its_way(sent, committed)? {
                    continue;
                }
            }
            let ops = vec![Operation::ApproveValidator { candidate }];
            if let Some(sent) = self.submit_own(now, ops)? {
                self.producer.approvals.insert(candidate, sent);
                self.emit(Event::ApprovalSubmitted {
                    tx: sent.0,
                    candidate,
                });
            }
        }
        Ok(())
    }

    /// A node out of the set at its highest round (it left, or was
    /// removed) hands the transactions in its mempool to the nodes that
    /// forward them to a member: nobody would ever include them here.
    /// Those it cannot pass on yet stay for the next commit.
    pub(super) fn hand_over_mempool(&mut self, now: Timestamp) -> Result<(), StoreError> {
        let Some(chain) = &self.chain else {
            return Ok(());
        };
        let round = self.highest_round().unwrap_or_default();
        let decided = chain.consensus.epoch_decided(round);
        if self.txs.mempool.is_empty() || !decided || self.is_producer(round) {
            return Ok(());
        }
        crate::cov::mark("mempool_handed_over_out_of_the_set");
        for tx in self.txs.mempool.take(usize::MAX, usize::MAX) {
            match self.admit(now, tx.clone(), None) {
                Err(SubmitError::Store(e)) => return Err(e),
                Err(SubmitError::NoValidator | SubmitError::Full) => {
                    // No member reachable now: keep it for the next try.
                    let _ = self.txs.mempool.insert(tx.hash(), tx);
                }
                // Forwarded, or no longer wanted (expired, executed).
                _ => {}
            }
        }
        Ok(())
    }
}
