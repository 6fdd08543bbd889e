//! DescribeTransactions (v0, KIP-664): each transactional id's state as its coordinator holds
//! it — Kafka's state name, producer id and epoch, timeout, when the current (or last)
//! transaction began, and the partitions of the open one. As in Kafka's coordinator, an id it
//! does not know gets TRANSACTIONAL_ID_NOT_FOUND and an empty id INVALID_REQUEST; while the
//! coordinator's state cannot be loaded every id gets COORDINATOR_NOT_AVAILABLE.

use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use starling_txn::TransactionValue;

use starling_acl::{AclOperation, ResourceType};

use super::RequestContext;
use crate::Broker;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let ids: Vec<String> = request
        .transactional_ids
        .iter()
        .map(|id| id.0.to_string())
        .collect();
    let found = broker.transactions.describe(&ids).await;
    let states = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            // Kafka's rule: DESCRIBE on the transactional id; of its partitions, only those of
            // topics the client may DESCRIBE are shown.
            let answer = match &found {
                _ if !ctx.authorize(
                    broker,
                    AclOperation::Describe,
                    ResourceType::TransactionalId,
                    id,
                ) =>
                {
                    Err(ResponseError::TransactionalIdAuthorizationFailed)
                }
                _ if id.is_empty() => Err(ResponseError::InvalidRequest),
                Ok(values) => values[i]
                    .as_ref()
                    .ok_or(ResponseError::TransactionalIdNotFound),
                Err(failure) => Err(failure.error(true)),
            };
            let mut entry = describe(id, answer);
            entry.topics.retain(|t| {
                ctx.authorize(
                    broker,
                    AclOperation::Describe,
                    ResourceType::Topic,
                    t.topic.0.as_str(),
                )
            });
            entry
        })
        .collect();
    DescribeTransactionsResponse::default().with_transaction_states(states)
}

/// One id's entry: its state, or the error (the other fields at their defaults).
fn describe(id: &str, answer: Result<&TransactionValue, ResponseError>) -> TransactionState {
    let entry = TransactionState::default()
        .with_transactional_id(StrBytes::from_string(id.to_string()).into());
    let value = match answer {
        Ok(value) => value,
        Err(e) => return entry.with_error_code(e.code()),
    };
    // The partitions are sorted by topic, then partition: one entry per topic.
    let mut topics: Vec<TopicData> = Vec::new();
    for tp in &value.partitions {
        match topics.last_mut() {
            Some(t) if t.topic.0.as_str() == tp.topic => t.partitions.push(tp.partition),
            _ => topics.push(
                TopicData::default()
                    .with_topic(TopicName(StrBytes::from_string(tp.topic.clone())))
                    .with_partitions(vec![tp.partition]),
            ),
        }
    }
    entry
        .with_transaction_state(StrBytes::from_static_str(value.state.name()))
        .with_transaction_timeout_ms(value.timeout_ms)
        .with_transaction_start_time_ms(value.start_ms)
        .with_producer_id(value.producer_id.into())
        .with_producer_epoch(value.producer_epoch)
        .with_topics(topics)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use starling_txn::{TopicPartition, TxnState};

    use super::*;

    fn ongoing() -> TransactionValue {
        TransactionValue {
            producer_id: 42,
            last_producer_id: -1,
            producer_epoch: 3,
            last_producer_epoch: -1,
            timeout_ms: 60_000,
            state: TxnState::Ongoing,
            partitions: [("b", 0), ("a", 2), ("a", 0)]
                .into_iter()
                .map(|(t, p)| TopicPartition::new(t, p))
                .collect(),
            groups: BTreeSet::new(),
            start_ms: 1_000,
            last_update_ms: 1_500,
        }
    }

    #[test]
    fn a_known_id_shows_its_state_producer_and_partitions_by_topic() {
        let entry = describe("app", Ok(&ongoing()));
        assert_eq!(entry.error_code, 0);
        assert_eq!(entry.transactional_id.0.as_str(), "app");
        assert_eq!(entry.transaction_state.as_str(), "Ongoing");
        assert_eq!(
            (entry.producer_id.0, entry.producer_epoch),
            (42, 3),
            "{entry:?}"
        );
        assert_eq!(entry.transaction_timeout_ms, 60_000);
        assert_eq!(entry.transaction_start_time_ms, 1_000);
        let topics: Vec<(&str, Vec<i32>)> = entry
            .topics
            .iter()
            .map(|t| (t.topic.0.as_str(), t.partitions.clone()))
            .collect();
        assert_eq!(topics, vec![("a", vec![0, 2]), ("b", vec![0])]);
    }

    #[test]
    fn an_unknown_id_carries_only_its_error() {
        let entry = describe("gone", Err(ResponseError::TransactionalIdNotFound));
        assert_eq!(
            entry.error_code,
            ResponseError::TransactionalIdNotFound.code()
        );
        assert_eq!(entry.transactional_id.0.as_str(), "gone");
        assert!(entry.topics.is_empty());
        assert_eq!(entry.transaction_state.as_str(), "");
    }
}
