//! Replay: after a snapshot is switched in, the gossip buffered during the
//! sync is offered, in round order, through the same validation as any
//! vertex; then, once this node builds a snapshot of its own past the one
//! it joined from, its root is compared with what a quorum of validators
//! attested for that round (`state verification`).
//!
//! Replay starts only from a `VerifiedSnapshot` (see `download.rs`): the
//! buffer it replays is the one that snapshot sync carried.

use crate::buffer::VertexBuffer;
use crate::ids::{Hash, Timestamp};
use crate::interface::Event;
use crate::node::Node;
use crate::store::{Store, StoreError};
use std::sync::Arc;

impl<S: Store> Node<S> {
    /// Offers every buffered vertex, in round order, through normal
    /// validation; the commit rule decides what commits and when.
    pub(in crate::node) fn replay_buffer(
        &mut self,
        now: Timestamp,
        mut buffer: VertexBuffer,
    ) -> Result<(), StoreError> {
        let buffered = buffer.drain();
        let rounds = buffered
            .first()
            .zip(buffered.last())
            .map(|(a, b)| (a.1.round(), b.1.round()));
        self.emit(Event::ReplayStarted {
            vertices: buffered.len(),
            from: rounds.map(|r| r.0),
            to: rounds.map(|r| r.1),
        });
        let before = self.chain.as_ref().map_or(0, |c| c.consensus.dag().len());
        let processed = buffered.len();
        for (hash, v) in buffered {
            self.offer_verified(
                now,
                None,
                Arc::try_unwrap(v).unwrap_or_else(|v| (*v).clone()),
                hash,
                crate::interface::VertexSource::Gossip,
            )?;
        }
        let after = self.chain.as_ref().map_or(0, |c| c.consensus.dag().len());
        self.emit(Event::ReplayFinished {
            processed,
            inserted: after.saturating_sub(before),
            current: self.highest_round(),
        });
        Ok(())
    }

    /// Once this node has built a snapshot after the one it applied, compare
    /// its root with what a quorum of validators attested for that round.
    pub(in crate::node) fn check_state_verification(&mut self) {
        let Some(applied) = self.joined.applied.map(|a| a.round) else {
            return;
        };
        if self.joined.verified.is_some() {
            return;
        }
        let Some(chain) = &self.chain else { return };
        for (round, served) in self.serving.snapshots.iter().filter(|(r, _)| **r > applied) {
            let set = chain.consensus.meta().schedule.set_for_round(*round);
            let quorum = set.quorum();
            let for_root = |root: &Hash| {
                self.serving
                    .attestations
                    .get(*round, *root)
                    .map_or(0, |who| set.weight_of_keys(who.keys()))
            };
            if for_root(&served.root) >= quorum {
                self.joined.verified = Some((*round, true));
                self.emit(Event::StateVerified {
                    round: *round,
                    root: served.root,
                });
                return;
            }
            let other = self
                .serving
                .attestations
                .iter()
                .find(|((r, root), who)| {
                    r == round && *root != served.root && set.is_quorum(who.keys())
                })
                .map(|((_, root), _)| *root);
            if let Some(attested) = other {
                self.joined.verified = Some((*round, false));
                self.emit(Event::StateMismatch {
                    round: *round,
                    ours: served.root,
                    attested,
                });
                return;
            }
        }
    }
}
