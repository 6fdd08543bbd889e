//! `repair_partition`: truncating at the first damage, reporting exactly what is removed, and a
//! log that opens afterwards with exactly the batches before the damage.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::startup_damage::{cut_out, expect_corruption};
use super::support::*;
use crate::{repair_partition, IntactBatches, LogConfig, PartitionLog};

/// Every file of a directory with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let bytes = fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

/// 100 records of 1,020 bytes (about 103 KB).
fn big(tag: &str) -> Vec<u8> {
    let vals: Vec<Vec<u8>> = (0..100)
        .map(|i| {
            let mut v = format!("{tag}-{i:03}-").into_bytes();
            v.resize(1_020, b'.');
            v
        })
        .collect();
    batch(NOW, &refs(&vals))
}

#[test]
fn repair_truncates_at_the_cut_reports_what_it_removed_and_the_log_opens_with_what_came_before() {
    let (_tmp, log) = open_log(config());
    let small = batch(NOW, &[b"kept-0", b"kept-1"]);
    log.append(bm(&[&small]), NOW).unwrap(); // offsets 0..2
    log.append(bm(&[&small]), NOW).unwrap(); // 2..4
    log.append(bm(&[&big("a")]), NOW).unwrap(); // 4..104
    log.append(bm(&[&big("b")]), NOW).unwrap(); // 104..204
    log.append(bm(&[&batch(NOW, &[b"tail"])]), NOW).unwrap(); // 204
    let kept = read_all(&log)[..2 * small.len()].to_vec();
    log.close().unwrap();
    let dir = log.dir().to_path_buf();
    drop(log);
    let file = log_files(&dir)[0].clone();
    let damage_at = 2 * small.len() as u64;
    cut_out(&file, damage_at as usize + 100_000, 5_000);
    let cut_len = fs::metadata(&file).unwrap().len();
    expect_corruption(&dir, &file, damage_at);

    let before = snapshot(&dir);
    let dry = repair_partition(&dir, true).unwrap();
    assert_eq!(snapshot(&dir), before, "a dry run changes nothing");
    assert!(dry.dry_run);
    let plan = dry.repair.clone().expect("damage found");
    assert_eq!(plan.file, file);
    assert_eq!(plan.position, damage_at);
    assert!(
        plan.reason.contains("recovery point 205"),
        "{}",
        plan.reason
    );
    assert_eq!(plan.log_end_offset, 4);
    assert_eq!(plan.recovery_point, (205, 4));
    assert_eq!(plan.highest_lost_offset, Some(204));
    assert_eq!(plan.dropped.len(), 1);
    let dropped = &plan.dropped[0];
    assert_eq!(dropped.file, file);
    assert_eq!(dropped.bytes, damage_at..cut_len);
    assert!(!dropped.whole_file);
    // Both big batches are damaged by the cut; the last one is intact, only shifted.
    assert_eq!(
        dropped.intact,
        IntactBatches {
            batches: 1,
            records: 1,
            offsets: Some((204, 204)),
        }
    );
    // The producer snapshot the close wrote at 205 describes batches that go.
    assert_eq!(
        plan.deleted_files,
        vec![dir.join("00000000000000000205.snapshot")]
    );

    let done = repair_partition(&dir, false).unwrap();
    assert!(!done.dry_run);
    assert_eq!(done.repair, Some(plan));
    assert_eq!(fs::metadata(&file).unwrap().len(), damage_at);
    assert!(!dir.join("00000000000000000205.snapshot").exists());
    assert_eq!(
        fs::read_to_string(dir.join("recovery-point"))
            .unwrap()
            .trim(),
        "4"
    );

    let log = PartitionLog::open(&dir, config(), NOW).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 4));
    assert_eq!(read_all(&log), kept);
    let info = log
        .append(bm(&[&batch(NOW, &[b"after repair"])]), NOW)
        .unwrap();
    assert_eq!(info.base_offset, 4);
    drop(log);
    let again = repair_partition(&dir, false).unwrap();
    assert_eq!(again.repair, None, "nothing left to repair");
}

/// Offsets 0..2, 2..4 and 4..5 in three segments, the first two sealed.
fn three_segments() -> (tempfile::TempDir, PathBuf, Vec<PathBuf>) {
    let segment =
        |round: usize, n: usize| vec![batch(NOW, &refs(&values(&format!("r{round}"), n)))];
    closed_log_of_segments(&[segment(0, 2), segment(1, 2), segment(2, 1)])
}

#[test]
fn repair_of_a_missing_middle_segment_deletes_the_segments_after_the_gap() {
    let (_tmp, dir, files) = three_segments();
    let first = fs::read(&files[0]).unwrap();
    let last_len = fs::metadata(&files[2]).unwrap().len();
    fs::remove_file(&files[1]).unwrap();
    fs::remove_file(files[1].with_extension("index")).unwrap();
    fs::remove_file(files[1].with_extension("timeindex")).unwrap();
    expect_corruption(&dir, &files[0], first.len() as u64);

    let report = repair_partition(&dir, false).unwrap();
    let repair = report.repair.expect("damage found");
    assert_eq!(repair.file, files[0]);
    assert_eq!(repair.position, first.len() as u64);
    assert!(
        repair
            .reason
            .contains("offsets 2..4 are in no segment file"),
        "{}",
        repair.reason
    );
    assert_eq!(repair.log_end_offset, 2);
    assert_eq!(repair.highest_lost_offset, Some(4));
    assert_eq!(repair.recovery_point, (4, 2));
    assert_eq!(repair.dropped.len(), 1);
    assert_eq!(repair.dropped[0].file, files[2]);
    assert_eq!(repair.dropped[0].bytes, 0..last_len);
    assert!(repair.dropped[0].whole_file);
    assert_eq!(
        repair.dropped[0].intact,
        IntactBatches {
            batches: 1,
            records: 1,
            offsets: Some((4, 4)),
        }
    );
    assert_eq!(
        repair.deleted_files,
        vec![
            files[2].clone(),
            files[2].with_extension("index"),
            files[2].with_extension("timeindex"),
            // The producer snapshot of the second roll, past the new end; the first roll's
            // (at 2) stays.
            dir.join("00000000000000000004.snapshot"),
        ]
    );
    assert_eq!(log_files(&dir), vec![files[0].clone()]);
    assert!(!files[2].with_extension("index").exists());
    assert_eq!(
        files_with_ext(&dir, "snapshot"),
        vec![dir.join("00000000000000000002.snapshot")]
    );

    let log = PartitionLog::open(&dir, config(), NOW).unwrap();
    assert_eq!(log.log_end_offset(), 2);
    assert_eq!(read_all(&log), first);
    assert_eq!(
        log.append(bm(&[&batch(NOW, &[b"x"])]), NOW)
            .unwrap()
            .base_offset,
        2
    );
}

#[test]
fn repair_of_damage_in_a_sealed_segment_truncates_it_and_deletes_every_later_segment() {
    let (_tmp, dir, files) = three_segments();
    let first = fs::read(&files[0]).unwrap();
    let middle = fs::read(&files[1]).unwrap();
    let mut damaged = middle.clone();
    let at = damaged.len() - 3;
    damaged[at] ^= 0x40;
    fs::write(&files[1], &damaged).unwrap();
    // Below the recovery point the sealed segment is trusted on open; repair scans everything.
    fs::remove_file(dir.join("recovery-point")).unwrap();
    expect_corruption(&dir, &files[1], 0);

    let repair = repair_partition(&dir, false).unwrap().repair.unwrap();
    assert_eq!(
        (repair.file.clone(), repair.position),
        (files[1].clone(), 0)
    );
    assert!(repair.reason.contains("crc"), "{}", repair.reason);
    assert_eq!(repair.log_end_offset, 2);
    assert_eq!(repair.dropped.len(), 2);
    assert_eq!(repair.dropped[0].bytes, 0..middle.len() as u64);
    assert!(
        !repair.dropped[0].whole_file,
        "the damaged segment is truncated, not deleted"
    );
    assert_eq!(repair.dropped[0].intact.batches, 0);
    assert!(repair.dropped[1].whole_file);
    assert_eq!(repair.dropped[1].intact.offsets, Some((4, 4)));
    assert_eq!(repair.highest_lost_offset, Some(4));
    assert_eq!(fs::metadata(&files[1]).unwrap().len(), 0);
    assert!(!files[2].exists());

    let log = PartitionLog::open(&dir, config(), NOW).unwrap();
    assert_eq!((log.log_end_offset(), log.segment_count()), (2, 2));
    assert_eq!(read_all(&log), first);
    assert_eq!(
        log.append(bm(&[&batch(NOW, &[b"x"])]), NOW)
            .unwrap()
            .base_offset,
        2
    );
}

#[test]
fn repair_of_a_log_cut_short_below_the_recovery_point_lowers_it_and_removes_no_segment_bytes() {
    let (_tmp, log) = open_log(config());
    log.append(bm(&[&batch(NOW, &[b"a", b"b"])]), NOW).unwrap();
    let one = read_all(&log);
    log.append(bm(&[&batch(NOW, &[b"c"])]), NOW).unwrap();
    log.close().unwrap();
    let dir = log.dir().to_path_buf();
    drop(log);
    let file = log_files(&dir)[0].clone();
    fs::write(&file, &one).unwrap();

    let repair = repair_partition(&dir, false).unwrap().repair.unwrap();
    assert_eq!(repair.position, one.len() as u64);
    assert_eq!(repair.log_end_offset, 2);
    assert_eq!(repair.highest_lost_offset, Some(2));
    assert_eq!(repair.recovery_point, (3, 2));
    assert!(repair.dropped.is_empty());
    // Only the producer snapshot the close wrote at 3, now past the end.
    assert_eq!(
        repair.deleted_files,
        vec![dir.join("00000000000000000003.snapshot")]
    );
    let log = PartitionLog::open(&dir, config(), NOW).unwrap();
    assert_eq!(read_all(&log), one);
}

#[test]
fn repair_of_a_torn_tail_truncates_it_like_open_would() {
    let (_tmp, log) = open_log(config());
    log.append(bm(&[&batch(NOW, &[b"a"])]), NOW).unwrap();
    let dir = log.dir().to_path_buf();
    let good = read_all(&log);
    drop(log);
    let file = log_files(&dir)[0].clone();
    let mut bytes = good.clone();
    bytes.extend_from_slice(&[7u8; 40]);
    fs::write(&file, &bytes).unwrap();
    let repair = repair_partition(&dir, false).unwrap().repair.unwrap();
    assert_eq!(
        repair.dropped[0].bytes,
        good.len() as u64..bytes.len() as u64
    );
    assert_eq!(repair.dropped[0].intact, IntactBatches::default());
    assert_eq!(
        repair.highest_lost_offset, None,
        "nothing is known to be lost"
    );
    assert_eq!(fs::read(&file).unwrap(), good);
}

#[test]
fn repair_of_an_intact_log_changes_nothing() {
    let cfg = LogConfig {
        segment_bytes: 200,
        ..config()
    };
    let (_tmp, log) = open_log(cfg);
    for i in 0..6 {
        log.append(bm(&[&batch(NOW, &[format!("v{i}").as_bytes()])]), NOW)
            .unwrap();
    }
    assert!(log.segment_count() > 1);
    log.close().unwrap();
    let dir = log.dir().to_path_buf();
    drop(log);
    let before = snapshot(&dir);
    let report = repair_partition(&dir, false).unwrap();
    assert_eq!(report.repair, None);
    assert_eq!(snapshot(&dir), before);
}

#[test]
fn repair_of_a_missing_directory_is_an_error_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(repair_partition(&tmp.path().join("nope"), true).is_err());
}
