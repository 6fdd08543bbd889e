//! KIP-848 consumer groups: the group protocol in which the broker computes every member's
//! assignment (with a server-side assignor) and reconciles each member on its own, through
//! ConsumerGroupHeartbeat, with no group-wide barrier.
//!
//! The model is Apache Kafka 4's (`ConsumerGroup`, `ConsumerGroupMember`,
//! `CurrentAssignmentBuilder`):
//!
//! * the **group epoch** grows whenever what the assignment depends on changes (a member
//!   joins, leaves or is fenced, a subscription changes, a subscribed topic is created,
//!   deleted or grows);
//! * the **target assignment** is computed for a group epoch (its *assignment epoch*) by the
//!   assignor the members ask for;
//! * each member's **current assignment** moves toward the target one heartbeat at a time
//!   ([`reconcile`]): partitions it must give up are revoked first (it stays at its epoch, in
//!   `UNREVOKED_PARTITIONS`, until a heartbeat no longer lists them); then it moves to the
//!   assignment epoch and gets the partitions that are free, waiting in
//!   `UNRELEASED_PARTITIONS` for those another member still holds. No partition is ever held
//!   by two members.
//!
//! Classic clients live in these groups too ([`classic_members`]): a consumer-protocol member
//! joining a classic group converts it (an online upgrade), and a consumer group whose last
//! consumer-protocol member leaves turns classic again, as `group.consumer.migration.policy`
//! allows ([`migration`]).
//!
//! Durable state is written as records (see [`crate::Record`]'s `Consumer*` variants) and
//! changed only by applying them ([`apply`]), in any order: the store gives them back by key,
//! not in the order they were written.
//!
//! Where this differs from Kafka it says so: a member that rejoins with epoch 0 under a member
//! id the group still holds starts over (its partitions are released) instead of being fenced
//! again; and the heartbeat interval a member is given is short while it has partitions to
//! revoke or to receive (`group.consumer.pending.heartbeat.interval.ms`), so a moved partition
//! changes hands within a round trip of being released; and a reconciled member's steady
//! interval is its share of a broker-wide heartbeat budget
//! (`group.consumer.heartbeat.rate.budget` heartbeats per second for all members together),
//! between `group.consumer.heartbeat.interval.min.ms` and `group.consumer.heartbeat.interval.ms`:
//! a broker with few members hears from them often, so members learn of a change sooner, and
//! one with many spends no more than the longest interval would cost.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub(crate) mod apply;
pub(crate) mod classic_members;
pub(crate) mod describe;
pub(crate) mod heartbeat;
pub(crate) mod history;
pub mod migration;

pub use migration::MigrationPolicy;
pub(crate) mod reconcile;
pub(crate) mod subscription;
pub(crate) mod target;

/// Partitions by topic id.
pub type TopicPartitions = BTreeMap<Uuid, BTreeSet<i32>>;

/// A member epoch for each partition, by topic id.
pub type PartitionEpochs = BTreeMap<Uuid, BTreeMap<i32, i32>>;

/// The member epoch a member joins (or rejoins) with.
pub const JOIN_EPOCH: i32 = 0;
/// The member epoch a member leaves with.
pub const LEAVE_EPOCH: i32 = -1;
/// The member epoch a static member leaves with when it means to come back (KIP-848).
pub const STATIC_LEAVE_EPOCH: i32 = -2;

/// Where a member's reconciliation stands (Kafka's `MemberState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum MemberState {
    /// The member holds what its epoch's target gives it.
    #[default]
    Stable,
    /// The member must give up partitions first; it stays at its epoch until it reports them
    /// gone.
    UnrevokedPartitions,
    /// The member is at the assignment epoch but waits for partitions another member still
    /// holds.
    UnreleasedPartitions,
}

impl MemberState {
    /// Kafka's name, as ConsumerGroupDescribe and the CLI show it.
    pub fn as_str(&self) -> &'static str {
        match self {
            MemberState::Stable => "STABLE",
            MemberState::UnrevokedPartitions => "UNREVOKED_PARTITIONS",
            MemberState::UnreleasedPartitions => "UNRELEASED_PARTITIONS",
        }
    }
}

/// A consumer group as persisted (Kafka's `ConsumerGroupMetadataValue`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerGroupValue {
    /// The group epoch.
    pub epoch: i32,
    /// A digest of the subscribed topics' ids, names and partition counts when the epoch was
    /// last bumped: a difference found after a restart bumps the epoch again.
    pub metadata_hash: u64,
}

/// A member's subscription and client details as persisted (Kafka's
/// `ConsumerGroupMemberMetadataValue`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ConsumerMemberValue {
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Sorted, without duplicates.
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    pub rebalance_timeout_ms: i32,
    /// Set for a member on the classic protocol (JoinGroup, SyncGroup, Heartbeat) inside a
    /// consumer-protocol group; absent from what consumer-protocol members store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classic: Option<ClassicMemberMetadata>,
}

/// What a classic member's JoinGroup said that a consumer-protocol member has no field for
/// (Kafka's `ConsumerGroupMemberMetadataValue.ClassicMemberMetadata`): its own session timeout
/// and its protocols, which a conversion back to a classic group needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ClassicMemberMetadata {
    pub session_timeout_ms: i32,
    /// (protocol name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, bytes::Bytes)>,
}

impl ClassicMemberMetadata {
    /// The protocol a classic member is told it runs: the first it offered (Kafka's choice).
    pub fn protocol_name(&self) -> &str {
        self.protocols.first().map_or("", |(name, _)| name.as_str())
    }

    /// The member's metadata for its first protocol.
    pub fn first_metadata(&self) -> &[u8] {
        self.protocols.first().map_or(&[][..], |(_, m)| &m[..])
    }
}

/// A member's current assignment as persisted (Kafka's
/// `ConsumerGroupCurrentMemberAssignmentValue`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ConsumerAssignmentValue {
    pub state: MemberState,
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    /// What the member may consume.
    pub assigned: TopicPartitions,
    /// What it must give up; it still holds these until it reports them gone.
    pub pending_revocation: TopicPartitions,
    /// The member epoch at which each partition it holds was assigned to it (KIP-1251's
    /// assignment epochs), so a commit sent before the member heard of its latest epoch is
    /// still accepted for the partitions it held at the epoch it sent. Records written before
    /// this field have none: a partition without one counts as assigned at the current epoch.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub assigned_at: PartitionEpochs,
}

impl ConsumerAssignmentValue {
    /// Every partition the member holds: assigned, then pending revocation.
    pub fn held(&self) -> impl Iterator<Item = (Uuid, i32)> + '_ {
        each_partition(&self.assigned).chain(each_partition(&self.pending_revocation))
    }

    /// Whether the member holds `partition` of `topic` (assigned or pending revocation).
    pub fn holds(&self, topic: Uuid, partition: i32) -> bool {
        let in_set =
            |set: &TopicPartitions| set.get(&topic).is_some_and(|s| s.contains(&partition));
        in_set(&self.assigned) || in_set(&self.pending_revocation)
    }

    /// The epoch at which the member was given `partition` of `topic`, if it holds it.
    pub fn assignment_epoch(&self, topic: Uuid, partition: i32) -> Option<i32> {
        if !self.holds(topic, partition) {
            return None;
        }
        let recorded = self.assigned_at.get(&topic).and_then(|m| m.get(&partition));
        Some(recorded.copied().unwrap_or(self.member_epoch))
    }
}

/// How a consumer group stands (Kafka's `ConsumerGroupState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerGroupState {
    Empty,
    /// The group epoch is ahead of the target assignment.
    Assigning,
    /// Some member is not reconciled to the target assignment yet.
    Reconciling,
    Stable,
}

impl ConsumerGroupState {
    /// Every state, in declaration order.
    pub const ALL: [ConsumerGroupState; 4] = [
        ConsumerGroupState::Empty,
        ConsumerGroupState::Assigning,
        ConsumerGroupState::Reconciling,
        ConsumerGroupState::Stable,
    ];

    /// Kafka's name (ConsumerGroupDescribe, ListGroups).
    pub fn as_str(&self) -> &'static str {
        match self {
            ConsumerGroupState::Empty => "Empty",
            ConsumerGroupState::Assigning => "Assigning",
            ConsumerGroupState::Reconciling => "Reconciling",
            ConsumerGroupState::Stable => "Stable",
        }
    }
}

/// One member of a consumer group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct ConsumerMember {
    pub subscription: ConsumerMemberValue,
    pub assignment: ConsumerAssignmentValue,
}

impl ConsumerMember {
    /// Whether the member holds what the target of `assignment_epoch` gives it.
    pub fn is_reconciled_to(&self, assignment_epoch: i32) -> bool {
        self.assignment.state == MemberState::Stable
            && self.assignment.member_epoch == assignment_epoch
    }

    /// A static member that left with epoch −2 and has not come back.
    pub fn has_left_temporarily(&self) -> bool {
        self.assignment.member_epoch == STATIC_LEAVE_EPOCH
    }

    /// The member speaks the classic protocol (JoinGroup/SyncGroup/Heartbeat).
    pub fn is_classic(&self) -> bool {
        self.subscription.classic.is_some()
    }
}

/// The consumer-protocol part of a group (the classic fields of [`crate::group::Group`] stay
/// unused while this is set).
#[derive(Debug, Clone, Default)]
pub(crate) struct ConsumerGroup {
    pub epoch: i32,
    pub metadata_hash: u64,
    pub members: BTreeMap<String, ConsumerMember>,
    /// instance id → member id.
    pub static_members: BTreeMap<String, String>,
    /// The group epoch the target assignment was computed for.
    pub assignment_epoch: i32,
    /// Each member's target assignment.
    pub target: BTreeMap<String, TopicPartitions>,
    /// Who holds each partition (assigned or pending revocation): a partition is free for
    /// its new owner only once nobody holds it.
    pub holders: HashMap<(Uuid, i32), String>,
}

impl ConsumerGroup {
    pub fn state(&self) -> ConsumerGroupState {
        if self.members.is_empty() {
            ConsumerGroupState::Empty
        } else if self.epoch != self.assignment_epoch {
            ConsumerGroupState::Assigning
        } else if self
            .members
            .values()
            .any(|m| !m.is_reconciled_to(self.assignment_epoch))
        {
            ConsumerGroupState::Reconciling
        } else {
            ConsumerGroupState::Stable
        }
    }

    /// The member holding a partition, if any.
    pub fn holder(&self, topic: Uuid, partition: i32) -> Option<&str> {
        self.holders.get(&(topic, partition)).map(String::as_str)
    }
}

/// The consumer part of a group in `groups` (a free function so that it borrows the groups
/// only, not the whole coordinator).
pub(crate) fn consumer_in<'a>(
    groups: &'a BTreeMap<String, crate::group::Group>,
    group_id: &str,
) -> Option<&'a ConsumerGroup> {
    groups.get(group_id)?.consumer.as_deref()
}

/// Every (topic, partition) of a map.
pub(crate) fn each_partition(
    partitions: &TopicPartitions,
) -> impl Iterator<Item = (Uuid, i32)> + '_ {
    partitions
        .iter()
        .flat_map(|(topic, set)| set.iter().map(move |p| (*topic, *p)))
}
