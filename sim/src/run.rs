//! Running one scenario: hosts, workload, faults, heal, invariants.

use crate::hostile::Hostility;
use crate::hosts::{
    add_host, add_relay, genesis, hostile_listener, node_seed, NodeSpec, PEST, PORT,
};
use crate::links::{self, Downloads};
use crate::observe::{lock, skipped_slots, Report, Shared, SharedRef, TAIL_ROWS};
use crate::store::SharedDisk;
use crate::{Scenario, SimOptions};
use bluepods_core::config::{SyncConfig, SyncMode};
use bluepods_core::rng::DetRng;
use bluepods_core::tx::{Operation, TxBody, TxStatus};
use bluepods_core::{Hash, Keypair, NodeConfig, Role, Round, SyncPhase};
use sha2::Digest;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Every node's round interval.
pub const ROUND_INTERVAL_MS: u64 = 100;

/// Scheduled faults and joins, decided from the seed before the run.
enum Action {
    Join(Box<NodeSpec>),
    Partition(String, String),
    Repair(String, String),
    Crash(String),
    Restart(String),
}

/// Runs one scenario to its end and checks the invariants.
pub fn run(opts: &SimOptions) -> Report {
    let wall = std::time::Instant::now();
    let mut rng = DetRng::new(opts.seed);
    let (genesis, keys) = genesis(opts.validators.max(1), opts.scenario);
    let slow = opts.scenario == Scenario::SlowLinks;
    // Its own stream, so the other scenarios' draws stay as they were.
    let mut link_rng = DetRng::new(opts.seed ^ 0x511c);
    let chain_id = genesis.chain_id();
    let total = opts.duration_s + opts.heal_s;
    let latency_max = 5 + rng.below(45);
    let mut builder = turmoil::Builder::new();
    builder
        .rng_seed(opts.seed)
        .simulation_duration(Duration::from_secs(total + 120))
        .tick_duration(Duration::from_millis(1))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(latency_max))
        .udp_capacity(1 << 16);
    if opts.scenario == Scenario::Partition {
        builder
            .fail_rate(0.0005 * (1 + rng.below(4)) as f64)
            .repair_rate(0.3);
    }
    if slow {
        // Each link gets a fixed latency in this range when its second
        // host appears (`link_latency_ms`).
        builder
            .min_message_latency(Duration::from_millis(20))
            .max_message_latency(Duration::from_millis(75));
    }
    let mut sim = builder.build();
    let shared: SharedRef = Arc::new(Mutex::new(Shared {
        keep: if opts.keep_trace {
            usize::MAX
        } else {
            TAIL_ROWS
        },
        downloads: slow.then(Downloads::default),
        epoch_rounds: genesis.params.epoch_rounds,
        ..Shared::default()
    }));

    let validator_names: Vec<String> = (0..keys.len()).map(|i| format!("v{i}")).collect();
    let last = validator_names.len() - 1;
    // Hostile validators, by name.
    let mut hostile: BTreeMap<String, Hostility> = BTreeMap::new();
    if opts.scenario == Scenario::Hostile && keys.len() >= 4 {
        // The last validator lies or equivocates (from the seed).
        let how = if rng.below(2) == 0 {
            Hostility::Liar
        } else {
            Hostility::Equivocator
        };
        hostile.insert(validator_names[last].clone(), how);
    }
    // Adversary: the last validator is Byzantine (`adversaries` on).
    let adversary = opts.scenario == Scenario::Adversary && keys.len() >= 4;
    if adversary && opts.adversaries {
        hostile.insert(validator_names[last].clone(), Hostility::Byzantine);
    }
    // Byzantine: the last f of the 3f + 1 fork.
    let byzantine = opts.scenario == Scenario::Byzantine;
    if byzantine {
        let f = (keys.len() - 1) / 3;
        for name in &validator_names[keys.len() - f..] {
            hostile.insert(name.clone(), Hostility::Forker);
        }
    }
    for (i, key) in keys.iter().enumerate() {
        let name = validator_names[i].clone();
        let config = NodeConfig {
            role: Role::Validator,
            listen_addr: Some(format!("{name}:{PORT}")),
            round_interval_ms: ROUND_INTERVAL_MS,
            // As on a devnet: joiners in validator mode are admitted by
            // the genesis validators they connect to.
            auto_approve: true,
            ..NodeConfig::default()
        };
        add_host(
            &mut sim,
            NodeSpec {
                seed: node_seed(opts.seed, &name),
                name,
                key: key.clone(),
                config,
                genesis: Some(genesis.clone()),
                disk: SharedDisk::default(),
                hostile: hostile.get(&validator_names[i]).copied(),
                shape: slow.then(|| links::uplink(&mut link_rng, true, opts.joiners)),
            },
            shared.clone(),
        );
    }
    if slow {
        for (i, a) in validator_names.iter().enumerate() {
            for b in &validator_names[i + 1..] {
                let ms = links::link_latency_ms(&mut link_rng);
                sim.set_link_latency(a.as_str(), b.as_str(), Duration::from_millis(ms));
            }
        }
    }
    let honest_validators: Vec<String> = validator_names
        .iter()
        .filter(|v| !hostile.contains_key(*v))
        .cloned()
        .collect();

    let rotation = opts.scenario == Scenario::Rotation && keys.len() >= 4;
    // The schedule: (time in ms, action), decided now from the seed.
    let mut schedule: Vec<(u64, Action)> = Vec::new();
    let span = opts.duration_s * 1000;
    let mut all_names = validator_names.clone();
    let mut validator_joiners = Vec::new();
    if opts.scenario != Scenario::Steady {
        for j in 0..opts.joiners {
            let name = format!("j{j}");
            let validator = rng.below(3) == 0;
            // `rotation`: every other joiner asks to validate.
            let validator = if rotation { j % 2 == 0 } else { validator };
            let strategy =
                [SyncMode::Range, SyncMode::Snapshot, SyncMode::Auto][rng.below(3) as usize];
            // Among hostile peers, joiners download snapshots: that is where
            // a liar's chunks and manifests can hurt.
            let strategy = if opts.scenario == Scenario::Hostile || slow {
                SyncMode::Snapshot
            } else if (adversary || byzantine) && strategy == SyncMode::Auto {
                // `auto` picks by how far behind the joiner is, and the
                // network's round at the join differs a little with and
                // without the adversaries: near the threshold the same
                // seed would compare a snapshot join with a range join.
                // Among forkers, each joiner takes one path or the other.
                SyncMode::Snapshot
            } else {
                strategy
            };
            let validator = validator && !slow;
            let via = &validator_names[rng.below(validator_names.len() as u64) as usize];
            // `rotation`: v1 and v2 go; a joiner comes in through one that
            // stays.
            let via = if rotation && (via == "v1" || via == "v2") {
                &validator_names[if via == "v1" { 0 } else { 3 }]
            } else {
                via
            };
            let mut bootstrap_peers = vec![format!("{via}:{PORT}")];
            for h in hostile.keys() {
                // Every joiner meets the hostile validators first.
                bootstrap_peers.insert(0, format!("{h}:{PORT}"));
            }
            if adversary {
                // And the pest (absent in the baseline: the dial fails).
                let last = &validator_names[last];
                if hostile.is_empty() {
                    bootstrap_peers.insert(0, format!("{last}:{PORT}"));
                }
                bootstrap_peers.insert(0, format!("{PEST}:{PORT}"));
            }
            let config = NodeConfig {
                role: if validator {
                    Role::Validator
                } else {
                    Role::Listener
                },
                listen_addr: Some(format!("{name}:{PORT}")),
                bootstrap_peers,
                trusted_chain_id: Some(chain_id),
                round_interval_ms: ROUND_INTERVAL_MS,
                // Once admitted, it admits the next ones too (as the
                // genesis validators do): each needs a quorum of approvals.
                auto_approve: validator,
                sync: SyncConfig {
                    default_strategy: strategy,
                    // A short threshold so that "auto" and the strategy
                    // switch get exercised in a short run.
                    strategy_switch_threshold: 60,
                    ..SyncConfig::default()
                },
                ..NodeConfig::default()
            };
            let at = 1_000 + rng.below(span.saturating_sub(1_000).max(1));
            // Far joiners come early: their downloads are long.
            let at = if slow { 1_000 + at % 4_000 } else { at };
            if slow && j == 0 {
                // Killed mid-download, back 1.5 s later.
                schedule.push((at + 15_000, Action::Crash(name.clone())));
                schedule.push((at + 16_500, Action::Restart(name.clone())));
            }
            let key = Keypair::from_label(&format!("sim-joiner-{j}-{}", opts.seed));
            if validator {
                validator_joiners.push((name.clone(), key.clone()));
            }
            schedule.push((
                at,
                Action::Join(Box::new(NodeSpec {
                    seed: node_seed(opts.seed, &name),
                    name: name.clone(),
                    key,
                    config,
                    genesis: None,
                    disk: SharedDisk::default(),
                    hostile: None,
                    shape: slow.then(|| links::uplink(&mut link_rng, false, opts.joiners)),
                })),
            ));
            all_names.push(name);
        }
    }
    if adversary && opts.adversaries {
        let spec = hostile_listener(opts.seed, PEST, &validator_names, chain_id, Hostility::Pest);
        schedule.push((300, Action::Join(Box::new(spec))));
        let mut mute =
            hostile_listener(opts.seed, "m0", &validator_names, chain_id, Hostility::Mute);
        mute.genesis = Some(genesis.clone());
        schedule.push((400, Action::Join(Box::new(mute))));
        if honest_validators.len() >= 2 {
            let findings = lock(&shared).relay_findings.clone();
            let (a, b) = (honest_validators[0].clone(), honest_validators[1].clone());
            add_relay(&mut sim, opts.seed, a, b, findings);
        }
    }
    if opts.scenario == Scenario::Hostile {
        // A listener that floods, from the start.
        let spec = hostile_listener(
            opts.seed,
            "f0",
            &honest_validators,
            chain_id,
            Hostility::Flooder,
        );
        schedule.push((500, Action::Join(Box::new(spec))));
        // And a slow validator: its links take up to 200 ms.
        if honest_validators.len() >= 2 {
            let slow = &honest_validators[0];
            for other in validator_names.iter().filter(|v| *v != slow) {
                sim.set_link_max_message_latency(
                    slow.as_str(),
                    other.as_str(),
                    Duration::from_millis(200),
                );
            }
        }
    }
    match opts.scenario {
        Scenario::Partition => {
            for _ in 0..3 {
                let a = all_names[rng.below(all_names.len() as u64) as usize].clone();
                let b = all_names[rng.below(all_names.len() as u64) as usize].clone();
                if a == b {
                    continue;
                }
                let at = 2_000 + rng.below(span.saturating_sub(4_000).max(1));
                let len = 1_000 + rng.below(5_000);
                schedule.push((at, Action::Partition(a.clone(), b.clone())));
                schedule.push(((at + len).min(span), Action::Repair(a, b)));
            }
        }
        Scenario::Crash => {
            for _ in 0..3 {
                let who = all_names[rng.below(all_names.len() as u64) as usize].clone();
                let at = 2_000 + rng.below(span.saturating_sub(4_000).max(1));
                let down = 500 + rng.below(4_000);
                schedule.push((at, Action::Crash(who.clone())));
                schedule.push(((at + down).min(span), Action::Restart(who)));
            }
        }
        Scenario::Rotation if rotation => {
            // v2 vanishes for good early (removed for inactivity by 8 s);
            // v1 leaves later, once v2's removal took effect, so that the
            // set never waits on a member that is gone.
            schedule.push((2_000, Action::Crash(validator_names[2].clone())));
            let (leaver, key) = (validator_names[1].clone(), keys[1].clone());
            crate::rotation::leave_at(
                &mut sim,
                shared.clone(),
                span * 6 / 10,
                leaver,
                key,
                chain_id,
            );
            let out = vec![
                (validator_names[1].clone(), keys[1].clone()),
                (validator_names[2].clone(), keys[2].clone()),
            ];
            let witness = validator_names[0].clone();
            let end_ms = total * 1000;
            crate::rotation::check_at(
                &mut sim,
                shared.clone(),
                end_ms,
                witness,
                out,
                validator_joiners.clone(),
            );
        }
        Scenario::Steady
        | Scenario::Join
        | Scenario::Hostile
        | Scenario::SlowLinks
        | Scenario::Adversary
        | Scenario::Byzantine
        | Scenario::Rotation => {}
    }
    schedule.sort_by_key(|(t, _)| *t);

    // Load: one transaction every 200 ms to a validator of the genesis,
    // until the heal phase.
    {
        let shared = shared.clone();
        let validators = honest_validators.clone();
        let mut load_rng = DetRng::new(opts.seed ^ 0x10ad);
        let span_ms = span;
        sim.client("load", async move {
            let user = Keypair::from_label("sim-user");
            let mut nonce = 0u64;
            while turmoil::sim_elapsed().unwrap_or_default().as_millis() < u128::from(span_ms) {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let to = &validators[load_rng.below(validators.len() as u64) as usize];
                let handle = lock(&shared).handles.get(to).cloned();
                let Some(handle) = handle else { continue };
                let tx = TxBody {
                    chain_id,
                    sender: user.public(),
                    nonce,
                    expiry: Round(1_000_000),
                    ops: vec![Operation::Create {
                        data: nonce.to_le_bytes().to_vec(),
                    }],
                }
                .sign(&user);
                nonce += 1;
                if let Ok(Ok(hash)) = handle.submit(tx).await {
                    let at = turmoil::sim_elapsed().unwrap_or_default().as_millis() as u64;
                    lock(&shared).accepted.push((hash, to.clone(), at));
                }
            }
            Ok(())
        });
    }

    // The check, at the end of the heal phase.
    {
        let shared = shared.clone();
        let end_ms = total * 1000;
        sim.client("check", async move {
            tokio::time::sleep(Duration::from_millis(end_ms)).await;
            let (handles, accepted) = {
                let s = lock(&shared);
                (s.handles.clone(), s.accepted.clone())
            };
            let mut seen: BTreeMap<Hash, Vec<(String, Option<TxStatus>)>> = BTreeMap::new();
            let mut problems = Vec::new();
            let hostile = lock(&shared).hostile.clone();
            for (name, h) in handles.iter().filter(|(n, _)| !hostile.contains(*n)) {
                let Ok(status) = h.status().await else {
                    problems.push(format!("{name}: not running at the end"));
                    continue;
                };
                lock(&shared)
                    .finals
                    .insert(name.clone(), status.last_committed_round);
                if status.phase != SyncPhase::Live {
                    let peers: Vec<String> = status
                        .peers
                        .iter()
                        .filter(|p| p.ready)
                        .map(|p| format!("{}@{:?}", p.addr, p.highest_round.map(|r| r.0)))
                        .collect();
                    problems.push(format!(
                        "{name}: {} at the end, not live (highest {:?}, committed {:?}, \
                         pending {}, dag {}, peers {})",
                        status.phase,
                        status.highest_round.map(|r| r.0),
                        status.last_committed_round.map(|r| r.0),
                        status.pending_vertices,
                        status.dag_vertices,
                        peers.join(" ")
                    ));
                }
                if status.buffer_bytes > SyncConfig::default().buffer_max_bytes {
                    problems.push(format!("{name}: buffer over its bound"));
                }
                if status.pending_vertices > NodeConfig::default().max_pending_vertices {
                    problems.push(format!("{name}: pending set over its bound"));
                }
                for (hash, _, _) in &accepted {
                    let st = h.tx_status(*hash).await.ok().and_then(Result::ok);
                    seen.entry(*hash).or_default().push((name.clone(), st));
                }
            }
            // A transaction committed anywhere must be committed, at the
            // same round, everywhere. One committed nowhere was lost: only
            // allowed if the node that accepted it crashed afterwards (its
            // mempool is memory; clients resubmit).
            let crashes = lock(&shared).crashes.clone();
            let mut lost_in_crash = 0;
            for (hash, via, at) in &accepted {
                let views = seen.remove(hash).unwrap_or_default();
                let committed: Vec<&TxStatus> = views
                    .iter()
                    .filter_map(|(_, s)| s.as_ref())
                    .filter(|s| matches!(s, TxStatus::Committed { .. } | TxStatus::Failed { .. }))
                    .collect();
                if committed.is_empty() {
                    let crashed_after = crashes
                        .get(via)
                        .is_some_and(|ts| ts.iter().any(|t| t >= at));
                    if crashed_after {
                        lost_in_crash += 1;
                    } else {
                        problems.push(format!(
                            "tx {} accepted by {via} at {at} ms is committed nowhere",
                            hash.short()
                        ));
                    }
                    continue;
                }
                for (name, st) in &views {
                    if st.as_ref() != Some(committed[0]) {
                        problems.push(format!(
                            "tx {}: {name} has {st:?}, another node {:?}",
                            hash.short(),
                            committed[0]
                        ));
                    }
                }
            }
            let mut s = lock(&shared);
            s.lost_in_crash = lost_in_crash;
            s.violations.extend(problems);
            Ok(())
        });
    }

    let mut next = 0;
    let mut host_errors = Vec::new();
    // Faults only touch hosts that exist (a joiner may not have joined yet).
    let mut hosts: std::collections::BTreeSet<String> = validator_names.iter().cloned().collect();
    loop {
        let now = sim.elapsed().as_millis() as u64;
        while next < schedule.len() && schedule[next].0 <= now {
            match &schedule[next].1 {
                Action::Join(spec) => {
                    hosts.insert(spec.name.clone());
                    if spec.hostile.is_none() {
                        lock(&shared).joined_at.insert(spec.name.clone(), now);
                    }
                    add_host(&mut sim, (**spec).clone(), shared.clone());
                    if slow {
                        for other in hosts.iter().filter(|h| **h != spec.name) {
                            let ms = links::link_latency_ms(&mut link_rng);
                            let latency = Duration::from_millis(ms);
                            sim.set_link_latency(spec.name.as_str(), other.as_str(), latency);
                        }
                    }
                }
                Action::Partition(a, b) if hosts.contains(a) && hosts.contains(b) => {
                    sim.partition(a.as_str(), b.as_str())
                }
                Action::Repair(a, b) if hosts.contains(a) && hosts.contains(b) => {
                    sim.repair(a.as_str(), b.as_str())
                }
                Action::Partition(..) | Action::Repair(..) => {}
                Action::Crash(who) => {
                    if hosts.contains(who) && sim.is_host_running(who.as_str()) {
                        let mut s = lock(&shared);
                        s.handles.remove(who);
                        s.crashes.entry(who.clone()).or_default().push(now);
                        if let Some(d) = s.downloads.as_mut() {
                            d.crashed(who);
                        }
                        drop(s);
                        sim.crash(who.as_str());
                    }
                }
                Action::Restart(who) => {
                    if hosts.contains(who) && !sim.is_host_running(who.as_str()) {
                        sim.bounce(who.as_str());
                    }
                }
            }
            next += 1;
        }
        match sim.step() {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => {
                host_errors.push(format!("{e}"));
                break;
            }
        }
    }

    let s = lock(&shared);
    let mut violations = host_errors;
    violations.extend(s.violations.iter().cloned());
    violations.extend(
        s.relay_findings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned(),
    );
    if let Some(d) = &s.downloads {
        violations.extend(d.check(links::interval_ms(ROUND_INTERVAL_MS)));
    }
    violations.extend(skipped_slots(&s.commit_rounds));
    if opts.scenario == Scenario::Byzantine {
        // Else the run proved nothing about evidence.
        for v in &honest_validators {
            if !s.revoked.contains(v) {
                violations.push(format!("{v} never took a forker off anchor duty"));
            }
        }
    }
    Report {
        options: opts.clone(),
        trace_hash: hex::encode(s.hasher.clone().finalize()),
        events: s.events,
        violations,
        accepted_txs: s.accepted.len(),
        lost_in_crash: s.lost_in_crash,
        bans: s.bans,
        committed: s.finals.clone(),
        time_to_live_ms: s
            .live_at
            .iter()
            .filter_map(|(n, at)| Some((n.clone(), at.checked_sub(*s.joined_at.get(n)?)?)))
            .collect(),
        commit_latency_ms: (!s.commit_latencies_ms.is_empty()).then(|| {
            let n = s.commit_latencies_ms.len();
            (
                s.commit_latencies_ms.iter().sum::<u64>() as f64 / n as f64,
                n,
            )
        }),
        tail: s.tail.iter().cloned().collect(),
        wall_ms: wall.elapsed().as_millis(),
    }
}
