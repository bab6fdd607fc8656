//! QUIC transport: quinn + rustls (ring provider), TLS 1.3, ALPN `bluepods/1`.
//!
//! Certificates are self-signed and not used for identity (`tls.rs`): a node's identity
//! is the ed25519 key it proves in the protocol handshake, so the client
//! accepts any certificate but still checks the TLS handshake signature
//! against it (the TLS session stays sound).
//!
//! Streams: every unidirectional stream carries length-prefixed frames. Each
//! connection has one long-lived gossip stream per direction; every request
//! and every response gets a stream of its own, so a large response never
//! holds up gossip. Frame sizes are capped on read before allocation; the
//! gossip queue towards a peer is bounded and a peer that cannot keep up is
//! disconnected rather than buffered without end.
//!
//! The transport only moves bytes: it turns network activity into
//! [`NetEvent`]s for the event loop and executes sends; it makes no protocol
//! decision. The seam for the simulator is [`Transport::new`], which takes
//! any quinn `Endpoint` (production binds a UDP socket; the simulator can wrap
//! its own socket) and a [`Resolver`].

use crate::streams::{answer_priority, read_connection, write_gossip, SendBudget};
pub use crate::tls::{
    client_config, self_signed_cert, self_signed_cert_ed25519, server_config, session_binding,
};
use bluepods_core::wire::{self, Message};
use bluepods_core::{Channel, CloseCode, Direction, PeerId};
use quinn::{Connection, ConnectionError, Endpoint, VarInt};
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};

/// The ALPN protocol id.
pub const ALPN: &[u8] = b"bluepods/1";

/// Server name used when dialing (certificates are not checked for it).
pub(crate) const SERVER_NAME: &str = "bluepods";

/// Transport limits.
#[derive(Clone, Debug)]
pub struct TransportConfig {
    /// Largest frame read or written.
    pub max_frame_bytes: usize,
    /// Frames queued towards one peer's gossip stream before it is dropped.
    pub gossip_queue_frames: usize,
    /// Request/response streams being written to one peer at once.
    pub max_outgoing_streams: usize,
    /// Streams a peer may have open towards us at once.
    pub max_incoming_streams: u32,
    /// Request/response frames waiting for a stream to one peer before that
    /// peer is disconnected.
    pub max_queued_requests: usize,
    /// Bytes of gossip and answers queued towards one peer and not yet
    /// handed to QUIC before that peer is disconnected: it does not read.
    pub max_queued_bytes: usize,
    /// A silent connection is closed after this long.
    pub idle_timeout_ms: u64,
    /// A dial that has not completed its QUIC handshake after this long
    /// fails (an address where nothing answers would otherwise wait out
    /// the idle timeout, silently).
    pub dial_timeout_ms: u64,
    /// Keep-alive interval (must be below the idle timeout).
    pub keep_alive_ms: u64,
    /// Bytes per second of responses (request streams) to one peer; 0 for
    /// no limit. Gossip is never paced.
    pub max_upload_bytes_per_sec: u64,
    /// Bytes one stream may have in flight towards us: more than the
    /// largest chunk answer, so a chunk never waits for a window update.
    pub stream_receive_window_bytes: u32,
    /// Bytes all streams of a connection may have in flight towards us and
    /// from us. Must cover the bandwidth-delay product of the fastest,
    /// farthest link served (1 Gbit/s × 100 ms = 12.5 MB); quinn's default
    /// (~10 MB sending) caps a long fat link below its rate.
    pub connection_window_bytes: u32,
    /// The congestion controller.
    pub congestion: Congestion,
}

/// QUIC congestion controllers: quinn's three and ours. Chosen by
/// measurement through the link emulator (README, "Sync over a real
/// link"): at 100 Mbit/s, 80 ms and 0.5% loss, 40 MB took 122 s with
/// CUBIC, 136 s with NewReno, 5.6–6.2 s with BBR and 5.3–5.6 s with
/// loss-tolerant CUBIC (eight runs each of the last).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Congestion {
    /// CUBIC (RFC 9438): loss-based, quinn's default.
    Cubic,
    /// NewReno (RFC 9002): loss-based, halves on every loss.
    NewReno,
    /// BBR: model-based (bandwidth and RTT); marked experimental in quinn.
    Bbr,
    /// CUBIC that passes a loss on only when it looks like congestion
    /// (`congestion::LossTolerant`), ending slow start on a lasting queue:
    /// the default, by measurement.
    #[default]
    LossTolerant,
}

impl std::str::FromStr for Congestion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cubic" => Ok(Congestion::Cubic),
            "newreno" => Ok(Congestion::NewReno),
            "bbr" => Ok(Congestion::Bbr),
            "loss-tolerant" => Ok(Congestion::LossTolerant),
            other => Err(format!(
                "unknown congestion controller {other:?} (one of: cubic, newreno, bbr, \
                 loss-tolerant)"
            )),
        }
    }
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            max_frame_bytes: 16 * 1024 * 1024,
            gossip_queue_frames: 4096,
            max_outgoing_streams: 64,
            max_incoming_streams: 256,
            max_queued_requests: 256,
            max_queued_bytes: 64 * 1024 * 1024,
            idle_timeout_ms: 10_000,
            dial_timeout_ms: 5_000,
            keep_alive_ms: 2_000,
            max_upload_bytes_per_sec: 0,
            stream_receive_window_bytes: 8 * 1024 * 1024,
            connection_window_bytes: 32 * 1024 * 1024,
            congestion: Congestion::default(),
        }
    }
}

/// Something the network did.
pub enum NetEvent {
    /// A connection is up.
    Connected {
        /// The connection.
        conn: Connection,
        /// Dialed address, or the remote address for inbound connections.
        addr: String,
        /// Who dialed.
        direction: Direction,
    },
    /// Dialing `addr` failed.
    ConnectFailed {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// A frame arrived: a message, or bytes that do not decode.
    Frame {
        /// Sender.
        peer: PeerId,
        /// The message (boxed: a vertex is large next to the other events) or
        /// the decode error.
        result: Result<Box<Message>, String>,
    },
    /// The connection ended.
    Closed {
        /// Handle.
        peer: PeerId,
        /// Why.
        reason: String,
    },
    /// More than `max_queued_bytes` (or a full gossip queue) is waiting
    /// towards `peer`: nothing more is queued for it, and the core decides.
    SendQueueFull {
        /// Handle.
        peer: PeerId,
        /// Bytes queued towards it.
        queued_bytes: usize,
    },
}

/// Resolves `host:port` to a socket address.
pub type Resolver = Arc<
    dyn Fn(String) -> Pin<Box<dyn Future<Output = std::io::Result<SocketAddr>> + Send>>
        + Send
        + Sync,
>;

/// The default resolver: the system's, preferring IPv4.
pub fn system_resolver() -> Resolver {
    Arc::new(|addr: String| {
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host(addr.as_str()).await?.collect();
            addrs
                .iter()
                .find(|a| a.is_ipv4())
                .or(addrs.first())
                .copied()
                .ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("{addr} resolves to nothing"),
                    )
                })
        })
    })
}

pub(crate) fn transport_config(cfg: &TransportConfig) -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    t.max_concurrent_uni_streams(VarInt::from_u32(cfg.max_incoming_streams));
    t.max_concurrent_bidi_streams(VarInt::from_u32(0));
    t.keep_alive_interval(Some(Duration::from_millis(cfg.keep_alive_ms)));
    t.stream_receive_window(VarInt::from_u32(cfg.stream_receive_window_bytes));
    t.receive_window(VarInt::from_u32(cfg.connection_window_bytes));
    t.send_window(u64::from(cfg.connection_window_bytes));
    match cfg.congestion {
        Congestion::Cubic => {
            t.congestion_controller_factory(Arc::new(quinn::congestion::CubicConfig::default()))
        }
        Congestion::NewReno => {
            t.congestion_controller_factory(Arc::new(quinn::congestion::NewRenoConfig::default()))
        }
        Congestion::Bbr => {
            t.congestion_controller_factory(Arc::new(quinn::congestion::BbrConfig::default()))
        }
        Congestion::LossTolerant => t.congestion_controller_factory(Arc::new(
            crate::congestion::LossTolerantConfig::default(),
        )),
    };
    t.max_idle_timeout(Some(
        VarInt::from_u64(cfg.idle_timeout_ms)
            .map(Into::into)
            .unwrap_or(quinn::IdleTimeout::from(VarInt::from_u32(10_000))),
    ));
    Arc::new(t)
}

/// An endpoint over any socket and runtime (the simulator's), with QUIC's
/// own randomness (connection ids, tokens) drawn from `rng_seed`.
pub fn endpoint_over(
    socket: Arc<dyn quinn::AsyncUdpSocket>,
    runtime: Arc<dyn quinn::Runtime>,
    rng_seed: [u8; 32],
    cfg: &TransportConfig,
) -> Result<Endpoint, String> {
    let (cert, key) = self_signed_cert_ed25519()?;
    let server = server_config(cert, key, cfg)?;
    let mut config = quinn::EndpointConfig::default();
    config.rng_seed(Some(rng_seed));
    let mut endpoint = Endpoint::new_with_abstract_socket(config, Some(server), socket, runtime)
        .map_err(|e| e.to_string())?;
    endpoint.set_default_client_config(client_config(cfg)?);
    Ok(endpoint)
}

/// Binds a production endpoint on a UDP socket (tokio runtime).
pub fn bind_endpoint(addr: SocketAddr, cfg: &TransportConfig) -> Result<Endpoint, String> {
    let (cert, key) = self_signed_cert()?;
    let server = server_config(cert, key, cfg)?;
    let mut endpoint =
        Endpoint::server(server, addr).map_err(|e| format!("cannot bind QUIC on {addr}: {e}"))?;
    endpoint.set_default_client_config(client_config(cfg)?);
    Ok(endpoint)
}

struct PeerConn {
    conn: Connection,
    gossip: mpsc::Sender<Vec<u8>>,
    gossip_writer: tokio::task::JoinHandle<()>,
    /// Bytes queued towards the peer, gossip and answers.
    budget: SendBudget,
    /// Over its budget: reported, sent nothing more.
    overflowed: bool,
    streams: Arc<Semaphore>,
    /// Request/response frames waiting for a stream.
    queued: Arc<std::sync::atomic::AtomicUsize>,
    /// Paces responses when an upload limit is set.
    pacer: Option<Arc<Pacer>>,
    /// Answers sent so far: their order (see `answer_priority`).
    answers: u32,
}

/// A leaky bucket for one connection's responses: each frame is released
/// when a link of `bytes_per_sec` would have finished carrying it after the
/// frames before it, so the average never exceeds the limit.
struct Pacer {
    bytes_per_sec: u64,
    next: std::sync::Mutex<tokio::time::Instant>,
}

impl Pacer {
    /// When a frame of `bytes` may go.
    fn reserve(&self, bytes: usize) -> tokio::time::Instant {
        let now = tokio::time::Instant::now();
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let cost = Duration::from_secs_f64(bytes as f64 / self.bytes_per_sec as f64);
        *next = (*next).max(now) + cost;
        *next
    }
}

/// `msg` as a frame of at most `max_frame_bytes`, or, for an answer too
/// large to send, a `NotAvailable` saying so: the peer would refuse the
/// frame anyway, and told at once it asks someone else instead of waiting
/// out its request timeout. Gossip over the limit is not sent at all.
fn frame_within(msg: &Message, max_frame_bytes: usize) -> Option<Vec<u8>> {
    let frame = wire::encode_frame(msg);
    let bytes = frame.len() - wire::FRAME_HEADER_BYTES;
    if bytes <= max_frame_bytes {
        return Some(frame);
    }
    let request = msg.answers()?;
    Some(wire::encode_frame(&Message::NotAvailable {
        request,
        reason: format!(
            "the {} answer is {bytes} bytes, over the {max_frame_bytes}-byte frame limit",
            msg.kind()
        ),
    }))
}

/// Connections and the tasks that serve them.
pub struct Transport {
    endpoint: Endpoint,
    events: mpsc::Sender<NetEvent>,
    peers: BTreeMap<PeerId, PeerConn>,
    resolver: Resolver,
    cfg: TransportConfig,
    tamper: Option<Tamper>,
    /// False for a hostile simulated peer that reads no answers.
    reads_answers: bool,
}

/// Rewrites what a node sends: the simulator's hostile peers (corrupt
/// chunks, false manifests, equivocation, floods) run the honest node with
/// one of these on its transport. Production never sets one.
pub type Tamper = Box<dyn FnMut(PeerId, Channel, Message) -> Vec<(Channel, Message)> + Send>;

/// A readable description of why a connection ended.
pub fn describe_close(e: &ConnectionError) -> String {
    match e {
        ConnectionError::ApplicationClosed(c) => {
            let code = match c.error_code.into_inner() {
                0 => "shutting down",
                1 => "refused",
                2 => "protocol violation",
                _ => "unknown code",
            };
            format!(
                "closed by peer ({code}): {}",
                String::from_utf8_lossy(&c.reason)
            )
        }
        ConnectionError::LocallyClosed => "closed locally".into(),
        ConnectionError::TimedOut => "connection timed out".into(),
        other => other.to_string(),
    }
}

impl Transport {
    /// A transport over `endpoint`, reporting to `events`.
    pub fn new(
        endpoint: Endpoint,
        events: mpsc::Sender<NetEvent>,
        resolver: Resolver,
        cfg: TransportConfig,
    ) -> Self {
        Transport {
            endpoint,
            events,
            peers: BTreeMap::new(),
            resolver,
            cfg,
            tamper: None,
            reads_answers: true,
        }
    }

    /// Makes this a hostile transport (see [`Tamper`]).
    pub fn tamper_with(mut self, tamper: Tamper) -> Self {
        self.tamper = Some(tamper);
        self
    }

    /// Makes this a transport that reads the peer's gossip stream (so
    /// handshakes complete) and never reads an answer: the simulator's
    /// peer that asks and does not read (`Hostility::Mute`). Production
    /// never sets it.
    pub fn reading_no_answers(mut self) -> Self {
        self.reads_answers = false;
        self
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// Starts accepting inbound connections.
    pub fn spawn_accept_loop(&self) {
        let endpoint = self.endpoint.clone();
        let events = self.events.clone();
        tokio::spawn(async move {
            while let Some(incoming) = endpoint.accept().await {
                let events = events.clone();
                tokio::spawn(async move {
                    match incoming.await {
                        Ok(conn) => {
                            let addr = conn.remote_address().to_string();
                            let _ = events
                                .send(NetEvent::Connected {
                                    conn,
                                    addr,
                                    direction: Direction::Inbound,
                                })
                                .await;
                        }
                        Err(e) => tracing::debug!(error = %e, "inbound QUIC handshake failed"),
                    }
                });
            }
        });
    }

    /// Dials `addr` in the background; the result arrives as a `NetEvent`.
    pub fn connect(&self, addr: String) {
        let endpoint = self.endpoint.clone();
        let events = self.events.clone();
        let resolve = self.resolver.clone();
        let dial_timeout = Duration::from_millis(self.cfg.dial_timeout_ms);
        tokio::spawn(async move {
            let result = async {
                let sock = resolve(addr.clone())
                    .await
                    .map_err(|e| format!("cannot resolve {addr}: {e}"))?;
                let connecting = endpoint
                    .connect(sock, SERVER_NAME)
                    .map_err(|e| e.to_string())?;
                match tokio::time::timeout(dial_timeout, connecting).await {
                    Ok(done) => done.map_err(|e| describe_close(&e)),
                    Err(_) => Err(format!(
                        "no QUIC handshake within {} ms (nothing answers there?)",
                        dial_timeout.as_millis()
                    )),
                }
            }
            .await;
            let event = match result {
                Ok(conn) => NetEvent::Connected {
                    conn,
                    addr,
                    direction: Direction::Outbound,
                },
                Err(reason) => NetEvent::ConnectFailed { addr, reason },
            };
            let _ = events.send(event).await;
        });
    }

    /// Takes ownership of a connection under `peer`: starts its readers and
    /// its gossip writer.
    pub fn register(&mut self, peer: PeerId, conn: Connection) {
        let (gossip_tx, gossip_rx) = mpsc::channel(self.cfg.gossip_queue_frames);
        let budget = SendBudget::new(self.cfg.max_queued_bytes);
        let gossip_writer = tokio::spawn(write_gossip(conn.clone(), gossip_rx, budget.clone()));
        tokio::spawn(read_connection(
            peer,
            conn.clone(),
            self.events.clone(),
            self.cfg.max_frame_bytes,
            self.reads_answers,
        ));
        self.peers.insert(
            peer,
            PeerConn {
                conn,
                gossip: gossip_tx,
                gossip_writer,
                budget,
                overflowed: false,
                queued: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
                answers: 0,
                streams: Arc::new(Semaphore::new(self.cfg.max_outgoing_streams)),
                pacer: (self.cfg.max_upload_bytes_per_sec > 0).then(|| {
                    Arc::new(Pacer {
                        bytes_per_sec: self.cfg.max_upload_bytes_per_sec,
                        next: std::sync::Mutex::new(tokio::time::Instant::now()),
                    })
                }),
            },
        );
    }

    /// Sends a message; drops the peer if its gossip queue is full.
    pub fn send(&mut self, peer: PeerId, channel: Channel, msg: &Message) {
        if let Some(mut tamper) = self.tamper.take() {
            for (channel, msg) in tamper(peer, channel, msg.clone()) {
                self.send_frame(peer, channel, &msg);
            }
            self.tamper = Some(tamper);
            return;
        }
        self.send_frame(peer, channel, msg);
    }

    fn send_frame(&mut self, peer: PeerId, channel: Channel, msg: &Message) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let Some(frame) = frame_within(msg, self.cfg.max_frame_bytes) else {
            tracing::warn!(%peer, kind = msg.kind(), "not sending a frame over the size limit");
            return;
        };
        if p.overflowed {
            return; // reported; the core drops the peer
        }
        let bytes = frame.len();
        if let Err(queued) = p.budget.reserve(bytes) {
            self.overflowed(peer, queued);
            return;
        }
        match channel {
            Channel::Gossip => {
                if p.gossip.try_send(frame).is_err() {
                    p.budget.release(bytes);
                    let queued = self.cfg.gossip_queue_frames;
                    self.overflowed(peer, queued);
                }
            }
            Channel::Request => {
                // Frames waiting for a stream are held in memory: a peer that
                // asks faster than it reads is cut off rather than buffered.
                let queued = p.queued.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if queued >= self.cfg.max_queued_requests {
                    // As many answers as it may have waiting: it asks
                    // faster than it reads. Reported like a byte overflow.
                    p.queued.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                    p.budget.release(bytes);
                    let queued_bytes = p.budget.queued();
                    self.overflowed(peer, queued_bytes);
                    return;
                }
                let priority = answer_priority(frame.len(), p.answers);
                p.answers = p.answers.wrapping_add(1);
                let conn = p.conn.clone();
                let streams = p.streams.clone();
                let counter = p.queued.clone();
                let budget = p.budget.clone();
                let release = p.pacer.as_ref().map(|pacer| pacer.reserve(frame.len()));
                tokio::spawn(async move {
                    if let Some(at) = release {
                        tokio::time::sleep_until(at).await;
                    }
                    let permit = streams.acquire_owned().await;
                    counter.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                    let Ok(_permit) = permit else {
                        budget.release(bytes);
                        return;
                    };
                    let Ok(mut s) = conn.open_uni().await else {
                        budget.release(bytes);
                        return;
                    };
                    let _ = s.set_priority(priority);
                    let written = s.write_all(&frame).await;
                    budget.release(bytes);
                    if written.is_ok() {
                        let _ = s.finish();
                        let _ = s.stopped().await;
                    }
                });
            }
        }
    }

    /// Stops sending to `peer`, which does not read, and tells the core.
    fn overflowed(&mut self, peer: PeerId, queued_bytes: usize) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.overflowed = true;
        }
        let event = NetEvent::SendQueueFull { peer, queued_bytes };
        if self.events.try_send(event).is_err() {
            // The loop is behind on events: close now rather than queue.
            let reason = format!("peer does not read: {queued_bytes} bytes queued towards it");
            self.disconnect(peer, CloseCode::Refused, &reason);
        }
    }

    /// Closes a connection with a reason the peer will see.
    pub fn disconnect(&mut self, peer: PeerId, code: CloseCode, reason: &str) {
        if let Some(p) = self.peers.remove(&peer) {
            let reason: Vec<u8> = reason.bytes().take(512).collect();
            p.conn.close(VarInt::from_u32(code.as_u32()), &reason);
        }
    }

    /// Forgets a connection that closed by itself.
    pub fn remove(&mut self, peer: PeerId) {
        self.peers.remove(&peer);
    }

    /// Flushes queued gossip (up to `grace`), then closes every connection
    /// and the endpoint. Closing at once would discard what is queued, such
    /// as the last vertex produced.
    pub async fn shutdown(&mut self, grace: Duration) {
        // In handle order: a simulated run closes connections in the same
        // order every time.
        let peers: Vec<PeerConn> = std::mem::take(&mut self.peers).into_values().collect();
        let mut writers = Vec::new();
        let mut conns = Vec::new();
        for p in peers {
            drop(p.gossip);
            writers.push(p.gossip_writer);
            conns.push(p.conn);
        }
        let _ = tokio::time::timeout(grace, async {
            for w in writers {
                let _ = w.await;
            }
        })
        .await;
        for c in conns {
            c.close(
                VarInt::from_u32(CloseCode::Shutdown.as_u32()),
                b"shutting down",
            );
        }
        self.endpoint.close(VarInt::from_u32(0), b"shutting down");
        let _ = tokio::time::timeout(grace, self.endpoint.wait_idle()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Postmortem: queues towards a peer were bounded in frames only (4096
    /// gossip frames, 256 answers of up to 16 MiB), so a peer that asked
    /// for chunks and never read them pinned gigabytes of the node's memory.
    #[tokio::test]
    async fn a_peer_that_never_reads_is_cut_off_once_its_queued_answers_pass_the_byte_limit() {
        let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let cfg = TransportConfig {
            max_queued_bytes: 8 << 20,
            ..TransportConfig::default()
        };
        let server = bind_endpoint(local, &cfg).unwrap();
        // The reader grants 1 MiB and then reads nothing.
        let stingy = TransportConfig {
            connection_window_bytes: 1 << 20,
            stream_receive_window_bytes: 1 << 20,
            ..TransportConfig::default()
        };
        let client = bind_endpoint(local, &stingy).unwrap();
        let addr = server.local_addr().unwrap();
        let accepting = server.clone();
        let accept = tokio::spawn(async move { accepting.accept().await.unwrap().await.unwrap() });
        let reader = client.connect(addr, SERVER_NAME).unwrap().await.unwrap();
        let (events, mut seen) = mpsc::channel(64);
        let mut t = Transport::new(server, events, system_resolver(), cfg);
        let peer = PeerId(1);
        t.register(peer, accept.await.unwrap());
        for i in 0..40u32 {
            let answer = Message::Chunk {
                request: wire::RequestId(u64::from(i)),
                round: bluepods_core::Round(1),
                index: i,
                bytes: vec![7; 1 << 20],
            };
            t.send(peer, Channel::Request, &answer);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The transport reports it (the core drops the peer), and queues
        // nothing more for it.
        let queued = loop {
            let event = tokio::time::timeout(Duration::from_secs(10), seen.recv())
                .await
                .expect("the transport reports a peer that does not read")
                .unwrap();
            if let NetEvent::SendQueueFull { queued_bytes, .. } = event {
                break queued_bytes;
            }
        };
        assert!(queued <= 8 << 20, "{queued}");
        t.disconnect(peer, CloseCode::Refused, "peer does not read");
        let closed = tokio::time::timeout(Duration::from_secs(10), reader.closed())
            .await
            .expect("closed");
        assert!(describe_close(&closed).contains("does not read"));
        drop(reader);
    }

    /// Postmortem: an answer over the frame limit was dropped with a local
    /// warning, so the asker learned nothing until its request timed out
    /// (5 s per attempt) and then asked the same peer again.
    #[test]
    fn an_answer_over_the_frame_limit_becomes_not_available_and_gossip_is_not_sent() {
        let request = wire::RequestId(7);
        let big = Message::Chunk {
            request,
            round: bluepods_core::Round(3),
            index: 0,
            bytes: vec![0; 1000],
        };
        let frame = frame_within(&big, 500).expect("an answer is always answered");
        let payload = &frame[wire::FRAME_HEADER_BYTES..];
        match wire::decode(payload, 500).unwrap() {
            Message::NotAvailable { request: r, reason } => {
                assert_eq!(r, request);
                assert!(reason.contains("frame limit"), "{reason}");
            }
            other => panic!("expected NotAvailable, got {}", other.kind()),
        }
        let fits = frame_within(&big, 1 << 20).unwrap();
        assert_eq!(fits, wire::encode_frame(&big));
        let gossip = Message::Reject {
            reason: "x".repeat(100),
        };
        assert!(frame_within(&gossip, 10).is_none());
    }

    #[tokio::test]
    async fn the_pacer_spaces_frames_by_their_size_over_the_rate() {
        let start = tokio::time::Instant::now();
        let pacer = Pacer {
            bytes_per_sec: 1_000_000,
            next: std::sync::Mutex::new(start),
        };
        let first = pacer.reserve(500_000);
        let second = pacer.reserve(1_000_000);
        assert!(first >= start + Duration::from_millis(500));
        assert!(second >= first + Duration::from_millis(1_000));
        assert!(second < start + Duration::from_millis(1_600));
    }
}
