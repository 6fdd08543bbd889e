//! AlterConfigs v0–2: replaces every override of a topic, or every run-time config of the
//! broker (this node by its id, the cluster-wide defaults by the empty name), with the set
//! given; `validate_only` checks without changing anything. The checks and errors are Kafka's
//! (`ConfigAdminManager`): a resource named twice or a key given twice or a null value is
//! INVALID_REQUEST; an unknown key or a bad value INVALID_CONFIG naming it; a broker key that
//! cannot change at run time INVALID_REQUEST. IncrementalAlterConfigs shares [`alter`].

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use starling_acl::{AclOperation, ResourceType};

use super::RequestContext;
use crate::dynamic_config::{self, AlterOp, RESOURCE_BROKER, RESOURCE_TOPIC};
use crate::topics::AdminError;
use crate::Broker;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    request: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let keys: Vec<(i8, String)> = request
        .resources
        .iter()
        .map(|r| (r.resource_type, r.resource_name.to_string()))
        .collect();
    let (keys_seen, request_seen) = (&keys, &request);
    let outcomes = per_resource(&keys, |i| async move {
        authorize_config_resource(
            broker,
            ctx,
            AclOperation::AlterConfigs,
            keys_seen[i].0,
            &keys_seen[i].1,
        )?;
        let resource = &request_seen.resources[i];
        let entries: Vec<(String, Option<String>, AlterOp)> = resource
            .configs
            .iter()
            .map(|c| {
                (
                    c.name.to_string(),
                    c.value.as_ref().map(|v| v.to_string()),
                    AlterOp::Set,
                )
            })
            .collect();
        alter(
            broker,
            keys_seen[i].0,
            &keys_seen[i].1,
            &entries,
            request_seen.validate_only,
            |_| {
                Ok(entries
                    .iter()
                    .map(|(name, value, _)| (name.clone(), value.clone().unwrap_or_default()))
                    .collect())
            },
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
    AlterConfigsResponse::default().with_responses(responses)
}

/// Kafka's config resource types besides the topic and broker ones.
const RESOURCE_BROKER_LOGGER: i8 = 8;
const RESOURCE_CLIENT_METRICS: i8 = 16;
const RESOURCE_GROUP: i8 = 32;

/// Whether the client may `operation` (DESCRIBE_CONFIGS or ALTER_CONFIGS) the configs of the
/// resource, as Kafka decides it: on the topic (TOPIC_AUTHORIZATION_FAILED) or group
/// (GROUP_AUTHORIZATION_FAILED), on the cluster for broker, broker-logger and client-metrics
/// resources (CLUSTER_AUTHORIZATION_FAILED). Unknown resource types are left to the handler.
pub fn authorize_config_resource(
    broker: &Broker,
    ctx: &RequestContext,
    operation: AclOperation,
    resource_type: i8,
    name: &str,
) -> Result<(), AdminError> {
    let (allowed, error) = match resource_type {
        RESOURCE_TOPIC => (
            ctx.authorize(broker, operation, ResourceType::Topic, name),
            ResponseError::TopicAuthorizationFailed,
        ),
        RESOURCE_GROUP => (
            ctx.authorize(broker, operation, ResourceType::Group, name),
            ResponseError::GroupAuthorizationFailed,
        ),
        RESOURCE_BROKER | RESOURCE_BROKER_LOGGER | RESOURCE_CLIENT_METRICS => (
            ctx.authorize_cluster(broker, operation),
            ResponseError::ClusterAuthorizationFailed,
        ),
        _ => (true, ResponseError::UnknownServerError),
    };
    if allowed {
        Ok(())
    } else {
        Err(AdminError::new(error, "Authorization failed.".to_string()))
    }
}

/// Each resource's outcome as a response's error code and message: `alter_one(i)` for the
/// i-th, one after the other, except that every copy of a resource named more than once is
/// refused, as in Kafka.
pub async fn per_resource<F, Fut>(
    keys: &[(i8, String)],
    mut alter_one: F,
) -> Vec<(i16, Option<StrBytes>)>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = Result<(), AdminError>>,
{
    let repeated = repeated_resources(keys);
    let mut outcomes = Vec::with_capacity(keys.len());
    for (i, key) in keys.iter().enumerate() {
        let outcome = if repeated.contains(key) {
            Err(resource_repeated())
        } else {
            alter_one(i).await
        };
        outcomes.push(match outcome {
            Ok(()) => (0, None),
            Err(e) => (e.code.code(), Some(StrBytes::from_string(e.message))),
        });
    }
    outcomes
}

/// The resources named more than once in one request: Kafka refuses every copy.
fn repeated_resources(keys: &[(i8, String)]) -> Vec<(i8, String)> {
    let mut counts: HashMap<&(i8, String), usize> = HashMap::new();
    for key in keys {
        *counts.entry(key).or_default() += 1;
    }
    counts
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(k, _)| k.clone())
        .collect()
}

fn resource_repeated() -> AdminError {
    AdminError::new(
        ResponseError::InvalidRequest,
        "Each resource must appear at most once.",
    )
}

/// Checks `entries`, computes the resource's new settings with `next` (from its current ones)
/// and, unless `validate_only`, applies them: a topic's logs and a broker's defaults change at
/// once and the change is persisted.
pub async fn alter(
    broker: &Broker,
    resource_type: i8,
    name: &str,
    entries: &[(String, Option<String>, AlterOp)],
    validate_only: bool,
    next: impl FnOnce(&BTreeMap<String, String>) -> Result<BTreeMap<String, String>, AdminError>,
) -> Result<(), AdminError> {
    dynamic_config::check_entries(
        entries
            .iter()
            .map(|(n, v, op)| (n.as_str(), v.as_deref(), *op)),
    )?;
    match resource_type {
        RESOURCE_TOPIC => {
            broker
                .topics
                .alter_configs(name, next, !validate_only)
                .await
        }
        RESOURCE_BROKER => {
            let scope = broker.dynamic.scope(name)?;
            broker
                .dynamic
                .alter(scope, next, !validate_only, |in_force| {
                    broker.apply_in_force(in_force)
                })
                .await?;
            Ok(())
        }
        other => Err(AdminError::new(
            ResponseError::InvalidRequest,
            format!("Unknown resource type {other}"),
        )),
    }
}
