//! One client connection: read a size-prefixed frame, answer it, repeat — one request at a
//! time, so responses leave in request order as Kafka clients require.
//!
//! A size prefix over `socket.request.max.bytes` (or negative) closes the connection before any
//! of the body is read; the body buffer grows only as bytes actually arrive, so a client that
//! announces a large frame and sends nothing costs no memory. Anything the handlers refuse to
//! answer closes this connection alone, with a log line; other connections never notice.
//! Shutdown is observed between requests, so an in-flight request always completes.
//!
//! Metrics: bytes of whole request frames read and of response frames written, and per API the
//! requests answered and their latency, from the frame read to the response written.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use starling_protocol::frame::check_size_prefix;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;

use crate::api::{self, Reply};
use crate::Broker;

/// Largest chunk read into a frame buffer at once.
const READ_CHUNK: usize = 64 * 1024;

pub async fn serve(broker: Arc<Broker>, stream: TcpStream, peer: SocketAddr) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "set_nodelay");
    }
    tracing::debug!(%peer, "connection opened");
    let (read_half, write_half) = stream.into_split();
    // Small chunks are coalesced here; chunks larger than the buffer go straight to the socket.
    let mut write_half = BufWriter::with_capacity(READ_CHUNK, write_half);
    let mut reader = BufReader::with_capacity(READ_CHUNK, read_half);
    let idle = Duration::from_millis(broker.config.connections_max_idle_ms);
    let max = broker.config.socket_request_max_bytes;
    loop {
        let mut prefix = [0u8; 4];
        let read = tokio::select! {
            _ = broker.shutdown.cancelled() => break,
            r = tokio::time::timeout(idle, reader.read_exact(&mut prefix)) => r,
        };
        match read {
            Err(_) => {
                tracing::debug!(%peer, "closing idle connection");
                break;
            }
            Ok(Err(e)) => {
                if e.kind() != std::io::ErrorKind::UnexpectedEof {
                    tracing::debug!(%peer, error = %e, "read failed");
                }
                break;
            }
            Ok(Ok(_)) => {}
        }
        let size = match check_size_prefix(prefix, max) {
            Ok(size) => size,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "closing connection: bad frame size");
                break;
            }
        };
        let frame = match read_body(&mut reader, size, idle).await {
            Ok(frame) => frame,
            Err(e) => {
                tracing::warn!(%peer, error = %e, expected = size, "closing connection: truncated frame");
                break;
            }
        };
        let started = Instant::now();
        broker.metrics.received(4 + frame.len());
        let api_metrics = frame
            .get(..2)
            .and_then(|key| broker.metrics.api(i16::from_be_bytes([key[0], key[1]])));
        let chunks = match api::dispatch(&broker, frame, peer).await {
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

async fn write_frame<W: tokio::io::AsyncWrite + Unpin>(
    out: &mut BufWriter<W>,
    chunks: &[Bytes],
) -> std::io::Result<()> {
    for chunk in chunks {
        out.write_all(chunk).await?;
    }
    out.flush().await
}

async fn read_body<R: AsyncRead + Unpin>(
    reader: &mut R,
    size: usize,
    idle: Duration,
) -> std::io::Result<Bytes> {
    let mut buf = BytesMut::with_capacity(size.min(READ_CHUNK));
    while buf.len() < size {
        let want = (size - buf.len()).min(READ_CHUNK);
        buf.reserve(want);
        let n = tokio::time::timeout(idle, (&mut *reader).take(want as u64).read_buf(&mut buf))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "frame body stalled")
            })??;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok(buf.freeze())
}
