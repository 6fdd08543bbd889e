//! Errors of the client: transport failures, protocol mismatches and Kafka error codes, each
//! naming the broker address and, where there is one, the API and version involved.

use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use kafka_protocol::ResponseError;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking to a broker.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The address did not resolve or the TCP connection was refused.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },

    /// The TCP connection (or the ApiVersions handshake) did not complete in time.
    #[error("cannot connect to {addr}: no connection within {timeout:?}")]
    ConnectTimeout { addr: String, timeout: Duration },

    /// The TLS handshake failed: an untrusted or wrong certificate, or no TLS listener there.
    #[error("cannot connect to {addr} over TLS: {message}")]
    Tls { addr: String, message: String },

    /// The broker refused the SASL login.
    #[error("{mechanism} login as {user:?} to {addr} failed: {message}")]
    Authentication {
        addr: String,
        user: String,
        mechanism: &'static str,
        message: String,
    },

    /// Reading or writing the socket failed during a call.
    #[error("{api:?} v{version} to {addr}: {source}")]
    Io {
        api: ApiKey,
        version: i16,
        addr: String,
        #[source]
        source: std::io::Error,
    },

    /// No response arrived within the request timeout.
    #[error("{api:?} v{version} to {addr}: no response within {timeout:?}")]
    Timeout {
        api: ApiKey,
        version: i16,
        addr: String,
        timeout: Duration,
    },

    /// An earlier call on this connection failed half-way, so the byte stream can no longer be
    /// trusted.
    #[error(
        "{api:?} v{version} to {addr}: the connection is unusable after an earlier failed call"
    )]
    Broken {
        api: ApiKey,
        version: i16,
        addr: String,
    },

    /// The request could not be encoded at this version (a field set that the version lacks).
    #[error("{api:?} v{version}: cannot encode the request: {message}")]
    Encode {
        api: ApiKey,
        version: i16,
        message: String,
    },

    /// The response frame did not decode as the expected message.
    #[error("{api:?} v{version} from {addr}: cannot decode the response: {message}")]
    Decode {
        api: ApiKey,
        version: i16,
        addr: String,
        message: String,
    },

    /// The response belongs to another request.
    #[error(
        "{api:?} v{version} from {addr}: response has correlation id {got}, expected {expected}"
    )]
    CorrelationMismatch {
        api: ApiKey,
        version: i16,
        addr: String,
        expected: i32,
        got: i32,
    },

    /// The broker does not list the API in its ApiVersions response.
    #[error("broker {addr} does not support {api:?}")]
    UnsupportedApi { api: ApiKey, addr: String },

    /// The broker's and our version ranges of an API do not overlap.
    #[error(
        "broker {addr} supports {api:?} v{broker_min}-v{broker_max}, this client v{ours_min}-v{ours_max}: no common version"
    )]
    NoCommonVersion {
        api: ApiKey,
        addr: String,
        broker_min: i16,
        broker_max: i16,
        ours_min: i16,
        ours_max: i16,
    },

    /// The broker answered with a Kafka error code.
    #[error("{context}: {}", describe_code(*.error))]
    Kafka {
        context: String,
        error: ResponseError,
    },

    /// The response was well-formed but does not make sense (a missing entry, an odd value).
    #[error("{0}")]
    Protocol(String),

    /// A caller asked for something this client or the negotiated version cannot do.
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// The Kafka error code carried by this error, if it is a [`Error::Kafka`].
    pub fn kafka_error(&self) -> Option<ResponseError> {
        match self {
            Error::Kafka { error, .. } => Some(*error),
            _ => None,
        }
    }

    pub(crate) fn kafka(context: impl Into<String>, error: ResponseError) -> Error {
        Error::Kafka {
            context: context.into(),
            error,
        }
    }
}

/// Kafka's own name of an error (`GROUP_ID_NOT_FOUND`), derived from the crate's variant name.
pub fn error_name(error: ResponseError) -> String {
    if let ResponseError::Unknown(code) = error {
        return format!("UNKNOWN_ERROR_CODE_{code}");
    }
    let camel = format!("{error:?}");
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// `GROUP_ID_NOT_FOUND (69)`.
pub fn describe_code(error: ResponseError) -> String {
    format!("{} ({})", error_name(error), error.code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_follow_kafka_spelling() {
        assert_eq!(error_name(ResponseError::NonEmptyGroup), "NON_EMPTY_GROUP");
        assert_eq!(
            error_name(ResponseError::UnsupportedVersion),
            "UNSUPPORTED_VERSION"
        );
        assert_eq!(
            error_name(ResponseError::Unknown(-7)),
            "UNKNOWN_ERROR_CODE_-7"
        );
        assert_eq!(
            describe_code(ResponseError::GroupIdNotFound),
            "GROUP_ID_NOT_FOUND (69)"
        );
    }
}
