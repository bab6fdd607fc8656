//! The peer table: connections, their handshake stage, what each peer told
//! us about itself, and the addresses this node keeps dialing.

use crate::crypto::{self, Domain};
use crate::ids::{Hash, PeerId, PublicKey, Round, Signature, Timestamp};
use crate::interface::Direction;
use crate::wire::{Hello, Role};
use std::collections::BTreeMap;

/// Handshake progress of one connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Our hello is sent; theirs has not arrived.
    AwaitingHello,
    /// Their hello arrived; their proof has not.
    AwaitingProof(Box<Hello>),
    /// Proven and on our chain.
    Ready,
}

/// One connection.
#[derive(Clone, Debug)]
pub struct Peer {
    /// Handle.
    pub id: PeerId,
    /// Dialed address, or the remote socket address for inbound connections.
    pub addr: String,
    /// Who dialed.
    pub direction: Direction,
    /// Handshake stage.
    pub stage: Stage,
    /// The challenge we sent.
    pub our_nonce: [u8; 32],
    /// The handshake must finish by then.
    pub handshake_deadline: Timestamp,
    /// Proven key (once `Ready`).
    pub key: Option<PublicKey>,
    /// Role (once `Ready`).
    pub role: Role,
    /// Address the peer accepts connections on, if it announced one.
    pub listen_addr: Option<String>,
    /// The chain id the peer announced (once `Ready`).
    pub chain_id: Option<Hash>,
    /// Highest round the peer reported or sent.
    pub highest_round: Option<Round>,
    /// Last committed round the peer reported.
    pub committed_round: Option<Round>,
}

impl Peer {
    /// Whether the handshake is complete.
    pub fn is_ready(&self) -> bool {
        self.stage == Stage::Ready
    }

    /// Raises the known highest round.
    pub fn saw_round(&mut self, round: Round) {
        self.highest_round = Some(self.highest_round.map_or(round, |r| r.max(round)));
    }
}

/// The bytes a handshake proof signs: the challenge, the signer's key and the
/// chain id the signer believes in (zeros for none). Binding the key stops a
/// relay from reusing a proof; binding the chain stops cross-network reuse.
pub fn proof_message(nonce: &[u8; 32], signer: &PublicKey, chain: Option<&Hash>) -> Vec<u8> {
    let mut out = Vec::with_capacity(96);
    out.extend_from_slice(nonce);
    out.extend_from_slice(signer.as_bytes());
    out.extend_from_slice(chain.map_or(&[0u8; 32], |c| c.as_bytes()));
    out
}

/// Checks a peer's proof over our nonce.
pub fn check_proof(our_nonce: &[u8; 32], hello: &Hello, proof: &Signature) -> bool {
    let msg = proof_message(our_nonce, &hello.node_key, hello.chain_id.as_ref());
    crypto::verify(&hello.node_key, Domain::Handshake, &msg, proof)
}

/// An address this node keeps a connection to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DialTarget {
    /// Connected through this handle, if any.
    pub connected: Option<PeerId>,
    /// A dial is under way.
    pub dialing: bool,
    /// Consecutive failures (for backoff).
    pub failures: u32,
    /// Next attempt not before.
    pub next_attempt: Timestamp,
}

/// All connections and dial targets.
#[derive(Debug, Default)]
pub struct PeerTable {
    /// Connections by handle.
    pub peers: BTreeMap<PeerId, Peer>,
    /// Addresses to keep connected, by address.
    pub targets: BTreeMap<String, DialTarget>,
    /// Banned node keys and until when.
    banned: BTreeMap<PublicKey, Timestamp>,
}

impl PeerTable {
    /// Ready peers, in handle order.
    pub fn ready(&self) -> impl Iterator<Item = &Peer> {
        self.peers.values().filter(|p| p.is_ready())
    }

    /// The ready peer with `key`, if any.
    pub fn by_key(&self, key: &PublicKey) -> Option<&Peer> {
        self.ready().find(|p| p.key.as_ref() == Some(key))
    }

    /// Number of connections from listeners.
    pub fn listeners(&self) -> usize {
        self.ready().filter(|p| p.role == Role::Listener).count()
    }

    /// The highest round any ready peer reported.
    pub fn best_round(&self) -> Option<Round> {
        self.ready().filter_map(|p| p.highest_round).max()
    }

    /// Bans `key` until `until`, keeping at most `max` bans (the one that
    /// ends first goes when full).
    pub fn ban(&mut self, key: PublicKey, until: Timestamp, max: usize) {
        self.banned.insert(key, until);
        while self.banned.len() > max.max(1) {
            let first = self.banned.iter().min_by_key(|(_, t)| **t).map(|(k, _)| *k);
            if let Some(k) = first {
                self.banned.remove(&k);
            }
        }
    }

    /// Until when `key` is banned, if it is at `now`.
    pub fn banned_until(&self, key: &PublicKey, now: Timestamp) -> Option<Timestamp> {
        self.banned.get(key).copied().filter(|t| *t > now)
    }

    /// Number of keys banned now.
    pub fn banned_count(&self, now: Timestamp) -> usize {
        self.banned.values().filter(|t| **t > now).count()
    }

    /// Adds an address to keep connected (no-op if known).
    pub fn add_target(&mut self, addr: &str, now: Timestamp) {
        self.targets.entry(addr.to_string()).or_insert(DialTarget {
            connected: None,
            dialing: false,
            failures: 0,
            next_attempt: now,
        });
    }

    /// Targets that need a dial: not connected, not being dialed, and not
    /// reached already through a connection the other side opened (matched
    /// by dialed or announced address). `next_dial` and the dialing code use
    /// this one definition, so a timer is never armed for a target that will
    /// not be dialed (which would spin).
    pub fn dialable(&self) -> impl Iterator<Item = (&String, &DialTarget)> {
        self.targets.iter().filter(move |(addr, t)| {
            t.connected.is_none()
                && !t.dialing
                && !self
                    .peers
                    .values()
                    .any(|p| &p.addr == *addr || p.listen_addr.as_ref() == Some(*addr))
        })
    }

    /// The earliest time a target is due for dialing.
    pub fn next_dial(&self) -> Option<Timestamp> {
        self.dialable().map(|(_, t)| t.next_attempt).min()
    }

    /// The earliest handshake deadline.
    pub fn next_handshake_deadline(&self) -> Option<Timestamp> {
        self.peers
            .values()
            .filter(|p| !p.is_ready())
            .map(|p| p.handshake_deadline)
            .min()
    }
}
