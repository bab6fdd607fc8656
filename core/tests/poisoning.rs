//! What a joiner keeps from peers while it downloads — the gossip buffer —
//! cannot be filled, or emptied, by a vertex nobody honest would send.

use bluepods_core::config::{SyncConfig, SyncMode};
use bluepods_core::harness::{test_genesis, Cluster, Faults};
use bluepods_core::vertex::VertexBody;
use bluepods_core::{ChainParams, Hash, Keypair, Message, NodeConfig, Role, Round, SyncPhase};

/// A joiner downloading a 60,000-object snapshot from four slow validators,
/// past the point where its buffer holds gossip.
fn joiner_mid_download(seed: u64) -> (Cluster, Vec<Keypair>, usize) {
    let params = ChainParams {
        snapshot_interval_rounds: 10,
        ..ChainParams::default()
    };
    let (mut genesis, keys) = test_genesis(4, params);
    genesis.synthetic_objects = 60_000;
    let mut c = Cluster::new(seed, Faults::fixed_delay(10));
    c.add_validators(&genesis, &keys, 50);
    c.run_for(2_000);
    for v in 0..4 {
        c.slow_chunks_from(v, 300);
    }
    let config = NodeConfig {
        role: Role::Listener,
        bootstrap_peers: vec!["v0".into()],
        sync: SyncConfig {
            default_strategy: SyncMode::Snapshot,
            parallel_download_limit: 1,
            ..SyncConfig::default()
        },
        ..NodeConfig::default()
    };
    let j = c.add_joiner("j0", Keypair::from_label("joiner"), config);
    let buffering = c.run_until(30_000, |c| {
        c.node(j).phase() == SyncPhase::SnapshotFetch && c.node(j).status().buffer_vertices >= 20
    });
    assert!(buffering, "the joiner downloads and buffers gossip");
    (c, keys, j)
}

fn far_vertex(c: &Cluster, author: &Keypair) -> Message {
    Message::Vertex(
        VertexBody {
            chain_id: c.node(0).chain_id().unwrap(),
            round: Round(1_000_000_000),
            author: author.public(),
            parents: vec![Hash([1; 32])],
            txs: vec![],
            attestation: None,
            evidence: Vec::new(),
            epoch_vote: None,
        }
        .sign(author),
    )
}

/// Postmortem: while a snapshot downloaded, buffered vertices' authors
/// were not checked and the round bound evicted the oldest rounds first,
/// so one self-signed vertex at round 10^9 — from anyone, or from one
/// Byzantine validator — emptied the buffer of every real vertex.
#[test]
fn a_vertex_at_a_far_round_does_not_empty_a_joiners_buffer() {
    let outsider = Keypair::from_label("outsider");
    for (seed, byzantine) in [(31, false), (32, true)] {
        let (mut c, keys, j) = joiner_mid_download(seed);
        let before = c.node(j).status().buffer_vertices;
        let author = if byzantine { &keys[3] } else { &outsider };
        let msg = far_vertex(&c, author);
        assert!(c.send_as(3, j, msg), "v3 is connected to the joiner");
        c.run_for(20);
        assert_eq!(c.node(j).phase(), SyncPhase::SnapshotFetch);
        let after = c.node(j).status().buffer_vertices;
        assert!(
            after >= before,
            "byzantine={byzantine}: {before} buffered before, {after} after"
        );
    }
}
