//! Reads: containing batch, byte limits, ranges, spanning segments, timestamps.

use super::codecs::gzip_batch;
use super::support::*;
use crate::{LogConfig, ReadError};

#[test]
fn read_starts_with_the_batch_containing_a_mid_batch_offset() {
    let (_tmp, log) = open_log(config());
    log.append(bm(&[&batch(NOW, &[b"a", b"b"])]), NOW).unwrap();
    log.append(bm(&[&batch(NOW, &[b"c", b"d", b"e"])]), NOW)
        .unwrap();
    let got = log.read(3, 1 << 20, false).unwrap();
    let stored = split(&got.records);
    assert_eq!(stored[0].base_offset, 2);
    assert_eq!(stored.len(), 1);
    assert_eq!(got.high_watermark, 5);
    assert_eq!(got.log_start_offset, 0);
}

#[test]
fn every_offset_is_found_through_a_sparse_index() {
    let (_tmp, log) = open_log(LogConfig {
        index_interval_bytes: 200,
        ..config()
    });
    for i in 0..60 {
        let vals = values(&format!("b{i}"), i % 4 + 1);
        log.append(bm(&[&batch(NOW, &refs(&vals))]), NOW).unwrap();
    }
    let all = decode(&read_all(&log));
    assert_eq!(all.len() as i64, log.log_end_offset());
    for rec in &all {
        let got = decode(&log.read(rec.offset, 1, true).unwrap().records);
        assert!(
            got.iter().any(|d| d == rec),
            "offset {} not in its read",
            rec.offset
        );
        assert!(got[0].offset <= rec.offset);
    }
}

#[test]
fn max_bytes_takes_only_whole_batches_that_fit() {
    let (_tmp, log) = open_log(config());
    let b = batch(NOW, &[&[1u8; 100]]);
    for _ in 0..5 {
        log.append(bm(&[&b]), NOW).unwrap();
    }
    let size = b.len();
    let got = log.read(0, 3 * size + size / 2, false).unwrap();
    assert_eq!(got.records.len(), 3 * size);
    let got = log.read(1, 2 * size, true).unwrap();
    assert_eq!(
        split(&got.records)
            .iter()
            .map(|s| s.base_offset)
            .collect::<Vec<_>>(),
        vec![1, 2]
    );
    let got = log.read(0, usize::MAX, false).unwrap();
    assert_eq!(got.records.len(), 5 * size);
}

#[test]
fn min_one_batch_returns_an_oversized_first_batch_whole() {
    let (_tmp, log) = open_log(config());
    let big = batch(NOW, &[&[2u8; 500]]);
    log.append(bm(&[&big, &batch(NOW, &[b"small"])]), NOW)
        .unwrap();
    let got = log.read(0, 10, true).unwrap();
    assert_eq!(got.records.len(), big.len());
    assert_eq!(split(&got.records)[0].base_offset, 0);
    let got = log.read(0, 10, false).unwrap();
    assert!(got.records.is_empty());
    // Only the first batch may exceed the limit.
    let got = log.read(0, big.len() + 5, true).unwrap();
    assert_eq!(got.records.len(), big.len());
}

#[test]
fn reading_at_the_log_end_is_empty() {
    let (_tmp, log) = open_log(config());
    let empty = log.read(0, 100, true).unwrap();
    assert!(empty.records.is_empty());
    assert_eq!(empty.high_watermark, 0);
    log.append(bm(&[&batch(NOW, &[b"a"])]), NOW).unwrap();
    let got = log.read(1, 100, true).unwrap();
    assert!(got.records.is_empty());
    assert_eq!(got.high_watermark, 1);
}

#[test]
fn offsets_outside_the_log_are_out_of_range() {
    let (_tmp, log) = open_log(config());
    log.append(bm(&[&batch(NOW, &[b"a", b"b"])]), NOW).unwrap();
    match log.read(3, 100, true) {
        Err(ReadError::OffsetOutOfRange {
            offset: 3,
            log_start_offset: 0,
            log_end_offset: 2,
        }) => {}
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        log.read(-1, 100, true),
        Err(ReadError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn reads_span_segments() {
    let (_tmp, log) = open_log(config());
    log.append(bm(&[&batch(NOW, &[b"a", b"b"])]), NOW).unwrap();
    assert!(log.roll_if_due(NOW + config().segment_ms + 1).unwrap());
    log.append(bm(&[&batch(NOW, &[b"c"])]), NOW).unwrap();
    assert!(log.roll_if_due(NOW + 2 * config().segment_ms + 2).unwrap());
    log.append(bm(&[&batch(NOW, &[b"d"]), &batch(NOW, &[b"e"])]), NOW)
        .unwrap();
    assert_eq!(log.segment_count(), 3);
    let got = decode(&log.read(1, usize::MAX, false).unwrap().records);
    let offsets: Vec<i64> = got.iter().map(|d| d.offset).collect();
    assert_eq!(offsets, vec![0, 1, 2, 3, 4]);
    assert_eq!(got[4].value, b"e");
    // Starting in the last segment works too.
    let got = decode(&log.read(4, usize::MAX, false).unwrap().records);
    assert_eq!(got.iter().map(|d| d.offset).collect::<Vec<_>>(), vec![4]);
}

#[test]
fn offset_for_timestamp_finds_the_first_record_at_or_after() {
    let (_tmp, log) = open_log(LogConfig {
        index_interval_bytes: 1,
        ..config()
    });
    let recs = |base: i64| {
        [0, 10, 20]
            .iter()
            .map(|d| Rec {
                timestamp_delta: *d,
                ..Rec::value(format!("t{}", base + d).as_bytes())
            })
            .collect::<Vec<_>>()
    };
    log.append(bm(&[&batch_of(1_000, &recs(1_000))]), NOW)
        .unwrap(); // offsets 0-2: 1000, 1010, 1020
    log.roll_if_due(NOW + config().segment_ms + 1).unwrap();
    log.append(bm(&[&gzip_batch(2_000, 3, b"compressed")]), NOW)
        .unwrap(); // offsets 3-5
    log.append(bm(&[&batch_of(3_000, &recs(3_000))]), NOW)
        .unwrap(); // offsets 6-8
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((0, 1_000)));
    assert_eq!(log.offset_for_timestamp(1_005).unwrap(), Some((1, 1_010)));
    assert_eq!(log.offset_for_timestamp(1_020).unwrap(), Some((2, 1_020)));
    // Compressed: the batch's base offset and max timestamp.
    assert_eq!(log.offset_for_timestamp(1_021).unwrap(), Some((3, 2_000)));
    assert_eq!(log.offset_for_timestamp(2_001).unwrap(), Some((6, 3_000)));
    assert_eq!(log.offset_for_timestamp(3_015).unwrap(), Some((8, 3_020)));
    assert_eq!(log.offset_for_timestamp(3_021).unwrap(), None);
}

#[test]
fn max_timestamp_reports_the_last_offset_of_the_newest_batch() {
    let (_tmp, log) = open_log(config());
    assert_eq!(log.max_timestamp().unwrap(), None);
    log.append(bm(&[&batch(500, &[b"a", b"b"])]), NOW).unwrap();
    log.append(bm(&[&batch(900, &[b"c", b"d"])]), NOW).unwrap();
    log.roll_if_due(NOW + config().segment_ms + 1).unwrap();
    log.append(bm(&[&batch(700, &[b"e"])]), NOW).unwrap();
    assert_eq!(log.max_timestamp().unwrap(), Some((900, 3)));
    log.append(bm(&[&batch(901, &[b"f"])]), NOW).unwrap();
    assert_eq!(log.max_timestamp().unwrap(), Some((901, 5)));
}
