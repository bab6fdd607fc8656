//! Assembles a running node from options: data directory, key, genesis,
//! QUIC endpoint, event loop, HTTP API, logs and metrics. The
//! `bluepods-node` binary is a thin flag parser over [`run`].

use crate::event_loop::{EventLoop, Exit, TokioClock};
use crate::metrics::Metrics;
use crate::store::FjallStore;
use crate::transport::{bind_endpoint, system_resolver, Transport, TransportConfig};
use crate::{http, keys, logs};
use bluepods_core::store::{read_meta, MetaKey};
use bluepods_core::{
    init_chain, ChainParams, Genesis, Hash, Node, NodeConfig, Role, ValidatorInfo,
};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc;

/// How the node starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// First node: creates the genesis (on first start) and produces.
    Bootstrap,
    /// Joins through bootstrap peers and produces once in the set.
    Validator,
    /// Joins through bootstrap peers and only follows.
    Listener,
}

/// Everything `run` needs.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    /// Start mode.
    pub mode: Mode,
    /// Data directory.
    pub data_dir: PathBuf,
    /// QUIC bind address.
    pub quic: SocketAddr,
    /// HTTP bind address, if any.
    pub http: Option<SocketAddr>,
    /// Peers to dial.
    pub bootstrap_addrs: Vec<String>,
    /// Chain to pin.
    pub chain_id: Option<Hash>,
    /// Node configuration (role, addresses and peers are filled in by `run`).
    pub config: NodeConfig,
    /// Chain parameters for a new genesis (bootstrap only).
    pub params: ChainParams,
    /// Synthetic objects in a new genesis (bootstrap only; testing aid).
    pub genesis_objects: u64,
    /// When to stop on our own.
    pub exit_when: ExitWhen,
    /// QUIC congestion controller.
    pub congestion: crate::transport::Congestion,
}

/// One-shot sync modes stop by themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitWhen {
    /// Run until stopped.
    Never,
    /// `--sync-snapshot`: once a snapshot is verified and applied.
    SnapshotApplied,
    /// `--sync-full`: once the state after replay is verified against a
    /// quorum's attestation at a later snapshot round.
    StateVerified,
}

/// The address other nodes should dial: the bound address, with an
/// unspecified IP replaced by loopback.
fn advertised(bound: SocketAddr) -> String {
    let ip = if bound.ip().is_unspecified() {
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        bound.ip()
    };
    SocketAddr::new(ip, bound.port()).to_string()
}

/// Runs a node until Ctrl-C, SIGTERM, or a fatal error.
pub async fn run(opts: NodeOptions) -> Result<(), String> {
    let mut store = FjallStore::open(&opts.data_dir).map_err(|e| e.to_string())?;
    let key_path = opts.data_dir.join("node.key");
    let (key, created) = keys::read_or_create_key(&key_path)?;
    if created {
        tracing::info!(
            "generated node key {} in {}",
            key.public(),
            key_path.display()
        );
    }
    let cfg = TransportConfig {
        max_frame_bytes: opts.config.max_frame_bytes,
        max_upload_bytes_per_sec: opts.config.max_upload_bandwidth,
        congestion: opts.congestion,
        dial_timeout_ms: opts.config.sync.connection_timeout_ms,
        ..TransportConfig::default()
    };
    let endpoint = bind_endpoint(opts.quic, &cfg)?;
    let bound = endpoint.local_addr().map_err(|e| e.to_string())?;
    let listen_addr = advertised(bound);
    tracing::info!("[NET] QUIC listening on {bound} (advertised as {listen_addr})");

    let existing: Option<Genesis> =
        read_meta(&store, MetaKey::Genesis).map_err(|e| e.to_string())?;
    match (&existing, opts.mode) {
        (Some(g), _) => {
            let chain_id = g.chain_id();
            if opts.chain_id.is_some_and(|c| c != chain_id) {
                return Err(format!(
                    "{} holds chain {chain_id}, but --chain-id asks for {}",
                    opts.data_dir.display(),
                    opts.chain_id.expect("checked")
                ));
            }
            tracing::info!(
                "[SYNC] resuming chain {chain_id} from {}",
                opts.data_dir.display()
            );
        }
        (None, Mode::Bootstrap) => {
            let mut genesis = new_genesis(&key, &listen_addr, opts.params.clone());
            genesis.synthetic_objects = opts.genesis_objects;
            if opts.genesis_objects > 0 {
                tracing::info!(
                    "[VALIDATOR] writing {} synthetic genesis objects",
                    opts.genesis_objects
                );
            }
            init_chain(&mut store, &genesis).map_err(|e| e.to_string())?;
            let path = opts.data_dir.join("genesis.json");
            let json = serde_json::to_string_pretty(&genesis).map_err(|e| e.to_string())?;
            std::fs::write(&path, json)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            tracing::info!(
                "[VALIDATOR] created genesis chain_id={} ({})",
                genesis.chain_id(),
                path.display()
            );
        }
        (None, _) if opts.bootstrap_addrs.is_empty() => {
            return Err(
                "--bootstrap-addr is required to join a network (or use --bootstrap to start one)"
                    .into(),
            );
        }
        (None, _) => {}
    }

    let role = if opts.mode == Mode::Listener {
        Role::Listener
    } else {
        Role::Validator
    };
    let mut config = NodeConfig {
        role,
        listen_addr: Some(listen_addr),
        bootstrap_peers: opts.bootstrap_addrs.clone(),
        trusted_chain_id: opts.chain_id,
        ..opts.config.clone()
    };
    // A one-shot sync gives up after `retry_attempts` unanswered requests
    // and exits with the reason; a daemon backs off and tries again.
    config.sync.give_up_after_retries = opts.exit_when != ExitWhen::Never;
    let clock = TokioClock::new();
    let seed: u64 = rand::random();
    let config_auto_approve = config.auto_approve;
    let node = Node::new(config, key, store, seed, bluepods_core::Timestamp(0))
        .map_err(|e| e.to_string())?;
    if opts.exit_when != ExitWhen::Never && node.has_own_state() {
        // A one-shot sync on a directory that already holds a synced state
        // has nothing to do: say so rather than follow the network forever.
        let s = node.status();
        println!(
            "already synced: last_committed_round {}",
            s.last_committed_round.map_or("-".into(), |r| r.to_string())
        );
        if let Some((round, root)) = s.snapshot {
            println!("snapshot_round {round}");
            println!("manifest_root {root}");
        }
        return Ok(());
    }
    if let Some(c) = node.chain_id() {
        tracing::info!("[SYNC] chain id {c}");
    }
    if node.status().admission == bluepods_core::params::Admission::Open.name() {
        logs::warn_open_admission();
    }
    if config_auto_approve {
        tracing::warn!(
            "[VALIDATOR] auto-approve is on: as a member this node approves every validator \
             candidate connected to it (a devnet's bootstrap does; pass --auto-approve false \
             on a network meant to last)"
        );
    }
    let (net_tx, net_rx) = mpsc::channel(4096);
    let transport = Transport::new(endpoint, net_tx, system_resolver(), cfg);
    let (mut lp, handle) = EventLoop::new(node, transport, net_rx, clock);
    let metrics = Arc::new(Metrics::new());
    let m = metrics.clone();
    let bootstrap = opts.bootstrap_addrs.clone();
    lp.observe(Box::new(move |e| {
        logs::log_event(role, &bootstrap, e);
        m.observe(e);
    }));

    if let Some(addr) = opts.http {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot bind HTTP on {addr}: {e}"))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        tracing::info!("[HTTP] API listening on http://{local}");
        tokio::spawn(http::serve(listener, http::router(handle.clone(), metrics)));
    }

    let h = handle.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        h.shutdown().await;
    });

    match opts.exit_when {
        ExitWhen::Never => {}
        ExitWhen::SnapshotApplied => lp.until(|n| n.applied_snapshot().is_some()),
        ExitWhen::StateVerified => lp.until(|n| n.state_verification().is_some()),
    }
    if opts.exit_when != ExitWhen::Never {
        // A one-shot sync with nobody to sync from fails, with the reason;
        // a daemon keeps backing off and logging each attempt.
        lp.give_up_when(|n| n.unreachable_bootstraps());
    }
    let (exit, node) = lp.run().await;
    match exit {
        Exit::Shutdown => Ok(()),
        Exit::Done => report_sync(&node, opts.exit_when),
        Exit::Failed(why) => Err(why),
    }
}

/// What a one-shot sync prints on stdout when it is done.
fn report_sync<S: bluepods_core::Store>(node: &Node<S>, mode: ExitWhen) -> Result<(), String> {
    let s = node.status();
    let applied = node.applied_snapshot().ok_or("no snapshot was applied")?;
    let (round, root, objects) = (applied.round, applied.root, applied.objects);
    println!("snapshot_round {round}");
    println!("manifest_root {root}");
    println!("objects {objects}");
    println!("tx_outcomes {}", applied.outcomes);
    let committed = s.last_committed_round.map_or("-".into(), |r| r.to_string());
    println!("last_committed_round {committed}");
    if mode == ExitWhen::StateVerified {
        match node.state_verification() {
            Some((r, true)) => {
                println!("state verification: OK (round {r})");
                println!(
                    "current round: {}",
                    s.highest_round.map_or("-".into(), |r| r.to_string())
                );
            }
            Some((r, false)) => return Err(format!("state verification FAILED at round {r}")),
            None => return Err("stopped before the state could be verified".into()),
        }
    }
    Ok(())
}

fn new_genesis(key: &bluepods_core::Keypair, addr: &str, params: ChainParams) -> Genesis {
    // Wall-clock time is informational only (it makes chain ids of separate
    // devnets differ); nothing in the protocol reads it.
    #[allow(clippy::disallowed_methods)]
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Genesis {
        chain_name: "bluepods-devnet".into(),
        created_unix_ms: now,
        params,
        validators: vec![ValidatorInfo::new(key.public(), addr)],
        objects: Vec::new(),
        synthetic_objects: 0,
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
