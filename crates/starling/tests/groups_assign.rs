//! `assign()` consumers (no subscription) that commit under a group id: commits are read back
//! with their metadata, a new consumer of the same group resumes exactly there, another group
//! sees nothing, and acknowledged commits survive a clean restart and a kill -9 of the broker.

mod common;
mod groups_support;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use groups_support::*;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

/// A consumer in `group` (never joined: assign() only).
fn group_consumer(bootstrap: &str, group: &str) -> BaseConsumer {
    consumer(
        bootstrap,
        &[("group.id", group), ("auto.offset.reset", "earliest")],
    )
}

/// Commits `(partition, offset, metadata)` synchronously.
fn commit(c: &BaseConsumer, topic: &str, offsets: &[(i32, i64, &str)]) {
    let mut tpl = TopicPartitionList::new();
    for &(p, o, meta) in offsets {
        tpl.add_partition_offset(topic, p, Offset::Offset(o))
            .unwrap();
        tpl.find_partition(topic, p).unwrap().set_metadata(meta);
    }
    c.commit(&tpl, CommitMode::Sync)
        .unwrap_or_else(|e| panic!("commit {offsets:?}: {e}"));
}

/// `partition -> (offset, metadata)` committed for `group`, through `committed_offsets`.
fn read_committed(
    bootstrap: &str,
    group: &str,
    topic: &str,
    parts: i32,
) -> BTreeMap<i32, (Option<i64>, String)> {
    committed_with_metadata(bootstrap, group, &partitions(topic, parts))
        .into_iter()
        .map(|((_, p), committed)| (p, committed))
        .collect()
}

fn expected(offsets: &[(i32, i64, &str)]) -> BTreeMap<i32, (Option<i64>, String)> {
    offsets
        .iter()
        .map(|&(p, o, m)| (p, (Some(o), m.to_string())))
        .collect()
}

#[test]
fn assigned_consumer_commits_round_trip_with_metadata_and_a_new_consumer_resumes_there() {
    let _w = watchdog(Duration::from_secs(90));
    let s = Scenario::new("assign")
        .partitions(3)
        .backlog("a", 30) // 10 per partition
        .start();
    let (boot, topic, group) = (s.boot(), s.topic.clone(), s.group.clone());

    let first = group_consumer(&boot, &group);
    assign(
        &first,
        &topic,
        &[
            (0, Offset::Beginning),
            (1, Offset::Beginning),
            (2, Offset::Beginning),
        ],
    );
    let got = consume_until(&first, Duration::from_secs(20), |m| m.len() >= 30);
    assert_eq!(got.len(), 30);
    let offsets = [
        (0, 4, "processed four"),
        (1, 10, ""),
        (2, 7, "métadonnées: {\"batch\": 7}"),
    ];
    commit(&first, &topic, &offsets);

    // committed() on the committing consumer (its assignment) and committed_offsets elsewhere.
    // (The list committed() returns holds references into the consumer: it must be dropped
    // before the consumer is, or librdkafka's destroy waits forever.)
    let own: BTreeMap<i32, (Option<i64>, String)> = first
        .committed(Duration::from_secs(10))
        .expect("committed()")
        .elements()
        .iter()
        .map(|e| {
            (
                e.partition(),
                (e.offset().to_raw(), e.metadata().to_string()),
            )
        })
        .collect();
    assert_eq!(own, expected(&offsets), "committed() after commit");
    assert_eq!(
        read_committed(&boot, &group, &topic, 3),
        expected(&offsets),
        "committed offsets seen by another client of the group"
    );
    let stranger = read_committed(&boot, &unique("other-group"), &topic, 3);
    assert!(
        stranger.values().all(|(o, _)| o.is_none()),
        "another group has no committed offsets: {stranger:?}"
    );
    drop(first);

    // A new consumer of the same group starts at the committed positions.
    let second = group_consumer(&boot, &group);
    assign(
        &second,
        &topic,
        &[
            (0, Offset::Stored),
            (1, Offset::Stored),
            (2, Offset::Stored),
        ],
    );
    let resumed = consume_until(&second, Duration::from_secs(20), |m| m.len() >= 9);
    std::thread::sleep(Duration::from_millis(500));
    let mut by_part: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for m in &resumed {
        by_part.entry(m.partition).or_default().push(m.offset);
        assert_eq!(
            m.key_str(),
            format!("a-{:06}", m.offset * 3 + m.partition as i64),
            "key at {}@{}",
            m.partition,
            m.offset
        );
    }
    assert_eq!(
        by_part,
        BTreeMap::from([(0, (4..10).collect()), (2, (7..10).collect())]),
        "resumed exactly at the committed offsets (partition 1 was fully committed)"
    );
    if let Some(Ok(m)) = second.poll(Duration::from_millis(500)) {
        panic!(
            "unexpected extra message {}@{}",
            rdkafka::Message::partition(&m),
            rdkafka::Message::offset(&m)
        );
    }

    // Committing again overwrites, including with an earlier offset.
    commit(&second, &topic, &[(0, 2, "rewind"), (1, 10, "x")]);
    let now = read_committed(&boot, &group, &topic, 3);
    assert_eq!(now[&0], (Some(2), "rewind".to_string()));
    assert_eq!(now[&1], (Some(10), "x".to_string()));
    assert_eq!(now[&2], (Some(7), offsets[2].2.to_string()));
}

#[test]
fn acknowledged_commits_survive_clean_restart_and_kill9() {
    let _w = watchdog(Duration::from_secs(120));
    let mut s = Scenario::new("assign-durable")
        .partitions(2)
        .backlog("d", 1000) // 500 per partition
        .start();
    s.stop_producing();
    let (topic, group) = (s.topic.clone(), s.group.clone());
    let broker = &mut s.broker;

    let first = [(0, 120, "before restart"), (1, 7, "")];
    commit(&group_consumer(&broker.bootstrap(), &group), &topic, &first);
    broker.restart();
    assert_eq!(
        read_committed(&broker.bootstrap(), &group, &topic, 2),
        expected(&first),
        "after a clean restart"
    );

    // A stream of acknowledged commits, then kill -9 right after the last acknowledgement.
    let c = group_consumer(&broker.bootstrap(), &group);
    for i in 1..=200i64 {
        let meta = format!("commit {i}");
        commit(&c, &topic, &[(0, 120 + i, &meta), (1, 7 + i, &meta)]);
    }
    drop(c);
    broker.kill9();
    broker.start_again();
    assert_eq!(
        read_committed(&broker.bootstrap(), &group, &topic, 2),
        expected(&[(0, 320, "commit 200"), (1, 207, "commit 200")]),
        "the last acknowledged commit is there after kill -9"
    );

    // And a consumer resumes from it.
    let resumed = group_consumer(&broker.bootstrap(), &group);
    assign(&resumed, &topic, &[(0, Offset::Stored)]);
    let got = consume_until(&resumed, Duration::from_secs(20), |m| !m.is_empty());
    assert_eq!((got[0].partition, got[0].offset), (0, 320));
}

/// OffsetCommit for partitions the broker does not have (an unknown topic, an index beyond a
/// topic's partitions) answers UNKNOWN_TOPIC_OR_PARTITION for exactly those partitions, in the
/// order asked, stores the others, and stores nothing for the unknown ones.
#[test]
fn commits_to_unknown_topics_or_partitions_are_refused_per_partition_and_the_rest_stored() {
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::{GroupId, OffsetCommitRequest};
    use kafka_protocol::protocol::StrBytes;

    let _w = watchdog(Duration::from_secs(90));
    let s = Scenario::new("known")
        .partitions(2)
        .broker("auto.create.topics.enable", "false")
        .start();
    let (broker, boot, topic) = (&s.broker, s.boot(), s.topic.clone());
    let missing = unique("nowhere");
    let group = unique("unknown-commit-group");

    let partition = |index: i32, offset: i64| {
        OffsetCommitRequestPartition::default()
            .with_partition_index(index)
            .with_committed_offset(offset)
    };
    let request = |topics: Vec<OffsetCommitRequestTopic>| {
        OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.clone())))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(topics)
    };
    let codes =
        |r: &kafka_protocol::messages::OffsetCommitResponse| -> Vec<(String, Vec<(i32, i16)>)> {
            r.topics
                .iter()
                .map(|t| {
                    let parts = t
                        .partitions
                        .iter()
                        .map(|p| (p.partition_index, p.error_code))
                        .collect();
                    (t.name.0.to_string(), parts)
                })
                .collect()
        };
    let mut raw = RawClient::connect(broker.addr());
    for version in [2, 7, 8, 9] {
        let mixed = request(vec![
            OffsetCommitRequestTopic::default()
                .with_name(topic_name(&missing))
                .with_partitions(vec![partition(0, 5)]),
            OffsetCommitRequestTopic::default()
                .with_name(topic_name(&topic))
                .with_partitions(vec![
                    partition(1, 11 + i64::from(version)),
                    partition(7, 5),
                    partition(0, 10),
                ]),
        ]);
        let r = raw.call(version, &mixed);
        assert_eq!(
            codes(&r),
            vec![
                (missing.clone(), vec![(0, 3)]),
                (topic.clone(), vec![(1, 0), (7, 3), (0, 0)]),
            ],
            "OffsetCommit v{version}"
        );
        // Nothing but unknown partitions: every one refused, the coordinator never asked.
        let only_unknown = request(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name(&missing))
            .with_partitions(vec![partition(0, 1), partition(1, 1)])]);
        let r = raw.call(version, &only_unknown);
        assert_eq!(codes(&r), vec![(missing.clone(), vec![(0, 3), (1, 3)])]);
    }
    let stored = read_committed(&boot, &group, &topic, 2);
    assert_eq!(stored[&0].0, Some(10));
    assert_eq!(stored[&1].0, Some(20));
    let nothing = read_committed(&boot, &group, &missing, 1);
    assert_eq!(nothing[&0].0, None, "an unknown topic's offset was stored");

    // librdkafka sees the per-partition error too.
    let c = group_consumer(&boot, &group);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&missing, 0, Offset::Offset(3))
        .unwrap();
    let err = c
        .commit(&tpl, CommitMode::Sync)
        .expect_err("a commit to an unknown topic succeeded");
    assert!(
        err.to_string().to_lowercase().contains("unknown topic"),
        "librdkafka reported {err}"
    );
}
