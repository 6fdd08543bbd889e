//! The metadata seam: what the broker asks of its metadata, whichever back end keeps it —
//! this crate's embedded redb [`MetadataStore`], or PostgreSQL for a cluster
//! (`starling-postgres`, see `docs/design/cluster.md`).
//!
//! The methods are async because the PostgreSQL back end is; the embedded store runs each call
//! on a blocking thread, as the broker does today. Both back ends pass one conformance suite
//! ([`conformance`]): the behaviour the broker relies on is asserted against each.
//!
//! The seam covers the cluster id, producer id blocks, topics, run-time broker configs, client
//! quotas, ACLs, SCRAM credentials and the transaction coordinator's records. The group
//! coordinator's records are not here: in a cluster they are written per group under the
//! group's lease (`starling_postgres::group_records`), which the embedded store has no need of.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use starling_txn::TxnRecord;

use crate::{
    AclRecord, ClientQuotaRecord, MetaError, MetadataStore, ScramCredentialChange,
    ScramCredentialRecord, TopicRecord,
};

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
    /// Creates a topic, or replaces the one of the same name and id. A shared store refuses
    /// ([`MetaError::Conflict`]) a topic whose name another node gave another id, and a write
    /// that would take partitions away (written from a copy older than the stored one).
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
    /// Every entity with client quotas, in key order.
    fn client_quotas(
        &self,
    ) -> impl Future<Output = Result<Vec<ClientQuotaRecord>, MetaError>> + Send;
    /// Replaces each entity's quotas, all or none; empty quotas remove the entity.
    fn put_client_quotas(
        &self,
        records: &[ClientQuotaRecord],
    ) -> impl Future<Output = Result<(), MetaError>> + Send;
    /// Every ACL binding, in key order.
    fn acls(&self) -> impl Future<Output = Result<Vec<AclRecord>, MetaError>> + Send;
    /// Removes `remove` and adds `add`, all or none; adding a stored binding or removing an
    /// absent one changes nothing.
    fn update_acls(
        &self,
        add: &[AclRecord],
        remove: &[AclRecord],
    ) -> impl Future<Output = Result<(), MetaError>> + Send;
    /// Every SCRAM credential, by user then mechanism.
    fn scram_credentials(
        &self,
    ) -> impl Future<Output = Result<Vec<ScramCredentialRecord>, MetaError>> + Send;
    /// One user's credential for one mechanism.
    fn scram_credential(
        &self,
        user: &str,
        mechanism: &str,
    ) -> impl Future<Output = Result<Option<ScramCredentialRecord>, MetaError>> + Send;
    /// Applies credential changes in order, all or none.
    fn write_scram_credentials(
        &self,
        changes: &[ScramCredentialChange],
    ) -> impl Future<Output = Result<(), MetaError>> + Send;
    /// Every transaction record, latest per transactional id, in key order.
    fn txn_records(&self) -> impl Future<Output = Result<Vec<TxnRecord>, MetaError>> + Send;
    /// Stores the transaction coordinator's records in order, all or none; a record with no
    /// value deletes its key.
    fn write_txn_records(
        &self,
        records: &[TxnRecord],
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

    async fn client_quotas(&self) -> Result<Vec<ClientQuotaRecord>, MetaError> {
        blocking(self, |s| s.client_quotas()).await
    }

    async fn put_client_quotas(&self, records: &[ClientQuotaRecord]) -> Result<(), MetaError> {
        let records = records.to_vec();
        blocking(self, move |s| s.put_client_quotas(&records)).await
    }

    async fn acls(&self) -> Result<Vec<AclRecord>, MetaError> {
        blocking(self, |s| s.acls()).await
    }

    async fn update_acls(&self, add: &[AclRecord], remove: &[AclRecord]) -> Result<(), MetaError> {
        let (add, remove) = (add.to_vec(), remove.to_vec());
        blocking(self, move |s| s.update_acls(&add, &remove)).await
    }

    async fn scram_credentials(&self) -> Result<Vec<ScramCredentialRecord>, MetaError> {
        blocking(self, |s| s.scram_credentials()).await
    }

    async fn scram_credential(
        &self,
        user: &str,
        mechanism: &str,
    ) -> Result<Option<ScramCredentialRecord>, MetaError> {
        let (user, mechanism) = (user.to_string(), mechanism.to_string());
        blocking(self, move |s| s.scram_credential(&user, &mechanism)).await
    }

    async fn write_scram_credentials(
        &self,
        changes: &[ScramCredentialChange],
    ) -> Result<(), MetaError> {
        let changes = changes.to_vec();
        blocking(self, move |s| s.write_scram_credentials(&changes)).await
    }

    async fn txn_records(&self) -> Result<Vec<TxnRecord>, MetaError> {
        blocking(self, |s| s.txn_records()).await
    }

    async fn write_txn_records(&self, records: &[TxnRecord]) -> Result<(), MetaError> {
        let records = records.to_vec();
        blocking(self, move |s| s.write_txn_records(&records)).await
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
        client_quotas_are_replaced_per_entity_and_empty_quotas_remove_it(backend).await;
        acl_bindings_are_added_and_removed_idempotently(backend).await;
        scram_credentials_are_kept_per_user_and_mechanism(backend).await;
        transaction_records_keep_the_latest_per_id_and_a_deletion_removes_it(backend).await;
    }

    pub async fn client_quotas_are_replaced_per_entity_and_empty_quotas_remove_it<
        B: MetadataBackend,
    >(
        backend: &B,
    ) {
        let entity =
            |user: Option<&str>| BTreeMap::from([("user".to_string(), user.map(str::to_string))]);
        let alice = ClientQuotaRecord {
            entity: entity(Some("alice")),
            quotas: BTreeMap::from([("producer_byte_rate".to_string(), 1024.0)]),
        };
        let default = ClientQuotaRecord {
            entity: entity(None),
            quotas: BTreeMap::from([("consumer_byte_rate".to_string(), 2048.5)]),
        };
        backend
            .put_client_quotas(&[alice.clone(), default.clone()])
            .await
            .unwrap();
        let mut expected = vec![alice.clone(), default.clone()];
        expected.sort_by_key(|r| ClientQuotaRecord::key(&r.entity));
        assert_eq!(backend.client_quotas().await.unwrap(), expected);
        let gone = ClientQuotaRecord {
            entity: entity(Some("alice")),
            quotas: BTreeMap::new(),
        };
        backend.put_client_quotas(&[gone]).await.unwrap();
        assert_eq!(backend.client_quotas().await.unwrap(), vec![default]);
    }

    pub async fn acl_bindings_are_added_and_removed_idempotently<B: MetadataBackend>(backend: &B) {
        let binding = |principal: &str, operation: i8| AclRecord {
            resource_type: 2,
            resource_name: "orders".to_string(),
            pattern_type: 3,
            principal: principal.to_string(),
            host: "*".to_string(),
            operation,
            permission: 3,
        };
        let (read, write) = (binding("User:alice", 3), binding("User:alice", 4));
        backend
            .update_acls(&[read.clone(), write.clone(), read.clone()], &[])
            .await
            .unwrap();
        let mut both = vec![read.clone(), write.clone()];
        both.sort_by_key(AclRecord::key);
        assert_eq!(backend.acls().await.unwrap(), both);
        let bob = binding("User:bob", 3);
        backend
            .update_acls(
                std::slice::from_ref(&bob),
                &[read, binding("User:nobody", 3)],
            )
            .await
            .unwrap();
        let mut left = vec![write, bob];
        left.sort_by_key(AclRecord::key);
        assert_eq!(backend.acls().await.unwrap(), left);
    }

    pub async fn scram_credentials_are_kept_per_user_and_mechanism<B: MetadataBackend>(
        backend: &B,
    ) {
        let credential = |user: &str, mechanism: &str, iterations: u32| ScramCredentialRecord {
            user: user.to_string(),
            mechanism: mechanism.to_string(),
            salt: vec![1, 2, 3],
            stored_key: vec![4; 32],
            server_key: vec![5; 32],
            iterations,
        };
        let change = |c: &ScramCredentialRecord, keep: bool| ScramCredentialChange {
            user: c.user.clone(),
            mechanism: c.mechanism.clone(),
            credential: keep.then(|| c.clone()),
        };
        let a256 = credential("alice", "SCRAM-SHA-256", 4096);
        let a512 = credential("alice", "SCRAM-SHA-512", 8192);
        let odd = credential(&odd_user(), "SCRAM-SHA-256", 4096);
        backend
            .write_scram_credentials(&[
                change(&a256, true),
                change(&a512, true),
                change(&odd, true),
            ])
            .await
            .unwrap();
        assert_eq!(
            backend
                .scram_credential("alice", "SCRAM-SHA-512")
                .await
                .unwrap(),
            Some(a512.clone())
        );
        assert_eq!(
            backend
                .scram_credential("carol", "SCRAM-SHA-256")
                .await
                .unwrap(),
            None
        );
        // A newer credential replaces the old; a removal deletes it.
        let a256_again = credential("alice", "SCRAM-SHA-256", 10_000);
        backend
            .write_scram_credentials(&[change(&a256_again, true), change(&a512, false)])
            .await
            .unwrap();
        let mut expected = vec![a256_again, odd];
        expected.sort_by_key(|c| ScramCredentialRecord::key(&c.user, &c.mechanism));
        assert_eq!(backend.scram_credentials().await.unwrap(), expected);
        assert_eq!(
            backend
                .scram_credential(&odd_user(), "SCRAM-SHA-256")
                .await
                .unwrap()
                .map(|c| c.iterations),
            Some(4096)
        );
    }

    /// A user name a client may send: quotes, NUL (which PostgreSQL's text cannot hold) and
    /// the character PostgreSQL's keys escape it with.
    fn odd_user() -> String {
        "bob \"the\" user\0\u{1}".to_string()
    }

    pub async fn transaction_records_keep_the_latest_per_id_and_a_deletion_removes_it<
        B: MetadataBackend,
    >(
        backend: &B,
    ) {
        let record = |id: &str, producer_id: Option<i64>| TxnRecord {
            transactional_id: id.to_string(),
            value: producer_id.map(|producer_id| starling_txn::TransactionValue {
                producer_id,
                last_producer_id: -1,
                producer_epoch: 0,
                last_producer_epoch: -1,
                timeout_ms: 60_000,
                state: starling_txn::TxnState::Empty,
                partitions: Default::default(),
                groups: Default::default(),
                start_ms: -1,
                last_update_ms: 1,
            }),
        };
        backend
            .write_txn_records(&[
                record("b", Some(1)),
                record("a", Some(2)),
                record("b", Some(3)),
                record("a\0", Some(4)),
                record("\0", Some(5)),
            ])
            .await
            .unwrap();
        // In the byte order of the ids, NUL included.
        assert_eq!(
            backend.txn_records().await.unwrap(),
            vec![
                record("\0", Some(5)),
                record("a", Some(2)),
                record("a\0", Some(4)),
                record("b", Some(3))
            ]
        );
        backend
            .write_txn_records(&[record("a\0", None), record("\0", None)])
            .await
            .unwrap();
        backend
            .write_txn_records(&[record("a", None)])
            .await
            .unwrap();
        assert_eq!(
            backend.txn_records().await.unwrap(),
            vec![record("b", Some(3))]
        );
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
        orders
            .configs
            .insert("odd\0name".to_string(), "odd\0value\u{1}".to_string());
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
        // Values are the broker's to check; whatever it keeps comes back, NUL included.
        let node = BTreeMap::from([
            ("log.retention.ms".to_string(), "2000".to_string()),
            ("max.connections".to_string(), "50".to_string()),
            ("odd\0name".to_string(), "odd\0value\u{1}".to_string()),
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
