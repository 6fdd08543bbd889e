//! ACL enforcement end to end: a broker with `authorizer.class.name` set to the
//! StandardAuthorizer and `super.users=User:admin` answers `User:ANONYMOUS` (every connection
//! until SASL authenticates them) as Kafka does. The ACLs are created while ANONYMOUS is a super
//! user, then the broker restarts without that (ACLs and topics persist), so every check below is
//! made against the ACLs alone. librdkafka is the judge for consuming in a group, producing and
//! group membership; raw requests cover the long tail of admin APIs.

mod common;

use std::time::{Duration, Instant};

use common::*;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::Message;

const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";
const ANONYMOUS: &str = "User:ANONYMOUS";

const TOPIC: i8 = 2;
const GROUP: i8 = 3;
const CLUSTER: i8 = 4;
const TRANSACTIONAL_ID: i8 = 5;
const LITERAL: i8 = 3;
const PREFIXED: i8 = 4;
const READ: i8 = 3;
const WRITE: i8 = 4;
const DESCRIBE: i8 = 8;
const ALLOW: i8 = 3;
const DENY: i8 = 2;

const TOPIC_AUTH: i16 = ResponseError::TopicAuthorizationFailed.code();
const GROUP_AUTH: i16 = ResponseError::GroupAuthorizationFailed.code();
const CLUSTER_AUTH: i16 = ResponseError::ClusterAuthorizationFailed.code();
const TXN_AUTH: i16 = ResponseError::TransactionalIdAuthorizationFailed.code();

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn acl(resource_type: i8, name: &str, pattern: i8, operation: i8, permission: i8) -> AclCreation {
    AclCreation::default()
        .with_resource_type(resource_type)
        .with_resource_name(s(name))
        .with_resource_pattern_type(pattern)
        .with_principal(s(ANONYMOUS))
        .with_host(s("*"))
        .with_operation(operation)
        .with_permission_type(permission)
}

fn allow(resource_type: i8, name: &str, operation: i8) -> AclCreation {
    acl(resource_type, name, LITERAL, operation, ALLOW)
}

/// A broker holding `topics` (one partition, three records each) and `acls`, restarted so
/// that only `User:admin` is a super user: ANONYMOUS has exactly what `acls` grant.
fn restricted(topics: &[&str], acls: Vec<AclCreation>) -> Broker {
    let mut broker = Broker::with_overrides(&[
        ("authorizer.class.name", STANDARD_AUTHORIZER),
        ("super.users", "User:admin;User:ANONYMOUS"),
    ]);
    let mut raw = RawClient::connect(broker.addr());
    raw_create_topics(&mut raw, topics);
    for topic in topics {
        let batch = record_batch(
            &[
                (Some(b"k"), Some(b"one")),
                (Some(b"k"), Some(b"two")),
                (Some(b"k"), Some(b"three")),
            ],
            now_ms(),
        );
        let produced = raw_produce(&mut raw, 7, topic, 0, batch);
        assert_eq!(produced.error_code, 0, "{topic}: {produced:?}");
    }
    if !acls.is_empty() {
        let made = raw.call(3, &CreateAclsRequest::default().with_creations(acls));
        assert!(made.results.iter().all(|r| r.error_code == 0), "{made:?}");
    }
    drop(raw);
    broker.restart_with_overrides(&[
        ("authorizer.class.name", STANDARD_AUTHORIZER),
        ("super.users", "User:admin"),
    ]);
    broker
}

fn group_consumer(bootstrap: &str, group: &str) -> BaseConsumer {
    client_config(
        bootstrap,
        &[
            ("group.id", group),
            ("enable.auto.commit", "false"),
            ("auto.offset.reset", "earliest"),
            ("session.timeout.ms", "6000"),
        ],
    )
    .create()
    .expect("create consumer")
}

/// Leaves the group (unsubscribing, then serving the consumer's queue for the rebalance) before
/// the consumer is dropped.
fn close(consumer: BaseConsumer) {
    consumer.unsubscribe();
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        let _ = consumer.poll(Duration::from_millis(100));
    }
    drop(consumer);
}

/// Polls until a consumer error with `code` arrives (panics on a message or after 20 s).
fn expect_consumer_error(consumer: &BaseConsumer, code: RDKafkaErrorCode) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Ok(m)) => panic!("expected {code:?}, consumed a message at {}", m.offset()),
            Some(Err(e)) if e.rdkafka_error_code() == Some(code) => return,
            Some(Err(e)) => eprintln!("consumer error while waiting for {code:?}: {e}"),
        }
    }
    panic!("no {code:?} within 20 s");
}

/// Metadata topic names with their error codes.
fn metadata_topics(broker: &Broker, topics: Option<&[&str]>) -> Vec<(String, i16)> {
    let mut listed: Vec<(String, i16)> = raw_metadata(broker.addr(), topics, true)
        .topics
        .iter()
        .map(|t| {
            (
                t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default(),
                t.error_code,
            )
        })
        .collect();
    listed.sort();
    listed
}

#[test]
fn a_reader_of_a_in_g_consumes_a_in_g_and_nothing_else() {
    let _watchdog = watchdog(Duration::from_secs(120));
    let broker = restricted(
        &["a", "b"],
        vec![allow(TOPIC, "a", READ), allow(GROUP, "g", READ)],
    );
    let bootstrap = broker.bootstrap();

    // Metadata: b is hidden from the full list, and refused (like a name that does not exist,
    // whose existence is not leaked, nor auto-created) when named.
    assert_eq!(metadata_topics(&broker, None), vec![("a".to_string(), 0)]);
    assert_eq!(
        metadata_topics(&broker, Some(&["a", "b", "nowhere"])),
        vec![
            ("a".to_string(), 0),
            ("b".to_string(), TOPIC_AUTH),
            ("nowhere".to_string(), TOPIC_AUTH),
        ]
    );

    // Consuming a in g, and committing, works.
    let consumer = group_consumer(&bootstrap, "g");
    consumer.subscribe(&["a"]).expect("subscribe");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut values = Vec::new();
    while values.len() < 3 && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => values.push(String::from_utf8_lossy(m.payload().unwrap()).to_string()),
            Some(Err(e)) => panic!("consuming a in g: {e}"),
            None => {}
        }
    }
    assert_eq!(values, ["one", "two", "three"]);
    consumer
        .commit_consumer_state(CommitMode::Sync)
        .expect("commit in g");
    close(consumer);
    // The commit is there (read back by a raw OffsetFetch: librdkafka's `committed()` leaves a
    // consumer that then never finishes closing, with or without ACLs).
    let fetched = RawClient::connect(broker.addr()).call(
        7,
        &OffsetFetchRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_topics(Some(vec![
                offset_fetch_request::OffsetFetchRequestTopic::default()
                    .with_name(topic_name("a"))
                    .with_partition_indexes(vec![0]),
            ])),
    );
    assert_eq!(
        fetched.topics[0].partitions[0].committed_offset, 3,
        "{fetched:?}"
    );

    // b in g: the topic is refused.
    let consumer = group_consumer(&bootstrap, "g");
    consumer.subscribe(&["b"]).expect("subscribe");
    expect_consumer_error(&consumer, RDKafkaErrorCode::TopicAuthorizationFailed);
    close(consumer);

    // a in another group: the group is refused.
    let consumer = group_consumer(&bootstrap, "h");
    consumer.subscribe(&["a"]).expect("subscribe");
    expect_consumer_error(&consumer, RDKafkaErrorCode::GroupAuthorizationFailed);
    close(consumer);

    // Reading is not writing.
    let mut raw = RawClient::connect(broker.addr());
    let produced = raw_produce(
        &mut raw,
        7,
        "a",
        0,
        record_batch(&[(None, Some(b"x"))], now_ms()),
    );
    assert_eq!(produced.error_code, TOPIC_AUTH);
    // Fetching b directly is refused too.
    assert_eq!(
        raw_fetch(broker.addr(), "b", 0, 0, 0).error_code,
        TOPIC_AUTH
    );
    assert_eq!(raw_fetch(broker.addr(), "a", 0, 0, 0).error_code, 0);
}

#[test]
fn a_member_without_group_read_cannot_join() {
    let _watchdog = watchdog(Duration::from_secs(90));
    // DESCRIBE on the group finds its coordinator; joining needs READ.
    let broker = restricted(
        &["a"],
        vec![allow(TOPIC, "a", READ), allow(GROUP, "g", DESCRIBE)],
    );
    let mut raw = RawClient::connect(broker.addr());
    let found = raw.call(
        2,
        &FindCoordinatorRequest::default()
            .with_key(s("g"))
            .with_key_type(0),
    );
    assert_eq!(found.error_code, 0, "{found:?}");
    let joined = raw.call(
        5,
        &JoinGroupRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(10_000)
            .with_member_id(s(""))
            .with_protocol_type(s("consumer"))
            .with_protocols(vec![JoinGroupRequestProtocol::default()
                .with_name(s("range"))
                .with_metadata(bytes::Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 0]))]),
    );
    assert_eq!(joined.error_code, GROUP_AUTH, "{joined:?}");

    let consumer = group_consumer(&broker.bootstrap(), "g");
    consumer.subscribe(&["a"]).expect("subscribe");
    expect_consumer_error(&consumer, RDKafkaErrorCode::GroupAuthorizationFailed);
    close(consumer);
}

#[test]
fn deny_beats_allow_and_prefixed_patterns_match_by_prefix() {
    let _watchdog = watchdog(Duration::from_secs(90));
    let broker = restricted(
        &["app-one", "app-secret", "other"],
        vec![
            acl(TOPIC, "app-", PREFIXED, READ, ALLOW),
            acl(TOPIC, "app-secret", LITERAL, READ, DENY),
        ],
    );
    assert_eq!(raw_fetch(broker.addr(), "app-one", 0, 0, 0).error_code, 0);
    assert_eq!(
        raw_fetch(broker.addr(), "app-secret", 0, 0, 0).error_code,
        TOPIC_AUTH
    );
    assert_eq!(
        raw_fetch(broker.addr(), "other", 0, 0, 0).error_code,
        TOPIC_AUTH
    );
    // The prefixed READ implies DESCRIBE, which the DENY of READ alone does not take away.
    assert_eq!(
        metadata_topics(&broker, None),
        vec![("app-one".to_string(), 0), ("app-secret".to_string(), 0)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_producer_writes_where_it_may_write() {
    let _watchdog = watchdog(Duration::from_secs(90));
    let broker = restricted(&["a", "b"], vec![allow(TOPIC, "a", WRITE)]);
    let bootstrap = broker.bootstrap();
    // WRITE on some topic is enough for a producer id (KIP-679).
    let producer = producer(&bootstrap, &[("enable.idempotence", "true")]);
    let delivered = within(
        Duration::from_secs(30),
        "produce to a",
        send_to_partition0(&producer, "a", "k", b"v").expect("enqueue"),
    )
    .await
    .expect("delivery future");
    assert!(delivered.is_ok(), "{delivered:?}");
    let refused = within(
        Duration::from_secs(30),
        "produce to b",
        send_to_partition0(&producer, "b", "k", b"v").expect("enqueue"),
    )
    .await
    .expect("delivery future");
    match refused {
        Err((KafkaError::MessageProduction(code), _)) => {
            assert_eq!(code, RDKafkaErrorCode::TopicAuthorizationFailed)
        }
        other => panic!("expected TOPIC_AUTHORIZATION_FAILED, got {other:?}"),
    }
    // A transactional id needs its own WRITE grant.
    let mut raw = RawClient::connect(broker.addr());
    let init = raw.call(
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(s("tx"))))
            .with_transaction_timeout_ms(60_000)
            .with_producer_id((-1).into())
            .with_producer_epoch(-1),
    );
    assert_eq!(init.error_code, TXN_AUTH);
}

#[test]
fn every_admin_api_answers_its_authorization_error() {
    let _watchdog = watchdog(Duration::from_secs(90));
    // ANONYMOUS may do nothing at all, except describe the group "g" (so the group APIs are
    // checked past FindCoordinator).
    let broker = restricted(&["a"], vec![allow(GROUP, "seen", DESCRIBE)]);
    let mut raw = RawClient::connect(broker.addr());
    let a = || topic_name("a");

    let r = raw.call(
        5,
        &CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
            .with_name(topic_name("new"))
            .with_num_partitions(1)
            .with_replication_factor(1)]),
    );
    assert_eq!(r.topics[0].error_code, TOPIC_AUTH, "CreateTopics");

    let r = raw.call(
        4,
        &DeleteTopicsRequest::default()
            .with_topic_names(vec![a(), topic_name("nowhere")])
            .with_timeout_ms(10_000),
    );
    assert!(
        r.responses.iter().all(|t| t.error_code == TOPIC_AUTH),
        "DeleteTopics {r:?}"
    );

    let r = raw.call(
        1,
        &CreatePartitionsRequest::default()
            .with_topics(vec![
                create_partitions_request::CreatePartitionsTopic::default()
                    .with_name(a())
                    .with_count(2),
            ])
            .with_timeout_ms(10_000),
    );
    assert_eq!(r.results[0].error_code, TOPIC_AUTH, "CreatePartitions");

    let r = raw.call(
        1,
        &DeleteRecordsRequest::default()
            .with_topics(vec![delete_records_request::DeleteRecordsTopic::default()
                .with_name(a())
                .with_partitions(vec![
                    delete_records_request::DeleteRecordsPartition::default()
                        .with_partition_index(0)
                        .with_offset(1),
                ])])
            .with_timeout_ms(10_000),
    );
    assert_eq!(
        r.topics[0].partitions[0].error_code, TOPIC_AUTH,
        "DeleteRecords"
    );

    let r = raw.call(
        1,
        &DescribeConfigsRequest::default().with_resources(vec![
            describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s("a")),
            describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(4)
                .with_resource_name(s("1")),
        ]),
    );
    let codes: Vec<i16> = r.results.iter().map(|c| c.error_code).collect();
    assert_eq!(codes, [TOPIC_AUTH, CLUSTER_AUTH], "DescribeConfigs");

    let r = raw.call(
        1,
        &AlterConfigsRequest::default().with_resources(vec![
            alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s("a"))
                .with_configs(vec![alter_configs_request::AlterableConfig::default()
                    .with_name(s("retention.ms"))
                    .with_value(Some(s("1000")))]),
        ]),
    );
    assert_eq!(r.responses[0].error_code, TOPIC_AUTH, "AlterConfigs");

    let r = raw.call(
        1,
        &IncrementalAlterConfigsRequest::default().with_resources(vec![
            incremental_alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(4)
                .with_resource_name(s(""))
                .with_configs(vec![
                    incremental_alter_configs_request::AlterableConfig::default()
                        .with_name(s("log.retention.ms"))
                        .with_config_operation(0)
                        .with_value(Some(s("1000"))),
                ]),
        ]),
    );
    assert_eq!(
        r.responses[0].error_code, CLUSTER_AUTH,
        "IncrementalAlterConfigs"
    );

    let r = raw.call(4, &DescribeLogDirsRequest::default().with_topics(None));
    assert_eq!(r.error_code, CLUSTER_AUTH, "DescribeLogDirs");
    assert!(r.results.is_empty());

    let r = raw.call(
        2,
        &ElectLeadersRequest::default()
            .with_topic_partitions(Some(vec![elect_leaders_request::TopicPartitions::default(
            )
            .with_topic(a())
            .with_partitions(vec![0])]))
            .with_timeout_ms(10_000),
    );
    assert_eq!(r.error_code, CLUSTER_AUTH, "ElectLeaders");

    let r = raw.call(
        0,
        &AlterPartitionReassignmentsRequest::default().with_timeout_ms(10_000),
    );
    assert_eq!(r.error_code, CLUSTER_AUTH, "AlterPartitionReassignments");
    let r = raw.call(
        0,
        &ListPartitionReassignmentsRequest::default()
            .with_timeout_ms(10_000)
            .with_topics(None),
    );
    assert_eq!(r.error_code, CLUSTER_AUTH, "ListPartitionReassignments");

    let r = raw.call(1, &DescribeClientQuotasRequest::default());
    assert_eq!(r.error_code, CLUSTER_AUTH, "DescribeClientQuotas");
    let r = raw.call(
        1,
        &AlterClientQuotasRequest::default().with_entries(vec![
            alter_client_quotas_request::EntryData::default()
                .with_entity(vec![alter_client_quotas_request::EntityData::default()
                    .with_entity_type(s("user"))
                    .with_entity_name(Some(s("alice")))])
                .with_ops(vec![alter_client_quotas_request::OpData::default()
                    .with_key(s("producer_byte_rate"))
                    .with_value(1024.0)]),
        ]),
    );
    assert_eq!(r.entries[0].error_code, CLUSTER_AUTH, "AlterClientQuotas");

    let r = raw.call(
        2,
        &DescribeAclsRequest::default()
            .with_resource_type_filter(1)
            .with_pattern_type_filter(1)
            .with_operation(1)
            .with_permission_type(1),
    );
    assert_eq!(r.error_code, CLUSTER_AUTH, "DescribeAcls");
    let r = raw.call(
        2,
        &CreateAclsRequest::default().with_creations(vec![allow(CLUSTER, "kafka-cluster", 7)]),
    );
    assert_eq!(r.results[0].error_code, CLUSTER_AUTH, "CreateAcls");
    let r = raw.call(
        2,
        &DeleteAclsRequest::default().with_filters(vec![
            delete_acls_request::DeleteAclsFilter::default()
                .with_resource_type_filter(1)
                .with_pattern_type_filter(1)
                .with_operation(1)
                .with_permission_type(1),
        ]),
    );
    assert_eq!(r.filter_results[0].error_code, CLUSTER_AUTH, "DeleteAcls");

    let r = raw.call(0, &DescribeUserScramCredentialsRequest::default());
    assert_eq!(r.error_code, CLUSTER_AUTH, "DescribeUserScramCredentials");
    let r = raw.call(
        0,
        &AlterUserScramCredentialsRequest::default().with_deletions(vec![
            alter_user_scram_credentials_request::ScramCredentialDeletion::default()
                .with_name(s("alice"))
                .with_mechanism(1),
        ]),
    );
    assert_eq!(
        r.results[0].error_code, CLUSTER_AUTH,
        "AlterUserScramCredentials"
    );

    // Producers and transactions.
    let r = raw.call(
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000)
            .with_producer_id((-1).into())
            .with_producer_epoch(-1),
    );
    assert_eq!(r.error_code, CLUSTER_AUTH, "InitProducerId (idempotent)");
    let r = raw.call(
        1,
        &FindCoordinatorRequest::default()
            .with_key(s("tx"))
            .with_key_type(1),
    );
    assert_eq!(r.error_code, TXN_AUTH, "FindCoordinator (transaction)");
    let r = raw.call(
        0,
        &DescribeTransactionsRequest::default()
            .with_transactional_ids(vec![TransactionalId(s("tx"))]),
    );
    assert_eq!(
        r.transaction_states[0].error_code, TXN_AUTH,
        "DescribeTransactions"
    );
    let r = raw.call(0, &ListTransactionsRequest::default());
    assert_eq!(r.error_code, 0, "ListTransactions");
    let r = raw.call(
        0,
        &DescribeProducersRequest::default().with_topics(vec![
            describe_producers_request::TopicRequest::default()
                .with_name(a())
                .with_partition_indexes(vec![0]),
        ]),
    );
    assert_eq!(
        r.topics[0].partitions[0].error_code, TOPIC_AUTH,
        "DescribeProducers"
    );
    let r = raw.call(
        3,
        &EndTxnRequest::default()
            .with_transactional_id(TransactionalId(s("tx")))
            .with_producer_id((-1).into())
            .with_producer_epoch(-1),
    );
    assert_eq!(r.error_code, TXN_AUTH, "EndTxn");
    let r = raw.call(
        3,
        &AddOffsetsToTxnRequest::default()
            .with_transactional_id(TransactionalId(s("tx")))
            .with_group_id(GroupId(s("seen"))),
    );
    assert_eq!(r.error_code, TXN_AUTH, "AddOffsetsToTxn");

    // Groups.
    let r = raw.call(
        1,
        &FindCoordinatorRequest::default()
            .with_key(s("hidden"))
            .with_key_type(0),
    );
    assert_eq!(r.error_code, GROUP_AUTH, "FindCoordinator (group)");
    let r = raw.call(
        5,
        &DescribeGroupsRequest::default()
            .with_groups(vec![GroupId(s("hidden")), GroupId(s("seen"))]),
    );
    let codes: Vec<(String, i16)> = r
        .groups
        .iter()
        .map(|g| (g.group_id.to_string(), g.error_code))
        .collect();
    assert_eq!(
        codes,
        [("hidden".to_string(), GROUP_AUTH), ("seen".to_string(), 0)],
        "DescribeGroups"
    );
    let r = raw.call(
        2,
        &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("seen"))]),
    );
    assert_eq!(r.results[0].error_code, GROUP_AUTH, "DeleteGroups");
    let r = raw.call(
        7,
        &OffsetFetchRequest::default()
            .with_group_id(GroupId(s("hidden")))
            .with_topics(None),
    );
    assert_eq!(r.error_code, GROUP_AUTH, "OffsetFetch (group)");
    let r = raw.call(
        7,
        &OffsetFetchRequest::default()
            .with_group_id(GroupId(s("seen")))
            .with_topics(Some(vec![
                offset_fetch_request::OffsetFetchRequestTopic::default()
                    .with_name(a())
                    .with_partition_indexes(vec![0]),
            ])),
    );
    assert_eq!(r.error_code, 0, "OffsetFetch");
    assert_eq!(
        r.topics[0].partitions[0].error_code, TOPIC_AUTH,
        "OffsetFetch (topic)"
    );
    let r = raw.call(
        0,
        &OffsetDeleteRequest::default().with_group_id(GroupId(s("seen"))),
    );
    assert_eq!(r.error_code, GROUP_AUTH, "OffsetDelete");

    // Topic reads.
    let r = raw.call(
        5,
        &ListOffsetsRequest::default()
            .with_replica_id((-1).into())
            .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
                .with_name(a())
                .with_partitions(vec![
                    list_offsets_request::ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(-1),
                ])]),
    );
    assert_eq!(
        r.topics[0].partitions[0].error_code, TOPIC_AUTH,
        "ListOffsets"
    );
    let r = raw.call(
        3,
        &OffsetForLeaderEpochRequest::default()
            .with_replica_id((-1).into())
            .with_topics(vec![
                offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                    .with_topic(a())
                    .with_partitions(vec![
                        offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                            .with_partition(0)
                            .with_current_leader_epoch(-1)
                            .with_leader_epoch(0),
                    ]),
            ]),
    );
    assert_eq!(
        r.topics[0].partitions[0].error_code, TOPIC_AUTH,
        "OffsetForLeaderEpoch"
    );
    let r = raw.call(
        0,
        &DescribeTopicPartitionsRequest::default()
            .with_topics(vec![
                describe_topic_partitions_request::TopicRequest::default().with_name(a()),
            ])
            .with_response_partition_limit(100),
    );
    assert_eq!(
        r.topics[0].error_code, TOPIC_AUTH,
        "DescribeTopicPartitions"
    );
    let r = raw.call(
        0,
        &DescribeTopicPartitionsRequest::default().with_response_partition_limit(100),
    );
    assert!(r.topics.is_empty(), "DescribeTopicPartitions (all): {r:?}");

    // The cluster's authorized operations: none without DESCRIBE on the cluster.
    let r = raw.call(
        1,
        &DescribeClusterRequest::default().with_include_cluster_authorized_operations(true),
    );
    assert_eq!(r.cluster_authorized_operations, 0, "DescribeCluster");
}

#[test]
fn authorized_operations_are_those_granted() {
    let _watchdog = watchdog(Duration::from_secs(90));
    let broker = restricted(
        &["a"],
        vec![
            allow(TOPIC, "a", READ),
            allow(CLUSTER, "kafka-cluster", DESCRIBE),
            allow(TRANSACTIONAL_ID, "tx", DESCRIBE),
        ],
    );
    let mut raw = RawClient::connect(broker.addr());
    let r = raw.call(
        10,
        &MetadataRequest::default()
            .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
            )
            .with_name(Some(a_name()))]))
            .with_include_cluster_authorized_operations(true)
            .with_include_topic_authorized_operations(true),
    );
    // READ, and DESCRIBE which READ implies.
    assert_eq!(r.topics[0].topic_authorized_operations, 1 << 3 | 1 << 8);
    assert_eq!(r.cluster_authorized_operations, 1 << 8);
    // DESCRIBE on the cluster lists every group.
    let r = raw.call(4, &ListGroupsRequest::default());
    assert_eq!(r.error_code, 0);
    let r = raw.call(
        1,
        &FindCoordinatorRequest::default()
            .with_key(s("tx"))
            .with_key_type(1),
    );
    assert_eq!(
        r.error_code, 0,
        "FindCoordinator (transaction) with DESCRIBE"
    );
}

fn a_name() -> TopicName {
    topic_name("a")
}

/// Joins `group` as a new consumer-protocol member subscribed to `topics`.
fn consumer_protocol_member(raw: &mut RawClient, group: &str, topics: &[&str]) {
    let r = raw.call(
        0,
        &ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_member_id(s(&uuid_like(group)))
            .with_member_epoch(0)
            .with_rebalance_timeout_ms(60_000)
            .with_subscribed_topic_names(Some(topics.iter().map(|t| topic_name(t)).collect()))
            .with_topic_partitions(Some(Vec::new())),
    );
    assert_eq!(r.error_code, 0, "{r:?}");
}

/// A member id for `group` (KIP-1082: the client picks it).
fn uuid_like(group: &str) -> String {
    format!("member-of-{group}-0000000000")
}

#[test]
fn a_consumer_group_assigned_an_undescribable_topic_is_refused_as_a_whole() {
    let _watchdog = watchdog(Duration::from_secs(90));
    let mut broker = Broker::with_overrides(&[
        ("authorizer.class.name", STANDARD_AUTHORIZER),
        ("super.users", "User:admin;User:ANONYMOUS"),
    ]);
    let mut raw = RawClient::connect(broker.addr());
    raw_create_topics(&mut raw, &["a", "b"]);
    consumer_protocol_member(&mut raw, "both", &["a", "b"]);
    consumer_protocol_member(&mut raw, "only-a", &["a"]);
    let made = raw.call(
        3,
        &CreateAclsRequest::default().with_creations(vec![
            allow(GROUP, "both", DESCRIBE),
            allow(GROUP, "only-a", DESCRIBE),
            allow(TOPIC, "a", DESCRIBE),
        ]),
    );
    assert!(made.results.iter().all(|r| r.error_code == 0), "{made:?}");
    drop(raw);
    broker.restart_with_overrides(&[
        ("authorizer.class.name", STANDARD_AUTHORIZER),
        ("super.users", "User:admin"),
    ]);
    let mut raw = RawClient::connect(broker.addr());
    let r = raw.call(
        0,
        &ConsumerGroupDescribeRequest::default()
            .with_group_ids(vec![GroupId(s("both")), GroupId(s("only-a"))])
            .with_include_authorized_operations(true),
    );
    let both = &r.groups[0];
    assert_eq!(both.group_id.as_str(), "both");
    assert_eq!(both.error_code, TOPIC_AUTH, "{both:?}");
    assert_eq!(
        both.error_message.as_deref(),
        Some("The group has described topic(s) that the client is not authorized to describe.")
    );
    assert!(both.members.is_empty(), "{both:?}");
    let only_a = &r.groups[1];
    assert_eq!(
        (only_a.group_id.as_str(), only_a.error_code),
        ("only-a", 0),
        "{only_a:?}"
    );
    assert_eq!(only_a.members.len(), 1, "{only_a:?}");
    // DESCRIBE only.
    assert_eq!(only_a.authorized_operations, 1 << 8);
}

#[test]
fn without_an_authorizer_described_groups_have_every_group_operation() {
    let _watchdog = watchdog(Duration::from_secs(60));
    let broker = Broker::start(&[]);
    let mut raw = RawClient::connect(broker.addr());
    raw_create_topics(&mut raw, &["a"]);
    consumer_protocol_member(&mut raw, "g", &["a"]);
    // READ, DELETE and DESCRIBE: all a group has.
    let every = 1 << 3 | 1 << 6 | 1 << 8;
    let r = raw.call(
        0,
        &ConsumerGroupDescribeRequest::default()
            .with_group_ids(vec![GroupId(s("g"))])
            .with_include_authorized_operations(true),
    );
    assert_eq!(r.groups[0].authorized_operations, every, "{r:?}");
    let r = raw.call(
        5,
        &DescribeGroupsRequest::default()
            .with_groups(vec![GroupId(s("g"))])
            .with_include_authorized_operations(true),
    );
    assert_eq!(r.groups[0].authorized_operations, every, "{r:?}");
    // Not asked for: Kafka's "absent" value.
    let r = raw.call(
        5,
        &DescribeGroupsRequest::default().with_groups(vec![GroupId(s("g"))]),
    );
    assert_eq!(r.groups[0].authorized_operations, i32::MIN, "{r:?}");
}
