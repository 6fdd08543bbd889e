//! Starling's durable metadata: the cluster id and every topic (id, partition count, configs),
//! kept in one embedded [redb](https://docs.rs/redb) database file under the data directory.
//!
//! Every write is its own committed, fsynced transaction, so a change the broker has
//! acknowledged to a client survives a crash. Values are JSON so the file stays inspectable.
//!
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! let store = starling_meta::MetadataStore::open(&dir.path().join("meta.redb")).unwrap();
//! let topic = starling_meta::TopicRecord::new("orders", 3);
//! store.put_topic(&topic).unwrap();
//! assert_eq!(store.topics().unwrap(), vec![topic]);
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

const CLUSTER: TableDefinition<&str, &str> = TableDefinition::new("cluster");
const TOPICS: TableDefinition<&str, &[u8]> = TableDefinition::new("topics");
/// The group coordinator's records, latest per key (a compacted log, as `__consumer_offsets` is).
const GROUP_RECORDS: TableDefinition<&str, &[u8]> = TableDefinition::new("group_records");

/// One topic as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRecord {
    pub name: String,
    pub id: Uuid,
    pub partitions: u32,
    /// Topic-level overrides by Kafka name (`retention.ms`, `segment.bytes`, …).
    pub configs: BTreeMap<String, String>,
}

impl TopicRecord {
    /// A new topic with a fresh random id and no config overrides.
    pub fn new(name: &str, partitions: u32) -> TopicRecord {
        TopicRecord {
            name: name.to_string(),
            id: Uuid::new_v4(),
            partitions,
            configs: BTreeMap::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("metadata store {path}: {source}")]
    Open {
        path: PathBuf,
        source: redb::DatabaseError,
    },
    #[error("metadata store: {0}")]
    Storage(String),
    #[error("metadata store holds an unreadable record for {key}: {source}")]
    Decode {
        key: String,
        source: serde_json::Error,
    },
}

fn storage<E: std::fmt::Display>(e: E) -> MetaError {
    MetaError::Storage(e.to_string())
}

/// The embedded metadata database.
pub struct MetadataStore {
    db: Database,
}

impl MetadataStore {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: &Path) -> Result<MetadataStore, MetaError> {
        let db = Database::create(path).map_err(|source| MetaError::Open {
            path: path.into(),
            source,
        })?;
        let txn = db.begin_write().map_err(storage)?;
        txn.open_table(CLUSTER).map_err(storage)?;
        txn.open_table(TOPICS).map_err(storage)?;
        txn.open_table(GROUP_RECORDS).map_err(storage)?;
        txn.commit().map_err(storage)?;
        Ok(MetadataStore { db })
    }

    /// The cluster id, created (22 characters of URL-safe base64, like Kafka's) on first call.
    pub fn cluster_id(&self) -> Result<String, MetaError> {
        let txn = self.db.begin_write().map_err(storage)?;
        let id = {
            let mut table = txn.open_table(CLUSTER).map_err(storage)?;
            let existing = table
                .get("cluster_id")
                .map_err(storage)?
                .map(|v| v.value().to_string());
            match existing {
                Some(id) => id,
                None => {
                    let id = base64_url(Uuid::new_v4().as_bytes());
                    table.insert("cluster_id", id.as_str()).map_err(storage)?;
                    id
                }
            }
        };
        txn.commit().map_err(storage)?;
        Ok(id)
    }

    /// Every persisted topic, by name.
    pub fn topics(&self) -> Result<Vec<TopicRecord>, MetaError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(TOPICS).map_err(storage)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(storage)? {
            let (key, value) = entry.map_err(storage)?;
            let record =
                serde_json::from_slice(value.value()).map_err(|source| MetaError::Decode {
                    key: key.value().to_string(),
                    source,
                })?;
            out.push(record);
        }
        Ok(out)
    }

    /// Creates or replaces a topic.
    pub fn put_topic(&self, topic: &TopicRecord) -> Result<(), MetaError> {
        let bytes = serde_json::to_vec(topic).map_err(storage)?;
        let txn = self.db.begin_write().map_err(storage)?;
        txn.open_table(TOPICS)
            .map_err(storage)?
            .insert(topic.name.as_str(), bytes.as_slice())
            .map_err(storage)?;
        txn.commit().map_err(storage)
    }

    /// Removes a topic; returns whether it existed.
    pub fn delete_topic(&self, name: &str) -> Result<bool, MetaError> {
        let txn = self.db.begin_write().map_err(storage)?;
        let existed = txn
            .open_table(TOPICS)
            .map_err(storage)?
            .remove(name)
            .map_err(storage)?
            .is_some();
        txn.commit().map_err(storage)?;
        Ok(existed)
    }
}

impl MetadataStore {
    /// Writes a batch of keyed records in one durable transaction: `Some(value)` replaces the
    /// key's record, `None` deletes it. Either the whole batch is stored or none of it.
    pub fn write_group_records(
        &self,
        batch: &[(String, Option<Vec<u8>>)],
    ) -> Result<(), MetaError> {
        if batch.is_empty() {
            return Ok(());
        }
        let txn = self.db.begin_write().map_err(storage)?;
        {
            let mut table = txn.open_table(GROUP_RECORDS).map_err(storage)?;
            for (key, value) in batch {
                match value {
                    Some(v) => {
                        table.insert(key.as_str(), v.as_slice()).map_err(storage)?;
                    }
                    None => {
                        table.remove(key.as_str()).map_err(storage)?;
                    }
                }
            }
        }
        txn.commit().map_err(storage)
    }

    /// Every stored group record, in key order.
    pub fn group_records(&self) -> Result<Vec<(String, Vec<u8>)>, MetaError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(GROUP_RECORDS).map_err(storage)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(storage)? {
            let (key, value) = entry.map_err(storage)?;
            out.push((key.value().to_string(), value.value().to_vec()));
        }
        Ok(out)
    }
}

fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, MetadataStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = MetadataStore::open(&dir.path().join("meta.redb")).unwrap();
        (dir, store)
    }

    #[test]
    fn cluster_id_is_stable_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        let first = MetadataStore::open(&path).unwrap().cluster_id().unwrap();
        assert_eq!(first.len(), 22);
        assert_eq!(
            MetadataStore::open(&path).unwrap().cluster_id().unwrap(),
            first
        );
    }

    #[test]
    fn topics_survive_reopen_with_their_configs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        let mut t = TopicRecord::new("a", 4);
        t.configs.insert("retention.ms".into(), "1000".into());
        MetadataStore::open(&path).unwrap().put_topic(&t).unwrap();
        assert_eq!(
            MetadataStore::open(&path).unwrap().topics().unwrap(),
            vec![t]
        );
    }

    #[test]
    fn group_records_replace_by_key_delete_on_none_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        let s = MetadataStore::open(&path).unwrap();
        s.write_group_records(&[
            ("g/a".into(), Some(b"1".to_vec())),
            ("o/a/t/0".into(), Some(b"5".to_vec())),
        ])
        .unwrap();
        s.write_group_records(&[
            ("g/a".into(), Some(b"2".to_vec())),
            ("o/a/t/0".into(), None),
        ])
        .unwrap();
        drop(s);
        let s = MetadataStore::open(&path).unwrap();
        assert_eq!(
            s.group_records().unwrap(),
            vec![("g/a".to_string(), b"2".to_vec())]
        );
    }

    #[test]
    fn put_replaces_and_delete_removes() {
        let (_d, s) = store();
        let mut t = TopicRecord::new("a", 1);
        s.put_topic(&t).unwrap();
        t.partitions = 5;
        s.put_topic(&t).unwrap();
        assert_eq!(s.topics().unwrap()[0].partitions, 5);
        assert!(s.delete_topic("a").unwrap());
        assert!(!s.delete_topic("a").unwrap());
        assert!(s.topics().unwrap().is_empty());
    }
}
