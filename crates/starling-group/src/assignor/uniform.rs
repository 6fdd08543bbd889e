//! The uniform assignor (`"uniform"`, Kafka's default server-side assignor): balanced first,
//! sticky second, after Kafka 4's `UniformAssignor` and its two builders.
//!
//! * **Homogeneous groups** (every member subscribes to the same existing topics): with `P`
//!   partitions and `M` members, every member gets `P / M` partitions and `P % M` of them one
//!   more. Members keep as many of their current partitions as that quota allows, and the
//!   `P % M` larger quotas go to the members that already hold more than `P / M`, so exactly
//!   the minimum number of partitions changes owner: a joining member takes partitions only
//!   from members above their quota, a leaving member's partitions are the only ones handed
//!   out. (Kafka hands the larger quotas to whichever members come first, which can move a
//!   partition more than needed.) What a member must give up is its last partitions in
//!   (topic id, partition) order; what is handed out goes, in that order, to the members below
//!   quota in member id order, so a fresh group gets contiguous runs.
//! * **Heterogeneous groups**: a partition only goes to a member subscribed to its topic.
//!   Members keep their current partitions where still valid; the partitions left over go,
//!   topic by topic, each to the least-loaded subscriber of its topic; then, topic by topic,
//!   partitions move from the most-loaded subscriber holding one to the least-loaded
//!   subscriber while that narrows the gap (load difference of two or more), over and over
//!   until a whole round of topics moves nothing (or [`MAX_BALANCE_ROUNDS`] rounds). Topics
//!   are taken in Kafka's order: most partitions per subscriber first, then fewest
//!   subscribers, then topic id. As in Kafka, the result is balanced per topic — no single
//!   move between two subscribers of a topic makes them more even — which is as balanced as
//!   the subscriptions allow when subscribers of a topic share their subscriptions, and close
//!   to it when subscriptions only overlap.
//!
//! Rack awareness is not implemented (Starling runs one rack); [`MemberSpec::rack`] is ignored.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use uuid::Uuid;

use super::{
    subscribers_per_topic, valid_current, Assignor, AssignorError, GroupAssignment, GroupSpec,
    MemberSpec, PartitionOwners, Subscriptions, TopicMetadata, TopicTable, UNIFORM_ASSIGNOR_NAME,
};

/// How many rounds over the topics the heterogeneous balancing makes at most (Kafka's limit).
/// Subscribers that share their subscriptions balance in one round; overlapping subscriptions
/// can take more, each roughly halving what imbalance is left.
pub const MAX_BALANCE_ROUNDS: usize = 16;

/// Kafka's `UniformAssignor`: see the module documentation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UniformAssignor;

impl Assignor for UniformAssignor {
    fn name(&self) -> &'static str {
        UNIFORM_ASSIGNOR_NAME
    }

    fn assign(
        &self,
        group: &GroupSpec,
        topics: &BTreeMap<Uuid, TopicMetadata>,
    ) -> Result<GroupAssignment, AssignorError> {
        let topics = TopicTable::new(topics)?;
        let members: Vec<&MemberSpec> = group.members.values().collect();
        let owners = match Subscriptions::of(&members, &topics) {
            Subscriptions::Homogeneous(subscribed) => {
                assign_homogeneous(&members, &subscribed, &topics)
            }
            Subscriptions::Heterogeneous(per_member) => {
                assign_heterogeneous(&members, &per_member, &topics)
            }
        };
        Ok(owners.into_group_assignment(group.members.keys(), &topics))
    }
}

/// Every member subscribes to the topics `subscribed`: quotas of `P / M` or one more, sticky.
fn assign_homogeneous(
    members: &[&MemberSpec],
    subscribed: &[usize],
    topics: &TopicTable,
) -> PartitionOwners {
    let mut assignable = vec![false; topics.len()];
    for &topic in subscribed {
        assignable[topic] = true;
    }
    let mut owners = PartitionOwners::new(topics, &assignable, members.len());
    if members.is_empty() {
        return owners;
    }
    keep_current(&mut owners, members, |_| subscribed, topics);

    let total: usize = subscribed
        .iter()
        .map(|&topic| topics.partition_count(topic) as usize)
        .sum();
    let quotas = quotas(&owners, total);

    // A member over its quota gives up its last partitions.
    for (member, spec) in members.iter().enumerate() {
        let excess = owners.load(member).saturating_sub(quotas[member]);
        if excess > 0 {
            let held: Vec<(usize, i32)> = valid_current(spec, subscribed, topics)
                .filter(|&(topic, partition)| owners.owner(topic, partition) == Some(member))
                .collect();
            for &(topic, partition) in &held[held.len() - excess..] {
                owners.unassign(topic, partition);
            }
        }
    }

    // Members under their quota fill up, in member order, from the unowned partitions in
    // (topic, partition) order.
    let unowned: Vec<(usize, i32)> = subscribed
        .iter()
        .flat_map(|&topic| {
            owners
                .unowned(topic)
                .map(move |partition| (topic, partition))
        })
        .collect();
    let mut unowned = unowned.into_iter();
    for (member, &quota) in quotas.iter().enumerate() {
        for _ in owners.load(member)..quota {
            let (topic, partition) = unowned
                .next()
                .expect("the quotas add up to the partition count");
            owners.assign(topic, partition, member);
        }
    }
    debug_assert!(unowned.next().is_none(), "a partition was left unassigned");
    owners
}

/// Each member's quota: `total / M`, plus one for `total % M` members — those holding the
/// most already (ties: lower member index), so that as few partitions as possible move.
fn quotas(owners: &PartitionOwners, total: usize) -> Vec<usize> {
    let members = owners.member_count();
    let mut quotas = vec![total / members; members];
    let extra = total % members;
    if extra > 0 {
        let mut by_load_descending: Vec<usize> = (0..members).collect();
        by_load_descending.sort_by_key(|&member| (Reverse(owners.load(member)), member));
        for &member in &by_load_descending[..extra] {
            quotas[member] += 1;
        }
    }
    quotas
}

/// Gives every member back its valid current partitions, members in index order; a partition
/// two members claim stays with the first.
fn keep_current<'a>(
    owners: &mut PartitionOwners,
    members: &[&MemberSpec],
    subscribed_by: impl Fn(usize) -> &'a [usize],
    topics: &TopicTable,
) {
    for (member, spec) in members.iter().enumerate() {
        for (topic, partition) in valid_current(spec, subscribed_by(member), topics) {
            if owners.owner(topic, partition).is_none() {
                owners.assign(topic, partition, member);
            }
        }
    }
}

/// Member `m` subscribes to the topics `per_member[m]`, not all alike.
fn assign_heterogeneous(
    members: &[&MemberSpec],
    per_member: &[Vec<usize>],
    topics: &TopicTable,
) -> PartitionOwners {
    let subscribers = subscribers_per_topic(topics.len(), per_member, 0..members.len());
    let assignable: Vec<bool> = subscribers.iter().map(|s| !s.is_empty()).collect();
    let mut owners = PartitionOwners::new(topics, &assignable, members.len());
    keep_current(&mut owners, members, |member| &per_member[member], topics);

    let order = topics_in_balancing_order(topics, &subscribers);
    for &topic in &order {
        assign_unowned_to_least_loaded(&mut owners, topic, &subscribers[topic]);
    }
    let movable: Vec<usize> = order
        .into_iter()
        .filter(|&topic| subscribers[topic].len() >= 2)
        .collect();
    balance(&mut owners, &movable, &subscribers);
    owners
}

/// The topics someone subscribes to, most partitions per subscriber first, then fewest
/// subscribers, then topic id (Kafka's order: the hardest topics to spread go first).
fn topics_in_balancing_order(topics: &TopicTable, subscribers: &[Vec<u32>]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..topics.len())
        .filter(|&topic| !subscribers[topic].is_empty())
        .collect();
    order.sort_by(|&a, &b| {
        let (partitions_a, subscribers_a) = (
            topics.partition_count(a) as u64,
            subscribers[a].len() as u64,
        );
        let (partitions_b, subscribers_b) = (
            topics.partition_count(b) as u64,
            subscribers[b].len() as u64,
        );
        // a/sa > b/sb ⇔ a·sb > b·sa: descending partitions per subscriber.
        (partitions_b * subscribers_a)
            .cmp(&(partitions_a * subscribers_b))
            .then(subscribers_a.cmp(&subscribers_b))
            .then(a.cmp(&b))
    });
    order
}

/// Gives each unowned partition of `topic` to its least-loaded subscriber (ties: lower
/// member index).
fn assign_unowned_to_least_loaded(owners: &mut PartitionOwners, topic: usize, subscribers: &[u32]) {
    let unowned: Vec<i32> = owners.unowned(topic).collect();
    if unowned.is_empty() {
        return;
    }
    let mut least_loaded: BinaryHeap<Reverse<(usize, u32)>> = subscribers
        .iter()
        .map(|&member| Reverse((owners.load(member as usize), member)))
        .collect();
    for partition in unowned {
        let Reverse((load, member)) = least_loaded.pop().expect("the topic has subscribers");
        owners.assign(topic, partition, member as usize);
        least_loaded.push(Reverse((load + 1, member)));
    }
}

/// Rounds of [`balance_topic`] over `topics` until a whole round moves nothing.
fn balance(owners: &mut PartitionOwners, topics: &[usize], subscribers: &[Vec<u32>]) {
    // The position of the last topic balanced with a move (or of the first topic tried):
    // coming back to it means a whole round went by without a move.
    let mut last_moving = None;
    for _ in 0..MAX_BALANCE_ROUNDS {
        for (position, &topic) in topics.iter().enumerate() {
            if last_moving == Some(position) {
                return;
            }
            if balance_topic(owners, topic, &subscribers[topic]) > 0 || last_moving.is_none() {
                last_moving = Some(position);
            }
        }
    }
}

/// Moves partitions of `topic` from its most-loaded subscriber holding one to its
/// least-loaded subscriber while their loads differ by two or more. Returns how many moved.
fn balance_topic(owners: &mut PartitionOwners, topic: usize, subscribers: &[u32]) -> usize {
    let loads = subscribers.iter().map(|&m| owners.load(m as usize));
    let (min, max) = loads.fold((usize::MAX, 0), |(min, max), load| {
        (min.min(load), max.max(load))
    });
    if max <= min + 1 {
        return 0;
    }

    let mut held = owners.partitions_by_owner(topic);
    let mut receivers: BTreeSet<(usize, usize)> = subscribers
        .iter()
        .map(|&m| (owners.load(m as usize), m as usize))
        .collect();
    let mut donors: BTreeSet<(usize, usize)> = held.keys().map(|&m| (owners.load(m), m)).collect();
    let mut moved = 0;
    while let (Some(&(donor_load, donor)), Some(&(receiver_load, receiver))) =
        (donors.last(), receivers.first())
    {
        if donor_load <= receiver_load + 1 {
            break;
        }
        let donor_partitions = held.get_mut(&donor).expect("donors hold partitions");
        let partition = donor_partitions.pop().expect("donors hold partitions");
        let donor_still_holds = !donor_partitions.is_empty();

        donors.remove(&(donor_load, donor));
        receivers.remove(&(donor_load, donor));
        donors.remove(&(receiver_load, receiver));
        receivers.remove(&(receiver_load, receiver));

        owners.assign(topic, partition, receiver);
        held.entry(receiver).or_default().push(partition);
        moved += 1;

        receivers.insert((donor_load - 1, donor));
        if donor_still_holds {
            donors.insert((donor_load - 1, donor));
        }
        receivers.insert((receiver_load + 1, receiver));
        donors.insert((receiver_load + 1, receiver));
    }
    moved
}
