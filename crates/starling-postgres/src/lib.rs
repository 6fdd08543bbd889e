//! `starling-postgres`: Starling's PostgreSQL back end, for a cluster of stateless brokers
//! whose state lives in a database they share (issue 14; the plan is in
//! `docs/design/cluster.md`).
//!
//! - [`connect`]: a connection pool (`deadpool-postgres` over `tokio-postgres`) to a
//!   `postgres://` URL, with the schema brought up to date ([`schema`]) before it is handed
//!   out.
//! - [`schema`]: the versioned migrations Starling applies itself, safely from several nodes at
//!   once.
//! - [`cluster_id`]: the cluster's one id, created by whichever node asks first.
//! - [`lease`]: fenced leases, how nodes own partitions and groups one at a time.
//! - [`group_records`]: the group coordinator's records, written under the group's lease.
//! - [`metadata`]: [`PgMetadata`](metadata::PgMetadata), the PostgreSQL side of
//!   `starling_meta::backend::MetadataBackend` (cluster id, producer ids, topics, configs).
//! - [`partition_log`]: record batches appended under the partition's lease with offsets
//!   assigned in the database, read back as stored, notified across nodes, trimmed.
//! - [`compaction`]: log compaction of a partition this node leads, the embedded cleaner's
//!   rules over its rows.
//! - [`partition`]: [`PgPartition`](partition::PgPartition), a partition this node leads: the
//!   embedded log's produce checks and idempotent-producer and transaction state over
//!   [`partition_log`], rebuilt from the stored batches when the lease is taken.
//! - [`notify`]: one `LISTEN` connection per node hearing other nodes' appends and
//!   transaction markers.
//! - [`transactions`]: the transaction coordinator's records under its cluster-wide lease,
//!   producers' transactions looked up from any node, and markers queued for other nodes.
//! - [`node`]: each node's lease on its own `node.id`, and the list of live nodes.
//! - [`placement`]: which live node should own a partition or group (rendezvous hashing).
//! - [`ownership`]: the reconciliation round that takes, renews, hands over and loses the
//!   leases placement gives this node.
//! - [`status`]: the nodes and leases as stored, for `starling cluster status`.
//! - [`testing`]: a throw-away PostgreSQL server in a temporary directory, for tests.
//! - [`text`]: Kafka strings holding NUL, which PostgreSQL's `text` cannot, in key columns.

pub mod compaction;
pub mod group_records;
pub mod lease;
pub mod metadata;
pub mod node;
pub mod notify;
pub mod ownership;
pub mod partition;
pub mod partition_log;
pub mod placement;
pub mod schema;
pub mod status;
pub mod testing;
pub mod text;
pub mod transactions;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};

pub use deadpool_postgres::Object as PgClient;
pub use deadpool_postgres::Pool as PgPool;

/// Why the database could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("invalid PostgreSQL URL: {0}")]
    Url(tokio_postgres::Error),
    #[error("connecting to PostgreSQL: {0}")]
    Connect(#[from] deadpool_postgres::PoolError),
    #[error("building the connection pool: {0}")]
    Pool(#[from] deadpool_postgres::BuildError),
    #[error(transparent)]
    Schema(#[from] schema::SchemaError),
    #[error("PostgreSQL: {}", crate::describe(.0))]
    Database(#[from] tokio_postgres::Error),
}

/// `error` with every cause under it: tokio-postgres says only "db error" of what the server
/// refused, its message being the error's source.
pub fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

/// Connections a node's pool keeps open at most.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// A pool of up to `size` connections to `url` (`postgres://user:password@host:port/db`, or
/// the key=value form), with the schema migrated to [`schema::latest_version`].
pub async fn connect(url: &str, size: usize) -> Result<Pool, PgError> {
    let config: tokio_postgres::Config = url.parse().map_err(PgError::Url)?;
    let manager = Manager::from_config(
        config,
        tokio_postgres::NoTls,
        ManagerConfig {
            // A connection that comes back is checked with a round trip before reuse, so a
            // database restart costs failed checks, not failed requests.
            recycling_method: RecyclingMethod::Verified,
        },
    );
    let pool = Pool::builder(manager).max_size(size.max(1)).build()?;
    let mut client = pool.get().await?;
    schema::migrate(&mut client).await?;
    Ok(pool)
}

/// The cluster's id: the one stored, or `proposed` stored now if there is none yet. Nodes
/// starting at once all get the same id.
pub async fn cluster_id(pool: &Pool, proposed: &str) -> Result<String, PgError> {
    let client = pool.get().await?;
    client
        .execute(
            "INSERT INTO cluster (cluster_id) VALUES ($1) ON CONFLICT (singleton) DO NOTHING",
            &[&proposed],
        )
        .await?;
    Ok(client
        .query_one("SELECT cluster_id FROM cluster", &[])
        .await?
        .get(0))
}

/// `url` naming database `name` instead of its own (`postgres://user@host:port/db?opts`).
pub fn url_with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let query = path.find('?').map_or("", |i| &path[i..]);
    format!("{scheme}://{authority}/{name}{query}")
}

/// Creates database `name` on the server `url` points at (connecting to `url`'s own database
/// to do so) and returns the URL naming it. For benchmarks and tools; Starling's nodes use
/// the database they are given.
pub async fn create_database(url: &str, name: &str) -> Result<String, PgError> {
    admin_statement(url, &format!("CREATE DATABASE {}", quoted(name))).await?;
    Ok(url_with_database(url, name))
}

/// Drops database `name` on the server `url` points at, if it exists.
pub async fn drop_database(url: &str, name: &str) -> Result<(), PgError> {
    admin_statement(
        url,
        &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quoted(name)),
    )
    .await
}

/// `name` as a quoted SQL identifier.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

async fn admin_statement(url: &str, statement: &str) -> Result<(), PgError> {
    on_one_connection(url, async |client| client.batch_execute(statement).await)
        .await
        .and_then(|done| done)
        .map_err(PgError::Database)
}

/// Runs `work` on a connection to `url` of its own (no pool, no schema migration), closed
/// afterwards: for tools that must not change the database they look at.
pub(crate) async fn on_one_connection<T>(
    url: &str,
    work: impl AsyncFnOnce(&tokio_postgres::Client) -> T,
) -> Result<T, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    let driver = tokio::spawn(connection);
    let done = work(&client).await;
    drop(client);
    let _ = driver.await;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::url_with_database;

    #[test]
    fn a_url_names_another_database() {
        assert_eq!(
            url_with_database("postgres://u:p@db:5432/starling", "bench_1"),
            "postgres://u:p@db:5432/bench_1"
        );
        assert_eq!(
            url_with_database("postgresql://u@db/x?sslmode=disable", "y"),
            "postgresql://u@db/y?sslmode=disable"
        );
        assert_eq!(
            url_with_database("postgres://u@db:5432", "z"),
            "postgres://u@db:5432/z"
        );
    }
}
