//! [`PartitionStore`]: where one partition's records live — the node's own segment log
//! ([`PartitionLog`], embedded storage) or PostgreSQL ([`PgReplica`], a partition this node
//! leads while it holds the partition's lease, see [`crate::leases`]).
//!
//! The request handlers go through this one type. What is cheap and in memory in both (the log
//! start and end, the last stable offset, the open transactions, the producers) is answered at
//! once; what reads the records (fetch, timestamp and epoch lookups, deletions) is async, as
//! PostgreSQL's side is a round trip. The embedded log's writes stay on blocking threads, as
//! they do file I/O: the produce path and the marker writer batch them there themselves.
//!
//! A PostgreSQL partition this node does not lead (yet, or any more) answers
//! NOT_LEADER_OR_FOLLOWER; one whose database is out of reach, KAFKA_STORAGE_ERROR.

use std::sync::Arc;

use bytes::BytesMut;
use kafka_protocol::ResponseError;
use parking_lot::RwLock;
use starling_log::producer_state::{ActiveProducer, TxnMarker};
use starling_log::{
    AppendError, AppendInfo, DeleteError, Isolation, LogConfig, PartitionLog, ReadError, ReadResult,
};
use starling_postgres::partition::{PgAppendError, PgPartition};
use starling_postgres::partition_log::PartitionLogError;

/// Rows a retention pass or DeleteRecords deletes per statement in PostgreSQL.
pub const DELETE_CHUNK: i64 = 1000;

/// The leader epoch of every embedded partition: it has had one leader, this node.
pub const EMBEDDED_LEADER_EPOCH: i32 = 0;

/// One partition's records. (One per partition, inside its `Arc<Partition>`: the size of the
/// larger arm costs nothing worth a box on every access.)
#[allow(clippy::large_enum_variant)]
pub enum PartitionStore {
    Embedded(PartitionLog),
    Postgres(PgReplica),
}

/// A partition kept in PostgreSQL, as this node sees it: its settings, and the [`PgPartition`]
/// it leads while it holds the lease.
pub struct PgReplica {
    config: RwLock<LogConfig>,
    leader: RwLock<Option<Arc<PgPartition>>>,
}

impl PgReplica {
    pub fn new(config: LogConfig) -> PgReplica {
        PgReplica {
            config: RwLock::new(config),
            leader: RwLock::new(None),
        }
    }

    /// The partition as led by this node, if it is.
    pub fn leader(&self) -> Option<Arc<PgPartition>> {
        self.leader.read().clone()
    }

    /// Starts (`Some`) or stops leading.
    pub fn set_leader(&self, leader: Option<Arc<PgPartition>>) {
        *self.leader.write() = leader;
    }

    /// Stops leading if `lost` is still the partition led: a write found its lease taken.
    fn fenced(&self, lost: &Arc<PgPartition>) {
        let mut leader = self.leader.write();
        if leader.as_ref().is_some_and(|l| Arc::ptr_eq(l, lost)) {
            *leader = None;
        }
    }

    fn led(&self) -> Result<Arc<PgPartition>, StoreError> {
        self.leader().ok_or(StoreError::NotLeader)
    }

    /// Appends a produced record set to a PostgreSQL partition this node leads.
    pub async fn append(
        &self,
        records: BytesMut,
        now_ms: i64,
    ) -> Result<AppendInfo, PgProduceError> {
        let leader = self.led().map_err(|_| PgProduceError::NotLeader)?;
        let config = self.config.read().clone();
        match leader.append(records, &config, now_ms).await {
            Ok(info) => Ok(info),
            Err(e) if e.is_fenced() => {
                self.fenced(&leader);
                Err(PgProduceError::NotLeader)
            }
            Err(PgAppendError::Refused(e)) => Err(PgProduceError::Log(e)),
            Err(PgAppendError::Storage(e)) => Err(PgProduceError::Log(AppendError::Io(
                std::io::Error::other(e.to_string()),
            ))),
        }
    }

    /// Writes a transaction marker to a PostgreSQL partition this node leads (`false`: the
    /// producer had no transaction open here, nothing written).
    pub async fn write_txn_marker(
        &self,
        marker: TxnMarker,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let leader = self.led()?;
        match leader.write_txn_marker(marker, now_ms).await {
            Ok(written) => Ok(written.is_some()),
            Err(e) if e.is_fenced() => {
                self.fenced(&leader);
                Err(StoreError::NotLeader)
            }
            Err(e) => Err(StoreError::Storage(e.to_string())),
        }
    }

    /// Retention for a PostgreSQL partition this node leads: the batches deleted.
    pub async fn enforce_retention(&self, now_ms: i64) -> Result<u64, StoreError> {
        let Some(leader) = self.leader() else {
            return Ok(0);
        };
        let config = self.config.read().clone();
        let enforced = leader
            .enforce_retention(&config, now_ms, DELETE_CHUNK)
            .await;
        enforced.map_err(|e| self.failure(&leader, e))
    }

    /// `e` as a [`StoreError`], no longer leading when it says the lease was lost.
    fn failure(&self, leader: &Arc<PgPartition>, e: PartitionLogError) -> StoreError {
        let e = StoreError::from_pg(e);
        if matches!(e, StoreError::NotLeader) {
            self.fenced(leader);
        }
        e
    }
}

/// Why a read, lookup or deletion failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("this node does not lead the partition")]
    NotLeader,
    #[error("offset {offset} is out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start: i64,
        log_end: i64,
    },
    #[error("storage: {0}")]
    Storage(String),
}

impl StoreError {
    /// Kafka's error code for it.
    pub fn code(&self) -> ResponseError {
        match self {
            StoreError::NotLeader => ResponseError::NotLeaderOrFollower,
            StoreError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
            StoreError::Storage(_) => ResponseError::KafkaStorageError,
        }
    }

    fn from_pg(e: PartitionLogError) -> StoreError {
        match e {
            PartitionLogError::OffsetOutOfRange {
                offset,
                log_start,
                next_offset,
            } => StoreError::OffsetOutOfRange {
                offset,
                log_start,
                log_end: next_offset,
            },
            PartitionLogError::Lease(starling_postgres::lease::LeaseError::Fenced { .. }) => {
                StoreError::NotLeader
            }
            other => StoreError::Storage(other.to_string()),
        }
    }
}

/// Why an append to a PostgreSQL partition failed.
#[derive(Debug, thiserror::Error)]
pub enum PgProduceError {
    /// Refused as the embedded log refuses it, or (as [`AppendError::Io`]) the database failed.
    #[error(transparent)]
    Log(#[from] AppendError),
    #[error("this node does not lead the partition")]
    NotLeader,
}

impl PartitionStore {
    /// The embedded log, when the partition has one.
    pub fn embedded(&self) -> Option<&PartitionLog> {
        match self {
            PartitionStore::Embedded(log) => Some(log),
            PartitionStore::Postgres(_) => None,
        }
    }

    /// The PostgreSQL side, when the partition is kept there.
    pub fn postgres(&self) -> Option<&PgReplica> {
        match self {
            PartitionStore::Embedded(_) => None,
            PartitionStore::Postgres(replica) => Some(replica),
        }
    }

    pub fn config(&self) -> LogConfig {
        match self {
            PartitionStore::Embedded(log) => log.config(),
            PartitionStore::Postgres(replica) => replica.config.read().clone(),
        }
    }

    pub fn set_config(&self, config: LogConfig) {
        match self {
            PartitionStore::Embedded(log) => log.set_config(config),
            PartitionStore::Postgres(replica) => *replica.config.write() = config,
        }
    }

    /// The partition's leader epoch as this node leads it: 0 embedded, the lease epoch in
    /// PostgreSQL; `None` while this node does not lead it.
    pub fn leader_epoch(&self) -> Option<i32> {
        match self {
            PartitionStore::Embedded(_) => Some(EMBEDDED_LEADER_EPOCH),
            PartitionStore::Postgres(replica) => replica
                .leader()
                .map(|l| i32::try_from(l.lease().epoch).unwrap_or(i32::MAX)),
        }
    }

    /// `(log start, log end)` as this node knows them; `(0, 0)` for a partition it does not
    /// lead.
    fn bounds(&self) -> (i64, i64) {
        match self {
            PartitionStore::Embedded(log) => (log.log_start_offset(), log.log_end_offset()),
            PartitionStore::Postgres(replica) => replica
                .leader()
                .map_or((0, 0), |l| (l.log_start_offset(), l.log_end_offset())),
        }
    }

    pub fn log_start_offset(&self) -> i64 {
        self.bounds().0
    }

    /// The next offset to assign, which is also the high watermark (every stored batch is
    /// acknowledged).
    pub fn log_end_offset(&self) -> i64 {
        self.bounds().1
    }

    pub fn last_stable_offset(&self) -> i64 {
        match self {
            PartitionStore::Embedded(log) => log.last_stable_offset(),
            PartitionStore::Postgres(replica) => {
                replica.leader().map_or(0, |l| l.last_stable_offset())
            }
        }
    }

    pub fn size_bytes(&self) -> u64 {
        match self {
            PartitionStore::Embedded(log) => log.size_bytes(),
            PartitionStore::Postgres(replica) => replica.leader().map_or(0, |l| l.size_bytes()),
        }
    }

    /// Segment files (embedded); 0 in PostgreSQL, which has none.
    pub fn segment_count(&self) -> usize {
        self.embedded().map_or(0, PartitionLog::segment_count)
    }

    pub fn has_open_transaction(&self, producer_id: i64) -> bool {
        match self {
            PartitionStore::Embedded(log) => log.has_open_transaction(producer_id),
            PartitionStore::Postgres(replica) => replica
                .leader()
                .is_some_and(|l| l.has_open_transaction(producer_id)),
        }
    }

    pub fn active_producers(&self) -> Vec<ActiveProducer> {
        match self {
            PartitionStore::Embedded(log) => log.active_producers(),
            PartitionStore::Postgres(replica) => replica
                .leader()
                .map(|l| l.active_producers())
                .unwrap_or_default(),
        }
    }

    pub fn producer_count(&self) -> usize {
        match self {
            PartitionStore::Embedded(log) => log.producer_count(),
            PartitionStore::Postgres(_) => self.active_producers().len(),
        }
    }

    pub fn open_transaction_count(&self) -> usize {
        match self {
            PartitionStore::Embedded(log) => log.open_transaction_count(),
            PartitionStore::Postgres(replica) => {
                replica.leader().map_or(0, |l| l.open_transaction_count())
            }
        }
    }

    /// Stored batches from `offset`, up to `max_bytes` (but a first batch larger than that
    /// when `min_one`), with the read_committed view when `isolation` asks for it.
    pub async fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
        isolation: Isolation,
    ) -> Result<ReadResult, StoreError> {
        match self {
            PartitionStore::Embedded(log) => log
                .read_isolated(offset, max_bytes, min_one, isolation)
                .map_err(|e| match e {
                    ReadError::OffsetOutOfRange {
                        offset,
                        log_start_offset,
                        log_end_offset,
                    } => StoreError::OffsetOutOfRange {
                        offset,
                        log_start: log_start_offset,
                        log_end: log_end_offset,
                    },
                    ReadError::Io(e) => StoreError::Storage(e.to_string()),
                }),
            PartitionStore::Postgres(replica) => replica
                .led()?
                .read_within(
                    offset,
                    max_bytes,
                    min_one,
                    isolation == Isolation::ReadCommitted,
                )
                .await
                .map_err(StoreError::from_pg),
        }
    }

    /// ListOffsets by timestamp: the first record at or after `timestamp`, as (offset,
    /// timestamp).
    pub async fn offset_for_timestamp(
        &self,
        timestamp: i64,
    ) -> Result<Option<(i64, i64)>, StoreError> {
        match self {
            PartitionStore::Embedded(log) => log
                .offset_for_timestamp(timestamp)
                .map_err(|e| StoreError::Storage(e.to_string())),
            PartitionStore::Postgres(replica) => replica
                .led()?
                .offset_for_timestamp(timestamp)
                .await
                .map_err(StoreError::from_pg),
        }
    }

    /// ListOffsets MAX_TIMESTAMP: (timestamp, offset), `None` for an empty log.
    pub async fn max_timestamp(&self) -> Result<Option<(i64, i64)>, StoreError> {
        match self {
            PartitionStore::Embedded(log) => log
                .max_timestamp()
                .map_err(|e| StoreError::Storage(e.to_string())),
            PartitionStore::Postgres(replica) => replica
                .led()?
                .max_timestamp()
                .await
                .map_err(StoreError::from_pg),
        }
    }

    /// OffsetForLeaderEpoch for an `epoch` below the current one: the largest epoch at or
    /// below it that wrote here and where the next one began, or `None` when none did.
    pub async fn earlier_epoch_end(&self, epoch: i32) -> Result<Option<(i32, i64)>, StoreError> {
        match self {
            // One leader, at epoch 0, ever: nothing came before it.
            PartitionStore::Embedded(_) => Ok(None),
            PartitionStore::Postgres(replica) => replica
                .led()?
                .epoch_end_offset(epoch)
                .await
                .map_err(StoreError::from_pg),
        }
    }

    /// DeleteRecords: moves the log start up to `offset` (at most the log end) and answers
    /// the new log start. Embedded, this does file I/O: call it on a blocking thread.
    pub async fn delete_records_before(&self, offset: i64, now_ms: i64) -> Result<i64, StoreError> {
        match self {
            PartitionStore::Embedded(log) => {
                log.delete_records_before(offset, now_ms)
                    .map_err(|e| match e {
                        DeleteError::OffsetOutOfRange {
                            offset,
                            log_end_offset,
                        } => StoreError::OffsetOutOfRange {
                            offset,
                            log_start: log.log_start_offset(),
                            log_end: log_end_offset,
                        },
                        DeleteError::Io(e) => StoreError::Storage(e.to_string()),
                    })
            }
            PartitionStore::Postgres(replica) => {
                let leader = replica.led()?;
                let log_end = leader.log_end_offset();
                if offset < 0 || offset > log_end {
                    return Err(StoreError::OffsetOutOfRange {
                        offset,
                        log_start: leader.log_start_offset(),
                        log_end,
                    });
                }
                let deleted = leader.delete_records_before(offset, DELETE_CHUNK).await;
                deleted.map_err(|e| replica.failure(&leader, e))
            }
        }
    }
}
