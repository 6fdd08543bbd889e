//! CreateTopics, with `validate_only`: Kafka's checks for names, duplicates, partition counts,
//! replication factors (one node holds one replica), manual assignments and topic configs.
//! Each topic created spends its partitions from the client's controller mutation quota
//! (KIP-599; strict from v6).

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use starling_acl::{AclOperation, ResourceType};

use super::RequestContext;
use crate::config::describe_log_config;
use crate::quotas::{MutationQuota, MutationThrottled};
use crate::topics::AdminError;
use crate::Broker;

/// Kafka's `ConfigSource` values used in responses.
const DYNAMIC_TOPIC_CONFIG: i8 = 1;
const DEFAULT_CONFIG: i8 = 5;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    request: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for t in &request.topics {
        *seen.entry(t.name.0.to_string()).or_default() += 1;
    }
    let quota =
        broker
            .quotas
            .mutation_quota(&ctx.principal, ctx.quota_client_id(), ctx.api_version >= 6);
    // Kafka's rule: CREATE on the cluster, or else on each topic (TOPIC_AUTHORIZATION_FAILED);
    // the created topic's configs are returned only with DESCRIBE_CONFIGS on it.
    let cluster_create = ctx.authorize_cluster(broker, AclOperation::Create);
    let mut response = CreateTopicsResponse::default();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut result = CreatableTopicResult::default().with_name(topic.name.clone());
        let may_create = cluster_create
            || ctx.authorize(broker, AclOperation::Create, ResourceType::Topic, &name);
        let outcome = if !may_create {
            Err(AdminError::new(
                ResponseError::TopicAuthorizationFailed,
                "Authorization failed.".to_string(),
            ))
        } else if seen[&name] > 1 {
            Err(AdminError::new(
                ResponseError::InvalidRequest,
                format!(
                    "Create topics request from client contains multiple topics named '{name}'"
                ),
            ))
        } else {
            create_one(broker, &topic, request.validate_only, &quota).await
        };
        match outcome {
            Ok(created) => {
                if ctx.api_version >= 7 {
                    result.topic_id = created.id;
                }
                if ctx.api_version >= 5 {
                    result.num_partitions = created.partitions;
                    result.replication_factor = 1;
                    if ctx.authorize(
                        broker,
                        AclOperation::DescribeConfigs,
                        ResourceType::Topic,
                        &name,
                    ) {
                        result.configs = Some(created.configs);
                    } else {
                        result.topic_config_error_code =
                            ResponseError::TopicAuthorizationFailed.code();
                    }
                }
            }
            Err(e) => {
                tracing::debug!(topic = name, error = %e.message, "create topic refused");
                result.error_code = e.code.code();
                if ctx.api_version >= 1 {
                    result.error_message = Some(StrBytes::from_string(e.message));
                }
            }
        }
        response.topics.push(result);
    }
    ctx.throttle(quota.throttle_ms());
    response
}

struct Created {
    id: uuid::Uuid,
    partitions: i32,
    configs: Vec<CreatableTopicConfigs>,
}

async fn create_one(
    broker: &Broker,
    topic: &CreatableTopic,
    validate_only: bool,
    quota: &MutationQuota<'_>,
) -> Result<Created, AdminError> {
    let node = broker.config.node_id;
    let partitions = if topic.assignments.is_empty() {
        match topic.num_partitions {
            -1 => broker.config.num_partitions,
            n => n,
        }
    } else {
        if topic.num_partitions != -1 || topic.replication_factor != -1 {
            return Err(AdminError::new(
                ResponseError::InvalidRequest,
                "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.",
            ));
        }
        for (i, a) in topic.assignments.iter().enumerate() {
            if a.partition_index != i as i32
                || a.broker_ids.iter().map(|b| b.0).collect::<Vec<_>>() != [node]
            {
                return Err(AdminError::new(
                    ResponseError::InvalidReplicaAssignment,
                    format!("Replica assignment for partition {} must be exactly [{node}] on this single-node broker", a.partition_index),
                ));
            }
        }
        topic.assignments.len() as i32
    };
    let replication = match topic.replication_factor {
        -1 => broker.config.default_replication_factor,
        r => r,
    };
    if replication != 1 && topic.assignments.is_empty() {
        return Err(AdminError::new(
            ResponseError::InvalidReplicationFactor,
            format!(
                "Unable to replicate the partition {replication} time(s): The target replication factor of {replication} cannot be reached because only 1 broker(s) are registered."
            ),
        ));
    }
    let mut configs = BTreeMap::new();
    for c in &topic.configs {
        let value = c.value.as_ref().ok_or_else(|| {
            AdminError::new(
                ResponseError::InvalidConfig,
                format!(
                    "Null value not supported for topic config '{}'",
                    c.name.as_str()
                ),
            )
        })?;
        configs.insert(c.name.to_string(), value.to_string());
    }
    let log_config = broker
        .topics
        .log_config(&configs)
        .map_err(|e| AdminError::new(ResponseError::InvalidConfig, e.to_string()))?;
    let name = topic.name.0.as_str();
    let created = if validate_only {
        broker
            .topics
            .create(name, partitions, configs.clone(), false)
            .await?
    } else {
        // Only a creation that would succeed meets the quota, as in Kafka.
        broker
            .topics
            .create(name, partitions, configs.clone(), false)
            .await?;
        quota.admit().map_err(throttled)?;
        let created = broker
            .topics
            .create(name, partitions, configs.clone(), true)
            .await?;
        quota.record(partitions);
        created
    };
    let described = describe_log_config(&log_config)
        .into_iter()
        .map(|(name, value)| {
            let source = if configs.contains_key(name) {
                DYNAMIC_TOPIC_CONFIG
            } else {
                DEFAULT_CONFIG
            };
            CreatableTopicConfigs::default()
                .with_name(StrBytes::from_static_str(name))
                .with_value(Some(StrBytes::from_string(value)))
                .with_config_source(source)
        })
        .collect();
    Ok(Created {
        id: created.id,
        partitions,
        configs: described,
    })
}

/// The error for a mutation the quota refused.
pub(super) fn throttled(_: MutationThrottled) -> AdminError {
    AdminError::new(
        ResponseError::ThrottlingQuotaExceeded,
        MutationThrottled::MESSAGE,
    )
}
