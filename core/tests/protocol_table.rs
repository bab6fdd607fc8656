//! The protocol table (`bluepods_core::node::protocols::RULES`) checked
//! against the node: every message kind, sent by a peer in every connection
//! stage, does what its row says — handled (answered, absorbed, the stage
//! advances), held until the peer is ready and then answered, or the peer is
//! dropped. Answers nobody asked for are ignored, not punished.

use bluepods_core::consensus::ConsensusMeta;
use bluepods_core::crypto::Domain;
use bluepods_core::harness::{alice_creates, test_genesis, TEST_SESSION};
use bluepods_core::node::protocols::{HandledIn, MessageKind, Next, Otherwise, RULES};
use bluepods_core::peers::proof_message;
use bluepods_core::snapshot::{Frontier, Manifest, SNAPSHOT_FORMAT_VERSION};
use bluepods_core::vertex::VertexBody;
use bluepods_core::wire::{Hello, RequestId, PROTOCOL_VERSION};
use bluepods_core::{
    init_chain, Action, Direction, Event, Genesis, Input, Keypair, MemStore, Message, Node,
    NodeConfig, PeerId, Role, Round, Timestamp,
};

const PEER: PeerId = PeerId(7);
const NOW: Timestamp = Timestamp(1_000);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    AwaitingHello,
    AwaitingProof,
    Ready,
}

/// What the node did with one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Dropped,
    Answered,
    ProofSent,
    Ready,
    Absorbed,
}

struct Bench {
    node: Node<MemStore>,
    genesis: Genesis,
    validator: Keypair,
    stranger: Keypair,
    /// The node's challenge to us.
    their_nonce: [u8; 32],
}

impl Bench {
    /// A listener on a one-validator chain, with a peer connected and its
    /// handshake taken to `stage`.
    fn at(stage: Stage) -> Bench {
        let (genesis, keys) = test_genesis(1, Default::default());
        let mut store = MemStore::new();
        init_chain(&mut store, &genesis).unwrap();
        let config = NodeConfig {
            role: Role::Listener,
            ..NodeConfig::default()
        };
        let mut node = Node::new(config, Keypair::from_label("node"), store, 1, NOW).unwrap();
        while node.poll_action().is_some() {}
        node.handle(
            NOW,
            Input::PeerConnected {
                peer: PEER,
                addr: "stranger".into(),
                direction: Direction::Inbound,
                session: TEST_SESSION,
            },
        );
        let their_nonce = std::iter::from_fn(|| node.poll_action())
            .find_map(|a| match a {
                Action::Send {
                    msg: Message::Hello(h),
                    ..
                } => Some(h.nonce),
                _ => None,
            })
            .expect("the node says hello first");
        let mut b = Bench {
            node,
            validator: keys[0].clone(),
            genesis,
            stranger: Keypair::from_label("stranger"),
            their_nonce,
        };
        if stage != Stage::AwaitingHello {
            b.deliver(b.hello());
        }
        if stage == Stage::Ready {
            b.deliver(b.proof());
        }
        b
    }

    fn hello(&self) -> Message {
        Message::Hello(self.stranger_hello())
    }

    fn stranger_hello(&self) -> Hello {
        Hello {
            version: PROTOCOL_VERSION,
            chain_id: Some(self.genesis.chain_id()),
            node_key: self.stranger.public(),
            role: Role::Listener,
            highest_round: None,
            committed_round: None,
            snapshot_round: None,
            nonce: [9; 32],
            listen_addr: None,
        }
    }

    fn proof(&self) -> Message {
        let msg = proof_message(&self.their_nonce, &TEST_SESSION, &self.stranger_hello());
        Message::HelloProof(self.stranger.sign(Domain::Handshake, &msg))
    }

    /// A message of `kind` that its handler accepts when it is admitted.
    fn sample(&self, kind: MessageKind) -> Message {
        let request = RequestId(99);
        let chain_id = self.genesis.chain_id();
        match kind {
            MessageKind::Hello => self.hello(),
            MessageKind::HelloProof => self.proof(),
            MessageKind::Reject => Message::Reject {
                reason: "no".into(),
            },
            MessageKind::GetGenesis => Message::GetGenesis { request },
            MessageKind::Genesis => Message::Genesis {
                request,
                genesis: self.genesis.clone(),
            },
            MessageKind::Vertex => Message::Vertex(
                VertexBody {
                    chain_id,
                    round: Round(0),
                    author: self.validator.public(),
                    parents: Vec::new(),
                    txs: Vec::new(),
                    attestation: None,
                    evidence: Vec::new(),
                    epoch_vote: None,
                }
                .sign(&self.validator),
            ),
            MessageKind::Status => Message::Status {
                highest_round: None,
                committed_round: None,
            },
            MessageKind::SubmitTx => Message::SubmitTx(alice_creates(&self.genesis, 0)),
            MessageKind::GetVertices => Message::GetVertices {
                request,
                hashes: Vec::new(),
            },
            MessageKind::GetRounds => Message::GetRounds {
                request,
                from: Round(0),
                to: Round(0),
            },
            MessageKind::Vertices => Message::Vertices {
                request,
                vertices: Vec::new(),
                through: None,
            },
            MessageKind::NotAvailable => Message::NotAvailable {
                request,
                reason: "gone".into(),
            },
            MessageKind::GetManifest => Message::GetManifest {
                request,
                round: None,
            },
            MessageKind::Manifest => Message::Manifest {
                request,
                manifest: Box::new(self.manifest()),
                attestations: Vec::new(),
            },
            MessageKind::GetChunk => Message::GetChunk {
                request,
                round: Round(0),
                index: 0,
            },
            MessageKind::Chunk => Message::Chunk {
                request,
                round: Round(0),
                index: 0,
                bytes: vec![1, 2, 3],
            },
            MessageKind::GetPeers => Message::GetPeers { request },
            MessageKind::Peers => Message::Peers {
                request,
                peers: Vec::new(),
            },
            MessageKind::GetChunkDelta => Message::GetChunkDelta {
                request,
                round: Round(0),
                index: 0,
                held: vec![1, 2, 3],
            },
            MessageKind::ChunkDelta => Message::ChunkDelta {
                request,
                round: Round(0),
                index: 0,
                bytes: vec![1, 2, 3],
            },
            MessageKind::GetEpochCertificates => Message::GetEpochCertificates {
                request,
                from: bluepods_core::Epoch(2),
            },
            MessageKind::EpochCertificates => Message::EpochCertificates {
                request,
                certs: Vec::new(),
            },
            MessageKind::Evidence => {
                let version = |txs| {
                    VertexBody {
                        chain_id,
                        round: Round(0),
                        author: self.validator.public(),
                        parents: Vec::new(),
                        txs,
                        attestation: None,
                        evidence: Vec::new(),
                        epoch_vote: None,
                    }
                    .sign(&self.validator)
                };
                let other = version(vec![alice_creates(&self.genesis, 0)]);
                let proof = bluepods_core::evidence::EquivocationProof::new(
                    version(vec![]).signed_header(),
                    other.signed_header(),
                )
                .expect("two versions");
                Message::Evidence(Box::new(proof))
            }
        }
    }

    fn manifest(&self) -> Manifest {
        Manifest {
            version: SNAPSHOT_FORMAT_VERSION,
            chain_id: self.genesis.chain_id(),
            round: Round(0),
            object_count: 0,
            outcome_count: 0,
            raw_bytes: 0,
            chunks: Vec::new(),
            frontier: Frontier {
                meta: ConsensusMeta::at_genesis(&self.genesis),
                committed: Vec::new(),
            },
        }
    }

    /// Delivers `msg` from the peer; what the node did.
    fn deliver(&mut self, msg: Message) -> Outcome {
        self.node.handle(NOW, Input::Message { peer: PEER, msg });
        let mut seen = Vec::new();
        while let Some(a) = self.node.poll_action() {
            seen.push(match a {
                Action::Disconnect { peer, .. } if peer == PEER => Outcome::Dropped,
                Action::Event(Event::PeerReady { .. }) => Outcome::Ready,
                Action::Send { peer, msg, .. } if peer == PEER && is_proof(&msg) => {
                    Outcome::ProofSent
                }
                Action::Send { peer, msg, .. } if peer == PEER && is_answer(&msg) => {
                    Outcome::Answered
                }
                _ => continue,
            });
        }
        // The strongest reaction names the outcome (a drop outweighs
        // anything sent before it; readiness, the requests it triggers).
        [
            Outcome::Dropped,
            Outcome::Ready,
            Outcome::ProofSent,
            Outcome::Answered,
        ]
        .into_iter()
        .find(|o| seen.contains(o))
        .unwrap_or(Outcome::Absorbed)
    }
}

fn is_proof(msg: &Message) -> bool {
    matches!(msg, Message::HelloProof(_))
}

/// An answer to a request (as opposed to a request of the node's own).
fn is_answer(msg: &Message) -> bool {
    matches!(
        msg,
        Message::Genesis { .. }
            | Message::Vertices { .. }
            | Message::Manifest { .. }
            | Message::Chunk { .. }
            | Message::Peers { .. }
            | Message::EpochCertificates { .. }
            | Message::NotAvailable { .. }
    )
}

fn expected_when_handled(next: Next) -> Outcome {
    match next {
        Next::ProofSent => Outcome::ProofSent,
        Next::PeerReady => Outcome::Ready,
        Next::Closed => Outcome::Dropped,
        Next::Answer => Outcome::Answered,
        Next::Absorbed => Outcome::Absorbed,
    }
}

fn handled_in(h: HandledIn, stage: Stage) -> bool {
    matches!(
        (h, stage),
        (HandledIn::AnyStage, _)
            | (HandledIn::AwaitingHello, Stage::AwaitingHello)
            | (HandledIn::AwaitingProof, Stage::AwaitingProof)
            | (HandledIn::Ready, Stage::Ready)
    )
}

#[test]
fn every_message_in_every_stage_does_what_the_protocol_table_says() {
    let mut failures = Vec::new();
    for rule in RULES {
        for stage in [Stage::AwaitingHello, Stage::AwaitingProof, Stage::Ready] {
            let mut b = Bench::at(stage);
            let got = b.deliver(b.sample(rule.kind));
            let want = if handled_in(rule.handled_in, stage) {
                expected_when_handled(rule.next)
            } else {
                match rule.otherwise {
                    Otherwise::DropPeer(_) => Outcome::Dropped,
                    Otherwise::Hold => Outcome::Absorbed,
                }
            };
            if got != want {
                failures.push(format!(
                    "{:?} in {stage:?}: {got:?}, table says {want:?}",
                    rule.kind
                ));
                continue;
            }
            // A held request is answered once the handshake completes.
            if !handled_in(rule.handled_in, stage) && rule.otherwise == Otherwise::Hold {
                if stage == Stage::AwaitingHello {
                    b.deliver(b.hello());
                }
                let b_proof = b.proof();
                b.node.handle(
                    NOW,
                    Input::Message {
                        peer: PEER,
                        msg: b_proof,
                    },
                );
                let answered = std::iter::from_fn(|| b.node.poll_action()).any(|a| {
                    matches!(a, Action::Send { peer, msg, .. } if peer == PEER && is_answer(&msg))
                });
                if !answered {
                    failures.push(format!(
                        "{:?} held in {stage:?} was never answered",
                        rule.kind
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
