//! End-to-end tests of `starling topic ...`, `starling produce`, `starling consume` and
//! `starling cluster info`: a real broker and the CLI run as a subprocess (with standard input
//! where it reads it), its output and exit status checked exactly.

mod common;

use std::time::Duration;

use common::*;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

/// Limit for one CLI invocation.
const CLI_LIMIT: Duration = Duration::from_secs(60);
/// Limit for one whole test.
const TEST_LIMIT: Duration = Duration::from_secs(180);

/// Output of one CLI run.
struct CliRun {
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

/// Runs `starling ARGS --bootstrap B`, feeding `stdin`.
fn run(bootstrap: &str, args: &[&str], stdin: &str) -> CliRun {
    let mut all = args.to_vec();
    all.extend(["--bootstrap", bootstrap]);
    let (status, stdout, stderr) = run_with_stdin(&all, Some(stdin), CLI_LIMIT);
    CliRun {
        code: status.code(),
        stdout,
        stderr,
    }
}

fn ok(bootstrap: &str, args: &[&str], stdin: &str) -> CliRun {
    let r = run(bootstrap, args, stdin);
    assert_eq!(
        r.code,
        Some(0),
        "`starling {}` failed:\n{r}",
        args.join(" ")
    );
    r
}

/// Runs a command that must fail with exit status 1 and exactly `message` on stderr.
fn fails(bootstrap: &str, args: &[&str], stdin: &str, message: &str) {
    let r = run(bootstrap, args, stdin);
    assert_eq!(r.code, Some(1), "`starling {}`:\n{r}", args.join(" "));
    assert_eq!(
        r.stderr,
        format!("error: {message}\n"),
        "`starling {}`:\n{r}",
        args.join(" ")
    );
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"))
}

#[test]
fn topics_are_created_listed_described_trimmed_and_deleted() {
    let _dog = watchdog(TEST_LIMIT);
    let broker = Broker::start(&[]);
    let b = &broker.bootstrap();

    let r = ok(
        b,
        &[
            "topic",
            "create",
            "orders",
            "-p",
            "3",
            "-c",
            "retention.ms=3600000",
        ],
        "",
    );
    assert_eq!(
        r.stdout,
        "TOPIC   PARTITIONS  STATUS\norders  3           created\n"
    );
    ok(b, &["topic", "create", "audit", "-p", "1"], "");

    let r = ok(b, &["topic", "list"], "");
    assert_eq!(r.stdout, "TOPIC   PARTITIONS\naudit   1\norders  3\n");
    let r = ok(b, &["topic", "list", "--json"], "");
    assert_eq!(
        json(&r.stdout),
        serde_json::json!([
            {"topic": "audit", "partitions": 1, "internal": false},
            {"topic": "orders", "partitions": 3, "internal": false},
        ])
    );

    let r = ok(b, &["produce", "orders", "-p", "1"], "a\nb\nc\nd\n");
    assert_eq!(
        r.stdout,
        "produced 4 records to orders\n\
         PARTITION  RECORDS  FIRST-OFFSET  LAST-OFFSET\n\
         1          4        0             3\n"
    );

    let r = ok(b, &["topic", "describe", "orders"], "");
    let (partitions, configs) = r
        .stdout
        .split_once("\n\nCONFIG")
        .unwrap_or_else(|| panic!("no configs section:\n{r}"));
    assert_eq!(
        partitions,
        "NAME        orders\n\
         PARTITIONS  3\n\
         \n\
         PARTITION  LEADER  LOG-START  LOG-END\n\
         0          1       0          0\n\
         1          1       0          4\n\
         2          1       0          0"
    );
    // Configs when the broker serves DescribeConfigs, else a note saying it does not.
    if configs.starts_with("S ") {
        assert_eq!(
            configs,
            "S     (this broker does not serve DescribeConfigs)\n"
        );
    } else {
        assert!(
            configs.lines().any(|l| {
                let cells: Vec<&str> = l.split_whitespace().collect();
                cells.get(..2) == Some(&["retention.ms", "3600000"][..])
            }),
            "retention.ms=3600000 not among the configs:\n{r}"
        );
    }

    let r = ok(
        b,
        &[
            "topic",
            "trim",
            "orders",
            "--partition",
            "1",
            "--offset",
            "3",
        ],
        "",
    );
    assert_eq!(
        r.stdout,
        "TOPIC   PARTITION  LOG-START\norders  1          3\n"
    );
    let r = ok(b, &["topic", "describe", "orders", "--json"], "");
    let d = json(&r.stdout);
    assert_eq!(d["topic"], "orders");
    assert_eq!(
        d["partitions"],
        serde_json::json!([
            {"partition": 0, "leader": 1, "log_start_offset": 0, "log_end_offset": 0},
            {"partition": 1, "leader": 1, "log_start_offset": 3, "log_end_offset": 4},
            {"partition": 2, "leader": 1, "log_start_offset": 0, "log_end_offset": 0},
        ])
    );
    // Only what is above the new log start is left.
    let r = ok(b, &["consume", "orders"], "");
    assert_eq!(r.stdout, "d\n");
    // Trimming to -1 empties the partition.
    let r = ok(
        b,
        &[
            "topic",
            "trim",
            "orders",
            "--partition",
            "1",
            "--offset",
            "-1",
            "--json",
        ],
        "",
    );
    assert_eq!(
        json(&r.stdout),
        serde_json::json!({"topic": "orders", "partition": 1, "log_start_offset": 4})
    );

    let r = ok(b, &["topic", "delete", "orders", "audit"], "");
    assert_eq!(
        r.stdout,
        "TOPIC   STATUS\norders  deleted\naudit   deleted\n"
    );
    let r = ok(b, &["topic", "list"], "");
    assert_eq!(r.stdout, "TOPIC  PARTITIONS\n");
    fails(
        b,
        &["topic", "describe", "orders"],
        "",
        "topic 'orders' does not exist",
    );
}

#[test]
fn cluster_info_names_the_cluster_the_controller_and_the_broker() {
    let _dog = watchdog(TEST_LIMIT);
    let broker = Broker::start(&[]);
    let b = &broker.bootstrap();
    let addr = broker.addr();
    let r = ok(b, &["cluster", "info", "--json"], "");
    let info = json(&r.stdout);
    let cluster_id = info["cluster_id"]
        .as_str()
        .expect("a cluster id")
        .to_string();
    assert!(!cluster_id.is_empty());
    assert_eq!(info["controller"], 1);
    assert_eq!(
        info["brokers"],
        serde_json::json!([{"node_id": 1, "host": addr.ip().to_string(), "port": addr.port()}])
    );
    let r = ok(b, &["cluster", "info"], "");
    let host = addr.ip().to_string();
    let pad = " ".repeat(host.len().saturating_sub(4));
    assert_eq!(
        r.stdout,
        format!(
            "CLUSTER     {cluster_id}\nCONTROLLER  1\n\nBROKER  HOST{pad}  PORT\n1       {host}  {}\n",
            addr.port()
        )
    );
}

#[test]
fn produced_lines_with_keys_and_headers_come_back_in_both_formats() {
    let _dog = watchdog(TEST_LIMIT);
    let broker = Broker::start(&[]);
    let b = &broker.bootstrap();
    ok(b, &["topic", "create", "lines", "-p", "1"], "");

    let r = ok(
        b,
        &[
            "produce",
            "lines",
            "-k",
            ":",
            "-H",
            "source=cli",
            "-H",
            "trace=a=b",
        ],
        "k1:first\nk2:second:with colon\n:keyless-ish\n",
    );
    assert_eq!(
        r.stdout,
        "produced 3 records to lines\n\
         PARTITION  RECORDS  FIRST-OFFSET  LAST-OFFSET\n\
         0          3        0             2\n"
    );

    let r = ok(b, &["consume", "lines"], "");
    assert_eq!(r.stdout, "first\nsecond:with colon\nkeyless-ish\n");
    let r = ok(b, &["consume", "lines", "-k", "="], "");
    assert_eq!(r.stdout, "k1=first\nk2=second:with colon\n=keyless-ish\n");
    let r = ok(b, &["consume", "lines", "-o", "1", "-n", "1"], "");
    assert_eq!(r.stdout, "second:with colon\n");
    let r = ok(b, &["consume", "lines", "-o", "end"], "");
    assert_eq!(r.stdout, "");

    let r = ok(b, &["consume", "lines", "--format", "json"], "");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{r}");
    let mut timestamps = Vec::new();
    for (i, (line, (key, value))) in lines
        .iter()
        .zip([
            ("k1", "first"),
            ("k2", "second:with colon"),
            ("", "keyless-ish"),
        ])
        .enumerate()
    {
        let v = json(line);
        let ts = v["timestamp"].as_i64().expect("a timestamp");
        timestamps.push(ts);
        // Field by field, and the exact text (keys sorted, one line per record).
        let expected = format!(
            "{{\"headers\":{{\"source\":\"cli\",\"trace\":\"a=b\"}},\"key\":\"{key}\",\"offset\":{i},\
             \"partition\":0,\"timestamp\":{ts},\"topic\":\"lines\",\"value\":\"{value}\"}}"
        );
        assert_eq!(*line, expected);
    }
    // --timestamp starts at the first record at or after it.
    let r = ok(
        b,
        &[
            "consume",
            "lines",
            "--timestamp",
            &(timestamps[2] + 1).to_string(),
        ],
        "",
    );
    assert_eq!(r.stdout, "");
    let r = ok(
        b,
        &[
            "consume",
            "lines",
            "--timestamp",
            &timestamps[0].to_string(),
        ],
        "",
    );
    assert_eq!(r.stdout, "first\nsecond:with colon\nkeyless-ish\n");
}

#[test]
fn keyed_lines_land_where_kafkas_default_partitioner_puts_them() {
    let _dog = watchdog(TEST_LIMIT);
    let broker = Broker::start(&[]);
    let b = &broker.bootstrap();
    ok(b, &["topic", "create", "keyed", "-p", "4"], "");
    // murmur2 of the key, positive, modulo 4 (values from Kafka's partitioner).
    let input = "21=a\nfoobar=b\nabc=c\n21=d\n";
    ok(b, &["produce", "keyed", "-k", "="], input);
    let expected = [
        ("21", -973932308i32),
        ("foobar", -790332482),
        ("abc", 479470107),
    ];
    for (key, hash) in expected {
        let partition = (hash & 0x7fff_ffff) % 4;
        let r = ok(
            b,
            &["consume", "keyed", "-p", &partition.to_string(), "-k", "="],
            "",
        );
        assert!(
            r.stdout.lines().any(|l| l.starts_with(&format!("{key}="))),
            "key {key} not in partition {partition}:\n{r}"
        );
    }
    let r = ok(b, &["consume", "keyed", "-k", "=", "--format", "plain"], "");
    let mut got: Vec<&str> = r.stdout.lines().collect();
    got.sort();
    assert_eq!(got, ["21=a", "21=d", "abc=c", "foobar=b"]);
}

#[test]
fn follow_prints_records_produced_after_it_started() {
    let _dog = watchdog(TEST_LIMIT);
    let broker = Broker::start(&[]);
    let b = broker.bootstrap();
    ok(&b, &["topic", "create", "live", "-p", "2"], "");
    ok(&b, &["produce", "live", "-p", "0"], "one\n");
    let consumer = {
        let b = b.clone();
        std::thread::spawn(move || run(&b, &["consume", "live", "-f", "-n", "3"], ""))
    };
    std::thread::sleep(Duration::from_millis(500));
    ok(&b, &["produce", "live", "-p", "1"], "two\n");
    ok(&b, &["produce", "live", "-p", "0"], "three\n");
    let r = consumer.join().expect("consumer thread");
    assert_eq!(r.code, Some(0), "{r}");
    let mut got: Vec<&str> = r.stdout.lines().collect();
    got.sort();
    assert_eq!(got, ["one", "three", "two"]);
}

#[test]
fn read_committed_hides_aborted_transactions() {
    let _dog = watchdog(TEST_LIMIT);
    let broker = Broker::start(&[]);
    let b = &broker.bootstrap();
    ok(b, &["topic", "create", "txns", "-p", "1"], "");
    let t = Duration::from_secs(30);
    let producer: ThreadedProducer<DefaultProducerContext> =
        client_config(b, &[("transactional.id", "cli-test"), ("linger.ms", "1")])
            .create()
            .expect("transactional producer");
    producer.init_transactions(t).expect("init_transactions");
    for (values, commit) in [
        (["c1", "c2"], true),
        (["a1", "a2"], false),
        (["c3", "c4"], true),
    ] {
        producer.begin_transaction().expect("begin");
        for v in values {
            producer
                .send(BaseRecord::<(), _>::to("txns").partition(0).payload(v))
                .unwrap_or_else(|(e, _)| panic!("send {v}: {e}"));
        }
        producer.flush(t).expect("flush");
        if commit {
            producer.commit_transaction(t).expect("commit");
        } else {
            producer.abort_transaction(t).expect("abort");
        }
    }
    let r = ok(b, &["consume", "txns", "--isolation", "read-committed"], "");
    assert_eq!(r.stdout, "c1\nc2\nc3\nc4\n");
    let r = ok(
        b,
        &["consume", "txns", "--isolation", "read-uncommitted"],
        "",
    );
    assert_eq!(r.stdout, "c1\nc2\na1\na2\nc3\nc4\n");
}

#[test]
fn bad_input_gets_one_clear_line_and_exit_status_1() {
    let _dog = watchdog(TEST_LIMIT);
    let broker = Broker::start(&[]);
    let b = &broker.bootstrap();
    ok(b, &["topic", "create", "present", "-p", "2"], "");

    // Missing topics.
    for args in [
        &["topic", "describe", "absent"][..],
        &[
            "topic",
            "trim",
            "absent",
            "--partition",
            "0",
            "--offset",
            "1",
        ],
        &["consume", "absent"],
    ] {
        fails(b, args, "", "topic 'absent' does not exist");
    }
    fails(
        b,
        &["produce", "absent"],
        "x\n",
        "topic 'absent' does not exist",
    );
    fails(
        b,
        &["topic", "delete", "absent"],
        "",
        "topic 'absent' does not exist",
    );

    // Partition counts and partitions.
    fails(
        b,
        &["topic", "create", "zero", "-p", "0"],
        "",
        "--partitions must be at least 1, got 0",
    );
    let r = run(b, &["topic", "create", "many", "-p", "lots"], "");
    assert_eq!(r.code, Some(2), "clap refuses a non-number:\n{r}");
    assert!(r.stderr.contains("invalid value 'lots'"), "{r}");
    fails(
        b,
        &["topic", "create", "present", "-p", "2"],
        "",
        "cannot create topic 'present': TOPIC_ALREADY_EXISTS (36) (Topic 'present' already exists.)",
    );
    fails(
        b,
        &["produce", "present", "-p", "5"],
        "x\n",
        "topic 'present' has no partition 5 (it has 2)",
    );
    fails(
        b,
        &["consume", "present", "-p", "2"],
        "",
        "topic 'present' has no partition 2 (it has 2)",
    );
    fails(
        b,
        &[
            "topic",
            "trim",
            "present",
            "--partition",
            "0",
            "--offset",
            "7",
        ],
        "",
        "cannot trim present-0 to offset 7: it is past the log end offset 0",
    );

    // Configs, as the broker answers them.
    fails(
        b,
        &["topic", "create", "cfg", "-c", "retention.ms=soon"],
        "",
        "cannot create topic 'cfg': INVALID_CONFIG (40) (invalid value 'soon' for configuration \
         key 'retention.ms': invalid digit found in string)",
    );
    fails(
        b,
        &["topic", "create", "cfg", "-c", "retention.ms"],
        "",
        "--config \"retention.ms\" is not of the form key=value",
    );

    // Malformed lines: nothing of a batch with a bad line is produced.
    fails(
        b,
        &["produce", "present", "-k", "=", "-p", "0"],
        "k=v\nno separator here\nk2=v2\n",
        "line 2 has no key separator \"=\": \"no separator here\" (nothing was produced)",
    );
    fails(
        b,
        &["produce", "present", "-H", "novalue"],
        "x\n",
        "--header \"novalue\" is not of the form key=value",
    );
    let r = ok(b, &["consume", "present"], "");
    assert_eq!(r.stdout, "", "nothing was produced");
    fails(
        b,
        &["consume", "present", "-o", "soon"],
        "",
        "--offset \"soon\" is not beginning, end or an offset of 0 or more",
    );

    // No broker at all.
    let r = run("127.0.0.1:1", &["topic", "list"], "");
    assert_eq!(r.code, Some(1), "{r}");
    assert!(
        r.stderr.starts_with("error: cannot connect to 127.0.0.1:1"),
        "{r}"
    );
    assert_eq!(r.stderr.lines().count(), 1, "{r}");
}

#[test]
fn alter_config_sets_deletes_and_appends_and_refuses_bad_keys_and_values() {
    let _dog = watchdog(TEST_LIMIT);
    let broker = Broker::start(&[]);
    let b = &broker.bootstrap();
    ok(b, &["topic", "create", "tuned", "-p", "1"], "");

    // (value, source) from the describe table's configs section.
    let config = |name: &str| -> (String, String) {
        let r = ok(b, &["topic", "describe", "tuned"], "");
        let row = r
            .stdout
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|cells| cells.first() == Some(&name))
            .unwrap_or_else(|| panic!("{name} not described:\n{r}"));
        (row[1].to_string(), row.get(2).unwrap_or(&"").to_string())
    };

    let r = ok(
        b,
        &[
            "topic",
            "alter-config",
            "tuned",
            "--set",
            "retention.ms=60000",
            "--append",
            "cleanup.policy=delete",
        ],
        "",
    );
    assert_eq!(
        r.stdout,
        "CONFIG          OP      VALUE   STATUS\n\
         retention.ms    set     60000   changed\n\
         cleanup.policy  append  delete  changed\n"
    );
    assert_eq!(config("retention.ms").0, "60000");
    assert_ne!(config("retention.ms").1, "DEFAULT_CONFIG");

    // A dry run is checked and applies nothing.
    let r = ok(
        b,
        &[
            "topic",
            "alter-config",
            "tuned",
            "--set",
            "retention.ms=1",
            "--dry-run",
            "--json",
        ],
        "",
    );
    assert_eq!(json(&r.stdout)["applied"], false);
    assert_eq!(config("retention.ms").0, "60000");

    ok(
        b,
        &["topic", "alter-config", "tuned", "--delete", "retention.ms"],
        "",
    );
    assert_eq!(
        config("retention.ms"),
        ("604800000".into(), "DEFAULT_CONFIG".into())
    );

    fails(
        b,
        &["topic", "alter-config", "tuned", "--set", "no.such.key=1"],
        "",
        "altering the configs of topic 'tuned' (Unknown topic config name: no.such.key): \
         INVALID_CONFIG (40)",
    );
    let r = run(
        b,
        &[
            "topic",
            "alter-config",
            "tuned",
            "--set",
            "retention.ms=soon",
        ],
        "",
    );
    assert_eq!(r.code, Some(1), "{r}");
    assert!(
        r.stderr
            .starts_with("error: altering the configs of topic 'tuned'")
            && r.stderr.contains("retention.ms")
            && r.stderr.contains("INVALID_CONFIG"),
        "{r}"
    );
    let r = run(
        b,
        &["topic", "alter-config", "absent", "--set", "retention.ms=1"],
        "",
    );
    assert_eq!(r.code, Some(1), "{r}");
    assert!(r.stderr.contains("UNKNOWN_TOPIC_OR_PARTITION"), "{r}");
    fails(
        b,
        &["topic", "alter-config", "tuned"],
        "",
        "nothing to change: give --set, --delete, --append or --subtract",
    );
    fails(
        b,
        &["topic", "alter-config", "tuned", "--set", "retention.ms"],
        "",
        "--set \"retention.ms\" is not of the form key=value",
    );
}

#[test]
fn batches_compressed_with_every_codec_are_produced_and_consumed() {
    let _dog = watchdog(TEST_LIMIT);
    let broker = Broker::start(&[]);
    let b = &broker.bootstrap();
    ok(b, &["topic", "create", "squeezed", "-p", "5"], "");
    let codecs = ["none", "gzip", "snappy", "lz4", "zstd"];
    for (partition, codec) in codecs.iter().enumerate() {
        let lines: String = (0..50).map(|i| format!("{codec}-{i}\n")).collect();
        let p = partition.to_string();
        ok(b, &["produce", "squeezed", "-p", &p, "-z", codec], &lines);
    }
    // librdkafka's own codecs, read back by Starling's consumer.
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let producer: ThreadedProducer<DefaultProducerContext> =
            client_config(b, &[("compression.type", codec), ("linger.ms", "50")])
                .create()
                .expect("producer");
        for i in 0..20 {
            let value = format!("rd-{codec}-{i}");
            producer
                .send(
                    BaseRecord::<(), _>::to("squeezed")
                        .partition(0)
                        .payload(&value),
                )
                .map_err(|(e, _)| e)
                .expect("enqueue");
        }
        producer.flush(Duration::from_secs(20)).expect("flush");
    }
    for (partition, codec) in codecs.iter().enumerate() {
        let p = partition.to_string();
        let r = ok(b, &["consume", "squeezed", "-p", &p], "");
        let mut expected: Vec<String> = (0..50).map(|i| format!("{codec}-{i}")).collect();
        if partition == 0 {
            for rd in ["gzip", "snappy", "lz4", "zstd"] {
                expected.extend((0..20).map(|i| format!("rd-{rd}-{i}")));
            }
        }
        assert_eq!(r.stdout.lines().collect::<Vec<_>>(), expected, "{codec}");
    }
    // A codec Kafka does not have is a usage error naming the ones it has.
    // (No input: the usage error comes before stdin is read, so a write could meet a closed pipe.)
    let r = run(b, &["produce", "squeezed", "-z", "brotli"], "");
    assert_eq!(r.code, Some(2), "{r}");
    assert!(
        r.stderr
            .contains("[possible values: none, gzip, snappy, lz4, zstd]"),
        "{r}"
    );
}

#[test]
fn a_group_consumer_starts_at_committed_offsets_and_commits_what_it_printed() {
    let _dog = watchdog(TEST_LIMIT);
    let broker = Broker::with_overrides(&[("group.initial.rebalance.delay.ms", "0")]);
    let b = &broker.bootstrap();
    ok(b, &["topic", "create", "grouped", "-p", "3"], "");
    let lines =
        |from: usize, to: usize| -> String { (from..to).map(|i| format!("k{i}:v{i}\n")).collect() };
    ok(b, &["produce", "grouped", "-k", ":"], &lines(0, 30));

    let sorted = |out: &str| -> Vec<String> {
        let mut v: Vec<String> = out.lines().map(str::to_string).collect();
        v.sort();
        v
    };
    let expect = |from: usize, to: usize| -> Vec<String> {
        let mut v: Vec<String> = (from..to).map(|i| format!("v{i}")).collect();
        v.sort();
        v
    };
    // A first run reads everything (no committed offsets: from the beginning) and commits.
    let r = ok(b, &["consume", "grouped", "-g", "readers"], "");
    assert_eq!(sorted(&r.stdout), expect(0, 30), "{r}");
    assert!(
        r.stderr
            .contains("joined group readers (generation 1) with partitions [0, 1, 2]"),
        "{r}"
    );
    // The next run reads only what came after.
    ok(b, &["produce", "grouped", "-k", ":"], &lines(30, 40));
    let r = ok(b, &["consume", "grouped", "-g", "readers"], "");
    assert_eq!(sorted(&r.stdout), expect(30, 40), "{r}");
    let r = ok(b, &["consume", "grouped", "-g", "readers"], "");
    assert_eq!(r.stdout, "", "{r}");

    // -n stops early and commits only what was printed: a later run prints the rest.
    let r = ok(b, &["consume", "grouped", "-g", "pagers", "-n", "7"], "");
    let first: Vec<String> = r.stdout.lines().map(str::to_string).collect();
    assert_eq!(first.len(), 7, "{r}");
    let r = ok(b, &["consume", "grouped", "-g", "pagers"], "");
    let mut all: Vec<String> = first
        .into_iter()
        .chain(r.stdout.lines().map(str::to_string))
        .collect();
    all.sort();
    assert_eq!(
        all,
        expect(0, 40),
        "the two runs together print every record once"
    );

    // The commits are ordinary group offsets: librdkafka in the same group resumes there.
    ok(
        b,
        &["produce", "grouped", "-k", ":", "-p", "1"],
        "k40:v40\n",
    );
    let c = consumer(
        b,
        &[
            ("group.id", "readers"),
            ("auto.offset.reset", "earliest"),
            ("enable.auto.commit", "false"),
        ],
    );
    rdkafka::consumer::Consumer::subscribe(&c, &["grouped"]).expect("subscribe");
    let got = consume_until(&c, Duration::from_secs(30), |got| !got.is_empty());
    assert_eq!(got[0].value_str(), "v40");
    let quiet_until = std::time::Instant::now() + Duration::from_millis(1500);
    while std::time::Instant::now() < quiet_until {
        if let Some(m) = c.poll(Duration::from_millis(100)) {
            let m = m.expect("consumer error");
            panic!(
                "librdkafka read a committed record again: partition {} offset {}",
                rdkafka::Message::partition(&m),
                rdkafka::Message::offset(&m)
            );
        }
    }
    drop(c);

    // An explicit offset means nothing to a group member.
    fails(
        b,
        &["consume", "grouped", "-g", "readers", "-o", "5"],
        "",
        "with --group, --offset is where to start without a committed offset: beginning or end",
    );
    let r = run(b, &["consume", "grouped", "-g", "readers", "-p", "0"], "");
    assert_eq!(r.code, Some(2), "{r}");
}
