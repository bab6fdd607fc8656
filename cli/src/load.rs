//! A steady generator of valid transactions against one node.

use crate::client::{Client, TxBuilder};
use bluepods_core::tx::{Operation, TxStatus};
use bluepods_core::{Hash, Keypair};
use std::time::{Duration, Instant};

/// What to generate.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Transactions per second.
    pub tps: u32,
    /// How long to submit.
    pub duration: Duration,
    /// How long to wait afterwards for accepted transactions to settle.
    pub settle: Duration,
    /// Rounds until a transaction expires.
    pub ttl_rounds: u64,
}

/// What happened.
#[derive(Clone, Debug, Default)]
pub struct LoadReport {
    /// Submissions attempted.
    pub submitted: u64,
    /// Accepted by the node.
    pub accepted: Vec<Hash>,
    /// Refused by the node (first reason kept).
    pub rejected: u64,
    /// The first refusal's reason.
    pub first_rejection: Option<String>,
    /// Committed with effect.
    pub committed: u64,
    /// Recorded as failed.
    pub failed: u64,
    /// Still pending when the settle time ran out.
    pub pending: u64,
    /// Time spent submitting.
    pub elapsed: Duration,
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "submitted {} accepted {} rejected {} | committed {} failed {} pending {} | {:.1} tx/s offered",
            self.submitted,
            self.accepted.len(),
            self.rejected,
            self.committed,
            self.failed,
            self.pending,
            self.submitted as f64 / self.elapsed.as_secs_f64().max(0.001)
        )?;
        if let Some(r) = &self.first_rejection {
            write!(f, " (first rejection: {r})")?;
        }
        Ok(())
    }
}

/// Submits create-object transactions at a steady rate, then waits for them
/// to settle and counts outcomes. `tick` is called about once a second with
/// the report so far.
pub fn run(
    client: &Client,
    key: Keypair,
    opts: &LoadOptions,
    mut tick: impl FnMut(&LoadReport),
) -> Result<LoadReport, String> {
    let builder = TxBuilder::from_node(client, key, opts.ttl_rounds)?;
    let mut report = LoadReport::default();
    let interval = Duration::from_secs_f64(1.0 / f64::from(opts.tps.max(1)));
    let start = Instant::now();
    let mut next = start;
    let mut last_tick = start;
    while start.elapsed() < opts.duration {
        let now = Instant::now();
        if now < next {
            std::thread::sleep(next - now);
        }
        next += interval;
        let data: [u8; 32] = rand::random();
        let tx = builder.build(vec![Operation::Create {
            data: data.to_vec(),
        }]);
        report.submitted += 1;
        match client.submit(&tx) {
            Ok(h) => report.accepted.push(h),
            Err(e) => {
                report.rejected += 1;
                report.first_rejection.get_or_insert_with(|| e.to_string());
            }
        }
        if last_tick.elapsed() >= Duration::from_secs(1) {
            last_tick = Instant::now();
            report.elapsed = start.elapsed();
            tick(&report);
        }
    }
    report.elapsed = start.elapsed();
    settle(client, &mut report, opts.settle);
    Ok(report)
}

/// Polls until every accepted transaction is committed or failed, or the
/// time runs out.
fn settle(client: &Client, report: &mut LoadReport, within: Duration) {
    let deadline = Instant::now() + within;
    let mut open: Vec<Hash> = report.accepted.clone();
    loop {
        let mut still = Vec::new();
        for h in open {
            match client.tx_status(&h) {
                Ok(TxStatus::Committed { .. }) => report.committed += 1,
                Ok(TxStatus::Failed { .. }) => report.failed += 1,
                _ => still.push(h),
            }
        }
        open = still;
        if open.is_empty() || Instant::now() > deadline {
            report.pending = open.len() as u64;
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}
