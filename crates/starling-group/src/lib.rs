//! Starling's consumer-group coordinator core for Kafka's CLASSIC group protocol.
//!
//! A pure state machine: requests and `now` go in; responses (possibly to requests received
//! earlier), records to persist and timer deadlines come out. No I/O, no clock, no threads.
//!
//! # Guide
//!
//! * [`GroupCoordinator::handle`] takes one request (JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
//!   OffsetCommit, OffsetFetch, DescribeGroups, ListGroups, DeleteGroups, OffsetDelete) with the
//!   API version it arrived at and returns an [`Output`]: responses, each encodable at the version
//!   of the request it answers, and [`Record`]s to persist **before** those responses are sent.
//! * JoinGroup and SyncGroup responses may be *held* (the join barrier, the wait for the leader's
//!   assignment). A held response comes out later, in the [`Output`] of another `handle` or of
//!   [`GroupCoordinator::expire`], tagged with its original [`RequestId`]. Every request id gets
//!   exactly one response.
//! * Time only comes from the `now` arguments ([`Now`]: a monotonic reading for timer deadlines,
//!   a wall-clock one for stored timestamps). Timers (session timeouts, the join and sync
//!   barriers, the initial rebalance delay, pending KIP-394 members, the periodic offset expiry)
//!   are data: [`GroupCoordinator::next_deadline`] tells the caller when to call
//!   [`GroupCoordinator::expire`] next.
//! * Durable state — each group's generation, protocol, leader, members and assignments, and the
//!   committed offsets — is changed only by applying records, through the same code path that
//!   start-up uses ([`GroupCoordinator::replay`]); after the last stored record the caller calls
//!   [`GroupCoordinator::loaded`]. Held requests, deadlines and pending members live in memory only.
//! * Every rebalance leaves a [`RebalanceRecord`] ([`history`]): why it started (a
//!   [`RebalanceCause`], the member and its KIP-800 reason), who joined and left, when the join
//!   and sync phases ended, and — for consumer groups, decoded from the leader's assignment —
//!   which partitions moved between which members. [`GroupCoordinator::rebalances`] returns a
//!   group's bounded history ([`GroupConfig::rebalance_history`] closed records, then the open
//!   one); [`Output::rebalances`] carries the records a step closed, for logs and metrics;
//!   [`GroupCoordinator::overview`] lists every group at a glance. The history is kept in
//!   memory only, like the timers.
//!
//! The behaviour follows Apache Kafka's classic group coordinator (`GroupMetadataManager`,
//! `ClassicGroup`) including KIP-345 static membership, KIP-394 (member id required), KIP-429
//! (cooperative rebalancing works as repeated rebalances), KIP-496 (OffsetDelete), KIP-709
//! (batched OffsetFetch) and KIP-814 (JoinGroup `skip_assignment`). The KIP-848 consumer
//! protocol lives in [`consumer`], with Kafka 4's mixed groups: classic members inside a
//! consumer-protocol group, and online migration between the two protocols as
//! [`GroupConfig::consumer_migration_policy`] allows.
//!
//! # Example: one member joins and syncs a group
//!
//! ```
//! use bytes::Bytes;
//! use kafka_protocol::messages::{
//!     GroupId, JoinGroupRequest, SyncGroupRequest, join_group_request::JoinGroupRequestProtocol,
//!     sync_group_request::SyncGroupRequestAssignment,
//! };
//! use kafka_protocol::protocol::StrBytes;
//! use starling_group::{
//!     ClientInfo, GroupConfig, GroupCoordinator, GroupRequest, GroupResponse, RebalanceCause,
//!     RebalanceOutcome,
//! };
//!
//! let config = GroupConfig { initial_rebalance_delay_ms: 0, ..GroupConfig::default() };
//! let mut coordinator = GroupCoordinator::new(config);
//! coordinator.loaded(0);
//! let client = ClientInfo { client_id: "app".into(), client_host: "/127.0.0.1".into() };
//!
//! let join = |member_id: &str| {
//!     let mut request = JoinGroupRequest::default();
//!     request.group_id = GroupId(StrBytes::from_static_str("orders"));
//!     request.member_id = StrBytes::from_string(member_id.to_string());
//!     request.session_timeout_ms = 10_000;
//!     request.rebalance_timeout_ms = 30_000;
//!     request.protocol_type = "consumer".into();
//!     let mut protocol = JoinGroupRequestProtocol::default();
//!     protocol.name = "range".into();
//!     protocol.metadata = Bytes::from_static(b"subscription");
//!     request.protocols = vec![protocol];
//!     GroupRequest::Join(request)
//! };
//!
//! // JoinGroup v9 without a member id: KIP-394 hands out a member id (MEMBER_ID_REQUIRED).
//! let out = coordinator.handle(0, 1, 9, &client, join(""));
//! let GroupResponse::Join(first) = &out.responses[0].1 else { unreachable!() };
//! assert_eq!(first.error_code, 79);
//! let member_id = first.member_id.to_string();
//!
//! // Rejoining with that id: the group is empty, so the initial delay (0 here) must pass.
//! assert!(coordinator.handle(1, 2, 9, &client, join(&member_id)).responses.is_empty());
//! let out = coordinator.expire(1);
//! let GroupResponse::Join(joined) = &out.responses[0].1 else { unreachable!() };
//! assert_eq!((out.responses[0].0, joined.generation_id), (2, 1));
//! assert_eq!(joined.leader.as_str(), member_id);
//!
//! // The leader sends the assignment; the group record is persisted with it.
//! let mut sync = SyncGroupRequest::default();
//! sync.group_id = GroupId(StrBytes::from_static_str("orders"));
//! sync.member_id = StrBytes::from_string(member_id.clone());
//! sync.generation_id = 1;
//! let mut assignment = SyncGroupRequestAssignment::default();
//! assignment.member_id = StrBytes::from_string(member_id.clone());
//! assignment.assignment = Bytes::from_static(b"partitions");
//! sync.assignments = vec![assignment];
//! let out = coordinator.handle(2, 3, 5, &client, GroupRequest::Sync(sync));
//! let GroupResponse::Sync(synced) = &out.responses[0].1 else { unreachable!() };
//! assert_eq!((synced.error_code, &synced.assignment[..]), (0, &b"partitions"[..]));
//! assert_eq!(out.records.len(), 1);
//!
//! // That closed the rebalance that made generation 1: it started when the member joined (at
//! // 1) and ended with the assignment (at 2). The bytes are no `ConsumerProtocolAssignment`,
//! // so which partitions went where is unknown.
//! let record = &out.rebalances[0];
//! assert_eq!(record.cause, RebalanceCause::MemberJoined);
//! assert_eq!((record.outcome, record.generation), (RebalanceOutcome::Stable, 1));
//! assert_eq!((record.join_phase_ms(), record.sync_phase_ms()), (Some(0), Some(1)));
//! assert!(record.assignment.is_none());
//! assert_eq!(coordinator.rebalances("orders").unwrap(), vec![record.clone()]);
//! ```

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse, DeleteGroupsRequest, DeleteGroupsResponse,
    DescribeGroupsRequest, DescribeGroupsResponse, HeartbeatRequest, HeartbeatResponse,
    JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest,
    ListGroupsResponse, OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest,
    OffsetDeleteResponse, OffsetFetchRequest, OffsetFetchResponse, SyncGroupRequest,
    SyncGroupResponse, TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};
use serde::{Deserialize, Serialize};

mod assignment;
pub mod assignor;
pub mod consumer;
mod describe;
mod group;
mod handover;
mod heartbeat;
pub mod history;
mod ids;
mod join;
mod leave;
mod member;
mod offsets;
mod protocol_select;
mod rebalance;
mod recorder;
mod replay;
mod responses;
pub mod state;
mod sync;
mod timers;
mod txn_offsets;

#[cfg(test)]
mod tests;

pub use consumer::migration::MigrationPolicy;
pub use consumer::subscription::TopicsImage;
pub use consumer::{
    ClassicMemberMetadata, ConsumerAssignmentValue, ConsumerGroupState, ConsumerGroupValue,
    ConsumerMemberValue, MemberState, TopicPartitions,
};
pub use history::{
    AssignmentChange, DepartureReason, GroupOverview, MemberDeparture, MemberReconciliation,
    PartitionHandover, PartitionMove, PartitionOwner, RebalanceCause, RebalanceMember,
    RebalanceOutcome, RebalanceRecord, RebalanceSummary,
};
pub use state::GroupState;

use group::Group;
use timers::Timers;

/// Identifies one request so its (possibly delayed) response can be routed back.
pub type RequestId = u64;

/// Milliseconds, supplied by the caller: on a monotonic clock for timer deadlines
/// ([`Now::monotonic`]), since the Unix epoch for stored and shown timestamps ([`Now::wall`]).
pub type Millis = i64;

/// One reading of the caller's two clocks.
///
/// Timers (session timeouts, the join and sync barriers, the initial delay, the periodic offset
/// expiry) run on the **monotonic** clock, so a wall clock that jumps (NTP, a VM resumed, an
/// operator) neither fires them early nor holds them back. The **wall** clock is used only
/// where Kafka keeps timestamps: commit and expiry times of offsets, a group's state timestamp,
/// the times in the rebalance history, and the time part of generated member ids.
///
/// A plain [`Millis`] converts into a reading whose two clocks agree (what tests and
/// simulations use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Milliseconds on a clock that never goes back (any origin).
    pub monotonic: Millis,
    /// Milliseconds since the Unix epoch.
    pub wall: Millis,
}

impl From<Millis> for Now {
    fn from(ms: Millis) -> Now {
        Now {
            monotonic: ms,
            wall: ms,
        }
    }
}

/// How long a brand-new member may wait in a join barrier before it is dropped (Kafka's
/// new-member join timeout from KAFKA-7610: 5 minutes, not configurable here).
pub const NEW_MEMBER_JOIN_TIMEOUT_MS: i64 = 5 * 60 * 1000;

/// Broker settings the coordinator follows (Kafka names in the docs).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupConfig {
    /// `group.min.session.timeout.ms` (6000).
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms` (1800000).
    pub max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms` (3000).
    pub initial_rebalance_delay_ms: i32,
    /// `group.max.size` (i32::MAX).
    pub max_size: i32,
    /// `offsets.retention.minutes` in ms (7 days).
    pub offsets_retention_ms: i64,
    /// `offsets.retention.check.interval.ms` (600000).
    pub offsets_retention_check_interval_ms: i64,
    /// `offset.metadata.max.bytes` (4096).
    pub offset_metadata_max_bytes: usize,
    /// How many closed rebalance records each group keeps (Starling's
    /// `group.rebalance.history.size`, 32).
    pub rebalance_history: usize,
    /// `group.consumer.session.timeout.ms` (45000): a consumer-protocol member not heard from
    /// for this long is fenced.
    pub consumer_session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms`: the longest interval a reconciled
    /// consumer-protocol member is told to heartbeat at, the one it gets once the broker holds
    /// enough members to spend its whole heartbeat budget (below). Starling's default (4000;
    /// Kafka's is 5000) is the shortest at which 1,000 members' heartbeats cost the broker under
    /// 1% of a core, as measured by `starling bench heartbeat` (docs/BENCHMARKS.md).
    pub consumer_heartbeat_interval_ms: i32,
    /// Starling's `group.consumer.heartbeat.rate.budget` (250): the steady heartbeats per second
    /// the broker spends on all its consumer-protocol members together. A reconciled member's
    /// interval is the broker's member count divided by this budget, between
    /// [`GroupConfig::consumer_min_heartbeat_interval_ms`] and
    /// [`GroupConfig::consumer_heartbeat_interval_ms`]: a broker with few members tells them to
    /// heartbeat often (so a moved partition changes hands sooner), one with many spends no
    /// more CPU than the fixed interval would. 0 turns this off (always the longest interval,
    /// as in Kafka).
    pub consumer_heartbeat_rate_budget: u32,
    /// Starling's `group.consumer.heartbeat.interval.min.ms` (500): the shortest steady
    /// interval the budget may give.
    pub consumer_min_heartbeat_interval_ms: i32,
    /// Starling's `group.consumer.pending.heartbeat.interval.ms`: the interval for a member with
    /// partitions to revoke or to receive, so that a hand-over takes a round trip, not a
    /// steady interval.
    pub consumer_pending_heartbeat_interval_ms: i32,
    /// `group.consumer.max.size` (i32::MAX).
    pub consumer_max_size: i32,
    /// `group.consumer.assignors`: the server-side assignors members may ask for, the first
    /// being the default.
    pub consumer_assignors: Vec<String>,
    /// `group.consumer.migration.policy` (`bidirectional`, as in Kafka 4): whether a classic
    /// group may turn into a consumer-protocol group online, and back.
    pub consumer_migration_policy: MigrationPolicy,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 3000,
            max_size: i32::MAX,
            offsets_retention_ms: 7 * 24 * 3600 * 1000,
            offsets_retention_check_interval_ms: 600_000,
            offset_metadata_max_bytes: 4096,
            rebalance_history: 32,
            consumer_session_timeout_ms: 45_000,
            consumer_heartbeat_interval_ms: 4_000,
            consumer_heartbeat_rate_budget: 250,
            consumer_min_heartbeat_interval_ms: 500,
            consumer_pending_heartbeat_interval_ms: 200,
            consumer_max_size: i32::MAX,
            consumer_assignors: assignor::DEFAULT_ASSIGNORS
                .iter()
                .map(|name| name.to_string())
                .collect(),
            consumer_migration_policy: MigrationPolicy::default(),
        }
    }
}

/// Who sent a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    pub client_id: String,
    pub client_host: String,
}

/// A request for the coordinator, with the API version it arrived at.
#[derive(Debug, Clone)]
pub enum GroupRequest {
    Join(JoinGroupRequest),
    Sync(SyncGroupRequest),
    Heartbeat(HeartbeatRequest),
    Leave(LeaveGroupRequest),
    OffsetCommit(OffsetCommitRequest),
    OffsetFetch(OffsetFetchRequest),
    DescribeGroups(DescribeGroupsRequest),
    ListGroups(ListGroupsRequest),
    DeleteGroups(DeleteGroupsRequest),
    OffsetDelete(OffsetDeleteRequest),
    ConsumerGroupHeartbeat(ConsumerGroupHeartbeatRequest),
    ConsumerGroupDescribe(ConsumerGroupDescribeRequest),
    /// A transactional producer's offsets, pending until its transaction ends.
    TxnOffsetCommit(TxnOffsetCommitRequest),
    /// The end of a transaction that committed offsets in the group (the broker sends it where
    /// Kafka writes a transaction marker into `__consumer_offsets`; no client sends it).
    TxnEnd {
        group_id: String,
        producer_id: i64,
        commit: bool,
    },
}

/// A response, to be encoded at the version of the request it answers.
#[derive(Debug, Clone)]
pub enum GroupResponse {
    Join(JoinGroupResponse),
    Sync(SyncGroupResponse),
    Heartbeat(HeartbeatResponse),
    Leave(LeaveGroupResponse),
    OffsetCommit(OffsetCommitResponse),
    OffsetFetch(OffsetFetchResponse),
    DescribeGroups(DescribeGroupsResponse),
    ListGroups(ListGroupsResponse),
    DeleteGroups(DeleteGroupsResponse),
    OffsetDelete(OffsetDeleteResponse),
    ConsumerGroupHeartbeat(ConsumerGroupHeartbeatResponse),
    ConsumerGroupDescribe(ConsumerGroupDescribeResponse),
    TxnOffsetCommit(TxnOffsetCommitResponse),
    /// A [`GroupRequest::TxnEnd`] is done, or could not be (the broker tries again).
    TxnEnd(Result<(), kafka_protocol::ResponseError>),
}

impl GroupResponse {
    /// The API this response answers.
    pub fn api_key(&self) -> kafka_protocol::messages::ApiKey {
        use kafka_protocol::messages::ApiKey;
        match self {
            GroupResponse::Join(_) => ApiKey::JoinGroup,
            GroupResponse::Sync(_) => ApiKey::SyncGroup,
            GroupResponse::Heartbeat(_) => ApiKey::Heartbeat,
            GroupResponse::Leave(_) => ApiKey::LeaveGroup,
            GroupResponse::OffsetCommit(_) => ApiKey::OffsetCommit,
            GroupResponse::OffsetFetch(_) => ApiKey::OffsetFetch,
            GroupResponse::DescribeGroups(_) => ApiKey::DescribeGroups,
            GroupResponse::ListGroups(_) => ApiKey::ListGroups,
            GroupResponse::DeleteGroups(_) => ApiKey::DeleteGroups,
            GroupResponse::OffsetDelete(_) => ApiKey::OffsetDelete,
            GroupResponse::ConsumerGroupHeartbeat(_) => ApiKey::ConsumerGroupHeartbeat,
            GroupResponse::ConsumerGroupDescribe(_) => ApiKey::ConsumerGroupDescribe,
            GroupResponse::TxnOffsetCommit(_) => ApiKey::TxnOffsetCommit,
            GroupResponse::TxnEnd(_) => ApiKey::WriteTxnMarkers,
        }
    }

    /// Encodes the response body at `version` (an error when a field is set that the version
    /// does not have).
    pub fn encode_body(&self, buf: &mut bytes::BytesMut, version: i16) -> Result<(), String> {
        use kafka_protocol::protocol::Encodable;
        let result = match self {
            GroupResponse::Join(r) => r.encode(buf, version),
            GroupResponse::Sync(r) => r.encode(buf, version),
            GroupResponse::Heartbeat(r) => r.encode(buf, version),
            GroupResponse::Leave(r) => r.encode(buf, version),
            GroupResponse::OffsetCommit(r) => r.encode(buf, version),
            GroupResponse::OffsetFetch(r) => r.encode(buf, version),
            GroupResponse::DescribeGroups(r) => r.encode(buf, version),
            GroupResponse::ListGroups(r) => r.encode(buf, version),
            GroupResponse::DeleteGroups(r) => r.encode(buf, version),
            GroupResponse::OffsetDelete(r) => r.encode(buf, version),
            GroupResponse::ConsumerGroupHeartbeat(r) => r.encode(buf, version),
            GroupResponse::ConsumerGroupDescribe(r) => r.encode(buf, version),
            GroupResponse::TxnOffsetCommit(r) => r.encode(buf, version),
            // Answers the broker itself, never a client: nothing goes on the wire.
            GroupResponse::TxnEnd(_) => Ok(()),
        };
        result.map_err(|e| e.to_string())
    }
}

/// A durable change. The caller persists records (in order) before releasing the responses of
/// the same [`Output`]; at start-up it replays every stored record through [`GroupCoordinator::replay`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Record {
    /// A group's membership and assignment after a rebalance step; `None` deletes the group.
    Group {
        group_id: String,
        value: Option<GroupValue>,
    },
    /// A committed offset; `None` deletes it.
    Offset {
        group_id: String,
        topic: String,
        partition: i32,
        value: Option<OffsetValue>,
    },
    /// A consumer-protocol group's epoch; `None` deletes the consumer group.
    ConsumerGroup {
        group_id: String,
        value: Option<ConsumerGroupValue>,
    },
    /// A consumer-protocol member's subscription; `None` removes the member.
    ConsumerMember {
        group_id: String,
        member_id: String,
        value: Option<ConsumerMemberValue>,
    },
    /// The group epoch a consumer group's target assignment was computed for.
    ConsumerTargetEpoch {
        group_id: String,
        value: Option<i32>,
    },
    /// A member's target assignment.
    ConsumerTarget {
        group_id: String,
        member_id: String,
        value: Option<TopicPartitions>,
    },
    /// A member's current assignment (epoch, state, partitions).
    ConsumerAssignment {
        group_id: String,
        member_id: String,
        value: Option<ConsumerAssignmentValue>,
    },
    /// A transactional producer's offset, pending until its transaction ends; `None` removes
    /// it (the transaction ended).
    PendingOffset {
        group_id: String,
        producer_id: i64,
        topic: String,
        partition: i32,
        value: Option<OffsetValue>,
    },
}

impl Record {
    /// The group the record belongs to.
    pub fn group_id(&self) -> &str {
        match self {
            Record::Group { group_id, .. }
            | Record::Offset { group_id, .. }
            | Record::ConsumerGroup { group_id, .. }
            | Record::ConsumerMember { group_id, .. }
            | Record::ConsumerTargetEpoch { group_id, .. }
            | Record::ConsumerTarget { group_id, .. }
            | Record::ConsumerAssignment { group_id, .. }
            | Record::PendingOffset { group_id, .. } => group_id,
        }
    }

    /// The key under which the latest record of its kind replaces earlier ones (for compaction).
    pub fn key(&self) -> String {
        match self {
            Record::Group { group_id, .. } => format!("g/{group_id}"),
            Record::Offset {
                group_id,
                topic,
                partition,
                ..
            } => format!("o/{group_id}/{topic}/{partition}"),
            Record::ConsumerGroup { group_id, .. } => format!("cg/{group_id}"),
            Record::ConsumerTargetEpoch { group_id, .. } => format!("ct/{group_id}"),
            // The group id's length keeps (group "a/b", member "c") apart from ("a", "b/c").
            Record::ConsumerMember {
                group_id,
                member_id,
                ..
            } => format!("cm/{}/{group_id}/{member_id}", group_id.len()),
            Record::ConsumerTarget {
                group_id,
                member_id,
                ..
            } => format!("ctm/{}/{group_id}/{member_id}", group_id.len()),
            Record::ConsumerAssignment {
                group_id,
                member_id,
                ..
            } => format!("ca/{}/{group_id}/{member_id}", group_id.len()),
            Record::PendingOffset {
                group_id,
                producer_id,
                topic,
                partition,
                ..
            } => format!(
                "po/{}/{group_id}/{producer_id}/{topic}/{partition}",
                group_id.len()
            ),
        }
    }

    /// Whether the record deletes its key (its value is `None`).
    pub fn is_deletion(&self) -> bool {
        match self {
            Record::Group { value, .. } => value.is_none(),
            Record::Offset { value, .. } => value.is_none(),
            Record::ConsumerGroup { value, .. } => value.is_none(),
            Record::ConsumerMember { value, .. } => value.is_none(),
            Record::ConsumerTargetEpoch { value, .. } => value.is_none(),
            Record::ConsumerTarget { value, .. } => value.is_none(),
            Record::ConsumerAssignment { value, .. } => value.is_none(),
            Record::PendingOffset { value, .. } => value.is_none(),
        }
    }
}

/// A group as persisted: written when a join phase completes (new generation, assignments not
/// known yet: all empty), when the leader's assignment arrives, when a static member is replaced
/// without a rebalance, and when a group is first created by a JoinGroup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub state_timestamp: Millis,
    pub members: Vec<MemberValue>,
}

/// One member of a persisted group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberValue {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub protocol_type: String,
    /// (protocol name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
}

/// One committed offset as persisted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OffsetValue {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: Millis,
    pub expire_timestamp: Option<Millis>,
}

/// What one step of the coordinator produced.
#[derive(Debug, Default)]
pub struct Output {
    /// Responses, to this request and/or to earlier ones being held (JoinGroup, SyncGroup).
    pub responses: Vec<(RequestId, GroupResponse)>,
    /// Durable changes to persist before the responses are sent.
    pub records: Vec<Record>,
    /// Rebalance records that closed during this step (for logs and metrics; the coordinator
    /// keeps them in each group's history too, see [`GroupCoordinator::rebalances`]).
    pub rebalances: Vec<RebalanceRecord>,
}

/// Every group this broker coordinates.
#[derive(Debug)]
pub struct GroupCoordinator {
    config: GroupConfig,
    groups: BTreeMap<String, Group>,
    timers: Timers,
    /// The latest monotonic time seen (the maximum of every `now` and every fired deadline).
    clock: Millis,
    /// The latest reading supplied by the caller; wall-clock time is derived from it (see
    /// [`GroupCoordinator::wall_now`]).
    reading: Now,
    /// Feeds generated member ids.
    id_counter: u64,
    /// The topics the broker has, for consumer-protocol subscriptions and assignments.
    topics: TopicsImage,
    /// Compiled subscription regexes.
    regexes: consumer::subscription::RegexCache,
    /// Whether `loaded` ran (it runs implicitly on the first `handle`/`expire` otherwise).
    is_loaded: bool,
    /// How many consumer-protocol members every group holds together, once counted; `None`
    /// after a record that may change it (it is counted again when next needed).
    consumer_members: Option<usize>,
    /// The open consumer-protocol rebalance records' working state.
    consumer_history: consumer::history::ConsumerHistory,
    /// What the current step has produced so far.
    out: Output,
}

impl GroupCoordinator {
    pub fn new(config: GroupConfig) -> GroupCoordinator {
        GroupCoordinator {
            config,
            groups: BTreeMap::new(),
            timers: Timers::default(),
            clock: Millis::MIN,
            reading: Now {
                monotonic: Millis::MIN,
                wall: 0,
            },
            id_counter: 0,
            topics: TopicsImage::default(),
            regexes: Default::default(),
            is_loaded: false,
            consumer_members: None,
            consumer_history: Default::default(),
            out: Output::default(),
        }
    }

    /// Applies a stored record (start-up loading). Live operation applies every record it emits
    /// through this same path.
    pub fn replay(&mut self, record: &Record) {
        self.apply(record);
    }

    /// Call after the last replayed record: turns loaded groups into live ones (members'
    /// session timers start at `now`). A group persisted in the middle of a rebalance (every
    /// member's assignment empty) comes back in PreparingRebalance, a group without members as
    /// Empty, any other as Stable (Kafka loads every group with members as Stable).
    pub fn loaded(&mut self, now: impl Into<Now>) {
        self.read_clocks(now.into());
        if !self.is_loaded {
            self.is_loaded = true;
            self.activate_loaded_groups();
        }
    }

    /// Handles one request that arrived at API version `version`.
    pub fn handle(
        &mut self,
        now: impl Into<Now>,
        id: RequestId,
        version: i16,
        client: &ClientInfo,
        request: GroupRequest,
    ) -> Output {
        self.loaded(now);
        match request {
            GroupRequest::Join(r) => self.handle_join(id, version, client, r),
            GroupRequest::Sync(r) => self.handle_sync(id, version, r),
            GroupRequest::Heartbeat(r) => self.handle_heartbeat(id, version, r),
            GroupRequest::Leave(r) => self.handle_leave(id, version, r),
            GroupRequest::OffsetCommit(r) => self.handle_offset_commit(id, version, r),
            GroupRequest::OffsetFetch(r) => self.handle_offset_fetch(id, version, r),
            GroupRequest::DescribeGroups(r) => self.handle_describe_groups(id, version, r),
            GroupRequest::ListGroups(r) => self.handle_list_groups(id, version, r),
            GroupRequest::DeleteGroups(r) => self.handle_delete_groups(id, version, r),
            GroupRequest::OffsetDelete(r) => self.handle_offset_delete(id, version, r),
            GroupRequest::ConsumerGroupHeartbeat(r) => {
                self.handle_consumer_heartbeat(id, version, client, r)
            }
            GroupRequest::ConsumerGroupDescribe(r) => self.handle_consumer_describe(id, version, r),
            GroupRequest::TxnOffsetCommit(r) => self.handle_txn_offset_commit(id, version, r),
            GroupRequest::TxnEnd {
                group_id,
                producer_id,
                commit,
            } => self.handle_txn_end(id, &group_id, producer_id, commit),
        }
        self.finish_step()
    }

    /// Fires every timer due at or before `now`, in deadline order. Each timer is handled at
    /// its own deadline (or the latest time already seen, if later), so one big step behaves
    /// like many small ones.
    pub fn expire(&mut self, now: impl Into<Now>) -> Output {
        let now = now.into();
        if !self.is_loaded {
            self.loaded(now);
        }
        // Not `read_clocks`: the clock must not pass the deadlines before they fire.
        self.reading = now;
        while let Some((deadline, key)) = self.timers.pop_due(now.monotonic) {
            self.advance(deadline);
            self.fire(key);
        }
        self.advance(now.monotonic);
        self.finish_step()
    }

    /// The broker's topics changed (or are told for the first time, before the first
    /// request): consumer groups subscribed to a topic that was created, deleted or grew get a
    /// new group epoch, so their members are assigned again.
    pub fn set_topics(&mut self, now: impl Into<Now>, topics: TopicsImage) -> Output {
        self.loaded(now);
        self.topics = topics;
        self.regexes.topics_changed();
        let consumer_groups: Vec<String> = self
            .groups
            .iter()
            .filter(|(_, g)| g.consumer.is_some())
            .map(|(id, _)| id.clone())
            .collect();
        for group_id in consumer_groups {
            let has_members = self
                .consumer_group(&group_id)
                .is_some_and(|g| !g.members.is_empty());
            if has_members {
                self.maybe_bump_group_epoch(&group_id, false);
            }
        }
        self.finish_step()
    }

    /// A step's output, once the step's loose ends are tied.
    fn finish_step(&mut self) -> Output {
        self.end_consumer_step();
        std::mem::take(&mut self.out)
    }

    /// The earliest pending timer deadline (monotonic), if any.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.timers.next_deadline()
    }

    /// Whether the coordinator holds a group with this id (for FindCoordinator/ListGroups style checks).
    pub fn has_group(&self, group_id: &str) -> bool {
        self.groups.contains_key(group_id)
    }

    /// The state of a group, if the coordinator holds it.
    pub fn group_state(&self, group_id: &str) -> Option<GroupState> {
        self.groups.get(group_id).map(|g| g.state)
    }

    /// The generation of a group, if the coordinator holds it.
    pub fn group_generation(&self, group_id: &str) -> Option<i32> {
        self.groups.get(group_id).map(|g| g.generation)
    }

    /// A group's rebalance history, oldest first, ending with the open record if a rebalance
    /// is in progress. `None` if the coordinator does not hold the group.
    pub fn rebalances(&self, group_id: &str) -> Option<Vec<RebalanceRecord>> {
        self.groups
            .get(group_id)
            .map(|g| g.history.iter().cloned().collect())
    }

    /// Every group the coordinator holds, sorted by id.
    pub fn overview(&self) -> Vec<GroupOverview> {
        self.groups
            .values()
            .map(|g| GroupOverview {
                group_id: g.id.clone(),
                state: match g.consumer.as_deref().map(|c| c.state()) {
                    None => g.state,
                    Some(ConsumerGroupState::Empty) => GroupState::Empty,
                    Some(ConsumerGroupState::Stable) => GroupState::Stable,
                    Some(_) => GroupState::CompletingRebalance,
                },
                consumer_state: g.consumer.as_deref().map(|c| c.state()),
                protocol_type: g.protocol_type.clone(),
                protocol: match g.consumer.as_deref() {
                    Some(c) => Some(self.preferred_assignor(c)),
                    None => g.protocol.clone(),
                },
                generation: g.consumer.as_deref().map_or(g.generation, |c| c.epoch),
                members: g
                    .consumer
                    .as_deref()
                    .map_or(g.members.len(), |c| c.members.len()),
                offsets: g
                    .offsets
                    .iter()
                    .map(|((topic, partition), value)| (topic.clone(), *partition, value.offset))
                    .collect(),
                last_rebalance: g.history.back().map(RebalanceSummary::from),
            })
            .collect()
    }

    /// Every pending timer as (key, deadline), earliest first; keys read like
    /// `heartbeat:<group>:<member>`, `join:<group>`, `sync:<group>`, `initial-delay:<group>`,
    /// `pending:<group>:<member>` and `offsets-expiry`.
    pub fn timers(&self) -> Vec<(String, Millis)> {
        self.timers.list()
    }

    /// Takes in a new reading of the caller's clocks; time never goes back.
    fn read_clocks(&mut self, now: Now) {
        self.advance(now.monotonic);
        self.reading = now;
    }

    fn advance(&mut self, monotonic: Millis) {
        self.clock = self.clock.max(monotonic);
    }

    /// The monotonic time of the current step: what timer deadlines are computed from.
    fn now(&self) -> Millis {
        self.clock
    }

    /// The wall-clock time of the current step, for stored and shown timestamps: the caller's
    /// latest wall reading, moved by how far the monotonic clock has got from that reading (a
    /// timer fired at its own, earlier deadline inside a late `expire` gets the wall time of
    /// that deadline).
    fn wall_now(&self) -> Millis {
        self.reading
            .wall
            .saturating_add(self.clock.saturating_sub(self.reading.monotonic))
    }
}
