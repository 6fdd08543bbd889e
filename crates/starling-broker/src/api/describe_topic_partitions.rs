//! DescribeTopicPartitions (KIP-966): topics and their partitions a page at a time, as Kafka's
//! `DescribeTopicPartitionsRequestHandler` and `KRaftMetadataCache` answer on one node. Every
//! partition is led by this node (at its leader epoch: 0 embedded, its lease's in PostgreSQL;
//! LEADER_NOT_AVAILABLE while a PostgreSQL partition's lease is being taken) with replicas and
//! ISR `[node]`, no offline
//! replicas, and empty eligible-leader-replica lists.
//!
//! No topics asked means every topic; the topics (from the cursor's topic on) are answered in
//! name order, unknown ones with UNKNOWN_TOPIC_OR_PARTITION (INVALID_TOPIC_EXCEPTION for an
//! invalid name) unless every topic was asked for. At most `min(2000, response_partition_limit)`
//! partitions are answered; where the limit cuts a topic, `next_cursor` names the topic and
//! partition to continue from (a topic that got no room is named at partition 0). A cursor whose
//! topic is not among those asked for, or whose partition index is negative, makes the request
//! INVALID_REQUEST for every topic asked for.

use std::collections::BTreeSet;

use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use starling_acl::{AclOperation, ResourceType};

use super::RequestContext;
use crate::topics::validate_topic_name;
use crate::Broker;

/// Kafka's `max.request.partition.size.limit` default: the most partitions one answer holds.
const MAX_PARTITIONS: i32 = 2000;

/// Kafka's `AclEntry.supportedOperations(TOPIC)` as a bit field of `AclOperation` codes: READ
/// (3), WRITE (4), CREATE (5), DELETE (6), ALTER (7), DESCRIBE (8), DESCRIBE_CONFIGS (10),
/// ALTER_CONFIGS (11); with no authorizer every answered topic carries all of them (with one,
/// those the client may perform, and topics it may not DESCRIBE are hidden or refused).
pub const TOPIC_OPERATIONS: i32 =
    1 << 3 | 1 << 4 | 1 << 5 | 1 << 6 | 1 << 7 | 1 << 8 | 1 << 10 | 1 << 11;

pub fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    request: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let fetch_all = request.topics.is_empty();
    let cursor_topic = request
        .cursor
        .as_ref()
        .map(|c| c.topic_name.to_string())
        .unwrap_or_default();
    let may_describe =
        |name: &str| ctx.authorize(broker, AclOperation::Describe, ResourceType::Topic, name);
    // Listing every topic lists only those the client may DESCRIBE (Kafka's handler).
    let asked: Vec<String> = if fetch_all {
        broker
            .topics
            .all()
            .iter()
            .filter(|t| may_describe(&t.name))
            .map(|t| t.name.clone())
            .collect()
    } else {
        request.topics.iter().map(|t| t.name.to_string()).collect()
    };
    let topics: BTreeSet<String> = asked
        .into_iter()
        .filter(|name| *name >= cursor_topic)
        .collect();
    if let Some(cursor) = &request.cursor {
        if cursor.partition_index < 0 || (!fetch_all && !topics.contains(&cursor_topic)) {
            return invalid_request(&request);
        }
    }
    let start_of = |name: &str| match &request.cursor {
        Some(cursor) if cursor.topic_name.as_str() == name => cursor.partition_index,
        _ => 0,
    };
    let node = broker.config.node_id;
    let mut remaining = MAX_PARTITIONS.min(request.response_partition_limit);
    let mut response = DescribeTopicPartitionsResponse::default();
    for name in topics {
        if remaining <= 0 {
            if remaining == 0 {
                response.next_cursor = Some(
                    Cursor::default()
                        .with_topic_name(topic_name(&name))
                        .with_partition_index(0),
                );
            }
            break;
        }
        // A named topic the client may not DESCRIBE: refused whether or not it exists.
        if !fetch_all && !may_describe(&name) {
            response.topics.push(
                DescribeTopicPartitionsResponseTopic::default()
                    .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                    .with_name(Some(topic_name(&name)))
                    .with_topic_id(Uuid::nil())
                    .with_topic_authorized_operations(0),
            );
            continue;
        }
        let operations = ctx.authorized_operations(broker, ResourceType::Topic, &name);
        let Some(topic) = broker.topics.get(&name) else {
            if !fetch_all {
                let error = match validate_topic_name(&name) {
                    Ok(()) => ResponseError::UnknownTopicOrPartition,
                    Err(_) => ResponseError::InvalidTopicException,
                };
                response.topics.push(
                    DescribeTopicPartitionsResponseTopic::default()
                        .with_error_code(error.code())
                        .with_name(Some(topic_name(&name)))
                        .with_topic_id(Uuid::nil())
                        .with_topic_authorized_operations(operations),
                );
            }
            continue;
        };
        let count = topic.partitions.len() as i32;
        let start = start_of(&name);
        let upper = count.min(start.saturating_add(remaining));
        let partitions: Vec<_> = (start..upper)
            .filter_map(|index| topic.partition(index))
            .map(|p| {
                let leader = crate::cluster::partition_leader(broker, topic.id, p);
                let replicas = vec![BrokerId(leader.map_or(node, |(id, _)| id))];
                DescribeTopicPartitionsResponsePartition::default()
                    .with_partition_index(p.index)
                    .with_error_code(match leader {
                        Some(_) => 0,
                        None => ResponseError::LeaderNotAvailable.code(),
                    })
                    .with_leader_id(BrokerId(leader.map_or(-1, |(id, _)| id)))
                    .with_leader_epoch(leader.map_or(-1, |(_, epoch)| epoch))
                    .with_replica_nodes(replicas.clone())
                    .with_isr_nodes(replicas)
                    .with_eligible_leader_replicas(Some(vec![]))
                    .with_last_known_elr(Some(vec![]))
                    .with_offline_replicas(vec![])
            })
            .collect();
        let answered = partitions.len() as i32;
        response.topics.push(
            DescribeTopicPartitionsResponseTopic::default()
                .with_name(Some(topic_name(&name)))
                .with_topic_id(topic.id)
                .with_partitions(partitions)
                .with_topic_authorized_operations(operations),
        );
        if upper < count {
            response.next_cursor = Some(
                Cursor::default()
                    .with_topic_name(topic_name(&name))
                    .with_partition_index(upper),
            );
            break;
        }
        remaining -= answered;
    }
    response
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// Kafka's error response: every topic asked for, with the error and nothing else.
fn invalid_request(request: &DescribeTopicPartitionsRequest) -> DescribeTopicPartitionsResponse {
    DescribeTopicPartitionsResponse::default().with_topics(
        request
            .topics
            .iter()
            .map(|t| {
                DescribeTopicPartitionsResponseTopic::default()
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_name(Some(t.name.clone()))
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_operations_are_kafkas_eight() {
        assert_eq!(TOPIC_OPERATIONS, 3576);
        assert_eq!(TOPIC_OPERATIONS.count_ones(), 8);
    }
}
