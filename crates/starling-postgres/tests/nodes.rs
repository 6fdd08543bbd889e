//! Node registration against a real PostgreSQL: a node.id is one process's while its lease is
//! live, a lapsed or deregistered id goes to the next process that starts with it, and the live
//! list is what Metadata will show.

use std::time::Duration;

use starling_postgres::node::{self, NodeError, NodeInfo};
use starling_postgres::testing::TestPostgres;

fn info(node_id: i32, port: i32) -> NodeInfo {
    NodeInfo {
        node_id,
        host: "127.0.0.1".to_string(),
        port,
        rack: (node_id % 2 == 0).then(|| "rack-b".to_string()),
        listeners: [
            ("PLAINTEXT".to_string(), ("127.0.0.1".to_string(), port)),
            (
                "SASL_SSL".to_string(),
                ("10.0.0.1".to_string(), port + 1000),
            ),
        ]
        .into(),
    }
}

const LONG: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_node_id_is_one_processs_while_its_lease_is_live() {
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let pool = pg.pool("ids", 4).await;
    let client = pool.get().await.unwrap();
    let first = node::register(&**client, &info(1, 9092), LONG)
        .await
        .unwrap();
    node::register(&**client, &info(2, 9093), LONG)
        .await
        .unwrap();
    match node::register(&**client, &info(1, 9999), LONG).await {
        Err(NodeError::IdInUse {
            node_id: 1,
            host,
            port: 9092,
            ..
        }) => {
            assert_eq!(host, "127.0.0.1")
        }
        other => panic!("a second node 1 was not refused: {other:?}"),
    }
    let live = node::live_nodes(&**client).await.unwrap();
    assert_eq!(live, vec![info(1, 9092), info(2, 9093)]);
    // Each listener's address by name; an unknown name gets the first listener's.
    assert_eq!(
        live[1].address_on("SASL_SSL"),
        ("10.0.0.1".to_string(), 10093)
    );
    assert_eq!(
        live[1].address_on("INTERNAL"),
        ("127.0.0.1".to_string(), 9093)
    );
    node::renew(&**client, &first, LONG).await.unwrap();
    // A clean shutdown hands the id over at once.
    node::deregister(&**client, &first).await.unwrap();
    assert_eq!(
        node::live_nodes(&**client).await.unwrap(),
        vec![info(2, 9093)]
    );
    let second = node::register(&**client, &info(1, 9999), LONG)
        .await
        .unwrap();
    assert_ne!(second.incarnation, first.incarnation);
    assert!(matches!(
        node::renew(&**client, &first, LONG).await,
        Err(NodeError::Lapsed(1))
    ));
    assert_eq!(
        node::live_nodes(&**client).await.unwrap(),
        vec![info(1, 9999), info(2, 9093)]
    );
}

#[tokio::test]
async fn a_node_that_stops_renewing_drops_out_and_its_id_can_be_taken() {
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let pool = pg.pool("lapse", 4).await;
    let client = pool.get().await.unwrap();
    let short = Duration::from_millis(300);
    let stalled = node::register(&**client, &info(3, 9094), short)
        .await
        .unwrap();
    let alive = node::register(&**client, &info(4, 9095), short)
        .await
        .unwrap();
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        node::renew(&**client, &alive, short).await.unwrap();
    }
    assert_eq!(
        node::live_nodes(&**client).await.unwrap(),
        vec![info(4, 9095)]
    );
    assert!(matches!(
        node::renew(&**client, &stalled, short).await,
        Err(NodeError::Lapsed(3))
    ));
    node::register(&**client, &info(3, 9096), LONG)
        .await
        .unwrap();
    let live: Vec<i32> = node::live_nodes(&**client)
        .await
        .unwrap()
        .iter()
        .map(|n| n.node_id)
        .collect();
    assert_eq!(live, [3, 4]);
}
