//! The group coordinator's records in a real PostgreSQL: latest per key, deletions, one
//! group's replay apart from the others', whole batches, and no write at all from a
//! coordinator that lost the group's lease.

use std::time::Duration;

use starling_group::{OffsetValue, Record};
use starling_postgres::group_records::{self, GroupRecordsError};
use starling_postgres::lease::{self, LeaseError, LeaseKind};
use starling_postgres::testing::TestPostgres;

fn offset(group: &str, partition: i32, offset: Option<i64>) -> Record {
    Record::Offset {
        group_id: group.to_string(),
        topic: "orders".to_string(),
        partition,
        value: offset.map(|offset| OffsetValue {
            offset,
            leader_epoch: 3,
            metadata: "<meta>".to_string(),
            commit_timestamp: 1_796_428_800_000,
            expire_timestamp: None,
        }),
    }
}

const LONG: Duration = Duration::from_secs(60);

#[tokio::test]
async fn records_come_back_latest_per_key_in_key_order_and_per_group() {
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let pool = pg.pool("records", 4).await;
    let mut client = pool.get().await.unwrap();
    let g = lease::acquire(&**client, LeaseKind::Group, "g", 1, LONG)
        .await
        .unwrap()
        .unwrap();
    let h = lease::acquire(&**client, LeaseKind::Group, "h", 1, LONG)
        .await
        .unwrap()
        .unwrap();
    group_records::write(
        &mut client,
        &g,
        &[
            offset("g", 1, Some(10)),
            offset("g", 0, Some(5)),
            offset("g", 2, Some(7)),
        ],
    )
    .await
    .unwrap();
    group_records::write(&mut client, &h, &[offset("h", 0, Some(99))])
        .await
        .unwrap();
    // Later records replace earlier ones of the same key; no value deletes the key.
    group_records::write(
        &mut client,
        &g,
        &[
            offset("g", 1, Some(11)),
            offset("g", 2, None),
            offset("g", 1, Some(12)),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        group_records::load(&**client, "g").await.unwrap(),
        vec![offset("g", 0, Some(5)), offset("g", 1, Some(12))]
    );
    assert_eq!(
        group_records::load(&**client, "h").await.unwrap(),
        vec![offset("h", 0, Some(99))]
    );
    assert!(group_records::load(&**client, "nobody")
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_coordinator_that_lost_the_group_writes_nothing_of_its_batch() {
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let pool = pg.pool("fenced", 4).await;
    let mut client = pool.get().await.unwrap();
    let old = lease::acquire(&**client, LeaseKind::Group, "g", 1, LONG)
        .await
        .unwrap()
        .unwrap();
    group_records::write(&mut client, &old, &[offset("g", 0, Some(5))])
        .await
        .unwrap();
    lease::release(&**client, &old).await.unwrap();
    let new = lease::acquire(&**client, LeaseKind::Group, "g", 2, LONG)
        .await
        .unwrap()
        .unwrap();
    // The old coordinator commits an offset it still believes it may write.
    let refused = group_records::write(
        &mut client,
        &old,
        &[offset("g", 0, Some(3)), offset("g", 1, Some(8))],
    )
    .await;
    assert!(
        matches!(
            refused,
            Err(GroupRecordsError::Lease(LeaseError::Fenced {
                owner: 1,
                ..
            }))
        ),
        "{refused:?}"
    );
    // The new coordinator replays what was committed before the hand-over, and nothing else.
    assert_eq!(
        group_records::load(&**client, "g").await.unwrap(),
        vec![offset("g", 0, Some(5))]
    );
    group_records::write(&mut client, &new, &[offset("g", 0, Some(6))])
        .await
        .unwrap();
    assert_eq!(
        group_records::load(&**client, "g").await.unwrap(),
        vec![offset("g", 0, Some(6))]
    );
}

#[tokio::test]
async fn a_batch_naming_another_group_than_its_lease_is_refused_whole() {
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let pool = pg.pool("misrouted", 4).await;
    let mut client = pool.get().await.unwrap();
    let g = lease::acquire(&**client, LeaseKind::Group, "g", 1, LONG)
        .await
        .unwrap()
        .unwrap();
    let refused = group_records::write(
        &mut client,
        &g,
        &[offset("g", 0, Some(1)), offset("other", 0, Some(2))],
    )
    .await;
    assert!(
        matches!(&refused, Err(GroupRecordsError::OtherGroup { record, lease }) if record == "other" && lease == "g"),
        "{refused:?}"
    );
    let partition_lease = lease::acquire(&**client, LeaseKind::Partition, "g", 1, LONG)
        .await
        .unwrap()
        .unwrap();
    assert!(
        group_records::write(&mut client, &partition_lease, &[offset("g", 0, Some(1))])
            .await
            .is_err()
    );
    assert!(group_records::load(&**client, "g")
        .await
        .unwrap()
        .is_empty());
    assert!(group_records::load(&**client, "other")
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_record_from_a_newer_starling_stops_the_load_naming_its_key() {
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let pool = pg.pool("newer", 4).await;
    let client = pool.get().await.unwrap();
    client
        .execute(
            "INSERT INTO group_records (group_id, record_key, format, value)
             VALUES ('g', 'o/g/orders/0', $1, '{}')",
            &[&(group_records::FORMAT + 1)],
        )
        .await
        .unwrap();
    let err = group_records::load(&**client, "g").await.unwrap_err();
    assert!(err.to_string().contains("o/g/orders/0"), "{err}");
    assert!(err.to_string().contains("newer Starling"), "{err}");
}

/// A coordinator's step over several groups is one transaction: every group's records land,
/// or (one lease lost) none does; each group's records load in key order.
#[tokio::test]
async fn a_step_over_several_groups_is_stored_whole_or_not_at_all() {
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let pool = pg.pool("many", 4).await;
    let mut client = pool.get().await.unwrap();
    let mut ownership = starling_postgres::ownership::Ownership::new(1, LONG);
    let a = ownership
        .acquire(&**client, LeaseKind::Group, "a")
        .await
        .unwrap()
        .unwrap();
    // Taking a held lease again is the same lease.
    assert_eq!(
        ownership
            .acquire(&**client, LeaseKind::Group, "a")
            .await
            .unwrap(),
        Some(a.clone())
    );
    let b = ownership
        .acquire(&**client, LeaseKind::Group, "b")
        .await
        .unwrap()
        .unwrap();
    group_records::write_many(
        &mut client,
        &[
            (b.clone(), vec![offset("b", 0, Some(1))]),
            (
                a.clone(),
                vec![offset("a", 1, Some(2)), offset("a", 0, Some(3))],
            ),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        group_records::group_ids(&**client).await.unwrap(),
        vec!["a".to_string(), "b".to_string()]
    );
    assert_eq!(
        group_records::load(&**client, "a").await.unwrap(),
        vec![offset("a", 0, Some(3)), offset("a", 1, Some(2))]
    );
    assert_eq!(
        group_records::load(&**client, "b").await.unwrap(),
        vec![offset("b", 0, Some(1))]
    );
    // Another node takes `b` (its lease released here); a step over both stores nothing.
    lease::release(&**client, &b).await.unwrap();
    ownership.forget(&b);
    lease::acquire(&**client, LeaseKind::Group, "b", 2, LONG)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        ownership
            .acquire(&**client, LeaseKind::Group, "b")
            .await
            .unwrap(),
        None,
        "held by node 2"
    );
    let refused = group_records::write_many(
        &mut client,
        &[
            (a.clone(), vec![offset("a", 0, Some(100))]),
            (b.clone(), vec![offset("b", 0, Some(100))]),
        ],
    )
    .await;
    assert!(matches!(
        refused,
        Err(GroupRecordsError::Lease(LeaseError::Fenced { .. }))
    ));
    assert_eq!(
        group_records::load(&**client, "a").await.unwrap()[0],
        offset("a", 0, Some(3))
    );
}
