//! A joining node killed with SIGKILL in the middle of its snapshot download,
//! five times, resumes each time and ends with the attested state.

use bluepods_tests::*;
use std::time::Duration;

#[test]
fn a_joiner_killed_five_times_mid_download_resumes_and_ends_with_the_attested_state() {
    let dir = tempfile::tempdir().unwrap();
    let boot =
        NodeProcess::bootstrap_with(dir.path(), "bootstrap", &["--genesis-objects", "300000"])
            .unwrap();
    assert!(wait_until(Duration::from_secs(60), || {
        api(&boot).snapshots().is_ok_and(|s| !s.is_empty())
    }));
    std::thread::sleep(Duration::from_millis(500)); // its attestation is in the next vertex
    let data = dir.path().join("joiner");
    let join = ["--sync-snapshot", "--bootstrap-addr", boot.quic.as_str()];
    let mut kills = 0;
    let mut resumed = 0;
    for _ in 0..5 {
        let mut p = NodeProcess::spawn("joiner", &data, &join).unwrap();
        // Kill as soon as the download is visibly under way.
        let downloading = wait_until(Duration::from_secs(30), || {
            p.log_text().contains("downloading snapshot...") || !p.is_running()
        });
        assert!(downloading, "{}", tail(&p.log_text(), 20));
        if !p.is_running() {
            break; // finished before we could kill it
        }
        p.kill();
        kills += 1;
        resumed += usize::from(p.log_text().contains("resuming snapshot download"));
    }
    let mut last = NodeProcess::spawn("joiner", &data, &join).unwrap();
    assert_eq!(
        last.wait_exit(Duration::from_secs(60)),
        Some(0),
        "{}",
        tail(&last.log_text(), 30)
    );
    if kills > 1 {
        assert!(resumed + usize::from(last.log_text().contains("resuming snapshot download")) >= 1);
    }
    let out = last.stdout_text();
    let round: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("snapshot_round "))
        .unwrap()
        .parse()
        .unwrap();
    let root = out
        .lines()
        .find_map(|l| l.strip_prefix("manifest_root "))
        .unwrap()
        .to_string();
    assert!(out.contains("objects 300000"), "{out}");
    let served = api(&boot).snapshots().unwrap();
    let attested = served
        .iter()
        .find(|s| s.round.0 == round)
        .expect("the snapshot is still served");
    assert_eq!(attested.root.to_string(), root);
    assert!(kills >= 3, "only {kills} kills landed mid-download");
}
