//! CreatePartitions: grow a topic's partition count (never shrink), with `validate_only`.

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::RequestContext;
use crate::Broker;

pub fn handle(
    broker: &Broker,
    _ctx: &RequestContext,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let node = broker.config.node_id;
    let mut response = CreatePartitionsResponse::default();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let bad_assignment = topic
            .assignments
            .iter()
            .flatten()
            .any(|a| a.broker_ids.iter().map(|b| b.0).collect::<Vec<_>>() != [node]);
        let outcome = if bad_assignment {
            Err((
                ResponseError::InvalidReplicaAssignment,
                format!("Every new partition must be assigned to exactly [{node}] on this single-node broker"),
            ))
        } else {
            broker
                .topics
                .create_partitions(&name, topic.count, !request.validate_only)
                .map_err(|e| (e.code, e.message))
        };
        let mut result = CreatePartitionsTopicResult::default().with_name(topic.name);
        if let Err((code, message)) = outcome {
            result.error_code = code.code();
            result.error_message = Some(StrBytes::from_string(message));
        }
        response.results.push(result);
    }
    response
}
