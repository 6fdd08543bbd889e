//! TxnOffsetCommit: a transactional producer's consumer offsets, pending in the group until
//! its transaction ends. Checked here first: the group must be part of the producer's open
//! transaction (AddOffsetsToTxn came first; otherwise Kafka's verification error,
//! INVALID_TXN_STATE, or the producer's fencing error) and partitions this broker does not
//! have get UNKNOWN_TOPIC_OR_PARTITION. The rest goes to the group coordinator, which checks
//! the member and generation (KIP-447) and keeps the offsets pending.

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{ApiKey, TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use kafka_protocol::ResponseError;
use starling_group::{GroupRequest, GroupResponse};
use starling_txn::ProducerIdAndEpoch;

use starling_acl::{AclOperation, ResourceType};

use super::group::{call_group, respond_group};
use super::{respond, Reply, RequestContext};
use crate::Broker;

/// The first version that knows PRODUCER_FENCED.
const PRODUCER_FENCED_SINCE: i16 = 3;

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    api_key: ApiKey,
    mut request: TxnOffsetCommitRequest,
) -> Reply {
    let asked: Vec<(kafka_protocol::messages::TopicName, Vec<i32>)> = request
        .topics
        .iter()
        .map(|t| {
            let partitions = t.partitions.iter().map(|p| p.partition_index).collect();
            (t.name.clone(), partitions)
        })
        .collect();
    // Kafka's rule: WRITE on the transactional id, READ on the group (either refusing every
    // partition), then READ on each topic, checked before whether the topic exists.
    let refused_whole = if !ctx.authorize(
        broker,
        AclOperation::Write,
        ResourceType::TransactionalId,
        request.transactional_id.as_str(),
    ) {
        Some(ResponseError::TransactionalIdAuthorizationFailed)
    } else if !ctx.authorize(
        broker,
        AclOperation::Read,
        ResourceType::Group,
        request.group_id.as_str(),
    ) {
        Some(ResponseError::GroupAuthorizationFailed)
    } else {
        None
    };
    let unreadable: std::collections::HashSet<String> = request
        .topics
        .iter()
        .map(|t| t.name.to_string())
        .filter(|name| !ctx.authorize(broker, AclOperation::Read, ResourceType::Topic, name))
        .collect();
    let producer = ProducerIdAndEpoch::new(request.producer_id.0, request.producer_epoch);
    let verified = match refused_whole {
        Some(error) => Err(error),
        None => broker
            .transactions
            .verify_group(producer, request.group_id.as_str())
            .await
            .map_err(|f| f.error(ctx.api_version >= PRODUCER_FENCED_SINCE)),
    };
    // (topic, partition) → code, for what the coordinator answered; the rest fall back.
    let (codes, fallback, throttle) = match verified {
        Err(error) => (HashMap::new(), error, 0),
        Ok(()) => {
            for topic in &mut request.topics {
                let known = broker
                    .topics
                    .get(topic.name.as_str())
                    .filter(|_| !unreadable.contains(topic.name.as_str()));
                topic.partitions.retain(|p| {
                    known
                        .as_ref()
                        .is_some_and(|t| t.partition(p.partition_index).is_some())
                });
            }
            request.topics.retain(|t| !t.partitions.is_empty());
            let answered = if request.topics.is_empty() {
                TxnOffsetCommitResponse::default()
            } else {
                match call_group(broker, ctx, GroupRequest::TxnOffsetCommit(request)).await {
                    Ok(GroupResponse::TxnOffsetCommit(r)) => r,
                    Ok(other) => return respond_group(broker, api_key, ctx, other),
                    Err(e) => return Reply::Close(format!("{api_key:?}: {e}")),
                }
            };
            let codes: HashMap<(String, i32), i16> = answered
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions
                        .iter()
                        .map(move |p| ((t.name.to_string(), p.partition_index), p.error_code))
                })
                .collect();
            (
                codes,
                ResponseError::UnknownTopicOrPartition,
                answered.throttle_time_ms,
            )
        }
    };
    let topics = asked
        .into_iter()
        .map(|(name, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|index| {
                    let code = if refused_whole.is_none() && unreadable.contains(name.as_str()) {
                        ResponseError::TopicAuthorizationFailed.code()
                    } else {
                        codes
                            .get(&(name.to_string(), index))
                            .copied()
                            .unwrap_or(fallback.code())
                    };
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(index)
                        .with_error_code(code)
                })
                .collect();
            TxnOffsetCommitResponseTopic::default()
                .with_name(name)
                .with_partitions(partitions)
        })
        .collect();
    let response = TxnOffsetCommitResponse::default()
        .with_throttle_time_ms(throttle)
        .with_topics(topics);
    respond(broker, api_key, ctx, &response)
}
