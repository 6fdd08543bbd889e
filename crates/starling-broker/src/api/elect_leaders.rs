//! ElectLeaders: on one node every partition is already led by its preferred (and only) replica,
//! so each named partition is ELECTION_NOT_NEEDED for a preferred or an unclean election, and
//! a partition or topic the broker does not have is UNKNOWN_TOPIC_OR_PARTITION, with the
//! messages of Kafka's `ReplicationControlManager.electLeaders`. Null partitions (every
//! partition) answer only the partitions that needed an election: none. An election type other
//! than 0 (preferred) or 1 (unclean), which Kafka's `ElectionType.valueOf` cannot parse, is
//! refused with INVALID_REQUEST (Starling's choice).

use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use starling_acl::AclOperation;

use super::RequestContext;
use crate::Broker;

const PREFERRED: i8 = 0;
const UNCLEAN: i8 = 1;

pub fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    request: ElectLeadersRequest,
) -> ElectLeadersResponse {
    // Kafka's rule: ALTER on the cluster; without it the request (v1+) and every partition
    // named are CLUSTER_AUTHORIZATION_FAILED.
    if !ctx.authorize_cluster(broker, AclOperation::Alter) {
        let error = ResponseError::ClusterAuthorizationFailed;
        let results = request
            .topic_partitions
            .into_iter()
            .flatten()
            .map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|&index| {
                        PartitionResult::default()
                            .with_partition_id(index)
                            .with_error_code(error.code())
                            .with_error_message(Some(StrBytes::from_static_str(
                                "Authorization failed.",
                            )))
                    })
                    .collect();
                ReplicaElectionResult::default()
                    .with_topic(t.topic)
                    .with_partition_result(partitions)
            })
            .collect();
        let response = ElectLeadersResponse::default().with_replica_election_results(results);
        return if ctx.api_version >= 1 {
            response.with_error_code(error.code())
        } else {
            response
        };
    }
    if request.election_type != PREFERRED && request.election_type != UNCLEAN {
        return ElectLeadersResponse::default()
            .with_error_code(ResponseError::InvalidRequest.code());
    }
    let Some(topics) = request.topic_partitions else {
        return ElectLeadersResponse::default();
    };
    let results = topics
        .into_iter()
        .map(|t| {
            let topic = broker.topics.get(t.topic.as_str());
            let partition_result = t
                .partitions
                .into_iter()
                .map(|index| {
                    let (error, message) = match &topic {
                        None => (
                            ResponseError::UnknownTopicOrPartition,
                            format!("No such topic as {}", t.topic.as_str()),
                        ),
                        Some(found) if found.partition(index).is_none() => (
                            ResponseError::UnknownTopicOrPartition,
                            format!("No such partition as {}-{index}", t.topic.as_str()),
                        ),
                        Some(_) => (
                            ResponseError::ElectionNotNeeded,
                            "Leader election not needed for topic partition.".to_string(),
                        ),
                    };
                    PartitionResult::default()
                        .with_partition_id(index)
                        .with_error_code(error.code())
                        .with_error_message(Some(StrBytes::from_string(message)))
                })
                .collect();
            ReplicaElectionResult::default()
                .with_topic(t.topic)
                .with_partition_result(partition_result)
        })
        .collect();
    ElectLeadersResponse::default().with_replica_election_results(results)
}
