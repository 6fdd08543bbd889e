//! Log compaction end to end: librdkafka writes many updates per key and tombstones to a
//! compacted topic; after the broker's cleaner ran, a consumer reading from the start gets
//! exactly the latest value per key with offsets still increasing, tombstones until
//! `delete.retention.ms` and not after; keyless records are refused with INVALID_RECORD and
//! the record named; the broker killed with SIGKILL again and again while it cleans comes back
//! with every latest value; the cleaner's metrics move.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::ProduceRequest;
use kafka_protocol::ResponseError;
use rdkafka::consumer::Consumer;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Offset;

const TOPIC: &str = "compacted";

async fn create_compacted(bootstrap: &str, configs: &[(&str, &str)]) {
    let mut all = vec![
        ("cleanup.policy", "compact"),
        ("segment.bytes", "4096"),
        ("min.cleanable.dirty.ratio", "0.01"),
    ];
    all.extend_from_slice(configs);
    create_topic_with(bootstrap, TOPIC, 1, &all).await;
}

/// Sends `value` (None: a tombstone) for `key` to partition 0.
async fn put(producer: &FutureProducer, key: &str, value: Option<&str>) -> i64 {
    let mut record = FutureRecord::<str, str>::to(TOPIC).partition(0).key(key);
    if let Some(v) = value {
        record = record.payload(v);
    }
    let delivery = producer
        .send_result(record)
        .map_err(|(e, _)| e)
        .expect("enqueue");
    within(Duration::from_secs(20), "delivery", delivery)
        .await
        .expect("delivery future")
        .map_err(|(e, _)| e)
        .expect("delivered")
        .offset
}

/// Everything partition 0 holds from its start to `end`: (offset, key, value).
fn read_all(bootstrap: &str, end: i64) -> Vec<(i64, String, Option<String>)> {
    let c = consumer(bootstrap, &[]);
    assign(&c, TOPIC, &[(0, Offset::Beginning)]);
    let msgs = consume_until(&c, Duration::from_secs(30), |got| {
        got.last().is_some_and(|m| m.offset >= end - 1)
    });
    msgs.into_iter()
        .map(|m| {
            let value = m.value.as_ref().map(|_| m.value_str());
            (m.offset, m.key_str(), value)
        })
        .collect()
}

/// Waits until `check` holds for what partition 0 holds, reading it again every 200 ms.
fn wait_for_log(
    bootstrap: &str,
    end: i64,
    what: &str,
    check: impl Fn(&[(i64, String, Option<String>)]) -> bool,
) -> Vec<(i64, String, Option<String>)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let records = read_all(bootstrap, end);
        let offsets: Vec<i64> = records.iter().map(|r| r.0).collect();
        assert!(
            offsets.windows(2).all(|w| w[0] < w[1]),
            "offsets must keep increasing: {offsets:?}"
        );
        if check(&records) {
            return records;
        }
        assert!(
            Instant::now() < deadline,
            "never {what}: {} records, {:?}",
            records.len(),
            &records[..records.len().min(20)]
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The latest value of every key in `records` (None: its tombstone is the latest).
fn latest(records: &[(i64, String, Option<String>)]) -> BTreeMap<String, Option<String>> {
    records
        .iter()
        .map(|(_, k, v)| (k.clone(), v.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cleaner_keeps_the_latest_value_per_key_and_drops_tombstones_after_delete_retention() {
    let _dog = watchdog(Duration::from_secs(240));
    let b = Broker::with_overrides(&[("log.cleaner.backoff.ms", "100")]);
    let bootstrap = b.bootstrap();
    create_compacted(&bootstrap, &[("delete.retention.ms", "3000")]).await;
    let producer = producer(&bootstrap, &[("linger.ms", "0")]);

    let mut model: BTreeMap<String, Option<String>> = BTreeMap::new();
    for round in 0..25 {
        for key in 0..40 {
            let (k, v) = (format!("key-{key}"), format!("value-{key}-{round}"));
            put(&producer, &k, Some(&v)).await;
            model.insert(k, Some(v));
        }
    }
    for key in 0..10 {
        let k = format!("key-{key}");
        put(&producer, &k, None).await;
        model.insert(k, None);
    }
    // More updates of the other keys seal the segment holding the tombstones.
    let mut end = 0;
    for round in 25..30 {
        for key in 10..40 {
            let (k, v) = (format!("key-{key}"), format!("value-{key}-{round}"));
            end = put(&producer, &k, Some(&v)).await + 1;
            model.insert(k, Some(v));
        }
    }
    assert_eq!(end, 25 * 40 + 10 + 5 * 30);

    // Cleaned: far fewer records, the same latest value per key, tombstones still there.
    let cleaned = wait_for_log(&bootstrap, end, "cleaned", |records| records.len() < 300);
    assert_eq!(latest(&cleaned), model);
    assert!(
        cleaned.iter().any(|(_, _, v)| v.is_none()),
        "tombstones must stay for delete.retention.ms"
    );
    assert_eq!(
        watermarks(&bootstrap, TOPIC, 0).1,
        end,
        "the log end never moves"
    );

    // After delete.retention.ms a later pass removes the tombstones.
    let without = wait_for_log(&bootstrap, end, "rid of the tombstones", |records| {
        records.iter().all(|(_, _, v)| v.is_some())
    });
    let live: BTreeMap<String, Option<String>> =
        model.into_iter().filter(|(_, v)| v.is_some()).collect();
    assert_eq!(latest(&without), live);

    let (_, metrics) = http_get(b.admin_addr(), "/metrics");
    let passes = metric_value(&metrics, "starling_log_cleaner_passes_total");
    assert!(passes >= 2.0, "passes {passes}\n{metrics}");
    assert!(metric_value(&metrics, "starling_log_cleaner_records_removed_total") > 900.0);
    assert!(metric_value(&metrics, "starling_log_cleaner_read_bytes_total") > 0.0);
    assert!(
        metrics.contains(r#"starling_log_dirty_ratio{topic="compacted",partition="0"}"#),
        "{metrics}"
    );
}

/// Writes 20 rounds of 200-byte values to keys `key-0` .. `key-99` in small batches (so they
/// spread over many segments); returns the latest value per key and the log end.
async fn put_rounds(producer: &FutureProducer) -> (BTreeMap<String, Option<String>>, i64) {
    let mut model: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut deliveries = Vec::new();
    let padding = "p".repeat(200);
    for round in 0..20 {
        for key in 0..100 {
            let (k, v) = (format!("key-{key}"), format!("{round}-{padding}"));
            let delivery = producer
                .send_result(FutureRecord::to(TOPIC).partition(0).key(&k).payload(&v))
                .map_err(|(e, _)| e)
                .expect("enqueue");
            deliveries.push(delivery);
            model.insert(k, Some(v));
        }
    }
    let mut end = 0;
    for d in deliveries {
        let delivered = d.await.expect("future").map_err(|(e, _)| e);
        end = end.max(delivered.expect("delivered").offset + 1);
    }
    (model, end)
}

/// The value of an unlabelled sample in a Prometheus exposition.
fn metric_value(exposition: &str, name: &str) -> f64 {
    exposition
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{name} not exposed"))
        .trim()
        .parse()
        .expect("a number")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyless_records_on_a_compacted_topic_are_refused_with_the_record_named() {
    let _dog = watchdog(Duration::from_secs(120));
    let b = Broker::start(&[]);
    let bootstrap = b.bootstrap();
    create_compacted(&bootstrap, &[]).await;

    // librdkafka puts a keyless record between two keyed ones in one batch (linger): the
    // whole batch is refused, each of its records with INVALID_RECORD.
    let producer = producer(&bootstrap, &[("linger.ms", "200")]);
    let mut deliveries = Vec::new();
    for (key, value) in [(Some("a"), "1"), (None, "no key"), (Some("c"), "3")] {
        let mut record = FutureRecord::<str, str>::to(TOPIC)
            .partition(0)
            .payload(value);
        if let Some(k) = key {
            record = record.key(k);
        }
        deliveries.push(
            producer
                .send_result(record)
                .map_err(|(e, _)| e)
                .expect("enqueue"),
        );
    }
    for delivery in deliveries {
        let outcome = within(Duration::from_secs(20), "delivery", delivery)
            .await
            .expect("delivery future");
        match outcome {
            Err((rdkafka::error::KafkaError::MessageProduction(code), _)) => {
                assert_eq!(code, rdkafka::types::RDKafkaErrorCode::InvalidRecord)
            }
            other => panic!("the batch with a keyless record was not refused: {other:?}"),
        }
    }

    // A record set of three one-record batches (as this encoder writes them), the second
    // keyless: all refused, the keyless record named (record 0 of its batch).
    let batch = record_batch(
        &[
            (Some(b"a"), Some(b"1")),
            (None, Some(b"2")),
            (Some(b"c"), Some(b"3")),
        ],
        now_ms(),
    );
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(TOPIC))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch))])]);
    let mut raw = RawClient::connect(b.addr());
    let response = raw.call(9, &request);
    let partition = &response.responses[0].partition_responses[0];
    assert_eq!(partition.error_code, ResponseError::InvalidRecord.code());
    let named: Vec<(i32, String)> = partition
        .record_errors
        .iter()
        .map(|e| {
            (
                e.batch_index,
                e.batch_index_error_message
                    .as_deref()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(named.len(), 1, "{partition:?}");
    assert_eq!(named[0].0, 0, "{named:?}");
    assert!(named[0].1.contains("without key"), "{named:?}");
    assert_eq!(
        watermarks(&bootstrap, TOPIC, 0),
        (0, 0),
        "nothing was written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_again_and_again_while_cleaning_keeps_every_latest_value() {
    let _dog = watchdog(Duration::from_secs(300));
    // A slow cleaner (256 KiB/s of reads and writes), so kills land mid-pass.
    let mut b = Broker::with_overrides(&[
        ("log.cleaner.backoff.ms", "50"),
        ("log.cleaner.io.max.bytes.per.second", "262144"),
    ]);
    b.pin_port();
    let bootstrap = b.bootstrap();
    create_compacted(&bootstrap, &[]).await;
    // Small batches, so the records spread over many segments (the active one is never cleaned).
    let producer = producer(&bootstrap, &[("linger.ms", "20"), ("batch.size", "2000")]);
    let (model, end) = put_rounds(&producer).await;
    drop(producer);
    assert_eq!(end, 2000);

    for kill in 0..4 {
        std::thread::sleep(Duration::from_millis(400 + 300 * kill));
        b.kill9();
        b.start_again();
        let records = read_all(&b.bootstrap(), end);
        assert_eq!(latest(&records), model, "after kill {kill}");
        let offsets: Vec<i64> = records.iter().map(|r| r.0).collect();
        assert!(offsets.windows(2).all(|w| w[0] < w[1]));
    }
    // Unhindered now, the cleaner finishes.
    let bootstrap = b.bootstrap();
    let cleaned = wait_for_log(&bootstrap, end, "cleaned", |records| records.len() < 400);
    assert_eq!(latest(&cleaned), model);
    let c = consumer(&bootstrap, &[]);
    let (low, high) = c
        .fetch_watermarks(TOPIC, 0, Duration::from_secs(10))
        .expect("watermarks");
    assert_eq!((low, high), (0, end));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cleaners_byte_and_time_counters_move_while_a_pass_runs() {
    let _dog = watchdog(Duration::from_secs(120));
    // 64 KiB/s: a pass over the ~500 kB below takes many seconds.
    let b = Broker::with_overrides(&[
        ("log.cleaner.backoff.ms", "50"),
        ("log.cleaner.io.max.bytes.per.second", "65536"),
    ]);
    let bootstrap = b.bootstrap();
    // Nothing is cleanable until 3 s after it was written, so one pass takes all of it.
    create_compacted(&bootstrap, &[("min.compaction.lag.ms", "3000")]).await;
    let producer = producer(&bootstrap, &[("linger.ms", "20"), ("batch.size", "2000")]);
    put_rounds(&producer).await;
    // A pass under way has its reads and its time counted before it ends: the counters move
    // while the count of finished passes stands still.
    let counters = || {
        let (_, metrics) = http_get(b.admin_addr(), "/metrics");
        [
            "starling_log_cleaner_passes_total",
            "starling_log_cleaner_read_bytes_total",
            "starling_log_cleaner_time_seconds_total",
        ]
        .map(|name| metric_value(&metrics, name))
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut base = counters();
    loop {
        let now = counters();
        if now[0] != base[0] {
            base = now;
        } else if now[1] > base[1] + 65536.0 && now[2] > base[2] + 0.5 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no progress counted within a pass: {base:?} then {now:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
