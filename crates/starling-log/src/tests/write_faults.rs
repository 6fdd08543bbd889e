//! Log writer faults injected through the failpoints: a failed write, fsync, roll step or undo
//! returns `AppendError::Io` and leaves memory, readers and the file exactly as before the
//! append; the next append after the fault clears works with the right offsets.

use std::fs;
use std::io::ErrorKind;
use std::path::PathBuf;

use super::support::*;
use crate::failpoint::{self, Op};
use crate::{AppendError, LogConfig, PartitionLog};

/// Everything a reader or the broker can observe about a log, plus its files on disk.
#[derive(Debug, PartialEq)]
struct Observed {
    start: i64,
    end: i64,
    size: u64,
    segments: usize,
    records: Vec<u8>,
    max_timestamp: Option<(i64, i64)>,
    by_timestamp: Option<(i64, i64)>,
    read_at_end_is_empty: bool,
    log_files: Vec<(PathBuf, Vec<u8>)>,
}

fn observe(log: &PartitionLog) -> Observed {
    let end = log.log_end_offset();
    Observed {
        start: log.log_start_offset(),
        end,
        size: log.size_bytes(),
        segments: log.segment_count(),
        records: read_all(log),
        max_timestamp: log.max_timestamp().unwrap(),
        by_timestamp: log.offset_for_timestamp(NOW + 5).unwrap(),
        read_at_end_is_empty: log.read(end, 1 << 20, true).unwrap().records.is_empty(),
        log_files: log_files(log.dir())
            .into_iter()
            .map(|p| {
                let bytes = fs::read(&p).unwrap();
                (p, bytes)
            })
            .collect(),
    }
}

/// A log holding two appends (offsets 0..3) with timestamps NOW and NOW + 1.
fn log_with_data(config: LogConfig) -> (tempfile::TempDir, PartitionLog) {
    failpoint::reset();
    let (tmp, log) = open_log(config);
    log.append(bm(&[&batch(NOW, &[b"a", b"b"])]), NOW).unwrap();
    log.append(bm(&[&batch(NOW + 1, &[b"c"])]), NOW).unwrap();
    (tmp, log)
}

/// The batch the failing appends try to write: newer timestamps than anything stored, so a
/// leak into the indexes would show in `max_timestamp` and `offset_for_timestamp`.
fn doomed() -> Vec<u8> {
    batch(
        NOW + 10,
        &[b"never acknowledged", b"never acknowledged either"],
    )
}

fn expect_io(result: Result<crate::AppendInfo, AppendError>, kind: ErrorKind) {
    match result {
        Err(AppendError::Io(e)) => assert_eq!(e.kind(), kind, "{e}"),
        other => panic!("expected an i/o error of kind {kind:?}, got {other:?}"),
    }
}

/// After the fault: the next append gets offset 3 and reads show exactly old + new.
fn next_append_works(log: &PartitionLog) {
    let info = log.append(bm(&[&batch(NOW, &[b"next"])]), NOW).unwrap();
    assert_eq!((info.base_offset, info.last_offset), (3, 3));
    let all = decode(&read_all(log));
    let values: Vec<&[u8]> = all.iter().map(|d| d.value.as_slice()).collect();
    assert_eq!(values, [&b"a"[..], b"b", b"c", b"next"]);
    assert_eq!(
        all.iter().map(|d| d.offset).collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );
    assert_eq!(log.log_end_offset(), 4);
    assert_eq!(log.max_timestamp().unwrap(), Some((NOW + 1, 2)));
    // And it is all there after a restart.
    log.close().unwrap();
    let reopened = PartitionLog::open(log.dir(), log.config(), NOW).unwrap();
    assert_eq!(read_all(&reopened), read_all(log));
}

#[test]
fn failed_write_leaves_state_reads_and_file_unchanged_and_the_next_append_works() {
    let (_tmp, log) = log_with_data(config());
    let before = observe(&log);
    // The write lands half its bytes, then the disk is full.
    failpoint::fail_next(Op::SegmentWrite, 1, ErrorKind::StorageFull);
    expect_io(log.append(bm(&[&doomed()]), NOW), ErrorKind::StorageFull);
    assert_eq!(
        observe(&log),
        before,
        "memory, readers and file as before the append"
    );
    next_append_works(&log);
}

#[test]
fn failed_fsync_leaves_state_reads_and_file_unchanged_and_the_next_append_works() {
    let (_tmp, log) = log_with_data(LogConfig {
        flush_interval_messages: 1,
        ..config()
    });
    let before = observe(&log);
    failpoint::fail_next(Op::SegmentSync, 1, ErrorKind::Other);
    expect_io(log.append(bm(&[&doomed()]), NOW), ErrorKind::Other);
    assert_eq!(
        observe(&log),
        before,
        "the written but unsynced batch is cut off again"
    );
    next_append_works(&log);
}

#[test]
fn append_fails_while_the_bytes_of_a_failed_write_cannot_be_cut_off_and_works_once_they_are() {
    let (_tmp, log) = log_with_data(config());
    let before = observe(&log);
    failpoint::fail_next(Op::SegmentWrite, 1, ErrorKind::StorageFull);
    failpoint::fail_next(Op::SegmentTruncate, 3, ErrorKind::Other);
    expect_io(log.append(bm(&[&doomed()]), NOW), ErrorKind::StorageFull);
    // Half the batch is still in the file, but nobody sees it, and no append goes after it.
    assert!(fs::metadata(&before.log_files[0].0).unwrap().len() > before.size);
    let mut shown = observe(&log);
    shown.log_files = before.log_files.clone();
    assert_eq!(shown, before);
    expect_io(
        log.append(bm(&[&batch(NOW, &[b"next"])]), NOW),
        ErrorKind::Other,
    );
    assert!(
        log.close().is_err(),
        "close must not checkpoint over the stray bytes"
    );
    assert_eq!(log.log_end_offset(), 3);
    // The fourth try cuts the bytes off, then appends.
    next_append_works(&log);
}

#[test]
fn failed_background_flush_changes_nothing_and_later_appends_and_flushes_work() {
    let (_tmp, log) = log_with_data(LogConfig {
        flush_interval_ms: Some(1_000),
        ..config()
    });
    let before = observe(&log);
    failpoint::fail_next(Op::SegmentSync, 1, ErrorKind::Other);
    assert!(log.maybe_flush(NOW + 5_000).is_err());
    assert_eq!(observe(&log), before);
    log.maybe_flush(NOW + 5_001).unwrap();
    next_append_works(&log);
}

/// Every step of a segment roll that can fail.
const ROLL_STEPS: [Op; 7] = [
    Op::IndexWrite,
    Op::SegmentSync,
    Op::SnapshotWrite,
    Op::SegmentCreate,
    Op::DirSync,
    Op::CheckpointWrite,
    Op::Rename,
];

#[test]
fn failed_segment_roll_leaves_the_log_as_it_was_and_the_next_append_rolls() {
    for op in ROLL_STEPS {
        let (_tmp, log) = log_with_data(config());
        // The next append needs a new segment.
        log.set_config(LogConfig {
            segment_bytes: 100,
            ..config()
        });
        let before = observe(&log);
        let checkpoint_before = fs::read(log.dir().join("recovery-point")).ok();
        failpoint::fail_next(op, 1, ErrorKind::StorageFull);
        expect_io(log.append(bm(&[&doomed()]), NOW), ErrorKind::StorageFull);
        assert_eq!(observe(&log), before, "roll failing in {op:?}");
        assert!(
            !log.dir().join("00000000000000000003.log").exists(),
            "{op:?}: the new segment file is removed again"
        );
        assert_eq!(
            fs::read(log.dir().join("recovery-point")).ok(),
            checkpoint_before,
            "{op:?}"
        );
        let info = log.append(bm(&[&batch(NOW, &[b"next"])]), NOW).unwrap();
        assert_eq!(info.base_offset, 3, "{op:?}");
        assert_eq!(log.segment_count(), 2, "{op:?}: the retry rolls");
        let reopened = PartitionLog::open(log.dir(), log.config(), NOW).unwrap();
        assert_eq!(read_all(&reopened), read_all(&log), "{op:?}");
        assert_eq!(reopened.log_end_offset(), 4, "{op:?}");
    }
}

#[test]
fn append_fails_while_a_failed_roll_cannot_be_cleaned_up_and_works_once_it_is() {
    let (_tmp, log) = log_with_data(config());
    log.set_config(LogConfig {
        segment_bytes: 100,
        ..config()
    });
    let before = observe(&log);
    failpoint::fail_next(Op::CheckpointWrite, 1, ErrorKind::StorageFull);
    failpoint::fail_next(Op::Remove, 1, ErrorKind::Other);
    expect_io(log.append(bm(&[&doomed()]), NOW), ErrorKind::StorageFull);
    let stray = log.dir().join("00000000000000000003.log");
    assert!(stray.exists(), "the new segment could not be removed");
    assert_eq!(observe(&log).end, before.end);
    // While the stray segment exists nothing may be appended to the old one: a crash would
    // leave a segment file starting inside the old segment's offsets.
    failpoint::fail_next(Op::Remove, 1, ErrorKind::Other);
    expect_io(
        log.append(bm(&[&batch(NOW, &[b"next"])]), NOW),
        ErrorKind::Other,
    );
    assert!(stray.exists());
    let info = log.append(bm(&[&batch(NOW, &[b"next"])]), NOW).unwrap();
    assert_eq!(info.base_offset, 3);
    let reopened = PartitionLog::open(log.dir(), log.config(), NOW).unwrap();
    assert_eq!(reopened.log_end_offset(), 4);
    assert_eq!(read_all(&reopened), read_all(&log));
}

#[test]
fn failed_ticker_roll_leaves_the_log_as_it_was() {
    for op in ROLL_STEPS {
        let (_tmp, log) = log_with_data(config());
        let before = observe(&log);
        failpoint::fail_next(op, 1, ErrorKind::Other);
        assert!(
            log.roll_if_due(NOW + config().segment_ms + 1).is_err(),
            "{op:?}"
        );
        assert_eq!(observe(&log), before, "{op:?}");
        assert!(
            log.roll_if_due(NOW + config().segment_ms + 1).unwrap(),
            "{op:?}"
        );
        assert_eq!(log.segment_count(), 2);
        next_append_works(&log);
    }
}

#[test]
fn appends_after_a_failed_ticker_roll_survive_a_crash_and_restart() {
    for op in ROLL_STEPS {
        let cfg = LogConfig {
            segment_ms: 1_000,
            ..config()
        };
        let (_tmp, log) = log_with_data(cfg.clone());
        failpoint::fail_next(op, 1, ErrorKind::Other);
        assert!(log.roll_if_due(NOW + 2_000).is_err(), "{op:?}");
        // This append (by its clock the segment is not due to roll) goes to the old segment,
        // so no file of the failed roll may be left to claim its offsets.
        let info = log.append(bm(&[&batch(NOW, &[b"next"])]), NOW).unwrap();
        assert_eq!(info.base_offset, 3, "{op:?}");
        let dir = log.dir().to_path_buf();
        drop(log); // kill -9
        let reopened = PartitionLog::open(&dir, cfg, NOW)
            .unwrap_or_else(|e| panic!("{op:?}: reopen after the failed roll: {e}"));
        let values: Vec<Vec<u8>> = decode(&read_all(&reopened))
            .into_iter()
            .map(|d| d.value)
            .collect();
        assert_eq!(values, [&b"a"[..], b"b", b"c", b"next"], "{op:?}");
    }
}
