//! QUIC over turmoil: a `quinn::AsyncUdpSocket` on a turmoil UDP socket,
//! and a `quinn::Runtime` whose clock and timers are tokio's — which turmoil
//! drives. The production transport runs on top unchanged.
//!
//! Turmoil's UDP socket has no poll-based receive, only `readable().await`
//! and `try_recv_from`; the adapter keeps one pending `readable` future and
//! polls it when the queue is empty. Sends never block (turmoil has no UDP
//! back-pressure; its queue bound is `udp_capacity`).
//!
//! Turmoil has latency per link but neither a rate cap nor random loss of
//! single datagrams, which is what a real uplink adds. A socket bound with
//! a [`LinkShape`] adds both to what its host sends: each datagram is lost
//! with the shape's probability (from a seeded RNG, so runs repeat), or
//! leaves when the cap has serialized the ones before it — through a pacing
//! task on the host's simulated clock — and is dropped when it would wait
//! longer than the shape's queue (tail drop, as a router does).

use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncTimer, AsyncUdpSocket, Runtime, UdpPoller};
use std::fmt;
use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

type Readable = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

/// What a host's uplink does to the datagrams it sends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkShape {
    /// Rate cap in bits per second; 0 for none.
    pub rate_bps: u64,
    /// Datagrams lost at random, per million.
    pub loss_ppm: u32,
    /// Longest a datagram waits behind the cap before it is dropped, ms.
    pub queue_ms: u64,
    /// Seed of the loss pattern.
    pub seed: u64,
}

/// A shaped socket's uplink: the loss RNG, when the cap is free again, and
/// the queue to the pacing task.
struct Uplink {
    shape: LinkShape,
    rng: bluepods_core::rng::DetRng,
    free_at: tokio::time::Instant,
    paced: tokio::sync::mpsc::UnboundedSender<(tokio::time::Instant, Vec<u8>, SocketAddr)>,
}

/// A turmoil UDP socket that quinn can drive.
pub struct SimSocket {
    socket: Arc<turmoil::net::UdpSocket>,
    addr: SocketAddr,
    readable: Mutex<Option<Readable>>,
    uplink: Option<Mutex<Uplink>>,
}

impl fmt::Debug for SimSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SimSocket({})", self.addr)
    }
}

impl SimSocket {
    /// Binds `0.0.0.0:port` on the current turmoil host.
    pub async fn bind(port: u16) -> io::Result<Arc<Self>> {
        let socket = turmoil::net::UdpSocket::bind(("0.0.0.0", port)).await?;
        let addr = socket.local_addr()?;
        Ok(Arc::new(SimSocket {
            socket: Arc::new(socket),
            addr,
            readable: Mutex::new(None),
            uplink: None,
        }))
    }

    /// Binds like [`SimSocket::bind`], with `shape` applied to every
    /// datagram this host sends. Spawns the pacing task on the current
    /// host, so it ends with the host.
    pub async fn bind_shaped(port: u16, shape: LinkShape) -> io::Result<Arc<Self>> {
        let socket = Arc::new(turmoil::net::UdpSocket::bind(("0.0.0.0", port)).await?);
        let addr = socket.local_addr()?;
        let (paced, mut queue) =
            tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>, SocketAddr)>();
        let sender = socket.clone();
        tokio::spawn(async move {
            // Departures are monotone: the head of the queue is always due
            // first, so one sleep per datagram keeps the order.
            while let Some((due, bytes, to)) = queue.recv().await {
                tokio::time::sleep_until(due).await;
                let _ = sender.try_send_to(&bytes, to);
            }
        });
        Ok(Arc::new(SimSocket {
            socket,
            addr,
            readable: Mutex::new(None),
            uplink: Some(Mutex::new(Uplink {
                shape,
                rng: bluepods_core::rng::DetRng::new(shape.seed),
                free_at: tokio::time::Instant::now(),
                paced,
            })),
        }))
    }

    /// Sends through the uplink's loss and rate cap. A dropped datagram is
    /// reported as sent: on a real link the sender never knows.
    fn send_shaped(&self, uplink: &Mutex<Uplink>, transmit: &Transmit) -> io::Result<()> {
        let mut up = uplink.lock().unwrap_or_else(|e| e.into_inner());
        let shape = up.shape;
        if shape.loss_ppm > 0 && up.rng.below(1_000_000) < u64::from(shape.loss_ppm) {
            return Ok(());
        }
        let Some(rate_bps) = std::num::NonZeroU64::new(shape.rate_bps) else {
            return self
                .socket
                .try_send_to(transmit.contents, transmit.destination)
                .map(|_| ());
        };
        let now = tokio::time::Instant::now();
        let start = now.max(up.free_at);
        if start - now > std::time::Duration::from_millis(shape.queue_ms) {
            return Ok(()); // the router's buffer is full: tail drop
        }
        let bits = transmit.contents.len() as u64 * 8;
        let due = start + std::time::Duration::from_nanos(bits * 1_000_000_000 / rate_bps);
        up.free_at = due;
        // The pacing task lives as long as the host; if it is gone the
        // host is going down and the datagram with it.
        let _ = up
            .paced
            .send((due, transmit.contents.to_vec(), transmit.destination));
        Ok(())
    }
}

#[derive(Debug)]
struct AlwaysWritable;

impl UdpPoller for AlwaysWritable {
    fn poll_writable(self: Pin<&mut Self>, _cx: &mut Context) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl AsyncUdpSocket for SimSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Box::pin(AlwaysWritable)
    }

    fn try_send(&self, transmit: &Transmit) -> io::Result<()> {
        if let Some(uplink) = &self.uplink {
            return self.send_shaped(uplink, transmit);
        }
        self.socket
            .try_send_to(transmit.contents, transmit.destination)
            .map(|_| ())
    }

    fn poll_recv(
        &self,
        cx: &mut Context,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let (Some(buf), Some(slot)) = (bufs.first_mut(), meta.first_mut()) else {
            return Poll::Ready(Ok(0));
        };
        let mut readable = self.readable.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match self.socket.try_recv_from(buf) {
                Ok((len, from)) => {
                    *slot = RecvMeta {
                        addr: from,
                        len,
                        stride: len,
                        ..RecvMeta::default()
                    };
                    return Poll::Ready(Ok(1));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
            let socket = self.socket.clone();
            let fut =
                readable.get_or_insert_with(|| Box::pin(async move { socket.readable().await }));
            match fut.as_mut().poll(cx) {
                Poll::Ready(result) => {
                    *readable = None;
                    result?;
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }

    fn may_fragment(&self) -> bool {
        false
    }
}

/// quinn's runtime on turmoil's (tokio's) simulated clock.
#[derive(Debug)]
pub struct SimRuntime;

impl Runtime for SimRuntime {
    fn new_timer(&self, i: Instant) -> Pin<Box<dyn AsyncTimer>> {
        // quinn implements its timer trait for tokio's `Sleep`.
        Box::pin(tokio::time::sleep_until(tokio::time::Instant::from_std(i)))
    }

    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) {
        tokio::spawn(future);
    }

    fn wrap_udp_socket(&self, _t: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        Err(io::Error::other("the simulator has no OS sockets"))
    }

    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }
}
