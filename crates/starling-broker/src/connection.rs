//! One client connection: read a size-prefixed frame, answer it, repeat — one request at a
//! time, so responses leave in request order as Kafka clients require.
//!
//! Request memory is bounded three ways:
//! - a size prefix over `socket.request.max.bytes` (or negative) closes the connection before
//!   any of the body is read;
//! - the frame's declared size is reserved from the broker-wide `queued.max.request.bytes`
//!   budget before the body is read and returned once the request is answered; while the budget
//!   is spent the connection waits and reads nothing (back-pressure, not failure);
//! - the body buffer grows only as bytes arrive (doubling, never past the declared size), so an
//!   announced frame costs memory only for what was sent, and a client that starts a frame and
//!   does not finish it within `socket.request.read.timeout.ms` is disconnected.
//!
//! Idle connections hold only a small read buffer; responses go out with vectored writes of
//! their chunks, without a per-connection write buffer. Anything the handlers refuse to answer
//! closes this connection alone, with a log line; other connections never notice. Shutdown is
//! observed between requests, so an in-flight request always completes.
//!
//! A client over one of its quotas ([`crate::quotas`]) is throttled as KIP-219 has it: the
//! response goes out at once with its `throttle_time_ms`, then the connection reads nothing
//! from that client until the throttle time has passed (its requests wait in the socket). (For
//! old Produce and Fetch versions, whose clients do not back off, the response itself is
//! delayed instead: see [`api::answer`].)
//!
//! Metrics: bytes of whole request frames read and of response frames written, and per API the
//! requests answered and their latency, from the frame read to the response written.

use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use starling_protocol::frame::check_size_prefix;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::api::{self, Reply};
use crate::quotas::Principal;
use crate::Broker;

/// The read buffer every connection keeps: enough to take a small request (prefix and body) in
/// one read, small enough that thousands of idle connections cost little. Larger bodies are
/// read straight into their own buffer.
const READ_BUFFER: usize = 8 * 1024;

/// A frame buffer's first allocation (or the whole frame, if smaller); it then doubles as
/// bytes arrive.
const FIRST_BODY_ALLOCATION: usize = 64 * 1024;

/// How many response chunks go to the socket in one vectored write.
const MAX_IO_SLICES: usize = 64;

pub async fn serve(broker: Arc<Broker>, stream: TcpStream, peer: SocketAddr) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "set_nodelay");
    }
    tracing::debug!(%peer, "connection opened");
    let (read_half, mut write_half) = stream.into_split();
    let mut reader = BufReader::with_capacity(READ_BUFFER, read_half);
    let idle = Duration::from_millis(broker.config.connections_max_idle_ms);
    let frame_deadline = Duration::from_millis(broker.config.socket_request_read_timeout_ms);
    let max = broker.config.socket_request_max_bytes;
    // Without SASL every connection is the anonymous user; authentication will set it here.
    let principal = Principal::anonymous();
    let mut mute = Duration::ZERO;
    loop {
        if !mute.is_zero() {
            tokio::select! {
                _ = broker.shutdown.cancelled() => break,
                _ = tokio::time::sleep(mute) => {}
            }
        }
        // Between requests the connection may idle; once a frame has begun it must keep coming.
        let mut prefix = [0u8; 4];
        let first = tokio::select! {
            _ = broker.shutdown.cancelled() => break,
            r = tokio::time::timeout(idle, reader.read_exact(&mut prefix[..1])) => r,
        };
        let read = match first {
            Err(_) => {
                tracing::debug!(%peer, "closing idle connection");
                break;
            }
            Ok(r) => match r {
                Ok(_) => within(frame_deadline, reader.read_exact(&mut prefix[1..])).await,
                Err(e) => Err(e),
            },
        };
        if let Err(e) = read {
            if e.kind() != std::io::ErrorKind::UnexpectedEof {
                tracing::debug!(%peer, error = %e, "read failed");
            }
            break;
        }
        let size = match check_size_prefix(prefix, max) {
            Ok(size) => size,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "closing connection: bad frame size");
                break;
            }
        };
        // Held until the request is answered; waiting here is back-pressure on this client.
        let _reservation = tokio::select! {
            _ = broker.shutdown.cancelled() => break,
            r = broker.request_memory.reserve(size) => r,
        };
        let frame = match within(frame_deadline, read_body(&mut reader, size)).await {
            Ok(frame) => frame,
            Err(e) => {
                tracing::warn!(%peer, error = %e, expected = size, "closing connection: incomplete frame");
                break;
            }
        };
        let started = Instant::now();
        broker.metrics.received(4 + frame.len());
        let api_metrics = frame
            .get(..2)
            .and_then(|key| broker.metrics.api(i16::from_be_bytes([key[0], key[1]])));
        let (reply, throttle) = api::answer(&broker, frame, peer, &principal).await;
        mute = throttle;
        let chunks = match reply {
            Reply::Frame(bytes) => vec![bytes],
            Reply::Chunks(chunks) => chunks,
            Reply::Nothing => {
                if let Some(m) = api_metrics {
                    m.request_answered();
                    m.observe_latency(started.elapsed());
                }
                continue;
            }
            Reply::Close(why) => {
                tracing::warn!(%peer, reason = %why, "closing connection");
                break;
            }
        };
        // Counted before the write: a client holding its response must find it counted.
        broker.metrics.sent(chunks.iter().map(Bytes::len).sum());
        if let Some(m) = api_metrics {
            m.request_answered();
        }
        if let Err(e) = write_frame(&mut write_half, &chunks).await {
            tracing::debug!(%peer, error = %e, "write failed");
            break;
        }
        if let Some(m) = api_metrics {
            m.observe_latency(started.elapsed());
        }
    }
    let _ = write_half.shutdown().await;
    tracing::debug!(%peer, "connection closed");
}

/// Writes a response's chunks with as few system calls as the socket allows, without copying
/// them into a buffer first.
async fn write_frame<W: AsyncWrite + Unpin>(out: &mut W, chunks: &[Bytes]) -> std::io::Result<()> {
    let mut rest: Vec<&[u8]> = chunks
        .iter()
        .map(|c| &c[..])
        .filter(|c| !c.is_empty())
        .collect();
    let mut start = 0;
    while start < rest.len() {
        let end = rest.len().min(start + MAX_IO_SLICES);
        let slices: Vec<IoSlice<'_>> = rest[start..end].iter().map(|c| IoSlice::new(c)).collect();
        let mut written = out.write_vectored(&slices).await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while start < rest.len() && written >= rest[start].len() {
            written -= rest[start].len();
            start += 1;
        }
        if written > 0 {
            rest[start] = &rest[start][written..];
        }
    }
    out.flush().await
}

/// `fut`, failed with `TimedOut` if it takes longer than `limit`.
async fn within<T>(
    limit: Duration,
    fut: impl std::future::Future<Output = std::io::Result<T>>,
) -> std::io::Result<T> {
    tokio::time::timeout(limit, fut).await.map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "frame not completed within socket.request.read.timeout.ms",
        )
    })?
}

/// Reads a frame body of `size` bytes into a buffer that grows as they arrive: it starts small,
/// doubles when full and never exceeds `size`, so what it holds tracks what the client sent.
async fn read_body<R: AsyncRead + Unpin>(reader: &mut R, size: usize) -> std::io::Result<Bytes> {
    let mut buf: Vec<u8> = Vec::with_capacity(size.min(FIRST_BODY_ALLOCATION));
    while buf.len() < size {
        if buf.len() == buf.capacity() {
            let target = (buf.capacity() * 2).clamp(FIRST_BODY_ALLOCATION, size);
            buf.reserve_exact(target - buf.len());
        }
        let room = (buf.capacity() - buf.len()).min(size - buf.len());
        let n = (&mut *reader).take(room as u64).read_buf(&mut buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok(Bytes::from(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most `step` bytes per read, like a slow socket.
    struct Trickle {
        data: Vec<u8>,
        pos: usize,
        step: usize,
        /// The largest buffer capacity seen when a read was asked for.
        max_capacity_asked: usize,
    }

    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            let n = self
                .step
                .min(buf.remaining())
                .min(self.data.len() - self.pos);
            self.max_capacity_asked = self.max_capacity_asked.max(buf.remaining());
            let start = self.pos;
            buf.put_slice(&self.data[start..start + n]);
            self.pos += n;
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn a_body_buffer_never_grows_past_twice_what_arrived_nor_past_the_declared_size() {
        let size = 1_000_000;
        let mut reader = Trickle {
            data: (0..size).map(|i| i as u8).collect(),
            pos: 0,
            step: 10_000,
            max_capacity_asked: 0,
        };
        let body = read_body(&mut reader, size).await.unwrap();
        assert_eq!(body.len(), size);
        assert!(body.iter().enumerate().all(|(i, &b)| b == i as u8));
        assert!(reader.max_capacity_asked <= size);
    }

    #[tokio::test]
    async fn a_frame_that_stops_arriving_is_an_unexpected_eof_with_only_its_bytes_held() {
        let mut reader = Trickle {
            data: vec![7; 1000],
            pos: 0,
            step: 100,
            max_capacity_asked: 0,
        };
        let err = read_body(&mut reader, 50_000_000).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
        // The buffer was offered at most its first allocation, not the declared 50 MB.
        assert!(reader.max_capacity_asked <= FIRST_BODY_ALLOCATION);
    }

    #[tokio::test]
    async fn vectored_writes_deliver_every_chunk_in_order_through_partial_writes() {
        let chunks: Vec<Bytes> = (0..200u32)
            .map(|i| Bytes::from(vec![i as u8; (i as usize * 37) % 1000]))
            .collect();
        let expected: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
        let (mut a, mut b) = tokio::io::duplex(4096);
        let writer = tokio::spawn(async move {
            write_frame(&mut a, &chunks).await.unwrap();
        });
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        writer.await.unwrap();
        assert_eq!(got, expected);
    }
}
