//! One group member of the rebalance bench: a librdkafka `BaseConsumer` polled by its own
//! thread.
//!
//! The consumer context records every rebalance callback with the time on the bench clock;
//! the thread records every message it receives. The driver talks to the thread through
//! [`Command`]s: close (the proper way: revoke, final commit, LeaveGroup), crash (the handle
//! is destroyed without consumer close, so no LeaveGroup and no final commit reach the
//! broker), and for the `manual` strategy release and acquire partitions.
//!
//! Offsets are committed by librdkafka's auto-commit (`enable.auto.commit=true`, every
//! `auto.commit.interval.ms`), which also commits on revoke and on close; `manual` members
//! additionally commit the position of every partition they hand over.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use rdkafka::bindings as rd;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::plan::Strategy;
use super::producer::decode_header;
use super::trace::{Callback, CallbackKind, Clock, Ending, MemberId, MemberInfo, Micros, Receipt};

/// How long one poll may block, which bounds how late a command is noticed.
const POLL: Duration = Duration::from_millis(10);
/// How often the thread reads its group member id from librdkafka.
const MEMBER_ID_EVERY: Micros = 250_000;
/// How long the driver waits for a member to carry out a command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// How a member is configured.
#[derive(Debug, Clone)]
pub struct MemberSpec {
    pub name: String,
    pub slot: usize,
    pub bootstrap: String,
    pub topic: String,
    pub group: String,
    pub strategy: Strategy,
    pub session_timeout_ms: u32,
    pub heartbeat_interval_ms: u32,
    pub max_poll_interval_ms: u32,
    pub commit_interval_ms: u32,
    /// Extra librdkafka properties, applied last.
    pub extra: Vec<(String, String)>,
    /// Count the LeaveGroup requests this client sends (turns on librdkafka's protocol debug
    /// log for this one client).
    pub watch_leave: bool,
}

impl MemberSpec {
    pub fn instance_id(&self) -> Option<String> {
        self.strategy.instance_id(self.slot)
    }

    fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap)
            .set("client.id", format!("bench-{}", self.name))
            .set("group.id", &self.group)
            .set(
                "max.poll.interval.ms",
                self.max_poll_interval_ms.to_string(),
            )
            .set("enable.auto.commit", "true")
            .set(
                "auto.commit.interval.ms",
                self.commit_interval_ms.to_string(),
            )
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false");
        if self.strategy.consumer_protocol() {
            // The broker decides the session timeout, heartbeat interval and assignor
            // (librdkafka refuses those settings with this protocol).
            config.set("group.protocol", "consumer");
        } else {
            config
                .set("session.timeout.ms", self.session_timeout_ms.to_string())
                .set(
                    "heartbeat.interval.ms",
                    self.heartbeat_interval_ms.to_string(),
                );
        }
        if let Some(assignor) = self.strategy.assignor() {
            config.set("partition.assignment.strategy", assignor);
        }
        if let Some(id) = self.instance_id() {
            config.set("group.instance.id", id);
        }
        let mut debug: Vec<&str> = Vec::new();
        if self.watch_leave {
            debug.push("protocol");
        }
        for (k, v) in &self.extra {
            if k == "debug" {
                debug.extend(v.split(',').map(str::trim));
            } else {
                config.set(k, v);
            }
        }
        // rdkafka applies its own log level after librdkafka's `debug` property, so debug
        // output needs both.
        if debug.is_empty() {
            config.set_log_level(RDKafkaLogLevel::Warning);
        } else {
            debug.sort_unstable();
            debug.dedup();
            config
                .set("debug", debug.join(","))
                .set_log_level(RDKafkaLogLevel::Debug);
        }
        config
    }
}

/// What the driver can ask a member to do.
enum Command {
    /// Close properly; answers with the time the handle was gone.
    Close(Sender<Micros>),
    /// Destroy the handle without consumer close; answers with the time of the destroy call.
    Crash(Sender<Micros>),
    /// `manual`: commit the position of these partitions, then unassign them.
    Release(Vec<i32>, Sender<()>),
    /// `manual`: assign these partitions from their committed offsets.
    Acquire(Vec<i32>, Sender<()>),
}

/// What a member has seen so far; shared between its thread and the driver.
#[derive(Debug, Default)]
pub struct MemberLog {
    pub receipts: Vec<Receipt>,
    pub callbacks: Vec<Callback>,
    /// Current assignment, per the callbacks.
    pub assignment: BTreeSet<i32>,
    /// When each currently assigned partition was assigned.
    pub assigned_at: BTreeMap<i32, Micros>,
    /// Latest receipt per partition.
    pub last_receipt: BTreeMap<i32, Micros>,
    /// Highest offset received per partition.
    pub max_offset: BTreeMap<i32, i64>,
    /// Next offset per assigned partition, after the last message received in this tenure.
    positions: BTreeMap<i32, i64>,
    pub member_id: Option<String>,
    pub ended: Option<(Micros, Ending)>,
    pub errors: u64,
    pub last_error: Option<String>,
}

impl MemberLog {
    fn note_error(&mut self, text: String) {
        self.errors += 1;
        self.last_error = Some(text);
    }
}

fn lock(log: &Mutex<MemberLog>) -> MutexGuard<'_, MemberLog> {
    log.lock().unwrap_or_else(|e| e.into_inner())
}

/// The consumer context: records rebalance callbacks and, when asked, counts LeaveGroups.
struct Recorder {
    id: MemberId,
    name: String,
    clock: Clock,
    log: Arc<Mutex<MemberLog>>,
    leave_sent: Option<Arc<AtomicU64>>,
}

impl Recorder {
    fn record(&self, kind: CallbackKind, partitions: Vec<i32>) {
        let at = self.clock.now();
        let mut log = lock(&self.log);
        match kind {
            CallbackKind::Assign => {
                for &p in &partitions {
                    log.assignment.insert(p);
                    log.assigned_at.insert(p, at);
                }
            }
            CallbackKind::Revoke | CallbackKind::Lost => {
                for p in &partitions {
                    log.assignment.remove(p);
                    log.assigned_at.remove(p);
                    log.positions.remove(p);
                }
            }
        }
        log.callbacks.push(Callback {
            member: self.id,
            at,
            kind,
            partitions,
        });
    }
}

impl ClientContext for Recorder {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        if let Some(count) = &self.leave_sent {
            // librdkafka's protocol debug line for every request it writes to a socket:
            // "Sent LeaveGroupRequest (v1, 92 bytes @ 0, CorrId 12)".
            if message.contains("Sent LeaveGroupRequest") {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
        // Stamped with the bench clock, to line up with the trace (RUST_LOG=librdkafka=debug).
        tracing::debug!(
            target: "librdkafka",
            "{} +{:.3}s {level:?} {fac}: {message}",
            self.name,
            self.clock.now() as f64 / 1e6
        );
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(target: "librdkafka", "{} error {error}: {reason}", self.name);
        lock(&self.log).note_error(format!("{error}: {reason}"));
    }
}

impl ConsumerContext for Recorder {
    // A revoke is recorded before librdkafka unassigns (the lost flag is only reliable
    // then), an assign after it assigned. Both happen within the same poll call.
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                let kind = if consumer.assignment_lost() {
                    CallbackKind::Lost
                } else {
                    CallbackKind::Revoke
                };
                self.record(kind, partitions_of(tpl));
            }
            Rebalance::Error(e) => lock(&self.log).note_error(format!("rebalance error: {e}")),
            Rebalance::Assign(_) => {}
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            self.record(CallbackKind::Assign, partitions_of(tpl));
        }
    }
}

fn partitions_of(tpl: &TopicPartitionList) -> Vec<i32> {
    let mut out: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
    out.sort_unstable();
    out
}

/// A running member: its thread, its command channel and its shared log.
pub struct Member {
    pub id: MemberId,
    pub name: String,
    pub slot: usize,
    instance_id: Option<String>,
    started: Micros,
    commands: Sender<Command>,
    log: Arc<Mutex<MemberLog>>,
    leave_sent: Option<Arc<AtomicU64>>,
    thread: Option<JoinHandle<()>>,
}

impl Member {
    /// Creates the consumer in a new thread (subscribing unless the strategy is `manual`) and
    /// returns once it exists.
    pub fn start(id: MemberId, spec: MemberSpec, clock: Clock) -> anyhow::Result<Member> {
        let log = Arc::new(Mutex::new(MemberLog::default()));
        let leave_sent = spec.watch_leave.then(|| Arc::new(AtomicU64::new(0)));
        let (commands, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel::<anyhow::Result<()>>();
        let recorder = Recorder {
            id,
            name: spec.name.clone(),
            clock,
            log: log.clone(),
            leave_sent: leave_sent.clone(),
        };
        let started = clock.now();
        let thread_spec = spec.clone();
        let thread = std::thread::Builder::new()
            .name(format!("bench-{}", spec.name))
            .spawn(move || {
                let consumer = match create(&thread_spec, recorder) {
                    Ok(c) => {
                        let _ = ready_tx.send(Ok(()));
                        c
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                run(consumer, &thread_spec, clock, rx);
            })
            .context("spawning a consumer thread")?;
        ready_rx
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| anyhow!("consumer {} did not start", spec.name))??;
        Ok(Member {
            id,
            name: spec.name.clone(),
            slot: spec.slot,
            instance_id: spec.instance_id(),
            started,
            commands,
            log,
            leave_sent,
            thread: Some(thread),
        })
    }

    /// Reads the live log.
    pub fn with_log<R>(&self, f: impl FnOnce(&MemberLog) -> R) -> R {
        f(&lock(&self.log))
    }

    pub fn is_running(&self) -> bool {
        lock(&self.log).ended.is_none()
    }

    fn ask<T>(&self, make: impl FnOnce(Sender<T>) -> Command, what: &str) -> anyhow::Result<T> {
        let (tx, rx) = mpsc::channel();
        self.commands
            .send(make(tx))
            .map_err(|_| anyhow!("{} has stopped; cannot {what}", self.name))?;
        match rx.recv_timeout(COMMAND_TIMEOUT) {
            Ok(v) => Ok(v),
            Err(RecvTimeoutError::Timeout) => {
                bail!("{} did not {what} within {COMMAND_TIMEOUT:?}", self.name)
            }
            Err(RecvTimeoutError::Disconnected) => {
                bail!("{} stopped before it could {what}", self.name)
            }
        }
    }

    /// Closes the consumer properly and waits until its handle is gone.
    pub fn close(&self) -> anyhow::Result<Micros> {
        self.ask(Command::Close, "close")
    }

    /// Destroys the consumer without consumer close (no LeaveGroup, no final commit).
    pub fn crash(&self) -> anyhow::Result<Micros> {
        self.ask(Command::Crash, "crash")
    }

    /// `manual`: commits the position of `partitions` and unassigns them; returns when done.
    pub fn release(&self, partitions: Vec<i32>) -> anyhow::Result<()> {
        self.ask(|tx| Command::Release(partitions, tx), "release partitions")
    }

    /// `manual`: assigns `partitions` from their committed offsets; returns when assigned.
    pub fn acquire(&self, partitions: Vec<i32>) -> anyhow::Result<()> {
        self.ask(|tx| Command::Acquire(partitions, tx), "acquire partitions")
    }

    /// LeaveGroup requests sent so far, when watched.
    pub fn leave_requests_sent(&self) -> Option<u64> {
        self.leave_sent.as_ref().map(|c| c.load(Ordering::Relaxed))
    }

    /// Closes the consumer if it still runs, joins its thread and hands over what it recorded.
    pub fn finish(mut self) -> (MemberInfo, Vec<Receipt>, Vec<Callback>) {
        if self.is_running() {
            if let Err(e) = self.close() {
                tracing::warn!("closing {}: {e:#}", self.name);
            }
        }
        drop(self.commands);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let mut log = lock(&self.log);
        let (ended, ending) = match log.ended {
            Some((at, how)) => (Some(at), Some(how)),
            None => (None, None),
        };
        let info = MemberInfo {
            name: self.name.clone(),
            slot: self.slot,
            started: self.started,
            ended,
            ending,
            instance_id: self.instance_id.clone(),
            member_id: log.member_id.clone(),
            leave_requests_sent: self.leave_sent.as_ref().map(|c| c.load(Ordering::Relaxed)),
            errors: log.errors,
            last_error: log.last_error.clone(),
        };
        (
            info,
            std::mem::take(&mut log.receipts),
            std::mem::take(&mut log.callbacks),
        )
    }
}

fn create(spec: &MemberSpec, recorder: Recorder) -> anyhow::Result<BaseConsumer<Recorder>> {
    let consumer: BaseConsumer<Recorder> = spec
        .client_config()
        .create_with_context(recorder)
        .with_context(|| format!("creating consumer {}", spec.name))?;
    if spec.strategy.subscribes() {
        consumer
            .subscribe(&[&spec.topic])
            .with_context(|| format!("{} subscribing to {}", spec.name, spec.topic))?;
    }
    Ok(consumer)
}

/// The member thread: poll, record, obey commands, until closed or crashed.
fn run(consumer: BaseConsumer<Recorder>, spec: &MemberSpec, clock: Clock, rx: Receiver<Command>) {
    let log = consumer.context().log.clone();
    let mut member_id_read: Micros = 0;
    loop {
        match rx.try_recv() {
            Ok(Command::Close(done)) => {
                refresh_member_id(&consumer, &log);
                if !spec.strategy.subscribes() {
                    let assigned: Vec<i32> = lock(&log).assignment.iter().copied().collect();
                    release(&consumer, spec, &log, &assigned);
                }
                close(consumer, &log, clock);
                let at = clock.now();
                lock(&log).ended = Some((at, Ending::Closed));
                let _ = done.send(at);
                return;
            }
            Ok(Command::Crash(done)) => {
                refresh_member_id(&consumer, &log);
                let at = clock.now();
                lock(&log).ended = Some((at, Ending::Crashed));
                destroy_without_close(consumer);
                let _ = done.send(at);
                return;
            }
            Ok(Command::Release(partitions, done)) => {
                release(&consumer, spec, &log, &partitions);
                let _ = done.send(());
            }
            Ok(Command::Acquire(partitions, done)) => {
                acquire(&consumer, spec, &log, &partitions);
                let _ = done.send(());
            }
            Err(mpsc::TryRecvError::Empty) => {}
            // The driver is gone: close like a well-behaved client.
            Err(mpsc::TryRecvError::Disconnected) => {
                close(consumer, &log, clock);
                lock(&log).ended = Some((clock.now(), Ending::Closed));
                return;
            }
        }

        poll_once(&consumer, &log, clock);

        let now = clock.now();
        if now.saturating_sub(member_id_read) >= MEMBER_ID_EVERY {
            member_id_read = now;
            refresh_member_id(&consumer, &log);
        }
    }
}

/// Polls once (up to [`POLL`]) and records the message it returns, if any.
fn poll_once(consumer: &BaseConsumer<Recorder>, log: &Mutex<MemberLog>, clock: Clock) {
    poll_for(consumer, log, clock, POLL);
}

/// Serves what is queued without waiting, recording any message. A poll without waiting
/// serves one event, and rdkafka does not say whether the queue is empty, so this polls a
/// fixed number of times (microseconds each).
fn drain_queue(consumer: &BaseConsumer<Recorder>, log: &Mutex<MemberLog>, clock: Clock) {
    for _ in 0..1000 {
        poll_for(consumer, log, clock, Duration::ZERO);
    }
}

fn poll_for(
    consumer: &BaseConsumer<Recorder>,
    log: &Mutex<MemberLog>,
    clock: Clock,
    timeout: Duration,
) {
    match consumer.poll(timeout) {
        Some(Ok(msg)) => {
            let at = clock.now();
            let partition = msg.partition();
            let offset = msg.offset();
            let mut l = lock(log);
            match msg.payload().and_then(decode_header) {
                Some((seq, sent)) => l.receipts.push(Receipt {
                    member: consumer.context().id,
                    partition,
                    offset,
                    seq,
                    sent,
                    at,
                }),
                None => l.note_error(format!(
                    "partition {partition} offset {offset}: payload without the bench header"
                )),
            }
            l.last_receipt.insert(partition, at);
            let max = l.max_offset.entry(partition).or_insert(offset);
            *max = (*max).max(offset);
            l.positions.insert(partition, offset + 1);
        }
        Some(Err(e)) => lock(log).note_error(e.to_string()),
        None => {}
    }
}

/// Closes the consumer properly: revoke (the callbacks run in the polls here), final commit,
/// LeaveGroup (dynamic members only), then destroy.
///
/// Messages polled while closing are recorded like any other. Dropping the rdkafka wrapper
/// instead would also close the consumer, but its own polls would hand messages to nobody
/// while auto offset store still counts them as consumed, so the final commit would skip
/// them and the next owner would never see them.
///
/// rdkafka delivers librdkafka's log lines through the consumer queue, so the queue is drained
/// after the close to serve the ones still queued (among them "Sent LeaveGroupRequest").
fn close(consumer: BaseConsumer<Recorder>, log: &Mutex<MemberLog>, clock: Clock) {
    match consumer.close_queue() {
        Ok(()) => {
            while !consumer.closed() {
                poll_once(&consumer, log, clock);
            }
            drain_queue(&consumer, log, clock);
        }
        Err(e) => lock(log).note_error(format!("consumer close: {e}")),
    }
    // Closing again, as the wrapper's Drop would, only logs an error: destroy directly.
    destroy_handle(consumer, 0);
}

/// `manual` hand-over, giving side: commit the next offset of every released partition that
/// was read in this tenure (synchronously), then unassign them.
fn release(
    consumer: &BaseConsumer<Recorder>,
    spec: &MemberSpec,
    log: &Arc<Mutex<MemberLog>>,
    partitions: &[i32],
) {
    if partitions.is_empty() {
        return;
    }
    let positions: Vec<(i32, i64)> = {
        let l = lock(log);
        partitions
            .iter()
            .filter_map(|p| l.positions.get(p).map(|&o| (*p, o)))
            .collect()
    };
    if !positions.is_empty() {
        let mut tpl = TopicPartitionList::new();
        for (p, o) in &positions {
            if let Err(e) = tpl.add_partition_offset(&spec.topic, *p, Offset::Offset(*o)) {
                lock(log).note_error(format!("commit list: {e}"));
            }
        }
        if let Err(e) = consumer.commit(&tpl, CommitMode::Sync) {
            lock(log).note_error(format!("commit on release: {e}"));
        }
    }
    let mut tpl = TopicPartitionList::new();
    for &p in partitions {
        tpl.add_partition(&spec.topic, p);
    }
    if let Err(e) = consumer.incremental_unassign(&tpl) {
        lock(log).note_error(format!("incremental_unassign: {e}"));
    }
    consumer
        .context()
        .record(CallbackKind::Revoke, sorted(partitions));
}

/// `manual` hand-over, taking side: assign from the committed offsets (`auto.offset.reset`
/// applies when there is none).
fn acquire(
    consumer: &BaseConsumer<Recorder>,
    spec: &MemberSpec,
    log: &Arc<Mutex<MemberLog>>,
    partitions: &[i32],
) {
    if partitions.is_empty() {
        return;
    }
    let mut tpl = TopicPartitionList::new();
    for &p in partitions {
        if let Err(e) = tpl.add_partition_offset(&spec.topic, p, Offset::Stored) {
            lock(log).note_error(format!("assign list: {e}"));
        }
    }
    if let Err(e) = consumer.incremental_assign(&tpl) {
        lock(log).note_error(format!("incremental_assign: {e}"));
    }
    consumer
        .context()
        .record(CallbackKind::Assign, sorted(partitions));
}

fn sorted(partitions: &[i32]) -> Vec<i32> {
    let mut v = partitions.to_vec();
    v.sort_unstable();
    v
}

/// Reads the group member id librdkafka currently holds.
fn refresh_member_id(consumer: &BaseConsumer<Recorder>, log: &Arc<Mutex<MemberLog>>) {
    let rk = consumer.client().native_ptr();
    // SAFETY: `rk` is the live handle of `consumer`; rd_kafka_memberid returns NULL or a
    // string allocated by librdkafka, which is copied and released with rd_kafka_mem_free.
    let id = unsafe {
        let ptr = rd::rd_kafka_memberid(rk);
        if ptr.is_null() {
            None
        } else {
            let s = CStr::from_ptr(ptr).to_string_lossy().into_owned();
            rd::rd_kafka_mem_free(rk, ptr.cast());
            Some(s)
        }
    };
    if let Some(id) = id.filter(|s| !s.is_empty()) {
        lock(log).member_id = Some(id);
    }
}

/// A crash, as far as the broker can tell: the librdkafka handle is destroyed with
/// `RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE`, so librdkafka sends no LeaveGroup and commits
/// nothing; its sockets simply close, as when a process dies.
fn destroy_without_close(consumer: BaseConsumer<Recorder>) {
    destroy_handle(consumer, rd::RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
}

/// Destroys the librdkafka handle with `flags`, without running the rdkafka wrapper's `Drop`
/// (which would close the consumer, or try to again, then destroy the handle a second time).
/// The wrapper is leaked instead (a few kilobytes: the context and a queue handle) and never
/// touched again.
fn destroy_handle(consumer: BaseConsumer<Recorder>, flags: i32) {
    let consumer = std::mem::ManuallyDrop::new(consumer);
    let rk = consumer.client().native_ptr();
    // SAFETY: `rk` is a live consumer handle owned by `consumer`, which is never used or
    // dropped after this call. The call is made from an application thread, as librdkafka
    // requires. Callbacks librdkafka may still make while it terminates reach the context,
    // which stays alive because the wrapper is leaked.
    unsafe {
        rd::rd_kafka_destroy_flags(rk, flags);
    }
}
