//! The event loop: the only place where the core meets IO.
//!
//! It waits on three things — the network, local commands (HTTP, CLI) and one
//! sleep until the core's next timeout — converts what arrives into a core
//! input stamped with the clock's `now`, calls the core, then drains and
//! executes every action. It decides nothing itself: no retries, timeouts or
//! request ids of its own. `select!` is `biased` so that, under a simulated
//! clock, the same inputs are always taken in the same order; after
//! `MAX_COMMANDS_IN_A_ROW` commands everything else that waits gets a turn,
//! so an HTTP flood cannot starve peers.
//!
//! The loop is generic over the clock and the store; the transport takes any
//! quinn endpoint. That is the seam the simulator uses.

use crate::transport::{NetEvent, Transport};
use bluepods_core::node::produce_api::SubmitError;
use bluepods_core::snapshot::StateDump;
use bluepods_core::tx::{Object, TxStatus};
use bluepods_core::{
    Action, Event, Hash, Input, Node, NodeStatus, ObjectId, PeerId, Store, SyncPhase, Timestamp,
    Transaction,
};
use tokio::sync::{mpsc, oneshot};

/// Chunk reads running at once, and chunk answers read but not yet handed
/// to the transport: what peers' chunk requests can pin in memory here is
/// at most twice this many chunks (3 MiB each at most), however many
/// requests they send.
const MAX_CHUNK_READS: usize = 8;

/// Commands (HTTP, CLI) served in a row before whatever else waits gets a
/// turn. The loop's `select!` is biased (so a simulated run always takes
/// inputs in the same order) with commands first; without this, a flood of
/// HTTP requests kept peers' messages and the node's own timers waiting.
const MAX_COMMANDS_IN_A_ROW: usize = 8;

/// How long a stopping node waits for queued gossip to leave.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// A monotonic clock in the core's units.
pub trait Clock: Send {
    /// Milliseconds since the clock's start.
    fn now(&self) -> Timestamp;
    /// The instant at which `t` is reached, for sleeping.
    fn instant(&self, t: Timestamp) -> tokio::time::Instant;
}

/// tokio's clock (real in production, simulated under turmoil).
pub struct TokioClock {
    start: tokio::time::Instant,
}

impl TokioClock {
    /// A clock starting now.
    pub fn new() -> Self {
        TokioClock {
            start: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.start.elapsed().as_millis() as u64)
    }

    fn instant(&self, t: Timestamp) -> tokio::time::Instant {
        self.start + std::time::Duration::from_millis(t.0)
    }
}

/// A request from a local client to the node.
pub enum Command {
    /// Current status.
    Status(oneshot::Sender<NodeStatus>),
    /// Submit a transaction.
    Submit(Box<Transaction>, oneshot::Sender<Result<Hash, SubmitError>>),
    /// A transaction's status.
    TxStatus(Hash, oneshot::Sender<Result<TxStatus, String>>),
    /// An object by id.
    Object(ObjectId, oneshot::Sender<Result<Option<Object>, String>>),
    /// A consistent view of the committed state, to write out as
    /// `--dump-state` text off the loop.
    DumpState(oneshot::Sender<Result<StateDump, String>>),
    /// The servable snapshots.
    Snapshots(oneshot::Sender<Vec<SnapshotInfo>>),
    /// The validator set (`None` before the node has a chain).
    Validators(oneshot::Sender<Option<bluepods_core::ValidatorsStatus>>),
    /// Stop the node.
    Shutdown,
}

/// A servable snapshot as the API lists it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SnapshotInfo {
    /// Round.
    pub round: bluepods_core::Round,
    /// Manifest root.
    pub root: Hash,
    /// Objects.
    pub objects: u64,
    /// Transaction outcomes.
    pub outcomes: u64,
    /// Chunks.
    pub chunks: usize,
    /// Raw bytes.
    pub raw_bytes: u64,
}

/// A cloneable handle to send commands to a running event loop.
#[derive(Clone)]
pub struct NodeHandle {
    tx: mpsc::Sender<Command>,
}

/// The node has stopped.
#[derive(Debug, thiserror::Error)]
#[error("the node has stopped")]
pub struct Stopped;

impl NodeHandle {
    /// A handle over a command channel (tests answer the commands).
    #[cfg(test)]
    pub(crate) fn over(tx: mpsc::Sender<Command>) -> Self {
        NodeHandle { tx }
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Stopped> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).await.map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }

    /// The node's status.
    pub async fn status(&self) -> Result<NodeStatus, Stopped> {
        self.ask(Command::Status).await
    }

    /// Submits a transaction.
    pub async fn submit(&self, tx: Transaction) -> Result<Result<Hash, SubmitError>, Stopped> {
        self.ask(|r| Command::Submit(Box::new(tx), r)).await
    }

    /// A transaction's status.
    pub async fn tx_status(&self, hash: Hash) -> Result<Result<TxStatus, String>, Stopped> {
        self.ask(|r| Command::TxStatus(hash, r)).await
    }

    /// An object.
    pub async fn object(&self, id: ObjectId) -> Result<Result<Option<Object>, String>, Stopped> {
        self.ask(|r| Command::Object(id, r)).await
    }

    /// The servable snapshots.
    pub async fn snapshots(&self) -> Result<Vec<SnapshotInfo>, Stopped> {
        self.ask(Command::Snapshots).await
    }

    /// The validator set, once the node has a chain.
    pub async fn validators(&self) -> Result<Option<bluepods_core::ValidatorsStatus>, Stopped> {
        self.ask(Command::Validators).await
    }

    /// A view of the committed state to write out (`snapshot::dump_view`).
    pub async fn dump_state(&self) -> Result<Result<StateDump, String>, Stopped> {
        self.ask(Command::DumpState).await
    }

    /// Asks the loop to stop.
    pub async fn shutdown(&self) {
        let _ = self.tx.send(Command::Shutdown).await;
    }
}

/// Why the loop returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// Asked to stop.
    Shutdown,
    /// The `until` condition was met.
    Done,
    /// Sync failed or storage failed; the reason says which and why.
    Failed(String),
}

/// A condition on the node that ends the loop.
pub type DoneCheck<S> = Box<dyn Fn(&Node<S>) -> bool + Send>;

/// A reason to give up, checked after each input (see `give_up_when`).
pub type GiveUpCheck<S> = Box<dyn Fn(&Node<S>) -> Option<String> + Send>;

/// Something that watches events (logs, metrics, tests).
pub type Observer = Box<dyn FnMut(&Event) + Send>;

/// The loop's state.
pub struct EventLoop<S: Store, C: Clock> {
    node: Node<S>,
    transport: Transport,
    net: mpsc::Receiver<NetEvent>,
    commands: mpsc::Receiver<Command>,
    /// Results of work handed to other threads (snapshot builds).
    local_tx: mpsc::Sender<Input>,
    local_rx: mpsc::Receiver<Input>,
    /// Chunk answers read on blocking threads, to send.
    served_tx: mpsc::Sender<(PeerId, bluepods_core::Message)>,
    served_rx: mpsc::Receiver<(PeerId, bluepods_core::Message)>,
    /// Permits for chunk reads (`MAX_CHUNK_READS`).
    chunk_reads: std::sync::Arc<tokio::sync::Semaphore>,
    /// Permits for chunk checks and the signature checks started ahead of
    /// the loop (`prewarm.rs`): the worker pool (`profile::check_workers`).
    chunk_checks: std::sync::Arc<tokio::sync::Semaphore>,
    clock: C,
    next_peer: u64,
    observers: Vec<Observer>,
    last_failure: Option<String>,
    until: Option<DoneCheck<S>>,
    give_up: Option<GiveUpCheck<S>>,
    /// Run snapshot builds, chunk checks and staging jobs on the loop
    /// itself, and start no signature checks ahead of it (see
    /// `run_work_inline`).
    inline_work: bool,
    inline_inputs: std::collections::VecDeque<Input>,
    /// Commands served since anything else was (see `MAX_COMMANDS_IN_A_ROW`).
    commands_in_a_row: usize,
}

impl<S: Store + Send, C: Clock> EventLoop<S, C> {
    /// A loop over a constructed node and transport. Returns the loop and a
    /// handle for commands.
    pub fn new(
        node: Node<S>,
        transport: Transport,
        net: mpsc::Receiver<NetEvent>,
        clock: C,
    ) -> (Self, NodeHandle) {
        let (tx, commands) = mpsc::channel(1024);
        // A few chunks in flight at most: the builder waits for the node to
        // store them, so memory stays bounded whatever the state size.
        let (local_tx, local_rx) = mpsc::channel(4);
        // Chunks read wait here for the loop to send them.
        let (served_tx, served_rx) = mpsc::channel(MAX_CHUNK_READS);
        let lp = EventLoop {
            served_tx,
            served_rx,
            chunk_reads: std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CHUNK_READS)),
            chunk_checks: std::sync::Arc::new(tokio::sync::Semaphore::new(
                crate::profile::check_workers(),
            )),
            node,
            transport,
            net,
            commands,
            local_tx,
            local_rx,
            clock,
            next_peer: 1,
            observers: Vec::new(),
            last_failure: None,
            until: None,
            give_up: None,
            inline_work: false,
            inline_inputs: std::collections::VecDeque::new(),
            commands_in_a_row: 0,
        };
        (lp, NodeHandle { tx })
    }

    /// After `MAX_COMMANDS_IN_A_ROW` commands: takes up to as many of
    /// each other kind of input that is waiting already, and a timeout that
    /// is due, before the next command.
    fn give_others_a_turn(&mut self) {
        self.commands_in_a_row = 0;
        for _ in 0..MAX_COMMANDS_IN_A_ROW {
            let Ok((peer, msg)) = self.served_rx.try_recv() else {
                break;
            };
            self.transport
                .send(peer, bluepods_core::Channel::Request, &msg);
        }
        for _ in 0..MAX_COMMANDS_IN_A_ROW {
            let Ok(ev) = self.net.try_recv() else { break };
            self.on_net(ev);
            self.drain();
        }
        for _ in 0..MAX_COMMANDS_IN_A_ROW {
            let Ok(input) = self.local_rx.try_recv() else {
                break;
            };
            let now = self.clock.now();
            self.node.handle(now, input);
            self.drain();
        }
        let now = self.clock.now();
        if self.node.poll_timeout().is_some_and(|(t, _)| t <= now) {
            self.node.handle_timeout(now);
        }
    }

    /// Adds an event observer.
    pub fn observe(&mut self, observer: Observer) {
        self.observers.push(observer);
    }

    /// Builds snapshots, checks chunks and stages them on the loop, between
    /// two inputs, instead of on other threads, and starts no signature
    /// checks ahead of it (`prewarm.rs`): the node pauses meanwhile, but the
    /// order of its inputs no longer depends on thread scheduling. The
    /// simulator uses this for reproducible runs; production keeps that
    /// work in the background.
    pub fn run_work_inline(&mut self) {
        self.inline_work = true;
    }

    /// Makes `run` return `Exit::Done` once `done(node)` holds.
    pub fn until(&mut self, done: impl Fn(&Node<S>) -> bool + Send + 'static) {
        self.until = Some(Box::new(done));
    }

    /// Makes `run` return `Exit::Failed` with the reason once `why(node)`
    /// gives one (a one-shot sync whose bootstrap peers are unreachable).
    pub fn give_up_when(&mut self, why: impl Fn(&Node<S>) -> Option<String> + Send + 'static) {
        self.give_up = Some(Box::new(why));
    }

    /// Runs until shutdown, failure or the `until` condition.
    pub async fn run(mut self) -> (Exit, Node<S>) {
        self.transport.spawn_accept_loop();
        self.drain();
        loop {
            if let Some(exit) = self.exit() {
                self.transport.shutdown(SHUTDOWN_GRACE).await;
                return (exit, self.node);
            }
            let wake = self.node.poll_timeout().map(|(t, _)| self.clock.instant(t));
            let sleep = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            // The loop's busy time, for the join's stage profile
            // (`profile`); commands are left out.
            let mut woke = None;
            tokio::select! {
                biased;
                cmd = self.commands.recv() => match cmd {
                    None | Some(Command::Shutdown) => {
                        self.transport.shutdown(SHUTDOWN_GRACE).await;
                        return (Exit::Shutdown, self.node);
                    }
                    Some(cmd) => {
                        self.on_command(cmd);
                        self.commands_in_a_row += 1;
                        if self.commands_in_a_row >= MAX_COMMANDS_IN_A_ROW {
                            self.give_others_a_turn();
                        }
                    }
                },
                Some((peer, msg)) = self.served_rx.recv() => {
                    woke = Some(std::time::Instant::now());
                    self.commands_in_a_row = 0;
                    self.transport.send(peer, bluepods_core::Channel::Request, &msg);
                }
                // Finished work (chunk checks, snapshot chunks) before new
                // network input: it is bounded, and it frees what the
                // network input would queue behind.
                Some(input) = self.local_rx.recv() => {
                    woke = Some(std::time::Instant::now());
                    self.commands_in_a_row = 0;
                    let now = self.clock.now();
                    self.node.handle(now, input);
                }
                Some(ev) = self.net.recv() => {
                    woke = Some(std::time::Instant::now());
                    self.commands_in_a_row = 0;
                    self.on_net(ev);
                }
                () = sleep => {
                    woke = Some(std::time::Instant::now());
                    self.commands_in_a_row = 0;
                    let now = self.clock.now();
                    self.node.handle_timeout(now);
                }
            }
            self.drain();
            if let Some(t) = woke {
                crate::profile::SYNC.loop_busy(t.elapsed());
            }
        }
    }

    fn exit(&self) -> Option<Exit> {
        if let Some(e) = self.node.halted() {
            return Some(Exit::Failed(format!("storage failed: {e}")));
        }
        if self.node.phase() == SyncPhase::Failed {
            let why = self
                .last_failure
                .clone()
                .unwrap_or_else(|| "sync failed".into());
            return Some(Exit::Failed(why));
        }
        if let Some(why) = self.give_up.as_ref().and_then(|g| g(&self.node)) {
            return Some(Exit::Failed(why));
        }
        match &self.until {
            Some(done) if done(&self.node) => Some(Exit::Done),
            _ => None,
        }
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Status(r) => {
                let _ = r.send(self.node.status());
            }
            Command::Submit(tx, r) => {
                let now = self.clock.now();
                let _ = r.send(self.node.submit_transaction(now, *tx));
            }
            Command::TxStatus(h, r) => {
                let _ = r.send(self.node.tx_status(&h).map_err(|e| e.to_string()));
            }
            Command::Object(id, r) => {
                let _ = r.send(self.node.store().get_object(&id).map_err(|e| e.to_string()));
            }
            Command::DumpState(r) => {
                // Only the view is taken here (a storage snapshot, cheap);
                // the text is written from it off the loop, so a large
                // state neither pauses the node nor sits in memory whole.
                let dump = StateDump::of(self.node.store()).map_err(|e| e.to_string());
                let _ = r.send(dump);
            }
            Command::Validators(r) => {
                let _ = r.send(self.node.validators());
            }
            Command::Snapshots(r) => {
                let list = self
                    .node
                    .snapshots()
                    .map(|s| SnapshotInfo {
                        round: s.manifest.round,
                        root: s.root,
                        objects: s.manifest.object_count,
                        outcomes: s.manifest.outcome_count,
                        chunks: s.manifest.chunks.len(),
                        raw_bytes: s.manifest.raw_bytes,
                    })
                    .collect();
                let _ = r.send(list);
            }
            Command::Shutdown => {}
        }
    }

    fn on_net(&mut self, ev: NetEvent) {
        let now = self.clock.now();
        let input = match ev {
            NetEvent::Connected {
                conn,
                addr,
                direction,
            } => {
                let session = match crate::transport::session_binding(&conn) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!("[NET] dropping a connection from {addr}: {e}");
                        conn.close(
                            quinn::VarInt::from_u32(bluepods_core::CloseCode::Refused.as_u32()),
                            b"no session binding",
                        );
                        return;
                    }
                };
                let peer = PeerId(self.next_peer);
                self.next_peer += 1;
                self.transport.register(peer, conn);
                Input::PeerConnected {
                    peer,
                    addr,
                    direction,
                    session,
                }
            }
            NetEvent::ConnectFailed { addr, reason } => Input::ConnectFailed { addr, reason },
            NetEvent::SendQueueFull { peer, queued_bytes } => {
                Input::SendQueueFull { peer, queued_bytes }
            }
            NetEvent::Frame {
                peer,
                result: Ok(msg),
            } => {
                if !self.inline_work {
                    // Nothing waits for these jobs: they only warm the
                    // signature memory the loop's own checks consult.
                    let _ = crate::prewarm::start(&self.node, peer, &msg, &self.chunk_checks);
                }
                Input::Message { peer, msg: *msg }
            }
            NetEvent::Frame {
                peer,
                result: Err(error),
            } => Input::MalformedMessage { peer, error },
            NetEvent::Closed { peer, reason } => {
                self.transport.remove(peer);
                Input::PeerDisconnected { peer, reason }
            }
        };
        self.node.handle(now, input);
    }

    fn drain(&mut self) {
        while let Some(action) = self.node.poll_action() {
            match action {
                Action::Send { peer, channel, msg } => self.transport.send(peer, channel, &msg),
                Action::Connect { addr } => self.transport.connect(addr),
                Action::Disconnect { peer, reason, code } => {
                    self.transport.disconnect(peer, code, &reason)
                }
                Action::BuildSnapshot(job) if self.inline_work => {
                    let queue = &mut self.inline_inputs;
                    bluepods_core::snapshot::run_job(job, |out| queue.push_back(out.into()));
                }
                Action::BuildSnapshot(job) => crate::offload::build_snapshot(job, &self.local_tx),
                Action::StageChunks(job) if self.inline_work => {
                    let staged = job.run();
                    self.inline_inputs.push_back(Input::ChunksStaged(staged));
                }
                Action::StageChunks(job) => crate::offload::stage_chunks(job, &self.local_tx),
                Action::CheckChunk(check) if self.inline_work => {
                    let checked = check.run();
                    self.inline_inputs.push_back(Input::ChunkChecked(checked));
                }
                Action::CheckChunk(check) => {
                    crate::offload::check_chunk(check, &self.local_tx, &self.chunk_checks)
                }
                Action::ServeChunk(answer) => {
                    crate::offload::serve_chunk(answer, &self.served_tx, &self.chunk_reads)
                }
                Action::Event(e) => {
                    if let Event::SyncFailed { reason } = &e {
                        self.last_failure = Some(reason.clone());
                    }
                    for o in &mut self.observers {
                        o(&e);
                    }
                }
            }
        }
        // Results of inline snapshot builds, fed back like any input.
        while let Some(input) = self.inline_inputs.pop_front() {
            let now = self.clock.now();
            self.node.handle(now, input);
            self.drain();
        }
    }
}

#[cfg(test)]
#[path = "event_loop_tests.rs"]
mod tests;
