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
