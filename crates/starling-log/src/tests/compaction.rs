//! Log compaction: the cleanup policy's effect on retention, keyless records refused on
//! compacted topics, and the cleaner (see `cleaner`): what a cleaning pass keeps and drops,
//! its checkpoint, its throttle, and crash safety of its segment swap.

use super::support::*;
use crate::{CleanupPolicy, LogConfig, PartitionLog};

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
