//! Hostile peers: an honest node whose transport rewrites what it sends
//! (`bluepods_drivers::transport::Tamper`). Honest nodes must ban the
//! liars, stay within their limits under a flood, and agree regardless.

use bluepods_core::wire::{Message, RequestId};
use bluepods_core::{Channel, Keypair, PeerId, Round};
use bluepods_drivers::transport::Tamper;

/// What a hostile node does to its messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hostility {
    /// Serves chunks with a flipped byte, manifests that do not match their
    /// attestations, and a genesis that does not hash to its chain id.
    Liar,
    /// Sends half of its peers another version of each of its vertices,
    /// signed with its real key.
    Equivocator,
    /// Asks for far more than it could use: a burst of wide range requests
    /// with every status message.
    Flooder,
    /// A validator of the set that has read the code (`adversary`): claims
    /// round 10^9 in every status, sends each of its vertices twice, sends
    /// with each a validly signed vertex at a round 10^9 ahead, and to half
    /// its peers a second version attesting a snapshot of a far-future
    /// round. It still produces, so the network keeps its quorum.
    Byzantine,
    /// A listener that floods wide range requests like `Flooder` and reads
    /// none of the answers (`Transport::reading_no_answers`; it starts from
    /// the genesis, since it would not read one sent to it), so that what
    /// honest nodes queue towards it piles up (`adversary`).
    Mute,
    /// One of f Byzantine validators (`byzantine`) that fork the DAG:
    /// every vertex of its own exists in two versions, both signed, the
    /// second carrying one more transaction ([`fork`]). Peers with an odd
    /// handle get the second version, the others the first; on odd rounds
    /// (where its vertex would vote for an anchor) it withholds its vertex
    /// from the odd half altogether; and every vertex of its own it serves
    /// in answer to a fetch or range request is the second version, so a
    /// joiner catching up through it learns the fork the network did not
    /// build on. With every status it also sends a proof against itself at
    /// a new far-future round ([`self_accusation`]), which honest nodes
    /// must not keep or forward once it is proven.
    Forker,
    /// A listener that has read the code (`adversary`): claims round 10^9,
    /// answers no request (withholds), floods range requests, sends every
    /// vertex it forwards three times, and with each a self-signed vertex
    /// at a far round (buffer poison).
    Pest,
}

/// Rounds ahead of the real one that poisoned vertices and claims name.
const FAR_ROUNDS: u64 = 1_000_000_000;

/// `out` and a burst of wide range requests after it.
fn flood(mut out: Vec<(Channel, Message)>, next_request: &mut u64) -> Vec<(Channel, Message)> {
    for _ in 0..FLOOD_BURST {
        *next_request += 1;
        out.push((
            Channel::Request,
            Message::GetRounds {
                request: RequestId(*next_request),
                from: Round(0),
                to: Round(1_000_000),
            },
        ));
    }
    out
}

/// A claim of a far-away round.
fn far_status() -> Message {
    Message::Status {
        highest_round: Some(Round(FAR_ROUNDS)),
        committed_round: Some(Round(FAR_ROUNDS)),
    }
}

/// `v` moved `FAR_ROUNDS` ahead, on top of it, signed by `key`.
fn far_vertex(v: &bluepods_core::vertex::Vertex, key: &Keypair) -> Message {
    let mut body = v.body.clone();
    body.parents = vec![v.hash()];
    body.round = Round(v.round().0.saturating_add(FAR_ROUNDS));
    body.author = key.public();
    body.txs.clear();
    Message::Vertex(body.sign(key))
}

/// The second version of `v`, signed by `key` (its author): the same
/// vertex plus a transaction from the author that creates an object named
/// after the round. Deterministic, so a forker makes exactly two versions of
/// each of its vertices, whoever asks.
pub fn fork(v: &bluepods_core::vertex::Vertex, key: &Keypair) -> bluepods_core::vertex::Vertex {
    use bluepods_core::tx::{Operation, TxBody};
    let round = v.round();
    let forked = v
        .body
        .txs
        .last()
        .is_some_and(|t| t.body.sender == key.public() && t.body.nonce == round.0);
    if forked {
        // Its own node may hold the second version (fetched from a peer
        // that built on it): that one is served as it is.
        return v.clone();
    }
    let mut body = v.body.clone();
    body.txs.push(
        TxBody {
            chain_id: body.chain_id,
            sender: key.public(),
            nonce: round.0,
            expiry: round.saturating_add(1_000),
            ops: vec![Operation::Create {
                data: round.0.to_le_bytes().to_vec(),
            }],
        }
        .sign(key),
    );
    body.sign(key)
}

/// A valid proof that `key` equivocated at round `FAR_ROUNDS + n`: what an
/// equivocator can sign at will, to fill others' evidence stores.
pub fn self_accusation(
    key: &Keypair,
    chain_id: bluepods_core::Hash,
    n: u64,
) -> bluepods_core::evidence::EquivocationProof {
    use bluepods_core::crypto::Domain;
    use bluepods_core::evidence::{EquivocationProof, SignedHeader};
    use bluepods_core::header::VertexHeader;
    let header = |tag: u8| {
        let header = VertexHeader {
            chain_id,
            round: Round(FAR_ROUNDS + n),
            author: key.public(),
            parents: Vec::new(),
            payload_hash: bluepods_core::Hash([tag; 32]),
        };
        let signature = key.sign(Domain::Vertex, header.hash().as_bytes());
        SignedHeader { header, signature }
    };
    EquivocationProof::new(header(1), header(2)).expect("two headers")
}

/// Range requests in one burst of a flooder.
const FLOOD_BURST: u64 = 16;

/// The transport rewrite for `hostility`, by a node holding `key`.
pub fn tamper(hostility: Hostility, key: Keypair) -> Tamper {
    let mut next_request = 1u64 << 40;
    let mut chain_id = None;
    let mut accusations = 0u64;
    Box::new(
        move |peer: PeerId, channel: Channel, msg: Message| match (hostility, msg) {
            (
                Hostility::Liar,
                Message::Chunk {
                    request,
                    round,
                    index,
                    mut bytes,
                },
            ) => {
                if let Some(b) = bytes.last_mut() {
                    *b ^= 0xff;
                }
                vec![(
                    channel,
                    Message::Chunk {
                        request,
                        round,
                        index,
                        bytes,
                    },
                )]
            }
            (
                Hostility::Liar,
                Message::Manifest {
                    request,
                    mut manifest,
                    attestations,
                },
            ) => {
                manifest.object_count += 1;
                vec![(
                    channel,
                    Message::Manifest {
                        request,
                        manifest,
                        attestations,
                    },
                )]
            }
            (
                Hostility::Liar,
                Message::Genesis {
                    request,
                    mut genesis,
                },
            ) => {
                genesis.chain_name.push_str("-forged");
                vec![(channel, Message::Genesis { request, genesis })]
            }
            (Hostility::Equivocator, Message::Vertex(v))
                if v.author() == key.public() && peer.0 % 2 == 1 =>
            {
                let mut body = v.body.clone();
                if body.txs.pop().is_none() && body.attestation.take().is_none() {
                    return vec![(channel, Message::Vertex(v))];
                }
                vec![(channel, Message::Vertex(body.sign(&key)))]
            }
            (Hostility::Forker, msg @ Message::Status { .. }) => {
                let Some(id) = chain_id else {
                    return vec![(channel, msg)];
                };
                accusations += 1;
                let proof = self_accusation(&key, id, accusations);
                vec![
                    (channel, msg),
                    (Channel::Gossip, Message::Evidence(Box::new(proof))),
                ]
            }
            (Hostility::Forker, Message::Vertex(v)) if v.author() == key.public() => {
                chain_id = Some(v.body.chain_id);
                let odd_half = peer.0 % 2 == 1;
                let voting_round = v.round().0 % 2 == 1;
                match (odd_half, voting_round) {
                    (false, _) => vec![(channel, Message::Vertex(v))],
                    (true, true) => Vec::new(),
                    (true, false) => vec![(channel, Message::Vertex(fork(&v, &key)))],
                }
            }
            (
                Hostility::Forker,
                Message::Vertices {
                    request,
                    vertices,
                    through,
                },
            ) => {
                let vertices = vertices
                    .into_iter()
                    .map(|v| {
                        if v.author() == key.public() {
                            fork(&v, &key)
                        } else {
                            v
                        }
                    })
                    .collect();
                vec![(
                    channel,
                    Message::Vertices {
                        request,
                        vertices,
                        through,
                    },
                )]
            }
            (Hostility::Flooder | Hostility::Mute, msg @ Message::Status { .. }) => {
                flood(vec![(channel, msg)], &mut next_request)
            }
            (Hostility::Byzantine, Message::Status { .. }) => vec![(channel, far_status())],
            (Hostility::Byzantine, Message::Vertex(v)) if v.author() == key.public() => {
                let mut out = vec![
                    (channel, Message::Vertex(v.clone())),
                    (channel, Message::Vertex(v.clone())),
                    (channel, far_vertex(&v, &key)),
                ];
                if peer.0 % 2 == 1 {
                    let mut body = v.body.clone();
                    body.attestation = Some(Box::new(bluepods_core::vertex::Attestation {
                        round: Round(v.round().0.saturating_add(FAR_ROUNDS)),
                        manifest_root: bluepods_core::Hash([0xEE; 32]),
                    }));
                    out.push((channel, Message::Vertex(body.sign(&key))));
                }
                out
            }
            (Hostility::Pest, Message::Status { .. }) => {
                flood(vec![(channel, far_status())], &mut next_request)
            }
            (Hostility::Pest, Message::Vertex(v)) => {
                let far = far_vertex(&v, &key);
                let copy = Message::Vertex(v);
                vec![
                    (channel, copy.clone()),
                    (channel, copy.clone()),
                    (channel, copy),
                    (channel, far),
                ]
            }
            // Withholding: an answer with data is never sent.
            (
                Hostility::Pest,
                Message::Vertices { .. }
                | Message::Chunk { .. }
                | Message::ChunkDelta { .. }
                | Message::Manifest { .. }
                | Message::Peers { .. }
                | Message::Genesis { .. },
            ) => Vec::new(),
            (_, msg) => vec![(channel, msg)],
        },
    )
}
