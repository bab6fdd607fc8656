//! The wire protocol: one tagged [`Message`] enum, borsh-encoded, inside a
//! length-prefixed frame.
//!
//! Decoding never panics and never trusts the peer: a frame longer than the
//! configured maximum is refused before it is read, bytes that do not decode
//! (or leave trailing garbage) are an error the driver turns into
//! `Input::MalformedMessage`, and every hash inside a message is recomputed by
//! the receiver rather than taken from the wire.
//!
//! New variants are only ever appended, so the tag of an existing message never
//! changes; [`PROTOCOL_VERSION`] in the handshake guards incompatible changes.

use crate::genesis::Genesis;
use crate::ids::{Hash, PublicKey, Round, Signature};
use crate::tx::Transaction;
use crate::vertex::Vertex;
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The protocol version spoken by this build.
///
/// 2: vertices are signed over a header naming the payload by hash, and carry
/// equivocation proofs; `Message::Evidence`.
/// 3: weighted validators, admission, epoch votes in vertices, and the
/// epoch certificate requests (issue 13).
pub const PROTOCOL_VERSION: u32 = 3;

/// Bytes of the frame length prefix (little-endian u32).
pub const FRAME_HEADER_BYTES: usize = 4;

/// What a node does in the network.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Produces vertices (once in the validator set).
    Validator,
    /// Follows the network without producing.
    Listener,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Validator => "validator",
            Role::Listener => "listener",
        })
    }
}

/// Correlates a response with its request; chosen by the requester.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize,
)]
pub struct RequestId(pub u64);

/// The first message on every connection, sent by both sides.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Hello {
    /// [`PROTOCOL_VERSION`] of the sender.
    pub version: u32,
    /// The sender's chain id; `None` for a joiner that has not adopted a
    /// genesis yet (it learns the chain from its peers).
    pub chain_id: Option<Hash>,
    /// The sender's node key; proven by [`Message::HelloProof`].
    pub node_key: PublicKey,
    /// Validator or listener.
    pub role: Role,
    /// Highest DAG round the sender holds.
    pub highest_round: Option<Round>,
    /// The sender's last committed anchor round.
    pub committed_round: Option<Round>,
    /// The sender's latest servable snapshot round.
    pub snapshot_round: Option<Round>,
    /// A fresh random challenge the other side must sign.
    pub nonce: [u8; 32],
    /// Where the sender accepts connections, if anywhere.
    pub listen_addr: Option<String>,
}

/// Every message.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Message {
    /// Handshake opener.
    Hello(Hello),
    /// Proof of key possession: the sender's signature over the receiver's
    /// nonce (see `handshake::proof_message`).
    HelloProof(Signature),
    /// The sender refuses the connection; it will disconnect.
    Reject {
        /// Human-readable reason.
        reason: String,
    },
    /// Asks for the genesis document.
    GetGenesis {
        /// Request id.
        request: RequestId,
    },
    /// The genesis document (the receiver checks its hash is the chain id).
    Genesis {
        /// Request id.
        request: RequestId,
        /// The document.
        genesis: Genesis,
    },
    /// A gossiped vertex.
    Vertex(Vertex),
    /// Asks for vertices by hash.
    GetVertices {
        /// Request id.
        request: RequestId,
        /// Wanted hashes.
        hashes: Vec<Hash>,
    },
    /// Asks for every vertex of rounds `from..=to`.
    GetRounds {
        /// Request id.
        request: RequestId,
        /// First round.
        from: Round,
        /// Last round.
        to: Round,
    },
    /// Vertices answering `GetVertices` or `GetRounds`, sorted by round.
    Vertices {
        /// Request id.
        request: RequestId,
        /// The vertices found.
        vertices: Vec<Vertex>,
        /// For `GetRounds`: the last round fully included (the responder may
        /// cut the answer short to respect its size limit).
        through: Option<Round>,
    },
    /// A transaction forwarded to a validator.
    SubmitTx(Transaction),
    /// Progress announcement: lets peers know how far the sender is.
    Status {
        /// Highest DAG round held.
        highest_round: Option<Round>,
        /// Last committed anchor round.
        committed_round: Option<Round>,
    },
    /// The responder cannot serve a request.
    NotAvailable {
        /// Request id.
        request: RequestId,
        /// Why.
        reason: String,
    },
    /// Asks for a snapshot manifest: of `round`, or the latest if `None`.
    GetManifest {
        /// Request id.
        request: RequestId,
        /// Which snapshot.
        round: Option<Round>,
    },
    /// A snapshot manifest (the receiver recomputes its root), with the
    /// vertices that attest it: the joiner's proof that a quorum of
    /// validators vouches for this root.
    Manifest {
        /// Request id.
        request: RequestId,
        /// The manifest.
        manifest: Box<crate::snapshot::Manifest>,
        /// Vertices whose attestation names this manifest's round and root.
        attestations: Vec<Vertex>,
    },
    /// Asks for one chunk of a snapshot.
    GetChunk {
        /// Request id.
        request: RequestId,
        /// Snapshot round.
        round: Round,
        /// Chunk index.
        index: u32,
    },
    /// One compressed chunk, as stored (never recompressed to serve).
    Chunk {
        /// Request id.
        request: RequestId,
        /// Snapshot round.
        round: Round,
        /// Chunk index.
        index: u32,
        /// The zstd frame.
        bytes: Vec<u8>,
    },
    /// Asks for the addresses of nodes the receiver is connected to (peer
    /// exchange).
    GetPeers {
        /// Request id.
        request: RequestId,
    },
    /// Addresses of nodes the sender is connected to, validators first; a
    /// receiver reads at most its `max_peer_exchange` of them.
    Peers {
        /// Request id.
        request: RequestId,
        /// The nodes.
        peers: Vec<PeerAddress>,
    },
    /// Asks for one chunk of a snapshot as a delta against pages the asker
    /// holds (`snapshot::pages`); the answer is `ChunkDelta`, or `Chunk`
    /// when the server prefers to send it whole.
    GetChunkDelta {
        /// Request id.
        request: RequestId,
        /// Snapshot round.
        round: Round,
        /// Chunk index.
        index: u32,
        /// Digests of the asker's pages in the chunk's key range, in order.
        held: Vec<crate::snapshot::pages::PageDigest>,
    },
    /// A chunk as a delta: its pages, each held by the asker (named by
    /// position) or given, borsh-encoded and compressed.
    ChunkDelta {
        /// Request id.
        request: RequestId,
        /// Snapshot round.
        round: Round,
        /// Chunk index.
        index: u32,
        /// The zstd frame of the parts.
        bytes: Vec<u8>,
    },
    /// Proof that a validator signed two vertices for one round
    /// (`evidence.rs`); every node that learns one forwards it once.
    Evidence(Box<crate::evidence::EquivocationProof>),
    /// Asks for the epoch certificates from `from` on (`epochs.rs`).
    GetEpochCertificates {
        /// Request id.
        request: RequestId,
        /// The first epoch wanted.
        from: crate::ids::Epoch,
    },
    /// Consecutive epoch certificates from the epoch asked for (none if
    /// the sender holds none from there).
    EpochCertificates {
        /// Request id.
        request: RequestId,
        /// The certificates, by epoch.
        certs: Vec<crate::epochs::EpochCertificate>,
    },
}

/// Longest text from a peer (a reason it gives) that this node keeps and
/// reports.
pub const MAX_PEER_TEXT_CHARS: usize = 200;

/// Text a peer sent (or a transport error that quotes it), made safe to
/// log and show: control characters become spaces, so no newline or
/// escape sequence forges a line of this node's log, and it is cut to
/// [`MAX_PEER_TEXT_CHARS`].
pub fn printable(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(MAX_PEER_TEXT_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().nth(MAX_PEER_TEXT_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// A node another node can dial, as told in peer exchange.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct PeerAddress {
    /// Its proven node key.
    pub key: PublicKey,
    /// Its role.
    pub role: Role,
    /// The address it announced in its handshake.
    pub addr: String,
}

impl Message {
    /// The request this message answers, if it is an answer.
    pub fn answers(&self) -> Option<RequestId> {
        match self {
            Message::Genesis { request, .. }
            | Message::Vertices { request, .. }
            | Message::NotAvailable { request, .. }
            | Message::Manifest { request, .. }
            | Message::Chunk { request, .. }
            | Message::Peers { request, .. }
            | Message::ChunkDelta { request, .. }
            | Message::EpochCertificates { request, .. } => Some(*request),
            _ => None,
        }
    }

    /// A short name for logs and traces.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Hello(_) => "hello",
            Message::HelloProof(_) => "hello_proof",
            Message::Reject { .. } => "reject",
            Message::GetGenesis { .. } => "get_genesis",
            Message::Genesis { .. } => "genesis",
            Message::Vertex(_) => "vertex",
            Message::GetVertices { .. } => "get_vertices",
            Message::GetRounds { .. } => "get_rounds",
            Message::Vertices { .. } => "vertices",
            Message::SubmitTx(_) => "submit_tx",
            Message::Status { .. } => "status",
            Message::NotAvailable { .. } => "not_available",
            Message::GetManifest { .. } => "get_manifest",
            Message::Manifest { .. } => "manifest",
            Message::GetChunk { .. } => "get_chunk",
            Message::Chunk { .. } => "chunk",
            Message::GetPeers { .. } => "get_peers",
            Message::Peers { .. } => "peers",
            Message::GetChunkDelta { .. } => "get_chunk_delta",
            Message::ChunkDelta { .. } => "chunk_delta",
            Message::Evidence(_) => "evidence",
            Message::GetEpochCertificates { .. } => "get_epoch_certificates",
            Message::EpochCertificates { .. } => "epoch_certificates",
        }
    }
}

/// Why bytes from the network are not a message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The frame announces more bytes than allowed.
    #[error("frame of {got} bytes exceeds the {max}-byte limit")]
    FrameTooLarge {
        /// Announced length.
        got: usize,
        /// Limit.
        max: usize,
    },
    /// The payload is not a valid message.
    #[error("malformed message: {0}")]
    Malformed(String),
}

/// Encodes a message payload (without frame header).
pub fn encode(msg: &Message) -> Vec<u8> {
    borsh::to_vec(msg).expect("borsh encoding into memory is infallible")
}

/// Encodes a message as a frame: little-endian u32 length, then payload.
pub fn encode_frame(msg: &Message) -> Vec<u8> {
    let payload = encode(msg);
    let mut out = Vec::with_capacity(FRAME_HEADER_BYTES + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

/// Reads a frame header and checks it against `max_frame_bytes`.
pub fn frame_len(
    header: [u8; FRAME_HEADER_BYTES],
    max_frame_bytes: usize,
) -> Result<usize, DecodeError> {
    let len = u32::from_le_bytes(header) as usize;
    if len > max_frame_bytes {
        return Err(DecodeError::FrameTooLarge {
            got: len,
            max: max_frame_bytes,
        });
    }
    Ok(len)
}

/// Decodes a payload. Never panics; refuses trailing bytes.
pub fn decode(payload: &[u8], max_frame_bytes: usize) -> Result<Message, DecodeError> {
    if payload.len() > max_frame_bytes {
        return Err(DecodeError::FrameTooLarge {
            got: payload.len(),
            max: max_frame_bytes,
        });
    }
    borsh::from_slice(payload).map_err(|e| DecodeError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn messages_round_trip_through_frames() {
        let msg = Message::GetRounds {
            request: RequestId(7),
            from: Round(3),
            to: Round(9),
        };
        let frame = encode_frame(&msg);
        let len = frame_len(frame[..4].try_into().unwrap(), 1 << 20).unwrap();
        assert_eq!(len, frame.len() - 4);
        assert_eq!(decode(&frame[4..], 1 << 20), Ok(msg));
    }

    #[test]
    fn oversized_frames_are_refused_before_reading() {
        let header = (5u32 << 20).to_le_bytes();
        assert!(matches!(
            frame_len(header, 1 << 20),
            Err(DecodeError::FrameTooLarge { .. })
        ));
    }

    #[test]
    fn trailing_bytes_are_malformed() {
        let mut bytes = encode(&Message::Status {
            highest_round: None,
            committed_round: Some(Round(1)),
        });
        bytes.push(0);
        assert!(matches!(
            decode(&bytes, 1 << 20),
            Err(DecodeError::Malformed(_))
        ));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = decode(&bytes, 1 << 20);
        }

        #[test]
        fn random_bytes_after_a_valid_tag_never_panic(
            tag in 0u8..16,
            rest in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            let mut bytes = vec![tag];
            bytes.extend(rest);
            let _ = decode(&bytes, 1 << 20);
        }
    }
}
