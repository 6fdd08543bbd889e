//! DescribeConfigs v1–4: a topic's configs (every topic config Kafka has, its value in force,
//! where it comes from) and the broker's (this node by its id, or the cluster-wide run-time
//! defaults by the empty name), with synonyms and documentation when asked for, as Kafka's
//! `ConfigHelper` answers. Resolution lives in [`crate::dynamic_config`].

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::RequestContext;
use crate::dynamic_config::{DescribedConfig, RESOURCE_BROKER, RESOURCE_TOPIC};
use crate::topics::{validate_topic_name, AdminError};
use crate::Broker;

pub fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    request: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let results = request
        .resources
        .into_iter()
        .map(|resource| {
            let name = resource.resource_name.to_string();
            let described = super::alter_configs::authorize_config_resource(
                broker,
                ctx,
                starling_acl::AclOperation::DescribeConfigs,
                resource.resource_type,
                &name,
            )
            .and_then(|()| describe(broker, resource.resource_type, &name));
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name);
            match described {
                Ok(configs) => {
                    let wanted = resource.configuration_keys.as_ref();
                    result.with_configs(
                        configs
                            .into_iter()
                            .filter(|c| {
                                wanted.is_none_or(|keys| keys.iter().any(|k| k.as_str() == c.name))
                            })
                            .map(|c| {
                                encode(c, request.include_synonyms, request.include_documentation)
                            })
                            .collect(),
                    )
                }
                Err(e) => result
                    .with_error_code(e.code.code())
                    .with_error_message(Some(StrBytes::from_string(e.message))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn describe(
    broker: &Broker,
    resource_type: i8,
    name: &str,
) -> Result<Vec<DescribedConfig>, AdminError> {
    match resource_type {
        RESOURCE_TOPIC => {
            validate_topic_name(name)?;
            let topic = broker.topics.existing(name)?;
            let log = broker.topics.effective_log_config(&topic);
            Ok(broker.dynamic.describe_topic(&topic.configs, &log))
        }
        RESOURCE_BROKER => {
            let scope = broker.dynamic.scope(name)?;
            Ok(broker.dynamic.describe_broker(scope))
        }
        other => Err(AdminError::new(
            ResponseError::InvalidRequest,
            format!("Unsupported resource type: {}", resource_type_name(other)),
        )),
    }
}

/// Kafka's name of a `ConfigResource.Type` id, for error messages.
pub fn resource_type_name(id: i8) -> String {
    match id {
        2 => "TOPIC".into(),
        4 => "BROKER".into(),
        8 => "BROKER_LOGGER".into(),
        16 => "CLIENT_METRICS".into(),
        32 => "GROUP".into(),
        other => format!("UNKNOWN({other})"),
    }
}

fn encode(
    mut config: DescribedConfig,
    include_synonyms: bool,
    include_documentation: bool,
) -> DescribeConfigsResourceResult {
    // Secrets (passwords, inline private keys) are named but never shown, as Kafka does.
    let sensitive = crate::config::is_sensitive_key(&config.name);
    if sensitive {
        config.value = None;
        for synonym in &mut config.synonyms {
            synonym.value = None;
        }
    }
    let synonyms = if include_synonyms {
        config
            .synonyms
            .into_iter()
            .map(|s| {
                DescribeConfigsSynonym::default()
                    .with_name(StrBytes::from_string(s.name))
                    .with_value(s.value.map(StrBytes::from_string))
                    .with_source(s.source as i8)
            })
            .collect()
    } else {
        Vec::new()
    };
    DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_string(config.name))
        .with_value(config.value.map(StrBytes::from_string))
        .with_read_only(config.read_only)
        .with_config_source(config.source as i8)
        .with_is_sensitive(sensitive)
        .with_synonyms(synonyms)
        .with_config_type(config.config_type as i8)
        .with_documentation(
            include_documentation.then(|| StrBytes::from_static_str(config.documentation)),
        )
}
