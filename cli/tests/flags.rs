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
