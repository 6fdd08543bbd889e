//! The admin HTTP endpoint against real clients: `/healthz`; `/metrics` scraped before and
//! after librdkafka producers and consumers work — requests and their error codes per API,
//! network and per-topic bytes, a real rebalance (generation, members, JoinGroup/SyncGroup
//! requests, `starling_group_rebalances_total`), committed offsets and lag per partition; and
//! `/groups` and `/groups/{id}/rebalances` as JSON; `--admin-listen none`, and a taken admin
//! port refusing the start; the idempotent producers each partition remembers.

mod common;
mod groups_support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use groups_support::*;

/// One sample of a scrape: metric name (with its `_total`/`_bucket`… suffix) and labels.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Series {
    name: String,
    labels: BTreeMap<String, String>,
}

/// A parsed `/metrics` exposition.
#[derive(Debug, Default)]
struct Scrape {
    samples: BTreeMap<Series, f64>,
}

impl Scrape {
    fn take(broker: &Broker) -> Scrape {
        let (status, body) = http_get(broker.admin_addr(), "/metrics");
        assert_eq!(status, 200, "GET /metrics: {body}");
        assert!(body.ends_with("# EOF\n"), "exposition without EOF: {body}");
        Scrape::parse(&body)
    }

    fn parse(text: &str) -> Scrape {
        let mut samples = BTreeMap::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let (series, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("sample without a value: {line:?}"));
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}"));
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, parse_labels(rest.trim_end_matches('}'))),
                None => (series, BTreeMap::new()),
            };
            samples.insert(
                Series {
                    name: name.to_string(),
                    labels,
                },
                value,
            );
        }
        Scrape { samples }
    }

    /// The value of the one sample named `name` whose labels include `labels`.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut found = self.samples.iter().filter(|(series, _)| {
            series.name == name
                && labels
                    .iter()
                    .all(|(k, v)| series.labels.get(*k).map(String::as_str) == Some(*v))
        });
        let first = found.next().map(|(_, v)| *v);
        assert!(
            found.next().is_none(),
            "more than one {name} sample with {labels:?}"
        );
        first
    }

    /// Like [`Scrape::get`], 0 when absent.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or(0.0)
    }

    /// Every sample named `name`, for failure messages.
    fn all(&self, name: &str) -> Vec<String> {
        self.samples
            .iter()
            .filter(|(s, _)| s.name == name)
            .map(|(s, v)| format!("{:?} {v}", s.labels))
            .collect()
    }
}

/// `a="x",b="y"` → {a: x, b: y}, with `\"`, `\\` and `\n` unescaped.
fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => {}
                },
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        labels.insert(key.trim_start_matches(',').to_string(), value);
        rest = &after[end..];
    }
    labels
}

/// Scrapes until `done` holds; panics after `limit` showing the group gauges.
fn scrape_until(
    broker: &Broker,
    limit: Duration,
    what: &str,
    done: impl Fn(&Scrape) -> bool,
) -> Scrape {
    let deadline = Instant::now() + limit;
    loop {
        let scrape = Scrape::take(broker);
        if done(&scrape) {
            return scrape;
        }
        if Instant::now() > deadline {
            panic!(
                "{what}: not seen within {limit:?}; members {:?}, generation {:?}, state {:?}",
                scrape.all("starling_group_members"),
                scrape.all("starling_group_generation"),
                scrape.all("starling_group_state"),
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn json_get(addr: SocketAddr, path: &str) -> (u16, serde_json::Value) {
    let (status, body) = http_get(addr, path);
    let json = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body:?}"));
    (status, json)
}

#[test]
fn healthz_answers_ok() {
    let _w = watchdog(Duration::from_secs(60));
    let broker = Broker::start(&[]);
    assert_eq!(
        http_get(broker.admin_addr(), "/healthz"),
        (200, "ok".to_string())
    );
    let (status, _) = http_get(broker.admin_addr(), "/no-such-page");
    assert_eq!(status, 404);
}

#[test]
fn metrics_follow_traffic_a_real_rebalance_and_committed_offsets() {
    let _w = watchdog(Duration::from_secs(180));
    let broker = group_broker(&[]);
    let boot = broker.bootstrap();
    let topic = unique("metrics");
    let group = unique("metrics-group");
    create_topic_sync(&boot, &topic, 4);
    let all = partitions(&topic, 4);
    let t = topic.as_str();
    let g = group.as_str();

    let before = Scrape::take(&broker);
    assert_eq!(
        before.get("starling_partitions", &[("topic", t)]),
        Some(4.0)
    );
    assert_eq!(
        before.get("starling_group_generation", &[("group", g)]),
        None,
        "no group yet"
    );
    assert_eq!(
        before.value("starling_requests_total", &[("api", "JoinGroup")]),
        0.0
    );

    // 10 messages per partition.
    let producer = Producer::new(&boot);
    producer.send_batch(&topic, 4, "first", 40);
    let after_produce = Scrape::take(&broker);
    let produced = after_produce.value("starling_produced_bytes_total", &[("topic", t)]);
    assert!(produced > 0.0, "no produced bytes counted");
    assert!(
        after_produce.value("starling_requests_total", &[("api", "Produce")])
            > before.value("starling_requests_total", &[("api", "Produce")])
    );
    for p in 0..4 {
        let p = p.to_string();
        let labels = [("topic", t), ("partition", p.as_str())];
        assert_eq!(
            after_produce.get("starling_log_end_offset", &labels),
            Some(10.0)
        );
        assert!(after_produce.value("starling_log_size_bytes", &labels) > 0.0);
    }
    assert!(
        after_produce.value("starling_network_received_bytes_total", &[])
            > before.value("starling_network_received_bytes_total", &[])
    );

    // One consumer takes every partition, reads and commits everything.
    let c1 = Member::start(MemberConfig::new("c1", &boot, &group, &topic, "range"));
    wait_partitioned(&[&c1], &all, Duration::from_secs(30));
    wait_for(
        Duration::from_secs(30),
        "c1 committed every message",
        || {
            let log = c1.log();
            log.commits.iter().filter(|c| c.result.is_ok()).count() >= 40
        },
        || format!("{} commits", c1.log().commits.len()),
    );
    let one = Scrape::take(&broker);
    let generation_one = one
        .get("starling_group_generation", &[("group", g)])
        .unwrap_or_else(|| panic!("no generation: {:?}", one.all("starling_group_generation")));
    assert_eq!(
        one.get("starling_group_members", &[("group", g)]),
        Some(1.0)
    );
    assert_eq!(
        one.get("starling_group_state", &[("group", g), ("state", "Stable")]),
        Some(1.0)
    );
    for api in ["JoinGroup", "SyncGroup", "OffsetCommit", "Fetch"] {
        assert!(
            one.value("starling_requests_total", &[("api", api)])
                > after_produce.value("starling_requests_total", &[("api", api)]),
            "{api} requests did not grow: {:?}",
            one.all("starling_requests_total")
        );
    }
    assert!(one.value("starling_fetched_bytes_total", &[("topic", t)]) > 0.0);
    assert!(
        one.value("starling_network_sent_bytes_total", &[])
            > after_produce.value("starling_network_sent_bytes_total", &[])
    );

    // A second consumer joins: a new generation with two members.
    let c2 = Member::start(MemberConfig::new("c2", &boot, &group, &topic, "range"));
    wait_partitioned(&[&c1, &c2], &all, Duration::from_secs(30));
    let two = scrape_until(
        &broker,
        Duration::from_secs(20),
        "the second generation, Stable with two members",
        |s| {
            s.get("starling_group_members", &[("group", g)]) == Some(2.0)
                && s.value("starling_group_generation", &[("group", g)]) > generation_one
                && s.get("starling_group_state", &[("group", g), ("state", "Stable")]) == Some(1.0)
        },
    );
    for api in ["JoinGroup", "SyncGroup"] {
        assert!(
            two.value("starling_requests_total", &[("api", api)])
                > one.value("starling_requests_total", &[("api", api)]),
            "{api} requests did not grow with the rebalance"
        );
        // Every answered request is timed once its response is written (a moment after it
        // is counted, so wait for a scrape with nothing in between).
        scrape_until(
            &broker,
            Duration::from_secs(10),
            "as many timings as answered requests",
            |s| {
                s.value("starling_request_duration_seconds_count", &[("api", api)])
                    == s.value("starling_requests_total", &[("api", api)])
            },
        );
    }

    // Both leave; offsets stay. More messages arrive: the group lags by them.
    let logs = [c1.close(), c2.close()];
    producer.send_batch(&topic, 4, "second", 8);
    let mut committed: BTreeMap<i32, i64> = BTreeMap::new();
    for c in logs
        .iter()
        .flat_map(|l| &l.commits)
        .filter(|c| c.result.is_ok())
    {
        let e = committed.entry(c.partition).or_insert(0);
        *e = (*e).max(c.offset);
    }
    let ends = end_offsets(&producer.produced());
    let last = Scrape::take(&broker);
    for p in 0..4 {
        let ps = p.to_string();
        let labels = [("group", g), ("topic", t), ("partition", ps.as_str())];
        let end = ends[&tp(&topic, p)];
        assert_eq!(end, 12);
        assert_eq!(committed.get(&p), Some(&10), "commits of partition {p}");
        assert_eq!(
            last.get("starling_group_committed_offset", &labels),
            Some(10.0),
            "{:?}",
            last.all("starling_group_committed_offset")
        );
        assert_eq!(
            last.get("starling_group_lag", &labels),
            Some((end - 10) as f64),
            "{:?}",
            last.all("starling_group_lag")
        );
    }
    assert_eq!(
        last.get("starling_group_members", &[("group", g)]),
        Some(0.0)
    );
    assert!(last.value("starling_produced_bytes_total", &[("topic", t)]) > produced);

    // The rebalance history behind starling_group_rebalances_total: the group was formed by a
    // member joining, and the second consumer's arrival started another rebalance.
    let joined = last.value(
        "starling_group_rebalances_total",
        &[("group", g), ("cause", "member_joined")],
    );
    assert!(
        joined >= 2.0,
        "rebalances by cause: {:?}",
        last.all("starling_group_rebalances_total")
    );
    assert!(
        last.value(
            "starling_group_rebalance_duration_seconds_count",
            &[("group", g)]
        ) >= joined
    );
    assert!(
        last.value(
            "starling_group_rebalance_sync_phase_seconds_count",
            &[("group", g)]
        ) >= 2.0
    );
    dashboard_series_exist(&last);
}

/// Every series the Grafana dashboard in the repository plots is one this broker exports,
/// with the labels the dashboard groups it by: a renamed metric breaks this test, not the
/// dashboard of a user.
fn dashboard_series_exist(scrape: &Scrape) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/grafana/starling.json"
    );
    let text = std::fs::read_to_string(path).expect("docs/grafana/starling.json");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("dashboard is JSON");
    let mut exprs: Vec<String> = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push(target["expr"].as_str().expect("expr").to_string());
        }
    }
    for annotation in dashboard["annotations"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        exprs.push(annotation["expr"].as_str().expect("expr").to_string());
    }
    assert!(
        exprs.len() >= 15,
        "the dashboard has {} queries",
        exprs.len()
    );
    let names_in = |expr: &str| -> Vec<String> {
        let mut names = Vec::new();
        let mut rest = expr;
        while let Some(at) = rest.find("starling_") {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            names.push(tail[..end].to_string());
            rest = &tail[end..];
        }
        names
    };
    let labels_in = |expr: &str| -> Vec<String> {
        let mut labels = Vec::new();
        let mut rest = expr;
        while let Some(at) = rest.find("by (") {
            let tail = &rest[at + 4..];
            let end = tail.find(')').unwrap_or(tail.len());
            labels.extend(
                tail[..end]
                    .split(',')
                    .map(|l| l.trim().to_string())
                    .filter(|l| l != "le"),
            );
            rest = &tail[end..];
        }
        labels
    };
    for expr in &exprs {
        for name in names_in(expr) {
            let series: Vec<&Series> = scrape.samples.keys().filter(|s| s.name == name).collect();
            assert!(
                !series.is_empty(),
                "the dashboard plots {name}, which the broker does not export ({expr})"
            );
            for label in labels_in(expr) {
                assert!(
                    series.iter().any(|s| s.labels.contains_key(&label)),
                    "the dashboard groups {name} by {label}, a label it does not have ({expr})"
                );
            }
        }
    }
}

#[test]
fn a_produce_to_an_unknown_topic_counts_under_its_error_name() {
    let _w = watchdog(Duration::from_secs(60));
    let broker = Broker::start(&[]);
    let labels = [("api", "Produce"), ("error", "UNKNOWN_TOPIC_OR_PARTITION")];
    let before = Scrape::take(&broker);
    assert_eq!(
        before.value("starling_response_error_codes_total", &labels),
        0.0
    );
    let mut raw = RawClient::connect(broker.addr());
    let batch = record_batch(&[(Some(b"k"), Some(b"v"))], now_ms());
    let response = raw_produce(&mut raw, 9, &unique("nowhere"), 0, batch);
    assert_eq!(response.error_code, 3);
    let after = Scrape::take(&broker);
    assert_eq!(
        after.value("starling_response_error_codes_total", &labels),
        1.0,
        "{:?}",
        after.all("starling_response_error_codes_total")
    );
    assert_eq!(
        after.value(
            "starling_response_error_codes_total",
            &[("api", "Produce"), ("error", "NONE")]
        ),
        before.value(
            "starling_response_error_codes_total",
            &[("api", "Produce"), ("error", "NONE")]
        ),
    );
    assert_eq!(
        after.value("starling_requests_total", &[("api", "Produce")]),
        before.value("starling_requests_total", &[("api", "Produce")]) + 1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_partition_counts_the_idempotent_producers_it_remembers() {
    let _w = watchdog(Duration::from_secs(120));
    let broker = Broker::start(&[]);
    let boot = broker.bootstrap();
    let topic = unique("producer-state");
    create_topic(&boot, &topic, 3).await;
    let first = producer(&boot, &[("enable.idempotence", "true")]);
    let second = producer(&boot, &[("enable.idempotence", "true")]);
    let plain = producer(&boot, &[("enable.idempotence", "false")]);
    // Two idempotent producers write to partition 0, one to partition 1; partition 2 gets
    // only batches without a producer id.
    for (producer, partition) in [(&first, 0), (&second, 0), (&first, 1), (&plain, 2)] {
        let record = rdkafka::producer::FutureRecord::<(), _>::to(&topic)
            .partition(partition)
            .payload("v");
        let delivery = producer.send_result(record).map_err(|(e, _)| e).unwrap();
        within(Duration::from_secs(30), "delivery", delivery)
            .await
            .expect("producer dropped")
            .unwrap_or_else(|(e, _)| panic!("partition {partition}: {e}"));
    }
    let scrape = Scrape::take(&broker);
    for (partition, producers) in [("0", 2.0), ("1", 1.0), ("2", 0.0)] {
        assert_eq!(
            scrape.get(
                "starling_producer_state_producers",
                &[("topic", topic.as_str()), ("partition", partition)]
            ),
            Some(producers),
            "partition {partition}: {:?}",
            scrape.all("starling_producer_state_producers")
        );
    }
}

#[test]
fn groups_and_their_rebalances_are_served_as_json() {
    let _w = watchdog(Duration::from_secs(120));
    let broker = group_broker(&[]);
    let admin = broker.admin_addr();
    let boot = broker.bootstrap();

    let (status, body) = json_get(admin, "/groups/no-such-group/rebalances");
    assert_eq!(status, 404);
    assert!(body["error"].is_string(), "{body}");
    let (status, body) = json_get(admin, "/groups");
    assert_eq!((status, body), (200, serde_json::json!([])));

    let topic = unique("json");
    let group = unique("json-group");
    create_topic_sync(&boot, &topic, 2);
    let producer = Producer::new(&boot);
    producer.send_batch(&topic, 2, "m", 6);
    let c1 = Member::start(MemberConfig::new("c1", &boot, &group, &topic, "range"));
    wait_partitioned(&[&c1], &partitions(&topic, 2), Duration::from_secs(30));
    wait_for(
        Duration::from_secs(30),
        "c1 committed every message",
        || c1.log().commits.iter().filter(|c| c.result.is_ok()).count() >= 6,
        || format!("{} commits", c1.log().commits.len()),
    );

    let (status, groups) = json_get(admin, "/groups");
    assert_eq!(status, 200);
    let ours = groups
        .as_array()
        .expect("a JSON array")
        .iter()
        .find(|g| g["group_id"] == group.as_str())
        .unwrap_or_else(|| panic!("{group} not in {groups}"));
    assert_eq!(ours["state"], "Stable", "{ours}");
    assert_eq!(ours["members"], 1, "{ours}");
    assert_eq!(ours["protocol"], "range", "{ours}");
    let offsets = ours["offsets"].as_array().expect("offsets");
    assert_eq!(offsets.len(), 2, "{ours}");
    for offset in offsets {
        assert_eq!(offset["topic"], topic.as_str());
        assert_eq!(offset["committed_offset"], 3, "{ours}");
        assert_eq!(offset["log_end_offset"], 3, "{ours}");
        assert_eq!(offset["lag"], 0, "{ours}");
    }

    let (status, history) = json_get(admin, &format!("/groups/{group}/rebalances"));
    assert_eq!(status, 200, "{history}");
    let records = history
        .as_array()
        .expect("a JSON array of rebalance records");
    for record in records {
        assert_eq!(record["group_id"], group.as_str(), "{record}");
    }
    // The group was formed by c1 joining it.
    assert_eq!(
        records.first().map(|r| r["cause"].clone()),
        Some(serde_json::json!("member_joined")),
        "{history}"
    );
    drop(c1);
}

#[test]
fn admin_listen_none_disables_the_endpoint_and_a_taken_admin_port_stops_the_start() {
    let _w = watchdog(Duration::from_secs(60));
    let broker = Broker::start(&["--admin-listen", "none"]);
    let md = raw_metadata(broker.addr(), None, false);
    assert_eq!(
        md.brokers.len(),
        1,
        "Kafka clients are served without the admin endpoint"
    );

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let failure = match Broker::try_start(&["--admin-listen", &addr]) {
        Ok(_) => panic!("the broker started although {addr} is taken"),
        Err(failure) => failure,
    };
    assert!(
        failure.status.is_some_and(|s| !s.success()),
        "{}",
        failure.reason
    );
    assert!(
        failure.stderr.contains("admin.listen") && failure.stderr.contains(&addr),
        "stderr should name the admin address: {}",
        failure.stderr
    );
}
