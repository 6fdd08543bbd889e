//! The server side of the SASL mechanisms, as pure state machines the connection layer drives
//! with the bytes of each `SaslAuthenticate` request:
//!
//! - [`scram`]: SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) against the credentials
//!   AlterUserScramCredentials stores, as Kafka's `ScramSaslServer`.
//! - [`credentials`]: the SCRAM credentials DescribeUserScramCredentials and
//!   AlterUserScramCredentials read and change, and the lookup the exchange uses.
//! - [`plain`]: PLAIN (RFC 4616) against a users file of salted PBKDF2 hashes
//!   (`sasl.plain.users.file`), as Kafka's `PlainSaslServer`.
//!
//! Nothing here reads a socket or the clock: a mechanism takes a client message and answers
//! the next server message, or a [`SaslFailure`] carrying what the client may be told.
//!
//! For the connection layer, after SaslHandshake picked a mechanism, each SaslAuthenticate's
//! `auth_bytes` go to:
//! - SCRAM: one [`scram::ScramServer`] per connection; `evaluate(bytes, |user|
//!   credentials.lookup(user, mechanism))` (see [`credentials::ScramCredentials`]) answers `Challenge` (send it, wait for the next
//!   request) or `Complete` (send `server_final`; the principal is `authorization_id`).
//! - PLAIN: [`plain::PlainUsers::authenticate`] (the users loaded once from
//!   `sasl.plain.users.file`) answers the user; the response's `auth_bytes` are empty.
//!
//! A failure answers [`SaslFailure::error_code`] with `client_message`, logs `detail`, and
//! closes the connection, as Kafka does.

pub mod credentials;
pub mod plain;
pub mod scram;

use kafka_protocol::ResponseError;

/// Why an exchange stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslErrorKind {
    /// The credentials or the message were refused: SASL_AUTHENTICATION_FAILED (58).
    AuthenticationFailed,
    /// A message arrived when the exchange expected none: ILLEGAL_SASL_STATE (34).
    IllegalState,
}

/// A failed SASL step: the error code, the message the client is sent and, for the broker's
/// log only, what really went wrong (Kafka never tells a client whether a user exists).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslFailure {
    pub kind: SaslErrorKind,
    /// What goes into `SaslAuthenticateResponse.error_message`.
    pub client_message: String,
    /// What the broker logs.
    pub detail: String,
}

impl SaslFailure {
    /// A failure whose reason stays in the log: the client gets Kafka's generic message (as
    /// `SaslServerAuthenticator` answers any `SaslException`).
    pub fn hidden(mechanism: &str, detail: impl Into<String>) -> SaslFailure {
        SaslFailure {
            kind: SaslErrorKind::AuthenticationFailed,
            client_message: invalid_credentials_message(mechanism),
            detail: detail.into(),
        }
    }

    /// A failure whose message the client is sent as is (Kafka's
    /// `SaslAuthenticationException`).
    pub fn told(message: impl Into<String>) -> SaslFailure {
        let message = message.into();
        SaslFailure {
            kind: SaslErrorKind::AuthenticationFailed,
            client_message: message.clone(),
            detail: message,
        }
    }

    /// A message after the exchange ended (Kafka's `IllegalSaslStateException`).
    pub fn illegal_state(message: impl Into<String>) -> SaslFailure {
        let message = message.into();
        SaslFailure {
            kind: SaslErrorKind::IllegalState,
            client_message: message.clone(),
            detail: message,
        }
    }

    /// The error code `SaslAuthenticateResponse` carries.
    pub fn error_code(&self) -> i16 {
        match self.kind {
            SaslErrorKind::AuthenticationFailed => ResponseError::SaslAuthenticationFailed.code(),
            SaslErrorKind::IllegalState => ResponseError::IllegalSaslState.code(),
        }
    }
}

/// Kafka's answer to a client whose credentials a mechanism refused, naming nothing but the
/// mechanism (`SaslServerAuthenticator.handleSaslToken`).
pub fn invalid_credentials_message(mechanism: &str) -> String {
    format!(
        "Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}"
    )
}

/// `len` bytes from the operating system's secure random source.
pub(crate) fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    // The OS source failing is not something a broker can work around; an all-zero salt or
    // nonce would silently weaken every credential, so stop instead.
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generic_failure_names_only_the_mechanism() {
        let failure = SaslFailure::hidden("SCRAM-SHA-256", "no such user: alice");
        assert_eq!(
            failure.client_message,
            "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256"
        );
        assert_eq!(failure.error_code(), 58);
        assert!(!failure.client_message.contains("alice"));
    }

    #[test]
    fn an_illegal_state_has_its_own_code() {
        assert_eq!(SaslFailure::illegal_state("done").error_code(), 34);
    }

    #[test]
    fn random_bytes_differ_between_calls() {
        assert_ne!(random_bytes(16), random_bytes(16));
    }
}
