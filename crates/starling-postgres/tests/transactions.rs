//! The transaction coordinator's PostgreSQL side in a real PostgreSQL: records written only
//! under the coordinator lease, a producer's transaction found by producer id, and markers
//! queued for other nodes, heard, carried out and waited for.

use std::collections::BTreeSet;
use std::time::Duration;

use starling_postgres::lease::{self, LeaseKind};
use starling_postgres::notify::{Event, Listener};
use starling_postgres::testing::TestPostgres;
use starling_postgres::transactions::{
    self, MarkerTarget, QueuedMarker, TxnStoreError, COORDINATOR,
};
use starling_txn::{TopicPartition, TransactionValue, TxnRecord, TxnState};

const LONG: Duration = Duration::from_secs(60);

fn record(id: &str, producer_id: i64, state: TxnState) -> TxnRecord {
    TxnRecord {
        transactional_id: id.to_string(),
        value: Some(TransactionValue {
            producer_id,
            last_producer_id: -1,
            producer_epoch: 2,
            last_producer_epoch: -1,
            timeout_ms: 60_000,
            state,
            partitions: BTreeSet::from([TopicPartition::new("orders", 3)]),
            groups: BTreeSet::new(),
            start_ms: 1,
            last_update_ms: 2,
        }),
    }
}

#[tokio::test]
async fn records_are_written_under_the_coordinator_lease_and_found_by_producer_id() {
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let pool = pg.pool("txn_records", 4).await;
    let mut client = pool.get().await.unwrap();
    let held = lease::acquire(&**client, LeaseKind::Transactions, COORDINATOR, 1, LONG)
        .await
        .unwrap()
        .unwrap();
    transactions::write_records(
        &mut client,
        &held,
        &[
            record("app-1", 1000, TxnState::Ongoing),
            record("app-2", 1001, TxnState::Empty),
        ],
    )
    .await
    .unwrap();
    let found = transactions::by_producer(&**client, 1000).await.unwrap();
    assert_eq!(found, Some(record("app-1", 1000, TxnState::Ongoing)));
    assert_eq!(transactions::by_producer(&**client, 7).await.unwrap(), None);

    // A deletion removes the id; the other stays.
    transactions::write_records(
        &mut client,
        &held,
        &[TxnRecord {
            transactional_id: "app-1".to_string(),
            value: None,
        }],
    )
    .await
    .unwrap();
    assert_eq!(
        transactions::by_producer(&**client, 1000).await.unwrap(),
        None
    );
    assert!(transactions::by_producer(&**client, 1001)
        .await
        .unwrap()
        .is_some());

    // A group lease is not the coordinator's.
    let group = lease::acquire(&**client, LeaseKind::Group, "g", 1, LONG)
        .await
        .unwrap()
        .unwrap();
    let wrong =
        transactions::write_records(&mut client, &group, &[record("x", 5, TxnState::Empty)]).await;
    assert!(
        matches!(wrong, Err(TxnStoreError::WrongLease(_))),
        "{wrong:?}"
    );
}

#[tokio::test]
async fn a_coordinator_that_lost_its_lease_writes_nothing() {
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let pool = pg.pool("txn_fenced", 4).await;
    let mut client = pool.get().await.unwrap();
    let short = Duration::from_millis(200);
    let old = lease::acquire(&**client, LeaseKind::Transactions, COORDINATOR, 1, short)
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let new = lease::acquire(&**client, LeaseKind::Transactions, COORDINATOR, 2, LONG)
        .await
        .unwrap()
        .unwrap();
    assert!(new.epoch > old.epoch);
    let stale =
        transactions::write_records(&mut client, &old, &[record("app", 9, TxnState::Ongoing)])
            .await;
    assert!(matches!(stale, Err(TxnStoreError::Lease(_))), "{stale:?}");
    assert_eq!(transactions::by_producer(&**client, 9).await.unwrap(), None);
    transactions::write_records(&mut client, &new, &[record("app", 9, TxnState::Ongoing)])
        .await
        .unwrap();
    assert!(transactions::by_producer(&**client, 9)
        .await
        .unwrap()
        .is_some());
}

fn marker(target: MarkerTarget, producer_id: i64, epoch: i16, commit: bool) -> QueuedMarker {
    QueuedMarker {
        target,
        producer_id,
        producer_epoch: epoch,
        commit,
        // NUL, which PostgreSQL's text cannot hold, as Kafka's strings may.
        transactional_id: format!("app\0{producer_id}"),
    }
}

#[tokio::test]
async fn queued_markers_are_heard_carried_out_and_waited_for() {
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let pool = pg.pool("txn_markers", 4).await;
    let mut listener = Listener::connect(&pg.url_for("txn_markers")).await.unwrap();
    let mut client = pool.get().await.unwrap();
    let held = lease::acquire(&**client, LeaseKind::Transactions, COORDINATOR, 1, LONG)
        .await
        .unwrap()
        .unwrap();
    let orders_0 = MarkerTarget::Partition(TopicPartition::new("orders", 0));
    let group = MarkerTarget::Group("billing\0eu".to_string());
    let a = marker(orders_0.clone(), 10, 1, true);
    let b = marker(group.clone(), 10, 1, true);
    let other = marker(orders_0.clone(), 11, 4, false);
    transactions::queue(&mut client, &held, &[a.clone(), b.clone()])
        .await
        .unwrap();
    transactions::queue(&mut client, &held, std::slice::from_ref(&other))
        .await
        .unwrap();
    assert_eq!(
        listener.next(Duration::from_secs(5)).await,
        Some(Event::MarkersQueued)
    );
    let all = transactions::queued(&**client).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(
        transactions::pending(&**client, 10).await.unwrap(),
        vec![b.clone(), a.clone()]
    );

    // Queued again (a coordinator that took over): still one row per target and producer.
    transactions::queue(&mut client, &held, std::slice::from_ref(&a))
        .await
        .unwrap();
    assert_eq!(transactions::pending(&**client, 10).await.unwrap().len(), 2);

    // A row queued again for another outcome is not deleted by the old one's completion.
    let aborting = marker(orders_0.clone(), 11, 5, false);
    transactions::queue(&mut client, &held, std::slice::from_ref(&aborting))
        .await
        .unwrap();
    transactions::done(&**client, &other).await.unwrap();
    assert_eq!(
        transactions::pending(&**client, 11).await.unwrap(),
        vec![aborting.clone()]
    );

    transactions::done(&**client, &a).await.unwrap();
    transactions::done(&**client, &b).await.unwrap();
    assert!(transactions::pending(&**client, 10)
        .await
        .unwrap()
        .is_empty());
    let mut heard_done = false;
    while let Some(event) = listener.next(Duration::from_secs(2)).await {
        if event == Event::MarkersDone {
            heard_done = true;
            break;
        }
    }
    assert!(heard_done, "the completion was not notified");
}

#[tokio::test]
async fn a_coordinator_that_lost_its_lease_queues_no_markers() {
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let pool = pg.pool("txn_markers_fenced", 4).await;
    let mut client = pool.get().await.unwrap();
    let old = lease::acquire(
        &**client,
        LeaseKind::Transactions,
        COORDINATOR,
        1,
        Duration::from_millis(200),
    )
    .await
    .unwrap()
    .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    lease::acquire(&**client, LeaseKind::Transactions, COORDINATOR, 2, LONG)
        .await
        .unwrap()
        .unwrap();
    let late = marker(MarkerTarget::Group("g".to_string()), 3, 0, true);
    let queued = transactions::queue(&mut client, &old, &[late]).await;
    assert!(matches!(queued, Err(TxnStoreError::Lease(_))), "{queued:?}");
    assert!(transactions::queued(&**client).await.unwrap().is_empty());
}
