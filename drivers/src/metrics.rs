//! Prometheus metrics, fed by the node's events and status.
//!
//! Counters move on events as the event loop reports them; gauges are set
//! from a status snapshot just before each scrape, so they are never stale.

use bluepods_core::interface::{Limit, VertexSource};
use bluepods_core::{Event, NodeStatus, SyncPhase};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabel {
    phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabel {
    source: &'static str,
}

/// A peer, by the first 16 hex digits of its node key: stable across
/// reconnections, bounded by the connection limit.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabel {
    peer: String,
}

fn peer_label(key: &bluepods_core::PublicKey) -> PeerLabel {
    PeerLabel {
        peer: key.to_string().chars().take(16).collect(),
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabel {
    limit: &'static str,
}

/// Every metric the node exports.
pub struct Metrics {
    registry: Registry,
    phase: Family<PhaseLabel, Gauge>,
    highest_round: Gauge,
    last_committed_round: Gauge,
    peers: Gauge,
    mempool_txs: Gauge,
    pending_vertices: Gauge,
    dag_vertices: Gauge,
    validators: Gauge,
    vertices_produced: Counter,
    vertices_received: Family<SourceLabel, Counter>,
    commits: Counter,
    txs_committed: Counter,
    txs_failed: Counter,
    peer_rejections: Counter,
    dial_failures: Counter,
    request_failures: Counter,
    peer_bans: Counter,
    equivocations: Counter,
    anchor_duty_revocations: Counter,
    validator_removals: Counter,
    certified_epoch: Gauge,
    limit_hits: Family<LimitLabel, Counter>,
    snapshots_built: Counter,
    snapshot_round: Gauge,
    sync_bytes_done: Gauge,
    sync_bytes_total: Gauge,
    sync_chunks_done: Gauge,
    sync_chunks_total: Gauge,
    sync_eta_seconds: Gauge,
    replay_rounds_done: Gauge,
    replay_rounds_total: Gauge,
    buffer_bytes: Gauge,
    buffer_vertices: Gauge,
    peer_goodput: Family<PeerLabel, Gauge>,
    peer_rtt_ms: Family<PeerLabel, Gauge>,
    peer_timeouts: Family<PeerLabel, Gauge>,
    peer_bytes_received: Family<PeerLabel, Gauge>,
    peer_faults: Family<PeerLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// All metrics registered under the `bluepods` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("bluepods");
        let m = Metrics {
            phase: Family::default(),
            highest_round: Gauge::default(),
            last_committed_round: Gauge::default(),
            peers: Gauge::default(),
            mempool_txs: Gauge::default(),
            pending_vertices: Gauge::default(),
            dag_vertices: Gauge::default(),
            validators: Gauge::default(),
            vertices_produced: Counter::default(),
            vertices_received: Family::default(),
            commits: Counter::default(),
            txs_committed: Counter::default(),
            txs_failed: Counter::default(),
            peer_rejections: Counter::default(),
            dial_failures: Counter::default(),
            request_failures: Counter::default(),
            peer_bans: Counter::default(),
            equivocations: Counter::default(),
            anchor_duty_revocations: Counter::default(),
            validator_removals: Counter::default(),
            certified_epoch: Gauge::default(),
            limit_hits: Family::default(),
            snapshots_built: Counter::default(),
            snapshot_round: Gauge::default(),
            sync_bytes_done: Gauge::default(),
            sync_bytes_total: Gauge::default(),
            sync_chunks_done: Gauge::default(),
            sync_chunks_total: Gauge::default(),
            sync_eta_seconds: Gauge::default(),
            replay_rounds_done: Gauge::default(),
            replay_rounds_total: Gauge::default(),
            buffer_bytes: Gauge::default(),
            buffer_vertices: Gauge::default(),
            peer_goodput: Family::default(),
            peer_rtt_ms: Family::default(),
            peer_timeouts: Family::default(),
            peer_bytes_received: Family::default(),
            peer_faults: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "sync_phase",
            "1 for the current sync phase",
            m.phase.clone(),
        );
        registry.register(
            "highest_round",
            "Highest DAG round held",
            m.highest_round.clone(),
        );
        registry.register(
            "last_committed_round",
            "Round of the last committed anchor",
            m.last_committed_round.clone(),
        );
        registry.register(
            "peers",
            "Connections with a completed handshake",
            m.peers.clone(),
        );
        registry.register(
            "mempool_txs",
            "Transactions waiting in the mempool",
            m.mempool_txs.clone(),
        );
        registry.register(
            "pending_vertices",
            "Vertices waiting for parents",
            m.pending_vertices.clone(),
        );
        registry.register(
            "dag_vertices",
            "Vertices in the in-memory DAG window",
            m.dag_vertices.clone(),
        );
        registry.register(
            "validators",
            "Validators in the current set",
            m.validators.clone(),
        );
        registry.register(
            "vertices_produced",
            "Vertices produced by this node",
            m.vertices_produced.clone(),
        );
        registry.register(
            "vertices_received",
            "Vertices from others accepted into the DAG",
            m.vertices_received.clone(),
        );
        registry.register("commits", "Anchors committed", m.commits.clone());
        registry.register(
            "txs_committed",
            "Transactions applied",
            m.txs_committed.clone(),
        );
        registry.register(
            "txs_failed",
            "Transactions recorded as failed",
            m.txs_failed.clone(),
        );
        registry.register(
            "peer_rejections",
            "Peers refused or dropped for a protocol fault",
            m.peer_rejections.clone(),
        );
        registry.register(
            "dial_failures",
            "Dials that failed (unreachable, refused, timed out, unresolvable)",
            m.dial_failures.clone(),
        );
        registry.register(
            "request_failures",
            "Requests to peers that went unanswered in time",
            m.request_failures.clone(),
        );
        registry.register(
            "peer_bans",
            "Peers banned for a proven fault",
            m.peer_bans.clone(),
        );
        registry.register(
            "equivocations",
            "Validators proven to equivocate (a proof found here or from a peer; one per validator)",
            m.equivocations.clone(),
        );
        registry.register(
            "anchor_duty_revocations",
            "Validators taken off anchor duty by a committed equivocation proof",
            m.anchor_duty_revocations.clone(),
        );
        registry.register(
            "validator_removals",
            "Members removed from the set for inactivity (no committed vertex for inactive_epochs_max epochs)",
            m.validator_removals.clone(),
        );
        registry.register(
            "certified_epoch",
            "The last epoch whose validator set this node holds a certificate of",
            m.certified_epoch.clone(),
        );
        registry.register(
            "limit_hits",
            "Times a configured limit refused input",
            m.limit_hits.clone(),
        );
        registry.register(
            "snapshots_built",
            "Snapshots built and made servable",
            m.snapshots_built.clone(),
        );
        registry.register(
            "snapshot_round",
            "Round of the latest servable snapshot",
            m.snapshot_round.clone(),
        );
        registry.register(
            "sync_bytes_done",
            "Snapshot bytes verified and staged",
            m.sync_bytes_done.clone(),
        );
        registry.register(
            "sync_bytes_total",
            "Snapshot bytes to fetch",
            m.sync_bytes_total.clone(),
        );
        registry.register(
            "sync_chunks_done",
            "Snapshot chunks verified and staged",
            m.sync_chunks_done.clone(),
        );
        registry.register(
            "sync_chunks_total",
            "Snapshot chunks to fetch",
            m.sync_chunks_total.clone(),
        );
        registry.register(
            "sync_eta_seconds",
            "Estimated seconds until the snapshot is downloaded",
            m.sync_eta_seconds.clone(),
        );
        registry.register(
            "replay_rounds_done",
            "Rounds replayed or fetched since replay or catch-up began",
            m.replay_rounds_done.clone(),
        );
        registry.register(
            "replay_rounds_total",
            "Rounds to replay or fetch in all, since replay or catch-up began",
            m.replay_rounds_total.clone(),
        );
        registry.register(
            "buffer_bytes",
            "Bytes of gossip buffered while a snapshot downloads",
            m.buffer_bytes.clone(),
        );
        registry.register(
            "buffer_vertices",
            "Vertices of gossip buffered while a snapshot downloads",
            m.buffer_vertices.clone(),
        );
        registry.register(
            "peer_goodput_bytes_per_second",
            "Useful bytes per second a peer delivered while it had requests outstanding",
            m.peer_goodput.clone(),
        );
        registry.register(
            "peer_rtt_ms",
            "Smoothed round-trip time of small requests to a peer",
            m.peer_rtt_ms.clone(),
        );
        registry.register(
            "peer_timeouts",
            "Requests to a peer that timed out on the current connection",
            m.peer_timeouts.clone(),
        );
        registry.register(
            "peer_bytes_received",
            "Useful bytes received from a peer on the current connection",
            m.peer_bytes_received.clone(),
        );
        registry.register(
            "peer_faults",
            "Proven faults by peer (each one bans it)",
            m.peer_faults.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Moves counters for one event.
    pub fn observe(&self, event: &Event) {
        match event {
            Event::VertexProduced { .. } => {
                self.vertices_produced.inc();
            }
            Event::VertexAccepted { source, .. } => {
                let source = match source {
                    VertexSource::Own => "own",
                    VertexSource::Gossip => "gossip",
                    VertexSource::Fetch => "fetch",
                };
                self.vertices_received
                    .get_or_create(&SourceLabel { source })
                    .inc();
            }
            Event::Committed {
                txs_committed,
                txs_failed,
                ..
            } => {
                self.commits.inc();
                self.txs_committed.inc_by(u64::from(*txs_committed));
                self.txs_failed.inc_by(u64::from(*txs_failed));
            }
            Event::PeerRejected { .. } => {
                self.peer_rejections.inc();
            }
            Event::DialFailed { .. } => {
                self.dial_failures.inc();
            }
            Event::RequestFailed { unreported, .. } => {
                self.request_failures.inc_by(1 + u64::from(*unreported));
            }
            Event::PeerBanned { key, .. } => {
                self.peer_bans.inc();
                self.peer_faults.get_or_create(&peer_label(key)).inc();
            }
            Event::SnapshotBuilt { .. } => {
                self.snapshots_built.inc();
            }
            Event::SnapshotSyncStarted {
                chunks, raw_bytes, ..
            } => {
                self.sync_chunks_total.set(*chunks as i64);
                self.sync_bytes_total.set(*raw_bytes as i64);
            }
            Event::SnapshotProgress {
                chunks_done,
                bytes_done,
                eta_ms,
                ..
            } => {
                self.sync_chunks_done.set(*chunks_done as i64);
                self.sync_bytes_done.set(*bytes_done as i64);
                self.sync_eta_seconds.set((*eta_ms / 1000) as i64);
            }
            Event::Equivocation { .. } => {
                self.equivocations.inc();
            }
            Event::AnchorDutyRevoked { .. } => {
                self.anchor_duty_revocations.inc();
            }
            Event::ValidatorRemoved { .. } => {
                self.validator_removals.inc();
            }
            Event::EpochCertified { epoch, .. } => {
                self.certified_epoch.set(epoch.0 as i64);
            }
            Event::LimitHit { limit } => {
                let limit = match limit {
                    Limit::Peers => "peers",
                    Limit::PendingVertices => "pending_vertices",
                    Limit::Mempool => "mempool",
                    Limit::ForwardedTxs => "forwarded_txs",
                    Limit::Buffer => "buffer",
                    Limit::EarlyMessages => "early_messages",
                    Limit::GossipVerification => "gossip_verification",
                    Limit::SendQueue => "send_queue",
                    Limit::Evidence => "evidence",
                };
                self.limit_hits.get_or_create(&LimitLabel { limit }).inc();
            }
            _ => {}
        }
    }

    /// Sets gauges from a status snapshot.
    pub fn update(&self, s: &NodeStatus) {
        for p in SyncPhase::ALL {
            let v = i64::from(p == s.phase);
            self.phase
                .get_or_create(&PhaseLabel { phase: p.name() })
                .set(v);
        }
        let round = |r: Option<bluepods_core::Round>| r.map_or(-1, |r| r.0 as i64);
        self.highest_round.set(round(s.highest_round));
        self.last_committed_round.set(round(s.last_committed_round));
        self.peers
            .set(s.peers.iter().filter(|p| p.ready).count() as i64);
        self.mempool_txs.set(s.mempool_txs as i64);
        self.pending_vertices.set(s.pending_vertices as i64);
        self.dag_vertices.set(s.dag_vertices as i64);
        self.validators.set(s.validators as i64);
        self.snapshot_round.set(round(s.snapshot.map(|(r, _)| r)));
        let (done, total) = s.catch_up.map_or((0, 0), |c| {
            (
                c.through.0.saturating_sub(c.from.0),
                c.target.0.saturating_sub(c.from.0),
            )
        });
        self.replay_rounds_done.set(done as i64);
        self.replay_rounds_total.set(total as i64);
        self.buffer_bytes.set(s.buffer_bytes as i64);
        self.buffer_vertices.set(s.buffer_vertices as i64);
        if let Some(d) = &s.download {
            self.sync_chunks_done.set(d.chunks_done as i64);
            self.sync_bytes_done.set(d.bytes_done as i64);
            self.sync_chunks_total.set(d.chunks_total as i64);
            self.sync_bytes_total.set(d.bytes_total as i64);
        }
        // Peers come and go: export the connected ones only.
        self.peer_goodput.clear();
        self.peer_rtt_ms.clear();
        self.peer_timeouts.clear();
        self.peer_bytes_received.clear();
        for p in s.peers.iter().filter(|p| p.ready) {
            let Some(key) = &p.key else { continue };
            let label = peer_label(key);
            if let Some(g) = p.goodput_bps {
                self.peer_goodput.get_or_create(&label).set(g as i64);
            }
            if let Some(r) = p.rtt_ms {
                self.peer_rtt_ms.get_or_create(&label).set(r as i64);
            }
            self.peer_timeouts
                .get_or_create(&label)
                .set(i64::from(p.failures));
            self.peer_bytes_received
                .get_or_create(&label)
                .set(p.bytes_received as i64);
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bluepods_core::{Hash, Round};

    #[test]
    fn events_move_counters_and_render_as_text() {
        let m = Metrics::new();
        m.observe(&Event::Committed {
            round: Round(2),
            anchor: Hash([0; 32]),
            vertices: 3,
            txs_committed: 5,
            txs_failed: 1,
        });
        let text = m.render();
        assert!(text.contains("bluepods_txs_committed_total 5"), "{text}");
        assert!(text.contains("bluepods_commits_total 1"), "{text}");
    }

    #[test]
    fn per_peer_gauges_follow_the_connected_peers() {
        use bluepods_core::store::MemStore;
        use bluepods_core::{Keypair, Node, NodeConfig, PeerStatus, Role, Timestamp};
        let node = Node::new(
            NodeConfig::default(),
            Keypair::from_label("metrics"),
            MemStore::new(),
            1,
            Timestamp(0),
        )
        .unwrap();
        let mut status = node.status();
        let key = Keypair::from_label("peer").public();
        status.peers.push(PeerStatus {
            id: 1,
            addr: "127.0.0.1:9000".into(),
            key: Some(key),
            role: Role::Validator,
            ready: true,
            highest_round: None,
            committed_round: None,
            snapshot_round: None,
            rtt_ms: Some(12),
            goodput_bps: Some(5_000_000),
            bytes_received: 10_000_000,
            answers: 10,
            failures: 2,
            strikes: 1,
            score: 2_500_000,
        });
        let m = Metrics::new();
        m.update(&status);
        let label = &key.to_string()[..16];
        let text = m.render();
        for line in [
            format!("bluepods_peer_goodput_bytes_per_second{{peer=\"{label}\"}} 5000000"),
            format!("bluepods_peer_rtt_ms{{peer=\"{label}\"}} 12"),
            format!("bluepods_peer_timeouts{{peer=\"{label}\"}} 2"),
        ] {
            assert!(text.contains(&line), "{line} missing in {text}");
        }
        status.peers.clear();
        m.update(&status);
        assert!(!m.render().contains(label), "a gone peer is not exported");
        m.observe(&Event::PeerBanned {
            peer: bluepods_core::PeerId(1),
            addr: "127.0.0.1:9000".into(),
            key,
            reason: "served a corrupt chunk".into(),
            until: Timestamp(1),
        });
        let text = m.render();
        assert!(
            text.contains(&format!("bluepods_peer_faults_total{{peer=\"{label}\"}} 1")),
            "{text}"
        );
    }
}
