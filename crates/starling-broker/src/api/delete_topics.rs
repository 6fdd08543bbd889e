//! DeleteTopics, by name (all versions) or by topic id (v6+). A deleted topic's partitions are
//! spent from the client's controller mutation quota (KIP-599; strict from v5).

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use starling_acl::{AclOperation, ResourceType};

use super::RequestContext;
use crate::quotas::{MutationQuota, MutationThrottled};
use crate::Broker;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    request: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let targets: Vec<(Option<String>, Uuid)> = if ctx.api_version >= 6 {
        request
            .topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .iter()
            .map(|n| (Some(n.0.to_string()), Uuid::nil()))
            .collect()
    };
    let quota =
        broker
            .quotas
            .mutation_quota(&ctx.principal, ctx.quota_client_id(), ctx.api_version >= 5);
    let mut response = DeleteTopicsResponse::default();
    for (name, id) in targets {
        let mut result = DeletableTopicResult::default().with_topic_id(id);
        let resolved = match &name {
            Some(n) => Ok(n.clone()),
            None => broker
                .topics
                .get_by_id(id)
                .map(|t| t.name.clone())
                .ok_or(ResponseError::UnknownTopicId),
        };
        // Kafka's rule: DELETE on the topic, checked before whether it exists when named (an
        // unknown id stays UNKNOWN_TOPIC_ID).
        let denied = resolved
            .as_ref()
            .is_ok_and(|n| !ctx.authorize(broker, AclOperation::Delete, ResourceType::Topic, n));
        let outcome = match resolved {
            Err(code) => Err((code, "This server does not host this topic ID.".to_string())),
            Ok(_) if denied => Err((
                ResponseError::TopicAuthorizationFailed,
                "Authorization failed.".to_string(),
            )),
            Ok(_) if !broker.config.delete_topic_enable => Err((
                ResponseError::TopicDeletionDisabled,
                "Topic deletion is disabled (delete.topic.enable=false)".to_string(),
            )),
            Ok(n) => {
                result.name = Some(TopicName(StrBytes::from_string(n.clone())));
                delete(broker, &n, &quota).await
            }
        };
        match outcome {
            Ok(deleted_id) => result.topic_id = deleted_id,
            Err((code, message)) => {
                result.error_code = code.code();
                result.error_message = Some(StrBytes::from_string(message));
            }
        }
        if result.name.is_none() {
            result.name = name.map(|n| TopicName(StrBytes::from_string(n)));
        }
        response.responses.push(result);
    }
    ctx.throttle(quota.throttle_ms());
    response
}

/// Deletes `name`, spending its partitions from `quota`.
async fn delete(
    broker: &Broker,
    name: &str,
    quota: &MutationQuota<'_>,
) -> Result<Uuid, (ResponseError, String)> {
    // A topic that does not exist is not a mutation: its error comes first.
    let partitions = match broker.topics.get(name) {
        Some(topic) => topic.partitions.len() as i32,
        None => {
            return broker
                .topics
                .delete(name)
                .await
                .map_err(|e| (e.code, e.message))
        }
    };
    quota.admit().map_err(|_| {
        (
            ResponseError::ThrottlingQuotaExceeded,
            MutationThrottled::MESSAGE.to_string(),
        )
    })?;
    let id = broker
        .topics
        .delete(name)
        .await
        .map_err(|e| (e.code, e.message))?;
    quota.record(partitions);
    Ok(id)
}
