//! Trace rows: one line per message (kind, rounds, short hashes, never
//! payloads) or per event worth showing.

use crate::interface::Event;
use crate::wire::Message;

/// A one-line summary of a message: kind, rounds, short hashes, no payloads.
pub fn summary(msg: &Message) -> String {
    match msg {
        Message::Hello(h) => format!(
            "hello role={} chain={} top={}",
            h.role,
            h.chain_id
                .map_or("-".into(), |c| c.short()[..8].to_string()),
            h.highest_round.map_or("-".into(), |r| r.to_string())
        ),
        Message::Vertex(v) => format!(
            "vertex r={} h={} txs={}",
            v.round(),
            &v.hash().short()[..8],
            v.body.txs.len()
        ),
        Message::Vertices {
            vertices, through, ..
        } => format!(
            "vertices n={} through={}",
            vertices.len(),
            through.map_or("-".into(), |r| r.to_string())
        ),
        Message::GetRounds { from, to, .. } => format!("get_rounds {from}..={to}"),
        Message::GetVertices { hashes, .. } => format!("get_vertices n={}", hashes.len()),
        Message::Status {
            highest_round,
            committed_round,
        } => format!(
            "status top={} committed={}",
            highest_round.map_or("-".into(), |r| r.to_string()),
            committed_round.map_or("-".into(), |r| r.to_string())
        ),
        Message::Manifest {
            manifest,
            attestations,
            ..
        } => format!(
            "manifest r={} root={} chunks={} attestations={}",
            manifest.round,
            &manifest.root().short()[..8],
            manifest.chunks.len(),
            attestations.len()
        ),
        Message::GetChunk { round, index, .. } => format!("get_chunk r={round} i={index}"),
        Message::Chunk { round, index, .. } => format!("chunk r={round} i={index}"),
        Message::GetChunkDelta {
            round, index, held, ..
        } => format!("get_chunk_delta r={round} i={index} held={}", held.len()),
        Message::ChunkDelta { round, index, .. } => format!("chunk_delta r={round} i={index}"),
        Message::Peers { peers, .. } => format!("peers n={}", peers.len()),
        other => other.kind().to_string(),
    }
}

/// A trace row for the events worth showing; `None` for the rest.
pub(super) fn event_row(e: &Event) -> Option<String> {
    Some(match e {
        Event::PhaseChanged { from, to } => format!("phase {from} -> {to}"),
        Event::GenesisAdopted { chain_id, pinned, .. } => format!("genesis {} pinned={pinned}", &chain_id.short()[..8]),
        Event::PeerReady { key, role, .. } => format!("ready {} {role}", &key.short()[..8]),
        Event::PeerRejected { reason, .. } => format!("rejected: {reason}"),
        Event::PeerBanned { key, .. } => format!("banned {}", &key.short()[..8]),
        Event::RegistrationSubmitted { tx, .. } => format!("registration {}", &tx.short()[..8]),
        Event::ApprovalSubmitted { candidate, .. } => format!("approving {}", &candidate.short()[..8]),
        Event::ValidatorRemoved { key, epoch } => format!("removed {} from epoch {}", &key.short()[..8], epoch.0),
        Event::ValidatorSetChanged { epoch, size, includes_self } => {
            format!("validator set epoch={epoch} size={size} self={includes_self}")
        }
        Event::VertexProduced { round, hash, txs } => format!("produced r={round} h={} txs={txs}", &hash.short()[..8]),
        Event::VertexAccepted { round, hash, source, .. } => format!("accepted r={round} h={} {source:?}", &hash.short()[..8]),
        Event::Committed { round, anchor, vertices, txs_committed, txs_failed } => format!(
            "committed r={round} anchor={} vertices={vertices} ok={txs_committed} failed={txs_failed}",
            &anchor.short()[..8]
        ),
        Event::Equivocation { round, .. } => format!("equivocation r={round}"),
        Event::AnchorDutyRevoked { author, epoch } => {
            format!("anchor duty revoked {} from epoch {}", &author.short()[..8], epoch.0)
        }
        Event::SnapshotBuilt { round, root, chunks, objects, .. } => {
            format!("snapshot r={round} root={} chunks={chunks} objects={objects}", &root.short()[..8])
        }
        Event::SyncFailed { reason } => format!("sync failed: {reason}"),
        Event::SyncBackoff { reason, retry_in_ms } => format!("sync backoff {retry_in_ms} ms: {reason}"),
        Event::SnapshotSyncStarted { round, root, chunks, peers, .. } => {
            format!("snapshot sync r={round} root={} chunks={chunks} peers={peers}", &root.short()[..8])
        }
        Event::SnapshotApplied { round, objects, outcomes, .. } => {
            format!("snapshot applied r={round} objects={objects} outcomes={outcomes}")
        }
        Event::ReplayStarted { vertices, .. } => format!("replay {vertices} buffered"),
        Event::StateVerified { round, .. } => format!("state verified r={round}"),
        Event::SnapshotResumed { from_round, round, chunks_done, chunks_total } => {
            if from_round == round {
                format!("snapshot resumed r={round} {chunks_done}/{chunks_total}")
            } else {
                format!("snapshot moved r={from_round}->{round} kept {chunks_done}/{chunks_total}")
            }
        }
        Event::StateMismatch { round, .. } => format!("STATE MISMATCH r={round}"),
        _ => return None,
    })
}
