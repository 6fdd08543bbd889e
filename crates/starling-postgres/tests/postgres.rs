//! `starling-postgres` against a real PostgreSQL (Debian's, started per test by
//! [`TestPostgres`]): the test server itself, schema migrations from one and from several
//! nodes at once, a database from a newer Starling refused, and the cluster id agreed on.

use starling_postgres::schema::{self, SchemaError};
use starling_postgres::testing::TestPostgres;
use starling_postgres::{cluster_id, connect, PgError};

async fn plain_client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connected");
    tokio::spawn(connection);
    client
}

#[tokio::test]
async fn the_test_server_keeps_what_it_committed_across_a_kill() {
    let Some(mut pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let url = pg.create_database("kept").unwrap();
    let client = plain_client(&url).await;
    client
        .batch_execute("CREATE TABLE t (v int); INSERT INTO t VALUES (42);")
        .await
        .unwrap();
    drop(client);
    pg.kill();
    assert!(
        tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .is_err(),
        "killed"
    );
    pg.start_again().unwrap();
    let client = plain_client(&url).await;
    let v: i32 = client
        .query_one("SELECT v FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, 42);
}

#[tokio::test]
async fn a_fresh_database_is_migrated_once_and_then_left_alone() {
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let url = pg.create_database("fresh").unwrap();
    let mut client = plain_client(&url).await;
    assert_eq!(schema::current_version(&client).await.unwrap(), 0);
    let applied = schema::migrate(&mut client).await.unwrap();
    assert_eq!(applied.len(), schema::MIGRATIONS.len());
    assert_eq!(
        schema::current_version(&client).await.unwrap(),
        schema::latest_version()
    );
    assert!(schema::migrate(&mut client).await.unwrap().is_empty());
    // The tables of every migration are there.
    for table in [
        "cluster",
        "nodes",
        "leases",
        "group_records",
        "partitions",
        "batches",
        "producer_ids",
        "topics",
        "broker_configs",
        "keyed_records",
        "starling_schema",
    ] {
        let exists: bool = client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
            .await
            .unwrap()
            .get(0);
        assert!(exists, "{table}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_starting_at_once_apply_each_migration_exactly_once_and_agree_on_the_cluster_id() {
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let url = pg.create_database("together").unwrap();
    let nodes: Vec<_> = (0..6)
        .map(|i| {
            let url = url.clone();
            tokio::spawn(async move {
                let pool = connect(&url, 2).await?;
                cluster_id(&pool, &format!("proposed-by-{i}")).await
            })
        })
        .collect();
    let mut ids = Vec::new();
    for node in nodes {
        ids.push(node.await.unwrap().expect("every node connects"));
    }
    assert!(ids.iter().all(|id| id == &ids[0]), "{ids:?}");
    assert!(ids[0].starts_with("proposed-by-"), "{ids:?}");
    let client = plain_client(&url).await;
    let rows: i64 = client
        .query_one("SELECT count(*) FROM starling_schema", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, schema::MIGRATIONS.len() as i64);
    // A node starting later gets the same id, whatever it proposes.
    let pool = connect(&url, 1).await.unwrap();
    assert_eq!(cluster_id(&pool, "late").await.unwrap(), ids[0]);
}

#[tokio::test]
async fn a_database_from_a_newer_starling_is_refused_and_left_as_it_is() {
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let url = pg.create_database("newer").unwrap();
    connect(&url, 1).await.unwrap();
    let newer = schema::latest_version() + 1;
    let client = plain_client(&url).await;
    client
        .execute(
            "INSERT INTO starling_schema (version, name) VALUES ($1, 'from the future')",
            &[&newer],
        )
        .await
        .unwrap();
    match connect(&url, 1).await {
        Err(PgError::Schema(SchemaError::Newer { found, known })) => {
            assert_eq!((found, known), (newer, schema::latest_version()));
        }
        Err(e) => panic!("the wrong error: {e}"),
        Ok(_) => panic!("a newer schema was accepted"),
    }
    assert_eq!(schema::current_version(&client).await.unwrap(), newer);
}

#[tokio::test]
async fn a_bad_url_or_an_absent_server_is_an_error_not_a_hang() {
    assert!(matches!(
        connect("postgres://u@[::1", 1).await,
        Err(PgError::Url(_))
    ));
    // Nothing listens on port 1.
    let started = std::time::Instant::now();
    assert!(matches!(
        connect("postgres://u@127.0.0.1:1/db?connect_timeout=2", 1).await,
        Err(PgError::Connect(_))
    ));
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}
