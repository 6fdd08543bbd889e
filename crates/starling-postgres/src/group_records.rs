//! The group coordinator's records in PostgreSQL, written only by the node holding the group's
//! lease.
//!
//! As in the embedded store, the table keeps the latest record of each key and a record with
//! no value deletes its key, so a group's replay is [`load`]: every row of the group, in key
//! order. [`write()`] stores one batch of the coordinator's records in one transaction that
//! first checks the group's lease ([`crate::lease::check`]): a coordinator that lost its group
//! writes nothing, and a batch is stored whole or not at all.

use starling_group::Record;

use crate::lease::{self, Lease, LeaseError, LeaseKind};
use crate::text;

/// The version of the JSON in `group_records.value`; a later Starling reads every earlier one.
/// 2: strings are [`text::escape_json`]d (format 1 had none holding NUL, which `jsonb` refuses).
pub const FORMAT: i16 = 2;

#[derive(Debug, thiserror::Error)]
pub enum GroupRecordsError {
    #[error(transparent)]
    Lease(#[from] LeaseError),
    #[error("a record of group '{record}' in a batch written under the lease of '{lease}'")]
    OtherGroup { record: String, lease: String },
    #[error("group record {key} does not encode: {source}")]
    Encode {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("group record {key} (format {format}) does not decode: {reason}")]
    Decode {
        key: String,
        format: i16,
        reason: String,
    },
    #[error("PostgreSQL: {}", crate::describe(.0))]
    Database(#[from] tokio_postgres::Error),
}

/// Stores `records` (all of `lease`'s group) in order, in one transaction fenced by `lease`.
pub async fn write(
    client: &mut tokio_postgres::Client,
    lease: &Lease,
    records: &[Record],
) -> Result<(), GroupRecordsError> {
    write_many(client, &[(lease.clone(), records.to_vec())]).await
}

/// Each record of `lease`'s group as (key, JSON value; `None` deletes the key). Encoded before
/// any transaction: a record that does not encode fails the whole batch and never turns into
/// a deletion.
fn encode(
    lease: &Lease,
    records: &[Record],
) -> Result<Vec<(String, Option<serde_json::Value>)>, GroupRecordsError> {
    if lease.kind != LeaseKind::Group {
        return Err(GroupRecordsError::OtherGroup {
            record: records.first().map_or("", |r| r.group_id()).to_string(),
            lease: format!("{} {}", lease.kind.as_str(), lease.name),
        });
    }
    let mut rows = Vec::with_capacity(records.len());
    for record in records {
        if record.group_id() != lease.name {
            return Err(GroupRecordsError::OtherGroup {
                record: record.group_id().to_string(),
                lease: lease.name.clone(),
            });
        }
        let key = record.key();
        let value = if record.is_deletion() {
            None
        } else {
            let mut value =
                serde_json::to_value(record).map_err(|source| GroupRecordsError::Encode {
                    key: key.clone(),
                    source,
                })?;
            text::escape_json(&mut value);
            Some(value)
        };
        rows.push((key, value));
    }
    Ok(rows)
}

/// Stores the records of several groups, each under its group's lease, in one transaction:
/// all or nothing, and nothing when any lease is not held (a coordinator's group commit).
pub async fn write_many(
    client: &mut tokio_postgres::Client,
    batches: &[(Lease, Vec<Record>)],
) -> Result<(), GroupRecordsError> {
    let mut rows = Vec::new();
    for (lease, records) in batches {
        rows.push((lease, encode(lease, records)?));
    }
    let tx = client.transaction().await?;
    for (lease, _) in &rows {
        lease::check(&tx, lease).await?;
    }
    let upsert = tx.prepare(UPSERT).await?;
    let delete = tx.prepare(DELETE).await?;
    for (lease, encoded) in &rows {
        for (key, value) in encoded {
            match value {
                Some(value) => {
                    tx.execute(&upsert, &[&lease.name, &text::escape(key), &FORMAT, value])
                        .await?
                }
                None => {
                    tx.execute(&delete, &[&lease.name, &text::escape(key)])
                        .await?
                }
            };
        }
    }
    tx.commit().await?;
    Ok(())
}

const UPSERT: &str = "INSERT INTO group_records (group_id, record_key, format, value)
     VALUES ($1, $2, $3, $4)
     ON CONFLICT (group_id, record_key)
     DO UPDATE SET format = EXCLUDED.format, value = EXCLUDED.value";
const DELETE: &str = "DELETE FROM group_records WHERE group_id = $1 AND record_key = $2";

/// Every group with stored records, in byte order: what the nodes share out when they start.
pub async fn group_ids(
    client: &impl tokio_postgres::GenericClient,
) -> Result<Vec<String>, GroupRecordsError> {
    let rows = client
        .query(
            "SELECT DISTINCT group_id COLLATE \"C\" AS id FROM group_records ORDER BY id",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

/// Every stored record of `group_id`, in the byte order of the keys (the embedded store's,
/// whatever the database's collation): what the coordinator replays when it takes the group.
pub async fn load(
    client: &impl tokio_postgres::GenericClient,
    group_id: &str,
) -> Result<Vec<Record>, GroupRecordsError> {
    let rows = client
        .query(
            "SELECT record_key, format, value FROM group_records
             WHERE group_id = $1 ORDER BY record_key COLLATE \"C\"",
            &[&group_id],
        )
        .await?;
    rows.iter().map(decode).collect()
}

/// One row (key, format, value) as its record.
fn decode(row: &tokio_postgres::Row) -> Result<Record, GroupRecordsError> {
    let key: String = row.get(0);
    let format: i16 = row.get(1);
    if format > FORMAT {
        return Err(GroupRecordsError::Decode {
            key,
            format,
            reason: format!("written by a newer Starling (this one reads up to {FORMAT})"),
        });
    }
    let mut value: serde_json::Value = row.get(2);
    if format >= 2 {
        text::unescape_json(&mut value);
    }
    serde_json::from_value(value).map_err(|e| GroupRecordsError::Decode {
        key,
        format,
        reason: e.to_string(),
    })
}
