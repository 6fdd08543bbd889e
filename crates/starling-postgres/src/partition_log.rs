//! Partition logs in PostgreSQL: record batches appended under the partition's lease with
//! offsets assigned in the database, read back as stored, woken across nodes, and trimmed.
//!
//! **Append** ([`append`]) is one transaction: check the partition's lease
//! ([`crate::lease::check`]), lock the partition's row (`SELECT … FOR UPDATE`), write each
//! batch's base offset (and the lease epoch as its partition leader epoch) into its header —
//! neither is covered by the batch's CRC —, insert the batches with their producer fields in
//! columns, move `next_offset` past them, and `NOTIFY` [`APPENDED_CHANNEL`]. The row lock serialises appends to a partition across
//! every node and connection, so offsets are dense and never reused even when two nodes
//! believe they lead; the lease check makes the one that does not fail. Acknowledged means
//! committed. The batches come checked by `starling_log::prepared::PreparedAppend`, the same
//! checks the embedded log makes; idempotent-producer sequences are the partition leader's
//! ([`crate::partition::PgPartition`]).
//!
//! **Read** ([`read`]) returns whole stored batches from the one holding the offset asked
//! for, up to a byte budget (at least one batch, as Kafka's fetch does). Other nodes hear of appends through
//! [`crate::notify::Listener`].
//! **Retention** ([`delete_before`]) moves the log start forward and deletes whole batches
//! below it, a bounded number per statement.

use starling_log::prepared::{marker_commits, PreparedAppend, StoredBatch};
use tokio_postgres::GenericClient;
use uuid::Uuid;

use crate::lease::{self, Lease, LeaseError, LeaseKind};

/// The channel appends notify, with the payload `topic_id:partition:next_offset`.
pub const APPENDED_CHANNEL: &str = "starling_appended";

/// The size of a v2 record batch header: no stored batch is shorter.
const HEADER_LEN: usize = 61;

#[derive(Debug, thiserror::Error)]
pub enum PartitionLogError {
    #[error(transparent)]
    Lease(#[from] LeaseError),
    #[error("no partition {partition} of topic {topic_id}")]
    UnknownPartition { topic_id: Uuid, partition: i32 },
    #[error("offset {offset} is outside the log ({log_start}..{next_offset})")]
    OffsetOutOfRange {
        offset: i64,
        log_start: i64,
        next_offset: i64,
    },
    #[error("batch {index} is not a whole v2 record batch: {reason}")]
    BadBatch { index: usize, reason: String },
    #[error("the lease {0} is not a partition lease of this partition")]
    WrongLease(String),
    #[error("PostgreSQL: {}", crate::describe(.0))]
    Database(#[from] tokio_postgres::Error),
    #[error("no connection to PostgreSQL: {0}")]
    Unavailable(String),
}

/// The lease name of a partition: `topic_id:partition`.
pub fn lease_name(topic_id: Uuid, partition: i32) -> String {
    format!("{topic_id}:{partition}")
}

/// Creates partitions `0..count` of a topic (those that exist are left as they are).
pub async fn create(
    client: &impl GenericClient,
    topic_id: Uuid,
    count: i32,
) -> Result<(), PartitionLogError> {
    client
        .execute(
            "INSERT INTO partitions (topic_id, partition)
             SELECT $1, p FROM generate_series(0, $2 - 1) AS p
             ON CONFLICT DO NOTHING",
            &[&topic_id, &count],
        )
        .await?;
    Ok(())
}

/// Where an append put its batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub base_offset: i64,
    pub last_offset: i64,
    pub log_start_offset: i64,
}

/// Appends `prepared` (a record set checked by [`PreparedAppend::prepare`], or a marker) to a
/// partition under its `lease`, in one transaction; the lease epoch is written into each batch
/// as its partition leader epoch and, under LogAppendTime, `log_append_time` as its timestamps.
/// Returns where the batches went and each as stored.
pub async fn append(
    client: &mut crate::PgClient,
    lease: &Lease,
    topic_id: Uuid,
    partition: i32,
    prepared: PreparedAppend,
    log_append_time: Option<i64>,
) -> Result<(Appended, Vec<StoredBatch>), PartitionLogError> {
    if lease.kind != LeaseKind::Partition || lease.name != lease_name(topic_id, partition) {
        return Err(PartitionLogError::WrongLease(format!(
            "{} {}",
            lease.kind.as_str(),
            lease.name
        )));
    }
    let records = i64::try_from(prepared.record_count()).unwrap_or(i64::MAX);
    let tx = client.transaction().await?;
    // The lease check and the partition's row lock in one round trip (statements are prepared
    // once per connection): the lease row shared, so a take-over waits for this append, the
    // partition row exclusive, so appends to it queue here.
    let locked = tx
        .prepare_cached(
            "SELECT p.log_start_offset, p.next_offset
             FROM partitions p, leases l
             WHERE p.topic_id = $1 AND p.partition = $2
               AND l.kind = $3 AND l.name = $4 AND l.owner = $5 AND l.epoch = $6
               AND l.expires_at > clock_timestamp()
             FOR UPDATE OF p FOR SHARE OF l",
        )
        .await?;
    let row = tx
        .query_opt(
            &locked,
            &[
                &topic_id,
                &partition,
                &lease.kind.as_str(),
                &lease.name,
                &lease.owner,
                &lease.epoch,
            ],
        )
        .await?;
    let Some(row) = row else {
        // Not both: which one is missing?
        lease::check(&tx, lease).await?;
        return Err(PartitionLogError::UnknownPartition {
            topic_id,
            partition,
        });
    };
    let (log_start_offset, base_offset): (i64, i64) = (row.get(0), row.get(1));
    let next = base_offset
        .checked_add(records)
        .ok_or_else(|| PartitionLogError::BadBatch {
            index: 0,
            reason: "its offsets would overflow".into(),
        })?;
    let leader_epoch = i32::try_from(lease.epoch).unwrap_or(i32::MAX);
    let stored = prepared.assign(base_offset, leader_epoch, log_append_time);
    let insert = tx
        .prepare_cached(
            "INSERT INTO batches (topic_id, partition, base_offset, last_offset, max_timestamp,
                                  bytes, producer_id, producer_epoch, base_sequence,
                                  is_transactional, is_control, marker_commits, leader_epoch)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .await?;
    for batch in &stored {
        let marker = if batch.is_control {
            marker_commits(&batch.bytes)
        } else {
            None
        };
        tx.execute(
            &insert,
            &[
                &topic_id,
                &partition,
                &batch.base_offset,
                &batch.last_offset,
                &batch.max_timestamp,
                &&batch.bytes[..],
                &batch.producer.producer_id,
                &batch.producer.epoch,
                &batch.producer.base_sequence,
                &batch.producer.is_transactional,
                &batch.is_control,
                &marker,
                &leader_epoch,
            ],
        )
        .await?;
    }
    // The new end and the notification (delivered to listeners only when this commits).
    let advance = tx
        .prepare_cached(
            "WITH advanced AS (
                 UPDATE partitions SET next_offset = $3
                 WHERE topic_id = $1 AND partition = $2 RETURNING 1)
             SELECT pg_notify($4, $5) FROM advanced",
        )
        .await?;
    tx.execute(
        &advance,
        &[
            &topic_id,
            &partition,
            &next,
            &APPENDED_CHANNEL,
            &format!("{topic_id}:{partition}:{next}"),
        ],
    )
    .await?;
    tx.commit().await?;
    let appended = Appended {
        base_offset,
        last_offset: next - 1,
        log_start_offset,
    };
    Ok((appended, stored))
}

/// What a read found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    /// Whole stored batches, concatenated, from the one holding the offset asked for.
    pub records: Vec<u8>,
    pub log_start_offset: i64,
    /// The next offset to be assigned (the high watermark: every stored batch is committed).
    pub next_offset: i64,
}

/// Batches holding offsets from `offset` on that start below `limit` (a read_committed read
/// passes the last stable offset; `i64::MAX` reads to the end), up to `max_bytes` (but at least
/// one batch when there is one). An offset equal to the next offset reads nothing; one outside
/// the log is [`PartitionLogError::OffsetOutOfRange`].
pub async fn read(
    client: &impl GenericClient,
    topic_id: Uuid,
    partition: i32,
    offset: i64,
    limit: i64,
    max_bytes: usize,
) -> Result<Read, PartitionLogError> {
    let (log_start_offset, next_offset) = bounds(client, topic_id, partition).await?;
    if offset < log_start_offset || offset > next_offset {
        return Err(PartitionLogError::OffsetOutOfRange {
            offset,
            log_start: log_start_offset,
            next_offset,
        });
    }
    let records = read_range(client, topic_id, partition, offset, limit, max_bytes, true).await?;
    Ok(Read {
        records,
        log_start_offset,
        next_offset,
    })
}

/// The stored batches of [`read`] without its bounds check, for the partition's leader, which
/// knows its bounds (it is the one that moves them) and checks the offset first. With
/// `min_one` false a first batch larger than `max_bytes` is left too (a fetch's later
/// partitions, once an earlier one used the request's budget).
pub async fn read_range(
    client: &impl GenericClient,
    topic_id: Uuid,
    partition: i32,
    offset: i64,
    limit: i64,
    max_bytes: usize,
    min_one: bool,
) -> Result<Vec<u8>, PartitionLogError> {
    // Batches are at least a header long: the budget bounds the rows fetched too.
    let rows_wanted = i64::try_from(max_bytes / HEADER_LEN + 1).unwrap_or(i64::MAX);
    // Only the batches within the budget leave the server: the running size is summed there,
    // and the first batch always goes (a fetch must make progress).
    let budget = i64::try_from(max_bytes).unwrap_or(i64::MAX);
    let rows = client
        .query(
            "SELECT bytes FROM (
                 SELECT bytes, base_offset, octet_length(bytes) AS size,
                        sum(octet_length(bytes)) OVER (ORDER BY base_offset) AS upto
                 FROM batches
                 WHERE topic_id = $1 AND partition = $2 AND last_offset >= $3 AND base_offset < $4
                 ORDER BY base_offset LIMIT $5) wanted
             WHERE upto <= $6 OR (upto = size AND $7)
             ORDER BY base_offset",
            &[
                &topic_id,
                &partition,
                &offset,
                &limit,
                &rows_wanted,
                &budget,
                &min_one,
            ],
        )
        .await?;
    let mut records = Vec::new();
    for row in &rows {
        let bytes: &[u8] = row.get(0);
        if (!records.is_empty() || !min_one) && records.len() + bytes.len() > max_bytes {
            break;
        }
        records.extend_from_slice(bytes);
    }
    Ok(records)
}

/// (log start, next offset) of a partition.
pub async fn bounds(
    client: &impl GenericClient,
    topic_id: Uuid,
    partition: i32,
) -> Result<(i64, i64), PartitionLogError> {
    let row = client
        .query_opt(
            "SELECT log_start_offset, next_offset FROM partitions
             WHERE topic_id = $1 AND partition = $2",
            &[&topic_id, &partition],
        )
        .await?
        .ok_or(PartitionLogError::UnknownPartition {
            topic_id,
            partition,
        })?;
    Ok((row.get(0), row.get(1)))
}

/// Moves the log start to `new_start` (never back, never past the next offset) under the
/// partition's lease, then deletes the batches wholly below it, at most `chunk` rows per
/// statement so no single statement holds locks on a huge range. Returns the batches deleted.
pub async fn delete_before(
    client: &mut tokio_postgres::Client,
    lease: &Lease,
    topic_id: Uuid,
    partition: i32,
    new_start: i64,
    chunk: i64,
) -> Result<u64, PartitionLogError> {
    let tx = client.transaction().await?;
    lease::check(&tx, lease).await?;
    let start: i64 = tx
        .query_opt(
            "UPDATE partitions
             SET log_start_offset = GREATEST(log_start_offset, LEAST($3, next_offset))
             WHERE topic_id = $1 AND partition = $2
             RETURNING log_start_offset",
            &[&topic_id, &partition, &new_start],
        )
        .await?
        .ok_or(PartitionLogError::UnknownPartition {
            topic_id,
            partition,
        })?
        .get(0);
    tx.commit().await?;
    let mut deleted = 0;
    loop {
        let n = client
            .execute(
                "DELETE FROM batches WHERE ctid IN (
                     SELECT ctid FROM batches
                     WHERE topic_id = $1 AND partition = $2 AND last_offset < $3
                     LIMIT $4)",
                &[&topic_id, &partition, &start, &chunk.max(1)],
            )
            .await?;
        deleted += n;
        if n == 0 {
            return Ok(deleted);
        }
    }
}
