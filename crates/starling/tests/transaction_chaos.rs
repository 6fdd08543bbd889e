//! Exactly-once under `kill -9`: a consume–transform–produce worker (librdkafka's transactional
//! producer and a read_committed group consumer, in a child process) commits and aborts
//! transactions in turn while the test kills it, mid-transaction or not, again and again, and
//! kills the broker too. Each new worker takes over the transactional id (fencing and aborting
//! whatever its predecessor left open) and the static group membership.
//!
//! At the end a read_committed consumer must see every input record transformed exactly once,
//! in input order per partition, and the group's committed offsets must be the input's end:
//! nothing lost, nothing twice, no aborted or half-done transaction visible.

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};

const INPUT: &str = "eos-in";
const OUTPUT: &str = "eos-out";
const GROUP: &str = "eos-group";
const PARTITIONS: i32 = 2;
const PER_PARTITION: usize = 300;
/// Records per transaction, at most.
const BATCH: usize = 15;
const T: Duration = Duration::from_secs(30);

/// The worker process: runs until killed. Every third transaction aborts and its input is read
/// again from where the transaction began.
#[test]
#[ignore = "run by exactly_once_survives_kill9_of_the_worker_and_the_broker as a child process"]
fn eos_worker_process() {
    let Ok(bootstrap) = std::env::var("EOS_BOOTSTRAP") else {
        return; // run by hand without the parent: nothing to do
    };
    let consumer: BaseConsumer = client_config(
        &bootstrap,
        &[
            ("group.id", GROUP),
            ("group.instance.id", "eos-worker"),
            ("session.timeout.ms", "6000"),
            ("enable.auto.commit", "false"),
            ("auto.offset.reset", "earliest"),
            ("isolation.level", "read_committed"),
        ],
    )
    .create()
    .expect("create consumer");
    consumer.subscribe(&[INPUT]).expect("subscribe");
    let producer: ThreadedProducer<DefaultProducerContext> = client_config(
        &bootstrap,
        &[
            ("transactional.id", "eos-worker"),
            ("linger.ms", "1"),
            ("message.timeout.ms", "30000"),
        ],
    )
    .create()
    .expect("create producer");
    producer.init_transactions(T).expect("init_transactions");
    let mut round = 0u64;
    loop {
        let mut batch = Vec::new();
        while batch.len() < BATCH {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => batch.push((
                    m.partition(),
                    m.offset(),
                    m.payload().unwrap_or_default().to_vec(),
                )),
                Some(Err(e)) => panic!("worker consumer: {e}"),
                None => break,
            }
        }
        if batch.is_empty() {
            continue;
        }
        round += 1;
        producer.begin_transaction().expect("begin");
        let mut next: BTreeMap<i32, i64> = BTreeMap::new();
        let mut first: BTreeMap<i32, i64> = BTreeMap::new();
        for (p, offset, value) in &batch {
            let out = format!("out-{}", String::from_utf8_lossy(value));
            producer
                .send(BaseRecord::<(), _>::to(OUTPUT).partition(*p).payload(&out))
                .map_err(|(e, _)| e)
                .expect("send");
            next.insert(*p, offset + 1);
            first.entry(*p).or_insert(*offset);
        }
        let mut offsets = TopicPartitionList::new();
        for (p, o) in &next {
            offsets
                .add_partition_offset(INPUT, *p, Offset::Offset(*o))
                .unwrap();
        }
        producer
            .send_offsets_to_transaction(&offsets, &consumer.group_metadata().unwrap(), T)
            .expect("send offsets");
        // Widen the window in which a kill lands mid-transaction.
        std::thread::sleep(Duration::from_millis(30));
        if round.is_multiple_of(3) {
            producer.abort_transaction(T).expect("abort");
            let mut rewind = TopicPartitionList::new();
            for (p, o) in &first {
                rewind
                    .add_partition_offset(INPUT, *p, Offset::Offset(*o))
                    .unwrap();
            }
            consumer
                .seek_partitions(rewind, Timeout::After(T))
                .expect("rewind");
        } else {
            producer.commit_transaction(T).expect("commit");
        }
    }
}

struct Worker(Child);

impl Worker {
    fn start(bootstrap: &str) -> Worker {
        let exe = std::env::current_exe().expect("test binary path");
        let mut cmd = Command::new(exe);
        cmd.args([
            "eos_worker_process",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("EOS_BOOTSTRAP", bootstrap)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        die_with_parent(&mut cmd);
        Worker(cmd.spawn().expect("spawn worker"))
    }

    fn kill9(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The group's committed offset per input partition (-1 for none), read without joining.
fn committed(bootstrap: &str) -> BTreeMap<i32, i64> {
    let c: BaseConsumer = client_config(bootstrap, &[("group.id", GROUP)])
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(INPUT, p);
    }
    let got = c.committed_offsets(tpl, Timeout::After(T)).unwrap();
    (0..PARTITIONS)
        .map(|p| {
            let o = match got.find_partition(INPUT, p).unwrap().offset() {
                Offset::Offset(o) => o,
                _ => -1,
            };
            (p, o)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_survives_kill9_of_the_worker_and_the_broker() {
    let _dog = watchdog(Duration::from_secs(240));
    let mut broker = Broker::start(&[]);
    broker.pin_port();
    create_topic(&broker.bootstrap(), INPUT, PARTITIONS).await;
    create_topic(&broker.bootstrap(), OUTPUT, PARTITIONS).await;
    let plain = producer(&broker.bootstrap(), &[]);
    let mut acks = Vec::new();
    for i in 0..PER_PARTITION {
        for p in 0..PARTITIONS {
            let value = format!("in-{p}-{i}");
            let record = rdkafka::producer::FutureRecord::<(), _>::to(INPUT)
                .partition(p)
                .payload(&value);
            acks.push(plain.send_result(record).map_err(|(e, _)| e).unwrap());
        }
    }
    for ack in acks {
        within(T, "input", ack).await.unwrap().unwrap();
    }

    // Kill the worker at varied moments; every third time kill the broker with it.
    let pauses = [1500u64, 700, 2200, 400, 1300, 900, 1800];
    for (i, pause) in pauses.iter().enumerate() {
        let worker = Worker::start(&broker.bootstrap());
        tokio::time::sleep(Duration::from_millis(*pause)).await;
        worker.kill9();
        if i % 3 == 2 {
            broker.kill9();
            broker.start_again();
        }
    }

    // A last worker runs until the whole input is committed.
    let worker = Worker::start(&broker.bootstrap());
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let c = committed(&broker.bootstrap());
        if c.values().all(|&o| o == PER_PARTITION as i64) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the input was never all committed: {c:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    worker.kill9();

    let committed_output = read_output(&broker.bootstrap(), "read_committed");
    for p in 0..PARTITIONS {
        let want: Vec<String> = (0..PER_PARTITION)
            .map(|i| format!("out-in-{p}-{i}"))
            .collect();
        assert_eq!(
            committed_output.get(&p).cloned().unwrap_or_default(),
            want,
            "partition {p}"
        );
    }
    // The run did abort work (every third transaction, and those the kills cut short): the
    // output log holds records read_committed skipped.
    let everything = read_output(&broker.bootstrap(), "read_uncommitted");
    let stored: usize = everything.values().map(Vec::len).sum();
    assert!(
        stored > PARTITIONS as usize * PER_PARTITION,
        "no aborted output at all ({stored} records): the test did not exercise aborts"
    );
}

/// Every output record `isolation` lets a reader see, by partition.
fn read_output(bootstrap: &str, isolation: &str) -> BTreeMap<i32, Vec<String>> {
    let reader = consumer(
        bootstrap,
        &[
            ("isolation.level", isolation),
            ("enable.partition.eof", "true"),
        ],
    );
    assign(
        &reader,
        OUTPUT,
        &(0..PARTITIONS)
            .map(|p| (p, Offset::Offset(0)))
            .collect::<Vec<_>>(),
    );
    let mut out: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    let mut at_end = std::collections::BTreeSet::new();
    let deadline = Instant::now() + T;
    while at_end.len() < PARTITIONS as usize {
        assert!(Instant::now() < deadline, "output read stalled: {out:?}");
        match reader.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => out
                .entry(m.partition())
                .or_default()
                .push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned()),
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            Some(Err(e)) => panic!("output reader: {e}"),
            None => {}
        }
    }
    out
}
