//! The peer table: connections, their handshake stage, what each peer told
//! us about itself, and the addresses this node keeps dialing.

use crate::crypto::{self, Domain};
use crate::ids::{Hash, PeerId, PublicKey, Round, Signature, Timestamp};
use crate::interface::Direction;
use crate::wire::{Hello, Message, Role};
use std::collections::BTreeMap;

pub use crate::peer_stats::{PeerStats, BULK_WINDOW_BDPS, MIN_BULK_WINDOW};

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
    /// The hello we sent, which our proof covers.
    pub our_hello: Box<Hello>,
    /// The connection's TLS session binding (`Input::PeerConnected`).
    pub session: [u8; 32],
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
    /// Latest snapshot round the peer announced or offered.
    pub snapshot_round: Option<Round>,
    /// The peer answered a range below this round with nothing: its
    /// history starts later (it joined from a snapshot). Range fetches
    /// below it go elsewhere.
    pub history_floor: Option<Round>,
    /// What this node measured about the peer's answers.
    pub stats: PeerStats,
    /// Messages that arrived before the peer's proof: a request travels on
    /// its own stream and may overtake the proof on the gossip stream.
    /// Handled once the proof verifies.
    pub early: Vec<Message>,
    /// Encoded bytes of `early`.
    pub early_bytes: usize,
    /// Signature checks its unsolicited gossip may still cost.
    pub gossip_checks: crate::budget::SignatureBudget,
    /// Vertices it gossiped that were of no use: repeats, or refused by
    /// the links check.
    pub useless_vertices: u32,
    /// When a failed request to it was last reported, and how many failed
    /// since without a report (`Event::RequestFailed`).
    pub failure_reported_at: Option<Timestamp>,
    /// See `failure_reported_at`.
    pub failures_unreported: u32,
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

/// What a handshake proof signs: the challenge it answers, the session it
/// is made on (keying material exported from the connection's TLS session,
/// the same at both ends of one connection and different on any other),
/// and the hash of every field of the prover's own hello. So a proof is
/// good for one challenge, on one connection, for the hello it came with: a
/// relay that passes both sides' messages through cannot be taken for
/// either side (its sessions to them differ), and cannot rewrite a hello
/// (address, role, rounds) on the way.
pub fn proof_message(their_nonce: &[u8; 32], session: &[u8; 32], own_hello: &Hello) -> Vec<u8> {
    let hello = crypto::hash_borsh(Domain::Handshake, own_hello);
    let mut out = Vec::with_capacity(96);
    out.extend_from_slice(their_nonce);
    out.extend_from_slice(session);
    out.extend_from_slice(hello.as_bytes());
    out
}

/// Checks a peer's proof over our nonce, on our session, for its hello.
pub fn check_proof(
    our_nonce: &[u8; 32],
    session: &[u8; 32],
    hello: &Hello,
    proof: &Signature,
) -> bool {
    let msg = proof_message(our_nonce, session, hello);
    crypto::verify(&hello.node_key, Domain::Handshake, &msg, proof)
}

/// An address this node keeps a connection to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DialTarget {
    /// Connected through this handle, if any.
    pub connected: Option<PeerId>,
    /// A dial is under way.
    pub dialing: bool,
    /// Failures since the last connection that completed its handshake
    /// (for backoff, and for giving up in one-shot syncs).
    pub failures: u32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
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
    /// Keys dropped once for a fault that bans on the second time (a peer
    /// that stopped reading), and until when that counts.
    warned: BTreeMap<PublicKey, Timestamp>,
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

    /// Records a first fault of `key`, to count until `until`, keeping at
    /// most `max` such records (the one that ends first goes when full).
    /// Whether `key` had one standing at `now` already: then it is banned.
    pub fn warn(&mut self, key: PublicKey, now: Timestamp, until: Timestamp, max: usize) -> bool {
        if self.warned.get(&key).is_some_and(|t| *t > now) {
            self.warned.remove(&key);
            return true;
        }
        self.warned.insert(key, until);
        while self.warned.len() > max.max(1) {
            let first = self.warned.iter().min_by_key(|(_, t)| **t).map(|(k, _)| *k);
            if let Some(k) = first {
                self.warned.remove(&k);
            }
        }
        false
    }

    /// Until when `key` is banned, if it is at `now`.
    pub fn banned_until(&self, key: &PublicKey, now: Timestamp) -> Option<Timestamp> {
        self.banned.get(key).copied().filter(|t| *t > now)
    }

    /// Keys banned at `now`, with until when.
    pub fn bans(&self, now: Timestamp) -> impl Iterator<Item = (&PublicKey, &Timestamp)> {
        self.banned.iter().filter(move |(_, t)| **t > now)
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
            last_error: None,
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

    /// Connections that may soon be ready: handshakes under way and dials
    /// in progress. An address that is known but neither (in backoff after
    /// failures, or reached already under another address) does not count.
    pub fn connecting(&self) -> usize {
        let handshaking = self.peers.values().filter(|p| !p.is_ready()).count();
        let dialing = self
            .targets
            .values()
            .filter(|t| t.dialing && t.connected.is_none())
            .count();
        handshaking + dialing
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A proof binds the nonce it answers, the session it is made on and
    /// every field of the prover's hello: replayed to another challenge,
    /// relayed onto another connection, or with any field of the hello
    /// rewritten, it does not verify (killed mutants: `proof_message`
    /// replaced by a constant, which both sides would still agree on).
    /// Postmortem (issue 11): the proof signed nonce, key and chain only, so
    /// a relay could pass both proofs through and be taken for either side,
    /// or rewrite the unsigned fields (listen address, role).
    #[test]
    fn a_handshake_proof_verifies_only_for_its_nonce_session_and_hello() {
        use crate::crypto::{Domain, Keypair};
        use crate::wire::{Hello, PROTOCOL_VERSION};
        let key = Keypair::from_label("prover");
        let hello = Hello {
            version: PROTOCOL_VERSION,
            chain_id: Some(Hash([5; 32])),
            node_key: key.public(),
            role: crate::wire::Role::Listener,
            highest_round: None,
            committed_round: None,
            snapshot_round: None,
            nonce: [0; 32],
            listen_addr: Some("127.0.0.1:7000".into()),
        };
        let (ours, session) = ([1u8; 32], [8u8; 32]);
        let proof = key.sign(Domain::Handshake, &proof_message(&ours, &session, &hello));
        assert!(check_proof(&ours, &session, &hello, &proof));
        assert!(
            !check_proof(&[2; 32], &session, &hello, &proof),
            "another challenge"
        );
        assert!(
            !check_proof(&ours, &[9; 32], &hello, &proof),
            "another connection"
        );
        let rewritten = [
            Hello {
                chain_id: Some(Hash([6; 32])),
                ..hello.clone()
            },
            Hello {
                role: crate::wire::Role::Validator,
                ..hello.clone()
            },
            Hello {
                listen_addr: Some("10.0.0.1:7000".into()),
                ..hello.clone()
            },
            Hello {
                highest_round: Some(Round(9)),
                ..hello.clone()
            },
        ];
        for h in &rewritten {
            assert!(!check_proof(&ours, &session, h, &proof), "{h:?}");
        }
        let other = Keypair::from_label("impostor");
        let theirs = other.sign(Domain::Handshake, &proof_message(&ours, &session, &hello));
        assert!(!check_proof(&ours, &session, &hello, &theirs));
    }
}
