//! Helpers for end-to-end tests: temp directories, node processes on
//! 127.0.0.1 with free ports, bounded waits.
//!
//! Every process is stopped when its `NodeProcess` is dropped, including when
//! a test fails.

use bluepods_cli::client::{Client, TxBuilder};
pub use bluepods_cli::procs::{logged_vertices, tail, NodeProcess};
use bluepods_core::tx::{Operation, Transaction, TxStatus};
use bluepods_core::{Hash, Keypair};
use std::path::Path;
use std::time::{Duration, Instant};

/// Polls `cond` every 100 ms until it holds or `limit` passes.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs the `bluepods` client with `args` as an operator would; it must
/// succeed. Its stdout and stderr.
pub fn bluepods<I, A>(args: I) -> (String, String)
where
    I: IntoIterator<Item = A>,
    A: AsRef<std::ffi::OsStr>,
{
    let client = bluepods_cli::procs::node_binary()
        .expect("the node binary is built")
        .with_file_name("bluepods");
    let out = std::process::Command::new(&client)
        .args(args)
        .output()
        .expect("the client runs");
    let (text, err) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{text}\n{err}");
    (text, err)
}

/// `bluepods validator leave --wait` for the node `member` with its own
/// key, through the HTTP API at `http`.
pub fn leave_with_own_key(member: &NodeProcess, http: &str) -> (String, String) {
    let key_file = member.data.join("node.key");
    let key_file = key_file.to_str().expect("a UTF-8 path");
    bluepods([
        "validator",
        "leave",
        "--wait",
        "--http",
        http,
        "--key",
        key_file,
    ])
}

/// Polls `f` every 100 ms until it gives a value; panics after `limit`.
pub fn wait_until_some<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let mut found = None;
    let ok = wait_until(limit, || {
        found = f();
        found.is_some()
    });
    assert!(ok, "nothing after {limit:?}");
    found.expect("just found")
}

/// The value of the line `name VALUE` in `out`: the rest of the first line
/// whose first word is exactly `name`, trimmed. This is the format of
/// `bluepods-node --dump-state` (`last_committed_round 12`,
/// `manifest_root <hex>`, `objects 20060`), of the report a one-shot
/// `--sync-snapshot` / `--sync-full` prints (`snapshot_round`,
/// `manifest_root`, `objects`, `tx_outcomes`, `last_committed_round`) and of
/// Prometheus text (`bluepods_txs_committed_total 12`). `None` if no line
/// starts with that word; `objects` never matches a line `objects_x 1`.
pub fn line_value<'a>(out: &'a str, name: &str) -> Option<&'a str> {
    out.lines().find_map(|l| {
        let (key, value) = l.split_once(' ')?;
        (key == name).then_some(value.trim())
    })
}

/// [`line_value`] as a number, for exact checks: in `"objects 2000\n"`,
/// `field(out, "objects")` is `Some(2000)`, so `assert_eq!(.., Some(200))`
/// fails where `out.contains("objects 200")` would pass. `None` if the line
/// is missing or its value is not a number (e.g. `last_committed_round -`).
pub fn field(out: &str, name: &str) -> Option<u64> {
    line_value(out, name)?.parse().ok()
}

/// The value of key `name` in pretty-printed JSON with one `"key": value`
/// per line, as `bluepods sync-plan --json` prints it: the text after the
/// colon without its trailing comma and, for a string, its quotes. The first
/// such line at any depth; for scalar values only.
pub fn json_value<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("\"{name}\":");
    text.lines().find_map(|l| {
        let value = l.trim_start().strip_prefix(key.as_str())?.trim();
        let value = value.strip_suffix(',').unwrap_or(value);
        Some(
            value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value),
        )
    })
}

/// [`json_value`] as a number; `None` if absent, `null` or not a number.
pub fn json_field(text: &str, name: &str) -> Option<u64> {
    json_value(text, name)?.parse().ok()
}

/// Starts a bootstrap validator in `dir/name` on free ports.
pub fn bootstrap(dir: &Path, name: &str) -> NodeProcess {
    NodeProcess::bootstrap(dir, name).unwrap_or_else(|e| panic!("{e}"))
}

/// Starts a listener joining through `via`.
pub fn listener(dir: &Path, name: &str, via: &str) -> NodeProcess {
    NodeProcess::listener(dir, name, via).unwrap_or_else(|e| panic!("{e}"))
}

/// Starts a node in validator mode (it syncs, registers, then produces)
/// joining through `via`, with an HTTP API.
pub fn validator(dir: &Path, name: &str, via: &str) -> NodeProcess {
    NodeProcess::joiner(dir, name, via, &[]).unwrap_or_else(|e| panic!("{e}"))
}

/// Waits until the node has committed at least `round`.
pub fn wait_committed(node: &NodeProcess, round: u64, limit: Duration) -> bool {
    let api = Client::new(node.http());
    wait_until(limit, || {
        api.status()
            .ok()
            .and_then(|s| s.last_committed_round)
            .is_some_and(|r| r.0 >= round)
    })
}

/// `n` create-object transactions signed by `key` for the chain of `node`.
pub fn create_txs(node: &NodeProcess, key: &Keypair, n: usize) -> Vec<Transaction> {
    let api = Client::new(node.http());
    let builder = TxBuilder::from_node(&api, key.clone(), 1_000).unwrap_or_else(|e| panic!("{e}"));
    (0..n)
        .map(|i| {
            builder.build_with_nonce(
                i as u64,
                vec![Operation::Create {
                    data: format!("object {i}").into_bytes(),
                }],
            )
        })
        .collect()
}

/// Whether `hash` is committed on the node.
pub fn is_committed(node: &NodeProcess, hash: &Hash) -> bool {
    matches!(
        Client::new(node.http()).tx_status(hash),
        Ok(TxStatus::Committed { .. })
    )
}

/// A client for the node's API.
pub fn api(node: &NodeProcess) -> Client {
    Client::new(node.http())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_match_whole_names_and_whole_values() {
        let dump = "# bluepods committed state\nchain_id ab\nlast_committed_round 12\nobjects 2000\nabcd v=1 owner=ef data=00\noutcomes 3\n";
        assert_eq!(field(dump, "objects"), Some(2000));
        assert_ne!(field(dump, "objects"), Some(200));
        assert_eq!(field(dump, "last_committed_round"), Some(12));
        assert_eq!(line_value(dump, "chain_id"), Some("ab"));
        assert_eq!(field(dump, "object"), None);
        assert_eq!(
            field("last_committed_round -\n", "last_committed_round"),
            None
        );
        let metrics = "# HELP bluepods_txs_committed Transactions.\n# TYPE bluepods_txs_committed counter\nbluepods_txs_committed_total 120\n";
        assert_eq!(field(metrics, "bluepods_txs_committed_total"), Some(120));
        let json = "{\n  \"plan\": {\n    \"root\": \"00ff\",\n    \"quorum\": 12,\n    \"network_round\": 9,\n    \"round\": 4,\n    \"eta_ms\": null\n  }\n}\n";
        assert_eq!(json_field(json, "quorum"), Some(12));
        assert_eq!(json_field(json, "round"), Some(4));
        assert_eq!(json_value(json, "root"), Some("00ff"));
        assert_eq!(json_value(json, "eta_ms"), Some("null"));
        assert_eq!(json_field(json, "eta_ms"), None);
    }
}
