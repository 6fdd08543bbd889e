//! Tests of the server-side assignors: the fixtures here (topics and members named by small
//! numbers, the checks every assignment must pass, counting what moved), then one file of
//! named behaviour tests per assignor, one for the interface, and the property tests.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::{Assignor, GroupAssignment, GroupSpec, MemberAssignment, MemberSpec, TopicMetadata};

mod interface_tests;
mod property_tests;
mod range_tests;
mod uniform_tests;

/// The id of topic number `n` (`t0`, `t1`, …).
pub(crate) fn topic_id(n: u8) -> Uuid {
    Uuid::from_u128(0x7000 + u128::from(n))
}

/// Topics `(number, partition count)`.
pub(crate) fn topics(counts: &[(u8, u32)]) -> BTreeMap<Uuid, TopicMetadata> {
    counts
        .iter()
        .map(|&(n, partitions)| {
            let id = topic_id(n);
            (id, TopicMetadata::new(id, format!("t{n}"), partitions))
        })
        .collect()
}

/// A dynamic member subscribed to the topics numbered `subscribed`, no current assignment.
pub(crate) fn member(subscribed: &[u8]) -> MemberSpec {
    MemberSpec {
        subscribed: subscribed.iter().map(|&n| topic_id(n)).collect(),
        ..MemberSpec::default()
    }
}

/// A group of `(member id, subscribed topic numbers)`, no current assignments.
pub(crate) fn group(members: &[(&str, &[u8])]) -> GroupSpec {
    GroupSpec {
        members: members
            .iter()
            .map(|&(id, subscribed)| (id.to_string(), member(subscribed)))
            .collect(),
    }
}

/// `group` with each member's current assignment taken from `previous` (members `previous`
/// does not name get none).
pub(crate) fn with_current(mut group: GroupSpec, previous: &GroupAssignment) -> GroupSpec {
    for (id, spec) in &mut group.members {
        spec.current = previous.get(id).cloned().unwrap_or_default();
    }
    group
}

/// `(topic number, partitions)` pairs, as test expectations write assignments.
pub(crate) type PartitionList<'a> = [(u8, &'a [i32])];

/// A member assignment from `(topic number, partitions)`.
pub(crate) fn partitions(entries: &PartitionList) -> MemberAssignment {
    entries
        .iter()
        .map(|&(n, parts)| (topic_id(n), parts.iter().copied().collect()))
        .collect()
}

/// A group assignment from `(member id, [(topic number, partitions)])`.
pub(crate) fn group_assignment(members: &[(&str, &PartitionList)]) -> GroupAssignment {
    members
        .iter()
        .map(|(id, entries)| (id.to_string(), partitions(entries)))
        .collect()
}

/// Partition → owning member; panics if a partition has two owners.
pub(crate) fn owners(assignment: &GroupAssignment) -> BTreeMap<(Uuid, i32), &str> {
    let mut owners = BTreeMap::new();
    for (member, topics) in assignment {
        for (topic, parts) in topics {
            for &partition in parts {
                if let Some(other) = owners.insert((*topic, partition), member.as_str()) {
                    panic!("{topic}/{partition} is assigned to both {other} and {member}");
                }
            }
        }
    }
    owners
}

/// How many partitions each member has.
pub(crate) fn loads(assignment: &GroupAssignment) -> BTreeMap<&str, usize> {
    assignment
        .iter()
        .map(|(member, topics)| (member.as_str(), topics.values().map(BTreeSet::len).sum()))
        .collect()
}

/// How many partitions of `after` are not owned by the same member in `before` (a partition
/// that was unowned, or owned by a member now gone, counts as moved).
pub(crate) fn moved(before: &GroupAssignment, after: &GroupAssignment) -> usize {
    let before = owners(before);
    owners(after)
        .iter()
        .filter(|(partition, owner)| before.get(*partition) != Some(*owner))
        .count()
}

/// The checks every assignment must pass, whatever the assignor: every member of the group
/// (and nobody else) is in it; every partition of a topic that exists and that some member
/// subscribes to is assigned exactly once, to a member subscribed to it; nothing else (no
/// unknown topic, no partition past the count, no empty topic entry) is assigned.
pub(crate) fn check_valid(
    group: &GroupSpec,
    topics: &BTreeMap<Uuid, TopicMetadata>,
    assignment: &GroupAssignment,
) {
    assert!(
        group.members.keys().eq(assignment.keys()),
        "members {:?}, assignment for {:?}",
        group.members.keys().collect::<Vec<_>>(),
        assignment.keys().collect::<Vec<_>>()
    );
    let owners = owners(assignment);
    for (member, spec) in &group.members {
        for (topic, parts) in &assignment[member] {
            assert!(!parts.is_empty(), "{member} has an empty entry for {topic}");
            assert!(
                topics.contains_key(topic),
                "{member} got unknown topic {topic}"
            );
            assert!(
                spec.subscribed.contains(topic),
                "{member} got {topic} without subscribing to it"
            );
        }
    }
    let mut expected = BTreeSet::new();
    for (id, topic) in topics {
        if group.members.values().any(|m| m.subscribed.contains(id)) {
            expected.extend((0..topic.partitions as i32).map(|p| (*id, p)));
        }
    }
    let assigned: BTreeSet<(Uuid, i32)> = owners.keys().copied().collect();
    assert_eq!(
        assigned, expected,
        "assigned partitions differ from those to assign"
    );
}
