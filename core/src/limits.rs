//! What bounds a peer can run into, and how the node says so: the limits
//! reported in `Event::LimitHit` (and `limit_hits_total{limit}`), and the
//! application error code of a connection the node closes.

use serde::Serialize;

/// A limit that was hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// `max_peers` or `max_listener_peers`.
    Peers,
    /// `max_pending_vertices` or `max_rounds_ahead`.
    PendingVertices,
    /// `max_mempool_txs`.
    Mempool,
    /// `max_forwarded_txs`.
    ForwardedTxs,
    /// `buffer_max_bytes`: the oldest buffered vertices were dropped (the
    /// replay fetches them again).
    Buffer,
    /// `max_early_messages` or `max_early_message_bytes`: a peer sent more
    /// before its handshake proof than is held for it, and was dropped.
    EarlyMessages,
    /// `max_gossip_signature_checks_per_sec`: a peer's gossip vertex was
    /// dropped unchecked.
    GossipVerification,
    /// The driver's bound on bytes queued towards a peer
    /// (`max_queued_bytes`, or its gossip queue): the peer does not read,
    /// and was dropped.
    SendQueue,
    /// `max_evidence_kept` or `max_evidence_bytes`: a proof against a
    /// validator not proven before was not kept (nor forwarded).
    Evidence,
}

/// The application error code of a connection the node closes, so the
/// other side (and a packet capture) can tell a fault from a full table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseCode {
    /// No fault: the node is shutting down.
    Shutdown,
    /// No fault of the peer's: no room, a duplicate connection, a handshake
    /// that took too long. Trying again later may work.
    Refused,
    /// The peer broke the protocol: bytes that do not decode, a proof that
    /// does not verify, data proven false. It may also have been banned.
    Violation,
}

impl CloseCode {
    /// The QUIC application error code.
    pub fn as_u32(self) -> u32 {
        match self {
            CloseCode::Shutdown => 0,
            CloseCode::Refused => 1,
            CloseCode::Violation => 2,
        }
    }
}
