//! Start-up recovery of damaged partition directories: which damage is a torn tail (truncated
//! on open) and which is corruption of acknowledged data (open refuses, naming the file and the
//! byte position, and points at `starling log repair`).

use std::fs;
use std::path::{Path, PathBuf};

use super::support::*;
use crate::{LogConfig, LogError, PartitionLog};

/// 100 records of 1,020 bytes: a batch of about 103 KB.
fn big_batch(tag: &str) -> Vec<u8> {
    let vals: Vec<Vec<u8>> = (0..100)
        .map(|i| {
            let mut v = format!("{tag}-{i:03}-").into_bytes();
            v.resize(1_020, b'.');
            v
        })
        .collect();
    batch(NOW, &refs(&vals))
}

/// Removes `n` bytes of `path` starting at byte `at`.
pub(super) fn cut_out(path: &Path, at: usize, n: usize) {
    let mut bytes = fs::read(path).unwrap();
    bytes.drain(at..at + n);
    fs::write(path, bytes).unwrap();
}

/// Opens `dir` expecting `LogError::Corruption` in `want_file` at `want_pos`; returns the message.
pub(super) fn expect_corruption(dir: &Path, want_file: &Path, want_pos: u64) -> String {
    let err = match PartitionLog::open(dir, config(), NOW) {
        Err(e) => e,
        Ok(log) => panic!(
            "open must refuse a damaged log, but it opened with offsets {}..{}",
            log.log_start_offset(),
            log.log_end_offset()
        ),
    };
    match &err {
        LogError::Corruption { file, position, .. } => {
            assert_eq!(file, want_file, "{err}");
            assert_eq!(*position, want_pos, "{err}");
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains(&want_file.display().to_string()), "{text}");
    assert!(text.contains(&format!("position {want_pos}")), "{text}");
    assert!(text.contains("starling log repair"), "{text}");
    text
}

/// A log in `p0` holding two ~103 KB batches (offsets 0..200) in one segment, closed so that
/// the recovery point covers both.
fn two_big_batches_checkpointed() -> (tempfile::TempDir, PathBuf, PathBuf, Vec<u8>) {
    let (tmp, log) = open_log(config());
    log.append(bm(&[&big_batch("a")]), NOW).unwrap();
    log.append(bm(&[&big_batch("b")]), NOW).unwrap();
    assert_eq!(log.log_end_offset(), 200);
    log.close().unwrap();
    let dir = log.dir().to_path_buf();
    drop(log);
    let file = log_files(&dir)[0].clone();
    let original = fs::read(&file).unwrap();
    assert!(original.len() > 200_000);
    (tmp, dir, file, original)
}

#[test]
fn bytes_cut_from_checkpointed_data_refuse_open_naming_file_and_position() {
    let (_tmp, dir, file, original) = two_big_batches_checkpointed();
    cut_out(&file, 100_000, 5_000);
    let text = expect_corruption(&dir, &file, 0);
    assert!(text.contains("recovery point"), "{text}");
    assert_eq!(
        fs::read(&file).unwrap().len(),
        original.len() - 5_000,
        "nothing truncated"
    );
}

#[test]
fn checkpointed_log_cut_short_at_a_batch_boundary_refuses_open() {
    let (_tmp, dir, file, original) = two_big_batches_checkpointed();
    let first = split(&original)[0].bytes.len();
    fs::write(&file, &original[..first]).unwrap();
    let text = expect_corruption(&dir, &file, first as u64);
    assert!(text.contains("recovery point 200"), "{text}");
}

#[test]
fn damage_above_the_checkpoint_followed_by_an_intact_batch_is_corruption() {
    let (_tmp, log) = open_log(config());
    log.append(bm(&[&big_batch("a")]), NOW).unwrap();
    log.append(bm(&[&big_batch("b")]), NOW).unwrap();
    log.append(bm(&[&batch(NOW, &[b"small and intact"])]), NOW)
        .unwrap();
    let dir = log.dir().to_path_buf();
    drop(log); // no close: the recovery point stays at 0
    let file = log_files(&dir)[0].clone();
    let before = fs::read(&file).unwrap().len();
    // Cuts the end of the first batch and the start of the second; the third shifts by 5,000
    // bytes to a position no batch boundary predicts.
    cut_out(&file, 100_000, 5_000);
    let text = expect_corruption(&dir, &file, 0);
    assert!(text.contains("intact batch"), "{text}");
    assert_eq!(fs::read(&file).unwrap().len(), before - 5_000);
}

#[test]
fn damage_above_the_checkpoint_with_a_later_segment_is_corruption() {
    let cfg = LogConfig {
        segment_bytes: 150_000,
        ..config()
    };
    let (_tmp, log) = open_log(cfg.clone());
    log.append(bm(&[&big_batch("a")]), NOW).unwrap();
    log.append(bm(&[&big_batch("b")]), NOW).unwrap();
    assert_eq!(log.segment_count(), 2);
    let dir = log.dir().to_path_buf();
    drop(log);
    // Without a checkpoint the first segment is scanned; its only batch is cut short.
    fs::remove_file(dir.join("recovery-point")).unwrap();
    let file = log_files(&dir)[0].clone();
    let len = fs::metadata(&file).unwrap().len() as usize;
    cut_out(&file, len - 5_000, 5_000);
    expect_corruption(&dir, &file, 0);
}

#[test]
fn torn_tail_above_the_checkpoint_is_truncated_to_the_last_whole_batch() {
    let (_tmp, dir, file, original) = two_big_batches_checkpointed();
    let log = PartitionLog::open(&dir, config(), NOW).unwrap();
    log.append(bm(&[&big_batch("c")]), NOW).unwrap();
    drop(log); // like kill -9 after the append
    let grown = fs::read(&file).unwrap();
    // The third batch never fully reached the disk.
    fs::write(&file, &grown[..grown.len() - 5_000]).unwrap();
    let log = PartitionLog::open(&dir, config(), NOW).unwrap();
    assert_eq!(log.log_end_offset(), 200);
    assert_eq!(fs::read(&file).unwrap(), original);
    assert_eq!(read_all(&log), original);
}

/// A log of three segments (offsets 0..2, 2..4, 4..7), the first two sealed and checkpointed.
fn three_segments() -> (tempfile::TempDir, PathBuf, Vec<PathBuf>) {
    let two = || batch(NOW, &[b"one", b"two"]);
    closed_log_of_segments(&[
        vec![two()],
        vec![two()],
        vec![two(), batch(NOW, &[b"last"])],
    ])
}

#[test]
fn missing_middle_segment_below_the_checkpoint_is_corruption_naming_both_files() {
    let (_tmp, dir, files) = three_segments();
    let first_len = fs::metadata(&files[0]).unwrap().len();
    fs::remove_file(&files[1]).unwrap();
    let text = expect_corruption(&dir, &files[0], first_len);
    let next_name = files[2].file_name().unwrap().to_string_lossy().into_owned();
    assert!(text.contains(&next_name), "{text}");
    assert!(
        text.contains("offset 2") && text.contains("offset 4"),
        "{text}"
    );
}

#[test]
fn missing_middle_segment_above_the_checkpoint_is_corruption() {
    let (_tmp, dir, files) = three_segments();
    fs::remove_file(dir.join("recovery-point")).unwrap();
    let first_len = fs::metadata(&files[0]).unwrap().len();
    fs::remove_file(&files[1]).unwrap();
    expect_corruption(&dir, &files[0], first_len);
}

#[test]
fn overlapping_segments_below_the_checkpoint_are_corruption() {
    let (_tmp, dir, files) = three_segments();
    // The middle segment (offsets 2..4) renamed as if it started at offset 1.
    let renamed = dir.join("00000000000000000001.log");
    fs::rename(&files[1], &renamed).unwrap();
    let _ = fs::remove_file(files[1].with_extension("index"));
    let _ = fs::remove_file(files[1].with_extension("timeindex"));
    let first_len = fs::metadata(&files[0]).unwrap().len();
    let text = expect_corruption(&dir, &files[0], first_len);
    assert!(text.contains("00000000000000000001.log"), "{text}");
}

#[test]
fn missing_last_segment_below_the_checkpoint_is_corruption() {
    let (_tmp, dir, files) = three_segments();
    let log = PartitionLog::open(&dir, config(), NOW).unwrap();
    log.close().unwrap(); // recovery point 7, the log end
    drop(log);
    fs::remove_file(&files[2]).unwrap();
    let len = fs::metadata(&files[1]).unwrap().len();
    let text = expect_corruption(&dir, &files[1], len);
    assert!(text.contains("recovery point 7"), "{text}");
}
