//! Partition logs in PostgreSQL: record batches appended under the partition's lease with
//! offsets assigned in the database, read back as stored, woken across nodes, and trimmed.
//!
//! **Append** ([`append`]) is one transaction: check the partition's lease
//! ([`crate::lease::check`]), lock the partition's row (`SELECT … FOR UPDATE`), write each
//! batch's base offset (and the lease epoch as its partition leader epoch) into its header —
//! neither is covered by the batch's CRC —, insert the batches, move `next_offset` past them,
//! and `NOTIFY` [`APPENDED_CHANNEL`]. The row lock serialises appends to a partition across
//! every node and connection, so offsets are dense and never reused even when two nodes
//! believe they lead; the lease check makes the one that does not fail. Acknowledged means
//! committed. The batches must already be validated (CRC, sizes, producer sequences): that is
//! the broker's work, shared with the embedded log.
//!
//! **Read** ([`read`]) returns whole stored batches from the one holding the offset asked
//! for, up to a byte budget (at least one batch, as Kafka's fetch does). **Long polls** wait on
//! [`AppendListener`]: one `LISTEN` connection per node, notified only when an append commits.
//! **Retention** ([`delete_before`]) moves the log start forward and deletes whole batches
//! below it, a bounded number per statement.

use std::time::Duration;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, GenericClient};
use uuid::Uuid;

use crate::lease::{self, Lease, LeaseError, LeaseKind};

/// The channel appends notify, with the payload `topic_id:partition:next_offset`.
pub const APPENDED_CHANNEL: &str = "starling_appended";

/// The size of a v2 record batch header; a shorter batch is refused.
const HEADER_LEN: usize = 61;
const BATCH_LENGTH: usize = 8;
const PARTITION_LEADER_EPOCH: usize = 12;
const MAGIC: usize = 16;
const LAST_OFFSET_DELTA: usize = 23;
const MAX_TIMESTAMP: usize = 35;

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
    #[error("PostgreSQL: {0}")]
    Database(#[from] tokio_postgres::Error),
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

/// (last offset delta, max timestamp) of a whole v2 batch, or why it is not one.
fn header(batch: &[u8]) -> Result<(i32, i64), String> {
    if batch.len() < HEADER_LEN {
        return Err(format!("{} bytes, shorter than a header", batch.len()));
    }
    let length = i32::from_be_bytes(batch[BATCH_LENGTH..BATCH_LENGTH + 4].try_into().unwrap());
    if usize::try_from(length).ok().map(|l| l + 12) != Some(batch.len()) {
        return Err(format!(
            "its length field says {length}, the batch is {} bytes",
            batch.len()
        ));
    }
    if batch[MAGIC] != 2 {
        return Err(format!("magic {}", batch[MAGIC]));
    }
    let delta = i32::from_be_bytes(
        batch[LAST_OFFSET_DELTA..LAST_OFFSET_DELTA + 4]
            .try_into()
            .unwrap(),
    );
    if delta < 0 {
        return Err(format!("last offset delta {delta}"));
    }
    let max_timestamp =
        i64::from_be_bytes(batch[MAX_TIMESTAMP..MAX_TIMESTAMP + 8].try_into().unwrap());
    Ok((delta, max_timestamp))
}

/// Appends validated `batches` (each one whole v2 batch) to a partition under its `lease`, in
/// one transaction.
pub async fn append(
    client: &mut tokio_postgres::Client,
    lease: &Lease,
    topic_id: Uuid,
    partition: i32,
    batches: &[Vec<u8>],
) -> Result<Appended, PartitionLogError> {
    if lease.kind != LeaseKind::Partition || lease.name != lease_name(topic_id, partition) {
        return Err(PartitionLogError::WrongLease(format!(
            "{} {}",
            lease.kind.as_str(),
            lease.name
        )));
    }
    let mut headers = Vec::with_capacity(batches.len());
    for (index, batch) in batches.iter().enumerate() {
        headers
            .push(header(batch).map_err(|reason| PartitionLogError::BadBatch { index, reason })?);
    }
    let tx = client.transaction().await?;
    lease::check(&tx, lease).await?;
    let (log_start_offset, base_offset) = select_bounds(&tx, topic_id, partition, true).await?;
    let insert = tx
        .prepare(
            "INSERT INTO batches (topic_id, partition, base_offset, last_offset, max_timestamp, bytes)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .await?;
    let leader_epoch = i32::try_from(lease.epoch).unwrap_or(i32::MAX);
    let mut next = base_offset;
    for (batch, (delta, max_timestamp)) in batches.iter().zip(headers) {
        let mut stored = batch.clone();
        stored[..8].copy_from_slice(&next.to_be_bytes());
        stored[PARTITION_LEADER_EPOCH..PARTITION_LEADER_EPOCH + 4]
            .copy_from_slice(&leader_epoch.to_be_bytes());
        let last = next + i64::from(delta);
        tx.execute(
            &insert,
            &[&topic_id, &partition, &next, &last, &max_timestamp, &stored],
        )
        .await?;
        next = last + 1;
    }
    tx.execute(
        "UPDATE partitions SET next_offset = $3 WHERE topic_id = $1 AND partition = $2",
        &[&topic_id, &partition, &next],
    )
    .await?;
    // Delivered to listeners only when the transaction commits.
    tx.execute(
        "SELECT pg_notify($1, $2)",
        &[&APPENDED_CHANNEL, &format!("{topic_id}:{partition}:{next}")],
    )
    .await?;
    tx.commit().await?;
    Ok(Appended {
        base_offset,
        last_offset: next - 1,
        log_start_offset,
    })
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

/// Batches holding offsets from `offset` on, up to `max_bytes` (but at least one batch when
/// there is one). An offset equal to the next offset reads nothing; one outside the log is
/// [`PartitionLogError::OffsetOutOfRange`].
pub async fn read(
    client: &impl GenericClient,
    topic_id: Uuid,
    partition: i32,
    offset: i64,
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
    // Batches are at least a header long: the budget bounds the rows fetched too.
    let limit = i64::try_from(max_bytes / HEADER_LEN + 1).unwrap_or(i64::MAX);
    let rows = client
        .query(
            "SELECT bytes FROM batches
             WHERE topic_id = $1 AND partition = $2 AND last_offset >= $3
             ORDER BY base_offset LIMIT $4",
            &[&topic_id, &partition, &offset, &limit],
        )
        .await?;
    let mut records = Vec::new();
    for row in &rows {
        let bytes: &[u8] = row.get(0);
        if !records.is_empty() && records.len() + bytes.len() > max_bytes {
            break;
        }
        records.extend_from_slice(bytes);
    }
    Ok(Read {
        records,
        log_start_offset,
        next_offset,
    })
}

/// (log start, next offset) of a partition.
pub async fn bounds(
    client: &impl GenericClient,
    topic_id: Uuid,
    partition: i32,
) -> Result<(i64, i64), PartitionLogError> {
    select_bounds(client, topic_id, partition, false).await
}

/// (log start, next offset) of a partition; with `lock`, the row is locked for update until
/// the transaction ends (an append's hold on the partition).
async fn select_bounds(
    client: &impl GenericClient,
    topic_id: Uuid,
    partition: i32,
    lock: bool,
) -> Result<(i64, i64), PartitionLogError> {
    let query = if lock {
        "SELECT log_start_offset, next_offset FROM partitions
         WHERE topic_id = $1 AND partition = $2 FOR UPDATE"
    } else {
        "SELECT log_start_offset, next_offset FROM partitions
         WHERE topic_id = $1 AND partition = $2"
    };
    let row = client
        .query_opt(query, &[&topic_id, &partition])
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

/// One `LISTEN` connection delivering every committed append: (topic id, partition, next
/// offset). A node keeps one and wakes its waiting fetches from it.
pub struct AppendListener {
    notifications: mpsc::UnboundedReceiver<(Uuid, i32, i64)>,
    _client: tokio_postgres::Client,
}

impl AppendListener {
    pub async fn connect(url: &str) -> Result<AppendListener, PartitionLogError> {
        let (client, mut connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        let (tx, notifications) = mpsc::unbounded_channel();
        // Polling the connection's messages also drives the client's requests.
        tokio::spawn(async move {
            let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                match message {
                    Ok(AsyncMessage::Notification(n)) => {
                        if let Some(parsed) = parse_payload(n.payload()) {
                            if tx.send(parsed).is_err() {
                                return;
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "the append listener's connection ended");
                        return;
                    }
                }
            }
        });
        client
            .batch_execute(&format!("LISTEN {APPENDED_CHANNEL}"))
            .await?;
        Ok(AppendListener {
            notifications,
            _client: client,
        })
    }

    /// The next committed append, or `None` after `timeout` (or once the connection ended).
    pub async fn next(&mut self, timeout: Duration) -> Option<(Uuid, i32, i64)> {
        tokio::time::timeout(timeout, self.notifications.recv())
            .await
            .ok()
            .flatten()
    }
}

fn parse_payload(payload: &str) -> Option<(Uuid, i32, i64)> {
    let mut parts = payload.split(':');
    let topic_id = parts.next()?.parse().ok()?;
    let partition = parts.next()?.parse().ok()?;
    let next = parts.next()?.parse().ok()?;
    Some((topic_id, partition, next))
}
