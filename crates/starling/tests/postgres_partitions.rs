//! The broker with its partition logs in PostgreSQL (`--storage postgres://…`), driven by
//! librdkafka: records produced (plain, idempotent, transactional) are rows in `batches`
//! (checked with SQL), consumed back as stored, and served again after the node restarts on an
//! empty data directory or after a kill -9, under a new leader epoch that consumers validate
//! their positions against, and delivered exactly once across a database outage longer than
//! the node's leases. Consumer groups resume from offsets stored as rows. Retention and
//! DeleteRecords trim the rows; compaction, which the PostgreSQL log does not do yet, is
//! refused.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use kafka_protocol::messages::{MetadataRequest, MetadataResponse};
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::consumer::Consumer;
use rdkafka::producer::{BaseRecord, FutureRecord, Producer};
use rdkafka::Offset;
use starling_postgres::testing::TestPostgres;

/// Node lease settings short enough that a restart after kill -9 waits seconds, not tens.
const QUICK_LEASES: [(&str, &str); 2] = [
    ("broker.session.timeout.ms", "3000"),
    ("broker.heartbeat.interval.ms", "500"),
];

fn broker_on(url: &str, extra: &[(&str, &str)]) -> Broker {
    let mut overrides = vec![("storage", url)];
    overrides.extend(QUICK_LEASES);
    overrides.extend(extra);
    Broker::with_overrides(&overrides)
}

/// The one number `sql` selects.
async fn scalar(db: &starling_postgres::PgClient, sql: &str) -> i64 {
    db.query_one(sql, &[]).await.unwrap().get(0)
}

/// Each partition's leader epoch as Metadata reports it, asserting this node leads them.
fn leader_epochs(b: &Broker, topic: &str) -> BTreeMap<i32, i32> {
    let mut raw = RawClient::connect(b.addr());
    let response: MetadataResponse = raw.call(
        9,
        &MetadataRequest::default().with_topics(Some(vec![
            kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                .with_name(Some(topic_name(topic))),
        ])),
    );
    let topic = &response.topics[0];
    assert_eq!(topic.error_code, 0, "{topic:?}");
    topic
        .partitions
        .iter()
        .map(|p| {
            assert_eq!(p.error_code, 0, "{p:?}");
            assert_eq!(p.leader_id.0, 1, "{p:?}");
            (p.partition_index, p.leader_epoch)
        })
        .collect()
}

/// Produces `count` keyed records round-robin over `partitions` partitions of `topic`,
/// idempotently with acks=all, each acknowledged before returning.
async fn produce_acknowledged(bootstrap: &str, topic: &str, partitions: i32, count: usize) {
    let p = producer(
        bootstrap,
        &[("enable.idempotence", "true"), ("linger.ms", "5")],
    );
    let mut deliveries = Vec::new();
    for i in 0..count {
        let value = format!("value-{i}");
        let key = format!("key-{i}");
        let delivery = p
            .send_result(
                FutureRecord::to(topic)
                    .partition(i as i32 % partitions)
                    .key(&key)
                    .payload(&value),
            )
            .map_err(|(e, _)| e)
            .expect("enqueue");
        deliveries.push(delivery);
    }
    for delivery in deliveries {
        within(Duration::from_secs(60), "delivery", delivery)
            .await
            .expect("delivered")
            .expect("acknowledged");
    }
}

/// Every record of `topic` (`partitions` partitions, `count` records in all, as
/// [`produce_acknowledged`] wrote them) read from offset 0: by partition, (offset, value).
fn read_all(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    count: usize,
) -> BTreeMap<i32, Vec<(i64, String)>> {
    let per_partition: Vec<(i32, usize)> = (0..partitions)
        .map(|p| {
            let n = (0..count).filter(|i| *i as i32 % partitions == p).count();
            (p, n)
        })
        .collect();
    consume_from_start(bootstrap, topic, &per_partition, Duration::from_secs(60))
        .into_iter()
        .map(|(p, msgs)| (p, msgs.iter().map(|m| (m.offset, m.value_str())).collect()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_live_in_postgres_and_survive_a_restart_on_an_empty_data_dir() {
    let _dog = watchdog(Duration::from_secs(300));
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let url = pg.create_database("records").unwrap();
    let mut b = broker_on(&url, &[]);
    let bootstrap = b.bootstrap();
    create_topic(&bootstrap, "orders", 3).await;
    let first_epochs = leader_epochs(&b, "orders");
    assert!(first_epochs.values().all(|&e| e >= 1), "{first_epochs:?}");

    produce_acknowledged(&bootstrap, "orders", 3, 300).await;
    let before = read_all(&bootstrap, "orders", 3, 300);
    for (p, records) in &before {
        let offsets: Vec<i64> = records.iter().map(|r| r.0).collect();
        assert_eq!(offsets, (0..100).collect::<Vec<i64>>(), "partition {p}");
    }

    // The records are rows: 300 records in the batches, the partitions' ends at 100 each.
    let pool = starling_postgres::connect(&url, 2).await.unwrap();
    let db = pool.get().await.unwrap();
    assert_eq!(
        scalar(
            &db,
            "SELECT (sum(last_offset - base_offset + 1))::bigint FROM batches"
        )
        .await,
        300
    );
    assert_eq!(
        scalar(&db, "SELECT (sum(next_offset))::bigint FROM partitions").await,
        300
    );
    assert!(
        std::fs::read_dir(b.data_dir())
            .unwrap()
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().starts_with("orders-")),
        "no partition directory under log.dirs"
    );

    // A clean stop releases the leases; the node started again on an empty data directory
    // serves the same records, under new leader epochs.
    b.terminate();
    // A clean stop stored each partition's producer state at its end: the next leader
    // replays no batch.
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM producer_snapshots WHERE snapshot_offset = 100"
        )
        .await,
        3
    );
    std::fs::remove_dir_all(b.data_dir()).unwrap();
    std::fs::create_dir_all(b.data_dir()).unwrap();
    b.start_again();
    let bootstrap = b.bootstrap();
    let epochs = leader_epochs(&b, "orders");
    for (p, epoch) in &epochs {
        assert!(*epoch > first_epochs[p], "{first_epochs:?} -> {epochs:?}");
    }
    assert_eq!(read_all(&bootstrap, "orders", 3, 300), before);

    // More records go after them, written under the new epoch.
    produce_acknowledged(&bootstrap, "orders", 3, 30).await;
    assert_eq!(
        scalar(&db, "SELECT (sum(next_offset))::bigint FROM partitions").await,
        330
    );
    assert!(
        scalar(
            &db,
            "SELECT count(DISTINCT leader_epoch) FROM batches WHERE partition = 0"
        )
        .await
            >= 2
    );
}

/// What an acks=all producer had acknowledged when the node was killed is there after it
/// starts again, and a consumer that was reading carries on from its position, validated
/// against the new leader epoch, without losing or repeating a record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_record_and_consumers_carry_on() {
    let _dog = watchdog(Duration::from_secs(300));
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let url = pg.create_database("kill").unwrap();
    let mut b = broker_on(&url, &[]);
    b.pin_port();
    b.restart();
    let bootstrap = b.bootstrap();
    create_topic(&bootstrap, "events", 2).await;
    produce_acknowledged(&bootstrap, "events", 2, 100).await;

    let c = consumer(&bootstrap, &[]);
    assign(
        &c,
        "events",
        &[(0, Offset::Offset(0)), (1, Offset::Offset(0))],
    );
    let first = consume_until(&c, Duration::from_secs(30), |got| got.len() >= 100);

    b.kill9();
    b.start_again();
    produce_acknowledged(&bootstrap, "events", 2, 50).await;
    let rest = consume_through_outage(&c, 50, Duration::from_secs(60));

    let mut seen: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for m in first.iter().chain(&rest) {
        seen.entry(m.partition).or_default().push(m.offset);
    }
    for (p, offsets) in &seen {
        assert_eq!(offsets, &(0..75).collect::<Vec<i64>>(), "partition {p}");
    }
    let values: Vec<String> = rest.iter().map(Msg::value_str).collect();
    assert!(values.iter().all(|v| {
        let n: usize = v.trim_start_matches("value-").parse().unwrap();
        n < 50
    }));
}

/// `count` messages, passing over the errors librdkafka reports while the broker is down.
fn consume_through_outage(
    c: &rdkafka::consumer::BaseConsumer,
    count: usize,
    limit: Duration,
) -> Vec<Msg> {
    let deadline = std::time::Instant::now() + limit;
    let mut got = Vec::new();
    while got.len() < count {
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {count} messages within {limit:?}",
            got.len()
        );
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => got.push(Msg::of(&m)),
            Some(Err(rdkafka::error::KafkaError::MessageConsumption(
                rdkafka::types::RDKafkaErrorCode::AllBrokersDown
                | rdkafka::types::RDKafkaErrorCode::BrokerTransportFailure,
            ))) => {}
            Some(Err(e)) => panic!("consumer error after {} messages: {e}", got.len()),
            None => {}
        }
    }
    got
}

/// Transactions on PostgreSQL partitions: read_committed consumers see committed records only
/// and skip the aborted ones, before and after a restart (which rebuilds the partitions'
/// transaction state from the rows).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_commit_and_abort_on_postgres_partitions() {
    let _dog = watchdog(Duration::from_secs(300));
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let url = pg.create_database("txn").unwrap();
    let mut b = broker_on(&url, &[]);
    let bootstrap = b.bootstrap();
    create_topic(&bootstrap, "ledger", 2).await;
    let p: rdkafka::producer::BaseProducer =
        client_config(&bootstrap, &[("transactional.id", "ledger-writer")])
            .create()
            .expect("transactional producer");
    p.init_transactions(Duration::from_secs(30))
        .expect("init_transactions");
    let write = |values: &[&str], commit: bool| {
        p.begin_transaction().expect("begin");
        for (i, value) in values.iter().enumerate() {
            p.send(
                BaseRecord::<str, str>::to("ledger")
                    .partition(i as i32 % 2)
                    .payload(value),
            )
            .map_err(|(e, _)| e)
            .expect("send");
        }
        if commit {
            p.commit_transaction(Duration::from_secs(30))
                .expect("commit");
        } else {
            p.flush(Duration::from_secs(30)).expect("flush");
            p.abort_transaction(Duration::from_secs(30)).expect("abort");
        }
    };
    write(&["a1", "a2"], true);
    write(&["x1", "x2"], false);
    write(&["b1", "b2"], true);

    let committed = |bootstrap: &str| {
        let c = consumer(bootstrap, &[("isolation.level", "read_committed")]);
        assign(
            &c,
            "ledger",
            &[(0, Offset::Offset(0)), (1, Offset::Offset(0))],
        );
        let mut values: Vec<String> =
            consume_until(&c, Duration::from_secs(30), |got| got.len() >= 4)
                .iter()
                .map(Msg::value_str)
                .collect();
        // Nothing more is readable: the aborted records stay hidden.
        assert_eq!(consume_for(&c, Duration::from_secs(2)), 0);
        values.sort();
        values
    };
    assert_eq!(committed(&bootstrap), ["a1", "a2", "b1", "b2"]);
    drop(p);

    let pool = starling_postgres::connect(&url, 2).await.unwrap();
    let db = pool.get().await.unwrap();
    assert_eq!(
        scalar(&db, "SELECT count(*) FROM batches WHERE is_control").await,
        6,
        "three markers in each of two partitions"
    );
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM batches WHERE marker_commits = false"
        )
        .await,
        2
    );

    b.restart();
    assert_eq!(committed(&b.bootstrap()), ["a1", "a2", "b1", "b2"]);
}

/// Polls for `duration`; how many messages arrived.
fn consume_for(c: &rdkafka::consumer::BaseConsumer, duration: Duration) -> usize {
    let deadline = std::time::Instant::now() + duration;
    let mut got = 0;
    while std::time::Instant::now() < deadline {
        if let Some(m) = c.poll(Duration::from_millis(100)) {
            m.expect("no consumer error");
            got += 1;
        }
    }
    got
}

/// Retention by size deletes the oldest batches' rows and moves the log start (what
/// ListOffsets' earliest answers); DeleteRecords moves it further.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_and_delete_records_trim_the_rows() {
    let _dog = watchdog(Duration::from_secs(300));
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let url = pg.create_database("retention").unwrap();
    let b = broker_on(&url, &[("log.retention.check.interval.ms", "300")]);
    let bootstrap = b.bootstrap();
    let created = within(
        Duration::from_secs(20),
        "create_topics",
        admin(&bootstrap).create_topics(
            &[NewTopic::new("trimmed", 1, TopicReplication::Fixed(1))
                .set("retention.bytes", "4000")],
            &admin_opts(),
        ),
    )
    .await
    .expect("create_topics");
    assert!(created.iter().all(Result::is_ok), "{created:?}");
    // One record per batch, each about 1 KiB.
    let p = producer(
        &bootstrap,
        &[("linger.ms", "0"), ("batch.num.messages", "1")],
    );
    let payload = "x".repeat(1000);
    for i in 0..40 {
        let delivery = p
            .send_result(
                FutureRecord::<str, str>::to("trimmed")
                    .partition(0)
                    .payload(&payload),
            )
            .map_err(|(e, _)| e)
            .expect("enqueue");
        within(Duration::from_secs(30), "delivery", delivery)
            .await
            .expect("delivered")
            .unwrap_or_else(|e| panic!("record {i}: {e:?}"));
    }
    let pool = starling_postgres::connect(&url, 2).await.unwrap();
    let db = pool.get().await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let start = scalar(&db, "SELECT log_start_offset FROM partitions").await;
        let rows = scalar(&db, "SELECT count(*) FROM batches").await;
        if start > 0 && rows <= 5 {
            assert!(start >= 35, "log start {start}");
            assert_eq!(
                scalar(&db, "SELECT min(base_offset) FROM batches").await,
                start
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "retention did not trim: start {start}, {rows} rows"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let c = consumer(&bootstrap, &[]);
    let (low, high) = c
        .fetch_watermarks("trimmed", 0, Duration::from_secs(10))
        .expect("watermarks");
    assert_eq!(high, 40);
    assert!(low >= 35, "earliest {low}");

    // DeleteRecords up to the high watermark empties it.
    let deleted = cli_delete_records(&bootstrap, "trimmed", 0, 40);
    assert!(deleted.contains("40"), "{deleted}");
    assert_eq!(scalar(&db, "SELECT count(*) FROM batches").await, 0);
    assert_eq!(
        scalar(&db, "SELECT log_start_offset FROM partitions").await,
        40
    );
}

fn cli_delete_records(bootstrap: &str, topic: &str, partition: i32, offset: i64) -> String {
    run_ok(&[
        "topic",
        "trim",
        "-b",
        bootstrap,
        topic,
        "--partition",
        &partition.to_string(),
        "--offset",
        &offset.to_string(),
    ])
}

/// A compacted topic on PostgreSQL is compacted as on the embedded log: the log cleaner, on the
/// node leading the partition, leaves the latest value of each key at its offset, and a topic
/// changed to `cleanup.policy=compact` is compacted too. (With a dirty ratio just above
/// nothing, each round's new records are cleaned, not only once they are half the log.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compacted_topic_keeps_the_latest_value_of_each_key_on_postgres() {
    let _dog = watchdog(Duration::from_secs(180));
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let url = pg.create_database("compact").unwrap();
    let b = broker_on(&url, &[("log.cleaner.backoff.ms", "100")]);
    let bootstrap = b.bootstrap();
    let created = within(
        Duration::from_secs(20),
        "create_topics",
        admin(&bootstrap).create_topics(
            &[NewTopic::new("compacted", 1, TopicReplication::Fixed(1))
                .set("cleanup.policy", "compact")
                .set("min.cleanable.dirty.ratio", "0.01")],
            &admin_opts(),
        ),
    )
    .await
    .expect("create_topics");
    assert!(created.iter().all(Result::is_ok), "{created:?}");
    create_topic(&bootstrap, "plain", 1).await;
    let altered = librdkafka_alter(
        &bootstrap,
        true,
        TOPIC_RESOURCE,
        "plain",
        &[
            ("cleanup.policy", SET, Some("compact")),
            ("min.cleanable.dirty.ratio", SET, Some("0.01")),
        ],
        false,
    );
    assert_eq!(altered, Altered::ok());

    let p = producer(&bootstrap, &[]);
    for topic in ["compacted", "plain"] {
        // Three rounds over ten keys: offsets 20-29 hold the latest values.
        for round in 0..3 {
            for key in 0..10 {
                let (key, value) = (format!("k{key}"), format!("r{round}-k{key}"));
                p.send(
                    FutureRecord::to(topic)
                        .partition(0)
                        .key(&key)
                        .payload(&value),
                    Duration::from_secs(10),
                )
                .await
                .expect("acknowledged");
            }
        }
    }
    for topic in ["compacted", "plain"] {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let read = consume_from_start(&bootstrap, topic, &[(0, 10)], Duration::from_secs(10));
            let got: Vec<(i64, Vec<u8>)> = read[&0]
                .iter()
                .take(10)
                .map(|m| (m.offset, m.value.clone().unwrap()))
                .collect();
            let latest: Vec<(i64, Vec<u8>)> = (0..10)
                .map(|k| (20 + k, format!("r2-k{k}").into_bytes()))
                .collect();
            if got == latest {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{topic} was not compacted: {got:?}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    // The offsets did not move: the log still ends at 30, and the next record goes there.
    let delivered = p
        .send(
            FutureRecord::to("compacted")
                .partition(0)
                .key("k0")
                .payload("r3-k0"),
            Duration::from_secs(10),
        )
        .await
        .expect("acknowledged");
    assert_eq!(delivered.offset, 30);
}

/// A consumer group's committed offsets and membership records are rows in `group_records`,
/// written under the group's lease: a node started again on an empty data directory serves
/// them, and the group's next consumer resumes where the first committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_offsets_live_in_postgres_and_survive_an_empty_data_dir() {
    let _dog = watchdog(Duration::from_secs(300));
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let url = pg.create_database("groups").unwrap();
    let mut b = broker_on(&url, &[("group.initial.rebalance.delay.ms", "0")]);
    let bootstrap = b.bootstrap();
    create_topic(&bootstrap, "jobs", 2).await;
    produce_acknowledged(&bootstrap, "jobs", 2, 100).await;

    let group_member = |bootstrap: &str| {
        let c: rdkafka::consumer::BaseConsumer = client_config(
            bootstrap,
            &[
                ("group.id", "workers"),
                ("enable.auto.commit", "false"),
                ("auto.offset.reset", "earliest"),
                ("enable.partition.eof", "false"),
            ],
        )
        .create()
        .expect("group consumer");
        c.subscribe(&["jobs"]).expect("subscribe");
        c
    };
    let first = group_member(&bootstrap);
    let got = consume_until(&first, Duration::from_secs(60), |got| got.len() >= 60);
    // Commit just past the 30th record of each partition.
    let mut offsets = rdkafka::TopicPartitionList::new();
    for p in 0..2 {
        offsets
            .add_partition_offset("jobs", p, Offset::Offset(30))
            .unwrap();
    }
    first
        .commit(&offsets, rdkafka::consumer::CommitMode::Sync)
        .expect("commit");
    assert!(got.len() >= 60);
    drop(first);

    let pool = starling_postgres::connect(&url, 2).await.unwrap();
    let db = pool.get().await.unwrap();
    assert!(
        scalar(
            &db,
            "SELECT count(*) FROM group_records WHERE group_id = 'workers'"
        )
        .await
            >= 2,
        "the group's records are rows"
    );
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM leases WHERE kind = 'group' AND name = 'workers' AND owner = 1"
        )
        .await,
        1
    );

    b.terminate();
    std::fs::remove_dir_all(b.data_dir()).unwrap();
    std::fs::create_dir_all(b.data_dir()).unwrap();
    b.start_again();
    let bootstrap = b.bootstrap();
    let second = group_member(&bootstrap);
    let resumed = consume_until(&second, Duration::from_secs(60), |got| got.len() >= 40);
    let mut by_partition: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for m in &resumed {
        by_partition.entry(m.partition).or_default().push(m.offset);
    }
    for (p, offsets) in &by_partition {
        assert_eq!(offsets, &(30..50).collect::<Vec<i64>>(), "partition {p}");
    }
}

/// The database goes away for longer than the node's leases: produces wait (librdkafka retries
/// KAFKA_STORAGE_ERROR and NOT_LEADER_OR_FOLLOWER), and once it is back the node takes its
/// partitions again under new epochs and every record is delivered exactly once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_longer_than_the_leases_delays_produces_and_loses_nothing() {
    let _dog = watchdog(Duration::from_secs(300));
    let Some(mut pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let url = pg.create_database("outage").unwrap();
    let b = broker_on(&url, &[]);
    let bootstrap = b.bootstrap();
    create_topic(&bootstrap, "steady", 1).await;
    let epoch_before = leader_epochs(&b, "steady")[&0];
    let p = producer(
        &bootstrap,
        &[("enable.idempotence", "true"), ("linger.ms", "5")],
    );
    let send = |from: usize, to: usize| {
        (from..to)
            .map(|i| {
                p.send_result(
                    FutureRecord::<str, str>::to("steady")
                        .partition(0)
                        .payload(&format!("value-{i}")),
                )
                .map_err(|(e, _)| e)
                .expect("enqueue")
            })
            .collect::<Vec<_>>()
    };
    for delivery in send(0, 20) {
        within(Duration::from_secs(30), "delivery", delivery)
            .await
            .expect("delivered")
            .expect("acknowledged");
    }
    pg.kill();
    let during = send(20, 40);
    // Longer than broker.session.timeout.ms: the node's registration and leases lapse.
    tokio::time::sleep(Duration::from_secs(4)).await;
    pg.start_again().unwrap();
    for delivery in during {
        within(
            Duration::from_secs(90),
            "delivery after the outage",
            delivery,
        )
        .await
        .expect("delivered")
        .expect("acknowledged");
    }
    let epoch_after = leader_epochs(&b, "steady")[&0];
    assert!(
        epoch_after > epoch_before,
        "{epoch_before} -> {epoch_after}"
    );
    let got = read_all(&bootstrap, "steady", 1, 40);
    let expected: Vec<(i64, String)> = (0..40).map(|i| (i, format!("value-{i}"))).collect();
    assert_eq!(got[&0], expected);
}
