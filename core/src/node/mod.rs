//! The node state machine.
//!
//! [`Node`] owns the protocol state of one BluePods node: its chain (genesis,
//! consensus, validator schedule), peers, mempool, in-flight requests and sync
//! phase. It performs no IO. Methods fall in four groups:
//!
//! - getters (`status`, `phase`, `store`, `tx_status`, …);
//! - `handle(now, Input)` and `handle_timeout(now)`, which advance the state;
//! - commands (`submit_transaction`), which return their result at once;
//! - `poll_action()` and `poll_timeout()`, which yield the outputs.
//!
//! After every `handle*` or command, drain `poll_action()` until it returns
//! `None`, then read `poll_timeout()` and call `handle_timeout` at that time.
//!
//! The behaviour is split by concern: [`handshake`](self) (connections and
//! proofs), `gossip` (vertices in and out, serving fetches), `sync`
//! (genesis adoption, catch-up, request timeouts) and `produce` (vertex
//! production, commit execution, transactions).

mod epochs;
mod exchange;
mod fetch;
mod gossip;
mod handshake;
mod init;
mod membership;
mod parts;
mod produce;
pub mod protocols;
mod proven;
mod snapshot;
mod state;
mod status;
/// Transaction submission errors.
pub mod produce_api {
    pub use super::produce::SubmitError;
}

use crate::config::NodeConfig;
use crate::consensus::Consensus;
use crate::crypto::Keypair;
use crate::genesis::Genesis;
use crate::ids::{Hash, PeerId, PublicKey, Round, Timestamp};
use crate::interface::{Action, Channel, CloseCode, Event, TimerKind};
use crate::peers::PeerTable;
use crate::phase::SyncPhase;
use crate::rng::NodeRng;
use crate::store::{read_meta, MetaKey, Store, StoreError, WriteBatch};
use crate::tx::TxStatus;
use crate::wire::Message;
use state::SyncState;
use std::collections::VecDeque;

pub use fetch::RequestKind;
pub use init::init_chain;
pub use snapshot::plan::{PlanPeer, SyncPlan};
pub use snapshot::serve::ServedSnapshot;
pub use status::{
    AppliedSnapshot, BanStatus, CandidateStatus, CatchUpStatus, DownloadStatus, EquivocationStatus,
    LeavingMember, MemberStatus, NodeStatus, OffDutyStatus, PeerStatus, PendingMember,
    UnreachableStatus, ValidatorsStatus,
};

/// The chain this node follows, once it has a genesis.
#[derive(Debug)]
pub struct Chain {
    /// The genesis document.
    pub genesis: Genesis,
    /// Its hash.
    pub chain_id: Hash,
    /// DAG, pending set, commit cursor.
    pub consensus: Consensus,
}

/// The BluePods node state machine. See the module docs for the contract.
pub struct Node<S: Store> {
    config: NodeConfig,
    key: Keypair,
    store: S,
    rng: NodeRng,
    /// Where the node is in joining or following, with that stage's data;
    /// the phase is derived from it.
    sync: SyncState,
    chain: Option<Chain>,
    peers: PeerTable,
    requests: parts::Requests,
    ranges: parts::Ranges,
    producer: parts::Production,
    txs: parts::Transactions,
    serving: parts::Serving,
    /// How far members were seen to get (claims are believed up to there).
    proven: proven::ProvenRounds,
    /// The last proven and trusted rounds, and what they came from.
    round_memo: proven::RoundMemo,
    /// Vertices whose checks passed lately (`gossip/verified.rs`).
    verified: gossip::VerifiedVertices,
    joined: parts::JoinRecord,
    clock: parts::Clock,
    /// Equivocation proofs held (`gossip/evidence.rs`).
    evidence: gossip::EvidenceBook,
    /// Certified validator sets and the votes that make them (`epochs.rs`).
    epochs: epochs::EpochBook,
    actions: VecDeque<Action>,
    halted: Option<String>,
}

impl<S: Store> Node<S> {
    /// A node over `store`. If the store holds an adopted genesis, the node
    /// resumes from it (restart); otherwise it learns the chain from its
    /// bootstrap peers. `seed` drives every random choice.
    pub fn new(
        config: NodeConfig,
        key: Keypair,
        store: S,
        seed: u64,
        now: Timestamp,
    ) -> Result<Self, StoreError> {
        let mut node = Node {
            txs: parts::Transactions::new(config.max_mempool_txs),
            rng: NodeRng::new(seed, &key),
            verified: gossip::VerifiedVertices::new(config.max_verified_vertices),
            config,
            key,
            store,
            sync: SyncState::Idle,
            chain: None,
            peers: PeerTable::default(),
            requests: parts::Requests::default(),
            ranges: parts::Ranges::default(),
            producer: parts::Production::default(),
            serving: parts::Serving::default(),
            proven: proven::ProvenRounds::default(),
            round_memo: proven::RoundMemo::default(),
            joined: parts::JoinRecord::default(),
            clock: parts::Clock::new(now),
            evidence: gossip::EvidenceBook::default(),
            epochs: epochs::EpochBook::default(),
            actions: VecDeque::new(),
            halted: None,
        };
        node.restore_snapshots()?;
        node.joined.resume = read_meta(&node.store, MetaKey::SnapshotDownload)?;
        node.producer.own_last_round = read_meta(&node.store, MetaKey::OwnLastRound)?;
        if let Some(genesis) = read_meta::<Genesis>(&node.store, MetaKey::Genesis)? {
            node.restore_chain(genesis)?;
        }
        for addr in node.config.bootstrap_peers.clone() {
            node.peers.add_target(&addr, now);
        }
        if node.config.bootstrap_peers.is_empty() && node.chain.is_some() {
            node.become_(SyncState::Live);
        } else {
            node.become_(SyncState::Connecting);
        }
        node.connect_to_validators(now);
        node.after_step(now);
        Ok(node)
    }

    // ----- getters -------------------------------------------------------

    /// The configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// The current sync phase.
    pub fn phase(&self) -> SyncPhase {
        self.sync.phase()
    }

    /// The node's public key.
    pub fn public_key(&self) -> PublicKey {
        self.key.public()
    }

    /// Gives the store back (used to restart a node on the same state).
    pub fn into_store(self) -> S {
        self.store
    }

    /// The store (read access for queries).
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The chain, once a genesis is adopted.
    pub fn chain(&self) -> Option<&Chain> {
        self.chain.as_ref()
    }

    /// The chain id, once known.
    pub fn chain_id(&self) -> Option<Hash> {
        self.chain.as_ref().map(|c| c.chain_id)
    }

    /// Last committed anchor round.
    pub fn last_committed_round(&self) -> Option<Round> {
        self.chain
            .as_ref()
            .and_then(|c| c.consensus.last_committed_round())
    }

    /// Highest DAG round held.
    pub fn highest_round(&self) -> Option<Round> {
        self.chain
            .as_ref()
            .and_then(|c| c.consensus.dag().highest_round())
    }

    /// Equivocation proofs held, by round.
    pub fn evidence(&self) -> impl Iterator<Item = &crate::evidence::EquivocationProof> {
        self.evidence.proofs()
    }

    /// The snapshot this node joined from, if it did.
    pub fn applied_snapshot(&self) -> Option<AppliedSnapshot> {
        self.joined.applied
    }

    /// Whether this node started on state of its own: committed rounds
    /// and no interrupted snapshot download to finish.
    pub fn has_own_state(&self) -> bool {
        self.joined.resume.is_none() && self.last_committed_round().is_some()
    }

    /// After joining from a snapshot: the round at which this node's state
    /// was compared with what a quorum of validators attested, and whether
    /// it matched.
    pub fn state_verification(&self) -> Option<(Round, bool)> {
        self.joined.verified
    }

    /// Records an attestation carried by an accepted vertex.
    fn note_attestation(&mut self, v: &crate::vertex::Vertex, hash: Hash) {
        if let Some(a) = &v.body.attestation {
            self.serving
                .attestations
                .note(v.author(), v.round(), a, hash);
        }
    }

    /// Why the node stopped, if it did.
    pub fn halted(&self) -> Option<&str> {
        self.halted.as_deref()
    }

    /// The status of a transaction.
    pub fn tx_status(&self, hash: &Hash) -> Result<TxStatus, StoreError> {
        if let Some(outcome) = self.store.tx_outcome(hash)? {
            return Ok(outcome.into());
        }
        if self.txs.mempool.contains(hash) || self.txs.forwarded_set.contains(hash) {
            return Ok(TxStatus::Pending);
        }
        Ok(if self.txs.in_dag.contains_key(hash) {
            TxStatus::Pending
        } else {
            TxStatus::Unknown
        })
    }

    // ----- outputs -------------------------------------------------------

    /// The next action, if any. Drain until `None` after every call that
    /// changes the node.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The earliest time the node wants `handle_timeout`, and why.
    pub fn poll_timeout(&self) -> Option<(Timestamp, TimerKind)> {
        if self.halted.is_some() || matches!(self.sync, SyncState::Failed) {
            return None;
        }
        let mut timers = vec![
            self.producer.produce_at.map(|t| (t, TimerKind::Produce)),
            self.peers
                .next_handshake_deadline()
                .map(|t| (t, TimerKind::Handshake)),
            self.requests
                .in_flight
                .values()
                .map(|r| r.deadline)
                .min()
                .map(|t| (t, TimerKind::Request)),
            self.peers.next_dial().map(|t| (t, TimerKind::Reconnect)),
        ];
        if self.chain.is_some() && self.peers.ready().next().is_some() {
            timers.push(Some((self.clock.next_status_at, TimerKind::Status)));
        }
        // The sync deadlines. One already past changed nothing when it
        // fired (the step at `last_now` saw it): it is no deadline any more.
        timers.extend(
            self.sync_deadlines()
                .into_iter()
                .map(|t| t.filter(|(at, _)| *at > self.clock.last_now)),
        );
        timers.into_iter().flatten().min()
    }

    // ----- inputs --------------------------------------------------------

    /// Advances timers due at `now`.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        if self.halted.is_some() {
            return;
        }
        let result = self.on_timeout(now);
        self.finish(now, result);
        // A timer still due after it fired would wake the driver at once,
        // forever: every deadline must move on or go.
        debug_assert!(
            self.poll_timeout().is_none_or(|(at, _)| at > now),
            "timer {:?} does not advance past {now:?}",
            self.poll_timeout()
        );
    }

    /// Handles one input.
    pub fn handle(&mut self, now: Timestamp, input: crate::interface::Input) {
        if self.halted.is_some() {
            return;
        }
        self.clock.last_now = now;
        let result = self.on_input(now, input);
        self.finish(now, result);
    }

    fn on_timeout(&mut self, now: Timestamp) -> Result<(), StoreError> {
        self.clock.last_now = now;
        self.expire_handshakes(now);
        self.expire_requests(now)?;
        self.dial_due(now);
        if now >= self.clock.next_status_at {
            self.clock.next_status_at = now.plus_ms(self.config.status_interval_ms);
            self.broadcast_status();
        }
        // A download that stalls still reports, so its rate is seen to drop.
        self.report_progress(now)
    }

    fn on_input(
        &mut self,
        now: Timestamp,
        input: crate::interface::Input,
    ) -> Result<(), StoreError> {
        use crate::interface::Input;
        match input {
            Input::PeerConnected {
                peer,
                addr,
                direction,
                session,
            } => self.on_connected(now, peer, addr, direction, session),
            Input::ConnectFailed { addr, reason } => self.on_connect_failed(now, &addr, &reason),
            Input::PeerDisconnected { peer, reason } => {
                // The transport's reason quotes the peer's close reason.
                self.on_disconnected(now, peer, &crate::wire::printable(&reason))?
            }
            Input::SendQueueFull { peer, queued_bytes } => {
                self.emit(Event::LimitHit {
                    limit: crate::interface::Limit::SendQueue,
                });
                let reason = format!("peer does not read: {queued_bytes} bytes queued towards it");
                // Once may be an honest peer on a bad link; a key that
                // does it again within a ban period is banned.
                let key = self.peers.peers.get(&peer).and_then(|p| p.key);
                let until = now.plus_ms(self.config.ban_duration_ms);
                let max = self.config.max_banned_peers;
                if key.is_some_and(|k| self.peers.warn(k, now, until, max)) {
                    self.ban_peer(now, peer, &format!("{reason}, again"));
                } else if self.peers.peers.contains_key(&peer) {
                    self.drop_peer(peer, CloseCode::Refused, &reason);
                } else {
                    // Forgotten already: the driver, which stopped sending
                    // to it, must still close the connection.
                    self.push(Action::Disconnect {
                        peer,
                        reason,
                        code: CloseCode::Refused,
                    });
                }
            }
            Input::MalformedMessage { peer, error } => {
                self.ban_peer(now, peer, &format!("malformed message: {error}"));
            }
            Input::Message { peer, msg } => self.on_message(now, peer, msg)?,
            Input::SnapshotChunk {
                round,
                index,
                bytes,
            } => self.on_snapshot_chunk(round, index, bytes)?,
            Input::SnapshotBuilt { manifest } => self.on_snapshot_built(now, *manifest)?,
            Input::SnapshotFailed { round, error } => self.on_snapshot_failed(round, error)?,
            Input::ChunkChecked(checked) => self.on_chunk_checked(now, checked)?,
            Input::ChunksStaged(staged) => self.on_chunks_staged(now, staged)?,
        }
        Ok(())
    }

    /// Common tail of every step: drive sync and production, or halt on a
    /// storage failure.
    fn finish(&mut self, now: Timestamp, result: Result<(), StoreError>) {
        let result = result.and_then(|()| self.after_step_checked(now));
        if let Err(e) = result {
            self.halt(e);
        }
    }

    fn after_step(&mut self, now: Timestamp) {
        self.clock.last_now = now;
        if let Err(e) = self.after_step_checked(now) {
            self.halt(e);
        }
    }

    fn after_step_checked(&mut self, now: Timestamp) -> Result<(), StoreError> {
        self.drive_sync(now)?;
        self.maybe_register(now)?;
        self.maybe_approve(now)?;
        let _ = self.fetch_certificates(now);
        self.maybe_produce(now)?;
        Ok(())
    }

    fn halt(&mut self, e: StoreError) {
        let error = e.to_string();
        self.emit(Event::StorageFailed {
            error: error.clone(),
        });
        self.halted = Some(error);
        self.producer.produce_at = None;
    }

    fn on_message(&mut self, now: Timestamp, peer: PeerId, msg: Message) -> Result<(), StoreError> {
        // Who may send what, in which stage: the table in `protocols.rs`.
        let kind = protocols::MessageKind::of(&msg);
        let refused = match self.peers.peers.get(&peer) {
            Some(p) => protocols::admission(&p.stage, &msg),
            // A peer already forgotten: its handshake messages find
            // nothing to act on; anything else drops the connection.
            None if protocols::rule_of(kind).protocol == protocols::Protocol::Handshake => None,
            None => Some(protocols::Otherwise::DropPeer(
                "too many messages before handshake completed",
            )),
        };
        match refused {
            None => {}
            Some(protocols::Otherwise::Hold) => {
                // The other side may finish first and ask at once; its
                // request can overtake its proof. Keep a few for later.
                let (limit, limit_bytes) = (
                    self.config.max_early_messages,
                    self.config.max_early_message_bytes,
                );
                let bytes = borsh::object_length(&msg).unwrap_or(usize::MAX);
                match self.peers.peers.get_mut(&peer) {
                    Some(p)
                        if p.early.len() < limit
                            && p.early_bytes.saturating_add(bytes) <= limit_bytes =>
                    {
                        p.early_bytes += bytes;
                        p.early.push(msg);
                    }
                    _ => {
                        self.emit(Event::LimitHit {
                            limit: crate::interface::Limit::EarlyMessages,
                        });
                        self.drop_peer(
                            peer,
                            CloseCode::Violation,
                            "too many messages before handshake completed",
                        );
                    }
                }
                return Ok(());
            }
            Some(protocols::Otherwise::DropPeer(reason)) => {
                self.drop_peer(peer, CloseCode::Violation, reason);
                return Ok(());
            }
        }
        match msg {
            Message::Hello(hello) => self.on_hello(now, peer, hello),
            Message::HelloProof(sig) => self.on_proof(now, peer, sig)?,
            Message::Reject { reason } => {
                let reason = format!("peer refused us: {}", crate::wire::printable(&reason));
                self.drop_peer(peer, CloseCode::Refused, &reason);
            }
            Message::GetGenesis { request } => self.serve_genesis(peer, request),
            Message::Genesis { request, genesis } => {
                self.on_genesis(now, peer, request, genesis)?
            }
            Message::Vertex(v) => self.on_gossip_vertex(now, peer, v)?,
            Message::Evidence(proof) => self.on_evidence(now, peer, *proof),
            Message::GetVertices { request, hashes } => {
                self.serve_vertices(peer, request, hashes)?
            }
            Message::GetRounds { request, from, to } => {
                self.serve_rounds(peer, request, from, to)?
            }
            Message::Vertices {
                request,
                vertices,
                through,
            } => self.on_vertices(now, peer, request, vertices, through)?,
            Message::SubmitTx(tx) => self.on_forwarded_tx(now, peer, tx)?,
            Message::Status {
                highest_round,
                committed_round,
            } => {
                if let Some(p) = self.peers.peers.get_mut(&peer) {
                    if let Some(r) = highest_round {
                        p.saw_round(r);
                    }
                    p.committed_round = committed_round.or(p.committed_round);
                }
            }
            Message::GetManifest { request, round } => {
                self.serve_manifest(now, peer, request, round)
            }
            Message::GetChunk {
                request,
                round,
                index,
            } => self.serve_chunk(now, peer, request, round, index)?,
            Message::Manifest {
                request,
                manifest,
                attestations,
            } => self.on_manifest(now, peer, request, *manifest, attestations)?,
            Message::Chunk {
                request,
                round,
                index,
                bytes,
            } => {
                let payload = snapshot::ChunkPayload::Whole(bytes);
                self.on_chunk(now, peer, request, round, index, payload)?
            }
            Message::GetChunkDelta {
                request,
                round,
                index,
                held,
            } => self.serve_chunk_delta(now, peer, request, round, index, held)?,
            Message::ChunkDelta {
                request,
                round,
                index,
                bytes,
            } => {
                let payload = snapshot::ChunkPayload::Delta(bytes);
                self.on_chunk(now, peer, request, round, index, payload)?
            }
            Message::NotAvailable { request, reason } => {
                let reason = crate::wire::printable(&reason);
                self.on_not_available(now, peer, request, &reason)?
            }
            Message::GetPeers { request } => self.serve_peers(peer, request),
            Message::Peers { request, peers } => self.on_peers(now, peer, request, peers),
            Message::GetEpochCertificates { request, from } => {
                self.serve_epoch_certificates(peer, request, from)?
            }
            Message::EpochCertificates { request, certs } => {
                self.on_epoch_certificates(now, peer, request, certs)?
            }
        }
        Ok(())
    }

    // ----- helpers -------------------------------------------------------

    fn push(&mut self, action: Action) {
        self.actions.push_back(action);
    }

    fn emit(&mut self, event: Event) {
        self.actions.push_back(Action::Event(event));
    }

    fn send(&mut self, peer: PeerId, channel: Channel, msg: Message) {
        self.push(Action::Send { peer, channel, msg });
    }

    fn write(&mut self, batch: WriteBatch) -> Result<(), StoreError> {
        self.store.write(batch)
    }
}
