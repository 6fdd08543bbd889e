//! DescribeCluster: the cluster id, this node as the only broker and as the controller, as
//! Kafka's `AuthHelper.computeDescribeClusterResponse` answers on a broker listener. A request
//! for the controller endpoints (KIP-919's endpoint type 2) is MISMATCHED_ENDPOINT_TYPE, any
//! other type UNSUPPORTED_ENDPOINT_TYPE (INVALID_REQUEST at v0, which has neither code).
//! Cluster authorized operations are `i32::MIN` unless asked for; then, with no authorizer,
//! every operation Kafka defines on the cluster resource; with one, 0 without DESCRIBE on the
//! cluster and the operations the client may perform otherwise.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use starling_acl::{AclOperation, ResourceType, CLUSTER_RESOURCE_NAME};

use super::metadata::OPERATIONS_NOT_REQUESTED;
use super::RequestContext;
use crate::Broker;

/// KIP-919's endpoint types.
const ENDPOINT_BROKERS: i8 = 1;
const ENDPOINT_CONTROLLERS: i8 = 2;

/// Kafka's `AclEntry.supportedOperations(CLUSTER)` as a bit field of `AclOperation` codes:
/// CREATE (5), ALTER (7), DESCRIBE (8), CLUSTER_ACTION (9), DESCRIBE_CONFIGS (10),
/// ALTER_CONFIGS (11), IDEMPOTENT_WRITE (12).
pub const CLUSTER_OPERATIONS: i32 = 1 << 5 | 1 << 7 | 1 << 8 | 1 << 9 | 1 << 10 | 1 << 11 | 1 << 12;

/// The cluster's authorized operations for the client, as Kafka answers them in Metadata and
/// DescribeCluster: every one without an authorizer, 0 without DESCRIBE on the cluster,
/// otherwise those it may perform.
pub fn cluster_operations(broker: &Broker, ctx: &RequestContext) -> i32 {
    if broker.acls.authorizer().is_none() {
        CLUSTER_OPERATIONS
    } else if !ctx.authorize_cluster(broker, AclOperation::Describe) {
        0
    } else {
        ctx.authorized_operations(broker, ResourceType::Cluster, CLUSTER_RESOURCE_NAME)
    }
}

pub fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let refuse = |error: ResponseError, message: String| {
        let code = if ctx.api_version == 0 {
            ResponseError::InvalidRequest
        } else {
            error
        };
        DescribeClusterResponse::default()
            .with_error_code(code.code())
            .with_error_message(Some(StrBytes::from_string(message)))
    };
    match request.endpoint_type {
        ENDPOINT_BROKERS => {}
        ENDPOINT_CONTROLLERS => {
            return refuse(
                ResponseError::MismatchedEndpointType,
                "The request was sent to an endpoint of type BROKER, but we wanted an endpoint \
                 of type CONTROLLER"
                    .to_string(),
            )
        }
        other => {
            return refuse(
                ResponseError::UnsupportedEndpointType,
                format!("Unsupported endpoint type {other}"),
            )
        }
    }
    let node = BrokerId(broker.config.node_id);
    DescribeClusterResponse::default()
        .with_endpoint_type(ENDPOINT_BROKERS)
        .with_cluster_id(StrBytes::from_string(broker.cluster_id.clone()))
        .with_controller_id(node)
        .with_brokers(
            crate::cluster::nodes(broker, ctx)
                .into_iter()
                .map(|n| {
                    DescribeClusterBroker::default()
                        .with_broker_id(BrokerId(n.id))
                        .with_host(StrBytes::from_string(n.host))
                        .with_port(n.port)
                        .with_rack(n.rack.map(StrBytes::from_string))
                })
                .collect(),
        )
        .with_cluster_authorized_operations(if request.include_cluster_authorized_operations {
            cluster_operations(broker, ctx)
        } else {
            OPERATIONS_NOT_REQUESTED
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_operations_are_kafkas_seven() {
        assert_eq!(CLUSTER_OPERATIONS, 8096);
        assert_eq!(CLUSTER_OPERATIONS.count_ones(), 7);
    }

    /// The operations `authorized_operations` folds into a bit field are Kafka's supported ones:
    /// all of them is the constant answered without an authorizer.
    #[test]
    fn supported_operations_make_the_full_bit_fields() {
        let bits = |t: ResourceType| {
            crate::api::supported_operations(t)
                .iter()
                .fold(0, |b, op| b | (1 << op.code()))
        };
        assert_eq!(bits(ResourceType::Cluster), CLUSTER_OPERATIONS);
        assert_eq!(
            bits(ResourceType::Topic),
            crate::api::describe_topic_partitions::TOPIC_OPERATIONS
        );
        // READ (3), DESCRIBE (8), DELETE (6).
        assert_eq!(bits(ResourceType::Group), 1 << 3 | 1 << 6 | 1 << 8);
    }
}
