//! `bluepods sync-plan`: run discovery against live peers, with an
//! in-memory store and a throwaway key, and return the plan (see
//! `bluepods_core::node`'s `snapshot/plan.rs`). Nothing is written anywhere.

use crate::event_loop::{EventLoop, Exit, TokioClock};
use crate::transport::{bind_endpoint, system_resolver, Transport, TransportConfig};
use bluepods_core::config::SyncMode;
use bluepods_core::store::MemStore;
use bluepods_core::{Hash, Keypair, Node, NodeConfig, Role, SyncPlan, Timestamp};
use std::time::Duration;
use tokio::sync::mpsc;

/// What `sync_plan` needs.
#[derive(Clone, Debug)]
pub struct PlanOptions {
    /// Peers to ask.
    pub bootstrap_addrs: Vec<String>,
    /// The chain to expect (without it, the chain the peers agree on).
    pub chain_id: Option<Hash>,
    /// Configuration (discovery limits, timeouts).
    pub config: NodeConfig,
    /// Give up after this long.
    pub timeout: Duration,
}

/// Connects, discovers, probes, and returns the plan.
pub async fn sync_plan(opts: PlanOptions) -> Result<SyncPlan, String> {
    let cfg = TransportConfig {
        max_frame_bytes: opts.config.max_frame_bytes,
        ..TransportConfig::default()
    };
    let endpoint = bind_endpoint("127.0.0.1:0".parse().expect("valid literal"), &cfg)?;
    let mut config = NodeConfig {
        role: Role::Listener,
        listen_addr: None,
        bootstrap_peers: opts.bootstrap_addrs.clone(),
        trusted_chain_id: opts.chain_id,
        plan_only: true,
        ..opts.config
    };
    config.sync.default_strategy = SyncMode::Snapshot;
    let key = Keypair::from_secret(rand::random());
    let node = Node::new(config, key, MemStore::new(), rand::random(), Timestamp(0))
        .map_err(|e| e.to_string())?;
    let (net_tx, net_rx) = mpsc::channel(1024);
    let transport = Transport::new(endpoint, net_tx, system_resolver(), cfg);
    let (mut lp, handle) = EventLoop::new(node, transport, net_rx, TokioClock::new());
    lp.until(|n| n.sync_plan().is_some());
    let timeout = opts.timeout;
    tokio::spawn(async move {
        tokio::time::sleep(timeout).await;
        handle.shutdown().await;
    });
    let (exit, node) = lp.run().await;
    match (exit, node.sync_plan()) {
        (_, Some(plan)) => Ok(plan.clone()),
        (Exit::Failed(why), None) => Err(why),
        (_, None) => {
            let s = node.status();
            let ready = s.peers.iter().filter(|p| p.ready).count();
            Err(format!(
                "no plan within {} s: {ready} peer(s) reachable, phase {}, chain {}; \
                 the network may not have an attested snapshot yet (one is built every \
                 snapshot_interval_rounds)",
                timeout.as_secs(),
                s.phase,
                s.chain_id.map_or("unknown".into(), |c| c.short())
            ))
        }
    }
}
