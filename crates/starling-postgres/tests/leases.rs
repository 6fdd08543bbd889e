//! Fenced leases against a real PostgreSQL: one holder at a time however many nodes race, a
//! lapsed lease taken over under a new epoch, and — the point of fencing — a holder paused past
//! its lease that resumes and writes nothing.

use std::time::Duration;

use starling_postgres::lease::{self, Lease, LeaseError, LeaseKind};
use starling_postgres::testing::TestPostgres;
use starling_postgres::PgPool;

const LONG: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_many_nodes_racing_for_a_lease_exactly_one_gets_it() {
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let pool = pg.pool("race", 16).await;
    let racers: Vec<_> = (0..12)
        .map(|node| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let client = pool.get().await.unwrap();
                lease::acquire(&**client, LeaseKind::Group, "orders", node, LONG)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut winners = Vec::new();
    for racer in racers {
        if let Some(lease) = racer.await.unwrap() {
            winners.push(lease);
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(winners[0].epoch, 1);
    let client = pool.get().await.unwrap();
    assert_eq!(
        lease::holder(&**client, LeaseKind::Group, "orders")
            .await
            .unwrap(),
        Some((winners[0].owner, 1))
    );
    // Another kind or name is another lease.
    assert!(
        lease::acquire(&**client, LeaseKind::Partition, "orders", 99, LONG)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn a_held_lease_is_renewed_in_its_epoch_and_a_released_one_changes_hands_in_the_next() {
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let pool = pg.pool("handover", 16).await;
    let client = pool.get().await.unwrap();
    let g = LeaseKind::Group;
    let first = lease::acquire(&**client, g, "g", 1, LONG)
        .await
        .unwrap()
        .unwrap();
    assert!(lease::acquire(&**client, g, "g", 2, LONG)
        .await
        .unwrap()
        .is_none());
    // Taken again by its holder: same epoch.
    let again = lease::acquire(&**client, g, "g", 1, LONG)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again, first);
    lease::renew(&**client, &first, LONG).await.unwrap();
    lease::release(&**client, &first).await.unwrap();
    assert_eq!(lease::holder(&**client, g, "g").await.unwrap(), None);
    let second = lease::acquire(&**client, g, "g", 2, LONG)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.epoch, 2);
    // The old holder is fenced: no renewal, no write.
    assert!(matches!(
        lease::renew(&**client, &first, LONG).await,
        Err(LeaseError::Fenced { .. })
    ));
    let mut client = pool.get().await.unwrap();
    let tx = client.transaction().await.unwrap();
    assert!(matches!(
        lease::check(&tx, &first).await,
        Err(LeaseError::Fenced {
            owner: 1,
            epoch: 1,
            ..
        })
    ));
    tx.rollback().await.unwrap();
    // Releasing a lease one no longer holds changes nothing.
    let client = pool.get().await.unwrap();
    lease::release(&**client, &first).await.unwrap();
    assert_eq!(
        lease::holder(&**client, g, "g").await.unwrap(),
        Some((2, 2))
    );
}

#[tokio::test]
async fn a_lapsed_lease_cannot_be_renewed_and_goes_to_the_next_node_under_a_new_epoch() {
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let pool = pg.pool("lapse", 16).await;
    let client = pool.get().await.unwrap();
    let short = Duration::from_millis(300);
    let first = lease::acquire(&**client, LeaseKind::Partition, "t:0", 1, short)
        .await
        .unwrap()
        .unwrap();
    assert!(
        lease::acquire(&**client, LeaseKind::Partition, "t:0", 2, short)
            .await
            .unwrap()
            .is_none()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        lease::holder(&**client, LeaseKind::Partition, "t:0")
            .await
            .unwrap(),
        None
    );
    assert!(lease::renew(&**client, &first, short).await.is_err());
    let second = lease::acquire(&**client, LeaseKind::Partition, "t:0", 2, LONG)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.epoch, 2);
    // Even its old holder taking it back after it lapsed gets a new epoch.
    lease::release(&**client, &second).await.unwrap();
    let third = lease::acquire(&**client, LeaseKind::Partition, "t:0", 2, LONG)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(third.epoch, 3);
}

/// A write fenced by `lease`: appends (owner, epoch) to the table `fenced_writes`.
async fn fenced_write(pool: &PgPool, lease: &Lease) -> Result<(), LeaseError> {
    let mut client = pool.get().await.unwrap();
    let tx = client.transaction().await?;
    lease::check(&tx, lease).await?;
    tx.execute(
        "INSERT INTO fenced_writes (owner, epoch) VALUES ($1, $2)",
        &[&lease.owner, &lease.epoch],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_holder_paused_past_its_lease_writes_nothing_once_another_node_took_over() {
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let pool = pg.pool("pause", 16).await;
    let client = pool.get().await.unwrap();
    client
        .batch_execute(
            "CREATE TABLE fenced_writes (seq bigserial PRIMARY KEY, owner int, epoch bigint)",
        )
        .await
        .unwrap();
    let short = Duration::from_millis(1000);
    let old = lease::acquire(&**client, LeaseKind::Group, "g", 1, short)
        .await
        .unwrap()
        .unwrap();
    fenced_write(&pool, &old).await.unwrap();

    // Node 1 is inside a write when it stalls past its lease: it checked the lease, so the
    // row is locked, and node 2's take-over waits for that transaction to end.
    let mut writer = pool.get().await.unwrap();
    let tx = writer.transaction().await.unwrap();
    lease::check(&tx, &old).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let take_over = {
        let pool = pool.clone();
        tokio::spawn(async move {
            let client = pool.get().await.unwrap();
            lease::acquire(&**client, LeaseKind::Group, "g", 2, LONG)
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !take_over.is_finished(),
        "the take-over waits for the write in flight"
    );
    tx.execute(
        "INSERT INTO fenced_writes (owner, epoch) VALUES ($1, $2)",
        &[&old.owner, &old.epoch],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let new = take_over
        .await
        .unwrap()
        .expect("node 2 takes the lapsed lease");
    assert_eq!((new.owner, new.epoch), (2, 2));

    // Node 1 resumes believing it owns the group: every write it tries is refused.
    for _ in 0..3 {
        assert!(matches!(
            fenced_write(&pool, &old).await,
            Err(LeaseError::Fenced {
                owner: 1,
                epoch: 1,
                ..
            })
        ));
    }
    fenced_write(&pool, &new).await.unwrap();
    let rows = client
        .query("SELECT owner, epoch FROM fenced_writes ORDER BY seq", &[])
        .await
        .unwrap();
    let writes: Vec<(i32, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(writes, [(1, 1), (1, 1), (2, 2)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn under_racing_takeovers_and_stalls_the_writes_never_go_back_to_an_older_epoch() {
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let pool = pg.pool("stress", 16).await;
    pool.get()
        .await
        .unwrap()
        .batch_execute(
            "CREATE TABLE fenced_writes (seq bigserial PRIMARY KEY, owner int, epoch bigint)",
        )
        .await
        .unwrap();
    let ttl = Duration::from_millis(150);
    let nodes: Vec<_> = (1..=4)
        .map(|node: i32| {
            let pool = pool.clone();
            tokio::spawn(async move {
                // A small deterministic generator per node: stalls of 0-300 ms, some longer
                // than the lease.
                let mut state = 0x9e37_79b9_u64.wrapping_mul(node as u64 + 1);
                let mut next = move || {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state
                };
                let mut held: Option<Lease> = None;
                let (mut written, mut refused) = (0u32, 0u32);
                let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
                while tokio::time::Instant::now() < deadline {
                    if held.is_none() {
                        let client = pool.get().await.unwrap();
                        held = lease::acquire(&**client, LeaseKind::Group, "g", node, ttl)
                            .await
                            .unwrap();
                    }
                    if let Some(lease) = &held {
                        match fenced_write(&pool, lease).await {
                            Ok(()) => written += 1,
                            Err(LeaseError::Fenced { .. }) => {
                                refused += 1;
                                held = None;
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(next() % 300)).await;
                }
                (written, refused)
            })
        })
        .collect();
    let mut refused = 0;
    for node in nodes {
        refused += node.await.unwrap().1;
    }
    let client = pool.get().await.unwrap();
    let rows = client
        .query("SELECT owner, epoch FROM fenced_writes ORDER BY seq", &[])
        .await
        .unwrap();
    let writes: Vec<(i32, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert!(writes.len() > 10, "{writes:?}");
    assert!(refused > 0, "some stall outlived its lease: {writes:?}");
    // In commit order the epochs never decrease, and each epoch is one node's.
    for pair in writes.windows(2) {
        let ((o1, e1), (o2, e2)) = (pair[0], pair[1]);
        assert!(e2 >= e1, "epoch went back: {pair:?} in {writes:?}");
        assert!(e2 != e1 || o1 == o2, "two owners in epoch {e1}: {writes:?}");
    }
}

/// A node's round renews everything it holds in one statement: the leases still its own are
/// extended, and the one that lapsed and went to another node is reported lost (and stays the
/// other node's).
#[tokio::test]
async fn renewing_many_at_once_extends_those_held_and_reports_those_lost() {
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let pool = pg.pool("renew_many", 4).await;
    let client = pool.get().await.unwrap();
    let short = Duration::from_millis(300);
    let kept = lease::acquire(&**client, LeaseKind::Partition, "t:0", 1, LONG)
        .await
        .unwrap()
        .unwrap();
    let group = lease::acquire(&**client, LeaseKind::Group, "t:0", 1, LONG)
        .await
        .unwrap()
        .unwrap();
    let lapsing = lease::acquire(&**client, LeaseKind::Partition, "t:1", 1, short)
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(short * 2).await;
    let taken = lease::acquire(&**client, LeaseKind::Partition, "t:1", 2, LONG)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.epoch, lapsing.epoch + 1);
    assert!(lease::renew_many(&**client, &[], LONG)
        .await
        .unwrap()
        .is_empty());
    let lost = lease::renew_many(
        &**client,
        &[kept.clone(), lapsing.clone(), group.clone()],
        short,
    )
    .await
    .unwrap();
    assert_eq!(lost, vec![lapsing]);
    assert_eq!(
        lease::holder(&**client, LeaseKind::Partition, "t:1")
            .await
            .unwrap()
            .map(|(owner, _)| owner),
        Some(2)
    );
    // Renewed to the short time: both lapse now unless renewed again.
    tokio::time::sleep(short * 2).await;
    assert!(lease::renew(&**client, &kept, LONG).await.is_err());
    assert!(lease::renew(&**client, &group, LONG).await.is_err());
}

#[tokio::test]
async fn holders_lists_the_live_leases_of_one_kind() {
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let pool = pg.pool("holders", 4).await;
    let client = pool.get().await.unwrap();
    let p = LeaseKind::Partition;
    let a = lease::acquire(&**client, p, "t:0", 1, LONG)
        .await
        .unwrap()
        .unwrap();
    let b = lease::acquire(&**client, p, "t:1", 2, LONG)
        .await
        .unwrap()
        .unwrap();
    let released = lease::acquire(&**client, p, "t:2", 2, LONG)
        .await
        .unwrap()
        .unwrap();
    lease::release(&**client, &released).await.unwrap();
    lease::acquire(&**client, p, "t:3", 3, Duration::from_millis(1))
        .await
        .unwrap()
        .unwrap();
    lease::acquire(&**client, LeaseKind::Group, "g", 1, LONG)
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut held = lease::holders(&**client, p).await.unwrap();
    held.sort_by(|x, y| x.name.cmp(&y.name));
    assert_eq!(held, vec![a, b], "released and lapsed leases are nobody's");
}
