//! Log compaction: the cleanup policy's effect on retention, keyless records refused on
//! compacted topics, and the cleaner (see `cleaner`): what a cleaning pass keeps and drops,
//! its checkpoint, its throttle, and crash safety of its segment swap.

use super::codecs::{compressed_batch, ALL};
use super::support::*;
use crate::producer_state::TxnMarker;
use crate::{AppendError, CleanupPolicy, LogConfig, PartitionLog, RecordError};

/// A record with key `key` and value `value` (`None`: a tombstone).
pub fn keyed(key: &str, value: Option<&str>) -> Rec {
    Rec {
        key: Some(key.as_bytes().to_vec()),
        value: value.map(|v| v.as_bytes().to_vec()).unwrap_or_default(),
        timestamp_delta: 0,
        headers: Vec::new(),
    }
}

/// Sealed segments of one batch each, then an empty active segment, rolled by time.
fn log_of_segments(config: LogConfig, segments: &[Vec<u8>]) -> (tempfile::TempDir, PartitionLog) {
    let (tmp, log) = open_log(config.clone());
    let mut now = NOW;
    for b in segments {
        log.append(bm(&[b]), now).unwrap();
        now += config.segment_ms + 1;
        assert!(log.roll_if_due(now).unwrap());
    }
    (tmp, log)
}

fn old_segments(config: LogConfig) -> (tempfile::TempDir, PartitionLog) {
    let segments: Vec<Vec<u8>> = (0..3)
        .map(|i| batch_of(1_000 + i, &[keyed("k", Some("v"))]))
        .collect();
    log_of_segments(config, &segments)
}

#[test]
fn retention_deletes_nothing_when_the_policy_is_compact_only() {
    let (_tmp, log) = old_segments(LogConfig {
        retention_ms: Some(1),
        retention_bytes: Some(0),
        cleanup_policy: CleanupPolicy::Compact,
        ..config()
    });
    assert_eq!(log.enforce_retention(NOW).unwrap(), 0);
    assert_eq!(log.segment_count(), 4);
    assert_eq!(log.log_start_offset(), 0);
}

#[test]
fn retention_applies_when_the_policy_is_compact_and_delete() {
    let (_tmp, log) = old_segments(LogConfig {
        retention_ms: Some(1),
        cleanup_policy: CleanupPolicy::CompactDelete,
        ..config()
    });
    assert_eq!(log.enforce_retention(NOW).unwrap(), 3);
    assert_eq!(log.log_start_offset(), 3);
}

#[test]
fn the_default_policy_is_delete_with_kafkas_compaction_defaults() {
    let c = LogConfig::default();
    assert_eq!(c.cleanup_policy, CleanupPolicy::Delete);
    assert!(c.cleanup_policy.deletes() && !c.cleanup_policy.compacts());
    assert!(CleanupPolicy::Compact.compacts() && !CleanupPolicy::Compact.deletes());
    assert!(CleanupPolicy::CompactDelete.compacts() && CleanupPolicy::CompactDelete.deletes());
    assert_eq!(c.min_cleanable_dirty_ratio, 0.5);
    assert_eq!(c.min_compaction_lag_ms, 0);
    assert_eq!(c.max_compaction_lag_ms, i64::MAX);
    assert_eq!(c.delete_retention_ms, 86_400_000);
}

fn compacted() -> LogConfig {
    LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        ..config()
    }
}

const KEYLESS: &str = "Compacted topic cannot accept message without key in topic partition p0.";

#[test]
fn keyless_records_are_refused_on_a_compacted_topic_with_one_record_error_each() {
    let (_tmp, log) = open_log(compacted());
    let recs = [
        keyed("a", Some("1")),
        Rec::value(b"no key"),
        keyed("b", None),
        Rec::value(b"no key either"),
    ];
    let mut batches = vec![batch_of(NOW, &recs)];
    for codec in ALL {
        batches.push(compressed_batch(codec, NOW, &recs));
    }
    for b in batches {
        match log.append(bm(&[&b]), NOW) {
            Err(AppendError::InvalidRecord {
                message,
                record_errors,
            }) => {
                assert!(message.contains(KEYLESS), "{message}");
                assert_eq!(
                    record_errors,
                    vec![
                        RecordError {
                            batch_index: 1,
                            message: KEYLESS.to_string()
                        },
                        RecordError {
                            batch_index: 3,
                            message: KEYLESS.to_string()
                        },
                    ]
                );
            }
            other => panic!("expected INVALID_RECORD, got {other:?}"),
        }
    }
    assert_eq!(log.log_end_offset(), 0, "nothing was written");
    // Keyed records, tombstones among them, are accepted.
    let ok = [keyed("a", Some("1")), keyed("b", None)];
    log.append(bm(&[&batch_of(NOW, &ok)]), NOW).unwrap();
    for codec in ALL {
        log.append(bm(&[&compressed_batch(codec, NOW, &ok)]), NOW)
            .unwrap();
    }
    assert_eq!(log.log_end_offset(), 12);
}

#[test]
fn keyless_records_are_accepted_when_the_policy_does_not_compact() {
    let (_tmp, log) = open_log(config());
    log.append(bm(&[&batch(NOW, &[b"no key"])]), NOW).unwrap();
    assert_eq!(log.log_end_offset(), 1);
}

#[test]
fn transaction_markers_are_written_to_a_compacted_topic() {
    let (_tmp, log) = open_log(compacted());
    let mut txn = batch_of(NOW, &[keyed("a", Some("1"))]);
    set_producer(&mut txn, 7, 0, 0, true);
    log.append(bm(&[&txn]), NOW).unwrap();
    let marker = TxnMarker {
        producer_id: 7,
        epoch: 0,
        commit: true,
        coordinator_epoch: 0,
    };
    assert!(log.write_txn_marker(marker, NOW).unwrap().is_some());
    assert_eq!(log.log_end_offset(), 2);
}

/// Sets a batch's producer id, epoch, base sequence and transactional bit (CRC fixed).
pub fn set_producer(b: &mut [u8], producer_id: i64, epoch: i16, base_sequence: i32, txn: bool) {
    b[43..51].copy_from_slice(&producer_id.to_be_bytes());
    b[51..53].copy_from_slice(&epoch.to_be_bytes());
    b[53..57].copy_from_slice(&base_sequence.to_be_bytes());
    let mut attributes = i16::from_be_bytes([b[21], b[22]]);
    if txn {
        attributes |= 0x10;
    }
    b[21..23].copy_from_slice(&attributes.to_be_bytes());
    fix_crc(b);
}
