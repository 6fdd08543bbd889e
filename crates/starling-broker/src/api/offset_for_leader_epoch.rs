//! OffsetForLeaderEpoch: the end offset of a leader epoch, which consumers use to validate
//! their position after a leader change (KIP-320). Every Starling partition has had one leader,
//! this node, at epoch 0 (what Metadata and ListOffsets advertise), so Kafka's leader-epoch
//! cache would hold the single entry (0, log start offset) and `endOffsetFor` answers:
//! - epoch 0: (0, log end offset);
//! - an epoch above 0: no such epoch and none after it, (-1, -1) with no error;
//! - -1 (undefined): (-1, -1);
//! - another negative epoch, below the first known one: (that epoch, the first entry's start
//!   offset), here the log start offset.
//!
//! A `current_leader_epoch` other than -1 is checked first, as Kafka's `Partition` does:
//! below 0 is FENCED_LEADER_EPOCH, above it UNKNOWN_LEADER_EPOCH. A partition the broker does
//! not have is UNKNOWN_TOPIC_OR_PARTITION.

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use kafka_protocol::ResponseError;

use starling_acl::{AclOperation, ResourceType};

use super::RequestContext;
use crate::Broker;

/// The leader epoch of every partition on this node.
pub const LEADER_EPOCH: i32 = 0;
/// Kafka's "no epoch" / "no offset".
const UNDEFINED: i32 = -1;

pub fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    // Kafka's rule: a follower (replica id set) needs CLUSTER_ACTION on the cluster, or every
    // partition is CLUSTER_AUTHORIZATION_FAILED; a consumer needs DESCRIBE on each topic.
    let cluster_refused =
        request.replica_id.0 >= 0 && !ctx.authorize_cluster(broker, AclOperation::ClusterAction);
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let refused = if cluster_refused {
                Some(ResponseError::ClusterAuthorizationFailed)
            } else if request.replica_id.0 < 0
                && !ctx.authorize(
                    broker,
                    AclOperation::Describe,
                    ResourceType::Topic,
                    t.topic.as_str(),
                )
            {
                Some(ResponseError::TopicAuthorizationFailed)
            } else {
                None
            };
            let topic = broker.topics.get(t.topic.as_str());
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let result = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(UNDEFINED)
                        .with_end_offset(UNDEFINED as i64);
                    if let Some(error) = refused {
                        return result.with_error_code(error.code());
                    }
                    let Some(partition) = topic.as_ref().and_then(|t| t.partition(p.partition))
                    else {
                        return result
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    if p.current_leader_epoch != UNDEFINED {
                        if p.current_leader_epoch < LEADER_EPOCH {
                            return result.with_error_code(ResponseError::FencedLeaderEpoch.code());
                        }
                        if p.current_leader_epoch > LEADER_EPOCH {
                            return result
                                .with_error_code(ResponseError::UnknownLeaderEpoch.code());
                        }
                    }
                    let log = &partition.log;
                    match p.leader_epoch {
                        LEADER_EPOCH => result
                            .with_leader_epoch(LEADER_EPOCH)
                            .with_end_offset(log.log_end_offset()),
                        UNDEFINED => result,
                        epoch if epoch > LEADER_EPOCH => result,
                        older => result
                            .with_leader_epoch(older)
                            .with_end_offset(log.log_start_offset()),
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
