//! Where the network is, as far as this node can prove it: the highest
//! round that enough members reached for one honest member to be among
//! them, and the highest peer claim believed because of it.
//!
//! Both answers are asked for after every input a node handles
//! (`drive_sync`) and by the snapshot and status code, but their inputs —
//! the validator set, the node's own round, the rounds members were seen
//! to sign, and each ready peer's key and claim — change far less often
//! (issue 14: computing them afresh each time was 17% of a 50-node
//! simulation). So the last answer is kept with exactly what it was
//! computed from, and it is given again only while all of that is the
//! same.

use crate::ids::{PeerId, PublicKey, Round};
use crate::node::Node;
use crate::peers::Peer;
use crate::store::Store;
use crate::validators::ValidatorSet;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

/// The rounds members of the validator set were seen to reach: for each
/// member, the highest round of a vertex by it that passed its checks. A
/// round that members of more than the faulty weight reached, one honest
/// member reached, so the network is there; any claim beyond it is
/// unproven. Bounded by the set: only members are recorded.
#[derive(Debug, Default)]
pub(super) struct ProvenRounds {
    by_member: BTreeMap<PublicKey, Round>,
    /// How many times a member's round rose: the memo's cue.
    rises: u64,
}

impl ProvenRounds {
    /// `member` signed a vertex of `round`.
    pub(super) fn saw(&mut self, member: PublicKey, round: Round) {
        match self.by_member.get_mut(&member) {
            Some(top) if *top >= round => return,
            Some(top) => *top = round,
            None => {
                self.by_member.insert(member, round);
            }
        }
        self.rises += 1;
    }

    /// The highest round members of `set` weighing its honest support
    /// reached.
    fn reached_by(&self, set: &ValidatorSet) -> Option<Round> {
        set.reached_by_honest_support(self.by_member.iter().map(|(k, r)| (*k, *r)))
    }
}

/// The last answers and what they were computed from. Behind a mutex only
/// because they are asked for through `&self`; a node is driven from one
/// thread, so it is never contended.
#[derive(Debug, Default)]
pub(super) struct RoundMemo(Mutex<Option<Memo>>);

#[derive(Debug)]
struct Memo {
    /// Held, so no other set can take its address while the memo lives.
    set: Arc<ValidatorSet>,
    own: Option<Round>,
    proven_rises: u64,
    /// Each ready peer, in id order.
    peers: Vec<(PeerId, Option<PublicKey>, Option<Round>)>,
    answers: Answers,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Answers {
    network_round_proven: Option<Round>,
    trusted_best_round: Option<Round>,
}

impl Memo {
    fn holds_for<'a>(
        &self,
        set: &Arc<ValidatorSet>,
        own: Option<Round>,
        proven_rises: u64,
        mut ready: impl Iterator<Item = &'a Peer>,
    ) -> bool {
        Arc::ptr_eq(&self.set, set)
            && self.own == own
            && self.proven_rises == proven_rises
            && self.peers.iter().all(|&(id, key, round)| {
                ready
                    .next()
                    .is_some_and(|p| p.id == id && p.key == key && p.highest_round == round)
            })
            && ready.next().is_none()
    }
}

impl<S: Store> Node<S> {
    /// The highest round claimed by a peer whose claim may move this node to
    /// catch-up. A validator in the set listens only to fellow validators:
    /// otherwise any listener could claim a far-away round and keep it from
    /// producing. Any claim counts only up to the highest round proven: one
    /// that f + 1 members of the set were seen to reach in signed vertices,
    /// or that f + 1 members (proven keys) claim — either way an honest one
    /// is there — or this node's own. Beyond it a claim is a word, and one
    /// peer's word would move a live node into catch-up or a snapshot sync,
    /// asking mostly the liar.
    pub(in crate::node) fn trusted_best_round(&self) -> Option<Round> {
        if self.chain.is_none() {
            return self.peers.best_round();
        }
        self.proven_answers()?.trusted_best_round
    }

    /// The highest round members of the set weighing more than its faulty
    /// weight are known to have reached — in signed vertices seen, or by
    /// their own claims (so one honest member did) — if this node heard
    /// from that many yet. Until it has, it does not know where the network
    /// is.
    pub(in crate::node) fn network_round_proven(&self) -> Option<Round> {
        self.proven_answers()?.network_round_proven
    }

    /// Both answers, from the memo when nothing they depend on changed;
    /// `None` without a chain.
    fn proven_answers(&self) -> Option<Answers> {
        let chain = self.chain.as_ref()?;
        let own = self.highest_round();
        let set = chain
            .consensus
            .meta()
            .schedule
            .set_for_round(own.unwrap_or_default());
        let mut memo = self
            .round_memo
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(m) = memo.as_ref() {
            if m.holds_for(&set, own, self.proven.rises, self.peers.ready()) {
                // Every test checks the memo against a fresh answer: an
                // input the memo missed shows up as a failure anywhere.
                debug_assert_eq!(m.answers, self.compute_proven_answers(&set, own));
                return Some(m.answers);
            }
        }
        let answers = self.compute_proven_answers(&set, own);
        *memo = Some(Memo {
            set,
            own,
            proven_rises: self.proven.rises,
            peers: self
                .peers
                .ready()
                .map(|p| (p.id, p.key, p.highest_round))
                .collect(),
            answers,
        });
        Some(answers)
    }

    fn compute_proven_answers(&self, set: &ValidatorSet, own: Option<Round>) -> Answers {
        let claims = self
            .peers
            .ready()
            .filter_map(|p| Some((p.key?, p.highest_round?)))
            // A member knows its own round as well as any claim.
            .chain(own.map(|own| (self.key.public(), own)));
        let network_round_proven = set
            .reached_by_honest_support(claims)
            .max(self.proven.reached_by(set));
        let claimed = if self.config.role != crate::wire::Role::Validator
            || !set.contains(&self.key.public())
        {
            self.peers.best_round()
        } else {
            self.peers
                .ready()
                .filter(|p| p.key.is_some_and(|k| set.contains(&k)))
                .filter_map(|p| p.highest_round)
                .max()
        };
        let trusted_best_round = match (claimed, network_round_proven.max(own)) {
            (Some(c), Some(p)) if c > p => {
                crate::cov::mark("unproven_claim_cut_down");
                Some(p)
            }
            (Some(_), None) => None,
            (claimed, _) => claimed,
        };
        Answers {
            network_round_proven,
            trusted_best_round,
        }
    }
}
