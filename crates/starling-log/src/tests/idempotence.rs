//! Idempotent producers' batches through the log: a retry gets its first offsets back and
//! writes nothing, a gap or an old epoch is refused, and all of it holds after the log is
//! opened again (the producer state is read back from the stored batches). Its snapshots are
//! in `producer_snapshots`.

use super::support::*;
use crate::producer_state::ProducerError;
use crate::{AppendError, LogConfig, PartitionLog};

/// A batch of `n` records from producer `pid` at `epoch` starting at sequence `seq`.
pub(super) fn produced(pid: i64, epoch: i16, seq: i32, n: usize) -> Vec<u8> {
    let values = values(&format!("p{pid}-e{epoch}-s{seq}-"), n);
    let mut b = batch(NOW, &refs(&values));
    b[43..51].copy_from_slice(&pid.to_be_bytes());
    b[51..53].copy_from_slice(&epoch.to_be_bytes());
    b[53..57].copy_from_slice(&seq.to_be_bytes());
    fix_crc(&mut b);
    b
}

pub(super) fn append(log: &PartitionLog, b: &[u8]) -> Result<crate::AppendInfo, AppendError> {
    log.append(bm(&[b]), NOW)
}

#[test]
fn a_retried_batch_gets_its_original_offsets_and_is_not_written_again() {
    let (_tmp, log) = open_log(config());
    let first = append(&log, &produced(7, 0, 0, 3)).unwrap();
    let second = append(&log, &produced(7, 0, 3, 2)).unwrap();
    assert_eq!((first.base_offset, second.base_offset), (0, 3));
    let retry = append(&log, &produced(7, 0, 0, 3)).unwrap();
    assert_eq!(
        (retry.base_offset, retry.last_offset, retry.record_count),
        (0, 2, 0)
    );
    assert_eq!(log.log_end_offset(), 5);
    // Other producers and plain batches are unaffected.
    assert_eq!(append(&log, &produced(8, 0, 0, 1)).unwrap().base_offset, 5);
    assert_eq!(
        append(&log, &batch(NOW, &[b"plain"])).unwrap().base_offset,
        6
    );
    assert_eq!(log.producer_count(), 2);
}

#[test]
fn a_gap_is_out_of_order_and_an_older_epoch_is_refused_and_nothing_is_written() {
    let (_tmp, log) = open_log(config());
    append(&log, &produced(7, 2, 0, 3)).unwrap();
    let gap = append(&log, &produced(7, 2, 5, 1)).unwrap_err();
    assert!(matches!(
        gap,
        AppendError::Producer(ProducerError::OutOfOrder { expected: 3, .. })
    ));
    let fenced = append(&log, &produced(7, 1, 3, 1)).unwrap_err();
    assert!(matches!(
        fenced,
        AppendError::Producer(ProducerError::InvalidEpoch { current: 2, .. })
    ));
    assert_eq!(log.log_end_offset(), 3);
    // A new epoch starts at sequence 0.
    assert!(append(&log, &produced(7, 3, 3, 1)).is_err());
    assert_eq!(append(&log, &produced(7, 3, 0, 1)).unwrap().base_offset, 3);
}

#[test]
fn the_producer_state_is_read_back_when_the_log_is_opened_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p0");
    // Small segments, so the batches span several.
    let config = LogConfig {
        segment_bytes: 300,
        ..config()
    };
    {
        let log = PartitionLog::open(&dir, config.clone(), NOW).unwrap();
        for i in 0..8 {
            append(&log, &produced(7, 0, i * 2, 2)).unwrap();
        }
        append(&log, &batch(NOW, &[b"plain"])).unwrap();
        assert!(log.segment_count() > 2);
        log.close().unwrap();
    }
    let log = PartitionLog::open(&dir, config, NOW).unwrap();
    assert_eq!(log.producer_count(), 1);
    // The last five batches are still known: a retry after the restart is not written twice.
    let retry = append(&log, &produced(7, 0, 12, 2)).unwrap();
    assert_eq!((retry.base_offset, retry.record_count), (12, 0));
    assert!(matches!(
        append(&log, &produced(7, 0, 20, 1)),
        Err(AppendError::Producer(ProducerError::OutOfOrder {
            expected: 16,
            ..
        }))
    ));
    assert_eq!(
        append(&log, &produced(7, 0, 16, 1)).unwrap().base_offset,
        17
    );
}

#[test]
fn producers_are_forgotten_after_the_expiration() {
    let (_tmp, log) = open_log(config());
    append(&log, &produced(7, 0, 0, 1)).unwrap();
    assert_eq!(log.expire_producers(NOW + 999, 1_000), 0);
    assert_eq!(log.expire_producers(NOW + 1_000, 1_000), 1);
    // Unknown again, it may go on at any sequence.
    assert!(append(&log, &produced(7, 0, 40, 1)).is_ok());
}

#[test]
fn control_batches_negative_sequences_and_several_idempotent_batches_are_refused() {
    let (_tmp, log) = open_log(config());
    let mut control = batch(NOW, &[b"marker"]);
    control[21..23].copy_from_slice(&0x20i16.to_be_bytes());
    fix_crc(&mut control);
    let refused = append(&log, &control).unwrap_err();
    assert!(
        matches!(&refused, AppendError::InvalidRecord { message, .. } if message.contains("control")),
        "{refused}"
    );
    let negative = append(&log, &produced(7, 0, -1, 1)).unwrap_err();
    assert!(matches!(negative, AppendError::InvalidRecord { .. }));
    let two = log
        .append(bm(&[&produced(7, 0, 0, 1), &produced(7, 0, 1, 1)]), NOW)
        .unwrap_err();
    assert!(matches!(two, AppendError::InvalidRecord { .. }), "{two}");
    assert_eq!(log.log_end_offset(), 0);
    // Several plain batches still go together.
    let plain = batch(NOW, &[b"a"]);
    assert_eq!(
        log.append(bm(&[&plain, &plain]), NOW).unwrap().record_count,
        2
    );
}
