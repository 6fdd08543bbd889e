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
//! On a `PLAINTEXT` or `SSL` listener, and after authentication, the SASL requests are answered
//! ILLEGAL_SASL_STATE, as Kafka's `KafkaApis` answers them.
//!
//! [`Authenticator`] holds one connection's state and decides, per request, whether it is a
//! SASL matter ([`Verdict`]); the connection loop does the I/O.

use std::collections::HashMap;
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
use crate::sasl::{credentials, SaslFailure};
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
    /// Authenticated as this user (or, on a PLAINTEXT listener, the anonymous user).
    Done(Principal),
}

/// One connection's authentication.
pub struct Authenticator {
    state: State,
    /// The SASL mechanisms the connection's listener offers.
    mechanisms: Vec<String>,
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
        }
    }

    /// Whether the next frame is a raw SASL token rather than a request (after SaslHandshake
    /// v0).
    pub fn expects_raw_token(&self) -> bool {
        matches!(self.state, State::RawTokens(_))
    }

    /// Takes a raw token: the size-prefixed token to send back, or why to close (a v0 client
    /// cannot be told why).
    pub fn on_raw_token(&mut self, broker: &Broker, token: &[u8]) -> Result<Bytes, String> {
        let State::RawTokens(exchange) = &mut self.state else {
            return Err("a raw SASL token outside a SaslHandshake v0 exchange".to_string());
        };
        match step(broker, exchange, token) {
            Ok((bytes, user)) => {
                if let Some(user) = user {
                    tracing::debug!(user, mechanism = exchange.name(), "authenticated");
                    self.state = State::Done(Principal { user });
                }
                let mut frame = Vec::with_capacity(4 + bytes.len());
                frame.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
                frame.extend_from_slice(&bytes);
                Ok(Bytes::from(frame))
            }
            Err(failure) => Err(format!(
                "SASL {} authentication failed: {}",
                exchange.name(),
                failure.detail
            )),
        }
    }

    /// Who the client is: `None` until it has authenticated.
    pub fn principal(&self) -> Option<&Principal> {
        match &self.state {
            State::Done(principal) => Some(principal),
            _ => None,
        }
    }

    /// The largest frame the client may send now: `max_frame`, or before authentication at
    /// most `sasl.server.max.receive.size`.
    pub fn max_frame(&self, broker: &Broker, max_frame: usize) -> usize {
        match self.state {
            State::Done(_) => max_frame,
            _ => max_frame.min(broker.config.sasl_server_max_receive_size),
        }
    }

    /// Decides what to do with a request whose header starts `header`.
    pub fn on_request(&mut self, broker: &Broker, header: HeaderPrefix, frame: &Bytes) -> Verdict {
        let sasl = header.api_key == ApiKey::SaslHandshake as i16
            || header.api_key == ApiKey::SaslAuthenticate as i16;
        if !sasl {
            return match self.state {
                State::Done(_) => Verdict::Serve,
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
                    return reply(ApiKey::SaslHandshake, &body).then_close(format!(
                        "client asked for SASL mechanism {asked:?}, not enabled"
                    ));
                };
                // v0: raw tokens follow, with no Kafka framing (KIP-152 kept it for old clients).
                self.state = if version == 0 {
                    State::RawTokens(exchange)
                } else {
                    State::Authenticating(exchange)
                };
                count(broker, ApiKey::SaslHandshake, version, &body);
                reply(ApiKey::SaslHandshake, &body)
            }
            (State::Authenticating(exchange), RequestKind::SaslAuthenticate(r)) => {
                let outcome = step(broker, exchange, &r.auth_bytes);
                let mut body = SaslAuthenticateResponse::default();
                match outcome {
                    Ok((bytes, user)) => {
                        body.auth_bytes = Bytes::from(bytes);
                        count(broker, ApiKey::SaslAuthenticate, version, &body);
                        if let Some(user) = user {
                            tracing::debug!(user, mechanism = exchange.name(), "authenticated");
                            self.state = State::Done(Principal { user });
                        }
                        reply(ApiKey::SaslAuthenticate, &body)
                    }
                    Err(failure) => {
                        body.error_code = failure.error_code();
                        body.error_message = Some(StrBytes::from_string(failure.client_message));
                        count(broker, ApiKey::SaslAuthenticate, version, &body);
                        let why = format!(
                            "SASL {} authentication failed: {}",
                            exchange.name(),
                            failure.detail
                        );
                        reply(ApiKey::SaslAuthenticate, &body).then_close(why)
                    }
                }
            }
            (State::Handshake, _) => {
                Verdict::Close("SaslAuthenticate before SaslHandshake".to_string())
            }
            (State::Authenticating(_), _) => {
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
            let store = broker.topics.store();
            let mut store_error = None;
            let outcome = server.evaluate(message, |user| {
                match credentials::lookup(store, user, mechanism) {
                    Ok(found) => found,
                    Err(e) => {
                        store_error = Some(e.to_string());
                        None
                    }
                }
            });
            if let Some(e) = store_error {
                tracing::error!(error = %e, "reading SCRAM credentials");
            }
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
