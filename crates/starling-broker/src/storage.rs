//! Where the broker keeps its metadata: the embedded redb store under the data directory (the
//! default, no other service), or PostgreSQL (`storage=postgres://…`, the cluster back end of
//! `docs/design/cluster.md`).
//!
//! [`MetadataStorage`] is an enum of the two [`MetadataBackend`]s rather than a trait object:
//! the broker's topic registry, run-time configs, quotas, ACLs, SCRAM credentials, producer id
//! blocks and transaction records all go through it, and each keeps what it serves in memory,
//! loaded at start and changed after each write, as Kafka's brokers cache their metadata.
//!
//! The group coordinator's records and the partition logs are not behind this seam: with
//! PostgreSQL they are written under the group's or partition's lease
//! (`crate::coordinator::group_storage`, `crate::partition_store`).

use std::collections::BTreeMap;
use std::sync::Arc;

use starling_meta::backend::MetadataBackend;
use starling_meta::{
    AclRecord, ClientQuotaRecord, MetaError, MetadataStore, ScramCredentialChange,
    ScramCredentialRecord, TopicRecord,
};
use starling_postgres::metadata::PgMetadata;
use starling_txn::TxnRecord;

/// The `storage` setting: which back end keeps the broker's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StorageKind {
    /// The segment logs and redb under `log.dirs`; needs no other service.
    #[default]
    Embedded,
    /// A PostgreSQL database, named by a `postgres://` (or `postgresql://`) URL.
    Postgres(String),
}

impl StorageKind {
    /// Reads the `storage` setting: `embedded` (or empty), or a PostgreSQL URL.
    pub fn parse(value: &str) -> Result<StorageKind, String> {
        let value = value.trim();
        if value.is_empty() || value == "embedded" {
            return Ok(StorageKind::Embedded);
        }
        if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            return Ok(StorageKind::Postgres(value.to_string()));
        }
        Err(format!(
            "`{}` is neither `embedded` nor a postgres:// URL",
            redact_url(value)
        ))
    }

    /// The setting as it can be shown: a URL's password replaced by `***`.
    pub fn display(&self) -> String {
        match self {
            StorageKind::Embedded => "embedded".to_string(),
            StorageKind::Postgres(url) => redact_url(url),
        }
    }
}

/// `url` with the password of its user-info part (`user:password@`) replaced by `***`, and any
/// `password=` query parameter's value too.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                        format!("{key}=***")
                    }
                    _ => pair.to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// The broker's metadata back end.
#[derive(Clone)]
pub enum MetadataStorage {
    Embedded(Arc<MetadataStore>),
    Postgres(PgMetadata),
}

impl From<Arc<MetadataStore>> for MetadataStorage {
    fn from(store: Arc<MetadataStore>) -> MetadataStorage {
        MetadataStorage::Embedded(store)
    }
}

impl MetadataStorage {
    /// Whether the back end answers within `within`: always for the embedded store (its faults
    /// show in its writes); one round trip to PostgreSQL.
    pub async fn reachable(&self, within: std::time::Duration) -> Result<(), String> {
        match self {
            MetadataStorage::Embedded(_) => Ok(()),
            MetadataStorage::Postgres(pg) => match tokio::time::timeout(within, pg.ping()).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {} ms", within.as_millis())),
            },
        }
    }

    /// A short name for logs and metrics: `embedded` or `postgres`.
    pub fn kind(&self) -> &'static str {
        match self {
            MetadataStorage::Embedded(_) => "embedded",
            MetadataStorage::Postgres(_) => "postgres",
        }
    }
}

/// Calls the same method on whichever back end this is.
macro_rules! delegate {
    ($self:ident, $backend:ident => $call:expr) => {
        match $self {
            MetadataStorage::Embedded($backend) => $call.await,
            MetadataStorage::Postgres($backend) => $call.await,
        }
    };
}

impl MetadataBackend for MetadataStorage {
    async fn cluster_id(&self) -> Result<String, MetaError> {
        delegate!(self, b => b.cluster_id())
    }

    async fn reserve_producer_ids(&self, count: u32) -> Result<i64, MetaError> {
        delegate!(self, b => b.reserve_producer_ids(count))
    }

    async fn topics(&self) -> Result<Vec<TopicRecord>, MetaError> {
        delegate!(self, b => b.topics())
    }

    async fn put_topic(&self, topic: &TopicRecord) -> Result<(), MetaError> {
        delegate!(self, b => b.put_topic(topic))
    }

    async fn delete_topic(&self, name: &str) -> Result<bool, MetaError> {
        delegate!(self, b => b.delete_topic(name))
    }

    async fn broker_configs(
        &self,
    ) -> Result<BTreeMap<String, BTreeMap<String, String>>, MetaError> {
        delegate!(self, b => b.broker_configs())
    }

    async fn put_broker_configs(
        &self,
        scope: &str,
        configs: &BTreeMap<String, String>,
    ) -> Result<(), MetaError> {
        delegate!(self, b => b.put_broker_configs(scope, configs))
    }

    async fn client_quotas(&self) -> Result<Vec<ClientQuotaRecord>, MetaError> {
        delegate!(self, b => b.client_quotas())
    }

    async fn put_client_quotas(&self, records: &[ClientQuotaRecord]) -> Result<(), MetaError> {
        delegate!(self, b => b.put_client_quotas(records))
    }

    async fn acls(&self) -> Result<Vec<AclRecord>, MetaError> {
        delegate!(self, b => b.acls())
    }

    async fn update_acls(&self, add: &[AclRecord], remove: &[AclRecord]) -> Result<(), MetaError> {
        delegate!(self, b => b.update_acls(add, remove))
    }

    async fn scram_credentials(&self) -> Result<Vec<ScramCredentialRecord>, MetaError> {
        delegate!(self, b => b.scram_credentials())
    }

    async fn scram_credential(
        &self,
        user: &str,
        mechanism: &str,
    ) -> Result<Option<ScramCredentialRecord>, MetaError> {
        delegate!(self, b => b.scram_credential(user, mechanism))
    }

    async fn write_scram_credentials(
        &self,
        changes: &[ScramCredentialChange],
    ) -> Result<(), MetaError> {
        delegate!(self, b => b.write_scram_credentials(changes))
    }

    async fn txn_records(&self) -> Result<Vec<TxnRecord>, MetaError> {
        delegate!(self, b => b.txn_records())
    }

    async fn write_txn_records(&self, records: &[TxnRecord]) -> Result<(), MetaError> {
        delegate!(self, b => b.write_txn_records(records))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_setting_is_embedded_or_a_postgres_url() {
        assert_eq!(StorageKind::parse("").unwrap(), StorageKind::Embedded);
        assert_eq!(
            StorageKind::parse("embedded").unwrap(),
            StorageKind::Embedded
        );
        assert_eq!(
            StorageKind::parse("postgres://u@h/db").unwrap(),
            StorageKind::Postgres("postgres://u@h/db".into())
        );
        assert!(StorageKind::parse("postgresql://h/db").is_ok());
        let refused = StorageKind::parse("mysql://u:hunter2@h/db").unwrap_err();
        assert!(refused.contains("mysql://u:***@h/db"), "{refused}");
    }

    #[test]
    fn passwords_are_redacted_from_shown_urls() {
        assert_eq!(
            redact_url("postgres://starling:s3cret@db:5432/starling?sslmode=require"),
            "postgres://starling:***@db:5432/starling?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://db/starling?user=a&password=s3cret"),
            "postgres://db/starling?user=a&password=***"
        );
        assert_eq!(
            redact_url("postgres://starling@db/x"),
            "postgres://starling@db/x"
        );
        assert_eq!(redact_url("postgres://db"), "postgres://db");
        assert_eq!(
            redact_url("postgres://a:p@ss@db/x"),
            "postgres://a:***@db/x"
        );
    }
}
