//! The database schema Starling keeps in PostgreSQL, created and upgraded by Starling itself.
//!
//! Each [`Migration`] is a numbered SQL script under `migrations/`, compiled into the binary.
//! [`migrate`] applies the ones a database lacks, in order, in one transaction that holds a
//! transaction-level advisory lock, and records each in `starling_schema`: several nodes
//! starting at once apply each migration exactly once, and a migration that fails leaves the
//! database as it was. A database already at a version this Starling does not know (written by
//! a newer one) is refused rather than used.
//!
//! A migration, once released, is never edited: a change is a new migration.

use tokio_postgres::GenericClient;

/// One step of the schema.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration, in order; versions are 1, 2, 3, …
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "cluster identity and nodes",
        sql: include_str!("../migrations/0001_cluster.sql"),
    },
    Migration {
        version: 2,
        name: "leases",
        sql: include_str!("../migrations/0002_leases.sql"),
    },
    Migration {
        version: 3,
        name: "group records",
        sql: include_str!("../migrations/0003_group_records.sql"),
    },
    Migration {
        version: 4,
        name: "partition logs",
        sql: include_str!("../migrations/0004_partitions.sql"),
    },
    Migration {
        version: 5,
        name: "cluster metadata",
        sql: include_str!("../migrations/0005_metadata.sql"),
    },
    Migration {
        version: 6,
        name: "keyed records",
        sql: include_str!("../migrations/0006_keyed_records.sql"),
    },
    Migration {
        version: 7,
        name: "batch producer fields",
        sql: include_str!("../migrations/0007_batch_producers.sql"),
    },
    Migration {
        version: 8,
        name: "producer snapshots",
        sql: include_str!("../migrations/0008_producer_snapshots.sql"),
    },
    Migration {
        version: 9,
        name: "batches stored uncompressed",
        sql: include_str!("../migrations/0009_batches_uncompressed.sql"),
    },
    Migration {
        version: 10,
        name: "node listeners",
        sql: include_str!("../migrations/0010_node_listeners.sql"),
    },
    Migration {
        version: 11,
        name: "transactions across nodes",
        sql: include_str!("../migrations/0011_transactions.sql"),
    },
    Migration {
        version: 12,
        name: "cleaner checkpoints",
        sql: include_str!("../migrations/0012_cleaner_checkpoints.sql"),
    },
];

/// The version a fully migrated database is at.
pub fn latest_version() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// The advisory lock key migrations hold ("starling" in ASCII, as a 64-bit number).
const MIGRATION_LOCK: i64 = 0x7374_6172_6c69_6e67;

/// Why a database could not be brought to the current schema.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("the database's Starling schema is at version {found}, newer than this Starling knows ({known}): upgrade Starling")]
    Newer { found: i32, known: i32 },
    #[error("schema migration {version} ({name}) failed: {source}")]
    Migration {
        version: i32,
        name: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("reading the schema version: {0}")]
    Database(#[from] tokio_postgres::Error),
}

/// Brings the database to [`latest_version`]; returns the migrations it applied (none if it
/// was already there).
pub async fn migrate(
    client: &mut tokio_postgres::Client,
) -> Result<Vec<&'static Migration>, SchemaError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS starling_schema (
             version     integer PRIMARY KEY,
             name        text NOT NULL,
             applied_at  timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let found = current_version(&tx).await?;
    let known = latest_version();
    if found > known {
        return Err(SchemaError::Newer { found, known });
    }
    let mut applied = Vec::new();
    for migration in MIGRATIONS.iter().filter(|m| m.version > found) {
        let failed = |source| SchemaError::Migration {
            version: migration.version,
            name: migration.name,
            source,
        };
        tx.batch_execute(migration.sql).await.map_err(failed)?;
        tx.execute(
            "INSERT INTO starling_schema (version, name) VALUES ($1, $2)",
            &[&migration.version, &migration.name],
        )
        .await
        .map_err(failed)?;
        applied.push(migration);
    }
    tx.commit().await?;
    for m in &applied {
        tracing::info!(
            version = m.version,
            name = m.name,
            "applied schema migration"
        );
    }
    Ok(applied)
}

/// The version the database is at (0: no Starling schema yet).
pub async fn current_version(client: &impl GenericClient) -> Result<i32, SchemaError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('starling_schema') IS NOT NULL", &[])
        .await?
        .get(0);
    if !exists {
        return Ok(0);
    }
    Ok(client
        .query_one("SELECT COALESCE(max(version), 0) FROM starling_schema", &[])
        .await?
        .get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_one_by_one_and_their_scripts_are_not_empty() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i32 + 1, "{}", m.name);
            assert!(!m.sql.trim().is_empty(), "{}", m.name);
        }
        assert_eq!(latest_version(), MIGRATIONS.len() as i32);
    }
}
