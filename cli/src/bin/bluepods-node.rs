//! `bluepods-node`: the BluePods node daemon.

use bluepods_core::{ChainParams, Hash, NodeConfig};
use bluepods_drivers::daemon::{self, ExitWhen, Mode, NodeOptions};
use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Run a BluePods node.
///
/// Three modes: `--bootstrap` starts a new network (creates the genesis on
/// first start, produces vertices, approves the validators that connect to
/// it); with `--bootstrap-addr` alone the node joins as a validator (syncs,
/// registers, then produces once members weighing a quorum approved it and
/// its epoch came); `--listener --bootstrap-addr` joins and only follows
/// the network.
/// A node restarted on its data directory resumes from its stored state.
#[derive(Parser, Debug)]
#[command(name = "bluepods-node", version, about, long_about)]
struct Args {
    /// Start a new network as its first validator.
    #[arg(long, conflicts_with = "listener")]
    bootstrap: bool,

    /// Follow the network without producing vertices.
    #[arg(long)]
    listener: bool,

    /// QUIC address of a node to join through (repeatable), e.g. 127.0.0.1:9000.
    #[arg(long = "bootstrap-addr", value_name = "HOST:PORT")]
    bootstrap_addr: Vec<String>,

    /// Data directory (created if missing; one node per directory).
    #[arg(long, value_name = "DIR", default_value = "./data")]
    data: PathBuf,

    /// QUIC listen address. `:PORT` means all interfaces. Default:
    /// 127.0.0.1:9000 with --bootstrap, otherwise 127.0.0.1 on a free port.
    #[arg(long, value_name = "ADDR")]
    quic: Option<String>,

    /// HTTP API listen address. `:PORT` means all interfaces. Default:
    /// 127.0.0.1:8080 with --bootstrap, otherwise no HTTP API.
    #[arg(long, value_name = "ADDR")]
    http: Option<String>,

    /// Chain id (genesis hash) to join. Without it a new node trusts the
    /// chain its peers agree on (up to three of them; with a single peer,
    /// trust on first use), with a warning, and stops with an error if two
    /// peers announce different chains.
    #[arg(long = "chain-id", value_name = "HEX")]
    chain_id: Option<String>,

    /// Minimum milliseconds between two vertices of this node.
    #[arg(long = "round-interval-ms", value_name = "MS")]
    round_interval_ms: Option<u64>,

    /// How a node with no state of its own joins: `range` fetches every
    /// round from genesis (a listener then logs every vertex), `snapshot`
    /// downloads an attested snapshot and replays what came after, `auto`
    /// (the default) takes a range while the network is younger than
    /// `strategy_switch_threshold` rounds and a snapshot past that.
    #[arg(long = "sync-mode", value_name = "MODE", value_parser = ["range", "snapshot", "auto"])]
    sync_mode: Option<String>,

    /// TOML file with node configuration overrides (see README).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Testing aid for a new network (with --bootstrap, first start only):
    /// seed the genesis with N deterministic synthetic objects of about 180
    /// bytes each, to make large states in seconds.
    #[arg(
        long = "genesis-objects",
        value_name = "N",
        default_value_t = 0,
        requires = "bootstrap"
    )]
    genesis_objects: u64,

    /// How the new network admits validators (with --bootstrap, first
    /// start only): `approval` (default) by members weighing a quorum, or
    /// `open`, every registration admitted — for devnets only, and the
    /// node says so loudly.
    #[arg(
        long,
        value_name = "ADMISSION",
        value_parser = ["approval", "open"],
        requires = "bootstrap"
    )]
    admission: Option<String>,

    /// As a validator, approve every validator candidate this node is
    /// connected to (how a devnet's bootstrap admits the nodes that join
    /// it). Default: true with --bootstrap, false otherwise.
    #[arg(long = "auto-approve", value_name = "BOOL")]
    auto_approve: Option<bool>,

    /// Trust the validator set of one epoch, as `EPOCH:SET_HASH` (the
    /// `checkpoint` that `bluepods validator list` or `GET /v1/validators`
    /// shows on a node you trust): epoch certificates are checked from
    /// there instead of from genesis, so keys of earlier sets, leaked or
    /// sold, cannot lead this node onto a fork. The node then joins from a
    /// snapshot (not with `--sync-mode range`).
    #[arg(long = "trust-checkpoint", value_name = "EPOCH:SET_HASH")]
    trust_checkpoint: Option<String>,

    /// QUIC congestion controller: loss-tolerant (default: CUBIC that
    /// ignores loss on an unqueued path below 2%), bbr, cubic or newreno.
    /// The README's link benchmark compares them under loss.
    #[arg(
        long = "quic-congestion",
        value_name = "CC",
        default_value = "loss-tolerant"
    )]
    quic_congestion: String,

    /// Join through --bootstrap-addr from an attested snapshot: fetch,
    /// verify, apply, print the restored state (round, manifest root, object
    /// count) and exit.
    #[arg(long = "sync-snapshot", conflicts_with_all = ["bootstrap", "sync_full"], requires = "bootstrap_addr")]
    sync_snapshot: bool,

    /// Like --sync-snapshot, then replay the gossip buffered meanwhile and
    /// follow until the node's own state is verified against a quorum's
    /// attestation at a later snapshot ("state verification: OK"), and exit.
    #[arg(
        long = "sync-full",
        conflicts_with = "bootstrap",
        requires = "bootstrap_addr"
    )]
    sync_full: bool,

    /// Print the committed state of a stopped node (the one in --data) as
    /// sorted text and exit: last committed round, manifest root, then one
    /// object per line. Two nodes at the same round print the same bytes.
    #[arg(long = "dump-state", conflicts_with_all = ["bootstrap", "listener", "bootstrap_addr"])]
    dump_state: bool,
}

/// Parses `ADDR`, accepting `:PORT` for all interfaces.
fn parse_addr(flag: &str, s: &str) -> Result<SocketAddr, String> {
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_string()
    };
    full.parse()
        .map_err(|_| format!("--{flag} {s}: expected IP:PORT or :PORT"))
}

fn options(args: Args) -> Result<NodeOptions, String> {
    let one_shot = args.sync_snapshot || args.sync_full;
    let mode = match (args.bootstrap, args.listener || one_shot) {
        (true, _) => Mode::Bootstrap,
        (false, true) => Mode::Listener,
        (false, false) => Mode::Validator,
    };
    if mode != Mode::Bootstrap && args.bootstrap_addr.is_empty() && !args.data.join("db").exists() {
        return Err(
            "--bootstrap-addr is required to join a network (or use --bootstrap to start one)"
                .into(),
        );
    }
    let quic = match &args.quic {
        Some(s) => parse_addr("quic", s)?,
        None if mode == Mode::Bootstrap => "127.0.0.1:9000".parse().expect("valid literal"),
        None => "127.0.0.1:0".parse().expect("valid literal"),
    };
    let http = match &args.http {
        Some(s) => Some(parse_addr("http", s)?),
        None if mode == Mode::Bootstrap => Some("127.0.0.1:8080".parse().expect("valid literal")),
        None => None,
    };
    let chain_id = match &args.chain_id {
        Some(s) => Some(Hash::from_hex(s).map_err(|e| format!("--chain-id: {e}"))?),
        None => None,
    };
    let mut config = match &args.config {
        Some(path) => bluepods_cli::config_file::read(path)?,
        None => NodeConfig::default(),
    };
    if let Some(ms) = args.round_interval_ms {
        config.round_interval_ms = ms;
    }
    match args.auto_approve {
        Some(on) => config.auto_approve = on,
        None if mode == Mode::Bootstrap => config.auto_approve = true,
        None => {}
    }
    if let Some(t) = &args.trust_checkpoint {
        config.sync.trust_checkpoint =
            Some(t.parse().map_err(|e| format!("--trust-checkpoint: {e}"))?);
        // Certificates guard snapshot joins; a range join replays from
        // genesis with the genesis keys' word for every set since.
        match args.sync_mode.as_deref() {
            Some("range") => {
                return Err(
                    "--trust-checkpoint joins from a snapshot: it cannot be used with \
                            --sync-mode range (which trusts every set from genesis on)"
                        .into(),
                )
            }
            _ => config.sync.default_strategy = bluepods_core::config::SyncMode::Snapshot,
        }
    }
    let mut params = ChainParams::default();
    if let Some(a) = &args.admission {
        params.admission = a.parse()?;
    }
    match args.sync_mode.as_deref() {
        Some("snapshot") => {
            config.sync.default_strategy = bluepods_core::config::SyncMode::Snapshot
        }
        Some("range") => config.sync.default_strategy = bluepods_core::config::SyncMode::Range,
        Some(_) => config.sync.default_strategy = bluepods_core::config::SyncMode::Auto,
        None => {}
    }
    if one_shot {
        config.sync.default_strategy = bluepods_core::config::SyncMode::Snapshot;
    }
    let exit_when = if args.sync_full {
        ExitWhen::StateVerified
    } else if args.sync_snapshot {
        ExitWhen::SnapshotApplied
    } else {
        ExitWhen::Never
    };
    Ok(NodeOptions {
        mode,
        data_dir: args.data,
        quic,
        http,
        bootstrap_addrs: args.bootstrap_addr,
        chain_id,
        config,
        params,
        genesis_objects: args.genesis_objects,
        exit_when,
        congestion: args
            .quic_congestion
            .parse()
            .map_err(|e| format!("--quic-congestion: {e}"))?,
    })
}

/// `--dump-state`: writes the stopped node's state to stdout.
fn dump_state(data: &std::path::Path) -> Result<(), String> {
    if !data.join("db").exists() {
        return Err(format!("{} holds no node data", data.display()));
    }
    let store = bluepods_drivers::store::FjallStore::open(data).map_err(|e| e.to_string())?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    bluepods_core::snapshot::dump_state(&store, &mut out).map_err(|e| e.to_string())?;
    std::io::Write::flush(&mut out).map_err(|e| e.to_string())
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if args.dump_state {
        return match dump_state(&args.data) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,quinn=warn,fjall=warn,lsm_tree=warn")
            }),
        )
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let opts = match options(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(daemon::run(opts)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
