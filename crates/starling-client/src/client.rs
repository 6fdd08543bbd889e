//! [`Client`]: typed admin operations over a bootstrap connection plus connections opened on
//! demand to partition leaders and group coordinators.
//!
//! Every request is built for the version negotiated with the broker it goes to: fields a
//! version lacks are left at their defaults (the `kafka-protocol` encoder refuses anything
//! else), and version-specific request shapes (FindCoordinator v4+ batches keys, OffsetFetch v8+
//! nests groups) are handled here.

use std::collections::{BTreeMap, HashMap};
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::find_coordinator_response::FindCoordinatorResponse;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::{
    ApiKey, BrokerId, DeleteGroupsRequest, DescribeGroupsRequest, FindCoordinatorRequest, GroupId,
    ListGroupsRequest, ListOffsetsRequest, MetadataRequest, OffsetCommitRequest,
    OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::connection::{Connection, Options};
use crate::consumer_protocol;
use crate::error::{Error, Result};
use crate::TopicPartition;

/// Version ranges this client implements, per API.
mod ours {
    use std::ops::RangeInclusive;

    pub const METADATA: RangeInclusive<i16> = 1..=12;
    pub const LIST_OFFSETS: RangeInclusive<i16> = 1..=10;
    pub const FIND_COORDINATOR: RangeInclusive<i16> = 0..=6;
    pub const LIST_GROUPS: RangeInclusive<i16> = 0..=5;
    pub const DESCRIBE_GROUPS: RangeInclusive<i16> = 0..=6;
    pub const DELETE_GROUPS: RangeInclusive<i16> = 0..=2;
    /// v1 cannot ask for "all topics" (null topics arrived in v2).
    pub const OFFSET_FETCH: RangeInclusive<i16> = 2..=9;
    pub const OFFSET_COMMIT: RangeInclusive<i16> = 2..=9;
}

/// What a FindCoordinator key names (its `KeyType`, v1+).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum CoordinatorKey {
    Group,
    Transaction,
}

impl CoordinatorKey {
    fn wire(self) -> i8 {
        match self {
            CoordinatorKey::Group => 0,
            CoordinatorKey::Transaction => 1,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            CoordinatorKey::Group => "group",
            CoordinatorKey::Transaction => "transactional id",
        }
    }
}

/// Errors after which the coordinator should be looked up again and the call retried.
pub(crate) fn coordinator_retriable(error: ResponseError) -> bool {
    matches!(
        error,
        ResponseError::CoordinatorNotAvailable
            | ResponseError::CoordinatorLoadInProgress
            | ResponseError::NotCoordinator
    )
}

pub(crate) fn err(code: i16) -> Option<ResponseError> {
    ResponseError::try_from_code(code)
}

/// `Ok` for error code 0; otherwise the error, described by `context` and the broker's
/// message when it sent one.
pub(crate) fn check(
    code: i16,
    message: Option<&str>,
    context: impl FnOnce() -> String,
) -> Result<()> {
    let Some(e) = err(code) else {
        return Ok(());
    };
    let mut context = context();
    if let Some(m) = message.filter(|m| !m.is_empty()) {
        context.push_str(&format!(" ({m})"));
    }
    Err(Error::kafka(context, e))
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn group_id(s: &str) -> GroupId {
    GroupId(str_bytes(s))
}

fn topic_name(s: &str) -> TopicName {
    TopicName(str_bytes(s))
}

/// A broker as announced in Metadata or FindCoordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
}

impl Broker {
    /// `host:port` (`[v6addr]:port` for IPv6 literals).
    pub fn addr(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// A Metadata response, reduced to what the tools need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub brokers: Vec<Broker>,
    pub topics: Vec<TopicMetadata>,
}

impl Metadata {
    pub fn topic(&self, name: &str) -> Option<&TopicMetadata> {
        self.topics.iter().find(|t| t.name == name)
    }

    pub fn broker(&self, node_id: i32) -> Option<&Broker> {
        self.brokers.iter().find(|b| b.node_id == node_id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    pub name: String,
    /// E.g. UNKNOWN_TOPIC_OR_PARTITION for a topic asked for by name that does not exist.
    pub error: Option<ResponseError>,
    pub is_internal: bool,
    /// Sorted by partition index.
    pub partitions: Vec<PartitionMetadata>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMetadata {
    pub partition: i32,
    /// Node id of the leader, -1 if none.
    pub leader: i32,
    pub error: Option<ResponseError>,
}

/// Which offset ListOffsets should return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The log end offset (high watermark).
    Latest,
    /// The first offset whose record timestamp is at or after this time (ms since the epoch).
    Timestamp(i64),
}

impl OffsetSpec {
    fn wire_timestamp(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::Timestamp(ms) => ms,
        }
    }
}

/// One partition's ListOffsets answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedOffset {
    /// -1 when a timestamp lookup found no record at or after the timestamp.
    pub offset: i64,
    pub timestamp: i64,
}

/// A group as listed by ListGroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedGroup {
    pub group_id: String,
    pub protocol_type: String,
    /// Only reported by ListGroups v4+.
    pub state: Option<String>,
}

/// A group as described by DescribeGroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub group_id: String,
    /// The coordinator that answered.
    pub coordinator: Broker,
    /// Per-group error (GROUP_ID_NOT_FOUND from DescribeGroups v6+ for a missing group).
    pub error: Option<ResponseError>,
    /// `Empty`, `PreparingRebalance`, `CompletingRebalance`, `Stable` or `Dead`.
    pub state: String,
    pub protocol_type: String,
    /// The chosen assignor (for consumer groups), empty while there is none.
    pub protocol: String,
    pub members: Vec<MemberDescription>,
}

impl GroupDescription {
    /// True if the group is unknown to its coordinator: Dead, or reported as not found.
    pub fn is_missing(&self) -> bool {
        self.error == Some(ResponseError::GroupIdNotFound) || self.state == "Dead"
    }

    /// True if the group uses the consumer protocol (or has no protocol type yet).
    pub fn is_consumer_group(&self) -> bool {
        self.protocol_type == consumer_protocol::CONSUMER_PROTOCOL_TYPE
            || self.protocol_type.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Protocol metadata (for consumers: the subscription), verbatim.
    pub metadata: Bytes,
    /// The assignment from the last SyncGroup (for consumers: the partitions), verbatim.
    pub assignment: Bytes,
}

impl MemberDescription {
    /// The partitions in the member's consumer-protocol assignment.
    pub fn assigned_partitions(&self) -> Result<Vec<TopicPartition>> {
        consumer_protocol::assigned_partitions(&self.assignment)
    }

    /// The topics in the member's consumer-protocol subscription.
    pub fn subscribed_topics(&self) -> Result<Vec<String>> {
        consumer_protocol::subscribed_topics(&self.metadata)
    }
}

/// A committed offset from OffsetFetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    /// -1 if unknown.
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

/// A bootstrap connection plus on-demand connections to other brokers.
#[derive(Debug)]
pub struct Client {
    options: Options,
    /// `conns[0]` is the bootstrap connection; the others are keyed by their address.
    conns: Vec<Connection>,
    /// (key type, group or transactional id) -> coordinator, from FindCoordinator.
    coordinators: HashMap<(CoordinatorKey, String), Broker>,
}

impl Client {
    /// Connects to the bootstrap broker (`host:port`), or to the first that answers of a
    /// comma-separated list.
    pub async fn connect(bootstrap: &str, options: Options) -> Result<Client> {
        let mut conn = Err(Error::Invalid("no bootstrap address given".to_string()));
        // `bootstrap.servers` style: the first address of the list that answers.
        for addr in bootstrap
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
        {
            conn = Connection::connect(addr, &options).await;
            // A refused login will not be different on the next broker.
            if matches!(conn, Ok(_) | Err(Error::Authentication { .. })) {
                break;
            }
        }
        let conn = conn?;
        Ok(Client {
            options,
            conns: vec![conn],
            coordinators: HashMap::new(),
        })
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The bootstrap address, as given.
    pub fn bootstrap(&self) -> &str {
        self.conns[0].addr()
    }

    /// The bootstrap connection.
    pub fn bootstrap_connection(&mut self) -> &mut Connection {
        &mut self.conns[0]
    }

    /// A connection to `addr`, reusing an open one (including the bootstrap connection) and
    /// replacing one that a failed call left unusable.
    pub async fn connection_to(&mut self, addr: &str) -> Result<&mut Connection> {
        match self.conns.iter().position(|c| c.addr() == addr) {
            Some(i) if !self.conns[i].is_broken() => Ok(&mut self.conns[i]),
            Some(i) => {
                self.conns[i] = Connection::connect(addr, &self.options).await?;
                Ok(&mut self.conns[i])
            }
            None => {
                let conn = Connection::connect(addr, &self.options).await?;
                self.conns.push(conn);
                Ok(self.conns.last_mut().expect("just pushed"))
            }
        }
    }

    pub(crate) async fn bootstrap_conn(&mut self) -> Result<&mut Connection> {
        let addr = self.conns[0].addr().to_string();
        self.connection_to(&addr).await
    }

    /// Metadata for `topics` (`None`: every topic), from the bootstrap broker. Never creates
    /// topics.
    pub async fn metadata(&mut self, topics: Option<&[&str]>) -> Result<Metadata> {
        let conn = self.bootstrap_conn().await?;
        let version = conn.version_for(ApiKey::Metadata, ours::METADATA)?;
        let mut request = MetadataRequest::default().with_topics(topics.map(|ts| {
            ts.iter()
                .map(|t| MetadataRequestTopic::default().with_name(Some(topic_name(t))))
                .collect()
        }));
        if version >= 4 {
            request.allow_auto_topic_creation = false;
        }
        let response = conn.send(version, &request).await?;
        if version >= 13 {
            if let Some(e) = err(response.error_code) {
                return Err(Error::kafka(format!("Metadata v{version}"), e));
            }
        }
        let brokers = response
            .brokers
            .iter()
            .map(|b| Broker {
                node_id: b.node_id.0,
                host: b.host.as_str().to_string(),
                port: b.port,
            })
            .collect();
        let topics = response
            .topics
            .iter()
            .map(|t| {
                let mut partitions: Vec<PartitionMetadata> = t
                    .partitions
                    .iter()
                    .map(|p| PartitionMetadata {
                        partition: p.partition_index,
                        leader: p.leader_id.0,
                        error: err(p.error_code),
                    })
                    .collect();
                partitions.sort_by_key(|p| p.partition);
                TopicMetadata {
                    name: t
                        .name
                        .as_ref()
                        .map(|n| n.0.as_str().to_string())
                        .unwrap_or_default(),
                    error: err(t.error_code),
                    is_internal: t.is_internal,
                    partitions,
                }
            })
            .collect();
        Ok(Metadata { brokers, topics })
    }

    /// ListOffsets for each partition, sent to its leader. Per-partition failures (unknown
    /// partition, no leader, an error code from the broker) are reported per partition.
    pub async fn list_offsets(
        &mut self,
        partitions: &[TopicPartition],
        spec: OffsetSpec,
    ) -> Result<BTreeMap<TopicPartition, Result<ListedOffset, ResponseError>>> {
        let mut out = BTreeMap::new();
        if partitions.is_empty() {
            return Ok(out);
        }
        // leader address -> partitions
        let mut by_leader: BTreeMap<String, Vec<TopicPartition>> = BTreeMap::new();
        for (tp, located) in self.leaders(partitions).await? {
            match located {
                Ok(addr) => by_leader.entry(addr).or_default().push(tp),
                Err(e) => {
                    out.insert(tp, Err(e));
                }
            }
        }

        let timeout_ms = self
            .options
            .request_timeout
            .as_millis()
            .min(i32::MAX as u128) as i32;
        for (addr, tps) in by_leader {
            let conn = self.connection_to(&addr).await?;
            let version = conn.version_for(ApiKey::ListOffsets, ours::LIST_OFFSETS)?;
            let mut grouped: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
            for tp in &tps {
                grouped.entry(&tp.topic).or_default().push(tp.partition);
            }
            let mut request = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(
                    grouped
                        .iter()
                        .map(|(topic, ps)| {
                            ListOffsetsTopic::default()
                                .with_name(topic_name(topic))
                                .with_partitions(
                                    ps.iter()
                                        .map(|&p| {
                                            ListOffsetsPartition::default()
                                                .with_partition_index(p)
                                                .with_timestamp(spec.wire_timestamp())
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                );
            if version >= 10 {
                request.timeout_ms = timeout_ms;
            }
            let response = conn.send(version, &request).await?;
            for t in &response.topics {
                for p in &t.partitions {
                    let tp = TopicPartition::new(t.name.0.as_str(), p.partition_index);
                    if !tps.contains(&tp) {
                        continue;
                    }
                    let result = match err(p.error_code) {
                        Some(e) => Err(e),
                        None => Ok(ListedOffset {
                            offset: p.offset,
                            timestamp: p.timestamp,
                        }),
                    };
                    out.insert(tp, result);
                }
            }
            for tp in tps {
                if !out.contains_key(&tp) {
                    return Err(Error::Protocol(format!(
                        "ListOffsets v{version} from {addr}: no answer for {tp}"
                    )));
                }
            }
        }
        Ok(out)
    }

    /// The coordinator of `group`, asked of the bootstrap broker (cached; retried while the
    /// broker reports the coordinator as loading or unavailable, up to the request timeout).
    pub async fn coordinator_of(&mut self, group: &str) -> Result<Broker> {
        self.coordinator_for(CoordinatorKey::Group, group).await
    }

    /// The coordinator of the group or transactional id `key`, as [`Client::coordinator_of`].
    pub(crate) async fn coordinator_for(
        &mut self,
        kind: CoordinatorKey,
        key: &str,
    ) -> Result<Broker> {
        let cache_key = (kind, key.to_string());
        if let Some(b) = self.coordinators.get(&cache_key) {
            return Ok(b.clone());
        }
        let deadline = Instant::now() + self.options.request_timeout;
        let mut backoff = Duration::from_millis(50);
        loop {
            let conn = self.bootstrap_conn().await?;
            let version = conn.version_for(ApiKey::FindCoordinator, ours::FIND_COORDINATOR)?;
            if version == 0 && kind != CoordinatorKey::Group {
                return Err(Error::Invalid(format!(
                    "broker {} speaks FindCoordinator v0 only, which finds group coordinators \
                     only",
                    conn.addr()
                )));
            }
            let mut request = FindCoordinatorRequest::default();
            if version >= 4 {
                request.coordinator_keys = vec![str_bytes(key)];
            } else {
                request.key = str_bytes(key);
            }
            if version >= 1 {
                request.key_type = kind.wire();
            }
            let response = conn.send(version, &request).await?;
            let found = parse_coordinator(version, &response, key);
            match found {
                Ok(broker) => {
                    self.coordinators.insert(cache_key, broker.clone());
                    return Ok(broker);
                }
                Err((e, _)) if coordinator_retriable(e) && Instant::now() + backoff < deadline => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
                Err((e, message)) => {
                    let mut context =
                        format!("FindCoordinator v{version} for {} '{key}'", kind.noun());
                    if let Some(m) = message {
                        context.push_str(&format!(" ({m})"));
                    }
                    return Err(Error::kafka(context, e));
                }
            }
        }
    }

    /// A connection to the coordinator of `group` (the bootstrap connection when the
    /// coordinator is the bootstrap address).
    pub async fn find_coordinator(&mut self, group: &str) -> Result<&mut Connection> {
        let broker = self.coordinator_of(group).await?;
        self.connection_to(&broker.addr()).await
    }

    /// Connection and negotiated version for a call to `group`'s coordinator.
    pub(crate) async fn coordinator_call(
        &mut self,
        group: &str,
        api: ApiKey,
        ours: RangeInclusive<i16>,
    ) -> Result<(Broker, i16)> {
        let broker = self.coordinator_of(group).await?;
        let conn = self.connection_to(&broker.addr()).await?;
        let version = conn.version_for(api, ours)?;
        Ok((broker, version))
    }

    /// Forgets the cached coordinator and waits a little before the caller retries.
    pub(crate) async fn coordinator_moved(&mut self, group: &str, attempt: u32) {
        self.coordinator_moved_for(CoordinatorKey::Group, group, attempt)
            .await
    }

    /// [`Client::coordinator_moved`] for a group or a transactional id.
    pub(crate) async fn coordinator_moved_for(
        &mut self,
        kind: CoordinatorKey,
        key: &str,
        attempt: u32,
    ) {
        self.coordinators.remove(&(kind, key.to_string()));
        let ms = (50u64 << attempt.min(5)).min(1000);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    /// Describes each group at its coordinator.
    pub async fn describe_groups(&mut self, groups: &[&str]) -> Result<Vec<GroupDescription>> {
        let mut out = Vec::with_capacity(groups.len());
        for group in groups {
            out.push(self.describe_group(group).await?);
        }
        Ok(out)
    }

    /// Describes one group at its coordinator.
    pub async fn describe_group(&mut self, group: &str) -> Result<GroupDescription> {
        let deadline = Instant::now() + self.options.request_timeout;
        let mut attempt = 0;
        loop {
            let (coordinator, version) = self
                .coordinator_call(group, ApiKey::DescribeGroups, ours::DESCRIBE_GROUPS)
                .await?;
            let request = DescribeGroupsRequest::default().with_groups(vec![group_id(group)]);
            let conn = self.connection_to(&coordinator.addr()).await?;
            let response = conn.send(version, &request).await?;
            let described = response
                .groups
                .into_iter()
                .find(|g| g.group_id.0.as_str() == group)
                .ok_or_else(|| {
                    Error::Protocol(format!(
                        "DescribeGroups v{version}: no entry for group '{group}' in the response"
                    ))
                })?;
            let error = err(described.error_code);
            if let Some(e) = error {
                if coordinator_retriable(e) && Instant::now() < deadline {
                    self.coordinator_moved(group, attempt).await;
                    attempt += 1;
                    continue;
                }
                if e != ResponseError::GroupIdNotFound {
                    let mut context = format!("DescribeGroups v{version} for group '{group}'");
                    if let Some(m) = &described.error_message {
                        context.push_str(&format!(" ({m})"));
                    }
                    return Err(Error::kafka(context, e));
                }
            }
            return Ok(GroupDescription {
                group_id: group.to_string(),
                coordinator,
                error,
                state: described.group_state.as_str().to_string(),
                protocol_type: described.protocol_type.as_str().to_string(),
                protocol: described.protocol_data.as_str().to_string(),
                members: described
                    .members
                    .into_iter()
                    .map(|m| MemberDescription {
                        member_id: m.member_id.as_str().to_string(),
                        group_instance_id: m.group_instance_id.map(|s| s.as_str().to_string()),
                        client_id: m.client_id.as_str().to_string(),
                        client_host: m.client_host.as_str().to_string(),
                        metadata: m.member_metadata,
                        assignment: m.member_assignment,
                    })
                    .collect(),
            });
        }
    }

    /// Lists the groups of every broker in the cluster (ListGroups is answered per coordinator),
    /// optionally only those in `states` (needs ListGroups v4+ on every broker).
    pub async fn list_groups(&mut self, states: &[&str]) -> Result<Vec<ListedGroup>> {
        let metadata = self.metadata(Some(&[])).await?;
        let mut addrs: Vec<String> = metadata.brokers.iter().map(Broker::addr).collect();
        if addrs.is_empty() {
            addrs.push(self.bootstrap().to_string());
        }
        let mut groups: BTreeMap<String, ListedGroup> = BTreeMap::new();
        for addr in addrs {
            let conn = self.connection_to(&addr).await?;
            let version = conn.version_for(ApiKey::ListGroups, ours::LIST_GROUPS)?;
            let mut request = ListGroupsRequest::default();
            if !states.is_empty() {
                if version < 4 {
                    return Err(Error::Invalid(format!(
                        "broker {addr} speaks ListGroups up to v{version}; filtering by state needs v4+"
                    )));
                }
                request.states_filter = states.iter().map(|s| str_bytes(s)).collect();
            }
            let response = conn.send(version, &request).await?;
            if let Some(e) = err(response.error_code) {
                return Err(Error::kafka(format!("ListGroups v{version} to {addr}"), e));
            }
            for g in response.groups {
                let id = g.group_id.0.as_str().to_string();
                groups.insert(
                    id.clone(),
                    ListedGroup {
                        group_id: id,
                        protocol_type: g.protocol_type.as_str().to_string(),
                        state: (version >= 4).then(|| g.group_state.as_str().to_string()),
                    },
                );
            }
        }
        Ok(groups.into_values().collect())
    }

    /// Deletes each group at its coordinator; returns each group's error, if any.
    pub async fn delete_groups(
        &mut self,
        groups: &[&str],
    ) -> Result<Vec<(String, Option<ResponseError>)>> {
        let mut out = Vec::with_capacity(groups.len());
        for group in groups {
            let deadline = Instant::now() + self.options.request_timeout;
            let mut attempt = 0;
            let result = loop {
                let (coordinator, version) = self
                    .coordinator_call(group, ApiKey::DeleteGroups, ours::DELETE_GROUPS)
                    .await?;
                let request =
                    DeleteGroupsRequest::default().with_groups_names(vec![group_id(group)]);
                let conn = self.connection_to(&coordinator.addr()).await?;
                let response = conn.send(version, &request).await?;
                let result = response
                    .results
                    .iter()
                    .find(|r| r.group_id.0.as_str() == *group)
                    .ok_or_else(|| {
                        Error::Protocol(format!(
                            "DeleteGroups v{version}: no result for group '{group}' in the response"
                        ))
                    })?;
                match err(result.error_code) {
                    Some(e) if coordinator_retriable(e) && Instant::now() < deadline => {
                        self.coordinator_moved(group, attempt).await;
                        attempt += 1;
                    }
                    other => break other,
                }
            };
            out.push((group.to_string(), result));
        }
        Ok(out)
    }

    /// The committed offsets of `group` for all topics. Partitions without a committed offset
    /// are left out.
    pub async fn offset_fetch(
        &mut self,
        group: &str,
    ) -> Result<BTreeMap<TopicPartition, CommittedOffset>> {
        let deadline = Instant::now() + self.options.request_timeout;
        let mut attempt = 0;
        'retry: loop {
            let (coordinator, version) = self
                .coordinator_call(group, ApiKey::OffsetFetch, ours::OFFSET_FETCH)
                .await?;
            let mut request = OffsetFetchRequest::default();
            if version >= 8 {
                request.groups = vec![OffsetFetchRequestGroup::default()
                    .with_group_id(group_id(group))
                    .with_topics(None)];
            } else {
                request.group_id = group_id(group);
                request.topics = None;
            }
            let conn = self.connection_to(&coordinator.addr()).await?;
            let response = conn.send(version, &request).await?;
            let context = format!("OffsetFetch v{version} for group '{group}'");

            // (group error, [(topic, partition, offset, epoch, metadata, error)])
            type Row = (String, i32, i64, i32, Option<String>, i16);
            let (group_error, rows): (i16, Vec<Row>) = if version >= 8 {
                let g = response
                    .groups
                    .into_iter()
                    .find(|g| g.group_id.0.as_str() == group)
                    .ok_or_else(|| {
                        Error::Protocol(format!(
                            "{context}: no entry for the group in the response"
                        ))
                    })?;
                let rows = g
                    .topics
                    .into_iter()
                    .flat_map(|t| {
                        let name = t.name.0.as_str().to_string();
                        t.partitions.into_iter().map(move |p| {
                            (
                                name.clone(),
                                p.partition_index,
                                p.committed_offset,
                                p.committed_leader_epoch,
                                p.metadata.map(|m| m.as_str().to_string()),
                                p.error_code,
                            )
                        })
                    })
                    .collect();
                (g.error_code, rows)
            } else {
                let rows = response
                    .topics
                    .into_iter()
                    .flat_map(|t| {
                        let name = t.name.0.as_str().to_string();
                        t.partitions.into_iter().map(move |p| {
                            (
                                name.clone(),
                                p.partition_index,
                                p.committed_offset,
                                p.committed_leader_epoch,
                                p.metadata.map(|m| m.as_str().to_string()),
                                p.error_code,
                            )
                        })
                    })
                    .collect();
                (response.error_code, rows)
            };

            let mut errors = err(group_error).into_iter().chain(
                rows.iter()
                    .filter_map(|r| err(r.5))
                    .filter(|e| coordinator_retriable(*e)),
            );
            if let Some(e) = errors.next() {
                if coordinator_retriable(e) && Instant::now() < deadline {
                    self.coordinator_moved(group, attempt).await;
                    attempt += 1;
                    continue 'retry;
                }
                return Err(Error::kafka(context, e));
            }
            let mut out = BTreeMap::new();
            for (topic, partition, offset, leader_epoch, metadata, code) in rows {
                if let Some(e) = err(code) {
                    return Err(Error::kafka(
                        format!("{context}, partition {topic}-{partition}"),
                        e,
                    ));
                }
                if offset < 0 {
                    continue;
                }
                out.insert(
                    TopicPartition::new(topic, partition),
                    CommittedOffset {
                        offset,
                        leader_epoch,
                        metadata,
                    },
                );
            }
            return Ok(out);
        }
    }

    /// Commits `offsets` for `group` as a simple (non-member) consumer: generation -1 and an
    /// empty member id, which a coordinator accepts only while the group has no members (how
    /// `kafka-consumer-groups.sh --reset-offsets` commits). Returns each partition's error, if
    /// any.
    pub async fn offset_commit(
        &mut self,
        group: &str,
        offsets: &[(TopicPartition, i64)],
    ) -> Result<BTreeMap<TopicPartition, Option<ResponseError>>> {
        let mut by_topic: BTreeMap<&str, Vec<(i32, i64)>> = BTreeMap::new();
        for (tp, offset) in offsets {
            by_topic
                .entry(&tp.topic)
                .or_default()
                .push((tp.partition, *offset));
        }
        let deadline = Instant::now() + self.options.request_timeout;
        let mut attempt = 0;
        loop {
            let (coordinator, version) = self
                .coordinator_call(group, ApiKey::OffsetCommit, ours::OFFSET_COMMIT)
                .await?;
            // generation_id_or_member_epoch (-1), member_id ("") and retention_time_ms (-1)
            // stay at their defaults.
            let request = OffsetCommitRequest::default()
                .with_group_id(group_id(group))
                .with_topics(
                    by_topic
                        .iter()
                        .map(|(topic, parts)| {
                            OffsetCommitRequestTopic::default()
                                .with_name(topic_name(topic))
                                .with_partitions(
                                    parts
                                        .iter()
                                        .map(|&(p, o)| {
                                            OffsetCommitRequestPartition::default()
                                                .with_partition_index(p)
                                                .with_committed_offset(o)
                                                .with_committed_metadata(Some(str_bytes("")))
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                );
            let conn = self.connection_to(&coordinator.addr()).await?;
            let response = conn.send(version, &request).await?;
            let mut out = BTreeMap::new();
            for t in &response.topics {
                for p in &t.partitions {
                    out.insert(
                        TopicPartition::new(t.name.0.as_str(), p.partition_index),
                        err(p.error_code),
                    );
                }
            }
            if out.values().flatten().any(|e| coordinator_retriable(*e))
                && Instant::now() < deadline
            {
                self.coordinator_moved(group, attempt).await;
                attempt += 1;
                continue;
            }
            for (tp, _) in offsets {
                if !out.contains_key(tp) {
                    return Err(Error::Protocol(format!(
                        "OffsetCommit v{version} for group '{group}': no result for {tp}"
                    )));
                }
            }
            return Ok(out);
        }
    }
}

/// The coordinator in a FindCoordinator response, or its error code and message.
fn parse_coordinator(
    version: i16,
    response: &FindCoordinatorResponse,
    key: &str,
) -> std::result::Result<Broker, (ResponseError, Option<String>)> {
    let (code, message, node_id, host, port) = if version >= 4 {
        match response
            .coordinators
            .iter()
            .find(|c| c.key.as_str() == key)
            .or(response.coordinators.first())
        {
            Some(c) => (
                c.error_code,
                c.error_message.as_ref().map(|m| m.to_string()),
                c.node_id.0,
                c.host.as_str(),
                c.port,
            ),
            None => {
                return Err((
                    ResponseError::CoordinatorNotAvailable,
                    Some("empty coordinator list".to_string()),
                ))
            }
        }
    } else {
        (
            response.error_code,
            response.error_message.as_ref().map(|m| m.to_string()),
            response.node_id.0,
            response.host.as_str(),
            response.port,
        )
    };
    if let Some(e) = err(code) {
        return Err((e, message));
    }
    Ok(Broker {
        node_id,
        host: host.to_string(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, OnceLock};

    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
    use kafka_protocol::messages::describe_groups_response::{
        DescribedGroup, DescribedGroupMember,
    };
    use kafka_protocol::messages::find_coordinator_response::Coordinator;
    use kafka_protocol::messages::list_offsets_response::{
        ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
    };
    use kafka_protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };
    use kafka_protocol::messages::offset_commit_response::{
        OffsetCommitResponsePartition, OffsetCommitResponseTopic,
    };
    use kafka_protocol::messages::offset_fetch_response::{
        OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
        OffsetFetchResponseTopic, OffsetFetchResponseTopics,
    };
    use kafka_protocol::messages::{
        ConsumerProtocolAssignment, DescribeGroupsResponse, FindCoordinatorResponse,
        ListOffsetsResponse, MetadataResponse, OffsetCommitResponse, OffsetFetchResponse,
    };

    use super::*;
    use crate::fake_broker::{api_versions, decode_body, respond, FakeBroker, Seen};

    fn opts() -> Options {
        Options {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            ..Options::default()
        }
    }

    fn host_port(addr: &str) -> (String, i32) {
        let (h, p) = addr.rsplit_once(':').unwrap();
        (h.to_string(), p.parse().unwrap())
    }

    fn all_group_apis() -> Vec<(ApiKey, i16, i16)> {
        vec![
            (ApiKey::ApiVersions, 0, 3),
            (ApiKey::Metadata, 0, 12),
            (ApiKey::ListOffsets, 1, 8),
            (ApiKey::FindCoordinator, 0, 6),
            (ApiKey::DescribeGroups, 0, 5),
            (ApiKey::OffsetFetch, 1, 9),
            (ApiKey::OffsetCommit, 2, 9),
        ]
    }

    /// A broker that names `coordinator()` as every group's coordinator and answers the
    /// group APIs with fixed data.
    fn group_broker(coordinator: Arc<OnceLock<String>>) -> Arc<crate::fake_broker::Handler> {
        group_broker_with(coordinator, all_group_apis())
    }

    /// Like [`group_broker`], announcing only `apis`.
    fn group_broker_with(
        coordinator: Arc<OnceLock<String>>,
        apis: Vec<(ApiKey, i16, i16)>,
    ) -> Arc<crate::fake_broker::Handler> {
        Arc::new(move |s: &Seen| {
            let api = ApiKey::try_from(s.header.request_api_key).unwrap();
            let v = s.header.request_api_version;
            match api {
                ApiKey::ApiVersions => Some(respond(s, &api_versions(&apis))),
                ApiKey::FindCoordinator => {
                    let (host, port) = host_port(coordinator.get().unwrap());
                    let mut r = FindCoordinatorResponse::default();
                    if v >= 4 {
                        r.coordinators = vec![Coordinator::default()
                            .with_key(StrBytes::from_static_str("g"))
                            .with_node_id(BrokerId(7))
                            .with_host(StrBytes::from_string(host))
                            .with_port(port)];
                    } else {
                        r.node_id = BrokerId(7);
                        r.host = StrBytes::from_string(host);
                        r.port = port;
                    }
                    Some(respond(s, &r))
                }
                ApiKey::DescribeGroups => {
                    let assignment = crate::consumer_protocol::encode_assignment(
                        1,
                        &ConsumerProtocolAssignment::default().with_assigned_partitions(vec![
                            AssignedTopic::default()
                                .with_topic(topic_name("t"))
                                .with_partitions(vec![1, 0]),
                        ]),
                    )
                    .unwrap();
                    let r = DescribeGroupsResponse::default().with_groups(vec![
                        DescribedGroup::default()
                            .with_group_id(group_id("g"))
                            .with_group_state(str_bytes("Stable"))
                            .with_protocol_type(str_bytes("consumer"))
                            .with_protocol_data(str_bytes("range"))
                            .with_members(vec![DescribedGroupMember::default()
                                .with_member_id(str_bytes("m-1"))
                                .with_client_id(str_bytes("c"))
                                .with_client_host(str_bytes("/127.0.0.1"))
                                .with_member_assignment(assignment)]),
                    ]);
                    Some(respond(s, &r))
                }
                ApiKey::OffsetFetch if v >= 8 => {
                    let req: OffsetFetchRequest = decode_body(s);
                    assert_eq!(req.groups.len(), 1);
                    assert_eq!(req.groups[0].topics, None, "all topics");
                    let r = OffsetFetchResponse::default().with_groups(vec![
                        OffsetFetchResponseGroup::default()
                            .with_group_id(group_id("g"))
                            .with_topics(vec![OffsetFetchResponseTopics::default()
                                .with_name(topic_name("t"))
                                .with_partitions(vec![
                                    OffsetFetchResponsePartitions::default()
                                        .with_partition_index(0)
                                        .with_committed_offset(5),
                                    OffsetFetchResponsePartitions::default()
                                        .with_partition_index(1)
                                        .with_committed_offset(-1),
                                ])]),
                    ]);
                    Some(respond(s, &r))
                }
                ApiKey::OffsetFetch => {
                    let req: OffsetFetchRequest = decode_body(s);
                    assert_eq!(req.group_id.0.as_str(), "g");
                    assert_eq!(req.topics, None, "all topics");
                    let r = OffsetFetchResponse::default().with_topics(vec![
                        OffsetFetchResponseTopic::default()
                            .with_name(topic_name("t"))
                            .with_partitions(vec![
                                OffsetFetchResponsePartition::default()
                                    .with_partition_index(0)
                                    .with_committed_offset(5),
                                OffsetFetchResponsePartition::default()
                                    .with_partition_index(1)
                                    .with_committed_offset(-1),
                            ]),
                    ]);
                    Some(respond(s, &r))
                }
                ApiKey::OffsetCommit => {
                    let req: OffsetCommitRequest = decode_body(s);
                    let r = OffsetCommitResponse::default().with_topics(
                        req.topics
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
                                            })
                                            .collect(),
                                    )
                            })
                            .collect(),
                    );
                    Some(respond(s, &r))
                }
                ApiKey::Metadata => {
                    let (host, port) = host_port(coordinator.get().unwrap());
                    let r = MetadataResponse::default()
                        .with_brokers(vec![MetadataResponseBroker::default()
                            .with_node_id(BrokerId(7))
                            .with_host(StrBytes::from_string(host))
                            .with_port(port)])
                        .with_topics(vec![MetadataResponseTopic::default()
                            .with_name(Some(topic_name("t")))
                            .with_partitions(
                                (0..2)
                                    .map(|p| {
                                        MetadataResponsePartition::default()
                                            .with_partition_index(p)
                                            .with_leader_id(BrokerId(7))
                                    })
                                    .collect(),
                            )]);
                    Some(respond(s, &r))
                }
                ApiKey::ListOffsets => {
                    let req: ListOffsetsRequest = decode_body(s);
                    assert_eq!(req.replica_id, BrokerId(-1));
                    let r = ListOffsetsResponse::default().with_topics(
                        req.topics
                            .iter()
                            .map(|t| {
                                ListOffsetsTopicResponse::default()
                                    .with_name(t.name.clone())
                                    .with_partitions(
                                        t.partitions
                                            .iter()
                                            .map(|p| {
                                                ListOffsetsPartitionResponse::default()
                                                    .with_partition_index(p.partition_index)
                                                    .with_offset(100 + p.partition_index as i64)
                                                    .with_timestamp(p.timestamp)
                                            })
                                            .collect(),
                                    )
                            })
                            .collect(),
                    );
                    Some(respond(s, &r))
                }
                _ => None,
            }
        })
    }

    #[tokio::test]
    async fn a_coordinator_at_the_bootstrap_address_reuses_the_bootstrap_connection() {
        let me = Arc::new(OnceLock::new());
        let fake = FakeBroker::start(group_broker(me.clone())).await;
        me.set(fake.addr.clone()).unwrap();

        let mut client = Client::connect(&fake.addr, opts()).await.unwrap();
        let conn = client.find_coordinator("g").await.unwrap();
        assert_eq!(conn.addr(), fake.addr);
        let d = client.describe_group("g").await.unwrap();
        assert_eq!(d.coordinator.node_id, 7);
        assert_eq!(d.state, "Stable");
        assert_eq!(d.protocol, "range");
        assert_eq!(
            d.members[0].assigned_partitions().unwrap(),
            vec![TopicPartition::new("t", 0), TopicPartition::new("t", 1)]
        );
        assert_eq!(
            fake.connections(),
            1,
            "no second connection to the same broker"
        );
        let find: Vec<Seen> = fake
            .seen()
            .into_iter()
            .filter(|s| s.header.request_api_key == ApiKey::FindCoordinator as i16)
            .collect();
        assert_eq!(find.len(), 1, "the coordinator is cached");
        assert_eq!(find[0].header.request_api_version, 6);
        let req: FindCoordinatorRequest = decode_body(&find[0]);
        assert_eq!(req.coordinator_keys, vec![str_bytes("g")]);
        assert_eq!(req.key_type, 0);
    }

    #[tokio::test]
    async fn group_calls_go_to_a_coordinator_elsewhere_over_its_own_connection() {
        let coordinator_addr = Arc::new(OnceLock::new());
        let coordinator = FakeBroker::start(group_broker(coordinator_addr.clone())).await;
        coordinator_addr.set(coordinator.addr.clone()).unwrap();
        let bootstrap = FakeBroker::start(group_broker(coordinator_addr.clone())).await;

        let mut client = Client::connect(&bootstrap.addr, opts()).await.unwrap();
        let committed = client.offset_fetch("g").await.unwrap();
        assert_eq!(
            committed.keys().cloned().collect::<Vec<_>>(),
            vec![TopicPartition::new("t", 0)],
            "partitions without a commit (-1) are left out"
        );
        assert_eq!(committed[&TopicPartition::new("t", 0)].offset, 5);

        let results = client
            .offset_commit("g", &[(TopicPartition::new("t", 1), 9)])
            .await
            .unwrap();
        assert_eq!(results[&TopicPartition::new("t", 1)], None);

        assert_eq!(bootstrap.connections(), 1);
        assert_eq!(coordinator.connections(), 1);
        let at_coordinator: Vec<i16> = coordinator
            .seen()
            .iter()
            .map(|s| s.header.request_api_key)
            .collect();
        assert_eq!(
            at_coordinator,
            vec![
                ApiKey::ApiVersions as i16,
                ApiKey::OffsetFetch as i16,
                ApiKey::OffsetCommit as i16
            ]
        );
        let commit = coordinator
            .seen()
            .into_iter()
            .find(|s| s.header.request_api_key == ApiKey::OffsetCommit as i16)
            .unwrap();
        assert_eq!(commit.header.request_api_version, 9);
        let req: OffsetCommitRequest = decode_body(&commit);
        assert_eq!(req.group_id.0.as_str(), "g");
        assert_eq!(req.generation_id_or_member_epoch, -1);
        assert_eq!(req.member_id.as_str(), "");
        assert_eq!(req.topics[0].partitions[0].committed_offset, 9);
    }

    #[tokio::test]
    async fn list_offsets_asks_the_partition_leader() {
        let leader_addr = Arc::new(OnceLock::new());
        let leader = FakeBroker::start(group_broker(leader_addr.clone())).await;
        leader_addr.set(leader.addr.clone()).unwrap();
        let bootstrap = FakeBroker::start(group_broker(leader_addr.clone())).await;

        let mut client = Client::connect(&bootstrap.addr, opts()).await.unwrap();
        let got = client
            .list_offsets(
                &[
                    TopicPartition::new("t", 1),
                    TopicPartition::new("t", 5),
                    TopicPartition::new("nope", 0),
                ],
                OffsetSpec::Timestamp(1234),
            )
            .await
            .unwrap();
        assert_eq!(
            got[&TopicPartition::new("t", 1)],
            Ok(ListedOffset {
                offset: 101,
                timestamp: 1234
            })
        );
        assert_eq!(
            got[&TopicPartition::new("t", 5)],
            Err(ResponseError::UnknownTopicOrPartition)
        );
        assert_eq!(
            got[&TopicPartition::new("nope", 0)],
            Err(ResponseError::UnknownTopicOrPartition)
        );
        assert!(leader
            .seen()
            .iter()
            .any(|s| s.header.request_api_key == ApiKey::ListOffsets as i16));
        assert!(!bootstrap
            .seen()
            .iter()
            .any(|s| s.header.request_api_key == ApiKey::ListOffsets as i16));
        let md = bootstrap
            .seen()
            .into_iter()
            .find(|s| s.header.request_api_key == ApiKey::Metadata as i16)
            .unwrap();
        let req: MetadataRequest = decode_body(&md);
        assert!(
            !req.allow_auto_topic_creation,
            "metadata must not create topics"
        );
    }

    #[tokio::test]
    async fn older_brokers_get_the_pre_batching_request_shapes() {
        let me = Arc::new(OnceLock::new());
        let fake = FakeBroker::start(group_broker_with(
            me.clone(),
            vec![
                (ApiKey::ApiVersions, 0, 2),
                (ApiKey::Metadata, 0, 7),
                (ApiKey::FindCoordinator, 0, 2),
                (ApiKey::DescribeGroups, 0, 2),
                (ApiKey::OffsetFetch, 1, 5),
                (ApiKey::OffsetCommit, 2, 4),
            ],
        ))
        .await;
        me.set(fake.addr.clone()).unwrap();

        let mut client = Client::connect(&fake.addr, opts()).await.unwrap();
        let d = client.describe_group("g").await.unwrap();
        assert_eq!(d.coordinator.node_id, 7);
        let committed = client.offset_fetch("g").await.unwrap();
        assert_eq!(committed[&TopicPartition::new("t", 0)].offset, 5);
        assert_eq!(committed.len(), 1);
        client
            .offset_commit("g", &[(TopicPartition::new("t", 0), 1)])
            .await
            .unwrap();

        let versions: Vec<(i16, i16)> = fake
            .seen()
            .iter()
            .map(|s| (s.header.request_api_key, s.header.request_api_version))
            .collect();
        assert!(
            versions.contains(&(ApiKey::FindCoordinator as i16, 2)),
            "{versions:?}"
        );
        assert!(
            versions.contains(&(ApiKey::OffsetFetch as i16, 5)),
            "{versions:?}"
        );
        assert!(
            versions.contains(&(ApiKey::OffsetCommit as i16, 4)),
            "{versions:?}"
        );
        let find = fake
            .seen()
            .into_iter()
            .find(|s| s.header.request_api_key == ApiKey::FindCoordinator as i16)
            .unwrap();
        let req: FindCoordinatorRequest = decode_body(&find);
        assert_eq!(req.key.as_str(), "g");
    }

    #[tokio::test]
    async fn a_state_filter_needs_list_groups_v4() {
        let me = Arc::new(OnceLock::new());
        let fake = FakeBroker::start(group_broker_with(
            me.clone(),
            vec![
                (ApiKey::ApiVersions, 0, 3),
                (ApiKey::Metadata, 0, 12),
                (ApiKey::ListGroups, 0, 3),
            ],
        ))
        .await;
        me.set(fake.addr.clone()).unwrap();
        let mut client = Client::connect(&fake.addr, opts()).await.unwrap();
        let e = client.list_groups(&["Stable"]).await.unwrap_err();
        assert!(e.to_string().contains("needs v4+"), "{e}");
    }
}
