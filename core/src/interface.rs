//! The node's whole interface with the outside world: what goes in
//! ([`Input`]), what comes out ([`Action`], [`Event`]) and the timers it asks
//! for ([`TimerKind`]).

use crate::ids::{Epoch, Hash, PeerId, PublicKey, Round};
use crate::phase::SyncPhase;
use crate::wire::{Message, Role};
use serde::Serialize;

/// Which way a connection was opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// We dialed.
    Outbound,
    /// They dialed.
    Inbound,
}

/// Something that happened outside the node.
#[derive(Clone, Debug)]
pub enum Input {
    /// A transport connection is up. `addr` is the dialed address for
    /// outbound connections (as given in `Action::Connect`).
    PeerConnected {
        /// Driver-chosen handle.
        peer: PeerId,
        /// Dialed address (outbound) or remote socket address (inbound).
        addr: String,
        /// Who dialed.
        direction: Direction,
        /// Keying material exported from the connection's TLS session
        /// (RFC 5705, label `EXPORTER-bluepods-handshake`): the same at
        /// both ends of this connection, different on any other. The
        /// handshake proof signs it, so a proof cannot be relayed.
        session: [u8; 32],
    },
    /// A connection attempt to `addr` failed.
    ConnectFailed {
        /// The address from `Action::Connect`.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The connection is gone.
    PeerDisconnected {
        /// Handle.
        peer: PeerId,
        /// Why, as the transport saw it.
        reason: String,
    },
    /// A decoded message.
    Message {
        /// Sender.
        peer: PeerId,
        /// The message.
        msg: Message,
    },
    /// More than the driver's byte bound is queued towards `peer`: it does
    /// not read. The driver sends it nothing more; the core drops it.
    SendQueueFull {
        /// The peer.
        peer: PeerId,
        /// Bytes queued towards it.
        queued_bytes: usize,
    },
    /// Bytes from `peer` that do not decode: a protocol violation.
    MalformedMessage {
        /// Sender.
        peer: PeerId,
        /// The decode error.
        error: String,
    },
    /// One compressed chunk of the snapshot being built.
    SnapshotChunk {
        /// Snapshot round.
        round: Round,
        /// Chunk index.
        index: u32,
        /// The zstd frame.
        bytes: Vec<u8>,
    },
    /// What an [`Action::CheckChunk`] found.
    ChunkChecked(crate::snapshot::check::CheckedChunk),
    /// What an [`Action::StageChunks`] did.
    ChunksStaged(crate::snapshot::check::ChunksStaged),
    /// The snapshot being built is complete.
    SnapshotBuilt {
        /// Its manifest.
        manifest: Box<crate::snapshot::Manifest>,
    },
    /// Building the snapshot failed.
    SnapshotFailed {
        /// Snapshot round.
        round: Round,
        /// Why.
        error: String,
    },
}

pub use crate::chunk_answer::{ChunkAnswer, DeltaAsk};
pub use crate::limits::{CloseCode, Limit};

/// Which stream a message travels on. Gossip shares one long-lived stream per
/// peer; each request and each response gets its own, so a large response
/// never delays gossip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// The peer's gossip stream.
    Gossip,
    /// A stream of its own.
    Request,
}

/// Something the driver must do.
#[derive(Debug)]
pub enum Action {
    /// Send `msg` to `peer`.
    Send {
        /// Recipient.
        peer: PeerId,
        /// Stream choice.
        channel: Channel,
        /// The message.
        msg: Message,
    },
    /// Dial `addr`; answer with `PeerConnected` or `ConnectFailed`.
    Connect {
        /// `host:port`.
        addr: String,
    },
    /// Close the connection.
    Disconnect {
        /// Handle.
        peer: PeerId,
        /// Why (sent to the peer as the close reason and logged).
        reason: String,
        /// The application error code the close carries.
        code: CloseCode,
    },
    /// Build a snapshot off the commit path: run
    /// [`crate::snapshot::run_job`] (on another thread if you like) and feed
    /// what it yields back to the node (`Input::from`).
    BuildSnapshot(crate::snapshot::SnapshotJob),
    /// Read a snapshot chunk and send it (or `NotAvailable`): on another
    /// thread if you like — [`ChunkAnswer::read`] blocks on the store —
    /// then send what it returns on the request channel. The node decided
    /// to serve it; only the read is left, so a large read does not hold up
    /// gossip and commits.
    ServeChunk(ChunkAnswer),
    /// Check a chunk answer, off the loop if you like ([`Input::ChunkChecked`]).
    CheckChunk(crate::snapshot::check::ChunkCheck),
    /// Stage verified chunks, off the loop if you like ([`Input::ChunksStaged`]).
    StageChunks(crate::snapshot::check::StageJob),
    /// Report something (logs, metrics, traces).
    Event(Event),
}

/// Where an accepted vertex came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VertexSource {
    /// Produced by this node.
    Own,
    /// Gossip (or released from the pending set after its parents arrived).
    Gossip,
    /// A fetch answer (catch-up).
    Fetch,
}

/// Something worth reporting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The sync phase changed.
    PhaseChanged {
        /// Old phase.
        from: SyncPhase,
        /// New phase.
        to: SyncPhase,
    },
    /// A genesis was adopted (at first start, or fetched from a peer).
    GenesisAdopted {
        /// Its hash.
        chain_id: Hash,
        /// False when adopted on first use without a pinned chain id.
        pinned: bool,
        /// Genesis validators.
        validators: usize,
        /// How the chain admits validators.
        admission: crate::params::Admission,
    },
    /// A peer completed the handshake.
    PeerReady {
        /// Handle.
        peer: PeerId,
        /// Its proven key.
        key: PublicKey,
        /// Its role.
        role: Role,
        /// Its address (dialed or announced).
        addr: String,
        /// Whether we dialed.
        outbound: bool,
    },
    /// A peer was refused or dropped for a protocol reason.
    PeerRejected {
        /// Handle.
        peer: PeerId,
        /// Its address (dialed, or the remote socket address).
        addr: String,
        /// Why.
        reason: String,
    },
    /// A peer proved to lie was banned and dropped.
    PeerBanned {
        /// Handle.
        peer: PeerId,
        /// Its address (dialed, or the remote socket address).
        addr: String,
        /// Its proven key.
        key: PublicKey,
        /// The fault.
        reason: String,
        /// Banned until.
        until: crate::ids::Timestamp,
    },
    /// This validator-mode node asked to join the validator set.
    RegistrationSubmitted {
        /// The registration transaction.
        tx: Hash,
        /// The address announced for other validators to dial.
        address: String,
    },
    /// This member approved a validator candidate on its own
    /// (`NodeConfig::auto_approve`).
    ApprovalSubmitted {
        /// The approval transaction.
        tx: Hash,
        /// The candidate's key.
        candidate: PublicKey,
    },
    /// A member without committed vertices for `inactive_epochs_max`
    /// epochs is removed from the set from `epoch` (`set_changes.rs`).
    ValidatorRemoved {
        /// The inactive member.
        key: PublicKey,
        /// The first epoch without it.
        epoch: Epoch,
    },
    /// The chain of certified validator sets reached `epoch`
    /// (`epochs.rs`).
    EpochCertified {
        /// The epoch whose set is certified.
        epoch: Epoch,
        /// How many members of the set before signed.
        signers: usize,
        /// The certificate's encoded size.
        bytes: usize,
        /// Fetched from a peer (true) or assembled from votes here.
        fetched: bool,
    },
    /// A peer's connection ended.
    PeerGone {
        /// Handle.
        peer: PeerId,
        /// Why.
        reason: String,
    },
    /// This node produced and broadcast a vertex.
    VertexProduced {
        /// Round.
        round: Round,
        /// Hash.
        hash: Hash,
        /// Transactions carried.
        txs: usize,
    },
    /// A vertex from elsewhere joined the DAG.
    VertexAccepted {
        /// Round.
        round: Round,
        /// Hash.
        hash: Hash,
        /// Author.
        author: PublicKey,
        /// Transactions carried.
        txs: usize,
        /// How it arrived.
        source: VertexSource,
    },
    /// A vertex failed validation.
    VertexRejected {
        /// Sender.
        peer: PeerId,
        /// Why.
        reason: String,
    },
    /// An anchor was committed and its history executed.
    Committed {
        /// Anchor round (the new last committed round).
        round: Round,
        /// Anchor hash.
        anchor: Hash,
        /// Vertices ordered by this commit.
        vertices: usize,
        /// Transactions applied.
        txs_committed: u32,
        /// Transactions recorded as failed.
        txs_failed: u32,
    },
    /// Two vertices by one author for one round, found here or proven by a
    /// peer: the proof is kept and forwarded once.
    Equivocation {
        /// The author.
        author: PublicKey,
        /// The round.
        round: Round,
        /// First seen.
        first: Hash,
        /// Second seen.
        second: Hash,
    },
    /// A committed equivocation proof takes `author` off anchor duty from
    /// `epoch` on (`validators.rs`).
    AnchorDutyRevoked {
        /// The equivocator.
        author: PublicKey,
        /// The first epoch without its anchor slots.
        epoch: Epoch,
    },
    /// A configured limit was hit; the excess was refused.
    LimitHit {
        /// Which limit.
        limit: Limit,
    },
    /// Catch-up progress: fetched rounds up to `through`, target `target`.
    CatchUpProgress {
        /// Highest round now held.
        through: Round,
        /// Best peer's highest round.
        target: Round,
    },
    /// The validator set of an epoch became known and differs from the last.
    ValidatorSetChanged {
        /// Epoch.
        epoch: u64,
        /// Members.
        size: usize,
        /// Whether this node is a member.
        includes_self: bool,
    },
    /// A snapshot was built and is servable.
    SnapshotBuilt {
        /// Round.
        round: Round,
        /// Manifest root.
        root: Hash,
        /// Chunks.
        chunks: usize,
        /// Objects.
        objects: u64,
        /// Raw bytes.
        raw_bytes: u64,
        /// Bytes of the compressed chunks, as stored and served.
        compressed_bytes: u64,
    },
    /// Building a snapshot failed or was skipped.
    SnapshotFailed {
        /// Round.
        round: Round,
        /// Why.
        error: String,
    },
    /// A `plan_only` node made its plan (see `Node::sync_plan`).
    SyncPlanned {
        /// Snapshot round.
        round: Round,
        /// Attested manifest root.
        root: Hash,
        /// Peers serving it.
        peers: usize,
    },
    /// A snapshot download started.
    SnapshotSyncStarted {
        /// Snapshot round.
        round: Round,
        /// Attested manifest root.
        root: Hash,
        /// Chunks to fetch.
        chunks: usize,
        /// Raw bytes to fetch.
        raw_bytes: u64,
        /// Peers serving it.
        peers: usize,
    },
    /// A snapshot download starts with chunks verified earlier: an
    /// interrupted download of the same snapshot continues where it
    /// stopped, or one of an older snapshot (pruned, restarted) hands over
    /// every chunk the new manifest lists too.
    SnapshotResumed {
        /// Round of the snapshot the kept chunks were verified for.
        from_round: Round,
        /// Snapshot round.
        round: Round,
        /// Chunks already verified and staged.
        chunks_done: usize,
        /// Chunks in the snapshot.
        chunks_total: usize,
    },
    /// Snapshot download progress.
    SnapshotProgress {
        /// Chunks verified and staged.
        chunks_done: usize,
        /// Chunks in the snapshot.
        chunks_total: usize,
        /// Raw bytes verified and staged.
        bytes_done: u64,
        /// Raw bytes in the snapshot.
        bytes_total: u64,
        /// Average rate since the download started.
        bytes_per_sec: u64,
        /// Estimated time to completion.
        eta_ms: u64,
    },
    /// Every chunk of a snapshot is verified and staged: what the download
    /// cost. `chunk_answers` beyond `chunks_total - chunks_kept` are chunks
    /// fetched twice (a timeout re-sent one whose first answer came after
    /// all, a hedge, a corrupt answer).
    SnapshotDownloaded {
        /// Snapshot round.
        round: Round,
        /// Chunks in the snapshot.
        chunks_total: usize,
        /// Chunks verified before this download began (a restart, or a
        /// download of an older snapshot that listed them too).
        chunks_kept: usize,
        /// Chunks verified since this process started syncing that were
        /// rebuilt from pages held from an earlier download and a delta
        /// answer, rather than fetched whole (`snapshot::pages`).
        chunks_rebuilt: usize,
        /// Chunk answers received since this process started syncing,
        /// used or not.
        chunk_answers: u64,
        /// Chunks verified and staged from those answers (by any download
        /// of this process: `chunk_answers` minus this is what was fetched
        /// twice).
        chunks_staged: u64,
        /// Bytes of those answers (compressed, as sent).
        compressed_bytes: u64,
        /// Since the download began.
        elapsed_ms: u64,
    },
    /// Dialing a peer failed; the next attempt is due in `retry_in_ms`.
    DialFailed {
        /// The address dialed.
        addr: String,
        /// Failures in a row for this address (1 for the first).
        attempt: u32,
        /// `sync.retry_attempts`: after this many a one-shot sync gives up
        /// (a daemon goes on backing off).
        attempts_max: u32,
        /// Why (resolution, timeout, refusal), without control characters.
        reason: String,
        /// Until the next attempt.
        retry_in_ms: u64,
    },
    /// The downloaded snapshot became the live state.
    SnapshotApplied {
        /// Its round (the new last committed round).
        round: Round,
        /// Its manifest root.
        root: Hash,
        /// Objects.
        objects: u64,
        /// Transaction outcomes.
        outcomes: u64,
    },
    /// Replay of the buffered gossip began.
    ReplayStarted {
        /// Buffered vertices.
        vertices: usize,
        /// Lowest buffered round.
        from: Option<Round>,
        /// Highest buffered round.
        to: Option<Round>,
    },
    /// Replay of the buffered gossip ended.
    ReplayFinished {
        /// Buffered vertices offered to consensus.
        processed: usize,
        /// Vertices that joined the DAG (others wait for parents, fetched
        /// next, or were already part of the snapshot).
        inserted: usize,
        /// Highest round now held.
        current: Option<Round>,
    },
    /// After joining from a snapshot, this node's state at a later snapshot
    /// round equals what a quorum of validators attested.
    StateVerified {
        /// The round compared.
        round: Round,
        /// The common root.
        root: Hash,
    },
    /// After joining from a snapshot, this node's state differs from what a
    /// quorum attested: the node must not be trusted.
    StateMismatch {
        /// The round compared.
        round: Round,
        /// Our root.
        ours: Hash,
        /// The quorum's root.
        attested: Hash,
    },
    /// A request ran out of attempts; sync cannot proceed.
    SyncFailed {
        /// What failed and where.
        reason: String,
    },
    /// A request went unanswered in time. Reported at most once a second
    /// per peer; `unreported` counts those of that peer not reported since.
    RequestFailed {
        /// Who was asked.
        peer: PeerId,
        /// Its address.
        addr: String,
        /// What was asked (`rounds 10..=73`, `chunk 40/3`, …).
        what: String,
        /// This attempt at it, and how many it gets.
        attempt: u32,
        /// `retry_attempts`.
        attempts_max: u32,
        /// Why it failed.
        reason: String,
        /// Failures of this peer's requests not reported since the last.
        unreported: u32,
    },
    /// Catch-up failed `retry_attempts` times in a row; the node waits
    /// `retry_in_ms`, then tries again (it does not give up: a slow or
    /// lying peer must not stop it for good).
    SyncBackoff {
        /// What failed and where.
        reason: String,
        /// How long it waits.
        retry_in_ms: u64,
    },
    /// Storage failed; the node has stopped processing.
    StorageFailed {
        /// The error.
        error: String,
    },
}

/// Why the node wants to be woken up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerKind {
    /// Time to produce the next vertex.
    Produce,
    /// A handshake deadline.
    Handshake,
    /// A request deadline.
    Request,
    /// A reconnect attempt is due.
    Reconnect,
    /// Time to announce status to peers.
    Status,
    /// Discovery stops waiting for more peers' manifests and chooses.
    DiscoveryWait,
    /// Nothing joined the DAG for `stall_timeout_ms`: ask for the range
    /// (or, in discovery, ask every peer again).
    Stall,
    /// The snapshot cool-down ends: a node far behind may take a snapshot.
    SnapshotCooldown,
    /// A download progress report is due.
    Progress,
    /// The catch-up back-off ends.
    Backoff,
}

impl From<crate::snapshot::BuildOutput> for Input {
    fn from(out: crate::snapshot::BuildOutput) -> Self {
        use crate::snapshot::BuildOutput;
        match out {
            BuildOutput::Chunk {
                round,
                index,
                bytes,
            } => Input::SnapshotChunk {
                round,
                index,
                bytes,
            },
            BuildOutput::Built(manifest) => Input::SnapshotBuilt { manifest },
            BuildOutput::Failed { round, error } => Input::SnapshotFailed { round, error },
        }
    }
}
