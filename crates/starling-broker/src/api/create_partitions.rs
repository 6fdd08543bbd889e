//! CreatePartitions: grow a topic's partition count (never shrink), with `validate_only`. The
//! partitions added are spent from the client's controller mutation quota (KIP-599; strict from
//! v3).

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use starling_acl::{AclOperation, ResourceType};

use super::RequestContext;
use crate::quotas::MutationQuota;
use crate::topics::AdminError;
use crate::Broker;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let node = broker.config.node_id;
    let quota =
        broker
            .quotas
            .mutation_quota(&ctx.principal, ctx.quota_client_id(), ctx.api_version >= 3);
    let mut response = CreatePartitionsResponse::default();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let bad_assignment = topic
            .assignments
            .iter()
            .flatten()
            .any(|a| a.broker_ids.iter().map(|b| b.0).collect::<Vec<_>>() != [node]);
        // Kafka's rule: ALTER on the topic, checked before whether it exists.
        let outcome = if !ctx.authorize(broker, AclOperation::Alter, ResourceType::Topic, &name) {
            Err((
                ResponseError::TopicAuthorizationFailed,
                "Authorization failed.".to_string(),
            ))
        } else if bad_assignment {
            Err((
                ResponseError::InvalidReplicaAssignment,
                format!("Every new partition must be assigned to exactly [{node}] on this single-node broker"),
            ))
        } else {
            grow(broker, &name, topic.count, request.validate_only, &quota)
                .await
                .map_err(|e| (e.code, e.message))
        };
        let mut result = CreatePartitionsTopicResult::default().with_name(topic.name);
        if let Err((code, message)) = outcome {
            result.error_code = code.code();
            result.error_message = Some(StrBytes::from_string(message));
        }
        response.results.push(result);
    }
    ctx.throttle(quota.throttle_ms());
    response
}

/// Grows `name` to `count` partitions (or only checks that it could), spending the partitions
/// added from `quota`.
async fn grow(
    broker: &Broker,
    name: &str,
    count: i32,
    validate_only: bool,
    quota: &MutationQuota<'_>,
) -> Result<(), AdminError> {
    broker.topics.create_partitions(name, count, false).await?;
    if validate_only {
        return Ok(());
    }
    let before = broker
        .topics
        .get(name)
        .map_or(count, |t| t.partitions.len() as i32);
    quota.admit().map_err(super::create_topics::throttled)?;
    broker.topics.create_partitions(name, count, true).await?;
    quota.record(count - before);
    Ok(())
}
