//! Shared fixtures for Starling's end-to-end tests.
//!
//! * [`Broker`] runs the real `starling` binary on a free port with its own temporary data
//!   directory, and can stop it (SIGTERM or SIGKILL) and start it again on the same directory.
//!   Its admin HTTP endpoint gets a free port too ([`Broker::admin_addr`]); [`http_get`] asks
//!   it things.
//! * [`watchdog`] bounds a whole test: if it is still running after its limit the test process
//!   exits with a failure, and every broker it started dies with it (`PR_SET_PDEATHSIG`).
//! * librdkafka helpers (admin, producer, consumer) with short, explicit timeouts.
//! * [`RawClient`]: a plain TCP connection speaking the Kafka framing by hand, for requests no
//!   well-behaved client would send.
//!
//! Each test binary uses only part of this module.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::PartitionData as FetchPartitionData;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, MetadataRequest, MetadataResponse, ProduceRequest,
    RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

/// The binary under test.
pub const STARLING: &str = env!("CARGO_BIN_EXE_starling");

/// How long a broker may take to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a broker may take to exit after SIGTERM or SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Watchdog
// ---------------------------------------------------------------------------------------------

/// Ends the whole test process if the guard is still alive after `limit`.
///
/// Nothing in a test should hang, but if something does (a broker that never answers, a client
/// call without its own timeout), this turns the hang into a failure with a message naming the
/// test. Brokers die with the process because they are spawned with `PR_SET_PDEATHSIG`.
pub struct Watchdog {
    _cancel: mpsc::Sender<()>,
}

pub fn watchdog(limit: Duration) -> Watchdog {
    let name = thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_string();
    let (tx, rx) = mpsc::channel::<()>();
    thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
            eprintln!("\n*** watchdog: test `{name}` still running after {limit:?}; aborting the test process ***\n");
            std::process::exit(101);
        }
    });
    Watchdog { _cancel: tx }
}

// ---------------------------------------------------------------------------------------------
// Broker fixture
// ---------------------------------------------------------------------------------------------

/// Why a broker did not come up.
#[derive(Debug)]
pub struct StartFailure {
    /// The exit status, if the process exited (None: it hung and was killed).
    pub status: Option<ExitStatus>,
    /// Everything the process wrote to stderr.
    pub stderr: String,
    /// What went wrong, in words.
    pub reason: String,
}

/// A `starling serve` child process with its own temporary data directory.
///
/// Brokers must be started from the test's own thread (not from a short-lived helper thread):
/// the child is tied to the spawning thread through `PR_SET_PDEATHSIG`.
pub struct Broker {
    root: tempfile::TempDir,
    data_dir: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
    addr: Option<SocketAddr>,
    admin_addr: Option<SocketAddr>,
    runs: usize,
    /// Set by [`Broker::pin_port`]: later runs listen on this port again.
    pinned_port: Option<u16>,
}

impl Broker {
    /// Starts a broker with extra command-line arguments (after `serve --listen --data-dir
    /// --admin-listen`; the admin address is left to `args` when they set it).
    pub fn start(args: &[&str]) -> Broker {
        match Broker::try_start(args) {
            Ok(b) => b,
            Err(f) => panic!(
                "broker did not start: {}\n--- stderr ---\n{}",
                f.reason, f.stderr
            ),
        }
    }

    /// Starts a broker with `--override key=value` for each pair.
    pub fn with_overrides(overrides: &[(&str, &str)]) -> Broker {
        Broker::start(
            &override_args(overrides)
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        )
    }

    /// Like [`Broker::start`] but reports a failure to start instead of panicking.
    pub fn try_start(args: &[&str]) -> Result<Broker, StartFailure> {
        let root = tempfile::Builder::new()
            .prefix("starling-e2e-")
            .tempdir()
            .expect("create temp dir");
        let data_dir = root.path().join("data");
        std::fs::create_dir_all(&data_dir).expect("create data dir");
        let mut broker = Broker {
            root,
            data_dir,
            args: args.iter().map(|s| s.to_string()).collect(),
            child: None,
            addr: None,
            admin_addr: None,
            runs: 0,
            pinned_port: None,
        };
        broker.spawn()?;
        Ok(broker)
    }

    fn stderr_path(&self, run: usize) -> PathBuf {
        self.root.path().join(format!("stderr-{run}.log"))
    }

    fn spawn(&mut self) -> Result<(), StartFailure> {
        assert!(self.child.is_none(), "broker is already running");
        self.runs += 1;
        let log_path = self.stderr_path(self.runs);
        let log = File::create(&log_path).expect("create stderr log");
        let mut cmd = Command::new(STARLING);
        let port = self.pinned_port.unwrap_or(0);
        cmd.arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(&self.data_dir);
        // Never the default admin port: tests run in parallel.
        let (sets_admin, expect_admin) = admin_args(&self.args);
        if !sets_admin {
            cmd.arg("--admin-listen").arg("127.0.0.1:0");
        }
        cmd.args(&self.args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("spawn starling");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel::<String>();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                match line {
                    Ok(l) => {
                        let _ = tx.send(l);
                    }
                    Err(_) => break,
                }
            }
        });

        let deadline = Instant::now() + START_TIMEOUT;
        let failure = |child: &mut Child, reason: String, this: &Broker| {
            let status = wait_with_timeout(child, Duration::from_secs(10));
            if status.is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
            StartFailure {
                status,
                stderr: std::fs::read_to_string(this.stderr_path(this.runs)).unwrap_or_default(),
                reason,
            }
        };
        // The first line names the Kafka address, the second (unless disabled) the admin one.
        let mut kafka_addr: Option<SocketAddr> = None;
        loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => {
                    let (prefix, which) = match kafka_addr {
                        None => ("listening on ", "first"),
                        Some(_) => ("admin listening on ", "second"),
                    };
                    let addr = line
                        .strip_prefix(prefix)
                        .and_then(|a| a.trim().parse::<SocketAddr>().ok())
                        .filter(|a| a.port() != 0);
                    let Some(addr) = addr else {
                        let _ = child.kill();
                        let reason = format!(
                            "{which} stdout line should be `{prefix}127.0.0.1:PORT`, got {line:?}"
                        );
                        return Err(failure(&mut child, reason, self));
                    };
                    if kafka_addr.is_none() && expect_admin {
                        kafka_addr = Some(addr);
                        continue;
                    }
                    match kafka_addr {
                        Some(kafka) => {
                            self.addr = Some(kafka);
                            self.admin_addr = Some(addr);
                        }
                        None => {
                            self.addr = Some(addr);
                            self.admin_addr = None;
                        }
                    }
                    self.child = Some(child);
                    return Ok(());
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let reason = "stdout closed before a `listening on` line".to_string();
                    return Err(failure(&mut child, reason, self));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        let reason = format!("exited with {status} before listening");
                        return Err(failure(&mut child, reason, self));
                    }
                    if Instant::now() > deadline {
                        let _ = child.kill();
                        let reason = format!("no `listening on` line within {START_TIMEOUT:?}");
                        return Err(failure(&mut child, reason, self));
                    }
                }
            }
        }
    }

    /// Makes every later start listen on the port the broker has now, so clients created
    /// before a kill or restart find it again.
    pub fn pin_port(&mut self) {
        self.pinned_port = Some(self.addr().port());
    }

    /// `127.0.0.1:PORT` of the running broker.
    pub fn bootstrap(&self) -> String {
        self.addr().to_string()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr.expect("broker has not started")
    }

    /// `127.0.0.1:PORT` of the running broker's admin HTTP endpoint.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
            .expect("broker has not started, or its admin endpoint is disabled")
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// `DATA_DIR/TOPIC-PARTITION`.
    pub fn partition_dir(&self, topic: &str, partition: i32) -> PathBuf {
        self.data_dir.join(format!("{topic}-{partition}"))
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("broker is not running").id()
    }

    /// True while the process has not exited.
    pub fn is_alive(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// SIGKILL, then reap.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("broker is not running");
        let _ = child.kill();
        let _ = child.wait();
        self.addr = None;
        self.admin_addr = None;
    }

    /// SIGTERM and wait for a clean exit (status 0).
    pub fn terminate(&mut self) {
        let mut child = self.child.take().expect("broker is not running");
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let status = wait_with_timeout(&mut child, STOP_TIMEOUT);
        self.addr = None;
        self.admin_addr = None;
        match status {
            Some(s) if s.success() => {}
            Some(s) => panic!(
                "broker exited with {s} after SIGTERM (expected 0)\n--- stderr ---\n{}",
                self.stderr_tail()
            ),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "broker did not exit within {STOP_TIMEOUT:?} of SIGTERM\n--- stderr ---\n{}",
                    self.stderr_tail()
                );
            }
        }
    }

    /// Starts the broker again on the same data directory (it must be stopped).
    pub fn start_again(&mut self) {
        if let Err(f) = self.try_start_again() {
            panic!(
                "broker did not restart: {}\n--- stderr ---\n{}",
                f.reason, f.stderr
            );
        }
    }

    pub fn try_start_again(&mut self) -> Result<(), StartFailure> {
        self.spawn()
    }

    /// SIGTERM (clean stop) and start again on the same data directory.
    pub fn restart(&mut self) {
        self.terminate();
        self.start_again();
    }

    /// stderr of the current (or last) run.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr_path(self.runs)).unwrap_or_default()
    }

    fn stderr_tail(&self) -> String {
        let s = self.stderr();
        let start = s.len().saturating_sub(6000);
        let start = (start..s.len())
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(s.len());
        s[start..].to_string()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if thread::panicking() {
            eprintln!(
                "--- broker stderr (run {}, tail) ---\n{}\n--- end of broker stderr ---",
                self.runs,
                self.stderr_tail()
            );
        }
    }
}

/// Whether `args` set the admin endpoint's address themselves (`--admin-listen A` or
/// `--override admin.listen=A`), and whether it stays enabled (A is not `none`).
fn admin_args(args: &[String]) -> (bool, bool) {
    let mut sets = false;
    let mut enabled = true;
    for pair in args.windows(2) {
        let value = match pair[0].as_str() {
            "--admin-listen" => pair[1].trim(),
            "--override" => match pair[1].split_once('=') {
                Some((key, value)) if key.trim() == "admin.listen" => value.trim(),
                _ => continue,
            },
            _ => continue,
        };
        sets = true;
        enabled = !value.eq_ignore_ascii_case("none");
    }
    (sets, enabled)
}

/// A `GET path` over plain HTTP/1.1 (one connection, `Connection: close`): the status code and
/// the body. Panics if the endpoint does not answer within 10 seconds.
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connecting to the admin endpoint {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("GET {path}: reading the response: {e}"));
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("GET {path}: no end of headers in {raw:?}"));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let body = &raw[split + 4..];
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("GET {path}: no status in {head:?}"));
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_vec()
    };
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The payload of a `Transfer-Encoding: chunked` body.
fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = body.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&body[..line_end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
            .unwrap_or(0);
        let rest = &body[line_end + 2..];
        if size == 0 || rest.len() < size {
            break;
        }
        out.extend_from_slice(&rest[..size]);
        body = rest[size..].strip_prefix(b"\r\n").unwrap_or(&rest[size..]);
    }
    out
}

pub fn override_args(overrides: &[(&str, &str)]) -> Vec<String> {
    overrides
        .iter()
        .flat_map(|(k, v)| ["--override".to_string(), format!("{k}={v}")])
        .collect()
}

pub fn wait_with_timeout(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            _ => return None,
        }
    }
}

/// Runs `starling ARGS` to completion (it is expected to exit by itself).
/// Returns the exit status, stdout and stderr. Panics if it is still running after `limit`.
pub fn run_to_exit(args: &[&str], limit: Duration) -> (ExitStatus, String, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let mut cmd = Command::new(STARLING);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap());
    // SAFETY: see Broker::spawn.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn starling");
    let status = wait_with_timeout(&mut child, limit);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let out = std::fs::read_to_string(&out_path).unwrap_or_default();
    let err = std::fs::read_to_string(&err_path).unwrap_or_default();
    match status {
        Some(s) => (s, out, err),
        None => panic!(
            "`starling {}` still running after {limit:?}\n--- stdout ---\n{out}\n--- stderr ---\n{err}",
            args.join(" ")
        ),
    }
}

/// True if `haystack` contains `number` as a whole decimal number (not part of a longer one).
pub fn contains_number(haystack: &str, number: u64) -> bool {
    let needle = number.to_string();
    let bytes = haystack.as_bytes();
    haystack.match_indices(&needle).any(|(i, _)| {
        let before = i
            .checked_sub(1)
            .map(|j| bytes[j].is_ascii_digit())
            .unwrap_or(false);
        let after = bytes
            .get(i + needle.len())
            .map(|b| b.is_ascii_digit())
            .unwrap_or(false);
        !before && !after
    })
}

// ---------------------------------------------------------------------------------------------
// Segment files
// ---------------------------------------------------------------------------------------------

/// The `.log` files of a partition directory, sorted by base offset (their names).
pub fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().map(|x| x == "log").unwrap_or(false))
        .collect();
    files.sort();
    files
}

/// A v2 record batch found in a segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchPos {
    /// Byte position of the batch in the file.
    pub pos: usize,
    /// Whole batch size including the 12-byte offset+length prefix.
    pub len: usize,
    pub base_offset: i64,
    pub records: i32,
    pub attributes: i16,
}

/// Walks the record batches of a well-formed segment file.
pub fn parse_batches(data: &[u8]) -> Vec<BatchPos> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos + 61 <= data.len() {
        let base_offset = i64::from_be_bytes(data[pos..pos + 8].try_into().unwrap());
        let batch_len = i32::from_be_bytes(data[pos + 8..pos + 12].try_into().unwrap());
        assert!(
            batch_len >= 49,
            "implausible batch length {batch_len} at {pos}"
        );
        let len = 12 + batch_len as usize;
        assert!(
            pos + len <= data.len(),
            "batch at {pos} runs past the end of the file"
        );
        let attributes = i16::from_be_bytes(data[pos + 21..pos + 23].try_into().unwrap());
        let records = i32::from_be_bytes(data[pos + 57..pos + 61].try_into().unwrap());
        out.push(BatchPos {
            pos,
            len,
            base_offset,
            records,
            attributes,
        });
        pos += len;
    }
    assert_eq!(pos, data.len(), "trailing bytes after the last batch");
    out
}

/// CRC-32C of a batch as stored in its header matches its contents.
pub fn batch_crc_ok(batch: &[u8]) -> bool {
    let stored = u32::from_be_bytes(batch[17..21].try_into().unwrap());
    crc32c::crc32c(&batch[21..]) == stored
}

// ---------------------------------------------------------------------------------------------
// librdkafka clients
// ---------------------------------------------------------------------------------------------

pub fn client_config(bootstrap: &str, extra: &[(&str, &str)]) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("socket.timeout.ms", "10000");
    for (k, v) in extra {
        cfg.set(*k, *v);
    }
    cfg
}

pub fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    client_config(bootstrap, &[])
        .create()
        .expect("create admin client")
}

pub fn admin_opts() -> AdminOptions {
    AdminOptions::new()
        .request_timeout(Some(Duration::from_secs(10)))
        .operation_timeout(Some(Duration::from_secs(10)))
}

/// Awaits `fut`, failing the test if it takes longer than `limit`.
pub async fn within<F: std::future::Future>(limit: Duration, what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(limit, fut).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: no result within {limit:?}"),
    }
}

/// Creates a topic with `partitions` partitions and replication factor 1; panics unless it worked.
pub async fn create_topic(bootstrap: &str, name: &str, partitions: i32) {
    let admin = admin(bootstrap);
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let res = within(
        Duration::from_secs(20),
        "create_topics",
        admin.create_topics([&topic], &admin_opts()),
    )
    .await
    .expect("create_topics request");
    assert_eq!(res.len(), 1);
    assert_eq!(res[0], Ok(name.to_string()), "creating topic {name}");
}

pub fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> FutureProducer {
    let mut base: Vec<(&str, &str)> = vec![
        ("acks", "all"),
        ("linger.ms", "5"),
        ("message.timeout.ms", "30000"),
    ];
    base.extend_from_slice(extra);
    client_config(bootstrap, &base)
        .create()
        .expect("create producer")
}

/// Enqueues one keyed message for partition 0 of `topic`; the future resolves with its delivery
/// (offset) or the broker's error. Fails only if the producer's queue refuses it.
pub fn send_to_partition0(
    producer: &FutureProducer,
    topic: &str,
    key: &str,
    value: &[u8],
) -> Result<DeliveryFuture, KafkaError> {
    producer
        .send_result(FutureRecord::to(topic).partition(0).key(key).payload(value))
        .map_err(|(e, _)| e)
}

/// A consumer for `assign()` use: no commits, no EOF events. (librdkafka wants a group.id even
/// for `assign()`; it is never joined.)
pub fn consumer(bootstrap: &str, extra: &[(&str, &str)]) -> BaseConsumer {
    let mut base: Vec<(&str, &str)> = vec![
        ("group.id", "starling-e2e-assign-only"),
        ("enable.auto.commit", "false"),
        ("enable.auto.offset.store", "false"),
        ("enable.partition.eof", "false"),
        ("auto.offset.reset", "error"),
    ];
    base.extend_from_slice(extra);
    client_config(bootstrap, &base)
        .create()
        .expect("create consumer")
}

/// Assigns `(partition, offset)` pairs of one topic.
pub fn assign(consumer: &BaseConsumer, topic: &str, parts: &[(i32, Offset)]) {
    let mut tpl = TopicPartitionList::new();
    for &(p, off) in parts {
        tpl.add_partition_offset(topic, p, off).expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
}

/// One consumed message, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub timestamp: Option<i64>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl Msg {
    pub fn key_str(&self) -> String {
        String::from_utf8_lossy(self.key.as_deref().unwrap_or_default()).into_owned()
    }
    pub fn value_str(&self) -> String {
        String::from_utf8_lossy(self.value.as_deref().unwrap_or_default()).into_owned()
    }
}

/// Polls until `done(&collected)` is true; panics on a consumer error or after `limit`.
pub fn consume_until(
    consumer: &BaseConsumer,
    limit: Duration,
    mut done: impl FnMut(&[Msg]) -> bool,
) -> Vec<Msg> {
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    while !done(&got) {
        if Instant::now() > deadline {
            panic!(
                "consumer: condition not reached within {limit:?}; got {} messages, last: {:?}",
                got.len(),
                got.last().map(|m: &Msg| (m.partition, m.offset))
            );
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(m)) => got.push(Msg {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().map(<[u8]>::to_vec),
                timestamp: m.timestamp().to_millis(),
                headers: m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|x| (x.key.to_string(), x.value.map(<[u8]>::to_vec)))
                            .collect()
                    })
                    .unwrap_or_default(),
            }),
            Some(Err(e)) => panic!("consumer error after {} messages: {e}", got.len()),
        }
    }
    got
}

/// Reads `count` messages per listed partition starting at offset 0 and returns them by
/// partition (in the order they arrived).
pub fn consume_from_start(
    bootstrap: &str,
    topic: &str,
    counts: &[(i32, usize)],
    limit: Duration,
) -> BTreeMap<i32, Vec<Msg>> {
    let c = consumer(bootstrap, &[]);
    let parts: Vec<(i32, Offset)> = counts
        .iter()
        .map(|&(p, _)| (p, Offset::Offset(0)))
        .collect();
    assign(&c, topic, &parts);
    let want: usize = counts.iter().map(|&(_, n)| n).sum();
    let msgs = consume_until(&c, limit, |got| got.len() >= want);
    let mut by_part: BTreeMap<i32, Vec<Msg>> = BTreeMap::new();
    for m in msgs {
        by_part.entry(m.partition).or_default().push(m);
    }
    by_part
}

/// (low, high) watermarks through a fresh consumer (ListOffsets earliest/latest).
pub fn watermarks(bootstrap: &str, topic: &str, partition: i32) -> (i64, i64) {
    let c = consumer(bootstrap, &[]);
    c.fetch_watermarks(topic, partition, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("fetch_watermarks {topic}/{partition}: {e}"))
}

/// Topic names and partition counts visible in a fresh client's metadata.
pub fn topics_in_metadata(bootstrap: &str) -> BTreeMap<String, usize> {
    let c = consumer(bootstrap, &[]);
    let md = c
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("fetch_metadata");
    md.topics()
        .iter()
        .filter(|t| t.error().is_none())
        .map(|t| (t.name().to_string(), t.partitions().len()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Raw protocol client
// ---------------------------------------------------------------------------------------------

/// A plain TCP connection that frames Kafka requests by hand.
pub struct RawClient {
    pub stream: TcpStream,
    next_correlation: i32,
}

/// Outcome of waiting for the broker to close a connection.
#[derive(Debug, PartialEq, Eq)]
pub enum CloseOutcome {
    Closed,
    /// The broker sent bytes instead (how many).
    Answered(usize),
    StillOpen,
}

impl RawClient {
    pub fn connect(addr: SocketAddr) -> RawClient {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        RawClient {
            stream,
            next_correlation: 1,
        }
    }

    pub fn send_bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Frames `header ++ body` with its size prefix and sends it. Returns the correlation id.
    pub fn send_parts(
        &mut self,
        api_key: i16,
        api_version: i16,
        header_version: i16,
        body: &[u8],
    ) -> i32 {
        let correlation_id = self.next_correlation;
        self.next_correlation += 1;
        let header = RequestHeader::default()
            .with_request_api_key(api_key)
            .with_request_api_version(api_version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("starling-e2e-raw")));
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, header_version)
            .expect("encode header");
        buf.extend_from_slice(body);
        let mut frame = Vec::with_capacity(buf.len() + 4);
        frame.extend_from_slice(&(buf.len() as i32).to_be_bytes());
        frame.extend_from_slice(&buf);
        self.send_bytes(&frame).expect("send request");
        correlation_id
    }

    /// Sends a typed request at `version`. Returns the correlation id.
    pub fn send<R: Request>(&mut self, version: i16, req: &R) -> i32 {
        let key = ApiKey::try_from(R::KEY).expect("known api key");
        let mut body = BytesMut::new();
        req.encode(&mut body, version).expect("encode body");
        self.send_parts(R::KEY, version, key.request_header_version(version), &body)
    }

    /// Reads one response frame (without its size prefix).
    pub fn read_frame(&mut self) -> std::io::Result<Bytes> {
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size)?;
        let size = i32::from_be_bytes(size);
        if !(0..=256 * 1024 * 1024).contains(&size) {
            return Err(std::io::Error::new(
                ErrorKind::InvalidData,
                format!("response size {size}"),
            ));
        }
        let mut body = vec![0u8; size as usize];
        self.stream.read_exact(&mut body)?;
        Ok(Bytes::from(body))
    }

    /// Reads a response frame, checks its correlation id and returns the body after the header.
    pub fn read_response(&mut self, correlation_id: i32, header_version: i16) -> Bytes {
        let mut frame = self
            .read_frame()
            .unwrap_or_else(|e| panic!("reading response to correlation id {correlation_id}: {e}"));
        let header = ResponseHeader::decode(&mut frame, header_version).expect("response header");
        assert_eq!(
            header.correlation_id, correlation_id,
            "response correlation id"
        );
        frame
    }

    /// Sends a typed request and decodes its response at the same version.
    pub fn call<R: Request>(&mut self, version: i16, req: &R) -> R::Response {
        let key = ApiKey::try_from(R::KEY).expect("known api key");
        let corr = self.send(version, req);
        let mut body = self.read_response(corr, key.response_header_version(version));
        let resp = R::Response::decode(&mut body, version)
            .unwrap_or_else(|e| panic!("decoding {key:?} v{version} response: {e}"));
        assert_eq!(
            body.remaining(),
            0,
            "{key:?} v{version} response has trailing bytes"
        );
        resp
    }

    /// Waits up to `within` for the broker to close the connection.
    pub fn wait_closed(&mut self, within: Duration) -> CloseOutcome {
        self.stream.set_read_timeout(Some(within)).unwrap();
        let mut buf = [0u8; 4096];
        let outcome = match self.stream.read(&mut buf) {
            Ok(0) => CloseOutcome::Closed,
            Ok(n) => CloseOutcome::Answered(n),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                CloseOutcome::StillOpen
            }
            Err(_) => CloseOutcome::Closed, // reset
        };
        self.stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        outcome
    }

    /// Half-closes our side (we send no more bytes).
    pub fn shutdown_write(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

/// Encodes one v2 record batch, uncompressed, with offsets starting at 0.
/// A record's key and value, either possibly null.
pub type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

pub fn record_batch(records: &[KeyValue<'_>], timestamp: i64) -> Bytes {
    let recs: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (k, v))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: -1,
            timestamp,
            key: k.map(Bytes::copy_from_slice),
            value: v.map(Bytes::copy_from_slice),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &recs,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encode record batch");
    buf.freeze()
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

// ---------------------------------------------------------------------------------------------
// Typed raw requests
// ---------------------------------------------------------------------------------------------

pub fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// Metadata v12 (topic ids included) on a fresh connection. `topics: None` asks for all topics.
pub fn raw_metadata(
    addr: SocketAddr,
    topics: Option<&[&str]>,
    allow_auto_create: bool,
) -> MetadataResponse {
    let req = MetadataRequest::default()
        .with_topics(topics.map(|ts| {
            ts.iter()
                .map(|t| MetadataRequestTopic::default().with_name(Some(topic_name(t))))
                .collect()
        }))
        .with_allow_auto_topic_creation(allow_auto_create);
    RawClient::connect(addr).call(12, &req)
}

/// Produce one batch to one partition at `version` (>= 3, < 13) and return that partition's
/// response.
pub fn raw_produce(
    raw: &mut RawClient,
    version: i16,
    topic: &str,
    partition: i32,
    batch: Bytes,
) -> PartitionProduceResponse {
    let resp = raw_produce_many(raw, version, &[(topic, partition, batch)]);
    assert_eq!(resp.len(), 1, "one partition response");
    resp.into_iter().next().unwrap().2
}

/// Produce several (topic, partition, batch) in one request; returns the responses with their
/// topic and partition.
pub fn raw_produce_many(
    raw: &mut RawClient,
    version: i16,
    parts: &[(&str, i32, Bytes)],
) -> Vec<(String, i32, PartitionProduceResponse)> {
    let mut topics: Vec<TopicProduceData> = Vec::new();
    for (topic, partition, batch) in parts {
        let pd = PartitionProduceData::default()
            .with_index(*partition)
            .with_records(Some(batch.clone()));
        match topics.iter_mut().find(|t| t.name.0.as_str() == *topic) {
            Some(t) => t.partition_data.push(pd),
            None => topics.push(
                TopicProduceData::default()
                    .with_name(topic_name(topic))
                    .with_partition_data(vec![pd]),
            ),
        }
    }
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(topics);
    let resp = raw.call(version, &req);
    resp.responses
        .into_iter()
        .flat_map(|t| {
            let name = t.name.0.to_string();
            t.partition_responses
                .into_iter()
                .map(move |p| (name.clone(), p.index, p))
        })
        .collect()
}

/// Fetch v4 of one partition on a fresh connection.
pub fn raw_fetch(
    addr: SocketAddr,
    topic: &str,
    partition: i32,
    offset: i64,
    max_wait_ms: i32,
) -> FetchPartitionData {
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)])]);
    let mut raw = RawClient::connect(addr);
    raw.stream
        .set_read_timeout(Some(
            Duration::from_millis(max_wait_ms as u64) + Duration::from_secs(10),
        ))
        .unwrap();
    let resp = raw.call(4, &req);
    let mut parts: Vec<FetchPartitionData> = resp
        .responses
        .into_iter()
        .filter(|t| t.topic.0.as_str() == topic)
        .flat_map(|t| t.partitions)
        .filter(|p| p.partition_index == partition)
        .collect();
    assert_eq!(parts.len(), 1, "one partition in the fetch response");
    parts.pop().unwrap()
}

/// Record count of the v2 batches in a fetched record set (without decompressing anything).
pub fn count_records(records: &[u8]) -> Vec<(i64, i32)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 61 <= records.len() {
        let base = i64::from_be_bytes(records[pos..pos + 8].try_into().unwrap());
        let len = i32::from_be_bytes(records[pos + 8..pos + 12].try_into().unwrap()) as usize;
        if pos + 12 + len > records.len() {
            break; // partial batch at the end of a fetch is allowed
        }
        let n = i32::from_be_bytes(records[pos + 57..pos + 61].try_into().unwrap());
        out.push((base, n));
        pos += 12 + len;
    }
    out
}
