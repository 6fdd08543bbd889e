//! Fetch: serve stored record batches, long-polling until `min_bytes` are available, `max_wait_ms`
//! passes, or the broker shuts down — woken as soon as a produce appends to a requested partition.
//!
//! Limits follow Kafka (KIP-74): partitions are filled in request order up to `max_bytes` in
//! total and `partition_max_bytes` each, but the first batch found is returned whole even when
//! larger, so a consumer can always make progress.
//!
//! At isolation level read_committed a partition is read only up to its last stable offset
//! (where its earliest open transaction begins), with the aborted transactions in the fetched
//! range listed so the consumer skips their records; a transaction's marker wakes the long
//! polls waiting on its partitions, as an append does.
//!
//! Fetch sessions (KIP-227) are not cached: every response has session id 0, which tells clients
//! no session was created and they keep sending full requests, as with a broker whose session
//! cache is empty.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::select_all;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use kafka_protocol::ResponseError;
use starling_acl::{AclOperation, ResourceType};
use starling_log::Isolation;
use tokio::time::Instant;

use super::RequestContext;
use crate::partition_store::StoreError;
use crate::topics::{Partition, Topic};
use crate::Broker;

/// The session epoch that asks for a sessionless full fetch.
const FINAL_EPOCH: i32 = -1;
/// The Fetch isolation level that reads only decided transactions.
const READ_COMMITTED: i8 = 1;

struct Wanted {
    topic: Option<Arc<Topic>>,
    /// The client may not read the topic: answered TOPIC_AUTHORIZATION_FAILED, never read.
    denied: bool,
    partition: i32,
    offset: i64,
    max_bytes: i32,
    /// The leader epoch the consumer believes current (-1: not checked).
    current_leader_epoch: i32,
}

/// Answers a fetch; also returns how long it waited for data (its long poll), time the request
/// quota does not count as work.
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: FetchRequest,
) -> (FetchResponse, Duration) {
    let mut waited = Duration::ZERO;
    let response = answer(broker, ctx, request, &mut waited).await;
    (response, waited)
}

async fn answer(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: FetchRequest,
    waited: &mut Duration,
) -> FetchResponse {
    if ctx.api_version >= 7 {
        if let Some(error) = session_error(&request) {
            let mut response = FetchResponse::default();
            response.error_code = error.code();
            return response;
        }
    }
    let by_id = ctx.api_version >= 13;
    // Kafka's rule: a follower's fetch needs CLUSTER_ACTION on the cluster (every partition
    // refused without it), a consumer's READ on each topic.
    let from_follower = request.replica_id.0 >= 0 || request.replica_state.replica_id.0 >= 0;
    let follower_allowed =
        from_follower && ctx.authorize_cluster(broker, AclOperation::ClusterAction);
    let wanted: Vec<Vec<Wanted>> = request
        .topics
        .iter()
        .map(|t| {
            let topic = if by_id {
                broker.topics.get_by_id(t.topic_id)
            } else {
                broker.topics.get(t.topic.0.as_str())
            };
            // By name the check comes first (a denied client cannot learn whether the topic
            // exists); an unknown id stays UNKNOWN_TOPIC_ID, as in Kafka.
            let name = if by_id {
                topic.as_ref().map(|t| t.name.as_str())
            } else {
                Some(t.topic.0.as_str())
            };
            let denied = match name {
                None => false,
                Some(_) if from_follower => !follower_allowed,
                Some(name) => !ctx.authorize(broker, AclOperation::Read, ResourceType::Topic, name),
            };
            let topic = if denied { None } else { topic };
            t.partitions
                .iter()
                .map(|p| Wanted {
                    topic: topic.clone(),
                    denied,
                    partition: p.partition,
                    offset: p.fetch_offset,
                    max_bytes: p.partition_max_bytes,
                    current_leader_epoch: p.current_leader_epoch,
                })
                .collect()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_millis(request.max_wait_ms.max(0) as u64);
    let min_bytes = request.min_bytes.max(0) as usize;
    let max_bytes = if request.max_bytes <= 0 {
        i32::MAX as usize
    } else {
        request.max_bytes as usize
    };

    loop {
        // Register for wake-ups before reading, so an append between the read and the wait
        // is not missed.
        let partitions: Vec<&Arc<Partition>> = wanted
            .iter()
            .flatten()
            .filter_map(|w| w.topic.as_ref().and_then(|t| t.partition(w.partition)))
            .collect();
        let mut wakeups: Vec<_> = partitions
            .iter()
            .map(|p| Box::pin(p.appended.notified()))
            .collect();
        for w in wakeups.iter_mut() {
            w.as_mut().enable();
        }

        let (response, bytes, any_error) = read_all(&request, &wanted, by_id, max_bytes).await;
        if bytes >= min_bytes.max(1)
            || any_error
            || Instant::now() >= deadline
            || wakeups.is_empty()
        {
            return count_fetched(&wanted, response);
        }
        let wait_started = Instant::now();
        tokio::select! {
            _ = select_all(wakeups) => {}
            _ = tokio::time::sleep_until(deadline) => {}
            _ = broker.shutdown.cancelled() => {}
        }
        *waited += wait_started.elapsed();
        if broker.shutdown.is_cancelled() {
            return count_fetched(
                &wanted,
                read_all(&request, &wanted, by_id, max_bytes).await.0,
            );
        }
    }
}

/// Kafka's check of the leader epoch a consumer fetches at: older than the partition's is
/// FENCED_LEADER_EPOCH (its metadata is stale), newer is UNKNOWN_LEADER_EPOCH (this node's is);
/// a partition this node does not lead is NOT_LEADER_OR_FOLLOWER.
pub fn leader_epoch_error(
    partition: &Partition,
    current_leader_epoch: i32,
) -> Option<ResponseError> {
    let Some(epoch) = partition.log.leader_epoch() else {
        return Some(ResponseError::NotLeaderOrFollower);
    };
    match current_leader_epoch {
        -1 => None,
        e if e < epoch => Some(ResponseError::FencedLeaderEpoch),
        e if e > epoch => Some(ResponseError::UnknownLeaderEpoch),
        _ => None,
    }
}

fn session_error(request: &FetchRequest) -> Option<ResponseError> {
    match (request.session_id, request.session_epoch) {
        (0, FINAL_EPOCH) | (0, 0) => None,
        (0, _) => Some(ResponseError::InvalidFetchSessionEpoch),
        (_, _) => Some(ResponseError::FetchSessionIdNotFound),
    }
}

/// Adds each partition's returned record bytes to its fetched-bytes counter (the response
/// lists the partitions in the order of `wanted`).
fn count_fetched(wanted: &[Vec<Wanted>], response: FetchResponse) -> FetchResponse {
    for (parts, topic) in wanted.iter().zip(&response.responses) {
        for (w, data) in parts.iter().zip(&topic.partitions) {
            let bytes = data.records.as_ref().map_or(0, Bytes::len);
            if bytes == 0 {
                continue;
            }
            if let Some(p) = w.topic.as_ref().and_then(|t| t.partition(w.partition)) {
                p.fetched_bytes
                    .fetch_add(bytes as u64, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
    response
}

/// One pass over every requested partition: (response, bytes returned, any partition errored).
async fn read_all(
    request: &FetchRequest,
    wanted: &[Vec<Wanted>],
    by_id: bool,
    max_bytes: usize,
) -> (FetchResponse, usize, bool) {
    let mut response = FetchResponse::default();
    let mut total = 0usize;
    let mut any_error = false;
    let isolation = if request.isolation_level == READ_COMMITTED {
        Isolation::ReadCommitted
    } else {
        Isolation::ReadUncommitted
    };
    for (t, parts) in request.topics.iter().zip(wanted) {
        let mut topic_response = FetchableTopicResponse::default();
        if by_id {
            topic_response.topic_id = t.topic_id;
        } else {
            topic_response.topic = t.topic.clone();
        }
        for w in parts {
            let mut data = PartitionData::default()
                .with_partition_index(w.partition)
                .with_high_watermark(-1)
                .with_last_stable_offset(-1)
                .with_log_start_offset(-1)
                .with_preferred_read_replica((-1).into())
                .with_records(Some(Bytes::new()));
            let partition = w
                .topic
                .as_ref()
                .and_then(|topic| topic.partition(w.partition));
            match (&w.topic, partition) {
                _ if w.denied => {
                    data.error_code = ResponseError::TopicAuthorizationFailed.code();
                    any_error = true;
                }
                (None, _) => {
                    let code = super::unknown_topic(by_id);
                    data.error_code = code.code();
                    any_error = true;
                }
                (Some(_), None) => {
                    data.error_code = ResponseError::UnknownTopicOrPartition.code();
                    any_error = true;
                }
                (Some(_), Some(p)) => {
                    if let Some(error) = leader_epoch_error(p, w.current_leader_epoch) {
                        data.error_code = error.code();
                        any_error = true;
                        topic_response.partitions.push(data);
                        continue;
                    }
                    let budget = (w.max_bytes.max(0) as usize).min(max_bytes.saturating_sub(total));
                    match p.log.read(w.offset, budget, total == 0, isolation).await {
                        Ok(read) => {
                            total += read.records.len();
                            data.high_watermark = read.high_watermark;
                            data.last_stable_offset = read.last_stable_offset;
                            data.log_start_offset = read.log_start_offset;
                            data.records = Some(read.records);
                            if isolation == Isolation::ReadCommitted {
                                data.aborted_transactions = Some(
                                    read.aborted_transactions
                                        .iter()
                                        .map(|a| {
                                            AbortedTransaction::default()
                                                .with_producer_id(a.producer_id.into())
                                                .with_first_offset(a.first_offset)
                                        })
                                        .collect(),
                                );
                            }
                        }
                        Err(StoreError::OffsetOutOfRange {
                            log_start, log_end, ..
                        }) => {
                            data.error_code = ResponseError::OffsetOutOfRange.code();
                            data.high_watermark = log_end;
                            data.last_stable_offset = log_end;
                            data.log_start_offset = log_start;
                            any_error = true;
                        }
                        Err(e) => {
                            if e.code() == ResponseError::KafkaStorageError {
                                tracing::error!(topic = %p.topic, partition = p.index, error = %e, "fetch read failed");
                            }
                            data.error_code = e.code().code();
                            any_error = true;
                        }
                    }
                }
            }
            topic_response.partitions.push(data);
        }
        response.responses.push(topic_response);
    }
    (response, total, any_error)
}
