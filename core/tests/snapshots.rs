//! Snapshots on the serving side, on the in-process harness.

use bluepods_core::harness::{test_genesis, Cluster, Faults};
use bluepods_core::snapshot::{decompress_chunk, verify_chunk};
use bluepods_core::store::Store;
use bluepods_core::tx::{Operation, TxBody};
use bluepods_core::{ChainParams, Event, Keypair, Round};
use std::collections::BTreeMap;

fn params() -> ChainParams {
    ChainParams {
        snapshot_interval_rounds: 10,
        ..ChainParams::default()
    }
}

/// Four validators with some transactions, run for `ms`.
fn busy_cluster(seed: u64, ms: u64) -> Cluster {
    let (genesis, keys) = test_genesis(4, params());
    let mut c = Cluster::new(
        seed,
        Faults {
            min_delay_ms: 1,
            max_delay_ms: 40,
            drop_per_mille: 0,
        },
    );
    c.add_validators(&genesis, &keys, 50);
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
        .filter_map(|s| s.vertex.body.attestation)
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
    use bluepods_core::wire::{Message, RequestId};
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
