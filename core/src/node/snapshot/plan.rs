//! Planning a snapshot sync without doing it (`bluepods sync-plan`).
//!
//! With `plan_only`, a node runs discovery as usual — every check of the
//! manifest and of its attestation quorum included — and then, instead of
//! staging anything, asks each peer serving the chosen snapshot for one
//! chunk. The chunk is verified against the manifest like any other (a
//! liar is banned) and thrown away; what it measures is how fast each peer
//! delivers, which gives the download estimate. The result is a
//! [`SyncPlan`], kept by the node and announced by `Event::SyncPlanned`.

use crate::ids::{Hash, PeerId, PublicKey, Round, Timestamp};
use crate::interface::Event;
use crate::node::fetch::RequestKind;
use crate::node::state::SyncState;
use crate::node::Node;
use crate::snapshot::Manifest;
use crate::store::Store;
use crate::wire::Role;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A peer serving the planned snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanPeer {
    /// Its node key.
    pub key: PublicKey,
    /// Its address.
    pub addr: String,
    /// Its role.
    pub role: Role,
    /// Smoothed RTT of the small requests so far.
    pub rtt_ms: Option<u64>,
    /// Compressed bytes per second of its probe chunk, if it answered.
    pub probe_bytes_per_sec: Option<u64>,
}

/// What a snapshot sync would fetch, from whom, and how long it would take.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncPlan {
    /// The chain.
    pub chain_id: Hash,
    /// Snapshot round.
    pub round: Round,
    /// Attested manifest root.
    pub root: Hash,
    /// Attesting weight a joiner requires at that round.
    pub quorum: u64,
    /// Total weight of the set at that round.
    pub total_weight: u64,
    /// Validators in the set at that round.
    pub validators: usize,
    /// Chunks.
    pub chunks: usize,
    /// Raw (uncompressed) bytes.
    pub raw_bytes: u64,
    /// Estimated bytes on the wire, from the probes' compression ratio.
    pub download_bytes: u64,
    /// Objects.
    pub objects: u64,
    /// Transaction outcomes.
    pub outcomes: u64,
    /// Highest round a peer reported: what replay has to reach.
    pub network_round: Option<Round>,
    /// Peers serving it.
    pub peers: Vec<PlanPeer>,
    /// Estimated download time with every peer at its probe rate.
    pub eta_ms: Option<u64>,
}

/// Probes under way.
#[derive(Debug)]
pub(in crate::node) struct Probe {
    root: Hash,
    manifest: Arc<Manifest>,
    /// Per source: compressed and raw bytes of its probe, once answered;
    /// `None` while waiting or after a failure.
    results: BTreeMap<PeerId, Option<(u64, u64)>>,
    pending: usize,
}

impl<S: Store> Node<S> {
    /// The plan, once a `plan_only` node has made it.
    pub fn sync_plan(&self) -> Option<&SyncPlan> {
        match &self.sync {
            SyncState::Planned(plan) => Some(plan),
            _ => None,
        }
    }

    /// Discovery chose `root`: probe each source with one chunk.
    pub(in crate::node) fn start_probe(
        &mut self,
        now: Timestamp,
        root: Hash,
        manifest: Arc<Manifest>,
        sources: Vec<PeerId>,
    ) {
        let round = manifest.round;
        let chunks = manifest.chunks.len().max(1);
        self.become_(SyncState::Probe(Probe {
            root,
            manifest,
            results: sources.iter().map(|p| (*p, None)).collect(),
            pending: sources.len(),
        }));
        for (i, peer) in sources.into_iter().enumerate() {
            let index = (i % chunks) as u32;
            self.request(now, peer, RequestKind::Chunk { round, index });
        }
        self.finish_probe_if_done();
    }

    /// A probe chunk arrived: verify it, note its size, discard it.
    pub(in crate::node) fn on_probe_chunk(
        &mut self,
        now: Timestamp,
        peer: PeerId,
        index: u32,
        bytes: &[u8],
    ) {
        let SyncState::Probe(p) = &self.sync else {
            return;
        };
        let Some(info) = p.manifest.chunks.get(index as usize).cloned() else {
            return;
        };
        // Verified like any chunk (a liar is banned), then thrown away.
        match crate::snapshot::check::verify_whole(&info, bytes) {
            Ok(_) => {
                let result = (bytes.len() as u64, u64::from(info.raw_len));
                if let SyncState::Probe(p) = &mut self.sync {
                    if let Some(slot) = p.results.get_mut(&peer) {
                        *slot = Some(result);
                    }
                }
            }
            Err(why) => self.ban_peer(now, peer, &format!("served a corrupt chunk {index}: {why}")),
        }
        self.probe_answered();
    }

    /// A probe request failed (timeout, disconnect, not available).
    pub(in crate::node) fn probe_answered(&mut self) {
        if let SyncState::Probe(p) = &mut self.sync {
            p.pending = p.pending.saturating_sub(1);
        }
        self.finish_probe_if_done();
    }

    fn finish_probe_if_done(&mut self) {
        let SyncState::Probe(p) = &self.sync else {
            return;
        };
        if p.pending > 0 {
            return;
        }
        let Some(chain) = &self.chain else { return };
        let set = chain
            .consensus
            .meta()
            .schedule
            .set_for_round(p.manifest.round);
        let mut peers = Vec::new();
        let (mut wire, mut raw, mut rate) = (0u64, 0u64, 0u64);
        for (id, result) in &p.results {
            let Some(peer) = self.peers.peers.get(id) else {
                continue;
            };
            let Some(key) = peer.key else { continue };
            let probe_rate = result.and_then(|_| peer.stats.goodput_bps());
            if let Some((w, r)) = result {
                wire += w;
                raw += r;
            }
            rate += probe_rate.unwrap_or(0);
            peers.push(PlanPeer {
                key,
                addr: peer
                    .listen_addr
                    .clone()
                    .unwrap_or_else(|| peer.addr.clone()),
                role: peer.role,
                rtt_ms: peer.stats.rtt_ms,
                probe_bytes_per_sec: probe_rate,
            });
        }
        let m = &p.manifest;
        let download_bytes = if raw > 0 {
            (u128::from(m.raw_bytes) * u128::from(wire) / u128::from(raw)) as u64
        } else {
            m.raw_bytes
        };
        let plan = SyncPlan {
            chain_id: chain.chain_id,
            round: m.round,
            root: p.root,
            quorum: set.quorum(),
            total_weight: set.total_weight(),
            validators: set.len(),
            chunks: m.chunks.len(),
            raw_bytes: m.raw_bytes,
            download_bytes,
            objects: m.object_count,
            outcomes: m.outcome_count,
            network_round: self.trusted_best_round(),
            peers,
            eta_ms: (rate > 0).then(|| crate::progress::eta_ms(download_bytes, rate)),
        };
        self.emit(Event::SyncPlanned {
            round: plan.round,
            root: plan.root,
            peers: plan.peers.len(),
        });
        self.become_(SyncState::Planned(Box::new(plan)));
    }
}
