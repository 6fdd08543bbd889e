//! The consumer-group APIs — the classic JoinGroup, SyncGroup, Heartbeat, LeaveGroup; the KIP-848
//! ConsumerGroupHeartbeat and ConsumerGroupDescribe; OffsetCommit, OffsetFetch, DescribeGroups,
//! ListGroups, DeleteGroups, OffsetDelete — forwarded to the group
//! coordinator task. Their logic lives in the pure core, `starling-group`, one module per API
//! there; this module only routes a request in and encodes the response at the request's version
//! (counting its error codes on the way). The one check made here is the broker's own knowledge
//! of topics: OffsetCommit for a topic or partition that does not exist is answered
//! UNKNOWN_TOPIC_OR_PARTITION per partition, as Kafka does, without reaching the coordinator.
//! The authorizer's checks come first ([`super::group_acl`]; OffsetCommit's here: READ on the
//! group, and READ on each topic, TOPIC_AUTHORIZATION_FAILED per partition without it).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{ApiKey, OffsetCommitRequest, OffsetCommitResponse};
use kafka_protocol::ResponseError;
use starling_acl::{AclOperation, ResourceType};
use starling_group::{ClientInfo, GroupRequest, GroupResponse};

use super::{respond, Reply, RequestContext};
use crate::Broker;

fn client_info(ctx: &RequestContext) -> ClientInfo {
    ClientInfo {
        client_id: ctx.client_id.clone().unwrap_or_default(),
        client_host: format!("/{}", ctx.peer.ip()),
    }
}

pub async fn forward(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    api_key: ApiKey,
    request: GroupRequest,
) -> Reply {
    let (request, merge) = match super::group_acl::check(broker, ctx, request) {
        super::group_acl::Checked::Forward(request, merge) => (request, merge),
        super::group_acl::Checked::Answer(response) => {
            return respond_group(broker, api_key, ctx, response)
        }
    };
    match call_group(broker, ctx, request).await {
        Ok(response) => respond_group(broker, api_key, ctx, merge.apply(broker, ctx, response)),
        Err(e) => Reply::Close(format!("{api_key:?}: {e}")),
    }
}

/// Sends `request` to the group coordinator as this connection's client.
pub(super) async fn call_group(
    broker: &Broker,
    ctx: &RequestContext,
    request: GroupRequest,
) -> Result<GroupResponse, crate::coordinator::CoordinatorError> {
    // The coordinator may hold a request for a whole rebalance: waiting is not handling time
    // for the request quota.
    let asked = std::time::Instant::now();
    let response = broker
        .groups
        .call(ctx.api_version, client_info(ctx), request)
        .await;
    ctx.note_idle(asked.elapsed());
    response
}

pub(super) fn respond_group(
    broker: &Broker,
    api_key: ApiKey,
    ctx: &RequestContext,
    response: GroupResponse,
) -> Reply {
    match response {
        GroupResponse::Join(r) => respond(broker, api_key, ctx, &r),
        GroupResponse::Sync(r) => respond(broker, api_key, ctx, &r),
        GroupResponse::Heartbeat(r) => respond(broker, api_key, ctx, &r),
        GroupResponse::Leave(r) => respond(broker, api_key, ctx, &r),
        GroupResponse::OffsetCommit(r) => respond(broker, api_key, ctx, &r),
        GroupResponse::OffsetFetch(r) => respond(broker, api_key, ctx, &r),
        GroupResponse::DescribeGroups(r) => respond(broker, api_key, ctx, &r),
        GroupResponse::ListGroups(r) => respond(broker, api_key, ctx, &r),
        GroupResponse::DeleteGroups(r) => respond(broker, api_key, ctx, &r),
        GroupResponse::OffsetDelete(r) => respond(broker, api_key, ctx, &r),
        GroupResponse::ConsumerGroupHeartbeat(r) => respond(broker, api_key, ctx, &r),
        GroupResponse::ConsumerGroupDescribe(r) => respond(broker, api_key, ctx, &r),
        GroupResponse::TxnOffsetCommit(r) => respond(broker, api_key, ctx, &r),
        // Only the broker's own transaction markers send TxnEnd, never a client.
        GroupResponse::TxnEnd(_) => Reply::Close(format!("{api_key:?}: answered as TxnEnd")),
    }
}

/// OffsetCommit: partitions this broker does not have (an unknown topic, or an index beyond the
/// topic's partitions) get UNKNOWN_TOPIC_OR_PARTITION; the others go to the coordinator. The
/// response lists every partition in the order the request did. When no partition exists the
/// coordinator is not asked at all, as in Kafka.
pub async fn offset_commit(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    api_key: ApiKey,
    mut request: OffsetCommitRequest,
) -> Reply {
    // Kafka's rule: READ on the group, or every partition is GROUP_AUTHORIZATION_FAILED; then
    // READ on each topic, checked before whether the topic exists.
    let group_refused = !ctx.authorize(
        broker,
        AclOperation::Read,
        ResourceType::Group,
        &request.group_id,
    );
    if group_refused {
        let refused = ResponseError::GroupAuthorizationFailed.code();
        let topics = request
            .topics
            .iter()
            .map(|t| {
                OffsetCommitResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_partitions(
                        t.partitions
                            .iter()
                            .map(|p| {
                                OffsetCommitResponsePartition::default()
                                    .with_partition_index(p.partition_index)
                                    .with_error_code(refused)
                            })
                            .collect(),
                    )
            })
            .collect();
        let response = OffsetCommitResponse::default().with_topics(topics);
        return respond(broker, api_key, ctx, &response);
    }
    let readable: HashSet<String> = request
        .topics
        .iter()
        .map(|t| t.name.0.to_string())
        .filter(|name| ctx.authorize(broker, AclOperation::Read, ResourceType::Topic, name))
        .collect();
    let exists = |topic: &str, partition: i32| {
        readable.contains(topic)
            && broker
                .topics
                .get(topic)
                .is_some_and(|t| t.partition(partition).is_some())
    };
    let all_known = request.topics.iter().all(|t| {
        t.partitions
            .iter()
            .all(|p| exists(t.name.0.as_str(), p.partition_index))
    });
    if all_known {
        return forward(broker, ctx, api_key, GroupRequest::OffsetCommit(request)).await;
    }
    let asked: Vec<(kafka_protocol::messages::TopicName, Vec<i32>)> = request
        .topics
        .iter()
        .map(|t| {
            let partitions = t.partitions.iter().map(|p| p.partition_index).collect();
            (t.name.clone(), partitions)
        })
        .collect();
    for topic in &mut request.topics {
        let name = topic.name.0.to_string();
        topic
            .partitions
            .retain(|p| exists(&name, p.partition_index));
    }
    request.topics.retain(|t| !t.partitions.is_empty());
    let committed = if request.topics.is_empty() {
        OffsetCommitResponse::default()
    } else {
        match call_group(broker, ctx, GroupRequest::OffsetCommit(request)).await {
            Ok(GroupResponse::OffsetCommit(r)) => r,
            Ok(other) => return respond_group(broker, api_key, ctx, other),
            Err(e) => return Reply::Close(format!("{api_key:?}: {e}")),
        }
    };
    let codes: HashMap<(&str, i32), i16> = committed
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| ((t.name.0.as_str(), p.partition_index), p.error_code))
        })
        .collect();
    let topics = asked
        .iter()
        .map(|(name, partitions)| {
            let unknown = if readable.contains(name.0.as_str()) {
                ResponseError::UnknownTopicOrPartition.code()
            } else {
                ResponseError::TopicAuthorizationFailed.code()
            };
            let partitions = partitions
                .iter()
                .map(|&index| {
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(index)
                        .with_error_code(
                            codes
                                .get(&(name.0.as_str(), index))
                                .copied()
                                .unwrap_or(unknown),
                        )
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(name.clone())
                .with_partitions(partitions)
        })
        .collect();
    let response = OffsetCommitResponse::default()
        .with_throttle_time_ms(committed.throttle_time_ms)
        .with_topics(topics);
    respond(broker, api_key, ctx, &response)
}
