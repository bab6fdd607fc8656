//! The gossip mini-protocol: what a node pushes to its ready peers.
//!
//! - **Messages**: `Vertex` (forwarded once by every live node that accepts
//!   it), `Status` (highest and committed round, every
//!   `status_interval_ms`), `SubmitTx` (a listener forwards a transaction
//!   to a validator; `produce.rs` takes it in).
//! - **Receiving side**: a vertex is verified (a copy of one already held
//!   is not checked again), offered to consensus, stored, forwarded, and
//!   may release pending vertices; its missing parents are fetched by hash
//!   (`fetch`). During a snapshot sync it goes to the sync state's buffer.
//!   A vertex that fails its checks bans its sender.
//! - **Sending side**: `gossip` forwards to every ready peer but the one it
//!   came from.
//! - **Tests**: `core/tests/cluster.rs`, `core/tests/properties.rs`, the
//!   `traces.rs` insta traces.

mod evidence;
mod verified;

pub(in crate::node) use evidence::EvidenceBook;
pub(in crate::node) use verified::VerifiedVertices;

use crate::consensus::Offer;
use crate::ids::{Hash, PeerId, Timestamp};
use crate::interface::{Channel, Event, Limit, VertexSource};
use crate::node::Node;
use crate::phase::SyncPhase;
use crate::store::{Store, StoreError, WriteBatch, WriteOp};
use crate::vertex::Vertex;
use crate::wire::Message;
use std::sync::Arc;
use verified::Copy;

impl<S: Store> Node<S> {
    pub(in crate::node) fn on_gossip_vertex(
        &mut self,
        now: Timestamp,
        peer: PeerId,
        v: Vertex,
    ) -> Result<(), StoreError> {
        if let Some(p) = self.peers.peers.get_mut(&peer) {
            p.saw_round(v.round());
        }
        self.accept_vertex(now, peer, v, VertexSource::Gossip)
    }

    /// Validates and offers one vertex; on a fault, drops the sender.
    pub(in crate::node) fn accept_vertex(
        &mut self,
        now: Timestamp,
        peer: PeerId,
        v: Vertex,
        source: VertexSource,
    ) -> Result<(), StoreError> {
        let buffering = self.buffering();
        let Some(chain) = self.chain.as_mut() else {
            return Ok(()); // no genesis yet: nothing to validate against
        };
        // A copy of a vertex already held (gossip brings one per peer) is
        // not verified again: hashing the body is cheap, checking its
        // signatures is what a node spends its time on. Its bytes are
        // those of the verified one, so nothing is lost; while a snapshot
        // downloads, the buffer's own dedup handles copies instead.
        let hash = v.hash();
        if !buffering
            && (chain.consensus.dag().contains(&hash) || chain.consensus.is_pending(&hash))
        {
            self.requests.wanted.remove(&hash);
            return Ok(());
        }
        // Any other copy verified before is not verified again either
        // (`verified.rs`), on whatever path it comes.
        let gossip = source == VertexSource::Gossip;
        match self.verified.copy(hash, &v.signature, Some(peer)) {
            Copy::Verified { before } if gossip && before > 0 => {
                crate::cov::mark("repeated_vertex");
                let why = format!("sent vertex {} again", hash.short());
                self.useless_vertex(now, peer, &why);
                return Ok(());
            }
            Copy::Verified { .. } => crate::cov::mark("vertex_verified_once"),
            Copy::Unchecked
                if !buffering
                    && chain.consensus.versions_held(v.round(), &v.author())
                        >= crate::consensus::MAX_VERSIONS_KEPT
                    && !chain.consensus.is_wanted_parent(v.round(), &hash) =>
            {
                // One author, one vote: two versions are evidence enough;
                // a third nothing here builds on is dropped before its
                // signatures are checked. Not the sender's fault: an honest
                // node may forward a version its peer holds two others of.
                crate::cov::mark("excess_version_dropped_unchecked");
                return Ok(());
            }
            Copy::Unchecked => {
                let checks = v.signature_checks();
                let rate = self.config.max_gossip_signature_checks_per_sec;
                let within = !gossip
                    || self
                        .peers
                        .peers
                        .get_mut(&peer)
                        .is_some_and(|p| p.gossip_checks.take(now, rate, checks));
                if !within {
                    self.emit(Event::LimitHit {
                        limit: Limit::GossipVerification,
                    });
                    return Ok(());
                }
                let Some(chain) = self.chain.as_ref() else {
                    return Ok(());
                };
                crate::cov::mark("vertex_verified");
                if let Err(e) = v.verify(&chain.chain_id, &chain.genesis.params) {
                    let reason = format!("invalid vertex round={}: {e}", v.round());
                    self.emit(Event::VertexRejected {
                        peer,
                        reason: reason.clone(),
                    });
                    self.ban_peer(now, peer, &reason);
                    return Ok(());
                }
                self.verified.insert(hash, v.signature, Some(peer));
            }
        }
        if self.is_known_validator(&v.author()) {
            self.proven.saw(v.author(), v.round());
        }
        self.requests.wanted.remove(&hash);
        if self.buffering() {
            self.hold_vertex(v, hash);
            return Ok(());
        }
        self.offer_verified(now, Some(peer), v, hash, source)
    }

    /// `peer` gossiped a vertex of no use (`why`). Past
    /// `max_useless_vertices` of them it is banned for a while.
    fn useless_vertex(&mut self, now: Timestamp, peer: PeerId, why: &str) {
        let Some(p) = self.peers.peers.get_mut(&peer) else {
            return;
        };
        p.useless_vertices = p.useless_vertices.saturating_add(1);
        if p.useless_vertices >= self.config.max_useless_vertices {
            let reason = format!("{why} ({} useless vertices)", p.useless_vertices);
            self.ban_peer(now, peer, &reason);
        }
    }

    /// Offers a vertex whose stand-alone checks passed to consensus; a link
    /// fault drops `from` (if it came from a peer).
    pub(in crate::node) fn offer_verified(
        &mut self,
        now: Timestamp,
        from: Option<PeerId>,
        v: Vertex,
        hash: Hash,
        source: VertexSource,
    ) -> Result<(), StoreError> {
        let round = v.round();
        let chain = self.chain.as_mut().expect("offers need a chain");
        let offer = chain.consensus.offer(Arc::new(v), hash);
        match offer {
            Offer::Inserted {
                inserted,
                equivocations,
            } => {
                for pair in equivocations {
                    self.report_equivocation(pair);
                }
                self.on_inserted(now, from, &inserted, source)?;
            }
            Offer::Pending { missing } => {
                let Some(peer) = from else { return Ok(()) };
                let far = self.highest_round().is_none_or(|top| {
                    round > top.saturating_add(self.config.sync.max_behind_rounds)
                });
                if !far {
                    self.fetch_missing(now, peer, missing);
                }
            }
            Offer::Rejected(e) => {
                // The author is at fault; whoever passed it on may be an
                // honest node with less history (at its pruning floor a
                // parent's round and author cannot be checked), so one such
                // vertex bans nobody — many cost the sender.
                let Some(peer) = from else { return Ok(()) };
                let reason = format!("vertex {} round={round} rejected: {e}", hash.short());
                self.emit(Event::VertexRejected {
                    peer,
                    reason: reason.clone(),
                });
                if source == VertexSource::Gossip {
                    self.useless_vertex(now, peer, &reason);
                }
            }
            Offer::Dropped => self.emit(Event::LimitHit {
                limit: Limit::PendingVertices,
            }),
            Offer::EpochUndecided | Offer::Duplicate | Offer::Stale | Offer::ExcessVersion => {}
        }
        Ok(())
    }

    /// Everything that follows insertion: persist, report, forward, commit.
    pub(in crate::node) fn on_inserted(
        &mut self,
        now: Timestamp,
        from: Option<PeerId>,
        inserted: &[Hash],
        source: VertexSource,
    ) -> Result<(), StoreError> {
        self.clock.last_progress_at = now;
        let chain = self.chain.as_ref().expect("inserted implies a chain");
        let mut batch = WriteBatch::new(false);
        let mut vertices = Vec::with_capacity(inserted.len());
        for h in inserted {
            let v = chain
                .consensus
                .dag()
                .get(h)
                .expect("just inserted")
                .vertex
                .clone();
            batch.push(WriteOp::PutVertex {
                hash: *h,
                vertex: v.clone(),
            });
            vertices.push((*h, v));
        }
        self.write(batch)?;
        let forward = self.phase() == SyncPhase::Live;
        for (hash, v) in &vertices {
            self.note_attestation(v, *hash);
            self.note_epoch_vote(v.author(), v.body.epoch_vote.as_deref().copied())?;
        }
        self.check_state_verification();
        for (i, (hash, v)) in vertices.iter().enumerate() {
            for tx in &v.body.txs {
                let th = tx.hash();
                self.txs.mempool.remove(&th);
                self.txs.in_dag.insert(th, v.round());
            }
            // The first vertex came from `from`; released ones arrived
            // earlier through gossip.
            let source = if i == 0 { source } else { VertexSource::Gossip };
            if source != VertexSource::Own {
                self.emit(Event::VertexAccepted {
                    round: v.round(),
                    hash: *hash,
                    author: v.author(),
                    txs: v.body.txs.len(),
                    source,
                });
            }
            let unchecked = self
                .chain
                .as_ref()
                .and_then(|c| c.consensus.dag().get(hash))
                .is_some_and(|d| d.unchecked);
            if forward && source != VertexSource::Fetch && !unchecked {
                self.gossip(from, v);
            }
        }
        self.commit_ready(now)
    }

    /// Sends a vertex to every ready peer except `except`.
    pub(in crate::node) fn gossip(&mut self, except: Option<PeerId>, v: &Vertex) {
        for peer in self.ready_peers_but(except) {
            self.send(peer, Channel::Gossip, Message::Vertex(v.clone()));
        }
    }

    /// Ready peers other than `except`: where gossip goes.
    fn ready_peers_but(&self, except: Option<PeerId>) -> Vec<PeerId> {
        self.peers
            .ready()
            .filter(|p| Some(p.id) != except)
            .map(|p| p.id)
            .collect()
    }

    pub(in crate::node) fn report_equivocation(&mut self, (first, second): (Hash, Hash)) {
        let Some(chain) = &self.chain else { return };
        let dag = chain.consensus.dag();
        let (Some(a), Some(b)) = (dag.get(&first), dag.get(&second)) else {
            return;
        };
        let (a, b) = (a.vertex.clone(), b.vertex.clone());
        self.found_equivocation(&a, &b);
    }

    /// Asks `peer` (who has the child) for parents we lack.
    fn fetch_missing(&mut self, now: Timestamp, peer: PeerId, missing: Vec<Hash>) {
        let hashes: Vec<Hash> = missing
            .into_iter()
            .filter(|h| !self.requests.wanted.contains(h))
            .take(self.config.max_fetch_hashes)
            .collect();
        if hashes.is_empty() || self.requests.in_flight.len() >= self.config.max_requests_in_flight
        {
            // Over the limit the pending set's sweep asks later.
            return;
        }
        self.requests.wanted.extend(hashes.iter().copied());
        self.request(now, peer, crate::node::RequestKind::Vertices { hashes });
    }
}
