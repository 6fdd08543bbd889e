//! Producer-state snapshots: written at each roll and at close, at most two kept; opening reads
//! only the batch headers after the newest one; a producer whose batches retention deleted is
//! still known after a restart; snapshots past the recovered log end or damaged are deleted and
//! the state comes from an older one or from the batches.

use std::fs;
use std::path::{Path, PathBuf};

use super::idempotence::{append, produced};
use super::support::*;
use crate::producer_state::{ProducerBatch, ProducerError, ProducerStates};
use crate::{AppendError, LogConfig, PartitionLog, ProducerStateLoad};

/// A broker time by which `segment.ms` has passed for a segment first written at `NOW`.
const LATER: i64 = NOW + 8 * 24 * 3600 * 1000;

fn snapshot_file(dir: &Path, offset: i64) -> PathBuf {
    dir.join(format!("{offset:020}.snapshot"))
}

/// The offsets of the snapshot files in `dir`.
fn snapshots(dir: &Path) -> Vec<i64> {
    files_with_ext(dir, "snapshot")
        .iter()
        .map(|p| p.file_stem().unwrap().to_str().unwrap().parse().unwrap())
        .collect()
}

/// Rolls the active segment (which must hold a batch).
fn roll(log: &PartitionLog) {
    assert!(log.roll_if_due(LATER).unwrap());
}

fn load(snapshot_offset: Option<i64>, scanned_from: i64, headers_read: u64) -> ProducerStateLoad {
    ProducerStateLoad {
        snapshot_offset,
        scanned_from,
        headers_read,
    }
}

/// Asserts that a retry of producer `pid`'s batch at sequence `seq` of `n` records is answered
/// with offsets `first..` and writes nothing.
fn assert_duplicate(log: &PartitionLog, pid: i64, seq: i32, n: usize, first: i64) {
    let end = log.log_end_offset();
    let retry = append(log, &produced(pid, 0, seq, n)).unwrap();
    assert_eq!(
        (retry.base_offset, retry.last_offset, retry.record_count),
        (first, first + n as i64 - 1, 0),
        "retry of producer {pid} sequence {seq}"
    );
    assert_eq!(log.log_end_offset(), end);
}

fn assert_out_of_order(log: &PartitionLog, pid: i64, seq: i32, expected: i32) {
    match append(log, &produced(pid, 0, seq, 1)) {
        Err(AppendError::Producer(ProducerError::OutOfOrder { expected: e, .. })) => {
            assert_eq!(e, expected, "producer {pid}")
        }
        other => panic!("producer {pid} sequence {seq}: expected OutOfOrder, got {other:?}"),
    }
}

#[test]
fn a_retry_after_a_kill_is_deduplicated_from_the_snapshot_and_the_batches_after_it() {
    let (_tmp, log) = open_log(config());
    // Seven batches of two records; the roll after the fourth snapshots the state at 8.
    for i in 0..4 {
        append(&log, &produced(7, 0, i * 2, 2)).unwrap();
    }
    roll(&log);
    for i in 4..7 {
        append(&log, &produced(7, 0, i * 2, 2)).unwrap();
    }
    let dir = log.dir().to_path_buf();
    drop(log); // kill -9: no snapshot at the end

    let log = PartitionLog::open(&dir, config(), NOW).unwrap();
    // Only the three batches after the snapshot were read.
    assert_eq!(log.producer_state_load(), load(Some(8), 8, 3));
    // The oldest batch remembered (offsets 4..5) came from the snapshot, the newest from the
    // batches after it.
    assert_duplicate(&log, 7, 4, 2, 4);
    assert_duplicate(&log, 7, 12, 2, 12);
    assert_out_of_order(&log, 7, 20, 14);
    assert!(
        append(&log, &produced(7, 0, 2, 2)).is_err(),
        "older than the last five batches"
    );

    // After a clean close not a single batch header is read.
    log.close().unwrap();
    drop(log);
    let log = PartitionLog::open(&dir, config(), NOW).unwrap();
    assert_eq!(log.producer_state_load(), load(Some(14), 14, 0));
    assert_duplicate(&log, 7, 12, 2, 12);
    assert_out_of_order(&log, 7, 20, 14);
}

#[test]
fn without_a_snapshot_open_reads_every_batch_header() {
    let (_tmp, log) = open_log(config());
    for i in 0..3 {
        append(&log, &produced(7, 0, i, 1)).unwrap();
        roll(&log);
    }
    append(&log, &batch(NOW, &[b"plain"])).unwrap();
    let dir = log.dir().to_path_buf();
    drop(log);
    for offset in snapshots(&dir) {
        fs::remove_file(snapshot_file(&dir, offset)).unwrap();
    }
    let log = PartitionLog::open(&dir, config(), NOW).unwrap();
    assert_eq!(log.producer_state_load(), load(None, 0, 4));
    assert_duplicate(&log, 7, 2, 1, 2);
}

/// Producer 7's whole history (offsets 0..6) in the first segment, producer 8's batch (6) in
/// the second, a plain batch (7) in the active third; then retention deletes the first two.
fn producers_outlived_by_their_batches(
    config: &LogConfig,
    before_retention: impl Fn(&Path),
) -> (tempfile::TempDir, PathBuf) {
    let (tmp, log) = open_log(config.clone());
    append(&log, &produced(7, 0, 0, 2)).unwrap();
    append(&log, &produced(7, 0, 2, 2)).unwrap();
    append(&log, &produced(7, 0, 4, 2)).unwrap();
    roll(&log);
    append(&log, &produced(8, 0, 0, 1)).unwrap();
    roll(&log);
    append(&log, &batch(NOW, &[b"plain"])).unwrap();
    let dir = log.dir().to_path_buf();
    drop(log);
    before_retention(&dir);
    let log = PartitionLog::open(&dir, config.clone(), NOW).unwrap();
    assert_eq!(log.enforce_retention(LATER).unwrap(), 2);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (7, 8));
    assert_eq!(log.segment_count(), 1);
    drop(log); // kill -9
    (tmp, dir)
}

fn retention() -> LogConfig {
    LogConfig {
        retention_ms: Some(60_000),
        ..config()
    }
}

/// What a producer whose batches retention deleted must still get after a restart.
fn assert_remembered_after_retention(log: &PartitionLog) {
    assert_eq!(log.producer_count(), 2);
    // Its last batch's retry gets the original offsets, below the log start.
    assert_duplicate(log, 7, 4, 2, 4);
    assert_duplicate(log, 8, 0, 1, 6);
    assert_out_of_order(log, 7, 9, 6);
    assert_out_of_order(log, 8, 5, 1);
    // And it goes on where it left off.
    assert_eq!(append(log, &produced(7, 0, 6, 1)).unwrap().base_offset, 8);
}

#[test]
fn a_producer_whose_batches_retention_deleted_is_still_known_after_a_restart() {
    let (_tmp, dir) = producers_outlived_by_their_batches(&retention(), |_| {});
    let log = PartitionLog::open(&dir, retention(), NOW).unwrap();
    // The snapshot of the last roll carries both producers; only the plain batch is read.
    assert_eq!(log.producer_state_load(), load(Some(7), 7, 1));
    assert_remembered_after_retention(&log);
    log.close().unwrap();
    drop(log);
    let log = PartitionLog::open(&dir, retention(), NOW).unwrap();
    assert_eq!(log.producer_state_load(), load(Some(9), 9, 0));
    assert_duplicate(&log, 7, 6, 1, 8);
    assert_duplicate(&log, 8, 0, 1, 6);
}

#[test]
fn retention_snapshots_the_producers_first_when_no_snapshot_covers_the_segments_it_deletes() {
    // As for a log written before snapshots existed: none in the directory.
    let remove_snapshots = |dir: &Path| {
        for offset in snapshots(dir) {
            fs::remove_file(snapshot_file(dir, offset)).unwrap();
        }
    };
    let (_tmp, dir) = producers_outlived_by_their_batches(&retention(), remove_snapshots);
    assert_eq!(snapshots(&dir), [8]);
    let log = PartitionLog::open(&dir, retention(), NOW).unwrap();
    assert_eq!(log.producer_state_load(), load(Some(8), 8, 0));
    assert_remembered_after_retention(&log);
}

#[test]
fn a_snapshot_past_the_log_end_is_deleted_at_open() {
    let (_tmp, log) = open_log(config());
    append(&log, &produced(7, 0, 0, 2)).unwrap();
    roll(&log);
    append(&log, &produced(7, 0, 2, 2)).unwrap();
    log.close().unwrap();
    let dir = log.dir().to_path_buf();
    drop(log);
    assert_eq!(snapshots(&dir), [2, 4]);
    // A well-formed snapshot at 9, beyond the log end, naming a producer the log never saw.
    let mut stranger = ProducerStates::new();
    stranger.record(&ProducerBatch {
        producer_id: 99,
        epoch: 0,
        base_sequence: 0,
        last_offset_delta: 0,
        first_offset: 8,
        max_timestamp: NOW,
        is_transactional: false,
    });
    fs::write(snapshot_file(&dir, 9), stranger.encode(9)).unwrap();

    let log = PartitionLog::open(&dir, config(), NOW).unwrap();
    assert_eq!(log.producer_state_load(), load(Some(4), 4, 0));
    assert_eq!(snapshots(&dir), [2, 4]);
    assert_eq!(log.producer_count(), 1);
    assert_duplicate(&log, 7, 2, 2, 2);
}

#[test]
fn a_snapshot_past_a_torn_tail_is_deleted_and_the_cut_batch_is_written_again() {
    let (_tmp, log) = open_log(config());
    for i in 0..4 {
        append(&log, &produced(7, 0, i * 2, 2)).unwrap();
    }
    log.close().unwrap();
    let dir = log.dir().to_path_buf();
    drop(log);
    assert_eq!(snapshots(&dir), [8]);
    // The last batch (offsets 6..7) torn, as a crash during its write leaves it; with no
    // checkpoint, start-up takes it for a torn write and cuts it off.
    fs::remove_file(dir.join("recovery-point")).unwrap();
    let file = log_files(&dir)[0].clone();
    let len = fs::metadata(&file).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(len - 10)
        .unwrap();

    let log = PartitionLog::open(&dir, config(), NOW).unwrap();
    assert_eq!(log.log_end_offset(), 6);
    assert!(snapshots(&dir).is_empty(), "the snapshot at 8 is stale");
    assert_eq!(log.producer_state_load(), load(None, 0, 3));
    // The cut batch is not in the log, so its resend is written, at the offsets it had.
    let resent = append(&log, &produced(7, 0, 6, 2)).unwrap();
    assert_eq!((resent.base_offset, resent.record_count), (6, 2));
    assert_duplicate(&log, 7, 4, 2, 4);
}

#[test]
fn a_damaged_snapshot_is_deleted_and_an_older_one_or_the_batches_are_used() {
    let (_tmp, log) = open_log(config());
    append(&log, &produced(7, 0, 0, 2)).unwrap();
    roll(&log);
    append(&log, &produced(7, 0, 2, 2)).unwrap();
    roll(&log);
    append(&log, &produced(7, 0, 4, 2)).unwrap();
    let dir = log.dir().to_path_buf();
    drop(log);
    assert_eq!(snapshots(&dir), [2, 4]);

    // A flipped bit in the newest: the one before it is used, and the batches after that.
    let mut bytes = fs::read(snapshot_file(&dir, 4)).unwrap();
    bytes[20] ^= 0x10;
    fs::write(snapshot_file(&dir, 4), &bytes).unwrap();
    let log = PartitionLog::open(&dir, config(), NOW).unwrap();
    assert_eq!(log.producer_state_load(), load(Some(2), 2, 2));
    assert_eq!(snapshots(&dir), [2]);
    assert_duplicate(&log, 7, 0, 2, 0);
    assert_duplicate(&log, 7, 4, 2, 4);
    drop(log);

    // A format this build does not know (CRC intact): every batch is read instead.
    let mut bytes = fs::read(snapshot_file(&dir, 2)).unwrap();
    bytes[4] = 99;
    let body = bytes.len() - 4;
    let crc = crc32c::crc32c(&bytes[..body]);
    bytes[body..].copy_from_slice(&crc.to_be_bytes());
    fs::write(snapshot_file(&dir, 2), &bytes).unwrap();
    let log = PartitionLog::open(&dir, config(), NOW).unwrap();
    assert_eq!(log.producer_state_load(), load(None, 0, 3));
    assert!(snapshots(&dir).is_empty());
    assert_duplicate(&log, 7, 0, 2, 0);
    assert_duplicate(&log, 7, 4, 2, 4);

    // A snapshot cut short reads as damaged too.
    log.close().unwrap();
    drop(log);
    let bytes = fs::read(snapshot_file(&dir, 6)).unwrap();
    fs::write(snapshot_file(&dir, 6), &bytes[..bytes.len() / 2]).unwrap();
    let log = PartitionLog::open(&dir, config(), NOW).unwrap();
    assert_eq!(log.producer_state_load(), load(None, 0, 3));
    assert!(snapshots(&dir).is_empty());
    assert_duplicate(&log, 7, 4, 2, 4);
}

#[test]
fn only_the_newest_two_snapshots_are_kept() {
    let (_tmp, log) = open_log(config());
    for i in 0..5 {
        append(&log, &batch(NOW, &[b"x"])).unwrap();
        roll(&log);
        assert_eq!(
            snapshots(log.dir()),
            (1.max(i)..=i + 1).collect::<Vec<i64>>(),
            "after roll {i}"
        );
    }
    append(&log, &batch(NOW, &[b"x"])).unwrap();
    log.close().unwrap();
    assert_eq!(snapshots(log.dir()), [5, 6]);
    // Closing again with nothing new rewrites the same one.
    log.close().unwrap();
    assert_eq!(snapshots(log.dir()), [5, 6]);
}
