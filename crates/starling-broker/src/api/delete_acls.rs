//! DeleteAcls: deletes, in one step, every stored ACL each filter matches; per filter, the ACLs
//! it matched (an ACL two filters match is reported by both), as Kafka's
//! `AclControlManager.deleteAcls`. A filter with an UNKNOWN field is refused with
//! INVALID_REQUEST and Kafka's message; without an authorizer every filter gets
//! SECURITY_DISABLED.

use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::{DeleteAclsRequest, DeleteAclsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use starling_acl::AclBindingFilter;

use super::describe_acls::filter_of;
use super::RequestContext;
use crate::acls::NO_AUTHORIZER;
use crate::Broker;

fn failure(error: ResponseError, message: String) -> DeleteAclsFilterResult {
    DeleteAclsFilterResult::default()
        .with_error_code(error.code())
        .with_error_message(Some(StrBytes::from_string(message)))
}

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    request: DeleteAclsRequest,
) -> DeleteAclsResponse {
    let filters: Vec<AclBindingFilter> = request
        .filters
        .iter()
        .map(|f| {
            filter_of(
                f.resource_type_filter,
                f.resource_name_filter.as_ref(),
                f.pattern_type_filter,
                f.principal_filter.as_ref(),
                f.host_filter.as_ref(),
                f.operation,
                f.permission_type,
            )
        })
        .collect();
    // Kafka's rule: ALTER on the cluster, or every filter is CLUSTER_AUTHORIZATION_FAILED.
    if !ctx.authorize_cluster(broker, starling_acl::AclOperation::Alter) {
        let results = filters
            .iter()
            .map(|_| {
                failure(
                    ResponseError::ClusterAuthorizationFailed,
                    "Authorization failed.".into(),
                )
            })
            .collect();
        return DeleteAclsResponse::default().with_filter_results(results);
    }
    let results = match broker.acls.delete(&filters).await {
        Some(results) => results
            .into_iter()
            .map(|result| match result {
                Ok(deleted) => DeleteAclsFilterResult::default().with_matching_acls(
                    deleted
                        .into_iter()
                        .map(|b| {
                            DeleteAclsMatchingAcl::default()
                                .with_resource_type(b.pattern.resource_type.code())
                                .with_resource_name(StrBytes::from_string(b.pattern.name))
                                .with_pattern_type(b.pattern.pattern_type.code())
                                .with_principal(StrBytes::from_string(b.entry.principal))
                                .with_host(StrBytes::from_string(b.entry.host))
                                .with_operation(b.entry.operation.code())
                                .with_permission_type(b.entry.permission.code())
                        })
                        .collect(),
                ),
                Err(e) => {
                    let (error, message) = e.response();
                    failure(error, message)
                }
            })
            .collect(),
        None => filters
            .iter()
            .map(|_| failure(ResponseError::SecurityDisabled, NO_AUTHORIZER.into()))
            .collect(),
    };
    DeleteAclsResponse::default().with_filter_results(results)
}
