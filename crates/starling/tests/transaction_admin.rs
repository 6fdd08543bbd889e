//! KIP-664's admin APIs against a real transaction: librdkafka's transactional producer opens
//! one on two partitions, and while it is open DescribeTransactions, ListTransactions (each
//! filter) and DescribeProducers — over a raw socket and through `starling txn` — show it
//! Ongoing with its partitions and trace each partition's open transaction to its producer,
//! and the metrics count one open transaction; after the commit it is CompleteCommit, its
//! partitions are free and the metrics count none. Unknown ids, partitions and topics are
//! reported as Kafka reports them.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::describe_producers_response::PartitionResponse;
use kafka_protocol::messages::describe_transactions_response::TransactionState as Described;
use kafka_protocol::messages::{
    DescribeProducersRequest, DescribeTransactionsRequest, ListTransactionsRequest,
    ListTransactionsResponse, ProducerId, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

const T: Duration = Duration::from_secs(30);
const CLI_LIMIT: Duration = Duration::from_secs(60);
const TXN_ID: &str = "admin-app";
const TOPIC: &str = "txn-admin";

type TxnProducer = ThreadedProducer<DefaultProducerContext>;

fn txn_producer(bootstrap: &str, transactional_id: &str) -> TxnProducer {
    let producer: TxnProducer = client_config(
        bootstrap,
        &[
            ("transactional.id", transactional_id),
            ("transaction.timeout.ms", "120000"),
            ("linger.ms", "1"),
            ("message.timeout.ms", "30000"),
        ],
    )
    .create()
    .expect("create transactional producer");
    producer
        .init_transactions(T)
        .unwrap_or_else(|e| panic!("init_transactions for {transactional_id}: {e}"));
    producer
}

fn send(producer: &TxnProducer, partition: i32, count: usize) {
    for i in 0..count {
        let value = format!("p{partition}-{i}");
        producer
            .send(
                BaseRecord::<(), _>::to(TOPIC)
                    .partition(partition)
                    .payload(&value),
            )
            .unwrap_or_else(|(e, _)| panic!("send {value}: {e}"));
    }
}

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn describe(raw: &mut RawClient, ids: &[&str]) -> Vec<Described> {
    let request = DescribeTransactionsRequest::default()
        .with_transactional_ids(ids.iter().map(|id| TransactionalId(sb(id))).collect());
    raw.call(0, &request).transaction_states
}

fn list(
    raw: &mut RawClient,
    version: i16,
    states: &[&str],
    producer_ids: &[i64],
    duration_ms: i64,
) -> ListTransactionsResponse {
    let mut request = ListTransactionsRequest::default()
        .with_state_filters(states.iter().map(|s| sb(s)).collect())
        .with_producer_id_filters(producer_ids.iter().map(|&p| ProducerId(p)).collect());
    if version >= 1 {
        request.duration_filter = duration_ms;
    }
    let response = raw.call(version, &request);
    assert_eq!(response.error_code, 0, "{response:?}");
    response
}

/// The (transactional id, producer id, state) rows of a ListTransactions answer.
fn listed(response: &ListTransactionsResponse) -> Vec<(String, i64, String)> {
    response
        .transaction_states
        .iter()
        .map(|t| {
            (
                t.transactional_id.0.to_string(),
                t.producer_id.0,
                t.transaction_state.to_string(),
            )
        })
        .collect()
}

/// DescribeProducers for `partitions` of `topic`, by partition index.
fn producers(
    raw: &mut RawClient,
    topic: &str,
    partitions: &[i32],
) -> BTreeMap<i32, PartitionResponse> {
    let request = DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
        .with_name(topic_name(topic))
        .with_partition_indexes(partitions.to_vec())]);
    let response = raw.call(0, &request);
    assert_eq!(response.topics.len(), 1, "{response:?}");
    assert_eq!(response.topics[0].name.0.as_str(), topic);
    response.topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.clone()))
        .collect()
}

/// Runs `starling txn ARGS --bootstrap B`: (success, stdout, stderr).
fn cli(bootstrap: &str, args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["txn"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--bootstrap", bootstrap]);
    let (status, stdout, stderr) = run_to_exit(&all, CLI_LIMIT);
    (status.success(), stdout, stderr)
}

fn cli_ok(bootstrap: &str, args: &[&str]) -> String {
    let (ok, stdout, stderr) = cli(bootstrap, args);
    assert!(
        ok,
        "`starling txn {}` failed\n--- stdout ---\n{stdout}--- stderr ---\n{stderr}",
        args.join(" ")
    );
    stdout
}

/// The cells of the one row under the header of `stdout`.
fn only_row(stdout: &str) -> Vec<String> {
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "a header and one row: {stdout}");
    lines[1].split_whitespace().map(str::to_string).collect()
}

/// The table row of `stdout` whose first cell is `first`, split into cells.
fn row(stdout: &str, first: &str) -> Vec<String> {
    stdout
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .find(|cells| cells.first().map(String::as_str) == Some(first))
        .unwrap_or_else(|| panic!("no row starting with {first:?} in\n{stdout}"))
}

/// `name{labels} value` from the broker's `/metrics`, if present.
fn metric(broker: &Broker, name: &str, labels: &str) -> Option<f64> {
    let (status, body) = http_get(broker.admin_addr(), "/metrics");
    assert_eq!(status, 200, "{body}");
    let series = if labels.is_empty() {
        name.to_string()
    } else {
        format!("{name}{{{labels}}}")
    };
    body.lines().find_map(|l| {
        let (s, v) = l.rsplit_once(' ')?;
        (s == series).then(|| v.parse().expect("a number"))
    })
}

fn metric_value(broker: &Broker, name: &str, labels: &str) -> f64 {
    metric(broker, name, labels).unwrap_or_else(|| panic!("no {name}{{{labels}}} in /metrics"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_transaction_is_described_listed_and_traced_to_its_producer_until_it_commits() {
    let _dog = watchdog(Duration::from_secs(240));
    let broker = Broker::start(&[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, TOPIC, 3).await;
    let p = txn_producer(&bootstrap, TXN_ID);
    let began_before = now_ms();
    p.begin_transaction().unwrap();
    send(&p, 0, 3);
    send(&p, 2, 2);
    // Delivered: the partitions are added and the transactional batches written.
    p.flush(T).unwrap();
    let mut raw = RawClient::connect(broker.addr());

    // DescribeTransactions: Ongoing on partitions 0 and 2; an unknown id is not found.
    let described = describe(&mut raw, &[TXN_ID, "nobody"]);
    assert_eq!(described.len(), 2, "{described:?}");
    let d = &described[0];
    assert_eq!(d.error_code, 0, "{d:?}");
    assert_eq!(d.transactional_id.0.as_str(), TXN_ID);
    assert_eq!(d.transaction_state.as_str(), "Ongoing");
    assert_eq!(d.transaction_timeout_ms, 120_000);
    assert!(
        d.transaction_start_time_ms >= began_before - 1_000
            && d.transaction_start_time_ms <= now_ms(),
        "start {} (began after {began_before})",
        d.transaction_start_time_ms
    );
    let topics: Vec<(String, Vec<i32>)> = d
        .topics
        .iter()
        .map(|t| (t.topic.0.to_string(), t.partitions.clone()))
        .collect();
    assert_eq!(topics, vec![(TOPIC.to_string(), vec![0, 2])]);
    let (pid, epoch) = (d.producer_id.0, d.producer_epoch);
    assert!(pid >= 0 && epoch >= 0, "{d:?}");
    assert_eq!(
        described[1].error_code,
        ResponseError::TransactionalIdNotFound.code()
    );

    // ListTransactions and its filters.
    let me = (TXN_ID.to_string(), pid, "Ongoing".to_string());
    let all = list(&mut raw, 0, &[], &[], -1);
    assert_eq!(listed(&all), vec![me.clone()]);
    let by_state = list(&mut raw, 1, &["Ongoing", "Bogus"], &[], -1);
    assert_eq!(listed(&by_state), vec![me.clone()]);
    let unknown: Vec<&str> = by_state
        .unknown_state_filters
        .iter()
        .map(|s| s.as_str())
        .collect();
    assert_eq!(unknown, vec!["Bogus"]);
    assert!(listed(&list(&mut raw, 1, &["CompleteCommit"], &[], -1)).is_empty());
    assert_eq!(
        listed(&list(&mut raw, 1, &[], &[pid], -1)),
        vec![me.clone()]
    );
    assert!(listed(&list(&mut raw, 1, &[], &[pid + 1], -1)).is_empty());
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(listed(&list(&mut raw, 1, &[], &[], 10)), vec![me.clone()]);
    assert!(
        listed(&list(&mut raw, 1, &[], &[], 3_600_000)).is_empty(),
        "running for less than an hour"
    );

    // DescribeProducers: each written partition's open transaction starts at offset 0.
    let open = producers(&mut raw, TOPIC, &[0, 1, 2, 9]);
    for (partition, last_sequence) in [(0, 2), (2, 1)] {
        let part = &open[&partition];
        assert_eq!(part.error_code, 0, "{part:?}");
        assert_eq!(part.active_producers.len(), 1, "{part:?}");
        let s = &part.active_producers[0];
        assert_eq!(s.producer_id.0, pid);
        assert_eq!(s.producer_epoch, i32::from(epoch));
        assert_eq!(s.last_sequence, last_sequence, "partition {partition}");
        assert_eq!(s.coordinator_epoch, -1);
        assert_eq!(s.current_txn_start_offset, 0, "partition {partition}");
        assert!(s.last_timestamp >= began_before - 1_000, "{s:?}");
    }
    assert_eq!(open[&1].error_code, 0);
    assert!(open[&1].active_producers.is_empty(), "{:?}", open[&1]);
    assert_eq!(
        open[&9].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    let gone = producers(&mut raw, "no-such-topic", &[0]);
    assert_eq!(
        gone[&0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );

    // The CLI shows the same.
    let out = cli_ok(&bootstrap, &["describe", TXN_ID]);
    let cells = only_row(&out);
    assert_eq!(cells[1], TXN_ID, "{out}");
    assert_eq!(cells[2], pid.to_string(), "{out}");
    assert_eq!(cells[4], "Ongoing", "{out}");
    assert_eq!(cells[8], format!("{TOPIC}:0,2"), "{out}");
    let out = cli_ok(&bootstrap, &["list", "--state", "ongoing"]);
    let cells = row(&out, TXN_ID);
    assert_eq!(
        (cells[2].as_str(), cells[3].as_str()),
        (pid.to_string().as_str(), "Ongoing"),
        "{out}"
    );
    let out = cli_ok(&bootstrap, &["producers", TOPIC]);
    for partition in ["0", "2"] {
        let cells = row(&out, partition);
        assert_eq!(cells[1], pid.to_string(), "{out}");
        assert_eq!(cells.last().unwrap(), "0", "{out}");
    }
    assert!(
        out.lines().all(|l| !l.starts_with("1 ")),
        "partition 1 has no producer: {out}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&cli_ok(&bootstrap, &["list", "--json"])).unwrap();
    assert_eq!(json[0]["transactional_id"], TXN_ID, "{json}");
    assert_eq!(json[0]["state"], "Ongoing", "{json}");

    // The metrics count one open transaction, on partitions 0 and 2.
    let state = |s: &str| format!("state=\"{s}\"");
    let partition = |p: i32| format!("topic=\"{TOPIC}\",partition=\"{p}\"");
    assert_eq!(
        metric_value(&broker, "starling_transactions", &state("Ongoing")),
        1.0
    );
    assert_eq!(
        metric_value(&broker, "starling_transactions", &state("CompleteCommit")),
        0.0
    );
    assert!(metric_value(&broker, "starling_transaction_open_age_seconds_max", "") > 0.0);
    for (p, open) in [(0, 1.0), (1, 0.0), (2, 1.0)] {
        assert_eq!(
            metric_value(
                &broker,
                "starling_partition_open_transactions",
                &partition(p)
            ),
            open,
            "partition {p}"
        );
    }

    // Commit: once its markers are written the transaction is CompleteCommit.
    p.commit_transaction(T).unwrap();
    let deadline = Instant::now() + T;
    let done = loop {
        let d = describe(&mut raw, &[TXN_ID]).remove(0);
        if d.transaction_state.as_str() == "CompleteCommit" {
            break d;
        }
        assert!(
            Instant::now() < deadline,
            "still {:?} after the commit",
            d.transaction_state
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!((done.producer_id.0, done.producer_epoch), (pid, epoch));
    assert!(done.topics.is_empty(), "{done:?}");
    assert!(listed(&list(&mut raw, 1, &["Ongoing"], &[], -1)).is_empty());
    assert_eq!(
        listed(&list(&mut raw, 1, &["CompleteCommit"], &[], -1)),
        vec![(TXN_ID.to_string(), pid, "CompleteCommit".to_string())]
    );
    let closed = producers(&mut raw, TOPIC, &[0, 2]);
    for p in [0, 2] {
        let s = &closed[&p].active_producers[0];
        assert_eq!(s.producer_id.0, pid);
        assert_eq!(s.current_txn_start_offset, -1, "partition {p}: {s:?}");
    }
    let out = cli_ok(&bootstrap, &["describe", TXN_ID]);
    let cells = only_row(&out);
    assert_eq!(cells[4], "CompleteCommit", "{out}");
    assert_eq!(cells[7], "-", "no duration once complete: {out}");
    assert_eq!(
        metric_value(&broker, "starling_transactions", &state("Ongoing")),
        0.0
    );
    assert_eq!(
        metric_value(&broker, "starling_transactions", &state("CompleteCommit")),
        1.0
    );
    assert_eq!(
        metric_value(&broker, "starling_transaction_open_age_seconds_max", ""),
        0.0
    );
    for p in 0..3 {
        assert_eq!(
            metric_value(
                &broker,
                "starling_partition_open_transactions",
                &partition(p)
            ),
            0.0,
            "partition {p}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_fails_on_an_unknown_transactional_id_topic_or_partition() {
    let _dog = watchdog(Duration::from_secs(120));
    let broker = Broker::start(&[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, TOPIC, 1).await;

    let (ok, _, stderr) = cli(&bootstrap, &["describe", "nobody"]);
    assert!(!ok);
    assert!(stderr.contains("TRANSACTIONAL_ID_NOT_FOUND"), "{stderr}");
    let (ok, _, stderr) = cli(&bootstrap, &["producers", "no-such-topic"]);
    assert!(!ok);
    assert!(stderr.contains("UNKNOWN_TOPIC_OR_PARTITION"), "{stderr}");
    let (ok, _, stderr) = cli(&bootstrap, &["producers", TOPIC, "--partition", "0,5"]);
    assert!(!ok);
    assert!(
        stderr.contains(&format!("{TOPIC}-5: UNKNOWN_TOPIC_OR_PARTITION")),
        "{stderr}"
    );
    // Nothing to list is no failure; an unknown state is warned about.
    let (ok, stdout, stderr) = cli(&bootstrap, &["list", "--state", "Bogus"]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.lines().count(), 1, "only the header: {stdout}");
    assert!(stderr.contains("unknown state filter(s) Bogus"), "{stderr}");
    // Before any transaction the metrics count none.
    assert_eq!(
        metric_value(&broker, "starling_transactions", "state=\"Ongoing\""),
        0.0
    );
    assert_eq!(
        metric_value(&broker, "starling_transaction_open_age_seconds_max", ""),
        0.0
    );
}
