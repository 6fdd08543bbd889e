//! The consumer protocol embedded in a classic member's JoinGroup metadata
//! (`ConsumerProtocolSubscription`) and SyncGroup assignment (`ConsumerProtocolAssignment`),
//! read and written where a classic member lives in a consumer-protocol group: its
//! subscription and owned partitions come from its JoinGroup, its assignment goes back through
//! SyncGroup, and a conversion between the protocols carries both over.
//!
//! Both are an i16 version, then the struct at that version (never flexible). Like Kafka's
//! `ConsumerProtocol`, a version newer than known is read with the newest known layout (later
//! versions only add fields at the end). Every length is checked against the bytes left, so
//! hostile metadata cannot make the coordinator allocate more than it sent.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
use kafka_protocol::messages::ConsumerProtocolAssignment;
use kafka_protocol::protocol::{Encodable, StrBytes};

use crate::byte_reader::ByteReader;

/// The newest `ConsumerProtocolSubscription` and `ConsumerProtocolAssignment` version known.
const NEWEST_VERSION: i16 = 3;

/// What a classic member's subscription says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct ClassicSubscription {
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

/// A classic member's assignment as read from SyncGroup bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct ClassicAssignment {
    pub partitions: Vec<(String, i32)>,
    /// User data the leader's assignor put in it (`None` when null or empty), which a
    /// consumer-protocol group cannot keep.
    pub user_data: Option<Vec<u8>>,
}

/// Reads a subscription; `None` when the bytes are not one.
pub(crate) fn decode_subscription(bytes: &[u8]) -> Option<ClassicSubscription> {
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
    Some(ClassicSubscription {
        version,
        topics,
        owned,
        rack,
        user_data,
    })
}

/// Reads an assignment (empty bytes are an empty assignment); `None` when the bytes are not
/// one.
pub(crate) fn decode_assignment(bytes: &[u8]) -> Option<ClassicAssignment> {
    if bytes.is_empty() {
        return Some(ClassicAssignment::default());
    }
    let mut r = ByteReader::new(bytes);
    if r.i16()? < 0 {
        return None;
    }
    let partitions = topic_partitions(&mut r)?;
    let user_data = nullable_bytes(&mut r)?;
    Some(ClassicAssignment {
        partitions,
        user_data: user_data.filter(|d| !d.is_empty()).map(<[u8]>::to_vec),
    })
}

/// The version of the embedded protocol in a member's metadata (what its assignment is
/// written at; Kafka's `ConsumerProtocol.deserializeVersion`), 0 when unreadable.
pub(crate) fn version_of(metadata: &[u8]) -> i16 {
    ByteReader::new(metadata).i16().unwrap_or(0).max(0)
}

/// An assignment as a classic member reads it from SyncGroup, at `version` (capped to the
/// newest known), partitions by topic name in the order given.
pub(crate) fn encode_assignment(version: i16, partitions: &[(String, Vec<i32>)]) -> Bytes {
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
        assert_eq!(
            decode_assignment(b"").unwrap(),
            ClassicAssignment::default()
        );
        assert!(decode_assignment(b"\x00\x00\x00\x00\x00\x09").is_none());
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
