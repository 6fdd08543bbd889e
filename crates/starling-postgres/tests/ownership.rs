//! Ownership rounds of three nodes against a real PostgreSQL: every partition and group is
//! owned by exactly the node placement names; when a node stops, its partitions and groups
//! move to the live nodes within its leases' lapse, under new epochs; when it comes back it
//! gets its share again, handed over by the others; and the stopped node's stale rounds find
//! everything it held lost.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use starling_postgres::lease::{self, LeaseKind};
use starling_postgres::node::{self, NodeInfo, Registration};
use starling_postgres::ownership::{placement_key, Ownable, Ownership};
use starling_postgres::placement;
use starling_postgres::testing::TestPostgres;
use starling_postgres::PgPool;

const TTL: Duration = Duration::from_secs(2);

fn things() -> Vec<Ownable> {
    let mut things: Vec<Ownable> = (0..24)
        .map(|p| (LeaseKind::Partition, format!("orders-id:{p}")))
        .collect();
    things.extend((0..6).map(|g| (LeaseKind::Group, format!("group-{g}"))));
    things
}

async fn register(pool: &PgPool, node_id: i32) -> Registration {
    let client = pool.get().await.unwrap();
    node::register(
        &**client,
        &NodeInfo {
            node_id,
            host: "127.0.0.1".into(),
            port: 9000 + node_id,
            rack: None,
            listeners: Default::default(),
        },
        TTL,
    )
    .await
    .unwrap()
}

async fn live(pool: &PgPool) -> Vec<i32> {
    let client = pool.get().await.unwrap();
    node::live_nodes(&**client)
        .await
        .unwrap()
        .iter()
        .map(|n| n.node_id)
        .collect()
}

/// One round for each running node: renew its registration, then reconcile.
async fn round(pool: &PgPool, nodes: &mut [(&Registration, &mut Ownership)]) {
    let client = pool.get().await.unwrap();
    for (registration, _) in nodes.iter() {
        node::renew(&**client, registration, TTL).await.unwrap();
    }
    let live = live(pool).await;
    for (_, ownership) in nodes.iter_mut() {
        ownership
            .reconcile(&**client, &live, &things())
            .await
            .unwrap();
    }
}

/// Who holds each thing, according to the nodes' own records.
fn owners(nodes: &[&Ownership]) -> BTreeMap<String, Vec<i32>> {
    let mut owners: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for ownership in nodes {
        for held in ownership.held() {
            owners
                .entry(placement_key(held.kind, &held.name))
                .or_default()
                .push(held.owner);
        }
    }
    owners
}

/// Whether every thing is held by exactly the node placement gives it among `live`.
fn as_placed(nodes: &[&Ownership], live: &[i32]) -> bool {
    let owners = owners(nodes);
    things().iter().all(|(kind, name)| {
        let key = placement_key(*kind, name);
        owners.get(&key).map(Vec::as_slice)
            == placement::owner(&key, live)
                .as_ref()
                .map(std::slice::from_ref)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ownership_follows_placement_and_a_stopped_nodes_share_moves_to_the_live_ones() {
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let pool = pg.pool("ownership", 4).await;
    let (r1, r2, r3) = (
        register(&pool, 1).await,
        register(&pool, 2).await,
        register(&pool, 3).await,
    );
    let (mut o1, mut o2, mut o3) = (
        Ownership::new(1, TTL),
        Ownership::new(2, TTL),
        Ownership::new(3, TTL),
    );
    round(&pool, &mut [(&r1, &mut o1), (&r2, &mut o2), (&r3, &mut o3)]).await;
    assert!(
        as_placed(&[&o1, &o2, &o3], &[1, 2, 3]),
        "{:?}",
        owners(&[&o1, &o2, &o3])
    );
    for (held_by, ownership) in [(1, &o1), (2, &o2), (3, &o3)] {
        assert!(ownership.held().count() >= 4, "node {held_by} owns a share");
    }
    // The database agrees.
    {
        let client = pool.get().await.unwrap();
        for ownership in [&o1, &o2, &o3] {
            for held in ownership.held() {
                assert_eq!(
                    lease::holder(&**client, held.kind, &held.name)
                        .await
                        .unwrap(),
                    Some((held.owner, held.epoch))
                );
            }
        }
    }
    let node2_leases: Vec<_> = o2.held().cloned().collect();

    // Node 2 stops: no renewals. Within its node lease plus its leases' lapse (and a round),
    // nodes 1 and 3 own everything, node 2's former share under new epochs.
    let stopped = Instant::now();
    loop {
        round(&pool, &mut [(&r1, &mut o1), (&r3, &mut o3)]).await;
        if as_placed(&[&o1, &o3], &[1, 3]) {
            break;
        }
        assert!(
            stopped.elapsed() < TTL * 4,
            "node 2's share did not move: {:?}",
            owners(&[&o1, &o3])
        );
        tokio::time::sleep(TTL / 5).await;
    }
    for old in &node2_leases {
        let new = o1
            .lease(old.kind, &old.name)
            .or_else(|| o3.lease(old.kind, &old.name))
            .expect("taken over");
        assert!(new.epoch > old.epoch, "{old:?} then {new:?}");
    }

    // The stopped node's stale rounds find everything it held lost.
    {
        let client = pool.get().await.unwrap();
        let changes = o2
            .reconcile(&**client, &[1, 2, 3], &things())
            .await
            .unwrap();
        assert_eq!(changes.lost.len(), node2_leases.len());
        assert!(changes.gained.is_empty(), "{changes:?}");
        assert_eq!(o2.held().count(), 0);
    }

    // Node 2 starts again: the others hand its share over.
    let r2 = register(&pool, 2).await;
    let mut o2 = Ownership::new(2, TTL);
    let restarted = Instant::now();
    loop {
        round(&pool, &mut [(&r1, &mut o1), (&r2, &mut o2), (&r3, &mut o3)]).await;
        if as_placed(&[&o1, &o2, &o3], &[1, 2, 3]) {
            break;
        }
        assert!(
            restarted.elapsed() < TTL * 2,
            "the share did not come back: {:?}",
            owners(&[&o1, &o2, &o3])
        );
    }

    // A clean shutdown releases at once: the others take over on their next round.
    {
        let client = pool.get().await.unwrap();
        o3.release_all(&**client).await.unwrap();
        node::deregister(&**client, &r3).await.unwrap();
    }
    round(&pool, &mut [(&r1, &mut o1), (&r2, &mut o2)]).await;
    assert!(as_placed(&[&o1, &o2], &[1, 2]), "{:?}", owners(&[&o1, &o2]));
}
