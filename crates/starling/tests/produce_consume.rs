//! Round trip through real librdkafka clients, once per compression codec: 100,000 messages over
//! 8 partitions are produced, every delivery report is checked, everything is read back from
//! offset 0 and compared byte for byte, and again after a clean restart of the broker.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;

const PARTITIONS: i32 = 8;
const MESSAGES: usize = 100_000;
const PER_PARTITION: usize = MESSAGES / PARTITIONS as usize;

/// These tests each push 100k messages through a broker; running them side by side on a small
/// machine only makes each slower, so they take turns.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn key_for(partition: i32, seq: usize) -> String {
    format!("key-p{partition}-s{seq:06}")
}

/// Values vary in length (20..=116 bytes of filler) and are compressible text.
fn value_for(partition: i32, seq: usize) -> Vec<u8> {
    let mut v = format!("value partition={partition} seq={seq} ").into_bytes();
    let filler = 20 + (seq * 7 + partition as usize) % 97;
    v.extend((0..filler).map(|i| b'a' + ((seq + i * 3) % 26) as u8));
    v
}

fn header_for(partition: i32, seq: usize) -> String {
    format!("{partition}:{seq}")
}

/// Produces every message, awaits every delivery report and checks that message `seq` of
/// partition `p` landed at offset `seq`.
async fn produce_all(bootstrap: &str, topic: &str, compression: &str) {
    let producer = producer(
        bootstrap,
        &[
            ("compression.type", compression),
            ("linger.ms", "20"),
            ("batch.num.messages", "10000"),
            ("batch.size", "1000000"),
            ("queue.buffering.max.messages", "500000"),
            ("queue.buffering.max.kbytes", "1048576"),
            ("message.timeout.ms", "120000"),
        ],
    );
    let mut pending = Vec::with_capacity(MESSAGES);
    for i in 0..MESSAGES {
        let partition = (i % PARTITIONS as usize) as i32;
        let seq = i / PARTITIONS as usize;
        let key = key_for(partition, seq);
        let value = value_for(partition, seq);
        let header = header_for(partition, seq);
        let mut record = FutureRecord::to(topic)
            .partition(partition)
            .key(&key)
            .payload(&value)
            .headers(OwnedHeaders::new().insert(Header {
                key: "seq",
                value: Some(&header),
            }));
        loop {
            match producer.send_result(record) {
                Ok(fut) => {
                    pending.push((partition, seq, fut));
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => panic!("enqueueing message {i}: {e}"),
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(180);
    for (partition, seq, fut) in pending {
        let left = deadline.saturating_duration_since(Instant::now());
        let delivery = within(left, "delivery reports", fut)
            .await
            .expect("producer dropped")
            .unwrap_or_else(|(e, _)| panic!("delivery of p{partition} seq {seq} failed: {e}"));
        assert_eq!(
            delivery.partition, partition,
            "delivered partition of seq {seq}"
        );
        assert_eq!(
            delivery.offset, seq as i64,
            "delivered offset of message {seq} in partition {partition}"
        );
    }
}

/// Reads everything back from offset 0 and checks order, count and exact contents.
fn verify_all(bootstrap: &str, topic: &str) {
    let counts: Vec<(i32, usize)> = (0..PARTITIONS).map(|p| (p, PER_PARTITION)).collect();
    let by_part = consume_from_start(bootstrap, topic, &counts, Duration::from_secs(120));
    assert_eq!(by_part.len(), PARTITIONS as usize, "partitions seen");
    for (&p, msgs) in &by_part {
        assert_eq!(
            msgs.len(),
            PER_PARTITION,
            "messages read from partition {p}"
        );
        for (seq, m) in msgs.iter().enumerate() {
            assert_eq!(m.offset, seq as i64, "offset order in partition {p}");
            assert_eq!(m.key_str(), key_for(p, seq), "key at {p}/{seq}");
            assert!(
                m.value.as_deref() == Some(&value_for(p, seq)[..]),
                "value at {p}/{seq}: got {:?}",
                m.value_str()
            );
            assert_eq!(
                m.headers,
                vec![("seq".to_string(), Some(header_for(p, seq).into_bytes()))],
                "headers at {p}/{seq}"
            );
        }
    }
    for p in 0..PARTITIONS {
        assert_eq!(
            watermarks(bootstrap, topic, p),
            (0, PER_PARTITION as i64),
            "watermarks of partition {p}"
        );
    }
}

/// Batches are stored as produced: every stored batch carries the producer's codec, except that
/// librdkafka sends a batch uncompressed when compressing would not make it smaller (tiny
/// batches); most records must still be in batches with the codec. Offsets are dense and every
/// stored batch's CRC is valid.
fn check_stored_batches(broker: &Broker, topic: &str, codec_id: i16) {
    let mut records_by_codec: BTreeMap<i16, i64> = BTreeMap::new();
    let mut batches_by_codec: BTreeMap<i16, usize> = BTreeMap::new();
    for p in 0..PARTITIONS {
        let dir = broker.partition_dir(topic, p);
        let mut next_offset = 0i64;
        for file in log_files(&dir) {
            let data = std::fs::read(&file).unwrap();
            for b in parse_batches(&data) {
                let where_ = format!("batch at {} in {}", b.pos, file.display());
                assert_eq!(b.base_offset, next_offset, "base offset of {where_}");
                assert!(batch_crc_ok(&data[b.pos..b.pos + b.len]), "CRC of {where_}");
                next_offset += b.records as i64;
                *records_by_codec.entry(b.attributes & 7).or_default() += b.records as i64;
                *batches_by_codec.entry(b.attributes & 7).or_default() += 1;
            }
        }
        assert_eq!(
            next_offset, PER_PARTITION as i64,
            "records stored in partition {p}"
        );
    }
    eprintln!(
        "stored batches by codec: {batches_by_codec:?}, records by codec: {records_by_codec:?}"
    );
    assert_eq!(records_by_codec.values().sum::<i64>(), MESSAGES as i64);
    for codec in records_by_codec.keys() {
        assert!(
            *codec == codec_id || *codec == 0,
            "a batch stored with codec {codec}, producer used {codec_id}"
        );
    }
    let with_codec = records_by_codec.get(&codec_id).copied().unwrap_or(0);
    assert!(
        with_codec * 10 >= MESSAGES as i64 * 9,
        "only {with_codec} of {MESSAGES} records stored in codec-{codec_id} batches"
    );
}

async fn round_trip(compression: &str, codec_id: i16) {
    let _serial = SERIAL.lock().await;
    let _dog = watchdog(Duration::from_secs(600));
    let mut broker = Broker::start(&[]);
    let topic = format!("roundtrip-{compression}");
    create_topic(&broker.bootstrap(), &topic, PARTITIONS).await;

    let started = Instant::now();
    produce_all(&broker.bootstrap(), &topic, compression).await;
    let produced = started.elapsed();
    verify_all(&broker.bootstrap(), &topic);
    eprintln!(
        "{compression}: produced {MESSAGES} in {produced:?}, produced+verified in {:?}",
        started.elapsed()
    );

    broker.restart();
    verify_all(&broker.bootstrap(), &topic);
    broker.terminate();
    check_stored_batches(&broker, &topic, codec_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uncompressed_messages_round_trip_in_order_and_survive_restart() {
    round_trip("none", 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_messages_round_trip_in_order_and_survive_restart() {
    round_trip("gzip", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snappy_messages_round_trip_in_order_and_survive_restart() {
    round_trip("snappy", 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lz4_messages_round_trip_in_order_and_survive_restart() {
    round_trip("lz4", 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zstd_messages_round_trip_in_order_and_survive_restart() {
    round_trip("zstd", 4).await;
}
