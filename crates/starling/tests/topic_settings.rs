//! Topic settings the log applies to what producers send, through librdkafka:
//! `compression.type` (a zstd topic stores zstd batches whether the producer sent them
//! uncompressed or lz4, consumers and Debian's kcat read every record intact, and a change made
//! with IncrementalAlterConfigs applies to the next batch) and `message.timestamp.after.max.ms`
//! (a record two hours ahead is refused with INVALID_TIMESTAMP under Kafka 4's default of one
//! hour, with a record error each over a raw Produce, and accepted once the bound is raised).

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use rdkafka::admin::ResourceSpecifier;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::Offset;

const HOUR: i64 = 3_600_000;

/// IncrementalAlterConfigs SET of one topic config through librdkafka's C API: the resource's
/// error code, 0 for none.
fn alter_topic(bootstrap: &str, topic: &str, key: &str, value: &str) -> i32 {
    librdkafka_alter(
        bootstrap,
        true,
        TOPIC_RESOURCE,
        topic,
        &[(key, SET, Some(value))],
        false,
    )
    .code
}

fn key_of(i: usize) -> String {
    format!("key-{i:03}")
}

fn value_of(i: usize) -> String {
    format!("value {i:03} {}", "abcdefgh".repeat(i % 17))
}

/// Sends records `range` (key, value, one header, timestamp) with `producer`, all in flight at
/// once so they go out in few batches, and checks they land at offsets from `first_offset`.
async fn send_all(
    producer: &FutureProducer,
    topic: &str,
    range: std::ops::Range<usize>,
    first_offset: i64,
    base_ts: i64,
) {
    let mut pending = Vec::new();
    for i in range.clone() {
        let (key, value, h) = (key_of(i), value_of(i), format!("h{i}"));
        let record = FutureRecord::to(topic)
            .partition(0)
            .key(&key)
            .payload(&value)
            .timestamp(base_ts + i as i64)
            .headers(OwnedHeaders::new().insert(Header {
                key: "n",
                value: Some(&h),
            }));
        pending.push(producer.send_result(record).map_err(|(e, _)| e).unwrap());
    }
    for (n, fut) in pending.into_iter().enumerate() {
        let delivery = within(Duration::from_secs(30), "delivery", fut)
            .await
            .expect("producer dropped")
            .unwrap_or_else(|(e, _)| panic!("delivery of record {}: {e}", range.start + n));
        assert_eq!(delivery.offset, first_offset + n as i64);
    }
}

/// The codec (attributes bits 0-2) of every batch stored for `topic`/0, from its segment files,
/// each with a sound CRC.
fn stored_codecs(broker: &Broker, topic: &str) -> Vec<(i64, i16)> {
    let mut out = Vec::new();
    for file in log_files(&broker.partition_dir(topic, 0)) {
        let data = std::fs::read(&file).unwrap();
        for b in parse_batches(&data) {
            assert!(
                batch_crc_ok(&data[b.pos..b.pos + b.len]),
                "batch at {}",
                b.base_offset
            );
            out.push((b.base_offset, b.attributes & 7));
        }
    }
    out
}

/// Reads `count` records from offset 0 and checks each is intact.
fn check_consumed(bootstrap: &str, topic: &str, count: usize, base_ts: i64) {
    let c = consumer(bootstrap, &[]);
    assign(&c, topic, &[(0, Offset::Offset(0))]);
    let got = consume_until(&c, Duration::from_secs(30), |got| got.len() >= count);
    assert_eq!(got.len(), count);
    for (i, m) in got.iter().enumerate() {
        assert_eq!(m.offset, i as i64);
        assert_eq!(m.key_str(), key_of(i));
        assert_eq!(m.value_str(), value_of(i));
        assert_eq!(m.timestamp, Some(base_ts + i as i64));
        assert_eq!(
            m.headers,
            [("n".to_string(), Some(format!("h{i}").into_bytes()))]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zstd_topic_stores_zstd_batches_read_intact_and_a_new_compression_type_applies_to_the_next_batch(
) {
    let _w = watchdog(Duration::from_secs(180));
    let broker = Broker::start(&[]);
    let bootstrap = broker.bootstrap();
    create_topic_with(&bootstrap, "zs", 1, &[("compression.type", "zstd")]).await;
    let base_ts = now_ms() - 60_000;
    let plain = producer(
        &bootstrap,
        &[("compression.type", "none"), ("linger.ms", "20")],
    );
    let lz4 = producer(
        &bootstrap,
        &[("compression.type", "lz4"), ("linger.ms", "20")],
    );
    send_all(&plain, "zs", 0..60, 0, base_ts).await;
    send_all(&lz4, "zs", 60..120, 60, base_ts).await;
    let codecs = stored_codecs(&broker, "zs");
    assert!(!codecs.is_empty());
    assert!(
        codecs.iter().all(|&(_, c)| c == 4),
        "not all zstd: {codecs:?}"
    );
    check_consumed(&bootstrap, "zs", 120, base_ts);

    // Debian's kcat (librdkafka 2.0.2) reads them too.
    let out = Command::new("kcat")
        .args([
            "-C",
            "-b",
            &bootstrap,
            "-t",
            "zs",
            "-p",
            "0",
            "-o",
            "beginning",
            "-e",
        ])
        .args(["-X", "broker.address.family=v4", "-f", "%k=%s\\n"])
        .output()
        .expect("run kcat");
    assert!(
        out.status.success(),
        "kcat: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected: String = (0..120)
        .map(|i| format!("{}={}\n", key_of(i), value_of(i)))
        .collect();
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);

    // gzip from now on: the next batch is stored gzip, the earlier ones stay zstd.
    assert_eq!(alter_topic(&bootstrap, "zs", "compression.type", "gzip"), 0);
    send_all(&plain, "zs", 120..130, 120, base_ts).await;
    let codecs = stored_codecs(&broker, "zs");
    assert!(
        codecs
            .iter()
            .all(|&(o, c)| c == if o < 120 { 4 } else { 1 }),
        "{codecs:?}"
    );
    // DescribeConfigs reports the topic's override.
    let described = within(
        Duration::from_secs(20),
        "describe_configs",
        admin(&bootstrap).describe_configs([&ResourceSpecifier::Topic("zs")], &admin_opts()),
    )
    .await
    .expect("describe_configs request")
    .remove(0)
    .expect("describe_configs result");
    let entry = described.get("compression.type").expect("compression.type");
    assert_eq!(entry.value.as_deref(), Some("gzip"));
    assert_eq!(
        described
            .get("message.timestamp.after.max.ms")
            .and_then(|e| e.value.as_deref()),
        Some("3600000")
    );
    // producer: batches are kept as sent.
    assert_eq!(
        alter_topic(&bootstrap, "zs", "compression.type", "producer"),
        0
    );
    send_all(&lz4, "zs", 130..140, 130, base_ts).await;
    let codecs = stored_codecs(&broker, "zs");
    assert!(
        codecs.iter().any(|&(o, c)| o >= 130 && c == 3),
        "{codecs:?}"
    );
    assert!(codecs.iter().all(|&(o, c)| o < 130 || c == 3), "{codecs:?}");
    // An unknown codec is refused.
    assert_eq!(
        alter_topic(&bootstrap, "zs", "compression.type", "brotli"),
        RDKafkaErrorCode::InvalidConfig as i32
    );
    check_consumed(&bootstrap, "zs", 140, base_ts);
}

/// Produces one record with timestamp `ts` through librdkafka: its offset or the error.
async fn produce_at(bootstrap: &str, topic: &str, ts: i64) -> Result<i64, RDKafkaErrorCode> {
    let producer = producer(bootstrap, &[("message.timeout.ms", "10000")]);
    let record = FutureRecord::to(topic)
        .partition(0)
        .key("k")
        .payload("v")
        .timestamp(ts);
    let fut = producer.send_result(record).map_err(|(e, _)| e).unwrap();
    match within(Duration::from_secs(20), "delivery", fut).await {
        Ok(Ok(delivery)) => Ok(delivery.offset),
        Ok(Err((KafkaError::MessageProduction(code), _))) => Err(code),
        other => panic!("unexpected delivery outcome: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_two_hours_ahead_is_refused_with_invalid_timestamp_unless_the_topic_allows_it() {
    let _w = watchdog(Duration::from_secs(120));
    let broker = Broker::start(&[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "ts", 1).await;
    create_topic_with(
        &bootstrap,
        "ts-wide",
        1,
        &[("message.timestamp.after.max.ms", "10800000")],
    )
    .await;
    let now = now_ms();
    assert_eq!(
        produce_at(&bootstrap, "ts", now + 2 * HOUR).await,
        Err(RDKafkaErrorCode::InvalidTimestamp)
    );
    assert_eq!(produce_at(&bootstrap, "ts", now + HOUR / 2).await, Ok(0));
    assert_eq!(
        produce_at(&bootstrap, "ts", now - 30 * 24 * HOUR).await,
        Ok(1)
    );
    assert_eq!(
        produce_at(&bootstrap, "ts-wide", now + 2 * HOUR).await,
        Ok(0)
    );

    // Over a raw Produce v9: INVALID_TIMESTAMP (32), Kafka's message, one error per record.
    let future = now_ms() + 2 * HOUR;
    let batch = record_batch(
        &[(Some(b"a"), Some(b"1")), (Some(b"b"), Some(b"2"))],
        future,
    );
    let mut raw = RawClient::connect(broker.addr());
    let p = raw_produce(&mut raw, 9, "ts", 0, batch);
    assert_eq!(p.error_code, 32);
    assert_eq!(
        p.error_message.as_deref().map(|m| m.to_string()),
        Some("One or more records have been rejected due to invalid timestamp".to_string())
    );
    // (The encoder writes one batch per record here, so both are record 0 of their batch.)
    assert_eq!(p.record_errors.len(), 2, "{:?}", p.record_errors);
    for (offset, e) in p.record_errors.iter().enumerate() {
        let message = e.batch_index_error_message.as_deref().unwrap().to_string();
        assert!(
            message.starts_with(&format!(
                "Timestamp {future} of message with offset {offset} is out of range. The \
                 timestamp should be within ["
            )),
            "{message}"
        );
    }
    assert_eq!(watermarks(&bootstrap, "ts", 0), (0, 2), "nothing written");

    // Raising the bound at run time lets the same record in.
    assert_eq!(
        alter_topic(
            &bootstrap,
            "ts",
            "message.timestamp.after.max.ms",
            "10800000"
        ),
        0
    );
    assert_eq!(
        produce_at(&bootstrap, "ts", now_ms() + 2 * HOUR).await,
        Ok(2)
    );
}
