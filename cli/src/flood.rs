//! `bluepods flood`: hostile peers against a real node, for the memory
//! figure of issue 11 (`scripts/bench-flood.sh`).
//!
//! Each peer is a real node (the production event loop and QUIC transport,
//! an in-memory store) whose transport rewrites what it sends the way the
//! simulator's hostile peers do (`bluepods_sim::hostile`): half of them
//! flood wide range requests with every status, the other half are
//! `Pest`s (claims of round 10^9, every answer withheld, every vertex sent
//! three times with a far-future one). Peers that get banned or dropped
//! come back with a fresh key, so the flood lasts as long as asked.

use bluepods_core::{Keypair, MemStore, Node, NodeConfig, Role, Timestamp};
use bluepods_drivers::event_loop::{EventLoop, TokioClock};
use bluepods_drivers::transport::{bind_endpoint, system_resolver, Transport, TransportConfig};
use bluepods_sim::hostile::{tamper, Hostility};
use std::time::Duration;

/// What to flood, and for how long.
#[derive(Clone, Debug)]
pub struct FloodArgs {
    /// The target's QUIC address.
    pub target: String,
    /// Hostile peers at once.
    pub peers: usize,
    /// Seconds of flood.
    pub seconds: u64,
}

/// Runs the flood; prints one line per peer generation that ended.
pub fn main(args: &FloodArgs) -> Result<(), String> {
    let rt = crate::two_core_runtime()?;
    rt.block_on(async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(args.seconds);
        let mut peers = Vec::new();
        for i in 0..args.peers {
            let target = args.target.clone();
            peers.push(tokio::spawn(async move {
                let mut lives = 0u64;
                while tokio::time::Instant::now() < deadline {
                    lives += 1;
                    let how = if i % 2 == 0 {
                        Hostility::Flooder
                    } else {
                        Hostility::Pest
                    };
                    let key = Keypair::from_label(&format!("flood-{i}-{lives}"));
                    if let Err(e) = one_life(&target, key, how, deadline).await {
                        eprintln!("[FLOOD] peer {i}: {e}");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
                lives
            }));
        }
        let mut lives = 0;
        for p in peers {
            lives += p.await.unwrap_or(0);
        }
        println!(
            "[FLOOD] {} hostile peers for {} s against {}: {lives} connections in all",
            args.peers, args.seconds, args.target
        );
        Ok(())
    })
}

/// One hostile node, until it is dropped or the deadline passes.
async fn one_life(
    target: &str,
    key: Keypair,
    how: Hostility,
    deadline: tokio::time::Instant,
) -> Result<(), String> {
    let config = NodeConfig {
        role: Role::Listener,
        bootstrap_peers: vec![target.to_string()],
        status_interval_ms: 200,
        ..NodeConfig::default()
    };
    let node = Node::new(
        config,
        key.clone(),
        MemStore::new(),
        rand::random(),
        Timestamp(0),
    )
    .map_err(|e| e.to_string())?;
    let cfg = TransportConfig::default();
    let endpoint = bind_endpoint("127.0.0.1:0".parse().expect("an address"), &cfg)?;
    let (net_tx, net_rx) = tokio::sync::mpsc::channel(4096);
    let transport =
        Transport::new(endpoint, net_tx, system_resolver(), cfg).tamper_with(tamper(how, key));
    let (mut lp, handle) = EventLoop::new(node, transport, net_rx, TokioClock::new());
    // A life ends when the target drops this peer (no peer left) or at the
    // deadline.
    lp.until(|n| n.status().peers.is_empty() && n.status().last_committed_round.is_some());
    let run = lp.run();
    tokio::select! {
        _ = run => Ok(()),
        () = tokio::time::sleep_until(deadline) => {
            handle.shutdown().await;
            Ok(())
        }
    }
}
