//! One module per Kafka API. [`dispatch`] decodes a frame, hands the typed request to its
//! module's `handle`, counts the error codes of the response ([`error_codes`]) and encodes it;
//! requests that cannot be answered (unknown API keys, malformed bodies, versions we cannot
//! encode a reply in) close the connection.

pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod alter_configs;
pub mod alter_partition_reassignments;
pub mod api_versions;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_topic_partitions;
pub mod describe_transactions;
pub mod elect_leaders;
pub mod end_txn;
pub mod error_codes;
pub mod fetch;
pub mod find_coordinator;
pub mod group;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod list_offsets;
pub mod list_partition_reassignments;
pub mod list_transactions;
pub mod metadata;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod txn_offset_commit;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestKind};
use kafka_protocol::protocol::Encodable;
use starling_group::GroupRequest;
use starling_protocol::request::{self, DecodeError, DecodedRequest, HeaderPrefix};
use starling_protocol::{legacy, response};

use crate::Broker;
use error_codes::ErrorCodes;

/// What the connection does after a request.
#[derive(Debug)]
pub enum Reply {
    /// Send this frame.
    Frame(Bytes),
    /// Send this frame, given as chunks to write in order (record sets shared, not copied).
    Chunks(Vec<Bytes>),
    /// Send nothing (Produce with acks=0).
    Nothing,
    /// Close the connection, logging why.
    Close(String),
}

/// Who sent a request and at which version.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
    pub peer: SocketAddr,
}

/// The error for a topic the broker does not have: by id (the versions that name topics by
/// id) or by name.
fn unknown_topic(by_id: bool) -> kafka_protocol::ResponseError {
    if by_id {
        kafka_protocol::ResponseError::UnknownTopicId
    } else {
        kafka_protocol::ResponseError::UnknownTopicOrPartition
    }
}

fn encode<T: Encodable>(api_key: ApiKey, ctx: &RequestContext, body: &T) -> Reply {
    match response::encode_frame(api_key, ctx.api_version, ctx.correlation_id, body) {
        Ok(frame) => Reply::Frame(frame),
        Err(e) => Reply::Close(format!(
            "cannot encode {api_key:?} v{} response: {e}",
            ctx.api_version
        )),
    }
}

/// Counts the response's error codes, then encodes it.
fn respond<T: Encodable + ErrorCodes>(
    broker: &Broker,
    api_key: ApiKey,
    ctx: &RequestContext,
    body: &T,
) -> Reply {
    broker
        .metrics
        .count_error_codes(api_key, ctx.api_version, body);
    encode(api_key, ctx, body)
}

/// Decodes and answers one request frame.
pub async fn dispatch(broker: &Arc<Broker>, frame: Bytes, peer: SocketAddr) -> Reply {
    let DecodedRequest {
        api_key,
        header,
        body,
    } = match request::decode(frame.clone()) {
        Ok(decoded) => decoded,
        Err(e) => return refuse(broker, e, &frame),
    };
    let ctx = RequestContext {
        api_version: header.request_api_version,
        correlation_id: header.correlation_id,
        client_id: header.client_id.map(|c| c.to_string()),
        peer,
    };
    tracing::trace!(?api_key, version = ctx.api_version, client = ?ctx.client_id, "request");
    match body {
        RequestKind::ApiVersions(r) => {
            respond(broker, api_key, &ctx, &api_versions::handle(&ctx, r))
        }
        RequestKind::Metadata(r) => {
            respond(broker, api_key, &ctx, &metadata::handle(broker, &ctx, r))
        }
        RequestKind::Produce(r) => match produce::handle(broker, &ctx, r).await {
            produce::Outcome::Respond(resp) => encode(api_key, &ctx, &resp),
            produce::Outcome::Silent => Reply::Nothing,
            produce::Outcome::Close(why) => Reply::Close(why),
        },
        RequestKind::Fetch(r) => {
            let response = fetch::handle(broker, &ctx, r).await;
            broker
                .metrics
                .count_error_codes(api_key, ctx.api_version, &response);
            match starling_protocol::fetch_frame::encode_fetch_frame(
                ctx.api_version,
                ctx.correlation_id,
                &response,
            ) {
                Ok(chunks) => Reply::Chunks(chunks),
                Err(e) => Reply::Close(format!(
                    "cannot encode Fetch v{} response: {e}",
                    ctx.api_version
                )),
            }
        }
        RequestKind::ListOffsets(r) => respond(
            broker,
            api_key,
            &ctx,
            &list_offsets::handle(broker, &ctx, r),
        ),
        RequestKind::CreateTopics(r) => respond(
            broker,
            api_key,
            &ctx,
            &create_topics::handle(broker, &ctx, r),
        ),
        RequestKind::DeleteTopics(r) => respond(
            broker,
            api_key,
            &ctx,
            &delete_topics::handle(broker, &ctx, r),
        ),
        RequestKind::CreatePartitions(r) => respond(
            broker,
            api_key,
            &ctx,
            &create_partitions::handle(broker, &ctx, r),
        ),
        RequestKind::FindCoordinator(r) => respond(
            broker,
            api_key,
            &ctx,
            &find_coordinator::handle(broker, &ctx, r),
        ),
        RequestKind::JoinGroup(r) => {
            group::forward(broker, &ctx, api_key, GroupRequest::Join(r)).await
        }
        RequestKind::SyncGroup(r) => {
            group::forward(broker, &ctx, api_key, GroupRequest::Sync(r)).await
        }
        RequestKind::Heartbeat(r) => {
            group::forward(broker, &ctx, api_key, GroupRequest::Heartbeat(r)).await
        }
        RequestKind::LeaveGroup(r) => {
            group::forward(broker, &ctx, api_key, GroupRequest::Leave(r)).await
        }
        RequestKind::OffsetCommit(r) => group::offset_commit(broker, &ctx, api_key, r).await,
        RequestKind::OffsetFetch(r) => {
            group::forward(broker, &ctx, api_key, GroupRequest::OffsetFetch(r)).await
        }
        RequestKind::DescribeGroups(r) => {
            group::forward(broker, &ctx, api_key, GroupRequest::DescribeGroups(r)).await
        }
        RequestKind::ListGroups(r) => {
            group::forward(broker, &ctx, api_key, GroupRequest::ListGroups(r)).await
        }
        RequestKind::DeleteGroups(r) => {
            group::forward(broker, &ctx, api_key, GroupRequest::DeleteGroups(r)).await
        }
        RequestKind::OffsetDelete(r) => {
            group::forward(broker, &ctx, api_key, GroupRequest::OffsetDelete(r)).await
        }
        RequestKind::ConsumerGroupHeartbeat(r) => {
            group::forward(
                broker,
                &ctx,
                api_key,
                GroupRequest::ConsumerGroupHeartbeat(r),
            )
            .await
        }
        RequestKind::ConsumerGroupDescribe(r) => {
            group::forward(
                broker,
                &ctx,
                api_key,
                GroupRequest::ConsumerGroupDescribe(r),
            )
            .await
        }
        RequestKind::InitProducerId(r) => {
            let response = init_producer_id::handle(broker, &ctx, r).await;
            respond(broker, api_key, &ctx, &response)
        }
        RequestKind::AddPartitionsToTxn(r) => {
            let response = add_partitions_to_txn::handle(broker, &ctx, r).await;
            respond(broker, api_key, &ctx, &response)
        }
        RequestKind::AddOffsetsToTxn(r) => {
            let response = add_offsets_to_txn::handle(broker, &ctx, r).await;
            respond(broker, api_key, &ctx, &response)
        }
        RequestKind::EndTxn(r) => {
            let response = end_txn::handle(broker, &ctx, r).await;
            respond(broker, api_key, &ctx, &response)
        }
        RequestKind::DeleteRecords(r) => {
            let response = delete_records::handle(broker, &ctx, r).await;
            respond(broker, api_key, &ctx, &response)
        }
        RequestKind::TxnOffsetCommit(r) => {
            txn_offset_commit::handle(broker, &ctx, api_key, r).await
        }
        RequestKind::DescribeProducers(r) => {
            let response = describe_producers::handle(broker, &ctx, r).await;
            respond(broker, api_key, &ctx, &response)
        }
        RequestKind::DescribeTransactions(r) => {
            let response = describe_transactions::handle(broker, &ctx, r).await;
            respond(broker, api_key, &ctx, &response)
        }
        RequestKind::ListTransactions(r) => {
            let response = list_transactions::handle(broker, &ctx, r).await;
            respond(broker, api_key, &ctx, &response)
        }
        RequestKind::DescribeCluster(r) => respond(
            broker,
            api_key,
            &ctx,
            &describe_cluster::handle(broker, &ctx, r),
        ),
        RequestKind::OffsetForLeaderEpoch(r) => respond(
            broker,
            api_key,
            &ctx,
            &offset_for_leader_epoch::handle(broker, &ctx, r),
        ),
        RequestKind::DescribeLogDirs(r) => respond(
            broker,
            api_key,
            &ctx,
            &describe_log_dirs::handle(broker, &ctx, r),
        ),
        RequestKind::DescribeTopicPartitions(r) => respond(
            broker,
            api_key,
            &ctx,
            &describe_topic_partitions::handle(broker, &ctx, r),
        ),
        RequestKind::ElectLeaders(r) => respond(
            broker,
            api_key,
            &ctx,
            &elect_leaders::handle(broker, &ctx, r),
        ),
        RequestKind::ListPartitionReassignments(r) => respond(
            broker,
            api_key,
            &ctx,
            &list_partition_reassignments::handle(&ctx, r),
        ),
        RequestKind::AlterPartitionReassignments(r) => respond(
            broker,
            api_key,
            &ctx,
            &alter_partition_reassignments::handle(broker, &ctx, r),
        ),
        RequestKind::DescribeConfigs(r) => respond(
            broker,
            api_key,
            &ctx,
            &describe_configs::handle(broker, &ctx, r),
        ),
        RequestKind::AlterConfigs(r) => respond(
            broker,
            api_key,
            &ctx,
            &alter_configs::handle(broker, &ctx, r),
        ),
        RequestKind::IncrementalAlterConfigs(r) => respond(
            broker,
            api_key,
            &ctx,
            &incremental_alter_configs::handle(broker, &ctx, r),
        ),
        other => Reply::Close(format!("no handler for {other:?}")),
    }
}

/// Answers (or not) a frame that did not decode.
fn refuse(broker: &Broker, error: DecodeError, frame: &Bytes) -> Reply {
    match error {
        DecodeError::UnsupportedVersion { prefix, api_key: ApiKey::ApiVersions } => {
            // KIP-511: answer with a v0 response carrying our ranges so the client can retry.
            let ctx = context_from_prefix(prefix);
            let body = api_versions::unsupported_version_response();
            broker.metrics.count_error_codes(ApiKey::ApiVersions, 0, &body);
            match response::encode_frame(ApiKey::ApiVersions, 0, ctx.correlation_id, &body) {
                Ok(frame) => Reply::Frame(frame),
                Err(e) => Reply::Close(e.to_string()),
            }
        }
        DecodeError::UnsupportedVersion { prefix, api_key: ApiKey::Produce } if prefix.api_version <= 2 => {
            match produce_legacy_body(frame) {
                Some(body) => match legacy::produce_v0_to_v2_unsupported(prefix.api_version, prefix.correlation_id, body) {
                    Some(reply) => Reply::Frame(reply),
                    None => Reply::Close(format!("malformed Produce v{} request", prefix.api_version)),
                },
                None => Reply::Close(format!("malformed Produce v{} header", prefix.api_version)),
            }
        }
        DecodeError::UnsupportedVersion { prefix, api_key } => Reply::Close(format!(
            "{api_key:?} version {} is not supported (UNSUPPORTED_VERSION); closing as no response can be encoded at that version",
            prefix.api_version
        )),
        DecodeError::UnknownApiKey(prefix) => Reply::Close(format!("unknown api key {}", prefix.api_key)),
        DecodeError::Malformed(why) => Reply::Close(why),
    }
}

/// The body of a request with a v1 header (api key, version, correlation id, client id).
fn produce_legacy_body(frame: &Bytes) -> Option<&[u8]> {
    let mut rest = frame.get(8..)?;
    if rest.remaining() < 2 {
        return None;
    }
    let len = rest.get_i16();
    let skip = usize::try_from(len).unwrap_or(0);
    rest.get(skip..)
}

fn context_from_prefix(prefix: HeaderPrefix) -> RequestContext {
    RequestContext {
        api_version: prefix.api_version,
        correlation_id: prefix.correlation_id,
        client_id: None,
        peer: SocketAddr::from(([0, 0, 0, 0], 0)),
    }
}
