//! A member of a classic consumer group, for a command-line consumer: JoinGroup (with the
//! KIP-394 member-id round trip), SyncGroup (as the leader it assigns with Kafka's `range`
//! assignor), Heartbeat, OffsetCommit under the member's generation, and LeaveGroup. It speaks
//! the classic protocol every Kafka-compatible broker has; one member per [`GroupMember`], driven
//! by its caller between fetches (no background thread: heartbeats go out when
//! [`GroupMember::heartbeat_due`] says so).

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, ConsumerProtocolAssignment, ConsumerProtocolSubscription, GroupId, HeartbeatRequest,
    JoinGroupRequest, LeaveGroupRequest, OffsetCommitRequest, SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::client::{coordinator_retriable, err};
use crate::consumer_protocol::{self, CONSUMER_PROTOCOL_TYPE};
use crate::{Client, Error, Result, TopicPartition};

/// v4 brought MEMBER_ID_REQUIRED (KIP-394); v9 is the newest before the consumer protocol.
const JOIN_GROUP: RangeInclusive<i16> = 4..=9;
const SYNC_GROUP: RangeInclusive<i16> = 3..=5;
const HEARTBEAT: RangeInclusive<i16> = 3..=4;
/// v3 names members in a list (batch leave, KIP-345).
const LEAVE_GROUP: RangeInclusive<i16> = 3..=5;
/// v7 carries the group instance id; v9 is the newest before member epochs.
const OFFSET_COMMIT: RangeInclusive<i16> = 2..=9;

/// The assignor this member offers: Kafka's `range`.
const RANGE: &str = "range";

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// One member of a classic consumer group.
#[derive(Debug)]
pub struct GroupMember {
    group: String,
    topics: Vec<String>,
    member_id: String,
    generation: i32,
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
    heartbeat_interval: Duration,
    last_heartbeat: Instant,
}

/// What a heartbeat found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heartbeat {
    /// Still a member of the current generation.
    Fine,
    /// The group is rebalancing (or forgot this member): commit, then join again.
    Rejoin,
}

impl GroupMember {
    /// A member-to-be of `group` subscribing to `topics`, with a session timeout of
    /// `session_timeout_ms` (heartbeats every third of it).
    pub fn new(group: &str, topics: &[String], session_timeout_ms: i32) -> GroupMember {
        GroupMember {
            group: group.to_string(),
            topics: topics.to_vec(),
            member_id: String::new(),
            generation: -1,
            session_timeout_ms,
            rebalance_timeout_ms: session_timeout_ms.max(30_000),
            heartbeat_interval: Duration::from_millis((session_timeout_ms / 3).max(100) as u64),
            last_heartbeat: Instant::now(),
        }
    }

    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    pub fn generation(&self) -> i32 {
        self.generation
    }

    /// Joins (or rejoins) the group and returns this member's partitions for the new
    /// generation.
    pub async fn join(&mut self, client: &mut Client) -> Result<Vec<TopicPartition>> {
        let deadline = Instant::now() + Duration::from_millis(self.rebalance_timeout_ms as u64 * 2);
        let mut attempt = 0;
        loop {
            match self.join_once(client).await {
                Ok(assignment) => {
                    self.last_heartbeat = Instant::now();
                    return Ok(assignment);
                }
                Err(Error::Kafka { error, .. })
                    if Instant::now() < deadline
                        && (coordinator_retriable(error)
                            || matches!(
                                error,
                                ResponseError::RebalanceInProgress
                                    | ResponseError::UnknownMemberId
                                    | ResponseError::IllegalGeneration
                            )) =>
                {
                    if error == ResponseError::UnknownMemberId {
                        self.member_id.clear();
                    }
                    if coordinator_retriable(error) {
                        client.coordinator_moved(&self.group, attempt).await;
                    }
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn join_once(&mut self, client: &mut Client) -> Result<Vec<TopicPartition>> {
        let (coordinator, version) = client
            .coordinator_call(&self.group, ApiKey::JoinGroup, JOIN_GROUP)
            .await?;
        let subscription = consumer_protocol::encode_subscription(
            0,
            &ConsumerProtocolSubscription::default()
                .with_topics(self.topics.iter().map(|t| str_bytes(t)).collect()),
        )?;
        let request = |member_id: &str| {
            JoinGroupRequest::default()
                .with_group_id(GroupId(str_bytes(&self.group)))
                .with_session_timeout_ms(self.session_timeout_ms)
                .with_rebalance_timeout_ms(self.rebalance_timeout_ms)
                .with_member_id(str_bytes(member_id))
                .with_protocol_type(str_bytes(CONSUMER_PROTOCOL_TYPE))
                .with_protocols(vec![JoinGroupRequestProtocol::default()
                    .with_name(str_bytes(RANGE))
                    .with_metadata(subscription.clone())])
        };
        let conn = client.connection_to(&coordinator.addr()).await?;
        let context = format!("JoinGroup v{version} for group '{}'", self.group);
        let mut response = conn.send(version, &request(&self.member_id)).await?;
        if err(response.error_code) == Some(ResponseError::MemberIdRequired) {
            // KIP-394: join again with the id the coordinator handed out.
            self.member_id = response.member_id.to_string();
            response = conn.send(version, &request(&self.member_id)).await?;
        }
        if let Some(e) = err(response.error_code) {
            return Err(Error::kafka(context, e));
        }
        self.member_id = response.member_id.to_string();
        self.generation = response.generation_id;
        let leader = response.leader.as_str() == self.member_id;
        let assignments = if leader {
            let mut subscriptions = BTreeMap::new();
            for m in &response.members {
                let topics = consumer_protocol::subscribed_topics(&m.metadata)?;
                subscriptions.insert(m.member_id.to_string(), topics);
            }
            let partitions = partition_counts(client, &subscriptions).await?;
            range_assign(&subscriptions, &partitions)
                .into_iter()
                .map(|(member, parts)| {
                    Ok(SyncGroupRequestAssignment::default()
                        .with_member_id(str_bytes(&member))
                        .with_assignment(encode_assignment(&parts)?))
                })
                .collect::<Result<Vec<_>>>()?
        } else {
            Vec::new()
        };
        let (coordinator, version) = client
            .coordinator_call(&self.group, ApiKey::SyncGroup, SYNC_GROUP)
            .await?;
        let mut sync = SyncGroupRequest::default()
            .with_group_id(GroupId(str_bytes(&self.group)))
            .with_generation_id(self.generation)
            .with_member_id(str_bytes(&self.member_id))
            .with_assignments(assignments);
        if version >= 5 {
            sync = sync
                .with_protocol_type(Some(str_bytes(CONSUMER_PROTOCOL_TYPE)))
                .with_protocol_name(Some(str_bytes(RANGE)));
        }
        let conn = client.connection_to(&coordinator.addr()).await?;
        let synced = conn.send(version, &sync).await?;
        if let Some(e) = err(synced.error_code) {
            return Err(Error::kafka(
                format!("SyncGroup v{version} for group '{}'", self.group),
                e,
            ));
        }
        if synced.assignment.is_empty() {
            return Ok(Vec::new());
        }
        consumer_protocol::assigned_partitions(&synced.assignment)
    }

    /// Whether a heartbeat is due (a third of the session timeout since the last one).
    pub fn heartbeat_due(&self) -> bool {
        self.last_heartbeat.elapsed() >= self.heartbeat_interval
    }

    /// Sends a heartbeat for the current generation.
    pub async fn heartbeat(&mut self, client: &mut Client) -> Result<Heartbeat> {
        let (coordinator, version) = client
            .coordinator_call(&self.group, ApiKey::Heartbeat, HEARTBEAT)
            .await?;
        let request = HeartbeatRequest::default()
            .with_group_id(GroupId(str_bytes(&self.group)))
            .with_generation_id(self.generation)
            .with_member_id(str_bytes(&self.member_id));
        let conn = client.connection_to(&coordinator.addr()).await?;
        let response = conn.send(version, &request).await?;
        self.last_heartbeat = Instant::now();
        match err(response.error_code) {
            None => Ok(Heartbeat::Fine),
            Some(
                ResponseError::RebalanceInProgress
                | ResponseError::IllegalGeneration
                | ResponseError::UnknownMemberId
                | ResponseError::FencedInstanceId,
            ) => Ok(Heartbeat::Rejoin),
            Some(e) if coordinator_retriable(e) => {
                client.coordinator_moved(&self.group, 0).await;
                Ok(Heartbeat::Rejoin)
            }
            Some(e) => Err(Error::kafka(
                format!("Heartbeat v{version} for group '{}'", self.group),
                e,
            )),
        }
    }

    /// Commits `offsets` (the next offset to read per partition) as this member of the
    /// current generation. A rebalance under way makes the commit fail with
    /// REBALANCE_IN_PROGRESS (or ILLEGAL_GENERATION), as in Kafka.
    pub async fn commit(
        &mut self,
        client: &mut Client,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        let (coordinator, version) = client
            .coordinator_call(&self.group, ApiKey::OffsetCommit, OFFSET_COMMIT)
            .await?;
        let mut by_topic: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
        for (tp, offset) in offsets {
            by_topic.entry(&tp.topic).or_default().push(
                OffsetCommitRequestPartition::default()
                    .with_partition_index(tp.partition)
                    .with_committed_offset(*offset)
                    .with_committed_metadata(Some(str_bytes(""))),
            );
        }
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(str_bytes(&self.group)))
            .with_generation_id_or_member_epoch(self.generation)
            .with_member_id(str_bytes(&self.member_id))
            .with_topics(
                by_topic
                    .into_iter()
                    .map(|(topic, partitions)| {
                        OffsetCommitRequestTopic::default()
                            .with_name(TopicName(str_bytes(topic)))
                            .with_partitions(partitions)
                    })
                    .collect(),
            );
        let conn = client.connection_to(&coordinator.addr()).await?;
        let response = conn.send(version, &request).await?;
        for t in &response.topics {
            for p in &t.partitions {
                if let Some(e) = err(p.error_code) {
                    return Err(Error::kafka(
                        format!(
                            "OffsetCommit v{version} for group '{}', partition {}-{}",
                            self.group,
                            t.name.as_str(),
                            p.partition_index
                        ),
                        e,
                    ));
                }
            }
        }
        Ok(())
    }

    /// Leaves the group, so the others get this member's partitions at once.
    pub async fn leave(&mut self, client: &mut Client) -> Result<()> {
        if self.member_id.is_empty() {
            return Ok(());
        }
        let (coordinator, version) = client
            .coordinator_call(&self.group, ApiKey::LeaveGroup, LEAVE_GROUP)
            .await?;
        let request = LeaveGroupRequest::default()
            .with_group_id(GroupId(str_bytes(&self.group)))
            .with_members(vec![
                MemberIdentity::default().with_member_id(str_bytes(&self.member_id))
            ]);
        let conn = client.connection_to(&coordinator.addr()).await?;
        let response = conn.send(version, &request).await?;
        let code = response
            .members
            .iter()
            .map(|m| m.error_code)
            .find(|&c| c != 0)
            .unwrap_or(response.error_code);
        match err(code) {
            None | Some(ResponseError::UnknownMemberId) => Ok(()),
            Some(e) => Err(Error::kafka(
                format!("LeaveGroup v{version} for group '{}'", self.group),
                e,
            )),
        }
    }
}

/// Every subscribed topic's partition count, from Metadata.
async fn partition_counts(
    client: &mut Client,
    subscriptions: &BTreeMap<String, Vec<String>>,
) -> Result<BTreeMap<String, i32>> {
    let mut topics: Vec<&str> = subscriptions
        .values()
        .flatten()
        .map(String::as_str)
        .collect();
    topics.sort_unstable();
    topics.dedup();
    let metadata = client.metadata(Some(&topics)).await?;
    Ok(topics
        .into_iter()
        .filter_map(|t| {
            let m = metadata.topic(t)?;
            (m.error.is_none()).then(|| (t.to_string(), m.partitions.len() as i32))
        })
        .collect())
}

/// Kafka's `range` assignor: per topic, its partitions in order split into contiguous ranges
/// over the members subscribed to it, sorted by member id, the first `partitions % members`
/// members taking one more.
pub fn range_assign(
    subscriptions: &BTreeMap<String, Vec<String>>,
    partitions: &BTreeMap<String, i32>,
) -> BTreeMap<String, Vec<TopicPartition>> {
    let mut out: BTreeMap<String, Vec<TopicPartition>> = subscriptions
        .keys()
        .map(|m| (m.clone(), Vec::new()))
        .collect();
    for (topic, &count) in partitions {
        let members: Vec<&String> = subscriptions
            .iter()
            .filter(|(_, topics)| topics.contains(topic))
            .map(|(m, _)| m)
            .collect();
        if members.is_empty() {
            continue;
        }
        let per = count / members.len() as i32;
        let extra = count % members.len() as i32;
        let mut next = 0;
        for (i, member) in members.into_iter().enumerate() {
            let take = per + i32::from((i as i32) < extra);
            let entry = out.get_mut(member).expect("every member has an entry");
            entry.extend((next..next + take).map(|p| TopicPartition::new(topic, p)));
            next += take;
        }
    }
    out
}

fn encode_assignment(partitions: &[TopicPartition]) -> Result<bytes::Bytes> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        by_topic.entry(&tp.topic).or_default().push(tp.partition);
    }
    consumer_protocol::encode_assignment(
        0,
        &ConsumerProtocolAssignment::default().with_assigned_partitions(
            by_topic
                .into_iter()
                .map(|(topic, partitions)| {
                    AssignedTopic::default()
                        .with_topic(TopicName(str_bytes(topic)))
                        .with_partitions(partitions)
                })
                .collect(),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subs(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(m, ts)| (m.to_string(), ts.iter().map(|t| t.to_string()).collect()))
            .collect()
    }

    fn parts(assigned: &[TopicPartition]) -> Vec<String> {
        assigned.iter().map(|tp| tp.to_string()).collect()
    }

    #[test]
    fn range_gives_the_first_members_one_more_when_partitions_do_not_divide() {
        let subscriptions = subs(&[("b", &["t"]), ("a", &["t"]), ("c", &["t"])]);
        let counts = BTreeMap::from([("t".to_string(), 7)]);
        let assigned = range_assign(&subscriptions, &counts);
        assert_eq!(parts(&assigned["a"]), ["t-0", "t-1", "t-2"]);
        assert_eq!(parts(&assigned["b"]), ["t-3", "t-4"]);
        assert_eq!(parts(&assigned["c"]), ["t-5", "t-6"]);
    }

    #[test]
    fn range_assigns_each_topic_among_its_own_subscribers_only() {
        let subscriptions = subs(&[("a", &["t", "u"]), ("b", &["u"])]);
        let counts = BTreeMap::from([("t".to_string(), 2), ("u".to_string(), 2)]);
        let assigned = range_assign(&subscriptions, &counts);
        assert_eq!(parts(&assigned["a"]), ["t-0", "t-1", "u-0"]);
        assert_eq!(parts(&assigned["b"]), ["u-1"]);
    }

    #[test]
    fn an_assignment_encodes_to_what_the_protocol_decoder_reads_back() {
        let tps = vec![TopicPartition::new("t", 0), TopicPartition::new("t", 2)];
        let bytes = encode_assignment(&tps).unwrap();
        assert_eq!(consumer_protocol::assigned_partitions(&bytes).unwrap(), tps);
    }
}
