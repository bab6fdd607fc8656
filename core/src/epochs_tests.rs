//! Unit tests of `epochs.rs`.

use super::*;
use crate::crypto::Keypair;

const CHAIN: Hash = Hash([7; 32]);
const LIMITS: SetLimits = SetLimits {
    epoch_rounds: 10,
    max_validators: 64,
    max_validator_weight: 1_000,
};

fn keys(prefix: &str, n: usize) -> Vec<Keypair> {
    (0..n)
        .map(|i| Keypair::from_label(&format!("{prefix}{i}")))
        .collect()
}

fn set_of(keys: &[Keypair]) -> ValidatorSet {
    ValidatorSet::new(
        keys.iter()
            .map(|k| ValidatorInfo::new(k.public(), "x:1"))
            .collect(),
    )
}

/// The certificate of `next` for `epoch`, signed by `signers` (of the set
/// before).
fn certify(
    epoch: u64,
    next: &[Keypair],
    previous: &[Keypair],
    signers: &[usize],
) -> EpochCertificate {
    let members = set_of(next).members().to_vec();
    let link = EpochLink {
        chain_id: CHAIN,
        epoch: Epoch(epoch),
        first_round: Round(epoch * LIMITS.epoch_rounds),
        set_hash: set_hash(&members),
    };
    let votes = signers
        .iter()
        .map(|i| (previous[*i].public(), link.sign(&previous[*i])))
        .collect();
    EpochCertificate::from_votes(&link, members, &set_of(previous), &votes).expect("a quorum")
}

#[test]
fn a_certificate_signed_by_a_quorum_verifies_and_any_change_to_it_does_not() {
    let (old, new) = (keys("old", 4), keys("new", 3));
    let cert = certify(2, &new, &old, &[0, 1, 3]);
    let previous = set_of(&old);
    assert_eq!(cert.verify(CHAIN, &previous, &LIMITS), Ok(()));
    assert_eq!(cert.signers.len(), 3);
    assert_eq!(
        cert.verify(Hash([8; 32]), &previous, &LIMITS),
        Err(CertificateInvalid::BadSignature(cert.signers[0].0)),
        "another chain's link"
    );
    let mut swapped = cert.clone();
    swapped.members[0].weight = 2;
    assert!(matches!(
        swapped.verify(CHAIN, &previous, &LIMITS),
        Err(CertificateInvalid::BadSignature(_))
    ));
    let mut thin = cert.clone();
    thin.signers.pop();
    assert_eq!(
        thin.verify(CHAIN, &previous, &LIMITS),
        Err(CertificateInvalid::NoQuorum { got: 2, quorum: 3 })
    );
    let mut repeated = cert.clone();
    repeated.signers[1] = repeated.signers[0];
    assert_eq!(
        repeated.verify(CHAIN, &previous, &LIMITS),
        Err(CertificateInvalid::MalformedSigners)
    );
    let mut late = cert.clone();
    late.first_round = Round(21);
    assert_eq!(
        late.verify(CHAIN, &previous, &LIMITS),
        Err(CertificateInvalid::WrongFirstRound(Round(21)))
    );
    let mut unsorted = cert;
    unsorted.members.reverse();
    assert_eq!(
        unsorted.verify(CHAIN, &previous, &LIMITS),
        Err(CertificateInvalid::MalformedMembers)
    );
    let two = BTreeMap::from([(old[0].public(), Signature([0; 64]))]);
    let link = EpochLink {
        chain_id: CHAIN,
        epoch: Epoch(2),
        first_round: Round(20),
        set_hash: Hash([1; 32]),
    };
    assert!(EpochCertificate::from_votes(&link, vec![], &previous, &two).is_none());
}

#[test]
fn a_chain_from_genesis_takes_each_link_in_turn_and_refuses_gaps_and_forks() {
    let (g, a, b) = (keys("g", 4), keys("a", 4), keys("b", 4));
    let genesis = set_of(&g).members().to_vec();
    let mut chain = CertifiedChain::from_genesis(CHAIN, &genesis, LIMITS);
    assert_eq!(chain.next_epoch(), Epoch(2));
    let two = certify(2, &a, &g, &[0, 1, 2]);
    let three = certify(3, &b, &a, &[1, 2, 3]);
    assert_eq!(
        chain.extend(&three),
        Err(ChainError::Gap {
            next: Epoch(2),
            got: Epoch(3)
        })
    );
    assert_eq!(chain.extend(&two), Ok(true));
    assert_eq!(chain.extend(&two), Ok(false), "known already");
    // Signed by the genesis keys instead of set 2's: refused.
    let forged = certify(3, &b, &g, &[0, 1, 2]);
    assert!(matches!(chain.extend(&forged), Err(ChainError::Invalid(_))));
    assert_eq!(chain.extend(&three), Ok(true));
    assert_eq!(chain.tip_epoch(), Some(Epoch(3)));
    assert_eq!(chain.hash_at(Epoch(3)), Some(three.set_hash()));
    // The genesis keys sign a second set for epoch 2: a fork.
    let fork = certify(2, &b, &g, &[1, 2, 3]);
    assert_eq!(chain.extend(&fork), Err(ChainError::Conflict(Epoch(2))));
    // A second set for epoch 3 that set 2 did not sign: a forgery.
    let forged = certify(3, &a, &g, &[0, 1, 2]);
    assert!(matches!(chain.extend(&forged), Err(ChainError::Invalid(_))));
}

#[test]
fn a_checkpoint_takes_its_set_on_trust_and_checks_every_link_after_it() {
    let (g, a, b, leaked) = (keys("g", 4), keys("a", 4), keys("b", 4), keys("z", 4));
    let genesis = set_of(&g).members().to_vec();
    let at_five = certify(5, &a, &leaked, &[0, 1, 2]);
    let trusted = (Epoch(5), at_five.set_hash());
    let mut chain = CertifiedChain::from_checkpoint(CHAIN, &genesis, LIMITS, trusted).unwrap();
    assert_eq!(chain.next_epoch(), Epoch(5));
    assert_eq!(chain.tip_epoch(), None);
    // Another set for the checkpoint's epoch, however well signed: refused.
    let other = certify(5, &b, &leaked, &[0, 1, 2]);
    assert!(matches!(
        chain.extend(&other),
        Err(ChainError::Invalid(
            CertificateInvalid::NotTheCheckpoint { .. }
        ))
    ));
    assert_eq!(chain.extend(&at_five), Ok(true));
    assert!(matches!(
        chain.extend(&certify(6, &b, &leaked, &[0, 1, 2])),
        Err(ChainError::Invalid(_))
    ));
    assert_eq!(chain.extend(&certify(6, &b, &a, &[0, 1, 2])), Ok(true));
    assert_eq!(chain.root_epoch(), Some(Epoch(5)));
    assert_eq!(chain.hash_at(Epoch(4)), None, "nothing before the root");
    // A checkpoint at genesis must be the genesis set.
    let genesis_hash = set_hash(&genesis);
    assert!(
        CertifiedChain::from_checkpoint(CHAIN, &genesis, LIMITS, (Epoch(1), genesis_hash)).is_ok()
    );
    assert!(
        CertifiedChain::from_checkpoint(CHAIN, &genesis, LIMITS, (Epoch(0), Hash([3; 32])))
            .is_err()
    );
}

#[test]
fn a_vote_names_its_whole_link() {
    let k = Keypair::from_label("m");
    let link = EpochLink {
        chain_id: CHAIN,
        epoch: Epoch(4),
        first_round: Round(40),
        set_hash: Hash([5; 32]),
    };
    let vote = EpochVote {
        epoch: Epoch(4),
        set_hash: Hash([5; 32]),
        signature: link.sign(&k),
    };
    assert_eq!(vote.link(CHAIN, 10), Some(link));
    assert!(link.verify(&k.public(), &vote.signature));
    assert!(!vote
        .link(CHAIN, 20)
        .unwrap()
        .verify(&k.public(), &vote.signature));
}

/// Review finding (issue 13): a certificate's first round was computed as
/// `epoch × epoch_rounds` from the peer's epoch, which overflows (a panic
/// with overflow checks) for a far epoch.
#[test]
fn a_certificate_of_a_far_epoch_is_refused_without_overflow() {
    let (old, new) = (keys("old", 4), keys("new", 4));
    let mut cert = certify(2, &new, &old, &[0, 1, 2]);
    cert.epoch = Epoch(u64::MAX);
    assert!(matches!(
        cert.verify(CHAIN, &set_of(&old), &LIMITS),
        Err(CertificateInvalid::WrongFirstRound(_))
    ));
    let genesis = set_of(&old).members().to_vec();
    let trusted = (Epoch(u64::MAX), cert.set_hash());
    let mut chain = CertifiedChain::from_checkpoint(CHAIN, &genesis, LIMITS, trusted).unwrap();
    assert!(chain.extend(&cert).is_err());
}

/// Issue 13, weighted quorums: a certificate needs signers weighing a
/// quorum of the outgoing set, not a count of heads. With weights 3, 1, 1,
/// 1 (quorum 5 of 6), the three light members together do not certify,
/// and the heavy one with two light ones does.
#[test]
fn a_certificate_counts_the_weight_of_its_signers_not_their_number() {
    let (old, new) = (keys("heavy", 4), keys("next", 3));
    let mut members = set_of(&old).members().to_vec();
    let heavy = old
        .iter()
        .position(|k| k.public() == members[0].key)
        .unwrap();
    members[0].weight = 3;
    let previous = ValidatorSet::new(members);
    assert_eq!(previous.quorum(), 5);
    let next = set_of(&new).members().to_vec();
    let link = EpochLink {
        chain_id: CHAIN,
        epoch: Epoch(2),
        first_round: Round(2 * LIMITS.epoch_rounds),
        set_hash: set_hash(&next),
    };
    let votes = |signers: &[usize]| -> BTreeMap<PublicKey, Signature> {
        signers
            .iter()
            .map(|i| (old[*i].public(), link.sign(&old[*i])))
            .collect()
    };
    let light: Vec<usize> = (0..4).filter(|i| *i != heavy).collect();
    assert!(
        EpochCertificate::from_votes(&link, next.clone(), &previous, &votes(&light)).is_none(),
        "three heads, weight 3"
    );
    let two_light_and_heavy = [light[0], light[1], heavy];
    let cert = EpochCertificate::from_votes(&link, next, &previous, &votes(&two_light_and_heavy))
        .expect("weight 5");
    assert_eq!(cert.verify(CHAIN, &previous, &LIMITS), Ok(()));
    // And a checker counts weight too: the light three's signatures alone,
    // put in the certificate by hand, do not verify.
    let mut light_only = cert.clone();
    let positions = |k: &Keypair| {
        previous
            .members()
            .iter()
            .position(|m| m.key == k.public())
            .unwrap() as u16
    };
    light_only.signers = light
        .iter()
        .map(|i| (positions(&old[*i]), link.sign(&old[*i])))
        .collect();
    light_only.signers.sort_by_key(|(p, _)| *p);
    assert!(matches!(
        light_only.verify(CHAIN, &previous, &LIMITS),
        Err(CertificateInvalid::NoQuorum { .. })
    ));
}
