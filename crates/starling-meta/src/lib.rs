//! Starling's durable metadata: the cluster id, every topic (id, partition count, configs) and
//! the group coordinator's records, the client quotas and the SCRAM credentials, kept in one embedded [redb](https://docs.rs/redb) database
//! file under the data directory.
//!
//! [`backend::MetadataBackend`] is the seam over this store and the PostgreSQL one a cluster
//! uses, with the conformance suite both pass.
//!
//! Every write is its own committed, fsynced transaction, so a change the broker has
//! acknowledged to a client survives a crash. The store encodes what it keeps ([`encoding`]):
//! a format version byte, then JSON so the file stays inspectable; a later Starling reads what an
//! earlier one wrote. The group coordinator hands it [`starling_group::Record`]s
//! ([`MetadataStore::write_group_records`]) and gets them back at start-up.
//!
//! A write that fails (a full disk, an I/O error) is an error and leaves the stored contents as
//! they were. redb then refuses every operation until the database is closed and opened again,
//! so the store does that itself before its next operation: once the fault clears, reads and
//! writes resume without a restart.
//!
//! After a failed write the store is degraded ([`MetadataStore::fault`]) until it commits a
//! write at least as large as the one that failed (up to [`WRITE_CHECK_MAX_BYTES`]): on a full
//! disk small writes may still fit in the file's free pages while the refused one does not.
//! [`MetadataStore::check_writable`] tries such a write and takes it back.
//! [`MetadataStore::storage_errors`] counts failed operations. Tests make writes fail on demand
//! through [`MetadataStore::failpoint`].
//!
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! let store = starling_meta::MetadataStore::open(&dir.path().join("meta.redb")).unwrap();
//! let topic = starling_meta::TopicRecord::new("orders", 3);
//! store.put_topic(&topic).unwrap();
//! assert_eq!(store.topics().unwrap(), vec![topic.clone()]);
//!
//! // The disk fills up: the write fails, what was stored stays stored.
//! store.failpoint().fail_writes(u64::MAX, std::io::ErrorKind::StorageFull);
//! assert!(store.put_topic(&starling_meta::TopicRecord::new("payments", 1)).is_err());
//! assert!(store.fault().is_some());
//! // Space again: the next operation re-opens the database and writes go through.
//! store.failpoint().clear();
//! assert_eq!(store.topics().unwrap(), vec![topic]);
//! store.put_topic(&starling_meta::TopicRecord::new("payments", 1)).unwrap();
//! assert_eq!(store.fault(), None);
//! ```

pub mod backend;
mod encoding;
mod failpoint;
mod records;
#[cfg(test)]
mod stored_format_tests;

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use encoding::FORMAT_VERSION;
pub use failpoint::Failpoint;
use failpoint::FaultyFile;

const CLUSTER: TableDefinition<&str, &str> = TableDefinition::new("cluster");
/// The key [`MetadataStore::check_writable`] writes and removes again in [`CLUSTER`].
const WRITE_CHECK_KEY: &str = "write_check";
/// The key in [`CLUSTER`] holding the first producer id not yet reserved.
const PRODUCER_ID_KEY: &str = "next_producer_id";
const TOPICS: TableDefinition<&str, &[u8]> = TableDefinition::new("topics");
/// The group coordinator's records, latest per key (a compacted log, as `__consumer_offsets` is).
const GROUP_RECORDS: TableDefinition<&str, &[u8]> = TableDefinition::new("group_records");
/// The transaction coordinator's records, latest per key (as `__transaction_state` is).
const TXN_RECORDS: TableDefinition<&str, &[u8]> = TableDefinition::new("txn_records");
/// Broker configs changed at run time (AlterConfigs), by scope: `""` for the cluster-wide
/// default, a node id for one broker.
const BROKER_CONFIGS: TableDefinition<&str, &[u8]> = TableDefinition::new("broker_configs");
/// Client quotas (KIP-546), one row per entity keyed by [`ClientQuotaRecord::key`].
const CLIENT_QUOTAS: TableDefinition<&str, &[u8]> = TableDefinition::new("client_quotas");
/// ACLs (KIP-140), one row per binding keyed by [`AclRecord::key`].
const ACLS: TableDefinition<&str, &[u8]> = TableDefinition::new("acls");
/// SCRAM credentials (KIP-554), one row per user and mechanism keyed by
/// [`ScramCredentialRecord::key`]: salt, stored key, server key and iterations, never a password.
const SCRAM_CREDENTIALS: TableDefinition<&str, &[u8]> = TableDefinition::new("scram_credentials");

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

/// The quotas set on one client quota entity, as persisted: the entity maps each of its types
/// (`user`, `client-id`, `ip`) to a name, `None` being that type's default entity (Kafka's
/// `<default>`); the quotas map a key (`producer_byte_rate`, …) to its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientQuotaRecord {
    pub entity: BTreeMap<String, Option<String>>,
    pub quotas: BTreeMap<String, f64>,
}

impl ClientQuotaRecord {
    /// The row's key: the entity as JSON, so any entity name (with any characters) has
    /// exactly one key.
    pub fn key(entity: &BTreeMap<String, Option<String>>) -> String {
        serde_json::to_string(entity).unwrap_or_default()
    }
}

/// One ACL binding as persisted, with Kafka's wire codes for its enums (so the store needs no
/// knowledge of the ACL model): resource type, name and pattern type; principal, host,
/// operation and permission.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AclRecord {
    pub resource_type: i8,
    pub resource_name: String,
    pub pattern_type: i8,
    pub principal: String,
    pub host: String,
    pub operation: i8,
    pub permission: i8,
}

impl AclRecord {
    /// The row's key: the binding itself as JSON, so each binding has exactly one row.
    pub fn key(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// One user's SCRAM credential for one mechanism, as persisted (Kafka's
/// `UserScramCredentialRecord`): what the server needs to check a client's proof and prove
/// itself (RFC 5802), from which the password cannot be recovered.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredentialRecord {
    pub user: String,
    /// The mechanism's name: `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: String,
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub iterations: u32,
}

impl ScramCredentialRecord {
    /// The row's key: user and mechanism as JSON, so any user name has exactly one key.
    pub fn key(user: &str, mechanism: &str) -> String {
        serde_json::to_string(&(user, mechanism)).unwrap_or_default()
    }
}

impl std::fmt::Debug for ScramCredentialRecord {
    /// Keys and salt stay out of logs, as Kafka's `ScramCredentialValue.toString` hides them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredentialRecord")
            .field("user", &self.user)
            .field("mechanism", &self.mechanism)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// One change to the SCRAM credentials: store `Some` credential under its user and
/// mechanism, or remove (`None`) the credential of `user` and `mechanism`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramCredentialChange {
    pub user: String,
    pub mechanism: String,
    pub credential: Option<ScramCredentialRecord>,
}

#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("metadata store {path}: {source}")]
    Open {
        path: PathBuf,
        source: redb::DatabaseError,
    },
    /// Reading or writing the file failed (a full disk, an I/O error); nothing was changed.
    #[error("metadata store: {0}")]
    Storage(String),
    #[error("metadata store holds an unreadable record for {key}: {source}")]
    Decode {
        key: String,
        source: serde_json::Error,
    },
    #[error(
        "metadata store holds a record for {key} in format version {version}, written by a newer Starling than this one"
    )]
    NewerFormat { key: String, version: u8 },
    #[error("metadata store: cannot encode {what}: {source}")]
    Encode {
        what: String,
        source: serde_json::Error,
    },
    /// Another node changed the record first (a shared store): a topic of that name created
    /// under another id, or grown past what this write says. Nothing was changed.
    #[error("metadata store: {0}")]
    Conflict(String),
}

impl MetaError {
    /// Whether the storage failed (rather than a value that does not encode or decode).
    pub fn is_storage(&self) -> bool {
        matches!(self, MetaError::Open { .. } | MetaError::Storage(_))
    }
}

fn storage<E: std::fmt::Display>(e: E) -> MetaError {
    MetaError::Storage(e.to_string())
}

/// The largest write [`MetadataStore::check_writable`] tries: a fault left by a larger failed
/// write ends with a committed write of this size.
pub const WRITE_CHECK_MAX_BYTES: usize = 1 << 20;

/// Whether an operation may change the file, and how many bytes it writes (its keys and values).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write(usize),
}

/// Why the store is degraded.
#[derive(Debug, Clone)]
struct Fault {
    error: String,
    /// The size of the largest write that failed since the fault began, up to
    /// [`WRITE_CHECK_MAX_BYTES`]: a committed write at least this large ends the fault.
    bytes: usize,
}

/// The embedded metadata database.
pub struct MetadataStore {
    path: PathBuf,
    failpoint: Arc<Failpoint>,
    /// `None` once closed after a storage error, until opening it again succeeds.
    db: RwLock<Option<Database>>,
    /// An operation failed on the storage: redb refuses everything until the database is closed
    /// and opened again, which the next operation does first.
    reopen: AtomicBool,
    /// The last storage error, until a write as large as the failed one commits.
    fault: Mutex<Option<Fault>>,
    storage_errors: AtomicU64,
}

impl MetadataStore {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: &Path) -> Result<MetadataStore, MetaError> {
        let failpoint = Arc::new(Failpoint::new());
        let db = open_database(path, &failpoint)?;
        Ok(MetadataStore {
            path: path.into(),
            failpoint,
            db: RwLock::new(Some(db)),
            reopen: AtomicBool::new(false),
            fault: Mutex::new(None),
            storage_errors: AtomicU64::new(0),
        })
    }

    /// The cluster id, created (22 characters of URL-safe base64, like Kafka's) on first call.
    pub fn cluster_id(&self) -> Result<String, MetaError> {
        self.with_db(Access::Write(0), |db| {
            let txn = db.begin_write().map_err(storage)?;
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
        })
    }

    /// Reserves the next `count` producer ids (Kafka's producer id blocks) and returns the
    /// first: ids `first .. first + count` are this caller's, and no later reservation (after
    /// a restart or `kill -9` too) hands any of them out again, as the end of the block is
    /// committed before this returns. Ids start at 0.
    pub fn reserve_producer_ids(&self, count: u32) -> Result<i64, MetaError> {
        self.with_db(Access::Write(PRODUCER_ID_KEY.len() + 20), |db| {
            let txn = db.begin_write().map_err(storage)?;
            let first = {
                let mut table = txn.open_table(CLUSTER).map_err(storage)?;
                let first = match table.get(PRODUCER_ID_KEY).map_err(storage)? {
                    Some(value) => value
                        .value()
                        .parse::<i64>()
                        .map_err(|e| MetaError::Storage(format!("stored next producer id: {e}")))?,
                    None => 0,
                };
                let end = first
                    .checked_add(i64::from(count))
                    .ok_or_else(|| MetaError::Storage("producer ids are used up".to_string()))?;
                table
                    .insert(PRODUCER_ID_KEY, end.to_string().as_str())
                    .map_err(storage)?;
                first
            };
            txn.commit().map_err(storage)?;
            Ok(first)
        })
    }

    /// Every persisted topic, by name.
    pub fn topics(&self) -> Result<Vec<TopicRecord>, MetaError> {
        self.with_db(Access::Read, |db| {
            let txn = db.begin_read().map_err(storage)?;
            let table = txn.open_table(TOPICS).map_err(storage)?;
            let mut out = Vec::new();
            for entry in table.iter().map_err(storage)? {
                let (key, value) = entry.map_err(storage)?;
                out.push(encoding::decode(key.value(), value.value())?);
            }
            Ok(out)
        })
    }

    /// Creates or replaces a topic.
    pub fn put_topic(&self, topic: &TopicRecord) -> Result<(), MetaError> {
        let bytes = encoding::encode(|| format!("topic {}", topic.name), topic)?;
        let size = topic.name.len() + bytes.len();
        self.with_db(Access::Write(size), |db| {
            let txn = db.begin_write().map_err(storage)?;
            txn.open_table(TOPICS)
                .map_err(storage)?
                .insert(topic.name.as_str(), bytes.as_slice())
                .map_err(storage)?;
            txn.commit().map_err(storage)
        })
    }

    /// The broker configs set at run time, by scope (`""` is the cluster-wide default, a node
    /// id one broker), each a map of Kafka key to value.
    pub fn broker_configs(&self) -> Result<BTreeMap<String, BTreeMap<String, String>>, MetaError> {
        self.with_db(Access::Read, |db| {
            let txn = db.begin_read().map_err(storage)?;
            let table = txn.open_table(BROKER_CONFIGS).map_err(storage)?;
            let mut out = BTreeMap::new();
            for entry in table.iter().map_err(storage)? {
                let (key, value) = entry.map_err(storage)?;
                out.insert(
                    key.value().to_string(),
                    encoding::decode(key.value(), value.value())?,
                );
            }
            Ok(out)
        })
    }

    /// Replaces the run-time broker configs of one scope (an empty map removes the scope).
    pub fn put_broker_configs(
        &self,
        scope: &str,
        configs: &BTreeMap<String, String>,
    ) -> Result<(), MetaError> {
        let bytes = encoding::encode(|| format!("broker configs {scope:?}"), configs)?;
        self.with_db(Access::Write(scope.len() + bytes.len()), |db| {
            let txn = db.begin_write().map_err(storage)?;
            {
                let mut table = txn.open_table(BROKER_CONFIGS).map_err(storage)?;
                if configs.is_empty() {
                    table.remove(scope).map_err(storage)?;
                } else {
                    table.insert(scope, bytes.as_slice()).map_err(storage)?;
                }
            }
            txn.commit().map_err(storage)
        })
    }

    /// Removes a topic; returns whether it existed.
    pub fn delete_topic(&self, name: &str) -> Result<bool, MetaError> {
        self.with_db(Access::Write(name.len()), |db| {
            let txn = db.begin_write().map_err(storage)?;
            let existed = txn
                .open_table(TOPICS)
                .map_err(storage)?
                .remove(name)
                .map_err(storage)?
                .is_some();
            txn.commit().map_err(storage)?;
            Ok(existed)
        })
    }
}

impl MetadataStore {
    /// Writes a batch of encoded records in one durable transaction: `Some(value)` replaces the
    /// key's record, `None` deletes it. Either the whole batch is stored or none of it.
    pub(crate) fn write_group_record_bytes(
        &self,
        batch: &[records::EncodedRecord],
    ) -> Result<(), MetaError> {
        self.write_record_bytes(GROUP_RECORDS, batch)
    }

    /// Every stored group record as stored, in key order.
    pub(crate) fn group_record_bytes(&self) -> Result<Vec<(String, Vec<u8>)>, MetaError> {
        self.record_bytes(GROUP_RECORDS)
    }

    pub(crate) fn write_txn_record_bytes(
        &self,
        batch: &[records::EncodedRecord],
    ) -> Result<(), MetaError> {
        self.write_record_bytes(TXN_RECORDS, batch)
    }

    /// Every stored transaction record as stored, in key order.
    pub(crate) fn txn_record_bytes(&self) -> Result<Vec<(String, Vec<u8>)>, MetaError> {
        self.record_bytes(TXN_RECORDS)
    }

    /// Writes a batch of a compacted record table (latest per key, `None` deletes) in one
    /// durable transaction.
    fn write_record_bytes(
        &self,
        table: TableDefinition<&str, &[u8]>,
        batch: &[records::EncodedRecord],
    ) -> Result<(), MetaError> {
        if batch.is_empty() {
            return Ok(());
        }
        let size = batch
            .iter()
            .map(|(key, value)| key.len() + value.as_ref().map_or(0, Vec::len))
            .sum();
        self.with_db(Access::Write(size), |db| {
            let txn = db.begin_write().map_err(storage)?;
            {
                let mut table = txn.open_table(table).map_err(storage)?;
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
        })
    }

    /// Every entry of a compacted record table as stored, in key order.
    fn record_bytes(
        &self,
        table: TableDefinition<&str, &[u8]>,
    ) -> Result<Vec<(String, Vec<u8>)>, MetaError> {
        self.with_db(Access::Read, |db| {
            let txn = db.begin_read().map_err(storage)?;
            let table = txn.open_table(table).map_err(storage)?;
            let mut out = Vec::new();
            for entry in table.iter().map_err(storage)? {
                let (key, value) = entry.map_err(storage)?;
                out.push((key.value().to_string(), value.value().to_vec()));
            }
            Ok(out)
        })
    }
}

impl MetadataStore {
    /// Every entity with client quotas.
    pub fn client_quotas(&self) -> Result<Vec<ClientQuotaRecord>, MetaError> {
        self.record_bytes(CLIENT_QUOTAS)?
            .iter()
            .map(|(key, value)| encoding::decode(key, value))
            .collect()
    }

    /// Replaces the quotas of each entity in one durable transaction; an entity whose quotas
    /// are empty is removed.
    pub fn put_client_quotas(&self, records: &[ClientQuotaRecord]) -> Result<(), MetaError> {
        let batch = records
            .iter()
            .map(|r| {
                let key = ClientQuotaRecord::key(&r.entity);
                if r.quotas.is_empty() {
                    return Ok((key, None));
                }
                let bytes = encoding::encode(|| format!("client quotas of {key}"), r)?;
                Ok((key, Some(bytes)))
            })
            .collect::<Result<Vec<records::EncodedRecord>, MetaError>>()?;
        self.write_record_bytes(CLIENT_QUOTAS, &batch)
    }
}

impl MetadataStore {
    /// Every stored ACL binding.
    pub fn acls(&self) -> Result<Vec<AclRecord>, MetaError> {
        self.record_bytes(ACLS)?
            .iter()
            .map(|(key, value)| encoding::decode(key, value))
            .collect()
    }

    /// Every stored SCRAM credential, ordered by user then mechanism.
    pub fn scram_credentials(&self) -> Result<Vec<ScramCredentialRecord>, MetaError> {
        self.record_bytes(SCRAM_CREDENTIALS)?
            .iter()
            .map(|(key, value)| encoding::decode(key, value))
            .collect()
    }

    /// Adds `add` and removes `remove` in one durable transaction. Adding a stored binding or
    /// removing an absent one changes nothing.
    pub fn update_acls(&self, add: &[AclRecord], remove: &[AclRecord]) -> Result<(), MetaError> {
        let mut batch = remove
            .iter()
            .map(|r| Ok((r.key(), None)))
            .collect::<Result<Vec<records::EncodedRecord>, MetaError>>()?;
        for record in add {
            let key = record.key();
            let bytes = encoding::encode(|| format!("ACL {key}"), record)?;
            batch.push((key, Some(bytes)));
        }
        self.write_record_bytes(ACLS, &batch)
    }

    /// The SCRAM credential of `user` for `mechanism`, if there is one.
    pub fn scram_credential(
        &self,
        user: &str,
        mechanism: &str,
    ) -> Result<Option<ScramCredentialRecord>, MetaError> {
        let key = ScramCredentialRecord::key(user, mechanism);
        self.with_db(Access::Read, |db| {
            let txn = db.begin_read().map_err(storage)?;
            let table = txn.open_table(SCRAM_CREDENTIALS).map_err(storage)?;
            match table.get(key.as_str()).map_err(storage)? {
                Some(value) => Ok(Some(encoding::decode(&key, value.value())?)),
                None => Ok(None),
            }
        })
    }

    /// Applies a batch of credential changes in one durable transaction: all or none.
    pub fn write_scram_credentials(
        &self,
        changes: &[ScramCredentialChange],
    ) -> Result<(), MetaError> {
        let batch = changes
            .iter()
            .map(|c| {
                let key = ScramCredentialRecord::key(&c.user, &c.mechanism);
                match &c.credential {
                    None => Ok((key, None)),
                    Some(record) => {
                        let bytes = encoding::encode(|| format!("SCRAM credential {key}"), record)?;
                        Ok((key, Some(bytes)))
                    }
                }
            })
            .collect::<Result<Vec<records::EncodedRecord>, MetaError>>()?;
        self.write_record_bytes(SCRAM_CREDENTIALS, &batch)
    }
}

impl MetadataStore {
    /// The storage error that left the store degraded, while no write as large as the one
    /// that failed has committed since.
    pub fn fault(&self) -> Option<String> {
        self.fault.lock().as_ref().map(|f| f.error.clone())
    }

    /// Operations that failed on the storage (each counted once, re-opening included) since
    /// the store was opened.
    pub fn storage_errors(&self) -> u64 {
        self.storage_errors.load(Ordering::Relaxed)
    }

    /// Commits a write as large as the one that left the store degraded (or an empty one if
    /// none did), then takes it back, re-opening the database first if an error closed it:
    /// `Ok` when the file takes such writes again, which ends the fault.
    pub fn check_writable(&self) -> Result<(), MetaError> {
        let bytes = self.fault.lock().as_ref().map_or(0, |f| f.bytes);
        self.with_db(Access::Write(bytes), |db| {
            let filler = "x".repeat(bytes);
            for value in [Some(filler.as_str()), None] {
                let txn = db.begin_write().map_err(storage)?;
                {
                    let mut table = txn.open_table(CLUSTER).map_err(storage)?;
                    match value {
                        Some(v) => {
                            table.insert(WRITE_CHECK_KEY, v).map_err(storage)?;
                        }
                        None => {
                            table.remove(WRITE_CHECK_KEY).map_err(storage)?;
                        }
                    }
                }
                txn.commit().map_err(storage)?;
            }
            Ok(())
        })
    }

    /// The switch that makes this store's file writes fail, for tests.
    pub fn failpoint(&self) -> &Failpoint {
        &self.failpoint
    }

    /// Runs `op` on the open database — re-opening it first if a storage error closed it — and
    /// keeps the store's fault state: a storage error is counted and remembered (and the next
    /// operation re-opens), a committed write ends the fault.
    fn with_db<T>(
        &self,
        access: Access,
        op: impl FnOnce(&Database) -> Result<T, MetaError>,
    ) -> Result<T, MetaError> {
        let result = self.reopen_if_needed().and_then(|()| {
            let db = self.db.read();
            match db.as_ref() {
                Some(db) => op(db),
                None => Err(MetaError::Storage(
                    "the database is closed after an earlier error".into(),
                )),
            }
        });
        let written = match access {
            Access::Read => None,
            Access::Write(bytes) => Some(bytes.min(WRITE_CHECK_MAX_BYTES)),
        };
        match (&result, written) {
            (Ok(_), Some(bytes)) => {
                let mut fault = self.fault.lock();
                if fault.as_ref().is_some_and(|f| bytes >= f.bytes) {
                    *fault = None;
                }
            }
            (Ok(_), None) => {}
            (Err(e), _) if e.is_storage() => {
                self.reopen.store(true, Ordering::Release);
                self.storage_errors.fetch_add(1, Ordering::Relaxed);
                let mut fault = self.fault.lock();
                let bytes = fault
                    .as_ref()
                    .map_or(0, |f| f.bytes)
                    .max(written.unwrap_or(0));
                *fault = Some(Fault {
                    error: e.to_string(),
                    bytes,
                });
            }
            (Err(_), _) => {}
        }
        result
    }

    /// Closes and opens the database again if a storage error left redb refusing operations.
    fn reopen_if_needed(&self) -> Result<(), MetaError> {
        if !self.reopen.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut db = self.db.write();
        if !self.reopen.load(Ordering::Acquire) {
            // Another operation re-opened it while this one waited.
            return Ok(());
        }
        // redb holds a lock on the file while open: close before opening again.
        drop(db.take());
        *db = Some(open_database(&self.path, &self.failpoint)?);
        self.reopen.store(false, Ordering::Release);
        Ok(())
    }
}

/// Opens (creating if needed) the database file and its tables, writing through the failpoint.
fn open_database(path: &Path, failpoint: &Arc<Failpoint>) -> Result<Database, MetaError> {
    let open = |e: redb::DatabaseError| MetaError::Open {
        path: path.into(),
        source: e,
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| open(e.into()))?;
    let backend = FaultyFile::new(file, failpoint.clone()).map_err(open)?;
    let db = Database::builder()
        .create_with_backend(backend)
        .map_err(open)?;
    let txn = db.begin_write().map_err(storage)?;
    txn.open_table(CLUSTER).map_err(storage)?;
    txn.open_table(TOPICS).map_err(storage)?;
    txn.open_table(GROUP_RECORDS).map_err(storage)?;
    txn.open_table(TXN_RECORDS).map_err(storage)?;
    txn.open_table(BROKER_CONFIGS).map_err(storage)?;
    txn.open_table(CLIENT_QUOTAS).map_err(storage)?;
    txn.open_table(ACLS).map_err(storage)?;
    txn.open_table(SCRAM_CREDENTIALS).map_err(storage)?;
    txn.commit().map_err(storage)?;
    Ok(db)
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
    fn producer_id_blocks_never_overlap_across_reopen_or_a_failed_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        let store = MetadataStore::open(&path).unwrap();
        assert_eq!(store.reserve_producer_ids(1000).unwrap(), 0);
        assert_eq!(store.reserve_producer_ids(10).unwrap(), 1000);
        store
            .failpoint()
            .fail_writes(u64::MAX, std::io::ErrorKind::StorageFull);
        assert!(store.reserve_producer_ids(10).is_err());
        store.failpoint().clear();
        drop(store);
        let store = MetadataStore::open(&path).unwrap();
        assert_eq!(store.reserve_producer_ids(1000).unwrap(), 1010);
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
        s.write_group_record_bytes(&[
            ("g/a".into(), Some(b"1".to_vec())),
            ("o/a/t/0".into(), Some(b"5".to_vec())),
        ])
        .unwrap();
        s.write_group_record_bytes(&[
            ("g/a".into(), Some(b"2".to_vec())),
            ("o/a/t/0".into(), None),
        ])
        .unwrap();
        drop(s);
        let s = MetadataStore::open(&path).unwrap();
        assert_eq!(
            s.group_record_bytes().unwrap(),
            vec![("g/a".to_string(), b"2".to_vec())]
        );
    }

    fn records(s: &MetadataStore) -> Vec<(String, Vec<u8>)> {
        s.group_record_bytes().unwrap()
    }

    #[test]
    fn a_failed_write_stores_nothing_and_the_old_contents_stay_readable() {
        let (_d, s) = store();
        s.write_group_record_bytes(&[("o/g/t/0".into(), Some(b"5".to_vec()))])
            .unwrap();
        s.failpoint()
            .fail_writes(1, std::io::ErrorKind::StorageFull);
        let err = s
            .write_group_record_bytes(&[
                ("o/g/t/0".into(), Some(b"9".to_vec())),
                ("o/g/t/1".into(), Some(b"1".to_vec())),
            ])
            .unwrap_err();
        assert!(err.is_storage(), "{err}");
        assert_eq!(records(&s), vec![("o/g/t/0".to_string(), b"5".to_vec())]);
    }

    #[test]
    fn writes_resume_after_one_failed_write_without_a_restart() {
        // redb refuses everything after an I/O error until the database is opened again: the
        // store does that itself, so one full-disk moment does not break it for good.
        let (_d, s) = store();
        s.failpoint()
            .fail_writes(1, std::io::ErrorKind::StorageFull);
        assert!(s.put_topic(&TopicRecord::new("a", 1)).is_err());
        let t = TopicRecord::new("b", 2);
        s.put_topic(&t).unwrap();
        assert_eq!(s.topics().unwrap(), vec![t]);
    }

    #[test]
    fn writes_fail_while_the_fault_lasts_and_resume_once_it_clears() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        let s = MetadataStore::open(&path).unwrap();
        s.write_group_record_bytes(&[("g/a".into(), Some(b"1".to_vec()))])
            .unwrap();
        s.failpoint()
            .fail_writes(u64::MAX, std::io::ErrorKind::StorageFull);
        for value in [b"2", b"3"] {
            let batch = [("g/a".to_string(), Some(value.to_vec()))];
            assert!(s.write_group_record_bytes(&batch).is_err());
        }
        assert!(s.check_writable().is_err());
        s.failpoint().clear();
        s.write_group_record_bytes(&[("g/a".into(), Some(b"4".to_vec()))])
            .unwrap();
        assert_eq!(records(&s), vec![("g/a".to_string(), b"4".to_vec())]);
        drop(s);
        assert_eq!(
            records(&MetadataStore::open(&path).unwrap()),
            vec![("g/a".to_string(), b"4".to_vec())]
        );
    }

    #[test]
    fn the_fault_is_reported_and_counted_until_a_write_commits() {
        let (_d, s) = store();
        assert_eq!((s.fault(), s.storage_errors()), (None, 0));
        s.failpoint()
            .fail_writes(u64::MAX, std::io::ErrorKind::StorageFull);
        assert!(s.put_topic(&TopicRecord::new("a", 1)).is_err());
        let fault = s.fault().expect("degraded after a failed write");
        assert!(fault.contains("storage"), "{fault}");
        assert!(s.check_writable().is_err());
        assert_eq!(s.storage_errors(), 2);
        s.failpoint().clear();
        // Reading does not prove the file takes writes again; a committed write does.
        s.topics().unwrap();
        assert!(s.fault().is_some());
        s.check_writable().unwrap();
        assert_eq!((s.fault(), s.storage_errors()), (None, 2));
    }

    #[test]
    fn the_fault_lasts_until_a_write_as_large_as_the_failed_one_commits() {
        // A full disk may still take small writes into the file's free pages.
        let (_d, s) = store();
        s.failpoint()
            .fail_writes(1, std::io::ErrorKind::StorageFull);
        let big = [("o/g/t/0".to_string(), Some(vec![7u8; 10_000]))];
        assert!(s.write_group_record_bytes(&big).is_err());
        s.write_group_record_bytes(&[("o/g/t/1".into(), Some(b"1".to_vec()))])
            .unwrap();
        assert!(s.fault().is_some());
        s.write_group_record_bytes(&big).unwrap();
        assert_eq!(s.fault(), None);
    }

    #[test]
    fn checking_writability_writes_as_much_as_the_failed_write_and_leaves_nothing_behind() {
        let (_d, s) = store();
        s.failpoint()
            .fail_writes(1, std::io::ErrorKind::StorageFull);
        let big = [("o/g/t/0".to_string(), Some(vec![7u8; 10_000]))];
        assert!(s.write_group_record_bytes(&big).is_err());
        s.check_writable().unwrap();
        assert_eq!(s.fault(), None);
        assert!(s.group_record_bytes().unwrap().is_empty());
        let id = s.cluster_id().unwrap();
        assert_eq!(id.len(), 22);
    }

    #[test]
    fn a_write_that_changes_nothing_still_reaches_the_file() {
        let (_d, s) = store();
        s.check_writable().unwrap();
        s.failpoint().fail_writes(1, std::io::ErrorKind::Other);
        assert!(s.check_writable().is_err());
        assert!(!s.failpoint().is_armed());
    }

    #[test]
    fn broker_configs_replace_by_scope_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        let s = MetadataStore::open(&path).unwrap();
        assert!(s.broker_configs().unwrap().is_empty());
        let node: BTreeMap<String, String> =
            [("log.retention.ms".to_string(), "1000".to_string())].into();
        let default: BTreeMap<String, String> =
            [("message.max.bytes".to_string(), "2048".to_string())].into();
        s.put_broker_configs("1", &node).unwrap();
        s.put_broker_configs("", &default).unwrap();
        drop(s);
        let s = MetadataStore::open(&path).unwrap();
        let stored = s.broker_configs().unwrap();
        assert_eq!(stored.get("1"), Some(&node));
        assert_eq!(stored.get(""), Some(&default));
        s.put_broker_configs("1", &BTreeMap::new()).unwrap();
        assert_eq!(s.broker_configs().unwrap().keys().collect::<Vec<_>>(), [""]);
    }

    #[test]
    fn client_quotas_replace_by_entity_remove_when_empty_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        let entity = |pairs: &[(&str, Option<&str>)]| -> BTreeMap<String, Option<String>> {
            pairs
                .iter()
                .map(|(t, n)| (t.to_string(), n.map(str::to_string)))
                .collect()
        };
        let record =
            |e: BTreeMap<String, Option<String>>, quotas: &[(&str, f64)]| ClientQuotaRecord {
                entity: e,
                quotas: quotas.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            };
        let app = entity(&[("client-id", Some("app"))]);
        let default_user_app = entity(&[("user", None), ("client-id", Some("app"))]);
        let s = MetadataStore::open(&path).unwrap();
        s.put_client_quotas(&[
            record(app.clone(), &[("producer_byte_rate", 1024.0)]),
            record(default_user_app.clone(), &[("request_percentage", 12.5)]),
        ])
        .unwrap();
        s.put_client_quotas(&[
            record(app.clone(), &[("consumer_byte_rate", 2048.0)]),
            record(default_user_app, &[]),
        ])
        .unwrap();
        drop(s);
        let s = MetadataStore::open(&path).unwrap();
        assert_eq!(
            s.client_quotas().unwrap(),
            vec![record(app, &[("consumer_byte_rate", 2048.0)])]
        );
    }

    #[test]
    fn acls_add_remove_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        let acl = |name: &str, operation: i8| AclRecord {
            resource_type: 2,
            resource_name: name.into(),
            pattern_type: 3,
            principal: "User:alice".into(),
            host: "*".into(),
            operation,
            permission: 3,
        };
        let s = MetadataStore::open(&path).unwrap();
        assert!(s.acls().unwrap().is_empty());
        s.update_acls(&[acl("a", 3), acl("b", 4), acl("a", 3)], &[])
            .unwrap();
        s.update_acls(&[acl("c", 8)], &[acl("b", 4), acl("absent", 3)])
            .unwrap();
        drop(s);
        let s = MetadataStore::open(&path).unwrap();
        let mut stored = s.acls().unwrap();
        stored.sort();
        assert_eq!(stored, vec![acl("a", 3), acl("c", 8)]);
    }

    #[test]
    fn scram_credentials_upsert_remove_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        let credential = |user: &str, mechanism: &str, iterations| ScramCredentialRecord {
            user: user.into(),
            mechanism: mechanism.into(),
            salt: vec![1, 2, 3],
            stored_key: vec![4; 32],
            server_key: vec![5; 32],
            iterations,
        };
        let upsert = |c: ScramCredentialRecord| ScramCredentialChange {
            user: c.user.clone(),
            mechanism: c.mechanism.clone(),
            credential: Some(c),
        };
        let s = MetadataStore::open(&path).unwrap();
        assert!(s.scram_credentials().unwrap().is_empty());
        s.write_scram_credentials(&[
            upsert(credential("alice", "SCRAM-SHA-256", 4096)),
            upsert(credential("alice", "SCRAM-SHA-512", 8192)),
            upsert(credential("bob,=\"", "SCRAM-SHA-256", 4096)),
        ])
        .unwrap();
        s.write_scram_credentials(&[
            upsert(credential("alice", "SCRAM-SHA-256", 16384)),
            ScramCredentialChange {
                user: "alice".into(),
                mechanism: "SCRAM-SHA-512".into(),
                credential: None,
            },
        ])
        .unwrap();
        drop(s);
        let s = MetadataStore::open(&path).unwrap();
        assert_eq!(
            s.scram_credentials().unwrap(),
            vec![
                credential("alice", "SCRAM-SHA-256", 16384),
                credential("bob,=\"", "SCRAM-SHA-256", 4096),
            ]
        );
        assert_eq!(
            s.scram_credential("bob,=\"", "SCRAM-SHA-256").unwrap(),
            Some(credential("bob,=\"", "SCRAM-SHA-256", 4096))
        );
        assert_eq!(s.scram_credential("alice", "SCRAM-SHA-512").unwrap(), None);
    }

    #[test]
    fn a_scram_credential_debug_shows_no_key_material() {
        let c = ScramCredentialRecord {
            user: "alice".into(),
            mechanism: "SCRAM-SHA-256".into(),
            salt: vec![0xab; 4],
            stored_key: vec![0xcd; 32],
            server_key: vec![0xef; 32],
            iterations: 4096,
        };
        let shown = format!("{c:?}");
        assert!(shown.contains("alice") && !shown.contains("171") && !shown.contains("205"));
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
