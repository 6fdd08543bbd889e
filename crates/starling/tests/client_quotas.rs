//! Client quotas end to end: `starling quota alter|describe` against the broker (filters,
//! defaults, validate-only, removal, persistence across a restart), every error Kafka gives
//! for DescribeClientQuotas and AlterClientQuotas by raw requests, and enforcement — a producer
//! or consumer over its byte rate gets `throttle_time_ms` and a muted connection while another
//! client id goes free, a librdkafka producer's achieved rate stays near its quota, and a
//! client over its request percentage is throttled on any request.

mod common;

use std::time::{Duration, Instant};

use common::*;
use kafka_protocol::messages::alter_client_quotas_request::{
    AlterClientQuotasRequest, EntityData, EntryData, OpData,
};
use kafka_protocol::messages::describe_client_quotas_request::{
    ComponentData, DescribeClientQuotasRequest,
};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{BrokerId, FetchRequest, MetadataRequest, ProduceRequest};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use starling_client::{Connection, Options};

/// A librdkafka client context keeping the largest broker throttle time its statistics report.
#[derive(Default)]
struct ThrottleStats {
    max: std::sync::Arc<std::sync::Mutex<i64>>,
}

impl rdkafka::ClientContext for ThrottleStats {
    fn stats(&self, statistics: rdkafka::Statistics) {
        let mut max = self.max.lock().unwrap();
        for broker in statistics.brokers.values() {
            if let Some(window) = &broker.throttle {
                *max = (*max).max(window.max);
            }
        }
    }
}

/// The client id of every [`RawClient`] request.
const RAW_CLIENT: &str = "starling-e2e-raw";

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn quota(bootstrap: &str, args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["quota", "--bootstrap", bootstrap];
    all.extend_from_slice(args);
    let (status, out, err) = run_to_exit(&all, Duration::from_secs(30));
    (status.success(), out, err)
}

fn quota_ok(bootstrap: &str, args: &[&str]) -> String {
    let (ok, out, err) = quota(bootstrap, args);
    assert!(ok, "starling quota {args:?} failed\n{out}\n{err}");
    out
}

fn describe_json(bootstrap: &str, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["describe", "--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&quota_ok(bootstrap, &all)).expect("describe --json is JSON")
}

fn set_quota(bootstrap: &str, entity: &[&str], config: &str) {
    let mut args = vec!["alter"];
    args.extend_from_slice(entity);
    args.extend_from_slice(&["--add-config", config]);
    quota_ok(bootstrap, &args);
}

#[test]
fn quotas_set_with_the_cli_are_described_by_filter_and_survive_a_restart() {
    let _dog = watchdog(Duration::from_secs(120));
    let mut broker = Broker::start(&[]);
    let b = broker.bootstrap();
    let out = quota_ok(
        &b,
        &[
            "alter",
            "--client",
            "app",
            "--add-config",
            "producer_byte_rate=1024,request_percentage=12.5",
        ],
    );
    assert!(
        out.contains("client-id=app") && out.contains("altered"),
        "{out}"
    );
    set_quota(
        &b,
        &["--user-defaults", "--client", "app"],
        "consumer_byte_rate=2048",
    );
    set_quota(&b, &["--client-defaults"], "producer_byte_rate=4096");
    set_quota(&b, &["--ip-defaults"], "connection_creation_rate=10");
    set_quota(&b, &["--user", "alice"], "controller_mutation_rate=5.5");

    let all = describe_json(&b, &[]);
    assert_eq!(all.as_array().unwrap().len(), 5, "{all}");

    // Exact client-id: the client-only entity and the (default user, app) one; strict keeps
    // the first only.
    let app = describe_json(&b, &["--client", "app"]);
    assert_eq!(app.as_array().unwrap().len(), 2, "{app}");
    let strict = describe_json(&b, &["--client", "app", "--strict"]);
    assert_eq!(
        strict,
        serde_json::json!([{
            "entity": {"client-id": "app"},
            "quotas": {"producer_byte_rate": 1024.0, "request_percentage": 12.5}
        }])
    );
    let defaults = describe_json(&b, &["--client-defaults"]);
    assert_eq!(
        defaults,
        serde_json::json!([{
            "entity": {"client-id": null},
            "quotas": {"producer_byte_rate": 4096.0}
        }])
    );
    // Any entity with a client-id, the default one included (Kafka's "specified" match).
    let any = describe_json(&b, &["--client-any"]);
    assert_eq!(any.as_array().unwrap().len(), 3, "{any}");
    let any_strict = describe_json(&b, &["--client-any", "--strict"]);
    assert_eq!(any_strict.as_array().unwrap().len(), 2, "{any_strict}");
    let users = describe_json(&b, &["--user-defaults"]);
    assert_eq!(users[0]["entity"]["user"], serde_json::Value::Null);
    let table = quota_ok(&b, &["describe", "--ip-defaults"]);
    assert!(
        table.contains("ip=<default>") && table.contains("connection_creation_rate  10"),
        "{table}"
    );

    // validate-only changes nothing; delete-config removes a key, the last one the entity.
    quota_ok(
        &b,
        &[
            "alter",
            "--client",
            "app",
            "--add-config",
            "producer_byte_rate=1",
            "--validate-only",
        ],
    );
    quota_ok(
        &b,
        &[
            "alter",
            "--user",
            "alice",
            "--delete-config",
            "controller_mutation_rate",
        ],
    );
    quota_ok(
        &b,
        &[
            "alter",
            "--client",
            "app",
            "--delete-config",
            "request_percentage",
        ],
    );
    let expected = serde_json::json!([{
        "entity": {"client-id": "app"},
        "quotas": {"producer_byte_rate": 1024.0}
    }]);
    assert_eq!(
        describe_json(&b, &["--client", "app", "--strict"]),
        expected
    );
    assert!(describe_json(&b, &["--user", "alice"])
        .as_array()
        .unwrap()
        .is_empty());

    broker.restart();
    let b = broker.bootstrap();
    assert_eq!(
        describe_json(&b, &["--client", "app", "--strict"]),
        expected
    );
    assert_eq!(describe_json(&b, &[]).as_array().unwrap().len(), 4);
}

#[test]
fn the_cli_prints_kafkas_error_and_exits_non_zero() {
    let _dog = watchdog(Duration::from_secs(60));
    let broker = Broker::start(&[]);
    let b = broker.bootstrap();
    let (ok, out, err) = quota(
        &b,
        &[
            "alter",
            "--client",
            "app",
            "--add-config",
            "producer_byte_rate=1.5",
        ],
    );
    assert!(!ok);
    assert!(out.contains("INVALID_REQUEST"), "{out}");
    assert!(
        err.contains("producer_byte_rate cannot be a fractional value."),
        "{err}"
    );
    let (ok, _, err) = quota(&b, &["alter", "--add-config", "producer_byte_rate=10"]);
    assert!(!ok);
    assert!(err.contains("Invalid empty client quota entity"), "{err}");
    let (ok, _, err) = quota(&b, &["alter", "--client", "app", "--add-config", "bogus=1"]);
    assert!(!ok);
    assert!(err.contains("Invalid configuration key bogus"), "{err}");
}

fn entity(pairs: &[(&str, Option<&str>)]) -> Vec<EntityData> {
    pairs
        .iter()
        .map(|(t, n)| {
            EntityData::default()
                .with_entity_type(s(t))
                .with_entity_name(n.map(s))
        })
        .collect()
}

fn set_op(key: &str, value: f64) -> OpData {
    OpData::default().with_key(s(key)).with_value(value)
}

fn alter_one(raw: &mut RawClient, version: i16, entry: EntryData) -> (i16, Option<String>) {
    let resp = raw.call(
        version,
        &AlterClientQuotasRequest::default().with_entries(vec![entry]),
    );
    assert_eq!(resp.entries.len(), 1, "{resp:?}");
    let e = &resp.entries[0];
    (
        e.error_code,
        e.error_message.as_ref().map(|m| m.to_string()),
    )
}

#[test]
fn every_alter_error_is_invalid_request_with_kafkas_message_at_both_versions() {
    let _dog = watchdog(Duration::from_secs(60));
    let broker = Broker::start(&[]);
    let mut raw = RawClient::connect(broker.addr());
    let invalid = ResponseError::InvalidRequest.code();
    let app = || entity(&[("client-id", Some("app"))]);
    let cases: Vec<(Vec<EntityData>, Vec<OpData>, &str)> = vec![
        (
            vec![],
            vec![set_op("producer_byte_rate", 1.0)],
            "Invalid empty client quota entity",
        ),
        (
            entity(&[("group", Some("g"))]),
            vec![set_op("producer_byte_rate", 1.0)],
            "Unhandled client quota entity type: group",
        ),
        (
            entity(&[("client-id", Some(""))]),
            vec![set_op("producer_byte_rate", 1.0)],
            "Empty client-id not supported",
        ),
        (
            entity(&[("ip", Some("10.0.0.1")), ("client-id", Some("app"))]),
            vec![set_op("connection_creation_rate", 1.0)],
            "Invalid quota entity combination, IP entity shouldnot be combined with User or ClientId",
        ),
        (
            entity(&[("ip", Some("not an ip"))]),
            vec![set_op("connection_creation_rate", 1.0)],
            "not an ip is not a valid IP or resolvable host.",
        ),
        (
            entity(&[("ip", None)]),
            vec![set_op("producer_byte_rate", 1.0)],
            "Invalid configuration key producer_byte_rate",
        ),
        (
            app(),
            vec![set_op("connection_creation_rate", 1.0)],
            "Invalid configuration key connection_creation_rate",
        ),
        (
            app(),
            vec![set_op("request_percentage", -1.0)],
            "Quota request_percentage must be greater than 0",
        ),
        (
            app(),
            vec![set_op("consumer_byte_rate", 1e30)],
            "Proposed value for consumer_byte_rate is too large for a LONG.",
        ),
        (
            app(),
            vec![set_op("consumer_byte_rate", 10.25)],
            "consumer_byte_rate cannot be a fractional value.",
        ),
        (
            app(),
            vec![
                set_op("producer_byte_rate", 10.0),
                set_op("producer_byte_rate", 20.0),
            ],
            "Ignoring duplicate entity ClientQuotaEntity(entries={client-id=app})",
        ),
    ];
    for version in [0, 1] {
        for (e, ops, message) in &cases {
            let entry = EntryData::default()
                .with_entity(e.clone())
                .with_ops(ops.clone());
            assert_eq!(
                alter_one(&mut raw, version, entry),
                (invalid, Some(message.to_string())),
                "v{version} {message}"
            );
        }
    }
    // One bad entity does not stop another in the same request.
    let resp = raw.call(
        1,
        &AlterClientQuotasRequest::default().with_entries(vec![
            EntryData::default()
                .with_entity(app())
                .with_ops(vec![set_op("bogus", 1.0)]),
            EntryData::default()
                .with_entity(entity(&[("user", None)]))
                .with_ops(vec![set_op("producer_byte_rate", 100.0)]),
        ]),
    );
    let codes: Vec<i16> = resp.entries.iter().map(|e| e.error_code).collect();
    assert_eq!(codes, vec![invalid, 0]);
    let described = raw.call(1, &DescribeClientQuotasRequest::default());
    let entries = described.entries.expect("entries");
    assert_eq!(entries.len(), 1, "only the valid entity was stored");
    assert_eq!(entries[0].entity[0].entity_type.as_str(), "user");
    assert_eq!(entries[0].entity[0].entity_name, None);
}

#[test]
fn every_describe_filter_error_is_kafkas_with_no_entries() {
    let _dog = watchdog(Duration::from_secs(60));
    let broker = Broker::start(&[]);
    let mut raw = RawClient::connect(broker.addr());
    let c = |t: &str, m: i8, n: Option<&str>| {
        ComponentData::default()
            .with_entity_type(s(t))
            .with_match_type(m)
            .with_match(n.map(s))
    };
    let invalid = ResponseError::InvalidRequest.code();
    let cases = vec![
        (vec![c("", 0, Some("x"))], invalid, "Invalid empty entity type."),
        (
            vec![c("user", 0, Some("x")), c("user", 1, None)],
            invalid,
            "Entity type user cannot appear more than once in the filter.",
        ),
        (
            vec![c("group", 0, Some("g"))],
            ResponseError::UnsupportedVersion.code(),
            "Unsupported entity type group",
        ),
        (
            vec![c("client-id", 0, None)],
            invalid,
            "Request specified MATCH_TYPE_EXACT, but set match string to null.",
        ),
        (
            vec![c("client-id", 1, Some("x"))],
            invalid,
            "Request specified MATCH_TYPE_DEFAULT, but also specified a match string.",
        ),
        (
            vec![c("client-id", 2, Some("x"))],
            invalid,
            "Request specified MATCH_TYPE_SPECIFIED, but also specified a match string.",
        ),
        (vec![c("client-id", 9, None)], invalid, "Unknown match type 9"),
        (
            vec![c("ip", 2, None), c("client-id", 2, None)],
            invalid,
            "Invalid entity filter component combination. IP filter component should not be used with user or clientId filter component.",
        ),
    ];
    for version in [0, 1] {
        for (components, code, message) in &cases {
            let resp = raw.call(
                version,
                &DescribeClientQuotasRequest::default().with_components(components.clone()),
            );
            assert_eq!(resp.error_code, *code, "v{version} {message}");
            assert_eq!(
                resp.error_message.as_ref().map(|m| m.to_string()),
                Some(message.to_string())
            );
            assert!(resp.entries.is_none());
        }
    }
}

/// One Produce v7 request of `batch` to partition 0 of `topic`.
fn produce_request(topic: &str, batch: bytes::Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch))])])
}

fn batch_of(bytes: usize) -> bytes::Bytes {
    let value = vec![b'x'; bytes];
    record_batch(&[(None, Some(&value[..]))], now_ms())
}

fn metrics(broker: &Broker) -> String {
    let (status, body) = http_get(broker.admin_addr(), "/metrics");
    assert_eq!(status, 200);
    body
}

#[test]
fn a_producer_over_its_byte_rate_is_throttled_and_muted_while_another_client_id_is_not() {
    let _dog = watchdog(Duration::from_secs(90));
    let broker = Broker::start(&[]);
    let b = broker.bootstrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(create_topic(&b, "quota-produce", 1));
    set_quota(&b, &["--client", RAW_CLIENT], "producer_byte_rate=10000");

    // 11 windows of 1 s: the first 10 s allow 100 000 bytes. Just under that is not throttled.
    let mut raw = RawClient::connect(broker.addr());
    let first = raw.call(7, &produce_request("quota-produce", batch_of(95_000)));
    assert_eq!(first.throttle_time_ms, 0);
    // The next 20 000 bytes take the rate to about 11 500 B/s over 10 s: 1.5 s of throttle.
    let second = raw.call(7, &produce_request("quota-produce", batch_of(20_000)));
    let error = second.responses[0].partition_responses[0].error_code;
    assert_eq!(error, 0, "a throttled produce is still written");
    let throttle = second.throttle_time_ms;
    assert!((500..=3_000).contains(&throttle), "throttle {throttle} ms");
    // KIP-219: the connection reads nothing for that long after the response.
    let started = Instant::now();
    raw.call(9, &MetadataRequest::default());
    let muted = started.elapsed();
    assert!(
        muted >= Duration::from_millis(throttle as u64 - 100),
        "the next request was answered after {muted:?}, throttle {throttle} ms"
    );

    // A Produce v5 client does not back off by itself (KIP-219): its response comes late.
    let started = Instant::now();
    let old = raw.call(5, &produce_request("quota-produce", batch_of(100)));
    let late = started.elapsed();
    assert!(old.throttle_time_ms > 0);
    assert!(
        late >= Duration::from_millis(old.throttle_time_ms as u64 - 100),
        "answered after {late:?}, throttle {} ms",
        old.throttle_time_ms
    );

    // Another client id is under no quota.
    rt.block_on(async {
        let options = Options {
            client_id: "free".to_string(),
            ..Options::default()
        };
        let mut free = Connection::connect(&b, &options).await.unwrap();
        for _ in 0..5 {
            let resp = free
                .send(7, &produce_request("quota-produce", batch_of(100_000)))
                .await
                .unwrap();
            assert_eq!(resp.throttle_time_ms, 0);
        }
    });

    let body = metrics(&broker);
    let line = body
        .lines()
        .find(|l| {
            l.starts_with("starling_quota_throttle_time_seconds_total")
                && l.contains(&format!("client_id=\"{RAW_CLIENT}\""))
                && l.contains("quota_type=\"produce\"")
        })
        .unwrap_or_else(|| panic!("no produce throttle metric for {RAW_CLIENT}:\n{body}"));
    let seconds: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(seconds > 0.4, "{line}");
    assert!(!body.contains("client_id=\"free\""), "{body}");
}

#[test]
fn a_librdkafka_producers_achieved_rate_stays_near_its_quota() {
    let _dog = watchdog(Duration::from_secs(120));
    let broker = Broker::start(&[]);
    let b = broker.bootstrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(create_topic(&b, "quota-rate", 1));
    let quota = 50_000.0;
    set_quota(&b, &["--client", "slow"], "producer_byte_rate=50000");

    let run = |client_id: &str, seconds: u64| -> (f64, i64) {
        let stats = ThrottleStats::default();
        let seen = stats.max.clone();
        let producer: FutureProducer<ThrottleStats> = client_config(
            &b,
            &[
                ("client.id", client_id),
                ("acks", "all"),
                ("linger.ms", "0"),
                ("batch.size", "16384"),
                ("queue.buffering.max.kbytes", "256"),
                ("statistics.interval.ms", "200"),
            ],
        )
        .create_with_context(stats)
        .expect("create producer");
        let value = vec![b'v'; 1000];
        let started = Instant::now();
        let mut sent = 0usize;
        rt.block_on(async {
            while started.elapsed() < Duration::from_secs(seconds) {
                let mut pending = Vec::new();
                for _ in 0..16 {
                    let record = FutureRecord::<(), [u8]>::to("quota-rate")
                        .partition(0)
                        .payload(&value[..]);
                    pending.push(producer.send_result(record).map_err(|(e, _)| e).unwrap());
                }
                for p in pending {
                    p.await.unwrap().unwrap();
                    sent += value.len();
                }
            }
        });
        let rate = sent as f64 / started.elapsed().as_secs_f64();
        // One more statistics interval, so the last throttle is reported.
        std::thread::sleep(Duration::from_millis(500));
        let throttle = *seen.lock().unwrap();
        (rate, throttle)
    };
    // Over 6 s the first 10 s window's allowance (500 kB) spreads over 6 s: about 1.7 × the
    // quota, loosely below 3 ×.
    let (slow_rate, slow_throttle) = run("slow", 6);
    assert!(
        slow_rate < 3.0 * quota,
        "throttled producer achieved {slow_rate:.0} B/s against a quota of {quota} B/s"
    );
    assert!(
        slow_throttle > 0,
        "librdkafka's statistics show no throttle_time_ms"
    );
    let (free_rate, free_throttle) = run("free", 2);
    assert!(
        free_rate > 3.0 * quota,
        "an unthrottled client id reached only {free_rate:.0} B/s"
    );
    assert_eq!(free_throttle, 0);
}

fn fetch_request(topic: &str, offset: i64) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(10 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(10 << 20)])])
}

#[test]
fn a_consumer_over_its_byte_rate_gets_an_empty_throttled_fetch_while_another_client_id_reads() {
    let _dog = watchdog(Duration::from_secs(90));
    let broker = Broker::start(&[]);
    let b = broker.bootstrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(create_topic(&b, "quota-fetch", 1));
    let mut raw = RawClient::connect(broker.addr());
    // 30 batches of 10 kB.
    for _ in 0..30 {
        raw.call(7, &produce_request("quota-fetch", batch_of(10_000)));
    }
    set_quota(&b, &["--client", RAW_CLIENT], "consumer_byte_rate=10000");

    // A fetch may return what the quota lets through in 10 windows: 100 kB (and always the
    // first batch whole), so the first fetch stops short of the 300 kB.
    let first = raw.call(11, &fetch_request("quota-fetch", 0));
    assert_eq!(first.throttle_time_ms, 0);
    let records = first.responses[0].partitions[0].records.clone().unwrap();
    let fetched = count_records(&records);
    assert!(
        !fetched.is_empty() && fetched.len() < 30,
        "{} batches",
        fetched.len()
    );
    assert!(records.len() <= 100_000, "{} bytes", records.len());
    let next = fetched
        .iter()
        .map(|(o, n)| o + i64::from(*n))
        .max()
        .unwrap();
    // Reading more goes over the quota: Kafka answers nothing but the throttle time.
    let second = raw.call(11, &fetch_request("quota-fetch", next));
    assert!(second.throttle_time_ms > 0, "{second:?}");
    assert!(second.responses.is_empty(), "{:?}", second.responses);

    rt.block_on(async {
        let options = Options {
            client_id: "free-reader".to_string(),
            ..Options::default()
        };
        let mut free = Connection::connect(&b, &options).await.unwrap();
        let resp = free
            .send(4, &fetch_request("quota-fetch", 0))
            .await
            .unwrap();
        assert_eq!(resp.throttle_time_ms, 0);
        let records = resp.responses[0].partitions[0].records.clone().unwrap();
        assert_eq!(count_records(&records).len(), 30);
    });
    let body = metrics(&broker);
    assert!(
        body.lines().any(
            |l| l.starts_with("starling_quota_throttled_responses_total")
                && l.contains("quota_type=\"fetch\"")
        ),
        "{body}"
    );
}

#[test]
fn a_client_over_its_request_percentage_is_throttled_on_any_request() {
    let _dog = watchdog(Duration::from_secs(90));
    let broker = Broker::start(&[]);
    let b = broker.bootstrap();
    // 0.0001% of a thread: 10 µs of handling over the 10 s window.
    set_quota(&b, &["--client", RAW_CLIENT], "request_percentage=0.0001");
    let mut raw = RawClient::connect(broker.addr());
    let mut throttled = None;
    for _ in 0..500 {
        let resp = raw.call(12, &MetadataRequest::default().with_topics(None));
        if resp.throttle_time_ms > 0 {
            throttled = Some(resp.throttle_time_ms);
            break;
        }
    }
    let ms = throttled.expect("no Metadata response was throttled");
    // Kafka bounds a request-quota throttle to one window (quota.window.size.seconds).
    assert!((1..=1000).contains(&ms), "{ms}");
    // Other client ids are not.
    let free = rt_metadata_throttle(&b, "other");
    assert_eq!(free, 0);
}

fn rt_metadata_throttle(bootstrap: &str, client_id: &str) -> i32 {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let options = Options {
            client_id: client_id.to_string(),
            ..Options::default()
        };
        let mut conn = Connection::connect(bootstrap, &options).await.unwrap();
        conn.send(12, &MetadataRequest::default().with_topics(None))
            .await
            .unwrap()
            .throttle_time_ms
    })
}

#[test]
fn quota_window_settings_are_accepted_and_checked() {
    let _dog = watchdog(Duration::from_secs(60));
    let broker = Broker::with_overrides(&[
        ("quota.window.num", "5"),
        ("quota.window.size.seconds", "2"),
    ]);
    let b = broker.bootstrap();
    set_quota(&b, &["--client", RAW_CLIENT], "producer_byte_rate=1000");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(create_topic(&b, "quota-window", 1));
    // 4 full windows of 2 s: 8 000 bytes pass; 12 000 is 50% over for 8 s: 4 s of throttle.
    let mut raw = RawClient::connect(broker.addr());
    let resp = raw.call(7, &produce_request("quota-window", batch_of(12_000)));
    assert!(
        (3_000..=5_500).contains(&resp.throttle_time_ms),
        "{}",
        resp.throttle_time_ms
    );
    let refused = Broker::try_start(
        &override_args(&[("quota.window.num", "0")])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(refused.is_err());
}

#[test]
fn connections_over_their_ips_creation_rate_are_closed_unserved() {
    let _dog = watchdog(Duration::from_secs(90));
    let broker = Broker::start(&[]);
    let b = broker.bootstrap();
    // One a second: the first 10 s allow 10 new connections from 127.0.0.1.
    set_quota(&b, &["--ip", "127.0.0.1"], "connection_creation_rate=1");
    let mut served = 0;
    for _ in 0..14 {
        let mut raw = RawClient::connect(broker.addr());
        raw.stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let correlation = raw.send(9, &MetadataRequest::default());
        match raw.read_frame() {
            Ok(_) => served += 1,
            // Closed, after at most one window (quota.window.size.seconds), without an answer.
            Err(e) => assert!(
                matches!(
                    e.kind(),
                    std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
                ),
                "request {correlation}: {e}"
            ),
        }
    }
    assert_eq!(served, 10, "connections served of 14");
    let body = metrics(&broker);
    assert!(
        body.lines().any(
            |l| l.starts_with("starling_quota_throttled_responses_total")
                && l.contains("ip=\"127.0.0.1\"")
                && l.contains("quota_type=\"connection\"")
        ),
        "{body}"
    );
}

#[test]
fn a_librdkafka_consumers_achieved_rate_stays_near_its_quota() {
    use rdkafka::consumer::Consumer;
    use rdkafka::message::Message;

    let _dog = watchdog(Duration::from_secs(120));
    let broker = Broker::start(&[]);
    let b = broker.bootstrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(create_topic(&b, "quota-read", 1));
    // 3 MB in 10 kB batches, from a client id under no quota.
    rt.block_on(async {
        let options = Options {
            client_id: "writer".to_string(),
            ..Options::default()
        };
        let mut conn = Connection::connect(&b, &options).await.unwrap();
        for _ in 0..300 {
            conn.send(7, &produce_request("quota-read", batch_of(10_000)))
                .await
                .unwrap();
        }
    });
    let quota = 100_000.0;
    set_quota(
        &b,
        &["--client", "slow-reader"],
        "consumer_byte_rate=100000",
    );

    let read = |client_id: &str, seconds: u64| -> f64 {
        let c = consumer(
            &b,
            &[
                ("client.id", client_id),
                ("auto.offset.reset", "earliest"),
                ("fetch.wait.max.ms", "100"),
            ],
        );
        c.assign(&{
            let mut tpl = rdkafka::TopicPartitionList::new();
            tpl.add_partition_offset("quota-read", 0, rdkafka::Offset::Beginning)
                .unwrap();
            tpl
        })
        .unwrap();
        let started = Instant::now();
        let mut bytes = 0usize;
        while started.elapsed() < Duration::from_secs(seconds) && bytes < 3_000_000 {
            if let Some(m) = c.poll(Duration::from_millis(100)) {
                bytes += m.expect("consume").payload().map_or(0, <[u8]>::len);
            }
        }
        bytes as f64 / started.elapsed().as_secs_f64()
    };
    // The first fetches may take the first 10 s window's allowance (1 MB) at once; over 6 s
    // that is about 1.7 × the quota, loosely below 3 ×.
    let slow = read("slow-reader", 6);
    assert!(
        slow < 3.0 * quota && slow > 0.0,
        "throttled consumer read {slow:.0} B/s against a quota of {quota} B/s"
    );
    let free = read("free-reader", 20);
    assert!(
        free > 3.0 * quota,
        "an unthrottled client id read only {free:.0} B/s"
    );
}

fn creatable(
    name: &str,
    partitions: i32,
) -> kafka_protocol::messages::create_topics_request::CreatableTopic {
    kafka_protocol::messages::create_topics_request::CreatableTopic::default()
        .with_name(kafka_protocol::messages::TopicName(s(name)))
        .with_num_partitions(partitions)
        .with_replication_factor(1)
}

fn create_request(
    topics: &[(&str, i32)],
    validate_only: bool,
) -> kafka_protocol::messages::CreateTopicsRequest {
    kafka_protocol::messages::CreateTopicsRequest::default()
        .with_topics(topics.iter().map(|(n, p)| creatable(n, *p)).collect())
        .with_timeout_ms(10_000)
        .with_validate_only(validate_only)
}

#[test]
fn topic_mutations_over_the_controller_mutation_rate_are_refused_per_topic_from_the_strict_versions_and_throttled_before(
) {
    use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
    use kafka_protocol::messages::{CreatePartitionsRequest, DeleteTopicsRequest, TopicName};

    let _dog = watchdog(Duration::from_secs(90));
    let broker = Broker::start(&[]);
    let b = broker.bootstrap();
    // 1 partition a second; 11 windows of 1 s make a burst of 11.
    set_quota(&b, &["--client", RAW_CLIENT], "controller_mutation_rate=1");
    let throttled = ResponseError::ThrottlingQuotaExceeded.code();
    let message = Some(s("The throttling quota has been exceeded."));

    // CreateTopics v7: 10 and 5 partitions pass (the second into debt), the next is refused.
    let mut raw = RawClient::connect(broker.addr());
    let resp = raw.call(
        7,
        &create_request(&[("m-a", 10), ("m-b", 5), ("m-c", 1)], false),
    );
    let codes: Vec<i16> = resp.topics.iter().map(|t| t.error_code).collect();
    assert_eq!(codes, [0, 0, throttled]);
    assert_eq!(resp.topics[2].error_message, message);
    assert!(
        (3_000..=4_000).contains(&resp.throttle_time_ms),
        "{}",
        resp.throttle_time_ms
    );
    // Nothing of the refused topic exists; validate_only costs nothing and is not refused; a
    // topic that already exists is that error, not the quota's.
    let mut raw = RawClient::connect(broker.addr());
    let resp = raw.call(7, &create_request(&[("m-c", 1), ("m-a", 1)], true));
    let codes: Vec<i16> = resp.topics.iter().map(|t| t.error_code).collect();
    assert_eq!(codes, [0, ResponseError::TopicAlreadyExists.code()]);

    // CreateTopics v5 cannot take the error: the topic is created, and the throttle grows.
    let mut raw = RawClient::connect(broker.addr());
    let resp = raw.call(5, &create_request(&[("m-d", 2)], false));
    assert_eq!(resp.topics[0].error_code, 0);
    assert!(
        (4_500..=6_000).contains(&resp.throttle_time_ms),
        "{}",
        resp.throttle_time_ms
    );

    // CreatePartitions: refused at v3, served at v2.
    let grow = |topic: &str| {
        CreatePartitionsRequest::default()
            .with_topics(vec![CreatePartitionsTopic::default()
                .with_name(TopicName(s(topic)))
                .with_count(4)])
            .with_timeout_ms(10_000)
    };
    let mut raw = RawClient::connect(broker.addr());
    let resp = raw.call(3, &grow("m-d"));
    assert_eq!(resp.results[0].error_code, throttled);
    assert_eq!(resp.results[0].error_message, message);
    let mut raw = RawClient::connect(broker.addr());
    let resp = raw.call(2, &grow("m-d"));
    assert_eq!(resp.results[0].error_code, 0);
    assert!(resp.throttle_time_ms > 6_000, "{}", resp.throttle_time_ms);

    // DeleteTopics: refused at v5 (an unknown topic is still its own error), served at v4.
    let delete = |topics: &[&str]| {
        DeleteTopicsRequest::default()
            .with_topic_names(topics.iter().map(|t| TopicName(s(t))).collect())
            .with_timeout_ms(10_000)
    };
    let mut raw = RawClient::connect(broker.addr());
    let resp = raw.call(5, &delete(&["m-a", "m-none"]));
    let codes: Vec<i16> = resp.responses.iter().map(|t| t.error_code).collect();
    assert_eq!(
        codes,
        [throttled, ResponseError::UnknownTopicOrPartition.code()]
    );
    assert_eq!(resp.responses[0].error_message, message);
    let mut raw = RawClient::connect(broker.addr());
    let resp = raw.call(4, &delete(&["m-a"]));
    assert_eq!(resp.responses[0].error_code, 0);
    assert!(resp.throttle_time_ms > 15_000, "{}", resp.throttle_time_ms);

    // Another client id is under no quota, whatever it creates.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let options = Options {
            client_id: "free".to_string(),
            ..Options::default()
        };
        let mut free = Connection::connect(&b, &options).await.unwrap();
        let resp = free
            .send(7, &create_request(&[("m-free", 50)], false))
            .await
            .unwrap();
        assert_eq!(resp.topics[0].error_code, 0);
        assert_eq!(resp.throttle_time_ms, 0);
    });

    let body = metrics(&broker);
    assert!(
        body.lines().any(
            |l| l.starts_with("starling_quota_throttled_responses_total")
                && l.contains("quota_type=\"controller_mutation\"")
        ),
        "{body}"
    );
}
