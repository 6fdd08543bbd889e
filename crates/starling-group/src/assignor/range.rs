//! The range assignor (`"range"`), after Kafka 4's server-side `RangeAssignor`.
//!
//! Per topic, the members subscribed to it share its partitions in contiguous ranges, in
//! member order: with `P` partitions and `S` subscribers each gets `P / S` and the first
//! `P % S` one more, so a topic with fewer partitions than subscribers leaves the last ones
//! without. Member order puts static members first, by `group.instance.id`, then the others
//! by member id. Topics with the same partition count and the same subscribers are
//! therefore co-partitioned: each member gets the same partition numbers of each.
//!
//! Like Kafka's since 3.9 (KAFKA-16944), the assignment is recomputed from scratch every time
//! and ignores [`MemberSpec::current`](super::MemberSpec::current): keeping partitions within
//! a quota, as the first KIP-848 range assignor did, cannot be squared with co-partitioning.
//! What stays put is what the member order keeps: a restarted static member keeps its
//! instance id, hence its place and its ranges, as long as the group and the topics do not
//! change otherwise. Rack awareness is not implemented.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use uuid::Uuid;

use super::{
    subscribers_per_topic, Assignor, AssignorError, GroupAssignment, GroupSpec, MemberAssignment,
    MemberSpec, Subscriptions, TopicMetadata, TopicTable, RANGE_ASSIGNOR_NAME,
};

/// Kafka's server-side `RangeAssignor`: see the module documentation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RangeAssignor;

impl Assignor for RangeAssignor {
    fn name(&self) -> &'static str {
        RANGE_ASSIGNOR_NAME
    }

    fn assign(
        &self,
        group: &GroupSpec,
        topics: &BTreeMap<Uuid, TopicMetadata>,
    ) -> Result<GroupAssignment, AssignorError> {
        let topics = TopicTable::new(topics)?;
        let members: Vec<&MemberSpec> = group.members.values().collect();
        let order = range_order(&members);
        let mut assignments = vec![MemberAssignment::new(); members.len()];
        match Subscriptions::of(&members, &topics) {
            Subscriptions::Homogeneous(subscribed) => {
                for topic in subscribed {
                    assign_ranges(&topics, topic, order.iter().copied(), &mut assignments);
                }
            }
            Subscriptions::Heterogeneous(per_member) => {
                let subscribers =
                    subscribers_per_topic(topics.len(), &per_member, order.iter().copied());
                for (topic, subscribers) in subscribers.iter().enumerate() {
                    let subscribers = subscribers.iter().map(|&m| m as usize);
                    assign_ranges(&topics, topic, subscribers, &mut assignments);
                }
            }
        }
        Ok(group.members.keys().cloned().zip(assignments).collect())
    }
}

/// Member indexes (member id order) in range order: static members first, by instance id
/// (ties, which a valid group never has, by member id), then dynamic members by member id.
fn range_order(members: &[&MemberSpec]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..members.len()).collect();
    order.sort_by(
        |&a, &b| match (&members[a].instance_id, &members[b].instance_id) {
            (Some(instance_a), Some(instance_b)) => instance_a.cmp(instance_b).then(a.cmp(&b)),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => a.cmp(&b),
        },
    );
    order
}

/// Splits `topic`'s partitions into contiguous ranges over `subscribers` (in range order):
/// `P / S` each, one more for the first `P % S`.
fn assign_ranges(
    topics: &TopicTable,
    topic: usize,
    subscribers: impl ExactSizeIterator<Item = usize>,
    assignments: &mut [MemberAssignment],
) {
    if subscribers.len() == 0 {
        return;
    }
    let partitions = topics.partition_count(topic) as usize;
    let (quota, extra) = (
        partitions / subscribers.len(),
        partitions % subscribers.len(),
    );
    let mut start = 0;
    for (position, member) in subscribers.enumerate() {
        let size = (quota + usize::from(position < extra)) as i32;
        if size == 0 {
            break;
        }
        assignments[member].insert(topics.id(topic), (start..start + size).collect());
        start += size;
    }
}
