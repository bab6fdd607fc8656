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
    assert!(
        wait_until(Duration::from_secs(60), || {
            api(&boot).snapshots().is_ok_and(|s| !s.is_empty())
        }),
        "no snapshot built: {}",
        tail(&boot.log_text(), 20)
    );
    // The bootstrap attests a snapshot in the next vertex it produces after
    // building it: wait until it has produced past the round it was at once
    // the snapshot was listed.
    let own_round = || api(&boot).status().ok().and_then(|s| s.own_last_round);
    let at_build = own_round().expect("the bootstrap produces");
    assert!(
        wait_until(Duration::from_secs(20), || {
            own_round().is_some_and(|r| r > at_build)
        }),
        "the bootstrap produced nothing after round {at_build}: {}",
        tail(&boot.log_text(), 20)
    );
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
    let round = field(&out, "snapshot_round").unwrap_or_else(|| panic!("no round in {out}"));
    let root = line_value(&out, "manifest_root").unwrap_or_else(|| panic!("no root in {out}"));
    assert_eq!(field(&out, "objects"), Some(300_000), "{out}");
    let served = api(&boot).snapshots().unwrap();
    let attested = served
        .iter()
        .find(|s| s.round.0 == round)
        .expect("the snapshot is still served");
    assert_eq!(attested.root.to_string(), root);
    assert_eq!(attested.objects, 300_000);
    assert!(kills >= 3, "only {kills} kills landed mid-download");
}
