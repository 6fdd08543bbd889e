//! Kafka wire handling for Starling, with no networking in it.
//!
//! - [`consumer_protocol`]: the consumer subscriptions and assignments embedded in JoinGroup
//!   and SyncGroup, read defensively.
//! - [`frame`]: the 4-byte size prefix and the limit checked before a body is read.
//! - [`request`]: a frame's bytes → [`request::DecodedRequest`] (header + typed body), or a
//!   [`request::DecodeError`] that says whether the connection can still be answered.
//! - [`schema`]: the untrusted-length guard run before decoding: Kafka's published request
//!   schemas, walked over the bytes so no stated length or count exceeds what was sent.
//! - [`response`]: a typed response → a size-prefixed frame with the right header version.
//! - [`scram`]: the SCRAM mechanisms' names, numbers, hash, HMAC and `Hi()`.
//! - [`versions`]: which APIs and versions the broker advertises in ApiVersions.
//! - [`legacy`]: hand-encoded answers for versions the `kafka-protocol` crate cannot encode
//!   (Produce v0–2 are advertised, as Apache Kafka 4 does, but refused).
//!
//! ```
//! use kafka_protocol::messages::ApiKey;
//! let range = starling_protocol::versions::supported(ApiKey::Fetch).unwrap();
//! assert_eq!(range.min, 4);
//! ```

pub mod consumer_protocol;
pub mod fetch_frame;
pub mod frame;
pub mod legacy;
pub mod request;
pub mod response;
pub mod schema;
pub mod scram;
pub mod versions;

pub use kafka_protocol::ResponseError;
