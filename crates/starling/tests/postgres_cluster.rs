//! Several nodes on one PostgreSQL database, driven by
//! librdkafka: the nodes list each other in Metadata, share the partitions (each partition led
//! by the node holding its lease) and the consumer groups (each coordinated where
//! FindCoordinator says, on every node alike), and a topic created on one node is served by
//! all. When a node is killed, the survivor takes its partitions and groups under new epochs:
//! producers and a group consumer carry on through it, and nothing acknowledged is lost.
//! Topic, ACL, quota, SCRAM and run-time config changes made on one node are in force on the
//! other within a heartbeat interval.
//! Transactions span both nodes' partitions and groups, whichever node coordinates them, and
//! carry on when the transaction coordinator is killed: an open transaction commits through
//! the node that took over, and one its producer abandoned is aborted when it times out.
//! Under load (producers without pause, a two-member group committing after every record):
//! three nodes lose their group coordinator and then another partition leader to kill -9, and
//! two nodes see their database restarted; a third node joins two; every acknowledged record
//! is read where it was acknowledged and no committed offset goes back.
//! A KIP-848 consumer-protocol group survives its coordinator's kill the same way, and a group
//! fenced mid-step is dropped without disturbing the node's other groups.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::*;
use kafka_protocol::messages::{FindCoordinatorRequest, MetadataRequest, MetadataResponse};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseRecord, FutureRecord, Producer};
use rdkafka::Message;
use starling_postgres::testing::TestPostgres;

/// Node leases short enough that a killed node's share moves within seconds.
const CLUSTER: [(&str, &str); 3] = [
    ("broker.session.timeout.ms", "3000"),
    ("broker.heartbeat.interval.ms", "500"),
    ("group.initial.rebalance.delay.ms", "0"),
];

fn node(url: &str, id: i32) -> Broker {
    node_with(url, id, &[])
}

fn node_with(url: &str, id: i32, extra: &[(&str, &str)]) -> Broker {
    let id = id.to_string();
    let mut overrides = vec![("storage", url), ("node.id", id.as_str())];
    overrides.extend(CLUSTER);
    overrides.extend(extra);
    Broker::with_overrides(&overrides)
}

/// Waits up to 15 s for `check` to hold (it returns what it saw otherwise).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match check().await {
            Ok(()) => return,
            Err(seen) if Instant::now() > deadline => panic!("{what}: {seen}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// `topic`'s partitions as node `b` answers Metadata: partition → (leader, epoch), with the
/// broker ids it lists. Partitions without a leader are left out.
fn leaders(b: &Broker, topic: &str) -> (BTreeSet<i32>, BTreeMap<i32, (i32, i32)>) {
    let mut raw = RawClient::connect(b.addr());
    let response: MetadataResponse = raw.call(
        9,
        &MetadataRequest::default().with_topics(Some(vec![
            kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                .with_name(Some(topic_name(topic))),
        ])),
    );
    let brokers = response.brokers.iter().map(|b| b.node_id.0).collect();
    let partitions = response
        .topics
        .first()
        .filter(|t| t.error_code == 0)
        .map(|t| {
            t.partitions
                .iter()
                .filter(|p| p.error_code == 0 && p.leader_id.0 >= 0)
                .map(|p| (p.partition_index, (p.leader_id.0, p.leader_epoch)))
                .collect()
        })
        .unwrap_or_default();
    (brokers, partitions)
}

/// Waits until every node in `nodes` lists exactly the brokers `ids` and gives all
/// `partitions` partitions of `topic` the same leaders; returns them.
fn settled_leaders(
    nodes: &[&Broker],
    ids: &[i32],
    topic: &str,
    partitions: i32,
) -> BTreeMap<i32, (i32, i32)> {
    let want: BTreeSet<i32> = ids.iter().copied().collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answers: Vec<_> = nodes.iter().map(|b| leaders(b, topic)).collect();
        let agreed = answers.iter().all(|(brokers, parts)| {
            *brokers == want
                && parts.len() == partitions as usize
                && *parts == answers[0].1
                && parts.values().all(|(leader, _)| want.contains(leader))
        });
        if agreed {
            return answers[0].1.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the nodes did not agree on {topic}'s leaders among {ids:?}: {answers:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The node FindCoordinator names for `group`, asked of `b`.
fn coordinator(b: &Broker, group: &str) -> i32 {
    find_coordinator(b, group, 0)
}

/// The node FindCoordinator names for `key` of `key_type` (0: group, 1: transactional id).
fn find_coordinator(b: &Broker, key: &str, key_type: i8) -> i32 {
    let mut raw = RawClient::connect(b.addr());
    let response = raw.call(
        3,
        &FindCoordinatorRequest::default()
            .with_key(kafka_protocol::protocol::StrBytes::from_string(
                key.to_string(),
            ))
            .with_key_type(key_type),
    );
    assert_eq!(response.error_code, 0, "{response:?}");
    response.node_id.0
}

/// Produces records `from..to` (key `key-i`, value `value-i`) round-robin over `partitions`
/// partitions, idempotently with acks=all; returns where each landed.
async fn produce(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    from: usize,
    to: usize,
) -> BTreeMap<String, (i32, i64)> {
    let p = producer(
        bootstrap,
        &[("enable.idempotence", "true"), ("linger.ms", "5")],
    );
    let mut deliveries = Vec::new();
    for i in from..to {
        let value = format!("value-{i}");
        let key = format!("key-{i}");
        let delivery = p
            .send_result(
                FutureRecord::to(topic)
                    .partition(i as i32 % partitions)
                    .key(&key)
                    .payload(&value),
            )
            .map_err(|(e, _)| e)
            .expect("enqueue");
        deliveries.push((key, delivery));
    }
    let mut landed = BTreeMap::new();
    for (key, delivery) in deliveries {
        let delivered = within(Duration::from_secs(90), "delivery", delivery)
            .await
            .expect("delivered")
            .expect("acknowledged");
        landed.insert(key, (delivered.partition, delivered.offset));
    }
    landed
}

fn group_member(bootstrap: &str, group: &str, topic: &str) -> BaseConsumer {
    let c: BaseConsumer = client_config(
        bootstrap,
        &[
            ("group.id", group),
            ("enable.auto.commit", "false"),
            ("auto.offset.reset", "earliest"),
            ("enable.partition.eof", "false"),
            ("session.timeout.ms", "6000"),
            ("heartbeat.interval.ms", "500"),
        ],
    )
    .create()
    .expect("group consumer");
    c.subscribe(&[topic]).expect("subscribe");
    c
}

/// Polls `c` until it has seen every key of `wanted`, committing synchronously after each
/// message; transient errors (a node going away) are tolerated. Returns the keys seen.
fn consume_keys(
    c: &BaseConsumer,
    wanted: &BTreeMap<String, (i32, i64)>,
    seen: &mut BTreeMap<String, (i32, i64)>,
    limit: Duration,
) {
    let deadline = Instant::now() + limit;
    while !wanted.keys().all(|k| seen.contains_key(k)) {
        assert!(
            Instant::now() < deadline,
            "consumed {} of {} records within {limit:?}",
            wanted.keys().filter(|k| seen.contains_key(*k)).count(),
            wanted.len()
        );
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let msg = Msg::of(&m);
                seen.insert(msg.key_str(), (msg.partition, msg.offset));
                let _ = c.commit_message(&m, CommitMode::Sync);
            }
            Some(Err(e)) => eprintln!("consumer (tolerated): {e}"),
            None => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_partitions_and_groups_and_clients_follow_them() {
    let _dog = watchdog(Duration::from_secs(300));
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let url = pg.create_database("two_nodes").unwrap();
    let one = node(&url, 1);
    let two = node(&url, 2);
    // Created on node 1; node 2 takes the topic in from the database.
    create_topic(&one.bootstrap(), "shared", 16).await;
    let led = settled_leaders(&[&one, &two], &[1, 2], "shared", 16);
    let led_by = led.clone();
    let by_node: BTreeSet<i32> = led.values().map(|(leader, _)| *leader).collect();
    assert_eq!(by_node, BTreeSet::from([1, 2]), "both nodes lead: {led:?}");

    // A producer that only knows node 1 writes to every partition, wherever it is led.
    let produced = produce(&one.bootstrap(), "shared", 16, 0, 480).await;
    for p in 0..16 {
        let offsets: BTreeSet<i64> = produced
            .values()
            .filter(|(part, _)| *part == p)
            .map(|(_, o)| *o)
            .collect();
        assert_eq!(offsets, (0..30).collect(), "partition {p}");
    }
    // The records are the leaders' rows, read back through node 2.
    let read = consume_from_start(
        &two.bootstrap(),
        "shared",
        &(0..16).map(|p| (p, 30)).collect::<Vec<_>>(),
        Duration::from_secs(60),
    );
    for (p, msgs) in &read {
        let offsets: Vec<i64> = msgs.iter().map(|m| m.offset).collect();
        assert_eq!(offsets, (0..30).collect::<Vec<i64>>(), "partition {p}");
    }

    // Each node's metrics show its share: together they lead every partition.
    let gauge = |b: &Broker, name: &str| -> i64 {
        let (status, text) = http_get(b.admin_addr(), "/metrics");
        assert_eq!(status, 200);
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    assert_eq!(gauge(&one, "starling_cluster_nodes_live"), 2);
    assert_eq!(gauge(&two, "starling_cluster_nodes_live"), 2);
    let led = |id: i32| led.values().filter(|(leader, _)| *leader == id).count() as i64;
    assert_eq!(gauge(&one, "starling_partitions_led"), led(1));
    assert_eq!(gauge(&two, "starling_partitions_led"), led(2));

    // Every node names the same coordinator for a group, and the group's lease is its.
    let group = "readers";
    let coordinator_id = coordinator(&one, group);
    assert_eq!(coordinator(&two, group), coordinator_id);
    let c = group_member(&two.bootstrap(), group, "shared");
    let mut seen = BTreeMap::new();
    consume_keys(&c, &produced, &mut seen, Duration::from_secs(90));
    drop(c);
    let pool = starling_postgres::connect(&url, 2).await.unwrap();
    let db = pool.get().await.unwrap();
    let owner: i32 = db
        .query_one(
            "SELECT owner FROM leases WHERE kind = 'group' AND name = $1",
            &[&group],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(owner, coordinator_id);
    let committed: i64 = db
        .query_one(
            "SELECT count(*) FROM group_records WHERE group_id = $1 AND record_key LIKE 'o/%'",
            &[&group],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(committed, 16, "an offset row per partition");

    // `starling cluster status` reads the same from the database.
    let status: serde_json::Value =
        serde_json::from_str(&run_ok(&["cluster", "status", "--storage", &url, "--json"])).unwrap();
    let live_nodes: Vec<i64> = status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["live"] == true)
        .map(|n| n["node_id"].as_i64().unwrap())
        .collect();
    assert_eq!(live_nodes, [1, 2], "{status}");
    let leases = status["leases"].as_array().unwrap();
    let from_status: BTreeMap<i32, i32> = leases
        .iter()
        .filter(|l| l["kind"] == "partition" && l["topic"] == "shared" && l["live"] == true)
        .map(|l| {
            (
                l["partition"].as_i64().unwrap() as i32,
                l["owner"].as_i64().unwrap() as i32,
            )
        })
        .collect();
    let from_metadata: BTreeMap<i32, i32> = led_by.iter().map(|(p, (l, _))| (*p, *l)).collect();
    assert_eq!(from_status, from_metadata);
    assert!(
        leases.iter().any(|l| l["kind"] == "group"
            && l["name"] == group
            && l["owner"].as_i64() == Some(i64::from(coordinator_id))),
        "{status}"
    );
    let table = run_ok(&["cluster", "status", "--storage", &url]);
    assert!(table.contains("TRANSACTION COORDINATOR  node "), "{table}");
    assert!(table.contains("readers"), "{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_hands_its_partitions_and_groups_to_the_survivor() {
    let _dog = watchdog(Duration::from_secs(300));
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let url = pg.create_database("failover").unwrap();
    let mut nodes = [node(&url, 1), node(&url, 2)];
    let bootstrap = format!("{},{}", nodes[0].bootstrap(), nodes[1].bootstrap());
    create_topic(&nodes[0].bootstrap(), "events", 8).await;
    let before = settled_leaders(&[&nodes[0], &nodes[1]], &[1, 2], "events", 8);

    let group = "survivors";
    let mut produced = produce(&bootstrap, "events", 8, 0, 400).await;
    let c = group_member(&bootstrap, group, "events");
    let mut seen = BTreeMap::new();
    consume_keys(&c, &produced, &mut seen, Duration::from_secs(90));

    // Kill the group's coordinator; the other node takes everything.
    let victim = coordinator(&nodes[0], group);
    let (dead, alive) = if victim == 1 { (0, 1) } else { (1, 0) };
    nodes[dead].kill9();
    let survivor_id = alive as i32 + 1;
    let after = settled_leaders(&[&nodes[alive]], &[survivor_id], "events", 8);
    for (p, (leader, epoch)) in &before {
        if *leader == victim {
            assert!(
                after[p].1 > *epoch,
                "partition {p} moved under a new epoch: {after:?}"
            );
        }
    }
    assert_eq!(coordinator(&nodes[alive], group), survivor_id);

    // Producers and the group carry on through the survivor; nothing acknowledged is lost.
    produced.extend(produce(&nodes[alive].bootstrap(), "events", 8, 400, 800).await);
    consume_keys(&c, &produced, &mut seen, Duration::from_secs(120));
    for (key, at) in &produced {
        assert_eq!(
            seen.get(key),
            Some(at),
            "{key} read where it was acknowledged"
        );
    }
    // The survivor holds the group's offsets: a new member starts at the end.
    drop(c);
    let again = group_member(&nodes[alive].bootstrap(), group, "events");
    let deadline = Instant::now() + Duration::from_secs(8);
    while Instant::now() < deadline {
        if let Some(Ok(m)) = again.poll(Duration::from_millis(100)) {
            panic!(
                "a committed record came again: {:?}",
                (m.partition(), m.offset())
            );
        }
    }
    assert_eq!(again.assignment().unwrap().count(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_made_on_one_node_are_in_force_on_the_other() {
    use rdkafka::admin::{NewTopic, ResourceSpecifier, TopicReplication};
    use starling_broker::sasl::scram::ScramMechanism;

    let _dog = watchdog(Duration::from_secs(240));
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let url = pg.create_database("follow").unwrap();
    let secured = [
        (
            "listeners",
            "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
        ),
        ("sasl.enabled.mechanisms", "SCRAM-SHA-256"),
        (
            "authorizer.class.name",
            "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        ),
        ("super.users", "User:ANONYMOUS"),
        ("auto.create.topics.enable", "false"),
    ];
    let one = node_with(&url, 1, &secured);
    let two = node_with(&url, 2, &secured);
    let (b1, b2) = (one.bootstrap(), two.bootstrap());

    // Made on node 1: a topic with an override, a cluster-wide log default, a quota, a SCRAM
    // user and her ACLs.
    let created = within(
        Duration::from_secs(20),
        "create_topics",
        admin(&b1).create_topics(
            &[NewTopic::new("orders", 4, TopicReplication::Fixed(1))
                .set("retention.ms", "123456789")],
            &admin_opts(),
        ),
    )
    .await
    .expect("create_topics");
    assert!(created.iter().all(Result::is_ok), "{created:?}");
    // The cluster-wide default (resource name ""), which librdkafka cannot name.
    {
        use kafka_protocol::messages::incremental_alter_configs_request::{
            AlterConfigsResource, AlterableConfig,
        };
        use kafka_protocol::messages::IncrementalAlterConfigsRequest;
        use kafka_protocol::protocol::StrBytes;
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(4)
                .with_resource_name(StrBytes::from_static_str(""))
                .with_configs(vec![AlterableConfig::default()
                    .with_name(StrBytes::from_static_str("log.retention.bytes"))
                    .with_config_operation(0)
                    .with_value(Some(StrBytes::from_static_str("987654321")))]),
        ]);
        let response = RawClient::connect(one.addr()).call(1, &request);
        assert_eq!(response.responses[0].error_code, 0, "{response:?}");
    }
    run_ok(&[
        "quota",
        "alter",
        "-b",
        &b1,
        "--client",
        "slow-app",
        "--add-config",
        "producer_byte_rate=4096",
    ]);
    raw_scram_user(
        &mut RawClient::connect(one.addr()),
        ScramMechanism::Sha256,
        "erin",
        "erin-secret",
        4096,
    );
    run_ok(&[
        "acl",
        "add",
        "-b",
        &b1,
        "--allow-principal",
        "User:erin",
        "--topic",
        "orders",
        "--operation",
        "describe",
        "--operation",
        "write",
    ]);
    run_ok(&[
        "acl",
        "add",
        "-b",
        &b1,
        "--allow-principal",
        "User:erin",
        "--cluster",
        "--operation",
        "idempotent-write",
    ]);

    // In force on node 2.
    eventually("node 2 describes the topic with both settings", || async {
        let results = admin(&b2)
            .describe_configs([&ResourceSpecifier::Topic("orders")], &admin_opts())
            .await
            .map_err(|e| e.to_string())?;
        let described = results
            .into_iter()
            .next()
            .ok_or("no resource")?
            .map_err(|e| e.to_string())?;
        let value = |key: &str| described.get(key).and_then(|e| e.value.clone());
        match (value("retention.ms"), value("retention.bytes")) {
            (Some(ms), Some(bytes)) if ms == "123456789" && bytes == "987654321" => Ok(()),
            seen => Err(format!("{seen:?}")),
        }
    })
    .await;
    eventually("node 2 has the quota", || async {
        let quotas = run_ok(&[
            "quota", "describe", "-b", &b2, "--client", "slow-app", "--json",
        ]);
        if quotas.contains("producer_byte_rate") && quotas.contains("4096") {
            Ok(())
        } else {
            Err(quotas)
        }
    })
    .await;
    let erin_on_two = two.listener_addr("SASL_PLAINTEXT").to_string();
    eventually("erin logs in on node 2 and may describe orders", || async {
        let c: BaseConsumer = client_config(
            &erin_on_two,
            &[
                ("security.protocol", "SASL_PLAINTEXT"),
                ("sasl.mechanism", "SCRAM-SHA-256"),
                ("sasl.username", "erin"),
                ("sasl.password", "erin-secret"),
            ],
        )
        .create()
        .map_err(|e| e.to_string())?;
        let metadata = c
            .fetch_metadata(Some("orders"), Duration::from_secs(3))
            .map_err(|e| e.to_string())?;
        match metadata.topics().first() {
            Some(t) if t.error().is_none() && t.partitions().len() == 4 => Ok(()),
            Some(t) => Err(format!("{:?}", t.error())),
            None => Err("no topic".into()),
        }
    })
    .await;

    // Bootstrapped at node 2's SASL listener, erin writes to every partition, those node 1
    // leads included: Metadata gives her node 1's SASL address, not its first listener's.
    let erin = producer(
        &erin_on_two,
        &[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "SCRAM-SHA-256"),
            ("sasl.username", "erin"),
            ("sasl.password", "erin-secret"),
            ("enable.idempotence", "true"),
        ],
    );
    for p in 0..4 {
        let delivery = erin
            .send_result(
                FutureRecord::to("orders")
                    .partition(p)
                    .key("k")
                    .payload("v"),
            )
            .map_err(|(e, _)| e)
            .expect("enqueue");
        within(Duration::from_secs(30), "erin's delivery", delivery)
            .await
            .expect("delivered")
            .expect("acknowledged");
    }
    drop(erin);
    // And a plaintext client of node 2 is given node 1's plaintext address.
    let listed: MetadataResponse =
        RawClient::connect(two.addr()).call(9, &MetadataRequest::default().with_topics(None));
    let node_one = listed
        .brokers
        .iter()
        .find(|b| b.node_id.0 == 1)
        .expect("node 1 listed");
    assert_eq!(
        format!("{}:{}", node_one.host.as_str(), node_one.port),
        one.addr().to_string()
    );

    // Deleted on node 1: gone from node 2.
    let deleted = within(
        Duration::from_secs(20),
        "delete_topics",
        admin(&b1).delete_topics(&["orders"], &admin_opts()),
    )
    .await
    .expect("delete_topics");
    assert!(deleted.iter().all(Result::is_ok), "{deleted:?}");
    eventually("node 2 forgets the deleted topic", || async {
        let topics = topics_in_metadata(&b2);
        if topics.contains_key("orders") {
            Err(format!("{topics:?}"))
        } else {
            Ok(())
        }
    })
    .await;
}

/// The committed offset of each partition of `topic` for `group`, read from the rows.
async fn committed_rows(
    db: &starling_postgres::PgClient,
    group: &str,
    topic: &str,
) -> BTreeMap<i32, i64> {
    db.query(
        "SELECT record_key, value FROM group_records WHERE group_id = $1 AND record_key LIKE 'o/%'",
        &[&group],
    )
    .await
    .unwrap()
    .iter()
    .filter_map(|row| {
        let key: String = row.get(0);
        let value: serde_json::Value = row.get(1);
        let partition: i32 = key.rsplit('/').next()?.parse().ok()?;
        let offset = find_offset(&value)?;
        key.contains(&format!("/{topic}/"))
            .then_some((partition, offset))
    })
    .collect()
}

/// The `offset` field anywhere in a stored record's JSON.
fn find_offset(value: &serde_json::Value) -> Option<i64> {
    match value {
        serde_json::Value::Object(map) => map
            .get("offset")
            .and_then(serde_json::Value::as_i64)
            .or_else(|| map.values().find_map(find_offset)),
        serde_json::Value::Array(items) => items.iter().find_map(find_offset),
        _ => None,
    }
}

/// A coordinator frozen (SIGSTOP) past its leases loses the group to the other node while the
/// consumer carries on there; thawed, it believes for a moment it still coordinates, but its
/// writes are fenced: the committed offsets in the database never go back, and every record
/// is consumed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_coordinator_loses_its_group_and_writes_nothing_when_it_thaws() {
    let _dog = watchdog(Duration::from_secs(300));
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let url = pg.create_database("frozen").unwrap();
    let nodes = [node(&url, 1), node(&url, 2)];
    let bootstrap = format!("{},{}", nodes[0].bootstrap(), nodes[1].bootstrap());
    create_topic(&nodes[0].bootstrap(), "ticks", 4).await;
    settled_leaders(&[&nodes[0], &nodes[1]], &[1, 2], "ticks", 4);
    let group = "frozen-readers";
    let mut produced = produce(&bootstrap, "ticks", 4, 0, 200).await;
    let c = group_member(&bootstrap, group, "ticks");
    let mut seen = BTreeMap::new();
    consume_keys(&c, &produced, &mut seen, Duration::from_secs(90));

    let pool = starling_postgres::connect(&url, 2).await.unwrap();
    let db = pool.get().await.unwrap();
    let frozen = coordinator(&nodes[0], group);
    let (stopped, running) = if frozen == 1 { (0, 1) } else { (1, 0) };
    let signal = |sig: &str| {
        let status = std::process::Command::new("kill")
            .args([sig, &nodes[stopped].pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    };
    signal("-STOP");
    // Past the frozen node's session: the other node takes the group and its partitions.
    let other_id = running as i32 + 1;
    settled_leaders(&[&nodes[running]], &[other_id], "ticks", 4);
    produced.extend(produce(&nodes[running].bootstrap(), "ticks", 4, 200, 400).await);
    consume_keys(&c, &produced, &mut seen, Duration::from_secs(120));
    let before_thaw = committed_rows(&db, group, "ticks").await;
    assert_eq!(before_thaw.len(), 4, "{before_thaw:?}");

    signal("-CONT");
    // The thawed node comes back, takes its share again, and the group goes where placement
    // says; meanwhile the committed offsets only move forward.
    let mut last = before_thaw.clone();
    let watch_until = Instant::now() + Duration::from_secs(8);
    let mut next = 400;
    while Instant::now() < watch_until {
        produced.extend(produce(&bootstrap, "ticks", 4, next, next + 20).await);
        next += 20;
        consume_keys(&c, &produced, &mut seen, Duration::from_secs(60));
        let now = committed_rows(&db, group, "ticks").await;
        for (p, offset) in &now {
            assert!(
                *offset >= last.get(p).copied().unwrap_or(0),
                "partition {p}'s committed offset went back: {last:?} then {now:?}"
            );
        }
        last = now;
    }
    settled_leaders(&[&nodes[0], &nodes[1]], &[1, 2], "ticks", 4);
    for (key, at) in &produced {
        assert_eq!(seen.get(key), Some(at), "{key}");
    }
}

/// The node FindCoordinator names for transactional id `id`, asked of `b`.
fn transaction_coordinator(b: &Broker, id: &str) -> i32 {
    find_coordinator(b, id, 1)
}

/// A librdkafka transactional producer whose transactions time out after `timeout_ms`.
fn transactional_producer(
    bootstrap: &str,
    id: &str,
    timeout_ms: u32,
) -> rdkafka::producer::BaseProducer {
    let timeout = timeout_ms.to_string();
    let p: rdkafka::producer::BaseProducer = client_config(
        bootstrap,
        &[
            ("transactional.id", id),
            ("transaction.timeout.ms", timeout.as_str()),
            ("socket.timeout.ms", timeout.as_str()),
        ],
    )
    .create()
    .expect("transactional producer");
    p.init_transactions(Duration::from_secs(60))
        .expect("init_transactions");
    p
}

/// Transactions writing a record `prefix-<partition>` in each of `partitions` partitions of
/// `topic` and committing `group`'s offset of `input`-0.
struct Transactions<'a> {
    topic: &'a str,
    partitions: i32,
    group: &'a rdkafka::consumer::ConsumerGroupMetadata,
    input: &'a str,
}

impl Transactions<'_> {
    /// One transaction of `p`, committed or aborted, with the group's offset at `offset`.
    fn run(&self, p: &rdkafka::producer::BaseProducer, prefix: &str, offset: i64, commit: bool) {
        let t = Duration::from_secs(60);
        p.begin_transaction().expect("begin");
        for partition in 0..self.partitions {
            let value = format!("{prefix}-{partition}");
            p.send(
                BaseRecord::<str, str>::to(self.topic)
                    .partition(partition)
                    .payload(&value),
            )
            .map_err(|(e, _)| e)
            .expect("send");
        }
        let mut offsets = rdkafka::TopicPartitionList::new();
        offsets
            .add_partition_offset(self.input, 0, rdkafka::Offset::Offset(offset))
            .unwrap();
        p.send_offsets_to_transaction(&offsets, self.group, t)
            .expect("send_offsets_to_transaction");
        if commit {
            p.commit_transaction(t).expect("commit");
        } else {
            p.flush(t).expect("flush");
            p.abort_transaction(t).expect("abort");
        }
    }
}

/// Every record of `topic`'s `partitions` partitions a read_committed consumer of `bootstrap`
/// reads within `limit` once it has `want` of them (and nothing more for two seconds).
fn committed_values(bootstrap: &str, topic: &str, partitions: i32, want: usize) -> Vec<String> {
    let c: BaseConsumer = client_config(
        bootstrap,
        &[
            ("group.id", "committed-reader"),
            ("isolation.level", "read_committed"),
            ("enable.auto.commit", "false"),
            ("enable.partition.eof", "false"),
        ],
    )
    .create()
    .expect("consumer");
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).expect("assign");
    let mut values = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut quiet_since = Instant::now();
    while values.len() < want || quiet_since.elapsed() < Duration::from_secs(2) {
        assert!(
            Instant::now() < deadline,
            "read {} of {want} committed records: {values:?}",
            values.len()
        );
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                values.push(Msg::of(&m).value_str());
                quiet_since = Instant::now();
            }
            Some(Err(e)) => eprintln!("read_committed consumer (tolerated): {e}"),
            None => {}
        }
    }
    values.sort();
    values
}

/// `group`'s committed offset of `topic`-0, asked of `bootstrap`.
fn group_offset(bootstrap: &str, group: &str, topic: &str) -> rdkafka::Offset {
    let c: BaseConsumer = client_config(bootstrap, &[("group.id", group)])
        .create()
        .expect("consumer");
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    c.committed_offsets(tpl, Duration::from_secs(30))
        .expect("committed offsets")
        .find_partition(topic, 0)
        .unwrap()
        .offset()
}

fn expected(prefixes: &[&str], partitions: i32) -> Vec<String> {
    let mut all: Vec<String> = prefixes
        .iter()
        .flat_map(|prefix| (0..partitions).map(move |p| format!("{prefix}-{p}")))
        .collect();
    all.sort();
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_span_partitions_and_groups_on_both_nodes() {
    let _dog = watchdog(Duration::from_secs(300));
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let url = pg.create_database("txn_two_nodes").unwrap();
    let one = node(&url, 1);
    let two = node(&url, 2);
    create_topic(&one.bootstrap(), "totals", 16).await;
    create_topic(&one.bootstrap(), "orders", 1).await;
    let led = settled_leaders(&[&one, &two], &[1, 2], "totals", 16);
    let by_node: BTreeSet<i32> = led.values().map(|(leader, _)| *leader).collect();
    assert_eq!(by_node, BTreeSet::from([1, 2]), "both nodes lead: {led:?}");
    settled_leaders(&[&one, &two], &[1, 2], "orders", 1);

    // One node coordinates transactions, whichever node is asked.
    let txn_node = transaction_coordinator(&one, "mover");
    assert_eq!(transaction_coordinator(&two, "mover"), txn_node);
    // A group the other node coordinates.
    let group = (0..)
        .map(|i| format!("movers-{i}"))
        .find(|g| coordinator(&one, g) != txn_node)
        .unwrap();
    let group_meta = client_config(&one.bootstrap(), &[("group.id", group.as_str())])
        .create::<BaseConsumer>()
        .expect("consumer")
        .group_metadata()
        .expect("group metadata");

    let p = transactional_producer(
        &format!("{},{}", one.bootstrap(), two.bootstrap()),
        "mover",
        60_000,
    );
    let txns = Transactions {
        topic: "totals",
        partitions: 16,
        group: &group_meta,
        input: "orders",
    };
    txns.run(&p, "first", 10, true);
    txns.run(&p, "dropped", 20, false);
    txns.run(&p, "second", 30, true);

    // Committed records of both nodes' partitions are readable through either; aborted ones
    // never; the group's offset is the last committed transaction's.
    assert_eq!(
        committed_values(&two.bootstrap(), "totals", 16, 32),
        expected(&["first", "second"], 16)
    );
    assert_eq!(
        group_offset(&one.bootstrap(), &group, "orders"),
        rdkafka::Offset::Offset(30)
    );
    // Every marker was written: none is left queued.
    let pool = starling_postgres::connect(&url, 2).await.unwrap();
    let db = pool.get().await.unwrap();
    let queued: i64 = db
        .query_one("SELECT count(*) FROM txn_markers", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(queued, 0);
    let owner: i32 = db
        .query_one("SELECT owner FROM leases WHERE kind = 'transactions'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(owner, txn_node);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_carry_on_when_their_coordinator_is_killed() {
    let _dog = watchdog(Duration::from_secs(300));
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let url = pg.create_database("txn_failover").unwrap();
    let mut nodes = [node(&url, 1), node(&url, 2)];
    create_topic(&nodes[0].bootstrap(), "ledger", 16).await;
    create_topic(&nodes[0].bootstrap(), "orders", 1).await;
    settled_leaders(&[&nodes[0], &nodes[1]], &[1, 2], "ledger", 16);
    settled_leaders(&[&nodes[0], &nodes[1]], &[1, 2], "orders", 1);
    let victim = transaction_coordinator(&nodes[0], "ledger-writer");
    let (dead, alive) = if victim == 1 { (0, 1) } else { (1, 0) };
    let survivor = nodes[alive].bootstrap();
    let group_meta = client_config(&survivor, &[("group.id", "ledger-group")])
        .create::<BaseConsumer>()
        .expect("consumer")
        .group_metadata()
        .expect("group metadata");

    // One transaction committed, one left open by a producer that goes away, one open by a
    // producer that stays: then the coordinator dies.
    let p = transactional_producer(&survivor, "ledger-writer", 60_000);
    let txns = Transactions {
        topic: "ledger",
        partitions: 16,
        group: &group_meta,
        input: "orders",
    };
    txns.run(&p, "before", 5, true);
    let abandoned = transactional_producer(&survivor, "abandoned-writer", 8_000);
    {
        abandoned.begin_transaction().unwrap();
        for partition in 0..16 {
            abandoned
                .send(
                    BaseRecord::<str, str>::to("ledger")
                        .partition(partition)
                        .payload("abandoned"),
                )
                .map_err(|(e, _)| e)
                .unwrap();
        }
        abandoned.flush(Duration::from_secs(30)).unwrap();
        p.begin_transaction().unwrap();
        for partition in 0..16 {
            let value = format!("across-{partition}");
            p.send(
                BaseRecord::<str, str>::to("ledger")
                    .partition(partition)
                    .payload(&value),
            )
            .map_err(|(e, _)| e)
            .unwrap();
        }
        p.flush(Duration::from_secs(30)).unwrap();
    }
    nodes[dead].kill9();
    let survivor_id = alive as i32 + 1;
    settled_leaders(&[&nodes[alive]], &[survivor_id], "ledger", 16);

    // The open transaction commits through the coordinator that took over, and the producer
    // carries on; the abandoned one is aborted when its timeout passes.
    {
        p.commit_transaction(Duration::from_secs(90))
            .expect("commit after the coordinator moved");
    }
    assert_eq!(
        transaction_coordinator(&nodes[alive], "ledger-writer"),
        survivor_id
    );
    txns.run(&p, "after", 9, true);
    assert_eq!(
        committed_values(&survivor, "ledger", 16, 48),
        expected(&["after", "before", "across"], 16)
    );
    assert_eq!(
        group_offset(&survivor, "ledger-group", "orders"),
        rdkafka::Offset::Offset(9)
    );
    drop(abandoned);
}

/// What a group member saw while the cluster changed under it.
#[derive(Default)]
struct Consumed {
    /// Each record's key, where it was read.
    seen: BTreeMap<String, (i32, i64)>,
    /// Committed offsets that went backwards, as (partition, before, after).
    backwards: Vec<(i32, i64, i64)>,
}

/// Runs a group member of `group` on `topic` until `stop`, committing after every record and
/// checking after each commit that the group's committed offsets (asked of the cluster) never
/// go back.
fn member_under_load(
    bootstrap: String,
    group: &'static str,
    topic: &'static str,
    consumed: std::sync::Arc<std::sync::Mutex<Consumed>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let c = group_member(&bootstrap, group, topic);
        let mut last: BTreeMap<i32, i64> = BTreeMap::new();
        let mut polls = 0u64;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            match c.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    let msg = Msg::of(&m);
                    consumed
                        .lock()
                        .unwrap()
                        .seen
                        .insert(msg.key_str(), (msg.partition, msg.offset));
                    let _ = c.commit_message(&m, CommitMode::Sync);
                }
                Some(Err(e)) => eprintln!("member (tolerated): {e}"),
                None => {}
            }
            polls += 1;
            if !polls.is_multiple_of(20) {
                continue;
            }
            let Ok(assigned) = c.assignment() else {
                continue;
            };
            let Ok(committed) = c.committed_offsets(assigned, Duration::from_secs(5)) else {
                continue;
            };
            for e in committed.elements() {
                let rdkafka::Offset::Offset(now) = e.offset() else {
                    continue;
                };
                let before = last.insert(e.partition(), now);
                if let Some(before) = before.filter(|b| *b > now) {
                    consumed
                        .lock()
                        .unwrap()
                        .backwards
                        .push((e.partition(), before, now));
                }
            }
        }
    })
}

/// Producers writing without pause and two members of a group reading, through the whole
/// cluster, while a test changes the cluster under them.
struct Load {
    stop_producing: std::sync::Arc<std::sync::atomic::AtomicBool>,
    producing: tokio::task::JoinHandle<BTreeMap<String, (i32, i64)>>,
    consumed: std::sync::Arc<std::sync::Mutex<Consumed>>,
    stop_consuming: std::sync::Arc<std::sync::atomic::AtomicBool>,
    members: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(bootstrap: &str, topic: &'static str, partitions: i32, group: &'static str) -> Load {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let stop_producing = Arc::new(AtomicBool::new(false));
        let producing = {
            let bootstrap = bootstrap.to_string();
            let stop = stop_producing.clone();
            tokio::spawn(async move {
                let mut acknowledged = BTreeMap::new();
                let mut next = 0;
                while !stop.load(Ordering::Relaxed) {
                    acknowledged
                        .extend(produce(&bootstrap, topic, partitions, next, next + 60).await);
                    next += 60;
                }
                acknowledged
            })
        };
        let consumed = Arc::new(std::sync::Mutex::new(Consumed::default()));
        let stop_consuming = Arc::new(AtomicBool::new(false));
        let members = (0..2)
            .map(|_| {
                member_under_load(
                    bootstrap.to_string(),
                    group,
                    topic,
                    consumed.clone(),
                    stop_consuming.clone(),
                )
            })
            .collect();
        Load {
            stop_producing,
            producing,
            consumed,
            stop_consuming,
            members,
        }
    }

    /// Waits (up to 90 s) until the group has read 300 more records than it had; how long that
    /// took.
    fn progresses(&self, what: &str) -> Duration {
        let start = Instant::now();
        let from = self.consumed.lock().unwrap().seen.len();
        let deadline = start + Duration::from_secs(90);
        while self.consumed.lock().unwrap().seen.len() < from + 300 {
            assert!(
                Instant::now() < deadline,
                "{what}: the group read {} records, no progress past {from}",
                self.consumed.lock().unwrap().seen.len()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("{what}: 300 more records read in {:?}", start.elapsed());
        start.elapsed()
    }

    /// Stops producing; checks that every acknowledged record is read where it was
    /// acknowledged and that no committed offset went back; returns how many there were.
    async fn finish(self) -> usize {
        use std::sync::atomic::Ordering;
        self.stop_producing.store(true, Ordering::Relaxed);
        let acknowledged = self.producing.await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let missing = {
                let consumed = self.consumed.lock().unwrap();
                acknowledged
                    .keys()
                    .filter(|k| !consumed.seen.contains_key(*k))
                    .count()
            };
            if missing == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{missing} of {} acknowledged records never read",
                acknowledged.len()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        self.stop_consuming.store(true, Ordering::Relaxed);
        for member in self.members {
            member.join().unwrap();
        }
        let consumed = self.consumed.lock().unwrap();
        for (key, at) in &acknowledged {
            assert_eq!(consumed.seen.get(key), Some(at), "{key}");
        }
        assert!(
            consumed.backwards.is_empty(),
            "committed offsets went back: {:?}",
            consumed.backwards
        );
        acknowledged.len()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_under_load_lose_nothing_when_the_coordinator_and_a_leader_are_killed() {
    let _dog = watchdog(Duration::from_secs(420));
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let url = pg.create_database("three_nodes").unwrap();
    let mut nodes = [node(&url, 1), node(&url, 2), node(&url, 3)];
    let bootstrap = nodes
        .iter()
        .map(Broker::bootstrap)
        .collect::<Vec<_>>()
        .join(",");
    create_topic(&nodes[0].bootstrap(), "load", 12).await;
    let before = settled_leaders(&[&nodes[0], &nodes[1], &nodes[2]], &[1, 2, 3], "load", 12);
    let group = "load-readers";
    let load = Load::start(&bootstrap, "load", 12, group);
    load.progresses("before any kill");

    // Kill the group's coordinator, then (once the group reads again) another node leading
    // partitions: the last node ends up with everything.
    let coordinator_id = coordinator(&nodes[0], group);
    let killed = Instant::now();
    nodes[coordinator_id as usize - 1].kill9();
    let alive: Vec<i32> = (1..=3).filter(|id| *id != coordinator_id).collect();
    let live_nodes: Vec<&Broker> = alive.iter().map(|id| &nodes[*id as usize - 1]).collect();
    settled_leaders(&live_nodes, &alive, "load", 12);
    load.progresses("after the coordinator was killed");
    // The group settles within the node lease (3 s) and one rebalance, which waits at most for
    // the members' session timeout (6 s); the rest is slack for a loaded machine.
    let settled = killed.elapsed();
    assert!(
        settled < Duration::from_secs(3 + 6 + 30),
        "the group read again {settled:?} after its coordinator was killed"
    );

    let (leader_id, survivor_id) = (alive[0], alive[1]);
    nodes[leader_id as usize - 1].kill9();
    let after = settled_leaders(
        &[&nodes[survivor_id as usize - 1]],
        &[survivor_id],
        "load",
        12,
    );
    for (p, (leader, epoch)) in &before {
        if *leader != survivor_id {
            assert!(after[p].1 > *epoch, "partition {p} moved under a new epoch");
        }
    }
    load.progresses("after a partition leader was killed");
    load.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_under_load_loses_nothing_on_two_nodes() {
    let _dog = watchdog(Duration::from_secs(420));
    let Some(mut pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let url = pg.create_database("restart").unwrap();
    let mut nodes = [node(&url, 1), node(&url, 2)];
    let bootstrap = format!("{},{}", nodes[0].bootstrap(), nodes[1].bootstrap());
    create_topic(&nodes[0].bootstrap(), "steady", 8).await;
    settled_leaders(&[&nodes[0], &nodes[1]], &[1, 2], "steady", 8);
    let load = Load::start(&bootstrap, "steady", 8, "steady-readers");
    load.progresses("before the restart");

    // Down for longer than the nodes' registrations and leases: both nodes lose everything,
    // register again and take the partitions and the group back when it returns.
    pg.kill();
    tokio::time::sleep(Duration::from_secs(4)).await;
    pg.start_again().unwrap();
    settled_leaders(&[&nodes[0], &nodes[1]], &[1, 2], "steady", 8);
    load.progresses("after the restart");
    assert!(load.finish().await > 0);
    for b in &mut nodes {
        assert!(b.is_alive(), "a node stopped when the database went away");
    }
}

/// `starling bench cluster` measures the embedded log and a PostgreSQL cluster of each size
/// asked for side by side, each on a database of its own that it drops afterwards.
#[test]
fn bench_cluster_measures_each_setup_and_drops_its_databases() {
    let _dog = watchdog(Duration::from_secs(300));
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let out = run_ok(&[
        "bench",
        "cluster",
        "--storage",
        &pg.url(),
        "--nodes",
        "1,2",
        "--messages",
        "20000",
        "--partitions",
        "4",
    ]);
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("embedded log") || l.starts_with("postgres, "))
        .collect();
    assert_eq!(rows.len(), 3, "{out}");
    assert!(rows[0].starts_with("embedded log"), "{out}");
    assert!(rows[1].starts_with("postgres, 1 node "), "{out}");
    assert!(rows[2].starts_with("postgres, 2 nodes"), "{out}");
    for row in rows {
        let figures: Vec<f64> = row
            .split_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect();
        // Produce and consume MB/s and msgs/s; a phase so short its clock read 0 s shows an
        // infinite rate (and its ratios NaN), which a run this small can meet.
        assert!(
            figures.len() >= 6 && figures[..4].iter().all(|f| *f > 0.0),
            "{row}"
        );
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let left: i64 = rt.block_on(async {
        let pool = starling_postgres::connect(&pg.url(), 1).await.unwrap();
        let db = pool.get().await.unwrap();
        db.query_one(
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'starling_bench_%'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
    });
    assert_eq!(left, 0, "the bench's databases are dropped");
}

/// A node joining a loaded cluster takes its share: the nodes hand it partitions (under new
/// epochs) and whatever placement now gives it, producers and the group follow, and nothing
/// acknowledged is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joining_under_load_takes_its_share_and_loses_nothing() {
    let _dog = watchdog(Duration::from_secs(420));
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let url = pg.create_database("joining").unwrap();
    let mut nodes = vec![node(&url, 1), node(&url, 2)];
    let bootstrap = format!("{},{}", nodes[0].bootstrap(), nodes[1].bootstrap());
    create_topic(&nodes[0].bootstrap(), "growing", 12).await;
    let before = settled_leaders(&[&nodes[0], &nodes[1]], &[1, 2], "growing", 12);
    let load = Load::start(&bootstrap, "growing", 12, "growing-readers");
    load.progresses("before the third node");

    nodes.push(node(&url, 3));
    let after = settled_leaders(
        &[&nodes[0], &nodes[1], &nodes[2]],
        &[1, 2, 3],
        "growing",
        12,
    );
    let moved: Vec<i32> = after
        .iter()
        .filter(|(_, (leader, _))| *leader == 3)
        .map(|(p, _)| *p)
        .collect();
    assert!(!moved.is_empty(), "node 3 leads nothing: {after:?}");
    for p in &moved {
        assert!(
            after[p].1 > before[p].1,
            "partition {p} moved under a new epoch"
        );
    }
    load.progresses("after the third node joined");
    load.finish().await;
}

/// A group whose lease is taken away while its node still believes it holds it: the next
/// write for it is fenced in the database, the group alone is dropped (its commit answered
/// NOT_COORDINATOR), and the node's other groups carry on undisturbed — the store is not
/// counted faulty and nothing is reloaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_fenced_mid_step_is_dropped_alone() {
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::{GroupId, OffsetCommitRequest, OffsetCommitResponse};
    use kafka_protocol::protocol::StrBytes;

    let _dog = watchdog(Duration::from_secs(120));
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let url = pg.create_database("fenced_group").unwrap();
    // Rounds far apart: the node learns of the theft only from its own write.
    let b = node_with(
        &url,
        1,
        &[
            ("broker.session.timeout.ms", "30000"),
            ("broker.heartbeat.interval.ms", "10000"),
        ],
    );
    create_topic(&b.bootstrap(), "ledger", 1).await;
    let mut raw = RawClient::connect(b.addr());
    let mut commit = |group: &str, offset: i64| -> i16 {
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(topic_name("ledger"))
                .with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(offset)])]);
        let response: OffsetCommitResponse = raw.call(2, &request);
        response.topics[0].partitions[0].error_code
    };
    assert_eq!(commit("kept", 1), 0);
    assert_eq!(commit("stolen", 1), 0);

    let pool = starling_postgres::connect(&url, 1).await.unwrap();
    let db = pool.get().await.unwrap();
    let taken = db
        .execute(
            "UPDATE leases SET owner = 99, epoch = epoch + 1,
                               expires_at = clock_timestamp() + interval '1 hour'
             WHERE kind = 'group' AND name = 'stolen'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(taken, 1);

    let not_coordinator = 16;
    assert_eq!(commit("stolen", 2), not_coordinator);
    let (status, text) = http_get(b.admin_addr(), "/healthz");
    assert_eq!(
        (status, text.as_str()),
        (200, "ok"),
        "a fenced group is no store fault"
    );
    assert_eq!(commit("kept", 2), 0);
    let stored: i64 = db
        .query_one(
            "SELECT count(*) FROM group_records WHERE group_id = 'stolen'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 1, "the fenced commit wrote nothing");
}

/// A KIP-848 consumer-protocol group with a member bootstrapped at each of two nodes: its
/// coordinator is killed, the survivor takes the group from the database, and the members
/// carry on through it without losing or repeating a committed record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_protocol_group_carries_on_when_its_coordinator_is_killed() {
    let _dog = watchdog(Duration::from_secs(300));
    let Some(pg) = TestPostgres::start_or_skip() else {
        return;
    };
    let url = pg.create_database("consumer_protocol").unwrap();
    let short = [
        ("group.consumer.session.timeout.ms", "6000"),
        ("group.consumer.heartbeat.interval.ms", "500"),
    ];
    let mut nodes = [node_with(&url, 1, &short), node_with(&url, 2, &short)];
    create_topic(&nodes[0].bootstrap(), "flow", 8).await;
    settled_leaders(&[&nodes[0], &nodes[1]], &[1, 2], "flow", 8);
    let group = "flow-readers";
    let member = |bootstrap: String| -> BaseConsumer {
        let c: BaseConsumer = client_config(
            &bootstrap,
            &[
                ("group.id", group),
                ("group.protocol", "consumer"),
                ("enable.auto.commit", "false"),
                ("auto.offset.reset", "earliest"),
                ("enable.partition.eof", "false"),
            ],
        )
        .create()
        .expect("consumer-protocol member");
        c.subscribe(&["flow"]).expect("subscribe");
        c
    };
    let members = [member(nodes[0].bootstrap()), member(nodes[1].bootstrap())];
    let mut produced = produce(&nodes[0].bootstrap(), "flow", 8, 0, 400).await;
    let mut seen = BTreeMap::new();
    let mut committed = BTreeSet::new();
    let mut consume_all = |wanted: &BTreeMap<String, (i32, i64)>,
                           seen: &mut BTreeMap<String, (i32, i64)>| {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !wanted.keys().all(|k| seen.contains_key(k)) {
            assert!(
                Instant::now() < deadline,
                "read {} of {} records",
                wanted.keys().filter(|k| seen.contains_key(*k)).count(),
                wanted.len()
            );
            for c in &members {
                match c.poll(Duration::from_millis(50)) {
                    Some(Ok(m)) => {
                        let msg = Msg::of(&m);
                        let at = (msg.partition, msg.offset);
                        // A record may come again only if its commit did not go through.
                        if let Some(before) = seen.insert(msg.key_str(), at) {
                            assert_eq!(before, at, "{} moved", msg.key_str());
                            assert!(
                                !committed.contains(&msg.key_str()),
                                "{} read again after its offset was committed",
                                msg.key_str()
                            );
                        }
                        if c.commit_message(&m, CommitMode::Sync).is_ok() {
                            committed.insert(msg.key_str());
                        }
                    }
                    Some(Err(e)) => eprintln!("member (tolerated): {e}"),
                    None => {}
                }
            }
        }
    };
    consume_all(&produced, &mut seen);

    let victim = coordinator(&nodes[0], group);
    let survivor = if victim == 1 { 2 } else { 1 };
    nodes[victim as usize - 1].kill9();
    settled_leaders(&[&nodes[survivor as usize - 1]], &[survivor], "flow", 8);
    produced.extend(
        produce(
            &nodes[survivor as usize - 1].bootstrap(),
            "flow",
            8,
            400,
            800,
        )
        .await,
    );
    consume_all(&produced, &mut seen);
    for (key, at) in &produced {
        assert_eq!(seen.get(key), Some(at), "{key}");
    }
    assert_eq!(coordinator(&nodes[survivor as usize - 1], group), survivor);
}
