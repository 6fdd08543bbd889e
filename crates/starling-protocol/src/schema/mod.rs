//! The untrusted-length guard: every request is checked against Kafka's published schema for
//! its API and version before the `kafka-protocol` crate decodes it.
//!
//! Why: the crate's array decoder reserves capacity for the count a request states
//! (`Vec::with_capacity(n)`), so a 19-byte Metadata request claiming 2^31−1 topics asks the
//! allocator for ~150 GB and aborts the process. This check walks the same bytes first, with no
//! allocation, and refuses any string, bytes or array whose stated length or count the bytes
//! that remain cannot hold — so by the time the crate allocates, every count is backed by bytes
//! the client really sent. A refused request closes that one connection, like any malformed
//! frame.
//!
//! - [`spec`]: the embedded schema files, parsed into fields with versions and types.
//! - [`walk`]: the check itself.
//! - [`sample`]: valid requests generated from the schemas, for tests and fuzzing seeds.
//!
//! ```
//! use kafka_protocol::messages::ApiKey;
//! // Metadata v1, client id null, topics array claiming i32::MAX entries and holding none.
//! let mut frame = vec![0, 3, 0, 1, 0, 0, 0, 7, 0xff, 0xff];
//! frame.extend_from_slice(&i32::MAX.to_be_bytes());
//! let err = starling_protocol::schema::check_request(&frame, ApiKey::Metadata, 1).unwrap_err();
//! assert_eq!(err.path, "body.Topics");
//! ```

pub mod sample;
pub mod spec;
pub mod walk;

use kafka_protocol::messages::ApiKey;

pub use sample::{LengthForm, LengthSite, Sample};
pub use spec::{schemas, Message};
pub use walk::LengthError;

/// The schema of a request, if Starling carries one for `api_key`.
pub fn request_schema(api_key: ApiKey) -> Option<&'static Message> {
    schemas().requests.get(&(api_key as i16))
}

/// Checks a whole request frame (header and body, without the size prefix) of `api_key` at
/// `version`. An API without an embedded schema is refused, so a newly served API cannot skip
/// the check by accident.
pub fn check_request(frame: &[u8], api_key: ApiKey, version: i16) -> Result<(), LengthError> {
    let unknown = || LengthError {
        path: String::new(),
        reason: format!("no schema for {api_key:?} v{version}"),
        at: 0,
    };
    let message = request_schema(api_key).ok_or_else(unknown)?;
    if !message.valid.contains(version) {
        return Err(unknown());
    }
    let header_version = api_key.request_header_version(version);
    let mut walker = walk::Walker::new(frame);
    walker
        .message(&schemas().header, header_version)
        .map_err(|e| prefixed(e, "header"))?;
    walker
        .message(message, version)
        .map_err(|e| prefixed(e, "body"))
}

fn prefixed(mut e: LengthError, part: &str) -> LengthError {
    e.path = if e.path.is_empty() {
        part.to_string()
    } else {
        format!("{part}.{}", e.path)
    };
    e
}

/// A valid request frame for `api_key` at `version` (header with correlation id 1 and a short
/// client id, then a body generated from the schema), with the places of every length in it.
/// `None` if Starling has no schema for that API and version.
pub fn sample_request(api_key: ApiKey, version: i16, seed: u64) -> Option<Sample> {
    let message = request_schema(api_key).filter(|m| m.valid.contains(version))?;
    let header_version = api_key.request_header_version(version);
    let mut frame = Vec::new();
    frame.extend_from_slice(&(api_key as i16).to_be_bytes());
    frame.extend_from_slice(&version.to_be_bytes());
    frame.extend_from_slice(&1i32.to_be_bytes());
    if header_version >= 1 {
        frame.extend_from_slice(&4i16.to_be_bytes());
        frame.extend_from_slice(b"test");
    }
    if header_version >= 2 {
        frame.push(0);
    }
    let offset = frame.len();
    let body = sample::sample(message, version, seed);
    frame.extend_from_slice(&body.bytes);
    Some(Sample {
        bytes: frame,
        lengths: body
            .lengths
            .into_iter()
            .map(|site| LengthSite {
                at: site.at + offset,
                ..site
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::versions;
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::messages::{RequestHeader, RequestKind};
    use kafka_protocol::protocol::{Decodable, Encodable};

    /// Every served version, skipping the legacy ones that are refused before decoding.
    fn served() -> Vec<(ApiKey, i16)> {
        versions::all()
            .flat_map(|(api, range)| (range.min..=range.max).map(move |v| (api, v)))
            .filter(|&(api, v)| !versions::is_refused_legacy(api, v))
            .collect()
    }

    #[test]
    fn every_served_api_version_has_a_schema() {
        for (api, v) in served() {
            let message = request_schema(api).unwrap_or_else(|| panic!("{api:?}: no schema"));
            assert!(
                message.valid.contains(v),
                "{api:?} v{v} outside {}",
                message.name
            );
        }
    }

    /// The schemas and the crate agree byte for byte: what the schema generates, the crate
    /// decodes completely and encodes back to the same bytes, for every served version.
    #[test]
    fn samples_from_the_schemas_round_trip_through_the_crate() {
        for (api, v) in served() {
            for seed in 0..24 {
                let sample = sample_request(api, v, seed).unwrap();
                check_request(&sample.bytes, api, v).unwrap_or_else(|e| {
                    panic!("{api:?} v{v} seed {seed}: own sample refused: {e}")
                });
                let mut buf = Bytes::from(sample.bytes.clone());
                let header_version = api.request_header_version(v);
                let header = RequestHeader::decode(&mut buf, header_version).unwrap();
                let header_len = sample.bytes.len() - buf.len();
                let body = RequestKind::decode(api, &mut buf, v)
                    .unwrap_or_else(|e| panic!("{api:?} v{v} seed {seed}: crate refused: {e}"));
                assert!(
                    buf.is_empty(),
                    "{api:?} v{v} seed {seed}: crate left {} bytes",
                    buf.len()
                );
                let mut out = BytesMut::new();
                header.encode(&mut out, header_version).unwrap();
                assert_eq!(out.len(), header_len);
                body.encode(&mut out, v).unwrap();
                assert_eq!(
                    &out[..],
                    &sample.bytes[..],
                    "{api:?} v{v} seed {seed}: crate re-encoded differently"
                );
            }
        }
    }

    /// Every length and count of every served request, set far beyond the bytes present, is
    /// refused by the check (and so never reaches the crate's decoder).
    #[test]
    fn every_length_set_beyond_the_bytes_present_is_refused() {
        let mut smashed = 0;
        for (api, v) in served() {
            for seed in 0..4 {
                let sample = sample_request(api, v, seed).unwrap();
                for site in &sample.lengths {
                    let huge: &[i64] = match site.form {
                        LengthForm::I16 => &[i16::MAX as i64, 4096],
                        LengthForm::I32 | LengthForm::Compact => {
                            &[i32::MAX as i64, 1 << 24, sample.bytes.len() as i64]
                        }
                    };
                    for &value in huge {
                        let bad = sample::with_length(&sample.bytes, *site, value);
                        let err = check_request(&bad, api, v).expect_err(&format!(
                            "{api:?} v{v} length at {} = {value} accepted",
                            site.at
                        ));
                        assert!(err.at <= site.at, "{err} reported after the bad length");
                        smashed += 1;
                    }
                    let bad = sample::with_length(&sample.bytes, *site, -2);
                    assert!(
                        check_request(&bad, api, v).is_err(),
                        "{api:?} v{v} -2 accepted"
                    );
                }
            }
        }
        assert!(smashed > 1000, "only {smashed} lengths smashed");
    }

    #[test]
    fn the_nineteen_byte_metadata_request_is_refused_naming_the_topics_array() {
        let mut frame = vec![0, 3, 0, 1, 0, 0, 0, 7, 0xff, 0xff];
        frame.extend_from_slice(&i32::MAX.to_be_bytes());
        frame.extend_from_slice(&[0; 5]);
        assert_eq!(frame.len(), 19);
        let err = check_request(&frame, ApiKey::Metadata, 1).unwrap_err();
        assert_eq!(err.path, "body.Topics");
        assert!(err.reason.contains("2147483647"), "{err}");
    }

    #[test]
    fn a_compact_array_count_of_u32_max_is_refused() {
        // Metadata v12: header v2 (client id null, no tags), then topics with count 2^32-2.
        let mut frame = vec![0, 3, 0, 12, 0, 0, 0, 7, 0xff, 0xff, 0];
        sample::put_uvarint(&mut frame, u32::MAX);
        frame.extend_from_slice(&[1, 0, 0, 0]);
        let err = check_request(&frame, ApiKey::Metadata, 12).unwrap_err();
        assert_eq!(err.path, "body.Topics");
    }

    #[test]
    fn a_tagged_field_count_beyond_the_bytes_is_refused() {
        // ApiVersions v3: header v2 claiming 1000 tagged fields in 2 bytes.
        let mut frame = vec![0, 18, 0, 3, 0, 0, 0, 7, 0xff, 0xff];
        sample::put_uvarint(&mut frame, 1000);
        frame.extend_from_slice(&[0, 0]);
        assert!(check_request(&frame, ApiKey::ApiVersions, 3).is_err());
    }

    #[test]
    fn a_known_tagged_field_is_checked_inside_its_declared_size() {
        // Fetch v15's ReplicaState is tag 1; declare 2 bytes for it while its fields need 12.
        let message = request_schema(ApiKey::Fetch).unwrap();
        let good = sample::sample(message, 15, 3);
        let mut body = good.bytes.clone();
        // The top-level tag section is the last byte of the body (count 0): replace it.
        assert_eq!(body.pop(), Some(0));
        body.extend_from_slice(&[1, 1, 2, 0, 0]);
        let mut frame = vec![0, 1, 0, 15, 0, 0, 0, 7, 0xff, 0xff, 0];
        frame.extend_from_slice(&body);
        let err = check_request(&frame, ApiKey::Fetch, 15).unwrap_err();
        assert!(err.path.contains("ReplicaState"), "{err}");
    }

    #[test]
    fn unknown_tagged_fields_are_skipped_by_their_size() {
        let mut frame = vec![0, 18, 0, 3, 0, 0, 0, 7, 0xff, 0xff];
        frame.extend_from_slice(&[1, 42, 3, 9, 9, 9]); // one unknown tag of 3 bytes
        frame.extend_from_slice(&[2, b'x', 2, b'1', 0]); // ApiVersions v3 body
        check_request(&frame, ApiKey::ApiVersions, 3).unwrap();
    }

    #[test]
    fn an_api_without_a_schema_is_refused() {
        assert!(check_request(&[0; 16], ApiKey::ExpireDelegationToken, 0).is_err());
    }
}
