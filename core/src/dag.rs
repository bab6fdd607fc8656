//! The in-memory DAG window: vertices by hash and by (round, author), with
//! the graph queries the commit rule needs.
//!
//! Equivocating vertices (same author, same round, different hash) are all
//! kept, keyed by hash: later vertices may link to either, and the commit rule
//! only follows hash links, so every node orders them the same way whichever
//! it saw first. The *first* one seen is the one this node uses as a parent.
//!
//! Memory is bounded by pruning: rounds older than the last committed anchor
//! minus the garbage-collection depth are dropped (see [`Dag::prune_below`]).

use crate::ids::{Hash, PublicKey, Round};
use crate::vertex::Vertex;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// A vertex in the DAG window.
#[derive(Clone, Debug)]
pub struct DagVertex {
    /// The vertex.
    pub vertex: Arc<Vertex>,
    /// Its hash (recomputed on receipt).
    pub hash: Hash,
    /// The anchor round whose commit included it, once committed.
    pub committed_at: Option<Round>,
    /// Taken at this node's pruning floor, where only the number of its
    /// parents could be checked, or descended from such a vertex. This
    /// node never cites it nor forwards it: a node with more history may
    /// refuse it, and then it would refuse what builds on it too.
    pub unchecked: bool,
}

impl DagVertex {
    /// Whether this vertex cites `parent` (parents are kept sorted).
    pub fn cites(&self, parent: &Hash) -> bool {
        self.vertex.body.parents.binary_search(parent).is_ok()
    }
}

/// The result of inserting a vertex.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inserted {
    /// New, and the first by its author at its round.
    New,
    /// New, but its author already has `first` at this round.
    Equivocation {
        /// The vertex seen first.
        first: Hash,
    },
}

/// The DAG window.
#[derive(Default, Debug)]
pub struct Dag {
    vertices: HashMap<Hash, DagVertex>,
    rounds: BTreeMap<Round, BTreeMap<PublicKey, Vec<Hash>>>,
    pruned_below: Round,
}

impl Dag {
    /// An empty DAG.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the vertex is in the window.
    pub fn contains(&self, hash: &Hash) -> bool {
        self.vertices.contains_key(hash)
    }

    /// A vertex by hash.
    pub fn get(&self, hash: &Hash) -> Option<&DagVertex> {
        self.vertices.get(hash)
    }

    /// Number of vertices in the window.
    pub fn len(&self) -> usize {
        self.vertices.len()
    }

    /// True when the window is empty.
    pub fn is_empty(&self) -> bool {
        self.vertices.is_empty()
    }

    /// Rounds below this were pruned.
    pub fn pruned_below(&self) -> Round {
        self.pruned_below
    }

    /// The highest round holding a vertex.
    pub fn highest_round(&self) -> Option<Round> {
        self.rounds.keys().next_back().copied()
    }

    /// Inserts a vertex whose links were already checked.
    pub fn insert(
        &mut self,
        vertex: Arc<Vertex>,
        hash: Hash,
        committed_at: Option<Round>,
    ) -> Inserted {
        let round = vertex.round();
        let author = vertex.author();
        let versions = self
            .rounds
            .entry(round)
            .or_default()
            .entry(author)
            .or_default();
        let result = match versions.first() {
            Some(first) => Inserted::Equivocation { first: *first },
            None => Inserted::New,
        };
        versions.push(hash);
        let at_floor = round.prev().is_some_and(|p| p < self.pruned_below);
        let unchecked = at_floor
            || vertex
                .body
                .parents
                .iter()
                .any(|p| self.vertices.get(p).is_some_and(|d| d.unchecked));
        self.vertices.insert(
            hash,
            DagVertex {
                vertex,
                hash,
                committed_at,
                unchecked,
            },
        );
        result
    }

    /// The first-seen vertex of each author at `round` that this node may
    /// cite (not `unchecked`), in author order: a producer's parents.
    pub fn round_firsts(&self, round: Round) -> Vec<&DagVertex> {
        self.rounds
            .get(&round)
            .into_iter()
            .flat_map(|authors| authors.values())
            .filter_map(|versions| versions.first())
            .filter_map(|h| self.vertices.get(h))
            .filter(|v| !v.unchecked)
            .collect()
    }

    /// Every vertex (all versions) of `author` at `round`, in arrival order.
    pub fn by_author(&self, round: Round, author: &PublicKey) -> &[Hash] {
        self.rounds
            .get(&round)
            .and_then(|a| a.get(author))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The distinct authors at `round` whose first version this node may
    /// cite: whose weight a vertex of the next round can have as parents.
    /// Distinct by construction (one entry per author), and made without
    /// allocating: a validator asks after every input it handles.
    pub fn authors_at(&self, round: Round) -> impl Iterator<Item = PublicKey> + '_ {
        self.rounds
            .get(&round)
            .into_iter()
            .flatten()
            .filter(|(_, versions)| {
                versions
                    .first()
                    .and_then(|h| self.vertices.get(h))
                    .is_some_and(|v| !v.unchecked)
            })
            .map(|(author, _)| *author)
    }

    /// The distinct authors at `round` with a vertex for which `test` holds.
    pub fn authors_where(&self, round: Round, test: impl Fn(&DagVertex) -> bool) -> Vec<PublicKey> {
        let Some(authors) = self.rounds.get(&round) else {
            return Vec::new();
        };
        authors
            .iter()
            .filter(|(_, versions)| {
                versions
                    .iter()
                    .any(|h| self.vertices.get(h).is_some_and(&test))
            })
            .map(|(author, _)| *author)
            .collect()
    }

    /// The vertices of `round` in the causal history of `from` (itself,
    /// if it is of that round).
    pub fn history_at(&self, from: &Hash, round: Round) -> Vec<Hash> {
        let mut out = Vec::new();
        let mut stack = vec![*from];
        let mut seen = HashSet::new();
        while let Some(h) = stack.pop() {
            let Some(v) = self.vertices.get(&h) else {
                continue;
            };
            if v.vertex.round() < round || !seen.insert(h) {
                continue;
            }
            if v.vertex.round() == round {
                out.push(h);
                continue;
            }
            stack.extend(v.vertex.body.parents.iter().copied());
        }
        out.sort();
        out
    }

    /// The not-yet-committed causal history of `anchor` (itself included),
    /// ignoring rounds below `floor`, sorted by (round, hash).
    pub fn uncommitted_history(&self, anchor: &Hash, floor: Round) -> Vec<(Round, Hash)> {
        let mut out = Vec::new();
        let mut stack = vec![*anchor];
        let mut seen = HashSet::new();
        while let Some(h) = stack.pop() {
            if !seen.insert(h) {
                continue;
            }
            let Some(v) = self.vertices.get(&h) else {
                continue;
            };
            // Commits are causally closed: below a committed vertex
            // everything is committed already.
            if v.committed_at.is_some() || v.vertex.round() < floor {
                continue;
            }
            out.push((v.vertex.round(), h));
            stack.extend(v.vertex.body.parents.iter().copied());
        }
        out.sort();
        out
    }

    /// Marks a vertex committed by the anchor of `anchor`.
    pub fn mark_committed(&mut self, hash: &Hash, anchor: Round) {
        if let Some(v) = self.vertices.get_mut(hash) {
            v.committed_at = Some(anchor);
        }
    }

    /// Vertices of rounds `from..=to` committed by an anchor at or before
    /// `anchor`, as sorted `(round, hash)`.
    pub fn committed_in(&self, from: Round, to: Round, anchor: Round) -> Vec<(Round, Hash)> {
        let mut out: Vec<(Round, Hash)> = self
            .rounds
            .range(from..=to)
            .flat_map(|(r, authors)| authors.values().flatten().map(move |h| (*r, *h)))
            .filter(|(_, h)| {
                self.vertices
                    .get(h)
                    .and_then(|v| v.committed_at)
                    .is_some_and(|c| c <= anchor)
            })
            .collect();
        out.sort();
        out
    }

    /// Drops every round below `round`.
    pub fn prune_below(&mut self, round: Round) {
        if round <= self.pruned_below {
            return;
        }
        let keep = self.rounds.split_off(&round);
        for hash in self.rounds.values().flat_map(|a| a.values()).flatten() {
            self.vertices.remove(hash);
        }
        self.rounds = keep;
        self.pruned_below = round;
    }
}
