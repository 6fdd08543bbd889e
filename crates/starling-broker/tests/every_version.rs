//! Every API the broker advertises, at every version it advertises, gets a response that decodes
//! at that version — the broker never closes a connection because it set a field the requested
//! version lacks. Runs an in-process broker and a raw client built on the `kafka-protocol` crate.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use starling_broker::config::BrokerConfig;
use starling_broker::server::{start, RunningBroker};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uuid::Uuid;

struct Client {
    stream: TcpStream,
    correlation: i32,
}

impl Client {
    async fn connect(broker: &RunningBroker) -> Client {
        Client {
            stream: TcpStream::connect(broker.local_addr()).await.unwrap(),
            correlation: 0,
        }
    }

    /// Sends `body` as `api_key` v`version`; returns the response body bytes after its header.
    async fn call<T: Encodable>(&mut self, api_key: ApiKey, version: i16, body: &T) -> Bytes {
        self.correlation += 1;
        let mut header = RequestHeader::default();
        header.request_api_key = api_key as i16;
        header.request_api_version = version;
        header.correlation_id = self.correlation;
        header.client_id = Some(StrBytes::from_static_str("every-version"));
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, api_key.request_header_version(version))
            .unwrap();
        body.encode(&mut buf, version)
            .unwrap_or_else(|e| panic!("encoding {api_key:?} v{version}: {e}"));
        let mut framed = BytesMut::new();
        framed.put_i32(buf.len() as i32);
        framed.put_slice(&buf);
        self.stream.write_all(&framed).await.unwrap();
        let mut size = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(10), self.stream.read_exact(&mut size))
            .await
            .unwrap_or_else(|_| panic!("{api_key:?} v{version}: no response"))
            .unwrap_or_else(|e| panic!("{api_key:?} v{version}: connection closed: {e}"));
        let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut body).await.unwrap();
        let mut body = Bytes::from(body);
        let header =
            ResponseHeader::decode(&mut body, api_key.response_header_version(version)).unwrap();
        assert_eq!(
            header.correlation_id, self.correlation,
            "{api_key:?} v{version}"
        );
        body
    }
}

fn decode<T: Decodable>(api_key: ApiKey, version: i16, mut body: Bytes) -> T {
    let value = T::decode(&mut body, version)
        .unwrap_or_else(|e| panic!("decoding {api_key:?} v{version}: {e}"));
    assert!(
        !body.has_remaining(),
        "{api_key:?} v{version}: {} trailing bytes",
        body.remaining()
    );
    value
}

fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn batch() -> Bytes {
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: 1_700_000_000_000,
        key: Some(Bytes::from_static(b"k")),
        value: Some(Bytes::from_static(b"v")),
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        [&record],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf.freeze()
}

async fn broker() -> (tempfile::TempDir, RunningBroker) {
    let dir = tempfile::tempdir().unwrap();
    let config = BrokerConfig {
        listeners: vec![starling_broker::listeners::ListenerAddress::plaintext(
            "127.0.0.1:0".parse().unwrap(),
        )],
        admin_listen: Some("127.0.0.1:0".parse().unwrap()),
        data_dir: dir.path().to_path_buf(),
        ..BrokerConfig::default()
    };
    (dir, start(config).await.unwrap())
}

fn range(api: ApiKey) -> std::ops::RangeInclusive<i16> {
    let r = starling_protocol::versions::supported(api).unwrap();
    r.min..=r.max
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_advertised_version_of_every_api_is_answered() {
    let (_dir, broker) = broker().await;
    let mut c = Client::connect(&broker).await;

    for v in range(ApiKey::ApiVersions) {
        let r: ApiVersionsResponse = decode(
            ApiKey::ApiVersions,
            v,
            c.call(ApiKey::ApiVersions, v, &ApiVersionsRequest::default())
                .await,
        );
        assert_eq!(r.error_code, 0);
        assert!(r
            .api_keys
            .iter()
            .any(|k| k.api_key == ApiKey::Fetch as i16 && k.min_version == 4));
    }

    for v in range(ApiKey::CreateTopics) {
        let mut req = CreateTopicsRequest::default();
        req.timeout_ms = 5000;
        req.topics = vec![CreatableTopic::default()
            .with_name(topic_name(&format!("create-v{v}")))
            .with_num_partitions(2)
            .with_replication_factor(1)];
        let r: CreateTopicsResponse = decode(
            ApiKey::CreateTopics,
            v,
            c.call(ApiKey::CreateTopics, v, &req).await,
        );
        assert_eq!(
            r.topics[0].error_code, 0,
            "CreateTopics v{v}: {:?}",
            r.topics[0].error_message
        );
    }
    let topic = broker.broker().topics.get("create-v2").unwrap();

    for v in range(ApiKey::Metadata) {
        let mut req = MetadataRequest::default();
        req.topics = Some(vec![if v >= 10 {
            MetadataRequestTopic::default()
                .with_name(Some(topic_name("create-v2")))
                .with_topic_id(Uuid::nil())
        } else {
            MetadataRequestTopic::default().with_name(Some(topic_name("create-v2")))
        }]);
        let r: MetadataResponse =
            decode(ApiKey::Metadata, v, c.call(ApiKey::Metadata, v, &req).await);
        assert_eq!(r.topics.len(), 1, "Metadata v{v}");
        assert_eq!(r.topics[0].error_code, 0, "Metadata v{v}");
        assert_eq!(r.topics[0].partitions.len(), 2, "Metadata v{v}");
        assert_eq!(r.brokers[0].port, broker.local_addr().port() as i32);
    }

    for v in range(ApiKey::FindCoordinator) {
        let mut req = FindCoordinatorRequest::default();
        if v >= 4 {
            req.coordinator_keys = vec![
                StrBytes::from_static_str("g1"),
                StrBytes::from_static_str("g2"),
            ];
        } else {
            req.key = StrBytes::from_static_str("g1");
        }
        let r: FindCoordinatorResponse = decode(
            ApiKey::FindCoordinator,
            v,
            c.call(ApiKey::FindCoordinator, v, &req).await,
        );
        if v >= 4 {
            assert_eq!(r.coordinators.len(), 2, "FindCoordinator v{v}");
            assert!(r
                .coordinators
                .iter()
                .all(|c| c.error_code == 0 && c.port == broker.local_addr().port() as i32));
        } else {
            assert_eq!(
                (r.error_code, r.port),
                (0, broker.local_addr().port() as i32),
                "FindCoordinator v{v}"
            );
        }
    }

    let mut produced = 0;
    for v in range(ApiKey::Produce).filter(|v| *v >= 3) {
        let mut data =
            TopicProduceData::default().with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch()))]);
        if v >= 13 {
            data.topic_id = topic.id;
        } else {
            data.name = topic_name("create-v2");
        }
        let mut req = ProduceRequest::default();
        req.acks = -1;
        req.timeout_ms = 5000;
        req.topic_data = vec![data];
        let r: ProduceResponse = decode(ApiKey::Produce, v, c.call(ApiKey::Produce, v, &req).await);
        let p = &r.responses[0].partition_responses[0];
        assert_eq!(p.error_code, 0, "Produce v{v}: {:?}", p.error_message);
        assert_eq!(p.base_offset, produced, "Produce v{v}");
        produced += 1;
    }

    for v in range(ApiKey::Fetch) {
        let mut t = FetchTopic::default().with_partitions(vec![FetchPartition::default()
            .with_partition(0)
            .with_fetch_offset(0)
            .with_partition_max_bytes(1 << 20)]);
        if v >= 13 {
            t.topic_id = topic.id;
        } else {
            t.topic = topic_name("create-v2");
        }
        let mut req = FetchRequest::default();
        req.max_wait_ms = 10;
        req.min_bytes = 1;
        req.max_bytes = 1 << 20;
        req.session_epoch = -1;
        req.topics = vec![t];
        let r: FetchResponse = decode(ApiKey::Fetch, v, c.call(ApiKey::Fetch, v, &req).await);
        let p = &r.responses[0].partitions[0];
        assert_eq!(p.error_code, 0, "Fetch v{v}");
        assert_eq!(p.high_watermark, produced, "Fetch v{v}");
        assert!(!p.records.as_ref().unwrap().is_empty(), "Fetch v{v}");
    }

    for v in range(ApiKey::ListOffsets) {
        let mut req = ListOffsetsRequest::default();
        req.replica_id = BrokerId(-1);
        req.topics = vec![ListOffsetsTopic::default()
            .with_name(topic_name("create-v2"))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(-1)])];
        let r: ListOffsetsResponse = decode(
            ApiKey::ListOffsets,
            v,
            c.call(ApiKey::ListOffsets, v, &req).await,
        );
        assert_eq!(r.topics[0].partitions[0].error_code, 0, "ListOffsets v{v}");
        assert_eq!(
            r.topics[0].partitions[0].offset, produced,
            "ListOffsets v{v}"
        );
    }

    for (i, v) in range(ApiKey::CreatePartitions).enumerate() {
        let mut req = CreatePartitionsRequest::default();
        req.timeout_ms = 5000;
        req.topics = vec![CreatePartitionsTopic::default()
            .with_name(topic_name("create-v3"))
            .with_count(3 + i as i32)];
        let r: CreatePartitionsResponse = decode(
            ApiKey::CreatePartitions,
            v,
            c.call(ApiKey::CreatePartitions, v, &req).await,
        );
        assert_eq!(
            r.results[0].error_code, 0,
            "CreatePartitions v{v}: {:?}",
            r.results[0].error_message
        );
    }

    for v in range(ApiKey::DeleteTopics) {
        let name = format!("create-v{}", v + 1);
        let mut req = DeleteTopicsRequest::default();
        req.timeout_ms = 5000;
        if v >= 6 {
            req.topics = vec![DeleteTopicState::default().with_name(Some(topic_name(&name)))];
        } else {
            req.topic_names = vec![topic_name(&name)];
        }
        let r: DeleteTopicsResponse = decode(
            ApiKey::DeleteTopics,
            v,
            c.call(ApiKey::DeleteTopics, v, &req).await,
        );
        assert_eq!(r.responses[0].error_code, 0, "DeleteTopics v{v}");
        assert!(broker.broker().topics.get(&name).is_none());
    }

    // KIP-848: a member joins a group per version, is assigned the topic's partitions by their
    // real topic id, and the group is described.
    let mut req = CreateTopicsRequest::default();
    req.timeout_ms = 5000;
    req.topics = vec![CreatableTopic::default()
        .with_name(topic_name("cg-topic"))
        .with_num_partitions(2)
        .with_replication_factor(1)];
    let r: CreateTopicsResponse = decode(
        ApiKey::CreateTopics,
        7,
        c.call(ApiKey::CreateTopics, 7, &req).await,
    );
    assert_eq!(r.topics[0].error_code, 0);
    let topic_id = broker.broker().topics.get("cg-topic").expect("cg-topic").id;
    for v in range(ApiKey::ConsumerGroupHeartbeat) {
        let mut req = ConsumerGroupHeartbeatRequest::default();
        req.group_id = GroupId(StrBytes::from_string(format!("cg-v{v}")));
        req.member_id = StrBytes::from_string(format!("member-v{v}"));
        req.member_epoch = 0;
        req.rebalance_timeout_ms = 30_000;
        req.subscribed_topic_names = Some(vec![topic_name("cg-topic")]);
        req.topic_partitions = Some(Vec::new());
        let r: ConsumerGroupHeartbeatResponse = decode(
            ApiKey::ConsumerGroupHeartbeat,
            v,
            c.call(ApiKey::ConsumerGroupHeartbeat, v, &req).await,
        );
        assert_eq!(
            r.error_code, 0,
            "ConsumerGroupHeartbeat v{v}: {:?}",
            r.error_message
        );
        assert_eq!(r.member_epoch, 1, "ConsumerGroupHeartbeat v{v}");
        let assignment = r.assignment.expect("a join gets its assignment");
        assert_eq!(assignment.topic_partitions.len(), 1);
        assert_eq!(assignment.topic_partitions[0].topic_id, topic_id);
    }
    for v in range(ApiKey::ConsumerGroupDescribe) {
        let mut req = ConsumerGroupDescribeRequest::default();
        req.group_ids = vec![GroupId(StrBytes::from_string(format!("cg-v{v}")))];
        let r: ConsumerGroupDescribeResponse = decode(
            ApiKey::ConsumerGroupDescribe,
            v,
            c.call(ApiKey::ConsumerGroupDescribe, v, &req).await,
        );
        let group = &r.groups[0];
        assert_eq!(group.error_code, 0, "ConsumerGroupDescribe v{v}");
        assert_eq!(group.members.len(), 1, "ConsumerGroupDescribe v{v}");
        let assigned = &group.members[0].assignment.topic_partitions[0];
        assert_eq!(assigned.topic_name.as_str(), "cg-topic");
    }
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_encodable_at_every_version() {
    let (_dir, broker) = broker().await;
    let mut c = Client::connect(&broker).await;
    for v in range(ApiKey::Produce).filter(|v| *v >= 3 && *v < 13) {
        let mut req = ProduceRequest::default();
        req.acks = 1;
        req.topic_data = vec![TopicProduceData::default()
            .with_name(topic_name("missing"))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch()))])];
        let r: ProduceResponse = decode(ApiKey::Produce, v, c.call(ApiKey::Produce, v, &req).await);
        assert_eq!(
            r.responses[0].partition_responses[0].error_code, 3,
            "Produce v{v}"
        );
    }
    for v in range(ApiKey::Fetch).filter(|v| *v < 13) {
        let mut req = FetchRequest::default();
        req.session_epoch = -1;
        req.max_bytes = 1000;
        req.topics = vec![FetchTopic::default()
            .with_topic(topic_name("missing"))
            .with_partitions(vec![FetchPartition::default().with_partition(0)])];
        let r: FetchResponse = decode(ApiKey::Fetch, v, c.call(ApiKey::Fetch, v, &req).await);
        assert_eq!(r.responses[0].partitions[0].error_code, 3, "Fetch v{v}");
    }
    for v in range(ApiKey::CreateTopics) {
        let mut req = CreateTopicsRequest::default();
        req.topics = vec![CreatableTopic::default()
            .with_name(topic_name("bad/name"))
            .with_num_partitions(1)
            .with_replication_factor(1)];
        let r: CreateTopicsResponse = decode(
            ApiKey::CreateTopics,
            v,
            c.call(ApiKey::CreateTopics, v, &req).await,
        );
        assert_eq!(r.topics[0].error_code, 17, "CreateTopics v{v}");
    }
    for v in range(ApiKey::DeleteTopics).filter(|v| *v < 6) {
        let mut req = DeleteTopicsRequest::default();
        req.topic_names = vec![topic_name("missing")];
        let r: DeleteTopicsResponse = decode(
            ApiKey::DeleteTopics,
            v,
            c.call(ApiKey::DeleteTopics, v, &req).await,
        );
        assert_eq!(r.responses[0].error_code, 3, "DeleteTopics v{v}");
    }
    for v in range(ApiKey::ListOffsets) {
        let mut req = ListOffsetsRequest::default();
        req.replica_id = BrokerId(-1);
        req.topics = vec![ListOffsetsTopic::default()
            .with_name(topic_name("missing"))
            .with_partitions(vec![ListOffsetsPartition::default().with_timestamp(-2)])];
        let r: ListOffsetsResponse = decode(
            ApiKey::ListOffsets,
            v,
            c.call(ApiKey::ListOffsets, v, &req).await,
        );
        assert_eq!(r.topics[0].partitions[0].error_code, 3, "ListOffsets v{v}");
    }
    broker.shutdown().await;
}
