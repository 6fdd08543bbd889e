//! A partition led over PostgreSQL (`PgPartition`), against a real server: the embedded log's
//! produce checks, idempotent producers (a retry answered with its first offsets, a gap and an
//! old epoch refused) across a change of leader, transactions (the last stable offset,
//! read_committed reads, aborted ranges) rebuilt by the next leader from the stored batches,
//! and a leader that lost its lease refused.

mod common;

use std::time::Duration;

use bytes::BytesMut;
use common::batch_at;
use kafka_protocol::records::RecordBatchDecoder;
use starling_log::producer_state::{ProducerError, TxnMarker};
use starling_log::{AppendError, LogConfig};
use starling_postgres::lease::{self, Lease, LeaseKind};
use starling_postgres::partition::{PgAppendError, PgPartition};
use starling_postgres::partition_log;
use starling_postgres::testing::TestPostgres;
use starling_postgres::PgPool;
use uuid::Uuid;

const NOW: i64 = 1_796_428_800_000;
const TTL: Duration = Duration::from_secs(60);

/// One batch of `count` records from `producer` at `epoch`, its first sequence `sequence`.
fn batch(
    producer: i64,
    epoch: i16,
    sequence: i32,
    count: i32,
    transactional: bool,
    tag: &str,
) -> BytesMut {
    batch_at(producer, epoch, sequence, count, transactional, tag, NOW)
}

/// The values of every record in `bytes`, in order.
fn values(bytes: &[u8]) -> Vec<String> {
    let mut buf = bytes::Bytes::copy_from_slice(bytes);
    let mut out = Vec::new();
    while !buf.is_empty() {
        let set = RecordBatchDecoder::decode(&mut buf).expect("a valid stored batch");
        for r in set.records {
            if !r.control {
                out.push(String::from_utf8(r.value.unwrap().to_vec()).unwrap());
            }
        }
    }
    out
}

struct Setup {
    pool: PgPool,
    topic: Uuid,
}

async fn setup(pg: &TestPostgres, database: &str) -> Setup {
    let pool = pg.pool(database, 8).await;
    let topic = Uuid::new_v4();
    let client = pool.get().await.unwrap();
    partition_log::create(&**client, topic, 1).await.unwrap();
    Setup { pool, topic }
}

/// `node` takes the partition's lease (the previous holder's released first, if any) and
/// opens the partition under it.
async fn lead(s: &Setup, node: i32, previous: Option<&Lease>) -> PgPartition {
    let client = s.pool.get().await.unwrap();
    if let Some(previous) = previous {
        lease::release(&**client, previous).await.unwrap();
    }
    let name = partition_log::lease_name(s.topic, 0);
    let lease = lease::acquire(&**client, LeaseKind::Partition, &name, node, TTL)
        .await
        .unwrap()
        .expect("the lease is free");
    PgPartition::open(s.pool.clone(), lease, s.topic, 0)
        .await
        .unwrap()
}

fn refused(result: Result<starling_log::AppendInfo, PgAppendError>) -> ProducerError {
    match result {
        Err(PgAppendError::Refused(AppendError::Producer(e))) => e,
        other => panic!("expected a producer refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_producers_are_deduplicated_and_checked_across_a_change_of_leader() {
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let s = setup(&pg, "idempotent").await;
    let config = LogConfig::default();
    let first = lead(&s, 1, None).await;
    let a = first
        .append(batch(5, 0, 0, 2, false, "a"), &config, NOW)
        .await
        .unwrap();
    assert_eq!((a.base_offset, a.last_offset, a.record_count), (0, 1, 2));
    let b = first
        .append(batch(5, 0, 2, 1, false, "b"), &config, NOW)
        .await
        .unwrap();
    assert_eq!(b.base_offset, 2);
    // The response to `b` was lost: the producer sends it again and gets its offsets back.
    let retried = first
        .append(batch(5, 0, 2, 1, false, "b"), &config, NOW)
        .await
        .unwrap();
    assert_eq!((retried.base_offset, retried.record_count), (2, 0));
    assert!(matches!(
        refused(
            first
                .append(batch(5, 0, 9, 1, false, "gap"), &config, NOW)
                .await
        ),
        ProducerError::OutOfOrder { expected: 3, .. }
    ));
    assert_eq!(first.log_end_offset(), 3);

    // Another node takes over: it knows the producer from the stored batches alone.
    let second = lead(&s, 2, Some(first.lease())).await;
    assert_eq!(second.log_end_offset(), 3);
    let again = second
        .append(batch(5, 0, 2, 1, false, "b"), &config, NOW)
        .await
        .unwrap();
    assert_eq!((again.base_offset, again.record_count), (2, 0));
    let c = second
        .append(batch(5, 0, 3, 1, false, "c"), &config, NOW)
        .await
        .unwrap();
    assert_eq!(c.base_offset, 3);
    // A new epoch of the producer fences the old one.
    second
        .append(batch(5, 1, 0, 1, false, "d"), &config, NOW)
        .await
        .unwrap();
    assert!(matches!(
        refused(
            second
                .append(batch(5, 0, 4, 1, false, "old"), &config, NOW)
                .await
        ),
        ProducerError::InvalidEpoch { current: 1, .. }
    ));

    // The old leader is fenced, whatever it believes.
    let fenced = first
        .append(batch(6, 0, 0, 1, false, "stale"), &config, NOW)
        .await
        .unwrap_err();
    assert!(fenced.is_fenced(), "{fenced:?}");

    let read = second.read(0, usize::MAX, false).await.unwrap();
    assert_eq!(read.high_watermark, 5);
    assert_eq!(values(&read.records), ["a-0", "a-1", "b-0", "c-0", "d-0"]);
    // Each stored batch carries its writer's lease epoch as its partition leader epoch.
    let mut stored = read.records.clone();
    let epochs: Vec<i32> = std::iter::from_fn(|| {
        (!stored.is_empty())
            .then(|| RecordBatchDecoder::decode(&mut stored).unwrap())
            .map(|set| set.records[0].partition_leader_epoch)
    })
    .collect();
    let (e1, e2) = (first.lease().epoch as i32, second.lease().epoch as i32);
    assert!(e2 > e1);
    assert_eq!(epochs, [e1, e1, e2, e2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_bound_read_committed_and_the_next_leader_rebuilds_them() {
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let s = setup(&pg, "transactions").await;
    let config = LogConfig::default();
    let leader = lead(&s, 1, None).await;
    leader
        .append(batch(-1, -1, -1, 1, false, "plain"), &config, NOW)
        .await
        .unwrap();
    // Producer 9's transaction opens at offset 1; producer 10's at 3.
    leader
        .append(batch(9, 0, 0, 2, true, "t9"), &config, NOW)
        .await
        .unwrap();
    leader
        .append(batch(10, 0, 0, 1, true, "t10"), &config, NOW)
        .await
        .unwrap();
    assert!(leader.has_open_transaction(9));
    assert_eq!(leader.last_stable_offset(), 1);
    let committed = leader.read(0, usize::MAX, true).await.unwrap();
    assert_eq!(values(&committed.records), ["plain-0"]);
    assert_eq!(committed.last_stable_offset, 1);
    // A plain batch from a producer inside its transaction is refused.
    assert!(matches!(
        refused(
            leader
                .append(batch(9, 0, 2, 1, false, "plain"), &config, NOW)
                .await
        ),
        ProducerError::InvalidTxnState { producer_id: 9 }
    ));

    // 9 aborts, 10 commits.
    let abort = TxnMarker {
        producer_id: 9,
        epoch: 0,
        commit: false,
        coordinator_epoch: 0,
    };
    let written = leader.write_txn_marker(abort, NOW).await.unwrap().unwrap();
    assert_eq!(written.base_offset, 4);
    assert!(leader.write_txn_marker(abort, NOW).await.unwrap().is_none());
    assert_eq!(leader.last_stable_offset(), 3);
    let commit = TxnMarker {
        producer_id: 10,
        epoch: 0,
        commit: true,
        coordinator_epoch: 0,
    };
    leader.write_txn_marker(commit, NOW).await.unwrap().unwrap();
    assert_eq!(leader.last_stable_offset(), 6);

    let check = |p: &PgPartition| {
        assert_eq!(p.last_stable_offset(), 6);
        assert!(!p.has_open_transaction(9));
        assert!(!p.has_open_transaction(10));
    };
    check(&leader);
    let next = lead(&s, 2, Some(leader.lease())).await;
    check(&next);
    let read = next.read(0, usize::MAX, true).await.unwrap();
    assert_eq!(values(&read.records), ["plain-0", "t9-0", "t9-1", "t10-0"]);
    assert_eq!(read.aborted_transactions.len(), 1);
    let aborted = read.aborted_transactions[0];
    assert_eq!(
        (
            aborted.producer_id,
            aborted.first_offset,
            aborted.last_offset
        ),
        (9, 1, 4)
    );
    // Reading past the aborted range lists it no more.
    assert!(next
        .read(5, usize::MAX, true)
        .await
        .unwrap()
        .aborted_transactions
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_set_is_checked_as_the_embedded_log_checks_it() {
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let s = setup(&pg, "checks").await;
    let leader = lead(&s, 1, None).await;
    let mut corrupt = batch(-1, -1, -1, 1, false, "x");
    let last = corrupt.len() - 2;
    corrupt[last] ^= 0xff;
    let config = LogConfig::default();
    assert!(matches!(
        leader.append(corrupt, &config, NOW).await,
        Err(PgAppendError::Refused(AppendError::Corrupt(_)))
    ));
    let small = LogConfig {
        max_message_bytes: 64,
        ..LogConfig::default()
    };
    assert!(matches!(
        leader
            .append(batch(-1, -1, -1, 5, false, "large"), &small, NOW)
            .await,
        Err(PgAppendError::Refused(AppendError::TooLarge { .. }))
    ));
    // Under LogAppendTime the broker's clock is written into the batch.
    let append_time = LogConfig {
        timestamp_type: starling_log::TimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let stamped = leader
        .append(batch(-1, -1, -1, 1, false, "t"), &append_time, NOW + 5)
        .await
        .unwrap();
    assert_eq!(stamped.log_append_time, NOW + 5);
    let read = leader.read(0, usize::MAX, false).await.unwrap();
    let mut bytes = read.records.clone();
    let set = RecordBatchDecoder::decode(&mut bytes).unwrap();
    assert_eq!(set.records[0].timestamp, NOW + 5);
    assert_eq!(leader.log_end_offset(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_database_comes_back_the_leader_rebuilds_its_state_and_loses_nothing() {
    let Some(mut pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let s = setup(&pg, "restart").await;
    let config = LogConfig::default();
    let leader = lead(&s, 1, None).await;
    leader
        .append(batch(5, 0, 0, 2, false, "a"), &config, NOW)
        .await
        .unwrap();
    pg.kill();
    let failed = leader
        .append(batch(5, 0, 2, 1, false, "b"), &config, NOW)
        .await
        .unwrap_err();
    assert!(
        matches!(failed, PgAppendError::Storage(_)) && !failed.is_fenced(),
        "{failed:?}"
    );
    pg.start_again().unwrap();
    // The producer retries `b` until the database answers; the leader builds its state again
    // from what was stored, so `b` goes in once, right after `a`.
    let mut stored = None;
    for _ in 0..100 {
        match leader
            .append(batch(5, 0, 2, 1, false, "b"), &config, NOW)
            .await
        {
            Ok(info) => {
                stored = Some(info);
                break;
            }
            Err(e) => {
                assert!(!e.is_fenced(), "{e:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let stored = stored.expect("the database came back");
    assert_eq!((stored.base_offset, stored.record_count), (2, 1));
    let retried = leader
        .append(batch(5, 0, 2, 1, false, "b"), &config, NOW)
        .await
        .unwrap();
    assert_eq!((retried.base_offset, retried.record_count), (2, 0));
    let read = leader.read(0, usize::MAX, false).await.unwrap();
    assert_eq!(values(&read.records), ["a-0", "a-1", "b-0"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_delete_records_and_timestamp_and_epoch_lookups() {
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let s = setup(&pg, "retention").await;
    let config = LogConfig::default();
    let first = lead(&s, 1, None).await;
    // Offsets 0-1 at NOW-10s, 2-3 at NOW-5s, 4-5 at NOW, then a new leader writes 6-7.
    for (i, age) in [10_000, 5_000, 0].into_iter().enumerate() {
        first
            .append(
                batch_at(-1, -1, -1, 2, false, &format!("b{i}"), NOW - age),
                &config,
                NOW,
            )
            .await
            .unwrap();
    }
    let second = lead(&s, 2, Some(first.lease())).await;
    second
        .append(batch_at(-1, -1, -1, 2, false, "b3", NOW + 10), &config, NOW)
        .await
        .unwrap();
    let size = second.size_bytes();
    assert!(size > 0);

    // Timestamps: the first record at or after, and the newest batch.
    assert_eq!(
        second.offset_for_timestamp(NOW - 5_000 + 1).await.unwrap(),
        Some((3, NOW - 5_000 + 1))
    );
    assert_eq!(second.offset_for_timestamp(NOW + 100).await.unwrap(), None);
    assert_eq!(second.max_timestamp().await.unwrap(), Some((NOW + 11, 7)));

    // Leader epochs: the first leader's ends where the second took over.
    let (e1, e2) = (first.lease().epoch as i32, second.lease().epoch as i32);
    assert_eq!(second.epoch_end_offset(e1).await.unwrap(), Some((e1, 6)));
    assert_eq!(second.epoch_end_offset(e2).await.unwrap(), Some((e2, 8)));
    assert_eq!(
        second.epoch_end_offset(e2 + 5).await.unwrap(),
        Some((e2, 8))
    );
    assert_eq!(second.epoch_end_offset(e1 - 1).await.unwrap(), None);

    // retention.ms of 6 s: only the batch from 10 s ago goes.
    let by_time = LogConfig {
        retention_ms: Some(6_000),
        ..LogConfig::default()
    };
    assert_eq!(second.enforce_retention(&by_time, NOW, 1).await.unwrap(), 1);
    assert_eq!(second.log_start_offset(), 2);
    assert!(second.size_bytes() < size);
    assert!(matches!(
        second.read(0, usize::MAX, false).await,
        Err(starling_postgres::partition_log::PartitionLogError::OffsetOutOfRange { .. })
    ));
    // retention.bytes of two batches: one more goes, two stay.
    let one_batch = second.size_bytes() / 3;
    let by_size = LogConfig {
        retention_bytes: Some(one_batch * 2),
        ..LogConfig::default()
    };
    assert_eq!(second.enforce_retention(&by_size, NOW, 1).await.unwrap(), 1);
    assert_eq!(second.log_start_offset(), 4);
    assert_eq!(second.enforce_retention(&by_size, NOW, 1).await.unwrap(), 0);
    // A policy that does not delete deletes nothing.
    let compacted = LogConfig {
        cleanup_policy: starling_log::CleanupPolicy::Compact,
        retention_ms: Some(0),
        ..LogConfig::default()
    };
    assert_eq!(
        second.enforce_retention(&compacted, NOW, 1).await.unwrap(),
        0
    );

    // DeleteRecords inside a batch: the start moves there; never back; never past the end.
    assert_eq!(second.delete_records_before(5, 10).await.unwrap(), 5);
    assert_eq!(second.delete_records_before(1, 10).await.unwrap(), 5);
    let read = second.read(5, usize::MAX, false).await.unwrap();
    assert_eq!(read.log_start_offset, 5);
    assert_eq!(values(&read.records), ["b2-0", "b2-1", "b3-0", "b3-1"]);
    assert_eq!(second.delete_records_before(99, 10).await.unwrap(), 8);
    assert_eq!(second.size_bytes(), 0);
    // The next leader reads the same bounds.
    let third = lead(&s, 3, Some(second.lease())).await;
    assert_eq!((third.log_start_offset(), third.log_end_offset()), (8, 8));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_shorten_the_replay_and_keep_producers_whose_batches_were_deleted() {
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let s = setup(&pg, "snapshots").await;
    let config = LogConfig::default();
    let first = lead(&s, 1, None).await;
    first
        .append(batch(5, 0, 0, 2, false, "a"), &config, NOW)
        .await
        .unwrap();
    assert_eq!(first.offsets_since_snapshot(), 2);
    assert_eq!(first.snapshot().await.unwrap(), 2);
    assert_eq!(first.offsets_since_snapshot(), 0);
    first
        .append(batch(5, 0, 2, 1, false, "b"), &config, NOW)
        .await
        .unwrap();
    first
        .append(batch(7, 0, 0, 1, false, "c"), &config, NOW)
        .await
        .unwrap();
    assert_eq!(first.offsets_since_snapshot(), 2);
    // The next leader starts from the snapshot and replays `b` and `c`: both producers known,
    // and it knows how far its replay went.
    let second = lead(&s, 2, Some(first.lease())).await;
    assert_eq!(second.offsets_since_snapshot(), 2);
    let retried = second
        .append(batch(5, 0, 2, 1, false, "b"), &config, NOW)
        .await
        .unwrap();
    assert_eq!((retried.base_offset, retried.record_count), (2, 0));
    assert!(matches!(
        refused(
            second
                .append(batch(7, 0, 5, 1, false, "gap"), &config, NOW)
                .await
        ),
        ProducerError::OutOfOrder { expected: 1, .. }
    ));
    // Everything is deleted; a snapshot taken first keeps producer 5, so the next leader
    // still answers its retry with the old offsets and still checks its sequence.
    assert_eq!(second.delete_records_before(4, 10).await.unwrap(), 4);
    let third = lead(&s, 3, Some(second.lease())).await;
    assert_eq!(third.log_start_offset(), 4);
    let retried = third
        .append(batch(5, 0, 2, 1, false, "b"), &config, NOW)
        .await
        .unwrap();
    assert_eq!((retried.base_offset, retried.record_count), (2, 0));
    assert!(matches!(
        refused(
            third
                .append(batch(5, 0, 7, 1, false, "gap"), &config, NOW)
                .await
        ),
        ProducerError::OutOfOrder { expected: 3, .. }
    ));
    // Only the newest two snapshots are kept.
    third.snapshot().await.unwrap();
    third
        .append(batch(5, 0, 3, 1, false, "d"), &config, NOW)
        .await
        .unwrap();
    third.snapshot().await.unwrap();
    let client = s.pool.get().await.unwrap();
    let offsets: Vec<i64> = client
        .query(
            "SELECT snapshot_offset FROM producer_snapshots WHERE topic_id = $1
             ORDER BY snapshot_offset",
            &[&s.topic],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(offsets, [4, 5]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_snapshot_is_passed_over_and_the_batches_replayed() {
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let s = setup(&pg, "damaged").await;
    let config = LogConfig::default();
    let first = lead(&s, 1, None).await;
    first
        .append(batch(5, 0, 0, 2, false, "a"), &config, NOW)
        .await
        .unwrap();
    first.snapshot().await.unwrap();
    let client = s.pool.get().await.unwrap();
    client
        .execute(
            "UPDATE producer_snapshots SET state = substring(state from 1 for 10)",
            &[],
        )
        .await
        .unwrap();
    let second = lead(&s, 2, Some(first.lease())).await;
    let retried = second
        .append(batch(5, 0, 0, 2, false, "a"), &config, NOW)
        .await
        .unwrap();
    assert_eq!((retried.base_offset, retried.record_count), (0, 0));
}
