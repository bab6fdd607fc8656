//! `bluepods`: client, devnet demo, load generator and benchmark.

use bluepods_cli::client::{Client, TxBuilder};
use bluepods_cli::{bench, demo, load};
use bluepods_core::tx::{Operation, TxStatus};
use bluepods_core::{Hash, Keypair, ObjectId, PublicKey};
use bluepods_drivers::keys;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// BluePods command-line client.
#[derive(Parser, Debug)]
#[command(name = "bluepods", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Start a local devnet (bootstrap + listener as real processes), run a
    /// load for a while, show what the listener saw, stop everything.
    Demo {
        /// Seconds of load.
        #[arg(long, default_value_t = 20)]
        duration: u64,
        /// Transactions per second.
        #[arg(long, default_value_t = 20)]
        tps: u32,
        /// Directory for data and logs (default: a fresh temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Keep the directory afterwards.
        #[arg(long)]
        keep: bool,
    },
    /// Build, sign and submit a transaction.
    #[command(subcommand)]
    Tx(TxCmd),
    /// The validator set.
    #[command(subcommand)]
    Validator(ValidatorCmd),
    /// Show a node's status.
    Status {
        /// The node's HTTP API address.
        #[arg(long, default_value = "127.0.0.1:8080")]
        http: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Keep a progress line up to date (phase, snapshot download bytes
        /// and chunks, rate, ETA, rounds, peers) until Ctrl-C or until the
        /// node stops answering.
        #[arg(long, conflicts_with = "json")]
        watch: bool,
        /// Refresh interval for --watch.
        #[arg(long, default_value_t = 500)]
        interval_ms: u64,
    },
    /// Show an object.
    Object {
        /// The node's HTTP API address.
        #[arg(long, default_value = "127.0.0.1:8080")]
        http: String,
        /// Object id (64 hex characters).
        id: String,
    },
    /// Submit a steady stream of valid transactions and report what happened.
    Load {
        /// The node's HTTP API address.
        #[arg(long, default_value = "127.0.0.1:8080")]
        http: String,
        /// Transactions per second.
        #[arg(long, default_value_t = 50)]
        tps: u32,
        /// Seconds to submit.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Seconds to wait afterwards for commits.
        #[arg(long, default_value_t = 15)]
        settle: u64,
        /// Sender key file (default: a fresh key in memory).
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Run hostile peers against a node (half flood range requests, half
    /// claim far rounds, withhold answers and resend vertices), to measure
    /// what a flood costs it (`scripts/bench-flood.sh`). Banned peers come
    /// back with fresh keys.
    Flood {
        /// The target's QUIC address.
        #[arg(long, value_name = "HOST:PORT")]
        target: String,
        /// Hostile peers at once.
        #[arg(long, default_value_t = 64)]
        peers: usize,
        /// Seconds of flood.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// Measure vertices/s and transactions/s through validation, commit and
    /// execution; then the size of an epoch certificate and the time to
    /// check a chain of them from genesis.
    Bench {
        /// Vertices to process.
        #[arg(long, default_value_t = 500)]
        vertices: u64,
        /// Transactions per vertex.
        #[arg(long, default_value_t = 200)]
        txs_per_vertex: u64,
        /// Epochs in the certificate chain checked (0: skip).
        #[arg(long, default_value_t = 1000)]
        cert_epochs: u64,
    },
    /// Before joining: connect to the network, choose the snapshot a
    /// joiner would take (attested by a quorum), and print its round, size,
    /// object count, the peers serving it, a free-disk check and an
    /// estimated download time. Downloads one verified probe chunk per
    /// peer, stores nothing. Exits non-zero if the disk is too small.
    SyncPlan {
        /// QUIC address of a node of the network (repeatable).
        #[arg(long = "bootstrap-addr", value_name = "HOST:PORT", required = true)]
        bootstrap_addr: Vec<String>,
        /// Chain id to expect (without it, the chain the peers agree on is
        /// trusted, with a warning).
        #[arg(long = "chain-id", value_name = "HEX")]
        chain_id: Option<String>,
        /// Data directory the node would use (for the free-disk check).
        #[arg(long, value_name = "DIR", default_value = "./data")]
        data: PathBuf,
        /// TOML node configuration (same format as `bluepods-node --config`).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 30)]
        timeout_secs: u64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run the deterministic simulator: nodes on a simulated network
    /// (turmoil) running the production event loop and QUIC transport,
    /// with a transaction load, joins and faults from the seed, then a heal
    /// phase and the invariant checks. The same seed gives the same trace.
    /// Exits non-zero if any run breaks an invariant.
    Sim {
        /// steady, join, partition, crash, hostile, slow-links, adversary or
        /// byzantine (default: all, for a sweep). byzantine makes f of the
        /// validators fork; try --validators 7 or 10.
        #[arg(long)]
        scenario: Option<String>,
        /// One seed.
        #[arg(long, conflicts_with = "seeds")]
        seed: Option<u64>,
        /// A sweep over seeds A..B (inclusive), with a summary.
        #[arg(long, value_name = "A..B")]
        seeds: Option<String>,
        /// Nodes in all (validators plus nodes that join during the run).
        #[arg(long, default_value_t = 7)]
        nodes: usize,
        /// Of which genesis validators.
        #[arg(long, default_value_t = 4)]
        validators: usize,
        /// Simulated seconds of load and faults.
        #[arg(long, default_value_t = 20)]
        duration: u64,
        /// Simulated seconds of heal before the checks [default: 25; 50 for
        /// slow-links, whose far joiners need the time their links take].
        #[arg(long)]
        heal: Option<u64>,
        /// Run each seed twice and require the same trace hash.
        #[arg(long)]
        twice: bool,
        /// Print every trace row (single run).
        #[arg(long)]
        trace: bool,
        /// `adversary` only: run the same seed with every node honest (the
        /// baseline the joiners' time to live is compared with).
        #[arg(long)]
        calm: bool,
    },
    /// Emulate a network link on loopback: a UDP relay adding one-way
    /// delay, random loss and a rate cap (behind a bounded router queue)
    /// between a joiner and a server, to measure sync as on a real link
    /// (`scripts/bench-link.sh`). Dial `--listen` instead of the server.
    Link {
        /// Address joiners dial.
        #[arg(long)]
        listen: std::net::SocketAddr,
        /// The server's QUIC address.
        #[arg(long)]
        to: std::net::SocketAddr,
        /// One-way delay per direction, ms (RTT = 2 x this).
        #[arg(long, default_value_t = 0)]
        delay_ms: u64,
        /// Share of datagrams dropped at random, 0.0 to 1.0.
        #[arg(long, default_value_t = 0.0)]
        loss: f64,
        /// Rate cap per direction: 20mbit, 1gbit, … or 0 for none.
        #[arg(long, default_value = "0")]
        rate: String,
        /// Longest a datagram waits behind the rate cap before it is
        /// dropped (the router's buffer), ms.
        #[arg(long, default_value_t = 100)]
        queue_ms: u64,
        /// Seed of the loss pattern.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Write the counters here as JSON, every second and on exit.
        #[arg(long)]
        stats: Option<PathBuf>,
    },
    /// Generate a key file.
    Keygen {
        /// Where to write it (refuses to overwrite).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Args, Debug)]
struct TxCommon {
    /// The node's HTTP API address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    http: String,
    /// Sender key file (created on first use).
    #[arg(long)]
    key: PathBuf,
    /// Rounds until the transaction expires.
    #[arg(long, default_value_t = 1000)]
    ttl_rounds: u64,
    /// Wait until it is committed or failed.
    #[arg(long)]
    wait: bool,
}

#[derive(Subcommand, Debug)]
enum ValidatorCmd {
    /// List the set in force at the node's highest round: epoch, quorum,
    /// members with their weight, anchor duty and address, registrations
    /// committed for later epochs, candidates waiting for approval, members
    /// leaving, validators off anchor duty.
    List {
        /// The node's HTTP API address.
        #[arg(long, default_value = "127.0.0.1:8080")]
        http: String,
        /// Print JSON (`GET /v1/validators`).
        #[arg(long)]
        json: bool,
    },
    /// Ask to join the set: a RegisterValidator transaction from the key
    /// (the key of the node that is to validate, e.g. DATA/node.key),
    /// naming the QUIC address validators dial. Under approval admission
    /// (the default) the key becomes a candidate, admitted once members
    /// weighing a quorum approve it (`validator approve`; a devnet's
    /// bootstrap approves the nodes connected to it); under open admission
    /// it is admitted at once. Either way it joins two epochs after the
    /// admitting commit. (A validator-mode node registers by itself once it
    /// is live.)
    Register {
        #[command(flatten)]
        common: TxCommon,
        /// The QUIC address (HOST:PORT) the node accepts connections on.
        /// It cannot be changed later, and a key that left cannot register
        /// again: check it.
        #[arg(long)]
        address: String,
    },
    /// Approve a candidate: an ApproveValidator transaction from a
    /// member's key. A candidate whose approvals weigh a quorum of the set
    /// joins two epochs after the approval that completes them. Exits 0
    /// without sending anything when the chain's admission is open.
    Approve {
        #[command(flatten)]
        common: TxCommon,
        /// The candidate's public key, 64 hex characters (`bluepods
        /// validator list` shows candidates).
        #[arg(long, value_name = "PUBKEY_HEX")]
        candidate: String,
    },
    /// Leave the set: a LeaveValidator transaction from the member's key.
    /// It is out from the second epoch after the commit; the last member
    /// cannot leave. Keep the node running until then.
    Leave {
        #[command(flatten)]
        common: TxCommon,
    },
}

#[derive(Subcommand, Debug)]
enum TxCmd {
    /// Create an object owned by the sender.
    Create {
        #[command(flatten)]
        common: TxCommon,
        /// Payload (UTF-8 text).
        #[arg(long)]
        data: String,
    },
    /// Replace an object's payload.
    Update {
        #[command(flatten)]
        common: TxCommon,
        /// Object id.
        #[arg(long)]
        id: String,
        /// Expected current version.
        #[arg(long)]
        version: u64,
        /// New payload (UTF-8 text).
        #[arg(long)]
        data: String,
    },
    /// Give an object to another key.
    Transfer {
        #[command(flatten)]
        common: TxCommon,
        /// Object id.
        #[arg(long)]
        id: String,
        /// Expected current version.
        #[arg(long)]
        version: u64,
        /// New owner's public key (64 hex characters).
        #[arg(long)]
        to: String,
    },
    /// Delete an object.
    Delete {
        #[command(flatten)]
        common: TxCommon,
        /// Object id.
        #[arg(long)]
        id: String,
        /// Expected current version.
        #[arg(long)]
        version: u64,
    },
    /// Show a transaction's status.
    Status {
        /// The node's HTTP API address.
        #[arg(long, default_value = "127.0.0.1:8080")]
        http: String,
        /// Transaction hash.
        hash: String,
    },
}

fn object_id(s: &str) -> Result<ObjectId, String> {
    ObjectId::from_hex(s).map_err(|e| format!("--id: {e}"))
}

fn load_key(path: &std::path::Path) -> Result<Keypair, String> {
    let (key, created) = keys::read_or_create_key(path)?;
    if created {
        eprintln!(
            "created key {} (public key {})",
            path.display(),
            key.public()
        );
    }
    Ok(key)
}

fn submit(common: &TxCommon, ops: Vec<Operation>) -> Result<(), String> {
    let client = Client::new(&common.http);
    let builder = TxBuilder::from_node(&client, load_key(&common.key)?, common.ttl_rounds)?;
    let tx = builder.build(ops.clone());
    let hash = client.submit(&tx).map_err(|e| e.to_string())?;
    println!("submitted {hash}");
    for (i, op) in ops.iter().enumerate() {
        if let Operation::Create { .. } = op {
            println!(
                "creates object {}",
                bluepods_core::tx::created_object_id(&hash, i as u32)
            );
        }
    }
    if common.wait {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match client.tx_status(&hash).map_err(|e| e.to_string())? {
                s @ (TxStatus::Committed { .. } | TxStatus::Failed { .. }) => {
                    println!("{}", serde_json::to_string(&s).unwrap_or_default());
                    return match s {
                        TxStatus::Failed { reason, .. } => {
                            Err(format!("transaction failed: {reason}"))
                        }
                        _ => Ok(()),
                    };
                }
                _ if Instant::now() > deadline => return Err("not committed within 60s".into()),
                _ => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }
    Ok(())
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.cmd {
        Cmd::Demo {
            duration,
            tps,
            dir,
            keep,
        } => demo::run(&demo::DemoOptions {
            duration: Duration::from_secs(duration),
            tps,
            dir,
            keep,
        }),
        Cmd::Tx(TxCmd::Create { common, data }) => submit(
            &common,
            vec![Operation::Create {
                data: data.into_bytes(),
            }],
        ),
        Cmd::Tx(TxCmd::Update {
            common,
            id,
            version,
            data,
        }) => submit(
            &common,
            vec![Operation::Update {
                id: object_id(&id)?,
                version,
                data: data.into_bytes(),
            }],
        ),
        Cmd::Tx(TxCmd::Transfer {
            common,
            id,
            version,
            to,
        }) => {
            let new_owner = PublicKey::from_hex(&to).map_err(|e| format!("--to: {e}"))?;
            submit(
                &common,
                vec![Operation::Transfer {
                    id: object_id(&id)?,
                    version,
                    new_owner,
                }],
            )
        }
        Cmd::Tx(TxCmd::Delete {
            common,
            id,
            version,
        }) => submit(
            &common,
            vec![Operation::Delete {
                id: object_id(&id)?,
                version,
            }],
        ),
        Cmd::Tx(TxCmd::Status { http, hash }) => {
            let hash = Hash::from_hex(&hash).map_err(|e| format!("hash: {e}"))?;
            let st = Client::new(&http)
                .tx_status(&hash)
                .map_err(|e| e.to_string())?;
            println!("{}", serde_json::to_string_pretty(&st).unwrap_or_default());
            Ok(())
        }
        Cmd::Status {
            watch: true,
            http,
            interval_ms,
            ..
        } => {
            use std::io::{IsTerminal, Write};
            let client = Client::new(&http);
            let tty = std::io::stdout().is_terminal();
            let mut seen = false;
            loop {
                let s = match client.status() {
                    Ok(s) => s,
                    // Before the first answer the node may still be starting.
                    Err(e) if seen => return Err(e.to_string()),
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(interval_ms.max(50)));
                        continue;
                    }
                };
                seen = true;
                let line = bluepods_cli::watch::progress_line(&s);
                if tty {
                    print!("\r\x1b[2K{line}");
                    let _ = std::io::stdout().flush();
                } else {
                    println!("{line}");
                }
                std::thread::sleep(Duration::from_millis(interval_ms.max(50)));
            }
        }
        Cmd::Validator(ValidatorCmd::Register { common, address }) => {
            bluepods_cli::validator_cmd::check_address(&address)?;
            submit(&common, vec![Operation::RegisterValidator { address }])
        }
        Cmd::Validator(ValidatorCmd::Approve { common, candidate }) => {
            let candidate = bluepods_core::PublicKey::from_hex(&candidate)
                .map_err(|e| format!("--candidate: {e}"))?;
            let v = Client::new(&common.http)
                .validators()
                .map_err(|e| e.to_string())?;
            if v.admission == "open" {
                println!("admission is open on this chain: every registration is admitted, nothing to approve");
                return Ok(());
            }
            submit(&common, vec![Operation::ApproveValidator { candidate }])
        }
        Cmd::Validator(ValidatorCmd::Leave { common }) => {
            submit(&common, vec![Operation::LeaveValidator])
        }
        Cmd::Validator(ValidatorCmd::List { http, json }) => {
            let v = Client::new(&http).validators().map_err(|e| e.to_string())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                print!("{}", bluepods_cli::validator_cmd::render(&v));
            }
            Ok(())
        }
        Cmd::Status { http, json, .. } => {
            let s = Client::new(&http).status().map_err(|e| e.to_string())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&s).unwrap_or_default());
            } else {
                let r =
                    |r: Option<bluepods_core::Round>| r.map_or("-".to_string(), |r| r.to_string());
                println!("role            {}", s.role);
                println!("phase           {}", s.phase);
                println!(
                    "chain id        {}",
                    s.chain_id.map_or("-".into(), |c| c.to_string())
                );
                println!("node key        {}", s.node_key);
                println!("highest round   {}", r(s.highest_round));
                println!("committed round {}", r(s.last_committed_round));
                println!("validators      {} (member: {})", s.validators, s.is_member);
                println!("executed txs    {}", s.executed_txs);
                println!("mempool         {}", s.mempool_txs);
                println!(
                    "peers           {}",
                    s.peers.iter().filter(|p| p.ready).count()
                );
                for p in &s.peers {
                    println!(
                        "  {:<22} {:<9} ready={} round={}",
                        p.addr,
                        p.role,
                        p.ready,
                        r(p.highest_round)
                    );
                }
            }
            Ok(())
        }
        Cmd::Object { http, id } => {
            match Client::new(&http)
                .object(&object_id(&id)?)
                .map_err(|e| e.to_string())?
            {
                Some(o) => println!("{}", serde_json::to_string_pretty(&o).unwrap_or_default()),
                None => return Err(format!("no object {id}")),
            }
            Ok(())
        }
        Cmd::Load {
            http,
            tps,
            duration,
            settle,
            key,
        } => {
            let key = match key {
                Some(p) => load_key(&p)?,
                None => Keypair::from_secret(rand::random()),
            };
            let opts = load::LoadOptions {
                tps,
                duration: Duration::from_secs(duration),
                settle: Duration::from_secs(settle),
                ttl_rounds: 1_000,
            };
            let client = Client::new(&http);
            let report = load::run(&client, key, &opts, |r| {
                println!(
                    "[LOAD] t={}s submitted={} accepted={}",
                    r.elapsed.as_secs(),
                    r.submitted,
                    r.accepted.len()
                );
            })?;
            println!("[LOAD] {report}");
            Ok(())
        }
        Cmd::Flood {
            target,
            peers,
            seconds,
        } => bluepods_cli::flood::main(&bluepods_cli::flood::FloodArgs {
            target,
            peers,
            seconds,
        }),
        Cmd::Bench {
            vertices,
            txs_per_vertex,
            cert_epochs,
        } => {
            for r in bench::run(bench::BenchOptions {
                vertices,
                txs_per_vertex,
            })? {
                println!("[BENCH] {r}");
            }
            if cert_epochs > 0 {
                for validators in [4, 10, 64] {
                    println!(
                        "[BENCH] {}",
                        bluepods_cli::bench_certs::run(cert_epochs, validators)
                    );
                }
            }
            Ok(())
        }
        Cmd::SyncPlan {
            bootstrap_addr,
            chain_id,
            data,
            config,
            timeout_secs,
            json,
        } => {
            let chain_id = match chain_id {
                Some(s) => Some(Hash::from_hex(&s).map_err(|e| format!("--chain-id: {e}"))?),
                None => None,
            };
            let config = match config {
                Some(path) => bluepods_cli::config_file::read(&path)?,
                None => bluepods_core::NodeConfig::default(),
            };
            let opts = bluepods_drivers::plan::PlanOptions {
                bootstrap_addrs: bootstrap_addr,
                chain_id,
                config,
                timeout: Duration::from_secs(timeout_secs),
            };
            bluepods_cli::plan::run(opts, &data, json)
        }
        Cmd::Sim {
            scenario,
            seed,
            seeds,
            nodes,
            validators,
            duration,
            heal,
            twice,
            trace,
            calm,
        } => {
            let scenarios = match scenario {
                Some(s) => vec![s.parse()?],
                None => bluepods_sim::Scenario::ALL.to_vec(),
            };
            let seeds = match (seed, seeds) {
                (Some(s), _) => (s, s),
                (None, Some(s)) => bluepods_cli::sim_cmd::parse_seeds(&s)?,
                (None, None) => (1, 1),
            };
            bluepods_cli::sim_cmd::main(&bluepods_cli::sim_cmd::SimArgs {
                scenarios,
                seeds,
                nodes,
                validators,
                duration_s: duration,
                heal_s: heal,
                twice,
                trace,
                calm,
            })
        }
        Cmd::Link {
            listen,
            to,
            delay_ms,
            loss,
            rate,
            queue_ms,
            seed,
            stats,
        } => {
            if !(0.0..=1.0).contains(&loss) {
                return Err(format!("--loss {loss}: want a share between 0 and 1"));
            }
            bluepods_cli::link::main(&bluepods_cli::link::LinkArgs {
                listen,
                server: to,
                settings: bluepods_cli::link::LinkSettings {
                    delay_ms,
                    loss,
                    rate_bps: bluepods_cli::link::parse_rate(&rate)?,
                    queue_ms,
                },
                seed,
                stats_file: stats,
            })
        }
        Cmd::Keygen { out } => {
            let key = keys::create_key(&out)?;
            println!("{}", key.public());
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
