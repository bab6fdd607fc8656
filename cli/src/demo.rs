//! `bluepods demo`: a local devnet as real processes.
//!
//! Starts a bootstrap validator and a listener on loopback with free ports,
//! runs a transaction load against the bootstrap, then stops the bootstrap
//! and checks what the listener saw: every vertex the bootstrap produced
//! (same hashes, every round), none produced by the listener, and the same
//! committed transactions on both. Every process is stopped on the way out.

use crate::client::Client;
use crate::load::{self, LoadOptions};
use crate::procs::{logged_vertices, NodeProcess};
use bluepods_core::tx::TxStatus;
use bluepods_core::Keypair;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Demo settings.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// How long the load runs.
    pub duration: Duration,
    /// Load rate.
    pub tps: u32,
    /// Where data directories and logs go (a fresh temp dir if `None`).
    pub dir: Option<PathBuf>,
    /// Keep the directory afterwards.
    pub keep: bool,
}

/// Runs the demo; `Ok` when the listener saw exactly what the bootstrap did.
pub fn run(opts: &DemoOptions) -> Result<(), String> {
    let dir = match &opts.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("bluepods-demo-{}", std::process::id())),
    };
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    println!("[DEMO] working in {}", dir.display());
    let result = run_in(&dir, opts);
    if opts.keep || result.is_err() {
        println!("[DEMO] logs and data kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn run_in(dir: &std::path::Path, opts: &DemoOptions) -> Result<(), String> {
    let mut boot = NodeProcess::bootstrap(dir, "bootstrap")?;
    println!(
        "[DEMO] bootstrap up: QUIC {} HTTP {}",
        boot.quic,
        boot.http()
    );
    let bootstrap_addr = boot.quic.clone();
    let mut listener = NodeProcess::listener(dir, "listener", &bootstrap_addr)?;
    println!("[DEMO] listener up: HTTP {}", listener.http());
    let boot_api = Client::new(boot.http());
    let listener_api = Client::new(listener.http());
    wait_for_chain(&boot_api)?;

    println!(
        "[DEMO] running load: {} tx/s for {}s",
        opts.tps,
        opts.duration.as_secs()
    );
    let load_opts = LoadOptions {
        tps: opts.tps,
        duration: opts.duration,
        settle: Duration::from_secs(15),
        ttl_rounds: 1_000,
    };
    let report = load::run(
        &boot_api,
        Keypair::from_secret(rand::random()),
        &load_opts,
        |r| {
            let b = boot_api.status().ok();
            let l = listener_api.status().ok();
            let round = |s: Option<&bluepods_core::NodeStatus>| {
                s.and_then(|s| s.last_committed_round)
                    .map_or("-".into(), |r| r.to_string())
            };
            println!(
            "[DEMO] t={:>2}s accepted={} committed round: bootstrap={} listener={} (listener phase {})",
            r.elapsed.as_secs(),
            r.accepted.len(),
            round(b.as_ref()),
            round(l.as_ref()),
            l.map_or("-".into(), |s| s.phase.to_string())
        );
        },
    )?;
    println!("[DEMO] load: {report}");

    let final_boot = boot_api.status().map_err(|e| e.to_string())?;
    boot.stop(Duration::from_secs(5));
    // Let the last gossip land before reading the listener.
    std::thread::sleep(Duration::from_millis(750));
    let final_listener = listener_api.status().map_err(|e| e.to_string())?;
    let listener_committed = report
        .accepted
        .iter()
        .filter(|h| matches!(listener_api.tx_status(h), Ok(TxStatus::Committed { .. })))
        .count() as u64;
    listener.stop(Duration::from_secs(5));

    let produced = logged_vertices(&boot.log_text(), "[VALIDATOR] produced vertex");
    let received = logged_vertices(&listener.log_text(), "[LISTENER] received vertex");
    let listener_produced = logged_vertices(&listener.log_text(), "[VALIDATOR] produced vertex");
    let received_set: BTreeSet<&(u64, String)> = received.iter().collect();
    let missing: Vec<&(u64, String)> = produced
        .iter()
        .filter(|v| !received_set.contains(v))
        .collect();
    let last_round = produced.last().map_or(0, |v| v.0);

    println!(
        "[DEMO] bootstrap produced {} vertices (rounds 0..={last_round}), committed round {}",
        produced.len(),
        final_boot
            .last_committed_round
            .map_or("-".into(), |r| r.to_string())
    );
    println!(
        "[DEMO] listener received {} vertices, produced {}, committed round {}, phase {}",
        received.len(),
        listener_produced.len(),
        final_listener
            .last_committed_round
            .map_or("-".into(), |r| r.to_string()),
        final_listener.phase
    );
    println!(
        "[DEMO] transactions: {} accepted, {} committed on the bootstrap, {} committed on the listener",
        report.accepted.len(),
        report.committed,
        listener_committed
    );
    for (round, hash) in received
        .iter()
        .rev()
        .take(3)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
    {
        println!("[DEMO] listener saw round={round} hash={hash}");
    }
    let mut problems = Vec::new();
    let (boot_state, listener_state) = (boot.dump_state()?, listener.dump_state()?);
    let header = |s: &str, key: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(key).map(str::trim).map(str::to_string))
            .unwrap_or_default()
    };
    if boot_state == listener_state {
        println!(
            "[DEMO] 2 nodes, identical state at round {}, root={} ({} objects)",
            header(&boot_state, "last_committed_round"),
            header(&boot_state, "manifest_root"),
            header(&boot_state, "objects")
        );
    } else {
        let differing: Vec<String> = boot_state
            .lines()
            .zip(listener_state.lines())
            .filter(|(a, b)| a != b)
            .take(5)
            .map(|(a, b)| format!("  bootstrap: {a}\n  listener:  {b}"))
            .collect();
        problems.push(format!("states differ:\n{}", differing.join("\n")));
    }
    if !missing.is_empty() {
        problems.push(format!(
            "listener missed {} vertices, first {:?}",
            missing.len(),
            missing[0]
        ));
    }
    if !listener_produced.is_empty() {
        problems.push("listener produced vertices".to_string());
    }
    if report.committed != report.accepted.len() as u64 {
        problems.push(format!(
            "{} accepted transactions did not commit",
            report.accepted.len() as u64 - report.committed
        ));
    }
    if listener_committed != report.committed {
        problems.push("listener and bootstrap disagree on committed transactions".into());
    }
    if problems.is_empty() {
        println!(
            "[DEMO] OK: the listener saw every vertex the bootstrap produced, with the same hashes"
        );
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

fn wait_for_chain(api: &Client) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if api.status().is_ok_and(|s| s.last_committed_round.is_some()) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err("bootstrap did not start committing within 20s".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
