//! AddPartitionsToTxn (v0–3, the clients' versions): a transactional producer names the
//! partitions it is about to write to. A partition this broker does not have gets
//! UNKNOWN_TOPIC_OR_PARTITION and the others OPERATION_NOT_ATTEMPTED, as in Kafka; otherwise the
//! transaction coordinator's answer goes to every partition.

use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};
use kafka_protocol::ResponseError;
use starling_txn::{ProducerIdAndEpoch, TopicPartition, TxnRequest};

use starling_acl::{AclOperation, ResourceType};

use super::RequestContext;
use crate::Broker;

/// The first version that knows PRODUCER_FENCED (KIP-588).
const PRODUCER_FENCED_SINCE: i16 = 2;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    request: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    let partitions: Vec<TopicPartition> = request
        .v3_and_below_topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|&p| TopicPartition::new(t.name.as_str(), p))
        })
        .collect();
    // Kafka's rule: WRITE on the transactional id (every partition refused without it), then
    // WRITE on each topic, checked before whether the topic exists.
    let id_allowed = ctx.authorize(
        broker,
        AclOperation::Write,
        ResourceType::TransactionalId,
        request.v3_and_below_transactional_id.as_str(),
    );
    let writable = |topic: &str| {
        id_allowed && ctx.authorize(broker, AclOperation::Write, ResourceType::Topic, topic)
    };
    let exists = |tp: &TopicPartition| {
        writable(&tp.topic)
            && broker
                .topics
                .get(&tp.topic)
                .is_some_and(|t| t.partition(tp.partition).is_some())
    };
    let all_known = partitions.iter().all(exists);
    let outcome = if all_known {
        broker
            .transactions
            .call(TxnRequest::AddPartitions {
                transactional_id: request.v3_and_below_transactional_id.to_string(),
                producer: ProducerIdAndEpoch::new(
                    request.v3_and_below_producer_id.0,
                    request.v3_and_below_producer_epoch,
                ),
                partitions,
            })
            .await
            .err()
            .map(|f| f.error(ctx.api_version >= PRODUCER_FENCED_SINCE))
    } else {
        None
    };
    let code = |topic: &str, partition: i32| -> i16 {
        if !id_allowed {
            ResponseError::TransactionalIdAuthorizationFailed.code()
        } else if !writable(topic) {
            ResponseError::TopicAuthorizationFailed.code()
        } else if all_known {
            outcome.map_or(0, |e| e.code())
        } else if exists(&TopicPartition::new(topic, partition)) {
            ResponseError::OperationNotAttempted.code()
        } else {
            ResponseError::UnknownTopicOrPartition.code()
        }
    };
    let results = request
        .v3_and_below_topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|&p| {
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(p)
                        .with_partition_error_code(code(t.name.as_str(), p))
                })
                .collect();
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name.clone())
                .with_results_by_partition(partitions)
        })
        .collect();
    AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results)
}
