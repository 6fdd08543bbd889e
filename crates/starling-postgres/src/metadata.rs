//! [`PgMetadata`]: the cluster's metadata in PostgreSQL, behind the same
//! [`MetadataBackend`] seam as the embedded redb store, passing the same conformance suite.
//!
//! Each call is one statement or one transaction on a pooled connection. Producer id blocks
//! are reserved by an `UPDATE … RETURNING` that moves the next id forward under the row's
//! lock, so blocks reserved at once by several nodes never overlap. Quotas, ACLs, SCRAM
//! credentials and transaction records are keyed records (`keyed_records`), each batch
//! written in order in one transaction, as the embedded store writes one. Errors become
//! [`MetaError::Storage`], as the embedded store's I/O errors are.
//!
//! Every change to what nodes serve from memory (topics, broker configs, client quotas, ACLs,
//! SCRAM credentials) also `NOTIFY`s [`METADATA_CHANNEL`] with its [`MetadataKind`], delivered
//! when it commits, so the other nodes read that kind again (`crate::notify`).

use std::collections::BTreeMap;

use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Serialize;
use starling_meta::backend::MetadataBackend;
use starling_meta::{
    AclRecord, ClientQuotaRecord, MetaError, ScramCredentialChange, ScramCredentialRecord,
    TopicRecord,
};
use starling_txn::TxnRecord;
use uuid::Uuid;

use crate::text;
use crate::PgPool;

/// The channel metadata changes notify, with the payload [`MetadataKind::as_str`].
pub const METADATA_CHANNEL: &str = "starling_metadata";

/// What a metadata change changed: the kinds a node keeps in memory and reads again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MetadataKind {
    Topics,
    BrokerConfigs,
    ClientQuotas,
    Acls,
    ScramCredentials,
}

impl MetadataKind {
    pub const ALL: [MetadataKind; 5] = [
        MetadataKind::Topics,
        MetadataKind::BrokerConfigs,
        MetadataKind::ClientQuotas,
        MetadataKind::Acls,
        MetadataKind::ScramCredentials,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MetadataKind::Topics => "topics",
            MetadataKind::BrokerConfigs => "broker_configs",
            MetadataKind::ClientQuotas => "client_quotas",
            MetadataKind::Acls => "acls",
            MetadataKind::ScramCredentials => "scram_credentials",
        }
    }

    pub fn parse(s: &str) -> Option<MetadataKind> {
        MetadataKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The kind of the keyed records of `kind` (`None`: not kept in memory by other nodes).
    fn of_keyed(kind: &str) -> Option<MetadataKind> {
        match kind {
            CLIENT_QUOTAS => Some(MetadataKind::ClientQuotas),
            ACLS => Some(MetadataKind::Acls),
            SCRAM_CREDENTIALS => Some(MetadataKind::ScramCredentials),
            _ => None,
        }
    }
}

/// Notifies the other nodes that `kind` changed, when `client`'s transaction commits.
async fn notify_changed(
    client: &impl tokio_postgres::GenericClient,
    kind: MetadataKind,
) -> Result<(), MetaError> {
    client
        .execute(
            "SELECT pg_notify($1, $2)",
            &[&METADATA_CHANNEL, &kind.as_str()],
        )
        .await
        .map_err(storage)?;
    Ok(())
}

/// The metadata of a cluster kept in PostgreSQL.
#[derive(Clone)]
pub struct PgMetadata {
    pool: PgPool,
}

impl PgMetadata {
    /// Over a pool whose database is migrated ([`crate::connect`] does that).
    pub fn new(pool: PgPool) -> PgMetadata {
        PgMetadata { pool }
    }

    /// Whether the database answers: one round trip on a pooled connection.
    pub async fn ping(&self) -> Result<(), MetaError> {
        let client = self.client().await?;
        client.simple_query("SELECT 1").await.map_err(storage)?;
        Ok(())
    }

    /// The pool the metadata is read and written through.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, MetaError> {
        self.pool.get().await.map_err(storage)
    }

    /// Every record of `kind`, in the byte order of the keys, as the embedded store gives them.
    async fn keyed<T: DeserializeOwned>(&self, kind: &str) -> Result<Vec<T>, MetaError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT record_key, value FROM keyed_records
                 WHERE kind = $1 ORDER BY record_key COLLATE \"C\"",
                &[&kind],
            )
            .await
            .map_err(storage)?;
        rows.iter()
            .map(|row| {
                let key = text::unescape(row.get(0)).into_owned();
                let mut value: serde_json::Value = row.get(1);
                text::unescape_json(&mut value);
                serde_json::from_value(value).map_err(|source| MetaError::Decode { key, source })
            })
            .collect()
    }

    /// One record of `kind`, if stored.
    async fn keyed_one<T: DeserializeOwned>(
        &self,
        kind: &str,
        key: &str,
    ) -> Result<Option<T>, MetaError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT value FROM keyed_records WHERE kind = $1 AND record_key = $2",
                &[&kind, &text::escape(key)],
            )
            .await
            .map_err(storage)?;
        row.map(|row| {
            let mut value: serde_json::Value = row.get(0);
            text::unescape_json(&mut value);
            serde_json::from_value(value).map_err(|source| MetaError::Decode {
                key: key.to_string(),
                source,
            })
        })
        .transpose()
    }

    /// Writes `(key, Some(value))` and deletes `(key, None)` in order, in one transaction.
    async fn write_keyed<T: Serialize>(
        &self,
        kind: &str,
        batch: Vec<(String, Option<&T>)>,
    ) -> Result<(), MetaError> {
        // Encoded first: a value that does not encode fails the batch, never deletes.
        let mut rows = Vec::with_capacity(batch.len());
        for (key, value) in batch {
            let value = value
                .map(|v| {
                    let mut value =
                        serde_json::to_value(v).map_err(|source| MetaError::Encode {
                            what: format!("{kind} {key}"),
                            source,
                        })?;
                    text::escape_json(&mut value);
                    Ok(value)
                })
                .transpose()?;
            rows.push((key, value));
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(storage)?;
        for (key, value) in &rows {
            match value {
                Some(value) => tx
                    .execute(
                        "INSERT INTO keyed_records (kind, record_key, value) VALUES ($1, $2, $3)
                         ON CONFLICT (kind, record_key) DO UPDATE SET value = EXCLUDED.value",
                        &[&kind, &text::escape(key), value],
                    )
                    .await
                    .map_err(storage)?,
                None => tx
                    .execute(
                        "DELETE FROM keyed_records WHERE kind = $1 AND record_key = $2",
                        &[&kind, &text::escape(key)],
                    )
                    .await
                    .map_err(storage)?,
            };
        }
        if let Some(changed) = MetadataKind::of_keyed(kind) {
            notify_changed(&*tx, changed).await?;
        }
        tx.commit().await.map_err(storage)
    }
}

const CLIENT_QUOTAS: &str = "client_quota";
const ACLS: &str = "acl";
const SCRAM_CREDENTIALS: &str = "scram_credential";
const TXN_RECORDS: &str = "txn";

fn storage(e: impl std::error::Error) -> MetaError {
    MetaError::Storage(format!("PostgreSQL: {}", crate::describe(&e)))
}

impl MetadataBackend for PgMetadata {
    async fn cluster_id(&self) -> Result<String, MetaError> {
        // 22 characters of URL-safe base64, as the embedded store and Kafka make them.
        let proposed =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Uuid::new_v4().as_bytes());
        crate::cluster_id(&self.pool, &proposed)
            .await
            .map_err(storage)
    }

    async fn reserve_producer_ids(&self, count: u32) -> Result<i64, MetaError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "INSERT INTO producer_ids (next_id) VALUES ($1)
                 ON CONFLICT (singleton) DO UPDATE SET next_id = producer_ids.next_id + $1
                 RETURNING next_id",
                &[&i64::from(count)],
            )
            .await
            .map_err(storage)?;
        let end: i64 = row.get(0);
        Ok(end - i64::from(count))
    }

    async fn topics(&self) -> Result<Vec<TopicRecord>, MetaError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT name, topic_id, partitions, configs FROM topics ORDER BY name COLLATE \"C\"",
                &[],
            )
            .await
            .map_err(storage)?;
        rows.iter()
            .map(|row| {
                let name: String = row.get(0);
                let partitions: i32 = row.get(2);
                let mut configs: serde_json::Value = row.get(3);
                text::unescape_json(&mut configs);
                Ok(TopicRecord {
                    id: row.get(1),
                    partitions: u32::try_from(partitions).map_err(storage)?,
                    configs: serde_json::from_value(configs).map_err(|source| {
                        MetaError::Decode {
                            key: name.clone(),
                            source,
                        }
                    })?,
                    name,
                })
            })
            .collect()
    }

    /// The topic's row and its partitions' rows, in one transaction: a partition exists (can
    /// be led and appended to) exactly when its topic does.
    async fn put_topic(&self, topic: &TopicRecord) -> Result<(), MetaError> {
        let mut client = self.client().await?;
        let partitions = i32::try_from(topic.partitions).map_err(storage)?;
        let mut configs = serde_json::to_value(&topic.configs).map_err(storage)?;
        text::escape_json(&mut configs);
        let client: &mut tokio_postgres::Client = &mut client;
        let tx = client.transaction().await.map_err(storage)?;
        // Another node's topic of the same name, or a newer copy of this one, stays.
        let written = tx
            .execute(
                "INSERT INTO topics (name, topic_id, partitions, configs) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (name) DO UPDATE SET
                     partitions = EXCLUDED.partitions, configs = EXCLUDED.configs
                 WHERE topics.topic_id = EXCLUDED.topic_id
                   AND topics.partitions <= EXCLUDED.partitions",
                &[&topic.name, &topic.id, &partitions, &configs],
            )
            .await
            .map_err(storage)?;
        if written == 0 {
            return Err(MetaError::Conflict(format!(
                "topic '{}' was created or grown by another node first",
                topic.name
            )));
        }
        crate::partition_log::create(&tx, topic.id, partitions)
            .await
            .map_err(storage)?;
        notify_changed(&tx, MetadataKind::Topics).await?;
        tx.commit().await.map_err(storage)?;
        Ok(())
    }

    /// The topic's row and everything of its partitions: their rows, batches, producer
    /// snapshots and leases, in one transaction.
    async fn delete_topic(&self, name: &str) -> Result<bool, MetaError> {
        let mut client = self.client().await?;
        let client: &mut tokio_postgres::Client = &mut client;
        let tx = client.transaction().await.map_err(storage)?;
        let Some(row) = tx
            .query_opt(
                "DELETE FROM topics WHERE name = $1 RETURNING topic_id",
                &[&name],
            )
            .await
            .map_err(storage)?
        else {
            return Ok(false);
        };
        let topic_id: Uuid = row.get(0);
        for statement in [
            "DELETE FROM batches WHERE topic_id = $1",
            "DELETE FROM producer_snapshots WHERE topic_id = $1",
            "DELETE FROM cleaner_checkpoints WHERE topic_id = $1",
            "DELETE FROM partitions WHERE topic_id = $1",
        ] {
            tx.execute(statement, &[&topic_id]).await.map_err(storage)?;
        }
        tx.execute(
            "DELETE FROM leases WHERE kind = 'partition' AND name LIKE $1 || ':%'",
            &[&topic_id.to_string()],
        )
        .await
        .map_err(storage)?;
        notify_changed(&tx, MetadataKind::Topics).await?;
        tx.commit().await.map_err(storage)?;
        Ok(true)
    }

    async fn broker_configs(
        &self,
    ) -> Result<BTreeMap<String, BTreeMap<String, String>>, MetaError> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT scope, configs FROM broker_configs", &[])
            .await
            .map_err(storage)?;
        rows.iter()
            .map(|row| {
                let scope: String = row.get(0);
                let mut configs: serde_json::Value = row.get(1);
                text::unescape_json(&mut configs);
                let configs =
                    serde_json::from_value(configs).map_err(|source| MetaError::Decode {
                        key: format!("broker configs {scope:?}"),
                        source,
                    })?;
                Ok((scope, configs))
            })
            .collect()
    }

    async fn put_broker_configs(
        &self,
        scope: &str,
        configs: &BTreeMap<String, String>,
    ) -> Result<(), MetaError> {
        let client = self.client().await?;
        if configs.is_empty() {
            client
                .execute("DELETE FROM broker_configs WHERE scope = $1", &[&scope])
                .await
                .map_err(storage)?;
        } else {
            let mut value = serde_json::to_value(configs).map_err(storage)?;
            text::escape_json(&mut value);
            client
                .execute(
                    "INSERT INTO broker_configs (scope, configs) VALUES ($1, $2)
                     ON CONFLICT (scope) DO UPDATE SET configs = EXCLUDED.configs",
                    &[&scope, &value],
                )
                .await
                .map_err(storage)?;
        }
        // After the change committed: whoever hears it reads the new configs.
        notify_changed(&**client, MetadataKind::BrokerConfigs).await?;
        Ok(())
    }

    async fn client_quotas(&self) -> Result<Vec<ClientQuotaRecord>, MetaError> {
        self.keyed(CLIENT_QUOTAS).await
    }

    async fn put_client_quotas(&self, records: &[ClientQuotaRecord]) -> Result<(), MetaError> {
        let batch = records
            .iter()
            .map(|r| {
                (
                    ClientQuotaRecord::key(&r.entity),
                    (!r.quotas.is_empty()).then_some(r),
                )
            })
            .collect();
        self.write_keyed(CLIENT_QUOTAS, batch).await
    }

    async fn acls(&self) -> Result<Vec<AclRecord>, MetaError> {
        self.keyed(ACLS).await
    }

    async fn update_acls(&self, add: &[AclRecord], remove: &[AclRecord]) -> Result<(), MetaError> {
        let batch = remove
            .iter()
            .map(|r| (r.key(), None))
            .chain(add.iter().map(|r| (r.key(), Some(r))))
            .collect();
        self.write_keyed(ACLS, batch).await
    }

    async fn scram_credentials(&self) -> Result<Vec<ScramCredentialRecord>, MetaError> {
        self.keyed(SCRAM_CREDENTIALS).await
    }

    async fn scram_credential(
        &self,
        user: &str,
        mechanism: &str,
    ) -> Result<Option<ScramCredentialRecord>, MetaError> {
        self.keyed_one(
            SCRAM_CREDENTIALS,
            &ScramCredentialRecord::key(user, mechanism),
        )
        .await
    }

    async fn write_scram_credentials(
        &self,
        changes: &[ScramCredentialChange],
    ) -> Result<(), MetaError> {
        let batch = changes
            .iter()
            .map(|c| {
                (
                    ScramCredentialRecord::key(&c.user, &c.mechanism),
                    c.credential.as_ref(),
                )
            })
            .collect();
        self.write_keyed(SCRAM_CREDENTIALS, batch).await
    }

    async fn txn_records(&self) -> Result<Vec<TxnRecord>, MetaError> {
        self.keyed(TXN_RECORDS).await
    }

    async fn write_txn_records(&self, records: &[TxnRecord]) -> Result<(), MetaError> {
        let batch = records
            .iter()
            .map(|r| (r.key(), (!r.is_deletion()).then_some(r)))
            .collect();
        self.write_keyed(TXN_RECORDS, batch).await
    }
}
