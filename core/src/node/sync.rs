//! Joining and catching up: adopting a genesis from peers, fetching missing
//! rounds by range, and the request table with its timeouts and retries.
//!
//! Every request has a deadline (`TimerKind::Request`). A request that times
//! out, or whose peer leaves, is sent again to another ready peer (a range
//! request is planned afresh instead, from the node's current position, and
//! preferably from another peer). After `retry_attempts` attempts at the
//! genesis or a manifest the node reports `SyncFailed` naming what failed
//! and from whom, and enters `Failed`. After `retry_attempts` range fetches
//! failed in a row, a catching-up node backs off for `catch_up_backoff_ms`
//! and then catches up again (`Backoff`); a live node keeps following by
//! gossip and asks again at its next stall.

use super::state::{Backoff, SyncState};
use super::{Chain, Node};
use crate::consensus::{Consensus, ConsensusMeta};
use crate::genesis::Genesis;
use crate::ids::{Hash, PeerId, Round, Timestamp};
use crate::interface::{Channel, Event, VertexSource};
use crate::phase::SyncPhase;
use crate::store::{read_meta, MetaKey, Store, StoreError};
use crate::vertex::Vertex;
use crate::wire::{Message, RequestId};

/// What a request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestKind {
    /// The genesis document.
    Genesis,
    /// Vertices by hash.
    Vertices {
        /// Wanted hashes.
        hashes: Vec<Hash>,
    },
    /// Every vertex of a round range.
    Rounds {
        /// First round.
        from: Round,
        /// Last round.
        to: Round,
    },
    /// A snapshot manifest: of a round, or the latest attested one.
    Manifest {
        /// Which snapshot.
        round: Option<Round>,
    },
    /// Addresses of other nodes.
    Peers,
    /// One snapshot chunk.
    Chunk {
        /// Snapshot round.
        round: Round,
        /// Chunk index.
        index: u32,
    },
}

/// A request awaiting its answer.
#[derive(Clone, Debug)]
pub struct InFlight {
    /// Who was asked.
    pub peer: PeerId,
    /// What was asked.
    pub kind: RequestKind,
    /// Answer expected by then.
    pub deadline: Timestamp,
    /// Attempts so far, this one included.
    pub attempt: u32,
    /// When it was sent (for the peer's RTT and goodput).
    pub sent: Timestamp,
}

impl<S: Store> Node<S> {
    /// Sends a new request to `peer`.
    pub(super) fn request(&mut self, now: Timestamp, peer: PeerId, kind: RequestKind) {
        self.send_request(now, peer, kind, 1);
    }

    fn send_request(&mut self, now: Timestamp, peer: PeerId, kind: RequestKind, attempt: u32) {
        let id = RequestId(self.next_request);
        self.next_request += 1;
        let msg = match &kind {
            RequestKind::Genesis => Message::GetGenesis { request: id },
            RequestKind::Vertices { hashes } => Message::GetVertices {
                request: id,
                hashes: hashes.clone(),
            },
            RequestKind::Rounds { from, to } => Message::GetRounds {
                request: id,
                from: *from,
                to: *to,
            },
            RequestKind::Manifest { round } => Message::GetManifest {
                request: id,
                round: *round,
            },
            RequestKind::Peers => Message::GetPeers { request: id },
            RequestKind::Chunk { round, index } => Message::GetChunk {
                request: id,
                round: *round,
                index: *index,
            },
        };
        self.requests.insert(
            id,
            InFlight {
                peer,
                kind,
                deadline: now.plus_ms(self.config.sync.peer_timeout_ms),
                attempt,
                sent: now,
            },
        );
        if let Some(p) = self.peers.peers.get_mut(&peer) {
            p.stats.on_sent(now);
        }
        self.send(peer, Channel::Request, msg);
    }

    /// Takes the request `id` if `peer` is the one it was sent to, and
    /// credits the peer with an answer of `bytes` useful bytes.
    pub(super) fn take_request(
        &mut self,
        now: Timestamp,
        peer: PeerId,
        id: RequestId,
        bytes: u64,
    ) -> Option<InFlight> {
        let r = match self.requests.get(&id) {
            Some(r) if r.peer == peer => self.requests.remove(&id)?,
            _ => return None,
        };
        if let Some(p) = self.peers.peers.get_mut(&peer) {
            let small = !matches!(
                r.kind,
                RequestKind::Chunk { .. } | RequestKind::Rounds { .. }
            );
            p.stats.on_answer(now, now.ms_since(r.sent), bytes, small);
        }
        Some(r)
    }

    /// Takes the request `id` of `peer` as failed: the peer loses weight.
    fn fail_request(&mut self, now: Timestamp, id: RequestId) -> Option<InFlight> {
        let r = self.requests.remove(&id)?;
        if let Some(p) = self.peers.peers.get_mut(&r.peer) {
            p.stats.on_failure(now);
        }
        Some(r)
    }

    /// Sends a failed request again to another peer, or gives up.
    fn retry(&mut self, now: Timestamp, failed: InFlight, why: &str) {
        if let RequestKind::Vertices { hashes } = &failed.kind {
            // Missing parents are asked again when the next child arrives;
            // no need to insist on one peer.
            for h in hashes {
                self.wanted.remove(h);
            }
            return;
        }
        if failed.kind == RequestKind::Peers {
            return; // addresses are a nicety: no retry
        }
        if let RequestKind::Chunk { index, .. } = failed.kind {
            self.chunk_timed_out(index);
            return;
        }
        if let RequestKind::Rounds { .. } = failed.kind {
            // Re-sending the same range would repeat a stale plan: drive_sync
            // plans the next one from where the node is now, avoiding the
            // peer that failed. Only consecutive failures count.
            crate::cov::mark("failed_range_planned_afresh");
            self.range_failures += 1;
            self.range_failed_peer = Some(failed.peer);
            if self.range_failures >= self.config.sync.retry_attempts {
                self.range_fetches_exhausted(now, failed.peer, why);
            }
            return;
        }
        if matches!(failed.kind, RequestKind::Manifest { .. })
            && !matches!(self.sync, SyncState::Discovery(_))
        {
            // Asked during a download whether it serves the snapshot (or
            // left over from a discovery that is over): the download goes
            // on with the sources it has.
            return;
        }
        if failed.attempt >= self.config.sync.retry_attempts {
            let reason = format!(
                "{:?} failed after {} attempts (last peer {}: {why})",
                failed.kind, failed.attempt, failed.peer
            );
            self.emit(Event::SyncFailed { reason });
            self.become_(SyncState::Failed);
            return;
        }
        let others: Vec<PeerId> = self.peers.ready().map(|p| p.id).collect();
        if others.is_empty() {
            return; // redone by drive_sync once a peer is ready
        }
        let pick = others
            .iter()
            .copied()
            .find(|p| *p != failed.peer)
            .unwrap_or(others[0]);
        self.send_request(now, pick, failed.kind, failed.attempt + 1);
    }

    /// `retry_attempts` range fetches in a row failed. A catching-up node
    /// waits `catch_up_backoff_ms`, then plans again from where it is; a
    /// live node (which fetched because it stalled) keeps following by
    /// gossip and asks again at its next stall.
    fn range_fetches_exhausted(&mut self, now: Timestamp, peer: PeerId, why: &str) {
        let reason = format!(
            "range fetch failed {} times in a row (last peer {peer}: {why})",
            self.range_failures
        );
        self.range_failures = 0;
        let SyncState::CatchUp(c) = self.sync else {
            return;
        };
        crate::cov::mark("catch_up_backoff");
        let retry_in_ms = self.config.sync.catch_up_backoff_ms;
        self.emit(Event::SyncBackoff {
            reason,
            retry_in_ms,
        });
        self.become_(SyncState::Backoff(Backoff {
            until: now.plus_ms(retry_in_ms),
            from: c.from,
        }));
    }

    pub(super) fn expire_requests(&mut self, now: Timestamp) -> Result<(), StoreError> {
        let late: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|(_, r)| r.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            if let Some(r) = self.fail_request(now, id) {
                self.retry(now, r, "timed out");
            }
        }
        Ok(())
    }

    pub(super) fn reassign_requests_of(
        &mut self,
        now: Timestamp,
        peer: PeerId,
    ) -> Result<(), StoreError> {
        let theirs: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|(_, r)| r.peer == peer)
            .map(|(id, _)| *id)
            .collect();
        for id in theirs {
            if let Some(r) = self.requests.remove(&id) {
                self.retry(now, r, "disconnected");
            }
        }
        Ok(())
    }

    pub(super) fn on_not_available(
        &mut self,
        now: Timestamp,
        peer: PeerId,
        id: RequestId,
        reason: &str,
    ) -> Result<(), StoreError> {
        let Some(r) = self.take_request(now, peer, id, 0) else {
            return Ok(());
        };
        match r.kind {
            // "No snapshot yet" is an answer, not a failure: discovery asks
            // again later.
            RequestKind::Manifest { .. } => crate::cov::mark("manifest_not_available_is_an_answer"),
            // The peer no longer serves that snapshot: stop asking it.
            RequestKind::Chunk { index, .. } => self.chunk_unavailable(peer, index),
            _ => self.retry(now, r, reason),
        }
        Ok(())
    }

    pub(super) fn serve_genesis(&mut self, peer: PeerId, request: RequestId) {
        let msg = match &self.chain {
            Some(c) => Message::Genesis {
                request,
                genesis: c.genesis.clone(),
            },
            None => Message::NotAvailable {
                request,
                reason: "no genesis yet".into(),
            },
        };
        self.send(peer, Channel::Request, msg);
    }

    /// A genesis arrived: adopt it if its hash is the chain we expect.
    pub(super) fn on_genesis(
        &mut self,
        now: Timestamp,
        peer: PeerId,
        id: RequestId,
        genesis: Genesis,
    ) -> Result<(), StoreError> {
        if self.take_request(now, peer, id, 0).is_none() || self.chain.is_some() {
            return Ok(());
        }
        let expected = self
            .config
            .trusted_chain_id
            .or_else(|| self.peers.peers.get(&peer).and_then(|p| p.chain_id));
        let chain_id = genesis.chain_id();
        if Some(chain_id) != expected {
            self.ban_peer(now, peer, "genesis does not hash to the announced chain id");
            return Ok(());
        }
        if let Err(e) = genesis.validate() {
            self.ban_peer(now, peer, &format!("invalid genesis: {e}"));
            return Ok(());
        }
        if self.config.sync.default_strategy == crate::config::SyncMode::Snapshot {
            super::init_chain_metadata(&mut self.store, &genesis)?;
        } else {
            super::init_chain(&mut self.store, &genesis)?;
        }
        let meta: ConsensusMeta = read_meta(&self.store, MetaKey::Consensus)?
            .ok_or_else(|| StoreError::Corrupt("consensus metadata missing after init".into()))?;
        let consensus = Consensus::new(
            meta,
            genesis.params.clone(),
            self.config.max_pending_vertices,
            self.config.max_rounds_ahead,
        );
        self.emit(Event::GenesisAdopted {
            chain_id,
            pinned: self.config.trusted_chain_id.is_some(),
            validators: genesis.validators.len(),
        });
        self.chain = Some(Chain {
            genesis,
            chain_id,
            consensus,
        });
        self.connect_to_validators(now);
        Ok(())
    }

    /// A fetch answer arrived.
    pub(super) fn on_vertices(
        &mut self,
        now: Timestamp,
        peer: PeerId,
        id: RequestId,
        mut vertices: Vec<Vertex>,
        through: Option<Round>,
    ) -> Result<(), StoreError> {
        let bytes = vertices
            .iter()
            .map(|v| borsh::object_length(v).unwrap_or(0) as u64)
            .sum();
        let Some(req) = self.take_request(now, peer, id, bytes) else {
            return Ok(()); // late or unsolicited: ignore
        };
        if let RequestKind::Vertices { hashes } = &req.kind {
            for h in hashes {
                self.wanted.remove(h);
            }
            // None of the parents asked for: this peer does not hold the
            // rounds they sit in (it joined from a snapshot after them).
            let lowest = self
                .chain
                .as_ref()
                .and_then(|c| c.consensus.lowest_pending_round());
            if let (true, Some(floor), Some(p)) =
                (vertices.is_empty(), lowest, self.peers.peers.get_mut(&peer))
            {
                p.history_floor = Some(p.history_floor.map_or(floor, |f| f.max(floor)));
            }
        }
        vertices.sort_by_key(|v| v.round());
        let got = vertices.len();
        if matches!(req.kind, RequestKind::Rounds { .. }) {
            self.range_failures = 0;
            self.range_failed_peer = None;
        }
        for v in vertices {
            if !self.peers.peers.contains_key(&peer) {
                break; // the sender was dropped for a bad vertex
            }
            self.accept_vertex(now, peer, v, VertexSource::Fetch)?;
        }
        if let (RequestKind::Rounds { to, .. }, Some(p)) =
            (&req.kind, self.peers.peers.get_mut(&peer))
        {
            if got == 0 {
                // Nothing at all in a range it claimed to be past: its
                // history starts later (it joined from a snapshot). Do not
                // ask it for these rounds again.
                let floor = to.next();
                p.history_floor = Some(p.history_floor.map_or(floor, |f| f.max(floor)));
            } else if let Some(held) = through.filter(|h| h < to) {
                // A short answer: it does not hold more than that yet.
                p.highest_round = Some(p.highest_round.map_or(held, |r| r.min(held)));
            }
        }
        if let (Some(top), Some(target)) = (self.highest_round(), self.trusted_best_round()) {
            self.emit(Event::CatchUpProgress {
                through: top,
                target,
            });
        }
        Ok(())
    }

    /// Decides what to fetch next and when the node is caught up.
    pub(super) fn drive_sync(&mut self, now: Timestamp) -> Result<(), StoreError> {
        match self.sync {
            SyncState::Failed | SyncState::Idle => return Ok(()),
            SyncState::Backoff(b) if now < b.until => return Ok(()),
            SyncState::Backoff(_) => self.become_catch_up(),
            _ => {}
        }
        let fetching_genesis = self
            .requests
            .values()
            .any(|r| r.kind == RequestKind::Genesis);
        if self.chain.is_none() {
            if !fetching_genesis {
                let source = self
                    .peers
                    .ready()
                    .find(|p| p.chain_id.is_some())
                    .map(|p| p.id);
                if let Some(peer) = source {
                    self.request(now, peer, RequestKind::Genesis);
                }
            }
            return Ok(());
        }
        let ready = self.peers.ready().count();
        if ready == 0 && !self.config.bootstrap_peers.is_empty() && self.phase() != SyncPhase::Live
        {
            return Ok(());
        }
        if self.wants_snapshot_sync(now) {
            return self.drive_snapshot_sync(now);
        }
        let ours = self.highest_round();
        let best = self.trusted_best_round();
        let behind = match (ours, best) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(o), Some(b)) => b > o.saturating_add(self.config.sync.max_behind_rounds),
        };
        self.fetch_pending_parents(now);
        let ranging = self
            .requests
            .values()
            .any(|r| matches!(r.kind, RequestKind::Rounds { .. }));
        // Gossip only carries new vertices: one that was sent before we were
        // connected never arrives by itself. A node that has not advanced for
        // a while although a peer is as far or further asks for the range.
        let stalled = now.ms_since(self.last_progress_at) >= self.config.stall_timeout_ms
            && matches!((ours, best), (Some(o), Some(b)) if b >= o);
        // Behind, a node catches up by range. A stalled one fetches the
        // range too; while live it stays live (it follows, and produces),
        // otherwise (handshake, replay) it counts as catching up.
        let catch_up = behind || (stalled && !matches!(self.sync, SyncState::Live));
        if catch_up && !matches!(self.sync, SyncState::CatchUp(_)) {
            self.become_catch_up();
        }
        if let (true, Some(best)) = (behind || stalled, best) {
            self.plan_ranges(now, ours.unwrap_or(Round(0)), best);
        } else if !ranging && !matches!(self.sync, SyncState::Live) {
            self.become_(SyncState::Live);
        }
        Ok(())
    }

    /// Range catch-up: keeps up to `parallel_range_fetches` consecutive
    /// windows of `range_fetch_rounds` in flight, from `from` towards
    /// `best`, each to the least loaded peer that claims to hold it (ties
    /// to the better ranked; the one that failed last only if nobody else
    /// can). Several peers share the work; a single one is pipelined.
    /// Windows that arrive ahead of a missing one wait in the pending set
    /// until it lands.
    fn plan_ranges(&mut self, now: Timestamp, from: Round, best: Round) {
        let span = self.config.sync.range_fetch_rounds.max(1);
        let mut in_flight: Vec<(Round, Round, PeerId)> = self
            .requests
            .values()
            .filter_map(|r| match r.kind {
                RequestKind::Rounds { from, to } => Some((from, to, r.peer)),
                _ => None,
            })
            .collect();
        let mut from = from;
        while in_flight.len() < self.config.sync.parallel_range_fetches && from <= best {
            let to = best.min(from.saturating_add(span - 1));
            if let Some(end) = in_flight
                .iter()
                .filter(|(a, b, _)| *a <= to && *b >= from)
                .map(|(_, b, _)| *b)
                .max()
            {
                from = end.saturating_add(1);
                continue;
            }
            let load = |id: PeerId| in_flight.iter().filter(|(_, _, q)| *q == id).count();
            let source = self
                .peers
                .ready()
                .filter(|p| p.highest_round.is_some_and(|r| r >= to))
                .filter(|p| p.history_floor.is_none_or(|f| f <= from))
                .max_by_key(|p| {
                    (
                        Some(p.id) != self.range_failed_peer,
                        std::cmp::Reverse(load(p.id)),
                        p.stats.rank(),
                        std::cmp::Reverse(p.id),
                    )
                })
                .map(|p| p.id);
            let Some(peer) = source else { break };
            self.last_progress_at = now;
            self.request(now, peer, RequestKind::Rounds { from, to });
            in_flight.push((from, to, peer));
            from = to.saturating_add(1);
        }
    }

    /// Asks for the missing parents of pending vertices, one request at a
    /// time, from the most advanced peer. This is what unblocks the pending
    /// set when the request made on a vertex's arrival was lost.
    fn fetch_pending_parents(&mut self, now: Timestamp) {
        let asking = self
            .requests
            .values()
            .any(|r| matches!(r.kind, RequestKind::Vertices { .. }));
        // A range fetch under way brings the parents of its own rounds;
        // parents below the lowest range in flight it never will.
        let below = self
            .requests
            .values()
            .filter_map(|r| match r.kind {
                RequestKind::Rounds { from, .. } => Some(from),
                _ => None,
            })
            .min()
            .unwrap_or(Round(u64::MAX));
        let Some(chain) = &self.chain else { return };
        if asking || chain.consensus.pending_len() == 0 {
            return;
        }
        let hashes: Vec<Hash> = chain
            .consensus
            .missing_parents(self.config.max_fetch_hashes, below)
            .into_iter()
            .filter(|h| !self.wanted.contains(h))
            .collect();
        // The parents sit just below the lowest pending round: ask the most
        // advanced peer that may hold them (not one whose history starts
        // later: a node that joined from a snapshot answers with nothing).
        let needed = chain
            .consensus
            .lowest_pending_round()
            .map_or(Round(0), |r| Round(r.0.saturating_sub(1)));
        let best = self
            .peers
            .ready()
            .max_by_key(|p| {
                (
                    p.history_floor.is_none_or(|f| f <= needed),
                    p.highest_round,
                    std::cmp::Reverse(p.id),
                )
            })
            .map(|p| p.id);
        if let (false, Some(peer)) = (hashes.is_empty(), best) {
            crate::cov::mark("pending_set_parents_fetched");
            self.wanted.extend(hashes.iter().copied());
            self.request(now, peer, RequestKind::Vertices { hashes });
        }
    }

    /// The highest round claimed by a peer whose claim may move this node to
    /// catch-up. A validator in the set listens only to fellow validators:
    /// otherwise any listener could claim a far-away round and keep it from
    /// producing. Others take any peer's word; a claim a peer cannot back
    /// with vertices is cut down when its range answer comes back short.
    pub(super) fn trusted_best_round(&self) -> Option<Round> {
        let Some(chain) = &self.chain else {
            return self.peers.best_round();
        };
        let round = chain.consensus.dag().highest_round().unwrap_or_default();
        let set = chain.consensus.meta().schedule.set_for_round(round);
        if self.config.role != crate::wire::Role::Validator || !set.contains(&self.key.public()) {
            return self.peers.best_round();
        }
        self.peers
            .ready()
            .filter(|p| p.key.is_some_and(|k| set.contains(&k)))
            .filter_map(|p| p.highest_round)
            .max()
    }

    /// Tells every ready peer how far we are.
    pub(super) fn broadcast_status(&mut self) {
        let msg = Message::Status {
            highest_round: self.highest_round(),
            committed_round: self.last_committed_round(),
        };
        let peers: Vec<PeerId> = self.peers.ready().map(|p| p.id).collect();
        for peer in peers {
            self.send(peer, Channel::Gossip, msg.clone());
        }
    }
}
