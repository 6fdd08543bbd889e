//! IncrementalAlterConfigs v0–1 (KIP-339): SET, DELETE, APPEND and SUBTRACT on a topic's
//! overrides or the broker's run-time configs, each key changed on its own; APPEND and SUBTRACT
//! only on list configs (`cleanup.policy`), starting from the key's default when unset.
//! Checks, errors and `validate_only` as in [`super::alter_configs`].

use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};

use super::alter_configs::{alter, per_resource};
use super::RequestContext;
use crate::config_keys::{self, ConfigType};
use crate::dynamic_config::{self, AlterOp, RESOURCE_TOPIC};
use crate::topics::AdminError;
use crate::Broker;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let keys: Vec<(i8, String)> = request
        .resources
        .iter()
        .map(|r| (r.resource_type, r.resource_name.to_string()))
        .collect();
    let (keys_seen, request_seen) = (&keys, &request);
    let outcomes = per_resource(&keys, |i| async move {
        super::alter_configs::authorize_config_resource(
            broker,
            ctx,
            starling_acl::AclOperation::AlterConfigs,
            keys_seen[i].0,
            &keys_seen[i].1,
        )?;
        alter_one(
            broker,
            &request_seen.resources[i],
            request_seen.validate_only,
        )
        .await
    })
    .await;
    let responses = request
        .resources
        .into_iter()
        .zip(outcomes)
        .map(|(resource, (code, message))| {
            AlterConfigsResourceResponse::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name)
                .with_error_code(code)
                .with_error_message(message)
        })
        .collect();
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

async fn alter_one(
    broker: &Broker,
    resource: &kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource,
    validate_only: bool,
) -> Result<(), AdminError> {
    let entries = resource
        .configs
        .iter()
        .map(|c| {
            Ok((
                c.name.to_string(),
                c.value.as_ref().map(|v| v.to_string()),
                AlterOp::from_id(c.config_operation)?,
            ))
        })
        .collect::<Result<Vec<_>, AdminError>>()?;
    let topic = resource.resource_type == RESOURCE_TOPIC;
    alter(
        broker,
        resource.resource_type,
        resource.resource_name.as_str(),
        &entries,
        validate_only,
        |current| {
            dynamic_config::apply_ops(
                current,
                &entries,
                |name| list_type(topic, name),
                |name| default_value(topic, name),
            )
        },
    )
    .await
}

/// Whether a key is a list (`None`: no such key).
fn list_type(topic: bool, name: &str) -> Option<bool> {
    let config_type = if topic {
        config_keys::topic_key(name)?.config_type
    } else {
        dynamic_config::broker_key_info(name)?.config_type
    };
    Some(config_type == ConfigType::List)
}

/// A list key's value when nobody set it.
fn default_value(topic: bool, name: &str) -> Option<String> {
    if topic {
        config_keys::topic_key(name).map(|k| k.default.to_string())
    } else {
        dynamic_config::broker_key_info(name)?.default
    }
}
