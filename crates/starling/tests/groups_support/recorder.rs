//! [`Recorder`], the consumer context of a [`Member`](super::Member): it records rebalance
//! callbacks and client errors in the member's log and commits on revoke when the member's
//! policy says so. [`group_generation`] reads a consumer's group generation and member id.

use std::collections::BTreeSet;
use std::ffi::{c_void, CStr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use rdkafka::bindings as rd;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};

use super::debug::stamp;
use super::member::CommitPolicy;
use super::member_log::{CommitRec, Event, EventKind, MemberLog};
use super::tp::{tp, Tp};

/// The consumer context of a [`Member`]: records callbacks and commits on revoke.
pub struct Recorder {
    pub(super) name: String,
    pub(super) policy: CommitPolicy,
    pub(super) log: Arc<Mutex<MemberLog>>,
    pub(super) debug: bool,
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
