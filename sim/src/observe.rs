//! What a run observes: every node's events, hashed into the trace and
//! checked against the invariants as they come; the report at the end.

use crate::links::Downloads;
use crate::SimOptions;
use bluepods_core::{Event, Hash, Round, SyncPhase};
use bluepods_drivers::event_loop::NodeHandle;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Rows of the trace kept for a failure report.
pub(crate) const TAIL_ROWS: usize = 40;

/// What a run found.
#[derive(Clone, Debug)]
pub struct Report {
    /// The run.
    pub options: SimOptions,
    /// SHA-256 of the trace (every event of every node, in order, with its
    /// simulated time).
    pub trace_hash: String,
    /// Trace rows.
    pub events: u64,
    /// Invariants that did not hold (empty: the run passed).
    pub violations: Vec<String>,
    /// Transactions the nodes accepted.
    pub accepted_txs: usize,
    /// Of those, lost with the mempool of a node that crashed after
    /// accepting them (allowed).
    pub lost_in_crash: usize,
    /// Peers banned by honest nodes for a proven fault.
    pub bans: u64,
    /// Per node at the end: last committed round.
    pub committed: BTreeMap<String, Option<Round>>,
    /// Per joiner that went live: simulated ms from its start to live.
    pub time_to_live_ms: BTreeMap<String, u64>,
    /// Commit latency: simulated ms from an anchor's production to its
    /// commit, over every commit by an honest node of an anchor whose
    /// production was seen (mean, and the commits counted).
    pub commit_latency_ms: Option<(f64, usize)>,
    /// The last rows of the trace.
    pub tail: Vec<String>,
    /// Wall-clock milliseconds the run took.
    pub wall_ms: u128,
}

impl Report {
    /// Whether every invariant held.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// What the observers and clients share.
#[derive(Default)]
pub(crate) struct Shared {
    /// Rows kept (`TAIL_ROWS`, or all with `keep_trace`).
    pub(crate) keep: usize,
    pub(crate) hasher: Sha256,
    pub(crate) events: u64,
    pub(crate) tail: std::collections::VecDeque<String>,
    /// Committed anchor per round, and who saw it first.
    pub(crate) anchors: BTreeMap<Round, (Hash, String)>,
    /// The rounds each honest node committed an anchor of: a node that
    /// skips a slot another commits breaks the one sequence as surely as
    /// one that commits another anchor.
    pub(crate) commit_rounds: BTreeMap<String, std::collections::BTreeSet<Round>>,
    /// Honest nodes that took a validator off anchor duty.
    pub(crate) revoked: std::collections::BTreeSet<String>,
    /// Snapshot root per round, and who built it first.
    pub(crate) roots: BTreeMap<Round, (Hash, String)>,
    pub(crate) violations: Vec<String>,
    pub(crate) handles: BTreeMap<String, NodeHandle>,
    /// Accepted transactions: hash, the node that accepted it, when (ms).
    pub(crate) accepted: Vec<(Hash, String, u64)>,
    /// Crash times (ms) per node.
    pub(crate) crashes: BTreeMap<String, Vec<u64>>,
    /// Accepted transactions lost with a crashed node's mempool.
    pub(crate) lost_in_crash: usize,
    /// Bans by honest nodes.
    pub(crate) bans: u64,
    /// Hostile nodes (left out of the checks).
    pub(crate) hostile: std::collections::BTreeSet<String>,
    /// Their keys: an honest node banning any other key is a violation.
    pub(crate) hostile_keys: std::collections::BTreeSet<bluepods_core::PublicKey>,
    /// When each joiner started (ms), and when it was first live.
    pub(crate) joined_at: BTreeMap<String, u64>,
    pub(crate) live_at: BTreeMap<String, u64>,
    /// When each vertex was produced (ms), and the commit latencies seen.
    pub(crate) produced_at: BTreeMap<Hash, u64>,
    pub(crate) commit_latencies_ms: Vec<u64>,
    pub(crate) finals: BTreeMap<String, Option<Round>>,
    /// `slow-links`: what the downloads cost.
    pub(crate) downloads: Option<Downloads>,
    /// `adversary`: honest nodes that took the relay for a ready peer.
    pub(crate) relay_findings: crate::relay::Findings,
    /// The chain's epoch length, and the last epoch each node's chain of
    /// certificates reached: a snapshot of a later epoch must never be
    /// taken (its attestations could not have been checked).
    pub(crate) epoch_rounds: u64,
    pub(crate) certified: BTreeMap<String, bluepods_core::Epoch>,
}

pub(crate) type SharedRef = Arc<Mutex<Shared>>;

pub(crate) fn lock(s: &SharedRef) -> std::sync::MutexGuard<'_, Shared> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// Honest nodes whose committed rounds differ where both committed: within
/// the rounds both span, every slot one committed the other committed too.
pub(crate) fn skipped_slots(
    commits: &BTreeMap<String, std::collections::BTreeSet<Round>>,
) -> Vec<String> {
    let mut out = Vec::new();
    let nodes: Vec<_> = commits.iter().filter(|(_, c)| !c.is_empty()).collect();
    for (i, (a, ca)) in nodes.iter().enumerate() {
        for (b, cb) in &nodes[i + 1..] {
            let lo = (*ca.first().unwrap()).max(*cb.first().unwrap());
            let hi = (*ca.last().unwrap()).min(*cb.last().unwrap());
            if lo > hi {
                continue;
            }
            let only = ca
                .range(lo..=hi)
                .find(|r| !cb.contains(r))
                .map(|r| (a, b, r))
                .or_else(|| {
                    cb.range(lo..=hi)
                        .find(|r| !ca.contains(r))
                        .map(|r| (b, a, r))
                });
            if let Some((has, lacks, r)) = only {
                out.push(format!(
                    "{has} committed the anchor of round {r}, {lacks} skipped it"
                ));
            }
        }
    }
    out
}

impl Shared {
    pub(crate) fn observe(&mut self, node: &str, honest: bool, e: &Event) {
        let t = turmoil::sim_elapsed().unwrap_or_default().as_millis();
        let row = format!("{t:>7} {node:<4} {e:?}");
        self.hasher.update(row.as_bytes());
        self.hasher.update(b"\n");
        self.events += 1;
        self.tail.push_back(row);
        if self.tail.len() > self.keep.max(TAIL_ROWS) {
            self.tail.pop_front();
        }
        if !honest {
            return; // only honest nodes are held to the invariants
        }
        if let Event::PeerBanned { key, reason, .. } = e {
            self.bans += 1;
            if !self.hostile_keys.contains(key) {
                self.violations.push(format!(
                    "{node} banned the honest key {}: {reason}",
                    key.short()
                ));
            }
        }
        if let Event::PhaseChanged {
            to: SyncPhase::Live,
            ..
        } = e
        {
            if self.joined_at.contains_key(node) && !self.live_at.contains_key(node) {
                self.live_at.insert(node.to_string(), t as u64);
            }
        }
        if let Some(v) = self.downloads.as_mut().and_then(|d| d.observe(node, e)) {
            self.violations.push(v);
        }
        match e {
            Event::VertexProduced { hash, .. } => {
                self.produced_at.entry(*hash).or_insert(t as u64);
            }
            Event::Committed { round, anchor, .. } => {
                if let Some(at) = self.produced_at.get(anchor) {
                    self.commit_latencies_ms
                        .push((t as u64).saturating_sub(*at));
                }
                self.commit_rounds
                    .entry(node.to_string())
                    .or_default()
                    .insert(*round);
                let first = self.anchors.entry(*round).or_insert((*anchor, node.into()));
                if first.0 != *anchor {
                    let v = format!(
                        "round {round}: {node} committed anchor {}, {} committed {}",
                        anchor.short(),
                        first.1,
                        first.0.short()
                    );
                    self.violations.push(v);
                }
            }
            Event::AnchorDutyRevoked { .. } => {
                self.revoked.insert(node.to_string());
            }
            Event::EpochCertified { epoch, .. } => {
                let top = self.certified.entry(node.to_string()).or_insert(*epoch);
                *top = (*top).max(*epoch);
            }
            Event::SnapshotSyncStarted { round, .. } => {
                // Epochs 0 and 1 are the genesis set's: nothing to certify.
                let epoch = round.0 / self.epoch_rounds.max(1);
                let reached = self.certified.get(node).map_or(1, |e| e.0);
                if epoch > reached.max(1) {
                    self.violations.push(format!(
                        "{node} took a snapshot of epoch {epoch} with certificates only to epoch {reached}"
                    ));
                }
            }
            Event::SnapshotBuilt { round, root, .. } => {
                let first = self.roots.entry(*round).or_insert((*root, node.into()));
                if first.0 != *root {
                    let v = format!(
                        "round {round}: {node} has state root {}, {} has {}",
                        root.short(),
                        first.1,
                        first.0.short()
                    );
                    self.violations.push(v);
                }
            }
            Event::StateMismatch { round, .. } => {
                self.violations
                    .push(format!("{node}: state mismatch at round {round}"));
            }
            Event::StorageFailed { error } => {
                self.violations
                    .push(format!("{node}: storage failed: {error}"));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rounds(rs: &[u64]) -> std::collections::BTreeSet<Round> {
        rs.iter().map(|r| Round(*r)).collect()
    }

    #[test]
    fn a_slot_one_node_commits_and_another_skips_is_a_violation_where_both_span_it() {
        let mut commits = BTreeMap::new();
        commits.insert("a".to_string(), rounds(&[0, 2, 4, 6, 8]));
        commits.insert("b".to_string(), rounds(&[4, 6, 8, 10]));
        assert!(skipped_slots(&commits).is_empty(), "a joiner starts later");
        commits.insert("c".to_string(), rounds(&[2, 6, 8]));
        let found = skipped_slots(&commits);
        assert_eq!(
            found,
            vec![
                "a committed the anchor of round 4, c skipped it".to_string(),
                "b committed the anchor of round 4, c skipped it".to_string(),
            ]
        );
    }
}
