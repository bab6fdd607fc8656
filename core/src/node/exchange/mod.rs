//! The peer-exchange mini-protocol, and whom a node connects to beyond the
//! peers it was told at start.
//!
//! - **Messages**: `GetPeers` → `Peers { peers }` (at most
//!   `max_peer_exchange` entries each way).
//! - **Requester side**: `on_peers` and the dialing policy below;
//!   **responder side**: `serve_peers`.
//! - **Tests**: `core/tests/peers.rs`, `core/tests/sync_traces.rs`.
//!
//! Validators of the current set connect to each other (the smaller key
//! dials, so each pair connects once). Any other node — a listener, or a
//! validator not in the set yet — dials up to `target_peers` validators of
//! the set, the nearest to its own key by XOR distance: deterministic, and
//! spread over the set so that many joiners do not all crowd the first
//! validator. Nodes outside the set are learned by peer exchange: a node
//! that is not a member asks each new peer for the nodes it is connected
//! to, and dials what it learns while it has fewer than twice
//! `target_peers` targets beyond its bootstrap peers (the validators above
//! count among them). Answers are bounded on both sides (`max_peer_exchange`
//! entries, addresses of at most `MAX_ADDR_LEN` bytes); a learned address
//! is only a hint — whoever answers there must still prove its key.

use crate::ids::{PeerId, Timestamp};
use crate::interface::Channel;
use crate::node::fetch::RequestKind;
use crate::node::Node;
use crate::store::Store;
use crate::wire::{Message, PeerAddress, RequestId, Role};

/// Longest address accepted from peer exchange or announced in a hello.
pub(in crate::node) const MAX_ADDR_LEN: usize = 256;

impl<S: Store> Node<S> {
    /// Whether this node is a validator of the current set.
    fn is_member(&self) -> bool {
        self.chain.as_ref().is_some_and(|c| {
            let round = c.consensus.dag().highest_round().unwrap_or_default();
            c.consensus
                .meta()
                .schedule
                .set_for_round(round)
                .contains(&self.key.public())
        }) && self.config.role == Role::Validator
    }

    /// Adds the validators this node should be connected to as dial
    /// targets (see the module docs).
    pub(in crate::node) fn connect_to_validators(&mut self, now: Timestamp) {
        let Some(chain) = &self.chain else {
            return;
        };
        let round = chain.consensus.dag().highest_round().unwrap_or_default();
        let set = chain.consensus.meta().schedule.set_for_round(round);
        let me = self.key.public();
        let own_addr = self.config.listen_addr.clone();
        let others = set
            .members()
            .iter()
            .filter(|m| m.key != me && Some(&m.address) != own_addr.as_ref());
        let addrs: Vec<String> = if self.is_member() {
            others
                .filter(|m| m.key > me)
                .map(|m| m.address.clone())
                .collect()
        } else {
            let mut near: Vec<_> = others.collect();
            near.sort_by_key(|m| {
                let mut d = [0u8; 32];
                for (i, (a, b)) in m.key.as_bytes().iter().zip(me.as_bytes()).enumerate() {
                    d[i] = a ^ b;
                }
                d
            });
            near.into_iter()
                .take(self.config.sync.target_peers)
                .map(|m| m.address.clone())
                .collect()
        };
        for addr in addrs {
            self.peers.add_target(&addr, now);
        }
        self.dial_due(now);
    }

    /// A peer became ready: a node outside the set asks it whom it knows,
    /// while it still wants more targets.
    pub(in crate::node) fn maybe_ask_for_peers(&mut self, now: Timestamp, peer: PeerId) {
        if self.is_member() || self.learned_targets() >= 2 * self.config.sync.target_peers {
            return;
        }
        self.request(now, peer, RequestKind::Peers);
    }

    fn learned_targets(&self) -> usize {
        self.peers
            .targets
            .keys()
            .filter(|a| !self.config.bootstrap_peers.contains(a))
            .count()
    }

    /// Answers a peer-exchange request: ready peers that announced an
    /// address, validators first, at most `max_peer_exchange`.
    pub(in crate::node) fn serve_peers(&mut self, peer: PeerId, request: RequestId) {
        let mut known: Vec<PeerAddress> = self
            .peers
            .ready()
            .filter(|p| p.id != peer)
            .filter_map(|p| {
                Some(PeerAddress {
                    key: p.key?,
                    role: p.role,
                    addr: p.listen_addr.clone()?,
                })
            })
            .collect();
        known.sort_by_key(|p| (p.role != Role::Validator, p.key));
        known.truncate(self.config.sync.max_peer_exchange);
        self.send(
            peer,
            Channel::Request,
            Message::Peers {
                request,
                peers: known,
            },
        );
    }

    /// A peer-exchange answer: dial what is new, up to twice
    /// `target_peers` targets beyond the bootstrap peers.
    pub(in crate::node) fn on_peers(
        &mut self,
        now: Timestamp,
        peer: PeerId,
        request: RequestId,
        peers: Vec<PeerAddress>,
    ) {
        if self.take_request(now, peer, request, 0).is_none() {
            return;
        }
        let me = self.key.public();
        let mut added = false;
        for p in peers.into_iter().take(self.config.sync.max_peer_exchange) {
            if self.learned_targets() >= 2 * self.config.sync.target_peers {
                break;
            }
            let own = Some(&p.addr) == self.config.listen_addr.as_ref();
            let connected = self.peers.ready().any(|q| q.key == Some(p.key));
            if own
                || p.key == me
                || connected
                || p.addr.is_empty()
                || p.addr.len() > MAX_ADDR_LEN
                || self.peers.targets.contains_key(&p.addr)
                || self.peers.banned_until(&p.key, now).is_some()
            {
                continue;
            }
            self.peers.add_target(&p.addr, now);
            added = true;
        }
        if added {
            self.dial_due(now);
        }
    }
}
