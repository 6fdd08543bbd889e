//! Log compaction: the cleanup policy's effect on retention, keyless records refused on
//! compacted topics, and the cleaner (see `cleaner`): what a cleaning pass keeps and drops,
//! its checkpoint, its throttle, and crash safety of its segment swap.

use std::collections::BTreeMap;

use super::codecs::{compressed_batch, oracle_decompress, ALL};
use super::support::*;
use crate::producer_state::TxnMarker;
use crate::{
    AppendError, CleanStats, CleanupPolicy, IoKind, LogConfig, PartitionLog, RecordError, Throttle,
    Unthrottled,
};

/// A record with key `key` and value `value` (`None`: a tombstone).
pub fn keyed(key: &str, value: Option<&str>) -> Rec {
    Rec {
        key: Some(key.as_bytes().to_vec()),
        value: value.map(|v| v.as_bytes().to_vec()).unwrap_or_default(),
        timestamp_delta: 0,
        headers: Vec::new(),
        null_value: value.is_none(),
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

const KEYLESS: &str = "Compacted topic cannot accept message without key in topic partition p0";

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
                assert_eq!(
                    message,
                    format!(
                        "One or more records have been rejected due to 2 record errors in total, \
                         and only showing the first three errors at most: \
                         [RecordError(batchIndex=1, message='{KEYLESS}'), \
                         RecordError(batchIndex=3, message='{KEYLESS}')]"
                    )
                );
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

/// One record read back: offset, key, value (`None`: a tombstone), and whether it is a
/// control record (a transaction marker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kv {
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub control: bool,
}

fn varint(b: &[u8], at: &mut usize) -> i64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let byte = b[*at];
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return ((v >> 1) as i64) ^ -((v & 1) as i64);
        }
        shift += 7;
    }
}

fn nullable(b: &[u8], at: &mut usize) -> Option<Vec<u8>> {
    let n = varint(b, at);
    if n < 0 {
        return None;
    }
    let v = b[*at..*at + n as usize].to_vec();
    *at += n as usize;
    Some(v)
}

/// Every record of the stored batches in `bytes`, compressed ones decompressed by the codec
/// crates' own decoders; checks each batch's CRC and that its offsets lie within it.
pub fn records(bytes: &[u8]) -> Vec<Kv> {
    let mut out = Vec::new();
    for b in split(bytes) {
        assert!(b.crc_ok, "batch at {} has a bad crc", b.base_offset);
        let codec = b.attributes & 7;
        let area = if codec == 0 {
            b.bytes[61..].to_vec()
        } else {
            oracle_decompress(codec, &b.bytes[61..]).expect("a consumer can decompress it")
        };
        let control = b.attributes & 0x20 != 0;
        let mut at = 0;
        for _ in 0..b.record_count {
            let len = varint(&area, &mut at) as usize;
            let end = at + len;
            at += 1;
            varint(&area, &mut at);
            let offset = b.base_offset + varint(&area, &mut at);
            assert!(offset <= b.base_offset + i64::from(b.last_offset_delta));
            let key = nullable(&area, &mut at);
            let value = nullable(&area, &mut at);
            at = end;
            out.push(Kv {
                offset,
                key,
                value,
                control,
            });
        }
        assert_eq!(at, area.len(), "batch at {}", b.base_offset);
    }
    out
}

/// The data records of the whole log (control records left out).
fn data_of(log: &PartitionLog) -> Vec<Kv> {
    records(&read_all(log))
        .into_iter()
        .filter(|r| !r.control)
        .collect()
}

/// The latest record of each key among `all` (tombstones included), by offset.
fn latest_per_key(all: &[Kv]) -> Vec<Kv> {
    let mut latest: BTreeMap<Vec<u8>, Kv> = BTreeMap::new();
    for r in all {
        latest.insert(r.key.clone().unwrap(), r.clone());
    }
    let mut v: Vec<Kv> = latest.into_values().collect();
    v.sort_by_key(|r| r.offset);
    v
}

/// A compacted log that rolls only when told.
fn compact_config() -> LogConfig {
    LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        ..config()
    }
}

/// Appends `segments` (each a list of batches) to `log`, rolling after each but the last,
/// which stays in the active segment; returns the broker time after.
fn fill_segments(log: &PartitionLog, start_ms: i64, segments: &[Vec<Vec<u8>>]) -> i64 {
    let mut now = start_ms;
    for (i, batches) in segments.iter().enumerate() {
        if i > 0 {
            now += log.config().segment_ms + 1;
            assert!(log.roll_if_due(now).unwrap());
        }
        for b in batches {
            log.append(bm(&[b]), now).unwrap();
        }
    }
    now
}

const BUFFER: u64 = 1 << 20;

fn clean(log: &PartitionLog, now_ms: i64) -> Option<CleanStats> {
    log.clean(now_ms, &mut Unthrottled, BUFFER).unwrap()
}

fn kv(key: &str, value: Option<&str>) -> (String, Option<String>) {
    (key.to_string(), value.map(str::to_string))
}

/// Batches of keyed updates: `rounds` batches, each setting every key of `keys` to a value
/// naming the round, with the keys in `tombstones` deleted in the last round.
fn updates(keys: &[&str], rounds: usize, tag: &str, tombstones: &[&str]) -> Vec<Vec<u8>> {
    (0..rounds)
        .map(|round| {
            let recs: Vec<Rec> = keys
                .iter()
                .map(|k| {
                    let deleted = round + 1 == rounds && tombstones.contains(k);
                    let value = format!("{k}={tag}{round}");
                    keyed(k, (!deleted).then_some(value.as_str()))
                })
                .collect();
            batch_of(NOW, &recs)
        })
        .collect()
}

fn pairs(records: &[Kv]) -> Vec<(String, Option<String>)> {
    records
        .iter()
        .map(|r| {
            (
                String::from_utf8(r.key.clone().unwrap()).unwrap(),
                r.value.clone().map(|v| String::from_utf8(v).unwrap()),
            )
        })
        .collect()
}

#[test]
fn cleaning_keeps_the_latest_value_of_each_key_and_tombstones_until_delete_retention() {
    let (_tmp, log) = open_log(compact_config());
    let keys = ["a", "b", "c", "d"];
    let now = fill_segments(
        &log,
        NOW,
        &[
            updates(&keys, 3, "s0-", &[]),
            updates(&keys, 2, "s1-", &["b"]),
            updates(&["a", "c"], 2, "s2-", &["c"]),
            updates(&["a", "d"], 2, "active-", &[]),
        ],
    );
    let before = data_of(&log);
    let active_base = log.snapshot().active().base_offset();
    let active_before = log.read(active_base, usize::MAX, true).unwrap().records;
    let end = log.log_end_offset();
    let info = log.cleanable_info(now).unwrap();
    assert_eq!(
        (info.first_dirty_offset, info.first_uncleanable_offset),
        (0, active_base)
    );
    assert!(info.should_clean && info.dirty_ratio == 1.0, "{info:?}");

    let stats = clean(&log, now).expect("a pass ran");
    let sealed: Vec<Kv> = before
        .iter()
        .filter(|r| r.offset < active_base)
        .cloned()
        .collect();
    let expected = latest_per_key(&sealed);
    let after = data_of(&log);
    let (cleaned, active): (Vec<Kv>, Vec<Kv>) =
        after.iter().cloned().partition(|r| r.offset < active_base);
    assert_eq!(cleaned, expected);
    assert_eq!(
        pairs(&cleaned),
        vec![
            kv("b", None),
            kv("d", Some("d=s1-1")),
            kv("a", Some("a=s2-1")),
            kv("c", None)
        ]
    );
    assert!(after.windows(2).all(|w| w[0].offset < w[1].offset));
    assert_eq!(log.log_end_offset(), end);
    assert_eq!(
        log.read(active_base, usize::MAX, true).unwrap().records,
        active_before,
        "the active segment is untouched"
    );
    assert_eq!(active.len(), 4);
    assert_eq!(stats.end_offset, active_base);
    assert_eq!(stats.segments_scanned, 3);
    assert_eq!(stats.segments_cleaned, 3);
    assert_eq!(
        stats.segments_written, 1,
        "the three small segments became one"
    );
    assert_eq!(log.segment_count(), 2);
    assert_eq!(log_files(log.dir()).len(), 2);
    assert_eq!(files_with_ext(log.dir(), "index").len(), 2);
    assert_eq!(files_with_ext(log.dir(), "timeindex").len(), 2);
    assert_eq!(stats.records_kept, 4);
    assert_eq!(stats.records_removed, sealed.len() as u64 - 4);
    assert_eq!(stats.keys, 4);
    assert_eq!(stats.dirty_ratio_before, 1.0);
    assert_eq!(stats.dirty_ratio_after, 0.0);
    assert!(stats.bytes_written < stats.bytes_read);
    assert_eq!(log.cleaner_checkpoint().unwrap(), active_base);

    // Nothing is dirty and no horizon has passed: no pass.
    let retention = log.config().delete_retention_ms;
    assert_eq!(clean(&log, now + retention - 1), None);
    // Once delete.retention.ms has passed since the pass that first saw them, tombstones go.
    let info = log.cleanable_info(now + retention).unwrap();
    assert!(info.deletes_due && info.should_clean, "{info:?}");
    let stats = clean(&log, now + retention).expect("the horizon pass ran");
    assert_eq!(stats.records_removed, 2);
    let cleaned: Vec<Kv> = data_of(&log)
        .into_iter()
        .filter(|r| r.offset < active_base)
        .collect();
    assert_eq!(
        pairs(&cleaned),
        vec![kv("d", Some("d=s1-1")), kv("a", Some("a=s2-1"))]
    );
    assert_eq!(clean(&log, now + 2 * retention), None, "nothing left to do");
    assert_eq!(log.log_start_offset(), 0);
    assert_eq!(log.log_end_offset(), end);
}

#[test]
fn a_cleaned_log_reopens_with_its_gaps_and_its_checkpoint() {
    let (_tmp, log) = open_log(compact_config());
    let keys = ["a", "b", "c"];
    let now = fill_segments(
        &log,
        NOW,
        &[
            updates(&keys, 3, "x", &["b"]),
            updates(&keys, 3, "y", &[]),
            updates(&["a"], 1, "z", &[]),
        ],
    );
    clean(&log, now).unwrap();
    let cleaned = read_all(&log);
    let checkpoint = log.cleaner_checkpoint().unwrap();
    let end = log.log_end_offset();
    let dir = log.dir().to_path_buf();
    drop(log); // without a close: recovery scans past the recovery point
    let log = PartitionLog::open(&dir, compact_config(), now).unwrap();
    assert_eq!(read_all(&log), cleaned);
    assert_eq!(log.cleaner_checkpoint().unwrap(), checkpoint);
    assert_eq!(log.log_end_offset(), end);
    log.close().unwrap();
    drop(log);
    // After a clean close the sealed segments are trusted with their index files.
    let log = PartitionLog::open(&dir, compact_config(), now).unwrap();
    assert_eq!(read_all(&log), cleaned);
    // Reading from an offset the cleaner removed starts at the next record.
    let first = records(&cleaned)[0].offset;
    assert!(first > 0);
    let from_zero = log.read(0, usize::MAX, true).unwrap().records;
    assert_eq!(records(&from_zero)[0].offset, first);
    let info = log
        .append(bm(&[&batch_of(now, &[keyed("a", Some("new"))])]), now)
        .unwrap();
    assert_eq!(info.base_offset, end);
}

#[test]
fn compressed_batches_are_filtered_and_recompressed_with_their_codec() {
    for codec in ALL {
        let (_tmp, log) = open_log(compact_config());
        let recs = |tag: &str| -> Vec<Rec> {
            ["a", "b", "c", "d"]
                .iter()
                .map(|k| keyed(k, Some(&format!("{k}-{tag}"))))
                .collect()
        };
        let now = fill_segments(
            &log,
            NOW,
            &[
                vec![compressed_batch(codec, NOW, &recs("old"))],
                vec![compressed_batch(
                    codec,
                    NOW,
                    &[keyed("a", Some("a-new")), keyed("c", None)],
                )],
                vec![],
            ],
        );
        clean(&log, now).unwrap();
        let all = read_all(&log);
        for b in split(&all) {
            assert_eq!(b.attributes & 7, codec.id(), "{codec:?} keeps its codec");
            assert_eq!(
                b.bytes[61..].starts_with(b"\x82SNAPPY\x00"),
                codec == super::codecs::Codec::SnappyXerial,
                "snappy keeps its framing"
            );
        }
        assert_eq!(
            pairs(&records(&all)),
            vec![
                kv("b", Some("b-old")),
                kv("d", Some("d-old")),
                kv("a", Some("a-new")),
                kv("c", None)
            ],
            "{codec:?}"
        );
        let first = &split(&all)[0];
        assert_eq!(first.base_offset, 0);
        assert_eq!(
            first.last_offset_delta, 3,
            "the batch keeps its last offset"
        );
        assert_eq!(first.record_count, 2);
    }
}

#[test]
fn keyless_records_left_from_before_the_policy_are_removed() {
    let (_tmp, log) = open_log(config());
    let now = fill_segments(
        &log,
        NOW,
        &[
            vec![batch_of(
                NOW,
                &[Rec::value(b"no key"), keyed("a", Some("1"))],
            )],
            vec![],
        ],
    );
    log.set_config(compact_config());
    clean(&log, now).unwrap();
    assert_eq!(pairs(&data_of(&log)), vec![kv("a", Some("1"))]);
}

/// A throttle that records what it is told.
#[derive(Default)]
struct RecordingThrottle(Vec<(IoKind, u64)>);

impl Throttle for RecordingThrottle {
    fn acquire(&mut self, kind: IoKind, bytes: u64) {
        self.0.push((kind, bytes));
    }
}

impl RecordingThrottle {
    fn total(&self, kind: IoKind) -> u64 {
        self.0
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, n)| n)
            .sum()
    }
}

#[test]
fn the_throttle_is_told_of_every_byte_read_and_written() {
    let (_tmp, log) = open_log(compact_config());
    let keys = ["a", "b", "c"];
    let now = fill_segments(
        &log,
        NOW,
        &[
            updates(&keys, 4, "x", &[]),
            updates(&keys, 4, "y", &["c"]),
            vec![],
        ],
    );
    let sealed_bytes: u64 = log.size_bytes();
    let mut throttle = RecordingThrottle::default();
    let stats = log.clean(now, &mut throttle, BUFFER).unwrap().unwrap();
    // The map reads the dirty range (all of it), the rewrite reads every sealed segment.
    assert_eq!(throttle.total(IoKind::Read), 2 * sealed_bytes);
    assert_eq!(throttle.total(IoKind::Read), stats.bytes_read);
    assert_eq!(throttle.total(IoKind::Write), stats.bytes_written);
    assert_eq!(
        stats.bytes_written,
        log.size_bytes(),
        "every sealed segment was rewritten"
    );
    assert!(throttle.0.iter().all(|(_, n)| *n > 0));
}

/// A transactional batch of `recs` from producer `pid` at sequence `seq`.
fn txn_batch(pid: i64, seq: i32, recs: &[Rec]) -> Vec<u8> {
    let mut b = batch_of(NOW, recs);
    set_producer(&mut b, pid, 0, seq, true);
    b
}

fn end_txn(log: &PartitionLog, pid: i64, commit: bool, now: i64) {
    let marker = TxnMarker {
        producer_id: pid,
        epoch: 0,
        commit,
        coordinator_epoch: 0,
    };
    log.write_txn_marker(marker, now).unwrap().unwrap();
}

fn roll(log: &PartitionLog, now: &mut i64) {
    *now += log.config().segment_ms + 1;
    assert!(log.roll_if_due(*now).unwrap());
}

#[test]
fn aborted_transactions_are_removed_committed_ones_kept_and_markers_go_after_the_horizon() {
    // Longer than the rolls below take.
    let config = LogConfig {
        delete_retention_ms: 30 * 86_400_000,
        ..compact_config()
    };
    let (_tmp, log) = open_log(config.clone());
    let mut now = NOW;
    log.append(bm(&[&batch_of(NOW, &[keyed("a", Some("plain"))])]), now)
        .unwrap(); // 0
    log.append(
        bm(&[&txn_batch(
            7,
            0,
            &[keyed("a", Some("aborted")), keyed("x", Some("aborted"))],
        )]),
        now,
    )
    .unwrap(); // 1-2
    log.append(
        bm(&[&txn_batch(8, 0, &[keyed("b", Some("committed"))])]),
        now,
    )
    .unwrap(); // 3
    end_txn(&log, 7, false, now); // 4
    end_txn(&log, 8, true, now); // 5
    roll(&log, &mut now);
    let stats = clean(&log, now).unwrap();
    let all = records(&read_all(&log));
    let data: Vec<Kv> = all.iter().filter(|r| !r.control).cloned().collect();
    assert_eq!(
        pairs(&data),
        vec![kv("a", Some("plain")), kv("b", Some("committed"))]
    );
    let markers: Vec<i64> = all.iter().filter(|r| r.control).map(|r| r.offset).collect();
    assert_eq!(
        markers,
        vec![4, 5],
        "markers stay while their transaction had data"
    );
    assert_eq!(stats.records_removed, 2);
    // Next pass: no data of either transaction is left to see, but the horizon has not passed.
    let retention = log.config().delete_retention_ms;
    assert!(clean(&log, now + retention - 1).is_none());
    log.append(bm(&[&batch_of(NOW, &[keyed("c", Some("1"))])]), now)
        .unwrap(); // 6
    roll(&log, &mut now);
    clean(&log, now).unwrap();
    let markers: Vec<i64> = records(&read_all(&log))
        .iter()
        .filter(|r| r.control)
        .map(|r| r.offset)
        .collect();
    assert_eq!(markers, vec![4, 5], "within delete.retention.ms");
    // The committed transaction still has its record b, so its marker stays; the aborted
    // one's goes once the horizon of the first pass has passed.
    clean(&log, now + retention).unwrap();
    let all = records(&read_all(&log));
    let markers: Vec<i64> = all.iter().filter(|r| r.control).map(|r| r.offset).collect();
    assert_eq!(markers, vec![5]);
    assert_eq!(
        pairs(&all.into_iter().filter(|r| !r.control).collect::<Vec<_>>()),
        vec![
            kv("a", Some("plain")),
            kv("b", Some("committed")),
            kv("c", Some("1"))
        ]
    );
    // read_committed readers still get a consistent view after reopening.
    let dir = log.dir().to_path_buf();
    drop(log);
    let log = PartitionLog::open(&dir, config, now).unwrap();
    assert_eq!(log.last_stable_offset(), log.log_end_offset());
}

#[test]
fn an_open_transaction_stops_cleaning_at_the_last_stable_offset() {
    let (_tmp, log) = open_log(compact_config());
    let mut now = NOW;
    log.append(bm(&[&batch_of(NOW, &[keyed("a", Some("1"))])]), now)
        .unwrap(); // 0
    log.append(bm(&[&txn_batch(7, 0, &[keyed("a", Some("open"))])]), now)
        .unwrap(); // 1: opens a transaction
    roll(&log, &mut now);
    log.append(bm(&[&batch_of(NOW, &[keyed("a", Some("2"))])]), now)
        .unwrap(); // 2
    roll(&log, &mut now);
    assert_eq!(log.last_stable_offset(), 1);
    let info = log.cleanable_info(now).unwrap();
    assert_eq!(info.first_uncleanable_offset, 1);
    clean(&log, now).unwrap();
    // Only offset 0 was cleanable: nothing later could be seen, so everything stays.
    assert_eq!(
        data_of(&log).iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert_eq!(log.cleaner_checkpoint().unwrap(), 1);
    end_txn(&log, 7, true, now); // 3
    roll(&log, &mut now);
    clean(&log, now).unwrap();
    assert_eq!(pairs(&data_of(&log)), vec![kv("a", Some("2"))]);
}

#[test]
fn min_compaction_lag_keeps_recent_segments_dirty() {
    let lag = 60_000;
    let (_tmp, log) = open_log(LogConfig {
        min_compaction_lag_ms: lag,
        ..compact_config()
    });
    let mut now = NOW;
    for (i, ts) in [NOW, NOW + 1_000, NOW + 100_000].iter().enumerate() {
        let v = format!("v{i}");
        log.append(bm(&[&batch_of(*ts, &[keyed("k", Some(&v))])]), now)
            .unwrap();
        roll(&log, &mut now);
    }
    // At NOW + 100_500 the first two segments are older than the lag, the third is not.
    let info = log.cleanable_info(NOW + 100_500).unwrap();
    assert_eq!(info.first_uncleanable_offset, 2);
    clean(&log, NOW + 100_500).unwrap();
    assert_eq!(
        data_of(&log).iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![1, 2]
    );
    clean(&log, NOW + 160_001).unwrap();
    assert_eq!(pairs(&data_of(&log)), vec![kv("k", Some("v2"))]);
}

#[test]
fn a_dedupe_buffer_too_small_cleans_part_and_the_next_pass_finishes() {
    let (_tmp, log) = open_log(compact_config());
    let keys: Vec<String> = (0..20).map(|i| format!("key{i:02}")).collect();
    let mut now = NOW;
    // Ten keys per segment, each segment written twice over.
    for half in keys.chunks(10) {
        for round in 0..2 {
            let recs: Vec<Rec> = half
                .iter()
                .map(|k| keyed(k, Some(&format!("{k}-{round}"))))
                .collect();
            log.append(bm(&[&batch_of(NOW, &recs)]), now).unwrap();
        }
        roll(&log, &mut now);
    }
    let end = log.log_end_offset();
    // Room for 10 keys (24 bytes each at a 0.9 load factor) but not 20.
    let buffer = 12 * 24;
    let first = log.clean(now, &mut Unthrottled, buffer).unwrap().unwrap();
    assert_eq!(first.keys, 10);
    assert_eq!(first.end_offset, 20, "the map filled at the second segment");
    assert_eq!(log.cleaner_checkpoint().unwrap(), 20);
    let data = data_of(&log);
    assert_eq!(
        data.len(),
        10 + 20,
        "first segment cleaned, second as it was"
    );
    // The checkpoint survives a reopen, and the next pass finishes the job.
    let dir = log.dir().to_path_buf();
    drop(log);
    let log = PartitionLog::open(&dir, compact_config(), now).unwrap();
    assert_eq!(log.cleaner_checkpoint().unwrap(), 20);
    assert_eq!(log.cleanable_info(now).unwrap().first_dirty_offset, 20);
    let second = log.clean(now, &mut Unthrottled, buffer).unwrap().unwrap();
    assert_eq!(second.end_offset, end);
    let data = data_of(&log);
    assert_eq!(data.len(), 20);
    assert!(data
        .iter()
        .all(|r| r.value.as_ref().unwrap().ends_with(b"-1")));
    // A buffer that cannot hold one batch is an error, and changes nothing.
    log.append(
        bm(&[&batch_of(
            NOW,
            &[keyed("a", Some("1")), keyed("b", Some("1"))],
        )]),
        now,
    )
    .unwrap();
    roll(&log, &mut now);
    assert!(log.clean(now, &mut Unthrottled, 24).is_err());
    assert_eq!(log.cleaner_checkpoint().unwrap(), end);
}

/// Files of a cleaning pass seen right after a simulated crash.
fn note_cleaner_files(dir: &std::path::Path, seen: &mut std::collections::BTreeSet<&'static str>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".log.cleaned") {
            seen.insert("cleaned segment file");
        }
        if name == "cleaner-swap" {
            seen.insert("swap record");
        }
        if name == "cleaner-swap.tmp" {
            seen.insert("swap record half written");
        }
        if name == "cleaner-offset-checkpoint.tmp" {
            seen.insert("checkpoint half written");
        }
    }
}

/// A log with three sealed segments of updates and tombstones (one of them gzip) and an
/// active segment, as of the returned time.
fn crash_test_log(dir: &std::path::Path, config: &LogConfig) -> (PartitionLog, i64) {
    let log = PartitionLog::open(dir, config.clone(), NOW).unwrap();
    let gz = compressed_batch(
        super::codecs::Codec::Gzip,
        NOW,
        &[
            keyed("a", Some("gz")),
            keyed("b", Some("gz")),
            keyed("e", None),
        ],
    );
    let now = fill_segments(
        &log,
        NOW,
        &[
            updates(&["a", "b", "c"], 2, "s0-", &["c"]),
            vec![gz, batch_of(NOW, &[keyed("d", Some("s1"))])],
            updates(&["a", "d"], 2, "s2-", &["d"]),
            updates(&["a"], 1, "active-", &[]),
        ],
    );
    (log, now)
}

/// Runs `step` (a cleaning pass) after `prepare`, crashing after `k` file operations for
/// every `k` until it completes; the reopened log must hold exactly the records before the
/// pass or exactly those after it, and a pass after reopening must reach the same result.
fn crash_every_point_of(
    config: LogConfig,
    prepare: impl Fn(&PartitionLog, i64),
    step_at: impl Fn(i64) -> i64,
) -> (std::collections::BTreeSet<&'static str>, CleanStats) {
    use crate::failpoint;
    // The result without a crash.
    let tmp = tempfile::tempdir().unwrap();
    let (log, now) = crash_test_log(&tmp.path().join("p"), &config);
    prepare(&log, now);
    let before = records(&read_all(&log));
    let stats = clean(&log, step_at(now)).expect("the pass does something");
    let after = records(&read_all(&log));
    assert_ne!(before, after);
    drop(log);

    let mut seen = std::collections::BTreeSet::new();
    for k in 0.. {
        failpoint::reset();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("p");
        let (log, now) = crash_test_log(&dir, &config);
        prepare(&log, now);
        failpoint::reset();
        failpoint::crash_after(k);
        let result = log.clean(step_at(now), &mut Unthrottled, BUFFER);
        let crashed = failpoint::operations() > k;
        failpoint::reset();
        note_cleaner_files(&dir, &mut seen);
        drop(log); // kill -9

        let log = PartitionLog::open(&dir, config.clone(), now)
            .unwrap_or_else(|e| panic!("crash after {k} operations: reopen failed: {e}"));
        let got = records(&read_all(&log));
        if crashed {
            assert!(
                got == before || got == after,
                "crash after {k} operations: neither the old nor the new records: {got:?}"
            );
        } else {
            result.unwrap();
            assert_eq!(got, after, "the pass completed");
        }
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            assert!(
                !name.ends_with(".cleaned") && !name.starts_with("cleaner-swap"),
                "crash after {k} operations: {name} left after open"
            );
        }
        let _ = log.clean(step_at(now), &mut Unthrottled, BUFFER).unwrap();
        assert_eq!(
            records(&read_all(&log)),
            after,
            "crash after {k} operations, then a pass"
        );
        log.close().unwrap();
        drop(log);
        let log = PartitionLog::open(&dir, config.clone(), now).unwrap();
        assert_eq!(records(&read_all(&log)), after);
        if !crashed {
            assert!(k >= 10, "only {k} operations in a pass");
            break;
        }
    }
    (seen, stats)
}

#[test]
fn kill9_at_every_point_of_a_cleaning_pass_leaves_the_old_or_the_new_segments() {
    let (seen, _) = crash_every_point_of(compact_config(), |_, _| {}, |now| now);
    for state in [
        "cleaned segment file",
        "swap record",
        "swap record half written",
        "checkpoint half written",
    ] {
        assert!(seen.contains(state), "never crashed with {state}: {seen:?}");
    }
}

#[test]
fn kill9_at_every_point_of_a_pass_removing_tombstones_leaves_the_old_or_the_new_segments() {
    let retention = compact_config().delete_retention_ms;
    crash_every_point_of(
        compact_config(),
        |log, now| {
            clean(log, now).unwrap();
        },
        |now| now + retention,
    );
}

#[test]
fn a_read_holding_the_old_segments_still_reads_them_after_the_swap() {
    let (_tmp, log) = open_log(compact_config());
    let now = fill_segments(
        &log,
        NOW,
        &[
            updates(&["a", "b"], 3, "x", &[]),
            updates(&["a", "b"], 3, "y", &["b"]),
            vec![],
        ],
    );
    let old_view = log.snapshot();
    let read_view = |view: &crate::View| {
        let mut out = Vec::new();
        for segment in view.segments.iter() {
            segment
                .read_batches(0, i64::MAX, usize::MAX, true, &mut out)
                .unwrap();
        }
        out
    };
    let before = read_view(&old_view);
    assert_eq!(before, read_all(&log));
    clean(&log, now).unwrap();
    assert_ne!(read_all(&log), before);
    assert_eq!(read_view(&old_view), before, "the old files stay readable");
}

#[test]
fn concurrent_reads_see_the_old_log_or_the_cleaned_one_never_a_mix() {
    let (_tmp, log) = open_log(compact_config());
    let keys: Vec<String> = (0..8).map(|i| format!("k{i}")).collect();
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let segments: Vec<Vec<Vec<u8>>> = (0..6)
        .map(|s| updates(&key_refs, 3, &format!("s{s}-"), &[]))
        .chain([vec![]])
        .collect();
    let now = fill_segments(&log, NOW, &segments);
    let before = records(&read_all(&log));
    let after = latest_per_key(&before);
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut reads = 0;
            loop {
                let finished = done.load(std::sync::atomic::Ordering::Acquire);
                let got = records(&read_all(&log));
                assert!(got == before || got == after, "a read saw a mix");
                reads += 1;
                if finished {
                    return reads;
                }
            }
        });
        clean(&log, now).unwrap();
        done.store(true, std::sync::atomic::Ordering::Release);
        assert!(reader.join().unwrap() >= 1);
    });
    assert_eq!(records(&read_all(&log)), after);
}

/// A throttle that runs retention on the log the first time it is called, in the middle of
/// a cleaning pass.
struct RetentionMidPass<'a> {
    log: &'a PartitionLog,
    now: i64,
    deleted: Option<usize>,
}

impl Throttle for RetentionMidPass<'_> {
    fn acquire(&mut self, _kind: IoKind, _bytes: u64) {
        if self.deleted.is_none() {
            self.deleted = Some(self.log.enforce_retention(self.now).unwrap());
        }
    }
}

#[test]
fn a_pass_whose_segments_retention_deleted_meanwhile_is_abandoned() {
    let config = LogConfig {
        cleanup_policy: CleanupPolicy::CompactDelete,
        retention_ms: Some(1),
        ..config()
    };
    let (_tmp, log) = open_log(config);
    let now = fill_segments(
        &log,
        NOW,
        &[
            updates(&["a"], 2, "x", &[]),
            updates(&["a"], 2, "y", &[]),
            updates(&["a"], 1, "active", &[]),
        ],
    );
    let mut throttle = RetentionMidPass {
        log: &log,
        now,
        deleted: None,
    };
    assert_eq!(log.clean(now, &mut throttle, BUFFER).unwrap(), None);
    assert_eq!(throttle.deleted, Some(2));
    assert_eq!(log.cleaner_checkpoint().unwrap(), 0);
    assert_eq!(pairs(&data_of(&log)), vec![kv("a", Some("a=active0"))]);
    let names: Vec<String> = std::fs::read_dir(log.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| n.contains("cleaned") || n.contains("swap")),
        "{names:?}"
    );
}

#[test]
fn the_dirty_ratio_counts_whole_segments_and_max_compaction_lag_forces_a_pass() {
    let config = LogConfig {
        min_cleanable_dirty_ratio: 0.6,
        max_compaction_lag_ms: 50_000,
        ..compact_config()
    };
    let (_tmp, log) = open_log(config.clone());
    let mut now = NOW;
    for round in 0..2 {
        log.append(
            bm(&[&batch_of(NOW, &[keyed("a", Some(&format!("{round}")))])]),
            now,
        )
        .unwrap();
        roll(&log, &mut now);
    }
    clean(&log, now).unwrap();
    let clean_bytes = log.size_bytes();
    // One new segment as large as the cleaned part: half of the log is dirty.
    let dirty = batch_of(NOW + 10, &[keyed("a", Some("2"))]);
    assert_eq!(dirty.len(), clean_bytes as usize);
    log.append(bm(&[&dirty]), now).unwrap();
    roll(&log, &mut now);
    let info = log.cleanable_info(NOW + 10).unwrap();
    assert_eq!(info.dirty_ratio, 0.5);
    assert_eq!(
        (info.clean_bytes, info.dirty_bytes),
        (clean_bytes, clean_bytes)
    );
    assert_eq!(info.first_dirty_timestamp_ms, Some(NOW + 10));
    assert!(!info.must_clean && !info.should_clean, "{info:?}");
    assert_eq!(log.dirty_ratio(NOW + 10).unwrap(), 0.5);
    // Kafka picks a log whose ratio is above the minimum, not at it.
    for (min, chosen) in [(0.5, false), (0.49, true)] {
        log.set_config(LogConfig {
            min_cleanable_dirty_ratio: min,
            ..config.clone()
        });
        assert_eq!(log.cleanable_info(NOW + 10).unwrap().should_clean, chosen);
    }
    log.set_config(config.clone());
    // Once the first dirty record is older than max.compaction.lag.ms, it must be cleaned.
    let info = log.cleanable_info(NOW + 10 + 50_001).unwrap();
    assert!(info.must_clean && info.should_clean, "{info:?}");
    // A log that does not compact is never to be cleaned, and clean does nothing.
    log.set_config(LogConfig {
        cleanup_policy: CleanupPolicy::Delete,
        ..config
    });
    assert!(!log.cleanable_info(NOW + 10 + 50_001).unwrap().should_clean);
    assert_eq!(clean(&log, now), None);
}

#[test]
fn a_checkpoint_beyond_the_log_end_is_brought_down_at_open() {
    let (_tmp, log) = open_log(compact_config());
    let now = fill_segments(&log, NOW, &[updates(&["a"], 2, "x", &[]), vec![]]);
    clean(&log, now).unwrap();
    let dir = log.dir().to_path_buf();
    drop(log);
    std::fs::write(
        dir.join("cleaner-offset-checkpoint"),
        "first-dirty 100\npass 50 1\npass 100 2\n",
    )
    .unwrap();
    let log = PartitionLog::open(&dir, compact_config(), now).unwrap();
    assert_eq!(log.cleaner_checkpoint().unwrap(), 2);
    let text = std::fs::read_to_string(dir.join("cleaner-offset-checkpoint")).unwrap();
    assert_eq!(text, "first-dirty 2\npass 2 1\n");
}

#[test]
fn small_segments_are_merged_up_to_segment_bytes() {
    let one = batch_of(NOW, &[keyed("a", Some("1"))]).len() as u64;
    let config = LogConfig {
        segment_bytes: 2 * one,
        ..compact_config()
    };
    let (_tmp, log) = open_log(config.clone());
    let segments: Vec<Vec<Vec<u8>>> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|k| vec![batch_of(NOW, &[keyed(k, Some("1"))])])
        .chain([vec![]])
        .collect();
    let now = fill_segments(&log, NOW, &segments);
    assert_eq!(log.segment_count(), 6);
    let before = read_all(&log);
    let stats = clean(&log, now).unwrap();
    // Nothing to remove; five segments of one batch become three of at most two (the last,
    // alone and unchanged, is not rewritten).
    assert_eq!(stats.records_removed, 0);
    assert_eq!(stats.segments_scanned, 5);
    assert_eq!((stats.segments_cleaned, stats.segments_written), (4, 2));
    assert_eq!(log.segment_count(), 4);
    assert_eq!(read_all(&log), before);
    let bases: Vec<String> = log_files(log.dir())
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy()[..20].to_string())
        .collect();
    assert_eq!(
        bases,
        ["0", "2", "4", "5"].map(|b| format!("{b:0>20}")).to_vec()
    );
    let dir = log.dir().to_path_buf();
    drop(log);
    let log = PartitionLog::open(&dir, config, now).unwrap();
    assert_eq!(read_all(&log), before);
    assert_eq!(log.segment_count(), 4);
}

#[test]
fn kill9_at_every_point_of_a_pass_writing_several_merged_segments_leaves_the_old_or_the_new() {
    // Small segments: the pass writes more than one cleaned segment, some merged.
    let config = LogConfig {
        segment_bytes: 400,
        ..compact_config()
    };
    let (_, stats) = crash_every_point_of(config, |_, _| {}, |now| now);
    assert!(stats.segments_written >= 2, "{stats:?}");
    assert!(stats.segments_cleaned > stats.segments_written, "{stats:?}");
}

#[test]
fn an_idempotent_producer_retry_is_still_recognised_after_its_batches_were_cleaned_away() {
    let (_tmp, log) = open_log(compact_config());
    let mut now = NOW;
    let produced = |seq: i32, value: &str| {
        let mut b = batch_of(NOW, &[keyed("a", Some(value))]);
        set_producer(&mut b, 5, 0, seq, false);
        b
    };
    log.append(bm(&[&produced(0, "p0")]), now).unwrap(); // 0
    log.append(bm(&[&produced(1, "p1")]), now).unwrap(); // 1
    log.append(bm(&[&batch_of(NOW, &[keyed("a", Some("plain"))])]), now)
        .unwrap(); // 2
    roll(&log, &mut now);
    clean(&log, now).unwrap();
    assert_eq!(pairs(&data_of(&log)), vec![kv("a", Some("plain"))]);
    let retry = log.append(bm(&[&produced(1, "p1")]), now).unwrap();
    assert_eq!(
        (retry.base_offset, retry.record_count),
        (1, 0),
        "a duplicate"
    );
    let dir = log.dir().to_path_buf();
    drop(log); // no close: the producer state comes from the snapshot of the roll
    let log = PartitionLog::open(&dir, compact_config(), now).unwrap();
    let retry = log.append(bm(&[&produced(1, "p1")]), now).unwrap();
    assert_eq!(
        (retry.base_offset, retry.record_count),
        (1, 0),
        "a duplicate"
    );
    assert!(matches!(
        log.append(bm(&[&produced(5, "gap")]), now),
        Err(AppendError::Producer(_))
    ));
    let next = log.append(bm(&[&produced(2, "p2")]), now).unwrap();
    assert_eq!(next.base_offset, 3);
}

#[test]
fn repair_finds_no_damage_in_a_cleaned_log() {
    let (_tmp, log) = open_log(compact_config());
    let now = fill_segments(
        &log,
        NOW,
        &[
            updates(&["a", "b"], 3, "x", &["a"]),
            updates(&["a", "b"], 2, "y", &[]),
            vec![],
        ],
    );
    clean(&log, now).unwrap();
    let dir = log.dir().to_path_buf();
    drop(log);
    let report = crate::repair_partition(&dir, true).unwrap();
    assert!(report.repair.is_none(), "{report:?}");
}

#[test]
fn kill9_at_every_point_of_the_recovery_of_a_committed_swap_still_ends_with_the_new_segments() {
    use crate::failpoint;
    let expected = {
        let tmp = tempfile::tempdir().unwrap();
        let (log, now) = crash_test_log(&tmp.path().join("p"), &compact_config());
        clean(&log, now).unwrap();
        records(&read_all(&log))
    };
    let k = first_crash_point_leaving_a_swap_record();
    for j in 0.. {
        let (_tmp, dir, now) = committed_state(k);
        assert!(dir.join("cleaner-swap").exists());
        failpoint::crash_after(j);
        let opened = PartitionLog::open(&dir, compact_config(), now);
        let crashed = failpoint::operations() > j;
        failpoint::reset();
        drop(opened);
        let log = PartitionLog::open(&dir, compact_config(), now)
            .unwrap_or_else(|e| panic!("crash after {j} operations of recovery: {e}"));
        assert_eq!(
            records(&read_all(&log)),
            expected,
            "crash after {j} operations of recovery"
        );
        assert!(!dir.join("cleaner-swap").exists());
        if !crashed {
            break;
        }
    }
}

#[test]
fn an_aborted_transaction_past_the_last_stable_offset_stays_until_a_pass_reaches_it() {
    let (_tmp, log) = open_log(compact_config());
    let mut now = NOW;
    log.append(bm(&[&batch_of(NOW, &[keyed("a", Some("1"))])]), now)
        .unwrap(); // 0
    log.append(bm(&[&txn_batch(7, 0, &[keyed("a", Some("open"))])]), now)
        .unwrap(); // 1: stays open
    log.append(bm(&[&txn_batch(8, 0, &[keyed("b", Some("aborted"))])]), now)
        .unwrap(); // 2
    end_txn(&log, 8, false, now); // 3
    roll(&log, &mut now);
    assert_eq!(log.last_stable_offset(), 1);
    clean(&log, now).unwrap();
    let offsets = |log: &PartitionLog| -> Vec<i64> {
        records(&read_all(log)).iter().map(|r| r.offset).collect()
    };
    assert_eq!(
        offsets(&log),
        vec![0, 1, 2, 3],
        "nothing past the pass's end goes"
    );
    let dir = log.dir().to_path_buf();
    drop(log);
    let log = PartitionLog::open(&dir, compact_config(), now).unwrap();
    assert_eq!(offsets(&log), vec![0, 1, 2, 3]);
    end_txn(&log, 7, true, now); // 4
    roll(&log, &mut now);
    clean(&log, now).unwrap();
    assert_eq!(offsets(&log), vec![1, 3, 4], "a superseded, b aborted");
    drop(log);
    let log = PartitionLog::open(&dir, compact_config(), now).unwrap();
    assert_eq!(offsets(&log), vec![1, 3, 4]);
}

/// The crash test log, with a pass cut off after `k` file operations.
fn committed_state(k: u64) -> (tempfile::TempDir, std::path::PathBuf, i64) {
    use crate::failpoint;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    let (log, now) = crash_test_log(&dir, &compact_config());
    failpoint::reset();
    failpoint::crash_after(k);
    let _ = log.clean(now, &mut Unthrottled, BUFFER);
    failpoint::reset();
    drop(log);
    (tmp, dir, now)
}

/// The first crash point of a pass that leaves its swap record: a committed, unfinished swap.
fn first_crash_point_leaving_a_swap_record() -> u64 {
    (0..1_000)
        .find(|&k| committed_state(k).1.join("cleaner-swap").exists())
        .expect("some crash point leaves a swap record")
}

#[test]
fn repair_finishes_an_unfinished_swap_first_and_a_dry_run_refuses() {
    let k = first_crash_point_leaving_a_swap_record();
    let (_tmp, dir, now) = committed_state(k);
    let err = crate::repair_partition(&dir, true).unwrap_err();
    assert!(
        err.to_string().contains("cleaner swap is unfinished"),
        "{err}"
    );
    assert!(
        dir.join("cleaner-swap").exists(),
        "a dry run changes nothing"
    );
    let report = crate::repair_partition(&dir, false).unwrap();
    assert!(report.repair.is_none(), "{report:?}");
    assert!(!dir.join("cleaner-swap").exists());
    let log = PartitionLog::open(&dir, compact_config(), now).unwrap();
    let expected = {
        let tmp = tempfile::tempdir().unwrap();
        let (log, now) = crash_test_log(&tmp.path().join("p"), &compact_config());
        clean(&log, now).unwrap();
        records(&read_all(&log))
    };
    assert_eq!(records(&read_all(&log)), expected);
}

#[test]
fn a_write_error_before_the_commit_point_leaves_the_log_as_it_was() {
    use crate::failpoint::{self, Op};
    let tmp = tempfile::tempdir().unwrap();
    let (log, now) = crash_test_log(&tmp.path().join("p"), &compact_config());
    let before = records(&read_all(&log));
    failpoint::reset();
    failpoint::fail_next(Op::CleanedWrite, 1, std::io::ErrorKind::StorageFull);
    let err = log.clean(now, &mut Unthrottled, BUFFER).unwrap_err();
    failpoint::reset();
    assert_eq!(err.kind(), std::io::ErrorKind::StorageFull);
    assert_eq!(records(&read_all(&log)), before);
    assert_eq!(log.cleaner_checkpoint().unwrap(), 0);
    let names: Vec<String> = std::fs::read_dir(log.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| n.contains("cleaned") || n.contains("swap")),
        "{names:?}"
    );
    clean(&log, now).expect("the next pass works");
    assert_ne!(records(&read_all(&log)), before);
}

#[test]
fn an_error_after_the_commit_point_is_finished_before_the_next_change() {
    use crate::failpoint::{self, Op};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    let (log, now) = crash_test_log(&dir, &compact_config());
    let expected = {
        let tmp = tempfile::tempdir().unwrap();
        let (log, now) = crash_test_log(&tmp.path().join("p"), &compact_config());
        clean(&log, now).unwrap();
        records(&read_all(&log))
    };
    // The first removal of the pass is that of a merged segment's file, after the commit.
    failpoint::reset();
    failpoint::fail_next(Op::Remove, 1, std::io::ErrorKind::PermissionDenied);
    let err = log.clean(now, &mut Unthrottled, BUFFER).unwrap_err();
    failpoint::reset();
    assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
    assert!(dir.join("cleaner-swap").exists(), "committed, not finished");
    assert_eq!(
        records(&read_all(&log)),
        expected,
        "readers get the new segments"
    );
    // The next change finishes the swap first.
    log.append(bm(&[&batch_of(NOW, &[keyed("z", Some("1"))])]), now)
        .unwrap();
    assert!(!dir.join("cleaner-swap").exists());
    let mut with_append = expected.clone();
    with_append.extend(
        records(&batch_of(NOW, &[keyed("z", Some("1"))]))
            .into_iter()
            .map(|mut r| {
                r.offset = log.log_end_offset() - 1;
                r
            }),
    );
    assert_eq!(records(&read_all(&log)), with_append);
    drop(log);
    let log = PartitionLog::open(&dir, compact_config(), now).unwrap();
    assert_eq!(records(&read_all(&log)), with_append);
}
