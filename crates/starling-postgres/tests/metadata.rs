//! The PostgreSQL metadata back end passes the conformance suite the embedded store passes
//! (`starling_meta::backend::conformance`), on a database that sorts text by a language's
//! collation, and keeps what it stored across a database restart.

use starling_meta::backend::{conformance, MetadataBackend};
use starling_meta::TopicRecord;
use starling_postgres::connect;
use starling_postgres::metadata::PgMetadata;
use starling_postgres::testing::TestPostgres;

/// On a database that sorts text by a language's collation, not byte by byte: what the suite
/// reads back in key order must still come in the embedded store's (byte) order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_passes_the_metadata_conformance_suite() {
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let pool = pg.pool_with_language_collation("conformance", 16).await;
    conformance::run_all(&PgMetadata::new(pool)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_survives_a_database_restart_and_every_node_sees_the_same() {
    let Some(mut pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let url = pg.create_database("restart").unwrap();
    let node_a = PgMetadata::new(connect(&url, 4).await.unwrap());
    let id = node_a.cluster_id().await.unwrap();
    assert_eq!(id.len(), 22, "{id}");
    let topic = TopicRecord::new("orders", 12);
    node_a.put_topic(&topic).await.unwrap();
    let first = node_a.reserve_producer_ids(100).await.unwrap();
    pg.kill();
    pg.start_again().unwrap();
    // The pool checks its connections before reuse: after the restart it reconnects.
    let node_b = PgMetadata::new(connect(&url, 4).await.unwrap());
    assert_eq!(node_b.cluster_id().await.unwrap(), id);
    assert_eq!(node_b.topics().await.unwrap(), vec![topic]);
    assert!(node_b.reserve_producer_ids(1).await.unwrap() >= first + 100);
    let mut again = None;
    for _ in 0..50 {
        match node_a.topics().await {
            Ok(topics) => {
                again = Some(topics);
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    assert_eq!(again.expect("node a reconnects").len(), 1);
}

/// A topic's partitions exist exactly while it does: storing it creates their rows (and
/// growing it the new ones), deleting it removes their rows, batches, producer snapshots and
/// leases, and leaves other topics' alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_bring_their_partitions_and_take_them_away() {
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let pool = pg.pool("partitions", 4).await;
    let meta = PgMetadata::new(pool.clone());
    let doomed = TopicRecord::new("doomed", 2);
    let kept = TopicRecord::new("kept", 1);
    meta.put_topic(&doomed).await.unwrap();
    meta.put_topic(&kept).await.unwrap();
    let client = pool.get().await.unwrap();
    let count = |sql: &'static str| {
        let client = &client;
        async move { client.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    assert_eq!(count("SELECT count(*) FROM partitions").await, 3);
    meta.put_topic(&TopicRecord {
        partitions: 4,
        ..doomed.clone()
    })
    .await
    .unwrap();
    assert_eq!(count("SELECT count(*) FROM partitions").await, 5);
    for (topic, partition) in [(doomed.id, 0), (kept.id, 0)] {
        client
            .execute(
                "INSERT INTO batches (topic_id, partition, base_offset, last_offset, max_timestamp, bytes)
                 VALUES ($1, $2, 0, 0, 0, '\\x00')",
                &[&topic, &partition],
            )
            .await
            .unwrap();
        client
            .execute(
                "INSERT INTO producer_snapshots (topic_id, partition, snapshot_offset, state)
                 VALUES ($1, $2, 0, '\\x00')",
                &[&topic, &partition],
            )
            .await
            .unwrap();
        client
            .execute(
                "INSERT INTO leases (kind, name, owner, epoch, expires_at)
                 VALUES ('partition', $1, 1, 1, now())",
                &[&format!("{topic}:{partition}")],
            )
            .await
            .unwrap();
    }
    assert!(meta.delete_topic("doomed").await.unwrap());
    assert!(!meta.delete_topic("doomed").await.unwrap());
    assert_eq!(count("SELECT count(*) FROM partitions").await, 1);
    assert_eq!(count("SELECT count(*) FROM batches").await, 1);
    assert_eq!(count("SELECT count(*) FROM producer_snapshots").await, 1);
    assert_eq!(count("SELECT count(*) FROM leases").await, 1);
    assert_eq!(meta.topics().await.unwrap(), vec![kept]);
}

/// Two nodes creating a topic of the same name at once: the second write is refused, not
/// stored over the first (whose partitions another node may already lead); a write from a copy
/// with fewer partitions than stored is refused too, and a newer one goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_created_or_grown_elsewhere_is_not_overwritten() {
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let pool = pg.pool("conflicts", 4).await;
    let node_a = PgMetadata::new(pool.clone());
    let node_b = PgMetadata::new(pool.clone());
    let first = TopicRecord::new("orders", 8);
    node_a.put_topic(&first).await.unwrap();
    let rival = TopicRecord::new("orders", 1);
    let refused = node_b.put_topic(&rival).await.unwrap_err();
    assert!(
        matches!(refused, starling_meta::MetaError::Conflict(_)),
        "{refused}"
    );
    assert_eq!(node_a.topics().await.unwrap(), vec![first.clone()]);
    let grown = TopicRecord {
        partitions: 12,
        ..first.clone()
    };
    node_a.put_topic(&grown).await.unwrap();
    let stale = TopicRecord {
        configs: [("retention.ms".to_string(), "1000".to_string())].into(),
        ..first.clone()
    };
    assert!(matches!(
        node_b.put_topic(&stale).await,
        Err(starling_meta::MetaError::Conflict(_))
    ));
    let reconfigured = TopicRecord {
        configs: stale.configs.clone(),
        ..grown.clone()
    };
    node_b.put_topic(&reconfigured).await.unwrap();
    assert_eq!(node_a.topics().await.unwrap(), vec![reconfigured]);
    let client = pool.get().await.unwrap();
    let partitions: i64 = client
        .query_one("SELECT count(*) FROM partitions", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(partitions, 12);
}

/// Every change another node must take in is notified with its kind once it commits; a
/// transaction coordinator's records (which no other node keeps in memory) are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_metadata_change_is_notified_with_its_kind() {
    use starling_meta::{AclRecord, ClientQuotaRecord};
    use starling_postgres::metadata::MetadataKind;
    use starling_postgres::notify::{Event, Listener};
    use std::collections::BTreeMap;
    use std::time::Duration;

    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let url = pg.create_database("notified").unwrap();
    let meta = PgMetadata::new(connect(&url, 4).await.unwrap());
    let mut listener = Listener::connect(&url).await.unwrap();
    let mut next_change = async || loop {
        match listener.next(Duration::from_secs(5)).await {
            Some(Event::MetadataChanged(kind)) => return Some(kind),
            Some(_) => continue,
            None => return None,
        }
    };
    meta.put_topic(&TopicRecord::new("orders", 2))
        .await
        .unwrap();
    assert_eq!(next_change().await, Some(MetadataKind::Topics));
    meta.delete_topic("orders").await.unwrap();
    assert_eq!(next_change().await, Some(MetadataKind::Topics));
    let configs = BTreeMap::from([("log.retention.ms".to_string(), "1000".to_string())]);
    meta.put_broker_configs("", &configs).await.unwrap();
    assert_eq!(next_change().await, Some(MetadataKind::BrokerConfigs));
    let quota = ClientQuotaRecord {
        entity: BTreeMap::from([("client-id".to_string(), Some("app".to_string()))]),
        quotas: BTreeMap::from([("producer_byte_rate".to_string(), 1024.0)]),
    };
    meta.put_client_quotas(&[quota]).await.unwrap();
    assert_eq!(next_change().await, Some(MetadataKind::ClientQuotas));
    let acl = AclRecord {
        resource_type: 2,
        resource_name: "orders".to_string(),
        pattern_type: 3,
        principal: "User:alice".to_string(),
        host: "*".to_string(),
        operation: 3,
        permission: 3,
    };
    meta.update_acls(&[acl], &[]).await.unwrap();
    assert_eq!(next_change().await, Some(MetadataKind::Acls));
    meta.write_txn_records(&[starling_txn::TxnRecord {
        transactional_id: "app".to_string(),
        value: None,
    }])
    .await
    .unwrap();
    assert_eq!(
        next_change().await,
        None,
        "transaction records are not followed"
    );
}

/// Topics and keyed records (ACL bindings here) come back in the byte order of their keys, as
/// from the embedded store, on a database whose collation sorts those keys otherwise: case
/// ("Orders" before "orders" in bytes) and punctuation against letters ('-' < '.' < 'Z' < '_' <
/// 'a').
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_come_back_in_byte_order_whatever_the_databases_collation() {
    use starling_meta::AclRecord;

    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let meta = PgMetadata::new(pg.pool_with_language_collation("byte_order", 4).await);
    let mut names = starling_postgres::testing::NAMES_A_LANGUAGE_SORTS_OTHERWISE;
    let acl = |name: &str| AclRecord {
        resource_type: 2,
        resource_name: name.to_string(),
        pattern_type: 3,
        principal: "User:alice".to_string(),
        host: "*".to_string(),
        operation: 3,
        permission: 3,
    };
    for name in names {
        meta.put_topic(&TopicRecord::new(name, 1)).await.unwrap();
    }
    meta.update_acls(&names.map(acl), &[]).await.unwrap();
    names.sort();
    let topics: Vec<String> = meta
        .topics()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(topics, names);
    let mut acls = names.map(acl);
    acls.sort_by_key(AclRecord::key);
    assert_eq!(meta.acls().await.unwrap(), acls);
}
