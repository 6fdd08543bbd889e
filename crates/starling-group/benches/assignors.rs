//! The cost of one server-side assignment (`starling_group::assignor`), for the uniform and
//! the range assignor with homogeneous and heterogeneous subscriptions, at three sizes:
//!
//! * `small`: 10 members, 10 topics × 10 partitions (100 partitions);
//! * `medium`: 1,000 members, 100 topics × 100 partitions (10,000);
//! * `large`: 10,000 members, 1,000 topics × 100 partitions (100,000).
//!
//! Homogeneous: every member subscribes to every topic. Heterogeneous: the topics fall into
//! four bands (topic number mod 4) and member `i` subscribes to bands `i mod 4` and
//! `i + 1 mod 4`, so every member reads half the topics and each band is shared by two
//! overlapping sets of members. Each case is timed twice: `fresh` (no current assignment)
//! and `join` (one member joins a group whose current assignment is the one the assignor gave
//! it without that member: the sticky path). The time includes dropping the result.
//!
//! At the end a table gives, per case, the fewest and most partitions a member got in the
//! fresh assignment and after the join, how many partitions changed owner with the join and
//! how many the joiner got (the least that had to move).
//!
//! ```sh
//! cargo bench -p starling-group --bench assignors
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion};
use starling_group::assignor::{
    Assignor, GroupAssignment, GroupSpec, MemberAssignment, MemberSpec, RangeAssignor,
    TopicMetadata, UniformAssignor,
};
use uuid::Uuid;

/// Subscription bands of the heterogeneous cases.
const BANDS: usize = 4;

struct Size {
    name: &'static str,
    members: usize,
    topics: usize,
    partitions_per_topic: u32,
}

const SIZES: [Size; 3] = [
    Size {
        name: "small",
        members: 10,
        topics: 10,
        partitions_per_topic: 10,
    },
    Size {
        name: "medium",
        members: 1_000,
        topics: 100,
        partitions_per_topic: 100,
    },
    Size {
        name: "large",
        members: 10_000,
        topics: 1_000,
        partitions_per_topic: 100,
    },
];

#[derive(Clone, Copy)]
enum Subscriptions {
    Homogeneous,
    Heterogeneous,
}

fn topic_id(topic: usize) -> Uuid {
    Uuid::from_u128(0x7000_0000 + topic as u128)
}

fn member_id(member: usize) -> String {
    format!("member-{member:05}")
}

fn topics(size: &Size) -> BTreeMap<Uuid, TopicMetadata> {
    (0..size.topics)
        .map(|topic| {
            let id = topic_id(topic);
            let metadata =
                TopicMetadata::new(id, format!("topic-{topic}"), size.partitions_per_topic);
            (id, metadata)
        })
        .collect()
}

/// The group of `members` members (ids in member number order), no current assignment.
fn group(size: &Size, subscriptions: Subscriptions, members: usize) -> GroupSpec {
    // One set per distinct subscription, cloned into each member.
    let band_subscription = |first_band: usize| -> BTreeSet<Uuid> {
        (0..size.topics)
            .filter(|topic| {
                let band = topic % BANDS;
                band == first_band || band == (first_band + 1) % BANDS
            })
            .map(topic_id)
            .collect()
    };
    let distinct: Vec<BTreeSet<Uuid>> = match subscriptions {
        Subscriptions::Homogeneous => vec![(0..size.topics).map(topic_id).collect()],
        Subscriptions::Heterogeneous => (0..BANDS).map(band_subscription).collect(),
    };
    GroupSpec {
        members: (0..members)
            .map(|member| {
                let spec = MemberSpec {
                    subscribed: distinct[member % distinct.len()].clone(),
                    ..MemberSpec::default()
                };
                (member_id(member), spec)
            })
            .collect(),
    }
}

/// The assignment `assignor` gives the group without its last member, and the group with
/// every member, each member's current assignment taken from that assignment.
fn group_after_join(
    assignor: &dyn Assignor,
    size: &Size,
    subscriptions: Subscriptions,
    topics: &BTreeMap<Uuid, TopicMetadata>,
) -> (GroupAssignment, GroupSpec) {
    let before = group(size, subscriptions, size.members - 1);
    let previous: GroupAssignment = assignor.assign(&before, topics).unwrap();
    drop(before);
    let mut group = group(size, subscriptions, size.members);
    for (id, spec) in &mut group.members {
        spec.current = previous.get(id).cloned().unwrap_or_default();
    }
    (previous, group)
}

fn load(assignment: &MemberAssignment) -> usize {
    assignment.values().map(BTreeSet::len).sum()
}

/// The fewest and most partitions a member got.
fn load_range(assignment: &GroupAssignment) -> (usize, usize) {
    assignment
        .values()
        .map(load)
        .fold((usize::MAX, 0), |(min, max), load| {
            (min.min(load), max.max(load))
        })
}

/// How many partitions of `after` have another owner in `before` (or none).
fn moved(before: &GroupAssignment, after: &GroupAssignment) -> usize {
    let mut owners: BTreeMap<(Uuid, i32), &String> = BTreeMap::new();
    for (member, topics) in before {
        for (topic, parts) in topics {
            owners.extend(parts.iter().map(|&p| ((*topic, p), member)));
        }
    }
    let mut moved = 0;
    for (member, topics) in after {
        for (topic, parts) in topics {
            moved += parts
                .iter()
                .filter(|&&p| owners.get(&(*topic, p)) != Some(&member))
                .count();
        }
    }
    moved
}

type Case = (&'static str, &'static dyn Assignor, Subscriptions);

const CASES: [Case; 4] = [
    (
        "uniform-homogeneous",
        &UniformAssignor,
        Subscriptions::Homogeneous,
    ),
    (
        "uniform-heterogeneous",
        &UniformAssignor,
        Subscriptions::Heterogeneous,
    ),
    (
        "range-homogeneous",
        &RangeAssignor,
        Subscriptions::Homogeneous,
    ),
    (
        "range-heterogeneous",
        &RangeAssignor,
        Subscriptions::Heterogeneous,
    ),
];

/// Benchmarks every case at every size; adds a line per case to `summary`.
fn bench_assignors(c: &mut Criterion, summary: &mut Vec<String>) {
    for size in &SIZES {
        let topics = topics(size);
        let mut bench_group = c.benchmark_group(format!("assign/{}", size.name));
        if size.members >= 10_000 {
            bench_group.sample_size(10);
        }
        for (name, assignor, subscriptions) in CASES {
            let fresh = group(size, subscriptions, size.members);
            bench_group.bench_function(BenchmarkId::new(name, "fresh"), |b| {
                b.iter(|| {
                    assignor
                        .assign(black_box(&fresh), black_box(&topics))
                        .unwrap()
                })
            });
            let (fresh_min, fresh_max) = load_range(&assignor.assign(&fresh, &topics).unwrap());
            drop(fresh);

            let (previous, joined) = group_after_join(assignor, size, subscriptions, &topics);
            bench_group.bench_function(BenchmarkId::new(name, "join"), |b| {
                b.iter(|| {
                    assignor
                        .assign(black_box(&joined), black_box(&topics))
                        .unwrap()
                })
            });
            let after = assignor.assign(&joined, &topics).unwrap();
            let (join_min, join_max) = load_range(&after);
            let joiner = after.values().next_back().map(load).unwrap_or(0);
            summary.push(format!(
                "{:>6} {:<22} {:>6}..{:<6} {:>6}..{:<6} {:>7} {:>7}",
                size.name,
                name,
                fresh_min,
                fresh_max,
                join_min,
                join_max,
                moved(&previous, &after),
                joiner,
            ));
        }
        bench_group.finish();
    }
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let mut summary = Vec::new();
    bench_assignors(&mut criterion, &mut summary);
    criterion.final_summary();
    println!();
    println!("  size case                    fresh load      join load     moved  joiner");
    for line in summary {
        println!("{line}");
    }
}
