//! Property tests: random groups, topics and current assignments (stale ones included), then
//! random sequences of changes — members join, leave or change subscription, topics grow,
//! appear or disappear, or nothing happens — each assignment fed back as the next `current`.
//! After every step:
//!
//! * both assignors: every member is in the result; every partition of a subscribed topic is
//!   assigned exactly once, only to a member subscribed to its topic; no unknown topic, no
//!   partition past the count ([`check_valid`]); the same input gives the same output;
//! * uniform, any group: no single move of a partition between two subscribers of its topic
//!   would even out their loads (load of the holder ≤ load of any other subscriber + 1), and
//!   assigning again with the result as `current` changes nothing;
//! * uniform, homogeneous group (same existing topics for all): loads differ by at most one,
//!   and the number of partitions that changed owner is exactly the minimum any balanced
//!   assignment needs, computed from what each member validly held;
//! * range: each topic is cut into contiguous ranges over its subscribers in range order
//!   (static members by instance id, then member id), `P / S` each and one more for the first
//!   `P % S`.
//!
//! Besides, resolving a subscription against the topics (a galloping merge of two sorted
//! lists) finds exactly the subscribed topics that exist, as one lookup per topic would.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::assignor::{RangeAssignor, TopicTable, UniformAssignor};

/// Topics `t0..t3` may exist; bit 4 of a subscription mask names `t9`, which never does.
const TOPIC_NUMBERS: u8 = 4;
const UNKNOWN_TOPIC: u8 = 9;
/// Members are `m0..m7`.
const MEMBER_POOL: usize = 8;

#[derive(Debug, Clone)]
enum Change {
    /// The first absent pool member at or after `member` joins (with the world's shared
    /// subscription if it has one).
    Join {
        member: usize,
        subscription: u8,
    },
    /// The `member`-th present member (modulo) leaves.
    Leave {
        member: usize,
    },
    /// The `member`-th present member (modulo) changes its subscription.
    Resubscribe {
        member: usize,
        subscription: u8,
    },
    Grow {
        topic: u8,
        by: u32,
    },
    Delete {
        topic: u8,
    },
    Create {
        topic: u8,
        partitions: u32,
    },
    /// Nothing changes: the assignment is computed again.
    Reassign,
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        3 => (0..MEMBER_POOL, 0..32u8)
            .prop_map(|(member, subscription)| Change::Join { member, subscription }),
        3 => (0..MEMBER_POOL).prop_map(|member| Change::Leave { member }),
        2 => (0..MEMBER_POOL, 0..32u8)
            .prop_map(|(member, subscription)| Change::Resubscribe { member, subscription }),
        2 => (0..TOPIC_NUMBERS, 1..6u32).prop_map(|(topic, by)| Change::Grow { topic, by }),
        1 => (0..TOPIC_NUMBERS).prop_map(|topic| Change::Delete { topic }),
        1 => (0..TOPIC_NUMBERS, 0..10u32)
            .prop_map(|(topic, partitions)| Change::Create { topic, partitions }),
        1 => Just(Change::Reassign),
    ]
}

/// Changes that keep a homogeneous group homogeneous and its partitions valid.
fn homogeneous_change() -> impl Strategy<Value = Change> {
    prop_oneof![
        3 => (0..MEMBER_POOL).prop_map(|member| Change::Join { member, subscription: 0 }),
        3 => (0..MEMBER_POOL).prop_map(|member| Change::Leave { member }),
        2 => (0..TOPIC_NUMBERS, 1..6u32).prop_map(|(topic, by)| Change::Grow { topic, by }),
        1 => Just(Change::Reassign),
    ]
}

fn member_id(index: usize) -> String {
    format!("m{index}")
}

/// Every other pool member is static, with instance ids sorting the other way round.
fn instance_id(index: usize) -> Option<String> {
    (index % 2 == 1).then(|| format!("i{}", MEMBER_POOL - index))
}

fn topic_numbers(mask: u8) -> Vec<u8> {
    (0..=TOPIC_NUMBERS)
        .filter(|bit| mask & (1 << bit) != 0)
        .map(|bit| {
            if bit == TOPIC_NUMBERS {
                UNKNOWN_TOPIC
            } else {
                bit
            }
        })
        .collect()
}

fn spec(index: usize, mask: u8) -> MemberSpec {
    MemberSpec {
        instance_id: instance_id(index),
        ..member(&topic_numbers(mask))
    }
}

/// The scenario's state between steps.
#[derive(Debug, Clone)]
struct World {
    topics: BTreeMap<Uuid, TopicMetadata>,
    group: GroupSpec,
    /// The subscription mask of every member of a homogeneous world, joiners included.
    shared_subscription: Option<u8>,
}

impl World {
    fn new(
        counts: &[Option<u32>],
        members: &BTreeMap<usize, (u8, BTreeMap<u8, BTreeSet<i32>>)>,
        shared_subscription: Option<u8>,
    ) -> World {
        let existing: Vec<(u8, u32)> = (0..TOPIC_NUMBERS)
            .zip(counts)
            .filter_map(|(n, count)| count.map(|c| (n, c)))
            .collect();
        let group = GroupSpec {
            members: members
                .iter()
                .map(|(&index, (mask, current))| {
                    let mut spec = spec(index, *mask);
                    spec.current = current
                        .iter()
                        .map(|(&n, parts)| (topic_id(n), parts.clone()))
                        .collect();
                    (member_id(index), spec)
                })
                .collect(),
        };
        World {
            topics: topics(&existing),
            group,
            shared_subscription,
        }
    }

    fn apply(&mut self, change: &Change) {
        let present: Vec<String> = self.group.members.keys().cloned().collect();
        match *change {
            Change::Join {
                member,
                subscription,
            } => {
                let absent = (0..MEMBER_POOL)
                    .map(|offset| (member + offset) % MEMBER_POOL)
                    .find(|&index| !self.group.members.contains_key(&member_id(index)));
                if let Some(index) = absent {
                    let mask = self.shared_subscription.unwrap_or(subscription);
                    self.group
                        .members
                        .insert(member_id(index), spec(index, mask));
                }
            }
            Change::Leave { member } if !present.is_empty() => {
                self.group.members.remove(&present[member % present.len()]);
            }
            Change::Resubscribe {
                member: which,
                subscription,
            } if !present.is_empty() => {
                let spec = self.group.members.get_mut(&present[which % present.len()]);
                spec.unwrap().subscribed = member(&topic_numbers(subscription)).subscribed;
            }
            Change::Grow { topic, by } => {
                if let Some(metadata) = self.topics.get_mut(&topic_id(topic)) {
                    metadata.partitions += by;
                }
            }
            Change::Delete { topic } => {
                self.topics.remove(&topic_id(topic));
            }
            Change::Create { topic, partitions } => {
                let id = topic_id(topic);
                self.topics
                    .entry(id)
                    .or_insert_with(|| TopicMetadata::new(id, format!("t{topic}"), partitions));
            }
            _ => {}
        }
    }

    /// The member's subscription restricted to topics that exist.
    fn existing_subscription(&self, spec: &MemberSpec) -> BTreeSet<Uuid> {
        spec.subscribed
            .iter()
            .filter(|id| self.topics.contains_key(id))
            .copied()
            .collect()
    }

    fn is_homogeneous(&self) -> bool {
        let mut subscriptions = self
            .group
            .members
            .values()
            .map(|spec| self.existing_subscription(spec));
        let first = subscriptions.next();
        subscriptions.all(|s| Some(s) == first)
    }

    /// How many of each member's current partitions are still valid for it.
    fn valid_current_counts(&self) -> Vec<usize> {
        self.group
            .members
            .values()
            .map(|spec| {
                let subscribed = self.existing_subscription(spec);
                spec.current
                    .iter()
                    .filter(|(id, _)| subscribed.contains(id))
                    .map(|(id, parts)| {
                        let count = self.topics[id].partitions as i32;
                        parts.range(0..count).count()
                    })
                    .sum()
            })
            .collect()
    }

    /// The fewest partitions that must change owner for a balanced homogeneous assignment:
    /// each member keeps at most its quota of what it validly holds, and the `P % M` larger
    /// quotas are worth one more to members holding more than `P / M`.
    fn minimum_moves(&self) -> usize {
        let held = self.valid_current_counts();
        let subscribed = match self.group.members.values().next() {
            Some(first) => self.existing_subscription(first),
            None => return 0,
        };
        let total: usize = subscribed
            .iter()
            .map(|id| self.topics[id].partitions as usize)
            .sum();
        let (quota, extra) = (total / held.len(), total % held.len());
        let keep = held.iter().map(|&h| h.min(quota)).sum::<usize>()
            + held.iter().filter(|&&h| h > quota).count().min(extra);
        total - keep
    }
}

/// Runs `changes` from `world` with `assignor`, checking every step with `check_step`
/// (given the world assigned, the previous step's assignment — now its `current` — and the
/// new assignment).
fn run(
    assignor: &dyn Assignor,
    mut world: World,
    changes: &[Change],
    check_step: impl Fn(&World, Option<&GroupAssignment>, &GroupAssignment),
) {
    let mut previous: Option<GroupAssignment> = None;
    for step in 0..=changes.len() {
        if step > 0 {
            world.apply(&changes[step - 1]);
            world.group = with_current(world.group.clone(), previous.as_ref().unwrap());
        }
        let assignment = assignor.assign(&world.group, &world.topics).unwrap();
        check_valid(&world.group, &world.topics, &assignment);
        assert_eq!(
            assignor.assign(&world.group, &world.topics).unwrap(),
            assignment,
            "not deterministic"
        );
        check_step(&world, previous.as_ref(), &assignment);
        previous = Some(assignment);
    }
}

/// Uniform: no single move between two subscribers of a topic evens out their loads, a
/// homogeneous group is balanced to within one and moved the minimum since `previous`, and
/// assigning again changes nothing.
fn check_uniform_step(
    world: &World,
    previous: Option<&GroupAssignment>,
    assignment: &GroupAssignment,
) {
    let loads = loads(assignment);
    for id in world.topics.keys() {
        let subscribers: Vec<&str> = world
            .group
            .members
            .iter()
            .filter(|(_, spec)| spec.subscribed.contains(id))
            .map(|(member, _)| member.as_str())
            .collect();
        let Some(lightest) = subscribers.iter().map(|m| loads[m]).min() else {
            continue;
        };
        for holder in subscribers
            .iter()
            .filter(|m| assignment[**m].contains_key(id))
        {
            assert!(
                loads[holder] <= lightest + 1,
                "{holder} holds {} with a subscriber of {id} holding {lightest}: {assignment:?}",
                loads[holder]
            );
        }
    }
    if world.is_homogeneous() {
        let (min, max) = (loads.values().min(), loads.values().max());
        if let (Some(min), Some(max)) = (min, max) {
            assert!(max - min <= 1, "unbalanced: {loads:?}");
        }
        if let Some(previous) = previous {
            assert_eq!(
                moved(previous, assignment),
                world.minimum_moves(),
                "moves from {previous:?} to {assignment:?}"
            );
        }
    }
    let again = with_current(world.group.clone(), assignment);
    assert_eq!(
        UniformAssignor.assign(&again, &world.topics).unwrap(),
        *assignment,
        "assigning again moved partitions"
    );
}

/// Range: contiguous ranges over each topic's subscribers in range order.
fn check_range_step(world: &World, _: Option<&GroupAssignment>, assignment: &GroupAssignment) {
    let mut order: Vec<(&String, &MemberSpec)> = world.group.members.iter().collect();
    order.sort_by_key(|(member, spec)| {
        (
            spec.instance_id.is_none(),
            spec.instance_id.clone(),
            *member,
        )
    });
    for (id, topic) in &world.topics {
        let subscribers: Vec<&String> = order
            .iter()
            .filter(|(_, spec)| spec.subscribed.contains(id))
            .map(|(member, _)| *member)
            .collect();
        if subscribers.is_empty() {
            continue;
        }
        let partitions = topic.partitions as usize;
        let (quota, extra) = (
            partitions / subscribers.len(),
            partitions % subscribers.len(),
        );
        let mut start = 0;
        for (position, member) in subscribers.iter().enumerate() {
            let end = start + quota + usize::from(position < extra);
            let expected: BTreeSet<i32> = (start as i32..end as i32).collect();
            let got = assignment[*member].get(id).cloned().unwrap_or_default();
            assert_eq!(got, expected, "{member}'s range of {id} in {assignment:?}");
            start = end;
        }
    }
}

fn current_assignment() -> impl Strategy<Value = BTreeMap<u8, BTreeSet<i32>>> {
    prop::collection::btree_map(
        0..=TOPIC_NUMBERS,
        prop::collection::btree_set(-1..14i32, 0..5),
        0..3,
    )
    .prop_map(|current| {
        current
            .into_iter()
            .map(|(n, parts)| (if n == TOPIC_NUMBERS { UNKNOWN_TOPIC } else { n }, parts))
            .collect()
    })
}

fn world() -> impl Strategy<Value = World> {
    (
        prop::collection::vec(
            prop::option::weighted(0.8, 0..12u32),
            TOPIC_NUMBERS as usize,
        ),
        prop::collection::btree_map(0..MEMBER_POOL, (0..32u8, current_assignment()), 0..6),
    )
        .prop_map(|(counts, members)| World::new(&counts, &members, None))
}

/// Every member subscribed to the same topics, which all exist; no current assignment.
fn homogeneous_world() -> impl Strategy<Value = World> {
    (
        prop::collection::vec(0..16u32, TOPIC_NUMBERS as usize),
        1..16u8,
        prop::collection::btree_set(0..MEMBER_POOL, 1..6),
    )
        .prop_map(|(counts, mask, members)| {
            let counts: Vec<Option<u32>> = counts.into_iter().map(Some).collect();
            let members = members
                .into_iter()
                .map(|index| (index, (mask, BTreeMap::new())))
                .collect();
            World::new(&counts, &members, Some(mask))
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn resolving_a_subscription_finds_exactly_the_topics_that_exist(
        existing in prop::collection::btree_set(0..200u8, 0..120),
        subscribed in prop::collection::btree_set(0..200u8, 0..120),
    ) {
        let counts: Vec<(u8, u32)> = existing.iter().map(|&n| (n, 1)).collect();
        let table = TopicTable::new(&topics(&counts)).unwrap();
        let subscribed: BTreeSet<Uuid> = subscribed.iter().map(|&n| topic_id(n)).collect();
        let expected: Vec<usize> = subscribed.iter().filter_map(|id| table.index_of(id)).collect();
        prop_assert_eq!(table.resolve(&subscribed), expected);
    }

    #[test]
    fn uniform_assignments_stay_valid_balanced_and_sticky(
        world in world(),
        changes in prop::collection::vec(change(), 0..12),
    ) {
        run(&UniformAssignor, world, &changes, check_uniform_step);
    }

    #[test]
    fn uniform_homogeneous_groups_move_exactly_the_minimum(
        world in homogeneous_world(),
        changes in prop::collection::vec(homogeneous_change(), 1..12),
    ) {
        run(&UniformAssignor, world, &changes, check_uniform_step);
    }

    #[test]
    fn range_assignments_stay_valid_contiguous_ranges(
        world in world(),
        changes in prop::collection::vec(change(), 0..12),
    ) {
        run(&RangeAssignor, world, &changes, check_range_step);
    }
}
