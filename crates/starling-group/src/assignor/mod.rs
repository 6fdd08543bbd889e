//! KIP-848 server-side partition assignors: the interface the consumer-group model calls
//! ([`Assignor`], [`GroupSpec`], [`TopicMetadata`], [`by_name`]) and the bookkeeping both
//! built-in assignors share (topics and members numbered densely, each member's subscription
//! resolved against the topics that exist, a partition → owner table).
//!
//! The assignors follow Apache Kafka 4's `org.apache.kafka.coordinator.group.assignor`:
//!
//! * [`UniformAssignor`] (`"uniform"`, Kafka's default): balanced and sticky, see [`uniform`];
//! * [`RangeAssignor`] (`"range"`): contiguous per-topic ranges, co-partitioned, see [`range`].
//!
//! Both are pure functions of their input: no I/O, no clock, no randomness, and no iteration
//! over hash maps, so the same input always gives the same output.
//!
//! What the assignors tolerate in their input, unlike Kafka's (which throws): a subscription
//! naming a topic that is not in `topics` is ignored for that topic, and a member's `current`
//! assignment may name topics that no longer exist, topics it no longer subscribes to,
//! partitions beyond the partition count, or partitions another member holds too. The uniform
//! assignor drops all of those (a partition held twice stays with the member whose id sorts
//! first); the range assignor ignores `current` altogether.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

pub mod range;
pub mod uniform;

#[cfg(test)]
mod tests;

pub use range::RangeAssignor;
pub use uniform::UniformAssignor;

/// The name of the uniform assignor in `group.consumer.assignors` and in the
/// `ServerAssignor` field of ConsumerGroupHeartbeat.
pub const UNIFORM_ASSIGNOR_NAME: &str = "uniform";

/// The name of the range assignor in `group.consumer.assignors` and in the `ServerAssignor`
/// field of ConsumerGroupHeartbeat.
pub const RANGE_ASSIGNOR_NAME: &str = "range";

/// Kafka 4's default `group.consumer.assignors`: every built-in assignor, the first being the
/// one a group uses when no member asks for one.
pub const DEFAULT_ASSIGNORS: [&str; 2] = [UNIFORM_ASSIGNOR_NAME, RANGE_ASSIGNOR_NAME];

/// A topic as the assignor sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    pub id: Uuid,
    pub name: String,
    /// How many partitions the topic has (partitions `0..partitions`).
    pub partitions: u32,
}

impl TopicMetadata {
    pub fn new(id: Uuid, name: impl Into<String>, partitions: u32) -> TopicMetadata {
        TopicMetadata {
            id,
            name: name.into(),
            partitions,
        }
    }
}

/// One member's input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberSpec {
    /// KIP-345 `group.instance.id`: the range assignor orders static members by it.
    pub instance_id: Option<String>,
    /// The member's rack. Accepted, not used: neither assignor is rack-aware here.
    pub rack: Option<String>,
    /// The ids of the topics the member subscribes to (names and regexes already resolved).
    /// Ids missing from the topics given to [`Assignor::assign`] are ignored.
    pub subscribed: BTreeSet<Uuid>,
    /// The member's current target assignment, for stickiness. Stale entries (deleted topics,
    /// topics no longer subscribed, partitions past the count) are dropped. Only the uniform
    /// assignor reads it; the range assignor, like Kafka 4's, does not.
    pub current: BTreeMap<Uuid, BTreeSet<i32>>,
}

/// The group to assign: its members by member id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupSpec {
    pub members: BTreeMap<String, MemberSpec>,
}

/// The partitions one member is assigned: topic id → partition indexes.
pub type MemberAssignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// A whole group's assignment: member id → that member's partitions.
pub type GroupAssignment = BTreeMap<String, MemberAssignment>;

/// A server-side assignor (Kafka's `ConsumerGroupPartitionAssignor`).
pub trait Assignor: Send + Sync + std::fmt::Debug {
    /// The name members ask for it by (`"uniform"`, `"range"`).
    fn name(&self) -> &'static str;

    /// Computes the group's target assignment. Every member of `group` is in the result, with
    /// an empty assignment if it gets nothing; every partition of every topic in `topics` that
    /// some member subscribes to goes to exactly one member subscribed to that topic.
    fn assign(
        &self,
        group: &GroupSpec,
        topics: &BTreeMap<Uuid, TopicMetadata>,
    ) -> Result<GroupAssignment, AssignorError>;
}

/// Why an assignment could not be computed: the topics given are inconsistent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssignorError {
    /// A [`TopicMetadata`] is filed under another id than its own.
    #[error("topic {topic} ({name}) is filed under id {key}")]
    TopicIdMismatch {
        key: Uuid,
        topic: Uuid,
        name: String,
    },
    /// A topic has more partitions than an `i32` partition index can number.
    #[error(
        "topic {topic} has {partitions} partitions, more than Kafka's i32 partition indexes allow"
    )]
    TooManyPartitions { topic: Uuid, partitions: u32 },
}

/// The built-in assignor Kafka calls `name` in `group.consumer.assignors` (its short name, or
/// the full class name of Kafka's implementation), `None` for any other name.
pub fn by_name(name: &str) -> Option<Box<dyn Assignor>> {
    match name {
        UNIFORM_ASSIGNOR_NAME | "org.apache.kafka.coordinator.group.assignor.UniformAssignor" => {
            Some(Box::new(UniformAssignor))
        }
        RANGE_ASSIGNOR_NAME | "org.apache.kafka.coordinator.group.assignor.RangeAssignor" => {
            Some(Box::new(RangeAssignor))
        }
        _ => None,
    }
}

/// The topics of one assignment, numbered `0..len()` in topic id order, partition counts
/// checked to fit an `i32`.
pub(crate) struct TopicTable {
    ids: Vec<Uuid>,
    partition_counts: Vec<i32>,
}

impl TopicTable {
    pub(crate) fn new(topics: &BTreeMap<Uuid, TopicMetadata>) -> Result<TopicTable, AssignorError> {
        let mut ids = Vec::with_capacity(topics.len());
        let mut partition_counts = Vec::with_capacity(topics.len());
        for (key, topic) in topics {
            if topic.id != *key {
                return Err(AssignorError::TopicIdMismatch {
                    key: *key,
                    topic: topic.id,
                    name: topic.name.clone(),
                });
            }
            let count =
                i32::try_from(topic.partitions).map_err(|_| AssignorError::TooManyPartitions {
                    topic: topic.id,
                    partitions: topic.partitions,
                })?;
            ids.push(*key);
            partition_counts.push(count);
        }
        Ok(TopicTable {
            ids,
            partition_counts,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    pub(crate) fn id(&self, topic: usize) -> Uuid {
        self.ids[topic]
    }

    pub(crate) fn partition_count(&self, topic: usize) -> i32 {
        self.partition_counts[topic]
    }

    pub(crate) fn index_of(&self, id: &Uuid) -> Option<usize> {
        self.ids.binary_search(id).ok()
    }

    /// The indexes of the existing topics among `subscribed`, ascending. Both lists are
    /// sorted, so each id is searched for only past the previous one, galloping: a member
    /// reading most topics costs a few comparisons per topic, not a full binary search.
    pub(crate) fn resolve(&self, subscribed: &BTreeSet<Uuid>) -> Vec<usize> {
        let mut resolved = Vec::with_capacity(subscribed.len().min(self.ids.len()));
        let mut offset = 0;
        for id in subscribed {
            let rest = &self.ids[offset..];
            // Probe rest[0], rest[1], rest[3], rest[7], …: the first topic ≥ `id` lies after
            // the last probe below it and at or before the first probe at or above it.
            let mut end = 1;
            while end < rest.len() && rest[end - 1] < *id {
                end *= 2;
            }
            let start = end / 2;
            let end = end.min(rest.len());
            let position = start + rest[start..end].partition_point(|topic| topic < id);
            if rest.get(position) == Some(id) {
                resolved.push(offset + position);
                offset += position + 1;
            } else {
                offset += position;
            }
        }
        resolved
    }
}

/// Who subscribes to what, in topic indexes, members numbered in member id order.
pub(crate) enum Subscriptions {
    /// Every member subscribes to these topics (ascending). Also the case of an empty group.
    Homogeneous(Vec<usize>),
    /// Member `m` subscribes to the topics `[m]` (ascending); at least two members differ.
    Heterogeneous(Vec<Vec<usize>>),
}

impl Subscriptions {
    /// Resolves every member's subscription against `topics`. Members whose raw
    /// subscriptions are equal are not resolved one by one (the common case: one subscription
    /// for the whole group).
    pub(crate) fn of(members: &[&MemberSpec], topics: &TopicTable) -> Subscriptions {
        let Some(first) = members.first() else {
            return Subscriptions::Homogeneous(Vec::new());
        };
        let first_topics = topics.resolve(&first.subscribed);
        if members.iter().all(|m| m.subscribed == first.subscribed) {
            return Subscriptions::Homogeneous(first_topics);
        }
        let per_member: Vec<Vec<usize>> = members
            .iter()
            .map(|m| {
                if m.subscribed == first.subscribed {
                    first_topics.clone()
                } else {
                    topics.resolve(&m.subscribed)
                }
            })
            .collect();
        if per_member.iter().all(|t| *t == first_topics) {
            Subscriptions::Homogeneous(first_topics)
        } else {
            Subscriptions::Heterogeneous(per_member)
        }
    }
}

/// For each topic, the members subscribed to it, in the order of `members_in_order`.
pub(crate) fn subscribers_per_topic(
    topic_count: usize,
    per_member: &[Vec<usize>],
    members_in_order: impl Iterator<Item = usize>,
) -> Vec<Vec<u32>> {
    let mut subscribers = vec![Vec::new(); topic_count];
    for member in members_in_order {
        for &topic in &per_member[member] {
            subscribers[topic].push(member as u32);
        }
    }
    subscribers
}

/// The partitions of `member.current` that are still valid for it: of an existing topic it
/// subscribes to (`subscribed`, ascending topic indexes), below the partition count. In
/// (topic index, partition) order.
pub(crate) fn valid_current<'a>(
    member: &'a MemberSpec,
    subscribed: &'a [usize],
    topics: &'a TopicTable,
) -> impl Iterator<Item = (usize, i32)> + 'a {
    member
        .current
        .iter()
        .filter_map(move |(id, partitions)| {
            let topic = topics.index_of(id)?;
            subscribed.binary_search(&topic).ok()?;
            let count = topics.partition_count(topic);
            Some(
                partitions
                    .range(0..count)
                    .map(move |&partition| (topic, partition)),
            )
        })
        .flatten()
}

/// A member index in [`PartitionOwners`] meaning "nobody".
const NO_OWNER: u32 = u32::MAX;

/// Who owns each partition of the assignable topics, and how many partitions each member
/// owns in all: the working state of the uniform assignor.
pub(crate) struct PartitionOwners {
    /// Per topic index, the owner of each partition; empty for topics nobody subscribes to.
    owners: Vec<Vec<u32>>,
    /// Per member, how many partitions it owns.
    loads: Vec<usize>,
}

impl PartitionOwners {
    /// Every partition of the topics marked in `assignable` unowned; `members` members.
    pub(crate) fn new(topics: &TopicTable, assignable: &[bool], members: usize) -> PartitionOwners {
        let owners = (0..topics.len())
            .map(|topic| {
                let count = if assignable[topic] {
                    topics.partition_count(topic) as usize
                } else {
                    0
                };
                vec![NO_OWNER; count]
            })
            .collect();
        PartitionOwners {
            owners,
            loads: vec![0; members],
        }
    }

    pub(crate) fn owner(&self, topic: usize, partition: i32) -> Option<usize> {
        match self.owners[topic][partition as usize] {
            NO_OWNER => None,
            member => Some(member as usize),
        }
    }

    pub(crate) fn member_count(&self) -> usize {
        self.loads.len()
    }

    pub(crate) fn load(&self, member: usize) -> usize {
        self.loads[member]
    }

    /// Gives the partition to `member`, taking it from its owner if it has one.
    pub(crate) fn assign(&mut self, topic: usize, partition: i32, member: usize) {
        self.unassign(topic, partition);
        self.owners[topic][partition as usize] = member as u32;
        self.loads[member] += 1;
    }

    pub(crate) fn unassign(&mut self, topic: usize, partition: i32) {
        if let Some(owner) = self.owner(topic, partition) {
            self.loads[owner] -= 1;
            self.owners[topic][partition as usize] = NO_OWNER;
        }
    }

    /// The topic's partitions nobody owns, ascending.
    pub(crate) fn unowned(&self, topic: usize) -> impl Iterator<Item = i32> + '_ {
        self.owners[topic]
            .iter()
            .enumerate()
            .filter(|(_, owner)| **owner == NO_OWNER)
            .map(|(partition, _)| partition as i32)
    }

    /// The topic's partitions grouped by owner: owner → its partitions, ascending.
    pub(crate) fn partitions_by_owner(&self, topic: usize) -> BTreeMap<usize, Vec<i32>> {
        let mut by_owner: BTreeMap<usize, Vec<i32>> = BTreeMap::new();
        for (partition, &owner) in self.owners[topic].iter().enumerate() {
            if owner != NO_OWNER {
                by_owner
                    .entry(owner as usize)
                    .or_default()
                    .push(partition as i32);
            }
        }
        by_owner
    }

    /// Each member's partitions, every member of `member_ids` (in member index order) present.
    pub(crate) fn into_group_assignment<'a>(
        self,
        member_ids: impl Iterator<Item = &'a String>,
        topics: &TopicTable,
    ) -> GroupAssignment {
        let mut owned: Vec<Vec<(usize, i32)>> = vec![Vec::new(); self.loads.len()];
        for (topic, owners) in self.owners.iter().enumerate() {
            for (partition, &owner) in owners.iter().enumerate() {
                if owner != NO_OWNER {
                    owned[owner as usize].push((topic, partition as i32));
                }
            }
        }
        member_ids
            .zip(owned)
            .map(|(member_id, partitions)| {
                let mut assignment = MemberAssignment::new();
                for run in partitions.chunk_by(|a, b| a.0 == b.0) {
                    assignment.insert(topics.id(run[0].0), run.iter().map(|&(_, p)| p).collect());
                }
                (member_id.clone(), assignment)
            })
            .collect()
    }
}
