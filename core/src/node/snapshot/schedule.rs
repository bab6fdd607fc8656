//! The download's scheduling: which chunk to ask of which source next, as
//! a pure function of what the node tells it (`Slots`) — who is ready and
//! how each stands, what is in flight, and the limits.

use super::download::Download;
use crate::ids::{Hash, PeerId};
use crate::node::fetch::RequestKind;
use std::collections::BTreeMap;

/// The tail hedged with a second source: the last 1/20 (5%) of the chunks.
const HEDGE_TAIL_DIVISOR: usize = 20;

/// A peer's standing as the download sees it: its rank (strikes, whether
/// it is a member of the validator set, goodput, RTT) and its request
/// window. Members go before other peers that never failed: any number of
/// those may be hostile, at most f members may.
type Standing = (
    (std::cmp::Reverse<u32>, bool, u64, std::cmp::Reverse<u64>),
    usize,
);

/// What the node tells the download before it schedules: who is ready and
/// how they stand, what is in flight, and the limits.
#[derive(Debug)]
pub(in crate::node) struct Slots {
    /// Ready peers.
    pub(in crate::node) standing: BTreeMap<PeerId, Standing>,
    /// Chunk requests in flight: (index, peer).
    pub(in crate::node) chunks_in_flight: Vec<(u32, PeerId)>,
    /// Chunk answers being checked: they hold memory like requests in
    /// flight, so they count against `parallel_download_limit` (a check
    /// slower than the link slows the requests down).
    pub(in crate::node) chunks_checking: usize,
    /// Whether a fetch of vertices by hash is in flight.
    pub(in crate::node) asking_vertices: bool,
    /// `sync.parallel_download_limit`.
    pub(in crate::node) parallel_download_limit: usize,
    /// `sync.max_sync_peers`.
    pub(in crate::node) max_sync_peers: usize,
    /// `max_fetch_hashes`.
    pub(in crate::node) max_fetch_hashes: usize,
}

/// What the download asks of the node.
#[derive(Debug, PartialEq, Eq)]
pub(in crate::node) enum Step {
    /// No source is ready any more: discover again.
    SourcesGone,
    /// Send these requests; `complete` once nothing is missing.
    Requests {
        /// To whom, what.
        requests: Vec<(PeerId, RequestKind)>,
        /// Every chunk and frontier vertex is in.
        complete: bool,
    },
}

impl Download {
    /// Plans the next requests: keeps `parallel_download_limit` chunk
    /// requests in flight, each to the least loaded source with room in its
    /// window (ties to the better ranked), asks newcomers whether they serve
    /// this snapshot, hedges the tail, and asks for missing frontier
    /// vertices. Pure: it only reads `slots` and updates its own queues.
    pub(in crate::node) fn schedule(&mut self, slots: &Slots) -> Step {
        let standing = &slots.standing;
        let in_flight = slots.chunks_in_flight.len();
        self.sources.retain(|p| standing.contains_key(p));
        if self.sources.is_empty() {
            return Step::SourcesGone;
        }
        // Best ranked first: ties in load go to the better peer.
        self.sources
            .sort_by_key(|p| std::cmp::Reverse(standing.get(p).map(|s| s.0)));
        let mut load: BTreeMap<PeerId, usize> = self.sources.iter().map(|p| (*p, 0)).collect();
        for (_, peer) in &slots.chunks_in_flight {
            if let Some(n) = load.get_mut(peer) {
                *n += 1;
            }
        }
        let round = self.manifest.round;
        let mut requests = Vec::new();
        // Peers that were not asked about this snapshot (met since
        // discovery, or without a snapshot then) may serve it: ask them
        // once; a matching answer makes them a source.
        let newcomers: Vec<PeerId> = standing
            .keys()
            .filter(|p| !self.sources.contains(p) && !self.asked.contains(p))
            .take(
                slots
                    .max_sync_peers
                    .saturating_sub(self.sources.len() + self.asked.len()),
            )
            .copied()
            .collect();
        for peer in newcomers {
            self.asked.insert(peer);
            requests.push((peer, RequestKind::Manifest { round: Some(round) }));
        }
        for _ in in_flight + slots.chunks_checking..slots.parallel_download_limit {
            let free = self
                .sources
                .iter()
                .filter(|p| load[*p] < standing[*p].1)
                .min_by_key(|p| load[*p])
                .copied();
            let Some(peer) = free else { break };
            let Some(index) = self.todo.pop_first() else {
                break;
            };
            *load.get_mut(&peer).expect("a source") += 1;
            requests.push((peer, RequestKind::Chunk { round, index }));
        }
        // Hedge the tail: once what is left is within the last ~5% of the
        // chunks, ask a second source for each chunk still in flight, so one
        // slow peer cannot hold up the end. The first good answer wins.
        let tail = (self.manifest.chunks.len() / HEDGE_TAIL_DIVISOR).max(1);
        if self.todo.is_empty() && self.sources.len() > 1 && in_flight <= tail {
            let mut asked_now: Vec<(u32, PeerId)> = slots.chunks_in_flight.clone();
            asked_now.extend(requests.iter().filter_map(|(p, k)| match k {
                RequestKind::Chunk { index, .. } => Some((*index, *p)),
                _ => None,
            }));
            for (index, _) in &slots.chunks_in_flight {
                if self.hedged.insert(*index) {
                    // A source not asked for this chunk yet.
                    let other = self
                        .sources
                        .iter()
                        .copied()
                        .find(|p| !asked_now.contains(&(*index, *p)));
                    if let Some(other) = other {
                        asked_now.push((*index, other));
                        requests.push((
                            other,
                            RequestKind::Chunk {
                                round,
                                index: *index,
                            },
                        ));
                    }
                }
            }
        }
        if !slots.asking_vertices && !self.frontier_missing.is_empty() {
            let hashes: Vec<Hash> = self
                .frontier_missing
                .iter()
                .take(slots.max_fetch_hashes)
                .copied()
                .collect();
            // Postmortem (`byzantine` seed 10): always asked of the first
            // source, which was a forker answering with the other version
            // of its own vertices; the join never completed.
            let source = self.sources[self.frontier_asks % self.sources.len()];
            self.frontier_asks += 1;
            requests.push((source, RequestKind::Vertices { hashes }));
        }
        Step::Requests {
            requests,
            complete: self.is_complete(),
        }
    }
}
