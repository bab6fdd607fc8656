//! Epoch certificates in the harness (issue 13): validators certify each
//! epoch's set, every node holds the chain, a snapshot joiner checks it
//! link by link before it counts an attestation, a forged certificate bans
//! its sender, and a joiner started from a checkpoint past a rotation
//! refuses a manifest signed by the keys of the set before it.

use bluepods_core::config::SyncMode;
use bluepods_core::epochs::TrustCheckpoint;
use bluepods_core::genesis::ValidatorInfo;
use bluepods_core::harness::{test_genesis, validator_config, Cluster, Faults};
use bluepods_core::wire::Message;
use bluepods_core::{ChainParams, Epoch, Event, Keypair, NodeConfig, Role, SyncPhase};

fn short_epochs() -> ChainParams {
    ChainParams {
        epoch_rounds: 6,
        snapshot_interval_rounds: 10,
        ..ChainParams::default()
    }
}

fn snapshot_joiner(via: &str) -> NodeConfig {
    let mut c = NodeConfig {
        role: Role::Listener,
        bootstrap_peers: vec![via.into()],
        ..NodeConfig::default()
    };
    c.sync.default_strategy = SyncMode::Snapshot;
    c
}

fn certified(c: &Cluster, i: usize) -> Vec<Epoch> {
    c.nodes[i]
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::EpochCertified { epoch, .. } => Some(*epoch),
            _ => None,
        })
        .collect()
}

#[test]
fn validators_certify_every_epoch_and_a_snapshot_joiner_fetches_and_checks_the_chain() {
    for n in [1, 4] {
        let (genesis, keys) = test_genesis(n, short_epochs());
        let mut c = Cluster::new(61, Faults::fixed_delay(5));
        for (i, k) in keys.iter().enumerate() {
            c.add_genesis_node(&format!("v{i}"), k.clone(), &genesis, validator_config(50));
        }
        c.run_for(3_000);
        for i in 0..n {
            let epochs = certified(&c, i);
            assert!(epochs.len() >= 5, "n={n} v{i}: {epochs:?}");
            let want: Vec<Epoch> = (2..2 + epochs.len() as u64).map(Epoch).collect();
            assert_eq!(epochs, want, "n={n} v{i}: one after the other from epoch 2");
        }
        let j = c.add_joiner("j0", Keypair::from_label("joiner"), snapshot_joiner("v0"));
        assert!(
            c.run_until(10_000, |c| c.node(j).phase() == SyncPhase::Live),
            "n={n}: {:?}",
            c.nodes[j].events.iter().rev().take(8).collect::<Vec<_>>()
        );
        let fetched = c.nodes[j]
            .events
            .iter()
            .filter(|(_, e)| matches!(e, Event::EpochCertified { fetched: true, .. }))
            .count();
        assert!(fetched >= 5, "n={n}: the joiner fetched {fetched}");
    }
}

/// A node that rewrites the certificates it serves: each names a set of
/// one, the hostile node's own key, signed by that key.
fn forge_certificates(msg: &mut Message, key: &Keypair, chain_id: bluepods_core::Hash) {
    let Message::EpochCertificates { certs, .. } = msg else {
        return;
    };
    for cert in certs {
        cert.members = vec![ValidatorInfo::new(key.public(), "forged:1")];
        let link = cert.link(chain_id);
        cert.signers = vec![(0, link.sign(key))];
    }
}

fn bans(c: &Cluster, i: usize, addr: &str) -> Vec<String> {
    c.nodes[i]
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::PeerBanned {
                addr: a, reason, ..
            } if a == addr => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

/// Four validators and a listener `l0` (index 4, key "liar") that joined
/// by range and is live: it follows honestly until a test makes it lie.
fn validators_and_a_live_liar(seed: u64) -> (Cluster, bluepods_core::Genesis, Keypair, usize) {
    let (genesis, keys) = test_genesis(4, short_epochs());
    let mut c = Cluster::new(seed, Faults::fixed_delay(5));
    for (i, k) in keys.iter().enumerate() {
        c.add_genesis_node(&format!("v{i}"), k.clone(), &genesis, validator_config(50));
    }
    c.run_for(2_000);
    let liar = Keypair::from_label("liar");
    let mut cfg = snapshot_joiner("v0");
    cfg.sync.default_strategy = SyncMode::Range;
    let l = c.add_joiner("l0", liar.clone(), cfg);
    assert!(c.run_until(5_000, |c| c.node(l).phase() == SyncPhase::Live));
    (c, genesis, liar, l)
}

/// A snapshot joiner `j0` whose only peer is `l0`: it bans `l0`, for
/// reasons that all say `why`. Its index.
fn joiner_bans_l0(c: &mut Cluster, why: &str) -> usize {
    let j = c.add_joiner("j0", Keypair::from_label("joiner"), snapshot_joiner("l0"));
    assert!(c.run_until(5_000, |c| !bans(c, j, "l0").is_empty()));
    let banned = bans(c, j, "l0");
    assert!(banned.iter().all(|r| r.contains(why)), "{banned:?}");
    j
}

#[test]
fn a_forged_epoch_certificate_is_refused_and_its_sender_banned() {
    // A listener that follows honestly, then lies about certificates.
    let (mut c, genesis, liar, l) = validators_and_a_live_liar(62);
    let chain_id = genesis.chain_id();
    // It also keeps other nodes' addresses to itself: it is the joiner's
    // only peer.
    c.rewrite_from(l, move |m| match m {
        Message::Peers { peers, .. } => peers.clear(),
        _ => forge_certificates(m, &liar, chain_id),
    });
    let j = joiner_bans_l0(&mut c, "forged epoch certificate");
    assert_eq!(
        c.node(j).checkpoint().map(|t| t.epoch),
        Some(Epoch(1)),
        "nothing taken from it"
    );
    assert_ne!(c.node(j).phase(), SyncPhase::Live);
}

/// Postmortem of the gap issue 13 names: a joiner counted attestations
/// against the set it derived from genesis and adopted the manifest's
/// schedule unchecked, so one leaked genesis key could sign a manifest
/// naming its own keys, and the joiner followed it. Here the genesis
/// validator admits three others and leaves; then, out of the set, it
/// serves a forged chain of certificates (itself, alone, every epoch) and
/// a manifest whose schedule and attestation are its own. A joiner started
/// from a checkpoint past the rotation refuses both, bans it, and joins
/// the real network.
#[test]
fn after_a_rotation_a_joiner_from_a_checkpoint_refuses_what_the_old_key_signs() {
    use bluepods_core::consensus::ConsensusMeta;
    use bluepods_core::harness::signed_tx;
    use bluepods_core::tx::Operation;
    use bluepods_core::vertex::{Attestation, VertexBody};
    let (genesis, keys) = test_genesis(1, short_epochs());
    let mut c = Cluster::new(63, Faults::fixed_delay(5));
    let mut boot = validator_config(50);
    boot.auto_approve = true;
    c.add_genesis_node("v0", keys[0].clone(), &genesis, boot);
    c.run_for(500);
    for i in 1..4 {
        let mut cfg = validator_config(50);
        cfg.bootstrap_peers = vec!["v0".into()];
        cfg.listen_addr = Some(format!("v{i}"));
        c.add_joiner(
            &format!("v{i}"),
            Keypair::from_label(&format!("new-{i}")),
            cfg,
        );
    }
    assert!(c.run_until(20_000, |c| c
        .node(0)
        .validators()
        .is_some_and(|v| v.members.len() == 4)));
    let old = keys[0].clone();
    let leave = signed_tx(&genesis, &old, 1, vec![Operation::LeaveValidator]);
    c.submit(0, leave).expect("accepted");
    assert!(
        c.run_until(20_000, |c| c.node(1).validators().is_some_and(|v| v
            .members
            .len()
            == 3
            && v.members.iter().all(|m| m.key != old.public())))
    );
    c.run_for(1_000);
    let checkpoint: TrustCheckpoint = c.node(1).checkpoint().expect("certified");
    // The old key turns against the network.
    let chain_id = genesis.chain_id();
    let forged_schedule = ConsensusMeta::at_genesis(&genesis).schedule;
    c.rewrite_from(0, move |m| match m {
        Message::EpochCertificates { .. } => forge_certificates(m, &old, chain_id),
        Message::Manifest {
            manifest,
            attestations,
            ..
        } => {
            manifest.frontier.meta.schedule = forged_schedule.clone();
            let attestation = VertexBody {
                chain_id,
                round: manifest.round,
                author: old.public(),
                parents: Vec::new(),
                txs: Vec::new(),
                attestation: Some(Box::new(Attestation {
                    round: manifest.round,
                    manifest_root: manifest.root(),
                })),
                evidence: Vec::new(),
                epoch_vote: None,
            }
            .sign(&old);
            *attestations = vec![attestation];
        }
        _ => {}
    });
    let mut cfg = snapshot_joiner("v0");
    cfg.bootstrap_peers.push("v1".into());
    cfg.sync.trust_checkpoint = Some(checkpoint);
    let j = c.add_joiner("j0", Keypair::from_label("joiner"), cfg);
    assert!(c.run_until(20_000, |c| matches!(
        c.node(j).state_verification(),
        Some((_, true))
    )));
    let banned = bans(&c, j, "v0");
    assert!(
        !banned.is_empty()
            && banned
                .iter()
                .all(|r| r.contains("forged epoch certificate")
                    || r.contains("not the certified one")),
        "the old key's node is banned: {banned:?}"
    );
    let set = c.node(j).validators().unwrap();
    assert!(set.members.iter().all(|m| m.key != keys[0].public()));
    assert_eq!(set.members.len(), 3);
}

/// Issue 13: a manifest's validator schedule must be the certified set of
/// its epoch. A peer that follows honestly rewrites the manifests it
/// serves to name a set of its own (its key alone, with the genesis's
/// epoch length, so only the set differs); the joiner, holding the real
/// certificates, refuses the manifest before it looks at one attestation,
/// bans the peer, and takes nothing from it.
#[test]
fn a_manifest_whose_set_is_not_the_certified_one_is_refused_and_its_sender_banned() {
    use bluepods_core::validators::ValidatorSchedule;
    let params = short_epochs();
    let (mut c, _, liar, l) = validators_and_a_live_liar(63);
    let own_set = ValidatorSchedule::new(
        vec![ValidatorInfo::new(liar.public(), "l0:1")],
        params.epoch_rounds,
        params.max_validators,
    );
    c.rewrite_from(l, move |m| match m {
        Message::Peers { peers, .. } => peers.clear(),
        Message::Manifest { manifest, .. } => {
            manifest.frontier.meta.schedule = own_set.clone();
        }
        _ => {}
    });
    let j = joiner_bans_l0(&mut c, "is not the certified one");
    assert_ne!(c.node(j).phase(), SyncPhase::Live, "nothing taken from it");
}

/// Issue 13: nodes store the certificate chain they serve. A validator
/// restarted from its store holds every certificate it had before any
/// peer could send it one again — also those of epochs whose votes are
/// long pruned from its DAG, which it could not assemble again — and
/// certifies on from there.
#[test]
fn a_restarted_validator_holds_the_certificates_it_stored() {
    let (genesis, keys) = test_genesis(4, short_epochs());
    let mut c = Cluster::new(64, Faults::fixed_delay(5));
    for (i, k) in keys.iter().enumerate() {
        c.add_genesis_node(&format!("v{i}"), k.clone(), &genesis, validator_config(50));
    }
    // ~160 rounds, ~26 epochs of 6 rounds: far more than the DAG keeps.
    c.run_for(8_000);
    let before = c.node(1).checkpoint().expect("certified epochs");
    assert!(before.epoch >= Epoch(20), "{before:?}");
    c.crash(1);
    c.start(1);
    assert_eq!(c.node(1).checkpoint(), Some(before), "from its own store");
    c.run_for(1_000);
    let after = c.node(1).checkpoint().unwrap();
    assert!(after.epoch > before.epoch, "{before:?} -> {after:?}");
}

/// Postmortem (issue 14, found by `scripts/bench-strategies.sh`): a joiner
/// dropped a manifest more than two epochs past its certificate chain,
/// fetched the certificates in milliseconds, and then sat in discovery until
/// the stall timeout made it ask again: every snapshot join of a network
/// older than three epochs lost a second (1.2 s of a 1.7 s join here).
#[test]
fn a_manifest_far_past_the_joiners_certificates_is_taken_once_they_come() {
    let (genesis, keys) = test_genesis(1, short_epochs());
    let mut c = Cluster::new(62, Faults::fixed_delay(5));
    c.add_genesis_node("v0", keys[0].clone(), &genesis, validator_config(50));
    c.run_for(3_000);
    let j = c.add_joiner("j0", Keypair::from_label("joiner"), snapshot_joiner("v0"));
    assert!(c.run_until(10_000, |c| c.node(j).phase() == SyncPhase::Live));
    let at = |phase: SyncPhase| {
        c.nodes[j]
            .events
            .iter()
            .find(|(_, e)| matches!(e, Event::PhaseChanged { to, .. } if *to == phase))
            .map(|(t, _)| t.0)
            .expect("the joiner went through the phase")
    };
    let choosing_ms = at(SyncPhase::SnapshotFetch) - at(SyncPhase::Discovery);
    let stall_timeout_ms = NodeConfig::default().stall_timeout_ms;
    assert!(
        choosing_ms < stall_timeout_ms,
        "discovery took {choosing_ms} ms, as long as a stall timeout ({stall_timeout_ms} ms)"
    );
}
