//! Issue 13 end to end, with real processes: a bootstrap and three
//! validators that join and are admitted; the bootstrap leaves the set and
//! is stopped; a fresh node joining from a snapshot through one of the
//! others checks the chain of epoch certificates — from genesis, and from
//! a trusted checkpoint — and reaches `state verification: OK` against the
//! set the genesis validator is no longer part of.

use bluepods_cli::procs::NodeProcess;
use bluepods_tests::*;
use std::time::Duration;

/// A validator of this devnet: it approves the candidates it is connected
/// to, as the bootstrap does, so that each newcomer is admitted by a quorum
/// of the set as it grows.
fn devnet_validator(dir: &std::path::Path, name: &str, via: &str) -> NodeProcess {
    NodeProcess::joiner(dir, name, via, &["--auto-approve", "true"])
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A fresh node's one-shot join through `via` (`--sync-full --sync-mode
/// snapshot`: join from a snapshot, then verify the state); its exit code
/// and stdout.
fn sync_full(
    dir: &std::path::Path,
    name: &str,
    via: &str,
    extra: &[&str],
) -> (Option<i32>, String, String) {
    let mut args = vec![
        "--sync-full",
        "--sync-mode",
        "snapshot",
        "--bootstrap-addr",
        via,
    ];
    args.extend_from_slice(extra);
    let mut full = NodeProcess::spawn(name, &dir.join(name), &args).unwrap();
    let code = full.wait_exit(Duration::from_secs(90));
    (code, full.stdout_text(), full.log_text())
}

#[test]
fn after_the_bootstrap_leaves_a_fresh_snapshot_joiner_verifies_its_state_through_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let mut boot = bootstrap(dir.path(), "bootstrap");
    assert!(wait_committed(&boot, 4, Duration::from_secs(20)));
    let validators: Vec<NodeProcess> = (1..=3)
        .map(|i| devnet_validator(dir.path(), &format!("v{i}"), &boot.quic))
        .collect();
    let admitted = wait_until(Duration::from_secs(120), || {
        api(&boot).validators().is_ok_and(|v| v.members.len() == 4)
    });
    assert!(admitted, "{}", tail(&validators[2].log_text(), 30));

    // The bootstrap leaves, with its own key, and is stopped once out.
    let boot_key = api(&boot).status().unwrap().node_key;
    let http = boot.http.clone().unwrap();
    leave_with_own_key(&boot, &http);
    let out = wait_until(Duration::from_secs(90), || {
        api(&validators[0])
            .validators()
            .is_ok_and(|v| v.members.len() == 3 && v.members.iter().all(|m| m.key != boot_key))
    });
    assert!(out, "{}", tail(&validators[0].log_text(), 30));
    boot.stop(Duration::from_secs(5));

    // The three go on alone, through at least one more certified epoch.
    let v1 = &validators[0];
    let set = api(v1).validators().unwrap();
    let epoch_now = set.epoch;
    assert!(wait_until(Duration::from_secs(60), || api(v1)
        .validators()
        .is_ok_and(|v| v.epoch >= epoch_now + 2)));
    let checkpoint = api(v1)
        .validators()
        .unwrap()
        .checkpoint
        .expect("a certified epoch");

    // A fresh node through v1, from genesis: it fetches the certificates
    // and checks them link by link.
    let (code, stdout, log) = sync_full(dir.path(), "fresh", &v1.quic, &[]);
    assert_eq!(code, Some(0), "{}", tail(&log, 40));
    assert!(stdout.contains("state verification: OK"), "{stdout}");
    assert!(log.contains("certified by"), "{}", tail(&log, 40));
    assert!(log.contains("fetched and checked"), "{}", tail(&log, 40));

    // And one from the checkpoint an operator would copy from v1.
    let (code, stdout, log) = sync_full(
        dir.path(),
        "fresh-from-checkpoint",
        &validators[1].quic,
        &["--trust-checkpoint", &checkpoint],
    );
    assert_eq!(code, Some(0), "{}", tail(&log, 40));
    assert!(stdout.contains("state verification: OK"), "{stdout}");
}
