//! Topic settings the log applies to produced batches: `compression.type` (a batch whose codec
//! differs is recompressed before it is written, at the KIP-390 levels, and must still fit
//! `max.message.bytes`) and `message.timestamp.before.max.ms` / `after.max.ms` (records outside
//! the bounds refused with INVALID_TIMESTAMP, one error per record, nothing written).

use super::codecs::{compressed_batch, oracle_decompress, records_area, varied_records, Codec};
use super::idempotence::produced;
use super::support::*;
use crate::{
    AppendError, CleanupPolicy, CompressionLevels, CompressionType, LogConfig, RecordError,
    TimestampType,
};

/// How a test batch is compressed by its producer: `None` for uncompressed.
const SOURCES: [Option<Codec>; 6] = [
    None,
    Some(Codec::Gzip),
    Some(Codec::SnappyRaw),
    Some(Codec::SnappyXerial),
    Some(Codec::Lz4),
    Some(Codec::Zstd),
];

/// Every `compression.type` that makes the log compress.
const TARGETS: [CompressionType; 5] = [
    CompressionType::Uncompressed,
    CompressionType::Gzip,
    CompressionType::Snappy,
    CompressionType::Lz4,
    CompressionType::Zstd,
];

fn produced_with(source: Option<Codec>, recs: &[Rec]) -> Vec<u8> {
    match source {
        None => batch_of(NOW, recs),
        Some(codec) => compressed_batch(codec, NOW, recs),
    }
}

fn with_compression(compression_type: CompressionType) -> LogConfig {
    LogConfig {
        compression_type,
        ..config()
    }
}

/// The records area of a stored batch, decompressed.
fn stored_area(b: &Stored) -> Vec<u8> {
    let payload = &b.bytes[61..];
    match b.attributes & 7 {
        0 => payload.to_vec(),
        codec => oracle_decompress(codec, payload).expect("a stored batch decompresses"),
    }
}

#[test]
fn every_codec_is_recompressed_to_the_topics_type_with_records_timestamps_and_headers_intact() {
    let recs = varied_records(40);
    let area = records_area(&recs);
    let max_delta = recs.iter().map(|r| r.timestamp_delta).max().unwrap();
    for source in SOURCES {
        for target in TARGETS {
            let (_tmp, log) = open_log(with_compression(target));
            log.append(bm(&[&batch(NOW, &[b"first"])]), NOW).unwrap();
            let info = log
                .append(bm(&[&produced_with(source, &recs)]), NOW)
                .unwrap();
            assert_eq!((info.base_offset, info.last_offset), (1, 40));
            let stored = split(&read_all(&log));
            assert_eq!(stored.len(), 2, "{source:?} -> {target:?}");
            let b = &stored[1];
            let what = format!("{source:?} -> {target:?}");
            assert!(b.crc_ok, "{what}: crc");
            assert_eq!(b.attributes & 7, target.codec().unwrap(), "{what}");
            assert_eq!(b.attributes & !7, 0, "{what}: other attributes kept");
            assert_eq!(
                (b.base_offset, b.record_count, b.last_offset_delta),
                (1, 40, 39)
            );
            assert_eq!(b.base_timestamp, NOW, "{what}");
            // A rewritten batch's maxTimestamp is its records' largest (the test's compressed
            // batches declare their base timestamp); one already in the codec is kept.
            let rewritten = source.map_or(0, Codec::id) != target.codec().unwrap();
            if rewritten {
                assert_eq!(b.max_timestamp, NOW + max_delta, "{what}");
            }
            // The records are byte for byte what the producer sent: keys, values, headers,
            // offset and timestamp deltas.
            assert_eq!(stored_area(b), area, "{what}");
            // And Starling's own validation (the streaming decoders) accepts what it wrote.
            let (_tmp2, again) = open_log(config());
            again
                .append(bm(&[&b.bytes]), NOW)
                .unwrap_or_else(|e| panic!("{what}: the stored batch is refused: {e}"));
            if target == CompressionType::Snappy && rewritten {
                assert!(
                    b.bytes[61..].starts_with(b"\x82SNAPPY\x00"),
                    "{what}: xerial"
                );
            }
        }
    }
}

#[test]
fn producer_keeps_every_batch_as_sent_and_a_batch_already_in_the_topics_codec_is_not_rewritten() {
    let recs = varied_records(10);
    for source in SOURCES {
        let sent = produced_with(source, &recs);
        let (_tmp, log) = open_log(with_compression(CompressionType::Producer));
        log.append(bm(&[&sent]), NOW).unwrap();
        let stored = split(&read_all(&log));
        // Only the base offset and the leader epoch (outside the CRC) change on append.
        assert_eq!(stored[0].bytes[16..], sent[16..], "{source:?}");
    }
    // A raw snappy batch into a snappy topic stays raw: the codec is the same.
    let sent = compressed_batch(Codec::SnappyRaw, NOW, &recs);
    let (_tmp, log) = open_log(with_compression(CompressionType::Snappy));
    log.append(bm(&[&sent]), NOW).unwrap();
    assert_eq!(split(&read_all(&log))[0].bytes[16..], sent[16..]);
}

#[test]
fn several_batches_of_one_record_set_are_each_recompressed() {
    let a = batch(NOW, &[b"a0", b"a1"]);
    let b = compressed_batch(Codec::Zstd, NOW + 5, &varied_records(3));
    let c = compressed_batch(Codec::Gzip, NOW + 9, &varied_records(4));
    let (_tmp, log) = open_log(with_compression(CompressionType::Lz4));
    let info = log.append(bm(&[&a, &b, &c]), NOW).unwrap();
    assert_eq!((info.base_offset, info.last_offset), (0, 8));
    let stored = split(&read_all(&log));
    let offsets: Vec<(i64, i16, i32)> = stored
        .iter()
        .map(|s| (s.base_offset, s.attributes & 7, s.record_count))
        .collect();
    assert_eq!(offsets, [(0, 3, 2), (2, 3, 3), (5, 3, 4)]);
    assert!(stored.iter().all(|s| s.crc_ok));
    assert_eq!(stored_area(&stored[2]), records_area(&varied_records(4)));
}

/// Compressible records that are not all alike, so the levels make a difference.
fn text_records() -> Vec<Rec> {
    (0..400)
        .map(|i| {
            let words: String = (0..30)
                .map(|j| format!("w{} ", (i * 7919 + j * 104_729) % 997))
                .collect();
            Rec::value(words.as_bytes())
        })
        .collect()
}

fn stored_size(target: CompressionType, levels: CompressionLevels) -> (usize, Vec<u8>) {
    let (_tmp, log) = open_log(LogConfig {
        compression_levels: levels,
        ..with_compression(target)
    });
    log.append(bm(&[&batch_of(NOW, &text_records())]), NOW)
        .unwrap();
    let stored = split(&read_all(&log));
    assert_eq!(stored_area(&stored[0]), records_area(&text_records()));
    (stored[0].bytes.len(), stored[0].bytes.clone())
}

#[test]
fn the_compression_levels_apply_when_the_log_compresses() {
    let default = CompressionLevels::default();
    let cases = [
        (
            CompressionType::Gzip,
            CompressionLevels { gzip: 1, ..default },
            CompressionLevels { gzip: 9, ..default },
        ),
        (
            CompressionType::Lz4,
            CompressionLevels { lz4: 1, ..default },
            CompressionLevels { lz4: 12, ..default },
        ),
        (
            CompressionType::Zstd,
            CompressionLevels {
                zstd: -5,
                ..default
            },
            CompressionLevels {
                zstd: 19,
                ..default
            },
        ),
    ];
    for (target, low, high) in cases {
        let (low_size, low_bytes) = stored_size(target, low);
        let (high_size, high_bytes) = stored_size(target, high);
        assert_ne!(
            low_bytes, high_bytes,
            "{target:?}: the level changed nothing"
        );
        assert!(
            high_size < low_size,
            "{target:?}: {high_size} bytes at the high level, {low_size} at the low"
        );
    }
    // gzip's -1 is zlib's default (6), not level 1.
    let (minus_one, _) = stored_size(
        CompressionType::Gzip,
        CompressionLevels {
            gzip: -1,
            ..default
        },
    );
    let (six, _) = stored_size(
        CompressionType::Gzip,
        CompressionLevels { gzip: 6, ..default },
    );
    assert_eq!(minus_one, six);
}

#[test]
fn idempotent_and_transactional_batches_keep_their_producer_fields_and_retries_are_still_found() {
    let (_tmp, log) = open_log(with_compression(CompressionType::Zstd));
    let first = log.append(bm(&[&produced(7, 3, 0, 5)]), NOW).unwrap();
    assert_eq!((first.base_offset, first.last_offset), (0, 4));
    let retry = log.append(bm(&[&produced(7, 3, 0, 5)]), NOW).unwrap();
    assert_eq!(
        (retry.base_offset, retry.last_offset, retry.record_count),
        (0, 4, 0)
    );
    log.append(bm(&[&produced(7, 3, 5, 2)]), NOW).unwrap();
    assert!(matches!(
        log.append(bm(&[&produced(7, 3, 9, 1)]), NOW),
        Err(AppendError::Producer(_))
    ));
    // A transactional batch stays transactional.
    let mut txn = produced(9, 0, 0, 3);
    txn[21..23].copy_from_slice(&0x10i16.to_be_bytes());
    fix_crc(&mut txn);
    log.append(bm(&[&txn]), NOW).unwrap();
    let stored = split(&read_all(&log));
    assert_eq!(stored.len(), 3);
    for (s, (pid, epoch, seq, attributes)) in
        stored
            .iter()
            .zip([(7i64, 3i16, 0i32, 4i16), (7, 3, 5, 4), (9, 0, 0, 0x14)])
    {
        assert!(s.crc_ok);
        assert_eq!(i64::from_be_bytes(s.bytes[43..51].try_into().unwrap()), pid);
        assert_eq!(
            i16::from_be_bytes(s.bytes[51..53].try_into().unwrap()),
            epoch
        );
        assert_eq!(i32::from_be_bytes(s.bytes[53..57].try_into().unwrap()), seq);
        assert_eq!(s.attributes, attributes);
    }
    assert_eq!(log.log_end_offset(), 10);
    // The producer state read back from the recompressed batches still finds the retry.
    let dir = log.dir().to_path_buf();
    log.close().unwrap();
    let log =
        crate::PartitionLog::open(&dir, with_compression(CompressionType::Zstd), NOW).unwrap();
    let retry = log.append(bm(&[&produced(7, 3, 5, 2)]), NOW).unwrap();
    assert_eq!((retry.base_offset, retry.record_count), (5, 0));
}

#[test]
fn a_batch_too_large_once_recompressed_is_refused_and_nothing_is_written() {
    let zeros = vec![0u8; 20_000];
    let small = compressed_batch(Codec::Zstd, NOW, &[Rec::value(&zeros)]);
    assert!(small.len() < 1_000);
    let cfg = |compression_type| LogConfig {
        max_message_bytes: 2_000,
        compression_type,
        ..config()
    };
    let (_tmp, log) = open_log(cfg(CompressionType::Uncompressed));
    match log.append(bm(&[&small]), NOW) {
        Err(AppendError::TooLarge { size, max: 2_000 }) => assert!(size > 20_000, "{size}"),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert_eq!((log.log_end_offset(), read_all(&log).len()), (0, 0));
    // The same batch fits when it is kept, or recompressed small.
    for ok in [CompressionType::Producer, CompressionType::Gzip] {
        let (_tmp, log) = open_log(cfg(ok));
        log.append(bm(&[&small]), NOW).unwrap();
    }
}

fn bounded(before: i64, after: i64) -> LogConfig {
    LogConfig {
        timestamp_before_max_ms: before,
        timestamp_after_max_ms: after,
        ..config()
    }
}

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// Records at NOW, NOW + 2h, NOW + 1h (exactly on the default bound), NOW - 2 days.
fn spread() -> Vec<Rec> {
    [0, 2 * HOUR, HOUR, -2 * DAY]
        .into_iter()
        .map(|delta| Rec {
            key: Some(b"k".to_vec()),
            timestamp_delta: delta,
            ..Rec::value(b"v")
        })
        .collect()
}

fn out_of_range(ts: i64, offset: i64, before: i64, after: i64) -> String {
    format!(
        "Timestamp {ts} of message with offset {offset} is out of range. The timestamp should \
         be within [{}, {}]",
        NOW - before,
        NOW + after
    )
}

#[test]
fn records_outside_the_timestamp_bounds_are_refused_each_with_its_error_and_nothing_is_written() {
    for source in SOURCES {
        let (_tmp, log) = open_log(bounded(DAY, HOUR));
        let err = log
            .append(bm(&[&produced_with(source, &spread())]), NOW)
            .unwrap_err();
        // The test batches' producer base offset is 12345.
        let expected = vec![
            RecordError {
                batch_index: 1,
                message: out_of_range(NOW + 2 * HOUR, 12346, DAY, HOUR),
            },
            RecordError {
                batch_index: 3,
                message: out_of_range(NOW - 2 * DAY, 12348, DAY, HOUR),
            },
        ];
        match &err {
            AppendError::InvalidTimestamp {
                message,
                record_errors,
            } => {
                assert_eq!(
                    message,
                    "One or more records have been rejected due to invalid timestamp"
                );
                assert_eq!(record_errors, &expected, "{source:?}");
            }
            other => panic!("{source:?}: expected InvalidTimestamp, got {other:?}"),
        }
        assert_eq!(log.log_end_offset(), 0);
        assert!(read_all(&log).is_empty());
        // Within raised bounds the same batch is written.
        log.set_config(bounded(3 * DAY, 2 * HOUR));
        log.append(bm(&[&produced_with(source, &spread())]), NOW)
            .unwrap();
        assert_eq!(log.log_end_offset(), 4);
    }
}

#[test]
fn the_default_bounds_refuse_only_records_more_than_an_hour_ahead() {
    let defaults = LogConfig::default();
    assert_eq!(
        (
            defaults.timestamp_before_max_ms,
            defaults.timestamp_after_max_ms
        ),
        (i64::MAX, HOUR)
    );
    let (_tmp, log) = open_log(config());
    let err = log
        .append(bm(&[&batch_of(NOW, &spread())]), NOW)
        .unwrap_err();
    let AppendError::InvalidTimestamp { record_errors, .. } = err else {
        panic!("expected InvalidTimestamp, got {err:?}");
    };
    assert_eq!(
        record_errors,
        [RecordError {
            batch_index: 1,
            // Java's `now - Long.MAX_VALUE`, as Kafka prints it.
            message: format!(
                "Timestamp {} of message with offset 12346 is out of range. The timestamp should \
                 be within [{}, {}]",
                NOW + 2 * HOUR,
                NOW - i64::MAX,
                NOW + HOUR
            ),
        }]
    );
    // Records from the epoch on, and without a timestamp (-1), pass.
    log.append(bm(&[&batch(0, &[b"old"]), &batch(-1, &[b"none"])]), NOW)
        .unwrap();
}

#[test]
fn log_append_time_topics_do_not_check_timestamps() {
    let (_tmp, log) = open_log(LogConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..bounded(0, 0)
    });
    log.append(bm(&[&batch_of(NOW, &spread())]), NOW).unwrap();
    assert!(decode(&read_all(&log)).iter().all(|d| d.timestamp == NOW));
}

#[test]
fn a_keyless_record_of_a_compacted_topic_has_its_key_error_and_a_bad_timestamp_makes_it_invalid_timestamp(
) {
    let (_tmp, log) = open_log(LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        ..bounded(DAY, HOUR)
    });
    let mut recs = spread();
    recs[1].key = None; // also two hours ahead: the key error wins
    recs[0].key = None;
    let err = log.append(bm(&[&batch_of(NOW, &recs)]), NOW).unwrap_err();
    let AppendError::InvalidTimestamp { record_errors, .. } = err else {
        panic!("expected InvalidTimestamp, got {err:?}");
    };
    let indexes: Vec<i32> = record_errors.iter().map(|e| e.batch_index).collect();
    assert_eq!(indexes, [0, 1, 3]);
    assert!(record_errors[1]
        .message
        .starts_with("Compacted topic cannot accept message without key"));
    assert!(record_errors[2].message.starts_with("Timestamp "));
    // Keys missing alone are still INVALID_RECORD.
    let err = log
        .append(bm(&[&batch_of(NOW, &recs[..1])]), NOW)
        .unwrap_err();
    assert!(matches!(err, AppendError::InvalidRecord { .. }), "{err:?}");
}
