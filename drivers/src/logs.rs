//! Log lines for node events, in the format operators and the seed spec
//! expect (`[LISTENER] received vertex round=… txs=… hash=…`, …).
//!
//! Hashes print as 16 hex characters, so a bootstrap's `[VALIDATOR] produced`
//! lines and a listener's `[LISTENER] received` lines compare one to one.
//! Per-vertex lines of a validator are at DEBUG to keep busy networks
//! readable; a listener's are at INFO, as the spec shows them.

use bluepods_core::interface::VertexSource;
use bluepods_core::{Event, Role};

/// Logs one event.
pub fn log_event(role: Role, bootstrap: &[String], event: &Event) {
    let tag = match role {
        Role::Validator => "VALIDATOR",
        Role::Listener => "LISTENER",
    };
    match event {
        Event::PhaseChanged { from, to } => tracing::info!("[SYNC] phase {from} -> {to}"),
        Event::GenesisAdopted {
            chain_id,
            pinned,
            validators,
            admission,
        } => {
            if *admission == bluepods_core::params::Admission::Open {
                warn_open_admission();
            }
            if *pinned {
                tracing::info!("[SYNC] adopted genesis chain_id={chain_id} validators={validators}");
            } else {
                tracing::warn!(
                    "[SYNC] WARNING: trusting chain id {chain_id}, the one every peer announced \
                     (no --chain-id given); pass --chain-id to pin the network you mean to join"
                );
            }
        }
        Event::PeerReady {
            peer,
            key,
            role: peer_role,
            addr,
            outbound,
        } => {
            if *outbound && bootstrap.contains(addr) {
                tracing::info!("[{tag}] connected to bootstrap {addr}");
            }
            tracing::debug!(%peer, key = %key.short(), role = %peer_role, %addr, "peer ready");
        }
        Event::PeerRejected { peer, addr, reason } => {
            tracing::warn!("[NET] peer {peer} at {addr} dropped: {reason}")
        }
        Event::PeerBanned {
            peer,
            addr,
            key,
            reason,
            until,
        } => tracing::warn!(
            "[NET] peer {peer} at {addr} ({}) banned until {until}: {reason}",
            key.short()
        ),
        Event::RegistrationSubmitted { tx, address } => {
            tracing::info!("[VALIDATOR] registering as a validator at {address} (tx {})", tx.short());
        }
        Event::ApprovalSubmitted { tx, candidate } => tracing::warn!(
            "[VALIDATOR] approving validator candidate {} on my own (auto-approve; tx {})",
            candidate.short(),
            tx.short()
        ),
        Event::ValidatorRemoved { key, epoch } => tracing::warn!(
            "[CONSENSUS] validator {} removed for inactivity: out of the set from epoch {}",
            key.short(),
            epoch.0
        ),
        Event::EpochCertified {
            epoch,
            signers,
            bytes,
            fetched,
        } => {
            let how = if *fetched { "fetched and checked" } else { "assembled from votes" };
            tracing::info!(
                "[CONSENSUS] validator set of epoch {} certified by {signers} signers ({bytes} bytes, {how})",
                epoch.0
            );
        }
        Event::PeerGone { peer, reason } => tracing::info!("[NET] peer {peer} disconnected: {reason}"),
        Event::VertexProduced { round, hash, txs } => {
            tracing::info!("[VALIDATOR] produced vertex round={round} txs={txs} hash={}", hash.short());
        }
        Event::VertexAccepted {
            round,
            hash,
            txs,
            source,
            ..
        } => match (role, source) {
            (Role::Listener, _) => {
                tracing::info!("[LISTENER] received vertex round={round} txs={txs} hash={}", hash.short());
            }
            (_, VertexSource::Fetch) => {
                tracing::debug!("[SYNC] fetched vertex round={round} txs={txs} hash={}", hash.short());
            }
            _ => tracing::debug!("[VALIDATOR] received vertex round={round} txs={txs} hash={}", hash.short()),
        },
        Event::VertexRejected { peer, reason } => tracing::warn!("[NET] invalid vertex from {peer}: {reason}"),
        Event::Committed {
            round,
            vertices,
            txs_committed,
            txs_failed,
            ..
        } => {
            if txs_committed + txs_failed > 0 {
                tracing::info!(
                    "[CONSENSUS] committed round={round} vertices={vertices} txs={txs_committed} failed={txs_failed}"
                );
            } else {
                tracing::debug!("[CONSENSUS] committed round={round} vertices={vertices}");
            }
        }
        Event::Equivocation {
            author,
            round,
            first,
            second,
        } => tracing::warn!(
            "[CONSENSUS] equivocation by {} at round {round}: {} and {} (proof kept and forwarded)",
            author.short(),
            first.short(),
            second.short()
        ),
        Event::AnchorDutyRevoked { author, epoch } => tracing::warn!(
            "[CONSENSUS] validator {} proven to equivocate: off anchor duty from epoch {}",
            author.short(),
            epoch.0
        ),
        Event::LimitHit { limit } => tracing::warn!("[NET] limit reached: {limit:?}"),
        Event::CatchUpProgress { through, target } => {
            tracing::info!("[SYNC] catching up: round {through} of {target}");
        }
        Event::ValidatorSetChanged {
            epoch,
            size,
            includes_self,
        } => tracing::info!("[CONSENSUS] validator set for epoch {epoch}: {size} members (includes us: {includes_self})"),
        Event::SnapshotBuilt {
            round,
            root,
            chunks,
            objects,
            raw_bytes,
            compressed_bytes,
        } => tracing::info!(
            "[SNAPSHOT] built round={round} objects={objects} chunks={chunks} size={:.1} MB compressed_bytes={compressed_bytes} root={}",
            *raw_bytes as f64 / 1e6,
            root.short()
        ),
        Event::SnapshotFailed { round, error } => tracing::warn!("[SNAPSHOT] round {round}: {error}"),
        Event::SyncPlanned { round, root, peers } => {
            tracing::info!(
                "[SYNC] plan ready: snapshot round={round} root={} served by {peers} peer(s)",
                root.short()
            );
        }
        Event::SnapshotSyncStarted {
            round,
            root,
            chunks,
            raw_bytes,
            peers,
        } => {
            tracing::info!(
                "[SYNC] requesting snapshot round={round} root={} ({chunks} chunks, {}) from {peers} peer(s)",
                root.short(),
                mb(*raw_bytes)
            );
        }
        Event::DialFailed {
            addr,
            attempt,
            attempts_max,
            reason,
            retry_in_ms,
        } => {
            let of = if attempt <= attempts_max {
                format!(" of {attempts_max}")
            } else {
                String::new()
            };
            tracing::warn!(
                "[NET] cannot reach {addr} (attempt {attempt}{of}): {reason}; retrying in {:.1}s",
                *retry_in_ms as f64 / 1000.0
            );
        }
        Event::SnapshotResumed {
            from_round,
            round,
            chunks_done,
            chunks_total,
        } if from_round == round => tracing::info!(
            "[SYNC] resuming snapshot download round={round}: {chunks_done} of {chunks_total} chunks already verified"
        ),
        Event::SnapshotResumed {
            from_round,
            round,
            chunks_done,
            chunks_total,
        } => tracing::info!(
            "[SYNC] moving to snapshot round={round} from round={from_round}: {chunks_done} of {chunks_total} chunks already verified, kept"
        ),
        Event::SnapshotDownloaded {
            round,
            chunks_total,
            chunks_kept,
            chunks_rebuilt,
            chunk_answers,
            chunks_staged,
            compressed_bytes,
            elapsed_ms,
        } => {
            let fetched = chunks_total - chunks_kept;
            let twice = chunk_answers.saturating_sub(*chunks_staged);
            tracing::info!(
                "[SYNC] snapshot round={round} downloaded in {:.1}s: {fetched} of {chunks_total} chunks fetched ({chunks_kept} kept from earlier downloads, {chunks_rebuilt} rebuilt from held pages, {twice} fetched twice), compressed_bytes={compressed_bytes}",
                *elapsed_ms as f64 / 1000.0
            );
            tracing::info!(
                "[SYNC] stage profile: download {:.2}s (first request to last chunk staged); {}",
                *elapsed_ms as f64 / 1000.0,
                crate::profile::SYNC.summary(crate::profile::check_workers())
            );
        }
        Event::SnapshotProgress {
            chunks_done,
            chunks_total,
            bytes_done,
            bytes_total,
            bytes_per_sec,
            eta_ms,
        } => {
            let percent = bytes_done * 100 / (*bytes_total).max(1);
            tracing::info!(
                "[SYNC] downloading snapshot... {percent}% ({} / {}) chunks {chunks_done}/{chunks_total}, {}/s, ETA {:.1}s",
                mb(*bytes_done),
                mb(*bytes_total),
                mb(*bytes_per_sec),
                *eta_ms as f64 / 1000.0
            );
            if chunks_done == chunks_total {
                tracing::info!("[SYNC] decompressing snapshot... done ({chunks_total} zstd chunks)");
                tracing::info!("[SYNC] verifying checksum... every chunk matched its SHA-256 in the attested manifest");
            }
        }
        Event::SnapshotApplied {
            round,
            root,
            objects,
            outcomes,
        } => {
            tracing::info!("[SYNC] applying snapshot: {objects} objects, {outcomes} tx outcomes, lastCommittedRound={round}");
            tracing::info!("[SYNC] snapshot applied successfully (root {root})");
        }
        Event::ReplayStarted { vertices, from, to } => {
            tracing::info!("[SYNC] buffer contains {vertices} vertices from gossip");
            if let (Some(from), Some(to)) = (from, to) {
                tracing::info!("[SYNC] replaying {vertices} vertices from round {from} to {to}...");
            }
        }
        Event::ReplayFinished {
            processed,
            inserted,
            current,
        } => {
            tracing::info!(
                "[SYNC] replay complete: {processed} vertices processed ({inserted} joined the DAG; the rest wait for parents, fetched next)"
            );
            if let Some(r) = current {
                tracing::info!("[SYNC] current round: {r}");
            }
        }
        Event::StateVerified { round, root } => {
            tracing::info!("[SYNC] state verification: OK (round {round}, root {} attested by a quorum)", root.short());
        }
        Event::StateMismatch { round, ours, attested } => tracing::error!(
            "[SYNC] state verification FAILED at round {round}: our root {ours}, a quorum attested {attested}"
        ),
        Event::SyncFailed { reason } => tracing::error!("[SYNC] failed: {reason}"),
        Event::RequestFailed {
            peer,
            addr,
            what,
            attempt,
            attempts_max,
            reason,
            unreported,
        } => {
            let more = if *unreported > 0 {
                format!(" ({unreported} more of its requests failed since the last report)")
            } else {
                String::new()
            };
            tracing::warn!(
                "[NET] request for {what} to peer {peer} at {addr} failed (attempt {attempt} of {attempts_max}): {reason}{more}"
            )
        }
        Event::SyncBackoff { reason, retry_in_ms } => tracing::warn!(
            "[SYNC] {reason}; trying again in {:.1} s",
            *retry_in_ms as f64 / 1000.0
        ),
        Event::StorageFailed { error } => tracing::error!("[STORE] {error}; the node stops"),
    }
}

/// Bytes as megabytes with one decimal, the way the sync plan prints them.
fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// The loud warning of a chain with open admission (`admission.rs`), at
/// start and when a joiner adopts such a genesis.
pub fn warn_open_admission() {
    tracing::warn!(
        "[VALIDATOR] WARNING: {}",
        bluepods_core::admission::OPEN_ADMISSION_WARNING
    );
}
