//! The authorizer's checks on the consumer-group APIs, made before a request reaches the group
//! coordinator and, where a request names several groups or topics, merged back into the
//! coordinator's answer in the request's order. The rules are Kafka's (`KafkaApis` and the group
//! coordinator's front end):
//!
//! - JoinGroup, SyncGroup, Heartbeat, LeaveGroup, ConsumerGroupHeartbeat: READ on the group,
//!   or GROUP_AUTHORIZATION_FAILED without asking the coordinator; ConsumerGroupHeartbeat also
//!   needs DESCRIBE on every subscribed topic name (TOPIC_AUTHORIZATION_FAILED).
//! - OffsetCommit (see [`super::group::offset_commit`]): READ on the group, READ on each topic.
//! - OffsetFetch: DESCRIBE on each group; topics the client may not DESCRIBE are answered
//!   TOPIC_AUTHORIZATION_FAILED when named and left out when every topic was asked for.
//! - DescribeGroups, ConsumerGroupDescribe: DESCRIBE on each group (with the group's authorized
//!   operations when asked); a consumer group whose members' current or target assignments name
//!   a topic without DESCRIBE is answered TOPIC_AUTHORIZATION_FAILED as a whole.
//!   DeleteGroups: DELETE on each group.
//! - ListGroups: every group with DESCRIBE on the cluster, otherwise those it may DESCRIBE.
//! - OffsetDelete: DELETE on the group, READ on each topic.
//!
//! Without an authorizer every check passes and requests go through untouched, but for the
//! authorized operations DescribeGroups and ConsumerGroupDescribe ask for: every operation.

use std::collections::HashSet;

use bytes::Bytes;
use kafka_protocol::messages::consumer_group_describe_response;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatResponse, DeleteGroupsResponse,
    DescribeGroupsResponse, GroupId, HeartbeatResponse, JoinGroupResponse, LeaveGroupResponse,
    OffsetDeleteResponse, OffsetFetchResponse, SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use starling_acl::{AclOperation, ResourceType};
use starling_group::{GroupRequest, GroupResponse};

use super::RequestContext;
use crate::Broker;

/// The first OffsetFetch version with a top-level error code.
const OFFSET_FETCH_TOP_LEVEL_ERROR: i16 = 2;
/// The first OffsetFetch version that batches groups (KIP-709).
const OFFSET_FETCH_BATCHED: i16 = 8;

/// What to do with a group request after the checks.
pub enum Checked {
    /// Send it (possibly narrowed) to the coordinator, then [`Merge`] the refusals back in.
    Forward(GroupRequest, Merge),
    /// Refused as a whole: this is the answer.
    Answer(GroupResponse),
}

/// Topics refused (by READ or DESCRIBE) with the partitions asked for.
type RefusedTopics = Vec<(TopicName, Vec<i32>)>;

/// The refusals to put back into the coordinator's answer to a narrowed request.
#[derive(Default)]
pub struct Merge {
    /// Groups refused, by id, with the order the request named every group in.
    groups: Vec<(GroupId, bool)>,
    /// Topics refused in an OffsetFetch / OffsetDelete, per group id: (name, partitions).
    topics: Vec<(String, RefusedTopics)>,
    /// Set the authorized operations of described groups.
    operations: bool,
    /// ListGroups: keep only the groups the client may DESCRIBE.
    filter_listed: bool,
    /// OffsetFetch for every topic: drop topics the client may not DESCRIBE.
    filter_fetched: bool,
}

fn may(
    ctx: &RequestContext,
    broker: &Broker,
    op: AclOperation,
    kind: ResourceType,
    name: &str,
) -> bool {
    ctx.authorize(broker, op, kind, name)
}

fn group_denied(broker: &Broker, ctx: &RequestContext, op: AclOperation, group: &str) -> bool {
    !may(ctx, broker, op, ResourceType::Group, group)
}

fn topic_denied(broker: &Broker, ctx: &RequestContext, op: AclOperation, topic: &str) -> bool {
    !may(ctx, broker, op, ResourceType::Topic, topic)
}

/// A JoinGroup refusal at the request's version: no generation, protocol or leader.
fn join_refused(version: i16, member_id: StrBytes) -> GroupResponse {
    let mut response = JoinGroupResponse::default()
        .with_error_code(ResponseError::GroupAuthorizationFailed.code())
        .with_generation_id(-1)
        .with_member_id(member_id);
    // ProtocolName is nullable from v7 on; older versions carry "".
    response.protocol_name = if version < 7 {
        Some(StrBytes::default())
    } else {
        None
    };
    GroupResponse::Join(response)
}

/// Checks `request` (see the module docs).
pub fn check(broker: &Broker, ctx: &RequestContext, request: GroupRequest) -> Checked {
    // Without an authorizer only asked-for authorized operations need filling in (every
    // operation a group supports, as Kafka answers then).
    let asks_operations = match &request {
        GroupRequest::DescribeGroups(r) => r.include_authorized_operations,
        GroupRequest::ConsumerGroupDescribe(r) => r.include_authorized_operations,
        _ => false,
    };
    if broker.acls.authorizer().is_none() && !asks_operations {
        return Checked::Forward(request, Merge::default());
    }
    let refused = ResponseError::GroupAuthorizationFailed.code();
    let read = AclOperation::Read;
    match request {
        GroupRequest::Join(r) if group_denied(broker, ctx, read, &r.group_id) => {
            Checked::Answer(join_refused(ctx.api_version, r.member_id))
        }
        GroupRequest::Sync(r) if group_denied(broker, ctx, read, &r.group_id) => {
            Checked::Answer(GroupResponse::Sync(
                SyncGroupResponse::default()
                    .with_error_code(refused)
                    .with_assignment(Bytes::new()),
            ))
        }
        GroupRequest::Heartbeat(r) if group_denied(broker, ctx, read, &r.group_id) => {
            Checked::Answer(GroupResponse::Heartbeat(
                HeartbeatResponse::default().with_error_code(refused),
            ))
        }
        GroupRequest::Leave(r) if group_denied(broker, ctx, read, &r.group_id) => Checked::Answer(
            GroupResponse::Leave(LeaveGroupResponse::default().with_error_code(refused)),
        ),
        GroupRequest::ConsumerGroupHeartbeat(r) => {
            let error = if group_denied(broker, ctx, read, &r.group_id) {
                Some(ResponseError::GroupAuthorizationFailed)
            } else if r
                .subscribed_topic_names
                .iter()
                .flatten()
                .any(|t| topic_denied(broker, ctx, AclOperation::Describe, t.0.as_str()))
            {
                Some(ResponseError::TopicAuthorizationFailed)
            } else {
                None
            };
            match error {
                None => Checked::Forward(GroupRequest::ConsumerGroupHeartbeat(r), Merge::default()),
                Some(error) => Checked::Answer(GroupResponse::ConsumerGroupHeartbeat(
                    ConsumerGroupHeartbeatResponse::default()
                        .with_error_code(error.code())
                        .with_member_epoch(-1),
                )),
            }
        }
        GroupRequest::DescribeGroups(mut r) => {
            let (groups, kept) = split_groups(broker, ctx, AclOperation::Describe, &r.groups);
            r.groups = kept;
            let merge = Merge {
                groups,
                operations: r.include_authorized_operations,
                ..Merge::default()
            };
            if r.groups.is_empty() {
                return Checked::Answer(merge.apply(
                    broker,
                    ctx,
                    GroupResponse::DescribeGroups(DescribeGroupsResponse::default()),
                ));
            }
            Checked::Forward(GroupRequest::DescribeGroups(r), merge)
        }
        GroupRequest::ConsumerGroupDescribe(mut r) => {
            let (groups, kept) = split_groups(broker, ctx, AclOperation::Describe, &r.group_ids);
            r.group_ids = kept;
            let merge = Merge {
                groups,
                operations: r.include_authorized_operations,
                ..Merge::default()
            };
            if r.group_ids.is_empty() {
                return Checked::Answer(merge.apply(
                    broker,
                    ctx,
                    GroupResponse::ConsumerGroupDescribe(ConsumerGroupDescribeResponse::default()),
                ));
            }
            Checked::Forward(GroupRequest::ConsumerGroupDescribe(r), merge)
        }
        GroupRequest::DeleteGroups(mut r) => {
            let (groups, kept) = split_groups(broker, ctx, AclOperation::Delete, &r.groups_names);
            r.groups_names = kept;
            let merge = Merge {
                groups,
                ..Merge::default()
            };
            if r.groups_names.is_empty() {
                return Checked::Answer(merge.apply(
                    broker,
                    ctx,
                    GroupResponse::DeleteGroups(DeleteGroupsResponse::default()),
                ));
            }
            Checked::Forward(GroupRequest::DeleteGroups(r), merge)
        }
        GroupRequest::ListGroups(r) => {
            let merge = Merge {
                filter_listed: !ctx.authorize_cluster(broker, AclOperation::Describe),
                ..Merge::default()
            };
            Checked::Forward(GroupRequest::ListGroups(r), merge)
        }
        GroupRequest::OffsetDelete(mut r) => {
            if group_denied(broker, ctx, AclOperation::Delete, &r.group_id) {
                return Checked::Answer(GroupResponse::OffsetDelete(
                    OffsetDeleteResponse::default().with_error_code(refused),
                ));
            }
            let mut denied = Vec::new();
            r.topics.retain(|t| {
                let keep = !topic_denied(broker, ctx, read, t.name.0.as_str());
                if !keep {
                    let partitions = t.partitions.iter().map(|p| p.partition_index).collect();
                    denied.push((t.name.clone(), partitions));
                }
                keep
            });
            let merge = Merge {
                topics: vec![(r.group_id.to_string(), denied)],
                ..Merge::default()
            };
            Checked::Forward(GroupRequest::OffsetDelete(r), merge)
        }
        GroupRequest::OffsetFetch(r) => check_offset_fetch(broker, ctx, r),
        other => Checked::Forward(other, Merge::default()),
    }
}

/// A topic of `group`'s members' current or target assignments the client may not DESCRIBE.
fn undescribable_topic(
    broker: &Broker,
    ctx: &RequestContext,
    group: &consumer_group_describe_response::DescribedGroup,
) -> Option<String> {
    broker.acls.authorizer()?;
    group
        .members
        .iter()
        .flat_map(|m| {
            m.assignment
                .topic_partitions
                .iter()
                .chain(&m.target_assignment.topic_partitions)
        })
        .map(|t| t.topic_name.0.to_string())
        .find(|topic| topic_denied(broker, ctx, AclOperation::Describe, topic))
}

/// The groups of a multi-group request: every one in order with whether it is refused, and
/// those to forward.
fn split_groups(
    broker: &Broker,
    ctx: &RequestContext,
    op: AclOperation,
    asked: &[GroupId],
) -> (Vec<(GroupId, bool)>, Vec<GroupId>) {
    let order: Vec<(GroupId, bool)> = asked
        .iter()
        .map(|g| (g.clone(), group_denied(broker, ctx, op, g)))
        .collect();
    let kept = order
        .iter()
        .filter(|(_, denied)| !denied)
        .map(|(g, _)| g.clone())
        .collect();
    (order, kept)
}

/// OffsetFetch: DESCRIBE on each group; named topics without DESCRIBE are taken out of the
/// request and answered TOPIC_AUTHORIZATION_FAILED; "every topic" keeps only describable ones.
fn check_offset_fetch(
    broker: &Broker,
    ctx: &RequestContext,
    mut r: kafka_protocol::messages::OffsetFetchRequest,
) -> Checked {
    let describe = AclOperation::Describe;
    let mut merge = Merge::default();
    if ctx.api_version < OFFSET_FETCH_BATCHED {
        let group_refused = group_denied(broker, ctx, describe, &r.group_id);
        merge.groups.push((r.group_id.clone(), group_refused));
        if group_refused {
            let mut response = OffsetFetchResponse::default();
            if ctx.api_version >= OFFSET_FETCH_TOP_LEVEL_ERROR {
                response.error_code = ResponseError::GroupAuthorizationFailed.code();
            } else {
                response.topics = r
                    .topics
                    .iter()
                    .flatten()
                    .map(|t| {
                        refused_fetch_topic(
                            &t.name,
                            &t.partition_indexes,
                            ResponseError::GroupAuthorizationFailed,
                        )
                    })
                    .collect();
            }
            return Checked::Answer(GroupResponse::OffsetFetch(response));
        }
        let mut denied = Vec::new();
        match &mut r.topics {
            None => merge.filter_fetched = true,
            Some(topics) => topics.retain(|t| {
                let keep = !topic_denied(broker, ctx, describe, t.name.0.as_str());
                if !keep {
                    denied.push((t.name.clone(), t.partition_indexes.clone()));
                }
                keep
            }),
        }
        merge.topics.push((r.group_id.to_string(), denied));
        return Checked::Forward(GroupRequest::OffsetFetch(r), merge);
    }
    for group in &mut r.groups {
        let refused = group_denied(broker, ctx, describe, &group.group_id);
        merge.groups.push((group.group_id.clone(), refused));
        let mut denied = Vec::new();
        match &mut group.topics {
            None => merge.filter_fetched = true,
            Some(topics) => topics.retain(|t| {
                let name = topic_name_of(broker, &t.name, t.topic_id);
                let keep = !topic_denied(broker, ctx, describe, &name);
                if !keep {
                    denied.push((t.name.clone(), t.partition_indexes.clone()));
                }
                keep
            }),
        }
        merge.topics.push((group.group_id.to_string(), denied));
    }
    let denied_groups: HashSet<String> = merge
        .groups
        .iter()
        .filter(|(_, d)| *d)
        .map(|(g, _)| g.to_string())
        .collect();
    r.groups
        .retain(|g| !denied_groups.contains(g.group_id.as_str()));
    if r.groups.is_empty() {
        return Checked::Answer(merge.apply(
            broker,
            ctx,
            GroupResponse::OffsetFetch(OffsetFetchResponse::default()),
        ));
    }
    Checked::Forward(GroupRequest::OffsetFetch(r), merge)
}

/// A topic's name from OffsetFetch v10+, which may name it by id only.
fn topic_name_of(broker: &Broker, name: &TopicName, id: uuid::Uuid) -> String {
    if name.0.is_empty() && !id.is_nil() {
        if let Some(topic) = broker.topics.get_by_id(id) {
            return topic.name.clone();
        }
    }
    name.0.to_string()
}

fn refused_fetch_topic(
    name: &TopicName,
    partitions: &[i32],
    error: ResponseError,
) -> OffsetFetchResponseTopic {
    OffsetFetchResponseTopic::default()
        .with_name(name.clone())
        .with_partitions(
            partitions
                .iter()
                .map(|&p| {
                    OffsetFetchResponsePartition::default()
                        .with_partition_index(p)
                        .with_committed_offset(-1)
                        .with_committed_leader_epoch(-1)
                        .with_metadata(Some(StrBytes::default()))
                        .with_error_code(error.code())
                })
                .collect(),
        )
}

fn refused_fetch_topics(name: &TopicName, partitions: &[i32]) -> OffsetFetchResponseTopics {
    OffsetFetchResponseTopics::default()
        .with_name(name.clone())
        .with_partitions(
            partitions
                .iter()
                .map(|&p| {
                    OffsetFetchResponsePartitions::default()
                        .with_partition_index(p)
                        .with_committed_offset(-1)
                        .with_committed_leader_epoch(-1)
                        .with_metadata(Some(StrBytes::default()))
                        .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                })
                .collect(),
        )
}

impl Merge {
    /// The refused topics recorded for `group`.
    fn topics_of(&self, group: &str) -> &[(TopicName, Vec<i32>)] {
        self.topics
            .iter()
            .find(|(g, _)| g == group)
            .map_or(&[], |(_, t)| t.as_slice())
    }

    fn refused(&self, group: &str) -> bool {
        self.groups
            .iter()
            .any(|(g, denied)| *denied && g.as_str() == group)
    }

    /// The coordinator's `response` with the refusals put back, in the request's order.
    pub fn apply(
        &self,
        broker: &Broker,
        ctx: &RequestContext,
        response: GroupResponse,
    ) -> GroupResponse {
        let refused = ResponseError::GroupAuthorizationFailed.code();
        let operations =
            |group: &str| ctx.authorized_operations(broker, ResourceType::Group, group);
        match response {
            GroupResponse::DescribeGroups(mut r) if !self.groups.is_empty() => {
                let mut answered = std::mem::take(&mut r.groups);
                for (group, denied) in &self.groups {
                    let described = if *denied {
                        let mut d = DescribedGroup::default()
                            .with_group_id(group.clone())
                            .with_error_code(refused);
                        d.authorized_operations = i32::MIN;
                        d
                    } else if let Some(at) = answered.iter().position(|d| &d.group_id == group) {
                        let mut d = answered.remove(at);
                        if self.operations && ctx.api_version >= 3 {
                            d.authorized_operations = operations(group);
                        }
                        d
                    } else {
                        continue;
                    };
                    r.groups.push(described);
                }
                GroupResponse::DescribeGroups(r)
            }
            GroupResponse::ConsumerGroupDescribe(mut r) if !self.groups.is_empty() => {
                let mut answered = std::mem::take(&mut r.groups);
                for (group, denied) in &self.groups {
                    let described = if *denied {
                        let mut d = consumer_group_describe_response::DescribedGroup::default()
                            .with_group_id(group.clone())
                            .with_error_code(refused);
                        d.authorized_operations = i32::MIN;
                        d
                    } else if let Some(at) = answered.iter().position(|d| &d.group_id == group) {
                        let mut d = answered.remove(at);
                        if let Some(topic) = undescribable_topic(broker, ctx, &d) {
                            // Kafka refuses the whole group rather than show part of it.
                            tracing::debug!(group = %group.as_str(), topic, "ConsumerGroupDescribe: an assigned topic may not be described");
                            let mut refused =
                                consumer_group_describe_response::DescribedGroup::default()
                                    .with_group_id(group.clone())
                                    .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                                    .with_error_message(Some(StrBytes::from_static_str(
                                        "The group has described topic(s) that the client is not authorized to describe.",
                                    )));
                            refused.authorized_operations = i32::MIN;
                            refused
                        } else {
                            if self.operations {
                                d.authorized_operations = operations(group);
                            }
                            d
                        }
                    } else {
                        continue;
                    };
                    r.groups.push(described);
                }
                GroupResponse::ConsumerGroupDescribe(r)
            }
            GroupResponse::DeleteGroups(mut r) if !self.groups.is_empty() => {
                let mut answered = std::mem::take(&mut r.results);
                for (group, denied) in &self.groups {
                    if *denied {
                        r.results.push(
                            DeletableGroupResult::default()
                                .with_group_id(group.clone())
                                .with_error_code(refused),
                        );
                    } else if let Some(at) = answered.iter().position(|d| &d.group_id == group) {
                        r.results.push(answered.remove(at));
                    }
                }
                GroupResponse::DeleteGroups(r)
            }
            GroupResponse::ListGroups(mut r) if self.filter_listed => {
                r.groups.retain(|g| {
                    ctx.authorize(
                        broker,
                        AclOperation::Describe,
                        ResourceType::Group,
                        &g.group_id,
                    )
                });
                GroupResponse::ListGroups(r)
            }
            GroupResponse::OffsetDelete(mut r) if !self.topics.is_empty() => {
                for (_, denied) in &self.topics {
                    for (name, partitions) in denied {
                        r.topics.push(
                            OffsetDeleteResponseTopic::default()
                                .with_name(name.clone())
                                .with_partitions(
                                    partitions
                                        .iter()
                                        .map(|&p| {
                                            OffsetDeleteResponsePartition::default()
                                                .with_partition_index(p)
                                                .with_error_code(
                                                    ResponseError::TopicAuthorizationFailed.code(),
                                                )
                                        })
                                        .collect(),
                                ),
                        );
                    }
                }
                GroupResponse::OffsetDelete(r)
            }
            // Only a checked request has its groups recorded; an unchecked answer stays as is.
            GroupResponse::OffsetFetch(mut r) if !self.groups.is_empty() => {
                let describable = |name: &str| {
                    ctx.authorize(broker, AclOperation::Describe, ResourceType::Topic, name)
                };
                if ctx.api_version < OFFSET_FETCH_BATCHED {
                    if self.filter_fetched {
                        r.topics.retain(|t| describable(t.name.0.as_str()));
                    }
                    if let Some((group, _)) = self.groups.first() {
                        for (name, partitions) in self.topics_of(group.as_str()) {
                            r.topics.push(refused_fetch_topic(
                                name,
                                partitions,
                                ResponseError::TopicAuthorizationFailed,
                            ));
                        }
                    }
                    return GroupResponse::OffsetFetch(r);
                }
                let mut answered = std::mem::take(&mut r.groups);
                for (group, _) in &self.groups {
                    if self.refused(group.as_str()) {
                        r.groups.push(
                            OffsetFetchResponseGroup::default()
                                .with_group_id(group.clone())
                                .with_error_code(refused),
                        );
                        continue;
                    }
                    let Some(at) = answered.iter().position(|g| &g.group_id == group) else {
                        continue;
                    };
                    let mut g = answered.remove(at);
                    if self.filter_fetched {
                        g.topics
                            .retain(|t| describable(&topic_name_of(broker, &t.name, t.topic_id)));
                    }
                    for (name, partitions) in self.topics_of(group.as_str()) {
                        g.topics.push(refused_fetch_topics(name, partitions));
                    }
                    r.groups.push(g);
                }
                GroupResponse::OffsetFetch(r)
            }
            other => other,
        }
    }
}
