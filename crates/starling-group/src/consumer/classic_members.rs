//! Classic members inside a consumer-protocol group (Kafka's `classicGroupJoinToConsumerGroup`,
//! `classicGroupSyncToConsumerGroup`, `classicGroupHeartbeatToConsumerGroup` and
//! `classicGroupLeaveToConsumerGroup`): a client on the classic protocol is a member like any
//! other — the server-side assignor assigns it, its partitions move only once released — but
//! it speaks JoinGroup, SyncGroup and Heartbeat:
//!
//! * **JoinGroup** is answered at once: the member's subscription and the partitions it owns
//!   come from its metadata, the group epoch moves if its subscription changed, and it takes
//!   one reconciliation step. The generation it is given is its member epoch; it is its own
//!   leader-less follower (no member list). A static member that replaces the last member on
//!   the consumer protocol turns the group classic.
//! * **SyncGroup** returns what the member holds (`ConsumerProtocolAssignment`), without the
//!   partitions it must give up: a cooperative client revokes those and rejoins, which is how a
//!   classic member reports a revocation; an eager client owns nothing when it rejoins.
//! * **Heartbeat** answers REBALANCE_IN_PROGRESS when the member must rejoin: the group epoch
//!   moved past its epoch, it has partitions to give up, or partitions it waits for were
//!   released. It must then rejoin, and after joining sync, within its rebalance timeout or
//!   it is fenced.
//! * **LeaveGroup** fences members (static ones too, by instance id); when only classic
//!   members remain the group may turn classic again
//!   ([`GroupCoordinator::downgrade_to_classic_group`]).
//!
//! A classic member's session is its own JoinGroup session timeout.

use std::collections::BTreeSet;

use kafka_protocol::messages::{HeartbeatRequest, SyncGroupRequest};
use kafka_protocol::ResponseError;

use super::reconcile::{self, Step};
use super::subscription::subscribed_ids;
use super::{ClassicMemberMetadata, ConsumerGroup, ConsumerMember, MemberState, MigrationPolicy};
use crate::history::RebalanceCause;
use crate::join::JoinOffer;
use crate::member::Held;
use crate::responses::{self, JoinReply};
use crate::timers::TimerKey;
use crate::{ids, GroupCoordinator, Record, RequestId};
use starling_protocol::consumer_protocol::CONSUMER_PROTOCOL_TYPE;
use starling_protocol::consumer_protocol::{decode_subscription, encode_assignment, version_of};

/// Why a classic request to a consumer group fails.
type Refusal = ResponseError;

impl GroupCoordinator {
    /// A JoinGroup to a consumer-protocol group that has members.
    pub(crate) fn classic_join_to_consumer_group(
        &mut self,
        group_id: &str,
        offer: JoinOffer,
        held: Held,
    ) {
        let response = match self.classic_join(group_id, &offer, held.version) {
            Ok((member_id, generation, protocol)) => responses::join(
                held.version,
                None,
                JoinReply {
                    member_id: &member_id,
                    generation,
                    protocol_type: Some(CONSUMER_PROTOCOL_TYPE),
                    protocol_name: Some(&protocol),
                    leader: "",
                    skip_assignment: false,
                    members: Vec::new(),
                },
            ),
            Err((error, member_id)) => responses::join_error(held.version, error, &member_id),
        };
        self.respond(held.id, response);
    }

    /// The member id, generation and protocol name a classic JoinGroup is answered with, or
    /// the error (with the member id the error response carries).
    fn classic_join(
        &mut self,
        group_id: &str,
        offer: &JoinOffer,
        version: i16,
    ) -> Result<(String, i32, String), (Refusal, String)> {
        let group = self
            .consumer_group(group_id)
            .expect("a consumer group with members");
        let instance = offer.instance_id.as_deref();
        let known_classic = group
            .members
            .get(&offer.member_id)
            .is_some_and(ConsumerMember::is_classic)
            || instance
                .and_then(|i| group.static_members.get(i))
                .and_then(|id| group.members.get(id))
                .is_some_and(ConsumerMember::is_classic);
        if !known_classic && self.config.consumer_migration_policy == MigrationPolicy::Disabled {
            // KAFKA-20640: with migration disabled, no new classic member joins.
            return Err((
                ResponseError::InconsistentGroupProtocol,
                offer.member_id.clone(),
            ));
        }
        let full = group.members.len()
            >= usize::try_from(self.config.consumer_max_size).unwrap_or(0)
            && !group.members.contains_key(&offer.member_id);
        if full {
            return Err((ResponseError::GroupMaxSizeReached, String::new()));
        }
        if !supports_classic_protocols(group, offer) {
            return Err((
                ResponseError::InconsistentGroupProtocol,
                offer.member_id.clone(),
            ));
        }
        let Some(subscription) = offer
            .protocols
            .first()
            .and_then(|(_, metadata)| decode_subscription(metadata))
        else {
            return Err((
                ResponseError::InconsistentGroupProtocol,
                offer.member_id.clone(),
            ));
        };

        let mut member_id = offer.member_id.clone();
        if member_id.is_empty() {
            self.id_counter += 1;
            let prefix = offer.instance_id.as_deref().unwrap_or(&offer.client_id);
            member_id = ids::member_id(prefix, self.wall_now(), self.id_counter);
            if offer.instance_id.is_none() && version >= 4 {
                // KIP-394: the member comes back with its id (nothing is kept until then).
                return Err((ResponseError::MemberIdRequired, member_id));
            }
        }

        // The member as it is, or as it starts.
        let group = self
            .consumer_group(group_id)
            .expect("a consumer group with members");
        let mut replaced = None;
        let member = match instance {
            None => group.members.get(&member_id).cloned().unwrap_or_default(),
            Some(instance) => match group.static_members.get(instance) {
                None => group.members.get(&member_id).cloned().unwrap_or_default(),
                Some(existing) if *existing == member_id => group.members[existing].clone(),
                Some(_) if !offer.member_id.is_empty() => {
                    return Err((ResponseError::FencedInstanceId, offer.member_id.clone()));
                }
                Some(existing) => {
                    // A static member back without its member id takes over its old self.
                    replaced = Some(existing.clone());
                    group.members[existing].clone()
                }
            },
        };
        let is_new = !group.members.contains_key(&member_id) && replaced.is_none();
        let replaced_consumer_member = replaced
            .as_ref()
            .is_some_and(|old| !group.members[old].is_classic());

        let mut value = member.subscription.clone();
        value.instance_id = offer.instance_id.clone();
        if subscription.rack.is_some() {
            value.rack_id = subscription.rack.clone();
        }
        value.rebalance_timeout_ms = offer.rebalance_timeout_ms;
        let topics: BTreeSet<String> = subscription.topics.iter().cloned().collect();
        value.subscribed_topic_names = topics.into_iter().collect();
        value.subscribed_topic_regex = None;
        value.client_id = offer.client_id.clone();
        value.client_host = offer.client_host.clone();
        value.classic = Some(ClassicMemberMetadata {
            session_timeout_ms: offer.session_timeout_ms,
            protocols: offer.protocols.clone(),
        });
        let subscription_changed = is_new
            || value.subscribed_topic_names != member.subscription.subscribed_topic_names
            || value.subscribed_topic_regex != member.subscription.subscribed_topic_regex;

        // Accepted: records follow.
        if let Some(old_id) = &replaced {
            self.replace_static_consumer_member(group_id, old_id, &member_id);
        }
        let stored = self
            .consumer_group(group_id)
            .and_then(|g| g.members.get(&member_id))
            .map(|m| m.subscription.clone());
        if stored.as_ref() != Some(&value) {
            self.emit(Record::ConsumerMember {
                group_id: group_id.to_string(),
                member_id: member_id.clone(),
                value: Some(value.clone()),
            });
        }
        if subscription_changed {
            self.maybe_bump_group_epoch(group_id, true);
        }
        if self.update_target_assignment(group_id).is_err() {
            // The configured assignor does not exist (Kafka answers as here).
            return Err((ResponseError::UnknownServerError, member_id));
        }
        let owned = self.partitions_by_id(&subscription.owned);
        self.reconcile_member(group_id, &member_id, Some(&owned));

        let generation = self
            .consumer_group(group_id)
            .and_then(|g| g.members.get(&member_id))
            .map_or(0, |m| m.assignment.member_epoch);
        let protocol = offer
            .protocols
            .first()
            .map(|(name, _)| name.clone())
            .unwrap_or_default();
        if replaced_consumer_member && self.may_downgrade(group_id, &BTreeSet::new()) {
            // Kafka's `validateOnlineDowngradeWithReplacedMemberId`: it replaced the last
            // member on the consumer protocol, so the group turns classic, Stable, with this
            // member holding what the one it replaced held.
            self.downgrade_to_classic_group(group_id, &BTreeSet::new(), None);
            return Ok((member_id, generation, protocol));
        }
        let (group, member) = (group_id.to_string(), member_id.clone());
        self.timers.cancel(&TimerKey::ClassicJoin {
            group: group.clone(),
            member: member.clone(),
        });
        self.schedule_consumer_session(group_id, &member_id);
        let deadline = self.now() + i64::from(offer.rebalance_timeout_ms.max(0));
        self.timers
            .schedule(TimerKey::ClassicSync { group, member }, deadline);
        Ok((member_id, generation, protocol))
    }

    /// A SyncGroup to a consumer-protocol group.
    pub(crate) fn classic_sync_to_consumer_group(
        &mut self,
        id: RequestId,
        version: i16,
        request: &SyncGroupRequest,
    ) {
        let response = match self.classic_sync(version, request) {
            Ok((protocol, assignment)) => responses::sync(
                version,
                None,
                Some((CONSUMER_PROTOCOL_TYPE, &protocol)),
                assignment,
            ),
            Err(error) => responses::sync_error(version, error),
        };
        self.respond(id, response);
    }

    fn classic_sync(
        &mut self,
        version: i16,
        request: &SyncGroupRequest,
    ) -> Result<(String, bytes::Bytes), Refusal> {
        let (group_id, member_id) = (request.group_id.as_str(), request.member_id.as_str());
        let member = self.classic_member_at(
            version,
            (group_id, member_id, request.group_instance_id.as_deref()),
            request.generation_id,
        )?;
        let metadata = member
            .subscription
            .classic
            .clone()
            .expect("a classic member");
        if version >= 5 {
            let wrong_type = request
                .protocol_type
                .as_deref()
                .is_some_and(|t| t != CONSUMER_PROTOCOL_TYPE);
            let wrong_name = request
                .protocol_name
                .as_deref()
                .is_some_and(|n| n != metadata.protocol_name());
            if wrong_type || wrong_name {
                return Err(ResponseError::InconsistentGroupProtocol);
            }
        }
        let group_epoch = self.consumer_group(group_id).map_or(0, |g| g.epoch);
        if group_epoch > member.assignment.member_epoch
            && member.assignment.state != MemberState::UnrevokedPartitions
        {
            self.schedule_classic_join_timeout(group_id, member_id, &member);
            return Err(ResponseError::RebalanceInProgress);
        }
        self.timers.cancel(&TimerKey::ClassicSync {
            group: group_id.to_string(),
            member: member_id.to_string(),
        });
        self.schedule_consumer_session(group_id, member_id);
        let assignment = encode_assignment(
            version_of(metadata.first_metadata()),
            &self.partitions_by_name(&member.assignment.assigned),
        );
        Ok((metadata.protocol_name().to_string(), assignment))
    }

    /// A Heartbeat to a consumer-protocol group.
    pub(crate) fn classic_heartbeat_to_consumer_group(
        &mut self,
        version: i16,
        request: &HeartbeatRequest,
    ) -> Result<(), Refusal> {
        let (group_id, member_id) = (request.group_id.as_str(), request.member_id.as_str());
        let member = self.classic_member_at(
            version,
            (group_id, member_id, request.group_instance_id.as_deref()),
            request.generation_id,
        )?;
        self.schedule_consumer_session(group_id, member_id);
        let group = super::consumer_in(&self.groups, group_id).expect("the member's group exists");
        if must_rejoin(group, member_id, &member, &self.topics, &mut self.regexes) {
            self.schedule_classic_join_timeout(group_id, member_id, &member);
            return Err(ResponseError::RebalanceInProgress);
        }
        Ok(())
    }

    /// A LeaveGroup to a consumer-protocol group: every named (member id, instance id) that
    /// exists goes (fenced at once, with one epoch bump, or a downgrade if only classic
    /// members remain); the error of each, in order.
    pub(crate) fn classic_leave_to_consumer_group(
        &mut self,
        group_id: &str,
        identities: &[(String, Option<String>)],
    ) -> Vec<Option<ResponseError>> {
        let group = self
            .consumer_group(group_id)
            .expect("a consumer group answers this LeaveGroup");
        let mut leaving = Vec::new();
        let mut errors = Vec::new();
        for (member_id, instance) in identities {
            let found = match instance {
                None => group
                    .members
                    .contains_key(member_id)
                    .then(|| member_id.clone())
                    .ok_or(ResponseError::UnknownMemberId),
                Some(instance) => match group.static_members.get(instance) {
                    None => Err(ResponseError::UnknownMemberId),
                    Some(owner) if !member_id.is_empty() && owner != member_id => {
                        Err(ResponseError::FencedInstanceId)
                    }
                    Some(owner) => Ok(owner.clone()),
                },
            };
            match found {
                Ok(owner) => {
                    leaving.push(owner);
                    errors.push(None);
                }
                Err(error) => errors.push(Some(error)),
            }
        }
        self.fence_consumer_members(group_id, &leaving, RebalanceCause::MemberLeft);
        errors
    }

    /// A classic join or sync timer ran out: the member is fenced.
    pub(crate) fn on_classic_member_timeout(&mut self, group_id: &str, member_id: &str) {
        let classic = self
            .consumer_group(group_id)
            .and_then(|g| g.members.get(member_id))
            .is_some_and(ConsumerMember::is_classic);
        if classic {
            self.fence_consumer_member(group_id, member_id, RebalanceCause::RebalanceTimeout);
        }
    }

    /// The classic member a SyncGroup or Heartbeat (of `version`, from (group, member id,
    /// instance id)) comes from, at `generation`, its member epoch (ILLEGAL_GENERATION
    /// otherwise). The instance id counts from v3.
    fn classic_member_at(
        &self,
        version: i16,
        (group_id, member_id, instance): (&str, &str, Option<&str>),
        generation: i32,
    ) -> Result<ConsumerMember, Refusal> {
        let instance = if version >= 3 { instance } else { None };
        let member = self.classic_member(group_id, member_id, instance)?;
        if generation != member.assignment.member_epoch {
            return Err(ResponseError::IllegalGeneration);
        }
        Ok(member)
    }

    /// Kafka's `validateConsumerGroupMember` and `throwIfMemberDoesNotUseClassicProtocol`.
    fn classic_member(
        &self,
        group_id: &str,
        member_id: &str,
        instance: Option<&str>,
    ) -> Result<ConsumerMember, Refusal> {
        let group = self
            .consumer_group(group_id)
            .ok_or(ResponseError::UnknownMemberId)?;
        let member = match instance {
            None => group.members.get(member_id),
            Some(instance) => {
                let owner = group
                    .static_members
                    .get(instance)
                    .ok_or(ResponseError::UnknownMemberId)?;
                if owner != member_id {
                    return Err(ResponseError::FencedInstanceId);
                }
                group.members.get(owner)
            }
        }
        .ok_or(ResponseError::UnknownMemberId)?;
        if !member.is_classic() {
            return Err(ResponseError::UnknownMemberId);
        }
        Ok(member.clone())
    }

    /// The member must rejoin within its rebalance timeout (a timer already running stays).
    fn schedule_classic_join_timeout(
        &mut self,
        group_id: &str,
        member_id: &str,
        member: &ConsumerMember,
    ) {
        let key = TimerKey::ClassicJoin {
            group: group_id.to_string(),
            member: member_id.to_string(),
        };
        if !self.timers.is_scheduled(&key) {
            let timeout = i64::from(member.subscription.rebalance_timeout_ms.max(0));
            self.timers.schedule(key, self.now() + timeout);
        }
    }
}

/// Kafka's `supportsClassicProtocols`: the consumer protocol type, and some offered protocol
/// every other classic member supports.
fn supports_classic_protocols(group: &ConsumerGroup, offer: &JoinOffer) -> bool {
    if offer.protocol_type != CONSUMER_PROTOCOL_TYPE || offer.protocols.is_empty() {
        return false;
    }
    let others: Vec<&ClassicMemberMetadata> = group
        .members
        .iter()
        .filter(|(id, _)| **id != offer.member_id)
        .filter_map(|(_, m)| m.subscription.classic.as_ref())
        .collect();
    offer.protocols.iter().any(|(name, _)| {
        others
            .iter()
            .all(|c| c.protocols.iter().any(|(n, _)| n == name))
    })
}

/// Whether a classic member must rejoin (Kafka's rule for the classic Heartbeat): the group
/// epoch moved past its epoch, it must give partitions up, or a partition it waits for is
/// free.
fn must_rejoin(
    group: &ConsumerGroup,
    member_id: &str,
    member: &ConsumerMember,
    topics: &crate::TopicsImage,
    regexes: &mut super::subscription::RegexCache,
) -> bool {
    let a = &member.assignment;
    if a.member_epoch < group.epoch || a.state == MemberState::UnrevokedPartitions {
        return true;
    }
    if a.state != MemberState::UnreleasedPartitions {
        return false;
    }
    // Would a step hand it more than it holds, now that others released what it waits for?
    let subscribed = subscribed_ids(&member.subscription, topics, regexes);
    let empty = super::TopicPartitions::new();
    let target = group.target.get(member_id).unwrap_or(&empty);
    let held_elsewhere = |topic: uuid::Uuid, partition: i32| {
        group
            .holder(topic, partition)
            .is_some_and(|h| h != member_id)
    };
    let next = reconcile::next(
        a,
        &Step {
            target_epoch: group.assignment_epoch,
            target,
            subscribed: &subscribed,
            owned: Some(&a.assigned),
            held_elsewhere: &held_elsewhere,
        },
    );
    next.assigned != a.assigned
}
