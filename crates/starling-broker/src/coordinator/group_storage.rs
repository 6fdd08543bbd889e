//! [`GroupStorage`]: where the group coordinator's records live — the node's embedded
//! metadata store, or PostgreSQL (`starling_postgres::group_records`), each group's records
//! written under that group's lease ([`NodeLeases::coordinate`]).
//!
//! The embedded store holds every group, all loaded at start. In PostgreSQL a node coordinates
//! the groups placement gives it: the coordinator takes a group ([`GroupStorage::take`]: its
//! lease, then its records to replay) on the first request for it, or at start for the groups
//! already stored ([`GroupStorage::placed_here`]), and drops it when the lease is gone
//! ([`GroupStorage::held_epoch`] changes).
//!
//! Both keep the latest record of each key, and a step's records are written in one
//! transaction, all or nothing. Both report a fault after a failed write, cleared by the next
//! write that succeeds or by [`GroupStorage::check_writable`], which the coordinator's recovery
//! retries.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use kafka_protocol::ResponseError;
use parking_lot::Mutex;
use starling_group::Record;
use starling_meta::MetadataStore;
use starling_postgres::group_records;
use starling_postgres::lease::LeaseError;
use starling_postgres::PgPool;

use crate::leases::{GroupLeaseError, NodeLeases};

/// A group's lease epoch while the embedded store, which holds every group, is used.
const EMBEDDED_EPOCH: i64 = 0;

/// Why a step's records were not stored.
#[derive(Debug, thiserror::Error)]
pub enum GroupWriteError {
    /// A record that does not encode: a fault of the records, not of the storage.
    #[error("{0}")]
    Encode(String),
    /// The storage failed.
    #[error("{0}")]
    Storage(String),
    /// (PostgreSQL) This node no longer holds `group`'s lease: nothing was written; `rest` are
    /// the records of the step's other groups, to be written without it.
    #[error("{message}")]
    Fenced {
        group: String,
        message: String,
        rest: Vec<Record>,
    },
}

/// The coordinator's record store.
#[derive(Clone)]
pub enum GroupStorage {
    Embedded(Arc<MetadataStore>),
    Postgres(Arc<PgGroupStorage>),
}

impl From<Arc<MetadataStore>> for GroupStorage {
    fn from(store: Arc<MetadataStore>) -> GroupStorage {
        GroupStorage::Embedded(store)
    }
}

/// Group records in PostgreSQL, under group leases.
pub struct PgGroupStorage {
    pool: PgPool,
    leases: Arc<NodeLeases>,
    fault: Mutex<Option<String>>,
    errors: AtomicU64,
}

impl PgGroupStorage {
    pub fn new(pool: PgPool, leases: Arc<NodeLeases>) -> PgGroupStorage {
        PgGroupStorage {
            pool,
            leases,
            fault: Mutex::new(None),
            errors: AtomicU64::new(0),
        }
    }

    async fn write(&self, records: Vec<Record>) -> Result<(), GroupWriteError> {
        let storage = |e: String| GroupWriteError::Storage(e);
        let mut by_group: BTreeMap<String, Vec<Record>> = BTreeMap::new();
        for record in records {
            by_group
                .entry(record.group_id().to_string())
                .or_default()
                .push(record);
        }
        let mut client = self.pool.get().await.map_err(|e| storage(e.to_string()))?;
        let mut batches = Vec::with_capacity(by_group.len());
        let mut unheld = Vec::new();
        for (group, records) in by_group {
            match self.leases.held_group(&group) {
                Some(lease) => batches.push((lease, records)),
                None => unheld.push((group, records)),
            }
        }
        if !unheld.is_empty() {
            let (group, _) = unheld.remove(0);
            return Err(GroupWriteError::Fenced {
                message: format!("this node does not coordinate group '{group}' any more"),
                rest: batches
                    .into_iter()
                    .map(|(_, records)| records)
                    .chain(unheld.into_iter().map(|(_, records)| records))
                    .flatten()
                    .collect(),
                group,
            });
        }
        let client: &mut tokio_postgres::Client = &mut client;
        match group_records::write_many(client, &batches).await {
            Ok(()) => Ok(()),
            Err(group_records::GroupRecordsError::Lease(LeaseError::Fenced {
                kind,
                name,
                owner,
                epoch,
            })) => {
                // Taken by another node (or lapsed and taken again): this node no longer
                // coordinates the group; the coordinator drops it at its next step.
                for (lease, _) in &batches {
                    if lease.name == name {
                        self.leases.group_lease_lost(lease).await;
                    }
                }
                Err(GroupWriteError::Fenced {
                    message: format!(
                        "{kind} lease '{name}' is not held by node {owner} at epoch {epoch} any more"
                    ),
                    rest: batches
                        .into_iter()
                        .filter(|(lease, _)| lease.name != name)
                        .flat_map(|(_, records)| records)
                        .collect(),
                    group: name,
                })
            }
            Err(e @ group_records::GroupRecordsError::Encode { .. }) => {
                Err(GroupWriteError::Encode(e.to_string()))
            }
            Err(e) => Err(storage(e.to_string())),
        }
    }
}

impl GroupStorage {
    /// Every stored record, to replay.
    pub async fn load(&self) -> Result<Vec<Record>, String> {
        match self {
            GroupStorage::Embedded(store) => {
                let store = store.clone();
                tokio::task::spawn_blocking(move || store.group_records())
                    .await
                    .map_err(|e| format!("the loading task failed: {e}"))?
                    .map_err(|e| e.to_string())
            }
            // Groups load one at a time, as this node takes them.
            GroupStorage::Postgres(_) => Ok(Vec::new()),
        }
    }

    /// Whether other nodes share the storage (PostgreSQL): the coordinator then holds only
    /// the groups it takes.
    pub fn is_shared(&self) -> bool {
        matches!(self, GroupStorage::Postgres(_))
    }

    /// The epoch of the lease this node holds on `group` (always held, embedded).
    pub fn held_epoch(&self, group: &str) -> Option<i64> {
        match self {
            GroupStorage::Embedded(_) => Some(EMBEDDED_EPOCH),
            GroupStorage::Postgres(pg) => pg.leases.held_group(group).map(|l| l.epoch),
        }
    }

    /// A number that changes whenever this node gains or loses a group lease (PostgreSQL;
    /// always 0 embedded): while it stays the same, the epochs [`GroupStorage::held_epoch`]
    /// gave stay true.
    pub fn held_version(&self) -> u64 {
        match self {
            GroupStorage::Embedded(_) => 0,
            GroupStorage::Postgres(pg) => pg.leases.held_groups_version(),
        }
    }

    /// Takes `group` to coordinate it: its lease (held, or taken when placement gives the
    /// group to this node and it is free), then its stored records, to replay. The error is
    /// what the group's request gets: NOT_COORDINATOR when another node coordinates it,
    /// COORDINATOR_LOAD_IN_PROGRESS while the node it moves from still holds it,
    /// COORDINATOR_NOT_AVAILABLE when the database does not answer, INVALID_GROUP_ID for an id
    /// holding NUL, which no lease can be named (the embedded store takes it).
    pub async fn take(&self, group: &str) -> Result<(i64, Vec<Record>), ResponseError> {
        let GroupStorage::Postgres(pg) = self else {
            return Ok((EMBEDDED_EPOCH, Vec::new()));
        };
        if group.contains('\0') {
            // A lease is named by its group's id, and PostgreSQL's text cannot hold NUL.
            return Err(ResponseError::InvalidGroupId);
        }
        let lease = pg.leases.coordinate(group).await.map_err(|e| match e {
            GroupLeaseError::NotHere { .. } => ResponseError::NotCoordinator,
            GroupLeaseError::TakingOver(_) => ResponseError::CoordinatorLoadInProgress,
            e => {
                tracing::warn!(%group, error = %e, "taking a group's lease failed");
                ResponseError::CoordinatorNotAvailable
            }
        })?;
        let unavailable = |e: String| {
            tracing::warn!(%group, error = %e, "loading a group's records failed");
            ResponseError::CoordinatorNotAvailable
        };
        let client = pg
            .pool
            .get()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let records = group_records::load(&**client, group)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        Ok((lease.epoch, records))
    }

    /// Gives up `group`, which the coordinator no longer holds anything of (PostgreSQL: its
    /// lease is released, so it is not renewed forever).
    pub async fn release(&self, group: &str) {
        if let GroupStorage::Postgres(pg) = self {
            if let Err(e) = pg.leases.release_group(group).await {
                tracing::warn!(%group, error = %e, "releasing a group's lease failed; it lapses");
            }
        }
    }

    /// The stored groups placement gives this node (PostgreSQL; none embedded, where `load`
    /// brings every group): the coordinator takes them at start.
    pub async fn placed_here(&self) -> Result<Vec<String>, String> {
        let GroupStorage::Postgres(pg) = self else {
            return Ok(Vec::new());
        };
        let client = pg.pool.get().await.map_err(|e| e.to_string())?;
        let groups = group_records::group_ids(&**client)
            .await
            .map_err(|e| e.to_string())?;
        let view = pg.leases.view();
        let me = pg.leases.node_id();
        Ok(groups
            .into_iter()
            .filter(|g| view.coordinator_of(g).is_some_and(|n| n.node_id == me))
            .collect())
    }

    /// Stores one step's records, all or nothing.
    pub async fn write(&self, records: Vec<Record>) -> Result<(), GroupWriteError> {
        if records.is_empty() {
            return Ok(());
        }
        match self {
            GroupStorage::Embedded(store) => {
                let store = store.clone();
                tokio::task::spawn_blocking(move || store.write_group_records(&records))
                    .await
                    .map_err(|e| {
                        GroupWriteError::Storage(format!("the group record writer failed: {e}"))
                    })?
                    .map_err(|e| {
                        if e.is_storage() {
                            GroupWriteError::Storage(e.to_string())
                        } else {
                            GroupWriteError::Encode(e.to_string())
                        }
                    })
            }
            GroupStorage::Postgres(pg) => {
                let written = pg.write(records).await;
                match &written {
                    Ok(()) => *pg.fault.lock() = None,
                    Err(GroupWriteError::Storage(e)) => {
                        pg.errors.fetch_add(1, Ordering::Relaxed);
                        *pg.fault.lock() = Some(e.clone());
                    }
                    // Not a fault of the storage: the coordinator drops the group.
                    Err(GroupWriteError::Encode(_) | GroupWriteError::Fenced { .. }) => {}
                }
                written
            }
        }
    }

    /// The fault the last failed write left, until a write succeeds again.
    pub fn fault(&self) -> Option<String> {
        match self {
            GroupStorage::Embedded(store) => store.fault(),
            GroupStorage::Postgres(pg) => pg.fault.lock().clone(),
        }
    }

    /// Writes that failed since the start.
    pub fn storage_errors(&self) -> u64 {
        match self {
            GroupStorage::Embedded(store) => store.storage_errors(),
            GroupStorage::Postgres(pg) => pg.errors.load(Ordering::Relaxed),
        }
    }

    /// Whether writes go through again: the embedded store writes as much as failed and takes
    /// it back; PostgreSQL answers a round trip. Clears the fault when they do.
    pub async fn check_writable(&self) -> Result<(), String> {
        match self {
            GroupStorage::Embedded(store) => {
                let store = store.clone();
                tokio::task::spawn_blocking(move || store.check_writable())
                    .await
                    .map_err(|e| format!("the check failed: {e}"))?
                    .map_err(|e| e.to_string())
            }
            GroupStorage::Postgres(pg) => {
                let client = pg.pool.get().await.map_err(|e| e.to_string())?;
                client
                    .simple_query("SELECT 1")
                    .await
                    .map_err(|e| e.to_string())?;
                *pg.fault.lock() = None;
                Ok(())
            }
        }
    }

    /// The embedded store (tests reach its failpoint through it).
    pub fn embedded(&self) -> Option<&Arc<MetadataStore>> {
        match self {
            GroupStorage::Embedded(store) => Some(store),
            GroupStorage::Postgres(_) => None,
        }
    }
}
