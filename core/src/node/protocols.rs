//! The wire's mini-protocols, and who may send what: one table.
//!
//! Every [`Message`] belongs to one mini-protocol and is handled in one
//! connection stage (the handshake's `AwaitingHello`, `AwaitingProof`,
//! `Ready`). [`RULES`] says, per message: its protocol, the stage in which it
//! is handled, what happens to it in any other stage (held until the peer is
//! ready, or the peer is dropped), who may send it (any peer, or only the
//! peer a matching request went to: an answer from anyone else is ignored),
//! and what it leads to. `Node::on_message` admits messages by this table
//! (`admission`), and `core/tests/protocol_table.rs` drives a real node
//! through every row in every stage and checks that it does what the row
//! says.

use crate::peers::Stage;
use crate::wire::Message;

/// A mini-protocol of the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Versions, chain ids, proofs of key (`handshake.rs`).
    Handshake,
    /// Fetching the genesis document (`sync.rs`).
    Genesis,
    /// Vertices, status, transactions and equivocation proofs pushed to
    /// peers (`gossip.rs`).
    Gossip,
    /// Vertices by hash or by round range (`gossip.rs` serves, `sync.rs`
    /// and `catchup.rs` ask).
    Fetch,
    /// Manifests and chunks (`snapshots.rs` serves, `snapsync.rs` and
    /// `download.rs` ask).
    Snapshot,
    /// Addresses of other nodes (`exchange.rs`).
    PeerExchange,
    /// Epoch certificates (`node/epochs.rs` serves and asks).
    Epochs,
    /// "Not available", the answer of any request protocol.
    Any,
}

/// A message's kind, without its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[allow(missing_docs)] // the variants of `Message`, one for one
pub enum MessageKind {
    Hello,
    HelloProof,
    Reject,
    GetGenesis,
    Genesis,
    Vertex,
    GetVertices,
    GetRounds,
    Vertices,
    SubmitTx,
    Status,
    NotAvailable,
    GetManifest,
    Manifest,
    GetChunk,
    Chunk,
    GetPeers,
    Peers,
    GetChunkDelta,
    ChunkDelta,
    Evidence,
    GetEpochCertificates,
    EpochCertificates,
}

impl MessageKind {
    /// The kind of `msg`.
    pub fn of(msg: &Message) -> Self {
        match msg {
            Message::Hello(_) => MessageKind::Hello,
            Message::HelloProof(_) => MessageKind::HelloProof,
            Message::Reject { .. } => MessageKind::Reject,
            Message::GetGenesis { .. } => MessageKind::GetGenesis,
            Message::Genesis { .. } => MessageKind::Genesis,
            Message::Vertex(_) => MessageKind::Vertex,
            Message::GetVertices { .. } => MessageKind::GetVertices,
            Message::GetRounds { .. } => MessageKind::GetRounds,
            Message::Vertices { .. } => MessageKind::Vertices,
            Message::SubmitTx(_) => MessageKind::SubmitTx,
            Message::Status { .. } => MessageKind::Status,
            Message::NotAvailable { .. } => MessageKind::NotAvailable,
            Message::GetManifest { .. } => MessageKind::GetManifest,
            Message::Manifest { .. } => MessageKind::Manifest,
            Message::GetChunk { .. } => MessageKind::GetChunk,
            Message::Chunk { .. } => MessageKind::Chunk,
            Message::GetPeers { .. } => MessageKind::GetPeers,
            Message::Peers { .. } => MessageKind::Peers,
            Message::GetChunkDelta { .. } => MessageKind::GetChunkDelta,
            Message::ChunkDelta { .. } => MessageKind::ChunkDelta,
            Message::Evidence(_) => MessageKind::Evidence,
            Message::GetEpochCertificates { .. } => MessageKind::GetEpochCertificates,
            Message::EpochCertificates { .. } => MessageKind::EpochCertificates,
        }
    }
}

/// The connection stage in which a message is handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandledIn {
    /// Our hello is out, theirs has not arrived.
    AwaitingHello,
    /// Their hello arrived, their proof has not.
    AwaitingProof,
    /// The peer proved its key and is on our chain.
    Ready,
    /// Whatever the stage.
    AnyStage,
}

impl HandledIn {
    /// Whether a message of this rule is handled in `stage`.
    pub fn admits(self, stage: &Stage) -> bool {
        matches!(
            (self, stage),
            (HandledIn::AnyStage, _)
                | (HandledIn::AwaitingHello, Stage::AwaitingHello)
                | (HandledIn::AwaitingProof, Stage::AwaitingProof(_))
                | (HandledIn::Ready, Stage::Ready)
        )
    }
}

/// What happens to a message that arrives in another stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Otherwise {
    /// Kept (up to `max_early_messages`) and handled once the peer is
    /// ready: a request may overtake the proof on its own stream. Only
    /// small requests qualify; nothing bulky is held for an unproven peer.
    Hold,
    /// The peer is dropped, with this reason.
    DropPeer(&'static str),
}

/// Who may send a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sender {
    /// Any peer in the stage the rule names.
    AnyPeer,
    /// Only the peer a request with the same id went to; from anyone else
    /// (or late) the message is ignored, not punished.
    AskedPeer,
}

/// What a handled message leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// We answer with our proof of key (stage `AwaitingProof`).
    ProofSent,
    /// The peer is ready.
    PeerReady,
    /// The connection closes.
    Closed,
    /// We answer on the request stream (the thing asked for, or
    /// `NotAvailable`).
    Answer,
    /// The message feeds the node (consensus, mempool, a download, the
    /// peer table); no answer.
    Absorbed,
}

/// One row of the table.
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    /// The message.
    pub kind: MessageKind,
    /// Its mini-protocol.
    pub protocol: Protocol,
    /// The stage in which it is handled.
    pub handled_in: HandledIn,
    /// What happens to it in any other stage.
    pub otherwise: Otherwise,
    /// Who may send it.
    pub sender: Sender,
    /// What it leads to.
    pub next: Next,
}

/// Early messages that are not held: the reason a peer is dropped for one.
const EARLY: Otherwise = Otherwise::DropPeer("too many messages before handshake completed");

const fn rule(
    kind: MessageKind,
    protocol: Protocol,
    handled_in: HandledIn,
    otherwise: Otherwise,
    sender: Sender,
    next: Next,
) -> Rule {
    Rule {
        kind,
        protocol,
        handled_in,
        otherwise,
        sender,
        next,
    }
}

/// Who may send what, and what follows. See the module docs.
#[rustfmt::skip]
pub const RULES: [Rule; 23] = {
    use HandledIn::*;
    use MessageKind as K;
    use Next::*;
    use Protocol as P;
    use Sender::*;
    [
        rule(K::Hello, P::Handshake, AwaitingHello, Otherwise::DropPeer("second hello"), AnyPeer, ProofSent),
        rule(K::HelloProof, P::Handshake, AwaitingProof, Otherwise::DropPeer("proof before hello"), AnyPeer, PeerReady),
        rule(K::Reject, P::Handshake, AnyStage, EARLY, AnyPeer, Closed),
        rule(K::GetGenesis, P::Genesis, Ready, Otherwise::Hold, AnyPeer, Answer),
        rule(K::Genesis, P::Genesis, Ready, EARLY, AskedPeer, Absorbed),
        rule(K::Vertex, P::Gossip, Ready, EARLY, AnyPeer, Absorbed),
        rule(K::Status, P::Gossip, Ready, EARLY, AnyPeer, Absorbed),
        rule(K::SubmitTx, P::Gossip, Ready, EARLY, AnyPeer, Absorbed),
        rule(K::Evidence, P::Gossip, Ready, EARLY, AnyPeer, Absorbed),
        rule(K::GetVertices, P::Fetch, Ready, Otherwise::Hold, AnyPeer, Answer),
        rule(K::GetRounds, P::Fetch, Ready, Otherwise::Hold, AnyPeer, Answer),
        rule(K::Vertices, P::Fetch, Ready, EARLY, AskedPeer, Absorbed),
        rule(K::GetManifest, P::Snapshot, Ready, Otherwise::Hold, AnyPeer, Answer),
        rule(K::Manifest, P::Snapshot, Ready, EARLY, AskedPeer, Absorbed),
        rule(K::GetChunk, P::Snapshot, Ready, Otherwise::Hold, AnyPeer, Answer),
        rule(K::Chunk, P::Snapshot, Ready, EARLY, AskedPeer, Absorbed),
        rule(K::GetChunkDelta, P::Snapshot, Ready, Otherwise::Hold, AnyPeer, Answer),
        rule(K::ChunkDelta, P::Snapshot, Ready, EARLY, AskedPeer, Absorbed),
        rule(K::GetPeers, P::PeerExchange, Ready, Otherwise::Hold, AnyPeer, Answer),
        rule(K::Peers, P::PeerExchange, Ready, EARLY, AskedPeer, Absorbed),
        rule(K::GetEpochCertificates, P::Epochs, Ready, Otherwise::Hold, AnyPeer, Answer),
        rule(K::EpochCertificates, P::Epochs, Ready, EARLY, AskedPeer, Absorbed),
        rule(K::NotAvailable, P::Any, Ready, EARLY, AskedPeer, Absorbed),
    ]
};

/// The rule of `kind`.
pub fn rule_of(kind: MessageKind) -> &'static Rule {
    RULES
        .iter()
        .find(|r| r.kind == kind)
        .expect("every kind has a rule")
}

/// What the node does with `msg` from a peer in `stage`: `None` to handle
/// it, or what to do instead.
pub fn admission(stage: &Stage, msg: &Message) -> Option<Otherwise> {
    let rule = rule_of(MessageKind::of(msg));
    (!rule.handled_in.admits(stage)).then_some(rule.otherwise)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_exactly_one_rule() {
        for (i, a) in RULES.iter().enumerate() {
            assert_eq!(rule_of(a.kind).kind, a.kind);
            assert!(RULES[i + 1..].iter().all(|b| b.kind != a.kind), "{a:?}");
        }
    }

    #[test]
    fn only_small_requests_are_held_and_only_answers_need_an_asked_sender() {
        for r in RULES {
            if r.otherwise == Otherwise::Hold {
                assert_eq!(r.next, Next::Answer, "{r:?}");
            }
            if r.sender == Sender::AskedPeer {
                assert_eq!(r.next, Next::Absorbed, "{r:?}");
            }
        }
    }
}
