//! `bluepods link`: a UDP relay that emulates a network link on loopback.
//!
//! A snapshot sync measured on bare loopback says little about a real
//! deployment: loopback has no delay, no loss and far more bandwidth than any
//! WAN, so QUIC's congestion control, its flow-control windows and the chunk
//! pipeline are never exercised. This relay sits between a joiner and a
//! bootstrap: the joiner dials the relay's listen address instead of the
//! server, and every datagram crosses an emulated link, one per direction,
//! with a one-way delay, random loss and a rate cap behind a bounded router
//! queue (tail drop). It runs in user space, needs no root (unlike
//! `tc netem`), and its counters tell how many bytes the sync really put on
//! the wire.
//!
//! Each direction is a scheduler fed at arrival: a datagram is lost with
//! probability `loss`; otherwise it leaves the rate cap at
//! `max(arrival, previous departure) + len × 8 / rate` (serialization), is
//! dropped if it would have queued longer than `queue_ms` before its turn,
//! and is delivered `delay_ms` after it left. Departures are monotone and the
//! delay constant, so deliveries stay in order and one task per direction
//! sleeps only until the head of its queue is due.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Most distinct client addresses served; a stray scanner must not make the
/// relay open sockets without bound.
const MAX_CLIENTS: usize = 64;
/// Receive buffer size: the largest UDP payload, so no datagram is truncated.
const RECV_BUF: usize = 64 * 1024;

/// Settings of one emulated link (applied to each direction independently).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkSettings {
    /// One-way delay added to every datagram, ms (RTT = 2 × this).
    pub delay_ms: u64,
    /// Probability that a datagram is dropped, 0.0..1.0.
    pub loss: f64,
    /// Rate cap per direction, bits per second; 0 for none.
    pub rate_bps: u64,
    /// Longest a datagram may wait for the rate cap before it is dropped (router buffer), ms.
    pub queue_ms: u64,
}

impl Default for LinkSettings {
    /// A transparent link with a 100 ms router buffer, should a cap be set.
    fn default() -> Self {
        Self {
            delay_ms: 0,
            loss: 0.0,
            rate_bps: 0,
            queue_ms: 100,
        }
    }
}

/// Counters the relay keeps for one direction; atomics, so they can be read
/// while the relay runs.
#[derive(Debug, Default)]
pub struct LinkCounters {
    /// Datagrams delivered (sent on to their destination).
    pub datagrams: AtomicU64,
    /// Payload bytes delivered.
    pub bytes: AtomicU64,
    /// Datagrams dropped by the random loss.
    pub lost: AtomicU64,
    /// Datagrams dropped because the rate cap's queue was full (tail drop).
    pub queue_dropped: AtomicU64,
    /// Datagrams the kernel refused to send (e.g. nobody listening yet).
    pub send_errors: AtomicU64,
}

/// Counters of both directions, shared (`Arc`) between the relay and its
/// reader.
#[derive(Debug, Default)]
pub struct LinkStats {
    /// Client → server direction.
    pub to_server: LinkCounters,
    /// Server → client direction.
    pub to_client: LinkCounters,
}

impl LinkStats {
    /// The stats file's JSON object: bytes and datagrams per direction, and
    /// losses and queue drops summed over both directions.
    pub fn to_json(&self) -> String {
        let (s, c) = (&self.to_server, &self.to_client);
        let sum = |a: &AtomicU64, b: &AtomicU64| a.load(Relaxed) + b.load(Relaxed);
        format!(
            "{{\"to_server_bytes\":{},\"to_client_bytes\":{},\"to_server_datagrams\":{},\
             \"to_client_datagrams\":{},\"lost\":{},\"queue_dropped\":{}}}",
            s.bytes.load(Relaxed),
            c.bytes.load(Relaxed),
            s.datagrams.load(Relaxed),
            c.datagrams.load(Relaxed),
            sum(&s.lost, &c.lost),
            sum(&s.queue_dropped, &c.queue_dropped),
        )
    }
}

/// Parses a rate such as `20mbit`, `100Mbit`, `1gbit`, `500kbit`, `1.5gbit`,
/// `64000` or `0` (no cap) into bits per second. Byte units (`mbps`, which
/// `tc` reads as megabytes per second) are refused rather than guessed.
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let lower = s.trim().to_ascii_lowercase();
    let units = [("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3), ("bit", 1.0)];
    let (number, scale) = units
        .iter()
        .find_map(|&(unit, scale)| Some((lower.strip_suffix(unit)?, scale)))
        .unwrap_or((lower.as_str(), 1.0));
    let bad = || format!("bad rate {s:?}: want e.g. 500kbit, 20mbit, 1gbit or 0");
    let bps = (number.parse::<f64>().map_err(|_| bad())? * scale).round();
    // Also refuses NaN, infinities and negative rates.
    if !(0.0..=u64::MAX as f64).contains(&bps) {
        return Err(bad());
    }
    Ok(bps as u64)
}

/// Picks one direction's counters out of the shared stats.
type Pick = fn(&LinkStats) -> &LinkCounters;

/// The state of one direction of the link: its RNG and when the rate cap
/// finishes serializing the last admitted datagram.
struct Scheduler {
    settings: LinkSettings,
    queue: Duration,
    delay: Duration,
    rng: StdRng,
    last_depart: Instant,
}

impl Scheduler {
    fn new(settings: LinkSettings, seed: u64) -> Self {
        Self {
            settings,
            queue: Duration::from_millis(settings.queue_ms),
            delay: Duration::from_millis(settings.delay_ms),
            rng: StdRng::seed_from_u64(seed),
            last_depart: Instant::now(),
        }
    }

    /// When a `len`-byte datagram arriving at `now` is to be delivered, or
    /// `None` (and counted) if the link drops it.
    fn admit(&mut self, now: Instant, len: usize, counters: &LinkCounters) -> Option<Instant> {
        // `gen` is in [0, 1), so loss 1.0 drops everything and 0.0 nothing.
        if self.settings.loss > 0.0 && self.rng.gen::<f64>() < self.settings.loss {
            counters.lost.fetch_add(1, Relaxed);
            return None;
        }
        let mut depart = now;
        if let Some(rate_bps) = std::num::NonZeroU64::new(self.settings.rate_bps) {
            let start = now.max(self.last_depart);
            // The wait before its own serialization starts is the backlog
            // ahead of it in the router buffer; past the buffer, tail drop.
            // (Counting its own serialization would drop all at queue_ms 0.)
            if start - now > self.queue {
                counters.queue_dropped.fetch_add(1, Relaxed);
                return None;
            }
            let nanos = len as u64 * 8 * 1_000_000_000 / rate_bps;
            depart = start + Duration::from_nanos(nanos);
            self.last_depart = depart;
        }
        Some(depart + self.delay)
    }
}

/// A datagram waiting in a direction's delivery queue.
struct Datagram {
    due: Instant,
    bytes: Vec<u8>,
    socket: Arc<UdpSocket>,
    dest: SocketAddr,
}

/// One direction of the link: its scheduler and the queue to its delivery task.
struct Link {
    scheduler: Mutex<Scheduler>,
    tx: mpsc::UnboundedSender<Datagram>,
    stats: Arc<LinkStats>,
    pick: Pick,
}

impl Link {
    /// Creates a direction and starts its delivery task in `tasks`.
    fn spawn(
        tasks: &mut JoinSet<()>,
        settings: LinkSettings,
        seed: u64,
        stats: &Arc<LinkStats>,
        pick: Pick,
    ) -> Self {
        // Unbounded is safe: the scheduler admits at most `queue_ms` of
        // backlog plus `delay_ms` in flight, the bound of a real link.
        let (tx, rx) = mpsc::unbounded_channel();
        tasks.spawn(deliver(rx, Arc::clone(stats), pick));
        let scheduler = Mutex::new(Scheduler::new(settings, seed));
        Self {
            scheduler,
            tx,
            stats: Arc::clone(stats),
            pick,
        }
    }

    /// Schedules a datagram that just arrived, to be sent from `socket` to `dest`.
    fn offer(&self, payload: &[u8], socket: &Arc<UdpSocket>, dest: SocketAddr) {
        // The lock spans the clock read and the enqueue: readers of several
        // clients feed one direction, and must enqueue in deadline order or
        // the delivery task would hold an early datagram behind a late one.
        let mut scheduler = self
            .scheduler
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let counters = (self.pick)(&self.stats);
        if let Some(due) = scheduler.admit(Instant::now(), payload.len(), counters) {
            let (bytes, socket) = (payload.to_vec(), Arc::clone(socket));
            // Fails only once the delivery task is gone: shutting down.
            let _ = self.tx.send(Datagram {
                due,
                bytes,
                socket,
                dest,
            });
        }
    }
}

/// Sends each queued datagram when due; those already due go out in one
/// batch without another timer round, which matters at high rates where
/// many datagrams fall within one timer tick.
async fn deliver(mut rx: mpsc::UnboundedReceiver<Datagram>, stats: Arc<LinkStats>, pick: Pick) {
    let counters = pick(&stats);
    let mut held: Option<Datagram> = None;
    loop {
        let head = match held.take() {
            Some(datagram) => datagram,
            None => match rx.recv().await {
                Some(datagram) => datagram,
                None => return,
            },
        };
        let mut now = Instant::now();
        if head.due > now {
            tokio::time::sleep_until(head.due).await;
            now = Instant::now();
        }
        send(head, counters).await;
        while let Ok(next) = rx.try_recv() {
            if next.due > now {
                held = Some(next);
                break;
            }
            send(next, counters).await;
        }
    }
}

/// Sends one datagram and counts it.
async fn send(d: Datagram, counters: &LinkCounters) {
    match d.socket.send_to(&d.bytes, d.dest).await {
        Ok(len) => {
            counters.datagrams.fetch_add(1, Relaxed);
            counters.bytes.fetch_add(len as u64, Relaxed);
        }
        // E.g. ECONNREFUSED on loopback while the peer is not up yet: a real
        // link would lose the datagram too, so the relay carries on.
        Err(_) => _ = counters.send_errors.fetch_add(1, Relaxed),
    }
}

/// Errors a UDP receive reports for an earlier datagram (ICMP feedback) or
/// a signal; the socket itself is fine.
fn transient(e: &io::Error) -> bool {
    use io::ErrorKind::{ConnectionRefused, ConnectionReset, Interrupted, WouldBlock};
    matches!(
        e.kind(),
        ConnectionReset | ConnectionRefused | Interrupted | WouldBlock
    )
}

/// Runs the relay until the future is dropped/cancelled: datagrams arriving on `listen`
/// from a client are forwarded to `server` from a per-client upstream socket (one ephemeral
/// UDP socket per distinct client address, so the server sees distinct peers); the server's
/// answers go back to that client from `listen`. Fails if `listen` cannot be bound.
pub async fn run_relay(
    listen: SocketAddr,
    server: SocketAddr,
    settings: LinkSettings,
    seed: u64,
    stats: Arc<LinkStats>,
) -> io::Result<()> {
    let socket = UdpSocket::bind(listen).await?;
    run_relay_on(socket, server, settings, seed, stats).await
}

/// [`run_relay`] on an already bound listen socket, for callers that bind
/// port 0 and need to know the port before the relay runs.
pub async fn run_relay_on(
    listen: UdpSocket,
    server: SocketAddr,
    settings: LinkSettings,
    seed: u64,
    stats: Arc<LinkStats>,
) -> io::Result<()> {
    let listen = Arc::new(listen);
    // Dropping the set aborts every task in it, so cancelling this future
    // stops the whole relay.
    let mut tasks = JoinSet::new();
    let to_server = Link::spawn(&mut tasks, settings, seed, &stats, |s| &s.to_server);
    // Another stream for the way back, so the two directions lose independently.
    let seed_back = seed ^ 0x9e37_79b9_7f4a_7c15;
    let back: Pick = |s| &s.to_client;
    let to_client = Arc::new(Link::spawn(&mut tasks, settings, seed_back, &stats, back));
    // Upstream sockets stay on loopback when the server is there.
    let upstream_ip = match server.ip() {
        ip if ip.is_loopback() => ip,
        IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let mut clients: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let mut warned_full = false;
    // One buffer for all datagrams; the queue holds exact-size copies.
    let mut buf = vec![0u8; RECV_BUF];
    loop {
        let (len, client) = match listen.recv_from(&mut buf).await {
            Ok(received) => received,
            Err(e) if transient(&e) => continue,
            Err(e) => return Err(e),
        };
        let upstream = match clients.get(&client) {
            Some(upstream) => Arc::clone(upstream),
            None if clients.len() >= MAX_CLIENTS => {
                if !warned_full {
                    tracing::warn!("link: {MAX_CLIENTS} clients already, dropping {client}");
                    warned_full = true;
                }
                continue;
            }
            None => {
                let upstream = match UdpSocket::bind(SocketAddr::new(upstream_ip, 0)).await {
                    Ok(socket) => Arc::new(socket),
                    Err(e) => {
                        tracing::warn!("link: no upstream socket for {client}: {e}");
                        continue;
                    }
                };
                let back = (Arc::clone(&listen), Arc::clone(&to_client));
                tasks.spawn(read_upstream(Arc::clone(&upstream), client, back));
                clients.insert(client, Arc::clone(&upstream));
                upstream
            }
        };
        to_server.offer(&buf[..len], &upstream, server);
    }
}

/// Feeds the server's answers on one client's upstream socket into the
/// server → client direction, to be sent to `client` from the listen socket.
async fn read_upstream(
    upstream: Arc<UdpSocket>,
    client: SocketAddr,
    (listen, to_client): (Arc<UdpSocket>, Arc<Link>),
) {
    let mut buf = vec![0u8; RECV_BUF];
    loop {
        match upstream.recv_from(&mut buf).await {
            Ok((len, _)) => to_client.offer(&buf[..len], &listen, client),
            Err(e) if transient(&e) => {}
            Err(e) => {
                tracing::warn!("link: upstream socket of {client} failed: {e}");
                return;
            }
        }
    }
}

/// What `bluepods link` was asked to do.
#[derive(Clone, Debug)]
pub struct LinkArgs {
    /// Where joiners dial.
    pub listen: SocketAddr,
    /// The real server.
    pub server: SocketAddr,
    /// The emulated link.
    pub settings: LinkSettings,
    /// Seed of the loss pattern.
    pub seed: u64,
    /// Where the counters go, once a second and on exit.
    pub stats_file: Option<std::path::PathBuf>,
}

/// Runs the relay until SIGINT or SIGTERM, writing the counters to the
/// stats file once a second and a last time on exit (through a temporary
/// file and a rename, so a reader never sees half a file).
pub fn main(args: &LinkArgs) -> Result<(), String> {
    let rt = crate::two_core_runtime()?;
    rt.block_on(async {
        let stats = Arc::new(LinkStats::default());
        let socket = UdpSocket::bind(args.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
        let relay = run_relay_on(socket, args.server, args.settings, args.seed, stats.clone());
        tokio::pin!(relay);
        let write = |stats: &LinkStats| -> Result<(), String> {
            let Some(path) = &args.stats_file else {
                return Ok(());
            };
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, stats.to_json())
                .and_then(|()| std::fs::rename(&tmp, path))
                .map_err(|e| format!("cannot write {}: {e}", path.display()))
        };
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| format!("signal handler: {e}"))?;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        eprintln!(
            "[LINK] {} -> {}: delay {} ms each way, loss {}, rate {} bit/s, queue {} ms",
            args.listen,
            args.server,
            args.settings.delay_ms,
            args.settings.loss,
            args.settings.rate_bps,
            args.settings.queue_ms
        );
        loop {
            tokio::select! {
                r = &mut relay => return r.map_err(|e| format!("relay: {e}")),
                _ = tick.tick() => write(&stats)?,
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
            }
        }
        write(&stats)?;
        eprintln!("[LINK] stopped: {}", stats.to_json());
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Starts a UDP echo server, a relay in front of it and a client socket;
    /// returns the client, the relay's address and its stats.
    async fn echo_behind_relay(settings: LinkSettings) -> (UdpSocket, SocketAddr, Arc<LinkStats>) {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let server_addr = server.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = vec![0u8; RECV_BUF];
            while let Ok((len, from)) = server.recv_from(&mut buf).await {
                let _ = server.send_to(&buf[..len], from).await;
            }
        });
        let listen = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let relay = listen.local_addr().unwrap();
        let stats = Arc::new(LinkStats::default());
        tokio::spawn(run_relay_on(
            listen,
            server_addr,
            settings,
            7,
            Arc::clone(&stats),
        ));
        (UdpSocket::bind("127.0.0.1:0").await.unwrap(), relay, stats)
    }

    // No `start_paused`: the macro turns even `start_paused = false` into a
    // `Builder::start_paused` call, which exists only with tokio's `test-util`.
    #[tokio::test(flavor = "current_thread")]
    async fn datagrams_cross_the_link_in_order_and_late() {
        let settings = LinkSettings {
            delay_ms: 20,
            ..LinkSettings::default()
        };
        let (client, relay, stats) = echo_behind_relay(settings).await;
        let mut sent_at = Vec::new();
        for i in 0..10u8 {
            sent_at.push(Instant::now());
            client.send_to(&[i; 100], relay).await.unwrap();
        }
        let mut buf = [0u8; 1500];
        for (i, sent) in sent_at.iter().enumerate() {
            let received = tokio::time::timeout(Duration::from_secs(2), client.recv_from(&mut buf));
            let (len, _) = received.await.expect("echo within 2 s").unwrap();
            assert_eq!(
                &buf[..len],
                &[i as u8; 100][..],
                "datagram {i} out of order"
            );
            let rtt = sent.elapsed();
            assert!(
                rtt >= Duration::from_millis(40),
                "datagram {i} back after {rtt:?}"
            );
        }
        assert_eq!(stats.to_server.datagrams.load(Relaxed), 10);
        assert_eq!(stats.to_client.bytes.load(Relaxed), 1000);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_link_with_total_loss_delivers_nothing_and_counts_it() {
        let settings = LinkSettings {
            loss: 1.0,
            ..LinkSettings::default()
        };
        let (client, relay, stats) = echo_behind_relay(settings).await;
        for i in 0..10u8 {
            client.send_to(&[i; 100], relay).await.unwrap();
        }
        let mut buf = [0u8; 1500];
        let received = tokio::time::timeout(Duration::from_millis(200), client.recv_from(&mut buf));
        assert!(
            received.await.is_err(),
            "a datagram crossed a link with loss 1.0"
        );
        assert_eq!(stats.to_server.lost.load(Relaxed), 10);
        assert_eq!(stats.to_server.datagrams.load(Relaxed), 0);
    }

    #[test]
    fn the_rate_cap_serializes_and_tail_drops_past_the_queue() {
        // 8 Mbit/s: a 1000-byte datagram takes 1 ms on the wire.
        let settings = LinkSettings {
            delay_ms: 5,
            rate_bps: 8_000_000,
            queue_ms: 2,
            loss: 0.0,
        };
        let (mut scheduler, counters) = (Scheduler::new(settings, 1), LinkCounters::default());
        let (t, ms) = (Instant::now(), Duration::from_millis);
        let mut admit = |at, len| scheduler.admit(at, len, &counters);
        assert_eq!(admit(t, 1000), Some(t + ms(1) + ms(5)));
        assert_eq!(admit(t, 1000), Some(t + ms(2) + ms(5)));
        assert_eq!(admit(t, 1000), Some(t + ms(3) + ms(5)));
        // The fourth would wait 3 ms behind the backlog, over the 2 ms buffer.
        assert_eq!(admit(t, 1000), None);
        assert_eq!(admit(t + ms(10), 1000), Some(t + ms(11) + ms(5)));
        assert_eq!(counters.queue_dropped.load(Relaxed), 1);
    }

    #[test]
    fn rates_parse_in_bits_per_second() {
        assert_eq!(parse_rate("20mbit"), Ok(20_000_000));
        assert_eq!(parse_rate("100Mbit"), Ok(100_000_000));
        assert_eq!(parse_rate("1gbit"), Ok(1_000_000_000));
        assert_eq!(parse_rate("500kbit"), Ok(500_000));
        assert_eq!(parse_rate("1.5gbit"), Ok(1_500_000_000));
        assert_eq!(parse_rate("64000"), Ok(64_000));
        assert_eq!(parse_rate("0"), Ok(0));
        for bad in ["10mbps", "fast", "", "-5mbit", "mbit"] {
            assert!(parse_rate(bad).is_err(), "{bad:?} accepted");
        }
    }
}
