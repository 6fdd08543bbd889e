//! How long the web console takes to render its pages at the size the issue sets as the
//! budget: "every page renders in under 100 ms with 1,000 groups and 10,000 partitions".
//!
//! Rendering is pure (plain data in, an HTML string out), so this times the render calls alone
//! on synthetic, deterministic state (a fixed-seed LCG, no randomness):
//!
//! * `overview/default` and `overview/filtered`: [`overview::render`] for a broker with 1,000
//!   groups (classic and consumer, every state, 1–50 members, lag known for most, a last
//!   rebalance for most) and 200 topics whose partitions sum to 10,000. `default` is the first
//!   page with no query; `filtered` is `q=prod` (half the groups and half the topics) sorted by
//!   lag, descending, page 3.
//! * `group/large`: [`group::render`] for one group of 100 members with 100 partitions each
//!   (10,000 partition rows with offsets and lag) and a history of 50 rebalances whose decoded
//!   assignments each name all 10,000 partitions and move 200 of them between members (with
//!   KIP-848 hand-overs), so the timeline replays 500,000 ownerships; it draws 200 rows.
//! * `timeline/large`: [`timeline::timeline_svg`] alone on that history.
//!
//! After criterion's own estimates, a table gives each page's mean over 20 more renders
//! (`Instant`), its size in KiB, and whether it is within the 100 ms budget; one more line
//! gives the large group's page with no history, to show what the timeline costs it.
//!
//! ```sh
//! cargo bench -p starling-console --bench render
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode};
use starling_console::group::{self, GroupView, MemberRow, PartitionRow};
use starling_console::overview::{
    self, BrokerFacts, GroupRow, LastRebalance, ListQuery, Overview, Rates, TopicRow,
};
use starling_console::timeline;
use starling_group::{
    AssignmentChange, PartitionHandover, PartitionMove, PartitionOwner, RebalanceCause,
    RebalanceMember, RebalanceOutcome, RebalanceRecord,
};

/// The issue's budget per page.
const BUDGET: Duration = Duration::from_millis(100);
/// Renders per page for the budget table.
const BUDGET_RUNS: u32 = 20;

/// 2026-12-05 00:00:00 UTC, in ms.
const T0: i64 = 1_796_428_800_000;

const GROUPS: usize = 1_000;
const TOPICS: usize = 200;
/// Partitions of topic `t` are `TOPIC_SIZES[t % 4]`: 50 × (5 + 20 + 50 + 125) = 10,000.
const TOPIC_SIZES: [usize; 4] = [5, 20, 50, 125];

const MEMBERS: usize = 100;
const GROUP_TOPICS: usize = 10;
const PARTITIONS_PER_GROUP_TOPIC: usize = 1_000;
const REBALANCES: usize = 50;
/// Lag readings per partition, as the broker keeps (15 minutes at 10 s).
const LAG_SAMPLES: i64 = 90;
/// Partitions each rebalance after the first moves to another member.
const MOVES_PER_REBALANCE: usize = 200;

/// A 64-bit LCG (Knuth's MMIX constants) with a fixed seed: the same state on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

// ---- The overview ------------------------------------------------------------------------

fn overview_state() -> Overview {
    let mut rng = Lcg(0x5354_4152_4c49_4e47);
    let states = [
        "Stable",
        "Empty",
        "PreparingRebalance",
        "CompletingRebalance",
        "Dead",
    ];
    let causes = [
        "member_joined",
        "member_left",
        "session_expired",
        "max_poll_exceeded",
        "metadata_changed",
    ];
    let services = ["orders", "billing", "search", "audit", "shipping"];
    let groups: Vec<GroupRow> = (0..GROUPS)
        .map(|i| {
            let env = if i % 2 == 0 { "prod" } else { "staging" };
            let consumer = rng.below(3) == 0;
            let members = 1 + rng.below(50) as usize;
            let started_ms = T0 - rng.below(86_400_000) as i64;
            GroupRow {
                group_id: format!("{}-{env}-consumer-{i:04}", services[i % services.len()]),
                kind: if consumer { "consumer" } else { "classic" }.to_string(),
                state: states[rng.below(states.len() as u64) as usize].to_string(),
                protocol: if consumer {
                    Some("uniform".to_string())
                } else if i % 3 == 0 {
                    Some("cooperative-sticky".to_string())
                } else {
                    Some("range".to_string())
                },
                members,
                lag: (rng.below(5) != 0).then(|| rng.below(5_000_000) as i64),
                last_rebalance: (rng.below(10) != 0).then(|| LastRebalance {
                    generation: 1 + rng.below(500) as i32,
                    cause: causes[rng.below(causes.len() as u64) as usize].to_string(),
                    outcome: "stable".to_string(),
                    started_ms,
                    duration_ms: (rng.below(20) != 0).then(|| rng.below(30_000) as i64),
                }),
            }
        })
        .collect();
    let topics: Vec<TopicRow> = (0..TOPICS)
        .map(|t| {
            let partitions = TOPIC_SIZES[t % TOPIC_SIZES.len()];
            let env = if t % 2 == 0 { "prod" } else { "staging" };
            let records = partitions as i64 * rng.below(10_000_000) as i64;
            TopicRow {
                name: format!("{env}.{}.events-{t:03}", services[t % services.len()]),
                partitions,
                size_bytes: records as u64 * 700,
                records,
                produced_bytes: rng.below(1 << 40),
                fetched_bytes: rng.below(1 << 41),
                rates: Some(Rates {
                    records_in: rng.below(100_000) as f64 / 10.0,
                    bytes_in: rng.below(10_000_000) as f64,
                    bytes_out: rng.below(30_000_000) as f64,
                }),
            }
        })
        .collect();
    assert_eq!(topics.iter().map(|t| t.partitions).sum::<usize>(), 10_000);
    Overview {
        broker: BrokerFacts {
            version: "0.1.0".to_string(),
            cluster_id: "Rz3l8bQ5TaeQm5m4B1c0Vg".to_string(),
            node_id: 1,
            uptime_ms: 3 * 86_400_000 + 1_234_567,
            listeners: vec![
                ("PLAINTEXT".to_string(), "broker-1:9092".to_string()),
                ("SSL".to_string(), "broker-1:9093".to_string()),
            ],
            data_dir: "/var/lib/starling".to_string(),
            log_bytes: 7 << 40,
            faults: Vec::new(),
        },
        topics,
        groups,
        query: ListQuery::default(),
    }
}

// ---- The large group ---------------------------------------------------------------------

fn member_id(m: usize) -> String {
    format!("consumer-{m:03}-0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
}

fn topic_name(t: usize) -> String {
    format!("prod.orders.events-{t:02}")
}

/// Every partition of the group, sorted by topic and partition (partition index `i` is
/// topic `i / 1000`, partition `i % 1000`).
fn group_partitions() -> Vec<(String, i32)> {
    (0..GROUP_TOPICS)
        .flat_map(|t| (0..PARTITIONS_PER_GROUP_TOPIC).map(move |p| (topic_name(t), p as i32)))
        .collect()
}

/// 50 Stable rebalances a minute apart. The first assigns partition `i` to member
/// `i / 100`; each later one moves 200 partitions (chosen by the LCG) to another member, with
/// a hand-over for each, and keeps the rest. Returns the records and the final owners.
fn history(partitions: &[(String, i32)], members: &[String]) -> (Vec<RebalanceRecord>, Vec<usize>) {
    let mut rng = Lcg(0x7469_6d65_6c69_6e65);
    let per_member = partitions.len() / members.len();
    let mut owners: Vec<usize> = (0..partitions.len()).map(|i| i / per_member).collect();
    let causes = [
        RebalanceCause::MemberJoined,
        RebalanceCause::MemberLeft,
        RebalanceCause::SessionExpired,
        RebalanceCause::MaxPollExceeded,
        RebalanceCause::MetadataChanged,
    ];
    let rebalance_members: Vec<RebalanceMember> = members
        .iter()
        .enumerate()
        .map(|(m, id)| RebalanceMember {
            member_id: id.clone(),
            group_instance_id: None,
            client_id: format!("orders-app-{m}"),
            client_host: format!("/10.0.{}.{}", m / 200, m % 200 + 10),
        })
        .collect();
    let mut records = Vec::with_capacity(REBALANCES);
    for r in 0..REBALANCES {
        let started_ms = T0 + r as i64 * 60_000;
        let join_completed_ms = started_ms + 300 + rng.below(3_000) as i64;
        let ended_ms = join_completed_ms + 20 + rng.below(500) as i64;
        let mut moving = vec![false; partitions.len()];
        if r > 0 {
            let mut chosen = 0;
            while chosen < MOVES_PER_REBALANCE {
                let i = rng.below(partitions.len() as u64) as usize;
                if !moving[i] {
                    moving[i] = true;
                    chosen += 1;
                }
            }
        }
        let mut change = AssignmentChange::default();
        let mut handovers = Vec::new();
        for (i, (topic, partition)) in partitions.iter().enumerate() {
            let owner = owners[i];
            if r == 0 {
                change.assigned.push(PartitionOwner {
                    topic: topic.clone(),
                    partition: *partition,
                    member_id: members[owner].clone(),
                });
            } else if moving[i] {
                let to = (owner + 1 + rng.below(members.len() as u64 - 1) as usize) % members.len();
                change.moved.push(PartitionMove {
                    topic: topic.clone(),
                    partition: *partition,
                    from: members[owner].clone(),
                    to: members[to].clone(),
                });
                let revoke_asked_ms = join_completed_ms + rng.below(50) as i64;
                let released_ms = revoke_asked_ms + rng.below(400) as i64;
                handovers.push(PartitionHandover {
                    topic: topic.clone(),
                    partition: *partition,
                    from: members[owner].clone(),
                    to: members[to].clone(),
                    revoke_asked_ms: Some(revoke_asked_ms),
                    released_ms: Some(released_ms),
                    assigned_ms: Some(released_ms + rng.below(300) as i64),
                });
                owners[i] = to;
            } else {
                change.stayed.push(PartitionOwner {
                    topic: topic.clone(),
                    partition: *partition,
                    member_id: members[owner].clone(),
                });
            }
        }
        let cause = causes[r % causes.len()];
        let trigger = members[rng.below(members.len() as u64) as usize].clone();
        records.push(RebalanceRecord {
            group_id: "orders-prod-consumer".to_string(),
            generation: r as i32 + 1,
            cause,
            trigger_member: Some(trigger.clone()),
            client_reason: (r % 3 == 0).then(|| "rebalance requested by the application".into()),
            protocol_type: "consumer".to_string(),
            protocol: Some("uniform".to_string()),
            started_ms,
            join_completed_ms: Some(join_completed_ms),
            ended_ms: Some(ended_ms),
            outcome: RebalanceOutcome::Stable,
            members_before: members.to_vec(),
            members: rebalance_members.clone(),
            joined: if cause == RebalanceCause::MemberJoined {
                vec![trigger]
            } else {
                Vec::new()
            },
            left: Vec::new(),
            assignment: Some(change),
            handovers,
            consumer_protocol: true,
            reconciliation: Vec::new(),
        });
    }
    (records, owners)
}

fn group_state() -> GroupView {
    let mut rng = Lcg(0x6772_6f75_7021);
    let partitions = group_partitions();
    let members: Vec<String> = (0..MEMBERS).map(member_id).collect();
    let (rebalances, owners) = history(&partitions, &members);
    let mut assigned: Vec<Vec<(String, i32)>> = vec![Vec::new(); MEMBERS];
    for (i, p) in partitions.iter().enumerate() {
        assigned[owners[i]].push(p.clone());
    }
    let now_ms = rebalances.last().map_or(T0, |r| r.started_ms) + 30_000;
    GroupView {
        partition_query: Default::default(),
        group_id: "orders-prod-consumer".to_string(),
        kind: "consumer".to_string(),
        state: "Stable".to_string(),
        protocol_type: "consumer".to_string(),
        protocol: Some("uniform".to_string()),
        generation: REBALANCES as i32,
        members: members
            .iter()
            .zip(assigned)
            .enumerate()
            .map(|(m, (id, assigned))| MemberRow {
                member_id: id.clone(),
                instance_id: (m % 4 == 0).then(|| format!("orders-app-{m}")),
                client_id: format!("orders-app-{m}"),
                host: format!("/10.0.{}.{}", m / 200, m % 200 + 10),
                epoch: Some(REBALANCES as i32 - (m % 3) as i32),
                assigned,
            })
            .collect(),
        partitions: partitions
            .iter()
            .enumerate()
            .map(|(i, (topic, partition))| {
                let end = rng.below(100_000_000) as i64;
                let lag = if rng.below(10) == 0 {
                    rng.below(50_000) as i64
                } else {
                    rng.below(500) as i64
                };
                let committed = (end - lag).max(0);
                PartitionRow {
                    topic: topic.clone(),
                    partition: *partition,
                    owner: Some(members[owners[i]].clone()),
                    committed_offset: Some(committed),
                    log_end_offset: Some(end),
                    lag: Some(end - committed),
                    // A full history: SAMPLES readings 10 s apart.
                    lag_history: (0..LAG_SAMPLES)
                        .map(|s| {
                            (
                                now_ms - (LAG_SAMPLES - s) * 10_000,
                                rng.below(50_000) as i64,
                            )
                        })
                        .collect(),
                }
            })
            .collect(),
        rebalances,
        now_ms,
    }
}

// ---- Benchmarks --------------------------------------------------------------------------

/// The state each page is rendered from.
struct Pages {
    overview_default: Overview,
    overview_filtered: Overview,
    group: GroupView,
}

impl Pages {
    fn new() -> Pages {
        let overview_default = overview_state();
        let mut overview_filtered = overview_default.clone();
        overview_filtered.query =
            ListQuery::from_pairs([("q", "prod"), ("sort", "lag"), ("desc", "1"), ("page", "2")]);
        let (page, total) =
            overview::select_groups(&overview_filtered.groups, &overview_filtered.query);
        assert_eq!((page.len(), total), (overview::PER_PAGE, GROUPS / 2));
        Pages {
            overview_default,
            overview_filtered,
            group: group_state(),
        }
    }

    fn render(&self, name: &str) -> String {
        match name {
            "overview/default" => overview::render(black_box(&self.overview_default)),
            "overview/filtered" => overview::render(black_box(&self.overview_filtered)),
            "group/large" => group::render(black_box(&self.group)),
            "timeline/large" => timeline::timeline_svg(
                black_box(&self.group.rebalances),
                black_box(self.group.now_ms),
            ),
            _ => unreachable!("{name}"),
        }
    }
}

const PAGES: [&str; 4] = [
    "overview/default",
    "overview/filtered",
    "group/large",
    "timeline/large",
];

fn bench(c: &mut Criterion, pages: &Pages) {
    let mut bench_group = c.benchmark_group("render");
    bench_group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for name in PAGES {
        if name.starts_with("overview") {
            bench_group
                .sample_size(20)
                .sampling_mode(SamplingMode::Auto);
        } else {
            // Hundreds of ms per render: 10 flat samples of a render or so keep the bench short.
            bench_group
                .sample_size(10)
                .sampling_mode(SamplingMode::Flat);
        }
        bench_group.bench_function(name, |b| b.iter(|| pages.render(name)));
    }
    bench_group.finish();
}

/// One line per page: the mean of [`BUDGET_RUNS`] renders, the page's size and the verdict.
fn budget(pages: &Pages) {
    println!();
    println!("page                     mean (20 runs)        size   budget 100 ms");
    let line = |name: &str, render: &dyn Fn() -> String| {
        let size = render().len();
        let start = Instant::now();
        for _ in 0..BUDGET_RUNS {
            black_box(render());
        }
        let mean = start.elapsed() / BUDGET_RUNS;
        println!(
            "{name:<24} {:>9.2} ms {:>8.1} KiB   {}",
            mean.as_secs_f64() * 1e3,
            size as f64 / 1024.0,
            if mean < BUDGET { "under" } else { "OVER" },
        );
    };
    for name in PAGES {
        line(name, &|| pages.render(name));
    }
    // The group page without its history (no timeline, no rebalance table), to show what the
    // timeline costs the page.
    let without_history = GroupView {
        rebalances: Vec::new(),
        ..pages.group.clone()
    };
    line("group/large, no history", &|| {
        group::render(black_box(&without_history))
    });
}

fn main() {
    let pages = Pages::new();
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion, &pages);
    criterion.final_summary();
    budget(&pages);
}
