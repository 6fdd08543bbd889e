//! Topic changes over a metadata store whose writes fail (its failpoint), in an in-process
//! broker: a change that cannot be stored is refused with KAFKA_STORAGE_ERROR and leaves the
//! topics as they were, and one failed write does not break later ones.

use std::io::ErrorKind;

use kafka_protocol::ResponseError;
use starling_broker::config::BrokerConfig;
use starling_broker::server::{start, RunningBroker};

async fn broker(dir: &tempfile::TempDir) -> RunningBroker {
    let config = BrokerConfig {
        listeners: vec![starling_broker::listeners::ListenerAddress::plaintext(
            "127.0.0.1:0".parse().unwrap(),
        )],
        admin_listen: None,
        data_dir: dir.path().to_path_buf(),
        ..BrokerConfig::default()
    };
    start(config).await.unwrap()
}

#[tokio::test]
async fn a_topic_change_that_cannot_be_stored_is_refused_and_the_next_one_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let running = broker(&dir).await;
    let broker = running.broker().clone();
    let failpoint = broker.groups.store().embedded().unwrap().failpoint();

    failpoint.fail_writes(1, ErrorKind::StorageFull);
    let Err(refused) = broker
        .topics
        .create("orders", 3, Default::default(), true)
        .await
    else {
        panic!("created while the store refuses writes");
    };
    assert_eq!(refused.code, ResponseError::KafkaStorageError);
    assert!(broker.topics.get("orders").is_none());
    assert!(broker.groups.storage_health().store_fault.is_some());

    // No restart: the store re-opens its database and takes the write.
    broker
        .topics
        .create("orders", 3, Default::default(), true)
        .await
        .unwrap();
    assert_eq!(broker.groups.storage_health().store_fault, None);

    failpoint.fail_writes(u64::MAX, ErrorKind::StorageFull);
    let refused = broker.topics.delete("orders").await.unwrap_err();
    assert_eq!(refused.code, ResponseError::KafkaStorageError);
    assert!(broker.topics.get("orders").is_some());
    failpoint.clear();
    broker.topics.delete("orders").await.unwrap();

    drop(broker);
    running.shutdown().await;
    // What a restart finds is what was stored.
    let running = self::broker(&dir).await;
    assert!(running.broker().topics.get("orders").is_none());
    running.shutdown().await;
}
