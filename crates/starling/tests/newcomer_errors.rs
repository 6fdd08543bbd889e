//! What a new user gets wrong at `starling serve`, and the one clear message each mistake
//! prints: a data directory that is a file, a data directory another broker holds, contradictory
//! group settings; and what a new user expects to work: a host name in `listeners`, Kafka's
//! stock KRaft `server.properties`.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

/// Runs `starling serve ARGS` with backtraces asked for, expecting it to refuse to start.
/// Returns stderr once checked: a non-zero exit, no `listening on`, no panic or backtrace.
fn refused(args: &[&str]) -> String {
    let mut cmd = vec!["serve", "--admin-listen", "none"];
    cmd.extend_from_slice(args);
    let (status, out, err) =
        run_to_exit_with_env(&cmd, &[("RUST_BACKTRACE", "1")], Duration::from_secs(30));
    assert!(!status.success(), "{cmd:?} should fail; stderr:\n{err}");
    assert!(!out.contains("listening on"), "{cmd:?} started: {out}");
    for word in ["panicked", "backtrace", "Backtrace"] {
        assert!(!err.contains(word), "{cmd:?}: {word:?} in stderr:\n{err}");
    }
    err
}

/// Like [`run_to_exit`] with extra environment variables.
fn run_to_exit_with_env(
    args: &[&str],
    env: &[(&str, &str)],
    limit: Duration,
) -> (std::process::ExitStatus, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (dir.path().join("out"), dir.path().join("err"));
    let mut cmd = Command::new(STARLING);
    cmd.args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap());
    die_with_parent(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    let status = wait_with_timeout(&mut child, limit);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let out = std::fs::read_to_string(&out_path).unwrap_or_default();
    let err = std::fs::read_to_string(&err_path).unwrap_or_default();
    let status = status
        .unwrap_or_else(|| panic!("`starling {args:?}` still running after {limit:?}\n{err}"));
    (status, out, err)
}

/// Starts `starling serve ARGS` and waits for its `listening on` line; stderr goes to `log`.
fn serve_until_listening(args: &[&str], log: &Path) -> (Child, std::net::SocketAddr) {
    let mut cmd = Command::new(STARLING);
    cmd.arg("serve")
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap());
    die_with_parent(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| {
            panic!(
                "no `listening on` line: {line:?}\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            )
        })
        .parse()
        .unwrap();
    (child, addr)
}

fn stop(mut child: Child) {
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = wait_with_timeout(&mut child, Duration::from_secs(20)).expect("broker exits");
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_data_dir_that_is_a_file_says_so() {
    let _dog = watchdog(Duration::from_secs(60));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data");
    std::fs::write(&file, "not a directory").unwrap();
    let file = file.to_str().unwrap();
    let err = refused(&["--listen", "127.0.0.1:0", "--data-dir", file]);
    assert!(
        err.contains(&format!(
            "the data directory {file} is a file, not a directory"
        )),
        "{err}"
    );
    let below = format!("{file}/below");
    let err = refused(&["--listen", "127.0.0.1:0", "--data-dir", &below]);
    assert!(
        err.contains(&format!("{file} is a file, not a directory")),
        "{err}"
    );
}

#[test]
fn a_data_dir_in_use_says_another_broker_holds_it_until_that_broker_is_killed() {
    let _dog = watchdog(Duration::from_secs(120));
    let mut first = Broker::start(&[]);
    let data = first.data_dir().to_str().unwrap().to_string();
    let err = refused(&["--listen", "127.0.0.1:0", "--data-dir", &data]);
    assert!(
        err.contains(&format!(
            "the data directory {data} is in use: another Starling broker (pid {}) holds its lock",
            first.pid()
        )),
        "{err}"
    );
    // kill -9 runs no clean-up, and the lock goes with the process all the same.
    first.kill9();
    first.start_again();
    assert!(first.is_alive());
}

#[test]
fn contradictory_session_timeouts_are_refused_naming_both_keys() {
    let _dog = watchdog(Duration::from_secs(60));
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let err = refused(&[
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data.to_str().unwrap(),
        "--override",
        "group.min.session.timeout.ms=60000",
        "--override",
        "group.max.session.timeout.ms=30000",
    ]);
    assert!(
        err.contains("invalid value '60000' for configuration key 'group.min.session.timeout.ms'")
            && err.contains("must not exceed group.max.session.timeout.ms (30000)"),
        "{err}"
    );
}

#[test]
fn a_host_name_in_listeners_is_resolved() {
    let _dog = watchdog(Duration::from_secs(60));
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (child, addr) = serve_until_listening(
        &[
            "--admin-listen",
            "localhost:0",
            "--data-dir",
            data.to_str().unwrap(),
            "--override",
            "listeners=PLAINTEXT://localhost:0",
        ],
        &dir.path().join("stderr"),
    );
    assert!(addr.ip().is_loopback(), "{addr}");
    assert_ne!(addr.port(), 0);
    let md = raw_metadata(addr, None, false);
    assert_eq!(md.brokers.len(), 1);
    stop(child);
}

#[test]
fn a_host_name_given_to_listen_is_resolved() {
    let _dog = watchdog(Duration::from_secs(60));
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (child, addr) = serve_until_listening(
        &[
            "--admin-listen",
            "none",
            "--data-dir",
            data.to_str().unwrap(),
            "--listen",
            "localhost:0",
        ],
        &dir.path().join("stderr"),
    );
    assert!(addr.ip().is_loopback(), "{addr}");
    assert_eq!(raw_metadata(addr, None, false).brokers.len(), 1);
    stop(child);
}

#[test]
fn log_repair_refuses_a_data_dir_a_running_broker_holds() {
    let _dog = watchdog(Duration::from_secs(60));
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (child, _addr) = serve_until_listening(
        &[
            "--admin-listen",
            "none",
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &dir.path().join("stderr"),
    );
    let (status, _out, err) = run_to_exit(
        &["log", "repair", "--data-dir", data.to_str().unwrap()],
        Duration::from_secs(30),
    );
    assert!(!status.success());
    assert!(err.contains("is in use"), "{err}");
    stop(child);
}

#[test]
fn a_listen_address_that_does_not_resolve_is_one_clear_error() {
    let err = refused(&["--listen", "no-such-host.invalid:9092"]);
    assert!(err.contains("--listen"), "{err}");
    assert!(
        err.starts_with("error: ") || err.contains("\nerror: "),
        "{err}"
    );
}

#[test]
fn kafkas_stock_kraft_server_properties_load_with_warnings_for_what_one_node_ignores() {
    let _dog = watchdog(Duration::from_secs(60));
    let dir = tempfile::tempdir().unwrap();
    let props = dir.path().join("server.properties");
    // Apache Kafka 4's config/server.properties, comments left out.
    std::fs::write(
        &props,
        include_str!("../../starling-broker/testdata/kafka-4-server.properties"),
    )
    .unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("stderr");
    // Tests run side by side: the flags keep it off port 9092 and /tmp/kraft-combined-logs.
    let (child, addr) = serve_until_listening(
        &[
            "--config",
            props.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &log,
    );
    let md = raw_metadata(addr, None, false);
    assert_eq!(md.brokers[0].host.as_str(), "localhost");
    assert_eq!(md.brokers[0].port, 9092);
    stop(child);
    let err = std::fs::read_to_string(&log).unwrap();
    for ignored in [
        "key=\"process.roles\"",
        "key=\"controller.quorum.bootstrap.servers\"",
        "listener=\"CONTROLLER://:9093\"",
    ] {
        assert!(
            err.lines()
                .any(|l| l.contains("WARN") && l.contains("no effect") && l.contains(ignored)),
            "a warning for {ignored} in\n{err}"
        );
    }
}

/// The long options a command's `--help` lists.
fn help_options(args: &[&str]) -> Vec<String> {
    let mut full = args.to_vec();
    full.push("--help");
    let (status, stdout, _) = run_to_exit(&full, Duration::from_secs(30));
    assert!(status.success(), "{full:?}");
    stdout
        .lines()
        .filter_map(|l| {
            let l = l.trim_start();
            // `-h, --help`: skip the short form.
            let l = match l.strip_prefix('-') {
                Some(rest) if !rest.starts_with('-') => rest.split_once(", ")?.1,
                _ => l,
            };
            l.strip_prefix("--")
                .map(|rest| rest.split([' ', '=']).next().unwrap_or("").to_string())
        })
        .collect()
}

#[test]
fn help_texts_list_only_the_options_a_command_uses() {
    // Producing needs no consumer settings, consuming does.
    let produce = help_options(&["bench", "produce"]);
    assert!(
        produce.contains(&"producer-config".to_string()),
        "{produce:?}"
    );
    assert!(
        !produce.contains(&"consumer-config".to_string()),
        "{produce:?}"
    );
    for command in [&["bench", "consume"][..], &["bench", "all"]] {
        let options = help_options(command);
        assert!(
            options.contains(&"consumer-config".to_string()),
            "{command:?}: {options:?}"
        );
    }
    // A group member picks neither partitions nor a start time.
    let consume = help_options(&["consume"]);
    assert!(consume.contains(&"group".to_string()), "{consume:?}");
    let produce = help_options(&["produce"]);
    for absent in ["group", "format", "follow", "isolation"] {
        assert!(
            !produce.contains(&absent.to_string()),
            "produce lists --{absent}"
        );
    }
}
