//! The bytes on a connection's streams: the long-lived gossip stream, the
//! order answers are sent in, and reading length-prefixed frames.
//!
//! Reading is where a hostile peer first touches the node, so every way a
//! frame can be wrong (cut short, too long, not a message) becomes a
//! `NetEvent::Frame` error the core sees, never a silent end of stream.

use crate::transport::{describe_close, NetEvent};
use bluepods_core::wire::{self, Message};
use bluepods_core::PeerId;
use quinn::Connection;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Send priority of the gossip stream: consensus traffic goes before any
/// answer, so a joiner's download never delays a vertex.
const GOSSIP_PRIORITY: i32 = 2;

/// Answers up to this size (status, vertices, manifests) go before bulk
/// answers (chunks, ranges) queued on the same connection.
const SMALL_ANSWER_BYTES: usize = 64 * 1024;

/// The send priority of the `sequence`-th answer on a connection, of
/// `frame_bytes`: small answers before bulk ones, and bulk answers in the
/// order they were asked for (a lower priority for each later one; QUIC
/// sends a higher priority first).
///
/// Why in order: a downloader keeps a window of chunk requests outstanding
/// and asks for the next when an answer completes. Sent round-robin, all
/// the answers of a window completed together at its end, and the link
/// idled for a round trip while the next requests travelled; and at 0.5%
/// loss nearly every 1 MB answer loses a packet, whose resend waited behind
/// every other answer's data. In order, an answer completes every chunk
/// time, a resend goes out first, and the next request arrives while the
/// rest of the window is still being sent. (Quinn's `send_fairness(false)`
/// gives the first of these but not the second: a stream with a resend
/// queues behind the others.)
pub(crate) fn answer_priority(frame_bytes: usize, sequence: u32) -> i32 {
    if frame_bytes <= SMALL_ANSWER_BYTES {
        return 1;
    }
    // Within 0 ..= -2^30; after 2^30 answers the order wraps once, which
    // costs one answer its place.
    -i32::try_from(sequence & 0x3FFF_FFFF).unwrap_or(0)
}

/// Bytes queued towards one peer (gossip and answers) that QUIC has not
/// taken yet. Every frame reserves its size before it is queued and gives
/// it back once written, so what a peer that does not read can pin is
/// bounded in bytes, not only in frames.
#[derive(Clone)]
pub(crate) struct SendBudget {
    queued: Arc<AtomicUsize>,
    max_bytes: usize,
}

impl SendBudget {
    pub(crate) fn new(max_bytes: usize) -> Self {
        SendBudget {
            queued: Arc::new(AtomicUsize::new(0)),
            max_bytes,
        }
    }

    /// Reserves `bytes`, or says how many are queued if that would pass
    /// the limit.
    pub(crate) fn reserve(&self, bytes: usize) -> Result<(), usize> {
        self.queued
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |q| {
                q.checked_add(bytes)
                    .filter(|total| *total <= self.max_bytes)
            })
            .map(|_| ())
    }

    /// Bytes reserved now.
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Gives back what a written (or abandoned) frame reserved.
    pub(crate) fn release(&self, bytes: usize) {
        self.queued.fetch_sub(bytes, Ordering::Relaxed);
    }
}

pub(crate) async fn write_gossip(
    conn: Connection,
    mut frames: mpsc::Receiver<Vec<u8>>,
    budget: SendBudget,
) {
    let Ok(mut stream) = conn.open_uni().await else {
        return;
    };
    let _ = stream.set_priority(GOSSIP_PRIORITY);
    while let Some(frame) = frames.recv().await {
        let written = stream.write_all(&frame).await;
        budget.release(frame.len());
        if written.is_err() {
            return;
        }
    }
    let _ = stream.finish();
    let _ = stream.stopped().await;
}

/// Accepts the peer's streams and reads each. `reads_answers` false (a
/// hostile simulated peer only) reads the first stream — the peer's gossip,
/// which carries the handshake — and holds every later one unread: a peer
/// that asks and never reads the answers.
pub(crate) async fn read_connection(
    peer: PeerId,
    conn: Connection,
    events: mpsc::Sender<NetEvent>,
    max_frame: usize,
    reads_answers: bool,
) {
    let mut unread = Vec::new();
    let mut gossip_read = false;
    loop {
        match conn.accept_uni().await {
            Ok(stream) if reads_answers || !gossip_read => {
                gossip_read = true;
                tokio::spawn(read_stream(peer, stream, events.clone(), max_frame));
            }
            Ok(stream) => unread.push(stream),
            Err(e) => {
                let _ = events
                    .send(NetEvent::Closed {
                        peer,
                        reason: describe_close(&e),
                    })
                    .await;
                return;
            }
        }
    }
}

/// Reads frames until the stream ends. A frame that is cut short, announces
/// too many bytes or does not decode is reported and ends the stream (the
/// core then drops the peer, and a request pending there fails at once);
/// a stream the peer resets ends quietly, since QUIC lets either side
/// abandon a stream.
///
/// The payload grows as bytes arrive rather than being allocated at the
/// announced length: a peer that announces 4 MiB on every stream and sends
/// nothing pins no more than QUIC's receive windows let it send.
pub(crate) async fn read_stream(
    peer: PeerId,
    mut stream: quinn::RecvStream,
    events: mpsc::Sender<NetEvent>,
    max_frame: usize,
) {
    loop {
        let result = match read_frame(&mut stream, max_frame).await {
            Ok(None) | Err(Abandoned) => return,
            Ok(Some(result)) => result.map(Box::new),
        };
        let bad = result.is_err();
        if events.send(NetEvent::Frame { peer, result }).await.is_err() || bad {
            return;
        }
    }
}

/// The peer reset the stream, or the connection is gone.
struct Abandoned;

/// One frame: `None` at a clean end of the stream, else the message or why
/// the bytes are not one.
async fn read_frame(
    stream: &mut quinn::RecvStream,
    max_frame: usize,
) -> Result<Option<Result<Message, String>>, Abandoned> {
    let header = read_up_to(stream, wire::FRAME_HEADER_BYTES).await?;
    if header.is_empty() {
        return Ok(None);
    }
    let Ok(header) = <[u8; wire::FRAME_HEADER_BYTES]>::try_from(header.as_slice()) else {
        return Ok(Some(Err(truncated(header.len(), wire::FRAME_HEADER_BYTES))));
    };
    let len = match wire::frame_len(header, max_frame) {
        Ok(len) => len,
        Err(e) => return Ok(Some(Err(e.to_string()))),
    };
    let payload = read_up_to(stream, len).await?;
    if payload.len() < len {
        let got = wire::FRAME_HEADER_BYTES + payload.len();
        return Ok(Some(Err(truncated(got, wire::FRAME_HEADER_BYTES + len))));
    }
    Ok(Some(
        wire::decode(&payload, max_frame).map_err(|e| e.to_string()),
    ))
}

fn truncated(got: usize, wanted: usize) -> String {
    format!("truncated frame: the stream ended after {got} of {wanted} bytes")
}

/// Reads `len` bytes, or fewer if the stream finishes first.
async fn read_up_to(stream: &mut quinn::RecvStream, len: usize) -> Result<Vec<u8>, Abandoned> {
    let mut out = Vec::with_capacity(len.min(64 * 1024));
    while out.len() < len {
        match stream.read_chunk(len - out.len(), true).await {
            Ok(Some(chunk)) => out.extend_from_slice(&chunk.bytes),
            Ok(None) => break,
            Err(_) => return Err(Abandoned),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Postmortem: a frame whose stream ended early was dropped without a
    /// word (`read_exact` failed and the reader returned), so the node's log
    /// showed nothing and the core never learned the peer broke the protocol.
    #[tokio::test]
    async fn a_frame_cut_short_or_announced_too_long_is_reported_to_the_core() {
        let cfg = crate::transport::TransportConfig::default();
        let server = crate::transport::bind_endpoint("127.0.0.1:0".parse().unwrap(), &cfg).unwrap();
        let client = crate::transport::bind_endpoint("127.0.0.1:0".parse().unwrap(), &cfg).unwrap();
        let addr = server.local_addr().unwrap();
        let accept = tokio::spawn(async move { server.accept().await.unwrap().await.unwrap() });
        let to_server = client
            .connect(addr, crate::transport::SERVER_NAME)
            .unwrap()
            .await
            .unwrap();
        let at_server = accept.await.unwrap();
        let (events, mut seen) = mpsc::channel(8);
        tokio::spawn(read_connection(PeerId(1), at_server, events, 1 << 20, true));
        let cases: [&[u8]; 3] = [
            // A header announcing 100 bytes, then 10 of them.
            &[100, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
            // Half a header.
            &[7, 0],
            // A length far over the limit.
            &[0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3],
        ];
        let mut errors = Vec::new();
        for bytes in cases {
            let mut s = to_server.open_uni().await.unwrap();
            s.write_all(bytes).await.unwrap();
            s.finish().unwrap();
            let event = tokio::time::timeout(std::time::Duration::from_secs(10), seen.recv())
                .await
                .expect("the reader reports the frame")
                .unwrap();
            match event {
                NetEvent::Frame { result: Err(e), .. } => errors.push(e),
                _ => panic!("expected a frame error"),
            }
        }
        assert!(errors[0].contains("after 14 of 104 bytes"), "{errors:?}");
        assert!(errors[1].contains("after 2 of 4 bytes"), "{errors:?}");
        assert!(errors[2].contains("4294967295"), "{errors:?}");
    }

    #[test]
    fn gossip_goes_first_then_small_answers_then_bulk_answers_in_the_order_asked() {
        let chunk = 700 * 1024;
        assert!(GOSSIP_PRIORITY > answer_priority(100, 7));
        assert!(answer_priority(100, 7) > answer_priority(chunk, 0));
        assert!(answer_priority(chunk, 0) > answer_priority(chunk, 1));
        assert!(answer_priority(chunk, 1) > answer_priority(chunk, 2));
        // After 2^30 bulk answers the order wraps once.
        assert!(answer_priority(chunk, 1 << 30) > answer_priority(chunk, (1 << 30) - 1));
    }
}
