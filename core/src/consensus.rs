//! DAG consensus: link validation, the pending set, and the commit rule.
//!
//! # Commit rule
//!
//! Anchors sit on even rounds; the slot of round `r` belongs to
//! `ValidatorSet::anchor_author(r)`. Round `r + 1` vertices vote for a
//! version of it by citing it, round `r + 2` vertices certify it with a
//! quorum of votes among their parents, and a slot commits directly once a
//! quorum of round `r + 2` authors certify the same version; other slots
//! are decided from the causal history of the next committed slot at least
//! three rounds up. `decide.rs` has the rule and why every honest node
//! commits the same sequence with up to f Byzantine validators, whatever
//! subset of the DAG it holds. Each anchor commit applies the anchor's
//! not-yet-committed causal history sorted by `(round, hash)`.
//!
//! Vertices whose parents are missing wait in a bounded pending set; vertices
//! of an epoch whose validator set is not yet decided wait there too.

use crate::dag::{Dag, Inserted};
use crate::genesis::ChainParams;
use crate::ids::{Hash, Round};
use crate::validators::ValidatorSchedule;
use crate::vertex::Vertex;
use borsh::{BorshDeserialize, BorshSerialize};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

mod decide;

/// Versions of one author's vertex at one round that are kept unasked: two
/// prove an equivocation, a third proves nothing more, and each costs its
/// signature checks, storage and forwarding (one author, one vote). A
/// further version is kept only when a pending vertex names it as a parent
/// ([`Consensus::is_wanted_parent`]): an honest vertex may build on a
/// version this node did not keep, and without it the node could take
/// nothing above. A vertex names one version of each author, so each
/// version kept beyond two is one a held vertex cites, whatever the
/// equivocator signs. (Colluding equivocators that cite each other's extra
/// versions can still make their number per round grow down a chain of
/// citations; the pending set's limit bounds how many come at once.)
pub const MAX_VERSIONS_KEPT: usize = 2;

/// The consensus cursor, persisted atomically with each commit.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ConsensusMeta {
    /// The last committed anchor, `(round, hash)`.
    pub last_anchor: Option<(Round, Hash)>,
    /// The validator schedule including every committed registration.
    pub schedule: ValidatorSchedule,
    /// Vertices committed since genesis.
    pub committed_vertices: u64,
    /// Transactions with an outcome since genesis.
    pub executed_txs: u64,
}

impl ConsensusMeta {
    /// The cursor of a chain that has committed nothing yet.
    pub fn at_genesis(genesis: &crate::genesis::Genesis) -> Self {
        ConsensusMeta {
            last_anchor: None,
            schedule: ValidatorSchedule::at_genesis(genesis),
            committed_vertices: 0,
            executed_txs: 0,
        }
    }
}

/// Why a vertex cannot join the DAG.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The author is not in the validator set of the vertex's round.
    #[error("author {0} is not a validator at round {1}")]
    NotValidator(String, Round),
    /// A parent is not from the previous round.
    #[error("parent {0} is not from the previous round")]
    ParentWrongRound(String),
    /// Two parents share an author, or a parent's author was not a validator.
    #[error("parents repeat an author or cite a non-validator")]
    BadParentAuthors,
    /// Parents weighing less than a quorum of the previous round's set.
    #[error("parents weigh {got}, quorum is {quorum}")]
    NoQuorum {
        /// Weight of the parents' authors.
        got: u64,
        /// Needed.
        quorum: u64,
    },
    /// Below the pruning floor: fewer parents than any quorum needs.
    #[error("{got} parents, a quorum needs at least {fewest}")]
    TooFewParents {
        /// Parents listed.
        got: usize,
        /// The fewest members that weigh a quorum.
        fewest: usize,
    },
}

/// What became of a vertex offered to consensus.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "a rejected vertex must cost its sender; an inserted one must be stored"]
pub enum Offer {
    /// Inserted; `released` lists vertices from the pending set that could
    /// be inserted as a consequence (in insertion order), `equivocations`
    /// pairs `(first, second)` seen among all of them.
    Inserted {
        /// Every vertex inserted, this one first.
        inserted: Vec<Hash>,
        /// `(first seen, new)` pairs with the same author and round.
        equivocations: Vec<(Hash, Hash)>,
    },
    /// Waiting for these parents.
    Pending {
        /// Parents not yet in the DAG.
        missing: Vec<Hash>,
    },
    /// Waiting until the validator set of its epoch is decided.
    EpochUndecided,
    /// Already known.
    Duplicate,
    /// Its author already has `MAX_VERSIONS_KEPT` versions at its round,
    /// and no pending vertex names this one.
    ExcessVersion,
    /// Older than the DAG window.
    Stale,
    /// Too far ahead of the last commit (`max_rounds_ahead`), or the pending
    /// set is full: dropped, to be fetched again later.
    Dropped,
    /// Invalid.
    Rejected(LinkError),
}

/// One committed anchor and the vertices it orders.
#[derive(Clone, Debug)]
pub struct CommittedAnchor {
    /// Anchor round.
    pub round: Round,
    /// Anchor hash.
    pub anchor: Hash,
    /// The vertices applied, sorted by (round, hash).
    pub vertices: Vec<(Hash, Arc<Vertex>)>,
    /// For an anchor that starts a snapshot: the committed vertices of the
    /// garbage-collection window as they stand right after this anchor, taken
    /// before the window is pruned (see `snapshot::Frontier`).
    pub snapshot_window: Option<Vec<(Round, Hash)>>,
}

/// The consensus state machine over the DAG window.
#[derive(Debug)]
pub struct Consensus {
    dag: Dag,
    pending: BTreeMap<(Round, Hash), Arc<Vertex>>,
    /// Hashes in `pending`, for constant-time duplicate checks.
    pending_hashes: HashSet<Hash>,
    meta: ConsensusMeta,
    params: ChainParams,
    max_pending: usize,
    max_rounds_ahead: u64,
}

impl Consensus {
    /// Consensus state from its persisted cursor.
    pub fn new(
        meta: ConsensusMeta,
        params: ChainParams,
        max_pending: usize,
        max_rounds_ahead: u64,
    ) -> Self {
        Consensus {
            dag: Dag::new(),
            pending: BTreeMap::new(),
            pending_hashes: HashSet::new(),
            meta,
            params,
            max_pending,
            max_rounds_ahead,
        }
    }

    /// The DAG window.
    pub fn dag(&self) -> &Dag {
        &self.dag
    }

    /// The persisted cursor.
    pub fn meta(&self) -> &ConsensusMeta {
        &self.meta
    }

    /// Mutable access to the schedule during execution of a commit.
    pub fn schedule_mut(&mut self) -> &mut ValidatorSchedule {
        &mut self.meta.schedule
    }

    /// Records execution totals of a commit.
    pub fn add_executed(&mut self, vertices: u64, txs: u64) {
        self.meta.committed_vertices += vertices;
        self.meta.executed_txs += txs;
    }

    /// Round of the last committed anchor.
    pub fn last_committed_round(&self) -> Option<Round> {
        self.meta.last_anchor.map(|(r, _)| r)
    }

    /// Vertices waiting for parents or for their epoch's set.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Whether the pending set holds `hash`.
    pub fn is_pending(&self, hash: &Hash) -> bool {
        self.pending_hashes.contains(hash)
    }

    /// Versions of `author`'s vertex at `round` held, in the DAG and the
    /// pending set.
    pub fn versions_held(&self, round: Round, author: &crate::ids::PublicKey) -> usize {
        let pending = self
            .pending
            .range((round, Hash([0; 32]))..=(round, Hash([0xff; 32])))
            .filter(|(_, v)| v.author() == *author)
            .count();
        self.dag.by_author(round, author).len() + pending
    }

    /// Whether a pending vertex names `hash`, a vertex of `round`, as a
    /// parent (parents are of the round below their child's). Such a
    /// version is taken beyond [`MAX_VERSIONS_KEPT`]. Postmortem (`hostile`
    /// seed 10 at 9 nodes): an equivocator's next vertex cited a third
    /// version that one honest validator had dropped as excess; every
    /// honest vertex above cited that one, and the node stayed stuck below
    /// them for good.
    pub fn is_wanted_parent(&self, round: Round, hash: &Hash) -> bool {
        let child = round.next();
        self.pending
            .range((child, Hash([0; 32]))..=(child, Hash([0xff; 32])))
            .any(|(_, v)| v.body.parents.contains(hash))
    }

    /// The lowest round of a pending vertex, if any.
    pub fn lowest_pending_round(&self) -> Option<Round> {
        self.pending.keys().next().map(|(r, _)| *r)
    }

    /// Restores a vertex loaded from storage (restart), bypassing checks
    /// already done before it was stored.
    pub fn restore(&mut self, vertex: Arc<Vertex>, hash: Hash, committed_at: Option<Round>) {
        if !self.dag.contains(&hash) {
            self.dag.insert(vertex, hash, committed_at);
        }
    }

    /// Sets the pruning floor after a restore.
    pub fn prune_below(&mut self, round: Round) {
        self.dag.prune_below(round);
    }

    /// Whether the set for `round`'s epoch is decided.
    pub fn epoch_decided(&self, round: Round) -> bool {
        let s = &self.meta.schedule;
        s.is_decided(s.epoch_of(round), self.last_committed_round())
    }

    /// Offers a vertex whose stand-alone checks passed.
    pub fn offer(&mut self, vertex: Arc<Vertex>, hash: Hash) -> Offer {
        if self.dag.contains(&hash) || self.is_pending(&hash) {
            return Offer::Duplicate;
        }
        let round = vertex.round();
        if round < self.dag.pruned_below() {
            return Offer::Stale;
        }
        let horizon = self.last_committed_round().unwrap_or(Round(0));
        if round > horizon.saturating_add(self.max_rounds_ahead) {
            return Offer::Dropped;
        }
        if self.versions_held(round, &vertex.author()) >= MAX_VERSIONS_KEPT
            && !self.is_wanted_parent(round, &hash)
        {
            return Offer::ExcessVersion;
        }
        match self.check_links(&vertex) {
            Err(e) => Offer::Rejected(e),
            Ok(Some(missing)) if missing.is_empty() => {
                self.park(vertex, hash, Offer::EpochUndecided)
            }
            Ok(Some(missing)) => self.park(vertex, hash, Offer::Pending { missing }),
            Ok(None) => {
                let mut equivocations = Vec::new();
                if let Inserted::Equivocation { first } = self.dag.insert(vertex, hash, None) {
                    equivocations.push((first, hash));
                }
                let mut inserted = vec![hash];
                self.release_pending(round, &mut inserted, &mut equivocations);
                Offer::Inserted {
                    inserted,
                    equivocations,
                }
            }
        }
    }

    fn park(&mut self, vertex: Arc<Vertex>, hash: Hash, outcome: Offer) -> Offer {
        if self.pending.len() >= self.max_pending {
            // Full: the vertex furthest ahead makes room for a lower one.
            // Refusing low rounds would deadlock a node catching up, whose
            // pending set fills with gossip far ahead: the low rounds are
            // what releases everything above them, and what is evicted
            // comes back with a later range fetch.
            match self.pending.last_key_value().map(|(k, _)| *k) {
                Some(top) if top.0 > vertex.round() => self.unpark(&top),
                _ => return Offer::Dropped,
            }
        }
        self.pending.insert((vertex.round(), hash), vertex);
        self.pending_hashes.insert(hash);
        outcome
    }

    fn unpark(&mut self, key: &(Round, Hash)) {
        self.pending.remove(key);
        self.pending_hashes.remove(&key.1);
    }

    /// Checks a vertex against the DAG. `Ok(None)`: insertable.
    /// `Ok(Some(missing))`: must wait (an empty list means its epoch's set is
    /// undecided). `Err`: invalid.
    fn check_links(&self, vertex: &Vertex) -> Result<Option<Vec<Hash>>, LinkError> {
        let round = vertex.round();
        if !self.epoch_decided(round) {
            return Ok(Some(Vec::new()));
        }
        let set = self.meta.schedule.set_for_round(round);
        if !set.contains(&vertex.author()) {
            return Err(LinkError::NotValidator(vertex.author().short(), round));
        }
        let Some(prev) = round.prev() else {
            return Ok(None);
        };
        if prev < self.dag.pruned_below() {
            // Parents are older than the window: their rounds and authors
            // cannot be checked, but their number can, and every node at
            // this floor checks it the same way. The DAG marks the vertex
            // `unchecked`, with all that descends from it: this node never
            // cites nor forwards it, so a node with more history that
            // refuses it never has to refuse an honest vertex on top.
            // The fewest parents that could weigh a quorum.
            let fewest = self.meta.schedule.set_for_round(prev).fewest_for_quorum();
            let got = vertex.body.parents.len();
            if got < fewest {
                return Err(LinkError::TooFewParents { got, fewest });
            }
            return Ok(None);
        }
        let missing: Vec<Hash> = vertex
            .body
            .parents
            .iter()
            .filter(|p| !self.dag.contains(p))
            .copied()
            .collect();
        if !missing.is_empty() {
            return Ok(Some(missing));
        }
        let prev_set = self.meta.schedule.set_for_round(prev);
        let mut authors = BTreeSet::new();
        for p in &vertex.body.parents {
            let parent = &self.dag.get(p).expect("checked present").vertex;
            if parent.round() != prev {
                return Err(LinkError::ParentWrongRound(p.short()));
            }
            if !prev_set.contains(&parent.author()) || !authors.insert(parent.author()) {
                return Err(LinkError::BadParentAuthors);
            }
        }
        if !prev_set.is_quorum(&authors) {
            return Err(LinkError::NoQuorum {
                got: prev_set.weight_of_keys(&authors),
                quorum: prev_set.quorum(),
            });
        }
        Ok(None)
    }

    /// Inserts pending vertices made insertable by vertices of `from_round`
    /// (their children live one round up), cascading upwards.
    fn release_pending(
        &mut self,
        from_round: Round,
        inserted: &mut Vec<Hash>,
        equivocations: &mut Vec<(Hash, Hash)>,
    ) {
        let mut round = from_round.next();
        loop {
            let candidates: Vec<(Round, Hash)> = self
                .pending
                .range((round, Hash([0; 32]))..=(round, Hash([0xff; 32])))
                .map(|(k, _)| *k)
                .collect();
            let mut progressed = false;
            for key in candidates {
                let vertex = self.pending[&key].clone();
                match self.check_links(&vertex) {
                    Ok(Some(_)) => continue,
                    Err(_) => {
                        // Invalid once its parents arrived: drop it.
                        self.unpark(&key);
                    }
                    Ok(None) => {
                        self.unpark(&key);
                        if let Inserted::Equivocation { first } =
                            self.dag.insert(vertex, key.1, None)
                        {
                            equivocations.push((first, key.1));
                        }
                        inserted.push(key.1);
                        progressed = true;
                    }
                }
            }
            if !progressed {
                return;
            }
            round = round.next();
        }
    }

    /// Re-offers every pending vertex in round order (after a commit decided
    /// a new epoch, or after missing parents arrived out of band): the
    /// vertices inserted, and the `(first, new)` equivocations among them.
    pub fn retry_pending(&mut self) -> (Vec<Hash>, Vec<(Hash, Hash)>) {
        let mut inserted = Vec::new();
        let mut equivocations = Vec::new();
        let keys: Vec<(Round, Hash)> = self.pending.keys().copied().collect();
        for key in keys {
            let Some(vertex) = self.pending.get(&key).cloned() else {
                continue;
            };
            match self.check_links(&vertex) {
                Ok(Some(_)) => {}
                Err(_) => {
                    self.unpark(&key);
                }
                Ok(None) => {
                    self.unpark(&key);
                    if let Inserted::Equivocation { first } = self.dag.insert(vertex, key.1, None) {
                        equivocations.push((first, key.1));
                    }
                    inserted.push(key.1);
                    self.release_pending(key.0, &mut inserted, &mut equivocations);
                }
            }
        }
        (inserted, equivocations)
    }

    /// The hashes of pending vertices' parents that are not in the DAG,
    /// for pending vertices of rounds up to `child_round_at_most`.
    pub fn missing_parents(&self, limit: usize, child_round_at_most: Round) -> Vec<Hash> {
        let mut out = BTreeSet::new();
        for v in self.pending.values() {
            if v.round() > child_round_at_most {
                continue;
            }
            for p in &v.body.parents {
                if !self.dag.contains(p) && !self.is_pending(p) {
                    out.insert(*p);
                }
            }
            if out.len() >= limit {
                break;
            }
        }
        out.into_iter().take(limit).collect()
    }

    /// Applies the commit rule (`decide.rs`) after insertions. Returns the
    /// anchors committed, oldest first, each with its ordered vertices: the
    /// committed slots from the one after the last committed anchor up to
    /// the first undecided slot (skipped slots commit nothing). The DAG
    /// marks them committed and the cursor advances. The caller executes
    /// and persists them.
    pub fn try_commit(&mut self) -> Vec<CommittedAnchor> {
        let next = match self.last_committed_round() {
            None => Round(0),
            Some(r) => r.saturating_add(2),
        };
        let mut commits = Vec::new();
        for (round, decision) in self.decide_slots(next) {
            match decision {
                decide::Decision::Commit(hash) => commits.push((round, hash)),
                decide::Decision::Skip => {}
                decide::Decision::Undecided => break,
            }
        }
        commits
            .into_iter()
            .map(|(round, hash)| self.commit_anchor(round, hash))
            .collect()
    }

    fn commit_anchor(&mut self, round: Round, anchor: Hash) -> CommittedAnchor {
        let floor = round.saturating_sub(self.params.gc_depth_rounds);
        let history = self.dag.uncommitted_history(&anchor, floor);
        let mut vertices = Vec::with_capacity(history.len());
        for (_, h) in history {
            self.dag.mark_committed(&h, round);
            let v = self
                .dag
                .get(&h)
                .expect("history is in the DAG")
                .vertex
                .clone();
            vertices.push((h, v));
        }
        let previous = self.last_committed_round();
        let snapshot_window =
            is_snapshot_anchor(previous, round, self.params.snapshot_interval_rounds)
                .then(|| self.dag.committed_in(floor, round, round));
        self.meta.last_anchor = Some((round, anchor));
        self.dag.prune_below(floor);
        let dropped: Vec<(Round, Hash)> = self
            .pending
            .range(..(floor, Hash([0; 32])))
            .map(|(k, _)| *k)
            .collect();
        for key in dropped {
            self.unpark(&key);
        }
        CommittedAnchor {
            round,
            anchor,
            vertices,
            snapshot_window,
        }
    }
}

/// Whether committing the anchor of `round` after `previous` starts a
/// snapshot: the first anchor at or past each multiple of `interval` does (and
/// the very first anchor, so a young chain has one too). Every node commits
/// the same anchors, so every node picks the same ones.
pub fn is_snapshot_anchor(previous: Option<Round>, round: Round, interval: u64) -> bool {
    match previous {
        None => true,
        Some(p) => p.0 / interval.max(1) < round.0 / interval.max(1),
    }
}
