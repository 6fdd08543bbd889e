//! The coordinator core's cost of one steady-state ConsumerGroupHeartbeat (KIP-848): a member
//! of a reconciled group heartbeats with its epoch and owned partitions and gets its interval
//! back; nothing changes, nothing is written. Groups of 10, 1,000 and 10,000 members on one
//! topic of 1,000 partitions (10,000 for the largest group). The figure bounds what the
//! broker's `group.consumer.heartbeat.interval.ms` costs in the core: N members heartbeating
//! every I ms take N / I × (cost per heartbeat) of a core; the broker adds decoding, the
//! channel to the coordinator task and encoding (`starling bench heartbeat` measures all of it).
//!
//! ```sh
//! cargo bench -p starling-group --bench consumer_heartbeat
//! ```

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion};
use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions as Owned;
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, GroupId, TopicName};
use kafka_protocol::protocol::StrBytes;
use starling_group::assignor::TopicMetadata;
use starling_group::{
    ClientInfo, GroupConfig, GroupCoordinator, GroupRequest, GroupResponse, TopicsImage,
};
use uuid::Uuid;

fn s(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

/// A heartbeat from `member` at `epoch`, owning `owned`; a join when `epoch` is 0.
fn heartbeat(member: &str, epoch: i32, owned: Vec<Owned>) -> GroupRequest {
    let mut r = ConsumerGroupHeartbeatRequest::default();
    r.group_id = GroupId(s("bench"));
    r.member_id = s(member);
    r.member_epoch = epoch;
    if epoch == 0 {
        r.rebalance_timeout_ms = 300_000;
        r.subscribed_topic_names = Some(vec![TopicName(s("orders"))]);
    }
    r.topic_partitions = Some(owned);
    GroupRequest::ConsumerGroupHeartbeat(r)
}

/// A reconciled group of `members` members: (coordinator, per member (id, epoch, owned)).
fn settled_group(
    members: usize,
    partitions: u32,
) -> (GroupCoordinator, Vec<(String, i32, Vec<Owned>)>) {
    let mut c = GroupCoordinator::new(GroupConfig::default());
    let topic = Uuid::from_u128(7);
    c.set_topics(
        0,
        TopicsImage::new([TopicMetadata::new(topic, "orders", partitions)]),
    );
    let client = ClientInfo {
        client_id: "bench".into(),
        client_host: "/127.0.0.1".into(),
    };
    let mut state: Vec<(String, i32, Vec<Owned>)> = (0..members)
        .map(|i| (format!("member-{i:05}"), 0, Vec::new()))
        .collect();
    let mut id = 0;
    // Every member heartbeats until a whole round changes nothing.
    for _round in 0..20 {
        let mut changed = false;
        for (member, epoch, owned) in state.iter_mut() {
            id += 1;
            let out = c.handle(1, id, 1, &client, heartbeat(member, *epoch, owned.clone()));
            let Some((_, GroupResponse::ConsumerGroupHeartbeat(r))) = out.responses.first() else {
                panic!("no heartbeat response");
            };
            assert_eq!(r.error_code, 0, "{:?}", r.error_message);
            changed |= r.member_epoch != *epoch || r.assignment.is_some() && *epoch != 0;
            *epoch = r.member_epoch;
            if let Some(a) = &r.assignment {
                *owned = a
                    .topic_partitions
                    .iter()
                    .map(|t| {
                        let mut o = Owned::default();
                        o.topic_id = t.topic_id;
                        o.partitions = t.partitions.clone();
                        o
                    })
                    .collect();
            }
        }
        if !changed {
            break;
        }
    }
    (c, state)
}

fn bench(c: &mut Criterion) {
    let client = ClientInfo {
        client_id: "bench".into(),
        client_host: "/127.0.0.1".into(),
    };
    let mut group = c.benchmark_group("steady_heartbeat");
    for (members, partitions) in [(10usize, 1_000u32), (1_000, 1_000), (10_000, 10_000)] {
        let (mut coordinator, state) = settled_group(members, partitions);
        let requests: Vec<GroupRequest> = state
            .iter()
            .map(|(member, epoch, owned)| heartbeat(member, *epoch, owned.clone()))
            .collect();
        let mut next = 0usize;
        let mut id = 1_000_000u64;
        group.bench_function(BenchmarkId::from_parameter(members), |b| {
            b.iter(|| {
                id += 1;
                next = (next + 1) % requests.len();
                let out = coordinator.handle(2, id, 1, &client, requests[next].clone());
                assert!(out.records.is_empty(), "a steady heartbeat writes nothing");
                black_box(out)
            })
        });
    }
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
}
