//! The binaries' command lines: help that explains, clear errors.

use std::process::Command;

fn node() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bluepods-node"))
}

/// Whether `help` has an option line defining exactly `flag` (`--data <DIR>`,
/// `-h, --help`): `--bootstrap` is not satisfied by `--bootstrap-addr`, nor
/// by a description that mentions it.
fn defines_flag(help: &str, flag: &str) -> bool {
    help.lines().any(|l| {
        let l = l.trim_start();
        let l = match l.split_once(", ") {
            Some((short, rest)) if short.len() == 2 && short.starts_with('-') => rest,
            _ => l,
        };
        l.split_whitespace().next() == Some(flag)
    })
}

/// Whether `help` lists exactly `cmd` as a command: a line whose first word
/// is `cmd` (`tx` is not satisfied by a word containing it).
fn lists_command(help: &str, cmd: &str) -> bool {
    help.lines()
        .any(|l| l.split_whitespace().next() == Some(cmd))
}

#[test]
fn node_help_lists_the_seed_flags() {
    let out = node().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--bootstrap",
        "--listener",
        "--bootstrap-addr",
        "--data",
        "--quic",
        "--http",
        "--chain-id",
    ] {
        assert!(defines_flag(&help, flag), "missing {flag} in:\n{help}");
    }
}

#[test]
fn joining_without_a_bootstrap_address_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = node()
        .args(["--listener", "--data"])
        .arg(dir.path().join("d"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bootstrap-addr is required"));
}

#[test]
fn a_malformed_address_or_chain_id_is_a_clear_error() {
    let out = node()
        .args(["--bootstrap", "--quic", "nonsense"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--quic nonsense"));
    let out = node()
        .args(["--bootstrap-addr", "127.0.0.1:1", "--chain-id", "xyz"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--chain-id"));
}

#[test]
fn client_help_lists_its_commands() {
    let out = Command::new(env!("CARGO_BIN_EXE_bluepods"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for cmd in ["demo", "tx", "status", "load", "bench", "keygen"] {
        assert!(lists_command(&help, cmd), "missing {cmd} in:\n{help}");
    }
}

/// Runs `cmd` for at most `limit`: its exit code and stderr (killed and
/// `None` past the limit).
fn run_for(mut cmd: Command, limit: std::time::Duration) -> (Option<i32>, String) {
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + limit;
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    (code, err)
}

/// Postmortem (issue 11): `--sync-snapshot --bootstrap-addr 127.0.0.1:1`
/// (nothing there) and `nonsense:xx` sat in `phase idle -> connecting`
/// without another log line, forever. Now every failed dial is logged with
/// its attempt and reason, and a one-shot sync gives up after
/// `sync.retry_attempts` with a one-line reason and exit status 1.
#[test]
fn a_one_shot_sync_with_no_reachable_bootstrap_says_why_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let nobody = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent = nobody.local_addr().unwrap().to_string();
    drop(nobody);
    let quick = dir.path().join("quick.toml");
    std::fs::write(
        &quick,
        "[sync]\nretry_attempts = 2\nconnection_timeout_ms = 500\n",
    )
    .unwrap();
    for (addr, config) in [("nonsense:xx", None), (silent.as_str(), Some(&quick))] {
        let mut cmd = node();
        cmd.args(["--sync-snapshot", "--bootstrap-addr", addr, "--data"])
            .arg(dir.path().join(addr.replace(':', "_")));
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        let (code, err) = run_for(cmd, std::time::Duration::from_secs(60));
        assert_eq!(code, Some(1), "{addr}: {err}");
        assert!(
            err.contains(&format!("cannot reach {addr} (attempt 1 of")),
            "{addr}: {err}"
        );
        let last = err.lines().last().unwrap_or("");
        assert!(
            last.starts_with("error: no bootstrap peer reachable") && last.contains(addr),
            "{addr}: {last}"
        );
    }
}
