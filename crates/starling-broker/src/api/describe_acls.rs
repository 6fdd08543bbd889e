//! DescribeAcls: the stored ACLs a filter matches (Kafka's `AclBindingFilter.matches`, MATCH
//! included), grouped by resource pattern as Kafka's `DescribeAclsResponse.aclsResources`.
//! Without an authorizer the answer is SECURITY_DISABLED; a filter with an UNKNOWN field (a code
//! Kafka does not define) is INVALID_REQUEST, where Kafka would fail to parse the request.

use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use starling_acl::{
    AccessControlEntryFilter, AclBinding, AclBindingFilter, AclOperation, PatternType, Permission,
    ResourcePatternFilter, ResourceType,
};

use super::RequestContext;
use crate::Broker;

/// The filter a DescribeAcls request or a DeleteAcls filter carries.
pub(super) fn filter_of(
    resource_type: i8,
    name: Option<&StrBytes>,
    pattern_type: i8,
    principal: Option<&StrBytes>,
    host: Option<&StrBytes>,
    operation: i8,
    permission: i8,
) -> AclBindingFilter {
    AclBindingFilter {
        pattern: ResourcePatternFilter {
            resource_type: ResourceType::from_code(resource_type),
            name: name.map(|n| n.to_string()),
            pattern_type: PatternType::from_code(pattern_type),
        },
        entry: AccessControlEntryFilter {
            principal: principal.map(|p| p.to_string()),
            host: host.map(|h| h.to_string()),
            operation: AclOperation::from_code(operation),
            permission: Permission::from_code(permission),
        },
    }
}

/// The bindings grouped by resource pattern (they arrive sorted, pattern first).
fn resources(bindings: Vec<AclBinding>) -> Vec<DescribeAclsResource> {
    let mut out: Vec<DescribeAclsResource> = Vec::new();
    let mut last: Option<starling_acl::ResourcePattern> = None;
    for binding in bindings {
        let description = AclDescription::default()
            .with_principal(StrBytes::from_string(binding.entry.principal))
            .with_host(StrBytes::from_string(binding.entry.host))
            .with_operation(binding.entry.operation.code())
            .with_permission_type(binding.entry.permission.code());
        match out.last_mut() {
            Some(resource) if last.as_ref() == Some(&binding.pattern) => {
                resource.acls.push(description)
            }
            _ => {
                out.push(
                    DescribeAclsResource::default()
                        .with_resource_type(binding.pattern.resource_type.code())
                        .with_resource_name(StrBytes::from_string(binding.pattern.name.clone()))
                        .with_pattern_type(binding.pattern.pattern_type.code())
                        .with_acls(vec![description]),
                );
                last = Some(binding.pattern);
            }
        }
    }
    out
}

fn refuse(error: ResponseError, message: &str) -> DescribeAclsResponse {
    DescribeAclsResponse::default()
        .with_error_code(error.code())
        .with_error_message(Some(StrBytes::from_string(message.into())))
}

pub fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    request: DescribeAclsRequest,
) -> DescribeAclsResponse {
    let filter = filter_of(
        request.resource_type_filter,
        request.resource_name_filter.as_ref(),
        request.pattern_type_filter,
        request.principal_filter.as_ref(),
        request.host_filter.as_ref(),
        request.operation,
        request.permission_type,
    );
    if broker.acls.authorizer().is_none() {
        return refuse(
            ResponseError::SecurityDisabled,
            "No Authorizer is configured on the broker",
        );
    }
    // Kafka's rule: DESCRIBE on the cluster.
    if !ctx.authorize_cluster(broker, starling_acl::AclOperation::Describe) {
        return refuse(
            ResponseError::ClusterAuthorizationFailed,
            "Authorization failed.",
        );
    }
    if filter.is_unknown() {
        return refuse(
            ResponseError::InvalidRequest,
            "DescribeAclsRequest contains UNKNOWN elements",
        );
    }
    match broker.acls.describe(&filter) {
        Some(bindings) => DescribeAclsResponse::default().with_resources(resources(bindings)),
        None => refuse(
            ResponseError::SecurityDisabled,
            "No Authorizer is configured on the broker",
        ),
    }
}
