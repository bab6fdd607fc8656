//! `bluepods demo`: a local devnet as real processes.
//!
//! On loopback with free ports and a temp directory it starts a bootstrap,
//! two more validators (which sync, register and join the set) and a
//! listener; runs a transaction load; midway starts a fresh validator
//! (catching up by range) and a fresh listener (joining from a snapshot) and
//! shows their progress; then checks that all nodes built the same snapshot
//! root at one committed round, that the first listener received every
//! vertex every validator produced, and that the accepted transactions
//! committed. It prints `N nodes, identical state at round R, root=…` and
//! exits 0, or says what differs and exits 1. Every process it starts is
//! stopped on the way out.

use crate::client::Client;
use crate::load::{self, LoadOptions};
use crate::procs::{logged_vertices, NodeProcess};
use bluepods_core::{Hash, Keypair, Round};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
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

/// Round interval of every demo node: short, so that registrations (which
/// take effect two epochs later) and snapshots come within seconds.
const ROUND_MS: &str = "100";

/// Runs the demo.
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

/// A validator (or, with `listener`, a listener) joining through `via`.
/// Validators of the demo approve the candidates they are connected to,
/// as the bootstrap does: each newcomer needs a quorum of the set's
/// approvals, and the set grows.
fn joiner(dir: &Path, name: &str, via: &str, extra: &[&str]) -> Result<NodeProcess, String> {
    let mut args = vec!["--round-interval-ms", ROUND_MS];
    if !extra.contains(&"--listener") {
        args.extend_from_slice(&["--auto-approve", "true"]);
    }
    args.extend_from_slice(extra);
    NodeProcess::joiner(dir, name, via, &args)
}

fn wait(limit: Duration, what: &str, mut done: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

fn is_member(api: &Client) -> bool {
    api.status()
        .is_ok_and(|s| s.is_member && s.own_last_round.is_some())
}

fn run_in(dir: &Path, opts: &DemoOptions) -> Result<(), String> {
    let boot = NodeProcess::bootstrap_with(dir, "bootstrap", &["--round-interval-ms", ROUND_MS])?;
    let via = boot.quic.clone();
    println!("[DEMO] bootstrap up: QUIC {via}, HTTP {}", boot.http());
    let mut nodes = vec![boot];
    for name in ["validator-2", "validator-3"] {
        nodes.push(joiner(dir, name, &via, &[])?);
    }
    nodes.push(joiner(dir, "listener-1", &via, &["--listener"])?);
    println!("[DEMO] two validators and a listener started; waiting for the validators to register and join the set");
    for n in &nodes[1..3] {
        let api = Client::new(n.http());
        wait(
            Duration::from_secs(60),
            &format!("{} to join the validator set", n.name),
            || is_member(&api),
        )?;
        println!("[DEMO] {} is a validator now", n.name);
    }

    let boot_api = Client::new(nodes[0].http());
    println!(
        "[DEMO] running load: {} tx/s for {}s",
        opts.tps,
        opts.duration.as_secs()
    );
    let load_opts = LoadOptions {
        tps: opts.tps,
        duration: opts.duration,
        settle: Duration::from_secs(20),
        ttl_rounds: 5_000,
    };
    let late_at = opts.duration.as_secs() / 3;
    let mut late: Vec<NodeProcess> = Vec::new();
    let mut late_error = None;
    let report = load::run(
        &boot_api,
        Keypair::from_secret(rand::random()),
        &load_opts,
        |r| {
            let secs = r.elapsed.as_secs();
            if secs >= late_at && late.is_empty() && late_error.is_none() {
                println!("[DEMO] starting a fresh validator (range catch-up) and a fresh listener (snapshot sync) mid-activity");
                match joiner(dir, "validator-4", &via, &[]).and_then(|v| {
                    joiner(
                        dir,
                        "listener-2",
                        &via,
                        &["--listener", "--sync-mode", "snapshot"],
                    )
                    .map(|l| (v, l))
                }) {
                    Ok((v, l)) => late.extend([v, l]),
                    Err(e) => late_error = Some(e),
                }
            }
            let show = |n: &NodeProcess| {
                Client::new(n.http()).status().map_or("-".to_string(), |s| {
                    format!(
                        "{} {}",
                        s.phase,
                        s.last_committed_round.map_or("-".into(), |r| r.to_string())
                    )
                })
            };
            let fresh: Vec<String> = late
                .iter()
                .map(|n| format!("{}: {}", n.name, show(n)))
                .collect();
            println!(
                "[DEMO] t={secs:>2}s accepted={} bootstrap: {}{}{}",
                r.accepted.len(),
                show(&nodes[0]),
                if fresh.is_empty() { "" } else { " | " },
                fresh.join(" | ")
            );
        },
    )?;
    if let Some(e) = late_error {
        return Err(e);
    }
    println!("[DEMO] load: {report}");
    nodes.extend(late);
    let v4 = Client::new(nodes[4].http());
    wait(
        Duration::from_secs(60),
        "validator-4 to join the set",
        || is_member(&v4),
    )?;
    println!("[DEMO] validator-4 caught up and joined the set");

    let (round, root) = common_snapshot(&nodes)?;
    println!(
        "[DEMO] {} nodes, identical state at round {round}, root={root}",
        nodes.len()
    );

    let mut problems = Vec::new();
    if report.committed != report.accepted.len() as u64 {
        problems.push(format!(
            "{} of {} accepted transactions did not commit",
            report.accepted.len() as u64 - report.committed,
            report.accepted.len()
        ));
    }
    // Stop the validators (gossip is flushed on the way out), the bootstrap
    // last since it is listener-1's only peer, then check that listener-1
    // received every vertex any of them produced.
    let validators = [1usize, 2, 4, 0];
    for &i in &validators {
        nodes[i].stop(Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(750));
    let received: BTreeSet<(u64, String)> =
        logged_vertices(&nodes[3].log_text(), "[LISTENER] received vertex")
            .into_iter()
            .collect();
    let mut produced = 0;
    for &i in &validators {
        let mine = logged_vertices(&nodes[i].log_text(), "[VALIDATOR] produced vertex");
        produced += mine.len();
        let missing = mine.iter().filter(|v| !received.contains(v)).count();
        if missing > 0 {
            problems.push(format!(
                "listener-1 missed {missing} vertices of {}",
                nodes[i].name
            ));
        }
    }
    println!(
        "[DEMO] validators produced {produced} vertices; listener-1 received {} of them and produced none",
        received.len()
    );
    println!(
        "[DEMO] transactions: {} accepted, {} committed",
        report.accepted.len(),
        report.committed
    );
    if problems.is_empty() {
        println!("[DEMO] OK");
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// Waits until every node serves a snapshot of one common round, and checks
/// they all have the same root for it.
fn common_snapshot(nodes: &[NodeProcess]) -> Result<(Round, Hash), String> {
    let apis: Vec<Client> = nodes.iter().map(|n| Client::new(n.http())).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let lists: Vec<BTreeMap<Round, Hash>> = apis
            .iter()
            .map(|a| {
                a.snapshots()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|s| (s.round, s.root))
                    .collect()
            })
            .collect();
        let common = lists[0]
            .keys()
            .rev()
            .find(|r| lists.iter().all(|l| l.contains_key(r)))
            .copied();
        if let Some(r) = common {
            let roots: BTreeSet<Hash> = lists.iter().map(|l| l[&r]).collect();
            if roots.len() == 1 {
                return Ok((r, *roots.iter().next().expect("one root")));
            }
            let lines: Vec<String> = nodes
                .iter()
                .zip(&lists)
                .map(|(n, l)| format!("  {}: {}", n.name, l[&r]))
                .collect();
            return Err(format!("states differ at round {r}:\n{}", lines.join("\n")));
        }
        if Instant::now() > deadline {
            return Err("the nodes never built a snapshot of a common round".into());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}
