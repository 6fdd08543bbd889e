//! Topic administration and offset lookups through librdkafka's AdminClient and consumer (plus a
//! few raw requests where an exact error code or field matters): CreateTopics (validate-only,
//! duplicates, bad names, impossible partition counts and replication factors), CreatePartitions,
//! DeleteTopics, persistence across restarts, Metadata auto-creation, ListOffsets, Fetch long
//! polling and log retention.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, ListOffsetsRequest};
use rdkafka::admin::{NewPartitions, NewTopic, TopicReplication};
use rdkafka::consumer::Consumer;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};

const OFFSET_OUT_OF_RANGE: i16 = 1;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const LEADER_NOT_AVAILABLE: i16 = 5;
const INVALID_TOPIC: i16 = 17;

type TopicResults = Vec<Result<String, (String, RDKafkaErrorCode)>>;

async fn create(bootstrap: &str, topics: &[NewTopic<'_>], validate_only: bool) -> TopicResults {
    let admin = admin(bootstrap);
    within(
        Duration::from_secs(20),
        "create_topics",
        admin.create_topics(topics, &admin_opts().validate_only(validate_only)),
    )
    .await
    .expect("create_topics request")
}

async fn create_one(
    bootstrap: &str,
    name: &str,
    partitions: i32,
    replication: i32,
) -> Result<String, (String, RDKafkaErrorCode)> {
    let mut r = create(
        bootstrap,
        &[NewTopic::new(
            name,
            partitions,
            TopicReplication::Fixed(replication),
        )],
        false,
    )
    .await;
    assert_eq!(r.len(), 1);
    r.pop().unwrap()
}

async fn grow(
    bootstrap: &str,
    topic: &str,
    total: usize,
) -> Result<String, (String, RDKafkaErrorCode)> {
    let admin = admin(bootstrap);
    let mut r = within(
        Duration::from_secs(20),
        "create_partitions",
        admin.create_partitions([&NewPartitions::new(topic, total)], &admin_opts()),
    )
    .await
    .expect("create_partitions request");
    assert_eq!(r.len(), 1);
    r.pop().unwrap()
}

async fn delete(bootstrap: &str, topics: &[&str]) -> TopicResults {
    let admin = admin(bootstrap);
    within(
        Duration::from_secs(20),
        "delete_topics",
        admin.delete_topics(topics, &admin_opts()),
    )
    .await
    .expect("delete_topics request")
}

/// Produces `(partition, key, value)` messages one at a time; returns their offsets.
async fn produce(bootstrap: &str, topic: &str, msgs: &[(i32, String, String)]) -> Vec<i64> {
    let p = producer(bootstrap, &[("linger.ms", "0")]);
    let mut offsets = Vec::new();
    for (part, key, value) in msgs {
        let d = within(
            Duration::from_secs(20),
            "produce",
            p.send(
                FutureRecord::to(topic)
                    .partition(*part)
                    .key(key)
                    .payload(value),
                Duration::from_secs(5),
            ),
        )
        .await
        .unwrap_or_else(|(e, _)| panic!("produce to {topic}/{part}: {e}"));
        assert_eq!(d.partition, *part);
        offsets.push(d.offset);
    }
    offsets
}

fn err(name: &str, code: RDKafkaErrorCode) -> Result<String, (String, RDKafkaErrorCode)> {
    Err((name.to_string(), code))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn created_topics_appear_in_metadata_with_their_partitions() {
    let _dog = watchdog(Duration::from_secs(120));
    let broker = Broker::start(&[]);
    let b = broker.bootstrap();
    let res = create(
        &b,
        &[
            NewTopic::new("orders", 5, TopicReplication::Fixed(1)),
            NewTopic::new("events", 1, TopicReplication::Fixed(1)),
        ],
        false,
    )
    .await;
    assert_eq!(
        res,
        vec![Ok("orders".to_string()), Ok("events".to_string())]
    );

    let c = consumer(&b, &[]);
    let md = c.fetch_metadata(None, Duration::from_secs(10)).unwrap();
    assert_eq!(md.brokers().len(), 1, "one broker");
    let me = &md.brokers()[0];
    assert_eq!(me.port() as u16, broker.addr().port(), "advertised port");
    assert_eq!(me.host(), "127.0.0.1", "advertised host");
    let topics: BTreeMap<&str, _> = md.topics().iter().map(|t| (t.name(), t)).collect();
    for (name, n) in [("orders", 5), ("events", 1)] {
        let t = topics
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing from metadata"));
        assert!(t.error().is_none(), "{name}: {:?}", t.error());
        let mut ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
        ids.sort();
        assert_eq!(ids, (0..n).collect::<Vec<_>>(), "{name} partitions");
        for p in t.partitions() {
            assert_eq!(p.leader(), me.id(), "{name}/{} leader", p.id());
            assert_eq!(p.replicas(), &[me.id()], "{name}/{} replicas", p.id());
            assert_eq!(p.isr(), &[me.id()], "{name}/{} isr", p.id());
        }
    }
    // Each partition has its own directory in the data dir.
    for p in 0..5 {
        assert!(
            broker.partition_dir("orders", p).is_dir(),
            "orders-{p} directory"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_only_checks_everything_but_creates_nothing() {
    let _dog = watchdog(Duration::from_secs(120));
    let broker = Broker::start(&[]);
    let b = broker.bootstrap();
    create_topic(&b, "existing", 1).await;

    let res = create(
        &b,
        &[
            NewTopic::new("dry-run", 3, TopicReplication::Fixed(1)),
            NewTopic::new("existing", 3, TopicReplication::Fixed(1)),
            NewTopic::new("dry-zero", 0, TopicReplication::Fixed(1)),
            NewTopic::new("dry/bad", 1, TopicReplication::Fixed(1)),
        ],
        true,
    )
    .await;
    assert_eq!(
        res,
        vec![
            Ok("dry-run".to_string()),
            err("existing", RDKafkaErrorCode::TopicAlreadyExists),
            err("dry-zero", RDKafkaErrorCode::InvalidPartitions),
            err("dry/bad", RDKafkaErrorCode::InvalidTopic),
        ]
    );
    let topics = topics_in_metadata(&b);
    assert!(
        !topics.contains_key("dry-run"),
        "validate_only must not create: {topics:?}"
    );
    assert_eq!(topics.get("existing"), Some(&1), "existing topic untouched");
    assert!(
        !broker.partition_dir("dry-run", 0).exists(),
        "no directory for a validated topic"
    );
    // The name was not reserved either.
    assert_eq!(
        create_one(&b, "dry-run", 3, 1).await,
        Ok("dry-run".to_string())
    );
    assert_eq!(topics_in_metadata(&b).get("dry-run"), Some(&3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_an_existing_topic_fails_and_leaves_it_unchanged() {
    let _dog = watchdog(Duration::from_secs(120));
    let broker = Broker::start(&[]);
    let b = broker.bootstrap();
    create_topic(&b, "twice", 2).await;
    let offsets = produce(&b, "twice", &[(1, "k".into(), "v".into())]).await;
    assert_eq!(offsets, vec![0]);
    assert_eq!(
        create_one(&b, "twice", 4, 1).await,
        err("twice", RDKafkaErrorCode::TopicAlreadyExists)
    );
    assert_eq!(
        topics_in_metadata(&b).get("twice"),
        Some(&2),
        "partition count unchanged"
    );
    assert_eq!(watermarks(&b, "twice", 1), (0, 1), "data untouched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_topic_names_are_refused() {
    let _dog = watchdog(Duration::from_secs(120));
    let broker = Broker::start(&[]);
    let b = broker.bootstrap();
    let too_long = "a".repeat(250);
    let bad = [
        "bad/name",
        "..",
        ".",
        too_long.as_str(),
        "has space",
        "star*",
        "colon:name",
    ];
    for name in bad {
        assert_eq!(
            create_one(&b, name, 1, 1).await,
            err(name, RDKafkaErrorCode::InvalidTopic),
            "creating topic {name:?}"
        );
    }
    let topics = topics_in_metadata(&b);
    for name in bad {
        assert!(!topics.contains_key(name), "{name:?} must not exist");
    }
    // The longest legal name, and every legal character.
    let longest = "b".repeat(249);
    assert_eq!(create_one(&b, &longest, 1, 1).await, Ok(longest.clone()));
    let all_chars = "Az09._-mixed";
    assert_eq!(
        create_one(&b, all_chars, 1, 1).await,
        Ok(all_chars.to_string())
    );
    let topics = topics_in_metadata(&b);
    assert!(topics.contains_key(&longest) && topics.contains_key(all_chars));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impossible_partition_counts_and_replication_factors_are_refused() {
    let _dog = watchdog(Duration::from_secs(120));
    let broker = Broker::with_overrides(&[("num.partitions", "3")]);
    let b = broker.bootstrap();
    assert_eq!(
        create_one(&b, "zero-parts", 0, 1).await,
        err("zero-parts", RDKafkaErrorCode::InvalidPartitions)
    );
    assert_eq!(
        create_one(&b, "rf-three", 1, 3).await,
        err("rf-three", RDKafkaErrorCode::InvalidReplicationFactor)
    );
    assert_eq!(
        create_one(&b, "rf-zero", 1, 0).await,
        err("rf-zero", RDKafkaErrorCode::InvalidReplicationFactor)
    );
    let topics = topics_in_metadata(&b);
    for name in ["zero-parts", "rf-three", "rf-zero"] {
        assert!(!topics.contains_key(name), "{name} must not exist");
    }
    // -1 for both means "the broker's defaults": num.partitions=3, one replica.
    assert_eq!(
        create_one(&b, "defaults", -1, -1).await,
        Ok("defaults".to_string())
    );
    assert_eq!(topics_in_metadata(&b).get("defaults"), Some(&3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_partitions_grows_a_topic_and_new_partitions_are_usable() {
    let _dog = watchdog(Duration::from_secs(120));
    let broker = Broker::start(&[]);
    let b = broker.bootstrap();
    create_topic(&b, "grow", 3).await;
    let before: Vec<(i32, String, String)> = (0..3)
        .map(|p| (p, format!("k{p}"), format!("before-{p}")))
        .collect();
    assert_eq!(produce(&b, "grow", &before).await, vec![0, 0, 0]);

    assert_eq!(grow(&b, "grow", 6).await, Ok("grow".to_string()));
    assert_eq!(topics_in_metadata(&b).get("grow"), Some(&6));
    for p in 3..6 {
        assert!(
            broker.partition_dir("grow", p).is_dir(),
            "grow-{p} directory"
        );
    }

    let after: Vec<(i32, String, String)> = (0..6)
        .map(|p| (p, format!("k{p}"), format!("after-{p}")))
        .collect();
    let offsets = produce(&b, "grow", &after).await;
    assert_eq!(
        offsets,
        vec![1, 1, 1, 0, 0, 0],
        "old partitions continue, new ones start at 0"
    );
    let counts: Vec<(i32, usize)> = (0..6).map(|p| (p, if p < 3 { 2 } else { 1 })).collect();
    let by_part = consume_from_start(&b, "grow", &counts, Duration::from_secs(30));
    for p in 0..6 {
        let values: Vec<String> = by_part[&p].iter().map(|m| m.value_str()).collect();
        let want: Vec<String> = if p < 3 {
            vec![format!("before-{p}"), format!("after-{p}")]
        } else {
            vec![format!("after-{p}")]
        };
        assert_eq!(values, want, "partition {p}");
    }

    // Shrinking or staying the same is refused; unknown topics are reported.
    assert_eq!(
        grow(&b, "grow", 3).await,
        err("grow", RDKafkaErrorCode::InvalidPartitions)
    );
    assert_eq!(
        grow(&b, "grow", 6).await,
        err("grow", RDKafkaErrorCode::InvalidPartitions)
    );
    assert_eq!(
        grow(&b, "no-such-topic", 4).await,
        err("no-such-topic", RDKafkaErrorCode::UnknownTopicOrPartition)
    );
    assert_eq!(topics_in_metadata(&b).get("grow"), Some(&6));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_topics_disappear_and_their_names_can_be_reused() {
    let _dog = watchdog(Duration::from_secs(120));
    let broker = Broker::with_overrides(&[("auto.create.topics.enable", "false")]);
    let b = broker.bootstrap();
    create_topic(&b, "doomed", 2).await;
    create_topic(&b, "survivor", 1).await;
    let msgs: Vec<(i32, String, String)> = (0..5)
        .map(|i| (i % 2, format!("k{i}"), format!("old-{i}")))
        .collect();
    produce(&b, "doomed", &msgs).await;
    produce(&b, "survivor", &[(0, "s".into(), "kept".into())]).await;

    assert_eq!(
        delete(&b, &["doomed"]).await,
        vec![Ok("doomed".to_string())]
    );
    let topics = topics_in_metadata(&b);
    assert!(
        !topics.contains_key("doomed"),
        "deleted topic still listed: {topics:?}"
    );
    assert_eq!(topics.get("survivor"), Some(&1));
    let md = raw_metadata(broker.addr(), Some(&["doomed"]), false);
    assert_eq!(md.topics.len(), 1);
    assert_eq!(
        md.topics[0].error_code, UNKNOWN_TOPIC_OR_PARTITION,
        "metadata for a deleted topic"
    );

    assert_eq!(
        delete(&b, &["doomed", "never-existed"]).await,
        vec![
            err("doomed", RDKafkaErrorCode::UnknownTopicOrPartition),
            err("never-existed", RDKafkaErrorCode::UnknownTopicOrPartition),
        ]
    );

    // Same name again: a new, empty topic.
    create_topic(&b, "doomed", 1).await;
    assert_eq!(
        watermarks(&b, "doomed", 0),
        (0, 0),
        "recreated topic starts empty"
    );
    assert_eq!(
        produce(&b, "doomed", &[(0, "n".into(), "new".into())]).await,
        vec![0]
    );
    let by_part = consume_from_start(&b, "doomed", &[(0, 1)], Duration::from_secs(20));
    assert_eq!(by_part[&0][0].value_str(), "new");
    assert_eq!(watermarks(&b, "doomed", 0), (0, 1));
    assert_eq!(
        watermarks(&b, "survivor", 0),
        (0, 1),
        "other topics unaffected"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_partitions_and_deletions_survive_restart() {
    let _dog = watchdog(Duration::from_secs(120));
    let mut broker = Broker::with_overrides(&[("auto.create.topics.enable", "false")]);
    let b = broker.bootstrap();
    create_topic(&b, "keep-a", 3).await;
    create_topic(&b, "keep-b", 1).await;
    create_topic(&b, "gone", 2).await;
    assert_eq!(grow(&b, "keep-b", 4).await, Ok("keep-b".to_string()));
    assert_eq!(delete(&b, &["gone"]).await, vec![Ok("gone".to_string())]);
    produce(&b, "keep-a", &[(2, "k".into(), "in keep-a/2".into())]).await;
    produce(&b, "keep-b", &[(3, "k".into(), "in keep-b/3".into())]).await;
    let ids_before = topic_ids(&broker);

    broker.restart();
    let b = broker.bootstrap();
    let topics = topics_in_metadata(&b);
    assert_eq!(topics.get("keep-a"), Some(&3), "{topics:?}");
    assert_eq!(topics.get("keep-b"), Some(&4), "{topics:?}");
    assert!(
        !topics.contains_key("gone"),
        "deleted topic came back: {topics:?}"
    );
    assert_eq!(
        topic_ids(&broker),
        ids_before,
        "topic ids are stable across restarts"
    );
    let a = consume_from_start(&b, "keep-a", &[(2, 1)], Duration::from_secs(20));
    assert_eq!(a[&2][0].value_str(), "in keep-a/2");
    let kb = consume_from_start(&b, "keep-b", &[(3, 1)], Duration::from_secs(20));
    assert_eq!(kb[&3][0].value_str(), "in keep-b/3");
}

fn topic_ids(broker: &Broker) -> BTreeMap<String, String> {
    let md = raw_metadata(broker.addr(), None, false);
    md.topics
        .iter()
        .map(|t| {
            assert!(!t.topic_id.is_nil(), "topic {:?} has a nil id", t.name);
            (
                t.name.as_ref().unwrap().0.to_string(),
                t.topic_id.to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_auto_creates_requested_topics_when_enabled() {
    let _dog = watchdog(Duration::from_secs(120));
    let broker = Broker::with_overrides(&[
        ("auto.create.topics.enable", "true"),
        ("num.partitions", "4"),
    ]);
    let addr = broker.addr();

    let md = raw_metadata(addr, Some(&["auto-made"]), true);
    assert_eq!(md.topics.len(), 1);
    assert!(
        [0, LEADER_NOT_AVAILABLE].contains(&md.topics[0].error_code),
        "first metadata for an auto-created topic: error {}",
        md.topics[0].error_code
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let md = raw_metadata(addr, Some(&["auto-made"]), false);
        let t = &md.topics[0];
        if t.error_code == 0 {
            assert_eq!(
                t.partitions.len(),
                4,
                "num.partitions applies to auto-created topics"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "auto-created topic never became available: {t:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A client that does not allow auto-creation does not get it.
    let md = raw_metadata(addr, Some(&["not-made"]), false);
    assert_eq!(md.topics[0].error_code, UNKNOWN_TOPIC_OR_PARTITION);
    // An illegal name is not auto-created.
    let md = raw_metadata(addr, Some(&["bad/auto"]), true);
    assert_eq!(md.topics[0].error_code, INVALID_TOPIC);
    let topics = topics_in_metadata(&broker.bootstrap());
    assert!(
        !topics.contains_key("not-made") && !topics.contains_key("bad/auto"),
        "{topics:?}"
    );
    assert_eq!(topics.get("auto-made"), Some(&4));

    // librdkafka's producer auto-creates by producing.
    let offsets = produce(
        &broker.bootstrap(),
        "auto-by-producer",
        &[(0, "k".into(), "v".into())],
    )
    .await;
    assert_eq!(offsets, vec![0]);
    assert_eq!(
        topics_in_metadata(&broker.bootstrap()).get("auto-by-producer"),
        Some(&4)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_does_not_auto_create_when_disabled() {
    let _dog = watchdog(Duration::from_secs(120));
    let broker = Broker::with_overrides(&[("auto.create.topics.enable", "false")]);
    let md = raw_metadata(broker.addr(), Some(&["nope"]), true);
    assert_eq!(md.topics.len(), 1);
    assert_eq!(md.topics[0].error_code, UNKNOWN_TOPIC_OR_PARTITION);
    assert!(!topics_in_metadata(&broker.bootstrap()).contains_key("nope"));

    // A producer cannot conjure it either: delivery fails.
    let p = producer(&broker.bootstrap(), &[("message.timeout.ms", "3000")]);
    let res = within(
        Duration::from_secs(20),
        "produce to a missing topic",
        p.send(
            FutureRecord::to("nope").key("k").payload("v"),
            Duration::from_secs(1),
        ),
    )
    .await;
    assert!(
        res.is_err(),
        "delivery to a missing topic succeeded: {res:?}"
    );
    assert!(!topics_in_metadata(&broker.bootstrap()).contains_key("nope"));
}

fn raw_list_offset(
    broker: &Broker,
    topic: &str,
    partition: i32,
    timestamp: i64,
) -> (i16, i64, i64) {
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_timestamp(timestamp)])]);
    let resp = RawClient::connect(broker.addr()).call(7, &req);
    let p = &resp.topics[0].partitions[0];
    assert_eq!(p.partition_index, partition);
    (p.error_code, p.offset, p.timestamp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_offsets_finds_earliest_latest_and_by_timestamp() {
    let _dog = watchdog(Duration::from_secs(120));
    let broker = Broker::start(&[]);
    let b = broker.bootstrap();
    create_topic(&b, "times", 1).await;
    let base = now_ms() - 600_000;
    let p = producer(&b, &[("linger.ms", "50")]);
    // Offsets 0..5 go out together (one batch), 5..10 one by one (one batch each).
    let mut futs = Vec::new();
    for i in 0..5i64 {
        let key = format!("t{i}");
        futs.push(
            p.send_result(
                FutureRecord::to("times")
                    .partition(0)
                    .key(&key)
                    .payload("x")
                    .timestamp(base + i * 1000),
            )
            .map_err(|(e, _)| e)
            .unwrap(),
        );
    }
    for f in futs {
        within(Duration::from_secs(20), "delivery", f)
            .await
            .unwrap()
            .expect("delivered");
    }
    for i in 5..10i64 {
        let key = format!("t{i}");
        let d = within(
            Duration::from_secs(20),
            "delivery",
            p.send(
                FutureRecord::to("times")
                    .partition(0)
                    .key(&key)
                    .payload("x")
                    .timestamp(base + i * 1000),
                Duration::from_secs(5),
            ),
        )
        .await
        .unwrap_or_else(|(e, _)| panic!("{e}"));
        assert_eq!(d.offset, i);
    }

    assert_eq!(watermarks(&b, "times", 0), (0, 10));
    let c = consumer(&b, &[]);
    let lookup = |ts: i64| -> Offset {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("times", 0, Offset::Offset(ts))
            .unwrap();
        let res = c
            .offsets_for_times(tpl, Duration::from_secs(10))
            .expect("offsets_for_times");
        let e = res.find_partition("times", 0).expect("partition in result");
        assert!(
            e.error().is_ok(),
            "offsets_for_times({ts}): {:?}",
            e.error()
        );
        e.offset()
    };
    assert_eq!(lookup(base - 5000), Offset::Offset(0), "before everything");
    assert_eq!(
        lookup(base),
        Offset::Offset(0),
        "exactly the first timestamp"
    );
    assert_eq!(
        lookup(base + 3500),
        Offset::Offset(4),
        "inside the first batch"
    );
    assert_eq!(
        lookup(base + 5000),
        Offset::Offset(5),
        "first of the single batches"
    );
    assert_eq!(lookup(base + 8999), Offset::Offset(9), "last message");
    assert_eq!(lookup(base + 9001), Offset::End, "after everything");

    // The same over a raw ListOffsets, which also returns the found record's timestamp.
    assert_eq!(
        raw_list_offset(&broker, "times", 0, -2),
        (0, 0, -1),
        "earliest"
    );
    assert_eq!(
        raw_list_offset(&broker, "times", 0, -1),
        (0, 10, -1),
        "latest"
    );
    assert_eq!(
        raw_list_offset(&broker, "times", 0, base + 3500),
        (0, 4, base + 4000)
    );
    assert_eq!(
        raw_list_offset(&broker, "times", 0, base + 9001),
        (0, -1, -1)
    );
    assert_eq!(
        raw_list_offset(&broker, "times", 7, -1).0,
        UNKNOWN_TOPIC_OR_PARTITION
    );
    assert_eq!(
        raw_list_offset(&broker, "no-such", 0, -1).0,
        UNKNOWN_TOPIC_OR_PARTITION
    );

    // Fetch at the end is empty; past the end is out of range.
    let at_end = raw_fetch(broker.addr(), "times", 0, 10, 100);
    assert_eq!(at_end.error_code, 0);
    assert_eq!(at_end.high_watermark, 10);
    assert!(count_records(at_end.records.as_deref().unwrap_or_default()).is_empty());
    assert_eq!(
        raw_fetch(broker.addr(), "times", 0, 11, 100).error_code,
        OFFSET_OUT_OF_RANGE
    );
    assert_eq!(
        raw_fetch(broker.addr(), "times", 0, -5, 100).error_code,
        OFFSET_OUT_OF_RANGE
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_waiting_at_the_end_gets_a_later_message_promptly() {
    let _dog = watchdog(Duration::from_secs(120));
    let broker = Broker::start(&[]);
    let b = broker.bootstrap();
    create_topic(&b, "live", 1).await;
    assert_eq!(
        produce(&b, "live", &[(0, "first".into(), "first".into())]).await,
        vec![0]
    );

    // A long fetch.wait.max.ms: without a wake-up on produce, the consumer would only see the
    // new message after ~10 s.
    let bc = b.clone();
    let waiter = std::thread::spawn(move || {
        let c = consumer(&bc, &[("fetch.wait.max.ms", "10000")]);
        assign(&c, "live", &[(0, Offset::Offset(1))]);
        let msgs = consume_until(&c, Duration::from_secs(30), |got| !got.is_empty());
        (Instant::now(), msgs)
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !waiter.is_finished(),
        "consumer got something before anything was produced"
    );
    let produced_at = Instant::now();
    assert_eq!(
        produce(&b, "live", &[(0, "second".into(), "later".into())]).await,
        vec![1]
    );
    let (got_at, msgs) = tokio::task::spawn_blocking(move || waiter.join().unwrap())
        .await
        .unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!((msgs[0].offset, msgs[0].value_str().as_str()), (1, "later"));
    let latency = got_at.saturating_duration_since(produced_at);
    assert!(
        latency < Duration::from_secs(5),
        "long-polling consumer took {latency:?}"
    );

    // A raw Fetch at the end with nothing arriving waits about max_wait_ms, then answers empty.
    let started = Instant::now();
    let empty = raw_fetch(broker.addr(), "live", 0, 2, 1500);
    let waited = started.elapsed();
    assert_eq!(empty.error_code, 0);
    assert!(count_records(empty.records.as_deref().unwrap_or_default()).is_empty());
    assert!(
        waited >= Duration::from_millis(1000) && waited < Duration::from_secs(8),
        "empty long poll with max_wait_ms=1500 returned after {waited:?}"
    );
}

/// Produces `n` messages to partition 0 in rounds of `per_round` (each round its own batch).
async fn produce_rounds(
    bootstrap: &str,
    topic: &str,
    first: usize,
    n: usize,
    per_round: usize,
    ts: Option<i64>,
) {
    let p = producer(bootstrap, &[("linger.ms", "0")]);
    let value = "r".repeat(100);
    for round in (first..first + n).collect::<Vec<_>>().chunks(per_round) {
        let mut futs = Vec::new();
        for &i in round {
            let key = format!("ret-{i}");
            let mut rec = FutureRecord::to(topic)
                .partition(0)
                .key(&key)
                .payload(&value);
            if let Some(ts) = ts {
                rec = rec.timestamp(ts);
            }
            futs.push(p.send_result(rec).map_err(|(e, _)| e).unwrap());
        }
        for (f, &i) in futs.into_iter().zip(round) {
            let d = within(Duration::from_secs(20), "delivery", f)
                .await
                .unwrap()
                .unwrap_or_else(|(e, _)| panic!("{e}"));
            assert_eq!(d.offset, i as i64);
        }
    }
}

async fn wait_for_log_start_above_zero(bootstrap: &str, topic: &str) -> (i64, i64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (low, high) = watermarks(bootstrap, topic, 0);
        if low > 0 {
            // Let a couple more retention passes run, then read the settled values.
            tokio::time::sleep(Duration::from_millis(800)).await;
            return watermarks(bootstrap, topic, 0);
        }
        assert!(
            Instant::now() < deadline,
            "low watermark still 0 after 30 s (high {high})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// After retention: the segment files start at the low watermark, a fetch below it is out of
/// range, and a consumer with auto.offset.reset=earliest resumes at it with the right data.
fn check_after_retention(broker: &Broker, topic: &str, low: i64, high: i64) {
    let dir = broker.partition_dir(topic, 0);
    let files = log_files(&dir);
    let first_base: i64 = files[0]
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        first_base,
        low,
        "first remaining segment {} starts at the low watermark",
        files[0].display()
    );
    assert_eq!(
        files[0].file_stem().unwrap().len(),
        20,
        "segment names are 20-digit offsets"
    );

    let below = raw_fetch(broker.addr(), topic, 0, 0, 100);
    assert_eq!(
        below.error_code, OFFSET_OUT_OF_RANGE,
        "fetch below the log start"
    );
    let at = raw_fetch(broker.addr(), topic, 0, low, 100);
    assert_eq!(at.error_code, 0, "fetch at the log start");
    let batches = count_records(at.records.as_deref().unwrap_or_default());
    assert_eq!(
        batches.first().map(|b| b.0),
        Some(low),
        "first batch at the log start"
    );

    let c = consumer(&broker.bootstrap(), &[("auto.offset.reset", "earliest")]);
    assign(&c, topic, &[(0, Offset::Offset(0))]);
    let want = (high - low) as usize;
    let msgs = consume_until(&c, Duration::from_secs(30), |got| got.len() >= want);
    assert_eq!(msgs[0].offset, low, "consumer resumes at the new log start");
    for (i, m) in msgs.iter().enumerate() {
        let off = low + i as i64;
        assert_eq!(m.offset, off);
        assert_eq!(m.key_str(), format!("ret-{off}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_retention_deletes_old_segments_and_moves_the_log_start() {
    let _dog = watchdog(Duration::from_secs(180));
    const SEGMENT: u64 = 2048;
    const RETAIN: u64 = 6144;
    let mut broker = Broker::with_overrides(&[
        ("log.segment.bytes", &SEGMENT.to_string()),
        ("log.retention.bytes", &RETAIN.to_string()),
        ("log.retention.check.interval.ms", "300"),
    ]);
    let b = broker.bootstrap();
    create_topic(&b, "by-size", 1).await;
    produce_rounds(&b, "by-size", 0, 200, 4, None).await;

    let (low, high) = wait_for_log_start_above_zero(&b, "by-size").await;
    assert_eq!(high, 200);
    let files = log_files(&broker.partition_dir("by-size", 0));
    let total: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    assert!(
        total <= RETAIN + SEGMENT,
        "{total} bytes in {} segments remain; retention.bytes {RETAIN} + one segment {SEGMENT}",
        files.len()
    );
    assert!(
        total >= RETAIN - SEGMENT,
        "retention deleted too much: {total} bytes remain"
    );
    check_after_retention(&broker, "by-size", low, high);

    // The new log start survives a restart.
    broker.restart();
    let (low2, high2) = watermarks(&broker.bootstrap(), "by-size", 0);
    assert!(
        low2 >= low && high2 == 200,
        "after restart ({low2}, {high2}), before ({low}, {high})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_retention_deletes_segments_whose_records_are_older_than_retention_ms() {
    let _dog = watchdog(Duration::from_secs(180));
    let broker = Broker::with_overrides(&[
        ("log.segment.bytes", "1024"),
        ("log.retention.ms", "3600000"),
        ("log.retention.check.interval.ms", "300"),
    ]);
    let b = broker.bootstrap();
    create_topic(&b, "by-time", 1).await;
    // Two hours old (by their CreateTime timestamps), then fresh.
    produce_rounds(&b, "by-time", 0, 40, 2, Some(now_ms() - 7_200_000)).await;
    produce_rounds(&b, "by-time", 40, 10, 2, None).await;

    let (low, high) = wait_for_log_start_above_zero(&b, "by-time").await;
    assert_eq!(high, 50);
    assert!(low <= 40, "fresh records were deleted: log start {low}");
    assert!(low >= 30, "old segments were kept: log start {low}");
    check_after_retention(&broker, "by-time", low, high);
}
