//! Restarts and data directories, end to end.

use bluepods_core::tx::TxStatus;
use bluepods_core::Keypair;
use bluepods_tests::*;
use std::time::Duration;

/// Runs a bootstrap until a transaction and a few rounds are committed,
/// stops it with `stop`, restarts it on the same data directory and checks
/// that it resumes from where it was.
fn restart_resumes(stop: impl FnOnce(&mut NodeProcess)) {
    let dir = tempfile::tempdir().unwrap();
    let mut boot = bootstrap(dir.path(), "bootstrap");
    let tx = create_txs(&boot, &Keypair::from_label("e2e-restart"), 1).remove(0);
    let hash = api(&boot).submit(&tx).unwrap();
    assert!(wait_until(Duration::from_secs(20), || is_committed(
        &boot, &hash
    )));
    assert!(wait_committed(&boot, 8, Duration::from_secs(20)));
    let chain = api(&boot).status().unwrap().chain_id;
    stop(&mut boot);
    let last_before = *boot.produced_rounds().iter().max().unwrap();
    drop(boot);

    let boot = bootstrap(dir.path(), "bootstrap");
    let st = api(&boot).status().unwrap();
    assert_eq!(st.chain_id, chain, "same chain after restart");
    assert!(
        boot.log_text().contains("[SYNC] resuming chain"),
        "{}",
        tail(&boot.log_text(), 20)
    );
    assert!(
        st.last_committed_round
            .is_some_and(|r| r.0 + 2 >= last_before),
        "resumed at {:?}, had produced up to {last_before}",
        st.last_committed_round
    );
    assert!(matches!(
        api(&boot).tx_status(&hash).unwrap(),
        TxStatus::Committed { .. }
    ));
    assert!(
        wait_committed(&boot, last_before + 5, Duration::from_secs(20)),
        "commits continue after restart"
    );
    let first_after = *boot.produced_rounds().iter().min().unwrap();
    assert!(
        first_after > last_before,
        "never produces a round twice: {first_after} <= {last_before}"
    );
}

#[test]
fn a_bootstrap_stopped_and_restarted_resumes_from_its_last_committed_round() {
    restart_resumes(|p| p.stop(Duration::from_secs(5)));
}

#[test]
fn a_bootstrap_killed_with_sigkill_resumes_from_its_durable_state() {
    restart_resumes(|p| p.kill());
}

#[test]
fn a_data_directory_in_use_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _boot = bootstrap(dir.path(), "bootstrap");
    let second = NodeProcess::bootstrap(dir.path(), "bootstrap");
    let err = second.err().expect("second process must fail");
    assert!(
        err.contains("in use by another bluepods-node process"),
        "{err}"
    );
}
