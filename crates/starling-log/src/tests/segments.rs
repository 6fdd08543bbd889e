//! Rolling and retention.

use std::fs;

use super::support::*;
use crate::{LogConfig, ReadError};

#[test]
fn segment_files_use_kafka_names() {
    let (tmp, log) = open_log(config());
    log.append(bm(&[&batch(NOW, &[b"a", b"b", b"c"])]), NOW)
        .unwrap();
    log.roll_if_due(NOW + config().segment_ms + 1).unwrap();
    let names: Vec<String> = log_files(log.dir())
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec!["00000000000000000000.log", "00000000000000000003.log"]
    );
    assert!(log.dir().join("00000000000000000003.index").exists());
    assert!(log.dir().join("00000000000000000003.timeindex").exists());
    assert_eq!(log.dir(), tmp.path().join("p0"));
}

#[test]
fn rolls_when_the_segment_would_exceed_segment_bytes() {
    let b = batch(NOW, &[&[0u8; 200]]);
    let (_tmp, log) = open_log(LogConfig {
        segment_bytes: 3 * b.len() as u64,
        ..config()
    });
    for _ in 0..3 {
        log.append(bm(&[&b]), NOW).unwrap();
    }
    assert_eq!(log.segment_count(), 1, "exactly full is not over");
    log.append(bm(&[&b]), NOW).unwrap();
    assert_eq!(log.segment_count(), 2);
    // A multi-batch append bigger than a segment goes whole into a fresh one.
    log.append(bm(&[&b, &b, &b, &b]), NOW).unwrap();
    assert_eq!(log.segment_count(), 3);
    assert_eq!(log.size_bytes(), 8 * b.len() as u64);
    let sizes: Vec<u64> = log_files(log.dir())
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .collect();
    assert_eq!(
        sizes,
        vec![3 * b.len() as u64, b.len() as u64, 4 * b.len() as u64]
    );
    assert_eq!(decode(&read_all(&log)).len(), 8);
}

#[test]
fn rolls_by_time_on_append_and_on_the_ticker() {
    let (_tmp, log) = open_log(LogConfig {
        segment_ms: 1_000,
        ..config()
    });
    assert!(
        !log.roll_if_due(NOW + 5_000).unwrap(),
        "an empty segment never rolls"
    );
    log.append(bm(&[&batch(NOW, &[b"a"])]), NOW).unwrap();
    log.append(bm(&[&batch(NOW, &[b"b"])]), NOW + 1_000)
        .unwrap();
    assert_eq!(log.segment_count(), 1);
    log.append(bm(&[&batch(NOW, &[b"c"])]), NOW + 1_001)
        .unwrap();
    assert_eq!(log.segment_count(), 2);
    assert!(!log.roll_if_due(NOW + 1_500).unwrap());
    assert!(log.roll_if_due(NOW + 2_002).unwrap());
    assert_eq!(log.segment_count(), 3);
    assert!(!log.roll_if_due(NOW + 9_000).unwrap());
    let got = decode(&read_all(&log));
    assert_eq!(
        got.iter().map(|d| d.value.clone()).collect::<Vec<_>>(),
        vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
    );
    log.append(bm(&[&batch(NOW, &[b"d"])]), NOW + 9_000)
        .unwrap();
    assert_eq!(
        log.read(3, 1000, true).unwrap().records.len(),
        batch(NOW, &[b"d"]).len()
    );
}

/// A log with four segments of one batch each at timestamps 1000, 2000, 3000, 4000.
fn four_segment_log(config: LogConfig) -> (tempfile::TempDir, crate::PartitionLog, usize) {
    let (tmp, log) = open_log(config);
    let mut now = NOW;
    let mut size = 0;
    for i in 1..=4i64 {
        let b = batch(i * 1_000, &[b"0123456789", b"abcdefghij"]);
        size = b.len();
        log.append(bm(&[&b]), now).unwrap();
        now += log.config().segment_ms + 1;
        if i < 4 {
            assert!(log.roll_if_due(now).unwrap());
        }
    }
    assert_eq!(log.segment_count(), 4);
    (tmp, log, size)
}

#[test]
fn retention_by_time_deletes_old_sealed_segments_and_moves_log_start() {
    let (_tmp, log, _) = four_segment_log(LogConfig {
        retention_ms: Some(10_000),
        ..config()
    });
    assert_eq!(
        log.enforce_retention(12_000).unwrap(),
        1,
        "newest 1000 < 12000 - 10000"
    );
    assert_eq!(log.log_start_offset(), 2);
    assert_eq!(log.segment_count(), 3);
    assert!(matches!(
        log.read(0, 100, true),
        Err(ReadError::OffsetOutOfRange {
            log_start_offset: 2,
            ..
        })
    ));
    assert_eq!(
        decode(&log.read(2, usize::MAX, true).unwrap().records)[0].offset,
        2
    );
    // Far in the future: everything sealed goes, the active segment stays.
    assert_eq!(log.enforce_retention(1_000_000).unwrap(), 2);
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.log_start_offset(), 6);
    assert_eq!(log_files(log.dir()).len(), 1);
    assert_eq!(log.enforce_retention(i64::MAX).unwrap(), 0);
    assert_eq!(decode(&read_all(&log)).len(), 2);
    let info = log.append(bm(&[&batch(NOW, &[b"more"])]), NOW).unwrap();
    assert_eq!((info.base_offset, info.log_start_offset), (8, 6));
}

#[test]
fn retention_by_size_keeps_at_least_retention_bytes() {
    let probe = batch(1_000, &[b"0123456789", b"abcdefghij"]).len() as u64;
    let (_tmp, log, size) = four_segment_log(LogConfig {
        retention_bytes: Some(2 * probe),
        ..config()
    });
    assert_eq!(size as u64, probe);
    assert_eq!(log.size_bytes(), 4 * probe);
    assert_eq!(log.enforce_retention(NOW).unwrap(), 2);
    assert_eq!(log.size_bytes(), 2 * probe);
    assert_eq!(log.log_start_offset(), 4);
    assert_eq!(log.enforce_retention(NOW).unwrap(), 0);

    log.set_config(LogConfig {
        retention_bytes: Some(0),
        ..config()
    });
    assert_eq!(log.enforce_retention(NOW).unwrap(), 1);
    assert_eq!(
        log.segment_count(),
        1,
        "the active segment is never deleted"
    );
    assert_eq!(log.log_start_offset(), 6);
}

#[test]
fn retention_uses_file_mtime_for_segments_without_timestamps() {
    let wall_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let (_tmp, log) = open_log(LogConfig {
        retention_ms: Some(60_000),
        ..config()
    });
    log.append(bm(&[&batch(-1, &[b"no timestamp"])]), wall_now)
        .unwrap();
    assert!(log
        .roll_if_due(wall_now + log.config().segment_ms + 1)
        .unwrap());
    log.append(bm(&[&batch(-1, &[b"active"])]), wall_now)
        .unwrap();
    assert_eq!(
        log.enforce_retention(wall_now).unwrap(),
        0,
        "mtime is recent"
    );
    assert_eq!(log.enforce_retention(wall_now + 3_600_000).unwrap(), 1);
    assert_eq!(log.log_start_offset(), 1);
}
