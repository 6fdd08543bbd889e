//! Reads the topics a consumer subscribes to from its JoinGroup metadata (the embedded
//! `ConsumerProtocolSubscription`). Like Kafka, only the version-0 prefix is read — an i16
//! version, then `topics: [string]` and `user_data: bytes` — which every later version starts
//! with. The reader checks every length against the bytes left, so hostile metadata cannot
//! make it allocate more than it holds.

use std::collections::BTreeSet;

use crate::byte_reader::ByteReader;

/// The protocol type of groups whose metadata is a consumer subscription.
pub(crate) const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// The subscribed topics, or `None` when the metadata is not a consumer subscription.
pub(crate) fn subscribed_topics(metadata: &[u8]) -> Option<BTreeSet<String>> {
    let mut reader = ByteReader::new(metadata);
    if reader.i16()? < 0 {
        return None;
    }
    let count = usize::try_from(reader.i32()?).ok()?;
    // Each topic takes at least its 2-byte length.
    if count > reader.rest.len() / 2 {
        return None;
    }
    let mut topics = BTreeSet::new();
    for _ in 0..count {
        topics.insert(reader.string()?);
    }
    // user_data: nullable bytes.
    let user_data_len = reader.i32()?;
    if user_data_len >= 0 {
        reader.take(user_data_len as usize)?;
    } else if user_data_len != -1 {
        return None;
    }
    Some(topics)
}
