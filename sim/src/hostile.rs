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
}

/// Range requests in one burst of a flooder.
const FLOOD_BURST: u64 = 16;

/// The transport rewrite for `hostility`, by a node holding `key`.
pub fn tamper(hostility: Hostility, key: Keypair) -> Tamper {
    let mut next_request = 1u64 << 40;
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
            (Hostility::Flooder, msg @ Message::Status { .. }) => {
                let mut out = vec![(channel, msg)];
                for _ in 0..FLOOD_BURST {
                    next_request += 1;
                    out.push((
                        Channel::Request,
                        Message::GetRounds {
                            request: RequestId(next_request),
                            from: Round(0),
                            to: Round(1_000_000),
                        },
                    ));
                }
                out
            }
            (_, msg) => vec![(channel, msg)],
        },
    )
}
