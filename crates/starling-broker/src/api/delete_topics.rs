//! DeleteTopics, by name (all versions) or by topic id (v6+).

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::RequestContext;
use crate::Broker;

pub fn handle(
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
        let outcome = match resolved {
            Err(code) => Err((code, "This server does not host this topic ID.".to_string())),
            Ok(_) if !broker.config.delete_topic_enable => Err((
                ResponseError::TopicDeletionDisabled,
                "Topic deletion is disabled (delete.topic.enable=false)".to_string(),
            )),
            Ok(n) => {
                result.name = Some(TopicName(StrBytes::from_string(n.clone())));
                broker.topics.delete(&n).map_err(|e| (e.code, e.message))
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
    response
}
