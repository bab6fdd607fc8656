//! `bluepods sync-plan`: what a snapshot sync would do, before doing it.

use crate::watch::mb;
use bluepods_core::SyncPlan;
use bluepods_drivers::plan::{sync_plan, PlanOptions};
use std::path::{Path, PathBuf};

/// A joiner writes the state into fjall's journal and then its tables, and
/// keeps the previous generation until the switch: plan for twice the raw
/// size.
const DISK_FACTOR: u64 = 2;

/// Free bytes on the file system that holds `dir` (or its nearest existing
/// ancestor, for a data directory not created yet).
pub fn free_bytes(dir: &Path) -> Result<u64, String> {
    let mut at = dir.to_path_buf();
    while !at.exists() {
        if !at.pop() {
            at = PathBuf::from(".");
            break;
        }
    }
    if at.as_os_str().is_empty() {
        at = PathBuf::from(".");
    }
    let st = rustix::fs::statvfs(&at).map_err(|e| format!("cannot stat {}: {e}", at.display()))?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Runs discovery and prints the plan; an error if the disk is too small.
pub fn run(opts: PlanOptions, data: &Path, json: bool) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let plan = rt.block_on(sync_plan(opts))?;
    let free = free_bytes(data)?;
    let need = plan.raw_bytes.saturating_mul(DISK_FACTOR);
    if json {
        let out = serde_json::json!({ "plan": plan, "data_dir": data, "free_bytes": free, "needed_bytes": need });
        println!(
            "{}",
            serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", render(&plan, data, free, need));
    }
    if free < need {
        return Err(format!(
            "not enough free disk in {}: {} free, about {} needed",
            data.display(),
            mb(free),
            mb(need)
        ));
    }
    Ok(())
}

/// The plan as text.
pub fn render(plan: &SyncPlan, data: &Path, free: u64, need: u64) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(format!("chain       {}", plan.chain_id));
    line(format!(
        "snapshot    round {} root {} (attested by weight {} of {}, {} validators)",
        plan.round,
        plan.root.short(),
        plan.quorum,
        plan.total_weight,
        plan.validators
    ));
    line(format!(
        "size        {} raw in {} chunks, about {} to download; {} objects, {} tx outcomes",
        mb(plan.raw_bytes),
        plan.chunks,
        mb(plan.download_bytes),
        plan.objects,
        plan.outcomes
    ));
    if let Some(r) = plan.network_round {
        line(format!(
            "replay      rounds {}..{} after the snapshot ({} rounds, as of now)",
            plan.round.0 + 1,
            r,
            r.0.saturating_sub(plan.round.0)
        ));
    }
    line(format!("peers       {} serving it:", plan.peers.len()));
    for p in &plan.peers {
        line(format!(
            "  {:<22} {:<9} key {}  rtt {}  probe {}",
            p.addr,
            p.role.to_string(),
            p.key.short(),
            p.rtt_ms.map_or("-".into(), |r| format!("{r} ms")),
            p.probe_bytes_per_sec
                .map_or("no answer".into(), |b| format!("{}/s", mb(b)))
        ));
    }
    let verdict = if free >= need { "OK" } else { "NOT ENOUGH" };
    line(format!(
        "disk        {}: {} free, about {} needed (2 x raw): {verdict}",
        data.display(),
        mb(free),
        mb(need)
    ));
    line(match plan.eta_ms {
        Some(ms) => format!(
            "estimate    about {:.1} s to download with every peer at its probe rate \
             (one chunk each: a conservative figure), then replay",
            ms as f64 / 1000.0
        ),
        None => "estimate    none: no peer answered its probe".into(),
    });
    out
}
