//! How the harness moves things between nodes: connections, sends with
//! link delays and drops, partitions, and the event queue in time order.

use super::trace::{event_row, summary};
use super::{Cluster, Delivery};
use crate::ids::{PeerId, Timestamp};
use crate::interface::{Action, Channel, Direction, Input};
use crate::wire::{self, Message};

impl Cluster {
    /// Closes a connection; the closing side's reason reaches the other
    /// side, as a QUIC application close would.
    pub(super) fn cut(&mut self, end: (usize, PeerId), reason: &str) {
        let Some(other) = self.links.remove(&end) else {
            return;
        };
        self.links.remove(&other);
        let reasons = [
            format!("closed locally: {reason}"),
            format!("closed by peer: {reason}"),
        ];
        for ((to, peer), reason) in [end, other].into_iter().zip(reasons) {
            if self.nodes[to].node.is_some() {
                let at = self.now.plus_ms(1);
                self.schedule(at, Delivery::Disconnected { to, peer, reason });
            }
        }
    }

    pub(super) fn schedule(&mut self, at: Timestamp, d: Delivery) {
        self.seq += 1;
        self.queue.insert((at, self.seq), d);
    }

    pub(super) fn delay(&mut self) -> u64 {
        let span = self
            .faults
            .max_delay_ms
            .saturating_sub(self.faults.min_delay_ms)
            + 1;
        self.faults.min_delay_ms + self.rng.below(span)
    }

    pub(super) fn blocked(&self, a: usize, b: usize) -> bool {
        self.partitioned.contains(&(a.min(b), a.max(b)))
    }

    /// Executes the actions node `i` has queued.
    pub(super) fn drain(&mut self, i: usize) {
        loop {
            let Some(action) = self.nodes[i].node.as_mut().and_then(|n| n.poll_action()) else {
                return;
            };
            match action {
                Action::Event(e) => {
                    if self.tracing {
                        if let Some(row) = event_row(&e) {
                            self.row(i, "**", &row);
                        }
                    }
                    self.nodes[i].events.push((self.now, e));
                }
                Action::Connect { addr } => self.connect(i, addr),
                Action::BuildSnapshot(job) => {
                    // Built at once; the results arrive like driver inputs.
                    let at = self.now;
                    crate::snapshot::run_job(job, |out| {
                        let input = Input::from(out);
                        self.schedule(
                            at,
                            Delivery::Local {
                                to: i,
                                input: Box::new(input),
                            },
                        )
                    });
                }
                Action::Disconnect { peer, reason, .. } => self.cut((i, peer), &reason),
                Action::Send { peer, channel, msg } => self.send(i, peer, channel, msg),
                Action::ServeChunk(answer) => {
                    let (peer, msg) = answer.read();
                    self.send(i, peer, Channel::Request, msg);
                }
                // Work a driver runs off its loop runs at once here; the
                // result arrives like a driver input.
                Action::StageChunks(job) => {
                    self.deliver_local(i, Input::ChunksStaged(job.run()));
                }
                Action::CheckChunk(check) => {
                    self.deliver_local(i, Input::ChunkChecked(check.run()));
                }
            }
        }
    }

    /// Delivers `input` to node `to` now, as its driver would.
    fn deliver_local(&mut self, to: usize, input: Input) {
        let input = Box::new(input);
        self.schedule(self.now, Delivery::Local { to, input });
    }

    pub(super) fn connect(&mut self, from: usize, addr: String) {
        let name = self.aliases.get(&addr).unwrap_or(&addr);
        let target = self
            .nodes
            .iter()
            .position(|n| n.name == *name && n.node.is_some());
        let at = self.now.plus_ms(self.delay());
        match target {
            Some(to) if !self.blocked(from, to) && to != from => {
                let (pa, pb) = (PeerId(self.next_conn), PeerId(self.next_conn + 1));
                self.next_conn += 2;
                self.links.insert((from, pa), (to, pb));
                self.links.insert((to, pb), (from, pa));
                let from_name = self.nodes[from].name.clone();
                self.schedule(
                    at,
                    Delivery::Connected {
                        to: from,
                        peer: pa,
                        addr,
                        direction: Direction::Outbound,
                    },
                );
                self.schedule(
                    at,
                    Delivery::Connected {
                        to,
                        peer: pb,
                        addr: from_name,
                        direction: Direction::Inbound,
                    },
                );
            }
            _ => self.schedule(at, Delivery::ConnectFailed { to: from, addr }),
        }
    }

    pub(super) fn send(&mut self, from: usize, peer: PeerId, channel: Channel, mut msg: Message) {
        if let Some(rewrite) = self.rewrite_from.get_mut(&from) {
            rewrite(&mut msg);
        }
        if let (true, Message::Manifest { manifest, .. }) =
            (self.forge_manifests_from.contains(&from), &mut msg)
        {
            manifest
                .frontier
                .committed
                .push((manifest.round, crate::ids::Hash([0xf0; 32])));
        }
        if let (Some(n), Message::Manifest { attestations, .. }) =
            (self.pad_attestations_from.get(&from), &mut msg)
        {
            if let Some(real) = attestations.first().cloned() {
                let pad = (0..*n).map(|k| {
                    let key = crate::crypto::Keypair::from_label(&format!("outsider-{k}"));
                    let mut body = real.body.clone();
                    body.author = key.public();
                    body.parents.clear();
                    body.txs.clear();
                    body.sign(&key)
                });
                let mut padded: Vec<_> = pad.collect();
                padded.append(attestations);
                *attestations = padded;
            }
        }
        if let (Some(keep), Message::Manifest { attestations, .. }) =
            (self.thin_attestations_from.get(&from), &mut msg)
        {
            attestations.truncate(*keep);
        }
        if let (true, Message::Chunk { index, .. }) =
            (self.misnumber_chunks_from.contains(&from), &mut msg)
        {
            *index += 1_000;
        }
        if self.corrupt_chunks_from.contains(&from) {
            if let Message::Chunk { bytes, .. } = &mut msg {
                if let Some(b) = bytes.last_mut() {
                    *b ^= 0xff;
                }
            }
        }
        let Some(&(to, their_peer)) = self.links.get(&(from, peer)) else {
            return;
        };
        let droppable = matches!(msg, Message::Vertex(_)) || channel == Channel::Request;
        if droppable
            && self.faults.drop_per_mille > 0
            && self.rng.below(1000) < self.faults.drop_per_mille
        {
            return;
        }
        if self.tracing {
            let row = format!("-> {} {}", self.nodes[to].name, summary(&msg));
            self.row(from, "  ", &row);
        }
        let mut extra = self.slow.get(&from).copied().unwrap_or(0);
        if matches!(msg, Message::Chunk { .. }) {
            extra += self.slow_chunks.get(&from).copied().unwrap_or(0);
        }
        let mut at = self.now.plus_ms(self.delay() + extra);
        if channel == Channel::Gossip {
            let tail = self.gossip_tail.entry((from, peer)).or_default();
            at = at.max(*tail);
            *tail = at;
        }
        let bytes = wire::encode(&msg);
        self.schedule(
            at,
            Delivery::Message {
                to,
                peer: their_peer,
                bytes,
            },
        );
    }

    pub(super) fn row(&mut self, node: usize, dir: &str, text: &str) {
        let name = &self.nodes[node].name;
        self.trace
            .push(format!("{:>6} {:<3} {} {}", self.now.0, name, dir, text));
    }

    /// Processes the earliest delivery or timer not after `end`.
    pub(super) fn step(&mut self, end: Timestamp) -> bool {
        let next_delivery = self.queue.keys().next().map(|(t, _)| *t);
        let next_timer = self
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                n.node
                    .as_ref()
                    .and_then(|n| n.poll_timeout())
                    .map(|(t, _)| (t, i))
            })
            .min();
        let timer_first = match (next_timer, next_delivery) {
            (Some((t, _)), Some(d)) => t <= d,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return false,
        };
        if timer_first {
            let (t, i) = next_timer.expect("checked");
            if t > end {
                return false;
            }
            self.now = self.now.max(t);
            let now = self.now;
            self.nodes[i]
                .node
                .as_mut()
                .expect("running")
                .handle_timeout(now);
            self.drain(i);
            // A timer that stays due after handle_timeout would make a real
            // driver spin: every timer must move or disappear.
            let again = self.nodes[i].node.as_ref().and_then(|n| n.poll_timeout());
            if let Some((t2, kind)) = again.filter(|(t2, _)| *t2 <= now) {
                self.spins += 1;
                assert!(
                    self.spins < 1_000,
                    "node {} timer {kind:?} at {t2:?} does not advance",
                    self.nodes[i].name
                );
            } else {
                self.spins = 0;
            }
            return true;
        }
        let key = *self.queue.keys().next().expect("checked");
        if key.0 > end {
            return false;
        }
        let delivery = self.queue.remove(&key).expect("present");
        self.now = self.now.max(key.0);
        self.deliver(delivery);
        true
    }

    pub(super) fn deliver(&mut self, d: Delivery) {
        let now = self.now;
        let (to, input) = match d {
            Delivery::Local { to, input } => (to, *input),
            Delivery::Connected {
                to,
                peer,
                addr,
                direction,
            } => {
                let Some((_, theirs)) = self.links.get(&(to, peer)) else {
                    return; // cut before it came up
                };
                // Both ends of one link share a session; no two links do.
                let first = peer.0.min(theirs.0);
                let mut session = [0u8; 32];
                session[..8].copy_from_slice(&first.to_le_bytes());
                (
                    to,
                    Input::PeerConnected {
                        peer,
                        addr,
                        direction,
                        session,
                    },
                )
            }
            Delivery::ConnectFailed { to, addr } => (
                to,
                Input::ConnectFailed {
                    addr,
                    reason: "unreachable".into(),
                },
            ),
            Delivery::Disconnected { to, peer, reason } => {
                (to, Input::PeerDisconnected { peer, reason })
            }
            Delivery::Message { to, peer, bytes } => {
                if !self.links.contains_key(&(to, peer)) {
                    return; // connection gone
                }
                let input = match wire::decode(&bytes, usize::MAX) {
                    Ok(msg) if self.deaf.get(&to).is_some_and(|deaf| deaf(&msg)) => return,
                    Ok(msg) => {
                        if self.tracing {
                            let from = self.links[&(to, peer)].0;
                            let row = format!("<- {} {}", self.nodes[from].name, summary(&msg));
                            self.row(to, "  ", &row);
                        }
                        Input::Message { peer, msg }
                    }
                    Err(e) => Input::MalformedMessage {
                        peer,
                        error: e.to_string(),
                    },
                };
                (to, input)
            }
        };
        let Some(node) = self.nodes[to].node.as_mut() else {
            return;
        };
        node.handle(now, input);
        self.drain(to);
    }
}
