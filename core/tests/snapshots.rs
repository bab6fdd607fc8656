//! Snapshots on the serving side, on the in-process harness.

use bluepods_core::harness::{test_genesis, validator_config, Cluster, Faults};
use bluepods_core::snapshot::{decompress_chunk, verify_chunk};
use bluepods_core::store::Store;
use bluepods_core::tx::{Operation, TxBody};
use bluepods_core::wire::{Message, RequestId};
use bluepods_core::{ChainParams, Event, Keypair, NodeConfig, Round};
use std::collections::BTreeMap;

fn params() -> ChainParams {
    ChainParams {
        snapshot_interval_rounds: 10,
        ..ChainParams::default()
    }
}

/// Four validators with some transactions, run for `ms`.
fn busy_cluster(seed: u64, ms: u64) -> Cluster {
    busy_cluster_with(seed, ms, validator_config(50))
}

/// `busy_cluster` with every validator on `config`.
fn busy_cluster_with(seed: u64, ms: u64, config: NodeConfig) -> Cluster {
    let (genesis, keys) = test_genesis(4, params());
    let mut c = Cluster::new(
        seed,
        Faults {
            min_delay_ms: 1,
            max_delay_ms: 40,
            drop_per_mille: 0,
        },
    );
    for (i, k) in keys.iter().enumerate() {
        c.add_genesis_node(&format!("v{i}"), k.clone(), &genesis, config.clone());
    }
    c.run_for(300);
    let alice = Keypair::from_label("alice");
    for n in 0..40u64 {
        let tx = TxBody {
            chain_id: genesis.chain_id(),
            sender: alice.public(),
            nonce: n,
            expiry: Round(10_000),
            ops: vec![Operation::Create {
                data: vec![n as u8; 100],
            }],
        }
        .sign(&alice);
        c.submit((n % 4) as usize, tx).unwrap();
    }
    c.run_for(ms);
    c
}

/// Verifies a chunk as its kind says; returns its record count.
fn verified_len(info: &bluepods_core::snapshot::ChunkInfo, raw: &[u8]) -> usize {
    use bluepods_core::snapshot::{ChunkKind, OutcomeRecord};
    match info.kind {
        ChunkKind::Objects => verify_chunk::<bluepods_core::Object>(info, raw)
            .unwrap()
            .len(),
        ChunkKind::Outcomes => verify_chunk::<OutcomeRecord>(info, raw).unwrap().len(),
    }
}

fn built(c: &Cluster, i: usize) -> BTreeMap<Round, bluepods_core::Hash> {
    c.nodes[i]
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::SnapshotBuilt { round, root, .. } => Some((*round, *root)),
            _ => None,
        })
        .collect()
}

#[test]
fn four_validators_build_identical_manifests_for_the_same_round() {
    let c = busy_cluster(11, 4_000);
    let maps: Vec<_> = (0..4).map(|i| built(&c, i)).collect();
    let mut common = 0;
    for (round, root) in &maps[0] {
        for m in &maps[1..] {
            if let Some(other) = m.get(round) {
                assert_eq!(other, root, "round {round}");
                common += 1;
            }
        }
    }
    assert!(common >= 6, "too few common snapshot rounds: {maps:?}");
}

#[test]
fn validators_attest_their_manifest_roots_in_their_next_vertex() {
    let c = busy_cluster(12, 3_000);
    let roots = built(&c, 0);
    let store = c.node(0).store();
    let attested: Vec<_> = store
        .vertices_in_rounds(Round(0), Round(u64::MAX), usize::MAX)
        .unwrap()
        .into_iter()
        .filter(|s| s.vertex.author() == c.node(0).public_key())
        .filter_map(|s| s.vertex.body.attestation.as_deref().cloned())
        .collect();
    assert!(!attested.is_empty());
    for a in &attested {
        assert_eq!(roots.get(&a.round), Some(&a.manifest_root));
    }
}

#[test]
fn the_last_two_snapshots_stay_servable_and_their_chunks_verify() {
    let c = busy_cluster(13, 4_000);
    let node = c.node(1);
    let kept: Vec<_> = node.snapshots().collect();
    assert_eq!(kept.len(), 2);
    assert_eq!(node.store().manifests().unwrap().len(), 2);
    for s in kept {
        let m = &s.manifest;
        assert_eq!(m.object_count, 40);
        assert_eq!(m.outcome_count, 40);
        for info in &m.chunks {
            let bytes = node
                .store()
                .snapshot_chunk(m.round, info.index)
                .unwrap()
                .expect("chunk stored");
            let raw = decompress_chunk(&bytes, info.raw_len).unwrap();
            assert_eq!(verified_len(info, &raw), info.count as usize);
        }
    }
}

#[test]
fn a_restarted_node_still_serves_its_snapshots() {
    let mut c = busy_cluster(14, 4_000);
    let before = c.node(2).status().snapshot.expect("a snapshot");
    c.crash(2);
    c.start(2);
    assert_eq!(c.node(2).status().snapshot, Some(before));
}

#[test]
fn a_peer_fetches_the_manifest_and_every_chunk_exactly_as_stored() {
    use bluepods_core::harness::attach_peer;
    use bluepods_core::{Action, Input, PeerId, Role};
    let mut c = busy_cluster(15, 4_000);
    let now = c.now();
    let node = c.nodes[1].node.as_mut().unwrap();
    let (round, root) = node.status().snapshot.expect("a snapshot");
    let peer = PeerId(9_999);
    attach_peer(
        node,
        now,
        peer,
        &Keypair::from_label("fetcher"),
        Role::Listener,
    )
    .unwrap();
    let mut ask = |msg: Message| {
        node.handle(now, Input::Message { peer, msg });
        let mut answers = Vec::new();
        while let Some(a) = node.poll_action() {
            if let Action::Send { peer: to, msg, .. } = a {
                if to == peer {
                    answers.push(msg);
                }
            }
        }
        answers.pop().expect("an answer")
    };
    let Message::Manifest { manifest, .. } = ask(Message::GetManifest {
        request: RequestId(1),
        round: None,
    }) else {
        panic!("no manifest");
    };
    assert_eq!((manifest.round, manifest.root()), (round, root));
    for info in &manifest.chunks {
        let answer = ask(Message::GetChunk {
            request: RequestId(2),
            round,
            index: info.index,
        });
        let Message::Chunk { bytes, .. } = answer else {
            panic!("no chunk {}", info.index)
        };
        let raw = decompress_chunk(&bytes, info.raw_len).unwrap();
        assert_eq!(verified_len(info, &raw), info.count as usize);
    }
    let missing = ask(Message::GetChunk {
        request: RequestId(3),
        round,
        index: 9_999,
    });
    assert!(matches!(missing, Message::NotAvailable { .. }));
    let old = ask(Message::GetManifest {
        request: RequestId(4),
        round: Some(Round(1)),
    });
    assert!(matches!(old, Message::NotAvailable { .. }));
}

/// The rounds node `i` serves.
fn served(c: &Cluster, i: usize) -> Vec<Round> {
    c.node(i).snapshots().map(|s| s.manifest.round).collect()
}

/// Keeps asking node 1 (as node 0) for a chunk of the snapshot of `round`,
/// every 500 ms for `ms`: a download in progress, as the server sees it.
fn download_from_node_1(c: &mut Cluster, round: Round, ms: u64) {
    for n in 0..ms / 500 {
        let ask = Message::GetChunk {
            request: RequestId(1_000_000 + n),
            round,
            index: 0,
        };
        assert!(c.send_as(0, 1, ask));
        c.run_for(500);
    }
}

fn lease_config() -> NodeConfig {
    NodeConfig {
        snapshot_lease_ms: 2_000,
        ..validator_config(50)
    }
}

/// Postmortem (issue 10): only the last two snapshots were kept, so a
/// joiner whose download spanned two snapshot intervals (~1 s here, ~20 s
/// on a real network) lost its source and started over, forever on a slow
/// link.
#[test]
fn a_snapshot_being_downloaded_outlives_newer_snapshots_until_its_lease_ends() {
    let mut c = busy_cluster_with(21, 3_000, lease_config());
    let oldest = served(&c, 1)[0];
    download_from_node_1(&mut c, oldest, 6_000);
    let during = served(&c, 1);
    assert!(during.contains(&oldest), "{oldest} pruned: {during:?}");
    assert!(during.len() > 2, "newer snapshots were built: {during:?}");
    assert!(c.node(1).store().manifests().unwrap().len() > 2);
    // Nobody asks any more: the lease runs out and the next build prunes it.
    c.run_for(3_000);
    let after = served(&c, 1);
    assert!(!after.contains(&oldest), "{after:?}");
    assert_eq!(after.len(), 2, "back to snapshots_kept: {after:?}");
    assert_eq!(c.node(1).store().manifests().unwrap().len(), 2);
}

#[test]
fn no_lease_keeps_a_snapshot_past_the_retention_time() {
    let config = NodeConfig {
        snapshot_retention_max_ms: 2_500,
        ..lease_config()
    };
    let mut c = busy_cluster_with(22, 3_000, config);
    let oldest = served(&c, 1)[0];
    download_from_node_1(&mut c, oldest, 6_000);
    assert!(!served(&c, 1).contains(&oldest));
}

#[test]
fn leased_snapshots_give_way_when_the_disk_budget_is_spent() {
    let config = NodeConfig {
        snapshot_disk_budget_bytes: 1,
        ..lease_config()
    };
    let mut c = busy_cluster_with(23, 3_000, config);
    let oldest = served(&c, 1)[0];
    download_from_node_1(&mut c, oldest, 3_000);
    let kept = served(&c, 1);
    assert!(!kept.contains(&oldest), "{kept:?}");
    assert_eq!(kept.len(), 2, "the newest snapshots_kept stay: {kept:?}");
}
