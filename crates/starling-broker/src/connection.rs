//! One client connection: read a size-prefixed frame, answer it, repeat — one request at a
//! time, so responses leave in request order as Kafka clients require.
//!
//! [`Connection`] owns the stream (any byte stream: plain TCP today, TLS next) and its read
//! buffer; [`Connection::read_frame`] returns the next whole request with its header's fixed
//! fields decoded ([`RequestFrame`]), or `None` when the connection ended in the ordinary way
//! (the client closed it between requests, it idled past `connections.max.idle.ms`, or the
//! broker is shutting down). [`serve`] is the loop around it: read, answer ([`api::answer`]),
//! write, with the per-request metrics ([`RequestMetrics`]) kept beside it.
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
//! On a SASL listener each request goes through the connection's [`Authenticator`] first, with
//! the time it arrived: it answers the SASL requests (re-authentications included) and closes a
//! connection whose session expired (`connections.max.reauth.ms`) when it sends anything else.
//!
//! Metrics: bytes of whole request frames read and of response frames written, and per API the
//! requests answered and their latency, from the frame read to the response written.

use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use starling_protocol::frame::{check_size_prefix, FrameError};
use starling_protocol::request::{header_prefix, HeaderPrefix};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::api::{self, Reply};
use crate::authentication::{Authenticator, Verdict};
use crate::listeners::Listener;
use crate::metrics::{ApiMetrics, Metrics};
use crate::quotas::Principal;
use crate::request_memory::{RequestMemory, Reservation};
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

/// One whole request frame (without its size prefix), with its header's fixed fields.
pub struct RequestFrame {
    pub header: HeaderPrefix,
    pub bytes: Bytes,
    /// Its share of `queued.max.request.bytes`, held until the request is answered.
    _reservation: Reservation,
}

/// Why a connection is closed in the middle of a frame or for a frame it cannot take.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("bad frame size: {0}")]
    BadSize(#[from] FrameError),
    #[error("incomplete frame of {expected} bytes: {error}")]
    Incomplete {
        expected: usize,
        error: std::io::Error,
    },
    #[error("read failed: {0}")]
    Read(std::io::Error),
    /// The frame starts like a TLS record (`16 03 ..`): a client configured for SSL on a
    /// listener without TLS. (As a size it would be over 369 MB, refused anyway.)
    #[error("a TLS handshake on a listener without TLS: is the client configured for SSL?")]
    TlsOnPlaintext,
}

/// The limits a connection reads under.
#[derive(Debug, Clone, Copy)]
pub struct ReadLimits {
    /// `connections.max.idle.ms`: how long the connection may wait between requests.
    pub idle: Duration,
    /// `socket.request.read.timeout.ms`: how long a begun frame may take to arrive.
    pub frame_deadline: Duration,
    /// `socket.request.max.bytes`.
    pub max_frame: usize,
}

impl ReadLimits {
    pub fn of(broker: &Broker) -> ReadLimits {
        ReadLimits {
            idle: Duration::from_millis(broker.config.connections_max_idle_ms),
            frame_deadline: Duration::from_millis(broker.config.socket_request_read_timeout_ms),
            max_frame: broker.config.socket_request_max_bytes,
        }
    }
}

/// A client's byte stream, read a request frame at a time and written a response at a time.
pub struct Connection<S> {
    /// Reads are buffered; writes pass straight through to the stream.
    stream: BufReader<S>,
    pub peer: SocketAddr,
    limits: ReadLimits,
    memory: RequestMemory,
    shutdown: CancellationToken,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    pub fn new(
        stream: S,
        peer: SocketAddr,
        limits: ReadLimits,
        memory: RequestMemory,
        shutdown: CancellationToken,
    ) -> Connection<S> {
        Connection {
            stream: BufReader::with_capacity(READ_BUFFER, stream),
            peer,
            limits,
            memory,
            shutdown,
        }
    }

    /// A connection under the broker's read limits, request memory and shutdown signal.
    pub fn of(broker: &Broker, stream: S, peer: SocketAddr) -> Connection<S> {
        Connection::new(
            stream,
            peer,
            ReadLimits::of(broker),
            broker.request_memory.clone(),
            broker.shutdown.clone(),
        )
    }

    /// The next request frame; `None` when the connection ends between requests: the client
    /// closed it, it idled too long, or the broker is shutting down (each logged here).
    pub async fn read_frame(&mut self) -> Result<Option<RequestFrame>, ConnectionError> {
        let Some((bytes, reservation)) = self.read_sized(false).await? else {
            return Ok(None);
        };
        // A size prefix passes only for frames long enough to hold the fixed fields.
        let header = header_prefix(&bytes)
            .ok_or(ConnectionError::BadSize(FrameError::TooShort(bytes.len())))?;
        Ok(Some(RequestFrame {
            header,
            bytes,
            _reservation: reservation,
        }))
    }

    /// The next size-prefixed SASL token, after a SaslHandshake v0 (raw tokens, not Kafka
    /// requests, follow it; any size from 0 up to the frame bound); `None` as for
    /// [`Connection::read_frame`].
    pub async fn read_token(&mut self) -> Result<Option<Bytes>, ConnectionError> {
        Ok(self.read_sized(true).await?.map(|(bytes, _)| bytes))
    }

    /// Reads one size prefix and the bytes it announces, under the connection's limits; a
    /// `raw` token may be shorter than a request header.
    async fn read_sized(
        &mut self,
        raw: bool,
    ) -> Result<Option<(Bytes, Reservation)>, ConnectionError> {
        let peer = self.peer;
        // Between requests the connection may idle; once a frame has begun it must keep coming.
        let mut prefix = [0u8; 4];
        let first = tokio::select! {
            _ = self.shutdown.cancelled() => return Ok(None),
            r = tokio::time::timeout(self.limits.idle, self.stream.read_exact(&mut prefix[..1])) => r,
        };
        match first {
            Err(_) => {
                tracing::debug!(%peer, "closing idle connection");
                return Ok(None);
            }
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Ok(Err(e)) => return Err(ConnectionError::Read(e)),
            Ok(Ok(_)) => {}
        }
        within(
            self.limits.frame_deadline,
            self.stream.read_exact(&mut prefix[1..]),
        )
        .await
        .map_err(|error| ConnectionError::Incomplete { expected: 4, error })?;
        if prefix[0] == TLS_HANDSHAKE_RECORD && prefix[1] == 3 {
            return Err(ConnectionError::TlsOnPlaintext);
        }
        let size = match check_size_prefix(prefix, self.limits.max_frame) {
            Err(FrameError::TooShort(size)) if raw => size,
            checked => checked?,
        };
        // Held until the request is answered; waiting here is back-pressure on this client.
        let reservation = tokio::select! {
            _ = self.shutdown.cancelled() => return Ok(None),
            r = self.memory.reserve(size) => r,
        };
        let bytes = within(
            self.limits.frame_deadline,
            read_body(&mut self.stream, size),
        )
        .await
        .map_err(|error| ConnectionError::Incomplete {
            expected: size,
            error,
        })?;
        Ok(Some((bytes, reservation)))
    }

    /// Sets the largest frame the connection accepts from now on.
    pub fn set_max_frame(&mut self, max_frame: usize) {
        self.limits.max_frame = max_frame;
    }

    /// Writes a response's chunks in order.
    pub async fn write_response(&mut self, chunks: &[Bytes]) -> std::io::Result<()> {
        write_frame(&mut self.stream, chunks).await
    }

    /// Flushes and closes the write side.
    pub async fn close(mut self) {
        let _ = self.stream.shutdown().await;
    }
}

/// One request's metrics: bytes in and out, and per API the requests answered and their
/// latency from the frame read to the response written.
struct RequestMetrics<'a> {
    metrics: &'a Metrics,
    api: Option<&'a ApiMetrics>,
    started: Instant,
}

impl<'a> RequestMetrics<'a> {
    fn start(metrics: &'a Metrics, frame: &RequestFrame) -> RequestMetrics<'a> {
        metrics.received(4 + frame.bytes.len());
        RequestMetrics {
            metrics,
            api: metrics.api(frame.header.api_key),
            started: Instant::now(),
        }
    }

    /// The request is answered with `chunks` (counted before the write: a client holding its
    /// response must find it counted).
    fn answered(&self, chunks: &[Bytes]) {
        self.metrics.sent(chunks.iter().map(Bytes::len).sum());
        if let Some(m) = self.api {
            m.request_answered();
        }
    }

    /// The request needed no response (acks=0 Produce).
    fn answered_silently(&self) {
        if let Some(m) = self.api {
            m.request_answered();
            m.observe_latency(self.started.elapsed());
        }
    }

    fn written(&self) {
        if let Some(m) = self.api {
            m.observe_latency(self.started.elapsed());
        }
    }
}

/// Serves a client of `listener`: on a TLS listener, after the handshake (bounded by
/// `ssl.handshake.timeout.ms`; a client that does not open with a TLS record is closed at
/// once), as the principal its certificate names.
pub async fn serve(
    broker: Arc<Broker>,
    listener: Arc<Listener>,
    stream: TcpStream,
    peer: SocketAddr,
) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "set_nodelay");
    }
    let Some(tls) = &listener.tls else {
        let connection = Connection::of(&broker, stream, peer);
        serve_connection(broker, listener, connection, Principal::anonymous()).await;
        return;
    };
    let timeout = Duration::from_millis(broker.config.ssl_handshake_timeout_ms);
    let handshake = async {
        // A TLS client opens with a handshake record (0x16); a Kafka request's first byte is
        // its size's high byte (0 for anything under 16 MiB).
        let mut first = [0u8; 1];
        match stream.peek(&mut first).await {
            Ok(0) => return Err("closed before the TLS handshake".to_string()),
            Ok(_) if first[0] != TLS_HANDSHAKE_RECORD => {
                discard_received(&stream);
                return Err(format!(
                    "not a TLS handshake (first byte {:#04x}): a client without TLS on the {} listener {}?",
                    first[0],
                    listener.protocol.name(),
                    listener.name
                ));
            }
            Ok(_) => {}
            Err(e) => return Err(format!("reading the TLS handshake: {e}")),
        }
        tls.acceptor()
            .accept(stream)
            .await
            .map_err(|e| format!("TLS handshake failed: {e}"))
    };
    let outcome = tokio::select! {
        _ = broker.shutdown.cancelled() => return,
        outcome = tokio::time::timeout(timeout, handshake) => outcome.unwrap_or_else(|_| {
            Err("TLS handshake not completed within ssl.handshake.timeout.ms".to_string())
        }),
    };
    let stream = match outcome {
        Ok(stream) => stream,
        Err(why) => {
            broker.metrics.tls_handshake_failed(&listener.name);
            tracing::info!(%peer, listener = %listener.name, reason = %why, "closing connection");
            return;
        }
    };
    // Kafka closes a connection whose certificate maps to no principal.
    let principal = match tls.principal(stream.get_ref().1) {
        Ok(principal) => principal,
        Err(why) => {
            tracing::warn!(%peer, listener = %listener.name, reason = %why, "closing connection: no principal for the client certificate");
            return;
        }
    };
    tracing::debug!(%peer, listener = %listener.name, user = %principal.user, "TLS session established");
    let connection = Connection::of(&broker, stream, peer);
    serve_connection(broker, listener, connection, principal).await;
}

/// Reads and drops what the client has sent so far (up to 64 KiB), so that closing the
/// connection is an orderly FIN rather than a reset: librdkafka then tells its user it may be
/// talking plaintext to a TLS listener.
fn discard_received(stream: &TcpStream) {
    let mut buf = [0u8; 4096];
    for _ in 0..16 {
        match stream.try_read(&mut buf) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
}

/// The first byte of a TLS handshake record (RFC 8446 `ContentType.handshake`).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Answers a connection's requests until it ends; `principal` is the client until SASL (on a
/// SASL listener) says otherwise.
pub async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin>(
    broker: Arc<Broker>,
    listener: Arc<Listener>,
    mut connection: Connection<S>,
    principal: Principal,
) {
    let peer = connection.peer;
    tracing::debug!(%peer, listener = %listener.name, "connection opened");
    let max_frame = ReadLimits::of(&broker).max_frame;
    let mut authenticator = Authenticator::new(&listener, principal);
    // A client on a SASL listener has sasl.authentication.timeout.ms to authenticate.
    let authenticate_by = tokio::time::Instant::now()
        + Duration::from_millis(broker.config.sasl_authentication_timeout_ms);
    let mut mute = Duration::ZERO;
    loop {
        if !mute.is_zero() {
            tokio::select! {
                _ = broker.shutdown.cancelled() => break,
                _ = tokio::time::sleep(mute) => {}
            }
        }
        connection.set_max_frame(authenticator.max_frame(&broker, max_frame));
        // Until it has authenticated, a client's reads end at its deadline.
        let deadline = authenticator
            .principal()
            .is_none()
            .then_some(authenticate_by);
        if authenticator.expects_raw_token() {
            let Some(read) = by_deadline(deadline, peer, connection.read_token()).await else {
                break;
            };
            let token = match read {
                Ok(Some(token)) => token,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "closing connection");
                    break;
                }
            };
            match authenticator.on_raw_token(&broker, &token, Instant::now()) {
                Ok(reply) => {
                    if let Err(e) = connection.write_response(&[reply]).await {
                        tracing::debug!(%peer, error = %e, "write failed");
                        break;
                    }
                    continue;
                }
                Err(why) => {
                    hold_after_failed_login(&broker, peer, &why).await;
                    break;
                }
            }
        }
        let Some(read) = by_deadline(deadline, peer, connection.read_frame()).await else {
            break;
        };
        let frame = match read {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(e @ ConnectionError::Read(_)) => {
                tracing::debug!(%peer, error = %e, "closing connection");
                break;
            }
            Err(e) => {
                tracing::warn!(%peer, error = %e, "closing connection");
                break;
            }
        };
        let metrics = RequestMetrics::start(&broker.metrics, &frame);
        let (reply, close_after) =
            match authenticator.on_request(&broker, frame.header, &frame.bytes, Instant::now()) {
                Verdict::Serve => {
                    let principal = authenticator
                        .principal()
                        .cloned()
                        .unwrap_or_else(Principal::anonymous);
                    let (reply, throttle) =
                        api::answer(&broker, frame.bytes.clone(), peer, &principal, &listener)
                            .await;
                    mute = throttle;
                    (reply, None)
                }
                Verdict::Reply(bytes) => (Reply::Frame(bytes), None),
                Verdict::ReplyAndClose(bytes, why) => (Reply::Frame(bytes), Some(why)),
                Verdict::Close(why) => (Reply::Close(why), None),
            };
        let chunks = match reply {
            Reply::Frame(bytes) => vec![bytes],
            Reply::Chunks(chunks) => chunks,
            Reply::Nothing => {
                metrics.answered_silently();
                continue;
            }
            Reply::Close(why) => {
                tracing::warn!(%peer, reason = %why, "closing connection");
                break;
            }
        };
        metrics.answered(&chunks);
        if let Err(e) = connection.write_response(&chunks).await {
            tracing::debug!(%peer, error = %e, "write failed");
            break;
        }
        metrics.written();
        // The request's memory goes back once it is answered.
        drop(frame);
        if let Some(why) = close_after {
            hold_after_failed_login(&broker, peer, &why).await;
            break;
        }
    }
    connection.close().await;
    tracing::debug!(%peer, "connection closed");
}

/// `read`, cut off at `deadline` (`None`: no deadline, the client has authenticated); `None`
/// when the deadline passed first.
async fn by_deadline<T>(
    deadline: Option<tokio::time::Instant>,
    peer: SocketAddr,
    read: impl std::future::Future<Output = T>,
) -> Option<T> {
    let Some(deadline) = deadline else {
        return Some(read.await);
    };
    let outcome = tokio::time::timeout_at(deadline, read).await.ok();
    if outcome.is_none() {
        tracing::info!(%peer, "closing connection: not authenticated within sasl.authentication.timeout.ms");
    }
    outcome
}

/// Logs why a login failed and holds the connection (unread) for
/// `connection.failed.authentication.delay.ms`, longer for an address that keeps failing, so a
/// failed client does not get to try again at once.
async fn hold_after_failed_login(broker: &Broker, peer: SocketAddr, why: &str) {
    tracing::info!(%peer, reason = %why, "closing connection");
    let hold = broker.failed_logins.failed(peer.ip(), Instant::now());
    tokio::select! {
        _ = broker.shutdown.cancelled() => {}
        _ = tokio::time::sleep(hold) => {}
    }
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

    fn connection(
        stream: tokio::io::DuplexStream,
        max_frame: usize,
    ) -> Connection<tokio::io::DuplexStream> {
        Connection::new(
            stream,
            SocketAddr::from(([127, 0, 0, 1], 9)),
            ReadLimits {
                idle: Duration::from_secs(10),
                frame_deadline: Duration::from_secs(10),
                max_frame,
            },
            RequestMemory::new(None),
            CancellationToken::new(),
        )
    }

    #[tokio::test]
    async fn read_frame_returns_each_frame_with_its_header_then_none_at_a_clean_end() {
        let (mut client, server) = tokio::io::duplex(1024);
        let mut conn = connection(server, 1000);
        // ApiVersions v3, correlation id 7, client id "c".
        let body = [0u8, 18, 0, 3, 0, 0, 0, 7, 0, 1, b'c', 0];
        let mut frame = (body.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        client.write_all(&frame).await.unwrap();
        client.write_all(&frame).await.unwrap();
        drop(client);
        for _ in 0..2 {
            let read = conn.read_frame().await.unwrap().expect("a frame");
            assert_eq!(
                read.header,
                HeaderPrefix {
                    api_key: 18,
                    api_version: 3,
                    correlation_id: 7
                }
            );
            assert_eq!(&read.bytes[..], &body[..]);
        }
        assert!(conn.read_frame().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn read_frame_refuses_an_oversized_frame_and_a_cut_one() {
        let (mut client, server) = tokio::io::duplex(1024);
        let mut conn = connection(server, 100);
        client.write_all(&101i32.to_be_bytes()).await.unwrap();
        assert!(matches!(
            conn.read_frame().await,
            Err(ConnectionError::BadSize(FrameError::TooLarge {
                size: 101,
                max: 100
            }))
        ));
        let (mut client, server) = tokio::io::duplex(1024);
        let mut conn = connection(server, 100);
        client.write_all(&50i32.to_be_bytes()).await.unwrap();
        client.write_all(&[0; 20]).await.unwrap();
        drop(client);
        assert!(matches!(
            conn.read_frame().await,
            Err(ConnectionError::Incomplete { expected: 50, .. })
        ));
    }

    #[tokio::test]
    async fn read_frame_ends_quietly_on_shutdown_and_on_idling() {
        let (_client, server) = tokio::io::duplex(1024);
        let mut conn = connection(server, 100);
        conn.shutdown.cancel();
        assert!(conn.read_frame().await.unwrap().is_none());
        let (_client, server) = tokio::io::duplex(1024);
        let mut conn = connection(server, 100);
        conn.limits.idle = Duration::from_millis(10);
        assert!(conn.read_frame().await.unwrap().is_none());
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
