//! The transaction coordinator across nodes: its records written only under the cluster's one
//! transaction coordinator lease, a producer's transaction looked up by any node, and the
//! markers the coordinator leaves for the nodes that lead the partitions (coordinate the
//! groups) its transactions wrote to.
//!
//! One node coordinates every transactional id at a time: the holder of the
//! [`LeaseKind::Transactions`] lease named [`COORDINATOR`]. [`write_records`] stores its
//! records in the same table the metadata store keeps them in (`keyed_records`, kind `txn`), in
//! a transaction that first checks the lease, so a coordinator that lost it writes nothing;
//! the node that takes the lease over replays them all.
//!
//! A partition leader checks that a transactional batch belongs to a partition its producer
//! added to its open transaction; when the coordinator is another node it reads the producer's
//! stored transaction ([`by_producer`]). The coordinator stores a step before answering it, so
//! what a producer was told is always there to be read.
//!
//! **Markers.** A decided transaction's markers are written by whoever leads each partition,
//! and its offsets settled by whoever coordinates each group. The coordinator writes those that
//! are its own and [`queue`]s the rest: one row per target and producer in `txn_markers`, with
//! a `NOTIFY` on [`MARKERS_CHANNEL`]. Each node carries out the rows of what it leads
//! ([`queued`]), then deletes them ([`done`], which notifies again); the coordinator waits
//! until none of the transaction's rows are left ([`pending`]). A row names its target, not a
//! node: when the node that should write it dies, whoever takes the partition or group over
//! writes it. Writing a marker twice is harmless (the partition skips one it already has), and
//! a producer has at most one decided transaction at a time, so its rows never mix two.

use starling_txn::{TopicPartition, TxnRecord};
use tokio_postgres::GenericClient;

use crate::lease::{self, Lease, LeaseError, LeaseKind};
use crate::text;

/// The name of the transaction coordinator's lease.
pub const COORDINATOR: &str = "coordinator";

/// The channel [`queue`] and [`done`] notify, with the payload `queued` or `done`.
pub const MARKERS_CHANNEL: &str = "starling_txn_markers";

/// The kind of the transaction records in `keyed_records` (as the metadata store writes them).
const TXN_RECORDS: &str = "txn";

#[derive(Debug, thiserror::Error)]
pub enum TxnStoreError {
    #[error(transparent)]
    Lease(#[from] LeaseError),
    #[error("the lease {0} is not the transaction coordinator's")]
    WrongLease(String),
    #[error("transaction record {key} does not encode: {source}")]
    Encode {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("transaction record {key} does not decode: {source}")]
    Decode {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("PostgreSQL: {}", crate::describe(.0))]
    Database(#[from] tokio_postgres::Error),
}

/// Stores `records` in order, in one transaction fenced by the coordinator's `lease`.
pub async fn write_records(
    client: &mut tokio_postgres::Client,
    lease: &Lease,
    records: &[TxnRecord],
) -> Result<(), TxnStoreError> {
    coordinator_lease(lease)?;
    // Encoded first: a record that does not encode fails the batch, never deletes.
    let mut rows = Vec::with_capacity(records.len());
    for record in records {
        let key = record.key();
        let value = match record.is_deletion() {
            true => None,
            false => {
                let mut value =
                    serde_json::to_value(record).map_err(|source| TxnStoreError::Encode {
                        key: key.clone(),
                        source,
                    })?;
                text::escape_json(&mut value);
                Some(value)
            }
        };
        rows.push((key, value));
    }
    let tx = client.transaction().await?;
    lease::check(&tx, lease).await?;
    for (key, value) in &rows {
        match value {
            Some(value) => {
                tx.execute(
                    "INSERT INTO keyed_records (kind, record_key, value) VALUES ($1, $2, $3)
                     ON CONFLICT (kind, record_key) DO UPDATE SET value = EXCLUDED.value",
                    &[&TXN_RECORDS, &text::escape(key), value],
                )
                .await?
            }
            None => {
                tx.execute(
                    "DELETE FROM keyed_records WHERE kind = $1 AND record_key = $2",
                    &[&TXN_RECORDS, &text::escape(key)],
                )
                .await?
            }
        };
    }
    tx.commit().await?;
    Ok(())
}

fn coordinator_lease(lease: &Lease) -> Result<(), TxnStoreError> {
    if lease.kind != LeaseKind::Transactions || lease.name != COORDINATOR {
        return Err(TxnStoreError::WrongLease(format!(
            "{} {}",
            lease.kind.as_str(),
            lease.name
        )));
    }
    Ok(())
}

/// The stored transactional id that holds `producer_id`, if any.
pub async fn by_producer(
    client: &impl GenericClient,
    producer_id: i64,
) -> Result<Option<TxnRecord>, TxnStoreError> {
    let row = client
        .query_opt(
            "SELECT record_key, value FROM keyed_records
             WHERE kind = $1 AND ((value -> 'value' ->> 'producer_id')::bigint) = $2
             LIMIT 1",
            &[&TXN_RECORDS, &producer_id],
        )
        .await?;
    row.map(|row| {
        let key = text::unescape(row.get(0)).into_owned();
        let mut value: serde_json::Value = row.get(1);
        text::unescape_json(&mut value);
        serde_json::from_value(value).map_err(|source| TxnStoreError::Decode { key, source })
    })
    .transpose()
}

/// What a queued marker is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MarkerTarget {
    /// A marker in a partition.
    Partition(TopicPartition),
    /// The end of a group's transactional offset commits.
    Group(String),
}

/// A marker the coordinator left for the node that leads its target.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QueuedMarker {
    pub target: MarkerTarget,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub commit: bool,
    pub transactional_id: String,
}

impl QueuedMarker {
    /// Its row's key: the target's kind, its name as stored ([`text::escape`]d), the partition.
    fn key(&self) -> (&'static str, std::borrow::Cow<'_, str>, i32) {
        match &self.target {
            MarkerTarget::Partition(tp) => ("partition", text::escape(&tp.topic), tp.partition),
            MarkerTarget::Group(group) => ("group", text::escape(group), -1),
        }
    }
}

/// Leaves `markers` for the nodes that lead their targets and wakes them, under the
/// coordinator's `lease`: a coordinator that lost it queues nothing, so no marker of a
/// transaction another coordinator has since completed can be written late. Queuing a marker
/// again (a coordinator that took over redoes the job) replaces the row.
pub async fn queue(
    client: &mut tokio_postgres::Client,
    lease: &Lease,
    markers: &[QueuedMarker],
) -> Result<(), TxnStoreError> {
    if markers.is_empty() {
        return Ok(());
    }
    coordinator_lease(lease)?;
    let tx = client.transaction().await?;
    lease::check(&tx, lease).await?;
    for marker in markers {
        let (kind, target, partition) = marker.key();
        tx.execute(
            "INSERT INTO txn_markers (target_kind, target, partition_index, producer_id,
                                      producer_epoch, is_commit, transactional_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (target_kind, target, partition_index, producer_id) DO UPDATE SET
                 producer_epoch = EXCLUDED.producer_epoch,
                 is_commit = EXCLUDED.is_commit,
                 transactional_id = EXCLUDED.transactional_id",
            &[
                &kind,
                &target,
                &partition,
                &marker.producer_id,
                &marker.producer_epoch,
                &marker.commit,
                &text::escape(&marker.transactional_id),
            ],
        )
        .await?;
    }
    tx.execute("SELECT pg_notify($1, 'queued')", &[&MARKERS_CHANNEL])
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Every queued marker.
pub async fn queued(client: &impl GenericClient) -> Result<Vec<QueuedMarker>, TxnStoreError> {
    select(client, None).await
}

/// The markers of `producer_id` still queued.
pub async fn pending(
    client: &impl GenericClient,
    producer_id: i64,
) -> Result<Vec<QueuedMarker>, TxnStoreError> {
    select(client, Some(producer_id)).await
}

async fn select(
    client: &impl GenericClient,
    producer_id: Option<i64>,
) -> Result<Vec<QueuedMarker>, TxnStoreError> {
    let rows = client
        .query(
            "SELECT target_kind, target, partition_index, producer_id, producer_epoch, is_commit,
                    transactional_id
             FROM txn_markers
             WHERE $1::bigint IS NULL OR producer_id = $1
             ORDER BY producer_id, target_kind, target, partition_index",
            &[&producer_id],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| {
            let kind: &str = row.get(0);
            let target = text::unescape(row.get(1)).into_owned();
            QueuedMarker {
                target: match kind {
                    "group" => MarkerTarget::Group(target),
                    _ => MarkerTarget::Partition(TopicPartition::new(target, row.get(2))),
                },
                producer_id: row.get(3),
                producer_epoch: row.get(4),
                commit: row.get(5),
                transactional_id: text::unescape(row.get(6)).into_owned(),
            }
        })
        .collect())
}

/// Deletes `marker`'s row once it is carried out, unless it was queued again meanwhile for
/// another outcome or epoch, and wakes the coordinator waiting for it.
pub async fn done(client: &impl GenericClient, marker: &QueuedMarker) -> Result<(), TxnStoreError> {
    let (kind, target, partition) = marker.key();
    client
        .execute(
            "WITH gone AS (
                 DELETE FROM txn_markers
                 WHERE target_kind = $1 AND target = $2 AND partition_index = $3
                   AND producer_id = $4 AND producer_epoch = $5 AND is_commit = $6
                 RETURNING 1
             )
             SELECT pg_notify($7, 'done') FROM gone LIMIT 1",
            &[
                &kind,
                &target,
                &partition,
                &marker.producer_id,
                &marker.producer_epoch,
                &marker.commit,
                &MARKERS_CHANNEL,
            ],
        )
        .await?;
    Ok(())
}
