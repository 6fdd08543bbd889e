//! Decoding one request frame into its header and typed body.
//!
//! The first eight bytes of every request (api key, api version, correlation id) sit at fixed
//! positions whatever the header version, so even a request we refuse can be answered by
//! correlation id; everything after them is decoded only for versions we support.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::Decodable;

use crate::{schema, versions};

/// A request ready for a handler.
#[derive(Debug)]
pub struct DecodedRequest {
    pub api_key: ApiKey,
    pub header: RequestHeader,
    pub body: RequestKind,
}

/// The fixed-position start of every request header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderPrefix {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

/// Why a frame could not be turned into a [`DecodedRequest`].
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// An API key this broker does not serve: Kafka closes the connection.
    #[error("unknown or unsupported api key {}", .0.api_key)]
    UnknownApiKey(HeaderPrefix),
    /// A served API at a version outside our range: answer with UNSUPPORTED_VERSION.
    #[error("api key {} version {} is not supported", .prefix.api_key, .prefix.api_version)]
    UnsupportedVersion {
        prefix: HeaderPrefix,
        api_key: ApiKey,
    },
    /// The header or body does not parse: the connection is closed.
    #[error("malformed request: {0}")]
    Malformed(String),
}

/// Reads the fixed-position header fields.
pub fn header_prefix(frame: &[u8]) -> Option<HeaderPrefix> {
    let mut b = frame.get(..8)?;
    Some(HeaderPrefix {
        api_key: b.get_i16(),
        api_version: b.get_i16(),
        correlation_id: b.get_i32(),
    })
}

/// Decodes a whole request frame (without its size prefix).
pub fn decode(frame: Bytes) -> Result<DecodedRequest, DecodeError> {
    let prefix = header_prefix(&frame)
        .ok_or_else(|| DecodeError::Malformed("frame shorter than a header".into()))?;
    let api_key = match ApiKey::try_from(prefix.api_key) {
        Ok(key) if versions::supported(key).is_some() => key,
        _ => return Err(DecodeError::UnknownApiKey(prefix)),
    };
    let range = versions::supported(api_key).expect("checked above");
    if prefix.api_version < range.min
        || prefix.api_version > range.max
        || versions::is_refused_legacy(api_key, prefix.api_version)
    {
        return Err(DecodeError::UnsupportedVersion { prefix, api_key });
    }
    // Before the crate allocates for any count it reads, every length must fit the bytes sent.
    schema::check_request(&frame, api_key, prefix.api_version)
        .map_err(|e| DecodeError::Malformed(format!("{api_key:?} v{}: {e}", prefix.api_version)))?;
    let mut buf = frame;
    let header_version = api_key.request_header_version(prefix.api_version);
    let header = RequestHeader::decode(&mut buf, header_version)
        .map_err(|e| DecodeError::Malformed(format!("{api_key:?} header: {e}")))?;
    let body = RequestKind::decode(api_key, &mut buf, prefix.api_version).map_err(|e| {
        DecodeError::Malformed(format!("{api_key:?} v{} body: {e}", prefix.api_version))
    })?;
    Ok(DecodedRequest {
        api_key,
        header,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};

    fn frame(api_key: i16, version: i16, rest: &[u8]) -> Bytes {
        let mut b = BytesMut::new();
        b.put_i16(api_key);
        b.put_i16(version);
        b.put_i32(77);
        b.put_slice(rest);
        b.freeze()
    }

    #[test]
    fn unknown_api_key_keeps_the_correlation_id() {
        match decode(frame(9999, 0, &[0, 0])) {
            Err(DecodeError::UnknownApiKey(p)) => assert_eq!(p.correlation_id, 77),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn version_beyond_our_range_is_unsupported_not_malformed() {
        assert!(matches!(
            decode(frame(ApiKey::Metadata as i16, 99, &[])),
            Err(DecodeError::UnsupportedVersion {
                api_key: ApiKey::Metadata,
                ..
            })
        ));
    }

    #[test]
    fn legacy_produce_versions_are_refused() {
        assert!(matches!(
            decode(frame(ApiKey::Produce as i16, 2, &[])),
            Err(DecodeError::UnsupportedVersion {
                api_key: ApiKey::Produce,
                ..
            })
        ));
    }

    #[test]
    fn truncated_body_is_malformed() {
        // Metadata v1: client id (null) then a topics array claiming 5 entries but holding none.
        let mut rest = BytesMut::new();
        rest.put_i16(-1);
        rest.put_i32(5);
        assert!(matches!(
            decode(frame(ApiKey::Metadata as i16, 1, &rest)),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn an_array_count_beyond_the_frame_is_malformed_before_anything_is_allocated() {
        // The 19-byte Metadata v1 request that used to abort the broker: the crate reserved
        // room for 2^31-1 topics (~150 GB) before noticing the bytes were not there.
        let mut rest = BytesMut::new();
        rest.put_i16(-1);
        rest.put_i32(i32::MAX);
        rest.put_slice(&[0; 5]);
        let frame = frame(ApiKey::Metadata as i16, 1, &rest);
        assert_eq!(frame.len(), 19);
        match decode(frame) {
            Err(DecodeError::Malformed(why)) => assert!(why.contains("Topics"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_short_frame_is_malformed() {
        assert!(matches!(
            decode(Bytes::from_static(&[0, 1, 0])),
            Err(DecodeError::Malformed(_))
        ));
    }
}
