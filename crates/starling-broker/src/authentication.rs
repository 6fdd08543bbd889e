//! SASL authentication of one connection (KIP-43, KIP-152), in front of the API handlers.
//!
//! On a `SASL_PLAINTEXT` or `SASL_SSL` listener a client must authenticate before anything but ApiVersions:
//! SaslHandshake (v1) names a mechanism from the listener's `sasl.enabled.mechanisms`, then SaslAuthenticate
//! requests carry the mechanism's messages ([`crate::sasl`]: PLAIN against
//! `sasl.plain.users.file`, SCRAM-SHA-256/512 against the stored credentials) until the
//! exchange completes; the connection's principal is then the authenticated user. Until then
//! a frame may be at most `sasl.server.max.receive.size`. As Kafka's `SaslServerAuthenticator`:
//! any other request before authentication closes the connection, and so does a failed
//! exchange, after its error (SASL_AUTHENTICATION_FAILED with a message that never says whether
//! the user exists; UNSUPPORTED_SASL_MECHANISM with the enabled mechanisms) has been sent.
//!
//! A SaslHandshake v0 client (librdkafka before 1.x, old Java clients) then sends the
//! mechanism's messages as raw size-prefixed tokens, answered the same way; a failure just
//! closes the connection, as v0 has no way to say why.
//!
//! Re-authentication (KIP-368): with the listener's `connections.max.reauth.ms` > 0 a session
//! expires that long after it began; SaslAuthenticate v1+ says so (`session_lifetime_ms`).
//! Before then the client sends SaslHandshake v1 again on the authenticated connection (at most
//! once a second, as Kafka's `KafkaChannel`), then SaslAuthenticate, with the session's
//! mechanism (another one fails the next SaslAuthenticate) and as the same user (another fails
//! with "Cannot change principals during re-authentication"); a failure closes the connection.
//! Requests between its steps are served as the session's principal. Once the session has
//! expired, any request but a re-authentication closes the connection (Kafka's `SocketServer`
//! does so for "expired" channels), a SaslAuthenticate v0 client's included. The time is passed
//! in (`now`): the authenticator keeps no clock.
//!
//! On a `PLAINTEXT` or `SSL` listener, and after authentication when no re-authentication may
//! begin (`connections.max.reauth.ms` is 0, a v0 handshake, or less than a second since the
//! last one), the SASL requests are answered ILLEGAL_SASL_STATE, as Kafka's `KafkaApis` answers
//! them.
//!
//! [`Authenticator`] holds one connection's state and decides, per request, whether it is a
//! SASL matter ([`Verdict`]); the connection loop does the I/O.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::{
    ApiKey, RequestKind, SaslAuthenticateResponse, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::ResponseError;
use parking_lot::Mutex;
use starling_protocol::request::{self, HeaderPrefix};
use starling_protocol::response;

use crate::api::error_codes::ErrorCodes;
use crate::listeners::Listener;
use crate::quotas::Principal;
use crate::sasl::scram::{ScramMechanism, ScramServer, ScramStep};
use crate::sasl::{SaslErrorKind, SaslFailure};
use crate::Broker;

/// Failed logins per client address, to slow down guessing: each failure holds its
/// connection open (unread) before closing it for `connection.failed.authentication.delay.ms`,
/// doubled for every earlier failure from the same address within a minute, up to 10 s. With
/// `max.connections.per.ip` this bounds how fast one address can try passwords.
pub struct FailedLogins {
    base: Duration,
    by_address: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

/// How long failures from one address are remembered.
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// The longest a failed connection is held before it is closed.
const MAX_FAILURE_DELAY: Duration = Duration::from_secs(10);

impl FailedLogins {
    pub fn new(base: Duration) -> FailedLogins {
        FailedLogins {
            base,
            by_address: Mutex::new(HashMap::new()),
        }
    }

    /// Notes a failed login from `ip` at `now`; returns how long to hold the connection
    /// before closing it.
    pub fn failed(&self, ip: IpAddr, now: Instant) -> Duration {
        let mut by_address = self.by_address.lock();
        if by_address.len() > 10_000 {
            by_address.retain(|_, (_, since)| now.duration_since(*since) < FAILURE_WINDOW);
        }
        let entry = by_address.entry(ip).or_insert((0, now));
        if now.duration_since(entry.1) >= FAILURE_WINDOW {
            *entry = (0, now);
        }
        entry.0 = entry.0.saturating_add(1);
        let doublings = (entry.0 - 1).min(16);
        self.base
            .saturating_mul(1u32 << doublings)
            .min(MAX_FAILURE_DELAY)
    }
}

/// What the connection does with a request, as far as authentication goes.
#[derive(Debug)]
pub enum Verdict {
    /// Not a SASL matter: answer it as usual.
    Serve,
    /// A SASL request, answered with this frame.
    Reply(Bytes),
    /// Send this frame, then close the connection: the exchange failed.
    ReplyAndClose(Bytes, String),
    /// Close the connection unanswered.
    Close(String),
}

impl Verdict {
    /// This reply, with the connection closed after it (`why` logged).
    fn then_close(self, why: String) -> Verdict {
        match self {
            Verdict::Reply(frame) => Verdict::ReplyAndClose(frame, why),
            other => other,
        }
    }
}

/// A mechanism's exchange in progress.
enum Exchange {
    Plain,
    Scram(Box<ScramServer>),
}

impl Exchange {
    fn name(&self) -> &'static str {
        match self {
            Exchange::Plain => "PLAIN",
            Exchange::Scram(server) => server.mechanism().name(),
        }
    }
}

enum State {
    /// Waiting for SaslHandshake (ApiVersions may come first).
    Handshake,
    /// After SaslHandshake v1: the mechanism's messages come in SaslAuthenticate requests.
    Authenticating(Exchange),
    /// After SaslHandshake v0: they come as raw size-prefixed tokens.
    RawTokens(Exchange),
    /// A re-authentication asked for another mechanism than the session's: the next
    /// SaslAuthenticate fails with this message (as Kafka's `REAUTH_BAD_MECHANISM`).
    ReauthBadMechanism(String),
    /// Authenticated as this user (or, on a PLAINTEXT listener, the anonymous user).
    Done(Principal),
}

/// A SASL session: who authenticated, how, and until when.
struct Session {
    principal: Principal,
    mechanism: &'static str,
    /// When the session expires (`connections.max.reauth.ms` after it began); `None`: never.
    expires: Option<Instant>,
}

/// Kafka's `KafkaChannel.MIN_REAUTH_INTERVAL_ONE_SECOND_NANOS`: a connection may begin a
/// re-authentication at most once a second; a handshake sooner is answered as after
/// authentication (ILLEGAL_SASL_STATE).
const MIN_REAUTH_INTERVAL: Duration = Duration::from_secs(1);

/// One connection's authentication.
pub struct Authenticator {
    state: State,
    /// The SASL mechanisms the connection's listener offers.
    mechanisms: Vec<String>,
    /// The listener's `connections.max.reauth.ms` per mechanism; zero: sessions do not
    /// expire.
    session_lifetimes_ms: BTreeMap<String, u64>,
    /// The SASL session, once authenticated; during a re-authentication, the one being
    /// renewed (its principal is still the client's).
    session: Option<Session>,
    /// When the last re-authentication began.
    last_reauth: Option<Instant>,
}

impl Authenticator {
    /// The authentication of a connection to `listener`; on a listener without SASL the client
    /// is `principal` from the start (the anonymous user, or on `SSL` its certificate's).
    pub fn new(listener: &Listener, principal: Principal) -> Authenticator {
        let state = if listener.protocol.uses_sasl() {
            State::Handshake
        } else {
            State::Done(principal)
        };
        Authenticator {
            state,
            mechanisms: listener.sasl_mechanisms.clone(),
            session_lifetimes_ms: listener.session_lifetimes_ms.clone(),
            session: None,
            last_reauth: None,
        }
    }

    /// Whether the next frame is a raw SASL token rather than a request (after SaslHandshake
    /// v0).
    pub fn expects_raw_token(&self) -> bool {
        matches!(self.state, State::RawTokens(_))
    }

    /// Takes a raw token at `now`: the size-prefixed token to send back, or why to close (a v0
    /// client cannot be told why).
    pub fn on_raw_token(
        &mut self,
        broker: &Broker,
        token: &[u8],
        now: Instant,
    ) -> Result<Bytes, String> {
        let State::RawTokens(exchange) = &mut self.state else {
            return Err("a raw SASL token outside a SaslHandshake v0 exchange".to_string());
        };
        let mechanism = exchange.name();
        match step(broker, exchange, token) {
            Ok((bytes, user)) => {
                if let Some(user) = user {
                    // A v0 client cannot re-authenticate, but its session still ends (KIP-368).
                    self.complete(broker, user, mechanism, now)
                        .map_err(|failure| failure.detail)?;
                }
                let mut frame = Vec::with_capacity(4 + bytes.len());
                frame.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
                frame.extend_from_slice(&bytes);
                Ok(Bytes::from(frame))
            }
            Err(failure) => Err(format!(
                "SASL {mechanism} authentication failed: {}",
                failure.detail
            )),
        }
    }

    /// Who the client is: `None` until it has authenticated (during a re-authentication, the
    /// principal of the session being renewed).
    pub fn principal(&self) -> Option<&Principal> {
        match &self.state {
            State::Done(principal) => Some(principal),
            _ => self.session.as_ref().map(|s| &s.principal),
        }
    }

    /// When the SASL session expires, if it does.
    pub fn session_expires(&self) -> Option<Instant> {
        self.session.as_ref().and_then(|s| s.expires)
    }

    /// Whether the session has expired at `now`.
    fn expired(&self, now: Instant) -> bool {
        self.session_expires().is_some_and(|at| now >= at)
    }

    /// Whether a re-authentication is under way.
    fn reauthenticating(&self) -> bool {
        self.session.is_some() && !matches!(self.state, State::Done(_))
    }

    /// Whether a SaslHandshake of `version` at `now` begins a re-authentication (Kafka's
    /// `KafkaChannel.maybeBeginServerReauthentication`): the client is authenticated, its
    /// session expires (`connections.max.reauth.ms` > 0), the handshake is v1+ (SaslAuthenticate
    /// requests follow) and the last re-authentication began a second or more ago.
    fn may_reauthenticate(&self, version: i16, now: Instant) -> bool {
        matches!(self.state, State::Done(_))
            && self.session_expires().is_some()
            && version >= 1
            && self
                .last_reauth
                .is_none_or(|at| now.saturating_duration_since(at) >= MIN_REAUTH_INTERVAL)
    }

    /// The exchange has authenticated `user` with `mechanism` at `now`: the session begins (or,
    /// in a re-authentication of the same principal, is renewed). Returns its lifetime in ms
    /// (0: it does not expire).
    fn complete(
        &mut self,
        broker: &Broker,
        user: String,
        mechanism: &'static str,
        now: Instant,
    ) -> Result<i64, SaslFailure> {
        let reauthenticating = self.session.is_some();
        if let Some(previous) = &self.session {
            if previous.principal.user != user {
                broker.metrics.sasl_reauthenticated("failed");
                let message = format!(
                    "Cannot change principals during re-authentication from User:{}: User:{user}",
                    previous.principal.user
                );
                return Err(SaslFailure {
                    kind: SaslErrorKind::AuthenticationFailed,
                    client_message: message.clone(),
                    detail: message,
                });
            }
        }
        let lifetime = Duration::from_millis(
            self.session_lifetimes_ms
                .get(mechanism)
                .copied()
                .unwrap_or(0),
        );
        let expires = (!lifetime.is_zero()).then(|| now + lifetime);
        if reauthenticating {
            broker.metrics.sasl_reauthenticated("succeeded");
            if let Some(began) = self.last_reauth {
                broker
                    .metrics
                    .sasl_reauthentication_took(now.saturating_duration_since(began));
            }
            tracing::debug!(user, mechanism, "re-authenticated");
        } else {
            tracing::debug!(user, mechanism, "authenticated");
        }
        let principal = Principal { user };
        self.session = Some(Session {
            principal: principal.clone(),
            mechanism,
            expires,
        });
        self.state = State::Done(principal);
        Ok(i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX))
    }

    /// The largest frame the client may send now: `max_frame`, or before authentication at
    /// most `sasl.server.max.receive.size`.
    pub fn max_frame(&self, broker: &Broker, max_frame: usize) -> usize {
        match self.principal() {
            Some(_) => max_frame,
            None => max_frame.min(broker.config.sasl_server_max_receive_size),
        }
    }

    /// Decides what to do with a request whose header starts `header`, arrived at `now`.
    pub fn on_request(
        &mut self,
        broker: &Broker,
        header: HeaderPrefix,
        frame: &Bytes,
        now: Instant,
    ) -> Verdict {
        let handshake = header.api_key == ApiKey::SaslHandshake as i16;
        let sasl = handshake || header.api_key == ApiKey::SaslAuthenticate as i16;
        if handshake && self.may_reauthenticate(header.api_version, now) {
            // KIP-368: the handshake begins a re-authentication; the session goes on meanwhile.
            self.last_reauth = Some(now);
            self.state = State::Handshake;
        } else if (!sasl || !self.reauthenticating()) && self.expired(now) {
            // As Kafka's `SocketServer`: anything but the re-authentication closes an expired
            // session's connection.
            broker.metrics.sasl_session_expired();
            return Verdict::Close(format!(
                "expired SASL session (connections.max.reauth.ms), api key {} instead of a re-authentication",
                header.api_key
            ));
        }
        if !sasl {
            return match self.state {
                State::Done(_) => Verdict::Serve,
                // Requests between the steps of a re-authentication are the session's.
                _ if self.reauthenticating() => Verdict::Serve,
                _ if header.api_key == ApiKey::ApiVersions as i16 => Verdict::Serve,
                _ => Verdict::Close(format!(
                    "unexpected request (api key {}) during SASL authentication",
                    header.api_key
                )),
            };
        }
        let decoded = match request::decode(frame.clone()) {
            Ok(decoded) => decoded,
            Err(e) => return Verdict::Close(format!("SASL request: {e}")),
        };
        let version = header.api_version;
        let reply = |api_key: ApiKey, body: &dyn EncodeFor| body.frame(api_key, version, header);
        match (&mut self.state, decoded.body) {
            (State::Done(_), RequestKind::SaslHandshake(_)) => {
                let body = SaslHandshakeResponse::default()
                    .with_error_code(ResponseError::IllegalSaslState.code());
                count(broker, ApiKey::SaslHandshake, version, &body);
                reply(ApiKey::SaslHandshake, &body)
            }
            (State::Done(_), RequestKind::SaslAuthenticate(_)) => {
                let body = SaslAuthenticateResponse::default()
                    .with_error_code(ResponseError::IllegalSaslState.code())
                    .with_error_message(Some(StrBytes::from_static_str(
                        "SaslAuthenticate request received after successful authentication",
                    )));
                count(broker, ApiKey::SaslAuthenticate, version, &body);
                reply(ApiKey::SaslAuthenticate, &body)
            }
            (State::Handshake, RequestKind::SaslHandshake(r)) => {
                let enabled = &self.mechanisms;
                let mechanisms = enabled
                    .iter()
                    .map(|m| StrBytes::from_string(m.clone()))
                    .collect();
                let asked = r.mechanism.as_str();
                let exchange = if !enabled.iter().any(|m| m == asked) {
                    None
                } else if asked == "PLAIN" {
                    Some(Exchange::Plain)
                } else {
                    ScramMechanism::from_name(asked)
                        .map(|m| Exchange::Scram(Box::new(ScramServer::new(m))))
                };
                let mut body = SaslHandshakeResponse::default().with_mechanisms(mechanisms);
                let Some(exchange) = exchange else {
                    body.error_code = ResponseError::UnsupportedSaslMechanism.code();
                    count(broker, ApiKey::SaslHandshake, version, &body);
                    if self.session.is_some() {
                        broker.metrics.sasl_reauthenticated("failed");
                    }
                    return reply(ApiKey::SaslHandshake, &body).then_close(format!(
                        "client asked for SASL mechanism {asked:?}, not enabled"
                    ));
                };
                self.state = match &self.session {
                    // Kafka answers the handshake, then fails the re-authentication.
                    Some(session) if session.mechanism != exchange.name() => {
                        State::ReauthBadMechanism(format!(
                            "SASL mechanism '{asked}' requested by client is not supported for \
                             re-authentication of mechanism '{}'",
                            session.mechanism
                        ))
                    }
                    // v0: raw tokens follow, with no Kafka framing (KIP-152 kept it for old
                    // clients).
                    _ if version == 0 => State::RawTokens(exchange),
                    _ => State::Authenticating(exchange),
                };
                count(broker, ApiKey::SaslHandshake, version, &body);
                reply(ApiKey::SaslHandshake, &body)
            }
            (State::ReauthBadMechanism(message), RequestKind::SaslAuthenticate(_)) => {
                let body = SaslAuthenticateResponse::default()
                    .with_error_code(ResponseError::SaslAuthenticationFailed.code())
                    .with_error_message(Some(StrBytes::from_string(message.clone())));
                count(broker, ApiKey::SaslAuthenticate, version, &body);
                broker.metrics.sasl_reauthenticated("failed");
                let why = format!("SASL re-authentication failed: {message}");
                reply(ApiKey::SaslAuthenticate, &body).then_close(why)
            }
            (State::Authenticating(exchange), RequestKind::SaslAuthenticate(r)) => {
                let mechanism = exchange.name();
                let mut outcome = step(broker, exchange, &r.auth_bytes);
                let mut body = SaslAuthenticateResponse::default();
                let mut user = None;
                if let Ok((bytes, authenticated)) = &mut outcome {
                    body.auth_bytes = Bytes::from(std::mem::take(bytes));
                    user = authenticated.take();
                } else if self.session.is_some() {
                    broker.metrics.sasl_reauthenticated("failed");
                }
                if let Some(user) = user {
                    match self.complete(broker, user, mechanism, now) {
                        // The field exists from v1 (KIP-368); a v0 client is told nothing.
                        Ok(lifetime) if version >= 1 => body.session_lifetime_ms = lifetime,
                        Ok(_) => {}
                        Err(failure) => outcome = Err(failure),
                    }
                }
                match outcome {
                    Ok(_) => {
                        count(broker, ApiKey::SaslAuthenticate, version, &body);
                        reply(ApiKey::SaslAuthenticate, &body)
                    }
                    Err(failure) => {
                        let mut body = SaslAuthenticateResponse::default();
                        body.error_code = failure.error_code();
                        body.error_message = Some(StrBytes::from_string(failure.client_message));
                        count(broker, ApiKey::SaslAuthenticate, version, &body);
                        let why = format!(
                            "SASL {mechanism} {} failed: {}",
                            if self.session.is_some() {
                                "re-authentication"
                            } else {
                                "authentication"
                            },
                            failure.detail
                        );
                        reply(ApiKey::SaslAuthenticate, &body).then_close(why)
                    }
                }
            }
            (State::Handshake, _) => {
                Verdict::Close("SaslAuthenticate before SaslHandshake".to_string())
            }
            (State::Authenticating(_), _) | (State::ReauthBadMechanism(_), _) => {
                Verdict::Close("a second SaslHandshake during SASL authentication".to_string())
            }
            (State::Done(_), _) | (State::RawTokens(_), _) => {
                Verdict::Close("unexpected SASL request".to_string())
            }
        }
    }
}

/// One message of `exchange`: the bytes to send back, and the user once authenticated.
fn step(
    broker: &Broker,
    exchange: &mut Exchange,
    message: &[u8],
) -> Result<(Vec<u8>, Option<String>), SaslFailure> {
    match exchange {
        Exchange::Plain => {
            let users = broker.plain_users.as_ref().ok_or_else(|| {
                SaslFailure::hidden("PLAIN", "no sasl.plain.users.file is configured")
            })?;
            users
                .authenticate(message)
                .map(|user| (Vec::new(), Some(user)))
        }
        Exchange::Scram(server) => {
            let mechanism = server.mechanism();
            let outcome = server.evaluate(message, |user| broker.scram.lookup(user, mechanism));
            match outcome? {
                ScramStep::Challenge(bytes) => Ok((bytes, None)),
                ScramStep::Complete {
                    server_final,
                    authorization_id,
                } => Ok((server_final, Some(authorization_id))),
            }
        }
    }
}

/// Counts a SASL response's error code in the per-API metrics.
fn count<R: ErrorCodes>(broker: &Broker, api_key: ApiKey, version: i16, body: &R) {
    broker.metrics.count_error_codes(api_key, version, body);
}

/// A response body encoded as a frame for the request it answers.
trait EncodeFor {
    fn frame(&self, api_key: ApiKey, version: i16, header: HeaderPrefix) -> Verdict;
}

impl<T: Encodable> EncodeFor for T {
    fn frame(&self, api_key: ApiKey, version: i16, header: HeaderPrefix) -> Verdict {
        match response::encode_frame(api_key, version, header.correlation_id, self) {
            Ok(frame) => Verdict::Reply(frame),
            Err(e) => Verdict::Close(format!("cannot encode {api_key:?} v{version}: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerConfig;
    use crate::server::RunningBroker;
    use bytes::{Buf, BytesMut};
    use kafka_protocol::messages::{
        MetadataRequest, RequestHeader, SaslAuthenticateRequest, SaslHandshakeRequest,
    };
    use kafka_protocol::protocol::{Decodable, HeaderVersion};

    /// A broker with a SASL_PLAINTEXT listener, the PLAIN users `carol` and `dave`, and
    /// `extra` settings.
    async fn sasl_broker(dir: &tempfile::TempDir, extra: &[(&str, &str)]) -> RunningBroker {
        let users = dir.path().join("users");
        let lines: Vec<String> = [("carol", "carol-pw"), ("dave", "dave-pw")]
            .iter()
            .map(|(u, p)| crate::sasl::plain::users_file_line(u, p.as_bytes(), 10_000).unwrap())
            .collect();
        std::fs::write(&users, lines.join("\n") + "\n").unwrap();
        let mut config = BrokerConfig {
            data_dir: dir.path().join("data"),
            admin_listen: None,
            ..BrokerConfig::default()
        };
        let users = users.display().to_string();
        let mut settings = vec![
            ("listeners", "SASL_PLAINTEXT://127.0.0.1:0"),
            ("sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-256"),
            ("sasl.plain.users.file", users.as_str()),
        ];
        settings.extend_from_slice(extra);
        for (key, value) in settings {
            config.set(key, value).unwrap();
        }
        crate::server::start(config).await.unwrap()
    }

    fn listener(b: &RunningBroker) -> Listener {
        let config = &b.broker().config;
        let name = &config.first_listener().name;
        Listener {
            name: name.clone(),
            protocol: config.listener_protocol(name).unwrap(),
            bound: config.first_listener().addr,
            advertised: ("localhost".to_string(), 9092),
            sasl_mechanisms: config.sasl_mechanisms_for(name),
            session_lifetimes_ms: crate::listeners::session_lifetimes_ms(config, name),
            tls: None,
        }
    }

    /// A request frame (without its size prefix).
    fn frame<R: Encodable + HeaderVersion>(
        key: ApiKey,
        version: i16,
        body: &R,
    ) -> (HeaderPrefix, Bytes) {
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(7);
        let mut buf = BytesMut::new();
        header.encode(&mut buf, R::header_version(version)).unwrap();
        body.encode(&mut buf, version).unwrap();
        let prefix = HeaderPrefix {
            api_key: key as i16,
            api_version: version,
            correlation_id: 7,
        };
        (prefix, buf.freeze())
    }

    fn handshake(
        a: &mut Authenticator,
        b: &Broker,
        mechanism: &'static str,
        now: Instant,
    ) -> (Verdict, i16) {
        let (header, bytes) = frame(
            ApiKey::SaslHandshake,
            1,
            &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism)),
        );
        let verdict = a.on_request(b, header, &bytes, now);
        let code = match &verdict {
            Verdict::Reply(f) | Verdict::ReplyAndClose(f, _) => {
                let mut f = f.clone();
                f.advance(8);
                SaslHandshakeResponse::decode(&mut f, 1).unwrap().error_code
            }
            _ => -1,
        };
        (verdict, code)
    }

    /// SaslAuthenticate of `version` with PLAIN's `user`/`password` at `now`: the verdict and
    /// the response (if any).
    fn authenticate(
        a: &mut Authenticator,
        b: &Broker,
        version: i16,
        user: &str,
        password: &str,
        now: Instant,
    ) -> (Verdict, Option<SaslAuthenticateResponse>) {
        let auth = format!("\0{user}\0{password}");
        let (header, bytes) = frame(
            ApiKey::SaslAuthenticate,
            version,
            &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(auth)),
        );
        let verdict = a.on_request(b, header, &bytes, now);
        let response = match &verdict {
            Verdict::Reply(f) | Verdict::ReplyAndClose(f, _) => {
                let mut f = f.clone();
                // Size, correlation id and, from v2 (flexible), the header's tagged fields.
                f.advance(if version >= 2 { 9 } else { 8 });
                Some(SaslAuthenticateResponse::decode(&mut f, version).unwrap())
            }
            _ => None,
        };
        (verdict, response)
    }

    fn metadata(a: &mut Authenticator, b: &Broker, now: Instant) -> Verdict {
        let (header, bytes) = frame(ApiKey::Metadata, 12, &MetadataRequest::default());
        a.on_request(b, header, &bytes, now)
    }

    fn login(a: &mut Authenticator, b: &Broker, user: &str, password: &str, now: Instant) -> i64 {
        assert_eq!(handshake(a, b, "PLAIN", now).1, 0);
        let (verdict, response) = authenticate(a, b, 1, user, password, now);
        assert!(matches!(verdict, Verdict::Reply(_)), "{verdict:?}");
        let response = response.unwrap();
        assert_eq!(response.error_code, 0);
        response.session_lifetime_ms
    }

    #[tokio::test]
    async fn a_session_expires_after_connections_max_reauth_ms_unless_renewed_by_the_same_user() {
        let dir = tempfile::tempdir().unwrap();
        let running = sasl_broker(&dir, &[("connections.max.reauth.ms", "2000")]).await;
        let b = running.broker().clone();
        let listener = listener(&running);
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);

        let mut a = Authenticator::new(&listener, Principal::anonymous());
        assert_eq!(login(&mut a, &b, "carol", "carol-pw", t0), 2000);
        assert_eq!(a.session_expires(), Some(ms(2000)));
        assert!(matches!(metadata(&mut a, &b, ms(1999)), Verdict::Serve));
        // Re-authentication renews the session from its end; requests between its steps are
        // served.
        assert_eq!(handshake(&mut a, &b, "PLAIN", ms(1500)).1, 0);
        assert!(matches!(metadata(&mut a, &b, ms(1600)), Verdict::Serve));
        assert_eq!(a.principal().unwrap().user, "carol");
        let (_, response) = authenticate(&mut a, &b, 2, "carol", "carol-pw", ms(1700));
        let response = response.unwrap();
        assert_eq!(
            (response.error_code, response.session_lifetime_ms),
            (0, 2000)
        );
        assert_eq!(a.session_expires(), Some(ms(3700)));
        assert!(matches!(metadata(&mut a, &b, ms(3000)), Verdict::Serve));
        // A second re-authentication within a second of the last is an illegal state.
        assert_eq!(
            handshake(&mut a, &b, "PLAIN", ms(2400)).1,
            ResponseError::IllegalSaslState.code()
        );
        // Past the expiry, anything but a re-authentication closes.
        assert!(matches!(metadata(&mut a, &b, ms(3700)), Verdict::Close(_)));
        // ... but a re-authentication begun then renews it.
        assert_eq!(handshake(&mut a, &b, "PLAIN", ms(3800)).1, 0);
        authenticate(&mut a, &b, 1, "carol", "carol-pw", ms(3900));
        assert!(matches!(metadata(&mut a, &b, ms(5000)), Verdict::Serve));

        // Another user: SASL_AUTHENTICATION_FAILED, then closed.
        assert_eq!(handshake(&mut a, &b, "PLAIN", ms(5000)).1, 0);
        let (verdict, response) = authenticate(&mut a, &b, 1, "dave", "dave-pw", ms(5001));
        assert!(matches!(verdict, Verdict::ReplyAndClose(..)), "{verdict:?}");
        let response = response.unwrap();
        assert_eq!(
            response.error_code,
            ResponseError::SaslAuthenticationFailed.code()
        );
        assert_eq!(
            response.error_message.as_deref(),
            Some("Cannot change principals during re-authentication from User:carol: User:dave")
        );

        // A wrong password in a re-authentication closes too.
        let mut a = Authenticator::new(&listener, Principal::anonymous());
        login(&mut a, &b, "carol", "carol-pw", t0);
        assert_eq!(handshake(&mut a, &b, "PLAIN", ms(100)).1, 0);
        let (verdict, _) = authenticate(&mut a, &b, 1, "carol", "wrong", ms(101));
        assert!(matches!(verdict, Verdict::ReplyAndClose(..)), "{verdict:?}");

        // Another mechanism than the session's: the handshake passes, the authenticate fails.
        let mut a = Authenticator::new(&listener, Principal::anonymous());
        login(&mut a, &b, "carol", "carol-pw", t0);
        assert_eq!(handshake(&mut a, &b, "SCRAM-SHA-256", ms(100)).1, 0);
        let (verdict, response) = authenticate(&mut a, &b, 1, "carol", "carol-pw", ms(101));
        assert!(matches!(verdict, Verdict::ReplyAndClose(..)), "{verdict:?}");
        assert_eq!(
            response.unwrap().error_code,
            ResponseError::SaslAuthenticationFailed.code()
        );

        // A SaslAuthenticate v0 client is told no lifetime, and is closed at the expiry.
        let mut a = Authenticator::new(&listener, Principal::anonymous());
        assert_eq!(handshake(&mut a, &b, "PLAIN", t0).1, 0);
        let (_, response) = authenticate(&mut a, &b, 0, "carol", "carol-pw", t0);
        assert_eq!(response.unwrap().session_lifetime_ms, 0);
        assert!(matches!(metadata(&mut a, &b, ms(1999)), Verdict::Serve));
        assert!(matches!(metadata(&mut a, &b, ms(2000)), Verdict::Close(_)));
        running.shutdown().await;
    }

    #[tokio::test]
    async fn without_connections_max_reauth_ms_sessions_never_expire_and_cannot_be_renewed() {
        let dir = tempfile::tempdir().unwrap();
        let running = sasl_broker(&dir, &[]).await;
        let b = running.broker().clone();
        let listener = listener(&running);
        let t0 = Instant::now();
        let mut a = Authenticator::new(&listener, Principal::anonymous());
        assert_eq!(login(&mut a, &b, "carol", "carol-pw", t0), 0);
        assert_eq!(a.session_expires(), None);
        let later = t0 + Duration::from_secs(86_400);
        assert!(matches!(metadata(&mut a, &b, later), Verdict::Serve));
        assert_eq!(
            handshake(&mut a, &b, "PLAIN", later).1,
            ResponseError::IllegalSaslState.code()
        );
        running.shutdown().await;
    }

    #[tokio::test]
    async fn a_mechanisms_own_session_lifetime_wins_over_the_listeners() {
        let dir = tempfile::tempdir().unwrap();
        let running = sasl_broker(
            &dir,
            &[
                ("connections.max.reauth.ms", "2000"),
                (
                    "listener.name.sasl_plaintext.plain.connections.max.reauth.ms",
                    "700",
                ),
            ],
        )
        .await;
        let b = running.broker().clone();
        let listener = listener(&running);
        let t0 = Instant::now();
        let mut a = Authenticator::new(&listener, Principal::anonymous());
        assert_eq!(login(&mut a, &b, "carol", "carol-pw", t0), 700);
        assert_eq!(a.session_expires(), Some(t0 + Duration::from_millis(700)));
        assert_eq!(
            listener.session_lifetimes_ms.get("SCRAM-SHA-256"),
            Some(&2000)
        );
        // A re-authentication's time is observed.
        let later = t0 + Duration::from_millis(1500);
        assert_eq!(handshake(&mut a, &b, "PLAIN", later).1, 0);
        authenticate(
            &mut a,
            &b,
            2,
            "carol",
            "carol-pw",
            later + Duration::from_millis(3),
        );
        let text = b
            .metrics
            .encode(&b.topics, None, None, &Default::default())
            .unwrap();
        assert!(
            text.contains("starling_sasl_reauthentication_seconds_count 1"),
            "{text}"
        );
        running.shutdown().await;
    }

    #[test]
    fn a_listener_may_set_its_own_connections_max_reauth_ms_and_one_per_mechanism() {
        let mut c = BrokerConfig::default();
        c.set("connections.max.reauth.ms", "60000").unwrap();
        c.set("listener.name.external.connections.max.reauth.ms", "5000")
            .unwrap();
        c.set(
            "listener.name.external.scram-sha-512.connections.max.reauth.ms",
            "2000",
        )
        .unwrap();
        assert_eq!(c.connections_max_reauth_ms_for("EXTERNAL", "PLAIN"), 5000);
        assert_eq!(
            c.connections_max_reauth_ms_for("EXTERNAL", "SCRAM-SHA-512"),
            2000
        );
        assert_eq!(c.connections_max_reauth_ms_for("INTERNAL", "PLAIN"), 60_000);
        assert_eq!(
            c.connections_max_reauth_ms_for("INTERNAL", "SCRAM-SHA-512"),
            60_000
        );
        for (key, value) in [
            ("listener.name.external.connections.max.reauth.ms", "soon"),
            (
                "listener.name.external.plain.connections.max.reauth.ms",
                "-1",
            ),
            (
                "listener.name.external.gssapi.connections.max.reauth.ms",
                "1000",
            ),
        ] {
            assert!(c.set(key, value).is_err(), "{key}={value}");
        }
    }

    #[test]
    fn failures_from_one_address_double_the_delay_up_to_a_cap_and_are_forgotten_after_a_minute() {
        let logins = FailedLogins::new(Duration::from_millis(100));
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        let other: IpAddr = "10.1.2.4".parse().unwrap();
        let t0 = Instant::now();
        let delays: Vec<u128> = (0..10).map(|_| logins.failed(ip, t0).as_millis()).collect();
        assert_eq!(
            delays,
            [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000]
        );
        assert_eq!(logins.failed(other, t0), Duration::from_millis(100));
        assert_eq!(
            logins.failed(ip, t0 + FAILURE_WINDOW),
            Duration::from_millis(100)
        );
    }
}
