//! `bluepods status --watch`: one refreshing line of sync progress.

use bluepods_core::NodeStatus;

pub(crate) fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// A text progress bar of `width` cells for `done` out of `total`.
fn bar(done: u64, total: u64, width: usize) -> String {
    let filled = (done.min(total) * width as u64)
        .checked_div(total)
        .map_or(width, |f| f as usize);
    format!("[{}{}]", "#".repeat(filled), ".".repeat(width - filled))
}

/// The status line: phase, download progress (bytes and chunks, rate, ETA)
/// while a snapshot downloads, rounds, peers.
pub fn progress_line(s: &NodeStatus) -> String {
    let round = |r: Option<bluepods_core::Round>| r.map_or("-".to_string(), |r| r.to_string());
    let peers = s.peers.iter().filter(|p| p.ready).count();
    let mut line = format!("{:<14}", s.phase.to_string());
    if let Some(d) = &s.download {
        let percent = d.bytes_done * 100 / d.bytes_total.max(1);
        let progress = bluepods_core::progress::Progress {
            done: d.bytes_done,
            total: d.bytes_total,
            elapsed_ms: d.elapsed_ms,
        };
        let rate = progress.per_sec();
        let eta_s = progress.eta_ms() as f64 / 1000.0;
        line.push_str(&format!(
            " snapshot r={} {} {percent:>3}% ({} / {}) chunks {}/{} {}/s ETA {eta_s:.1}s from {} peer(s) |",
            d.round,
            bar(d.bytes_done, d.bytes_total, 20),
            mb(d.bytes_done),
            mb(d.bytes_total),
            d.chunks_done,
            d.chunks_total,
            mb(rate),
            d.peers
        ));
    }
    if let Some(c) = &s.catch_up {
        let done = c.through.0.saturating_sub(c.from.0);
        let total = c.target.0.saturating_sub(c.from.0);
        line.push_str(&format!(
            " rounds {} {done}/{total} (to {}) |",
            bar(done, total, 20),
            c.target
        ));
    }
    if s.buffer_vertices > 0 {
        line.push_str(&format!(
            " buffered {} vertices ({}) |",
            s.buffer_vertices,
            mb(s.buffer_bytes as u64)
        ));
    }
    line.push_str(&format!(
        " round {} committed {} | peers {peers}",
        round(s.highest_round),
        round(s.last_committed_round)
    ));
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use bluepods_core::node::DownloadStatus;
    use bluepods_core::{PublicKey, Role, Round, SyncPhase};

    fn status() -> NodeStatus {
        NodeStatus {
            role: Role::Listener,
            phase: SyncPhase::SnapshotFetch,
            node_key: PublicKey([0; 32]),
            chain_id: None,
            highest_round: Some(Round(12)),
            last_committed_round: None,
            own_last_round: None,
            validators: 1,
            is_member: false,
            committed_vertices: 0,
            executed_txs: 0,
            mempool_txs: 0,
            pending_vertices: 0,
            dag_vertices: 0,
            peers: vec![],
            bans: vec![],
            unreachable: vec![],
            snapshot: None,
            download: Some(DownloadStatus {
                round: Round(40),
                chunks_done: 5,
                chunks_total: 10,
                bytes_done: 2_300_000,
                bytes_total: 4_600_000,
                elapsed_ms: 1_000,
                peers: 2,
            }),
            halted: None,
            catch_up: None,
            admission: "approval".into(),
            warnings: Vec::new(),
            equivocations_total: 0,
            equivocations: Vec::new(),
            off_anchor_duty: Vec::new(),
            buffer_vertices: 0,
            buffer_bytes: 0,
        }
    }

    #[test]
    fn the_line_shows_percent_sizes_chunks_rate_and_eta() {
        let line = progress_line(&status());
        assert!(line.starts_with("snapshot_fetch"), "{line}");
        assert!(
            line.contains(" 50% (2.3 MB / 4.6 MB) chunks 5/10 2.3 MB/s ETA 1.0s from 2 peer(s)"),
            "{line}"
        );
        assert!(line.contains("[##########..........]"), "{line}");
        let mut live = status();
        live.download = None;
        live.phase = SyncPhase::Live;
        assert!(!progress_line(&live).contains("snapshot"));
        live.phase = SyncPhase::Replay;
        live.catch_up = Some(bluepods_core::node::CatchUpStatus {
            from: Round(40),
            through: Round(50),
            target: Round(60),
        });
        live.buffer_vertices = 12;
        live.buffer_bytes = 3_000_000;
        let line = progress_line(&live);
        assert!(
            line.contains("[##########..........] 10/20 (to 60)"),
            "{line}"
        );
        assert!(line.contains("buffered 12 vertices (3.0 MB)"), "{line}");
    }
}
