//! A relay in the middle: a host that dials two honest validators and
//! passes every message of each connection to the other, handshakes
//! included, hoping to be taken for either (then get it banned, or rewrite
//! its announced address). It runs no node of its own.
//!
//! It must fail: each side's proof signs the TLS session of its own
//! connection to the relay, which the other side's session is not. If an
//! honest node ever treats a relayed connection as ready — it sends the
//! relay a message only a ready peer gets (`Status`, `GetPeers`, a vertex)
//! — that is a violation.

use bluepods_core::wire::Message;
use bluepods_core::PeerId;
use bluepods_drivers::transport::{NetEvent, Resolver, Transport, TransportConfig};
use std::sync::Arc;
use std::time::Duration;

/// What the relay found: honest nodes that took a relayed connection for
/// a ready peer.
pub type Findings = Arc<std::sync::Mutex<Vec<String>>>;

/// Runs the relay between `a` and `b` (QUIC addresses) until the end of the
/// simulation, reconnecting whenever a side drops it.
pub async fn relay(
    endpoint: quinn::Endpoint,
    resolver: Resolver,
    a: String,
    b: String,
    findings: Findings,
) -> Result<(), Box<dyn std::error::Error>> {
    let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
    let mut transport = Transport::new(endpoint, tx, resolver, TransportConfig::default());
    let mut next = 1u64;
    loop {
        transport.connect(a.clone());
        transport.connect(b.clone());
        let mut sides: Vec<(PeerId, String)> = Vec::new();
        let deadline = tokio::time::sleep(Duration::from_secs(3));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                () = &mut deadline => break,
                ev = rx.recv() => match ev {
                    None => return Ok(()),
                    Some(NetEvent::Connected { conn, addr, .. }) => {
                        let peer = PeerId(next);
                        next += 1;
                        transport.register(peer, conn);
                        sides.push((peer, addr));
                    }
                    Some(NetEvent::Frame { peer, result: Ok(msg) }) => {
                        let Some((_, from)) = sides.iter().find(|(p, _)| *p == peer).cloned() else {
                            continue;
                        };
                        if matches!(
                            *msg,
                            Message::Status { .. } | Message::GetPeers { .. } | Message::Vertex(_)
                        ) {
                            findings.lock().unwrap_or_else(|e| e.into_inner()).push(format!(
                                "{from} treated the relay as a ready peer (sent {})",
                                msg.kind()
                            ));
                        }
                        for (other, _) in sides.iter().filter(|(p, _)| *p != peer) {
                            transport.send(*other, bluepods_core::Channel::Gossip, &msg);
                        }
                    }
                    Some(NetEvent::Closed { peer, .. }) => {
                        transport.remove(peer);
                        sides.retain(|(p, _)| *p != peer);
                        if sides.is_empty() {
                            break;
                        }
                    }
                    Some(_) => {}
                },
            }
        }
        for (peer, _) in sides {
            transport.disconnect(peer, bluepods_core::CloseCode::Shutdown, "relay restarts");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
