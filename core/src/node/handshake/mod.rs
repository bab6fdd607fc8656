//! The handshake mini-protocol, and the connections it runs on.
//!
//! - **Messages**: `Hello` (version, chain id, node key, role, rounds, a
//!   fresh nonce), `HelloProof` (the sender's signature over our nonce,
//!   its key and its chain), `Reject` (why we refuse). Then, for a node
//!   without a chain, `GetGenesis` / `Genesis` (`genesis.rs`).
//! - **Both sides** run the same steps: on a connection each sends its
//!   hello; on the other's hello (stage `AwaitingHello`) it checks version
//!   and chain and answers with its proof; on the other's proof (stage
//!   `AwaitingProof`) the peer is ready. Which message is handled in which
//!   stage, and what happens otherwise, is the table in `protocols.rs`.
//! - Also here: dialing and redialing with backoff, duplicate connections,
//!   bans, disconnects.
//! - **Tests**: `core/tests/protocol_table.rs` (every message in every
//!   stage), `core/tests/regressions.rs` (a request overtaking the proof),
//!   the fuzz target `handshake`.

mod genesis;

use crate::crypto::Domain;
use crate::ids::{PeerId, Signature, Timestamp};
use crate::interface::{Action, Channel, CloseCode, Direction, Event, Limit};
use crate::node::Node;
use crate::peers::{check_proof, proof_message, Peer, Stage};
use crate::store::{Store, StoreError};
use crate::wire::{Hello, Message, Role, PROTOCOL_VERSION};

impl<S: Store> Node<S> {
    /// Our hello for a connection whose challenge is `nonce`.
    fn hello(&self, nonce: [u8; 32]) -> Hello {
        Hello {
            version: PROTOCOL_VERSION,
            chain_id: self.chain_id(),
            node_key: self.key.public(),
            role: self.config.role,
            highest_round: self.highest_round(),
            committed_round: self.last_committed_round(),
            snapshot_round: self.latest_snapshot_round(),
            nonce,
            listen_addr: self.config.listen_addr.clone(),
        }
    }

    pub(in crate::node) fn on_connected(
        &mut self,
        now: Timestamp,
        peer: PeerId,
        addr: String,
        direction: Direction,
        session: [u8; 32],
    ) {
        if direction == Direction::Outbound {
            if let Some(t) = self.peers.targets.get_mut(&addr) {
                t.dialing = false;
                t.connected = Some(peer);
            }
        }
        let unproven = self
            .peers
            .peers
            .values()
            .filter(|p| p.direction == Direction::Inbound && !p.is_ready())
            .count();
        let full = self.peers.peers.len() >= self.config.max_peers;
        let crowded = direction == Direction::Inbound && unproven >= self.config.max_unproven_peers;
        if full || crowded {
            self.emit(Event::LimitHit {
                limit: Limit::Peers,
            });
            let reason = if full {
                "too many peers"
            } else {
                "too many handshakes in progress"
            };
            self.push(Action::Disconnect {
                peer,
                reason: reason.into(),
                code: CloseCode::Refused,
            });
            return;
        }
        let nonce = self.rng.bytes32();
        let hello = self.hello(nonce);
        self.peers.peers.insert(
            peer,
            Peer {
                id: peer,
                addr,
                direction,
                stage: Stage::AwaitingHello,
                our_nonce: nonce,
                our_hello: Box::new(hello.clone()),
                session,
                handshake_deadline: now.plus_ms(self.config.sync.connection_timeout_ms),
                key: None,
                role: Role::Listener,
                listen_addr: None,
                chain_id: None,
                highest_round: None,
                committed_round: None,
                snapshot_round: None,
                history_floor: None,
                stats: Default::default(),
                early: Vec::new(),
                early_bytes: 0,
                gossip_checks: Default::default(),
                useless_vertices: 0,
                failure_reported_at: None,
                failures_unreported: 0,
            },
        );
        if matches!(self.sync, crate::node::state::SyncState::Connecting) {
            self.become_(crate::node::state::SyncState::Handshake);
        }
        self.send(peer, Channel::Gossip, Message::Hello(hello));
    }

    pub(in crate::node) fn on_hello(&mut self, now: Timestamp, peer: PeerId, hello: Hello) {
        let _ = now;
        // The stage (awaiting their hello) is checked by the protocol
        // table before this runs.
        if !self.peers.peers.contains_key(&peer) {
            return;
        }
        if let Err(reason) = self.check_hello(&hello) {
            self.send(
                peer,
                Channel::Gossip,
                Message::Reject {
                    reason: reason.clone(),
                },
            );
            return self.drop_peer(peer, CloseCode::Refused, &reason);
        }
        // Sign the hello we sent, which is what the peer checks.
        let Some(p) = self.peers.peers.get_mut(&peer) else {
            return;
        };
        let msg = proof_message(&hello.nonce, &p.session, &p.our_hello);
        p.stage = Stage::AwaitingProof(Box::new(hello));
        let proof = self.key.sign(Domain::Handshake, &msg);
        self.send(peer, Channel::Gossip, Message::HelloProof(proof));
    }

    /// Whether `key` belongs to the validator set at the highest round
    /// held, or from an epoch to come (a committed registration); not a
    /// member that left. What a peer claims in its hello counts for nothing
    /// here.
    pub(in crate::node) fn is_known_validator(&self, key: &crate::ids::PublicKey) -> bool {
        self.chain.as_ref().is_some_and(|c| {
            let schedule = &c.consensus.meta().schedule;
            let round = c.consensus.dag().highest_round().unwrap_or_default();
            schedule.counts_at(key, schedule.epoch_of(round))
        })
    }

    /// Ready peers that take listener slots: all but known validators.
    fn listener_peers(&self) -> usize {
        self.peers
            .ready()
            .filter(|p| !p.key.as_ref().is_some_and(|k| self.is_known_validator(k)))
            .count()
    }

    /// Version, chain and identity checks on a peer's hello.
    fn check_hello(&self, hello: &Hello) -> Result<(), String> {
        if hello.version != PROTOCOL_VERSION {
            return Err(format!(
                "protocol version mismatch: ours {PROTOCOL_VERSION}, theirs {}",
                hello.version
            ));
        }
        if hello.node_key == self.key.public() {
            return Err("connected to ourselves".into());
        }
        // Announced addresses are stored, shown and handed on in peer
        // exchange: bounded and printable, like the addresses learned there.
        let max = crate::node::exchange::MAX_ADDR_LEN;
        if let Some(addr) = &hello.listen_addr {
            if addr.len() > max || addr.chars().any(char::is_control) {
                return Err(format!(
                    "listen address of {} bytes, or not printable (at most {max})",
                    addr.len()
                ));
            }
        }
        let ours = self.chain_id().or(self.config.trusted_chain_id);
        match (ours, hello.chain_id) {
            (Some(a), Some(b)) if a != b => Err(format!("chain mismatch: ours {a}, theirs {b}")),
            (None, None) => Err("neither side knows a chain".into()),
            _ => Ok(()),
        }
    }

    pub(in crate::node) fn on_proof(
        &mut self,
        now: Timestamp,
        peer: PeerId,
        sig: Signature,
    ) -> Result<(), StoreError> {
        let Some(p) = self.peers.peers.get(&peer) else {
            return Ok(());
        };
        let Stage::AwaitingProof(hello) = &p.stage else {
            self.drop_peer(peer, CloseCode::Violation, "proof before hello");
            return Ok(());
        };
        let hello = (**hello).clone();
        if !check_proof(&p.our_nonce, &p.session, &hello, &sig) {
            self.drop_peer(
                peer,
                CloseCode::Violation,
                "handshake proof does not verify",
            );
            return Ok(());
        }
        if !self.is_known_validator(&hello.node_key)
            && self.listener_peers() >= self.config.max_listener_peers
        {
            self.emit(Event::LimitHit {
                limit: Limit::Peers,
            });
            self.drop_peer(peer, CloseCode::Refused, "too many listener peers");
            return Ok(());
        }
        if let Some(existing) = self
            .peers
            .by_key(&hello.node_key)
            .map(|e| (e.id, e.direction))
        {
            if !self.keep_new_duplicate(peer, existing) {
                self.drop_peer(peer, CloseCode::Refused, "duplicate connection");
                return Ok(());
            }
            self.drop_peer(existing.0, CloseCode::Refused, "duplicate connection");
        }
        let p = self.peers.peers.get_mut(&peer).expect("checked above");
        p.stage = Stage::Ready;
        p.key = Some(hello.node_key);
        p.role = hello.role;
        p.listen_addr = hello.listen_addr.clone();
        p.chain_id = hello.chain_id;
        p.highest_round = hello.highest_round;
        p.committed_round = hello.committed_round;
        p.snapshot_round = hello.snapshot_round;
        let (addr, outbound) = (p.addr.clone(), p.direction == Direction::Outbound);
        if let Some(t) = self.peers.targets.get_mut(&addr).filter(|_| outbound) {
            t.failures = 0;
            t.last_error = None;
        }
        self.emit(Event::PeerReady {
            peer,
            key: hello.node_key,
            role: hello.role,
            addr,
            outbound,
        });
        self.maybe_ask_for_peers(now, peer);
        self.send_latest_own_vertex(peer);
        let ready = self.peers.peers.get_mut(&peer).expect("ready");
        ready.early_bytes = 0;
        let early = std::mem::take(&mut ready.early);
        for msg in early {
            if !self.peers.peers.contains_key(&peer) {
                break; // dropped for one of them
            }
            self.on_message(now, peer, msg)?;
        }
        Ok(())
    }

    /// Gossip carries only new vertices, so one produced before a peer was
    /// connected never reaches it by itself: genesis validators produce
    /// round 0 before they are connected, and a network would start with a
    /// stall (`stall_timeout_ms`) and a range fetch. A validator therefore
    /// sends its latest vertex to each peer that becomes ready; the
    /// peer fetches its ancestors as usual.
    fn send_latest_own_vertex(&mut self, peer: PeerId) {
        let (Some(round), Some(chain)) = (self.producer.own_last_round, self.chain.as_ref()) else {
            return;
        };
        let dag = chain.consensus.dag();
        let Some(v) = dag
            .by_author(round, &self.key.public())
            .first()
            .and_then(|h| dag.get(h))
        else {
            return;
        };
        let msg = Message::Vertex((*v.vertex).clone());
        self.send(peer, Channel::Gossip, msg);
    }

    /// Two connections to one node: both sides keep the one dialed by the
    /// smaller key, so they agree without talking. Same direction: the newer
    /// wins (the older is likely dead).
    fn keep_new_duplicate(&self, new: PeerId, existing: (PeerId, Direction)) -> bool {
        let new_dir = self.peers.peers[&new].direction;
        if new_dir == existing.1 {
            return true;
        }
        let theirs = match &self.peers.peers[&new].stage {
            Stage::AwaitingProof(h) => h.node_key,
            _ => return false,
        };
        let we_dial = self.key.public() < theirs;
        (new_dir == Direction::Outbound) == we_dial
    }

    pub(in crate::node) fn expire_handshakes(&mut self, now: Timestamp) {
        let late: Vec<PeerId> = self
            .peers
            .peers
            .values()
            .filter(|p| !p.is_ready() && p.handshake_deadline <= now)
            .map(|p| p.id)
            .collect();
        for peer in late {
            self.drop_peer(peer, CloseCode::Refused, "handshake timed out");
        }
    }

    /// Punishes a proven liar: its key is banned for `ban_duration_ms` (its
    /// handshakes are refused, its address is not redialed), then it is
    /// dropped. Only keys proven in the handshake are banned, so nobody can
    /// get another node banned by claiming its key. A peer that is merely
    /// slow or unlucky is never banned.
    pub(in crate::node) fn ban_peer(&mut self, now: Timestamp, peer: PeerId, fault: &str) {
        let Some(p) = self.peers.peers.get(&peer) else {
            return;
        };
        if let Some(key) = p.key.filter(|_| p.is_ready()) {
            let until = now.plus_ms(self.config.ban_duration_ms);
            let addr = p.addr.clone();
            let addrs = [Some(addr.clone()), p.listen_addr.clone()];
            self.peers.ban(key, until, self.config.max_banned_peers);
            for addr in addrs.into_iter().flatten() {
                if let Some(t) = self.peers.targets.get_mut(&addr) {
                    t.next_attempt = t.next_attempt.max(until);
                }
            }
            self.emit(Event::PeerBanned {
                peer,
                addr,
                key,
                reason: fault.to_string(),
                until,
            });
        }
        self.drop_peer(peer, CloseCode::Violation, fault);
    }

    /// Refuses a peer for a protocol reason: event, disconnect with `code`,
    /// forget. Once forgotten, whatever else arrives on the connection is
    /// ignored, so a peer is reported once however many bad frames it sent.
    pub(in crate::node) fn drop_peer(&mut self, peer: PeerId, code: CloseCode, reason: &str) {
        let Some(p) = self.peers.peers.get(&peer) else {
            return;
        };
        self.emit(Event::PeerRejected {
            peer,
            addr: p.addr.clone(),
            reason: reason.to_string(),
        });
        self.push(Action::Disconnect {
            peer,
            reason: reason.to_string(),
            code,
        });
        self.remove_peer(peer);
    }

    fn remove_peer(&mut self, peer: PeerId) {
        self.peers.peers.remove(&peer);
        for t in self.peers.targets.values_mut() {
            if t.connected == Some(peer) {
                t.connected = None;
                t.failures += 1;
            }
        }
    }

    pub(in crate::node) fn on_disconnected(
        &mut self,
        now: Timestamp,
        peer: PeerId,
        reason: &str,
    ) -> Result<(), StoreError> {
        if self.peers.peers.contains_key(&peer) {
            self.emit(Event::PeerGone {
                peer,
                reason: reason.to_string(),
            });
        }
        self.remove_peer(peer);
        self.schedule_redials(now);
        self.reassign_requests_of(now, peer)
    }

    /// A dial failed: back off, and say so (address, attempt, reason, when
    /// the next one is due), so an unreachable peer is never silent.
    pub(in crate::node) fn on_connect_failed(&mut self, now: Timestamp, addr: &str, reason: &str) {
        let reason = crate::wire::printable(reason);
        let Some(t) = self.peers.targets.get_mut(addr) else {
            return;
        };
        t.dialing = false;
        t.failures += 1;
        t.last_error = Some(reason.clone());
        let attempt = t.failures;
        self.schedule_redials(now);
        let retry_in_ms = self.peers.targets[addr].next_attempt.ms_since(now);
        self.emit(Event::DialFailed {
            addr: addr.to_string(),
            attempt,
            attempts_max: self.config.sync.retry_attempts,
            reason,
            retry_in_ms,
        });
    }

    /// Why a one-shot sync should give up, if it should: no connection
    /// completed its handshake, and every bootstrap address failed
    /// `sync.retry_attempts` times in a row. A daemon never gives up on
    /// peers (it keeps backing off); `--sync-snapshot` and `--sync-full`
    /// exit with this reason.
    pub fn unreachable_bootstraps(&self) -> Option<String> {
        let max = self.config.sync.retry_attempts.max(1);
        if self.config.bootstrap_peers.is_empty() || self.peers.ready().next().is_some() {
            return None;
        }
        let mut why = Vec::new();
        for addr in &self.config.bootstrap_peers {
            let t = self.peers.targets.get(addr)?;
            if t.failures < max {
                return None;
            }
            let last = t.last_error.as_deref().unwrap_or("no handshake");
            why.push(format!("{addr} ({last})"));
        }
        Some(format!(
            "no bootstrap peer reachable after {max} attempts each: {}",
            why.join("; ")
        ))
    }

    /// Sets the next attempt of every disconnected target that has none due,
    /// with exponential backoff and jitter from the seeded generator.
    fn schedule_redials(&mut self, now: Timestamp) {
        let base = self.config.reconnect_backoff_ms_base;
        let max = self.config.reconnect_backoff_ms_max;
        let addrs: Vec<String> = self
            .peers
            .targets
            .iter()
            .filter(|(_, t)| t.connected.is_none() && !t.dialing && t.next_attempt <= now)
            .map(|(a, _)| a.clone())
            .collect();
        for addr in addrs {
            let jitter = self.rng.below(base.max(1));
            let t = self.peers.targets.get_mut(&addr).expect("listed above");
            let backoff = base.saturating_mul(1 << t.failures.min(16)).min(max);
            t.next_attempt = now.plus_ms(backoff + jitter);
        }
    }

    /// Dials every target that is due and not connected.
    pub(in crate::node) fn dial_due(&mut self, now: Timestamp) {
        let due: Vec<String> = self
            .peers
            .dialable()
            .filter(|(_, t)| t.next_attempt <= now)
            .map(|(a, _)| a.clone())
            .collect();
        for addr in due {
            if let Some(t) = self.peers.targets.get_mut(&addr) {
                t.dialing = true;
            }
            self.push(Action::Connect { addr });
        }
    }
}
