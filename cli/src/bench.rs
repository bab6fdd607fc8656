//! `bluepods bench`: vertices and transactions per second through a node's
//! full inbound path — decoding-free delivery of gossiped vertices from a
//! handshaken peer, then signature and structure checks, DAG insertion, the
//! commit rule, execution and storage — on the in-memory store and on fjall.
//!
//! The vertices (a one-validator chain, each carrying `txs_per_vertex`
//! create-object transactions from several senders) are generated and signed
//! before the clock starts.

use bluepods_core::harness::{attach_peer, test_genesis};
use bluepods_core::tx::{Operation, TxBody};
use bluepods_core::vertex::{Vertex, VertexBody};
use bluepods_core::wire::Message;
use bluepods_core::{
    init_chain, ChainParams, Hash, Input, Keypair, MemStore, Node, NodeConfig, PeerId, Role, Round,
    Store, Timestamp,
};
use bluepods_drivers::store::FjallStore;
use std::time::{Duration, Instant};

/// Benchmark size.
#[derive(Clone, Copy, Debug)]
pub struct BenchOptions {
    /// Vertices in the chain.
    pub vertices: u64,
    /// Transactions per vertex.
    pub txs_per_vertex: u64,
}

/// One measured run.
#[derive(Clone, Debug)]
pub struct BenchResult {
    /// Which store.
    pub store: &'static str,
    /// Vertices processed.
    pub vertices: u64,
    /// Transactions executed.
    pub txs: u64,
    /// Time for all of them.
    pub elapsed: Duration,
}

impl std::fmt::Display for BenchResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        write!(
            f,
            "store={:<6} {:>6} vertices {:>8} txs in {:>7.3}s: {:>9.0} vertices/s {:>10.0} tx/s",
            self.store,
            self.vertices,
            self.txs,
            secs,
            self.vertices as f64 / secs,
            self.txs as f64 / secs
        )
    }
}

fn generate(opts: BenchOptions, chain_id: Hash, author: &Keypair) -> Vec<Vertex> {
    let senders: Vec<Keypair> = (0..16)
        .map(|i| Keypair::from_label(&format!("bench-sender-{i}")))
        .collect();
    let mut out = Vec::with_capacity(opts.vertices as usize);
    let mut prev: Option<Hash> = None;
    for r in 0..opts.vertices {
        let txs = (0..opts.txs_per_vertex)
            .map(|i| {
                let s = &senders[(i % 16) as usize];
                TxBody {
                    chain_id,
                    sender: s.public(),
                    nonce: r * opts.txs_per_vertex + i,
                    expiry: Round(u64::MAX),
                    ops: vec![Operation::Create {
                        data: vec![(i % 251) as u8; 64],
                    }],
                }
                .sign(s)
            })
            .collect();
        let v = VertexBody {
            chain_id,
            round: Round(r),
            author: author.public(),
            parents: prev.into_iter().collect(),
            txs,
            attestation: None,
            evidence: Vec::new(),
            epoch_vote: None,
        }
        .sign(author);
        prev = Some(v.hash());
        out.push(v);
    }
    out
}

/// Feeds the vertices to a fresh listener node over `store` and times it.
fn measure<S: Store>(
    label: &'static str,
    mut store: S,
    genesis: &bluepods_core::Genesis,
    author: &Keypair,
    vertices: &[Vertex],
) -> Result<BenchResult, String> {
    init_chain(&mut store, genesis).map_err(|e| e.to_string())?;
    let config = NodeConfig {
        role: Role::Listener,
        max_rounds_ahead: u64::MAX / 2,
        ..NodeConfig::default()
    };
    let mut node = Node::new(
        config,
        Keypair::from_label("bench-listener"),
        store,
        1,
        Timestamp(0),
    )
    .map_err(|e| e.to_string())?;
    let peer = PeerId(1);
    let now = Timestamp(1);
    attach_peer(&mut node, now, peer, author, Role::Validator)?;
    let start = Instant::now();
    for v in vertices {
        node.handle(
            now,
            Input::Message {
                peer,
                msg: Message::Vertex(v.clone()),
            },
        );
        while node.poll_action().is_some() {}
    }
    let elapsed = start.elapsed();
    let status = node.status();
    if let Some(h) = node.halted() {
        return Err(format!("node halted: {h}"));
    }
    if status.dag_vertices == 0 || status.executed_txs == 0 {
        return Err(format!("nothing was processed: {status:?}"));
    }
    Ok(BenchResult {
        store: label,
        vertices: vertices.len() as u64,
        txs: status.executed_txs,
        elapsed,
    })
}

/// Runs the benchmark on both stores.
pub fn run(opts: BenchOptions) -> Result<Vec<BenchResult>, String> {
    let (genesis, keys) = test_genesis(1, ChainParams::default());
    let author = &keys[0];
    let t = Instant::now();
    let vertices = generate(opts, genesis.chain_id(), author);
    println!(
        "[BENCH] generated and signed {} vertices x {} txs in {:.2}s",
        opts.vertices,
        opts.txs_per_vertex,
        t.elapsed().as_secs_f64()
    );
    let mut results = vec![measure(
        "memory",
        MemStore::new(),
        &genesis,
        author,
        &vertices,
    )?];
    let dir = std::env::temp_dir().join(format!("bluepods-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let fjall = FjallStore::open(&dir).map_err(|e| e.to_string())?;
    let r = measure("fjall", fjall, &genesis, author, &vertices);
    let _ = std::fs::remove_dir_all(&dir);
    results.push(r?);
    Ok(results)
}
