//! Tests: a harness with simulated time (`Ctx`), request builders and response accessors,
//! then one file per area, each test named by the behaviour it pins down. Every response the
//! harness sees is also encoded at the version of its request, so every test doubles as an
//! encoding check.

use std::collections::{BTreeMap, HashMap};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_subscription::ConsumerProtocolSubscription;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DescribeGroupsRequest, DescribeGroupsResponse, HeartbeatRequest,
    JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest,
    ListGroupsResponse, OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest,
    OffsetDeleteResponse, OffsetFetchRequest, OffsetFetchResponse, SyncGroupRequest,
    SyncGroupResponse,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::ResponseError;

use crate::{
    ClientInfo, GroupConfig, GroupCoordinator, GroupRequest, GroupResponse, GroupState, GroupValue,
    Millis, OffsetValue, RebalanceRecord, Record, RequestId,
};

mod admin_tests;
mod classic_support;
mod clock_tests;
mod consumer_history_tests;
mod consumer_property_tests;
mod consumer_support;
mod consumer_tests;
mod cooperative_tests;
mod encode_tests;
mod expiry_tests;
mod handover_tests;
mod heartbeat_tests;
mod history_tests;
mod initial_delay_tests;
mod join_tests;
mod leave_tests;
mod migration_property_tests;
mod migration_tests;
mod offset_commit_tests;
mod offset_delete_tests;
mod offset_fetch_tests;
mod property_tests;
mod replay_tests;
mod static_tests;
mod sync_tests;
mod timer_tests;
mod txn_offset_tests;
mod unit_tests;

pub(crate) const G: &str = "group";
pub(crate) const SESSION: i32 = 10_000;
pub(crate) const REBALANCE: i32 = 30_000;

pub(crate) fn sb(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

pub(crate) fn code(error: ResponseError) -> i16 {
    error.code()
}

/// A consumer subscription as the Java client encodes it (version prefix, then the struct).
pub(crate) fn subscription(topics: &[&str]) -> Bytes {
    let mut value = ConsumerProtocolSubscription::default();
    value.topics = topics.iter().map(|t| sb(t)).collect();
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&3i16.to_be_bytes());
    value.encode(&mut buf, 3).unwrap();
    buf.freeze()
}

/// Encodes a response at `version`.
pub(crate) fn encode(response: &GroupResponse, version: i16) -> Result<Bytes, String> {
    let mut buf = BytesMut::new();
    response.encode_body(&mut buf, version)?;
    Ok(buf.freeze())
}

/// Whether a response is of the kind a request expects.
fn same_api(request: &GroupRequest, response: &GroupResponse) -> bool {
    matches!(
        (request, response),
        (GroupRequest::Join(_), GroupResponse::Join(_))
            | (GroupRequest::Sync(_), GroupResponse::Sync(_))
            | (GroupRequest::Heartbeat(_), GroupResponse::Heartbeat(_))
            | (GroupRequest::Leave(_), GroupResponse::Leave(_))
            | (
                GroupRequest::OffsetCommit(_),
                GroupResponse::OffsetCommit(_)
            )
            | (GroupRequest::OffsetFetch(_), GroupResponse::OffsetFetch(_))
            | (
                GroupRequest::DescribeGroups(_),
                GroupResponse::DescribeGroups(_)
            )
            | (GroupRequest::ListGroups(_), GroupResponse::ListGroups(_))
            | (
                GroupRequest::DeleteGroups(_),
                GroupResponse::DeleteGroups(_)
            )
            | (
                GroupRequest::OffsetDelete(_),
                GroupResponse::OffsetDelete(_)
            )
            | (
                GroupRequest::ConsumerGroupHeartbeat(_),
                GroupResponse::ConsumerGroupHeartbeat(_)
            )
            | (
                GroupRequest::ConsumerGroupDescribe(_),
                GroupResponse::ConsumerGroupDescribe(_)
            )
            | (
                GroupRequest::TxnOffsetCommit(_),
                GroupResponse::TxnOffsetCommit(_)
            )
            | (GroupRequest::TxnEnd { .. }, GroupResponse::TxnEnd(_))
    )
}

/// A JoinGroup in the making.
#[derive(Clone)]
pub(crate) struct Join {
    pub group: String,
    pub member: String,
    pub instance: Option<String>,
    pub session: i32,
    pub rebalance: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    pub version: i16,
    /// KIP-800 reason (sent at v8+).
    pub reason: Option<String>,
}

impl Join {
    pub fn new(member: &str) -> Join {
        Join {
            group: G.to_string(),
            member: member.to_string(),
            instance: None,
            session: SESSION,
            rebalance: REBALANCE,
            protocol_type: "consumer".to_string(),
            protocols: vec![("range".to_string(), subscription(&["topic"]))],
            version: 9,
            reason: None,
        }
    }
    pub fn reason(mut self, reason: &str) -> Self {
        self.reason = Some(reason.to_string());
        self
    }
    pub fn group(mut self, group: &str) -> Self {
        self.group = group.to_string();
        self
    }
    pub fn instance(mut self, instance: &str) -> Self {
        self.instance = Some(instance.to_string());
        self
    }
    pub fn version(mut self, version: i16) -> Self {
        self.version = version;
        self
    }
    pub fn session(mut self, session: i32) -> Self {
        self.session = session;
        self
    }
    pub fn rebalance(mut self, rebalance: i32) -> Self {
        self.rebalance = rebalance;
        self
    }
    pub fn protocol_type(mut self, protocol_type: &str) -> Self {
        self.protocol_type = protocol_type.to_string();
        self
    }
    pub fn protocols(mut self, protocols: &[(&str, Bytes)]) -> Self {
        self.protocols = protocols
            .iter()
            .map(|(n, m)| (n.to_string(), m.clone()))
            .collect();
        self
    }
    pub fn topics(self, topics: &[&str]) -> Self {
        self.protocols(&[("range", subscription(topics))])
    }
    pub fn request(&self) -> GroupRequest {
        let mut r = JoinGroupRequest::default();
        r.group_id = sb(&self.group).into();
        r.member_id = sb(&self.member);
        r.group_instance_id = self.instance.as_deref().map(sb);
        r.session_timeout_ms = self.session;
        r.rebalance_timeout_ms = self.rebalance;
        r.protocol_type = sb(&self.protocol_type);
        r.reason = self.reason.as_deref().map(sb);
        r.protocols = self
            .protocols
            .iter()
            .map(|(name, metadata)| {
                let mut p = JoinGroupRequestProtocol::default();
                p.name = sb(name);
                p.metadata = metadata.clone();
                p
            })
            .collect();
        GroupRequest::Join(r)
    }
}

/// A SyncGroup in the making.
pub(crate) struct Sync {
    pub group: String,
    pub member: String,
    pub instance: Option<String>,
    pub generation: i32,
    pub assignments: Vec<(String, Bytes)>,
    pub protocol: Option<(String, String)>,
    pub version: i16,
}

impl Sync {
    pub fn new(member: &str, generation: i32) -> Sync {
        Sync {
            group: G.to_string(),
            member: member.to_string(),
            instance: None,
            generation,
            assignments: Vec::new(),
            protocol: None,
            version: 5,
        }
    }
    pub fn group(mut self, group: &str) -> Self {
        self.group = group.to_string();
        self
    }
    pub fn instance(mut self, instance: &str) -> Self {
        self.instance = Some(instance.to_string());
        self
    }
    pub fn assign(mut self, member: &str, assignment: &[u8]) -> Self {
        self.assignments
            .push((member.to_string(), Bytes::copy_from_slice(assignment)));
        self
    }
    pub fn protocol(mut self, protocol_type: &str, name: &str) -> Self {
        self.protocol = Some((protocol_type.to_string(), name.to_string()));
        self
    }
    pub fn version(mut self, version: i16) -> Self {
        self.version = version;
        self
    }
    pub fn request(&self) -> GroupRequest {
        let mut r = SyncGroupRequest::default();
        r.group_id = sb(&self.group).into();
        r.member_id = sb(&self.member);
        r.group_instance_id = self.instance.as_deref().map(sb);
        r.generation_id = self.generation;
        if let Some((protocol_type, name)) = &self.protocol {
            r.protocol_type = Some(sb(protocol_type));
            r.protocol_name = Some(sb(name));
        }
        r.assignments = self
            .assignments
            .iter()
            .map(|(member, assignment)| {
                let mut a = SyncGroupRequestAssignment::default();
                a.member_id = sb(member);
                a.assignment = assignment.clone();
                a
            })
            .collect();
        GroupRequest::Sync(r)
    }
}

pub(crate) fn heartbeat_request(
    group: &str,
    member: &str,
    generation: i32,
    instance: Option<&str>,
) -> GroupRequest {
    let mut r = HeartbeatRequest::default();
    r.group_id = sb(group).into();
    r.member_id = sb(member);
    r.generation_id = generation;
    r.group_instance_id = instance.map(sb);
    GroupRequest::Heartbeat(r)
}

pub(crate) fn leave_request(
    group: &str,
    members: &[(&str, Option<&str>)],
    version: i16,
) -> GroupRequest {
    let members: Vec<(&str, Option<&str>, Option<&str>)> = members
        .iter()
        .map(|(member, instance)| (*member, *instance, None))
        .collect();
    leave_request_with_reasons(group, &members, version)
}

/// A LeaveGroup whose members (member id, instance id, KIP-800 reason) say why they leave.
pub(crate) fn leave_request_with_reasons(
    group: &str,
    members: &[(&str, Option<&str>, Option<&str>)],
    version: i16,
) -> GroupRequest {
    let mut r = LeaveGroupRequest::default();
    r.group_id = sb(group).into();
    if version >= 3 {
        r.members = members
            .iter()
            .map(|(member, instance, reason)| {
                let mut m = MemberIdentity::default();
                m.member_id = sb(member);
                m.group_instance_id = instance.map(sb);
                m.reason = reason.map(sb);
                m
            })
            .collect();
    } else {
        r.member_id = sb(members[0].0);
    }
    GroupRequest::Leave(r)
}

/// An OffsetCommit in the making.
pub(crate) struct Commit {
    pub group: String,
    pub member: String,
    pub instance: Option<String>,
    pub generation: i32,
    pub retention: i64,
    pub offsets: Vec<(String, i32, i64, Option<String>, i32)>,
    pub version: i16,
}

impl Commit {
    /// A commit from a member of a generation.
    pub fn member(member: &str, generation: i32) -> Commit {
        Commit {
            group: G.to_string(),
            member: member.to_string(),
            instance: None,
            generation,
            retention: -1,
            offsets: Vec::new(),
            version: 8,
        }
    }
    /// A commit from a consumer outside group management (generation -1, no member id).
    pub fn simple() -> Commit {
        Commit::member("", -1)
    }
    pub fn group(mut self, group: &str) -> Self {
        self.group = group.to_string();
        self
    }
    pub fn instance(mut self, instance: &str) -> Self {
        self.instance = Some(instance.to_string());
        self
    }
    pub fn offset(mut self, topic: &str, partition: i32, offset: i64) -> Self {
        self.offsets.push((
            topic.to_string(),
            partition,
            offset,
            Some(String::new()),
            -1,
        ));
        self
    }
    pub fn offset_with(
        mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        metadata: Option<&str>,
        epoch: i32,
    ) -> Self {
        self.offsets.push((
            topic.to_string(),
            partition,
            offset,
            metadata.map(str::to_string),
            epoch,
        ));
        self
    }
    pub fn retention(mut self, retention: i64) -> Self {
        self.retention = retention;
        self
    }
    pub fn version(mut self, version: i16) -> Self {
        self.version = version;
        self
    }
    pub fn request(&self) -> GroupRequest {
        let mut r = OffsetCommitRequest::default();
        r.group_id = sb(&self.group).into();
        r.member_id = sb(&self.member);
        r.group_instance_id = self.instance.as_deref().map(sb);
        r.generation_id_or_member_epoch = self.generation;
        r.retention_time_ms = self.retention;
        let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
        for (topic, partition, offset, metadata, epoch) in &self.offsets {
            let mut p = OffsetCommitRequestPartition::default();
            p.partition_index = *partition;
            p.committed_offset = *offset;
            p.committed_metadata = metadata.as_deref().map(sb);
            p.committed_leader_epoch = *epoch;
            match topics.iter_mut().find(|t| t.name.as_str() == topic) {
                Some(t) => t.partitions.push(p),
                None => {
                    let mut t = OffsetCommitRequestTopic::default();
                    t.name = sb(topic).into();
                    t.partitions.push(p);
                    topics.push(t);
                }
            }
        }
        r.topics = topics;
        GroupRequest::OffsetCommit(r)
    }
}

/// OffsetFetch for one group: `None` topics means all (v2+).
pub(crate) fn fetch_request(
    group: &str,
    topics: Option<&[(&str, &[i32])]>,
    version: i16,
) -> GroupRequest {
    let mut r = OffsetFetchRequest::default();
    if version >= 8 {
        let mut g = OffsetFetchRequestGroup::default();
        g.group_id = sb(group).into();
        g.topics = topics.map(|topics| {
            topics
                .iter()
                .map(|(name, partitions)| {
                    let mut t = OffsetFetchRequestTopics::default();
                    t.name = sb(name).into();
                    t.partition_indexes = partitions.to_vec();
                    t
                })
                .collect()
        });
        r.groups = vec![g];
    } else {
        r.group_id = sb(group).into();
        r.topics = topics.map(|topics| {
            topics
                .iter()
                .map(|(name, partitions)| {
                    let mut t = OffsetFetchRequestTopic::default();
                    t.name = sb(name).into();
                    t.partition_indexes = partitions.to_vec();
                    t
                })
                .collect()
        });
    }
    GroupRequest::OffsetFetch(r)
}

pub(crate) fn describe_request(groups: &[&str]) -> GroupRequest {
    let mut r = DescribeGroupsRequest::default();
    r.groups = groups.iter().map(|g| sb(g).into()).collect();
    GroupRequest::DescribeGroups(r)
}

pub(crate) fn list_request(states: &[&str], types: &[&str]) -> GroupRequest {
    let mut r = ListGroupsRequest::default();
    r.states_filter = states.iter().map(|s| sb(s)).collect();
    r.types_filter = types.iter().map(|s| sb(s)).collect();
    GroupRequest::ListGroups(r)
}

pub(crate) fn delete_groups_request(groups: &[&str]) -> GroupRequest {
    let mut r = DeleteGroupsRequest::default();
    r.groups_names = groups.iter().map(|g| sb(g).into()).collect();
    GroupRequest::DeleteGroups(r)
}

pub(crate) fn offset_delete_request(group: &str, topics: &[(&str, &[i32])]) -> GroupRequest {
    use kafka_protocol::messages::offset_delete_request::{
        OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
    };
    let mut r = OffsetDeleteRequest::default();
    r.group_id = sb(group).into();
    r.topics = topics
        .iter()
        .map(|(name, partitions)| {
            let mut t = OffsetDeleteRequestTopic::default();
            t.name = sb(name).into();
            t.partitions = partitions
                .iter()
                .map(|p| {
                    let mut x = OffsetDeleteRequestPartition::default();
                    x.partition_index = *p;
                    x
                })
                .collect();
            t
        })
        .collect();
    GroupRequest::OffsetDelete(r)
}

/// A coordinator driven by simulated time.
pub(crate) struct Ctx {
    pub c: GroupCoordinator,
    pub now: Millis,
    /// How far the simulated wall clock is from `now` (the monotonic clock); 0 unless a test
    /// makes the wall clock jump.
    pub wall_offset: Millis,
    pub client: ClientInfo,
    next_id: RequestId,
    /// Every response, by request id.
    pub responses: BTreeMap<RequestId, GroupResponse>,
    /// Every record emitted, in order.
    pub records: Vec<Record>,
    /// The records of the last step.
    pub last_records: Vec<Record>,
    /// The request ids answered by the last step, in order.
    pub last_answered: Vec<RequestId>,
    /// Every rebalance record closed so far, in order.
    pub rebalances: Vec<RebalanceRecord>,
    /// The rebalance records the last step closed.
    pub last_rebalances: Vec<RebalanceRecord>,
    requests: HashMap<RequestId, (GroupRequest, i16)>,
}

impl Ctx {
    /// A coordinator without initial rebalance delay, loaded at time 1000.
    pub fn new() -> Ctx {
        Ctx::with_config(GroupConfig {
            initial_rebalance_delay_ms: 0,
            ..GroupConfig::default()
        })
    }

    pub fn with_config(config: GroupConfig) -> Ctx {
        let mut c = GroupCoordinator::new(config);
        c.loaded(1000);
        Ctx::around(c, 1000)
    }

    pub fn around(c: GroupCoordinator, now: Millis) -> Ctx {
        Ctx {
            c,
            now,
            wall_offset: 0,
            client: ClientInfo {
                client_id: "client".to_string(),
                client_host: "/10.0.0.1".to_string(),
            },
            next_id: 1,
            responses: BTreeMap::new(),
            records: Vec::new(),
            last_records: Vec::new(),
            last_answered: Vec::new(),
            rebalances: Vec::new(),
            last_rebalances: Vec::new(),
            requests: HashMap::new(),
        }
    }

    /// Takes in the records of an output that answers nothing (a topics change).
    pub fn absorb_records(&mut self, out: crate::Output) {
        self.absorb(out);
    }

    fn absorb(&mut self, out: crate::Output) {
        self.last_records = out.records.clone();
        self.records.extend(out.records);
        self.last_rebalances = out.rebalances.clone();
        self.rebalances.extend(out.rebalances);
        self.last_answered.clear();
        for (id, response) in out.responses {
            let (request, version) = self
                .requests
                .get(&id)
                .unwrap_or_else(|| panic!("response to unknown request {id}"));
            assert!(
                same_api(request, &response),
                "request {id} answered with the wrong kind: {response:?}"
            );
            if let Err(e) = encode(&response, *version) {
                panic!("response to request {id} does not encode at v{version}: {e}: {response:?}");
            }
            assert!(
                self.responses.insert(id, response).is_none(),
                "request {id} answered twice"
            );
            self.last_answered.push(id);
        }
    }

    /// Sends a request at `version`; returns its id.
    pub fn send(&mut self, version: i16, request: GroupRequest) -> RequestId {
        let id = self.next_id;
        self.next_id += 1;
        self.requests.insert(id, (request.clone(), version));
        let client = self.client.clone();
        let out = self.c.handle(self.clocks(), id, version, &client, request);
        self.absorb(out);
        id
    }

    /// Advances time by `ms` and fires what is due; returns the ids answered.
    pub fn sleep(&mut self, ms: i64) -> Vec<RequestId> {
        self.now += ms;
        let out = self.c.expire(self.clocks());
        self.absorb(out);
        self.last_answered.clone()
    }

    /// The simulated clocks as the coordinator reads them.
    pub fn clocks(&self) -> crate::Now {
        crate::Now {
            monotonic: self.now,
            wall: self.wall(),
        }
    }

    /// The simulated wall clock.
    pub fn wall(&self) -> Millis {
        self.now + self.wall_offset
    }

    /// Makes the wall clock jump by `ms` (back if negative); the monotonic clock does not move.
    pub fn jump_wall_clock(&mut self, ms: i64) {
        self.wall_offset += ms;
    }

    /// Fires timers due now (zero-delay timers).
    pub fn tick(&mut self) -> Vec<RequestId> {
        self.sleep(0)
    }

    pub fn answered(&self, id: RequestId) -> bool {
        self.responses.contains_key(&id)
    }

    pub fn unanswered(&self) -> Vec<RequestId> {
        self.requests
            .keys()
            .filter(|id| !self.responses.contains_key(id))
            .copied()
            .collect()
    }

    pub fn join(&mut self, join: &Join) -> RequestId {
        self.send(join.version, join.request())
    }

    pub fn sync(&mut self, sync: &Sync) -> RequestId {
        self.send(sync.version, sync.request())
    }

    pub fn heartbeat(&mut self, member: &str, generation: i32) -> i16 {
        let id = self.send(4, heartbeat_request(G, member, generation, None));
        self.heartbeat_error(id)
    }

    pub fn heartbeat_static(&mut self, member: &str, instance: &str, generation: i32) -> i16 {
        let id = self.send(4, heartbeat_request(G, member, generation, Some(instance)));
        self.heartbeat_error(id)
    }

    pub fn commit(&mut self, commit: &Commit) -> RequestId {
        self.send(commit.version, commit.request())
    }

    pub fn join_response(&self, id: RequestId) -> &JoinGroupResponse {
        match self.responses.get(&id) {
            Some(GroupResponse::Join(r)) => r,
            other => panic!("request {id}: expected a JoinGroup response, got {other:?}"),
        }
    }

    pub fn sync_response(&self, id: RequestId) -> &SyncGroupResponse {
        match self.responses.get(&id) {
            Some(GroupResponse::Sync(r)) => r,
            other => panic!("request {id}: expected a SyncGroup response, got {other:?}"),
        }
    }

    pub fn heartbeat_error(&self, id: RequestId) -> i16 {
        match self.responses.get(&id) {
            Some(GroupResponse::Heartbeat(r)) => r.error_code,
            other => panic!("request {id}: expected a Heartbeat response, got {other:?}"),
        }
    }

    pub fn leave_response(&self, id: RequestId) -> &LeaveGroupResponse {
        match self.responses.get(&id) {
            Some(GroupResponse::Leave(r)) => r,
            other => panic!("request {id}: expected a LeaveGroup response, got {other:?}"),
        }
    }

    pub fn commit_response(&self, id: RequestId) -> &OffsetCommitResponse {
        match self.responses.get(&id) {
            Some(GroupResponse::OffsetCommit(r)) => r,
            other => panic!("request {id}: expected an OffsetCommit response, got {other:?}"),
        }
    }

    /// Every partition error of an OffsetCommit response.
    pub fn commit_errors(&self, id: RequestId) -> Vec<i16> {
        self.commit_response(id)
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
            .collect()
    }

    pub fn fetch_response(&self, id: RequestId) -> &OffsetFetchResponse {
        match self.responses.get(&id) {
            Some(GroupResponse::OffsetFetch(r)) => r,
            other => panic!("request {id}: expected an OffsetFetch response, got {other:?}"),
        }
    }

    pub fn describe_response(&self, id: RequestId) -> &DescribeGroupsResponse {
        match self.responses.get(&id) {
            Some(GroupResponse::DescribeGroups(r)) => r,
            other => panic!("request {id}: expected a DescribeGroups response, got {other:?}"),
        }
    }

    pub fn list_response(&self, id: RequestId) -> &ListGroupsResponse {
        match self.responses.get(&id) {
            Some(GroupResponse::ListGroups(r)) => r,
            other => panic!("request {id}: expected a ListGroups response, got {other:?}"),
        }
    }

    pub fn offset_delete_response(&self, id: RequestId) -> &OffsetDeleteResponse {
        match self.responses.get(&id) {
            Some(GroupResponse::OffsetDelete(r)) => r,
            other => panic!("request {id}: expected an OffsetDelete response, got {other:?}"),
        }
    }

    /// A dynamic member joins (v9: MEMBER_ID_REQUIRED, then the rejoin, which is held);
    /// returns (member id, held request id).
    pub fn join_new(&mut self, join: Join) -> (String, RequestId) {
        let first = self.join(&join);
        let r = self.join_response(first);
        assert_eq!(r.error_code, code(ResponseError::MemberIdRequired));
        let member = r.member_id.to_string();
        let id = self.join(&Join {
            member: member.clone(),
            ..join
        });
        (member, id)
    }

    /// One dynamic member forms a Stable group; returns its member id (generation 1).
    pub fn single_member_group(&mut self) -> String {
        self.stable_group(1).remove(0)
    }

    /// `n` dynamic members form a Stable group of generation 1; returns their ids, leader
    /// first. Each member's assignment is `b"a-<index>"`.
    pub fn stable_group(&mut self, n: usize) -> Vec<String> {
        let mut members = Vec::new();
        let mut ids = Vec::new();
        for _ in 0..n {
            let (member, id) = self.join_new(Join::new(""));
            members.push(member);
            ids.push(id);
        }
        self.tick();
        let generation = self.join_response(ids[0]).generation_id;
        let leader = self.join_response(ids[0]).leader.to_string();
        assert_eq!(leader, members[0]);
        let mut sync = Sync::new(&leader, generation);
        for (i, m) in members.iter().enumerate() {
            sync = sync.assign(m, format!("a-{i}").as_bytes());
        }
        let mut sync_ids = Vec::new();
        for m in members.iter().skip(1) {
            sync_ids.push(self.sync(&Sync::new(m, generation)));
        }
        let leader_sync = self.sync(&sync);
        assert_eq!(self.sync_response(leader_sync).error_code, 0);
        for id in sync_ids {
            assert_eq!(self.sync_response(id).error_code, 0);
        }
        assert_eq!(self.state(), Some(GroupState::Stable));
        members
    }

    pub fn state(&self) -> Option<GroupState> {
        self.c.group_state(G)
    }

    pub fn generation(&self) -> i32 {
        self.c.group_generation(G).unwrap_or(-1)
    }

    pub fn members(&self) -> Vec<String> {
        self.c
            .groups
            .get(G)
            .map(|g| g.ordered_member_ids())
            .unwrap_or_default()
    }

    pub fn leader(&self) -> Option<String> {
        self.c.groups.get(G).and_then(|g| g.leader.clone())
    }

    pub fn offset(&self, group: &str, topic: &str, partition: i32) -> Option<OffsetValue> {
        self.c
            .groups
            .get(group)
            .and_then(|g| g.offsets.get(&(topic.to_string(), partition)).cloned())
    }

    pub fn group_records(&self) -> Vec<&GroupValue> {
        self.records
            .iter()
            .filter_map(|r| match r {
                Record::Group {
                    group_id,
                    value: Some(v),
                } if group_id == G => Some(v),
                _ => None,
            })
            .collect()
    }

    /// The group's rebalance history (closed records, then the open one).
    pub fn history(&self) -> Vec<RebalanceRecord> {
        self.c.rebalances(G).unwrap_or_default()
    }

    pub fn timer(&self, key: &str) -> Option<Millis> {
        self.c
            .timers()
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, d)| d)
    }
}

/// The durable state of a coordinator: per group, its last group record and its offsets.
/// Offsets by (topic, partition).
pub(crate) type Offsets = BTreeMap<(String, i32), OffsetValue>;

/// Each group's record, committed offsets and pending transactional offsets.
pub(crate) type Durable = BTreeMap<String, (Option<GroupValue>, Offsets, BTreeMap<i64, Offsets>)>;

pub(crate) fn durable(c: &GroupCoordinator) -> Durable {
    c.groups
        .iter()
        .map(|(id, g)| {
            let value = (
                g.persisted.clone(),
                g.offsets.clone(),
                g.pending_offsets.clone(),
            );
            (id.clone(), value)
        })
        .collect()
}

/// A fresh coordinator that replayed `records`.
pub(crate) fn replayed(records: &[Record], config: GroupConfig, now: Millis) -> GroupCoordinator {
    let mut c = GroupCoordinator::new(config);
    for record in records {
        c.replay(record);
    }
    c.loaded(now);
    c
}
