//! DeleteRecords: the log start moves up (inside a segment too), durably; what lies below it is
//! never served again and whole segments below it are deleted; the producers are remembered.

use super::idempotence::{append, produced};
use super::support::*;
use crate::{DeleteError, LogConfig, PartitionLog, ReadError};

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 200,
        ..config()
    }
}

#[test]
fn the_log_start_moves_inside_a_segment_and_reads_below_it_are_out_of_range() {
    let (_tmp, log) = open_log(config());
    for i in 0..5 {
        append(&log, &batch(NOW, &[format!("v{i}").as_bytes()])).unwrap();
    }
    assert_eq!(log.delete_records_before(3, NOW).unwrap(), 3);
    assert_eq!(log.log_start_offset(), 3);
    assert!(matches!(
        log.read(2, 1 << 20, true),
        Err(ReadError::OffsetOutOfRange {
            log_start_offset: 3,
            ..
        })
    ));
    let values: Vec<Vec<u8>> = decode(&log.read(3, 1 << 20, true).unwrap().records)
        .into_iter()
        .map(|d| d.value)
        .collect();
    assert_eq!(values, vec![b"v3".to_vec(), b"v4".to_vec()]);
    // Lower or equal offsets change nothing.
    assert_eq!(log.delete_records_before(1, NOW).unwrap(), 3);
    // Up to the end is allowed (an empty log from there on), past it is not.
    assert!(matches!(
        log.delete_records_before(6, NOW),
        Err(DeleteError::OffsetOutOfRange { .. })
    ));
    assert_eq!(log.delete_records_before(5, NOW).unwrap(), 5);
    assert_eq!(log.read(5, 1 << 20, true).unwrap().records.len(), 0);
    append(&log, &batch(NOW, &[b"after"])).unwrap();
    assert_eq!(log.log_end_offset(), 6);
}

#[test]
fn whole_segments_below_the_new_start_are_deleted_and_the_start_survives_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p0");
    let log = PartitionLog::open(&dir, small_segments(), NOW).unwrap();
    for i in 0..12 {
        append(&log, &batch(NOW, &[format!("value-{i:03}").as_bytes()])).unwrap();
    }
    let segments = log.segment_count();
    assert!(segments >= 4, "{segments} segments");
    log.delete_records_before(7, NOW).unwrap();
    assert!(log.segment_count() < segments, "segments below 7 are gone");
    assert_eq!(log.log_start_offset(), 7);
    drop(log); // a crash: no close
    let log = PartitionLog::open(&dir, small_segments(), NOW).unwrap();
    assert_eq!(log.log_start_offset(), 7);
    let first = decode(&log.read(7, 1 << 20, true).unwrap().records)[0].clone();
    assert_eq!(first.value, b"value-007".to_vec());
    assert!(log.read(6, 1 << 20, true).is_err());
    // A timestamp lookup never answers below the start.
    assert_eq!(log.offset_for_timestamp(0).unwrap().unwrap().0, 7);
}

#[test]
fn producers_outlive_the_records_deleted_below_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p0");
    let log = PartitionLog::open(&dir, small_segments(), NOW).unwrap();
    for i in 0..6 {
        append(&log, &produced(7, 0, i * 2, 2)).unwrap();
    }
    let end = log.log_end_offset();
    log.delete_records_before(end, NOW).unwrap();
    drop(log);
    let log = PartitionLog::open(&dir, small_segments(), NOW).unwrap();
    assert_eq!(log.producer_count(), 1);
    // Its next batch continues the sequence; a gap is still refused.
    assert!(append(&log, &produced(7, 0, 13, 1)).is_err());
    append(&log, &produced(7, 0, 12, 1)).unwrap();
}
