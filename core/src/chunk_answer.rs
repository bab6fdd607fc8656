//! Answers to chunk requests (`GetChunk`, `GetChunkDelta`): one definition
//! for the node's inline path and for the driver's off-loop reads
//! (`Action::ServeChunk`).

use crate::ids::{PeerId, Round};

/// A chunk answer to read and send (`Action::ServeChunk`).
#[derive(Clone)]
pub struct ChunkAnswer {
    /// Who asked.
    pub peer: PeerId,
    /// Their request.
    pub request: crate::wire::RequestId,
    /// Snapshot round.
    pub round: Round,
    /// Chunk index.
    pub index: u32,
    /// Where the chunk is read from.
    pub reader: std::sync::Arc<dyn crate::store::ChunkReader>,
    /// For a delta request: the chunk's kind and raw length, and the
    /// asker's page digests.
    pub delta: Option<DeltaAsk>,
}

/// What a delta request asks against (`Message::GetChunkDelta`).
#[derive(Clone, Debug)]
pub struct DeltaAsk {
    /// The chunk's kind, from the server's manifest.
    pub kind: crate::snapshot::ChunkKind,
    /// The chunk's raw length, from the server's manifest.
    pub raw_len: u32,
    /// The asker's page digests.
    pub held: Vec<crate::snapshot::pages::PageDigest>,
}

impl std::fmt::Debug for ChunkAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ChunkAnswer(p{} chunk {} of round {})",
            self.peer.0, self.index, self.round
        )
    }
}

impl ChunkAnswer {
    /// Reads the chunk (blocking) and returns the recipient and the
    /// message to send it: the chunk as stored, or `NotAvailable` if the
    /// snapshot went since, or the read failed.
    pub fn read(&self) -> (PeerId, crate::wire::Message) {
        use crate::wire::Message;
        let msg = match self.reader.snapshot_chunk(self.round, self.index) {
            Ok(found) => match &self.delta {
                None => chunk_message(self.request, self.round, self.index, found),
                Some(ask) => delta_message(self.request, self.round, self.index, found, ask),
            },
            Err(e) => Message::NotAvailable {
                request: self.request,
                reason: format!(
                    "chunk {} of round {} unreadable: {e}",
                    self.index, self.round
                ),
            },
        };
        (self.peer, msg)
    }
}

/// The answer to `GetChunkDelta`: the chunk as a delta against the asker's
/// pages, or the chunk whole if it does not page (a server never sends a
/// delta it could not build) or the delta would not be smaller.
pub(crate) fn delta_message(
    request: crate::wire::RequestId,
    round: Round,
    index: u32,
    found: Option<Vec<u8>>,
    ask: &DeltaAsk,
) -> crate::wire::Message {
    use crate::snapshot::pages::{delta_parts, encode_delta, Pages};
    use crate::snapshot::{decompress_chunk, ChunkKind, OutcomeRecord};
    let Some(stored) = found else {
        return chunk_message(request, round, index, None);
    };
    let pages = decompress_chunk(&stored, ask.raw_len).and_then(|raw| match ask.kind {
        ChunkKind::Objects => Pages::of_raw::<crate::tx::Object>(raw),
        ChunkKind::Outcomes => Pages::of_raw::<OutcomeRecord>(raw),
    });
    match pages {
        Ok(pages) => {
            let bytes = encode_delta(&delta_parts(&pages, &ask.held));
            if bytes.len() < stored.len() {
                return crate::wire::Message::ChunkDelta {
                    request,
                    round,
                    index,
                    bytes,
                };
            }
            chunk_message(request, round, index, Some(stored))
        }
        Err(_) => chunk_message(request, round, index, Some(stored)),
    }
}

/// The answer to `GetChunk { round, index }`: the chunk as stored, or
/// `NotAvailable` when it is not (`found` is `None`). One definition for
/// the inline and the off-loop path.
pub(crate) fn chunk_message(
    request: crate::wire::RequestId,
    round: Round,
    index: u32,
    found: Option<Vec<u8>>,
) -> crate::wire::Message {
    use crate::wire::Message;
    match found {
        Some(bytes) => Message::Chunk {
            request,
            round,
            index,
            bytes,
        },
        None => Message::NotAvailable {
            request,
            reason: format!("no chunk {index} of a snapshot at round {round}"),
        },
    }
}
