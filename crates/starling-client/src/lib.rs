//! `starling-client`: a small async Kafka protocol client.
//!
//! This is the client the Starling CLI (`starling group ...`) and, later, the benchmarks use to
//! speak the Kafka wire protocol to **any** Kafka-compatible broker — Apache Kafka, Redpanda or
//! Starling. It is built on `tokio` and the message definitions of the `kafka-protocol` crate
//! and deliberately does only what an admin tool needs:
//!
//! * [`Connection`]: one connection to one broker, over TCP or TLS (rustls). Connecting
//!   performs the ApiVersions handshake (v3, falling back to v0 when the broker answers
//!   UNSUPPORTED_VERSION) and remembers the broker's version ranges, then logs in with SASL
//!   when asked to ([`sasl`]: PLAIN, SCRAM-SHA-256/512, logging in again before the session
//!   ends); [`Connection::version_for`] picks the highest version both sides speak and
//!   [`Connection::send`] frames a typed request and decodes the typed response, with a
//!   timeout on every call.
//! * [`Client`]: a bootstrap connection plus connections to other brokers opened on demand
//!   (partition leaders, group and transaction coordinators). It offers Metadata, ListOffsets,
//!   FindCoordinator, ListGroups, DescribeGroups, DeleteGroups, OffsetFetch and OffsetCommit,
//!   building every request with only the fields the negotiated version has.
//! * [`acls`]: CreateAcls, DescribeAcls and DeleteAcls (KIP-140).
//! * [`admin`]: CreateTopics, DeleteTopics, DeleteRecords and the cluster overview.
//! * [`records`]: Produce and Fetch for one partition at a time (uncompressed batches, no
//!   idempotence), enough for a command-line producer and consumer.
//! * [`transactions`]: DescribeTransactions, ListTransactions and DescribeProducers (KIP-664).
//! * [`scram`]: DescribeUserScramCredentials and AlterUserScramCredentials (KIP-554), the
//!   password salted client-side.
//! * [`consumer_protocol`]: decoding of the consumer-protocol subscription and assignment bytes
//!   that DescribeGroups returns for each member.
//!
//! It is not a full producer or consumer: there is no batching across calls, no pipelining
//! (one request in flight per connection).

pub mod acls;
pub mod admin;
pub mod client;
pub mod connection;
pub mod consumer_group;
pub mod consumer_protocol;
pub mod error;
#[cfg(test)]
mod fake_broker;
pub mod group_member;
pub mod quotas;
pub mod records;
pub mod sasl;
pub mod scram;
pub mod transactions;

pub use admin::{ClusterInfo, ConfigChange, ConfigEntry, ConfigOp, NewTopic, TopicError};
pub use client::{
    Broker, Client, CommittedOffset, GroupDescription, ListedGroup, ListedOffset,
    MemberDescription, Metadata, OffsetSpec, PartitionMetadata, TopicMetadata,
};
pub use connection::{Connection, Options};
pub use error::{describe_code, error_name, Error, Result};
pub use group_member::{GroupMember, Heartbeat};
pub use kafka_protocol::messages::ApiKey;
pub use kafka_protocol::records::Compression;
pub use kafka_protocol::ResponseError;
pub use records::{ConsumedRecord, FetchedPartition, Isolation, OutgoingRecord};
pub use sasl::{SaslCredentials, SaslMechanism};

/// A topic name and partition index; orders by topic, then partition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}
