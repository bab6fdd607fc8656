//! Seed 000 phases 2 and 3, end to end, with real processes: a bootstrap run,
//! stopped and restarted on its data directory; `--sync-snapshot`;
//! `--sync-full` while transactions flow; then `--dump-state` of both data
//! directories at the same round, compared byte for byte.

use bluepods_core::tx::TxStatus;
use bluepods_core::Keypair;
use bluepods_tests::*;
use std::time::Duration;

#[test]
fn snapshot_sync_then_full_sync_end_with_the_bootstrap_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut boot =
        NodeProcess::bootstrap_with(dir.path(), "bootstrap", &["--genesis-objects", "20000"])
            .unwrap();
    let key = Keypair::from_label("e2e-snapshots");
    let txs = create_txs(&boot, &key, 60);
    for tx in &txs[..20] {
        api(&boot).submit(tx).unwrap();
    }
    assert!(wait_committed(&boot, 6, Duration::from_secs(30)));
    // Phase 2: stopped and restarted on its data directory.
    boot.stop(Duration::from_secs(5));
    drop(boot);
    let boot = bootstrap(dir.path(), "bootstrap");
    assert!(boot.log_text().contains("[SYNC] resuming chain"));

    // --sync-snapshot: fetch, verify, apply, print, exit 0.
    let mut snap = NodeProcess::spawn(
        "snap",
        &dir.path().join("snap"),
        &["--sync-snapshot", "--bootstrap-addr", &boot.quic],
    )
    .unwrap();
    let code = snap.wait_exit(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{}", tail(&snap.log_text(), 30));
    // The snapshot holds the 20000 genesis objects plus one per transaction
    // committed at or before its round, and it is one the bootstrap serves.
    let genesis_plus_committed_by = |round: u64| {
        let committed = txs[..20]
            .iter()
            .filter(|t| {
                matches!(
                    api(&boot).tx_status(&t.hash()),
                    Ok(TxStatus::Committed { round: r }) if r.0 <= round
                )
            })
            .count();
        20_000 + committed as u64
    };
    let out = snap.stdout_text();
    let snap_round = field(&out, "snapshot_round").unwrap_or_else(|| panic!("no round in {out}"));
    assert_eq!(
        field(&out, "objects"),
        Some(genesis_plus_committed_by(snap_round)),
        "{out}"
    );
    let served = api(&boot).snapshots().unwrap();
    let snap_served = served
        .iter()
        .find(|s| s.round.0 == snap_round)
        .expect("the snapshot is served by the bootstrap");
    assert_eq!(
        line_value(&out, "manifest_root"),
        Some(snap_served.root.to_string().as_str()),
        "{out}"
    );
    assert_eq!(field(&out, "objects"), Some(snap_served.objects), "{out}");
    let snap_committed = field(&out, "last_committed_round")
        .unwrap_or_else(|| panic!("no last_committed_round in {out}"));
    let log = snap.log_text();
    for line in [
        "[SYNC] requesting snapshot",
        "[SYNC] downloading snapshot... 100%",
        "[SYNC] decompressing snapshot...",
        "[SYNC] verifying checksum...",
        "[SYNC] applying snapshot: ",
        "[SYNC] snapshot applied successfully",
    ] {
        assert!(
            log.contains(line),
            "missing {line:?} in:\n{}",
            tail(&log, 40)
        );
    }

    // Run again on the synced directory: nothing to do, said so, exit 0.
    let mut again = NodeProcess::spawn(
        "snap-again",
        &dir.path().join("snap"),
        &["--sync-snapshot", "--bootstrap-addr", &boot.quic],
    )
    .unwrap();
    assert_eq!(again.wait_exit(Duration::from_secs(20)), Some(0));
    // The stored state it reports: at least the snapshot, at most what the
    // first run had committed when it exited.
    let again_out = again.stdout_text();
    let synced_at = again_out
        .lines()
        .find_map(|l| l.strip_prefix("already synced: last_committed_round "))
        .and_then(|r| r.trim().parse::<u64>().ok());
    assert!(
        synced_at.is_some_and(|r| (snap_round..=snap_committed).contains(&r)),
        "expected already synced at a round in {snap_round}..={snap_committed}:\n{again_out}"
    );

    // `bluepods sync-plan`: the same snapshot, its size and peers, a disk
    // check and an estimate, with nothing written.
    let client = bluepods_cli::procs::node_binary()
        .unwrap()
        .with_file_name("bluepods");
    let plan_dir = dir.path().join("plan");
    let out = std::process::Command::new(&client)
        .args(["sync-plan", "--json", "--timeout-secs", "30"])
        .args(["--bootstrap-addr", &boot.quic])
        .arg("--data")
        .arg(&plan_dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The plan describes a snapshot the bootstrap serves, with its exact
    // object count, and the quorum of a one-validator set.
    let plan_round = json_field(&text, "round").unwrap_or_else(|| panic!("no round in {text}"));
    let served = api(&boot).snapshots().unwrap();
    let planned = served
        .iter()
        .find(|s| s.round.0 == plan_round)
        .unwrap_or_else(|| panic!("the plan's snapshot is not served: {text}"));
    assert_eq!(
        json_value(&text, "root"),
        Some(planned.root.to_string().as_str()),
        "{text}"
    );
    assert_eq!(
        json_field(&text, "objects"),
        Some(planned.objects),
        "{text}"
    );
    assert_eq!(
        json_field(&text, "objects"),
        Some(genesis_plus_committed_by(plan_round)),
        "{text}"
    );
    assert_eq!(json_field(&text, "quorum"), Some(1), "{text}");
    assert!(json_field(&text, "free_bytes").is_some(), "{text}");
    for key in ["\"probe_bytes_per_sec\": ", "\"eta_ms\": "] {
        assert!(text.contains(key), "missing {key} in {text}");
    }
    assert!(!plan_dir.exists(), "sync-plan writes nothing");

    // --sync-full while transactions keep coming.
    let mut full = NodeProcess::spawn(
        "full",
        &dir.path().join("full"),
        &["--sync-full", "--bootstrap-addr", &boot.quic],
    )
    .unwrap();
    let mut code = None;
    for tx in &txs[20..] {
        api(&boot).submit(tx).unwrap();
        code = full.wait_exit(Duration::from_millis(150));
        if code.is_some() {
            break;
        }
    }
    let code = code.or_else(|| full.wait_exit(Duration::from_secs(60)));
    assert_eq!(code, Some(0), "{}", tail(&full.log_text(), 40));
    assert!(
        full.stdout_text().contains("state verification: OK"),
        "{}",
        full.stdout_text()
    );
    for line in [
        "[SYNC] buffer contains",
        "[SYNC] replay complete:",
        "[SYNC] state verification: OK",
    ] {
        assert!(full.log_text().contains(line), "missing {line:?}");
    }

    // Same round, same bytes: restart the synced node as a listener, let it
    // follow to the bootstrap's last round, stop both, compare dumps.
    let hashes: Vec<_> = txs.iter().map(|t| t.hash()).collect();
    assert!(wait_until(Duration::from_secs(30), || hashes
        .iter()
        .all(|h| is_committed(&boot, h))));
    let mut follower = NodeProcess::start(
        "full",
        &dir.path().join("full"),
        &[
            "--listener",
            "--bootstrap-addr",
            &boot.quic,
            "--http",
            "127.0.0.1:0",
        ],
        true,
    )
    .unwrap();
    let now = api(&boot).status().unwrap().last_committed_round.unwrap().0;
    assert!(
        wait_committed(&follower, now, Duration::from_secs(30)),
        "{}",
        tail(&follower.log_text(), 20)
    );
    let mut boot = boot;
    boot.stop(Duration::from_secs(5));
    let boot_state = boot.dump_state().unwrap();
    let final_round = field(&boot_state, "last_committed_round")
        .unwrap_or_else(|| panic!("no committed round in {}", &boot_state[..300]));
    assert!(
        wait_committed(&follower, final_round, Duration::from_secs(30)),
        "{}",
        tail(&follower.log_text(), 20)
    );
    follower.stop(Duration::from_secs(5));
    let follower_state = follower.dump_state().unwrap();
    assert_eq!(
        field(&boot_state, "objects"),
        Some(20_060),
        "{}",
        &boot_state[..300]
    );
    assert_eq!(
        field(&follower_state, "last_committed_round"),
        Some(final_round),
        "the follower stopped at another round"
    );
    assert!(boot_state == follower_state, "dumps differ");
}
