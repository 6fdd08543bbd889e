//! Transactions in one partition: transactional batches hold the last stable offset until the
//! coordinator's marker closes their transaction; read_committed reads stop there and list the
//! aborted ranges; markers are control batches as Kafka stores them; all of it comes back
//! after the log is opened again, from a snapshot or from the batches.

use super::idempotence::{append, produced};
use super::support::*;
use crate::producer_state::{AbortedTxn, ProducerError, TxnMarker};
use crate::{AppendError, Isolation, LogConfig, PartitionLog};

/// `produced` with the transactional attribute set.
fn transactional(pid: i64, epoch: i16, seq: i32, n: usize) -> Vec<u8> {
    let mut b = produced(pid, epoch, seq, n);
    let attributes = i16::from_be_bytes([b[21], b[22]]) | 0x10;
    b[21..23].copy_from_slice(&attributes.to_be_bytes());
    fix_crc(&mut b);
    b
}

fn marker(pid: i64, epoch: i16, commit: bool) -> TxnMarker {
    TxnMarker {
        producer_id: pid,
        epoch,
        commit,
        coordinator_epoch: 0,
    }
}

fn committed_values(log: &PartitionLog) -> (Vec<Vec<u8>>, Vec<AbortedTxn>, i64) {
    let read = log
        .read_isolated(
            log.log_start_offset(),
            1 << 20,
            true,
            Isolation::ReadCommitted,
        )
        .unwrap();
    let values = decode(&read.records).into_iter().map(|d| d.value).collect();
    (values, read.aborted_transactions, read.last_stable_offset)
}

#[test]
fn an_open_transaction_holds_the_last_stable_offset_until_its_commit() {
    let (_tmp, log) = open_log(config());
    append(&log, &batch(NOW, &[b"before"])).unwrap();
    append(&log, &transactional(7, 0, 0, 2)).unwrap();
    append(&log, &batch(NOW, &[b"after"])).unwrap();
    assert_eq!(log.log_end_offset(), 4);
    assert_eq!(log.last_stable_offset(), 1);
    assert!(log.has_open_transaction(7));
    let (values, aborted, lso) = committed_values(&log);
    assert_eq!(values, vec![b"before".to_vec()]);
    assert!(aborted.is_empty());
    assert_eq!(lso, 1);
    // read_uncommitted reads it all.
    assert_eq!(decode(&read_all(&log)).len(), 4);

    let info = log
        .write_txn_marker(marker(7, 0, true), NOW)
        .unwrap()
        .unwrap();
    assert_eq!(info.base_offset, 4, "the marker takes one offset");
    assert_eq!(log.log_end_offset(), 5);
    assert_eq!(log.last_stable_offset(), 5);
    assert!(!log.has_open_transaction(7));
    let read = log
        .read_isolated(0, 1 << 20, true, Isolation::ReadCommitted)
        .unwrap();
    let stored = split(&read.records);
    assert_eq!(stored.len(), 4, "three batches and the marker");
    let control = stored.last().unwrap();
    assert!(control.crc_ok);
    assert_eq!(
        control.attributes & 0x30,
        0x30,
        "transactional control batch"
    );
    assert!(read.aborted_transactions.is_empty());
}

#[test]
fn active_producers_and_the_open_count_follow_a_transaction() {
    let (_tmp, log) = open_log(config());
    append(&log, &batch(NOW, &[b"before"])).unwrap();
    append(&log, &transactional(7, 0, 0, 2)).unwrap();
    assert_eq!(log.open_transaction_count(), 1);
    let producers = log.active_producers();
    assert_eq!(producers.len(), 1, "{producers:?}");
    assert_eq!(producers[0].producer_id, 7);
    assert_eq!(producers[0].last_sequence, 1);
    assert_eq!(producers[0].current_txn_start_offset, Some(1));

    log.write_txn_marker(marker(7, 0, true), NOW).unwrap();
    assert_eq!(log.open_transaction_count(), 0);
    assert_eq!(log.active_producers()[0].current_txn_start_offset, None);
}

#[test]
fn an_aborted_transaction_is_listed_for_read_committed_readers() {
    let (_tmp, log) = open_log(config());
    append(&log, &transactional(7, 0, 0, 3)).unwrap();
    append(&log, &transactional(8, 0, 0, 1)).unwrap();
    log.write_txn_marker(marker(7, 0, false), NOW)
        .unwrap()
        .unwrap();
    // Producer 8 still holds the stable offset at 3.
    assert_eq!(log.last_stable_offset(), 3);
    log.write_txn_marker(marker(8, 0, true), NOW)
        .unwrap()
        .unwrap();
    assert_eq!(log.last_stable_offset(), 6);
    let (_, aborted, _) = committed_values(&log);
    assert_eq!(
        aborted,
        vec![AbortedTxn {
            producer_id: 7,
            first_offset: 0,
            last_offset: 4,
        }]
    );
    // A read from past the abort does not list it.
    let later = log
        .read_isolated(5, 1 << 20, true, Isolation::ReadCommitted)
        .unwrap();
    assert!(later.aborted_transactions.is_empty());
    // read_uncommitted lists nothing.
    let plain = log.read(0, 1 << 20, true).unwrap();
    assert!(plain.aborted_transactions.is_empty());
}

#[test]
fn a_marker_with_no_open_transaction_writes_nothing() {
    let (_tmp, log) = open_log(config());
    assert_eq!(log.write_txn_marker(marker(7, 0, true), NOW).unwrap(), None);
    append(&log, &transactional(7, 0, 0, 1)).unwrap();
    log.write_txn_marker(marker(7, 0, true), NOW)
        .unwrap()
        .unwrap();
    // Repeated (a coordinator finishing its jobs again after a restart).
    assert_eq!(log.write_txn_marker(marker(7, 0, true), NOW).unwrap(), None);
    assert_eq!(log.log_end_offset(), 2);
}

#[test]
fn a_marker_from_an_older_epoch_than_the_producers_is_not_written() {
    let (_tmp, log) = open_log(config());
    append(&log, &transactional(7, 3, 0, 1)).unwrap();
    assert_eq!(
        log.write_txn_marker(marker(7, 2, false), NOW).unwrap(),
        None
    );
    assert!(log.has_open_transaction(7));
}

#[test]
fn a_plain_batch_inside_an_open_transaction_is_an_invalid_txn_state() {
    let (_tmp, log) = open_log(config());
    append(&log, &transactional(7, 0, 0, 1)).unwrap();
    let err = append(&log, &produced(7, 0, 1, 1)).unwrap_err();
    assert!(matches!(
        err,
        AppendError::Producer(ProducerError::InvalidTxnState { producer_id: 7 })
    ));
    assert_eq!(log.log_end_offset(), 1);
}

#[test]
fn a_fencing_abort_bumps_the_epoch_so_the_old_producer_is_refused() {
    let (_tmp, log) = open_log(config());
    append(&log, &transactional(7, 0, 0, 2)).unwrap();
    log.write_txn_marker(marker(7, 1, false), NOW)
        .unwrap()
        .unwrap();
    let zombie = append(&log, &transactional(7, 0, 2, 1)).unwrap_err();
    assert!(matches!(
        zombie,
        AppendError::Producer(ProducerError::InvalidEpoch { current: 1, .. })
    ));
    // The next epoch the coordinator hands out starts its sequences at 0.
    assert!(append(&log, &transactional(7, 2, 5, 1)).is_err());
    append(&log, &transactional(7, 2, 0, 1)).unwrap();
}

#[test]
fn a_transactional_batch_without_a_producer_id_is_an_invalid_record() {
    let (_tmp, log) = open_log(config());
    let mut b = batch(NOW, &[b"x"]);
    b[21..23].copy_from_slice(&0x10i16.to_be_bytes());
    fix_crc(&mut b);
    assert!(matches!(
        log.append(bm(&[&b]), NOW),
        Err(AppendError::InvalidRecord { .. })
    ));
}

/// Writes an aborted transaction (0..=3, marker at 3), a committed one (4..=5, marker 6) and
/// an open one from offset 7 across small segments.
fn transactional_history(log: &PartitionLog) {
    append(log, &transactional(7, 0, 0, 3)).unwrap();
    log.write_txn_marker(marker(7, 0, false), NOW)
        .unwrap()
        .unwrap();
    append(log, &transactional(8, 0, 0, 2)).unwrap();
    log.write_txn_marker(marker(8, 0, true), NOW)
        .unwrap()
        .unwrap();
    append(log, &transactional(9, 0, 0, 1)).unwrap();
}

fn assert_history(log: &PartitionLog) {
    assert_eq!(log.last_stable_offset(), 7);
    assert!(log.has_open_transaction(9));
    assert!(!log.has_open_transaction(7));
    let (values, aborted, _) = committed_values(log);
    // Everything below the stable offset is fetched (aborted records and markers included:
    // the client skips them).
    assert_eq!(values.len(), 7);
    assert_eq!(
        aborted,
        vec![AbortedTxn {
            producer_id: 7,
            first_offset: 0,
            last_offset: 3,
        }]
    );
    // The marker for the open transaction is still to come, and lands.
    log.write_txn_marker(marker(9, 0, true), NOW)
        .unwrap()
        .unwrap();
    assert_eq!(log.last_stable_offset(), log.log_end_offset());
}

#[test]
fn transactions_come_back_from_the_snapshot_after_a_clean_close() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p0");
    let log = PartitionLog::open(&dir, config(), NOW).unwrap();
    transactional_history(&log);
    log.close().unwrap();
    drop(log);
    let log = PartitionLog::open(&dir, config(), NOW).unwrap();
    assert_eq!(
        log.producer_state_load().headers_read,
        0,
        "all from the snapshot"
    );
    assert_history(&log);
}

#[test]
fn transactions_come_back_from_the_batches_after_a_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p0");
    // Small segments: the history spans several, with roll snapshots in between.
    let config = LogConfig {
        segment_bytes: 150,
        ..config()
    };
    let log = PartitionLog::open(&dir, config.clone(), NOW).unwrap();
    transactional_history(&log);
    log.flush().unwrap();
    drop(log); // no close: no snapshot at the end
    let log = PartitionLog::open(&dir, config, NOW).unwrap();
    assert!(log.producer_state_load().headers_read > 0);
    assert_history(&log);
}

#[test]
fn a_marker_is_fsynced_before_it_counts_as_written() {
    // Under a flush policy that never fsyncs on its own, the marker still is: the coordinator
    // counts the transaction complete once the marker is written. A failing fsync fails the
    // marker and leaves the transaction open and the log as it was.
    use crate::failpoint::{self, Op};
    use std::io::ErrorKind;
    let (_tmp, log) = open_log(LogConfig {
        flush_interval_messages: u64::MAX,
        flush_interval_ms: None,
        ..config()
    });
    append(&log, &transactional(7, 0, 0, 1)).unwrap();
    failpoint::fail_next(Op::SegmentSync, 1, ErrorKind::Other);
    assert!(log.write_txn_marker(marker(7, 0, true), NOW).is_err());
    failpoint::reset();
    assert!(log.has_open_transaction(7));
    assert_eq!(log.log_end_offset(), 1);
    log.write_txn_marker(marker(7, 0, true), NOW)
        .unwrap()
        .unwrap();
    assert_eq!(log.last_stable_offset(), 2);
}
