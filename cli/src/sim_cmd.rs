//! `bluepods sim`: one simulated run, or a sweep over seeds.

use bluepods_sim::{run, Report, Scenario, SimOptions};

/// What the command line asked for.
#[derive(Clone, Debug)]
pub struct SimArgs {
    /// Scenarios to run (one, or all for a sweep without `--scenario`).
    pub scenarios: Vec<Scenario>,
    /// Seeds, inclusive.
    pub seeds: (u64, u64),
    /// Nodes in all.
    pub nodes: usize,
    /// Of which genesis validators.
    pub validators: usize,
    /// Simulated seconds of load and faults.
    pub duration_s: u64,
    /// Simulated seconds of heal (the scenario's default if not given).
    pub heal_s: Option<u64>,
    /// Run each seed twice and compare the trace hashes.
    pub twice: bool,
    /// Print every trace row (single runs).
    pub trace: bool,
    /// `adversary`: every node honest (the baseline).
    pub calm: bool,
}

/// Parses `A..B` (inclusive) or a single seed.
pub fn parse_seeds(s: &str) -> Result<(u64, u64), String> {
    let bad = || format!("--seeds {s}: expected A..B (inclusive), e.g. 1..100");
    match s.split_once("..") {
        Some((a, b)) => {
            let (a, b) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
            if a > b {
                return Err(bad());
            }
            Ok((a, b))
        }
        None => s.parse().map(|x| (x, x)).map_err(|_| bad()),
    }
}

fn options(args: &SimArgs, scenario: Scenario, seed: u64) -> SimOptions {
    let defaults = SimOptions::new(scenario, seed);
    SimOptions {
        validators: args.validators,
        joiners: if scenario == Scenario::Steady {
            0
        } else {
            args.nodes.saturating_sub(args.validators)
        },
        duration_s: args.duration_s,
        heal_s: args.heal_s.unwrap_or(defaults.heal_s),
        keep_trace: args.trace,
        adversaries: !args.calm,
        ..defaults
    }
}

fn describe(r: &Report) -> String {
    let verdict = if r.passed() { "PASS" } else { "FAIL" };
    format!(
        "{:<9} {:>6} {verdict}  nodes {:>2}  events {:>7}  txs {:>4} (lost in crashes {:>2})  bans {:>2}  trace {}  {:>6} ms",
        r.options.scenario,
        r.options.seed,
        r.options.validators + r.options.joiners,
        r.events,
        r.accepted_txs,
        r.lost_in_crash,
        r.bans,
        &r.trace_hash[..16],
        r.wall_ms
    )
}

/// Runs and prints; an error if any run failed.
pub fn main(args: &SimArgs) -> Result<(), String> {
    if args.validators == 0 || args.nodes < args.validators {
        return Err("--validators must be at least 1 and at most --nodes".into());
    }
    let single = args.seeds.0 == args.seeds.1 && args.scenarios.len() == 1;
    let mut failed = Vec::new();
    let mut total = 0;
    for scenario in &args.scenarios {
        for seed in args.seeds.0..=args.seeds.1 {
            let o = options(args, *scenario, seed);
            let r = run(&o);
            total += 1;
            println!("{}", describe(&r));
            let mut problems = r.violations.clone();
            if args.twice {
                let again = run(&o);
                if again.trace_hash != r.trace_hash {
                    problems.push(format!(
                        "not deterministic: the second run's trace is {}",
                        &again.trace_hash[..16]
                    ));
                }
            }
            if single && args.trace {
                for row in &r.tail {
                    println!("{row}");
                }
            }
            if single {
                for (node, round) in &r.committed {
                    let round = round.map_or("-".into(), |x| x.to_string());
                    println!("  {node:<4} last committed round {round}");
                }
                for (node, ms) in &r.time_to_live_ms {
                    println!("  {node:<4} live {ms} ms after it started");
                }
                if let Some((ms, n)) = r.commit_latency_ms {
                    println!(
                        "  commit latency {ms:.0} ms from an anchor's production ({n} commits)"
                    );
                }
            }
            if !problems.is_empty() {
                for p in &problems {
                    println!("  violation: {p}");
                }
                if !args.trace {
                    println!("  last rows:");
                    for row in &r.tail {
                        println!("    {row}");
                    }
                }
                println!("  reproduce: {}", o.reproduce());
                failed.push(o.reproduce());
            }
        }
    }
    if !single {
        println!(
            "\n{} runs, {} passed, {} failed",
            total,
            total - failed.len(),
            failed.len()
        );
        for f in &failed {
            println!("  reproduce: {f}");
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("{} of {total} runs failed", failed.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_ranges_parse_inclusively_and_bad_ones_are_explained() {
        assert_eq!(parse_seeds("1..100"), Ok((1, 100)));
        assert_eq!(parse_seeds("7"), Ok((7, 7)));
        assert!(parse_seeds("9..3").unwrap_err().contains("A..B"));
        assert!(parse_seeds("a..b").is_err());
    }
}
