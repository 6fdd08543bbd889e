//! What the coordinator remembers about each rebalance, for people rather than for recovery:
//! why it started, who joined and left, how long the join and sync phases took, and — decoded
//! from the leader's SyncGroup assignment — which partitions moved between which members.
//!
//! A rebalance record opens when a group enters PreparingRebalance and closes when the group
//! reaches Stable, becomes Empty, is deleted, or starts over before it settled (the next
//! record's cause says why). Each group keeps a bounded history in memory
//! ([`GroupConfig::rebalance_history`](crate::GroupConfig)); it is observability, not durable
//! group state, so it is not written as [`Record`](crate::Record)s and starts empty after a
//! restart (a group loaded in the middle of a rebalance opens a [`RebalanceCause::Loaded`]
//! record). Replaying stored records never opens a record by itself.
//!
//! Every record that closes is also handed to the caller in [`Output::rebalances`](crate::Output)
//! of the step that closed it. (A group deleted by a record applied with
//! [`GroupCoordinator::replay`](crate::GroupCoordinator::replay) after start-up closes its open
//! record there too; it comes out with the next step's output.)
//!
//! # Which partitions moved
//!
//! When the group uses the `consumer` protocol, the leader's assignment is decoded
//! (`ConsumerProtocolAssignment`) and compared with the *last known owner* of each partition:
//! the member that owned it in the previous assignment the coordinator could read or, for a
//! partition that assignment revoked (owned by nobody), the member it was revoked from. So a
//! KIP-429 cooperative rebalance reads as it happened:
//!
//! * round 1 (`A {p0, p1}`, `B {p2, p3}`, `C` joins; the leader gives `A {p0}`, `B {p2}`,
//!   `C {}`): `stayed` p0 → A, p2 → B; `revoked` p1 from A, p3 from B;
//! * round 2 ([`RebalanceCause::CooperativeFollowUp`]; `A {p0}`, `B {p2}`, `C {p1, p3}`):
//!   `moved` p1 A → C, p3 B → C; `stayed` p0 → A, p2 → B.
//!
//! (Compared with the previous generation alone, round 2 would only say p1 and p3 were
//! `assigned` to C, hiding which members they came from.)
//!
//! A revoked partition keeps its last owner for one readable assignment only: if that one
//! does not hand it out either, it is dropped from tracking (it was reported as revoked
//! already) and shows up as `assigned` whenever it is handed out later. The comparison base
//! is only replaced by an assignment that could be read, so a rebalance that restarted or
//! carried an unreadable assignment leaves it as it was; a group that became Empty starts
//! over (nobody owns anything). A static member replaced under a new member id keeps its
//! partitions under the new id. After a restart the base is the loaded assignment of a
//! Stable group, and unknown (every partition `assigned`) for a group loaded mid-rebalance.

use serde::{Deserialize, Serialize};

use crate::Millis;

/// Why a rebalance started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RebalanceCause {
    /// A member that was not in the group joined it (including the first member of an Empty
    /// group).
    MemberJoined,
    /// A member sent LeaveGroup.
    MemberLeft,
    /// A member sent LeaveGroup because its application stopped polling
    /// (`max.poll.interval.ms`), as its KIP-800 leave reason says (the Java client sends
    /// "consumer poll timeout has expired."; librdkafka sends LeaveGroup v0–1, which carries
    /// no reason, so its poll timeouts read as [`RebalanceCause::MemberLeft`]).
    MaxPollExceeded,
    /// A member's session timed out without a heartbeat.
    SessionExpired,
    /// Members of the last generation never sent SyncGroup within the rebalance timeout (they
    /// are listed in `left` as [`DepartureReason::NotSynced`]).
    RebalanceTimeout,
    /// A member rejoined with a different subscription: for the consumer protocol, a different
    /// set of subscribed topics; for other protocols (or metadata that cannot be read as a
    /// consumer subscription), different protocol metadata.
    SubscriptionChanged,
    /// The leader rejoined a settled group with the same subscription, as a consumer leader
    /// does when a subscribed topic's partition count changes.
    MetadataChanged,
    /// A member rejoined a Stable group with the same subscribed topics after the last
    /// generation's assignment revoked partitions from it: the second round of a KIP-429
    /// cooperative rebalance. (Its metadata usually differs: the partitions it owns changed.)
    CooperativeFollowUp,
    /// A follower rejoined a settled group with the same subscription for a reason of its own
    /// (its metadata may differ in other fields, such as the partitions it owns or assignor
    /// user data). A follower whose metadata is byte-for-byte unchanged gets the current
    /// generation without a rebalance, as in Kafka.
    MemberRejoined,
    /// A static member (`group.instance.id`) came back under a new member id while the group
    /// was settling, or with protocols that change the group's selected protocol (as in
    /// Kafka, a replacement in a Stable group that keeps the protocol needs no rebalance:
    /// the new instance gets its predecessor's assignment).
    StaticMemberReplaced,
    /// The group was loaded from storage in the middle of a rebalance.
    Loaded,
    /// A consumer-protocol member joined a classic group, which became a consumer-protocol
    /// group (KIP-848 online upgrade); its classic members are the members before.
    ProtocolUpgraded,
}

impl RebalanceCause {
    /// Every cause, in declaration order.
    pub const ALL: [RebalanceCause; 12] = [
        RebalanceCause::MemberJoined,
        RebalanceCause::MemberLeft,
        RebalanceCause::MaxPollExceeded,
        RebalanceCause::SessionExpired,
        RebalanceCause::RebalanceTimeout,
        RebalanceCause::SubscriptionChanged,
        RebalanceCause::MetadataChanged,
        RebalanceCause::CooperativeFollowUp,
        RebalanceCause::MemberRejoined,
        RebalanceCause::StaticMemberReplaced,
        RebalanceCause::Loaded,
        RebalanceCause::ProtocolUpgraded,
    ];

    /// The snake_case name used in JSON, metric labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            RebalanceCause::MemberJoined => "member_joined",
            RebalanceCause::MemberLeft => "member_left",
            RebalanceCause::MaxPollExceeded => "max_poll_exceeded",
            RebalanceCause::SessionExpired => "session_expired",
            RebalanceCause::RebalanceTimeout => "rebalance_timeout",
            RebalanceCause::SubscriptionChanged => "subscription_changed",
            RebalanceCause::MetadataChanged => "metadata_changed",
            RebalanceCause::CooperativeFollowUp => "cooperative_follow_up",
            RebalanceCause::MemberRejoined => "member_rejoined",
            RebalanceCause::StaticMemberReplaced => "static_member_replaced",
            RebalanceCause::Loaded => "loaded",
            RebalanceCause::ProtocolUpgraded => "protocol_upgraded",
        }
    }
}

/// How a rebalance record closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RebalanceOutcome {
    /// Still open.
    InProgress,
    /// The leader's assignment arrived: the group is Stable.
    Stable,
    /// The join phase completed with nobody left.
    Empty,
    /// Another rebalance began before this one reached Stable.
    Restarted,
    /// The group was deleted.
    Deleted,
}

impl RebalanceOutcome {
    /// Every outcome, in declaration order.
    pub const ALL: [RebalanceOutcome; 5] = [
        RebalanceOutcome::InProgress,
        RebalanceOutcome::Stable,
        RebalanceOutcome::Empty,
        RebalanceOutcome::Restarted,
        RebalanceOutcome::Deleted,
    ];

    /// The snake_case name used in JSON and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            RebalanceOutcome::InProgress => "in_progress",
            RebalanceOutcome::Stable => "stable",
            RebalanceOutcome::Empty => "empty",
            RebalanceOutcome::Restarted => "restarted",
            RebalanceOutcome::Deleted => "deleted",
        }
    }
}

/// Why a member left the group during a rebalance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DepartureReason {
    /// It sent LeaveGroup.
    Left,
    /// Its session timed out.
    SessionExpired,
    /// It did not rejoin within the rebalance timeout.
    NotRejoined,
    /// It did not send SyncGroup within the rebalance timeout.
    NotSynced,
    /// A new instance with the same `group.instance.id` replaced it.
    Replaced,
    /// It rejoined while the group was full (`group.max.size`) and was dropped.
    GroupFull,
    /// Consumer protocol: it did not give up partitions it was asked to revoke within its
    /// rebalance timeout, and was fenced.
    NotRevoked,
}

impl DepartureReason {
    /// Every reason, in declaration order.
    pub const ALL: [DepartureReason; 7] = [
        DepartureReason::Left,
        DepartureReason::SessionExpired,
        DepartureReason::NotRejoined,
        DepartureReason::NotSynced,
        DepartureReason::Replaced,
        DepartureReason::GroupFull,
        DepartureReason::NotRevoked,
    ];

    /// The snake_case name used in JSON, metric labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            DepartureReason::Left => "left",
            DepartureReason::SessionExpired => "session_expired",
            DepartureReason::NotRejoined => "not_rejoined",
            DepartureReason::NotSynced => "not_synced",
            DepartureReason::Replaced => "replaced",
            DepartureReason::GroupFull => "group_full",
            DepartureReason::NotRevoked => "not_revoked",
        }
    }
}

/// One member as a rebalance record names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RebalanceMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
}

/// A member that left while the rebalance ran (or whose departure started it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberDeparture {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub reason: DepartureReason,
}

/// A partition and the member that owns it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PartitionOwner {
    pub topic: String,
    pub partition: i32,
    pub member_id: String,
}

/// A partition that changed hands between two members.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PartitionMove {
    pub topic: String,
    pub partition: i32,
    pub from: String,
    pub to: String,
}

/// The leader's assignment compared with each partition's last known owner (see the
/// [module docs](self) for what "last known" means across cooperative rounds). Every partition
/// of the new assignment or of the previous one appears in exactly one list; each list is
/// sorted by topic, then partition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignmentChange {
    /// Owned now by a different member than its last known owner (`from`) — including a
    /// partition revoked in the previous cooperative round and handed out now.
    pub moved: Vec<PartitionMove>,
    /// Owned now by its last known owner.
    pub stayed: Vec<PartitionOwner>,
    /// Owned now, without a known previous owner.
    pub assigned: Vec<PartitionOwner>,
    /// Owned in the previous assignment (by the member named), by nobody now — as in the first
    /// round of a cooperative rebalance, which revokes partitions before handing them out.
    pub revoked: Vec<PartitionOwner>,
}

/// Consumer protocol: how one moved partition changed hands. Times are wall-clock ms, `None`
/// for what has not happened (or was not seen: a partition its owner took away when it left
/// the group has no `revoke_asked_ms`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PartitionHandover {
    pub topic: String,
    pub partition: i32,
    pub from: String,
    pub to: String,
    /// The previous owner's heartbeat response asked it to revoke the partition.
    pub revoke_asked_ms: Option<Millis>,
    /// The previous owner no longer held it (its heartbeat left it out, or it left the group).
    pub released_ms: Option<Millis>,
    /// The new owner's heartbeat response gave it the partition.
    pub assigned_ms: Option<Millis>,
}

/// Consumer protocol: one member's way to the new target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberReconciliation {
    pub member_id: String,
    /// Its member epoch when the group epoch was bumped (`None`: it joined since).
    pub epoch_before: Option<i32>,
    /// Its member epoch when the record closed.
    pub epoch: i32,
    /// When it first held exactly its target at the new epoch.
    pub reconciled_ms: Option<Millis>,
}

/// One rebalance of one group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RebalanceRecord {
    pub group_id: String,
    /// The generation this rebalance created; the previous generation until its join phase
    /// completes.
    pub generation: i32,
    pub cause: RebalanceCause,
    /// The member whose request or timer started the rebalance, if one did.
    pub trigger_member: Option<String>,
    /// The reason string the client gave (KIP-800, JoinGroup v8+ and LeaveGroup v5+), if any.
    pub client_reason: Option<String>,
    pub protocol_type: String,
    /// The protocol (assignor) the join phase selected.
    pub protocol: Option<String>,
    /// Whether the group rebalanced under the consumer protocol (KIP-848: heartbeats,
    /// server-side assignment) rather than the classic join and sync; records from before
    /// the field existed read as classic.
    #[serde(default)]
    pub consumer_protocol: bool,
    /// When the group entered PreparingRebalance.
    pub started_ms: Millis,
    /// When the join phase completed (CompletingRebalance, or Empty).
    pub join_completed_ms: Option<Millis>,
    /// When the record closed (see `outcome`).
    pub ended_ms: Option<Millis>,
    pub outcome: RebalanceOutcome,
    /// Member ids of the group when the rebalance started, in join order.
    pub members_before: Vec<String>,
    /// The members of the new generation, in join order (empty until the join phase completes).
    pub members: Vec<RebalanceMember>,
    /// Members that joined during this rebalance, or whose joining started it (a static
    /// member replaced under a new id is listed here by its new id and in `left` by its old).
    pub joined: Vec<String>,
    /// Members that left during this rebalance, or whose departure started it.
    pub left: Vec<MemberDeparture>,
    /// Decoded from the leader's SyncGroup assignment when the group uses the consumer
    /// protocol and every member's assignment could be read (empty bytes read as no
    /// partitions); `None` otherwise, when two members were given the same partition, and for
    /// records that did not close Stable.
    pub assignment: Option<AssignmentChange>,
    /// Consumer protocol: each moved partition's hand-over, by topic and partition.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub handovers: Vec<PartitionHandover>,
    /// Consumer protocol: each member's epochs and when it reconciled, by member id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reconciliation: Vec<MemberReconciliation>,
}

impl RebalanceRecord {
    /// PreparingRebalance → CompletingRebalance (or Empty).
    pub fn join_phase_ms(&self) -> Option<Millis> {
        Some(self.join_completed_ms?.saturating_sub(self.started_ms))
    }

    /// CompletingRebalance → Stable.
    pub fn sync_phase_ms(&self) -> Option<Millis> {
        if self.outcome != RebalanceOutcome::Stable {
            return None;
        }
        Some(self.ended_ms?.saturating_sub(self.join_completed_ms?))
    }

    /// Start to close.
    pub fn duration_ms(&self) -> Option<Millis> {
        Some(self.ended_ms?.saturating_sub(self.started_ms))
    }
}

/// One group at a glance, for metrics and listings.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupOverview {
    pub group_id: String,
    /// The classic state; for a consumer-protocol group the nearest one (Assigning and
    /// Reconciling show as CompletingRebalance), its own state being in `consumer_state`.
    pub state: crate::GroupState,
    /// Set for a group on the KIP-848 consumer protocol (its `generation` is the group epoch,
    /// its `protocol` the server-side assignor).
    pub consumer_state: Option<crate::ConsumerGroupState>,
    /// `""` for a group that only holds offsets.
    pub protocol_type: String,
    pub protocol: Option<String>,
    pub generation: i32,
    pub members: usize,
    /// (topic, partition, committed offset), sorted.
    pub offsets: Vec<(String, i32, i64)>,
    /// The newest rebalance (the open one while a rebalance runs), if any.
    pub last_rebalance: Option<RebalanceSummary>,
}

/// A rebalance at a glance, as listings show a group's newest one: cheap to copy, unlike the
/// record with its assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RebalanceSummary {
    pub generation: i32,
    pub cause: RebalanceCause,
    pub outcome: RebalanceOutcome,
    pub started_ms: Millis,
    pub ended_ms: Option<Millis>,
}

impl RebalanceSummary {
    /// Start to close; `None` while open.
    pub fn duration_ms(&self) -> Option<Millis> {
        Some(self.ended_ms?.saturating_sub(self.started_ms))
    }
}

impl From<&RebalanceRecord> for RebalanceSummary {
    fn from(record: &RebalanceRecord) -> RebalanceSummary {
        RebalanceSummary {
            generation: record.generation,
            cause: record.cause,
            outcome: record.outcome,
            started_ms: record.started_ms,
            ended_ms: record.ended_ms,
        }
    }
}
