//! The log cleaner: compacts the partitions whose `cleanup.policy` includes `compact`, as
//! Kafka's `LogCleaner` does. Every round it looks at each compacted log's cleanable range
//! ([`PartitionLog::cleanable_info`]), picks the filthiest logs that should be cleaned (dirty
//! ratio at or above `min.cleanable.dirty.ratio`, `max.compaction.lag.ms` passed, or tombstones
//! due for removal), up to `log.cleaner.threads` of them, and cleans them side by side on
//! blocking threads ([`PartitionLog::clean`]), each with its share of
//! `log.cleaner.dedupe.buffer.size`, all behind one token bucket of
//! `log.cleaner.io.max.bytes.per.second` (reads and writes together). When nothing needs
//! cleaning it waits `log.cleaner.backoff.ms`. The rate, threads, buffer and backoff are read
//! each round, so a run-time change (AlterConfigs) applies from the next one.
//!
//! A partition kept in PostgreSQL that this node leads is measured and compacted the same way
//! in the same rounds (`starling_postgres::compaction`), one after another, unthrottled (the
//! database does the work, a chunk of rows per transaction).
//!
//! Metrics: passes, bytes read and written (embedded), records removed, time spent, and each
//! compacted partition's dirty ratio.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use starling_log::{CleanStats, SharedThrottle, Throttle, TokenBucket, Unthrottled};

use crate::topics::Partition;
use crate::{now_ms, Broker};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabels {
    topic: String,
    partition: i32,
}

/// The cleaner's metrics, registered with the broker's.
pub struct CleanerMetrics {
    passes: Counter,
    bytes_read: Counter,
    bytes_written: Counter,
    records_removed: Counter,
    seconds: Counter<f64, AtomicU64>,
    dirty_ratio: Family<PartitionLabels, Gauge<f64, AtomicU64>>,
}

impl CleanerMetrics {
    pub fn register(registry: &mut Registry) -> CleanerMetrics {
        let metrics = CleanerMetrics {
            passes: Counter::default(),
            bytes_read: Counter::default(),
            bytes_written: Counter::default(),
            records_removed: Counter::default(),
            seconds: Counter::default(),
            dirty_ratio: Family::default(),
        };
        registry.register(
            "log_cleaner_passes",
            "Cleaning passes of compacted partitions that changed or checked something",
            metrics.passes.clone(),
        );
        registry.register_with_unit(
            "log_cleaner_read",
            "Bytes the log cleaner read from segment files",
            Unit::Bytes,
            metrics.bytes_read.clone(),
        );
        registry.register_with_unit(
            "log_cleaner_written",
            "Bytes the log cleaner wrote to cleaned segment files",
            Unit::Bytes,
            metrics.bytes_written.clone(),
        );
        registry.register(
            "log_cleaner_records_removed",
            "Records the log cleaner removed: superseded, tombstones and markers past \
             delete.retention.ms, aborted",
            metrics.records_removed.clone(),
        );
        registry.register_with_unit(
            "log_cleaner_time",
            "Time the log cleaner spent in passes (throttled waits included)",
            Unit::Seconds,
            metrics.seconds.clone(),
        );
        registry.register(
            "log_dirty_ratio",
            "Share of a compacted partition's cleanable bytes not cleaned yet, as the cleaner \
             last measured it",
            metrics.dirty_ratio.clone(),
        );
        metrics
    }

    /// Counts a finished pass. Its bytes and time were counted as they went ([`PassIo`]), so a
    /// long pass shows in those counters while it runs.
    fn pass_done(&self, stats: &CleanStats) {
        self.passes.inc();
        self.records_removed.inc_by(stats.records_removed);
    }

    /// Counts a finished pass over a PostgreSQL partition, which took `seconds` (its reads
    /// and writes are the database's).
    fn postgres_pass_done(&self, cleaned: &starling_postgres::compaction::Cleaned, seconds: f64) {
        self.passes.inc();
        self.records_removed.inc_by(cleaned.records_removed);
        self.seconds.inc_by(seconds);
    }

    fn set_dirty_ratio(&self, partition: &Partition, ratio: f64) {
        self.dirty_ratio
            .get_or_create(&PartitionLabels {
                topic: partition.topic.clone(),
                partition: partition.index,
            })
            .set(ratio);
    }
}

/// What a pass's I/O goes through: it is counted in the byte and time metrics as it happens
/// (the time since the last count with each read or write), and held to the bound until the broker shuts down, after which a pass in progress finishes at disk
/// speed rather than delaying the shutdown (a pass cut short by the process ending would be
/// safe too: the swap is crash-safe, it would just be wasted work).
struct PassIo {
    inner: Box<dyn Throttle + Send>,
    shutdown: tokio_util::sync::CancellationToken,
    read: Counter,
    written: Counter,
    seconds: Counter<f64, AtomicU64>,
    /// When time was last counted.
    counted_to: Instant,
}

impl PassIo {
    fn new(broker: &Broker, inner: Box<dyn Throttle + Send>) -> PassIo {
        let metrics = &broker.metrics.cleaner;
        PassIo {
            inner,
            shutdown: broker.shutdown.clone(),
            read: metrics.bytes_read.clone(),
            written: metrics.bytes_written.clone(),
            seconds: metrics.seconds.clone(),
            counted_to: Instant::now(),
        }
    }

    /// Counts the time since the last count.
    fn count_time(&mut self) {
        let now = Instant::now();
        self.seconds
            .inc_by(now.duration_since(self.counted_to).as_secs_f64());
        self.counted_to = now;
    }
}

impl Throttle for PassIo {
    fn acquire(&mut self, kind: starling_log::IoKind, bytes: u64) {
        if !self.shutdown.is_cancelled() {
            self.inner.acquire(kind, bytes);
        }
        match kind {
            starling_log::IoKind::Read => self.read.inc_by(bytes),
            starling_log::IoKind::Write => self.written.inc_by(bytes),
        };
        self.count_time();
    }
}

/// One throttle for all cleaner threads, rebuilt when the configured rate changes.
struct IoBound {
    rate: Option<f64>,
    throttle: Option<SharedThrottle<TokenBucket>>,
}

impl IoBound {
    fn for_rate(&mut self, rate: Option<f64>) -> Box<dyn Throttle + Send> {
        if self.rate != rate || (rate.is_some() && self.throttle.is_none()) {
            self.rate = rate;
            // A burst of a tenth of a second's worth (at least 64 KiB), so the bound holds over
            // short windows too.
            self.throttle = rate.map(|r| {
                SharedThrottle::new(TokenBucket::new(r, ((r / 10.0) as u64).max(64 * 1024)))
            });
        }
        match &self.throttle {
            Some(shared) => Box::new(shared.clone()),
            None => Box::new(Unthrottled),
        }
    }
}

/// Runs the cleaner until the broker shuts down.
pub async fn run(broker: Arc<Broker>) {
    if !broker.config.cleaner.enable {
        tracing::info!("log cleaner disabled (log.cleaner.enable=false)");
        return;
    }
    let mut io = IoBound {
        rate: None,
        throttle: None,
    };
    let mut tracked: Vec<(String, i32)> = Vec::new();
    loop {
        let config = broker.dynamic.effective().cleaner;
        let chosen = {
            let b = broker.clone();
            match tokio::task::spawn_blocking(move || choose(&b, config.threads)).await {
                Ok(chosen) => chosen,
                Err(e) => {
                    tracing::error!(error = %e, "log cleaner: choosing logs failed");
                    Vec::new()
                }
            }
        };
        let (to_clean, mut measured) = chosen.into_iter().fold(
            (Vec::new(), Vec::new()),
            |(mut clean, mut measured), (partition, should)| {
                measured.push((partition.topic.clone(), partition.index));
                if should {
                    clean.push(partition);
                }
                (clean, measured)
            },
        );
        // The PostgreSQL partitions this node leads, one after another (each pass is
        // statements; the database does the work).
        let (postgres_measured, mut progressed) =
            clean_postgres(&broker, config.dedupe_buffer_size).await;
        measured.extend(postgres_measured);
        forget_untracked(&broker, &tracked, &measured);
        tracked = measured;
        let share = config.dedupe_buffer_size / to_clean.len().max(1) as u64;
        let mut passes = Vec::new();
        for partition in to_clean {
            let mut pass_io = PassIo::new(&broker, io.for_rate(config.io_max_bytes_per_second));
            let b = broker.clone();
            passes.push(tokio::task::spawn_blocking(move || {
                clean_one(&b, &partition, &mut pass_io, share)
            }));
        }
        for pass in passes {
            match pass.await {
                Ok(p) => progressed |= p,
                Err(e) => tracing::error!(error = %e, "log cleaner pass failed"),
            }
        }
        if !progressed {
            tokio::select! {
                _ = broker.shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(config.backoff_ms)) => {}
            }
        } else if broker.shutdown.is_cancelled() {
            return;
        }
    }
}

/// Every compacted partition with whether it should be cleaned now, the filthiest that should
/// first, at most `threads` of those marked.
fn choose(broker: &Broker, threads: usize) -> Vec<(Arc<Partition>, bool)> {
    let now = now_ms();
    let mut measured: Vec<(Arc<Partition>, f64, bool)> = Vec::new();
    for topic in broker.topics.all() {
        for partition in &topic.partitions {
            // PostgreSQL partitions are measured and cleaned by `clean_postgres`.
            let Some(log) = partition.log.embedded() else {
                continue;
            };
            if !log.config().cleanup_policy.compacts() {
                continue;
            }
            match log.cleanable_info(now) {
                Ok(info) => {
                    broker
                        .metrics
                        .cleaner
                        .set_dirty_ratio(partition, info.dirty_ratio);
                    measured.push((partition.clone(), info.dirty_ratio, info.should_clean));
                }
                Err(e) => tracing::warn!(
                    topic = %partition.topic,
                    partition = partition.index,
                    error = %e,
                    "log cleaner: cannot measure a log"
                ),
            }
        }
    }
    measured.sort_by(|a, b| b.2.cmp(&a.2).then(b.1.total_cmp(&a.1)));
    measured
        .into_iter()
        .enumerate()
        .map(|(i, (partition, _, should))| (partition, should && i < threads.max(1)))
        .collect()
}

/// One pass over one partition; whether it did anything.
fn clean_one(
    broker: &Broker,
    partition: &Partition,
    pass_io: &mut PassIo,
    dedupe_buffer_bytes: u64,
) -> bool {
    let started = Instant::now();
    let Some(log) = partition.log.embedded() else {
        return false;
    };
    let outcome = log.clean(now_ms(), pass_io, dedupe_buffer_bytes);
    pass_io.count_time();
    match outcome {
        Ok(Some(stats)) => {
            broker.metrics.cleaner.pass_done(&stats);
            broker
                .metrics
                .cleaner
                .set_dirty_ratio(partition, stats.dirty_ratio_after);
            tracing::info!(
                topic = %partition.topic,
                partition = partition.index,
                first_offset = stats.first_offset,
                end_offset = stats.end_offset,
                records_removed = stats.records_removed,
                records_kept = stats.records_kept,
                bytes_read = stats.bytes_read,
                bytes_written = stats.bytes_written,
                segments_cleaned = stats.segments_cleaned,
                dirty_ratio_before = stats.dirty_ratio_before,
                dirty_ratio_after = stats.dirty_ratio_after,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "log cleaner pass"
            );
            true
        }
        Ok(None) => false,
        Err(e) => {
            tracing::error!(
                topic = %partition.topic,
                partition = partition.index,
                error = %e,
                "log cleaner pass failed; the log is as it was before the pass"
            );
            false
        }
    }
}

/// Rows a PostgreSQL compaction pass judges per transaction.
const POSTGRES_CHUNK: i64 = 500;

/// Measures every compacted PostgreSQL partition this node leads and cleans those that should
/// be, with `dedupe_buffer_bytes` each: the partitions measured, and whether any pass did
/// something.
async fn clean_postgres(broker: &Broker, dedupe_buffer_bytes: u64) -> (Vec<(String, i32)>, bool) {
    let mut measured = Vec::new();
    let mut progressed = false;
    for topic in broker.topics.all() {
        for partition in &topic.partitions {
            let Some(leader) = partition.log.postgres().and_then(|r| r.leader()) else {
                continue;
            };
            let config = partition.log.config();
            if !config.cleanup_policy.compacts() {
                continue;
            }
            measured.push((partition.topic.clone(), partition.index));
            let now = now_ms();
            let info = match leader.cleanable_info(&config, now).await {
                Ok((_, info)) => info,
                Err(e) => {
                    tracing::warn!(topic = %partition.topic, partition = partition.index, error = %e, "log cleaner: cannot measure a log");
                    continue;
                }
            };
            broker
                .metrics
                .cleaner
                .set_dirty_ratio(partition, info.dirty_ratio);
            if !info.should_clean {
                continue;
            }
            let started = Instant::now();
            match leader
                .clean(&config, now, dedupe_buffer_bytes, POSTGRES_CHUNK)
                .await
            {
                Ok(Some(cleaned)) => {
                    progressed = true;
                    broker
                        .metrics
                        .cleaner
                        .postgres_pass_done(&cleaned, started.elapsed().as_secs_f64());
                    tracing::info!(
                        topic = %partition.topic,
                        partition = partition.index,
                        first_offset = cleaned.first_dirty,
                        end_offset = cleaned.end_offset,
                        records_removed = cleaned.records_removed,
                        records_kept = cleaned.records_kept,
                        batches_deleted = cleaned.batches_deleted,
                        batches_rewritten = cleaned.batches_rewritten,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "log cleaner pass"
                    );
                }
                Ok(None) => {}
                Err(e) => tracing::error!(
                    topic = %partition.topic,
                    partition = partition.index,
                    error = %e,
                    "log cleaner pass failed; what it committed is compacted, the rest as before"
                ),
            }
        }
    }
    (measured, progressed)
}

/// Drops the dirty-ratio series of partitions no longer compacted (or gone).
fn forget_untracked(broker: &Broker, before: &[(String, i32)], now: &[(String, i32)]) {
    for (topic, partition) in before {
        if !now.contains(&(topic.clone(), *partition)) {
            broker.metrics.cleaner.dirty_ratio.remove(&PartitionLabels {
                topic: topic.clone(),
                partition: *partition,
            });
        }
    }
}
