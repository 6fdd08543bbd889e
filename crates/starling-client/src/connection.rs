//! One connection to one broker: TCP, then TLS when configured, the ApiVersions handshake,
//! the SASL login when configured (see [`crate::sasl`]), version negotiation and
//! request/response framing.
//!
//! A Kafka request on the wire is `size: i32` followed by a request header and the body; the
//! response is `size: i32`, a response header (carrying the request's correlation id) and the
//! body. Header versions depend on the API and its version (flexible versions use the tagged
//! header v2/v1), except that ApiVersions responses always use header v0 so that a client can
//! read them before knowing anything about the broker.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use kafka_protocol::ResponseError;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::error::{Error, Result};
use crate::sasl::{self, SaslCredentials};

/// Responses larger than this are treated as a corrupt stream rather than allocated.
const MAX_RESPONSE_SIZE: i32 = 256 * 1024 * 1024;

/// The ApiVersions version tried first; brokers that do not know it answer UNSUPPORTED_VERSION
/// in a v0 body, and the handshake falls back to v0.
const API_VERSIONS_FIRST: i16 = 3;

/// Timeouts, identity and security of a connection.
#[derive(Debug, Clone)]
pub struct Options {
    /// Limit for the TCP connect plus the TLS, ApiVersions and SASL handshakes.
    pub connect_timeout: Duration,
    /// Limit for each request/response round trip.
    pub request_timeout: Duration,
    /// `client.id` sent in every request header.
    pub client_id: String,
    /// Speak TLS with this configuration (security.protocol SSL or SASL_SSL). The server name
    /// checked is the host part of the address connected to.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Log in with these credentials (security.protocol SASL_PLAINTEXT or SASL_SSL).
    pub sasl: Option<SaslCredentials>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            client_id: "starling-cli".to_string(),
            tls: None,
            sasl: None,
        }
    }
}

/// The byte stream under a connection: TCP, or TLS over TCP.
#[derive(Debug)]
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// What went wrong in a TLS handshake, in the words a user needs.
fn tls_failure(error: &std::io::Error) -> String {
    use rustls::{CertificateError, Error as TlsError};
    let Some(tls) = error.get_ref().and_then(|e| e.downcast_ref::<TlsError>()) else {
        return match error.kind() {
            std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset => {
                format!("the broker closed the connection during the TLS handshake ({error}): is this a TLS listener?")
            }
            _ => format!("TLS handshake: {error}"),
        };
    };
    match tls {
        TlsError::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "the broker's certificate is not signed by a trusted CA (set ssl.ca.location)"
                .to_string()
        }
        TlsError::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => "the broker's certificate does not name the host connected to".to_string(),
        TlsError::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => "the broker's certificate has expired".to_string(),
        TlsError::AlertReceived(
            rustls::AlertDescription::CertificateRequired
            | rustls::AlertDescription::BadCertificate
            | rustls::AlertDescription::CertificateExpired
            | rustls::AlertDescription::UnknownCA,
        ) => format!(
            "the broker refused the client certificate ({tls}): set ssl.certificate.location \
             and ssl.key.location to one it trusts"
        ),
        TlsError::InvalidMessage(_) | TlsError::InappropriateMessage { .. } => {
            format!("TLS handshake: {tls}: is this a TLS listener?")
        }
        other => format!("TLS handshake: {other}"),
    }
}

/// The name a TLS server certificate must carry for `addr` (`host:port`, `[v6]:port`).
pub fn server_name(addr: &str) -> Result<ServerName<'static>> {
    let host = match addr.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => host,
        _ => addr,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string()).map_err(|e| Error::Tls {
        addr: addr.to_string(),
        message: format!("{host:?} is not a host name TLS can check: {e}"),
    })
}

/// A connection to one broker, with the API version ranges it announced.
#[derive(Debug)]
pub struct Connection {
    addr: String,
    stream: Stream,
    options: Options,
    next_correlation: i32,
    /// api key -> (min, max) from the broker's ApiVersions response.
    broker_versions: BTreeMap<i16, (i16, i16)>,
    /// The ApiVersions version the handshake ended up using (3, or 0 after a fallback).
    api_versions_version: i16,
    /// Set when a call failed half-way: the stream may hold a partial frame.
    broken: bool,
    /// When to log in again, for a SASL session the broker gave a lifetime (KIP-368).
    reauthenticate_at: Option<Instant>,
}

impl Connection {
    /// Connects to `addr` (`host:port`), speaks TLS and logs in with SASL when the options say
    /// so and performs the ApiVersions handshake, all within `options.connect_timeout`.
    pub async fn connect(addr: &str, options: &Options) -> Result<Connection> {
        let timeout = options.connect_timeout;
        let fut = async {
            let stream = TcpStream::connect(addr)
                .await
                .map_err(|source| Error::Connect {
                    addr: addr.to_string(),
                    source,
                })?;
            let _ = stream.set_nodelay(true);
            let stream = match &options.tls {
                None => Stream::Plain(stream),
                Some(config) => {
                    let name = server_name(addr)?;
                    let tls = TlsConnector::from(config.clone())
                        .connect(name, stream)
                        .await
                        .map_err(|e| Error::Tls {
                            addr: addr.to_string(),
                            message: tls_failure(&e),
                        })?;
                    Stream::Tls(Box::new(tls))
                }
            };
            let mut conn = Connection {
                addr: addr.to_string(),
                stream,
                options: options.clone(),
                next_correlation: 1,
                broker_versions: BTreeMap::new(),
                api_versions_version: API_VERSIONS_FIRST,
                broken: false,
                reauthenticate_at: None,
            };
            let handshakes = async {
                conn.handshake().await?;
                conn.authenticate().await
            };
            match handshakes.await {
                Ok(()) => Ok(conn),
                // TLS 1.3 servers judge the client certificate after the handshake: their
                // refusal arrives as an alert on the first read.
                Err(Error::Io { source, .. })
                    if source.get_ref().is_some_and(|e| e.is::<rustls::Error>()) =>
                {
                    Err(Error::Tls {
                        addr: addr.to_string(),
                        message: tls_failure(&source),
                    })
                }
                // A broker that accepts connections but never answers is a failed connect.
                Err(Error::Timeout { timeout, .. }) => Err(Error::ConnectTimeout {
                    addr: addr.to_string(),
                    timeout,
                }),
                Err(e) => Err(e),
            }
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(result) => result,
            Err(_) => Err(Error::ConnectTimeout {
                addr: addr.to_string(),
                timeout,
            }),
        }
    }

    /// The address this connection was opened to, as given.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// True after a call failed half-way; such a connection refuses further calls.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// The ApiVersions version used for the handshake.
    pub fn api_versions_version(&self) -> i16 {
        self.api_versions_version
    }

    /// The version range the broker announced for `api`, if it announced the API at all.
    pub fn broker_versions(&self, api: ApiKey) -> Option<RangeInclusive<i16>> {
        self.broker_versions
            .get(&(api as i16))
            .map(|&(min, max)| min..=max)
    }

    /// The highest version of `api` that both the broker and `ours` (intersected with what the
    /// `kafka-protocol` crate can encode) support.
    pub fn version_for(&self, api: ApiKey, ours: RangeInclusive<i16>) -> Result<i16> {
        let (broker_min, broker_max) =
            *self
                .broker_versions
                .get(&(api as i16))
                .ok_or_else(|| Error::UnsupportedApi {
                    api,
                    addr: self.addr.clone(),
                })?;
        pick_version(api, &self.addr, broker_min..=broker_max, ours)
    }

    /// Sends `request` at `version` and returns the decoded response.
    ///
    /// The request header is encoded at `ApiKey::request_header_version(version)` with the
    /// connection's client id; the response header is checked for the request's correlation id.
    /// The whole round trip is bounded by the request timeout; after a failure half-way the
    /// connection refuses further calls. A SASL session near the end of its lifetime is
    /// renewed first.
    pub async fn send<R: Request>(&mut self, version: i16, request: &R) -> Result<R::Response> {
        if self
            .reauthenticate_at
            .is_some_and(|at| Instant::now() >= at)
        {
            self.authenticate().await?;
        }
        self.send_unchecked(version, request).await
    }

    /// Logs in with the options' SASL credentials, if any, and notes when to log in again:
    /// at 85% of the session lifetime, as Kafka's Java client does at the earliest.
    async fn authenticate(&mut self) -> Result<()> {
        let Some(credentials) = self.options.sasl.clone() else {
            return Ok(());
        };
        let started = Instant::now();
        let lifetime = sasl::authenticate(self, &credentials).await?;
        self.reauthenticate_at = lifetime.map(|lifetime| started + lifetime.mul_f64(0.85));
        Ok(())
    }

    /// [`Connection::send`] without the re-authentication check (for the login itself).
    pub(crate) async fn send_unchecked<R: Request>(
        &mut self,
        version: i16,
        request: &R,
    ) -> Result<R::Response> {
        let api = ApiKey::try_from(R::KEY).map_err(|_| {
            Error::Invalid(format!("api key {} is unknown to kafka-protocol", R::KEY))
        })?;
        let mut body = self.round_trip(api, version, request).await?;
        let response = R::Response::decode(&mut body, version).map_err(|e| Error::Decode {
            api,
            version,
            addr: self.addr.clone(),
            message: e.to_string(),
        })?;
        if body.has_remaining() {
            return Err(Error::Decode {
                api,
                version,
                addr: self.addr.clone(),
                message: format!("{} bytes left after the response body", body.remaining()),
            });
        }
        Ok(response)
    }

    /// ApiVersions v3, falling back to v0 if the broker answers UNSUPPORTED_VERSION (its
    /// answer to a version it does not know is a v0 body with that error code).
    async fn handshake(&mut self) -> Result<()> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("starling-cli"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let mut version = API_VERSIONS_FIRST;
        let mut body = self
            .round_trip(ApiKey::ApiVersions, version, &request)
            .await?;
        if body.len() >= 2
            && i16::from_be_bytes([body[0], body[1]]) == ResponseError::UnsupportedVersion.code()
        {
            tracing::debug!(addr = %self.addr, "ApiVersions v{version} unsupported; retrying with v0");
            version = 0;
            body = self
                .round_trip(ApiKey::ApiVersions, version, &ApiVersionsRequest::default())
                .await?;
        }
        let response =
            ApiVersionsResponse::decode(&mut body, version).map_err(|e| Error::Decode {
                api: ApiKey::ApiVersions,
                version,
                addr: self.addr.clone(),
                message: e.to_string(),
            })?;
        if let Some(error) = ResponseError::try_from_code(response.error_code) {
            return Err(Error::kafka(
                format!("ApiVersions v{version} to {}", self.addr),
                error,
            ));
        }
        self.api_versions_version = version;
        self.broker_versions = response
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        Ok(())
    }

    /// Frames and sends one request, reads its response frame and returns the body after the
    /// response header.
    async fn round_trip<R: Encodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        request: &R,
    ) -> Result<Bytes> {
        if self.broken {
            return Err(Error::Broken {
                api,
                version,
                addr: self.addr.clone(),
            });
        }
        let correlation_id = self.next_correlation;
        self.next_correlation = self.next_correlation.wrapping_add(1).max(1);
        let frame = encode_request(
            api,
            version,
            correlation_id,
            &self.options.client_id,
            request,
        )?;

        let timeout = self.options.request_timeout;
        // Marked broken until the exchange completes: a timeout or I/O error can leave half a
        // frame in either direction.
        self.broken = true;
        let exchange = async {
            self.stream.write_all(&frame).await?;
            self.stream.flush().await?;
            let size = self.stream.read_i32().await?;
            if !(0..=MAX_RESPONSE_SIZE).contains(&size) {
                return Ok(Err(format!("response frame size {size}")));
            }
            let mut buf = vec![0u8; size as usize];
            self.stream.read_exact(&mut buf).await?;
            Ok::<_, std::io::Error>(Ok(Bytes::from(buf)))
        };
        let mut frame = match tokio::time::timeout(timeout, exchange).await {
            Err(_) => {
                return Err(Error::Timeout {
                    api,
                    version,
                    addr: self.addr.clone(),
                    timeout,
                })
            }
            Ok(Err(source)) => {
                return Err(Error::Io {
                    api,
                    version,
                    addr: self.addr.clone(),
                    source,
                })
            }
            Ok(Ok(Err(message))) => {
                return Err(Error::Decode {
                    api,
                    version,
                    addr: self.addr.clone(),
                    message,
                })
            }
            Ok(Ok(Ok(frame))) => frame,
        };

        let header_version = api.response_header_version(version);
        let header =
            ResponseHeader::decode(&mut frame, header_version).map_err(|e| Error::Decode {
                api,
                version,
                addr: self.addr.clone(),
                message: format!("response header v{header_version}: {e}"),
            })?;
        if header.correlation_id != correlation_id {
            return Err(Error::CorrelationMismatch {
                api,
                version,
                addr: self.addr.clone(),
                expected: correlation_id,
                got: header.correlation_id,
            });
        }
        self.broken = false;
        Ok(frame)
    }
}

/// `size ++ header ++ body` for one request.
pub(crate) fn encode_request<R: Encodable>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: &str,
    request: &R,
) -> Result<BytesMut> {
    let encode_error = |what: &str, e: String| Error::Encode {
        api,
        version,
        message: format!("{what}: {e}"),
    };
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_string(client_id.to_string())));
    let mut buf = BytesMut::with_capacity(256);
    buf.extend_from_slice(&[0, 0, 0, 0]);
    header
        .encode(&mut buf, api.request_header_version(version))
        .map_err(|e| encode_error("header", e.to_string()))?;
    request
        .encode(&mut buf, version)
        .map_err(|e| encode_error("body", e.to_string()))?;
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf)
}

/// Highest version in `broker ∩ ours ∩ crate-supported`.
pub(crate) fn pick_version(
    api: ApiKey,
    addr: &str,
    broker: RangeInclusive<i16>,
    ours: RangeInclusive<i16>,
) -> Result<i16> {
    let crate_range = api.valid_versions();
    let ours_min = (*ours.start()).max(crate_range.min);
    let ours_max = (*ours.end()).min(crate_range.max);
    let min = ours_min.max(*broker.start());
    let max = ours_max.min(*broker.end());
    if min > max {
        return Err(Error::NoCommonVersion {
            api,
            addr: addr.to_string(),
            broker_min: *broker.start(),
            broker_max: *broker.end(),
            ours_min,
            ours_max,
        });
    }
    Ok(max)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use kafka_protocol::messages::list_groups_response::ListedGroup;
    use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

    use super::*;
    use crate::fake_broker::{api_versions, decode_body, respond, respond_at, FakeBroker, Seen};

    const LIST_GROUPS: i16 = ApiKey::ListGroups as i16;
    const API_VERSIONS: i16 = ApiKey::ApiVersions as i16;

    fn opts(timeout_ms: u64) -> Options {
        Options {
            connect_timeout: Duration::from_millis(timeout_ms),
            request_timeout: Duration::from_millis(timeout_ms),
            ..Options::default()
        }
    }

    fn standard_versions() -> ApiVersionsResponse {
        api_versions(&[
            (ApiKey::ApiVersions, 0, 3),
            (ApiKey::Metadata, 0, 9),
            (ApiKey::ListGroups, 0, 3),
        ])
    }

    fn group_list(names: &[&str]) -> ListGroupsResponse {
        ListGroupsResponse::default().with_groups(
            names
                .iter()
                .map(|n| {
                    ListedGroup::default()
                        .with_group_id(GroupId(StrBytes::from_string(n.to_string())))
                        .with_protocol_type(StrBytes::from_static_str("consumer"))
                })
                .collect(),
        )
    }

    #[tokio::test]
    async fn handshake_sends_api_versions_v3_and_requests_are_framed_with_flexible_headers() {
        let fake = FakeBroker::start(Arc::new(|s: &Seen| match s.header.request_api_key {
            API_VERSIONS => Some(respond(s, &standard_versions())),
            LIST_GROUPS => Some(respond(s, &group_list(&["g1", "g2"]))),
            _ => None,
        }))
        .await;
        let mut conn = Connection::connect(&fake.addr, &opts(5000)).await.unwrap();
        assert_eq!(conn.api_versions_version(), 3);
        assert_eq!(conn.broker_versions(ApiKey::Metadata), Some(0..=9));

        // ListGroups v3 is flexible: request header v2, response header v1.
        let v = conn.version_for(ApiKey::ListGroups, 0..=5).unwrap();
        assert_eq!(v, 3);
        let resp = conn.send(v, &ListGroupsRequest::default()).await.unwrap();
        let names: Vec<&str> = resp.groups.iter().map(|g| g.group_id.0.as_str()).collect();
        assert_eq!(names, ["g1", "g2"]);

        let seen = fake.seen();
        assert_eq!(seen.len(), 2);
        let hello = &seen[0];
        assert_eq!(hello.header.request_api_key, API_VERSIONS);
        assert_eq!(hello.header.request_api_version, 3);
        assert_eq!(
            hello
                .header
                .client_id
                .as_ref()
                .map(|s| s.to_string())
                .as_deref(),
            Some("starling-cli")
        );
        let req: ApiVersionsRequest = decode_body(hello);
        assert_eq!(req.client_software_name.as_str(), "starling-cli");
        assert_eq!(
            req.client_software_version.as_str(),
            env!("CARGO_PKG_VERSION")
        );
        let call = &seen[1];
        assert_eq!(call.header.request_api_key, LIST_GROUPS);
        assert_eq!(call.header.request_api_version, 3);
        assert_ne!(call.header.correlation_id, hello.header.correlation_id);
        let _: ListGroupsRequest = decode_body(call);
    }

    #[tokio::test]
    async fn handshake_falls_back_to_api_versions_v0_on_unsupported_version() {
        let fake = FakeBroker::start(Arc::new(|s: &Seen| {
            if s.header.request_api_key != API_VERSIONS {
                return None;
            }
            if s.header.request_api_version > 0 {
                // What a broker that does not know v3 sends: a v0 body with error 35.
                let mut r = api_versions(&[(ApiKey::ApiVersions, 0, 2)]);
                r.error_code = ResponseError::UnsupportedVersion.code();
                Some(respond_at(s, 0, &r))
            } else {
                Some(respond(
                    s,
                    &api_versions(&[(ApiKey::ApiVersions, 0, 2), (ApiKey::ListGroups, 0, 2)]),
                ))
            }
        }))
        .await;
        let conn = Connection::connect(&fake.addr, &opts(5000)).await.unwrap();
        assert_eq!(conn.api_versions_version(), 0);
        assert_eq!(conn.version_for(ApiKey::ListGroups, 0..=5).unwrap(), 2);
        let versions: Vec<i16> = fake
            .seen()
            .iter()
            .map(|s| s.header.request_api_version)
            .collect();
        assert_eq!(versions, [3, 0]);
    }

    #[tokio::test]
    async fn api_versions_error_other_than_unsupported_version_is_reported() {
        let fake = FakeBroker::start(Arc::new(|s: &Seen| {
            let mut r = standard_versions();
            r.error_code = ResponseError::ClusterAuthorizationFailed.code();
            Some(respond(s, &r))
        }))
        .await;
        let e = Connection::connect(&fake.addr, &opts(5000))
            .await
            .unwrap_err();
        assert_eq!(
            e.kafka_error(),
            Some(ResponseError::ClusterAuthorizationFailed)
        );
        assert!(
            e.to_string().contains("CLUSTER_AUTHORIZATION_FAILED"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_response_with_another_correlation_id_is_refused_and_breaks_the_connection() {
        let fake = FakeBroker::start(Arc::new(|s: &Seen| match s.header.request_api_key {
            API_VERSIONS => Some(respond(s, &standard_versions())),
            _ => {
                let mut wrong = s.clone();
                wrong.header.correlation_id += 1000;
                Some(respond(&wrong, &group_list(&[])))
            }
        }))
        .await;
        let mut conn = Connection::connect(&fake.addr, &opts(5000)).await.unwrap();
        let e = conn
            .send(3, &ListGroupsRequest::default())
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::CorrelationMismatch {
                    api: ApiKey::ListGroups,
                    version: 3,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(conn.is_broken());
        let e = conn
            .send(3, &ListGroupsRequest::default())
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Broken { .. }), "{e:?}");
    }

    #[tokio::test]
    async fn trailing_bytes_after_a_response_body_are_an_error() {
        let fake = FakeBroker::start(Arc::new(|s: &Seen| match s.header.request_api_key {
            API_VERSIONS => Some(respond(s, &standard_versions())),
            _ => {
                let mut r = respond(s, &group_list(&["g"]));
                r.extend_from_slice(&[0, 0, 0]);
                Some(r)
            }
        }))
        .await;
        let mut conn = Connection::connect(&fake.addr, &opts(5000)).await.unwrap();
        let e = conn
            .send(1, &ListGroupsRequest::default())
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Decode { .. }), "{e:?}");
        assert!(e.to_string().contains("3 bytes left"), "{e}");
    }

    #[tokio::test]
    async fn a_silent_broker_times_out_the_call() {
        let fake = FakeBroker::start(Arc::new(|s: &Seen| match s.header.request_api_key {
            API_VERSIONS => Some(respond(s, &standard_versions())),
            _ => None,
        }))
        .await;
        let mut conn = Connection::connect(&fake.addr, &opts(300)).await.unwrap();
        let started = std::time::Instant::now();
        let e = conn
            .send(3, &ListGroupsRequest::default())
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
        assert!(started.elapsed() < Duration::from_secs(3));
        assert!(e.to_string().contains("ListGroups v3"), "{e}");
    }

    #[tokio::test]
    async fn a_broker_that_never_answers_api_versions_times_out_the_connect() {
        let fake = FakeBroker::start(Arc::new(|_: &Seen| None)).await;
        let e = Connection::connect(&fake.addr, &opts(300))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::ConnectTimeout { .. }), "{e:?}");
    }

    #[tokio::test]
    async fn connecting_to_a_closed_port_is_a_connect_error() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let addr = format!("127.0.0.1:{port}");
        let e = Connection::connect(&addr, &opts(2000)).await.unwrap_err();
        assert!(matches!(e, Error::Connect { .. }), "{e:?}");
        assert!(e.to_string().contains(&addr), "{e}");
    }

    #[test]
    fn version_selection_takes_the_highest_common_version() {
        let a = "b:1";
        assert_eq!(
            pick_version(ApiKey::ListGroups, a, 0..=4, 0..=5).unwrap(),
            4
        );
        assert_eq!(
            pick_version(ApiKey::ListGroups, a, 2..=9, 0..=3).unwrap(),
            3
        );
        // The crate cannot encode OffsetFetch v0, so a broker offering only v0 has no match.
        let e = pick_version(ApiKey::OffsetFetch, a, 0..=0, 0..=9).unwrap_err();
        assert!(matches!(e, Error::NoCommonVersion { .. }), "{e:?}");
        let e = pick_version(ApiKey::ListGroups, a, 4..=5, 0..=3).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("ListGroups v4-v5") && msg.contains("v0-v3"),
            "{msg}"
        );
    }

    #[test]
    fn encoded_requests_carry_their_size_and_header() {
        let frame = encode_request(
            ApiKey::ListGroups,
            0,
            42,
            "starling-cli",
            &ListGroupsRequest::default(),
        )
        .unwrap();
        let size = i32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
        assert_eq!(size, frame.len() - 4);
        let mut rest = Bytes::copy_from_slice(&frame[4..]);
        let header = RequestHeader::decode(&mut rest, 1).unwrap();
        assert_eq!(header.request_api_key, ApiKey::ListGroups as i16);
        assert_eq!(header.correlation_id, 42);
        // ListGroups v0 has an empty body.
        assert_eq!(rest.len(), 0);
    }

    #[test]
    fn a_field_the_version_lacks_is_refused_at_encoding() {
        let mut req = ListGroupsRequest::default();
        req.states_filter = vec![StrBytes::from_static_str("Stable")];
        let e = encode_request(ApiKey::ListGroups, 3, 1, "x", &req).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Encode {
                    api: ApiKey::ListGroups,
                    version: 3,
                    ..
                }
            ),
            "{e:?}"
        );
    }
}
