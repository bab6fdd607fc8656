//! A node whose peers do not help — they never answer, or answer too late
//! — keeps trying; only a one-shot sync gives up, and it says why.

use bluepods_core::config::{SyncConfig, SyncMode};
use bluepods_core::harness::{test_genesis, validator_config, Cluster, Faults};
use bluepods_core::{ChainParams, Event, Keypair, Message, NodeConfig, Role, SyncPhase};

fn listener(mode: SyncMode, give_up: bool) -> NodeConfig {
    NodeConfig {
        role: Role::Listener,
        bootstrap_peers: vec!["v0".into()],
        sync: SyncConfig {
            default_strategy: mode,
            peer_timeout_ms: 300,
            retry_attempts: 2,
            catch_up_backoff_ms: 1_000,
            give_up_after_retries: give_up,
            ..SyncConfig::default()
        },
        ..NodeConfig::default()
    }
}

fn backoffs(c: &Cluster, j: usize) -> usize {
    c.nodes[j]
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::SyncBackoff { .. }))
        .count()
}

/// Postmortem: after `retry_attempts` unanswered requests for the genesis
/// or a manifest the node entered `Failed`, and the daemon's event loop
/// ends the process in `Failed`: one peer that stays silent (or a link too
/// slow for the request timeout) stopped a listener for good, and a live
/// node that looked for a snapshot the same way.
#[test]
fn a_daemon_whose_peers_never_answer_backs_off_and_tries_again_instead_of_exiting() {
    let (genesis, keys) = test_genesis(1, ChainParams::default());
    type Deaf = fn(&Message) -> bool;
    let cases: [(SyncMode, Deaf); 2] = [
        (SyncMode::Range, |m| matches!(m, Message::GetGenesis { .. })),
        (SyncMode::Snapshot, |m| {
            matches!(m, Message::GetManifest { .. })
        }),
    ];
    for (seed, (mode, deaf)) in (11..).zip(cases) {
        let mut c = Cluster::new(seed, Faults::fixed_delay(10));
        c.add_genesis_node("v0", keys[0].clone(), &genesis, validator_config(100));
        c.deafen(0, deaf);
        let j = c.add_joiner("j0", Keypair::from_label("daemon"), listener(mode, false));
        let mut failed = false;
        let tried_three_times = c.run_until(30_000, |c| {
            failed |= c.node(j).phase() == SyncPhase::Failed;
            backoffs(c, j) >= 3
        });
        assert!(
            tried_three_times && !failed,
            "{mode:?}: the daemon backs off, again and again"
        );
        c.undeafen(0);
        assert!(
            c.run_until(30_000, |c| c.node(j).phase() == SyncPhase::Live),
            "{mode:?}: once the peer answers, the daemon joins"
        );
        // A one-shot sync gives up instead, with the reason.
        let mut c = Cluster::new(seed, Faults::fixed_delay(10));
        c.add_genesis_node("v0", keys[0].clone(), &genesis, validator_config(100));
        c.deafen(0, deaf);
        let j = c.add_joiner("j0", Keypair::from_label("one-shot"), listener(mode, true));
        assert!(c.run_until(30_000, |c| c.node(j).phase() == SyncPhase::Failed));
        assert!(c.nodes[j]
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::SyncFailed { reason } if reason.contains("after 2 attempts"))));
    }
}

/// Postmortem: round claims in `Hello` and `Status` were taken on trust by
/// any node outside the validator set: one peer announcing round 10^9 made
/// a live listener look for a snapshot and catch up by range, asking mostly
/// the liar — the only peer that claimed to hold the rounds it wanted.
#[test]
fn a_peer_claiming_a_far_round_does_not_move_a_live_node() {
    let (genesis, keys) = test_genesis(1, ChainParams::default());
    let mut c = Cluster::new(21, Faults::fixed_delay(10));
    c.add_genesis_node("v0", keys[0].clone(), &genesis, validator_config(50));
    let l = c.add_joiner(
        "l0",
        Keypair::from_label("listener"),
        listener(SyncMode::Auto, false),
    );
    assert!(c.run_until(20_000, |c| c.node(l).phase() == SyncPhase::Live));
    let mut liar_config = listener(SyncMode::Auto, false);
    liar_config.bootstrap_peers = vec!["l0".into()];
    let liar = c.add_joiner("liar", Keypair::from_label("liar"), liar_config);
    assert!(c.run_until(20_000, |c| c.node(liar).phase() == SyncPhase::Live));
    let mark = c.nodes[l].events.len();
    for _ in 0..20 {
        let claim = Message::Status {
            highest_round: Some(bluepods_core::Round(1_000_000_000)),
            committed_round: Some(bluepods_core::Round(1_000_000_000)),
        };
        assert!(c.send_as(liar, l, claim));
        c.run_for(100);
    }
    let moved: Vec<_> = c.nodes[l].events[mark..]
        .iter()
        .filter(|(_, e)| matches!(e, Event::PhaseChanged { .. }))
        .collect();
    assert!(moved.is_empty(), "the listener stays live: {moved:?}");
    assert_eq!(c.node(l).phase(), SyncPhase::Live);
}

/// Postmortem (found by the `adversary` simulation): a joiner asked its
/// first ready peer for the genesis and waited out the request timeout
/// (5 s) when that peer withheld it; snapshot discovery then waited for
/// every manifest answer, the withheld one included, for another 5 s; and
/// catch-up waited on a range window given to that peer (everything above
/// it pending), then stayed in catch-up, caught up, until that request
/// timed out.
#[test]
fn a_peer_that_withholds_its_answers_does_not_hold_a_joiner_up() {
    let params = ChainParams {
        snapshot_interval_rounds: 10,
        ..ChainParams::default()
    };
    let (mut genesis, keys) = test_genesis(4, params);
    genesis.synthetic_objects = 2_000;
    let mut c = Cluster::new(23, Faults::fixed_delay(10));
    c.add_validators(&genesis, &keys, 50);
    c.run_for(2_000);
    c.deafen(0, |m| {
        matches!(
            m,
            Message::GetGenesis { .. } | Message::GetManifest { .. } | Message::GetRounds { .. }
        )
    });
    for mode in [SyncMode::Snapshot, SyncMode::Range] {
        let mut config = listener(mode, false);
        config.bootstrap_peers = (0..4).map(|i| format!("v{i}")).collect();
        config.sync.peer_timeout_ms = 5_000;
        // Small windows, so that the withholding peer gets one of them.
        config.sync.range_fetch_rounds = 8;
        let start = c.now();
        let name = format!("j{mode:?}");
        let j = c.add_joiner(&name, Keypair::from_label(&name), config);
        assert!(c.run_until(30_000, |c| c.node(j).phase() == SyncPhase::Live));
        let took = c.now().ms_since(start);
        assert!(
            took < 2_000,
            "{mode:?}: live after {took} ms, one peer withholding"
        );
    }
}

/// Postmortem: a request that went unanswered changed the peer's rank and
/// was asked again elsewhere, without a word: an operator saw a sync slow
/// down and could not tell which peer, or what, was failing.
#[test]
fn every_failed_request_is_reported_with_the_peer_and_the_attempt_at_most_once_a_second() {
    let (genesis, keys) = test_genesis(1, ChainParams::default());
    let mut c = Cluster::new(25, Faults::fixed_delay(10));
    c.add_genesis_node("v0", keys[0].clone(), &genesis, validator_config(50));
    c.run_for(2_000);
    c.deafen(0, |m| matches!(m, Message::GetRounds { .. }));
    let mut config = listener(SyncMode::Range, false);
    config.sync.range_fetch_rounds = 4;
    let j = c.add_joiner("j0", Keypair::from_label("joiner"), config);
    c.run_for(8_000);
    let reports: Vec<(u64, String, u32, u32, u32)> = c.nodes[j]
        .events
        .iter()
        .filter_map(|(t, e)| match e {
            Event::RequestFailed {
                addr,
                what,
                attempt,
                attempts_max,
                unreported,
                ..
            } => {
                assert_eq!(addr, "v0");
                assert!(what.starts_with("rounds "), "{what}");
                Some((t.0, what.clone(), *attempt, *attempts_max, *unreported))
            }
            _ => None,
        })
        .collect();
    assert!(!reports.is_empty(), "the failures are reported");
    assert!(reports.iter().all(|r| r.3 == 2 && r.2 >= 1), "{reports:?}");
    assert!(
        reports.windows(2).all(|w| w[1].0 - w[0].0 >= 1_000),
        "at most once a second: {reports:?}"
    );
    assert!(
        reports.iter().any(|r| r.4 > 0),
        "the ones not reported are counted: {reports:?}"
    );
}
