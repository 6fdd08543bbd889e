//! ACLs in the broker: the [`starling_acl::Authorizer`] when `authorizer.class.name` turns one
//! on, kept in step with the `acls` table of the metadata store (loaded at start, written before
//! the authorizer sees a change), and the create / describe / delete operations behind the
//! CreateAcls, DescribeAcls and DeleteAcls APIs with Kafka's validation (`AclApis`,
//! `AclControlManager`).
//!
//! Without an authorizer the ACL APIs answer SECURITY_DISABLED, and ACLs stored by an earlier
//! run stay in the store untouched until an authorizer is configured again.

use std::sync::Arc;

use starling_acl::{
    AccessControlEntry, AclBinding, AclBindingFilter, AclOperation, Authorizer, AuthorizerSettings,
    PatternType, Permission, ResourcePattern, ResourceType,
};
use starling_meta::backend::MetadataBackend;
use starling_meta::{AclRecord, MetaError};

use crate::config::BrokerConfig;
use crate::storage::MetadataStorage;

/// Why one ACL creation or one deletion filter failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AclError {
    /// Kafka's INVALID_REQUEST, with its message.
    Invalid(String),
    /// The metadata store could not record the change (KAFKA_STORAGE_ERROR).
    Storage(String),
}

impl AclError {
    /// The error code and message Kafka answers it with.
    pub fn response(self) -> (kafka_protocol::ResponseError, String) {
        match self {
            AclError::Invalid(message) => (kafka_protocol::ResponseError::InvalidRequest, message),
            AclError::Storage(message) => {
                (kafka_protocol::ResponseError::KafkaStorageError, message)
            }
        }
    }
}

/// Kafka's message for an ACL request to a broker without an authorizer (SECURITY_DISABLED).
pub const NO_AUTHORIZER: &str = "No Authorizer is configured.";

/// The broker's ACLs: the authorizer (if one is configured) and the store behind it.
pub struct Acls {
    store: MetadataStorage,
    authorizer: Option<Arc<Authorizer>>,
    /// Serializes changes, so the store and the authorizer change in the same order.
    changes: tokio::sync::Mutex<()>,
}

impl Acls {
    /// The authorizer `config` asks for, loaded with the stored ACLs; or none.
    pub async fn open(store: MetadataStorage, config: &BrokerConfig) -> Result<Acls, MetaError> {
        let authorizer = if config.authorizer_enabled() {
            let authorizer = Authorizer::new(AuthorizerSettings {
                super_users: AuthorizerSettings::parse_super_users(&config.super_users),
                allow_everyone_if_no_acl_found: config.allow_everyone_if_no_acl_found,
            });
            authorizer.replace(store.acls().await?.iter().map(binding_of_record));
            Some(Arc::new(authorizer))
        } else {
            None
        };
        Ok(Acls {
            store,
            authorizer,
            changes: tokio::sync::Mutex::new(()),
        })
    }

    /// Takes in the ACLs other nodes sharing the storage created or deleted (PostgreSQL).
    pub async fn follow_stored(&self) -> Result<(), MetaError> {
        let Some(authorizer) = &self.authorizer else {
            return Ok(());
        };
        let _changes = self.changes.lock().await;
        let stored = self.store.acls().await?;
        authorizer.replace(stored.iter().map(binding_of_record));
        Ok(())
    }

    /// The authorizer, when one is configured: what request handlers will ask.
    pub fn authorizer(&self) -> Option<&Arc<Authorizer>> {
        self.authorizer.as_ref()
    }

    /// Whether `principal` (`User:name`) from `host` may perform `operation` on the resource:
    /// always without an authorizer (as Kafka without `authorizer.class.name`), otherwise as
    /// [`Authorizer::authorize`] decides.
    pub fn authorize(
        &self,
        principal: &str,
        host: std::net::IpAddr,
        operation: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        self.authorizer
            .as_ref()
            .is_none_or(|a| a.authorize(principal, host, operation, resource_type, name))
    }

    /// Whether `principal` from `host` may perform `operation` on some resource of the type:
    /// always without an authorizer, otherwise [`Authorizer::authorize_by_resource_type`].
    pub fn authorize_by_resource_type(
        &self,
        principal: &str,
        host: std::net::IpAddr,
        operation: AclOperation,
        resource_type: ResourceType,
    ) -> bool {
        self.authorizer
            .as_ref()
            .is_none_or(|a| a.authorize_by_resource_type(principal, host, operation, resource_type))
    }

    /// The stored bindings `filter` matches; `None` without an authorizer.
    pub fn describe(&self, filter: &AclBindingFilter) -> Option<Vec<AclBinding>> {
        self.authorizer.as_ref().map(|a| a.bindings(filter))
    }

    /// Creates `bindings`, each validated as Kafka does; one result per binding, in order.
    /// Creating a binding that exists succeeds without change. `None` without an authorizer.
    pub async fn create(&self, bindings: &[AclBinding]) -> Option<Vec<Result<(), AclError>>> {
        let authorizer = self.authorizer.as_ref()?;
        let _change = self.changes.lock().await;
        let mut results: Vec<Result<(), AclError>> = bindings
            .iter()
            .map(|b| b.validate_new().map_err(AclError::Invalid))
            .collect();
        let mut new: Vec<AclBinding> = Vec::new();
        for (binding, result) in bindings.iter().zip(&results) {
            if result.is_ok() && !authorizer.contains(binding) && !new.contains(binding) {
                new.push(binding.clone());
            }
        }
        if !new.is_empty() {
            let records: Vec<AclRecord> = new.iter().map(record_of_binding).collect();
            if let Err(e) = self.store.update_acls(&records, &[]).await {
                tracing::error!(error = %e, "storing ACLs");
                for result in results.iter_mut().filter(|r| r.is_ok()) {
                    *result = Err(AclError::Storage(e.to_string()));
                }
                return Some(results);
            }
            authorizer.update(&new, &[]);
        }
        Some(results)
    }

    /// Deletes the bindings each filter matches, all filters in one step; per filter, the
    /// bindings it deleted (a binding matched by two filters is reported by both), or why the
    /// filter was refused. `None` without an authorizer.
    pub async fn delete(
        &self,
        filters: &[AclBindingFilter],
    ) -> Option<Vec<Result<Vec<AclBinding>, AclError>>> {
        let authorizer = self.authorizer.as_ref()?;
        let _change = self.changes.lock().await;
        let mut results: Vec<Result<Vec<AclBinding>, AclError>> = filters
            .iter()
            .map(|f| {
                f.validate_for_delete()
                    .map_err(AclError::Invalid)
                    .map(|()| authorizer.bindings(f))
            })
            .collect();
        let mut doomed: Vec<AclBinding> = Vec::new();
        for binding in results.iter().flatten().flatten() {
            if !doomed.contains(binding) {
                doomed.push(binding.clone());
            }
        }
        if !doomed.is_empty() {
            let records: Vec<AclRecord> = doomed.iter().map(record_of_binding).collect();
            if let Err(e) = self.store.update_acls(&[], &records).await {
                tracing::error!(error = %e, "deleting ACLs");
                for result in results.iter_mut().filter(|r| r.is_ok()) {
                    *result = Err(AclError::Storage(e.to_string()));
                }
                return Some(results);
            }
            authorizer.update(&[], &doomed);
        }
        Some(results)
    }
}

/// A binding as the store keeps it.
fn record_of_binding(binding: &AclBinding) -> AclRecord {
    AclRecord {
        resource_type: binding.pattern.resource_type.code(),
        resource_name: binding.pattern.name.clone(),
        pattern_type: binding.pattern.pattern_type.code(),
        principal: binding.entry.principal.clone(),
        host: binding.entry.host.clone(),
        operation: binding.entry.operation.code(),
        permission: binding.entry.permission.code(),
    }
}

/// A stored binding.
fn binding_of_record(record: &AclRecord) -> AclBinding {
    AclBinding {
        pattern: ResourcePattern {
            resource_type: ResourceType::from_code(record.resource_type),
            name: record.resource_name.clone(),
            pattern_type: PatternType::from_code(record.pattern_type),
        },
        entry: AccessControlEntry {
            principal: record.principal.clone(),
            host: record.host.clone(),
            operation: AclOperation::from_code(record.operation),
            permission: Permission::from_code(record.permission),
        },
    }
}

#[cfg(test)]
mod tests {
    use starling_meta::MetadataStore;

    use super::*;

    fn enabled() -> BrokerConfig {
        let mut config = BrokerConfig::default();
        config
            .set(
                "authorizer.class.name",
                "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            )
            .unwrap();
        config
    }

    fn binding(name: &str, pattern_type: PatternType, operation: AclOperation) -> AclBinding {
        AclBinding {
            pattern: ResourcePattern {
                resource_type: ResourceType::Topic,
                name: name.into(),
                pattern_type,
            },
            entry: AccessControlEntry {
                principal: "User:alice".into(),
                host: "*".into(),
                operation,
                permission: Permission::Allow,
            },
        }
    }

    async fn open(path: &std::path::Path, config: &BrokerConfig) -> Acls {
        Acls::open(Arc::new(MetadataStore::open(path).unwrap()).into(), config)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn without_an_authorizer_nothing_is_answered() {
        let dir = tempfile::tempdir().unwrap();
        let acls = open(&dir.path().join("m"), &BrokerConfig::default()).await;
        assert!(acls.authorizer().is_none());
        assert!(acls.describe(&AclBindingFilter::any()).is_none());
        assert!(acls
            .create(&[binding("t", PatternType::Literal, AclOperation::Read)])
            .await
            .is_none());
        assert!(acls.delete(&[AclBindingFilter::any()]).await.is_none());
    }

    #[tokio::test]
    async fn without_an_authorizer_everything_is_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let acls = open(&dir.path().join("m"), &BrokerConfig::default()).await;
        let host = "10.0.0.1".parse().unwrap();
        assert!(acls.authorize(
            "User:x",
            host,
            AclOperation::Alter,
            ResourceType::Cluster,
            "kafka-cluster"
        ));
        assert!(acls.authorize_by_resource_type(
            "User:x",
            host,
            AclOperation::Write,
            ResourceType::TransactionalId
        ));
    }

    #[tokio::test]
    async fn with_an_authorizer_and_no_acls_nothing_is_allowed_but_super_users() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = enabled();
        config.set("super.users", "User:admin").unwrap();
        let acls = open(&dir.path().join("m"), &config).await;
        let host = "10.0.0.1".parse().unwrap();
        assert!(!acls.authorize("User:x", host, AclOperation::Read, ResourceType::Topic, "t"));
        assert!(acls.authorize(
            "User:admin",
            host,
            AclOperation::Read,
            ResourceType::Topic,
            "t"
        ));
        assert!(!acls.authorize_by_resource_type(
            "User:x",
            host,
            AclOperation::Write,
            ResourceType::Topic
        ));
    }

    #[tokio::test]
    async fn allow_everyone_if_no_acl_found_comes_from_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = enabled();
        config
            .set("allow.everyone.if.no.acl.found", "true")
            .unwrap();
        let acls = open(&dir.path().join("m"), &config).await;
        let host = "10.0.0.1".parse().unwrap();
        assert!(acls.authorize("User:x", host, AclOperation::Read, ResourceType::Topic, "t"));
        acls.create(&[binding("t", PatternType::Literal, AclOperation::Read)])
            .await
            .unwrap();
        assert!(!acls.authorize("User:x", host, AclOperation::Read, ResourceType::Topic, "t"));
        assert!(acls.authorize(
            "User:alice",
            host,
            AclOperation::Read,
            ResourceType::Topic,
            "t"
        ));
    }

    #[tokio::test]
    async fn created_acls_authorize_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m");
        let acls = open(&path, &enabled()).await;
        let read = binding("t", PatternType::Literal, AclOperation::Read);
        assert_eq!(
            acls.create(std::slice::from_ref(&read)).await,
            Some(vec![Ok(())])
        );
        drop(acls);
        let acls = open(&path, &enabled()).await;
        assert_eq!(acls.describe(&AclBindingFilter::any()), Some(vec![read]));
        let localhost = "127.0.0.1".parse().unwrap();
        assert!(acls.authorizer().unwrap().authorize(
            "User:alice",
            localhost,
            AclOperation::Read,
            ResourceType::Topic,
            "t"
        ));
    }

    #[tokio::test]
    async fn invalid_bindings_fail_alone() {
        let dir = tempfile::tempdir().unwrap();
        let acls = open(&dir.path().join("m"), &enabled()).await;
        let good = binding("t", PatternType::Literal, AclOperation::Read);
        let results = acls
            .create(&[
                binding("", PatternType::Literal, AclOperation::Read),
                good.clone(),
                binding("t", PatternType::Match, AclOperation::Read),
            ])
            .await
            .unwrap();
        assert_eq!(
            results[0],
            Err(AclError::Invalid("Invalid empty resource name".into()))
        );
        assert_eq!(results[1], Ok(()));
        assert_eq!(
            results[2],
            Err(AclError::Invalid("Invalid patternType MATCH".into()))
        );
        assert_eq!(acls.describe(&AclBindingFilter::any()), Some(vec![good]));
    }

    #[tokio::test]
    async fn creating_an_existing_binding_succeeds_without_a_duplicate() {
        let dir = tempfile::tempdir().unwrap();
        let acls = open(&dir.path().join("m"), &enabled()).await;
        let read = binding("t", PatternType::Literal, AclOperation::Read);
        acls.create(&[read.clone(), read.clone()]).await.unwrap();
        assert_eq!(
            acls.create(std::slice::from_ref(&read)).await,
            Some(vec![Ok(())])
        );
        assert_eq!(acls.describe(&AclBindingFilter::any()).unwrap().len(), 1);
    }

    #[tokio::test]
    async fn delete_reports_per_filter_and_removes_from_store_and_authorizer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m");
        let acls = open(&path, &enabled()).await;
        let read = binding("t", PatternType::Literal, AclOperation::Read);
        let write = binding("t", PatternType::Prefixed, AclOperation::Write);
        acls.create(&[read.clone(), write.clone()]).await.unwrap();
        let mut literal = AclBindingFilter::any();
        literal.pattern.pattern_type = PatternType::Literal;
        let mut unknown = AclBindingFilter::any();
        unknown.entry.operation = AclOperation::Unknown;
        let results = acls
            .delete(&[literal, AclBindingFilter::any(), unknown])
            .await
            .unwrap();
        assert_eq!(results[0], Ok(vec![read.clone()]));
        assert_eq!(results[1], Ok(vec![read, write]));
        assert_eq!(
            results[2],
            Err(AclError::Invalid("Unknown entryFilter.".into()))
        );
        drop(acls);
        let acls = open(&path, &enabled()).await;
        assert_eq!(acls.describe(&AclBindingFilter::any()), Some(vec![]));
    }

    #[tokio::test]
    async fn a_store_that_cannot_write_fails_the_change_and_leaves_the_authorizer_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(MetadataStore::open(&dir.path().join("m")).unwrap());
        let acls = Acls::open(store.clone().into(), &enabled()).await.unwrap();
        let read = binding("t", PatternType::Literal, AclOperation::Read);
        acls.create(std::slice::from_ref(&read)).await.unwrap();

        store
            .failpoint()
            .fail_writes(u64::MAX, std::io::ErrorKind::StorageFull);
        let write = binding("t", PatternType::Literal, AclOperation::Write);
        let results = acls
            .create(&[write, binding("", PatternType::Literal, AclOperation::Read)])
            .await
            .unwrap();
        assert!(
            matches!(results[0], Err(AclError::Storage(_))),
            "{results:?}"
        );
        assert_eq!(
            results[1],
            Err(AclError::Invalid("Invalid empty resource name".into())),
            "validation errors keep their own code"
        );
        let deleted = acls.delete(&[AclBindingFilter::any()]).await.unwrap();
        assert!(
            matches!(deleted[0], Err(AclError::Storage(_))),
            "{deleted:?}"
        );
        assert_eq!(
            acls.describe(&AclBindingFilter::any()),
            Some(vec![read.clone()])
        );

        store.failpoint().clear();
        assert_eq!(
            acls.delete(&[AclBindingFilter::any()]).await,
            Some(vec![Ok(vec![read])])
        );
    }

    #[tokio::test]
    async fn acls_stored_while_enabled_wait_while_disabled() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m");
        let read = binding("t", PatternType::Literal, AclOperation::Read);
        open(&path, &enabled())
            .await
            .create(std::slice::from_ref(&read))
            .await
            .unwrap();
        drop(open(&path, &BrokerConfig::default()).await);
        assert_eq!(
            open(&path, &enabled())
                .await
                .describe(&AclBindingFilter::any()),
            Some(vec![read])
        );
    }
}
