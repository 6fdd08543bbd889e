//! Metadata: the live brokers ([`crate::cluster`]: this one, or every live node on PostgreSQL),
//! the cluster and controller ids, and topics with their partitions and each one's leader,
//! auto-creating requested topics when `auto.create.topics.enable` allows.
//!
//! With an authorizer, as Kafka's `handleTopicMetadataRequest`: listing every topic lists only
//! those the client may DESCRIBE; a named topic it may not DESCRIBE is answered
//! TOPIC_AUTHORIZATION_FAILED whether or not it exists; auto-creation needs CREATE on the
//! cluster or on the topic (TOPIC_AUTHORIZATION_FAILED otherwise); the cluster's authorized
//! operations are 0 without DESCRIBE on the cluster.

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use starling_acl::{AclOperation, ResourceType};

use super::RequestContext;
use crate::topics::{validate_topic_name, Topic};
use crate::Broker;

/// "Authorized operations were not requested" in Kafka's encoding.
pub const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;

pub async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    request: MetadataRequest,
) -> MetadataResponse {
    let node = BrokerId(broker.config.node_id);
    let mut response = MetadataResponse::default();
    response.brokers = crate::cluster::nodes(broker, ctx)
        .into_iter()
        .map(|n| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(n.id))
                .with_host(StrBytes::from_string(n.host))
                .with_port(n.port)
                .with_rack(n.rack.map(StrBytes::from_string))
        })
        .collect();
    response.cluster_id = Some(StrBytes::from_string(broker.cluster_id.clone()));
    response.controller_id = node;
    // Only v8–10 can ask; with no authorizer Kafka answers every cluster operation.
    response.cluster_authorized_operations = if request.include_cluster_authorized_operations {
        super::describe_cluster::cluster_operations(broker, ctx)
    } else {
        OPERATIONS_NOT_REQUESTED
    };
    let with_ops = request.include_topic_authorized_operations;
    let may_describe =
        |name: &str| ctx.authorize(broker, AclOperation::Describe, ResourceType::Topic, name);

    // v0: an empty list means every topic; v1+: null means every topic.
    let requested = match request.topics {
        None => None,
        Some(list) if list.is_empty() && ctx.api_version == 0 => None,
        Some(list) => Some(list),
    };
    let auto_create = broker.config.auto_create_topics
        && (ctx.api_version < 4 || request.allow_auto_topic_creation);
    response.topics = match requested {
        None => broker
            .topics
            .all()
            .iter()
            .filter(|t| may_describe(&t.name))
            .map(|t| with_operations(broker, ctx, describe(broker, t), with_ops))
            .collect(),
        Some(list) => {
            let mut topics = Vec::with_capacity(list.len());
            for wanted in list {
                topics.push(match (wanted.name, wanted.topic_id) {
                    (Some(name), _) if !may_describe(name.0.as_str()) => error_topic(
                        Some(name.0.as_str()),
                        Uuid::nil(),
                        ResponseError::TopicAuthorizationFailed,
                    ),
                    (Some(name), _) => with_operations(
                        broker,
                        ctx,
                        lookup_by_name(broker, ctx, name.0.as_str(), auto_create).await,
                        with_ops,
                    ),
                    (None, id) => match broker.topics.get_by_id(id) {
                        Some(t) if !may_describe(&t.name) => {
                            error_topic(None, id, ResponseError::TopicAuthorizationFailed)
                        }
                        Some(t) => with_operations(broker, ctx, describe(broker, &t), with_ops),
                        None => error_topic(None, id, ResponseError::UnknownTopicId),
                    },
                });
            }
            topics
        }
    };
    response
}

/// The topic's authorized operations, when the request asked for them and it was found.
fn with_operations(
    broker: &Broker,
    ctx: &RequestContext,
    mut topic: MetadataResponseTopic,
    asked: bool,
) -> MetadataResponseTopic {
    if asked && topic.error_code == 0 {
        if let Some(name) = &topic.name {
            topic.topic_authorized_operations =
                ctx.authorized_operations(broker, ResourceType::Topic, name.0.as_str());
        }
    }
    topic
}

async fn lookup_by_name(
    broker: &Broker,
    ctx: &RequestContext,
    name: &str,
    auto_create: bool,
) -> MetadataResponseTopic {
    if let Some(topic) = broker.topics.get(name) {
        return describe(broker, &topic);
    }
    if let Err(e) = validate_topic_name(name) {
        return error_topic(Some(name), Uuid::nil(), e.code);
    }
    if auto_create
        && !ctx.authorize_cluster(broker, AclOperation::Create)
        && !ctx.authorize(broker, AclOperation::Create, ResourceType::Topic, name)
    {
        return error_topic(
            Some(name),
            Uuid::nil(),
            ResponseError::TopicAuthorizationFailed,
        );
    }
    if !auto_create {
        return error_topic(
            Some(name),
            Uuid::nil(),
            ResponseError::UnknownTopicOrPartition,
        );
    }
    match broker
        .topics
        .create(name, broker.config.num_partitions, Default::default(), true)
        .await
    {
        Ok(topic) => describe(broker, &topic),
        // Lost a race with another creator: serve what is there now.
        Err(e) if e.code == ResponseError::TopicAlreadyExists => match broker.topics.get(name) {
            Some(topic) => describe(broker, &topic),
            None => error_topic(Some(name), Uuid::nil(), ResponseError::LeaderNotAvailable),
        },
        Err(e) => {
            tracing::warn!(topic = name, error = %e.message, "auto-creating topic failed");
            error_topic(Some(name), Uuid::nil(), e.code)
        }
    }
}

fn error_topic(name: Option<&str>, id: Uuid, error: ResponseError) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_error_code(error.code())
        .with_name(name.map(|n| TopicName(StrBytes::from_string(n.to_string()))))
        .with_topic_id(id)
        .with_topic_authorized_operations(OPERATIONS_NOT_REQUESTED)
}

pub fn describe(broker: &Broker, topic: &Topic) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))))
        .with_topic_id(topic.id)
        .with_topic_authorized_operations(OPERATIONS_NOT_REQUESTED)
        .with_partitions(
            topic
                .partitions
                .iter()
                .map(|p| {
                    let partition =
                        MetadataResponsePartition::default().with_partition_index(p.index);
                    match crate::cluster::partition_leader(broker, topic.id, p) {
                        Some((leader, epoch)) => partition
                            .with_leader_id(BrokerId(leader))
                            .with_leader_epoch(epoch)
                            .with_replica_nodes(vec![BrokerId(leader)])
                            .with_isr_nodes(vec![BrokerId(leader)]),
                        // Not led yet (a PostgreSQL partition whose lease is being taken).
                        None => partition
                            .with_error_code(ResponseError::LeaderNotAvailable.code())
                            .with_leader_id(BrokerId(-1))
                            .with_leader_epoch(-1),
                    }
                })
                .collect(),
        )
}
