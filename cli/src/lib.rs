//! Shared pieces of the `bluepods` command-line tools: the HTTP client, the
//! transaction builder, the load generator, the devnet demo and the
//! benchmark.

pub mod bench;
pub mod bench_certs;
pub mod client;
pub mod config_file;
pub mod demo;
pub mod flood;
pub mod http_client;
pub mod link;
pub mod load;
pub mod plan;
pub mod procs;
pub mod sim_cmd;
pub mod validator_cmd;
pub mod watch;

/// The runtime of the long-running tools (`link`, `flood`): two workers,
/// as many as this project's machines have cores.
pub fn two_core_runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))
}
