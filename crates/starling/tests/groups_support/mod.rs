//! Helpers for the consumer-group end-to-end tests (`groups_*.rs`).
//!
//! * [`group_broker`]: a broker with fast group settings (no initial rebalance delay, short
//!   minimum session timeout) unless a test overrides them.
//! * [`Producer`] / [`BackgroundProducer`]: keyed messages to explicit partitions, every
//!   delivery report kept as a [`Produced`] (topic, partition, offset, key).
//! * [`Member`]: a librdkafka `BaseConsumer` in its own thread that subscribes, records every
//!   rebalance callback ([`Event`]), every message ([`Consumption`]) and every commit
//!   ([`CommitRec`]), and commits per a [`CommitPolicy`]. It can be told to stall (stop polling)
//!   and is closed (LeaveGroup, unless static) when stopped.
//! * [`KcatMember`]: a `kcat -G` consumer in a child process, for members that must die without
//!   a LeaveGroup (SIGKILL).
//! * [`verify_delivery`]: every produced message consumed, and every change of a partition's
//!   owner starts exactly at the group's committed offset of that moment.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::{c_void, CStr};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rdkafka::bindings as rd;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseRecord, Producer as _, ProducerContext, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

use crate::common::{client_config, consumer as plain_consumer, Broker};

/// A topic partition.
pub type Tp = (String, i32);

pub fn tp(topic: &str, partition: i32) -> Tp {
    (topic.to_string(), partition)
}

/// All partitions `0..n` of `topic`.
pub fn partitions(topic: &str, n: i32) -> BTreeSet<Tp> {
    (0..n).map(|p| tp(topic, p)).collect()
}

/// True when `STARLING_GROUP_TEST_DEBUG` is set: members then log librdkafka's
/// `cgrp,protocol` debug output to stderr.
pub fn debug_enabled() -> bool {
    std::env::var_os("STARLING_GROUP_TEST_DEBUG").is_some()
}

// ---------------------------------------------------------------------------------------------
// Broker and topics
// ---------------------------------------------------------------------------------------------

/// A broker with `group.initial.rebalance.delay.ms=0` and `group.min.session.timeout.ms=1000`
/// unless `overrides` sets them; `overrides` are added as given.
pub fn group_broker(overrides: &[(&str, &str)]) -> Broker {
    let defaults = [
        ("group.initial.rebalance.delay.ms", "0"),
        ("group.min.session.timeout.ms", "1000"),
    ];
    let mut all: Vec<(&str, &str)> = defaults
        .iter()
        .filter(|(k, _)| !overrides.iter().any(|(o, _)| o == k))
        .copied()
        .collect();
    all.extend_from_slice(overrides);
    Broker::with_overrides(&all)
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Creates a topic (blocking) and waits until a fresh client's metadata shows its partitions.
pub fn create_topic_sync(bootstrap: &str, name: &str, partitions: i32) {
    runtime().block_on(crate::common::create_topic(bootstrap, name, partitions));
    wait_for_partition_count(bootstrap, name, partitions as usize);
}

/// Grows a topic to `total` partitions through the admin API (CreatePartitions).
pub fn grow_topic(bootstrap: &str, name: &str, total: usize) {
    use rdkafka::admin::NewPartitions;
    let admin = crate::common::admin(bootstrap);
    let res = runtime().block_on(crate::common::within(
        Duration::from_secs(20),
        "create_partitions",
        admin.create_partitions(
            [&NewPartitions::new(name, total)],
            &crate::common::admin_opts(),
        ),
    ));
    let res = res.expect("create_partitions request");
    assert_eq!(
        res,
        vec![Ok(name.to_string())],
        "growing {name} to {total} partitions"
    );
    wait_for_partition_count(bootstrap, name, total);
}

pub fn wait_for_partition_count(bootstrap: &str, name: &str, count: usize) {
    wait_for(
        Duration::from_secs(20),
        &format!("{name} with {count} partitions in metadata"),
        || crate::common::topics_in_metadata(bootstrap).get(name) == Some(&count),
        || {
            format!(
                "{:?}",
                crate::common::topics_in_metadata(bootstrap).get(name)
            )
        },
    );
}

/// A name no other test uses.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::AtomicU64;
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{n}-{nanos:x}", std::process::id())
}

// ---------------------------------------------------------------------------------------------
// Waiting
// ---------------------------------------------------------------------------------------------

/// Polls `cond` every 20 ms until it holds and returns how long that took; panics after
/// `limit` with `what` and `describe()`.
pub fn wait_for(
    limit: Duration,
    what: &str,
    mut cond: impl FnMut() -> bool,
    mut describe: impl FnMut() -> String,
) -> Duration {
    let start = Instant::now();
    loop {
        if cond() {
            return start.elapsed();
        }
        if start.elapsed() > limit {
            panic!(
                "{what}: not reached within {limit:?}; state: {}",
                describe()
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------------
// Producing
// ---------------------------------------------------------------------------------------------

/// One acknowledged message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Produced {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: String,
}

#[derive(Default)]
pub struct Deliveries {
    ok: Mutex<Vec<Produced>>,
    failed: Mutex<Vec<String>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(m) => self.ok.lock().unwrap().push(Produced {
                topic: m.topic().to_string(),
                partition: m.partition(),
                offset: m.offset(),
                key: String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
            }),
            Err((e, m)) => self.failed.lock().unwrap().push(format!(
                "{}/{} key {:?}: {e}",
                m.topic(),
                m.partition(),
                m.key().map(String::from_utf8_lossy)
            )),
        }
    }
}

/// A producer that keeps every delivery report.
pub struct Producer {
    inner: ThreadedProducer<Deliveries>,
}

impl Producer {
    pub fn new(bootstrap: &str) -> Producer {
        let inner = client_config(
            bootstrap,
            &[
                ("acks", "all"),
                ("linger.ms", "2"),
                ("message.timeout.ms", "30000"),
                // Partitions added while the producer lives become known within a second.
                ("topic.metadata.refresh.interval.ms", "1000"),
            ],
        )
        .create_with_context(Deliveries::default())
        .expect("create producer");
        Producer { inner }
    }

    /// Enqueues one message with key `key` (the value repeats it) to an explicit partition.
    pub fn send(&self, topic: &str, partition: i32, key: &str) {
        let value = format!("value of {key}");
        let mut record = BaseRecord::to(topic)
            .partition(partition)
            .key(key)
            .payload(&value);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.inner.send(record) {
                Ok(()) => return,
                Err((KafkaError::MessageProduction(_), r)) if Instant::now() < deadline => {
                    record = r;
                    thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => panic!("enqueueing {key} for {topic}/{partition}: {e}"),
            }
        }
    }

    /// Waits for every delivery report; panics if any message failed.
    pub fn flush(&self) {
        self.inner
            .flush(Duration::from_secs(30))
            .expect("producer flush");
        let failed = self.inner.context().failed.lock().unwrap().clone();
        assert!(failed.is_empty(), "failed deliveries: {failed:?}");
    }

    /// Everything acknowledged so far.
    pub fn produced(&self) -> Vec<Produced> {
        self.inner.context().ok.lock().unwrap().clone()
    }

    /// Sends `count` messages round-robin over `partitions` of `topic` with keys
    /// `{tag}-{seq:06}`, and waits for them.
    pub fn send_batch(&self, topic: &str, partitions: i32, tag: &str, count: usize) {
        for seq in 0..count {
            self.send(
                topic,
                (seq % partitions as usize) as i32,
                &format!("{tag}-{seq:06}"),
            );
        }
        self.flush();
    }
}

/// Produces continuously in its own thread: one message to each listed partition every
/// `interval`, keys `{tag}-{seq:07}` with one sequence over all partitions.
pub struct BackgroundProducer {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    producer: Arc<Producer>,
}

impl BackgroundProducer {
    pub fn start(
        producer: Arc<Producer>,
        targets: Vec<Tp>,
        tag: &str,
        interval: Duration,
    ) -> BackgroundProducer {
        let stop = Arc::new(AtomicBool::new(false));
        let (s, p, tag) = (stop.clone(), producer.clone(), tag.to_string());
        let handle = thread::spawn(move || {
            let mut seq = 0u64;
            while !s.load(Ordering::Relaxed) {
                for (topic, partition) in &targets {
                    p.send(topic, *partition, &format!("{tag}-{seq:07}"));
                    seq += 1;
                }
                thread::sleep(interval);
            }
        });
        BackgroundProducer {
            stop,
            handle: Some(handle),
            producer,
        }
    }

    /// Number of messages acknowledged so far.
    pub fn acknowledged(&self) -> usize {
        self.producer.inner.context().ok.lock().unwrap().len()
    }

    /// Stops producing, waits for every delivery and returns all acknowledged messages.
    pub fn stop(mut self) -> Vec<Produced> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.join().expect("producer thread");
        }
        self.producer.flush();
        self.producer.produced()
    }
}

impl Drop for BackgroundProducer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// End offsets of every listed partition, by acknowledged message (max offset + 1).
pub fn end_offsets(produced: &[Produced]) -> BTreeMap<Tp, i64> {
    let mut out: BTreeMap<Tp, i64> = BTreeMap::new();
    for p in produced {
        let e = out.entry(tp(&p.topic, p.partition)).or_insert(0);
        *e = (*e).max(p.offset + 1);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Group members
// ---------------------------------------------------------------------------------------------

/// When a [`Member`] commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitPolicy {
    /// Synchronously after processing each message (offset + 1).
    EachMessage,
    /// Synchronously in the `pre_rebalance` Revoke callback, for the revoked partitions that
    /// were processed (their next offset), and at close for what is still assigned.
    OnRevoke,
    /// Never.
    Never,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    Assign,
    Revoke {
        lost: bool,
    },
    RebalanceError(String),
    /// A client error (error callback or a consumer error returned by poll).
    Error(String),
    /// A fatal error (`rd_kafka_fatal_error`), after which the consumer stops polling.
    Fatal(String),
}

/// A rebalance callback (or error) seen by a member.
#[derive(Debug, Clone)]
pub struct Event {
    pub at: Instant,
    pub kind: EventKind,
    pub partitions: BTreeSet<Tp>,
    /// The member's group generation when the callback ran.
    pub generation: Option<i32>,
}

/// One message handed to the application.
#[derive(Debug, Clone)]
pub struct Consumption {
    pub member: String,
    /// Distinguishes separate ownerships of the partition by the same member: the number of the
    /// Assign event that (last) gave this partition to the member.
    pub tenure: u64,
    pub at: Instant,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: String,
    /// Whether the partition was in the member's assignment (per its callbacks) at the time.
    pub assigned: bool,
}

/// One synchronous commit of one partition.
#[derive(Debug, Clone)]
pub struct CommitRec {
    pub member: String,
    pub at: Instant,
    pub topic: String,
    pub partition: i32,
    /// The committed offset (the next message to read).
    pub offset: i64,
    pub result: Result<(), String>,
    pub context: &'static str,
}

/// Everything a member saw.
#[derive(Debug, Clone, Default)]
pub struct MemberLog {
    pub events: Vec<Event>,
    pub consumed: Vec<Consumption>,
    pub commits: Vec<CommitRec>,
    /// Current assignment per the rebalance callbacks.
    pub assignment: BTreeSet<Tp>,
    /// Group generation and member id per `rd_kafka_consumer_group_metadata`, updated after
    /// every poll.
    pub generation: Option<i32>,
    pub member_id: String,
    /// Next offset to process per partition (after the last processed message).
    pub positions: HashMap<Tp, i64>,
    pub fatal: Option<String>,
    assign_count: u64,
    tenure_of: HashMap<Tp, u64>,
    pub polls: u64,
    pub closed_at: Option<Instant>,
}

impl MemberLog {
    pub fn assigns(&self) -> Vec<&Event> {
        self.events
            .iter()
            .filter(|e| e.kind == EventKind::Assign)
            .collect()
    }

    pub fn revokes(&self) -> Vec<&Event> {
        self.events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Revoke { .. }))
            .collect()
    }

    /// Rebalance callbacks (Assign/Revoke) after `t`.
    pub fn rebalances_after(&self, t: Instant) -> Vec<&Event> {
        self.events
            .iter()
            .filter(|e| e.at > t && matches!(e.kind, EventKind::Assign | EventKind::Revoke { .. }))
            .collect()
    }

    pub fn errors(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Error(s) | EventKind::Fatal(s) | EventKind::RebalanceError(s) => {
                    Some(s.clone())
                }
                _ => None,
            })
            .collect()
    }
}

/// How a [`Member`] is set up.
#[derive(Debug, Clone)]
pub struct MemberConfig {
    pub name: String,
    pub bootstrap: String,
    pub group: String,
    /// Subscription (a name starting with `^` is a regex).
    pub topics: Vec<String>,
    pub strategy: String,
    pub instance_id: Option<String>,
    pub session_timeout_ms: u32,
    pub heartbeat_ms: u32,
    pub commit: CommitPolicy,
    pub extra: Vec<(String, String)>,
}

impl MemberConfig {
    /// A dynamic member with session timeout 10 s, heartbeats every 500 ms and a commit after
    /// each message.
    pub fn new(name: &str, bootstrap: &str, group: &str, topic: &str, strategy: &str) -> Self {
        MemberConfig {
            name: name.to_string(),
            bootstrap: bootstrap.to_string(),
            group: group.to_string(),
            topics: vec![topic.to_string()],
            strategy: strategy.to_string(),
            instance_id: None,
            session_timeout_ms: 10_000,
            heartbeat_ms: 500,
            commit: CommitPolicy::EachMessage,
            extra: Vec::new(),
        }
    }

    pub fn instance(mut self, id: &str) -> Self {
        self.instance_id = Some(id.to_string());
        self
    }

    pub fn session(mut self, session_ms: u32, heartbeat_ms: u32) -> Self {
        self.session_timeout_ms = session_ms;
        self.heartbeat_ms = heartbeat_ms;
        self
    }

    pub fn commit(mut self, policy: CommitPolicy) -> Self {
        self.commit = policy;
        self
    }

    pub fn set(mut self, key: &str, value: &str) -> Self {
        self.extra.push((key.to_string(), value.to_string()));
        self
    }
}

/// The consumer context of a [`Member`]: records callbacks and commits on revoke.
pub struct Recorder {
    name: String,
    policy: CommitPolicy,
    log: Arc<Mutex<MemberLog>>,
    debug: bool,
}

impl Recorder {
    fn lock(&self) -> MutexGuard<'_, MemberLog> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, kind: EventKind, partitions: BTreeSet<Tp>, generation: Option<i32>) {
        if self.debug {
            eprintln!(
                "[{} {}] {:?} {:?} gen {:?}",
                self.name,
                stamp(),
                kind,
                partitions,
                generation
            );
        }
        self.lock().events.push(Event {
            at: Instant::now(),
            kind,
            partitions,
            generation,
        });
    }
}

fn stamp() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    format!("{}.{:03}", d.as_secs() % 1000, d.subsec_millis())
}

fn tpl_set(tpl: &TopicPartitionList) -> BTreeSet<Tp> {
    tpl.elements()
        .iter()
        .map(|e| tp(e.topic(), e.partition()))
        .collect()
}

impl ClientContext for Recorder {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        if self.debug || (level as i32) <= (RDKafkaLogLevel::Warning as i32) {
            eprintln!("[{} {} rdkafka {fac}] {message}", self.name, stamp());
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.record(
            EventKind::Error(format!("{error}: {reason}")),
            BTreeSet::new(),
            None,
        );
    }
}

impl ConsumerContext for Recorder {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let generation = group_generation(consumer).map(|(g, _)| g);
        match rebalance {
            Rebalance::Assign(tpl) => {
                self.record(EventKind::Assign, tpl_set(tpl), generation);
            }
            Rebalance::Revoke(tpl) => {
                let revoked = tpl_set(tpl);
                if self.policy == CommitPolicy::OnRevoke {
                    let positions: Vec<(Tp, i64)> = {
                        let log = self.lock();
                        revoked
                            .iter()
                            .filter_map(|t| log.positions.get(t).map(|&o| (t.clone(), o)))
                            .collect()
                    };
                    commit_positions(consumer, &self.name, &self.log, &positions, "on revoke");
                }
                let lost = consumer.assignment_lost();
                self.record(EventKind::Revoke { lost }, revoked, generation);
            }
            Rebalance::Error(e) => {
                self.record(
                    EventKind::RebalanceError(e.to_string()),
                    BTreeSet::new(),
                    generation,
                );
            }
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let mut log = self.lock();
        match rebalance {
            Rebalance::Assign(tpl) => {
                log.assign_count += 1;
                let n = log.assign_count;
                for t in tpl_set(tpl) {
                    log.tenure_of.insert(t.clone(), n);
                    log.assignment.insert(t);
                }
            }
            Rebalance::Revoke(tpl) => {
                for t in tpl_set(tpl) {
                    log.assignment.remove(&t);
                    log.positions.remove(&t);
                }
            }
            Rebalance::Error(_) => {}
        }
    }
}

/// Commits `(partition, next offset)` pairs synchronously and records each result.
fn commit_positions(
    consumer: &BaseConsumer<Recorder>,
    name: &str,
    log: &Arc<Mutex<MemberLog>>,
    positions: &[(Tp, i64)],
    context: &'static str,
) {
    if positions.is_empty() {
        return;
    }
    let mut tpl = TopicPartitionList::new();
    for ((t, p), o) in positions {
        tpl.add_partition_offset(t, *p, Offset::Offset(*o))
            .expect("tpl");
    }
    let result = consumer.commit(&tpl, CommitMode::Sync);
    let at = Instant::now();
    let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
    for ((t, p), o) in positions {
        log.commits.push(CommitRec {
            member: name.to_string(),
            at,
            topic: t.clone(),
            partition: *p,
            offset: *o,
            result: result.clone().map_err(|e| e.to_string()),
            context,
        });
    }
}

/// `(generation, member id)` from `rd_kafka_consumer_group_metadata`.
pub fn group_generation<C: ConsumerContext>(consumer: &BaseConsumer<C>) -> Option<(i32, String)> {
    // SAFETY: plain librdkafka calls on a live handle; every allocation is released with the
    // matching librdkafka function, and the serialized layout is librdkafka's documented
    // "CGMDv2:" format (magic, int32 generation in host order, NUL-terminated group id and
    // member id, ...).
    unsafe {
        let rk = consumer.client().native_ptr();
        let md = rd::rd_kafka_consumer_group_metadata(rk);
        if md.is_null() {
            return None;
        }
        let mut buf: *mut c_void = std::ptr::null_mut();
        let mut size: usize = 0;
        let err = rd::rd_kafka_consumer_group_metadata_write(md, &mut buf, &mut size);
        rd::rd_kafka_consumer_group_metadata_destroy(md);
        if !err.is_null() {
            rd::rd_kafka_error_destroy(err);
            return None;
        }
        let bytes = std::slice::from_raw_parts(buf as *const u8, size).to_vec();
        rd::rd_kafka_mem_free(rk, buf);
        if bytes.len() < 11 || &bytes[..7] != b"CGMDv2:" {
            return None;
        }
        let generation = i32::from_ne_bytes(bytes[7..11].try_into().unwrap());
        let rest = &bytes[11..];
        let group_end = rest.iter().position(|&b| b == 0)?;
        let member = CStr::from_bytes_until_nul(&rest[group_end + 1..]).ok()?;
        Some((generation, member.to_string_lossy().into_owned()))
    }
}

/// A subscribed librdkafka consumer running in its own thread.
pub struct Member {
    pub name: String,
    log: Arc<Mutex<MemberLog>>,
    stop: Arc<AtomicBool>,
    stall: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Member {
    pub fn start(cfg: MemberConfig) -> Member {
        let log = Arc::new(Mutex::new(MemberLog::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let stall = Arc::new(AtomicBool::new(false));
        let debug = debug_enabled();
        let context = Recorder {
            name: cfg.name.clone(),
            policy: cfg.commit,
            log: log.clone(),
            debug,
        };
        let session = cfg.session_timeout_ms.to_string();
        let heartbeat = cfg.heartbeat_ms.to_string();
        let mut settings: Vec<(&str, &str)> = vec![
            ("group.id", &cfg.group),
            ("client.id", &cfg.name),
            ("partition.assignment.strategy", &cfg.strategy),
            ("session.timeout.ms", &session),
            ("heartbeat.interval.ms", &heartbeat),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("enable.partition.eof", "false"),
            ("auto.offset.reset", "earliest"),
            ("allow.auto.create.topics", "false"),
            ("fetch.wait.max.ms", "100"),
        ];
        if let Some(id) = &cfg.instance_id {
            settings.push(("group.instance.id", id));
        }
        if debug {
            settings.push(("debug", "cgrp,protocol"));
        }
        for (k, v) in &cfg.extra {
            settings.push((k, v));
        }
        let consumer: BaseConsumer<Recorder> = client_config(&cfg.bootstrap, &settings)
            .set_log_level(if debug {
                RDKafkaLogLevel::Debug
            } else {
                RDKafkaLogLevel::Warning
            })
            .create_with_context(context)
            .unwrap_or_else(|e| panic!("create consumer {}: {e}", cfg.name));
        let topics: Vec<&str> = cfg.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .unwrap_or_else(|e| panic!("subscribe {}: {e}", cfg.name));

        let (l, s, st) = (log.clone(), stop.clone(), stall.clone());
        let (name, policy) = (cfg.name.clone(), cfg.commit);
        let handle = thread::Builder::new()
            .name(format!("member-{}", cfg.name))
            .spawn(move || run_member(consumer, name, policy, l, s, st))
            .expect("spawn member thread");
        Member {
            name: cfg.name,
            log,
            stop,
            stall,
            handle: Some(handle),
        }
    }

    pub fn log(&self) -> MutexGuard<'_, MemberLog> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn snapshot(&self) -> MemberLog {
        self.log().clone()
    }

    pub fn assignment(&self) -> BTreeSet<Tp> {
        self.log().assignment.clone()
    }

    pub fn generation(&self) -> Option<i32> {
        self.log().generation
    }

    /// Stops (true) or resumes (false) polling.
    pub fn set_stalled(&self, stalled: bool) {
        self.stall.store(stalled, Ordering::SeqCst);
    }

    /// Stops polling and closes the consumer (LeaveGroup unless static); returns the log.
    pub fn close(mut self) -> MemberLog {
        self.shutdown();
        self.snapshot()
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            if h.join().is_err() {
                eprintln!("member {} thread panicked", self.name);
            }
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn run_member(
    consumer: BaseConsumer<Recorder>,
    name: String,
    policy: CommitPolicy,
    log: Arc<Mutex<MemberLog>>,
    stop: Arc<AtomicBool>,
    stall: Arc<AtomicBool>,
) {
    let lock = || log.lock().unwrap_or_else(|e| e.into_inner());
    let mut fatal = false;
    while !stop.load(Ordering::SeqCst) {
        if stall.load(Ordering::SeqCst) || fatal {
            thread::sleep(Duration::from_millis(20));
            continue;
        }
        let polled = consumer.poll(Duration::from_millis(50));
        match polled {
            None => {}
            Some(Ok(m)) => {
                let t = tp(m.topic(), m.partition());
                {
                    let mut l = lock();
                    let assigned = l.assignment.contains(&t);
                    let tenure = l.tenure_of.get(&t).copied().unwrap_or(0);
                    l.consumed.push(Consumption {
                        member: name.clone(),
                        tenure,
                        at: Instant::now(),
                        topic: t.0.clone(),
                        partition: t.1,
                        offset: m.offset(),
                        key: String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                        assigned,
                    });
                    l.positions.insert(t.clone(), m.offset() + 1);
                }
                if policy == CommitPolicy::EachMessage {
                    let result = consumer.commit_message(&m, CommitMode::Sync);
                    lock().commits.push(CommitRec {
                        member: name.clone(),
                        at: Instant::now(),
                        topic: t.0,
                        partition: t.1,
                        offset: m.offset() + 1,
                        result: result.map_err(|e| e.to_string()),
                        context: "after message",
                    });
                }
            }
            Some(Err(e)) => {
                let text = e.to_string();
                lock().events.push(Event {
                    at: Instant::now(),
                    kind: EventKind::Error(text),
                    partitions: BTreeSet::new(),
                    generation: None,
                });
            }
        }
        if let Some((code, reason)) = consumer.client().fatal_error() {
            let text = format!("{code:?}: {reason}");
            let mut l = lock();
            l.fatal = Some(text.clone());
            l.events.push(Event {
                at: Instant::now(),
                kind: EventKind::Fatal(text),
                partitions: BTreeSet::new(),
                generation: None,
            });
            fatal = true;
        }
        let generation = group_generation(&consumer);
        let mut l = lock();
        l.polls += 1;
        if let Some((g, id)) = generation {
            l.generation = Some(g);
            l.member_id = id;
        }
    }
    // Closing revokes what is still assigned (with CommitPolicy::OnRevoke, the Revoke
    // callback commits it) and sends LeaveGroup unless the member is static.
    drop(consumer);
    lock().closed_at = Some(Instant::now());
}

// ---------------------------------------------------------------------------------------------
// Checking a group's assignment
// ---------------------------------------------------------------------------------------------

/// Anything in a group whose assignment the test can see.
pub trait Participant {
    fn label(&self) -> String;
    fn current_assignment(&self) -> BTreeSet<Tp>;
    /// The member's generation, when the client exposes it.
    fn current_generation(&self) -> Option<i32>;
}

impl Participant for Member {
    fn label(&self) -> String {
        self.name.clone()
    }
    fn current_assignment(&self) -> BTreeSet<Tp> {
        self.assignment()
    }
    fn current_generation(&self) -> Option<i32> {
        self.generation()
    }
}

/// `name: [partitions] gen G` for each participant, for failure messages.
pub fn describe(members: &[&dyn Participant]) -> String {
    members
        .iter()
        .map(|m| {
            let parts: Vec<String> = m
                .current_assignment()
                .iter()
                .map(|(t, p)| format!("{t}/{p}"))
                .collect();
            format!(
                "{}: [{}] gen {:?}",
                m.label(),
                parts.join(","),
                m.current_generation()
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// True when the participants' assignments are disjoint, cover exactly `all`, each holds at
/// least one partition (when there are enough), and every known generation is the same.
pub fn is_partitioned(members: &[&dyn Participant], all: &BTreeSet<Tp>) -> bool {
    let mut union = BTreeSet::new();
    let mut total = 0;
    let mut generations = BTreeSet::new();
    for m in members {
        let a = m.current_assignment();
        if a.is_empty() && members.len() <= all.len() {
            return false;
        }
        total += a.len();
        union.extend(a);
        if let Some(g) = m.current_generation() {
            generations.insert(g);
        }
    }
    total == union.len() && &union == all && generations.len() <= 1
}

/// Waits until [`is_partitioned`] holds; returns how long that took.
pub fn wait_partitioned(
    members: &[&dyn Participant],
    all: &BTreeSet<Tp>,
    limit: Duration,
) -> Duration {
    wait_for(
        limit,
        "every partition assigned to exactly one member",
        || is_partitioned(members, all),
        || describe(members),
    )
}

// ---------------------------------------------------------------------------------------------
// kcat as a member in a child process
// ---------------------------------------------------------------------------------------------

/// What a `kcat -G` child printed.
#[derive(Debug, Default, Clone)]
pub struct KcatLog {
    pub consumed: Vec<Consumption>,
    pub assignment: BTreeSet<Tp>,
    pub events: Vec<Event>,
    pub stderr: Vec<String>,
}

/// A `kcat -G` balanced consumer (range assignor, auto-commit every 100 ms) in a child process.
pub struct KcatMember {
    pub name: String,
    child: Option<Child>,
    log: Arc<Mutex<KcatLog>>,
    readers: Vec<JoinHandle<()>>,
    pub killed_at: Option<Instant>,
}

impl KcatMember {
    pub fn start(
        name: &str,
        bootstrap: &str,
        group: &str,
        topic: &str,
        session_ms: u32,
        heartbeat_ms: u32,
    ) -> KcatMember {
        let mut cmd = Command::new("kcat");
        cmd.args(["-b", bootstrap, "-G", group, topic])
            .args(["-f", "%t %p %o %k\\n", "-u"])
            .args(["-X", "broker.address.family=v4"])
            .args(["-X", &format!("client.id={name}")])
            .args(["-X", "partition.assignment.strategy=range"])
            .args(["-X", &format!("session.timeout.ms={session_ms}")])
            .args(["-X", &format!("heartbeat.interval.ms={heartbeat_ms}")])
            .args(["-X", "enable.auto.commit=true"])
            .args(["-X", "auto.commit.interval.ms=100"])
            .args(["-X", "auto.offset.reset=earliest"])
            .args(["-X", "fetch.wait.max.ms=100"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if debug_enabled() {
            cmd.args(["-X", "debug=cgrp"]);
        }
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn kcat (apt-get install kcat): {e}"));
        let log = Arc::new(Mutex::new(KcatLog::default()));
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (l1, l2, n) = (log.clone(), log.clone(), name.to_string());
        let out_reader = thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let mut f = line.splitn(4, ' ');
                let (Some(t), Some(p), Some(o)) = (f.next(), f.next(), f.next()) else {
                    continue;
                };
                let (Ok(p), Ok(o)) = (p.parse::<i32>(), o.parse::<i64>()) else {
                    continue;
                };
                let key = f.next().unwrap_or_default().to_string();
                l1.lock().unwrap().consumed.push(Consumption {
                    member: n.clone(),
                    tenure: 0,
                    at: Instant::now(),
                    topic: t.to_string(),
                    partition: p,
                    offset: o,
                    key,
                    assigned: true,
                });
            }
        });
        let debug = debug_enabled();
        let n2 = name.to_string();
        let err_reader = thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if debug {
                    eprintln!("[{n2} {}] {line}", stamp());
                }
                let mut l = l2.lock().unwrap();
                // "% Group G rebalanced (memberid M): assigned: t [0], t [1]"
                for (marker, assign) in [("assigned: ", true), ("revoked: ", false)] {
                    if let Some(i) = line.find(marker) {
                        let parts = parse_kcat_partitions(&line[i + marker.len()..]);
                        if assign {
                            l.assignment = parts.clone();
                        } else {
                            l.assignment.clear();
                        }
                        l.events.push(Event {
                            at: Instant::now(),
                            kind: if assign {
                                EventKind::Assign
                            } else {
                                EventKind::Revoke { lost: false }
                            },
                            partitions: parts,
                            generation: None,
                        });
                    }
                }
                l.stderr.push(line);
            }
        });
        KcatMember {
            name: name.to_string(),
            child: Some(child),
            log,
            readers: vec![out_reader, err_reader],
            killed_at: None,
        }
    }

    pub fn log(&self) -> MutexGuard<'_, KcatLog> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// SIGKILL: no LeaveGroup, no final commit. Returns the kill time.
    pub fn kill9(&mut self) -> Instant {
        let mut child = self.child.take().expect("kcat is running");
        let _ = child.kill();
        let at = Instant::now();
        let _ = child.wait();
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        // Lines still in the pipe when the process died were printed before it died (and so
        // before anything the test learns afterwards, e.g. the group's committed offsets).
        let before = at - Duration::from_micros(1);
        for c in &mut self.log().consumed {
            c.at = c.at.min(before);
        }
        self.killed_at = Some(at);
        at
    }

    pub fn consumed(&self) -> Vec<Consumption> {
        self.log().consumed.clone()
    }
}

impl Participant for KcatMember {
    fn label(&self) -> String {
        self.name.clone()
    }
    fn current_assignment(&self) -> BTreeSet<Tp> {
        self.log().assignment.clone()
    }
    fn current_generation(&self) -> Option<i32> {
        None
    }
}

impl Drop for KcatMember {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn parse_kcat_partitions(s: &str) -> BTreeSet<Tp> {
    s.split(", ")
        .filter_map(|item| {
            let item = item.trim();
            let open = item.rfind(" [")?;
            let p = item[open + 2..].trim_end_matches(']').parse::<i32>().ok()?;
            Some(tp(&item[..open], p))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Committed offsets seen from outside the group
// ---------------------------------------------------------------------------------------------

/// The group's committed offsets (OffsetFetch through a consumer that never joins).
/// `None` for a partition without a committed offset.
pub fn committed(bootstrap: &str, group: &str, parts: &BTreeSet<Tp>) -> BTreeMap<Tp, Option<i64>> {
    let c = plain_consumer(bootstrap, &[("group.id", group)]);
    let mut tpl = TopicPartitionList::new();
    for (t, p) in parts {
        tpl.add_partition(t, *p);
    }
    let got = c
        .committed_offsets(tpl, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("committed offsets of {group}: {e}"));
    got.elements()
        .iter()
        .map(|e| {
            let o = match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            };
            (tp(e.topic(), e.partition()), o)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Delivery check
// ---------------------------------------------------------------------------------------------

/// What [`verify_delivery`] found (it panics on violations).
#[derive(Debug, Default)]
pub struct DeliveryReport {
    pub consumed: usize,
    pub duplicates: usize,
    pub handoffs: usize,
}

/// A committed offset known from outside (e.g. fetched after a member was killed), effective
/// from `at` on.
#[derive(Debug, Clone)]
pub struct KnownCommit {
    pub at: Instant,
    pub tp: Tp,
    pub offset: i64,
}

/// Checks a group run:
///
/// 1. every produced message was consumed (same partition, offset and key), and nothing was
///    consumed that was not produced;
/// 2. per partition, in time order, consumption by one owner (member and tenure) is gap-free
///    and without repeats;
/// 3. when a partition changes owner, the new owner starts exactly at the group's committed
///    offset of that moment: the latest successful commit recorded by a member, or a
///    [`KnownCommit`], or 0 if nothing was ever committed. Members named in `opaque` (kcat)
///    commit without telling us; after they consumed a partition its committed offset is
///    unknown until a [`KnownCommit`], and a handoff from them must start within the range
///    they consumed (no gap, no rewind before their first message). Their own consumption may
///    repeat (not gap).
///
/// Duplicates are therefore only allowed for work that was not committed.
pub fn verify_delivery(
    produced: &[Produced],
    consumed: &[Consumption],
    commits: &[CommitRec],
    known: &[KnownCommit],
    opaque: &[&str],
) -> DeliveryReport {
    // 1. Completeness and integrity.
    let mut by_pos: HashMap<(String, i32, i64), &str> = HashMap::new();
    for p in produced {
        by_pos.insert((p.topic.clone(), p.partition, p.offset), &p.key);
    }
    let mut seen: HashMap<(String, i32, i64), usize> = HashMap::new();
    for c in consumed {
        let k = (c.topic.clone(), c.partition, c.offset);
        match by_pos.get(&k) {
            Some(key) => assert_eq!(
                *key, c.key,
                "{} consumed {}/{}@{} with key {:?}, but {:?} was produced there",
                c.member, c.topic, c.partition, c.offset, c.key, key
            ),
            None => panic!(
                "{} consumed {}/{}@{} (key {:?}), which was never acknowledged to the producer",
                c.member, c.topic, c.partition, c.offset, c.key
            ),
        }
        *seen.entry(k).or_default() += 1;
    }
    let mut missing: Vec<String> = produced
        .iter()
        .filter(|p| !seen.contains_key(&(p.topic.clone(), p.partition, p.offset)))
        .map(|p| format!("{}/{}@{} ({})", p.topic, p.partition, p.offset, p.key))
        .collect();
    let missing_count = missing.len();
    missing.truncate(20);
    assert!(
        missing.is_empty(),
        "{missing_count} of {} produced messages were never consumed, e.g. {missing:?}",
        produced.len()
    );

    // 2 and 3, per partition in time order.
    enum Ev<'a> {
        Commit(i64),
        Known(i64),
        Consume(&'a Consumption),
    }
    let mut timeline: BTreeMap<Tp, Vec<(Instant, u8, Ev<'_>)>> = BTreeMap::new();
    for c in commits.iter().filter(|c| c.result.is_ok()) {
        timeline
            .entry(tp(&c.topic, c.partition))
            .or_default()
            .push((c.at, 0, Ev::Commit(c.offset)));
    }
    for k in known {
        timeline
            .entry(k.tp.clone())
            .or_default()
            .push((k.at, 1, Ev::Known(k.offset)));
    }
    for c in consumed {
        timeline
            .entry(tp(&c.topic, c.partition))
            .or_default()
            .push((c.at, 2, Ev::Consume(c)));
    }
    let mut report = DeliveryReport {
        consumed: consumed.len(),
        duplicates: seen.values().map(|n| n - 1).sum(),
        handoffs: 0,
    };
    for (part, mut events) in timeline {
        events.sort_by_key(|(at, order, _)| (*at, *order));
        let mut committed: Option<i64> = Some(0);
        let mut owner: Option<(String, u64)> = None;
        let (mut first, mut last) = (0i64, -1i64);
        let mut history: Vec<String> = Vec::new();
        for (_, _, ev) in events {
            match ev {
                Ev::Commit(o) | Ev::Known(o) => committed = Some(o),
                Ev::Consume(c) => {
                    let is_opaque = opaque.contains(&c.member.as_str());
                    let key = (c.member.clone(), c.tenure);
                    if owner.as_ref() != Some(&key) {
                        history.push(format!(
                            "{}#{} from {} (committed {:?})",
                            c.member, c.tenure, c.offset, committed
                        ));
                        if owner.is_some() {
                            report.handoffs += 1;
                        }
                        match committed {
                            Some(k) => assert_eq!(
                                c.offset, k,
                                "{}/{}: {} (tenure {}) started at offset {} but the group's \
                                 committed offset was {k}; owners so far: {history:?}",
                                part.0, part.1, c.member, c.tenure, c.offset
                            ),
                            None => assert!(
                                c.offset >= first && c.offset <= last + 1,
                                "{}/{}: {} started at {} after an owner that consumed {first}..={last} \
                                 without telling us its commits; owners so far: {history:?}",
                                part.0, part.1, c.member, c.offset
                            ),
                        }
                        owner = Some(key);
                        first = c.offset;
                    } else if is_opaque {
                        assert!(
                            c.offset <= last + 1,
                            "{}/{}: {} skipped from {last} to {}",
                            part.0,
                            part.1,
                            c.member,
                            c.offset
                        );
                        first = first.min(c.offset);
                    } else {
                        assert_eq!(
                            c.offset,
                            last + 1,
                            "{}/{}: {} (tenure {}) went from offset {last} to {}; owners so far: {history:?}",
                            part.0, part.1, c.member, c.tenure, c.offset
                        );
                    }
                    last = c.offset;
                    if is_opaque {
                        committed = None;
                    }
                }
            }
        }
    }
    report
}

/// Consumption records of several members, merged.
pub fn all_consumed(logs: &[&MemberLog]) -> Vec<Consumption> {
    logs.iter()
        .flat_map(|l| l.consumed.iter().cloned())
        .collect()
}

pub fn all_commits(logs: &[&MemberLog]) -> Vec<CommitRec> {
    logs.iter()
        .flat_map(|l| l.commits.iter().cloned())
        .collect()
}

/// Waits until the members together have consumed up to `ends` on every partition (the
/// highest consumed offset + 1 reaches each end offset).
pub fn wait_consumed_to_end(
    members: &[&Member],
    extra: &[Consumption],
    ends: &BTreeMap<Tp, i64>,
    limit: Duration,
) {
    let reached = || {
        let mut high: HashMap<Tp, i64> = HashMap::new();
        let mut note = |c: &Consumption| {
            let e = high.entry(tp(&c.topic, c.partition)).or_insert(0);
            *e = (*e).max(c.offset + 1);
        };
        for m in members {
            for c in &m.log().consumed {
                note(c);
            }
        }
        for c in extra {
            note(c);
        }
        high
    };
    wait_for(
        limit,
        "consumers reaching the end of every partition",
        || {
            let high = reached();
            ends.iter()
                .all(|(t, e)| high.get(t).copied().unwrap_or(0) >= *e)
        },
        || {
            let high = reached();
            let behind: Vec<String> = ends
                .iter()
                .filter(|(t, e)| high.get(*t).copied().unwrap_or(0) < **e)
                .map(|(t, e)| format!("{}/{}: {:?} of {e}", t.0, t.1, high.get(t)))
                .collect();
            format!(
                "behind: {behind:?}; {}",
                describe(
                    &members
                        .iter()
                        .map(|m| *m as &dyn Participant)
                        .collect::<Vec<_>>()
                )
            )
        },
    );
}
