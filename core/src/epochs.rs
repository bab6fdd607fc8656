//! Epoch certificates: how a joiner proves which validators are in force,
//! from genesis or from a checkpoint it trusts, without replaying history.
//!
//! At each epoch boundary the outgoing set certifies the incoming one. The
//! set of epoch `e + 1` is decided early in epoch `e` (`validators.rs`);
//! each member of set `e` then signs the *link* — chain id, epoch `e + 1`,
//! its first round, and the hash of set `e + 1` with weights and addresses —
//! and carries the signature in one of its vertices (`EpochVote`). Any node
//! that computed the same set gathers those votes; once their signers weigh
//! a quorum of set `e` it holds the certificate, stores it and serves it.
//!
//! A joiner starts from a root it trusts: the genesis set (epochs 0 and 1),
//! or `--trust-checkpoint EPOCH:SET_HASH` given by its operator. It checks
//! each certificate against the set before it, link by link, and only then
//! counts attestations: a manifest's validator set must be the certified
//! set of its epoch, and only that set's members attest.
//!
//! What a root protects against: keys of a set that no longer validates
//! cost their holders nothing, so old keys may leak. A quorum of leaked
//! keys of set `e` can sign a second certificate for `e + 1` and go on from
//! there (a long-range fork). A joiner from genesis that meets both forks
//! refuses them ([`ChainError::Conflict`]); one that meets only the forged
//! one cannot tell. A checkpoint past the old keys' last epoch closes that
//! door: the joiner never looks further back than the checkpoint.
//!
//! Certificates guard snapshot joins. A node that joins by range replays
//! the DAG from genesis and derives every set itself, on the genesis keys'
//! word; so a node given a checkpoint joins from a snapshot.

use crate::crypto::{self, Domain};
use crate::genesis::ValidatorInfo;
use crate::ids::{Epoch, Hash, PublicKey, Round, Signature};
use crate::validators::ValidatorSet;
use borsh::{BorshDeserialize, BorshSerialize};
use std::collections::BTreeMap;

/// The hash that certificates sign for a set: its members, sorted by key,
/// with weights and addresses.
pub fn set_hash(members: &[ValidatorInfo]) -> Hash {
    crypto::hash_borsh(Domain::ValidatorSet, &members)
}

/// What a member of set `epoch − 1` signs for the set of `epoch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct EpochLink {
    /// The chain.
    pub chain_id: Hash,
    /// The epoch whose set is certified.
    pub epoch: Epoch,
    /// Its first round.
    pub first_round: Round,
    /// [`set_hash`] of its set.
    pub set_hash: Hash,
}

impl EpochLink {
    /// The bytes signed.
    fn digest(&self) -> Hash {
        crypto::hash_borsh(Domain::EpochLink, self)
    }

    /// `key`'s signature of this link.
    pub fn sign(&self, key: &crypto::Keypair) -> Signature {
        key.sign(Domain::EpochLink, self.digest().as_bytes())
    }

    /// Whether `sig` is `key`'s signature of this link.
    pub fn verify(&self, key: &PublicKey, sig: &Signature) -> bool {
        crypto::verify(key, Domain::EpochLink, self.digest().as_bytes(), sig)
    }
}

/// A member's vote for the next epoch's set, carried in one of its vertices.
/// With the chain id and the epoch length it names the whole link, so the
/// signature is checked with the vertex.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct EpochVote {
    /// The epoch whose set is voted for.
    pub epoch: Epoch,
    /// [`set_hash`] of that set.
    pub set_hash: Hash,
    /// The author's signature of the link.
    pub signature: Signature,
}

/// The first round of `epoch`; `None` past the last round there is (an
/// epoch only a peer's lie can name).
pub fn first_round_of(epoch: Epoch, epoch_rounds: u64) -> Option<Round> {
    epoch.0.checked_mul(epoch_rounds).map(Round)
}

impl EpochVote {
    /// The link this vote signs, on `chain_id` with `epoch_rounds`; `None`
    /// for an epoch with no first round.
    pub fn link(&self, chain_id: Hash, epoch_rounds: u64) -> Option<EpochLink> {
        Some(EpochLink {
            chain_id,
            epoch: self.epoch,
            first_round: first_round_of(self.epoch, epoch_rounds)?,
            set_hash: self.set_hash,
        })
    }
}

/// The set of an epoch, certified by a quorum of the set before it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct EpochCertificate {
    /// The epoch whose set this is.
    pub epoch: Epoch,
    /// Its first round.
    pub first_round: Round,
    /// The set, sorted by key.
    pub members: Vec<ValidatorInfo>,
    /// Signers: positions in the previous set's members (sorted by key),
    /// ascending, each with its signature of the link.
    pub signers: Vec<(u16, Signature)>,
}

/// Why a certificate is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CertificateInvalid {
    /// Not the epoch the chain expects next.
    #[error("certificate of epoch {got}, expected {expected}")]
    WrongEpoch {
        /// The epoch wanted.
        expected: Epoch,
        /// The one given.
        got: Epoch,
    },
    /// The first round is not the epoch's.
    #[error("first round {0} is not the epoch's")]
    WrongFirstRound(Round),
    /// Members unsorted, repeated, empty, too many, or of a weight outside
    /// the genesis limits.
    #[error("malformed member list")]
    MalformedMembers,
    /// Signers unsorted, repeated, or outside the previous set.
    #[error("malformed signer list")]
    MalformedSigners,
    /// The signers weigh less than a quorum of the previous set.
    #[error("signers weigh {got}, quorum is {quorum}")]
    NoQuorum {
        /// Their weight.
        got: u64,
        /// Needed.
        quorum: u64,
    },
    /// A signature does not verify.
    #[error("signature of signer {0} does not verify")]
    BadSignature(u16),
    /// A checkpoint's certificate names another set than the operator gave.
    #[error("set hash {got} is not the trusted checkpoint's {want}")]
    NotTheCheckpoint {
        /// What the operator trusts.
        want: Hash,
        /// What the certificate names.
        got: Hash,
    },
}

/// Limits a certificate's member list must keep (the genesis's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetLimits {
    /// `ChainParams::epoch_rounds`.
    pub epoch_rounds: u64,
    /// `ChainParams::max_validators`.
    pub max_validators: u32,
    /// `ChainParams::max_validator_weight`.
    pub max_validator_weight: u64,
}

impl EpochCertificate {
    /// The certificate of `members` for `link.epoch` from the signatures
    /// `votes` of members of `previous` (others are left out); `None` if
    /// those weigh less than its quorum.
    pub fn from_votes(
        link: &EpochLink,
        members: Vec<ValidatorInfo>,
        previous: &ValidatorSet,
        votes: &BTreeMap<PublicKey, Signature>,
    ) -> Option<Self> {
        let signers: Vec<(u16, Signature)> = previous
            .members()
            .iter()
            .enumerate()
            .filter_map(|(i, m)| Some((u16::try_from(i).ok()?, *votes.get(&m.key)?)))
            .collect();
        let keys = signers
            .iter()
            .map(|(i, _)| &previous.members()[*i as usize].key);
        (previous.weight_of_keys(keys) >= previous.quorum()).then_some(EpochCertificate {
            epoch: link.epoch,
            first_round: link.first_round,
            members,
            signers,
        })
    }

    /// The hash of the certified set.
    pub fn set_hash(&self) -> Hash {
        set_hash(&self.members)
    }

    /// The link its signers signed.
    pub fn link(&self, chain_id: Hash) -> EpochLink {
        EpochLink {
            chain_id,
            epoch: self.epoch,
            first_round: self.first_round,
            set_hash: self.set_hash(),
        }
    }

    /// The certified set.
    pub fn set(&self) -> ValidatorSet {
        ValidatorSet::new(self.members.clone())
    }

    /// Checks everything but the signatures: the shape, and that the
    /// signers weigh a quorum of `previous`.
    fn check_shape(
        &self,
        previous: &ValidatorSet,
        limits: &SetLimits,
    ) -> Result<(), CertificateInvalid> {
        if Some(self.first_round) != first_round_of(self.epoch, limits.epoch_rounds) {
            return Err(CertificateInvalid::WrongFirstRound(self.first_round));
        }
        let sorted = self.members.windows(2).all(|w| w[0].key < w[1].key);
        let weights_ok = self
            .members
            .iter()
            .all(|m| (1..=limits.max_validator_weight).contains(&m.weight));
        if !sorted
            || !weights_ok
            || self.members.is_empty()
            || self.members.len() > limits.max_validators as usize
        {
            return Err(CertificateInvalid::MalformedMembers);
        }
        let ascending = self.signers.windows(2).all(|w| w[0].0 < w[1].0);
        let inside = self
            .signers
            .iter()
            .all(|(i, _)| (*i as usize) < previous.len());
        if !ascending || !inside {
            return Err(CertificateInvalid::MalformedSigners);
        }
        let signers = self
            .signers
            .iter()
            .map(|(i, _)| &previous.members()[*i as usize].key);
        let got = previous.weight_of_keys(signers);
        if got < previous.quorum() {
            return Err(CertificateInvalid::NoQuorum {
                got,
                quorum: previous.quorum(),
            });
        }
        Ok(())
    }

    /// Checks the certificate against `previous`, the certified set of the
    /// epoch before, on `chain_id`.
    pub fn verify(
        &self,
        chain_id: Hash,
        previous: &ValidatorSet,
        limits: &SetLimits,
    ) -> Result<(), CertificateInvalid> {
        self.check_shape(previous, limits)?;
        let link = self.link(chain_id);
        for (i, sig) in &self.signers {
            if !link.verify(&previous.members()[*i as usize].key, sig) {
                return Err(CertificateInvalid::BadSignature(*i));
            }
        }
        Ok(())
    }

    /// Its encoded size.
    pub fn encoded_len(&self) -> usize {
        borsh::to_vec(self).map_or(0, |b| b.len())
    }
}

/// Why a certificate does not extend a chain.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// It does not verify: whoever sent it lies.
    #[error("{0}")]
    Invalid(#[from] CertificateInvalid),
    /// A second certified set for an epoch already certified: a quorum of
    /// that epoch's predecessors signed two sets (leaked old keys). The
    /// chain cannot be trusted past it.
    #[error("two certified sets for epoch {0}")]
    Conflict(Epoch),
    /// Further than the next epoch: ask for the ones between first.
    #[error("certificate of epoch {got}, the chain needs {next} first")]
    Gap {
        /// The next epoch the chain can take.
        next: Epoch,
        /// The one given.
        got: Epoch,
    },
}

/// A chain of certified sets, checked link by link from a trusted root.
#[derive(Clone, Debug)]
pub struct CertifiedChain {
    chain_id: Hash,
    limits: SetLimits,
    /// A checkpoint whose certificate has not arrived yet: its epoch and
    /// the set hash the operator trusts.
    awaiting_root: Option<(Epoch, Hash)>,
    /// The certified set hash of each epoch from the root on (32 bytes an
    /// epoch: a million epochs fit in 40 MB).
    hashes: BTreeMap<Epoch, Hash>,
    /// The sets of the last `RECENT_SETS` certified epochs: the newest
    /// (the tip) checks the next link, the others a second certificate of
    /// an epoch already certified (a fork if it verifies, a forgery if not).
    recent: BTreeMap<Epoch, ValidatorSet>,
}

/// Epochs whose sets a chain keeps to tell a fork from a forgery.
const RECENT_SETS: u64 = 16;

impl CertifiedChain {
    /// Rooted at genesis: epochs 0 and 1 are the genesis set's.
    pub fn from_genesis(chain_id: Hash, genesis: &[ValidatorInfo], limits: SetLimits) -> Self {
        let set = ValidatorSet::new(genesis.to_vec());
        let hash = set_hash(set.members());
        CertifiedChain {
            chain_id,
            limits,
            awaiting_root: None,
            hashes: [(Epoch(0), hash), (Epoch(1), hash)].into_iter().collect(),
            recent: [(Epoch(0), set.clone()), (Epoch(1), set)]
                .into_iter()
                .collect(),
        }
    }

    /// Rooted at a checkpoint the operator trusts: the set of `epoch` has
    /// hash `set_hash`. Its certificate is taken on that hash alone; the
    /// ones after it are checked link by link. A checkpoint at epoch 0 or
    /// 1 is the genesis set.
    pub fn from_checkpoint(
        chain_id: Hash,
        genesis: &[ValidatorInfo],
        limits: SetLimits,
        (epoch, trusted): (Epoch, Hash),
    ) -> Result<Self, String> {
        if epoch.0 <= 1 {
            let chain = Self::from_genesis(chain_id, genesis, limits);
            let ours = chain.hash_at(epoch).unwrap_or(Hash([0; 32]));
            return if ours == trusted {
                Ok(chain)
            } else {
                Err(format!(
                    "trust checkpoint {epoch}:{trusted} is not this chain's genesis set ({ours})"
                ))
            };
        }
        Ok(CertifiedChain {
            chain_id,
            limits,
            awaiting_root: Some((epoch, trusted)),
            hashes: BTreeMap::new(),
            recent: BTreeMap::new(),
        })
    }

    /// The next epoch whose certificate the chain can take.
    pub fn next_epoch(&self) -> Epoch {
        match (&self.awaiting_root, self.tip_epoch()) {
            (Some((e, _)), _) => *e,
            (None, Some(e)) => Epoch(e.0 + 1),
            (None, None) => Epoch(0),
        }
    }

    /// The last certified epoch, if any.
    pub fn tip_epoch(&self) -> Option<Epoch> {
        self.recent.keys().next_back().copied()
    }

    /// The certified set hash of `epoch`, if the chain reaches it (and
    /// does not start after it).
    pub fn hash_at(&self, epoch: Epoch) -> Option<Hash> {
        self.hashes.get(&epoch).copied()
    }

    /// The epoch the chain starts at (its root), once it has one.
    pub fn root_epoch(&self) -> Option<Epoch> {
        self.hashes.keys().next().copied()
    }

    /// Adds `cert` if it is the next link and verifies. Returns false for a
    /// certificate of an epoch already certified with the same set.
    pub fn extend(&mut self, cert: &EpochCertificate) -> Result<bool, ChainError> {
        let got = cert.epoch;
        if let Some(known) = self.hashes.get(&got) {
            if *known == cert.set_hash() {
                return Ok(false);
            }
            // Another set for a certified epoch: a fork if the set before
            // signed it, a forgery if not; too old to tell, it is ignored.
            let Some(previous) = got
                .0
                .checked_sub(1)
                .and_then(|e| self.recent.get(&Epoch(e)))
            else {
                return Ok(false);
            };
            cert.verify(self.chain_id, previous, &self.limits)?;
            return Err(ChainError::Conflict(got));
        }
        let next = self.next_epoch();
        if got != next {
            return Err(if got > next {
                ChainError::Gap { next, got }
            } else {
                // Before the root: nothing to check it against.
                CertificateInvalid::WrongEpoch {
                    expected: next,
                    got,
                }
                .into()
            });
        }
        if let Some((_, want)) = self.awaiting_root {
            if Some(cert.first_round) != first_round_of(got, self.limits.epoch_rounds) {
                return Err(CertificateInvalid::WrongFirstRound(cert.first_round).into());
            }
            let hash = cert.set_hash();
            if hash != want {
                return Err(CertificateInvalid::NotTheCheckpoint { want, got: hash }.into());
            }
            self.awaiting_root = None;
        } else if let Some(tip) = self.recent.values().next_back() {
            cert.verify(self.chain_id, tip, &self.limits)?;
        }
        self.hashes.insert(got, cert.set_hash());
        self.recent.insert(got, cert.set());
        if let Some(old) = got.0.checked_sub(RECENT_SETS) {
            self.recent.retain(|e, _| e.0 > old);
        }
        Ok(true)
    }
}

/// `--trust-checkpoint EPOCH:SET_HASH`: the operator vouches that the set
/// of `epoch` hashes to `set_hash` (as `GET /v1/validators` on a node it
/// trusts shows: `checkpoint`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrustCheckpoint {
    /// The epoch.
    pub epoch: Epoch,
    /// [`set_hash`] of its set.
    pub set_hash: Hash,
}

impl std::fmt::Display for TrustCheckpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.epoch.0, self.set_hash)
    }
}

impl std::str::FromStr for TrustCheckpoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |why: String| format!("trust checkpoint {s:?}: {why} (expected EPOCH:SET_HASH)");
        let (epoch, hash) = s.split_once(':').ok_or_else(|| bad("no ':'".into()))?;
        let epoch = epoch
            .parse::<u64>()
            .map_err(|e| bad(format!("epoch: {e}")))?;
        let set_hash = Hash::from_hex(hash).map_err(|e| bad(format!("set hash: {e}")))?;
        Ok(TrustCheckpoint {
            epoch: Epoch(epoch),
            set_hash,
        })
    }
}

impl serde::Serialize for TrustCheckpoint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for TrustCheckpoint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
#[path = "epochs_tests.rs"]
mod tests;
