//! The fetch mini-protocol, by hash and by round range, and the request
//! table every request protocol shares.
//!
//! - **Messages**: `GetVertices { hashes }`, `GetRounds { from, to }`, both
//!   answered by `Vertices { vertices, through }` or `NotAvailable`.
//! - **Requester side**: here (the request table, deadlines, retries, the
//!   answers) and `catchup.rs` (what to fetch next and from whom).
//! - **Responder side**: `serve.rs`.
//! - An answer counts only from the peer asked, under the id it was asked
//!   with (`take_request`); anything else is ignored.
//! - **Tests**: `core/tests/sync_traces.rs` (range catch-up),
//!   `core/tests/marked_paths.rs`, `core/tests/regressions.rs`,
//!   `core/tests/peers.rs`.
//!
//! Every request has a deadline (`TimerKind::Request`). A request that times
//! out, or whose peer leaves, is sent again to another ready peer (a range
//! request is planned afresh instead, from the node's current position, and
//! preferably from another peer). After `retry_attempts` attempts at the
//! genesis or a manifest a one-shot sync reports `SyncFailed` naming what
//! failed and from whom, and enters `Failed`; a daemon backs off for
//! `catch_up_backoff_ms` and asks again. After `retry_attempts` range fetches
//! failed in a row, a catching-up node backs off for `catch_up_backoff_ms`
//! and then catches up again (`Backoff`); a live node keeps following by
//! gossip and asks again at its next stall.

mod catchup;
mod serve;

use crate::ids::{Hash, PeerId, Round, Timestamp};
use crate::interface::{Channel, Event, VertexSource};
use crate::node::state::SyncState;
use crate::node::Node;
use crate::store::{Store, StoreError};
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
    /// Epoch certificates from an epoch on.
    EpochCertificates {
        /// The first epoch wanted.
        from: crate::ids::Epoch,
    },
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

impl RequestKind {
    /// A short description for logs.
    pub fn describe(&self) -> String {
        match self {
            RequestKind::Genesis => "genesis".into(),
            RequestKind::Vertices { hashes } => format!("{} vertices by hash", hashes.len()),
            RequestKind::Rounds { from, to } => format!("rounds {from}..={to}"),
            RequestKind::Manifest { round: None } => "the latest manifest".into(),
            RequestKind::Manifest { round: Some(r) } => format!("the manifest of round {r}"),
            RequestKind::Peers => "peer addresses".into(),
            RequestKind::EpochCertificates { from } => format!("epoch certificates from {from}"),
            RequestKind::Chunk { round, index } => format!("chunk {index} of snapshot {round}"),
        }
    }
}

impl<S: Store> Node<S> {
    /// Whether the node waits for `peer`'s answer to `request`: a driver
    /// may start work on such an answer (checking its signatures ahead)
    /// without a peer being able to make it work for anything unasked.
    pub fn awaits_answer(&self, peer: PeerId, request: RequestId) -> bool {
        self.requests
            .in_flight
            .get(&request)
            .is_some_and(|r| r.peer == peer)
    }

    /// Sends a new request to `peer`.
    pub(in crate::node) fn request(&mut self, now: Timestamp, peer: PeerId, kind: RequestKind) {
        self.send_request(now, peer, kind, 1);
    }

    fn send_request(&mut self, now: Timestamp, peer: PeerId, kind: RequestKind, attempt: u32) {
        let id = RequestId(self.requests.next_id);
        self.requests.next_id += 1;
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
            RequestKind::EpochCertificates { from } => Message::GetEpochCertificates {
                request: id,
                from: *from,
            },
            RequestKind::Chunk { round, index } => self.chunk_request(id, *round, *index),
        };
        let timeout_ms = self.config.sync.peer_timeout_ms + self.transfer_allowance_ms(peer, &kind);
        self.requests.in_flight.insert(
            id,
            InFlight {
                peer,
                kind,
                deadline: now.plus_ms(timeout_ms),
                attempt,
                sent: now,
            },
        );
        if let Some(p) = self.peers.peers.get_mut(&peer) {
            p.stats.on_sent(now);
        }
        self.send(peer, Channel::Request, msg);
    }

    /// Extra time a chunk request to `peer` gets for the bytes queued on
    /// its link (`PeerStats::transfer_allowance_ms`), up to
    /// `sync.max_transfer_allowance_ms` (a source not measured yet is assumed
    /// as slow as `sync.min_expected_goodput_bytes_per_sec`); none for other
    /// requests.
    fn transfer_allowance_ms(&self, peer: PeerId, kind: &RequestKind) -> u64 {
        let (RequestKind::Chunk { index, .. }, SyncState::Fetch(d), Some(p)) =
            (kind, &self.sync, self.peers.peers.get(&peer))
        else {
            return 0;
        };
        let bytes = d
            .manifest
            .chunks
            .get(*index as usize)
            .map_or(0, |c| u64::from(c.raw_len));
        let max_ms = self.config.sync.max_transfer_allowance_ms;
        let floor_bps = self.config.sync.min_expected_goodput_bytes_per_sec;
        p.stats
            .transfer_allowance_ms(bytes, p.stats.in_flight, floor_bps, max_ms)
    }

    /// Takes the request `id` if `peer` is the one it was sent to, and
    /// credits the peer with an answer of `bytes` useful bytes.
    pub(in crate::node) fn take_request(
        &mut self,
        now: Timestamp,
        peer: PeerId,
        id: RequestId,
        bytes: u64,
    ) -> Option<InFlight> {
        let r = match self.requests.in_flight.get(&id) {
            Some(r) if r.peer == peer => self.requests.in_flight.remove(&id)?,
            _ => return self.take_late_answer(peer, id, bytes),
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

    /// The answer to a chunk request that already timed out: taken if the
    /// request was `peer`'s (the chunk went back to the queue, and is used
    /// if still wanted). Postmortem (issue 10): on a link slower than the
    /// first timeout, every first answer came after its request had been
    /// given up, was dropped, and the download never made progress.
    fn take_late_answer(&mut self, peer: PeerId, id: RequestId, bytes: u64) -> Option<InFlight> {
        match self.requests.expired.get(&id) {
            Some(r) if r.peer == peer => {}
            _ => return None,
        }
        crate::cov::mark("late_chunk_answer_taken");
        if let Some(p) = self.peers.peers.get_mut(&peer) {
            p.stats.on_late_answer(bytes);
        }
        self.requests.expired.remove(&id)
    }

    /// Takes the request `id` of `peer` as failed: the peer loses weight.
    /// A chunk request is remembered, in case its answer comes after all.
    fn fail_request(&mut self, now: Timestamp, id: RequestId) -> Option<InFlight> {
        let r = self.requests.in_flight.remove(&id)?;
        if let Some(p) = self.peers.peers.get_mut(&r.peer) {
            p.stats.on_failure(now);
        }
        if matches!(r.kind, RequestKind::Chunk { .. }) {
            self.requests.expired.insert(id, r.clone());
            while self.requests.expired.len() > self.config.max_requests_in_flight {
                self.requests.expired.pop_first();
            }
        }
        Some(r)
    }

    /// Reports a failed request (`Event::RequestFailed`), at most once a
    /// second per peer: a peer that lets a window of 24 chunk requests time
    /// out gets one line, which counts the others.
    fn report_failure(&mut self, now: Timestamp, failed: &InFlight, why: &str) {
        let Some(p) = self.peers.peers.get_mut(&failed.peer) else {
            return;
        };
        if p.failure_reported_at
            .is_some_and(|t| now.ms_since(t) < 1_000)
        {
            p.failures_unreported = p.failures_unreported.saturating_add(1);
            return;
        }
        p.failure_reported_at = Some(now);
        let unreported = std::mem::take(&mut p.failures_unreported);
        let addr = p.addr.clone();
        self.emit(Event::RequestFailed {
            peer: failed.peer,
            addr,
            what: failed.kind.describe(),
            attempt: failed.attempt,
            attempts_max: self.config.sync.retry_attempts,
            reason: why.to_string(),
            unreported,
        });
    }

    /// Sends a failed request again to another peer, or gives up.
    fn retry(&mut self, now: Timestamp, failed: InFlight, why: &str) {
        if let RequestKind::Vertices { hashes } = &failed.kind {
            // Missing parents are asked again when the next child arrives;
            // no need to insist on one peer.
            for h in hashes {
                self.requests.wanted.remove(h);
            }
            return;
        }
        if failed.kind == RequestKind::Peers {
            return; // addresses are a nicety: no retry
        }
        if let RequestKind::EpochCertificates { .. } = failed.kind {
            return; // `fetch_certificates` asks the next peer
        }
        if failed.kind == RequestKind::Genesis && self.chain.is_some() {
            return; // another source answered first
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
            self.ranges.count += 1;
            self.ranges.last_peer = Some(failed.peer);
            if self.ranges.count >= self.config.sync.retry_attempts {
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
            if self.config.sync.give_up_after_retries {
                self.emit(Event::SyncFailed { reason });
                self.become_(SyncState::Failed);
            } else {
                self.back_off(now, reason);
            }
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

    pub(in crate::node) fn expire_requests(&mut self, now: Timestamp) -> Result<(), StoreError> {
        let late: Vec<RequestId> = self
            .requests
            .in_flight
            .iter()
            .filter(|(_, r)| r.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            if let Some(r) = self.fail_request(now, id) {
                self.report_failure(now, &r, "timed out");
                self.retry(now, r, "timed out");
            }
        }
        Ok(())
    }

    pub(in crate::node) fn reassign_requests_of(
        &mut self,
        now: Timestamp,
        peer: PeerId,
    ) -> Result<(), StoreError> {
        let theirs: Vec<RequestId> = self
            .requests
            .in_flight
            .iter()
            .filter(|(_, r)| r.peer == peer)
            .map(|(id, _)| *id)
            .collect();
        for id in theirs {
            if let Some(r) = self.requests.in_flight.remove(&id) {
                self.retry(now, r, "disconnected");
            }
        }
        Ok(())
    }

    pub(in crate::node) fn on_not_available(
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

    /// A fetch answer arrived.
    pub(in crate::node) fn on_vertices(
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
                self.requests.wanted.remove(h);
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
            self.ranges.count = 0;
            self.ranges.last_peer = None;
        }
        for v in vertices {
            if !self.peers.peers.contains_key(&peer) {
                break; // the sender was dropped for a bad vertex
            }
            self.accept_vertex(now, peer, v, VertexSource::Fetch)?;
        }
        if let RequestKind::Rounds { from, to } = req.kind {
            if got > 0 && through.is_none_or(|h| h >= to) {
                self.ranges.landed.insert((from, to), now);
            }
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
}
