//! One module per Kafka API. [`dispatch`] decodes a frame, hands the typed request to its
//! module's `handle`, counts the error codes of the response ([`error_codes`]) and encodes it;
//! requests that cannot be answered (unknown API keys, malformed bodies, versions we cannot
//! encode a reply in) close the connection.

pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod alter_client_quotas;
pub mod alter_configs;
pub mod alter_partition_reassignments;
pub mod alter_user_scram_credentials;
pub mod api_versions;
pub mod create_acls;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_acls;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_acls;
pub mod describe_client_quotas;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_topic_partitions;
pub mod describe_transactions;
pub mod describe_user_scram_credentials;
pub mod elect_leaders;
pub mod end_txn;
pub mod error_codes;
pub mod fetch;
pub mod find_coordinator;
pub mod group;
pub mod group_acl;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod list_offsets;
pub mod list_partition_reassignments;
pub mod list_transactions;
pub mod metadata;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod throttle;
pub mod txn_offset_commit;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestKind};
use kafka_protocol::protocol::Encodable;
use starling_acl::{AclOperation, ResourceType};
use starling_group::GroupRequest;
use starling_protocol::request::{self, DecodeError, DecodedRequest, HeaderPrefix};
use starling_protocol::{legacy, response};

use crate::listeners::Listener;
use crate::quotas::{Principal, QuotaType};
use crate::Broker;
use error_codes::ErrorCodes;
use throttle::Throttled;

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
    /// The listener the client connected to: its advertised address is the one handed out.
    pub listener: Arc<Listener>,
    /// Who the client is, for quotas: the anonymous user until SASL authenticates connections.
    pub principal: Principal,
    /// When the request's frame had been read: its handling time counts against the request
    /// quota.
    pub started: Instant,
    /// The longest throttle time any quota gave this request; the connection is muted for it
    /// after the response.
    throttle_ms: Arc<AtomicI32>,
    /// Time (µs) the request spent waiting rather than being worked on (a JoinGroup held for a
    /// rebalance): the request quota does not count it.
    idle_us: Arc<AtomicU64>,
}

impl RequestContext {
    /// The client id quotas match (`""` for a null one).
    pub fn quota_client_id(&self) -> &str {
        self.client_id.as_deref().unwrap_or("")
    }

    /// The Kafka principal string the authorizer matches: `User:<name>`.
    pub fn kafka_principal(&self) -> String {
        format!("User:{}", self.principal.user)
    }

    /// Whether the client may perform `operation` on the resource of `resource_type` called
    /// `name` (Kafka's `AuthHelper.authorize`); always without an authorizer.
    pub fn authorize(
        &self,
        broker: &Broker,
        operation: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        if broker.acls.authorizer().is_none() {
            return true;
        }
        broker.acls.authorize(
            &self.kafka_principal(),
            self.peer.ip(),
            operation,
            resource_type,
            name,
        )
    }

    /// Whether the client may perform `operation` on the cluster resource.
    pub fn authorize_cluster(&self, broker: &Broker, operation: AclOperation) -> bool {
        self.authorize(
            broker,
            operation,
            ResourceType::Cluster,
            starling_acl::CLUSTER_RESOURCE_NAME,
        )
    }

    /// Whether the client may perform `operation` on some resource of `resource_type`
    /// (Kafka's `authorizeByResourceType`, used where any grant of the kind will do).
    pub fn authorize_by_resource_type(
        &self,
        broker: &Broker,
        operation: AclOperation,
        resource_type: ResourceType,
    ) -> bool {
        if broker.acls.authorizer().is_none() {
            return true;
        }
        broker.acls.authorize_by_resource_type(
            &self.kafka_principal(),
            self.peer.ip(),
            operation,
            resource_type,
        )
    }

    /// Kafka's `authorizedOperations`: the bit field (bit = operation code) of the operations
    /// Kafka supports on `resource_type` that the client may perform on the resource called
    /// `name`; every supported one without an authorizer.
    pub fn authorized_operations(
        &self,
        broker: &Broker,
        resource_type: ResourceType,
        name: &str,
    ) -> i32 {
        supported_operations(resource_type)
            .iter()
            .filter(|op| self.authorize(broker, **op, resource_type, name))
            .fold(0, |bits, op| bits | (1 << op.code()))
    }

    /// Notes a throttle time (ms) for this request; returns it as the response field takes it.
    fn throttle(&self, ms: i64) -> i32 {
        let ms = i32::try_from(ms.max(0)).unwrap_or(i32::MAX);
        self.throttle_ms.fetch_max(ms, Ordering::Relaxed);
        ms
    }

    /// Notes time the request spent waiting (for the group coordinator, say), which the
    /// request quota does not count as handling time.
    pub fn note_idle(&self, waited: Duration) {
        let us = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
        self.idle_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Records the request's handling time so far (less `idle` and the time noted with
    /// [`RequestContext::note_idle`], time spent waiting rather than working) against the
    /// request quota; returns the throttle time.
    fn request_throttle(&self, broker: &Broker, idle: Duration) -> i32 {
        let noted = Duration::from_micros(self.idle_us.load(Ordering::Relaxed));
        let busy = self.started.elapsed().saturating_sub(idle + noted);
        let ms = broker
            .quotas
            .record_request_time(&self.principal, self.quota_client_id(), busy);
        self.throttle(ms)
    }
}

/// Kafka's `AclEntry.supportedOperations`: what an ACL on a resource of the type can grant,
/// the operations an `authorized_operations` bit field is made of.
pub fn supported_operations(resource_type: ResourceType) -> &'static [AclOperation] {
    use AclOperation::*;
    match resource_type {
        ResourceType::Topic => &[
            Read,
            Write,
            Create,
            Describe,
            Delete,
            Alter,
            DescribeConfigs,
            AlterConfigs,
        ],
        ResourceType::Group => &[Read, Describe, Delete],
        ResourceType::Cluster => &[
            Create,
            ClusterAction,
            DescribeConfigs,
            AlterConfigs,
            IdempotentWrite,
            Alter,
            Describe,
        ],
        ResourceType::TransactionalId => &[Describe, Write],
        ResourceType::DelegationToken => &[Describe],
        ResourceType::User => &[CreateTokens, DescribeTokens],
        ResourceType::Any | ResourceType::Unknown => &[],
    }
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

/// Records the request's handling time against the client's request quota, counts the
/// response's error codes, then encodes it (with the throttle time, if the client is over the
/// quota).
fn respond<T: Encodable + ErrorCodes + Throttled + Clone>(
    broker: &Broker,
    api_key: ApiKey,
    ctx: &RequestContext,
    body: &T,
) -> Reply {
    // The request quota's throttle, or a longer one a handler noted (the mutation quota's).
    let throttle_ms = ctx
        .request_throttle(broker, Duration::ZERO)
        .max(ctx.throttle_ms.load(Ordering::Relaxed));
    broker
        .metrics
        .count_error_codes(api_key, ctx.api_version, body);
    if throttle_ms > 0 {
        let mut throttled = body.clone();
        throttled.set_throttle_time_ms(throttle_ms);
        return encode(api_key, ctx, &throttled);
    }
    encode(api_key, ctx, body)
}

/// Decodes and answers one request frame from an anonymous client of a plaintext listener.
pub async fn dispatch(broker: &Arc<Broker>, frame: Bytes, peer: SocketAddr) -> Reply {
    let listener = Listener::plaintext(broker.config.first_listener().addr);
    answer(broker, frame, peer, &Principal::anonymous(), &listener)
        .await
        .0
}

/// Decodes and answers one request frame from `principal`; returns the reply and how long the
/// connection must then read nothing from the client (its throttle time, KIP-219).
pub async fn answer(
    broker: &Arc<Broker>,
    frame: Bytes,
    peer: SocketAddr,
    principal: &Principal,
    listener: &Arc<Listener>,
) -> (Reply, Duration) {
    let started = Instant::now();
    let frame_len = frame.len();
    let DecodedRequest {
        api_key,
        header,
        body,
    } = match request::decode(frame.clone()) {
        Ok(decoded) => decoded,
        Err(e) => return (refuse(broker, e, &frame, listener), Duration::ZERO),
    };
    let ctx = RequestContext {
        api_version: header.request_api_version,
        correlation_id: header.correlation_id,
        client_id: header.client_id.map(|c| c.to_string()),
        peer,
        listener: listener.clone(),
        principal: principal.clone(),
        started,
        throttle_ms: Arc::new(AtomicI32::new(0)),
        idle_us: Arc::new(AtomicU64::new(0)),
    };
    tracing::trace!(?api_key, version = ctx.api_version, client = ?ctx.client_id, "request");
    let reply = match body {
        RequestKind::ApiVersions(r) => {
            respond(broker, api_key, &ctx, &api_versions::handle(&ctx, r))
        }
        RequestKind::Metadata(r) => respond(
            broker,
            api_key,
            &ctx,
            &metadata::handle(broker, &ctx, r).await,
        ),
        RequestKind::Produce(r) => {
            let outcome = produce::handle(broker, &ctx, r).await;
            // Kafka's produce quota counts the whole request.
            let bytes_ms = broker.quotas.record(
                &ctx.principal,
                ctx.quota_client_id(),
                QuotaType::Produce,
                frame_len as f64,
            );
            match outcome {
                produce::Outcome::Respond(mut resp) => {
                    let request_ms = ctx.request_throttle(broker, Duration::ZERO);
                    resp.throttle_time_ms = ctx.throttle(bytes_ms).max(request_ms);
                    encode(api_key, &ctx, &resp)
                }
                // acks=0: no response to carry the throttle time, but the connection is muted.
                produce::Outcome::Silent => {
                    ctx.throttle(bytes_ms);
                    Reply::Nothing
                }
                produce::Outcome::Close(why) => Reply::Close(why),
            }
        }
        RequestKind::Fetch(mut r) => {
            let client = ctx.quota_client_id();
            // Kafka's fetch limit: no more than the quota lets through in its window.
            if let Some(limit) = broker.quotas.fetch_window_bytes(&ctx.principal, client) {
                let limit = i32::try_from(limit).unwrap_or(i32::MAX);
                if r.max_bytes <= 0 || r.max_bytes > limit {
                    r.max_bytes = limit;
                }
                r.min_bytes = r.min_bytes.min(r.max_bytes);
            }
            let (response, waited) = fetch::handle(broker, &ctx, r).await;
            let encode_fetch = |response: &kafka_protocol::messages::FetchResponse| {
                broker
                    .metrics
                    .count_error_codes(api_key, ctx.api_version, response);
                starling_protocol::fetch_frame::encode_fetch_frame(
                    ctx.api_version,
                    ctx.correlation_id,
                    response,
                )
            };
            let chunks = encode_fetch(&response);
            let size: usize = chunks
                .as_ref()
                .map_or(0, |chunks| chunks.iter().map(Bytes::len).sum());
            let request_ms = ctx.request_throttle(broker, waited);
            let bytes_ms =
                broker
                    .quotas
                    .record(&ctx.principal, client, QuotaType::Fetch, size as f64);
            let throttle_ms = ctx.throttle(bytes_ms).max(request_ms);
            let result = if throttle_ms > 0 {
                // Over a quota Kafka answers nothing but the throttle time, and takes the
                // bytes it did not send back from the fetch rate.
                broker
                    .quotas
                    .unrecord(&ctx.principal, client, QuotaType::Fetch, size as f64);
                let mut empty = kafka_protocol::messages::FetchResponse::default();
                empty.throttle_time_ms = throttle_ms;
                encode_fetch(&empty)
            } else {
                chunks
            };
            match result {
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
            &list_offsets::handle(broker, &ctx, r).await,
        ),
        RequestKind::CreateTopics(r) => respond(
            broker,
            api_key,
            &ctx,
            &create_topics::handle(broker, &ctx, r).await,
        ),
        RequestKind::DeleteTopics(r) => respond(
            broker,
            api_key,
            &ctx,
            &delete_topics::handle(broker, &ctx, r).await,
        ),
        RequestKind::CreatePartitions(r) => respond(
            broker,
            api_key,
            &ctx,
            &create_partitions::handle(broker, &ctx, r).await,
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
            &offset_for_leader_epoch::handle(broker, &ctx, r).await,
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
            &list_partition_reassignments::handle(broker, &ctx, r),
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
            &alter_configs::handle(broker, &ctx, r).await,
        ),
        RequestKind::IncrementalAlterConfigs(r) => respond(
            broker,
            api_key,
            &ctx,
            &incremental_alter_configs::handle(broker, &ctx, r).await,
        ),
        RequestKind::DescribeAcls(r) => respond(
            broker,
            api_key,
            &ctx,
            &describe_acls::handle(broker, &ctx, r),
        ),
        RequestKind::CreateAcls(r) => respond(
            broker,
            api_key,
            &ctx,
            &create_acls::handle(broker, &ctx, r).await,
        ),
        RequestKind::DeleteAcls(r) => respond(
            broker,
            api_key,
            &ctx,
            &delete_acls::handle(broker, &ctx, r).await,
        ),
        RequestKind::DescribeClientQuotas(r) => respond(
            broker,
            api_key,
            &ctx,
            &describe_client_quotas::handle(broker, &ctx, r),
        ),
        RequestKind::AlterClientQuotas(r) => respond(
            broker,
            api_key,
            &ctx,
            &alter_client_quotas::handle(broker, &ctx, r).await,
        ),
        RequestKind::DescribeUserScramCredentials(r) => respond(
            broker,
            api_key,
            &ctx,
            &describe_user_scram_credentials::handle(broker, &ctx, r),
        ),
        RequestKind::AlterUserScramCredentials(r) => respond(
            broker,
            api_key,
            &ctx,
            &alter_user_scram_credentials::handle(broker, &ctx, r).await,
        ),
        other => Reply::Close(format!("no handler for {other:?}")),
    };
    let mute = Duration::from_millis(ctx.throttle_ms.load(Ordering::Relaxed).max(0) as u64);
    if !mute.is_zero() && !client_throttles(api_key, ctx.api_version) {
        // KIP-219: a client too old to back off by itself gets its response late instead.
        tokio::select! {
            _ = broker.shutdown.cancelled() => {}
            _ = tokio::time::sleep(mute) => {}
        }
        return (reply, Duration::ZERO);
    }
    (reply, mute)
}

/// Whether a client backs off by itself on a response's `throttle_time_ms` (KIP-219: Kafka's
/// `shouldClientThrottle`, Produce v6+ and Fetch v8+), so the broker sends the response at once
/// and mutes the connection after it; for older Produce and Fetch versions the response itself
/// is delayed. (Other APIs are always answered at once and muted after.)
fn client_throttles(api_key: ApiKey, version: i16) -> bool {
    match api_key {
        ApiKey::Produce => version >= 6,
        ApiKey::Fetch => version >= 8,
        _ => true,
    }
}

/// Answers (or not) a frame that did not decode.
fn refuse(broker: &Broker, error: DecodeError, frame: &Bytes, listener: &Arc<Listener>) -> Reply {
    match error {
        DecodeError::UnsupportedVersion { prefix, api_key: ApiKey::ApiVersions } => {
            // KIP-511: answer with a v0 response carrying our ranges so the client can retry.
            let ctx = context_from_prefix(prefix, listener);
            let body = api_versions::unsupported_version_response();
            broker.metrics.count_error_codes(ApiKey::ApiVersions, 0, &body);
            match response::encode_frame(ApiKey::ApiVersions, 0, ctx.correlation_id, &body) {
                Ok(frame) => Reply::Frame(frame),
                Err(e) => Reply::Close(e.to_string()),
            }
        }
        DecodeError::UnsupportedVersion { prefix, api_key: ApiKey::Produce } if prefix.api_version <= 2 => {
            match legacy::refuse_produce_v0_to_v2(frame) {
                Ok(reply) => Reply::Frame(reply),
                Err(e) => Reply::Close(e.to_string()),
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

fn context_from_prefix(prefix: HeaderPrefix, listener: &Arc<Listener>) -> RequestContext {
    RequestContext {
        api_version: prefix.api_version,
        correlation_id: prefix.correlation_id,
        client_id: None,
        peer: SocketAddr::from(([0, 0, 0, 0], 0)),
        listener: listener.clone(),
        principal: Principal::anonymous(),
        started: Instant::now(),
        throttle_ms: Arc::new(AtomicI32::new(0)),
        idle_us: Arc::new(AtomicU64::new(0)),
    }
}
