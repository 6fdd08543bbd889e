//! librdkafka's idempotent producer (`enable.idempotence=true`): it gets a producer id from
//! InitProducerId, every batch it writes carries that id with running sequence numbers, and
//! its messages land exactly once and in order, across a restart of the broker in the middle
//! of the stream (the partitions read their producer state back from the log).

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use rdkafka::producer::{FutureProducer, FutureRecord};

const PARTITIONS: i32 = 3;
const PER_ROUND: usize = 300;

/// Sends `PER_ROUND` messages to each partition, numbered from `first`, and checks each
/// delivery report's offset.
async fn produce_round(producer: &FutureProducer, topic: &str, first: usize) {
    let mut pending = Vec::new();
    for seq in first..first + PER_ROUND {
        for p in 0..PARTITIONS {
            let value = format!("p{p}-{seq}");
            let record = FutureRecord::<(), _>::to(topic)
                .partition(p)
                .payload(&value);
            pending.push((
                p,
                seq,
                producer.send_result(record).map_err(|(e, _)| e).unwrap(),
            ));
        }
    }
    for (p, seq, delivery) in pending {
        let delivered = within(Duration::from_secs(60), "delivery", delivery)
            .await
            .expect("producer dropped")
            .unwrap_or_else(|(e, _)| panic!("p{p} message {seq}: {e}"));
        assert_eq!(delivered.offset, seq as i64, "offset of p{p} message {seq}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_producer_writes_each_message_once_in_order_across_a_broker_restart() {
    let _dog = watchdog(Duration::from_secs(240));
    let mut broker = Broker::start(&[]);
    broker.pin_port();
    let topic = "idempotent";
    create_topic(&broker.bootstrap(), topic, PARTITIONS).await;
    let producer = producer(
        &broker.bootstrap(),
        &[
            ("enable.idempotence", "true"),
            ("linger.ms", "2"),
            ("batch.num.messages", "50"),
            ("message.timeout.ms", "120000"),
        ],
    );
    produce_round(&producer, topic, 0).await;
    broker.restart();
    produce_round(&producer, topic, PER_ROUND).await;
    drop(producer);

    let counts: Vec<(i32, usize)> = (0..PARTITIONS).map(|p| (p, 2 * PER_ROUND)).collect();
    let read = consume_from_start(&broker.bootstrap(), topic, &counts, Duration::from_secs(60));
    for p in 0..PARTITIONS {
        let values: Vec<String> = read[&p].iter().map(|m| m.value_str()).collect();
        let expected: Vec<String> = (0..2 * PER_ROUND).map(|s| format!("p{p}-{s}")).collect();
        assert_eq!(values, expected, "partition {p}");
        assert_eq!(
            watermarks(&broker.bootstrap(), topic, p),
            (0, 2 * PER_ROUND as i64)
        );
    }

    // Every stored batch carries the producer id InitProducerId gave out, epoch 0, and each
    // partition's sequences run on from 0 without a gap.
    broker.terminate();
    let mut producer_ids = BTreeSet::new();
    for p in 0..PARTITIONS {
        let mut next_sequence = 0i32;
        for file in log_files(&broker.partition_dir(topic, p)) {
            let data = std::fs::read(&file).unwrap();
            for b in parse_batches(&data) {
                let at = |from: usize, len: usize| &data[b.pos + from..b.pos + from + len];
                producer_ids.insert(i64::from_be_bytes(at(43, 8).try_into().unwrap()));
                assert_eq!(i16::from_be_bytes(at(51, 2).try_into().unwrap()), 0);
                let base_sequence = i32::from_be_bytes(at(53, 4).try_into().unwrap());
                assert_eq!(base_sequence, next_sequence, "partition {p}");
                next_sequence += b.records;
            }
        }
        assert_eq!(next_sequence, 2 * PER_ROUND as i32);
    }
    assert_eq!(producer_ids.len(), 1, "{producer_ids:?}");
    assert!(producer_ids.iter().all(|id| *id >= 0));
}
