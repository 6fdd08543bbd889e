//! Produce validates what it stores, compressed batches included, as Kafka does: over a raw
//! socket, a batch whose payload is not valid for its codec (CRC recomputed) gets
//! CORRUPT_MESSAGE and a valid stream of broken records INVALID_RECORD with the record at fault
//! in `record_errors`; nothing is stored, and real librdkafka producers of every codec are then
//! served on the same partition, which a librdkafka consumer reads to the end (it is not
//! poisoned by the refused batch).

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;

const CORRUPT_MESSAGE: i16 = 2;
const INVALID_RECORD: i16 = 87;
const MESSAGES: usize = 2_000;

/// A v2 batch header for `count` records with `codec` over `payload`, CRC computed.
fn batch_over(codec: i16, count: i32, payload: &[u8]) -> Bytes {
    let ts = now_ms();
    let mut b = Vec::with_capacity(61 + payload.len());
    b.extend_from_slice(&0i64.to_be_bytes());
    b.extend_from_slice(&((49 + payload.len()) as i32).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.push(2);
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&codec.to_be_bytes());
    b.extend_from_slice(&(count - 1).to_be_bytes());
    b.extend_from_slice(&ts.to_be_bytes());
    b.extend_from_slice(&ts.to_be_bytes());
    b.extend_from_slice(&(-1i64).to_be_bytes());
    b.extend_from_slice(&(-1i16).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.extend_from_slice(&count.to_be_bytes());
    b.extend_from_slice(payload);
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    assert!(batch_crc_ok(&b));
    Bytes::from(b)
}

/// Bytes that start like the codec's stream, then are noise.
fn garbage_for(codec: i16) -> Vec<u8> {
    let opening: &[u8] = match codec {
        1 => b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff",
        2 => b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x01\x00",
        3 => b"\x04\x22\x4d\x18\x64\x40\xa7",
        _ => b"\x28\xb5\x2f\xfd\x00\x58",
    };
    let mut g = opening.to_vec();
    g.extend((0..2_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    g
}

fn zigzag(out: &mut Vec<u8>, v: i32) {
    let mut u = ((v << 1) ^ (v >> 31)) as u32;
    while u >= 0x80 {
        out.push((u as u8) | 0x80);
        u >>= 7;
    }
    out.push(u as u8);
}

/// One record with a null key and `value`, its offset delta `delta`.
fn record(delta: i32, value: &[u8]) -> Vec<u8> {
    let mut body = vec![0u8, 0];
    zigzag(&mut body, delta);
    zigzag(&mut body, -1);
    zigzag(&mut body, value.len() as i32);
    body.extend_from_slice(value);
    body.push(0);
    let mut out = Vec::new();
    zigzag(&mut out, body.len() as i32);
    out.extend_from_slice(&body);
    out
}

/// CRC-32 (IEEE), as gzip's trailer wants it.
fn crc32_ieee(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// A valid gzip stream of `data` in stored (uncompressed) deflate blocks.
fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let chunks: Vec<&[u8]> = data.chunks(65_535).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        out.push(u8::from(i + 1 == chunks.len()));
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&crc32_ieee(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

fn value_for(codec: &str, i: usize) -> String {
    format!("{codec} message {i:05} {}", "payload ".repeat(i % 13))
}

/// Produces `MESSAGES` messages with a librdkafka producer using `codec` and checks every
/// delivery lands in order from `first_offset`.
async fn produce_with_librdkafka(bootstrap: &str, topic: &str, codec: &str, first_offset: i64) {
    let producer = producer(
        bootstrap,
        &[
            ("compression.type", codec),
            ("linger.ms", "20"),
            ("batch.num.messages", "500"),
        ],
    );
    let mut pending = Vec::with_capacity(MESSAGES);
    for i in 0..MESSAGES {
        let value = value_for(codec, i);
        let key = format!("k{i}");
        let fut = send_to_partition0(&producer, topic, &key, value.as_bytes())
            .unwrap_or_else(|e| panic!("{codec}: enqueueing message {i}: {e}"));
        pending.push(fut);
    }
    for (i, fut) in pending.into_iter().enumerate() {
        let delivery = within(Duration::from_secs(60), "delivery report", fut)
            .await
            .expect("producer dropped")
            .unwrap_or_else(|(e, _)| panic!("{codec}: delivery of message {i} failed: {e}"));
        assert_eq!(
            delivery.offset,
            first_offset + i as i64,
            "{codec}: offset of message {i}"
        );
    }
}

async fn refused_then_served(codec: &str, codec_id: i16) {
    let _dog = watchdog(Duration::from_secs(240));
    let broker = Broker::start(&[]);
    let bootstrap = broker.bootstrap();
    let topic = format!("validated-{codec}");
    create_topic(&bootstrap, &topic, 1).await;
    let mut raw = RawClient::connect(broker.addr());

    // Not valid for its codec, CRC recomputed: CORRUPT_MESSAGE, nothing stored.
    let r = raw_produce(
        &mut raw,
        9,
        &topic,
        0,
        batch_over(codec_id, 5, &garbage_for(codec_id)),
    );
    assert_eq!(
        r.error_code, CORRUPT_MESSAGE,
        "{codec}: garbage payload: {r:?}"
    );
    assert_eq!(r.base_offset, -1);
    assert!(r.error_message.is_some(), "{codec}: an error message");
    assert_eq!(
        watermarks(&bootstrap, &topic, 0),
        (0, 0),
        "{codec}: nothing stored"
    );

    // The partition is not poisoned: a real producer of the codec, then a consumer reading all.
    let started = Instant::now();
    produce_with_librdkafka(&bootstrap, &topic, codec, 0).await;
    assert_eq!(watermarks(&bootstrap, &topic, 0), (0, MESSAGES as i64));
    let got = consume_from_start(
        &bootstrap,
        &topic,
        &[(0, MESSAGES)],
        Duration::from_secs(60),
    );
    let got = &got[&0];
    assert_eq!(got.len(), MESSAGES, "{codec}: messages read back");
    for (i, m) in got.iter().enumerate() {
        assert_eq!(m.offset, i as i64, "{codec}: offset {i}");
        assert_eq!(
            m.value_str(),
            value_for(codec, i),
            "{codec}: value at offset {i}"
        );
    }
    // What was stored really is in the codec (librdkafka sends a batch uncompressed when
    // compressing would not make it smaller, as it may for a lone first message).
    let fetched = raw_fetch(broker.addr(), &topic, 0, 0, 0);
    let stored = parse_batches(&fetched.records.expect("fetched records"));
    let in_codec: i32 = stored
        .iter()
        .filter(|b| b.attributes & 7 == codec_id)
        .map(|b| b.records)
        .sum();
    assert!(
        in_codec as usize * 10 >= MESSAGES * 9,
        "{codec}: only {in_codec} of {MESSAGES} records stored in {codec} batches"
    );
    eprintln!(
        "{codec}: refused the bad batch, then produced and read {MESSAGES} in {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_garbage_is_refused_and_the_partition_serves_librdkafka() {
    refused_then_served("gzip", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snappy_garbage_is_refused_and_the_partition_serves_librdkafka() {
    refused_then_served("snappy", 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lz4_garbage_is_refused_and_the_partition_serves_librdkafka() {
    refused_then_served("lz4", 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zstd_garbage_is_refused_and_the_partition_serves_librdkafka() {
    refused_then_served("zstd", 4).await;
}

/// A valid gzip stream of broken records: INVALID_RECORD, the record at fault named in
/// `record_errors` (Produce v8+), nothing stored; the partition then takes good batches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_invalid_records_get_invalid_record_with_the_record_named() {
    let _dog = watchdog(Duration::from_secs(120));
    let broker = Broker::start(&[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "invalid-records", 1).await;
    let mut raw = RawClient::connect(broker.addr());

    let area = [
        record(0, b"first"),
        record(7, b"second"),
        record(2, b"third"),
    ]
    .concat();
    let bad = batch_over(1, 3, &gzip_stored(&area));
    let r = raw_produce(&mut raw, 9, "invalid-records", 0, bad);
    assert_eq!(r.error_code, INVALID_RECORD, "{r:?}");
    let indexes: Vec<i32> = r.record_errors.iter().map(|e| e.batch_index).collect();
    assert_eq!(indexes, vec![1], "the record at fault: {r:?}");
    let message = r.record_errors[0]
        .batch_index_error_message
        .as_ref()
        .expect("a message");
    assert!(message.contains("offset delta 7"), "{message:?}");
    assert!(r.error_message.is_some());

    // Too few records for the declared count: INVALID_RECORD, no single record at fault.
    let short = batch_over(
        1,
        4,
        &gzip_stored(&[record(0, b"a"), record(1, b"b")].concat()),
    );
    let r = raw_produce(&mut raw, 9, "invalid-records", 0, short);
    assert_eq!(r.error_code, INVALID_RECORD, "{r:?}");
    assert!(r.record_errors.is_empty(), "{r:?}");
    assert_eq!(
        watermarks(&bootstrap, "invalid-records", 0),
        (0, 0),
        "nothing stored"
    );

    // The same framing around good records is stored, and read back by librdkafka.
    let good = [record(0, b"one"), record(1, b"two"), record(2, b"three")].concat();
    let r = raw_produce(
        &mut raw,
        9,
        "invalid-records",
        0,
        batch_over(1, 3, &gzip_stored(&good)),
    );
    assert_eq!((r.error_code, r.base_offset), (0, 0), "{r:?}");
    let got = consume_from_start(
        &bootstrap,
        "invalid-records",
        &[(0, 3)],
        Duration::from_secs(30),
    );
    let values: Vec<String> = got[&0].iter().map(|m| m.value_str()).collect();
    assert_eq!(values, ["one", "two", "three"]);
}
