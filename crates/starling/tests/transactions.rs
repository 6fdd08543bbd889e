//! librdkafka's transactional producer against Starling: committed transactions are read by a
//! `read_committed` consumer and aborted ones are not (a `read_uncommitted` one sees both); a
//! consume–transform–produce loop commits its input offsets with its output; a second
//! instance with the same transactional id fences the first; a transaction left open past its
//! timeout is aborted; and a decided transaction survives `kill -9` of the broker.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};

const T: Duration = Duration::from_secs(30);

type TxnProducer = ThreadedProducer<DefaultProducerContext>;

fn txn_producer(bootstrap: &str, transactional_id: &str, extra: &[(&str, &str)]) -> TxnProducer {
    let mut config: Vec<(&str, &str)> = vec![
        ("transactional.id", transactional_id),
        ("linger.ms", "1"),
        ("message.timeout.ms", "30000"),
    ];
    config.extend_from_slice(extra);
    let producer: TxnProducer = client_config(bootstrap, &config)
        .create()
        .expect("create transactional producer");
    producer
        .init_transactions(T)
        .unwrap_or_else(|e| panic!("init_transactions for {transactional_id}: {e}"));
    producer
}

/// Sends `values` to `partition` inside the open transaction (delivery is checked by the
/// commit, which flushes first).
fn send(producer: &TxnProducer, topic: &str, partition: i32, values: &[String]) {
    for v in values {
        producer
            .send(
                BaseRecord::<(), _>::to(topic)
                    .partition(partition)
                    .payload(v),
            )
            .unwrap_or_else(|(e, _)| panic!("send {v}: {e}"));
    }
}

fn values(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// Everything `isolation` lets a consumer read of `topic`'s `partitions` from offset 0 until
/// the high watermark (or the last stable offset, for read_committed).
fn read_all(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    isolation: &str,
) -> BTreeMap<i32, Vec<String>> {
    let c = consumer(
        bootstrap,
        &[
            ("isolation.level", isolation),
            ("enable.partition.eof", "true"),
        ],
    );
    let parts: Vec<(i32, Offset)> = (0..partitions).map(|p| (p, Offset::Offset(0))).collect();
    assign(&c, topic, &parts);
    let mut out: BTreeMap<i32, Vec<String>> = (0..partitions).map(|p| (p, Vec::new())).collect();
    let mut at_end = std::collections::BTreeSet::new();
    let deadline = std::time::Instant::now() + T;
    while at_end.len() < partitions as usize {
        assert!(
            std::time::Instant::now() < deadline,
            "{isolation} read of {topic} stalled"
        );
        match c.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(m)) => {
                use rdkafka::message::Message;
                let v = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
                out.get_mut(&m.partition()).unwrap().push(v);
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            Some(Err(e)) => panic!("{isolation} consumer: {e}"),
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_committed_sees_committed_transactions_and_never_aborted_ones() {
    let _dog = watchdog(Duration::from_secs(120));
    let broker = Broker::start(&[]);
    let topic = "txn-basic";
    create_topic(&broker.bootstrap(), topic, 2).await;
    let p = txn_producer(&broker.bootstrap(), "basic", &[]);

    p.begin_transaction().unwrap();
    send(&p, topic, 0, &values("c1", 10));
    send(&p, topic, 1, &values("c1", 5));
    p.commit_transaction(T).unwrap();

    p.begin_transaction().unwrap();
    send(&p, topic, 0, &values("a1", 10));
    send(&p, topic, 1, &values("a1", 10));
    p.flush(T).unwrap();
    p.abort_transaction(T).unwrap();

    p.begin_transaction().unwrap();
    send(&p, topic, 0, &values("c2", 3));
    p.commit_transaction(T).unwrap();

    let committed = read_all(&broker.bootstrap(), topic, 2, "read_committed");
    let mut want0 = values("c1", 10);
    want0.extend(values("c2", 3));
    assert_eq!(committed[&0], want0);
    assert_eq!(committed[&1], values("c1", 5));

    // read_uncommitted sees the aborted records too, but never a control batch.
    let all = read_all(&broker.bootstrap(), topic, 2, "read_uncommitted");
    assert_eq!(all[&0].len(), 23);
    assert_eq!(all[&1].len(), 15);
    // Each partition holds its records plus one marker per transaction that wrote to it.
    assert_eq!(watermarks(&broker.bootstrap(), topic, 0), (0, 23 + 3));
    assert_eq!(watermarks(&broker.bootstrap(), topic, 1), (0, 15 + 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_committed_stops_at_an_open_transaction_until_it_commits() {
    let _dog = watchdog(Duration::from_secs(120));
    let broker = Broker::start(&[]);
    let topic = "txn-open";
    create_topic(&broker.bootstrap(), topic, 1).await;
    let plain = producer(&broker.bootstrap(), &[]);
    let p = txn_producer(&broker.bootstrap(), "open", &[]);

    p.begin_transaction().unwrap();
    send(&p, topic, 0, &values("t", 4));
    p.flush(T).unwrap();
    // A plain record after the open transaction's first one is not stable yet either.
    within(
        T,
        "plain send",
        send_to_partition0(&plain, topic, "k", b"plain").unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    let before = read_all(&broker.bootstrap(), topic, 1, "read_committed");
    assert!(before[&0].is_empty(), "{before:?}");

    p.commit_transaction(T).unwrap();
    let after = read_all(&broker.bootstrap(), topic, 1, "read_committed");
    let mut want = values("t", 4);
    want.push("plain".into());
    assert_eq!(after[&0], want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_instance_fences_the_old_one_and_aborts_its_open_transaction() {
    let _dog = watchdog(Duration::from_secs(120));
    let broker = Broker::start(&[]);
    let topic = "txn-fence";
    create_topic(&broker.bootstrap(), topic, 1).await;
    let zombie = txn_producer(&broker.bootstrap(), "fenced-app", &[]);
    zombie.begin_transaction().unwrap();
    send(&zombie, topic, 0, &values("zombie", 5));
    zombie.flush(T).unwrap();

    let successor = txn_producer(&broker.bootstrap(), "fenced-app", &[]);
    successor.begin_transaction().unwrap();
    send(&successor, topic, 0, &values("successor", 3));
    successor.commit_transaction(T).unwrap();

    let err = zombie
        .commit_transaction(T)
        .expect_err("the fenced instance cannot commit");
    let fatal = match &err {
        KafkaError::Transaction(e) => e.is_fatal(),
        _ => false,
    };
    assert!(fatal, "fencing is fatal to the old instance: {err:?}");

    let committed = read_all(&broker.bootstrap(), topic, 1, "read_committed");
    assert_eq!(committed[&0], values("successor", 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_open_past_its_timeout_is_aborted() {
    let _dog = watchdog(Duration::from_secs(120));
    let broker = Broker::start(&[]);
    let topic = "txn-timeout";
    create_topic(&broker.bootstrap(), topic, 1).await;
    let slow = txn_producer(
        &broker.bootstrap(),
        "slow-app",
        &[
            ("transaction.timeout.ms", "3000"),
            ("message.timeout.ms", "3000"),
            ("socket.timeout.ms", "3000"),
        ],
    );
    slow.begin_transaction().unwrap();
    send(&slow, topic, 0, &values("late", 3));
    slow.flush(T).unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(
        slow.commit_transaction(T).is_err(),
        "a transaction aborted by its timeout does not commit"
    );

    // The partition is stable again: a later transaction's records are readable.
    let other = txn_producer(&broker.bootstrap(), "other-app", &[]);
    other.begin_transaction().unwrap();
    send(&other, topic, 0, &values("next", 2));
    other.commit_transaction(T).unwrap();
    let committed = read_all(&broker.bootstrap(), topic, 1, "read_committed");
    assert_eq!(committed[&0], values("next", 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_and_open_transactions_come_back_right_after_kill_9() {
    let _dog = watchdog(Duration::from_secs(180));
    let mut broker = Broker::start(&[]);
    broker.pin_port();
    let topic = "txn-crash";
    create_topic(&broker.bootstrap(), topic, 1).await;
    let p = txn_producer(&broker.bootstrap(), "crash-app", &[]);
    p.begin_transaction().unwrap();
    send(&p, topic, 0, &values("kept", 5));
    p.commit_transaction(T).unwrap();
    p.begin_transaction().unwrap();
    send(&p, topic, 0, &values("open", 5));
    p.flush(T).unwrap();
    broker.kill9();
    drop(p);
    broker.start_again();

    // The open transaction holds the partition back until its id is taken over (or it times
    // out); a new instance aborts it at once.
    let successor = txn_producer(&broker.bootstrap(), "crash-app", &[]);
    successor.begin_transaction().unwrap();
    send(&successor, topic, 0, &values("after", 2));
    successor.commit_transaction(T).unwrap();
    let committed = read_all(&broker.bootstrap(), topic, 1, "read_committed");
    let mut want = values("kept", 5);
    want.extend(values("after", 2));
    assert_eq!(committed[&0], want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_transform_produce_commits_each_input_exactly_once() {
    let _dog = watchdog(Duration::from_secs(180));
    let broker = Broker::start(&[]);
    let (input, output, group) = ("ctp-in", "ctp-out", "ctp-group");
    create_topic(&broker.bootstrap(), input, 1).await;
    create_topic(&broker.bootstrap(), output, 1).await;
    let plain = producer(&broker.bootstrap(), &[]);
    for i in 0..60 {
        within(
            T,
            "input",
            send_to_partition0(&plain, input, "k", format!("in-{i}").as_bytes()).unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    }

    let c: BaseConsumer = client_config(
        &broker.bootstrap(),
        &[
            ("group.id", group),
            ("enable.auto.commit", "false"),
            ("auto.offset.reset", "earliest"),
            ("isolation.level", "read_committed"),
        ],
    )
    .create()
    .unwrap();
    c.subscribe(&[input]).unwrap();
    let p = txn_producer(&broker.bootstrap(), "ctp-app", &[]);

    let mut round = 0;
    let mut committed_through = 0i64;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while committed_through < 60 {
        assert!(
            std::time::Instant::now() < deadline,
            "stuck at {committed_through}"
        );
        let mut batch = Vec::new();
        while batch.len() < 7 {
            match c.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => {
                    use rdkafka::message::Message;
                    batch.push((m.offset(), m.payload().unwrap_or_default().to_vec()));
                }
                Some(Err(e)) => panic!("input consumer: {e}"),
                None if !batch.is_empty() => break,
                None => {}
            }
        }
        round += 1;
        let last = batch.last().unwrap().0;
        p.begin_transaction().unwrap();
        for (_, v) in &batch {
            let out = format!("out-{}", String::from_utf8_lossy(v));
            send(&p, output, 0, &[out]);
        }
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset(input, 0, Offset::Offset(last + 1))
            .unwrap();
        p.send_offsets_to_transaction(&offsets, &c.group_metadata().unwrap(), T)
            .unwrap();
        if round % 2 == 0 {
            // Every other transaction aborts: its output and its offsets vanish, and the loop
            // reads the same input again from the last committed offset.
            p.abort_transaction(T).unwrap();
            let mut rewind = TopicPartitionList::new();
            rewind
                .add_partition_offset(input, 0, Offset::Offset(committed_through))
                .unwrap();
            c.seek_partitions(rewind, Timeout::After(T)).unwrap();
        } else {
            p.commit_transaction(T).unwrap();
            committed_through = last + 1;
        }
    }

    // The group's committed offset is the end of the input, and the output holds each input
    // exactly once, in order.
    let committed = c
        .committed(Timeout::After(T))
        .unwrap()
        .find_partition(input, 0)
        .unwrap()
        .offset();
    assert_eq!(committed, Offset::Offset(60));
    let out = read_all(&broker.bootstrap(), output, 1, "read_committed");
    let want: Vec<String> = (0..60).map(|i| format!("out-in-{i}")).collect();
    assert_eq!(out[&0], want);
}
