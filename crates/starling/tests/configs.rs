//! Configs through librdkafka: the Rust crate's `describe_configs`, and `rd_kafka_AlterConfigs`
//! / `rd_kafka_IncrementalAlterConfigs` through the C API (the crate's wrappers drop the
//! per-resource errors); raw DescribeConfigs / IncrementalAlterConfigs requests for what no
//! client sends. Values, sources, synonyms and read-only flags as Kafka reports them; a topic
//! override or a run-time broker default takes effect at once (a producer is refused past the
//! new `max.message.bytes`, retention deletes at the new `retention.ms`) and survives a
//! restart; every refusal with Kafka's error code and a message naming the key.

mod common;

use std::time::{Duration, Instant};

use common::*;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    DescribeConfigsRequest, DescribeConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use rdkafka::admin::{ConfigResource, ConfigSource, ResourceSpecifier};
use rdkafka::bindings as rd;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;

async fn describe(bootstrap: &str, resource: ResourceSpecifier<'_>) -> ConfigResource {
    let admin = admin(bootstrap);
    let results = within(
        Duration::from_secs(20),
        "describe_configs",
        admin.describe_configs([&resource], &admin_opts()),
    )
    .await
    .expect("describe_configs request");
    assert_eq!(results.len(), 1);
    results
        .into_iter()
        .next()
        .unwrap()
        .expect("describe_configs result")
}

/// AlterConfigs (the whole set) of one resource through librdkafka: `Ok` or the error code.
fn alter(
    bootstrap: &str,
    resource: rd::rd_kafka_ResourceType_t,
    name: &str,
    configs: &[(&str, &str)],
) -> Result<(), i16> {
    let changes: Vec<Change<'_>> = configs.iter().map(|(k, v)| (*k, SET, Some(*v))).collect();
    let altered = librdkafka_alter(bootstrap, false, resource, name, &changes, false);
    if altered.code == 0 {
        Ok(())
    } else {
        Err(altered.code as i16)
    }
}

fn value<'a>(resource: &'a ConfigResource, name: &str) -> (&'a str, &'a ConfigSource, bool) {
    let entry = resource
        .get(name)
        .unwrap_or_else(|| panic!("{name} not described: {:?}", resource.entries));
    (
        entry.value.as_deref().unwrap_or("<null>"),
        &entry.source,
        entry.is_read_only,
    )
}

/// Produces one record of `size` bytes to partition 0 with acks=all: the offset or the error.
async fn produce(bootstrap: &str, topic: &str, size: usize) -> Result<i64, RDKafkaErrorCode> {
    let producer = producer(bootstrap, &[("message.timeout.ms", "10000")]);
    let delivery = send_to_partition0(&producer, topic, "k", &vec![b'x'; size]).expect("enqueue");
    match within(Duration::from_secs(20), "delivery", delivery).await {
        Ok(Ok(delivery)) => Ok(delivery.offset),
        Ok(Err((KafkaError::MessageProduction(code), _))) => Err(code),
        other => panic!("unexpected delivery outcome: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_describes_a_topic_with_its_overrides_and_kafkas_defaults() {
    let b = Broker::with_overrides(&[("log.retention.hours", "48")]);
    let bootstrap = b.bootstrap();
    create_topic_with(&bootstrap, "described", 1, &[("retention.ms", "3600000")]).await;

    let topic = describe(&bootstrap, ResourceSpecifier::Topic("described")).await;
    assert_eq!(
        value(&topic, "retention.ms"),
        ("3600000", &ConfigSource::DynamicTopic, false)
    );
    assert_eq!(
        value(&topic, "segment.bytes"),
        ("1073741824", &ConfigSource::Default, false)
    );
    assert_eq!(
        value(&topic, "cleanup.policy"),
        ("delete", &ConfigSource::Default, false)
    );
    assert_eq!(
        value(&topic, "min.insync.replicas"),
        ("1", &ConfigSource::Default, false)
    );
    // Every topic config Kafka has is listed, the ones a single node ignores too.
    for name in [
        "preallocate",
        "unclean.leader.election.enable",
        "min.compaction.lag.ms",
    ] {
        assert!(topic.get(name).is_some(), "{name} missing");
    }

    // A topic without the override inherits the static broker setting.
    create_topic_with(&bootstrap, "inherits", 1, &[]).await;
    let topic = describe(&bootstrap, ResourceSpecifier::Topic("inherits")).await;
    assert_eq!(
        value(&topic, "retention.ms"),
        ("172800000", &ConfigSource::StaticBroker, false)
    );

    let broker = describe(&bootstrap, ResourceSpecifier::Broker(1)).await;
    assert_eq!(
        value(&broker, "log.retention.hours"),
        ("48", &ConfigSource::StaticBroker, false)
    );
    assert_eq!(
        value(&broker, "node.id"),
        ("1", &ConfigSource::Default, true)
    );
    assert_eq!(
        value(&broker, "num.partitions"),
        ("1", &ConfigSource::Default, true)
    );
    assert!(
        !value(&broker, "message.max.bytes").2,
        "message.max.bytes is dynamic"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_override_takes_effect_at_once_and_survives_a_restart() {
    let mut b = Broker::start(&[]);
    let bootstrap = b.bootstrap();
    create_topic_with(&bootstrap, "sized", 1, &[("retention.ms", "3600000")]).await;
    assert_eq!(produce(&bootstrap, "sized", 5000).await, Ok(0));

    assert_eq!(
        alter(
            &bootstrap,
            TOPIC_RESOURCE,
            "sized",
            &[("max.message.bytes", "2000")]
        ),
        Ok(())
    );
    assert_eq!(
        produce(&bootstrap, "sized", 5000).await,
        Err(RDKafkaErrorCode::MessageSizeTooLarge)
    );
    assert_eq!(produce(&bootstrap, "sized", 100).await, Ok(1));
    // AlterConfigs replaces the whole set: the retention.ms override is gone.
    let topic = describe(&bootstrap, ResourceSpecifier::Topic("sized")).await;
    assert_eq!(
        value(&topic, "max.message.bytes"),
        ("2000", &ConfigSource::DynamicTopic, false)
    );
    assert_eq!(value(&topic, "retention.ms").1, &ConfigSource::Default);

    b.restart();
    let bootstrap = b.bootstrap();
    let topic = describe(&bootstrap, ResourceSpecifier::Topic("sized")).await;
    assert_eq!(value(&topic, "max.message.bytes").0, "2000");
    assert_eq!(
        produce(&bootstrap, "sized", 5000).await,
        Err(RDKafkaErrorCode::MessageSizeTooLarge)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_time_broker_default_reaches_topics_without_an_override_and_persists() {
    let mut b = Broker::start(&[]);
    let bootstrap = b.bootstrap();
    create_topic_with(&bootstrap, "plain", 1, &[]).await;
    create_topic_with(&bootstrap, "own", 1, &[("max.message.bytes", "100000")]).await;

    assert_eq!(
        alter(
            &bootstrap,
            BROKER_RESOURCE,
            "1",
            &[("message.max.bytes", "2000")]
        ),
        Ok(())
    );
    assert_eq!(
        produce(&bootstrap, "plain", 5000).await,
        Err(RDKafkaErrorCode::MessageSizeTooLarge)
    );
    assert_eq!(produce(&bootstrap, "own", 5000).await, Ok(0));
    let topic = describe(&bootstrap, ResourceSpecifier::Topic("plain")).await;
    assert_eq!(
        value(&topic, "max.message.bytes"),
        ("2000", &ConfigSource::DynamicBroker, false)
    );

    b.restart();
    let bootstrap = b.bootstrap();
    assert_eq!(
        produce(&bootstrap, "plain", 5000).await,
        Err(RDKafkaErrorCode::MessageSizeTooLarge)
    );
    let broker = describe(&bootstrap, ResourceSpecifier::Broker(1)).await;
    assert_eq!(
        value(&broker, "message.max.bytes"),
        ("2000", &ConfigSource::DynamicBroker, false)
    );
    // Setting the node's run-time configs to nothing brings the static default back.
    assert_eq!(alter(&bootstrap, BROKER_RESOURCE, "1", &[]), Ok(()));
    assert_eq!(produce(&bootstrap, "plain", 5000).await, Ok(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shorter_retention_deletes_old_segments_without_a_restart() {
    let b = Broker::with_overrides(&[("log.retention.check.interval.ms", "200")]);
    let bootstrap = b.bootstrap();
    create_topic_with(&bootstrap, "aging", 1, &[("segment.bytes", "1024")]).await;
    for _ in 0..20 {
        produce(&bootstrap, "aging", 300).await.expect("produce");
    }
    assert_eq!(watermarks(&bootstrap, "aging", 0), (0, 20));
    assert_eq!(
        alter(
            &bootstrap,
            TOPIC_RESOURCE,
            "aging",
            &[("segment.bytes", "1024"), ("retention.ms", "1")]
        ),
        Ok(())
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (low, high) = watermarks(&bootstrap, "aging", 0);
        assert_eq!(high, 20);
        if low > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "retention never deleted a segment"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_sees_every_refusal_with_kafkas_error_code() {
    let b = Broker::start(&[]);
    let bootstrap = b.bootstrap();
    create_topic_with(&bootstrap, "guarded", 1, &[("retention.ms", "3600000")]).await;
    let invalid_config = ResponseError::InvalidConfig.code();
    let invalid_request = ResponseError::InvalidRequest.code();
    /// Resource, name, the change, the error code and a part of its message.
    type Refusal<'a> = (
        rd::rd_kafka_ResourceType_t,
        &'a str,
        (&'a str, &'a str),
        i16,
        &'a str,
    );
    let refused: [Refusal<'_>; 6] = [
        (
            TOPIC_RESOURCE,
            "guarded",
            ("no.such.config", "1"),
            invalid_config,
            "Unknown topic config name: no.such.config",
        ),
        (
            TOPIC_RESOURCE,
            "guarded",
            ("retention.ms", "soon"),
            invalid_config,
            "retention.ms",
        ),
        (
            TOPIC_RESOURCE,
            "guarded",
            ("remote.storage.enable", "true"),
            invalid_config,
            "tiered storage",
        ),
        (
            TOPIC_RESOURCE,
            "missing",
            ("retention.ms", "1"),
            ResponseError::UnknownTopicOrPartition.code(),
            "The topic 'missing' does not exist.",
        ),
        (
            BROKER_RESOURCE,
            "1",
            ("num.partitions", "3"),
            invalid_request,
            "Cannot update these configs dynamically: num.partitions",
        ),
        (
            BROKER_RESOURCE,
            "1",
            ("log.retention.ms", "-7"),
            invalid_config,
            "log.retention.ms",
        ),
    ];
    for (resource, name, (key, value), code, message) in refused {
        let altered = librdkafka_alter(
            &bootstrap,
            false,
            resource,
            name,
            &[(key, SET, Some(value))],
            false,
        );
        assert_eq!(
            altered.code,
            i32::from(code),
            "{name} {key}={value}: {altered:?}"
        );
        assert!(
            altered.message.contains(message),
            "{name} {key}={value}: {altered:?}"
        );
    }
    // Nothing changed.
    let topic = describe(&bootstrap, ResourceSpecifier::Topic("guarded")).await;
    assert_eq!(value(&topic, "retention.ms").0, "3600000");

    // validate_only checks and changes nothing.
    let altered = librdkafka_alter(
        &bootstrap,
        false,
        TOPIC_RESOURCE,
        "guarded",
        &[("retention.ms", SET, Some("5"))],
        true,
    );
    assert_eq!(altered, Altered::ok());
    let topic = describe(&bootstrap, ResourceSpecifier::Topic("guarded")).await;
    assert_eq!(value(&topic, "retention.ms").0, "3600000");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_incremental_alter_configs_changes_one_key_at_a_time() {
    let b = Broker::start(&[]);
    let bootstrap = b.bootstrap();
    create_topic_with(&bootstrap, "stepwise", 1, &[("retention.ms", "3600000")]).await;
    /// Changes, then the values and sources described after them.
    type Step<'a> = (&'a [Change<'a>], &'a [(&'a str, &'a str, ConfigSource)]);
    let steps: [Step<'_>; 4] = [
        (
            &[("segment.ms", SET, Some("60000"))],
            &[
                ("retention.ms", "3600000", ConfigSource::DynamicTopic),
                ("segment.ms", "60000", ConfigSource::DynamicTopic),
            ],
        ),
        (
            &[("cleanup.policy", APPEND, Some("delete"))],
            &[("cleanup.policy", "delete", ConfigSource::DynamicTopic)],
        ),
        (
            &[("retention.ms", DELETE, None)],
            &[
                ("retention.ms", "604800000", ConfigSource::Default),
                ("segment.ms", "60000", ConfigSource::DynamicTopic),
            ],
        ),
        (
            &[
                ("segment.ms", DELETE, None),
                ("cleanup.policy", DELETE, None),
            ],
            &[
                ("segment.ms", "604800000", ConfigSource::Default),
                ("cleanup.policy", "delete", ConfigSource::Default),
            ],
        ),
    ];
    for (changes, expected) in steps {
        let altered =
            librdkafka_alter(&bootstrap, true, TOPIC_RESOURCE, "stepwise", changes, false);
        assert_eq!(altered, Altered::ok(), "{changes:?}");
        let topic = describe(&bootstrap, ResourceSpecifier::Topic("stepwise")).await;
        for (name, v, source) in expected {
            assert_eq!(
                value(&topic, name),
                (*v, source, false),
                "after {changes:?}"
            );
        }
    }
    // SUBTRACT of the only policy leaves an empty list, which is not a policy Starling runs.
    let altered = librdkafka_alter(
        &bootstrap,
        true,
        TOPIC_RESOURCE,
        "stepwise",
        &[("cleanup.policy", SUBTRACT, Some("delete"))],
        false,
    );
    assert_eq!(
        altered.code,
        i32::from(ResponseError::InvalidConfig.code()),
        "{altered:?}"
    );
    let altered = librdkafka_alter(
        &bootstrap,
        true,
        TOPIC_RESOURCE,
        "stepwise",
        &[("retention.ms", APPEND, Some("1"))],
        false,
    );
    assert_eq!(
        altered,
        Altered {
            code: i32::from(ResponseError::InvalidConfig.code()),
            message: "Config value append is not allowed for config key: retention.ms".into()
        }
    );
    // A broker default changed one key at a time.
    let altered = librdkafka_alter(
        &bootstrap,
        true,
        BROKER_RESOURCE,
        "1",
        &[("log.retention.ms", SET, Some("120000"))],
        false,
    );
    assert_eq!(altered, Altered::ok());
    let topic = describe(&bootstrap, ResourceSpecifier::Topic("stepwise")).await;
    assert_eq!(
        value(&topic, "retention.ms"),
        ("120000", &ConfigSource::DynamicBroker, false)
    );
}

fn describe_raw(
    client: &mut RawClient,
    version: i16,
    resources: Vec<(i8, &'static str, Option<Vec<&'static str>>)>,
) -> DescribeConfigsResponse {
    let request = DescribeConfigsRequest::default()
        .with_resources(
            resources
                .into_iter()
                .map(|(kind, name, keys)| {
                    DescribeConfigsResource::default()
                        .with_resource_type(kind)
                        .with_resource_name(StrBytes::from_static_str(name))
                        .with_configuration_keys(
                            keys.map(|k| k.into_iter().map(StrBytes::from_static_str).collect()),
                        )
                })
                .collect(),
        )
        .with_include_synonyms(true)
        .with_include_documentation(version >= 3);
    client.call(version, &request)
}

#[test]
fn describe_configs_filters_keys_and_reports_synonyms_types_and_documentation() {
    let b = Broker::with_overrides(&[("log.retention.ms", "86400000")]);
    let mut client = RawClient::connect(b.addr());
    let response = describe_raw(&mut client, 1, vec![]);
    assert!(response.results.is_empty());
    let created = client.call(
        5,
        &kafka_protocol::messages::CreateTopicsRequest::default().with_topics(vec![
            kafka_protocol::messages::create_topics_request::CreatableTopic::default()
                .with_name(kafka_protocol::messages::TopicName(
                    StrBytes::from_static_str("raw"),
                ))
                .with_num_partitions(1)
                .with_replication_factor(1),
        ]),
    );
    assert_eq!(created.topics[0].error_code, 0);

    for version in [1, 4] {
        let response = describe_raw(
            &mut client,
            version,
            vec![
                (TOPIC, "raw", Some(vec!["retention.ms", "cleanup.policy"])),
                (TOPIC, "no-such-topic", None),
                (TOPIC, "bad/name", None),
                (BROKER, "x", None),
                (8, "1", None),
            ],
        );
        let [topic, missing, bad_name, bad_broker, logger] = &response.results[..] else {
            panic!("{response:?}");
        };
        assert_eq!(topic.error_code, 0);
        let names: Vec<&str> = topic.configs.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["cleanup.policy", "retention.ms"]);
        let retention = &topic.configs[1];
        assert_eq!(retention.value.as_deref(), Some("86400000"));
        assert_eq!(retention.config_source, 4, "STATIC_BROKER_CONFIG");
        let synonyms: Vec<(&str, i8)> = retention
            .synonyms
            .iter()
            .map(|s| (s.name.as_str(), s.source))
            .collect();
        assert_eq!(
            synonyms,
            [("log.retention.ms", 4), ("log.retention.hours", 5)]
        );
        if version >= 3 {
            assert_eq!(retention.config_type, 5, "LONG");
            assert_eq!(topic.configs[0].config_type, 7, "LIST");
            assert!(retention
                .documentation
                .as_ref()
                .is_some_and(|d| !d.is_empty()));
        }
        assert_eq!(
            missing.error_code,
            ResponseError::UnknownTopicOrPartition.code()
        );
        assert_eq!(
            bad_name.error_code,
            ResponseError::InvalidTopicException.code()
        );
        assert_eq!(bad_broker.error_code, ResponseError::InvalidRequest.code());
        assert_eq!(
            bad_broker.error_message.as_deref(),
            Some("Broker id must be an integer, but it is: x")
        );
        assert_eq!(logger.error_code, ResponseError::InvalidRequest.code());
    }
}

fn op(name: &'static str, operation: i8, value: Option<&'static str>) -> AlterableConfig {
    AlterableConfig::default()
        .with_name(StrBytes::from_static_str(name))
        .with_config_operation(operation)
        .with_value(value.map(StrBytes::from_static_str))
}

fn incremental(
    client: &mut RawClient,
    resources: Vec<(i8, &'static str, Vec<AlterableConfig>)>,
    validate_only: bool,
) -> IncrementalAlterConfigsResponse {
    let request = IncrementalAlterConfigsRequest::default()
        .with_resources(
            resources
                .into_iter()
                .map(|(kind, name, configs)| {
                    AlterConfigsResource::default()
                        .with_resource_type(kind)
                        .with_resource_name(StrBytes::from_static_str(name))
                        .with_configs(configs)
                })
                .collect(),
        )
        .with_validate_only(validate_only);
    client.call(1, &request)
}

fn errors(response: &IncrementalAlterConfigsResponse) -> Vec<(i16, String)> {
    response
        .responses
        .iter()
        .map(|r| {
            (
                r.error_code,
                r.error_message.as_deref().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn incremental_alter_configs_sets_deletes_appends_and_subtracts_and_refuses_as_kafka_does() {
    let b = Broker::start(&[]);
    let mut client = RawClient::connect(b.addr());
    let created = client.call(
        5,
        &kafka_protocol::messages::CreateTopicsRequest::default().with_topics(vec![
            kafka_protocol::messages::create_topics_request::CreatableTopic::default()
                .with_name(kafka_protocol::messages::TopicName(
                    StrBytes::from_static_str("inc"),
                ))
                .with_num_partitions(1)
                .with_replication_factor(1),
        ]),
    );
    assert_eq!(created.topics[0].error_code, 0);

    let response = incremental(
        &mut client,
        vec![(
            TOPIC,
            "inc",
            vec![
                op("retention.ms", 0, Some("60000")),
                op("cleanup.policy", 2, Some("delete")),
                op("segment.ms", 1, None),
            ],
        )],
        false,
    );
    assert_eq!(errors(&response), [(0, String::new())]);
    let described = describe_raw(&mut client, 4, vec![(TOPIC, "inc", None)]);
    let configs = &described.results[0].configs;
    let get = |name: &str| {
        configs
            .iter()
            .find(|c| c.name.as_str() == name)
            .map(|c| {
                (
                    c.value.as_deref().unwrap_or("").to_string(),
                    c.config_source,
                )
            })
            .unwrap()
    };
    assert_eq!(get("retention.ms"), ("60000".to_string(), 1));
    assert_eq!(get("cleanup.policy"), ("delete".to_string(), 1));

    // DELETE removes the override again; the default is back.
    let response = incremental(
        &mut client,
        vec![(TOPIC, "inc", vec![op("retention.ms", 1, None)])],
        false,
    );
    assert_eq!(errors(&response), [(0, String::new())]);
    let described = describe_raw(
        &mut client,
        4,
        vec![(TOPIC, "inc", Some(vec!["retention.ms"]))],
    );
    assert_eq!(described.results[0].configs[0].config_source, 5);

    let invalid_request = ResponseError::InvalidRequest.code();
    let invalid_config = ResponseError::InvalidConfig.code();
    let response = incremental(
        &mut client,
        vec![
            (TOPIC, "inc", vec![op("retention.ms", 2, Some("1"))]),
            (BROKER, "1", vec![op("log.retention.ms", 0, None)]),
            (BROKER, "", vec![op("log.retention.ms", 7, Some("1"))]),
            (
                TOPIC,
                "dup-keys",
                vec![
                    op("retention.ms", 0, Some("1")),
                    op("retention.ms", 1, None),
                ],
            ),
            (16, "metrics", vec![op("interval.ms", 0, Some("1"))]),
            (BROKER, "7", vec![op("log.retention.ms", 0, Some("1"))]),
        ],
        false,
    );
    assert_eq!(
        errors(&response),
        [
            (
                invalid_config,
                "Config value append is not allowed for config key: retention.ms".to_string()
            ),
            (
                invalid_request,
                "Null value not supported for : log.retention.ms".to_string()
            ),
            (invalid_request, "Unknown operations type 7".to_string()),
            (
                invalid_request,
                "Error due to duplicate config keys".to_string()
            ),
            (invalid_request, "Unknown resource type 16".to_string()),
            (
                invalid_request,
                "Unexpected broker id, expected 1 or empty string, but received 7".to_string()
            ),
        ]
    );

    // The same resource twice: both copies refused, nothing applied.
    let response = incremental(
        &mut client,
        vec![
            (TOPIC, "inc", vec![op("retention.ms", 0, Some("1"))]),
            (TOPIC, "inc", vec![op("segment.ms", 0, Some("1000"))]),
        ],
        false,
    );
    assert_eq!(
        errors(&response),
        vec![
            (
                invalid_request,
                "Each resource must appear at most once.".to_string()
            );
            2
        ]
    );

    // validate_only: checked (an error is still an error), nothing changed.
    let response = incremental(
        &mut client,
        vec![
            (TOPIC, "inc", vec![op("retention.ms", 0, Some("1"))]),
            (TOPIC, "missing", vec![op("retention.ms", 0, Some("1"))]),
        ],
        true,
    );
    assert_eq!(
        errors(&response),
        [
            (0, String::new()),
            (
                ResponseError::UnknownTopicOrPartition.code(),
                "The topic 'missing' does not exist.".to_string()
            )
        ]
    );
    let described = describe_raw(
        &mut client,
        4,
        vec![(TOPIC, "inc", Some(vec!["retention.ms"]))],
    );
    assert_eq!(described.results[0].configs[0].config_source, 5);

    // A cluster-wide default set at run time shows under the empty broker name.
    let response = incremental(
        &mut client,
        vec![(BROKER, "", vec![op("log.retention.ms", 0, Some("120000"))])],
        false,
    );
    assert_eq!(errors(&response), [(0, String::new())]);
    let described = describe_raw(
        &mut client,
        4,
        vec![
            (BROKER, "", None),
            (TOPIC, "inc", Some(vec!["retention.ms"])),
        ],
    );
    let cluster = &described.results[0].configs;
    assert_eq!(cluster.len(), 1);
    assert_eq!(cluster[0].name.as_str(), "log.retention.ms");
    assert_eq!(cluster[0].config_source, 3, "DYNAMIC_DEFAULT_BROKER_CONFIG");
    let retention = &described.results[1].configs[0];
    assert_eq!(retention.value.as_deref(), Some("120000"));
    assert_eq!(retention.config_source, 3);
}

#[test]
fn max_connections_changes_at_run_time_and_a_waiting_connection_is_then_served() {
    use kafka_protocol::messages::ApiVersionsRequest;
    let mut b = Broker::with_overrides(&[("max.connections", "2")]);
    let mut first = RawClient::connect(b.addr());
    let mut second = RawClient::connect(b.addr());
    for client in [&mut first, &mut second] {
        let versions = client.call(3, &ApiVersionsRequest::default());
        assert_eq!(versions.error_code, 0);
    }
    // A third connection is queued by the kernel but not served while two are open.
    let mut third = RawClient::connect(b.addr());
    let waiting = third.send(3, &ApiVersionsRequest::default());
    third
        .stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    assert!(third.read_frame().is_err(), "a third connection was served");

    let response = incremental(
        &mut first,
        vec![(BROKER, "1", vec![op("max.connections", 0, Some("3"))])],
        false,
    );
    assert_eq!(errors(&response), [(0, String::new())]);
    third
        .stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let body = third.read_response(waiting, 0);
    assert!(
        !body.is_empty(),
        "the waiting connection is served once the limit is raised"
    );

    drop((first, second, third));
    b.restart();
    let mut client = RawClient::connect(b.addr());
    let described = describe_raw(&mut client, 4, vec![(BROKER, "1", None)]);
    let max = described.results[0]
        .configs
        .iter()
        .find(|c| c.name.as_str() == "max.connections")
        .expect("max.connections described");
    assert_eq!(max.value.as_deref(), Some("3"));
    assert_eq!(max.config_source, 2, "DYNAMIC_BROKER_CONFIG");
    assert!(!max.read_only);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shorter_producer_id_expiration_set_at_run_time_forgets_idle_producers() {
    use kafka_protocol::messages::describe_producers_request::TopicRequest;
    use kafka_protocol::messages::{DescribeProducersRequest, TopicName};
    let _dog = watchdog(Duration::from_secs(90));
    let b = Broker::with_overrides(&[("log.retention.check.interval.ms", "200")]);
    let bootstrap = b.bootstrap();
    create_topic(&bootstrap, "pid-expiry", 1).await;
    let producer = producer(&bootstrap, &[("enable.idempotence", "true")]);
    let delivery = send_to_partition0(&producer, "pid-expiry", "k", b"v").expect("enqueue");
    within(Duration::from_secs(20), "delivery", delivery)
        .await
        .expect("delivered")
        .expect("delivered");
    drop(producer);
    let active = |raw: &mut RawClient| {
        let request = DescribeProducersRequest::default()
            .with_topics(vec![TopicRequest::default()
                .with_name(TopicName(StrBytes::from_static_str("pid-expiry")))
                .with_partition_indexes(vec![0])]);
        let response = raw.call(0, &request);
        response.topics[0].partitions[0].active_producers.len()
    };
    let mut raw = RawClient::connect(b.addr());
    // Under the default (a day) the idle producer is kept across several upkeep passes.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(active(&mut raw), 1);

    let response = incremental(
        &mut raw,
        vec![(
            BROKER,
            "",
            vec![op("producer.id.expiration.ms", 0, Some("1000"))],
        )],
        false,
    );
    assert_eq!(errors(&response), [(0, String::new())]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while active(&mut raw) > 0 {
        assert!(
            Instant::now() < deadline,
            "the producer was not forgotten under producer.id.expiration.ms=1000"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[test]
fn connections_over_max_connections_per_ip_are_closed_and_overrides_change_at_run_time() {
    use kafka_protocol::messages::ApiVersionsRequest;
    let _dog = watchdog(Duration::from_secs(60));
    let b = Broker::with_overrides(&[("max.connections.per.ip", "2")]);
    let mut first = RawClient::connect(b.addr());
    let mut second = RawClient::connect(b.addr());
    for client in [&mut first, &mut second] {
        assert_eq!(client.call(3, &ApiVersionsRequest::default()).error_code, 0);
    }
    let mut third = RawClient::connect(b.addr());
    third.send(3, &ApiVersionsRequest::default());
    assert_eq!(
        third.wait_closed(Duration::from_secs(5)),
        CloseOutcome::Closed
    );

    // An address that is not one is refused, naming the key.
    let response = incremental(
        &mut first,
        vec![(
            BROKER,
            "",
            vec![op(
                "max.connections.per.ip.overrides",
                0,
                Some("localhost:3"),
            )],
        )],
        false,
    );
    let (code, message) = &errors(&response)[0];
    assert_eq!(*code, ResponseError::InvalidConfig.code());
    assert!(
        message.contains("max.connections.per.ip.overrides"),
        "{message}"
    );

    let response = incremental(
        &mut first,
        vec![(
            BROKER,
            "",
            vec![op(
                "max.connections.per.ip.overrides",
                0,
                Some("127.0.0.1:3"),
            )],
        )],
        false,
    );
    assert_eq!(errors(&response), [(0, String::new())]);
    let mut third = RawClient::connect(b.addr());
    assert_eq!(third.call(3, &ApiVersionsRequest::default()).error_code, 0);
    let mut fourth = RawClient::connect(b.addr());
    fourth.send(3, &ApiVersionsRequest::default());
    assert_eq!(
        fourth.wait_closed(Duration::from_secs(5)),
        CloseOutcome::Closed
    );
}
