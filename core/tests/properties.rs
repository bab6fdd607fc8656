//! Property tests: whatever the delivery order, delays and losses, validators
//! commit the same vertex sequence and end with the same state.

use bluepods_core::harness::{commit_sequence, test_genesis, Cluster, Faults};
use bluepods_core::tx::{Operation, TxBody};
use bluepods_core::{ChainParams, Keypair, Round};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn four_validators_agree_under_random_schedules(
        seed in any::<u64>(),
        max_delay in 1u64..150,
        drop_per_mille in 0u64..60,
        txs in 1usize..12,
    ) {
        let (genesis, keys) = test_genesis(4, ChainParams::default());
        let mut c = Cluster::new(seed, Faults { min_delay_ms: 1, max_delay_ms: max_delay, drop_per_mille });
        c.add_validators(&genesis, &keys, 50);
        c.run_for(500);
        let alice = Keypair::from_label("alice");
        for n in 0..txs {
            let tx = TxBody {
                chain_id: genesis.chain_id(),
                sender: alice.public(),
                nonce: n as u64,
                expiry: Round(10_000),
                ops: vec![Operation::Create { data: vec![n as u8; 8] }],
            }
            .sign(&alice);
            c.submit(n % 4, tx).unwrap();
        }
        let all_committed = |c: &Cluster| {
            (0..4).all(|i| c.node(i).status().executed_txs == txs as u64)
        };
        prop_assert!(c.run_until(30_000, all_committed), "not all transactions committed: {:?}",
            (0..4).map(|i| c.node(i).status().executed_txs).collect::<Vec<_>>());
        let seqs: Vec<_> = (0..4).map(|i| commit_sequence(c.node(i).store())).collect();
        let shortest = seqs.iter().map(Vec::len).min().unwrap();
        prop_assert!(shortest > 0);
        for s in &seqs[1..] {
            prop_assert_eq!(&s[..shortest], &seqs[0][..shortest]);
        }
        let objects: Vec<Vec<_>> = (0..4).map(|i| c.node(i).store().objects().cloned().collect()).collect();
        let outcomes: Vec<Vec<_>> = (0..4)
            .map(|i| c.node(i).store().outcomes().map(|(h, o)| (*h, o.clone())).collect())
            .collect();
        for i in 1..4 {
            prop_assert_eq!(&objects[i], &objects[0]);
            prop_assert_eq!(&outcomes[i], &outcomes[0]);
        }
        prop_assert_eq!(objects[0].len(), txs);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// A node that joins from a snapshot under random delays and losses builds
    /// the same manifest root as the validators at every later snapshot round.
    #[test]
    fn a_snapshot_joiner_matches_the_network_at_every_later_snapshot(
        seed in any::<u64>(),
        max_delay in 1u64..80,
        drop_per_mille in 0u64..30,
    ) {
        use bluepods_core::config::{SyncConfig, SyncMode};
        use bluepods_core::{Event, NodeConfig, Role};
        use std::collections::BTreeMap;
        let params = ChainParams { snapshot_interval_rounds: 10, ..ChainParams::default() };
        let (genesis, keys) = test_genesis(4, params);
        let mut c = Cluster::new(seed, Faults { min_delay_ms: 1, max_delay_ms: max_delay, drop_per_mille });
        c.add_validators(&genesis, &keys, 50);
        let alice = Keypair::from_label("alice");
        for n in 0..40u64 {
            let tx = TxBody {
                chain_id: genesis.chain_id(),
                sender: alice.public(),
                nonce: n,
                expiry: Round(100_000),
                ops: vec![Operation::Create { data: vec![n as u8; 16] }],
            }
            .sign(&alice);
            c.submit((n % 4) as usize, tx).unwrap();
            c.run_for(50);
        }
        let cfg = NodeConfig {
            role: Role::Listener,
            bootstrap_peers: (0..4).map(|i| format!("v{i}")).collect(),
            sync: SyncConfig {
                default_strategy: SyncMode::Snapshot,
                ..SyncConfig::default()
            },
            ..NodeConfig::default()
        };
        let j = c.add_joiner("j0", Keypair::from_label("joiner"), cfg);
        prop_assert!(c.run_until(30_000, |c| c.node(j).state_verification().is_some()));
        prop_assert_eq!(c.node(j).state_verification().map(|v| v.1), Some(true));
        c.run_for(2_000);
        let roots = |i: usize| -> BTreeMap<Round, bluepods_core::Hash> {
            c.nodes[i].events.iter().filter_map(|(_, e)| match e {
                Event::SnapshotBuilt { round, root, .. } => Some((*round, *root)),
                _ => None,
            }).collect()
        };
        let joiner = roots(j);
        prop_assert!(!joiner.is_empty());
        for v in 0..4 {
            let theirs = roots(v);
            for (r, root) in &joiner {
                if let Some(t) = theirs.get(r) {
                    prop_assert_eq!(t, root, "round {}", r);
                }
            }
        }
    }
}
