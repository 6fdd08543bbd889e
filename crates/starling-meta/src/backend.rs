//! The metadata seam: what the broker asks of its metadata, whichever back end keeps it —
//! this crate's embedded redb [`MetadataStore`], or PostgreSQL for a cluster
//! (`starling-postgres`, see `docs/design/cluster.md`).
//!
//! The methods are async because the PostgreSQL back end is; the embedded store runs each call
//! on a blocking thread, as the broker does today. Both back ends pass one conformance suite
//! ([`conformance`]): the behaviour the broker relies on is asserted against each.
//!
//! This first part of the seam covers the cluster id, producer id blocks, topics and run-time
//! broker configs; quotas, ACLs, SCRAM credentials and the coordinators' records follow.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use crate::{MetaError, MetadataStore, TopicRecord};

/// The metadata operations the broker needs.
pub trait MetadataBackend: Send + Sync {
    /// The cluster id, created on first call; the same ever after.
    fn cluster_id(&self) -> impl Future<Output = Result<String, MetaError>> + Send;
    /// Reserves ids `first .. first + count` for the caller alone and returns `first`: no
    /// reservation, by any caller, before or after a restart, hands any of them out again.
    fn reserve_producer_ids(
        &self,
        count: u32,
    ) -> impl Future<Output = Result<i64, MetaError>> + Send;
    /// Every topic, by name.
    fn topics(&self) -> impl Future<Output = Result<Vec<TopicRecord>, MetaError>> + Send;
    /// Creates or replaces a topic.
    fn put_topic(&self, topic: &TopicRecord) -> impl Future<Output = Result<(), MetaError>> + Send;
    /// Removes a topic; whether it existed.
    fn delete_topic(&self, name: &str) -> impl Future<Output = Result<bool, MetaError>> + Send;
    /// The run-time broker configs by scope (`""`: cluster-wide default; a node id: that node).
    fn broker_configs(
        &self,
    ) -> impl Future<Output = Result<BTreeMap<String, BTreeMap<String, String>>, MetaError>> + Send;
    /// Replaces one scope's run-time configs; an empty map removes the scope.
    fn put_broker_configs(
        &self,
        scope: &str,
        configs: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<(), MetaError>> + Send;
}

/// Runs a store call on a blocking thread.
async fn blocking<T: Send + 'static>(
    store: &Arc<MetadataStore>,
    call: impl FnOnce(&MetadataStore) -> Result<T, MetaError> + Send + 'static,
) -> Result<T, MetaError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || call(&store))
        .await
        .map_err(|e| MetaError::Storage(format!("metadata store task: {e}")))?
}

impl MetadataBackend for Arc<MetadataStore> {
    async fn cluster_id(&self) -> Result<String, MetaError> {
        blocking(self, |s| s.cluster_id()).await
    }

    async fn reserve_producer_ids(&self, count: u32) -> Result<i64, MetaError> {
        blocking(self, move |s| s.reserve_producer_ids(count)).await
    }

    async fn topics(&self) -> Result<Vec<TopicRecord>, MetaError> {
        blocking(self, |s| s.topics()).await
    }

    async fn put_topic(&self, topic: &TopicRecord) -> Result<(), MetaError> {
        let topic = topic.clone();
        blocking(self, move |s| s.put_topic(&topic)).await
    }

    async fn delete_topic(&self, name: &str) -> Result<bool, MetaError> {
        let name = name.to_string();
        blocking(self, move |s| s.delete_topic(&name)).await
    }

    async fn broker_configs(
        &self,
    ) -> Result<BTreeMap<String, BTreeMap<String, String>>, MetaError> {
        blocking(self, |s| s.broker_configs()).await
    }

    async fn put_broker_configs(
        &self,
        scope: &str,
        configs: &BTreeMap<String, String>,
    ) -> Result<(), MetaError> {
        let (scope, configs) = (scope.to_string(), configs.clone());
        blocking(self, move |s| s.put_broker_configs(&scope, &configs)).await
    }
}

/// The conformance suite: each function asserts one behaviour the broker relies on against
/// any back end (panicking with what went wrong), and each back end's tests call them all
/// ([`run_all`]) on a fresh, empty back end.
pub mod conformance {
    use super::*;

    /// Every check, in turn, on one fresh back end.
    pub async fn run_all<B: MetadataBackend + Clone + 'static>(backend: &B) {
        the_cluster_id_is_created_once_and_kept(backend).await;
        producer_id_blocks_never_overlap_even_when_reserved_at_once(backend).await;
        topics_are_listed_by_name_replaced_whole_and_deleted(backend).await;
        broker_configs_are_kept_per_scope_and_an_empty_map_removes_one(backend).await;
    }

    pub async fn the_cluster_id_is_created_once_and_kept<B: MetadataBackend>(backend: &B) {
        let id = backend.cluster_id().await.unwrap();
        assert!(!id.is_empty());
        assert_eq!(backend.cluster_id().await.unwrap(), id);
    }

    pub async fn producer_id_blocks_never_overlap_even_when_reserved_at_once<
        B: MetadataBackend + Clone + 'static,
    >(
        backend: &B,
    ) {
        let first = backend.reserve_producer_ids(10).await.unwrap();
        let second = backend.reserve_producer_ids(5).await.unwrap();
        assert!(second >= first + 10, "{first} then {second}");
        let tasks: Vec<_> = (0..8u32)
            .map(|i| {
                let backend = backend.clone();
                tokio::spawn(async move {
                    let count = 1 + i * 3;
                    (backend.reserve_producer_ids(count).await.unwrap(), count)
                })
            })
            .collect();
        let mut blocks = vec![(first, 10), (second, 5)];
        for task in tasks {
            blocks.push(task.await.unwrap());
        }
        blocks.sort();
        for pair in blocks.windows(2) {
            let ((a, count), (b, _)) = (pair[0], pair[1]);
            assert!(a + i64::from(count) <= b, "overlapping blocks: {blocks:?}");
        }
    }

    pub async fn topics_are_listed_by_name_replaced_whole_and_deleted<B: MetadataBackend>(
        backend: &B,
    ) {
        let mut orders = TopicRecord::new("orders", 3);
        orders
            .configs
            .insert("retention.ms".to_string(), "3600000".to_string());
        let audit = TopicRecord::new("audit", 1);
        backend.put_topic(&orders).await.unwrap();
        backend.put_topic(&audit).await.unwrap();
        assert_eq!(
            backend.topics().await.unwrap(),
            vec![audit.clone(), orders.clone()]
        );
        // Replaced whole: more partitions, the override gone, another set.
        let mut grown = orders.clone();
        grown.partitions = 6;
        grown.configs = BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())]);
        backend.put_topic(&grown).await.unwrap();
        assert_eq!(
            backend.topics().await.unwrap(),
            vec![audit.clone(), grown.clone()]
        );
        assert!(backend.delete_topic("audit").await.unwrap());
        assert!(!backend.delete_topic("audit").await.unwrap());
        assert!(!backend.delete_topic("never").await.unwrap());
        assert_eq!(backend.topics().await.unwrap(), vec![grown]);
        // Names with any characters Kafka allows, and a re-created topic under a new id.
        let again = TopicRecord::new("audit", 2);
        backend.put_topic(&again).await.unwrap();
        let dotted = TopicRecord::new("a.b_c-D", 1);
        backend.put_topic(&dotted).await.unwrap();
        let names: Vec<(String, uuid::Uuid)> = backend
            .topics()
            .await
            .unwrap()
            .into_iter()
            .map(|t| (t.name, t.id))
            .collect();
        assert_eq!(
            names,
            vec![
                ("a.b_c-D".to_string(), dotted.id),
                ("audit".to_string(), again.id),
                ("orders".to_string(), orders.id),
            ]
        );
    }

    pub async fn broker_configs_are_kept_per_scope_and_an_empty_map_removes_one<
        B: MetadataBackend,
    >(
        backend: &B,
    ) {
        let cluster = BTreeMap::from([("log.retention.ms".to_string(), "1000".to_string())]);
        let node = BTreeMap::from([
            ("log.retention.ms".to_string(), "2000".to_string()),
            ("max.connections".to_string(), "50".to_string()),
        ]);
        backend.put_broker_configs("", &cluster).await.unwrap();
        backend.put_broker_configs("1", &node).await.unwrap();
        assert_eq!(
            backend.broker_configs().await.unwrap(),
            BTreeMap::from([("".to_string(), cluster.clone()), ("1".to_string(), node)])
        );
        backend
            .put_broker_configs("1", &BTreeMap::new())
            .await
            .unwrap();
        assert_eq!(
            backend.broker_configs().await.unwrap(),
            BTreeMap::from([("".to_string(), cluster)])
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_embedded_store_passes_the_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(MetadataStore::open(&dir.path().join("meta.redb")).unwrap());
        conformance::run_all(&store).await;
    }
}
