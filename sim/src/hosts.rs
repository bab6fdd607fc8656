//! The hosts of a run: genesis, node specs, how a node's host is started
//! (event loop, QUIC over the simulated socket, store), the relay and the
//! hostile listeners.

use crate::hostile::{tamper, Hostility};
use crate::links;
use crate::net::{LinkShape, SimRuntime, SimSocket};
use crate::observe::{lock, SharedRef};
use crate::store::{SharedDisk, SimStore};
use crate::Scenario;
use bluepods_core::crypto::Domain;
use bluepods_core::{
    ChainParams, Genesis, Hash, Keypair, Node, NodeConfig, Role, Timestamp, ValidatorInfo,
};
use bluepods_drivers::event_loop::{EventLoop, TokioClock};
use bluepods_drivers::transport::{endpoint_over, Resolver, Transport, TransportConfig};
use std::net::SocketAddr;
use std::sync::Arc;

/// Every node listens on this port of its own host.
pub(crate) const PORT: u16 = 9000;

/// The host name of `adversary`'s hostile listener.
pub(crate) const PEST: &str = "p0";

/// A node of the run: everything needed to (re)start its host.
#[derive(Clone)]
pub(crate) struct NodeSpec {
    pub(crate) name: String,
    pub(crate) key: Keypair,
    pub(crate) config: NodeConfig,
    pub(crate) genesis: Option<Genesis>,
    pub(crate) disk: SharedDisk,
    pub(crate) seed: u64,
    pub(crate) hostile: Option<Hostility>,
    /// Its uplink, if shaped (`slow-links`).
    pub(crate) shape: Option<LinkShape>,
}

pub(crate) fn resolver() -> Resolver {
    Arc::new(|addr: String| {
        Box::pin(async move {
            let (host, port) = addr
                .rsplit_once(':')
                .ok_or_else(|| std::io::Error::other(format!("{addr}: no port")))?;
            let port: u16 = port
                .parse()
                .map_err(|_| std::io::Error::other(format!("{addr}: bad port")))?;
            Ok(SocketAddr::new(turmoil::lookup(host), port))
        })
    })
}

/// Registers `spec` as a turmoil host; turmoil calls the closure again on
/// every restart, and the node comes back from its disk.
pub(crate) fn add_host(sim: &mut turmoil::Sim<'_>, spec: NodeSpec, shared: SharedRef) {
    let name = spec.name.clone();
    sim.host(name.as_str(), move || {
        let spec = spec.clone();
        let shared = shared.clone();
        async move {
            let mut store = SimStore::recover(&spec.disk);
            if let Some(g) = &spec.genesis {
                if bluepods_core::store::read_meta::<Genesis>(
                    &store,
                    bluepods_core::store::MetaKey::Genesis,
                )?
                .is_none()
                {
                    bluepods_core::init_chain(&mut store, g)?;
                }
            }
            let node = Node::new(
                spec.config.clone(),
                spec.key.clone(),
                store,
                spec.seed,
                Timestamp(0),
            )?;
            let cfg = TransportConfig::default();
            let socket = match spec.shape {
                Some(shape) => SimSocket::bind_shaped(PORT, shape).await?,
                None => SimSocket::bind(PORT).await?,
            };
            let mut quic_seed = [0u8; 32];
            quic_seed[..8].copy_from_slice(&spec.seed.to_le_bytes());
            let endpoint = endpoint_over(socket, Arc::new(SimRuntime), quic_seed, &cfg)?;
            let (net_tx, net_rx) = tokio::sync::mpsc::channel(4096);
            let mut transport = Transport::new(endpoint, net_tx, resolver(), cfg);
            if let Some(h) = spec.hostile {
                transport = transport.tamper_with(tamper(h, spec.key.clone()));
                if h == Hostility::Mute {
                    transport = transport.reading_no_answers();
                }
            }
            let (mut lp, handle) = EventLoop::new(node, transport, net_rx, TokioClock::new());
            lp.run_work_inline();
            let (obs, who, honest) = (shared.clone(), spec.name.clone(), spec.hostile.is_none());
            lp.observe(Box::new(move |e| lock(&obs).observe(&who, honest, e)));
            {
                let mut s = lock(&shared);
                s.handles.insert(spec.name.clone(), handle);
                if !honest {
                    s.hostile.insert(spec.name.clone());
                    s.hostile_keys.insert(spec.key.public());
                }
            }
            let (exit, _node) = lp.run().await;
            if spec.hostile.is_some() {
                // A hostile node may well be cut off and give up: its
                // business, not a violation.
                return Ok(());
            }
            Err(format!("{} stopped: {exit:?}", spec.name).into())
        }
    });
}

pub(crate) fn genesis(validators: usize, scenario: Scenario) -> (Genesis, Vec<Keypair>) {
    let slow = scenario == Scenario::SlowLinks;
    let keys: Vec<Keypair> = (0..validators)
        .map(|i| Keypair::from_label(&format!("sim-validator-{i}")))
        .collect();
    let genesis = Genesis {
        chain_name: "sim".into(),
        created_unix_ms: 0,
        params: ChainParams {
            // `byzantine`: epochs of 10 s, so the forkers keep anchor duty
            // while the joiners come (until epoch 2, when the first proofs
            // committed take it away).
            epoch_rounds: match scenario {
                Scenario::Byzantine => 100,
                Scenario::Rotation => crate::rotation::EPOCH_ROUNDS,
                _ => ChainParams::default().epoch_rounds,
            },
            inactive_epochs_max: if scenario == Scenario::Rotation {
                crate::rotation::INACTIVE_EPOCHS
            } else {
                ChainParams::default().inactive_epochs_max
            },
            snapshot_interval_rounds: if slow {
                links::SNAPSHOT_INTERVAL_ROUNDS
            } else {
                20
            },
            ..ChainParams::default()
        },
        validators: keys
            .iter()
            .enumerate()
            .map(|(i, k)| ValidatorInfo::new(k.public(), format!("v{i}:{PORT}")))
            .collect(),
        objects: Vec::new(),
        synthetic_objects: if slow { links::STATE_OBJECTS } else { 2_000 },
    };
    (genesis, keys)
}

pub(crate) fn node_seed(seed: u64, name: &str) -> u64 {
    let h = bluepods_core::crypto::hash(Domain::Vertex, name.as_bytes());
    seed ^ u64::from_le_bytes(h.0[..8].try_into().expect("8 bytes"))
}

/// The relay host `r0` between validators `a` and `b` (`relay.rs`).
pub(crate) fn add_relay(
    sim: &mut turmoil::Sim<'_>,
    seed: u64,
    a: String,
    b: String,
    findings: crate::relay::Findings,
) {
    sim.host("r0", move || {
        let (a, b, findings) = (a.clone(), b.clone(), findings.clone());
        async move {
            let cfg = TransportConfig::default();
            let socket = SimSocket::bind(PORT).await?;
            let mut quic_seed = [0u8; 32];
            quic_seed[..8].copy_from_slice(&node_seed(seed, "r0").to_le_bytes());
            let endpoint = endpoint_over(socket, Arc::new(SimRuntime), quic_seed, &cfg)?;
            let (a, b) = (format!("{a}:{PORT}"), format!("{b}:{PORT}"));
            crate::relay::relay(endpoint, resolver(), a, b, findings).await
        }
    });
}

/// A hostile listener `name` that dials `vias` and sends a status every
/// 200 ms (each one its cue to misbehave).
pub(crate) fn hostile_listener(
    seed: u64,
    name: &str,
    vias: &[String],
    chain_id: Hash,
    how: Hostility,
) -> NodeSpec {
    NodeSpec {
        seed: node_seed(seed, name),
        key: Keypair::from_label(match how {
            Hostility::Flooder => "sim-flooder",
            Hostility::Mute => "sim-mute",
            _ => "sim-pest",
        }),
        config: NodeConfig {
            role: Role::Listener,
            listen_addr: Some(format!("{name}:{PORT}")),
            bootstrap_peers: vias.iter().map(|v| format!("{v}:{PORT}")).collect(),
            trusted_chain_id: Some(chain_id),
            status_interval_ms: 200,
            ..NodeConfig::default()
        },
        name: name.to_string(),
        genesis: None,
        disk: SharedDisk::default(),
        hostile: Some(how),
        shape: None,
    }
}
