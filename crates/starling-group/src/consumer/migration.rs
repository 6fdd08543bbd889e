//! Online migration between the classic group protocol and the KIP-848 consumer protocol
//! (Kafka 4's `group.consumer.migration.policy`).

use std::fmt;
use std::str::FromStr;

/// Which way a group may change protocol while it has members (Kafka's
/// `ConsumerGroupMigrationPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MigrationPolicy {
    /// Both ways (Kafka 4's default).
    #[default]
    Bidirectional,
    /// Only classic → consumer: a ConsumerGroupHeartbeat may convert a classic group.
    Upgrade,
    /// Only consumer → classic: a consumer group whose last consumer-protocol member leaves
    /// turns classic again.
    Downgrade,
    /// Neither: a group keeps the protocol it has while it has members, and no new classic
    /// member may join a consumer-protocol group.
    Disabled,
}

impl MigrationPolicy {
    /// Every policy, as the config names them.
    pub const ALL: [MigrationPolicy; 4] = [
        MigrationPolicy::Bidirectional,
        MigrationPolicy::Upgrade,
        MigrationPolicy::Downgrade,
        MigrationPolicy::Disabled,
    ];

    /// The config value (`bidirectional`, `upgrade`, `downgrade`, `disabled`).
    pub fn name(self) -> &'static str {
        match self {
            MigrationPolicy::Bidirectional => "bidirectional",
            MigrationPolicy::Upgrade => "upgrade",
            MigrationPolicy::Downgrade => "downgrade",
            MigrationPolicy::Disabled => "disabled",
        }
    }

    /// Whether a classic group may become a consumer group.
    pub fn upgrade_enabled(self) -> bool {
        matches!(
            self,
            MigrationPolicy::Bidirectional | MigrationPolicy::Upgrade
        )
    }

    /// Whether a consumer group may become a classic group.
    pub fn downgrade_enabled(self) -> bool {
        matches!(
            self,
            MigrationPolicy::Bidirectional | MigrationPolicy::Downgrade
        )
    }
}

impl fmt::Display for MigrationPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for MigrationPolicy {
    type Err = String;

    /// Case-insensitive, as Kafka reads it.
    fn from_str(value: &str) -> Result<MigrationPolicy, String> {
        let wanted = value.trim().to_lowercase();
        MigrationPolicy::ALL
            .into_iter()
            .find(|p| p.name() == wanted)
            .ok_or_else(|| "must be one of bidirectional, upgrade, downgrade, disabled".to_string())
    }
}

use std::collections::BTreeSet;

use kafka_protocol::ResponseError;

use super::subscription::{group_subscribed_ids, metadata_hash};
use super::target::Failure;
use super::{
    ClassicMemberMetadata, ConsumerAssignmentValue, ConsumerGroupValue, ConsumerMember,
    ConsumerMemberValue, MemberState, TopicPartitions,
};
use crate::history::{RebalanceCause, RebalanceOutcome};
use crate::member::Member;
use crate::recorder::Trigger;
use crate::responses;
use crate::{protocol_select, GroupCoordinator, GroupValue, MemberValue, Record};
use starling_protocol::consumer_protocol::CONSUMER_PROTOCOL_TYPE;
use starling_protocol::consumer_protocol::{
    decode_assignment, decode_subscription, encode_assignment, version_of,
};

impl GroupCoordinator {
    /// Kafka's `validateOnlineUpgrade` and `ConsumerGroup.fromClassicGroup`: the members a
    /// classic group would have as a consumer-protocol group, or why it cannot become one
    /// (GROUP_ID_NOT_FOUND, as Kafka answers). Like Kafka (KAFKA-18134), an assignment with
    /// assignor user data stops the upgrade — except, in Starling, user data that only echoes
    /// the member's own subscription user data, which is what librdkafka's leader sends
    /// (with `cooperative-sticky` every member's subscription carries its previous
    /// assignment): Kafka refuses to upgrade such librdkafka groups once they have
    /// rebalanced; nothing the members use is lost by dropping the echo.
    pub(crate) fn upgraded_members(
        &self,
        group_id: &str,
    ) -> Result<Vec<(String, ConsumerMember)>, Failure> {
        let refuse = |why: &str| {
            Err((
                ResponseError::GroupIdNotFound,
                format!("Cannot upgrade classic group {group_id} to consumer group because {why}."),
            ))
        };
        let Some(group) = self.groups.get(group_id) else {
            return refuse("it does not exist");
        };
        if !self.config.consumer_migration_policy.upgrade_enabled() {
            return refuse("online upgrade is disabled");
        }
        if group.protocol_type != CONSUMER_PROTOCOL_TYPE {
            return refuse("the group does not use the consumer embedded protocol");
        }
        if group.members.len() > usize::try_from(self.config.consumer_max_size).unwrap_or(0) {
            return refuse("the group size exceeds the consumer group maximum size");
        }
        let mut converted = Vec::new();
        for member in group.ordered_members() {
            // A group that never completed a join has no protocol yet: the member's first.
            let protocol = group
                .protocol
                .clone()
                .or_else(|| member.protocols.first().map(|(name, _)| name.clone()))
                .unwrap_or_default();
            let subscription = member
                .metadata(&protocol)
                .and_then(|m| decode_subscription(m));
            let assignment = decode_assignment(&member.assignment);
            let (Some(subscription), Some(assignment)) = (subscription, assignment) else {
                return refuse("the embedded consumer protocol is malformed");
            };
            // librdkafka's leader writes each member's own subscription user data back into
            // its assignment (its sticky assignors keep their previous assignment there);
            // dropping that echo loses nothing. Other user data is an assignor's state.
            let echo =
                assignment.user_data.is_some() && assignment.user_data == subscription.user_data;
            if assignment.user_data.is_some() && !echo {
                return refuse(
                    "an unsupported custom assignor is in use. Please refer to the documentation \
                     or switch to a default assignor before re-attempting the upgrade",
                );
            }
            // In the sync phase the new generation's assignment is not known yet (the join's
            // record cleared them): what the member owns is then what its JoinGroup said.
            let owned_only = member.assignment.is_empty();
            let partitions = if owned_only {
                &subscription.owned
            } else {
                &assignment.partitions
            };
            let assigned = self.partitions_by_id(partitions);
            let topics: BTreeSet<String> = subscription.topics.into_iter().collect();
            let value = ConsumerMemberValue {
                instance_id: member.instance_id.clone(),
                rack_id: subscription.rack,
                client_id: member.client_id.clone(),
                client_host: member.client_host.clone(),
                subscribed_topic_names: topics.into_iter().collect(),
                subscribed_topic_regex: None,
                server_assignor: None,
                rebalance_timeout_ms: member.rebalance_timeout_ms,
                classic: Some(ClassicMemberMetadata {
                    session_timeout_ms: member.session_timeout_ms,
                    protocols: member.protocols.clone(),
                }),
            };
            let assignment = ConsumerAssignmentValue {
                state: MemberState::Stable,
                member_epoch: group.generation,
                previous_member_epoch: group.generation,
                assigned,
                pending_revocation: TopicPartitions::new(),
                // Held since the generation it converts at.
                assigned_at: Default::default(),
            };
            converted.push((
                owned_only,
                member.id.clone(),
                ConsumerMember {
                    subscription: value,
                    assignment,
                },
            ));
        }
        // No partition may be held twice: an assignment wins over what a JoinGroup said (it
        // may still list partitions the member gave up after its last SyncGroup).
        let mut held: BTreeSet<(uuid::Uuid, i32)> = converted
            .iter()
            .filter(|(owned_only, _, _)| !owned_only)
            .flat_map(|(_, _, m)| super::each_partition(&m.assignment.assigned))
            .collect();
        for (owned_only, _, member) in converted.iter_mut() {
            if *owned_only {
                let assigned = &mut member.assignment.assigned;
                let claimed: Vec<(uuid::Uuid, i32)> = super::each_partition(assigned).collect();
                for (topic, partition) in claimed {
                    if !held.insert((topic, partition)) {
                        if let Some(set) = assigned.get_mut(&topic) {
                            set.remove(&partition);
                        }
                    }
                }
                assigned.retain(|_, set| !set.is_empty());
            }
        }
        Ok(converted.into_iter().map(|(_, id, m)| (id, m)).collect())
    }

    /// Kafka's `convertToConsumerGroup`: the classic group becomes a consumer-protocol group
    /// whose members are its classic members, each keeping its partitions as its current and
    /// target assignment, at the classic generation as group, assignment and member epoch.
    /// Requests held in a join or sync barrier get REBALANCE_IN_PROGRESS, so those members
    /// rejoin. The consumer records are written first, then the classic group's tombstone
    /// (which then only clears its classic part: the offsets stay).
    pub(crate) fn upgrade_to_consumer_group(
        &mut self,
        group_id: &str,
        members: Vec<(String, ConsumerMember)>,
    ) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        let epoch = group.generation;
        let mut held_joins = Vec::new();
        let mut held_syncs = Vec::new();
        for member in group.members.values_mut() {
            if let Some(held) = member.awaiting_join.take() {
                held_joins.push((member.id.clone(), held));
            }
            held_syncs.extend(member.awaiting_sync.take());
        }
        for (member_id, held) in held_joins {
            self.respond(
                held.id,
                responses::join_error(held.version, ResponseError::RebalanceInProgress, &member_id),
            );
        }
        for held in held_syncs {
            self.respond(
                held.id,
                responses::sync_error(held.version, ResponseError::RebalanceInProgress),
            );
        }
        // A rebalance in progress ends here: the consumer protocol takes over.
        self.close_record(group_id, RebalanceOutcome::Restarted);

        for (member_id, member) in &members {
            self.emit(Record::ConsumerMember {
                group_id: group_id.to_string(),
                member_id: member_id.clone(),
                value: Some(member.subscription.clone()),
            });
        }
        let metadata_hash = {
            let group = super::consumer_in(&self.groups, group_id)
                .expect("the members' records made the consumer group");
            let subscribed = group_subscribed_ids(group, &self.topics, &mut self.regexes);
            metadata_hash(&subscribed, &self.topics)
        };
        self.emit(Record::ConsumerGroup {
            group_id: group_id.to_string(),
            value: Some(ConsumerGroupValue {
                epoch,
                metadata_hash,
            }),
        });
        for (member_id, member) in &members {
            self.emit(Record::ConsumerTarget {
                group_id: group_id.to_string(),
                member_id: member_id.clone(),
                value: Some(member.assignment.assigned.clone()),
            });
        }
        self.emit(Record::ConsumerTargetEpoch {
            group_id: group_id.to_string(),
            value: Some(epoch),
        });
        for (member_id, member) in &members {
            self.emit(Record::ConsumerAssignment {
                group_id: group_id.to_string(),
                member_id: member_id.clone(),
                value: Some(member.assignment.clone()),
            });
        }
        self.emit(Record::Group {
            group_id: group_id.to_string(),
            value: None,
        });
        for (member_id, _) in &members {
            self.schedule_consumer_session(group_id, member_id);
        }
    }

    /// Kafka's `validateOnlineDowngradeWithFencedMembers`: after `leaving` go, only classic
    /// members remain (at least one), the policy allows a downgrade and they fit in a classic
    /// group.
    pub(crate) fn may_downgrade(&self, group_id: &str, leaving: &BTreeSet<String>) -> bool {
        let Some(group) = self.consumer_group(group_id) else {
            return false;
        };
        let mut remaining = group
            .members
            .iter()
            .filter(|(id, _)| !leaving.contains(id.as_str()))
            .peekable();
        if remaining.peek().is_none() {
            return false;
        }
        let count = group.members.len() - leaving.len();
        remaining.all(|(_, m)| m.is_classic())
            && self.config.consumer_migration_policy.downgrade_enabled()
            && count <= usize::try_from(self.config.max_size).unwrap_or(0)
    }

    /// Kafka's `convertToClassicGroup`: the consumer group becomes a classic group of its
    /// remaining (classic) members, at the group epoch as its generation, each member keeping
    /// the partitions it holds as its assignment. When members left (`rebalance` gives why) a
    /// rebalance starts, as they had partitions; when a classic static member replaced the
    /// last consumer-protocol one (`rebalance` is `None`), it took over that member's
    /// partitions and the group stays Stable. The classic group record is written first, then
    /// the consumer records' tombstones.
    pub(crate) fn downgrade_to_classic_group(
        &mut self,
        group_id: &str,
        leaving: &BTreeSet<String>,
        rebalance: Option<RebalanceCause>,
    ) {
        let Some(group) = self.consumer_group(group_id) else {
            return;
        };
        let all_members: Vec<String> = group.members.keys().cloned().collect();
        let mut classic: Vec<Member> = Vec::new();
        for (member_id, member) in &group.members {
            if leaving.contains(member_id) {
                continue;
            }
            let Some(metadata) = &member.subscription.classic else {
                return;
            };
            let sub = &member.subscription;
            let value = MemberValue {
                member_id: member_id.clone(),
                group_instance_id: sub.instance_id.clone(),
                client_id: sub.client_id.clone(),
                client_host: sub.client_host.clone(),
                rebalance_timeout_ms: sub.rebalance_timeout_ms,
                session_timeout_ms: metadata.session_timeout_ms,
                protocol_type: CONSUMER_PROTOCOL_TYPE.to_string(),
                protocols: metadata.protocols.clone(),
                assignment: bytes::Bytes::new(),
            };
            classic.push(Member::from_value(&value, classic.len() as u64));
        }
        let refs: Vec<&Member> = classic.iter().collect();
        let Some(protocol) = protocol_select::select(&refs, None) else {
            // No protocol every member supports: it stays a consumer group.
            return;
        };
        let assigned: Vec<bytes::Bytes> = classic
            .iter()
            .map(|m| {
                let held = &group.members[&m.id].assignment.assigned;
                let version = m.metadata(&protocol).map_or(0, |meta| version_of(meta));
                encode_assignment(version, &self.partitions_by_name(held))
            })
            .collect();
        let value = GroupValue {
            protocol_type: CONSUMER_PROTOCOL_TYPE.to_string(),
            generation: group.epoch,
            protocol: Some(protocol),
            leader: classic.first().map(|m| m.id.clone()),
            state_timestamp: self.wall_now(),
            members: classic
                .iter()
                .zip(assigned)
                .map(|(m, assignment)| m.to_value(assignment))
                .collect(),
        };
        self.emit(Record::Group {
            group_id: group_id.to_string(),
            value: Some(value),
        });
        for member_id in &all_members {
            self.remove_consumer_member(group_id, member_id);
        }
        self.delete_consumer_group(group_id);
        // The classic group goes live as a loaded Stable one (each member's session starts
        // now, its assignment is what the history compares the next one with), then
        // rebalances: the members that left had partitions.
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        group.state = crate::GroupState::Stable;
        group.previous_state = crate::GroupState::Dead;
        let sessions: Vec<(String, i64)> = group
            .members
            .values()
            .map(|m| (m.id.clone(), i64::from(m.session_timeout_ms)))
            .collect();
        for (member_id, session) in sessions {
            self.schedule_session(group_id, &member_id, session);
        }
        self.load_ownership(group_id);
        let Some(cause) = rebalance else {
            return;
        };
        let trigger = match leaving.iter().next() {
            Some(first) => Trigger::by(cause, first, None),
            None => Trigger::new(cause),
        };
        self.prepare_rebalance(group_id, trigger);
    }

    /// Partitions named by topic name, as topic ids (topics the broker does not have are left
    /// out, as Kafka does).
    pub(crate) fn partitions_by_id(&self, partitions: &[(String, i32)]) -> TopicPartitions {
        let mut out = TopicPartitions::new();
        for (topic, partition) in partitions {
            if let Some(id) = self.topics.id_of(topic) {
                out.entry(id).or_default().insert(*partition);
            }
        }
        out
    }

    /// Partitions by topic id, as (topic name, partitions) in name order (unknown ids left
    /// out).
    pub(crate) fn partitions_by_name(
        &self,
        partitions: &TopicPartitions,
    ) -> Vec<(String, Vec<i32>)> {
        let mut out: Vec<(String, Vec<i32>)> = partitions
            .iter()
            .filter_map(|(id, set)| {
                let topic = self.topics.get(id)?;
                Some((topic.name.clone(), set.iter().copied().collect()))
            })
            .collect();
        out.sort();
        out
    }
}
