//! One classic group: the durable part (generation, protocol type and name, leader, members
//! with assignments, committed offsets — changed only by applying records, except for
//! membership changes inside a rebalance that the next record captures, as in Kafka) and the
//! runtime part (state, static member index, pending members, barrier bookkeeping).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use kafka_protocol::ResponseError;

use crate::assignment::Ownership;
use crate::history::RebalanceRecord;
use crate::member::Member;
use crate::state::GroupState;
use crate::{protocol_select, GroupValue, Millis, OffsetValue};
use starling_protocol::consumer_protocol::{subscribed_topics, CONSUMER_PROTOCOL_TYPE};

#[derive(Debug)]
pub(crate) struct Group {
    pub id: String,
    pub generation: i32,
    /// `""` when no member ever joined (a simple, commit-only group).
    pub protocol_type: String,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    /// When the group entered its current state.
    pub state_timestamp: Millis,
    pub members: BTreeMap<String, Member>,
    /// Committed offsets by (topic, partition).
    pub offsets: BTreeMap<(String, i32), OffsetValue>,
    /// Transactional offsets not committed or aborted yet, by producer id.
    pub pending_offsets: BTreeMap<i64, BTreeMap<(String, i32), OffsetValue>>,
    /// The last group record applied, `None` when the group only exists through offsets.
    pub persisted: Option<GroupValue>,

    pub state: GroupState,
    pub previous_state: GroupState,
    /// group_instance_id → member id.
    pub static_members: BTreeMap<String, String>,
    /// KIP-394: member ids handed out with MEMBER_ID_REQUIRED, not yet rejoined.
    pub pending_join: BTreeSet<String>,
    /// Members of the current generation that have not sent SyncGroup yet.
    pub pending_sync: BTreeSet<String>,
    /// A member was added during the initial (delayed) join: extend the delay.
    pub new_member_added: bool,
    /// (delay, remaining) of the running initial-delay timer.
    pub initial_delay: Option<(i64, i64)>,
    pub next_seq: u64,
    /// Closed rebalance records (bounded), then the open one, if any.
    pub history: VecDeque<RebalanceRecord>,
    /// Who owns which partition per the last readable consumer assignment: what the next
    /// rebalance record compares its assignment with.
    pub ownership: Ownership,
    /// Set when the group runs the KIP-848 consumer protocol (the classic fields above stay
    /// unused, except the offsets and the history).
    pub consumer: Option<Box<crate::consumer::ConsumerGroup>>,
}

impl Group {
    pub fn new(id: &str, now: Millis) -> Group {
        Group {
            id: id.to_string(),
            generation: 0,
            protocol_type: String::new(),
            protocol: None,
            leader: None,
            state_timestamp: now,
            members: BTreeMap::new(),
            offsets: BTreeMap::new(),
            pending_offsets: BTreeMap::new(),
            persisted: None,
            state: GroupState::Empty,
            previous_state: GroupState::Dead,
            static_members: BTreeMap::new(),
            pending_join: BTreeSet::new(),
            pending_sync: BTreeSet::new(),
            new_member_added: false,
            initial_delay: None,
            next_seq: 0,
            history: VecDeque::new(),
            ownership: Ownership::default(),
            consumer: None,
        }
    }

    /// The group went over to the consumer protocol: its classic part (generation, members,
    /// barriers) goes, its offsets, history and consumer part stay.
    pub fn clear_classic(&mut self) {
        self.generation = 0;
        self.protocol = None;
        self.leader = None;
        self.members.clear();
        self.persisted = None;
        self.state = GroupState::Empty;
        self.previous_state = GroupState::Dead;
        self.static_members.clear();
        self.pending_join.clear();
        self.pending_sync.clear();
        self.new_member_added = false;
        self.initial_delay = None;
        self.ownership = Ownership::default();
    }

    /// Moves to `to`, remembering the previous state and when the change happened.
    pub fn transition(&mut self, to: GroupState, now: Millis) {
        if cfg!(any(test, debug_assertions)) {
            assert!(
                to.can_follow(self.state),
                "group {}: illegal transition {} -> {}",
                self.id,
                self.state,
                to
            );
        }
        self.previous_state = self.state;
        self.state = to;
        self.state_timestamp = now;
    }

    pub fn take_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// Members in join order.
    pub fn ordered_members(&self) -> Vec<&Member> {
        let mut members: Vec<&Member> = self.members.values().collect();
        members.sort_by_key(|m| m.seq);
        members
    }

    pub fn ordered_member_ids(&self) -> Vec<String> {
        self.ordered_members()
            .into_iter()
            .map(|m| m.id.clone())
            .collect()
    }

    pub fn is_leader(&self, member_id: &str) -> bool {
        self.leader.as_deref() == Some(member_id)
    }

    pub fn num_awaiting_join(&self) -> usize {
        self.members
            .values()
            .filter(|m| m.awaiting_join.is_some())
            .count()
    }

    /// Every member has rejoined and no KIP-394 pending member is outstanding.
    pub fn all_joined(&self) -> bool {
        self.members.values().all(|m| m.awaiting_join.is_some()) && self.pending_join.is_empty()
    }

    /// The join barrier's timeout: the largest rebalance timeout of the members.
    pub fn rebalance_timeout_ms(&self) -> i64 {
        self.members
            .values()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0)
            .max(0)
    }

    /// Kafka's `validateMember`: the instance id (if given) must map to this member id, and
    /// the member id must be a member.
    pub fn validate_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), ResponseError> {
        if let Some(instance_id) = instance_id {
            match self.static_members.get(instance_id) {
                None => return Err(ResponseError::UnknownMemberId),
                Some(existing) if existing != member_id => {
                    return Err(ResponseError::FencedInstanceId)
                }
                Some(_) => {}
            }
        }
        if !self.members.contains_key(member_id) {
            return Err(ResponseError::UnknownMemberId);
        }
        Ok(())
    }

    /// Whether a JoinGroup with this protocol type and protocols can be accepted. An empty group
    /// takes any non-empty offer; otherwise the type must match and some offered protocol must
    /// be supported by every other member (the joiner's own previous protocols, if it is a
    /// member, do not count).
    pub fn supports_protocols(
        &self,
        protocol_type: &str,
        offered: &[String],
        joiner: Option<&str>,
    ) -> bool {
        if protocol_type.is_empty() || offered.is_empty() {
            return false;
        }
        if self.state == GroupState::Empty || self.members.is_empty() {
            return true;
        }
        let others = self
            .members
            .values()
            .filter(|m| Some(m.id.as_str()) != joiner);
        self.protocol_type == protocol_type && protocol_select::compatible(others, offered)
    }

    /// The protocol a join completing now would select.
    pub fn select_protocol(&self) -> Option<String> {
        protocol_select::select(&self.ordered_members(), self.leader.as_deref())
    }

    /// The topics the members subscribe to (Kafka's `computeSubscribedTopics`): `None` when the
    /// group does not use the consumer protocol, has not selected a protocol yet, or some
    /// member's metadata cannot be read.
    pub fn subscribed_topics(&self) -> Option<BTreeSet<String>> {
        if self.protocol_type != CONSUMER_PROTOCOL_TYPE {
            return None;
        }
        if self.members.is_empty() {
            return Some(BTreeSet::new());
        }
        let protocol = self.protocol.as_deref()?;
        let mut topics = BTreeSet::new();
        for member in self.members.values() {
            topics.extend(subscribed_topics(member.metadata(protocol)?)?);
        }
        Some(topics)
    }

    /// Kafka's `isSubscribedToTopic`: when the subscriptions are unknown, a consumer group is
    /// assumed to be subscribed.
    pub fn is_subscribed_to(&self, topic: &str) -> bool {
        match self.subscribed_topics() {
            Some(topics) => topics.contains(topic),
            None => self.protocol_type == CONSUMER_PROTOCOL_TYPE,
        }
    }

    /// The group as a record value, members in join order with the given assignments.
    pub fn to_value(
        &self,
        state_timestamp: Millis,
        assignment_of: impl Fn(&Member) -> bytes::Bytes,
    ) -> GroupValue {
        GroupValue {
            protocol_type: self.protocol_type.clone(),
            generation: self.generation,
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            state_timestamp,
            members: self
                .ordered_members()
                .into_iter()
                .map(|m| m.to_value(assignment_of(m)))
                .collect(),
        }
    }

    /// The member that leads after `removed` leaves: the first remaining one in join order.
    pub fn next_leader_after(&self, removed: &str) -> Option<String> {
        self.ordered_members()
            .into_iter()
            .find(|m| m.id != removed)
            .map(|m| m.id.clone())
    }
}
