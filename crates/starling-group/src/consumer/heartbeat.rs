//! ConsumerGroupHeartbeat (KIP-848): joining (member epoch 0), heartbeating, leaving (−1) and a
//! static member's temporary leave (−2), with Kafka's validation and errors; plus the two
//! timers a member runs on: its session, and the rebalance timeout within which it must give
//! up partitions it was asked to revoke.
//!
//! One heartbeat: (1) the member's subscription is updated and the group epoch bumped if what
//! the assignment depends on changed; (2) the target assignment is computed if the group epoch
//! is ahead of it; (3) the member's current assignment takes one reconciliation step toward
//! its target; (4) the response carries the member epoch, the heartbeat interval (short while
//! the member has partitions to revoke or to receive) and the assignment when it changed or
//! the request was a full one.

use std::collections::BTreeSet;

use kafka_protocol::messages::consumer_group_heartbeat_response::{
    Assignment, TopicPartitions as ResponseTopicPartitions,
};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::reconcile::{self, Step};
use super::subscription::{group_subscribed_ids, metadata_hash, subscribed_ids};
use super::target::Failure;
use super::{
    ConsumerAssignmentValue, ConsumerGroupValue, ConsumerMember, MemberState, PartitionEpochs,
    TopicPartitions, JOIN_EPOCH, LEAVE_EPOCH, STATIC_LEAVE_EPOCH,
};
use crate::history::{DepartureReason, RebalanceCause};
use crate::responses::s;
use crate::timers::TimerKey;
use crate::{ids, ClientInfo, GroupCoordinator, GroupResponse, Record, RequestId};

/// From this version on the client generates its member id (KIP-1082).
const CLIENT_MEMBER_ID_VERSION: i16 = 1;

impl GroupCoordinator {
    pub(crate) fn handle_consumer_heartbeat(
        &mut self,
        id: RequestId,
        version: i16,
        client: &ClientInfo,
        request: ConsumerGroupHeartbeatRequest,
    ) {
        let response = match self.consumer_heartbeat(version, client, &request) {
            Ok(response) => response,
            Err((error, message)) => {
                let mut response = ConsumerGroupHeartbeatResponse::default();
                response.error_code = error.code();
                response.error_message = Some(s(&message));
                response.member_epoch = 0;
                response
            }
        };
        self.respond(id, GroupResponse::ConsumerGroupHeartbeat(response));
    }

    fn consumer_heartbeat(
        &mut self,
        version: i16,
        client: &ClientInfo,
        request: &ConsumerGroupHeartbeatRequest,
    ) -> Result<ConsumerGroupHeartbeatResponse, Failure> {
        self.validate_heartbeat(version, request)?;
        let group_id = request.group_id.to_string();
        let member_epoch = request.member_epoch;
        if member_epoch == LEAVE_EPOCH || member_epoch == STATIC_LEAVE_EPOCH {
            return self.consumer_leave(&group_id, request);
        }
        let joining = member_epoch == JOIN_EPOCH;
        self.check_group_for_heartbeat(&group_id, joining)?;
        if joining && self.classic_group_has_members(&group_id) {
            self.upgrade_for_heartbeat(&group_id, version, request)?;
        }
        let owned = request.topic_partitions.as_ref().map(|topics| {
            topics
                .iter()
                .map(|t| {
                    (
                        t.topic_id,
                        t.partitions.iter().copied().collect::<BTreeSet<i32>>(),
                    )
                })
                .fold(TopicPartitions::new(), |mut acc, (topic, parts)| {
                    acc.entry(topic).or_default().extend(parts);
                    acc
                })
        });
        let mut member_id = request.member_id.to_string();
        if member_id.is_empty() {
            self.id_counter += 1;
            member_id = ids::uuid_like(self.wall_now(), self.id_counter);
        }
        let instance_id = request.instance_id.as_ref().map(|i| i.to_string());

        // The member as it is before this heartbeat (the group is borrowed, not copied: a
        // heartbeat costs the same in a group of any size).
        let no_group = super::ConsumerGroup::default();
        let existing = self.consumer_group(&group_id).unwrap_or(&no_group);
        if existing.members.len() >= usize::try_from(self.config.consumer_max_size).unwrap_or(0)
            && !existing.members.contains_key(&member_id)
        {
            return Err((
                ResponseError::GroupMaxSizeReached,
                format!(
                    "The consumer group has reached its maximum capacity of {} members.",
                    self.config.consumer_max_size
                ),
            ));
        }
        let (member, replaced) = match &instance_id {
            None => (
                dynamic_member(&existing.members, &member_id, member_epoch, owned.as_ref())?,
                None,
            ),
            Some(instance) => {
                static_member(existing, &member_id, instance, member_epoch, owned.as_ref())?
            }
        };
        let is_new = !existing.members.contains_key(&member_id) && replaced.is_none();
        let group_is_new = existing.epoch == 0;

        // 1. The member's subscription.
        let mut subscription = member.subscription.clone();
        if let Some(instance) = &instance_id {
            subscription.instance_id = Some(instance.clone());
        }
        if let Some(rack) = &request.rack_id {
            subscription.rack_id = Some(rack.to_string());
        }
        if request.rebalance_timeout_ms != -1 {
            subscription.rebalance_timeout_ms = request.rebalance_timeout_ms;
        }
        if let Some(assignor) = &request.server_assignor {
            subscription.server_assignor = Some(assignor.to_string());
        }
        if let Some(names) = &request.subscribed_topic_names {
            let names: BTreeSet<String> = names.iter().map(|n| n.to_string()).collect();
            subscription.subscribed_topic_names = names.into_iter().collect();
        }
        if version >= 1 {
            if let Some(regex) = &request.subscribed_topic_regex {
                subscription.subscribed_topic_regex =
                    (!regex.is_empty()).then(|| regex.to_string());
            }
        }
        subscription.client_id = client.client_id.clone();
        subscription.client_host = client.client_host.clone();
        let subscription_changed = is_new
            || subscription.subscribed_topic_names != member.subscription.subscribed_topic_names
            || subscription.subscribed_topic_regex != member.subscription.subscribed_topic_regex;
        if subscription.subscribed_topic_regex != member.subscription.subscribed_topic_regex {
            if let Some(pattern) = &subscription.subscribed_topic_regex {
                self.regexes
                    .compile(pattern)
                    .map_err(|message| (ResponseError::InvalidRegularExpression, message))?;
            }
        }

        // From here on the heartbeat is accepted: records follow.
        if self.consumer_group(&group_id).is_none() {
            self.ensure_consumer_group(&group_id);
        }
        if let Some(old_id) = &replaced {
            self.replace_static_consumer_member(&group_id, old_id, &member_id);
        }
        if is_new || subscription != member.subscription {
            self.emit(Record::ConsumerMember {
                group_id: group_id.clone(),
                member_id: member_id.clone(),
                value: Some(subscription.clone()),
            });
        }
        if joining && !is_new && replaced.is_none() {
            // Starling: a member that rejoins under its id starts over, releasing what it held.
            self.emit(Record::ConsumerAssignment {
                group_id: group_id.clone(),
                member_id: member_id.clone(),
                value: Some(ConsumerAssignmentValue::default()),
            });
        }
        if subscription_changed || group_is_new {
            // Only then can the subscribed topics differ from what the epoch was computed for
            // (topic changes are handled as they come, by `set_topics`).
            self.maybe_bump_group_epoch(&group_id, subscription_changed);
        }

        // 2. The target assignment.
        self.update_target_assignment(&group_id)?;

        // 3. One reconciliation step.
        let before = self
            .consumer_group(&group_id)
            .and_then(|g| g.members.get(&member_id))
            .map(|m| m.assignment.clone())
            .unwrap_or_default();
        self.reconcile_member(&group_id, &member_id, owned.as_ref());
        self.schedule_consumer_session(&group_id, &member_id);

        // 4. The response.
        let steady_interval = self.steady_heartbeat_interval_ms();
        let group = self
            .consumer_group(&group_id)
            .expect("the heartbeat's group exists");
        let member = &group.members[&member_id];
        let mut response = ConsumerGroupHeartbeatResponse::default();
        response.member_id = Some(s(&member_id));
        response.member_epoch = member.assignment.member_epoch;
        response.heartbeat_interval_ms = if member.is_reconciled_to(group.assignment_epoch) {
            steady_interval
        } else {
            self.config.consumer_pending_heartbeat_interval_ms
        };
        let full_request = joining
            || (request.rebalance_timeout_ms != -1
                && request.subscribed_topic_names.is_some()
                && request.topic_partitions.is_some());
        if full_request || before.assigned != member.assignment.assigned {
            response.assignment = Some(response_assignment(&member.assignment.assigned));
        }
        Ok(response)
    }

    /// The interval a reconciled member is told to heartbeat at: the broker's steady heartbeat
    /// budget shared by every consumer-protocol member it holds (see
    /// [`crate::GroupConfig::consumer_heartbeat_rate_budget`]).
    pub(crate) fn steady_heartbeat_interval_ms(&mut self) -> i32 {
        let longest = self.config.consumer_heartbeat_interval_ms;
        let budget = self.config.consumer_heartbeat_rate_budget;
        if budget == 0 {
            return longest;
        }
        let members = match self.consumer_members {
            Some(count) => count,
            None => {
                let count = self
                    .groups
                    .values()
                    .filter_map(|g| g.consumer.as_ref())
                    .map(|c| c.members.len())
                    .sum();
                self.consumer_members = Some(count);
                count
            }
        };
        steady_interval_for(
            members,
            budget,
            self.config.consumer_min_heartbeat_interval_ms,
            longest,
        )
    }

    /// Kafka's `throwIfConsumerGroupHeartbeatRequestIsInvalid`.
    fn validate_heartbeat(
        &self,
        version: i16,
        request: &ConsumerGroupHeartbeatRequest,
    ) -> Result<(), Failure> {
        let invalid = |message: &str| Err((ResponseError::InvalidRequest, message.to_string()));
        let epoch = request.member_epoch;
        if (version >= CLIENT_MEMBER_ID_VERSION || epoch > 0 || epoch == LEAVE_EPOCH)
            && request.member_id.is_empty()
        {
            return invalid("MemberId can't be empty.");
        }
        if request.group_id.is_empty() {
            return invalid("GroupId can't be empty.");
        }
        if request.instance_id.as_ref().is_some_and(|i| i.is_empty()) {
            return invalid("InstanceId can't be empty.");
        }
        if request.rack_id.as_ref().is_some_and(|r| r.is_empty()) {
            return invalid("RackId can't be empty.");
        }
        if epoch == JOIN_EPOCH {
            if request.rebalance_timeout_ms == -1 {
                return invalid("RebalanceTimeoutMs must be provided in first request.");
            }
            if request
                .topic_partitions
                .as_ref()
                .is_none_or(|t| !t.is_empty())
            {
                return invalid("TopicPartitions must be empty when (re-)joining.");
            }
            let regex = version >= 1 && request.subscribed_topic_regex.is_some();
            if request.subscribed_topic_names.is_none() && !regex {
                return invalid(
                    "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.",
                );
            }
        } else if epoch == STATIC_LEAVE_EPOCH {
            if request.instance_id.is_none() {
                return invalid("InstanceId can't be null.");
            }
        } else if epoch < STATIC_LEAVE_EPOCH {
            return invalid("MemberEpoch is invalid.");
        }
        if let Some(assignor) = &request.server_assignor {
            if !self
                .config
                .consumer_assignors
                .iter()
                .any(|a| a == assignor.as_str())
            {
                return Err((
                    ResponseError::UnsupportedAssignor,
                    format!(
                        "ServerAssignor {assignor} is not supported. Supported assignors: {}.",
                        self.config.consumer_assignors.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The group a heartbeat addresses must be a consumer group, or not exist yet for a join;
    /// an empty classic group (offsets only) becomes a consumer group when a member joins.
    fn check_group_for_heartbeat(&self, group_id: &str, joining: bool) -> Result<(), Failure> {
        match self.groups.get(group_id) {
            None if joining => Ok(()),
            None => Err((
                ResponseError::UnknownMemberId,
                format!("Consumer group {group_id} not found."),
            )),
            Some(group) if group.consumer.is_some() => Ok(()),
            Some(group) if joining && group.members.is_empty() && group.pending_join.is_empty() => {
                Ok(())
            }
            // A classic group with members: an online upgrade, if allowed.
            Some(group) if joining && !group.members.is_empty() => Ok(()),
            Some(_) => Err((
                ResponseError::GroupIdNotFound,
                format!("Group {group_id} is not a consumer group."),
            )),
        }
    }

    fn classic_group_has_members(&self, group_id: &str) -> bool {
        self.groups
            .get(group_id)
            .is_some_and(|g| g.consumer.is_none() && !g.members.is_empty())
    }

    /// A member joins a classic group with members: the group becomes a consumer group
    /// first — but only if the heartbeat will then be accepted, since nothing is taken back
    /// once emitted (Kafka drops the records of a failed heartbeat, conversion included).
    fn upgrade_for_heartbeat(
        &mut self,
        group_id: &str,
        version: i16,
        request: &ConsumerGroupHeartbeatRequest,
    ) -> Result<(), Failure> {
        let members = self.upgraded_members(group_id)?;
        if members.len() >= usize::try_from(self.config.consumer_max_size).unwrap_or(0) {
            return Err((
                ResponseError::GroupMaxSizeReached,
                format!(
                    "The consumer group has reached its maximum capacity of {} members.",
                    self.config.consumer_max_size
                ),
            ));
        }
        if let Some(instance) = &request.instance_id {
            let owner = members
                .iter()
                .find(|(_, m)| m.subscription.instance_id.as_deref() == Some(instance.as_str()));
            if let Some((owner, _)) = owner {
                return Err((
                    ResponseError::UnreleasedInstanceId,
                    format!(
                        "Static member {} with instance id {instance} cannot join the group because the instance id is owned by {owner} member.",
                        request.member_id
                    ),
                ));
            }
        }
        if version >= 1 {
            if let Some(pattern) = request.subscribed_topic_regex.as_deref() {
                if !pattern.is_empty() {
                    self.regexes
                        .compile(pattern)
                        .map_err(|message| (ResponseError::InvalidRegularExpression, message))?;
                }
            }
        }
        self.upgrade_to_consumer_group(group_id, members);
        Ok(())
    }

    /// Bumps the group epoch if a subscription changed or the subscribed topics' metadata
    /// differs from what the epoch was computed for (also how a new group leaves epoch 0).
    pub(crate) fn maybe_bump_group_epoch(&mut self, group_id: &str, subscription_changed: bool) {
        let Some(group) = super::consumer_in(&self.groups, group_id) else {
            return;
        };
        let subscribed = group_subscribed_ids(group, &self.topics, &mut self.regexes);
        let hash = metadata_hash(&subscribed, &self.topics);
        if group.epoch == 0 || subscription_changed || hash != group.metadata_hash {
            let epoch = group.epoch + 1;
            self.emit(Record::ConsumerGroup {
                group_id: group_id.to_string(),
                value: Some(ConsumerGroupValue {
                    epoch,
                    metadata_hash: hash,
                }),
            });
        }
    }

    /// One reconciliation step for a member, recorded if it changed anything; the rebalance
    /// timeout runs while the member has partitions to revoke.
    pub(crate) fn reconcile_member(
        &mut self,
        group_id: &str,
        member_id: &str,
        owned: Option<&TopicPartitions>,
    ) {
        let Some(group) = super::consumer_in(&self.groups, group_id) else {
            return;
        };
        let Some(member) = group.members.get(member_id) else {
            return;
        };
        if member.is_reconciled_to(group.assignment_epoch) {
            return;
        }
        let subscribed = subscribed_ids(&member.subscription, &self.topics, &mut self.regexes);
        let empty = TopicPartitions::new();
        let target = group.target.get(member_id).unwrap_or(&empty);
        let held_elsewhere = |topic: Uuid, partition: i32| {
            group
                .holder(topic, partition)
                .is_some_and(|h| h != member_id)
        };
        let next = reconcile::next(
            &member.assignment,
            &Step {
                target_epoch: group.assignment_epoch,
                target,
                subscribed: &subscribed,
                owned,
                held_elsewhere: &held_elsewhere,
            },
        );
        if next == member.assignment {
            return;
        }
        let rebalance_timeout = i64::from(member.subscription.rebalance_timeout_ms.max(0));
        let unrevoked = next.state == MemberState::UnrevokedPartitions;
        let classic = member.is_classic();
        self.emit(Record::ConsumerAssignment {
            group_id: group_id.to_string(),
            member_id: member_id.to_string(),
            value: Some(next),
        });
        if classic {
            // A classic member revokes by rejoining: its join and sync timers watch it.
            return;
        }
        let key = TimerKey::ConsumerRebalance {
            group: group_id.to_string(),
            member: member_id.to_string(),
        };
        if unrevoked {
            self.timers.schedule(key, self.now() + rebalance_timeout);
        } else {
            self.timers.cancel(&key);
        }
    }

    /// Starts (or restarts) a member's session: `group.consumer.session.timeout.ms`, or a
    /// classic member's own session timeout.
    pub(crate) fn schedule_consumer_session(&mut self, group_id: &str, member_id: &str) {
        let timeout = self
            .consumer_group(group_id)
            .and_then(|g| g.members.get(member_id))
            .and_then(|m| m.subscription.classic.as_ref())
            .map_or(self.config.consumer_session_timeout_ms, |c| {
                c.session_timeout_ms
            });
        let deadline = self.now() + i64::from(timeout.max(0));
        self.timers.schedule(
            TimerKey::ConsumerSession {
                group: group_id.to_string(),
                member: member_id.to_string(),
            },
            deadline,
        );
    }

    /// A static member rejoins under a new member id: the new id takes over the old member's
    /// subscription, target and assignment (at epoch 0), and the old id goes.
    pub(crate) fn replace_static_consumer_member(
        &mut self,
        group_id: &str,
        old_id: &str,
        new_id: &str,
    ) {
        let Some(group) = self.consumer_group(group_id) else {
            return;
        };
        let Some(old) = group.members.get(old_id).cloned() else {
            return;
        };
        let target = group.target.get(old_id).cloned();
        self.note_consumer_departure(DepartureReason::Replaced);
        self.remove_consumer_member(group_id, old_id);
        self.emit(Record::ConsumerMember {
            group_id: group_id.to_string(),
            member_id: new_id.to_string(),
            value: Some(old.subscription),
        });
        if let Some(target) = target {
            self.emit(Record::ConsumerTarget {
                group_id: group_id.to_string(),
                member_id: new_id.to_string(),
                value: Some(target),
            });
        }
        self.emit(Record::ConsumerAssignment {
            group_id: group_id.to_string(),
            member_id: new_id.to_string(),
            value: Some(ConsumerAssignmentValue {
                member_epoch: JOIN_EPOCH,
                previous_member_epoch: JOIN_EPOCH,
                // The new instance holds them from its join on (as after a temporary
                // leave; a classic member may replace one that did not leave).
                assigned_at: epochs_from_join(&old.assignment),
                ..old.assignment
            }),
        });
    }

    /// Removes a member's records and timers (no epoch bump: callers decide).
    pub(crate) fn remove_consumer_member(&mut self, group_id: &str, member_id: &str) {
        for record in [
            Record::ConsumerAssignment {
                group_id: group_id.to_string(),
                member_id: member_id.to_string(),
                value: None,
            },
            Record::ConsumerTarget {
                group_id: group_id.to_string(),
                member_id: member_id.to_string(),
                value: None,
            },
            Record::ConsumerMember {
                group_id: group_id.to_string(),
                member_id: member_id.to_string(),
                value: None,
            },
        ] {
            self.emit(record);
        }
        let (group, member) = (group_id.to_string(), member_id.to_string());
        for key in [
            TimerKey::ConsumerSession {
                group: group.clone(),
                member: member.clone(),
            },
            TimerKey::ConsumerRebalance {
                group: group.clone(),
                member: member.clone(),
            },
            TimerKey::ClassicJoin {
                group: group.clone(),
                member: member.clone(),
            },
            TimerKey::ClassicSync { group, member },
        ] {
            self.timers.cancel(&key);
        }
    }

    /// A member leaves for good (or is fenced): it goes, and the group epoch is bumped so the
    /// others share its partitions — unless only classic members remain and the group turns
    /// classic again ([`GroupCoordinator::downgrade_to_classic_group`]).
    pub(crate) fn fence_consumer_member(
        &mut self,
        group_id: &str,
        member_id: &str,
        cause: RebalanceCause,
    ) {
        self.fence_consumer_members(group_id, &[member_id.to_string()], cause);
    }

    /// [`GroupCoordinator::fence_consumer_member`] for several members at once (one epoch
    /// bump).
    pub(crate) fn fence_consumer_members(
        &mut self,
        group_id: &str,
        member_ids: &[String],
        cause: RebalanceCause,
    ) {
        let Some(group) = self.consumer_group(group_id) else {
            return;
        };
        let leaving: BTreeSet<String> = member_ids
            .iter()
            .filter(|id| group.members.contains_key(id.as_str()))
            .cloned()
            .collect();
        if leaving.is_empty() {
            return;
        }
        if self.may_downgrade(group_id, &leaving) {
            self.downgrade_to_classic_group(group_id, &leaving, Some(cause));
            return;
        }
        for member_id in &leaving {
            self.remove_consumer_member(group_id, member_id);
        }
        self.maybe_bump_group_epoch(group_id, true);
    }

    /// Member epoch −1 (leave) or −2 (a static member's temporary leave).
    fn consumer_leave(
        &mut self,
        group_id: &str,
        request: &ConsumerGroupHeartbeatRequest,
    ) -> Result<ConsumerGroupHeartbeatResponse, Failure> {
        let unknown = |what: &str| {
            Err((
                ResponseError::UnknownMemberId,
                format!("{what} is not a member of group {group_id}."),
            ))
        };
        let Some(group) = self.consumer_group(group_id) else {
            return unknown(&request.member_id);
        };
        let member_id = match &request.instance_id {
            Some(instance) => match group.static_members.get(instance.as_str()) {
                None => {
                    return Err((
                        ResponseError::UnknownMemberId,
                        format!("Instance id {instance} is unknown."),
                    ))
                }
                Some(owner) if owner != request.member_id.as_str() => {
                    return Err((
                        ResponseError::FencedInstanceId,
                        format!(
                            "Static member {} with instance id {instance} was fenced by member {owner}.",
                            request.member_id
                        ),
                    ))
                }
                Some(owner) => owner.clone(),
            },
            None if group.members.contains_key(request.member_id.as_str()) => {
                request.member_id.to_string()
            }
            None => return unknown(&request.member_id),
        };
        if request.member_epoch == STATIC_LEAVE_EPOCH {
            // The member keeps its partitions (nobody else gets them) until it comes back or
            // its session runs out.
            let assignment = group.members[&member_id].assignment.clone();
            let mut value = ConsumerAssignmentValue {
                member_epoch: STATIC_LEAVE_EPOCH,
                previous_member_epoch: assignment.member_epoch,
                pending_revocation: TopicPartitions::new(),
                ..assignment
            };
            // The instance that comes back holds them from its join on (Kafka's
            // `resetAssignedPartitionsEpochsToZero`).
            value.assigned_at = epochs_from_join(&value);
            self.emit(Record::ConsumerAssignment {
                group_id: group_id.to_string(),
                member_id: member_id.clone(),
                value: Some(value),
            });
            self.timers.cancel(&TimerKey::ConsumerRebalance {
                group: group_id.to_string(),
                member: member_id.clone(),
            });
        } else {
            self.fence_consumer_member(group_id, &member_id, RebalanceCause::MemberLeft);
        }
        let mut response = ConsumerGroupHeartbeatResponse::default();
        response.member_id = Some(s(&member_id));
        response.member_epoch = request.member_epoch;
        Ok(response)
    }

    /// A member's session ran out: it is fenced.
    pub(crate) fn on_consumer_session_expired(&mut self, group_id: &str, member_id: &str) {
        self.note_consumer_departure(DepartureReason::SessionExpired);
        self.fence_consumer_member(group_id, member_id, RebalanceCause::SessionExpired);
    }

    /// A member did not give up its partitions within its rebalance timeout: it is fenced.
    pub(crate) fn on_consumer_rebalance_timeout(&mut self, group_id: &str, member_id: &str) {
        let unrevoked = self
            .consumer_group(group_id)
            .and_then(|g| g.members.get(member_id))
            .is_some_and(|m| m.assignment.state == MemberState::UnrevokedPartitions);
        if unrevoked {
            self.note_consumer_departure(DepartureReason::NotRevoked);
            self.fence_consumer_member(group_id, member_id, RebalanceCause::RebalanceTimeout);
        }
    }
}

/// The dynamic member a heartbeat is from: created on a join, else it must exist with an
/// acceptable epoch.
fn dynamic_member(
    members: &std::collections::BTreeMap<String, ConsumerMember>,
    member_id: &str,
    epoch: i32,
    owned: Option<&TopicPartitions>,
) -> Result<ConsumerMember, Failure> {
    match members.get(member_id) {
        Some(member) if epoch == JOIN_EPOCH => Ok(ConsumerMember {
            assignment: ConsumerAssignmentValue::default(),
            ..member.clone()
        }),
        None if epoch == JOIN_EPOCH => Ok(ConsumerMember::default()),
        None => Err((
            ResponseError::UnknownMemberId,
            format!("Member {member_id} is not a member of the group."),
        )),
        Some(member) => {
            check_epoch(member, epoch, owned)?;
            Ok(member.clone())
        }
    }
}

/// The static member a heartbeat is from, and the member id it replaces when a static member
/// comes back under a new id.
fn static_member(
    group: &super::ConsumerGroup,
    member_id: &str,
    instance: &str,
    epoch: i32,
    owned: Option<&TopicPartitions>,
) -> Result<(ConsumerMember, Option<String>), Failure> {
    let existing_id = group.static_members.get(instance);
    let existing = existing_id.and_then(|id| group.members.get(id));
    if epoch == JOIN_EPOCH {
        return match (existing_id, existing) {
            (Some(old_id), Some(old)) => {
                if !old.has_left_temporarily() && old_id != member_id {
                    return Err((
                        ResponseError::UnreleasedInstanceId,
                        format!(
                            "Static member {member_id} with instance id {instance} cannot join the group because the instance id is owned by {old_id} member."
                        ),
                    ));
                }
                if old_id == member_id {
                    // The same member id comes back: it keeps its assignment, at epoch 0.
                    let mut member = old.clone();
                    member.assignment.member_epoch = JOIN_EPOCH;
                    member.assignment.previous_member_epoch = JOIN_EPOCH;
                    return Ok((member, None));
                }
                let mut member = old.clone();
                member.assignment.member_epoch = JOIN_EPOCH;
                member.assignment.previous_member_epoch = JOIN_EPOCH;
                Ok((member, Some(old_id.clone())))
            }
            _ => Ok((
                group.members.get(member_id).cloned().unwrap_or_default(),
                None,
            )),
        };
    }
    let (Some(existing_id), Some(existing)) = (existing_id, existing) else {
        return Err((
            ResponseError::UnknownMemberId,
            format!("Instance id {instance} is unknown."),
        ));
    };
    if existing_id != member_id {
        return Err((
            ResponseError::FencedInstanceId,
            format!(
                "Static member {member_id} with instance id {instance} was fenced by member {existing_id}."
            ),
        ));
    }
    check_epoch(existing, epoch, owned)?;
    Ok((existing.clone(), None))
}

/// Kafka's `throwIfConsumerGroupMemberEpochIsInvalid`: an epoch ahead of the coordinator's is
/// fenced; one behind is fenced unless it is the previous epoch and the member owns no more
/// than it is assigned (the response that moved it on was lost).
fn check_epoch(
    member: &ConsumerMember,
    epoch: i32,
    owned: Option<&TopicPartitions>,
) -> Result<(), Failure> {
    let current = member.assignment.member_epoch;
    let fenced = |side: &str| {
        Err((
            ResponseError::FencedMemberEpoch,
            format!(
                "The consumer group member has a {side} member epoch ({epoch}) than the one known by the group coordinator ({current}). The member must abandon all its partitions and rejoin."
            ),
        ))
    };
    if epoch > current {
        return fenced("greater");
    }
    if epoch < current {
        let subset = owned.is_some_and(|owned| {
            owned.iter().all(|(topic, parts)| {
                member
                    .assignment
                    .assigned
                    .get(topic)
                    .is_some_and(|assigned| parts.is_subset(assigned))
            })
        });
        if epoch != member.assignment.previous_member_epoch || !subset {
            return fenced("smaller");
        }
    }
    Ok(())
}

/// An assignment as the response carries it.
pub(crate) fn response_assignment(assigned: &TopicPartitions) -> Assignment {
    let mut assignment = Assignment::default();
    assignment.topic_partitions = assigned
        .iter()
        .map(|(topic, partitions)| {
            let mut t = ResponseTopicPartitions::default();
            t.topic_id = *topic;
            t.partitions = partitions.iter().copied().collect();
            t
        })
        .collect();
    assignment
}

/// `members` heartbeating every `interval` send `members / interval` heartbeats a second: the
/// shortest interval within `budget` per second, kept between `shortest` and `longest`.
pub(crate) fn steady_interval_for(members: usize, budget: u32, shortest: i32, longest: i32) -> i32 {
    let within_budget = (members as u64 * 1000).div_ceil(u64::from(budget.max(1)));
    let within_budget = i32::try_from(within_budget).unwrap_or(i32::MAX);
    within_budget.max(shortest).min(longest)
}

/// Every partition `assignment` holds, at the join epoch.
fn epochs_from_join(assignment: &ConsumerAssignmentValue) -> PartitionEpochs {
    let mut out = PartitionEpochs::new();
    for (topic, partition) in assignment.held() {
        out.entry(topic).or_default().insert(partition, JOIN_EPOCH);
    }
    out
}
