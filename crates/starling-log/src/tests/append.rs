//! Append: validation, offset assignment, timestamps, flushing.

use super::codecs::gzip_batch;
use super::support::*;
use crate::{AppendError, LogConfig, PartitionLog, TimestampType};

#[test]
fn partition_log_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<PartitionLog>();
}

#[test]
fn offsets_are_assigned_consecutively_across_appends() {
    let (_tmp, log) = open_log(config());
    let a = log
        .append(bm(&[&batch(NOW, &[b"a", b"b", b"c"])]), NOW)
        .unwrap();
    assert_eq!((a.base_offset, a.last_offset, a.record_count), (0, 2, 3));
    let b = log.append(bm(&[&batch(NOW, &[b"d"])]), NOW).unwrap();
    assert_eq!((b.base_offset, b.last_offset, b.record_count), (3, 3, 1));
    assert_eq!(b.log_start_offset, 0);
    assert_eq!(log.log_end_offset(), 4);
    let got: Vec<(i64, Vec<u8>)> = decode(&read_all(&log))
        .into_iter()
        .map(|d| (d.offset, d.value))
        .collect();
    let want: Vec<(i64, Vec<u8>)> = [b"a", b"b", b"c", b"d"]
        .iter()
        .enumerate()
        .map(|(i, v)| (i as i64, v.to_vec()))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn multi_batch_append_assigns_each_batch_the_next_base_offset() {
    let (_tmp, log) = open_log(config());
    log.append(bm(&[&batch(NOW, &[b"x"])]), NOW).unwrap();
    let info = log
        .append(
            bm(&[
                &batch(NOW, &[b"a", b"b"]),
                &batch(NOW, &[b"c"]),
                &batch(NOW, &[b"d", b"e", b"f"]),
            ]),
            NOW,
        )
        .unwrap();
    assert_eq!(
        (info.base_offset, info.last_offset, info.record_count),
        (1, 6, 6)
    );
    let stored = split(&read_all(&log));
    let bases: Vec<i64> = stored.iter().map(|b| b.base_offset).collect();
    assert_eq!(bases, vec![0, 1, 3, 4]);
    assert!(stored.iter().all(|b| b.crc_ok && b.leader_epoch == 0));
}

#[test]
fn stored_bytes_equal_produced_bytes_except_offset_and_leader_epoch() {
    let (_tmp, log) = open_log(config());
    log.append(bm(&[&batch(NOW, &[b"first"])]), NOW).unwrap();
    let produced = batch_of(
        NOW,
        &[
            Rec {
                key: Some(b"k".to_vec()),
                value: b"v".to_vec(),
                timestamp_delta: 5,
                headers: vec![],
                null_value: false,
            },
            Rec {
                key: None,
                value: vec![9; 300],
                timestamp_delta: 7,
                headers: vec![(b"h".to_vec(), b"hv".to_vec())],
                null_value: false,
            },
        ],
    );
    log.append(bm(&[&produced]), NOW).unwrap();
    let stored = log.read(1, 1 << 20, false).unwrap().records;
    assert_eq!(stored.len(), produced.len());
    assert_eq!(&stored[..8], &1i64.to_be_bytes());
    assert_eq!(&stored[12..16], &0i32.to_be_bytes());
    assert_eq!(&stored[8..12], &produced[8..12]);
    assert_eq!(
        &stored[16..],
        &produced[16..],
        "CRC-covered bytes are stored unchanged"
    );
}

#[test]
fn compressed_batch_is_stored_as_sent() {
    let (_tmp, log) = open_log(config());
    let produced = gzip_batch(NOW, 4, b"compressed and stored as the producer sent it");
    let info = log.append(bm(&[&produced]), NOW).unwrap();
    assert_eq!((info.base_offset, info.last_offset), (0, 3));
    let after = log.append(bm(&[&batch(NOW, &[b"next"])]), NOW).unwrap();
    assert_eq!(after.base_offset, 4);
    let stored = log.read(2, 1 << 20, false).unwrap().records;
    let first = &split(&stored)[0];
    assert_eq!(first.base_offset, 0);
    assert!(first.crc_ok);
    assert_eq!(&first.bytes[16..], &produced[16..]);
}

fn assert_nothing_written(log: &PartitionLog) {
    assert_eq!(log.log_end_offset(), 1, "log end offset must not move");
    assert_eq!(split(&read_all(log)).len(), 1);
    let info = log.append(bm(&[&batch(NOW, &[b"after"])]), NOW).unwrap();
    assert_eq!(info.base_offset, 1);
}

/// A log holding one record, for the refusal tests.
fn log_with_one_record() -> (tempfile::TempDir, PartitionLog) {
    let (tmp, log) = open_log(LogConfig {
        max_message_bytes: 1000,
        ..config()
    });
    log.append(bm(&[&batch(NOW, &[b"kept"])]), NOW).unwrap();
    (tmp, log)
}

#[test]
fn bad_crc_is_refused_and_nothing_written() {
    let (_tmp, log) = log_with_one_record();
    let mut bad = batch(NOW, &[b"payload"]);
    let last = bad.len() - 2;
    bad[last] ^= 0x40;
    let err = log
        .append(bm(&[&batch(NOW, &[b"good"]), &bad]), NOW)
        .unwrap_err();
    match &err {
        AppendError::Corrupt(msg) => assert!(msg.contains("crc"), "{msg}"),
        other => panic!("unexpected {other:?}"),
    }
    assert_nothing_written(&log);
}

#[test]
fn record_count_disagreeing_with_last_offset_delta_is_refused() {
    let (_tmp, log) = log_with_one_record();
    let mut area = encode_record(&Rec::value(b"a"), 0);
    area.extend_from_slice(&encode_record(&Rec::value(b"b"), 1));
    let bad = raw_batch(0, 2, NOW, NOW, 2, &area);
    assert!(matches!(
        log.append(bm(&[&bad]), NOW),
        Err(AppendError::InvalidRecord { .. })
    ));
    assert_nothing_written(&log);
}

#[test]
fn record_count_disagreeing_with_records_present_is_refused() {
    let (_tmp, log) = log_with_one_record();
    let area = encode_record(&Rec::value(b"a"), 0);
    let bad = raw_batch(0, 1, NOW, NOW, 2, &area);
    let err = log.append(bm(&[&bad]), NOW).unwrap_err();
    assert!(
        matches!(&err, AppendError::InvalidRecord { message, record_errors }
            if message.contains("holds 1") && record_errors.is_empty()),
        "{err}"
    );
    assert_nothing_written(&log);
}

#[test]
fn zero_record_batch_is_refused() {
    let (_tmp, log) = log_with_one_record();
    let bad = raw_batch(0, -1, NOW, NOW, 0, &[]);
    assert!(matches!(
        log.append(bm(&[&bad]), NOW),
        Err(AppendError::InvalidRecord { .. })
    ));
    assert_nothing_written(&log);
}

#[test]
fn wrong_record_offset_delta_is_refused() {
    let (_tmp, log) = log_with_one_record();
    let mut area = encode_record(&Rec::value(b"a"), 0);
    area.extend_from_slice(&encode_record(&Rec::value(b"b"), 5));
    let bad = raw_batch(0, 1, NOW, NOW, 2, &area);
    let err = log.append(bm(&[&bad]), NOW).unwrap_err();
    assert!(
        matches!(&err, AppendError::InvalidRecord { message, record_errors }
            if message.contains("offset delta")
                && record_errors.iter().map(|e| e.batch_index).eq([1])),
        "{err}"
    );
    assert_nothing_written(&log);
}

#[test]
fn records_not_tiling_the_batch_are_refused() {
    let (_tmp, log) = log_with_one_record();
    let mut area = encode_record(&Rec::value(b"a"), 0);
    area.push(0x55); // a stray byte after the last record
    let bad = raw_batch(0, 0, NOW, NOW, 1, &area);
    assert!(matches!(
        log.append(bm(&[&bad]), NOW),
        Err(AppendError::InvalidRecord { .. })
    ));

    // A record whose length prefix is longer than its fields.
    let mut rec = encode_record(&Rec::value(b"abc"), 0);
    rec[0] += 2; // claim one more byte (zigzag: +2)
    rec.push(0);
    let bad = raw_batch(0, 0, NOW, NOW, 1, &rec);
    assert!(matches!(
        log.append(bm(&[&bad]), NOW),
        Err(AppendError::InvalidRecord { .. })
    ));
    assert_nothing_written(&log);
}

#[test]
fn truncated_batch_is_refused() {
    let (_tmp, log) = log_with_one_record();
    let good = batch(NOW, &[b"whole"]);
    let partial = batch(NOW, &[b"partial"]);
    for cut in [1, 11, 30, 61, partial.len() - 1] {
        let err = log.append(bm(&[&good, &partial[..cut]]), NOW).unwrap_err();
        assert!(
            matches!(err, AppendError::Corrupt(_)),
            "cut at {cut}: {err:?}"
        );
    }
    assert_nothing_written(&log);
}

#[test]
fn legacy_magic_is_refused_as_unsupported() {
    let (_tmp, log) = log_with_one_record();
    let mut v1 = batch(NOW, &[b"old"]);
    v1[16] = 1;
    assert!(matches!(
        log.append(bm(&[&v1]), NOW),
        Err(AppendError::UnsupportedMagic(1))
    ));
    // A legacy v0 message is shorter than a v2 header; still reported by magic.
    let mut v0 = vec![0u8; 26];
    v0[8..12].copy_from_slice(&14i32.to_be_bytes());
    assert!(matches!(
        log.append(bm(&[&v0]), NOW),
        Err(AppendError::UnsupportedMagic(0))
    ));
    assert_nothing_written(&log);
}

#[test]
fn batch_larger_than_max_message_bytes_is_refused() {
    let (_tmp, log) = log_with_one_record();
    let big = batch(NOW, &[&[7u8; 1000]]);
    let err = log
        .append(bm(&[&batch(NOW, &[b"ok"]), &big]), NOW)
        .unwrap_err();
    assert!(
        matches!(err, AppendError::TooLarge { size, max: 1000 } if size == big.len()),
        "{err:?}"
    );
    assert_nothing_written(&log);
}

#[test]
fn empty_input_is_refused() {
    let (_tmp, log) = log_with_one_record();
    assert!(matches!(
        log.append(bm(&[]), NOW),
        Err(AppendError::Corrupt(_))
    ));
    assert_nothing_written(&log);
}

#[test]
fn log_append_time_rewrites_timestamps_with_a_valid_crc() {
    let (_tmp, log) = open_log(LogConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..config()
    });
    let appended_at = NOW + 5_000;
    let info = log
        .append(
            bm(&[
                &batch(NOW - 99_000, &[b"a", b"b"]),
                &gzip_batch(NOW - 99_000, 2, b"zz"),
            ]),
            appended_at,
        )
        .unwrap();
    assert_eq!(info.log_append_time, appended_at);
    let stored = split(&read_all(&log));
    assert_eq!(stored.len(), 2);
    for b in &stored {
        assert!(b.crc_ok, "CRC must be recomputed");
        assert_ne!(b.attributes & 0x08, 0, "timestamp type bit must be set");
        assert_eq!(b.max_timestamp, appended_at);
        assert_eq!(b.base_timestamp, appended_at);
    }
    assert_eq!(stored[1].attributes & 7, 1, "compression bits are kept");
    assert!(decode(&stored[0].bytes)
        .iter()
        .all(|d| d.timestamp == appended_at));
    assert_eq!(
        log.max_timestamp().unwrap(),
        Some((appended_at, 1)),
        "ties go to the first batch"
    );
}

#[test]
fn create_time_keeps_producer_timestamps() {
    let (_tmp, log) = open_log(config());
    let info = log.append(bm(&[&batch(NOW - 42, &[b"a"])]), NOW).unwrap();
    assert_eq!(info.log_append_time, -1);
    let stored = split(&read_all(&log));
    assert_eq!(stored[0].max_timestamp, NOW - 42);
    assert_eq!(stored[0].attributes & 0x08, 0);
}

#[test]
fn flush_policies_are_exercised() {
    // flush.messages = 1: every append fsyncs.
    let (_tmp, log) = open_log(LogConfig {
        flush_interval_messages: 1,
        ..config()
    });
    for i in 0..5 {
        log.append(bm(&[&batch(NOW, &[format!("m{i}").as_bytes()])]), NOW)
            .unwrap();
    }
    assert_eq!(log.log_end_offset(), 5);
    log.flush().unwrap();

    // flush.ms: the ticker flushes once the interval has passed.
    let (_tmp2, log) = open_log(LogConfig {
        flush_interval_ms: Some(1_000),
        ..config()
    });
    log.append(bm(&[&batch(NOW, &[b"x"])]), NOW).unwrap();
    log.maybe_flush(NOW + 10).unwrap();
    log.maybe_flush(NOW + 2_000).unwrap();
    log.append(bm(&[&batch(NOW, &[b"y"])]), NOW + 4_000)
        .unwrap();
    assert_eq!(read_all(&log).len(), 2 * batch(NOW, &[b"x"]).len());
}

#[test]
fn config_changes_apply_to_later_appends() {
    let (_tmp, log) = open_log(config());
    log.append(bm(&[&batch(NOW, &[&[1u8; 100]])]), NOW).unwrap();
    let new = LogConfig {
        max_message_bytes: 50,
        ..config()
    };
    log.set_config(new.clone());
    assert_eq!(log.config(), new);
    assert!(matches!(
        log.append(bm(&[&batch(NOW, &[&[1u8; 100]])]), NOW),
        Err(AppendError::TooLarge { .. })
    ));
}

#[test]
fn concurrent_reads_see_whole_batches_while_appending() {
    use std::sync::Arc;
    let (_tmp, log) = open_log(LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 256,
        ..config()
    });
    let log = Arc::new(log);
    let writer = {
        let log = Arc::clone(&log);
        std::thread::spawn(move || {
            for i in 0..300u32 {
                let v = vec![(i % 251) as u8; (i % 40) as usize + 1];
                log.append(bm(&[&batch(NOW, &[&v, &v])]), NOW).unwrap();
            }
        })
    };
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut checks = 0;
                while checks < 300 {
                    let end = log.log_end_offset();
                    let from = (end / 2 + r) & !1;
                    if from < end {
                        let got = log.read(from, 2048, true).unwrap();
                        let recs = decode(&got.records);
                        assert!(!recs.is_empty());
                        assert_eq!(recs[0].offset, from);
                        assert!(recs.windows(2).all(|w| w[1].offset == w[0].offset + 1));
                        assert!(recs.last().unwrap().offset < got.high_watermark);
                    }
                    checks += 1;
                    std::thread::yield_now();
                }
            })
        })
        .collect();
    writer.join().unwrap();
    for r in readers {
        r.join().unwrap();
    }
    assert_eq!(log.log_end_offset(), 600);
    assert!(log.segment_count() > 1);
}
