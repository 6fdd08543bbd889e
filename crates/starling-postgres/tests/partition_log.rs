//! Partition logs in a real PostgreSQL: dense offsets under concurrent appends, stored batches
//! that decode with the offsets and epoch written in, an append from a node that lost the
//! partition refused, notifications only for committed appends, reads by offset and byte
//! budget, and retention in chunks.

mod common;

use std::time::Duration;

use bytes::BytesMut;
use common::batch_at;
use kafka_protocol::records::RecordBatchDecoder;
use starling_log::prepared::PreparedAppend;
use starling_log::LogConfig;
use starling_postgres::lease::{self, Lease, LeaseError, LeaseKind};
use starling_postgres::notify::{Event, Listener};
use starling_postgres::partition_log::{self, Appended, PartitionLogError};
use starling_postgres::testing::TestPostgres;
use starling_postgres::PgPool;
use uuid::Uuid;

const LONG: Duration = Duration::from_secs(60);

/// A v2 batch of `count` records "{tag}-0".. without a producer, as sent (base offset 0).
fn batch(count: i32, tag: &str) -> Vec<u8> {
    batch_at(-1, -1, -1, count, false, tag, 1_796_428_800_000).to_vec()
}

/// Appends `batches` as a producer sent them, checked as the broker checks a produce request.
async fn append(
    client: &mut starling_postgres::PgClient,
    lease: &Lease,
    topic: Uuid,
    partition: i32,
    batches: &[Vec<u8>],
) -> Result<Appended, PartitionLogError> {
    let records = BytesMut::from(&batches.concat()[..]);
    let prepared = PreparedAppend::prepare(records, &LogConfig::default(), "", 1_796_428_800_000)
        .map_err(|e| PartitionLogError::BadBatch {
        index: 0,
        reason: e.to_string(),
    })?;
    partition_log::append(client, lease, topic, partition, prepared, None)
        .await
        .map(|(appended, _)| appended)
}

/// Every record in `bytes` as (offset, value), checking each batch's CRC.
fn decode(bytes: &[u8]) -> Vec<(i64, String)> {
    let mut buf = bytes::Bytes::copy_from_slice(bytes);
    let mut out = Vec::new();
    while !buf.is_empty() {
        let set = RecordBatchDecoder::decode(&mut buf).expect("a valid stored batch");
        for r in set.records {
            out.push((
                r.offset,
                String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
            ));
        }
    }
    out
}

struct Setup {
    pool: PgPool,
    topic: Uuid,
    lease: Lease,
}

async fn setup(pg: &TestPostgres, database: &str, partitions: i32) -> Setup {
    let pool = pg.pool(database, 16).await;
    let topic = Uuid::new_v4();
    let client = pool.get().await.unwrap();
    partition_log::create(&**client, topic, partitions)
        .await
        .unwrap();
    let lease = lease::acquire(
        &**client,
        LeaseKind::Partition,
        &partition_log::lease_name(topic, 0),
        1,
        LONG,
    )
    .await
    .unwrap()
    .unwrap();
    Setup { pool, topic, lease }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_get_dense_offsets_and_the_stored_batches_decode_with_them() {
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let s = setup(&pg, "dense", 1).await;
    let appenders: Vec<_> = (0..8)
        .map(|task| {
            let (pool, lease, topic) = (s.pool.clone(), s.lease.clone(), s.topic);
            tokio::spawn(async move {
                let mut ranges = Vec::new();
                for round in 0..10 {
                    let mut client = pool.get().await.unwrap();
                    let count = 1 + (task + round) % 4;
                    let appended = append(
                        &mut client,
                        &lease,
                        topic,
                        0,
                        &[batch(count, &format!("t{task}r{round}"))],
                    )
                    .await
                    .unwrap();
                    assert_eq!(
                        appended.last_offset - appended.base_offset + 1,
                        i64::from(count)
                    );
                    ranges.push((appended.base_offset, appended.last_offset));
                }
                ranges
            })
        })
        .collect();
    let mut ranges = Vec::new();
    for a in appenders {
        ranges.extend(a.await.unwrap());
    }
    ranges.sort();
    // The ranges tile 0..total with no gap and no overlap.
    let mut next = 0;
    for (base, last) in &ranges {
        assert_eq!(*base, next, "{ranges:?}");
        next = last + 1;
    }
    let client = s.pool.get().await.unwrap();
    let read = partition_log::read(&**client, s.topic, 0, 0, i64::MAX, usize::MAX)
        .await
        .unwrap();
    assert_eq!(read.next_offset, next);
    let records = decode(&read.records);
    assert_eq!(records.len() as i64, next);
    for (i, (offset, _)) in records.iter().enumerate() {
        assert_eq!(*offset, i as i64);
    }
    // The lease epoch is each batch's partition leader epoch.
    assert_eq!(&read.records[12..16], &1i32.to_be_bytes());
}

#[tokio::test]
async fn a_node_that_lost_the_partition_cannot_append_and_offsets_are_never_reused() {
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let s = setup(&pg, "fenced", 1).await;
    let mut client = s.pool.get().await.unwrap();
    append(&mut client, &s.lease, s.topic, 0, &[batch(3, "old")])
        .await
        .unwrap();
    lease::release(&**client, &s.lease).await.unwrap();
    let new = lease::acquire(&**client, LeaseKind::Partition, &s.lease.name, 2, LONG)
        .await
        .unwrap()
        .unwrap();
    let refused = append(&mut client, &s.lease, s.topic, 0, &[batch(2, "stale")]).await;
    assert!(
        matches!(
            refused,
            Err(PartitionLogError::Lease(LeaseError::Fenced {
                owner: 1,
                ..
            }))
        ),
        "{refused:?}"
    );
    let appended = append(&mut client, &new, s.topic, 0, &[batch(2, "new")])
        .await
        .unwrap();
    assert_eq!((appended.base_offset, appended.last_offset), (3, 4));
    let read = partition_log::read(&**client, s.topic, 0, 0, i64::MAX, usize::MAX)
        .await
        .unwrap();
    let values: Vec<String> = decode(&read.records).into_iter().map(|(_, v)| v).collect();
    assert_eq!(values, ["old-0", "old-1", "old-2", "new-0", "new-1"]);
    // A lease of another partition, or a group lease, does not do.
    let other = lease::acquire(
        &**client,
        LeaseKind::Partition,
        &partition_log::lease_name(s.topic, 1),
        2,
        LONG,
    )
    .await
    .unwrap()
    .unwrap();
    assert!(matches!(
        append(&mut client, &other, s.topic, 0, &[batch(1, "x")]).await,
        Err(PartitionLogError::WrongLease(_))
    ));
}

#[tokio::test]
async fn listeners_hear_of_committed_appends_only() {
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let s = setup(&pg, "notify", 1).await;
    let url = pg.url_for("notify");
    let mut listener = Listener::connect(&url).await.unwrap();
    let mut client = s.pool.get().await.unwrap();
    append(&mut client, &s.lease, s.topic, 0, &[batch(2, "a")])
        .await
        .unwrap();
    assert_eq!(
        listener.next(Duration::from_secs(10)).await,
        Some(Event::Appended(s.topic, 0, 2))
    );
    // A refused append (a batch that is not one) notifies nothing.
    assert!(append(&mut client, &s.lease, s.topic, 0, &[vec![0u8; 10]])
        .await
        .is_err());
    lease::release(&**client, &s.lease).await.unwrap();
    assert!(append(&mut client, &s.lease, s.topic, 0, &[batch(1, "b")])
        .await
        .is_err());
    assert_eq!(listener.next(Duration::from_millis(500)).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_connects_again_after_a_database_restart_and_says_so() {
    let Some(mut pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let s = setup(&pg, "relisten", 1).await;
    let url = pg.url_for("relisten");
    let mut listener = Listener::connect(&url).await.unwrap();
    pg.kill();
    pg.start_again().unwrap();
    assert_eq!(
        listener.next(Duration::from_secs(30)).await,
        Some(Event::Reconnected)
    );
    // The pool reconnects too; the next append is heard.
    let mut appended = None;
    for _ in 0..50 {
        let Ok(mut client) = s.pool.get().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        match append(&mut client, &s.lease, s.topic, 0, &[batch(1, "after")]).await {
            Ok(a) => {
                appended = Some(a);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let appended = appended.expect("the database came back");
    assert_eq!(
        listener.next(Duration::from_secs(10)).await,
        Some(Event::Appended(s.topic, 0, appended.last_offset + 1))
    );
}

#[tokio::test]
async fn reads_start_at_the_batch_holding_the_offset_and_stop_at_the_byte_budget() {
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let s = setup(&pg, "reads", 1).await;
    let mut client = s.pool.get().await.unwrap();
    for tag in ["a", "b", "c"] {
        append(&mut client, &s.lease, s.topic, 0, &[batch(3, tag)])
            .await
            .unwrap();
    }
    // Offset 4 is inside the second batch (3..=5): it comes whole.
    let read = partition_log::read(&**client, s.topic, 0, 4, i64::MAX, usize::MAX)
        .await
        .unwrap();
    assert_eq!(decode(&read.records).first().map(|r| r.0), Some(3));
    assert_eq!(decode(&read.records).len(), 6);
    // A budget smaller than a batch still returns one batch; then whole batches only.
    let one = partition_log::read(&**client, s.topic, 0, 0, i64::MAX, 1)
        .await
        .unwrap();
    assert_eq!(decode(&one.records).len(), 3);
    let two = partition_log::read(
        &**client,
        s.topic,
        0,
        0,
        i64::MAX,
        one.records.len() * 2 + 10,
    )
    .await
    .unwrap();
    assert_eq!(decode(&two.records).len(), 6);
    // Without `min_one` (a fetch's later partitions) a first batch over the budget is left.
    let none = partition_log::read_range(&**client, s.topic, 0, 0, i64::MAX, 1, false)
        .await
        .unwrap();
    assert!(none.is_empty());
    let fitting = partition_log::read_range(
        &**client,
        s.topic,
        0,
        0,
        i64::MAX,
        one.records.len() * 2 + 10,
        false,
    )
    .await
    .unwrap();
    assert_eq!(decode(&fitting).len(), 6);
    // At the end: nothing yet; past it, or an unknown partition: errors.
    let end = partition_log::read(&**client, s.topic, 0, 9, i64::MAX, 100)
        .await
        .unwrap();
    assert!(end.records.is_empty());
    assert!(matches!(
        partition_log::read(&**client, s.topic, 0, 10, i64::MAX, 100).await,
        Err(PartitionLogError::OffsetOutOfRange {
            offset: 10,
            log_start: 0,
            next_offset: 9
        })
    ));
    assert!(matches!(
        partition_log::read(&**client, s.topic, 7, 0, i64::MAX, 100).await,
        Err(PartitionLogError::UnknownPartition { partition: 7, .. })
    ));
}

#[tokio::test]
async fn retention_deletes_whole_batches_below_the_new_start_in_chunks() {
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let s = setup(&pg, "retention", 1).await;
    let mut client = s.pool.get().await.unwrap();
    for i in 0..10 {
        append(
            &mut client,
            &s.lease,
            s.topic,
            0,
            &[batch(2, &format!("b{i}"))],
        )
        .await
        .unwrap();
    }
    // Offset 7 is inside batch 6..=7, which stays; the six batches below go, two at a time.
    let deleted = partition_log::delete_before(&mut client, &s.lease, s.topic, 0, 7, 2)
        .await
        .unwrap();
    assert_eq!(deleted, 3);
    assert_eq!(
        partition_log::bounds(&**client, s.topic, 0).await.unwrap(),
        (7, 20)
    );
    assert!(matches!(
        partition_log::read(&**client, s.topic, 0, 5, i64::MAX, 100).await,
        Err(PartitionLogError::OffsetOutOfRange { .. })
    ));
    let read = partition_log::read(&**client, s.topic, 0, 7, i64::MAX, usize::MAX)
        .await
        .unwrap();
    assert_eq!(decode(&read.records).first().map(|r| r.0), Some(6));
    // The start never goes back nor past the end.
    partition_log::delete_before(&mut client, &s.lease, s.topic, 0, 2, 100)
        .await
        .unwrap();
    assert_eq!(
        partition_log::bounds(&**client, s.topic, 0)
            .await
            .unwrap()
            .0,
        7
    );
    partition_log::delete_before(&mut client, &s.lease, s.topic, 0, 1_000, 100)
        .await
        .unwrap();
    assert_eq!(
        partition_log::bounds(&**client, s.topic, 0).await.unwrap(),
        (20, 20)
    );
    // Only the lease holder trims.
    lease::release(&**client, &s.lease).await.unwrap();
    assert!(
        partition_log::delete_before(&mut client, &s.lease, s.topic, 0, 20, 1)
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_that_both_believe_they_lead_never_get_the_same_offsets_and_lose_no_acknowledged_batch(
) {
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let s = setup(&pg, "contest", 1).await;
    let name = s.lease.name.clone();
    let ttl = Duration::from_millis(120);
    let nodes: Vec<_> = (1..=2)
        .map(|node: i32| {
            let (pool, name, topic) = (s.pool.clone(), name.clone(), s.topic);
            tokio::spawn(async move {
                // Each node keeps appending under the lease it last got, stalling now and
                // then past the lease's end, and takes the lease again when refused.
                let mut held: Option<Lease> = None;
                let mut acknowledged = Vec::new();
                let mut state = 0x2545_f491_4f6c_dd1d_u64.wrapping_mul(node as u64);
                let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
                let mut n = 0;
                while tokio::time::Instant::now() < deadline {
                    let mut client = pool.get().await.unwrap();
                    if held.is_none() {
                        held = lease::acquire(&**client, LeaseKind::Partition, &name, node, ttl)
                            .await
                            .unwrap();
                    }
                    if let Some(lease) = &held {
                        let tag = format!("n{node}-{n}");
                        n += 1;
                        match append(&mut client, lease, topic, 0, &[batch(2, &tag)]).await {
                            Ok(appended) => acknowledged.push((appended.base_offset, tag)),
                            Err(PartitionLogError::Lease(LeaseError::Fenced { .. })) => held = None,
                            Err(e) => panic!("{e}"),
                        }
                    }
                    drop(client);
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    tokio::time::sleep(Duration::from_millis(state % 200)).await;
                }
                acknowledged
            })
        })
        .collect();
    let mut acknowledged = Vec::new();
    for node in nodes {
        acknowledged.extend(node.await.unwrap());
    }
    let client = s.pool.get().await.unwrap();
    let read = partition_log::read(&**client, s.topic, 0, 0, i64::MAX, usize::MAX)
        .await
        .unwrap();
    let records = decode(&read.records);
    // Dense, each offset once, and every acknowledged batch where its append said.
    for (i, (offset, _)) in records.iter().enumerate() {
        assert_eq!(*offset, i as i64, "{records:?}");
    }
    assert_eq!(records.len(), acknowledged.len() * 2);
    let owners: std::collections::BTreeSet<char> = acknowledged
        .iter()
        .map(|(_, tag)| tag.chars().nth(1).unwrap())
        .collect();
    assert_eq!(
        owners.len(),
        2,
        "both nodes led at some point: {acknowledged:?}"
    );
    for (base, tag) in &acknowledged {
        let at = usize::try_from(*base).unwrap();
        assert_eq!(records[at].1, format!("{tag}-0"), "{acknowledged:?}");
        assert_eq!(records[at + 1].1, format!("{tag}-1"), "{acknowledged:?}");
    }
}
