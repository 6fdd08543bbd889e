//! [`PgPartition`]: a partition this node leads in a cluster, over the PostgreSQL partition log
//! ([`crate::partition_log`]).
//!
//! The leader keeps what the embedded log keeps in memory: the idempotent producers' state and
//! the partition's transactions (`starling_log::producer_state::ProducerStates`), its log start
//! and end, its last stable offset and aborted transactions. It builds them when it takes the
//! partition's lease, by replaying the producer columns of the stored batches in offset order
//! (the same replay the embedded log's recovery does over its segment headers), so a producer
//! retrying a batch the previous leader stored is answered with that batch's offsets, not
//! written twice. Snapshots of that state ([`PgPartition::snapshot`], and one before every
//! deletion) let the replay start at the newest snapshot, and keep the producers whose batches
//! retention deleted.
//!
//! Every append is checked as the embedded log checks one
//! (`starling_log::prepared::PreparedAppend`), then against the producer state, then written
//! under the lease; appends to one partition are serialised by a lock held across the write.
//! An append whose outcome is unknown (the connection failed around the commit) drops the
//! state, and the next append builds it again from what the database holds, so the leader
//! never acts on a guess. A lease lost to another node fails the write: the caller answers
//! NOT_LEADER_OR_FOLLOWER.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use starling_log::prepared::{PreparedAppend, StoredBatch};
use starling_log::producer_state::{
    ActiveProducer, Admission, ProducerBatch, ProducerStates, TxnMarker,
};
use starling_log::{AppendError, AppendInfo, LogConfig, ReadResult, TimestampType};
use uuid::Uuid;

use crate::lease::{Lease, LeaseError};
use crate::partition_log::{self, PartitionLogError};
use crate::PgPool;

/// Why an append was not made.
#[derive(Debug, thiserror::Error)]
pub enum PgAppendError {
    /// The record set or the producer's sequence was refused, as the embedded log refuses it.
    #[error(transparent)]
    Refused(#[from] AppendError),
    /// The database failed, or this node no longer holds the partition's lease.
    #[error(transparent)]
    Storage(#[from] PartitionLogError),
}

impl PgAppendError {
    /// Whether the partition is led by another node now (NOT_LEADER_OR_FOLLOWER).
    pub fn is_fenced(&self) -> bool {
        matches!(
            self,
            PgAppendError::Storage(PartitionLogError::Lease(LeaseError::Fenced { .. }))
        )
    }
}

/// What readers see, republished after each change.
#[derive(Debug, Clone)]
struct View {
    log_start: i64,
    log_end: i64,
    /// Bytes of the stored batches.
    size: u64,
    first_unstable: Option<i64>,
    open: Arc<Vec<i64>>,
    aborted: Arc<Vec<starling_log::producer_state::AbortedTxn>>,
}

impl View {
    fn new(log_start: i64, log_end: i64, size: u64, states: &ProducerStates) -> View {
        View {
            log_start,
            log_end,
            size,
            first_unstable: states.first_unstable_offset(),
            open: Arc::new(
                states
                    .open_transactions()
                    .iter()
                    .map(|&(pid, _)| pid)
                    .collect(),
            ),
            aborted: states.aborted(),
        }
    }
}

/// A partition led by this node.
pub struct PgPartition {
    pool: PgPool,
    topic_id: Uuid,
    partition: i32,
    lease: Lease,
    /// The producer state, `None` after an append of unknown outcome until it is built again.
    /// Held across each write: appends to the partition are serialised here.
    writer: tokio::sync::Mutex<Option<ProducerStates>>,
    view: parking_lot::RwLock<View>,
    /// The offset of the newest producer snapshot (0: none): a new leader replays the batches
    /// from there.
    snapshot_at: AtomicI64,
}

impl PgPartition {
    /// Takes up partition `partition` of `topic_id` under `lease` (a partition lease this node
    /// holds): reads its bounds and builds its producer state from the stored batches.
    pub async fn open(
        pool: PgPool,
        lease: Lease,
        topic_id: Uuid,
        partition: i32,
    ) -> Result<PgPartition, PartitionLogError> {
        let (states, view, snapshot_at) = load(&pool, topic_id, partition).await?;
        Ok(PgPartition {
            pool,
            topic_id,
            partition,
            lease,
            writer: tokio::sync::Mutex::new(Some(states)),
            view: parking_lot::RwLock::new(view),
            snapshot_at: AtomicI64::new(snapshot_at),
        })
    }

    /// The lease this node leads the partition under.
    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    pub fn log_start_offset(&self) -> i64 {
        self.view.read().log_start
    }

    /// The next offset to assign: every stored batch is committed, so it is the high
    /// watermark too.
    pub fn log_end_offset(&self) -> i64 {
        self.view.read().log_end
    }

    /// The first offset of the earliest open transaction, or the log end.
    pub fn last_stable_offset(&self) -> i64 {
        let view = self.view.read();
        view.first_unstable.unwrap_or(view.log_end)
    }

    /// Whether `producer_id` has a transaction open here.
    pub fn has_open_transaction(&self, producer_id: i64) -> bool {
        self.view.read().open.contains(&producer_id)
    }

    /// The producers this partition remembers (DescribeProducers); empty while the state is
    /// being built again.
    pub fn active_producers(&self) -> Vec<ActiveProducer> {
        match self.writer.try_lock() {
            Ok(guard) => guard
                .as_ref()
                .map(ProducerStates::active_producers)
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    }

    /// Checks and appends a produced record set (one partition's `records`) as a topic with
    /// `config` takes it at `now_ms`. A retried batch the partition already holds is answered
    /// with its offsets and not written again (`record_count` 0).
    pub async fn append(
        &self,
        records: BytesMut,
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<AppendInfo, PgAppendError> {
        let name = if config.cleanup_policy.compacts() {
            format!("{}-{}", self.topic_id, self.partition)
        } else {
            String::new()
        };
        let checking = config.clone();
        // Validation may decompress and recompress: not on an async worker.
        let prepared = tokio::task::spawn_blocking(move || {
            PreparedAppend::prepare(records, &checking, &name, now_ms)
        })
        .await
        .map_err(|e| AppendError::Corrupt(format!("the validation task failed: {e}")))??;
        let mut writer = self.writer.lock().await;
        let states = self.loaded(&mut writer).await?;
        if let Some(batch) = prepared.single_batch_producer() {
            if let Admission::Duplicate {
                first_offset,
                last_offset,
                timestamp,
            } = states.check(&batch).map_err(AppendError::from)?
            {
                return Ok(AppendInfo::duplicate(
                    first_offset,
                    last_offset,
                    timestamp,
                    config.timestamp_type,
                    self.log_start_offset(),
                ));
            }
        }
        let record_count = prepared.record_count();
        let log_append_time =
            (config.timestamp_type == TimestampType::LogAppendTime).then_some(now_ms);
        let appended = self
            .write(
                &mut writer,
                prepared,
                log_append_time,
                |states, _, stored| {
                    for batch in stored {
                        states.record(&batch.producer);
                    }
                },
            )
            .await?;
        Ok(AppendInfo {
            base_offset: appended.base_offset,
            last_offset: appended.last_offset,
            log_append_time: log_append_time.unwrap_or(-1),
            log_start_offset: appended.log_start_offset,
            record_count,
        })
    }

    /// Writes a transaction marker for `marker`'s producer and closes its transaction here (an
    /// abort joins the aborted list); `None`, writing nothing, when the producer has no
    /// transaction open here.
    pub async fn write_txn_marker(
        &self,
        marker: TxnMarker,
        now_ms: i64,
    ) -> Result<Option<AppendInfo>, PgAppendError> {
        let mut writer = self.writer.lock().await;
        let states = self.loaded(&mut writer).await?;
        if !states.needs_marker(&marker) {
            return Ok(None);
        }
        let marker_batch = PreparedAppend::marker(&marker, now_ms);
        let appended = self
            .write(&mut writer, marker_batch, None, |states, appended, _| {
                states.apply_marker(&marker, appended.base_offset, now_ms);
            })
            .await?;
        Ok(Some(AppendInfo {
            base_offset: appended.base_offset,
            last_offset: appended.last_offset,
            log_append_time: -1,
            log_start_offset: appended.log_start_offset,
            record_count: 1,
        }))
    }

    /// Stored batches from `offset`, up to `max_bytes` (at least one batch when there is one):
    /// to the log end, or with `read_committed` to the last stable offset, with the aborted
    /// transactions a read_committed consumer skips.
    pub async fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        read_committed: bool,
    ) -> Result<ReadResult, PartitionLogError> {
        self.read_within(offset, max_bytes, true, read_committed)
            .await
    }

    /// [`PgPartition::read`], where `min_one` false returns no records rather than a first
    /// batch larger than `max_bytes`.
    pub async fn read_within(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
        read_committed: bool,
    ) -> Result<ReadResult, PartitionLogError> {
        let view = self.view.read().clone();
        let last_stable = view.first_unstable.unwrap_or(view.log_end);
        let limit = if read_committed {
            last_stable
        } else {
            view.log_end
        };
        if offset < view.log_start || offset > view.log_end {
            return Err(PartitionLogError::OffsetOutOfRange {
                offset,
                log_start: view.log_start,
                next_offset: view.log_end,
            });
        }
        let records = if offset < limit && (min_one || max_bytes > 0) {
            let client = self.client().await?;
            let records = partition_log::read_range(
                &**client,
                self.topic_id,
                self.partition,
                offset,
                limit,
                max_bytes,
                min_one,
            )
            .await?;
            // Retention may have moved the start past `offset` meanwhile: what was read would
            // begin above the offset asked for.
            let log_start = self.log_start_offset();
            if offset < log_start {
                return Err(PartitionLogError::OffsetOutOfRange {
                    offset,
                    log_start,
                    next_offset: self.log_end_offset(),
                });
            }
            records
        } else {
            Vec::new()
        };
        let aborted_transactions = if read_committed {
            view.aborted
                .iter()
                .filter(|a| a.last_offset >= offset && a.first_offset < limit)
                .copied()
                .collect()
        } else {
            Vec::new()
        };
        Ok(ReadResult {
            records: Bytes::from(records),
            high_watermark: view.log_end,
            last_stable_offset: last_stable,
            log_start_offset: view.log_start,
            aborted_transactions,
        })
    }

    /// Forgets the producers idle for `expiration_ms` with no transaction open
    /// (`producer.id.expiration.ms`); returns how many. Skipped while an append holds the
    /// state.
    pub fn expire_producers(&self, now_ms: i64, expiration_ms: i64) -> usize {
        match self.writer.try_lock() {
            Ok(mut guard) => guard
                .as_mut()
                .map_or(0, |states| states.expire(now_ms, expiration_ms)),
            Err(_) => 0,
        }
    }

    /// How many producers have a transaction open here.
    pub fn open_transaction_count(&self) -> usize {
        self.view.read().open.len()
    }

    /// The partition this leads.
    pub fn topic_id(&self) -> Uuid {
        self.topic_id
    }

    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// The aborted transactions readers are told of.
    pub fn aborted_transactions(&self) -> Arc<Vec<starling_log::producer_state::AbortedTxn>> {
        self.view.read().aborted.clone()
    }

    /// A connection of the pool.
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, PartitionLogError> {
        self.pool.get().await.map_err(pool_error)
    }

    /// Compaction removed `bytes` of the stored batches.
    pub(crate) fn shrank(&self, bytes: u64) {
        let mut view = self.view.write();
        view.size = view.size.saturating_sub(bytes);
    }

    /// Bytes of the stored batches.
    pub fn size_bytes(&self) -> u64 {
        self.view.read().size
    }

    /// When `config`'s `cleanup.policy` deletes: moves the log start past the oldest batches
    /// whose newest record is older than `retention.ms`, and past the oldest batches while the
    /// rest is still at least `retention.bytes` (the embedded log's rule, per batch rather than
    /// per segment), then deletes them `chunk` rows at a time. Returns the batches deleted.
    pub async fn enforce_retention(
        &self,
        config: &LogConfig,
        now_ms: i64,
        chunk: i64,
    ) -> Result<u64, PartitionLogError> {
        if !config.cleanup_policy.deletes()
            || (config.retention_ms.is_none() && config.retention_bytes.is_none())
        {
            return Ok(0);
        }
        let client = self.client().await?;
        let log_end = self.log_end_offset();
        let mut new_start = self.log_start_offset();
        if let Some(ms) = config.retention_ms.filter(|&ms| ms >= 0) {
            let cutoff = now_ms.saturating_sub(ms);
            let kept: Option<i64> = client
                .query_one(
                    "SELECT min(base_offset) FROM batches
                     WHERE topic_id = $1 AND partition = $2 AND max_timestamp >= $3",
                    &[&self.topic_id, &self.partition, &cutoff],
                )
                .await?
                .get(0);
            new_start = new_start.max(kept.unwrap_or(log_end));
        }
        if let Some(limit) = config.retention_bytes {
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            // A batch goes while the batches after it still hold at least `limit` bytes.
            let kept: Option<i64> = client
                .query_one(
                    "SELECT min(base_offset) FROM (
                         SELECT base_offset,
                                sum(octet_length(bytes)) OVER (ORDER BY base_offset DESC)
                                    - octet_length(bytes) AS after
                         FROM batches WHERE topic_id = $1 AND partition = $2) sizes
                     WHERE after < $3",
                    &[&self.topic_id, &self.partition, &limit],
                )
                .await?
                .get(0);
            new_start = new_start.max(kept.unwrap_or(log_end));
        }
        drop(client);
        if new_start <= self.log_start_offset() {
            return Ok(0);
        }
        self.move_start(new_start, chunk).await
    }

    /// DeleteRecords: moves the log start up to `offset` (never past the log end, never back)
    /// and deletes the batches wholly below it, `chunk` rows at a time. Returns the log start.
    pub async fn delete_records_before(
        &self,
        offset: i64,
        chunk: i64,
    ) -> Result<i64, PartitionLogError> {
        self.move_start(offset.min(self.log_end_offset()), chunk)
            .await?;
        Ok(self.log_start_offset())
    }

    /// Stores a snapshot of the producer state at the log end, under the lease, keeping the
    /// newest two: a new leader then replays only the batches after it. Returns its offset.
    pub async fn snapshot(&self) -> Result<i64, PartitionLogError> {
        let mut writer = self.writer.lock().await;
        let states = self.loaded(&mut writer).await?;
        self.store_snapshot(states).await
    }

    async fn store_snapshot(&self, states: &ProducerStates) -> Result<i64, PartitionLogError> {
        let offset = self.log_end_offset();
        let state = states.encode(offset);
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        crate::lease::check(&tx, &self.lease).await?;
        tx.execute(
            "INSERT INTO producer_snapshots (topic_id, partition, snapshot_offset, state)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (topic_id, partition, snapshot_offset) DO UPDATE SET state = $4",
            &[&self.topic_id, &self.partition, &offset, &state],
        )
        .await?;
        tx.execute(
            "DELETE FROM producer_snapshots
             WHERE topic_id = $1 AND partition = $2 AND snapshot_offset < (
                 SELECT min(snapshot_offset) FROM (
                     SELECT snapshot_offset FROM producer_snapshots
                     WHERE topic_id = $1 AND partition = $2
                     ORDER BY snapshot_offset DESC LIMIT 2) newest)",
            &[&self.topic_id, &self.partition],
        )
        .await?;
        tx.commit().await?;
        self.snapshot_at.store(offset, Ordering::Relaxed);
        Ok(offset)
    }

    /// How many offsets were written since the newest producer snapshot: what a new leader
    /// would replay.
    pub fn offsets_since_snapshot(&self) -> i64 {
        self.log_end_offset()
            .saturating_sub(self.snapshot_at.load(Ordering::Relaxed))
    }

    /// Moves the log start to `new_start` under the lease and deletes what is below it. A
    /// snapshot is stored first, so the producers of the deleted batches are remembered.
    async fn move_start(&self, new_start: i64, chunk: i64) -> Result<u64, PartitionLogError> {
        let mut writer = self.writer.lock().await;
        let states = self.loaded(&mut writer).await?;
        self.store_snapshot(states).await?;
        // Readers stop asking for what goes before it goes: a read checks the start it sees
        // again after reading, so it never serves what lies above a deleted offset.
        {
            let mut view = self.view.write();
            view.log_start = view.log_start.max(new_start.min(view.log_end));
        }
        let mut client = self.client().await?;
        let deleted = partition_log::delete_before(
            &mut client,
            &self.lease,
            self.topic_id,
            self.partition,
            new_start,
            chunk,
        )
        .await?;
        let (log_start, _) =
            partition_log::bounds(&**client, self.topic_id, self.partition).await?;
        let size = stored_size(&**client, self.topic_id, self.partition).await?;
        drop(client);
        states.prune_aborted(log_start);
        let mut view = self.view.write();
        let log_end = view.log_end;
        *view = View::new(log_start, log_end, size, states);
        Ok(deleted)
    }

    /// ListOffsets by timestamp: the first record at or after the log start whose timestamp is
    /// at least `timestamp`, as (offset, timestamp), found batch by batch in offset order among
    /// those whose newest record is that recent (as the embedded log finds it).
    pub async fn offset_for_timestamp(
        &self,
        timestamp: i64,
    ) -> Result<Option<(i64, i64)>, PartitionLogError> {
        let client = self.client().await?;
        let log_start = self.log_start_offset();
        let mut after = i64::MIN;
        loop {
            let row = client
                .query_opt(
                    "SELECT base_offset, bytes FROM batches
                     WHERE topic_id = $1 AND partition = $2 AND max_timestamp >= $3
                       AND last_offset >= $4 AND base_offset > $5
                     ORDER BY base_offset LIMIT 1",
                    &[
                        &self.topic_id,
                        &self.partition,
                        &timestamp,
                        &log_start,
                        &after,
                    ],
                )
                .await?;
            let Some(row) = row else {
                return Ok(None);
            };
            let bytes: &[u8] = row.get(1);
            let found =
                starling_log::prepared::first_record_at_or_after(bytes, timestamp, log_start);
            if found.is_some() {
                return Ok(found);
            }
            after = row.get(0);
        }
    }

    /// ListOffsets MAX_TIMESTAMP: the largest batch `maxTimestamp` and the last offset of the
    /// first batch carrying it, as the embedded log answers; `None` for an empty log.
    pub async fn max_timestamp(&self) -> Result<Option<(i64, i64)>, PartitionLogError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT max_timestamp, last_offset FROM batches
                 WHERE topic_id = $1 AND partition = $2
                 ORDER BY max_timestamp DESC, base_offset LIMIT 1",
                &[&self.topic_id, &self.partition],
            )
            .await?;
        Ok(row.map(|row| (row.get(0), row.get(1))))
    }

    /// OffsetForLeaderEpoch: the largest leader epoch at or below `epoch` that wrote here and
    /// the offset where the next epoch took over (the log end for the latest), or `None` when
    /// no batch here has such an epoch.
    pub async fn epoch_end_offset(
        &self,
        epoch: i32,
    ) -> Result<Option<(i32, i64)>, PartitionLogError> {
        let client = self.client().await?;
        let found: Option<i32> = client
            .query_one(
                "SELECT max(leader_epoch) FROM batches
                 WHERE topic_id = $1 AND partition = $2 AND leader_epoch <= $3",
                &[&self.topic_id, &self.partition, &epoch],
            )
            .await?
            .get(0);
        let Some(found) = found else {
            return Ok(None);
        };
        let next: Option<i64> = client
            .query_one(
                "SELECT min(base_offset) FROM batches
                 WHERE topic_id = $1 AND partition = $2 AND leader_epoch > $3",
                &[&self.topic_id, &self.partition, &found],
            )
            .await?
            .get(0);
        Ok(Some((found, next.unwrap_or_else(|| self.log_end_offset()))))
    }

    /// The state, built again first if an append of unknown outcome dropped it.
    async fn loaded<'a>(
        &self,
        writer: &'a mut Option<ProducerStates>,
    ) -> Result<&'a mut ProducerStates, PartitionLogError> {
        if writer.is_none() {
            let (states, view, snapshot_at) =
                load(&self.pool, self.topic_id, self.partition).await?;
            self.snapshot_at.store(snapshot_at, Ordering::Relaxed);
            *self.view.write() = view;
            *writer = Some(states);
        }
        Ok(writer.as_mut().expect("loaded above"))
    }

    /// One append transaction under the lease, then `apply` of what it stored to the producer
    /// state (loaded by the caller), and the view republished. When the write fails the state
    /// is dropped: a refusal before the write would leave it right, but anything else may have
    /// committed, so it is built again from the database before the next append.
    async fn write(
        &self,
        writer: &mut Option<ProducerStates>,
        prepared: PreparedAppend,
        log_append_time: Option<i64>,
        apply: impl FnOnce(&mut ProducerStates, &partition_log::Appended, &[StoredBatch]),
    ) -> Result<partition_log::Appended, PartitionLogError> {
        let mut client = self.client().await?;
        let written = partition_log::append(
            &mut client,
            &self.lease,
            self.topic_id,
            self.partition,
            prepared,
            log_append_time,
        )
        .await;
        let (appended, stored) = match written {
            Ok(written) => written,
            Err(e) => {
                *writer = None;
                return Err(e);
            }
        };
        let states = writer.as_mut().expect("loaded by the caller");
        apply(states, &appended, &stored);
        let size = stored.iter().map(|b| b.bytes.len() as u64).sum::<u64>();
        let mut view = self.view.write();
        let grown = view.size.saturating_add(size);
        *view = View::new(
            appended.log_start_offset,
            appended.last_offset + 1,
            grown,
            states,
        );
        Ok(appended)
    }
}

fn pool_error(e: deadpool_postgres::PoolError) -> PartitionLogError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => PartitionLogError::Database(e),
        other => PartitionLogError::Unavailable(other.to_string()),
    }
}

/// The partition's producer state and view, from its bounds and the producer columns of its
/// stored batches replayed in offset order.
async fn load(
    pool: &PgPool,
    topic_id: Uuid,
    partition: i32,
) -> Result<(ProducerStates, View, i64), PartitionLogError> {
    let client = pool.get().await.map_err(pool_error)?;
    let (log_start, log_end) = partition_log::bounds(&**client, topic_id, partition).await?;
    let size = stored_size(&**client, topic_id, partition).await?;
    let (from, mut states) = newest_snapshot(&**client, topic_id, partition, log_end).await?;
    let rows = client
        .query(
            "SELECT base_offset, last_offset, max_timestamp, producer_id, producer_epoch,
                    base_sequence, is_transactional, is_control, marker_commits
             FROM batches
             WHERE topic_id = $1 AND partition = $2 AND producer_id >= 0 AND base_offset >= $3
             ORDER BY base_offset",
            &[&topic_id, &partition, &from],
        )
        .await?;
    for row in &rows {
        let base_offset: i64 = row.get(0);
        let last_offset: i64 = row.get(1);
        let max_timestamp: i64 = row.get(2);
        let producer_id: i64 = row.get(3);
        let epoch: i16 = row.get(4);
        let is_control: bool = row.get(7);
        if is_control {
            // A transaction marker (a control batch of another kind has no decision).
            if let Some(commit) = row.get::<_, Option<bool>>(8) {
                let marker = TxnMarker {
                    producer_id,
                    epoch,
                    commit,
                    coordinator_epoch: 0,
                };
                states.apply_marker(&marker, base_offset, max_timestamp);
            }
            continue;
        }
        states.record(&ProducerBatch {
            producer_id,
            epoch,
            base_sequence: row.get(5),
            last_offset_delta: i32::try_from(last_offset - base_offset).unwrap_or(i32::MAX),
            first_offset: base_offset,
            max_timestamp,
            is_transactional: row.get(6),
        });
    }
    states.prune_aborted(log_start);
    let view = View::new(log_start, log_end, size, &states);
    Ok((states, view, from))
}

/// The newest producer snapshot at or below `log_end` as (its offset, the state), or (0, no
/// producers) without one. A snapshot that does not decode is passed over with a warning: the
/// batches are replayed from the start instead.
async fn newest_snapshot(
    client: &impl tokio_postgres::GenericClient,
    topic_id: Uuid,
    partition: i32,
    log_end: i64,
) -> Result<(i64, ProducerStates), PartitionLogError> {
    let row = client
        .query_opt(
            "SELECT state FROM producer_snapshots
             WHERE topic_id = $1 AND partition = $2 AND snapshot_offset <= $3
             ORDER BY snapshot_offset DESC LIMIT 1",
            &[&topic_id, &partition, &log_end],
        )
        .await?;
    let Some(row) = row else {
        return Ok((0, ProducerStates::new()));
    };
    match ProducerStates::decode(row.get::<_, &[u8]>(0)) {
        Ok(decoded) => Ok(decoded),
        Err(e) => {
            tracing::warn!(%topic_id, partition, error = %e, "passing over a producer snapshot");
            Ok((0, ProducerStates::new()))
        }
    }
}

/// Bytes of a partition's stored batches.
async fn stored_size(
    client: &impl tokio_postgres::GenericClient,
    topic_id: Uuid,
    partition: i32,
) -> Result<u64, PartitionLogError> {
    let size: i64 = client
        .query_one(
            "SELECT COALESCE(sum(octet_length(bytes)), 0)::bigint FROM batches
             WHERE topic_id = $1 AND partition = $2",
            &[&topic_id, &partition],
        )
        .await?
        .get(0);
    Ok(u64::try_from(size).unwrap_or(0))
}
