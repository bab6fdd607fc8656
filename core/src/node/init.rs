//! Starting a node: a new chain written into an empty store, or a restart
//! that loads the consensus state and DAG window of the chain it adopted.
//! A restart is not a join: the node resumes from what it stored.

use super::{Chain, Node};
use crate::consensus::{Consensus, ConsensusMeta};
use crate::genesis::Genesis;
use crate::ids::Round;
use crate::store::{read_meta, MetaKey, Store, StoreError, WriteBatch, WriteOp};

impl<S: Store> Node<S> {
    /// Loads consensus state and the DAG window of an adopted chain.
    pub(super) fn restore_chain(&mut self, genesis: Genesis) -> Result<(), StoreError> {
        let chain_id = genesis.chain_id();
        let meta: ConsensusMeta = read_meta(&self.store, MetaKey::Consensus)?.ok_or_else(|| {
            StoreError::Corrupt("genesis adopted but consensus metadata missing".into())
        })?;
        let mut consensus = Consensus::new(
            meta,
            genesis.params.clone(),
            self.config.max_pending_vertices,
            self.config.max_rounds_ahead,
        );
        let floor = consensus.last_committed_round().map_or(Round(0), |r| {
            r.saturating_sub(genesis.params.gc_depth_rounds)
        });
        let mut from = floor;
        // Votes in the stored window, counted again once the chain of
        // certificates is open (a certificate may still need them).
        let mut votes = Vec::new();
        loop {
            let batch = self.store.vertices_in_rounds(from, Round(u64::MAX), 4096)?;
            let Some(last) = batch.last().map(|s| s.vertex.round()) else {
                break;
            };
            let full = batch.len() == 4096;
            for stored in batch {
                if full && stored.vertex.round() == last {
                    continue; // re-read the cut round whole in the next batch
                }
                let hash = stored.vertex.hash();
                self.note_attestation(&stored.vertex, hash);
                if let Some(vote) = stored.vertex.body.epoch_vote.as_deref() {
                    votes.push((stored.vertex.author(), *vote));
                }
                if stored.committed_at.is_none() && stored.vertex.author() == self.key.public() {
                    self.producer
                        .own_uncommitted
                        .insert((stored.vertex.round(), hash));
                }
                consensus.restore(stored.vertex, hash, stored.committed_at);
            }
            if !full {
                break;
            }
            from = last;
        }
        consensus.prune_below(floor);
        self.chain = Some(Chain {
            genesis,
            chain_id,
            consensus,
        });
        self.open_epoch_chain()?;
        for (author, vote) in votes {
            self.note_epoch_vote(author, Some(vote))?;
        }
        Ok(())
    }
}

/// Writes a genesis and the state it defines into an empty store: the genesis
/// objects (in batches, so a large synthetic state does not sit in memory at
/// once), then the consensus metadata and the genesis record last and durably,
/// so an interrupted initialisation is simply redone.
pub fn init_chain(store: &mut dyn Store, genesis: &Genesis) -> Result<(), StoreError> {
    write_genesis_state(store, genesis)?;
    store.write(metadata_batch(genesis))
}

/// Writes the genesis objects, in batches.
fn write_genesis_state(store: &mut dyn Store, genesis: &Genesis) -> Result<(), StoreError> {
    const BATCH: u64 = 10_000;
    crate::cov::mark("genesis_state_written");
    let mut batch = WriteBatch::new(false);
    for o in &genesis.objects {
        batch.push(WriteOp::PutObject(o.clone()));
    }
    store.write(batch)?;
    let mut i = 0;
    while i < genesis.synthetic_objects {
        let end = (i + BATCH).min(genesis.synthetic_objects);
        let mut batch = WriteBatch::new(false);
        for j in i..end {
            batch.push(WriteOp::PutObject(crate::genesis::synthetic_object(j)));
        }
        store.write(batch)?;
        i = end;
    }
    Ok(())
}

/// Writes the genesis record and the initial consensus metadata, and marks
/// the genesis objects as still to write ([`MetaKey::GenesisStateDeferred`]):
/// for a node that may take its state from a snapshot (`snapshot`, or `auto`,
/// which learns how it joins only after it adopted the genesis). The objects
/// are written by [`write_deferred_genesis_state`] before the first commit,
/// and never if a snapshot comes first: a large genesis state cost an `auto`
/// joiner its write, then its replacement (issue 14). The mark also makes a
/// `snapshot` node interrupted before its snapshot and restarted to join by
/// range execute on the genesis state, not on an empty one.
pub(super) fn init_chain_deferred(
    store: &mut dyn Store,
    genesis: &Genesis,
) -> Result<(), StoreError> {
    let mut batch = metadata_batch(genesis);
    batch.put_meta(MetaKey::GenesisStateDeferred, &());
    store.write(batch)
}

/// The genesis objects, if their write was deferred: written now, then the
/// mark removed durably (an interrupted write is redone at the next start).
/// Only a node that has committed nothing may call this: its state is still
/// the genesis.
pub(super) fn write_deferred_genesis_state(
    store: &mut dyn Store,
    genesis: &Genesis,
) -> Result<(), StoreError> {
    if read_meta::<()>(&*store, MetaKey::GenesisStateDeferred)?.is_none() {
        return Ok(());
    }
    write_genesis_state(store, genesis)?;
    let mut batch = WriteBatch::new(true);
    batch.push(WriteOp::DeleteMeta(MetaKey::GenesisStateDeferred));
    store.write(batch)
}

fn metadata_batch(genesis: &Genesis) -> WriteBatch {
    let meta = ConsensusMeta::at_genesis(genesis);
    let mut batch = WriteBatch::new(true);
    batch.put_meta(MetaKey::Consensus, &meta);
    batch.put_meta(MetaKey::Genesis, genesis);
    batch
}
