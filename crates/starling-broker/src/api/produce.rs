//! Produce: validate and append each partition's record batches to its log, then answer with
//! the assigned base offsets. acks 0, 1 and -1 are honoured (on one node, "all in-sync
//! replicas" is this one, so -1 and 1 wait for the same append; a topic with
//! `min.insync.replicas` above 1 refuses acks=-1 with NOT_ENOUGH_REPLICAS, as Kafka does when
//! its in-sync replicas are too few). The appends of one request run
//! on one blocking thread, as they do file I/O (and fsync, when the flush policy says so).
//! Each partition counts the record bytes appended to it, for the per-topic metrics.
//!
//! A transactional batch that would open its producer's transaction in a partition is first
//! checked with the transaction coordinator (KIP-890's verification): the partition must have
//! been added to the producer's open transaction at that epoch. Otherwise it is refused with
//! INVALID_TXN_STATE (INVALID_PRODUCER_EPOCH for a fenced producer), so a late write from a
//! fenced or finished producer can never open a transaction no marker will close.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::BytesMut;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use starling_acl::{AclOperation, ResourceType};
use starling_log::producer_state::ProducerError;
use starling_log::{AppendError, AppendInfo};
use starling_txn::{ProducerIdAndEpoch, TopicPartition, TxnError};

use crate::partition_store::{PartitionStore, PgProduceError};
use crate::topics::Partition;
use crate::transactions::TxnFailure;

use super::RequestContext;
use crate::{now_ms, Broker};

/// What to do with a produce request's result.
pub enum Outcome {
    Respond(ProduceResponse),
    /// acks=0 and all went well: the client expects no response.
    Silent,
    /// acks=0 and something failed: Kafka closes the connection so the client notices.
    Close(String),
}

/// Kafka's error code for a failed append.
pub fn append_error_code(e: &AppendError) -> ResponseError {
    match e {
        AppendError::Corrupt(_) => ResponseError::CorruptMessage,
        AppendError::InvalidRecord { .. } => ResponseError::InvalidRecord,
        AppendError::InvalidTimestamp { .. } => ResponseError::InvalidTimestamp,
        AppendError::TooLarge { .. } => ResponseError::MessageTooLarge,
        AppendError::UnsupportedMagic(_) => ResponseError::UnsupportedForMessageFormat,
        AppendError::Io(_) => ResponseError::KafkaStorageError,
        AppendError::Producer(ProducerError::InvalidEpoch { .. }) => {
            ResponseError::InvalidProducerEpoch
        }
        AppendError::Producer(ProducerError::OutOfOrder { .. }) => {
            ResponseError::OutOfOrderSequenceNumber
        }
        AppendError::Producer(ProducerError::InvalidTxnState { .. }) => {
            ResponseError::InvalidTxnState
        }
    }
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: ProduceRequest,
) -> Outcome {
    let acks = request.acks;
    if !matches!(acks, -1..=1) {
        let response = refuse_all(request, ResponseError::InvalidRequiredAcks);
        broker
            .metrics
            .count_error_codes(ApiKey::Produce, ctx.api_version, &response);
        return Outcome::Respond(response);
    }
    // Kafka's rule: a request carrying transactional batches needs WRITE on its transactional
    // id, or the whole request is refused.
    if has_transactional_records(&request) {
        let allowed = request.transactional_id.as_ref().is_some_and(|id| {
            ctx.authorize(
                broker,
                AclOperation::Write,
                ResourceType::TransactionalId,
                id.0.as_str(),
            )
        });
        if !allowed {
            let response = refuse_all(request, ResponseError::TransactionalIdAuthorizationFailed);
            broker
                .metrics
                .count_error_codes(ApiKey::Produce, ctx.api_version, &response);
            return respond_or_close(acks, response);
        }
    }
    let mut refused = denied_topics(broker, ctx, &request);
    refused.extend(verify_transactional(broker, ctx.api_version, &request, &refused).await);
    let response = match append_all(broker, ctx.api_version, request, &refused).await {
        Ok(response) => response,
        Err(e) => return Outcome::Close(format!("produce task failed: {e}")),
    };
    // Counted whether or not the response is sent: acks=0 outcomes are real outcomes too.
    broker
        .metrics
        .count_error_codes(ApiKey::Produce, ctx.api_version, &response);
    respond_or_close(acks, response)
}

/// The outcome for `response`: sent, or (acks=0) nothing, or closing when something failed.
fn respond_or_close(acks: i16, response: ProduceResponse) -> Outcome {
    if acks != 0 {
        return Outcome::Respond(response);
    }
    let failed = response
        .responses
        .iter()
        .flat_map(|t| &t.partition_responses)
        .find(|p| p.error_code != 0);
    match failed {
        Some(p) => Outcome::Close(format!("acks=0 produce failed with error {}", p.error_code)),
        None => Outcome::Silent,
    }
}

/// Partitions refused before any append: (topic index, partition index) → error.
type Refused = HashMap<(usize, usize), ResponseError>;

/// Whether any batch of the request is transactional (Kafka's
/// `RequestUtils.hasTransactionalRecords`).
fn has_transactional_records(request: &ProduceRequest) -> bool {
    request
        .topic_data
        .iter()
        .flat_map(|t| &t.partition_data)
        .filter_map(|p| p.records.as_deref())
        .filter_map(starling_log::record_set_producer)
        .any(|(_, _, transactional)| transactional)
}

/// Partitions of topics the client may not WRITE to: TOPIC_AUTHORIZATION_FAILED. By name the
/// check comes before the existence check, so a denied client cannot probe for topics; a
/// topic id the broker does not know stays UNKNOWN_TOPIC_ID, as in Kafka.
fn denied_topics(broker: &Broker, ctx: &RequestContext, request: &ProduceRequest) -> Refused {
    let mut refused = Refused::new();
    for (t, topic_data) in request.topic_data.iter().enumerate() {
        let name = if ctx.api_version >= 13 {
            match broker.topics.get_by_id(topic_data.topic_id) {
                Some(topic) => topic.name.clone(),
                None => continue,
            }
        } else {
            topic_data.name.0.to_string()
        };
        if !ctx.authorize(broker, AclOperation::Write, ResourceType::Topic, &name) {
            for i in 0..topic_data.partition_data.len() {
                refused.insert((t, i), ResponseError::TopicAuthorizationFailed);
            }
        }
    }
    refused
}

/// The transaction coordinator's word on every transactional batch that would open its
/// producer's transaction in a partition (see the module docs); partitions `already` refused
/// are skipped.
async fn verify_transactional(
    broker: &Broker,
    version: i16,
    request: &ProduceRequest,
    already: &Refused,
) -> Refused {
    let mut refused = Refused::new();
    for (t, topic_data) in request.topic_data.iter().enumerate() {
        let topic = if version >= 13 {
            broker.topics.get_by_id(topic_data.topic_id)
        } else {
            broker.topics.get(topic_data.name.0.as_str())
        };
        let Some(topic) = topic else { continue };
        for (i, data) in topic_data.partition_data.iter().enumerate() {
            if already.contains_key(&(t, i)) {
                continue;
            }
            let Some(partition) = topic.partition(data.index) else {
                continue;
            };
            let producer = data
                .records
                .as_deref()
                .and_then(starling_log::record_set_producer);
            let Some((producer_id, epoch, true)) = producer else {
                continue;
            };
            if producer_id < 0 || partition.log.has_open_transaction(producer_id) {
                continue;
            }
            let verified = broker
                .transactions
                .verify_partition(
                    ProducerIdAndEpoch::new(producer_id, epoch),
                    &TopicPartition::new(topic.name.as_str(), data.index),
                )
                .await;
            let error = match verified {
                Ok(()) => continue,
                Err(TxnFailure::Refused(TxnError::ProducerFenced)) => {
                    ResponseError::InvalidProducerEpoch
                }
                Err(TxnFailure::Refused(_)) => ResponseError::InvalidTxnState,
                // Retriable, as Kafka answers when it cannot reach the coordinator.
                Err(TxnFailure::NotStored | TxnFailure::Unavailable | TxnFailure::NotHere) => {
                    ResponseError::NotEnoughReplicas
                }
            };
            refused.insert((t, i), error);
        }
    }
    refused
}

/// One partition's records to append, and where its answer goes in the response.
struct Append {
    topic: usize,
    slot: usize,
    partition: Arc<Partition>,
    records: BytesMut,
    /// The records' size, counted once appended.
    bytes: u64,
}

/// Answers every partition of the request: those refused or unknown at once, the rest by
/// appending. The embedded logs' appends run on one blocking thread (file I/O, fsync); the
/// PostgreSQL partitions' appends run concurrently, each its own transaction.
async fn append_all(
    broker: &Arc<Broker>,
    version: i16,
    request: ProduceRequest,
    refused: &Refused,
) -> Result<ProduceResponse, tokio::task::JoinError> {
    let now = now_ms();
    let acks = request.acks;
    let mut response = ProduceResponse::default();
    let mut embedded = Vec::new();
    let mut postgres = Vec::new();
    for (t, topic_data) in request.topic_data.into_iter().enumerate() {
        let topic = if version >= 13 {
            broker.topics.get_by_id(topic_data.topic_id)
        } else {
            broker.topics.get(topic_data.name.0.as_str())
        };
        let unknown = super::unknown_topic(version >= 13);
        let mut topic_response = TopicProduceResponse::default()
            .with_name(topic_data.name.clone())
            .with_topic_id(topic_data.topic_id);
        for (i, data) in topic_data.partition_data.into_iter().enumerate() {
            let mut part = unanswered_partition(data.index);
            let partition = topic.as_ref().and_then(|t| t.partition(data.index));
            match (topic.is_some(), partition) {
                _ if refused.get(&(t, i)) == Some(&ResponseError::TopicAuthorizationFailed) => {
                    part.error_code = ResponseError::TopicAuthorizationFailed.code();
                }
                (false, _) => part.error_code = unknown.code(),
                (true, None) => part.error_code = ResponseError::UnknownTopicOrPartition.code(),
                (true, Some(_)) if refused.contains_key(&(t, i)) => {
                    let error = refused[&(t, i)];
                    part.error_code = error.code();
                    part.error_message = Some(StrBytes::from_static_str(
                        "the partition is not part of the producer's open transaction",
                    ));
                }
                (true, Some(p)) if acks == -1 && p.log.config().min_insync_replicas > 1 => {
                    // One node is one in-sync replica: Kafka refuses acks=all writes when its
                    // in-sync replicas are fewer than min.insync.replicas, and so does Starling.
                    part.error_code = ResponseError::NotEnoughReplicas.code();
                    part.error_message = Some(StrBytes::from_string(format!(
                        "The size of the current ISR Set(1) is insufficient to satisfy the \
                         min.isr requirement of {} for partition {}-{}",
                        p.log.config().min_insync_replicas,
                        p.topic,
                        p.index
                    )));
                }
                (true, Some(p)) => {
                    let records = data
                        .records
                        .map(|r| BytesMut::from(&r[..]))
                        .unwrap_or_default();
                    let append = Append {
                        topic: t,
                        slot: i,
                        partition: p.clone(),
                        bytes: records.len() as u64,
                        records,
                    };
                    match p.log {
                        PartitionStore::Embedded(_) => embedded.push(append),
                        PartitionStore::Postgres(_) => postgres.push(append),
                    }
                }
            }
            topic_response.partition_responses.push(part);
        }
        response.responses.push(topic_response);
    }
    let mut outcomes: Vec<(Append, Result<AppendInfo, PgProduceError>)> = Vec::new();
    if !embedded.is_empty() {
        let appended = tokio::task::spawn_blocking(move || {
            embedded
                .into_iter()
                .map(|mut a| {
                    let log = a.partition.log.embedded().expect("an embedded partition");
                    let outcome = log.append(std::mem::take(&mut a.records), now);
                    (a, outcome.map_err(PgProduceError::Log))
                })
                .collect::<Vec<_>>()
        })
        .await?;
        outcomes.extend(appended);
    }
    let appended = futures::future::join_all(postgres.into_iter().map(|mut a| async move {
        let records = std::mem::take(&mut a.records);
        let replica = a.partition.log.postgres().expect("a PostgreSQL partition");
        let outcome = replica.append(records, now).await;
        (a, outcome)
    }))
    .await;
    outcomes.extend(appended);
    for (append, outcome) in outcomes {
        let p = &append.partition;
        let part = &mut response.responses[append.topic].partition_responses[append.slot];
        let bytes = append.bytes;
        let outcome = match outcome {
            Ok(info) => broker.metrics.log_appended(&p.topic, p.index, Ok(info)),
            Err(PgProduceError::Log(e)) => broker.metrics.log_appended(&p.topic, p.index, Err(e)),
            Err(PgProduceError::NotLeader) => {
                part.error_code = ResponseError::NotLeaderOrFollower.code();
                part.error_message = Some(StrBytes::from_static_str(
                    "this node does not lead the partition",
                ));
                continue;
            }
        };
        match outcome {
            Ok(info) => {
                part.base_offset = info.base_offset;
                part.log_append_time_ms = info.log_append_time;
                part.log_start_offset = info.log_start_offset;
                // A producer's retry of a batch already written appends nothing.
                if info.record_count > 0 {
                    p.produced_bytes.fetch_add(bytes, Ordering::Relaxed);
                    p.appended.notify_waiters();
                }
            }
            Err(e) => {
                let code = append_error_code(&e);
                tracing::debug!(topic = %p.topic, partition = p.index, error = %e, "produce refused");
                part.error_code = code.code();
                part.error_message = Some(StrBytes::from_string(e.to_string()));
                part.record_errors = record_errors(&e);
            }
        }
    }
    Ok(response)
}

/// Produce v8+ `record_errors`: the records at fault, by their index in their batch, as Kafka
/// reports an INVALID_RECORD or INVALID_TIMESTAMP (older versions do not carry them).
fn record_errors(e: &AppendError) -> Vec<BatchIndexAndErrorMessage> {
    match e {
        AppendError::InvalidRecord { record_errors, .. }
        | AppendError::InvalidTimestamp { record_errors, .. } => record_errors
            .iter()
            .map(|r| {
                BatchIndexAndErrorMessage::default()
                    .with_batch_index(r.batch_index)
                    .with_batch_index_error_message(Some(StrBytes::from_string(r.message.clone())))
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// A partition's response before (or without) an append: no offsets assigned.
fn unanswered_partition(index: i32) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1)
}

fn refuse_all(request: ProduceRequest, error: ResponseError) -> ProduceResponse {
    let mut response = ProduceResponse::default();
    for topic in request.topic_data {
        let mut t = TopicProduceResponse::default()
            .with_name(topic.name)
            .with_topic_id(topic.topic_id);
        for p in topic.partition_data {
            t.partition_responses
                .push(unanswered_partition(p.index).with_error_code(error.code()));
        }
        response.responses.push(t);
    }
    response
}
