//! The coordinator target: a [`script`] of group requests, time steps, timer expiries and
//! restarts run against a `starling_group::GroupCoordinator`.
//!
//! Every request is encoded at its API version with kafka-protocol and decoded back before the
//! coordinator sees it, so it holds exactly what a client could send at that version. After
//! every step the invariants the coordinator's own property tests state, as far as they are
//! visible from outside, are checked (a broken one panics, which the fuzzer records as a crash):
//!
//! * every request id is answered at most once, with a response of its own API that encodes
//!   at the request's version, and never after a restart lost it;
//! * every rebalance record a step hands out is closed, and each record keeps
//!   `started ≤ join completed ≤ ended`;
//! * at the end, each group's history has at most one open record, the last, and replaying
//!   the records emitted (through every restart) gives the committed offsets the running
//!   coordinator holds: memory is never ahead of what would be stored.

pub mod script;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, ConsumerProtocolAssignment, ConsumerProtocolSubscription, DeleteGroupsRequest,
    DescribeGroupsRequest, GroupId, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest,
    ListGroupsRequest, OffsetCommitRequest, OffsetDeleteRequest, OffsetFetchRequest,
    SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use starling_group::{
    ClientInfo, GroupConfig, GroupCoordinator, GroupRequest, GroupResponse, Millis, Output,
    RebalanceOutcome, RebalanceRecord, Record, RequestId,
};

use script::{
    Blob, GenerationRef, GroupRef, InstanceRef, Label, MemberRef, Metadata, Offset, Op, Partition,
    Settings, Timeout, TopicRef, LABELS, TIMEOUTS, TOPICS,
};

/// Runs `data` as a [`script::Script`]; panics if an invariant breaks.
pub fn coordinator(data: &[u8]) {
    Harness::run(script::Reader::new(data));
}

/// What a script did, for tests that check a seed reaches what it is meant to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub requests: usize,
    pub answered: usize,
    pub successful_joins: usize,
    pub successful_syncs: usize,
    /// Records emitted (through every restart).
    pub records: usize,
}

/// Runs `data` like [`coordinator`] and says what happened.
pub fn summarize(data: &[u8]) -> Summary {
    Harness::run(script::Reader::new(data))
}

/// Where the caller's clock starts.
const START: Millis = 1_700_000_000_000;

/// The longest single time step: two hours (long enough for every session, rebalance and
/// retention timer of the short-retention settings, short enough that a step fires a bounded
/// number of periodic offset expiries).
const MAX_SLEEP_MS: u32 = 2 * 3600 * 1000;

/// How many learned member ids are kept.
const MAX_KNOWN_MEMBERS: usize = 16;

/// A request waiting for its response.
struct Pending {
    api: ApiKey,
    version: i16,
    group: String,
}

struct Harness {
    config: GroupConfig,
    coordinator: GroupCoordinator,
    client: ClientInfo,
    now: Millis,
    next_id: RequestId,
    pending: HashMap<RequestId, Pending>,
    /// Requests whose connection a restart closed: they must never be answered.
    lost: BTreeSet<RequestId>,
    /// Every record emitted, one list per step (so no single list grows with the input).
    records: Vec<Vec<Record>>,
    summary: Summary,
    /// Member ids seen in JoinGroup responses, oldest first.
    known_members: Vec<String>,
    /// The last generation each group's JoinGroup responses named.
    generations: BTreeMap<String, i32>,
}

impl Harness {
    fn run(mut reader: script::Reader<'_>) -> Summary {
        let config = config(reader.settings());
        let mut coordinator = GroupCoordinator::new(config.clone());
        coordinator.loaded(START);
        let mut h = Harness {
            config,
            coordinator,
            client: ClientInfo {
                client_id: "fuzz".to_string(),
                client_host: "/127.0.0.1".to_string(),
            },
            now: START,
            next_id: 1,
            pending: HashMap::new(),
            lost: BTreeSet::new(),
            records: Vec::new(),
            summary: Summary::default(),
            known_members: Vec::new(),
            generations: BTreeMap::new(),
        };
        while let Some(op) = reader.op() {
            h.step(op);
        }
        h.check_end();
        h.summary
    }

    fn step(&mut self, op: Op) {
        match op {
            Op::Sleep(ms) => {
                self.now += i64::from(ms % (MAX_SLEEP_MS + 1));
                let out = self.coordinator.expire(self.now);
                self.absorb(out);
            }
            Op::ExpireNext => {
                if let Some(deadline) = self.coordinator.next_deadline() {
                    self.now = self.now.max(deadline);
                }
                let out = self.coordinator.expire(self.now);
                self.absorb(out);
            }
            Op::Rewind(ms) => self.now -= i64::from(ms),
            Op::Restart => self.restart(),
            request => {
                if let Some((api, version, group, request)) = self.request(request) {
                    let id = self.next_id;
                    self.next_id += 1;
                    self.summary.requests += 1;
                    self.pending.insert(
                        id,
                        Pending {
                            api,
                            version,
                            group,
                        },
                    );
                    let out = self
                        .coordinator
                        .handle(self.now, id, version, &self.client, request);
                    self.absorb(out);
                }
            }
        }
    }

    /// A coordinator rebuilt from the records emitted so far, as at start-up.
    fn replayed(&self) -> GroupCoordinator {
        let mut c = GroupCoordinator::new(self.config.clone());
        for record in self.records.iter().flatten() {
            c.replay(record);
        }
        c.loaded(self.now);
        c
    }

    fn restart(&mut self) {
        self.coordinator = self.replayed();
        self.lost.extend(self.pending.drain().map(|(id, _)| id));
    }

    /// Checks one step's output and learns member ids and generations from it.
    fn absorb(&mut self, out: Output) {
        for (id, response) in &out.responses {
            assert!(
                !self.lost.contains(id),
                "request {id} answered after a restart lost it: {response:?}"
            );
            let pending = self
                .pending
                .remove(id)
                .unwrap_or_else(|| panic!("request {id} answered twice or never sent"));
            assert_eq!(
                api_of(response),
                pending.api,
                "request {id} answered by another API: {response:?}"
            );
            if let Err(e) = encode_response(response, pending.version) {
                panic!(
                    "the response to request {id} does not encode at v{}: {e}: {response:?}",
                    pending.version
                );
            }
            self.summary.answered += 1;
            if let GroupResponse::Sync(sync) = response {
                self.summary.successful_syncs += usize::from(sync.error_code == 0);
            }
            if let GroupResponse::Join(join) = response {
                self.summary.successful_joins += usize::from(join.error_code == 0);
                for member in std::iter::once(&join.member_id)
                    .chain(join.members.iter().map(|m| &m.member_id))
                {
                    self.learn_member(member.as_str());
                }
                if join.error_code == 0 {
                    self.generations.insert(pending.group, join.generation_id);
                }
            }
        }
        for record in &out.rebalances {
            assert_ne!(
                record.outcome,
                RebalanceOutcome::InProgress,
                "a step handed out an open rebalance record: {record:?}"
            );
            check_rebalance_record(record);
        }
        if !out.records.is_empty() {
            self.summary.records += out.records.len();
            self.records.push(out.records);
        }
    }

    fn learn_member(&mut self, member: &str) {
        if member.is_empty() || self.known_members.iter().any(|m| m == member) {
            return;
        }
        if self.known_members.len() == MAX_KNOWN_MEMBERS {
            self.known_members.remove(0);
        }
        self.known_members.push(member.to_string());
    }

    fn check_end(&self) {
        let live = self.coordinator.overview();
        for group in &live {
            let history = self
                .coordinator
                .rebalances(&group.group_id)
                .unwrap_or_default();
            for (i, record) in history.iter().enumerate() {
                check_rebalance_record(record);
                if record.outcome == RebalanceOutcome::InProgress {
                    assert_eq!(
                        i + 1,
                        history.len(),
                        "an open rebalance record is not the last of {}: {history:?}",
                        group.group_id
                    );
                }
            }
        }
        let offsets = |overview: &[starling_group::GroupOverview]| {
            overview
                .iter()
                .filter(|g| !g.offsets.is_empty())
                .map(|g| {
                    let mut offsets = g.offsets.clone();
                    offsets.sort();
                    (g.group_id.clone(), offsets)
                })
                .collect::<BTreeMap<_, _>>()
        };
        let replayed = self.replayed().overview();
        assert_eq!(
            offsets(&live),
            offsets(&replayed),
            "committed offsets in memory differ from those the records replay to"
        );
    }

    // ---- building requests -------------------------------------------------------------

    fn group(&self, g: &GroupRef) -> String {
        match g {
            GroupRef::Pool(3) => String::new(),
            GroupRef::Pool(i) => format!("g{}", i % 3),
            GroupRef::Raw(s) => s.clone(),
        }
    }

    fn member(&self, m: &MemberRef) -> String {
        match m {
            MemberRef::Empty => String::new(),
            MemberRef::Known(i) if self.known_members.is_empty() => format!("unknown-{i}"),
            MemberRef::Known(i) => {
                self.known_members[usize::from(*i) % self.known_members.len()].clone()
            }
            MemberRef::Raw(s) => s.clone(),
        }
    }

    fn generation(&self, group: &str, g: &GenerationRef) -> i32 {
        let current = self.generations.get(group).copied().unwrap_or(0);
        match g {
            GenerationRef::Current => current,
            GenerationRef::Previous => current.saturating_sub(1),
            GenerationRef::Minus1 => -1,
            GenerationRef::Raw(n) => *n,
        }
    }

    /// The request an operation sends, as the coordinator would receive it from the wire:
    /// (api, version, group id for bookkeeping, request). `None` if it cannot be encoded at
    /// the chosen version (the harness never builds such a request on purpose).
    fn request(&self, op: Op) -> Option<(ApiKey, i16, String, GroupRequest)> {
        match op {
            Op::Join(j) => {
                let version = version(ApiKey::JoinGroup, j.version);
                let group = self.group(&j.group);
                let mut r = JoinGroupRequest::default();
                r.group_id = GroupId(sb(&group));
                r.member_id = sb(&self.member(&j.member));
                if version >= 5 {
                    r.group_instance_id = instance(&j.instance);
                }
                r.session_timeout_ms = timeout(&j.session);
                r.rebalance_timeout_ms = timeout(&j.rebalance);
                r.protocol_type = sb(label(&j.protocol_type));
                r.protocols = j
                    .protocols
                    .iter()
                    .map(|(name, metadata)| {
                        let mut p = JoinGroupRequestProtocol::default();
                        p.name = sb(label(name));
                        p.metadata = blob(metadata);
                        p
                    })
                    .collect();
                r.reason = j.reason.as_deref().map(sb);
                let r = wire(r, version)?;
                Some((ApiKey::JoinGroup, version, group, GroupRequest::Join(r)))
            }
            Op::Sync(s) => {
                let version = version(ApiKey::SyncGroup, s.version);
                let group = self.group(&s.group);
                let mut r = SyncGroupRequest::default();
                r.group_id = GroupId(sb(&group));
                r.member_id = sb(&self.member(&s.member));
                r.generation_id = self.generation(&group, &s.generation);
                if version >= 3 {
                    r.group_instance_id = instance(&s.instance);
                }
                if let Some((protocol_type, name)) = &s.protocol {
                    r.protocol_type = Some(sb(label(protocol_type)));
                    r.protocol_name = Some(sb(label(name)));
                }
                r.assignments = s
                    .assignments
                    .iter()
                    .map(|(member, assignment)| {
                        let mut a = SyncGroupRequestAssignment::default();
                        a.member_id = sb(&self.member(member));
                        a.assignment = blob(assignment);
                        a
                    })
                    .collect();
                let r = wire(r, version)?;
                Some((ApiKey::SyncGroup, version, group, GroupRequest::Sync(r)))
            }
            Op::Heartbeat {
                version: v,
                group,
                member,
                instance: i,
                generation,
            } => {
                let version = version(ApiKey::Heartbeat, v);
                let group = self.group(&group);
                let mut r = HeartbeatRequest::default();
                r.group_id = GroupId(sb(&group));
                r.member_id = sb(&self.member(&member));
                r.generation_id = self.generation(&group, &generation);
                if version >= 3 {
                    r.group_instance_id = instance(&i);
                }
                let r = wire(r, version)?;
                Some((
                    ApiKey::Heartbeat,
                    version,
                    group,
                    GroupRequest::Heartbeat(r),
                ))
            }
            Op::Leave {
                version: v,
                group,
                members,
            } => {
                let version = version(ApiKey::LeaveGroup, v);
                let group = self.group(&group);
                let mut r = LeaveGroupRequest::default();
                r.group_id = GroupId(sb(&group));
                if version >= 3 {
                    r.members = members
                        .iter()
                        .map(|(member, i, reason)| {
                            let mut m = MemberIdentity::default();
                            m.member_id = sb(&self.member(member));
                            m.group_instance_id = instance(i);
                            m.reason = reason.as_deref().map(sb);
                            m
                        })
                        .collect();
                } else if let Some((member, _, _)) = members.first() {
                    r.member_id = sb(&self.member(member));
                }
                let r = wire(r, version)?;
                Some((ApiKey::LeaveGroup, version, group, GroupRequest::Leave(r)))
            }
            Op::Commit(c) => {
                let version = version(ApiKey::OffsetCommit, c.version);
                let group = self.group(&c.group);
                let mut r = OffsetCommitRequest::default();
                r.group_id = GroupId(sb(&group));
                r.member_id = sb(&self.member(&c.member));
                r.generation_id_or_member_epoch = self.generation(&group, &c.generation);
                if version >= 7 {
                    r.group_instance_id = instance(&c.instance);
                }
                r.retention_time_ms = c.retention.unwrap_or(-1);
                let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
                for o in &c.offsets {
                    let mut p = OffsetCommitRequestPartition::default();
                    p.partition_index = partition(&o.partition);
                    p.committed_offset = match o.offset {
                        Offset::Small(n) => i64::from(n),
                        Offset::Minus1 => -1,
                        Offset::Raw(n) => n,
                    };
                    p.committed_metadata = match &o.metadata {
                        Metadata::Null => None,
                        Metadata::Text(s) => Some(sb(s)),
                        Metadata::Long(n) => Some(sb(&"m".repeat(usize::from(*n)))),
                    };
                    p.committed_leader_epoch = o.leader_epoch;
                    let name = topic(&o.topic);
                    match topics.iter_mut().find(|t| t.name.0.as_str() == name) {
                        Some(t) => t.partitions.push(p),
                        None => {
                            let mut t = OffsetCommitRequestTopic::default();
                            t.name = TopicName(sb(&name));
                            t.partitions.push(p);
                            topics.push(t);
                        }
                    }
                }
                r.topics = topics;
                let r = wire(r, version)?;
                Some((
                    ApiKey::OffsetCommit,
                    version,
                    group,
                    GroupRequest::OffsetCommit(r),
                ))
            }
            Op::Fetch {
                version: v,
                groups,
                require_stable,
            } => {
                let version = version(ApiKey::OffsetFetch, v);
                let mut r = OffsetFetchRequest::default();
                let first_group = groups
                    .first()
                    .map(|(g, _)| self.group(g))
                    .unwrap_or_default();
                if version >= 8 {
                    r.groups = groups
                        .iter()
                        .map(|(g, topics)| {
                            let mut group = OffsetFetchRequestGroup::default();
                            group.group_id = GroupId(sb(&self.group(g)));
                            group.topics = topics.as_ref().map(|topics| {
                                topics
                                    .iter()
                                    .map(|(name, partitions)| {
                                        let mut t = OffsetFetchRequestTopics::default();
                                        t.name = TopicName(sb(&topic(name)));
                                        t.partition_indexes =
                                            partitions.iter().map(partition).collect();
                                        t
                                    })
                                    .collect()
                            });
                            group
                        })
                        .collect();
                } else {
                    r.group_id = GroupId(sb(&first_group));
                    let topics = groups.first().and_then(|(_, topics)| topics.as_ref());
                    // v0–1 cannot ask for all topics: an absent list is an empty one there.
                    let topics = match topics {
                        None if version < 2 => Some(&[][..]),
                        topics => topics.map(Vec::as_slice),
                    };
                    r.topics = topics.map(|topics| {
                        topics
                            .iter()
                            .map(|(name, partitions)| {
                                let mut t = OffsetFetchRequestTopic::default();
                                t.name = TopicName(sb(&topic(name)));
                                t.partition_indexes = partitions.iter().map(partition).collect();
                                t
                            })
                            .collect()
                    });
                }
                r.require_stable = require_stable && version >= 7;
                let r = wire(r, version)?;
                Some((
                    ApiKey::OffsetFetch,
                    version,
                    first_group,
                    GroupRequest::OffsetFetch(r),
                ))
            }
            Op::Describe { version: v, groups } => {
                let version = version(ApiKey::DescribeGroups, v);
                let mut r = DescribeGroupsRequest::default();
                r.groups = groups.iter().map(|g| GroupId(sb(&self.group(g)))).collect();
                let r = wire(r, version)?;
                Some((
                    ApiKey::DescribeGroups,
                    version,
                    String::new(),
                    GroupRequest::DescribeGroups(r),
                ))
            }
            Op::List {
                version: v,
                states,
                types,
            } => {
                let version = version(ApiKey::ListGroups, v);
                let mut r = ListGroupsRequest::default();
                if version >= 4 {
                    r.states_filter = states.iter().map(|l| sb(label(l))).collect();
                }
                if version >= 5 {
                    r.types_filter = types.iter().map(|l| sb(label(l))).collect();
                }
                let r = wire(r, version)?;
                Some((
                    ApiKey::ListGroups,
                    version,
                    String::new(),
                    GroupRequest::ListGroups(r),
                ))
            }
            Op::DeleteGroups { version: v, groups } => {
                let version = version(ApiKey::DeleteGroups, v);
                let mut r = DeleteGroupsRequest::default();
                r.groups_names = groups.iter().map(|g| GroupId(sb(&self.group(g)))).collect();
                let r = wire(r, version)?;
                Some((
                    ApiKey::DeleteGroups,
                    version,
                    String::new(),
                    GroupRequest::DeleteGroups(r),
                ))
            }
            Op::OffsetDelete {
                version: v,
                group,
                topics,
            } => {
                let version = version(ApiKey::OffsetDelete, v);
                let group = self.group(&group);
                let mut r = OffsetDeleteRequest::default();
                r.group_id = GroupId(sb(&group));
                r.topics = topics
                    .iter()
                    .map(|(name, partitions)| {
                        let mut t = OffsetDeleteRequestTopic::default();
                        t.name = TopicName(sb(&topic(name)));
                        t.partitions = partitions
                            .iter()
                            .map(|p| {
                                let mut x = OffsetDeleteRequestPartition::default();
                                x.partition_index = partition(p);
                                x
                            })
                            .collect();
                        t
                    })
                    .collect();
                let r = wire(r, version)?;
                Some((
                    ApiKey::OffsetDelete,
                    version,
                    group,
                    GroupRequest::OffsetDelete(r),
                ))
            }
            Op::Sleep(_) | Op::ExpireNext | Op::Restart | Op::Rewind(_) => None,
        }
    }
}

/// The coordinator's configuration for a script.
fn config(settings: Settings) -> GroupConfig {
    let mut config = GroupConfig {
        initial_rebalance_delay_ms: 0,
        rebalance_history: 2,
        ..GroupConfig::default()
    };
    if settings.initial_delay {
        config.initial_rebalance_delay_ms = 3000;
    }
    if settings.small_groups {
        config.max_size = 2;
    }
    if settings.short_retention {
        config.offsets_retention_ms = 60_000;
        config.offsets_retention_check_interval_ms = 10_000;
    }
    config
}

/// The served version at `index` modulo the API's range.
fn version(api: ApiKey, index: u8) -> i16 {
    let range =
        starling_protocol::versions::supported(api).expect("the coordinator's APIs are served");
    let width = (range.max - range.min + 1) as u16;
    range.min + (u16::from(index) % width) as i16
}

/// Encodes a request at `version` and decodes it back: what the broker would hand over.
fn wire<T: Encodable + Decodable>(request: T, version: i16) -> Option<T> {
    let mut buf = BytesMut::new();
    request.encode(&mut buf, version).ok()?;
    let mut bytes = buf.freeze();
    T::decode(&mut bytes, version).ok()
}

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn instance(i: &InstanceRef) -> Option<StrBytes> {
    match i {
        InstanceRef::None => None,
        InstanceRef::Pool(n) => Some(sb(&format!("i{}", n % 3))),
        InstanceRef::Raw(s) => Some(sb(s)),
    }
}

fn timeout(t: &Timeout) -> i32 {
    match t {
        Timeout::Pool(i) => TIMEOUTS[usize::from(*i) % TIMEOUTS.len()],
        Timeout::Raw(n) => *n,
    }
}

fn label(l: &Label) -> &str {
    match l {
        Label::Pool(i) => LABELS[usize::from(*i) % LABELS.len()],
        Label::Raw(s) => s,
    }
}

fn topic(t: &TopicRef) -> String {
    match t {
        TopicRef::Pool(i) => TOPICS[usize::from(*i) % TOPICS.len()].to_string(),
        TopicRef::Raw(s) => s.clone(),
    }
}

fn partition(p: &Partition) -> i32 {
    match p {
        Partition::Small(n) => i32::from(*n),
        Partition::Raw(n) => *n,
    }
}

/// The pool topics whose bits are set in `mask`.
fn pool_topics(mask: u8) -> Vec<&'static str> {
    TOPICS
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, t)| *t)
        .collect()
}

/// Protocol metadata or an assignment, with the i16 version prefix clients write.
pub fn blob(b: &Blob) -> Bytes {
    match b {
        Blob::Empty => Bytes::new(),
        Blob::Subscription { version, topics } => {
            let version = i16::from(version % 4);
            let mut s = ConsumerProtocolSubscription::default();
            s.topics = pool_topics(*topics).into_iter().map(sb).collect();
            let mut buf = BytesMut::new();
            buf.extend_from_slice(&version.to_be_bytes());
            s.encode(&mut buf, version)
                .expect("a subscription encodes at versions 0-3");
            buf.freeze()
        }
        Blob::Assignment {
            version,
            topics,
            partitions,
        } => {
            let version = i16::from(version % 4);
            let mut a = ConsumerProtocolAssignment::default();
            a.assigned_partitions = pool_topics(*topics)
                .into_iter()
                .map(|name| {
                    let mut t = AssignedTopic::default();
                    t.topic = TopicName(sb(name));
                    t.partitions = (0..8).filter(|p| partitions & (1 << p) != 0).collect();
                    t
                })
                .collect();
            let mut buf = BytesMut::new();
            buf.extend_from_slice(&version.to_be_bytes());
            a.encode(&mut buf, version)
                .expect("an assignment encodes at versions 0-3");
            buf.freeze()
        }
        Blob::Raw(bytes) => Bytes::copy_from_slice(bytes),
    }
}

fn api_of(response: &GroupResponse) -> ApiKey {
    response.api_key()
}

fn encode_response(response: &GroupResponse, version: i16) -> Result<(), String> {
    response.encode_body(&mut BytesMut::new(), version)
}

/// One rebalance record's own invariants (from the coordinator's property tests).
fn check_rebalance_record(record: &RebalanceRecord) {
    let open = record.outcome == RebalanceOutcome::InProgress;
    assert_eq!(open, record.ended_ms.is_none(), "{record:?}");
    if let Some(joined) = record.join_completed_ms {
        assert!(record.started_ms <= joined, "{record:?}");
    }
    if let Some(ended) = record.ended_ms {
        assert!(record.started_ms <= ended, "{record:?}");
        assert!(
            record
                .join_completed_ms
                .is_none_or(|joined| joined <= ended),
            "{record:?}"
        );
    }
    if record.assignment.is_some() {
        assert_eq!(record.outcome, RebalanceOutcome::Stable, "{record:?}");
    }
}
