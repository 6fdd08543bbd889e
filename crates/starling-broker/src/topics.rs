//! Topics and their partitions: the in-memory registry over the partition logs, kept in step
//! with the metadata store.
//!
//! A [`Topic`] is immutable once built; growing or deleting a topic swaps the entry in the
//! registry, so a request that already holds an `Arc<Topic>` finishes against a consistent view.
//! Admin changes are serialized by one lock and persisted (in the metadata storage, embedded
//! or PostgreSQL) before they are visible.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use crate::leases::NodeLeases;
use crate::partition_store::{PartitionStore, PgReplica};
use kafka_protocol::ResponseError;
use parking_lot::{Mutex, RwLock};
use starling_group::assignor::TopicMetadata;
use starling_group::TopicsImage;
use starling_log::{LogConfig, LogError, PartitionLog};
use starling_meta::backend::MetadataBackend;
use starling_meta::{MetaError, TopicRecord};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::config::{apply_topic_config, BrokerConfig, ConfigError};
use crate::now_ms;
use crate::storage::MetadataStorage;

/// Kafka's limit on topic name length.
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// One partition: its records, a signal that new data arrived (for long-polling fetches) and
/// how many record bytes clients produced to and fetched from it (for metrics).
pub struct Partition {
    pub topic: String,
    pub index: i32,
    pub log: PartitionStore,
    pub appended: Notify,
    /// Record bytes appended by Produce since the broker started.
    pub produced_bytes: AtomicU64,
    /// Record bytes returned by Fetch since the broker started.
    pub fetched_bytes: AtomicU64,
}

impl Partition {
    pub fn new(topic: &str, index: i32, log: PartitionStore) -> Partition {
        Partition {
            topic: topic.to_string(),
            index,
            log,
            appended: Notify::new(),
            produced_bytes: AtomicU64::new(0),
            fetched_bytes: AtomicU64::new(0),
        }
    }
}

/// One topic as served.
pub struct Topic {
    pub name: String,
    pub id: Uuid,
    pub configs: BTreeMap<String, String>,
    pub partitions: Vec<Arc<Partition>>,
}

impl Topic {
    pub fn partition(&self, index: i32) -> Option<&Arc<Partition>> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.partitions.get(i))
    }
}

/// An admin operation refused with a Kafka error code and message.
#[derive(Debug, Clone)]
pub struct AdminError {
    pub code: ResponseError,
    pub message: String,
}

impl AdminError {
    pub fn new(code: ResponseError, message: impl Into<String>) -> AdminError {
        AdminError {
            code,
            message: message.into(),
        }
    }
}

/// Checks a topic name the way Kafka does.
pub fn validate_topic_name(name: &str) -> Result<(), AdminError> {
    let bad = |why: String| Err(AdminError::new(ResponseError::InvalidTopicException, why));
    if name.is_empty() {
        return bad("Topic name is illegal, it can't be empty".into());
    }
    if name == "." || name == ".." {
        return bad("Topic name cannot be \".\" or \"..\"".into());
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return bad(format!(
            "Topic name is illegal, it can't be longer than {MAX_TOPIC_NAME_LEN} characters"
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
    {
        return bad(format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// Topics by name and id.
pub struct TopicRegistry {
    data_dir: PathBuf,
    store: MetadataStorage,
    /// The log settings of a topic without overrides: the broker's `log.*` configs in force
    /// (static, then changed at run time).
    defaults: RwLock<LogConfig>,
    topics: RwLock<HashMap<String, Arc<Topic>>>,
    /// Serializes admin changes, across their writes to the storage.
    admin: tokio::sync::Mutex<()>,
    /// Serializes giving logs their settings: a topic made visible with the defaults in force
    /// against a change of the defaults, so neither misses the other.
    applying: Mutex<()>,
    /// Every topic's id, name and partition count, republished after each change: the group
    /// coordinator follows it for consumer-protocol subscriptions.
    image: tokio::sync::watch::Sender<TopicsImage>,
    /// With PostgreSQL storage: the partitions this node leads.
    leadership: Option<Arc<NodeLeases>>,
}

impl TopicRegistry {
    /// Opens (recovering) the partition logs of `records`, the topics `store` holds. Blocking:
    /// recovery reads the logs.
    pub fn open(
        config: &BrokerConfig,
        store: MetadataStorage,
        records: Vec<TopicRecord>,
    ) -> anyhow::Result<TopicRegistry> {
        let leadership = match &store {
            MetadataStorage::Embedded(_) => None,
            MetadataStorage::Postgres(pg) => Some(Arc::new(NodeLeases::new(
                pg.pool().clone(),
                config.node_id,
                std::time::Duration::from_millis(config.broker_session_timeout_ms),
                std::time::Duration::from_millis(config.broker_heartbeat_interval_ms),
            ))),
        };
        let registry = TopicRegistry {
            leadership,
            data_dir: config.data_dir.clone(),
            store,
            defaults: RwLock::new(config.log.clone()),
            topics: RwLock::new(HashMap::new()),
            admin: tokio::sync::Mutex::new(()),
            applying: Mutex::new(()),
            image: tokio::sync::watch::Sender::new(TopicsImage::default()),
        };
        for record in records {
            let topic = registry.build_topic(&record, Vec::new())?;
            tracing::info!(topic = %record.name, partitions = record.partitions, "loaded topic");
            registry
                .topics
                .write()
                .insert(record.name.clone(), Arc::new(topic));
        }
        registry.publish_image();
        Ok(registry)
    }

    /// With PostgreSQL storage: the partitions this node leads.
    pub fn leadership(&self) -> Option<&Arc<NodeLeases>> {
        self.leadership.as_ref()
    }

    /// With PostgreSQL storage, a leadership round now, so partitions just created have a
    /// leader when the request that created them is answered.
    async fn lead_new_partitions(&self) {
        if let Some(leadership) = &self.leadership {
            if let Err(e) = leadership.round(self).await {
                tracing::warn!(error = %e, "leading the new partitions failed; the next round tries again");
            }
        }
    }

    /// Whether partitions live in PostgreSQL.
    fn in_postgres(&self) -> bool {
        matches!(self.store, MetadataStorage::Postgres(_))
    }

    /// Follows the topics as the group coordinator sees them (see [`TopicsImage`]).
    pub fn watch_image(&self) -> tokio::sync::watch::Receiver<TopicsImage> {
        self.image.subscribe()
    }

    fn publish_image(&self) {
        let image = TopicsImage::new(
            self.topics
                .read()
                .values()
                .map(|t| TopicMetadata::new(t.id, t.name.clone(), t.partitions.len() as u32)),
        );
        self.image.send_replace(image);
    }

    pub fn get(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics.read().get(name).cloned()
    }

    pub fn get_by_id(&self, id: Uuid) -> Option<Arc<Topic>> {
        self.topics.read().values().find(|t| t.id == id).cloned()
    }

    /// A partition's log end offset (its high watermark, on one node), if it exists.
    pub fn log_end_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        let topic = self.get(topic)?;
        Some(topic.partition(partition)?.log.log_end_offset())
    }

    /// All topics, sorted by name.
    pub fn all(&self) -> Vec<Arc<Topic>> {
        let mut all: Vec<_> = self.topics.read().values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// The log config a topic with these overrides gets.
    pub fn log_config(&self, configs: &BTreeMap<String, String>) -> Result<LogConfig, ConfigError> {
        let mut log = self.defaults.read().clone();
        for (k, v) in configs {
            apply_topic_config(&mut log, k, v)?;
        }
        Ok(log)
    }

    fn partition_dir(&self, topic: &str, index: i32) -> PathBuf {
        self.data_dir.join(format!("{topic}-{index}"))
    }

    fn build_topic(
        &self,
        record: &TopicRecord,
        mut existing: Vec<Arc<Partition>>,
    ) -> anyhow::Result<Topic> {
        let log_config = self
            .log_config(&record.configs)
            .map_err(|e| anyhow::anyhow!("topic {}: {e}", record.name))?;
        for index in existing.len() as i32..record.partitions as i32 {
            if self.in_postgres() {
                existing.push(Arc::new(Partition::new(
                    &record.name,
                    index,
                    PartitionStore::Postgres(PgReplica::new(log_config.clone())),
                )));
                continue;
            }
            let dir = self.partition_dir(&record.name, index);
            let log = PartitionLog::open(&dir, log_config.clone(), now_ms()).map_err(|e| {
                let repair = matches!(e, LogError::Corruption { .. }).then(|| {
                    format!(
                        "; to truncate it at the damage run `starling log repair --data-dir {} \
                         --topic {} --partition {index}` (with --dry-run first to see what it removes)",
                        self.data_dir.display(),
                        record.name
                    )
                });
                anyhow::Error::new(e).context(format!(
                    "opening partition {}-{index} in {}{}",
                    record.name,
                    self.data_dir.display(),
                    repair.unwrap_or_default()
                ))
            })?;
            existing.push(Arc::new(Partition::new(
                &record.name,
                index,
                PartitionStore::Embedded(log),
            )));
        }
        Ok(Topic {
            name: record.name.clone(),
            id: record.id,
            configs: record.configs.clone(),
            partitions: existing,
        })
    }

    /// A partition directory with no topic behind it is left over from a crash between
    /// creating it and persisting the topic; a new partition must not inherit its data.
    fn remove_stale_dir(&self, topic: &str, index: i32) {
        if self.in_postgres() {
            return;
        }
        let dir = self.partition_dir(topic, index);
        if dir.exists() {
            tracing::warn!(dir = %dir.display(), "removing a leftover directory of a topic that does not exist");
            remove_partition_dir(&dir);
        }
    }

    /// Removes directories that a deletion renamed but a crash left behind.
    pub fn remove_deleted_leftovers(&self) {
        let Ok(entries) = std::fs::read_dir(&self.data_dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name.to_string_lossy().ends_with("-delete") && entry.path().is_dir() {
                remove_partition_dir(&entry.path());
            }
        }
    }

    /// Makes `topic` visible, its logs on the settings in force (under the `applying` lock).
    fn install(&self, topic: Topic) -> Arc<Topic> {
        let _applying = self.applying.lock();
        match self.log_config(&topic.configs) {
            Ok(log_config) => {
                for partition in &topic.partitions {
                    partition.log.set_config(log_config.clone());
                }
            }
            Err(e) => tracing::warn!(topic = %topic.name, error = %e, "keeping the log settings"),
        }
        let topic = Arc::new(topic);
        self.topics
            .write()
            .insert(topic.name.clone(), topic.clone());
        topic
    }

    /// Validates a topic creation; with `apply`, persists and opens it.
    pub async fn create(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
        apply: bool,
    ) -> Result<Arc<Topic>, AdminError> {
        validate_topic_name(name)?;
        if partitions <= 0 {
            return Err(AdminError::new(
                ResponseError::InvalidPartitions,
                format!(
                    "Number of partitions was set to an invalid non-positive value: {partitions}"
                ),
            ));
        }
        self.log_config(&configs)
            .map_err(|e| AdminError::new(ResponseError::InvalidConfig, e.to_string()))?;
        let _guard = self.admin.lock().await;
        if self.topics.read().contains_key(name) {
            return Err(AdminError::new(
                ResponseError::TopicAlreadyExists,
                format!("Topic '{name}' already exists."),
            ));
        }
        if let Some(other) = self.topics.read().keys().find(|t| collides(t, name)) {
            return Err(AdminError::new(
                ResponseError::InvalidTopicException,
                format!("Topic '{name}' collides with existing topic: {other}"),
            ));
        }
        let record = TopicRecord {
            name: name.into(),
            id: Uuid::new_v4(),
            partitions: partitions as u32,
            configs,
        };
        let topic = if apply {
            for index in 0..partitions {
                self.remove_stale_dir(name, index);
            }
            let topic = self
                .build_topic(&record, Vec::new())
                .map_err(storage_error)?;
            self.store.put_topic(&record).await.map_err(|e| match e {
                MetaError::Conflict(_) => AdminError::new(
                    ResponseError::TopicAlreadyExists,
                    format!("Topic '{name}' already exists."),
                ),
                e => storage_error(e),
            })?;
            let topic = self.install(topic);
            self.publish_image();
            tracing::info!(topic = name, partitions, "created topic");
            self.lead_new_partitions().await;
            topic
        } else {
            Arc::new(Topic {
                name: record.name,
                id: record.id,
                configs: record.configs,
                partitions: Vec::new(),
            })
        };
        Ok(topic)
    }

    /// Grows a topic to `count` partitions.
    pub async fn create_partitions(
        &self,
        name: &str,
        count: i32,
        apply: bool,
    ) -> Result<(), AdminError> {
        let _guard = self.admin.lock().await;
        let topic = self.existing(name)?;
        let current = topic.partitions.len() as i32;
        if count < current {
            return Err(AdminError::new(
                ResponseError::InvalidPartitions,
                format!("Topic currently has {current} partitions, which is higher than the requested {count}."),
            ));
        }
        if count == current {
            return Err(AdminError::new(
                ResponseError::InvalidPartitions,
                format!("Topic already has {current} partitions."),
            ));
        }
        if !apply {
            return Ok(());
        }
        let record = TopicRecord {
            name: name.into(),
            id: topic.id,
            partitions: count as u32,
            configs: topic.configs.clone(),
        };
        for index in current..count {
            self.remove_stale_dir(name, index);
        }
        let grown = self
            .build_topic(&record, topic.partitions.clone())
            .map_err(storage_error)?;
        self.store.put_topic(&record).await.map_err(storage_error)?;
        self.install(grown);
        self.publish_image();
        tracing::info!(topic = name, from = current, to = count, "added partitions");
        self.lead_new_partitions().await;
        Ok(())
    }

    /// The topic named `name`, or Kafka's UNKNOWN_TOPIC_OR_PARTITION for an admin request.
    pub fn existing(&self, name: &str) -> Result<Arc<Topic>, AdminError> {
        self.get(name).ok_or_else(|| {
            AdminError::new(
                ResponseError::UnknownTopicOrPartition,
                format!("The topic '{name}' does not exist."),
            )
        })
    }

    /// Replaces a topic's config overrides with what `next` makes of the current ones
    /// (AlterConfigs: the given set; IncrementalAlterConfigs: the current set changed key by
    /// key), under the admin lock so concurrent changes do not lose each other's keys. Every
    /// key and value is checked (INVALID_CONFIG naming the first bad one); with `apply` the
    /// overrides are persisted and every partition's log takes them at once.
    pub async fn alter_configs(
        &self,
        name: &str,
        next: impl FnOnce(&BTreeMap<String, String>) -> Result<BTreeMap<String, String>, AdminError>,
        apply: bool,
    ) -> Result<(), AdminError> {
        let _guard = self.admin.lock().await;
        let topic = self.existing(name)?;
        let configs = next(&topic.configs)?;
        self.log_config(&configs).map_err(|e| match e {
            ConfigError::UnknownKey(key) => AdminError::new(
                ResponseError::InvalidConfig,
                format!("Unknown topic config name: {key}"),
            ),
            other => AdminError::new(ResponseError::InvalidConfig, other.to_string()),
        })?;
        if !apply {
            return Ok(());
        }
        let record = TopicRecord {
            name: name.into(),
            id: topic.id,
            partitions: topic.partitions.len() as u32,
            configs: configs.clone(),
        };
        self.store.put_topic(&record).await.map_err(storage_error)?;
        self.install(Topic {
            name: topic.name.clone(),
            id: topic.id,
            configs,
            partitions: topic.partitions.clone(),
        });
        tracing::info!(topic = name, configs = ?record.configs, "topic configs changed");
        Ok(())
    }

    /// Takes new broker-level log defaults (a run-time change of `log.retention.ms` and the
    /// like): every topic's logs get their settings again, overrides still on top.
    pub fn set_defaults(&self, defaults: LogConfig) {
        let _applying = self.applying.lock();
        *self.defaults.write() = defaults;
        for topic in self.all() {
            match self.log_config(&topic.configs) {
                Ok(log_config) => {
                    for partition in &topic.partitions {
                        partition.log.set_config(log_config.clone());
                    }
                }
                Err(e) => {
                    tracing::warn!(topic = %topic.name, error = %e, "keeping the old log settings")
                }
            }
        }
    }

    /// The log settings a topic has now (its overrides over the defaults in force).
    pub fn effective_log_config(&self, topic: &Topic) -> LogConfig {
        self.log_config(&topic.configs)
            .unwrap_or_else(|_| self.defaults.read().clone())
    }

    /// Deletes a topic and its data.
    pub async fn delete(&self, name: &str) -> Result<Uuid, AdminError> {
        let _guard = self.admin.lock().await;
        let topic = self.get(name).ok_or_else(|| {
            AdminError::new(
                ResponseError::UnknownTopicOrPartition,
                "This server does not host this topic-partition.",
            )
        })?;
        self.store.delete_topic(name).await.map_err(storage_error)?;
        self.forget(&topic);
        self.publish_image();
        tracing::info!(topic = name, "deleted topic");
        Ok(topic.id)
    }

    /// With PostgreSQL storage: takes in the topic changes other nodes made — topics created,
    /// grown, reconfigured or deleted there — by reading every stored topic (under the admin
    /// lock, so no change of this node's is half applied).
    pub async fn follow_stored(&self) -> Result<(), MetaError> {
        if !self.in_postgres() {
            return Ok(());
        }
        let _guard = self.admin.lock().await;
        let stored = self.store.topics().await?;
        let mut changed = false;
        let names: HashSet<&str> = stored.iter().map(|r| r.name.as_str()).collect();
        let gone: Vec<Arc<Topic>> = self
            .all()
            .into_iter()
            .filter(|t| !names.contains(t.name.as_str()))
            .collect();
        for topic in gone {
            self.forget(&topic);
            tracing::info!(topic = %topic.name, "topic deleted by another node");
            changed = true;
        }
        for record in &stored {
            let held = self.get(&record.name);
            let existing = match &held {
                // Deleted and created again elsewhere: a new topic under the same name.
                Some(topic) if topic.id != record.id => {
                    self.forget(topic);
                    Vec::new()
                }
                Some(topic)
                    if topic.partitions.len() as u32 == record.partitions
                        && topic.configs == record.configs =>
                {
                    continue
                }
                Some(topic) => topic.partitions.clone(),
                None => Vec::new(),
            };
            match self.build_topic(record, existing) {
                Ok(topic) => {
                    self.install(topic);
                    tracing::info!(topic = %record.name, partitions = record.partitions, "took in a topic change made by another node");
                    changed = true;
                }
                Err(e) => {
                    tracing::warn!(topic = %record.name, error = %e, "taking in a topic changed by another node failed")
                }
            }
        }
        if changed {
            self.publish_image();
        }
        Ok(())
    }

    /// Drops a deleted topic (here, or by another node sharing the database): embedded
    /// partitions are closed and their directories removed, PostgreSQL ones (whose rows and
    /// leases went with the topic's) stop being led, and waiting fetches wake.
    fn forget(&self, topic: &Topic) {
        self.topics.write().remove(&topic.name);
        for p in &topic.partitions {
            match &p.log {
                PartitionStore::Embedded(log) => {
                    if let Err(e) = log.close() {
                        tracing::warn!(topic = %topic.name, partition = p.index, error = %e, "closing a deleted partition");
                    }
                    remove_partition_dir(log.dir());
                }
                PartitionStore::Postgres(replica) => replica.set_leader(None),
            }
            p.appended.notify_waiters();
        }
    }

    /// Runs `f` over every partition of every topic.
    pub fn for_each_partition(&self, mut f: impl FnMut(&Partition)) {
        for topic in self.all() {
            for p in &topic.partitions {
                f(p);
            }
        }
    }
}

/// Kafka refuses topics whose names differ only by '.' versus '_' (they collide in metric names).
fn collides(a: &str, b: &str) -> bool {
    a != b && a.replace('.', "_") == b.replace('.', "_")
}

fn storage_error(e: impl std::fmt::Display) -> AdminError {
    AdminError::new(ResponseError::KafkaStorageError, e.to_string())
}

/// Renames the directory out of the way first so a crash mid-delete never leaves a
/// half-deleted partition that would be loaded again, then removes it.
fn remove_partition_dir(dir: &Path) {
    let doomed = dir.with_extension(format!("{}-delete", Uuid::new_v4().simple()));
    let target = match std::fs::rename(dir, &doomed) {
        Ok(()) => doomed,
        Err(_) => dir.to_path_buf(),
    };
    if let Err(e) = std::fs::remove_dir_all(&target) {
        tracing::warn!(dir = %target.display(), error = %e, "removing a deleted partition's directory");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("orders.v1_x-2").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "ü"] {
            assert_eq!(
                validate_topic_name(bad).unwrap_err().code,
                ResponseError::InvalidTopicException,
                "{bad:?}"
            );
        }
        assert!(validate_topic_name(&"a".repeat(249)).is_ok());
        assert!(validate_topic_name(&"a".repeat(250)).is_err());
    }

    #[test]
    fn dot_and_underscore_names_collide() {
        assert!(collides("a.b", "a_b"));
        assert!(!collides("a.b", "a.b"));
    }
}
