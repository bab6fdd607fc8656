//! The event loop's own behaviour, on a real transport and a real node.

use super::*;
use crate::transport::{bind_endpoint, system_resolver, TransportConfig};
use bluepods_core::{Keypair, MemStore, NodeConfig, Role};

/// Postmortem: the loop's `select!` is biased with commands first, so
/// while HTTP requests kept coming, peers' messages and the node's timers
/// waited: a flood on the API starved the network. Now, after
/// `MAX_COMMANDS_IN_A_ROW` commands, whatever else waits gets a turn.
#[tokio::test]
async fn a_flood_of_commands_does_not_keep_the_network_waiting() {
    let unreachable = "192.0.2.1:9".to_string();
    let config = NodeConfig {
        role: Role::Listener,
        bootstrap_peers: vec![unreachable.clone()],
        ..NodeConfig::default()
    };
    let node = Node::new(
        config,
        Keypair::from_label("node"),
        MemStore::new(),
        1,
        Timestamp(0),
    )
    .unwrap();
    let cfg = TransportConfig::default();
    let endpoint = bind_endpoint("127.0.0.1:0".parse().unwrap(), &cfg).unwrap();
    let (net_tx, net_rx) = mpsc::channel(64);
    let transport = Transport::new(endpoint, net_tx.clone(), system_resolver(), cfg);
    let (lp, handle) = EventLoop::new(node, transport, net_rx, TokioClock::new());
    // A hundred commands wait before the loop runs, then one network event.
    let mut replies = Vec::new();
    for _ in 0..100 {
        let (reply, answer) = oneshot::channel();
        handle.tx.send(Command::Status(reply)).await.unwrap();
        replies.push(answer);
    }
    handle.tx.send(Command::Shutdown).await.unwrap();
    net_tx
        .send(NetEvent::ConnectFailed {
            addr: unreachable,
            reason: "no route".into(),
        })
        .await
        .unwrap();
    let (exit, _) = lp.run().await;
    assert_eq!(exit, Exit::Shutdown);
    let mut saw_the_failure = 0;
    for answer in replies {
        if !answer.await.unwrap().unreachable.is_empty() {
            saw_the_failure += 1;
        }
    }
    assert!(
        saw_the_failure >= 100 - MAX_COMMANDS_IN_A_ROW,
        "the network event waited behind {} commands",
        100 - saw_the_failure
    );
}
