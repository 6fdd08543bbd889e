//! Reads the topics a consumer subscribes to from its JoinGroup metadata (the embedded
//! `ConsumerProtocolSubscription`). Like Kafka, only the version-0 prefix is read — an i16
//! version, then `topics: [string]` and `user_data: bytes` — which every later version starts
//! with. The reader checks every length against the bytes left, so hostile metadata cannot
//! make it allocate more than it holds.

use std::collections::BTreeSet;

/// The protocol type of groups whose metadata is a consumer subscription.
pub(crate) const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.bytes.len() < n {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(head)
    }

    fn i16(&mut self) -> Option<i16> {
        self.take(2).map(|b| i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self) -> Option<i32> {
        self.take(4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.i16()?).ok()?;
        let raw = self.take(len)?;
        String::from_utf8(raw.to_vec()).ok()
    }
}

/// The subscribed topics, or `None` when the metadata is not a consumer subscription.
pub(crate) fn subscribed_topics(metadata: &[u8]) -> Option<BTreeSet<String>> {
    let mut reader = Reader { bytes: metadata };
    if reader.i16()? < 0 {
        return None;
    }
    let count = usize::try_from(reader.i32()?).ok()?;
    // Each topic takes at least its 2-byte length.
    if count > reader.bytes.len() / 2 {
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
