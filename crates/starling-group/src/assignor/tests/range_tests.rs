//! The range assignor, behaviour by behaviour: per-topic contiguous ranges in member order,
//! co-partitioning, static members first by instance id, and — as in Kafka 4 — a fresh
//! computation every time, whatever the current assignment.

use std::collections::BTreeMap;

use super::*;
use crate::assignor::RangeAssignor;

fn assign(group: &GroupSpec, topics: &BTreeMap<Uuid, TopicMetadata>) -> GroupAssignment {
    let assignment = RangeAssignor.assign(group, topics).unwrap();
    check_valid(group, topics, &assignment);
    assignment
}

fn static_member(instance_id: &str, subscribed: &[u8]) -> MemberSpec {
    MemberSpec {
        instance_id: Some(instance_id.to_string()),
        ..member(subscribed)
    }
}

/// A group of static members `(member id, instance id)` subscribed to `subscribed`.
fn static_group(members: &[(&str, &str)], subscribed: &[u8]) -> GroupSpec {
    GroupSpec {
        members: members
            .iter()
            .map(|&(id, instance)| (id.to_string(), static_member(instance, subscribed)))
            .collect(),
    }
}

#[test]
fn empty_group_gets_an_empty_assignment() {
    assert!(assign(&GroupSpec::default(), &topics(&[(0, 3)])).is_empty());
}

#[test]
fn one_member_gets_every_partition_of_the_topics_it_subscribes_to() {
    let assignment = assign(
        &group(&[("a", &[0, 1])]),
        &topics(&[(0, 3), (1, 2), (2, 4)]),
    );
    assert_eq!(
        assignment,
        group_assignment(&[("a", &[(0, &[0, 1, 2]), (1, &[0, 1])])])
    );
}

#[test]
fn with_more_members_than_partitions_the_last_members_get_nothing() {
    let group = group(&[("a", &[0]), ("b", &[0]), ("c", &[0])]);
    let assignment = assign(&group, &topics(&[(0, 2)]));
    assert_eq!(
        assignment,
        group_assignment(&[("a", &[(0, &[0])]), ("b", &[(0, &[1])]), ("c", &[])])
    );
}

#[test]
fn co_partitioned_topics_give_each_member_the_same_partition_numbers() {
    // Kafka's own example: two members, two topics of three partitions.
    let group = group(&[("m0", &[1, 2]), ("m1", &[1, 2])]);
    let assignment = assign(&group, &topics(&[(1, 3), (2, 3)]));
    assert_eq!(
        assignment,
        group_assignment(&[
            ("m0", &[(1, &[0, 1]), (2, &[0, 1])]),
            ("m1", &[(1, &[2]), (2, &[2])]),
        ])
    );
}

#[test]
fn a_joining_member_gets_the_last_range_and_the_ranges_before_shift() {
    let topics = topics(&[(0, 6)]);
    let before = assign(&group(&[("a", &[0]), ("b", &[0])]), &topics);
    assert_eq!(
        before,
        group_assignment(&[("a", &[(0, &[0, 1, 2])]), ("b", &[(0, &[3, 4, 5])])])
    );
    let joined = with_current(group(&[("a", &[0]), ("b", &[0]), ("c", &[0])]), &before);
    let after = assign(&joined, &topics);
    assert_eq!(
        after,
        group_assignment(&[
            ("a", &[(0, &[0, 1])]),
            ("b", &[(0, &[2, 3])]),
            ("c", &[(0, &[4, 5])]),
        ])
    );
    // 2→b, 4→c, 5→c: one more than the two a sticky assignor would move. Kafka 4's range
    // assignor recomputes the ranges; it does not keep partitions within the quota.
    assert_eq!(moved(&before, &after), 3);
}

#[test]
fn a_leaving_member_closes_the_gap_between_the_ranges() {
    let topics = topics(&[(0, 6)]);
    let before = assign(&group(&[("a", &[0]), ("b", &[0]), ("c", &[0])]), &topics);
    let after = assign(
        &with_current(group(&[("a", &[0]), ("c", &[0])]), &before),
        &topics,
    );
    assert_eq!(
        after,
        group_assignment(&[("a", &[(0, &[0, 1, 2])]), ("c", &[(0, &[3, 4, 5])])])
    );
    assert_eq!(moved(&before, &after), 2);
}

#[test]
fn static_members_come_first_in_instance_id_order() {
    let mut group = group(&[("a", &[0])]);
    group.members.insert("b".into(), static_member("i2", &[0]));
    group.members.insert("c".into(), static_member("i1", &[0]));
    let assignment = assign(&group, &topics(&[(0, 4)]));
    assert_eq!(
        assignment,
        group_assignment(&[
            ("a", &[(0, &[3])]),
            ("b", &[(0, &[2])]),
            ("c", &[(0, &[0, 1])]),
        ])
    );
}

#[test]
fn a_static_member_back_under_a_new_member_id_gets_its_ranges_back() {
    let topics = topics(&[(0, 4)]);
    let first = assign(&static_group(&[("m1", "x"), ("m2", "y")], &[0]), &topics);
    assert_eq!(
        first,
        group_assignment(&[("m1", &[(0, &[0, 1])]), ("m2", &[(0, &[2, 3])])])
    );
    // Instance x restarts as m3, which sorts after m2.
    let second = assign(&static_group(&[("m2", "y"), ("m3", "x")], &[0]), &topics);
    assert_eq!(
        second,
        group_assignment(&[("m2", &[(0, &[2, 3])]), ("m3", &[(0, &[0, 1])])])
    );
}

#[test]
fn heterogeneous_ranges_are_split_among_each_topics_subscribers() {
    let group = group(&[("a", &[0]), ("b", &[0, 1]), ("c", &[1]), ("d", &[])]);
    let assignment = assign(&group, &topics(&[(0, 3), (1, 4)]));
    assert_eq!(
        assignment,
        group_assignment(&[
            ("a", &[(0, &[0, 1])]),
            ("b", &[(0, &[2]), (1, &[0, 1])]),
            ("c", &[(1, &[2, 3])]),
            ("d", &[]),
        ])
    );
}

#[test]
fn a_subscription_change_recomputes_the_ranges_of_both_topics() {
    let topics = topics(&[(0, 4), (1, 4)]);
    let before = assign(&group(&[("a", &[0, 1]), ("b", &[0, 1])]), &topics);
    let after = assign(
        &with_current(group(&[("a", &[0, 1]), ("b", &[1])]), &before),
        &topics,
    );
    assert_eq!(
        after,
        group_assignment(&[
            ("a", &[(0, &[0, 1, 2, 3]), (1, &[0, 1])]),
            ("b", &[(1, &[2, 3])])
        ])
    );
}

#[test]
fn a_deleted_topic_disappears_from_the_assignment() {
    let mut topics = topics(&[(0, 2), (1, 2)]);
    let group = group(&[("a", &[0, 1]), ("b", &[0, 1])]);
    let before = assign(&group, &topics);
    topics.remove(&topic_id(1));
    let after = assign(&with_current(group, &before), &topics);
    assert_eq!(
        after,
        group_assignment(&[("a", &[(0, &[0])]), ("b", &[(0, &[1])])])
    );
}

#[test]
fn grown_partition_counts_are_split_again() {
    let mut topics = topics(&[(0, 3)]);
    let group = group(&[("a", &[0]), ("b", &[0])]);
    let before = assign(&group, &topics);
    assert_eq!(
        before,
        group_assignment(&[("a", &[(0, &[0, 1])]), ("b", &[(0, &[2])])])
    );
    topics.get_mut(&topic_id(0)).unwrap().partitions = 5;
    let after = assign(&with_current(group, &before), &topics);
    assert_eq!(
        after,
        group_assignment(&[("a", &[(0, &[0, 1, 2])]), ("b", &[(0, &[3, 4])])])
    );
}

#[test]
fn the_current_assignment_does_not_change_the_result() {
    let topics = topics(&[(0, 5), (1, 3)]);
    let fresh = group(&[("a", &[0, 1]), ("b", &[0]), ("c", &[0, 1])]);
    let mut with_odd_current = fresh.clone();
    with_odd_current.members.get_mut("c").unwrap().current = partitions(&[(0, &[0, 1, 2, 3, 4])]);
    assert_eq!(assign(&with_odd_current, &topics), assign(&fresh, &topics));
}

#[test]
fn the_same_input_gives_the_same_output() {
    let topics = topics(&[(0, 7), (1, 5), (2, 9)]);
    let mut group = group(&[("m1", &[0, 1]), ("m2", &[1, 2]), ("m4", &[0, 1, 2])]);
    group
        .members
        .insert("m3".into(), static_member("s", &[0, 2]));
    let first = assign(&group, &topics);
    assert_eq!(assign(&group.clone(), &topics.clone()), first);
}
