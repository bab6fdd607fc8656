//! Protocol traces from the in-process harness, pinned with insta.
//!
//! Legend: `t_ms node dir summary`. `->`/`<-` rows are messages sent and
//! received (kind, round, 8-hex-digit short hashes, counts; no payloads);
//! `**` rows are events.

use bluepods_core::harness::{test_genesis, validator_config, Cluster, Faults};
use bluepods_core::{ChainParams, Keypair, NodeConfig, Role};

#[test]
fn bootstrap_and_listener_first_rounds() {
    let (genesis, keys) = test_genesis(1, ChainParams::default());
    let mut c = Cluster::new(
        7,
        Faults {
            min_delay_ms: 10,
            max_delay_ms: 10,
            drop_per_mille: 0,
        },
    );
    c.enable_trace();
    c.add_genesis_node("v0", keys[0].clone(), &genesis, validator_config(100));
    c.run_for(250);
    let listener = NodeConfig {
        role: Role::Listener,
        bootstrap_peers: vec!["v0".into()],
        ..NodeConfig::default()
    };
    c.add_joiner("l0", Keypair::from_label("listener"), listener);
    c.run_for(400);
    insta::assert_snapshot!(c.trace.join("\n"));
}
