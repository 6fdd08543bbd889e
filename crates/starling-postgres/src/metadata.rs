//! [`PgMetadata`]: the cluster's metadata in PostgreSQL, behind the same
//! [`MetadataBackend`] seam as the embedded redb store, passing the same conformance suite.
//!
//! Each call is one statement or one transaction on a pooled connection. Producer id blocks
//! are reserved by an `UPDATE … RETURNING` that moves the next id forward under the row's
//! lock, so blocks reserved at once by several nodes never overlap. Errors become
//! [`MetaError::Storage`], as the embedded store's I/O errors are.

use std::collections::BTreeMap;

use base64::Engine;
use starling_meta::backend::MetadataBackend;
use starling_meta::{MetaError, TopicRecord};
use uuid::Uuid;

use crate::PgPool;

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

    async fn client(&self) -> Result<deadpool_postgres::Object, MetaError> {
        self.pool
            .get()
            .await
            .map_err(|e| MetaError::Storage(format!("PostgreSQL: {e}")))
    }
}

fn storage(e: impl std::fmt::Display) -> MetaError {
    MetaError::Storage(format!("PostgreSQL: {e}"))
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
                let configs: serde_json::Value = row.get(3);
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

    async fn put_topic(&self, topic: &TopicRecord) -> Result<(), MetaError> {
        let client = self.client().await?;
        let partitions = i32::try_from(topic.partitions).map_err(storage)?;
        let configs = serde_json::to_value(&topic.configs).map_err(storage)?;
        client
            .execute(
                "INSERT INTO topics (name, topic_id, partitions, configs) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (name) DO UPDATE SET topic_id = EXCLUDED.topic_id,
                     partitions = EXCLUDED.partitions, configs = EXCLUDED.configs",
                &[&topic.name, &topic.id, &partitions, &configs],
            )
            .await
            .map_err(storage)?;
        Ok(())
    }

    async fn delete_topic(&self, name: &str) -> Result<bool, MetaError> {
        let client = self.client().await?;
        let deleted = client
            .execute("DELETE FROM topics WHERE name = $1", &[&name])
            .await
            .map_err(storage)?;
        Ok(deleted > 0)
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
                let configs: serde_json::Value = row.get(1);
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
            let value = serde_json::to_value(configs).map_err(storage)?;
            client
                .execute(
                    "INSERT INTO broker_configs (scope, configs) VALUES ($1, $2)
                     ON CONFLICT (scope) DO UPDATE SET configs = EXCLUDED.configs",
                    &[&scope, &value],
                )
                .await
                .map_err(storage)?;
        }
        Ok(())
    }
}
