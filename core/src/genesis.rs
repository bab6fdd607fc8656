//! The genesis document: the chain's parameters, its first validators and
//! objects.
//!
//! The chain id is the hash of the genesis document, so every parameter that
//! decides validity (size limits, epoch length, garbage-collection depth) is
//! bound into it: two nodes that agree on the chain id agree on the rules.

use crate::crypto::{self, Domain};
use crate::ids::{Hash, ObjectId, PublicKey};
pub use crate::params::ChainParams;
use crate::tx::Object;
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

/// A validator as the set records it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ValidatorInfo {
    /// The validator's node key.
    pub key: PublicKey,
    /// Where to dial it (`host:port`).
    pub address: String,
    /// Voting weight: a quorum is more than two thirds of the set's total.
    /// Genesis members carry the weight the genesis gives them (1 unless
    /// it says otherwise); an admitted validator weighs 1.
    #[serde(default = "one")]
    pub weight: u64,
}

fn one() -> u64 {
    1
}

impl ValidatorInfo {
    /// A validator of weight 1.
    pub fn new(key: PublicKey, address: impl Into<String>) -> Self {
        ValidatorInfo {
            key,
            address: address.into(),
            weight: 1,
        }
    }
}

/// The first state of the chain.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Genesis {
    /// Human-readable network name.
    pub chain_name: String,
    /// Wall-clock creation time (informational only; never used for decisions).
    pub created_unix_ms: u64,
    /// The rules.
    pub params: ChainParams,
    /// The initial validator set.
    pub validators: Vec<ValidatorInfo>,
    /// Objects present at genesis.
    pub objects: Vec<Object>,
    /// Number of deterministic synthetic objects added at genesis (test
    /// networks with large states; see [`synthetic_object`]).
    pub synthetic_objects: u64,
}

/// Owner of synthetic genesis objects: a key nobody holds.
pub const SYNTHETIC_OWNER: PublicKey = PublicKey([0x5e; 32]);

/// Payload size of a synthetic object, so that each encodes to about 180 bytes.
pub const SYNTHETIC_DATA_BYTES: usize = 100;

impl Genesis {
    /// The chain id: the hash of this document.
    pub fn chain_id(&self) -> Hash {
        crypto::hash_borsh(Domain::Genesis, self)
    }

    /// A structural check run before a genesis received from a peer is adopted.
    pub fn validate(&self) -> Result<(), String> {
        if self.validators.is_empty() {
            return Err("genesis has no validators".into());
        }
        if self.validators.len() > self.params.max_validators as usize {
            return Err(format!(
                "genesis has {} validators, limit {}",
                self.validators.len(),
                self.params.max_validators
            ));
        }
        if self.params.epoch_rounds < 4 || self.params.epoch_rounds % 2 != 0 {
            return Err("epoch_rounds must be even and at least 4".into());
        }
        if self.params.gc_depth_rounds < 4 {
            return Err("gc_depth_rounds must be at least 4".into());
        }
        if self.params.snapshot_interval_rounds < 2 {
            return Err("snapshot_interval_rounds must be at least 2".into());
        }
        let p = &self.params;
        if p.max_validators > u32::from(u16::MAX) {
            // Certificates name their signers by a 16-bit position.
            return Err(format!(
                "max_validators is {}, at most {}",
                p.max_validators,
                u16::MAX
            ));
        }
        let heaviest_total = p
            .max_validator_weight
            .checked_mul(u64::from(p.max_validators));
        if heaviest_total.is_none_or(|w| w > u64::MAX / 4) {
            return Err("max_validator_weight × max_validators must stay under 2^62".into());
        }
        if p.inactive_epochs_max == 0
            || p.candidate_expiry_epochs == 0
            || p.max_churn_per_epoch == 0
        {
            return Err(
                "inactive_epochs_max, candidate_expiry_epochs and max_churn_per_epoch must be at least 1"
                    .into(),
            );
        }
        let max_weight = self.params.max_validator_weight;
        if let Some(v) = self
            .validators
            .iter()
            .find(|v| v.weight == 0 || v.weight > max_weight)
        {
            return Err(format!(
                "genesis validator {} has weight {}; weights go from 1 to {max_weight}",
                v.key.short(),
                v.weight
            ));
        }
        let mut keys: Vec<_> = self.validators.iter().map(|v| v.key).collect();
        keys.sort();
        keys.dedup();
        if keys.len() != self.validators.len() {
            return Err("genesis lists a validator twice".into());
        }
        Ok(())
    }
}

/// The `index`-th synthetic genesis object: a deterministic id and payload.
pub fn synthetic_object(index: u64) -> Object {
    let seed = crypto::hash(Domain::Synthetic, &index.to_le_bytes());
    let mut data = Vec::with_capacity(SYNTHETIC_DATA_BYTES);
    let mut block = seed;
    while data.len() < SYNTHETIC_DATA_BYTES {
        data.extend_from_slice(&block.0);
        block = crypto::hash(Domain::Synthetic, block.as_bytes());
    }
    data.truncate(SYNTHETIC_DATA_BYTES);
    Object {
        id: ObjectId(crypto::hash_parts(Domain::Object, &[b"synthetic", &index.to_le_bytes()]).0),
        version: 1,
        owner: SYNTHETIC_OWNER,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keypair;

    fn genesis() -> Genesis {
        Genesis {
            chain_name: "test".into(),
            created_unix_ms: 0,
            params: ChainParams::default(),
            validators: vec![ValidatorInfo::new(
                Keypair::from_label("v0").public(),
                "127.0.0.1:9000",
            )],
            objects: vec![],
            synthetic_objects: 0,
        }
    }

    #[test]
    fn chain_id_binds_every_parameter() {
        let a = genesis();
        let mut b = genesis();
        b.params.gc_depth_rounds += 2;
        assert_ne!(a.chain_id(), b.chain_id());
        assert!(a.validate().is_ok());
    }

    #[test]
    fn invalid_genesis_is_rejected() {
        let mut g = genesis();
        g.params.epoch_rounds = 5;
        assert!(g.validate().is_err());
        let mut g = genesis();
        g.validators.push(g.validators[0].clone());
        assert!(g.validate().is_err());
    }

    #[test]
    fn synthetic_objects_are_deterministic_and_distinct() {
        assert_eq!(synthetic_object(3), synthetic_object(3));
        assert_ne!(synthetic_object(3).id, synthetic_object(4).id);
        let len = borsh::object_length(&synthetic_object(0)).unwrap();
        assert!((150..=200).contains(&len), "encoded length {len}");
    }
}
