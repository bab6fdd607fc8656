//! The TOML configuration file shared by `bluepods-node --config` and
//! `bluepods sync-plan --config`: `NodeConfig` fields at the top level,
//! sync settings under `[sync]`; anything unknown is an error.

use bluepods_core::NodeConfig;
use std::path::Path;

/// Reads and checks a configuration file.
pub fn read(path: &Path) -> Result<NodeConfig, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    toml::from_str::<NodeConfig>(&text).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bluepods_core::config::SyncMode;

    #[test]
    fn seed_names_and_sections_parse_and_unknown_fields_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(
            &path,
            "round_interval_ms = 100\n\
             max_upload_bandwidth = 5000000\n\
             [sync]\n\
             default_strategy = \"snapshot\"\n\
             strategy_switch_threshold = 800\n\
             max_behind_blocks = 6\n\
             block_batch_size = 32\n\
             max_sync_peers = 5\n\
             peer_timeout_ms = 3000\n\
             parallel_download_limit = 12\n\
             retry_attempts = 7\n\
             progress_report_interval_ms = 500\n",
        )
        .unwrap();
        let c = read(&path).unwrap();
        assert_eq!(c.round_interval_ms, 100);
        assert_eq!(c.max_upload_bandwidth, 5_000_000);
        assert_eq!(c.sync.default_strategy, SyncMode::Snapshot);
        assert_eq!(c.sync.strategy_switch_threshold, 800);
        assert_eq!(c.sync.max_behind_rounds, 6, "seed name max_behind_blocks");
        assert_eq!(c.sync.range_fetch_rounds, 32, "seed name block_batch_size");
        assert_eq!(c.sync.max_sync_peers, 5);
        assert_eq!(c.sync.peer_timeout_ms, 3_000);
        assert_eq!(c.sync.parallel_download_limit, 12);
        assert_eq!(c.sync.retry_attempts, 7);
        assert_eq!(c.sync.progress_report_interval_ms, 500);
        std::fs::write(&path, "[sync]\nmax_sync_peerz = 5\n").unwrap();
        let err = read(&path).unwrap_err();
        assert!(err.contains("max_sync_peerz"), "{err}");
    }
}
