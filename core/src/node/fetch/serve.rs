//! The responder side of fetching: vertices by hash and by round range,
//! each answer bounded by `max_response_bytes` (and a range answer says
//! how far it got, `through`, so a short answer is not mistaken for an
//! empty history).

use crate::ids::{Hash, PeerId, Round};
use crate::interface::Channel;
use crate::node::Node;
use crate::store::{Store, StoreError};
use crate::wire::{Message, RequestId};
use std::sync::Arc;

impl<S: Store> Node<S> {
    pub(in crate::node) fn serve_vertices(
        &mut self,
        peer: PeerId,
        request: RequestId,
        hashes: Vec<Hash>,
    ) -> Result<(), StoreError> {
        let mut vertices = Vec::new();
        let mut bytes = 0usize;
        for h in hashes.iter().take(self.config.max_fetch_hashes) {
            let v = match self.chain.as_ref().and_then(|c| c.consensus.dag().get(h)) {
                Some(dv) => Some((*dv.vertex).clone()),
                None => self
                    .store
                    .get_vertex(h)?
                    .map(|s| Arc::unwrap_or_clone(s.vertex)),
            };
            if let Some(v) = v {
                bytes += v.encoded_len();
                if bytes > self.config.max_response_bytes && !vertices.is_empty() {
                    break;
                }
                vertices.push(v);
            }
        }
        vertices.sort_by_key(|v| v.round());
        self.send(
            peer,
            Channel::Request,
            Message::Vertices {
                request,
                vertices,
                through: None,
            },
        );
        Ok(())
    }

    pub(in crate::node) fn serve_rounds(
        &mut self,
        peer: PeerId,
        request: RequestId,
        from: Round,
        to: Round,
    ) -> Result<(), StoreError> {
        let have = self.highest_round();
        let to = to
            .min(from.saturating_add(self.config.sync.range_fetch_rounds.saturating_sub(1)))
            .min(have.unwrap_or(Round(0)));
        let max_per_round = self
            .chain
            .as_ref()
            .map_or(1, |c| c.genesis.params.max_validators as usize * 2);
        let mut vertices = Vec::new();
        let mut bytes = 0usize;
        let mut through = None;
        let mut round = from;
        // Read one round at a time so that a large range never loads more
        // than one round beyond the response limit.
        while round <= to && have.is_some() {
            let stored = self.store.vertices_in_rounds(round, round, max_per_round)?;
            let size: usize = stored.iter().map(|s| s.vertex.encoded_len()).sum();
            if bytes + size > self.config.max_response_bytes && !vertices.is_empty() {
                break;
            }
            bytes += size;
            vertices.extend(stored.into_iter().map(|s| Arc::unwrap_or_clone(s.vertex)));
            through = Some(round);
            round = round.next();
        }
        self.send(
            peer,
            Channel::Request,
            Message::Vertices {
                request,
                vertices,
                through,
            },
        );
        Ok(())
    }
}
