//! DescribeProducers (v0, KIP-664): for each requested partition, the producers its log
//! remembers — producer id, epoch, the sequence of its last batch (-1 when none is
//! remembered), its last timestamp, and the first offset of its open transaction there (-1 when
//! none is open), so a transaction holding a partition's last stable offset can be traced to
//! its producer. The coordinator epoch is -1: Starling's partitions do not keep the one in the
//! markers (Kafka's `ProducerStateEntry.coordinatorEpoch`). A partition the broker does not have
//! gets UNKNOWN_TOPIC_OR_PARTITION.

use std::sync::Arc;

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, TopicName};
use kafka_protocol::ResponseError;
use starling_log::producer_state::ActiveProducer;

use starling_acl::{AclOperation, ResourceType};

use super::RequestContext;
use crate::topics::Partition;
use crate::Broker;

/// The coordinator epoch reported for every producer.
const NO_COORDINATOR_EPOCH: i32 = -1;

/// A requested partition: its index and, if the broker has it, the partition.
type Wanted = (i32, Option<Arc<Partition>>);

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    request: DescribeProducersRequest,
) -> DescribeProducersResponse {
    // Kafka's rule: READ on the topic, checked before whether it exists.
    let wanted: Vec<(TopicName, bool, Vec<Wanted>)> = request
        .topics
        .iter()
        .map(|t| {
            let denied = !ctx.authorize(
                broker,
                AclOperation::Read,
                ResourceType::Topic,
                t.name.0.as_str(),
            );
            let topic = broker.topics.get(t.name.0.as_str()).filter(|_| !denied);
            let partitions = t
                .partition_indexes
                .iter()
                .map(|&p| (p, topic.as_ref().and_then(|t| t.partition(p)).cloned()))
                .collect();
            (t.name.clone(), denied, partitions)
        })
        .collect();
    // Reading a log's producers takes its writer lock, which an append holds while it writes
    // (and fsyncs): that wait belongs on a blocking thread.
    let answer = tokio::task::spawn_blocking(move || {
        wanted
            .into_iter()
            .map(|(name, denied, partitions)| {
                let partitions = partitions
                    .into_iter()
                    .map(|(index, partition)| {
                        if denied {
                            return PartitionResponse::default()
                                .with_partition_index(index)
                                .with_error_code(ResponseError::TopicAuthorizationFailed.code());
                        }
                        let producers = partition.map(|p| p.log.active_producers());
                        partition_response(index, producers)
                    })
                    .collect();
                TopicResponse::default()
                    .with_name(name)
                    .with_partitions(partitions)
            })
            .collect::<Vec<_>>()
    })
    .await;
    match answer {
        Ok(topics) => DescribeProducersResponse::default().with_topics(topics),
        Err(e) => {
            tracing::error!(error = %e, "DescribeProducers: reading the producers failed");
            let failed = |index| {
                PartitionResponse::default()
                    .with_partition_index(index)
                    .with_error_code(ResponseError::UnknownServerError.code())
            };
            DescribeProducersResponse::default().with_topics(
                request
                    .topics
                    .into_iter()
                    .map(|t| {
                        let partitions = t.partition_indexes.iter().map(|&p| failed(p)).collect();
                        TopicResponse::default()
                            .with_name(t.name)
                            .with_partitions(partitions)
                    })
                    .collect(),
            )
        }
    }
}

/// One partition's answer: its producers, or UNKNOWN_TOPIC_OR_PARTITION for `None`.
fn partition_response(index: i32, producers: Option<Vec<ActiveProducer>>) -> PartitionResponse {
    let response = PartitionResponse::default().with_partition_index(index);
    let Some(producers) = producers else {
        return response.with_error_code(ResponseError::UnknownTopicOrPartition.code());
    };
    response.with_active_producers(
        producers
            .iter()
            .map(|p| {
                ProducerState::default()
                    .with_producer_id(p.producer_id.into())
                    .with_producer_epoch(i32::from(p.epoch))
                    .with_last_sequence(p.last_sequence)
                    .with_last_timestamp(p.last_timestamp)
                    .with_coordinator_epoch(NO_COORDINATOR_EPOCH)
                    .with_current_txn_start_offset(p.current_txn_start_offset.unwrap_or(-1))
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producers_are_reported_with_their_transaction_start_or_minus_one() {
        let producers = vec![
            ActiveProducer {
                producer_id: 4,
                epoch: 2,
                last_sequence: 9,
                last_timestamp: 1_234,
                current_txn_start_offset: Some(17),
            },
            ActiveProducer {
                producer_id: 5,
                epoch: 0,
                last_sequence: -1,
                last_timestamp: 99,
                current_txn_start_offset: None,
            },
        ];
        let r = partition_response(3, Some(producers));
        assert_eq!((r.partition_index, r.error_code), (3, 0));
        let got: Vec<(i64, i32, i32, i64, i32, i64)> = r
            .active_producers
            .iter()
            .map(|p| {
                (
                    p.producer_id.0,
                    p.producer_epoch,
                    p.last_sequence,
                    p.last_timestamp,
                    p.coordinator_epoch,
                    p.current_txn_start_offset,
                )
            })
            .collect();
        assert_eq!(got, vec![(4, 2, 9, 1_234, -1, 17), (5, 0, -1, 99, -1, -1)]);
    }

    #[test]
    fn a_partition_the_broker_does_not_have_is_unknown() {
        let r = partition_response(7, None);
        assert_eq!(r.partition_index, 7);
        assert_eq!(r.error_code, ResponseError::UnknownTopicOrPartition.code());
        assert!(r.active_producers.is_empty());
    }
}
