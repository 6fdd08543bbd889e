//! Log compaction (`cleanup.policy=compact`) of a partition this node leads in PostgreSQL: the
//! embedded cleaner's rules (`starling_log::compactor`), run over the partition's rows.
//!
//! A pass ([`PgPartition::clean`]) decides from the stored batches whether the partition is
//! worth cleaning, as the embedded log decides it from its segments
//! (`starling_log::CleanableInfo::decide`; there is no active segment, so the dirty range ends
//! at the last stable offset, or earlier under `min.compaction.lag.ms`). It stores a producer
//! snapshot first, so producers whose batches go are still known to the next leader; builds the
//! key map over the dirty range; then judges every batch from the log start to the map's end,
//! a chunk of rows at a time. Each chunk is one transaction under the partition's lease: a
//! dropped batch is a deleted row, a rewritten one an updated row, with its offsets unchanged;
//! the cleaner checkpoint (`cleaner_checkpoints`) moves with the last chunk. A reader sees each
//! batch either as it was or as rewritten, never half. Appends go on meanwhile: they only add
//! rows past the dirty range.

use starling_log::compactor::{self, Compactor, MapError, Verdict};
use starling_log::{CleanableInfo, CleanerCheckpoint, LogConfig};
use tokio_postgres::GenericClient;
use uuid::Uuid;

use crate::partition::PgPartition;
use crate::partition_log::PartitionLogError;

/// What a pass did.
#[derive(Debug, Clone, PartialEq)]
pub struct Cleaned {
    /// Where the dirty part started, and where this pass cleaned up to (the next first dirty
    /// offset).
    pub first_dirty: i64,
    pub end_offset: i64,
    pub keys: usize,
    pub records_kept: u64,
    pub records_removed: u64,
    pub batches_deleted: u64,
    pub batches_rewritten: u64,
    /// Bytes the partition's stored batches shrank by.
    pub bytes_removed: u64,
}

/// A stored batch that a pass could not read: the partition's rows are damaged.
fn unreadable(topic_id: Uuid, partition: i32, base_offset: i64, reason: &str) -> PartitionLogError {
    PartitionLogError::Unavailable(format!(
        "compacting partition {partition} of topic {topic_id}: the batch at offset {base_offset} \
         does not read: {reason}"
    ))
}

impl PgPartition {
    /// Whether a pass at `now_ms` under `config` would clean anything, and what it would
    /// cover.
    pub async fn cleanable_info(
        &self,
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<(CleanerCheckpoint, CleanableInfo), PartitionLogError> {
        let client = self.client().await?;
        let (topic_id, partition) = (self.topic_id(), self.partition());
        let checkpoint = load_checkpoint(&**client, topic_id, partition).await?;
        let first_dirty = checkpoint.first_dirty.max(self.log_start_offset());
        let mut first_uncleanable = self.last_stable_offset();
        if config.min_compaction_lag_ms > 0 {
            let cutoff = now_ms.saturating_sub(config.min_compaction_lag_ms);
            let recent: Option<i64> = client
                .query_one(
                    "SELECT min(base_offset) FROM batches
                     WHERE topic_id = $1 AND partition = $2 AND last_offset >= $3
                       AND max_timestamp > $4",
                    &[&topic_id, &partition, &first_dirty, &cutoff],
                )
                .await?
                .get(0);
            if let Some(recent) = recent {
                first_uncleanable = first_uncleanable.min(recent);
            }
        }
        let first_uncleanable = first_uncleanable.max(first_dirty);
        let row = client
            .query_one(
                "SELECT
                     COALESCE(sum(octet_length(bytes)) FILTER (WHERE last_offset < $3), 0)::bigint,
                     COALESCE(sum(octet_length(bytes))
                         FILTER (WHERE last_offset >= $3 AND base_offset < $4), 0)::bigint
                 FROM batches WHERE topic_id = $1 AND partition = $2",
                &[&topic_id, &partition, &first_dirty, &first_uncleanable],
            )
            .await?;
        let (clean_bytes, dirty_bytes): (i64, i64) = (row.get(0), row.get(1));
        let first_dirty_timestamp: Option<i64> = client
            .query_opt(
                "SELECT max_timestamp FROM batches
                 WHERE topic_id = $1 AND partition = $2 AND last_offset >= $3
                   AND base_offset < $4
                 ORDER BY base_offset LIMIT 1",
                &[&topic_id, &partition, &first_dirty, &first_uncleanable],
            )
            .await?
            .map(|row| row.get(0));
        let info = CleanableInfo::decide(
            config,
            &checkpoint,
            (first_dirty, first_uncleanable),
            (
                u64::try_from(clean_bytes).unwrap_or(0),
                u64::try_from(dirty_bytes).unwrap_or(0),
            ),
            first_dirty_timestamp,
            now_ms,
        );
        Ok((checkpoint, info))
    }

    /// One compaction pass at `now_ms` (see the module docs) when the policy compacts and
    /// something is cleanable or an earlier pass's delete horizon has passed, whatever the
    /// dirty ratio (choosing partitions by [`PgPartition::cleanable_info`] is the caller's
    /// part, as with the embedded log), with a key map of `dedupe_buffer_bytes` and `chunk`
    /// rows per transaction; `None` when there was nothing to do.
    pub async fn clean(
        &self,
        config: &LogConfig,
        now_ms: i64,
        dedupe_buffer_bytes: u64,
        chunk: i64,
    ) -> Result<Option<Cleaned>, PartitionLogError> {
        if !config.cleanup_policy.compacts() {
            return Ok(None);
        }
        let (checkpoint, info) = self.cleanable_info(config, now_ms).await?;
        if info.first_dirty_offset >= info.first_uncleanable_offset && !info.deletes_due {
            return Ok(None);
        }
        // Producers whose last batch goes stay known: a new leader replays from here.
        self.snapshot().await?;
        let (topic_id, partition) = (self.topic_id(), self.partition());
        let (first_dirty, first_uncleanable) =
            (info.first_dirty_offset, info.first_uncleanable_offset);
        let mut compactor = Compactor::new(
            checkpoint,
            config.delete_retention_ms,
            now_ms,
            &self.aborted_transactions(),
            (first_dirty, first_uncleanable),
            compactor::map_capacity(dedupe_buffer_bytes),
        );
        let client = self.client().await?;
        // The key map, over the dirty range.
        let mut after = i64::MIN;
        'map: loop {
            let rows = client
                .query(
                    "SELECT base_offset, bytes FROM batches
                     WHERE topic_id = $1 AND partition = $2 AND last_offset >= $3
                       AND base_offset < $4 AND base_offset > $5
                     ORDER BY base_offset LIMIT $6",
                    &[
                        &topic_id,
                        &partition,
                        &first_dirty,
                        &first_uncleanable,
                        &after,
                        &chunk,
                    ],
                )
                .await?;
            for row in &rows {
                let base_offset: i64 = row.get(0);
                match compactor.map_stored(row.get(1)) {
                    Ok(true) => {}
                    Ok(false) => break 'map,
                    Err(MapError::Unreadable(reason)) => {
                        return Err(unreadable(topic_id, partition, base_offset, &reason))
                    }
                    Err(e @ MapError::TooFewKeys { .. }) => {
                        return Err(PartitionLogError::Unavailable(e.to_string()))
                    }
                }
                after = base_offset;
            }
            if rows.len() < usize::try_from(chunk).unwrap_or(usize::MAX) {
                break;
            }
        }
        drop(client);
        let map_end = compactor.map_end();
        let mut cleaned = Cleaned {
            first_dirty,
            end_offset: map_end,
            keys: compactor.keys(),
            records_kept: 0,
            records_removed: 0,
            batches_deleted: 0,
            batches_rewritten: 0,
            bytes_removed: 0,
        };
        // The judgement, from the log start to the map's end, a chunk at a time.
        let mut after = i64::MIN;
        loop {
            let mut client = self.client().await?;
            let rows = client
                .query(
                    "SELECT base_offset, bytes, max_timestamp FROM batches
                     WHERE topic_id = $1 AND partition = $2 AND base_offset < $3
                       AND base_offset > $4
                     ORDER BY base_offset LIMIT $5",
                    &[&topic_id, &partition, &map_end, &after, &chunk],
                )
                .await?;
            let last_chunk = rows.len() < usize::try_from(chunk).unwrap_or(usize::MAX);
            let client: &mut tokio_postgres::Client = &mut client;
            let tx = client.transaction().await?;
            crate::lease::check(&tx, self.lease()).await?;
            for row in &rows {
                let base_offset: i64 = row.get(0);
                let bytes: &[u8] = row.get(1);
                after = base_offset;
                let verdict = compactor
                    .judge_stored(bytes)
                    .map_err(|reason| unreadable(topic_id, partition, base_offset, &reason))?;
                match verdict {
                    Verdict::Keep => {}
                    Verdict::Drop => {
                        tx.execute(
                            "DELETE FROM batches
                             WHERE topic_id = $1 AND partition = $2 AND base_offset = $3",
                            &[&topic_id, &partition, &base_offset],
                        )
                        .await?;
                        cleaned.batches_deleted += 1;
                        cleaned.bytes_removed += bytes.len() as u64;
                    }
                    Verdict::Rewrite(rebuilt) => {
                        let max_timestamp = compactor::max_timestamp(&rebuilt)
                            .unwrap_or_else(|| row.get::<_, i64>(2));
                        tx.execute(
                            "UPDATE batches SET bytes = $4, max_timestamp = $5
                             WHERE topic_id = $1 AND partition = $2 AND base_offset = $3",
                            &[
                                &topic_id,
                                &partition,
                                &base_offset,
                                &rebuilt,
                                &max_timestamp,
                            ],
                        )
                        .await?;
                        cleaned.batches_rewritten += 1;
                        cleaned.bytes_removed +=
                            (bytes.len() as u64).saturating_sub(rebuilt.len() as u64);
                    }
                }
            }
            if last_chunk {
                let moved =
                    compactor
                        .checkpoint()
                        .after_pass(map_end, now_ms, config.delete_retention_ms);
                store_checkpoint(&tx, topic_id, partition, &moved).await?;
            }
            tx.commit().await?;
            if last_chunk {
                break;
            }
        }
        self.shrank(cleaned.bytes_removed);
        cleaned.records_kept = compactor.records_kept;
        cleaned.records_removed = compactor.records_removed;
        Ok(Some(cleaned))
    }
}

async fn load_checkpoint(
    client: &impl GenericClient,
    topic_id: Uuid,
    partition: i32,
) -> Result<CleanerCheckpoint, PartitionLogError> {
    let row = client
        .query_opt(
            "SELECT checkpoint FROM cleaner_checkpoints WHERE topic_id = $1 AND partition = $2",
            &[&topic_id, &partition],
        )
        .await?;
    match row {
        None => Ok(CleanerCheckpoint::default()),
        Some(row) => CleanerCheckpoint::decode(row.get(0)).map_err(|e| {
            PartitionLogError::Unavailable(format!(
                "the cleaner checkpoint of partition {partition} of topic {topic_id} does not \
                 read: {e}"
            ))
        }),
    }
}

async fn store_checkpoint(
    client: &impl GenericClient,
    topic_id: Uuid,
    partition: i32,
    checkpoint: &CleanerCheckpoint,
) -> Result<(), PartitionLogError> {
    client
        .execute(
            "INSERT INTO cleaner_checkpoints (topic_id, partition, checkpoint) VALUES ($1, $2, $3)
             ON CONFLICT (topic_id, partition) DO UPDATE SET checkpoint = EXCLUDED.checkpoint",
            &[&topic_id, &partition, &checkpoint.encode()],
        )
        .await?;
    Ok(())
}
