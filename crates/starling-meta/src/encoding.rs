//! How the store writes a value: one byte of format version, then the value as JSON (so the
//! file stays inspectable).
//!
//! A value's JSON at a given version never changes meaning: a change to the stored types that
//! an earlier reader would misread gets a new version, and this module keeps reading every
//! earlier one (converting it to today's types) so a later Starling reads what an earlier one
//! wrote. A version newer than this build knows is refused with a clear error rather than
//! guessed at. The golden tests in `stored_format_tests.rs` pin each version's bytes.
//!
//! Version history:
//! * **0** — the JSON alone, no version byte (Starling before the versioned format). Its first
//!   byte is always `{`, which no version byte will ever be; it reads as version 1.
//! * **1** — the version byte `0x01`, then the same JSON as version 0.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::MetaError;

/// The version this build writes.
pub const FORMAT_VERSION: u8 = 1;

/// The first byte of an unversioned (version 0) value: JSON objects only.
const UNVERSIONED_FIRST_BYTE: u8 = b'{';

/// `value` as the store keeps it. `what` names it in the error.
pub(crate) fn encode<T: Serialize>(
    what: impl FnOnce() -> String,
    value: &T,
) -> Result<Vec<u8>, MetaError> {
    let mut bytes = vec![FORMAT_VERSION];
    serde_json::to_writer(&mut bytes, value).map_err(|source| MetaError::Encode {
        what: what(),
        source,
    })?;
    Ok(bytes)
}

/// A stored value read back, whichever version wrote it.
pub(crate) fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, MetaError> {
    let json = match bytes.first() {
        Some(&UNVERSIONED_FIRST_BYTE) => bytes,
        Some(&1) => &bytes[1..],
        Some(&version) => {
            return Err(MetaError::NewerFormat {
                key: key.to_string(),
                version,
            })
        }
        None => &[][..],
    };
    serde_json::from_slice(json).map_err(|source| MetaError::Decode {
        key: key.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
    struct Value {
        n: u32,
    }

    #[test]
    fn a_value_is_written_with_the_version_byte_then_json() {
        let bytes = encode(|| "v".into(), &Value { n: 3 }).unwrap();
        assert_eq!(bytes, b"\x01{\"n\":3}");
        assert_eq!(decode::<Value>("k", &bytes).unwrap(), Value { n: 3 });
    }

    #[test]
    fn an_unversioned_value_from_an_earlier_starling_is_read() {
        assert_eq!(decode::<Value>("k", b"{\"n\":7}").unwrap(), Value { n: 7 });
    }

    #[test]
    fn a_value_from_a_newer_starling_is_refused_by_name() {
        let err = decode::<Value>("g/orders", b"\x02{\"n\":1}").unwrap_err();
        assert!(
            matches!(err, MetaError::NewerFormat { version: 2, .. }),
            "{err}"
        );
        let message = err.to_string();
        assert!(
            message.contains("g/orders") && message.contains("newer"),
            "{message}"
        );
    }

    #[test]
    fn damaged_values_are_decode_errors_naming_the_key() {
        for bytes in [&b""[..], b"\x01", b"\x01{\"n\":", b"{\"m\":1}"] {
            let err = decode::<Value>("o/g/t/0", bytes).unwrap_err();
            assert!(
                matches!(err, MetaError::Decode { ref key, .. } if key == "o/g/t/0"),
                "{err}"
            );
        }
    }
}
