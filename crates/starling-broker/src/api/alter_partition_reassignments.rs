//! AlterPartitionReassignments on one node, as Kafka's
//! `ReplicationControlManager.alterPartitionReassignments` answers per partition: an unknown
//! topic or partition is UNKNOWN_TOPIC_OR_PARTITION; cancelling (null replicas) finds no
//! reassignment in progress (NO_REASSIGNMENT_IN_PROGRESS); a target that is empty, names a
//! broker other than this node (none other is registered) or names a broker twice is
//! INVALID_REPLICA_ASSIGNMENT; `[this node]`, the current assignment, is accepted and changes
//! nothing.

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use starling_acl::AclOperation;

use super::RequestContext;
use crate::Broker;

pub fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    request: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    // Kafka's rule: ALTER on the cluster, or CLUSTER_AUTHORIZATION_FAILED for the request.
    if !ctx.authorize_cluster(broker, AclOperation::Alter) {
        return AlterPartitionReassignmentsResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
            .with_error_message(Some(StrBytes::from_static_str("Authorization failed.")));
    }
    let node = broker.config.node_id;
    let responses = request
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.as_str().to_string();
            let topic = broker.topics.get(&name);
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let index = p.partition_index;
                    let outcome = match &topic {
                        None => Err((
                            ResponseError::UnknownTopicOrPartition,
                            format!("Unable to find a topic named {name}."),
                        )),
                        Some(found) if found.partition(index).is_none() => Err((
                            ResponseError::UnknownTopicOrPartition,
                            format!("Unable to find partition {name}:{index}."),
                        )),
                        Some(_) => match p.replicas {
                            None => Err((
                                ResponseError::NoReassignmentInProgress,
                                "No partition reassignment is in progress.".to_string(),
                            )),
                            Some(replicas) => validate(&replicas, node),
                        },
                    };
                    let result =
                        ReassignablePartitionResponse::default().with_partition_index(index);
                    match outcome {
                        Ok(()) => result,
                        Err((error, message)) => result
                            .with_error_code(error.code())
                            .with_error_message(Some(StrBytes::from_string(message))),
                    }
                })
                .collect();
            ReassignableTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    AlterPartitionReassignmentsResponse::default()
        .with_allow_replication_factor_change(request.allow_replication_factor_change)
        .with_responses(responses)
}

/// Kafka's `validateManualPartitionAssignment` with `node` the only registered broker.
fn validate(replicas: &[BrokerId], node: i32) -> Result<(), (ResponseError, String)> {
    let invalid = |message: String| Err((ResponseError::InvalidReplicaAssignment, message));
    if replicas.is_empty() {
        return invalid(
            "The manual partition assignment includes an empty replica list.".to_string(),
        );
    }
    let mut sorted: Vec<i32> = replicas.iter().map(|b| b.0).collect();
    sorted.sort_unstable();
    let mut previous = None;
    for broker in sorted {
        if broker != node {
            return invalid(format!(
                "The manual partition assignment includes broker {broker}, but no broker with \
                 that ID is registered."
            ));
        }
        if previous == Some(broker) {
            return invalid(format!(
                "The manual partition assignment includes the broker {broker} more than once."
            ));
        }
        previous = Some(broker);
    }
    Ok(())
}
