//! Following and catching up: what to fetch next, from whom, and when the
//! node is caught up.
//!
//! A node more than `max_behind_rounds` behind its best trusted peer (or
//! one whose DAG stopped growing while a peer is as far) fetches rounds by
//! range, `parallel_range_fetches` windows of `range_fetch_rounds` at a
//! time, each from the least loaded peer that holds it; missing parents of
//! the pending set are fetched by hash. A catching-up node whose range
//! fetches fail `retry_attempts` times in a row backs off
//! (`catch_up_backoff_ms`) and tries again; a node far enough behind takes
//! a snapshot instead (`snapsync.rs`).

use crate::ids::{Hash, PeerId, Round, Timestamp};
use crate::interface::{Channel, Event};
use crate::node::fetch::RequestKind;
use crate::node::state::{Backoff, SyncState};
use crate::node::Node;
use crate::phase::SyncPhase;
use crate::store::{Store, StoreError};
use crate::wire::Message;

impl<S: Store> Node<S> {
    /// Decides what to fetch next and when the node is caught up.
    pub(in crate::node) fn drive_sync(&mut self, now: Timestamp) -> Result<(), StoreError> {
        match self.sync {
            SyncState::Failed | SyncState::Idle => return Ok(()),
            SyncState::Backoff(b) if now < b.until => return Ok(()),
            SyncState::Backoff(_) if self.chain.is_none() => {
                self.become_(SyncState::Handshake);
            }
            SyncState::Backoff(_) => self.become_catch_up(),
            _ => {}
        }

        if self.chain.is_none() {
            self.ask_for_genesis(now);
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
        // A range still in flight counts only if it asks for rounds beyond
        // what the node holds: one the node overtook (others answered, or
        // gossip did) must not keep it from going live while a peer that
        // withholds its answer lets the request time out.
        let ranging = self.requests.in_flight.values().any(|r| match r.kind {
            RequestKind::Rounds { to, .. } => ours.is_none_or(|o| to > o),
            _ => false,
        });
        // Gossip only carries new vertices: one that was sent before we were
        // connected never arrives by itself. A node that has not advanced for
        // a while although a peer is as far or further asks for the range.
        let stalled = now.ms_since(self.clock.last_progress_at) >= self.config.stall_timeout_ms
            && matches!((ours, best), (Some(o), Some(b)) if b >= o);
        // Behind, a node catches up by range. A stalled one fetches the
        // range too; while live it stays live (it follows, and produces),
        // otherwise (handshake, replay) it counts as catching up.
        let catch_up = behind || (stalled && !matches!(self.sync, SyncState::Live));
        if catch_up && !matches!(self.sync, SyncState::CatchUp(_)) {
            self.become_catch_up();
        }
        // A peer claims more than this node holds, and nothing proves
        // where the network is yet (too few members heard from, none of
        // their vertices seen): going live now would be a guess — usually
        // wrong, at round 0. Gossip or another member settles it within a
        // round or two.
        let in_the_dark = self.network_round_proven().is_none()
            && self
                .peers
                .best_round()
                .is_some_and(|c| ours.is_none_or(|o| c > o));
        if let (true, Some(best)) = (behind || stalled, best) {
            self.plan_ranges(now, ours.unwrap_or(Round(0)), best);
        } else if !ranging && !in_the_dark && !matches!(self.sync, SyncState::Live) {
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
            .in_flight
            .values()
            .filter_map(|r| match r.kind {
                RequestKind::Rounds { from, to } => Some((from, to, r.peer)),
                _ => None,
            })
            .collect();
        self.hedge_blocking_range(now, from, &mut in_flight);
        // Windows that landed above a missing one count as covered until a
        // request for them would have timed out.
        let fresh_ms = self.config.sync.peer_timeout_ms;
        self.ranges
            .landed
            .retain(|(_, to), at| *to > from && now.ms_since(*at) < fresh_ms);
        let landed: Vec<(Round, Round)> = self.ranges.landed.keys().copied().collect();
        let mut from = from;
        while in_flight.len() < self.config.sync.parallel_range_fetches && from <= best {
            let to = best.min(from.saturating_add(span - 1));
            if let Some(end) = in_flight
                .iter()
                .map(|(a, b, _)| (*a, *b))
                .chain(landed.iter().copied())
                .filter(|(a, b)| *a <= to && *b >= from)
                .map(|(_, b)| b)
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
                        Some(p.id) != self.ranges.last_peer,
                        // A peer whose requests timed out goes after those
                        // whose did not, however idle it is.
                        std::cmp::Reverse(p.stats.strikes),
                        self.peer_is_member(p),
                        std::cmp::Reverse(load(p.id)),
                        p.stats.rank(),
                        std::cmp::Reverse(p.id),
                    )
                })
                .map(|p| p.id);
            let Some(peer) = source else { break };
            self.clock.last_progress_at = now;
            self.request(now, peer, RequestKind::Rounds { from, to });
            in_flight.push((from, to, peer));
            from = to.saturating_add(1);
        }
    }

    /// The window the node waits on — it starts at or just above what the
    /// node holds, so nothing above it can be inserted before it lands —
    /// asked `range_hedge_ms` (or four of its peer's round trips) ago and
    /// not answered yet, is asked of a
    /// second peer too; the first answer wins. A peer that withholds its
    /// answers would otherwise stall catch-up for its whole request
    /// timeout, once per window it is given.
    fn hedge_blocking_range(
        &mut self,
        now: Timestamp,
        held: Round,
        in_flight: &mut Vec<(Round, Round, PeerId)>,
    ) {
        let hedge_ms = |peer: PeerId| {
            let rtt = self.peers.peers.get(&peer).and_then(|p| p.stats.rtt_ms);
            self.config.sync.range_hedge_ms.max(4 * rtt.unwrap_or(0))
        };
        let blocking = self
            .requests
            .in_flight
            .values()
            .filter_map(|r| match r.kind {
                RequestKind::Rounds { from, to }
                    if from <= held.saturating_add(1)
                        && now.ms_since(r.sent) >= hedge_ms(r.peer) =>
                {
                    Some((from, to, r.peer))
                }
                _ => None,
            })
            .min_by_key(|(from, _, peer)| (*from, *peer));
        let Some((from, to, slow)) = blocking else {
            return;
        };
        if in_flight
            .iter()
            .filter(|(a, b, _)| *a == from && *b == to)
            .count()
            > 1
        {
            return; // hedged already
        }
        let other = self
            .peers
            .ready()
            .filter(|p| p.id != slow && p.highest_round.is_some_and(|r| r >= to))
            .filter(|p| p.history_floor.is_none_or(|f| f <= from))
            .max_by_key(|p| {
                (
                    std::cmp::Reverse(p.stats.strikes),
                    self.peer_is_member(p),
                    p.stats.rank(),
                    p.id,
                )
            })
            .map(|p| p.id);
        if let Some(peer) = other {
            crate::cov::mark("blocking_range_hedged");
            self.request(now, peer, RequestKind::Rounds { from, to });
            in_flight.push((from, to, peer));
        }
    }

    /// Whether `p` proved a key of the validator set. Whom to ask first:
    /// any number of other peers may be hostile (keys cost nothing), at
    /// most f members may, so a request the node waits on goes to a member
    /// where one holds what it wants. Among peers that never failed it
    /// would otherwise go to whoever connected first.
    fn peer_is_member(&self, p: &crate::peers::Peer) -> bool {
        p.key.as_ref().is_some_and(|k| self.is_known_validator(k))
    }

    /// Asks for the missing parents of pending vertices, one request at a
    /// time, from the most advanced peer. This is what unblocks the pending
    /// set when the request made on a vertex's arrival was lost.
    fn fetch_pending_parents(&mut self, now: Timestamp) {
        let asking = self
            .requests
            .in_flight
            .values()
            .any(|r| matches!(r.kind, RequestKind::Vertices { .. }));
        // A range fetch under way brings the parents of its own rounds;
        // parents below the lowest range in flight it never will.
        let below = self
            .requests
            .in_flight
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
            .filter(|h| !self.requests.wanted.contains(h))
            .collect();
        // The parents sit just below the lowest pending round: ask the most
        // advanced peer that may hold them (not one whose history starts
        // later: a node that joined from a snapshot answers with nothing).
        let needed = chain
            .consensus
            .lowest_pending_round()
            .map_or(Round(0), |r| Round(r.0.saturating_sub(1)));
        // Claims count up to the proven round only (`trusted_best_round`),
        // so a peer claiming more is not preferred for it; among equals the
        // better ranked (fewer timeouts) is asked.
        let proven = self.trusted_best_round();
        let best = self
            .peers
            .ready()
            .max_by_key(|p| {
                (
                    p.history_floor.is_none_or(|f| f <= needed),
                    p.highest_round.min(proven),
                    self.peer_is_member(p),
                    p.stats.rank(),
                    std::cmp::Reverse(p.id),
                )
            })
            .map(|p| p.id);
        if let (false, Some(peer)) = (hashes.is_empty(), best) {
            crate::cov::mark("pending_set_parents_fetched");
            self.requests.wanted.extend(hashes.iter().copied());
            self.request(now, peer, RequestKind::Vertices { hashes });
        }
    }

    /// Tells every ready peer how far we are.
    pub(in crate::node) fn broadcast_status(&mut self) {
        let msg = Message::Status {
            highest_round: self.highest_round(),
            committed_round: self.last_committed_round(),
        };
        let peers: Vec<PeerId> = self.peers.ready().map(|p| p.id).collect();
        for peer in peers {
            self.send(peer, Channel::Gossip, msg.clone());
        }
    }

    /// Nobody answered `retry_attempts` requests for the genesis or a
    /// manifest: a daemon says so, waits `catch_up_backoff_ms` and tries
    /// again (from the handshake without a chain, else by catching up,
    /// which looks for a snapshot again if one is wanted).
    pub(in crate::node) fn back_off(&mut self, now: Timestamp, reason: String) {
        crate::cov::mark("unanswered_sync_backs_off");
        let retry_in_ms = self.config.sync.catch_up_backoff_ms;
        let from = self
            .sync
            .catching_up_from()
            .unwrap_or_else(|| self.highest_round().unwrap_or_default());
        self.emit(Event::SyncBackoff {
            reason,
            retry_in_ms,
        });
        self.become_(SyncState::Backoff(Backoff {
            until: now.plus_ms(retry_in_ms),
            from,
        }));
    }

    /// `retry_attempts` range fetches in a row failed. A catching-up node
    /// waits `catch_up_backoff_ms`, then plans again from where it is; a
    /// live node (which fetched because it stalled) keeps following by
    /// gossip and asks again at its next stall.
    pub(in crate::node) fn range_fetches_exhausted(
        &mut self,
        now: Timestamp,
        peer: PeerId,
        why: &str,
    ) {
        let reason = format!(
            "range fetch failed {} times in a row (last peer {peer}: {why})",
            self.ranges.count
        );
        self.ranges.count = 0;
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
}
