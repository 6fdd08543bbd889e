//! Broker configuration on the command line and in a properties file: bad keys and values are
//! refused at startup (non-zero exit, the key named on stderr), good ones take effect, and
//! `--override` wins over `--config`.

mod common;

use std::time::Duration;

use common::*;

/// Runs `starling serve` with a temporary data dir plus `extra`, expecting it to exit by itself.
fn serve_expecting_exit(
    extra: &[&str],
) -> (std::process::ExitStatus, String, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut args = vec![
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--data-dir",
        data.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let (status, out, err) = run_to_exit(&args, Duration::from_secs(20));
    (status, out, err, dir)
}

fn assert_refused(extra: &[&str], key: &str) {
    let (status, out, err, _dir) = serve_expecting_exit(extra);
    assert!(
        !status.success(),
        "{extra:?}: exit status should be non-zero, was {status}"
    );
    assert!(
        !out.contains("listening on"),
        "{extra:?}: the broker must not start listening; stdout: {out}"
    );
    assert!(
        err.contains(key),
        "{extra:?}: stderr should name {key:?}:\n{err}"
    );
}

#[test]
fn unknown_override_key_exits_nonzero_naming_the_key() {
    let _dog = watchdog(Duration::from_secs(60));
    assert_refused(&["--override", "no.such.key=1"], "no.such.key");
    assert_refused(
        &["--override", "log.segmnet.bytes=1024"],
        "log.segmnet.bytes",
    );
    // A good override before the bad one does not save it.
    assert_refused(
        &[
            "--override",
            "num.partitions=3",
            "--override",
            "bogus.setting=true",
        ],
        "bogus.setting",
    );
}

#[test]
fn bad_override_values_exit_nonzero_naming_the_key() {
    let _dog = watchdog(Duration::from_secs(60));
    for (kv, key) in [
        ("num.partitions=many", "num.partitions"),
        ("num.partitions=0", "num.partitions"),
        (
            "auto.create.topics.enable=maybe",
            "auto.create.topics.enable",
        ),
        ("log.segment.bytes=-5", "log.segment.bytes"),
        ("log.retention.ms=soon", "log.retention.ms"),
        ("log.retention.bytes=-7", "log.retention.bytes"),
        (
            "log.flush.interval.messages=0",
            "log.flush.interval.messages",
        ),
        ("message.max.bytes=1e6", "message.max.bytes"),
        ("socket.request.max.bytes=-1", "socket.request.max.bytes"),
        ("log.roll.ms=x", "log.roll.ms"),
        ("log.flush.interval.ms=-3", "log.flush.interval.ms"),
    ] {
        assert_refused(&["--override", kv], key);
    }
}

#[test]
fn override_without_equals_sign_is_refused() {
    let _dog = watchdog(Duration::from_secs(60));
    assert_refused(&["--override", "num.partitions"], "num.partitions");
}

#[test]
fn unknown_key_in_properties_file_is_refused_naming_the_key() {
    let _dog = watchdog(Duration::from_secs(60));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.properties");
    std::fs::write(&path, "# a comment\nnum.partitions=2\nnot.a.kafka.key=5\n").unwrap();
    assert_refused(&["--config", path.to_str().unwrap()], "not.a.kafka.key");
}

#[test]
fn every_documented_override_is_accepted() {
    let _dog = watchdog(Duration::from_secs(60));
    let broker = Broker::with_overrides(&[
        ("num.partitions", "2"),
        ("auto.create.topics.enable", "true"),
        ("log.segment.bytes", "1048576"),
        ("log.roll.ms", "3600000"),
        ("log.retention.ms", "-1"),
        ("log.retention.bytes", "-1"),
        ("log.flush.interval.messages", "100"),
        ("log.flush.interval.ms", "1000"),
        ("message.max.bytes", "2000000"),
        ("socket.request.max.bytes", "10485760"),
        ("log.retention.check.interval.ms", "1000"),
    ]);
    let md = raw_metadata(broker.addr(), Some(&["auto-two"]), true);
    assert_eq!(md.topics[0].error_code, 0);
    assert_eq!(md.topics[0].partitions.len(), 2);
}

#[test]
fn properties_file_applies_and_overrides_win() {
    let _dog = watchdog(Duration::from_secs(60));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.properties");
    std::fs::write(
        &path,
        "# stock-looking file\nnum.network.threads=3\nnum.partitions = 5\nauto.create.topics.enable=true\n",
    )
    .unwrap();
    let cfg = path.to_str().unwrap();

    let broker = Broker::start(&["--config", cfg]);
    let md = raw_metadata(broker.addr(), Some(&["from-file"]), true);
    assert_eq!(md.topics[0].error_code, 0);
    assert_eq!(
        md.topics[0].partitions.len(),
        5,
        "num.partitions from the file"
    );
    drop(broker);

    let broker = Broker::start(&["--config", cfg, "--override", "num.partitions=2"]);
    let md = raw_metadata(broker.addr(), Some(&["from-override"]), true);
    assert_eq!(md.topics[0].error_code, 0);
    assert_eq!(
        md.topics[0].partitions.len(),
        2,
        "--override beats --config"
    );
}

#[test]
fn sigterm_stops_the_broker_cleanly_and_port_zero_picks_a_free_port() {
    let _dog = watchdog(Duration::from_secs(60));
    let mut a = Broker::start(&[]);
    let mut b = Broker::start(&[]);
    assert_ne!(
        a.addr().port(),
        b.addr().port(),
        "two brokers on port 0 get different ports"
    );
    assert_eq!(a.addr().ip().to_string(), "127.0.0.1");
    a.terminate();
    b.terminate();
    assert!(!a.is_alive() && !b.is_alive());
}

#[test]
fn advertised_address_is_what_metadata_hands_out() {
    let _dog = watchdog(Duration::from_secs(60));
    let broker = Broker::start(&["--advertised", "kafka.example.test:19092"]);
    let md = raw_metadata(broker.addr(), None, false);
    assert_eq!(md.brokers.len(), 1);
    assert_eq!(md.brokers[0].host.as_str(), "kafka.example.test");
    assert_eq!(md.brokers[0].port, 19092);
    assert_eq!(
        md.controller_id, md.brokers[0].node_id,
        "this broker is the controller"
    );

    // Without --advertised, the bound address (with the real port, not 0) is handed out.
    let broker = Broker::start(&[]);
    let md = raw_metadata(broker.addr(), None, false);
    assert_eq!(md.brokers[0].host.as_str(), "127.0.0.1");
    assert_eq!(md.brokers[0].port, broker.addr().port() as i32);
}

#[test]
fn listeners_log_dirs_and_advertised_listeners_from_the_properties_file_take_effect() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let _dog = watchdog(Duration::from_secs(60));
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("from-config");
    let props = dir.path().join("server.properties");
    std::fs::write(
        &props,
        format!(
            "listeners=PLAINTEXT://127.0.0.1:0\nlog.dirs={}\nadvertised.listeners=PLAINTEXT://kafka.from-config.test:29092\nadmin.listen=127.0.0.1:0\n",
            data.display()
        ),
    )
    .unwrap();
    // No --listen, --data-dir or --advertised: the file alone decides.
    let mut child = Command::new(STARLING)
        .args(["serve", "--config", props.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr: std::net::SocketAddr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap();
    assert_ne!(addr.port(), 0);

    let md = raw_metadata(addr, None, false);
    assert_eq!(md.brokers[0].host.as_str(), "kafka.from-config.test");
    assert_eq!(md.brokers[0].port, 29092);
    assert!(
        data.join("meta.redb").exists(),
        "log.dirs from the file was not used as the data directory"
    );

    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = wait_with_timeout(&mut child, Duration::from_secs(20)).expect("broker exits");
    assert!(status.success(), "{status:?}");
}
