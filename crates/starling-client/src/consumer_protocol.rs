//! The embedded "consumer" protocol: the bytes a consumer group's members exchange through the
//! coordinator (JoinGroup metadata = subscription, SyncGroup assignment), which DescribeGroups
//! hands back verbatim.
//!
//! Both are versioned: the first two bytes are an `i16` version, the rest the body at that
//! version. They are read by [`starling_protocol::consumer_protocol`] (every length checked; a
//! newer version read with the newest known layout) and written here with kafka-protocol's
//! types.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ConsumerProtocolAssignment, ConsumerProtocolSubscription};
use kafka_protocol::protocol::Encodable;
use starling_protocol::consumer_protocol;

use crate::error::{Error, Result};
use crate::TopicPartition;

pub use starling_protocol::consumer_protocol::CONSUMER_PROTOCOL_TYPE;

/// The partitions in an assignment, sorted. Empty bytes (a member between a join and its sync)
/// are an empty assignment.
pub fn assigned_partitions(bytes: &[u8]) -> Result<Vec<TopicPartition>> {
    let assignment = consumer_protocol::decode_assignment(bytes).ok_or_else(|| {
        Error::Protocol(format!(
            "consumer assignment: {} bytes that are not one",
            bytes.len()
        ))
    })?;
    let mut out: Vec<TopicPartition> = assignment
        .partitions
        .into_iter()
        .map(|(topic, p)| TopicPartition::new(topic.as_str(), p))
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// The topics in a subscription (a member's JoinGroup metadata), sorted. Empty bytes are an
/// empty subscription.
pub fn subscribed_topics(bytes: &[u8]) -> Result<Vec<String>> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let topics = consumer_protocol::subscribed_topics(bytes).ok_or_else(|| {
        Error::Protocol(format!(
            "consumer subscription: {} bytes that are not one",
            bytes.len()
        ))
    })?;
    Ok(topics.into_iter().collect())
}

/// `version ++ body`, what [`assigned_partitions`] reads.
pub fn encode_assignment(version: i16, assignment: &ConsumerProtocolAssignment) -> Result<Bytes> {
    encode_versioned(version, assignment, "consumer assignment")
}

/// `version ++ body`, what [`subscribed_topics`] reads.
pub fn encode_subscription(
    version: i16,
    subscription: &ConsumerProtocolSubscription,
) -> Result<Bytes> {
    encode_versioned(version, subscription, "consumer subscription")
}

fn encode_versioned<M: Encodable>(version: i16, message: &M, what: &str) -> Result<Bytes> {
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    message
        .encode(&mut buf, version)
        .map_err(|e| Error::Invalid(format!("{what} v{version}: {e}")))?;
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::StrBytes;

    fn assignment(parts: &[(&str, &[i32])]) -> ConsumerProtocolAssignment {
        ConsumerProtocolAssignment::default().with_assigned_partitions(
            parts
                .iter()
                .map(|(t, ps)| {
                    AssignedTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(t.to_string())))
                        .with_partitions(ps.to_vec())
                })
                .collect(),
        )
    }

    #[test]
    fn assignment_round_trips_at_every_version() {
        let a = assignment(&[("orders", &[2, 0]), ("audit", &[1])]);
        for v in 0..=3 {
            let bytes = encode_assignment(v, &a).unwrap();
            assert_eq!(i16::from_be_bytes([bytes[0], bytes[1]]), v);
            assert_eq!(
                assigned_partitions(&bytes).unwrap(),
                vec![
                    TopicPartition::new("audit", 1),
                    TopicPartition::new("orders", 0),
                    TopicPartition::new("orders", 2),
                ]
            );
        }
    }

    #[test]
    fn hand_built_v0_assignment_bytes_decode() {
        // version 0, one topic "t" with partitions [0, 3], null user data.
        let mut b = BytesMut::new();
        b.put_i16(0);
        b.put_i32(1);
        b.put_i16(1);
        b.put_slice(b"t");
        b.put_i32(2);
        b.put_i32(0);
        b.put_i32(3);
        b.put_i32(-1);
        assert_eq!(
            assigned_partitions(&b).unwrap(),
            vec![TopicPartition::new("t", 0), TopicPartition::new("t", 3)]
        );
    }

    #[test]
    fn newer_assignment_versions_are_read_with_the_latest_known_layout() {
        let a = assignment(&[("t", &[5])]);
        let mut bytes = BytesMut::from(&encode_assignment(3, &a).unwrap()[..]);
        bytes[0..2].copy_from_slice(&9i16.to_be_bytes());
        assert_eq!(
            assigned_partitions(&bytes).unwrap(),
            vec![TopicPartition::new("t", 5)]
        );
    }

    #[test]
    fn empty_assignment_bytes_mean_no_partitions() {
        assert!(assigned_partitions(&[]).unwrap().is_empty());
    }

    #[test]
    fn malformed_assignment_bytes_are_an_error() {
        assert!(assigned_partitions(&[0]).is_err());
        assert!(assigned_partitions(&[0xff, 0xff, 0, 0]).is_err());
        assert!(assigned_partitions(&[0, 0, 0, 0, 0, 5]).is_err());
    }

    #[test]
    fn subscription_topics_are_listed() {
        let s = ConsumerProtocolSubscription::default().with_topics(vec![
            StrBytes::from_static_str("b"),
            StrBytes::from_static_str("a"),
        ]);
        for v in 0..=3 {
            let bytes = encode_subscription(v, &s).unwrap();
            assert_eq!(subscribed_topics(&bytes).unwrap(), vec!["a", "b"], "v{v}");
        }
    }
}
