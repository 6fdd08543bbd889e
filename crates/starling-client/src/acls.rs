//! ACLs (KIP-140): CreateAcls, DescribeAcls and DeleteAcls, sent to the bootstrap broker, as
//! Kafka's `Admin.createAcls` / `describeAcls` / `deleteAcls` do. Bindings and filters are
//! `starling-acl`'s model, so callers name resource types, operations and patterns as Kafka does.

use std::ops::RangeInclusive;

use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{ApiKey, CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::StrBytes;
use starling_acl::{
    AccessControlEntry, AclBinding, AclBindingFilter, AclOperation, PatternType, Permission,
    ResourcePattern, ResourceType,
};

use crate::admin::TopicError;
use crate::client::{check, err, Client};
use crate::error::Result;

const DESCRIBE_ACLS: RangeInclusive<i16> = 1..=3;
const CREATE_ACLS: RangeInclusive<i16> = 1..=3;
const DELETE_ACLS: RangeInclusive<i16> = 1..=3;

/// The broker's answer for one DeleteAcls filter: the bindings it deleted, or why not.
pub type AclDeleteResult = std::result::Result<Vec<AclBinding>, TopicError>;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn failure(code: i16, message: Option<&StrBytes>) -> std::result::Result<(), TopicError> {
    match err(code) {
        None => Ok(()),
        Some(error) => Err(TopicError {
            error,
            message: message.map(|m| m.to_string()),
        }),
    }
}

#[allow(clippy::too_many_arguments)]
fn binding(
    resource_type: i8,
    name: &StrBytes,
    pattern_type: i8,
    principal: &StrBytes,
    host: &StrBytes,
    operation: i8,
    permission: i8,
) -> AclBinding {
    AclBinding {
        pattern: ResourcePattern {
            resource_type: ResourceType::from_code(resource_type),
            name: name.to_string(),
            pattern_type: PatternType::from_code(pattern_type),
        },
        entry: AccessControlEntry {
            principal: principal.to_string(),
            host: host.to_string(),
            operation: AclOperation::from_code(operation),
            permission: Permission::from_code(permission),
        },
    }
}

impl Client {
    /// Creates ACLs; one result per binding, in order.
    pub async fn create_acls(
        &mut self,
        bindings: &[AclBinding],
    ) -> Result<Vec<std::result::Result<(), TopicError>>> {
        let conn = self.bootstrap_conn().await?;
        let version = conn.version_for(ApiKey::CreateAcls, CREATE_ACLS)?;
        let creations = bindings
            .iter()
            .map(|b| {
                AclCreation::default()
                    .with_resource_type(b.pattern.resource_type.code())
                    .with_resource_name(s(&b.pattern.name))
                    .with_resource_pattern_type(b.pattern.pattern_type.code())
                    .with_principal(s(&b.entry.principal))
                    .with_host(s(&b.entry.host))
                    .with_operation(b.entry.operation.code())
                    .with_permission_type(b.entry.permission.code())
            })
            .collect();
        let request = CreateAclsRequest::default().with_creations(creations);
        let response = conn.send(version, &request).await?;
        Ok(response
            .results
            .iter()
            .map(|r| failure(r.error_code, r.error_message.as_ref()))
            .collect())
    }

    /// The ACLs `filter` matches.
    pub async fn describe_acls(&mut self, filter: &AclBindingFilter) -> Result<Vec<AclBinding>> {
        let conn = self.bootstrap_conn().await?;
        let version = conn.version_for(ApiKey::DescribeAcls, DESCRIBE_ACLS)?;
        let request = DescribeAclsRequest::default()
            .with_resource_type_filter(filter.pattern.resource_type.code())
            .with_resource_name_filter(filter.pattern.name.as_deref().map(s))
            .with_pattern_type_filter(filter.pattern.pattern_type.code())
            .with_principal_filter(filter.entry.principal.as_deref().map(s))
            .with_host_filter(filter.entry.host.as_deref().map(s))
            .with_operation(filter.entry.operation.code())
            .with_permission_type(filter.entry.permission.code());
        let response = conn.send(version, &request).await?;
        check(
            response.error_code,
            response.error_message.as_deref(),
            || "DescribeAcls".to_string(),
        )?;
        let mut bindings: Vec<AclBinding> = response
            .resources
            .iter()
            .flat_map(|r| {
                r.acls.iter().map(|a| {
                    binding(
                        r.resource_type,
                        &r.resource_name,
                        r.pattern_type,
                        &a.principal,
                        &a.host,
                        a.operation,
                        a.permission_type,
                    )
                })
            })
            .collect();
        bindings.sort();
        Ok(bindings)
    }

    /// Deletes the ACLs each filter matches; one result per filter, in order.
    pub async fn delete_acls(
        &mut self,
        filters: &[AclBindingFilter],
    ) -> Result<Vec<AclDeleteResult>> {
        let conn = self.bootstrap_conn().await?;
        let version = conn.version_for(ApiKey::DeleteAcls, DELETE_ACLS)?;
        let filters = filters
            .iter()
            .map(|f| {
                DeleteAclsFilter::default()
                    .with_resource_type_filter(f.pattern.resource_type.code())
                    .with_resource_name_filter(f.pattern.name.as_deref().map(s))
                    .with_pattern_type_filter(f.pattern.pattern_type.code())
                    .with_principal_filter(f.entry.principal.as_deref().map(s))
                    .with_host_filter(f.entry.host.as_deref().map(s))
                    .with_operation(f.entry.operation.code())
                    .with_permission_type(f.entry.permission.code())
            })
            .collect();
        let request = DeleteAclsRequest::default().with_filters(filters);
        let response = conn.send(version, &request).await?;
        Ok(response
            .filter_results
            .iter()
            .map(|r| {
                failure(r.error_code, r.error_message.as_ref()).map(|()| {
                    r.matching_acls
                        .iter()
                        .map(|a| {
                            binding(
                                a.resource_type,
                                &a.resource_name,
                                a.pattern_type,
                                &a.principal,
                                &a.host,
                                a.operation,
                                a.permission_type,
                            )
                        })
                        .collect()
                })
            })
            .collect())
    }
}
