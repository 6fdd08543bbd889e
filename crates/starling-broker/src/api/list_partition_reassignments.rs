//! ListPartitionReassignments: with one broker no reassignment is ever in progress, so the
//! answer lists none, for every topic or the topics named (Kafka's
//! `ReplicationControlManager.listPartitionReassignments` skips unknown topics silently).

use kafka_protocol::messages::{
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use starling_acl::AclOperation;

use super::RequestContext;

/// Kafka's rule: DESCRIBE on the cluster, or CLUSTER_AUTHORIZATION_FAILED.
pub fn handle(
    broker: &crate::Broker,
    ctx: &RequestContext,
    _request: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    if !ctx.authorize_cluster(broker, AclOperation::Describe) {
        return ListPartitionReassignmentsResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
            .with_error_message(Some(StrBytes::from_static_str("Authorization failed.")));
    }
    ListPartitionReassignmentsResponse::default()
}
