//! A joiner killed mid-download, whose snapshot its source pruned while it
//! was down and whose state changed all over the key space meanwhile,
//! rebuilds the chunks it had verified from delta answers — on real
//! processes: QUIC, fjall staging, delta answers built off the event loop.

use bluepods_core::Keypair;
use bluepods_tests::*;
use std::time::Duration;

/// The last "chunks N/T" the joiner reported.
fn chunks_verified(log: &str) -> u64 {
    log.rsplit("chunks ")
        .next()
        .and_then(|rest| rest.split('/').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The joiner's sync lines (its log also has a line per vertex).
fn sync_lines(log: &str) -> String {
    log.lines()
        .filter(|l| l.contains("[SYNC]") && !l.contains("downloading snapshot..."))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The `D` of the joiner's "D rebuilt from held pages".
fn rebuilt(log: &str) -> Option<u64> {
    let before = log.split(" rebuilt from held pages").next()?;
    before.rsplit(' ').next()?.parse().ok()
}

#[test]
fn a_restarted_joiner_whose_snapshot_was_pruned_rebuilds_what_it_verified_from_deltas() {
    let dir = tempfile::tempdir().unwrap();
    // No leases (the snapshot goes once two newer exist), and answers
    // paced at 4 MB/s so the download lasts long enough to interrupt.
    let config = dir.path().join("bootstrap.toml");
    std::fs::write(
        &config,
        "snapshot_lease_ms = 0\nmax_upload_bandwidth = 4000000\n",
    )
    .unwrap();
    let mut boot = NodeProcess::bootstrap_with(
        dir.path(),
        "bootstrap",
        &[
            "--genesis-objects",
            "300000",
            "--round-interval-ms",
            "50",
            "--config",
            config.to_str().unwrap(),
        ],
    )
    .unwrap();
    let own_round = || api(&boot).status().ok().and_then(|s| s.own_last_round);
    assert!(
        wait_until(Duration::from_secs(60), || {
            api(&boot).snapshots().is_ok_and(|s| !s.is_empty())
        }),
        "no snapshot built: {}",
        tail(&boot.log_text(), 20)
    );
    let at_build = own_round().expect("the bootstrap produces");
    assert!(wait_until(Duration::from_secs(20), || {
        own_round().is_some_and(|r| r > at_build)
    }));

    let data = dir.path().join("joiner");
    let join = ["--sync-full", "--bootstrap-addr", boot.quic.as_str()];
    let mut first = NodeProcess::spawn("joiner", &data, &join).unwrap();
    assert!(
        wait_until(Duration::from_secs(60), || {
            chunks_verified(&first.log_text()) >= 10 || !first.is_running()
        }),
        "{}",
        tail(&first.log_text(), 20)
    );
    assert!(first.is_running(), "finished before it could be killed");
    first.kill();
    let verified = chunks_verified(&first.log_text());

    // 300 new objects (0.1%), their ids all over the key space.
    let txs = create_txs(&boot, &Keypair::from_label("e2e-deltas"), 300);
    for tx in &txs {
        api(&boot).submit(tx).unwrap();
    }
    let last = txs.last().unwrap().hash();
    assert!(wait_until(Duration::from_secs(60), || is_committed(
        &boot, &last
    )));
    let committed = api(&boot).status().unwrap().last_committed_round.unwrap().0;
    // Wait for a snapshot holding them, and for the joiner's to be gone.
    // Two builds of 300k objects: CI once took more than 60 s here.
    assert!(
        wait_until(Duration::from_secs(120), || {
            api(&boot)
                .snapshots()
                .is_ok_and(|s| !s.is_empty() && s.iter().all(|x| x.round.0 > committed))
        }),
        "no snapshot past round {committed}: {:?}, bootstrap running: {}\n{}",
        api(&boot)
            .snapshots()
            .map(|s| s.iter().map(|x| x.round.0).collect::<Vec<_>>()),
        boot.is_running(),
        tail(&boot.log_text(), 30)
    );

    let mut again = NodeProcess::spawn("joiner", &data, &join).unwrap();
    assert_eq!(
        again.wait_exit(Duration::from_secs(120)),
        Some(0),
        "{}",
        tail(&again.log_text(), 30)
    );
    let log = again.log_text();
    assert!(
        log.contains("moving to snapshot round="),
        "{}",
        sync_lines(&log)
    );
    let rebuilt = rebuilt(&log).unwrap_or_else(|| panic!("{}", sync_lines(&log)));
    eprintln!("{}", sync_lines(&log));
    // Inserts move a cut point now and then: two verified chunks may end
    // up in one new chunk, or one split over two.
    assert!(
        rebuilt + 2 >= verified && rebuilt > 0,
        "{rebuilt} chunks rebuilt, {verified} verified before the kill:\n{}\nbefore:\n{}",
        sync_lines(&log),
        sync_lines(&first.log_text())
    );
    let out = again.stdout_text();
    assert!(out.contains("state verification: OK"), "{out}");
    assert!(
        field(&out, "objects").is_some_and(|n| n >= 300_300),
        "{out}"
    );
}
