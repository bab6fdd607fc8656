//! Producing vertices, executing commits, and accepting transactions.

use super::Node;
use crate::consensus::Offer;
use crate::exec::{ExecStats, Executor};
use crate::ids::{Hash, PeerId, PublicKey, Round, Timestamp};
use crate::interface::{Channel, Event, Limit, VertexSource};
use crate::mempool::PoolRefusal;
use crate::phase::SyncPhase;
use crate::store::{MetaKey, Store, StoreError, WriteBatch, WriteOp};
use crate::tx::{Transaction, TxInvalid};
use crate::vertex::VertexBody;
use crate::wire::{Message, Role};
use std::sync::Arc;

/// Room left in a vertex for everything but transactions.
const VERTEX_OVERHEAD_BYTES: usize = 64 * 1024;

/// Why a submitted transaction was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The node has no chain yet.
    #[error("node has not joined a chain yet")]
    NoChain,
    /// Malformed, badly signed, or for another chain.
    #[error("invalid transaction: {0}")]
    Invalid(#[from] TxInvalid),
    /// Its expiry round has passed.
    #[error("transaction expired at round {expiry}, last committed round is {committed}")]
    Expired {
        /// The transaction's expiry.
        expiry: Round,
        /// The node's last committed round.
        committed: Round,
    },
    /// Already committed or failed.
    #[error("transaction already executed")]
    AlreadyExecuted,
    /// Already waiting.
    #[error("transaction already pending")]
    Duplicate,
    /// `max_mempool_txs` or `max_forwarded_txs` reached.
    #[error("node is full, try again later")]
    Full,
    /// A listener (or non-member) with no validator connected to forward to.
    #[error("no validator connected to forward the transaction to")]
    NoValidator,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl<S: Store> Node<S> {
    /// Whether this node currently produces vertices.
    pub(super) fn is_producer(&self, round: Round) -> bool {
        let Some(chain) = &self.chain else {
            return false;
        };
        self.config.role == Role::Validator
            && chain.consensus.epoch_decided(round)
            && chain
                .consensus
                .meta()
                .schedule
                .set_for_round(round)
                .contains(&self.key.public())
    }

    /// The round this node would produce next, if it may.
    fn next_round_to_produce(&self) -> Option<Round> {
        // Asked after every input: a listener, which never produces, is
        // spared the quorum count below (issue 14: 7% of a 50-node
        // simulation, four nodes in five of which listen).
        if self.config.role != Role::Validator {
            return None;
        }
        let chain = self.chain.as_ref()?;
        let dag = chain.consensus.dag();
        let schedule = &chain.consensus.meta().schedule;
        let round = match dag.highest_round() {
            None if chain.consensus.last_committed_round().is_none() => Round(0),
            None => return None,
            Some(top) => {
                // The highest round with a quorum of authors.
                let full = [Some(top), top.prev()].into_iter().flatten().find(|r| {
                    let set = schedule.set_for_round(*r);
                    let weight: u64 = dag.authors_at(*r).map(|k| set.weight_of(&k)).sum();
                    weight >= set.quorum()
                })?;
                full.next()
            }
        };
        if self.producer.own_last_round.is_some_and(|own| own >= round) {
            return None;
        }
        self.is_producer(round).then_some(round)
    }

    /// Produces now if allowed and due; otherwise arms the produce timer.
    pub(super) fn maybe_produce(&mut self, now: Timestamp) -> Result<(), StoreError> {
        self.producer.produce_at = None;
        if self.phase() != SyncPhase::Live {
            return Ok(());
        }
        let Some(round) = self.next_round_to_produce() else {
            return Ok(());
        };
        let due = self
            .producer
            .last_produced_at
            .map_or(now, |t| t.plus_ms(self.config.round_interval_ms));
        if now < due {
            self.producer.produce_at = Some(due);
            return Ok(());
        }
        if !self.anchor_ready(round) {
            let since = match self.producer.waiting {
                Some((r, t)) if r == round => t,
                _ => now,
            };
            self.producer.waiting = Some((round, since));
            let until = since.plus_ms(self.config.leader_timeout_ms);
            if now < until {
                self.producer.produce_at = Some(until);
                return Ok(());
            }
            crate::cov::mark("produced_without_waiting_for_the_anchor");
        }
        self.producer.waiting = None;
        self.produce(now, round)
    }

    /// Whether a vertex of `round` would now do its part for the anchor
    /// slot below it (`consensus/decide.rs`): after an anchor round, cite
    /// a version of the anchor (a vote); one round later, cite a quorum of
    /// votes for it (a certificate). An anchor the node does not hold has
    /// no votes to wait for.
    fn anchor_ready(&self, round: Round) -> bool {
        let (Some(chain), Some(prev)) = (self.chain.as_ref(), round.prev()) else {
            return true;
        };
        let dag = chain.consensus.dag();
        let schedule = &chain.consensus.meta().schedule;
        // Anchor slots are on even rounds.
        let slot = if prev.0 % 2 == 0 {
            prev
        } else {
            prev.saturating_sub(1)
        };
        let versions = dag.by_author(slot, &schedule.set_for_round(slot).anchor_author(slot));
        if slot == prev {
            return !versions.is_empty();
        }
        if versions.is_empty() {
            return true;
        }
        let voters: Vec<PublicKey> = dag
            .round_firsts(prev)
            .iter()
            .filter(|v| versions.iter().any(|a| v.cites(a)))
            .map(|v| v.vertex.author())
            .collect();
        schedule.set_for_round(prev).is_quorum(&voters)
    }

    fn produce(&mut self, now: Timestamp, round: Round) -> Result<(), StoreError> {
        let epoch_vote = self.epoch_vote_for(round).map(Box::new);
        let chain = self.chain.as_mut().expect("producer has a chain");
        let parents: Vec<Hash> = match round.prev() {
            None => Vec::new(),
            Some(prev) => {
                let mut p: Vec<Hash> = chain
                    .consensus
                    .dag()
                    .round_firsts(prev)
                    .iter()
                    .map(|v| v.hash)
                    .collect();
                p.sort();
                p
            }
        };
        let (chain_id, params) = (chain.chain_id, chain.genesis.params.clone());
        let evidence = self.evidence_to_carry(params.max_vertex_evidence as usize);
        let evidence_bytes: usize = evidence.iter().map(|p| p.encoded_len()).sum();
        let txs = self.txs.mempool.take(
            params.max_vertex_txs as usize,
            (params.max_vertex_bytes as usize)
                .saturating_sub(VERTEX_OVERHEAD_BYTES)
                .saturating_sub(evidence_bytes),
        );
        let vertex = Arc::new(
            VertexBody {
                chain_id,
                round,
                author: self.key.public(),
                parents,
                txs,
                attestation: self.serving.pending_attestation.take().map(Box::new),
                evidence,
                epoch_vote,
            }
            .sign(&self.key),
        );
        let hash = vertex.hash();
        let tx_count = vertex.body.txs.len();
        // Durable before anyone hears of it: after a crash we must never
        // produce a second, different vertex for this round.
        let mut batch = WriteBatch::new(true);
        batch.push(WriteOp::PutVertex {
            hash,
            vertex: vertex.clone(),
        });
        batch.put_meta(MetaKey::OwnLastRound, &round);
        self.write(batch)?;
        self.producer.own_last_round = Some(round);
        self.producer.last_produced_at = Some(now);
        self.producer.own_uncommitted.insert((round, hash));
        let chain = self.chain.as_mut().expect("producer has a chain");
        match chain.consensus.offer(vertex.clone(), hash) {
            Offer::Inserted { inserted, .. } => {
                self.emit(Event::VertexProduced {
                    round,
                    hash,
                    txs: tx_count,
                });
                self.on_inserted(now, None, &inserted, VertexSource::Own)?;
            }
            other => {
                self.emit(Event::SyncFailed {
                    reason: format!("own vertex round={round} not accepted: {other:?}"),
                });
            }
        }
        self.producer.produce_at = Some(now.plus_ms(self.config.round_interval_ms));
        Ok(())
    }

    /// Runs the commit rule and executes every newly committed anchor, each
    /// in one durable batch with the consensus cursor.
    pub(super) fn commit_ready(&mut self, now: Timestamp) -> Result<(), StoreError> {
        loop {
            let chain = self.chain.as_mut().expect("commit needs a chain");
            let from_genesis = chain.consensus.last_committed_round().is_none();
            let commits = chain.consensus.try_commit();
            if commits.is_empty() {
                return Ok(());
            }
            if from_genesis {
                // The first commit executes on the genesis state: a node
                // that deferred it (`init::init_chain_deferred`) writes it now.
                let chain = self.chain.as_ref().expect("commit needs a chain");
                super::init::write_deferred_genesis_state(&mut self.store, &chain.genesis)?;
            }
            for anchor in commits {
                let chain = self.chain.as_mut().expect("commit needs a chain");
                let params = chain.genesis.params.clone();
                let mut stats = ExecStats::default();
                let mut executor = Executor::new(&self.store);
                let mut schedule = chain.consensus.meta().schedule.clone();
                let mut executed = Vec::new();
                let mut revoked = Vec::new();
                for (_, v) in &anchor.vertices {
                    schedule.record_activity(v.author(), v.round());
                    // Committed evidence: the same on every node, so the
                    // anchor schedule changes the same way everywhere.
                    for proof in &v.body.evidence {
                        let accused = proof.accused();
                        if let Some(epoch) = schedule.take_off_anchor_duty(accused, anchor.round) {
                            revoked.push((accused, epoch));
                        }
                    }
                    for tx in &v.body.txs {
                        let th = tx.hash();
                        executor.execute(
                            tx,
                            th,
                            anchor.round,
                            &mut schedule,
                            &params,
                            &mut stats,
                        )?;
                        executed.push(th);
                    }
                }
                let removed = schedule.remove_inactive(anchor.round);
                let mut batch = WriteBatch::new(true);
                batch.ops = executor.into_writes();
                for (h, _) in &anchor.vertices {
                    batch.push(WriteOp::MarkCommitted {
                        hash: *h,
                        anchor: anchor.round,
                    });
                }
                *chain.consensus.schedule_mut() = schedule;
                chain.consensus.add_executed(
                    anchor.vertices.len() as u64,
                    u64::from(stats.committed + stats.failed),
                );
                // The cursor as of *this* anchor: `try_commit` already moved
                // it to the last anchor of the batch, whose effects are not
                // written yet. Persisting that would skip anchors after a crash.
                let mut cursor = chain.consensus.meta().clone();
                cursor.last_anchor = Some((anchor.round, anchor.anchor));
                batch.put_meta(MetaKey::Consensus, &cursor);
                self.write(batch)?;
                if let Some(window) = anchor.snapshot_window.clone() {
                    self.start_snapshot(cursor, window)?;
                }
                for th in executed {
                    self.txs.mempool.remove(&th);
                    self.txs.in_dag.remove(&th);
                    // The queue entry goes stale and is dropped on eviction.
                    self.txs.forwarded_set.remove(&th);
                }
                for (key, epoch) in removed {
                    self.emit(Event::ValidatorRemoved { key, epoch });
                }
                for (author, epoch) in revoked {
                    self.emit(Event::AnchorDutyRevoked { author, epoch });
                }
                self.emit(Event::Committed {
                    round: anchor.round,
                    anchor: anchor.anchor,
                    vertices: anchor.vertices.len(),
                    txs_committed: stats.committed,
                    txs_failed: stats.failed,
                });
            }
            self.after_commit(now)?;
        }
    }

    /// Housekeeping after commits: forget old pending txs, report set
    /// changes, retry vertices waiting on an epoch decision.
    fn after_commit(&mut self, now: Timestamp) -> Result<(), StoreError> {
        // Votes held until this node decided the set they vote for.
        self.certify_epochs()?;
        self.hand_over_mempool(now)?;
        let chain = self.chain.as_ref().expect("commit needs a chain");
        let floor = chain.consensus.dag().pruned_below();
        self.txs.in_dag.retain(|_, r| *r >= floor);
        self.reinject_orphans(floor)?;
        let chain = self.chain.as_ref().expect("commit needs a chain");
        let round = chain.consensus.dag().highest_round().unwrap_or_default();
        let schedule = &chain.consensus.meta().schedule;
        let epoch = schedule.epoch_of(round);
        let set = schedule.set_for_epoch(epoch);
        let (size, includes_self) = (set.len(), set.contains(&self.key.public()));
        let members: Vec<crate::ids::PublicKey> = set.members().iter().map(|m| m.key).collect();
        let changed = self
            .producer
            .last_set
            .as_ref()
            .is_some_and(|(_, before)| *before != members);
        if changed {
            self.emit(Event::ValidatorSetChanged {
                epoch: epoch.0,
                size,
                includes_self,
            });
            self.connect_to_validators(now);
        }
        self.producer.last_set = Some((epoch.0, members));
        let chain = self.chain.as_mut().expect("commit needs a chain");
        let (released, equivocations) = chain.consensus.retry_pending();
        for pair in equivocations {
            self.report_equivocation(pair);
        }
        if !released.is_empty() {
            self.on_inserted(now, None, &released, VertexSource::Gossip)?;
        }
        Ok(())
    }

    /// Own vertices that fell below the garbage-collection floor without
    /// being committed can never commit: their transactions go back to the
    /// mempool (unless executed meanwhile), so an accepted transaction is
    /// never silently lost.
    fn reinject_orphans(&mut self, floor: Round) -> Result<(), StoreError> {
        let below: Vec<(Round, Hash)> = self
            .producer
            .own_uncommitted
            .range(..(floor, Hash([0; 32])))
            .copied()
            .collect();
        for key in below {
            self.producer.own_uncommitted.remove(&key);
            let Some(stored) = self.store.get_vertex(&key.1)? else {
                continue;
            };
            if stored.committed_at.is_some() {
                continue;
            }
            for tx in Arc::unwrap_or_clone(stored.vertex).body.txs {
                let th = tx.hash();
                if self.store.tx_outcome(&th)?.is_none() && !self.txs.in_dag.contains_key(&th) {
                    // A full pool drops it; the client sees it expire.
                    crate::cov::mark("orphaned_own_transaction_reinjected");
                    let _ = self.txs.mempool.insert(th, tx);
                }
            }
        }
        Ok(())
    }

    /// Submits a transaction from a local client. Validators in the set pool
    /// it; other nodes forward it to a connected validator.
    pub fn submit_transaction(
        &mut self,
        now: Timestamp,
        tx: Transaction,
    ) -> Result<Hash, SubmitError> {
        let result = self.admit(now, tx, None);
        self.finish(now, Ok(()));
        result
    }

    /// Where to forward a transaction: a ready member of the set at this
    /// node's highest round (a node that claims the validator role need
    /// not be one: it may have left, or wait for approval, and would
    /// forward it on in turn), else any peer that claims the role.
    fn forward_target(&self, from: Option<PeerId>) -> Option<PeerId> {
        let set = self.chain.as_ref().map(|c| {
            let round = self.highest_round().unwrap_or_default();
            c.consensus.meta().schedule.set_for_round(round)
        });
        let candidates = || self.peers.ready().filter(move |p| Some(p.id) != from);
        candidates()
            .find(|p| {
                p.key
                    .is_some_and(|k| set.as_ref().is_some_and(|s| s.contains(&k)))
            })
            .or_else(|| candidates().find(|p| p.role == Role::Validator))
            .map(|p| p.id)
    }

    pub(super) fn on_forwarded_tx(
        &mut self,
        now: Timestamp,
        peer: PeerId,
        tx: Transaction,
    ) -> Result<(), StoreError> {
        match self.admit(now, tx, Some(peer)) {
            Err(SubmitError::Store(e)) => Err(e),
            Err(SubmitError::Invalid(e)) => {
                self.ban_peer(now, peer, &format!("forwarded an invalid transaction: {e}"));
                Ok(())
            }
            _ => Ok(()),
        }
    }

    pub(super) fn admit(
        &mut self,
        now: Timestamp,
        tx: Transaction,
        from: Option<PeerId>,
    ) -> Result<Hash, SubmitError> {
        let _ = now;
        let chain = self.chain.as_ref().ok_or(SubmitError::NoChain)?;
        let hash = tx.check(&chain.chain_id, &chain.genesis.params)?;
        let committed = chain.consensus.last_committed_round().unwrap_or_default();
        if tx.body.expiry < committed {
            return Err(SubmitError::Expired {
                expiry: tx.body.expiry,
                committed,
            });
        }
        if self.store.tx_outcome(&hash)?.is_some() {
            return Err(SubmitError::AlreadyExecuted);
        }
        if self.txs.in_dag.contains_key(&hash) || self.txs.forwarded_set.contains(&hash) {
            return Err(SubmitError::Duplicate);
        }
        let round = self.highest_round().unwrap_or_default();
        if self.is_producer(round) {
            return match self.txs.mempool.insert(hash, tx) {
                Ok(()) => Ok(hash),
                Err(PoolRefusal::Duplicate) => Err(SubmitError::Duplicate),
                Err(PoolRefusal::Full) => {
                    self.emit(Event::LimitHit {
                        limit: Limit::Mempool,
                    });
                    Err(SubmitError::Full)
                }
            };
        }
        let target = self.forward_target(from).ok_or(SubmitError::NoValidator)?;
        if self.txs.forwarded_set.len() >= self.config.max_forwarded_txs {
            self.emit(Event::LimitHit {
                limit: Limit::ForwardedTxs,
            });
        }
        while self.txs.forwarded.len() >= self.config.max_forwarded_txs {
            if let Some(old) = self.txs.forwarded.pop_front() {
                self.txs.forwarded_set.remove(&old);
            }
        }
        self.txs.forwarded.push_back(hash);
        self.txs.forwarded_set.insert(hash);
        self.send(target, Channel::Gossip, Message::SubmitTx(tx));
        Ok(hash)
    }
}
