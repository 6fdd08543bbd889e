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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use kafka_protocol::messages::create_acls_response::AclCreationResult;
    use kafka_protocol::messages::delete_acls_response::{
        DeleteAclsFilterResult, DeleteAclsMatchingAcl,
    };
    use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
    use kafka_protocol::messages::{CreateAclsResponse, DeleteAclsResponse, DescribeAclsResponse};
    use kafka_protocol::ResponseError;

    use super::*;
    use crate::fake_broker::{api_versions, decode_body, respond, FakeBroker, Seen};
    use crate::Options;

    /// Refuses creations whose principal has no colon; describes one prefixed topic with two
    /// ACLs, or SECURITY_DISABLED for the principal filter `User:off`; deletes, per filter, one
    /// ACL for the filter's resource name.
    async fn acl_broker() -> FakeBroker {
        FakeBroker::start(Arc::new(|seen: &Seen| {
            match ApiKey::try_from(seen.header.request_api_key).unwrap() {
                ApiKey::ApiVersions => Some(respond(
                    seen,
                    &api_versions(&[
                        (ApiKey::ApiVersions, 0, 3),
                        (ApiKey::DescribeAcls, 1, 3),
                        (ApiKey::CreateAcls, 1, 3),
                        (ApiKey::DeleteAcls, 1, 3),
                    ]),
                )),
                ApiKey::CreateAcls => {
                    let req: CreateAclsRequest = decode_body(seen);
                    let results = req
                        .creations
                        .iter()
                        .map(|c| {
                            if c.principal.contains(':') {
                                AclCreationResult::default()
                            } else {
                                AclCreationResult::default()
                                    .with_error_code(ResponseError::InvalidRequest.code())
                                    .with_error_message(Some(s("Could not parse principal")))
                            }
                        })
                        .collect();
                    Some(respond(
                        seen,
                        &CreateAclsResponse::default().with_results(results),
                    ))
                }
                ApiKey::DescribeAcls => {
                    let req: DescribeAclsRequest = decode_body(seen);
                    if req.principal_filter.as_deref() == Some("User:off") {
                        return Some(respond(
                            seen,
                            &DescribeAclsResponse::default()
                                .with_error_code(ResponseError::SecurityDisabled.code())
                                .with_error_message(Some(s("No Authorizer is configured"))),
                        ));
                    }
                    let acl = |principal: &str, operation: i8| {
                        AclDescription::default()
                            .with_principal(s(principal))
                            .with_host(s("*"))
                            .with_operation(operation)
                            .with_permission_type(3)
                    };
                    Some(respond(
                        seen,
                        &DescribeAclsResponse::default().with_resources(vec![
                            DescribeAclsResource::default()
                                .with_resource_type(2)
                                .with_resource_name(s("pay"))
                                .with_pattern_type(4)
                                .with_acls(vec![acl("User:bob", 4), acl("User:alice", 3)]),
                        ]),
                    ))
                }
                ApiKey::DeleteAcls => {
                    let req: DeleteAclsRequest = decode_body(seen);
                    let results = req
                        .filters
                        .iter()
                        .map(|f| match &f.resource_name_filter {
                            Some(name) => {
                                DeleteAclsFilterResult::default().with_matching_acls(vec![
                                    DeleteAclsMatchingAcl::default()
                                        .with_resource_type(f.resource_type_filter)
                                        .with_resource_name(name.clone())
                                        .with_pattern_type(3)
                                        .with_principal(s("User:alice"))
                                        .with_host(s("*"))
                                        .with_operation(2)
                                        .with_permission_type(2),
                                ])
                            }
                            None => DeleteAclsFilterResult::default()
                                .with_error_code(ResponseError::InvalidRequest.code())
                                .with_error_message(Some(s("Unknown patternFilter."))),
                        })
                        .collect();
                    Some(respond(
                        seen,
                        &DeleteAclsResponse::default().with_filter_results(results),
                    ))
                }
                _ => None,
            }
        }))
        .await
    }

    fn opts() -> Options {
        Options {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            ..Options::default()
        }
    }

    fn read_acl(name: &str, principal: &str) -> AclBinding {
        binding(2, &s(name), 4, &s(principal), &s("*"), 3, 3)
    }

    #[tokio::test]
    async fn create_sends_every_field_and_reads_each_result() {
        let fake = acl_broker().await;
        let mut client = Client::connect(&fake.addr, opts()).await.unwrap();
        let results = client
            .create_acls(&[read_acl("pay", "User:alice"), read_acl("pay", "alice")])
            .await
            .unwrap();
        assert_eq!(results[0], Ok(()));
        let refused = results[1].as_ref().unwrap_err();
        assert_eq!(refused.error, ResponseError::InvalidRequest);
        assert_eq!(
            refused.message.as_deref(),
            Some("Could not parse principal")
        );
        let sent = fake
            .seen()
            .into_iter()
            .find(|s| s.header.request_api_key == ApiKey::CreateAcls as i16)
            .unwrap();
        assert_eq!(sent.header.request_api_version, 3);
        let req: CreateAclsRequest = decode_body(&sent);
        let c = &req.creations[0];
        assert_eq!(
            (
                c.resource_type,
                c.resource_name.as_str(),
                c.resource_pattern_type
            ),
            (2, "pay", 4)
        );
        assert_eq!(
            (
                c.principal.as_str(),
                c.host.as_str(),
                c.operation,
                c.permission_type
            ),
            ("User:alice", "*", 3, 3)
        );
    }

    #[tokio::test]
    async fn describe_flattens_resources_sorted_and_surfaces_the_error() {
        let fake = acl_broker().await;
        let mut client = Client::connect(&fake.addr, opts()).await.unwrap();
        let found = client
            .describe_acls(&AclBindingFilter::any())
            .await
            .unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].entry.principal, "User:alice");
        assert_eq!(found[0].pattern.pattern_type, PatternType::Prefixed);
        assert_eq!(found[1].entry.operation, AclOperation::Write);

        let mut off = AclBindingFilter::any();
        off.entry.principal = Some("User:off".into());
        let e = client.describe_acls(&off).await.unwrap_err().to_string();
        assert!(e.contains("No Authorizer is configured"), "{e}");
    }

    #[tokio::test]
    async fn delete_reads_matches_and_errors_per_filter() {
        let fake = acl_broker().await;
        let mut client = Client::connect(&fake.addr, opts()).await.unwrap();
        let mut named = AclBindingFilter::any();
        named.pattern.resource_type = ResourceType::Group;
        named.pattern.name = Some("billing".into());
        let results = client
            .delete_acls(&[named, AclBindingFilter::any()])
            .await
            .unwrap();
        let deleted = results[0].as_ref().unwrap();
        assert_eq!(deleted.len(), 1);
        assert_eq!(deleted[0].pattern.resource_type, ResourceType::Group);
        assert_eq!(deleted[0].pattern.name, "billing");
        assert_eq!(deleted[0].entry.permission, Permission::Deny);
        assert_eq!(
            results[1].as_ref().unwrap_err().error,
            ResponseError::InvalidRequest
        );
    }
}
