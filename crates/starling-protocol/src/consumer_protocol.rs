//! The consumer protocol embedded in the group APIs: a consumer's subscription
//! (`ConsumerProtocolSubscription`, its JoinGroup metadata) and assignment
//! (`ConsumerProtocolAssignment`, its SyncGroup bytes), read by the group coordinator for
//! subscriptions, owned partitions, rebalance history and protocol conversions, and by
//! Starling's client for what group members hold.
//!
//! Both are an i16 version, then the struct at that version (never flexible). Like Kafka's
//! `ConsumerProtocol`, a version newer than known is read with the newest known layout (later
//! versions only add fields at the end). The bytes come from clients, so every length is
//! checked against the bytes left ([`ByteReader`]): hostile metadata cannot make the reader
//! panic or allocate more than it was sent.

use std::collections::BTreeSet;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
use kafka_protocol::messages::ConsumerProtocolAssignment;
use kafka_protocol::protocol::{Encodable, StrBytes};

/// The `protocol_type` of groups whose members speak the consumer protocol.
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// The newest `ConsumerProtocolSubscription` and `ConsumerProtocolAssignment` version known.
const NEWEST_VERSION: i16 = 3;

/// What a consumer's subscription (its JoinGroup metadata) says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subscription {
    pub version: i16,
    /// As the member listed them.
    pub topics: Vec<String>,
    /// The partitions the member owns (v1+; a v0 subscription owns nothing it can tell).
    pub owned: Vec<(String, i32)>,
    /// v3+.
    pub rack: Option<String>,
    /// The assignor's user data (`None` when null).
    pub user_data: Option<Vec<u8>>,
}

/// A consumer's assignment as read from SyncGroup bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assignment {
    pub partitions: Vec<(String, i32)>,
    /// User data the leader's assignor put in it (`None` when null or empty).
    pub user_data: Option<Vec<u8>>,
}

/// Reads a subscription; `None` when the bytes are not one.
pub fn decode_subscription(bytes: &[u8]) -> Option<Subscription> {
    let mut r = ByteReader::new(bytes);
    let version = r.i16()?;
    if version < 0 {
        return None;
    }
    let layout = version.min(NEWEST_VERSION);
    let count = array_len(&mut r, 2)?;
    let mut topics = Vec::with_capacity(count);
    for _ in 0..count {
        topics.push(r.string()?);
    }
    let user_data = nullable_bytes(&mut r)?.map(<[u8]>::to_vec);
    let mut owned = Vec::new();
    if layout >= 1 {
        owned = topic_partitions(&mut r)?;
    }
    if layout >= 2 {
        r.i32()?; // generation id
    }
    let mut rack = None;
    if layout >= 3 {
        rack = nullable_string(&mut r)?;
    }
    Some(Subscription {
        version,
        topics,
        owned,
        rack,
        user_data,
    })
}

/// Reads an assignment (empty bytes are an empty assignment); `None` when the bytes are not
/// one.
pub fn decode_assignment(bytes: &[u8]) -> Option<Assignment> {
    if bytes.is_empty() {
        return Some(Assignment::default());
    }
    let mut r = ByteReader::new(bytes);
    if r.i16()? < 0 {
        return None;
    }
    let partitions = topic_partitions(&mut r)?;
    let user_data = nullable_bytes(&mut r)?;
    Some(Assignment {
        partitions,
        user_data: user_data.filter(|d| !d.is_empty()).map(<[u8]>::to_vec),
    })
}

/// The version of the embedded protocol in a member's metadata (what its assignment is
/// written at; Kafka's `ConsumerProtocol.deserializeVersion`), 0 when unreadable.
pub fn version_of(metadata: &[u8]) -> i16 {
    ByteReader::new(metadata).i16().unwrap_or(0).max(0)
}

/// An assignment as a consumer reads it from SyncGroup, at `version` (capped to the
/// newest known), partitions by topic name in the order given.
pub fn encode_assignment(version: i16, partitions: &[(String, Vec<i32>)]) -> Bytes {
    let version = version.clamp(0, NEWEST_VERSION);
    let mut assignment = ConsumerProtocolAssignment::default();
    assignment.assigned_partitions = partitions
        .iter()
        .map(|(topic, parts)| {
            let mut t = TopicPartition::default();
            t.topic = StrBytes::from_string(topic.clone()).into();
            t.partitions = parts.clone();
            t
        })
        .collect();
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    assignment
        .encode(&mut buf, version)
        .expect("a ConsumerProtocolAssignment encodes at every version 0-3");
    buf.freeze()
}

/// The topics of a subscription, reading only the version-0 prefix every version starts with
/// (`topics: [string]`, `user_data: bytes`), as Kafka's coordinator does to tell what a classic
/// member subscribes to; `None` when the bytes are not a subscription.
pub fn subscribed_topics(metadata: &[u8]) -> Option<BTreeSet<String>> {
    let mut r = ByteReader::new(metadata);
    if r.i16()? < 0 {
        return None;
    }
    let count = array_len(&mut r, 2)?;
    let mut topics = BTreeSet::new();
    for _ in 0..count {
        topics.insert(r.string()?);
    }
    nullable_bytes(&mut r)?;
    Some(topics)
}

/// An array's length, refused when even `min_item` bytes per item would not fit.
fn array_len(r: &mut ByteReader<'_>, min_item: usize) -> Option<usize> {
    let count = usize::try_from(r.i32()?).ok()?;
    (count <= r.rest.len() / min_item.max(1)).then_some(count)
}

/// `[topic: string, partitions: [int32]]`.
fn topic_partitions(r: &mut ByteReader<'_>) -> Option<Vec<(String, i32)>> {
    let topics = array_len(r, 6)?;
    let mut out = Vec::new();
    for _ in 0..topics {
        let topic = r.string()?;
        let count = array_len(r, 4)?;
        for _ in 0..count {
            out.push((topic.clone(), r.i32()?));
        }
    }
    Some(out)
}

fn nullable_bytes<'a>(r: &mut ByteReader<'a>) -> Option<Option<&'a [u8]>> {
    match r.i32()? {
        -1 => Some(None),
        len => Some(Some(r.take(usize::try_from(len).ok()?)?)),
    }
}

fn nullable_string(r: &mut ByteReader<'_>) -> Option<Option<String>> {
    let len = r.i16()?;
    if len == -1 {
        return Some(None);
    }
    let raw = r.take(usize::try_from(len).ok()?)?;
    String::from_utf8(raw.to_vec()).ok().map(Some)
}

/// A bounds-checked reader: every read checks the length against the bytes left and fails
/// with `None` instead of panicking or allocating what the input merely claims.
struct ByteReader<'a> {
    /// The bytes not read yet.
    rest: &'a [u8],
}

impl<'a> ByteReader<'a> {
    fn new(bytes: &'a [u8]) -> ByteReader<'a> {
        ByteReader { rest: bytes }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.rest.len() < n {
            return None;
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Some(head)
    }

    fn i16(&mut self) -> Option<i16> {
        self.take(2).map(|b| i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self) -> Option<i32> {
        self.take(4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A Kafka `string`: i16 length, then UTF-8 bytes.
    fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.i16()?).ok()?;
        let raw = self.take(len)?;
        String::from_utf8(raw.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition as Owned;
    use kafka_protocol::messages::ConsumerProtocolSubscription;

    use super::*;

    fn subscription(version: i16, topics: &[&str], owned: &[(&str, &[i32])]) -> Bytes {
        let mut s = ConsumerProtocolSubscription::default();
        s.topics = topics
            .iter()
            .map(|t| StrBytes::from_string(t.to_string()))
            .collect();
        s.owned_partitions = owned
            .iter()
            .map(|(t, ps)| {
                let mut o = Owned::default();
                o.topic = StrBytes::from_string(t.to_string()).into();
                o.partitions = ps.to_vec();
                o
            })
            .collect();
        s.generation_id = 7;
        s.rack_id = Some(StrBytes::from_static_str("rack-a"));
        let mut buf = BytesMut::new();
        buf.put_i16(version);
        s.encode(&mut buf, version.min(3)).unwrap();
        buf.freeze()
    }

    #[test]
    fn every_subscription_version_reads_with_what_it_has() {
        let v0 = decode_subscription(&subscription(0, &["a", "b"], &[])).unwrap();
        assert_eq!(
            (v0.version, v0.topics.clone()),
            (0, vec!["a".into(), "b".into()])
        );
        assert!(v0.owned.is_empty() && v0.rack.is_none());
        let v1 = decode_subscription(&subscription(1, &["a"], &[("a", &[0, 2])])).unwrap();
        assert_eq!(v1.owned, [("a".to_string(), 0), ("a".to_string(), 2)]);
        let v3 = decode_subscription(&subscription(3, &["a"], &[("a", &[1])])).unwrap();
        assert_eq!(v3.rack.as_deref(), Some("rack-a"));
        assert_eq!(v3.owned, [("a".to_string(), 1)]);
        // A newer version is read with the newest layout known.
        let mut v4 = subscription(3, &["a"], &[]).to_vec();
        v4[1] = 4;
        assert_eq!(decode_subscription(&v4).unwrap().topics, ["a"]);
    }

    #[test]
    fn damaged_or_hostile_metadata_is_no_subscription() {
        assert!(decode_subscription(b"").is_none());
        assert!(decode_subscription(b"\xff\xff").is_none());
        // Claims 2^31-1 topics in a handful of bytes.
        assert!(decode_subscription(b"\x00\x00\x7f\xff\xff\xff\x00").is_none());
        let whole = subscription(1, &["a"], &[("a", &[0])]);
        for cut in 0..whole.len() {
            assert!(decode_subscription(&whole[..cut]).is_none(), "cut at {cut}");
        }
    }

    #[test]
    fn an_assignment_round_trips_at_the_members_version() {
        let bytes = encode_assignment(1, &[("a".into(), vec![0, 1]), ("b".into(), vec![3])]);
        assert_eq!(version_of(&bytes), 1);
        let read = decode_assignment(&bytes).unwrap();
        assert_eq!(
            read.partitions,
            [
                ("a".to_string(), 0),
                ("a".to_string(), 1),
                ("b".to_string(), 3)
            ]
        );
        assert!(read.user_data.is_none());
        assert_eq!(decode_assignment(b"").unwrap(), Assignment::default());
        assert!(decode_assignment(b"\x00\x00\x00\x00\x00\x09").is_none());
    }

    #[test]
    fn subscribed_topics_reads_the_version_0_prefix_of_any_version() {
        let topics = subscribed_topics(&subscription(3, &["b", "a", "b"], &[("a", &[0])])).unwrap();
        assert_eq!(topics.into_iter().collect::<Vec<_>>(), ["a", "b"]);
        // Later fields need not parse: only the prefix is read.
        let mut v1 = subscription(1, &["a"], &[]).to_vec();
        v1.truncate(v1.len() - 2);
        assert!(subscribed_topics(&v1).is_some());
        assert!(subscribed_topics(b"\x00\x00\x7f\xff\xff\xff").is_none());
        assert!(subscribed_topics(b"\xff\xff").is_none());
    }

    #[test]
    fn user_data_from_a_custom_assignor_is_noticed() {
        let mut a = ConsumerProtocolAssignment::default();
        a.user_data = Some(Bytes::from_static(b"custom"));
        let mut buf = BytesMut::new();
        buf.put_i16(0);
        a.encode(&mut buf, 0).unwrap();
        assert_eq!(
            decode_assignment(&buf).unwrap().user_data.as_deref(),
            Some(&b"custom"[..])
        );
    }
}
