//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), earliest local (-4, -5: the same
//! as earliest, as nothing is tiered) and by timestamp — the first offset whose batch has a
//! timestamp at or after the one asked for. At isolation level read_committed (v2+) "latest"
//! is the last stable offset and a timestamp lookup finds nothing at or past it, as in Kafka.

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::ResponseError;

use starling_acl::{AclOperation, ResourceType};

use super::RequestContext;
use crate::partition_store::StoreError;
use crate::topics::Partition;
use crate::Broker;

pub const LATEST: i64 = -1;
pub const EARLIEST: i64 = -2;
pub const MAX_TIMESTAMP: i64 = -3;
pub const EARLIEST_LOCAL: i64 = -4;
pub const EARLIEST_PENDING_UPLOAD: i64 = -5;
/// The isolation level that sees only decided transactions.
const READ_COMMITTED: i8 = 1;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    request: ListOffsetsRequest,
) -> ListOffsetsResponse {
    let committed = ctx.api_version >= 2 && request.isolation_level == READ_COMMITTED;
    let mut response = ListOffsetsResponse::default();
    for t in request.topics {
        // Kafka's rule: DESCRIBE on the topic, checked before whether it exists.
        let denied = !ctx.authorize(
            broker,
            AclOperation::Describe,
            ResourceType::Topic,
            t.name.0.as_str(),
        );
        let topic = broker.topics.get(t.name.0.as_str());
        let mut topic_response = ListOffsetsTopicResponse::default().with_name(t.name.clone());
        for p in t.partitions {
            let mut part = ListOffsetsPartitionResponse::default()
                .with_partition_index(p.partition_index)
                .with_timestamp(-1)
                .with_offset(-1);
            match topic
                .as_ref()
                .and_then(|topic| topic.partition(p.partition_index))
            {
                _ if denied => part.error_code = ResponseError::TopicAuthorizationFailed.code(),
                None => part.error_code = ResponseError::UnknownTopicOrPartition.code(),
                Some(partition) => {
                    if let Some(error) =
                        super::fetch::leader_epoch_error(partition, p.current_leader_epoch)
                    {
                        part.error_code = error.code();
                    } else {
                        match lookup(partition, p.timestamp, committed).await {
                            Ok((offset, timestamp)) => {
                                part.offset = offset;
                                part.timestamp = timestamp;
                            }
                            Err(code) => part.error_code = code.code(),
                        }
                    }
                    if ctx.api_version >= 4 {
                        part.leader_epoch = partition.log.leader_epoch().unwrap_or(-1);
                    }
                }
            }
            topic_response.partitions.push(part);
        }
        response.topics.push(topic_response);
    }
    response
}

/// (offset, timestamp) for one partition; (-1, -1) when no offset matches. With `committed`,
/// nothing at or past the last stable offset is answered.
async fn lookup(
    partition: &Partition,
    timestamp: i64,
    committed: bool,
) -> Result<(i64, i64), ResponseError> {
    let log = &partition.log;
    let stable = committed.then(|| log.last_stable_offset());
    let storage = |e: StoreError| {
        if e.code() == ResponseError::KafkaStorageError {
            tracing::error!(topic = %partition.topic, partition = partition.index, error = %e, "list offsets");
        }
        e.code()
    };
    match timestamp {
        LATEST => Ok((stable.unwrap_or_else(|| log.log_end_offset()), -1)),
        EARLIEST | EARLIEST_LOCAL | EARLIEST_PENDING_UPLOAD => Ok((log.log_start_offset(), -1)),
        MAX_TIMESTAMP => Ok(log
            .max_timestamp()
            .await
            .map_err(storage)?
            .map(|(ts, off)| (off, ts))
            .unwrap_or((-1, -1))),
        ts if ts >= 0 => Ok(log
            .offset_for_timestamp(ts)
            .await
            .map_err(storage)?
            .filter(|&(offset, _)| stable.is_none_or(|lso| offset < lso))
            .unwrap_or((-1, -1))),
        _ => Err(ResponseError::InvalidRequest),
    }
}
