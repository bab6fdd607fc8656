//! `bluepods bench`, epoch certificates: how many bytes one certificate
//! takes and how long a joiner spends checking a chain of them from
//! genesis (`core/src/epochs.rs`).
//!
//! The chain is built before the clock starts: `validators` members, one of
//! them replaced at every boundary (so every link names a new set), each
//! certificate signed by the smallest quorum of the set before. The timed
//! part is exactly a joiner's work: `CertifiedChain::extend` per epoch,
//! which checks the shape, the signers' weight and every signature.

use bluepods_core::epochs::{set_hash, CertifiedChain, EpochCertificate, EpochLink, SetLimits};
use bluepods_core::genesis::ValidatorInfo;
use bluepods_core::validators::ValidatorSet;
use bluepods_core::{ChainParams, Epoch, Hash, Keypair, PublicKey, Round, Signature};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// One measured chain.
#[derive(Clone, Debug)]
pub struct CertBench {
    /// Epochs certified (from epoch 2 on).
    pub epochs: u64,
    /// Members of each set.
    pub validators: usize,
    /// Encoded bytes of one certificate (the largest of the chain).
    pub bytes_per_certificate: usize,
    /// Time to check the whole chain.
    pub elapsed: Duration,
}

impl std::fmt::Display for CertBench {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let per_epoch_us = self.elapsed.as_secs_f64() * 1e6 / self.epochs.max(1) as f64;
        write!(
            f,
            "epoch certificates: {} epochs of {} validators, {} bytes each, chain checked in {:.3}s ({:.0} µs per epoch)",
            self.epochs,
            self.validators,
            self.bytes_per_certificate,
            self.elapsed.as_secs_f64(),
            per_epoch_us
        )
    }
}

fn member(i: u64) -> (Keypair, ValidatorInfo) {
    let key = Keypair::from_label(&format!("bench-validator-{i}"));
    let info = ValidatorInfo::new(key.public(), format!("10.0.{}.{}:9000", i / 256, i % 256));
    (key, info)
}

/// Builds and checks a chain of `epochs` certificates over sets of
/// `validators` members.
pub fn run(epochs: u64, validators: usize) -> CertBench {
    let params = ChainParams::default();
    let limits = SetLimits {
        epoch_rounds: params.epoch_rounds,
        max_validators: params.max_validators,
        max_validator_weight: params.max_validator_weight,
    };
    let chain_id = Hash([0xbe; 32]);
    let mut keys: BTreeMap<PublicKey, Keypair> = BTreeMap::new();
    let mut current: Vec<ValidatorInfo> = (0..validators as u64)
        .map(|i| {
            let (k, info) = member(i);
            keys.insert(k.public(), k);
            info
        })
        .collect();
    let genesis = current.clone();
    let mut certs = Vec::new();
    for (e, joining_id) in (2..2 + epochs).zip(validators as u64..) {
        let previous = ValidatorSet::new(current.clone());
        // One member out, one in.
        let (k, joining) = member(joining_id);
        keys.insert(k.public(), k);
        current.remove(0);
        current.push(joining);
        let set = ValidatorSet::new(current.clone());
        let link = EpochLink {
            chain_id,
            epoch: Epoch(e),
            first_round: Round(e * params.epoch_rounds),
            set_hash: set_hash(set.members()),
        };
        let quorum = previous.quorum() as usize;
        let votes: BTreeMap<PublicKey, Signature> = previous
            .members()
            .iter()
            .take(quorum)
            .map(|m| (m.key, link.sign(&keys[&m.key])))
            .collect();
        let cert = EpochCertificate::from_votes(&link, set.members().to_vec(), &previous, &votes)
            .expect("a quorum signed");
        certs.push(cert);
    }
    let bytes_per_certificate = certs
        .iter()
        .map(EpochCertificate::encoded_len)
        .max()
        .unwrap_or(0);
    let start = Instant::now();
    let mut chain = CertifiedChain::from_genesis(chain_id, &genesis, limits);
    for cert in &certs {
        assert_eq!(
            chain.extend(cert),
            Ok(true),
            "a link of the benchmark chain"
        );
    }
    CertBench {
        epochs,
        validators,
        bytes_per_certificate,
        elapsed: start.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_chain_of_rotating_sets_checks_from_genesis_and_reports_its_size() {
        let b = super::run(20, 4);
        assert_eq!(b.epochs, 20);
        // 4 members of about 60 bytes and 3 signers of 66: about 450 bytes.
        assert!((300..700).contains(&b.bytes_per_certificate), "{b}");
    }
}
