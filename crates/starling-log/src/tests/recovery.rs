//! Reopening, torn tails, corruption and index rebuilds.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

use super::support::*;
use crate::{LogConfig, LogError, PartitionLog};

fn reopen(dir: &Path, config: LogConfig) -> PartitionLog {
    PartitionLog::open(dir, config, NOW).unwrap()
}

/// Appends `n` batches of 2 records; returns the byte length of one batch.
fn fill(log: &PartitionLog, n: usize) -> usize {
    let mut len = 0;
    for i in 0..n {
        let vals = values(&format!("batch{i:03}"), 2);
        let b = batch(NOW + i as i64, &refs(&vals));
        len = b.len();
        log.append(bm(&[&b]), NOW).unwrap();
    }
    len
}

fn flip_byte(path: &Path, pos: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[pos as usize] ^= 0xff;
    fs::write(path, bytes).unwrap();
}

fn expect_corruption(dir: &Path, config: LogConfig, want_file: &Path, want_pos: u64) -> String {
    let err = match PartitionLog::open(dir, config, NOW) {
        Err(e) => e,
        Ok(_) => panic!("open must fail on corruption"),
    };
    match &err {
        LogError::Corruption { file, position, .. } => {
            assert_eq!(file, want_file);
            assert_eq!(*position, want_pos);
        }
        other => panic!("unexpected {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains(&want_file.display().to_string()), "{text}");
    assert!(text.contains(&format!("position {want_pos}")), "{text}");
    text
}

#[test]
fn reopen_after_close_returns_identical_data_and_offsets() {
    let cfg = LogConfig {
        segment_bytes: 500,
        index_interval_bytes: 100,
        ..config()
    };
    let (_tmp, log) = open_log(cfg.clone());
    fill(&log, 20);
    let before = read_all(&log);
    let (start, end, segs, size) = (
        log.log_start_offset(),
        log.log_end_offset(),
        log.segment_count(),
        log.size_bytes(),
    );
    let max_ts = log.max_timestamp().unwrap();
    let by_ts = log.offset_for_timestamp(NOW + 7).unwrap();
    assert!(segs > 3);
    log.close().unwrap();
    let dir = log.dir().to_path_buf();
    drop(log);

    let log = reopen(&dir, cfg);
    assert_eq!(read_all(&log), before);
    assert_eq!(
        (
            log.log_start_offset(),
            log.log_end_offset(),
            log.segment_count(),
            log.size_bytes()
        ),
        (start, end, segs, size)
    );
    assert_eq!(log.max_timestamp().unwrap(), max_ts);
    assert_eq!(log.offset_for_timestamp(NOW + 7).unwrap(), by_ts);
    for offset in 0..end {
        let got = decode(&log.read(offset, 1, true).unwrap().records);
        assert!(got.iter().any(|d| d.offset == offset));
    }
    let info = log.append(bm(&[&batch(NOW, &[b"next"])]), NOW).unwrap();
    assert_eq!(info.base_offset, end);
}

#[test]
fn reopen_without_close_keeps_every_acknowledged_append() {
    let (_tmp, log) = open_log(LogConfig {
        segment_bytes: 400,
        ..config()
    });
    fill(&log, 9);
    let before = read_all(&log);
    let dir = log.dir().to_path_buf();
    drop(log); // like kill -9: no close, no checkpoint at the end
    let log = reopen(&dir, config());
    assert_eq!(read_all(&log), before);
    assert_eq!(log.log_end_offset(), 18);
}

#[test]
fn torn_tail_cut_mid_batch_is_truncated_and_appends_continue() {
    let (_tmp, log) = open_log(config());
    let len = fill(&log, 3);
    let dir = log.dir().to_path_buf();
    drop(log);
    let file = &log_files(&dir)[0];
    for cut in [2 * len as u64 + 70, 2 * len as u64 + 20] {
        // Append a copy of the third batch, then cut it short.
        let whole = fs::read(file).unwrap();
        let mut bytes = whole[..2 * len].to_vec();
        bytes.extend_from_slice(&whole[2 * len..]);
        bytes.extend_from_slice(&whole[2 * len..]);
        bytes.truncate((cut + len as u64) as usize);
        fs::write(file, &bytes).unwrap();
        let log = reopen(&dir, config());
        assert_eq!(
            fs::metadata(file).unwrap().len(),
            3 * len as u64,
            "cut at {cut}"
        );
        assert_eq!(log.log_end_offset(), 6);
        drop(log);
    }
    let log = reopen(&dir, config());
    let info = log
        .append(bm(&[&batch(NOW, &[b"after repair"])]), NOW)
        .unwrap();
    assert_eq!(info.base_offset, 6);
    let all = decode(&read_all(&log));
    assert_eq!(all.len(), 7);
    assert_eq!(all[6].value, b"after repair");
}

#[test]
fn partial_batch_at_the_end_is_truncated() {
    let (_tmp, log) = open_log(config());
    let len = fill(&log, 2);
    let dir = log.dir().to_path_buf();
    drop(log);
    let file = &log_files(&dir)[0];
    let bytes = fs::read(file).unwrap();
    fs::write(file, &bytes[..bytes.len() - 5]).unwrap();
    let log = reopen(&dir, config());
    assert_eq!(log.log_end_offset(), 2);
    assert_eq!(fs::metadata(file).unwrap().len(), len as u64);
    assert_eq!(
        log.append(bm(&[&batch(NOW, &[b"x"])]), NOW)
            .unwrap()
            .base_offset,
        2
    );
}

#[test]
fn zero_filled_tail_is_truncated() {
    let (_tmp, log) = open_log(config());
    let len = fill(&log, 2);
    let dir = log.dir().to_path_buf();
    drop(log);
    let file = &log_files(&dir)[0];
    OpenOptions::new()
        .append(true)
        .open(file)
        .unwrap()
        .write_all(&[0u8; 4096])
        .unwrap();
    let log = reopen(&dir, config());
    assert_eq!(fs::metadata(file).unwrap().len(), 2 * len as u64);
    assert_eq!(log.log_end_offset(), 4);
    assert_eq!(
        log.append(bm(&[&batch(NOW, &[b"x"])]), NOW)
            .unwrap()
            .base_offset,
        4
    );
    assert_eq!(decode(&read_all(&log)).len(), 5);
}

#[test]
fn flipped_byte_in_a_middle_batch_of_the_last_segment_is_corruption() {
    let (_tmp, log) = open_log(config());
    let len = fill(&log, 3) as u64;
    let dir = log.dir().to_path_buf();
    drop(log);
    let file = log_files(&dir)[0].clone();
    flip_byte(&file, len + 40); // inside the second batch's CRC-covered bytes
    let text = expect_corruption(&dir, config(), &file, len);
    assert!(text.contains("crc"), "{text}");
    assert_eq!(
        fs::metadata(&file).unwrap().len(),
        3 * len,
        "nothing truncated"
    );
}

#[test]
fn flipped_length_byte_in_a_middle_batch_is_corruption() {
    let (_tmp, log) = open_log(config());
    let len = fill(&log, 3) as u64;
    let dir = log.dir().to_path_buf();
    drop(log);
    let file = log_files(&dir)[0].clone();
    flip_byte(&file, len + 9); // the second batch's length field
    expect_corruption(&dir, config(), &file, len);
}

#[test]
fn flipped_byte_in_a_sealed_segment_is_corruption() {
    let cfg = LogConfig {
        segment_bytes: 300,
        ..config()
    };
    let (_tmp, log) = open_log(cfg.clone());
    let len = fill(&log, 7) as u64;
    let dir = log.dir().to_path_buf();
    assert_eq!(log.segment_count(), 3, "three batches per segment");
    drop(log);
    let file = log_files(&dir)[1].clone();
    flip_byte(&file, len + 61); // the middle batch of a sealed segment
                                // Below the checkpoint, sealed segments are trusted and not rescanned ...
    let log = reopen(&dir, cfg.clone());
    drop(log);
    // ... but without a checkpoint every segment is scanned, and the damage is found.
    fs::remove_file(dir.join("recovery-point")).unwrap();
    let text = expect_corruption(&dir, cfg, &file, len);
    assert!(text.contains("crc"), "{text}");
}

#[test]
fn torn_sealed_segment_is_corruption_not_truncated() {
    let cfg = LogConfig {
        segment_bytes: 300,
        ..config()
    };
    let (_tmp, log) = open_log(cfg.clone());
    let len = fill(&log, 7) as u64;
    let dir = log.dir().to_path_buf();
    drop(log);
    fs::remove_file(dir.join("recovery-point")).unwrap();
    let file = log_files(&dir)[0].clone();
    assert_eq!(fs::metadata(&file).unwrap().len(), 3 * len);
    OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(3 * len - 3)
        .unwrap();
    let text = expect_corruption(&dir, cfg, &file, 2 * len);
    assert!(text.contains("partial"), "{text}");
}

#[test]
fn offset_gap_between_batches_is_corruption() {
    let (_tmp, log) = open_log(config());
    let len = fill(&log, 3) as u64;
    let dir = log.dir().to_path_buf();
    drop(log);
    let file = log_files(&dir)[0].clone();
    let mut bytes = fs::read(&file).unwrap();
    bytes[len as usize..len as usize + 8].copy_from_slice(&9i64.to_be_bytes()); // not CRC-covered
    fs::write(&file, bytes).unwrap();
    let text = expect_corruption(&dir, config(), &file, len);
    assert!(text.contains("offset 2 was expected"), "{text}");
}

#[test]
fn index_files_are_rebuilt_when_missing_or_inconsistent() {
    let cfg = LogConfig {
        segment_bytes: 1_000,
        index_interval_bytes: 100,
        ..config()
    };
    let (_tmp, log) = open_log(cfg.clone());
    fill(&log, 12);
    log.close().unwrap();
    let before = read_all(&log);
    let dir = log.dir().to_path_buf();
    drop(log);
    let index = files_with_ext(&dir, "index")[0].clone();
    let timeindex = files_with_ext(&dir, "timeindex")[0].clone();
    let good_index = fs::read(&index).unwrap();
    let good_timeindex = fs::read(&timeindex).unwrap();
    assert!(!good_index.is_empty() && !good_timeindex.is_empty());

    fs::remove_file(&index).unwrap();
    let log = reopen(&dir, cfg.clone());
    assert_eq!(fs::read(&index).unwrap(), good_index, "rebuilt identically");
    assert_eq!(read_all(&log), before);
    drop(log);

    fs::write(&index, [0xffu8; 13]).unwrap();
    fs::write(&timeindex, [1u8; 24]).unwrap();
    let log = reopen(&dir, cfg);
    assert_eq!(fs::read(&index).unwrap(), good_index);
    assert_eq!(fs::read(&timeindex).unwrap(), good_timeindex);
    for offset in 0..log.log_end_offset() {
        assert!(decode(&log.read(offset, 1, true).unwrap().records)
            .iter()
            .any(|d| d.offset == offset));
    }
}

#[test]
fn stray_files_are_handled_on_open() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a/b/topic-0");
    let log = reopen(&dir, config());
    assert_eq!(log.segment_count(), 1);
    fill(&log, 1);
    drop(log);
    fs::write(dir.join("00000000000000000077.index"), b"orphan").unwrap();
    fs::write(dir.join("recovery-point.tmp"), b"half").unwrap();
    fs::write(dir.join("notes.txt"), b"left alone").unwrap();
    fs::write(dir.join("recovery-point"), b"garbage").unwrap();
    let log = reopen(&dir, config());
    assert_eq!(log.log_end_offset(), 2);
    assert!(!dir.join("00000000000000000077.index").exists());
    assert!(!dir.join("recovery-point.tmp").exists());
    assert!(dir.join("notes.txt").exists());
}

#[test]
fn zeroed_page_in_the_middle_of_the_last_segment_is_corruption() {
    let (_tmp, log) = open_log(config());
    let len = fill(&log, 6) as u64;
    let dir = log.dir().to_path_buf();
    drop(log);
    let file = log_files(&dir)[0].clone();
    let mut bytes = fs::read(&file).unwrap();
    bytes[len as usize..2 * len as usize].fill(0);
    fs::write(&file, bytes).unwrap();
    expect_corruption(&dir, config(), &file, len);
}

#[test]
fn torn_tail_whose_payload_embeds_a_batch_is_still_truncated() {
    let (_tmp, log) = open_log(config());
    let len = fill(&log, 2) as u64;
    // A record value that is itself a valid batch (base offset 0, as producers send).
    let mut inner = batch(NOW, &[b"embedded"]);
    inner[..8].fill(0);
    log.append(bm(&[&batch(NOW, &[&inner])]), NOW).unwrap();
    let dir = log.dir().to_path_buf();
    drop(log);
    let file = log_files(&dir)[0].clone();
    let size = fs::metadata(&file).unwrap().len();
    // Cut only the final byte (the record's header count): the embedded batch stays whole.
    OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(size - 1)
        .unwrap();
    let log = reopen(&dir, config());
    assert_eq!(log.log_end_offset(), 4);
    assert_eq!(fs::metadata(&file).unwrap().len(), 2 * len);
}
