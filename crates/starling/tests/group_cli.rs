//! End-to-end tests of `starling group ...`: a real broker, real librdkafka consumer groups,
//! and the CLI run as a subprocess whose output is checked.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::*;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};

/// Limit for one whole test.
const TEST_LIMIT: Duration = Duration::from_secs(180);
/// Limit for one CLI invocation.
const CLI_LIMIT: Duration = Duration::from_secs(60);
/// Limit for a consumer to reach a condition (assignment, messages, leaving).
const CONSUMER_LIMIT: Duration = Duration::from_secs(45);

fn start_broker() -> Broker {
    Broker::with_overrides(&[("group.initial.rebalance.delay.ms", "0")])
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Output of one `starling group ...` run.
struct CliRun {
    ok: bool,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for CliRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `starling group ARGS --bootstrap B`.
fn cli(bootstrap: &str, args: &[&str]) -> CliRun {
    let mut all = vec!["group"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--bootstrap", bootstrap]);
    let (status, stdout, stderr) = run_to_exit(&all, CLI_LIMIT);
    CliRun {
        ok: status.success(),
        code: status.code(),
        stdout,
        stderr,
    }
}

/// Runs the CLI and insists that it succeeded.
fn cli_ok(bootstrap: &str, args: &[&str]) -> CliRun {
    let run = cli(bootstrap, args);
    assert!(run.ok, "`starling group {}` failed:\n{run}", args.join(" "));
    run
}

// ---------------------------------------------------------------------------------------------
// Parsing the CLI's output
// ---------------------------------------------------------------------------------------------

/// The value of a `KEY   value` line of the describe header.
fn header_value(out: &str, key: &str) -> Option<String> {
    out.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next() == Some(key)).then(|| it.collect::<Vec<_>>().join(" "))
    })
}

/// The rows of the table whose header line starts with `first_header`, split on whitespace,
/// up to the first blank line.
fn table_rows(out: &str, first_header: &str) -> Vec<Vec<String>> {
    let mut lines = out.lines();
    for l in lines.by_ref() {
        if l.split_whitespace().next() == Some(first_header) {
            break;
        }
    }
    lines
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// One row of the describe partition table.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PartitionRow {
    current: String,
    end: String,
    lag: String,
    member: String,
}

fn partition_table(out: &str) -> BTreeMap<(String, i32), PartitionRow> {
    table_rows(out, "TOPIC")
        .into_iter()
        .map(|r| {
            assert_eq!(r.len(), 6, "partition row {r:?}");
            (
                (r[0].clone(), r[1].parse().expect("partition number")),
                PartitionRow {
                    current: r[2].clone(),
                    end: r[3].clone(),
                    lag: r[4].clone(),
                    member: r[5].clone(),
                },
            )
        })
        .collect()
}

/// `(topic, partition) -> new offset` from an `offsets reset` table.
fn reset_table(out: &str) -> BTreeMap<(String, i32), i64> {
    table_rows(out, "GROUP")
        .into_iter()
        .map(|r| {
            assert_eq!(r.len(), 4, "reset row {r:?}");
            (
                (r[1].clone(), r[2].parse().expect("partition")),
                r[3].parse().expect("offset"),
            )
        })
        .collect()
}

/// `group -> (state, protocol type)` from `group list`.
fn list_table(out: &str) -> BTreeMap<String, (String, String)> {
    table_rows(out, "GROUP")
        .into_iter()
        .map(|r| {
            assert_eq!(r.len(), 3, "list row {r:?}");
            (r[0].clone(), (r[1].clone(), r[2].clone()))
        })
        .collect()
}

fn describe_state(bootstrap: &str, group: &str) -> Option<String> {
    let run = cli(bootstrap, &["describe", group]);
    if !run.ok {
        return None;
    }
    header_value(&run.stdout, "STATE")
}

/// Runs `describe` until the group reports `state`.
fn wait_for_state(bootstrap: &str, group: &str, state: &str) {
    let deadline = Instant::now() + CONSUMER_LIMIT;
    loop {
        let got = describe_state(bootstrap, group);
        if got.as_deref() == Some(state) {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "group {group} did not reach state {state} within {CONSUMER_LIMIT:?} (last: {got:?})\n{}",
                cli(bootstrap, &["describe", group])
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

// ---------------------------------------------------------------------------------------------
// Kafka clients
// ---------------------------------------------------------------------------------------------

/// Produces `count` records to `topic`/`partition`; the i-th gets timestamp `ts(i)` if given.
fn produce(
    rt: &tokio::runtime::Runtime,
    bootstrap: &str,
    topic: &str,
    partition: i32,
    count: usize,
    ts: Option<&dyn Fn(usize) -> i64>,
) {
    let producer = producer(bootstrap, &[]);
    rt.block_on(async {
        for i in 0..count {
            let value = format!("{topic}-{partition}-{i}");
            let mut record = FutureRecord::<(), _>::to(topic)
                .partition(partition)
                .payload(&value);
            if let Some(ts) = ts {
                record = record.timestamp(ts(i));
            }
            within(
                Duration::from_secs(30),
                "produce",
                producer.send(record, Duration::from_secs(10)),
            )
            .await
            .unwrap_or_else(|(e, _)| panic!("produce to {topic}/{partition}: {e}"));
        }
    });
}

/// A group member with manual commits that starts from the earliest offset when it has none.
fn group_consumer(bootstrap: &str, group: &str, client_id: &str) -> BaseConsumer {
    client_config(
        bootstrap,
        &[
            ("group.id", group),
            ("client.id", client_id),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("enable.partition.eof", "false"),
            ("auto.offset.reset", "earliest"),
            ("session.timeout.ms", "10000"),
            ("heartbeat.interval.ms", "500"),
        ],
    )
    .create()
    .expect("create group consumer")
}

/// Polls until the consumer owns `partitions` partitions; returns the messages seen meanwhile.
fn wait_for_assignment(consumer: &BaseConsumer, partitions: usize) -> Vec<(i32, i64)> {
    let deadline = Instant::now() + CONSUMER_LIMIT;
    let mut seen = Vec::new();
    loop {
        let assigned = consumer.assignment().map(|a| a.count()).unwrap_or(0);
        if assigned == partitions {
            return seen;
        }
        if Instant::now() > deadline {
            panic!(
                "consumer owns {assigned} partitions, not {partitions}, after {CONSUMER_LIMIT:?}"
            );
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                use rdkafka::Message;
                seen.push((m.partition(), m.offset()));
            }
            Some(Err(e)) => panic!("consumer error while joining: {e}"),
            None => {}
        }
    }
}

/// Commits `(partition, offset)` of `topic` synchronously.
fn commit(consumer: &BaseConsumer, topic: &str, offsets: &[(i32, i64)]) {
    let mut tpl = TopicPartitionList::new();
    for &(p, o) in offsets {
        tpl.add_partition_offset(topic, p, Offset::Offset(o))
            .expect("tpl");
    }
    consumer
        .commit(&tpl, CommitMode::Sync)
        .unwrap_or_else(|e| panic!("commit {offsets:?}: {e}"));
}

/// Converts ms since the epoch to RFC 3339 (UTC, milliseconds).
fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

#[test]
fn rfc3339_helper_formats_known_instants() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(rfc3339(1_795_240_800_250), "2026-11-21T06:00:00.250Z");
    assert_eq!(rfc3339(1_709_164_800_000), "2024-02-29T00:00:00.000Z");
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn list_and_describe_show_an_active_group_with_members_assignments_offsets_and_lag() {
    let _w = watchdog(TEST_LIMIT);
    let rt = runtime();
    let broker = start_broker();
    let b = broker.bootstrap();
    rt.block_on(create_topic(&b, "orders", 3));
    produce(&rt, &b, "orders", 0, 10, None);
    produce(&rt, &b, "orders", 1, 5, None);
    // partition 2 stays empty

    let consumer = group_consumer(&b, "g-describe", "describe-client");
    consumer.subscribe(&["orders"]).expect("subscribe");
    wait_for_assignment(&consumer, 3);
    commit(&consumer, "orders", &[(0, 7), (1, 5)]);

    // list: the group, its state and protocol type.
    let list = cli_ok(&b, &["list"]);
    let groups = list_table(&list.stdout);
    assert_eq!(
        groups.get("g-describe"),
        Some(&("Stable".to_string(), "consumer".to_string())),
        "{list}"
    );
    let stable = cli_ok(&b, &["list", "--state", "Stable"]);
    assert!(
        list_table(&stable.stdout).contains_key("g-describe"),
        "{stable}"
    );
    let empty = cli_ok(&b, &["list", "--state", "empty"]);
    assert!(
        !list_table(&empty.stdout).contains_key("g-describe"),
        "--state Empty must filter out a Stable group:\n{empty}"
    );

    // describe: header, member, partitions.
    let d = cli_ok(&b, &["describe", "g-describe"]);
    let out = &d.stdout;
    assert_eq!(
        header_value(out, "GROUP").as_deref(),
        Some("g-describe"),
        "{d}"
    );
    assert_eq!(header_value(out, "STATE").as_deref(), Some("Stable"), "{d}");
    assert_eq!(
        header_value(out, "PROTOCOL-TYPE").as_deref(),
        Some("consumer"),
        "{d}"
    );
    assert_eq!(header_value(out, "MEMBERS").as_deref(), Some("1"), "{d}");
    let protocol = header_value(out, "PROTOCOL").unwrap_or_default();
    assert!(
        ["range", "roundrobin", "cooperative-sticky"].contains(&protocol.as_str()),
        "assignor {protocol:?}\n{d}"
    );
    let coordinator = header_value(out, "COORDINATOR").unwrap_or_default();
    assert!(coordinator.contains(&b), "coordinator {coordinator:?}\n{d}");

    let members = table_rows(out, "MEMBER-ID");
    assert_eq!(members.len(), 1, "{d}");
    let member = &members[0];
    let member_id = member[0].clone();
    assert!(member_id.starts_with("describe-client"), "{d}");
    assert_eq!(member[1], "-", "no group.instance.id\n{d}");
    assert_eq!(member[2], "describe-client", "{d}");
    assert!(member[3].contains("127.0.0.1"), "client host\n{d}");
    assert_eq!(member[4..].join(" "), "orders:0,1,2", "{d}");

    let parts = partition_table(out);
    let row = |p: i32| parts.get(&("orders".to_string(), p)).cloned();
    let expect = |current: &str, end: &str, lag: &str| PartitionRow {
        current: current.to_string(),
        end: end.to_string(),
        lag: lag.to_string(),
        member: member_id.clone(),
    };
    assert_eq!(row(0), Some(expect("7", "10", "3")), "{d}");
    assert_eq!(row(1), Some(expect("5", "5", "0")), "{d}");
    // Assigned, never committed: shown with dashes.
    assert_eq!(row(2), Some(expect("-", "0", "-")), "{d}");
    assert_eq!(parts.len(), 3, "{d}");

    drop(consumer);
}

/// Polls every consumer until together they own `total` partitions and each owns some.
fn wait_for_split_assignment(consumers: &[&BaseConsumer], total: usize) {
    let deadline = Instant::now() + CONSUMER_LIMIT;
    loop {
        let counts: Vec<usize> = consumers
            .iter()
            .map(|c| c.assignment().map(|a| a.count()).unwrap_or(0))
            .collect();
        if counts.iter().sum::<usize>() == total && counts.iter().all(|&n| n > 0) {
            return;
        }
        if Instant::now() > deadline {
            panic!("assignment did not settle within {CONSUMER_LIMIT:?}: {counts:?}");
        }
        for c in consumers {
            if let Some(Err(e)) = c.poll(Duration::from_millis(50)) {
                panic!("consumer error while rebalancing: {e}");
            }
        }
    }
}

#[test]
fn describe_lists_every_member_with_its_own_partitions_and_static_instance_id() {
    let _w = watchdog(TEST_LIMIT);
    let rt = runtime();
    let broker = start_broker();
    let b = broker.bootstrap();
    rt.block_on(create_topic(&b, "shared", 4));
    for p in 0..4 {
        produce(&rt, &b, "shared", p, 2 + p as usize, None);
    }

    let first = group_consumer(&b, "g-two", "first-client");
    first.subscribe(&["shared"]).expect("subscribe");
    wait_for_assignment(&first, 4);
    let second: BaseConsumer = client_config(
        &b,
        &[
            ("group.id", "g-two"),
            ("client.id", "second-client"),
            ("group.instance.id", "static-2"),
            ("enable.auto.commit", "false"),
            ("enable.partition.eof", "false"),
            ("auto.offset.reset", "earliest"),
            ("session.timeout.ms", "10000"),
            ("heartbeat.interval.ms", "500"),
        ],
    )
    .create()
    .expect("create consumer");
    second.subscribe(&["shared"]).expect("subscribe");
    wait_for_split_assignment(&[&first, &second], 4);

    let d = cli_ok(&b, &["describe", "g-two"]);
    assert_eq!(
        header_value(&d.stdout, "STATE").as_deref(),
        Some("Stable"),
        "{d}"
    );
    assert_eq!(
        header_value(&d.stdout, "MEMBERS").as_deref(),
        Some("2"),
        "{d}"
    );
    let members = table_rows(&d.stdout, "MEMBER-ID");
    assert_eq!(members.len(), 2, "{d}");
    let by_client: BTreeMap<String, Vec<String>> =
        members.iter().map(|m| (m[2].clone(), m.clone())).collect();
    let first_row = &by_client["first-client"];
    let second_row = &by_client["second-client"];
    assert_eq!(first_row[1], "-", "{d}");
    assert_eq!(second_row[1], "static-2", "{d}");

    // Each member's partitions, as rdkafka sees them, are what describe shows for it; the
    // partition table names the same owners.
    let owned = |c: &BaseConsumer| -> Vec<i32> {
        let mut ps: Vec<i32> = c
            .assignment()
            .expect("assignment")
            .elements()
            .iter()
            .map(|e| e.partition())
            .collect();
        ps.sort();
        ps
    };
    let shown = |row: &[String]| row[4..].join(" ");
    let expected = |ps: Vec<i32>| {
        format!(
            "shared:{}",
            ps.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
        )
    };
    assert_eq!(shown(first_row), expected(owned(&first)), "{d}");
    assert_eq!(shown(second_row), expected(owned(&second)), "{d}");
    let parts = partition_table(&d.stdout);
    assert_eq!(parts.len(), 4, "{d}");
    for p in owned(&first) {
        let row = &parts[&("shared".to_string(), p)];
        assert_eq!(row.member, first_row[0], "{d}");
        assert_eq!(row.current, "-", "{d}");
        assert_eq!(row.end, (2 + p).to_string(), "{d}");
    }
    for p in owned(&second) {
        assert_eq!(
            parts[&("shared".to_string(), p)].member,
            second_row[0],
            "{d}"
        );
    }

    drop(first);
    drop(second);
}

#[test]
fn offsets_reset_is_refused_while_the_group_is_active_and_applies_once_it_is_empty() {
    let _w = watchdog(TEST_LIMIT);
    let rt = runtime();
    let broker = start_broker();
    let b = broker.bootstrap();
    rt.block_on(create_topic(&b, "events", 1));
    produce(&rt, &b, "events", 0, 20, None);

    let consumer = group_consumer(&b, "g-reset", "reset-client");
    consumer.subscribe(&["events"]).expect("subscribe");
    wait_for_assignment(&consumer, 1);
    commit(&consumer, "events", &[(0, 20)]);

    let refused = cli(
        &b,
        &[
            "offsets",
            "reset",
            "g-reset",
            "--topic",
            "events",
            "--to-offset",
            "5",
        ],
    );
    assert!(!refused.ok, "reset of an active group must fail\n{refused}");
    assert!(
        refused.stderr.contains(
            "Assignments can only be reset if the group 'g-reset' is inactive, but the current state is Stable."
        ),
        "{refused}"
    );
    let d = cli_ok(&b, &["describe", "g-reset"]);
    assert_eq!(
        partition_table(&d.stdout)[&("events".to_string(), 0)].current,
        "20",
        "a refused reset must not change the committed offset\n{d}"
    );

    drop(consumer); // leaves the group
    wait_for_state(&b, "g-reset", "Empty");

    // --dry-run shows the new offset but commits nothing.
    let dry = cli_ok(
        &b,
        &[
            "offsets",
            "reset",
            "g-reset",
            "--topic",
            "events",
            "--to-offset",
            "5",
            "--dry-run",
        ],
    );
    assert_eq!(
        reset_table(&dry.stdout)[&("events".to_string(), 0)],
        5,
        "{dry}"
    );
    assert!(
        dry.stderr.contains("dry run: nothing was committed"),
        "{dry}"
    );
    let d = cli_ok(&b, &["describe", "g-reset"]);
    assert_eq!(
        partition_table(&d.stdout)[&("events".to_string(), 0)].current,
        "20",
        "{d}"
    );

    // --to-offset beyond the log end is clamped to it; --to-earliest and --to-latest.
    let high = cli_ok(
        &b,
        &[
            "offsets",
            "reset",
            "g-reset",
            "--topic",
            "events",
            "--to-offset",
            "1000",
        ],
    );
    assert_eq!(
        reset_table(&high.stdout)[&("events".to_string(), 0)],
        20,
        "{high}"
    );
    let earliest = cli_ok(
        &b,
        &[
            "offsets",
            "reset",
            "g-reset",
            "--topic",
            "events",
            "--to-earliest",
        ],
    );
    assert_eq!(
        reset_table(&earliest.stdout)[&("events".to_string(), 0)],
        0,
        "{earliest}"
    );
    let latest = cli_ok(
        &b,
        &[
            "offsets",
            "reset",
            "g-reset",
            "--topic",
            "events",
            "--to-latest",
        ],
    );
    assert_eq!(
        reset_table(&latest.stdout)[&("events".to_string(), 0)],
        20,
        "{latest}"
    );

    // The real reset.
    let done = cli_ok(
        &b,
        &[
            "offsets",
            "reset",
            "g-reset",
            "--topic",
            "events",
            "--partitions",
            "0",
            "--to-offset",
            "5",
        ],
    );
    assert_eq!(
        reset_table(&done.stdout)[&("events".to_string(), 0)],
        5,
        "{done}"
    );
    let d = cli_ok(&b, &["describe", "g-reset"]);
    assert_eq!(
        header_value(&d.stdout, "STATE").as_deref(),
        Some("Empty"),
        "{d}"
    );
    assert_eq!(
        partition_table(&d.stdout)[&("events".to_string(), 0)],
        PartitionRow {
            current: "5".into(),
            end: "20".into(),
            lag: "15".into(),
            member: "-".into()
        },
        "{d}"
    );

    // A new member of the group starts at the reset offset.
    let consumer = group_consumer(&b, "g-reset", "reset-client-2");
    consumer.subscribe(&["events"]).expect("subscribe");
    let mut seen = wait_for_assignment(&consumer, 1);
    let more = consume_until(&consumer, CONSUMER_LIMIT, |got| {
        !seen.is_empty() || !got.is_empty()
    });
    seen.extend(more.iter().map(|m| (m.partition, m.offset)));
    assert_eq!(seen.first(), Some(&(0, 5)), "first message after the reset");
    drop(consumer);
}

#[test]
fn offsets_reset_to_datetime_picks_the_first_offset_at_or_after_the_time() {
    let _w = watchdog(TEST_LIMIT);
    let rt = runtime();
    let broker = start_broker();
    let b = broker.bootstrap();
    rt.block_on(create_topic(&b, "clock", 2));
    // Ten records one second apart, ending ten minutes ago (recent enough for retention).
    let base = (now_ms() - 600_000) / 1000 * 1000;
    produce(&rt, &b, "clock", 0, 10, Some(&|i| base + i as i64 * 1000));
    produce(&rt, &b, "clock", 1, 4, Some(&|i| base + i as i64 * 3000));

    // The group has never existed: resetting it is allowed and creates its offsets.
    let group = "g-time";
    let reset_to = |time: String| -> BTreeMap<(String, i32), i64> {
        let run = cli_ok(
            &b,
            &[
                "offsets",
                "reset",
                group,
                "--topic",
                "clock",
                "--to-datetime",
                &time,
            ],
        );
        let table = reset_table(&run.stdout);
        let d = cli_ok(&b, &["describe", group]);
        let parts = partition_table(&d.stdout);
        for ((t, p), o) in &table {
            assert_eq!(
                parts[&(t.clone(), *p)].current,
                o.to_string(),
                "committed offset after --to-datetime {time}\n{run}\n{d}"
            );
        }
        table
    };
    let at = |p: i32| ("clock".to_string(), p);

    // Between records: the next one. (p0: 3.5 s -> offset 4; p1: records at 0,3,6,9 s -> 2)
    let t = reset_to(rfc3339(base + 3500));
    assert_eq!((t[&at(0)], t[&at(1)]), (4, 2));
    // Exactly on a record's timestamp, as milliseconds since the epoch: that record.
    let t = reset_to((base + 3000).to_string());
    assert_eq!((t[&at(0)], t[&at(1)]), (3, 1));
    // With a UTC offset in the time.
    let t = reset_to(rfc3339(base + 7000).replace('Z', "+00:00"));
    assert_eq!((t[&at(0)], t[&at(1)]), (7, 3));
    // Before every record: the first offset.
    let t = reset_to(rfc3339(base - 60_000));
    assert_eq!((t[&at(0)], t[&at(1)]), (0, 0));
    // After every record: the log end.
    let t = reset_to(rfc3339(base + 60_000));
    assert_eq!((t[&at(0)], t[&at(1)]), (10, 4));
}

#[test]
fn delete_removes_an_empty_group_and_refuses_one_with_members() {
    let _w = watchdog(TEST_LIMIT);
    let rt = runtime();
    let broker = start_broker();
    let b = broker.bootstrap();
    rt.block_on(create_topic(&b, "jobs", 1));
    produce(&rt, &b, "jobs", 0, 3, None);

    // g-idle: joined, committed and left (Empty, with offsets).
    let idle = group_consumer(&b, "g-idle", "idle-client");
    idle.subscribe(&["jobs"]).expect("subscribe");
    wait_for_assignment(&idle, 1);
    commit(&idle, "jobs", &[(0, 2)]);
    drop(idle);
    wait_for_state(&b, "g-idle", "Empty");

    // g-busy: an active member.
    let busy = group_consumer(&b, "g-busy", "busy-client");
    busy.subscribe(&["jobs"]).expect("subscribe");
    wait_for_assignment(&busy, 1);

    let run = cli(&b, &["delete", "g-idle", "g-busy"]);
    assert!(
        !run.ok,
        "deleting a group with members must fail the command\n{run}"
    );
    let results: BTreeMap<String, String> = table_rows(&run.stdout, "GROUP")
        .into_iter()
        .map(|r| (r[0].clone(), r[1..].join(" ")))
        .collect();
    assert_eq!(
        results.get("g-idle").map(String::as_str),
        Some("deleted"),
        "{run}"
    );
    assert!(
        results
            .get("g-busy")
            .is_some_and(|r| r.contains("NON_EMPTY_GROUP")),
        "{run}"
    );
    assert!(
        run.stderr.contains("1 of 2 groups could not be deleted"),
        "{run}"
    );

    let list = cli_ok(&b, &["list"]);
    let groups = list_table(&list.stdout);
    assert!(
        !groups.contains_key("g-idle"),
        "deleted group still listed\n{list}"
    );
    assert!(groups.contains_key("g-busy"), "{list}");
    let gone = cli(&b, &["describe", "g-idle"]);
    assert!(!gone.ok, "{gone}");
    assert!(
        gone.stderr
            .contains("consumer group 'g-idle' does not exist"),
        "{gone}"
    );

    // Deleting a group that does not exist reports it.
    let missing = cli(&b, &["delete", "never-existed"]);
    assert!(!missing.ok, "{missing}");
    assert!(missing.stdout.contains("GROUP_ID_NOT_FOUND"), "{missing}");

    drop(busy);
}

#[test]
fn cli_failures_are_reported_clearly_with_a_non_zero_exit() {
    let _w = watchdog(TEST_LIMIT);
    let rt = runtime();
    let broker = start_broker();
    let b = broker.bootstrap();
    rt.block_on(create_topic(&b, "two", 2));

    let no_topic = cli(
        &b,
        &["offsets", "reset", "g", "--topic", "nope", "--to-earliest"],
    );
    assert!(!no_topic.ok, "{no_topic}");
    assert!(
        no_topic.stderr.contains("topic 'nope' does not exist"),
        "{no_topic}"
    );

    let bad_partition = cli(
        &b,
        &[
            "offsets",
            "reset",
            "g",
            "--topic",
            "two",
            "--partitions",
            "0,5",
            "--to-earliest",
        ],
    );
    assert!(!bad_partition.ok, "{bad_partition}");
    assert!(
        bad_partition
            .stderr
            .contains("partition 5 of topic 'two' does not exist"),
        "{bad_partition}"
    );

    let bad_time = cli(
        &b,
        &[
            "offsets",
            "reset",
            "g",
            "--topic",
            "two",
            "--to-datetime",
            "yesterday",
        ],
    );
    assert!(!bad_time.ok, "{bad_time}");
    assert!(bad_time.stderr.contains("RFC 3339"), "{bad_time}");

    let no_target = cli(&b, &["offsets", "reset", "g", "--topic", "two"]);
    assert!(
        !no_target.ok,
        "a reset needs one --to-* option\n{no_target}"
    );

    let unknown = cli(&b, &["describe", "no-such-group"]);
    assert!(!unknown.ok, "{unknown}");
    assert!(
        unknown
            .stderr
            .contains("consumer group 'no-such-group' does not exist"),
        "{unknown}"
    );

    // A state no group can be in is a mistake, not a filter that matches nothing.
    let bogus = cli(&b, &["list", "--state", "Stable,bogus"]);
    assert!(!bogus.ok, "{bogus}");
    assert!(
        bogus.stderr.contains("unknown group state 'bogus'")
            && bogus.stderr.contains(
                "Empty, Stable, PreparingRebalance, CompletingRebalance, Dead, Assigning, Reconciling"
            ),
        "{bogus}"
    );
    assert!(!bogus.stdout.contains("GROUP"), "no table: {bogus}");

    // Nothing listens on the port of a stopped broker.
    let mut broker = broker;
    broker.terminate();
    let down = cli(&b, &["list"]);
    assert!(!down.ok, "{down}");
    assert!(
        down.stderr.contains(&format!("cannot connect to {b}")),
        "{down}"
    );
}

#[test]
fn describe_shows_a_consumer_protocol_group_with_epochs_and_each_members_partitions() {
    let _w = watchdog(TEST_LIMIT);
    let rt = runtime();
    let broker = start_broker();
    let b = broker.bootstrap();
    rt.block_on(create_topic(&b, "kip848", 4));
    let member = |client_id: &str| -> BaseConsumer {
        client_config(
            &b,
            &[
                ("group.id", "g-kip848"),
                ("group.protocol", "consumer"),
                ("client.id", client_id),
                ("enable.auto.commit", "false"),
                ("auto.offset.reset", "earliest"),
            ],
        )
        .create()
        .expect("create consumer-protocol member")
    };
    let c1 = member("kip848-a");
    let c2 = member("kip848-b");
    c1.subscribe(&["kip848"]).expect("subscribe");
    c2.subscribe(&["kip848"]).expect("subscribe");
    wait_for_split_assignment(&[&c1, &c2], 4);
    // Until both members heartbeat again the group may still be reconciling.
    let deadline = Instant::now() + CONSUMER_LIMIT;
    let out = loop {
        let out = cli_ok(&b, &["describe", "g-kip848"]);
        if header_value(&out.stdout, "STATE").as_deref() == Some("Stable")
            || Instant::now() > deadline
        {
            break out;
        }
        for c in [&c1, &c2] {
            let _ = c.poll(Duration::from_millis(50));
        }
    };
    assert_eq!(
        header_value(&out.stdout, "TYPE").as_deref(),
        Some("consumer (KIP-848)"),
        "{out}"
    );
    assert_eq!(
        header_value(&out.stdout, "STATE").as_deref(),
        Some("Stable"),
        "{out}"
    );
    assert_eq!(
        header_value(&out.stdout, "ASSIGNOR").as_deref(),
        Some("uniform"),
        "{out}"
    );
    assert_eq!(
        header_value(&out.stdout, "MEMBERS").as_deref(),
        Some("2"),
        "{out}"
    );
    let epoch = header_value(&out.stdout, "GROUP-EPOCH").expect("a group epoch");
    assert_eq!(
        header_value(&out.stdout, "TARGET-EPOCH"),
        Some(epoch.clone()),
        "{out}"
    );
    let members = table_rows(&out.stdout, "MEMBER-ID");
    assert_eq!(members.len(), 2, "{out}");
    for row in &members {
        // MEMBER-ID, INSTANCE-ID, EPOCH, CLIENT-ID, HOST, PARTITIONS, TARGET, TYPE
        assert_eq!(row[2], epoch, "{out}");
        assert_eq!(row[7], "consumer", "{out}");
        assert!(row[3].starts_with("kip848-"), "{out}");
        assert_eq!(row[5], row[6], "reconciled: current = target\n{out}");
        assert!(row[5].starts_with("kip848:"), "{out}");
    }
    // Every partition has exactly one owner in the offsets table.
    let owners: BTreeSet<String> = partition_table(&out.stdout)
        .values()
        .map(|r| r.member.clone())
        .collect();
    assert_eq!(owners.len(), 2, "{out}");
}
