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
use starling_log::DeleteError;

use starling_acl::{AclOperation, ResourceType};

use super::RequestContext;
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
    let b = broker.clone();
    match tokio::task::spawn_blocking(move || delete_all(&b, request, &denied)).await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(error = %e, "delete records task failed");
            DeleteRecordsResponse::default()
        }
    }
}

fn delete_all(
    broker: &Broker,
    request: DeleteRecordsRequest,
    denied: &std::collections::HashSet<String>,
) -> DeleteRecordsResponse {
    let now = now_ms();
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let refused = denied.contains(t.name.as_str());
            let topic = broker.topics.get(t.name.as_str());
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let result = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index)
                        .with_low_watermark(-1);
                    if refused {
                        return result
                            .with_error_code(ResponseError::TopicAuthorizationFailed.code());
                    }
                    let Some(partition) = topic
                        .as_ref()
                        .and_then(|topic| topic.partition(p.partition_index))
                    else {
                        return result
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    let log = &partition.log;
                    let offset = if p.offset == HIGH_WATERMARK {
                        log.log_end_offset()
                    } else {
                        p.offset
                    };
                    match log.delete_records_before(offset, now) {
                        Ok(start) => result.with_low_watermark(start),
                        Err(DeleteError::OffsetOutOfRange { .. }) => {
                            result.with_error_code(ResponseError::OffsetOutOfRange.code())
                        }
                        Err(DeleteError::Io(e)) => {
                            tracing::error!(topic = %partition.topic, partition = partition.index, error = %e, "delete records");
                            result.with_error_code(ResponseError::KafkaStorageError.code())
                        }
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}
