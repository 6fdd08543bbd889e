//! The admin APIs a client library calls, answered as a single-node cluster: librdkafka's
//! `rd_kafka_DescribeCluster` (the Rust crate has no wrapper; librdkafka answers it from
//! Metadata, authorized operations included) and the DescribeCluster API itself by raw
//! requests, with its endpoint-type errors; OffsetForLeaderEpoch through a librdkafka consumer
//! validating a seek with a leader epoch (and taking a position past the end as truncation) and raw
//! requests for every epoch case; DescribeLogDirs with partition sizes and disk space;
//! DescribeTopicPartitions paging with its cursor; ElectLeaders (never needed) and
//! ListPartitionReassignments (none in progress); AlterPartitionReassignments (only this node).

mod common;

use std::ffi::CStr;
use std::time::Duration;

use common::*;
use kafka_protocol::messages::alter_partition_reassignments_request::{
    AlterPartitionReassignmentsRequest, ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::describe_topic_partitions_request::{
    Cursor as PartitionsCursor, TopicRequest as PartitionsTopic,
};
use kafka_protocol::messages::elect_leaders_request::{
    ElectLeadersRequest, TopicPartitions as ElectTopicPartitions,
};
use kafka_protocol::messages::list_partition_reassignments_request::{
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsTopics,
};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    DescribeClusterRequest, DescribeLogDirsRequest, DescribeTopicPartitionsRequest,
    MetadataRequest, OffsetForLeaderEpochRequest,
};
use kafka_protocol::ResponseError;
use rdkafka::bindings as rd;
use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};

/// Kafka's cluster operations with no authorizer: CREATE, ALTER, DESCRIBE, CLUSTER_ACTION,
/// DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE as a bit field.
const CLUSTER_OPERATIONS: i32 = 1 << 5 | 1 << 7 | 1 << 8 | 1 << 9 | 1 << 10 | 1 << 11 | 1 << 12;
/// Kafka's topic operations with no authorizer: READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE,
/// DESCRIBE_CONFIGS, ALTER_CONFIGS.
const TOPIC_OPERATIONS: i32 =
    1 << 3 | 1 << 4 | 1 << 5 | 1 << 6 | 1 << 7 | 1 << 8 | 1 << 10 | 1 << 11;

/// What librdkafka's DescribeCluster result holds.
#[derive(Debug)]
struct Described {
    cluster_id: String,
    controller: Option<i32>,
    nodes: Vec<(i32, String, u16)>,
    operations: Vec<i32>,
}

/// Calls `rd_kafka_DescribeCluster` on a fresh admin client and waits for its result. (librdkafka
/// sends a Metadata request for it, at v8–10 when operations are asked for.)
fn librdkafka_describe_cluster(bootstrap: &str, with_operations: bool) -> Described {
    let admin = admin(bootstrap);
    let rk = admin.inner().native_ptr();
    // SAFETY: every pointer comes from librdkafka for this client and is released below, after
    // its last use; strings are copied out before the event is destroyed.
    unsafe {
        let queue = rd::rd_kafka_queue_new(rk);
        let options = rd::rd_kafka_AdminOptions_new(
            rk,
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBECLUSTER,
        );
        if with_operations {
            let error = rd::rd_kafka_AdminOptions_set_include_authorized_operations(options, 1);
            assert!(error.is_null(), "include_authorized_operations refused");
        }
        rd::rd_kafka_DescribeCluster(rk, options, queue);
        let event = rd::rd_kafka_queue_poll(queue, 15_000);
        assert!(!event.is_null(), "no DescribeCluster result within 15 s");
        let err = rd::rd_kafka_event_error(event);
        assert_eq!(
            err,
            rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR,
            "DescribeCluster failed: {:?}",
            CStr::from_ptr(rd::rd_kafka_event_error_string(event))
        );
        let result = rd::rd_kafka_event_DescribeCluster_result(event);
        assert!(!result.is_null());
        let text = |p: *const std::os::raw::c_char| {
            (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().into_owned())
        };
        let node = |n: *const rd::rd_kafka_Node_t| {
            (
                rd::rd_kafka_Node_id(n),
                text(rd::rd_kafka_Node_host(n)).unwrap_or_default(),
                rd::rd_kafka_Node_port(n),
            )
        };
        let cluster_id =
            text(rd::rd_kafka_DescribeCluster_result_cluster_id(result)).unwrap_or_default();
        let controller = rd::rd_kafka_DescribeCluster_result_controller(result);
        let controller = (!controller.is_null()).then(|| rd::rd_kafka_Node_id(controller));
        let mut count = 0usize;
        let nodes_ptr = rd::rd_kafka_DescribeCluster_result_nodes(result, &mut count);
        let nodes = (0..count).map(|i| node(*nodes_ptr.add(i))).collect();
        let mut ops = 0usize;
        let ops_ptr = rd::rd_kafka_DescribeCluster_result_authorized_operations(result, &mut ops);
        let operations = (0..ops).map(|i| *ops_ptr.add(i) as i32).collect();
        rd::rd_kafka_event_destroy(event);
        rd::rd_kafka_AdminOptions_destroy(options);
        rd::rd_kafka_queue_destroy(queue);
        Described {
            cluster_id,
            controller,
            nodes,
            operations,
        }
    }
}

#[test]
fn describe_cluster_through_librdkafka_names_this_node_as_broker_and_controller() {
    let _dog = watchdog(Duration::from_secs(60));
    let broker = Broker::start(&[]);
    let metadata = RawClient::connect(broker.addr()).call(12, &MetadataRequest::default());
    let cluster_id = metadata
        .cluster_id
        .expect("metadata cluster id")
        .to_string();
    let port = broker.addr().port();

    let plain = librdkafka_describe_cluster(&broker.bootstrap(), false);
    assert_eq!(plain.cluster_id, cluster_id);
    let node = metadata.controller_id.0;
    assert_eq!(plain.controller, Some(node));
    assert_eq!(plain.nodes, vec![(node, "127.0.0.1".to_string(), port)]);
    assert!(plain.operations.is_empty(), "{:?}", plain.operations);

    let with_ops = librdkafka_describe_cluster(&broker.bootstrap(), true);
    let mut ops = with_ops.operations.clone();
    ops.sort();
    // librdkafka's rd_kafka_AclOperation_t codes are Kafka's.
    assert_eq!(ops, vec![5, 7, 8, 9, 10, 11, 12]);
}

#[test]
fn describe_cluster_raw_answers_every_version_and_refuses_other_endpoint_types() {
    let _dog = watchdog(Duration::from_secs(60));
    let broker = Broker::with_overrides(&[("node.id", "3")]);
    let mut raw = RawClient::connect(broker.addr());
    for version in 0..=2 {
        let response = raw.call(version, &DescribeClusterRequest::default());
        assert_eq!(response.error_code, 0, "v{version}");
        assert_eq!(response.controller_id.0, 3, "v{version}");
        assert_eq!(response.endpoint_type, 1, "v{version}");
        assert!(!response.cluster_id.is_empty());
        let brokers: Vec<(i32, i32)> = response
            .brokers
            .iter()
            .map(|b| (b.broker_id.0, b.port))
            .collect();
        assert_eq!(brokers, vec![(3, i32::from(broker.addr().port()))]);
        assert_eq!(response.cluster_authorized_operations, i32::MIN);
        let asked = raw.call(
            version,
            &DescribeClusterRequest::default().with_include_cluster_authorized_operations(true),
        );
        assert_eq!(asked.cluster_authorized_operations, CLUSTER_OPERATIONS);
    }
    let controllers = raw.call(1, &DescribeClusterRequest::default().with_endpoint_type(2));
    assert_eq!(
        controllers.error_code,
        ResponseError::MismatchedEndpointType.code()
    );
    assert!(controllers.brokers.is_empty());
    assert_eq!(controllers.controller_id.0, -1);
    let unknown = raw.call(2, &DescribeClusterRequest::default().with_endpoint_type(7));
    assert_eq!(
        unknown.error_code,
        ResponseError::UnsupportedEndpointType.code()
    );
    assert_eq!(
        unknown.error_message.as_deref(),
        Some("Unsupported endpoint type 7")
    );
}

/// Produces `count` messages to partition 0 of `topic`.
async fn fill(bootstrap: &str, topic: &str, count: usize) {
    let p = producer(bootstrap, &[]);
    for i in 0..count {
        within(
            Duration::from_secs(30),
            "send",
            send_to_partition0(&p, topic, "k", format!("v{i}").as_bytes()).unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    }
}

fn epoch_request(topic: &str, partitions: &[(i32, i32, i32)]) -> OffsetForLeaderEpochRequest {
    OffsetForLeaderEpochRequest::default()
        .with_replica_id((-1).into())
        .with_topics(vec![OffsetForLeaderTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(
                partitions
                    .iter()
                    .map(|&(partition, current, epoch)| {
                        OffsetForLeaderPartition::default()
                            .with_partition(partition)
                            .with_current_leader_epoch(current)
                            .with_leader_epoch(epoch)
                    })
                    .collect(),
            )])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_for_leader_epoch_answers_epoch_zero_with_the_log_end_and_checks_current_epochs() {
    let _dog = watchdog(Duration::from_secs(90));
    let broker = Broker::start(&[]);
    let topic = "epochs";
    create_topic(&broker.bootstrap(), topic, 2).await;
    fill(&broker.bootstrap(), topic, 5).await;
    let mut raw = RawClient::connect(broker.addr());
    for version in 2..=4 {
        let request = epoch_request(
            topic,
            &[
                (0, 0, 0),   // the current epoch: the log end
                (1, -1, 0),  // no current epoch given; an empty partition
                (0, -1, 1),  // a later epoch than any: none
                (0, -1, -1), // undefined
                (0, -1, -3), // older than the first epoch: its start offset
                (0, 1, 0),   // the client knows a newer leader epoch than the broker
                (0, -2, 0),  // the client's leader epoch is older
                (9, 0, 0),   // no such partition
            ],
        );
        let response = raw.call(version, &request);
        assert_eq!(response.topics.len(), 1);
        assert_eq!(response.topics[0].topic.as_str(), topic);
        let got: Vec<(i32, i16, i32, i64)> = response.topics[0]
            .partitions
            .iter()
            .map(|p| (p.partition, p.error_code, p.leader_epoch, p.end_offset))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, 0, 0, 5),
                (1, 0, 0, 0),
                (0, 0, -1, -1),
                (0, 0, -1, -1),
                (0, 0, -3, 0),
                (0, ResponseError::UnknownLeaderEpoch.code(), -1, -1),
                (0, ResponseError::FencedLeaderEpoch.code(), -1, -1),
                (9, ResponseError::UnknownTopicOrPartition.code(), -1, -1),
            ],
            "v{version}"
        );
    }
    let missing = raw.call(4, &epoch_request("no-such-topic", &[(0, 0, 0)]));
    assert_eq!(
        missing.topics[0].partitions[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
}

/// Seeks partition 0 of `topic` to `offset` at leader epoch 0, which makes librdkafka validate
/// the position with OffsetForLeaderEpoch before fetching.
fn seek_with_epoch(consumer: &rdkafka::consumer::BaseConsumer, topic: &str, offset: i64) {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(offset))
        .unwrap();
    // SAFETY: the list holds exactly one element, just added.
    unsafe { rd::rd_kafka_topic_partition_set_leader_epoch((*tpl.ptr()).elems, 0) };
    consumer
        .seek_partitions(tpl, Duration::from_secs(10))
        .expect("seek");
}

fn offset_for_leader_epoch_answers(broker: &Broker) -> u64 {
    let (_, text) = http_get(broker.admin_addr(), "/metrics");
    text.lines()
        .find(|l| {
            l.starts_with("starling_response_error_codes_total{")
                && l.contains(r#"api="OffsetForLeaderEpoch""#)
                && l.contains(r#"error="NONE""#)
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_validates_a_seek_with_a_leader_epoch_and_detects_truncation_past_the_end() {
    let _dog = watchdog(Duration::from_secs(120));
    let broker = Broker::start(&[]);
    let topic = "validated";
    create_topic(&broker.bootstrap(), topic, 1).await;
    fill(&broker.bootstrap(), topic, 10).await;
    let before = offset_for_leader_epoch_answers(&broker);

    let c = consumer(&broker.bootstrap(), &[]);
    assign(&c, topic, &[(0, Offset::Beginning)]);
    let first = consume_until(&c, Duration::from_secs(30), |got| !got.is_empty());
    assert_eq!(first[0].offset, 0);
    seek_with_epoch(&c, topic, 6);
    let after_seek = consume_until(&c, Duration::from_secs(30), |got| {
        got.iter().any(|m| m.offset == 9)
    });
    let offsets: Vec<i64> = after_seek.iter().map(|m| m.offset).collect();
    assert!(offsets.ends_with(&[6, 7, 8, 9]), "{offsets:?}");
    assert!(
        offset_for_leader_epoch_answers(&broker) > before,
        "librdkafka did not validate through OffsetForLeaderEpoch"
    );

    // Past the log end at the current epoch: the broker's end offset (10) is below the
    // position, which librdkafka takes as log truncation and, with a reset policy, resumes at
    // that end offset. (Without validation the fetch at 15 would be out of range and
    // `earliest` would restart at 0.)
    let c = consumer(&broker.bootstrap(), &[("auto.offset.reset", "earliest")]);
    assign(&c, topic, &[(0, Offset::Offset(9))]);
    let last = consume_until(&c, Duration::from_secs(30), |got| !got.is_empty());
    assert_eq!(last[0].offset, 9);
    seek_with_epoch(&c, topic, 15);
    tokio::time::sleep(Duration::from_secs(1)).await;
    fill(&broker.bootstrap(), topic, 2).await;
    let resumed = consume_until(&c, Duration::from_secs(30), |got| !got.is_empty());
    assert_eq!(resumed[0].offset, 10, "{resumed:?}");
}

/// A partition in DescribeLogDirs: index, size, offset lag, is future.
type PartitionDir = (i32, i64, i64, bool);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_log_dirs_lists_the_data_dir_with_partition_sizes_and_disk_space() {
    let _dog = watchdog(Duration::from_secs(90));
    let broker = Broker::start(&[]);
    create_topic(&broker.bootstrap(), "sized", 2).await;
    create_topic(&broker.bootstrap(), "other", 1).await;
    fill(&broker.bootstrap(), "sized", 4).await;
    let data_dir = std::fs::canonicalize(broker.data_dir()).unwrap();
    let on_disk = |p: i32| -> i64 {
        log_files(&broker.partition_dir("sized", p))
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "log"))
            .map(|f| std::fs::metadata(f).unwrap().len() as i64)
            .sum()
    };
    let mut raw = RawClient::connect(broker.addr());
    for version in 1..=4 {
        let all = raw.call(
            version,
            &DescribeLogDirsRequest::default().with_topics(None),
        );
        assert_eq!(all.error_code, 0);
        assert_eq!(all.results.len(), 1, "v{version}");
        let dir = &all.results[0];
        assert_eq!(dir.error_code, 0);
        assert_eq!(
            std::fs::canonicalize(dir.log_dir.as_str()).unwrap(),
            data_dir
        );
        let listed: Vec<(String, Vec<PartitionDir>)> = dir
            .topics
            .iter()
            .map(|t| {
                (
                    t.name.to_string(),
                    t.partitions
                        .iter()
                        .map(|p| {
                            (
                                p.partition_index,
                                p.partition_size,
                                p.offset_lag,
                                p.is_future_key,
                            )
                        })
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            listed,
            vec![
                ("other".to_string(), vec![(0, 0, 0, false)]),
                (
                    "sized".to_string(),
                    vec![(0, on_disk(0), 0, false), (1, 0, 0, false)]
                ),
            ],
            "v{version}"
        );
        assert!(on_disk(0) > 0);
        if version >= 4 {
            assert!(dir.total_bytes > 0 && dir.usable_bytes > 0, "{dir:?}");
            assert!(dir.usable_bytes <= dir.total_bytes);
        }
    }
    // Only what was asked for; topics and partitions the broker lacks are left out.
    let some = raw.call(
        4,
        &DescribeLogDirsRequest::default().with_topics(Some(vec![
            DescribableLogDirTopic::default()
                .with_topic(topic_name("sized"))
                .with_partitions(vec![1, 7]),
            DescribableLogDirTopic::default()
                .with_topic(topic_name("missing"))
                .with_partitions(vec![0]),
        ])),
    );
    let listed: Vec<(String, Vec<i32>)> = some.results[0]
        .topics
        .iter()
        .map(|t| {
            (
                t.name.to_string(),
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    assert_eq!(listed, vec![("sized".to_string(), vec![1])]);
    let none = raw.call(4, &DescribeLogDirsRequest::default());
    assert!(none.results[0].topics.is_empty());
}

/// `(topic, error, [partition indexes])` of a DescribeTopicPartitions answer, and its cursor.
type TopicsPage = (Vec<(String, i16, Vec<i32>)>, Option<(String, i32)>);

fn describe_partitions(
    raw: &mut RawClient,
    topics: &[&str],
    limit: i32,
    cursor: Option<(&str, i32)>,
) -> TopicsPage {
    let request = DescribeTopicPartitionsRequest::default()
        .with_topics(
            topics
                .iter()
                .map(|t| PartitionsTopic::default().with_name(topic_name(t)))
                .collect(),
        )
        .with_response_partition_limit(limit)
        .with_cursor(cursor.map(|(topic, partition)| {
            PartitionsCursor::default()
                .with_topic_name(topic_name(topic))
                .with_partition_index(partition)
        }));
    let response = raw.call(0, &request);
    let topics = response
        .topics
        .iter()
        .map(|t| {
            (
                t.name.as_ref().map(|n| n.to_string()).unwrap_or_default(),
                t.error_code,
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    let cursor = response
        .next_cursor
        .map(|c| (c.topic_name.to_string(), c.partition_index));
    (topics, cursor)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_topic_partitions_pages_through_topics_with_a_cursor() {
    let _dog = watchdog(Duration::from_secs(90));
    let broker = Broker::start(&[]);
    create_topic(&broker.bootstrap(), "alpha", 3).await;
    create_topic(&broker.bootstrap(), "beta", 2).await;
    create_topic(&broker.bootstrap(), "gamma", 1).await;
    let mut raw = RawClient::connect(broker.addr());
    let ok = |name: &str, partitions: &[i32]| (name.to_string(), 0i16, partitions.to_vec());

    // Everything, with the partitions' single-node details.
    let all = raw.call(0, &DescribeTopicPartitionsRequest::default());
    let metadata = RawClient::connect(broker.addr()).call(12, &MetadataRequest::default());
    let node = metadata.controller_id;
    assert_eq!(all.next_cursor, None);
    assert_eq!(all.topics.len(), 3);
    for topic in &all.topics {
        assert_eq!(topic.topic_authorized_operations, TOPIC_OPERATIONS);
        assert!(!topic.topic_id.is_nil());
        for p in &topic.partitions {
            assert_eq!((p.error_code, p.leader_id, p.leader_epoch), (0, node, 0));
            assert_eq!(
                (p.replica_nodes.clone(), p.isr_nodes.clone()),
                (vec![node], vec![node])
            );
            assert_eq!(p.eligible_leader_replicas, Some(vec![]));
            assert_eq!(p.last_known_elr, Some(vec![]));
            assert!(p.offline_replicas.is_empty());
        }
    }

    // Pages of two partitions: the cursor cuts inside a topic, then at a topic's start.
    let page1 = describe_partitions(&mut raw, &[], 2, None);
    assert_eq!(
        page1,
        (vec![ok("alpha", &[0, 1])], Some(("alpha".into(), 2)))
    );
    let page2 = describe_partitions(&mut raw, &[], 2, Some(("alpha", 2)));
    assert_eq!(
        page2,
        (
            vec![ok("alpha", &[2]), ok("beta", &[0])],
            Some(("beta".into(), 1))
        )
    );
    let page3 = describe_partitions(&mut raw, &[], 2, Some(("beta", 1)));
    assert_eq!(page3, (vec![ok("beta", &[1]), ok("gamma", &[0])], None));
    let exact = describe_partitions(&mut raw, &[], 3, None);
    assert_eq!(
        exact,
        (vec![ok("alpha", &[0, 1, 2])], Some(("beta".into(), 0)))
    );

    // Named topics, in name order, unknown and invalid ones with their errors; topics before
    // the cursor's are left out.
    let named = describe_partitions(&mut raw, &["gamma", "nope", "bad/name", "beta"], 2000, None);
    assert_eq!(
        named,
        (
            vec![
                (
                    "bad/name".to_string(),
                    ResponseError::InvalidTopicException.code(),
                    vec![]
                ),
                ok("beta", &[0, 1]),
                ok("gamma", &[0]),
                (
                    "nope".to_string(),
                    ResponseError::UnknownTopicOrPartition.code(),
                    vec![]
                ),
            ],
            None
        )
    );
    let after = describe_partitions(&mut raw, &["alpha", "gamma"], 2000, Some(("gamma", 0)));
    assert_eq!(after, (vec![ok("gamma", &[0])], None));
    let past_end = describe_partitions(&mut raw, &["gamma"], 2000, Some(("gamma", 5)));
    assert_eq!(past_end, (vec![ok("gamma", &[])], None));

    // A cursor outside the topics asked for, or at a negative partition: INVALID_REQUEST.
    let invalid = ResponseError::InvalidRequest.code();
    let outside = describe_partitions(&mut raw, &["alpha"], 2000, Some(("beta", 0)));
    assert_eq!(
        outside,
        (vec![("alpha".to_string(), invalid, vec![])], None)
    );
    let negative = describe_partitions(&mut raw, &["alpha"], 2000, Some(("alpha", -1)));
    assert_eq!(
        negative,
        (vec![("alpha".to_string(), invalid, vec![])], None)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elect_leaders_is_never_needed_and_no_reassignment_is_in_progress() {
    let _dog = watchdog(Duration::from_secs(60));
    let broker = Broker::start(&[]);
    create_topic(&broker.bootstrap(), "led", 2).await;
    let mut raw = RawClient::connect(broker.addr());
    let not_needed = ResponseError::ElectionNotNeeded.code();
    let unknown = ResponseError::UnknownTopicOrPartition.code();
    for (version, election_type) in [(0, 0), (1, 0), (1, 1), (2, 0), (2, 1)] {
        let request = ElectLeadersRequest::default()
            .with_election_type(election_type)
            .with_topic_partitions(Some(vec![
                ElectTopicPartitions::default()
                    .with_topic(topic_name("led"))
                    .with_partitions(vec![0, 1, 5]),
                ElectTopicPartitions::default()
                    .with_topic(topic_name("missing"))
                    .with_partitions(vec![0]),
            ]));
        let response = raw.call(version, &request);
        assert_eq!(response.error_code, 0);
        let got: Vec<(String, i32, i16, String)> = response
            .replica_election_results
            .iter()
            .flat_map(|t| {
                t.partition_result.iter().map(|p| {
                    (
                        t.topic.to_string(),
                        p.partition_id,
                        p.error_code,
                        p.error_message.as_deref().unwrap_or_default().to_string(),
                    )
                })
            })
            .collect();
        let needless = "Leader election not needed for topic partition.".to_string();
        assert_eq!(
            got,
            vec![
                ("led".into(), 0, not_needed, needless.clone()),
                ("led".into(), 1, not_needed, needless),
                (
                    "led".into(),
                    5,
                    unknown,
                    "No such partition as led-5".into()
                ),
                (
                    "missing".into(),
                    0,
                    unknown,
                    "No such topic as missing".into()
                ),
            ],
            "v{version} type {election_type}"
        );
    }
    // Every partition: only those that needed an election are listed, so none.
    let all = raw.call(
        2,
        &ElectLeadersRequest::default().with_topic_partitions(None),
    );
    assert_eq!(all.error_code, 0);
    assert!(all.replica_election_results.is_empty());
    let bad_type = raw.call(
        2,
        &ElectLeadersRequest::default()
            .with_election_type(7)
            .with_topic_partitions(None),
    );
    assert_eq!(bad_type.error_code, ResponseError::InvalidRequest.code());

    for topics in [
        None,
        Some(vec![ListPartitionReassignmentsTopics::default()
            .with_name(topic_name("led"))
            .with_partition_indexes(vec![0, 1])]),
    ] {
        let listed = raw.call(
            0,
            &ListPartitionReassignmentsRequest::default().with_topics(topics),
        );
        assert_eq!(listed.error_code, 0);
        assert!(listed.topics.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alter_partition_reassignments_accepts_only_this_node() {
    let _dog = watchdog(Duration::from_secs(60));
    let broker = Broker::start(&[]);
    create_topic(&broker.bootstrap(), "placed", 2).await;
    let metadata = RawClient::connect(broker.addr()).call(12, &MetadataRequest::default());
    let node = metadata.controller_id.0;
    let other = node + 1;
    let mut raw = RawClient::connect(broker.addr());
    let partition = |index, replicas: Option<Vec<i32>>| {
        ReassignablePartition::default()
            .with_partition_index(index)
            .with_replicas(replicas.map(|r| r.into_iter().map(Into::into).collect()))
    };
    for version in 0..=1 {
        let request = AlterPartitionReassignmentsRequest::default().with_topics(vec![
            ReassignableTopic::default()
                .with_name(topic_name("placed"))
                .with_partitions(vec![
                    partition(0, Some(vec![node])),
                    partition(1, Some(vec![node, other])),
                    partition(0, Some(vec![node, node])),
                    partition(1, Some(vec![])),
                    partition(0, None),
                    partition(4, Some(vec![node])),
                ]),
            ReassignableTopic::default()
                .with_name(topic_name("missing"))
                .with_partitions(vec![partition(0, Some(vec![node]))]),
        ]);
        let response = raw.call(version, &request);
        assert_eq!(response.error_code, 0);
        let got: Vec<(i32, i16, String)> = response
            .responses
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| {
                    (
                        p.partition_index,
                        p.error_code,
                        p.error_message.as_deref().unwrap_or_default().to_string(),
                    )
                })
            })
            .collect();
        let invalid = ResponseError::InvalidReplicaAssignment.code();
        assert_eq!(
            got,
            vec![
                (0, 0, String::new()),
                (1, invalid, format!("The manual partition assignment includes broker {other}, but no broker with that ID is registered.")),
                (0, invalid, format!("The manual partition assignment includes the broker {node} more than once.")),
                (1, invalid, "The manual partition assignment includes an empty replica list.".into()),
                (0, ResponseError::NoReassignmentInProgress.code(), "No partition reassignment is in progress.".into()),
                (4, ResponseError::UnknownTopicOrPartition.code(), "Unable to find partition placed:4.".into()),
                (0, ResponseError::UnknownTopicOrPartition.code(), "Unable to find a topic named missing.".into()),
            ],
            "v{version}"
        );
    }
    // Nothing moved: the partitions still have this node as their only replica.
    let after = raw.call(0, &DescribeTopicPartitionsRequest::default());
    for p in &after.topics[0].partitions {
        assert_eq!(p.replica_nodes, vec![metadata.controller_id]);
    }
}
