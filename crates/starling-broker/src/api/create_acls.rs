//! CreateAcls: stores each binding Kafka would accept, one result per binding in request order.
//! A binding is refused with INVALID_REQUEST and Kafka's message (see
//! [`starling_acl::AclBinding::validate_new`]): a CLUSTER resource not named `kafka-cluster`, an
//! empty name, a filter-only or UNKNOWN type, pattern, operation or permission, a principal not
//! `Type:name`. Without an authorizer every binding gets SECURITY_DISABLED.

use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use starling_acl::{
    AccessControlEntry, AclBinding, AclOperation, PatternType, Permission, ResourcePattern,
    ResourceType,
};

use super::RequestContext;
use crate::acls::NO_AUTHORIZER;
use crate::Broker;

fn failure(error: ResponseError, message: String) -> AclCreationResult {
    AclCreationResult::default()
        .with_error_code(error.code())
        .with_error_message(Some(StrBytes::from_string(message)))
}

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    request: CreateAclsRequest,
) -> CreateAclsResponse {
    let bindings: Vec<AclBinding> = request
        .creations
        .into_iter()
        .map(|c| AclBinding {
            pattern: ResourcePattern {
                resource_type: ResourceType::from_code(c.resource_type),
                name: c.resource_name.to_string(),
                pattern_type: PatternType::from_code(c.resource_pattern_type),
            },
            entry: AccessControlEntry {
                principal: c.principal.to_string(),
                host: c.host.to_string(),
                operation: AclOperation::from_code(c.operation),
                permission: Permission::from_code(c.permission_type),
            },
        })
        .collect();
    // Kafka's rule: ALTER on the cluster, or every creation is CLUSTER_AUTHORIZATION_FAILED.
    if !ctx.authorize_cluster(broker, AclOperation::Alter) {
        let results = bindings
            .iter()
            .map(|_| {
                failure(
                    ResponseError::ClusterAuthorizationFailed,
                    "Authorization failed.".into(),
                )
            })
            .collect();
        return CreateAclsResponse::default().with_results(results);
    }
    let results = match broker.acls.create(&bindings).await {
        Some(results) => results
            .into_iter()
            .map(|result| match result {
                Ok(()) => AclCreationResult::default(),
                Err(e) => {
                    let (error, message) = e.response();
                    failure(error, message)
                }
            })
            .collect(),
        None => bindings
            .iter()
            .map(|_| failure(ResponseError::SecurityDisabled, NO_AUTHORIZER.into()))
            .collect(),
    };
    CreateAclsResponse::default().with_results(results)
}
