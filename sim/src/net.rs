//! QUIC over turmoil: a `quinn::AsyncUdpSocket` on a turmoil UDP socket,
//! and a `quinn::Runtime` whose clock and timers are tokio's — which turmoil
//! drives. The production transport runs on top unchanged.
//!
//! Turmoil's UDP socket has no poll-based receive, only `readable().await`
//! and `try_recv_from`; the adapter keeps one pending `readable` future and
//! polls it when the queue is empty. Sends never block (turmoil has no UDP
//! back-pressure; its queue bound is `udp_capacity`).

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

/// A turmoil UDP socket that quinn can drive.
pub struct SimSocket {
    socket: Arc<turmoil::net::UdpSocket>,
    addr: SocketAddr,
    readable: Mutex<Option<Readable>>,
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
        }))
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
