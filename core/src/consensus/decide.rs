//! The commit rule: how each anchor slot is decided, after Mysticeti
//! (Babel et al., 2023), on this DAG's even-round anchor slots.
//!
//! The slot of an even round `r` belongs to `anchor_author(r)`. A Byzantine
//! author may sign several versions of its slot; the rule must pick the
//! same one (or none) on every honest node, whatever else each holds.
//!
//! - A round `r + 1` vertex **votes** for a version it cites as a parent.
//!   Parents have distinct authors (checked on insertion), so an honest
//!   vertex votes for at most one version.
//! - A round `r + 2` vertex **certifies** a version when its parents include
//!   votes for it from a quorum (2f + 1) of round `r + 1`'s set. Whether it
//!   does is a function of its own causal history.
//! - **Direct commit**: a quorum of distinct round `r + 2` authors have a
//!   vertex certifying the same version.
//! - **Direct skip**: a quorum of distinct round `r + 1` authors have a
//!   vertex voting for no version.
//! - **Indirect decision**, for a slot neither: take the slots of rounds
//!   `r + 3` and above in order, passing over skipped ones; if the first
//!   other one is undecided, so is this one. If it is committed, with
//!   version `C`, this slot commits the version certified by a round `r + 2`
//!   vertex in `C`'s causal history, or is skipped if there is none. That
//!   is a function of `C`'s history alone: hash links, not what else a
//!   node holds.
//!
//! Committed slots are output oldest first, each with its not yet committed
//! causal history. The output stops at the first undecided slot.
//!
//! # Why honest nodes agree (n = 3f + 1, at most f Byzantine)
//!
//! Members are weighted (`validators.rs`): read n as the set's total
//! weight, f as the weight of the faulty members, and every count of
//! distinct authors below as the sum of their weights. Each author still
//! signs one vertex per round and counts once, so the argument is the same.
//!
//! 1. *At most one version is ever certified, anywhere.* A certificate
//!    holds votes from 2f + 1 distinct authors, at least f + 1 of them
//!    honest. Honest authors sign one vertex per round and vote for at most
//!    one version. Certificates for two versions would need 2f + 2 honest
//!    voters; there are 2f + 1.
//! 2. *A direct commit is seen by every later decider.* Suppose some node
//!    commits version `L` directly: 2f + 1 authors certify it at `r + 2`,
//!    so at least f + 1 honest ones do. Every vertex of round `r + 3` cites
//!    2f + 1 distinct authors of `r + 2`. 2f + 1 plus f + 1 exceeds 3f + 1,
//!    so among them is an honest certifier's only vertex. Hence every
//!    vertex of round `r + 3` or later has a certificate for `L` in its
//!    history, and the indirect rule commits `L` (by 1, no other version
//!    competes).
//! 3. *A direct skip excludes every certificate.* A skip needs 2f + 1
//!    authors, at least f + 1 of them honest, whose vertex votes for no
//!    version. A certificate needs f + 1 honest voters. Honest authors have
//!    one vertex each, so both together would need 2f + 2 honest authors.
//!    So no certificate exists, and the indirect rule skips too.
//! 4. *Indirect decisions agree.* By induction from the top: two honest
//!    nodes that both decide a slot above `r` decide it alike (by 2 and 3,
//!    direct decisions agree with indirect ones). So both choose the same
//!    deciding slot `C` and read the same history.
//!
//! So the committed sequences of any two honest nodes are prefixes of one
//! another: a node may decide later, with less, but never differently. The
//! model checker in `core/tests/commit_model.rs` tries this over generated
//! DAGs with equivocators and partial views.
//!
//! The cost is one round of latency. Before this rule, an anchor committed
//! once round `r + 1` held a quorum of votes; now round `r + 2` must hold
//! a quorum of certificates. The rule it replaces picked among reachable
//! versions by the votes *in the local DAG*, or else the smallest hash. A
//! node without the votes could pick the other version (issue 12).

use super::Consensus;
use crate::ids::{Hash, PublicKey, Round};
use crate::validators::ValidatorSet;
use std::collections::BTreeMap;

/// What the rule says of one anchor slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Decision {
    /// This version commits.
    Commit(Hash),
    /// No version of this slot commits.
    Skip,
    /// Not known yet.
    Undecided,
}

impl Consensus {
    /// Whether `voter` cites `anchor`.
    fn votes_for(&self, voter: &Hash, anchor: &Hash) -> bool {
        self.dag.get(voter).is_some_and(|v| v.cites(anchor))
    }

    /// Whether `cert` (of round `round + 2`) certifies `anchor` (of
    /// `round`): votes weighing a quorum of `voters` (the set of round
    /// `round + 1`) among its parents, which have distinct authors.
    fn certifies(&self, cert: &Hash, anchor: &Hash, voters: &ValidatorSet) -> bool {
        let Some(c) = self.dag.get(cert) else {
            return false;
        };
        let votes: Vec<PublicKey> = c
            .vertex
            .body
            .parents
            .iter()
            .filter(|p| self.votes_for(p, anchor))
            .filter_map(|p| self.dag.get(p).map(|v| v.vertex.author()))
            .collect();
        voters.is_quorum(&votes)
    }

    /// The versions of the slot of `round`, in hash order.
    fn slot_versions(&self, round: Round) -> Vec<Hash> {
        let author = self.meta.schedule.set_for_round(round).anchor_author(round);
        let mut versions = self.dag.by_author(round, &author).to_vec();
        versions.sort();
        versions
    }

    /// The direct decision of the slot of `round`.
    fn decide_directly(&self, round: Round) -> Decision {
        let versions = self.slot_versions(round);
        let (votes, certs) = (round.next(), round.saturating_add(2));
        let certifying = self.meta.schedule.set_for_round(certs);
        let voting = self.meta.schedule.set_for_round(votes);
        for v in &versions {
            let certifiers = self
                .dag
                .authors_where(certs, |c| self.certifies(&c.hash, v, &voting));
            if certifying.is_quorum(&certifiers) {
                return Decision::Commit(*v);
            }
        }
        let abstainers = self
            .dag
            .authors_where(votes, |x| !versions.iter().any(|v| x.cites(v)));
        if voting.is_quorum(&abstainers) {
            return Decision::Skip;
        }
        Decision::Undecided
    }

    /// The decision of the slot of `round` read from committed version
    /// `deciding` of a slot at least three rounds above.
    fn decide_from(&self, round: Round, deciding: &Hash) -> Decision {
        let certs = self.dag.history_at(deciding, round.saturating_add(2));
        let voting = self.meta.schedule.set_for_round(round.next());
        self.slot_versions(round)
            .into_iter()
            .find(|v| certs.iter().any(|c| self.certifies(c, v, &voting)))
            .map_or(Decision::Skip, Decision::Commit)
    }

    /// Decisions of every slot from `lowest` up to the highest one the DAG
    /// can say anything of, by round. The top slots are decided first: the
    /// indirect rule reads the decisions above.
    pub(super) fn decide_slots(&self, lowest: Round) -> BTreeMap<Round, Decision> {
        let mut out = BTreeMap::new();
        let Some(top) = self.dag.highest_round() else {
            return out;
        };
        let mut slots = Vec::new();
        let mut r = lowest;
        while r.next() <= top {
            slots.push(r);
            r = r.saturating_add(2);
        }
        for round in slots.into_iter().rev() {
            // Both rounds above the slot must belong to a decided epoch: the
            // quorums are those of their sets.
            if !self.epoch_decided(round.saturating_add(2)) {
                out.insert(round, Decision::Undecided);
                continue;
            }
            let mut decision = self.decide_directly(round);
            if decision == Decision::Undecided {
                let deciding = out
                    .range(round.saturating_add(3)..)
                    .map(|(_, d)| *d)
                    .find(|d| *d != Decision::Skip);
                if let Some(Decision::Commit(c)) = deciding {
                    decision = self.decide_from(round, &c);
                }
            }
            out.insert(round, decision);
        }
        out
    }
}
