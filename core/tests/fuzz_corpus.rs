//! Replays every input committed under `fuzz/corpus/<target>/` through the
//! same function the libFuzzer target runs (`bluepods_core::fuzzing`), so
//! `cargo test` keeps what the fuzzers found. `write_seed_corpora` (run with
//! `--ignored`) writes the hand-made starting inputs.

use bluepods_core::fuzzing;
use bluepods_core::wire::{self, Hello, Message, RequestId, PROTOCOL_VERSION};
use bluepods_core::{Hash, Keypair, Role, Round};
use std::path::{Path, PathBuf};

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 5] = [
    ("wire_decode", fuzzing::wire_decode),
    ("handshake", fuzzing::handshake),
    ("node_inputs", fuzzing::node_inputs),
    ("cluster_schedule", fuzzing::cluster_schedule),
    ("chunk_delta", fuzzing::chunk_delta),
];

fn corpus(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

#[test]
fn every_committed_corpus_input_passes_its_target() {
    for (name, run) in TARGETS {
        let dir = corpus(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no corpus for {name}");
        for f in files {
            let data = std::fs::read(&f).unwrap();
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(outcome.is_ok(), "{name}: {} fails", f.display());
        }
    }
}

fn messages() -> Vec<Message> {
    let key = Keypair::from_label("corpus");
    vec![
        Message::Hello(Hello {
            version: PROTOCOL_VERSION,
            chain_id: Some(Hash([1; 32])),
            node_key: key.public(),
            role: Role::Listener,
            highest_round: Some(Round(5)),
            committed_round: Some(Round(4)),
            snapshot_round: None,
            nonce: [9; 32],
            listen_addr: Some("127.0.0.1:9000".into()),
        }),
        Message::GetGenesis {
            request: RequestId(1),
        },
        Message::GetRounds {
            request: RequestId(2),
            from: Round(0),
            to: Round(10),
        },
        Message::GetVertices {
            request: RequestId(3),
            hashes: vec![Hash([2; 32])],
        },
        Message::Status {
            highest_round: Some(Round(100)),
            committed_round: Some(Round(98)),
        },
        Message::GetManifest {
            request: RequestId(4),
            round: None,
        },
        Message::GetChunk {
            request: RequestId(5),
            round: Round(40),
            index: 0,
        },
        Message::GetPeers {
            request: RequestId(6),
        },
        Message::NotAvailable {
            request: RequestId(7),
            reason: "none".into(),
        },
    ]
}

#[test]
#[ignore = "writes the seed corpora; run by hand"]
fn write_seed_corpora() {
    let write = |target: &str, name: &str, data: &[u8]| {
        let dir = corpus(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), data).unwrap();
    };
    let mut handshake = Vec::new();
    for (i, m) in messages().iter().enumerate() {
        let bytes = wire::encode(m);
        write("wire_decode", &format!("seed-{i:02}-{}", m.kind()), &bytes);
        if bytes.len() < 255 {
            handshake.push(bytes.len() as u8);
            handshake.extend_from_slice(&bytes);
        }
    }
    write("handshake", "seed-all-messages", &handshake);
    // node_inputs: connect, prove, crafted requests of each kind, time.
    let mut inputs = vec![1, 0, 1, 1, 1, 5, 100];
    for k in 0..7u8 {
        inputs.extend_from_slice(&[1, 3, 7, k, 3, 3, 3, 3]);
    }
    inputs.extend_from_slice(&[2, 4, 1, 5, 200]);
    write("node_inputs", "seed-requests", &inputs);
    write(
        "cluster_schedule",
        "seed-calm",
        &[0, 0, 0, 0, 0, 0, 0, 1, 10, 0, 3],
    );
    write(
        "cluster_schedule",
        "seed-lossy",
        &[0, 0, 0, 0, 0, 0, 0, 2, 100, 40, 5],
    );
    // chunk_delta: two overlapping states, then crafted parts.
    let mut delta = vec![20];
    for k in 0..20u8 {
        delta.extend_from_slice(&[k, 1, k, 10]);
    }
    delta.push(20);
    for k in 5..25u8 {
        delta.extend_from_slice(&[k, k % 2, k, 10]);
    }
    delta.extend_from_slice(&[9, 4, 0, 3, 1, 10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0, 200]);
    write("chunk_delta", "seed-overlap", &delta);
}
