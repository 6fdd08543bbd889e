//! [`Member`]: a subscribed librdkafka `BaseConsumer` in its own thread, set up by a
//! [`MemberConfig`]. It records everything it sees in a [`MemberLog`], commits per a
//! [`CommitPolicy`], can be told to stall (stop polling), and is closed (LeaveGroup, unless
//! static) when stopped.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;

use super::debug::debug_enabled;
use super::member_log::{CommitRec, Consumption, Event, EventKind, MemberLog};
use super::recorder::{group_generation, Recorder};
use super::tp::{tp, Tp};
use crate::common::client_config;

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

    /// Whether `extra` selects the KIP-848 consumer protocol (`group.protocol=consumer`). The
    /// broker then decides the assignor, session timeout and heartbeat interval, and
    /// librdkafka refuses `strategy`, `session_timeout_ms` and `heartbeat_ms`, so they are not
    /// passed on.
    pub fn consumer_protocol(&self) -> bool {
        self.extra
            .iter()
            .any(|(k, v)| k == "group.protocol" && v.eq_ignore_ascii_case("consumer"))
    }

    pub fn set(mut self, key: &str, value: &str) -> Self {
        self.extra.push((key.to_string(), value.to_string()));
        self
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
        if cfg.consumer_protocol() {
            let classic_only = [
                "partition.assignment.strategy",
                "session.timeout.ms",
                "heartbeat.interval.ms",
            ];
            settings.retain(|(k, _)| !classic_only.contains(k));
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
