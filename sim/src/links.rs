//! The `slow-links` scenario: joiners far from the network, on slow, lossy
//! uplinks, syncing a state that takes many snapshot intervals to download.
//!
//! Every link gets a fixed one-way latency of 20–75 ms (RTT 40–150 ms) and
//! every host an uplink with a rate cap and 0–1% random loss
//! ([`LinkShape`]), all from the seed. The validators' uplinks are capped so
//! that a joiner's download spans at least [`MIN_INTERVALS_SPANNED`]
//! snapshot intervals, so the sources build several newer snapshots while
//! it downloads. One joiner is killed mid-download and restarted.
//!
//! What must hold besides the common invariants: every download completes;
//! at most 5% of its chunks are fetched twice (`SnapshotDownloaded`: chunk
//! answers beyond the chunks they verified); a restarted joiner keeps every
//! chunk it had verified; and the scenario really was slow — one download
//! at least spanned the five intervals, or the run proves nothing.

use crate::net::LinkShape;
use bluepods_core::rng::DetRng;
use bluepods_core::Event;
use std::collections::BTreeMap;

/// Synthetic objects in the genesis: ~11 MB raw, a dozen chunks.
pub const STATE_OBJECTS: u64 = 60_000;

/// Rounds between snapshots (2 s at the sim's 100 ms rounds).
pub const SNAPSHOT_INTERVAL_ROUNDS: u64 = 20;

/// Snapshot intervals one download at least must span.
pub const MIN_INTERVALS_SPANNED: u64 = 5;

/// Rate cap of a validator's uplink while up to [`JOINERS_SIZED_FOR`]
/// joiners download: each of three joiners fetching from four validators
/// gets ~2.7 Mbit/s, ~25 s for the state's 8 MB compressed.
const VALIDATOR_UPLINK_BPS: u64 = 2_000_000;

/// Joiners the validators' uplink cap is sized for; with more, the cap
/// grows in proportion, so that each joiner's share (and the time its
/// download spans) stays the same. Postmortem: at 9 nodes (5 joiners) the
/// fixed cap gave each joiner ~1.6 Mbit/s, so no download could end
/// within the run, and every seed failed with all joiners still in
/// `snapshot_fetch`: a run that proves nothing about the node.
const JOINERS_SIZED_FOR: u64 = 3;

/// Rate cap of a joiner's uplink (its requests and acknowledgements).
const JOINER_UPLINK_BPS: u64 = 500_000;

/// The router buffer in front of every uplink.
const QUEUE_MS: u64 = 200;

/// One-way latency of every link, ms: 20 to 75.
pub fn link_latency_ms(rng: &mut DetRng) -> u64 {
    20 + rng.below(56)
}

/// The uplink of a validator (`validator`) or joiner in a run with
/// `joiners` joiners, loss from the seed.
pub fn uplink(rng: &mut DetRng, validator: bool, joiners: usize) -> LinkShape {
    let joiners = (joiners as u64).max(JOINERS_SIZED_FOR);
    LinkShape {
        rate_bps: if validator {
            VALIDATOR_UPLINK_BPS * joiners / JOINERS_SIZED_FOR
        } else {
            JOINER_UPLINK_BPS
        },
        loss_ppm: rng.below(10_001) as u32,
        queue_ms: QUEUE_MS,
        seed: rng.next_u64(),
    }
}

/// What the scenario watches per joiner.
#[derive(Debug, Default)]
pub struct Downloads {
    /// Chunks the node had verified, as of its last progress report.
    verified: BTreeMap<String, usize>,
    /// Chunks verified when it was killed, until its next download ends.
    at_crash: BTreeMap<String, usize>,
    /// Longest download seen, ms.
    pub longest_ms: u64,
    /// Downloads completed.
    pub completed: usize,
}

impl Downloads {
    /// Watches `node`'s event; returns a violation, if any.
    pub fn observe(&mut self, node: &str, e: &Event) -> Option<String> {
        match e {
            Event::SnapshotProgress { chunks_done, .. } => {
                self.verified.insert(node.to_string(), *chunks_done);
                None
            }
            Event::SnapshotDownloaded {
                round,
                chunks_total,
                chunks_kept,
                chunk_answers,
                chunks_staged,
                elapsed_ms,
                ..
            } => {
                self.completed += 1;
                self.longest_ms = self.longest_ms.max(*elapsed_ms);
                self.verified.remove(node);
                let twice = chunk_answers.saturating_sub(*chunks_staged);
                let allowed = (*chunks_total as u64 / 20).max(1);
                let mut problems = Vec::new();
                if twice > allowed {
                    problems.push(format!(
                        "{node}: snapshot {round}: {twice} of {chunks_total} chunks fetched \
                         twice (at most {allowed})"
                    ));
                }
                if let Some(before) = self.at_crash.remove(node) {
                    if *chunks_kept < before {
                        problems.push(format!(
                            "{node}: had verified {before} chunks before it was killed, \
                             kept {chunks_kept}"
                        ));
                    }
                }
                (!problems.is_empty()).then(|| problems.join("; "))
            }
            _ => None,
        }
    }

    /// `node` is being killed.
    pub fn crashed(&mut self, node: &str) {
        if let Some(done) = self.verified.remove(node) {
            self.at_crash.insert(node.to_string(), done);
        }
    }

    /// The end-of-run checks: the scenario was as slow as it means to be.
    pub fn check(&self, interval_ms: u64) -> Vec<String> {
        let mut problems = Vec::new();
        if self.completed == 0 {
            problems.push("slow-links: no snapshot download completed".to_string());
        }
        if self.longest_ms < MIN_INTERVALS_SPANNED * interval_ms {
            problems.push(format!(
                "slow-links: the longest download took {} ms, under {MIN_INTERVALS_SPANNED} \
                 snapshot intervals ({interval_ms} ms each): the scenario proves nothing",
                self.longest_ms
            ));
        }
        problems
    }
}

/// The round interval of the sim's validators, for [`Downloads::check`].
pub fn interval_ms(round_interval_ms: u64) -> u64 {
    SNAPSHOT_INTERVAL_ROUNDS * round_interval_ms
}
