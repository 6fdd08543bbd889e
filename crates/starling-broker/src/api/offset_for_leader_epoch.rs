//! OffsetForLeaderEpoch: the end offset of a leader epoch, which consumers use to validate
//! their position after a leader change (KIP-320), answered as Kafka's leader-epoch cache
//! (`endOffsetFor`) answers:
//! - the current epoch: (it, log end offset);
//! - an epoch above it: no such epoch and none after it, (-1, -1) with no error;
//! - -1 (undefined): (-1, -1);
//! - an older epoch: the largest epoch at or below it that wrote here and the offset where the
//!   next began; below every such epoch, (that epoch, the log start offset).
//!
//! An embedded partition has had one leader, this node, at epoch 0 (what Metadata and
//! ListOffsets advertise), so an older epoch is always below the first. A PostgreSQL partition
//! is at the epoch of its lease, and every stored batch carries the epoch it was written at.
//!
//! A `current_leader_epoch` other than -1 is checked first, as Kafka's `Partition` does: below
//! the partition's is FENCED_LEADER_EPOCH, above it UNKNOWN_LEADER_EPOCH. A partition the
//! broker does not have is UNKNOWN_TOPIC_OR_PARTITION; one it does not lead,
//! NOT_LEADER_OR_FOLLOWER.

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use kafka_protocol::ResponseError;

use starling_acl::{AclOperation, ResourceType};

use super::RequestContext;
use crate::topics::Partition;
use crate::Broker;

/// Kafka's "no epoch" / "no offset".
const UNDEFINED: i32 = -1;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    // Kafka's rule: a follower (replica id set) needs CLUSTER_ACTION on the cluster, or every
    // partition is CLUSTER_AUTHORIZATION_FAILED; a consumer needs DESCRIBE on each topic.
    let cluster_refused =
        request.replica_id.0 >= 0 && !ctx.authorize_cluster(broker, AclOperation::ClusterAction);
    let mut topics = Vec::new();
    for t in request.topics {
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
        let mut partitions = Vec::new();
        for p in t.partitions {
            let result = EpochEndOffset::default()
                .with_partition(p.partition)
                .with_leader_epoch(UNDEFINED)
                .with_end_offset(UNDEFINED as i64);
            let answered = match refused {
                Some(error) => result.with_error_code(error.code()),
                None => match topic.as_ref().and_then(|t| t.partition(p.partition)) {
                    None => result.with_error_code(ResponseError::UnknownTopicOrPartition.code()),
                    Some(partition) => {
                        end_offset(partition, p.current_leader_epoch, p.leader_epoch, result).await
                    }
                },
            };
            partitions.push(answered);
        }
        topics.push(
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(partitions),
        );
    }
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}

/// One partition's answer (see the module docs), filled into `result`.
async fn end_offset(
    partition: &Partition,
    current_leader_epoch: i32,
    requested: i32,
    result: EpochEndOffset,
) -> EpochEndOffset {
    if let Some(error) = super::fetch::leader_epoch_error(partition, current_leader_epoch) {
        return result.with_error_code(error.code());
    }
    let log = &partition.log;
    let Some(current) = log.leader_epoch() else {
        return result.with_error_code(ResponseError::NotLeaderOrFollower.code());
    };
    match requested {
        UNDEFINED => result,
        epoch if epoch == current => result
            .with_leader_epoch(current)
            .with_end_offset(log.log_end_offset()),
        epoch if epoch > current => result,
        older => match log.earlier_epoch_end(older).await {
            Ok(Some((epoch, end))) => result.with_leader_epoch(epoch).with_end_offset(end),
            // Below every epoch that wrote here: where the log begins.
            Ok(None) => result
                .with_leader_epoch(older)
                .with_end_offset(log.log_start_offset()),
            Err(e) => result.with_error_code(e.code().code()),
        },
    }
}
