//! DeleteRecords: moves each partition's log start offset up to the offset asked for (-1: the
//! high watermark), so nothing below it is served again, and answers the new log start (the
//! "low watermark"). An offset past the high watermark, or negative other than -1, is
//! OFFSET_OUT_OF_RANGE; a partition the broker does not have is UNKNOWN_TOPIC_OR_PARTITION.
//! On one node nothing is waited for: `timeout_ms` does not matter.

use std::sync::Arc;

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use kafka_protocol::ResponseError;

use starling_acl::{AclOperation, ResourceType};

use super::RequestContext;
use crate::partition_store::{PartitionStore, StoreError};
use crate::topics::Partition;
use crate::{now_ms, Broker};

/// DeleteRecords' "up to the high watermark".
const HIGH_WATERMARK: i64 = -1;

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    // Kafka's rule: DELETE on the topic, checked before whether it exists.
    let denied: std::collections::HashSet<String> = request
        .topics
        .iter()
        .map(|t| t.name.to_string())
        .filter(|name| !ctx.authorize(broker, AclOperation::Delete, ResourceType::Topic, name))
        .collect();
    let now = now_ms();
    let mut topics = Vec::new();
    for t in request.topics {
        let refused = denied.contains(t.name.as_str());
        let topic = broker.topics.get(t.name.as_str());
        let mut partitions = Vec::new();
        for p in t.partitions {
            let result = DeleteRecordsPartitionResult::default()
                .with_partition_index(p.partition_index)
                .with_low_watermark(-1);
            let answered = if refused {
                result.with_error_code(ResponseError::TopicAuthorizationFailed.code())
            } else {
                match topic
                    .as_ref()
                    .and_then(|topic| topic.partition(p.partition_index))
                {
                    None => result.with_error_code(ResponseError::UnknownTopicOrPartition.code()),
                    Some(partition) => match delete(partition, p.offset, now).await {
                        Ok(start) => result.with_low_watermark(start),
                        Err(e) => {
                            if e.code() == ResponseError::KafkaStorageError {
                                tracing::error!(topic = %partition.topic, partition = partition.index, error = %e, "delete records");
                            }
                            result.with_error_code(e.code().code())
                        }
                    },
                }
            };
            partitions.push(answered);
        }
        topics.push(
            DeleteRecordsTopicResult::default()
                .with_name(t.name)
                .with_partitions(partitions),
        );
    }
    DeleteRecordsResponse::default().with_topics(topics)
}

/// Moves one partition's log start; the embedded log's file work on a blocking thread.
async fn delete(partition: &Arc<Partition>, offset: i64, now: i64) -> Result<i64, StoreError> {
    let offset = if offset == HIGH_WATERMARK {
        partition.log.log_end_offset()
    } else {
        offset
    };
    match &partition.log {
        PartitionStore::Embedded(_) => {
            let p = partition.clone();
            tokio::task::spawn_blocking(move || {
                // The embedded arm does not wait on anything.
                futures::executor::block_on(p.log.delete_records_before(offset, now))
            })
            .await
            .map_err(|e| StoreError::Storage(e.to_string()))?
        }
        PartitionStore::Postgres(_) => partition.log.delete_records_before(offset, now).await,
    }
}
