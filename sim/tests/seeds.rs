//! The CI sweep: a fixed set of seeds over every scenario. Each seed runs
//! twice and must give the same trace hash; every invariant must hold. A
//! failure prints the line that reproduces it. (`scripts/sim-sweep.sh`
//! runs thousands.)

use bluepods_sim::{run, Scenario, SimOptions};

/// Seeds per scenario in CI: 5 scenarios × 11 = 55 seeds, each run twice
/// (and `SLOW_LINK_SEEDS` of `slow-links`).
const SEEDS_PER_SCENARIO: u64 = 11;

/// `slow-links` seeds in CI: each run downloads a 60,000-object state
/// several times over slow links, so fewer of them.
const SLOW_LINK_SEEDS: u64 = 4;

fn sweep(scenario: Scenario) {
    let seeds = if scenario == Scenario::SlowLinks {
        SLOW_LINK_SEEDS
    } else {
        SEEDS_PER_SCENARIO
    };
    let mut failures = Vec::new();
    for seed in 1..=seeds {
        let mut o = SimOptions::new(scenario, seed);
        o.duration_s = 12;
        // Far joiners need the time their links take.
        o.heal_s = if scenario == Scenario::SlowLinks {
            50
        } else {
            20
        };
        o.joiners = if scenario == Scenario::Steady { 0 } else { 2 };
        let a = run(&o);
        let b = run(&o);
        if a.trace_hash != b.trace_hash {
            failures.push(format!(
                "seed {seed}: two runs differ ({} vs {}); reproduce: {}",
                &a.trace_hash[..12],
                &b.trace_hash[..12],
                o.reproduce()
            ));
        }
        if !a.passed() {
            failures.push(format!(
                "seed {seed}: {}\n  reproduce: {}\n  last rows:\n    {}",
                a.violations.join("\n  "),
                o.reproduce(),
                a.tail.join("\n    ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn steady_seeds() {
    sweep(Scenario::Steady);
}

#[test]
fn join_seeds() {
    sweep(Scenario::Join);
}

#[test]
fn partition_seeds() {
    sweep(Scenario::Partition);
}

#[test]
fn crash_seeds() {
    sweep(Scenario::Crash);
}

#[test]
fn hostile_seeds() {
    sweep(Scenario::Hostile);
}

#[test]
fn slow_links_seeds() {
    sweep(Scenario::SlowLinks);
}
