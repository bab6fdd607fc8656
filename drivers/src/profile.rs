//! Where a snapshot join spends its time, stage by stage, so that the next
//! bottleneck is visible in the log rather than guessed (issue 14).
//!
//! Counters for the work the node hands off the event loop — chunk checks
//! on the worker pool, bulk staging writes — and for the loop's own busy
//! time. Process-wide: a production process runs one node. (The simulator
//! runs many in one process; their counters add up, and nothing reads
//! them there.)

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// The join's stage counters.
#[derive(Debug, Default)]
pub struct SyncProfile {
    checks: AtomicU64,
    check_ns: AtomicU64,
    stage_writes: AtomicU64,
    staged_chunks: AtomicU64,
    stage_ns: AtomicU64,
    loop_ns: AtomicU64,
}

/// This process's counters.
pub static SYNC: SyncProfile = SyncProfile {
    checks: AtomicU64::new(0),
    check_ns: AtomicU64::new(0),
    stage_writes: AtomicU64::new(0),
    staged_chunks: AtomicU64::new(0),
    stage_ns: AtomicU64::new(0),
    loop_ns: AtomicU64::new(0),
};

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn secs(ns: &AtomicU64) -> f64 {
    ns.swap(0, Relaxed) as f64 / 1e9
}

impl SyncProfile {
    /// A chunk check (decompress, hash, walk the records) took `took` on a
    /// worker.
    pub fn checked(&self, took: Duration) {
        self.checks.fetch_add(1, Relaxed);
        self.check_ns.fetch_add(nanos(took), Relaxed);
    }

    /// A staging write of `chunks` chunks took `took`.
    pub fn staged(&self, chunks: usize, took: Duration) {
        self.stage_writes.fetch_add(1, Relaxed);
        self.staged_chunks.fetch_add(chunks as u64, Relaxed);
        self.stage_ns.fetch_add(nanos(took), Relaxed);
    }

    /// The event loop was busy for `took` (handling inputs, running
    /// actions).
    pub fn loop_busy(&self, took: Duration) {
        self.loop_ns.fetch_add(nanos(took), Relaxed);
    }

    /// One line: the loop's busy time, the checks' time on the workers,
    /// the staging writes' time on their thread — since the last summary,
    /// which it starts again from zero (a node that falls behind and joins
    /// again reports that join alone).
    pub fn summary(&self, workers: usize) -> String {
        format!(
            "event loop busy {:.2}s; {} chunk checks {:.2}s on {workers} workers; {} chunks staged in {} bulk writes {:.2}s (on a blocking thread)",
            secs(&self.loop_ns),
            self.checks.swap(0, Relaxed),
            secs(&self.check_ns),
            self.staged_chunks.swap(0, Relaxed),
            self.stage_writes.swap(0, Relaxed),
            secs(&self.stage_ns),
        )
    }
}

/// Worker threads for chunk checks: one per core the process may use.
pub fn check_workers() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}
