//! Work the event loop hands to other threads: snapshot builds, chunk
//! checks, staging jobs and chunk reads. Each job's result comes back as
//! an input on the loop's local channel (or, for a chunk read, as an answer
//! to send), so the core still sees every outcome and decides what follows.
//!
//! A job that panics must still report back: the core waits for each one
//! it started (a chunk stays "being checked", a download waits for its
//! staging job, a snapshot build never ends), so each catches the panic and
//! sends the failure instead. Chunk checks and reads wait for a permit
//! first, so what peers can make the node hold is bounded by the permits,
//! not by how much they ask.

use bluepods_core::snapshot::check::{ChunkCheck, StageJob};
use bluepods_core::snapshot::SnapshotJob;
use bluepods_core::{ChunkAnswer, Input, Message, PeerId};
use std::sync::Arc;
use tokio::sync::{mpsc, Semaphore};

/// Builds a snapshot on a blocking thread; its chunks and its end (or the
/// builder's panic) go to `tx`.
pub(crate) fn build_snapshot(job: SnapshotJob, tx: &mpsc::Sender<Input>) {
    let tx = tx.clone();
    let round = job.round;
    tokio::task::spawn_blocking(move || {
        let sender = tx.clone();
        let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            bluepods_core::snapshot::run_job(job, |out| {
                let _ = sender.blocking_send(out.into());
            });
        }));
        if built.is_err() {
            // The node must hear of it, or it waits forever.
            let error = "snapshot builder panicked".to_string();
            let _ = tx.blocking_send(Input::SnapshotFailed { round, error });
        }
    });
}

/// Stages verified chunks on a blocking thread.
pub(crate) fn stage_chunks(job: StageJob, tx: &mpsc::Sender<Input>) {
    let tx = tx.clone();
    // The node must hear back, or its download waits forever.
    let failed = job.failed("staging panicked");
    tokio::task::spawn_blocking(move || {
        let run = std::panic::AssertUnwindSafe(|| job.run());
        let staged = std::panic::catch_unwind(run).unwrap_or(failed);
        let _ = tx.blocking_send(Input::ChunksStaged(staged));
    });
}

/// Checks a chunk answer on the worker pool (`permits`).
pub(crate) fn check_chunk(check: ChunkCheck, tx: &mpsc::Sender<Input>, permits: &Arc<Semaphore>) {
    let (tx, permits) = (tx.clone(), permits.clone());
    tokio::spawn(async move {
        // Waiting checks hold their compressed answer only.
        let Ok(_permit) = permits.acquire_owned().await else {
            return;
        };
        // The node must hear back, or the chunk stays "being checked" for
        // the rest of the download.
        let failed = check.failed("the chunk check panicked");
        let run = tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let checked = check.run();
            crate::profile::SYNC.checked(started.elapsed());
            checked
        });
        let checked = run.await.unwrap_or(failed);
        let _ = tx.send(Input::ChunkChecked(checked)).await;
    });
}

/// Reads a chunk a peer asked for on a blocking thread, with a permit of
/// `permits`; the answer goes to `tx` for the loop to send.
pub(crate) fn serve_chunk(
    answer: ChunkAnswer,
    tx: &mpsc::Sender<(PeerId, Message)>,
    permits: &Arc<Semaphore>,
) {
    let (tx, permits) = (tx.clone(), permits.clone());
    tokio::spawn(async move {
        // Waiting requests hold no chunk, only their id.
        let Ok(_permit) = permits.acquire_owned().await else {
            return;
        };
        let read = tokio::task::spawn_blocking(move || answer.read());
        if let Ok(served) = read.await {
            let _ = tx.send(served).await;
        }
    });
}
