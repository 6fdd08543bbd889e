//! The uniform assignor, behaviour by behaviour: homogeneous groups (quotas, the minimal set
//! of moves when members join or leave or partitions appear), stale current assignments,
//! heterogeneous groups (only subscribers get a topic, balance across shared topics).

use std::collections::BTreeMap;

use super::*;
use crate::assignor::UniformAssignor;

fn assign(group: &GroupSpec, topics: &BTreeMap<Uuid, TopicMetadata>) -> GroupAssignment {
    let assignment = UniformAssignor.assign(group, topics).unwrap();
    check_valid(group, topics, &assignment);
    assignment
}

#[test]
fn empty_group_gets_an_empty_assignment() {
    let assignment = assign(&GroupSpec::default(), &topics(&[(0, 3)]));
    assert!(assignment.is_empty());
}

#[test]
fn one_member_gets_every_partition_of_the_topics_it_subscribes_to() {
    let group = group(&[("a", &[0, 1])]);
    let assignment = assign(&group, &topics(&[(0, 3), (1, 2), (2, 4)]));
    assert_eq!(
        assignment,
        group_assignment(&[("a", &[(0, &[0, 1, 2]), (1, &[0, 1])])])
    );
}

#[test]
fn with_more_members_than_partitions_the_last_members_get_nothing() {
    let group = group(&[("a", &[0]), ("b", &[0]), ("c", &[0]), ("d", &[0])]);
    let assignment = assign(&group, &topics(&[(0, 2)]));
    assert_eq!(
        assignment,
        group_assignment(&[
            ("a", &[(0, &[0])]),
            ("b", &[(0, &[1])]),
            ("c", &[]),
            ("d", &[]),
        ])
    );
}

#[test]
fn a_fresh_group_gets_balanced_contiguous_runs() {
    let group = group(&[("a", &[0, 1]), ("b", &[0, 1]), ("c", &[0, 1])]);
    let assignment = assign(&group, &topics(&[(0, 4), (1, 3)]));
    assert_eq!(
        assignment,
        group_assignment(&[
            ("a", &[(0, &[0, 1, 2])]),
            ("b", &[(0, &[3]), (1, &[0])]),
            ("c", &[(1, &[1, 2])]),
        ])
    );
}

/// a, b, c with 4 partitions each out of 12.
fn three_members_with_four_each() -> (BTreeMap<Uuid, TopicMetadata>, GroupAssignment) {
    let topics = topics(&[(0, 6), (1, 6)]);
    let group = group(&[("a", &[0, 1]), ("b", &[0, 1]), ("c", &[0, 1])]);
    let assignment = assign(&group, &topics);
    assert_eq!(
        assignment,
        group_assignment(&[
            ("a", &[(0, &[0, 1, 2, 3])]),
            ("b", &[(0, &[4, 5]), (1, &[0, 1])]),
            ("c", &[(1, &[2, 3, 4, 5])]),
        ])
    );
    (topics, assignment)
}

#[test]
fn a_joining_member_takes_one_partition_from_each_member_above_the_new_quota() {
    let (topics, before) = three_members_with_four_each();
    let joined = with_current(
        group(&[
            ("a", &[0, 1]),
            ("b", &[0, 1]),
            ("c", &[0, 1]),
            ("d", &[0, 1]),
        ]),
        &before,
    );
    let after = assign(&joined, &topics);
    // Quota 3: each of a, b, c gives up its last partition, nothing else moves.
    assert_eq!(
        after,
        group_assignment(&[
            ("a", &[(0, &[0, 1, 2])]),
            ("b", &[(0, &[4, 5]), (1, &[0])]),
            ("c", &[(1, &[2, 3, 4])]),
            ("d", &[(0, &[3]), (1, &[1, 5])]),
        ])
    );
    assert_eq!(moved(&before, &after), 3);
}

#[test]
fn a_leaving_member_hands_out_only_its_own_partitions() {
    let (topics, three) = three_members_with_four_each();
    let four = assign(
        &with_current(
            group(&[
                ("a", &[0, 1]),
                ("b", &[0, 1]),
                ("c", &[0, 1]),
                ("d", &[0, 1]),
            ]),
            &three,
        ),
        &topics,
    );
    let after = assign(
        &with_current(
            group(&[("a", &[0, 1]), ("c", &[0, 1]), ("d", &[0, 1])]),
            &four,
        ),
        &topics,
    );
    assert_eq!(moved(&four, &after), loads(&four)["b"]);
    let previous_owners = owners(&four);
    for (partition, owner) in owners(&after) {
        if previous_owners[&partition] != owner {
            assert_eq!(previous_owners[&partition], "b", "{partition:?} moved");
        }
    }
    assert_eq!(
        after,
        group_assignment(&[
            ("a", &[(0, &[0, 1, 2, 4])]),
            ("c", &[(0, &[5]), (1, &[2, 3, 4])]),
            ("d", &[(0, &[3]), (1, &[0, 1, 5])]),
        ])
    );
}

#[test]
fn a_balanced_assignment_stays_put_even_when_the_larger_quota_is_not_on_the_first_member() {
    // 10 partitions over 3 members: one of them holds 4. Kafka gives the larger quota to
    // whichever member it meets first, and would move one of c's partitions to a.
    let topics = topics(&[(0, 10)]);
    let mut group = group(&[("a", &[0]), ("b", &[0]), ("c", &[0])]);
    let current = group_assignment(&[
        ("a", &[(0, &[0, 1, 2])]),
        ("b", &[(0, &[3, 4, 5])]),
        ("c", &[(0, &[6, 7, 8, 9])]),
    ]);
    group = with_current(group, &current);
    assert_eq!(assign(&group, &topics), current);
}

#[test]
fn new_partitions_go_to_members_below_the_new_quota_and_nothing_else_moves() {
    let mut topics = topics(&[(0, 4)]);
    let group = group(&[("a", &[0]), ("b", &[0])]);
    let before = assign(&group, &topics);
    topics.get_mut(&topic_id(0)).unwrap().partitions = 7;
    let after = assign(&with_current(group, &before), &topics);
    assert_eq!(
        after,
        group_assignment(&[("a", &[(0, &[0, 1, 4, 5])]), ("b", &[(0, &[2, 3, 6])]),])
    );
    assert_eq!(moved(&before, &after), 3);
}

#[test]
fn a_deleted_topic_is_dropped_from_the_current_assignments() {
    let mut topics = topics(&[(0, 4), (1, 4)]);
    let group = group(&[("a", &[0, 1]), ("b", &[0, 1])]);
    let before = assign(&group, &topics);
    assert_eq!(before["b"], partitions(&[(1, &[0, 1, 2, 3])]));
    topics.remove(&topic_id(1));
    // Both still name t1 in their subscription and b in its current assignment.
    let after = assign(&with_current(group, &before), &topics);
    assert_eq!(
        after,
        group_assignment(&[("a", &[(0, &[0, 1])]), ("b", &[(0, &[2, 3])]),])
    );
}

#[test]
fn stale_and_conflicting_current_entries_are_dropped() {
    let topics = topics(&[(0, 3), (1, 2)]);
    let mut group = group(&[("a", &[0, 5]), ("b", &[0])]);
    let a = group.members.get_mut("a").unwrap();
    // Negative, past the count, an unknown topic.
    a.current = partitions(&[(0, &[-1, 0, 5]), (9, &[0])]);
    let b = group.members.get_mut("b").unwrap();
    // t0/0 is a's too (a sorts first and keeps it); t1 exists but b does not subscribe.
    b.current = partitions(&[(0, &[0, 1]), (1, &[0])]);
    let assignment = assign(&group, &topics);
    assert_eq!(
        assignment,
        group_assignment(&[("a", &[(0, &[0, 2])]), ("b", &[(0, &[1])]),])
    );
}

#[test]
fn a_subscription_to_a_topic_that_does_not_exist_is_ignored() {
    let group = group(&[("a", &[0, 9]), ("b", &[0])]);
    let assignment = assign(&group, &topics(&[(0, 4)]));
    assert_eq!(
        assignment,
        group_assignment(&[("a", &[(0, &[0, 1])]), ("b", &[(0, &[2, 3])]),])
    );
}

#[test]
fn a_topic_without_partitions_assigns_nothing() {
    let group = group(&[("a", &[0]), ("b", &[0, 1])]);
    let assignment = assign(&group, &topics(&[(0, 0), (1, 1)]));
    assert_eq!(
        assignment,
        group_assignment(&[("a", &[]), ("b", &[(1, &[0])]),])
    );
}

#[test]
fn heterogeneous_partitions_go_only_to_subscribers_and_balance_across_the_shared_member() {
    // b shares t0 with a and t1 with c: balance needs b to take from both.
    let topics = topics(&[(0, 6), (1, 6)]);
    let group = group(&[("a", &[0]), ("b", &[0, 1]), ("c", &[1]), ("d", &[])]);
    let assignment = assign(&group, &topics);
    assert_eq!(
        loads(&assignment),
        BTreeMap::from([("a", 4), ("b", 4), ("c", 4), ("d", 0)])
    );
    assert_eq!(assignment["a"].keys().collect::<Vec<_>>(), [&topic_id(0)]);
    assert_eq!(assignment["c"].keys().collect::<Vec<_>>(), [&topic_id(1)]);
}

#[test]
fn a_member_joining_a_heterogeneous_group_takes_only_what_balance_needs() {
    let topics = topics(&[(0, 6), (1, 6)]);
    let before = assign(&group(&[("a", &[0]), ("b", &[0, 1]), ("c", &[1])]), &topics);
    let joined = with_current(
        group(&[("a", &[0]), ("b", &[0, 1]), ("c", &[1]), ("d", &[0, 1])]),
        &before,
    );
    let after = assign(&joined, &topics);
    assert_eq!(
        loads(&after),
        BTreeMap::from([("a", 3), ("b", 3), ("c", 3), ("d", 3)])
    );
    assert_eq!(moved(&before, &after), 3);
}

#[test]
fn a_subscription_change_moves_the_dropped_topic_and_rebalances_the_rest() {
    let topics = topics(&[(0, 3), (1, 3)]);
    let before = assign(
        &group(&[("a", &[0, 1]), ("b", &[0, 1]), ("c", &[0, 1])]),
        &topics,
    );
    assert_eq!(before["c"], partitions(&[(1, &[1, 2])]));
    // c now reads t0 only: its two t1 partitions must go, and it must get two of t0's.
    let changed = with_current(
        group(&[("a", &[0, 1]), ("b", &[0, 1]), ("c", &[0])]),
        &before,
    );
    let after = assign(&changed, &topics);
    assert_eq!(
        after,
        group_assignment(&[
            ("a", &[(0, &[0]), (1, &[1])]),
            ("b", &[(1, &[0, 2])]),
            ("c", &[(0, &[1, 2])]),
        ])
    );
    assert_eq!(moved(&before, &after), 4);
}

#[test]
fn the_same_input_gives_the_same_output() {
    let topics = topics(&[(0, 7), (1, 5), (2, 9)]);
    let group = group(&[
        ("m1", &[0, 1]),
        ("m2", &[1, 2]),
        ("m3", &[0, 2]),
        ("m4", &[0, 1, 2]),
    ]);
    let first = assign(&group, &topics);
    assert_eq!(assign(&group.clone(), &topics.clone()), first);
    let again = with_current(group, &first);
    assert_eq!(assign(&again, &topics), assign(&again, &topics));
}
