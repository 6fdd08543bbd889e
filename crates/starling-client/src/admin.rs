//! Topic administration: CreateTopics, DeleteTopics, DeleteRecords, DescribeConfigs and
//! IncrementalAlterConfigs of topics, and the cluster overview (cluster id, brokers,
//! controller) from Metadata.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, DeleteRecordsRequest, DeleteTopicsRequest, DescribeConfigsRequest,
    IncrementalAlterConfigsRequest, MetadataRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::client::{check, err, Broker, Client};
use crate::error::{Error, Result};
use crate::TopicPartition;

const CREATE_TOPICS: RangeInclusive<i16> = 2..=7;
/// v6 names topics by `DeleteTopicState`; names alone are enough here.
const DELETE_TOPICS: RangeInclusive<i16> = 1..=5;
const DELETE_RECORDS: RangeInclusive<i16> = 0..=2;
const DESCRIBE_CONFIGS: RangeInclusive<i16> = 1..=4;
const INCREMENTAL_ALTER_CONFIGS: RangeInclusive<i16> = 0..=1;
/// DescribeConfigs resource type of a topic.
const TOPIC_RESOURCE: i8 = 2;
/// v2 brought the cluster id.
const METADATA: RangeInclusive<i16> = 2..=12;

fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    pub name: String,
    /// -1: the broker's default.
    pub partitions: i32,
    /// -1: the broker's default.
    pub replication_factor: i16,
    /// Topic configs, in the order given.
    pub configs: Vec<(String, String)>,
}

/// A per-topic (or per-partition) failure: the error code and the broker's message, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicError {
    pub error: ResponseError,
    pub message: Option<String>,
}

impl std::fmt::Display for TopicError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.message {
            Some(m) if !m.is_empty() => write!(f, "{} ({m})", crate::describe_code(self.error)),
            _ => write!(f, "{}", crate::describe_code(self.error)),
        }
    }
}

/// What an IncrementalAlterConfigs change does to its key (Kafka's `AlterConfigOp` ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigOp {
    Set = 0,
    Delete = 1,
    Append = 2,
    Subtract = 3,
}

/// One change of a config: the key, what to do, and the value (none for DELETE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigChange {
    pub name: String,
    pub op: ConfigOp,
    pub value: Option<String>,
}

/// One config entry of a topic as DescribeConfigs reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: String,
    /// None for a sensitive value.
    pub value: Option<String>,
    /// Kafka's name of the source: `DYNAMIC_TOPIC_CONFIG`, `DEFAULT_CONFIG`, ...
    pub source: String,
    pub read_only: bool,
}

/// Kafka's name of a DescribeConfigs `config_source`.
pub fn config_source_name(source: i8) -> String {
    match source {
        1 => "DYNAMIC_TOPIC_CONFIG".to_string(),
        2 => "DYNAMIC_BROKER_CONFIG".to_string(),
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG".to_string(),
        4 => "STATIC_BROKER_CONFIG".to_string(),
        5 => "DEFAULT_CONFIG".to_string(),
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG".to_string(),
        7 => "CLIENT_METRICS_CONFIG".to_string(),
        8 => "GROUP_CONFIG".to_string(),
        other => format!("UNKNOWN({other})"),
    }
}

/// The cluster as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterInfo {
    pub cluster_id: Option<String>,
    /// -1 if the broker names none.
    pub controller_id: i32,
    pub brokers: Vec<Broker>,
}

impl Client {
    fn timeout_ms(&self) -> i32 {
        self.options()
            .request_timeout
            .as_millis()
            .min(i32::MAX as u128) as i32
    }

    /// Creates topics through the bootstrap broker; returns each topic's outcome in order.
    pub async fn create_topics(
        &mut self,
        topics: &[NewTopic],
        validate_only: bool,
    ) -> Result<Vec<(String, Result<(), TopicError>)>> {
        let timeout_ms = self.timeout_ms();
        let conn = self.bootstrap_conn().await?;
        let version = conn.version_for(ApiKey::CreateTopics, CREATE_TOPICS)?;
        let request = CreateTopicsRequest::default()
            .with_timeout_ms(timeout_ms)
            .with_validate_only(validate_only)
            .with_topics(
                topics
                    .iter()
                    .map(|t| {
                        CreatableTopic::default()
                            .with_name(topic_name(&t.name))
                            .with_num_partitions(t.partitions)
                            .with_replication_factor(t.replication_factor)
                            .with_configs(
                                t.configs
                                    .iter()
                                    .map(|(k, v)| {
                                        CreatableTopicConfig::default()
                                            .with_name(StrBytes::from_string(k.clone()))
                                            .with_value(Some(StrBytes::from_string(v.clone())))
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let response = conn.send(version, &request).await?;
        topics
            .iter()
            .map(|t| {
                let r = response
                    .topics
                    .iter()
                    .find(|r| r.name.0.as_str() == t.name)
                    .ok_or_else(|| {
                        Error::Protocol(format!(
                            "CreateTopics v{version}: no result for topic '{}'",
                            t.name
                        ))
                    })?;
                let outcome = match err(r.error_code) {
                    None => Ok(()),
                    Some(error) => Err(TopicError {
                        error,
                        message: r.error_message.as_ref().map(|m| m.as_str().to_string()),
                    }),
                };
                Ok((t.name.clone(), outcome))
            })
            .collect()
    }

    /// Deletes topics through the bootstrap broker; returns each topic's outcome in order.
    pub async fn delete_topics(
        &mut self,
        topics: &[&str],
    ) -> Result<Vec<(String, Result<(), TopicError>)>> {
        let timeout_ms = self.timeout_ms();
        let conn = self.bootstrap_conn().await?;
        let version = conn.version_for(ApiKey::DeleteTopics, DELETE_TOPICS)?;
        let request = DeleteTopicsRequest::default()
            .with_timeout_ms(timeout_ms)
            .with_topic_names(topics.iter().map(|t| topic_name(t)).collect());
        let response = conn.send(version, &request).await?;
        topics
            .iter()
            .map(|t| {
                let r = response
                    .responses
                    .iter()
                    .find(|r| r.name.as_ref().map(|n| n.0.as_str()) == Some(*t))
                    .ok_or_else(|| {
                        Error::Protocol(format!(
                            "DeleteTopics v{version}: no result for topic '{t}'"
                        ))
                    })?;
                let outcome = match err(r.error_code) {
                    None => Ok(()),
                    Some(error) => Err(TopicError {
                        error,
                        message: r.error_message.as_ref().map(|m| m.as_str().to_string()),
                    }),
                };
                Ok((t.to_string(), outcome))
            })
            .collect()
    }

    /// DeleteRecords: moves each partition's log start offset up to the given offset (-1: the
    /// high watermark), sent to the partition's leader. Returns the new low watermark per
    /// partition, or its error.
    pub async fn delete_records(
        &mut self,
        offsets: &[(TopicPartition, i64)],
    ) -> Result<BTreeMap<TopicPartition, Result<i64, ResponseError>>> {
        let mut out = BTreeMap::new();
        let tps: Vec<TopicPartition> = offsets.iter().map(|(tp, _)| tp.clone()).collect();
        let leaders = self.leaders(&tps).await?;
        let mut by_leader: BTreeMap<String, Vec<(TopicPartition, i64)>> = BTreeMap::new();
        for (tp, offset) in offsets {
            match &leaders[tp] {
                Ok(addr) => by_leader
                    .entry(addr.clone())
                    .or_default()
                    .push((tp.clone(), *offset)),
                Err(e) => {
                    out.insert(tp.clone(), Err(*e));
                }
            }
        }
        let timeout_ms = self.timeout_ms();
        for (addr, items) in by_leader {
            let conn = self.connection_to(&addr).await?;
            let version = conn.version_for(ApiKey::DeleteRecords, DELETE_RECORDS)?;
            let mut grouped: BTreeMap<&str, Vec<(i32, i64)>> = BTreeMap::new();
            for (tp, offset) in &items {
                grouped
                    .entry(&tp.topic)
                    .or_default()
                    .push((tp.partition, *offset));
            }
            let request = DeleteRecordsRequest::default()
                .with_timeout_ms(timeout_ms)
                .with_topics(
                    grouped
                        .iter()
                        .map(|(t, ps)| {
                            DeleteRecordsTopic::default()
                                .with_name(topic_name(t))
                                .with_partitions(
                                    ps.iter()
                                        .map(|&(p, o)| {
                                            DeleteRecordsPartition::default()
                                                .with_partition_index(p)
                                                .with_offset(o)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                );
            let response = conn.send(version, &request).await?;
            for t in &response.topics {
                for p in &t.partitions {
                    let tp = TopicPartition::new(t.name.0.as_str(), p.partition_index);
                    let result = match err(p.error_code) {
                        Some(e) => Err(e),
                        None => Ok(p.low_watermark),
                    };
                    out.insert(tp, result);
                }
            }
            for (tp, _) in items {
                if !out.contains_key(&tp) {
                    return Err(Error::Protocol(format!(
                        "DeleteRecords v{version} from {addr}: no answer for {tp}"
                    )));
                }
            }
        }
        Ok(out)
    }

    /// The leader's address of each partition, or why there is none.
    pub async fn leaders(
        &mut self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, Result<String, ResponseError>>> {
        let mut topics: Vec<&str> = partitions.iter().map(|tp| tp.topic.as_str()).collect();
        topics.sort();
        topics.dedup();
        let metadata = self.metadata(Some(&topics)).await?;
        Ok(partitions
            .iter()
            .map(|tp| {
                let located = match metadata.topic(&tp.topic) {
                    None => Err(ResponseError::UnknownTopicOrPartition),
                    Some(t) => match t.error {
                        Some(e) => Err(e),
                        None => match t.partitions.iter().find(|p| p.partition == tp.partition) {
                            None => Err(ResponseError::UnknownTopicOrPartition),
                            Some(p) if p.leader < 0 => Err(ResponseError::LeaderNotAvailable),
                            Some(p) => metadata
                                .broker(p.leader)
                                .map(Broker::addr)
                                .ok_or(ResponseError::LeaderNotAvailable),
                        },
                    },
                };
                (tp.clone(), located)
            })
            .collect())
    }

    /// Every config of `topic`, from the bootstrap broker (DescribeConfigs), sorted by name.
    pub async fn describe_topic_configs(&mut self, topic: &str) -> Result<Vec<ConfigEntry>> {
        let conn = self.bootstrap_conn().await?;
        let version = conn.version_for(ApiKey::DescribeConfigs, DESCRIBE_CONFIGS)?;
        let request = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(TOPIC_RESOURCE)
                .with_resource_name(StrBytes::from_string(topic.to_string()))
                .with_configuration_keys(None),
        ]);
        let response = conn.send(version, &request).await?;
        let result = response
            .results
            .iter()
            .find(|r| r.resource_name.as_str() == topic)
            .ok_or_else(|| {
                Error::Protocol(format!(
                    "DescribeConfigs v{version}: no result for topic '{topic}'"
                ))
            })?;
        check(result.error_code, result.error_message.as_deref(), || {
            format!("DescribeConfigs for topic '{topic}'")
        })?;
        let mut entries: Vec<ConfigEntry> = result
            .configs
            .iter()
            .map(|c| ConfigEntry {
                name: c.name.as_str().to_string(),
                value: c.value.as_ref().map(|v| v.as_str().to_string()),
                source: config_source_name(c.config_source),
                read_only: c.read_only,
            })
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// Changes some of `topic`'s configs (IncrementalAlterConfigs, on the bootstrap broker):
    /// each change is SET, DELETE, APPEND or SUBTRACT of one key; with `validate_only` the
    /// broker only checks them. The broker's refusal comes back with its message.
    pub async fn alter_topic_configs(
        &mut self,
        topic: &str,
        changes: &[ConfigChange],
        validate_only: bool,
    ) -> Result<()> {
        let conn = self.bootstrap_conn().await?;
        let version =
            conn.version_for(ApiKey::IncrementalAlterConfigs, INCREMENTAL_ALTER_CONFIGS)?;
        let configs = changes
            .iter()
            .map(|change| {
                AlterableConfig::default()
                    .with_name(StrBytes::from_string(change.name.clone()))
                    .with_config_operation(change.op as i8)
                    .with_value(change.value.clone().map(StrBytes::from_string))
            })
            .collect();
        let request = IncrementalAlterConfigsRequest::default()
            .with_resources(vec![AlterConfigsResource::default()
                .with_resource_type(TOPIC_RESOURCE)
                .with_resource_name(StrBytes::from_string(topic.to_string()))
                .with_configs(configs)])
            .with_validate_only(validate_only);
        let response = conn.send(version, &request).await?;
        let result = response.responses.first().ok_or_else(|| {
            Error::Protocol(format!(
                "IncrementalAlterConfigs v{version}: no result for topic '{topic}'"
            ))
        })?;
        check(result.error_code, result.error_message.as_deref(), || {
            format!("altering the configs of topic '{topic}'")
        })
    }

    /// Cluster id, controller and brokers, from a Metadata request for no topics.
    pub async fn cluster_info(&mut self) -> Result<ClusterInfo> {
        let conn = self.bootstrap_conn().await?;
        let version = conn.version_for(ApiKey::Metadata, METADATA)?;
        let mut request = MetadataRequest::default().with_topics(Some(Vec::new()));
        if version >= 4 {
            request.allow_auto_topic_creation = false;
        }
        let response = conn.send(version, &request).await?;
        let mut brokers: Vec<Broker> = response
            .brokers
            .iter()
            .map(|b| Broker {
                node_id: b.node_id.0,
                host: b.host.as_str().to_string(),
                port: b.port,
            })
            .collect();
        brokers.sort_by_key(|b| b.node_id);
        Ok(ClusterInfo {
            cluster_id: response.cluster_id.as_ref().map(|c| c.as_str().to_string()),
            controller_id: response.controller_id.0,
            brokers,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, OnceLock};
    use std::time::Duration;

    use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
    use kafka_protocol::messages::delete_records_response::{
        DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
    };
    use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
    use kafka_protocol::messages::describe_configs_response::{
        DescribeConfigsResourceResult, DescribeConfigsResult,
    };
    use kafka_protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };
    use kafka_protocol::messages::{
        BrokerId, CreateTopicsResponse, DeleteRecordsResponse, DeleteTopicsResponse,
        DescribeConfigsResponse, MetadataResponse,
    };

    use super::*;
    use crate::fake_broker::{api_versions, decode_body, respond, FakeBroker, Seen};
    use crate::Options;

    fn opts() -> Options {
        Options {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            ..Options::default()
        }
    }

    fn s(v: &str) -> StrBytes {
        StrBytes::from_string(v.to_string())
    }

    /// A broker (node 1) hosting topic "t" with partitions 0 and 1, both led by itself, that
    /// answers the admin APIs: "bad" cannot be created, "gone" cannot be deleted, partition 1
    /// cannot be trimmed past 10.
    async fn admin_broker() -> FakeBroker {
        let me: Arc<OnceLock<String>> = Arc::new(OnceLock::new());
        let me2 = me.clone();
        let fake = FakeBroker::start(Arc::new(move |seen: &Seen| {
            let api = ApiKey::try_from(seen.header.request_api_key).unwrap();
            match api {
                ApiKey::ApiVersions => Some(respond(
                    seen,
                    &api_versions(&[
                        (ApiKey::ApiVersions, 0, 3),
                        (ApiKey::Metadata, 0, 12),
                        (ApiKey::CreateTopics, 2, 7),
                        (ApiKey::DeleteTopics, 1, 6),
                        (ApiKey::DeleteRecords, 0, 2),
                        (ApiKey::DescribeConfigs, 1, 4),
                    ]),
                )),
                ApiKey::Metadata => {
                    let (host, port) = me2.get().unwrap().rsplit_once(':').unwrap();
                    Some(respond(
                        seen,
                        &MetadataResponse::default()
                            .with_cluster_id(Some(s("cluster-x")))
                            .with_controller_id(BrokerId(1))
                            .with_brokers(vec![MetadataResponseBroker::default()
                                .with_node_id(BrokerId(1))
                                .with_host(s(host))
                                .with_port(port.parse().unwrap())])
                            .with_topics(vec![MetadataResponseTopic::default()
                                .with_name(Some(topic_name("t")))
                                .with_partitions(
                                    (0..2)
                                        .map(|p| {
                                            MetadataResponsePartition::default()
                                                .with_partition_index(p)
                                                .with_leader_id(BrokerId(1))
                                        })
                                        .collect(),
                                )]),
                    ))
                }
                ApiKey::CreateTopics => {
                    let req: CreateTopicsRequest = decode_body(seen);
                    let topics = req
                        .topics
                        .iter()
                        .map(|t| {
                            let mut r = CreatableTopicResult::default().with_name(t.name.clone());
                            if t.name.0.as_str() == "bad" {
                                r.error_code = ResponseError::InvalidConfig.code();
                                r.error_message = Some(s("invalid value 'x' for 'retention.ms'"));
                            }
                            r
                        })
                        .collect();
                    Some(respond(
                        seen,
                        &CreateTopicsResponse::default().with_topics(topics),
                    ))
                }
                ApiKey::DeleteTopics => {
                    let req: DeleteTopicsRequest = decode_body(seen);
                    let responses = req
                        .topic_names
                        .iter()
                        .map(|n| {
                            let mut r = DeletableTopicResult::default().with_name(Some(n.clone()));
                            if n.0.as_str() == "gone" {
                                r.error_code = ResponseError::UnknownTopicOrPartition.code();
                            }
                            r
                        })
                        .collect();
                    Some(respond(
                        seen,
                        &DeleteTopicsResponse::default().with_responses(responses),
                    ))
                }
                ApiKey::DeleteRecords => {
                    let req: DeleteRecordsRequest = decode_body(seen);
                    let topics = req
                        .topics
                        .iter()
                        .map(|t| {
                            DeleteRecordsTopicResult::default()
                                .with_name(t.name.clone())
                                .with_partitions(
                                    t.partitions
                                        .iter()
                                        .map(|p| {
                                            let r = DeleteRecordsPartitionResult::default()
                                                .with_partition_index(p.partition_index);
                                            if p.partition_index == 1 && p.offset > 10 {
                                                r.with_low_watermark(-1).with_error_code(
                                                    ResponseError::OffsetOutOfRange.code(),
                                                )
                                            } else {
                                                r.with_low_watermark(p.offset)
                                            }
                                        })
                                        .collect(),
                                )
                        })
                        .collect();
                    Some(respond(
                        seen,
                        &DeleteRecordsResponse::default().with_topics(topics),
                    ))
                }
                ApiKey::DescribeConfigs => Some(respond(
                    seen,
                    &DescribeConfigsResponse::default().with_results(vec![
                        DescribeConfigsResult::default()
                            .with_resource_type(TOPIC_RESOURCE)
                            .with_resource_name(s("t"))
                            .with_configs(vec![
                                DescribeConfigsResourceResult::default()
                                    .with_name(s("segment.bytes"))
                                    .with_value(Some(s("1024")))
                                    .with_config_source(5),
                                DescribeConfigsResourceResult::default()
                                    .with_name(s("retention.ms"))
                                    .with_value(Some(s("60000")))
                                    .with_config_source(1),
                            ]),
                    ]),
                )),
                _ => None,
            }
        }))
        .await;
        me.set(fake.addr.clone()).unwrap();
        fake
    }

    #[tokio::test]
    async fn create_topics_sends_partitions_and_configs_and_reports_the_brokers_message() {
        let fake = admin_broker().await;
        let mut client = Client::connect(&fake.addr, opts()).await.unwrap();
        let results = client
            .create_topics(
                &[
                    NewTopic {
                        name: "good".to_string(),
                        partitions: 3,
                        replication_factor: -1,
                        configs: vec![("retention.ms".to_string(), "1000".to_string())],
                    },
                    NewTopic {
                        name: "bad".to_string(),
                        partitions: -1,
                        replication_factor: -1,
                        configs: vec![],
                    },
                ],
                false,
            )
            .await
            .unwrap();
        assert_eq!(results[0], ("good".to_string(), Ok(())));
        let (name, outcome) = &results[1];
        assert_eq!(name, "bad");
        assert_eq!(
            outcome.as_ref().unwrap_err().to_string(),
            "INVALID_CONFIG (40) (invalid value 'x' for 'retention.ms')"
        );
        let sent: Vec<Seen> = fake
            .seen()
            .into_iter()
            .filter(|s| s.header.request_api_key == ApiKey::CreateTopics as i16)
            .collect();
        assert_eq!(sent[0].header.request_api_version, 7);
        let req: CreateTopicsRequest = decode_body(&sent[0]);
        assert_eq!(req.topics[0].num_partitions, 3);
        assert_eq!(req.topics[0].replication_factor, -1);
        assert_eq!(req.topics[0].configs[0].name.as_str(), "retention.ms");
        assert_eq!(
            req.topics[0].configs[0].value.as_ref().unwrap().as_str(),
            "1000"
        );
        assert!(!req.validate_only);
    }

    #[tokio::test]
    async fn delete_topics_uses_names_and_reports_each_topic() {
        let fake = admin_broker().await;
        let mut client = Client::connect(&fake.addr, opts()).await.unwrap();
        let results = client.delete_topics(&["t", "gone"]).await.unwrap();
        assert_eq!(results[0], ("t".to_string(), Ok(())));
        assert_eq!(
            results[1].1.as_ref().unwrap_err().error,
            ResponseError::UnknownTopicOrPartition
        );
        let sent = fake
            .seen()
            .into_iter()
            .find(|s| s.header.request_api_key == ApiKey::DeleteTopics as i16)
            .unwrap();
        assert_eq!(sent.header.request_api_version, 5, "names, not topic ids");
    }

    #[tokio::test]
    async fn delete_records_goes_to_the_leader_and_reports_per_partition() {
        let fake = admin_broker().await;
        let mut client = Client::connect(&fake.addr, opts()).await.unwrap();
        let results = client
            .delete_records(&[
                (TopicPartition::new("t", 0), 5),
                (TopicPartition::new("t", 1), 11),
                (TopicPartition::new("t", 9), 1),
                (TopicPartition::new("nope", 0), 1),
            ])
            .await
            .unwrap();
        assert_eq!(results[&TopicPartition::new("t", 0)], Ok(5));
        assert_eq!(
            results[&TopicPartition::new("t", 1)],
            Err(ResponseError::OffsetOutOfRange)
        );
        assert_eq!(
            results[&TopicPartition::new("t", 9)],
            Err(ResponseError::UnknownTopicOrPartition)
        );
        assert_eq!(
            results[&TopicPartition::new("nope", 0)],
            Err(ResponseError::UnknownTopicOrPartition)
        );
        let sent: Vec<Seen> = fake
            .seen()
            .into_iter()
            .filter(|s| s.header.request_api_key == ApiKey::DeleteRecords as i16)
            .collect();
        assert_eq!(sent.len(), 1, "one request for the one leader");
        let req: DeleteRecordsRequest = decode_body(&sent[0]);
        assert_eq!(req.topics.len(), 1);
        assert_eq!(req.topics[0].partitions.len(), 2);
    }

    #[tokio::test]
    async fn cluster_info_and_topic_configs() {
        let fake = admin_broker().await;
        let mut client = Client::connect(&fake.addr, opts()).await.unwrap();
        let info = client.cluster_info().await.unwrap();
        assert_eq!(info.cluster_id.as_deref(), Some("cluster-x"));
        assert_eq!(info.controller_id, 1);
        assert_eq!(info.brokers.len(), 1);
        assert_eq!(info.brokers[0].addr(), fake.addr);
        let configs = client.describe_topic_configs("t").await.unwrap();
        assert_eq!(
            configs,
            vec![
                ConfigEntry {
                    name: "retention.ms".to_string(),
                    value: Some("60000".to_string()),
                    source: "DYNAMIC_TOPIC_CONFIG".to_string(),
                    read_only: false,
                },
                ConfigEntry {
                    name: "segment.bytes".to_string(),
                    value: Some("1024".to_string()),
                    source: "DEFAULT_CONFIG".to_string(),
                    read_only: false,
                },
            ]
        );
    }
}
