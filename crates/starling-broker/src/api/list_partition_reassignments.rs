//! ListPartitionReassignments: with one broker no reassignment is ever in progress, so the
//! answer lists none, for every topic or the topics named (Kafka's
//! `ReplicationControlManager.listPartitionReassignments` skips unknown topics silently).

use kafka_protocol::messages::{
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
};

use super::RequestContext;

pub fn handle(
    _ctx: &RequestContext,
    _request: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    ListPartitionReassignmentsResponse::default()
}
